use super::*;
use std::sync::atomic::AtomicBool;

struct Rig {
    gic: Arc<Gic>,
    outs: Vec<Arc<CpuInterrupts>>,
    d: GicDistributor,
    c: GicCpuInterface,
}

fn rig(cpus: usize) -> Rig {
    let outs: Vec<_> = (0..cpus)
        .map(|_| Arc::new(CpuInterrupts::new(Arc::new(AtomicBool::new(false)))))
        .collect();
    let gic = Gic::new(cpus, 256, outs.clone());
    let d = gic.distributor();
    let c = gic.cpu_interface();
    Rig { gic, outs, d, c }
}

impl Rig {
    fn dw(&mut self, cpu: usize, off: u64, v: u32) {
        self.d.write_from(cpu, off, 4, v as u64);
    }
    fn dr(&mut self, cpu: usize, off: u64) -> u32 {
        self.d.read_from(cpu, off, 4) as u32
    }
    fn cw(&mut self, cpu: usize, off: u64, v: u32) {
        self.c.write_from(cpu, off, 4, v as u64);
    }
    fn cr(&mut self, cpu: usize, off: u64) -> u32 {
        self.c.read_from(cpu, off, 4) as u32
    }
    /// What Linux's gic_dist_init / gic_cpu_init leave: everything enabled, PMR 0xf0.
    fn linux_init(&mut self) {
        self.dw(0, GICD_CTLR, 1);
        for cpu in 0..self.outs.len() {
            self.cw(cpu, GICC_PMR, 0xF0);
            self.cw(cpu, GICC_CTLR, 1);
            self.dw(cpu, GICD_ISENABLER, 0xFFFF_FFFF);
            for i in 0..8 {
                self.dw(cpu, GICD_IPRIORITYR + 4 * i, 0xA0A0_A0A0);
            }
        }
        for i in 8..(self.gic.num_irqs() as u64 / 4) {
            self.dw(0, GICD_IPRIORITYR + 4 * i, 0xA0A0_A0A0);
        }
    }
    fn enable_spi(&mut self, id: u32) {
        self.dw(0, GICD_ISENABLER + 4 * (id as u64 / 32), 1 << (id % 32));
    }
    fn irq(&self, cpu: usize) -> bool {
        self.outs[cpu].irq()
    }
}

#[test]
fn typer_iidr_and_ids_describe_a_gic400() {
    let mut r = rig(4);
    let typer = r.dr(0, GICD_TYPER);
    assert_eq!(typer & 0x1F, (32 + 256) / 32 - 1);
    assert_eq!((typer >> 5) & 7, 3);
    assert_eq!(r.dr(0, GICD_IIDR), 0x0200_143B);
    assert_eq!(r.cr(0, GICC_IIDR), 0x0202_143B);
    assert_eq!(r.dr(0, 0xFE8) >> 4 & 0xF, 2, "PIDR2 ArchRev = GICv2");
    let cid: Vec<u32> = (0..4).map(|i| r.dr(0, 0xFF0 + 4 * i)).collect();
    assert_eq!(cid, [0x0D, 0xF0, 0x05, 0xB1]);
}

#[test]
fn sgi_ppi_targets_read_the_current_cpu() {
    let mut r = rig(4);
    for cpu in 0..4 {
        assert_eq!(r.dr(cpu, GICD_ITARGETSR), 0x0101_0101 << cpu);
        assert_eq!(r.d.read_from(cpu, GICD_ITARGETSR + 31, 1), 1 << cpu);
    }
    // SPI targets are byte-writable and masked to existing CPUs.
    r.d.write_from(0, GICD_ITARGETSR + 33, 1, 0xFF);
    assert_eq!(r.dr(1, GICD_ITARGETSR + 32), 0x0F00);
}

