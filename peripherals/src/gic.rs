//! Arm Generic Interrupt Controller v2 (GIC-400, as QEMU's `arm,cortex-a15-gic`), without
//! the Security Extensions (the view a kernel entered at EL1 or EL2 has on QEMU's `virt`).
//!
//! Two register frames: the distributor (4 KiB, [`Gic::distributor`]) and the CPU interface
//! (8 KiB, [`Gic::cpu_interface`]); both are banked by the accessing CPU (`read_from`).
//! INTIDs 0..15 are SGIs and 16..31 PPIs, both banked per CPU; 32.. are SPIs (1-of-N: an SPI
//! targeting several CPUs is signalled to all of them and taken by the first to acknowledge).
//!
//! Inputs arrive through [`IrqSink::set_level`]: an SPI by its INTID (32..), a PPI as
//! `cpu << 16 | intid`. Each CPU's output is its [`CpuInterrupts`], set whenever whether it
//! has a signalable interrupt changes. All state sits behind one mutex; the GIC never calls a
//! device, so devices may call it while holding their own lock.
//!
//! Priorities have all 8 bits implemented. Running priority is tracked as the list of
//! acknowledged-but-not-priority-dropped interrupts per CPU (the active priorities).

use armboard_bus::{CpuInterrupts, Device, IrqSink};
use std::sync::{Arc, Mutex, MutexGuard};

/// Size of the distributor frame.
pub const DIST_SIZE: u64 = 0x1000;
/// Size of the CPU interface frame (GICC_DIR sits at 0x1000).
pub const CPU_IF_SIZE: u64 = 0x2000;
/// The most CPUs a GICv2 serves.
pub const MAX_CPUS: usize = 8;
/// INTID read from GICC_IAR when nothing can be acknowledged.
pub const SPURIOUS: u32 = 1023;

// Distributor registers (offsets).
const GICD_CTLR: u64 = 0x000;
const GICD_TYPER: u64 = 0x004;
const GICD_IIDR: u64 = 0x008;
const GICD_IGROUPR: u64 = 0x080;
const GICD_ISENABLER: u64 = 0x100;
const GICD_ICENABLER: u64 = 0x180;
const GICD_ISPENDR: u64 = 0x200;
const GICD_ICPENDR: u64 = 0x280;
const GICD_ISACTIVER: u64 = 0x300;
const GICD_ICACTIVER: u64 = 0x380;
const GICD_IPRIORITYR: u64 = 0x400;
const GICD_ITARGETSR: u64 = 0x800;
const GICD_ICFGR: u64 = 0xC00;
const GICD_SGIR: u64 = 0xF00;
const GICD_CPENDSGIR: u64 = 0xF10;
const GICD_SPENDSGIR: u64 = 0xF20;
const GICD_PIDR4: u64 = 0xFD0;

/// GIC-400 distributor IIDR (ARM, product 0x02, revision 0, variant 0... as the TRM gives).
const GICD_IIDR_VALUE: u32 = 0x0200_143B;
/// GIC-400 CPU interface IIDR (architecture version 2).
const GICC_IIDR_VALUE: u32 = 0x0202_143B;
/// PIDR4..7, PIDR0..3, CIDR0..3 of the GIC-400 (PIDR2 bits 7:4 = 2: GICv2).
const GIC_ID: [u8; 12] = [
    0x04, 0x00, 0x00, 0x00, 0x90, 0xB4, 0x2B, 0x00, 0x0D, 0xF0, 0x05, 0xB1,
];

// CPU interface registers (offsets).
const GICC_CTLR: u64 = 0x00;
const GICC_PMR: u64 = 0x04;
const GICC_BPR: u64 = 0x08;
const GICC_IAR: u64 = 0x0C;
const GICC_EOIR: u64 = 0x10;
const GICC_RPR: u64 = 0x14;
const GICC_HPPIR: u64 = 0x18;
const GICC_ABPR: u64 = 0x1C;
const GICC_AIAR: u64 = 0x20;
const GICC_AEOIR: u64 = 0x24;
const GICC_AHPPIR: u64 = 0x28;
const GICC_APR0: u64 = 0xD0;
const GICC_NSAPR0: u64 = 0xE0;
const GICC_IIDR: u64 = 0xFC;
const GICC_DIR: u64 = 0x1000;

