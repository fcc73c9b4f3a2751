//! System registers for MRS and MSR (register): the encodings, the user-mode view (EL0 of a
//! Linux process, as Linux presents it) and the system-mode registers of `SysRegs`.

use crate::ir::HelperError;
use crate::mem::Mem;
use crate::model;
use crate::state::{pending, CpuState};
use crate::sys::exception::set_el_sp;
use crate::sys::timer::{self, cntkctl};
use crate::sys::{daif, sctlr};

/// A system register as (op0, op1, CRn, CRm, op2), packed as bits 20:5 of MRS/MSR.
pub const fn sysreg(op0: u32, op1: u32, crn: u32, crm: u32, op2: u32) -> u32 {
    ((op0 & 3) << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2
}

pub const NZCV: u32 = sysreg(3, 3, 4, 2, 0);
pub const DAIF: u32 = sysreg(3, 3, 4, 2, 1);
pub const FPCR: u32 = sysreg(3, 3, 4, 4, 0);
pub const FPSR: u32 = sysreg(3, 3, 4, 4, 1);
pub const TPIDR_EL0: u32 = sysreg(3, 3, 13, 0, 2);
pub const TPIDRRO_EL0: u32 = sysreg(3, 3, 13, 0, 3);
pub const CTR_EL0: u32 = sysreg(3, 3, 0, 0, 1);
pub const DCZID_EL0: u32 = sysreg(3, 3, 0, 0, 7);
pub const CNTFRQ_EL0: u32 = sysreg(3, 3, 14, 0, 0);
pub const CNTPCT_EL0: u32 = sysreg(3, 3, 14, 0, 1);
pub const CNTVCT_EL0: u32 = sysreg(3, 3, 14, 0, 2);
pub const MIDR_EL1: u32 = sysreg(3, 0, 0, 0, 0);
pub const MPIDR_EL1: u32 = sysreg(3, 0, 0, 0, 5);
pub const REVIDR_EL1: u32 = sysreg(3, 0, 0, 0, 6);
pub const ID_AA64PFR0_EL1: u32 = sysreg(3, 0, 0, 4, 0);
pub const ID_AA64DFR0_EL1: u32 = sysreg(3, 0, 0, 5, 0);
pub const ID_AA64ISAR0_EL1: u32 = sysreg(3, 0, 0, 6, 0);
pub const ID_AA64ISAR1_EL1: u32 = sysreg(3, 0, 0, 6, 1);
pub const ID_AA64MMFR0_EL1: u32 = sysreg(3, 0, 0, 7, 0);

/// SCTLR_EL1 bits that gate EL0 access (beyond those in `sys::sctlr`).
const SCTLR_UMA: u64 = 1 << 9;

/// ID_AA64DFR0_EL1.PMUVer (bits 11:8): no PMU is implemented in system mode.
const DFR0_PMUVER: u64 = 0xf << 8;

/// One system register, or a group answered alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reg {
    Nzcv,
    Daif,
    Fpcr,
    Fpsr,
    TpidrEl0,
    TpidrroEl0,
    Ctr,
    Dczid,
    Cntfrq,
    Cntpct,
    Cntvct,
    /// CNTP_{TVAL,CTL,CVAL}_EL0 (`virt` false) or CNTV_* (`virt` true).
    TimerTval {
        virt: bool,
    },
    TimerCtl {
        virt: bool,
    },
    TimerCval {
        virt: bool,
    },
    /// The PMU's registers: RAZ/WI at EL1 (PMUSERENR_EL0 reads 0, so EL0 access is undefined).
    Pmu,
    /// Debug registers other than MDSCR_EL1 (OS lock, breakpoints, watchpoints, DCC): RAZ/WI
    /// at EL1.
    Debug,
    Mdscr,
    Midr,
    Mpidr,
    Revidr,
    IdPfr0,
    IdDfr0,
    IdIsar0,
    IdIsar1,
    IdMmfr0,
    /// The rest of the ID space (op0=3, op1=0, CRn=0): reads as zero.
    IdZero,
    Sctlr,
    /// ACTLR_EL1 (implementation defined): RAZ/WI.
    Actlr,
    Cpacr,
    Ttbr0,
    Ttbr1,
    Tcr,
    Spsr,
    Elr,
    SpEl0,
    SpSel,
    CurrentEl,
    Afsr0,
    Afsr1,
    Esr,
    Far,
    Par,
    Mair,
    Amair,
    Vbar,
    Isr,
    Contextidr,
    TpidrEl1,
    Cntkctl,
    Ccsidr,
    Clidr,
    Aidr,
    Csselr,
}

