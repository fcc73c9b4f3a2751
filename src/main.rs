//! The armboard command line.

use anyhow::Context;
use armboard_cpu::EngineKind;
use armboard_firmware::deb::{Cache, Sysroot};
use armboard_machines::linux_user::{self, UserConfig};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

mod container;
mod volume;

#[derive(Parser)]
#[command(
    name = "armboard",
    version,
    about = "Emulator of ARM single-board computers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Engine {
    /// The IR interpreter only.
    Interp,
    /// Compile every block (needs the JIT tier).
    Jit,
    /// Interpret cold code, compile hot code.
    Tiered,
}

impl From<Engine> for EngineKind {
    fn from(e: Engine) -> Self {
        match e {
            Engine::Interp => EngineKind::Interp,
            Engine::Jit => EngineKind::Jit,
            Engine::Tiered => EngineKind::Tiered,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Run an arm64 Linux program on this host (user mode).
    User {
        /// Directory holding the guest's libraries and dynamic loader (like qemu-aarch64 -L).
        #[arg(long, env = "ARMBOARD_SYSROOT")]
        sysroot: Option<PathBuf>,
        /// Execution engine.
        #[arg(long, value_enum, default_value = "tiered")]
        engine: Engine,
        /// argv[0] for the program when it is not the program path (used by execve).
        #[arg(long, hide = true)]
        argv0: Option<String>,
        /// The arm64 ELF program.
        program: PathBuf,
        /// Its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
        /// Debian arm64 packages (comma separated) to fetch into a cached sysroot first; the
        /// program may then be a bare name found in the sysroot's bin directories.
        #[arg(long, value_delimiter = ',')]
        fetch: Vec<String>,
    },
    /// Boot a kernel on an emulated board (system emulation).
    Boot(BootArgs),
    /// Run a container on an emulated board: boots Debian's arm64 kernel into a guest that
    /// runs the command with crun (default: a busybox container printing a greeting). The
    /// exit status is the container's.
    Run(container::RunArgs),
    /// Build guest images.
    #[command(subcommand)]
    Image(ImageCmd),
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Machine {
    /// QEMU's generic Arm virtual machine (GICv2, PL011, PL031, virtio-mmio).
    Virt,
    /// Raspberry Pi 3 Model B (BCM2837, 4 x Cortex-A53, 1 GiB).
    Raspi3b,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Net {
    /// The built-in user network: a gateway at 10.0.2.2 that answers ARP and ping.
    User,
    /// No network card.
    None,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Clock {
    /// Guest timers follow the host's clock.
    Host,
    /// Guest time advances with retired instructions (2^--icount-shift ns each): the same
    /// kernel and inputs give the same run (console output, timestamps included).
    Icount,
}

#[derive(clap::Args)]
struct BootArgs {
    /// The board.
    #[arg(long, value_enum, default_value = "virt")]
    machine: Machine,
    /// CPU model: cortex-a53 or cortex-a72 (virt; default cortex-a72). A Pi has its SoC's.
    #[arg(long)]
    cpu: Option<String>,
    /// Number of CPUs (virt; default 1). A Pi has its SoC's.
    #[arg(long)]
    smp: Option<usize>,
    /// Guest RAM, e.g. 512M or 2G (a bare number is MiB, as with QEMU's -m; virt, default
    /// 1G). A Pi has its board's.
    #[arg(long)]
    memory: Option<String>,
    /// The kernel: an arm64 Image (also gzip-compressed or EFI zboot, as Debian ships it).
    /// On a Pi, without it the firmware boots the --sd card.
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// An SD card image (Pi boards): MBR with a FAT boot partition holding config.txt,
    /// cmdline.txt, the kernel and device trees, as the Pi firmware reads it.
    #[arg(long)]
    sd: Option<PathBuf>,
    /// An initramfs to load.
    #[arg(long)]
    initrd: Option<PathBuf>,
    /// The kernel command line.
    #[arg(long)]
    append: Option<String>,
    /// Use this device tree instead of the generated one (/chosen and /memory are patched).
    #[arg(long)]
    dtb: Option<PathBuf>,
    /// A disk image for a virtio-blk device: FILE or FILE,readonly (repeatable).
    #[arg(long)]
    drive: Vec<String>,
    /// The virt board's NIC (virtio-net, MAC 52:54:00:12:34:56): `user` connects it to the
    /// built-in user network, `none` leaves it out. A Pi has its on-board Ethernet.
    #[arg(long, value_enum, default_value = "user")]
    net: Net,
    /// Execution engine.
    #[arg(long, value_enum, default_value = "tiered")]
    engine: Engine,
    /// How guest time advances.
    #[arg(long, value_enum, default_value = "host")]
    clock: Clock,
    /// With --clock icount: each guest instruction takes 2^N ns of guest time (0 to 20;
    /// the default 2 is 4 ns, as if the guest ran at 250 MIPS).
    #[arg(long, default_value_t = armboard_machines::system::icount::DEFAULT_SHIFT)]
    icount_shift: u32,
    /// Stop the board if the guest has not powered off after this many seconds (exit 12).
    #[arg(long)]
    timeout: Option<u64>,
}

/// Exit statuses of `armboard boot` besides 0 (guest powered off or the user quit).
const EXIT_GUEST_RESET: i32 = 10;
const EXIT_GUEST_PANIC: i32 = 11;
const EXIT_GUEST_TIMEOUT: i32 = 12;
const EXIT_GUEST_ERROR: i32 = 13;

fn boot(a: BootArgs) -> anyhow::Result<i32> {
    use armboard_machines::virt::{self, Drive};
    let timeout = a.timeout;
    let clock = clock_kind(&a)?;
    let outcome = match a.machine {
        Machine::Raspi3b => boot_raspi("raspi3b", a, clock)?,
        Machine::Virt => {
            let kernel = a
                .kernel
                .context("--machine virt needs --kernel (an arm64 Image)")?;
            anyhow::ensure!(
                a.sd.is_none(),
                "--sd is for the Pi boards; virt takes --drive"
            );
            let cpu = a.cpu.as_deref().unwrap_or("cortex-a72");
            let model = armboard_cpu::model::by_name(cpu).with_context(|| {
                format!("--cpu {cpu}: known models are cortex-a53 and cortex-a72")
            })?;
            let mut cfg = virt::Machine::new(kernel);
            cfg.clock = clock;
            cfg.cpus = a.smp.unwrap_or(1);
            cfg.model = model;
            let memory = a.memory.as_deref().unwrap_or("1G");
            cfg.memory = virt::boot::parse_size(memory)
                .map_err(|e| anyhow::anyhow!("--memory {memory}: {e}"))?;
            cfg.initrd = a.initrd;
            cfg.append = a.append;
            cfg.dtb = a.dtb;
            cfg.engine = a.engine.into();
            cfg.timeout = a.timeout.map(std::time::Duration::from_secs);
            cfg.net = match a.net {
                Net::User => virt::Net::User,
                Net::None => virt::Net::None,
            };
            for d in a.drive {
                let (path, opts) = d.split_once(',').unwrap_or((&d, ""));
                let readonly = match opts {
                    "" => false,
                    "readonly" | "readonly=on" | "ro" => true,
                    o => anyhow::bail!("--drive {d}: unknown option {o:?} (only readonly)"),
                };
                cfg.drives.push(Drive {
                    path: path.into(),
                    readonly,
                });
            }
            virt::run(&cfg)?
        }
    };
    Ok(exit_status(outcome, timeout))
}

/// How guest time advances, from --clock and --icount-shift.
fn clock_kind(a: &BootArgs) -> anyhow::Result<armboard_machines::system::ClockKind> {
    use armboard_machines::system::{icount::MAX_SHIFT, ClockKind};
    anyhow::ensure!(
        a.icount_shift <= MAX_SHIFT,
        "--icount-shift {}: must be 0 to {MAX_SHIFT}",
        a.icount_shift
    );
    Ok(match a.clock {
        Clock::Host => ClockKind::Host,
        Clock::Icount => ClockKind::Icount {
            shift: a.icount_shift,
        },
    })
}

/// Boot a Raspberry Pi board.
fn boot_raspi(
    name: &str,
    a: BootArgs,
    clock: armboard_machines::system::ClockKind,
) -> anyhow::Result<armboard_machines::system::Outcome> {
    use armboard_machines::raspi;
    let board = raspi::board::by_name(name).context("unknown Pi board")?;
    if let Some(cpu) = &a.cpu {
        anyhow::ensure!(
            armboard_cpu::model::by_name(cpu).map(|m| m.name) == Some(board.cpu.name),
            "--cpu {cpu}: the {} has {} cores",
            board.model_name,
            board.cpu.name
        );
    }
    if let Some(n) = a.smp {
        anyhow::ensure!(
            n == board.cpus,
            "--smp {n}: the {} has {} cores",
            board.model_name,
            board.cpus
        );
    }
    if let Some(m) = &a.memory {
        let size = armboard_machines::virt::boot::parse_size(m)
            .map_err(|e| anyhow::anyhow!("--memory {m}: {e}"))?;
        anyhow::ensure!(
            size == board.memory,
            "--memory {m}: the {} has {} MiB",
            board.model_name,
            board.memory >> 20
        );
    }
    anyhow::ensure!(
        a.drive.is_empty(),
        "--drive is for virt; a Pi takes its disk as --sd"
    );
    let mut cfg = raspi::Machine::new(board);
    cfg.clock = clock;
    cfg.sd = a.sd;
    cfg.kernel = a.kernel;
    cfg.dtb = a.dtb;
    cfg.initrd = a.initrd;
    cfg.append = a.append;
    cfg.engine = a.engine.into();
    cfg.timeout = a.timeout.map(std::time::Duration::from_secs);
    Ok(raspi::run(&cfg)?)
}

/// The process exit status for how a run ended (and what is said about it).
fn exit_status(outcome: armboard_machines::system::Outcome, timeout: Option<u64>) -> i32 {
    use armboard_machines::system::Outcome;
    match outcome {
        Outcome::PowerOff | Outcome::Quit => 0,
        Outcome::Halted => {
            eprintln!("armboard: the guest halted without powering off; the board is stopped");
            0
        }
        Outcome::Reset => {
            eprintln!("armboard: the guest reset the board");
            EXIT_GUEST_RESET
        }
        Outcome::Panic(text) => {
            eprintln!("armboard: the guest kernel panicked:\n{text}");
            EXIT_GUEST_PANIC
        }
        Outcome::TimedOut => {
            eprintln!(
                "armboard: the guest did not power off within {} s",
                timeout.unwrap_or(0)
            );
            EXIT_GUEST_TIMEOUT
        }
        Outcome::Error(e) => {
            eprintln!("armboard: {e}");
            EXIT_GUEST_ERROR
        }
    }
}

#[derive(Subcommand)]
enum ImageCmd {
    /// Fetch Debian bookworm arm64 packages (and their dependencies) and unpack them into
    /// a sysroot; prints its path.
    Sysroot {
        /// Unpack here instead of into the cache.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Package names.
        #[arg(required = true)]
        packages: Vec<String>,
    },
    /// Fetch Debian bookworm's arm64 kernel (linux-image-arm64) into the cache; prints the
    /// path of its image.
    Kernel,
    /// Build (or find in the cache) the guest image `armboard run` boots: prints the kernel
    /// and initramfs paths.
    Build {
        /// The image of this container runtime (see `armboard run --runtime`).
        #[arg(long, value_enum, default_value = "crun")]
        runtime: container::RuntimeArg,
    },
    /// Build a busybox initramfs (gzip-compressed cpio) for Debian's arm64 kernel.
    Initramfs {
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
        /// Kernel modules to include and load at boot, with their dependencies
        /// (e.g. virtio_mmio,virtio_blk,ext4).
        #[arg(long, value_delimiter = ',', default_value = "virtio_mmio,virtio_rng")]
        modules: Vec<String>,
        /// A shell script to run as /init after the mounts and modules (default: a shell on
        /// the console; the board powers off when it exits).
        #[arg(long)]
        init: Option<PathBuf>,
    },
}

/// The default /init of `armboard image initramfs`: @MODULES@ and @MAIN@ are filled in.
const INIT_TEMPLATE: &str = r#"#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
@MODULES@
@MAIN@
poweroff -f
"#;

fn build_initramfs(
    out: &std::path::Path,
    modules: &[String],
    init: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use armboard_firmware::initramfs::{Compression, Initramfs};
    let kernel =
        armboard_firmware::kernel::DebianKernel::ensure().context("fetching the kernel")?;
    let bb = Sysroot::ensure(&["busybox-static"]).context("fetching busybox-static")?;
    let busybox = bb
        .find_program("busybox")
        .context("busybox-static has no busybox")?;
    let names: Vec<&str> = modules
        .iter()
        .map(String::as_str)
        .filter(|m| !m.is_empty())
        .collect();
    let mods = kernel.module_set()?.resolve(&names)?;
    let main = match init {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => "echo 'armboard: busybox shell; exit it to power off'\nsetsid cttyhack sh".into(),
    };
    let mut fs = Initramfs::busybox(&busybox, "")?;
    let load = fs.modules("lib/modules", &mods)?;
    fs.file(
        "init",
        0o755,
        INIT_TEMPLATE
            .replace("@MODULES@", &load)
            .replace("@MAIN@", &main),
    )?;
    fs.write_to(out, Compression::Gzip)?;
    Ok(())
}

/// Exit status for errors armboard itself reports (bad input), distinct from guest statuses.
const EXIT_USAGE: u8 = 125;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("armboard: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.cmd {
        Cmd::User {
            sysroot,
            engine,
            argv0,
            mut program,
            args,
            fetch,
        } => {
            let mut sysroot = sysroot;
            if !fetch.is_empty() {
                let names: Vec<&str> = fetch.iter().map(String::as_str).collect();
                let root = Sysroot::ensure(&names).context("fetching the sysroot")?;
                if let Some(p) = program.to_str().and_then(|n| root.find_program(n)) {
                    program = p;
                }
                sysroot.get_or_insert(root.path);
            }
            if let Some(root) = &sysroot {
                anyhow::ensure!(
                    root.is_dir(),
                    "sysroot {} is not a directory",
                    root.display()
                );
            }
            let env = std::env::vars()
                .filter(|(k, _)| !k.starts_with("ARMBOARD_"))
                .collect();
            let cfg = UserConfig {
                program,
                args,
                sysroot,
                env,
                argv0,
                engine: engine.into(),
            };
            linux_user::run(&cfg).context("user mode")
        }
        Cmd::Boot(a) => boot(a),
        Cmd::Run(a) => container::run(a),
        Cmd::Image(ImageCmd::Build { runtime }) => {
            let t = std::time::Instant::now();
            let g = container::build_image(runtime)?;
            eprintln!(
                "armboard: guest image {} ({} in {:.1?})",
                g.key,
                if g.cached { "cached" } else { "built" },
                t.elapsed()
            );
            println!("kernel {}", g.kernel.display());
            println!("initrd {}", g.initrd.display());
            Ok(0)
        }
        Cmd::Image(ImageCmd::Sysroot { out, packages }) => {
            let names: Vec<&str> = packages.iter().map(String::as_str).collect();
            let root = match out {
                Some(dir) => Cache::from_env()?.unpack_into(&names, &dir)?,
                None => Sysroot::ensure(&names)?,
            };
            println!("{}", root.path.display());
            Ok(0)
        }
        Cmd::Image(ImageCmd::Kernel) => {
            let k = armboard_firmware::kernel::DebianKernel::ensure()?;
            println!("{}", k.image.display());
            Ok(0)
        }
        Cmd::Image(ImageCmd::Initramfs { out, modules, init }) => {
            build_initramfs(&out, &modules, init.as_deref())?;
            println!("{}", out.display());
            Ok(0)
        }
    }
}
