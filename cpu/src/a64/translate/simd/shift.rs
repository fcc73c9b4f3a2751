//! AdvSIMD shift by immediate and scalar shift by immediate (integer forms; the fixed-point
//! conversions SCVTF/UCVTF/FCVTZS/FCVTZU of this group are in `fp.rs`).
//!
//! The element size is the highest set bit of `immh`; `immh` = 0 is the modified immediate
//! group, so each instruction has one row per element size and never matches `immh` = 0.

use super::lanes::{ext, long, map, mask, narrow, q, scalar, shift, u, L};
use super::total;
use crate::a64::{Insn, Row};

/// One row per element size (B, H, S, D). `$pre` is bits 31:23, `$post` bits 15:0.
macro_rules! bhsd {
    ($name:literal, $pre:literal, $post:literal, $check:expr, $h:expr) => {
        &[
            simd_row!($name, concat!($pre, "0001bbb", $post), $check, $h),
            simd_row!($name, concat!($pre, "001hbbb", $post), $check, $h),
            simd_row!($name, concat!($pre, "01hhbbb", $post), $check, $h),
            simd_row!($name, concat!($pre, "1hhhbbb", $post), $check, $h),
        ]
    };
}
/// B, H and S only (narrowing and widening shifts).
macro_rules! bhs {
    ($name:literal, $pre:literal, $post:literal, $h:expr) => {
        bhs_translated!($name, $pre, $post, |t, i| {
            $crate::a64::translate::simd::lanes::emit(t, i, true, $h)
        })
    };
}
/// B, H and S rows translated by `$f` (a `fn(&mut Translator, Insn) -> Flow`).
macro_rules! bhs_translated {
    ($name:literal, $pre:literal, $post:literal, $f:expr) => {
        &[
            $crate::row!($name, concat!($pre, "0001bbb", $post), $f, AdvSimd),
            $crate::row!($name, concat!($pre, "001hbbb", $post), $f, AdvSimd),
            $crate::row!($name, concat!($pre, "01hhbbb", $post), $f, AdvSimd),
        ]
    };
}
/// D only (most scalar shifts).
macro_rules! d {
    ($name:literal, $pre:literal, $post:literal, $h:expr) => {
        &[simd_row!(
            $name,
            concat!($pre, "1hhhbbb", $post),
            |_| true,
            $h
        )]
    };
}

/// Vector forms: 64-bit elements need Q=1.
fn vec_ok(i: Insn) -> bool {
    !i.bit(22) || q(i)
}

