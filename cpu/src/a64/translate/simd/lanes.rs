//! Lane access and the element loops shared by the AdvSIMD groups.
//!
//! Values of one element travel as `u64` holding the element's raw bits (zero-extended);
//! arithmetic that needs more range is done in `i128` through [`L`].

use crate::a64::{Flow, Insn, Translator};
use crate::ir::{Helper, Op};
use crate::state::{fpsr, CpuState};

/// Emit a call of `f`, or an undefined instruction if `ok` is false.
pub fn emit(t: &mut Translator, i: Insn, ok: bool, f: Helper) -> Flow {
    if !ok {
        return t.undefined(i);
    }
    t.op(Op::Call { f, insn: i.0 });
    Flow::Next
}

/// All-ones mask of `bits` (1..=64) bits.
#[inline]
pub fn mask(bits: u32) -> u64 {
    u64::MAX >> (64 - bits)
}

/// Element `k` of `bits` bits of `v`.
#[inline]
pub fn el(v: u128, bits: u32, k: usize) -> u64 {
    (v >> (k as u32 * bits)) as u64 & mask(bits)
}

/// Set element `k` of `bits` bits of `v` to `x`.
#[inline]
pub fn set_el(v: &mut u128, bits: u32, k: usize, x: u64) {
    let sh = k as u32 * bits;
    let m = u128::from(mask(bits)) << sh;
    *v = (*v & !m) | ((u128::from(x) << sh) & m);
}

/// `v` sign-extended from `bits`.
#[inline]
pub fn sx(v: u64, bits: u32) -> i128 {
    (((v << (64 - bits)) as i64) >> (64 - bits)) as i128
}

/// `v` zero-extended from `bits`.
#[inline]
pub fn zx(v: u64, bits: u32) -> i128 {
    (v & mask(bits)) as i128
}

/// `v` extended from `bits`, zero- if `unsigned`, else sign-extended.
#[inline]
pub fn ext(v: u64, bits: u32, unsigned: bool) -> i128 {
    if unsigned {
        zx(v, bits)
    } else {
        sx(v, bits)
    }
}

/// Fields common to the groups.
pub fn q(i: Insn) -> bool {
    i.bit(30)
}
/// Bit 29, `U`: the unsigned variant of most pairs.
pub fn u(i: Insn) -> bool {
    i.bit(29)
}
/// Bit 28 tells the scalar forms from the vector ones in every group that has both.
pub fn scalar(i: Insn) -> bool {
    i.bit(28)
}
/// Element size in bits from `size` (bits 23:22).
pub fn esize(i: Insn) -> u32 {
    8 << i.bits(23, 22)
}
/// Number of elements of `bits` bits the instruction works on.
pub fn lanes(i: Insn, bits: u32) -> usize {
    if scalar(i) {
        1
    } else if q(i) {
        (128 / bits) as usize
    } else {
        (64 / bits) as usize
    }
}

/// Translate-time checks of `size` and `Q`.
pub mod check {
    use crate::a64::Insn;

    fn size(i: Insn) -> u32 {
        i.bits(23, 22)
    }
    /// Any size, except 64-bit elements in a 64-bit vector.
    pub fn any(i: Insn) -> bool {
        size(i) != 3 || i.bit(30)
    }
    /// 8, 16 and 32-bit elements.
    pub fn no_d(i: Insn) -> bool {
        size(i) != 3
    }
    /// 16 and 32-bit elements.
    pub fn hs(i: Insn) -> bool {
        size(i) == 1 || size(i) == 2
    }
    /// 64-bit elements only (most scalar forms).
    pub fn d(i: Insn) -> bool {
        size(i) == 3
    }
    /// Every size.
    pub fn all(_: Insn) -> bool {
        true
    }
    /// 8-bit elements only.
    pub fn b(i: Insn) -> bool {
        size(i) == 0
    }
}

