//! Floating-point arithmetic as the Arm ARM (ARMv8.0-A) defines it, on raw bit patterns.
//!
//! Every operation takes an [`FpEnv`] (the FPCR value plus a `&mut` to the FPSR, whose
//! cumulative flags IOC/DZC/OFC/UFC/IXC/IDC it ORs in), an [`FpSize`] and the operands as bit
//! patterns in the low bits of `u64`s, and returns the result's bit pattern. This is the
//! per-element API the scalar FP translation and the AdvSIMD helpers share:
//!
//! ```text
//! let mut env = FpEnv::new(st.fpcr, &mut st.fpsr);
//! let r = fpu::add(&mut env, FpSize::S, a, b);
//! ```
//!
//! FPCR fields honoured: RMode (rounding), FZ (flush denormal inputs to zero with IDC, tiny
//! results to zero with UFC; never for half precision, which v8.0 only converts), DN (default
//! NaN) and AHP (alternative half precision in conversions).
//!
//! NaN rules follow the pseudocode (`FPProcessNaNs`): a signalling NaN operand (first operand
//! first) is quieted and returned and raises IOC, else the first quiet NaN; with DN the default
//! NaN (`0x7fc00000`, `0x7ff8000000000000`, `0x7e00`) is returned instead. Host NaN results are
//! never used.
//!
//! Implementation: operands are unpacked to exact `mantissa * 2^exp` values; sums and products
//! are formed exactly in 128 bits (far operands jammed into a sticky bit) and [`round`]ed once,
//! exactly as `FPRound` does, so every rounding mode, flush-to-zero and all flags are exact.
//! The common case of round-to-nearest without flush-to-zero on normal operands takes a fast
//! path with host arithmetic for add/sub/mul/div/sqrt (inexactness found from exact error terms
//! or integer significand products).

use crate::state::{fpcr as cr, fpsr as sr};

/// Operand precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FpSize {
    H,
    S,
    D,
}

impl FpSize {
    /// From the A64 `ftype` field (00 single, 01 double, 11 half).
    pub fn from_ftype(t: u32) -> Option<Self> {
        match t {
            0 => Some(FpSize::S),
            1 => Some(FpSize::D),
            3 => Some(FpSize::H),
            _ => None,
        }
    }
    /// Width in bits.
    pub const fn bits(self) -> u32 {
        match self {
            FpSize::H => 16,
            FpSize::S => 32,
            FpSize::D => 64,
        }
    }
    /// Width in bytes.
    pub const fn bytes(self) -> u8 {
        (self.bits() / 8) as u8
    }
    const fn ebits(self) -> u32 {
        match self {
            FpSize::H => 5,
            FpSize::S => 8,
            FpSize::D => 11,
        }
    }
    /// Fraction bits.
    const fn fbits(self) -> u32 {
        match self {
            FpSize::H => 10,
            FpSize::S => 23,
            FpSize::D => 52,
        }
    }
    const fn bias(self) -> i32 {
        (1 << (self.ebits() - 1)) - 1
    }
    const fn emax(self) -> u64 {
        (1 << self.ebits()) - 1
    }
    const fn sign_bit(self) -> u64 {
        1 << (self.bits() - 1)
    }
    const fn mask(self) -> u64 {
        if self.bits() == 64 {
            u64::MAX
        } else {
            (1 << self.bits()) - 1
        }
    }
    const fn quiet_bit(self) -> u64 {
        1 << (self.fbits() - 1)
    }
}

/// Rounding modes of the pseudocode (`FPRounding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    TieEven,
    PosInf,
    NegInf,
    Zero,
    TieAway,
    /// Von Neumann rounding (FCVTXN).
    Odd,
}

impl Rounding {
    /// From FPCR.RMode or an instruction's `rmode` field (00 N, 01 P, 10 M, 11 Z).
    pub fn from_rmode(r: u32) -> Self {
        match r & 3 {
            0 => Rounding::TieEven,
            1 => Rounding::PosInf,
            2 => Rounding::NegInf,
            _ => Rounding::Zero,
        }
    }
}

/// The FP environment of one operation: FPCR (read) and FPSR (cumulative flags, written).
pub struct FpEnv<'a> {
    pub fpcr: u32,
    pub fpsr: &'a mut u32,
}

impl<'a> FpEnv<'a> {
    pub fn new(fpcr: u32, fpsr: &'a mut u32) -> Self {
        Self { fpcr, fpsr }
    }
    /// The rounding mode FPCR selects.
    pub fn rounding(&self) -> Rounding {
        Rounding::from_rmode(self.fpcr >> cr::RMODE_SHIFT)
    }
    fn fz(&self) -> bool {
        self.fpcr & cr::FZ != 0
    }
    fn dn(&self) -> bool {
        self.fpcr & cr::DN != 0
    }
    fn ahp(&self) -> bool {
        self.fpcr & cr::AHP != 0
    }
    fn raise(&mut self, flags: u32) {
        *self.fpsr |= flags;
    }
    /// FPSR.IXC is already set: the fast paths need not find out whether they are exact.
    fn inexact_seen(&self) -> bool {
        *self.fpsr & sr::IXC != 0
    }
    /// RNE and no flush-to-zero: the fast paths apply.
    fn plain(&self) -> bool {
        self.fpcr & (cr::FZ | (3 << cr::RMODE_SHIFT)) == 0
    }
}

// ---------------------------------------------------------------------------------------------
// Unpacking and constants

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Zero,
    Num,
    Inf,
    QNaN,
    SNaN,
}

/// An unpacked operand; for `Num` its value is `mant * 2^exp` (mant != 0).
#[derive(Debug, Clone, Copy)]
struct Val {
    kind: Kind,
    sign: bool,
    mant: u64,
    exp: i32,
}

impl Val {
    fn is_nan(&self) -> bool {
        matches!(self.kind, Kind::QNaN | Kind::SNaN)
    }
}

/// `FPUnpack` (`cv`: the conversion variant, where AHP applies to half precision).
fn unpack_x(env: &mut FpEnv, sz: FpSize, bits: u64, cv: bool) -> Val {
    let bits = bits & sz.mask();
    let f = sz.fbits();
    let sign = bits & sz.sign_bit() != 0;
    let e = (bits >> f) & sz.emax();
    let frac = bits & ((1 << f) - 1);
    let min_exp = 1 - sz.bias() - f as i32;
    let num = |mant, exp| Val {
        kind: Kind::Num,
        sign,
        mant,
        exp,
    };
    let other = |kind| Val {
        kind,
        sign,
        mant: 0,
        exp: 0,
    };
    if e == 0 {
        if frac == 0 {
            other(Kind::Zero)
        } else if env.fz() && sz != FpSize::H {
            env.raise(sr::IDC);
            other(Kind::Zero)
        } else {
            num(frac, min_exp)
        }
    } else if e == sz.emax() && !(cv && sz == FpSize::H && env.ahp()) {
        if frac == 0 {
            other(Kind::Inf)
        } else if frac & sz.quiet_bit() != 0 {
            other(Kind::QNaN)
        } else {
            other(Kind::SNaN)
        }
    } else {
        num(frac | (1 << f), min_exp + e as i32 - 1)
    }
}

