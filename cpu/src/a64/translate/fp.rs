//! Scalar floating point (Arm ARM C4.1.6, "Data processing -- scalar floating-point and
//! Advanced SIMD": the floating-point rows) and the AdvSIMD floating-point rows (see
//! [`vector`]). Arithmetic is done by [`crate::fpu`] through `CallValue` helpers; moves,
//! FABS/FNEG and FCSEL are plain IR.
//!
//! v8.0 has no half-precision arithmetic: `ftype == 11` is allocated only for FCVT.

use crate::a64::{Flow, Insn, Row, Translator};
use crate::fpu::{self, FpEnv, FpSize, Rounding};
use crate::ir::{BinOp, Op, Width, T};
use crate::row;
use crate::state::CpuState;

pub mod vector;

pub const ROWS: &[Row] = &[
    // Floating-point <-> fixed-point conversions
    row!(
        "FCVT_fixed",
        "s0011110tt0rroooxxxxxxnnnnnddddd",
        conv_fixed,
        Fp
    ),
    // Floating-point <-> integer conversions (and FMOV to/from general)
    row!("FCVT_int", "s0011110tt1rrooo000000nnnnnddddd", conv_int, Fp),
    // Floating-point data-processing (1 source)
    row!("FP_DP1", "00011110tt1oooooo10000nnnnnddddd", dp1, Fp),
    // Floating-point compare
    row!("FCMP_float", "00011110tt1mmmmm001000nnnnnoo000", fcmp, Fp),
    // Floating-point immediate
    row!(
        "FMOV_float_imm",
        "00011110tt1iiiiiiii10000000ddddd",
        fmov_imm,
        Fp
    ),
    // Floating-point conditional compare
    row!("FCCMP_float", "00011110tt1mmmmmcccc01nnnnnoffff", fccmp, Fp),
    // Floating-point data-processing (2 source)
    row!("FP_DP2", "00011110tt1mmmmmoooo10nnnnnddddd", dp2, Fp),
    // Floating-point conditional select
    row!("FCSEL_float", "00011110tt1mmmmmcccc11nnnnnddddd", fcsel, Fp),
    // Floating-point data-processing (3 source)
    row!("FP_DP3", "00011111ttommmmmoaaaaannnnnddddd", dp3, Fp),
];

// ---------------------------------------------------------------------------------------------
// Helper parameters: the `c` operand of the CallValue helpers packs the instruction's
// decoded details.

const P_SIZE_SHIFT: u32 = 0; // 2 bits: 0 H, 1 S, 2 D
const P_UNSIGNED: u64 = 1 << 2;
const P_I64: u64 = 1 << 3;
const P_FBITS_SHIFT: u32 = 8; // 8 bits
const P_RMODE_SHIFT: u32 = 16; // 3 bits, RM_FPCR for the FPCR's mode
const P_OP_SHIFT: u32 = 24; // 8 bits
const P_TO_SHIFT: u32 = 32; // 2 bits: destination size of FCVT

pub(crate) const RM_FPCR: u64 = 7;

pub(crate) fn size_code(sz: FpSize) -> u64 {
    match sz {
        FpSize::H => 0,
        FpSize::S => 1,
        FpSize::D => 2,
    }
}

pub(crate) fn size_of_code(c: u64) -> FpSize {
    match c & 3 {
        0 => FpSize::H,
        1 => FpSize::S,
        _ => FpSize::D,
    }
}

pub(crate) fn rounding_code(r: Rounding) -> u64 {
    match r {
        Rounding::TieEven => 0,
        Rounding::PosInf => 1,
        Rounding::NegInf => 2,
        Rounding::Zero => 3,
        Rounding::TieAway => 4,
        Rounding::Odd => 5,
    }
}

pub(crate) fn rounding_of_code(c: u64, env: &FpEnv) -> Rounding {
    match c & 7 {
        0 => Rounding::TieEven,
        1 => Rounding::PosInf,
        2 => Rounding::NegInf,
        3 => Rounding::Zero,
        4 => Rounding::TieAway,
        5 => Rounding::Odd,
        _ => env.rounding(),
    }
}