#[test]
fn priority_bytes_are_banked_for_private_interrupts() {
    let mut r = rig(2);
    r.d.write_from(0, GICD_IPRIORITYR + 27, 1, 0x40);
    r.d.write_from(1, GICD_IPRIORITYR + 27, 1, 0x80);
    assert_eq!(r.d.read_from(0, GICD_IPRIORITYR + 27, 1), 0x40);
    assert_eq!(r.d.read_from(1, GICD_IPRIORITYR + 27, 1), 0x80);
    r.d.write_from(1, GICD_IPRIORITYR + 40, 2, 0x1234);
    assert_eq!(r.dr(0, GICD_IPRIORITYR + 40), 0x1234);
    // A halfword write to a word-only register is ignored.
    r.d.write_from(0, GICD_CTLR, 2, 1);
    assert_eq!(r.dr(0, GICD_CTLR), 0);
}

#[test]
fn spi_acknowledge_and_eoi_with_priorities() {
    let mut r = rig(1);
    r.linux_init();
    r.enable_spi(40);
    r.enable_spi(41);
    r.d.write_from(0, GICD_IPRIORITYR + 41, 1, 0x80);
    r.gic.set_level(40, true);
    assert!(r.irq(0));
    r.gic.set_level(41, true);
    assert_eq!(r.cr(0, GICC_HPPIR), 41);
    // 41 has the higher priority (lower value).
    assert_eq!(r.cr(0, GICC_IAR), 41);
    assert_eq!(r.cr(0, GICC_RPR), 0x80);
    // 40 (0xa0) cannot preempt a running 0x80.
    assert!(!r.irq(0));
    assert_eq!(r.cr(0, GICC_IAR), SPURIOUS);
    r.gic.set_level(41, false);
    r.cw(0, GICC_EOIR, 41);
    assert_eq!(r.cr(0, GICC_RPR), 0xFF);
    assert!(r.irq(0));
    assert_eq!(r.cr(0, GICC_IAR), 40);
    r.gic.set_level(40, false);
    r.cw(0, GICC_EOIR, 40);
    assert!(!r.irq(0));
    assert_eq!(r.cr(0, GICC_IAR), SPURIOUS);
}

#[test]
fn priority_mask_and_enables_gate_signalling() {
    let mut r = rig(1);
    r.linux_init();
    r.gic.set_level(50, true);
    assert!(!r.irq(0), "disabled SPI is not signalled");
    r.enable_spi(50);
    assert!(r.irq(0));
    r.cw(0, GICC_PMR, 0xA0);
    assert!(!r.irq(0), "priority equal to the mask is masked");
    assert_eq!(r.cr(0, GICC_IAR), SPURIOUS);
    r.cw(0, GICC_PMR, 0xF0);
    r.dw(0, GICD_CTLR, 0);
    assert!(!r.irq(0), "distributor disabled");
    r.dw(0, GICD_CTLR, 1);
    r.cw(0, GICC_CTLR, 0);
    assert!(!r.irq(0), "CPU interface disabled");
    r.cw(0, GICC_CTLR, 1);
    assert!(r.irq(0));
}

#[test]
fn level_interrupt_stays_pending_while_high() {
    let mut r = rig(1);
    r.linux_init();
    r.enable_spi(33);
    r.gic.set_level(33, true);
    assert_eq!(r.cr(0, GICC_IAR), 33);
    // Active and pending: not signalled again until deactivated.
    assert_eq!(r.dr(0, GICD_ISPENDR + 4) & 2, 2);
    assert!(!r.irq(0));
    r.cw(0, GICC_EOIR, 33);
    assert!(r.irq(0), "line still high: pending again");
    // Clearing the pending bit does not help while the line is high.
    r.dw(0, GICD_ICPENDR + 4, 2);
    assert!(r.irq(0));
    r.gic.set_level(33, false);
    assert!(!r.irq(0));
    assert_eq!(r.dr(0, GICD_ISPENDR + 4) & 2, 0);
}

