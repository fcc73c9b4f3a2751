//! QEMU's `virt` board: its memory map ([`layout`]), device tree ([`dt`]) and what is loaded
//! before the first instruction ([`boot`]).

pub mod boot;
pub mod console;
pub mod dt;
pub mod layout;
mod machine;
pub mod psci;
mod vcpu;

pub use machine::{run, ClockKind, Control, Drive, Machine, MachineError, Outcome};
