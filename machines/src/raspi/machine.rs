//! Running a Raspberry Pi: the SoC's devices wired to RAM and the interrupt controllers, the
//! boot images placed as the Pi firmware places them, secondary cores held in the spin table.

use super::board::Board;
use super::soc::{self, irq, offset, peri};
use crate::system::icount::{Icount, SeededRandom};
use crate::system::{
    self, console, ClockKind, Control, ControlConfig, Firmware, Outcome, Power, RunConfig,
    TimerWiring,
};
use armboard_bus::{AddressSpace, Bus, CpuInterrupts, Device, IrqLine, Ram, Shared};
use armboard_cpu::EngineKind;
use armboard_firmware::fdt::{BootParams, Fdt};
use armboard_firmware::image::{plan_boot, KernelImage, BASE_ALIGN, DTB_MAX};
use armboard_firmware::pi;
use armboard_peripherals::bcm2835::{
    armctrl::Armctrl,
    aux::Aux,
    cprman::Cprman,
    dma,
    gpio::Gpio,
    local_intc, mbox, pm,
    rng::Rng,
    systimer::{self, SysTimer},
};
use armboard_peripherals::pl011::Pl011;
use armboard_peripherals::sd::{card::SdCard, sdhci::Sdhci, sdhost::Sdhost};
use armboard_peripherals::unimp::Unimplemented;
use armboard_peripherals::{net, usb};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// A run of a Pi board, as the command line describes it.
#[derive(Debug, Clone)]
pub struct Machine {
    pub board: &'static Board,
    /// `--sd`: the SD card image. Without `kernel`, the firmware boots from it.
    pub sd: Option<PathBuf>,
    /// Direct boot: `--kernel`, `--dtb`, `--initrd`, `--append`.
    pub kernel: Option<PathBuf>,
    pub dtb: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub append: Option<String>,
    pub engine: EngineKind,
    pub timeout: Option<Duration>,
    pub clock: ClockKind,
}

/// The seed of everything random under `--clock icount` (the device tree's rng-seed, the
/// RNG's stream), so that runs repeat.
const ICOUNT_SEED: u64 = 0x7069_3362_7365_6564;

