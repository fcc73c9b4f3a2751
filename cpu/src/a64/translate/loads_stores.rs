//! Loads and stores (Arm ARM C4.1.4, ARMv8.0-A): single registers in every addressing mode,
//! literal loads, pairs, exclusives and load-acquire/store-release, and the AdvSIMD structure
//! loads and stores.
//!
//! Rows follow the manual's encoding classes (`ldst_pos`, `ldst_regoff`, `ldstpair_pre`, ...),
//! one row per class and register file; the handler decodes size/opc and sends the
//! unallocated combinations to [`Translator::undefined`]. Encodings added after v8.0 (LSE
//! atomics, CAS, LDAPR, LDRAA, LDLAR/STLLR, memory tags) have no row and so are undefined.
//!
//! Choices where the architecture is CONSTRAINED UNPREDICTABLE:
//! - A load with writeback whose Rt (or Rt2) is the base register (not SP): the writeback is
//!   suppressed and the register holds the loaded value (`Constraint_WBSUPPRESS`).
//! - A store with writeback whose Rt is the base: the value stored is the register's value
//!   before the instruction (`Constraint_NONE`).
//! - LDP/LDXP with Rt == Rt2 (UNKNOWN): LDP of general registers leaves the first value,
//!   LDXP and the SIMD&FP LDP the second, as QEMU does.
//! - STXR/STXP with Ws equal to Rt or Rn: sources are read first, the status written last.
//! - The should-be-one Rs/Rt2 fields of the exclusive and ordered forms are not checked.
//!
//! Faults: every load goes into temporaries and registers (data, then base) are written only
//! after the last access that can fault. A store that makes several accesses (STP, ST2, ...)
//! and faults on a later one (only possible when it crosses into another page) may leave the
//! earlier bytes written, as hardware may for such multi-access instructions; the registers
//! are never written then, so the instruction can be restarted.
//!
//! LDTR/STTR and friends act as the normal forms: they differ only when run at EL1, where
//! they would check EL0 permissions.

mod exclusive;
mod pair;
mod single;
mod structure;
#[cfg(test)]
mod tests;

use crate::a64::Row;
use crate::row;
use exclusive::{ldar, ldxp, ldxr, stlr, stxp, stxr};
use pair::{pair_fp, pair_gpr};
use single::{
    literal_fp, literal_gpr, pos_fp, pos_gpr, regoff_fp, regoff_gpr, unpriv_gpr, unscaled_fp,
    unscaled_gpr,
};
use structure::{multiple, single_lane};

