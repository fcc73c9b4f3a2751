//! Arm PrimeCell real-time clock (PL031): a 32-bit seconds counter with a match alarm.
//!
//! The counter is the value last loaded (RTCLR, at creation: host time, or a given start) plus
//! the whole seconds a clock has advanced since. There is no timer thread: the alarm match is
//! checked on every register access and by [`Pl031::poll`], which a machine calls now and then
//! (Linux only uses the alarm for wake-ups).

use armboard_bus::{Device, IrqLine};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Size of the register frame.
pub const SIZE: u64 = 0x1000;

const RTCDR: u64 = 0x00;
const RTCMR: u64 = 0x04;
const RTCLR: u64 = 0x08;
const RTCCR: u64 = 0x0C;
const RTCIMSC: u64 = 0x10;
const RTCRIS: u64 = 0x14;
const RTCMIS: u64 = 0x18;
const RTCICR: u64 = 0x1C;
const RTCPERIPHID0: u64 = 0xFE0;

/// RTCPeriphID0..3, RTCPCellID0..3.
const ID: [u8; 8] = [0x31, 0x10, 0x04, 0x00, 0x0D, 0xF0, 0x05, 0xB1];

/// A monotonic clock: time elapsed since some fixed point.
pub type Clock = Box<dyn Fn() -> Duration + Send>;

/// A PL031 RTC.
pub struct Pl031 {
    clock: Clock,
    /// Counter value loaded at `loaded_at`.
    loaded: u32,
    loaded_at: Duration,
    mr: u32,
    /// The alarm is waiting for the counter to reach `mr`.
    armed: bool,
    imsc: u32,
    ris: u32,
    irq: IrqLine,
    irq_level: bool,
}

impl Pl031 {
    /// An RTC starting at the host's current time (seconds since 1970), following the host's
    /// monotonic clock.
    pub fn new(irq: IrqLine) -> Pl031 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        Self::with_start(now, irq)
    }

    /// An RTC reading `start` now, following the host's monotonic clock.
    pub fn with_start(start: u32, irq: IrqLine) -> Pl031 {
        let origin = Instant::now();
        Self::with_clock(start, Box::new(move || origin.elapsed()), irq)
    }

    /// An RTC reading `start` now and advancing with `clock` (e.g. guest virtual time).
    pub fn with_clock(start: u32, clock: Clock, irq: IrqLine) -> Pl031 {
        let loaded_at = clock();
        Pl031 {
            clock,
            loaded: start,
            loaded_at,
            mr: 0,
            armed: false,
            imsc: 0,
            ris: 0,
            irq,
            irq_level: false,
        }
    }

    /// The counter (RTCDR).
    pub fn counter(&self) -> u32 {
        let elapsed = (self.clock)().saturating_sub(self.loaded_at).as_secs();
        self.loaded.wrapping_add(elapsed as u32)
    }

    fn arm(&mut self) {
        // Armed when the match lies ahead (or is now); a match in the past waits for the
        // 32-bit counter to wrap, which no guest will see.
        self.armed = (self.mr.wrapping_sub(self.counter()) as i32) >= 0;
        self.check();
    }

    fn check(&mut self) {
        if self.armed && (self.counter().wrapping_sub(self.mr) as i32) >= 0 {
            self.armed = false;
            self.ris = 1;
        }
        let level = self.ris & self.imsc != 0;
        if level != self.irq_level {
            self.irq_level = level;
            self.irq.set(level);
        }
    }

    /// Check the alarm and update the interrupt line.
    pub fn poll(&mut self) {
        self.check();
    }

    /// Time until the armed alarm matches, if one is armed (for a machine's timer wheel).
    pub fn next_alarm_in(&self) -> Option<Duration> {
        self.armed
            .then(|| Duration::from_secs(self.mr.wrapping_sub(self.counter()) as u64))
    }
}

