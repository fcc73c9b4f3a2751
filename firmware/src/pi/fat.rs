//! A read-only FAT12/16/32 reader (Microsoft's "FAT: General Overview of On-Disk Format"),
//! enough for what the Pi firmware reads from the boot partition: files by path, in
//! subdirectories, with VFAT long names, looked up case-insensitively.
//!
//! ```text
//! boot sector (BPB, little-endian)
//!   11 u16 bytes/sector   13 u8 sectors/cluster   14 u16 reserved sectors   16 u8 FATs
//!   17 u16 root entries (0 on FAT32)   19 u16 total sectors (0: see 32)   22 u16 FAT size
//!   32 u32 total sectors   FAT32 only: 36 u32 FAT size, 40 u16 flags, 44 u32 root cluster
//!   510 55 aa
//! layout: reserved | FAT x n | root directory (FAT12/16) | data (clusters 2..)
//! directory entry (32 bytes): 0 name[8] ext[3], 11 attr, 12 case flags, 20 u16 cluster hi,
//!   26 u16 cluster lo, 28 u32 size; attr 0x0f = a long-name piece (13 UCS-2 chars)
//! ```
//!
//! The FAT type follows from the cluster count, as the specification says. Every offset is
//! checked against the volume; cluster chains are bounded by the cluster count, so a loop
//! or a crafted size is an error, never a hang or a huge allocation.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Files larger than this are not read (no boot file comes close).
pub const MAX_FILE: u64 = 1 << 30;
/// The most entries a directory may have (the specification's limit).
const MAX_DIR_ENTRIES: usize = 65536;

/// Why the volume or a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FatError {
    #[error("reading the FAT volume at byte {at:#x}: {source}")]
    Io { at: u64, source: io::Error },
    #[error("not a FAT file system: {0}")]
    NotFat(String),
    #[error("corrupt FAT file system: {0}")]
    Corrupt(String),
    #[error("{0}: no such file or directory on the FAT partition")]
    NotFound(String),
    #[error("{0}: not a directory")]
    NotDir(String),
    #[error("{0}: is a directory")]
    IsDir(String),
    #[error("{path}: {size} bytes, larger than the {max}-byte limit")]
    TooLarge { path: String, size: u64, max: u64 },
}

/// Where a volume's bytes come from.
pub trait Storage: Send + Sync {
    /// Fills `buf` from byte `at`; short reads are errors.
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()>;
}

impl Storage for File {
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, at)
    }
}

impl Storage for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        let src = usize::try_from(at)
            .ok()
            .and_then(|s| Some(s..s.checked_add(buf.len())?))
            .and_then(|r| self.get(r))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatKind {
    Fat12,
    Fat16,
    Fat32,
}

/// A directory entry (its long name when it has one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The long name, or the 8.3 name (lower-cased parts as the NT case flags say).
    pub name: String,
    /// The 8.3 name as stored (`KERNEL8 IMG` shown as `KERNEL8.IMG`).
    pub short_name: String,
    pub is_dir: bool,
    pub size: u32,
    pub first_cluster: u32,
}

/// Where a directory's entries are.
#[derive(Clone, Copy)]
enum DirLoc {
    /// The fixed FAT12/16 root directory: (byte offset in the volume, length).
    FixedRoot(u64, u64),
    Chain(u32),
}

/// A FAT volume: a byte range of an image.
pub struct FatVolume {
    storage: Box<dyn Storage>,
    /// Byte offset of the volume in the storage.
    base: u64,
    kind: FatKind,
    bytes_per_sector: u64,
    cluster_bytes: u64,
    /// Byte offset of the (active) FAT in the volume.
    fat_offset: u64,
    fat_bytes: u64,
    root: DirLoc,
    /// Byte offset of cluster 2.
    data_offset: u64,
    cluster_count: u32,
}

