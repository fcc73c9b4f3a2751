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
    let w = i.width();
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
    let w = i.width();
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
    let w = i.width();
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
    let w = i.width();
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
    let w = i.width();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{run, run_with, CODE};
    use crate::{CpuState, Stop};
    use std::collections::BTreeSet;

    fn flags(st: &CpuState) -> u32 {
        st.nzcv >> 28
    }

    /// `word` stops as an undefined instruction and leaves the registers alone.
    fn assert_undefined(word: u32) {
        let mut st = CpuState::new();
        st.x[1] = 0x1234;
        let (st, _, stop) = run_with(&[word], st, |_| {});
        assert_eq!(stop, Stop::Undefined(word), "{word:#010x}");
        assert_eq!(st.pc, CODE);
        assert_eq!(st.x[0], 0);
    }

    #[test]
    fn adr_adrp_are_pc_relative() {
        // adr x0, .+16; adr x1, .-4; adrp x2, .+5 pages; adrp x3, .-1 page
        let st = run(&[0x1000_0080, 0x10ff_ffe1, 0xb000_0022, 0xf0ff_ffe3], &[]);
        assert_eq!(st.x[0], CODE + 16);
        assert_eq!(st.x[1], CODE + 4 - 4);
        assert_eq!(st.x[2], (CODE & !0xfff) + 0x5000);
        assert_eq!(st.x[3], (CODE & !0xfff) - 0x1000);
    }

    #[test]
    fn move_wide_values() {
        // movn w0, #0x1234, lsl 16; movn x1, #0; movz x2, #0xbeef, lsl 48;
        // movk w3, #0xabcd, lsl 16; movk x4, #0x1111, lsl 32
        let st = run(
            &[
                0x12a2_4680,
                0x9280_0001,
                0xd2f7_dde2,
                0x72b5_79a3,
                0xf2c2_2224,
            ],
            &[(3, 0xffff_ffff_1234_5678), (4, 0x2222_3333_4444_5555)],
        );
        assert_eq!(st.x[0], 0xedcb_ffff);
        assert_eq!(st.x[1], u64::MAX);
        assert_eq!(st.x[2], 0xbeef_0000_0000_0000);
        assert_eq!(st.x[3], 0xabcd_5678);
        assert_eq!(st.x[4], 0x2222_1111_4444_5555);
    }

    #[test]
    fn move_wide_reserved_encodings_are_undefined() {
        assert_undefined(0x72c0_0000); // movk w0, lsl #32
        assert_undefined(0x12e0_0000); // movn w0, lsl #48
        assert_undefined(0x3280_0000); // opc = 01
    }

    #[test]
    fn add_sub_imm_uses_sp_and_sets_flags() {
        // add sp, sp, #0x10; sub x0, sp, #1, lsl 12
        let st = run(&[0x9100_43ff, 0xd140_07e0], &[(31, 0x8000)]);
        assert_eq!(st.x[31], 0x8010);
        assert_eq!(st.x[0], 0x7010);
        // (word, x1, result, NZCV)
        let cases = [
            (
                0xb100_0420u32,
                0x7fff_ffff_ffff_ffffu64,
                0x8000_0000_0000_0000u64,
                0b1001,
            ),
            (0xb100_0420, u64::MAX, 0, 0b0110),
            (0x3100_0420, 0x7fff_ffff, 0x8000_0000, 0b1001),
            (0x3100_0420, 0xffff_ffff_ffff_ffff, 0, 0b0110),
            (0xf100_0420, 0, u64::MAX, 0b1000),
            (0xf100_0420, 1, 0, 0b0110),
            (
                0xf100_0420,
                0x8000_0000_0000_0000,
                0x7fff_ffff_ffff_ffff,
                0b0011,
            ),
            (0x7100_0420, 0x8000_0000, 0x7fff_ffff, 0b0011),
            (0x7100_0420, 0x1_0000_0000, 0xffff_ffff, 0b1000),
        ];
        for (word, x1, res, nzcv) in cases {
            let st = run(&[word], &[(1, x1)]);
            assert_eq!(st.x[0], res, "{word:#x} x1={x1:#x}");
            assert_eq!(flags(&st), nzcv, "{word:#x} x1={x1:#x}");
        }
        // cmn w1, #1; cmp x1, #0 write XZR, not SP
        let st = run(&[0x3100_043f, 0xf100_003f], &[(1, 5), (31, 0x40)]);
        assert_eq!(st.x[31], 0x40);
        assert_eq!(flags(&st), 0b0010);
    }

    #[test]
    fn logical_imm_values() {
        let x1 = 0x0123_4567_89ab_cdef;
        // and x0, x1, #0xff00ff00ff00ff00
        assert_eq!(run(&[0x9208_9c20], &[(1, x1)]).x[0], 0x0100_4500_8900_cd00);
        // mov w0, #0x55555555 (orr w0, wzr, ...) clears the top half
        assert_eq!(run(&[0x3200_f3e0], &[(0, u64::MAX)]).x[0], 0x5555_5555);
        // eor x2, x3, #0x8000000000000001
        assert_eq!(run(&[0xd241_0462], &[(3, 3)]).x[2], 0x8000_0000_0000_0002);
        // ands w4, w5, #0x80000000
        let st = run(&[0x7201_00a4], &[(5, 0xffff_ffff_8000_0001)]);
        assert_eq!(st.x[4], 0x8000_0000);
        assert_eq!(flags(&st), 0b1000);
        // and sp, x1, #~0xf writes SP
        assert_eq!(run(&[0x927c_ec3f], &[(1, 0x1237)]).x[31], 0x1230);
        // tst x1, #1 writes XZR (not SP) and sets Z, clears C and V
        let mut st = CpuState::new();
        st.x[1] = 2;
        st.x[31] = 0x100;
        st.nzcv = 0x3000_0000;
        let (st, _, _) = run_with(&[0xf240_003f], st, |_| {});
        assert_eq!(st.x[31], 0x100);
        assert_eq!(flags(&st), 0b0100);
    }

    #[test]
    fn logical_imm_reserved_encodings_are_undefined() {
        assert_undefined(0x1240_0020); // sf = 0 with N = 1
        assert_undefined(0x9240_fc20); // N = 1, imms = 111111 (all ones)
        assert_undefined(0x1200_fc20); // N = 0, imms = 111111: no element size
        assert_undefined(0x1200_f420); // 2-bit element of all ones
        assert_undefined(0x3200_7c20); // 32-bit element of all ones (orr w0, w1, ...)
    }

    /// (word of `and x0, x1, #imm` / `and w0, w1, #imm` from aarch64-linux-gnu-as, imm).
    const AS_LOGICAL_IMMS: &[(u32, u64)] = &[
        (0x9272c020, 0x7fffffffffffc000),
        (0x92748820, 0x7ffffffff000),
        (0x92466420, 0xfc000000000fffff),
        (0x927ef820, 0xfffffffffffffffd),
        (0x92764420, 0xffffc00),
        (0x927c7420, 0x3fffffff0),
        (0x92568820, 0xfffffc0000001fff),
        (0x921e1020, 0x7c0000007c),
        (0x92036c20, 0xe1ffffffe1ffffff),
        (0x925f8020, 0xfffffffe00000003),
        (0x926c2820, 0x7ff00000),
        (0x92526420, 0xffffc000000000ff),
        (0x9240d420, 0x3fffffffffffff),
        (0x926f1c20, 0x1fe0000),
        (0x92735c20, 0x1fffffe000),
        (0x92095c20, 0xff807fffff807fff),
        (0x92487820, 0xff000000007fffff),
        (0x92672020, 0x3fe000000),
        (0x92163820, 0x1fffc0001fffc00),
        (0x926e4c20, 0x3ffffc0000),
        (0x92186420, 0xffffff03ffffff03),
        (0x9248e820, 0xff07ffffffffffff),
        (0x92754c20, 0x7ffff800),
        (0x925ba820, 0xffffffe00000ffff),
        (0x92560420, 0xc0000000000),
        (0x92719c20, 0x7fffffffff8000),
        (0x926ec020, 0xfffffffffffc0007),
        (0x926ce820, 0xfffffffffff07fff),
        (0x925f8420, 0xfffffffe00000007),
        (0x926b2820, 0xffe00000),
        (0x925de420, 0xfffffff81fffffff),
        (0x925fd820, 0xfffffffe00ffffff),
        (0x92469820, 0xfc000001ffffffff),
        (0x92640020, 0x10000000),
        (0x92005820, 0x7fffff007fffff),
        (0x92680c20, 0xf000000),
        (0x92196420, 0xffffff81ffffff81),
        (0x925f2c20, 0x1ffe00000000),
        (0x92123820, 0x1fffc0001fffc000),
        (0x92489820, 0xff0000007fffffff),
        (0x9200f020, 0x5555555555555555),
        (0x927ff820, 0xfffffffffffffffe),
        (0x9240f820, 0x7fffffffffffffff),
        (0x92400020, 0x1),
        (0x92410020, 0x8000000000000000),
        (0x12183820, 0x7fff00),
        (0x120d3420, 0xfff80001),
        (0x121c4020, 0x1ffff0),
        (0x12104820, 0xffff0007),
        (0x120f3420, 0x7ffe0000),
        (0x120e7820, 0xfffdffff),
        (0x12006020, 0x1ffffff),
        (0x12182c20, 0xfff00),
        (0x12116420, 0xffff81ff),
        (0x120c9420, 0x3f003f0),
        (0x12031020, 0xe0000003),
        (0x120e8420, 0xc000c),
        (0x120d6c20, 0xfff87fff),
        (0x12192020, 0xff80),
        (0x120f5420, 0xfffe007f),
        (0x12130820, 0xe000),
        (0x12186020, 0xffffff01),
        (0x120a9020, 0x7c007c0),
        (0x1209a420, 0xff81ff81),
        (0x120c4420, 0xfff0003f),
        (0x121f7820, 0xfffffffe),
        (0x12007820, 0x7fffffff),
        (0x12000020, 0x1),
        (0x12010020, 0x80000000),
    ];

    #[test]
    fn decode_bit_masks_matches_assembler() {
        for &(word, imm) in AS_LOGICAL_IMMS {
            let i = Insn(word);
            let size = if i.sf() { 64 } else { 32 };
            let got = decode_bit_masks(i.bit(22), i.bits(15, 10), i.bits(21, 16), true, size);
            assert_eq!(got.map(|m| m.0), Some(imm), "{word:#010x}");
            let x1 = 0xfedc_ba98_7654_3210u64;
            let want = if size == 64 {
                x1 & imm
            } else {
                x1 & imm & 0xffff_ffff
            };
            assert_eq!(run(&[word], &[(1, x1)]).x[0], want, "{word:#010x}");
        }
    }

    /// Every bitmask immediate, built directly from its definition: a run of 1..e-1 ones in
    /// an element of e = 2..64 bits, rotated, replicated.
    fn all_bitmask_immediates(size: u32) -> BTreeSet<u64> {
        let mut out = BTreeSet::new();
        let mut e = 2;
        while e <= size {
            for k in 1..e {
                let run = ones(k);
                for r in 0..e {
                    let el = if r == 0 {
                        run
                    } else {
                        ((run >> r) | (run << (e - r))) & ones(e)
                    };
                    let mut v = 0;
                    let mut p = 0;
                    while p < size {
                        v |= el << p;
                        p += e;
                    }
                    out.insert(v);
                }
            }
            e *= 2;
        }
        out
    }

    #[test]
    fn decode_bit_masks_yields_exactly_the_bitmask_immediates() {
        for size in [32u32, 64] {
            let mut got = BTreeSet::new();
            for n in [false, true] {
                for immr in 0..64 {
                    for imms in 0..64 {
                        if let Some((w, _)) = decode_bit_masks(n, imms, immr, true, size) {
                            got.insert(w);
                        }
                    }
                }
            }
            let want = all_bitmask_immediates(size);
            assert_eq!(want.len(), if size == 64 { 5334 } else { 1302 });
            assert_eq!(got, want, "size {size}");
        }
    }

    #[test]
    fn bitfield_aliases() {
        let x1 = 0x8123_4567_89ab_cdefu64;
        // (word, expected x0), x0 = 0xffff_ffff_ffff_ffff before
        let cases: &[(u32, u64, &str)] = &[
            (0x9344_fc20, 0xf812_3456_789a_bcde, "asr x0, x1, #4"),
            (0x131f_7c20, 0xffff_ffff, "asr w0, w1, #31"),
            (0xd344_0c20, 0xf000_0000_0000_0000, "lsl x0, x1, #60"),
            (0x531f_7820, 0x1357_9bde, "lsl w0, w1, #1"),
            (0xd37f_fc20, 1, "lsr x0, x1, #63"),
            (0x5308_7c20, 0x0089_abcd, "lsr w0, w1, #8"),
            (0x9340_1c20, 0xffff_ffff_ffff_ffef, "sxtb x0, w1"),
            (0x1300_3c20, 0xffff_cdef, "sxth w0, w1"),
            (0x9340_7c20, 0xffff_ffff_89ab_cdef, "sxtw x0, w1"),
            (0x5300_1c20, 0xef, "uxtb w0, w1"),
            (0x5300_3c20, 0xcdef, "uxth w0, w1"),
            (0x9378_0c20, 0xffff_ffff_ffff_ff00, "sbfiz x0, x1, #8, #4"),
            (0x9344_2c20, 0xffff_ffff_ffff_ffde, "sbfx x0, x1, #4, #8"),
            (0x1304_2c20, 0xffff_ffde, "sbfx w0, w1, #4, #8"),
            (0x131c_7c20, 0xffff_fff8, "asr w0, w1, #28"),
            (0x531c_1c20, 0xef0, "ubfiz w0, w1, #4, #8"),
            (0xd344_2c20, 0xde, "ubfx x0, x1, #4, #8"),
            (0x5304_0c20, 0xf000_0000, "lsl w0, w1, #28"),
            (0xd37c_fc20, 8, "lsr x0, x1, #60"),
            (0xb378_3c20, 0xffff_ffff_ffcd_efff, "bfi x0, x1, #8, #16"),
            (0x3304_2c20, 0xffff_ffde, "bfxil w0, w1, #4, #8"),
            (0x3302_0420, 0xffff_ffff, "bfi w0, w1, #30, #2"),
        ];
        for &(word, want, text) in cases {
            let st = run(&[word], &[(0, u64::MAX), (1, x1)]);
            assert_eq!(st.x[0], want, "{text}");
        }
        // bfi w0, w1, #30, #2 with x1 = 2: bits 31:30 = 10, rest of w0 kept, top cleared
        let st = run(&[0x3302_0420], &[(0, 0xffff_ffff_0000_0001), (1, 2)]);
        assert_eq!(st.x[0], 0x8000_0001);
    }

    #[test]
    fn bitfield_reserved_encodings_are_undefined() {
        assert_undefined(0x9304_fc20); // sf = 1, N = 0
        assert_undefined(0x1344_7c20); // sf = 0, N = 1
        assert_undefined(0x1320_7c20); // sf = 0, immr = 32
        assert_undefined(0x1300_8020); // sf = 0, imms = 32
        assert_undefined(0xf344_fc20); // opc = 11
    }

    #[test]
    fn extract_and_ror() {
        let (x1, x2) = (0x0011_2233_4455_6677u64, 0x8899_aabb_ccdd_eeffu64);
        let cases: &[(u32, u64, &str)] = &[
            (0x93c2_2020, 0x7788_99aa_bbcc_ddee, "extr x0, x1, x2, #8"),
            (0x1382_7020, 0x4556_677c, "extr w0, w1, w2, #28"),
            (0x93c1_0420, 0x8008_9119_a22a_b33b, "ror x0, x1, #1"),
            (0x1381_4020, 0x6677_4455, "ror w0, w1, #16"),
            (0x93c2_0020, x2, "extr x0, x1, x2, #0"),
        ];
        for &(word, want, text) in cases {
            assert_eq!(run(&[word], &[(1, x1), (2, x2)]).x[0], want, "{text}");
        }
        // extr w0, w1, w2, #0 is W2 zero-extended
        assert_eq!(run(&[0x1382_0020], &[(2, x2)]).x[0], 0xccdd_eeff);
        assert_undefined(0x9382_2020); // sf = 1, N = 0
        assert_undefined(0x13c2_2020); // sf = 0, N = 1
        assert_undefined(0x1382_8020); // sf = 0, imms = 32
    }
}
