//! QEMU's `virt` board: its memory map ([`layout`]), device tree ([`dt`]) and what is loaded
//! before the first instruction ([`boot`]).

pub mod boot;
pub mod dt;
pub mod layout;
mod machine;

pub use crate::system::{ClockKind, Outcome};
pub use machine::{run, Drive, Machine, MachineError, Net};
