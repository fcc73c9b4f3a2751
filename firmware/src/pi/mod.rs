//! The Raspberry Pi firmware's boot flow: what the VideoCore does before the ARM runs. It
//! reads the FAT boot partition of an MBR SD card, config.txt and cmdline.txt, picks the
//! kernel, device tree and initramfs, applies overlays and patches /chosen and /memory.

pub mod config;
pub mod fat;
pub mod mbr;
pub mod overlay;
