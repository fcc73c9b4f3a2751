//! PSCI (Arm Power State Coordination Interface, DEN0022) as the `virt` board's firmware
//! offers it over HVC: function IDs, return codes, and a decoder from the caller's x0-x3
//! to a [`Call`]. The machine performs the call (start a CPU, power off) and writes the
//! result to x0; this module knows the numbers, not the board.
//!
//! Function IDs follow the SMC Calling Convention: bit 31 set (fast call), bit 30 the
//! 64-bit convention (`0xc4..`), owner 4 (standard secure service) in bits 29..24. A
//! 32-bit call's arguments are the low 32 bits of the registers.

/// PSCI version 1.0 (major in bits 31..16).
pub const VERSION_1_0: u32 = 0x0001_0000;

pub const PSCI_VERSION: u32 = 0x8400_0000;
pub const CPU_SUSPEND: u32 = 0x8400_0001;
pub const CPU_OFF: u32 = 0x8400_0002;
pub const CPU_ON: u32 = 0x8400_0003;
pub const AFFINITY_INFO: u32 = 0x8400_0004;
pub const MIGRATE: u32 = 0x8400_0005;
pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
pub const MIGRATE_INFO_UP_CPU: u32 = 0x8400_0007;
pub const SYSTEM_OFF: u32 = 0x8400_0008;
pub const SYSTEM_RESET: u32 = 0x8400_0009;
pub const PSCI_FEATURES: u32 = 0x8400_000a;
pub const SYSTEM_SUSPEND: u32 = 0x8400_000e;
/// Added to a 32-bit function ID to get its 64-bit (SMC64/HVC64) form.
pub const SMC64: u32 = 0x4000_0000;

/// SMCCC's own calls, which Linux probes through PSCI_FEATURES.
pub const SMCCC_VERSION: u32 = 0x8000_0000;
pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
/// SMCCC version 1.1.
pub const SMCCC_VERSION_1_1: u32 = 0x0001_0001;

/// Return codes (x0, sign-extended to 64 bits).
pub const SUCCESS: i32 = 0;
pub const NOT_SUPPORTED: i32 = -1;
pub const INVALID_PARAMETERS: i32 = -2;
pub const DENIED: i32 = -3;
pub const ALREADY_ON: i32 = -4;
pub const ON_PENDING: i32 = -5;
pub const INTERNAL_FAILURE: i32 = -6;
pub const NOT_PRESENT: i32 = -7;
pub const DISABLED: i32 = -8;
pub const INVALID_ADDRESS: i32 = -9;

/// AFFINITY_INFO results.
pub const AFFINITY_ON: i32 = 0;
pub const AFFINITY_OFF: i32 = 1;
pub const AFFINITY_ON_PENDING: i32 = 2;

/// MIGRATE_INFO_TYPE: no Trusted OS, nothing to migrate.
pub const MIGRATE_NOT_NEEDED: i32 = 2;

/// A decoded call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Returns [`VERSION_1_0`].
    Version,
    /// Suspend the calling CPU (a WFI is a valid implementation of a standby state).
    CpuSuspend {
        power_state: u32,
        entry: u64,
        context: u64,
    },
    /// Power the calling CPU off (does not return on success).
    CpuOff,
    /// Start the CPU whose MPIDR affinity is `target` at `entry` (EL1, MMU off) with
    /// x0 = `context`.
    CpuOn {
        target: u64,
        entry: u64,
        context: u64,
    },
    /// Is `target` on? (`level` 0: the CPU itself.)
    AffinityInfo {
        target: u64,
        level: u32,
    },
    MigrateInfoType,
    SystemOff,
    SystemReset,
    /// Is function `fid` implemented? (0 if so, else NOT_SUPPORTED.)
    Features {
        fid: u32,
    },
    /// SMCCC_VERSION: returns [`SMCCC_VERSION_1_1`].
    SmcccVersion,
    /// SMCCC_ARCH_FEATURES: no architectural workarounds are needed (NOT_SUPPORTED).
    SmcccArchFeatures {
        fid: u32,
    },
    /// Anything else: answer NOT_SUPPORTED.
    Unknown {
        fid: u32,
    },
}

