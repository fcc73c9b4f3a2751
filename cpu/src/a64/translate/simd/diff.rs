//! AdvSIMD three different and scalar three different: widening (`L`), wide (`W`) and
//! narrowing-high-half (`HN`) ops. The "2" forms (Q=1) use the upper half of the narrow
//! operands or destination.

use super::lanes::{check, esize, long, narrow, u, L};
use super::same::clmul;
use crate::a64::Row;

/// Vector three different: `0 Q U 01110 size 1 Rm opcode 00 Rn Rd`.
macro_rules! v {
    ($u:literal, $op:literal) => {
        concat!("0q", $u, "01110zz1mmmmm", $op, "00nnnnnddddd")
    };
}
/// Scalar three different: `01 U 11110 size 1 Rm opcode 00 Rn Rd`.
macro_rules! s {
    ($op:literal) => {
        concat!("01011110zz1mmmmm", $op, "00nnnnnddddd")
    };
}

pub const ROWS: &[Row] = &[
    simd_row!("SADDL_asimddiff_L", v!("0", "0000"), check::no_d, addl),
    simd_row!("UADDL_asimddiff_L", v!("1", "0000"), check::no_d, addl),
    simd_row!("SADDW_asimddiff_W", v!("0", "0001"), check::no_d, addw),
    simd_row!("UADDW_asimddiff_W", v!("1", "0001"), check::no_d, addw),
    simd_row!("SSUBL_asimddiff_L", v!("0", "0010"), check::no_d, subl),
    simd_row!("USUBL_asimddiff_L", v!("1", "0010"), check::no_d, subl),
    simd_row!("SSUBW_asimddiff_W", v!("0", "0011"), check::no_d, subw),
    simd_row!("USUBW_asimddiff_W", v!("1", "0011"), check::no_d, subw),
    simd_row!("ADDHN_asimddiff_N", v!("0", "0100"), check::no_d, addhn),
    simd_row!("RADDHN_asimddiff_N", v!("1", "0100"), check::no_d, addhn),
    simd_row!("SABAL_asimddiff_L", v!("0", "0101"), check::no_d, abal),
    simd_row!("UABAL_asimddiff_L", v!("1", "0101"), check::no_d, abal),
    simd_row!("SUBHN_asimddiff_N", v!("0", "0110"), check::no_d, addhn),
    simd_row!("RSUBHN_asimddiff_N", v!("1", "0110"), check::no_d, addhn),
    simd_row!("SABDL_asimddiff_L", v!("0", "0111"), check::no_d, abal),
    simd_row!("UABDL_asimddiff_L", v!("1", "0111"), check::no_d, abal),
    simd_row!("SMLAL_asimddiff_L", v!("0", "1000"), check::no_d, mlal),
    simd_row!("UMLAL_asimddiff_L", v!("1", "1000"), check::no_d, mlal),
    simd_row!("SQDMLAL_asimddiff_L", v!("0", "1001"), check::hs, qdmlal),
    simd_row!("SMLSL_asimddiff_L", v!("0", "1010"), check::no_d, mlal),
    simd_row!("UMLSL_asimddiff_L", v!("1", "1010"), check::no_d, mlal),
    simd_row!("SQDMLSL_asimddiff_L", v!("0", "1011"), check::hs, qdmlal),
    simd_row!("SMULL_asimddiff_L", v!("0", "1100"), check::no_d, mlal),
    simd_row!("UMULL_asimddiff_L", v!("1", "1100"), check::no_d, mlal),
    simd_row!("SQDMULL_asimddiff_L", v!("0", "1101"), check::hs, qdmlal),
    // 8-bit PMULL only: size 11 (the 64-bit form) is the cryptographic extension.
    simd_row!(
        "PMULL_asimddiff_L",
        "0q001110001mmmmm111000nnnnnddddd",
        check::all,
        pmull
    ),
    // Scalar three different
    simd_row!("SQDMLAL_asisddiff_only", s!("1001"), check::hs, qdmlal),
    simd_row!("SQDMLSL_asisddiff_only", s!("1011"), check::hs, qdmlal),
    simd_row!("SQDMULL_asisddiff_only", s!("1101"), check::hs, qdmlal),
];

helper!(addl, |st, i| {
    let un = u(i);
    long(st, i, esize(i), false, None, |l, a, b, _| {
        l.t(l.h(a, un) + l.h(b, un))
    })
});
helper!(addw, |st, i| {
    let un = u(i);
    long(st, i, esize(i), true, None, |l, a, b, _| {
        l.t(l.u(a) + l.h(b, un))
    })
});
helper!(subl, |st, i| {
    let un = u(i);
    long(st, i, esize(i), false, None, |l, a, b, _| {
        l.t(l.h(a, un) - l.h(b, un))
    })
});
helper!(subw, |st, i| {
    let un = u(i);
    long(st, i, esize(i), true, None, |l, a, b, _| {
        l.t(l.u(a) - l.h(b, un))
    })
});
helper!(addhn, |st, i| {
    // ADDHN/SUBHN (opcode bit 13), rounding for U=1.
    let sub = i.bit(13);
    let round = u(i);
    narrow(st, i, esize(i), |l, a, b| {
        let (a, b) = (l.w(a, true), l.w(b, true));
        let v = if sub { a - b } else { a + b };
        let r = if round { 1i128 << (l.bits - 1) } else { 0 };
        l.t((v + r) >> l.bits)
    })
});
helper!(abal, |st, i| {
    // SABAL/UABAL accumulate (opcode 0101), SABDL/UABDL do not (0111).
    let un = u(i);
    let acc = !i.bit(13);
    long(st, i, esize(i), false, None, |l, a, b, d| {
        let v = (l.h(a, un) - l.h(b, un)).abs();
        l.t(if acc { l.u(d) + v } else { v })
    })
});

/// MLAL (kind 0), MLSL (1) or MULL (2) of one element; `l` is the wide element.
pub fn mlal_el(l: &L, kind: u32, un: bool, a: u64, b: u64, d: u64) -> u64 {
    let p = l.h(a, un) * l.h(b, un);
    l.t(match kind {
        0 => l.u(d) + p,
        1 => l.u(d) - p,
        _ => p,
    })
}
helper!(mlal, |st, i| {
    // Opcode 1000 MLAL, 1010 MLSL, 1100 MULL: the kind is bits 14:13.
    let un = u(i);
    let kind = i.bits(14, 13);
    long(st, i, esize(i), false, None, |l, a, b, d| {
        mlal_el(l, kind, un, a, b, d)
    })
});

/// SQDMLAL (kind 0), SQDMLSL (1) or SQDMULL (2) of one element; `l` is the wide element.
pub fn qdmlal_el(l: &mut L, kind: u32, a: u64, b: u64, d: u64) -> u64 {
    let p = 2 * l.h(a, false) * l.h(b, false);
    let p = l.sat_s(p);
    match kind {
        0 => {
            let v = l.s(d) + l.s(p);
            l.sat_s(v)
        }
        1 => {
            let v = l.s(d) - l.s(p);
            l.sat_s(v)
        }
        _ => p,
    }
}
helper!(qdmlal, |st, i| {
    // Opcode 1001 SQDMLAL, 1011 SQDMLSL, 1101 SQDMULL: the kind is bits 14:13.
    let kind = i.bits(14, 13);
    long(st, i, esize(i), false, None, |l, a, b, d| {
        qdmlal_el(l, kind, a, b, d)
    })
});
helper!(pmull, |st, i| long(st, i, 8, false, None, |_, a, b, _| {
    clmul(a, b)
}));
