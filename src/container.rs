//! `armboard run`: boot the virt board with a guest image whose init runs one container
//! (see `armboard_firmware::guest` for the guest side and the console protocol), show the
//! container's stdout and stderr, and exit with its status.
//!
//! The board runs as a child `armboard boot` whose stdout (the guest console) is read here:
//! the boot log is kept back (shown only when the run fails, or with `--verbose`), the bytes
//! between the START and EXIT markers are the container's stdout, and its stderr follows
//! in a STDERR section (the guest keeps it in a file until the container exits).

use crate::volume;
use anyhow::{bail, Context};
use armboard_firmware::guest::{self, Container, Network, RootSource, Runtime};
use armboard_machines::virt::boot::parse_size;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};

#[derive(clap::Args)]
pub struct RunArgs {
    /// The board.
    #[arg(long, value_enum, default_value = "virt")]
    machine: crate::Machine,
    /// How the guest runs the container: crun or runc on a bundle, containerd (ctr
    /// imports the --oci image and runs it), podman (podman loads the --oci image and
    /// runs it) or docker (dockerd: docker load of the --oci image, then docker run).
    #[arg(long, value_enum, default_value = "crun")]
    runtime: RuntimeArg,
    /// Number of CPUs.
    #[arg(long, default_value_t = 1)]
    smp: usize,
    /// Guest RAM (e.g. 512M, 2G; a bare number is MiB).
    #[arg(long, default_value = "1G")]
    memory: String,
    /// Execution engine.
    #[arg(long, value_enum, default_value = "tiered")]
    engine: crate::Engine,
    /// A host directory to use as the container's root file system (copied into an ext4
    /// disk image for the guest; the directory is not changed).
    #[arg(long, conflicts_with = "oci")]
    rootfs: Option<PathBuf>,
    /// An arm64 OCI image: a `docker save` tarball or an OCI image layout directory.
    #[arg(long)]
    oci: Option<PathBuf>,
    /// A host directory the container sees at an absolute path: HOST:GUEST, or
    /// HOST:GUEST:ro for a read-only one (repeatable). It is copied onto a disk of the
    /// board; what the container changes in it is copied back when the run ends. A missing
    /// HOST directory is created.
    #[arg(long = "volume", value_name = "HOST:GUEST[:ro]")]
    volumes: Vec<String>,
    /// Set an environment variable in the container (repeatable).
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    env: Vec<String>,
    /// Working directory in the container.
    #[arg(long, short = 'w')]
    workdir: Option<String>,
    /// The container's hostname.
    #[arg(long, default_value = "container")]
    hostname: String,
    /// cgroup memory limit of the container (e.g. 64M).
    #[arg(long)]
    container_memory: Option<String>,
    /// cgroup limit on the number of processes in the container.
    #[arg(long)]
    pids_limit: Option<u64>,
    /// The container's network: `bridge` (docker's default bridge, NATed out of the
    /// board's NIC to its user network; the default with --runtime docker) or `none`
    /// (a loopback interface only; the other runtimes' only choice).
    #[arg(long, value_enum)]
    network: Option<NetworkArg>,
    /// Stop the board after this many seconds (the run then fails with status 125).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Show the guest's boot log.
    #[arg(long, short = 'v')]
    verbose: bool,
    /// The command to run in the container (default: a greeting, or the image's
    /// Entrypoint/Cmd).
    #[arg(last = true)]
    cmd: Vec<String>,
}

/// Exit status when the command is not in the container (as shells and docker use).
const EXIT_NOT_FOUND: i32 = 127;
/// Exit status for errors of armboard or the guest's set-up.
const EXIT_ERROR: i32 = 125;

/// The container runtimes of the guest images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeArg {
    #[default]
    Crun,
    Runc,
    Containerd,
    Podman,
    Docker,
}

/// A container's network (see [`Network`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkArg {
    Bridge,
    None,
}

impl From<RuntimeArg> for Runtime {
    fn from(r: RuntimeArg) -> Runtime {
        match r {
            RuntimeArg::Crun => Runtime::Crun,
            RuntimeArg::Runc => Runtime::Runc,
            RuntimeArg::Containerd => Runtime::Containerd,
            RuntimeArg::Podman => Runtime::Podman,
            RuntimeArg::Docker => Runtime::Docker,
        }
    }
}

