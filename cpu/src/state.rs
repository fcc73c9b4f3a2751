//! Architectural register state of one AArch64 vCPU.

/// NZCV flag bits as they sit in the `NZCV` system register (bits 31..28).
pub mod nzcv {
    pub const N: u32 = 1 << 31;
    pub const Z: u32 = 1 << 30;
    pub const C: u32 = 1 << 29;
    pub const V: u32 = 1 << 28;
}

/// FPCR fields used by the FP implementation.
pub mod fpcr {
    /// Alternative half-precision (unused on v8.0 cores we model, kept for completeness).
    pub const AHP: u32 = 1 << 26;
    /// Default NaN mode.
    pub const DN: u32 = 1 << 25;
    /// Flush-to-zero.
    pub const FZ: u32 = 1 << 24;
    /// Rounding mode shift (bits 23:22).
    pub const RMODE_SHIFT: u32 = 22;
}

/// FPSR cumulative exception bits.
pub mod fpsr {
    pub const IOC: u32 = 1 << 0;
    pub const DZC: u32 = 1 << 1;
    pub const OFC: u32 = 1 << 2;
    pub const UFC: u32 = 1 << 3;
    pub const IXC: u32 = 1 << 4;
    pub const IDC: u32 = 1 << 7;
    pub const QC: u32 = 1 << 27;
}

/// The exclusive monitor of one vCPU (LDXR/STXR).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Monitor {
    pub valid: bool,
    pub addr: u64,
    /// Access size in bytes (1, 2, 4, 8 or 16).
    pub size: u8,
    /// The value read by the load-exclusive; the store-exclusive succeeds only if memory still
    /// holds it (compare-and-swap), which is how a software monitor observes other writers.
    pub value: u128,
}

/// AArch64 register state. `x[31]` is the stack pointer; the zero register is handled by the
/// translator and never stored.
#[derive(Debug, Clone)]
#[repr(C, align(16))]
pub struct CpuState {
    pub v: [u128; 32],
    pub x: [u64; 32],
    pub pc: u64,
    /// NZCV in bits 31..28.
    pub nzcv: u32,
    pub fpcr: u32,
    pub fpsr: u32,
    pub tpidr_el0: u64,
    pub tpidrro_el0: u64,
    pub monitor: Monitor,
    /// Requests to the dispatcher, raised by helpers ([`pending`] bits). Compiled code that
    /// called a helper returns to the dispatcher instead of chaining while any is set.
    pub pending: u8,
    /// The physical page (address) of the last IC IVAU, for [`pending::FLUSH_PAGE`].
    pub flush_pa: u64,
    /// Guest instructions retired, counted a block at a time when the block starts (by the
    /// interpreter and by compiled code, chained blocks included). A counter read inside a
    /// block sees the count at the block's end. The icount clock derives guest time from it.
    pub retired: u64,
    /// System-mode state (exception levels, system registers); unused in user mode.
    pub sys: crate::sys::SysRegs,
}

/// Bits of [`CpuState::pending`].
pub mod pending {
    /// Instruction-cache maintenance (IC IALLUIS, an IC IVAU of no known page): drop
    /// translated code, on every vCPU.
    pub const FLUSH_CODE: u8 = 1;
    /// PSTATE.{D,A,I,F} were unmasked: check the interrupt inputs.
    pub const IRQ_CHECK: u8 = 2;
    /// State the machine watches changed (timer registers, a PSCI/WFE event): return
    /// [`crate::Stop::System`] to it.
    pub const MACHINE: u8 = 4;
    /// IC IVAU in system mode: drop translated code from the physical page at
    /// [`super::CpuState::flush_pa`].
    pub const FLUSH_PAGE: u8 = 8;
    /// IC IALLU: drop this vCPU's translated code only.
    pub const FLUSH_LOCAL: u8 = 16;
}

impl Default for CpuState {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuState {
    pub const fn new() -> Self {
        Self {
            v: [0; 32],
            x: [0; 32],
            pc: 0,
            nzcv: 0,
            fpcr: 0,
            fpsr: 0,
            tpidr_el0: 0,
            tpidrro_el0: 0,
            monitor: Monitor {
                valid: false,
                addr: 0,
                size: 0,
                value: 0,
            },
            pending: 0,
            flush_pa: 0,
            retired: 0,
            sys: crate::sys::SysRegs::new(),
        }
    }

    /// The stack pointer.
    pub fn sp(&self) -> u64 {
        self.x[31]
    }

    pub fn set_sp(&mut self, v: u64) {
        self.x[31] = v;
    }
}
