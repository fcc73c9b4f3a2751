//! Guest images for `armboard run`: Debian bookworm's arm64 kernel with an initramfs that
//! boots straight into one OCI container run by `crun`.
//!
//! The image has two parts:
//!
//! * the **base** (cached): busybox, the kernel modules the guest needs, `crun` with the
//!   shared libraries it links (found by walking the ELF `DT_NEEDED` entries in a sysroot of
//!   the `crun` package) and the dynamic loader, and the two init stages. It is stored
//!   gzip-compressed as `guests/<key>.cpio.gz` (podman's uncompressed, `.cpio`) in the package cache, `key` hashing the exact
//!   package versions, the module list and the init scripts, so a second build only checks
//!   the key.
//! * the **run archive** (per run, uncompressed): `container/config.json` (the OCI runtime
//!   configuration), `container/cmd` and `container/path` for the guest's "is the command
//!   there" check. Linux unpacks concatenated cpio archives in order, so the initrd handed to
//!   the kernel is simply base ++ run archive.
//!
//! Guest side: stage 1 (`/init`, on the initramfs) mounts the pseudo file systems, loads the
//! modules (the disk and ext4 ones only with `armboard_disk=1`), bind-mounts `/` on
//! `/newroot`, moves that mount over `/` and chroots into it: `pivot_root` (which crun uses
//! to enter the container's root) refuses to work while the initramfs itself is the root
//! mount, and a bind mount on top of it is a root it accepts, without copying any file.
//! Stage 2 mounts cgroup2, `/run`, `/tmp`, mounts the container's root (the first virtio
//! disk when there is one, else a busybox root made on the spot), silences the kernel's
//! console messages (`printk` level 1: emergencies only) and runs `crun run` with the
//! cgroupfs manager; the container's stdout is the console (with output post-processing
//! off, so its bytes arrive unchanged), its stderr a file. What the host sees on the console
//! is then:
//!
//! ```text
//! <boot log>@@N-START@@<container stdout>@@N-EXIT code oom pids@@
//! @@N-STDERR@@<container stderr>@@N-END@@
//! ```
//!
//! where `N` is a nonce the host passes on the kernel command line (`armboard_nonce=N`, which
//! the kernel gives init as an environment variable), so the container cannot forge the
//! markers. `oom` and `pids` count the kernel's "memory cgroup out of memory" and "fork
//! rejected by pids controller" messages during the run. Instead of `EXIT`, the guest prints
//! `@@N-NOTFOUND@@` when the command is not in the container, or `@@N-FAIL why@@`.
//!
//! Volumes (`armboard run --volume`, [`Volume`]): each is an ext4 file system labelled by
//! the host on a disk of the board; every stage 2 mounts the ones listed in the run
//! archive's `container/volumes` on `/volumes/LABEL` before the container starts, the
//! runtime bind-mounts them, and they are unmounted before the power-off so the host can
//! read them back.
//!
//! Each [`Runtime`] has its own base image: crun's as above; runc's runs the same bundle
//! with `runc run`; containerd's (containerd, ctr, containerd-shim-runc-v2, runc) has a
//! stage 2 that starts containerd, imports the OCI archive the host put on `/dev/vda`
//! with `ctr images import` and runs it with `ctr run --rm` (arguments in the run
//! archive's `container/ctr-args`), with the same markers; podman's (podman, conmon, crun)
//! runs `podman run --rm oci-archive:/dev/vda` (or `docker-archive:`; rootful, no network,
//! cgroupfs, no events, vfs storage in the `/run` tmpfs; arguments in
//! `container/podman-args`); docker's (dockerd, docker, containerd, its runc shim, runc and
//! iptables) starts containerd and dockerd on it (rootful, cgroupfs, overlay2 storage in
//! tmpfs, and by default Docker's bridge network: docker0 with its iptables NAT out of the
//! board's NIC, see `STAGE2_DOCKER`), `docker load`s the archive on `/dev/vda` (always a
//! docker archive: Docker 20.10 reads no OCI layout, so the host writes one, see
//! `oci::docker_archive`) and runs it with `docker run --rm` (arguments in
//! `container/docker-args`). Under `armboard run -v` on the 2-core host (loaded), a busybox
//! image's first output line comes after about 74 s on the bridge (the image is loaded at
//! 43 s; dockerd's network set-up is about 10 s of that) and 49 s with `--network none`.

use crate::deb::{self, Cache, DebError, Sysroot};
use crate::initramfs::{Compression, Initramfs, InitramfsError};
use crate::kernel::{DebianKernel, KernelError, Module, ModuleSet};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Bump when the layout of the base image changes without the scripts changing.
const FORMAT: &str = "armboard-guest-1";

/// Kernel modules the guest always loads: the virtio transport and the RNG (entropy for the
/// guest from the start).
pub const MODULES: &[&str] = &["virtio_mmio", "virtio_rng"];

/// Modules a Raspberry Pi guest loads (`armboard_board=raspi`): the SD host controller the
/// container's disk is on, and the watchdog, which powers the board off.
pub const PI_MODULES: &[&str] = &["bcm2835", "bcm2835_wdt"];

/// Modules loaded only when the container's root is on a disk (`armboard_disk=1` on the
/// kernel command line): loading ext4 costs seconds under emulation.
pub const DISK_MODULES: &[&str] = &["virtio_blk", "crc32c_generic", "ext4", "overlay"];

/// The Debian packages the base image is made of.
pub const PACKAGES: &[&str] = &["busybox-static", "crun"];

/// Why a guest image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error(transparent)]
    Deb(#[from] DebError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Initramfs(#[from] InitramfsError),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}")]
    Missing(String),
}

fn io_err(p: &Path) -> impl FnOnce(std::io::Error) -> GuestError + '_ {
    move |e| GuestError::Io(p.to_path_buf(), e)
}

/// A built base image.
#[derive(Clone, Debug)]
pub struct GuestImage {
    /// The kernel (Debian's `vmlinuz`).
    pub kernel: PathBuf,
    /// The kernel package's device trees (e.g. `broadcom/bcm2837-rpi-3-b.dtb`).
    pub dtbs: PathBuf,
    /// The base initramfs (newc cpio, gzip-compressed but for podman's).
    pub initrd: PathBuf,
    /// Its cache key.
    pub key: String,
    /// True when it came from the cache.
    pub cached: bool,
}

/// Stage 1: runs on the initramfs; ends in stage 2 with a bind mount of the initramfs moved
/// over `/` (a root that is not the initramfs itself, so crun's `pivot_root` works; no copy).
const STAGE1: &str = r#"#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
read up rest < /proc/uptime; echo "armboard-init: stage 1 at ${up}s"
@MODULES@
if [ "$armboard_board" = raspi ]; then
@PI_MODULES@
fi
if [ -n "$armboard_disk" ] || [ -s /container/volumes ]; then
@DISK_MODULES@
fi
read up rest < /proc/uptime; echo "armboard-init: modules loaded at ${up}s"
mkdir -p /newroot
mount --bind / /newroot
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
cd /newroot
mount --move . /
exec chroot . /armboard/stage2
"#;

