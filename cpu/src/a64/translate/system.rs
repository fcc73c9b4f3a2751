//! System instructions (Arm ARM C4.1.3: hints, barriers, PSTATE, SYS, MRS/MSR) and the
//! exception-level instructions HVC, SMC and ERET.
//!
//! In user mode (`SysRegs::system` false) these behave as a Linux process sees them at EL0.
//! In system mode they run against `SysRegs` at the current exception level. The translator
//! cannot know which (the same block may run at either EL), so every access is a helper call
//! that checks at run time; the encodings that are undefined in both modes are refused here.

pub mod sysreg;
#[cfg(test)]
mod tests;

use crate::a64::{Flow, Insn, Row, Translator};
use crate::ir::{HelperError, Op, Terminal};
use crate::mem::{Access, Mem, MemFault};
use crate::model;
use crate::row;
use crate::state::{pending, CpuState};
use crate::sys::exception::{fault_status, set_el_sp};
use crate::sys::{daif, sctlr, Tlbi};

pub use sysreg::{decode_reg, sysreg, Reg};

pub const ROWS: &[Row] = &[
    // Exception generation at higher levels (SVC and BRK are in branch.rs).
    row!("HVC_EX_exception", "11010100000iiiiiiiiiiiiiiii00010", hvc),
    row!("SMC_EX_exception", "11010100000iiiiiiiiiiiiiiii00011", smc),
    // Hints: WFE, WFI, SEV and SEVL end the block for the machine ([`Terminal::Wait`]: it
    // sleeps, sends events, sets the event register); NOP, YIELD and every other hint
    // executes as NOP on v8.0.
    row!("WFE_HI_hints", "11010101000000110010000001011111", wait),
    row!("WFI_HI_hints", "11010101000000110010000001111111", wait),
    row!("SEV_HI_hints", "11010101000000110010000010011111", wait),
    row!("SEVL_HI_hints", "11010101000000110010000010111111", wait),
    row!("HINT_HM_hints", "11010101000000110010mmmmooo11111", nop),
    // Barriers
    row!(
        "CLREX_BN_barriers",
        "11010101000000110011mmmm01011111",
        clrex
    ),
    row!("DSB_BO_barriers", "11010101000000110011mmmm10011111", fence),
    row!("DMB_BO_barriers", "11010101000000110011mmmm10111111", fence),
    row!("ISB_BI_barriers", "11010101000000110011mmmm11011111", isb),
    // PSTATE fields (DAIFSet, DAIFClr, SPSel)
    row!("MSR_SI_pstate", "1101010100000ooo0100mmmmooo11111", msr_imm),
    // System instructions (DC, IC, TLBI, AT) and register moves
    row!(
        "SYS_CR_systeminstrs",
        "1101010100001ooonnnnmmmmooottttt",
        sys
    ),
    row!("MSR_SR_systemmove", "110101010001oooonnnnmmmmooottttt", msr),
    row!("MRS_RS_systemmove", "110101010011oooonnnnmmmmooottttt", mrs),
    // Exception return
    row!(
        "ERET_64E_branch_reg",
        "11010110100111110000001111100000",
        eret
    ),
];

fn nop(_t: &mut Translator, _i: Insn) -> Flow {
    Flow::Next
}

fn wait(t: &mut Translator, _i: Insn) -> Flow {
    let next = t.next_pc();
    t.end(Terminal::Wait { next })
}

fn clrex(t: &mut Translator, _i: Insn) -> Flow {
    t.op(Op::ClearExcl);
    Flow::Next
}

fn fence(t: &mut Translator, _i: Insn) -> Flow {
    t.op(Op::Fence);
    Flow::Next
}

/// ISB ends the block so that code changes made visible before it are fetched afresh.
fn isb(t: &mut Translator, _i: Insn) -> Flow {
    t.op(Op::Fence);
    end_after(t)
}

/// End the block after the current instruction.
fn end_after(t: &mut Translator) -> Flow {
    let next = t.next_pc();
    t.end(Terminal::Jump(next))
}

fn call(t: &mut Translator, f: crate::ir::Helper, i: Insn) {
    t.op(Op::Call { f, insn: i.0 });
}

/// Xt of a system instruction (31 is XZR).
fn xt(st: &CpuState, i: Insn) -> u64 {
    match i.rt() {
        31 => 0,
        r => st.x[r as usize],
    }
}

