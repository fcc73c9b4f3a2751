//! `armboard run`: a container on the emulated virt board. Every boot costs about a minute,
//! so the checks share two boots: the default greeting, and one container (from a host
//! directory) that checks namespaces, limits, environment, stderr and its exit status. The
//! bad-input checks never boot.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const ARMBOARD: &str = env!("CARGO_BIN_EXE_armboard");

fn work_dir(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("run_container")
        .join(tag);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run armboard with a time limit (a hung guest fails the test instead of hanging it).
fn armboard(args: &[&str], limit: Duration) -> Output {
    armboard_watching(args, limit, |_, _| {})
}

/// [`armboard`], calling `watch` with the stdout so far and armboard's pid after each read.
fn armboard_watching(
    args: &[&str],
    limit: Duration,
    mut watch: impl FnMut(&[u8], u32) + Send + 'static,
) -> Output {
    let mut child = Command::new(ARMBOARD)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    // Read the pipes on threads so a chatty guest cannot block on a full pipe.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let pid = child.id();
    let to = std::thread::spawn(move || {
        let mut v = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut so, &mut buf) {
            v.extend_from_slice(&buf[..n]);
            watch(&v, pid);
        }
        v
    });
    let te = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut se, &mut v).ok();
        v
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "armboard {args:?} did not finish in {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&to.join().unwrap()),
                String::from_utf8_lossy(&te.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: to.join().unwrap(),
        stderr: te.join().unwrap(),
    }
}

const BOOT_LIMIT: Duration = Duration::from_secs(900);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn run_without_arguments_prints_the_greeting() {
    let out = armboard(&["run"], BOOT_LIMIT);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{so}\nstderr:\n{se}");
    assert!(
        so.starts_with("Hello from a container on an emulated aarch64 board: Linux 6.1"),
        "stdout:\n{so}\nstderr:\n{se}"
    );
    assert!(so.contains("hostname container, PID 1"), "{so}");
    // Only the container's output: no kernel log.
    assert_eq!(so.lines().count(), 1, "{so}");
    assert!(!so.contains("] "), "kernel messages in stdout: {so}");
}

/// Two host directories for `--volume`: `rw` (at /data in the container) and `ro` (at /ro,
/// read-only), with files [`VOLUME_SCRIPT`] reads, changes and removes.
struct Volumes {
    rw: PathBuf,
    ro: PathBuf,
    args: Vec<String>,
}

impl Volumes {
    fn new(dir: &Path) -> Volumes {
        let (rw, ro) = (dir.join("vol-rw"), dir.join("vol-ro"));
        std::fs::create_dir_all(rw.join("sub")).unwrap();
        std::fs::create_dir_all(&ro).unwrap();
        std::fs::write(rw.join("in.txt"), "from the host\n").unwrap();
        std::fs::write(rw.join("del.txt"), "delete me\n").unwrap();
        std::fs::write(rw.join("sub/keep"), "before\n").unwrap();
        std::fs::write(ro.join("r"), "read-only\n").unwrap();
        let args = vec![
            "--volume".into(),
            format!("{}:/data", rw.display()),
            "--volume".into(),
            format!("{}:/ro:ro", ro.display()),
        ];
        Volumes { rw, ro, args }
    }

    /// The container's view ([`VOLUME_SCRIPT`]'s lines in `stdout`) and the host's after
    /// the run.
    fn check(&self, stdout: &str, ctx: &str) {
        for want in [
            "in=from the host",
            "ro=read-only",
            "ro-write=refused",
            "lost+found=absent",
        ] {
            assert!(stdout.lines().any(|l| l == want), "no {want:?} in {ctx}");
        }
        let read = |p: PathBuf| {
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}: {ctx}", p.display()))
        };
        assert_eq!(read(self.rw.join("in.txt")), "from the host\n");
        assert_eq!(
            read(self.rw.join("out.txt")),
            "written in the container\n",
            "{ctx}"
        );
        assert_eq!(read(self.rw.join("sub/keep")), "changed\n", "{ctx}");
        assert_eq!(read(self.rw.join("new/deeper/f")), "deep\n", "{ctx}");
        assert!(!self.rw.join("del.txt").exists(), "del.txt is back: {ctx}");
        assert!(!self.rw.join("lost+found").exists(), "{ctx}");
        // Written by the guest, whose clock is the host's (on the Pi too, which has no RTC).
        let age = std::fs::metadata(self.rw.join("out.txt"))
            .unwrap()
            .modified()
            .unwrap()
            .elapsed()
            .unwrap_or_default();
        assert!(
            age < Duration::from_secs(3600),
            "out.txt is {age:?} old: {ctx}"
        );
        let ro: Vec<_> = std::fs::read_dir(&self.ro)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(ro, ["r"], "{ctx}");
    }
}

