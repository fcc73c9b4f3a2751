//! PSCI 1.0 over HVC, as QEMU's virt provides it to a kernel entered at EL1: CPU_ON/OFF,
//! AFFINITY_INFO, SYSTEM_OFF/RESET, FEATURES, VERSION. The SMCCC version and architecture
//! calls answer "not supported", which Linux takes as no firmware mitigations.

/// Function IDs (SMC32 and SMC64 forms where both exist).
pub mod func {
    pub const PSCI_VERSION: u32 = 0x8400_0000;
    pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
    pub const CPU_SUSPEND_64: u32 = 0xc400_0001;
    pub const CPU_OFF: u32 = 0x8400_0002;
    pub const CPU_ON_32: u32 = 0x8400_0003;
    pub const CPU_ON_64: u32 = 0xc400_0003;
    pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
    pub const AFFINITY_INFO_64: u32 = 0xc400_0004;
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    pub const PSCI_FEATURES: u32 = 0x8400_000a;
}

pub const SUCCESS: i64 = 0;
pub const NOT_SUPPORTED: i64 = -1;
pub const INVALID_PARAMETERS: i64 = -2;
pub const ALREADY_ON: i64 = -4;

/// PSCI 1.0.
pub const VERSION: i64 = 0x1_0000;
/// MIGRATE_INFO_TYPE: no trusted OS, migration not needed.
pub const MIGRATE_NOT_REQUIRED: i64 = 2;

/// What a PSCI call asks of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Answer in x0 and continue.
    Return(i64),
    /// Start the CPU with this MPIDR at `entry` with x0 = `context`.
    CpuOn {
        mpidr: u64,
        entry: u64,
        context: u64,
    },
    /// The calling CPU powers down.
    CpuOff,
    /// Report whether the CPU with this MPIDR is on.
    AffinityInfo {
        mpidr: u64,
    },
    /// Treated as a WFI (a standby state): wait for an interrupt, then return success.
    Suspend,
    SystemOff,
    SystemReset,
}

/// Decode a call from x0..x3. SMC32 arguments are the low 32 bits.
pub fn decode(x: [u64; 4]) -> Call {
    let id = x[0] as u32;
    let arg = |i: usize| {
        if id & 0x4000_0000 != 0 {
            x[i]
        } else {
            x[i] & 0xffff_ffff
        }
    };
    match id {
        func::PSCI_VERSION => Call::Return(VERSION),
        func::CPU_SUSPEND_32 | func::CPU_SUSPEND_64 => Call::Suspend,
        func::CPU_OFF => Call::CpuOff,
        func::CPU_ON_32 | func::CPU_ON_64 => Call::CpuOn {
            mpidr: arg(1),
            entry: arg(2),
            context: arg(3),
        },
        func::AFFINITY_INFO_32 | func::AFFINITY_INFO_64 => {
            if arg(2) != 0 {
                // Only affinity level 0 is meaningful for a flat cluster.
                Call::Return(INVALID_PARAMETERS)
            } else {
                Call::AffinityInfo { mpidr: arg(1) }
            }
        }
        func::MIGRATE_INFO_TYPE => Call::Return(MIGRATE_NOT_REQUIRED),
        func::SYSTEM_OFF => Call::SystemOff,
        func::SYSTEM_RESET => Call::SystemReset,
        func::PSCI_FEATURES => Call::Return(match x[1] as u32 {
            func::PSCI_VERSION
            | func::CPU_SUSPEND_32
            | func::CPU_SUSPEND_64
            | func::CPU_OFF
            | func::CPU_ON_32
            | func::CPU_ON_64
            | func::AFFINITY_INFO_32
            | func::AFFINITY_INFO_64
            | func::MIGRATE_INFO_TYPE
            | func::SYSTEM_OFF
            | func::SYSTEM_RESET
            | func::PSCI_FEATURES => SUCCESS,
            _ => NOT_SUPPORTED,
        }),
        _ => Call::Return(NOT_SUPPORTED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_decode_as_linux_makes_them() {
        assert_eq!(decode([0x8400_0000, 0, 0, 0]), Call::Return(VERSION));
        assert_eq!(
            decode([0xc400_0003, 1, 0x4020_0000, 7]),
            Call::CpuOn {
                mpidr: 1,
                entry: 0x4020_0000,
                context: 7
            }
        );
        // SMC32 CPU_ON ignores the upper halves.
        assert_eq!(
            decode([0x8400_0003, 0xffff_0000_0000_0002, 0x1_4000_0000, 0]),
            Call::CpuOn {
                mpidr: 2,
                entry: 0x4000_0000,
                context: 0
            }
        );
        assert_eq!(decode([0x8400_0008, 0, 0, 0]), Call::SystemOff);
        assert_eq!(decode([0x8400_000a, 0x8400_0009, 0, 0]), Call::Return(0));
        assert_eq!(decode([0x8400_000a, 0x8400_0012, 0, 0]), Call::Return(-1));
        assert_eq!(decode([0x8000_0000, 0, 0, 0]), Call::Return(-1));
    }
}
