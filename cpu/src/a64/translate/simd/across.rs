//! AdvSIMD across lanes (ADDV, SADDLV/UADDLV, SMAXV/SMINV/UMAXV/UMINV) and scalar pairwise
//! (ADDP scalar).

use super::lanes::{check, el, esize, ext, lanes, u, L};
use crate::a64::{Insn, Row};

/// Across lanes: `0 Q U 01110 size 11000 opcode 10 Rn Rd`.
macro_rules! v {
    ($u:literal, $op:literal) => {
        concat!("0q", $u, "01110zz11000", $op, "10nnnnnddddd")
    };
}

/// 8 and 16-bit elements in either vector size, 32-bit elements only in a 128-bit vector.
fn across_ok(i: Insn) -> bool {
    let size = i.bits(23, 22);
    size < 2 || (size == 2 && i.bit(30))
}

pub const ROWS: &[Row] = &[
    simd_row!("SADDLV_asimdall_only", v!("0", "00011"), across_ok, reduce),
    simd_row!("UADDLV_asimdall_only", v!("1", "00011"), across_ok, reduce),
    simd_row!("SMAXV_asimdall_only", v!("0", "01010"), across_ok, reduce),
    simd_row!("UMAXV_asimdall_only", v!("1", "01010"), across_ok, reduce),
    simd_row!("SMINV_asimdall_only", v!("0", "11010"), across_ok, reduce),
    simd_row!("UMINV_asimdall_only", v!("1", "11010"), across_ok, reduce),
    simd_row!("ADDV_asimdall_only", v!("0", "11011"), across_ok, reduce),
    simd_row!(
        "ADDP_asisdpair_only",
        "01011110zz110001101110nnnnnddddd",
        check::d,
        addp_scalar
    ),
];

helper!(reduce, |st, i| {
    let bits = esize(i);
    let un = u(i);
    let vn = st.v[i.rn() as usize];
    let vals = (0..lanes(i, bits)).map(|k| ext(el(vn, bits, k), bits, un));
    let (r, rbits) = match i.bits(16, 12) {
        0b00011 => (vals.sum::<i128>(), 2 * bits),
        0b01010 => (vals.max().unwrap_or(0), bits),
        0b11010 => (vals.min().unwrap_or(0), bits),
        _ => (vals.sum::<i128>(), bits),
    };
    st.v[i.rd() as usize] = u128::from(L::new(rbits).t(r));
});

helper!(addp_scalar, |st, i| {
    let vn = st.v[i.rn() as usize];
    st.v[i.rd() as usize] = u128::from(el(vn, 64, 0).wrapping_add(el(vn, 64, 1)));
});
