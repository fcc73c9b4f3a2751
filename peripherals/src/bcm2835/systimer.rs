//! BCM2835 system timer (DT `brcm,bcm2835-system-timer`, bus 0x7e003000, 0x1000 bytes on the
//! Pi 3): a free-running 64-bit counter at 1 MHz and four 32-bit compare channels. When the low
//! word of the counter reaches channel n's compare value, CS bit Mn is set and the channel's
//! interrupt line (GPU IRQs 0..3) is raised; writing 1 to Mn clears it and lowers the line.
//! Channels 0 and 2 belong to the VideoCore on real hardware. Linux's
//! `drivers/clocksource/bcm2835_timer.c` (32-bit Pis) uses CLO as clocksource and channel 3 for
//! clockevents; arm64 kernels use the Arm generic timer instead, so here it mostly serves
//! firmware-style delay loops reading CLO.
//!
//! Registers (32-bit): CS 0x00 (match bits M0..M3, write 1 to clear), CLO 0x04 and CHI 0x08
//! (counter, read-only), C0..C3 0x0c..0x18 (compare). Time comes from a [`Clock`]; matches are
//! found on any register access and by [`SysTimer::poll`], which a board's timer thread calls
//! (see [`SysTimer::next_deadline`] for when).

use armboard_bus::{Device, IrqLine};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Size of the register block.
pub const SIZE: u64 = 0x1000;

/// A monotonic time source in nanoseconds from an arbitrary epoch (injectable for tests).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// A [`Clock`] reading host time since the call that made it.
pub fn host_clock() -> Clock {
    let start = Instant::now();
    Arc::new(move || u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX))
}

const CS: u64 = 0x00;
const CLO: u64 = 0x04;
const CHI: u64 = 0x08;
const C0: u64 = 0x0c;
const C3: u64 = 0x18;

/// Counter ticks per second.
pub const FREQ_HZ: u64 = 1_000_000;

/// The system timer; a [`Device`] for its register block.
pub struct SysTimer {
    irqs: [IrqLine; 4],
    clock: Clock,
    /// Match bits M0..M3 (also the levels of the four lines).
    cs: u32,
    compare: [u32; 4],
    /// Counter value up to which compares have been checked (matches in `(checked, now]` are
    /// still to be found).
    checked: u64,
}

impl SysTimer {
    /// A system timer on host time; `irqs[n]` is channel n's line.
    pub fn new(irqs: [IrqLine; 4]) -> SysTimer {
        Self::with_clock(irqs, host_clock())
    }

    /// A system timer on `clock` (the counter reads 0 at the clock's epoch).
    pub fn with_clock(irqs: [IrqLine; 4], clock: Clock) -> SysTimer {
        let mut t = SysTimer {
            irqs,
            clock,
            cs: 0,
            compare: [0; 4],
            checked: 0,
        };
        t.checked = t.counter();
        t
    }

    /// The free-running 64-bit counter (microseconds).
    pub fn counter(&self) -> u64 {
        (self.clock)() / (1_000_000_000 / FREQ_HZ)
    }

    /// Find compare matches up to now, set their CS bits and raise their lines.
    pub fn poll(&mut self) {
        let now = self.counter();
        let elapsed = now.saturating_sub(self.checked);
        if elapsed == 0 {
            return;
        }
        for n in 0..4 {
            if Self::ticks_to_match(self.checked, self.compare[n]) <= elapsed {
                self.cs |= 1 << n;
                self.irqs[n].raise();
            }
        }
        self.checked = now;
    }

    /// Ticks after counter value `from` until the low word next equals `compare` (1..=2^32).
    fn ticks_to_match(from: u64, compare: u32) -> u64 {
        match compare.wrapping_sub(from as u32) {
            0 => 1 << 32,
            d => u64::from(d),
        }
    }

    /// Time from now until the next compare match on a channel whose match bit is clear
    /// (`None` if all four are set: nothing can change until the guest clears one).
    pub fn next_deadline(&mut self) -> Option<Duration> {
        self.poll();
        let now = self.counter();
        (0..4)
            .filter(|&n| self.cs & (1 << n) == 0)
            .map(|n| {
                Self::ticks_to_match(self.checked, self.compare[n])
                    .saturating_sub(now.saturating_sub(self.checked))
            })
            .min()
            .map(Duration::from_micros)
    }

    fn read32(&mut self, offset: u64) -> u32 {
        self.poll();
        match offset {
            CS => self.cs,
            CLO => self.counter() as u32,
            CHI => (self.counter() >> 32) as u32,
            C0..=C3 => self.compare[((offset - C0) / 4) as usize],
            _ => {
                log::debug!("bcm2835-systimer: read of unknown offset {offset:#x}");
                0
            }
        }
    }

    fn write32(&mut self, offset: u64, value: u32) {
        // Matches before the write still count (a compare written now looks forward).
        self.poll();
        match offset {
            CS => {
                let clear = value & 0xf & self.cs;
                self.cs &= !clear;
                for n in 0..4 {
                    if clear & (1 << n) != 0 {
                        self.irqs[n].lower();
                    }
                }
            }
            C0..=C3 => self.compare[((offset - C0) / 4) as usize] = value,
            CLO | CHI => log::debug!("bcm2835-systimer: write to read-only counter"),
            _ => log::debug!("bcm2835-systimer: write {value:#x} to unknown offset {offset:#x}"),
        }
    }
}

