//! AdvSIMD two-register miscellaneous and scalar two-register miscellaneous (integer).

use super::lanes::{check, el, esize, ext, lanes, long, map, map_i, narrow, q, set_el, u, zx, L};
use super::same::mask_if;
use crate::a64::{Insn, Row};
use crate::state::CpuState;

/// Vector two-register misc: `0 Q U 01110 size 10000 opcode 10 Rn Rd`.
macro_rules! v {
    ($u:literal, $op:literal) => {
        concat!("0q", $u, "01110zz10000", $op, "10nnnnnddddd")
    };
    ($u:literal, $size:literal, $op:literal) => {
        concat!("0q", $u, "01110", $size, "10000", $op, "10nnnnnddddd")
    };
}
/// Scalar two-register misc: `01 U 11110 size 10000 opcode 10 Rn Rd`.
macro_rules! s {
    ($u:literal, $op:literal) => {
        concat!("01", $u, "11110zz10000", $op, "10nnnnnddddd")
    };
}

fn size(i: Insn) -> u32 {
    i.bits(23, 22)
}

pub const ROWS: &[Row] = &[
    simd_row!("REV64_asimdmisc_R", v!("0", "00000"), check::no_d, rev),
    simd_row!("REV32_asimdmisc_R", v!("1", "00000"), |i| size(i) < 2, rev),
    simd_row!("REV16_asimdmisc_R", v!("0", "00001"), check::b, rev),
    simd_row!("SADDLP_asimdmisc_P", v!("0", "00010"), check::no_d, addlp),
    simd_row!("UADDLP_asimdmisc_P", v!("1", "00010"), check::no_d, addlp),
    simd_row!(
        "SUQADD_asimdmisc_R",
        v!("0", "00011"),
        check::any,
        sqadd_acc
    ),
    simd_row!(
        "USQADD_asimdmisc_R",
        v!("1", "00011"),
        check::any,
        sqadd_acc
    ),
    simd_row!("CLS_asimdmisc_R", v!("0", "00100"), check::no_d, cls_clz),
    simd_row!("CLZ_asimdmisc_R", v!("1", "00100"), check::no_d, cls_clz),
    simd_row!("CNT_asimdmisc_R", v!("0", "00101"), check::b, cnt),
    simd_row!("NOT_asimdmisc_R", v!("1", "00", "00101"), check::all, not),
    simd_row!("RBIT_asimdmisc_R", v!("1", "01", "00101"), check::all, rbit),
    simd_row!("SADALP_asimdmisc_P", v!("0", "00110"), check::no_d, addlp),
    simd_row!("UADALP_asimdmisc_P", v!("1", "00110"), check::no_d, addlp),
    simd_row!("SQABS_asimdmisc_R", v!("0", "00111"), check::any, sqabs_neg),
    simd_row!("SQNEG_asimdmisc_R", v!("1", "00111"), check::any, sqabs_neg),
    simd_row!("CMGT_asimdmisc_Z", v!("0", "01000"), check::any, cm_zero),
    simd_row!("CMGE_asimdmisc_Z", v!("1", "01000"), check::any, cm_zero),
    crate::row!(
        "CMEQ_asimdmisc_Z",
        v!("0", "01001"),
        |t, i| super::swar::cmeq_cmtst(t, i, true),
        AdvSimd
    ),
    simd_row!("CMLE_asimdmisc_Z", v!("1", "01001"), check::any, cm_zero),
    simd_row!("CMLT_asimdmisc_Z", v!("0", "01010"), check::any, cm_zero),
    simd_row!("ABS_asimdmisc_R", v!("0", "01011"), check::any, abs_neg),
    simd_row!("NEG_asimdmisc_R", v!("1", "01011"), check::any, abs_neg),
    simd_row!("XTN_asimdmisc_N", v!("0", "10010"), check::no_d, xtn),
    simd_row!("SQXTUN_asimdmisc_N", v!("1", "10010"), check::no_d, xtn),
    simd_row!("SHLL_asimdmisc_S", v!("1", "10011"), check::no_d, shll),
    simd_row!("SQXTN_asimdmisc_N", v!("0", "10100"), check::no_d, xtn),
    simd_row!("UQXTN_asimdmisc_N", v!("1", "10100"), check::no_d, xtn),
    // 32-bit elements only (sz=1 is reserved).
    simd_row!(
        "URECPE_asimdmisc_R",
        v!("0", "10", "11100"),
        check::all,
        urecpe
    ),
    simd_row!(
        "URSQRTE_asimdmisc_R",
        v!("1", "10", "11100"),
        check::all,
        urecpe
    ),
    // Scalar two-register misc
    simd_row!(
        "SUQADD_asisdmisc_R",
        s!("0", "00011"),
        check::all,
        sqadd_acc
    ),
    simd_row!(
        "USQADD_asisdmisc_R",
        s!("1", "00011"),
        check::all,
        sqadd_acc
    ),
    simd_row!("SQABS_asisdmisc_R", s!("0", "00111"), check::all, sqabs_neg),
    simd_row!("SQNEG_asisdmisc_R", s!("1", "00111"), check::all, sqabs_neg),
    simd_row!("CMGT_asisdmisc_Z", s!("0", "01000"), check::d, cm_zero),
    simd_row!("CMGE_asisdmisc_Z", s!("1", "01000"), check::d, cm_zero),
    crate::row!(
        "CMEQ_asisdmisc_Z",
        s!("0", "01001"),
        |t, i| super::swar::cmeq_cmtst(t, i, true),
        AdvSimd
    ),
    simd_row!("CMLE_asisdmisc_Z", s!("1", "01001"), check::d, cm_zero),
    simd_row!("CMLT_asisdmisc_Z", s!("0", "01010"), check::d, cm_zero),
    simd_row!("ABS_asisdmisc_R", s!("0", "01011"), check::d, abs_neg),
    simd_row!("NEG_asisdmisc_R", s!("1", "01011"), check::d, abs_neg),
    simd_row!("SQXTUN_asisdmisc_N", s!("1", "10010"), check::no_d, xtn),
    simd_row!("SQXTN_asisdmisc_N", s!("0", "10100"), check::no_d, xtn),
    simd_row!("UQXTN_asisdmisc_N", s!("1", "10100"), check::no_d, xtn),
];

