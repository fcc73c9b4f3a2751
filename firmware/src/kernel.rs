//! Debian's arm64 kernel (`linux-image-arm64` → `linux-image-<release>`), fetched into the
//! package cache, and its modules in load order for an initramfs.
//!
//! ```text
//! kernels/<release>_<version>/     the unpacked kernel package (boot/vmlinuz-<release>,
//!                                  lib/modules/<release>/...) plus a manifest
//! kernels/requests/<meta package>  which directory the meta package resolved to last time
//! ```
//!
//! Only the kernel package itself is unpacked: its dependencies (kmod, initramfs-tools, …)
//! are for installing it on a Debian system, not for booting it.

use crate::apt::{AptError, PkgVersion};
use crate::deb::{self, Cache, DebError};
use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

/// The meta package that depends on the current arm64 kernel.
pub const META_PACKAGE: &str = "linux-image-arm64";
const MANIFEST: &str = ".armboard-kernel";

/// Why the kernel or its modules could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Deb(#[from] DebError),
    #[error("{META_PACKAGE} resolved to no linux-image-<release> package (got {0:?})")]
    NoKernelPackage(Vec<String>),
    #[error("the kernel package unpacked no boot/vmlinuz-* into {0}")]
    NoVmlinuz(PathBuf),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{path}: line {line}: {why}")]
    BadModulesDep {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("no module {0:?} in modules.dep (and it is not built in)")]
    UnknownModule(String),
    #[error("module dependencies form a cycle through {0}")]
    DependencyCycle(String),
    #[error("{0}: {1}")]
    Decompress(PathBuf, String),
}

fn io_err(p: &Path) -> impl FnOnce(std::io::Error) -> KernelError + '_ {
    move |e| KernelError::Io(p.to_path_buf(), e)
}

/// An unpacked Debian kernel package.
#[derive(Clone, Debug)]
pub struct DebianKernel {
    /// `boot/vmlinuz-<release>` (a gzip-compressed arm64 `Image`; see
    /// [`crate::image::KernelImage::load`]).
    pub image: PathBuf,
    /// The kernel release, `uname -r`: `6.1.0-<abi>-arm64`.
    pub version: String,
    /// `lib/modules/<release>`.
    pub modules: PathBuf,
    /// The package it came from.
    pub package: PkgVersion,
}

impl DebianKernel {
    /// The current bookworm arm64 kernel, from the default cache (fetched if needed; set
    /// `ARMBOARD_REFRESH=1` to look for a newer one).
    pub fn ensure() -> Result<DebianKernel, KernelError> {
        DebianKernel::ensure_in(&Cache::from_env()?)
    }

    /// As [`DebianKernel::ensure`], with the cache at `cache`.
    pub fn ensure_in(cache: &Cache) -> Result<DebianKernel, KernelError> {
        let kernels = cache.dir().join("kernels");
        let req = kernels.join("requests").join(META_PACKAGE);
        let refresh = deb::refresh_requested();
        if !refresh {
            if let Some(k) = read_request(&kernels, &req) {
                return Ok(k);
            }
        }
        std::fs::create_dir_all(kernels.join("requests")).map_err(io_err(&kernels))?;
        let _lock = cache.lock()?;
        if !refresh {
            if let Some(k) = read_request(&kernels, &req) {
                return Ok(k);
            }
        }
        let debs = cache.dir().join("debs");
        let (pkg, deb_file) = cache.with_apt(|apt| {
            let resolved = apt.resolve(&[META_PACKAGE])?;
            let pkg = kernel_package(&resolved).ok_or_else(|| {
                AptError::NothingResolved(resolved.iter().map(|p| p.name.clone()).collect())
            })?;
            let deb = apt.download(std::slice::from_ref(&pkg), &debs)?;
            Ok((pkg, deb.into_iter().next().unwrap_or_default()))
        })?;
        let dir_name = format!("{}_{}", release_of(&pkg.name), pkg.version.replace(':', "%3a"));
        let root = kernels.join(&dir_name);
        if !root.join(MANIFEST).is_file() {
            deb::remove_stale(&kernels, &format!(".tmp-{dir_name}-"));
            let tmp = kernels.join(format!(".tmp-{dir_name}-{}", std::process::id()));
            if root.exists() {
                std::fs::remove_dir_all(&root).map_err(io_err(&root))?;
            }
            let r = deb::make_merged_usr(&tmp)
                .and_then(|()| deb::unpack_deb(&deb_file, &tmp))
                .map_err(KernelError::from)
                .and_then(|()| {
                    let m = tmp.join(MANIFEST);
                    let text = format!("{} {} {}\n", pkg.name, pkg.version, pkg.arch);
                    std::fs::write(&m, text).map_err(io_err(&m))
                });
            if let Err(e) = r {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, &root).map_err(io_err(&root))?;
        }
        std::fs::write(&req, format!("{dir_name}\n")).map_err(io_err(&req))?;
        read_request(&kernels, &req).ok_or(KernelError::NoVmlinuz(root))
    }