// GICD_CTLR / GICC_CTLR bits (no Security Extensions).
const CTLR_ENABLE_GRP0: u32 = 1 << 0;
const CTLR_ENABLE_GRP1: u32 = 1 << 1;
const GICC_CTLR_ACKCTL: u32 = 1 << 2;
const GICC_CTLR_FIQEN: u32 = 1 << 3;
const GICC_CTLR_CBPR: u32 = 1 << 4;
const GICC_CTLR_EOIMODE: u32 = 1 << 9;
const GICC_CTLR_MASK: u32 = 0x3FF;

/// Per-CPU banked state of INTIDs 0..31 (one bit per INTID).
#[derive(Clone, Default)]
struct Banked {
    enabled: u32,
    /// PPI pending latch (edge, or set through ISPENDR). SGI pending lives in `sgi_src`.
    latch: u32,
    /// PPI input line levels.
    level: u32,
    active: u32,
    group: u32,
    /// 1 = edge-triggered. SGIs are always edge.
    edge: u32,
    prio: [u8; 32],
    /// Per SGI: the CPUs it is pending from.
    sgi_src: [u8; 16],
}

impl Banked {
    fn pending(&self) -> u32 {
        let mut sgi = 0u32;
        for (i, s) in self.sgi_src.iter().enumerate() {
            if *s != 0 {
                sgi |= 1 << i;
            }
        }
        sgi | ((self.latch | (self.level & !self.edge)) & 0xFFFF_0000)
    }
}

/// An interrupt acknowledged and not yet priority-dropped.
#[derive(Clone, Copy)]
struct Ack {
    intid: u32,
    /// Group priority (after the binary point) at acknowledge time.
    gprio: u8,
}

#[derive(Clone)]
struct CpuIf {
    ctlr: u32,
    pmr: u8,
    bpr: u8,
    abpr: u8,
    /// Active priorities, in acknowledge order. Bounded: an interrupt is acknowledged at most
    /// once while active, so at most 1020 entries (more are refused).
    acked: Vec<Ack>,
}

impl Default for CpuIf {
    fn default() -> Self {
        CpuIf {
            ctlr: 0,
            pmr: 0,
            bpr: 2,
            abpr: 3,
            acked: Vec::new(),
        }
    }
}

impl CpuIf {
    fn running(&self) -> u16 {
        self.acked
            .iter()
            .map(|a| a.gprio as u16)
            .min()
            .unwrap_or(0x100)
    }

    /// The group priority of `prio` for an interrupt of `group`.
    fn group_prio(&self, prio: u8, group: bool) -> u8 {
        let mask = if group && self.ctlr & GICC_CTLR_CBPR == 0 {
            (0xFFu16 << self.abpr.clamp(1, 7)) as u8
        } else {
            (0xFFu16 << (self.bpr.min(7) + 1)) as u8
        };
        prio & mask
    }
}

/// A candidate for acknowledge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Best {
    intid: u32,
    prio: u8,
    group: bool,
}

struct State {
    num_cpus: usize,
    /// SPI count (a multiple of 32).
    num_spis: usize,
    ctlr: u32,
    banked: Vec<Banked>,
    cpu: Vec<CpuIf>,
    // SPI state, index = INTID - 32.
    enabled: Vec<u32>,
    latch: Vec<u32>,
    level: Vec<u32>,
    active: Vec<u32>,
    group: Vec<u32>,
    edge: Vec<u32>,
    prio: Vec<u8>,
    targets: Vec<u8>,
}

/// The GICv2: distributor and CPU interfaces over shared state.
pub struct Gic {
    state: Mutex<State>,
    outputs: Vec<Arc<CpuInterrupts>>,
}

