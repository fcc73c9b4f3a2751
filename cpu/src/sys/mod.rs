//! System-mode state: exception levels, the EL1 system registers Linux uses, the generic
//! timer's registers, and the interface the CPU needs from a system-mode memory (MMU, TLB,
//! counter).
//!
//! In user mode none of this is live: `SysRegs::system` is false and EL0 system-register
//! accesses are answered as Linux presents them.

pub mod exception;
pub mod timer;

use crate::mem::{Access, MemFault};
use crate::model::{CpuModel, CORTEX_A72};
use crate::state::CpuState;

/// PSTATE.DAIF bits as they sit in the DAIF register (and in SPSR).
pub mod daif {
    pub const D: u32 = 1 << 9;
    pub const A: u32 = 1 << 8;
    pub const I: u32 = 1 << 7;
    pub const F: u32 = 1 << 6;
}

/// System registers and PSTATE fields beyond NZCV.
#[derive(Debug, Clone)]
pub struct SysRegs {
    /// Whether this CPU runs a whole machine (EL1 and EL0) rather than a Linux process.
    pub system: bool,
    pub model: CpuModel,
    pub mpidr: u64,
    /// CNTFRQ_EL0: the generic timer's frequency, set by the board's firmware.
    pub cntfrq: u64,
    /// Current exception level (0 or 1).
    pub el: u8,
    /// PSTATE.SP: at EL1, true when SP_EL1 is the stack pointer.
    pub spsel: bool,
    /// PSTATE.{D,A,I,F} in bits 9..6.
    pub daif: u32,
    /// The stack pointer not currently in `CpuState::x[31]`: SP_EL0 while at EL1 with SPSel=1,
    /// SP_EL1 while at EL0 or with SPSel=0.
    pub sp_el0: u64,
    pub sp_el1: u64,
    pub elr_el1: u64,
    pub spsr_el1: u64,
    pub esr_el1: u64,
    pub far_el1: u64,
    pub vbar_el1: u64,
    pub sctlr_el1: u64,
    pub tcr_el1: u64,
    pub ttbr0_el1: u64,
    pub ttbr1_el1: u64,
    pub mair_el1: u64,
    pub amair_el1: u64,
    pub contextidr_el1: u64,
    pub tpidr_el1: u64,
    pub cpacr_el1: u64,
    pub par_el1: u64,
    pub cntkctl_el1: u64,
    pub csselr_el1: u64,
    pub mdscr_el1: u64,
    pub afsr0_el1: u64,
    pub afsr1_el1: u64,
    /// Generic timer: virtual and physical timer control and compare values.
    pub cntv_ctl: u64,
    pub cntv_cval: u64,
    pub cntp_ctl: u64,
    pub cntp_cval: u64,
    /// CNTVOFF: virtual count = physical count - this.
    pub cntvoff: u64,
    /// The event register as this CPU sets it (SEVL, an exception return); the machine
    /// keeps the events other CPUs send and the generic timer's event stream, and WFE
    /// consumes them all.
    pub event: bool,
}

impl Default for SysRegs {
    fn default() -> Self {
        Self::new()
    }
}

/// SCTLR_EL1 bits.
pub mod sctlr {
    pub const M: u64 = 1 << 0;
    pub const A: u64 = 1 << 1;
    pub const C: u64 = 1 << 2;
    pub const SA: u64 = 1 << 3;
    pub const SA0: u64 = 1 << 4;
    pub const I: u64 = 1 << 12;
    pub const DZE: u64 = 1 << 14;
    pub const UCT: u64 = 1 << 15;
    pub const WXN: u64 = 1 << 19;
    pub const E0E: u64 = 1 << 24;
    pub const EE: u64 = 1 << 25;
    pub const UCI: u64 = 1 << 26;
    /// The RES1 bits of SCTLR_EL1 in ARMv8.0 (bits 29, 28, 23, 22, 20, 11).
    pub const RES1: u64 = (1 << 29) | (1 << 28) | (1 << 23) | (1 << 22) | (1 << 20) | (1 << 11);
}

