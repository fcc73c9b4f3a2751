//! The generated virt device tree against the one QEMU's virt machine makes for the same
//! board (`-M virt,dumpdtb=FILE -cpu cortex-a72 -smp 2 -m 512M`), and read back by `dtc`.
//! Needs qemu-system-aarch64 and dtc (.ci/run installs qemu-system-arm and
//! device-tree-compiler); without them the test fails rather than skips.

use armboard_firmware::fdt::{Fdt, Node};
use armboard_machines::virt::dt::{generate, VirtConfig, VirtDevices};
use std::path::PathBuf;
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("armboard-virt-dt-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn qemu_dtb() -> Fdt {
    let out = tmp("qemu.dtb");
    let r = Command::new("qemu-system-aarch64")
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
        r.status.success(),
        "qemu: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    Fdt::parse(&std::fs::read(&out).unwrap()).unwrap()
}

fn ours() -> Vec<u8> {
    let mut c = VirtConfig::new(2, 512 << 20);
    c.devices = VirtDevices {
        rtc: true,
        fw_cfg: true,
        gpio: true,
        flash: true,
        pmu: true,
    };
    c.bootargs = "console=ttyAMA0".into();
    generate(&c).unwrap()
}

fn paths(n: &Node, at: &str, out: &mut Vec<(String, Node)>) {
    for c in &n.children {
        let p = format!("{at}/{}", c.name);
        out.push((p.clone(), c.clone()));
        paths(c, &p, out);
    }
}

/// Properties whose values are phandles (numbered differently, same structure).
const PHANDLE_PROPS: &[&str] = &["phandle", "interrupt-parent", "clocks", "gpios", "cpu"];

#[test]
fn generated_virt_dt_matches_qemu_node_for_node() {
    let q = qemu_dtb();
    let o = Fdt::parse(&ours()).unwrap();
    let mut qp = Vec::new();
    paths(&q.root, "", &mut qp);
    let mut op = Vec::new();
    paths(&o.root, "", &mut op);
    for (path, node) in &op {
        let Some((_, qn)) = qp.iter().find(|(p, _)| p == path) else {
            panic!("{path}: QEMU's virt has no such node");
        };
        let mut ours_names: Vec<&str> = node.props.iter().map(|p| p.name.as_str()).collect();
        let mut qemu_names: Vec<&str> = qn.props.iter().map(|p| p.name.as_str()).collect();
        if path == "/chosen" {
            // QEMU adds random seeds; we add bootargs (QEMU only with -append).
            qemu_names.retain(|n| !n.ends_with("-seed"));
            ours_names.retain(|n| *n != "bootargs");
        }
        ours_names.sort_unstable();
        qemu_names.sort_unstable();
        assert_eq!(ours_names, qemu_names, "{path}: property names");
        for p in &node.props {
            if PHANDLE_PROPS.contains(&p.name.as_str()) || path == "/chosen" && p.name == "bootargs"
            {
                continue;
            }
            assert_eq!(
                Some(p.value.as_slice()),
                qn.prop(&p.name),
                "{path}: {} differs from QEMU's",
                p.name
            );
        }
    }
    // What QEMU has and we leave out: PCIe (and its MSI frame) and the platform bus.
    for (path, _) in &qp {
        let known_absent = path.starts_with("/pcie@")
            || path.starts_with("/platform-bus@")
            || path == "/intc@8000000/v2m@8020000";
        assert!(
            known_absent || op.iter().any(|(p, _)| p == path),
            "{path}: in QEMU's virt but not generated"
        );
    }
}

#[test]
fn dtc_decompiles_the_generated_virt_dt() {
    let f = tmp("ours.dtb");
    std::fs::write(&f, ours()).unwrap();
    let out = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts"])
        .arg(&f)
        .output()
        .expect("running dtc (install device-tree-compiler)");
    assert!(
        out.status.success(),
        "dtc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dts = String::from_utf8(out.stdout).unwrap();
    for want in [
        "compatible = \"linux,dummy-virt\";",
        "pl011@9000000 {",
        "compatible = \"arm,pl011\\0arm,primecell\";",
        "intc@8000000 {",
        "virtio_mmio@a003e00 {",
        "bootargs = \"console=ttyAMA0\";",
        "stdout-path = \"/pl011@9000000\";",
    ] {
        assert!(dts.contains(want), "no {want:?} in\n{dts}");
    }
}