fn bit_iter(mut w: u32) -> impl Iterator<Item = u32> {
    std::iter::from_fn(move || {
        if w == 0 {
            return None;
        }
        let b = w.trailing_zeros();
        w &= w - 1;
        Some(b)
    })
}

impl State {
    fn cpu_mask(&self) -> u8 {
        ((1u32 << self.num_cpus) - 1) as u8
    }

    fn spi_pending(&self, w: usize) -> u32 {
        self.latch[w] | (self.level[w] & !self.edge[w])
    }

    /// Group-enable mask over a word of group bits for `cpu`.
    fn group_filter(&self, cpu: usize, group_bits: u32) -> u32 {
        let c = self.cpu[cpu].ctlr;
        let g0 = self.ctlr & CTLR_ENABLE_GRP0 != 0 && c & CTLR_ENABLE_GRP0 != 0;
        let g1 = self.ctlr & CTLR_ENABLE_GRP1 != 0 && c & CTLR_ENABLE_GRP1 != 0;
        (if g0 { !group_bits } else { 0 }) | (if g1 { group_bits } else { 0 })
    }

    /// Highest-priority pending, enabled, inactive interrupt for `cpu` (lowest INTID wins ties).
    fn best(&self, cpu: usize) -> Option<Best> {
        let mut best: Option<Best> = None;
        let mut consider = |intid: u32, prio: u8, group: bool| {
            if best.is_none_or(|b| prio < b.prio) {
                best = Some(Best { intid, prio, group });
            }
        };
        let b = &self.banked[cpu];
        let cand = b.pending() & b.enabled & !b.active & self.group_filter(cpu, b.group);
        for i in bit_iter(cand) {
            consider(i, b.prio[i as usize], b.group >> i & 1 != 0);
        }
        let me = 1u8 << cpu;
        for w in 0..self.num_spis / 32 {
            let cand = self.spi_pending(w)
                & self.enabled[w]
                & !self.active[w]
                & self.group_filter(cpu, self.group[w]);
            for i in bit_iter(cand) {
                let idx = w * 32 + i as usize;
                if self.num_cpus > 1 && self.targets[idx] & me == 0 {
                    continue;
                }
                consider(32 + idx as u32, self.prio[idx], self.group[w] >> i & 1 != 0);
            }
        }
        best
    }

    /// The interrupt `cpu` would take now: above the priority mask and the running priority.
    fn signalable(&self, cpu: usize) -> Option<Best> {
        let b = self.best(cpu)?;
        let c = &self.cpu[cpu];
        (b.prio < c.pmr && (c.group_prio(b.prio, b.group) as u16) < c.running()).then_some(b)
    }

    /// The value GICC_IAR/HPPIR report for `b`: the INTID, plus the source CPU for an SGI.
    fn iar_value(&self, cpu: usize, b: Best) -> u32 {
        if b.intid < 16 {
            let src = self.banked[cpu].sgi_src[b.intid as usize].trailing_zeros();
            b.intid | (src & 7) << 10
        } else {
            b.intid
        }
    }

    fn acknowledge(&mut self, cpu: usize, group1_only: bool) -> u32 {
        let Some(b) = self.signalable(cpu) else {
            return SPURIOUS;
        };
        if group1_only && !b.group {
            return SPURIOUS;
        }
        if !group1_only && b.group && self.cpu[cpu].ctlr & GICC_CTLR_ACKCTL == 0 {
            // A Group 1 interrupt is highest but this read may only take Group 0.
            return 1022;
        }
        if self.cpu[cpu].acked.len() >= 1020 {
            return SPURIOUS;
        }
        let value = self.iar_value(cpu, b);
        let id = b.intid as usize;
        if id < 16 {
            let src = (value >> 10) & 7;
            let bank = &mut self.banked[cpu];
            bank.sgi_src[id] &= !(1 << src);
            bank.active |= 1 << id;
        } else if id < 32 {
            let bank = &mut self.banked[cpu];
            bank.latch &= !(1 << id);
            bank.active |= 1 << id;
        } else {
            let (w, bit) = ((id - 32) / 32, 1u32 << ((id - 32) % 32));
            self.latch[w] &= !bit;
            self.active[w] |= bit;
        }
        let gprio = self.cpu[cpu].group_prio(b.prio, b.group);
        self.cpu[cpu].acked.push(Ack {
            intid: b.intid,
            gprio,
        });
        value
    }