const PARTS: &[&[Row]] = &[
    bhsd!(
        "SSHR_asimdshf_R",
        "0q0011110",
        "000001nnnnnddddd",
        vec_ok,
        shr
    ),
    bhsd!(
        "USHR_asimdshf_R",
        "0q1011110",
        "000001nnnnnddddd",
        vec_ok,
        shr
    ),
    bhsd!(
        "SSRA_asimdshf_R",
        "0q0011110",
        "000101nnnnnddddd",
        vec_ok,
        shr
    ),
    bhsd!(
        "USRA_asimdshf_R",
        "0q1011110",
        "000101nnnnnddddd",
        vec_ok,
        shr
    ),
    bhsd!(
        "SRSHR_asimdshf_R",
        "0q0011110",
        "001001nnnnnddddd",
        vec_ok,
        shr
    ),
    bhsd!(
        "URSHR_asimdshf_R",
        "0q1011110",
        "001001nnnnnddddd",
        vec_ok,
        shr
    ),
    bhsd!(
        "SRSRA_asimdshf_R",
        "0q0011110",
        "001101nnnnnddddd",
        vec_ok,
        shr
    ),
    bhsd!(
        "URSRA_asimdshf_R",
        "0q1011110",
        "001101nnnnnddddd",
        vec_ok,
        shr
    ),
    bhsd!(
        "SRI_asimdshf_R",
        "0q1011110",
        "010001nnnnnddddd",
        vec_ok,
        sri
    ),
    bhsd!(
        "SHL_asimdshf_R",
        "0q0011110",
        "010101nnnnnddddd",
        vec_ok,
        shl
    ),
    bhsd!(
        "SLI_asimdshf_R",
        "0q1011110",
        "010101nnnnnddddd",
        vec_ok,
        shl
    ),
    bhsd!(
        "SQSHLU_asimdshf_R",
        "0q1011110",
        "011001nnnnnddddd",
        vec_ok,
        qshl
    ),
    bhsd!(
        "SQSHL_asimdshf_R",
        "0q0011110",
        "011101nnnnnddddd",
        vec_ok,
        qshl
    ),
    bhsd!(
        "UQSHL_asimdshf_R",
        "0q1011110",
        "011101nnnnnddddd",
        vec_ok,
        qshl
    ),
    bhs_translated!(
        "SHRN_asimdshf_N",
        "0q0011110",
        "100001nnnnnddddd",
        super::swar::shrn
    ),
    bhs!("SQSHRUN_asimdshf_N", "0q1011110", "100001nnnnnddddd", shrn),
    bhs!("RSHRN_asimdshf_N", "0q0011110", "100011nnnnnddddd", shrn),
    bhs!("SQRSHRUN_asimdshf_N", "0q1011110", "100011nnnnnddddd", shrn),
    bhs!("SQSHRN_asimdshf_N", "0q0011110", "100101nnnnnddddd", shrn),
    bhs!("UQSHRN_asimdshf_N", "0q1011110", "100101nnnnnddddd", shrn),
    bhs!("SQRSHRN_asimdshf_N", "0q0011110", "100111nnnnnddddd", shrn),
    bhs!("UQRSHRN_asimdshf_N", "0q1011110", "100111nnnnnddddd", shrn),
    bhs!("SSHLL_asimdshf_L", "0q0011110", "101001nnnnnddddd", shll),
    bhs!("USHLL_asimdshf_L", "0q1011110", "101001nnnnnddddd", shll),
    // Scalar shift by immediate
    d!("SSHR_asisdshf_R", "010111110", "000001nnnnnddddd", shr),
    d!("USHR_asisdshf_R", "011111110", "000001nnnnnddddd", shr),
    d!("SSRA_asisdshf_R", "010111110", "000101nnnnnddddd", shr),
    d!("USRA_asisdshf_R", "011111110", "000101nnnnnddddd", shr),
    d!("SRSHR_asisdshf_R", "010111110", "001001nnnnnddddd", shr),
    d!("URSHR_asisdshf_R", "011111110", "001001nnnnnddddd", shr),
    d!("SRSRA_asisdshf_R", "010111110", "001101nnnnnddddd", shr),
    d!("URSRA_asisdshf_R", "011111110", "001101nnnnnddddd", shr),
    d!("SRI_asisdshf_R", "011111110", "010001nnnnnddddd", sri),
    d!("SHL_asisdshf_R", "010111110", "010101nnnnnddddd", shl),
    d!("SLI_asisdshf_R", "011111110", "010101nnnnnddddd", shl),
    bhsd!(
        "SQSHLU_asisdshf_R",
        "011111110",
        "011001nnnnnddddd",
        |_| true,
        qshl
    ),
    bhsd!(
        "SQSHL_asisdshf_R",
        "010111110",
        "011101nnnnnddddd",
        |_| true,
        qshl
    ),
    bhsd!(
        "UQSHL_asisdshf_R",
        "011111110",
        "011101nnnnnddddd",
        |_| true,
        qshl
    ),
    bhs!("SQSHRUN_asisdshf_N", "011111110", "100001nnnnnddddd", shrn),
    bhs!("SQRSHRUN_asisdshf_N", "011111110", "100011nnnnnddddd", shrn),
    bhs!("SQSHRN_asisdshf_N", "010111110", "100101nnnnnddddd", shrn),
    bhs!("UQSHRN_asisdshf_N", "011111110", "100101nnnnnddddd", shrn),
    bhs!("SQRSHRN_asisdshf_N", "010111110", "100111nnnnnddddd", shrn),
    bhs!("UQRSHRN_asisdshf_N", "011111110", "100111nnnnnddddd", shrn),
];

