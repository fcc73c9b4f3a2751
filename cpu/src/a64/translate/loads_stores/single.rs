//! Single-register loads and stores: general registers (LDR/STR and the byte, halfword and
//! sign-extending forms, PRFM) and SIMD&FP registers (B/H/S/D/Q), in the unsigned-offset,
//! unscaled, pre-index, post-index, unprivileged, register-offset and literal forms.

use super::{imm_addr, writeback, Addr, Index};
use crate::a64::{Flow, Insn, Translator};
use crate::ir::{BinOp, Op, UnOp, Width};

/// What a general-register encoding does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gpr {
    Store,
    /// Zero-extending load (LDRB/LDRH/LDR).
    Load,
    /// Sign-extending load to an X register (LDRSB/LDRSH/LDRSW Xt).
    LoadSx,
    /// Sign-extending load to a W register (LDRSB/LDRSH Wt).
    LoadSw,
    Prefetch,
}

/// Classify `size:opc` of a general-register load/store; `prefetch` says whether this
/// addressing mode has a PRFM form (size=11, opc=10).
fn gpr_kind(size: u32, opc: u32, prefetch: bool) -> Option<Gpr> {
    match (opc, size) {
        (0, _) => Some(Gpr::Store),
        (1, _) => Some(Gpr::Load),
        (2, 0..=2) => Some(Gpr::LoadSx),
        (2, 3) if prefetch => Some(Gpr::Prefetch),
        (3, 0..=1) => Some(Gpr::LoadSw),
        _ => None,
    }
}

/// Access size in bytes of a SIMD&FP load/store (`opc<1>:size`), and whether it loads.
fn fp_kind(size: u32, opc: u32) -> Option<(u8, bool)> {
    let load = opc & 1 == 1;
    match (opc >> 1, size) {
        (0, s) => Some((1 << s, load)),
        (1, 0) => Some((16, load)),
        _ => None,
    }
}

/// Emit a general-register access at `a`, then write back.
fn gpr_access(t: &mut Translator, i: Insn, kind: Gpr, size: u8, a: Addr) -> Flow {
    let (rt, rn) = (i.rt(), i.rn());
    match kind {
        Gpr::Prefetch => {}
        Gpr::Store => {
            let v = t.get_x(rt);
            t.op(Op::Store {
                addr: a.addr,
                src: v,
                size,
            });
            writeback(t, rn, a, false);
        }
        Gpr::Load | Gpr::LoadSx | Gpr::LoadSw => {
            let dst = t.temp();
            t.op(Op::Load {
                dst,
                addr: a.addr,
                size,
                signed: kind != Gpr::Load,
            });
            let v = if kind == Gpr::LoadSw {
                t.un(UnOp::Zext32, Width::W64, dst)
            } else {
                dst
            };
            t.set_x(rt, v);
            writeback(t, rn, a, rt == rn);
        }
    }
    Flow::Next
}

/// Emit a SIMD&FP access at `a`, then write back. The load writes the V register directly:
/// it is the instruction's only access, so a fault leaves everything unchanged.
fn fp_access(t: &mut Translator, i: Insn, size: u8, load: bool, a: Addr) -> Flow {
    let reg = i.rt();
    if load {
        t.op(Op::LoadV {
            reg,
            addr: a.addr,
            size,
        });
    } else {
        t.op(Op::StoreV {
            reg,
            addr: a.addr,
            size,
        });
    }
    writeback(t, i.rn(), a, false);
    Flow::Next
}

/// Indexing of the imm9 forms from bits 11:10 (00 unscaled, 01 post, 11 pre).
fn imm9_index(i: Insn) -> Index {
    match i.bits(11, 10) {
        1 => Index::Post,
        3 => Index::Pre,
        _ => Index::Offset,
    }
}

/// LDUR/STUR/PRFUM and the pre/post-indexed LDR/STR (general registers).
pub(super) fn unscaled_gpr(t: &mut Translator, i: Insn) -> Flow {
    let index = imm9_index(i);
    let size = i.bits(31, 30);
    let Some(kind) = gpr_kind(size, i.bits(23, 22), index == Index::Offset) else {
        return t.undefined(i);
    };
    if kind == Gpr::Prefetch {
        return Flow::Next;
    }
    let a = imm_addr(t, i.rn(), i.simm(20, 12), index);
    gpr_access(t, i, kind, 1 << size, a)
}

/// LDTR/STTR and friends: at EL0 they are the unscaled forms.
pub(super) fn unpriv_gpr(t: &mut Translator, i: Insn) -> Flow {
    let size = i.bits(31, 30);
    let Some(kind) = gpr_kind(size, i.bits(23, 22), false) else {
        return t.undefined(i);
    };
    let a = imm_addr(t, i.rn(), i.simm(20, 12), Index::Offset);
    gpr_access(t, i, kind, 1 << size, a)
}

