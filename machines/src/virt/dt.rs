//! The `virt` board's device tree, generated from its configuration with the node names,
//! compatibles and properties QEMU's virt machine gives the same devices (compare with
//! `qemu-system-aarch64 -M virt,dumpdtb=FILE`).
//!
//! One function per node group; every address and interrupt number comes from
//! [`super::layout`].

use super::layout::*;
use armboard_firmware::fdt::{cells64, Fdt, FdtError, Node};
use std::ops::Range;

/// Why no device tree could be made for a configuration.
#[derive(Debug, thiserror::Error)]
pub enum DtError {
    #[error("{0} CPUs: the virt board with a GICv2 has 1 to {GICV2_MAX_CPUS}")]
    Cpus(u32),
    #[error("RAM size {0:#x}: must be non-zero, a multiple of 4 KiB and at most {RAM_MAX:#x}")]
    RamSize(u64),
    #[error("virtio-mmio slot {0}: there are {VIRTIO_MMIO_COUNT} (0..{VIRTIO_MMIO_COUNT})")]
    VirtioSlot(usize),
    #[error("initrd {0:#x?} is not inside RAM")]
    Initrd(Range<u64>),
    #[error(transparent)]
    Fdt(#[from] FdtError),
}

/// Optional devices of the board (QEMU always has them; here each is described only when
/// the machine really maps it, since Linux probes what the tree names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtDevices {
    /// `/pl031@9010000`.
    pub rtc: bool,
    /// `/fw-cfg@9020000`.
    pub fw_cfg: bool,
    /// `/pl061@9030000` and `/gpio-keys` (the power button).
    pub gpio: bool,
    /// `/flash@0`.
    pub flash: bool,
    /// `/pmu` (the CPU's performance monitors, PPI 7).
    pub pmu: bool,
}

impl Default for VirtDevices {
    fn default() -> Self {
        VirtDevices {
            rtc: true,
            fw_cfg: false,
            gpio: false,
            flash: false,
            pmu: false,
        }
    }
}

/// What the board looks like to the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtConfig {
    /// Number of CPUs (1..=8).
    pub cpus: u32,
    /// The CPUs' compatible: `arm,cortex-a53`, `arm,cortex-a72`.
    pub cpu_compatible: String,
    /// RAM at [`RAM_BASE`].
    pub ram_size: u64,
    /// The kernel command line (`/chosen` bootargs).
    pub bootargs: String,
    /// `/chosen/rng-seed`: bytes that seed the kernel's RNG before any device exists, as
    /// QEMU provides (otherwise early boot waits on jitter entropy).
    pub rng_seed: Option<Vec<u8>>,
    /// Where the initrd was loaded (`/chosen` linux,initrd-start/end).
    pub initrd: Option<Range<u64>>,
    /// The virtio-mmio transports to describe. QEMU describes all 32 (empty ones read
    /// device ID 0 and Linux skips them); a machine that maps only some lists those.
    pub virtio_slots: Vec<usize>,
    pub devices: VirtDevices,
}

impl VirtConfig {
    /// `cpus` Cortex-A72s with `ram_size` bytes of RAM, a PL011 and PL031, all 32
    /// virtio-mmio transports, no command line, no initrd.
    pub fn new(cpus: u32, ram_size: u64) -> VirtConfig {
        VirtConfig {
            cpus,
            cpu_compatible: "arm,cortex-a72".into(),
            ram_size,
            bootargs: String::new(),
            rng_seed: None,
            initrd: None,
            virtio_slots: (0..VIRTIO_MMIO_COUNT).collect(),
            devices: VirtDevices::default(),
        }
    }
}

/// Phandles, allocated from 0x8000 as QEMU does.
const PHANDLE_CLOCK: u32 = 0x8000;
const PHANDLE_GIC: u32 = 0x8001;
const PHANDLE_GPIO: u32 = 0x8002;
const PHANDLE_CPU0: u32 = 0x8010;

/// GIC interrupt specifier types and flags (include/dt-bindings/interrupt-controller).
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
const IRQ_EDGE_RISING: u32 = 1;
const IRQ_LEVEL_HIGH: u32 = 4;