/// `armboard image build`: the base guest image for `runtime`, built or from the cache.
pub fn build_image(runtime: RuntimeArg) -> anyhow::Result<guest::GuestImage> {
    let rt = Runtime::from(runtime);
    guest::ensure_runtime(rt).with_context(|| format!("building the {} guest image", rt.name()))
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(a: RunArgs) -> anyhow::Result<i32> {
    let pi = a.machine == crate::Machine::Raspi3b;
    if pi && (a.smp != 1 || a.memory != "1G") {
        bail!("--smp and --memory are for virt: the Raspberry Pi 3 B has 4 cores and 1 GiB");
    }
    let runtime = Runtime::from(a.runtime);
    if runtime.imports_image() && a.oci.is_none() {
        bail!(
            "--runtime {} runs an image: give --oci IMAGE (an arm64 docker save \
             tarball or OCI layout)",
            runtime.name()
        );
    }
    if runtime == Runtime::Containerd && a.pids_limit.is_some() {
        bail!(
            "--pids-limit is not supported with --runtime containerd (ctr run has no such option)"
        );
    }
    let mut c = Container::greeting();
    c.hostname = a.hostname.clone();
    c.network = match (a.network, runtime) {
        (Some(NetworkArg::None), _) => Network::None,
        (_, Runtime::Docker) => Network::Bridge,
        (Some(NetworkArg::Bridge), _) => bail!(
            "--network bridge needs --runtime docker: with --runtime {} the container has \
             no network (--network none)",
            runtime.name()
        ),
        (None, _) => Network::None,
    };
    let vol_args = a
        .volumes
        .iter()
        .map(|v| volume::parse(v))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let max_volumes = if pi { 4 } else { 16 };
    if vol_args.len() > max_volumes {
        bail!(
            "at most {max_volumes} volumes on {}",
            if pi {
                "raspi3b (its SD card has four partitions)"
            } else {
                "virt"
            }
        );
    }
    let volumes = volume::check(&vol_args)?;
    c.volumes = volumes.iter().map(|(_, v)| v.clone()).collect();
    let tmp = TempDir(std::env::temp_dir().join(format!(
        "armboard-run-{}-{}",
        std::process::id(),
        nonce()
    )));
    std::fs::create_dir_all(&tmp.0).with_context(|| format!("creating {}", tmp.0.display()))?;
    let mut payload = None;
    let mut transport = "oci-archive";
    let mut root_dir: Option<PathBuf> = None;
    if let Some(dir) = &a.rootfs {
        let md = std::fs::metadata(dir).with_context(|| format!("--rootfs {}", dir.display()))?;
        if !md.is_dir() {
            bail!("--rootfs {}: not a directory", dir.display());
        }
        root_dir = Some(dir.clone());
    }
    if let Some(image) = &a.oci {
        let dir = tmp.0.join("oci-root");
        let cfg = armboard_firmware::oci::unpack(image, &dir)
            .with_context(|| format!("--oci {}", image.display()))?;
        c.env = cfg.env;
        // As `docker run IMAGE CMD...`: the command replaces Cmd, the Entrypoint stays.
        let cmd = if a.cmd.is_empty() {
            cfg.cmd
        } else {
            a.cmd.clone()
        };
        c.args = cfg.entrypoint.into_iter().chain(cmd).collect();
        if let Some(w) = cfg.workdir.filter(|w| !w.is_empty()) {
            c.cwd = w;
        }
        root_dir = Some(dir);
    }
    if root_dir.is_some() && a.cmd.is_empty() && a.oci.is_none() {
        bail!("--rootfs needs a command: armboard run --rootfs DIR -- CMD [ARGS...]");
    }
    if !a.cmd.is_empty() && a.oci.is_none() {
        c.args = a.cmd.clone();
    }
    if c.args.is_empty() {
        bail!("the image has no Entrypoint or Cmd: give a command after --");
    }
    for e in &a.env {
        if !e.contains('=') || e.starts_with('=') {
            bail!("--env {e:?}: expected KEY=VALUE");
        }
        let key = &e[..=e.find('=').unwrap_or(0)];
        c.env.retain(|x| !x.starts_with(key));
        c.env.push(e.clone());
    }
    if let Some(w) = &a.workdir {
        c.cwd = w.clone();
    }
    if let Some(m) = &a.container_memory {
        let bytes = parse_size(m).map_err(|e| anyhow::anyhow!("--container-memory {e}"))?;
        if bytes < (1 << 20) {
            bail!("--container-memory {m}: at least 1M");
        }
        c.memory = Some(bytes);
    }
    if let Some(p) = a.pids_limit {
        if p == 0 {
            bail!("--pids-limit 0: at least 1");
        }
        c.pids = Some(p);
    }
    if let Some(dir) = &root_dir {
        if !has_command(dir, &c) {
            eprintln!(
                "armboard: {}: command not found in {} (PATH={})",
                c.args[0],
                dir.display(),
                c.path()
            );
            return Ok(EXIT_NOT_FOUND);
        }
        if runtime.imports_image() {
            // containerd, podman and docker unpack the image themselves: the disk is the
            // archive they import (for docker always a docker archive: it loads no OCI
            // layout).
            let image = a.oci.as_deref().unwrap_or(dir);
            let archive = if runtime == Runtime::Docker {
                armboard_firmware::oci::docker_archive(image, guest::CTR_IMAGE)
            } else {
                armboard_firmware::oci::import_archive(image)
            }
            .with_context(|| format!("--oci {}", image.display()))?;
            transport = armboard_firmware::oci::archive_transport(&archive);
            payload = Some(Payload::Archive(archive));
        } else {
            c.root = RootSource::Disk;
            payload = Some(Payload::Root(dir.clone()));
        }
    }
    if pi && payload.is_some() && volumes.len() > 3 {
        bail!(
            "at most 3 volumes on raspi3b with a container disk (its SD card has four partitions)"
        );
    }
    let disks = lay_out_disks(&tmp.0, pi, payload, volumes)?;
    let drive = disks.main.clone();

    let image = build_image(a.runtime)?;
    let initrd = tmp.0.join("initrd");
    {
        let mut data = std::fs::read(&image.initrd)
            .with_context(|| format!("reading {}", image.initrd.display()))?;
        // Linux takes a cpio archive after a compressed one only at a 4-byte aligned
        // offset; zeros in between are skipped.
        data.resize(data.len().next_multiple_of(4), 0);
        if runtime == Runtime::Containerd {
            data.extend_from_slice(&c.ctr_run_archive()?);
        } else if runtime == Runtime::Podman {
            data.extend_from_slice(&c.podman_run_archive(transport)?);
        } else if runtime == Runtime::Docker {
            data.extend_from_slice(&c.docker_run_archive()?);
        } else {
            data.extend_from_slice(&c.run_archive()?);
        }
        std::fs::write(&initrd, data).with_context(|| format!("writing {}", initrd.display()))?;
    }
    let nonce = nonce();
    let exe = std::env::current_exe().context("finding the armboard executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("boot");
    if pi {
        cmd.args(["--machine", "raspi3b", "--dtb"])
            .arg(image.dtbs.join("broadcom/bcm2837-rpi-3-b.dtb"));
    } else {
        cmd.args(["--machine", "virt", "--smp", &a.smp.to_string()])
            .args(["--memory", &a.memory]);
        if runtime == Runtime::Docker && c.network == Network::None {
            cmd.args(["--net", "none"]);
        }
    }
    cmd.args(["--engine", engine_name(a.engine)])
        .arg("--kernel")
        .arg(&image.kernel)
        .arg("--initrd")
        .arg(&initrd);
    let mut append = format!("console=ttyAMA0 panic=-1 quiet armboard_nonce={nonce}");
    if pi {
        let dev = if disks.sd_partitioned {
            "mmcblk0p1"
        } else {
            "mmcblk0"
        };
        // The Pi has no real-time clock: the guest sets the host's time.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        append.push_str(&format!(
            " armboard_board=raspi armboard_disk_dev=/dev/{dev} armboard_time={now}"
        ));
        if let Some(sd) = &disks.sd {
            cmd.arg("--sd").arg(sd);
        }
    }
    if let Some(d) = &drive {
        if pi {
            if !runtime.imports_image() {
                append.push_str(" armboard_disk=1");
            }
        } else if runtime.imports_image() {
            let mut spec = d.clone().into_os_string();
            spec.push(",readonly");
            cmd.arg("--drive").arg(spec);
        } else {
            cmd.arg("--drive").arg(d);
            append.push_str(" armboard_disk=1");
        }
    }
    // The volumes' disks after the container's (which the guest expects as /dev/vda).
    for v in disks.volumes.iter().filter(|_| !pi) {
        let mut spec = v.image.clone().into_os_string();
        if v.volume.readonly {
            spec.push(",readonly");
        }
        cmd.arg("--drive").arg(spec);
    }
    // For benchmarks that boot the same guest elsewhere (benches/run.sh): what was booted.
    if let Some(keep) = std::env::var_os("ARMBOARD_RUN_KEEP") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep)
            .and_then(|()| std::fs::copy(&initrd, keep.join("initrd")))
            .and_then(|_| {
                std::fs::write(
                    keep.join("kernel"),
                    image.kernel.as_os_str().as_encoded_bytes(),
                )
            })
            .and_then(|()| std::fs::write(keep.join("append"), &append))
            .with_context(|| format!("ARMBOARD_RUN_KEEP={}", keep.display()))?;
    }
    cmd.arg("--append").arg(append);
    if let Some(t) = a.timeout {
        cmd.args(["--timeout", &t.to_string()]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = std::time::Instant::now();
    // From here a Ctrl-C or kill stops the board, not this process, so the volumes are
    // still checked and copied back and the temporary images removed.
    catch_stop_signals();
    let mut child = cmd.spawn().context("starting the board")?;
    board_started(child.id());
    let mut out = child.stdout.take().context("no console pipe")?;
    let mut err = child.stderr.take().context("no stderr pipe")?;
    let err_thread = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let mut f = Filter::new(&nonce, a.verbose);
    f.started = Some(started);
    let mut buf = [0u8; 8192];
    loop {
        match out.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => f.feed(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading the guest console"),
        }
    }
    f.finish();
    let status = child.wait().context("waiting for the board");
    // Reaped: its pid may name another process from now on.
    BOARD.store(0, Ordering::SeqCst);
    let status = status?;
    let board_err = err_thread.join().unwrap_or_default();
    let _ = std::io::stdout().flush();
    let code = report(&a, &c, &f, status, &board_err);
    let mut failed = false;
    for v in &disks.volumes {
        match v.copy_back(&tmp.0) {
            Ok(m) if a.verbose => eprintln!(
                "[armboard: volume {}: {} written, {} removed, {} special files left out]",
                v.arg.host.display(),
                m.written,
                m.removed,
                m.skipped
            ),
            Ok(_) => {}
            Err(e) => {
                volume::keep_image(v, &e);
                failed = true;
            }
        }
    }
    let sig = SIGNALLED.load(Ordering::SeqCst);
    if sig != 0 {
        eprintln!(
            "[armboard: stopped by signal {sig}{}]",
            if !failed && disks.volumes.iter().any(|v| !v.volume.readonly) {
                "; the volumes were checked and copied back"
            } else {
                ""
            }
        );
        return Ok(128 + sig);
    }
    Ok(if failed { EXIT_ERROR } else { code })
}

/// The signal (SIGINT, SIGTERM, SIGHUP) that stopped the run, or 0.
static SIGNALLED: AtomicI32 = AtomicI32::new(0);
/// The board's pid once it runs, for [`on_stop_signal`] to pass the signal on.
static BOARD: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop_signal(sig: libc::c_int) {
    SIGNALLED.store(sig, Ordering::SeqCst);
    let pid = BOARD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; `pid` is our child, not yet reaped (BOARD
        // is cleared as soon as the wait returns), so it names no other process.
        unsafe { libc::kill(pid, sig) };
    }
}

/// SIGINT, SIGTERM and SIGHUP set [`SIGNALLED`] and are passed on to the board (a Ctrl-C
/// at a terminal reaches it directly too, as one process group).
fn catch_stop_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction with a handler that only stores to atomics and calls
        // kill(2), both async-signal-safe; SA_RESTART keeps the console reads going.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
            act.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
}

