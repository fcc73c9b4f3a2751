//! Real arm64 programs under `armboard user`: C sources in tests/guest-src are cross-compiled
//! with aarch64-linux-gnu-gcc -static at test time and run under armboard and under
//! qemu-aarch64 (the reference); stdout and the exit status (code or signal) must agree.
//! Programs whose expected output cannot come from qemu (execve needs binfmt_misc there)
//! have a `<name>.expected` file instead.
//!
//! A run that stops on an instruction the CPU does not implement yet is reported and
//! skipped (set ARMBOARD_STRICT_GUEST_TESTS=1 to fail instead).

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CC: &str = "aarch64-linux-gnu-gcc";

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guest-src")
}

fn build(name: &str) -> Option<PathBuf> {
    if !have(CC) {
        eprintln!("{CC} not installed: skipping {name}");
        return None;
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("guest-{name}"));
    let src = src_dir().join(format!("{name}.c"));
    let st = Command::new(CC)
        .args(["-static", "-O1", "-pthread", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("run the cross compiler");
    assert!(st.success(), "compiling {}", src.display());
    Some(out)
}

fn status(o: &Output) -> String {
    match (o.status.code(), o.status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "unknown".into(),
    }
}

fn armboard(prog: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_armboard"))
        .arg("user")
        .arg(prog)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run armboard")
}

/// Whether the run hit an unimplemented instruction (the CPU is still growing).
fn cpu_missing(name: &str, o: &Output) -> bool {
    let err = String::from_utf8_lossy(&o.stderr);
    if err.contains("undefined instruction")
        && std::env::var_os("ARMBOARD_STRICT_GUEST_TESTS").is_none()
    {
        let line = err
            .lines()
            .find(|l| l.contains("undefined instruction"))
            .unwrap_or("");
        eprintln!("{name}: skipped, CPU lacks an instruction: {line}");
        return true;
    }
    false
}

fn compare_with_qemu(name: &str, args: &[&str]) {
    let Some(prog) = build(name) else { return };
    if !have("qemu-aarch64") {
        eprintln!("qemu-aarch64 not installed: skipping {name}");
        return;
    }
    let want = Command::new("qemu-aarch64")
        .arg(&prog)
        .args(args)
        .output()
        .expect("run qemu-aarch64");
    let got = armboard(&prog, args);
    if cpu_missing(name, &got) {
        return;
    }
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        String::from_utf8_lossy(&want.stdout),
        "{name}: stdout differs from qemu-aarch64 (stderr: {})",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(status(&got), status(&want), "{name}: exit status differs");
}

fn compare_with_file(name: &str) {
    let Some(prog) = build(name) else { return };
    let want = std::fs::read_to_string(src_dir().join(format!("{name}.expected"))).unwrap();
    let got = armboard(&prog, &[]);
    if cpu_missing(name, &got) {
        return;
    }
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        want,
        "{name}: stdout (stderr: {})",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(status(&got), "exit 0");
}

#[test]
fn files_and_directories_match_qemu() {
    compare_with_qemu("files", &[]);
}

#[test]
fn mmap_munmap_mprotect_mremap_match_qemu() {
    compare_with_qemu("mmap", &[]);
}

#[test]
fn pthreads_match_qemu() {
    compare_with_qemu("threads", &[]);
}

#[test]
fn fork_wait_and_signal_deaths_match_qemu() {
    compare_with_qemu("fork", &[]);
}

#[test]
fn signal_handlers_altstack_and_segv_match_qemu() {
    compare_with_qemu("signals", &[]);
}

#[test]
fn proc_self_maps_matches_qemu() {
    compare_with_qemu("maps", &[]);
}

#[test]
fn execve_of_elf_and_script() {
    compare_with_file("exec");
}

#[test]
fn exit_code_and_write_from_assembly() {
    // Needs only MOV, ADR and SVC: runs on the CPU of any stage.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("hello.s");
    std::fs::write(
        &src,
        ".global _start\n_start:\n mov x0, #1\n adr x1, msg\n mov x2, #6\n mov x8, #64\n svc #0\n \
         mov x0, #7\n mov x8, #93\n svc #0\nmsg: .ascii \"hello\\n\"\n",
    )
    .unwrap();
    let obj = dir.join("hello.o");
    let exe = dir.join("hello-asm");
    if Command::new("aarch64-linux-gnu-as")
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .is_err()
    {
        eprintln!("aarch64-linux-gnu-as not installed: skipping");
        return;
    }
    let st = Command::new("aarch64-linux-gnu-ld")
        .arg(&obj)
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap();
    assert!(st.success());
    let o = armboard(&exe, &[]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello\n");
    assert_eq!(o.status.code(), Some(7));
}

#[test]
fn bad_programs_give_one_line_errors() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let missing = armboard(&dir.join("no-such-program"), &[]);
    assert_eq!(missing.status.code(), Some(125));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    let text = dir.join("not-elf.txt");
    std::fs::write(&text, "just text\n").unwrap();
    let o = armboard(&text, &[]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an ELF"));
    // A host (x86-64) binary is refused by architecture.
    let o = armboard(Path::new("/bin/true"), &[]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("aarch64"));
}
