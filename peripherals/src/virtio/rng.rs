//! virtio-rng (virtio 1.x section 5.4, entropy device): fills the guest's buffers with bytes
//! from the host's /dev/urandom (the getrandom pool).

use super::{device_id, Queue, QueueError, VirtioDevice};
use armboard_bus::Ram;
use std::fs::File;
use std::io::{self, Read};

/// Queue size offered.
pub const QUEUE_SIZE: u16 = 64;
/// Most bytes given for one request (the spec allows filling a buffer partially).
pub const MAX_PER_REQUEST: usize = 64 * 1024;

/// An entropy device.
pub struct VirtioRng {
    src: Box<dyn Read + Send>,
}

impl VirtioRng {
    /// Entropy from the host's /dev/urandom.
    pub fn new() -> io::Result<VirtioRng> {
        Ok(Self::with_source(Box::new(File::open("/dev/urandom")?)))
    }

    /// Entropy from `src` (tests, deterministic runs).
    pub fn with_source(src: Box<dyn Read + Send>) -> VirtioRng {
        VirtioRng { src }
    }
}

impl VirtioDevice for VirtioRng {
    fn device_id(&self) -> u32 {
        device_id::ENTROPY
    }

    fn features(&self) -> u64 {
        0
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn process(&mut self, _index: usize, q: &mut Queue, mem: &Ram) -> Result<bool, QueueError> {
        let mut used = false;
        let mut buf = [0u8; 4096];
        while let Some(chain) = q.pop(mem)? {
            let mut w = chain.writer(mem);
            let want = (chain.writable_len() as usize).min(MAX_PER_REQUEST);
            while (w.done as usize) < want {
                let n = (want - w.done as usize).min(buf.len());
                if let Err(e) = self.src.read_exact(&mut buf[..n]) {
                    log::warn!("virtio-rng: entropy source failed: {e}");
                    break;
                }
                match w.write(&buf[..n]) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        log::warn!("virtio-rng: {e}");
                        break;
                    }
                }
            }
            q.add_used(mem, chain.head, w.done as u32)?;
            used = true;
        }
        Ok(used)
    }
}
