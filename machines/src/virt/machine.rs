//! Running the `virt` board: wiring CPUs, memory and devices, the vCPU threads, and how a run
//! ends (power-off, reset, panic, the user quitting).

use super::boot::{self, BootOptions};
use super::dt::VirtConfig as DtConfig;
use super::layout;
use crate::system::{
    self, console, ClockKind, Control, ControlConfig, Firmware, Outcome, Power, RunConfig,
    TimerWiring,
};
use armboard_bus::{AddressSpace, Bus, CpuInterrupts, IrqLine, Ram, Shared};
use armboard_cpu::model::{self, CpuModel};
use armboard_cpu::EngineKind;
use armboard_peripherals as dev;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// A disk for a virtio-blk transport.
#[derive(Debug, Clone)]
pub struct Drive {
    pub path: PathBuf,
    pub readonly: bool,
}

/// What the board's NIC (a virtio-net transport) is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// The built-in user network: a gateway at 10.0.2.2 answering ARP and ping.
    User,
    /// No NIC.
    None,
}

/// The RTC's start under [`ClockKind::Icount`]: 2024-01-01 00:00:00 UTC.
pub const ICOUNT_EPOCH: u32 = 1_704_067_200;

/// The device-tree /chosen/rng-seed and virtio RNG seed under [`ClockKind::Icount`].
const ICOUNT_SEED: u64 = 0x6172_6d62_6f61_7264;

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
    pub net: Net,
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
            net: Net::User,
            engine: EngineKind::default(),
            clock: ClockKind::Host,
            timeout: None,
        }
    }
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
    // Drives take the first virtio-mmio transports, the RNG, the console and the NIC the next.
    let rng_slot = m.drives.len();
    let console_slot = rng_slot + 1;
    let net_slot = (m.net != Net::None).then_some(console_slot + 1);
    let last_slot = net_slot.unwrap_or(console_slot);
    if last_slot >= layout::VIRTIO_MMIO_COUNT {
        return Err(MachineError::Config("too many drives".into()));
    }
    let mut board = DtConfig::new(m.cpus as u32, m.memory);
    board.cpu_compatible = format!("arm,{}", m.model.name);
    let freq = model::CNTFRQ;
    let icount = match m.clock {
        ClockKind::Host => None,
        ClockKind::Icount { shift } => Some(system::icount::Icount::new(freq, shift)),
    };
    board.rng_seed = Some(match icount {
        Some(_) => system::icount::SeededRandom::new(ICOUNT_SEED).bytes(32),
        None => system::host_random(32)
            .map_err(|e| MachineError::Config(format!("the host's random source: {e}")))?,
    });
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
        Box::new(match &icount {
            Some(ic) => {
                let ic = ic.clone();
                dev::pl031::Pl031::with_clock(
                    ICOUNT_EPOCH,
                    Box::new(move || ic.elapsed()),
                    spi(layout::RTC_SPI),
                )
            }
            None => dev::pl031::Pl031::new(spi(layout::RTC_SPI)),
        }),
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
    let rng = match icount {
        Some(_) => dev::virtio::VirtioRng::with_source(Box::new(
            system::icount::SeededRandom::new(ICOUNT_SEED.rotate_left(17)),
        )),
        None => dev::virtio::VirtioRng::new()
            .map_err(|e| MachineError::Config(format!("the host's random source: {e}")))?,
    };
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
    // The NIC, QEMU's default address, polled for frames from its network.
    let mut pollers: Vec<system::Poller> = Vec::new();
    if let Some(n) = net_slot {
        let backend: Box<dyn dev::net::NetBackend> = Box::new(dev::net::user::UserNet::default());
        let nic = Shared::new(dev::virtio::VirtioMmio::new(
            dev::virtio::VirtioNet::new(dev::virtio::net::DEFAULT_MAC, backend),
            ram.clone(),
            slot_irq(n),
        ));
        bus.insert(
            slot_base(n),
            layout::VIRTIO_MMIO_SIZE,
            Box::new(nic.clone()),
        )?;
        pollers.push(Box::new(move || nic.lock().poll()));
    }
    // The other transports exist, empty (device ID 0), as on QEMU's virt.
    for n in last_slot + 1..layout::VIRTIO_MMIO_COUNT {
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

    let space = Arc::new(AddressSpace::new(vec![ram.clone()], bus)?);
    let ctl = Control::new(ControlConfig {
        inputs,
        kicks,
        mpidrs: (0..m.cpus).map(mpidr).collect(),
        power: (0..m.cpus)
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
        timer: TimerWiring {
            sink: gic.clone(),
            virt: PPI_VIRT_TIMER,
            phys: PPI_PHYS_TIMER,
        },
        firmware: Firmware::Psci,
        freq,
        ram,
    });
    system::run(
        ctl,
        space,
        &console,
        RunConfig {
            model: m.model,
            engine: m.engine,
            timeout: m.timeout,
            clock: match icount {
                Some(ic) => system::GuestClock::Icount(ic),
                None => system::host_clock(freq),
            },
            pollers,
            input: Box::new(move |b| uart.lock().push_input(b)),
        },
    )
    .map_err(MachineError::Config)
}

/// Generic timer PPIs (INTIDs): EL1 physical and virtual timers.
const PPI_PHYS_TIMER: u32 = 30;
const PPI_VIRT_TIMER: u32 = 27;

/// SPIs the GIC implements (QEMU's virt has 256 interrupt lines in all).
const GIC_SPIS: usize = 224;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpidrs_follow_qemu_virt() {
        assert_eq!(mpidr(0), 0x8000_0000);
        assert_eq!(mpidr(3), 0x8000_0003);
    }
}