helper!(rev, |st, i| {
    // Container size: REV64, REV32, REV16.
    let cbits = match (u(i), i.bit(12)) {
        (false, false) => 64,
        (true, false) => 32,
        _ => 16,
    };
    let bits = esize(i);
    let per = (cbits / bits) as usize;
    let n = lanes(i, bits);
    let vn = st.v[i.rn() as usize];
    let mut r = 0u128;
    for k in 0..n {
        let dst = k - k % per + (per - 1 - k % per);
        set_el(&mut r, bits, dst, el(vn, bits, k));
    }
    st.v[i.rd() as usize] = r;
});

/// SADDLP, UADDLP, SADALP, UADALP: add adjacent pairs into elements twice as wide
/// (accumulating into Vd for the ADALP forms, opcode bit 14).
fn addlp_impl(st: &mut CpuState, i: Insn) {
    let nb = esize(i);
    let wb = 2 * nb;
    let un = u(i);
    let acc = i.bit(14);
    let n = if q(i) { 128 / wb } else { 64 / wb } as usize;
    let (vn, vd) = (st.v[i.rn() as usize], st.v[i.rd() as usize]);
    let l = L::new(wb);
    let mut r = 0u128;
    for k in 0..n {
        let mut s = ext(el(vn, nb, 2 * k), nb, un) + ext(el(vn, nb, 2 * k + 1), nb, un);
        if acc {
            s += l.u(el(vd, wb, k));
        }
        set_el(&mut r, wb, k, l.t(s));
    }
    st.v[i.rd() as usize] = r;
}
helper!(addlp, |st, i| addlp_impl(st, i));

