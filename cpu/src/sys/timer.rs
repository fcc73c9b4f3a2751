//! The generic timer's compare logic (Arm ARM D11.2): each timer fires when it is enabled and
//! its counter has reached the compare value; its interrupt output is that, unless masked.

use super::SysRegs;

/// CNT{P,V}_CTL_EL0 bits.
pub mod ctl {
    pub const ENABLE: u64 = 1 << 0;
    pub const IMASK: u64 = 1 << 1;
    /// Read-only: the timer condition is met.
    pub const ISTATUS: u64 = 1 << 2;
}

/// CNTKCTL_EL1 bits: which counter and timer registers EL0 may access, and the event stream
/// (an event at each transition of count bit EVNTI, bits 7:4).
pub mod cntkctl {
    pub const EL0PCTEN: u64 = 1 << 0;
    pub const EL0VCTEN: u64 = 1 << 1;
    pub const EVNTEN: u64 = 1 << 2;
    /// Events at 1-to-0 transitions (else 0-to-1).
    pub const EVNTDIR: u64 = 1 << 3;
    pub const EL0VTEN: u64 = 1 << 8;
    pub const EL0PTEN: u64 = 1 << 9;
}

/// The timer condition: enabled and `count >= cval` (unsigned, as the architecture compares).
pub fn condition_met(ctl: u64, count: u64, cval: u64) -> bool {
    ctl & ctl::ENABLE != 0 && count >= cval
}

/// CTL as read: the stored ENABLE and IMASK plus the computed ISTATUS.
pub fn ctl_value(ctl: u64, count: u64, cval: u64) -> u64 {
    let istatus = if condition_met(ctl, count, cval) {
        ctl::ISTATUS
    } else {
        0
    };
    (ctl & (ctl::ENABLE | ctl::IMASK)) | istatus
}

/// TVAL as read: `cval - count` as a signed 32-bit value (bits 63:32 read as zero).
pub fn tval_value(count: u64, cval: u64) -> u64 {
    cval.wrapping_sub(count) as u32 as u64
}

/// The CVAL a TVAL write sets: `count + sext(tval[31:0])`.
pub fn cval_from_tval(count: u64, tval: u64) -> u64 {
    count.wrapping_add(tval as u32 as i32 as i64 as u64)
}

/// The timers' interrupt outputs at one physical counter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimerLines {
    /// The virtual timer's output (PPI 27 on a GIC).
    pub virt: bool,
    /// The EL1 physical timer's output (PPI 30 on a GIC).
    pub phys: bool,
    /// The earliest physical counter value at which an enabled, unmasked timer that is not
    /// firing yet will fire.
    pub next_deadline: Option<u64>,
}

/// The timer outputs and next deadline for physical count `counter`.
pub fn timer_lines(sys: &SysRegs, counter: u64) -> TimerLines {
    let mut lines = TimerLines::default();
    let vcount = counter.wrapping_sub(sys.cntvoff);
    let timers = [
        (
            sys.cntv_ctl,
            vcount,
            sys.cntv_cval,
            sys.cntvoff,
            &mut lines.virt,
        ),
        (sys.cntp_ctl, counter, sys.cntp_cval, 0, &mut lines.phys),
    ];
    let mut next: Option<u64> = None;
    for (ctl, count, cval, offset, line) in timers {
        if ctl & ctl::ENABLE == 0 || ctl & ctl::IMASK != 0 {
            continue;
        }
        if condition_met(ctl, count, cval) {
            *line = true;
        } else {
            // The physical count at which `count` reaches `cval`.
            let at = cval.saturating_add(offset);
            next = Some(next.map_or(at, |n| n.min(at)));
        }
    }
    lines.next_deadline = next;
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sys() -> SysRegs {
        SysRegs::reset_el1(crate::model::CORTEX_A72, 0x8000_0000)
    }

    #[test]
    fn disabled_or_masked_timers_neither_fire_nor_set_a_deadline() {
        let mut s = sys();
        s.cntv_cval = 100;
        s.cntp_cval = 100;
        assert_eq!(timer_lines(&s, 200), TimerLines::default());
        s.cntv_ctl = ctl::ENABLE | ctl::IMASK;
        s.cntp_ctl = ctl::ENABLE | ctl::IMASK;
        assert_eq!(timer_lines(&s, 200), TimerLines::default());
    }

    #[test]
    fn virtual_timer_counts_from_the_offset_and_reports_physical_deadline() {
        let mut s = sys();
        s.cntvoff = 1000;
        s.cntv_ctl = ctl::ENABLE;
        s.cntv_cval = 500;
        // Virtual count 100: fires at physical 1500.
        let l = timer_lines(&s, 1100);
        assert!(!l.virt && !l.phys);
        assert_eq!(l.next_deadline, Some(1500));
        let l = timer_lines(&s, 1500);
        assert!(l.virt);
        assert_eq!(l.next_deadline, None);
    }

    #[test]
    fn earliest_of_two_pending_deadlines_is_reported() {
        let mut s = sys();
        s.cntv_ctl = ctl::ENABLE;
        s.cntv_cval = 900;
        s.cntp_ctl = ctl::ENABLE;
        s.cntp_cval = 700;
        assert_eq!(timer_lines(&s, 10).next_deadline, Some(700));
        // Physical fired: only the virtual deadline remains.
        let l = timer_lines(&s, 800);
        assert!(l.phys && !l.virt);
        assert_eq!(l.next_deadline, Some(900));
    }

    #[test]
    fn tval_is_signed_32_bit_distance_to_cval() {
        assert_eq!(tval_value(1000, 1100), 100);
        assert_eq!(tval_value(1100, 1000), (-100i32) as u32 as u64);
        assert_eq!(cval_from_tval(1000, (-10i32) as u32 as u64), 990);
        // Bits 63:32 of a TVAL write are ignored.
        assert_eq!(cval_from_tval(1000, 0xffff_ffff_0000_0005), 1005);
        assert_eq!(ctl_value(ctl::ENABLE | ctl::ISTATUS, 5, 5), 5);
        assert_eq!(ctl_value(ctl::IMASK, 5, 5), ctl::IMASK);
    }
}