impl Reg {
    /// MSR to this register is undefined (read-only registers).
    pub fn read_only(self) -> bool {
        matches!(
            self,
            Reg::Ctr
                | Reg::Dczid
                | Reg::Cntpct
                | Reg::Cntvct
                | Reg::Midr
                | Reg::Mpidr
                | Reg::Revidr
                | Reg::IdPfr0
                | Reg::IdDfr0
                | Reg::IdIsar0
                | Reg::IdIsar1
                | Reg::IdMmfr0
                | Reg::IdZero
                | Reg::CurrentEl
                | Reg::Isr
                | Reg::Ccsidr
                | Reg::Clidr
                | Reg::Aidr
        )
    }

    /// A write the block must end after: the MMU's registers (re-synced), PSTATE.DAIF (may
    /// unmask an interrupt) and the timers (the machine re-evaluates deadlines).
    pub fn write_ends_block(self) -> bool {
        matches!(
            self,
            Reg::Sctlr
                | Reg::Tcr
                | Reg::Ttbr0
                | Reg::Ttbr1
                | Reg::Mair
                | Reg::Contextidr
                | Reg::Daif
                | Reg::TimerTval { .. }
                | Reg::TimerCtl { .. }
                | Reg::TimerCval { .. }
        )
    }
}

/// The register an MRS/MSR (register) encoding names; bits 20:5 of the instruction.
pub fn decode_reg(key: u32) -> Option<Reg> {
    let (op0, op1, crn, crm, op2) = (
        key >> 14,
        (key >> 11) & 7,
        (key >> 7) & 0xf,
        (key >> 3) & 0xf,
        key & 7,
    );
    Some(match (op0, op1, crn, crm, op2) {
        (3, 3, 4, 2, 0) => Reg::Nzcv,
        (3, 3, 4, 2, 1) => Reg::Daif,
        (3, 3, 4, 4, 0) => Reg::Fpcr,
        (3, 3, 4, 4, 1) => Reg::Fpsr,
        (3, 3, 13, 0, 2) => Reg::TpidrEl0,
        (3, 3, 13, 0, 3) => Reg::TpidrroEl0,
        (3, 3, 0, 0, 1) => Reg::Ctr,
        (3, 3, 0, 0, 7) => Reg::Dczid,
        (3, 3, 14, 0, 0) => Reg::Cntfrq,
        (3, 3, 14, 0, 1) => Reg::Cntpct,
        (3, 3, 14, 0, 2) => Reg::Cntvct,
        (3, 3, 14, 2 | 3, 0) => Reg::TimerTval { virt: crm == 3 },
        (3, 3, 14, 2 | 3, 1) => Reg::TimerCtl { virt: crm == 3 },
        (3, 3, 14, 2 | 3, 2) => Reg::TimerCval { virt: crm == 3 },
        // PMCR..PMUSERENR, PMOVSSET; the event counters and types, PMCCFILTR;
        // PMINTENSET/CLR_EL1, PMMIR_EL1.
        (3, 3, 9, 12..=14, _) | (3, 3, 14, 8..=15, _) | (3, 0, 9, 14, 1 | 2 | 6) => Reg::Pmu,
        (2, 0, 0, 2, 2) => Reg::Mdscr,
        (2, _, _, _, _) => Reg::Debug,
        (3, 0, 0, 0, 0) => Reg::Midr,
        (3, 0, 0, 0, 5) => Reg::Mpidr,
        (3, 0, 0, 0, 6) => Reg::Revidr,
        (3, 0, 0, 4, 0) => Reg::IdPfr0,
        (3, 0, 0, 5, 0) => Reg::IdDfr0,
        (3, 0, 0, 6, 0) => Reg::IdIsar0,
        (3, 0, 0, 6, 1) => Reg::IdIsar1,
        (3, 0, 0, 7, 0) => Reg::IdMmfr0,
        (3, 0, 0, 0..=7, _) => Reg::IdZero,
        (3, 0, 1, 0, 0) => Reg::Sctlr,
        (3, 0, 1, 0, 1) => Reg::Actlr,
        (3, 0, 1, 0, 2) => Reg::Cpacr,
        (3, 0, 2, 0, 0) => Reg::Ttbr0,
        (3, 0, 2, 0, 1) => Reg::Ttbr1,
        (3, 0, 2, 0, 2) => Reg::Tcr,
        (3, 0, 4, 0, 0) => Reg::Spsr,
        (3, 0, 4, 0, 1) => Reg::Elr,
        (3, 0, 4, 1, 0) => Reg::SpEl0,
        (3, 0, 4, 2, 0) => Reg::SpSel,
        (3, 0, 4, 2, 2) => Reg::CurrentEl,
        (3, 0, 5, 1, 0) => Reg::Afsr0,
        (3, 0, 5, 1, 1) => Reg::Afsr1,
        (3, 0, 5, 2, 0) => Reg::Esr,
        (3, 0, 6, 0, 0) => Reg::Far,
        (3, 0, 7, 4, 0) => Reg::Par,
        (3, 0, 10, 2, 0) => Reg::Mair,
        (3, 0, 10, 3, 0) => Reg::Amair,
        (3, 0, 12, 0, 0) => Reg::Vbar,
        (3, 0, 12, 1, 0) => Reg::Isr,
        (3, 0, 13, 0, 1) => Reg::Contextidr,
        (3, 0, 13, 0, 4) => Reg::TpidrEl1,
        (3, 0, 14, 1, 0) => Reg::Cntkctl,
        (3, 1, 0, 0, 0) => Reg::Ccsidr,
        (3, 1, 0, 0, 1) => Reg::Clidr,
        (3, 1, 0, 0, 7) => Reg::Aidr,
        (3, 2, 0, 0, 0) => Reg::Csselr,
        _ => return None,
    })
}

