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
/// Exact module aliases found by scanning a modules directory, `alias NAME MODULE` a line.
pub const ALIAS_CACHE: &str = ".armboard-modules.alias";

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
    /// The package's device trees: `usr/lib/linux-image-<release>` (vendor subdirectories
    /// such as `broadcom/`).
    pub fn dtb_dir(&self) -> PathBuf {
        let lib = self.modules.parent().and_then(Path::parent);
        lib.unwrap_or(&self.modules)
            .join(format!("linux-image-{}", self.version))
    }

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
        let dir_name = format!(
            "{}_{}",
            release_of(&pkg.name),
            pkg.version.replace(':', "%3a")
        );
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

/// One kernel's loadable modules: where each is, what it depends on, what is built in.
///
/// Dependencies come from `modules.dep` when the directory has one (depmod's output, on an
/// installed system); Debian's package ships none (its postinst runs depmod), so otherwise
/// they are read from each module's own `.modinfo` section (`depends=`, which modpost
/// records from the symbols the module imports).
///
/// Soft dependencies (`softdep=pre: crypto-crc32c`, as ext4 has: without crc32c it cannot
/// mount a file system with metadata checksums) are loaded too, `pre:` ones before the
/// module and `post:` ones after; they name modules or aliases, which are looked up in
/// `modules.alias`, or else in every module's `alias=` entries (read once, when first
/// needed). A soft dependency that cannot be found is left out.
#[derive(Clone, Debug)]
pub struct ModuleSet {
    dir: PathBuf,
    /// Module name → its path under `dir`.
    paths: HashMap<String, String>,
    /// Module name → dependency names, when modules.dep says.
    deps: Option<HashMap<String, Vec<String>>>,
    builtin: HashSet<String>,
    /// Exact alias → module name, built on first use.
    aliases: std::sync::OnceLock<HashMap<String, String>>,
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

fn is_module_file(name: &str) -> bool {
    [".ko.xz", ".ko.zst", ".ko.gz", ".ko"]
        .iter()
        .any(|s| name.ends_with(s))
}

impl ModuleSet {
    /// Reads `dir` (`lib/modules/<release>`): `modules.dep` if present, else the module
    /// files under it; and `modules.builtin`.
    pub fn open(dir: &Path) -> Result<ModuleSet, KernelError> {
        let dep_file = dir.join("modules.dep");
        let mut set = match std::fs::read_to_string(&dep_file) {
            Ok(text) => ModuleSet::parse(dir, &dep_file, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ModuleSet::scan(dir)?,
            Err(e) => return Err(KernelError::Io(dep_file, e)),
        };
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
        let mut paths = HashMap::new();
        let mut deps = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let Some((path, d)) = line.split_once(':') else {
                return Err(KernelError::BadModulesDep {
                    path: dep_file.to_path_buf(),
                    line: i + 1,
                    why: "no ':'".into(),
                });
            };
            let path = path.trim().to_string();
            let name = module_name(&path);
            deps.insert(
                name.clone(),
                d.split_whitespace().map(module_name).collect(),
            );
            paths.insert(name, path);
        }
        Ok(ModuleSet {
            dir: dir.to_path_buf(),
            paths,
            deps: Some(deps),
            builtin: HashSet::new(),
            aliases: std::sync::OnceLock::new(),
        })
    }

    /// Finds every module file under `dir`.
    fn scan(dir: &Path) -> Result<ModuleSet, KernelError> {
        let mut paths = HashMap::new();
        let mut todo = vec![PathBuf::new()];
        while let Some(rel) = todo.pop() {
            let abs = dir.join(&rel);
            let rd = std::fs::read_dir(&abs).map_err(io_err(&abs))?;
            for e in rd {
                let e = e.map_err(io_err(&abs))?;
                let name = e.file_name().to_string_lossy().into_owned();
                let ft = e.file_type().map_err(io_err(&abs))?;
                if ft.is_dir() {
                    todo.push(rel.join(&name));
                } else if ft.is_file() && is_module_file(&name) {
                    let r = rel.join(&name).to_string_lossy().into_owned();
                    paths.insert(module_name(&name), r);
                }
            }
        }
        Ok(ModuleSet {
            dir: dir.to_path_buf(),
            paths,
            deps: None,
            builtin: HashSet::new(),
            aliases: std::sync::OnceLock::new(),
        })
    }

    /// True if `name` is compiled into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&module_name(name))
    }

    /// True if `name` is a loadable module of this kernel.
    pub fn has_module(&self, name: &str) -> bool {
        self.paths.contains_key(&module_name(name))
    }

