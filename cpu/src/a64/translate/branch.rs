//! Branches, exception generating and system instructions (Arm ARM C4.1.3).

use crate::a64::{Flow, Insn, Row, Translator};
use crate::ir::{BinOp, HelperError, Op, Terminal, Width};
use crate::mem::Mem;
use crate::model;
use crate::row;
use crate::state::CpuState;

pub const ROWS: &[Row] = &[
    // Unconditional branch (immediate)
    row!(
        "B_only_branch_imm",
        "000101iiiiiiiiiiiiiiiiiiiiiiiiii",
        b_imm
    ),
    row!(
        "BL_only_branch_imm",
        "100101iiiiiiiiiiiiiiiiiiiiiiiiii",
        b_imm
    ),
    // Compare and branch (immediate)
    row!("CBZ", "s0110100iiiiiiiiiiiiiiiiiiittttt", cb),
    row!("CBNZ", "s0110101iiiiiiiiiiiiiiiiiiittttt", cb),
    // Test and branch (immediate)
    row!(
        "TBZ_only_testbranch",
        "b0110110bbbbbiiiiiiiiiiiiiittttt",
        tb
    ),
    row!(
        "TBNZ_only_testbranch",
        "b0110111bbbbbiiiiiiiiiiiiiittttt",
        tb
    ),
    // Conditional branch (immediate)
    row!(
        "B_only_condbranch",
        "01010100iiiiiiiiiiiiiiiiiii0cccc",
        b_cond
    ),
    // Exception generation
    row!("SVC_EX_exception", "11010100000iiiiiiiiiiiiiiii00001", svc),
    row!("BRK_EX_exception", "11010100001iiiiiiiiiiiiiiii00000", brk),
    // Hints: NOP, YIELD, WFE, WFI, SEV, SEVL and every other hint executes as NOP on v8.0.
    row!("WFE_HI_hints", "11010101000000110010000001011111", wait),
    row!("WFI_HI_hints", "11010101000000110010000001111111", wait),
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
    // System instructions (DC, IC) and register moves
    row!(
        "SYS_CR_systeminstrs",
        "1101010100001ooonnnnmmmmooottttt",
        sys
    ),
    row!("MSR_SR_systemmove", "110101010001oooonnnnmmmmooottttt", msr),
    row!("MRS_RS_systemmove", "110101010011oooonnnnmmmmooottttt", mrs),
    // Unconditional branch (register)
    row!("BR_64_branch_reg", "1101011000011111000000nnnnn00000", br),
    row!("BLR_64_branch_reg", "1101011000111111000000nnnnn00000", br),
    row!("RET_64R_branch_reg", "1101011001011111000000nnnnn00000", br),
];

fn b_imm(t: &mut Translator, i: Insn) -> Flow {
    let target = t.pc.wrapping_add((i.simm(25, 0) << 2) as u64);
    if i.bit(31) {
        let ret = t.konst(t.next_pc());
        t.set_x(30, ret);
    }
    t.end(Terminal::Jump(target))
}

fn cb(t: &mut Translator, i: Insn) -> Flow {
    let w = i.width();
    let target = t.pc.wrapping_add((i.simm(23, 5) << 2) as u64);
    let v = t.get_x(i.rt());
    let zero = t.konst(0);
    let op = if i.bit(24) { BinOp::Ne } else { BinOp::Eq };
    let cond = t.bin(op, w, v, zero);
    let not_taken = t.next_pc();
    t.end(Terminal::Branch {
        cond,
        taken: target,
        not_taken,
    })
}

fn tb(t: &mut Translator, i: Insn) -> Flow {
    let bit = (i.bits(31, 31) << 5) | i.bits(23, 19);
    let target = t.pc.wrapping_add((i.simm(18, 5) << 2) as u64);
    let v = t.get_x(i.rt());
    let shifted = t.bin_imm(BinOp::Lsr, Width::W64, v, bit as u64);
    let bitv = t.bin_imm(BinOp::And, Width::W64, shifted, 1);
    let cond = if i.bit(24) {
        bitv
    } else {
        t.bin_imm(BinOp::Xor, Width::W64, bitv, 1)
    };
    let not_taken = t.next_pc();
    t.end(Terminal::Branch {
        cond,
        taken: target,
        not_taken,
    })
}

fn b_cond(t: &mut Translator, i: Insn) -> Flow {
    let target = t.pc.wrapping_add((i.simm(23, 5) << 2) as u64);
    let c = i.bits(3, 0) as u8;
    if c >= 14 {
        return t.end(Terminal::Jump(target));
    }
    let cond = t.temp();
    t.op(Op::Cond { dst: cond, cond: c });
    let not_taken = t.next_pc();
    t.end(Terminal::Branch {
        cond,
        taken: target,
        not_taken,
    })
}

fn br(t: &mut Translator, i: Insn) -> Flow {
    let target = t.get_x(i.rn());
    // BLR: read the target before writing the link register (BLR x30).
    if i.bits(22, 21) == 1 {
        let ret = t.konst(t.next_pc());
        t.set_x(30, ret);
    }
    t.end(Terminal::Indirect { target })
}

