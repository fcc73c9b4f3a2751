//! BCM2836/7 "ARM control" block: the ARM-local interrupt controller (DT
//! `brcm,bcm2836-l1-intc`, ARM physical 0x40000000, 0x100 bytes), the root interrupt
//! controller of the Pi 2/3. Linux: `drivers/irqchip/irq-bcm2836.c` (per-core timer interrupts,
//! the GPU interrupt from the armctrl as local interrupt 8, the PMU as 9, and SMP IPIs through
//! mailbox 0 of each core). Layout from the BCM2836 "QA7" document.
//!
//! Registers (32-bit):
//! - 0x00 control (bit 8 core timer clock source, bit 9 increment by 2), 0x08 core timer
//!   prescaler (the core timer advances by prescaler/2^31 per 19.2 MHz crystal tick), 0x1c/0x20
//!   core timer LS/MS (reading LS latches MS; a written LS takes effect with the MS write).
//! - 0x0c GPU routing: bits 1:0 the core getting the GPU IRQ, bits 3:2 the core getting the
//!   GPU FIQ.
//! - 0x10/0x14 PMU routing set/clear (bits 3:0 IRQ to core n, bits 7:4 FIQ to core n).
//! - 0x24 local timer routing (bits 2:0: 0..3 IRQ of core n, 4..7 FIQ of core n-4), 0x34 local
//!   timer control (bits 27:0 reload, 28 enable, 29 interrupt enable, 31 flag, read-only),
//!   0x38 local timer clear/reload (bit 31 clears the flag, bit 30 reloads). The local timer
//!   counts down at 38.4 MHz.
//! - 0x2c/0x30 AXI outstanding counters / IRQ: stored only (no AXI traffic is modelled).
//! - 0x40 + 4n core n timer interrupt control, 0x50 + 4n core n mailbox interrupt control: bits
//!   3:0 IRQ enables, bits 7:4 FIQ enables (FIQ wins over IRQ).
//! - 0x60 + 4n / 0x70 + 4n core n IRQ / FIQ source (read-only): bits 3:0 CNTPS/CNTPNS/CNTHP/CNTV,
//!   7:4 mailboxes 0..3, 8 GPU, 9 PMU, 10 AXI (never), 11 local timer.
//! - 0x80 + 16n + 4m mailbox m of core n, write 1s to set (reads 0); 0xc0 + 16n + 4m the same
//!   mailbox, read its value, write 1s to clear. A mailbox interrupts while it is non-zero.
//!
//! Inputs ([`IrqSink`]): `(core << 16) | n` with n = [`TIMER_CNTPS`], [`TIMER_CNTPNS`],
//! [`TIMER_CNTHP`], [`TIMER_CNTV`] (the core's generic timer outputs, levels) or [`PMU`] (its
//! PMU overflow), and the core-less [`GPU_IRQ`] / [`GPU_FIQ`] (the armctrl's outputs). Outputs:
//! each core's [`CpuInterrupts`] IRQ/FIQ, set to "its IRQ/FIQ source register is non-zero".
//! All state sits behind one mutex; the controller never calls a device (only CPU inputs), so
//! devices and the armctrl may call it with their own lock held.
//!
//! The core timer is not the CPUs' generic timer counter here (those come from the board);
//! it only serves reads of 0x1c/0x20.
//!
//! Wiring on a Pi 3 board (text, not a doctest):
//!
//! ```text
//! let intc = LocalIntc::new(cpu_inputs);                       // one CpuInterrupts per core
//! bus.insert(0x4000_0000, local_intc::SIZE, Box::new(intc.device()))?;
//! // core c's generic timer outputs: IrqLine::new(intc.clone(), c << 16 | TIMER_CNTPNS), ...
//! let ic = Armctrl::new(IrqLine::new(intc.clone(), GPU_IRQ), IrqLine::new(intc.clone(), GPU_FIQ));
//! bus.insert(0x3f00_b200, armctrl::SIZE, Box::new(ic.device()))?;
//! // timer thread: intc.poll() (LocalIntc::next_deadline says when it matters)
//! ```

use super::systimer::{host_clock, Clock};
use armboard_bus::{CpuInterrupts, Device, IrqSink};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Size of the register block.
pub const SIZE: u64 = 0x100;
/// Cores served.
pub const MAX_CORES: usize = 4;

