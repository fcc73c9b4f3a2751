//! Boot Debian bookworm's arm64 kernel on the `virt` board with an initramfs built here from
//! busybox-static, and check what the guest reports. The kernel and busybox are fetched into
//! the cache on first use (these tests never skip).

mod board;

use board::{armboard, expect_error, host_epoch, value};
use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

/// Modules the checks need: virtio-mmio transport, disk, rng, ext4 (which needs a crc32c
/// implementation: a soft dependency modinfo does not list).
const MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_blk",
    "virtio_rng",
    "crc32c_generic",
    "ext4",
];

/// The guest's /init: set up, report, exercise the devices, power off.
const INIT: &str = r#"#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
@MODULES@
echo ARMBOARD-BOOT-OK
echo "cpus=$(grep -c ^processor /proc/cpuinfo)"
echo "online=$(cat /sys/devices/system/cpu/online)"
echo "epoch=$(date +%s)"
[ -e /dev/rtc0 ] && echo "rtc=$(cat /sys/class/rtc/rtc0/since_epoch)"
echo "rng=$(head -c 16 /dev/hwrng | od -An -tx1 | tr -d ' \n')"
@STATIC_KEY@
if [ -b /dev/vda ]; then
  mount -t ext4 /dev/vda /mnt && echo "disk=$(cat /mnt/hello)"
  echo "written by the guest" > /mnt/from-guest
  sync
  umount /mnt
fi
echo ARMBOARD-DONE
poweroff -f
"#;

struct Guest {
    kernel: PathBuf,
    initrd: PathBuf,
}

fn work_dir() -> PathBuf {
    board::work_dir("boot_virt")
}

fn guest() -> &'static Guest {
    static G: OnceLock<Guest> = OnceLock::new();
    G.get_or_init(|| {
        let k = board::kernel();
        let initrd = work_dir().join("initrd.cpio.gz");
        board::busybox_initramfs(&k, INIT, MODULES, &initrd);
        Guest {
            kernel: k.image,
            initrd,
        }
    })
}

