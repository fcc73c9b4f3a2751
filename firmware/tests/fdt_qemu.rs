//! The device-tree parser and patcher on a real board DTB: the one QEMU's `virt` machine
//! generates (`-M virt,dumpdtb=FILE`), checked afterwards with the host's `dtc`.
//! Needs qemu-system-aarch64 and dtc (.ci/run installs qemu-system-arm and
//! device-tree-compiler); the test fails, it does not skip, without them.

use armboard_firmware::fdt::{cells64, BootParams, Fdt};
use std::path::PathBuf;
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("armboard-fdt-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn qemu_virt_dtb() -> Vec<u8> {
    let out = tmp("qemu-virt.dtb");
    let status = Command::new("qemu-system-aarch64")
        .arg("-M")
        .arg(format!("virt,dumpdtb={}", out.display()))
        .args([
            "-cpu",
            "cortex-a72",
            "-smp",
            "2",
            "-m",
            "512M",
            "-nographic",
            "-net",
            "none",
        ])
        .output()
        .expect("running qemu-system-aarch64 (install qemu-system-arm)");
    assert!(
        status.status.success(),
        "qemu: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::read(&out).unwrap()
}

fn dtc_decompile(blob: &[u8]) -> String {
    let f = tmp("patched.dtb");
    std::fs::write(&f, blob).unwrap();
    let out = Command::new("dtc")
        .args(["-q", "-I", "dtb", "-O", "dts"])
        .arg(&f)
        .output()
        .expect("running dtc (install device-tree-compiler)");
    assert!(
        out.status.success(),
        "dtc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn patches_qemu_virt_dtb_and_dtc_reads_it() {
    let blob = qemu_virt_dtb();
    let mut f = Fdt::parse(&blob).expect("parsing QEMU's dtb");
    // What QEMU's virt board has, as the parser sees it.
    assert_eq!(f.root.prop_str("compatible"), Some("linux,dummy-virt"));
    assert!(f.node("/intc@8000000").is_some());
    assert!(f.node("/pl011@9000000").is_some());
    assert!(f.node("/cpus/cpu@1").is_some());
    assert!(f.node("/memory@40000000").is_some());
    assert!(f.max_phandle() >= 0x8000);
    // Re-serializing loses nothing.
    assert_eq!(Fdt::parse(&f.to_bytes().unwrap()).unwrap(), f);

    f.patch_for_boot(&BootParams {
        bootargs: Some("console=ttyAMA0 earlycon rdinit=/init"),
        initrd: Some(0x4800_0000..0x4823_4000),
        memory: &[(0x4000_0000, 0x2000_0000)],
        stdout_path: None,
    })
    .unwrap();
    let patched = f.to_bytes().unwrap();
    let g = Fdt::parse(&patched).unwrap();
    let chosen = g.node("/chosen").unwrap();
    assert_eq!(
        chosen.prop_str("bootargs"),
        Some("console=ttyAMA0 earlycon rdinit=/init")
    );
    assert_eq!(chosen.prop_str("stdout-path"), Some("/pl011@9000000"));
    assert_eq!(
        chosen.prop("linux,initrd-start"),
        Some(&cells64(&[0x4800_0000])[..])
    );
    assert_eq!(
        g.node("/memory@40000000").unwrap().prop("reg"),
        Some(&cells64(&[0x4000_0000, 0x2000_0000])[..])
    );

    let dts = dtc_decompile(&patched);
    assert!(
        dts.contains("bootargs = \"console=ttyAMA0 earlycon rdinit=/init\";"),
        "{dts}"
    );
    assert!(
        dts.contains("linux,initrd-start = <0x00 0x48000000>;"),
        "{dts}"
    );
    assert!(
        dts.contains("linux,initrd-end = <0x00 0x48234000>;"),
        "{dts}"
    );
    assert!(
        dts.contains("reg = <0x00 0x40000000 0x00 0x20000000>;"),
        "{dts}"
    );
    assert_eq!(dts.matches("memory@").count(), 1, "{dts}");
}

#[test]
fn rejects_a_file_that_is_not_a_dtb() {
    let e = Fdt::parse(b"#!/bin/sh\necho this is a script, not a device tree blob\n").unwrap_err();
    assert!(e.to_string().contains("not a device tree blob"), "{e}");
}
