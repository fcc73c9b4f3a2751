//! Guest images for `armboard run`: Debian bookworm's arm64 kernel with an initramfs that
//! boots straight into one OCI container run by `crun`.
//!
//! The image has two parts:
//!
//! * the **base** (cached): busybox, the kernel modules the guest needs, `crun` with the
//!   shared libraries it links (found by walking the ELF `DT_NEEDED` entries in a sysroot of
//!   the `crun` package) and the dynamic loader, and the two init stages. It is stored
//!   gzip-compressed as `guests/<key>.cpio.gz` in the package cache, `key` hashing the exact
//!   package versions, the module list and the init scripts, so a second build only checks
//!   the key.
//! * the **run archive** (per run, uncompressed): `container/config.json` (the OCI runtime
//!   configuration), `container/cmd` and `container/path` for the guest's "is the command
//!   there" check. Linux unpacks concatenated cpio archives in order, so the initrd handed to
//!   the kernel is simply base ++ run archive.
//!
//! Guest side: stage 1 (`/init`, on the initramfs) mounts the pseudo file systems, loads the
//! modules and copies itself into a tmpfs, then `switch_root`s into it, because
//! `pivot_root` (which crun uses to enter the container's root) does not work while the
//! initramfs is the root. Stage 2 mounts cgroup2, `/run`, `/tmp`, mounts the container's
//! root (the first virtio disk when there is one, else a busybox root made on the spot),
//! silences the kernel's console messages, and runs `crun run`. What the host sees on the
//! console is then:
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

use crate::deb::{self, Cache, DebError, Sysroot};
use crate::initramfs::{Compression, Initramfs, InitramfsError};
use crate::kernel::{DebianKernel, KernelError};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Bump when the layout of the base image changes without the scripts changing.
const FORMAT: &str = "armboard-guest-1";

/// Kernel modules the guest loads: virtio transport, disk, rng, console; ext4 (with the
/// crc32c its metadata checksums need) for container disks; overlay for layered roots.
pub const MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_blk",
    "virtio_rng",
    "virtio_console",
    "crc32c_generic",
    "ext4",
    "overlay",
];

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
    /// The base initramfs (gzip-compressed newc cpio).
    pub initrd: PathBuf,
    /// Its cache key.
    pub key: String,
    /// True when it came from the cache.
    pub cached: bool,
}

/// Stage 1: runs on the initramfs, ends in stage 2 on a tmpfs copy of it.
const STAGE1: &str = r#"#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
@MODULES@
mkdir -p /newroot
mount -t tmpfs -o mode=0755 root /newroot
for e in /*; do
  case "$e" in /proc|/sys|/dev|/newroot) ;; *) cp -a "$e" /newroot/ ;; esac
done
mkdir -p /newroot/proc /newroot/sys /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
exec switch_root /newroot /armboard/stage2
"#;

/// Stage 2: PID 1 on the tmpfs root; runs the container and powers off.
const STAGE2: &str = r#"#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
N="$armboard_nonce"
mark() { printf '@@%s-%s@@' "$N" "$*"; }
fail() { mark "FAIL $*"; echo; poweroff -f; }
mkdir -p /sys/fs/cgroup /run /tmp /dev/pts /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "cannot mount cgroup2"
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp
hostname armboard
ip link set lo up 2>/dev/null
B=/container
mkdir -p $B/rootfs
if [ -b /dev/vda ]; then
  mount -t ext4 /dev/vda $B/rootfs || fail "cannot mount the container's disk"
else
  mkdir -p $B/rootfs/bin $B/rootfs/proc $B/rootfs/dev $B/rootfs/sys $B/rootfs/tmp $B/rootfs/etc $B/rootfs/root
  ln /bin/busybox $B/rootfs/bin/busybox
  mount -t proc proc $B/rootfs/proc
  chroot $B/rootfs /bin/busybox --install -s /bin
  umount $B/rootfs/proc
  echo 'root:x:0:0:root:/root:/bin/sh' > $B/rootfs/etc/passwd
  echo 'root:x:0:' > $B/rootfs/etc/group
fi
cmd="$(cat $B/cmd)"
found=
case "$cmd" in
  */*) { [ -e "$B/rootfs/$cmd" ] || [ -L "$B/rootfs/$cmd" ]; } && found=1 ;;
  *) IFS=:; for d in $(cat $B/path); do
       { [ -e "$B/rootfs/$d/$cmd" ] || [ -L "$B/rootfs/$d/$cmd" ]; } && found=1
     done; unset IFS ;;
