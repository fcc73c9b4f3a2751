//! The A64 decoder: the class tables joined into one matcher.

use super::{translate, Flow, Insn, Translator};
use std::sync::OnceLock;

/// Architecture feature an encoding needs. A row whose feature is not implemented is absent
/// from the table, so the guest sees such encodings as undefined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Base,
    Fp,
    AdvSimd,
    Crc32,
}

/// Handler for one encoding: emits the instruction's IR into the translator.
pub type Handler = fn(&mut Translator, Insn) -> Flow;

/// One row of the decoder table.
#[derive(Clone, Copy)]
pub struct Row {
    /// The encoding's name in the Arm ARM, e.g. `ADD_32_addsub_imm`.
    pub name: &'static str,
    /// 32 characters, bit 31 first: `0`/`1` fixed, anything else a field bit.
    pub pattern: &'static str,
    pub feature: Feature,
    pub handler: Handler,
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, self.pattern)
    }
}

/// Shorthand for table rows: `row!("NAME", "pattern", handler)` or with a feature.
#[macro_export]
macro_rules! row {
    ($name:expr, $pat:expr, $h:expr) => {
        $crate::a64::Row {
            name: $name,
            pattern: $pat,
            feature: $crate::a64::Feature::Base,
            handler: $h,
        }
    };
    ($name:expr, $pat:expr, $h:expr, $feat:ident) => {
        $crate::a64::Row {
            name: $name,
            pattern: $pat,
            feature: $crate::a64::Feature::$feat,
            handler: $h,
        }
    };
}

/// (mask, value) of a pattern. Panics on a malformed pattern: the tables are static and the
/// `decoder_order` test builds them, so this cannot be reached by guest input.
pub const fn mask_value(pattern: &str) -> (u32, u32) {
    let b = pattern.as_bytes();
    assert!(b.len() == 32, "A64 pattern must have 32 characters");
    let mut mask = 0u32;
    let mut value = 0u32;
    let mut i = 0;
    while i < 32 {
        let bit = 31 - i as u32;
        match b[i] {
            b'0' => mask |= 1 << bit,
            b'1' => {
                mask |= 1 << bit;
                value |= 1 << bit;
            }
            _ => {}
        }
        i += 1;
    }
    (mask, value)
}

struct Entry {
    mask: u32,
    value: u32,
    row: &'static Row,
}

/// Entries bucketed by bits 28:25 (the top-level `op0` of the A64 encoding index), keeping
/// table order within each bucket.
struct Table {
    buckets: [Vec<Entry>; 16],
}

/// All rows in table order.
pub fn rows() -> impl Iterator<Item = &'static Row> {
    translate::CLASSES.iter().flat_map(|c| c.iter())
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut buckets: [Vec<Entry>; 16] = Default::default();
        for row in rows() {
            let (mask, value) = mask_value(row.pattern);
            let op0_mask = (mask >> 25) & 0xf;
            let op0_val = (value >> 25) & 0xf;
            for (k, bucket) in buckets.iter_mut().enumerate() {
                if (k as u32) & op0_mask == op0_val {
                    bucket.push(Entry { mask, value, row });
                }
            }
        }
        Table { buckets }
    })
}

/// The first row matching `insn`, or `None` for an unallocated encoding.
pub fn decode(insn: u32) -> Option<&'static Row> {
    let t = table();
    t.buckets[((insn >> 25) & 0xf) as usize]
        .iter()
        .find(|e| insn & e.mask == e.value)
        .map(|e| e.row)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row is reachable: no earlier row matches every encoding a later row matches, and
    /// an instance of each row's pattern decodes to it or to a more specific earlier row.
    #[test]
    fn decoder_order() {
        let all: Vec<&Row> = rows().collect();
        for (j, later) in all.iter().enumerate() {
            let (mj, vj) = mask_value(later.pattern);
            for earlier in &all[..j] {
                let (mi, vi) = mask_value(earlier.pattern);
                // earlier shadows later if earlier's fixed bits are a subset of later's and
                // agree with them.
                let subset = mi & !mj == 0;
                if subset && (vj & mi) == vi {
                    panic!("{earlier:?} shadows {later:?}");
                }
            }
            // Instances with field bits all-zero and all-one decode to this row or a row that
            // is strictly more specific.
            for fill in [0u32, !0u32] {
                let insn = vj | (fill & !mj);
                let got = decode(insn).expect("pattern instance decodes");
                // Rows are compared by content: `const` tables may be instantiated more than once.
                if (got.name, got.pattern) != (later.name, later.pattern) {
                    let (mg, _) = mask_value(got.pattern);
                    assert!(
                        mg & mj == mj && mg != mj,
                        "{insn:#010x} of {later:?} decoded as less specific {got:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn patterns_are_well_formed() {
        for r in rows() {
            assert_eq!(r.pattern.len(), 32, "{r:?}");
        }
    }
}