/// PSCI 0.1 function IDs QEMU lists for the old `arm,psci` binding (SMC32/SMC64 IDs of
/// CPU_SUSPEND, CPU_OFF, CPU_ON and MIGRATE as PSCI 0.2 numbers them).
const PSCI_CPU_SUSPEND: u32 = 0xc400_0001;
const PSCI_CPU_OFF: u32 = 0x8400_0002;
const PSCI_CPU_ON: u32 = 0xc400_0003;
const PSCI_MIGRATE: u32 = 0xc400_0005;

/// The device tree for `cfg`, as a tree (to change further).
pub fn build(cfg: &VirtConfig) -> Result<Fdt, DtError> {
    check(cfg)?;
    let mut fdt = Fdt::new();
    let root = &mut fdt.root;
    root.set_u32("interrupt-parent", PHANDLE_GIC)
        .set_str("model", "linux,dummy-virt")
        .set_u32("#size-cells", 2)
        .set_u32("#address-cells", 2)
        .set_str("compatible", "linux,dummy-virt");
    add_psci(root);
    add_memory(root, cfg);
    add_cpus(root, cfg);
    add_timer(root, cfg);
    add_clock(root);
    add_gic(root);
    if cfg.devices.pmu {
        add_pmu(root, cfg);
    }
    if cfg.devices.flash {
        add_flash(root);
    }
    add_uart(root);
    if cfg.devices.rtc {
        add_rtc(root);
    }
    if cfg.devices.fw_cfg {
        add_fw_cfg(root);
    }
    if cfg.devices.gpio {
        add_gpio(root);
    }
    add_virtio(root, cfg);
    add_chosen(root, cfg);
    Ok(fdt)
}

/// The DTB for `cfg`.
pub fn generate(cfg: &VirtConfig) -> Result<Vec<u8>, DtError> {
    Ok(build(cfg)?.to_bytes()?)
}

fn check(cfg: &VirtConfig) -> Result<(), DtError> {
    if cfg.cpus == 0 || cfg.cpus > GICV2_MAX_CPUS {
        return Err(DtError::Cpus(cfg.cpus));
    }
    if cfg.ram_size == 0 || cfg.ram_size > RAM_MAX || !cfg.ram_size.is_multiple_of(4096) {
        return Err(DtError::RamSize(cfg.ram_size));
    }
    if let Some(&s) = cfg.virtio_slots.iter().find(|&&s| s >= VIRTIO_MMIO_COUNT) {
        return Err(DtError::VirtioSlot(s));
    }
    if let Some(r) = &cfg.initrd {
        let ram = RAM_BASE..RAM_BASE + cfg.ram_size;
        if r.start > r.end || r.start < ram.start || r.end > ram.end {
            return Err(DtError::Initrd(r.clone()));
        }
    }
    Ok(())
}

/// `<SPI n flags>` / `<PPI n flags>`.
fn irq(kind: u32, n: u32, flags: u32) -> [u32; 3] {
    [kind, n, flags]
}

/// A PPI's flags carry the mask of CPUs it is wired to (bits 8..15) on a GICv2.
fn ppi_flags(cfg: &VirtConfig) -> u32 {
    (((1u32 << cfg.cpus) - 1) << 8) | IRQ_LEVEL_HIGH
}

