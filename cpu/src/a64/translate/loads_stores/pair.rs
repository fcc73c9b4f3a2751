//! Load/store pair: LDP/STP (32/64-bit), LDPSW, LDNP/STNP, and the SIMD&FP pairs (S/D/Q), in
//! the signed-offset, pre-index, post-index and no-allocate forms.

use super::{imm_addr, writeback, Addr, Index};
use crate::a64::{Flow, Insn, Translator};
use crate::ir::{BinOp, Op, Width, T};

/// Indexing from bits 24:23 (00 no-allocate offset, 01 post, 10 offset, 11 pre).
fn pair_index(i: Insn) -> Index {
    match i.bits(24, 23) {
        1 => Index::Post,
        3 => Index::Pre,
        _ => Index::Offset,
    }
}

fn pair_addr(t: &mut Translator, i: Insn, size: u8) -> Addr {
    let imm = i.simm(21, 15) * size as i64;
    imm_addr(t, i.rn(), imm, pair_index(i))
}

fn second(t: &mut Translator, a: Addr, size: u8) -> T {
    t.bin_imm(BinOp::Add, Width::W64, a.addr, size as u64)
}

/// LDP/STP/LDNP/STNP/LDPSW, general registers.
pub(super) fn pair_gpr(t: &mut Translator, i: Insn) -> Flow {
    let load = i.bit(22);
    let noalloc = i.bits(24, 23) == 0;
    let (size, signed) = match i.bits(31, 30) {
        0 => (4u8, false),
        1 if load && !noalloc => (4, true), // LDPSW
        2 => (8, false),
        _ => return t.undefined(i),
    };
    let (rt, rt2, rn) = (i.rt(), i.rt2(), i.rn());
    let a = pair_addr(t, i, size);
    let a2 = second(t, a, size);
    if load {
        let v1 = t.temp();
        let v2 = t.temp();
        t.op(Op::Load {
            dst: v1,
            addr: a.addr,
            size,
            signed,
        });
        t.op(Op::Load {
            dst: v2,
            addr: a2,
            size,
            signed,
        });
        // Rt2 first: with Rt == Rt2 (UNKNOWN) the register ends up with the first value.
        // (The SIMD&FP pairs and LDXP keep the second; both as QEMU does.)
        t.set_x(rt2, v2);
        t.set_x(rt, v1);
        writeback(t, rn, a, rt == rn || rt2 == rn);
    } else {
        let v1 = t.get_x(rt);
        let v2 = t.get_x(rt2);
        t.op(Op::Store {
            addr: a.addr,
            src: v1,
            size,
        });
        t.op(Op::Store {
            addr: a2,
            src: v2,
            size,
        });
        writeback(t, rn, a, false);
    }
    Flow::Next
}

/// Load 4/8/16 bytes at `addr` into temps (low, and high for 16).
fn load_temps(t: &mut Translator, addr: T, size: u8) -> (T, Option<T>) {
    let lo = t.temp();
    t.op(Op::Load {
        dst: lo,
        addr,
        size: size.min(8),
        signed: false,
    });
    if size == 16 {
        let a = t.bin_imm(BinOp::Add, Width::W64, addr, 8);
        let hi = t.temp();
        t.op(Op::Load {
            dst: hi,
            addr: a,
            size: 8,
            signed: false,
        });
        (lo, Some(hi))
    } else {
        (lo, None)
    }
}

fn set_v(t: &mut Translator, reg: u8, lo: T, hi: Option<T>, size: u8) {
    t.op(Op::SetVScalar {
        reg,
        src: lo,
        esize: size.min(8),
    });
    if let Some(hi) = hi {
        t.op(Op::SetVElem {
            reg,
            src: hi,
            esize: 8,
            idx: 1,
        });
    }
}

/// LDP/STP/LDNP/STNP of S, D and Q registers. Both loads go into temps before either
/// register is written.
pub(super) fn pair_fp(t: &mut Translator, i: Insn) -> Flow {
    let size: u8 = match i.bits(31, 30) {
        0 => 4,
        1 => 8,
        2 => 16,
        _ => return t.undefined(i),
    };
    let (rt, rt2, rn) = (i.rt(), i.rt2(), i.rn());
    let a = pair_addr(t, i, size);
    let a2 = second(t, a, size);
    if i.bit(22) {
        let (lo1, hi1) = load_temps(t, a.addr, size);
        let (lo2, hi2) = load_temps(t, a2, size);
        set_v(t, rt, lo1, hi1, size);
        set_v(t, rt2, lo2, hi2, size);
    } else {
        t.op(Op::StoreV {
            reg: rt,
            addr: a.addr,
            size,
        });
        t.op(Op::StoreV {
            reg: rt2,
            addr: a2,
            size,
        });
    }
    writeback(t, rn, a, false);
    Flow::Next
}
