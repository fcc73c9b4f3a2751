//! A few hot AdvSIMD instructions as plain 64-bit integer IR on the vector's two halves
//! ("SIMD within a register") instead of a helper call: the string routines' CMEQ/CMTST,
//! SHRN, UMAXP/UMINP on bytes and the bitwise group (AND ... BIF). Compiled code then keeps
//! them in host registers, with no call and no write-back of the guest's registers around
//! it. The other forms stay helpers.

use super::lanes::{check, esize, q, scalar, u};
use crate::a64::{Flow, Insn, Translator};
use crate::ir::{BinOp, Helper, Op, UnOp, Width, T};

/// `lane` (8..=64 bits) repeated over 64 bits.
fn splat(lane: u64, bits: u32) -> u64 {
    (0..64 / bits).fold(0, |acc, k| acc | lane << (k * bits))
}

/// Half `idx` (64 bits) of V register `reg`.
fn half(t: &mut Translator, reg: u8, idx: u8) -> T {
    let dst = t.temp();
    t.op(Op::GetVElem {
        dst,
        reg,
        esize: 8,
        idx,
    });
    dst
}

/// Writes `lo` (zeroing the rest) and, if given, `hi` into V register `rd`.
fn write(t: &mut Translator, rd: u8, lo: T, hi: Option<T>) {
    t.op(Op::SetVScalar {
        reg: rd,
        src: lo,
        esize: 8,
    });
    if let Some(hi) = hi {
        t.op(Op::SetVElem {
            reg: rd,
            src: hi,
            esize: 8,
            idx: 1,
        });
    }
}

/// Vd = `f(t, half)` for the low half, and the high one when `both` (else it is zeroed): for
/// the lane-wise instructions, whose halves are independent. Both halves are computed
/// before Vd is written (`f` may read it).
fn per_half(t: &mut Translator, rd: u8, both: bool, mut f: impl FnMut(&mut Translator, u8) -> T) {
    let lo = f(t, 0);
    let hi = both.then(|| f(t, 1));
    write(t, rd, lo, hi);
}

/// All ones in each `bits`-wide lane of `x` that is zero, zeros in the others.
fn zero_lanes(t: &mut Translator, x: T, bits: u32) -> T {
    let w = Width::W64;
    let hi = splat(1 << (bits - 1), bits);
    let lo = !hi;
    // (x & lo) + lo sets a lane's top bit iff its low bits are not all zero (no carry leaves
    // the lane); or-ing x adds the top bit itself.
    let a = t.bin_imm(BinOp::And, w, x, lo);
    let b = t.bin_imm(BinOp::Add, w, a, lo);
    let c = t.bin(BinOp::Or, w, b, x);
    // The top bit of each zero lane, spread over its lane: m | (m - (m >> (bits - 1))).
    let h = t.konst(hi);
    let m = t.bin(BinOp::AndNot, w, h, c);
    let s = t.bin_imm(BinOp::Lsr, w, m, u64::from(bits - 1));
    let d = t.bin(BinOp::Sub, w, m, s);
    t.bin(BinOp::Or, w, m, d)
}

/// CMEQ (register: U=1; zero: `zero`) and CMTST (register, U=0), vector and scalar.
pub fn cmeq_cmtst(t: &mut Translator, i: Insn, zero: bool) -> Flow {
    let ok = if scalar(i) {
        check::d(i)
    } else {
        check::any(i)
    };
    if !ok {
        return t.undefined(i);
    }
    let bits = esize(i);
    let tst = !zero && !u(i);
    let w = Width::W64;
    per_half(t, i.rd(), !scalar(i) && q(i), |t, idx| {
        let n = half(t, i.rn(), idx);
        let x = if zero {
            n
        } else {
            let m = half(t, i.rm(), idx);
            let op = if tst { BinOp::And } else { BinOp::Xor };
            t.bin(op, w, n, m)
        };
        let z = zero_lanes(t, x, bits);
        // CMTST: lanes where n & m is not zero.
        if tst {
            t.un(UnOp::Not, w, z)
        } else {
            z
        }
    });
    Flow::Next
}