    fn deactivate(&mut self, cpu: usize, id: u32) {
        let id = id as usize;
        if id < 32 {
            self.banked[cpu].active &= !(1 << id);
        } else if id - 32 < self.num_spis {
            self.active[(id - 32) / 32] &= !(1 << ((id - 32) % 32));
        }
    }

    fn end_of_interrupt(&mut self, cpu: usize, value: u32) {
        let id = value & 0x3FF;
        if id >= 1020 {
            return;
        }
        let acked = &mut self.cpu[cpu].acked;
        let Some(pos) = acked.iter().rposition(|a| a.intid == id) else {
            log::debug!("gic: cpu{cpu} EOI of INTID {id}, which is not active");
            return;
        };
        acked.remove(pos);
        if self.cpu[cpu].ctlr & GICC_CTLR_EOIMODE == 0 {
            self.deactivate(cpu, id);
        }
    }

    fn send_sgi(&mut self, from: usize, value: u32) {
        let sgi = (value & 0xF) as usize;
        let targets = match (value >> 24) & 3 {
            0 => ((value >> 16) & 0xFF) as u8,
            1 => self.cpu_mask() & !(1 << from),
            2 => 1 << from,
            _ => 0,
        } & self.cpu_mask();
        for t in 0..self.num_cpus {
            if targets & (1 << t) != 0 {
                self.banked[t].sgi_src[sgi] |= 1 << from;
            }
        }
    }

    fn apr(&self, cpu: usize) -> u32 {
        // 32 preemption levels (group priority bits 7:3) map to APR0 bits.
        self.cpu[cpu]
            .acked
            .iter()
            .fold(0, |a, k| a | 1 << (k.gprio >> 3))
    }

    // ---- distributor ----

    /// Word `n` (INTIDs 32n..32n+31) of a one-bit-per-INTID register.
    fn bits_read(&self, cpu: usize, reg: u64, n: usize) -> u32 {
        if n == 0 {
            let b = &self.banked[cpu];
            return match reg {
                GICD_IGROUPR => b.group,
                GICD_ISENABLER | GICD_ICENABLER => b.enabled,
                GICD_ISPENDR | GICD_ICPENDR => b.pending(),
                GICD_ISACTIVER | GICD_ICACTIVER => b.active,
                _ => 0,
            };
        }
        let w = n - 1;
        if w >= self.num_spis / 32 {
            return 0;
        }
        match reg {
            GICD_IGROUPR => self.group[w],
            GICD_ISENABLER | GICD_ICENABLER => self.enabled[w],
            GICD_ISPENDR | GICD_ICPENDR => self.spi_pending(w),
            GICD_ISACTIVER | GICD_ICACTIVER => self.active[w],
            _ => 0,
        }
    }

    fn bits_write(&mut self, cpu: usize, reg: u64, n: usize, v: u32) {
        if n == 0 {
            let b = &mut self.banked[cpu];
            match reg {
                GICD_IGROUPR => b.group = v,
                GICD_ISENABLER => b.enabled |= v,
                GICD_ICENABLER => b.enabled &= !v,
                // SGI pending bits are set and cleared through SPENDSGIR/CPENDSGIR.
                GICD_ISPENDR => b.latch |= v & 0xFFFF_0000,
                GICD_ICPENDR => b.latch &= !(v & 0xFFFF_0000),
                GICD_ISACTIVER => b.active |= v,
                GICD_ICACTIVER => b.active &= !v,
                _ => {}
            }
            return;
        }
        let w = n - 1;
        if w >= self.num_spis / 32 {
            return;
        }
        match reg {
            GICD_IGROUPR => self.group[w] = v,
            GICD_ISENABLER => self.enabled[w] |= v,
            GICD_ICENABLER => self.enabled[w] &= !v,
            GICD_ISPENDR => self.latch[w] |= v,
            GICD_ICPENDR => self.latch[w] &= !v,
            GICD_ISACTIVER => self.active[w] |= v,
            GICD_ICACTIVER => self.active[w] &= !v,
            _ => {}
        }
    }