// ---- User mode -------------------------------------------------------------------------

/// The model user mode runs (Linux emulates EL0 reads of the ID registers with sanitised
/// values; we give the model's).
fn user_model() -> model::CpuModel {
    model::CORTEX_A72
}

/// EL0 reads of system registers in user mode, as Linux presents them.
pub fn user_read(st: &CpuState, reg: u32) -> Option<u64> {
    let m = user_model();
    Some(match reg {
        NZCV => st.nzcv as u64,
        FPCR => st.fpcr as u64,
        FPSR => st.fpsr as u64,
        TPIDR_EL0 => st.tpidr_el0,
        TPIDRRO_EL0 => st.tpidrro_el0,
        CTR_EL0 => m.ctr,
        DCZID_EL0 => model::DCZID,
        CNTFRQ_EL0 => model::CNTFRQ,
        CNTPCT_EL0 | CNTVCT_EL0 => model::user_counter(),
        MIDR_EL1 => m.midr,
        MPIDR_EL1 => 0x8000_0000,
        REVIDR_EL1 => m.revidr,
        ID_AA64PFR0_EL1 => m.id_aa64pfr0,
        ID_AA64ISAR0_EL1 => m.id_aa64isar0,
        ID_AA64ISAR1_EL1 => m.id_aa64isar1,
        ID_AA64MMFR0_EL1 => m.id_aa64mmfr0,
        ID_AA64DFR0_EL1 => 0x6,
        // The rest of the ID space (op0=3, op1=0, CRn=0, CRm=1..7) reads as zero at EL0.
        r if (r >> 7) == (sysreg(3, 0, 0, 0, 0) >> 7) && (r >> 3) & 0xf != 0 => 0,
        _ => return None,
    })
}