impl Device for Pl031 {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if size != 4 || offset & 3 != 0 || offset >= SIZE {
            log::warn!("pl031: bad read of size {size} at {offset:#x}");
            return 0;
        }
        self.check();
        (match offset {
            RTCDR => self.counter(),
            RTCMR => self.mr,
            RTCLR => self.loaded,
            RTCCR => 1, // started at reset; cannot be stopped
            RTCIMSC => self.imsc,
            RTCRIS => self.ris,
            RTCMIS => self.ris & self.imsc,
            RTCPERIPHID0..=0xFFC => ID[((offset - RTCPERIPHID0) / 4) as usize] as u32,
            _ => {
                log::debug!("pl031: read of reserved offset {offset:#x}");
                0
            }
        }) as u64
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if size != 4 || offset & 3 != 0 || offset >= SIZE {
            log::warn!("pl031: bad write of size {size} at {offset:#x}");
            return;
        }
        let v = value as u32;
        match offset {
            RTCMR => {
                self.mr = v;
                self.arm();
            }
            RTCLR => {
                self.loaded = v;
                self.loaded_at = (self.clock)();
                self.arm();
            }
            RTCCR => {} // writes have no effect once started
            RTCIMSC => self.imsc = v & 1,
            RTCICR => self.ris &= !(v & 1),
            _ => log::debug!("pl031: write {v:#x} to read-only/reserved offset {offset:#x}"),
        }
        self.check();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use armboard_bus::IrqSink;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    #[derive(Default)]
    struct Level(AtomicBool);
    impl IrqSink for Level {
        fn set_level(&self, _line: u32, level: bool) {
            self.0.store(level, Ordering::SeqCst);
        }
    }

    fn rtc(start: u32) -> (Pl031, Arc<AtomicU64>, Arc<Level>) {
        let t = Arc::new(AtomicU64::new(0));
        let t2 = t.clone();
        let lvl = Arc::new(Level::default());
        let clock: Clock = Box::new(move || Duration::from_millis(t2.load(Ordering::SeqCst)));
        let r = Pl031::with_clock(start, clock, IrqLine::new(lvl.clone(), 34));
        (r, t, lvl)
    }

    #[test]
    fn counter_advances_with_the_clock_and_loads() {
        let (mut r, t, _) = rtc(1000);
        assert_eq!(r.read(RTCDR, 4), 1000);
        t.store(2500, Ordering::SeqCst);
        assert_eq!(r.read(RTCDR, 4), 1002);
        r.write(RTCLR, 4, 50);
        assert_eq!(r.read(RTCDR, 4), 50);
        assert_eq!(r.read(RTCLR, 4), 50);
        t.store(3600, Ordering::SeqCst);
        assert_eq!(r.read(RTCDR, 4), 51);
        assert_eq!(r.read(RTCCR, 4), 1);
    }

    #[test]
    fn host_time_start_is_recent() {
        let mut r = Pl031::new(IrqLine::disconnected());
        // After 2023-01-01.
        assert!(r.read(RTCDR, 4) > 1_672_531_200);
    }

    #[test]
    fn alarm_fires_at_the_match_and_clears() {
        let (mut r, t, lvl) = rtc(100);
        r.write(RTCIMSC, 4, 1);
        r.write(RTCMR, 4, 103);
        assert_eq!(r.next_alarm_in(), Some(Duration::from_secs(3)));
        t.store(2000, Ordering::SeqCst);
        r.poll();
        assert!(!lvl.0.load(Ordering::SeqCst));
        t.store(3000, Ordering::SeqCst);
        r.poll();
        assert!(lvl.0.load(Ordering::SeqCst));
        assert_eq!(r.read(RTCRIS, 4), 1);
        assert_eq!(r.read(RTCMIS, 4), 1);
        r.write(RTCICR, 4, 1);
        assert!(!lvl.0.load(Ordering::SeqCst));
        // Fires once.
        t.store(9000, Ordering::SeqCst);
        assert_eq!(r.read(RTCRIS, 4), 0);
        // A match in the past does not fire.
        r.write(RTCMR, 4, 50);
        assert_eq!(r.read(RTCRIS, 4), 0);
    }

    #[test]
    fn ids_and_bad_accesses() {
        let (mut r, _, _) = rtc(0);
        let id: Vec<u64> = (0..8).map(|i| r.read(0xFE0 + 4 * i, 4)).collect();
        assert_eq!(id, [0x31, 0x10, 0x04, 0x00, 0x0D, 0xF0, 0x05, 0xB1]);
        assert_eq!(r.read(RTCDR, 2), 0);
        r.write(RTCDR, 4, 5);
        assert_eq!(r.read(RTCDR, 4), 0);
    }
}
