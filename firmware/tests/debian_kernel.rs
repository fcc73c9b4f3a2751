//! Debian's real arm64 kernel package: fetched into the cache (needs the network or a warm
//! cache; never skipped), its vmlinuz unwrapped to an Image, its modules resolved.

use armboard_firmware::image::{KernelImage, PageSize};
use armboard_firmware::kernel::DebianKernel;

#[test]
fn debian_kernel_unwraps_and_resolves_modules() {
    let k = DebianKernel::ensure().expect("fetching linux-image-arm64");
    assert!(k.version.starts_with("6.1.0-"), "{}", k.version);
    assert!(k.version.ends_with("-arm64"), "{}", k.version);
    assert!(k.image.is_file());

    let img = KernelImage::load(&k.image).expect("unwrapping the vmlinuz");
    assert_eq!(img.text_offset, 0);
    assert_eq!(img.page_size(), PageSize::K4);
    assert!(
        img.image_size > img.bytes.len() as u64,
        "image_size covers bss"
    );
    assert!(img.bytes.len() > 10 << 20);
    // The Linux banner names the release.
    let banner = format!("Linux version {}", k.version);
    assert!(
        img.bytes
            .windows(banner.len())
            .any(|w| w == banner.as_bytes()),
        "no {banner:?} in the Image"
    );

    let set = k.module_set().expect("reading modules.dep");
    let mods = set
        .resolve(&["virtio_mmio", "virtio_blk", "ext4", "virtio_net"])
        .expect("resolving modules");
    let names: Vec<&str> = mods.iter().map(|m| m.name.as_str()).collect();
    let pos = |n: &str| names.iter().position(|&x| x == n);
    // What a virt boot relies on: the PL011 driver and virtio core are built in, the
    // virtio-mmio transport is a module.
    assert!(set.is_builtin("amba-pl011"));
    assert!(set.is_builtin("virtio_ring"));
    assert!(set.has_module("virtio_mmio"));
    eprintln!("load order: {names:?}");
    for n in [
        "virtio_mmio",
        "virtio_blk",
        "ext4",
        "virtio_net",
        "jbd2",
        "mbcache",
        "net_failover",
        "failover",
    ] {
        assert!(pos(n).is_some(), "{n} missing from {names:?}");
    }
    assert!(pos("jbd2") < pos("ext4"));
    assert!(pos("mbcache") < pos("ext4"));
    assert!(pos("failover") < pos("net_failover"));
    assert!(pos("net_failover") < pos("virtio_net"));
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "each module once: {names:?}");
    for m in &mods {
        assert!(
            m.data.starts_with(b"\x7fELF\x02\x01"),
            "{} is a 64-bit LE ELF",
            m.name
        );
        assert_eq!(
            u16::from_le_bytes([m.data[18], m.data[19]]),
            183,
            "{} is EM_AARCH64",
            m.name
        );
    }
}
