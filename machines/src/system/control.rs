//! State the vCPU threads, the timer thread, devices and the main thread share: power states,
//! timer deadlines, and how the run ends.

use super::psci;
use armboard_bus::{CpuInterrupts, IrqSink, Ram};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The guest powered the board off (PSCI SYSTEM_OFF, a power-management block).
    PowerOff,
    /// The guest reset the board.
    Reset,
    /// The kernel halted its CPUs without powering off (no power-off driver); the board
    /// would sit there forever.
    Halted,
    /// The kernel panicked; the panic report.
    Panic(String),
    /// The user pressed Ctrl-A x.
    Quit,
    /// The guest did not finish in the time allowed.
    TimedOut,
    /// Something the emulator could not continue from.
    Error(String),
}

/// Power state of a vCPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Off,
    /// Start at `entry` with x0 = `context` (the boot CPU, or PSCI CPU_ON).
    Starting {
        entry: u64,
        context: u64,
    },
    /// Held by the firmware in a spin table: start at the address the kernel writes to the
    /// 64-bit word at `release` (the tree's `cpu-release-addr`), with x0 = 0.
    Spinning {
        release: u64,
    },
    On,
}

/// Where a vCPU's generic timer outputs go: lines `(cpu << 16) | virt` and `| phys` of
/// `sink` (the GIC's PPIs 27 and 30 on virt; the ARM-local controller's inputs on a Pi).
#[derive(Clone)]
pub struct TimerWiring {
    pub sink: Arc<dyn IrqSink>,
    pub virt: u32,
    pub phys: u32,
}

/// What answers HVC and SMC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// PSCI 1.0 (QEMU's virt).
    Psci,
    /// Nothing: EL2 and EL3 are not implemented, so HVC and SMC are undefined at EL1.
    None,
}

/// Everything [`Control::new`] needs.
pub struct ControlConfig {
    pub inputs: Vec<Arc<CpuInterrupts>>,
    pub kicks: Vec<Arc<AtomicBool>>,
    /// MPIDR_EL1 of each vCPU.
    pub mpidrs: Vec<u64>,
    /// Initial power state of each vCPU.
    pub power: Vec<Power>,
    pub timer: TimerWiring,
    pub firmware: Firmware,
    /// Generic timer frequency (CNTFRQ_EL0).
    pub freq: u64,
    /// RAM, for spin tables.
    pub ram: Arc<Ram>,
}

/// Shared machine state; see the module docs.
pub struct Control {
    pub(super) inputs: Vec<Arc<CpuInterrupts>>,
    pub(super) kicks: Vec<Arc<AtomicBool>>,
    mpidrs: Vec<u64>,
    pub(super) timer: TimerWiring,
    pub(super) firmware: Firmware,
    ram: Arc<Ram>,
    power: Mutex<Vec<Power>>,
    power_cv: Condvar,
    stop: AtomicBool,
    pub(super) outcome: Mutex<Option<Outcome>>,
    pub(super) outcome_cv: Condvar,
    /// Next timer deadline per vCPU in counter ticks (u64::MAX: none).
    deadlines: Vec<AtomicU64>,
    pub(super) freq: u64,
}

/// How often a CPU held in a spin table looks at its release address.
const SPIN_POLL: Duration = Duration::from_millis(1);

impl Control {
    pub fn new(c: ControlConfig) -> Arc<Control> {
        let n = c.inputs.len();
        Arc::new(Control {
            inputs: c.inputs,
            kicks: c.kicks,
            mpidrs: c.mpidrs,
            timer: c.timer,
            firmware: c.firmware,
            ram: c.ram,
            power: Mutex::new(c.power),
            power_cv: Condvar::new(),
            stop: AtomicBool::new(false),
            outcome: Mutex::new(None),
            outcome_cv: Condvar::new(),
            deadlines: (0..n).map(|_| AtomicU64::new(u64::MAX)).collect(),
            freq: c.freq,
        })
    }

    pub fn cpus(&self) -> usize {
        self.inputs.len()
    }

    /// MPIDR_EL1 of vCPU `i`.
    pub fn mpidr(&self, i: usize) -> u64 {
        self.mpidrs.get(i).copied().unwrap_or(0x8000_0000)
    }

