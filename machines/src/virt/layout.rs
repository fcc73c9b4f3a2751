//! The memory map and interrupt numbers of QEMU's `virt` board (hw/arm/virt.c,
//! `base_memmap` and `a15irqmap`), so that kernels and device trees made for QEMU's virt run
//! unchanged.
//!
//! ```text
//!  0x0000_0000 ┌──────────────────────────────┐
//!              │ flash: 2 banks of 64 MiB     │ cfi-flash (bank 0: firmware, bank 1: vars)
//!  0x0800_0000 ├──────────────────────────────┤
//!              │ GIC distributor      64 KiB  │ GICv2 (arm,cortex-a15-gic)
//!  0x0801_0000 │ GIC CPU interface    64 KiB  │
//!  0x0802_0000 │ GICv2m MSI frame      4 KiB  │ (only with PCIe MSIs)
//!  0x0803_0000 │ GIC hyp / vcpu i/f           │ (only with EL2)
//!              ├──────────────────────────────┤
//!  0x0900_0000 │ PL011 UART            4 KiB  │ SPI 1
//!  0x0901_0000 │ PL031 RTC             4 KiB  │ SPI 2
//!  0x0902_0000 │ fw_cfg             0x18 B    │
//!  0x0903_0000 │ PL061 GPIO            4 KiB  │ SPI 7 (pin 3: power button)
//!              ├──────────────────────────────┤
//!  0x0a00_0000 │ virtio-mmio transport 0      │ SPI 16
//!  0x0a00_0200 │ virtio-mmio transport 1      │ SPI 17
//!              │ ... 32 transports of 0x200   │ ...
//!  0x0a00_3e00 │ virtio-mmio transport 31     │ SPI 47
//!              ├──────────────────────────────┤
//!  0x0c00_0000 │ platform bus         32 MiB  │ (dynamic sysbus devices, unused)
//!  0x1000_0000 │ PCIe MMIO / PIO / ECAM       │ (unused here)
//!  0x4000_0000 ├──────────────────────────────┤
//!              │ RAM (up to 255 GiB)          │ kernel at RAM base + text_offset
//!              └──────────────────────────────┘
//! ```
//!
//! Interrupts in the device tree are GIC specifiers `<type number flags>`: type 0 is an SPI
//! (GIC INTID 32 + number), type 1 a PPI (INTID 16 + number). The generic timer's PPIs are
//! 13 (secure EL1 physical), 14 (non-secure EL1 physical), 11 (virtual), 10 (EL2 physical).
//!
//! QEMU attaches the first `-device virtio-*` to the highest transport (slot 31), the next
//! to slot 30, and so on; Linux probes the transports in device-tree (address) order.

/// Flash: two CFI banks.
pub const FLASH_BASE: u64 = 0x0000_0000;
pub const FLASH_BANK_SIZE: u64 = 0x0400_0000;
pub const FLASH_SIZE: u64 = 2 * FLASH_BANK_SIZE;

/// GICv2 distributor (GICD).
pub const GIC_DIST_BASE: u64 = 0x0800_0000;
pub const GIC_DIST_SIZE: u64 = 0x0001_0000;
/// GICv2 CPU interface (GICC).
pub const GIC_CPU_BASE: u64 = 0x0801_0000;
pub const GIC_CPU_SIZE: u64 = 0x0001_0000;
/// GICv2m MSI frame.
pub const GIC_V2M_BASE: u64 = 0x0802_0000;
pub const GIC_V2M_SIZE: u64 = 0x0000_1000;
/// GIC virtualization: hypervisor control (GICH) and virtual CPU interface (GICV).
pub const GIC_HYP_BASE: u64 = 0x0803_0000;
pub const GIC_HYP_SIZE: u64 = 0x0001_0000;
pub const GIC_VCPU_BASE: u64 = 0x0804_0000;
pub const GIC_VCPU_SIZE: u64 = 0x0001_0000;
/// GICv2 supports at most 8 CPUs.
pub const GICV2_MAX_CPUS: u32 = 8;

/// PL011 UART (the console, `ttyAMA0`).
pub const UART_BASE: u64 = 0x0900_0000;
pub const UART_SIZE: u64 = 0x0000_1000;
pub const UART_SPI: u32 = 1;
/// PL031 real-time clock.
pub const RTC_BASE: u64 = 0x0901_0000;
pub const RTC_SIZE: u64 = 0x0000_1000;
pub const RTC_SPI: u32 = 2;
/// QEMU's firmware configuration interface.
pub const FW_CFG_BASE: u64 = 0x0902_0000;
pub const FW_CFG_SIZE: u64 = 0x0000_0018;
/// PL061 GPIO controller; pin 3 is the power button (gpio-keys, KEY_POWER).
pub const GPIO_BASE: u64 = 0x0903_0000;
pub const GPIO_SIZE: u64 = 0x0000_1000;
pub const GPIO_SPI: u32 = 7;
pub const GPIO_POWEROFF_PIN: u32 = 3;
/// Linux input event code KEY_POWER.
pub const KEY_POWER: u32 = 116;

