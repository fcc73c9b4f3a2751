//! virtio over MMIO, version 2 (virtio 1.x "modern" register layout, section 4.2.2), with split
//! virtqueues in guest RAM, and the block, console, entropy and network devices.
//!
//! [`VirtioMmio`] is the transport (the register frame, feature negotiation, queue setup,
//! interrupt status); a [`VirtioDevice`] is the device behind it. A queue notification is
//! processed synchronously, inside the MMIO write to QueueNotify; used buffers raise the
//! transport's interrupt line. A malformed descriptor chain sets DEVICE_NEEDS_RESET (and a
//! configuration-change interrupt) and stops the device until the driver resets it; it never
//! panics or loops.

pub mod blk;
pub mod console;
pub mod net;
pub mod queue;
pub mod rng;

pub use blk::VirtioBlk;
pub use console::VirtioConsole;
pub use net::VirtioNet;
pub use queue::{Buffer, Chain, Cursor, Queue, QueueError};
pub use rng::VirtioRng;

use armboard_bus::{Device, IrqLine, Ram};
use std::sync::Arc;

/// Size of the register frame (registers plus configuration space).
pub const SIZE: u64 = 0x200;

/// Device IDs (virtio 1.x section 5).
pub mod device_id {
    pub const NET: u32 = 1;
    pub const BLOCK: u32 = 2;
    pub const CONSOLE: u32 = 3;
    pub const ENTROPY: u32 = 4;
}

/// Transport-level feature bits.
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;
pub const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << 28;

// Device status bits.
pub const STATUS_ACKNOWLEDGE: u32 = 1;
pub const STATUS_DRIVER: u32 = 2;
pub const STATUS_DRIVER_OK: u32 = 4;
pub const STATUS_FEATURES_OK: u32 = 8;
pub const STATUS_NEEDS_RESET: u32 = 0x40;
pub const STATUS_FAILED: u32 = 0x80;

// Interrupt status bits.
pub const INT_USED_BUFFER: u32 = 1;
pub const INT_CONFIG_CHANGE: u32 = 2;

const MAGIC: u32 = 0x7472_6976; // "virt"
const VENDOR_ID: u32 = 0x554D_4551; // "QEMU", as QEMU's devices report

// Registers (offsets).
const MAGIC_VALUE: u64 = 0x000;
const VERSION: u64 = 0x004;
const DEVICE_ID: u64 = 0x008;
const VENDOR: u64 = 0x00C;
const DEVICE_FEATURES: u64 = 0x010;
const DEVICE_FEATURES_SEL: u64 = 0x014;
const DRIVER_FEATURES: u64 = 0x020;
const DRIVER_FEATURES_SEL: u64 = 0x024;
const QUEUE_SEL: u64 = 0x030;
const QUEUE_NUM_MAX: u64 = 0x034;
const QUEUE_NUM: u64 = 0x038;
const QUEUE_READY: u64 = 0x044;
const QUEUE_NOTIFY: u64 = 0x050;
const INTERRUPT_STATUS: u64 = 0x060;
const INTERRUPT_ACK: u64 = 0x064;
const STATUS: u64 = 0x070;
const QUEUE_DESC_LOW: u64 = 0x080;
const QUEUE_DESC_HIGH: u64 = 0x084;
const QUEUE_DRIVER_LOW: u64 = 0x090;
const QUEUE_DRIVER_HIGH: u64 = 0x094;
const QUEUE_DEVICE_LOW: u64 = 0x0A0;
const QUEUE_DEVICE_HIGH: u64 = 0x0A4;
const SHM_SEL: u64 = 0x0AC;
const SHM_LEN_LOW: u64 = 0x0B0;
const SHM_BASE_HIGH: u64 = 0x0BC;
const CONFIG_GENERATION: u64 = 0x0FC;
const CONFIG: u64 = 0x100;

/// A virtio device behind a transport.
pub trait VirtioDevice: Send {
    fn device_id(&self) -> u32;
    /// Device feature bits offered (the transport adds VIRTIO_F_VERSION_1 and
    /// VIRTIO_RING_F_INDIRECT_DESC).
    fn features(&self) -> u64;
    /// Maximum size of each queue; the length is the number of queues.
    fn queue_max_sizes(&self) -> &[u16];
    /// Read device configuration space bytes at `offset` (zero beyond its end).
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// A driver write to configuration space.
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        log::debug!(
            "virtio: ignored config write of {} bytes at {offset:#x}",
            data.len()
        );
    }
    /// The driver set DRIVER_OK with these negotiated features.
    fn activate(&mut self, _features: u64) {}
    /// Serve queue `index` (a notification, or new input for it). Returns whether used
    /// buffers were added. `Err` means a malformed queue: the device will need a reset.
    fn process(&mut self, index: usize, queue: &mut Queue, mem: &Ram) -> Result<bool, QueueError>;
    /// Device reset (status written 0).
    fn reset(&mut self) {}
}

