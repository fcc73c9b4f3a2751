//! What every board shares once its devices are wired: one host thread per vCPU running
//! guest code, power states (PSCI or a spin table), the generic timer's interrupts and
//! deadlines, WFI sleeps, the console, and how a run ends. A board (`virt`, `raspi`) builds
//! its RAM, interrupt controller and devices, then hands them to [`run`].

pub mod console;
mod control;
pub mod icount;
pub mod psci;
mod vcpu;

pub use control::{Control, ControlConfig, Firmware, Outcome, Power, TimerWiring};

use armboard_bus::AddressSpace;
use armboard_cpu::icache::IcBroadcast;
use armboard_cpu::mmu::{Clock, SysMem, TlbBroadcast};
use armboard_cpu::model::CpuModel;
use armboard_cpu::{Cpu, EngineKind};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vcpu::Vcpu;

/// Runs before a block is compiled when a whole machine runs. Much higher than user mode's:
/// a kernel boot runs most of its code a few hundred times at most, where compiling costs
/// more than it saves (boot to init: 54 s at 200, 17 s at 5000, one run on a busy host).
pub const SYSTEM_HOT_THRESHOLD: u32 = 5000;
/// The same when compilation runs on a worker thread with a core of its own: compiling
/// costs the vCPU nothing then (measured on a virt boot: 1000 and 300 both about 12% faster
/// than 5000 inline; 1000 compiles half as many blocks as 300).
pub const SYSTEM_HOT_THRESHOLD_WORKER: u32 = 1000;

/// How often the timer thread looks for vCPUs whose timer deadline has passed and polls
/// device timers.
const TIMER_POLL: Duration = Duration::from_micros(500);

/// How guest time advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockKind {
    /// The generic timer follows the host's monotonic clock.
    #[default]
    Host,
    /// Guest time advances 2^shift ns per retired instruction and everything the guest sees
    /// is a function of its own execution: the same kernel and inputs give the same run
    /// (see [`icount`]). Boards fix what would come from the host: RNG seeds
    /// and streams, the RTC's start.
    Icount { shift: u32 },
}

/// A console input sink: offered bytes, it returns how many it took (a UART's free FIFO).
pub type InputSink = Box<dyn FnMut(&[u8]) -> usize + Send>;

/// A device timer the timer thread polls (a watchdog, a system timer).
pub type Poller = Box<dyn FnMut() + Send>;

/// How to run a wired board.
pub struct RunConfig {
    pub model: CpuModel,
    pub engine: EngineKind,
    pub timeout: Option<Duration>,
    /// The guest's counter, in ticks of [`Control`]'s frequency.
    pub clock: GuestClock,
    pub pollers: Vec<Poller>,
    /// Where typed bytes go.
    pub input: InputSink,
}

/// How guest time advances.
#[derive(Clone)]
pub enum GuestClock {
    /// With the host's clock: one host thread per vCPU, WFI sleeps.
    Host(Clock),
    /// With retired instructions ([`icount`]): all vCPUs on one thread, deterministic.
    Icount(Arc<icount::Icount>),
}

impl GuestClock {
    /// The counter the vCPUs read.
    pub fn counter(&self) -> Clock {
        match self {
            GuestClock::Host(c) => c.clone(),
            GuestClock::Icount(i) => i.clock(),
        }
    }
}

/// A counter at `freq` Hz that follows the host's monotonic clock from now.
pub fn host_clock(freq: u64) -> GuestClock {
    let start = Instant::now();
    GuestClock::Host(Arc::new(move |_| {
        (start.elapsed().as_nanos() * freq as u128 / 1_000_000_000) as u64
    }))
}