/// Arithmetic context of one element width: extension, truncation and saturation (which
/// records FPSR.QC).
pub struct L {
    pub bits: u32,
    pub qc: bool,
}

impl L {
    pub fn new(bits: u32) -> Self {
        Self { bits, qc: false }
    }
    /// Truncate to the element.
    #[inline]
    pub fn t(&self, v: i128) -> u64 {
        v as u64 & mask(self.bits)
    }
    #[inline]
    pub fn s(&self, v: u64) -> i128 {
        sx(v, self.bits)
    }
    #[inline]
    pub fn u(&self, v: u64) -> i128 {
        zx(v, self.bits)
    }
    #[inline]
    pub fn x(&self, v: u64, unsigned: bool) -> i128 {
        ext(v, self.bits, unsigned)
    }
    /// Extend from half the element width (the narrow operand of a widening op).
    #[inline]
    pub fn h(&self, v: u64, unsigned: bool) -> i128 {
        ext(v, self.bits / 2, unsigned)
    }
    /// Extend from twice the element width (the wide operand of a narrowing op).
    #[inline]
    pub fn w(&self, v: u64, unsigned: bool) -> i128 {
        ext(v, self.bits * 2, unsigned)
    }
    pub fn smax(&self) -> i128 {
        (1i128 << (self.bits - 1)) - 1
    }
    pub fn smin(&self) -> i128 {
        -(1i128 << (self.bits - 1))
    }
    pub fn umax(&self) -> i128 {
        (1i128 << self.bits) - 1
    }
    /// Saturate to the signed or unsigned range of the element.
    pub fn sat(&mut self, v: i128, unsigned: bool) -> u64 {
        let (lo, hi) = if unsigned {
            (0, self.umax())
        } else {
            (self.smin(), self.smax())
        };
        if v < lo {
            self.qc = true;
            self.t(lo)
        } else if v > hi {
            self.qc = true;
            self.t(hi)
        } else {
            self.t(v)
        }
    }
    pub fn sat_s(&mut self, v: i128) -> u64 {
        self.sat(v, false)
    }
    pub fn sat_u(&mut self, v: i128) -> u64 {
        self.sat(v, true)
    }
}

/// `v << shift` for a signed shift count (negative shifts right, arithmetically, rounding if
/// `round`) as the register shifts define it. Exact for every result that fits the element;
/// a result that does not fit stays out of range (for saturation) and is a multiple of
/// 2^bits (so truncation gives the architectural zero).
pub fn shift(v: i128, sh: i32, round: bool, bits: u32) -> i128 {
    if sh >= 0 {
        if v == 0 {
            0
        } else if sh as u32 >= bits {
            v.signum() << 65
        } else {
            v << sh
        }
    } else {
        let n = (-sh) as u32;
        if n > 64 {
            if round {
                0
            } else {
                v >> 64
            }
        } else if round {
            (v + (1i128 << (n - 1))) >> n
        } else {
            v >> n
        }
    }
}

fn finish(st: &mut CpuState, rd: usize, r: u128, qc: bool) {
    st.v[rd] = r;
    if qc {
        st.fpsr |= fpsr::QC;
    }
}

/// Element-wise op over `lanes` elements of `bits`: `f(l, n, m, d)` with the elements of Vn,
/// Vm (or the fixed `m` of a by-element form) and Vd; the rest of Vd is zeroed.
pub fn map(
    st: &mut CpuState,
    i: Insn,
    bits: u32,
    lanes: usize,
    m: Option<u64>,
    mut f: impl FnMut(&mut L, u64, u64, u64) -> u64,
) {
    let (vn, vm, vd) = (
        st.v[i.rn() as usize],
        st.v[i.rm() as usize],
        st.v[i.rd() as usize],
    );
    let mut l = L::new(bits);
    let mut r = 0u128;
    for k in 0..lanes {
        let b = m.unwrap_or_else(|| el(vm, bits, k));
        let x = f(&mut l, el(vn, bits, k), b, el(vd, bits, k));
        set_el(&mut r, bits, k, x);
    }
    finish(st, i.rd() as usize, r, l.qc);
}

