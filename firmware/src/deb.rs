//! Debian packages for the guest: fetched with the host's `apt-get download` (see
//! [`crate::apt`]) into a cache outside the repository, unpacked in Rust into sysroots.
//!
//! The cache is `$ARMBOARD_CACHE`, else `$XDG_CACHE_HOME/armboard`, else
//! `~/.cache/armboard`:
//!
//! ```text
//! apt/                 private apt configuration, lists and status (never the host's)
//! debs/                downloaded packages, NAME_VERSION_ARCH.deb
//! sysroots/KEY/        one unpacked root per set of exact package versions
//! sysroots/requests/   which KEY a list of package names resolved to last time
//! lock                 held while the cache is changed
//! ```
//!
//! A sysroot is laid out as a merged-/usr Debian system (`bin`, `sbin` and `lib` are
//! symlinks into `usr/`), with every symlink a package ships kept as it is. Paths are
//! resolved inside the root the way a chroot would, so no entry, however crafted, is
//! written outside it. A second request for the same packages reads one small file and
//! returns.

use crate::apt::{Apt, AptError, Mirror, PkgVersion};
use crate::ar;
use std::ffi::OsString;
use std::io::{Cursor, Read};
use std::path::{Component, Path, PathBuf};

/// Why a sysroot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error(transparent)]
    Apt(#[from] AptError),
    #[error("no cache directory: set ARMBOARD_CACHE or HOME")]
    NoCacheDir,
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: not a Debian package: {1}")]
    NotDeb(PathBuf, String),
    #[error("{0}: entry {1:?}: {2}")]
    BadEntry(PathBuf, String, String),
    #[error("no packages were named")]
    NoPackages,
}

fn io_err(p: &Path) -> impl FnOnce(std::io::Error) -> DebError + '_ {
    move |e| DebError::Io(p.to_path_buf(), e)
}

/// File in each finished sysroot listing its packages, one `NAME VERSION ARCH` a line.
const MANIFEST: &str = ".armboard-packages";

/// A directory holding the unpacked files of a set of packages.
#[derive(Clone, Debug)]
pub struct Sysroot {
    pub path: PathBuf,
    pub packages: Vec<PkgVersion>,
}

impl AsRef<Path> for Sysroot {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Sysroot {
    /// A sysroot holding `pkgs` and everything they depend on, from the default cache.
    pub fn ensure(pkgs: &[&str]) -> Result<Sysroot, DebError> {
        Cache::from_env()?.sysroot(pkgs)
    }

    /// Where `name` (a bare program name such as `busybox`) lives in the root: the first of
    /// `usr/bin`, `usr/sbin`, `bin` and `sbin` that has it.
    pub fn find_program(&self, name: &str) -> Option<PathBuf> {
        find_program(&self.path, name)
    }
}

/// See [`Sysroot::find_program`].
pub fn find_program(root: &Path, name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return None;
    }
    ["usr/bin", "usr/sbin", "bin", "sbin", "usr/local/bin"]
        .iter()
        .map(|d| root.join(d).join(name))
        .find(|p| p.exists())
}