/// Start the vCPUs and run until the guest powers off, resets, panics, the user quits or the
/// time runs out.
pub fn run(
    ctl: Arc<Control>,
    space: Arc<AddressSpace>,
    console: &console::Console,
    cfg: RunConfig,
) -> Result<Outcome, String> {
    let RunConfig {
        model,
        engine,
        timeout,
        clock,
        mut pollers,
        mut input,
    } = cfg;
    let broadcast = Arc::new(TlbBroadcast::new());
    let icache = Arc::new(IcBroadcast::new());
    let counter = clock.counter();
    let host_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let icount = matches!(clock, GuestClock::Icount(_));
    let make_cpu = move |i: usize, ctl: &Arc<Control>, icache: &Arc<IcBroadcast>| {
        let mut cpu = Cpu::with_engine(model, engine);
        // With a host core to spare for each vCPU's compile worker, compile off the vCPU
        // thread and sooner.
        let worker = Cpu::worker_from_env().unwrap_or(ctl.cpus() < host_cores && !icount);
        if engine == EngineKind::Tiered {
            cpu.set_compile_worker(worker);
            if std::env::var_os("ARMBOARD_HOT_THRESHOLD").is_none() {
                cpu.hot_threshold = if worker {
                    SYSTEM_HOT_THRESHOLD_WORKER
                } else {
                    SYSTEM_HOT_THRESHOLD
                };
            }
        }
        cpu.set_interrupt(ctl.kicks[i].clone());
        cpu.set_ic_broadcast(icache.clone(), i);
        cpu.inputs = Some(ctl.inputs[i].clone());
        cpu
    };
    let mut threads = Vec::new();
    // On a host clock, one thread per vCPU; under icount one thread runs them all.
    let mut per_cpu_threads = ctl.cpus();
    if let GuestClock::Icount(ic) = &clock {
        per_cpu_threads = 0;
        // Every vCPU on one thread, in turn.
        let (ctl, ic, icache) = (ctl.clone(), ic.clone(), icache.clone());
        let mems: Vec<SysMem> = (0..ctl.cpus())
            .map(|i| SysMem::new(space.clone(), i, counter.clone(), broadcast.clone()))
            .collect();
        let spawned = std::thread::Builder::new()
            .name("vcpus".into())
            .spawn(move || {
                let vcpus = mems
                    .into_iter()
                    .enumerate()
                    .map(|(i, mem)| Vcpu::new(i, make_cpu(i, &ctl, &icache), mem, ctl.clone()))
                    .collect();
                icount::run(vcpus, ctl, ic)
            });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => return Err(format!("cannot start the vCPU thread: {e}")),
        }
    }
    for i in 0..per_cpu_threads {
        let mem = SysMem::new(space.clone(), i, counter.clone(), broadcast.clone());
        let (vctl, icache) = (ctl.clone(), icache.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("vcpu{i}"))
            // The code cache is per thread, so the CPU is made on its own thread.
            .spawn(move || Vcpu::new(i, make_cpu(i, &vctl, &icache), mem, vctl).main());
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                ctl.finish(Outcome::Error(String::new()));
                for t in threads {
                    let _ = t.join();
                }
                return Err(format!("cannot start a vCPU thread: {e}"));
            }
        }
    }

    // Timer deadlines of running vCPUs: kick the vCPU when its deadline passes (on a host
    // clock; under icount the vCPU thread stops at its deadlines itself). Device timers are
    // polled here too.
    {
        let ctl = ctl.clone();
        let host = match &clock {
            GuestClock::Host(c) => Some(c.clone()),
            GuestClock::Icount(_) => None,
        };
        std::thread::Builder::new()
            .name("timers".into())
            .spawn(move || {
                while !ctl.stopping() {
                    let now = host.as_ref().map_or(0, |c| c(0));
                    for i in 0..ctl.cpus() {
                        if host.is_some() && ctl.deadline(i).is_some_and(|d| d <= now) {
                            ctl.kicks[i].store(true, Ordering::Release);
                            ctl.inputs[i].notify();
                        }
                    }
                    for p in pollers.iter_mut() {
                        p();
                    }
                    std::thread::sleep(TIMER_POLL);
                }
            })
            .map_err(|e| format!("cannot start the timer thread: {e}"))?;
    }

    let raw = console::RawMode::enter();
    console::spawn_input(raw.is_raw(), console.clone(), move |mut b| {
        // The UART takes what fits in its FIFO (nothing while the guest has it off): offer
        // the rest again until it is taken, as a typist would wait.
        while !b.is_empty() {
            let n = input(b).min(b.len());
            b = &b[n..];
            if n == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });

    let outcome = wait_outcome(&ctl, console, timeout);
    ctl.finish(outcome.clone());
    for t in threads {
        let _ = t.join();
    }
    drop(raw);
    console.close();
    if std::env::var_os("ARMBOARD_JIT_STATS").is_some() {
        eprintln!("armboard: {}", memory_stats(&space));
    }
    Ok(outcome)
}

/// The host memory a run used: peak RSS, guest RAM the guest touched, and the rest (the
/// emulator's own overhead).
fn memory_stats(space: &AddressSpace) -> String {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let touched: Option<u64> = space.rams().iter().map(|r| r.resident()).sum();
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        });
    match (peak, touched) {
        (Some(kib), Some(t)) => format!(
            "peak RSS {:.0} MiB, guest RAM touched {:.0} MiB, overhead {:.0} MiB",
            mib(kib * 1024),
            mib(t),
            mib((kib * 1024).saturating_sub(t))
        ),
        _ => "memory use unknown on this host".into(),
    }
}

/// `n` bytes from the host's random source.
pub fn host_random(n: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut seed = vec![0u8; n];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut seed))?;
    Ok(seed)
}

/// Wait for a vCPU to end the run, a panic report to finish, or the user to quit.
fn wait_outcome(ctl: &Control, console: &console::Console, timeout: Option<Duration>) -> Outcome {
    let mut panic_seen: Option<Instant> = None;
    let start = Instant::now();
    loop {
        if timeout.is_some_and(|t| start.elapsed() > t) {
            return Outcome::TimedOut;
        }
        {
            let g = ctl.outcome.lock().unwrap_or_else(|e| e.into_inner());
            let (g, _) = ctl
                .outcome_cv
                .wait_timeout(g, Duration::from_millis(20))
                .unwrap_or_else(|e| e.into_inner());
            if let Some(o) = g.clone() {
                // A kernel that panics with panic=N resets the board afterwards: the panic
                // is what happened.
                if let Some(p) = console.with_watch(|w| w.panic.clone()) {
                    return Outcome::Panic(p);
                }
                return o;
            }
        }
        let (panic, done, quit, halted) =
            console.with_watch(|w| (w.panic.clone(), w.panic_done, w.quit, w.halted));
        if quit {
            return Outcome::Quit;
        }
        if halted && panic.is_none() {
            return Outcome::Halted;
        }
        if let Some(p) = panic {
            let since = *panic_seen.get_or_insert_with(Instant::now);
            if done || since.elapsed() > Duration::from_secs(2) {
                return Outcome::Panic(p);
            }
        }
    }
}
