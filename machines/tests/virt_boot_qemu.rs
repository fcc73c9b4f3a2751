//! The reference check of everything loaded before the first instruction: QEMU's own virt
//! machine boots Debian's kernel (fetched by [`DebianKernel`], unwrapped and placed by
//! [`prepare`]) with the device tree [`prepare`] generates and an [`Initramfs`] of busybox,
//! to the initramfs shell. What the guest prints proves the command line, the initrd range
//! (the same as [`prepare`] chose), a module load and the console came through.
//! Needs qemu-system-aarch64 (.ci/run installs qemu-system-arm); fetches packages into the
//! cache. Never skipped.

use armboard_firmware::deb::Sysroot;
use armboard_firmware::initramfs::{Compression, Initramfs};
use armboard_firmware::kernel::DebianKernel;
use armboard_machines::virt::boot::{prepare, BootOptions};
use armboard_machines::virt::dt::VirtConfig;
use armboard_machines::virt::layout::RAM_BASE;
use std::process::Command;

const RAM: u64 = 512 << 20;

#[test]
fn qemu_boots_debian_kernel_with_generated_dtb_and_initramfs() {
    let kernel = DebianKernel::ensure().expect("fetching the kernel");
    let root = Sysroot::ensure(&["busybox-static"]).expect("fetching busybox-static");
    let busybox = root.find_program("busybox").unwrap();
    let mods = kernel
        .module_set()
        .unwrap()
        .resolve(&["virtio_mmio"])
        .unwrap();

    let mut fs = Initramfs::busybox(&busybox, "").unwrap();
    let insmod = fs.modules("lib/modules", &mods).unwrap();
    let init = format!(
        "#!/bin/sh\n/bin/busybox --install -s /bin\nmount -t proc proc /proc\nmount -t sysfs sysfs /sys\n{insmod}\
         echo ARMBOARD-INIT uname=$(uname -r)\n\
         echo ARMBOARD-CMDLINE $(cat /proc/cmdline)\n\
         echo ARMBOARD-INITRD $(hexdump -v -e '1/1 \"%02x\"' /proc/device-tree/chosen/linux,initrd-start)\n\
         grep -q virtio_mmio /proc/modules && echo ARMBOARD-MODULE virtio_mmio loaded\n\
         poweroff -f\n"
    );
    fs.file("init", 0o755, init).unwrap();
    let dir = std::env::temp_dir().join(format!("armboard-virt-boot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (k, i, d) = (
        dir.join("Image"),
        dir.join("initrd.gz"),
        dir.join("virt.dtb"),
    );
    fs.write_to(&i, Compression::Gzip).unwrap();
    let images = prepare(&BootOptions {
        kernel: kernel.image.clone(),
        initrd: Some(i.clone()),
        append: Some("console=ttyAMA0 panic=-1 quiet".into()),
        dtb: None,
        board: VirtConfig::new(1, RAM),
    })
    .expect("preparing the boot images");
    assert_eq!(images.entry(), RAM_BASE);
    std::fs::write(&k, &images.kernel.bytes).unwrap();
    std::fs::write(&d, &images.dtb.bytes).unwrap();
    let out = Command::new("timeout")
        .arg("600")
        .arg("qemu-system-aarch64")
        .args([
            "-M",
            "virt",
            "-cpu",
            "cortex-a72",
            "-m",
            "512M",
            "-nographic",
            "-net",
            "none",
        ])
        .args(["-no-reboot", "-monitor", "none", "-serial", "stdio"])
        .arg("-kernel")
        .arg(&k)
        .arg("-initrd")
        .arg(&i)
        .arg("-dtb")
        .arg(&d)
        .output()
        .expect("running qemu-system-aarch64 (install qemu-system-arm)");
    let console = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        console.contains(&format!("ARMBOARD-INIT uname={}", kernel.version)),
        "no init output; console:\n{console}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        console.contains("ARMBOARD-CMDLINE console=ttyAMA0 panic=-1 quiet"),
        "{console}"
    );
    // QEMU rewrites linux,initrd-start with its own placement (one cell in QEMU 7.2; the
    // generator writes two): the same address as prepare's.
    let start = images.initrd.as_ref().unwrap().addr;
    let seen = console
        .lines()
        .find_map(|l| l.trim().strip_prefix("ARMBOARD-INITRD "))
        .and_then(|h| u64::from_str_radix(h, 16).ok());
    assert_eq!(
        seen,
        Some(start),
        "initrd placement differs from prepare's:\n{console}"
    );
    assert!(
        console.contains("ARMBOARD-MODULE virtio_mmio loaded"),
        "{console}"
    );
}
