//! CPU models as data: identification registers and the features a guest is told about.
//! A guest sees only what is implemented: ARMv8.0-A integer, FP, AdvSIMD and CRC32, with no
//! LSE atomics, crypto or SVE.

use std::sync::OnceLock;
use std::time::Instant;

/// One core type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuModel {
    pub name: &'static str,
    pub midr: u64,
    pub revidr: u64,
    pub ctr: u64,
    pub id_aa64pfr0: u64,
    pub id_aa64isar0: u64,
    pub id_aa64isar1: u64,
    pub id_aa64mmfr0: u64,
    pub id_aa64dfr0: u64,
}

/// ID_AA64ISAR0_EL1 with only CRC32 (bits 19:16 = 1).
const ISAR0_CRC32: u64 = 1 << 16;
/// ID_AA64PFR0_EL1: EL0 and EL1 AArch64 only; FP and AdvSIMD implemented (fields 0).
const PFR0_V8: u64 = 0x11;

pub const CORTEX_A53: CpuModel = CpuModel {
    name: "cortex-a53",
    midr: 0x410f_d034,
    revidr: 0,
    ctr: 0x8444_c004,
    id_aa64pfr0: PFR0_V8,
    id_aa64isar0: ISAR0_CRC32,
    id_aa64isar1: 0,
    id_aa64mmfr0: 0x1122,
    id_aa64dfr0: 0x1030_5106,
};

pub const CORTEX_A72: CpuModel = CpuModel {
    name: "cortex-a72",
    midr: 0x410f_d083,
    revidr: 0,
    ctr: 0x8444_c004,
    id_aa64pfr0: PFR0_V8,
    id_aa64isar0: ISAR0_CRC32,
    id_aa64isar1: 0,
    id_aa64mmfr0: 0x1124,
    id_aa64dfr0: 0x1030_5106,
};

pub fn by_name(name: &str) -> Option<CpuModel> {
    [CORTEX_A53, CORTEX_A72]
        .into_iter()
        .find(|m| m.name == name)
}

/// Linux AT_HWCAP bits (arch/arm64/include/uapi/asm/hwcap.h) for what is implemented.
pub mod hwcap {
    pub const FP: u64 = 1 << 0;
    pub const ASIMD: u64 = 1 << 1;
    pub const EVTSTRM: u64 = 1 << 2;
    pub const CRC32: u64 = 1 << 7;
    pub const CPUID: u64 = 1 << 11;
}

/// AT_HWCAP for a user-mode guest.
pub fn user_hwcap() -> u64 {
    hwcap::FP | hwcap::ASIMD | hwcap::CRC32 | hwcap::CPUID
}

/// DCZID_EL0: DC ZVA zeroes 2^4 words = 64 bytes.
pub const DCZID: u64 = 4;
pub const DC_ZVA_BYTES: u64 = 64;

/// Generic-timer frequency seen by user-mode guests (CNTFRQ_EL0).
pub const CNTFRQ: u64 = 62_500_000;

/// The virtual counter for user mode: host monotonic time at [`CNTFRQ`].
pub fn user_counter() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let ns = START.get_or_init(Instant::now).elapsed().as_nanos();
    (ns * CNTFRQ as u128 / 1_000_000_000) as u64
}