    /// The modules that loading `names` needs, dependencies before the modules that use
    /// them, each once, decompressed. Names built into the kernel are skipped.
    pub fn resolve(&self, names: &[&str]) -> Result<Vec<Module>, KernelError> {
        let mut order = Vec::new();
        let mut done = HashSet::new();
        for n in names {
            let name = module_name(n);
            if !self.paths.contains_key(&name) {
                if self.builtin.contains(&name) {
                    continue;
                }
                return Err(KernelError::UnknownModule(n.to_string()));
            }
            self.visit(&name, &mut Vec::new(), &mut done, &mut order)?;
        }
        Ok(order)
    }

    /// As [`ModuleSet::resolve`], giving the modules' paths under the modules directory.
    pub fn load_order(&self, names: &[&str]) -> Result<Vec<String>, KernelError> {
        Ok(self
            .resolve(names)?
            .into_iter()
            .map(|m| m.rel_path)
            .collect())
    }

    /// Depth-first: every dependency is emitted before `name`.
    fn visit(
        &self,
        name: &str,
        path: &mut Vec<String>,
        done: &mut HashSet<String>,
        order: &mut Vec<Module>,
    ) -> Result<(), KernelError> {
        if done.contains(name) {
            return Ok(());
        }
        if path.iter().any(|p| p == name) {
            return Err(KernelError::DependencyCycle(name.to_string()));
        }
        let rel = self
            .paths
            .get(name)
            .ok_or_else(|| KernelError::UnknownModule(name.to_string()))?;
        let module = self.read_module(rel)?;
        let deps = match &self.deps {
            Some(d) => d.get(name).cloned().unwrap_or_default(),
            None => modinfo(&module.data, "depends")
                .into_iter()
                .flat_map(|v| v.split(',').map(module_name).collect::<Vec<_>>())
                .filter(|d| !d.is_empty())
                .collect(),
        };
        let (pre, post) = softdeps(&module.data);
        path.push(name.to_string());
        for d in &deps {
            if self.paths.contains_key(d) || !self.builtin.contains(d) {
                self.visit(d, path, done, order)?;
            }
        }
        self.visit_soft(&pre, path, done, order);
        path.pop();
        done.insert(name.to_string());
        order.push(module);
        self.visit_soft(&post, path, done, order);
        Ok(())
    }

    /// Visits soft dependencies; one that is unknown or would close a cycle is skipped.
    fn visit_soft(
        &self,
        names: &[String],
        path: &mut Vec<String>,
        done: &mut HashSet<String>,
        order: &mut Vec<Module>,
    ) {
        for n in names {
            let Some(m) = self.lookup(n) else {
                log::info!("soft dependency {n} is not a module of this kernel: left out");
                continue;
            };
            let depth = path.len();
            if let Err(e) = self.visit(&m, path, done, order) {
                log::info!("soft dependency {n}: {e}: left out");
                path.truncate(depth);
            }
        }
    }

    /// The module a name or exact alias refers to (None if built in or unknown).
    fn lookup(&self, name_or_alias: &str) -> Option<String> {
        let n = module_name(name_or_alias);
        if self.paths.contains_key(&n) {
            return Some(n);
        }
        if self.builtin.contains(&n) {
            return None;
        }
        self.aliases
            .get_or_init(|| self.read_aliases())
            .get(name_or_alias)
            .cloned()
    }