/// EL0 writes in user mode.
pub fn user_write(st: &mut CpuState, reg: u32, v: u64) -> Result<(), HelperError> {
    match reg {
        NZCV => st.nzcv = v as u32 & 0xf000_0000,
        // FPCR: AHP, DN, FZ, RMode, Stride, Len (trap enables read as zero on these cores).
        FPCR => st.fpcr = v as u32 & 0x07ff_0000,
        FPSR => st.fpsr = v as u32 & 0xf800_009f,
        TPIDR_EL0 => st.tpidr_el0 = v,
        _ => return Err(HelperError::Undefined),
    }
    Ok(())
}

// ---- System mode -------------------------------------------------------------------------

/// The physical system counter: the machine's, or host time for a memory without one.
pub fn counter(st: &CpuState, mem: &mut dyn Mem) -> u64 {
    match mem.system() {
        Some(s) => s.counter(st.retired),
        None => model::user_counter(),
    }
}

/// Cache geometry reported through CLIDR_EL1/CCSIDR_EL1: separate L1 instruction and data
/// caches and a unified L2, 64-byte lines (Cortex-A72 sizes). Cache maintenance by set/way
/// is a no-op, so these only need to be self-consistent.
const CLIDR: u64 = {
    let ctype1 = 0b011; // separate I and D
    let ctype2 = 0b100 << 3; // unified
    let louis = 1 << 21;
    let loc = 2 << 24;
    let louu = 1 << 27;
    ctype1 | ctype2 | louis | loc | louu
};

/// CCSIDR_EL1 for CSSELR_EL1 = `csselr` (Level in bits 3:1, InD in bit 0).
fn ccsidr(csselr: u64) -> u64 {
    // (size in bytes, ways, write-back/allocate policy bits 31:28)
    let (size, ways, policy): (u64, u64, u64) = match csselr & 0xf {
        0b0000 => (32 << 10, 2, 0b0111), // L1 data
        0b0001 => (48 << 10, 3, 0b0010), // L1 instruction
        0b0010 => (1 << 20, 16, 0b0111), // L2 unified
        _ => return 0,
    };
    let line = 64u64;
    let sets = size / (ways * line);
    (policy << 28) | ((sets - 1) << 13) | ((ways - 1) << 3) | 2 // LineSize: log2(64) - 4
}

/// Whether EL0 may access `reg` (all of them are accessible at EL1).
fn el0_allowed(st: &CpuState, reg: Reg, write: bool) -> bool {
    let s = &st.sys;
    let k = s.cntkctl_el1;
    match reg {
        Reg::Nzcv | Reg::Fpcr | Reg::Fpsr | Reg::TpidrEl0 | Reg::Dczid => true,
        Reg::TpidrroEl0 => !write,
        Reg::Daif => s.sctlr_el1 & SCTLR_UMA != 0,
        Reg::Ctr => s.sctlr_el1 & sctlr::UCT != 0,
        Reg::Cntfrq => k & (cntkctl::EL0PCTEN | cntkctl::EL0VCTEN) != 0,
        Reg::Cntpct => k & cntkctl::EL0PCTEN != 0,
        Reg::Cntvct => k & cntkctl::EL0VCTEN != 0,
        Reg::TimerTval { virt } | Reg::TimerCtl { virt } | Reg::TimerCval { virt } => {
            k & (if virt {
                cntkctl::EL0VTEN
            } else {
                cntkctl::EL0PTEN
            }) != 0
        }
        _ => false,
    }
}

/// (CTL, CVAL, count) of one timer.
fn timer_regs(st: &CpuState, mem: &mut dyn Mem, virt: bool) -> (u64, u64, u64) {
    let c = counter(st, mem);
    let s = &st.sys;
    if virt {
        (s.cntv_ctl, s.cntv_cval, c.wrapping_sub(s.cntvoff))
    } else {
        (s.cntp_ctl, s.cntp_cval, c)
    }
}

