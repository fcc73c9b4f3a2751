//! AdvSIMD (NEON) integer instructions (Arm ARM C4.1.9, "Data Processing -- Scalar
//! Floating-Point and Advanced SIMD"), without floating-point arithmetic (`fp.rs`), loads and
//! stores (`loads_stores.rs`) and the cryptographic extension.
//!
//! One submodule per encoding group of the manual. Most instructions are [`Op::Call`] helpers
//! that decode their own fields and work on `CpuState::v` as lanes (see `lanes`); moves
//! between general and vector registers are plain IR. Reserved size/Q combinations are
//! rejected at translate time, so a helper only sees allocated encodings.
//!
//! [`Op::Call`]: crate::ir::Op::Call

use crate::a64::Row;

/// A row whose handler rejects the encoding unless `$check(insn)` holds and otherwise emits a
/// call of helper `$h`.
macro_rules! simd_row {
    ($name:expr, $pat:expr, $check:expr, $h:expr) => {
        $crate::row!(
            $name,
            $pat,
            |t: &mut $crate::a64::Translator, i: $crate::a64::Insn| {
                let ok = ($check)(i);
                $crate::a64::translate::simd::lanes::emit(t, i, ok, $h)
            },
            AdvSimd
        )
    };
}

/// Defines a helper `fn $name(&mut CpuState, &mut dyn Mem, u32)` whose body sees the state as
/// `$st` and the instruction as `$i: Insn`.
macro_rules! helper {
    ($name:ident, |$st:ident, $i:ident| $body:expr) => {
        fn $name(
            $st: &mut $crate::state::CpuState,
            _: &mut dyn $crate::mem::Mem,
            insn: u32,
        ) -> Result<(), $crate::ir::HelperError> {
            let $i = $crate::a64::Insn(insn);
            $body;
            Ok(())
        }
    };
}

mod across;
mod copy;
mod diff;
mod elem;
mod lanes;
mod misc;
mod modimm;
mod permute;
mod same;
mod shift;
mod swar;

#[cfg(test)]
mod tests;

/// The groups in table order. Modified immediate comes before shift by immediate: the two
/// share bits 28:23 and differ in `immh` being zero.
const PARTS: &[&[Row]] = &[
    copy::ROWS,
    modimm::ROWS,
    permute::ROWS,
    same::ROWS,
    diff::ROWS,
    misc::ROWS,
    across::ROWS,
    shift::ROWS,
    elem::ROWS,
];

/// Total number of rows in `parts`.
pub const fn total(parts: &[&[Row]]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < parts.len() {
        n += parts[i].len();
        i += 1;
    }
    n
}

/// The rows of `parts` in order, as one array (`N` = [`total`] of `parts`).
pub const fn concat<const N: usize>(parts: &[&[Row]]) -> [Row; N] {
    let mut out = [parts[0][0]; N];
    let mut k = 0;
    let mut i = 0;
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            out[k] = parts[i][j];
            k += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

const ALL: [Row; total(PARTS)] = concat(PARTS);

pub const ROWS: &[Row] = &ALL;