/// Element-wise with the size and lane count from the instruction.
pub fn map_i(st: &mut CpuState, i: Insn, f: impl FnMut(&mut L, u64, u64, u64) -> u64) {
    let bits = esize(i);
    map(st, i, bits, lanes(i, bits), None, f)
}

/// Pairwise op over the concatenation Vm:Vn: element k of the result is
/// `f(c[2k], c[2k+1])`.
pub fn pairwise(st: &mut CpuState, i: Insn, f: impl Fn(&mut L, u64, u64) -> u64) {
    let bits = esize(i);
    let lanes = lanes(i, bits);
    let (vn, vm) = (st.v[i.rn() as usize], st.v[i.rm() as usize]);
    let c = |k: usize| {
        if k < lanes {
            el(vn, bits, k)
        } else {
            el(vm, bits, k - lanes)
        }
    };
    let mut l = L::new(bits);
    let mut r = 0u128;
    for k in 0..lanes {
        let x = f(&mut l, c(2 * k), c(2 * k + 1));
        set_el(&mut r, bits, k, x);
    }
    finish(st, i.rd() as usize, r, l.qc);
}

/// Widening op: wide elements of `2 * nb` bits from narrow elements of `nb` bits taken from the
/// lower (Q=0) or upper (Q=1) half of the sources. `f(l, n, m, d)` sees `l` of the wide width,
/// Vn's element (narrow, or wide if `n_wide`), Vm's narrow element (or the fixed `m`) and Vd's
/// wide element.
pub fn long(
    st: &mut CpuState,
    i: Insn,
    nb: u32,
    n_wide: bool,
    m: Option<u64>,
    mut f: impl FnMut(&mut L, u64, u64, u64) -> u64,
) {
    let wb = 2 * nb;
    let (lanes, part) = if scalar(i) {
        (1, 0)
    } else {
        (
            (64 / nb) as usize,
            if q(i) { (64 / nb) as usize } else { 0 },
        )
    };
    let (vn, vm, vd) = (
        st.v[i.rn() as usize],
        st.v[i.rm() as usize],
        st.v[i.rd() as usize],
    );
    let mut l = L::new(wb);
    let mut r = 0u128;
    for k in 0..lanes {
        let a = if n_wide {
            el(vn, wb, k)
        } else {
            el(vn, nb, part + k)
        };
        let b = m.unwrap_or_else(|| el(vm, nb, part + k));
        let x = f(&mut l, a, b, el(vd, wb, k));
        set_el(&mut r, wb, k, x);
    }
    finish(st, i.rd() as usize, r, l.qc);
}

/// Narrowing op: narrow elements of `nb` bits from wide elements of Vn and Vm, written to the
/// lower half of Vd (Q=0, upper half zeroed) or its upper half (Q=1, lower half kept).
/// `f(l, n, m)` sees `l` of the narrow width.
pub fn narrow(st: &mut CpuState, i: Insn, nb: u32, mut f: impl FnMut(&mut L, u64, u64) -> u64) {
    let wb = 2 * nb;
    let (lanes, part) = if scalar(i) {
        (1, 0)
    } else {
        (
            (64 / nb) as usize,
            if q(i) { (64 / nb) as usize } else { 0 },
        )
    };
    let (vn, vm) = (st.v[i.rn() as usize], st.v[i.rm() as usize]);
    let mut l = L::new(nb);
    let mut r = if part > 0 {
        st.v[i.rd() as usize] & u128::from(u64::MAX)
    } else {
        0
    };
    for k in 0..lanes {
        let x = f(&mut l, el(vn, wb, k), el(vm, wb, k));
        set_el(&mut r, nb, part + k, x);
    }
    finish(st, i.rd() as usize, r, l.qc);
}