#[test]
fn edge_interrupt_latches_one_rising_edge() {
    let mut r = rig(1);
    r.linux_init();
    r.enable_spi(34);
    // ICFGR2 covers INTIDs 32..47; bit 5 = Int_config[1] of INTID 34.
    r.dw(0, GICD_ICFGR + 8, 1 << 5);
    assert_eq!(r.dr(0, GICD_ICFGR + 8), 1 << 5);
    r.gic.set_level(34, true);
    r.gic.set_level(34, false);
    assert!(r.irq(0), "edge latched after the line fell");
    assert_eq!(r.cr(0, GICC_IAR), 34);
    r.cw(0, GICC_EOIR, 34);
    assert!(!r.irq(0), "one edge, one interrupt");
    // A software-set pending bit works the same way.
    r.dw(0, GICD_ISPENDR + 4, 1 << 2);
    assert_eq!(r.cr(0, GICC_IAR), 34);
    r.cw(0, GICC_EOIR, 34);
    assert_eq!(r.cr(0, GICC_IAR), SPURIOUS);
}

#[test]
fn ppis_are_per_cpu_lines() {
    let mut r = rig(2);
    r.linux_init();
    // Virtual timer PPI 27 on CPU 1.
    r.gic.set_level(1 << 16 | 27, true);
    assert!(!r.irq(0));
    assert!(r.irq(1));
    assert_eq!(r.cr(0, GICC_IAR), SPURIOUS);
    assert_eq!(r.cr(1, GICC_IAR), 27);
    r.gic.set_level(1 << 16 | 27, false);
    r.cw(1, GICC_EOIR, 27);
    assert!(!r.irq(1));
    // Disabling a PPI on CPU 0 leaves CPU 1's copy enabled.
    r.dw(0, GICD_ICENABLER, 1 << 27);
    assert_eq!(r.dr(0, GICD_ISENABLER) & 1 << 27, 0);
    assert_ne!(r.dr(1, GICD_ISENABLER) & 1 << 27, 0);
}

#[test]
fn sgir_target_filters_and_source_cpu_in_iar() {
    let mut r = rig(4);
    r.linux_init();
    // CPU 2 sends SGI 3 to CPUs 0 and 3 (target list).
    r.dw(2, GICD_SGIR, 0b1001 << 16 | 3);
    assert!(r.irq(0) && r.irq(3) && !r.irq(1) && !r.irq(2));
    assert_eq!(r.cr(3, GICC_IAR), 2 << 10 | 3);
    r.cw(3, GICC_EOIR, 2 << 10 | 3);
    assert!(!r.irq(3));
    // The pending source is visible in SPENDSGIR of the target.
    assert_eq!(r.d.read_from(0, GICD_SPENDSGIR + 3, 1), 1 << 2);
    r.d.write_from(0, GICD_CPENDSGIR + 3, 1, 1 << 2);
    assert!(!r.irq(0));
    // To all others.
    r.dw(1, GICD_SGIR, 1 << 24 | 5);
    assert!(r.irq(0) && r.irq(2) && r.irq(3) && !r.irq(1));
    // To self.
    r.dw(1, GICD_SGIR, 2 << 24 | 6);
    assert_eq!(r.cr(1, GICC_IAR), 1 << 10 | 6);
    // Two sources of one SGI: acknowledged one at a time, after deactivation.
    r.dw(0, GICD_SGIR, 0b10 << 16 | 7);
    r.dw(2, GICD_SGIR, 0b10 << 16 | 7);
    r.cw(1, GICC_EOIR, 1 << 10 | 6);
    assert_eq!(r.cr(1, GICC_IAR), 7);
    r.cw(1, GICC_EOIR, 7);
    assert_eq!(r.cr(1, GICC_IAR), 2 << 10 | 7);
}

#[test]
fn spi_to_many_cpus_is_taken_by_the_first() {
    let mut r = rig(2);
    r.linux_init();
    r.enable_spi(60);
    r.d.write_from(0, GICD_ITARGETSR + 60, 1, 0b11);
    r.gic.set_level(60, true);
    assert!(r.irq(0) && r.irq(1));
    assert_eq!(r.cr(1, GICC_IAR), 60);
    assert!(!r.irq(0));
    assert_eq!(r.cr(0, GICC_IAR), SPURIOUS);
    // Targeting only CPU 1 keeps it away from CPU 0.
    r.gic.set_level(60, false);
    r.cw(1, GICC_EOIR, 60);
    r.d.write_from(0, GICD_ITARGETSR + 60, 1, 0b10);
    r.gic.set_level(60, true);
    assert!(!r.irq(0) && r.irq(1));
}