/// virtio-mmio transports: 32 of 0x200 bytes from 0x0a00_0000, SPI 16 + n.
pub const VIRTIO_MMIO_BASE: u64 = 0x0a00_0000;
pub const VIRTIO_MMIO_SIZE: u64 = 0x0000_0200;
pub const VIRTIO_MMIO_COUNT: usize = 32;
pub const VIRTIO_MMIO_SPI: u32 = 16;

/// Platform bus, PCIe windows (not modelled; kept so nothing is placed there).
pub const PLATFORM_BUS_BASE: u64 = 0x0c00_0000;
pub const PLATFORM_BUS_SIZE: u64 = 0x0200_0000;
pub const PCIE_MMIO_BASE: u64 = 0x1000_0000;
pub const PCIE_ECAM_BASE: u64 = 0x3f00_0000;

/// RAM.
pub const RAM_BASE: u64 = 0x4000_0000;
/// QEMU's limit for RAM below the high memory region (255 GiB).
pub const RAM_MAX: u64 = 255 << 30;

/// Generic timer PPIs (numbers within the PPI range; INTID = 16 + n).
pub const TIMER_SEC_EL1_PPI: u32 = 13;
pub const TIMER_NS_EL1_PPI: u32 = 14;
pub const TIMER_VIRT_PPI: u32 = 11;
pub const TIMER_NS_EL2_PPI: u32 = 10;
/// PMU overflow PPI.
pub const PMU_PPI: u32 = 7;
/// GIC maintenance interrupt PPI (with EL2).
pub const GIC_MAINT_PPI: u32 = 9;

/// The fixed clock feeding the PL011 and PL031 (`/apb-pclk`, 24 MHz).
pub const APB_PCLK_HZ: u32 = 24_000_000;

/// First INTID of the SPIs and PPIs.
pub const SPI_BASE_INTID: u32 = 32;
pub const PPI_BASE_INTID: u32 = 16;

/// Base address of virtio-mmio transport `n` (0..32).
pub const fn virtio_mmio_base(n: usize) -> u64 {
    VIRTIO_MMIO_BASE + VIRTIO_MMIO_SIZE * n as u64
}

/// SPI number of virtio-mmio transport `n`.
pub const fn virtio_mmio_spi(n: usize) -> u32 {
    VIRTIO_MMIO_SPI + n as u32
}

/// GIC INTID of SPI `spi` (what the distributor's input lines are numbered by).
pub const fn spi_intid(spi: u32) -> u32 {
    SPI_BASE_INTID + spi
}

/// GIC INTID of PPI `ppi`.
pub const fn ppi_intid(ppi: u32) -> u32 {
    PPI_BASE_INTID + ppi
}

/// MPIDR affinity of CPU `n` (also its `reg` in `/cpus`): QEMU's virt with a GICv2 puts
/// 8 CPUs in a cluster, Aff0 = n % 8, Aff1 = n / 8.
pub const fn mpidr_affinity(n: u32) -> u64 {
    (((n / 8) as u64) << 8) | (n % 8) as u64
}

/// The transport slot QEMU gives the `i`-th virtio device of the command line.
pub const fn qemu_virtio_slot(i: usize) -> usize {
    VIRTIO_MMIO_COUNT - 1 - i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_do_not_overlap_and_match_qemu() {
        let mut regions = vec![
            (FLASH_BASE, FLASH_SIZE),
            (GIC_DIST_BASE, GIC_DIST_SIZE),
            (GIC_CPU_BASE, GIC_CPU_SIZE),
            (GIC_V2M_BASE, GIC_V2M_SIZE),
            (GIC_HYP_BASE, GIC_HYP_SIZE),
            (GIC_VCPU_BASE, GIC_VCPU_SIZE),
            (UART_BASE, UART_SIZE),
            (RTC_BASE, RTC_SIZE),
            (FW_CFG_BASE, FW_CFG_SIZE),
            (GPIO_BASE, GPIO_SIZE),
            (PLATFORM_BUS_BASE, PLATFORM_BUS_SIZE),
        ];
        regions.extend((0..VIRTIO_MMIO_COUNT).map(|n| (virtio_mmio_base(n), VIRTIO_MMIO_SIZE)));
        regions.sort();
        for w in regions.windows(2) {
            assert!(
                w[0].0 + w[0].1 <= w[1].0,
                "{:#x?} overlaps {:#x?}",
                w[0],
                w[1]
            );
        }
        assert!(regions.last().map(|r| r.0 + r.1).unwrap() <= RAM_BASE);
        assert_eq!(virtio_mmio_base(31), 0x0a00_3e00);
        assert_eq!(virtio_mmio_spi(31), 47);
        assert_eq!(spi_intid(UART_SPI), 33);
        assert_eq!(ppi_intid(TIMER_NS_EL1_PPI), 30);
        assert_eq!(ppi_intid(TIMER_VIRT_PPI), 27);
        assert_eq!(qemu_virtio_slot(0), 31);
        assert_eq!(mpidr_affinity(3), 3);
        assert_eq!(mpidr_affinity(9), 0x101);
    }
}