    fn index_of(&self, mpidr: u64) -> Option<usize> {
        let aff = |m: u64| m & 0xff_00ff_ffff;
        self.mpidrs.iter().position(|&m| aff(m) == aff(mpidr))
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// End the run (the first outcome wins) and wake every vCPU.
    pub fn finish(&self, o: Outcome) {
        {
            let mut g = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
            if g.is_none() {
                *g = Some(o);
            }
        }
        self.stop.store(true, Ordering::Release);
        self.outcome_cv.notify_all();
        self.power_cv.notify_all();
        for i in &self.inputs {
            i.notify();
        }
    }

    /// SEV: an event to every vCPU, and a look at the spin tables' release words (the kernel
    /// sends one after writing them).
    pub(super) fn send_event(&self) {
        for i in &self.inputs {
            i.send_event();
        }
        // Taking the lock orders this after a waiter's look at its release word.
        drop(self.power.lock().unwrap_or_else(|e| e.into_inner()));
        self.power_cv.notify_all();
    }

    /// Block until vCPU `i` is started; None when the machine stops.
    pub(super) fn wait_power_on(&self, i: usize) -> Option<(u64, u64)> {
        let mut p = self.power.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.stopping() {
                return None;
            }
            match p[i] {
                Power::Starting { entry, context } => {
                    p[i] = Power::On;
                    return Some((entry, context));
                }
                Power::Spinning { release } => {
                    let entry = self.ram.load(release, 8).unwrap_or(0);
                    if entry != 0 {
                        p[i] = Power::On;
                        return Some((entry, 0));
                    }
                    p = self
                        .power_cv
                        .wait_timeout(p, SPIN_POLL)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                _ => p = self.power_cv.wait(p).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    /// vCPU `i`'s start, if it has been started (PSCI CPU_ON, its spin-table release word
    /// written) since it was last off; never blocks.
    pub(super) fn try_power_on(&self, i: usize) -> Option<(u64, u64)> {
        let mut p = self.power.lock().unwrap_or_else(|e| e.into_inner());
        match p[i] {
            Power::Starting { entry, context } => {
                p[i] = Power::On;
                Some((entry, context))
            }
            Power::Spinning { release } => {
                let entry = self.ram.load(release, 8).unwrap_or(0);
                (entry != 0).then(|| {
                    p[i] = Power::On;
                    (entry, 0)
                })
            }
            _ => None,
        }
    }

    pub(super) fn cpu_on(&self, target: u64, entry: u64, context: u64) -> i64 {
        let Some(i) = self.index_of(target) else {
            return psci::INVALID_PARAMETERS;
        };
        let mut p = self.power.lock().unwrap_or_else(|e| e.into_inner());
        if p[i] != Power::Off {
            return psci::ALREADY_ON;
        }
        p[i] = Power::Starting { entry, context };
        self.power_cv.notify_all();
        psci::SUCCESS
    }

    pub(super) fn cpu_off(&self, i: usize) {
        self.power.lock().unwrap_or_else(|e| e.into_inner())[i] = Power::Off;
        self.set_deadline(i, None);
    }

    pub(super) fn affinity_info(&self, target: u64) -> i64 {
        match self.index_of(target) {
            None => psci::INVALID_PARAMETERS,
            Some(i) => match self.power.lock().unwrap_or_else(|e| e.into_inner())[i] {
                Power::Off | Power::Spinning { .. } => 1,
                Power::Starting { .. } => 2,
                Power::On => 0,
            },
        }
    }

    pub(super) fn set_deadline(&self, i: usize, d: Option<u64>) {
        self.deadlines[i].store(d.unwrap_or(u64::MAX), Ordering::Release);
    }

    pub(super) fn deadline(&self, i: usize) -> Option<u64> {
        let d = self.deadlines[i].load(Ordering::Acquire);
        (d != u64::MAX).then_some(d)
    }

    pub(super) fn ticks_to_duration(&self, ticks: u64) -> Duration {
        Duration::from_nanos((ticks as u128 * 1_000_000_000 / self.freq.max(1) as u128) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nowhere;
    impl IrqSink for Nowhere {
        fn set_level(&self, _: u32, _: bool) {}
    }

    fn control(power: Vec<Power>) -> Arc<Control> {
        let kicks: Vec<_> = power
            .iter()
            .map(|_| Arc::new(AtomicBool::new(false)))
            .collect();
        Control::new(ControlConfig {
            inputs: kicks
                .iter()
                .map(|k| Arc::new(CpuInterrupts::new(k.clone())))
                .collect(),
            kicks,
            mpidrs: (0..power.len() as u64).map(|i| 0x8000_0000 | i).collect(),
            power,
            timer: TimerWiring {
                sink: Arc::new(Nowhere),
                virt: 0,
                phys: 0,
            },
            firmware: Firmware::None,
            freq: 1_000_000,
            ram: Arc::new(Ram::new(0, 1 << 20).unwrap()),
        })
    }

    #[test]
    fn a_spinning_cpu_starts_at_the_address_written_to_its_release_word() {
        let ctl = control(vec![Power::On, Power::Spinning { release: 0xe0 }]);
        let waiter = {
            let ctl = ctl.clone();
            std::thread::spawn(move || ctl.wait_power_on(1))
        };
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(ctl.affinity_info(0x8000_0001), 1);
        ctl.ram.store(0xe0, 8, 0x8_0000).unwrap();
        assert_eq!(waiter.join().unwrap(), Some((0x8_0000, 0)));
        assert_eq!(ctl.affinity_info(1), 0);
    }

    #[test]
    fn finishing_releases_waiting_cpus_and_keeps_the_first_outcome() {
        let ctl = control(vec![Power::On, Power::Off, Power::Spinning { release: 8 }]);
        let waiters: Vec<_> = [1, 2]
            .into_iter()
            .map(|i| {
                let ctl = ctl.clone();
                std::thread::spawn(move || ctl.wait_power_on(i))
            })
            .collect();
        ctl.finish(Outcome::PowerOff);
        ctl.finish(Outcome::Reset);
        for w in waiters {
            assert_eq!(w.join().unwrap(), None);
        }
        assert_eq!(*ctl.outcome.lock().unwrap(), Some(Outcome::PowerOff));
    }
}