    fn prio_byte(&mut self, cpu: usize, id: usize) -> Option<&mut u8> {
        if id < 32 {
            Some(&mut self.banked[cpu].prio[id])
        } else {
            self.prio.get_mut(id - 32)
        }
    }

    fn dist_read_byte(&mut self, cpu: usize, off: u64) -> u8 {
        match off {
            GICD_IPRIORITYR..=0x7FF => self
                .prio_byte(cpu, (off - GICD_IPRIORITYR) as usize)
                .map_or(0, |p| *p),
            GICD_ITARGETSR..=0xBFF => {
                let id = (off - GICD_ITARGETSR) as usize;
                if id < 32 {
                    1 << cpu
                } else {
                    self.targets.get(id - 32).copied().unwrap_or(0)
                }
            }
            GICD_CPENDSGIR..=0xF2F => self.banked[cpu].sgi_src[(off & 0xF) as usize],
            _ => 0,
        }
    }

    fn dist_write_byte(&mut self, cpu: usize, off: u64, v: u8) {
        match off {
            GICD_IPRIORITYR..=0x7FF => {
                if let Some(p) = self.prio_byte(cpu, (off - GICD_IPRIORITYR) as usize) {
                    *p = v;
                }
            }
            GICD_ITARGETSR..=0xBFF => {
                let id = (off - GICD_ITARGETSR) as usize;
                let mask = self.cpu_mask();
                if id >= 32 {
                    if let Some(t) = self.targets.get_mut(id - 32) {
                        *t = v & mask;
                    }
                }
            }
            GICD_CPENDSGIR..=0xF1F => {
                self.banked[cpu].sgi_src[(off & 0xF) as usize] &= !v;
            }
            GICD_SPENDSGIR..=0xF2F => {
                let mask = self.cpu_mask();
                self.banked[cpu].sgi_src[(off & 0xF) as usize] |= v & mask;
            }
            _ => {}
        }
    }

    fn dist_read32(&mut self, cpu: usize, off: u64) -> u32 {
        match off {
            GICD_CTLR => self.ctlr,
            GICD_TYPER => {
                let lines = (32 + self.num_spis as u32) / 32 - 1;
                lines | (self.num_cpus as u32 - 1) << 5
            }
            GICD_IIDR => GICD_IIDR_VALUE,
            GICD_IGROUPR..=0x3FF => {
                let reg = off & !0x7F;
                self.bits_read(cpu, reg, ((off & 0x7F) / 4) as usize)
            }
            GICD_IPRIORITYR..=0xBFF | GICD_CPENDSGIR..=0xF2F => (0..4).fold(0, |a, i| {
                a | (self.dist_read_byte(cpu, off + i) as u32) << (8 * i)
            }),
            GICD_ICFGR..=0xCFF => {
                let n = ((off - GICD_ICFGR) / 4) as usize;
                let edge_bits: u16 = match n {
                    0 => 0xFFFF,
                    1 => (self.banked[cpu].edge >> 16) as u16,
                    _ => {
                        let first = n * 16 - 32;
                        if first >= self.num_spis {
                            0
                        } else {
                            (self.edge[first / 32] >> (first % 32)) as u16
                        }
                    }
                };
                (0..16).fold(0, |a, i| a | ((edge_bits >> i & 1) as u32) << (2 * i + 1))
            }
            GICD_PIDR4..=0xFFF => GIC_ID[((off - GICD_PIDR4) / 4) as usize] as u32,
            _ => 0,
        }
    }