impl Machine {
    pub fn new(board: &'static Board) -> Self {
        Self {
            board,
            sd: None,
            kernel: None,
            dtb: None,
            initrd: None,
            append: None,
            engine: EngineKind::default(),
            timeout: None,
            clock: ClockKind::Host,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PiError {
    #[error("{0}")]
    Config(String),
    #[error("{path}: {msg}")]
    File { path: PathBuf, msg: String },
    #[error("SD card {path}: {err}")]
    Sd { path: PathBuf, err: pi::PiBootError },
    #[error("{0}")]
    Bus(#[from] armboard_bus::BusError),
}

/// What the firmware (or the command line) gives the ARM to boot.
struct Payload {
    kernel: Vec<u8>,
    kernel_name: String,
    dtb: Vec<u8>,
    dtb_name: String,
    initrd: Option<Vec<u8>>,
    /// None: keep the tree's bootargs.
    cmdline: Option<String>,
    arm_memory: u64,
    /// config.txt's enable_uart: the firmware turns the mini UART on (its pins and clock).
    enable_uart: bool,
}

fn read(path: &PathBuf) -> Result<Vec<u8>, PiError> {
    std::fs::read(path).map_err(|e| PiError::File {
        path: path.clone(),
        msg: e.to_string(),
    })
}

fn payload(m: &Machine) -> Result<Payload, PiError> {
    let b = m.board;
    if let Some(kernel) = &m.kernel {
        let dtb = m.dtb.as_ref().ok_or_else(|| {
            PiError::Config(format!(
                "--machine {} with --kernel needs --dtb (the board's device tree, e.g. Debian's \
                 broadcom/{}), or boot from --sd alone",
                b.name,
                b.dtbs.last().unwrap_or(&"")
            ))
        })?;
        return Ok(Payload {
            kernel: read(kernel)?,
            kernel_name: kernel.display().to_string(),
            dtb: read(dtb)?,
            dtb_name: dtb.display().to_string(),
            initrd: m.initrd.as_ref().map(read).transpose()?,
            cmdline: m.append.clone(),
            arm_memory: b.arm_memory(b.default_gpu_mem),
            // As with enable_uart=1, which Pi users set to get a serial console.
            enable_uart: true,
        });
    }
    let Some(sd) = &m.sd else {
        return Err(PiError::Config(format!(
            "--machine {}: give --sd CARD.img (the firmware boots it) or --kernel and --dtb",
            b.name
        )));
    };
    if m.dtb.is_some() || m.initrd.is_some() {
        return Err(PiError::Config(
            "--dtb and --initrd go with --kernel; an SD boot takes them from config.txt".into(),
        ));
    }
    let fw_board = match b.name {
        "raspi3b" => pi::PiBoard::raspi3b(),
        other => {
            return Err(PiError::Config(format!(
                "the Pi firmware does not know board {other}"
            )))
        }
    };
    let plan = pi::boot_from_sd(sd, &fw_board).map_err(|err| PiError::Sd {
        path: sd.clone(),
        err,
    })?;
    for note in &plan.dt {
        eprintln!("armboard: config.txt: {note}");
    }
    for note in &plan.notes {
        eprintln!("armboard: config.txt: {note}");
    }
    Ok(Payload {
        kernel: plan.kernel.bytes,
        kernel_name: plan.kernel.name,
        dtb: plan.dtb.bytes,
        dtb_name: plan.dtb.name,
        initrd: plan.initramfs.map(|i| i.bytes),
        cmdline: Some(m.append.clone().unwrap_or(plan.cmdline)),
        arm_memory: plan.arm_memory,
        enable_uart: plan.enable_uart,
    })
}

/// The images placed in RAM and what the CPUs start with.
struct Placed {
    blobs: Vec<(u64, Vec<u8>)>,
    entry: u64,
    dtb_addr: u64,
    /// Spin-table release addresses of the secondary cores (the tree's cpu-release-addr).
    releases: Vec<u64>,
}

fn place(b: &Board, p: Payload, icount: bool) -> Result<Placed, PiError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        PiError::Config(format!("{what} {}: {e}", p.kernel_name))
    };
    let image = KernelImage::from_bytes(p.kernel.clone()).map_err(|e| bad("kernel", &e))?;
    // The firmware loads a 64-bit kernel at 2 MiB; page 0 holds the spin table.
    let plan = plan_boot(
        BASE_ALIGN,
        p.arm_memory - BASE_ALIGN,
        &image,
        p.initrd.as_ref().map(|i| i.len() as u64),
    )
    .map_err(|e| bad("placing kernel", &e))?;
    let dtb_err =
        |e: &dyn std::fmt::Display| PiError::Config(format!("device tree {}: {e}", p.dtb_name));
    let mut fdt = Fdt::parse(&p.dtb).map_err(|e| dtb_err(&e))?;
    fdt.patch_for_boot(&BootParams {
        bootargs: p.cmdline.as_deref(),
        initrd: plan.initrd.clone(),
        memory: &[(0, p.arm_memory)],
        stdout_path: None,
    })
    .map_err(|e| dtb_err(&e))?;
    // What the firmware adds: the board's identity and a seed for the kernel's RNG. No
    // kaslr-seed: with one, Linux 6.1 forces kernel page-table isolation on, and every
    // exception then switches page tables (boot to init took 42 s instead of 18 s).
    let seed = if icount {
        SeededRandom::new(ICOUNT_SEED).bytes(32)
    } else {
        system::host_random(32)
            .map_err(|e| PiError::Config(format!("the host's random source: {e}")))?
    };
    fdt.root.child_or_add("chosen").set("rng-seed", seed);
    // The firmware gives the on-board Ethernet (the LAN9514 has no EEPROM) the board's MAC
    // address, the one the mailbox reports.
    if let Some(eth) = fdt
        .node("/aliases")
        .and_then(|a| a.prop_str("ethernet0"))
        .map(str::to_string)
    {
        if let Some(n) = fdt.node_mut(&eth) {
            n.set("local-mac-address", mbox::BoardInfo::pi3b(0).mac.to_vec());
        }
    }
    let sys = fdt.root.child_or_add("system");
    sys.set_cells("linux,revision", &[b.revision]);
    sys.set_u64s("linux,serial", &[0x1234_5678]);
    let releases = (0..b.cpus)
        .map(|i| {
            fdt.node(&format!("/cpus/cpu@{i}"))
                .and_then(|n| n.prop_cells("cpu-release-addr"))
                .map(|c| c.iter().fold(0u64, |a, &v| (a << 32) | v as u64))
                .unwrap_or(0xd8 + 8 * i as u64)
        })
        .collect();
    let dtb = fdt.to_bytes().map_err(|e| dtb_err(&e))?;
    if dtb.len() as u64 > DTB_MAX {
        return Err(dtb_err(&format!("{} bytes is too large", dtb.len())));
    }
    let mut blobs = vec![(plan.kernel, image.bytes)];
    if let (Some(r), Some(i)) = (plan.initrd.clone(), p.initrd) {
        blobs.push((r.start, i));
    }
    blobs.push((plan.dtb, dtb));
    Ok(Placed {
        blobs,
        entry: plan.kernel,
        dtb_addr: plan.dtb,
        releases,
    })
}

/// DMA's view of the peripherals: bus addresses to devices.
struct Port {
    devices: Vec<(u32, u32, Box<dyn Device>)>,
}

impl dma::DmaPort for Port {
    fn read(&mut self, bus_addr: u32) -> u32 {
        match self.find(bus_addr) {
            Some((d, off)) => d.read(off, 4) as u32,
            None => 0,
        }
    }

    fn write(&mut self, bus_addr: u32, value: u32) {
        if let Some((d, off)) = self.find(bus_addr) {
            d.write(off, 4, value as u64);
        }
    }
}

impl Port {
    fn find(&mut self, bus_addr: u32) -> Option<(&mut Box<dyn Device>, u64)> {
        self.devices
            .iter_mut()
            .find(|(base, len, _)| bus_addr.wrapping_sub(*base) < *len)
            .map(|(base, _, d)| {
                let off = (bus_addr - *base) as u64;
                (d, off)
            })
    }
}

/// The bus address of a peripheral.
fn bus_addr(o: (u64, u64)) -> (u32, u32) {
    (soc::PERI_BUS + o.0 as u32, o.1 as u32)
}

/// Inserts `devices` and covers the rest of `[base, base + size)` with unmodelled blocks.
fn map_window(
    bus: &mut Bus,
    base: u64,
    size: u64,
    mut devices: Vec<(u64, u64, Box<dyn Device>)>,
) -> Result<(), PiError> {
    devices.sort_by_key(|d| d.0);
    let mut at = base;
    for (addr, len, dev) in devices {
        if addr > at {
            bus.insert(
                at,
                addr - at,
                Box::new(Unimplemented::new(format!("{at:#x}"))),
            )?;
        }
        bus.insert(addr, len, dev)?;
        at = addr + len;
    }
    if at < base + size {
        bus.insert(
            at,
            base + size - at,
            Box::new(Unimplemented::new(format!("{at:#x}"))),
        )?;
    }
    Ok(())
}

/// Build the board, boot and run until the guest powers off, resets, panics or the user
/// quits.
pub fn run(m: &Machine) -> Result<Outcome, PiError> {
    let b = m.board;
    let p = payload(m)?;
    let (arm_memory, enable_uart) = (p.arm_memory, p.enable_uart);
    let icount = match m.clock {
        ClockKind::Host => None,
        ClockKind::Icount { shift } => Some(Icount::new(b.timer_hz, shift)),
    };
    let placed = place(b, p, icount.is_some())?;
    // The SoC's own timers count guest time: host time, or retired instructions.
    let ns_clock: systimer::Clock = match &icount {
        Some(ic) => {
            let ic = ic.clone();
            Arc::new(move || ic.elapsed().as_nanos() as u64)
        }
        None => systimer::host_clock(),
    };
    // SDRAM below the peripheral window; the VideoCore's part is there too.
    let ram = Arc::new(Ram::new(0, b.memory.min(soc::PERI_BASE))?);
    for (addr, bytes) in &placed.blobs {
        ram.write(*addr, bytes)?;
    }

    let kicks: Vec<Arc<AtomicBool>> = (0..b.cpus)
        .map(|_| Arc::new(AtomicBool::new(false)))
        .collect();
    let inputs: Vec<Arc<CpuInterrupts>> = kicks
        .iter()
        .map(|k| Arc::new(CpuInterrupts::new(k.clone())))
        .collect();
    let local = local_intc::LocalIntc::with_clock(inputs.clone(), ns_clock.clone());
    let armctrl = Armctrl::new(
        IrqLine::new(local.clone(), local_intc::GPU_IRQ),
        IrqLine::new(local.clone(), local_intc::GPU_FIQ),
    );
    let line = |n: u32| IrqLine::new(armctrl.clone(), n);

    let mut power = vec![Power::Starting {
        entry: placed.entry,
        context: placed.dtb_addr,
    }];
    power.extend(
        placed.releases[1..]
            .iter()
            .map(|&release| Power::Spinning { release }),
    );
    let ctl = Control::new(ControlConfig {
        inputs,
        kicks,
        mpidrs: (0..b.cpus as u64).map(|i| 0x8000_0000 | i).collect(),
        power,
        timer: TimerWiring {
            sink: local.clone(),
            virt: local_intc::TIMER_CNTV,
            phys: local_intc::TIMER_CNTPNS,
        },
        firmware: Firmware::None,
        freq: b.timer_hz,
        ram: ram.clone(),
    });

    let console = console::Console::new(Box::new(std::io::stdout()));
    let uart0 = Shared::new(Pl011::new(Box::new(console.clone()), line(irq::UART0)));
    let mut mini_uart = Aux::new(Box::new(console.clone()), line(irq::AUX));
    let mut gpio = Gpio::new(irq::GPIO.map(line));
    if enable_uart {
        mini_uart.firmware_enable_uart();
        // GPIO 14 and 15 to ALT5 (TXD1, RXD1) in GPFSEL1.
        gpio.write(0x04, 4, (2 << 12) | (2 << 15));
    }
    let aux = Shared::new(mini_uart);
    let card = match &m.sd {
        Some(path) => Some(SdCard::open(path, false).map_err(|e| PiError::File {
            path: path.clone(),
            msg: e.to_string(),
        })?),
        None => None,
    };
    let sdhost = Shared::new(Sdhost::new(card, line(irq::SDHOST)));
    let systimer = Shared::new(SysTimer::with_clock(
        irq::SYSTIMER.map(line),
        ns_clock.clone(),
    ));
    let weak: Weak<Control> = Arc::downgrade(&ctl);
    let pm = Shared::new(pm::Pm::new(Box::new(move |kind| {
        if let Some(ctl) = weak.upgrade() {
            ctl.finish(match kind {
                pm::ResetKind::PowerOff => Outcome::PowerOff,
                pm::ResetKind::Reset => Outcome::Reset,
            });
        }
    })));
    let rng = match icount {
        Some(_) => Rng::with_source(Box::new(SeededRandom::new(ICOUNT_SEED.rotate_left(17)))),
        None => {
            Rng::new().map_err(|e| PiError::Config(format!("the host's random source: {e}")))?
        }
    };
    let mut info = mbox::BoardInfo::pi3b(arm_memory as u32);
    info.revision = b.revision;
    let mailbox = mbox::Mailbox::new(ram.clone(), line(irq::MBOX), info);
    let dma = dma::Dma::new(
        ram.clone(),
        // Channels 0..=10 have a line each; 11..=14 share the twelfth.
        (0..12).map(|ch| line(soc::dma_irq(ch))).collect(),
        Box::new(Port {
            devices: vec![{
                let (base, len) = bus_addr(offset::SDHOST);
                (base, len, Box::new(sdhost.clone()) as Box<dyn Device>)
            }],
        }),
    );

    // The LAN9514 on the USB port: a hub with the Ethernet function on its port 1, its
    // network the built-in user-mode one.
    let ethernet: Box<dyn usb::UsbDevice> = Box::new(usb::smsc95xx::Smsc95xx::new(Box::new(
        net::user::UserNet::default(),
    )));
    let lan9514 = usb::hub::Hub::lan9514(vec![Some(ethernet)]);
    let usb = Shared::new(usb::dwc2::Dwc2::new(
        ram.clone(),
        line(irq::USB),
        ns_clock.clone(),
        Some(Box::new(lan9514)),
    ));

    let dev = |o: (u64, u64), d: Box<dyn Device>| (peri(o), o.1, d);
    let devices: Vec<(u64, u64, Box<dyn Device>)> = vec![
        dev(offset::SYSTIMER, Box::new(systimer.clone())),
        dev(offset::DMA, Box::new(dma)),
        dev(offset::ASB, Box::new(pm::Asb::new())),
        dev(offset::ARMCTRL, Box::new(armctrl.device())),
        dev(offset::MBOX, Box::new(mailbox)),
        dev(offset::PM, Box::new(pm.clone())),
        dev(offset::CPRMAN, Box::new(Cprman::new())),
        dev(offset::RNG, Box::new(rng)),
        dev(offset::GPIO, Box::new(gpio)),
        dev(offset::UART0, Box::new(uart0.clone())),
        dev(offset::SDHOST, Box::new(sdhost)),
        dev(offset::AUX, Box::new(aux.clone())),
        dev(
            offset::EMMC,
            Box::new(Sdhci::new(None, ram.clone(), line(irq::EMMC))),
        ),
        dev(offset::USB, Box::new(usb.clone())),
    ];
    let mut bus = Bus::new();
    map_window(&mut bus, soc::PERI_BASE, soc::PERI_SIZE, devices)?;
    map_window(
        &mut bus,
        soc::LOCAL_BASE,
        soc::LOCAL_SIZE,
        vec![(
            soc::LOCAL_BASE,
            soc::LOCAL_INTC_SIZE,
            Box::new(local.device()),
        )],
    )?;
    let space = Arc::new(AddressSpace::new(vec![ram], bus)?);

    let pollers: Vec<system::Poller> = vec![
        Box::new(move || local.poll()),
        Box::new(move || systimer.lock().poll()),
        Box::new(move || pm.lock().poll()),
        Box::new(move || usb.lock().poll()),
    ];
    system::run(
        ctl,
        space,
        &console,
        RunConfig {
            model: b.cpu,
            engine: m.engine,
            timeout: m.timeout,
            clock: match icount {
                Some(ic) => system::GuestClock::Icount(ic),
                None => system::host_clock(b.timer_hz),
            },
            pollers,
            // Typed bytes go to whichever UART takes them: the guest's console is on one.
            input: Box::new(move |bytes| {
                let a = uart0.lock().push_input(bytes);
                let x = aux.lock().push_input(bytes);
                a.max(x)
            }),
        },
    )
    .map_err(PiError::Config)
}
