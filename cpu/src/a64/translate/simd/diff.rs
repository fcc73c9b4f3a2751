//! (to be written)

use crate::a64::Row;

pub const ROWS: &[Row] = &[];