    fn dist_write32(&mut self, cpu: usize, off: u64, v: u32) {
        match off {
            GICD_CTLR => self.ctlr = v & (CTLR_ENABLE_GRP0 | CTLR_ENABLE_GRP1),
            GICD_IGROUPR..=0x3FF => {
                let reg = off & !0x7F;
                self.bits_write(cpu, reg, ((off & 0x7F) / 4) as usize, v)
            }
            GICD_IPRIORITYR..=0xBFF | GICD_CPENDSGIR..=0xF2F => {
                for i in 0..4 {
                    self.dist_write_byte(cpu, off + i, (v >> (8 * i)) as u8);
                }
            }
            GICD_ICFGR..=0xCFF => {
                let n = ((off - GICD_ICFGR) / 4) as usize;
                let edge_bits = (0..16).fold(0u32, |a, i| a | (v >> (2 * i + 1) & 1) << i);
                match n {
                    0 => {} // SGIs: always edge
                    1 => {
                        let b = &mut self.banked[cpu];
                        b.edge = (b.edge & 0xFFFF) | edge_bits << 16;
                    }
                    _ => {
                        let first = n * 16 - 32;
                        if first < self.num_spis {
                            let sh = first % 32;
                            let w = &mut self.edge[first / 32];
                            *w = (*w & !(0xFFFF << sh)) | edge_bits << sh;
                        }
                    }
                }
            }
            GICD_SGIR => self.send_sgi(cpu, v),
            GICD_TYPER | GICD_IIDR | GICD_PIDR4..=0xFFF => {
                log::debug!("gic: write to read-only distributor register {off:#x}")
            }
            _ => log::debug!("gic: write {v:#x} to unimplemented distributor offset {off:#x}"),
        }
    }

    // ---- CPU interface ----

    fn cpu_read32(&mut self, cpu: usize, off: u64) -> u32 {
        let c = &self.cpu[cpu];
        match off {
            GICC_CTLR => c.ctlr,
            GICC_PMR => c.pmr as u32,
            GICC_BPR => c.bpr as u32,
            GICC_ABPR => c.abpr as u32,
            GICC_IAR => self.acknowledge(cpu, false),
            GICC_AIAR => self.acknowledge(cpu, true),
            GICC_RPR => c.running().min(0xFF) as u32,
            GICC_HPPIR | GICC_AHPPIR => match self.best(cpu) {
                Some(b) if off == GICC_HPPIR || b.group => self.iar_value(cpu, b),
                _ => SPURIOUS,
            },
            GICC_APR0 => self.apr(cpu),
            GICC_IIDR => GICC_IIDR_VALUE,
            _ => 0,
        }
    }

    fn cpu_write32(&mut self, cpu: usize, off: u64, v: u32) {
        let c = &mut self.cpu[cpu];
        match off {
            GICC_CTLR => c.ctlr = v & GICC_CTLR_MASK,
            GICC_PMR => c.pmr = v as u8,
            GICC_BPR => c.bpr = (v & 7) as u8,
            GICC_ABPR => c.abpr = ((v & 7) as u8).max(1),
            GICC_EOIR | GICC_AEOIR => self.end_of_interrupt(cpu, v),
            GICC_DIR => {
                let id = v & 0x3FF;
                if id < 1020 {
                    self.deactivate(cpu, id);
                }
            }
            // Saved/restored active priorities: the list above is the state; ignore.
            GICC_APR0..=0xDC | GICC_NSAPR0..=0xEC => {}
            _ => log::debug!("gic: write {v:#x} to unimplemented CPU interface offset {off:#x}"),
        }
    }
}

