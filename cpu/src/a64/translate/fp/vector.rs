//! AdvSIMD floating point: three same, two-register misc, pairwise, across lanes, shift by
//! immediate (fixed-point conversions), by element and FMOV (vector, immediate), in vector
//! and scalar forms. Each instruction is one `Call` helper that decodes its fields and runs
//! [`crate::fpu`] per element; the translation-time handler rejects reserved encodings.

use super::{expand_imm, FpSize};
use crate::a64::{Flow, Insn, Row, Translator};
use crate::fpu::{self, Cmp, FpEnv, Rounding};
use crate::ir::{Helper, HelperError, Op};
use crate::mem::Mem;
use crate::row;
use crate::state::CpuState;

/// Vector three same: `0 Q U 01110 a sz 1 Rm opcode 1 Rn Rd`.
macro_rules! same {
    ($u:literal, $a:literal, $op:literal) => {
        concat!("0q", $u, "01110", $a, "z1mmmmm", $op, "1nnnnnddddd")
    };
}
/// Scalar three same: `01 U 11110 a sz 1 Rm opcode 1 Rn Rd`.
macro_rules! ssame {
    ($u:literal, $a:literal, $op:literal) => {
        concat!("01", $u, "11110", $a, "z1mmmmm", $op, "1nnnnnddddd")
    };
}
/// Vector two-register misc: `0 Q U 01110 a sz 10000 opcode 10 Rn Rd`.
macro_rules! misc {
    ($u:literal, $a:literal, $op:literal) => {
        concat!("0q", $u, "01110", $a, "z10000", $op, "10nnnnnddddd")
    };
}
/// Scalar two-register misc: `01 U 11110 a sz 10000 opcode 10 Rn Rd`.
macro_rules! smisc {
    ($u:literal, $a:literal, $op:literal) => {
        concat!("01", $u, "11110", $a, "z10000", $op, "10nnnnnddddd")
    };
}