esac
if [ -z "$found" ]; then mark NOTFOUND; echo; poweroff -f; fi
echo 1 > /proc/sys/kernel/printk
stty -opost -echo 2>/dev/null
mark START
crun --cgroup-manager=cgroupfs run --bundle $B armboard </dev/null 2>/run/stderr
code=$?
oom=$(dmesg | grep -c 'Memory cgroup out of memory')
pids=$(dmesg | grep -c 'fork rejected by pids controller')
mark "EXIT $code $oom $pids"
echo
mark STDERR
cat /run/stderr
mark END
echo
poweroff -f
"#;

/// The base image, from the cache at `$ARMBOARD_CACHE` (built if needed).
pub fn ensure() -> Result<GuestImage, GuestError> {
    ensure_in(&Cache::from_env()?)
}

/// As [`ensure`], with the cache at `cache`.
pub fn ensure_in(cache: &Cache) -> Result<GuestImage, GuestError> {
    let kernel = DebianKernel::ensure_in(cache)?;
    let bb = cache.sysroot(&["busybox-static"])?;
    let crun = cache.sysroot(&["crun"])?;
    let mut id = format!(
        "{FORMAT}\n{STAGE1}\n{STAGE2}\n{}\nkernel {} {}\n",
        MODULES.join(","),
        kernel.package.name,
        kernel.package.version
    );
    for p in bb.packages.iter().chain(&crun.packages) {
        let _ = writeln!(id, "{} {} {}", p.name, p.version, p.arch);
    }
    let key = format!("{:016x}", deb::fnv1a(id.as_bytes()));
    let dir = cache.dir().join("guests");
    let path = dir.join(format!("{key}.cpio.gz"));
    if path.is_file() && !deb::refresh_requested() {
        return Ok(GuestImage {
            kernel: kernel.image,
            initrd: path,
            key,
            cached: true,
        });
    }
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let fs = base_image(&kernel, &bb, &crun)?;
    let tmp = dir.join(format!(".tmp-{key}-{}", std::process::id()));
    let r = fs
        .write_to(&tmp, Compression::Gzip)
        .map_err(GuestError::from)
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(io_err(&path)));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r?;
    Ok(GuestImage {
        kernel: kernel.image,
        initrd: path,
        key,
        cached: false,
    })
}

fn base_image(
    kernel: &DebianKernel,
    bb: &Sysroot,
    crun: &Sysroot,
) -> Result<Initramfs, GuestError> {
    let busybox = bb
        .find_program("busybox")
        .ok_or_else(|| GuestError::Missing("busybox-static has no busybox".into()))?;
    let mods = kernel.module_set()?.resolve(MODULES)?;
    let mut fs = Initramfs::busybox(&busybox, "")?;
    let load = fs.modules("armboard/modules", &mods)?;
    fs.file("init", 0o755, STAGE1.replace("@MODULES@", &load))?;
    fs.file("armboard/stage2", 0o755, STAGE2)?;
    fs.dir("container/rootfs", 0o755)?;
    fs.dir("run", 0o755)?;
    // The merged-/usr layout the loader and libraries expect.
    fs.symlink("lib", "usr/lib")?;
    fs.symlink(
        "usr/lib/ld-linux-aarch64.so.1",
        "aarch64-linux-gnu/ld-linux-aarch64.so.1",
    )?;
    let crun_bin = crun
        .find_program("crun")
        .ok_or_else(|| GuestError::Missing("the crun package has no crun".into()))?;
    add_elf_with_libs(&mut fs, &crun.path, &crun_bin, "usr/bin/crun")?;
    Ok(fs)
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
    {{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}}
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
        Ok(fs.to_cpio()?)
    }
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
}
