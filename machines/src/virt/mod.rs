//! QEMU's `virt` board: its memory map ([`layout`]) and device tree ([`dt`]).

pub mod dt;
pub mod layout;
