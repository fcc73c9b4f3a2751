//! The "newc" cpio format (`070701`), which Linux unpacks as an initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Each entry is a 110-byte ASCII header, the NUL-terminated name, padding to 4 bytes, the
//! data, padding to 4 bytes. The header is `070701` followed by 13 eight-digit hex fields:
//!
//! ```text
//! ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
//! ```
//!
//! The archive ends with an entry named `TRAILER!!!`. Device nodes are just headers, so an
//! archive holding `/dev/console` (char 5:1) is written without root privileges.

use std::io::Write;

const MAGIC: &[u8; 6] = b"070701";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";

/// File type bits of `mode` (as in `st_mode`).
pub mod mode {
    pub const S_IFMT: u32 = 0o170000;
    pub const S_IFDIR: u32 = 0o040000;
    pub const S_IFREG: u32 = 0o100000;
    pub const S_IFLNK: u32 = 0o120000;
    pub const S_IFCHR: u32 = 0o020000;
    pub const S_IFBLK: u32 = 0o060000;
}

/// Why an archive could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CpioError {
    #[error("bad cpio entry name {0:?}")]
    BadName(String),
    #[error("{0:?}: {1} bytes do not fit in a newc header")]
    TooLarge(String, usize),
    #[error("writing the archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed cpio archive at offset {offset:#x}: {why}")]
    Malformed { offset: usize, why: String },
}

/// One entry's metadata (what the header says besides name and size).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Meta {
    /// File type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
    /// Device number, for character and block device nodes.
    pub rdev: (u32, u32),
}

/// Writes a newc archive entry by entry.
pub struct CpioWriter<W: Write> {
    out: W,
    ino: u32,
    offset: usize,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> CpioWriter<W> {
        CpioWriter {
            out,
            ino: 0,
            offset: 0,
        }
    }

    /// A directory (`perm` is the permission bits, e.g. 0o755).
    pub fn dir(&mut self, name: &str, perm: u32) -> Result<(), CpioError> {
        self.entry(name, meta(mode::S_IFDIR | perm), &[])
    }

