//! An initramfs: a set of entries (directories, files, symlinks, device nodes) written as a
//! newc cpio archive, optionally gzip-compressed, for the kernel to unpack as its rootfs.
//!
//! Entries are kept sorted by path and missing parent directories are added, so the kernel
//! always meets a directory before what is in it. Everything is owned by root, with mtime 0:
//! the same entries give the same bytes.

use crate::cpio::{CpioError, CpioWriter};
use crate::kernel::Module;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    CharDev(u32, u32),
    BlockDev(u32, u32),
}

/// One entry: its kind and permission bits (0o755, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub perm: u32,
}

/// Why an initramfs could not be built.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("{0}: {1}")]
    Io(std::path::PathBuf, std::io::Error),
    #[error("bad initramfs path {0:?}")]
    BadPath(String),
    #[error("{0:?} is needed as a directory but is a {1}")]
    NotADirectory(String, &'static str),
    #[error(transparent)]
    Cpio(#[from] CpioError),
}

/// Whether to compress the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

/// The entries of an initramfs, by path (relative to its root, no leading `/`).
#[derive(Clone, Debug, Default)]
pub struct Initramfs {
    entries: BTreeMap<String, Entry>,
}

/// `/a//b/` → `a/b`; rejects empty, `.` and `..` components.
fn clean(path: &str) -> Result<String, InitramfsError> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty()
        || parts
            .iter()
            .any(|p| *p == "." || *p == ".." || p.contains('\0'))
    {
        return Err(InitramfsError::BadPath(path.to_string()));
    }
    Ok(parts.join("/"))
}

impl Initramfs {
    pub fn new() -> Initramfs {
        Initramfs::default()
    }

