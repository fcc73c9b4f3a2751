//! Exception entry to EL1 (Arm ARM D1.10) and the mapping from engine stops to the
//! exceptions they stand for. Return (ERET) is the instruction's helper in
//! `a64::translate::system`; both switch the banked stack pointer with [`set_el_sp`].

use super::daif;
use crate::engine::Stop;
use crate::mem::{Access, FaultKind, Mem};
use crate::state::CpuState;

/// Exception classes (ESR_ELx.EC) this CPU raises.
pub mod ec {
    pub const UNKNOWN: u32 = 0x00;
    pub const SVC64: u32 = 0x15;
    pub const HVC64: u32 = 0x16;
    pub const SMC64: u32 = 0x17;
    pub const IABT_LOWER: u32 = 0x20;
    pub const IABT_CURRENT: u32 = 0x21;
    pub const DABT_LOWER: u32 = 0x24;
    pub const DABT_CURRENT: u32 = 0x25;
    pub const SERROR: u32 = 0x2f;
    pub const BRK64: u32 = 0x3c;
}

/// ESR_ELx.IL: the trapped instruction was 32 bits wide (always, for A64).
pub const ESR_IL: u64 = 1 << 25;

/// One exception to take to EL1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exception {
    /// A synchronous exception: class, syndrome and, for aborts, the faulting address.
    Sync {
        ec: u32,
        iss: u32,
        far: Option<u64>,
    },
    Irq,
    Fiq,
    SError,
}

/// Move to exception level `el` with PSTATE.SP = `spsel`, switching the banked stack
/// pointer: `x[31]` always holds the one in use (SP_EL1 at EL1h, SP_EL0 otherwise).
pub fn set_el_sp(st: &mut CpuState, el: u8, spsel: bool) {
    let s = &mut st.sys;
    if s.el == 1 && s.spsel {
        s.sp_el1 = st.x[31];
    } else {
        s.sp_el0 = st.x[31];
    }
    s.el = el.min(1);
    s.spsel = spsel && s.el == 1;
    st.x[31] = if s.spsel { s.sp_el1 } else { s.sp_el0 };
}

/// PSTATE as saved in SPSR_EL1: NZCV, DAIF and M[3:0] (EL << 2 | SP), AArch64.
pub fn pstate_to_spsr(st: &CpuState) -> u64 {
    let m = ((st.sys.el as u64) << 2) | (st.sys.el == 1 && st.sys.spsel) as u64;
    (st.nzcv as u64 & 0xf000_0000) | (st.sys.daif as u64 & 0x3c0) | m
}

/// Take `ex` to EL1 with preferred return address `ret`.
pub fn enter(st: &mut CpuState, mem: &mut dyn Mem, ex: Exception, ret: u64) {
    let vector_base = if st.sys.el == 0 {
        0x400
    } else if st.sys.spsel {
        0x200
    } else {
        0
    };
    let offset = match ex {
        Exception::Sync { .. } => 0,
        Exception::Irq => 0x80,
        Exception::Fiq => 0x100,
        Exception::SError => 0x180,
    };
    st.sys.spsr_el1 = pstate_to_spsr(st);
    st.sys.elr_el1 = ret;
    match ex {
        Exception::Sync { ec, iss, far } => {
            st.sys.esr_el1 = ((ec as u64 & 0x3f) << 26) | ESR_IL | (iss as u64 & 0x1ff_ffff);
            if let Some(a) = far {
                st.sys.far_el1 = a;
            }
        }
        Exception::SError => st.sys.esr_el1 = ((ec::SERROR as u64) << 26) | ESR_IL,
        Exception::Irq | Exception::Fiq => {}
    }
    set_el_sp(st, 1, true);
    st.sys.daif = daif::D | daif::A | daif::I | daif::F;
    st.pc = (st.sys.vbar_el1 & !0x7ff)
        .wrapping_add(vector_base)
        .wrapping_add(offset);
    st.monitor.valid = false;
    if let Some(s) = mem.system() {
        s.sync(st);
    }
}

/// The fault status code (DFSC/IFSC, and PAR_EL1.FST) of a fault of `kind` found at
/// translation table `level`.
pub fn fault_status(kind: FaultKind, level: u8) -> u32 {
    let l = (level & 3) as u32;
    match kind {
        FaultKind::Unmapped => 0b00_0100 | l,
        FaultKind::AccessFlag => 0b00_1000 | l,
        FaultKind::Permission => 0b00_1100 | l,
        FaultKind::Alignment => 0b10_0001,
        FaultKind::Bus => 0b01_0000,
    }
}