/// Decodes a call from the caller's x0..x3.
pub fn decode(x: [u64; 4]) -> Call {
    let fid = x[0] as u32;
    let wide = fid & SMC64 != 0;
    // A 32-bit call's arguments are 32-bit.
    let arg = |i: usize| if wide { x[i] } else { x[i] & 0xffff_ffff };
    match fid & !SMC64 {
        _ if x[0] > u64::from(u32::MAX) => Call::Unknown { fid },
        PSCI_VERSION if !wide => Call::Version,
        CPU_SUSPEND => Call::CpuSuspend {
            power_state: x[1] as u32,
            entry: arg(2),
            context: arg(3),
        },
        CPU_OFF if !wide => Call::CpuOff,
        CPU_ON => Call::CpuOn {
            target: arg(1),
            entry: arg(2),
            context: arg(3),
        },
        AFFINITY_INFO => Call::AffinityInfo {
            target: arg(1),
            level: x[2] as u32,
        },
        MIGRATE_INFO_TYPE if !wide => Call::MigrateInfoType,
        SYSTEM_OFF if !wide => Call::SystemOff,
        SYSTEM_RESET if !wide => Call::SystemReset,
        PSCI_FEATURES if !wide => Call::Features { fid: x[1] as u32 },
        SMCCC_VERSION if !wide => Call::SmcccVersion,
        SMCCC_ARCH_FEATURES if !wide => Call::SmcccArchFeatures { fid: x[1] as u32 },
        _ => Call::Unknown { fid },
    }
}

/// The PSCI_FEATURES answer for `fid`: 0 for the functions [`decode`] knows, else
/// NOT_SUPPORTED. (For CPU_SUSPEND, 0 also says: original power-state format, no OS-
/// initiated mode.)
pub fn features(fid: u32) -> i32 {
    match decode([u64::from(fid), 0, 0, 0]) {
        Call::Unknown { .. } | Call::SmcccArchFeatures { .. } => NOT_SUPPORTED,
        _ => SUCCESS,
    }
}

/// A return code as the 64-bit x0 value the caller sees.
pub fn ret(code: i32) -> u64 {
    i64::from(code) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_calls_linux_makes() {
        assert_eq!(decode([0x8400_0000, 0, 0, 0]), Call::Version);
        assert_eq!(
            decode([0xc400_0003, 1, 0x4020_0000, 0x1234]),
            Call::CpuOn {
                target: 1,
                entry: 0x4020_0000,
                context: 0x1234
            }
        );
        // 32-bit CPU_ON: the upper halves of the registers are not arguments.
        assert_eq!(
            decode([0x8400_0003, 0xffff_ffff_0000_0002, 0xdead_0000_4000_0000, 0]),
            Call::CpuOn {
                target: 2,
                entry: 0x4000_0000,
                context: 0
            }
        );
        assert_eq!(decode([0x8400_0008, 0, 0, 0]), Call::SystemOff);
        assert_eq!(decode([0x8400_0009, 0, 0, 0]), Call::SystemReset);
        assert_eq!(decode([0x8400_0002, 0, 0, 0]), Call::CpuOff);
        assert_eq!(
            decode([0xc400_0004, 3, 0, 0]),
            Call::AffinityInfo {
                target: 3,
                level: 0
            }
        );
        assert_eq!(
            decode([0x8400_000a, 0x8000_0000, 0, 0]),
            Call::Features { fid: SMCCC_VERSION }
        );
        assert_eq!(decode([0x8000_0000, 0, 0, 0]), Call::SmcccVersion);
        // No 64-bit form of SYSTEM_OFF; garbage above bit 31 of x0 is not a PSCI call.
        assert_eq!(
            decode([0xc400_0008, 0, 0, 0]),
            Call::Unknown { fid: 0xc400_0008 }
        );
        assert!(matches!(
            decode([0x1_8400_0000, 0, 0, 0]),
            Call::Unknown { .. }
        ));
    }

    #[test]
    fn features_and_return_values() {
        assert_eq!(features(CPU_ON | SMC64), SUCCESS);
        assert_eq!(features(SYSTEM_OFF), SUCCESS);
        assert_eq!(features(SMCCC_VERSION), SUCCESS);
        assert_eq!(features(SYSTEM_SUSPEND), NOT_SUPPORTED);
        assert_eq!(ret(NOT_SUPPORTED), u64::MAX);
        assert_eq!(ret(ALREADY_ON), (-4i64) as u64);
    }
}
