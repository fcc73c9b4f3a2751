//! `armboard image sysroot`: Debian arm64 packages fetched and unpacked into a cached,
//! merged-/usr root.

mod common;

use common::{run, ARMBOARD};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn image_sysroot(args: &[&str], path_env: Option<&str>) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(ARMBOARD);
    cmd.args(["image", "sysroot"]).args(args);
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    let o = run(cmd, b"", Duration::from_secs(600));
    (o.status, o.stdout_text(), o.stderr_text())
}

#[test]
fn sysroot_is_merged_usr_with_the_loader_and_is_cached() {
    let (status, out, err) = image_sysroot(&["busybox-static", "xz-utils"], None);
    assert_eq!(status, Some(0), "image sysroot failed: {err}");
    let root = PathBuf::from(out.trim());
    assert!(
        root.join("usr/bin/busybox").is_file(),
        "no busybox in {}",
        root.display()
    );
    assert!(
        root.join("usr/bin/xz").is_file(),
        "no xz in {}",
        root.display()
    );
    assert_eq!(
        std::fs::read_link(root.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert_eq!(
        std::fs::read_link(root.join("lib")).unwrap(),
        Path::new("usr/lib")
    );
    // The loader and libc come along as dependencies; package symlinks are kept.
    let ld = root.join("lib/ld-linux-aarch64.so.1");
    assert!(std::fs::symlink_metadata(&ld)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(ld.is_file(), "{} does not resolve", ld.display());
    assert!(root.join("usr/lib/aarch64-linux-gnu/liblzma.so.5").exists());
    let elf = std::fs::read(root.join("usr/bin/xz")).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(
        u16::from_le_bytes([elf[18], elf[19]]),
        183,
        "xz is not an arm64 ELF"
    );

    // A second request (in any order) is answered from the cache: apt is not even run.
    let (status, again, err) = image_sysroot(&["xz-utils", "busybox-static"], Some("/nonexistent"));
    assert_eq!(status, Some(0), "cached image sysroot failed: {err}");
    assert_eq!(again.trim(), out.trim());
}

#[test]
fn sysroot_out_dir_gets_the_same_files() {
    let out = common::workdir("sysroot-out");
    let (status, printed, err) =
        image_sysroot(&["--out", out.to_str().unwrap(), "busybox-static"], None);
    assert_eq!(status, Some(0), "image sysroot --out failed: {err}");
    assert_eq!(printed.trim(), out.to_str().unwrap());
    assert!(out.join("bin/busybox").is_file());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn unknown_package_is_a_clear_error() {
    let (status, out, err) = image_sysroot(&["armboard-no-such-package"], None);
    assert_eq!(status, Some(125), "stdout {out:?} stderr {err:?}");
    assert!(out.is_empty());
    assert!(err.contains("armboard-no-such-package"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
