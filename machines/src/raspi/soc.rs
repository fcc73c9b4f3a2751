//! The BCM2837's memory map and interrupt numbers, as the ARM cores see them. Boards built on
//! it (Pi 3 B, 3 B+, 3 A+, Zero 2 W) differ only in data ([`super::board`]).

/// Start of the peripheral window (bus address 0x7e000000).
pub const PERI_BASE: u64 = 0x3f00_0000;
pub const PERI_SIZE: u64 = 0x0100_0000;
/// Bus address of the peripheral window, as DMA engines and the device tree see it.
pub const PERI_BUS: u32 = 0x7e00_0000;
/// The ARM-local block (BCM2836 control: core timers, mailboxes, interrupt routing).
pub const LOCAL_BASE: u64 = 0x4000_0000;
pub const LOCAL_SIZE: u64 = 0x4_0000;
/// The part of the local block the interrupt controller decodes.
pub const LOCAL_INTC_SIZE: u64 = 0x100;

/// Peripherals by offset from [`PERI_BASE`] and the size each decodes.
pub mod offset {
    pub const SYSTIMER: (u64, u64) = (0x00_3000, 0x1000);
    pub const DMA: (u64, u64) = (0x00_7000, 0x1000);
    pub const ASB: (u64, u64) = (0x00_a000, 0x100);
    pub const ARMCTRL: (u64, u64) = (0x00_b200, 0x200);
    pub const MBOX: (u64, u64) = (0x00_b880, 0x40);
    pub const PM: (u64, u64) = (0x10_0000, 0x1000);
    pub const CPRMAN: (u64, u64) = (0x10_1000, 0x2000);
    pub const RNG: (u64, u64) = (0x10_4000, 0x10);
    pub const GPIO: (u64, u64) = (0x20_0000, 0x1000);
    pub const UART0: (u64, u64) = (0x20_1000, 0x1000);
    pub const SDHOST: (u64, u64) = (0x20_2000, 0x1000);
    pub const AUX: (u64, u64) = (0x21_5000, 0x100);
    pub const EMMC: (u64, u64) = (0x30_0000, 0x1000);
    /// The DWC2 USB controller.
    pub const USB: (u64, u64) = (0x98_0000, 0x1_0000);
}

/// The ARM physical address of a peripheral at `offset`.
pub const fn peri(offset: (u64, u64)) -> u64 {
    PERI_BASE + offset.0
}

/// Interrupt numbers on the armctrl controller's lines: GPU interrupts 0..63 are lines 0..63,
/// ARM basic interrupts k are 64 + k (the device tree's banks 1, 2 and 0).
pub mod irq {
    pub const SYSTIMER: [u32; 4] = [0, 1, 2, 3];
    /// DMA channels 0..=10, then 11..=14 share one line.
    pub const DMA_FIRST: u32 = 16;
    pub const DMA_SHARED: u32 = 27;
    pub const USB: u32 = 9;
    pub const AUX: u32 = 29;
    pub const GPIO: [u32; 4] = [49, 50, 51, 52];
    pub const SDHOST: u32 = 56;
    pub const UART0: u32 = 57;
    pub const RNG: u32 = 61;
    pub const EMMC: u32 = 62;
    /// The VideoCore mailbox: ARM basic interrupt 1.
    pub const MBOX: u32 = 64 + 1;
}

/// DMA channel `ch`'s interrupt line.
pub const fn dma_irq(ch: u32) -> u32 {
    if ch <= 10 {
        irq::DMA_FIRST + ch
    } else {
        irq::DMA_SHARED
    }
}

/// Converts a bus address of RAM (any of the four cache aliases) to an ARM physical one.
pub const fn bus_to_ram(bus: u32) -> u64 {
    (bus & 0x3fff_ffff) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peripherals_sit_where_the_device_tree_says() {
        // The tree's reg values are bus addresses; ranges map 0x7e000000 to 0x3f000000.
        let bus = |o: (u64, u64)| PERI_BUS as u64 + o.0;
        assert_eq!(bus(offset::UART0), 0x7e20_1000);
        assert_eq!(bus(offset::AUX), 0x7e21_5000);
        assert_eq!(bus(offset::SDHOST), 0x7e20_2000);
        assert_eq!(bus(offset::MBOX), 0x7e00_b880);
        assert_eq!(peri(offset::ARMCTRL), 0x3f00_b200);
        assert_eq!(dma_irq(0), 16);
        assert_eq!(dma_irq(10), 26);
        assert_eq!(dma_irq(14), 27);
        assert_eq!(bus_to_ram(0xc000_1000), 0x1000);
    }
}