/// Instructions only EL1 may execute: undefined in user mode and at EL0.
fn el1_only(st: &mut CpuState, _mem: &mut dyn Mem, _insn: u32) -> Result<(), HelperError> {
    if st.sys.system && st.sys.el >= 1 {
        Ok(())
    } else {
        Err(HelperError::Undefined)
    }
}

fn hvc(t: &mut Translator, i: Insn) -> Flow {
    call(t, el1_only, i);
    let next = t.next_pc();
    t.end(Terminal::Hvc {
        imm: i.bits(20, 5) as u16,
        next,
    })
}

fn smc(t: &mut Translator, i: Insn) -> Flow {
    call(t, el1_only, i);
    let next = t.next_pc();
    t.end(Terminal::Smc {
        imm: i.bits(20, 5) as u16,
        next,
    })
}

// ---- MRS / MSR ---------------------------------------------------------------------------

fn mrs_helper(st: &mut CpuState, mem: &mut dyn Mem, insn: u32) -> Result<(), HelperError> {
    let i = Insn(insn);
    let key = i.bits(20, 5);
    let v = if st.sys.system {
        let reg = decode_reg(key).ok_or(HelperError::Undefined)?;
        sysreg::sys_read(st, mem, reg)?
    } else {
        sysreg::user_read(st, key).ok_or(HelperError::Undefined)?
    };
    if i.rt() != 31 {
        st.x[i.rt() as usize] = v;
    }
    Ok(())
}

fn msr_helper(st: &mut CpuState, mem: &mut dyn Mem, insn: u32) -> Result<(), HelperError> {
    let i = Insn(insn);
    let key = i.bits(20, 5);
    let v = xt(st, i);
    if st.sys.system {
        let reg = decode_reg(key).ok_or(HelperError::Undefined)?;
        sysreg::sys_write(st, mem, reg, v)
    } else {
        sysreg::user_write(st, key, v)
    }
}

fn mrs(t: &mut Translator, i: Insn) -> Flow {
    if decode_reg(i.bits(20, 5)).is_none() {
        return t.undefined(i);
    }
    call(t, mrs_helper, i);
    Flow::Next
}

fn msr(t: &mut Translator, i: Insn) -> Flow {
    let Some(reg) = decode_reg(i.bits(20, 5)) else {
        return t.undefined(i);
    };
    if reg.read_only() {
        return t.undefined(i);
    }
    call(t, msr_helper, i);
    if reg.write_ends_block() {
        return end_after(t);
    }
    Flow::Next
}

/// MSR (immediate) to PSTATE: DAIFSet (op1=3, op2=6), DAIFClr (op1=3, op2=7), SPSel (op1=0,
/// op2=5). Later fields (PAN, UAO, SSBS, DIT, ...) are not in v8.0 and are undefined, as is
/// all of this in user mode.
fn msr_imm_helper(st: &mut CpuState, _mem: &mut dyn Mem, insn: u32) -> Result<(), HelperError> {
    let i = Insn(insn);
    if !st.sys.system {
        return Err(HelperError::Undefined);
    }
    let el0 = st.sys.el == 0;
    let bits = i.bits(11, 8) << 6;
    let uma = st.sys.sctlr_el1 & (1 << 9) != 0;
    match (i.bits(18, 16), i.bits(7, 5)) {
        (3, 6) if !el0 || uma => st.sys.daif |= bits,
        (3, 7) if !el0 || uma => {
            if st.sys.daif & bits != 0 {
                st.pending |= pending::IRQ_CHECK;
            }
            st.sys.daif &= !bits;
        }
        (0, 5) if !el0 => set_el_sp(st, st.sys.el, bits != 0),
        _ => return Err(HelperError::Undefined),
    }
    Ok(())
}

fn msr_imm(t: &mut Translator, i: Insn) -> Flow {
    match (i.bits(18, 16), i.bits(7, 5)) {
        (3, 6) | (0, 5) => {
            call(t, msr_imm_helper, i);
            Flow::Next
        }
        // DAIFClr may unmask a pending interrupt: leave the block so it is taken.
        (3, 7) => {
            call(t, msr_imm_helper, i);
            end_after(t)
        }
        _ => t.undefined(i),
    }
}

// ---- SYS: cache, TLB and address-translation operations -----------------------------------

