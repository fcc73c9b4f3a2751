//! Interrupt lines and the CPU's interrupt inputs.
//!
//! A device holds an [`IrqLine`] and raises or lowers it; the line forwards the level to an
//! interrupt controller through [`IrqSink`]. The controller drives each CPU's
//! [`CpuInterrupts`]: level inputs the vCPU polls at block boundaries, plus a kick that makes
//! a running vCPU leave compiled code and wakes one sleeping in WFI.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Whatever receives interrupt lines: an interrupt controller. `line` numbering is the
/// controller's own (for a GIC: the INTID; per-CPU lines carry the CPU in bits 31:16).
pub trait IrqSink: Send + Sync {
    fn set_level(&self, line: u32, level: bool);
}

/// One interrupt line held by a device.
#[derive(Clone)]
pub struct IrqLine {
    sink: Option<Arc<dyn IrqSink>>,
    line: u32,
}

impl IrqLine {
    pub fn new(sink: Arc<dyn IrqSink>, line: u32) -> Self {
        Self {
            sink: Some(sink),
            line,
        }
    }

    /// A line connected to nothing (tests, unwired devices).
    pub fn disconnected() -> Self {
        Self {
            sink: None,
            line: 0,
        }
    }

    pub fn set(&self, level: bool) {
        if let Some(s) = &self.sink {
            s.set_level(self.line, level);
        }
    }

    pub fn raise(&self) {
        self.set(true)
    }

    pub fn lower(&self) {
        self.set(false)
    }
}

/// A CPU's interrupt inputs, driven by the interrupt controller.
pub struct CpuInterrupts {
    irq: AtomicBool,
    fiq: AtomicBool,
    /// The vCPU's "leave compiled code at the next block boundary" flag.
    kick: Arc<AtomicBool>,
    /// An event sent by SEV (on any vCPU) that no WFE has consumed yet: the part of the
    /// event register other vCPUs set.
    event: AtomicBool,
    sleep: Mutex<bool>,
    wake: Condvar,
}

impl CpuInterrupts {
    /// Inputs that kick the vCPU owning `kick` (its `Cpu::interrupt`).
    pub fn new(kick: Arc<AtomicBool>) -> Self {
        Self {
            irq: AtomicBool::new(false),
            fiq: AtomicBool::new(false),
            kick,
            event: AtomicBool::new(false),
            sleep: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    pub fn irq(&self) -> bool {
        self.irq.load(Ordering::Acquire)
    }

    pub fn fiq(&self) -> bool {
        self.fiq.load(Ordering::Acquire)
    }

    pub fn set_irq(&self, level: bool) {
        if self.irq.swap(level, Ordering::AcqRel) != level && level {
            self.notify();
        }
    }

    pub fn set_fiq(&self, level: bool) {
        if self.fiq.swap(level, Ordering::AcqRel) != level && level {
            self.notify();
        }
    }

    /// Make the vCPU return to its machine loop and wake it from WFI/WFE (an event).
    pub fn notify(&self) {
        self.kick.store(true, Ordering::Release);
        let mut s = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
        *s = true;
        self.wake.notify_all();
    }

    /// SEV: set the event register and wake the vCPU from WFE. A running vCPU is not kicked:
    /// it sees the event at its next WFE.
    pub fn send_event(&self) {
        self.event.store(true, Ordering::Release);
        let mut s = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
        *s = true;
        self.wake.notify_all();
    }

    /// Consume an event sent by [`CpuInterrupts::send_event`]: whether there was one.
    pub fn take_event(&self) -> bool {
        self.event.swap(false, Ordering::AcqRel)
    }

    /// Sleep until [`CpuInterrupts::notify`], [`CpuInterrupts::send_event`] or `timeout`;
    /// whether one of those came (rather than the timeout). One that came since the last
    /// wait makes this return at once.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let mut s = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
        if !*s {
            s = match timeout {
                Some(t) => {
                    self.wake
                        .wait_timeout(s, t)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.wake.wait(s).unwrap_or_else(|e| e.into_inner()),
            };
        }
        std::mem::replace(&mut *s, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    struct Rec(AtomicU32);
    impl IrqSink for Rec {
        fn set_level(&self, line: u32, level: bool) {
            self.0.store(line << 1 | level as u32, Ordering::Relaxed);
        }
    }

    #[test]
    fn lines_forward_levels_and_inputs_kick() {
        let rec = Arc::new(Rec(AtomicU32::new(0)));
        let l = IrqLine::new(rec.clone(), 33);
        l.raise();
        assert_eq!(rec.0.load(Ordering::Relaxed), 67);
        IrqLine::disconnected().raise();

        let kick = Arc::new(AtomicBool::new(false));
        let c = CpuInterrupts::new(kick.clone());
        c.set_irq(true);
        assert!(c.irq() && kick.load(Ordering::Relaxed));
        // The pending wake makes the wait return immediately.
        c.wait(None);
        c.wait(Some(Duration::from_millis(1)));
    }

    #[test]
    fn an_event_wakes_a_waiter_without_kicking_and_is_consumed_once() {
        let kick = Arc::new(AtomicBool::new(false));
        let c = Arc::new(CpuInterrupts::new(kick.clone()));
        assert!(
            !c.wait(Some(Duration::from_millis(1))),
            "nothing came: a timeout"
        );
        let waiter = {
            let c = c.clone();
            std::thread::spawn(move || c.wait(Some(Duration::from_secs(10))))
        };
        std::thread::sleep(Duration::from_millis(5));
        c.send_event();
        assert!(waiter.join().unwrap(), "the event woke the waiter");
        assert!(
            !kick.load(Ordering::Relaxed),
            "a running vCPU is not kicked"
        );
        assert!(c.take_event());
        assert!(!c.take_event());
    }
}