/// Record the board's pid; a signal that came while it started is passed on now.
fn board_started(pid: u32) {
    let pid = pid as i32;
    BOARD.store(pid, Ordering::SeqCst);
    let sig = SIGNALLED.load(Ordering::SeqCst);
    if sig != 0 {
        on_stop_signal(sig);
    }
}

/// What the container's disk holds: its root file system (a host directory made into
/// ext4) or the image archive a runtime imports.
enum Payload {
    Root(PathBuf),
    Archive(Vec<u8>),
}

/// The board's disks for a run.
struct Disks {
    /// The container's disk (virt: the first drive; a Pi without volumes: the SD card).
    main: Option<PathBuf>,
    /// A Pi's SD card.
    sd: Option<PathBuf>,
    /// The SD card has a partition table: the container's disk is partition 1.
    sd_partitioned: bool,
    volumes: Vec<volume::Prepared>,
}

/// Writes the disks: on virt one file per disk (the container's disk, then one per
/// volume); on a Pi one SD card, the container's disk alone or, with volumes, an MBR with
/// the container's disk (if any) and then the volumes as partitions, 1 MiB aligned.
fn lay_out_disks(
    tmp: &Path,
    pi: bool,
    payload: Option<Payload>,
    volumes: Vec<(volume::VolumeArg, armboard_firmware::guest::Volume)>,
) -> anyhow::Result<Disks> {
    const MIB: u64 = 1 << 20;
    let write_payload = |p: &Payload, img: &Path, offset: u64| -> anyhow::Result<u64> {
        match p {
            Payload::Root(dir) => {
                let fs = volume::Ext4::new(dir, None, 0, true)?;
                fs.write(img, offset)?;
                Ok(fs.size)
            }
            Payload::Archive(data) => {
                use std::os::unix::fs::FileExt;
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(false)
                    .open(img)
                    .and_then(|f| f.write_all_at(data, offset).map(|()| f))
                    .with_context(|| format!("writing {}", img.display()))?;
                drop(f);
                Ok((data.len() as u64).next_multiple_of(MIB))
            }
        }
    };
    let name = |p: &Payload| match p {
        Payload::Root(_) => "rootfs.ext4",
        Payload::Archive(_) => "image.tar",
    };
    if !pi || volumes.is_empty() {
        let main = match &payload {
            Some(p) => {
                let img = tmp.join(name(p));
                write_payload(p, &img, 0)?;
                Some(img)
            }
            None => None,
        };
        let mut prepared = Vec::new();
        for (i, (arg, vol)) in volumes.into_iter().enumerate() {
            let img = tmp.join(format!("volume{i}.ext4"));
            prepared.push(volume::Prepared::write(arg, vol, img, 0)?);
        }
        if pi {
            if let Some(d) = &main {
                // The disk is the board's SD card, which shows whole 512 KiB units only.
                sd_card_size(d)?;
            }
        }
        return Ok(Disks {
            sd: main.clone().filter(|_| pi),
            main,
            sd_partitioned: false,
            volumes: prepared,
        });
    }
    use armboard_firmware::pi::mbr::{self, Partition, SECTOR};
    let sd = tmp.join("sd.img");
    let mut parts = Vec::new();
    let mut offset = MIB;
    let mut part = |offset: u64, size: u64| -> anyhow::Result<u64> {
        let lba = |b: u64| u32::try_from(b / SECTOR).context("the SD card is over 2 TiB");
        parts.push(Partition {
            index: parts.len() + 1,
            kind: 0x83,
            bootable: false,
            lba_start: lba(offset)?,
            sectors: lba(size)?,
        });
        Ok((offset + size).next_multiple_of(MIB))
    };
    if let Some(p) = &payload {
        let size = write_payload(p, &sd, offset)?;
        offset = part(offset, size)?;
    }
    let mut prepared = Vec::new();
    for (arg, vol) in volumes {
        let p = volume::Prepared::write(arg, vol, sd.clone(), offset)?;
        offset = part(offset, p.size)?;
        prepared.push(p);
    }
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&sd)
            .with_context(|| format!("opening {}", sd.display()))?;
        f.write_all_at(&mbr::encode(&parts), 0)
            .with_context(|| format!("writing {}", sd.display()))?;
    }
    sd_card_size(&sd)?;
    Ok(Disks {
        main: payload.as_ref().map(|_| sd.clone()),
        sd: Some(sd),
        sd_partitioned: true,
        volumes: prepared,
    })
}

