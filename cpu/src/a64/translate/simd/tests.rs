//! Expected-value tests, a few per group, worked out by hand from the Arm ARM's descriptions.
//! The differential tests in `cpu/tests/simd_diff.rs` cover the groups exhaustively against
//! Unicorn.

use crate::state::{fpsr, CpuState};
use crate::testing::run_with;
use crate::Stop;

fn run_v(words: &[u32], v: &[(usize, u128)], x: &[(usize, u64)]) -> CpuState {
    let mut st = CpuState::new();
    for &(r, val) in v {
        st.v[r] = val;
    }
    for &(r, val) in x {
        st.x[r] = val;
    }
    let (st, _, stop) = run_with(words, st, |_| {});
    assert_eq!(stop, Stop::Brk(0), "ran to the end");
    st
}

/// Bytes `lo, lo+1, ..., lo+15` as a vector.
fn iota(lo: u8) -> u128 {
    (0..16).fold(0, |acc, k| acc | (u128::from(lo + k) << (8 * k)))
}

#[test]
fn strlen_idiom_finds_zero_bytes() {
    // cmeq v1.16b, v0.16b, #0; shrn v1.8b, v1.8h, #4; mov x0, v1.d[0]
    let mut s = *b"abc\0efghi\0klmnop";
    s[15] = b'p';
    let st = run_v(
        &[0x4e209801, 0x0f0c8421, 0x4e083c20],
        &[(0, u128::from_le_bytes(s))],
        &[],
    );
    // One nibble per byte, set for the zero bytes 3 and 9.
    assert_eq!(st.x[0], 0x0000_00f0_0000_f000);
}

#[test]
fn dup_ins_smov_umov() {
    // dup v2.8h, w1; mov v2.s[1], w3; smov x4, v2.b[1]; umov w5, v2.h[3]
    let st = run_v(
        &[0x4e020c22, 0x4e0c1c62, 0x4e032c44, 0x0e0e3c45],
        &[],
        &[(1, 0x1234_5678_9abc), (3, 0xdead_beef_0102_0304)],
    );
    assert_eq!(st.v[2], 0x9abc9abc_9abc9abc_01020304_9abc9abc);
    assert_eq!(st.x[4], 0xffff_ffff_ffff_ff9a);
    assert_eq!(st.x[5], 0x0102);
}

#[test]
fn modified_immediates() {
    // movi v3.4s, #0xab, lsl #8; mvni v4.8h, #0x12; movi v5.2d, #0xff0000000000ff00;
    // orr v6.4s, #1, lsl #24; bic v6.8h, #0xff
    let st = run_v(
        &[0x4f052563, 0x6f008644, 0x6f04e445, 0x4f007426, 0x6f0797e6],
        &[(6, 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10)],
        &[],
    );
    assert_eq!(st.v[3], 0x0000ab00_0000ab00_0000ab00_0000ab00);
    assert_eq!(st.v[4], 0xffed_ffed_ffed_ffed_ffed_ffed_ffed_ffed);
    assert_eq!(st.v[5], 0xff00_0000_0000_ff00_ff00_0000_0000_ff00);
    assert_eq!(st.v[6], 0x0100_0300_0500_0700_0900_0b00_0d00_0f00);
}