/// The package cache.
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache at `$ARMBOARD_CACHE`, `$XDG_CACHE_HOME/armboard` or `~/.cache/armboard`.
    pub fn from_env() -> Result<Cache, DebError> {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let dir = if let Some(d) = var("ARMBOARD_CACHE") {
            PathBuf::from(d)
        } else if let Some(d) = var("XDG_CACHE_HOME") {
            PathBuf::from(d).join("armboard")
        } else if let Some(h) = var("HOME") {
            PathBuf::from(h).join(".cache/armboard")
        } else {
            return Err(DebError::NoCacheDir);
        };
        Ok(Cache::new(dir))
    }

    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cached sysroot for `pkgs` (plus their dependencies), made if needed.
    pub fn sysroot(&self, pkgs: &[&str]) -> Result<Sysroot, DebError> {
        let request = request_key(pkgs)?;
        let roots = self.dir.join("sysroots");
        let req_file = roots.join("requests").join(&request);
        let refresh = refresh_requested();
        if !refresh {
            if let Some(s) = read_request(&roots, &req_file) {
                return Ok(s);
            }
        }
        std::fs::create_dir_all(roots.join("requests")).map_err(io_err(&roots))?;
        let _lock = Lock::take(&self.dir.join("lock"))?;
        // Someone may have made it while we waited for the lock.
        if !refresh {
            if let Some(s) = read_request(&roots, &req_file) {
                return Ok(s);
            }
        }
        let (packages, debs) = self.fetch(pkgs)?;
        let key = versions_key(&packages);
        let path = roots.join(&key);
        if !path.join(MANIFEST).is_file() {
            remove_stale(&roots, &format!(".tmp-{key}-"));
            let tmp = roots.join(format!(".tmp-{key}-{}", std::process::id()));
            if path.exists() {
                // Left unfinished by an interrupted run.
                std::fs::remove_dir_all(&path).map_err(io_err(&path))?;
            }
            let r = unpack_all(&debs, &tmp).and_then(|()| write_manifest(&tmp, &packages));
            if let Err(e) = r {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        }
        std::fs::write(&req_file, format!("{key}\n")).map_err(io_err(&req_file))?;
        Ok(Sysroot { path, packages })
    }

    /// Unpacks `pkgs` (plus their dependencies) into `out`, which need not be empty.
    pub fn unpack_into(&self, pkgs: &[&str], out: &Path) -> Result<Sysroot, DebError> {
        request_key(pkgs)?;
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let (packages, debs) = {
            let _lock = Lock::take(&self.dir.join("lock"))?;
            match self.cached_debs(pkgs) {
                Some(r) => r,
                None => self.fetch(pkgs)?,
            }
        };
        unpack_all(&debs, out)?;
        write_manifest(out, &packages)?;
        Ok(Sysroot {
            path: out.to_path_buf(),
            packages,
        })
    }

    /// The packages and downloaded files of the last resolution of `pkgs`, if all are there.
    fn cached_debs(&self, pkgs: &[&str]) -> Option<(Vec<PkgVersion>, Vec<PathBuf>)> {
        if refresh_requested() {
            return None;
        }
        let roots = self.dir.join("sysroots");
        let req = roots.join("requests").join(request_key(pkgs).ok()?);
        let s = read_request(&roots, &req)?;
        let debs: Vec<PathBuf> = s
            .packages
            .iter()
            .map(|p| self.dir.join("debs").join(p.deb_file_name()))
            .collect();
        debs.iter()
            .all(|d| d.is_file())
            .then_some((s.packages, debs))
    }

    /// Resolves and downloads; the caller holds the lock.
    fn fetch(&self, pkgs: &[&str]) -> Result<(Vec<PkgVersion>, Vec<PathBuf>), DebError> {
        let debs_dir = self.dir.join("debs");
        self.with_apt(|apt| {
            let resolved = apt.resolve(pkgs)?;
            let debs = apt.download(&resolved, &debs_dir)?;
            Ok((resolved, debs))
        })
    }

    /// Runs `attempt` with our private apt, fetching the package lists first if there are
    /// none, and once more (then retrying) if it fails on lists that were not fresh. The
    /// caller holds the lock.
    pub(crate) fn with_apt<T>(
        &self,
        attempt: impl Fn(&Apt) -> Result<T, AptError>,
    ) -> Result<T, DebError> {
        let apt = Apt::new(&self.dir.join("apt"), &Mirror::detect())?;
        let mut updated = false;
        if !apt.has_lists() || refresh_requested() {
            apt.update()?;
            updated = true;
        }
        match attempt(&apt) {
            Ok(r) => Ok(r),
            // Old lists name packages the mirror has dropped, or lack new ones: refresh once.
            Err(e) if !updated => {
                log::info!("retrying after apt-get update: {e}");
                apt.update()?;
                Ok(attempt(&apt)?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Takes the cache lock (released when the value is dropped).
    pub(crate) fn lock(&self) -> Result<Lock, DebError> {
        Lock::take(&self.dir.join("lock"))
    }
}

/// Removes what interrupted runs left in `dir` under names starting with `prefix` (the
/// caller holds the cache lock, so nobody is using them).
pub(crate) fn remove_stale(dir: &Path, prefix: &str) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(|e| e.ok()) {
        if e.file_name().to_string_lossy().starts_with(prefix) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

pub(crate) fn refresh_requested() -> bool {
    std::env::var_os("ARMBOARD_REFRESH").is_some_and(|v| !v.is_empty() && v != "0")
}

fn request_key(pkgs: &[&str]) -> Result<String, DebError> {
    if pkgs.is_empty() {
        return Err(DebError::NoPackages);
    }
    let mut names: Vec<&str> = pkgs.to_vec();
    names.sort_unstable();
    names.dedup();
    Ok(format!("{:016x}", fnv1a(names.join("\n").as_bytes())))
}

fn versions_key(pkgs: &[PkgVersion]) -> String {
    let mut lines: Vec<String> = pkgs
        .iter()
        .map(|p| format!("{} {} {}", p.name, p.version, p.arch))
        .collect();
    lines.sort();
    format!("{:016x}", fnv1a(lines.join("\n").as_bytes()))
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust versions, for cache keys.
pub(crate) fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn read_request(roots: &Path, req_file: &Path) -> Option<Sysroot> {
    let key = std::fs::read_to_string(req_file).ok()?;
    let path = roots.join(key.trim());
    let manifest = std::fs::read_to_string(path.join(MANIFEST)).ok()?;
    let packages = manifest
        .lines()
        .filter_map(|l| {
            let mut w = l.split(' ');
            Some(PkgVersion {
                name: w.next()?.into(),
                version: w.next()?.into(),
                arch: w.next()?.into(),
            })
        })
        .collect();
    Some(Sysroot { path, packages })
}

fn write_manifest(root: &Path, pkgs: &[PkgVersion]) -> Result<(), DebError> {
    let text: String = pkgs
        .iter()
        .map(|p| format!("{} {} {}\n", p.name, p.version, p.arch))
        .collect();
    let f = root.join(MANIFEST);
    std::fs::write(&f, text).map_err(io_err(&f))
}

/// An exclusive `flock` on a file, released when dropped (or when the process dies).
pub(crate) struct Lock(std::fs::File);

impl Lock {
    fn take(path: &Path) -> Result<Lock, DebError> {
        use std::os::fd::AsRawFd;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(io_err(d))?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_err(path))?;
        loop {
            // SAFETY: flock on a file descriptor we own; no memory is involved.
            let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
            if r == 0 {
                return Ok(Lock(f));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(DebError::Io(path.to_path_buf(), e));
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as in `take`.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Makes `root` a merged-/usr tree and unpacks every package into it, in order.
fn unpack_all(debs: &[PathBuf], root: &Path) -> Result<(), DebError> {
    make_merged_usr(root)?;
    for d in debs {
        unpack_deb(d, root)?;
    }
    Ok(())
}

/// Creates `root` with `bin`, `sbin` and `lib` as symlinks into `usr/`, as bookworm does.
pub fn make_merged_usr(root: &Path) -> Result<(), DebError> {
    for d in [
        "usr/bin", "usr/sbin", "usr/lib", "etc", "tmp", "dev", "proc",
    ] {
        let p = root.join(d);
        std::fs::create_dir_all(&p).map_err(io_err(&p))?;
    }
    for (link, target) in [("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")] {
        let p = root.join(link);
        if std::fs::symlink_metadata(&p).is_err() {
            std::os::unix::fs::symlink(target, &p).map_err(io_err(&p))?;
        }
    }
    Ok(())
}

/// Unpacks the files of one `.deb` (its `data.tar.*` member) into `root`.
pub fn unpack_deb(deb: &Path, root: &Path) -> Result<(), DebError> {
    let bytes = std::fs::read(deb).map_err(io_err(deb))?;
    let not_deb = |why: String| DebError::NotDeb(deb.to_path_buf(), why);
    let members = ar::members(&mut Cursor::new(&bytes)).map_err(|e| not_deb(e.to_string()))?;
    let data = members
        .iter()
        .find(|m| m.name.starts_with("data.tar"))
        .ok_or_else(|| not_deb("no data.tar member".into()))?;
    let start = usize::try_from(data.offset).ok();
    let end = usize::try_from(data.offset.saturating_add(data.size)).ok();
    let raw = match (start, end) {
        (Some(s), Some(e)) if e <= bytes.len() => &bytes[s..e],
        _ => return Err(not_deb(format!("{} runs past the end", data.name))),
    };
    let tar = decompress(&data.name, raw).map_err(|e| not_deb(format!("{}: {e}", data.name)))?;
    unpack_tar(&tar, root).map_err(|e| match e {
        DebError::BadEntry(_, n, why) => DebError::BadEntry(deb.to_path_buf(), n, why),
        e => e,
    })
}

/// Decompresses a `data.tar.*` member by its name's suffix.
fn decompress(name: &str, raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len() * 4);
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("tar") => out.extend_from_slice(raw),
        Some("xz") => {
            lzma_rs::xz_decompress(&mut Cursor::new(raw), &mut out).map_err(|e| e.to_string())?
        }
        Some("zst") => {
            let mut d = ruzstd::decoding::StreamingDecoder::new(Cursor::new(raw))
                .map_err(|e| e.to_string())?;
            d.read_to_end(&mut out).map_err(|e| e.to_string())?;
        }
        Some("gz") => {
            flate2::read::GzDecoder::new(raw)
                .read_to_end(&mut out)
                .map_err(|e| e.to_string())?;
        }
        _ => return Err("unknown compression".into()),
    }
    Ok(out)
}

/// Unpacks a tar archive into `root`: directories, regular files (mode kept, without
/// set-id bits), symlinks (targets kept verbatim) and hard links. Devices and FIFOs are
/// skipped: a sysroot is read by an emulator, not booted.
pub fn unpack_tar(tar: &[u8], root: &Path) -> Result<(), DebError> {
    let bad = |name: &Path, why: String| {
        DebError::BadEntry(PathBuf::new(), name.display().to_string(), why)
    };
    let mut archive = tar::Archive::new(Cursor::new(tar));
    let entries = archive
        .entries()
        .map_err(|e| bad(Path::new("<archive>"), e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(Path::new("<archive>"), e.to_string()))?;
        let name = entry
            .path()
            .map_err(|e| bad(Path::new("<name>"), e.to_string()))?
            .into_owned();
        let Some(rel) = clean_relative(&name) else {
            return Err(bad(&name, "path leaves the root".into()));
        };
        if rel.as_os_str().is_empty() {
            continue; // "./" itself
        }
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                resolve_in_root(root, &rel, true).map_err(|e| bad(&name, e))?;
            }
            T::Regular | T::Continuous | T::Symlink | T::Link => {
                let parent = rel.parent().unwrap_or(Path::new(""));
                let Some(file_name) = rel.file_name() else {
                    return Err(bad(&name, "no file name".into()));
                };
                let dir = resolve_in_root(root, parent, true).map_err(|e| bad(&name, e))?;
                let dst = dir.join(file_name);
                remove_existing(&dst).map_err(|e| bad(&name, e.to_string()))?;
                if kind == T::Symlink {
                    let target = entry
                        .link_name()
                        .ok()
                        .flatten()
                        .ok_or_else(|| bad(&name, "symlink without target".into()))?;
                    std::os::unix::fs::symlink(&target, &dst).map_err(io_err(&dst))?;
                } else if kind == T::Link {
                    let target = entry
                        .link_name()
                        .ok()
                        .flatten()
                        .and_then(|t| clean_relative(&t))
                        .ok_or_else(|| bad(&name, "hard link without a target inside".into()))?;
                    let src = resolve_in_root(root, &target, false).map_err(|e| bad(&name, e))?;
                    if std::fs::hard_link(&src, &dst).is_err() {
                        std::fs::copy(&src, &dst).map_err(io_err(&dst))?;
                    }
                } else {
                    let mut f = std::fs::File::create(&dst).map_err(io_err(&dst))?;
                    std::io::copy(&mut entry, &mut f).map_err(io_err(&dst))?;
                    use std::os::unix::fs::PermissionsExt;
                    f.set_permissions(std::fs::Permissions::from_mode(mode | 0o200))
                        .map_err(io_err(&dst))?;
                }
            }
            _ => log::debug!("skipping {} ({kind:?})", name.display()),
        }
    }
    Ok(())
}

fn remove_existing(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(_) => Ok(()),
    }
}

/// `name` relative to the root, with `.` removed; `None` if `..` would climb above it.
fn clean_relative(name: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
        }
    }
    Some(out)
}

/// The host path of directory (or, with `create == false`, any file) `rel` inside `root`,
/// following symlinks as if `root` were `/`: an absolute target restarts at `root`, `..`
/// stops there. With `create`, missing directories are made.
pub fn resolve_in_root(root: &Path, rel: &Path, create: bool) -> Result<PathBuf, String> {
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, rel);
    let mut cur: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let mut host = root.to_path_buf();
        host.extend(&cur);
        host.push(&c);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err("too many levels of symbolic links".into());
                }
                let target = std::fs::read_link(&host).map_err(|e| e.to_string())?;
                if target.is_absolute() {
                    cur.clear();
                }
                push_components(&mut todo, &target);
            }
            Ok(m) if m.is_dir() || todo.is_empty() => cur.push(c),
            Ok(_) => return Err(format!("{} is not a directory", host.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                std::fs::create_dir(&host).map_err(|e| format!("{}: {e}", host.display()))?;
                cur.push(c);
            }
            Err(e) => return Err(format!("{}: {e}", host.display())),
        }
    }
    let mut host = root.to_path_buf();
    host.extend(&cur);
    Ok(host)
}

