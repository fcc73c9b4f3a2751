//! Boot Debian bookworm's arm64 kernel with Debian's unmodified `bcm2837-rpi-3-b.dtb` on the
//! emulated Raspberry Pi 3 Model B: directly (`--kernel --dtb --initrd`) and from an SD card
//! image built here the way Raspberry Pi OS lays one out (MBR, FAT32 boot partition, ext4
//! root). The kernel and busybox are fetched into the cache on first use (never skipped).

mod board;

use board::{armboard_ok, expect_error, value, PiGuest};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Modules the checks need: the SD host controller, the RNG, the watchdog (which powers the
/// board off), ext4 and the crc32c it needs.
const MODULES: &[&str] = &[
    "bcm2835",
    "bcm2835_rng",
    "bcm2835_wdt",
    "crc32c_generic",
    "ext4",
];

/// The guest's /init: report, exercise the devices, power off through the watchdog.
const INIT: &str = r#"#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
@MODULES@
echo ARMBOARD-BOOT-OK
echo "cpus=$(grep -c ^processor /proc/cpuinfo)"
echo "online=$(cat /sys/devices/system/cpu/online)"
echo "model=$(cat /proc/device-tree/model)"
echo "console=$(cat /sys/class/tty/console/active)"
echo "revision=$(od -An -tx1 /proc/device-tree/system/linux,revision | tr -d ' \n')"
echo "firmware=$(dmesg | grep -c 'raspberrypi-firmware.*Attached to firmware')"
echo "rng=$(head -c 16 /dev/hwrng | od -An -tx1 | tr -d ' \n')"
@STATIC_KEY@
for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/mmcblk0 ] && break; sleep 1; done
if [ -b /dev/mmcblk0p2 ]; then
  mount -t ext4 /dev/mmcblk0p2 /mnt && echo "disk=$(cat /mnt/hello)"
  echo "written on the Pi" > /mnt/from-guest
  sync
  umount /mnt
fi
echo ARMBOARD-DONE
if [ "$armboard_end" = reboot ]; then reboot -f; fi
poweroff -f
"#;

fn work_dir() -> PathBuf {
    board::work_dir("boot_raspi")
}

fn guest() -> &'static PiGuest {
    static G: OnceLock<PiGuest> = OnceLock::new();
    G.get_or_init(|| PiGuest::build("boot_raspi", INIT, MODULES))
}

fn check_board(out: &str) {
    assert_eq!(value(out, "cpus="), "4");
    assert_eq!(value(out, "online="), "0-3");
    assert_eq!(
        value(out, "schedstats="),
        "1111",
        "kernel text patched on CPU 0"
    );
    assert!(value(out, "model=").starts_with("Raspberry Pi 3 Model B"));
    assert_eq!(value(out, "revision="), "00a02082");
    assert_eq!(value(out, "firmware="), "1", "the firmware driver found us");
    let rng = value(out, "rng=");
    assert_eq!(rng.len(), 32, "16 bytes from /dev/hwrng: {rng}");
    assert_ne!(rng, "00000000000000000000000000000000");
}

fn direct_boot(engine: &str, append: &str) -> String {
    let g = guest();
    armboard_ok(&g.boot_args(engine, append), "ARMBOARD-DONE")
}

#[test]
fn debian_kernel_boots_on_the_pi3b_with_the_console_on_the_pl011() {
    let out = direct_boot("tiered", "console=ttyAMA0 panic=-1");
    check_board(&out);
    assert!(value(&out, "console=").contains("ttyAMA0"));
}

#[test]
fn the_mini_uart_is_the_console_the_device_tree_names_under_the_interpreter() {
    // Debian's tree says stdout-path = serial1: the mini UART, ttyS1. This guest ends with
    // `reboot -f`: the watchdog resets the board, which ends the run with status 10.
    let g = guest();
    let args = g.boot_args(
        "interp",
        "console=ttyS1,115200 panic=-1 armboard_end=reboot",
    );
    let out = board::armboard(&args, std::time::Duration::from_secs(900));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(10) && stdout.contains("ARMBOARD-DONE"),
        "{:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stderr.contains("reset the board"), "{stderr}");
    check_board(&stdout);
    assert!(value(&stdout, "console=").contains("ttyS1"));
}

/// Runs a host tool, failing the test with its output if it fails.
fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A FAT32 image of `mib` MiB holding `files` (name, contents).
fn make_fat(dir: &Path, mib: u64, files: &[(&str, Vec<u8>)]) -> PathBuf {
    let img = dir.join("boot.vfat");
    let _ = std::fs::remove_file(&img);
    run(Command::new("mkfs.vfat")
        .args(["-F", "32", "-n", "BOOT", "-C"])
        .arg(&img)
        .arg((mib * 1024).to_string()));
    for (name, bytes) in files {
        let src = dir.join(format!("fat-src-{name}"));
        std::fs::write(&src, bytes).unwrap();
        run(Command::new("mcopy")
            .arg("-i")
            .arg(&img)
            .arg(&src)
            .arg(format!("::{name}")));
    }
    img
}

