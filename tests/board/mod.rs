//! What the board tests share (boot_virt, boot_raspi): running armboard with a time limit,
//! building a busybox initramfs around a test's /init, reading the guest's `key=value` report.
#![allow(dead_code)] // each test crate uses part of it

use armboard_firmware::deb::Sysroot;
use armboard_firmware::initramfs::{Compression, Initramfs};
use armboard_firmware::kernel::DebianKernel;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory for this test crate, under cargo's target tmpdir.
pub fn work_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Debian's arm64 kernel package, fetched into the cache on first use.
pub fn kernel() -> DebianKernel {
    DebianKernel::ensure().expect("fetching Debian's arm64 kernel")
}

/// Shell lines an /init may hold (`@STATIC_KEY@`): after every CPU has run the code, CPU 0
/// enables schedstats, a static key whose branch in /proc/PID/sched is taken by the CPU the
/// reader runs on, and `schedstats=` gets one digit per CPU (1: it sees the patched kernel
/// text; instruction-cache maintenance must reach every vCPU).
pub const STATIC_KEY_CHECK: &str = r#"n=$(grep -c ^processor /proc/cpuinfo)
sched() { for c in $(seq 0 $((n - 1))); do taskset -c $c cat /proc/self/sched | grep -c sum_sleep_runtime; done | tr -d '\n'; }
sched >/dev/null; sched >/dev/null
taskset -c 0 sh -c 'echo 1 > /proc/sys/kernel/sched_schedstats'
echo "schedstats=$(sched)""#;

/// A gzip initramfs at `out`: busybox-static, the kernel's `modules` (with their
/// dependencies, loaded in order where `init` says `@MODULES@`) and `init` as /init, with
/// [`STATIC_KEY_CHECK`] where it says `@STATIC_KEY@`.
pub fn busybox_initramfs(k: &DebianKernel, init: &str, modules: &[&str], out: &std::path::Path) {
    let bb = Sysroot::ensure(&["busybox-static"]).expect("fetching busybox-static");
    let busybox = bb
        .find_program("busybox")
        .expect("busybox in busybox-static");
    let mods = k
        .module_set()
        .and_then(|s| s.resolve(modules))
        .expect("resolving modules");
    let mut fs = Initramfs::busybox(&busybox, "").unwrap();
    let load = fs.modules("lib/modules", &mods).unwrap();
    let init = init
        .replace("@MODULES@", &load)
        .replace("@STATIC_KEY@", STATIC_KEY_CHECK);
    fs.file("init", 0o755, init).unwrap();
    fs.write_to(out, Compression::Gzip).unwrap();
}

/// Run armboard with a time limit (a hung guest fails the test instead of hanging it).
pub fn armboard(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_armboard"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "armboard {args:?} did not finish in {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Run armboard and require exit status 0 and `marker` in its output; returns stdout.
pub fn armboard_ok(args: &[&str], marker: &str) -> String {
    let out = armboard(args, Duration::from_secs(900));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains(marker),
        "armboard {args:?}: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The value of the guest's `key...` line.
pub fn value<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.trim_end().strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in the guest's output:\n{out}"))
}

pub fn host_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Run armboard expecting exit status 125 (bad input) and `what` in its error.
pub fn expect_error(args: &[&str], what: &str) {
    let out = armboard(args, Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{args:?}: {err}");
    assert!(err.contains(what), "{args:?}: expected {what:?} in {err}");
}

/// An ext4 image of `size` made by mke2fs from a directory holding `files`.
pub fn make_ext4(dir: &std::path::Path, name: &str, size: &str, files: &[(&str, &str)]) -> PathBuf {
    let root = dir.join(format!("{name}-root"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    for (f, text) in files {
        std::fs::write(root.join(f), text).unwrap();
    }
    let img = dir.join(name);
    let _ = std::fs::remove_file(&img);
    let st = Command::new("mke2fs")
        .args(["-q", "-t", "ext4", "-d"])
        .arg(&root)
        .arg(&img)
        .arg(size)
        .status()
        .expect("mke2fs (e2fsprogs) is needed");
    assert!(st.success());
    img
}

/// A file's contents in an ext4 image, read on the host with e2fsprogs' debugfs.
pub fn ext4_cat(img: &std::path::Path, path: &str) -> String {
    let cat = Command::new("debugfs")
        .args(["-R", &format!("cat {path}")])
        .arg(img)
        .output()
        .unwrap();
    String::from_utf8_lossy(&cat.stdout).trim().to_string()
}

/// A Raspberry Pi 3 B guest: Debian's kernel, its unmodified `bcm2837-rpi-3-b.dtb` and a
/// busybox initramfs.
pub struct PiGuest {
    pub kernel: PathBuf,
    pub dtb: PathBuf,
    pub initrd: PathBuf,
}

impl PiGuest {
    /// Build the initramfs (`init` as /init, `modules` loaded) in `test`'s work directory.
    pub fn build(test: &str, init: &str, modules: &[&str]) -> PiGuest {
        let k = kernel();
        let initrd = work_dir(test).join("initrd.cpio.gz");
        busybox_initramfs(&k, init, modules, &initrd);
        let dtb = k.dtb_dir().join("broadcom/bcm2837-rpi-3-b.dtb");
        assert!(dtb.exists(), "Debian's Pi 3 B device tree at {dtb:?}");
        PiGuest {
            kernel: k.image,
            dtb,
            initrd,
        }
    }

    /// `armboard boot` of this guest on the Pi 3 B, directly (kernel, dtb, initramfs).
    pub fn boot_args<'a>(&'a self, engine: &'a str, append: &'a str) -> Vec<&'a str> {
        vec![
            "boot",
            "--machine",
            "raspi3b",
            "--engine",
            engine,
            "--kernel",
            self.kernel.to_str().unwrap(),
            "--dtb",
            self.dtb.to_str().unwrap(),
            "--initrd",
            self.initrd.to_str().unwrap(),
            "--append",
            append,
        ]
    }
}