/// `y`'s `nb`-bit elements, one at the bottom of each `2 * nb` bits (the rest zero), packed
/// into its low 32 bits.
fn pack(t: &mut Translator, mut y: T, nb: u32) -> T {
    let w = Width::W64;
    let mut step = nb;
    while step < 32 {
        let z = t.bin_imm(BinOp::Lsr, w, y, u64::from(step));
        let o = t.bin(BinOp::Or, w, y, z);
        y = t.bin_imm(BinOp::And, w, o, splat((1 << (2 * step)) - 1, 4 * step));
        step *= 2;
    }
    y
}

/// UMAXP / UMINP of the byte pairs of the 64-bit `h`, packed into the low 32 bits.
fn pair_max_min(t: &mut Translator, h: T, max: bool) -> T {
    let w = Width::W64;
    let lo = splat(0xff, 16);
    let e = t.bin_imm(BinOp::And, w, h, lo);
    let s = t.bin_imm(BinOp::Lsr, w, h, 8);
    let o = t.bin_imm(BinOp::And, w, s, lo);
    // Bit 8 of each 16-bit lane of (e | 0x100) - o: e >= o (no borrow leaves the lane).
    let e1 = t.bin_imm(BinOp::Or, w, e, splat(0x100, 16));
    let d = t.bin(BinOp::Sub, w, e1, o);
    let ge = t.bin_imm(BinOp::And, w, d, splat(0x100, 16));
    let g8 = t.bin_imm(BinOp::Lsr, w, ge, 8);
    let mask = t.bin(BinOp::Sub, w, ge, g8); // 0xff where e >= o
    let (keep, other) = if max { (e, o) } else { (o, e) };
    // max: e where e >= o, else o; min: o where e >= o, else e.
    let a = t.bin(BinOp::And, w, keep, mask);
    let b = t.bin(BinOp::AndNot, w, other, mask);
    let r = t.bin(BinOp::Or, w, a, b);
    pack(t, r, 8)
}

/// UMAXP and UMINP (vector) on bytes; the other element sizes and the signed forms stay
/// helpers (`fallback`).
pub fn umaxp_uminp(t: &mut Translator, i: Insn, max: bool, fallback: Helper) -> Flow {
    if esize(i) != 8 || !u(i) {
        return super::lanes::emit(t, i, check::no_d(i), fallback);
    }
    let w = Width::W64;
    let (rn, rm) = (i.rn(), i.rm());
    let two = |t: &mut Translator, a: T, b: T| {
        let (x, y) = (pair_max_min(t, a, max), pair_max_min(t, b, max));
        let y = t.bin_imm(BinOp::Shl, w, y, 32);
        t.bin(BinOp::Or, w, x, y)
    };
    if q(i) {
        // Vm:Vn, pairwise: Vn's pairs, then Vm's.
        let (n0, n1, m0, m1) = (
            half(t, rn, 0),
            half(t, rn, 1),
            half(t, rm, 0),
            half(t, rm, 1),
        );
        let lo = two(t, n0, n1);
        let hi = two(t, m0, m1);
        write(t, i.rd(), lo, Some(hi));
    } else {
        let (n0, m0) = (half(t, rn, 0), half(t, rm, 0));
        let lo = two(t, n0, m0);
        write(t, i.rd(), lo, None);
    }
    Flow::Next
}

/// All ones in each byte of the 64-bit `a` that is `>=` (or `>` with `gt`) the byte of `b`,
/// unsigned: the even and the odd bytes compared in 16-bit lanes, where the borrow of
/// `(x | 0x100) - y` stays in its lane.
fn bytes_ge(t: &mut Translator, a: T, b: T, gt: bool) -> T {
    let w = Width::W64;
    let lo = splat(0xff, 16);
    let mut r: Option<T> = None;
    for sh in [0u64, 8] {
        let (x, y) = if gt { (b, a) } else { (a, b) };
        let xs = t.bin_imm(BinOp::Lsr, w, x, sh);
        let xe = t.bin_imm(BinOp::And, w, xs, lo);
        let ys = t.bin_imm(BinOp::Lsr, w, y, sh);
        let ye = t.bin_imm(BinOp::And, w, ys, lo);
        let x1 = t.bin_imm(BinOp::Or, w, xe, splat(0x100, 16));
        let d = t.bin(BinOp::Sub, w, x1, ye);
        // Bit 8 of d: x >= y. For gt, x and y are swapped: a > b is !(b >= a).
        let ge = if gt {
            let bit = t.konst(splat(0x100, 16));
            t.bin(BinOp::AndNot, w, bit, d)
        } else {
            t.bin_imm(BinOp::And, w, d, splat(0x100, 16))
        };
        let g8 = t.bin_imm(BinOp::Lsr, w, ge, 8);
        let m = t.bin(BinOp::Sub, w, ge, g8);
        let m = t.bin_imm(BinOp::Shl, w, m, sh);
        r = Some(match r {
            Some(p) => t.bin(BinOp::Or, w, p, m),
            None => m,
        });
    }
    r.expect("two parts")
}