/// What the container does with [`Volumes`] (busybox's applets by their full name: the OCI
/// test image links only a few).
const VOLUME_SCRIPT: &str = r#"
echo "in=$(cat /data/in.txt)"
echo "ro=$(cat /ro/r)"
if [ -e /data/lost+found ]; then echo lost+found=present; else echo lost+found=absent; fi
echo "written in the container" > /data/out.txt
/bin/busybox rm /data/del.txt
/bin/busybox mkdir -p /data/new/deeper
echo deep > /data/new/deeper/f
echo changed > /data/sub/keep
if (echo x > /ro/x) 2>/dev/null; then echo ro-write=allowed; else echo ro-write=refused; fi
"#;

#[test]
fn volumes_carry_a_host_directory_in_and_the_containers_changes_back() {
    // Under the interpreter (the other volume tests run the default engine): the builtin
    // busybox container with a read-write and a read-only volume, each on a virtio disk.
    let dir = work_dir("volumes");
    let v = Volumes::new(&dir);
    let mut args: Vec<&str> = vec!["run", "--engine", "interp"];
    args.extend(v.args.iter().map(String::as_str));
    let script = format!("{VOLUME_SCRIPT}exit 4\n");
    args.extend(["--", "/bin/sh", "-c", &script]);
    let out = armboard(&args, BOOT_LIMIT);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    let ctx = format!("stdout:\n{so}\nstderr:\n{se}");
    assert_eq!(out.status.code(), Some(4), "{ctx}");
    v.check(&so, &ctx);
}

/// A root directory with busybox and the applets the checks use.
fn busybox_root(dir: &Path) -> PathBuf {
    let bb = armboard_firmware::deb::Sysroot::ensure(&["busybox-static"])
        .expect("fetching busybox-static")
        .find_program("busybox")
        .expect("busybox in busybox-static");
    let root = dir.join("root");
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(&bb, root.join("bin/busybox")).unwrap();
    for a in [
        "sh", "cat", "hostname", "head", "tail", "sleep", "seq", "echo", "ls", "wc",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    std::fs::write(root.join("etc/motd"), "from the host directory\n").unwrap();
    root
}

/// The checks in the container: output of `key=value` lines, an error on stderr, exit 7.
const SCRIPT: &str = r#"
echo "hostname=$(hostname)"
echo "pid=$$"
echo "init=$(cat /proc/1/cmdline | head -c 7)"
echo "foo=$FOO"
echo "motd=$(cat /etc/motd)"
echo "cwd=$(pwd)"
# 64 MiB into a memory cgroup of 32 MiB: tail keeps it all, and is OOM-killed.
head -c 67108864 /dev/zero | tail -c 67108860 > /dev/null
echo "hog=$?"
# Fork until the pids limit refuses; the subshell gives up at the first refusal.
( for i in $(seq 1 60); do sleep 60 & done ) 2>/dev/null
set -- /proc/[0-9]*
echo "procs=$#"
kill -9 -1
echo "to stderr" >&2
exit 7
"#;

#[test]
fn container_from_a_directory_has_its_own_namespaces_limits_and_exit_status() {
    let dir = work_dir("limits");
    let root = busybox_root(&dir);
    let out = armboard(
        &[
            "run",
            "--rootfs",
            root.to_str().unwrap(),
            "--env",
            "FOO=bar baz",
            "--workdir",
            "/tmp",
            "--container-memory",
            "32M",
            "--pids-limit",
            "20",
            "--",
            "/bin/sh",
            "-c",
            SCRIPT,
        ],
        BOOT_LIMIT,
    );
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    let ctx = format!("stdout:\n{so}\nstderr:\n{se}");
    assert_eq!(out.status.code(), Some(7), "{ctx}");
    let value = |k: &str| {
        so.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k}= in {ctx}"))
            .to_string()
    };
    // UTS and PID namespaces: the guest is "armboard" and its PID 1 is the init script.
    assert_eq!(value("hostname"), "container", "{ctx}");
    assert_eq!(value("pid"), "1", "{ctx}");
    assert_eq!(value("init"), "/bin/sh", "{ctx}");
    assert_eq!(value("foo"), "bar baz");
    assert_eq!(value("motd"), "from the host directory");
    assert_eq!(value("cwd"), "/tmp");
    // SIGKILL from the OOM killer: 128 + 9.
    assert_eq!(value("hog"), "137", "{ctx}");
    let procs: u32 = value("procs").parse().unwrap();
    assert!((2..=20).contains(&procs), "procs={procs}: {ctx}");
    assert!(se.contains("to stderr"), "{ctx}");
    assert!(se.contains("ran out of memory"), "{ctx}");
    assert!(se.contains("process limit"), "{ctx}");
    assert!(!so.contains("to stderr"), "{ctx}");
}

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(st.success(), "{cmd}");
}

