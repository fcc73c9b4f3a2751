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
    // Logical (immediate)
    row!(
        "AND_log_imm",
        "s00100100Nrrrrrrssssssnnnnnddddd",
        logical_imm
    ),
    row!(
        "ORR_log_imm",
        "s01100100Nrrrrrrssssssnnnnnddddd",
        logical_imm
    ),
    row!(
        "EOR_log_imm",
        "s10100100Nrrrrrrssssssnnnnnddddd",
        logical_imm
    ),
    row!(
        "ANDS_log_imm",
        "s11100100Nrrrrrrssssssnnnnnddddd",
        logical_imm
    ),
    // Bitfield
    row!(
        "SBFM_bitfield",
        "s00100110Nrrrrrrssssssnnnnnddddd",
        bitfield
    ),
    row!("BFM_bitfield", "s01100110Nrrrrrrssssssnnnnnddddd", bitfield),
    row!(
        "UBFM_bitfield",
        "s10100110Nrrrrrrssssssnnnnnddddd",
        bitfield
    ),
    // Extract
    row!("EXTR_extract", "s00100111N0mmmmmssssssnnnnnddddd", extract),
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

/// `n` ones in the low bits (`n <= 64`).
const fn ones(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1 << n) - 1
    }
}

/// The Arm ARM's `DecodeBitMasks(immN, imms, immr, immediate, M)`: `(wmask, tmask)` for a
/// `datasize`-bit operation, or `None` for a reserved encoding.
pub fn decode_bit_masks(
    n: bool,
    imms: u32,
    immr: u32,
    immediate: bool,
    datasize: u32,
) -> Option<(u64, u64)> {
    let combined = ((n as u32) << 6) | (!imms & 0x3f);
    if combined < 2 {
        // HighestSetBit < 1.
        return None;
    }
    let len = 31 - combined.leading_zeros();
    let esize = 1u32 << len;
    if esize > datasize {
        return None;
    }
    let levels = esize - 1;
    if immediate && imms & levels == levels {
        return None;
    }
    let s = imms & levels;
    let r = immr & levels;
    let d = s.wrapping_sub(r) & levels;
    let emask = ones(esize);
    let welem = ones(s + 1);
    let welem = if r == 0 {
        welem
    } else {
        ((welem >> r) | (welem << (esize - r))) & emask
    };
    let telem = ones(d + 1);
    let mut wmask = 0;
    let mut tmask = 0;
    let mut pos = 0;
    while pos < datasize {
        wmask |= welem << pos;
        tmask |= telem << pos;
        pos += esize;
    }
    Some((wmask, tmask))
}

/// AND/ORR/EOR/ANDS (immediate). Rd is SP except for ANDS; Rn is XZR.
fn logical_imm(t: &mut Translator, i: Insn) -> Flow {
    let w = width(i);
    let n_bit = i.bit(22);
    if !i.sf() && n_bit {
        return t.undefined(i);
    }
    let Some((imm, _)) = decode_bit_masks(n_bit, i.bits(15, 10), i.bits(21, 16), true, w.bits())
    else {
        return t.undefined(i);
    };
    let opc = i.bits(30, 29);
    let r = if opc == 1 && i.rn() == 31 {
        // MOV (bitmask immediate).
        t.konst(imm)
    } else {
        let n = t.get_x(i.rn());
        let op = match opc {
            1 => BinOp::Or,
            2 => BinOp::Xor,
            _ => BinOp::And,
        };
        t.bin_imm(op, w, n, imm)
    };
    if opc == 3 {
        t.op(Op::LogicFlags { w, src: r });
        t.set_x(i.rd(), r);
    } else {
        t.set_xsp(i.rd(), r);
    }
    Flow::Next
}

