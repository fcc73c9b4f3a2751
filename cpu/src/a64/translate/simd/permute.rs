//! AdvSIMD permute (UZP1/2, TRN1/2, ZIP1/2), extract (EXT) and table lookup (TBL, TBX).

use super::lanes::{check, el, esize, lanes, q, set_el};
use crate::a64::{Insn, Row};

pub const ROWS: &[Row] = &[
    simd_row!(
        "UZP1_asimdperm_only",
        "0q001110zz0mmmmm000110nnnnnddddd",
        check::any,
        uzp
    ),
    simd_row!(
        "TRN1_asimdperm_only",
        "0q001110zz0mmmmm001010nnnnnddddd",
        check::any,
        trn
    ),
    simd_row!(
        "ZIP1_asimdperm_only",
        "0q001110zz0mmmmm001110nnnnnddddd",
        check::any,
        zip
    ),
    simd_row!(
        "UZP2_asimdperm_only",
        "0q001110zz0mmmmm010110nnnnnddddd",
        check::any,
        uzp
    ),
    simd_row!(
        "TRN2_asimdperm_only",
        "0q001110zz0mmmmm011010nnnnnddddd",
        check::any,
        trn
    ),
    simd_row!(
        "ZIP2_asimdperm_only",
        "0q001110zz0mmmmm011110nnnnnddddd",
        check::any,
        zip
    ),
    simd_row!(
        "EXT_asimdext_only",
        "0q101110000mmmmm0iiii0nnnnnddddd",
        |i: Insn| q(i) || !i.bit(14),
        ext
    ),
    simd_row!(
        "TBL_asimdtbl_L1_1",
        "0q001110000mmmmm0ll000nnnnnddddd",
        check::all,
        tbl
    ),
    simd_row!(
        "TBX_asimdtbl_L1_1",
        "0q001110000mmmmm0ll100nnnnnddddd",
        check::all,
        tbl
    ),
];

/// (element bits, element count, Vn, Vm, part) of a permute; part is bit 14 (the "2" forms).
fn operands(st: &crate::state::CpuState, i: Insn) -> (u32, usize, u128, u128, usize) {
    let bits = esize(i);
    (
        bits,
        lanes(i, bits),
        st.v[i.rn() as usize],
        st.v[i.rm() as usize],
        i.bit(14) as usize,
    )
}

helper!(uzp, |st, i| {
    let (bits, n, vn, vm, part) = operands(st, i);
    let mut r = 0u128;
    for k in 0..n {
        let src = 2 * k + part;
        let x = if src < n {
            el(vn, bits, src)
        } else {
            el(vm, bits, src - n)
        };
        set_el(&mut r, bits, k, x);
    }
    st.v[i.rd() as usize] = r;
});

helper!(trn, |st, i| {
    let (bits, n, vn, vm, part) = operands(st, i);
    let mut r = 0u128;
    for k in 0..n / 2 {
        set_el(&mut r, bits, 2 * k, el(vn, bits, 2 * k + part));
        set_el(&mut r, bits, 2 * k + 1, el(vm, bits, 2 * k + part));
    }
    st.v[i.rd() as usize] = r;
});

helper!(zip, |st, i| {
    let (bits, n, vn, vm, part) = operands(st, i);
    let base = part * n / 2;
    let mut r = 0u128;
    for k in 0..n / 2 {
        set_el(&mut r, bits, 2 * k, el(vn, bits, base + k));
        set_el(&mut r, bits, 2 * k + 1, el(vm, bits, base + k));
    }
    st.v[i.rd() as usize] = r;
});

helper!(ext, |st, i| {
    let bytes = if q(i) { 16 } else { 8 };
    let pos = i.bits(14, 11) as usize;
    let (vn, vm) = (st.v[i.rn() as usize], st.v[i.rm() as usize]);
    let mut r = 0u128;
    for k in 0..bytes {
        let src = pos + k;
        let x = if src < bytes {
            el(vn, 8, src)
        } else {
            el(vm, 8, src - bytes)
        };
        set_el(&mut r, 8, k, x);
    }
    st.v[i.rd() as usize] = r;
});

helper!(tbl, |st, i| {
    let bytes = if q(i) { 16 } else { 8 };
    let regs = i.bits(14, 13) as usize + 1;
    let tbx = i.bit(12);
    let (vm, vd) = (st.v[i.rm() as usize], st.v[i.rd() as usize]);
    let rn = i.rn() as usize;
    let mut r = 0u128;
    for k in 0..bytes {
        let idx = el(vm, 8, k) as usize;
        let x = if idx < 16 * regs {
            el(st.v[(rn + idx / 16) % 32], 8, idx % 16)
        } else if tbx {
            el(vd, 8, k)
        } else {
            0
        };
        set_el(&mut r, 8, k, x);
    }
    st.v[i.rd() as usize] = r;
});