/// Per-core input: the secure physical timer (CNTPSIRQ).
pub const TIMER_CNTPS: u32 = 0;
/// Per-core input: the non-secure physical timer (CNTPNSIRQ; what Linux uses as arch timer).
pub const TIMER_CNTPNS: u32 = 1;
/// Per-core input: the hypervisor timer (CNTHPIRQ).
pub const TIMER_CNTHP: u32 = 2;
/// Per-core input: the virtual timer (CNTVIRQ).
pub const TIMER_CNTV: u32 = 3;
/// Per-core input: the core's PMU interrupt.
pub const PMU: u32 = 4;
/// Core-less input: the GPU (armctrl) IRQ.
pub const GPU_IRQ: u32 = 8;
/// Core-less input: the GPU (armctrl) FIQ.
pub const GPU_FIQ: u32 = 9;

// Source register bits.
const SRC_MAILBOX0: u32 = 4;
const SRC_GPU: u32 = 8;
const SRC_PMU: u32 = 9;
const SRC_LOCAL_TIMER: u32 = 11;

const CONTROL: u64 = 0x00;
const PRESCALER: u64 = 0x08;
const GPU_ROUTING: u64 = 0x0c;
const PMU_ROUTING_SET: u64 = 0x10;
const PMU_ROUTING_CLR: u64 = 0x14;
const CORE_TIMER_LS: u64 = 0x1c;
const CORE_TIMER_MS: u64 = 0x20;
const LOCAL_ROUTING: u64 = 0x24;
const AXI_COUNTERS: u64 = 0x2c;
const AXI_IRQ: u64 = 0x30;
const LOCAL_TIMER_CONTROL: u64 = 0x34;
const LOCAL_TIMER_FLAGS: u64 = 0x38;
const TIMER_INT_CONTROL: u64 = 0x40;
const MAILBOX_INT_CONTROL: u64 = 0x50;
const IRQ_SOURCE: u64 = 0x60;
const FIQ_SOURCE: u64 = 0x70;
const MAILBOX_SET: u64 = 0x80;
const MAILBOX_CLR: u64 = 0xc0;

const CONTROL_MASK: u32 = 0x300;
const CONTROL_INC2: u32 = 1 << 9;

const LT_RELOAD: u32 = 0x0fff_ffff;
const LT_ENABLE: u32 = 1 << 28;
const LT_INT_ENABLE: u32 = 1 << 29;
const LT_FLAG: u32 = 1 << 31;
const LT_CLEAR: u32 = 1 << 31;
const LT_RELOAD_NOW: u32 = 1 << 30;

/// The core timer's input clock (the crystal).
const CRYSTAL_HZ: u64 = 19_200_000;
/// The local timer's clock (crystal x 2).
const LOCAL_TIMER_HZ: u64 = 38_400_000;

fn ticks(ns: u64, hz: u64) -> u64 {
    (u128::from(ns) * u128::from(hz) / 1_000_000_000) as u64
}

fn ticks_to_ns(t: u64, hz: u64) -> u64 {
    (u128::from(t) * 1_000_000_000).div_ceil(u128::from(hz)) as u64
}

struct State {
    control: u32,
    prescaler: u32,
    gpu_routing: u32,
    pmu_routing: u32,
    /// Core timer value at `ct_ref` (crystal ticks).
    ct_base: u64,
    ct_ref: u64,
    ct_ms_latch: u32,
    ct_ls_write: u32,
    local_routing: u32,
    axi_counters: u32,
    axi_irq: u32,
    /// Local timer control bits 29:0.
    lt_control: u32,
    lt_flag: bool,
    /// Local-timer tick at which the current countdown started.
    lt_start: u64,
    timer_ctl: [u32; MAX_CORES],
    mbox_ctl: [u32; MAX_CORES],
    mailboxes: [[u32; 4]; MAX_CORES],
    /// Generic timer input levels per core (bits 3:0).
    timer_in: [u32; MAX_CORES],
    pmu_in: [bool; MAX_CORES],
    gpu_irq: bool,
    gpu_fiq: bool,
}

impl State {
    fn core_timer(&self, now_ns: u64) -> u64 {
        let elapsed = ticks(now_ns, CRYSTAL_HZ).saturating_sub(self.ct_ref);
        let step = if self.control & CONTROL_INC2 != 0 {
            2
        } else {
            1
        };
        let inc = (u128::from(elapsed) * step * u128::from(self.prescaler)) >> 31;
        self.ct_base.wrapping_add(inc as u64)
    }

    /// Restart the core timer from `value` now (before a rate change or a write).
    fn rebase_core_timer(&mut self, now_ns: u64, value: u64) {
        self.ct_base = value;
        self.ct_ref = ticks(now_ns, CRYSTAL_HZ);
    }

