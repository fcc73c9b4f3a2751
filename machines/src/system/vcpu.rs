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

/// The longest a WFE sleeps: events the machine does not see (none it knows of) are then
/// late by at most this.
const WFE_MAX: Duration = Duration::from_millis(1);
/// How often a WFE with the exclusive monitor armed looks whether another CPU's store
/// cleared it (changed the reserved location): the event that ends Linux's
/// `smp_cond_load_*` waits.
const WFE_POLL: Duration = Duration::from_micros(20);

/// The hint that stopped a block ([`Stop::Wait`]), read from the instruction before pc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hint {
    Wfi,
    Wfe,
    Sev,
    Sevl,
}

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
    /// Event-stream events up to the last WFE ([`Vcpu::stream_events`]): one more since is
    /// an event in the event register.
    stream_mark: u64,
}

impl Vcpu {
    pub fn new(index: usize, cpu: Cpu, mem: SysMem, ctl: Arc<Control>) -> Self {
        Vcpu {
            index,
            cpu,
            mem,
            ctl,
            stream_mark: 0,
        }
    }

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
                Flow::Wait => self.wait(false),
                Flow::Suspend => self.wait(true),
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
            Stop::Wait => match self.hint() {
                Hint::Sev => self.ctl.send_event(),
                Hint::Sevl => self.cpu.state.sys.event = true,
                // The event register was set: WFE clears it and goes on.
                Hint::Wfe if self.take_event() => {}
                Hint::Wfi | Hint::Wfe => return Flow::Wait,
            },
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
        self.hint() == Hint::Wfi
    }

    /// The hint instruction before pc (a stop's [`Stop::Wait`]); one that cannot be read
    /// counts as a WFE, whose sleep is short.
    fn hint(&mut self) -> Hint {
        let pc = self.cpu.state.pc.wrapping_sub(4);
        match self.mem.fetch(pc) {
            Ok(0xd503_207f) => Hint::Wfi,
            Ok(0xd503_209f) => Hint::Sev,
            Ok(0xd503_20bf) => Hint::Sevl,
            _ => Hint::Wfe,
        }
    }

    /// Clear the event register: whether it was set, by this CPU (SEVL, an exception
    /// return), by any CPU's SEV, by the generic timer's event stream, or by the clearing of
    /// the exclusive monitor (which it then is).
    fn take_event(&mut self) -> bool {
        let local = std::mem::take(&mut self.cpu.state.sys.event);
        let sent = self.ctl.inputs[self.index].take_event();
        let events = self.stream_events();
        let stream = events.is_some_and(|e| e != self.stream_mark);
        self.stream_mark = events.unwrap_or(0);
        let cleared = self.monitor_cleared();
        if cleared {
            self.cpu.state.monitor.valid = false;
        }
        local | sent | stream | cleared
    }

    /// The virtual count (what the event stream watches).
    fn virtual_count(&mut self) -> u64 {
        self.counter().wrapping_sub(self.cpu.state.sys.cntvoff)
    }

    /// How many events the generic timer's event stream (CNTKCTL_EL1.EVNTEN) has made by now:
    /// one at each 0-to-1 (EVNTDIR 0) or 1-to-0 (EVNTDIR 1) transition of virtual count bit
    /// EVNTI. None when the stream is off.
    fn stream_events(&mut self) -> Option<u64> {
        let v = self.virtual_count();
        stream_events(self.cpu.state.sys.cntkctl_el1, v).map(|(n, _)| n)
    }

    /// Counter ticks until the event stream's next event, if it is on.
    fn ticks_to_stream_event(&mut self) -> Option<u64> {
        let v = self.virtual_count();
        stream_events(self.cpu.state.sys.cntkctl_el1, v).map(|(_, t)| t)
    }

    /// Whether the exclusive monitor is armed and another CPU's store has cleared it: the
    /// reserved location no longer holds what the load-exclusive read (the software monitor
    /// a store-exclusive checks). A location that is not RAM counts as cleared.
    fn monitor_cleared(&mut self) -> bool {
        let m = self.cpu.state.monitor;
        if !m.valid {
            return false;
        }
        // Compare and swap with the value itself: RAM only, and no access a device sees.
        let same = if m.size == 16 {
            self.mem.cmpxchg128(m.addr, m.value, m.value)
        } else {
            self.mem
                .cmpxchg(m.addr, m.size, m.value as u64, m.value as u64)
        };
        !same.unwrap_or(false)
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

    /// WFI sleeps until an interrupt is pending (masked or not) or the timer fires; WFE also
    /// until an event: another CPU's SEV, the event stream, the clearing of the exclusive
    /// monitor; at most [`WFE_MAX`]. A PSCI suspend (`suspend`) waits as WFI does.
    fn wait(&mut self, suspend: bool) {
        let wfi = suspend || self.waiting_in_wfi();
        let inputs = self.ctl.inputs[self.index].clone();
        self.update_timer();
        if inputs.irq() || inputs.fiq() || self.ctl.stopping() {
            return;
        }
        let now = self.counter();
        let deadline = self
            .ctl
            .deadline(self.index)
            .map(|d| self.ctl.ticks_to_duration(d.saturating_sub(now)));
        let timeout = if wfi {
            deadline
        } else {
            let stream = self
                .ticks_to_stream_event()
                .map(|t| self.ctl.ticks_to_duration(t));
            Some(
                [deadline, stream]
                    .into_iter()
                    .flatten()
                    .fold(WFE_MAX, Duration::min),
            )
        };
        let t0 = std::time::Instant::now();
        let timeout = timeout.map(|t| t.min(Duration::from_secs(1)));
        if !wfi && self.cpu.state.monitor.valid {
            // Nothing tells this CPU of another's store: look now and then.
            let limit = timeout.unwrap_or(WFE_MAX);
            loop {
                let left = limit.saturating_sub(t0.elapsed());
                if left.is_zero() || inputs.wait(Some(left.min(WFE_POLL))) || self.monitor_cleared()
                {
                    break;
                }
            }
        } else {
            inputs.wait(timeout);
        }
        if !wfi {
            // The event that ended the wait is consumed.
            self.take_event();
        }
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

/// The generic timer's event stream as CNTKCTL_EL1 sets it (EVNTEN, EVNTDIR, EVNTI) at
/// virtual count `v`: how many events it has made (one at each 0-to-1, or with EVNTDIR
/// 1-to-0, transition of count bit EVNTI) and the ticks until its next one. None when off.
fn stream_events(cntkctl: u64, v: u64) -> Option<(u64, u64)> {
    if cntkctl & timer::cntkctl::EVNTEN == 0 {
        return None;
    }
    let bit = ((cntkctl >> 4) & 0xf) as u32;
    // 0-to-1 transitions of bit n happen where count + 2^n carries into bit n + 1; 1-to-0
    // ones where the count itself does.
    let offset = if cntkctl & timer::cntkctl::EVNTDIR == 0 {
        1 << bit
    } else {
        0
    };
    let shifted = v.wrapping_add(offset);
    let next = ((shifted >> (bit + 1)) + 1) << (bit + 1);
    Some((shifted >> (bit + 1), next.wrapping_sub(shifted)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use armboard_cpu::sys::timer::cntkctl::{EVNTDIR, EVNTEN};

    #[test]
    fn the_event_stream_counts_transitions_of_the_chosen_count_bit() {
        assert_eq!(stream_events(3 << 4, 100), None, "off without EVNTEN");
        // Bit 3 goes 0 to 1 at 8, 24, 40...
        let up = EVNTEN | (3 << 4);
        let seen = [0, 7, 8, 23, 24, 40].map(|v| stream_events(up, v).unwrap());
        assert_eq!(seen, [(0, 8), (0, 1), (1, 16), (1, 1), (2, 16), (3, 16)]);
        // ... and 1 to 0 at 16, 32...
        let down = up | EVNTDIR;
        let seen = [0, 15, 16, 31, 32].map(|v| stream_events(down, v).unwrap());
        assert_eq!(seen, [(0, 16), (0, 1), (1, 16), (1, 1), (2, 16)]);
    }
}