/// Scalar FP size for `ftype`, single and double only (v8.0 arithmetic).
fn arith_size(i: Insn) -> Option<FpSize> {
    match i.bits(23, 22) {
        0 => Some(FpSize::S),
        1 => Some(FpSize::D),
        _ => None,
    }
}

fn get_v(t: &mut Translator, reg: u8, sz: FpSize) -> T {
    let dst = t.temp();
    t.op(Op::GetVElem {
        dst,
        reg,
        esize: sz.bytes(),
        idx: 0,
    });
    dst
}

fn set_v(t: &mut Translator, reg: u8, src: T, sz: FpSize) {
    t.op(Op::SetVScalar {
        reg,
        src,
        esize: sz.bytes(),
    });
}

fn call(t: &mut Translator, f: crate::ir::ValueHelper, a: T, b: T, c: T) -> T {
    let dst = t.temp();
    t.op(Op::CallValue { f, dst, a, b, c });
    dst
}

// ---------------------------------------------------------------------------------------------
// Data processing

/// 1-source operations that go through a helper (FSQRT, FCVT, FRINT*).
fn h_dp1(st: &mut CpuState, a: u64, _b: u64, p: u64) -> u64 {
    let sz = size_of_code(p >> P_SIZE_SHIFT);
    let mut env = FpEnv::new(st.fpcr, &mut st.fpsr);
    let op = (p >> P_OP_SHIFT) as u8;
    match op {
        0b000011 => fpu::sqrt(&mut env, sz, a),
        0b000100..=0b000111 => {
            let to = size_of_code(p >> P_TO_SHIFT);
            let r = env.rounding();
            fpu::convert(&mut env, sz, to, a, r)
        }
        _ => {
            let rounding = rounding_of_code(p >> P_RMODE_SHIFT, &env);
            fpu::round_int(&mut env, sz, a, rounding, op == 0b001110)
        }
    }
}

fn dp1(t: &mut Translator, i: Insn) -> Flow {
    let op = i.bits(20, 15);
    let ftype = i.bits(23, 22);
    let Some(sz) = FpSize::from_ftype(ftype) else {
        return t.undefined(i);
    };
    // FCVT: opc = destination type.
    if op & 0b111100 == 0b000100 {
        let to = match op & 3 {
            0 => FpSize::S,
            1 => FpSize::D,
            3 => FpSize::H,
            _ => return t.undefined(i),
        };
        if to == sz {
            return t.undefined(i);
        }
        let a = get_v(t, i.rn(), sz);
        let p = t.konst(
            size_code(sz) << P_SIZE_SHIFT | size_code(to) << P_TO_SHIFT | (op as u64) << P_OP_SHIFT,
        );
        let r = call(t, h_dp1, a, a, p);
        set_v(t, i.rd(), r, to);
        return Flow::Next;
    }
    if sz == FpSize::H {
        return t.undefined(i);
    }
    let sign = 1u64 << (sz.bits() - 1);
    let rounding = match op {
        0b000000..=0b000011 => None,
        0b001000 => Some(Rounding::TieEven),
        0b001001 => Some(Rounding::PosInf),
        0b001010 => Some(Rounding::NegInf),
        0b001011 => Some(Rounding::Zero),
        0b001100 => Some(Rounding::TieAway),
        0b001110 | 0b001111 => None,
        _ => return t.undefined(i),
    };
    let a = get_v(t, i.rn(), sz);
    let r = match op {
        0b000000 => a,
        0b000001 => t.bin_imm(BinOp::AndNot, Width::W64, a, sign),
        0b000010 => t.bin_imm(BinOp::Xor, Width::W64, a, sign),
        _ => {
            let rm = rounding.map_or(RM_FPCR, rounding_code);
            let p = t.konst(
                size_code(sz) << P_SIZE_SHIFT | rm << P_RMODE_SHIFT | (op as u64) << P_OP_SHIFT,
            );
            call(t, h_dp1, a, a, p)
        }
    };
    set_v(t, i.rd(), r, sz);
    Flow::Next
}