/// The sha256 digest of a file, `sha256:HEX`.
fn digest(file: &Path) -> String {
    let out = Command::new("sha256sum").arg(file).output().unwrap();
    assert!(out.status.success(), "sha256sum {}", file.display());
    let hex = text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    format!("sha256:{hex}")
}

/// Writes `data` as a blob of the OCI layout `dir`; returns its digest.
fn blob(dir: &Path, data: &[u8]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let tmp = dir.join("blob.tmp");
    std::fs::write(&tmp, data).unwrap();
    let d = digest(&tmp);
    let hex = d.trim_start_matches("sha256:");
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::rename(&tmp, dir.join("blobs/sha256").join(hex)).unwrap();
    d
}

/// An OCI image layout: a busybox layer, then a gzip layer that deletes /etc/secret (a
/// whiteout) and adds /app/msg; the config sets Env, Entrypoint, Cmd and WorkingDir. Sizes
/// and the config's diff_ids are real (containerd checks them).
fn oci_layout(dir: &Path, arch: &str) -> PathBuf {
    let bb = armboard_firmware::deb::Sysroot::ensure(&["busybox-static"])
        .expect("fetching busybox-static")
        .find_program("busybox")
        .expect("busybox in busybox-static");
    let (l1, l2, img) = (dir.join("l1"), dir.join("l2"), dir.join("image"));
    for d in [
        l1.join("bin"),
        l1.join("etc"),
        l1.join("app"),
        l2.join("etc"),
        l2.join("app"),
    ] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(&bb, l1.join("bin/busybox")).unwrap();
    for a in ["sh", "cat", "echo", "pwd"] {
        std::os::unix::fs::symlink("busybox", l1.join("bin").join(a)).unwrap();
    }
    std::fs::write(l1.join("etc/secret"), "lower layer\n").unwrap();
    std::fs::write(l2.join("etc/.wh.secret"), "").unwrap();
    std::fs::write(l2.join("app/msg"), "from layer 2\n").unwrap();
    sh(&format!(
        "tar -C {} -cf {}/l1.tar .",
        l1.display(),
        dir.display()
    ));
    sh(&format!(
        "tar -C {} -cf {}/l2.tar . && gzip -n -k {}/l2.tar",
        l2.display(),
        dir.display(),
        dir.display()
    ));
    let (diff1, diff2) = (digest(&dir.join("l1.tar")), digest(&dir.join("l2.tar")));
    let t1 = std::fs::read(dir.join("l1.tar")).unwrap();
    let t2 = std::fs::read(dir.join("l2.tar.gz")).unwrap();
    let (d1, d2) = (blob(&img, &t1), blob(&img, &t2));
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","config":{{"Env":["PATH=/bin","GREETING=from the image"],"Entrypoint":["/bin/sh","-c"],"Cmd":["echo default cmd"],"WorkingDir":"/app"}},"rootfs":{{"type":"layers","diff_ids":["{diff1}","{diff2}"]}}}}"#
    );
    let dc = blob(&img, config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{dc}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d1}","size":{}}},{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d2}","size":{}}}]}}"#,
        config.len(),
        t1.len(),
        t2.len()
    );
    let dm = blob(&img, manifest.as_bytes());
    std::fs::write(
        img.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{dm}","size":{},"platform":{{"os":"linux","architecture":"{arch}"}}}}]}}"#,
            manifest.len()
        ),
    )
    .unwrap();
    std::fs::write(img.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    img
}