/// One SYS operation, by (op1, CRn, CRm, op2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SysOp {
    /// DC ZVA.
    DcZva,
    /// DC CVAC/CVAU/CVAP/CIVAC (EL0 with SCTLR_EL1.UCI).
    DcVa,
    /// DC IVAC (EL1 only; needs write permission).
    DcIvac,
    /// DC ISW/CSW/CISW (EL1 only).
    DcSetWay,
    /// IC IVAU (EL0 with SCTLR_EL1.UCI).
    IcIvau,
    /// IC IALLU: this PE's instruction cache only.
    IcIallu,
    /// IC IALLUIS: the instruction caches of every PE (the inner-shareable domain).
    IcIalluis,
    /// TLBI ...E1(IS); op2 selects the form.
    Tlbi(u32),
    /// AT S1E1R/S1E1W/S1E0R/S1E0W; op2 0..=3.
    At(u32),
}

impl SysOp {
    fn decode(i: Insn) -> Option<SysOp> {
        let (op1, crn, crm, op2) = (i.bits(18, 16), i.bits(15, 12), i.bits(11, 8), i.bits(7, 5));
        Some(match (op1, crn, crm, op2) {
            (3, 7, 4, 1) => SysOp::DcZva,
            (3, 7, 10 | 11 | 12 | 14, 1) => SysOp::DcVa,
            (0, 7, 6, 1) => SysOp::DcIvac,
            (0, 7, 6 | 10 | 14, 2) => SysOp::DcSetWay,
            (3, 7, 5, 1) => SysOp::IcIvau,
            (0, 7, 1, 0) => SysOp::IcIalluis,
            (0, 7, 5, 0) => SysOp::IcIallu,
            (0, 8, 3 | 7, 0 | 1 | 2 | 3 | 5 | 7) => SysOp::Tlbi(op2),
            (0, 7, 8, 0..=3) => SysOp::At(op2),
            _ => return None,
        })
    }

    /// Operations after which the block ends: code and translations may have changed.
    fn ends_block(self) -> bool {
        matches!(
            self,
            SysOp::IcIvau | SysOp::IcIallu | SysOp::IcIalluis | SysOp::Tlbi(_)
        )
    }
}

/// User mode: DC ZVA, DC CVAU/CVAC/CIVAC/CVAP and IC IVAU at EL0, as Linux allows them.
fn user_sys(st: &mut CpuState, mem: &mut dyn Mem, op: SysOp, addr: u64) -> Result<(), HelperError> {
    match op {
        SysOp::DcZva => {
            let base = addr & !(model::DC_ZVA_BYTES - 1);
            mem.zero(base, model::DC_ZVA_BYTES)?;
        }
        SysOp::IcIvau => st.pending |= pending::FLUSH_CODE,
        // The cache is coherent; check the address is mapped.
        SysOp::DcVa => {
            mem.read(addr, 1)?;
        }
        _ => return Err(HelperError::Undefined),
    }
    Ok(())
}

/// A cache maintenance by VA: the cache is coherent, so only the address's translation is
/// checked (a failure is the data abort the operation takes).
fn check_va(st: &CpuState, mem: &mut dyn Mem, va: u64, access: Access) -> Result<(), MemFault> {
    let el0 = st.sys.el == 0;
    match mem.system() {
        Some(s) => s.translate(st, va, access, el0).map(|_| ()),
        None => mem.read(va, 1).map(|_| ()),
    }
}

/// Sign-extend a TLBI operand's VA[55:12] (bits 43:0) to a virtual address.
fn tlbi_va(x: u64) -> u64 {
    (((x << 20) as i64) >> 8) as u64
}

/// PAR_EL1 after a successful AT: PA[47:12], attributes (normal write-back: the MMU does not
/// report the entry's), inner shareable, F=0.
fn par_success(pa: u64) -> u64 {
    (0xff << 56) | (pa & 0x0000_ffff_ffff_f000) | (1 << 11) | (0b11 << 7)
}

/// PAR_EL1 after a failed AT: F=1 and the fault status code.
fn par_fault(f: &MemFault) -> u64 {
    (1 << 11) | ((fault_status(f.kind, f.level) as u64) << 1) | 1
}

