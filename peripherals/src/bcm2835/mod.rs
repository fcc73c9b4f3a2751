//! Broadcom BCM2835/6/7 SoC blocks (Raspberry Pi 1–3): the ARM-local and VideoCore interrupt
//! controllers, timers, UARTs, mailbox and firmware interface, clocks, DMA, GPIO, power
//! management and RNG. Offsets only: the SoC's memory map lives in `machines/raspi`.

pub mod armctrl;
pub mod aux;
pub mod cprman;
pub mod dma;
pub mod gpio;
pub mod local_intc;
pub mod mbox;
pub mod pm;
pub mod rng;
pub mod systimer;