/// Stage 2: PID 1 on the tmpfs root; runs the container and powers off.
const STAGE2: &str = r#"#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
@HEAD@
mkdir -p /sys/fs/cgroup /run /tmp /dev/pts /dev/shm $B/rootfs
@MOUNTS@
echo armboard > /proc/sys/kernel/hostname
if [ -n "$armboard_disk" ]; then
@WAIT_DISK@
  mount -t ext4 $D $B/rootfs || fail "cannot mount the container's disk"
else
  # A busybox root: the guest's busybox (hard-linked), its applets as links to
  # /bin/busybox, which is the same path inside the container.
  mkdir -p $B/rootfs/bin $B/rootfs/proc $B/rootfs/dev $B/rootfs/sys $B/rootfs/tmp $B/rootfs/etc $B/rootfs/root
  ln /bin/busybox $B/rootfs/bin/busybox
  /bin/busybox --install -s $B/rootfs/bin
  echo 'root:x:0:0:root:/root:/bin/sh' > $B/rootfs/etc/passwd
  echo 'root:x:0:' > $B/rootfs/etc/group
fi
read -r cmd < $B/cmd
read -r path < $B/path
found=
case "$cmd" in
  */*) { [ -e "$B/rootfs/$cmd" ] || [ -L "$B/rootfs/$cmd" ]; } && found=1 ;;
  *) IFS=:; for d in $path; do
       { [ -e "$B/rootfs/$d/$cmd" ] || [ -L "$B/rootfs/$d/$cmd" ]; } && found=1
     done; unset IFS ;;
esac
if [ -z "$found" ]; then mark NOTFOUND; echo; poweroff -f; fi
read up rest < /proc/uptime; echo "armboard-init: starting the container at ${up}s"
@START@
@RUN@
@REPORT@
"#;

/// Stage 2's pieces, shared by the runtimes' scripts (`@NAME@` in them):
/// `@HEAD@`, the console markers (`mark`, `fail`), the run archive's directory `$B`, and
/// the clock set from `armboard_time=SECONDS` (a board without a real-time clock, as the
/// Pi 3, starts at 1970; the host passes its time as an NTP client would set it).
const HEAD: &str = r#"N="$armboard_nonce"
read up rest < /proc/uptime; echo "armboard-init: stage 2 at ${up}s"
[ -n "$armboard_time" ] && date -u -s "@$armboard_time" >/dev/null
mark() { printf '@@%s-%s@@' "$N" "$*"; }
fail() { mark "FAIL $*"; echo; poweroff -f; }
B=/container"#;

/// `@MOUNTS@`: cgroup2 and the `/run` and `/tmp` tmpfs.
const MOUNTS: &str = r#"mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "cannot mount cgroup2"
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp"#;

/// `@VOLUMES@`: the volumes in `$B/volumes` (lines of `LABEL ro|rw`; see [`Volume`]), each
/// an ext4 file system found by its label (disks appear as their controllers probe them:
/// 10 s at most) and mounted on `/volumes/LABEL`, where the runtime's bind mounts take it.
const VOLUMES: &str = r#"if [ -s $B/volumes ]; then
  while read -r label mode; do
    dev=
    for i in $(seq 1 40); do dev=$(findfs LABEL=$label 2>/dev/null) && break; usleep 250000; done
    [ -n "$dev" ] || fail "no disk for the volume $label"
    mkdir -p /volumes/$label
    mount -t ext4 -o $mode $dev /volumes/$label || fail "cannot mount the volume $label ($dev)"
  done < $B/volumes
fi"#;

/// `@UNMOUNT_VOLUMES@`: the volumes unmounted after the run (read-only if something still
/// holds one), so the host finds clean file systems to copy back.
const UNMOUNT_VOLUMES: &str = r#"sync
for v in /volumes/*; do [ -d "$v" ] && { umount "$v" 2>/dev/null || mount -o remount,ro "$v"; }; done"#;

/// `@IMAGE_DISK@`: the disk with the image archive of the runtimes that import one, `$D`.
const IMAGE_DISK: &str = r#"@WAIT_DISK@
[ -b $D ] || fail "no disk with the image archive""#;

/// `@START_CONTAINERD@`: containerd with [`CONTAINERD_TOML`], waited for.
const START_CONTAINERD: &str = r#"export CONTAINERD_ADDRESS=/run/containerd/containerd.sock CONTAINERD_NAMESPACE=armboard CONTAINERD_SNAPSHOTTER=native
containerd --config /armboard/containerd.toml >/run/containerd.log 2>&1 &
@WAIT_CONTAINERD@"#;

/// A wait for the daemon `name` to create `socket` (3 minutes at most; then the end of its
/// `log` and a failure).
fn wait_socket(socket: &str, log: &str, name: &str) -> String {
    format!(
        r#"i=0
while [ ! -S {socket} ]; do
  i=$((i + 1))
  if [ $i -gt 1800 ]; then tail -n 20 {log}; fail "{name} did not start"; fi
  sleep 0.1
done
read up rest < /proc/uptime; echo "armboard-init: {name} is up at ${{up}}s""#
    )
}

/// `@START@`: quiet kernel, raw console, the START marker; the container's command follows.
const START: &str = r#"echo 1 > /proc/sys/kernel/printk
stty -opost -echo 2>/dev/null
mark START"#;

/// `@REPORT@`: after the container's command: the EXIT marker with its status and the OOM
/// and pids counts, its stderr (from `/run/stderr`), power off.
const REPORT: &str = r#"code=$?
counts=$(dmesg | awk '/Memory cgroup out of memory/ {o++} /fork rejected by pids controller/ {p++} END {print o+0, p+0}')
mark "EXIT $code $counts"
echo
read up rest < /proc/uptime; echo "armboard-init: container done at ${up}s"
@AFTER_RUN@
mark STDERR
cat /run/stderr
mark END
echo
@UNMOUNT_VOLUMES@
poweroff -f"#;

/// `script` with its `@NAME@` pieces filled in.
fn expand(script: &str) -> String {
    script
        .replace("@HEAD@", HEAD)
        .replace("@MOUNTS@", &format!("{MOUNTS}\n{VOLUMES}"))
        .replace("@IMAGE_DISK@", IMAGE_DISK)
        .replace("@START_CONTAINERD@", START_CONTAINERD)
        .replace(
            "@WAIT_CONTAINERD@",
            &wait_socket("$CONTAINERD_ADDRESS", "/run/containerd.log", "containerd"),
        )
        .replace(
            "@WAIT_DOCKERD@",
            &wait_socket("/run/docker.sock", "/run/dockerd.log", "dockerd"),
        )
        .replace("@START@", START)
        .replace("@REPORT@", REPORT)
        .replace("@UNMOUNT_VOLUMES@", UNMOUNT_VOLUMES)
        .replace("@AFTER_RUN@\n", "")
        .replace("@WAIT_DISK@", WAIT_DISK)
}

/// The OCI runtime the guest runs the container with; each has its own base image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Runtime {
    /// `crun run` on a bundle the guest prepares (the default, smallest image).
    #[default]
    Crun,
    /// `runc run` on the same bundle.
    Runc,
    /// containerd started by the guest's init; `ctr images import` of an OCI archive on
    /// the first virtio disk, then `ctr run --rm` (runc through containerd's v2 shim).
    Containerd,
    /// `podman load` of an OCI or docker archive on the first virtio disk, then `podman run
    /// --rm` (conmon and crun below it).
    Podman,
    /// dockerd (over the guest's containerd, runc below it); `docker load` of a docker
    /// archive on the first virtio disk (the host turns an OCI layout into one), then
    /// `docker run --rm`.
    Docker,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Crun => "crun",
            Runtime::Runc => "runc",
            Runtime::Containerd => "containerd",
            Runtime::Podman => "podman",
            Runtime::Docker => "docker",
        }
    }

    /// The Debian packages (besides busybox-static) the image takes programs from.
    pub fn packages(self) -> &'static [&'static str] {
        match self {
            Runtime::Crun => &["crun"],
            Runtime::Runc => &["runc"],
            Runtime::Containerd => &["containerd", "runc"],
            Runtime::Podman => &["podman", "conmon", "crun"],
            Runtime::Docker => &["docker.io", "containerd", "runc", "iptables"],
        }
    }

    /// The programs the image holds (in `usr/bin`, with their libraries).
    pub fn programs(self) -> &'static [&'static str] {
        match self {
            Runtime::Crun => &["crun"],
            Runtime::Runc => &["runc"],
            Runtime::Containerd => &["containerd", "ctr", "containerd-shim-runc-v2", "runc"],
            Runtime::Podman => &["podman", "conmon", "crun"],
            Runtime::Docker => &[
                "dockerd",
                "docker",
                "containerd",
                "containerd-shim-runc-v2",
                "runc",
            ],
        }
    }

    /// How the base image is stored. podman's is kept uncompressed: its programs are
    /// large (podman alone is 31 MB), and inflating them in the emulated kernel at boot
    /// costs more time than reading the bigger file.
    fn compression(self) -> Compression {
        match self {
            Runtime::Podman | Runtime::Docker => Compression::None,
            _ => Compression::Gzip,
        }
    }

    /// True for the runtimes that import an image archive (on the first disk) themselves
    /// instead of running a bundle the guest prepares.
    pub fn imports_image(self) -> bool {
        matches!(
            self,
            Runtime::Containerd | Runtime::Podman | Runtime::Docker
        )
    }

    /// The configuration files of the image: `(path, mode, contents)`.
    fn config_files(self) -> &'static [(&'static str, u32, &'static str)] {
        match self {
            Runtime::Crun | Runtime::Runc => &[],
            Runtime::Containerd => &[("armboard/containerd.toml", 0o644, CONTAINERD_TOML)],
            Runtime::Podman => PODMAN_FILES,
            Runtime::Docker => DOCKER_FILES,
        }
    }

    /// The modules the guest always loads: containerd's and podman's image archive is on a
    /// disk.
    pub fn modules(self) -> Vec<&'static str> {
        let mut m = MODULES.to_vec();
        if self.imports_image() {
            m.extend(CONTAINERD_MODULES);
        }
        if self == Runtime::Docker {
            m.extend(DOCKER_MODULES);
        }
        m
    }

    /// The modules of [`PI_NET_MODULES`] the runtime's guest has.
    pub fn pi_net_modules(self) -> &'static [&'static str] {
        match self {
            Runtime::Docker => PI_NET_MODULES,
            _ => &[],
        }
    }

    /// Stage 2 with the runtime's command filled in.
    fn stage2(self) -> String {
        let script = match self {
            Runtime::Crun => STAGE2.replace("@RUN@", RUN_CRUN),
            Runtime::Runc => STAGE2.replace("@RUN@", RUN_RUNC),
            Runtime::Containerd => STAGE2_CONTAINERD.to_string(),
            Runtime::Podman => STAGE2_PODMAN.to_string(),
            Runtime::Docker => {
                STAGE2_DOCKER.replace("@REPORT@", &REPORT.replace("@AFTER_RUN@", DOCKER_AFTER_RUN))
            }
        };
        expand(&script)
    }
}

/// Modules of the containerd guest beyond [`MODULES`]: the disk holding the image archive.
pub const CONTAINERD_MODULES: &[&str] = &["virtio_blk"];

/// Modules of the docker guest beyond [`CONTAINERD_MODULES`]: overlayfs (the overlay2
/// storage driver), the board's NIC, and what Docker's default bridge network needs: the
/// bridge and veth pairs, and the legacy iptables tables and matches dockerd's rules use
/// (filter, nat with MASQUERADE, addrtype, conntrack; nf_nat and nf_conntrack come as
/// their dependencies).
pub const DOCKER_MODULES: &[&str] = &[
    "overlay",
    "virtio_net",
    "bridge",
    "veth",
    "iptable_filter",
    "iptable_nat",
    "xt_MASQUERADE",
    "xt_addrtype",
    "xt_conntrack",
];

/// Modules the docker guest loads on a Raspberry Pi when its container is on the bridge
/// (from `armboard/pi-net-modules`, a script of `insmod`s): the on-board Ethernet, the
/// DWC2 USB host controller (with its no-op PHY) and the LAN9514's SMSC95xx function with
/// its PHY's driver.
pub const PI_NET_MODULES: &[&str] = &["phy_generic", "dwc2", "smsc", "usbnet", "smsc95xx"];

/// The iptables of the docker guest: Debian's `xtables-legacy-multi` (the legacy backend:
/// its tables are the `ip_tables` modules, fewer than nf_tables with its compat layer
/// needs), installed as `iptables` and the extensions dockerd's rules load (iptables
/// `dlopen`s them from its library directory).
const IPTABLES: &str = "xtables-legacy-multi";
const IPTABLES_LINKS: &[&str] = &["iptables", "iptables-save", "iptables-restore"];
const XTABLES_DIR: &str = "usr/lib/aarch64-linux-gnu/xtables";
const XTABLES_EXTENSIONS: &[&str] = &[
    "libxt_standard.so",
    "libxt_MASQUERADE.so",
    "libxt_addrtype.so",
    "libxt_conntrack.so",
    "libxt_DNAT.so",
    "libxt_tcp.so",
    "libxt_udp.so",
    "libipt_icmp.so",
];

/// Stage 2's wait for the container's disk, `$D` (the first virtio disk, or the SD card on a
/// Pi, which appears only once its controller has probed it).
const WAIT_DISK: &str = "D=${armboard_disk_dev:-/dev/vda}
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do [ -b $D ] && break; usleep 250000; done";

const RUN_CRUN: &str =
    "crun --cgroup-manager=cgroupfs run --bundle $B armboard </dev/null 2>/run/stderr";
const RUN_RUNC: &str = "runc run --bundle $B armboard </dev/null 2>/run/stderr";

/// containerd's configuration: state and content in the `/run` tmpfs, the native
/// snapshotter (plain copies: no overlay module, and image layers are small), no CRI.
const CONTAINERD_TOML: &str = r#"version = 2
root = "/run/containerd/root"
state = "/run/containerd/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.overlayfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "/run/containerd/containerd.sock"
"#;

/// Stage 2 of the containerd guest: starts containerd, imports the OCI archive on
/// `/dev/vda` as `armboard/image:latest`, runs it with `ctr run --rm` (the arguments the
/// host wrote to `container/ctr-args`) and reports as [`STAGE2`] does. The guest's hostname
/// is the container's (ctr has no hostname option; the container's new UTS namespace
/// starts with a copy).
const STAGE2_CONTAINERD: &str = r#"#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
@HEAD@
mkdir -p /sys/fs/cgroup /run /tmp /dev/pts /dev/shm
@MOUNTS@
read -r host < $B/hostname
echo "$host" > /proc/sys/kernel/hostname
@IMAGE_DISK@
@START_CONTAINERD@
ctr images import --index-name armboard/image:latest $D >/run/import.log 2>&1 || { tail -n 20 /run/import.log; fail "ctr images import failed"; }
read up rest < /proc/uptime; echo "armboard-init: image imported at ${up}s; starting the container"
. $B/ctr-args
@START@
ctr run --rm "$@" </dev/null 2>/run/stderr
@REPORT@
"#;

/// The podman guest's configuration: containers.conf (cgroupfs, no events, logs to a file,
/// temporary files in `/run`), storage.conf (vfs in the `/run` tmpfs), a signature policy
/// that accepts the local archive, and the passwd/group podman looks root up in.
const PODMAN_FILES: &[(&str, u32, &str)] = &[
    (
        "etc/containers/containers.conf",
        0o644,
        r#"[containers]
log_driver = "k8s-file"
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "none"
runtime = "crun"
tmp_dir = "/run/libpod"
image_copy_tmp_dir = "/run/tmp"
"#,
    ),
    (
        "etc/containers/storage.conf",
        0o644,
        r#"[storage]
driver = "vfs"
runroot = "/run/containers/run"
graphroot = "/run/containers/storage"
"#,
    ),
    (
        "etc/containers/policy.json",
        0o644,
        "{\"default\": [{\"type\": \"insecureAcceptAnything\"}]}\n",
    ),
    ("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\n"),
    ("etc/group", 0o644, "root:x:0:\n"),
];

/// Stage 2 of the podman guest: `podman run --rm` of the archive on `/dev/vda` (through
/// the containers-image transport in `container/transport`, `oci-archive` or
/// `docker-archive`: podman copies it into its storage first, as `podman load` would, in
/// the same process), with the arguments the host wrote to `container/podman-args`;
/// reports as [`STAGE2`] does. podman's own errors (exit status 125) are in the
/// container's stderr.
const STAGE2_PODMAN: &str = r#"#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/run/tmp
@HEAD@
mkdir -p /sys/fs/cgroup /run /tmp /dev/pts /dev/shm /var/tmp
@MOUNTS@
mkdir -p /run/tmp /run/libpod
echo armboard > /proc/sys/kernel/hostname
@IMAGE_DISK@
P="podman --cgroup-manager cgroupfs --events-backend none --storage-driver vfs --root /run/containers/storage --runroot /run/containers/run"
read -r transport < $B/transport
. $B/podman-args
read up rest < /proc/uptime; echo "armboard-init: podman run of $transport:$D at ${up}s"
@START@
$P run --quiet "$@" "$transport:$D" </dev/null 2>/run/stderr
@REPORT@
"#;

/// The docker guest's configuration: containerd's (dockerd uses the guest's containerd) and
/// the group dockerd looks its socket's group up in.
const DOCKER_FILES: &[(&str, u32, &str)] = &[
    ("armboard/containerd.toml", 0o644, CONTAINERD_TOML),
    ("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\n"),
    ("etc/group", 0o644, "root:x:0:\n"),
];

/// Stage 2 of the docker guest: starts containerd, then dockerd on it (rootful, cgroupfs,
/// data root in the `/run` tmpfs) and runs the container with `docker run` and the
/// arguments the host wrote to `container/docker-args`, after `docker load`ing the archive
/// on `/dev/vda` (tagged [`CTR_IMAGE`] by the host); reports as [`STAGE2`] does. docker's
/// own errors (exit status 125) are in the container's stderr.
///
/// Storage is overlay2 (overlayfs with its upper directories on the tmpfs) when the kernel
/// has overlayfs, else vfs (plain copies), said on the console; if dockerd still cannot
/// start with overlay2, it is started again with vfs. With `bridge` in `container/network`
/// (on a Pi after loading [`PI_NET_MODULES`]; eth0 is waited for 10 s at most) the guest's
/// eth0 (the board's NIC, on the user network) gets 10.0.2.15/24 with the
/// gateway 10.0.2.2 as its default route, and dockerd makes its default bridge (docker0,
/// 172.17.0.1/16) with its iptables rules (forwarding, MASQUERADE of the bridge's traffic
/// out of eth0); after the run the console says how many packets that rule rewrote. With
/// `none`, dockerd runs without a bridge and without iptables, and `docker run` gets
/// `--network none`.
const STAGE2_DOCKER: &str = r#"#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
@HEAD@
mkdir -p /sys/fs/cgroup /run /tmp /dev/pts /dev/shm
@MOUNTS@
echo armboard > /proc/sys/kernel/hostname
ip link set lo up
read -r network < $B/network
if [ "$network" = bridge ]; then
  net=
  if [ "$armboard_board" = raspi ]; then . /armboard/pi-net-modules; fi
  i=0
  while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do i=$((i + 1)); usleep 100000; done
  if [ -e /sys/class/net/eth0 ]; then
    read up rest < /proc/uptime; echo "armboard-init: eth0 at ${up}s"
    ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up && ip route add default via 10.0.2.2
  else
    echo "armboard-init: no eth0: containers reach the guest over docker0 only"
  fi
else
  net="--iptables=false --ip6tables=false --ip-forward=false --ip-masq=false --bridge=none"
fi
driver=vfs
if grep -qw overlay /proc/filesystems; then driver=overlay2; else echo "armboard-init: the kernel has no overlayfs; docker stores images with vfs (copies)"; fi
@IMAGE_DISK@
@START_CONTAINERD@
export DOCKER_HOST=unix:///run/docker.sock
start_dockerd() {
  rm -f /run/docker.sock
  dockerd --containerd $CONTAINERD_ADDRESS --host $DOCKER_HOST --data-root /run/docker-data --exec-root /run/docker --pidfile /run/docker.pid \
    --exec-opt native.cgroupdriver=cgroupfs --storage-driver $driver --log-driver none $net --userland-proxy=false >/run/dockerd.log 2>&1 &
  dockerd_pid=$!
}
start_dockerd
@WAIT_DOCKERD@
if ! docker load --quiet --input $D >/run/load.log 2>&1; then
  if [ $driver = overlay2 ] && ! grep -qs '^State:.*[RSD]' /proc/$dockerd_pid/status; then
    tail -n 5 /run/dockerd.log
    echo "armboard-init: dockerd did not start with overlay2; starting it with vfs"
    driver=vfs
    start_dockerd
@WAIT_DOCKERD@
    docker load --quiet --input $D >/run/load.log 2>&1
  else
    false
  fi || { tail -n 20 /run/load.log /run/dockerd.log; fail "docker load failed"; }
fi
read up rest < /proc/uptime; echo "armboard-init: image loaded at ${up}s (storage driver $driver, network $network); starting the container"
. $B/docker-args
@START@
docker run "$@" </dev/null 2>/run/stderr
@REPORT@
"#;

/// The docker guest's `@AFTER_RUN@` (in [`REPORT`], after the container, on the console):
/// how many packets the bridge's MASQUERADE rule rewrote.
const DOCKER_AFTER_RUN: &str = r#"[ "$network" = bridge ] && iptables -t nat -L POSTROUTING -n -v -x | awk '/MASQUERADE/ && /172\.17\./ {print "armboard-init: docker0 MASQUERADE rule: " $1 " packets"}'"#;

/// The base image, from the cache at `$ARMBOARD_CACHE` (built if needed).
pub fn ensure() -> Result<GuestImage, GuestError> {
    ensure_in(&Cache::from_env()?)
}

/// As [`ensure`], with the cache at `cache`.
pub fn ensure_in(cache: &Cache) -> Result<GuestImage, GuestError> {
    ensure_runtime_in(cache, Runtime::Crun)
}

/// The base image for `runtime`, from the cache at `$ARMBOARD_CACHE` (built if needed).
pub fn ensure_runtime(runtime: Runtime) -> Result<GuestImage, GuestError> {
    ensure_runtime_in(&Cache::from_env()?, runtime)
}

/// As [`ensure_runtime`], with the cache at `cache`.
pub fn ensure_runtime_in(cache: &Cache, runtime: Runtime) -> Result<GuestImage, GuestError> {
    let kernel = DebianKernel::ensure_in(cache)?;
    let bb = cache.sysroot(&["busybox-static"])?;
    let rt = cache.sysroot(runtime.packages())?;
    let stage2 = runtime.stage2();
    let mut id = format!(
        "{FORMAT}\n{STAGE1}\n{stage2}\n{} {} {}\nkernel {} {}\n",
        runtime.modules().join(","),
        DISK_MODULES.join(","),
        PI_MODULES.join(","),
        kernel.package.name,
        kernel.package.version
    );
    if !runtime.pi_net_modules().is_empty() {
        let _ = writeln!(id, "pi-net {}", runtime.pi_net_modules().join(","));
    }
    if runtime != Runtime::Crun {
        let _ = writeln!(id, "runtime {}\n{CONTAINERD_TOML}", runtime.name());
    }
    for (path, mode, text) in runtime.config_files() {
        if runtime != Runtime::Containerd {
            let _ = writeln!(id, "file {path} {mode:o}\n{text}");
        }
    }
    for p in bb.packages.iter().chain(&rt.packages) {
        let _ = writeln!(id, "{} {} {}", p.name, p.version, p.arch);
    }
    let key = format!("{:016x}", deb::fnv1a(id.as_bytes()));
    let dir = cache.dir().join("guests");
    let ext = match runtime.compression() {
        Compression::Gzip => "cpio.gz",
        Compression::None => "cpio",
    };
    let path = dir.join(format!("{key}.{ext}"));
    if path.is_file() && !deb::refresh_requested() {
        return Ok(GuestImage {
            dtbs: kernel.dtb_dir(),
            kernel: kernel.image,
            initrd: path,
            key,
            cached: true,
        });
    }
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let fs = base_image(&kernel, &bb, &rt, runtime, &stage2)?;
    let tmp = dir.join(format!(".tmp-{key}-{}", std::process::id()));
    let r = fs
        .write_to(&tmp, runtime.compression())
        .map_err(GuestError::from)
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(io_err(&path)));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r?;
    Ok(GuestImage {
        dtbs: kernel.dtb_dir(),
        kernel: kernel.image,
        initrd: path,
        key,
        cached: false,
    })
}

fn base_image(
    kernel: &DebianKernel,
    bb: &Sysroot,
    rt: &Sysroot,
    runtime: Runtime,
    stage2: &str,
) -> Result<Initramfs, GuestError> {
    let busybox = bb
        .find_program("busybox")
        .ok_or_else(|| GuestError::Missing("busybox-static has no busybox".into()))?;
    let set = kernel.module_set()?;
    let mods = set.resolve(&runtime.modules())?;
    let mut fs = Initramfs::busybox(&busybox, "")?;
    let load = fs.modules("armboard/modules", &mods)?;
    let disk_mods = modules_beyond(&set, DISK_MODULES, &[&mods])?;
    let load_disk = fs.modules("armboard/modules", &disk_mods)?;
    let pi_mods = modules_beyond(&set, PI_MODULES, &[&mods, &disk_mods])?;
    let load_pi = fs.modules("armboard/modules", &pi_mods)?;
    if !runtime.pi_net_modules().is_empty() {
        // Not less the disk modules (crc16 is ext4's too): the images that have these
        // import their image and load no disk modules.
        let pi_net = modules_beyond(&set, runtime.pi_net_modules(), &[&mods, &pi_mods])?;
        let load = fs.modules("armboard/modules", &pi_net)?;
        fs.file("armboard/pi-net-modules", 0o644, load)?;
    }
    fs.file(
        "init",
        0o755,
        STAGE1
            .replace("@MODULES@", &load)
            .replace("@PI_MODULES@", &load_pi)
            .replace("@DISK_MODULES@", &load_disk),
    )?;
    fs.file("armboard/stage2", 0o755, stage2)?;
    for (path, mode, text) in runtime.config_files() {
        fs.file(path, *mode, *text)?;
    }
    fs.dir("container/rootfs", 0o755)?;
    fs.dir("run", 0o755)?;
    // The merged-/usr layout the loader and libraries expect.
    fs.symlink("lib", "usr/lib")?;
    fs.symlink(
        "usr/lib/ld-linux-aarch64.so.1",
        "aarch64-linux-gnu/ld-linux-aarch64.so.1",
    )?;
    for prog in runtime.programs() {
        let host = rt.find_program(prog).ok_or_else(|| {
            GuestError::Missing(format!("{:?} have no {prog}", runtime.packages()))
        })?;
        add_elf_with_libs(&mut fs, &rt.path, &host, &format!("usr/bin/{prog}"))?;
    }
    if runtime == Runtime::Docker {
        add_iptables(&mut fs, rt)?;
    }
    Ok(fs)
}

/// `names` and their dependencies, less the modules of `loaded` (groups an init script
/// loads before these).
fn modules_beyond(
    set: &ModuleSet,
    names: &[&str],
    loaded: &[&[Module]],
) -> Result<Vec<Module>, GuestError> {
    let before = |m: &Module| {
        loaded
            .iter()
            .flat_map(|l| l.iter())
            .any(|n| n.name == m.name)
    };
    Ok(set
        .resolve(names)?
        .into_iter()
        .filter(|m| !before(m))
        .collect())
}

/// [`IPTABLES`] as `usr/sbin/iptables` (and its other names), with its extensions.
fn add_iptables(fs: &mut Initramfs, rt: &Sysroot) -> Result<(), GuestError> {
    let missing = |what: &str| GuestError::Missing(format!("the iptables package has no {what}"));
    let host = rt.find_program(IPTABLES).ok_or_else(|| missing(IPTABLES))?;
    add_elf_with_libs(fs, &rt.path, &host, &format!("usr/sbin/{IPTABLES}"))?;
    for name in IPTABLES_LINKS {
        fs.symlink(&format!("usr/sbin/{name}"), IPTABLES)?;
    }
    for ext in XTABLES_EXTENSIONS {
        let p = rt.path.join(XTABLES_DIR).join(ext);
        if !p.is_file() {
            return Err(missing(&format!("{XTABLES_DIR}/{ext}")));
        }
        add_elf_with_libs(fs, &rt.path, &p, &format!("{XTABLES_DIR}/{ext}"))?;
    }
    Ok(())
}

/// Library directories searched for `DT_NEEDED` names, inside the sysroot.
const LIB_DIRS: &[&str] = &[
    "usr/lib/aarch64-linux-gnu",
    "lib/aarch64-linux-gnu",
    "usr/lib",
    "lib",
];

/// Adds the ELF program `host` as `dest`, and every shared library it needs (transitively),
/// found in `root`, as `usr/lib/aarch64-linux-gnu/<name>`.
pub fn add_elf_with_libs(
    fs: &mut Initramfs,
    root: &Path,
    host: &Path,
    dest: &str,
) -> Result<(), GuestError> {
    let data = std::fs::read(host).map_err(io_err(host))?;
    let mut todo = needed(&data, host)?;
    fs.file(dest, 0o755, data)?;
    let mut done = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !done.insert(name.clone()) {
            continue;
        }
        let found = LIB_DIRS.iter().find_map(|d| {
            let p = deb::resolve_in_root(root, &Path::new(d).join(&name), false).ok()?;
            p.is_file().then_some(p)
        });
        let Some(p) = found else {
            return Err(GuestError::Missing(format!(
                "{}: library {name} is not in {}",
                host.display(),
                root.display()
            )));
        };
        let lib = std::fs::read(&p).map_err(io_err(&p))?;
        todo.extend(needed(&lib, &p)?);
        fs.file(&format!("usr/lib/aarch64-linux-gnu/{name}"), 0o755, lib)?;
    }
    Ok(())
}

/// The `DT_NEEDED` names of an ELF file.
fn needed(data: &[u8], path: &Path) -> Result<Vec<String>, GuestError> {
    let elf = goblin::elf::Elf::parse(data)
        .map_err(|e| GuestError::Missing(format!("{}: not an ELF file: {e}", path.display())))?;
    Ok(elf.libraries.iter().map(|s| s.to_string()).collect())
}

/// Where the container's root comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootSource {
    /// A busybox root the guest makes from its own busybox.
    Busybox,
    /// The first virtio disk (an ext4 file system).
    Disk,
}

/// One container run, as the OCI runtime configuration describes it.
#[derive(Clone, Debug)]
pub struct Container {
    pub args: Vec<String>,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    pub cwd: String,
    pub hostname: String,
    /// cgroup v2 `memory.max`, bytes.
    pub memory: Option<u64>,
    /// cgroup v2 `pids.max`.
    pub pids: Option<u64>,
    pub root: RootSource,
    /// The container's network (the docker guest's: the others have none).
    pub network: Network,
    /// Host directories the container sees (`armboard run --volume`).
    pub volumes: Vec<Volume>,
}

/// A volume: an ext4 file system on one of the board's disks (found by its label), bind-
/// mounted in the container at `target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// The file system's label (at most 16 bytes, no spaces).
    pub label: String,
    /// The absolute path in the container.
    pub target: String,
    pub readonly: bool,
}

impl Volume {
    /// Where the guest mounts it before the container starts.
    pub fn source(&self) -> String {
        format!("/volumes/{}", self.label)
    }

    fn mode(&self) -> &'static str {
        if self.readonly {
            "ro"
        } else {
            "rw"
        }
    }
}

/// A container's network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// A loopback interface only.
    #[default]
    None,
    /// Docker's default bridge (docker0, 172.17.0.0/16), NATed out of the board's NIC.
    Bridge,
}

impl Network {
    pub fn name(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Bridge => "bridge",
        }
    }
}

/// The PATH a container gets when its environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Container {
    /// The default container: busybox printing a greeting.
    pub fn greeting() -> Container {
        Container {
            args: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo \"Hello from a container on an emulated $(uname -m) board: \
                 $(uname -sr), hostname $(hostname), PID $$\""
                    .into(),
            ],
            env: Vec::new(),
            cwd: "/".into(),
            hostname: "container".into(),
            memory: None,
            pids: None,
            root: RootSource::Busybox,
            network: Network::None,
            volumes: Vec::new(),
        }
    }

    /// The environment with `PATH` and `HOME` defaults added when missing.
    pub fn full_env(&self) -> Vec<String> {
        let mut env = self.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, format!("PATH={DEFAULT_PATH}"));
        }
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push("HOME=/root".into());
        }
        env
    }

    /// The PATH the command is looked up in.
    pub fn path(&self) -> String {
        self.full_env()
            .iter()
            .find_map(|e| e.strip_prefix("PATH=").map(str::to_string))
            .unwrap_or_else(|| DEFAULT_PATH.into())
    }

    /// The OCI runtime configuration (`config.json`).
    pub fn config_json(&self) -> String {
        let strs = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|s| json_str(s)).collect();
            format!("[{}]", items.join(", "))
        };
        let caps: Vec<String> = CAPS.iter().map(|c| c.to_string()).collect();
        let caps = strs(&caps);
        let mut res = Vec::new();
        if let Some(m) = self.memory {
            res.push(format!("\"memory\": {{\"limit\": {m}, \"swap\": {m}}}"));
        }
        if let Some(p) = self.pids {
            res.push(format!("\"pids\": {{\"limit\": {p}}}"));
        }
        let volumes: String = self
            .volumes
            .iter()
            .map(|v| {
                format!(
                    ",\n    {{\"destination\": {}, \"type\": \"bind\", \"source\": {}, \"options\": [\"rbind\", \"{}\"]}}",
                    json_str(&v.target),
                    json_str(&v.source()),
                    v.mode()
                )
            })
            .collect();
        format!(
            r#"{{
  "ociVersion": "1.0.2",
  "process": {{
    "terminal": false,
    "user": {{"uid": 0, "gid": 0}},
    "args": {args},
    "env": {env},
    "cwd": {cwd},
    "capabilities": {{"bounding": {caps}, "effective": {caps}, "permitted": {caps}}},
    "rlimits": [{{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}}],
    "noNewPrivileges": true
  }},
  "root": {{"path": "rootfs", "readonly": false}},
  "hostname": {hostname},
  "mounts": [
    {{"destination": "/proc", "type": "proc", "source": "proc"}},
    {{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}},
    {{"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}},
    {{"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}},
    {{"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}},
    {{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}},
    {{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}}{volumes}
  ],
  "linux": {{
    "cgroupsPath": "/armboard",
    "resources": {{{res}}},
    "namespaces": [{{"type": "pid"}}, {{"type": "network"}}, {{"type": "ipc"}}, {{"type": "uts"}}, {{"type": "mount"}}, {{"type": "cgroup"}}],
    "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }}
}}
"#,
            args = strs(&self.args),
            env = strs(&self.full_env()),
            cwd = json_str(&self.cwd),
            hostname = json_str(&self.hostname),
            res = res.join(", "),
        )
    }

    /// The per-run cpio archive (uncompressed) to append to the base image.
    pub fn run_archive(&self) -> Result<Vec<u8>, GuestError> {
        let mut fs = Initramfs::new();
        fs.file("container/config.json", 0o644, self.config_json())?;
        let cmd = self.args.first().cloned().unwrap_or_default();
        fs.file("container/cmd", 0o644, cmd)?;
        fs.file("container/path", 0o644, self.path())?;
        self.volumes_file(&mut fs)?;
        Ok(fs.to_cpio()?)
    }
}

impl Container {
    /// `container/volumes` for [`VOLUMES`] (none when there are no volumes).
    fn volumes_file(&self, fs: &mut Initramfs) -> Result<(), GuestError> {
        if self.volumes.is_empty() {
            return Ok(());
        }
        let lines: String = self
            .volumes
            .iter()
            .map(|v| format!("{} {}\n", v.label, v.mode()))
            .collect();
        fs.file("container/volumes", 0o644, lines)?;
        Ok(())
    }
}

/// The name the containerd and docker guests import the image archive as.
pub const CTR_IMAGE: &str = "armboard/image:latest";

impl Container {
    /// The arguments of the containerd guest's `ctr run --rm`: the environment (the
    /// image's with the overrides, as `--env`, which ctr puts over the image's), working
    /// directory, memory limit, the image, the container id and the whole command
    /// (Entrypoint included: ctr's arguments replace the image's Entrypoint and Cmd).
    pub fn ctr_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        for e in self.full_env() {
            a.push("--env".into());
            a.push(e);
        }
        a.push("--cwd".into());
        a.push(self.cwd.clone());
        if let Some(m) = self.memory {
            a.push("--memory-limit".into());
            a.push(m.to_string());
        }
        for v in &self.volumes {
            a.push("--mount".into());
            a.push(format!(
                "type=bind,src={},dst={},options=rbind:{}",
                v.source(),
                v.target,
                v.mode()
            ));
        }
        a.push(CTR_IMAGE.into());
        a.push("armboard".into());
        a.extend(self.args.iter().cloned());
        a
    }

    /// The per-run archive of the containerd guest: `container/hostname`, and
    /// `container/ctr-args`, a shell `set --` line with [`Container::ctr_args`].
    pub fn ctr_run_archive(&self) -> Result<Vec<u8>, GuestError> {
        let mut fs = Initramfs::new();
        fs.file("container/hostname", 0o644, format!("{}\n", self.hostname))?;
        fs.file("container/ctr-args", 0o644, set_line(&self.ctr_args()))?;
        self.volumes_file(&mut fs)?;
        Ok(fs.to_cpio()?)
    }
}

impl Container {
    /// The settings podman's and docker's `run` share, as options: `--rm`, `--network none`
    /// unless the container is on the engine's default network, the hostname, the
    /// environment (as `--env`, over the image's), working directory, limits, no seccomp
    /// filter (as the bundle runtimes).
    fn engine_args(&self) -> Vec<String> {
        let mut a = vec!["--rm".to_string()];
        if self.network == Network::None {
            a.push("--network".into());
            a.push("none".into());
        }
        a.push("--hostname".into());
        a.push(self.hostname.clone());
        for e in self.full_env() {
            a.push("--env".into());
            a.push(e);
        }
        a.push("--workdir".into());
        a.push(self.cwd.clone());
        if let Some(m) = self.memory {
            a.push("--memory".into());
            a.push(m.to_string());
        }
        if let Some(p) = self.pids {
            a.push("--pids-limit".into());
            a.push(p.to_string());
        }
        for v in &self.volumes {
            a.push("--volume".into());
            a.push(format!("{}:{}:{}", v.source(), v.target, v.mode()));
        }
        a.push("--security-opt".into());
        a.push("seccomp=unconfined".into());
        a
    }

    /// The arguments of the podman guest's `podman run` before the image: the
    /// [`engine_args`](Container::engine_args) and the whole command as a JSON
    /// `--entrypoint` (it replaces the image's Entrypoint and Cmd).
    pub fn podman_args(&self) -> Vec<String> {
        let mut a = self.engine_args();
        let words: Vec<String> = self.args.iter().map(|w| json_str(w)).collect();
        a.push("--entrypoint".into());
        a.push(format!("[{}]", words.join(",")));
        a
    }

    /// The arguments of the docker guest's `docker run`: the
    /// [`engine_args`](Container::engine_args), the command's program as `--entrypoint`
    /// (docker takes one word there; it replaces the image's Entrypoint and drops its Cmd),
    /// the image ([`CTR_IMAGE`]) and the command's arguments.
    pub fn docker_args(&self) -> Vec<String> {
        let mut a = self.engine_args();
        let (prog, rest) = self
            .args
            .split_first()
            .map_or(("", &[][..]), |(p, r)| (p, r));
        a.push("--entrypoint".into());
        a.push(prog.into());
        a.push(CTR_IMAGE.into());
        a.extend(rest.iter().cloned());
        a
    }

    /// The per-run archive of the podman guest: `container/transport` (how podman reads
    /// the image archive: `oci-archive` or `docker-archive`) and `container/podman-args`, a
    /// shell `set --` line with [`Container::podman_args`].
    pub fn podman_run_archive(&self, transport: &str) -> Result<Vec<u8>, GuestError> {
        let mut fs = Initramfs::new();
        fs.file("container/transport", 0o644, format!("{transport}\n"))?;
        fs.file(
            "container/podman-args",
            0o644,
            set_line(&self.podman_args()),
        )?;
        self.volumes_file(&mut fs)?;
        Ok(fs.to_cpio()?)
    }

    /// The per-run archive of the docker guest: `container/network` (`bridge` or `none`)
    /// and `container/docker-args`, a shell `set --` line with [`Container::docker_args`].
    pub fn docker_run_archive(&self) -> Result<Vec<u8>, GuestError> {
        let mut fs = Initramfs::new();
        fs.file(
            "container/network",
            0o644,
            format!("{}\n", self.network.name()),
        )?;
        fs.file(
            "container/docker-args",
            0o644,
            set_line(&self.docker_args()),
        )?;
        self.volumes_file(&mut fs)?;
        Ok(fs.to_cpio()?)
    }
}

/// A shell line that sets the positional parameters to `words`.
fn set_line(words: &[String]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| sh_quote(w)).collect();
    format!("set -- {}\n", quoted.join(" "))
}

/// `s` as one single-quoted shell word.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The capabilities a container gets (Docker's default set).
const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// `s` as a JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }

    #[test]
    fn ctr_arguments_carry_env_cwd_limit_and_the_whole_command() {
        let mut c = Container::greeting();
        c.args = vec!["/bin/sh".into(), "-c".into(), "echo 'it''s'\nexit 3".into()];
        c.env = vec!["A=1 2".into()];
        c.cwd = "/app".into();
        c.memory = Some(1 << 20);
        let a = c.ctr_args();
        let want: Vec<String> = [
            "--env",
            &format!("PATH={DEFAULT_PATH}"),
            "--env",
            "A=1 2",
            "--env",
            "HOME=/root",
            "--cwd",
            "/app",
            "--memory-limit",
            "1048576",
            CTR_IMAGE,
            "armboard",
            "/bin/sh",
            "-c",
            "echo 'it''s'\nexit 3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(a, want);
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        // The shell reads the words back unchanged.
        let script = format!(
            "set -- {}; for w in \"$@\"; do printf '%s\\0' \"$w\"; done",
            a.iter().map(|w| sh_quote(w)).collect::<Vec<_>>().join(" ")
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        let back: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .split_terminator('\0')
            .map(str::to_string)
            .collect();
        assert_eq!(back, want);
    }

    #[test]
    fn podman_arguments_carry_settings_and_the_whole_command_as_entrypoint() {
        let mut c = Container::greeting();
        c.args = vec!["/bin/sh".into(), "-c".into(), "echo \"hi\"\nexit 3".into()];
        c.env = vec!["A=1 2".into()];
        c.cwd = "/app".into();
        c.hostname = "box".into();
        c.memory = Some(1 << 20);
        c.pids = Some(9);
        let a = c.podman_args();
        let after = |flag: &str| {
            let i = a.iter().position(|x| x == flag).unwrap();
            a[i + 1].clone()
        };
        assert_eq!(a[0], "--rm");
        assert_eq!(after("--network"), "none");
        assert_eq!(after("--hostname"), "box");
        assert_eq!(after("--workdir"), "/app");
        assert_eq!(after("--memory"), "1048576");
        assert_eq!(after("--pids-limit"), "9");
        assert!(a.windows(2).any(|w| w == ["--env", "A=1 2"]));
        assert_eq!(
            a.last().unwrap(),
            r#"["/bin/sh","-c","echo \"hi\"\nexit 3"]"#
        );
        assert_eq!(a[a.len() - 2], "--entrypoint");
        let cpio = c.podman_run_archive("oci-archive").unwrap();
        assert!(find(&cpio, b"container/transport") && find(&cpio, b"oci-archive\n"));
    }

    #[test]
    fn docker_arguments_put_the_program_as_entrypoint_and_the_rest_after_the_image() {
        let mut c = Container::greeting();
        c.args = vec!["/bin/sh".into(), "-c".into(), "echo hi; exit 3".into()];
        c.hostname = "box".into();
        c.pids = Some(9);
        let a = c.docker_args();
        let n = a.len();
        assert_eq!(
            a[n - 5..],
            [
                "--entrypoint",
                "/bin/sh",
                CTR_IMAGE,
                "-c",
                "echo hi; exit 3"
            ]
        );
        assert_eq!(a[..n - 5], c.podman_args()[..c.podman_args().len() - 2]);
        assert!(a.windows(2).any(|w| w == ["--pids-limit", "9"]));
        let cpio = c.docker_run_archive().unwrap();
        assert!(find(&cpio, b"container/docker-args") && find(&cpio, b"'--entrypoint' '/bin/sh'"));
        assert!(find(&cpio, b"container/network") && find(&cpio, b"none\n"));
        // On docker's default bridge: no --network, and the guest is told to set it up.
        c.network = Network::Bridge;
        let a = c.docker_args();
        assert!(!a.iter().any(|x| x == "--network"), "{a:?}");
        assert_eq!(a[..2], ["--rm", "--hostname"]);
        let cpio = c.docker_run_archive().unwrap();
        assert!(find(&cpio, b"bridge\n") && !find(&cpio, b"'--network'"));
    }

    #[test]
    fn stage2_scripts_have_every_piece_filled_in() {
        for rt in [
            Runtime::Crun,
            Runtime::Runc,
            Runtime::Containerd,
            Runtime::Podman,
            Runtime::Docker,
        ] {
            let s = rt.stage2();
            if let Ok(d) = std::env::var("ARMBOARD_DUMP_STAGE2") {
                std::fs::write(format!("{d}/new-{}", rt.name()), &s).unwrap();
            }
            let parts: Vec<&str> = s.split('@').collect();
            let left: Vec<&str> = parts[1..parts.len() - 1]
                .iter()
                .copied()
                .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                .collect();
            assert!(left.is_empty(), "{}: {left:?} left in\n{s}", rt.name());
            assert!(
                s.starts_with("#!/bin/sh\n") && s.ends_with("poweroff -f\n"),
                "{s}"
            );
        }
    }

    fn find(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn config_carries_command_env_and_limits() {
        let mut c = Container::greeting();
        c.args = vec!["echo".into(), "hi \"there\"".into()];
        c.env = vec!["A=1".into()];
        c.memory = Some(64 << 20);
        c.pids = Some(10);
        let j = c.config_json();
        assert!(j.contains(r#""args": ["echo", "hi \"there\""]"#), "{j}");
        assert!(j.contains(&format!(
            r#""env": ["PATH={DEFAULT_PATH}", "A=1", "HOME=/root"]"#
        )));
        assert!(j.contains(r#""memory": {"limit": 67108864"#));
        assert!(j.contains(r#""pids": {"limit": 10}"#));
        assert_eq!(c.path(), DEFAULT_PATH);
        c.env.push("PATH=/x:/y".into());
        assert_eq!(c.path(), "/x:/y");
    }

    #[test]
    fn volumes_become_bind_mounts_of_every_runtime() {
        let mut c = Container::greeting();
        c.volumes = vec![
            Volume {
                label: "armboard-v0".into(),
                target: "/data".into(),
                readonly: false,
            },
            Volume {
                label: "armboard-v1".into(),
                target: "/in".into(),
                readonly: true,
            },
        ];
        let j = c.config_json();
        assert!(j.contains(r#"{"destination": "/data", "type": "bind", "source": "/volumes/armboard-v0", "options": ["rbind", "rw"]}"#), "{j}");
        assert!(
            j.contains(r#""source": "/volumes/armboard-v1", "options": ["rbind", "ro"]}"#),
            "{j}"
        );
        let ctr = c.ctr_args();
        assert!(ctr.windows(2).any(|w| w[0] == "--mount"
            && w[1] == "type=bind,src=/volumes/armboard-v1,dst=/in,options=rbind:ro"));
        let docker = c.docker_args();
        assert!(docker
            .windows(2)
            .any(|w| w[0] == "--volume" && w[1] == "/volumes/armboard-v0:/data:rw"));
        let mut fs = Initramfs::new();
        c.volumes_file(&mut fs).unwrap();
        let cpio = fs.to_cpio().unwrap();
        assert!(find(&cpio, b"armboard-v0 rw\narmboard-v1 ro\n"));
    }
}