/// Pushes `p`'s components onto the stack `todo` so that the first is popped first.
fn push_components(todo: &mut Vec<OsString>, p: &Path) {
    let parts: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    todo.extend(parts.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("armboard-deb-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o755);
            match kind {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    h.set_size(0);
                    b.append_link(&mut h, name, data).unwrap();
                }
                _ => {
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, name, data.as_bytes()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpacks_into_merged_usr_with_symlinks_and_hard_links() {
        use tar::EntryType as T;
        let root = tmpdir("merged");
        make_merged_usr(&root).unwrap();
        let t = tar_of(&[
            ("./", T::Directory, ""),
            ("./bin/", T::Directory, ""),
            ("./bin/busybox", T::Regular, "BB"),
            (
                "./lib/ld-linux-aarch64.so.1",
                T::Symlink,
                "aarch64-linux-gnu/ld.so",
            ),
            ("./lib/aarch64-linux-gnu/ld.so", T::Regular, "LD"),
            ("./usr/bin/sh", T::Link, "./bin/busybox"),
        ]);
        unpack_tar(&t, &root).unwrap();
        // bin/ went through the bin -> usr/bin symlink, which stays a symlink.
        assert!(std::fs::symlink_metadata(root.join("bin"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(root.join("usr/bin/busybox")).unwrap(), b"BB");
        assert_eq!(std::fs::read(root.join("usr/bin/sh")).unwrap(), b"BB");
        let ld = root.join("usr/lib/ld-linux-aarch64.so.1");
        assert_eq!(
            std::fs::read_link(&ld).unwrap(),
            Path::new("aarch64-linux-gnu/ld.so")
        );
        assert_eq!(std::fs::read(&ld).unwrap(), b"LD");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn never_writes_outside_the_root() {
        use tar::EntryType as T;
        let root = tmpdir("escape");
        let outside = tmpdir("escape-outside");
        std::fs::create_dir_all(root.join("r")).unwrap();
        // An absolute symlink is resolved inside the root, not on the host.
        let t = tar_of(&[
            ("./evil", T::Symlink, outside.to_str().unwrap()),
            ("./evil/x", T::Regular, "X"),
        ]);
        unpack_tar(&t, &root.join("r")).unwrap();
        assert!(!outside.join("x").exists());
        let inside = root.join("r").join(outside.strip_prefix("/").unwrap());
        assert_eq!(std::fs::read(inside.join("x")).unwrap(), b"X");
        // `..` that climbs out of the root is refused.
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_entry_type(T::Regular);
        let mut raw = h.as_bytes().to_vec();
        raw[..7].copy_from_slice(b"../boom");
        let mut hh = tar::Header::from_byte_slice(&raw[..512]).clone();
        hh.set_cksum();
        let mut t = hh.as_bytes().to_vec();
        t.extend([b'y'; 512]);
        t.extend([0u8; 1024]);
        assert!(matches!(
            unpack_tar(&t, &root.join("r")),
            Err(DebError::BadEntry(..))
        ));
        assert!(!root.join("boom").exists());
        let _ = std::fs::remove_dir_all(&root);
        let _ = std::fs::remove_dir_all(&outside);
    }

    #[test]
    fn decompresses_xz_gzip_and_plain_members() {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b"hello tar").unwrap();
        let gz = e.finish().unwrap();
        assert_eq!(decompress("data.tar.gz", &gz).unwrap(), b"hello tar");
        assert_eq!(decompress("data.tar", b"raw").unwrap(), b"raw");
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &b"hello xz"[..], &mut xz).unwrap();
        assert_eq!(decompress("data.tar.xz", &xz).unwrap(), b"hello xz");
        assert!(decompress("data.tar.lz4", b"x").is_err());
    }

    #[test]
    fn request_keys_ignore_order_and_duplicates() {
        assert_eq!(
            request_key(&["b", "a", "b"]).unwrap(),
            request_key(&["a", "b"]).unwrap()
        );
        assert!(matches!(request_key(&[]), Err(DebError::NoPackages)));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
