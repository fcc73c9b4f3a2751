//! Instruction-counting guest time (`--clock icount`): guest time advances by a fixed
//! 2^shift ns per retired guest instruction, so the same kernel and inputs give the same run.
//!
//! All vCPUs run round-robin on one host thread, each for a fixed slice of instructions (or
//! until its next timer deadline, whichever is nearer), so SMP runs are deterministic too.
//! Timer deadlines become instruction budgets ([`Cpu::stop_at`], exact at a block boundary
//! under every engine): the timer interrupt is raised at the same instruction every run. When
//! every CPU waits (WFI) guest time jumps to the nearest deadline instead of sleeping; with no
//! deadline at all the thread sleeps until an interrupt (console input) arrives, the one
//! host-dependent input.
//!
//! Guest time is the sum of all vCPUs' instructions plus the idle time skipped. A counter
//! read by the running vCPU inside its slice sees the slice's start plus the instructions
//! it has retired since (counted a block at a time, see [`armboard_cpu::CpuState::retired`]).

use super::vcpu::{Flow, Vcpu};
use super::Control;
use armboard_cpu::mmu::Clock;
use armboard_cpu::Stop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Default 2^shift ns per instruction: 4 ns, guest time as if at 250 MIPS.
pub const DEFAULT_SHIFT: u32 = 2;

/// Largest shift accepted (1 instruction = 2^20 ns, about 1 ms).
pub const MAX_SHIFT: u32 = 20;

/// Instructions one vCPU runs before the next takes its turn (SMP). Short enough that a CPU
/// spinning on another's lock or IPI does not waste much, long enough that switching costs
/// nothing noticeable.
const SMP_SLICE: u64 = 1 << 14;

/// With one vCPU there is nobody to switch to: it runs until its deadline, or this long.
const UP_SLICE: u64 = 1 << 24;

/// How long the idle thread sleeps at a time when no CPU has anything to do and no timer is
/// armed (it wakes earlier on an interrupt).
const IDLE_NAP: Duration = Duration::from_millis(10);

/// The instruction clock: guest time in instructions, and its conversion to counter ticks.
pub struct Icount {
    shift: u32,
    freq: u64,
    /// Guest time (instructions) when the running slice started.
    base: AtomicU64,
    /// The running vCPU's retired count when its slice started.
    mark: AtomicU64,
}

impl Icount {
    /// A clock for a counter at `freq` Hz where one instruction takes 2^`shift` ns.
    pub fn new(freq: u64, shift: u32) -> Arc<Icount> {
        Arc::new(Icount {
            shift: shift.min(MAX_SHIFT),
            freq: freq.max(1),
            base: AtomicU64::new(0),
            mark: AtomicU64::new(0),
        })
    }

    /// Counter ticks at guest time `t` instructions.
    pub fn ticks(&self, t: u64) -> u64 {
        let ns_freq = ((t as u128) << self.shift) * self.freq as u128;
        (ns_freq / 1_000_000_000).min(u64::MAX as u128) as u64
    }

    /// The first guest time (instructions) at which the counter reads at least `ticks`.
    pub fn time_of(&self, ticks: u64) -> u64 {
        let per = (self.freq as u128) << self.shift;
        let t = (ticks as u128 * 1_000_000_000).div_ceil(per);
        t.min(u64::MAX as u128) as u64
    }

    /// Guest time at the start of the running slice.
    pub fn now(&self) -> u64 {
        self.base.load(Ordering::Relaxed)
    }

    /// Guest time since the start, at the start of the running slice (what devices without
    /// a CPU at hand see, e.g. the RTC).
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now().saturating_mul(1 << self.shift))
    }

    /// The guest counter, as [`armboard_cpu::mmu::SysMem`] reads it.
    pub fn clock(self: &Arc<Self>) -> Clock {
        let me = self.clone();
        Arc::new(move |retired| {
            let mark = me.mark.load(Ordering::Relaxed);
            me.ticks(me.now().saturating_add(retired.saturating_sub(mark)))
        })
    }

    /// A slice starts at guest time `now` for a vCPU that has retired `retired`.
    fn begin(&self, now: u64, retired: u64) {
        self.base.store(now, Ordering::Relaxed);
        self.mark.store(retired, Ordering::Relaxed);
    }

    /// Guest time `retired` (the running vCPU's count) stands for.
    fn at(&self, retired: u64) -> u64 {
        self.now()
            .saturating_add(retired.saturating_sub(self.mark.load(Ordering::Relaxed)))
    }
}

/// Where a vCPU is, as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Off,
    Running,
    /// In WFI (or a PSCI suspend) with nothing pending.
    Waiting,
}

