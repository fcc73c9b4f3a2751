//! The Unix `ar` archive container, as used by Debian packages (`.deb`).
//!
//! Layout: the magic `!<arch>\n`, then members, each a 60-byte header — name (16 bytes),
//! mtime (12), uid (6), gid (6), octal mode (8), decimal size (10), the terminator `` `\n ``
//! — followed by `size` bytes of data and one padding byte when `size` is odd. Names are
//! space padded; GNU ar ends them with `/`. Debian packages only use short names, so the
//! GNU and BSD long-name extensions are not needed.

use std::io::{self, Read, Seek, SeekFrom};

const MAGIC: &[u8; 8] = b"!<arch>\n";
const HEADER_LEN: usize = 60;

/// Why an `ar` archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArError {
    #[error("not an ar archive (bad magic)")]
    BadMagic,
    #[error("malformed ar member header at offset {0}")]
    BadHeader(u64),
    #[error("reading the archive: {0}")]
    Io(#[from] io::Error),
}

/// One member: its name and where its data lies in the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Offset of the data from the start of the archive.
    pub offset: u64,
    pub size: u64,
}

/// Lists the members of the archive read by `r`.
pub fn members<R: Read + Seek>(r: &mut R) -> Result<Vec<Member>, ArError> {
    r.seek(SeekFrom::Start(0))?;
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(|_| ArError::BadMagic)?;
    if &magic != MAGIC {
        return Err(ArError::BadMagic);
    }
    let mut out = Vec::new();
    let mut pos = MAGIC.len() as u64;
    loop {
        let mut hdr = [0u8; HEADER_LEN];
        match read_full(r, &mut hdr)? {
            0 => break,
            HEADER_LEN => {}
            _ => return Err(ArError::BadHeader(pos)),
        }
        if &hdr[58..60] != b"`\n" {
            return Err(ArError::BadHeader(pos));
        }
        let name = std::str::from_utf8(&hdr[0..16])
            .map_err(|_| ArError::BadHeader(pos))?
            .trim_end_matches(' ')
            .trim_end_matches('/')
            .to_string();
        let size: u64 = std::str::from_utf8(&hdr[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or(ArError::BadHeader(pos))?;
        let offset = pos + HEADER_LEN as u64;
        let next = offset
            .checked_add(size)
            .and_then(|e| e.checked_add(size & 1))
            .ok_or(ArError::BadHeader(pos))?;
        out.push(Member { name, offset, size });
        r.seek(SeekFrom::Start(next))?;
        pos = next;
    }
    Ok(out)
}

/// Reads as many bytes as are there, up to `buf.len()`; returns how many.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn header(name: &str, size: usize) -> Vec<u8> {
        let h = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            name, 0, 0, 0, 100644, size
        );
        assert_eq!(h.len(), HEADER_LEN);
        h.into_bytes()
    }

    #[test]
    fn lists_members_with_odd_size_padding() {
        let mut a = MAGIC.to_vec();
        a.extend(header("debian-binary", 4));
        a.extend(b"2.0\n");
        a.extend(header("control.tar.xz/", 3));
        a.extend(b"abc\n"); // 3 bytes of data + 1 padding byte
        a.extend(header("data.tar.zst", 2));
        a.extend(b"xy");
        let m = members(&mut Cursor::new(&a)).unwrap();
        let names: Vec<_> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["debian-binary", "control.tar.xz", "data.tar.zst"]);
        assert_eq!(&a[m[1].offset as usize..][..3], b"abc");
        assert_eq!(&a[m[2].offset as usize..][..2], b"xy");
    }

    #[test]
    fn rejects_bad_magic_and_truncated_header() {
        assert!(matches!(
            members(&mut Cursor::new(b"\x7fELF....")),
            Err(ArError::BadMagic)
        ));
        let mut a = MAGIC.to_vec();
        a.extend(&header("x", 1)[..30]);
        assert!(matches!(
            members(&mut Cursor::new(&a)),
            Err(ArError::BadHeader(8))
        ));
    }
}