/// The 2-source operation `op` (the DP2 opcode numbering).
pub(crate) fn dp2_op(env: &mut FpEnv, sz: FpSize, op: u8, a: u64, b: u64) -> u64 {
    match op {
        0 => fpu::mul(env, sz, a, b),
        1 => fpu::div(env, sz, a, b),
        2 => fpu::add(env, sz, a, b),
        3 => fpu::sub(env, sz, a, b),
        4 => fpu::max(env, sz, a, b),
        5 => fpu::min(env, sz, a, b),
        6 => fpu::max_num(env, sz, a, b),
        7 => fpu::min_num(env, sz, a, b),
        _ => fpu::nmul(env, sz, a, b),
    }
}

fn h_dp2(st: &mut CpuState, a: u64, b: u64, p: u64) -> u64 {
    let sz = size_of_code(p >> P_SIZE_SHIFT);
    let mut env = FpEnv::new(st.fpcr, &mut st.fpsr);
    dp2_op(&mut env, sz, (p >> P_OP_SHIFT) as u8, a, b)
}

fn dp2(t: &mut Translator, i: Insn) -> Flow {
    let op = i.bits(15, 12);
    let Some(sz) = arith_size(i) else {
        return t.undefined(i);
    };
    if op > 8 {
        return t.undefined(i);
    }
    let a = get_v(t, i.rn(), sz);
    let b = get_v(t, i.rm(), sz);
    let p = t.konst(size_code(sz) << P_SIZE_SHIFT | (op as u64) << P_OP_SHIFT);
    let r = call(t, h_dp2, a, b, p);
    set_v(t, i.rd(), r, sz);
    Flow::Next
}

/// FMADD family: `neg_a` negates the addend, `neg_1` the first multiplicand.
fn h_fma<const SZ: u8, const NEG_A: bool, const NEG_1: bool>(
    st: &mut CpuState,
    n: u64,
    m: u64,
    a: u64,
) -> u64 {
    let sz = size_of_code(SZ as u64);
    let mut env = FpEnv::new(st.fpcr, &mut st.fpsr);
    let a = if NEG_A { fpu::neg(sz, a) } else { a };
    let n = if NEG_1 { fpu::neg(sz, n) } else { n };
    fpu::mul_add(&mut env, sz, a, n, m)
}

fn dp3(t: &mut Translator, i: Insn) -> Flow {
    let Some(sz) = arith_size(i) else {
        return t.undefined(i);
    };
    let f: crate::ir::ValueHelper = match (sz, i.bit(21), i.bit(15)) {
        (FpSize::S, false, false) => h_fma::<1, false, false>,
        (FpSize::S, false, true) => h_fma::<1, false, true>,
        (FpSize::S, true, false) => h_fma::<1, true, true>,
        (FpSize::S, true, true) => h_fma::<1, true, false>,
        (_, false, false) => h_fma::<2, false, false>,
        (_, false, true) => h_fma::<2, false, true>,
        (_, true, false) => h_fma::<2, true, true>,
        (_, true, true) => h_fma::<2, true, false>,
    };
    let n = get_v(t, i.rn(), sz);
    let m = get_v(t, i.rm(), sz);
    let a = get_v(t, i.ra(), sz);
    let r = call(t, f, n, m, a);
    set_v(t, i.rd(), r, sz);
    Flow::Next
}

// ---------------------------------------------------------------------------------------------
// Compare and select

const P_SIGNAL: u64 = 1 << 4;

/// FCMP/FCMPE and FCCMP/FCCMPE: `p` bit 0 says whether the comparison happens (the condition
/// held); otherwise the result is the immediate NZCV in `p` bits 11..8. Returns NZCV in bits
/// 31..28.
fn h_fcmp(st: &mut CpuState, a: u64, b: u64, p: u64) -> u64 {
    if p & 1 == 0 {
        return ((p >> 8) & 0xf) << 28;
    }
    let sz = size_of_code(p >> 1);
    let mut env = FpEnv::new(st.fpcr, &mut st.fpsr);
    (fpu::compare(&mut env, sz, a, b, p & P_SIGNAL != 0) as u64) << 28
}