/// Run every vCPU on this thread until the machine stops.
pub(super) fn run(mut vcpus: Vec<Vcpu>, ctl: Arc<Control>, clock: Arc<Icount>) {
    let n = vcpus.len();
    let slice = if n == 1 { UP_SLICE } else { SMP_SLICE };
    let mut state = vec![State::Off; n];
    let mut now = 0u64;
    for v in vcpus.iter_mut() {
        v.cpu.set_budgeted(true);
    }
    loop {
        if ctl.stopping() {
            return;
        }
        let mut ran = false;
        for i in 0..n {
            let v = &mut vcpus[i];
            if state[i] == State::Off {
                match ctl.try_power_on(i) {
                    Some((entry, context)) => {
                        v.reset(entry, context);
                        state[i] = State::Running;
                    }
                    None => continue,
                }
            }
            clock.begin(now, v.cpu.state.retired);
            if state[i] == State::Waiting {
                v.update_timer();
                let inputs = &ctl.inputs[i];
                if !(inputs.irq() || inputs.fiq()) {
                    continue;
                }
                state[i] = State::Running;
                v.cpu.interrupt().store(false, Ordering::SeqCst);
            }
            ran = true;
            let end = now.saturating_add(slice);
            loop {
                // Stop at the slice's end or the nearest timer deadline (of any CPU: a
                // waiting one wakes on time), whichever is first.
                let deadline = (0..n)
                    .filter_map(|j| ctl.deadline(j))
                    .min()
                    .map_or(u64::MAX, |d| clock.time_of(d));
                let until = end.min(deadline).max(clock.at(v.cpu.state.retired) + 1);
                v.cpu.stop_at = v.cpu.state.retired + (until - clock.at(v.cpu.state.retired));
                let stop = v.cpu.run(&mut v.mem);
                let flow = v.handle(stop);
                match flow {
                    Flow::Halt => return,
                    Flow::Off => {
                        state[i] = State::Off;
                        break;
                    }
                    Flow::Wait | Flow::Suspend => {
                        v.update_timer();
                        let inputs = &ctl.inputs[i];
                        let wfi = flow == Flow::Suspend || v.waiting_in_wfi();
                        if wfi && !(inputs.irq() || inputs.fiq()) {
                            state[i] = State::Waiting;
                            break;
                        }
                        // WFE (or WFI with an interrupt pending): on; with other CPUs, yield.
                        if n > 1 {
                            break;
                        }
                    }
                    Flow::Go => {
                        v.update_timer();
                        if stop == Stop::Budget && clock.at(v.cpu.state.retired) >= end {
                            break;
                        }
                    }
                }
            }
            now = clock.at(v.cpu.state.retired);
        }
        if ran {
            continue;
        }
        // Nobody can run: skip to the nearest deadline of a waiting CPU, or sleep.
        let next = (0..n)
            .filter(|&i| state[i] == State::Waiting)
            .filter_map(|i| ctl.deadline(i))
            .min();
        match next {
            Some(d) => now = now.max(clock.time_of(d)),
            None => {
                let first = (0..n).find(|&i| state[i] == State::Waiting);
                match first {
                    Some(i) => {
                        ctl.inputs[i].wait(Some(IDLE_NAP));
                    }
                    // Every CPU is off (a spin table not released yet, or all powered off).
                    None => std::thread::sleep(IDLE_NAP),
                }
            }
        }
    }
}

/// A deterministic byte stream for the virtio RNG under icount (xorshift64*: not for
/// cryptography, only so that runs repeat).
pub struct SeededRandom(u64);

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `n` bytes of the stream.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

impl std::io::Read for SeededRandom {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let b = self.bytes(buf.len());
        buf.copy_from_slice(&b);
        Ok(buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_converted_to_instructions_is_reached_there_and_not_before() {
        for (freq, shift) in [(62_500_000, 2), (62_500_000, 0), (19_200_000, 3), (1000, 1)] {
            let c = Icount::new(freq, shift);
            for d in [0, 1, 7, 1000, 123_456_789, 1 << 40] {
                let t = c.time_of(d);
                assert!(c.ticks(t) >= d, "{freq} {shift} {d}");
                assert!(t == 0 || c.ticks(t - 1) < d, "{freq} {shift} {d}");
            }
        }
    }

    #[test]
    fn the_counter_follows_the_running_cpus_instructions_from_its_slice_start() {
        let c = Icount::new(62_500_000, 2);
        let read = c.clock();
        // 4 ns per instruction at 62.5 MHz (16 ns per tick): 4 instructions a tick.
        c.begin(4000, 100);
        assert_eq!(read(100), 1000);
        assert_eq!(read(140), 1010);
        assert_eq!(c.at(140), 4040);
        assert_eq!(c.elapsed(), Duration::from_nanos(16000));
    }

    #[test]
    fn the_seeded_stream_repeats_and_differs_by_seed() {
        let a = SeededRandom::new(7).bytes(33);
        assert_eq!(a, SeededRandom::new(7).bytes(33));
        assert_ne!(a, SeededRandom::new(8).bytes(33));
        assert!(a.iter().any(|&b| b != 0));
    }
}