fn unpack(env: &mut FpEnv, sz: FpSize, bits: u64) -> Val {
    unpack_x(env, sz, bits, false)
}

/// The default NaN.
pub fn default_nan(sz: FpSize) -> u64 {
    (sz.emax() << sz.fbits()) | sz.quiet_bit()
}

fn inf(sz: FpSize, sign: bool) -> u64 {
    (sz.emax() << sz.fbits()) | if sign { sz.sign_bit() } else { 0 }
}

fn zero(sz: FpSize, sign: bool) -> u64 {
    if sign {
        sz.sign_bit()
    } else {
        0
    }
}

fn max_normal(sz: FpSize, sign: bool) -> u64 {
    (inf(sz, sign) - (1 << sz.fbits())) | ((1 << sz.fbits()) - 1)
}

/// An FP constant of the form `mant * 2^exp` (exact).
fn konst(sz: FpSize, sign: bool, mant: u64, exp: i32) -> u64 {
    let mut flags = 0;
    let mut env = FpEnv::new(0, &mut flags);
    round(&mut env, sz, sign, mant as u128, exp, Rounding::Zero)
}

/// `FPProcessNaN`.
fn process_nan(env: &mut FpEnv, sz: FpSize, v: &Val, bits: u64) -> u64 {
    let mut r = bits & sz.mask();
    if v.kind == Kind::SNaN {
        env.raise(sr::IOC);
        r |= sz.quiet_bit();
    }
    if env.dn() {
        default_nan(sz)
    } else {
        r
    }
}

/// `FPProcessNaNs`: `Some(result)` if either operand is a NaN.
fn process_nans(env: &mut FpEnv, sz: FpSize, a: &Val, ab: u64, b: &Val, bb: u64) -> Option<u64> {
    if a.kind == Kind::SNaN {
        Some(process_nan(env, sz, a, ab))
    } else if b.kind == Kind::SNaN {
        Some(process_nan(env, sz, b, bb))
    } else if a.kind == Kind::QNaN {
        Some(process_nan(env, sz, a, ab))
    } else if b.kind == Kind::QNaN {
        Some(process_nan(env, sz, b, bb))
    } else {
        None
    }
}

