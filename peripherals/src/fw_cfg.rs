//! QEMU's firmware configuration device (`qemu,fw-cfg-mmio`), memory-mapped as on Arm: data
//! at 0x0 (reads of 1..8 bytes return the next bytes of the selected item in order), selector
//! at 0x8 (16-bit, big-endian), DMA address at 0x10 (not offered: FW_CFG_ID says traditional
//! interface only). Items: the signature, the ID, the file directory, and files added with
//! [`FwCfg::add_file`].

use armboard_bus::Device;

/// Size of the register frame.
pub const SIZE: u64 = 0x18;

const DATA: u64 = 0x0;
const SELECTOR: u64 = 0x8;
const DMA: u64 = 0x10;

pub const FW_CFG_SIGNATURE: u16 = 0x0000;
pub const FW_CFG_ID: u16 = 0x0001;
pub const FW_CFG_FILE_DIR: u16 = 0x0019;
pub const FW_CFG_FILE_FIRST: u16 = 0x0020;
const NAME_LEN: usize = 56;

/// A fw_cfg device.
pub struct FwCfg {
    files: Vec<(String, Vec<u8>)>,
    selected: Vec<u8>,
    pos: usize,
}

impl Default for FwCfg {
    fn default() -> Self {
        Self::new()
    }
}

impl FwCfg {
    pub fn new() -> FwCfg {
        let mut f = FwCfg {
            files: Vec::new(),
            selected: Vec::new(),
            pos: 0,
        };
        f.select(FW_CFG_SIGNATURE);
        f
    }

    /// Add a named file (names are at most 55 bytes; longer ones are cut).
    pub fn add_file(&mut self, name: &str, data: Vec<u8>) {
        let mut end = name.len().min(NAME_LEN - 1);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        self.files.push((name[..end].to_string(), data));
    }

    fn item(&self, key: u16) -> Vec<u8> {
        match key {
            FW_CFG_SIGNATURE => b"QEMU".to_vec(),
            FW_CFG_ID => 1u32.to_le_bytes().to_vec(),
            FW_CFG_FILE_DIR => {
                let mut d = (self.files.len() as u32).to_be_bytes().to_vec();
                for (i, (name, data)) in self.files.iter().enumerate() {
                    d.extend((data.len() as u32).to_be_bytes());
                    d.extend((FW_CFG_FILE_FIRST + i as u16).to_be_bytes());
                    d.extend([0, 0]);
                    let mut n = [0u8; NAME_LEN];
                    n[..name.len()].copy_from_slice(name.as_bytes());
                    d.extend(n);
                }
                d
            }
            k if k >= FW_CFG_FILE_FIRST => self
                .files
                .get((k - FW_CFG_FILE_FIRST) as usize)
                .map(|f| f.1.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    fn select(&mut self, key: u16) {
        self.selected = self.item(key & 0x3FFF);
        self.pos = 0;
    }
}

impl Device for FwCfg {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if offset != DATA || !matches!(size, 1 | 2 | 4 | 8) {
            log::debug!("fw_cfg: read of size {size} at {offset:#x}");
            return 0;
        }
        // String-preserving: the bytes land in guest memory in item order.
        let mut b = [0u8; 8];
        for x in b.iter_mut().take(size as usize) {
            if let Some(v) = self.selected.get(self.pos) {
                *x = *v;
                self.pos += 1;
            }
        }
        u64::from_le_bytes(b)
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        match (offset, size) {
            (SELECTOR, 2) => self.select((value as u16).swap_bytes()),
            (DMA, _) => log::debug!("fw_cfg: DMA is not offered"),
            _ => log::debug!("fw_cfg: write of size {size} at {offset:#x} ignored"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(f: &mut FwCfg, key: u16) {
        // iowrite16be on a little-endian CPU.
        f.write(SELECTOR, 2, key.swap_bytes() as u64);
    }

    fn read_bytes(f: &mut FwCfg, n: usize) -> Vec<u8> {
        (0..n).map(|_| f.read(DATA, 1) as u8).collect()
    }

    #[test]
    fn signature_id_and_file_directory_read_as_linux_reads_them() {
        let mut f = FwCfg::new();
        f.add_file("etc/test", vec![1, 2, 3]);
        select(&mut f, FW_CFG_SIGNATURE);
        assert_eq!(read_bytes(&mut f, 4), b"QEMU");
        select(&mut f, FW_CFG_ID);
        assert_eq!(f.read(DATA, 4), 1);
        select(&mut f, FW_CFG_FILE_DIR);
        let d = read_bytes(&mut f, 4 + 64);
        assert_eq!(&d[..4], &[0, 0, 0, 1]);
        assert_eq!(&d[4..8], &[0, 0, 0, 3]);
        assert_eq!(&d[8..10], &[0, 0x20]);
        assert_eq!(&d[12..20], b"etc/test");
        select(&mut f, 0x20);
        assert_eq!(f.read(DATA, 4), 0x0003_0201, "past the end reads 0");
    }
}