fn sys_helper(st: &mut CpuState, mem: &mut dyn Mem, insn: u32) -> Result<(), HelperError> {
    let i = Insn(insn);
    let op = SysOp::decode(i).ok_or(HelperError::Undefined)?;
    let x = xt(st, i);
    if !st.sys.system {
        return user_sys(st, mem, op, x);
    }
    let el0 = st.sys.el == 0;
    let sctlr = st.sys.sctlr_el1;
    match op {
        SysOp::DcZva => {
            if el0 && sctlr & sctlr::DZE == 0 {
                return Err(HelperError::Undefined);
            }
            let base = x & !(model::DC_ZVA_BYTES - 1);
            mem.zero(base, model::DC_ZVA_BYTES)?;
        }
        SysOp::DcVa | SysOp::IcIvau if el0 && sctlr & sctlr::UCI == 0 => {
            return Err(HelperError::Undefined)
        }
        SysOp::DcVa => check_va(st, mem, x, Access::Read)?,
        // Only code from the physical page the address maps is dropped (Linux invalidates
        // every page it maps executable, through the kernel's own mapping of the page).
        SysOp::IcIvau => match mem
            .system()
            .map(|s| s.translate(st, x, Access::Read, false))
        {
            Some(Ok(pa)) => {
                st.flush_pa = pa & !0xfff;
                st.pending |= pending::FLUSH_PAGE;
            }
            _ => st.pending |= pending::FLUSH_CODE,
        },
        _ if el0 => return Err(HelperError::Undefined),
        SysOp::DcIvac => check_va(st, mem, x, Access::Write)?,
        SysOp::DcSetWay => {}
        // Not broadcast: each CPU entering the kernel (__enable_mmu) does one, and the
        // others' code stays.
        SysOp::IcIallu => st.pending |= pending::FLUSH_LOCAL,
        SysOp::IcIalluis => st.pending |= pending::FLUSH_CODE,
        SysOp::Tlbi(op2) => {
            let asid = (x >> 48) as u16;
            let va = tlbi_va(x);
            let t = match op2 {
                0 => Tlbi::All,
                2 => Tlbi::Asid(asid),
                1 | 5 => Tlbi::Va { va, asid },
                _ => Tlbi::VaAllAsids { va },
            };
            if let Some(s) = mem.system() {
                s.tlbi(st, t);
            }
        }
        SysOp::At(op2) => {
            let access = if op2 & 1 == 0 {
                Access::Read
            } else {
                Access::Write
            };
            let at_el0 = op2 >= 2;
            let par = match mem.system() {
                Some(s) => match s.translate(st, x, access, at_el0) {
                    Ok(pa) => par_success(pa),
                    Err(f) => par_fault(&f),
                },
                // No MMU: the flat identity map.
                None => par_success(x),
            };
            st.sys.par_el1 = par;
        }
    }
    Ok(())
}

fn sys(t: &mut Translator, i: Insn) -> Flow {
    let Some(op) = SysOp::decode(i) else {
        return t.undefined(i);
    };
    call(t, sys_helper, i);
    if op.ends_block() {
        // IC: leave the block so the flush takes effect before more code runs; TLBI: the
        // translation of the following code may have changed.
        return end_after(t);
    }
    Flow::Next
}

// ---- ERET ----------------------------------------------------------------------------------

/// ERET from EL1: PSTATE from SPSR_EL1, pc from ELR_EL1. An illegal return (AArch32, a
/// higher or reserved mode) keeps the current EL and SP selection and restores the rest;
/// PSTATE.IL is not modelled.
fn eret_helper(st: &mut CpuState, mem: &mut dyn Mem, _insn: u32) -> Result<(), HelperError> {
    if !st.sys.system || st.sys.el == 0 {
        return Err(HelperError::Undefined);
    }
    let spsr = st.sys.spsr_el1;
    let (el, sp) = match spsr & 0x1f {
        0b00000 => (0, false),
        0b00100 => (1, false),
        0b00101 => (1, true),
        _ => (st.sys.el, st.sys.spsel),
    };
    st.nzcv = spsr as u32 & 0xf000_0000;
    st.sys.daif = spsr as u32 & (daif::D | daif::A | daif::I | daif::F);
    set_el_sp(st, el, sp);
    st.pc = st.sys.elr_el1;
    st.monitor.valid = false;
    // An exception return sets the event register.
    st.sys.event = true;
    st.pending |= pending::IRQ_CHECK;
    if let Some(s) = mem.system() {
        s.sync(st);
    }
    Ok(())
}

fn eret(t: &mut Translator, i: Insn) -> Flow {
    call(t, eret_helper, i);
    t.end(Terminal::Dynamic)
}