/// SBFM/BFM/UBFM and their aliases (ASR/LSL/LSR immediate, SXTB/SXTH/SXTW, UXTB/UXTH,
/// SBFIZ/SBFX, UBFIZ/UBFX, BFI/BFXIL).
fn bitfield(t: &mut Translator, i: Insn) -> Flow {
    let w = width(i);
    let bits = w.bits();
    let n_bit = i.bit(22);
    let immr = i.bits(21, 16);
    let imms = i.bits(15, 10);
    let opc = i.bits(30, 29);
    if i.sf() != n_bit || (!i.sf() && (immr >= 32 || imms >= 32)) || opc == 3 {
        return t.undefined(i);
    }
    let Some((wmask, tmask)) = decode_bit_masks(n_bit, imms, immr, false, bits) else {
        return t.undefined(i);
    };
    let src = t.get_x(i.rn());
    let r = match opc {
        // SBFM
        0 => {
            if imms == bits - 1 {
                // ASR (immediate)
                t.bin_imm(BinOp::Asr, w, src, immr as u64)
            } else if immr == 0 && matches!(imms, 7 | 15 | 31) {
                // SXTB / SXTH / SXTW
                let op = match imms {
                    7 => UnOp::Sext8,
                    15 => UnOp::Sext16,
                    _ => UnOp::Sext32,
                };
                t.un(op, w, src)
            } else {
                // Sign-extend the field src<imms:0> from the top, then move it into place.
                let up = bits - 1 - imms;
                let hi = t.bin_imm(BinOp::Shl, w, src, up as u64);
                if imms >= immr {
                    // SBFX: field src<imms:immr> to bit 0.
                    t.bin_imm(BinOp::Asr, w, hi, (up + immr) as u64)
                } else {
                    // SBFIZ: field src<imms:0> to bit (bits - immr).
                    let f = t.bin_imm(BinOp::Asr, w, hi, up as u64);
                    t.bin_imm(BinOp::Shl, w, f, (bits - immr) as u64)
                }
            }
        }
        // BFM
        1 => {
            let keep = wmask & tmask;
            let dst = t.get_x(i.rd());
            let rot = t.bin_imm(BinOp::Ror, w, src, immr as u64);
            let ins = t.bin_imm(BinOp::And, w, rot, keep);
            let old = t.bin_imm(BinOp::AndNot, w, dst, keep);
            t.bin(BinOp::Or, w, old, ins)
        }
        // UBFM
        _ => {
            if imms == bits - 1 {
                // LSR (immediate)
                t.bin_imm(BinOp::Lsr, w, src, immr as u64)
            } else if imms + 1 == immr {
                // LSL (immediate)
                t.bin_imm(BinOp::Shl, w, src, (bits - immr) as u64)
            } else if immr == 0 {
                // UXTB / UXTH / UBFX #0
                t.bin_imm(BinOp::And, w, src, tmask)
            } else {
                let rot = t.bin_imm(BinOp::Ror, w, src, immr as u64);
                t.bin_imm(BinOp::And, w, rot, wmask & tmask)
            }
        }
    };
    t.set_x(i.rd(), r);
    Flow::Next
}

/// EXTR (and its alias ROR (immediate) when Rn == Rm).
fn extract(t: &mut Translator, i: Insn) -> Flow {
    let w = width(i);
    let lsb = i.bits(15, 10);
    if i.bit(22) != i.sf() || (!i.sf() && lsb >= 32) {
        return t.undefined(i);
    }
    let r = if lsb == 0 {
        t.get_reg(i.rm(), w)
    } else if i.rn() == i.rm() {
        let m = t.get_x(i.rm());
        t.bin_imm(BinOp::Ror, w, m, lsb as u64)
    } else {
        let m = t.get_x(i.rm());
        let n = t.get_x(i.rn());
        let lo = t.bin_imm(BinOp::Lsr, w, m, lsb as u64);
        let hi = t.bin_imm(BinOp::Shl, w, n, (w.bits() - lsb) as u64);
        t.bin(BinOp::Or, w, hi, lo)
    };
    t.set_x(i.rd(), r);
    Flow::Next
}
