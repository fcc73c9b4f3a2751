//! Translation of A64 instructions into IR, one file per instruction class (the Arm ARM's
//! top-level encoding groups). Each exports `ROWS`, its part of the decoder table.

pub mod branch;
pub mod dp_imm;
pub mod dp_reg;
pub mod fp;
pub mod loads_stores;
pub mod simd;
pub mod system;

use super::Row;

/// The decoder table, class by class.
pub const CLASSES: &[&[Row]] = &[
    branch::ROWS,
    system::ROWS,
    dp_imm::ROWS,
    dp_reg::ROWS,
    loads_stores::ROWS,
    fp::ROWS,
    fp::vector::ROWS,
    simd::ROWS,
];