    fn lt_reload(&self) -> u64 {
        u64::from(self.lt_control & LT_RELOAD)
    }

    fn lt_running(&self) -> bool {
        self.lt_control & LT_ENABLE != 0 && self.lt_reload() != 0
    }

    /// Count the local timer down to now: each expiry sets the flag and reloads.
    fn advance_local_timer(&mut self, now_ns: u64) {
        if !self.lt_running() {
            return;
        }
        let now = ticks(now_ns, LOCAL_TIMER_HZ);
        let reload = self.lt_reload();
        let periods = now.saturating_sub(self.lt_start) / reload;
        if periods > 0 {
            self.lt_flag = true;
            self.lt_start += periods * reload;
        }
    }

    /// IRQ and FIQ source registers of `core`.
    fn sources(&self, core: usize) -> (u32, u32) {
        let (mut irq, mut fiq) = (0u32, 0u32);
        // Timer and mailbox inputs, with per-input FIQ (wins) and IRQ enables.
        let mut deliver = |bit: u32, ctl: u32, idx: u32| {
            if ctl & (1 << (idx + 4)) != 0 {
                fiq |= 1 << bit;
            } else if ctl & (1 << idx) != 0 {
                irq |= 1 << bit;
            }
        };
        for j in 0..4 {
            if self.timer_in[core] & (1 << j) != 0 {
                deliver(j, self.timer_ctl[core], j);
            }
            if self.mailboxes[core][j as usize] != 0 {
                deliver(SRC_MAILBOX0 + j, self.mbox_ctl[core], j);
            }
        }
        if self.pmu_in[core] {
            if self.pmu_routing & (1 << (core + 4)) != 0 {
                fiq |= 1 << SRC_PMU;
            } else if self.pmu_routing & (1 << core) != 0 {
                irq |= 1 << SRC_PMU;
            }
        }
        if self.gpu_irq && (self.gpu_routing & 3) as usize == core {
            irq |= 1 << SRC_GPU;
        }
        if self.gpu_fiq && ((self.gpu_routing >> 2) & 3) as usize == core {
            fiq |= 1 << SRC_GPU;
        }
        if self.lt_flag
            && self.lt_control & LT_INT_ENABLE != 0
            && (self.local_routing & 3) as usize == core
        {
            if self.local_routing & 4 != 0 {
                fiq |= 1 << SRC_LOCAL_TIMER;
            } else {
                irq |= 1 << SRC_LOCAL_TIMER;
            }
        }
        (irq, fiq)
    }
}

/// The controller: an [`IrqSink`] for its inputs; [`LocalIntc::device`] gives its registers.
pub struct LocalIntc {
    state: Mutex<State>,
    outputs: Vec<Arc<CpuInterrupts>>,
    clock: Clock,
}

impl LocalIntc {
    /// A controller driving `outputs[n]` as core n's IRQ/FIQ (the first 4 are used), on host
    /// time.
    pub fn new(outputs: Vec<Arc<CpuInterrupts>>) -> Arc<LocalIntc> {
        Self::with_clock(outputs, host_clock())
    }

    /// A controller whose core and local timers run on `clock`.
    pub fn with_clock(mut outputs: Vec<Arc<CpuInterrupts>>, clock: Clock) -> Arc<LocalIntc> {
        if outputs.len() > MAX_CORES {
            log::warn!(
                "bcm2836-l1-intc: {} CPUs given, serving {MAX_CORES}",
                outputs.len()
            );
            outputs.truncate(MAX_CORES);
        }
        let state = State {
            control: 0,
            // As the Pi firmware leaves it: the core timer runs at the crystal rate.
            prescaler: 0x8000_0000,
            gpu_routing: 0,
            pmu_routing: 0,
            ct_base: 0,
            ct_ref: ticks(clock(), CRYSTAL_HZ),
            ct_ms_latch: 0,
            ct_ls_write: 0,
            local_routing: 0,
            axi_counters: 0,
            axi_irq: 0,
            lt_control: 0,
            lt_flag: false,
            lt_start: 0,
            timer_ctl: [0; MAX_CORES],
            mbox_ctl: [0; MAX_CORES],
            mailboxes: [[0; 4]; MAX_CORES],
            timer_in: [0; MAX_CORES],
            pmu_in: [false; MAX_CORES],
            gpu_irq: false,
            gpu_fiq: false,
        };
        Arc::new(LocalIntc {
            state: Mutex::new(state),
            outputs,
            clock,
        })
    }

