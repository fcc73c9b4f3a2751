//! One vCPU's host thread: run guest code, turn stops into exceptions, serve PSCI, sleep in
//! WFI, keep the generic timer's interrupt lines up to date.

use super::control::Firmware;
use super::psci::{self, Call};
use super::{Control, Outcome};
use armboard_cpu::mmu::SysMem;
use armboard_cpu::sys::{exception, timer, SysRegs};
use armboard_cpu::{Cpu, Mem, Stop};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How long a WFE waits for an event nobody signals (we do not model the event register
/// precisely; spinning callers re-check their condition).
const WFE_NAP: Duration = Duration::from_micros(50);

/// What the caller of [`Vcpu::handle`] does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Run on.
    Go,
    /// WFI or WFE: wait for an interrupt or event ([`Vcpu::wait`] on a host clock).
    Wait,
    /// PSCI CPU_SUSPEND: wait for an interrupt, as WFI does.
    Suspend,
    /// The CPU powered itself off.
    Off,
    /// The machine stops.
    Halt,
}

pub struct Vcpu {
    pub index: usize,
    pub cpu: Cpu,
    pub mem: SysMem,
    pub ctl: Arc<Control>,
}

impl Vcpu {
    /// The thread body: wait to be powered on, run, repeat until the machine stops.
    pub fn main(mut self) {
        loop {
            let Some((entry, context)) = self.ctl.wait_power_on(self.index) else {
                return;
            };
            self.reset(entry, context);
            if !self.run() {
                return;
            }
        }
    }

    pub(super) fn reset(&mut self, entry: u64, context: u64) {
        let st = &mut self.cpu.state;
        // The retired count goes on: an icount clock derives time from it.
        let retired = st.retired;
        *st = armboard_cpu::CpuState::new();
        st.retired = retired;
        st.sys = SysRegs::reset_el1(self.cpu.model, self.ctl.mpidr(self.index));
        st.sys.cntfrq = self.ctl.freq;
        st.pc = entry;
        st.x[0] = context;
        if let Some(s) = self.mem.system() {
            s.sync(&self.cpu.state);
        }
    }

    /// Run until CPU_OFF (true) or the machine stops (false).
    fn run(&mut self) -> bool {
        loop {
            if self.ctl.stopping() {
                return false;
            }
            let stop = self.cpu.run(&mut self.mem);
            match self.handle(stop) {
                Flow::Go => {}
                Flow::Wait | Flow::Suspend => self.wait(),
                Flow::Off => return true,
                Flow::Halt => return false,
            }
            self.update_timer();
        }
    }

    /// Act on a stop of [`Cpu::run`]; the caller updates the timer afterwards.
    pub(super) fn handle(&mut self, stop: Stop) -> Flow {
        log::trace!(
            "vcpu{}: {stop:?} at {:#x} el{}",
            self.index,
            self.cpu.state.pc,
            self.cpu.state.sys.el
        );
        match stop {
            Stop::Interrupted => {
                self.cpu.interrupt().store(false, Ordering::SeqCst);
            }
            Stop::System | Stop::Budget => {}
            Stop::Hvc(_) | Stop::Smc(_) if self.ctl.firmware == Firmware::Psci => {
                return self.psci();
            }
            Stop::Hvc(_) | Stop::Smc(_) => {
                // No EL2/EL3: the instruction is undefined; report it at its own pc.
                self.cpu.state.pc = self.cpu.state.pc.wrapping_sub(4);
                if let Some((ex, ret)) = exception::from_stop(&self.cpu.state, Stop::Undefined(0)) {
                    exception::enter(&mut self.cpu.state, &mut self.mem, ex, ret);
                }
            }
            Stop::Wait => return Flow::Wait,
            Stop::Irq => self.enter(exception::Exception::Irq),
            Stop::Fiq => self.enter(exception::Exception::Fiq),
            other => match exception::from_stop(&self.cpu.state, other) {
                Some((ex, ret)) => exception::enter(&mut self.cpu.state, &mut self.mem, ex, ret),
                None => {
                    self.ctl.finish(Outcome::Error(format!(
                        "vCPU {}: unhandled stop {other:?} at pc {:#x}",
                        self.index, self.cpu.state.pc
                    )));
                    return Flow::Halt;
                }
            },
        }
        if self.ctl.stopping() {
            Flow::Halt
        } else {
            Flow::Go
        }
    }

    fn enter(&mut self, ex: exception::Exception) {
        let ret = self.cpu.state.pc;
        exception::enter(&mut self.cpu.state, &mut self.mem, ex, ret);
    }

    fn counter(&mut self) -> u64 {
        let retired = self.cpu.state.retired;
        self.mem.system().map_or(0, |s| s.counter(retired))
    }

    /// Whether the instruction before pc (a stop's [`Stop::Wait`]) is a WFI.
    pub(super) fn waiting_in_wfi(&mut self) -> bool {
        let pc = self.cpu.state.pc.wrapping_sub(4);
        self.mem.fetch(pc).is_ok_and(|w| w == 0xd503_207f)
    }

    /// Drive the timer PPIs from the timer registers and publish the next deadline.
    pub(super) fn update_timer(&mut self) {
        let now = self.counter();
        let lines = timer::timer_lines(&self.cpu.state.sys, now);
        let cpu = (self.index as u32) << 16;
        let t = &self.ctl.timer;
        t.sink.set_level(cpu | t.virt, lines.virt);
        t.sink.set_level(cpu | t.phys, lines.phys);
        self.ctl.set_deadline(self.index, lines.next_deadline);
    }

    /// WFI sleeps until an interrupt is pending (masked or not) or the timer fires; WFE naps.
    fn wait(&mut self) {
        let wfi = self.waiting_in_wfi();
        let inputs = self.ctl.inputs[self.index].clone();
        self.update_timer();
        if inputs.irq() || inputs.fiq() || self.ctl.stopping() {
            return;
        }
        let now = self.counter();
        let timeout = if wfi {
            self.ctl
                .deadline(self.index)
                .map(|d| self.ctl.ticks_to_duration(d.saturating_sub(now)))
        } else {
            Some(WFE_NAP)
        };
        let t0 = std::time::Instant::now();
        inputs.wait(timeout.map(|t| t.min(Duration::from_secs(1))));
        log::debug!(
            "vcpu{}: {} slept {:?} (timeout {timeout:?}), irq {}",
            self.index,
            if wfi { "wfi" } else { "wfe" },
            t0.elapsed(),
            inputs.irq()
        );
        self.cpu.interrupt().store(false, Ordering::SeqCst);
    }

    /// Serve a PSCI call.
    fn psci(&mut self) -> Flow {
        let x = &self.cpu.state.x;
        let r = match psci::decode([x[0], x[1], x[2], x[3]]) {
            Call::Return(v) => v,
            Call::CpuOn {
                mpidr,
                entry,
                context,
            } => self.ctl.cpu_on(mpidr, entry, context),
            Call::CpuOff => {
                self.ctl.cpu_off(self.index);
                return Flow::Off;
            }
            Call::AffinityInfo { mpidr } => self.ctl.affinity_info(mpidr),
            Call::Suspend => {
                self.cpu.state.x[0] = psci::SUCCESS as u64;
                return Flow::Suspend;
            }
            Call::SystemOff => {
                self.ctl.finish(Outcome::PowerOff);
                psci::SUCCESS
            }
            Call::SystemReset => {
                self.ctl.finish(Outcome::Reset);
                psci::SUCCESS
            }
        };
        self.cpu.state.x[0] = r as u64;
        Flow::Go
    }
}