    /// A regular file.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> Result<(), CpioError> {
        self.entry(name, meta(mode::S_IFREG | perm), data)
    }

    /// A symbolic link to `target` (kept verbatim).
    pub fn symlink(&mut self, name: &str, target: &str) -> Result<(), CpioError> {
        self.entry(name, meta(mode::S_IFLNK | 0o777), target.as_bytes())
    }

    /// A character device node `major:minor`.
    pub fn char_dev(
        &mut self,
        name: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), CpioError> {
        let m = Meta {
            rdev: (major, minor),
            ..meta(mode::S_IFCHR | perm)
        };
        self.entry(name, m, &[])
    }

    /// A block device node `major:minor`.
    pub fn block_dev(
        &mut self,
        name: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), CpioError> {
        let m = Meta {
            rdev: (major, minor),
            ..meta(mode::S_IFBLK | perm)
        };
        self.entry(name, m, &[])
    }

    /// Any entry. `name` is relative to the archive root (a leading `/` is dropped).
    pub fn entry(&mut self, name: &str, m: Meta, data: &[u8]) -> Result<(), CpioError> {
        let name = name.trim_start_matches('/');
        let bad = name.is_empty()
            || name.contains('\0')
            || name == TRAILER
            || name.split('/').any(|c| c == "..");
        if bad {
            return Err(CpioError::BadName(name.to_string()));
        }
        self.ino += 1;
        let nlink = if m.mode & mode::S_IFMT == mode::S_IFDIR {
            2
        } else {
            1
        };
        self.raw(name, m, nlink, self.ino, data)
    }

    fn raw(
        &mut self,
        name: &str,
        m: Meta,
        nlink: u32,
        ino: u32,
        data: &[u8],
    ) -> Result<(), CpioError> {
        let size = u32::try_from(data.len())
            .map_err(|_| CpioError::TooLarge(name.to_string(), data.len()))?;
        let namesize = (name.len() + 1) as u32;
        let mut h = String::with_capacity(HEADER_LEN);
        h.push_str("070701");
        for f in [
            ino, m.mode, m.uid, m.gid, nlink, m.mtime, size, 0, 0, m.rdev.0, m.rdev.1, namesize, 0,
        ] {
            h.push_str(&format!("{f:08x}"));
        }
        self.put(h.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, b: &[u8]) -> Result<(), CpioError> {
        self.out.write_all(b)?;
        self.offset += b.len();
        Ok(())
    }

    fn pad(&mut self) -> Result<(), CpioError> {
        let n = (4 - self.offset % 4) % 4;
        self.put(&[0; 3][..n])
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> Result<W, CpioError> {
        self.raw(TRAILER, Meta::default(), 1, 0, &[])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn meta(mode: u32) -> Meta {
    Meta {
        mode,
        ..Meta::default()
    }
}

/// An entry read back from an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpioEntry {
    pub name: String,
    pub meta: Meta,
    pub nlink: u32,
    pub data: Vec<u8>,
}

/// Reads a newc archive up to its trailer (bounds-checked; a malformed archive is an error).
pub fn read_newc(b: &[u8]) -> Result<Vec<CpioEntry>, CpioError> {
    let mut at = 0usize;
    let mut out = Vec::new();
    let bad = |offset: usize, why: &str| CpioError::Malformed {
        offset,
        why: why.to_string(),
    };
    loop {
        let h = at
            .checked_add(HEADER_LEN)
            .and_then(|e| b.get(at..e))
            .ok_or_else(|| bad(at, "truncated header"))?;
        if &h[..6] != MAGIC {
            return Err(bad(at, "no 070701 magic"));
        }
        let mut f = [0u32; 13];
        for (i, v) in f.iter_mut().enumerate() {
            let s = std::str::from_utf8(&h[6 + i * 8..14 + i * 8])
                .ok()
                .and_then(|s| u32::from_str_radix(s, 16).ok())
                .ok_or_else(|| bad(at + 6 + i * 8, "field is not hex"))?;
            *v = s;
        }
        let (size, namesize) = (f[6] as usize, f[11] as usize);
        let name_at = at + HEADER_LEN;
        let name = name_at
            .checked_add(namesize)
            .and_then(|e| b.get(name_at..e))
            .and_then(|n| n.strip_suffix(&[0]))
            .and_then(|n| std::str::from_utf8(n).ok())
            .ok_or_else(|| bad(name_at, "bad name"))?;
        let data_at = align4(name_at + namesize);
        let data = data_at
            .checked_add(size)
            .and_then(|e| b.get(data_at..e))
            .ok_or_else(|| bad(data_at, "data runs past the end"))?;
        at = align4(data_at + size);
        if name == TRAILER {
            return Ok(out);
        }
        out.push(CpioEntry {
            name: name.to_string(),
            meta: Meta {
                mode: f[1],
                uid: f[2],
                gid: f[3],
                mtime: f[5],
                rdev: (f[9], f[10]),
            },
            nlink: f[4],
            data: data.to_vec(),
        });
    }
}

fn align4(v: usize) -> usize {
    v.saturating_add(3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back_every_kind() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("dev", 0o755).unwrap();
        w.char_dev("/dev/console", 0o600, 5, 1).unwrap();
        w.block_dev("dev/vda", 0o660, 254, 0).unwrap();
        w.file("init", 0o755, b"#!/bin/sh\n").unwrap();
        w.symlink("bin/sh", "busybox").unwrap();
        let b = w.finish().unwrap();
        assert_eq!(b.len() % 4, 0);
        assert!(b.starts_with(b"070701"));
        let e = read_newc(&b).unwrap();
        let names: Vec<&str> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["dev", "dev/console", "dev/vda", "init", "bin/sh"]);
        assert_eq!(e[0].meta.mode, 0o040755);
        assert_eq!(e[1].meta.mode, 0o020600);
        assert_eq!(e[1].meta.rdev, (5, 1));
        assert_eq!(e[2].meta.mode & mode::S_IFMT, mode::S_IFBLK);
        assert_eq!(e[3].data, b"#!/bin/sh\n");
        assert_eq!(e[4].meta.mode, 0o120777);
        assert_eq!(e[4].data, b"busybox");
    }

    #[test]
    fn rejects_bad_names_and_malformed_archives() {
        let mut w = CpioWriter::new(Vec::new());
        for n in ["", "/", "a/../b", "TRAILER!!!", "x\0y"] {
            assert!(
                matches!(w.file(n, 0o644, b""), Err(CpioError::BadName(_))),
                "{n:?}"
            );
        }
        w.file("a", 0o644, b"hello").unwrap();
        let b = w.finish().unwrap();
        for n in 0..b.len() {
            assert!(read_newc(&b[..n]).is_err(), "truncated to {n}");
        }
        let mut c = b.clone();
        c[10] = b'z';
        assert!(read_newc(&c).is_err());
    }
}