/// An MBR disk image: a FAT32 (0x0c) partition then, if given, a Linux (0x83) one.
fn make_sd(dir: &Path, name: &str, fat: &Path, root: Option<&Path>) -> PathBuf {
    let img = dir.join(name);
    let sectors = |p: &Path| std::fs::metadata(p).unwrap().len().div_ceil(512);
    let fat_start = 8192u64;
    let root_start = fat_start + sectors(fat).next_multiple_of(2048);
    let mut table = format!(
        "label: dos\nstart={fat_start}, size={}, type=c\n",
        sectors(fat)
    );
    let mut end = root_start;
    if let Some(r) = root {
        table += &format!("start={root_start}, size={}, type=83\n", sectors(r));
        end += sectors(r);
    }
    let f = std::fs::File::create(&img).unwrap();
    // Not a power of two: the card model takes any size.
    f.set_len((end + 3000) * 512).unwrap();
    drop(f);
    let mut sfdisk = Command::new("sfdisk")
        .arg("-q")
        .arg(&img)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sfdisk (util-linux)");
    use std::io::Write;
    sfdisk
        .stdin
        .take()
        .unwrap()
        .write_all(table.as_bytes())
        .unwrap();
    assert!(sfdisk.wait().unwrap().success());
    let dd = |src: &Path, at: u64| {
        run(Command::new("dd")
            .arg(format!("if={}", src.display()))
            .arg(format!("of={}", img.display()))
            .args(["bs=512", "conv=notrunc", "status=none"])
            .arg(format!("seek={at}")));
    };
    dd(fat, fat_start);
    if let Some(r) = root {
        dd(r, root_start);
    }
    img
}

/// Copies partition 2 of `sd` out to a file of its own (debugfs reads whole images).
fn extract_root(sd: &Path, root_len: u64, dir: &Path) -> PathBuf {
    let out = dir.join("root-after.ext4");
    let fat = dir.join("boot.vfat");
    let fat_sectors = std::fs::metadata(fat).unwrap().len().div_ceil(512);
    let start = 8192 + fat_sectors.next_multiple_of(2048);
    run(Command::new("dd")
        .arg(format!("if={}", sd.display()))
        .arg(format!("of={}", out.display()))
        .args(["bs=512", "status=none"])
        .arg(format!("skip={start}"))
        .arg(format!("count={}", root_len / 512)));
    out
}

#[test]
fn an_sd_card_image_boots_as_the_pi_firmware_boots_it() {
    let g = guest();
    let dir = work_dir().join("sd");
    std::fs::create_dir_all(&dir).unwrap();
    let k = board::kernel();
    let kernel = std::fs::read(&k.image).unwrap();
    let fat = make_fat(
        &dir,
        64,
        &[
            (
                "config.txt",
                b"# made by the armboard tests\narm_64bit=1\nenable_uart=1\n\
                  [pi4]\nkernel=wrong-board.img\n[all]\n\
                  initramfs initrd.gz followkernel\ndtoverlay=disable-bt\n"
                    .to_vec(),
            ),
            ("cmdline.txt", b"console=ttyS1,115200 panic=-1\n".to_vec()),
            ("kernel8.img", kernel),
            ("bcm2837-rpi-3-b.dtb", std::fs::read(&g.dtb).unwrap()),
            ("initrd.gz", std::fs::read(&g.initrd).unwrap()),
        ],
    );
    let root = board::make_ext4(&dir, "root.ext4", "48M", &[("hello", "root partition\n")]);
    let sd = make_sd(&dir, "card.img", &fat, Some(&root));
    let out = board::armboard(
        &["boot", "--machine", "raspi3b", "--sd", sd.to_str().unwrap()],
        std::time::Duration::from_secs(900),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ARMBOARD-DONE"),
        "{:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    check_board(&stdout);
    assert_eq!(value(&stdout, "disk="), "root partition");
    // The overlay is not on the card: the firmware says so and boots anyway.
    assert!(stderr.contains("disable-bt"), "{stderr}");
    let root_len = std::fs::metadata(&root).unwrap().len();
    let after = extract_root(&sd, root_len, &dir);
    assert_eq!(board::ext4_cat(&after, "/from-guest"), "written on the Pi");
}

#[test]
fn bad_sd_cards_give_clear_errors() {
    let dir = work_dir().join("bad-sd");
    std::fs::create_dir_all(&dir).unwrap();
    let sd = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let boot = |card: &str, what: &str| {
        expect_error(&["boot", "--machine", "raspi3b", "--sd", card], what);
    };
    // No partition table at all.
    std::fs::write(dir.join("blank.img"), vec![0u8; 4 << 20]).unwrap();
    boot(&sd("blank.img"), "partition");
    // A FAT partition without a kernel: the error names the files looked for.
    let fat = make_fat(&dir, 40, &[("config.txt", b"arm_64bit=1\n".to_vec())]);
    make_sd(&dir, "nokernel.img", &fat, None);
    boot(&sd("nokernel.img"), "kernel8.img");
    // config.txt names a file that is not there.
    let fat = make_fat(
        &dir,
        40,
        &[
            ("config.txt", b"kernel=missing-kernel.img\n".to_vec()),
            ("kernel8.img", b"not used".to_vec()),
        ],
    );
    make_sd(&dir, "missing.img", &fat, None);
    boot(&sd("missing.img"), "missing-kernel.img");
    // Direct boot needs a device tree.
    let g = guest();
    expect_error(
        &[
            "boot",
            "--machine",
            "raspi3b",
            "--kernel",
            g.kernel.to_str().unwrap(),
        ],
        "--dtb",
    );
    boot("/nonexistent/card.img", "/nonexistent/card.img");
}