/// LDR/STR/PRFM (immediate, unsigned offset scaled by the access size).
pub(super) fn pos_gpr(t: &mut Translator, i: Insn) -> Flow {
    let size = i.bits(31, 30);
    let Some(kind) = gpr_kind(size, i.bits(23, 22), true) else {
        return t.undefined(i);
    };
    if kind == Gpr::Prefetch {
        return Flow::Next;
    }
    let imm = (i.bits(21, 10) as i64) << size;
    let a = imm_addr(t, i.rn(), imm, Index::Offset);
    gpr_access(t, i, kind, 1 << size, a)
}

/// Base plus extended and scaled Rm. `None` for the reserved extend options (option<1> = 0).
fn regoff_addr(t: &mut Translator, i: Insn, scale: u32) -> Option<Addr> {
    let option = i.bits(15, 13);
    if option & 0b010 == 0 {
        return None;
    }
    let base = t.get_xsp(i.rn());
    let m = t.get_x(i.rm());
    let ext = match option {
        0b010 => t.un(UnOp::Zext32, Width::W64, m),
        0b110 => t.un(UnOp::Sext32, Width::W64, m),
        _ => m,
    };
    let shift = if i.bit(12) { scale } else { 0 };
    let off = if shift == 0 {
        ext
    } else {
        t.bin_imm(BinOp::Shl, Width::W64, ext, shift as u64)
    };
    let addr = t.bin(BinOp::Add, Width::W64, base, off);
    Some(Addr { addr, wb: None })
}

/// LDR/STR/PRFM (register offset), general registers.
pub(super) fn regoff_gpr(t: &mut Translator, i: Insn) -> Flow {
    let size = i.bits(31, 30);
    let Some(kind) = gpr_kind(size, i.bits(23, 22), true) else {
        return t.undefined(i);
    };
    let Some(a) = regoff_addr(t, i, size) else {
        return t.undefined(i);
    };
    gpr_access(t, i, kind, 1 << size, a)
}

/// LDR Wt/Xt, LDRSW, PRFM (literal): pc-relative, imm19 words.
pub(super) fn literal_gpr(t: &mut Translator, i: Insn) -> Flow {
    let target = t.pc.wrapping_add((i.simm(23, 5) << 2) as u64);
    let (size, signed) = match i.bits(31, 30) {
        0 => (4, false),
        1 => (8, false),
        2 => (4, true),
        _ => return Flow::Next, // PRFM (literal)
    };
    let addr = t.konst(target);
    let dst = t.temp();
    t.op(Op::Load {
        dst,
        addr,
        size,
        signed,
    });
    t.set_x(i.rt(), dst);
    Flow::Next
}

/// LDR St/Dt/Qt (literal).
pub(super) fn literal_fp(t: &mut Translator, i: Insn) -> Flow {
    let size = match i.bits(31, 30) {
        0 => 4,
        1 => 8,
        2 => 16,
        _ => return t.undefined(i),
    };
    let target = t.pc.wrapping_add((i.simm(23, 5) << 2) as u64);
    let addr = t.konst(target);
    t.op(Op::LoadV {
        reg: i.rt(),
        addr,
        size,
    });
    Flow::Next
}

/// LDUR/STUR and pre/post-indexed LDR/STR of SIMD&FP registers.
pub(super) fn unscaled_fp(t: &mut Translator, i: Insn) -> Flow {
    let Some((size, load)) = fp_kind(i.bits(31, 30), i.bits(23, 22)) else {
        return t.undefined(i);
    };
    let a = imm_addr(t, i.rn(), i.simm(20, 12), imm9_index(i));
    fp_access(t, i, size, load, a)
}

/// LDR/STR (immediate, unsigned offset) of SIMD&FP registers.
pub(super) fn pos_fp(t: &mut Translator, i: Insn) -> Flow {
    let Some((size, load)) = fp_kind(i.bits(31, 30), i.bits(23, 22)) else {
        return t.undefined(i);
    };
    let imm = (i.bits(21, 10) as i64) * size as i64;
    let a = imm_addr(t, i.rn(), imm, Index::Offset);
    fp_access(t, i, size, load, a)
}

/// LDR/STR (register offset) of SIMD&FP registers.
pub(super) fn regoff_fp(t: &mut Translator, i: Insn) -> Flow {
    let Some((size, load)) = fp_kind(i.bits(31, 30), i.bits(23, 22)) else {
        return t.undefined(i);
    };
    let Some(a) = regoff_addr(t, i, size.trailing_zeros()) else {
        return t.undefined(i);
    };
    fp_access(t, i, size, load, a)
}