/// The checks of the OCI image's layers and configuration.
const OCI_SCRIPT_HEAD: &str = r#"
echo "msg=$(cat msg)"
echo "cwd=$(pwd)"
echo "greeting=$GREETING"
echo "over=$OVER"
if [ -e /etc/secret ]; then echo secret=present; else echo secret=gone; fi
"#;

#[test]
fn oci_image_layers_config_and_overrides_apply() {
    let dir = work_dir("oci");
    let img = oci_layout(&dir, "arm64");
    let out = armboard(
        &[
            "run",
            "--oci",
            img.to_str().unwrap(),
            "--env",
            "OVER=ridden",
            "--",
            &format!("{OCI_SCRIPT_HEAD}exit 5\n"),
        ],
        BOOT_LIMIT,
    );
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    let ctx = format!("stdout:\n{so}\nstderr:\n{se}");
    assert_eq!(out.status.code(), Some(5), "{ctx}");
    for want in [
        "msg=from layer 2",
        "cwd=/app",
        "greeting=from the image",
        "over=ridden",
        "secret=gone",
    ] {
        assert!(so.lines().any(|l| l == want), "no {want:?} in {ctx}");
    }
}

/// The OCI layout of [`oci_layout`] as a gzip'd tarball (`ctr images import` reads it after
/// the host decompresses it).
fn oci_archive(dir: &Path) -> PathBuf {
    let img = oci_layout(dir, "arm64");
    let tarball = dir.join("image.tar.gz");
    sh(&format!(
        "tar -C {} -czf {} .",
        img.display(),
        tarball.display()
    ));
    tarball
}

#[test]
fn containerd_imports_an_oci_archive_and_runs_it_with_ctr() {
    let dir = work_dir("containerd");
    let tarball = oci_archive(&dir);
    let v = Volumes::new(&dir);
    let script = format!("{OCI_SCRIPT_HEAD}{VOLUME_SCRIPT}echo \"host=$(cat /proc/sys/kernel/hostname)\"\necho oops >&2\nexit 5\n");
    let mut args = vec![
        "run",
        "--runtime",
        "containerd",
        "--oci",
        tarball.to_str().unwrap(),
        "--env",
        "OVER=ridden",
        "--hostname",
        "ctr-box",
    ];
    args.extend(v.args.iter().map(String::as_str));
    args.extend(["--", &script]);
    let out = armboard(&args, BOOT_LIMIT);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    let ctx = format!("stdout:\n{so}\nstderr:\n{se}");
    assert_eq!(out.status.code(), Some(5), "{ctx}");
    v.check(&so, &ctx);
    for want in [
        "msg=from layer 2",
        "cwd=/app",
        "greeting=from the image",
        "over=ridden",
        "secret=gone",
        "host=ctr-box",
    ] {
        assert!(so.lines().any(|l| l == want), "no {want:?} in {ctx}");
    }
    assert!(se.contains("oops"), "{ctx}");
    assert!(!so.contains("oops"), "{ctx}");
    assert!(!so.contains("] "), "kernel messages in stdout: {ctx}");
}

/// Runs [`oci_archive`] with `--runtime runtime`, `--env OVER=ridden`, `--hostname box`
/// and `extra` options, the container running `script` too; checks the layers,
/// configuration and overrides, the hostname and PID 1, stderr apart from stdout, the
/// [`Volumes`], and that the status is `code`. Returns stdout and stderr.
fn image_engine_runs_an_oci_archive(
    runtime: &str,
    code: i32,
    extra: &[&str],
    script: &str,
) -> (String, String) {
    let dir = work_dir(runtime);
    let tarball = oci_archive(&dir);
    let box_name = format!("{runtime}-box");
    let v = Volumes::new(&dir);
    let cmd = format!(
        "{OCI_SCRIPT_HEAD}echo \"host=$(hostname)\"\necho \"pid=$$\"\n{VOLUME_SCRIPT}{script}echo oops >&2\nexit {code}\n"
    );
    let mut args = vec![
        "run",
        "--runtime",
        runtime,
        "--oci",
        tarball.to_str().unwrap(),
        "--env",
        "OVER=ridden",
        "--hostname",
        &box_name,
    ];
    args.extend(extra);
    args.extend(v.args.iter().map(String::as_str));
    args.extend(["--", &cmd]);
    let out = armboard(&args, BOOT_LIMIT);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    let ctx = format!("stdout:\n{so}\nstderr:\n{se}");
    assert_eq!(out.status.code(), Some(code), "{ctx}");
    v.check(&so, &ctx);
    let host = format!("host={box_name}");
    for want in [
        "msg=from layer 2",
        "cwd=/app",
        "greeting=from the image",
        "over=ridden",
        "secret=gone",
        &host,
        "pid=1",
    ] {
        assert!(so.lines().any(|l| l == want), "no {want:?} in {ctx}");
    }
    assert!(se.contains("oops"), "{ctx}");
    assert!(!so.contains("oops"), "{ctx}");
    assert!(!so.contains("] "), "kernel messages in stdout: {ctx}");
    (so, se)
}

