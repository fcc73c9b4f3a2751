//! An initramfs for a busybox boot (Debian's busybox-static plus modules of Debian's
//! kernel) written gzip-compressed, then read by the host's own `gzip` and `cpio` as the
//! kernel would unpack it. Fetches packages into the cache (never skipped).

use armboard_firmware::deb::Sysroot;
use armboard_firmware::initramfs::{Compression, Initramfs};
use armboard_firmware::kernel::DebianKernel;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("armboard-initramfs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `cmd` with `input` on stdin, in `dir`; returns stdout.
fn pipe(cmd: &mut Command, input: &[u8], dir: &Path) -> Vec<u8> {
    let mut child = cmd
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (install cpio and gzip)"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn host_cpio_unpacks_busybox_initramfs_with_modules() {
    let root = Sysroot::ensure(&["busybox-static"]).expect("fetching busybox-static");
    let busybox = root
        .find_program("busybox")
        .expect("busybox in the sysroot");
    let kernel = DebianKernel::ensure().expect("fetching the kernel");
    let mods = kernel
        .module_set()
        .unwrap()
        .resolve(&["virtio_mmio", "virtio_blk"])
        .unwrap();

    let mut init =
        String::from("#!/bin/sh\n/bin/busybox --install -s /bin\nmount -t proc proc /proc\n");
    let mut fs = Initramfs::busybox(&busybox, "").unwrap();
    init.push_str(&fs.modules("lib/modules", &mods).unwrap());
    init.push_str("exec sh\n");
    fs.file("init", 0o755, init.clone()).unwrap();
    let gz = fs.to_bytes(Compression::Gzip).unwrap();

    let dir = tmpdir("host");
    let cpio = pipe(Command::new("gzip").arg("-dc"), &gz, &dir);
    assert_eq!(cpio, fs.to_cpio().unwrap());

    // The listing shows types, modes and device numbers (no privileges needed).
    let list = String::from_utf8(pipe(
        Command::new("cpio").args(["-t", "-v", "--quiet"]),
        &cpio,
        &dir,
    ))
    .unwrap();
    let line = |name: &str| {
        list.lines()
            .find(|l| l.ends_with(&format!(" {name}")) || l.contains(&format!(" {name} -> ")))
            .unwrap_or_else(|| panic!("{name} not listed in\n{list}"))
            .to_string()
    };
    assert!(
        line("dev/console").starts_with("crw-------"),
        "{}",
        line("dev/console")
    );
    assert!(
        line("dev/console").contains("5,   1") || line("dev/console").contains("5, 1"),
        "{}",
        line("dev/console")
    );
    assert!(line("dev/null").starts_with("crw-rw-rw-"));
    assert!(line("bin/sh").starts_with("lrwxrwxrwx") && line("bin/sh").ends_with("-> busybox"));
    assert!(line("init").starts_with("-rwxr-xr-x"));
    assert!(line("proc").starts_with("drwxr-xr-x"));

    // Extract everything but the device nodes (mknod needs root) and compare contents.
    pipe(
        Command::new("cpio").args([
            "-i",
            "-d",
            "--quiet",
            "--no-absolute-filenames",
            "-f",
            "dev/*",
        ]),
        &cpio,
        &dir,
    );
    assert_eq!(
        std::fs::read(dir.join("bin/busybox")).unwrap(),
        std::fs::read(&busybox).unwrap()
    );
    assert_eq!(std::fs::read_to_string(dir.join("init")).unwrap(), init);
    assert_eq!(
        std::fs::read_link(dir.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    for m in &mods {
        let got = std::fs::read(dir.join("lib/modules").join(&m.file_name)).unwrap();
        assert_eq!(got, m.data, "{}", m.file_name);
    }
    assert!(
        init.contains("insmod /lib/modules/virtio_mmio.ko\ninsmod /lib/modules/virtio_blk.ko\n"),
        "{init}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
