//! The Pi firmware boot flow on real SD-card images built with the host's tools:
//! mkfs.vfat and mcopy (dosfstools, mtools) for the FAT partition, a hand-written MBR, and
//! dtc for device trees and overlays.

use std::path::{Path, PathBuf};
use std::process::Command;

use armboard_firmware::fdt::Fdt;
use armboard_firmware::pi::{self, FatVolume, PiBoard, PiBootError};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("armboard-pi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A FAT file system image (`fat` 16 or 32) holding `files` (paths with '/').
fn fat_image(dir: &Path, fat: u32, files: &[(&str, &[u8])]) -> PathBuf {
    let img = dir.join(format!("fat{fat}.img"));
    let _ = std::fs::remove_file(&img);
    let (kib, spc) = if fat == 32 {
        ("40960", "1")
    } else {
        ("16384", "4")
    };
    run(Command::new("mkfs.vfat")
        .args([
            "-F",
            &fat.to_string(),
            "-s",
            spc,
            "-S",
            "512",
            "-n",
            "BOOT",
            "-C",
        ])
        .arg(&img)
        .arg(kib));
    let mut made = std::collections::BTreeSet::new();
    for (i, (path, bytes)) in files.iter().enumerate() {
        let parts: Vec<&str> = path.split('/').collect();
        for n in 1..parts.len() {
            let d = parts[..n].join("/");
            if made.insert(d.clone()) {
                run(Command::new("mmd")
                    .arg("-i")
                    .arg(&img)
                    .arg(format!("::{d}")));
            }
        }
        let src = dir.join(format!("src{i}"));
        std::fs::write(&src, bytes).unwrap();
        run(Command::new("mcopy")
            .arg("-i")
            .arg(&img)
            .arg(&src)
            .arg(format!("::{path}")));
    }
    img
}

/// An SD card: an MBR, the FAT image as partition 1 (type `kind`) at 1 MiB, and a small
/// Linux partition after it.
fn card(dir: &Path, fat: &Path, kind: u8) -> PathBuf {
    let part = std::fs::read(fat).unwrap();
    let start = 2048u32;
    let sectors = (part.len() / 512) as u32;
    let linux_start = start + sectors;
    let linux_sectors = 2048u32;
    let mut img = vec![0u8; (linux_start + linux_sectors) as usize * 512];
    for (i, (k, s, n)) in [(kind, start, sectors), (0x83, linux_start, linux_sectors)]
        .into_iter()
        .enumerate()
    {
        let e = &mut img[0x1be + 16 * i..0x1be + 16 * (i + 1)];
        e[4] = k;
        e[8..12].copy_from_slice(&s.to_le_bytes());
        e[12..16].copy_from_slice(&n.to_le_bytes());
    }
    img[510] = 0x55;
    img[511] = 0xaa;
    img[start as usize * 512..][..part.len()].copy_from_slice(&part);
    let out = dir.join("card.img");
    std::fs::write(&out, img).unwrap();
    out
}

fn dtc(dir: &Path, name: &str, src: &str) -> Vec<u8> {
    let s = dir.join(format!("{name}.dts"));
    let o = dir.join(format!("{name}.dtb"));
    std::fs::write(&s, src).unwrap();
    run(Command::new("dtc")
        .args(["-@", "-q", "-I", "dts", "-O", "dtb", "-o"])
        .arg(&o)
        .arg(&s));
    std::fs::read(&o).unwrap()
}

/// Pseudo-random bytes.
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The start of an arm64 Image: enough for the firmware's checks.
fn arm64_kernel() -> Vec<u8> {
    let mut k = noise(8192, 7);
    k[0x38..0x3c].copy_from_slice(b"ARM\x64");
    k
}

const BASE_DTS: &str = r#"
/dts-v1/;
/ {
    #address-cells = <1>;
    #size-cells = <1>;
    compatible = "raspberrypi,3-model-b", "brcm,bcm2837";
    aliases { serial0 = &uart0; };
    chosen { };
    soc {
        #address-cells = <1>;
        #size-cells = <1>;
        uart0: serial@7e201000 {
            compatible = "arm,pl011", "arm,primecell";
            reg = <0x7e201000 0x200>;
            status = "disabled";
        };
        audio: audio {
            compatible = "brcm,bcm2835-audio";
            status = "disabled";
        };
        intc: interrupt-controller@7e00b200 {
            reg = <0x7e00b200 0x200>;
        };
    };
    __overrides__ {
        audio = <&audio>, "status";
        uart0_reg = <&uart0>, "reg:0";
    };
};
"#;

const OVERLAY_DTS: &str = r#"
/dts-v1/;
/plugin/;
/ {
    compatible = "brcm,bcm2837";
    fragment@0 {
        target = <&uart0>;
        __overlay__ {
            status = "okay";
            interrupt-parent = <&intc>;
            dev: child {
                value = <1>;
            };
        };
    };
    fragment@1 {
        target-path = "/soc";
        __overlay__ {
            gadget {
                compatible = "test,gadget";
                link = <&dev>;
                speed = <100>;
            };
        };
    };
    fragment@2 {
        target-path = "/";
        __dormant__ {
            dormant-was-enabled;
        };
    };
    __overrides__ {
        speed = <&gadget_speed>, "speed:0";
        extra = <0>, "+2";
    };
};
"#;

fn overlay_src() -> String {
    // `gadget_speed` labels the gadget node.
    OVERLAY_DTS.replace("gadget {", "gadget_speed: gadget {")
}

#[test]
fn fat16_and_fat32_files_with_long_names_and_subdirectories_read_byte_exact() {
    let dir = tmpdir("fat");
    let big = noise(300_000, 1);
    let small = noise(1000, 2);
    let deep = noise(70_000, 3);
    for fat in [16, 32] {
        let img = fat_image(
            &dir,
            fat,
            &[
                ("a-rather-long-file-name.txt", &big),
                ("KERNEL8.IMG", &small),
                ("sub/Dir With Spaces/Deep File.bin", &deep),
                ("sub/short.txt", b"hello"),
            ],
        );
        let c = card(&dir, &img, if fat == 32 { 0x0c } else { 0x0e });
        let vol = pi::open_boot_partition(&c).unwrap();
        assert_eq!(
            vol.kind(),
            if fat == 32 {
                pi::fat::FatKind::Fat32
            } else {
                pi::fat::FatKind::Fat16
            }
        );
        assert_eq!(vol.read_file("a-rather-long-file-name.txt").unwrap(), big);
        assert_eq!(vol.read_file("A-Rather-LONG-file-name.TXT").unwrap(), big);
        assert_eq!(vol.read_file("kernel8.img").unwrap(), small);
        assert_eq!(
            vol.read_file("/sub/dir with spaces/DEEP FILE.BIN").unwrap(),
            deep
        );
        assert_eq!(vol.read_file("SUB/SHORT.TXT").unwrap(), b"hello");
        let names: Vec<String> = vol
            .list("sub")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(names.contains(&"Dir With Spaces".to_string()), "{names:?}");
        assert!(matches!(
            vol.read_file("sub/nothing"),
            Err(pi::FatError::NotFound(_))
        ));
        assert!(matches!(vol.read_file("sub"), Err(pi::FatError::IsDir(_))));
        // The same volume opened straight from the file-system image.
        let raw = FatVolume::from_bytes(std::fs::read(&img).unwrap()).unwrap();
        assert_eq!(raw.read_file("sub/short.txt").unwrap(), b"hello");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_filters_pick_kernel_dtb_initramfs_and_cmdline() {
    let dir = tmpdir("plan");
    let kernel = arm64_kernel();
    let base = dtc(&dir, "base", BASE_DTS);
    let initrd = noise(5000, 9);
    let config = "# test card\n\
        [pi4]\nkernel=wrong-pi4.img\narm_64bit=0\n\
        [pi3]\nkernel=vmlinuz-right\narm_64bit=1\nenable_uart=1\n\
        [pi3+]\nkernel=wrong-pi3plus.img\n\
        [all]\n\
        initramfs initrd.img followkernel\n\
        device_tree=my-board.dtb\n\
        gpu_mem_1024=64\n\
        disable_overscan=1\n";
    let img = fat_image(
        &dir,
        32,
        &[
            ("config.txt", config.as_bytes()),
            (
                "cmdline.txt",
                b"  console=serial0,115200  root=/dev/mmcblk0p2 \n",
            ),
            ("vmlinuz-right", &kernel),
            ("initrd.img", &initrd),
            ("my-board.dtb", &base),
        ],
    );
    let c = card(&dir, &img, 0x0c);
    let p = pi::boot_from_sd(&c, &PiBoard::raspi3b()).unwrap();
    assert_eq!(p.kernel.name, "vmlinuz-right");
    assert_eq!(p.kernel.bytes, kernel);
    assert_eq!(p.dtb.name, "my-board.dtb");
    assert_eq!(
        p.dtb.bytes, base,
        "no overlays: the dtb is passed unchanged"
    );
    let i = p.initramfs.as_ref().unwrap();
    assert_eq!(
        (i.name.as_str(), &i.bytes, i.address),
        ("initrd.img", &initrd, None)
    );
    assert_eq!(p.cmdline, "console=serial0,115200  root=/dev/mmcblk0p2");
    assert_eq!(p.cmdline_file.as_deref(), Some("cmdline.txt"));
    assert!(p.arm_64bit && p.enable_uart);
    assert_eq!(p.gpu_mem_mib, 64);
    assert_eq!(p.arm_memory, (1024 - 64) << 20);
    assert!(
        p.notes.iter().any(|n| n.contains("disable_overscan")),
        "{:?}",
        p.notes
    );
    // patched_dtb: /chosen and /memory as the firmware sets them.
    let f = Fdt::parse(&p.patched_dtb(Some(0x100_0000..0x100_1388)).unwrap()).unwrap();
    assert_eq!(
        f.node("/chosen").unwrap().prop_str("bootargs"),
        Some(p.cmdline.as_str())
    );
    assert_eq!(
        f.node("/memory@0").unwrap().prop_cells("reg"),
        Some(vec![0, (1024 - 64) << 20])
    );

    // Defaults: kernel8.img with arm_64bit=1, the first DTB name found, gpu_mem 76, and
    // cmdline= naming another file.
    let img = fat_image(
        &dir,
        16,
        &[
            (
                "config.txt",
                b"arm_64bit=1\ncmdline=other.txt\nenable_uart=1\n",
            ),
            ("other.txt", b"quiet\n"),
            ("kernel8.img", &kernel),
            ("kernel7.img", b"not this one"),
            ("bcm2837-rpi-3-b.dtb", &base),
        ],
    );
    let c = card(&dir, &img, 0x0e);
    let p = pi::boot_from_sd(&c, &PiBoard::raspi3b()).unwrap();
    assert_eq!(p.kernel.name, "kernel8.img");
    assert_eq!(p.dtb.name, "bcm2837-rpi-3-b.dtb");
    assert_eq!(p.cmdline, "quiet");
    assert!(p.initramfs.is_none());
    assert_eq!(p.gpu_mem_mib, 76);
    assert_eq!(p.arm_memory, 948 << 20);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn overlays_and_parameters_change_the_device_tree() {
    let dir = tmpdir("overlay");
    let base = dtc(&dir, "base", BASE_DTS);
    let ov = dtc(&dir, "test-ov", &overlay_src());
    let config = "arm_64bit=1\n\
        dtparam=audio=on\n\
        dtparam=nosuch=1\n\
        dtoverlay=test-ov,speed=400\n\
        dtparam=extra\n\
        dtoverlay=missing-ov\n\
        dtoverlay=\n\
        dtparam=uart0_reg=0x7e215040\n";
    let img = fat_image(
        &dir,
        32,
        &[
            ("config.txt", config.as_bytes()),
            ("kernel8.img", &arm64_kernel()),
            ("bcm2710-rpi-3-b.dtb", &base),
            ("overlays/test-ov.dtbo", &ov),
        ],
    );
    let c = card(&dir, &img, 0x0c);
    let p = pi::boot_from_sd(&c, &PiBoard::raspi3b()).unwrap();
    let notes: Vec<String> = p.dt.iter().map(|n| n.to_string()).collect();
    assert_eq!(p.dt.len(), 5, "{notes:?}");
    assert!(
        p.dt[0].applied && p.dt[0].directive == "dtparam=audio=on",
        "{notes:?}"
    );
    assert!(
        !p.dt[1].applied && p.dt[1].detail.contains("no parameter"),
        "{notes:?}"
    );
    assert!(p.dt[2].applied, "{notes:?}");
    assert_eq!(p.dt[2].directive, "dtoverlay=test-ov,speed=400,extra");
    assert!(p.dt[2].detail.contains("speed=400: applied"), "{notes:?}");
    assert!(!p.dt[3].applied, "{notes:?}");
    assert_eq!(
        notes[3],
        "dtoverlay=missing-ov: overlays/missing-ov.dtbo not on the boot partition, ignored"
    );
    assert!(p.dt[4].applied, "{notes:?}");

    let f = Fdt::parse(&p.dtb.bytes).unwrap();
    let base_f = Fdt::parse(&base).unwrap();
    assert_eq!(
        f.node("/soc/audio").unwrap().prop_str("status"),
        Some("okay")
    );
    // Fragment 0 (target = <&uart0>): merged, with the base's intc phandle resolved.
    let uart = f
        .node("/soc/serial@7e215040")
        .expect("uart0_reg renamed the node");
    assert_eq!(uart.prop_str("status"), Some("okay"));
    let intc = base_f
        .node("/soc/interrupt-controller@7e00b200")
        .unwrap()
        .prop_u32("phandle")
        .unwrap();
    assert_eq!(uart.prop_u32("interrupt-parent"), Some(intc));
    // The overlay's own phandles are renumbered above the base's and references follow.
    let child = uart.child("child").unwrap();
    let dev_ph = child.prop_u32("phandle").unwrap();
    assert!(dev_ph > base_f.max_phandle());
    // Fragment 1 (target-path), with its parameter applied.
    let gadget = f.node("/soc/gadget").unwrap();
    assert_eq!(gadget.prop_u32("link"), Some(dev_ph));
    assert_eq!(gadget.prop_u32("speed"), Some(400));
    // Fragment 2 was dormant and enabled by the `extra` parameter.
    assert!(f.root.prop("dormant-was-enabled").is_some());
    // Overlay symbols are added with their merged paths.
    let syms = f.node("/__symbols__").unwrap();
    assert_eq!(syms.prop_str("dev"), Some("/soc/serial@7e201000/child"));
    assert_eq!(syms.prop_str("gadget_speed"), Some("/soc/gadget"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_pieces_are_clear_errors() {
    let dir = tmpdir("errors");
    let kernel = arm64_kernel();
    let base = dtc(&dir, "base", BASE_DTS);
    let board = PiBoard::raspi3b();

    // A card whose only partitions are not FAT.
    let img = fat_image(&dir, 16, &[("x", b"x")]);
    let c = card(&dir, &img, 0x83);
    let e = pi::boot_from_sd(&c, &board).unwrap_err();
    assert!(matches!(e, PiBootError::NoBootPartition(..)), "{e}");
    assert!(e.to_string().contains("type 0x83 (Linux)"), "{e}");

    // No kernel: the file looked for is named (with a hint about kernel8.img).
    let img = fat_image(
        &dir,
        16,
        &[("kernel8.img", &kernel), ("bcm2837-rpi-3-b.dtb", &base)],
    );
    let c = card(&dir, &img, 0x0e);
    let e = pi::boot_from_sd(&c, &board).unwrap_err();
    match &e {
        PiBootError::NoKernel { tried, hint } => {
            assert_eq!(tried, &["kernel7.img"]);
            assert!(hint.contains("arm_64bit=1"), "{hint}");
        }
        _ => panic!("{e}"),
    }

    // config.txt naming a missing initramfs / cmdline / device tree.
    for (cfg, key, file) in [
        ("initramfs nope.img followkernel", "initramfs", "nope.img"),
        ("cmdline=nope.txt", "cmdline", "nope.txt"),
        ("device_tree=nope.dtb", "device_tree", "nope.dtb"),
    ] {
        let text = format!("arm_64bit=1\n{cfg}\n");
        let img = fat_image(
            &dir,
            16,
            &[
                ("config.txt", text.as_bytes()),
                ("kernel8.img", &kernel),
                ("bcm2837-rpi-3-b.dtb", &base),
            ],
        );
        let c = card(&dir, &img, 0x0e);
        let e = pi::boot_from_sd(&c, &board).unwrap_err();
        match &e {
            PiBootError::MissingFile { key: k, file: f } => {
                assert_eq!((k.as_str(), f.as_str()), (key, file));
                assert!(e.to_string().contains(file));
            }
            _ => panic!("{cfg}: {e}"),
        }
    }

    // No device tree at all: the names tried are listed.
    let img = fat_image(
        &dir,
        16,
        &[("config.txt", b"arm_64bit=1\n"), ("kernel8.img", &kernel)],
    );
    let c = card(&dir, &img, 0x0e);
    let e = pi::boot_from_sd(&c, &board).unwrap_err();
    assert!(
        e.to_string()
            .contains("bcm2710-rpi-3-b.dtb, bcm2837-rpi-3-b.dtb"),
        "{e}"
    );

    // arm_64bit=0 with a kernel that is not an arm64 Image, and a 32-bit zImage.
    let mut zimage = noise(4096, 5);
    zimage[0x24..0x28].copy_from_slice(&0x016f_2818u32.to_le_bytes());
    for (cfg, k) in [
        ("", vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0]),
        ("arm_64bit=1\nkernel=kernel7.img\n", zimage),
    ] {
        let img = fat_image(
            &dir,
            16,
            &[
                ("config.txt", cfg.as_bytes()),
                ("kernel7.img", &k),
                ("bcm2837-rpi-3-b.dtb", &base),
            ],
        );
        let c = card(&dir, &img, 0x0e);
        let e = pi::boot_from_sd(&c, &board).unwrap_err();
        assert!(matches!(e, PiBootError::Not64Bit(_)), "{e}");
        assert!(e.to_string().contains("AArch64"), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn debian_dtb_without_symbols_reports_what_it_cannot_apply() {
    let k = armboard_firmware::kernel::DebianKernel::ensure().expect("Debian kernel");
    let root = k.image.parent().and_then(Path::parent).unwrap();
    let dtb_path = root
        .join("usr/lib")
        .join(format!("linux-image-{}", k.version))
        .join("broadcom/bcm2837-rpi-3-b.dtb");
    let dtb = std::fs::read(&dtb_path).unwrap_or_else(|e| panic!("{}: {e}", dtb_path.display()));
    let dir = tmpdir("debian");
    let needs_symbols = dtc(&dir, "needs-symbols", &overlay_src());
    let path_only = dtc(
        &dir,
        "path-only",
        r#"/dts-v1/; /plugin/;
        / { fragment@0 { target-path = "/chosen";
                         __overlay__ { armboard,test = "yes"; }; }; };"#,
    );
    let config = "arm_64bit=1\nupstream_kernel=1\nenable_uart=1\n\
        dtparam=audio=on\ndtoverlay=needs-symbols\ndtoverlay=path-only\n";
    let img = fat_image(
        &dir,
        32,
        &[
            ("config.txt", config.as_bytes()),
            ("kernel8.img", &arm64_kernel()),
            ("bcm2837-rpi-3-b.dtb", &dtb),
            ("overlays/needs-symbols.dtbo", &needs_symbols),
            ("overlays/path-only.dtbo", &path_only),
        ],
    );
    let c = card(&dir, &img, 0x0c);
    let p = pi::boot_from_sd(&c, &PiBoard::raspi3b()).unwrap();
    let notes: Vec<String> = p.dt.iter().map(|n| n.to_string()).collect();
    assert_eq!(p.dtb.name, "bcm2837-rpi-3-b.dtb");
    assert_eq!(p.dt.len(), 3, "{notes:?}");
    assert!(
        !p.dt[0].applied && p.dt[0].detail.contains("no __overrides__"),
        "{notes:?}"
    );
    assert!(
        !p.dt[1].applied && p.dt[1].detail.contains("no __symbols__"),
        "{notes:?}"
    );
    assert!(p.dt[1].detail.contains("uart0"), "{notes:?}");
    assert!(p.dt[2].applied, "{notes:?}");
    let f = Fdt::parse(&p.dtb.bytes).unwrap();
    assert_eq!(
        f.node("/chosen").unwrap().prop_str("armboard,test"),
        Some("yes")
    );
    // Everything else of Debian's tree is intact.
    let orig = Fdt::parse(&dtb).unwrap();
    assert_eq!(f.root.children.len(), orig.root.children.len());
    assert_eq!(f.node("/soc"), orig.node("/soc"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrupted_fat32_volume_gives_errors_not_panics() {
    let dir = tmpdir("corrupt");
    let data = noise(20_000, 4);
    let img = fat_image(&dir, 32, &[("dir/a-long-name.bin", &data), ("b.txt", b"b")]);
    let good = std::fs::read(&img).unwrap();
    let vol = FatVolume::from_bytes(good.clone()).unwrap();
    assert_eq!(vol.read_file("dir/a-long-name.bin").unwrap(), data);
    // Boot sector, FSInfo, the start of the FAT and the first data clusters.
    let fat_start = u16::from_le_bytes([good[14], good[15]]) as usize * 512;
    let data_start =
        fat_start + 2 * u32::from_le_bytes([good[36], good[37], good[38], good[39]]) as usize * 512;
    let spots = (0..96)
        .chain(fat_start..fat_start + 64)
        .chain(data_start..data_start + 160);
    let shared = Shared(std::sync::Arc::new(std::sync::RwLock::new(good)));
    for at in spots {
        for x in [0x01u8, 0x80, 0xff] {
            shared.flip(at, x);
            let len = shared.0.read().unwrap().len() as u64;
            if let Ok(v) = FatVolume::open(Box::new(shared.clone()), 0, len) {
                let _ = v.read_file("dir/a-long-name.bin");
                let _ = v.read_file("b.txt");
                let _ = v.list("dir");
            }
            shared.flip(at, x);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An in-memory volume the test corrupts in place.
#[derive(Clone)]
struct Shared(std::sync::Arc<std::sync::RwLock<Vec<u8>>>);

impl Shared {
    fn flip(&self, at: usize, x: u8) {
        self.0.write().unwrap()[at] ^= x;
    }
}

impl pi::fat::Storage for Shared {
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<()> {
        pi::fat::Storage::read_exact_at(&*self.0.read().unwrap(), buf, at)
    }
}
