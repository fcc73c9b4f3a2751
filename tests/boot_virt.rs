//! Boot Debian bookworm's arm64 kernel on the `virt` board with an initramfs built here from
//! busybox-static, and check what the guest reports. The kernel and busybox are fetched into
//! the cache on first use (these tests never skip).

use armboard_firmware::deb::Sysroot;
use armboard_firmware::initramfs::{Compression, Initramfs};
use armboard_firmware::kernel::DebianKernel;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("boot_virt");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn guest() -> &'static Guest {
    static G: OnceLock<Guest> = OnceLock::new();
    G.get_or_init(|| {
        let k = DebianKernel::ensure().expect("fetching Debian's arm64 kernel");
        let bb = Sysroot::ensure(&["busybox-static"]).expect("fetching busybox-static");
        let busybox = bb
            .find_program("busybox")
            .expect("busybox in busybox-static");
        let mods = k
            .module_set()
            .and_then(|s| s.resolve(MODULES))
            .expect("resolving modules");
        let mut fs = Initramfs::busybox(&busybox, "").unwrap();
        let load = fs.modules("lib/modules", &mods).unwrap();
        fs.file("init", 0o755, INIT.replace("@MODULES@", &load))
            .unwrap();
        let initrd = work_dir().join("initrd.cpio.gz");
        fs.write_to(&initrd, Compression::Gzip).unwrap();
        Guest {
            kernel: k.image,
            initrd,
        }
    })
}

/// Run armboard with a time limit (a hung guest fails the test instead of hanging it).
fn armboard(args: &[&str], limit: Duration) -> Output {
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

fn value<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.trim_end().strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in the guest's output:\n{out}"))
}

fn host_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
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
    let (out, _) = boot("interp", "1", &[]);
    assert_eq!(value(&out, "cpus="), "1");
    check_devices(&out);
}

#[test]
fn debian_kernel_boots_with_four_cpus_under_the_default_engine() {
    let (out, _) = boot("tiered", "4", &[]);
    assert_eq!(value(&out, "cpus="), "4");
    assert_eq!(value(&out, "online="), "0-3");
    check_devices(&out);
}

fn make_ext4(dir: &Path) -> PathBuf {
    let root = dir.join("disk-root");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("hello"), "made on the host\n").unwrap();
    let img = dir.join("disk.ext4");
    let _ = std::fs::remove_file(&img);
    let st = Command::new("mke2fs")
        .args(["-q", "-t", "ext4", "-d"])
        .arg(&root)
        .arg(&img)
        .arg("32M")
        .status()
        .expect("mke2fs (e2fsprogs) is needed");
    assert!(st.success());
    img
}

#[test]
fn virtio_disk_mounts_and_keeps_what_the_guest_wrote() {
    let dir = work_dir();
    let img = make_ext4(&dir);
    let drive = img.to_str().unwrap().to_string();
    let (out, _) = boot("tiered", "2", &["--drive", &drive]);
    assert_eq!(value(&out, "disk="), "made on the host");
    check_devices(&out);
    // Read the file back from the image on the host, with e2fsprogs' debugfs.
    let cat = Command::new("debugfs")
        .args(["-R", "cat /from-guest"])
        .arg(&img)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cat.stdout).trim(),
        "written by the guest"
    );
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

fn expect_error(args: &[&str], what: &str) {
    let out = armboard(args, Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{args:?}: {err}");
    assert!(err.contains(what), "{args:?}: expected {what:?} in {err}");
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
