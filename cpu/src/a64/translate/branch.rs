//! Branches and the exception generating instructions SVC and BRK (Arm ARM C4.1.3). Hints,
//! barriers, system instructions, HVC, SMC and ERET are in `system.rs`.

use crate::a64::{Flow, Insn, Row, Translator};
use crate::ir::{BinOp, Op, Terminal, Width};
use crate::row;

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