const ALL: [Row; total(PARTS)] = super::concat(PARTS);

pub const ROWS: &[Row] = &ALL;

/// (element bits, immh:immb) of a shift by immediate.
fn shape(i: Insn) -> (u32, u32) {
    let immh = i.bits(22, 19);
    (8 << (31 - immh.leading_zeros()), i.bits(22, 16))
}

/// Element-wise over the elements the instruction names.
fn elems(st: &mut crate::state::CpuState, i: Insn, f: impl FnMut(&mut L, u64, u64) -> u64) {
    let (bits, _) = shape(i);
    let n = if scalar(i) {
        1
    } else if q(i) {
        128 / bits
    } else {
        64 / bits
    } as usize;
    let mut f = f;
    map(st, i, bits, n, Some(0), |l, a, _, d| f(l, a, d))
}

helper!(shr, |st, i| {
    // SSHR/USHR, SSRA/USRA (bit 12), SRSHR/URSHR, SRSRA/URSRA (bit 13 rounds).
    let (bits, hb) = shape(i);
    let sh = 2 * bits - hb;
    let (un, acc, round) = (u(i), i.bit(12), i.bit(13));
    elems(st, i, |l, a, d| {
        let v = shift(l.x(a, un), -(sh as i32), round, bits);
        l.t(if acc { v + l.u(d) } else { v })
    })
});
helper!(sri, |st, i| {
    let (bits, hb) = shape(i);
    let sh = 2 * bits - hb;
    let m = if sh == 64 { 0 } else { mask(bits) >> sh };
    elems(st, i, |_, a, d| {
        let v = if sh == 64 { 0 } else { a >> sh };
        (d & !m) | (v & m)
    })
});
helper!(shl, |st, i| {
    // SHL (U=0) or SLI (U=1, keeps Vd's low bits).
    let (bits, hb) = shape(i);
    let sh = hb - bits;
    let m = mask(bits) << sh & mask(bits);
    let insert = u(i);
    elems(st, i, |_, a, d| {
        let v = (a << sh) & m;
        if insert {
            (d & !m) | v
        } else {
            v
        }
    })
});
helper!(qshl, |st, i| {
    // SQSHL (U=0), UQSHL (U=1, opcode 01110), SQSHLU (U=1, opcode 01100).
    let (bits, hb) = shape(i);
    let sh = (hb - bits) as i32;
    let (src_unsigned, dst_unsigned) = match (u(i), i.bit(12)) {
        (false, _) => (false, false),
        (true, true) => (true, true),
        (true, false) => (false, true),
    };
    elems(st, i, |l, a, _| {
        let v = shift(l.x(a, src_unsigned), sh, false, bits);
        l.sat(v, dst_unsigned)
    })
});
helper!(shrn, |st, i| {
    // opcode 1000x: SHRN/RSHRN (U=0), SQSHRUN/SQRSHRUN (U=1); 1001x: SQ/UQ(R)SHRN.
    let (nb, hb) = shape(i);
    let sh = -((2 * nb - hb) as i32);
    let round = i.bit(11);
    let kind = (i.bit(12), u(i));
    narrow(st, i, nb, |l, a, _| match kind {
        (false, false) => l.t(shift(l.w(a, true), sh, round, 2 * nb)),
        (false, true) => {
            let v = shift(l.w(a, false), sh, round, 2 * nb);
            l.sat_u(v)
        }
        (true, un) => {
            let v = shift(l.w(a, un), sh, round, 2 * nb);
            l.sat(v, un)
        }
    })
});
helper!(shll, |st, i| {
    let (nb, hb) = shape(i);
    let sh = hb - nb;
    let un = u(i);
    long(st, i, nb, false, Some(0), |l, a, _, _| {
        l.t(ext(a, nb, un) << sh)
    })
});