/// The run's exit status from what the console showed, with the messages that explain it.
fn report(
    a: &RunArgs,
    c: &Container,
    f: &Filter,
    status: std::process::ExitStatus,
    board_err: &[u8],
) -> i32 {
    if let Some(code) = f.exit {
        if f.oom > 0 {
            eprintln!(
                "armboard: the container ran out of memory (--container-memory {}): \
                 the kernel's OOM killer killed a process in it",
                a.container_memory.as_deref().unwrap_or("none")
            );
        }
        if f.pids > 0 {
            eprintln!(
                "armboard: the container reached its process limit (--pids-limit {}): \
                 the kernel refused a fork",
                a.pids_limit.map(|p| p.to_string()).unwrap_or_default()
            );
        }
        return code;
    }
    let mut stderr = std::io::stderr();
    if !a.verbose {
        let _ = stderr.write_all(tail(&f.log, 4000));
    }
    let _ = stderr.write_all(board_err);
    if f.not_found {
        eprintln!(
            "armboard: {}: command not found in the container (PATH={})",
            c.args[0],
            c.path()
        );
        return EXIT_NOT_FOUND;
    }
    if let Some(why) = &f.fail {
        eprintln!("armboard: the guest could not start the container: {why}");
        return EXIT_ERROR;
    }
    eprintln!(
        "armboard: the guest ended ({status}) before the container finished{}",
        if a.verbose || f.log.is_empty() {
            ""
        } else {
            "; the end of its console is above"
        }
    );
    EXIT_ERROR
}

