//! virtio-console (virtio 1.x section 5.3) with one port and no multiport support: queue 0
//! receives (host to guest), queue 1 transmits (guest to host). Linux shows it as `hvc0`.

use super::{config_bytes, device_id, Queue, QueueError, VirtioDevice, VirtioMmio};
use armboard_bus::Ram;
use std::collections::VecDeque;
use std::io::Write;

pub const RX_QUEUE: usize = 0;
pub const TX_QUEUE: usize = 1;
/// Queue size offered.
pub const QUEUE_SIZE: u16 = 128;
/// Input held while the guest has no receive buffers posted. Bounded so a host that types
/// faster than the guest reads cannot grow it without limit; `push_input` reports what fit.
pub const INPUT_LIMIT: usize = 4096;

/// A virtio console port.
pub struct VirtioConsole {
    out: Box<dyn Write + Send>,
    input: VecDeque<u8>,
    config: [u8; 12],
    out_failed: bool,
}

impl VirtioConsole {
    /// A console writing what the guest sends to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> VirtioConsole {
        let mut config = [0u8; 12];
        // cols, rows (unused without VIRTIO_CONSOLE_F_SIZE), max_nr_ports = 1, emerg_wr.
        config[4..8].copy_from_slice(&1u32.to_le_bytes());
        VirtioConsole {
            out,
            input: VecDeque::new(),
            config,
            out_failed: false,
        }
    }

    /// Queue input bytes for the guest; returns how many were taken.
    fn buffer_input(&mut self, bytes: &[u8]) -> usize {
        let n = INPUT_LIMIT
            .saturating_sub(self.input.len())
            .min(bytes.len());
        self.input.extend(&bytes[..n]);
        n
    }

    fn receive(&mut self, q: &mut Queue, mem: &Ram) -> Result<bool, QueueError> {
        let mut used = false;
        while !self.input.is_empty() {
            let Some(chain) = q.pop(mem)? else { break };
            let mut w = chain.writer(mem);
            let (a, b) = self.input.as_slices();
            let n = match w.write(a) {
                Ok(n) if n == a.len() => n + w.write(b).unwrap_or(0),
                Ok(n) => n,
                Err(e) => {
                    log::warn!("virtio-console: {e}");
                    0
                }
            };
            self.input.drain(..n);
            q.add_used(mem, chain.head, n as u32)?;
            used = true;
        }
        Ok(used)
    }

    fn transmit(&mut self, q: &mut Queue, mem: &Ram) -> Result<bool, QueueError> {
        let mut used = false;
        let mut buf = [0u8; 4096];
        while let Some(chain) = q.pop(mem)? {
            let mut r = chain.reader(mem);
            loop {
                let n = match r.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) => {
                        log::warn!("virtio-console: {e}");
                        0
                    }
                };
                if n == 0 {
                    break;
                }
                if let Err(e) = self.out.write_all(&buf[..n]) {
                    if !self.out_failed {
                        log::warn!("virtio-console: output backend failed: {e}");
                        self.out_failed = true;
                    }
                }
            }
            q.add_used(mem, chain.head, 0)?;
            used = true;
        }
        let _ = self.out.flush();
        Ok(used)
    }
}

impl VirtioDevice for VirtioConsole {
    fn device_id(&self) -> u32 {
        device_id::CONSOLE
    }

    fn features(&self) -> u64 {
        0
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        config_bytes(&self.config, offset, data);
    }

    fn process(&mut self, index: usize, q: &mut Queue, mem: &Ram) -> Result<bool, QueueError> {
        match index {
            RX_QUEUE => self.receive(q, mem),
            TX_QUEUE => self.transmit(q, mem),
            _ => Ok(false),
        }
    }

    fn reset(&mut self) {
        // Input waiting for a driver stays: the next driver gets it.
    }
}

impl VirtioMmio<VirtioConsole> {
    /// Offer host input to the guest; returns how many bytes were taken (the rest is the
    /// caller's to offer again). Bytes are delivered into the guest's receive buffers now if
    /// it has posted any, else when it does.
    pub fn push_input(&mut self, bytes: &[u8]) -> usize {
        let n = self.device_mut().buffer_input(bytes);
        self.kick(RX_QUEUE);
        n
    }
}