fn fcmp(t: &mut Translator, i: Insn) -> Flow {
    let Some(sz) = arith_size(i) else {
        return t.undefined(i);
    };
    let a = get_v(t, i.rn(), sz);
    let b = if i.bit(3) {
        t.konst(0)
    } else {
        get_v(t, i.rm(), sz)
    };
    let signal = if i.bit(4) { P_SIGNAL } else { 0 };
    let p = t.konst(1 | size_code(sz) << 1 | signal);
    let r = call(t, h_fcmp, a, b, p);
    t.op(Op::SetNzcv { src: r });
    Flow::Next
}

fn fccmp(t: &mut Translator, i: Insn) -> Flow {
    let Some(sz) = arith_size(i) else {
        return t.undefined(i);
    };
    let a = get_v(t, i.rn(), sz);
    let b = get_v(t, i.rm(), sz);
    let cond = t.temp();
    t.op(Op::Cond {
        dst: cond,
        cond: i.cond(),
    });
    let signal = if i.bit(4) { P_SIGNAL } else { 0 };
    let p = size_code(sz) << 1 | signal | (i.bits(3, 0) as u64) << 8;
    let p = t.bin_imm(BinOp::Or, Width::W64, cond, p);
    let r = call(t, h_fcmp, a, b, p);
    t.op(Op::SetNzcv { src: r });
    Flow::Next
}

fn fcsel(t: &mut Translator, i: Insn) -> Flow {
    let Some(sz) = arith_size(i) else {
        return t.undefined(i);
    };
    let a = get_v(t, i.rn(), sz);
    let b = get_v(t, i.rm(), sz);
    let cond = t.temp();
    t.op(Op::Cond {
        dst: cond,
        cond: i.cond(),
    });
    let dst = t.temp();
    t.op(Op::Select { dst, cond, a, b });
    set_v(t, i.rd(), dst, sz);
    Flow::Next
}

/// `VFPExpandImm`: the 8-bit immediate of FMOV as a value of `sz`.
pub(crate) fn expand_imm(imm8: u32, sz: FpSize) -> u64 {
    let imm8 = imm8 as u64;
    let sign = imm8 >> 7;
    let b = (imm8 >> 6) & 1;
    let cd = (imm8 >> 4) & 3;
    let efgh = imm8 & 0xf;
    let (e, f) = match sz {
        FpSize::H => (5, 10),
        FpSize::S => (8, 23),
        FpSize::D => (11, 52),
    };
    // exp = NOT(b) : Replicate(b, E-3) : cd
    let rep = if b == 1 { (1u64 << (e - 3)) - 1 } else { 0 };
    let exp = ((b ^ 1) << (e - 1)) | (rep << 2) | cd;
    (sign << (e + f)) | (exp << f) | (efgh << (f - 4))
}

fn fmov_imm(t: &mut Translator, i: Insn) -> Flow {
    let Some(sz) = arith_size(i) else {
        return t.undefined(i);
    };
    let v = t.konst(expand_imm(i.bits(20, 13), sz));
    set_v(t, i.rd(), v, sz);
    Flow::Next
}

// ---------------------------------------------------------------------------------------------
// Conversions

/// FP -> integer: `a` the FP value, `p` the packed parameters.
fn h_to_int(st: &mut CpuState, a: u64, _b: u64, p: u64) -> u64 {
    let sz = size_of_code(p >> P_SIZE_SHIFT);
    let mut env = FpEnv::new(st.fpcr, &mut st.fpsr);
    let rounding = rounding_of_code(p >> P_RMODE_SHIFT, &env);
    let fbits = ((p >> P_FBITS_SHIFT) & 0xff) as u32;
    let ibits = if p & P_I64 != 0 { 64 } else { 32 };
    fpu::to_fixed(&mut env, sz, a, fbits, p & P_UNSIGNED != 0, ibits, rounding)
}

/// Integer -> FP (rounding per FPCR).
fn h_from_int(st: &mut CpuState, x: u64, _b: u64, p: u64) -> u64 {
    let sz = size_of_code(p >> P_SIZE_SHIFT);
    let mut env = FpEnv::new(st.fpcr, &mut st.fpsr);
    let rounding = env.rounding();
    let fbits = ((p >> P_FBITS_SHIFT) & 0xff) as u32;
    let ibits = if p & P_I64 != 0 { 64 } else { 32 };
    fpu::from_fixed(&mut env, sz, x, fbits, p & P_UNSIGNED != 0, ibits, rounding)
}

