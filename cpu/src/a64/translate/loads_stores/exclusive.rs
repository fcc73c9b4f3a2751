//! Load/store exclusive (LDXR/STXR, LDAXR/STLXR and the pair forms) and load-acquire /
//! store-release (LDAR/STLR), byte to doubleword.
//!
//! Ordering: an acquire load is followed by a [`Op::Fence`]; a release store is preceded by
//! one, and also followed by one so that a store-release and a later load-acquire stay in
//! order (the A64 acquire/release semantics are RCsc). Alignment is checked: the exclusive ops
//! check it themselves, LDAR/STLR use [`Op::CheckAlign`] (ARMv8.0 has no unaligned
//! acquire/release).

use crate::a64::{Flow, Insn, Translator};
use crate::ir::{BinOp, Op, UnOp, Width};

/// STXR/STLXR Ws, Rt, [Xn|SP].
pub(super) fn stxr(t: &mut Translator, i: Insn) -> Flow {
    let size = 1u8 << i.bits(31, 30);
    let release = i.bit(15);
    let addr = t.get_xsp(i.rn());
    let src = t.get_x(i.rt());
    if release {
        t.op(Op::Fence);
    }
    let status = t.temp();
    t.op(Op::StoreExcl {
        status,
        addr,
        src,
        src_hi: None,
        size,
    });
    if release {
        t.op(Op::Fence);
    }
    t.set_x(i.rs(), status);
    Flow::Next
}

/// LDXR/LDAXR Rt, [Xn|SP].
pub(super) fn ldxr(t: &mut Translator, i: Insn) -> Flow {
    let size = 1u8 << i.bits(31, 30);
    let addr = t.get_xsp(i.rn());
    let dst = t.temp();
    t.op(Op::LoadExcl {
        dst,
        dst_hi: None,
        addr,
        size,
    });
    if i.bit(15) {
        t.op(Op::Fence);
    }
    t.set_x(i.rt(), dst);
    Flow::Next
}

/// STXP/STLXP Ws, Rt, Rt2, [Xn|SP]: one 8-byte (32-bit pair) or 16-byte (64-bit pair)
/// exclusive store.
pub(super) fn stxp(t: &mut Translator, i: Insn) -> Flow {
    let wide = i.bit(30);
    let release = i.bit(15);
    let addr = t.get_xsp(i.rn());
    let v1 = t.get_x(i.rt());
    let v2 = t.get_x(i.rt2());
    let (src, src_hi, size) = if wide {
        (v1, Some(v2), 16)
    } else {
        let lo = t.un(UnOp::Zext32, Width::W64, v1);
        let hi = t.bin_imm(BinOp::Shl, Width::W64, v2, 32);
        (t.bin(BinOp::Or, Width::W64, lo, hi), None, 8)
    };
    if release {
        t.op(Op::Fence);
    }
    let status = t.temp();
    t.op(Op::StoreExcl {
        status,
        addr,
        src,
        src_hi,
        size,
    });
    if release {
        t.op(Op::Fence);
    }
    t.set_x(i.rs(), status);
    Flow::Next
}

/// LDXP/LDAXP Rt, Rt2, [Xn|SP]: one 8-byte or 16-byte exclusive load split into two.
pub(super) fn ldxp(t: &mut Translator, i: Insn) -> Flow {
    let wide = i.bit(30);
    let addr = t.get_xsp(i.rn());
    let dst = t.temp();
    let (v1, v2) = if wide {
        let hi = t.temp();
        t.op(Op::LoadExcl {
            dst,
            dst_hi: Some(hi),
            addr,
            size: 16,
        });
        (dst, hi)
    } else {
        t.op(Op::LoadExcl {
            dst,
            dst_hi: None,
            addr,
            size: 8,
        });
        let lo = t.un(UnOp::Zext32, Width::W64, dst);
        let hi = t.bin_imm(BinOp::Lsr, Width::W64, dst, 32);
        (lo, hi)
    };
    if i.bit(15) {
        t.op(Op::Fence);
    }
    t.set_x(i.rt(), v1);
    t.set_x(i.rt2(), v2);
    Flow::Next
}

/// STLR Rt, [Xn|SP].
pub(super) fn stlr(t: &mut Translator, i: Insn) -> Flow {
    let size = 1u8 << i.bits(31, 30);
    let addr = t.get_xsp(i.rn());
    let src = t.get_x(i.rt());
    t.op(Op::CheckAlign {
        addr,
        size,
        write: true,
    });
    t.op(Op::Fence);
    t.op(Op::Store { addr, src, size });
    t.op(Op::Fence);
    Flow::Next
}

/// LDAR Rt, [Xn|SP].
pub(super) fn ldar(t: &mut Translator, i: Insn) -> Flow {
    let size = 1u8 << i.bits(31, 30);
    let addr = t.get_xsp(i.rn());
    t.op(Op::CheckAlign {
        addr,
        size,
        write: false,
    });
    let dst = t.temp();
    t.op(Op::Load {
        dst,
        addr,
        size,
        signed: false,
    });
    t.op(Op::Fence);
    t.set_x(i.rt(), dst);
    Flow::Next
}
