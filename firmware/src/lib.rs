//! What is loaded before the first instruction, and the guest-image builder.

pub mod apt;
pub mod ar;
pub mod cpio;
pub mod deb;
pub mod fdt;
pub mod guest;
pub mod image;
pub mod initramfs;
pub mod kernel;
pub mod oci;
pub mod pi;
