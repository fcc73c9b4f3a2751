//! virtio-blk (virtio 1.x section 5.2) over a host file or block device.
//!
//! Requests are served synchronously with positioned reads and writes on the file, so written
//! data is in the host's page cache when the request completes and survives the emulator
//! exiting; VIRTIO_BLK_T_FLUSH (the guest's cache flush, offered with VIRTIO_BLK_F_FLUSH)
//! makes it durable with fsync. Capacity is the file size in 512-byte sectors, rounded down.

use super::{config_bytes, device_id, Chain, Queue, QueueError, VirtioDevice};
use armboard_bus::Ram;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

pub const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << 2;
pub const VIRTIO_BLK_F_RO: u64 = 1 << 5;
pub const VIRTIO_BLK_F_BLK_SIZE: u64 = 1 << 6;
pub const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;

pub const VIRTIO_BLK_T_IN: u32 = 0;
pub const VIRTIO_BLK_T_OUT: u32 = 1;
pub const VIRTIO_BLK_T_FLUSH: u32 = 4;
pub const VIRTIO_BLK_T_GET_ID: u32 = 8;

pub const VIRTIO_BLK_S_OK: u8 = 0;
pub const VIRTIO_BLK_S_IOERR: u8 = 1;
pub const VIRTIO_BLK_S_UNSUPP: u8 = 2;

pub const SECTOR_SIZE: u64 = 512;
/// Queue size offered.
pub const QUEUE_SIZE: u16 = 256;
/// Length of the GET_ID string.
pub const ID_BYTES: usize = 20;
/// Bounce buffer size for data transfers.
const CHUNK: usize = 64 * 1024;

/// A virtio block device.
pub struct VirtioBlk {
    file: File,
    read_only: bool,
    sectors: u64,
    serial: [u8; ID_BYTES],
    config: Vec<u8>,
}

impl VirtioBlk {
    /// Serve `file` (opened for reading, and writing unless `read_only`).
    pub fn new(mut file: File, read_only: bool) -> io::Result<VirtioBlk> {
        // Seeking to the end also sizes block devices, whose metadata length is 0.
        let bytes = file.seek(SeekFrom::End(0))?;
        let sectors = bytes / SECTOR_SIZE;
        let mut config = vec![0u8; 36];
        config[0..8].copy_from_slice(&sectors.to_le_bytes());
        // seg_max: data segments per request (the header and status take two descriptors).
        config[12..16].copy_from_slice(&(QUEUE_SIZE as u32 - 2).to_le_bytes());
        config[20..24].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
        config[34..36].copy_from_slice(&1u16.to_le_bytes()); // num_queues
        let mut serial = [0u8; ID_BYTES];
        serial[..13].copy_from_slice(b"armboard-disk");
        Ok(VirtioBlk {
            file,
            read_only,
            sectors,
            serial,
            config,
        })
    }

    /// Open the file at `path` and serve it.
    pub fn open(path: &Path, read_only: bool) -> io::Result<VirtioBlk> {
        let file = OpenOptions::new().read(true).write(!read_only).open(path)?;
        Self::new(file, read_only)
    }

    /// The serial number GET_ID reports (at most 20 bytes; shorter is zero-padded).
    pub fn set_serial(&mut self, serial: &[u8]) {
        self.serial = [0; ID_BYTES];
        let n = serial.len().min(ID_BYTES);
        self.serial[..n].copy_from_slice(&serial[..n]);
    }

    /// Capacity in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Make everything written so far durable.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Check `[sector, sector + len)` lies inside the disk; returns the byte offset.
    fn range(&self, sector: u64, len: u64) -> Option<u64> {
        let start = sector.checked_mul(SECTOR_SIZE)?;
        let end = start.checked_add(len)?;
        (end <= self.sectors * SECTOR_SIZE).then_some(start)
    }