/// Emit an FP <-> integer conversion. `to_int`: FCVT*; else SCVTF/UCVTF.
#[allow(clippy::too_many_arguments)]
fn emit_conv(
    t: &mut Translator,
    i: Insn,
    sz: FpSize,
    to_int: bool,
    unsigned: bool,
    rounding: Option<Rounding>,
    fbits: u32,
) {
    let w = if i.sf() { Width::W64 } else { Width::W32 };
    let mut p = size_code(sz) << P_SIZE_SHIFT | (fbits as u64) << P_FBITS_SHIFT;
    if unsigned {
        p |= P_UNSIGNED;
    }
    if i.sf() {
        p |= P_I64;
    }
    p |= rounding.map_or(RM_FPCR, rounding_code) << P_RMODE_SHIFT;
    let pk = t.konst(p);
    if to_int {
        let a = get_v(t, i.rn(), sz);
        let r = call(t, h_to_int, a, a, pk);
        t.set_x(i.rd(), r);
    } else {
        let x = t.get_reg(i.rn(), w);
        let r = call(t, h_from_int, x, x, pk);
        set_v(t, i.rd(), r, sz);
    }
}

fn conv_fixed(t: &mut Translator, i: Insn) -> Flow {
    let Some(sz) = arith_size(i) else {
        return t.undefined(i);
    };
    let scale = i.bits(15, 10);
    if !i.sf() && scale & 0x20 == 0 {
        return t.undefined(i);
    }
    let fbits = 64 - scale;
    match (i.bits(20, 19), i.bits(18, 16)) {
        (0b00, 0b010) => emit_conv(t, i, sz, false, false, None, fbits),
        (0b00, 0b011) => emit_conv(t, i, sz, false, true, None, fbits),
        (0b11, 0b000) => emit_conv(t, i, sz, true, false, Some(Rounding::Zero), fbits),
        (0b11, 0b001) => emit_conv(t, i, sz, true, true, Some(Rounding::Zero), fbits),
        _ => return t.undefined(i),
    }
    Flow::Next
}

fn conv_int(t: &mut Translator, i: Insn) -> Flow {
    let rmode = i.bits(20, 19);
    let opcode = i.bits(18, 16);
    let ftype = i.bits(23, 22);
    // FMOV (general).
    if opcode & 0b110 == 0b110 {
        let to_gen = opcode == 0b110;
        match (i.sf(), ftype, rmode) {
            (false, 0b00, 0b00) | (true, 0b01, 0b00) => {
                let sz = if i.sf() { FpSize::D } else { FpSize::S };
                if to_gen {
                    let v = get_v(t, i.rn(), sz);
                    t.set_x(i.rd(), v);
                } else {
                    let w = if i.sf() { Width::W64 } else { Width::W32 };
                    let x = t.get_reg(i.rn(), w);
                    set_v(t, i.rd(), x, sz);
                }
            }
            (true, 0b10, 0b01) => {
                if to_gen {
                    let dst = t.temp();
                    t.op(Op::GetVElem {
                        dst,
                        reg: i.rn(),
                        esize: 8,
                        idx: 1,
                    });
                    t.set_x(i.rd(), dst);
                } else {
                    let x = t.get_x(i.rn());
                    t.op(Op::SetVElem {
                        reg: i.rd(),
                        src: x,
                        esize: 8,
                        idx: 1,
                    });
                }
            }
            _ => return t.undefined(i),
        }
        return Flow::Next;
    }
    let Some(sz) = arith_size(i) else {
        return t.undefined(i);
    };
    let unsigned = opcode & 1 != 0;
    match (rmode, opcode) {
        (0b00, 0b010 | 0b011) => emit_conv(t, i, sz, false, unsigned, None, 0),
        (0b00, 0b100 | 0b101) => emit_conv(t, i, sz, true, unsigned, Some(Rounding::TieAway), 0),
        (_, 0b000 | 0b001) => {
            let r = Rounding::from_rmode(rmode);
            emit_conv(t, i, sz, true, unsigned, Some(r), 0)
        }
        _ => return t.undefined(i),
    }
    Flow::Next
}

#[cfg(test)]
mod tests;
