//! `armboard boot --clock icount`: guest time follows retired instructions, so booting the
//! same kernel and initramfs twice prints the same bytes, kernel timestamps, RTC, and
//! virtio-rng output included. Debian bookworm's arm64 kernel and busybox-static are fetched
//! into the cache on first use (these tests never skip).

mod board;

use board::{armboard, value};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

const MODULES: &[&str] = &["virtio_mmio", "virtio_rng"];

/// The guest's /init: report what depends on time and randomness, then power off.
const INIT: &str = r#"#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
@MODULES@
echo ARMBOARD-BOOT-OK
echo "cpus=$(grep -c ^processor /proc/cpuinfo)"
echo "rtc=$(cat /sys/class/rtc/rtc0/since_epoch)"
echo "uptime=$(cat /proc/uptime)"
echo "rng=$(head -c 16 /dev/hwrng | od -An -tx1 | tr -d ' \n')"
echo "urandom=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
sleep 1
echo "uptime=$(cat /proc/uptime)"
echo ARMBOARD-DONE
poweroff -f
"#;

/// The RTC's start under icount on virt (machines::virt::ICOUNT_EPOCH: 2024-01-01).
const ICOUNT_EPOCH: u64 = 1_704_067_200;

struct Guest {
    kernel: PathBuf,
    initrd: PathBuf,
}

fn guest() -> &'static Guest {
    static G: OnceLock<Guest> = OnceLock::new();
    G.get_or_init(|| {
        let k = board::kernel();
        let initrd = board::work_dir("boot_icount").join("initrd.cpio.gz");
        board::busybox_initramfs(&k, INIT, MODULES, &initrd);
        Guest {
            kernel: k.image,
            initrd,
        }
    })
}

/// Boot under `--clock icount`; the console output of a successful run.
fn boot(engine: &str, smp: &str) -> Vec<u8> {
    let g = guest();
    let args = [
        "boot",
        "--machine",
        "virt",
        "--clock",
        "icount",
        "--engine",
        engine,
        "--smp",
        smp,
        "--memory",
        "512M",
        "--kernel",
        g.kernel.to_str().unwrap(),
        "--initrd",
        g.initrd.to_str().unwrap(),
        "--append",
        "console=ttyAMA0 panic=-1",
    ];
    let out = armboard(&args, Duration::from_secs(900));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code() == Some(0) && stdout.contains("ARMBOARD-DONE"),
        "boot failed: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// One `--smp 1` boot under the default (tiered) engine, shared by the tests.
fn tiered_run() -> &'static [u8] {
    static OUT: OnceLock<Vec<u8>> = OnceLock::new();
    OUT.get_or_init(|| boot("tiered", "1"))
}

/// Where two outputs first differ, for a readable failure.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let line = |s: &[u8]| {
        let start = s[..at.min(s.len())]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |p| p + 1);
        let end = s[start..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(s.len(), |p| start + p);
        String::from_utf8_lossy(&s[start..end]).into_owned()
    };
    format!(
        "outputs differ at byte {at} (lengths {} and {}):\n  {}\n  {}",
        a.len(),
        b.len(),
        line(a),
        line(b)
    )
}

#[test]
fn two_icount_boots_under_the_default_engine_print_the_same_bytes() {
    let a = tiered_run();
    let b = boot("tiered", "1");
    assert!(a == b.as_slice(), "{}", first_difference(a, &b));
    let out = String::from_utf8_lossy(a);
    // Guest time, not host time: the RTC starts at the fixed epoch, the kernel's clock runs
    // and `sleep 1` takes one guest second.
    let rtc: u64 = value(&out, "rtc=").parse().unwrap();
    assert!(
        (ICOUNT_EPOCH..ICOUNT_EPOCH + 60).contains(&rtc),
        "RTC says {rtc}"
    );
    let uptimes: Vec<f64> = out
        .lines()
        .filter_map(|l| l.strip_prefix("uptime="))
        .map(|u| u.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(uptimes.len(), 2, "{out}");
    assert!(
        uptimes[1] - uptimes[0] >= 1.0 && uptimes[1] - uptimes[0] < 1.5,
        "{uptimes:?}"
    );
    assert_eq!(value(&out, "rng=").len(), 32);
    assert!(out.contains("[    0.000000] Linux version"), "{out}");
}

/// Interpreted and compiled code stop at the same block boundaries (budgets and interrupt
/// checks sit between blocks under both), so the two engines give the same run too.
#[test]
fn an_icount_boot_under_the_interpreter_prints_what_the_tiered_engine_prints() {
    let interp = boot("interp", "1");
    let tiered = tiered_run();
    assert!(
        interp.as_slice() == tiered,
        "{}",
        first_difference(&interp, tiered)
    );
}

/// With several CPUs, icount runs them in turn on one host thread in fixed slices.
#[test]
fn two_icount_boots_with_two_cpus_print_the_same_bytes() {
    let a = boot("tiered", "2");
    let b = boot("tiered", "2");
    assert!(a == b, "{}", first_difference(&a, &b));
    assert_eq!(value(&String::from_utf8_lossy(&a), "cpus="), "2");
}

/// The Raspberry Pi 3 B's guest: its RNG and watchdog (which powers it off) are modules.
fn pi_initrd() -> &'static PathBuf {
    static I: OnceLock<PathBuf> = OnceLock::new();
    I.get_or_init(|| {
        let initrd = board::work_dir("boot_icount").join("pi-initrd.cpio.gz");
        let init = INIT.replace("/sys/class/rtc/rtc0/since_epoch", "/proc/loadavg");
        board::busybox_initramfs(
            &board::kernel(),
            &init,
            &["bcm2835_rng", "bcm2835_wdt"],
            &initrd,
        );
        initrd
    })
}

/// The four cores of a Pi 3 B in turn on one thread, its SoC timers and RNG on guest time
/// and seeds: two boots print the same bytes.
#[test]
fn two_icount_boots_of_the_pi3b_print_the_same_bytes() {
    let k = board::kernel();
    let dtb = k.dtb_dir().join("broadcom/bcm2837-rpi-3-b.dtb");
    let boot = || {
        let args = [
            "boot",
            "--machine",
            "raspi3b",
            "--clock",
            "icount",
            "--kernel",
            k.image.to_str().unwrap(),
            "--dtb",
            dtb.to_str().unwrap(),
            "--initrd",
            pi_initrd().to_str().unwrap(),
            "--append",
            "console=ttyAMA0 panic=-1",
        ];
        board::armboard_ok(&args, "ARMBOARD-DONE").into_bytes()
    };
    let (a, b) = (boot(), boot());
    assert!(a == b, "{}", first_difference(&a, &b));
    let out = String::from_utf8_lossy(&a);
    assert_eq!(value(&out, "cpus="), "4");
    assert_eq!(value(&out, "rng=").len(), 32);
}
