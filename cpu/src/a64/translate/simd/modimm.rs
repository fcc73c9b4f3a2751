//! AdvSIMD modified immediate: MOVI, MVNI, ORR and BIC (vector, immediate). The FMOV forms
//! (cmode 1111) belong to `fp.rs`. The immediate is expanded at translate time.

use crate::a64::{Flow, Insn, Row, Translator};
use crate::ir::{BinOp, Op, Width};
use crate::row;

pub const ROWS: &[Row] = &[
    row!(
        "MOVI_asimdimm_L_sl",
        "0qo0111100000abc0ss001defghddddd",
        mov,
        AdvSimd
    ),
    row!(
        "ORR_asimdimm_L_sl",
        "0qo0111100000abc0ss101defghddddd",
        orr_bic,
        AdvSimd
    ),
    row!(
        "MOVI_asimdimm_L_hl",
        "0qo0111100000abc10s001defghddddd",
        mov,
        AdvSimd
    ),
    row!(
        "ORR_asimdimm_L_hl",
        "0qo0111100000abc10s101defghddddd",
        orr_bic,
        AdvSimd
    ),
    row!(
        "MOVI_asimdimm_M_sm",
        "0qo0111100000abc110s01defghddddd",
        mov,
        AdvSimd
    ),
    row!(
        "MOVI_asimdimm_N_b",
        "0qo0111100000abc111001defghddddd",
        mov,
        AdvSimd
    ),
];

/// AdvSIMDExpandImm for the integer forms (cmode != 1111).
fn expand(op: bool, cmode: u32, imm8: u64) -> u64 {
    let rep2 = |x: u64| x | (x << 32);
    let rep4 = |x: u64| rep2(x | (x << 16));
    match cmode >> 1 {
        0..=3 => rep2(imm8 << (8 * (cmode >> 1))),
        4 => rep4(imm8),
        5 => rep4(imm8 << 8),
        6 if cmode & 1 == 0 => rep2((imm8 << 8) | 0xff),
        6 => rep2((imm8 << 16) | 0xffff),
        _ if !op => imm8 * 0x0101_0101_0101_0101,
        _ => (0..8).fold(0, |acc, b| {
            if imm8 >> b & 1 == 1 {
                acc | (0xff << (8 * b))
            } else {
                acc
            }
        }),
    }
}

fn imm(i: Insn) -> (bool, u64) {
    let imm8 = u64::from((i.bits(18, 16) << 5) | i.bits(9, 5));
    let cmode = i.bits(15, 12);
    let op = i.bit(29);
    let v = expand(op, cmode, imm8);
    // MVNI inverts, except that op=1 with cmode 1110 is the 64-bit MOVI.
    let invert = op && cmode != 0b1110;
    (invert, v)
}

fn write(t: &mut Translator, rd: u8, lo: crate::ir::T, q: bool) {
    t.op(Op::SetVScalar {
        reg: rd,
        src: lo,
        esize: 8,
    });
    if q {
        t.op(Op::SetVElem {
            reg: rd,
            src: lo,
            esize: 8,
            idx: 1,
        });
    }
}

fn mov(t: &mut Translator, i: Insn) -> Flow {
    let (invert, v) = imm(i);
    let v = if invert { !v } else { v };
    let c = t.konst(v);
    write(t, i.rd(), c, i.bit(30));
    Flow::Next
}

fn orr_bic(t: &mut Translator, i: Insn) -> Flow {
    let (bic, v) = imm(i);
    let q = i.bit(30);
    let rd = i.rd();
    let op = if bic { BinOp::AndNot } else { BinOp::Or };
    let mut halves = [None, None];
    for (idx, h) in halves.iter_mut().enumerate().take(if q { 2 } else { 1 }) {
        let dst = t.temp();
        t.op(Op::GetVElem {
            dst,
            reg: rd,
            esize: 8,
            idx: idx as u8,
        });
        *h = Some(t.bin_imm(op, Width::W64, dst, v));
    }
    if let Some(lo) = halves[0] {
        t.op(Op::SetVScalar {
            reg: rd,
            src: lo,
            esize: 8,
        });
    }
    if let Some(hi) = halves[1] {
        t.op(Op::SetVElem {
            reg: rd,
            src: hi,
            esize: 8,
            idx: 1,
        });
    }
    Flow::Next
}