/// Pads a disk image to what an SD card can describe: whole 512 KiB units, at least 1 MiB
/// (the padding is zeros after the file system or archive).
fn sd_card_size(img: &Path) -> anyhow::Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(img)
        .with_context(|| format!("opening {}", img.display()))?;
    let len = f.metadata()?.len();
    let want = len.next_multiple_of(512 << 10).max(1 << 20);
    if want != len {
        f.set_len(want)
            .with_context(|| format!("resizing {}", img.display()))?;
    }
    Ok(())
}

fn tail(b: &[u8], n: usize) -> &[u8] {
    &b[b.len().saturating_sub(n)..]
}

fn engine_name(e: crate::Engine) -> &'static str {
    match e {
        crate::Engine::Interp => "interp",
        crate::Engine::Jit => "jit",
        crate::Engine::Tiered => "tiered",
    }
}

/// A fresh token for the console markers.
fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut x = (t as u64) ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:016x}", x ^ (x >> 31))
}

/// Whether the command is in the root directory (checked before booting).
fn has_command(root: &Path, c: &Container) -> bool {
    let cmd = &c.args[0];
    let exists = |p: &Path| {
        armboard_firmware::deb::resolve_in_root(root, p, false).is_ok_and(|h| h.is_file())
    };
    if cmd.contains('/') {
        let p = if cmd.starts_with('/') {
            PathBuf::from(cmd)
        } else {
            Path::new(&c.cwd).join(cmd)
        };
        exists(&p)
    } else {
        c.path()
            .split(':')
            .filter(|d| !d.is_empty())
            .any(|d| exists(&Path::new(d).join(cmd)))
    }
}