impl Device for SysTimer {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if size != 4 || !offset.is_multiple_of(4) {
            log::debug!("bcm2835-systimer: {size}-byte read at {offset:#x}");
            return 0;
        }
        u64::from(self.read32(offset))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if size != 4 || !offset.is_multiple_of(4) {
            log::debug!("bcm2835-systimer: {size}-byte write at {offset:#x}");
            return;
        }
        self.write32(offset, value as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use armboard_bus::IrqSink;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    /// Records the level of lines 0..31 as bits.
    #[derive(Default)]
    struct Levels(AtomicU32);
    impl IrqSink for Levels {
        fn set_level(&self, line: u32, level: bool) {
            if level {
                self.0.fetch_or(1 << line, Ordering::SeqCst);
            } else {
                self.0.fetch_and(!(1 << line), Ordering::SeqCst);
            }
        }
    }

    fn timer(start_us: u64) -> (SysTimer, Arc<AtomicU64>, Arc<Levels>) {
        let now = Arc::new(AtomicU64::new(start_us * 1000));
        let n = now.clone();
        let clock: Clock = Arc::new(move || n.load(Ordering::SeqCst));
        let sink = Arc::new(Levels::default());
        let irqs = [0, 1, 2, 3].map(|i| IrqLine::new(sink.clone(), i));
        (SysTimer::with_clock(irqs, clock), now, sink)
    }

    fn set_us(now: &AtomicU64, us: u64) {
        now.store(us * 1000, Ordering::SeqCst);
    }

    #[test]
    fn counter_runs_at_1mhz_in_clo_and_chi() {
        let (mut t, now, _) = timer(0);
        set_us(&now, 0x1_2345_6789);
        assert_eq!(t.read(CLO, 4), 0x2345_6789);
        assert_eq!(t.read(CHI, 4), 1);
        t.write(CLO, 4, 0);
        assert_eq!(t.read(CLO, 4), 0x2345_6789);
    }

    #[test]
    fn compare_match_sets_cs_raises_line_and_write_one_clears() {
        let (mut t, now, sink) = timer(1000);
        t.write(C0 + 12, 4, 1500); // C3
        t.write(C0 + 4, 4, 3000); // C1
        set_us(&now, 1499);
        t.poll();
        assert_eq!(t.read(CS, 4), 0);
        assert_eq!(sink.0.load(Ordering::SeqCst), 0);
        set_us(&now, 1600);
        t.poll();
        assert_eq!(t.read(CS, 4), 0b1000);
        assert_eq!(sink.0.load(Ordering::SeqCst), 0b1000);
        // Writing 0 bits or bits of other channels changes nothing.
        t.write(CS, 4, 0b0010);
        assert_eq!(t.read(CS, 4), 0b1000);
        t.write(CS, 4, 0b1000);
        assert_eq!(t.read(CS, 4), 0);
        assert_eq!(sink.0.load(Ordering::SeqCst), 0);
        // A read finds matches without poll.
        set_us(&now, 3000);
        assert_eq!(t.read(CS, 4), 0b0010);
        assert_eq!(sink.0.load(Ordering::SeqCst), 0b0010);
        assert_eq!(t.read(C0 + 4, 4), 3000);
    }

    #[test]
    fn compare_in_the_past_waits_for_wraparound() {
        let (mut t, now, _) = timer(5000);
        t.write(C0 + 8, 4, 4000);
        set_us(&now, 100_000);
        assert_eq!(t.read(CS, 4), 0);
        // The low word wraps past 4000 again.
        // The low word wraps past 4000 again (and past the other channels' compare of 0).
        set_us(&now, (1 << 32) + 3999);
        assert_eq!(t.read(CS, 4), 0b1011);
        set_us(&now, (1 << 32) + 4000);
        assert_eq!(t.read(CS, 4), 0b1111);
    }

    #[test]
    fn compares_match_across_the_low_word_wrap() {
        let (mut t, now, _) = timer(0xffff_ff00);
        t.write(C0, 4, 0x10);
        set_us(&now, 0x1_0000_000f);
        assert_eq!(t.read(CS, 4) & 1, 0);
        set_us(&now, 0x1_0000_0010);
        assert_eq!(t.read(CS, 4) & 1, 1);
    }

    #[test]
    fn next_deadline_is_the_nearest_unmatched_compare() {
        let (mut t, now, _) = timer(100);
        for n in 0..4u64 {
            t.write(C0 + 4 * n, 4, 1000 + 100 * n);
        }
        assert_eq!(t.next_deadline(), Some(Duration::from_micros(900)));
        set_us(&now, 1050);
        assert_eq!(t.next_deadline(), Some(Duration::from_micros(50)));
        assert_eq!(t.read(CS, 4), 1);
        set_us(&now, 1300);
        t.poll();
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn a_clock_going_backwards_finds_no_matches_and_does_not_panic() {
        let (mut t, now, _) = timer(10_000);
        t.write(C0, 4, 9_500);
        set_us(&now, 9_000);
        t.poll();
        assert_eq!(t.read(CS, 4), 0);
        assert!(t.next_deadline().is_some());
    }

    #[test]
    fn bad_accesses_are_ignored() {
        let (mut t, _, _) = timer(0);
        assert_eq!(t.read(0x2, 4), 0);
        assert_eq!(t.read(0x800, 4), 0);
        assert_eq!(t.read(CLO, 8), 0);
        t.write(0xffc, 4, u64::MAX);
        t.write(C0, 2, 5);
        assert_eq!(t.read(C0, 4), 0);
    }
}