pub const ROWS: &[Row] = &[
    // Load/store exclusive and ordered (C4.1.4.1 / ldstexcl)
    row!(
        "STXR_STLXR_ldstexcl",
        "ss001000000sssssruuuuunnnnnttttt",
        stxr
    ),
    row!(
        "LDXR_LDAXR_ldstexcl",
        "ss001000010sssssruuuuunnnnnttttt",
        ldxr
    ),
    row!(
        "STXP_STLXP_ldstexcl",
        "1z001000001sssssruuuuunnnnnttttt",
        stxp
    ),
    row!(
        "LDXP_LDAXP_ldstexcl",
        "1z001000011sssssruuuuunnnnnttttt",
        ldxp
    ),
    row!("STLR_ldstexcl", "ss001000100sssss1uuuuunnnnnttttt", stlr),
    row!("LDAR_ldstexcl", "ss001000110sssss1uuuuunnnnnttttt", ldar),
    // Load register (literal)
    row!(
        "LDR_LDRSW_PRFM_loadlit",
        "oo011000iiiiiiiiiiiiiiiiiiittttt",
        literal_gpr
    ),
    row!(
        "LDR_V_loadlit",
        "oo011100iiiiiiiiiiiiiiiiiiittttt",
        literal_fp,
        Fp
    ),
    // Load/store pairs: no-allocate offset, post-index, signed offset, pre-index
    row!(
        "LDNP_STNP_ldstnapair_offs",
        "oo1010000Liiiiiiiuuuuunnnnnttttt",
        pair_gpr
    ),
    row!(
        "LDP_STP_ldstpair_post",
        "oo1010001Liiiiiiiuuuuunnnnnttttt",
        pair_gpr
    ),
    row!(
        "LDP_STP_ldstpair_off",
        "oo1010010Liiiiiiiuuuuunnnnnttttt",
        pair_gpr
    ),
    row!(
        "LDP_STP_ldstpair_pre",
        "oo1010011Liiiiiiiuuuuunnnnnttttt",
        pair_gpr
    ),
    row!(
        "LDNP_STNP_V_ldstnapair_offs",
        "oo1011000Liiiiiiiuuuuunnnnnttttt",
        pair_fp,
        Fp
    ),
    row!(
        "LDP_STP_V_ldstpair_post",
        "oo1011001Liiiiiiiuuuuunnnnnttttt",
        pair_fp,
        Fp
    ),
    row!(
        "LDP_STP_V_ldstpair_off",
        "oo1011010Liiiiiiiuuuuunnnnnttttt",
        pair_fp,
        Fp
    ),
    row!(
        "LDP_STP_V_ldstpair_pre",
        "oo1011011Liiiiiiiuuuuunnnnnttttt",
        pair_fp,
        Fp
    ),
    // Load/store register: unscaled, post-index, unprivileged, pre-index, register offset,
    // unsigned offset
    row!(
        "LDUR_STUR_PRFUM_ldst_unscaled",
        "ss111000oo0iiiiiiiii00nnnnnttttt",
        unscaled_gpr
    ),
    row!(
        "LDR_STR_ldst_immpost",
        "ss111000oo0iiiiiiiii01nnnnnttttt",
        unscaled_gpr
    ),
    row!(
        "LDTR_STTR_ldst_unpriv",
        "ss111000oo0iiiiiiiii10nnnnnttttt",
        unpriv_gpr
    ),
    row!(
        "LDR_STR_ldst_immpre",
        "ss111000oo0iiiiiiiii11nnnnnttttt",
        unscaled_gpr
    ),
    row!(
        "LDR_STR_PRFM_ldst_regoff",
        "ss111000oo1mmmmmxxxS10nnnnnttttt",
        regoff_gpr
    ),
    row!(
        "LDR_STR_PRFM_ldst_pos",
        "ss111001ooiiiiiiiiiiiinnnnnttttt",
        pos_gpr
    ),
    row!(
        "LDUR_STUR_V_ldst_unscaled",
        "ss111100oo0iiiiiiiii00nnnnnttttt",
        unscaled_fp,
        Fp
    ),
    row!(
        "LDR_STR_V_ldst_immpost",
        "ss111100oo0iiiiiiiii01nnnnnttttt",
        unscaled_fp,
        Fp
    ),
    row!(
        "LDR_STR_V_ldst_immpre",
        "ss111100oo0iiiiiiiii11nnnnnttttt",
        unscaled_fp,
        Fp
    ),
    row!(
        "LDR_STR_V_ldst_regoff",
        "ss111100oo1mmmmmxxxS10nnnnnttttt",
        regoff_fp,
        Fp
    ),
    row!(
        "LDR_STR_V_ldst_pos",
        "ss111101ooiiiiiiiiiiiinnnnnttttt",
        pos_fp,
        Fp
    ),
    // AdvSIMD load/store multiple structures, single structure (and post-indexed forms)
    row!(
        "LDn_STn_asisdlse",
        "0q0011000L000000oooozznnnnnttttt",
        multiple,
        AdvSimd
    ),
    row!(
        "LDn_STn_asisdlsep",
        "0q0011001L0mmmmmoooozznnnnnttttt",
        multiple,
        AdvSimd
    ),
    row!(
        "LDn_STn_asisdlso",
        "0q0011010LR00000oooSzznnnnnttttt",
        single_lane,
        AdvSimd
    ),
    row!(
        "LDn_STn_asisdlsop",
        "0q0011011LRmmmmmoooSzznnnnnttttt",
        single_lane,
        AdvSimd
    ),
];

use crate::a64::Translator;
use crate::ir::{BinOp, Width, T};

/// Where an access goes and what, if anything, is written back to the base register.
#[derive(Clone, Copy)]
pub(super) struct Addr {
    pub addr: T,
    /// New base value (pre/post-index).
    pub wb: Option<T>,
}

/// Indexing of an immediate-offset form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Index {
    Offset,
    Pre,
    Post,
}

/// Base register `rn` (SP when 31) with immediate `imm` under `index`.
pub(super) fn imm_addr(t: &mut Translator, rn: u8, imm: i64, index: Index) -> Addr {
    let base = t.get_xsp(rn);
    let plus = |t: &mut Translator| {
        if imm == 0 {
            base
        } else {
            t.bin_imm(BinOp::Add, Width::W64, base, imm as u64)
        }
    };
    match index {
        Index::Offset => Addr {
            addr: plus(t),
            wb: None,
        },
        Index::Pre => {
            let a = plus(t);
            Addr {
                addr: a,
                wb: Some(a),
            }
        }
        Index::Post => {
            let nb = plus(t);
            Addr {
                addr: base,
                wb: Some(nb),
            }
        }
    }
}

/// Write back the base register after the accesses. `overlap` suppresses the writeback (a
/// load whose destination is the base, see the module doc).
pub(super) fn writeback(t: &mut Translator, rn: u8, a: Addr, overlap: bool) {
    if let Some(nb) = a.wb {
        if !(overlap && rn != 31) {
            t.set_xsp(rn, nb);
        }
    }
}
