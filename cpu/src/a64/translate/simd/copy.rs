//! AdvSIMD copy and scalar copy: DUP, INS, SMOV, UMOV (and their MOV aliases). Plain IR:
//! these move data between general and vector registers and sit in hot string loops.

use crate::a64::{Flow, Insn, Row, Translator};
use crate::ir::{BinOp, Op, UnOp, Width, T};
use crate::row;

pub const ROWS: &[Row] = &[
    row!(
        "DUP_asimdins_DV_v",
        "0q001110000iiiii000001nnnnnddddd",
        dup_elem,
        AdvSimd
    ),
    row!(
        "DUP_asimdins_DR_r",
        "0q001110000iiiii000011nnnnnddddd",
        dup_gen,
        AdvSimd
    ),
    row!(
        "INS_asimdins_IR_r",
        "01001110000iiiii000111nnnnnddddd",
        ins_gen,
        AdvSimd
    ),
    row!(
        "SMOV_asimdins_X_x",
        "0q001110000iiiii001011nnnnnddddd",
        smov,
        AdvSimd
    ),
    row!(
        "UMOV_asimdins_X_x",
        "0q001110000iiiii001111nnnnnddddd",
        umov,
        AdvSimd
    ),
    row!(
        "INS_asimdins_IV_v",
        "01101110000iiiii0jjjj1nnnnnddddd",
        ins_elem,
        AdvSimd
    ),
    row!(
        "DUP_asisdone_only",
        "01011110000iiiii000001nnnnnddddd",
        dup_scalar,
        AdvSimd
    ),
];

/// `imm5` as (log2 of the element size in bytes, element index), or None if reserved.
fn imm5(i: Insn) -> Option<(u32, u8)> {
    let imm5 = i.bits(20, 16);
    let size = imm5.trailing_zeros();
    if size > 3 {
        None
    } else {
        Some((size, (imm5 >> (size + 1)) as u8))
    }
}

fn get_elem(t: &mut Translator, reg: u8, size: u32, idx: u8) -> T {
    let dst = t.temp();
    t.op(Op::GetVElem {
        dst,
        reg,
        esize: 1 << size,
        idx,
    });
    dst
}

/// Vd = `x` (an element of 2^size bytes, zero-extended) in every element; 64 or 128 bits.
fn replicate(t: &mut Translator, rd: u8, x: T, size: u32, q: bool) {
    let ones = [
        0x0101_0101_0101_0101,
        0x0001_0001_0001_0001,
        0x0000_0001_0000_0001,
        1,
    ];
    let rep = t.bin_imm(BinOp::Mul, Width::W64, x, ones[size as usize]);
    t.op(Op::SetVScalar {
        reg: rd,
        src: rep,
        esize: 8,
    });
    if q {
        t.op(Op::SetVElem {
            reg: rd,
            src: rep,
            esize: 8,
            idx: 1,
        });
    }
}

fn dup_elem(t: &mut Translator, i: Insn) -> Flow {
    let q = i.bit(30);
    match imm5(i) {
        Some((size, idx)) if size != 3 || q => {
            let x = get_elem(t, i.rn(), size, idx);
            replicate(t, i.rd(), x, size, q);
            Flow::Next
        }
        _ => t.undefined(i),
    }
}

fn dup_gen(t: &mut Translator, i: Insn) -> Flow {
    let q = i.bit(30);
    match imm5(i) {
        Some((size, _)) if size != 3 || q => {
            let x = t.get_x(i.rn());
            let x = match size {
                0 => t.un(UnOp::Zext8, Width::W64, x),
                1 => t.un(UnOp::Zext16, Width::W64, x),
                2 => t.un(UnOp::Zext32, Width::W64, x),
                _ => x,
            };
            replicate(t, i.rd(), x, size, q);
            Flow::Next
        }
        _ => t.undefined(i),
    }
}

fn ins_gen(t: &mut Translator, i: Insn) -> Flow {
    let Some((size, idx)) = imm5(i) else {
        return t.undefined(i);
    };
    let x = t.get_x(i.rn());
    t.op(Op::SetVElem {
        reg: i.rd(),
        src: x,
        esize: 1 << size,
        idx,
    });
    Flow::Next
}

fn ins_elem(t: &mut Translator, i: Insn) -> Flow {
    let Some((size, idx)) = imm5(i) else {
        return t.undefined(i);
    };
    let src = (i.bits(14, 11) >> size) as u8;
    let x = get_elem(t, i.rn(), size, src);
    t.op(Op::SetVElem {
        reg: i.rd(),
        src: x,
        esize: 1 << size,
        idx,
    });
    Flow::Next
}

fn smov(t: &mut Translator, i: Insn) -> Flow {
    let q = i.bit(30);
    match imm5(i) {
        Some((size, idx)) if size < 2 || (size == 2 && q) => {
            let x = get_elem(t, i.rn(), size, idx);
            let op = [UnOp::Sext8, UnOp::Sext16, UnOp::Sext32][size as usize];
            let w = if q { Width::W64 } else { Width::W32 };
            let x = t.un(op, w, x);
            t.set_x(i.rd(), x);
            Flow::Next
        }
        _ => t.undefined(i),
    }
}

fn umov(t: &mut Translator, i: Insn) -> Flow {
    let q = i.bit(30);
    match imm5(i) {
        Some((size, idx)) if (size == 3) == q => {
            let x = get_elem(t, i.rn(), size, idx);
            t.set_x(i.rd(), x);
            Flow::Next
        }
        _ => t.undefined(i),
    }
}

fn dup_scalar(t: &mut Translator, i: Insn) -> Flow {
    let Some((size, idx)) = imm5(i) else {
        return t.undefined(i);
    };
    let x = get_elem(t, i.rn(), size, idx);
    t.op(Op::SetVScalar {
        reg: i.rd(),
        src: x,
        esize: 1 << size,
    });
    Flow::Next
}