impl Gic {
    /// A GIC serving `num_cpus` CPUs (1..=8, and at most `outputs.len()`) with `num_spis` shared
    /// interrupts (rounded up to a multiple of 32, at most 960). `outputs[i]` is CPU i's IRQ/FIQ.
    pub fn new(num_cpus: usize, num_spis: usize, outputs: Vec<Arc<CpuInterrupts>>) -> Arc<Gic> {
        let cpus = num_cpus.clamp(1, MAX_CPUS).min(outputs.len().max(1));
        if cpus != num_cpus {
            log::warn!("gic: serving {cpus} CPUs (asked for {num_cpus})");
        }
        // INTIDs 1020..1023 are special, so the last full word of SPIs ends at 991: use 960.
        let spis = (num_spis.div_ceil(32) * 32).min(960);
        let words = spis / 32;
        let banked = Banked {
            enabled: 0,
            edge: 0x0000_FFFF,
            ..Banked::default()
        };
        let state = State {
            num_cpus: cpus,
            num_spis: spis,
            ctlr: 0,
            banked: vec![banked; cpus],
            cpu: vec![CpuIf::default(); cpus],
            enabled: vec![0; words],
            latch: vec![0; words],
            level: vec![0; words],
            active: vec![0; words],
            group: vec![0; words],
            edge: vec![0; words],
            prio: vec![0; spis],
            targets: vec![0; spis],
        };
        Arc::new(Gic {
            state: Mutex::new(state),
            outputs,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn num_cpus(&self) -> usize {
        self.lock().num_cpus
    }

    /// Total interrupt lines (SGIs + PPIs + SPIs).
    pub fn num_irqs(&self) -> usize {
        32 + self.lock().num_spis
    }

    /// The distributor frame, [`DIST_SIZE`] bytes.
    pub fn distributor(self: &Arc<Self>) -> GicDistributor {
        GicDistributor(self.clone())
    }

    /// The CPU interface frame, [`CPU_IF_SIZE`] bytes.
    pub fn cpu_interface(self: &Arc<Self>) -> GicCpuInterface {
        GicCpuInterface(self.clone())
    }

    /// Recompute every CPU's outputs (called with the state locked).
    fn update(&self, s: &State) {
        for cpu in 0..s.num_cpus {
            let Some(out) = self.outputs.get(cpu) else {
                continue;
            };
            let sig = s.signalable(cpu);
            let fiq_en = s.cpu[cpu].ctlr & GICC_CTLR_FIQEN != 0;
            let (irq, fiq) = match sig {
                Some(b) if !b.group && fiq_en => (false, true),
                Some(_) => (true, false),
                None => (false, false),
            };
            out.set_irq(irq);
            out.set_fiq(fiq);
        }
    }

    fn check_cpu(s: &State, cpu: usize) -> Option<usize> {
        if cpu < s.num_cpus {
            Some(cpu)
        } else {
            log::warn!("gic: access from CPU {cpu}, which it does not serve");
            None
        }
    }

    fn access(
        &self,
        cpu: usize,
        off: u64,
        size: u8,
        write: Option<u64>,
        dist: bool,
        frame: u64,
    ) -> u64 {
        let mut s = self.lock();
        let Some(cpu) = Self::check_cpu(&s, cpu) else {
            return 0;
        };
        let byte_reg = dist && matches!(off, GICD_IPRIORITYR..=0xBFF | GICD_CPENDSGIR..=0xF2F);
        let ok_size = match size {
            4 => off.is_multiple_of(4),
            8 => off.is_multiple_of(8),
            1 | 2 => byte_reg && off.is_multiple_of(size as u64),
            _ => false,
        };
        if !ok_size || off >= frame {
            log::warn!(
                "gic: bad {} access of size {size} at {} offset {off:#x}",
                if write.is_some() { "write" } else { "read" },
                if dist { "distributor" } else { "CPU interface" }
            );
            return 0;
        }
        let words = if size == 8 { 2 } else { 1 };
        let mut result = 0u64;
        match write {
            Some(v) if size < 4 => {
                for i in 0..size as u64 {
                    s.dist_write_byte(cpu, off + i, (v >> (8 * i)) as u8);
                }
            }
            Some(v) => {
                for i in 0..words {
                    let (o, w) = (off + 4 * i, (v >> (32 * i)) as u32);
                    if dist {
                        s.dist_write32(cpu, o, w)
                    } else {
                        s.cpu_write32(cpu, o, w)
                    }
                }
            }
            None if size < 4 => {
                for i in 0..size as u64 {
                    result |= (s.dist_read_byte(cpu, off + i) as u64) << (8 * i);
                }
            }
            None => {
                for i in 0..words {
                    let o = off + 4 * i;
                    let w = if dist {
                        s.dist_read32(cpu, o)
                    } else {
                        s.cpu_read32(cpu, o)
                    };
                    result |= (w as u64) << (32 * i);
                }
            }
        }
        // Reads of IAR change state; other reads do not, but updating is cheap and safe.
        if write.is_some() || (!dist && matches!(off, GICC_IAR | GICC_AIAR)) {
            self.update(&s);
        }
        result
    }
}

impl IrqSink for Gic {
    fn set_level(&self, line: u32, level: bool) {
        let mut s = self.lock();
        let id = (line & 0xFFFF) as usize;
        if id >= 32 {
            let idx = id - 32;
            if idx >= s.num_spis {
                log::warn!(
                    "gic: input on SPI {id}, beyond the {} lines",
                    32 + s.num_spis
                );
                return;
            }
            let (w, bit) = (idx / 32, 1u32 << (idx % 32));
            let was = s.level[w] & bit != 0;
            if was == level {
                return;
            }
            if level {
                s.level[w] |= bit;
                if s.edge[w] & bit != 0 {
                    s.latch[w] |= bit;
                }
            } else {
                s.level[w] &= !bit;
            }
        } else {
            let cpu = (line >> 16) as usize;
            if id < 16 || cpu >= s.num_cpus {
                log::warn!("gic: input line {line:#x} is not a PPI of a served CPU");
                return;
            }
            let bit = 1u32 << id;
            let b = &mut s.banked[cpu];
            if (b.level & bit != 0) == level {
                return;
            }
            if level {
                b.level |= bit;
                if b.edge & bit != 0 {
                    b.latch |= bit;
                }
            } else {
                b.level &= !bit;
            }
        }
        self.update(&s);
    }
}

/// The distributor register frame of a [`Gic`].
pub struct GicDistributor(Arc<Gic>);

/// The CPU interface register frame of a [`Gic`] (banked by the accessing CPU).
pub struct GicCpuInterface(Arc<Gic>);

impl Device for GicDistributor {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        self.read_from(0, offset, size)
    }
    fn write(&mut self, offset: u64, size: u8, value: u64) {
        self.write_from(0, offset, size, value)
    }
    fn read_from(&mut self, cpu: usize, offset: u64, size: u8) -> u64 {
        self.0.access(cpu, offset, size, None, true, DIST_SIZE)
    }
    fn write_from(&mut self, cpu: usize, offset: u64, size: u8, value: u64) {
        self.0
            .access(cpu, offset, size, Some(value), true, DIST_SIZE);
    }
}

impl Device for GicCpuInterface {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        self.read_from(0, offset, size)
    }
    fn write(&mut self, offset: u64, size: u8, value: u64) {
        self.write_from(0, offset, size, value)
    }
    fn read_from(&mut self, cpu: usize, offset: u64, size: u8) -> u64 {
        if offset >= CPU_IF_SIZE {
            log::debug!("gic: CPU interface read beyond the frame at {offset:#x}");
            return 0;
        }
        self.0.access(cpu, offset, size, None, false, CPU_IF_SIZE)
    }
    fn write_from(&mut self, cpu: usize, offset: u64, size: u8, value: u64) {
        if offset >= CPU_IF_SIZE {
            log::debug!("gic: CPU interface write beyond the frame at {offset:#x}");
            return;
        }
        self.0
            .access(cpu, offset, size, Some(value), false, CPU_IF_SIZE);
    }
}

#[cfg(test)]
mod tests;
