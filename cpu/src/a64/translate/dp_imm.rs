//! Data processing -- immediate (Arm ARM C4.1.2): PC-relative addressing, add/subtract,
//! logical, move wide, bitfield, extract.

use crate::a64::{Flow, Insn, Row, Translator};
use crate::ir::{BinOp, Carry, Op, UnOp, Width};
use crate::row;

pub const ROWS: &[Row] = &[
    row!(
        "ADR_only_pcreladdr",
        "0ii10000iiiiiiiiiiiiiiiiiiiddddd",
        adr
    ),
    row!(
        "ADRP_only_pcreladdr",
        "1ii10000iiiiiiiiiiiiiiiiiiiddddd",
        adr
    ),
    row!(
        "ADD_addsub_imm",
        "sos100010hiiiiiiiiiiiinnnnnddddd",
        add_sub_imm
    ),
    row!(
        "MOVN_movewide",
        "s00100101hhiiiiiiiiiiiiiiiiddddd",
        mov_wide
    ),
    row!(
        "MOVZ_movewide",
        "s10100101hhiiiiiiiiiiiiiiiiddddd",
        mov_wide
    ),
    row!(
        "MOVK_movewide",
        "s11100101hhiiiiiiiiiiiiiiiiddddd",
        mov_wide
    ),
];

fn width(i: Insn) -> Width {
    if i.sf() {
        Width::W64
    } else {
        Width::W32
    }
}

fn adr(t: &mut Translator, i: Insn) -> Flow {
    let imm = (i.simm(23, 5) << 2) | i.bits(30, 29) as i64;
    let v = if i.bit(31) {
        (t.pc & !0xfff).wrapping_add((imm << 12) as u64)
    } else {
        t.pc.wrapping_add(imm as u64)
    };
    let c = t.konst(v);
    t.set_x(i.rd(), c);
    Flow::Next
}

/// ADD/ADDS/SUB/SUBS (immediate). Rn and (for non-flag-setting forms) Rd may be SP.
fn add_sub_imm(t: &mut Translator, i: Insn) -> Flow {
    let w = width(i);
    let sub = i.bit(30);
    let set_flags = i.bit(29);
    let mut imm = i.bits(21, 10) as u64;
    if i.bit(22) {
        imm <<= 12;
    }
    let n = t.get_xsp(i.rn());
    let dst = if set_flags {
        let b = t.konst(if sub { !imm } else { imm });
        let dst = t.temp();
        let carry = if sub { Carry::One } else { Carry::Zero };
        t.op(Op::AddFlags {
            w,
            dst,
            a: n,
            b,
            carry,
        });
        dst
    } else {
        let op = if sub { BinOp::Sub } else { BinOp::Add };
        t.bin_imm(op, w, n, imm)
    };
    if set_flags {
        t.set_x(i.rd(), dst);
    } else {
        t.set_xsp(i.rd(), dst);
    }
    Flow::Next
}

fn mov_wide(t: &mut Translator, i: Insn) -> Flow {
    let w = width(i);
    let hw = i.bits(22, 21);
    if w == Width::W32 && hw >= 2 {
        return t.undefined(i);
    }
    let shift = hw * 16;
    let imm = (i.bits(20, 5) as u64) << shift;
    let v = match i.bits(30, 29) {
        0 => {
            let c = t.konst(!imm);
            if w == Width::W32 {
                t.un(UnOp::Zext32, Width::W64, c)
            } else {
                c
            }
        }
        2 => t.konst(imm),
        3 => {
            let old = t.get_x(i.rd());
            let cleared = t.bin_imm(BinOp::AndNot, w, old, 0xffff << shift);
            t.bin_imm(BinOp::Or, w, cleared, imm)
        }
        _ => return t.undefined(i),
    };
    t.set_x(i.rd(), v);
    Flow::Next
}
