//! AdvSIMD three same and scalar three same (integer): Vd = op(Vn, Vm) element by element.
//! The U bit picks the unsigned variant of most pairs, so one helper serves both.

use super::lanes::{check, map_i, pairwise, shift, u, L};
use crate::a64::Row;

/// Vector three same: `0 Q U 01110 size 1 Rm opcode 1 Rn Rd`.
macro_rules! v {
    ($u:literal, $op:literal) => {
        concat!("0q", $u, "01110zz1mmmmm", $op, "1nnnnnddddd")
    };
}
/// Vector three same with a fixed size (the logical ops).
macro_rules! vz {
    ($u:literal, $size:literal) => {
        concat!("0q", $u, "01110", $size, "1mmmmm000111nnnnnddddd")
    };
}
/// Scalar three same: `01 U 11110 size 1 Rm opcode 1 Rn Rd`.
macro_rules! s {
    ($u:literal, $op:literal) => {
        concat!("01", $u, "11110zz1mmmmm", $op, "1nnnnnddddd")
    };
}

pub const ROWS: &[Row] = &[
    simd_row!("SHADD_asimdsame_only", v!("0", "00000"), check::no_d, hadd),
    simd_row!("UHADD_asimdsame_only", v!("1", "00000"), check::no_d, hadd),
    simd_row!("SQADD_asimdsame_only", v!("0", "00001"), check::any, qadd),
    simd_row!("UQADD_asimdsame_only", v!("1", "00001"), check::any, qadd),
    simd_row!(
        "SRHADD_asimdsame_only",
        v!("0", "00010"),
        check::no_d,
        rhadd
    ),
    simd_row!(
        "URHADD_asimdsame_only",
        v!("1", "00010"),
        check::no_d,
        rhadd
    ),
    crate::row!(
        "AND_asimdsame_only",
        vz!("0", "00"),
        super::swar::logic,
        AdvSimd
    ),
    crate::row!(
        "BIC_asimdsame_only",
        vz!("0", "01"),
        super::swar::logic,
        AdvSimd
    ),
    crate::row!(
        "ORR_asimdsame_only",
        vz!("0", "10"),
        super::swar::logic,
        AdvSimd
    ),
    crate::row!(
        "ORN_asimdsame_only",
        vz!("0", "11"),
        super::swar::logic,
        AdvSimd
    ),
    crate::row!(
        "EOR_asimdsame_only",
        vz!("1", "00"),
        super::swar::logic,
        AdvSimd
    ),
    crate::row!(
        "BSL_asimdsame_only",
        vz!("1", "01"),
        super::swar::logic,
        AdvSimd
    ),
    crate::row!(
        "BIT_asimdsame_only",
        vz!("1", "10"),
        super::swar::logic,
        AdvSimd
    ),
    crate::row!(
        "BIF_asimdsame_only",
        vz!("1", "11"),
        super::swar::logic,
        AdvSimd
    ),
    simd_row!("SHSUB_asimdsame_only", v!("0", "00100"), check::no_d, hsub),
    simd_row!("UHSUB_asimdsame_only", v!("1", "00100"), check::no_d, hsub),
    simd_row!("SQSUB_asimdsame_only", v!("0", "00101"), check::any, qsub),
    simd_row!("UQSUB_asimdsame_only", v!("1", "00101"), check::any, qsub),
    crate::row!(
        "CMGT_asimdsame_only",
        v!("0", "00110"),
        |t, i| super::swar::compare_bytes(t, i, true, cmgt),
        AdvSimd
    ),
    crate::row!(
        "CMHI_asimdsame_only",
        v!("1", "00110"),
        |t, i| super::swar::compare_bytes(t, i, true, cmgt),
        AdvSimd
    ),
    crate::row!(
        "CMGE_asimdsame_only",
        v!("0", "00111"),
        |t, i| super::swar::compare_bytes(t, i, false, cmge),
        AdvSimd
    ),
    crate::row!(
        "CMHS_asimdsame_only",
        v!("1", "00111"),
        |t, i| super::swar::compare_bytes(t, i, false, cmge),
        AdvSimd
    ),
    simd_row!("SSHL_asimdsame_only", v!("0", "01000"), check::any, shl_reg),
    simd_row!("USHL_asimdsame_only", v!("1", "01000"), check::any, shl_reg),
    simd_row!(
        "SQSHL_asimdsame_only",
        v!("0", "01001"),
        check::any,
        shl_reg
    ),
    simd_row!(
        "UQSHL_asimdsame_only",
        v!("1", "01001"),
        check::any,
        shl_reg
    ),
    simd_row!(
        "SRSHL_asimdsame_only",
        v!("0", "01010"),
        check::any,
        shl_reg
    ),
    simd_row!(
        "URSHL_asimdsame_only",
        v!("1", "01010"),
        check::any,
        shl_reg
    ),
    simd_row!(
        "SQRSHL_asimdsame_only",
        v!("0", "01011"),
        check::any,
        shl_reg
    ),
    simd_row!(
        "UQRSHL_asimdsame_only",
        v!("1", "01011"),
        check::any,
        shl_reg
    ),
    simd_row!("SMAX_asimdsame_only", v!("0", "01100"), check::no_d, max),
    simd_row!("UMAX_asimdsame_only", v!("1", "01100"), check::no_d, max),
    simd_row!("SMIN_asimdsame_only", v!("0", "01101"), check::no_d, min),
    simd_row!("UMIN_asimdsame_only", v!("1", "01101"), check::no_d, min),
    simd_row!("SABD_asimdsame_only", v!("0", "01110"), check::no_d, abd),
    simd_row!("UABD_asimdsame_only", v!("1", "01110"), check::no_d, abd),
    simd_row!("SABA_asimdsame_only", v!("0", "01111"), check::no_d, aba),
    simd_row!("UABA_asimdsame_only", v!("1", "01111"), check::no_d, aba),
    simd_row!("ADD_asimdsame_only", v!("0", "10000"), check::any, add_sub),
    simd_row!("SUB_asimdsame_only", v!("1", "10000"), check::any, add_sub),
    crate::row!(
        "CMTST_asimdsame_only",
        v!("0", "10001"),
        |t, i| super::swar::cmeq_cmtst(t, i, false),
        AdvSimd
    ),
    crate::row!(
        "CMEQ_asimdsame_only",
        v!("1", "10001"),
        |t, i| super::swar::cmeq_cmtst(t, i, false),
        AdvSimd
    ),
    simd_row!("MLA_asimdsame_only", v!("0", "10010"), check::no_d, mla_mls),
    simd_row!("MLS_asimdsame_only", v!("1", "10010"), check::no_d, mla_mls),
    simd_row!("MUL_asimdsame_only", v!("0", "10011"), check::no_d, mul),
    simd_row!("PMUL_asimdsame_only", v!("1", "10011"), check::b, pmul),
    simd_row!("SMAXP_asimdsame_only", v!("0", "10100"), check::no_d, maxp),
    crate::row!(
        "UMAXP_asimdsame_only",
        v!("1", "10100"),
        |t, i| super::swar::umaxp_uminp(t, i, true, maxp),
        AdvSimd
    ),
    simd_row!("SMINP_asimdsame_only", v!("0", "10101"), check::no_d, minp),
    crate::row!(
        "UMINP_asimdsame_only",
        v!("1", "10101"),
        |t, i| super::swar::umaxp_uminp(t, i, false, minp),
        AdvSimd
    ),
    simd_row!(
        "SQDMULH_asimdsame_only",
        v!("0", "10110"),
        check::hs,
        qdmulh
    ),
    simd_row!(
        "SQRDMULH_asimdsame_only",
        v!("1", "10110"),
        check::hs,
        qdmulh
    ),
    simd_row!("ADDP_asimdsame_only", v!("0", "10111"), check::any, addp),
    // Scalar three same
    simd_row!("SQADD_asisdsame_only", s!("0", "00001"), check::all, qadd),
    simd_row!("UQADD_asisdsame_only", s!("1", "00001"), check::all, qadd),
    simd_row!("SQSUB_asisdsame_only", s!("0", "00101"), check::all, qsub),
    simd_row!("UQSUB_asisdsame_only", s!("1", "00101"), check::all, qsub),
    simd_row!("CMGT_asisdsame_only", s!("0", "00110"), check::d, cmgt),
    simd_row!("CMHI_asisdsame_only", s!("1", "00110"), check::d, cmgt),
    simd_row!("CMGE_asisdsame_only", s!("0", "00111"), check::d, cmge),
    simd_row!("CMHS_asisdsame_only", s!("1", "00111"), check::d, cmge),
    simd_row!("SSHL_asisdsame_only", s!("0", "01000"), check::d, shl_reg),
    simd_row!("USHL_asisdsame_only", s!("1", "01000"), check::d, shl_reg),
    simd_row!(
        "SQSHL_asisdsame_only",
        s!("0", "01001"),
        check::all,
        shl_reg
    ),
    simd_row!(
        "UQSHL_asisdsame_only",
        s!("1", "01001"),
        check::all,
        shl_reg
    ),
    simd_row!("SRSHL_asisdsame_only", s!("0", "01010"), check::d, shl_reg),
    simd_row!("URSHL_asisdsame_only", s!("1", "01010"), check::d, shl_reg),
    simd_row!(
        "SQRSHL_asisdsame_only",
        s!("0", "01011"),
        check::all,
        shl_reg
    ),
    simd_row!(
        "UQRSHL_asisdsame_only",
        s!("1", "01011"),
        check::all,
        shl_reg
    ),
    simd_row!("ADD_asisdsame_only", s!("0", "10000"), check::d, add_sub),
    simd_row!("SUB_asisdsame_only", s!("1", "10000"), check::d, add_sub),
    crate::row!(
        "CMTST_asisdsame_only",
        s!("0", "10001"),
        |t, i| super::swar::cmeq_cmtst(t, i, false),
        AdvSimd
    ),
    crate::row!(
        "CMEQ_asisdsame_only",
        s!("1", "10001"),
        |t, i| super::swar::cmeq_cmtst(t, i, false),
        AdvSimd
    ),
    simd_row!(
        "SQDMULH_asisdsame_only",
        s!("0", "10110"),
        check::hs,
        qdmulh
    ),
    simd_row!(
        "SQRDMULH_asisdsame_only",
        s!("1", "10110"),
        check::hs,
        qdmulh
    ),
];