    /// The register block, [`SIZE`] bytes.
    pub fn device(self: &Arc<Self>) -> LocalIntcRegs {
        LocalIntcRegs(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drive every core's outputs (with the state locked, so levels arrive in order).
    fn update(&self, s: &State) {
        for (core, out) in self.outputs.iter().enumerate() {
            let (irq, fiq) = s.sources(core);
            out.set_irq(irq != 0);
            out.set_fiq(fiq != 0);
        }
    }

    /// Advance the local timer to now and raise its interrupt if it expired (the board's
    /// timer thread calls this; see [`LocalIntc::next_deadline`]).
    pub fn poll(&self) {
        let now = (self.clock)();
        let mut s = self.lock();
        self.advance(&mut s, now);
    }

    /// Count the local timer down to `now`, driving the outputs if it expired.
    fn advance(&self, s: &mut State, now: u64) {
        let was = s.lt_flag;
        s.advance_local_timer(now);
        if s.lt_flag != was {
            self.update(s);
        }
    }

    /// Time until the local timer next raises an interrupt (`None` if it cannot: stopped,
    /// its interrupt disabled or its flag already set).
    pub fn next_deadline(&self) -> Option<Duration> {
        let now_ns = (self.clock)();
        let mut s = self.lock();
        self.advance(&mut s, now_ns);
        if !s.lt_running() || s.lt_control & LT_INT_ENABLE == 0 || s.lt_flag {
            return None;
        }
        let due = ticks_to_ns(s.lt_start + s.lt_reload(), LOCAL_TIMER_HZ);
        Some(Duration::from_nanos(due.saturating_sub(now_ns).max(1)))
    }

    /// IRQ and FIQ source registers of `core` (0..4), as the guest reads them.
    pub fn sources(&self, core: usize) -> (u32, u32) {
        if core >= MAX_CORES {
            return (0, 0);
        }
        let now = (self.clock)();
        let mut s = self.lock();
        self.advance(&mut s, now);
        s.sources(core)
    }

    fn read32(&self, offset: u64) -> u32 {
        let now = (self.clock)();
        let mut s = self.lock();
        self.advance(&mut s, now);
        let core = ((offset & 0xf) / 4) as usize;
        match offset {
            CONTROL => s.control,
            PRESCALER => s.prescaler,
            GPU_ROUTING => s.gpu_routing,
            PMU_ROUTING_SET | PMU_ROUTING_CLR => s.pmu_routing,
            CORE_TIMER_LS => {
                let v = s.core_timer(now);
                s.ct_ms_latch = (v >> 32) as u32;
                v as u32
            }
            CORE_TIMER_MS => s.ct_ms_latch,
            LOCAL_ROUTING => s.local_routing,
            AXI_COUNTERS => s.axi_counters,
            AXI_IRQ => s.axi_irq,
            LOCAL_TIMER_CONTROL => s.lt_control | if s.lt_flag { LT_FLAG } else { 0 },
            LOCAL_TIMER_FLAGS => 0,
            TIMER_INT_CONTROL..MAILBOX_INT_CONTROL => s.timer_ctl[core],
            MAILBOX_INT_CONTROL..IRQ_SOURCE => s.mbox_ctl[core],
            IRQ_SOURCE..FIQ_SOURCE => s.sources(core).0,
            FIQ_SOURCE..MAILBOX_SET => s.sources(core).1,
            MAILBOX_SET..MAILBOX_CLR => 0,
            MAILBOX_CLR..SIZE => {
                let i = (offset - MAILBOX_CLR) as usize / 4;
                s.mailboxes[i / 4][i % 4]
            }
            _ => {
                log::debug!("bcm2836-l1-intc: read of unknown offset {offset:#x}");
                0
            }
        }
    }

    fn write32(&self, offset: u64, v: u32) {
        let now = (self.clock)();
        let mut s = self.lock();
        s.advance_local_timer(now);
        let core = ((offset & 0xf) / 4) as usize;
        match offset {
            CONTROL => {
                let value = s.core_timer(now);
                s.rebase_core_timer(now, value);
                s.control = v & CONTROL_MASK;
            }
            PRESCALER => {
                let value = s.core_timer(now);
                s.rebase_core_timer(now, value);
                s.prescaler = v;
            }
            GPU_ROUTING => s.gpu_routing = v & 0xf,
            PMU_ROUTING_SET => s.pmu_routing |= v & 0xff,
            PMU_ROUTING_CLR => s.pmu_routing &= !(v & 0xff),
            CORE_TIMER_LS => s.ct_ls_write = v,
            CORE_TIMER_MS => {
                let value = u64::from(v) << 32 | u64::from(s.ct_ls_write);
                s.rebase_core_timer(now, value);
            }
            LOCAL_ROUTING => s.local_routing = v & 7,
            AXI_COUNTERS => s.axi_counters = v,
            AXI_IRQ => s.axi_irq = v & 0x001f_ffff,
            LOCAL_TIMER_CONTROL => {
                s.lt_control = v & (LT_RELOAD | LT_ENABLE | LT_INT_ENABLE);
                s.lt_start = ticks(now, LOCAL_TIMER_HZ);
            }
            LOCAL_TIMER_FLAGS => {
                if v & LT_CLEAR != 0 {
                    s.lt_flag = false;
                }
                if v & LT_RELOAD_NOW != 0 {
                    s.lt_start = ticks(now, LOCAL_TIMER_HZ);
                }
            }
            TIMER_INT_CONTROL..MAILBOX_INT_CONTROL => s.timer_ctl[core] = v & 0xff,
            MAILBOX_INT_CONTROL..IRQ_SOURCE => s.mbox_ctl[core] = v & 0xff,
            MAILBOX_SET..MAILBOX_CLR => {
                let i = (offset - MAILBOX_SET) as usize / 4;
                s.mailboxes[i / 4][i % 4] |= v;
            }
            MAILBOX_CLR..SIZE => {
                let i = (offset - MAILBOX_CLR) as usize / 4;
                s.mailboxes[i / 4][i % 4] &= !v;
            }
            IRQ_SOURCE..MAILBOX_SET => {
                log::debug!("bcm2836-l1-intc: write to read-only source register {offset:#x}");
                return;
            }
            _ => {
                log::debug!("bcm2836-l1-intc: write {v:#x} to unknown offset {offset:#x}");
                return;
            }
        }
        self.update(&s);
    }
}

impl IrqSink for LocalIntc {
    fn set_level(&self, line: u32, level: bool) {
        let n = line & 0xffff;
        let core = (line >> 16) as usize;
        let mut s = self.lock();
        match n {
            GPU_IRQ => s.gpu_irq = level,
            GPU_FIQ => s.gpu_fiq = level,
            TIMER_CNTPS..=TIMER_CNTV if core < MAX_CORES => {
                if level {
                    s.timer_in[core] |= 1 << n;
                } else {
                    s.timer_in[core] &= !(1 << n);
                }
            }
            PMU if core < MAX_CORES => s.pmu_in[core] = level,
            _ => {
                log::warn!("bcm2836-l1-intc: input on unknown line {line:#x}");
                return;
            }
        }
        self.update(&s);
    }
}

/// The register block of a [`LocalIntc`].
pub struct LocalIntcRegs(Arc<LocalIntc>);

impl Device for LocalIntcRegs {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if size != 4 || !offset.is_multiple_of(4) || offset >= SIZE {
            log::debug!("bcm2836-l1-intc: {size}-byte read at {offset:#x}");
            return 0;
        }
        u64::from(self.0.read32(offset))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if size != 4 || !offset.is_multiple_of(4) || offset >= SIZE {
            log::debug!("bcm2836-l1-intc: {size}-byte write at {offset:#x}");
            return;
        }
        self.0.write32(offset, value as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bcm2835::armctrl::Armctrl;
    use armboard_bus::IrqLine;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    struct Board {
        intc: Arc<LocalIntc>,
        regs: LocalIntcRegs,
        cpus: Vec<Arc<CpuInterrupts>>,
        now: Arc<AtomicU64>,
    }

    impl Board {
        fn new(cores: usize) -> Board {
            let cpus: Vec<_> = (0..cores)
                .map(|_| Arc::new(CpuInterrupts::new(Arc::new(AtomicBool::new(false)))))
                .collect();
            let now = Arc::new(AtomicU64::new(0));
            let n = now.clone();
            let intc =
                LocalIntc::with_clock(cpus.clone(), Arc::new(move || n.load(Ordering::SeqCst)));
            let regs = intc.device();
            Board {
                intc,
                regs,
                cpus,
                now,
            }
        }
        fn rd(&mut self, off: u64) -> u32 {
            self.regs.read(off, 4) as u32
        }
        fn wr(&mut self, off: u64, v: u32) {
            self.regs.write(off, 4, u64::from(v))
        }
        /// (irq, fiq) outputs of every core.
        fn outs(&self) -> Vec<(bool, bool)> {
            self.cpus.iter().map(|c| (c.irq(), c.fiq())).collect()
        }
        fn advance_ns(&self, ns: u64) {
            self.now.fetch_add(ns, Ordering::SeqCst);
        }
    }

    const NONE: (bool, bool) = (false, false);
    const IRQ: (bool, bool) = (true, false);
    const FIQ: (bool, bool) = (false, true);

    #[test]
    fn ipi_through_mailbox0_raises_target_irq_and_clearing_lowers_it() {
        let mut b = Board::new(4);
        // Linux unmasks mailbox 0's IRQ on each core as it comes up.
        for core in 0..4 {
            b.wr(MAILBOX_INT_CONTROL + 4 * core, 1);
        }
        // Core 0 sends IPI 3 to core 2: LOCAL_MAILBOX0_SET0 + 16 * cpu.
        b.wr(MAILBOX_SET + 16 * 2, 1 << 3);
        assert_eq!(b.outs(), vec![NONE, NONE, IRQ, NONE]);
        assert_eq!(b.rd(IRQ_SOURCE + 8), 1 << 4);
        assert_eq!(b.rd(FIQ_SOURCE + 8), 0);
        assert_eq!(b.rd(IRQ_SOURCE), 0);
        // Another IPI to the same core accumulates; write-set reads as 0.
        b.wr(MAILBOX_SET + 16 * 2, 1 << 0);
        assert_eq!(b.rd(MAILBOX_SET + 16 * 2), 0);
        // The target reads LOCAL_MAILBOX0_CLR0 + 16 * cpu and acknowledges one IPI at a time.
        assert_eq!(b.rd(MAILBOX_CLR + 16 * 2), 0b1001);
        b.wr(MAILBOX_CLR + 16 * 2, 1 << 0);
        assert_eq!(b.outs()[2], IRQ);
        b.wr(MAILBOX_CLR + 16 * 2, 1 << 3);
        assert_eq!(b.rd(MAILBOX_CLR + 16 * 2), 0);
        assert_eq!(b.rd(IRQ_SOURCE + 8), 0);
        assert_eq!(b.outs(), vec![NONE; 4]);
    }

    #[test]
    fn masked_mailbox_holds_its_value_without_interrupting() {
        let mut b = Board::new(2);
        b.wr(MAILBOX_SET + 16 + 4 * 3, 0xdead); // core 1, mailbox 3
        assert_eq!(b.rd(MAILBOX_CLR + 16 + 4 * 3), 0xdead);
        assert_eq!(b.rd(IRQ_SOURCE + 4), 0);
        assert_eq!(b.outs(), vec![NONE, NONE]);
        // Mailbox 3's FIQ enable (bit 7) wins over its IRQ enable (bit 3).
        b.wr(MAILBOX_INT_CONTROL + 4, 1 << 3 | 1 << 7);
        assert_eq!(b.rd(MAILBOX_INT_CONTROL + 4), 0x88);
        assert_eq!(b.rd(FIQ_SOURCE + 4), 1 << 7);
        assert_eq!(b.rd(IRQ_SOURCE + 4), 0);
        assert_eq!(b.outs(), vec![NONE, FIQ]);
        b.wr(MAILBOX_INT_CONTROL + 4, 1 << 3);
        assert_eq!(b.rd(IRQ_SOURCE + 4), 1 << 7);
        assert_eq!(b.outs(), vec![NONE, IRQ]);
    }

    #[test]
    fn timer_input_routed_to_fiq_shows_in_fiq_source() {
        let mut b = Board::new(4);
        b.intc.set_level(1 << 16 | TIMER_CNTPNS, true);
        // Masked: nothing anywhere.
        assert_eq!(b.rd(IRQ_SOURCE + 4), 0);
        assert_eq!(b.outs()[1], NONE);
        // FIQ enable for CNTPNS (bit 5) overrides its IRQ enable (bit 1).
        b.wr(TIMER_INT_CONTROL + 4, 1 << 1 | 1 << 5);
        assert_eq!(b.rd(FIQ_SOURCE + 4), 1 << 1);
        assert_eq!(b.rd(IRQ_SOURCE + 4), 0);
        assert_eq!(b.outs(), vec![NONE, FIQ, NONE, NONE]);
        // IRQ only (Linux's unmask of the arch timer).
        b.wr(TIMER_INT_CONTROL + 4, 1 << 1);
        assert_eq!(b.rd(IRQ_SOURCE + 4), 1 << 1);
        assert_eq!(b.rd(FIQ_SOURCE + 4), 0);
        assert_eq!(b.outs(), vec![NONE, IRQ, NONE, NONE]);
        // Another core's control does not matter, and the input is per core.
        b.wr(TIMER_INT_CONTROL, 0xff);
        assert_eq!(b.outs()[0], NONE);
        b.intc.set_level(TIMER_CNTV, true);
        assert_eq!(b.rd(FIQ_SOURCE), 1 << 3);
        b.intc.set_level(1 << 16 | TIMER_CNTPNS, false);
        b.intc.set_level(TIMER_CNTV, false);
        assert_eq!(b.rd(IRQ_SOURCE + 4), 0);
        assert_eq!(b.outs(), vec![NONE; 4]);
    }

    #[test]
    fn gpu_irq_and_fiq_follow_the_routing_register() {
        let mut b = Board::new(4);
        b.wr(GPU_ROUTING, 2 | 3 << 2);
        assert_eq!(b.rd(GPU_ROUTING), 0xe);
        b.intc.set_level(GPU_IRQ, true);
        assert_eq!(b.rd(IRQ_SOURCE + 8), 1 << 8);
        assert_eq!(b.rd(IRQ_SOURCE), 0);
        assert_eq!(b.outs(), vec![NONE, NONE, IRQ, NONE]);
        b.intc.set_level(GPU_FIQ, true);
        assert_eq!(b.rd(FIQ_SOURCE + 12), 1 << 8);
        assert_eq!(b.outs(), vec![NONE, NONE, IRQ, FIQ]);
        // Re-routing moves the pending interrupt.
        b.wr(GPU_ROUTING, 0);
        assert_eq!(b.outs(), vec![(true, true), NONE, NONE, NONE]);
        b.intc.set_level(GPU_IRQ, false);
        b.intc.set_level(GPU_FIQ, false);
        assert_eq!(b.outs(), vec![NONE; 4]);
    }

    #[test]
    fn armctrl_interrupt_reaches_the_routed_core() {
        let mut b = Board::new(4);
        let armctrl = Armctrl::new(
            IrqLine::new(b.intc.clone(), GPU_IRQ),
            IrqLine::new(b.intc.clone(), GPU_FIQ),
        );
        let mut ic = armctrl.device();
        b.wr(GPU_ROUTING, 1);
        ic.write(0x14, 4, 1 << 25); // enable 2: GPU 57 (PL011)
        armctrl.set_level(57, true);
        assert_eq!(b.rd(IRQ_SOURCE + 4), 1 << 8);
        assert_eq!(b.outs(), vec![NONE, IRQ, NONE, NONE]);
        ic.write(0x20, 4, 1 << 25); // disable 2
        assert_eq!(b.outs(), vec![NONE; 4]);
    }

    #[test]
    fn pmu_routing_set_and_clear() {
        let mut b = Board::new(4);
        b.intc.set_level(3 << 16 | PMU, true);
        assert_eq!(b.outs()[3], NONE);
        b.wr(PMU_ROUTING_SET, 1 << 3);
        assert_eq!(b.rd(PMU_ROUTING_SET), 1 << 3);
        assert_eq!(b.rd(IRQ_SOURCE + 12), 1 << 9);
        assert_eq!(b.outs()[3], IRQ);
        b.wr(PMU_ROUTING_SET, 1 << 7);
        assert_eq!(b.rd(FIQ_SOURCE + 12), 1 << 9);
        assert_eq!(b.outs()[3], FIQ);
        b.wr(PMU_ROUTING_CLR, 1 << 7 | 1 << 3);
        assert_eq!(b.rd(PMU_ROUTING_CLR), 0);
        assert_eq!(b.outs()[3], NONE);
    }

    #[test]
    fn local_timer_expires_reloads_and_acknowledges() {
        let mut b = Board::new(2);
        b.wr(LOCAL_ROUTING, 1); // IRQ of core 1
                                // 38400 ticks at 38.4 MHz = 1 ms.
        b.wr(LOCAL_TIMER_CONTROL, 38_400 | LT_ENABLE | LT_INT_ENABLE);
        assert_eq!(b.intc.next_deadline(), Some(Duration::from_millis(1)));
        b.advance_ns(999_999);
        b.intc.poll();
        assert_eq!(b.outs(), vec![NONE, NONE]);
        b.advance_ns(1);
        b.intc.poll();
        assert_eq!(b.outs(), vec![NONE, IRQ]);
        assert_eq!(
            b.rd(LOCAL_TIMER_CONTROL),
            38_400 | LT_ENABLE | LT_INT_ENABLE | LT_FLAG
        );
        assert_eq!(b.rd(IRQ_SOURCE + 4), 1 << 11);
        assert_eq!(b.intc.next_deadline(), None);
        b.wr(LOCAL_TIMER_FLAGS, LT_CLEAR);
        assert_eq!(b.outs(), vec![NONE, NONE]);
        // It kept counting: the next expiry is 1 ms after the first.
        b.advance_ns(500_000);
        assert_eq!(b.intc.next_deadline(), Some(Duration::from_micros(500)));
        // Routed to core 0's FIQ.
        b.wr(LOCAL_ROUTING, 4);
        b.advance_ns(500_000);
        assert_eq!(b.rd(FIQ_SOURCE), 1 << 11);
        assert_eq!(b.outs(), vec![FIQ, NONE]);
        // Disabling the interrupt hides the flag.
        b.wr(LOCAL_TIMER_CONTROL, 38_400 | LT_ENABLE);
        b.wr(LOCAL_TIMER_FLAGS, LT_CLEAR | LT_RELOAD_NOW);
        b.advance_ns(5_000_000);
        b.intc.poll();
        assert_eq!(b.outs(), vec![NONE, NONE]);
        assert_ne!(b.rd(LOCAL_TIMER_CONTROL) & LT_FLAG, 0);
    }

    #[test]
    fn core_timer_counts_at_the_prescaled_crystal_rate() {
        let mut b = Board::new(1);
        // Linux's setup: crystal source, +1 steps, prescaler 2^31 (1:1).
        b.wr(CONTROL, 0);
        b.wr(PRESCALER, 0x8000_0000);
        assert_eq!(b.rd(PRESCALER), 0x8000_0000);
        b.advance_ns(1_000_000_000);
        assert_eq!(b.rd(CORE_TIMER_LS), 19_200_000);
        assert_eq!(b.rd(CORE_TIMER_MS), 0);
        // Writing LS then MS sets the 64-bit value; reading LS latches MS.
        b.wr(CORE_TIMER_LS, 0xffff_fff0);
        b.wr(CORE_TIMER_MS, 7);
        b.advance_ns(1000); // 19.2 ticks
        assert_eq!(b.rd(CORE_TIMER_LS), 0x0000_0003);
        assert_eq!(b.rd(CORE_TIMER_MS), 8);
        // Half rate.
        b.wr(PRESCALER, 0x4000_0000);
        b.wr(CORE_TIMER_LS, 0);
        b.wr(CORE_TIMER_MS, 0);
        b.advance_ns(1_000_000_000);
        assert_eq!(b.rd(CORE_TIMER_LS), 9_600_000);
    }

    #[test]
    fn ipis_between_threads_are_all_delivered() {
        let b = Board::new(4);
        let mut regs0 = b.intc.device();
        for core in 0..4 {
            regs0.write(MAILBOX_INT_CONTROL + 4 * core, 4, 1);
        }
        let handles: Vec<_> = (0..4u64)
            .map(|me| {
                let mut regs = b.intc.device();
                std::thread::spawn(move || {
                    for i in 0..200u64 {
                        let target = (me + 1 + i % 3) % 4;
                        regs.write(MAILBOX_SET + 16 * target, 4, 1 << me);
                        // Acknowledge what was sent to me.
                        let pending = regs.read(MAILBOX_CLR + 16 * me, 4);
                        regs.write(MAILBOX_CLR + 16 * me, 4, pending);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let mut regs = b.intc.device();
        for core in 0..4 {
            let pending = regs.read(MAILBOX_CLR + 16 * core, 4);
            assert_eq!(b.cpus[core as usize].irq(), pending != 0);
            regs.write(MAILBOX_CLR + 16 * core, 4, pending);
        }
        assert_eq!(b.outs(), vec![NONE; 4]);
    }

    #[test]
    fn bad_lines_offsets_and_sizes_never_panic() {
        let mut b = Board::new(1);
        for line in [5, 7, 10, 0xffff, 4 << 16, 9 << 16 | 1, u32::MAX] {
            b.intc.set_level(line, true);
        }
        // Mailbox interrupts of core 3 have no CPU to go to (only one core given).
        for off in (0..0x200u64).chain([u64::MAX - 3, u64::MAX]) {
            for size in [1u8, 2, 4, 8, 16] {
                b.regs.read(off, size);
                b.regs.write(off, size, u64::MAX);
            }
        }
        assert!(b.intc.sources(7) == (0, 0));
        // A 5-core list is cut to 4.
        let cpus: Vec<_> = (0..5)
            .map(|_| Arc::new(CpuInterrupts::new(Arc::new(AtomicBool::new(false)))))
            .collect();
        let intc = LocalIntc::new(cpus);
        intc.set_level(GPU_IRQ, true);
        assert_eq!(intc.sources(0).0, 1 << 8);
    }
}