/// `FPProcessNaNs3`.
fn process_nans3(env: &mut FpEnv, sz: FpSize, ops: [(&Val, u64); 3]) -> Option<u64> {
    for kind in [Kind::SNaN, Kind::QNaN] {
        for (v, b) in ops {
            if v.kind == kind {
                return Some(process_nan(env, sz, v, b));
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Rounding

/// `m >> shift` with the rounding information of the bits shifted out: (integer, half bit,
/// any bit below the half bit).
fn shr_round(m: u128, shift: u32) -> (u128, bool, bool) {
    match shift {
        0 => (m, false, false),
        1..=127 => (
            m >> shift,
            (m >> (shift - 1)) & 1 != 0,
            m & ((1u128 << (shift - 1)) - 1) != 0,
        ),
        128 => (0, m >> 127 != 0, m & (u128::MAX >> 1) != 0),
        _ => (0, false, m != 0),
    }
}

/// Whether to increment a magnitude `int` whose discarded fraction is described by (half,
/// rest), for a value of sign `sign`.
fn round_up(rounding: Rounding, sign: bool, int: u128, half: bool, rest: bool) -> bool {
    let inexact = half || rest;
    match rounding {
        Rounding::TieEven => half && (rest || int & 1 != 0),
        Rounding::TieAway => half,
        Rounding::PosInf => inexact && !sign,
        Rounding::NegInf => inexact && sign,
        Rounding::Zero | Rounding::Odd => false,
    }
}

/// `FPRound`: round the (nonzero) value `(-1)^sign * mant * 2^exp` to `sz`.
fn round(env: &mut FpEnv, sz: FpSize, sign: bool, mant: u128, exp: i32, rounding: Rounding) -> u64 {
    debug_assert!(mant != 0);
    let f = sz.fbits() as i32;
    let msb = 127 - mant.leading_zeros() as i32;
    // The value is in [2^e, 2^(e+1)).
    let e = exp + msb;
    let min_exp = 1 - sz.bias();
    if env.fz() && sz != FpSize::H && e < min_exp {
        env.raise(sr::UFC);
        return zero(sz, sign);
    }
    let mut biased = (e - min_exp + 1).max(0);
    // Exponent of the unit in the last place.
    let ulp = if biased == 0 { min_exp - f } else { e - f };
    let (mut int, half, rest) = if ulp >= exp {
        shr_round(mant, (ulp - exp) as u32)
    } else {
        // Exact; at most f+1 bits so the shift cannot overflow.
        (mant << (exp - ulp), false, false)
    };
    let mut inexact = half || rest;
    if biased == 0 && inexact {
        env.raise(sr::UFC);
    }
    if round_up(rounding, sign, int, half, rest) {
        int += 1;
        if int == 1 << f {
            biased = 1;
        }
        if int == 1 << (f + 1) {
            biased += 1;
            int >>= 1;
        }
    }
    if inexact && rounding == Rounding::Odd {
        int |= 1;
    }
    let sbit = if sign { sz.sign_bit() } else { 0 };
    let result;
    if sz == FpSize::H && env.ahp() {
        if biased >= 1 << sz.ebits() {
            env.raise(sr::IOC);
            return sbit | 0x7fff;
        }
        result = sbit | ((biased as u64) << f) | (int as u64 & ((1 << f) - 1));
    } else if biased as u64 >= sz.emax() {
        let to_inf = match rounding {
            Rounding::TieEven | Rounding::TieAway => true,
            Rounding::PosInf => !sign,
            Rounding::NegInf => sign,
            Rounding::Zero | Rounding::Odd => false,
        };
        env.raise(sr::OFC);
        inexact = true;
        result = if to_inf {
            inf(sz, sign)
        } else {
            max_normal(sz, sign)
        };
    } else {
        result = sbit | ((biased as u64) << f) | (int as u64 & ((1 << f) - 1));
    }
    if inexact {
        env.raise(sr::IXC);
    }
    result
}

/// Round an exact result that may be zero (`None`): an exact zero sum is +0, or -0 when
/// rounding towards minus infinity.
fn round_sum(env: &mut FpEnv, sz: FpSize, r: Option<(bool, u128, i32)>, rounding: Rounding) -> u64 {
    match r {
        Some((s, m, e)) => round(env, sz, s, m, e, rounding),
        None => zero(sz, rounding == Rounding::NegInf),
    }
}

/// Shift `m` so its top bit is bit 125.
fn norm125(m: u128, e: i32) -> (u128, i32) {
    let s = m.leading_zeros() as i32 - 2;
    if s >= 0 {
        (m << s, e - s)
    } else {
        // Callers never pass more than 126 bits; keep a sticky bit anyway.
        let k = (-s) as u32;
        ((m >> k) | ((m & ((1 << k) - 1) != 0) as u128), e + k as i32)
    }
}

/// The sum of two nonzero exact values, with far low bits jammed into a sticky bit; `None`
/// for an exact zero.
fn add_exact(a: (bool, u128, i32), b: (bool, u128, i32)) -> Option<(bool, u128, i32)> {
    let (ma, ea) = norm125(a.1, a.2);
    let (mb, eb) = norm125(b.1, b.2);
    let ((sl, ml, el), (ss, ms, es)) = if (ea, ma) >= (eb, mb) {
        ((a.0, ma, ea), (b.0, mb, eb))
    } else {
        ((b.0, mb, eb), (a.0, ma, ea))
    };
    let d = (el - es) as u32;
    let ms = match d {
        0 => ms,
        1..=127 => (ms >> d) | ((ms & ((1u128 << d) - 1)) != 0) as u128,
        _ => 1,
    };
    if sl == ss {
        Some((sl, ml + ms, el))
    } else {
        let r = ml - ms;
        (r != 0).then_some((sl, r, el))
    }
}

// ---------------------------------------------------------------------------------------------
// Host fast paths (RNE, no FZ). They return None when the slow path must decide.

fn normal_both(sz: FpSize, a: u64, b: u64) -> bool {
    let f = sz.fbits();
    let ea = (a >> f) & sz.emax();
    let eb = (b >> f) & sz.emax();
    ea != 0 && ea != sz.emax() && eb != 0 && eb != sz.emax()
}

/// True if `r` is a finite normal number above the smallest normal: a result equal to the
/// smallest normal may have been rounded up from a tiny value, which the Arm ARM (tininess
/// before rounding) reports as underflow and the host does not.
fn normal_result_d(r: f64) -> bool {
    r.is_normal() && r.abs() > f64::MIN_POSITIVE
}

fn normal_result_s(r: f32) -> bool {
    r.is_normal() && r.abs() > f32::MIN_POSITIVE
}

fn fast_add(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> Option<u64> {
    if !env.plain() || !normal_both(sz, a, b) {
        return None;
    }
    match sz {
        FpSize::D => {
            let (x, y) = (f64::from_bits(a), f64::from_bits(b));
            let s = x + y;
            if !normal_result_d(s) {
                return None;
            }
            // TwoSum: the exact rounding error of s (not needed once IXC is set).
            if !env.inexact_seen() {
                let bb = s - x;
                let err = (x - (s - bb)) + (y - bb);
                if err != 0.0 {
                    env.raise(sr::IXC);
                }
            }
            Some(s.to_bits())
        }
        FpSize::S => {
            let (x, y) = (f32::from_bits(a as u32), f32::from_bits(b as u32));
            let s = x + y;
            if !normal_result_s(s) {
                return None;
            }
            // The f64 sum of two f32s is exact unless their exponents are far apart; exact
            // inexactness: compare s against the f64 sum, checking that sum was exact.
            if !env.inexact_seen() {
                let d = x as f64 + y as f64;
                let bb = d - x as f64;
                let err = (x as f64 - (d - bb)) + (y as f64 - bb);
                if err != 0.0 || s as f64 != d {
                    env.raise(sr::IXC);
                }
            }
            Some(s.to_bits() as u64)
        }
        FpSize::H => None,
    }
}

fn fast_mul(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> Option<u64> {
    if !env.plain() || !normal_both(sz, a, b) {
        return None;
    }
    match sz {
        FpSize::D => {
            let (x, y) = (f64::from_bits(a), f64::from_bits(b));
            let p = x * y;
            if !normal_result_d(p) {
                return None;
            }
            // The product of 53-bit mantissas is exact in 106 bits: check the low part.
            if !env.inexact_seen() {
                let (ma, mb) = (a & ((1 << 52) - 1) | 1 << 52, b & ((1 << 52) - 1) | 1 << 52);
                let prod = ma as u128 * mb as u128;
                let keep = if prod >> 105 != 0 { 53 } else { 52 };
                if prod & ((1u128 << keep) - 1) != 0 {
                    env.raise(sr::IXC);
                }
            }
            Some(p.to_bits())
        }
        FpSize::S => {
            let (x, y) = (f32::from_bits(a as u32), f32::from_bits(b as u32));
            let d = x as f64 * y as f64; // exact
            let p = d as f32;
            if !normal_result_s(p) {
                return None;
            }
            if p as f64 != d {
                env.raise(sr::IXC);
            }
            Some(p.to_bits() as u64)
        }
        FpSize::H => None,
    }
}

/// The significand (with the implicit bit) of a normal number of `sz`.
fn significand(sz: FpSize, bits: u64) -> u128 {
    ((bits & ((1 << sz.fbits()) - 1)) | (1 << sz.fbits())) as u128
}

/// `v` without its trailing zero bits (v != 0).
fn odd_part(v: u128) -> u128 {
    v >> v.trailing_zeros()
}

fn fast_div(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> Option<u64> {
    if !env.plain() || !normal_both(sz, a, b) {
        return None;
    }
    let q = match sz {
        FpSize::D => {
            let q = f64::from_bits(a) / f64::from_bits(b);
            if !normal_result_d(q) {
                return None;
            }
            q.to_bits()
        }
        FpSize::S => {
            let q = f32::from_bits(a as u32) / f32::from_bits(b as u32);
            if !normal_result_s(q) {
                return None;
            }
            q.to_bits() as u64
        }
        FpSize::H => return None,
    };
    // q is exact iff q * b == a; as q is within an ulp of a / b, comparing the odd parts of
    // the integer significands decides it.
    if !env.inexact_seen()
        && odd_part(significand(sz, q) * significand(sz, b)) != odd_part(significand(sz, a))
    {
        env.raise(sr::IXC);
    }
    Some(q)
}

fn fast_sqrt(env: &mut FpEnv, sz: FpSize, a: u64) -> Option<u64> {
    if !env.plain() || !normal_both(sz, a, a) || a & sz.sign_bit() != 0 {
        return None;
    }
    let r = match sz {
        FpSize::D => f64::from_bits(a).sqrt().to_bits(),
        FpSize::S => f32::from_bits(a as u32).sqrt().to_bits() as u64,
        FpSize::H => return None,
    };
    let m = significand(sz, r);
    if !env.inexact_seen() && odd_part(m * m) != odd_part(significand(sz, a)) {
        env.raise(sr::IXC);
    }
    Some(r)
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

fn addsub(env: &mut FpEnv, sz: FpSize, a: u64, b: u64, neg_b: bool) -> u64 {
    let rounding = env.rounding();
    let va = unpack(env, sz, a);
    let mut vb = unpack(env, sz, b);
    if let Some(r) = process_nans(env, sz, &va, a, &vb, b) {
        return r;
    }
    vb.sign ^= neg_b;
    match (va.kind, vb.kind) {
        (Kind::Inf, Kind::Inf) if va.sign != vb.sign => {
            env.raise(sr::IOC);
            default_nan(sz)
        }
        (Kind::Inf, _) => inf(sz, va.sign),
        (_, Kind::Inf) => inf(sz, vb.sign),
        (Kind::Zero, Kind::Zero) => {
            if va.sign == vb.sign {
                zero(sz, va.sign)
            } else {
                zero(sz, rounding == Rounding::NegInf)
            }
        }
        (Kind::Zero, _) => round(env, sz, vb.sign, vb.mant as u128, vb.exp, rounding),
        (_, Kind::Zero) => round(env, sz, va.sign, va.mant as u128, va.exp, rounding),
        _ => {
            let r = add_exact(
                (va.sign, va.mant as u128, va.exp),
                (vb.sign, vb.mant as u128, vb.exp),
            );
            round_sum(env, sz, r, rounding)
        }
    }
}

/// FADD.
pub fn add(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> u64 {
    if let Some(r) = fast_add(env, sz, a, b) {
        return r;
    }
    addsub(env, sz, a, b, false)
}

/// FSUB.
pub fn sub(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> u64 {
    if let Some(r) = fast_add(env, sz, a, b ^ sz.sign_bit()) {
        return r;
    }
    addsub(env, sz, a, b, true)
}

fn mul_x(env: &mut FpEnv, sz: FpSize, a: u64, b: u64, mulx: bool) -> u64 {
    let rounding = env.rounding();
    let va = unpack(env, sz, a);
    let vb = unpack(env, sz, b);
    if let Some(r) = process_nans(env, sz, &va, a, &vb, b) {
        return r;
    }
    let sign = va.sign ^ vb.sign;
    match (va.kind, vb.kind) {
        (Kind::Inf, Kind::Zero) | (Kind::Zero, Kind::Inf) => {
            if mulx {
                konst(sz, sign, 1, 1)
            } else {
                env.raise(sr::IOC);
                default_nan(sz)
            }
        }
        (Kind::Inf, _) | (_, Kind::Inf) => inf(sz, sign),
        (Kind::Zero, _) | (_, Kind::Zero) => zero(sz, sign),
        _ => round(
            env,
            sz,
            sign,
            va.mant as u128 * vb.mant as u128,
            va.exp + vb.exp,
            rounding,
        ),
    }
}

/// FMUL.
pub fn mul(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> u64 {
    if let Some(r) = fast_mul(env, sz, a, b) {
        return r;
    }
    mul_x(env, sz, a, b, false)
}

/// FMULX: as FMUL, but infinity times zero is 2.0 (signed).
pub fn mulx(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> u64 {
    if let Some(r) = fast_mul(env, sz, a, b) {
        return r;
    }
    mul_x(env, sz, a, b, true)
}

/// FNMUL: the negated product (the sign of a NaN result is flipped too).
pub fn nmul(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> u64 {
    mul(env, sz, a, b) ^ sz.sign_bit()
}

/// FDIV.
pub fn div(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> u64 {
    if let Some(r) = fast_div(env, sz, a, b) {
        return r;
    }
    div_soft(env, sz, a, b)
}

fn div_soft(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> u64 {
    let rounding = env.rounding();
    let va = unpack(env, sz, a);
    let vb = unpack(env, sz, b);
    if let Some(r) = process_nans(env, sz, &va, a, &vb, b) {
        return r;
    }
    let sign = va.sign ^ vb.sign;
    match (va.kind, vb.kind) {
        (Kind::Inf, Kind::Inf) | (Kind::Zero, Kind::Zero) => {
            env.raise(sr::IOC);
            default_nan(sz)
        }
        (Kind::Inf, _) => inf(sz, sign),
        (_, Kind::Zero) => {
            env.raise(sr::DZC);
            inf(sz, sign)
        }
        (Kind::Zero, _) | (_, Kind::Inf) => zero(sz, sign),
        _ => {
            let ma = va.mant as u128;
            let s = ma.leading_zeros() as i32 - 2;
            let n = ma << s;
            let d = vb.mant as u128;
            let mut q = n / d;
            if !n.is_multiple_of(d) {
                q |= 1;
            }
            round(env, sz, sign, q, va.exp - s - vb.exp, rounding)
        }
    }
}

/// Integer square root of `m` and whether it was exact.
fn isqrt(m: u128) -> (u128, bool) {
    let mut r = (m as f64).sqrt() as u128;
    // Newton steps from the float estimate, then exact correction.
    for _ in 0..2 {
        if r == 0 {
            break;
        }
        r = (r + m / r) / 2;
    }
    while r.checked_mul(r).is_none_or(|sq| sq > m) {
        r -= 1;
    }
    while (r + 1).checked_mul(r + 1).is_some_and(|sq| sq <= m) {
        r += 1;
    }
    (r, r * r == m)
}

/// FSQRT.
pub fn sqrt(env: &mut FpEnv, sz: FpSize, a: u64) -> u64 {
    if let Some(r) = fast_sqrt(env, sz, a) {
        return r;
    }
    sqrt_soft(env, sz, a)
}

fn sqrt_soft(env: &mut FpEnv, sz: FpSize, a: u64) -> u64 {
    let rounding = env.rounding();
    let va = unpack(env, sz, a);
    match va.kind {
        Kind::QNaN | Kind::SNaN => process_nan(env, sz, &va, a),
        Kind::Zero => zero(sz, va.sign),
        _ if va.sign => {
            env.raise(sr::IOC);
            default_nan(sz)
        }
        Kind::Inf => inf(sz, false),
        Kind::Num => {
            let mut m = va.mant as u128;
            let mut e = va.exp;
            // Scale to ~124 bits with an even exponent.
            let mut s = m.leading_zeros() as i32 - 4;
            if (e - s) & 1 != 0 {
                s += 1;
            }
            m <<= s;
            e -= s;
            let (mut r, exact) = isqrt(m);
            if !exact {
                r |= 1;
            }
            round(env, sz, false, r, e / 2, rounding)
        }
    }
}

/// The fused multiply-add `addend + op1 * op2` of `FPMulAdd`, with one rounding.
pub fn mul_add(env: &mut FpEnv, sz: FpSize, addend: u64, op1: u64, op2: u64) -> u64 {
    if let Some(r) = fast_mul_add(env, sz, addend, op1, op2) {
        return r;
    }
    mul_add_soft(env, sz, addend, op1, op2)
}

/// The host's fused multiply-add, once FPSR.IXC is already set (as QEMU's hardfloat does:
/// the sticky flag then needs no exactness test, and programs set it early): normal
/// operands and a normal result above the smallest one raise no other flag.
fn fast_mul_add(env: &mut FpEnv, sz: FpSize, addend: u64, op1: u64, op2: u64) -> Option<u64> {
    if !env.plain()
        || !env.inexact_seen()
        || !normal_both(sz, op1, op2)
        || !normal_both(sz, addend, addend)
    {
        return None;
    }
    match sz {
        FpSize::D => {
            let r = f64::from_bits(op1).mul_add(f64::from_bits(op2), f64::from_bits(addend));
            normal_result_d(r).then(|| r.to_bits())
        }
        FpSize::S => {
            let (x, y, z) = (
                f32::from_bits(op1 as u32),
                f32::from_bits(op2 as u32),
                f32::from_bits(addend as u32),
            );
            let r = x.mul_add(y, z);
            normal_result_s(r).then(|| r.to_bits() as u64)
        }
        FpSize::H => None,
    }
}

fn mul_add_soft(env: &mut FpEnv, sz: FpSize, addend: u64, op1: u64, op2: u64) -> u64 {
    let rounding = env.rounding();
    let va = unpack(env, sz, addend);
    let v1 = unpack(env, sz, op1);
    let v2 = unpack(env, sz, op2);
    let inf1 = v1.kind == Kind::Inf;
    let inf2 = v2.kind == Kind::Inf;
    let zero1 = v1.kind == Kind::Zero;
    let zero2 = v2.kind == Kind::Zero;
    let nan = process_nans3(env, sz, [(&va, addend), (&v1, op1), (&v2, op2)]);
    if va.kind == Kind::QNaN && ((inf1 && zero2) || (zero1 && inf2)) {
        env.raise(sr::IOC);
        return default_nan(sz);
    }
    if let Some(r) = nan {
        return r;
    }
    let sign_p = v1.sign ^ v2.sign;
    let inf_p = inf1 || inf2;
    let zero_p = zero1 || zero2;
    let inf_a = va.kind == Kind::Inf;
    let zero_a = va.kind == Kind::Zero;
    if (inf1 && zero2) || (zero1 && inf2) || (inf_a && inf_p && va.sign != sign_p) {
        env.raise(sr::IOC);
        return default_nan(sz);
    }
    if inf_a {
        return inf(sz, va.sign);
    }
    if inf_p {
        return inf(sz, sign_p);
    }
    if zero_a && zero_p {
        return if va.sign == sign_p {
            zero(sz, va.sign)
        } else {
            zero(sz, rounding == Rounding::NegInf)
        };
    }
    if zero_p {
        return round(env, sz, va.sign, va.mant as u128, va.exp, rounding);
    }
    let p = (sign_p, v1.mant as u128 * v2.mant as u128, v1.exp + v2.exp);
    if zero_a {
        return round(env, sz, p.0, p.1, p.2, rounding);
    }
    let r = add_exact((va.sign, va.mant as u128, va.exp), p);
    round_sum(env, sz, r, rounding)
}

/// FMAX / FMIN (`max`) of `FPMax`/`FPMin`.
fn max_min(env: &mut FpEnv, sz: FpSize, a: u64, b: u64, max: bool) -> u64 {
    let va = unpack(env, sz, a);
    let vb = unpack(env, sz, b);
    if let Some(r) = process_nans(env, sz, &va, a, &vb, b) {
        return r;
    }
    let (ka, kb) = (order_key(sz, &va, a), order_key(sz, &vb, b));
    let pick_a = if max { ka > kb } else { ka < kb };
    let (v, bits) = if pick_a { (va, a) } else { (vb, b) };
    match v.kind {
        Kind::Zero => {
            let sign = if max {
                va.sign && vb.sign
            } else {
                va.sign || vb.sign
            };
            zero(sz, sign)
        }
        _ => bits & sz.mask(),
    }
}

/// A key ordering non-NaN values numerically (both zeros equal).
fn order_key(sz: FpSize, v: &Val, bits: u64) -> i64 {
    if v.kind == Kind::Zero {
        return 0;
    }
    let mag = (bits & sz.mask() & !sz.sign_bit()) as i64;
    if v.sign {
        -mag
    } else {
        mag
    }
}

/// FMAX.
pub fn max(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> u64 {
    max_min(env, sz, a, b, true)
}

/// FMIN.
pub fn min(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> u64 {
    max_min(env, sz, a, b, false)
}

/// FMAXNM / FMINNM: a single quiet NaN loses against a number.
fn max_min_num(env: &mut FpEnv, sz: FpSize, a: u64, b: u64, max: bool) -> u64 {
    let qa = is_qnan(sz, a);
    let qb = is_qnan(sz, b);
    // -inf for max, +inf for min.
    let repl = inf(sz, max);
    let (a, b) = match (qa, qb) {
        (true, false) => (repl, b),
        (false, true) => (a, repl),
        _ => (a, b),
    };
    max_min(env, sz, a, b, max)
}

fn is_qnan(sz: FpSize, bits: u64) -> bool {
    let f = sz.fbits();
    (bits >> f) & sz.emax() == sz.emax() && bits & sz.quiet_bit() != 0
}

/// FMAXNM.
pub fn max_num(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> u64 {
    max_min_num(env, sz, a, b, true)
}

/// FMINNM.
pub fn min_num(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> u64 {
    max_min_num(env, sz, a, b, false)
}

/// FABD: |a - b|.
pub fn abd(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> u64 {
    abs(sz, sub(env, sz, a, b))
}

/// FABS (no NaN processing).
pub fn abs(sz: FpSize, a: u64) -> u64 {
    a & sz.mask() & !sz.sign_bit()
}

/// FNEG (no NaN processing).
pub fn neg(sz: FpSize, a: u64) -> u64 {
    (a ^ sz.sign_bit()) & sz.mask()
}

// ---------------------------------------------------------------------------------------------
// Comparisons

/// `FPCompare`: NZCV in bits 3..0 (`0110` equal, `1000` less, `0010` greater, `0011`
/// unordered). `signal` (FCMPE) raises IOC for any NaN, else only for signalling NaNs.
pub fn compare(env: &mut FpEnv, sz: FpSize, a: u64, b: u64, signal: bool) -> u32 {
    let va = unpack(env, sz, a);
    let vb = unpack(env, sz, b);
    if va.is_nan() || vb.is_nan() {
        if signal || va.kind == Kind::SNaN || vb.kind == Kind::SNaN {
            env.raise(sr::IOC);
        }
        return 0b0011;
    }
    let (ka, kb) = (order_key(sz, &va, a), order_key(sz, &vb, b));
    match ka.cmp(&kb) {
        std::cmp::Ordering::Equal => 0b0110,
        std::cmp::Ordering::Less => 0b1000,
        std::cmp::Ordering::Greater => 0b0010,
    }
}

/// Vector compare conditions (FCMEQ/FCMGE/FCMGT; FACGE/FACGT compare absolute values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ge,
    Gt,
}

/// `FPCompareEQ/GE/GT`: true or false; NaNs give false (IOC: EQ only for signalling NaNs,
/// GE/GT for any NaN).
pub fn compare_cond(env: &mut FpEnv, sz: FpSize, a: u64, b: u64, c: Cmp) -> bool {
    let va = unpack(env, sz, a);
    let vb = unpack(env, sz, b);
    if va.is_nan() || vb.is_nan() {
        if c != Cmp::Eq || va.kind == Kind::SNaN || vb.kind == Kind::SNaN {
            env.raise(sr::IOC);
        }
        return false;
    }
    let (ka, kb) = (order_key(sz, &va, a), order_key(sz, &vb, b));
    match c {
        Cmp::Eq => ka == kb,
        Cmp::Ge => ka >= kb,
        Cmp::Gt => ka > kb,
    }
}

// ---------------------------------------------------------------------------------------------
// Conversions

/// `FPConvert` between precisions (FCVT, FCVTL, FCVTN; `Odd` rounding for FCVTXN).
pub fn convert(env: &mut FpEnv, from: FpSize, to: FpSize, a: u64, rounding: Rounding) -> u64 {
    let v = unpack_x(env, from, a, true);
    let alt_hp = to == FpSize::H && env.ahp();
    match v.kind {
        Kind::QNaN | Kind::SNaN => {
            let r = if alt_hp {
                zero(to, v.sign)
            } else if env.dn() {
                default_nan(to)
            } else {
                // Keep the top fraction bits of the payload.
                let frac = a & ((1 << from.fbits()) - 1);
                let frac = if to.fbits() >= from.fbits() {
                    frac << (to.fbits() - from.fbits())
                } else {
                    frac >> (from.fbits() - to.fbits())
                };
                inf(to, v.sign) | frac | to.quiet_bit()
            };
            if v.kind == Kind::SNaN || alt_hp {
                env.raise(sr::IOC);
            }
            r
        }
        Kind::Inf => {
            if alt_hp {
                env.raise(sr::IOC);
                zero(to, v.sign) | 0x7fff
            } else {
                inf(to, v.sign)
            }
        }
        Kind::Zero => zero(to, v.sign),
        Kind::Num => round(env, to, v.sign, v.mant as u128, v.exp, rounding),
    }
}

/// Round the magnitude `mant * 2^exp` to an integer: (integer magnitude saturated to u128
/// range well above any target, inexact).
fn to_integer_mag(sign: bool, mant: u64, exp: i32, rounding: Rounding) -> (u128, bool) {
    if exp >= 0 {
        if exp > 64 {
            return (u128::MAX >> 1, false);
        }
        return ((mant as u128) << exp, false);
    }
    let (int, half, rest) = shr_round(mant as u128, (-exp) as u32);
    let up = match rounding {
        // For a negative value the directed modes flip: towards +inf truncates the magnitude.
        Rounding::PosInf => (half || rest) && !sign,
        Rounding::NegInf => (half || rest) && sign,
        r => round_up(r, sign, int, half, rest),
    };
    (int + up as u128, half || rest)
}

/// `FPToFixed`: convert to a signed/unsigned integer of `ibits` (32/64) with `fbits`
/// fraction bits, saturating (IOC), NaN giving 0 (IOC). The result is zero-extended from
/// `ibits`.
pub fn to_fixed(
    env: &mut FpEnv,
    sz: FpSize,
    a: u64,
    fbits: u32,
    unsigned: bool,
    ibits: u32,
    rounding: Rounding,
) -> u64 {
    let v = unpack(env, sz, a);
    let (sign, mag, inexact) = match v.kind {
        Kind::QNaN | Kind::SNaN => {
            env.raise(sr::IOC);
            return 0;
        }
        Kind::Zero => (v.sign, 0, false),
        Kind::Inf => (v.sign, u128::MAX >> 1, false),
        Kind::Num => {
            let (m, inexact) = to_integer_mag(v.sign, v.mant, v.exp + fbits as i32, rounding);
            (v.sign, m, inexact)
        }
    };
    let (lo, hi): (i128, i128) = if unsigned {
        (0, (1i128 << ibits) - 1)
    } else {
        (-(1i128 << (ibits - 1)), (1i128 << (ibits - 1)) - 1)
    };
    let mag = mag.min(1u128 << 100) as i128;
    let val = if sign { -mag } else { mag };
    let mask = if ibits == 64 {
        u64::MAX
    } else {
        (1u64 << ibits) - 1
    };
    if val < lo || val > hi {
        env.raise(sr::IOC);
        return (val.clamp(lo, hi) as u64) & mask;
    }
    if inexact {
        env.raise(sr::IXC);
    }
    (val as u64) & mask
}

/// `FixedToFP`: the integer `x` (of `ibits`, signed or not) with `fbits` fraction bits.
pub fn from_fixed(
    env: &mut FpEnv,
    sz: FpSize,
    x: u64,
    fbits: u32,
    unsigned: bool,
    ibits: u32,
    rounding: Rounding,
) -> u64 {
    let (sign, mag) = if unsigned {
        let m = if ibits == 64 {
            x
        } else {
            x & ((1 << ibits) - 1)
        };
        (false, m)
    } else {
        let s = if ibits == 64 {
            x as i64
        } else {
            ((x << (64 - ibits)) as i64) >> (64 - ibits)
        };
        (s < 0, s.unsigned_abs())
    };
    if mag == 0 {
        return zero(sz, false);
    }
    round(env, sz, sign, mag as u128, -(fbits as i32), rounding)
}

/// `FPRoundInt` (FRINT*): `exact` (FRINTX) raises IXC when the value changes.
pub fn round_int(env: &mut FpEnv, sz: FpSize, a: u64, rounding: Rounding, exact: bool) -> u64 {
    let v = unpack(env, sz, a);
    match v.kind {
        Kind::QNaN | Kind::SNaN => process_nan(env, sz, &v, a),
        Kind::Inf => inf(sz, v.sign),
        Kind::Zero => zero(sz, v.sign),
        Kind::Num => {
            if v.exp >= 0 {
                return a & sz.mask();
            }
            let (m, inexact) = to_integer_mag(v.sign, v.mant, v.exp, rounding);
            if inexact && exact {
                env.raise(sr::IXC);
            }
            if m == 0 {
                zero(sz, v.sign)
            } else {
                let mut scratch = 0;
                let mut e2 = FpEnv::new(env.fpcr, &mut scratch);
                round(&mut e2, sz, v.sign, m, 0, Rounding::Zero)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Estimates and Newton-Raphson steps (AdvSIMD)

/// FRECPS: `2.0 - a * b` fused (infinity times zero gives 2.0).
pub fn recip_step(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> u64 {
    step_fused(env, sz, a, b, false)
}

/// FRSQRTS: `(3.0 - a * b) / 2` fused (infinity times zero gives 1.5).
pub fn rsqrt_step(env: &mut FpEnv, sz: FpSize, a: u64, b: u64) -> u64 {
    step_fused(env, sz, a, b, true)
}

fn step_fused(env: &mut FpEnv, sz: FpSize, a: u64, b: u64, rsqrt: bool) -> u64 {
    let rounding = env.rounding();
    let a = neg(sz, a);
    let v1 = unpack(env, sz, a);
    let v2 = unpack(env, sz, b);
    if let Some(r) = process_nans(env, sz, &v1, a, &v2, b) {
        return r;
    }
    let inf1 = v1.kind == Kind::Inf;
    let inf2 = v2.kind == Kind::Inf;
    let zero1 = v1.kind == Kind::Zero;
    let zero2 = v2.kind == Kind::Zero;
    let sign_p = v1.sign ^ v2.sign;
    // 2.0 = 1 * 2^1; 3.0 = 3 * 2^0; 1.5 = 3 * 2^-1.
    let (cm, ce) = if rsqrt { (3u128, 0) } else { (1u128, 1) };
    if (inf1 && zero2) || (zero1 && inf2) {
        return if rsqrt {
            konst(sz, false, 3, -1)
        } else {
            konst(sz, false, 1, 1)
        };
    }
    if inf1 || inf2 {
        return inf(sz, sign_p);
    }
    let shift = if rsqrt { 1 } else { 0 };
    if zero1 || zero2 {
        return round(env, sz, false, cm, ce - shift, rounding);
    }
    let p = (sign_p, v1.mant as u128 * v2.mant as u128, v1.exp + v2.exp);
    match add_exact((false, cm, ce), p) {
        Some((s, m, e)) => round(env, sz, s, m, e - shift, rounding),
        None => zero(sz, rounding == Rounding::NegInf),
    }
}

/// FRECPX: the reciprocal exponent (fraction cleared, exponent inverted).
pub fn recpx(env: &mut FpEnv, sz: FpSize, a: u64) -> u64 {
    let v = unpack(env, sz, a);
    let f = sz.fbits();
    let sbit = if v.sign { sz.sign_bit() } else { 0 };
    match v.kind {
        Kind::QNaN | Kind::SNaN => process_nan(env, sz, &v, a),
        _ => {
            let e = (a >> f) & sz.emax();
            if e == 0 {
                // Zero and denormals: max exponent - 1.
                sbit | ((sz.emax() - 1) << f)
            } else {
                sbit | (((!e) & sz.emax()) << f)
            }
        }
    }
}

/// `RecipEstimate` on a 9-bit scaled input (256..511): the 8-bit table value (256..511).
fn recip_estimate_table(a: u32) -> u32 {
    let a = a * 2 + 1;
    let b = (1u32 << 19) / a;
    b.div_ceil(2)
}

/// `RecipSqrtEstimate` on a 9-bit input (128..511): the 9-bit result (256..511).
fn rsqrt_estimate_table(a: u32) -> u32 {
    let a = if a < 256 {
        a * 2 + 1
    } else {
        (((a >> 1) << 1) + 1) * 2
    } as u64;
    let mut b: u64 = 512;
    while a * (b + 1) * (b + 1) < (1 << 28) {
        b += 1;
    }
    b.div_ceil(2) as u32
}

/// FRECPE (floating point).
pub fn recip_estimate(env: &mut FpEnv, sz: FpSize, a: u64) -> u64 {
    let v = unpack(env, sz, a);
    let f = sz.fbits();
    let sbit = if v.sign { sz.sign_bit() } else { 0 };
    match v.kind {
        Kind::QNaN | Kind::SNaN => return process_nan(env, sz, &v, a),
        Kind::Inf => return zero(sz, v.sign),
        Kind::Zero => {
            env.raise(sr::DZC);
            return inf(sz, v.sign);
        }
        Kind::Num => {}
    }
    let a = a & sz.mask();
    let bias = sz.bias();
    // |value| < 2^-(bias+1): the reciprocal overflows.
    if fp_abs_lt_2pow(sz, a, -(bias + 1)) {
        let to_inf = match env.rounding() {
            Rounding::TieEven | Rounding::TieAway => true,
            Rounding::PosInf => !v.sign,
            Rounding::NegInf => v.sign,
            Rounding::Zero | Rounding::Odd => false,
        };
        env.raise(sr::OFC | sr::IXC);
        return if to_inf {
            inf(sz, v.sign)
        } else {
            max_normal(sz, v.sign)
        };
    }
    // Large inputs underflow to zero with FZ.
    let e = ((a >> f) & sz.emax()) as i32;
    if env.fz() && sz != FpSize::H && e >= 2 * bias - 1 {
        env.raise(sr::UFC);
        return sbit;
    }
    // Scaled fraction: 52-bit form.
    let mut exp = e;
    let mut fraction = (a & ((1 << f) - 1)) << (52 - f);
    if exp == 0 {
        if fraction & (1 << 51) == 0 {
            exp = -1;
            fraction = (fraction << 2) & ((1 << 52) - 1);
        } else {
            fraction = (fraction << 1) & ((1 << 52) - 1);
        }
    }
    let scaled = (1 << 8) | (fraction >> 44) as u32;
    let result_exp = 2 * bias - 1 - exp; // pseudocode: 253 / 2045 / 29 - exponent
    let est = recip_estimate_table(scaled) as u64; // 256..511
    let mut frac_r = (est & 0xff) << 44;
    let mut re = result_exp;
    if re == 0 {
        frac_r = (1 << 51) | (frac_r >> 1);
    } else if re == -1 {
        frac_r = (1 << 50) | (frac_r >> 2);
        re = 0;
    }
    sbit | ((re as u64) << f) | (frac_r >> (52 - f))
}

/// |a| < 2^k for a finite number `a`.
fn fp_abs_lt_2pow(sz: FpSize, a: u64, k: i32) -> bool {
    let f = sz.fbits();
    let e = ((a >> f) & sz.emax()) as i32;
    let unb = if e == 0 {
        // Denormal: below 2^(1-bias).
        let frac = a & ((1 << f) - 1);
        let msb = 63 - frac.leading_zeros() as i32;
        1 - sz.bias() - f as i32 + msb
    } else {
        e - sz.bias()
    };
    unb < k
}

/// FRSQRTE (floating point).
pub fn rsqrt_estimate(env: &mut FpEnv, sz: FpSize, a: u64) -> u64 {
    let v = unpack(env, sz, a);
    let f = sz.fbits();
    match v.kind {
        Kind::QNaN | Kind::SNaN => return process_nan(env, sz, &v, a),
        Kind::Zero => {
            env.raise(sr::DZC);
            return inf(sz, v.sign);
        }
        _ if v.sign => {
            env.raise(sr::IOC);
            return default_nan(sz);
        }
        Kind::Inf => return 0,
        Kind::Num => {}
    }
    let a = a & sz.mask();
    let mut exp = ((a >> f) & sz.emax()) as i32;
    let mut fraction = (a & ((1 << f) - 1)) << (52 - f);
    if exp == 0 {
        // Normalise a denormal.
        while fraction & (1 << 51) == 0 {
            fraction <<= 1;
            exp -= 1;
        }
        fraction = (fraction << 1) & ((1 << 52) - 1);
    }
    let scaled = if exp & 1 == 0 {
        (1 << 8) | (fraction >> 44) as u32
    } else {
        (1 << 7) | (fraction >> 45) as u32
    };
    let bias = sz.bias();
    // (3*bias - 1 - exp) / 2, as in the pseudocode (380/3068/44 - exp) DIV 2.
    let result_exp = ((3 * bias - 1 - exp) as i64).div_euclid(2);
    let est = rsqrt_estimate_table(scaled) as u64;
    (((result_exp as u64) & sz.emax()) << f) | (((est & 0xff) << 44) >> (52 - f))
}

/// URECPE: unsigned reciprocal estimate on a 32-bit fixed-point value.
pub fn urecpe(a: u32) -> u32 {
    if a >> 31 == 0 {
        0xffff_ffff
    } else {
        recip_estimate_table(a >> 23) << 23
    }
}

/// URSQRTE: unsigned reciprocal square root estimate on a 32-bit fixed-point value.
pub fn ursqrte(a: u32) -> u32 {
    if a >> 30 == 0 {
        0xffff_ffff
    } else {
        rsqrt_estimate_table(a >> 23) << 23
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*
    fn next(s: &mut u64) -> u64 {
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        s.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    type Op = fn(&mut FpEnv, FpSize, u64, u64) -> u64;

    /// The host fast paths agree with the soft-float paths (result and flags) on random
    /// operands, including near-equal ones (exact and cancelling results).
    #[test]
    fn fast_paths_match_soft_float() {
        let ops: [(&str, Op, Op); 5] = [
            ("add", add, |e, z, a, b| addsub(e, z, a, b, false)),
            ("sub", sub, |e, z, a, b| addsub(e, z, a, b, true)),
            ("mul", mul, |e, z, a, b| mul_x(e, z, a, b, false)),
            ("div", div, div_soft),
            (
                "sqrt",
                |e, z, a, _| sqrt(e, z, a),
                |e, z, a, _| sqrt_soft(e, z, a),
            ),
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for sz in [FpSize::S, FpSize::D] {
            for (name, fast, soft) in ops {
                for k in 0..20000 {
                    let r = next(&mut seed);
                    let mut a = r & sz.mask();
                    let mut b = next(&mut seed) & sz.mask();
                    match k % 4 {
                        // Small significands: exact results are common.
                        0 => {
                            a &= !((1 << (sz.fbits() - 4)) - 1);
                            b &= !((1 << (sz.fbits() - 4)) - 1);
                        }
                        1 => b = (a ^ (r & 7)) ^ sz.sign_bit(),
                        2 => {
                            // Keep exponents mid-range.
                            let f = sz.fbits();
                            a = (a & !(sz.emax() << f)) | ((sz.emax() / 2) << f);
                            b = (b & !(sz.emax() << f)) | ((sz.emax() / 2 + (r >> 60)) << f);
                        }
                        _ => {}
                    }
                    for start in [0, sr::IXC] {
                        let (mut f1, mut f2) = (start, start);
                        let x = fast(&mut FpEnv::new(0, &mut f1), sz, a, b);
                        let y = soft(&mut FpEnv::new(0, &mut f2), sz, a, b);
                        assert_eq!(
                            (x, f1),
                            (y, f2),
                            "{name} {sz:?} {a:#x} {b:#x} from {start:#x}: fast {x:#x} flags {f1:#x}, soft {y:#x} flags {f2:#x}"
                        );
                    }
                }
            }
        }
    }

    /// The host's fused multiply-add agrees with the soft-float one when IXC is set, and
    /// is not used when it is not.
    #[test]
    fn fast_fused_multiply_add_matches_soft_float() {
        let mut seed = 0x2545_f491_4f6c_dd1d;
        for sz in [FpSize::S, FpSize::D] {
            for k in 0..30000 {
                let f = sz.fbits();
                let mid = |v: u64, d: u64| (v & !(sz.emax() << f)) | ((sz.emax() / 2 + d) << f);
                let (mut a, mut b, mut c) = (
                    next(&mut seed) & sz.mask(),
                    next(&mut seed) & sz.mask(),
                    next(&mut seed) & sz.mask(),
                );
                if k % 2 == 0 {
                    // Mid-range exponents; every fourth addend cancels the product closely.
                    let r = next(&mut seed);
                    a = mid(a, r & 3);
                    b = mid(b, (r >> 2) & 3);
                    c = mid(c, (r >> 4) & 7);
                }
                for start in [0, sr::IXC] {
                    let (mut f1, mut f2) = (start, start);
                    let x = mul_add(&mut FpEnv::new(0, &mut f1), sz, c, a, b);
                    let y = mul_add_soft(&mut FpEnv::new(0, &mut f2), sz, c, a, b);
                    assert_eq!(
                        (x, f1),
                        (y, f2),
                        "fma {sz:?} {c:#x} + {a:#x} * {b:#x} from flags {start:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn round_to_odd_and_half_conversions() {
        let mut f = 0;
        let mut env = FpEnv::new(0, &mut f);
        // 1 + 2^-30 (double) to single with round-to-odd: 1 + 2^-23, inexact.
        let d = 0x3ff0_0000_0040_0000;
        assert_eq!(
            convert(&mut env, FpSize::D, FpSize::S, d, Rounding::Odd),
            0x3f80_0001
        );
        assert_eq!(f, sr::IXC);
        // 65520.0 (single) rounds to +inf in half precision (overflow), 65519 to max normal.
        let mut f = 0;
        let mut env = FpEnv::new(0, &mut f);
        assert_eq!(
            convert(
                &mut env,
                FpSize::S,
                FpSize::H,
                0x477f_f000,
                Rounding::TieEven
            ),
            0x7c00
        );
        assert_eq!(f, sr::OFC | sr::IXC);
        let mut f = 0;
        let mut env = FpEnv::new(0, &mut f);
        assert_eq!(
            convert(
                &mut env,
                FpSize::S,
                FpSize::H,
                0x477f_ef00,
                Rounding::TieEven
            ),
            0x7bff
        );
        // A half signalling NaN widens quieted, payload kept in the top fraction bits.
        let mut f = 0;
        let mut env = FpEnv::new(0, &mut f);
        assert_eq!(
            convert(&mut env, FpSize::H, FpSize::S, 0xfd01, Rounding::TieEven),
            0xffe0_2000
        );
        assert_eq!(f, sr::IOC);
    }

    #[test]
    fn to_fixed_saturation_edges() {
        let cases: [(u64, bool, u32, u64, u32); 6] = [
            // (double bits, unsigned, ibits, result, flags)
            (0x41df_ffff_ffc0_0000, false, 32, 0x7fff_ffff, 0), // 2^31 - 1
            (0x41e0_0000_0000_0000, false, 32, 0x7fff_ffff, sr::IOC), // 2^31
            (0xc1e0_0000_0000_0000, false, 32, 0x8000_0000, 0), // -2^31
            (0x43f0_0000_0000_0000, true, 64, u64::MAX, sr::IOC), // 2^64
            (0xbfe0_0000_0000_0000, true, 64, 0, sr::IXC),      // -0.5 -> 0, inexact only
            (0xbff0_0000_0000_0000, true, 32, 0, sr::IOC),      // -1.0 unsigned
        ];
        for (x, unsigned, ibits, want, flags) in cases {
            let mut f = 0;
            let mut env = FpEnv::new(0, &mut f);
            let got = to_fixed(&mut env, FpSize::D, x, 0, unsigned, ibits, Rounding::Zero);
            assert_eq!((got, f), (want, flags), "{x:#x}");
        }
    }
}