/// The virtio-mmio transport around device `D`.
pub struct VirtioMmio<D: VirtioDevice> {
    dev: D,
    mem: Arc<Ram>,
    irq: IrqLine,
    irq_level: bool,
    queues: Vec<Queue>,
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    interrupt_status: u32,
}

impl<D: VirtioDevice> VirtioMmio<D> {
    /// A transport for `dev` doing DMA into `mem` and interrupting through `irq`.
    pub fn new(dev: D, mem: Arc<Ram>, irq: IrqLine) -> Self {
        let queues = dev
            .queue_max_sizes()
            .iter()
            .map(|&m| Queue::new(m))
            .collect();
        VirtioMmio {
            dev,
            mem,
            irq,
            irq_level: false,
            queues,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            interrupt_status: 0,
        }
    }

    pub fn device(&self) -> &D {
        &self.dev
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Device status (the Status register).
    pub fn status(&self) -> u32 {
        self.status
    }

    /// Features offered to the driver.
    pub fn offered_features(&self) -> u64 {
        self.dev.features() | VIRTIO_F_VERSION_1 | VIRTIO_RING_F_INDIRECT_DESC
    }

    fn update_irq(&mut self) {
        let level = self.interrupt_status != 0;
        if level != self.irq_level {
            self.irq_level = level;
            self.irq.set(level);
        }
    }

    fn reset(&mut self) {
        self.status = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.interrupt_status = 0;
        for q in &mut self.queues {
            q.reset();
        }
        self.dev.reset();
        self.update_irq();
    }

    /// Serve queue `index` if the device is live and the queue ready (what QueueNotify does;
    /// also for devices that get input from outside, like the console).
    pub fn kick(&mut self, index: usize) {
        if self.status & STATUS_DRIVER_OK == 0 || self.status & STATUS_NEEDS_RESET != 0 {
            return;
        }
        let Some(q) = self.queues.get_mut(index) else {
            log::debug!("virtio: notify of missing queue {index}");
            return;
        };
        if !q.ready {
            return;
        }
        match self.dev.process(index, q, &self.mem) {
            Ok(true) => {
                if q.wants_interrupt(&self.mem) {
                    self.interrupt_status |= INT_USED_BUFFER;
                }
            }
            Ok(false) => {}
            Err(e) => {
                log::error!(
                    "virtio: device {} queue {index}: {e}; device needs reset",
                    self.dev.device_id()
                );
                self.status |= STATUS_NEEDS_RESET;
                self.interrupt_status |= INT_CONFIG_CHANGE;
            }
        }
        self.update_irq();
    }

    fn queue(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    fn read_reg(&mut self, off: u64) -> u32 {
        match off {
            MAGIC_VALUE => MAGIC,
            VERSION => 2,
            DEVICE_ID => self.dev.device_id(),
            VENDOR => VENDOR_ID,
            DEVICE_FEATURES => match self.device_features_sel {
                0 => self.offered_features() as u32,
                1 => (self.offered_features() >> 32) as u32,
                _ => 0,
            },
            QUEUE_NUM_MAX => self.queue().map_or(0, |q| q.max_size as u32),
            QUEUE_NUM => self.queue().map_or(0, |q| q.size as u32),
            QUEUE_READY => self.queue().map_or(0, |q| q.ready as u32),
            INTERRUPT_STATUS => self.interrupt_status,
            STATUS => self.status,
            QUEUE_DESC_LOW => self.queue().map_or(0, |q| q.desc as u32),
            QUEUE_DESC_HIGH => self.queue().map_or(0, |q| (q.desc >> 32) as u32),
            QUEUE_DRIVER_LOW => self.queue().map_or(0, |q| q.avail as u32),
            QUEUE_DRIVER_HIGH => self.queue().map_or(0, |q| (q.avail >> 32) as u32),
            QUEUE_DEVICE_LOW => self.queue().map_or(0, |q| q.used as u32),
            QUEUE_DEVICE_HIGH => self.queue().map_or(0, |q| (q.used >> 32) as u32),
            // No shared memory regions: length and base read as all ones.
            SHM_LEN_LOW..=SHM_BASE_HIGH => u32::MAX,
            CONFIG_GENERATION => 0,
            _ => {
                log::debug!("virtio-mmio: read of write-only/reserved offset {off:#x}");
                0
            }
        }
    }

    fn set_queue_addr(&mut self, v: u32, f: impl FnOnce(&mut Queue) -> &mut u64, high: bool) {
        if let Some(q) = self.queue() {
            let a = f(q);
            *a = if high {
                (*a & 0xFFFF_FFFF) | (v as u64) << 32
            } else {
                (*a & !0xFFFF_FFFF) | v as u64
            };
        }
    }

    fn write_status(&mut self, v: u32) {
        if v == 0 {
            self.reset();
            return;
        }
        let mut v = v & 0xFF;
        if v & STATUS_FEATURES_OK != 0 && self.status & STATUS_FEATURES_OK == 0 {
            let offered = self.offered_features();
            let extra = self.driver_features & !offered;
            if extra != 0 || self.driver_features & VIRTIO_F_VERSION_1 == 0 {
                log::warn!(
                    "virtio: driver features {:#x} refused (offered {offered:#x})",
                    self.driver_features
                );
                v &= !STATUS_FEATURES_OK;
            }
        }
        let activate = v & STATUS_DRIVER_OK != 0 && self.status & STATUS_DRIVER_OK == 0;
        // NEEDS_RESET is the device's to set; keep it until reset.
        self.status = v | (self.status & STATUS_NEEDS_RESET);
        if activate {
            self.dev.activate(self.driver_features);
            for i in 0..self.queues.len() {
                self.kick(i);
            }
        }
    }

    fn write_reg(&mut self, off: u64, v: u32) {
        match off {
            DEVICE_FEATURES_SEL => self.device_features_sel = v,
            DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            DRIVER_FEATURES => match self.driver_features_sel {
                0 => self.driver_features = (self.driver_features & !0xFFFF_FFFF) | v as u64,
                1 => self.driver_features = (self.driver_features & 0xFFFF_FFFF) | (v as u64) << 32,
                _ => {}
            },
            QUEUE_SEL => self.queue_sel = v,
            QUEUE_NUM => {
                if let Some(q) = self.queue() {
                    // Split queues have power-of-two sizes (the ring indices wrap at 2^16).
                    if v.is_power_of_two() && v <= q.max_size as u32 {
                        q.size = v as u16;
                    } else {
                        log::warn!("virtio: queue size {v} refused (max {})", q.max_size);
                    }
                }
            }
            QUEUE_READY => {
                if let Some(q) = self.queue() {
                    q.ready = v & 1 != 0;
                }
            }
            QUEUE_NOTIFY => self.kick((v & 0xFFFF) as usize),
            INTERRUPT_ACK => {
                self.interrupt_status &= !v;
                self.update_irq();
            }
            STATUS => self.write_status(v),
            QUEUE_DESC_LOW => self.set_queue_addr(v, |q| &mut q.desc, false),
            QUEUE_DESC_HIGH => self.set_queue_addr(v, |q| &mut q.desc, true),
            QUEUE_DRIVER_LOW => self.set_queue_addr(v, |q| &mut q.avail, false),
            QUEUE_DRIVER_HIGH => self.set_queue_addr(v, |q| &mut q.avail, true),
            QUEUE_DEVICE_LOW => self.set_queue_addr(v, |q| &mut q.used, false),
            QUEUE_DEVICE_HIGH => self.set_queue_addr(v, |q| &mut q.used, true),
            SHM_SEL => {}
            _ => log::debug!("virtio-mmio: write {v:#x} to read-only/reserved offset {off:#x}"),
        }
    }
}

impl<D: VirtioDevice> Device for VirtioMmio<D> {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if offset >= CONFIG {
            if !matches!(size, 1 | 2 | 4 | 8) {
                return 0;
            }
            let mut b = [0u8; 8];
            self.dev
                .read_config(offset - CONFIG, &mut b[..size as usize]);
            return u64::from_le_bytes(b);
        }
        if size != 4 || offset & 3 != 0 {
            log::warn!("virtio-mmio: bad read of size {size} at {offset:#x}");
            return 0;
        }
        self.read_reg(offset) as u64
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset >= CONFIG {
            if matches!(size, 1 | 2 | 4 | 8) {
                let b = value.to_le_bytes();
                self.dev.write_config(offset - CONFIG, &b[..size as usize]);
            }
            return;
        }
        if size != 4 || offset & 3 != 0 {
            log::warn!("virtio-mmio: bad write of size {size} at {offset:#x}");
            return;
        }
        self.write_reg(offset, value as u32);
    }
}

/// Copy the bytes of `config` at `offset` into `data` (zeros beyond its end).
pub(crate) fn config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    for (i, d) in data.iter_mut().enumerate() {
        *d = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(i))
            .and_then(|o| config.get(o))
            .copied()
            .unwrap_or(0);
    }
}

#[cfg(test)]
mod tests;

/// The device of an unused transport: ID 0, which drivers take as "nothing here" (QEMU's
/// virt has 32 transports whether or not devices are plugged into them).
pub struct NoDevice;

impl VirtioDevice for NoDevice {
    fn device_id(&self) -> u32 {
        0
    }
    fn features(&self) -> u64 {
        0
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &[]
    }
    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }
    fn process(
        &mut self,
        _index: usize,
        _queue: &mut Queue,
        _mem: &Ram,
    ) -> Result<bool, QueueError> {
        Ok(false)
    }
}