/// CMHS/CMHI (unsigned) and CMGE/CMGT (signed, by flipping each byte's top bit) on bytes;
/// the other element sizes stay helpers (`fallback`).
pub fn compare_bytes(t: &mut Translator, i: Insn, gt: bool, fallback: Helper) -> Flow {
    if esize(i) != 8 {
        return super::lanes::emit(t, i, check::any(i), fallback);
    }
    let w = Width::W64;
    per_half(t, i.rd(), q(i), |t, idx| {
        let (mut a, mut b) = (half(t, i.rn(), idx), half(t, i.rm(), idx));
        if !u(i) {
            a = t.bin_imm(BinOp::Xor, w, a, splat(0x80, 8));
            b = t.bin_imm(BinOp::Xor, w, b, splat(0x80, 8));
        }
        bytes_ge(t, a, b, gt)
    });
    Flow::Next
}

/// AND, BIC, ORR, ORN, EOR, BSL, BIT and BIF (vector).
pub fn logic(t: &mut Translator, i: Insn) -> Flow {
    let op = (u(i) as u32) << 2 | i.bits(23, 22);
    let w = Width::W64;
    per_half(t, i.rd(), q(i), |t, idx| {
        let (a, b) = (half(t, i.rn(), idx), half(t, i.rm(), idx));
        match op {
            0 => t.bin(BinOp::And, w, a, b),
            1 => t.bin(BinOp::AndNot, w, a, b),
            2 => t.bin(BinOp::Or, w, a, b),
            3 => t.bin(BinOp::OrNot, w, a, b),
            4 => t.bin(BinOp::Xor, w, a, b),
            _ => {
                let d = half(t, i.rd(), idx);
                // BSL: d selects a over b; BIT: b selects a over d; BIF: b selects d over a.
                let (sel, yes, no) = match op {
                    5 => (d, a, b),
                    6 => (b, a, d),
                    _ => (b, d, a),
                };
                let x = t.bin(BinOp::And, w, yes, sel);
                let y = t.bin(BinOp::AndNot, w, no, sel);
                t.bin(BinOp::Or, w, x, y)
            }
        }
    });
    Flow::Next
}

/// SHRN and SHRN2 (vector): each double-width element of Vn shifted right by the immediate
/// and truncated; into the low half of Vd (the high half zeroed) or, for SHRN2, its high
/// half (the low half kept).
pub fn shrn(t: &mut Translator, i: Insn) -> Flow {
    let immh = i.bits(22, 19);
    let nb = 8u32 << (31 - immh.leading_zeros());
    let sh = 2 * nb - i.bits(22, 16);
    let w = Width::W64;
    let mut packed = Vec::new();
    for idx in 0..2u8 {
        let n = half(t, i.rn(), idx);
        // Each output element's bits come from its own input element (sh <= nb).
        let s = t.bin_imm(BinOp::Lsr, w, n, u64::from(sh));
        let y = t.bin_imm(BinOp::And, w, s, splat((1 << nb) - 1, 2 * nb));
        packed.push(pack(t, y, nb));
    }
    let hi = t.bin_imm(BinOp::Shl, w, packed[1], 32);
    let r = t.bin(BinOp::Or, w, packed[0], hi);
    if q(i) {
        t.op(Op::SetVElem {
            reg: i.rd(),
            src: r,
            esize: 8,
            idx: 1,
        });
    } else {
        write(t, i.rd(), r, None);
    }
    Flow::Next
}