    /// Adds (or replaces) `path`, creating missing parent directories (0o755).
    pub fn add(&mut self, path: &str, entry: Entry) -> Result<&mut Initramfs, InitramfsError> {
        let path = clean(path)?;
        let mut parent = String::new();
        let comps: Vec<&str> = path.split('/').collect();
        for c in &comps[..comps.len() - 1] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(c);
            match self.entries.get(&parent).map(|e| &e.kind) {
                None => {
                    self.entries.insert(
                        parent.clone(),
                        Entry {
                            kind: Kind::Dir,
                            perm: 0o755,
                        },
                    );
                }
                Some(Kind::Dir) => {}
                Some(k) => return Err(InitramfsError::NotADirectory(parent, kind_name(k))),
            }
        }
        self.entries.insert(path, entry);
        Ok(self)
    }

    pub fn dir(&mut self, path: &str, perm: u32) -> Result<&mut Initramfs, InitramfsError> {
        self.add(
            path,
            Entry {
                kind: Kind::Dir,
                perm,
            },
        )
    }

    pub fn file(
        &mut self,
        path: &str,
        perm: u32,
        data: impl Into<Vec<u8>>,
    ) -> Result<&mut Initramfs, InitramfsError> {
        self.add(
            path,
            Entry {
                kind: Kind::File(data.into()),
                perm,
            },
        )
    }

    /// A file whose contents are read from `host` now.
    pub fn file_from_host(
        &mut self,
        path: &str,
        perm: u32,
        host: &Path,
    ) -> Result<&mut Initramfs, InitramfsError> {
        let data = std::fs::read(host).map_err(|e| InitramfsError::Io(host.to_path_buf(), e))?;
        self.file(path, perm, data)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<&mut Initramfs, InitramfsError> {
        self.add(
            path,
            Entry {
                kind: Kind::Symlink(target.to_string()),
                perm: 0o777,
            },
        )
    }

    pub fn char_dev(
        &mut self,
        path: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> Result<&mut Initramfs, InitramfsError> {
        self.add(
            path,
            Entry {
                kind: Kind::CharDev(major, minor),
                perm,
            },
        )
    }

    pub fn block_dev(
        &mut self,
        path: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> Result<&mut Initramfs, InitramfsError> {
        self.add(
            path,
            Entry {
                kind: Kind::BlockDev(major, minor),
                perm,
            },
        )
    }

    /// The entry at `path`.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(&clean(path).ok()?)
    }

    /// The paths, in archive order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// A root for a static busybox: `/bin/busybox`, `/bin/sh` → busybox, the `/init`
    /// script (run by the kernel as PID 1), `/dev/console` (char 5:1, which the kernel opens
    /// for init's stdin/stdout/stderr before starting it), `/dev/null` and empty
    /// `/proc`, `/sys`, `/tmp`, `/root`, `/etc`. The script can run
    /// `/bin/busybox --install -s` to get the other applets.
    pub fn busybox(busybox: &Path, init: &str) -> Result<Initramfs, InitramfsError> {
        let mut r = Initramfs::new();
        r.file_from_host("bin/busybox", 0o755, busybox)?
            .symlink("bin/sh", "busybox")?
            .symlink("sbin", "bin")?
            .file("init", 0o755, init)?
            .dir("dev", 0o755)?
            .char_dev("dev/console", 0o600, 5, 1)?
            .char_dev("dev/null", 0o666, 1, 3)?;
        for d in ["proc", "sys", "tmp", "root", "etc", "mnt"] {
            r.dir(d, 0o755)?;
        }
        Ok(r)
    }

    /// Puts `mods` (in load order, from [`crate::kernel::ModuleSet::resolve`]) into `dir`
    /// as `<name>.ko` and returns the shell lines that load them in order
    /// (`insmod /lib/modules/virtio_blk.ko`).
    pub fn modules(&mut self, dir: &str, mods: &[Module]) -> Result<String, InitramfsError> {
        let dir = clean(dir)?;
        let mut script = String::new();
        for m in mods {
            let p = format!("{dir}/{}", m.file_name);
            self.file(&p, 0o644, m.data.clone())?;
            script.push_str(&format!("insmod /{p}\n"));
        }
        Ok(script)
    }

    /// The uncompressed newc archive.
    pub fn to_cpio(&self) -> Result<Vec<u8>, InitramfsError> {
        let w = self.write_entries(CpioWriter::new(Vec::new()))?;
        Ok(w.finish()?)
    }

    /// The archive, compressed as asked.
    pub fn to_bytes(&self, c: Compression) -> Result<Vec<u8>, InitramfsError> {
        match c {
            Compression::None => self.to_cpio(),
            Compression::Gzip => {
                let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                let w = self.write_entries(CpioWriter::new(gz))?.finish()?;
                Ok(w.finish().map_err(CpioError::from)?)
            }
        }
    }

    /// Writes the archive to the file `path`.
    pub fn write_to(&self, path: &Path, c: Compression) -> Result<(), InitramfsError> {
        let bytes = self.to_bytes(c)?;
        let mut f = std::fs::File::create(path).map_err(|e| InitramfsError::Io(path.into(), e))?;
        f.write_all(&bytes)
            .map_err(|e| InitramfsError::Io(path.into(), e))
    }

    fn write_entries<W: Write>(
        &self,
        mut w: CpioWriter<W>,
    ) -> Result<CpioWriter<W>, InitramfsError> {
        for (path, e) in &self.entries {
            let perm = e.perm & 0o7777;
            match &e.kind {
                Kind::Dir => w.dir(path, perm)?,
                Kind::File(d) => w.file(path, perm, d)?,
                Kind::Symlink(t) => w.symlink(path, t)?,
                Kind::CharDev(ma, mi) => w.char_dev(path, perm, *ma, *mi)?,
                Kind::BlockDev(ma, mi) => w.block_dev(path, perm, *ma, *mi)?,
            }
        }
        Ok(w)
    }
}

fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Dir => "directory",
        Kind::File(_) => "file",
        Kind::Symlink(_) => "symlink",
        Kind::CharDev(..) => "character device",
        Kind::BlockDev(..) => "block device",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpio::mode::*;
    use crate::cpio::read_newc;
    use std::io::Read;

    #[test]
    fn adds_parents_first_and_sorted() {
        let mut r = Initramfs::new();
        r.file("/usr/lib/x/y.txt", 0o644, "y").unwrap();
        r.symlink("bin/sh", "busybox").unwrap();
        r.dir("usr", 0o700).unwrap();
        let paths: Vec<&str> = r.paths().collect();
        assert_eq!(
            paths,
            [
                "bin",
                "bin/sh",
                "usr",
                "usr/lib",
                "usr/lib/x",
                "usr/lib/x/y.txt"
            ]
        );
        assert_eq!(r.get("/usr").unwrap().perm, 0o700);
        assert!(matches!(
            r.file("bin/sh/z", 0o644, "z"),
            Err(InitramfsError::NotADirectory(p, "symlink")) if p == "bin/sh"
        ));
        assert!(matches!(
            r.file("a/../b", 0o644, ""),
            Err(InitramfsError::BadPath(_))
        ));
        assert!(matches!(r.dir("/", 0o755), Err(InitramfsError::BadPath(_))));
    }

    #[test]
    fn gzip_archive_decompresses_to_the_plain_one() {
        let mut r = Initramfs::new();
        r.file("init", 0o755, "#!/bin/sh\nexec sh\n")
            .unwrap()
            .char_dev("dev/console", 0o600, 5, 1)
            .unwrap();
        let plain = r.to_cpio().unwrap();
        let gz = r.to_bytes(Compression::Gzip).unwrap();
        assert!(gz.starts_with(&[0x1f, 0x8b]));
        let mut un = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut un)
            .unwrap();
        assert_eq!(un, plain);
        let e = read_newc(&plain).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].name, "dev");
        assert_eq!(e[1].meta.mode, S_IFCHR | 0o600);
        assert_eq!(e[2].meta.mode, S_IFREG | 0o755);
    }
}