    /// Exact aliases: from `modules.alias` if present, else from every module's modinfo
    /// (the result kept in the directory as [`ALIAS_CACHE`] when it is writable, since a
    /// kernel's modules never change).
    fn read_aliases(&self) -> HashMap<String, String> {
        let wild = |a: &str| a.contains(['*', '?', '[']);
        let parse = |t: &str| {
            let mut map = HashMap::new();
            for l in t.lines() {
                let mut w = l.split_whitespace();
                if let (Some("alias"), Some(a), Some(m)) = (w.next(), w.next(), w.next()) {
                    if !wild(a) {
                        map.entry(a.to_string()).or_insert_with(|| module_name(m));
                    }
                }
            }
            map
        };
        for f in ["modules.alias", ALIAS_CACHE] {
            if let Ok(t) = std::fs::read_to_string(self.dir.join(f)) {
                return parse(&t);
            }
        }
        let mut map = HashMap::new();
        let mut all: Vec<(&String, &String)> = self.paths.iter().collect();
        all.sort_by(|a, b| a.1.cmp(b.1));
        for (name, rel) in all {
            let Ok(m) = self.read_module(rel) else {
                continue;
            };
            for a in modinfo(&m.data, "alias") {
                if !wild(&a) {
                    map.entry(a).or_insert_with(|| name.clone());
                }
            }
        }
        let mut lines: Vec<String> = map
            .iter()
            .map(|(a, m)| format!("alias {a} {m}\n"))
            .collect();
        lines.sort();
        let tmp = self
            .dir
            .join(format!("{ALIAS_CACHE}.{}", std::process::id()));
        if std::fs::write(&tmp, lines.concat()).is_ok() {
            let _ = std::fs::rename(&tmp, self.dir.join(ALIAS_CACHE));
        }
        map
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

/// The values of `key` in a 64-bit little-endian ELF module's `.modinfo` section
/// (NUL-separated `key=value` strings). Anything malformed yields nothing.
pub fn modinfo(elf: &[u8], key: &str) -> Vec<String> {
    let Some(sec) = elf_section(elf, ".modinfo") else {
        return Vec::new();
    };
    sec.split(|&b| b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
        .collect()
}

/// A module's soft dependencies: (`pre:` names, `post:` names) from `softdep=` entries.
fn softdeps(elf: &[u8]) -> (Vec<String>, Vec<String>) {
    let (mut pre, mut post) = (Vec::new(), Vec::new());
    for v in modinfo(elf, "softdep") {
        let mut into = &mut pre;
        for w in v.split_whitespace() {
            match w {
                "pre:" => into = &mut pre,
                "post:" => into = &mut post,
                name => into.push(name.to_string()),
            }
        }
    }
    (pre, post)
}

/// The contents of the section called `want` (ELF64 little-endian only).
fn elf_section<'a>(elf: &'a [u8], want: &str) -> Option<&'a [u8]> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    if !elf.starts_with(b"\x7fELF\x02\x01") {
        return None;
    }
    let shoff = usize::try_from(u64_at(0x28)?).ok()?;
    let shentsize = usize::from(u16_at(0x3a)?);
    let shnum = usize::from(u16_at(0x3c)?);
    let shstrndx = usize::from(u16_at(0x3e)?);
    if shentsize < 64 {
        return None;
    }
    let sh = |i: usize| -> Option<(u32, &'a [u8])> {
        let base = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let name = u32_at(base)?;
        let off = usize::try_from(u64_at(base.checked_add(0x18)?)?).ok()?;
        let size = usize::try_from(u64_at(base.checked_add(0x20)?)?).ok()?;
        Some((name, elf.get(off..off.checked_add(size)?)?))
    };
    let (_, names) = sh(shstrndx)?;
    (0..shnum).find_map(|i| {
        let (name, data) = sh(i)?;
        let n = names.get(name as usize..)?;
        let n = &n[..n.iter().position(|&c| c == 0)?];
        (n == want.as_bytes()).then_some(data)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 LE object whose `.modinfo` holds `info` (NUL-separated key=value).
    fn fake_module(info: &[&str]) -> Vec<u8> {
        let mut modinfo = Vec::new();
        for kv in info {
            modinfo.extend_from_slice(kv.as_bytes());
            modinfo.push(0);
        }
        let shstr = b"\0.shstrtab\0.modinfo\0";
        let mut e = vec![0u8; 64];
        e[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let shstr_off = e.len();
        e.extend_from_slice(shstr);
        let modinfo_off = e.len();
        e.extend_from_slice(&modinfo);
        while !e.len().is_multiple_of(8) {
            e.push(0);
        }
        let shoff = e.len();
        let mut sh = |name: u32, off: usize, size: usize| {
            let mut h = vec![0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            e.extend_from_slice(&h);
        };
        sh(0, 0, 0);
        sh(1, shstr_off, shstr.len());
        sh(11, modinfo_off, modinfo.len());
        e[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        e[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        e[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        e[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        e
    }

    fn tree(tag: &str, files: &[(&str, &[&str])]) -> PathBuf {
        let d = std::env::temp_dir().join(format!("armboard-mods-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for (rel, info) in files {
            let p = d.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let elf = fake_module(info);
            if rel.ends_with(".xz") {
                let mut xz = Vec::new();
                lzma_rs::xz_compress(&mut Cursor::new(&elf), &mut xz).unwrap();
                std::fs::write(&p, xz).unwrap();
            } else {
                std::fs::write(&p, elf).unwrap();
            }
        }
        d
    }

    const FILES: &[(&str, &[&str])] = &[
        (
            "kernel/a/virtio_blk.ko.xz",
            &["license=GPL", "depends=virtio_ring,virtio"],
        ),
        ("kernel/v/virtio.ko.xz", &["depends=virtio_ring"]),
        ("kernel/v/virtio_ring.ko.xz", &["depends="]),
        (
            "kernel/fs/ext4.ko",
            &[
                "depends=crc16,mbcache,jbd2",
                "softdep=pre: crypto-crc32c post: not_here",
            ],
        ),
        ("kernel/lib/crc16.ko", &["depends="]),
        ("kernel/fs/mbcache.ko", &[]),
        ("kernel/fs/jbd2.ko", &["depends="]),
        (
            "kernel/crypto/crc32c_generic.ko",
            &["alias=crypto-crc32c", "alias=crc32c"],
        ),
        ("kernel/x/needs_builtin.ko", &["depends=virtio_mmio"]),
        ("kernel/x/needs_ghost.ko", &["depends=ghost"]),
    ];

    const EXPECTED: [&str; 8] = [
        "kernel/v/virtio_ring.ko.xz",
        "kernel/v/virtio.ko.xz",
        "kernel/a/virtio_blk.ko.xz",
        "kernel/lib/crc16.ko",
        "kernel/fs/mbcache.ko",
        "kernel/fs/jbd2.ko",
        "kernel/crypto/crc32c_generic.ko",
        "kernel/fs/ext4.ko",
    ];

    #[test]
    fn orders_dependencies_and_soft_dependencies_first_from_modinfo() {
        let d = tree("modinfo", FILES);
        std::fs::write(
            d.join("modules.builtin"),
            "kernel/drivers/virtio/virtio_mmio.ko\n",
        )
        .unwrap();
        let s = ModuleSet::open(&d).unwrap();
        assert!(s.is_builtin("virtio-mmio"));
        let o = s.load_order(&["virtio-blk", "ext4", "virtio"]).unwrap();
        assert_eq!(o, EXPECTED);
        let m = s.resolve(&["virtio_blk"]).unwrap();
        assert_eq!(m[2].file_name, "virtio_blk.ko");
        assert!(m[2].data.starts_with(b"\x7fELF"), "decompressed from .xz");
        assert_eq!(modinfo(&m[2].data, "license"), ["GPL"]);
        // A built-in dependency is skipped; one that is neither module nor built in is an
        // error; a built-in module asked for by name is skipped.
        assert_eq!(
            s.load_order(&["needs_builtin", "virtio_mmio"]).unwrap(),
            ["kernel/x/needs_builtin.ko"]
        );
        assert!(matches!(
            s.resolve(&["needs_ghost"]),
            Err(KernelError::UnknownModule(n)) if n == "ghost"
        ));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn uses_modules_dep_and_alias_when_present() {
        let d = tree("dep", FILES);
        // modules.dep overrides what .modinfo says (here: jbd2 needs crc16).
        let dep: String = [
            "kernel/fs/ext4.ko: kernel/fs/mbcache.ko kernel/fs/jbd2.ko",
            "kernel/lib/crc16.ko:",
            "kernel/fs/mbcache.ko:",
            "kernel/fs/jbd2.ko: kernel/lib/crc16.ko",
            "kernel/crypto/crc32c_generic.ko:",
        ]
        .join("\n");
        std::fs::write(d.join("modules.dep"), dep).unwrap();
        std::fs::write(
            d.join("modules.alias"),
            "# Aliases\nalias crypto-crc32c crc32c_generic\n",
        )
        .unwrap();
        let s = ModuleSet::open(&d).unwrap();
        let o = s.load_order(&["ext4"]).unwrap();
        assert_eq!(
            o,
            [
                "kernel/fs/mbcache.ko",
                "kernel/lib/crc16.ko",
                "kernel/fs/jbd2.ko",
                "kernel/crypto/crc32c_generic.ko",
                "kernel/fs/ext4.ko"
            ]
        );
        std::fs::write(d.join("modules.dep"), "junk\n").unwrap();
        assert!(matches!(
            ModuleSet::open(&d),
            Err(KernelError::BadModulesDep { line: 1, .. })
        ));
        std::fs::write(d.join("modules.dep"), "a.ko: b.ko\nb.ko: a.ko\n").unwrap();
        for f in ["a.ko", "b.ko"] {
            std::fs::write(d.join(f), fake_module(&[])).unwrap();
        }
        let s = ModuleSet::open(&d).unwrap();
        assert!(matches!(
            s.resolve(&["a"]),
            Err(KernelError::DependencyCycle(_))
        ));
        assert!(matches!(
            s.resolve(&["nope"]),
            Err(KernelError::UnknownModule(n)) if n == "nope"
        ));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn modinfo_of_malformed_elf_is_empty() {
        let m = fake_module(&["depends=a,b"]);
        assert_eq!(modinfo(&m, "depends"), ["a,b"]);
        for n in 0..m.len() {
            let _ = modinfo(&m[..n], "depends");
        }
        assert!(modinfo(b"not an elf", "depends").is_empty());
    }

    #[test]
    fn module_names_normalise() {
        assert_eq!(
            module_name("kernel/drivers/block/virtio_blk.ko.xz"),
            "virtio_blk"
        );
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
        let r = [
            p("kmod"),
            p("linux-base"),
            p("linux-image-6.1.0-44-arm64"),
            p(META_PACKAGE),
        ];
        assert_eq!(
            kernel_package(&r).unwrap().name,
            "linux-image-6.1.0-44-arm64"
        );
        assert!(kernel_package(&[p(META_PACKAGE), p("kmod")]).is_none());
    }
}