#[test]
fn podman_runs_an_oci_archive_with_its_settings_and_exit_status() {
    image_engine_runs_an_oci_archive("podman", 7, &[], "");
}

/// The docker container's look at its storage and network: the file system of its root,
/// eth0's address, and pings of docker0's address and (through the NAT) of the board's
/// user-network gateway.
const DOCKER_NET_SCRIPT: &str = r#"echo "root=$(/bin/busybox awk '$2 == "/" {print $3}' /proc/mounts)"
echo "eth0=$(/bin/busybox ip -4 -o addr show eth0 | /bin/busybox awk '{print $4}')"
/bin/busybox ping -c 1 -W 10 172.17.0.1 >/dev/null && echo gateway=answers
/bin/busybox ping -c 1 -W 10 10.0.2.2 >/dev/null && echo user-network=answers
"#;

#[test]
fn docker_loads_an_oci_archive_and_runs_it_with_its_settings_and_exit_status() {
    // Docker 20.10 loads no OCI layout: the host hands it a docker archive made from it.
    // By default the container's root is an overlay2 mount and it is on docker0, NATed
    // out of the board's NIC (the guest's console, shown with --verbose, says which
    // driver and network dockerd got and how many packets the MASQUERADE rule rewrote).
    // With 4 vCPUs: the NAT needs every vCPU to drop the kernel text the kernel patches
    // when netfilter's tables load (instruction-cache invalidations are broadcast).
    let (so, se) = image_engine_runs_an_oci_archive(
        "docker",
        6,
        &["--verbose", "--smp", "4"],
        DOCKER_NET_SCRIPT,
    );
    let ctx = format!("stdout:\n{so}\nstderr:\n{se}");
    for want in [
        "root=overlay",
        "eth0=172.17.0.2/16",
        "gateway=answers",
        "user-network=answers",
    ] {
        assert!(so.lines().any(|l| l == want), "no {want:?} in {ctx}");
    }
    assert!(
        se.contains("(storage driver overlay2, network bridge)"),
        "{ctx}"
    );
    let masqueraded = se
        .lines()
        .find_map(|l| l.strip_prefix("armboard-init: docker0 MASQUERADE rule: "))
        .and_then(|r| r.strip_suffix(" packets")?.trim().parse::<u64>().ok());
    assert!(
        masqueraded.is_some_and(|n| n >= 1),
        "no NAT of the container's ping to 10.0.2.2: {ctx}"
    );
}

#[test]
fn docker_bad_inputs_fail_before_booting() {
    let dir = work_dir("docker-bad");
    expect_error(
        &["run", "--runtime", "docker"],
        125,
        "--runtime docker runs an image: give --oci IMAGE",
    );
    let corrupt = dir.join("corrupt.tar");
    std::fs::write(&corrupt, vec![0x42u8; 5000]).unwrap();
    expect_error(
        &[
            "run",
            "--runtime",
            "docker",
            "--oci",
            corrupt.to_str().unwrap(),
        ],
        125,
        "corrupt.tar",
    );
    let amd64 = oci_layout(&dir, "amd64");
    expect_error(
        &[
            "run",
            "--runtime",
            "docker",
            "--oci",
            amd64.to_str().unwrap(),
        ],
        125,
        "image is linux/amd64, board is arm64",
    );
}

#[test]
fn runc_runs_the_builtin_container_and_returns_its_status() {
    let out = armboard(
        &[
            "run",
            "--runtime",
            "runc",
            "--",
            "/bin/sh",
            "-c",
            "echo \"hello from runc, PID $$, $(hostname)\"; exit 3",
        ],
        BOOT_LIMIT,
    );
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "stdout:\n{so}\nstderr:\n{se}");
    assert_eq!(so.trim_end(), "hello from runc, PID 1, container", "{se}");
}

