//! Running the `virt` board: wiring CPUs, memory and devices, the vCPU threads, and how a run
//! ends (power-off, reset, panic, the user quitting).

use super::boot::{self, BootOptions};
use super::console;
use super::dt::VirtConfig as DtConfig;
use super::layout;
use super::psci;
use super::vcpu::{Power, Vcpu};
use armboard_bus::{AddressSpace, Bus, CpuInterrupts, IrqLine, IrqSink, Ram, Shared};
use armboard_cpu::mmu::{Clock, SysMem, TlbBroadcast};
use armboard_cpu::model::{self, CpuModel};
use armboard_cpu::{Cpu, EngineKind};
use armboard_peripherals as dev;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A disk for a virtio-blk transport.
#[derive(Debug, Clone)]
pub struct Drive {
    pub path: PathBuf,
    pub readonly: bool,
}

/// How guest time advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockKind {
    /// The generic timer follows the host's monotonic clock.
    #[default]
    Host,
}

/// A run of the board, as the command line describes it.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cpus: usize,
    pub model: CpuModel,
    pub memory: u64,
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub append: Option<String>,
    pub dtb: Option<PathBuf>,
    pub drives: Vec<Drive>,
    pub engine: EngineKind,
    pub clock: ClockKind,
    /// End the run (as [`Outcome::TimedOut`]) if the guest has not finished by then.
    pub timeout: Option<Duration>,
}