fn add_psci(root: &mut Node) {
    root.add_child(Node::new("psci"))
        .set_u32("migrate", PSCI_MIGRATE)
        .set_u32("cpu_on", PSCI_CPU_ON)
        .set_u32("cpu_off", PSCI_CPU_OFF)
        .set_u32("cpu_suspend", PSCI_CPU_SUSPEND)
        .set_str("method", "hvc")
        .set_strs("compatible", &["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]);
}

fn add_memory(root: &mut Node, cfg: &VirtConfig) {
    root.add_child(Node::new(format!("memory@{RAM_BASE:x}")))
        .set_u64s("reg", &[RAM_BASE, cfg.ram_size])
        .set_str("device_type", "memory");
}

fn add_cpus(root: &mut Node, cfg: &VirtConfig) {
    let cpus = root.add_child(Node::new("cpus"));
    cpus.set_u32("#size-cells", 0).set_u32("#address-cells", 1);
    let mut cluster = Node::new("cluster0");
    for n in 0..cfg.cpus {
        cluster
            .add_child(Node::new(format!("core{n}")))
            .set_u32("cpu", PHANDLE_CPU0 + n);
    }
    let mut socket = Node::new("socket0");
    socket.add_child(cluster);
    cpus.add_child(Node::new("cpu-map")).add_child(socket);
    for n in 0..cfg.cpus {
        // With at most 8 CPUs every affinity fits the one address cell.
        let aff = mpidr_affinity(n) as u32;
        cpus.add_child(Node::new(format!("cpu@{aff:x}")))
            .set_u32("phandle", PHANDLE_CPU0 + n)
            .set_u32("reg", aff)
            .set_str("enable-method", "psci")
            .set_str("compatible", &cfg.cpu_compatible)
            .set_str("device_type", "cpu");
    }
}

fn add_timer(root: &mut Node, cfg: &VirtConfig) {
    let f = ppi_flags(cfg);
    let mut v = Vec::new();
    for ppi in [
        TIMER_SEC_EL1_PPI,
        TIMER_NS_EL1_PPI,
        TIMER_VIRT_PPI,
        TIMER_NS_EL2_PPI,
    ] {
        v.extend(irq(GIC_PPI, ppi, f));
    }
    root.add_child(Node::new("timer"))
        .set_cells("interrupts", &v)
        .set_empty("always-on")
        .set_strs("compatible", &["arm,armv8-timer", "arm,armv7-timer"]);
}

fn add_clock(root: &mut Node) {
    root.add_child(Node::new("apb-pclk"))
        .set_u32("phandle", PHANDLE_CLOCK)
        .set_str("clock-output-names", "clk24mhz")
        .set_u32("clock-frequency", APB_PCLK_HZ)
        .set_u32("#clock-cells", 0)
        .set_str("compatible", "fixed-clock");
}

fn add_gic(root: &mut Node) {
    root.add_child(Node::new(format!("intc@{GIC_DIST_BASE:x}")))
        .set_u32("phandle", PHANDLE_GIC)
        .set_u64s(
            "reg",
            &[GIC_DIST_BASE, GIC_DIST_SIZE, GIC_CPU_BASE, GIC_CPU_SIZE],
        )
        .set_str("compatible", "arm,cortex-a15-gic")
        .set_empty("ranges")
        .set_u32("#size-cells", 2)
        .set_u32("#address-cells", 2)
        .set_empty("interrupt-controller")
        .set_u32("#interrupt-cells", 3);
}

fn add_pmu(root: &mut Node, cfg: &VirtConfig) {
    root.add_child(Node::new("pmu"))
        .set_cells("interrupts", &irq(GIC_PPI, PMU_PPI, ppi_flags(cfg)))
        .set_str("compatible", "arm,armv8-pmuv3");
}

fn add_flash(root: &mut Node) {
    root.add_child(Node::new(format!("flash@{FLASH_BASE:x}")))
        .set_u32("bank-width", 4)
        .set_u64s(
            "reg",
            &[
                FLASH_BASE,
                FLASH_BANK_SIZE,
                FLASH_BASE + FLASH_BANK_SIZE,
                FLASH_BANK_SIZE,
            ],
        )
        .set_str("compatible", "cfi-flash");
}

fn add_uart(root: &mut Node) {
    root.add_child(Node::new(format!("pl011@{UART_BASE:x}")))
        .set_strs("clock-names", &["uartclk", "apb_pclk"])
        .set_cells("clocks", &[PHANDLE_CLOCK, PHANDLE_CLOCK])
        .set_cells("interrupts", &irq(GIC_SPI, UART_SPI, IRQ_LEVEL_HIGH))
        .set_u64s("reg", &[UART_BASE, UART_SIZE])
        .set_strs("compatible", &["arm,pl011", "arm,primecell"]);
}

fn add_rtc(root: &mut Node) {
    root.add_child(Node::new(format!("pl031@{RTC_BASE:x}")))
        .set_str("clock-names", "apb_pclk")
        .set_u32("clocks", PHANDLE_CLOCK)
        .set_cells("interrupts", &irq(GIC_SPI, RTC_SPI, IRQ_LEVEL_HIGH))
        .set_u64s("reg", &[RTC_BASE, RTC_SIZE])
        .set_strs("compatible", &["arm,pl031", "arm,primecell"]);
}

fn add_fw_cfg(root: &mut Node) {
    root.add_child(Node::new(format!("fw-cfg@{FW_CFG_BASE:x}")))
        .set_empty("dma-coherent")
        .set_u64s("reg", &[FW_CFG_BASE, FW_CFG_SIZE])
        .set_str("compatible", "qemu,fw-cfg-mmio");
}

fn add_gpio(root: &mut Node) {
    root.add_child(Node::new(format!("pl061@{GPIO_BASE:x}")))
        .set_u32("phandle", PHANDLE_GPIO)
        .set_str("clock-names", "apb_pclk")
        .set_u32("clocks", PHANDLE_CLOCK)
        .set_cells("interrupts", &irq(GIC_SPI, GPIO_SPI, IRQ_LEVEL_HIGH))
        .set_empty("gpio-controller")
        .set_u32("#gpio-cells", 2)
        .set_strs("compatible", &["arm,pl061", "arm,primecell"])
        .set_u64s("reg", &[GPIO_BASE, GPIO_SIZE]);
    let keys = root.add_child(Node::new("gpio-keys"));
    keys.set_str("compatible", "gpio-keys");
    keys.add_child(Node::new("poweroff"))
        .set_cells("gpios", &[PHANDLE_GPIO, GPIO_POWEROFF_PIN, 0])
        .set_u32("linux,code", KEY_POWER)
        .set_str("label", "GPIO Key Poweroff");
}

fn add_virtio(root: &mut Node, cfg: &VirtConfig) {
    let mut slots = cfg.virtio_slots.clone();
    slots.sort_unstable();
    slots.dedup();
    for n in slots {
        let base = virtio_mmio_base(n);
        root.add_child(Node::new(format!("virtio_mmio@{base:x}")))
            .set_empty("dma-coherent")
            .set_cells(
                "interrupts",
                &irq(GIC_SPI, virtio_mmio_spi(n), IRQ_EDGE_RISING),
            )
            .set("reg", cells64(&[base, VIRTIO_MMIO_SIZE]))
            .set_str("compatible", "virtio,mmio");
    }
}

fn add_chosen(root: &mut Node, cfg: &VirtConfig) {
    let chosen = root.add_child(Node::new("chosen"));
    chosen.set_str("stdout-path", &format!("/pl011@{UART_BASE:x}"));
    chosen.set_str("bootargs", &cfg.bootargs);
    if let Some(seed) = &cfg.rng_seed {
        chosen.set("rng-seed", seed.clone());
    }
    if let Some(r) = &cfg.initrd {
        chosen.set_u64s("linux,initrd-start", &[r.start]);
        chosen.set_u64s("linux,initrd-end", &[r.end]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> VirtConfig {
        let mut c = VirtConfig::new(2, 512 << 20);
        c.bootargs = "console=ttyAMA0".into();
        c.initrd = Some(0x4800_0000..0x4810_0000);
        c
    }

    #[test]
    fn describes_the_qemu_virt_board() {
        let blob = generate(&cfg()).unwrap();
        let f = Fdt::parse(&blob).unwrap();
        assert_eq!(f.root.prop_str("compatible"), Some("linux,dummy-virt"));
        assert_eq!(f.root.prop_u32("#address-cells"), Some(2));
        assert_eq!(f.root.prop_u32("interrupt-parent"), Some(PHANDLE_GIC));
        let gic = f.node("/intc@8000000").unwrap();
        assert_eq!(gic.prop_u32("phandle"), Some(PHANDLE_GIC));
        assert_eq!(
            gic.prop_cells("reg").unwrap(),
            [0, 0x0800_0000, 0, 0x1_0000, 0, 0x0801_0000, 0, 0x1_0000]
        );
        assert!(gic.prop("interrupt-controller").is_some());
        let uart = f.node("/pl011@9000000").unwrap();
        assert_eq!(uart.prop_cells("interrupts").unwrap(), [0, 1, 4]);
        assert_eq!(
            uart.prop_strs("clock-names").unwrap(),
            ["uartclk", "apb_pclk"]
        );
        assert_eq!(
            f.node("/pl031@9010000")
                .unwrap()
                .prop_cells("interrupts")
                .unwrap(),
            [0, 2, 4]
        );
        assert_eq!(
            f.node("/timer").unwrap().prop_cells("interrupts").unwrap(),
            [1, 13, 0x304, 1, 14, 0x304, 1, 11, 0x304, 1, 10, 0x304]
        );
        let cpu1 = f.node("/cpus/cpu@1").unwrap();
        assert_eq!(cpu1.prop_u32("reg"), Some(1));
        assert_eq!(cpu1.prop_str("enable-method"), Some("psci"));
        assert_eq!(cpu1.prop_str("compatible"), Some("arm,cortex-a72"));
        assert_eq!(
            f.node("/cpus/cpu-map/socket0/cluster0/core1")
                .unwrap()
                .prop_u32("cpu"),
            cpu1.prop_u32("phandle")
        );
        assert_eq!(f.node("/psci").unwrap().prop_str("method"), Some("hvc"));
        let v31 = f.node("/virtio_mmio@a003e00").unwrap();
        assert_eq!(v31.prop_cells("interrupts").unwrap(), [0, 47, 1]);
        assert_eq!(
            f.root
                .children
                .iter()
                .filter(|c| c.name.starts_with("virtio_mmio@"))
                .count(),
            32
        );
        let mem = f.node("/memory@40000000").unwrap();
        assert_eq!(
            mem.prop_cells("reg").unwrap(),
            [0, 0x4000_0000, 0, 0x2000_0000]
        );
        let chosen = f.node("/chosen").unwrap();
        assert_eq!(chosen.prop_str("stdout-path"), Some("/pl011@9000000"));
        assert_eq!(chosen.prop_str("bootargs"), Some("console=ttyAMA0"));
        assert_eq!(
            chosen.prop_cells("linux,initrd-end").unwrap(),
            [0, 0x4810_0000]
        );
        // Optional devices appear only when asked for.
        assert!(f.node("/fw-cfg@9020000").is_none());
        assert!(f.node("/pl061@9030000").is_none());
    }

    #[test]
    fn single_cpu_slots_and_optional_devices() {
        let mut c = VirtConfig::new(1, 128 << 20);
        c.cpu_compatible = "arm,cortex-a53".into();
        c.virtio_slots = vec![31, 30, 31];
        c.devices = VirtDevices {
            rtc: false,
            fw_cfg: true,
            gpio: true,
            flash: true,
            pmu: true,
        };
        let f = build(&c).unwrap();
        assert_eq!(
            f.node("/timer").unwrap().prop_cells("interrupts").unwrap()[2],
            0x104
        );
        let names: Vec<&str> = f.root.children.iter().map(|c| c.name.as_str()).collect();
        for n in [
            "fw-cfg@9020000",
            "pl061@9030000",
            "gpio-keys",
            "flash@0",
            "pmu",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        assert!(!names.contains(&"pl031@9010000"));
        let virtio: Vec<&&str> = names.iter().filter(|n| n.starts_with("virtio")).collect();
        assert_eq!(virtio, [&"virtio_mmio@a003c00", &"virtio_mmio@a003e00"]);
        assert!(f
            .node("/chosen")
            .unwrap()
            .prop("linux,initrd-start")
            .is_none());
    }

    #[test]
    fn rejects_impossible_configs() {
        assert!(matches!(
            generate(&VirtConfig::new(0, 1 << 30)),
            Err(DtError::Cpus(0))
        ));
        assert!(matches!(
            generate(&VirtConfig::new(9, 1 << 30)),
            Err(DtError::Cpus(9))
        ));
        assert!(matches!(
            generate(&VirtConfig::new(1, 0)),
            Err(DtError::RamSize(0))
        ));
        let mut c = VirtConfig::new(1, 1 << 30);
        c.virtio_slots = vec![32];
        assert!(matches!(generate(&c), Err(DtError::VirtioSlot(32))));
        let mut c = VirtConfig::new(1, 1 << 30);
        c.initrd = Some(0x1000..0x2000);
        assert!(matches!(generate(&c), Err(DtError::Initrd(_))));
    }
}