impl std::fmt::Debug for FatVolume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FatVolume")
            .field("kind", &self.kind)
            .field("base", &self.base)
            .field("cluster_bytes", &self.cluster_bytes)
            .field("cluster_count", &self.cluster_count)
            .finish()
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl FatVolume {
    /// Opens the FAT volume at bytes `offset..offset+len` of `storage`.
    pub fn open(storage: Box<dyn Storage>, offset: u64, len: u64) -> Result<FatVolume, FatError> {
        let mut bs = [0u8; 512];
        if len < 512 {
            return Err(FatError::NotFat(format!(
                "the partition is {len} bytes, shorter than a boot sector"
            )));
        }
        storage
            .read_exact_at(&mut bs, offset)
            .map_err(|source| FatError::Io { at: offset, source })?;
        let not_fat = |why: String| Err(FatError::NotFat(why));
        if bs[510] != 0x55 || bs[511] != 0xaa {
            return not_fat(format!(
                "boot sector ends with {:02x} {:02x}, not 55 aa",
                bs[510], bs[511]
            ));
        }
        let bps = le16(&bs, 11);
        let spc = bs[13];
        let reserved = le16(&bs, 14);
        let nfats = bs[16];
        let root_entries = le16(&bs, 17);
        let total16 = le16(&bs, 19);
        let fat16 = le16(&bs, 22);
        let total32 = le32(&bs, 32);
        if !matches!(bps, 512 | 1024 | 2048 | 4096) {
            return not_fat(format!("{bps} bytes per sector (512..4096, a power of 2)"));
        }
        if spc == 0 || !spc.is_power_of_two() {
            return not_fat(format!("{spc} sectors per cluster (a power of 2)"));
        }
        if reserved == 0 {
            return not_fat("no reserved sectors".into());
        }
        if nfats == 0 {
            return not_fat("no FATs".into());
        }
        let fat_sectors = if fat16 != 0 {
            u64::from(fat16)
        } else {
            u64::from(le32(&bs, 36))
        };
        let total = if total16 != 0 {
            u64::from(total16)
        } else {
            u64::from(total32)
        };
        if fat_sectors == 0 || total == 0 {
            return not_fat("FAT size or sector count is 0".into());
        }
        let bps64 = u64::from(bps);
        if total * bps64 > len {
            return Err(FatError::Corrupt(format!(
                "the boot sector claims {} bytes but the partition has {len}",
                total * bps64
            )));
        }
        let root_sectors = (u64::from(root_entries) * 32).div_ceil(bps64);
        let meta = u64::from(reserved) + u64::from(nfats) * fat_sectors + root_sectors;
        if meta >= total {
            return Err(FatError::Corrupt(format!(
                "reserved sectors, FATs and root directory ({meta} sectors) fill the whole \
                 {total}-sector volume"
            )));
        }
        let clusters = (total - meta) / u64::from(spc);
        let kind = if clusters < 4085 {
            FatKind::Fat12
        } else if clusters < 65525 {
            FatKind::Fat16
        } else {
            FatKind::Fat32
        };
        let fat_bytes = fat_sectors * bps64;
        // A FAT shorter than needed: only the clusters it covers are usable.
        let entry_limit = match kind {
            FatKind::Fat12 => fat_bytes * 2 / 3,
            FatKind::Fat16 => fat_bytes / 2,
            FatKind::Fat32 => fat_bytes / 4,
        };
        let cluster_count = clusters.min(entry_limit.saturating_sub(2)).min(0x0fff_fff5) as u32;
        let mut fat_index = 0u64;
        let root = match kind {
            FatKind::Fat32 => {
                if root_entries != 0 || fat16 != 0 {
                    return Err(FatError::Corrupt(
                        "FAT32 by cluster count but with a FAT16 root directory or FAT size".into(),
                    ));
                }
                let flags = le16(&bs, 40);
                if flags & 0x80 != 0 {
                    fat_index = u64::from(flags & 0xf);
                    if fat_index >= u64::from(nfats) {
                        return Err(FatError::Corrupt(format!(
                            "active FAT {fat_index} of {nfats}"
                        )));
                    }
                }
                DirLoc::Chain(le32(&bs, 44) & 0x0fff_ffff)
            }
            _ => {
                if root_entries == 0 {
                    return Err(FatError::Corrupt(format!(
                        "{kind:?} volume without root directory entries"
                    )));
                }
                let at = (u64::from(reserved) + u64::from(nfats) * fat_sectors) * bps64;
                DirLoc::FixedRoot(at, u64::from(root_entries) * 32)
            }
        };
        let v = FatVolume {
            storage,
            base: offset,
            kind,
            bytes_per_sector: bps64,
            cluster_bytes: bps64 * u64::from(spc),
            fat_offset: (u64::from(reserved) + fat_index * fat_sectors) * bps64,
            fat_bytes,
            root,
            data_offset: meta * bps64,
            cluster_count,
        };
        if let DirLoc::Chain(c) = root {
            if !v.valid_cluster(c) {
                return Err(FatError::Corrupt(format!(
                    "FAT32 root directory starts at cluster {c}, outside 2..{}",
                    u64::from(cluster_count) + 2
                )));
            }
        }
        Ok(v)
    }

    /// Opens the volume on an image file at `offset`, `len` bytes long.
    pub fn open_file(file: File, offset: u64, len: u64) -> Result<FatVolume, FatError> {
        FatVolume::open(Box::new(file), offset, len)
    }

    /// A volume held in memory (a whole file-system image).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<FatVolume, FatError> {
        let len = bytes.len() as u64;
        FatVolume::open(Box::new(bytes), 0, len)
    }

    pub fn kind(&self) -> FatKind {
        self.kind
    }

    pub fn cluster_bytes(&self) -> u64 {
        self.cluster_bytes
    }

    pub fn sector_bytes(&self) -> u64 {
        self.bytes_per_sector
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> Result<(), FatError> {
        let abs = self.base.saturating_add(at);
        self.storage
            .read_exact_at(buf, abs)
            .map_err(|source| FatError::Io { at: abs, source })
    }

    fn valid_cluster(&self, c: u32) -> bool {
        c >= 2 && u64::from(c) < u64::from(self.cluster_count) + 2
    }

    /// The FAT entry of cluster `c` (already checked valid).
    fn fat_entry(&self, c: u32) -> Result<u32, FatError> {
        let c64 = u64::from(c);
        let (off, n) = match self.kind {
            FatKind::Fat12 => (c64 * 3 / 2, 2),
            FatKind::Fat16 => (c64 * 2, 2),
            FatKind::Fat32 => (c64 * 4, 4),
        };
        if off + n > self.fat_bytes {
            return Err(FatError::Corrupt(format!("cluster {c} is beyond the FAT")));
        }
        let mut b = [0u8; 4];
        self.read_at(&mut b[..n as usize], self.fat_offset + off)?;
        Ok(match self.kind {
            FatKind::Fat12 => {
                let v = u32::from(u16::from_le_bytes([b[0], b[1]]));
                if c & 1 == 1 {
                    v >> 4
                } else {
                    v & 0xfff
                }
            }
            FatKind::Fat16 => u32::from(u16::from_le_bytes([b[0], b[1]])),
            FatKind::Fat32 => u32::from_le_bytes(b) & 0x0fff_ffff,
        })
    }

    fn is_end(&self, v: u32) -> bool {
        match self.kind {
            FatKind::Fat12 => v >= 0xff8,
            FatKind::Fat16 => v >= 0xfff8,
            FatKind::Fat32 => v >= 0x0fff_fff8,
        }
    }

    /// The clusters of the chain starting at `first`, at most `limit` of them. A chain
    /// that revisits a cluster (a loop), links outside the volume or into a free cluster is
    /// an error.
    fn chain(&self, first: u32, limit: u64, what: &str) -> Result<Vec<u32>, FatError> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut c = first;
        loop {
            if !self.valid_cluster(c) {
                return Err(FatError::Corrupt(format!(
                    "{what}: cluster chain reaches cluster {c:#x}, outside 2..{:#x}",
                    u64::from(self.cluster_count) + 2
                )));
            }
            if !seen.insert(c) {
                return Err(FatError::Corrupt(format!(
                    "{what}: cluster chain loops (cluster {c:#x} comes twice)"
                )));
            }
            out.push(c);
            if out.len() as u64 >= limit {
                return Ok(out);
            }
            let next = self.fat_entry(c)?;
            if self.is_end(next) {
                return Ok(out);
            }
            if next == 0 {
                return Err(FatError::Corrupt(format!(
                    "{what}: cluster chain runs into a free cluster (after cluster {c:#x})"
                )));
            }
            c = next;
        }
    }

    fn cluster_offset(&self, c: u32) -> u64 {
        self.data_offset + u64::from(c - 2) * self.cluster_bytes
    }

    /// The raw bytes of a directory.
    fn dir_bytes(&self, loc: DirLoc, what: &str) -> Result<Vec<u8>, FatError> {
        match loc {
            DirLoc::FixedRoot(at, len) => {
                let mut b = vec![0u8; len as usize];
                self.read_at(&mut b, at)?;
                Ok(b)
            }
            DirLoc::Chain(first) => {
                let limit = (MAX_DIR_ENTRIES as u64 * 32).div_ceil(self.cluster_bytes);
                let clusters = self.chain(first, limit, what)?;
                let mut b = vec![0u8; clusters.len() * self.cluster_bytes as usize];
                for (i, &c) in clusters.iter().enumerate() {
                    let cb = self.cluster_bytes as usize;
                    self.read_at(&mut b[i * cb..(i + 1) * cb], self.cluster_offset(c))?;
                }
                Ok(b)
            }
        }
    }

    fn entries(&self, loc: DirLoc, what: &str) -> Result<Vec<DirEntry>, FatError> {
        Ok(parse_dir(&self.dir_bytes(loc, what)?))
    }

    /// The entries of the root directory.
    pub fn root(&self) -> Result<Vec<DirEntry>, FatError> {
        self.entries(self.root, "/")
    }

    /// The entries of directory `path` ("" or "/" is the root).
    pub fn list(&self, path: &str) -> Result<Vec<DirEntry>, FatError> {
        let (loc, _) = self.resolve_dir(path)?;
        self.entries(loc, path)
    }

    fn resolve_dir(&self, path: &str) -> Result<(DirLoc, Option<DirEntry>), FatError> {
        let mut loc = self.root;
        let mut last = None;
        let mut walked = String::new();
        for part in split_path(path) {
            walked.push('/');
            walked.push_str(part);
            let e = self
                .entries(loc, &walked)?
                .into_iter()
                .find(|e| name_matches(e, part))
                .ok_or_else(|| FatError::NotFound(walked.clone()))?;
            if !e.is_dir {
                return Err(FatError::NotDir(walked));
            }
            loc = if e.first_cluster == 0 {
                self.root // ".." of a first-level directory
            } else {
                DirLoc::Chain(e.first_cluster)
            };
            last = Some(e);
        }
        Ok((loc, last))
    }

    /// The entry at `path` (case-insensitive, long or short names), None if absent.
    pub fn lookup(&self, path: &str) -> Result<Option<DirEntry>, FatError> {
        let parts: Vec<&str> = split_path(path).collect();
        let Some((name, dirs)) = parts.split_last() else {
            return Ok(None); // the root itself
        };
        let dir = dirs.join("/");
        let loc = match self.resolve_dir(&dir) {
            Ok((loc, _)) => loc,
            Err(FatError::NotFound(_)) | Err(FatError::NotDir(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(self
            .entries(loc, path)?
            .into_iter()
            .find(|e| name_matches(e, name)))
    }

    /// True if `path` names a file (not a directory). Read errors count as absent.
    pub fn is_file(&self, path: &str) -> bool {
        matches!(self.lookup(path), Ok(Some(e)) if !e.is_dir)
    }

    /// The contents of the file at `path`.
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, FatError> {
        self.read_file_max(path, MAX_FILE)
    }

    /// As [`FatVolume::read_file`], refusing files larger than `max` bytes.
    pub fn read_file_max(&self, path: &str, max: u64) -> Result<Vec<u8>, FatError> {
        let e = self
            .lookup(path)?
            .ok_or_else(|| FatError::NotFound(path.to_string()))?;
        if e.is_dir {
            return Err(FatError::IsDir(path.to_string()));
        }
        let size = u64::from(e.size);
        if size > max {
            return Err(FatError::TooLarge {
                path: path.to_string(),
                size,
                max,
            });
        }
        if size == 0 {
            return Ok(Vec::new());
        }
        let need = size.div_ceil(self.cluster_bytes);
        let clusters = self.chain(e.first_cluster, need, path)?;
        if (clusters.len() as u64) < need {
            return Err(FatError::Corrupt(format!(
                "{path}: {size} bytes but its cluster chain holds only {}",
                clusters.len() as u64 * self.cluster_bytes
            )));
        }
        let mut out = vec![0u8; size as usize];
        let cb = self.cluster_bytes as usize;
        for (i, chunk) in out.chunks_mut(cb).enumerate() {
            self.read_at(chunk, self.cluster_offset(clusters[i]))?;
        }
        Ok(out)
    }
}

fn split_path(path: &str) -> impl Iterator<Item = &str> {
    path.split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
}

fn name_matches(e: &DirEntry, want: &str) -> bool {
    e.name.eq_ignore_ascii_case(want)
        || e.short_name.eq_ignore_ascii_case(want)
        || (!e.name.is_ascii() && e.name.to_lowercase() == want.to_lowercase())
}

/// The checksum of an 8.3 name that its long-name entries carry.
fn lfn_checksum(short: &[u8]) -> u8 {
    short
        .iter()
        .fold(0u8, |s, &c| s.rotate_right(1).wrapping_add(c))
}

/// Parses directory entries, pairing long-name pieces with the 8.3 entry that follows them.
fn parse_dir(b: &[u8]) -> Vec<DirEntry> {
    let mut out = Vec::new();
    // Long-name pieces seen so far: (sequence number, checksum, 13 UTF-16 units).
    let mut lfn: Vec<(u8, u8, [u16; 13])> = Vec::new();
    for e in b.chunks_exact(32).take(MAX_DIR_ENTRIES) {
        match e[0] {
            0 => break,
            0xe5 => {
                lfn.clear();
                continue;
            }
            _ => {}
        }
        let attr = e[11];
        if attr & 0x3f == 0x0f {
            let mut units = [0u16; 13];
            for (i, at) in (1..11)
                .step_by(2)
                .chain((14..26).step_by(2))
                .chain((28..32).step_by(2))
                .enumerate()
            {
                units[i] = le16(e, at);
            }
            if e[0] & 0x40 != 0 {
                lfn.clear();
            }
            lfn.push((e[0] & 0x1f, e[13], units));
            continue;
        }
        if attr & 0x08 != 0 {
            lfn.clear();
            continue; // volume label
        }
        let short = &e[0..11];
        let mut base: Vec<u8> = short[0..8].to_vec();
        if base[0] == 0x05 {
            base[0] = 0xe5;
        }
        let trim = |v: &[u8]| -> String {
            let end = v.iter().rposition(|&c| c != b' ').map_or(0, |p| p + 1);
            v[..end].iter().map(|&c| char::from(c)).collect()
        };
        let (b8, e3) = (trim(&base), trim(&short[8..11]));
        if b8 == "." || b8 == ".." {
            lfn.clear();
            continue;
        }
        let short_name = if e3.is_empty() {
            b8.clone()
        } else {
            format!("{b8}.{e3}")
        };
        let case = e[12];
        let lb = if case & 0x08 != 0 {
            b8.to_ascii_lowercase()
        } else {
            b8
        };
        let le = if case & 0x10 != 0 {
            e3.to_ascii_lowercase()
        } else {
            e3
        };
        let mut name = if le.is_empty() {
            lb
        } else {
            format!("{lb}.{le}")
        };
        if let Some(long) = long_name(&lfn, lfn_checksum(short)) {
            name = long;
        }
        lfn.clear();
        out.push(DirEntry {
            name,
            short_name,
            is_dir: attr & 0x10 != 0,
            size: le32(e, 28),
            first_cluster: (u32::from(le16(e, 20)) << 16 | u32::from(le16(e, 26))) & 0x0fff_ffff,
        });
    }
    out
}

/// The long name from pieces stored last-first, if they are complete and match `sum`.
fn long_name(pieces: &[(u8, u8, [u16; 13])], sum: u8) -> Option<String> {
    if pieces.is_empty() {
        return None;
    }
    let n = pieces.len();
    let mut units = Vec::with_capacity(n * 13);
    for (i, (seq, s, u)) in pieces.iter().rev().enumerate() {
        if *s != sum || usize::from(*seq) != i + 1 {
            return None;
        }
        units.extend_from_slice(u);
    }
    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    let name = String::from_utf16(&units[..end]).ok()?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny FAT12 image built by hand: 512-byte sectors, 1 sector per cluster.
    fn tiny() -> Vec<u8> {
        let mut img = vec![0u8; 512 * 64];
        let bs = &mut img[..512];
        bs[0] = 0xeb;
        bs[11..13].copy_from_slice(&512u16.to_le_bytes());
        bs[13] = 1;
        bs[14..16].copy_from_slice(&1u16.to_le_bytes());
        bs[16] = 1;
        bs[17..19].copy_from_slice(&16u16.to_le_bytes());
        bs[19..21].copy_from_slice(&64u16.to_le_bytes());
        bs[22..24].copy_from_slice(&1u16.to_le_bytes());
        bs[510] = 0x55;
        bs[511] = 0xaa;
        // FAT at sector 1: clusters 2 -> 3 -> end; 4 -> 4 (a loop).
        let fat = &mut img[512..1024];
        let mut set = |c: usize, v: u16| {
            let off = c * 3 / 2;
            let cur = u16::from_le_bytes([fat[off], fat[off + 1]]);
            let nv = if c & 1 == 1 {
                (cur & 0x000f) | (v << 4)
            } else {
                (cur & 0xf000) | v
            };
            fat[off..off + 2].copy_from_slice(&nv.to_le_bytes());
        };
        set(2, 3);
        set(3, 0xfff);
        set(4, 4);
        // Root directory at sector 2 (one sector: 16 entries); data from sector 3.
        let root = &mut img[1024..1536];
        root[0..11].copy_from_slice(b"HELLO   TXT");
        root[12] = 0x18;
        root[26..28].copy_from_slice(&2u16.to_le_bytes());
        root[28..32].copy_from_slice(&700u32.to_le_bytes());
        root[32..43].copy_from_slice(b"LOOP    BIN");
        root[32 + 26..32 + 28].copy_from_slice(&4u16.to_le_bytes());
        root[32 + 28..32 + 32].copy_from_slice(&5000u32.to_le_bytes());
        root[64..75].copy_from_slice(b"BIG     BIN");
        root[64 + 26..64 + 28].copy_from_slice(&2u16.to_le_bytes());
        root[64 + 28..64 + 32].copy_from_slice(&u32::MAX.to_le_bytes());
        for (i, b) in img[1536..1536 + 1024].iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        img
    }

    #[test]
    fn hand_built_fat12_reads_files_and_rejects_loops() {
        let v = FatVolume::from_bytes(tiny()).unwrap();
        assert_eq!(v.kind(), FatKind::Fat12);
        let names: Vec<String> = v.root().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["hello.txt", "LOOP.BIN", "BIG.BIN"]);
        let data = v.read_file("Hello.TXT").unwrap();
        assert_eq!(data.len(), 700);
        assert!(data.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        let e = v.read_file("loop.bin").unwrap_err();
        assert!(e.to_string().contains("loops"), "{e}");
        let e = v.read_file("big.bin").unwrap_err();
        assert!(matches!(e, FatError::TooLarge { .. }), "{e}");
        let e = v.read_file_max("big.bin", u64::MAX).unwrap_err();
        assert!(e.to_string().contains("chain holds only"), "{e}");
        assert!(matches!(v.read_file("nope"), Err(FatError::NotFound(_))));
        assert!(matches!(
            v.read_file("hello.txt/x"),
            Err(FatError::NotFound(_))
        ));
    }

    #[test]
    fn corrupt_boot_sectors_are_errors_not_panics() {
        let good = tiny();
        for i in 0..64 {
            for x in [0x01u8, 0x80, 0xff] {
                let mut b = good.clone();
                b[i] ^= x;
                if let Ok(v) = FatVolume::from_bytes(b) {
                    let _ = v.root();
                    let _ = v.read_file("hello.txt");
                    let _ = v.read_file("loop.bin");
                }
            }
        }
        // Corrupt FAT and directory bytes too.
        for i in 512..1600 {
            let mut b = good.clone();
            b[i] ^= 0xa5;
            if let Ok(v) = FatVolume::from_bytes(b) {
                for e in v.root().unwrap_or_default() {
                    let _ = v.read_file(&e.name);
                    let _ = v.list(&e.name);
                }
            }
        }
        assert!(matches!(
            FatVolume::from_bytes(vec![0; 100]),
            Err(FatError::NotFat(_))
        ));
    }

    #[test]
    fn long_name_pieces_are_joined_and_checked() {
        let short = *b"LONGFI~1TXT";
        let sum = lfn_checksum(&short);
        let name: Vec<u16> = "a-long-file-name.txt".encode_utf16().collect();
        let mut dir = Vec::new();
        let pieces: Vec<&[u16]> = name.chunks(13).collect();
        for (i, chunk) in pieces.iter().enumerate().rev() {
            let mut e = [0u8; 32];
            let mut units = [0xffffu16; 13];
            units[..chunk.len()].copy_from_slice(chunk);
            if chunk.len() < 13 {
                units[chunk.len()] = 0;
            }
            e[0] = (i as u8 + 1) | if i == pieces.len() - 1 { 0x40 } else { 0 };
            e[11] = 0x0f;
            e[13] = sum;
            let ats = (1..11)
                .step_by(2)
                .chain((14..26).step_by(2))
                .chain((28..32).step_by(2));
            for (k, at) in ats.enumerate() {
                e[at..at + 2].copy_from_slice(&units[k].to_le_bytes());
            }
            dir.extend_from_slice(&e);
        }
        let mut e = [0u8; 32];
        e[..11].copy_from_slice(&short);
        dir.extend_from_slice(&e);
        let got = parse_dir(&dir);
        assert_eq!(got[0].name, "a-long-file-name.txt");
        assert_eq!(got[0].short_name, "LONGFI~1.TXT");
        // A wrong checksum drops the long name.
        dir[13] ^= 1;
        assert_eq!(parse_dir(&dir)[0].name, "LONGFI~1.TXT");
    }
}