/// MRS in system mode.
pub fn sys_read(st: &CpuState, mem: &mut dyn Mem, reg: Reg) -> Result<u64, HelperError> {
    if st.sys.el == 0 && !el0_allowed(st, reg, false) {
        return Err(HelperError::Undefined);
    }
    let s = &st.sys;
    let m = &s.model;
    Ok(match reg {
        Reg::Nzcv => st.nzcv as u64,
        Reg::Daif => s.daif as u64,
        Reg::Fpcr => st.fpcr as u64,
        Reg::Fpsr => st.fpsr as u64,
        Reg::TpidrEl0 => st.tpidr_el0,
        Reg::TpidrroEl0 => st.tpidrro_el0,
        Reg::Ctr => m.ctr,
        Reg::Dczid => {
            // DZP: DC ZVA is prohibited at EL0 unless SCTLR_EL1.DZE.
            let dzp = s.el == 0 && s.sctlr_el1 & sctlr::DZE == 0;
            model::DCZID | ((dzp as u64) << 4)
        }
        Reg::Cntfrq => s.cntfrq,
        Reg::Cntpct => counter(st, mem),
        Reg::Cntvct => counter(st, mem).wrapping_sub(s.cntvoff),
        Reg::TimerTval { virt } => {
            let (_, cval, count) = timer_regs(st, mem, virt);
            timer::tval_value(count, cval)
        }
        Reg::TimerCtl { virt } => {
            let (ctl, cval, count) = timer_regs(st, mem, virt);
            timer::ctl_value(ctl, count, cval)
        }
        Reg::TimerCval { virt } => {
            if virt {
                s.cntv_cval
            } else {
                s.cntp_cval
            }
        }
        Reg::Pmu | Reg::Debug | Reg::Actlr | Reg::IdZero | Reg::Aidr => 0,
        // No interrupt is reported pending here; the run loop takes them at block boundaries.
        Reg::Isr => 0,
        Reg::Mdscr => s.mdscr_el1,
        Reg::Midr => m.midr,
        Reg::Mpidr => s.mpidr,
        Reg::Revidr => m.revidr,
        Reg::IdPfr0 => m.id_aa64pfr0,
        Reg::IdDfr0 => m.id_aa64dfr0 & !DFR0_PMUVER,
        Reg::IdIsar0 => m.id_aa64isar0,
        Reg::IdIsar1 => m.id_aa64isar1,
        Reg::IdMmfr0 => m.id_aa64mmfr0,
        Reg::Sctlr => s.sctlr_el1,
        Reg::Cpacr => s.cpacr_el1,
        Reg::Ttbr0 => s.ttbr0_el1,
        Reg::Ttbr1 => s.ttbr1_el1,
        Reg::Tcr => s.tcr_el1,
        Reg::Spsr => s.spsr_el1,
        Reg::Elr => s.elr_el1,
        // SP_EL0 is accessible by name only while it is not the current stack pointer.
        Reg::SpEl0 if !s.spsel => return Err(HelperError::Undefined),
        Reg::SpEl0 => s.sp_el0,
        Reg::SpSel => s.spsel as u64,
        Reg::CurrentEl => (s.el as u64) << 2,
        Reg::Afsr0 => s.afsr0_el1,
        Reg::Afsr1 => s.afsr1_el1,
        Reg::Esr => s.esr_el1,
        Reg::Far => s.far_el1,
        Reg::Par => s.par_el1,
        Reg::Mair => s.mair_el1,
        Reg::Amair => s.amair_el1,
        Reg::Vbar => s.vbar_el1,
        Reg::Contextidr => s.contextidr_el1,
        Reg::TpidrEl1 => s.tpidr_el1,
        Reg::Cntkctl => s.cntkctl_el1,
        Reg::Ccsidr => ccsidr(s.csselr_el1),
        Reg::Clidr => CLIDR,
        Reg::Csselr => s.csselr_el1,
    })
}