/// The exception an engine stop raises in system mode, with its preferred return address.
/// `None` for stops the machine handles itself (HVC/SMC for PSCI, waits, interrupts of the
/// run loop).
pub fn from_stop(st: &CpuState, stop: Stop) -> Option<(Exception, u64)> {
    let lower = st.sys.el == 0;
    let sync = |ec: u32, iss: u32, far: Option<u64>| Exception::Sync { ec, iss, far };
    Some(match stop {
        // pc is already after the SVC: the return address.
        Stop::Svc(imm) => (sync(ec::SVC64, imm as u32, None), st.pc),
        Stop::Brk(imm) => (sync(ec::BRK64, imm as u32, None), st.pc),
        Stop::Undefined(_) => (sync(ec::UNKNOWN, 0, None), st.pc),
        Stop::Fault(f) => {
            let fsc = fault_status(f.kind, f.level);
            let ex = match f.access {
                Access::Exec => {
                    let ec = if lower {
                        ec::IABT_LOWER
                    } else {
                        ec::IABT_CURRENT
                    };
                    sync(ec, fsc, Some(f.addr))
                }
                Access::Read | Access::Write => {
                    let ec = if lower {
                        ec::DABT_LOWER
                    } else {
                        ec::DABT_CURRENT
                    };
                    let wnr = if f.access == Access::Write { 1 << 6 } else { 0 };
                    sync(ec, fsc | wnr, Some(f.addr))
                }
            };
            (ex, st.pc)
        }
        Stop::Irq => (Exception::Irq, st.pc),
        Stop::Fiq => (Exception::Fiq, st.pc),
        Stop::Hvc(_)
        | Stop::Smc(_)
        | Stop::Wait
        | Stop::Interrupted
        | Stop::System
        | Stop::Budget => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::MemFault;
    use crate::model::CORTEX_A72;
    use crate::sys::SysRegs;
    use crate::testing::FlatMem;

    fn el1_state() -> CpuState {
        let mut st = CpuState::new();
        st.sys = SysRegs::reset_el1(CORTEX_A72, 0x8000_0000);
        st.sys.vbar_el1 = 0xffff_0000_1000_0800;
        st
    }

    #[test]
    fn sync_from_el0_uses_lower_el_vector_and_saves_el0t() {
        let mut st = el1_state();
        st.x[31] = 0x1000; // SP_EL1
        set_el_sp(&mut st, 0, false);
        st.sys.daif = 0;
        st.x[31] = 0x2000; // SP_EL0
        st.nzcv = 0x6000_0000;
        st.pc = 0x40_0004;
        st.monitor.valid = true;
        let mut mem = FlatMem::new(0, 4096);
        let (ex, ret) = from_stop(&st, Stop::Svc(0x12)).expect("svc is an exception");
        enter(&mut st, &mut mem, ex, ret);
        assert_eq!(st.pc, 0xffff_0000_1000_0800 + 0x400);
        assert_eq!(st.sys.elr_el1, 0x40_0004);
        assert_eq!(st.sys.spsr_el1, 0x6000_0000);
        assert_eq!(st.sys.esr_el1, (0x15 << 26) | (1 << 25) | 0x12);
        assert_eq!((st.sys.el, st.sys.spsel), (1, true));
        assert_eq!(st.sys.daif, 0x3c0);
        assert_eq!(st.x[31], 0x1000);
        assert_eq!(st.sys.sp_el0, 0x2000);
        assert!(!st.monitor.valid);
    }

    #[test]
    fn irq_at_el1h_and_el1t_use_current_el_vectors() {
        let mut st = el1_state();
        st.sys.daif = daif::F;
        st.pc = 0x1234;
        let mut mem = FlatMem::new(0, 4096);
        enter(&mut st, &mut mem, Exception::Irq, 0x1234);
        assert_eq!(st.pc, 0xffff_0000_1000_0800 + 0x280);
        assert_eq!(st.sys.spsr_el1, 0x40 | 0x5);
        let mut st = el1_state();
        set_el_sp(&mut st, 1, false);
        enter(&mut st, &mut mem, Exception::Fiq, 0x10);
        assert_eq!(st.pc, 0xffff_0000_1000_0800 + 0x100);
        assert_eq!(st.sys.spsr_el1 & 0x1f, 4);
        enter(&mut st, &mut mem, Exception::SError, 0x10);
        assert_eq!(st.pc, 0xffff_0000_1000_0800 + 0x380);
        assert_eq!(st.sys.esr_el1 >> 26, 0x2f);
    }

    #[test]
    fn faults_map_to_aborts_with_status_codes_and_far() {
        let mut st = el1_state();
        st.pc = 0x8000;
        let f = MemFault::at_level(0xdead_0000, Access::Write, FaultKind::Permission, 3);
        let (ex, ret) = from_stop(&st, Stop::Fault(f)).expect("abort");
        assert_eq!(ret, 0x8000);
        assert_eq!(
            ex,
            Exception::Sync {
                ec: ec::DABT_CURRENT,
                iss: 0b00_1111 | (1 << 6),
                far: Some(0xdead_0000)
            }
        );
        st.sys.el = 0;
        let f = MemFault::at_level(0x4000, Access::Exec, FaultKind::Unmapped, 2);
        let (ex, _) = from_stop(&st, Stop::Fault(f)).expect("abort");
        assert_eq!(
            ex,
            Exception::Sync {
                ec: ec::IABT_LOWER,
                iss: 0b00_0110,
                far: Some(0x4000)
            }
        );
        let f = MemFault::new(0x4001, Access::Read, FaultKind::Alignment);
        let (ex, _) = from_stop(&st, Stop::Fault(f)).expect("abort");
        assert!(matches!(
            ex,
            Exception::Sync {
                ec: 0x24,
                iss: 0x21,
                ..
            }
        ));
        assert_eq!(fault_status(FaultKind::AccessFlag, 3), 0b00_1011);
        assert_eq!(fault_status(FaultKind::Bus, 0), 0b01_0000);
        assert_eq!(from_stop(&st, Stop::Hvc(0)), None);
        assert_eq!(
            from_stop(&st, Stop::Brk(7)),
            Some((
                Exception::Sync {
                    ec: 0x3c,
                    iss: 7,
                    far: None
                },
                0x8000
            ))
        );
    }
}
