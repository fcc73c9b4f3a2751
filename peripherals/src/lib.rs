//! Modelled devices (system emulation; see the virt and board issues). Each module is one
//! device in hardware terms; none knows its board (offsets only, no addresses).

pub mod fw_cfg;
pub mod gic;
pub mod pl011;
pub mod pl031;
pub mod pl061;
pub mod virtio;