/// MSR (register) in system mode. Checks everything before changing state.
pub fn sys_write(
    st: &mut CpuState,
    mem: &mut dyn Mem,
    reg: Reg,
    v: u64,
) -> Result<(), HelperError> {
    if reg.read_only() || (st.sys.el == 0 && !el0_allowed(st, reg, true)) {
        return Err(HelperError::Undefined);
    }
    if reg == Reg::SpEl0 && !st.sys.spsel {
        return Err(HelperError::Undefined);
    }
    let mut sync = false;
    match reg {
        Reg::TimerTval { virt } => {
            let (_, _, count) = timer_regs(st, mem, virt);
            let cval = timer::cval_from_tval(count, v);
            if virt {
                st.sys.cntv_cval = cval;
            } else {
                st.sys.cntp_cval = cval;
            }
            st.pending |= pending::MACHINE;
        }
        Reg::TimerCtl { virt } => {
            let ctl = v & (timer::ctl::ENABLE | timer::ctl::IMASK);
            if virt {
                st.sys.cntv_ctl = ctl;
            } else {
                st.sys.cntp_ctl = ctl;
            }
            st.pending |= pending::MACHINE;
        }
        Reg::TimerCval { virt } => {
            if virt {
                st.sys.cntv_cval = v;
            } else {
                st.sys.cntp_cval = v;
            }
            st.pending |= pending::MACHINE;
        }
        Reg::Daif => {
            let new = v as u32 & (daif::D | daif::A | daif::I | daif::F);
            if st.sys.daif & !new != 0 {
                st.pending |= pending::IRQ_CHECK;
            }
            st.sys.daif = new;
        }
        Reg::SpSel => set_el_sp(st, st.sys.el, v & 1 != 0),
        _ => {
            let s = &mut st.sys;
            match reg {
                Reg::Nzcv => st.nzcv = v as u32 & 0xf000_0000,
                Reg::Fpcr => st.fpcr = v as u32 & 0x07ff_0000,
                Reg::Fpsr => st.fpsr = v as u32 & 0xf800_009f,
                Reg::TpidrEl0 => st.tpidr_el0 = v,
                Reg::TpidrroEl0 => st.tpidrro_el0 = v,
                // CNTFRQ_EL0 is writable at the highest EL (here EL1); the frequency is fixed.
                Reg::Cntfrq | Reg::Pmu | Reg::Debug | Reg::Actlr => {}
                Reg::Mdscr => s.mdscr_el1 = v & 0xffff_ffff,
                Reg::Sctlr => {
                    s.sctlr_el1 = v;
                    sync = true;
                }
                Reg::Cpacr => s.cpacr_el1 = v & 0xffff_ffff,
                Reg::Ttbr0 => {
                    s.ttbr0_el1 = v;
                    sync = true;
                }
                Reg::Ttbr1 => {
                    s.ttbr1_el1 = v;
                    sync = true;
                }
                Reg::Tcr => {
                    s.tcr_el1 = v;
                    sync = true;
                }
                Reg::Mair => {
                    s.mair_el1 = v;
                    sync = true;
                }
                Reg::Contextidr => {
                    s.contextidr_el1 = v & 0xffff_ffff;
                    sync = true;
                }
                Reg::Spsr => s.spsr_el1 = v & 0xffff_ffff,
                Reg::Elr => s.elr_el1 = v,
                Reg::SpEl0 => s.sp_el0 = v,
                Reg::Afsr0 => s.afsr0_el1 = v & 0xffff_ffff,
                Reg::Afsr1 => s.afsr1_el1 = v & 0xffff_ffff,
                Reg::Esr => s.esr_el1 = v & 0xffff_ffff,
                Reg::Far => s.far_el1 = v,
                Reg::Par => s.par_el1 = v,
                Reg::Amair => s.amair_el1 = v,
                Reg::Vbar => s.vbar_el1 = v & !0x7ff,
                Reg::TpidrEl1 => s.tpidr_el1 = v,
                Reg::Cntkctl => s.cntkctl_el1 = v & 0x3ff,
                Reg::Csselr => s.csselr_el1 = v & 0xf,
                // Read-only registers were refused above; the rest are handled before.
                _ => return Err(HelperError::Undefined),
            }
        }
    }
    if sync {
        if let Some(m) = mem.system() {
            m.sync(st);
        }
    }
    Ok(())
}
