//! A64: the decoder table and translation into IR.
//!
//! Each instruction class lives in `translate/<class>.rs` and exports `ROWS`, its part of the
//! decoder table: one row per encoding, named as in the Arm ARM, with the bit pattern written
//! as the manual draws it (`0`/`1` fixed, any letter a field bit). Within a class rows are most
//! specific first; classes do not overlap (they split on the top-level `op0` field), which the
//! `decoder_order` test checks for the whole table.

pub mod decode;
pub mod insn;
pub mod translate;
pub mod translator;

pub use decode::{decode, Feature, Row};
pub use insn::Insn;
pub use translator::{translate_block, Flow, Translator};