    /// Serve one request; returns (status, data bytes written into the chain).
    fn request(&mut self, chain: &Chain, mem: &Ram) -> Result<(u8, u64), QueueError> {
        let mut r = chain.reader(mem);
        let mut hdr = [0u8; 16];
        if r.read(&mut hdr)? < 16 {
            log::warn!("virtio-blk: request header too short");
            return Ok((VIRTIO_BLK_S_IOERR, 0));
        }
        let kind = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let sector = u64::from_le_bytes(hdr[8..16].try_into().unwrap_or_default());
        let mut w = chain.writer(mem);
        // The last writable byte is the status.
        let data_room = chain.writable_len().saturating_sub(1);
        match kind {
            VIRTIO_BLK_T_IN => {
                let Some(mut pos) = self.range(sector, data_room) else {
                    log::warn!(
                        "virtio-blk: read of {data_room} bytes at sector {sector} beyond the disk"
                    );
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                };
                let mut buf = vec![0u8; CHUNK.min(data_room as usize)];
                let mut left = data_room;
                while left > 0 {
                    let n = (left as usize).min(CHUNK);
                    if let Err(e) = self.file.read_exact_at(&mut buf[..n], pos) {
                        log::warn!("virtio-blk: read at {pos:#x}: {e}");
                        return Ok((VIRTIO_BLK_S_IOERR, w.done));
                    }
                    w.write(&buf[..n])?;
                    pos += n as u64;
                    left -= n as u64;
                }
                Ok((VIRTIO_BLK_S_OK, w.done))
            }
            VIRTIO_BLK_T_OUT => {
                if self.read_only {
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                }
                let len = r.remaining();
                let Some(mut pos) = self.range(sector, len) else {
                    log::warn!(
                        "virtio-blk: write of {len} bytes at sector {sector} beyond the disk"
                    );
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                };
                let mut buf = vec![0u8; CHUNK.min(len as usize)];
                loop {
                    let n = r.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    if let Err(e) = self.file.write_all_at(&buf[..n], pos) {
                        log::error!("virtio-blk: write at {pos:#x}: {e}");
                        return Ok((VIRTIO_BLK_S_IOERR, 0));
                    }
                    pos += n as u64;
                }
                Ok((VIRTIO_BLK_S_OK, 0))
            }
            VIRTIO_BLK_T_FLUSH => match self.file.sync_data() {
                Ok(()) => Ok((VIRTIO_BLK_S_OK, 0)),
                Err(e) => {
                    log::error!("virtio-blk: flush: {e}");
                    Ok((VIRTIO_BLK_S_IOERR, 0))
                }
            },
            VIRTIO_BLK_T_GET_ID => {
                let n = (data_room as usize).min(ID_BYTES);
                w.write(&self.serial[..n])?;
                Ok((VIRTIO_BLK_S_OK, w.done))
            }
            _ => Ok((VIRTIO_BLK_S_UNSUPP, 0)),
        }
    }
}

impl VirtioDevice for VirtioBlk {
    fn device_id(&self) -> u32 {
        device_id::BLOCK
    }

    fn features(&self) -> u64 {
        let ro = if self.read_only { VIRTIO_BLK_F_RO } else { 0 };
        VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH | ro
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        config_bytes(&self.config, offset, data);
    }

    fn process(&mut self, _index: usize, q: &mut Queue, mem: &Ram) -> Result<bool, QueueError> {
        let mut used = false;
        while let Some(chain) = q.pop(mem)? {
            let wlen = chain.writable_len();
            let (status, data) = match self.request(&chain, mem) {
                Ok(r) => r,
                Err(QueueError::BadBuffer(a)) => {
                    log::warn!("virtio-blk: buffer at {a:#x} outside guest RAM");
                    (VIRTIO_BLK_S_IOERR, 0)
                }
                Err(e) => return Err(e),
            };
            let mut len = u32::try_from(data).unwrap_or(u32::MAX);
            if wlen > 0 {
                let mut w = chain.writer(mem);
                w.seek(wlen - 1);
                if w.write(&[status]).unwrap_or(0) == 1 {
                    len = len.saturating_add(1);
                }
            }
            q.add_used(mem, chain.head, len)?;
            used = true;
        }
        Ok(used)
    }
}
