//! AdvSIMD vector x indexed element and scalar x indexed element (integer forms; FMLA/FMUL
//! by element are in `fp.rs`).

use super::diff::{mlal_el, qdmlal_el};
use super::lanes::{check, el, esize, lanes, long, map, u};
use super::same::qdmulh_el;
use crate::a64::{Insn, Row};
use crate::state::CpuState;

/// Vector by element: `0 Q U 01111 size L M Rm opcode H 0 Rn Rd`.
macro_rules! v {
    ($u:literal, $op:literal) => {
        concat!("0q", $u, "01111zzlmmmmm", $op, "h0nnnnnddddd")
    };
}
/// Scalar by element: `01 U 11111 size L M Rm opcode H 0 Rn Rd`.
macro_rules! s {
    ($u:literal, $op:literal) => {
        concat!("01", $u, "11111zzlmmmmm", $op, "h0nnnnnddddd")
    };
}

pub const ROWS: &[Row] = &[
    simd_row!("MLA_asimdelem_R", v!("1", "0000"), check::hs, mla_mls),
    simd_row!("MLS_asimdelem_R", v!("1", "0100"), check::hs, mla_mls),
    simd_row!("MUL_asimdelem_R", v!("0", "1000"), check::hs, mul),
    simd_row!("SQDMULH_asimdelem_R", v!("0", "1100"), check::hs, qdmulh),
    simd_row!("SQRDMULH_asimdelem_R", v!("0", "1101"), check::hs, qdmulh),
    simd_row!("SMLAL_asimdelem_L", v!("0", "0010"), check::hs, mlal),
    simd_row!("UMLAL_asimdelem_L", v!("1", "0010"), check::hs, mlal),
    simd_row!("SMLSL_asimdelem_L", v!("0", "0110"), check::hs, mlal),
    simd_row!("UMLSL_asimdelem_L", v!("1", "0110"), check::hs, mlal),
    simd_row!("SMULL_asimdelem_L", v!("0", "1010"), check::hs, mlal),
    simd_row!("UMULL_asimdelem_L", v!("1", "1010"), check::hs, mlal),
    simd_row!("SQDMLAL_asimdelem_L", v!("0", "0011"), check::hs, qdmlal),
    simd_row!("SQDMLSL_asimdelem_L", v!("0", "0111"), check::hs, qdmlal),
    simd_row!("SQDMULL_asimdelem_L", v!("0", "1011"), check::hs, qdmlal),
    // Scalar by element
    simd_row!("SQDMLAL_asisdelem_L", s!("0", "0011"), check::hs, qdmlal),
    simd_row!("SQDMLSL_asisdelem_L", s!("0", "0111"), check::hs, qdmlal),
    simd_row!("SQDMULL_asisdelem_L", s!("0", "1011"), check::hs, qdmlal),
    simd_row!("SQDMULH_asisdelem_R", s!("0", "1100"), check::hs, qdmulh),
    simd_row!("SQRDMULH_asisdelem_R", s!("0", "1101"), check::hs, qdmulh),
];

/// The indexed element of Vm: H:L:M with Rm<3:0> for 16-bit elements, H:L with M:Rm for
/// 32-bit ones.
fn element(st: &CpuState, i: Insn) -> u64 {
    let (h, l, m) = (i.bit(11) as usize, i.bit(21) as usize, i.bit(20) as usize);
    if i.bits(23, 22) == 1 {
        el(st.v[i.bits(19, 16) as usize], 16, h << 2 | l << 1 | m)
    } else {
        el(st.v[i.bits(20, 16) as usize], 32, h << 1 | l)
    }
}

/// Element-wise with Vm replaced by the indexed element.
fn by_elem(st: &mut CpuState, i: Insn, f: impl FnMut(&mut super::lanes::L, u64, u64, u64) -> u64) {
    let bits = esize(i);
    let b = element(st, i);
    map(st, i, bits, lanes(i, bits), Some(b), f)
}

helper!(mla_mls, |st, i| {
    let sub = i.bit(14);
    by_elem(st, i, |l, a, b, d| {
        let p = l.u(a) * l.u(b);
        l.t(if sub { l.u(d) - p } else { l.u(d) + p })
    })
});
helper!(mul, |st, i| by_elem(st, i, |l, a, b, _| l
    .t(l.u(a) * l.u(b))));
helper!(qdmulh, |st, i| {
    let round = i.bit(12);
    by_elem(st, i, |l, a, b, _| qdmulh_el(l, a, b, round))
});
helper!(mlal, |st, i| {
    let un = u(i);
    // Opcode 0010 MLAL, 0110 MLSL, 1010 MULL: map to the three-different kinds.
    let kind = match i.bits(15, 14) {
        0 => 0,
        1 => 1,
        _ => 2,
    };
    let b = element(st, i);
    long(st, i, esize(i), false, Some(b), |l, a, b, d| {
        mlal_el(l, kind, un, a, b, d)
    })
});
helper!(qdmlal, |st, i| {
    // Opcode 0011 SQDMLAL, 0111 SQDMLSL, 1011 SQDMULL.
    let kind = match i.bits(15, 14) {
        0 => 0,
        1 => 1,
        _ => 2,
    };
    let b = element(st, i);
    long(st, i, esize(i), false, Some(b), |l, a, b, d| {
        qdmlal_el(l, kind, a, b, d)
    })
});