    /// The kernel's modules (reads `modules.dep` and `modules.builtin`).
    pub fn module_set(&self) -> Result<ModuleSet, KernelError> {
        ModuleSet::open(&self.modules)
    }
}

/// `linux-image-<release>` among what the meta package resolved to.
fn kernel_package(resolved: &[PkgVersion]) -> Option<PkgVersion> {
    resolved
        .iter()
        .find(|p| {
            p.name != META_PACKAGE
                && p.name
                    .strip_prefix("linux-image-")
                    .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
        .cloned()
}

fn release_of(package: &str) -> &str {
    package.strip_prefix("linux-image-").unwrap_or(package)
}

fn read_request(kernels: &Path, req: &Path) -> Option<DebianKernel> {
    let dir = std::fs::read_to_string(req).ok()?;
    let root = kernels.join(dir.trim());
    let manifest = std::fs::read_to_string(root.join(MANIFEST)).ok()?;
    let mut w = manifest.split_whitespace();
    let package = PkgVersion {
        name: w.next()?.into(),
        version: w.next()?.into(),
        arch: w.next()?.into(),
    };
    let version = release_of(&package.name).to_string();
    let image = root.join("boot").join(format!("vmlinuz-{version}"));
    let modules = root.join("lib/modules").join(&version);
    (image.is_file() && modules.is_dir()).then_some(DebianKernel {
        image,
        version,
        modules,
        package,
    })
}

/// A module ready to be put into an initramfs.
#[derive(Clone, Debug)]
pub struct Module {
    /// Its name with `-` as `_` (`virtio_blk`).
    pub name: String,
    /// Its path under the modules directory, as modules.dep has it
    /// (`kernel/drivers/block/virtio_blk.ko`, maybe with `.xz`/`.zst`/`.gz`).
    pub rel_path: String,
    /// `<name>.ko`: the uncompressed file name.
    pub file_name: String,
    /// The uncompressed ELF object, as `insmod` takes it.
    pub data: Vec<u8>,
}

/// What `modules.dep` and `modules.builtin` say about one kernel's modules.
#[derive(Clone, Debug)]
pub struct ModuleSet {
    dir: PathBuf,
    /// Module name → (path, its dependencies' paths).
    modules: HashMap<String, (String, Vec<String>)>,
    builtin: HashSet<String>,
}

/// `virtio-blk`, `kernel/drivers/block/virtio_blk.ko.xz` → `virtio_blk`.
pub fn module_name(path_or_name: &str) -> String {
    let base = path_or_name.rsplit('/').next().unwrap_or(path_or_name);
    let base = [".ko.xz", ".ko.zst", ".ko.gz", ".ko"]
        .iter()
        .find_map(|s| base.strip_suffix(s))
        .unwrap_or(base);
    base.replace('-', "_")
}

impl ModuleSet {
    /// Reads `dir/modules.dep` (and `modules.builtin` if present).
    pub fn open(dir: &Path) -> Result<ModuleSet, KernelError> {
        let dep_file = dir.join("modules.dep");
        let text = std::fs::read_to_string(&dep_file).map_err(io_err(&dep_file))?;
        let mut set = ModuleSet::parse(dir, &dep_file, &text)?;
        let builtin = dir.join("modules.builtin");
        if let Ok(t) = std::fs::read_to_string(&builtin) {
            set.builtin = t
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| module_name(l.trim()))
                .collect();
        }
        Ok(set)
    }

    /// Parses modules.dep text: `PATH: DEP DEP...` a line.
    fn parse(dir: &Path, dep_file: &Path, text: &str) -> Result<ModuleSet, KernelError> {
        let mut modules = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let Some((path, deps)) = line.split_once(':') else {
                return Err(KernelError::BadModulesDep {
                    path: dep_file.to_path_buf(),
                    line: i + 1,
                    why: "no ':'".into(),
                });
            };
            let path = path.trim().to_string();
            let deps = deps.split_whitespace().map(str::to_string).collect();
            modules.insert(module_name(&path), (path, deps));
        }
        Ok(ModuleSet {
            dir: dir.to_path_buf(),
            modules,
            builtin: HashSet::new(),
        })
    }

    /// True if `name` is compiled into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&module_name(name))
    }

    /// True if `name` is a loadable module of this kernel.
    pub fn has_module(&self, name: &str) -> bool {
        self.modules.contains_key(&module_name(name))
    }

    /// The modules that loading `names` needs, dependencies before the modules that use
    /// them, each once, decompressed. Names that are built into the kernel are skipped.
    pub fn resolve(&self, names: &[&str]) -> Result<Vec<Module>, KernelError> {
        let order = self.load_order(names)?;
        order.iter().map(|rel| self.read_module(rel)).collect()
    }

    /// As [`ModuleSet::resolve`], without reading the files: their modules.dep paths.
    pub fn load_order(&self, names: &[&str]) -> Result<Vec<String>, KernelError> {
        let mut order = Vec::new();
        let mut done = HashSet::new();
        for n in names {
            let name = module_name(n);
            if !self.modules.contains_key(&name) {
                if self.builtin.contains(&name) {
                    continue;
                }
                return Err(KernelError::UnknownModule(n.to_string()));
            }
            self.visit(&name, &mut Vec::new(), &mut done, &mut order)?;
        }
        Ok(order)
    }

    /// Depth-first: every dependency is emitted before `name`.
    fn visit(
        &self,
        name: &str,
        path: &mut Vec<String>,
        done: &mut HashSet<String>,
        order: &mut Vec<String>,
    ) -> Result<(), KernelError> {
        if done.contains(name) {
            return Ok(());
        }
        if path.iter().any(|p| p == name) {
            return Err(KernelError::DependencyCycle(name.to_string()));
        }
        let (rel, deps) = self
            .modules
            .get(name)
            .ok_or_else(|| KernelError::UnknownModule(name.to_string()))?;
        path.push(name.to_string());
        for d in deps {
            self.visit(&module_name(d), path, done, order)?;
        }
        path.pop();
        done.insert(name.to_string());
        order.push(rel.clone());
        Ok(())
    }

    fn read_module(&self, rel: &str) -> Result<Module, KernelError> {
        let path = self.dir.join(rel);
        let raw = std::fs::read(&path).map_err(io_err(&path))?;
        let bad = |e: String| KernelError::Decompress(path.clone(), e);
        let data = if rel.ends_with(".xz") {
            let mut out = Vec::new();
            lzma_rs::xz_decompress(&mut Cursor::new(&raw), &mut out)
                .map_err(|e| bad(e.to_string()))?;
            out
        } else if rel.ends_with(".zst") {
            let mut out = Vec::new();
            ruzstd::decoding::StreamingDecoder::new(Cursor::new(&raw))
                .map_err(|e| bad(e.to_string()))?
                .read_to_end(&mut out)
                .map_err(|e| bad(e.to_string()))?;
            out
        } else if rel.ends_with(".gz") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .map_err(|e| bad(e.to_string()))?;
            out
        } else {
            raw
        };
        if !data.starts_with(b"\x7fELF") {
            return Err(bad("not an ELF object".into()));
        }
        let name = module_name(rel);
        Ok(Module {
            file_name: format!("{name}.ko"),
            name,
            rel_path: rel.to_string(),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> ModuleSet {
        ModuleSet::parse(Path::new("/m"), Path::new("/m/modules.dep"), text).unwrap()
    }

    #[test]
    fn orders_dependencies_first_each_once() {
        let s = set("kernel/a/virtio_blk.ko.xz: kernel/v/virtio_ring.ko.xz kernel/v/virtio.ko.xz\n\
             kernel/v/virtio.ko.xz: kernel/v/virtio_ring.ko.xz\n\
             kernel/v/virtio_ring.ko.xz:\n\
             kernel/fs/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2.ko\n\
             kernel/lib/crc16.ko:\nkernel/fs/mbcache.ko:\nkernel/fs/jbd2.ko:\n");
        let o = s.load_order(&["virtio-blk", "ext4", "virtio"]).unwrap();
        assert_eq!(
            o,
            [
                "kernel/v/virtio_ring.ko.xz",
                "kernel/v/virtio.ko.xz",
                "kernel/a/virtio_blk.ko.xz",
                "kernel/lib/crc16.ko",
                "kernel/fs/mbcache.ko",
                "kernel/fs/jbd2.ko",
                "kernel/fs/ext4.ko",
            ]
        );
    }

    #[test]
    fn unknown_builtin_and_cyclic_modules() {
        let mut s = set("a.ko: b.ko\nb.ko: a.ko\nc.ko:\n");
        s.builtin.insert("virtio_mmio".into());
        assert!(matches!(
            s.load_order(&["a"]),
            Err(KernelError::DependencyCycle(_))
        ));
        assert!(matches!(
            s.load_order(&["nope"]),
            Err(KernelError::UnknownModule(n)) if n == "nope"
        ));
        assert_eq!(s.load_order(&["virtio-mmio", "c"]).unwrap(), ["c.ko"]);
        assert!(ModuleSet::parse(Path::new("/m"), Path::new("/m/modules.dep"), "junk\n").is_err());
    }

    #[test]
    fn module_names_normalise() {
        assert_eq!(module_name("kernel/drivers/block/virtio_blk.ko.xz"), "virtio_blk");
        assert_eq!(module_name("virtio-net"), "virtio_net");
        assert_eq!(module_name("x.ko.zst"), "x");
    }

    #[test]
    fn picks_the_versioned_kernel_package() {
        let p = |n: &str| PkgVersion {
            name: n.into(),
            version: "1".into(),
            arch: "arm64".into(),
        };
        let r = [p("kmod"), p("linux-base"), p("linux-image-6.1.0-44-arm64"), p(META_PACKAGE)];
        assert_eq!(kernel_package(&r).unwrap().name, "linux-image-6.1.0-44-arm64");
        assert!(kernel_package(&[p(META_PACKAGE), p("kmod")]).is_none());
    }
}