#[test]
fn eoimode1_splits_priority_drop_and_deactivate() {
    let mut r = rig(1);
    r.linux_init();
    r.cw(0, GICC_CTLR, 1 | GICC_CTLR_EOIMODE);
    r.enable_spi(35);
    r.gic.set_level(35, true);
    assert_eq!(r.cr(0, GICC_IAR), 35);
    r.gic.set_level(35, false);
    r.cw(0, GICC_EOIR, 35);
    assert_eq!(r.cr(0, GICC_RPR), 0xFF, "priority dropped");
    assert_ne!(r.dr(0, GICD_ISACTIVER + 4) & 1 << 3, 0, "still active");
    r.gic.set_level(35, true);
    assert!(!r.irq(0), "active: not signalled");
    r.cw(0, GICC_DIR, 35);
    assert_eq!(r.dr(0, GICD_ISACTIVER + 4) & 1 << 3, 0);
    assert!(r.irq(0));
}

#[test]
fn preemption_follows_the_binary_point() {
    let mut r = rig(1);
    r.linux_init();
    r.enable_spi(36);
    r.enable_spi(37);
    r.d.write_from(0, GICD_IPRIORITYR + 36, 1, 0x90);
    r.d.write_from(0, GICD_IPRIORITYR + 37, 1, 0x88);
    r.cw(0, GICC_BPR, 2); // group priority bits 7:3
    r.gic.set_level(36, true);
    assert_eq!(r.cr(0, GICC_IAR), 36);
    r.gic.set_level(37, true);
    assert_eq!(r.cr(0, GICC_IAR), 37, "0x88 preempts group 0x90");
    assert_eq!(r.cr(0, GICC_APR0), 1 << (0x88 >> 3) | 1 << (0x90 >> 3));
    r.cw(0, GICC_EOIR, 37);
    r.cw(0, GICC_EOIR, 36);
    r.gic.set_level(36, false);
    r.gic.set_level(37, false);
    // With BPR 4 (group bits 7:5), 0x88 and 0x90 share a group: no preemption.
    r.cw(0, GICC_BPR, 4);
    r.gic.set_level(36, true);
    assert_eq!(r.cr(0, GICC_IAR), 36);
    r.gic.set_level(37, true);
    assert_eq!(r.cr(0, GICC_IAR), SPURIOUS);
}

#[test]
fn group1_needs_ackctl_on_iar_and_fiq_is_for_group0() {
    let mut r = rig(1);
    r.linux_init();
    r.dw(0, GICD_CTLR, 3);
    r.cw(0, GICC_CTLR, 3);
    r.enable_spi(38);
    r.dw(0, GICD_IGROUPR + 4, 1 << 6);
    r.gic.set_level(38, true);
    assert!(r.irq(0));
    assert_eq!(r.cr(0, GICC_IAR), 1022);
    assert_eq!(r.cr(0, GICC_AIAR), 38);
    r.cw(0, GICC_AEOIR, 38);
    r.gic.set_level(38, false);
    // Group 0 with FIQEn goes to FIQ.
    r.cw(0, GICC_CTLR, 3 | GICC_CTLR_FIQEN);
    r.enable_spi(39);
    r.gic.set_level(39, true);
    assert!(r.outs[0].fiq() && !r.irq(0));
}

#[test]
fn bad_accesses_are_ignored() {
    let mut r = rig(1);
    assert_eq!(r.d.read_from(5, GICD_TYPER, 4), 0, "unknown CPU");
    assert_eq!(r.d.read(GICD_TYPER + 1, 4), 0, "misaligned");
    r.c.write(0x3000, 4, 1);
    r.gic.set_level(2000, true);
    r.gic.set_level(5, true);
    r.gic.set_level(7 << 16 | 27, true);
    assert!(!r.irq(0));
}