#[test]
fn tbl_zeroes_and_tbx_keeps_out_of_range_bytes() {
    // tbl v7.16b, {v0.16b}, v1.16b; tbx v7.8b, {v0.16b, v1.16b}, v2.8b
    let mut idx = [0u8; 16];
    for (k, b) in idx.iter_mut().enumerate() {
        *b = 15 - k as u8;
    }
    idx[0] = 16;
    idx[1] = 0xff;
    let idx2 = u128::from_le_bytes([31, 16, 32, 0, 5, 200, 17, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    let st = run_v(
        &[0x4e010007, 0x0e023007],
        &[(0, iota(0x10)), (1, u128::from_le_bytes(idx)), (2, idx2)],
        &[],
    );
    let want = [
        0x00, 0x10, 0x1d, 0x10, 0x15, 0x1a, 0xff, 0x11, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(st.v[7], u128::from_le_bytes(want));
}

#[test]
fn permutes_and_ext() {
    // zip1 v2.8b, v0.8b, v1.8b; uzp2 v3.4h, v0.4h, v1.4h; trn1 v4.4s, v0.4s, v1.4s;
    // ext v5.16b, v0.16b, v1.16b, #14
    let st = run_v(
        &[0x0e013802, 0x0e415803, 0x4e812804, 0x6e017005],
        &[(0, iota(0)), (1, iota(0x10))],
        &[],
    );
    assert_eq!(st.v[2], 0x1303_1202_1101_1000);
    assert_eq!(st.v[3], 0x1716_1312_0706_0302);
    assert_eq!(st.v[4], 0x1b1a1918_0b0a0908_13121110_03020100);
    assert_eq!(st.v[5], 0x1d1c1b1a_19181716_15141312_11100f0e);
}

#[test]
fn saturating_add_sub_set_qc() {
    // sqadd v2.8b, v0.8b, v1.8b; uqsub v3.4h, v0.4h, v1.4h
    let st = run_v(
        &[0x0e210c02, 0x2e612c03],
        &[(0, 0xff10_807f), (1, 0x0120_ff01)],
        &[],
    );
    assert_eq!(st.v[2], 0x0030_807f);
    assert_eq!(st.v[3], 0xfdf0_0000);
    assert_ne!(st.fpsr & fpsr::QC, 0);
    // Without saturation QC stays clear.
    let st = run_v(&[0x0e210c02], &[(0, 1), (1, 2)], &[]);
    assert_eq!((st.v[2], st.fpsr & fpsr::QC), (3, 0));
}

#[test]
fn across_lanes() {
    // addv b2, v0.16b; uminv h3, v0.8h; umaxv s4, v0.4s
    let st = run_v(&[0x4e31b802, 0x6e71a803, 0x6eb0a804], &[(0, iota(0))], &[]);
    assert_eq!(st.v[2], 120);
    assert_eq!(st.v[3], 0x0100);
    assert_eq!(st.v[4], 0x0f0e0d0c);
}

#[test]
fn shifts_by_immediate() {
    // sshr v2.4s, v0.4s, #4; ushr v3.4s, v0.4s, #4; srshr v4.8b, v0.8b, #1;
    // sri v5.8h, v0.8h, #8; sli v6.8h, v0.8h, #8
    let ab = u128::from_le_bytes([0xab; 16]);
    let st = run_v(
        &[0x4f3c0402, 0x6f3c0403, 0x0f0f2404, 0x6f184405, 0x6f185406],
        &[(0, 0xffffffff_0000000f_7ffffff0_80000010), (5, ab), (6, ab)],
        &[],
    );
    assert_eq!(st.v[2], 0xffffffff_00000000_07ffffff_f8000001);
    assert_eq!(st.v[3], 0x0fffffff_00000000_07ffffff_08000001);
    assert_eq!(st.v[4], 0x400000f8_c0000008);
    assert_eq!(st.v[5], 0xabff_abff_ab00_ab00_ab7f_abff_ab80_ab00);
    assert_eq!(st.v[6], 0xffab_ffab_00ab_0fab_ffab_f0ab_00ab_10ab);
}

#[test]
fn popcount_of_a_vector() {
    // cnt v2.16b, v0.16b; uaddlp v2.8h, v2.16b; uaddlv s3, v2.8h
    let st = run_v(
        &[0x4e205802, 0x6e202842, 0x6e703843],
        &[(0, 0xffff_0000_1234_5678_0f0f_0f0f_8000_0001)],
        &[],
    );
    assert_eq!(st.v[3], 47);
}

#[test]
fn narrowing() {
    // xtn v2.8b, v0.8h; sqxtun v3.4h, v0.4s
    let st = run_v(
        &[0x0e212802, 0x2e612803],
        &[(0, 0x7fff_0000_0000_0000_8000_0001_ff80_1234)],
        &[],
    );
    assert_eq!(st.v[2], 0xff00_0000_0001_8034);
    assert_eq!(st.v[3], 0xffff_0000_0000_0000);
    assert_ne!(st.fpsr & fpsr::QC, 0);
}

#[test]
fn multiplies() {
    // smull v2.4s, v0.4h, v1.4h; umull2 v3.2d, v0.4s, v1.4s; pmull v4.8h, v0.8b, v1.8b;
    // mul v5.4s, v0.4s, v1.s[2]; sqdmulh v6.8h, v0.8h, v1.8h
    let st = run_v(
        &[0x0e61c002, 0x6ea1c003, 0x0e21e004, 0x4f818805, 0x4e61b406],
        &[
            (0, 0x00010000_ffffffff_00028000_7fffffff),
            (1, 0x00010000_ffffffff_fffe8000_7fff8000),
        ],
        &[],
    );
    assert_eq!(st.v[2], 0xfffffffc_40000000_3fff0001_00008000);
    assert_eq!(st.v[3], 0x00000001_00000000_fffffffe_00000001);
    assert_eq!(st.v[4], 0x0000_01fc_4000_0000_1555_5555_7f80_0000);
    assert_eq!(st.v[5], 0xffff0000_00000001_fffd8000_80000001);
    assert_eq!(st.v[6], 0xffff_7fff_7ffe_0001);
    assert_ne!(st.fpsr & fpsr::QC, 0);
}

#[test]
fn scalar_d_forms() {
    // add d2, d0, d1; cmgt d3, d0, d1
    let st = run_v(
        &[0x5ee18402, 0x5ee13403],
        &[
            (0, 0x1111_0000_0002_8000_7fff_ffff),
            (1, 0x2222_0000_fffe_8000_7fff_8000),
        ],
        &[],
    );
    assert_eq!(st.v[2], 0x0001_0000_ffff_7fff);
    assert_eq!(st.v[3], 0xffff_ffff_ffff_ffff);
}

#[test]
fn reserved_encodings_are_undefined() {
    // add v0.1d (size 11, Q=0); dup v0.2d from Q=0; sshr with immh=1xxx and Q=0
    for w in [0x0ee28420, 0x0e080420, 0x0f410420] {
        let (_, _, stop) = run_with(&[w], CpuState::new(), |_| {});
        assert_eq!(stop, Stop::Undefined(w), "{w:08x}");
    }
}