fn expect_error(args: &[&str], code: i32, what: &str) {
    expect_error_with_limit(args, code, what, Duration::from_secs(120))
}

fn expect_error_with_limit(args: &[&str], code: i32, what: &str, limit: Duration) {
    let out = armboard(args, limit);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert!(err.contains(what), "{args:?}: expected {what:?} in {err}");
}

#[test]
fn bad_run_inputs_give_clear_errors_without_booting() {
    let dir = work_dir("bad");
    expect_error(
        &["run", "--rootfs", "/nonexistent/root", "--", "sh"],
        125,
        "/nonexistent/root",
    );
    let file = dir.join("plain-file");
    std::fs::write(&file, "x").unwrap();
    expect_error(
        &["run", "--rootfs", file.to_str().unwrap(), "--", "sh"],
        125,
        "not a directory",
    );
    let empty = dir.join("empty-root");
    std::fs::create_dir_all(&empty).unwrap();
    expect_error(
        &[
            "run",
            "--rootfs",
            empty.to_str().unwrap(),
            "--",
            "no-such-cmd",
        ],
        127,
        "no-such-cmd: command not found",
    );
    expect_error(&["run", "--env", "NOEQUALS"], 125, "KEY=VALUE");
    expect_error(&["run", "--volume", "no-colon"], 125, "expected HOST:GUEST");
    expect_error(
        &["run", "--volume", "/tmp:relative"],
        125,
        "\"relative\" is not absolute",
    );
    let vol = format!("{}:/data", file.display());
    expect_error(&["run", "--volume", &vol], 125, "not a directory");
    expect_error(
        &["run", "--volume", "/nonexistent/dir:/in:ro"],
        125,
        "/nonexistent/dir",
    );
    let twice = format!("{}:/data", empty.display());
    expect_error(
        &["run", "--volume", &twice, "--volume", &twice],
        125,
        "two volumes at /data",
    );
    expect_error(
        &["run", "--runtime", "containerd"],
        125,
        "--runtime containerd runs an image: give --oci IMAGE",
    );
    expect_error(
        &["run", "--runtime", "podman"],
        125,
        "--runtime podman runs an image: give --oci IMAGE",
    );
    expect_error(
        &[
            "run",
            "--runtime",
            "containerd",
            "--oci",
            "/nonexistent.tar",
            "--pids-limit",
            "5",
        ],
        125,
        "--pids-limit is not supported with --runtime containerd",
    );
    expect_error(
        &["run", "--network", "bridge"],
        125,
        "--network bridge needs --runtime docker",
    );
    expect_error(
        &["run", "--container-memory", "lots"],
        125,
        "--container-memory",
    );
    let corrupt = dir.join("corrupt.tar");
    std::fs::write(&corrupt, vec![0x42u8; 5000]).unwrap();
    expect_error(
        &["run", "--oci", corrupt.to_str().unwrap()],
        125,
        "corrupt.tar",
    );
    let amd64 = oci_layout(&work_dir("amd64"), "amd64");
    expect_error(
        &["run", "--oci", amd64.to_str().unwrap()],
        125,
        "image is linux/amd64, board is arm64",
    );
}

#[test]
fn guest_image_holds_crun_with_its_libraries_and_is_cached() {
    let build = || {
        let out = armboard(&["image", "build"], Duration::from_secs(600));
        assert!(out.status.success(), "{}", text(&out.stderr));
        let so = text(&out.stdout);
        let initrd = so
            .lines()
            .find_map(|l| l.strip_prefix("initrd "))
            .unwrap_or_else(|| panic!("no initrd in {so}"))
            .to_string();
        (initrd, text(&out.stderr))
    };
    let (first, _) = build();
    let (second, log) = build();
    assert_eq!(first, second);
    assert!(log.contains("cached"), "second build: {log}");
    let cpio = Command::new("zcat").arg(&first).output().unwrap();
    assert!(cpio.status.success());
    let entries = armboard_firmware::cpio::read_newc(&cpio.stdout).unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    for want in [
        "init",
        "armboard/stage2",
        "bin/busybox",
        "usr/bin/crun",
        "usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
        "usr/lib/aarch64-linux-gnu/libc.so.6",
        "usr/lib/aarch64-linux-gnu/libsystemd.so.0",
        "usr/lib/aarch64-linux-gnu/libseccomp.so.2",
        "usr/lib/aarch64-linux-gnu/libyajl.so.2",
        "usr/lib/aarch64-linux-gnu/libcap.so.2",
        "armboard/modules/virtio_mmio.ko",
        "armboard/modules/ext4.ko",
    ] {
        assert!(names.contains(&want), "{want} not in the image: {names:?}");
    }
}

