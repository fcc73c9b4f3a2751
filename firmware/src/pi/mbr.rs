//! The MBR partition table of an SD card, as the Pi's boot ROM and firmware read it.
//!
//! ```text
//! sector 0 (512 bytes)
//! 0x000  boot code (ignored)
//! 0x1be  4 primary entries of 16 bytes:
//!          +0 status (0x80 = active)   +1..4 CHS start (ignored)
//!          +4 partition type           +5..8 CHS end (ignored)
//!          +8 u32 LBA of the first sector, +12 u32 number of sectors (little-endian)
//! 0x1fe  signature 0x55 0xaa
//! ```
//!
//! Sectors are 512 bytes. Extended partitions (types 0x05, 0x0f, 0x85) are listed but not
//! followed: the boot partition of a Pi card is always a primary one.

use std::ops::Range;

/// Bytes per sector of an SD card.
pub const SECTOR: u64 = 512;

/// Why the partition table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MbrError {
    #[error("reading the partition table: {0}")]
    Io(#[from] std::io::Error),
    #[error("image is {0} bytes: too short for an MBR (512 bytes)")]
    TooShort(u64),
    #[error("no MBR partition table: sector 0 ends with {0:02x} {1:02x}, not the 55 aa signature")]
    NoSignature(u8, u8),
    #[error(
        "partition {index} (type {kind:#04x}) spans bytes {start:#x}..{end:#x}, outside the \
         {image_len}-byte image"
    )]
    OutsideImage {
        index: usize,
        kind: u8,
        start: u64,
        end: u64,
        image_len: u64,
    },
}

/// One primary partition entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// 1..=4, as Linux numbers them (mmcblk0p1 ...).
    pub index: usize,
    pub kind: u8,
    pub bootable: bool,
    pub lba_start: u32,
    pub sectors: u32,
}

impl Partition {
    /// A FAT type: 0x01 FAT12, 0x04/0x06/0x0e FAT16, 0x0b/0x0c FAT32.
    pub fn is_fat(&self) -> bool {
        matches!(self.kind, 0x01 | 0x04 | 0x06 | 0x0b | 0x0c | 0x0e)
    }

    pub fn is_linux(&self) -> bool {
        self.kind == 0x83
    }

    /// The partition's bytes in the image.
    pub fn byte_range(&self) -> Range<u64> {
        let start = u64::from(self.lba_start) * SECTOR;
        start..start + u64::from(self.sectors) * SECTOR
    }

    /// A short name of the type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            0x01 => "FAT12",
            0x04 | 0x06 | 0x0e => "FAT16",
            0x0b | 0x0c => "FAT32",
            0x05 | 0x0f | 0x85 => "extended",
            0x07 => "NTFS/exFAT",
            0x82 => "Linux swap",
            0x83 => "Linux",
            0x8e => "Linux LVM",
            0xee => "GPT protective",
            0xef => "EFI system",
            _ => "unknown",
        }
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.byte_range();
        write!(
            f,
            "partition {} type {:#04x} ({}) at sector {}, {} sectors ({} MiB)",
            self.index,
            self.kind,
            self.type_name(),
            self.lba_start,
            self.sectors,
            (r.end - r.start) >> 20
        )
    }
}

/// Parses sector 0 of an image of `image_len` bytes. Empty entries (type 0 or no sectors)
/// are left out; every other entry must lie inside the image.
pub fn parse(sector0: &[u8], image_len: u64) -> Result<Vec<Partition>, MbrError> {
    let Some(s) = sector0.get(..512) else {
        return Err(MbrError::TooShort(sector0.len() as u64));
    };
    if s[510] != 0x55 || s[511] != 0xaa {
        return Err(MbrError::NoSignature(s[510], s[511]));
    }
    let mut parts = Vec::new();
    for i in 0..4 {
        let e = &s[0x1be + 16 * i..0x1be + 16 * (i + 1)];
        let kind = e[4];
        let lba_start = u32::from_le_bytes([e[8], e[9], e[10], e[11]]);
        let sectors = u32::from_le_bytes([e[12], e[13], e[14], e[15]]);
        if kind == 0 || sectors == 0 {
            continue;
        }
        let p = Partition {
            index: i + 1,
            kind,
            bootable: e[0] & 0x80 != 0,
            lba_start,
            sectors,
        };
        let r = p.byte_range();
        if r.end > image_len || lba_start == 0 {
            return Err(MbrError::OutsideImage {
                index: p.index,
                kind,
                start: r.start,
                end: r.end,
                image_len,
            });
        }
        parts.push(p);
    }
    Ok(parts)
}

/// Sector 0 with the primary entries `parts` (at most 4; `index` gives the slot, CHS left
/// zero as Linux ignores it) and the signature.
pub fn encode(parts: &[Partition]) -> [u8; 512] {
    let mut s = [0u8; 512];
    for p in parts.iter().filter(|p| (1..=4).contains(&p.index)) {
        let e = &mut s[0x1be + 16 * (p.index - 1)..0x1be + 16 * p.index];
        e[0] = if p.bootable { 0x80 } else { 0 };
        e[4] = p.kind;
        e[8..12].copy_from_slice(&p.lba_start.to_le_bytes());
        e[12..16].copy_from_slice(&p.sectors.to_le_bytes());
    }
    s[510] = 0x55;
    s[511] = 0xaa;
    s
}

/// Reads and parses the partition table of an image file.
pub fn read(image: &std::fs::File) -> Result<Vec<Partition>, MbrError> {
    use std::os::unix::fs::FileExt;
    let len = image.metadata()?.len();
    if len < 512 {
        return Err(MbrError::TooShort(len));
    }
    let mut s = [0u8; 512];
    image.read_exact_at(&mut s, 0)?;
    parse(&s, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbr(entries: &[(u8, u32, u32)]) -> Vec<u8> {
        let parts: Vec<Partition> = entries
            .iter()
            .enumerate()
            .map(|(i, &(kind, lba_start, sectors))| Partition {
                index: i + 1,
                kind,
                bootable: false,
                lba_start,
                sectors,
            })
            .collect();
        encode(&parts).to_vec()
    }

    #[test]
    fn primary_entries_are_parsed_and_empty_ones_skipped() {
        let s = mbr(&[(0x0c, 8192, 100_000), (0, 0, 0), (0x83, 108_192, 5000)]);
        let p = parse(&s, 200_000 * 512).unwrap();
        assert_eq!(p.len(), 2);
        assert!(p[0].is_fat() && p[0].index == 1);
        assert_eq!(p[0].byte_range(), 8192 * 512..108_192 * 512);
        assert!(p[1].is_linux() && p[1].index == 3);
        assert!(p[0].to_string().contains("FAT32"));
    }

    #[test]
    fn missing_signature_and_partitions_past_the_end_are_errors() {
        let mut s = mbr(&[(0x0c, 1, 10)]);
        s[511] = 0;
        assert!(matches!(
            parse(&s, 1 << 20),
            Err(MbrError::NoSignature(0x55, 0))
        ));
        let s = mbr(&[(0x0c, 2048, 4096)]);
        let e = parse(&s, 4096 * 512).unwrap_err();
        assert!(e.to_string().contains("outside"), "{e}");
        assert!(matches!(
            parse(&s[..100], 1 << 20),
            Err(MbrError::TooShort(100))
        ));
        // u32::MAX start and length do not overflow.
        let s = mbr(&[(0x0c, u32::MAX, u32::MAX)]);
        assert!(parse(&s, u64::MAX).is_ok());
        assert!(parse(&s, 1 << 40).is_err());
    }
}