helper!(sqadd_acc, |st, i| {
    let un = u(i);
    map_i(st, i, |l, a, _, d| {
        if un {
            // USQADD: unsigned accumulator plus signed value.
            let v = l.u(d) + l.s(a);
            l.sat_u(v)
        } else {
            // SUQADD: signed accumulator plus unsigned value.
            let v = l.s(d) + l.u(a);
            l.sat_s(v)
        }
    })
});
helper!(cls_clz, |st, i| {
    let clz = u(i);
    map_i(st, i, |l, a, _, _| {
        let lead = |x: u64| u64::from((x << (64 - l.bits)).leading_zeros().min(l.bits));
        if clz {
            lead(a)
        } else {
            // Leading bits equal to the sign bit, not counting the sign bit itself.
            let x = if l.s(a) < 0 { !a & l.t(-1) } else { a };
            lead(x) - 1
        }
    })
});
helper!(cnt, |st, i| map_i(st, i, |_, a, _, _| u64::from(
    a.count_ones()
)));
helper!(not, |st, i| map_i(st, i, |l, a, _, _| l.t(!a as i128)));
helper!(rbit, |st, i| {
    // The size field is part of the opcode: RBIT works on bytes.
    let n = lanes(i, 8);
    map(st, i, 8, n, None, |_, a, _, _| {
        u64::from((a as u8).reverse_bits())
    })
});
helper!(sqabs_neg, |st, i| {
    let neg = u(i);
    map_i(st, i, |l, a, _, _| {
        let v = l.s(a);
        l.sat_s(if neg { -v } else { v.abs() })
    })
});
helper!(cm_zero, |st, i| {
    // (opcode bits 1:0, U): GT, GE, EQ, LE, LT.
    let op = (i.bits(13, 12), u(i));
    map_i(st, i, |l, a, _, _| {
        let v = l.s(a);
        let c = match op {
            (0, false) => v > 0,
            (0, true) => v >= 0,
            (1, false) => v == 0,
            (1, true) => v <= 0,
            _ => v < 0,
        };
        mask_if(l, c)
    })
});
helper!(abs_neg, |st, i| {
    let neg = u(i);
    map_i(st, i, |l, a, _, _| {
        let v = l.s(a);
        l.t(if neg { -v } else { v.abs() })
    })
});
helper!(xtn, |st, i| {
    // XTN, SQXTUN (opcode 10010, U=0/1); SQXTN, UQXTN (opcode 10100).
    let kind = (i.bit(14), u(i));
    narrow(st, i, esize(i), |l, a, _| match kind {
        (false, false) => l.t(a as i128),
        (false, true) => {
            let v = l.w(a, false);
            l.sat_u(v)
        }
        (true, un) => {
            let v = l.w(a, un);
            l.sat(v, un)
        }
    })
});
helper!(shll, |st, i| {
    let nb = esize(i);
    long(st, i, nb, false, None, |l, a, _, _| l.t(zx(a, nb) << nb))
});

/// UnsignedRecipEstimate (URECPE) or UnsignedRSqrtEstimate (URSQRTE) of one 32-bit element:
/// a 9-bit estimate from the top 9 bits of the operand, as a fixed-point fraction.
fn urecpe_el(a: u64, sqrt: bool) -> u64 {
    let top = (a >> 23) & 0x1ff;
    let est = if sqrt {
        if a >> 30 == 0 {
            return 0xffff_ffff;
        }
        // RecipSqrtEstimate of the operand scaled to [0.25, 1.0).
        let x = if top < 256 {
            top * 2 + 1
        } else {
            ((top >> 1) << 1) * 2 + 2
        };
        let mut b = 512u64;
        while x * (b + 1) * (b + 1) < (1 << 28) {
            b += 1;
        }
        b.div_ceil(2)
    } else {
        if a >> 31 == 0 {
            return 0xffff_ffff;
        }
        // RecipEstimate of the operand scaled to [0.5, 1.0).
        let x = top * 2 + 1;
        let b = (1 << 19) / x;
        b.div_ceil(2)
    };
    (est & 0x1ff) << 23
}
helper!(urecpe, |st, i| {
    let sqrt = u(i);
    map_i(st, i, |_, a, _, _| urecpe_el(a, sqrt))
});
