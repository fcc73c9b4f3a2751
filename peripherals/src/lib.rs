//! Modelled devices (system emulation; see the virt and board issues). Each module is one
//! device in hardware terms; none knows its board (offsets only, no addresses).
//!
//! Wiring, as a board does it (text, not a doctest):
//!
//! ```text
//! let outs: Vec<Arc<CpuInterrupts>> = ...one per vCPU...;
//! let gic = gic::Gic::new(cpus, 256, outs);                 // Arc<Gic>, also an IrqSink
//! bus.insert(GICD, gic::DIST_SIZE, Box::new(gic.distributor()))?;
//! bus.insert(GICC, gic::CPU_IF_SIZE, Box::new(gic.cpu_interface()))?;
//! // PPIs: IrqLine::new(gic.clone(), (cpu << 16 | 27) as u32); SPIs: IrqLine::new(gic, 32 + n)
//! let uart = Shared::new(pl011::Pl011::new(Box::new(stdout), IrqLine::new(gic.clone(), 33)));
//! bus.insert(UART, pl011::SIZE, Box::new(uart.clone()))?;   // stdin thread: uart.lock().push_input(..)
//! let blk = virtio::VirtioBlk::open(path, read_only)?;
//! bus.insert(slot, virtio::SIZE, Box::new(virtio::VirtioMmio::new(blk, ram.clone(), irq)))?;
//! ```
//!
//! Lock order: bus (one MMIO access) → device (`Shared`) → GIC. The GIC never calls a device
//! or the bus, so a device may raise its line while holding its own lock.

pub mod bcm2835;
pub mod fw_cfg;
pub mod gic;
pub mod net;
pub mod pl011;
pub mod pl031;
pub mod pl061;
pub mod sd;
pub mod unimp;
pub mod usb;
pub mod virtio;