impl Machine {
    pub fn new(kernel: PathBuf) -> Self {
        Self {
            cpus: 1,
            model: model::CORTEX_A72,
            memory: 1 << 30,
            kernel,
            initrd: None,
            append: None,
            dtb: None,
            drives: Vec::new(),
            engine: EngineKind::default(),
            clock: ClockKind::Host,
            timeout: None,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// PSCI SYSTEM_OFF.
    PowerOff,
    /// PSCI SYSTEM_RESET.
    Reset,
    /// The kernel panicked; the panic report.
    Panic(String),
    /// The user pressed Ctrl-A x.
    Quit,
    /// The guest did not finish within [`Machine::timeout`].
    TimedOut,
    /// Something the emulator could not continue from.
    Error(String),
}

#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Boot(#[from] boot::BootError),
    #[error("drive {path}: {msg}")]
    Drive { path: PathBuf, msg: String },
    #[error("{0}")]
    Bus(#[from] armboard_bus::BusError),
}

/// State the vCPU threads and the main thread share.
pub struct Control {
    pub(super) inputs: Vec<Arc<CpuInterrupts>>,
    kicks: Vec<Arc<AtomicBool>>,
    pub(super) irq: Arc<dyn IrqSink>,
    power: Mutex<Vec<Power>>,
    power_cv: Condvar,
    stop: AtomicBool,
    outcome: Mutex<Option<Outcome>>,
    outcome_cv: Condvar,
    /// Next timer deadline per vCPU in counter ticks (u64::MAX: none).
    deadlines: Vec<AtomicU64>,
    freq: u64,
}

impl Control {
    /// MPIDR of vCPU `i`, as QEMU's virt numbers them (clusters of 8 in Aff1).
    pub fn mpidr(&self, i: usize) -> u64 {
        mpidr(i)
    }

    fn index_of(&self, mpidr_val: u64) -> Option<usize> {
        layout::cpu_index(mpidr_val & 0xff_00ff_ffff)
            .map(|i| i as usize)
            .filter(|&i| i < self.inputs.len())
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

    /// Block until vCPU `i` is started; None when the machine stops.
    pub(super) fn wait_power_on(&self, i: usize) -> Option<(u64, u64)> {
        let mut p = self.power.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.stopping() {
                return None;
            }
            if let Power::Starting { entry, context } = p[i] {
                p[i] = Power::On;
                return Some((entry, context));
            }
            p = self.power_cv.wait(p).unwrap_or_else(|e| e.into_inner());
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
                Power::Off => 1,
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
        Duration::from_nanos((ticks as u128 * 1_000_000_000 / self.freq as u128) as u64)
    }
}

/// MPIDR_EL1 of vCPU `i`: bit 31 (RES1) and the board's affinity numbering.
pub fn mpidr(i: usize) -> u64 {
    0x8000_0000 | layout::mpidr_affinity(i as u32)
}

/// Build the board, boot the kernel and run until the guest powers off, resets, panics or
/// the user quits.
pub fn run(m: &Machine) -> Result<Outcome, MachineError> {
    if m.cpus == 0 || m.cpus > layout::GICV2_MAX_CPUS as usize {
        return Err(MachineError::Config(format!(
            "--smp {}: the virt board with GICv2 takes 1 to {} CPUs",
            m.cpus,
            layout::GICV2_MAX_CPUS
        )));
    }
    if m.memory < (32 << 20) || m.memory > layout::RAM_MAX {
        return Err(MachineError::Config(format!(
            "--memory {} MiB: must be between 32 MiB and {} GiB",
            m.memory >> 20,
            layout::RAM_MAX >> 30
        )));
    }
    // Drives take the first virtio-mmio transports, the RNG and the console the next two.
    let rng_slot = m.drives.len();
    let console_slot = rng_slot + 1;
    if console_slot >= layout::VIRTIO_MMIO_COUNT {
        return Err(MachineError::Config("too many drives".into()));
    }
    let mut board = DtConfig::new(m.cpus as u32, m.memory);
    board.cpu_compatible = format!("arm,{}", m.model.name);
    board.rng_seed = Some(host_random(32)?);
    let images = boot::prepare(&BootOptions {
        kernel: m.kernel.clone(),
        initrd: m.initrd.clone(),
        append: m.append.clone(),
        dtb: m.dtb.clone(),
        board,
    })?;

    let ram = Arc::new(Ram::new(layout::RAM_BASE, m.memory)?);
    images.load_into(&ram)?;

    // Interrupt wiring: one kick flag and input pair per vCPU, driven by the GIC.
    let kicks: Vec<Arc<AtomicBool>> = (0..m.cpus)
        .map(|_| Arc::new(AtomicBool::new(false)))
        .collect();
    let inputs: Vec<Arc<CpuInterrupts>> = kicks
        .iter()
        .map(|k| Arc::new(CpuInterrupts::new(k.clone())))
        .collect();
    let gic = dev::gic::Gic::new(m.cpus, GIC_SPIS, inputs.clone());
    let spi = |n: u32| IrqLine::new(gic.clone(), layout::spi_intid(n));

    let console = console::Console::new(Box::new(std::io::stdout()));
    let mut bus = Bus::new();
    bus.insert(
        layout::GIC_DIST_BASE,
        layout::GIC_DIST_SIZE,
        Box::new(gic.distributor()),
    )?;
    bus.insert(
        layout::GIC_CPU_BASE,
        layout::GIC_CPU_SIZE,
        Box::new(gic.cpu_interface()),
    )?;
    let uart = Shared::new(dev::pl011::Pl011::new(
        Box::new(console.clone()),
        spi(layout::UART_SPI),
    ));
    bus.insert(layout::UART_BASE, layout::UART_SIZE, Box::new(uart.clone()))?;
    bus.insert(
        layout::RTC_BASE,
        layout::RTC_SIZE,
        Box::new(dev::pl031::Pl031::new(spi(layout::RTC_SPI))),
    )?;
    let slot_base = layout::virtio_mmio_base;
    let slot_irq = |n: usize| spi(layout::virtio_mmio_spi(n));
    for (n, d) in m.drives.iter().enumerate() {
        let blk =
            dev::virtio::VirtioBlk::open(&d.path, d.readonly).map_err(|e| MachineError::Drive {
                path: d.path.clone(),
                msg: e.to_string(),
            })?;
        let t = dev::virtio::VirtioMmio::new(blk, ram.clone(), slot_irq(n));
        bus.insert(slot_base(n), layout::VIRTIO_MMIO_SIZE, Box::new(t))?;
    }
    let rng = dev::virtio::VirtioRng::new()
        .map_err(|e| MachineError::Config(format!("the host's random source: {e}")))?;
    bus.insert(
        slot_base(rng_slot),
        layout::VIRTIO_MMIO_SIZE,
        Box::new(dev::virtio::VirtioMmio::new(
            rng,
            ram.clone(),
            slot_irq(rng_slot),
        )),
    )?;
    // A virtio console (hvc0) writing to the same host console as the UART.
    bus.insert(
        slot_base(console_slot),
        layout::VIRTIO_MMIO_SIZE,
        Box::new(dev::virtio::VirtioMmio::new(
            dev::virtio::VirtioConsole::new(Box::new(console.clone())),
            ram.clone(),
            slot_irq(console_slot),
        )),
    )?;
    // The other transports exist, empty (device ID 0), as on QEMU's virt.
    for n in console_slot + 1..layout::VIRTIO_MMIO_COUNT {
        bus.insert(
            slot_base(n),
            layout::VIRTIO_MMIO_SIZE,
            Box::new(dev::virtio::VirtioMmio::new(
                dev::virtio::NoDevice,
                ram.clone(),
                IrqLine::disconnected(),
            )),
        )?;
    }

    let space = Arc::new(AddressSpace::new(vec![ram], bus)?);
    let start = Instant::now();
    let freq = model::CNTFRQ;
    let clock: Clock =
        Arc::new(move || (start.elapsed().as_nanos() * freq as u128 / 1_000_000_000) as u64);
    let ctl = Arc::new(Control {
        inputs: inputs.clone(),
        kicks: kicks.clone(),
        irq: gic.clone(),
        power: Mutex::new(
            (0..m.cpus)
                .map(|i| {
                    if i == 0 {
                        Power::Starting {
                            entry: images.entry(),
                            context: images.dtb_addr(),
                        }
                    } else {
                        Power::Off
                    }
                })
                .collect(),
        ),
        power_cv: Condvar::new(),
        stop: AtomicBool::new(false),
        outcome: Mutex::new(None),
        outcome_cv: Condvar::new(),
        deadlines: (0..m.cpus).map(|_| AtomicU64::new(u64::MAX)).collect(),
        freq,
    });

    let broadcast = Arc::new(TlbBroadcast::new());
    let mut threads = Vec::new();
    for i in 0..m.cpus {
        let mem = SysMem::new(space.clone(), i, clock.clone(), broadcast.clone());
        let (kick, input, ctl) = (kicks[i].clone(), inputs[i].clone(), ctl.clone());
        let (model, engine) = (m.model, m.engine);
        threads.push(
            std::thread::Builder::new()
                .name(format!("vcpu{i}"))
                // The code cache is per thread, so the CPU is made on its own thread.
                .spawn(move || {
                    let mut cpu = Cpu::with_engine(model, engine);
                    if engine == EngineKind::Tiered
                        && std::env::var_os("ARMBOARD_HOT_THRESHOLD").is_none()
                    {
                        cpu.hot_threshold = SYSTEM_HOT_THRESHOLD;
                    }
                    cpu.interrupt = kick;
                    cpu.inputs = Some(input);
                    Vcpu {
                        index: i,
                        cpu,
                        mem,
                        ctl,
                    }
                    .main()
                })
                .map_err(|e| MachineError::Config(format!("cannot start a vCPU thread: {e}")))?,
        );
    }

    // Timer deadlines of running vCPUs: kick the vCPU when its deadline passes.
    {
        let ctl = ctl.clone();
        let clock = clock.clone();
        std::thread::Builder::new()
            .name("timers".into())
            .spawn(move || {
                while !ctl.stopping() {
                    let now = clock();
                    for i in 0..ctl.inputs.len() {
                        if ctl.deadline(i).is_some_and(|d| d <= now) {
                            ctl.kicks[i].store(true, Ordering::Release);
                            ctl.inputs[i].notify();
                        }
                    }
                    std::thread::sleep(TIMER_POLL);
                }
            })
            .ok();
    }

    let raw = console::RawMode::enter();
    {
        let uart = uart.clone();
        console::spawn_input(raw.is_raw(), console.clone(), move |mut b| {
            // The UART takes what fits in its FIFO (nothing while the guest has it off):
            // offer the rest again until it is taken, as a typist would wait.
            while !b.is_empty() {
                let n = uart.lock().push_input(b);
                b = &b[n..];
                if n == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
    }

    let outcome = wait_outcome(&ctl, &console, m.timeout);
    ctl.finish(outcome.clone());
    for t in threads {
        let _ = t.join();
    }
    drop(raw);
    console.close();
    Ok(outcome)
}

/// `n` bytes from the host's random source.
fn host_random(n: usize) -> Result<Vec<u8>, MachineError> {
    use std::io::Read;
    let mut seed = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| MachineError::Config(format!("the host's random source: {e}")))?;
    Ok(seed)
}

/// Runs before a block is compiled when a whole machine runs. Much higher than user mode's:
/// a kernel boot runs most of its code a few hundred times at most, where compiling costs
/// more than it saves (boot to init: 54 s at 200, 17 s at 5000, one run on a busy host).
const SYSTEM_HOT_THRESHOLD: u32 = 5000;

/// SPIs the GIC implements (QEMU's virt has 256 interrupt lines in all).
const GIC_SPIS: usize = 224;

/// How often the timer thread looks for vCPUs whose timer deadline has passed.
const TIMER_POLL: Duration = Duration::from_micros(500);

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
        let (panic, done, quit) = console.with_watch(|w| (w.panic.clone(), w.panic_done, w.quit));
        if quit {
            return Outcome::Quit;
        }
        if let Some(p) = panic {
            let since = *panic_seen.get_or_insert_with(Instant::now);
            if done || since.elapsed() > Duration::from_secs(2) {
                return Outcome::Panic(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpidrs_follow_qemu_virt() {
        assert_eq!(mpidr(0), 0x8000_0000);
        assert_eq!(mpidr(3), 0x8000_0003);
    }
}