#[derive(PartialEq)]
enum State {
    Boot,
    Stdout,
    AfterExit,
    Stderr,
    Done,
}

/// Splits the console stream at the guest's markers.
struct Filter {
    prefix: Vec<u8>,
    pending: Vec<u8>,
    state: State,
    verbose: bool,
    log: Vec<u8>,
    exit: Option<i32>,
    oom: u32,
    pids: u32,
    not_found: bool,
    fail: Option<String>,
    skip_newline: bool,
    /// With `verbose`: when the board started, to time the markers.
    started: Option<std::time::Instant>,
}

impl Filter {
    fn new(nonce: &str, verbose: bool) -> Filter {
        Filter {
            prefix: format!("@@{nonce}-").into_bytes(),
            pending: Vec::new(),
            state: State::Boot,
            verbose,
            log: Vec::new(),
            exit: None,
            oom: 0,
            pids: 0,
            not_found: false,
            fail: None,
            skip_newline: false,
            started: None,
        }
    }

    fn text(&mut self, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        match self.state {
            State::Boot | State::AfterExit | State::Done => {
                if self.verbose {
                    let mut e = std::io::stderr();
                    let _ = e.write_all(b);
                }
                if self.state == State::Boot {
                    self.log.extend_from_slice(b);
                    if self.log.len() > 1 << 20 {
                        self.log.drain(..self.log.len() - (64 << 10));
                    }
                }
            }
            State::Stdout => {
                let mut o = std::io::stdout();
                let _ = o.write_all(b);
                let _ = o.flush();
            }
            State::Stderr => {
                let mut e = std::io::stderr();
                let _ = e.write_all(b);
            }
        }
    }