#[test]
fn run_timeout_stops_the_board_with_an_error() {
    let t = Instant::now();
    expect_error(
        &["run", "--timeout", "3", "--", "sleep", "1000"],
        125,
        "before the container finished",
    );
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
}

#[test]
fn missing_command_in_the_builtin_container_is_reported_by_the_guest() {
    expect_error_with_limit(
        &["run", "--", "no-such-program", "x"],
        127,
        "no-such-program: command not found in the container",
        BOOT_LIMIT,
    );
}

/// The devices of the container's root and of /data, from /proc/mounts.
const ROOT_DEVICE: &str = r#"while read -r dev at rest; do
  case "$at" in /) echo "root=$dev" ;; /data) echo "/data=$dev" ;; esac
done < /proc/mounts
"#;

/// Counts the CPUs in /proc/cpuinfo with the shell alone.
const COUNT_CPUS: &str = r#"n=0
while read -r k rest; do [ "$k" = processor ] && n=$((n + 1)); done < /proc/cpuinfo
echo "cpus=$n"
"#;

#[test]
fn an_oci_image_runs_on_the_raspberry_pi_3b_from_its_sd_card() {
    // The same image as on virt; on the Pi its root file system is the board's SD card
    // (mmcblk0 through the SDHOST controller and DMA) and the watchdog powers it off.
    // With volumes the card has a partition table: the root is mmcblk0p1, the volumes
    // the next partitions.
    let dir = work_dir("oci-pi");
    let img = oci_layout(&dir, "arm64");
    let v = Volumes::new(&dir);
    let script = format!("{OCI_SCRIPT_HEAD}{COUNT_CPUS}{VOLUME_SCRIPT}{ROOT_DEVICE}exit 5\n");
    let mut args: Vec<&str> = vec![
        "run",
        "--machine",
        "raspi3b",
        "--oci",
        img.to_str().unwrap(),
    ];
    args.extend(v.args.iter().map(String::as_str));
    args.extend(["--", &script]);
    let out = armboard(&args, BOOT_LIMIT);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    let ctx = format!("stdout:\n{so}\nstderr:\n{se}");
    assert_eq!(out.status.code(), Some(5), "{ctx}");
    for want in [
        "msg=from layer 2",
        "cwd=/app",
        "secret=gone",
        "cpus=4",
        "root=/dev/mmcblk0p1",
        "/data=/dev/mmcblk0p2",
    ] {
        assert!(so.lines().any(|l| l == want), "no {want:?} in {ctx}");
    }
    v.check(&so, &ctx);
}

#[test]
fn a_signal_stops_the_board_and_the_volume_is_still_copied_back() {
    // SIGINT to `armboard run` alone (as `kill -INT` would; a terminal's Ctrl-C reaches the
    // board too): the board stops, what the guest wrote and synced reaches the host
    // directory, and the exit status is 128 + SIGINT.
    let dir = work_dir("signal");
    let volume = format!("{}:/data", dir.join("data").display());
    let script = "echo kept > /data/f; sync; echo READY; sleep 600";
    let args = ["run", "--volume", &volume, "--", "/bin/sh", "-c", script];
    let mut sent = false;
    let out = armboard_watching(&args, BOOT_LIMIT, move |seen, pid| {
        if !sent && seen.windows(5).any(|w| w == b"READY") {
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
            sent = true;
        }
    });
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    let ctx = format!("stdout:\n{so}\nstderr:\n{se}");
    assert!(so.contains("READY"), "{ctx}");
    assert_eq!(out.status.code(), Some(128 + 2), "{ctx}");
    assert_eq!(
        std::fs::read_to_string(dir.join("data/f")).ok().as_deref(),
        Some("kept\n"),
        "{ctx}"
    );
    assert!(se.contains("stopped by signal 2"), "{ctx}");
}
