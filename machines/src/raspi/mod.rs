//! Raspberry Pi boards: the BCM2837 SoC ([`soc`]), the boards built on it ([`board`]) and
//! running one ([`run`]): from an SD card image the way the Pi firmware boots it, or with a
//! kernel and device tree given directly.

pub mod board;
mod machine;
pub mod soc;

pub use machine::{run, Machine, PiError};