fn boot(engine: &str, smp: &str, extra: &[&str]) -> (String, Output) {
    let g = guest();
    let mut args = vec![
        "boot",
        "--machine",
        "virt",
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
    args.extend_from_slice(extra);
    let out = armboard(&args, Duration::from_secs(900));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("ARMBOARD-DONE"),
        "boot failed: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (stdout, out)
}

fn check_devices(out: &str) {
    let rtc: u64 = value(out, "rtc=").parse().unwrap();
    assert!(rtc.abs_diff(host_epoch()) < 600, "RTC says {rtc}");
    let epoch: u64 = value(out, "epoch=").parse().unwrap();
    assert!(epoch.abs_diff(host_epoch()) < 600, "date says {epoch}");
    let rng = value(out, "rng=");
    assert_eq!(rng.len(), 32, "16 bytes from /dev/hwrng: {rng}");
    assert_ne!(rng, "00000000000000000000000000000000");
}

#[test]
fn debian_kernel_boots_to_busybox_under_the_interpreter() {
    let (out, _) = boot("interp", "2", &[]);
    assert_eq!(value(&out, "cpus="), "2");
    check_devices(&out);
    // A static key enabled on CPU 0 is seen on CPU 1 (instruction-cache maintenance is
    // broadcast).
    assert_eq!(value(&out, "schedstats="), "11");
}

#[test]
fn debian_kernel_boots_with_four_cpus_under_the_default_engine() {
    let (out, _) = boot("tiered", "4", &[]);
    assert_eq!(value(&out, "cpus="), "4");
    assert_eq!(value(&out, "online="), "0-3");
    check_devices(&out);
    assert_eq!(value(&out, "schedstats="), "1111");
}

#[test]
fn virtio_disk_mounts_and_keeps_what_the_guest_wrote() {
    let dir = work_dir();
    let img = board::make_ext4(&dir, "disk.ext4", "32M", &[("hello", "made on the host\n")]);
    let drive = img.to_str().unwrap().to_string();
    let (out, _) = boot("tiered", "2", &["--drive", &drive]);
    assert_eq!(value(&out, "disk="), "made on the host");
    check_devices(&out);
    assert_eq!(board::ext4_cat(&img, "/from-guest"), "written by the guest");
}

#[test]
fn kernel_panic_ends_the_run_with_its_text_and_timeouts_stop_it() {
    let k = guest().kernel.to_str().unwrap();
    // No initrd and no disk: the kernel cannot mount a root filesystem.
    let out = armboard(
        &[
            "boot",
            "--memory",
            "256M",
            "--kernel",
            k,
            "--append",
            "console=ttyAMA0",
        ],
        Duration::from_secs(600),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(11), "{err}");
    assert!(err.contains("Unable to mount root fs"), "{err}");
    // A guest that does not finish in time is stopped.
    let out = armboard(
        &["boot", "--kernel", k, "--timeout", "1"],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(12));
    assert!(String::from_utf8_lossy(&out.stderr).contains("within 1 s"));
}

#[test]
fn bad_boot_inputs_give_clear_errors() {
    let dir = work_dir();
    let g = guest();
    let k = g.kernel.to_str().unwrap();
    expect_error(
        &["boot", "--kernel", "/nonexistent/Image"],
        "/nonexistent/Image",
    );
    let not_image = dir.join("not-an-image");
    std::fs::write(&not_image, vec![0x5au8; 100_000]).unwrap();
    expect_error(
        &["boot", "--kernel", not_image.to_str().unwrap()],
        "not-an-image",
    );
    let big = dir.join("big-initrd");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(200 << 20).unwrap();
    expect_error(
        &[
            "boot",
            "--memory",
            "128M",
            "--kernel",
            k,
            "--initrd",
            big.to_str().unwrap(),
        ],
        "does not fit",
    );
    let bad_dtb = dir.join("bad.dtb");
    std::fs::write(&bad_dtb, b"this is not a device tree").unwrap();
    expect_error(
        &["boot", "--kernel", k, "--dtb", bad_dtb.to_str().unwrap()],
        "bad.dtb",
    );
}

/// Modules of the network check: the transport and the NIC driver (its failover
/// dependencies come along).
const NET_MODULES: &[&str] = &["virtio_mmio", "virtio_net"];

/// The network check's /init: configure eth0 by hand, ping the user network's gateway.
const NET_INIT: &str = r#"#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
@MODULES@
echo ARMBOARD-BOOT-OK
for i in $(seq 1 30); do [ -e /sys/class/net/eth0 ] && break; sleep 1; done
echo "mac=$(cat /sys/class/net/eth0/address)"
echo "driver=$(basename "$(readlink /sys/class/net/eth0/device/driver)")"
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
if ping -c 1 -W 10 10.0.2.2; then echo "ping=ok"; else echo "ping=failed"; fi
echo "rx=$(cat /sys/class/net/eth0/statistics/rx_packets) tx=$(cat /sys/class/net/eth0/statistics/tx_packets)"
echo ARMBOARD-DONE
poweroff -f
"#;

#[test]
fn virtio_net_pings_the_user_network_gateway() {
    let k = board::kernel();
    let initrd = work_dir().join("net-initrd.cpio.gz");
    board::busybox_initramfs(&k, NET_INIT, NET_MODULES, &initrd);
    let out = board::armboard_ok(
        &[
            "boot",
            "--machine",
            "virt",
            "--smp",
            "2",
            "--memory",
            "512M",
            "--kernel",
            k.image.to_str().unwrap(),
            "--initrd",
            initrd.to_str().unwrap(),
            "--append",
            "console=ttyAMA0 panic=-1",
        ],
        "ARMBOARD-DONE",
    );
    assert_eq!(value(&out, "mac="), "52:54:00:12:34:56");
    // The virtio device's driver; the NIC sits on a virtio bus device.
    assert_eq!(value(&out, "driver="), "virtio_net");
    assert_eq!(value(&out, "ping="), "ok", "{out}");
}