impl SysRegs {
    pub const fn new() -> Self {
        Self {
            system: false,
            model: CORTEX_A72,
            mpidr: 0x8000_0000,
            cntfrq: crate::model::CNTFRQ,
            el: 0,
            spsel: false,
            daif: 0,
            sp_el0: 0,
            sp_el1: 0,
            elr_el1: 0,
            spsr_el1: 0,
            esr_el1: 0,
            far_el1: 0,
            vbar_el1: 0,
            sctlr_el1: sctlr::RES1,
            tcr_el1: 0,
            ttbr0_el1: 0,
            ttbr1_el1: 0,
            mair_el1: 0,
            amair_el1: 0,
            contextidr_el1: 0,
            tpidr_el1: 0,
            cpacr_el1: 0,
            par_el1: 0,
            cntkctl_el1: 0,
            csselr_el1: 0,
            mdscr_el1: 0,
            afsr0_el1: 0,
            afsr1_el1: 0,
            cntv_ctl: 0,
            cntv_cval: 0,
            cntp_ctl: 0,
            cntp_cval: 0,
            cntvoff: 0,
            event: false,
        }
    }

    /// Reset state of a system-mode CPU entering at EL1h with interrupts masked and the MMU
    /// off, as the Linux arm64 boot protocol requires.
    pub fn reset_el1(model: CpuModel, mpidr: u64) -> Self {
        Self {
            system: true,
            model,
            mpidr,
            el: 1,
            spsel: true,
            daif: daif::D | daif::A | daif::I | daif::F,
            ..Self::new()
        }
    }

    /// The ASID of the current translation regime (TCR_EL1.A1 selects TTBR1's).
    pub fn asid(&self) -> u16 {
        let ttbr = if self.tcr_el1 & (1 << 22) != 0 {
            self.ttbr1_el1
        } else {
            self.ttbr0_el1
        };
        (ttbr >> 48) as u16
    }
}

/// TLB maintenance operations (TLBI), already decoded. Addresses are virtual page addresses
/// (the register's VA[55:12] shifted back into place); `asid` is the register's ASID field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tlbi {
    /// VMALLE1(IS): all entries of this VM.
    All,
    /// ASIDE1(IS): all non-global entries of `asid`.
    Asid(u16),
    /// VAE1/VALE1(IS): entries for `va` in `asid`, and global entries for `va`.
    Va { va: u64, asid: u16 },
    /// VAAE1/VAALE1(IS): entries for `va` in any ASID.
    VaAllAsids { va: u64 },
}

/// What the CPU needs from a system-mode memory beyond [`crate::Mem`]: the MMU's view of the
/// translation registers, TLB maintenance, address translation for `AT`, and the system
/// counter. Reached through [`crate::Mem::system`].
pub trait SystemMem {
    /// Translation registers, the exception level or the ASID changed: re-read them from
    /// `st` before the next access.
    fn sync(&mut self, st: &CpuState);

    /// Apply a TLB maintenance operation (to this CPU's TLB and, for the broadcast forms
    /// — all of them here, which is allowed — to every CPU's).
    fn tlbi(&mut self, st: &CpuState, op: Tlbi);

    /// Translate `va` as an access of kind `access` would at EL0 (`el0`) or at the current
    /// EL (AT S1E0R/W, S1E1R/W). Returns the physical address or the fault the access
    /// would take.
    fn translate(
        &mut self,
        st: &CpuState,
        va: u64,
        access: Access,
        el0: bool,
    ) -> Result<u64, MemFault>;

    /// The physical system counter (CNTPCT_EL0) as seen by a CPU that has retired
    /// `retired` instructions ([`crate::CpuState::retired`]): an instruction-counting clock
    /// derives guest time from it, a host clock ignores it.
    fn counter(&mut self, retired: u64) -> u64;

    /// The physical address an instruction fetch from `va` uses under the current regime.
    /// The engine checks cached blocks against it, so a block is only reused where its
    /// virtual address still maps the same physical code.
    fn translate_exec(&mut self, va: u64) -> Result<u64, MemFault>;
}
