//! A few hot AdvSIMD instructions as plain 64-bit integer IR on the vector's two halves
//! ("SIMD within a register") instead of a helper call: the string routines' CMEQ/CMTST
//! and SHRN. Compiled code then keeps them in host registers, with no call and no
//! write-back of the guest's registers around it. The other forms stay helpers.

use super::lanes::{check, esize, q, scalar, u};
use crate::a64::{Flow, Insn, Translator};
use crate::ir::{BinOp, Op, UnOp, Width, T};

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
    let both = !scalar(i) && q(i);
    let mut out = [None, None];
    for (idx, o) in out.iter_mut().enumerate().take(if both { 2 } else { 1 }) {
        let n = half(t, i.rn(), idx as u8);
        let x = if zero {
            n
        } else {
            let m = half(t, i.rm(), idx as u8);
            let op = if tst { BinOp::And } else { BinOp::Xor };
            t.bin(op, w, n, m)
        };
        let z = zero_lanes(t, x, bits);
        // CMTST: lanes where n & m is not zero.
        *o = Some(if tst { t.un(UnOp::Not, w, z) } else { z });
    }
    if let Some(lo) = out[0] {
        write(t, i.rd(), lo, out[1]);
    }
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
        let mut y = t.bin_imm(BinOp::And, w, s, splat((1 << nb) - 1, 2 * nb));
        // Pack the elements (one per 2*nb bits) to the bottom 32 bits.
        let mut step = nb;
        while step < 32 {
            let z = t.bin_imm(BinOp::Lsr, w, y, u64::from(step));
            let o = t.bin(BinOp::Or, w, y, z);
            y = t.bin_imm(BinOp::And, w, o, splat((1 << (2 * step)) - 1, 4 * step));
            step *= 2;
        }
        packed.push(y);
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