    fn marker(&mut self, body: &str) {
        if let (true, Some(t)) = (self.verbose, self.started) {
            eprintln!("[armboard: marker {body} after {:.1?}]", t.elapsed());
        }
        let mut w = body.split_whitespace();
        match w.next() {
            Some("START") if self.state == State::Boot => self.state = State::Stdout,
            Some("EXIT") if self.state == State::Stdout => {
                let mut num = || w.next().and_then(|v| v.parse::<i64>().ok());
                self.exit = Some(num().unwrap_or(EXIT_ERROR as i64) as i32);
                self.oom = num().unwrap_or(0) as u32;
                self.pids = num().unwrap_or(0) as u32;
                self.state = State::AfterExit;
            }
            Some("STDERR") if self.state == State::AfterExit => {
                self.state = State::Stderr;
                // The newline the guest printed after the marker is not the container's.
                self.skip_newline = true;
            }
            Some("END") if self.state == State::Stderr => self.state = State::Done,
            Some("NOTFOUND") if self.state == State::Boot => self.not_found = true,
            Some("FAIL") if self.state == State::Boot => {
                self.fail = Some(body.trim_start_matches("FAIL").trim().to_string())
            }
            _ => {}
        }
    }

    fn feed(&mut self, b: &[u8]) {
        self.pending.extend_from_slice(b);
        loop {
            if self.skip_newline && !self.pending.is_empty() {
                let n = match &self.pending[..] {
                    [b'\r', b'\n', ..] => 2,
                    [b'\n', ..] => 1,
                    [b'\r'] => break,
                    _ => 0,
                };
                self.pending.drain(..n);
                self.skip_newline = false;
            }
            let p = std::mem::take(&mut self.pending);
            if let Some(i) = find(&p, &self.prefix) {
                let rest = &p[i + self.prefix.len()..];
                if let Some(j) = find(rest, b"@@") {
                    self.text(&p[..i]);
                    let body = String::from_utf8_lossy(&rest[..j]).into_owned();
                    self.marker(&body);
                    self.pending = rest[j + 2..].to_vec();
                    continue;
                }
                if rest.len() > 200 {
                    // Not a marker after all.
                    self.text(&p[..i + 1]);
                    self.pending = p[i + 1..].to_vec();
                    continue;
                }
                self.text(&p[..i]);
                self.pending = p[i..].to_vec();
                break;
            }
            // Keep a tail that may be the start of a marker.
            let keep = (1..self.prefix.len().min(p.len() + 1))
                .rev()
                .find(|&k| p.ends_with(&self.prefix[..k]))
                .unwrap_or(0);
            self.text(&p[..p.len() - keep]);
            self.pending = p[p.len() - keep..].to_vec();
            break;
        }
    }

    fn finish(&mut self) {
        let p = std::mem::take(&mut self.pending);
        self.text(&p);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_splits_the_console_at_the_markers() {
        let mut f = Filter::new("abc", false);
        let stream = b"[ boot ]\n@@abc-START@@out @@ab put\n@@abc-EXIT 3 1 0@@\r\n@@abc-STDERR@@\r\noops\n@@abc-END@@\nreboot";
        // Fed one byte at a time, markers split across reads.
        for b in stream.chunks(1) {
            f.feed(b);
        }
        f.finish();
        assert_eq!(f.exit, Some(3));
        assert_eq!(f.oom, 1);
        assert_eq!(f.pids, 0);
        assert_eq!(f.log, b"[ boot ]\n");
        assert!(f.state == State::Done);
    }

    #[test]
    fn filter_sees_not_found_and_failures() {
        let mut f = Filter::new("n", false);
        f.feed(b"log @@n-NOTFOUND@@\n");
        assert!(f.not_found && f.exit.is_none());
        let mut f = Filter::new("n", false);
        f.feed(b"@@n-FAIL cannot mount@@");
        assert_eq!(f.fail.as_deref(), Some("cannot mount"));
        // Another nonce is just text.
        let mut f = Filter::new("n", false);
        f.feed(b"@@m-START@@");
        f.finish();
        assert!(f.state == State::Boot);
    }
}