fn svc(t: &mut Translator, i: Insn) -> Flow {
    let next = t.next_pc();
    t.end(Terminal::Svc {
        imm: i.bits(20, 5) as u16,
        next,
    })
}

fn brk(t: &mut Translator, i: Insn) -> Flow {
    let pc = t.pc;
    t.end(Terminal::Brk {
        imm: i.bits(20, 5) as u16,
        pc,
    })
}

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
    let next = t.next_pc();
    t.end(Terminal::Jump(next))
}

/// A system register as (op0, op1, CRn, CRm, op2), packed as bits 20:5 of MRS/MSR.
const fn sysreg(op0: u32, op1: u32, crn: u32, crm: u32, op2: u32) -> u32 {
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

/// The model user mode runs (Linux emulates EL0 reads of the ID registers with sanitised
/// values; we give the model's).
fn user_model() -> model::CpuModel {
    model::CORTEX_A72
}

/// EL0 reads of system registers, as Linux presents them.
fn read_sysreg(st: &CpuState, reg: u32) -> Option<u64> {
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

fn mrs_helper(st: &mut CpuState, _mem: &mut dyn Mem, insn: u32) -> Result<(), HelperError> {
    let i = Insn(insn);
    let v = read_sysreg(st, i.bits(20, 5)).ok_or(HelperError::Undefined)?;
    if i.rt() != 31 {
        st.x[i.rt() as usize] = v;
    }
    Ok(())
}

fn msr_helper(st: &mut CpuState, _mem: &mut dyn Mem, insn: u32) -> Result<(), HelperError> {
    let i = Insn(insn);
    let v = if i.rt() == 31 {
        0
    } else {
        st.x[i.rt() as usize]
    };
    match i.bits(20, 5) {
        NZCV => st.nzcv = v as u32 & 0xf000_0000,
        // FPCR: AHP, DN, FZ, RMode, Stride, Len (trap enables read as zero on these cores).
        FPCR => st.fpcr = v as u32 & 0x07ff_0000,
        FPSR => st.fpsr = v as u32 & 0xf800_009f,
        TPIDR_EL0 => st.tpidr_el0 = v,
        _ => return Err(HelperError::Undefined),
    }
    Ok(())
}

fn mrs(t: &mut Translator, i: Insn) -> Flow {
    if read_sysreg(&CpuState::new(), i.bits(20, 5)).is_none() {
        return t.undefined(i);
    }
    t.op(Op::Call {
        f: mrs_helper,
        insn: i.0,
    });
    Flow::Next
}

fn msr(t: &mut Translator, i: Insn) -> Flow {
    // MSR (register) has bit 20 (op0[1]) set; op0 = 0 is the MSR (immediate)/hint space.
    if !i.bit(20) {
        return msr_imm(t, i);
    }
    if !matches!(i.bits(20, 5), NZCV | FPCR | FPSR | TPIDR_EL0) {
        return t.undefined(i);
    }
    t.op(Op::Call {
        f: msr_helper,
        insn: i.0,
    });
    Flow::Next
}

/// MSR (immediate): PSTATE fields. At EL0 only the speculation controls would be writable; no
/// v8.0 field is, so these are undefined.
fn msr_imm(t: &mut Translator, i: Insn) -> Flow {
    t.undefined(i)
}

/// DC ZVA, DC CVAU/CVAC/CIVAC/CVAP, IC IVAU at EL0. op1=3, CRn=7.
fn sys_helper(st: &mut CpuState, mem: &mut dyn Mem, insn: u32) -> Result<(), HelperError> {
    let i = Insn(insn);
    let addr = if i.rt() == 31 {
        0
    } else {
        st.x[i.rt() as usize]
    };
    let (op1, crn, crm, op2) = (i.bits(18, 16), i.bits(15, 12), i.bits(11, 8), i.bits(7, 5));
    match (op1, crn, crm, op2) {
        // DC ZVA
        (3, 7, 4, 1) => {
            let base = addr & !(model::DC_ZVA_BYTES - 1);
            mem.zero(base, model::DC_ZVA_BYTES)?;
        }
        // IC IVAU
        (3, 7, 5, 1) => st.pending |= crate::state::pending::FLUSH_CODE,
        // DC CVAU, CVAC, CIVAC, CVAP: the cache is coherent; check the address is mapped.
        (3, 7, 11 | 10 | 14 | 12, 1) => {
            mem.read(addr, 1)?;
        }
        _ => return Err(HelperError::Undefined),
    }
    Ok(())
}

fn sys(t: &mut Translator, i: Insn) -> Flow {
    if i.bit(21) {
        // SYSL
        return t.undefined(i);
    }
    let (op1, crn, crm, op2) = (i.bits(18, 16), i.bits(15, 12), i.bits(11, 8), i.bits(7, 5));
    match (op1, crn, crm, op2) {
        (3, 7, 4, 1) | (3, 7, 5, 1) | (3, 7, 11 | 10 | 14 | 12, 1) => {
            t.op(Op::Call {
                f: sys_helper,
                insn: i.0,
            });
            if (crm, op2) == (5, 1) {
                // IC IVAU: leave the block so the flush takes effect before more code runs.
                let next = t.next_pc();
                return t.end(Terminal::Jump(next));
            }
            Flow::Next
        }
        _ => t.undefined(i),
    }
}