pub const ROWS: &[Row] = &[
    // Three same (vector)
    row!(
        "FMAXNM_asimdsame_only",
        same!("0", "0", "11000"),
        same,
        AdvSimd
    ),
    row!(
        "FMLA_asimdsame_only",
        same!("0", "0", "11001"),
        same,
        AdvSimd
    ),
    row!(
        "FADD_asimdsame_only",
        same!("0", "0", "11010"),
        same,
        AdvSimd
    ),
    row!(
        "FMULX_asimdsame_only",
        same!("0", "0", "11011"),
        same,
        AdvSimd
    ),
    row!(
        "FCMEQ_asimdsame_only",
        same!("0", "0", "11100"),
        same,
        AdvSimd
    ),
    row!(
        "FMAX_asimdsame_only",
        same!("0", "0", "11110"),
        same,
        AdvSimd
    ),
    row!(
        "FRECPS_asimdsame_only",
        same!("0", "0", "11111"),
        same,
        AdvSimd
    ),
    row!(
        "FMINNM_asimdsame_only",
        same!("0", "1", "11000"),
        same,
        AdvSimd
    ),
    row!(
        "FMLS_asimdsame_only",
        same!("0", "1", "11001"),
        same,
        AdvSimd
    ),
    row!(
        "FSUB_asimdsame_only",
        same!("0", "1", "11010"),
        same,
        AdvSimd
    ),
    row!(
        "FMIN_asimdsame_only",
        same!("0", "1", "11110"),
        same,
        AdvSimd
    ),
    row!(
        "FRSQRTS_asimdsame_only",
        same!("0", "1", "11111"),
        same,
        AdvSimd
    ),
    row!(
        "FMAXNMP_asimdsame_only",
        same!("1", "0", "11000"),
        same,
        AdvSimd
    ),
    row!(
        "FADDP_asimdsame_only",
        same!("1", "0", "11010"),
        same,
        AdvSimd
    ),
    row!(
        "FMUL_asimdsame_only",
        same!("1", "0", "11011"),
        same,
        AdvSimd
    ),
    row!(
        "FCMGE_asimdsame_only",
        same!("1", "0", "11100"),
        same,
        AdvSimd
    ),
    row!(
        "FACGE_asimdsame_only",
        same!("1", "0", "11101"),
        same,
        AdvSimd
    ),
    row!(
        "FMAXP_asimdsame_only",
        same!("1", "0", "11110"),
        same,
        AdvSimd
    ),
    row!(
        "FDIV_asimdsame_only",
        same!("1", "0", "11111"),
        same,
        AdvSimd
    ),
    row!(
        "FMINNMP_asimdsame_only",
        same!("1", "1", "11000"),
        same,
        AdvSimd
    ),
    row!(
        "FABD_asimdsame_only",
        same!("1", "1", "11010"),
        same,
        AdvSimd
    ),
    row!(
        "FCMGT_asimdsame_only",
        same!("1", "1", "11100"),
        same,
        AdvSimd
    ),
    row!(
        "FACGT_asimdsame_only",
        same!("1", "1", "11101"),
        same,
        AdvSimd
    ),
    row!(
        "FMINP_asimdsame_only",
        same!("1", "1", "11110"),
        same,
        AdvSimd
    ),
    // Three same (scalar)
    row!(
        "FMULX_asisdsame_only",
        ssame!("0", "0", "11011"),
        same,
        AdvSimd
    ),
    row!(
        "FCMEQ_asisdsame_only",
        ssame!("0", "0", "11100"),
        same,
        AdvSimd
    ),
    row!(
        "FRECPS_asisdsame_only",
        ssame!("0", "0", "11111"),
        same,
        AdvSimd
    ),
    row!(
        "FRSQRTS_asisdsame_only",
        ssame!("0", "1", "11111"),
        same,
        AdvSimd
    ),
    row!(
        "FCMGE_asisdsame_only",
        ssame!("1", "0", "11100"),
        same,
        AdvSimd
    ),
    row!(
        "FACGE_asisdsame_only",
        ssame!("1", "0", "11101"),
        same,
        AdvSimd
    ),
    row!(
        "FABD_asisdsame_only",
        ssame!("1", "1", "11010"),
        same,
        AdvSimd
    ),
    row!(
        "FCMGT_asisdsame_only",
        ssame!("1", "1", "11100"),
        same,
        AdvSimd
    ),
    row!(
        "FACGT_asisdsame_only",
        ssame!("1", "1", "11101"),
        same,
        AdvSimd
    ),
    // Two-register misc (vector)
    row!("FCVTN_asimdmisc_N", misc!("0", "0", "10110"), misc, AdvSimd),
    row!("FCVTL_asimdmisc_L", misc!("0", "0", "10111"), misc, AdvSimd),
    row!(
        "FRINTN_asimdmisc_R",
        misc!("0", "0", "11000"),
        misc,
        AdvSimd
    ),
    row!(
        "FRINTM_asimdmisc_R",
        misc!("0", "0", "11001"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTNS_asimdmisc_R",
        misc!("0", "0", "11010"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTMS_asimdmisc_R",
        misc!("0", "0", "11011"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTAS_asimdmisc_R",
        misc!("0", "0", "11100"),
        misc,
        AdvSimd
    ),
    row!("SCVTF_asimdmisc_R", misc!("0", "0", "11101"), misc, AdvSimd),
    row!(
        "FCMGT_asimdmisc_FZ",
        misc!("0", "1", "01100"),
        misc,
        AdvSimd
    ),
    row!(
        "FCMEQ_asimdmisc_FZ",
        misc!("0", "1", "01101"),
        misc,
        AdvSimd
    ),
    row!(
        "FCMLT_asimdmisc_FZ",
        misc!("0", "1", "01110"),
        misc,
        AdvSimd
    ),
    row!("FABS_asimdmisc_R", misc!("0", "1", "01111"), misc, AdvSimd),
    row!(
        "FRINTP_asimdmisc_R",
        misc!("0", "1", "11000"),
        misc,
        AdvSimd
    ),
    row!(
        "FRINTZ_asimdmisc_R",
        misc!("0", "1", "11001"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTPS_asimdmisc_R",
        misc!("0", "1", "11010"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTZS_asimdmisc_R",
        misc!("0", "1", "11011"),
        misc,
        AdvSimd
    ),
    row!(
        "FRECPE_asimdmisc_R",
        misc!("0", "1", "11101"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTXN_asimdmisc_N",
        misc!("1", "0", "10110"),
        misc,
        AdvSimd
    ),
    row!(
        "FRINTA_asimdmisc_R",
        misc!("1", "0", "11000"),
        misc,
        AdvSimd
    ),
    row!(
        "FRINTX_asimdmisc_R",
        misc!("1", "0", "11001"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTNU_asimdmisc_R",
        misc!("1", "0", "11010"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTMU_asimdmisc_R",
        misc!("1", "0", "11011"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTAU_asimdmisc_R",
        misc!("1", "0", "11100"),
        misc,
        AdvSimd
    ),
    row!("UCVTF_asimdmisc_R", misc!("1", "0", "11101"), misc, AdvSimd),
    row!(
        "FCMGE_asimdmisc_FZ",
        misc!("1", "1", "01100"),
        misc,
        AdvSimd
    ),
    row!(
        "FCMLE_asimdmisc_FZ",
        misc!("1", "1", "01101"),
        misc,
        AdvSimd
    ),
    row!("FNEG_asimdmisc_R", misc!("1", "1", "01111"), misc, AdvSimd),
    row!(
        "FRINTI_asimdmisc_R",
        misc!("1", "1", "11001"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTPU_asimdmisc_R",
        misc!("1", "1", "11010"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTZU_asimdmisc_R",
        misc!("1", "1", "11011"),
        misc,
        AdvSimd
    ),
    row!(
        "FRSQRTE_asimdmisc_R",
        misc!("1", "1", "11101"),
        misc,
        AdvSimd
    ),
    row!("FSQRT_asimdmisc_R", misc!("1", "1", "11111"), misc, AdvSimd),
    // Two-register misc (scalar)
    row!(
        "FCVTNS_asisdmisc_R",
        smisc!("0", "0", "11010"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTMS_asisdmisc_R",
        smisc!("0", "0", "11011"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTAS_asisdmisc_R",
        smisc!("0", "0", "11100"),
        misc,
        AdvSimd
    ),
    row!(
        "SCVTF_asisdmisc_R",
        smisc!("0", "0", "11101"),
        misc,
        AdvSimd
    ),
    row!(
        "FCMGT_asisdmisc_FZ",
        smisc!("0", "1", "01100"),
        misc,
        AdvSimd
    ),
    row!(
        "FCMEQ_asisdmisc_FZ",
        smisc!("0", "1", "01101"),
        misc,
        AdvSimd
    ),
    row!(
        "FCMLT_asisdmisc_FZ",
        smisc!("0", "1", "01110"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTPS_asisdmisc_R",
        smisc!("0", "1", "11010"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTZS_asisdmisc_R",
        smisc!("0", "1", "11011"),
        misc,
        AdvSimd
    ),
    row!(
        "FRECPE_asisdmisc_R",
        smisc!("0", "1", "11101"),
        misc,
        AdvSimd
    ),
    row!(
        "FRECPX_asisdmisc_R",
        smisc!("0", "1", "11111"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTXN_asisdmisc_N",
        smisc!("1", "0", "10110"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTNU_asisdmisc_R",
        smisc!("1", "0", "11010"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTMU_asisdmisc_R",
        smisc!("1", "0", "11011"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTAU_asisdmisc_R",
        smisc!("1", "0", "11100"),
        misc,
        AdvSimd
    ),
    row!(
        "UCVTF_asisdmisc_R",
        smisc!("1", "0", "11101"),
        misc,
        AdvSimd
    ),
    row!(
        "FCMGE_asisdmisc_FZ",
        smisc!("1", "1", "01100"),
        misc,
        AdvSimd
    ),
    row!(
        "FCMLE_asisdmisc_FZ",
        smisc!("1", "1", "01101"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTPU_asisdmisc_R",
        smisc!("1", "1", "11010"),
        misc,
        AdvSimd
    ),
    row!(
        "FCVTZU_asisdmisc_R",
        smisc!("1", "1", "11011"),
        misc,
        AdvSimd
    ),
    row!(
        "FRSQRTE_asisdmisc_R",
        smisc!("1", "1", "11101"),
        misc,
        AdvSimd
    ),
    // Scalar pairwise
    row!(
        "FMAXNMP_asisdpair_only",
        "011111100z110000110010nnnnnddddd",
        pair,
        AdvSimd
    ),
    row!(
        "FADDP_asisdpair_only",
        "011111100z110000110110nnnnnddddd",
        pair,
        AdvSimd
    ),
    row!(
        "FMAXP_asisdpair_only",
        "011111100z110000111110nnnnnddddd",
        pair,
        AdvSimd
    ),
    row!(
        "FMINNMP_asisdpair_only",
        "011111101z110000110010nnnnnddddd",
        pair,
        AdvSimd
    ),
    row!(
        "FMINP_asisdpair_only",
        "011111101z110000111110nnnnnddddd",
        pair,
        AdvSimd
    ),
    // Across lanes
    row!(
        "FMAXNMV_asimdall_only",
        "0q1011100z110000110010nnnnnddddd",
        across,
        AdvSimd
    ),
    row!(
        "FMAXV_asimdall_only",
        "0q1011100z110000111110nnnnnddddd",
        across,
        AdvSimd
    ),
    row!(
        "FMINNMV_asimdall_only",
        "0q1011101z110000110010nnnnnddddd",
        across,
        AdvSimd
    ),
    row!(
        "FMINV_asimdall_only",
        "0q1011101z110000111110nnnnnddddd",
        across,
        AdvSimd
    ),
    // Shift by immediate: fixed-point conversions (immh 01xx: S, 1xxx: D; the other values
    // are FP16 or the modified immediate group)
    row!(
        "SCVTF_asimdshf_C",
        "0q001111001hhbbb111001nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    row!(
        "SCVTF_asimdshf_C",
        "0q00111101hhhbbb111001nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    row!(
        "UCVTF_asimdshf_C",
        "0q101111001hhbbb111001nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    row!(
        "UCVTF_asimdshf_C",
        "0q10111101hhhbbb111001nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    row!(
        "FCVTZS_asimdshf_C",
        "0q001111001hhbbb111111nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    row!(
        "FCVTZS_asimdshf_C",
        "0q00111101hhhbbb111111nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    row!(
        "FCVTZU_asimdshf_C",
        "0q101111001hhbbb111111nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    row!(
        "FCVTZU_asimdshf_C",
        "0q10111101hhhbbb111111nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    row!(
        "SCVTF_asisdshf_C",
        "01011111001hhbbb111001nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    row!(
        "SCVTF_asisdshf_C",
        "0101111101hhhbbb111001nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    row!(
        "UCVTF_asisdshf_C",
        "01111111001hhbbb111001nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    row!(
        "UCVTF_asisdshf_C",
        "0111111101hhhbbb111001nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    row!(
        "FCVTZS_asisdshf_C",
        "01011111001hhbbb111111nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    row!(
        "FCVTZS_asisdshf_C",
        "0101111101hhhbbb111111nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    row!(
        "FCVTZU_asisdshf_C",
        "01111111001hhbbb111111nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    row!(
        "FCVTZU_asisdshf_C",
        "0111111101hhhbbb111111nnnnnddddd",
        shift_fixed,
        AdvSimd
    ),
    // By element (vector and scalar)
    row!(
        "FMLA_asimdelem_R_SD",
        "0q0011111zlmmmmm0001h0nnnnnddddd",
        by_elem,
        AdvSimd
    ),
    row!(
        "FMLS_asimdelem_R_SD",
        "0q0011111zlmmmmm0101h0nnnnnddddd",
        by_elem,
        AdvSimd
    ),
    row!(
        "FMUL_asimdelem_R_SD",
        "0q0011111zlmmmmm1001h0nnnnnddddd",
        by_elem,
        AdvSimd
    ),
    row!(
        "FMULX_asimdelem_R_SD",
        "0q1011111zlmmmmm1001h0nnnnnddddd",
        by_elem,
        AdvSimd
    ),
    row!(
        "FMLA_asisdelem_R_SD",
        "010111111zlmmmmm0001h0nnnnnddddd",
        by_elem,
        AdvSimd
    ),
    row!(
        "FMLS_asisdelem_R_SD",
        "010111111zlmmmmm0101h0nnnnnddddd",
        by_elem,
        AdvSimd
    ),
    row!(
        "FMUL_asisdelem_R_SD",
        "010111111zlmmmmm1001h0nnnnnddddd",
        by_elem,
        AdvSimd
    ),
    row!(
        "FMULX_asisdelem_R_SD",
        "011111111zlmmmmm1001h0nnnnnddddd",
        by_elem,
        AdvSimd
    ),
    // Modified immediate: FMOV (vector, immediate)
    row!(
        "FMOV_asimdimm_S_s",
        "0q00111100000abc111101defghddddd",
        fmov_vimm,
        AdvSimd
    ),
    row!(
        "FMOV_asimdimm_D2_d",
        "0q10111100000abc111101defghddddd",
        fmov_vimm,
        AdvSimd
    ),
];

// ---------------------------------------------------------------------------------------------
// Field access

fn q(i: Insn) -> bool {
    i.bit(30)
}
fn u(i: Insn) -> bool {
    i.bit(29)
}
/// Scalar (asisd) forms have bit 28 set.
fn is_scalar(i: Insn) -> bool {
    i.bit(28)
}
fn fsize(i: Insn) -> FpSize {
    if i.bit(22) {
        FpSize::D
    } else {
        FpSize::S
    }
}

fn elem(v: u128, bits: u32, e: u32) -> u64 {
    let x = v >> (bits * e);
    if bits == 64 {
        x as u64
    } else {
        (x as u64) & ((1 << bits) - 1)
    }
}

fn put(v: &mut u128, bits: u32, e: u32, x: u64) {
    let m = if bits == 64 {
        u64::MAX as u128
    } else {
        (1u128 << bits) - 1
    };
    *v = (*v & !(m << (bits * e))) | ((x as u128 & m) << (bits * e));
}

/// Number of elements the instruction processes: 1 for scalar forms, else Q-sized.
fn lanes(i: Insn, bits: u32) -> u32 {
    if is_scalar(i) {
        1
    } else if q(i) {
        128 / bits
    } else {
        64 / bits
    }
}

fn emit(t: &mut Translator, f: Helper, i: Insn) -> Flow {
    t.op(Op::Call { f, insn: i.0 });
    Flow::Next
}

fn all_ones(bits: u32, cond: bool) -> u64 {
    if !cond {
        0
    } else if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    }
}

// ---------------------------------------------------------------------------------------------
// Three same

fn same(t: &mut Translator, i: Insn) -> Flow {
    // 64-bit elements need a 128-bit vector.
    if !is_scalar(i) && i.bit(22) && !q(i) {
        return t.undefined(i);
    }
    emit(t, h_same, i)
}

/// The three-same operation on one element pair (`d` the old destination element).
fn same_op(env: &mut FpEnv, sz: FpSize, key: (bool, bool, u32), n: u64, m: u64, d: u64) -> u64 {
    let bits = sz.bits();
    match key {
        // key = (U, a, opcode<2:0>)
        (false, false, 0b000) => fpu::max_num(env, sz, n, m),
        (false, false, 0b001) => fpu::mul_add(env, sz, d, n, m),
        (false, false, 0b010) => fpu::add(env, sz, n, m),
        (false, false, 0b011) => fpu::mulx(env, sz, n, m),
        (false, false, 0b100) => all_ones(bits, fpu::compare_cond(env, sz, n, m, Cmp::Eq)),
        (false, false, 0b110) => fpu::max(env, sz, n, m),
        (false, false, 0b111) => fpu::recip_step(env, sz, n, m),
        (false, true, 0b000) => fpu::min_num(env, sz, n, m),
        (false, true, 0b001) => fpu::mul_add(env, sz, d, fpu::neg(sz, n), m),
        (false, true, 0b010) => fpu::sub(env, sz, n, m),
        (false, true, 0b110) => fpu::min(env, sz, n, m),
        (false, true, 0b111) => fpu::rsqrt_step(env, sz, n, m),
        (true, false, 0b000) => fpu::max_num(env, sz, n, m),
        (true, false, 0b010) => fpu::add(env, sz, n, m),
        (true, false, 0b011) => fpu::mul(env, sz, n, m),
        (true, false, 0b100) => all_ones(bits, fpu::compare_cond(env, sz, n, m, Cmp::Ge)),
        (true, false, 0b101) => all_ones(
            bits,
            fpu::compare_cond(env, sz, fpu::abs(sz, n), fpu::abs(sz, m), Cmp::Ge),
        ),
        (true, false, 0b110) => fpu::max(env, sz, n, m),
        (true, false, 0b111) => fpu::div(env, sz, n, m),
        (true, true, 0b000) => fpu::min_num(env, sz, n, m),
        (true, true, 0b010) => fpu::abd(env, sz, n, m),
        (true, true, 0b100) => all_ones(bits, fpu::compare_cond(env, sz, n, m, Cmp::Gt)),
        (true, true, 0b101) => all_ones(
            bits,
            fpu::compare_cond(env, sz, fpu::abs(sz, n), fpu::abs(sz, m), Cmp::Gt),
        ),
        _ => fpu::min(env, sz, n, m), // (true, true, 0b110) FMINP
    }
}

fn h_same(st: &mut CpuState, _mem: &mut dyn Mem, insn: u32) -> Result<(), HelperError> {
    let i = Insn(insn);
    let sz = fsize(i);
    let bits = sz.bits();
    let key = (u(i), i.bit(23), i.bits(13, 11));
    let pairwise = !is_scalar(i)
        && u(i)
        && match i.bits(13, 11) {
            0b000 | 0b110 => true,
            0b010 => !i.bit(23), // FADDP (FABD is not pairwise)
            _ => false,
        };
    let (vn, vm, vd) = (
        st.v[i.rn() as usize],
        st.v[i.rm() as usize],
        st.v[i.rd() as usize],
    );
    let n_lanes = lanes(i, bits);
    let mut env = FpEnv::new(st.fpcr, &mut st.fpsr);
    let mut r = 0u128;
    for e in 0..n_lanes {
        let (a, b) = if pairwise {
            // Pairs of Vm:Vn concatenated (Vn the low half).
            let pick = |k: u32| {
                if k < n_lanes {
                    elem(vn, bits, k)
                } else {
                    elem(vm, bits, k - n_lanes)
                }
            };
            (pick(2 * e), pick(2 * e + 1))
        } else {
            (elem(vn, bits, e), elem(vm, bits, e))
        };
        let x = same_op(&mut env, sz, key, a, b, elem(vd, bits, e));
        put(&mut r, bits, e, x);
    }
    st.v[i.rd() as usize] = r;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Two-register misc

fn misc(t: &mut Translator, i: Insn) -> Flow {
    let op = i.bits(16, 12);
    let narrow_or_long = op == 0b10110 || op == 0b10111;
    if narrow_or_long {
        // FCVTXN needs double sources.
        if u(i) && !i.bit(22) {
            return t.undefined(i);
        }
    } else if !is_scalar(i) && i.bit(22) && !q(i) {
        return t.undefined(i);
    }
    emit(t, h_misc, i)
}

fn h_misc(st: &mut CpuState, _mem: &mut dyn Mem, insn: u32) -> Result<(), HelperError> {
    let i = Insn(insn);
    let op = i.bits(16, 12);
    let a = i.bit(23);
    let un = u(i);
    let vn = st.v[i.rn() as usize];
    let rd = i.rd() as usize;
    let fpcr = st.fpcr;
    let mut env = FpEnv::new(fpcr, &mut st.fpsr);
    if op == 0b10110 || op == 0b10111 {
        // FCVTN/FCVTXN (narrow) and FCVTL (lengthen).
        let (wide, narrow) = if i.bit(22) {
            (FpSize::D, FpSize::S)
        } else {
            (FpSize::S, FpSize::H)
        };
        let (wb, nb) = (wide.bits(), narrow.bits());
        let n_wide = 128 / wb;
        if op == 0b10111 {
            let part = if q(i) { n_wide } else { 0 };
            let mut r = 0u128;
            for e in 0..n_wide {
                let x = elem(vn, nb, part + e);
                let y = fpu::convert(&mut env, narrow, wide, x, env_rounding(fpcr));
                put(&mut r, wb, e, y);
            }
            st.v[rd] = r;
        } else {
            let rounding = if un {
                Rounding::Odd
            } else {
                env_rounding(fpcr)
            };
            let count = if is_scalar(i) { 1 } else { n_wide };
            let mut res = 0u64;
            for e in 0..count {
                let x = elem(vn, wb, e);
                let y = fpu::convert(&mut env, wide, narrow, x, rounding);
                let mut tmp = res as u128;
                put(&mut tmp, nb, e, y);
                res = tmp as u64;
            }
            if is_scalar(i) {
                st.v[rd] = res as u128;
            } else if q(i) {
                let old = st.v[rd];
                st.v[rd] = (old & u64::MAX as u128) | (res as u128) << 64;
            } else {
                st.v[rd] = res as u128;
            }
        }
        return Ok(());
    }
    let sz = fsize(i);
    let bits = sz.bits();
    let n_lanes = lanes(i, bits);
    let mut r = 0u128;
    for e in 0..n_lanes {
        let x = elem(vn, bits, e);
        let to_int = |env: &mut FpEnv, rounding, unsigned| {
            fpu::to_fixed(env, sz, x, 0, unsigned, bits, rounding)
        };
        let y = match (un, a, op) {
            (_, false, 0b11000) => {
                let rm = if un {
                    Rounding::TieAway
                } else {
                    Rounding::TieEven
                };
                fpu::round_int(&mut env, sz, x, rm, false)
            }
            (false, false, 0b11001) => fpu::round_int(&mut env, sz, x, Rounding::NegInf, false),
            (true, false, 0b11001) => {
                let rm = env.rounding();
                fpu::round_int(&mut env, sz, x, rm, true)
            }
            (_, false, 0b11010) => to_int(&mut env, Rounding::TieEven, un),
            (_, false, 0b11011) => to_int(&mut env, Rounding::NegInf, un),
            (_, false, 0b11100) => to_int(&mut env, Rounding::TieAway, un),
            (_, false, _) => {
                // 11101 SCVTF/UCVTF
                let rm = env.rounding();
                fpu::from_fixed(&mut env, sz, x, 0, un, bits, rm)
            }
            (false, true, 0b01100) => {
                all_ones(bits, fpu::compare_cond(&mut env, sz, x, 0, Cmp::Gt))
            }
            (false, true, 0b01101) => {
                all_ones(bits, fpu::compare_cond(&mut env, sz, x, 0, Cmp::Eq))
            }
            (false, true, 0b01110) => {
                all_ones(bits, fpu::compare_cond(&mut env, sz, 0, x, Cmp::Gt))
            }
            (true, true, 0b01100) => all_ones(bits, fpu::compare_cond(&mut env, sz, x, 0, Cmp::Ge)),
            (true, true, 0b01101) => all_ones(bits, fpu::compare_cond(&mut env, sz, 0, x, Cmp::Ge)),
            (false, true, 0b01111) => fpu::abs(sz, x),
            (true, true, 0b01111) => fpu::neg(sz, x),
            (false, true, 0b11000) => fpu::round_int(&mut env, sz, x, Rounding::PosInf, false),
            (false, true, 0b11001) => fpu::round_int(&mut env, sz, x, Rounding::Zero, false),
            (true, true, 0b11001) => {
                let rm = env.rounding();
                fpu::round_int(&mut env, sz, x, rm, false)
            }
            (_, true, 0b11010) => to_int(&mut env, Rounding::PosInf, un),
            (_, true, 0b11011) => to_int(&mut env, Rounding::Zero, un),
            (false, true, 0b11101) => fpu::recip_estimate(&mut env, sz, x),
            (true, true, 0b11101) => fpu::rsqrt_estimate(&mut env, sz, x),
            (false, true, _) => fpu::recpx(&mut env, sz, x), // 11111 (scalar only)
            (true, true, _) => fpu::sqrt(&mut env, sz, x),   // 11111
        };
        put(&mut r, bits, e, y);
    }
    st.v[rd] = r;
    Ok(())
}

fn env_rounding(fpcr: u32) -> Rounding {
    Rounding::from_rmode(fpcr >> crate::state::fpcr::RMODE_SHIFT)
}

// ---------------------------------------------------------------------------------------------
// Pairwise and across lanes

/// The reduction operation selected by a:opcode<4..0> (FMAXNM/FADD/FMAX/FMINNM/FMIN).
fn reduce_op(env: &mut FpEnv, sz: FpSize, a: bool, op: u32, x: u64, y: u64) -> u64 {
    match (a, op) {
        (false, 0b01100) => fpu::max_num(env, sz, x, y),
        (false, 0b01101) => fpu::add(env, sz, x, y),
        (false, _) => fpu::max(env, sz, x, y),
        (true, 0b01100) => fpu::min_num(env, sz, x, y),
        (true, _) => fpu::min(env, sz, x, y),
    }
}

fn pair(t: &mut Translator, i: Insn) -> Flow {
    emit(t, h_pair, i)
}

fn h_pair(st: &mut CpuState, _mem: &mut dyn Mem, insn: u32) -> Result<(), HelperError> {
    let i = Insn(insn);
    let sz = fsize(i);
    let bits = sz.bits();
    let vn = st.v[i.rn() as usize];
    let mut env = FpEnv::new(st.fpcr, &mut st.fpsr);
    let r = reduce_op(
        &mut env,
        sz,
        i.bit(23),
        i.bits(16, 12),
        elem(vn, bits, 0),
        elem(vn, bits, 1),
    );
    st.v[i.rd() as usize] = r as u128;
    Ok(())
}

fn across(t: &mut Translator, i: Insn) -> Flow {
    // Only the 4S form exists in v8.0.
    if i.bit(22) || !q(i) {
        return t.undefined(i);
    }
    emit(t, h_across, i)
}

fn h_across(st: &mut CpuState, _mem: &mut dyn Mem, insn: u32) -> Result<(), HelperError> {
    let i = Insn(insn);
    let sz = FpSize::S;
    let vn = st.v[i.rn() as usize];
    let (a, op) = (i.bit(23), i.bits(16, 12));
    let mut env = FpEnv::new(st.fpcr, &mut st.fpsr);
    let e = |k| elem(vn, 32, k);
    let lo = reduce_op(&mut env, sz, a, op, e(0), e(1));
    let hi = reduce_op(&mut env, sz, a, op, e(2), e(3));
    let r = reduce_op(&mut env, sz, a, op, lo, hi);
    st.v[i.rd() as usize] = r as u128;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fixed-point conversions by immediate

fn shift_fixed(t: &mut Translator, i: Insn) -> Flow {
    // immh<3> selects 64-bit elements, which need Q=1 in the vector form.
    if !is_scalar(i) && i.bit(22) && !q(i) {
        return t.undefined(i);
    }
    emit(t, h_shift_fixed, i)
}

fn h_shift_fixed(st: &mut CpuState, _mem: &mut dyn Mem, insn: u32) -> Result<(), HelperError> {
    let i = Insn(insn);
    let sz = fsize(i);
    let bits = sz.bits();
    let immhb = i.bits(22, 16);
    let fbits = 2 * bits - immhb;
    let un = u(i);
    let to_int = i.bits(15, 11) == 0b11111;
    let vn = st.v[i.rn() as usize];
    let n_lanes = lanes(i, bits);
    let mut env = FpEnv::new(st.fpcr, &mut st.fpsr);
    let rounding = env.rounding();
    let mut r = 0u128;
    for e in 0..n_lanes {
        let x = elem(vn, bits, e);
        let y = if to_int {
            fpu::to_fixed(&mut env, sz, x, fbits, un, bits, Rounding::Zero)
        } else {
            fpu::from_fixed(&mut env, sz, x, fbits, un, bits, rounding)
        };
        put(&mut r, bits, e, y);
    }
    st.v[i.rd() as usize] = r;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// By element

fn elem_index(i: Insn) -> u32 {
    if i.bit(22) {
        i.bit(11) as u32
    } else {
        (i.bit(11) as u32) << 1 | i.bit(21) as u32
    }
}

fn by_elem(t: &mut Translator, i: Insn) -> Flow {
    if i.bit(22) && (i.bit(21) || (!is_scalar(i) && !q(i))) {
        return t.undefined(i);
    }
    emit(t, h_elem, i)
}

fn h_elem(st: &mut CpuState, _mem: &mut dyn Mem, insn: u32) -> Result<(), HelperError> {
    let i = Insn(insn);
    let sz = fsize(i);
    let bits = sz.bits();
    let rm = i.bits(20, 16) as usize;
    let m = elem(st.v[rm], bits, elem_index(i));
    let vn = st.v[i.rn() as usize];
    let vd = st.v[i.rd() as usize];
    let n_lanes = lanes(i, bits);
    let op = i.bits(15, 12);
    let mut env = FpEnv::new(st.fpcr, &mut st.fpsr);
    let mut r = 0u128;
    for e in 0..n_lanes {
        let n = elem(vn, bits, e);
        let y = match op {
            0b0001 => fpu::mul_add(&mut env, sz, elem(vd, bits, e), n, m),
            0b0101 => fpu::mul_add(&mut env, sz, elem(vd, bits, e), fpu::neg(sz, n), m),
            _ if u(i) => fpu::mulx(&mut env, sz, n, m),
            _ => fpu::mul(&mut env, sz, n, m),
        };
        put(&mut r, bits, e, y);
    }
    st.v[i.rd() as usize] = r;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// FMOV (vector, immediate)

fn fmov_vimm(t: &mut Translator, i: Insn) -> Flow {
    let imm8 = i.bits(18, 16) << 5 | i.bits(9, 5);
    let (lo, hi) = if u(i) {
        if !q(i) {
            return t.undefined(i);
        }
        let d = expand_imm(imm8, FpSize::D);
        (d, d)
    } else {
        let s = expand_imm(imm8, FpSize::S);
        let d = s << 32 | s;
        (d, if q(i) { d } else { 0 })
    };
    let rd = i.rd();
    let lo = t.konst(lo);
    t.op(Op::SetVScalar {
        reg: rd,
        src: lo,
        esize: 8,
    });
    if hi != 0 {
        let hi = t.konst(hi);
        t.op(Op::SetVElem {
            reg: rd,
            src: hi,
            esize: 8,
            idx: 1,
        });
    }
    Flow::Next
}