/// All ones if `c`, else zero, in the element.
pub fn mask_if(l: &L, c: bool) -> u64 {
    if c {
        l.t(-1)
    } else {
        0
    }
}

helper!(hadd, |st, i| {
    let un = u(i);
    map_i(st, i, |l, a, b, _| l.t((l.x(a, un) + l.x(b, un)) >> 1))
});
helper!(rhadd, |st, i| {
    let un = u(i);
    map_i(st, i, |l, a, b, _| l.t((l.x(a, un) + l.x(b, un) + 1) >> 1))
});
helper!(hsub, |st, i| {
    let un = u(i);
    map_i(st, i, |l, a, b, _| l.t((l.x(a, un) - l.x(b, un)) >> 1))
});
helper!(qadd, |st, i| {
    let un = u(i);
    map_i(st, i, |l, a, b, _| {
        let v = l.x(a, un) + l.x(b, un);
        l.sat(v, un)
    })
});
helper!(qsub, |st, i| {
    let un = u(i);
    map_i(st, i, |l, a, b, _| {
        let v = l.x(a, un) - l.x(b, un);
        l.sat(v, un)
    })
});
helper!(cmgt, |st, i| {
    let un = u(i);
    map_i(st, i, |l, a, b, _| mask_if(l, l.x(a, un) > l.x(b, un)))
});
helper!(cmge, |st, i| {
    let un = u(i);
    map_i(st, i, |l, a, b, _| mask_if(l, l.x(a, un) >= l.x(b, un)))
});
helper!(shl_reg, |st, i| {
    let un = u(i);
    let sat = i.bit(11);
    let round = i.bit(12);
    map_i(st, i, |l, a, b, _| {
        let v = shift(l.x(a, un), b as u8 as i8 as i32, round, l.bits);
        if sat {
            l.sat(v, un)
        } else {
            l.t(v)
        }
    })
});
helper!(max, |st, i| {
    let un = u(i);
    map_i(st, i, |l, a, b, _| l.t(l.x(a, un).max(l.x(b, un))))
});
helper!(min, |st, i| {
    let un = u(i);
    map_i(st, i, |l, a, b, _| l.t(l.x(a, un).min(l.x(b, un))))
});
helper!(abd, |st, i| {
    let un = u(i);
    map_i(st, i, |l, a, b, _| l.t((l.x(a, un) - l.x(b, un)).abs()))
});
helper!(aba, |st, i| {
    let un = u(i);
    map_i(st, i, |l, a, b, d| {
        l.t(l.u(d) + (l.x(a, un) - l.x(b, un)).abs())
    })
});
helper!(add_sub, |st, i| {
    let sub = u(i);
    map_i(st, i, |l, a, b, _| {
        l.t(if sub {
            l.u(a) - l.u(b)
        } else {
            l.u(a) + l.u(b)
        })
    })
});
helper!(mla_mls, |st, i| {
    let sub = u(i);
    map_i(st, i, |l, a, b, d| {
        let p = l.u(a) * l.u(b);
        l.t(if sub { l.u(d) - p } else { l.u(d) + p })
    })
});
helper!(mul, |st, i| map_i(st, i, |l, a, b, _| l.t(l.u(a) * l.u(b))));
helper!(pmul, |st, i| map_i(st, i, |l, a, b, _| l
    .t(clmul(a, b) as i128)));
helper!(maxp, |st, i| {
    let un = u(i);
    pairwise(st, i, |l, a, b| l.t(l.x(a, un).max(l.x(b, un))))
});
helper!(minp, |st, i| {
    let un = u(i);
    pairwise(st, i, |l, a, b| l.t(l.x(a, un).min(l.x(b, un))))
});
helper!(addp, |st, i| pairwise(st, i, |l, a, b| l
    .t(l.u(a) + l.u(b))));
helper!(qdmulh, |st, i| {
    let round = u(i);
    map_i(st, i, |l, a, b, _| qdmulh_el(l, a, b, round))
});

/// SQDMULH / SQRDMULH of one element.
pub fn qdmulh_el(l: &mut L, a: u64, b: u64, round: bool) -> u64 {
    let p = 2 * l.s(a) * l.s(b) + if round { 1 << (l.bits - 1) } else { 0 };
    l.sat_s(p >> l.bits)
}

/// Carry-less (polynomial) product of two 32-bit values.
pub fn clmul(a: u64, b: u64) -> u64 {
    (0..32).fold(
        0,
        |acc, k| if b >> k & 1 == 1 { acc ^ (a << k) } else { acc },
    )
}
