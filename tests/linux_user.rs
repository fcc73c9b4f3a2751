//! Real arm64 programs under `armboard user`: C sources in tests/guest-src are cross-compiled
//! with aarch64-linux-gnu-gcc -static at test time and run under armboard and under
//! qemu-aarch64 (the reference); stdout and the exit status (code or signal) must agree.
//! Programs whose expected output cannot come from qemu (execve needs binfmt_misc there)
//! have a `<name>.expected` file instead.
//!
//! Every program runs under each engine (interp, jit, tiered). Nothing is skipped: a missing
//! cross compiler or qemu-aarch64 is a failure naming what to install (.ci/run installs them).

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CC: &str = "aarch64-linux-gnu-gcc";

/// Engines every program runs under.
const ENGINES: [&str; 3] = ["interp", "jit", "tiered"];

fn require(tool: &str) {
    assert!(
        Command::new(tool).arg("--version").output().is_ok(),
        "{tool} is needed for this test (apt-get install gcc-aarch64-linux-gnu qemu-user)"
    );
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guest-src")
}

fn build(name: &str) -> PathBuf {
    require(CC);
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("guest-{name}"));
    let src = src_dir().join(format!("{name}.c"));
    let st = Command::new(CC)
        .args(["-static", "-O1", "-pthread", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("run the cross compiler");
    assert!(st.success(), "compiling {}", src.display());
    out
}

fn status(o: &Output) -> String {
    match (o.status.code(), o.status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "unknown".into(),
    }
}

fn armboard(engine: &str, prog: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_armboard"))
        .args(["user", "--engine", engine])
        .arg(prog)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run armboard")
}

fn compare_with_qemu(name: &str, args: &[&str]) {
    let prog = build(name);
    require("qemu-aarch64");
    let want = Command::new("qemu-aarch64")
        .arg(&prog)
        .args(args)
        .output()
        .expect("run qemu-aarch64");
    for engine in ENGINES {
        let got = armboard(engine, &prog, args);
        assert_eq!(
            String::from_utf8_lossy(&got.stdout),
            String::from_utf8_lossy(&want.stdout),
            "{name} ({engine}): stdout differs from qemu-aarch64 (stderr: {})",
            String::from_utf8_lossy(&got.stderr)
        );
        assert_eq!(
            status(&got),
            status(&want),
            "{name} ({engine}): exit status differs"
        );
    }
}

fn compare_with_file(name: &str) {
    let prog = build(name);
    let want = std::fs::read_to_string(src_dir().join(format!("{name}.expected"))).unwrap();
    for engine in ENGINES {
        let got = armboard(engine, &prog, &[]);
        assert_eq!(
            String::from_utf8_lossy(&got.stdout),
            want,
            "{name} ({engine}): stdout (stderr: {})",
            String::from_utf8_lossy(&got.stderr)
        );
        assert_eq!(status(&got), "exit 0", "{name} ({engine})");
    }
}

#[test]
fn generated_code_is_seen_after_cache_flush_and_mprotect() {
    compare_with_qemu("selfmod", &[]);
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
fn faulting_reads_in_compiled_code_match_qemu() {
    // Compiled code reads unchecked while the guest has no SIGSEGV handler (the host
    // mapping of what it may not read is inaccessible): such a read must still end the
    // process with SIGSEGV, mprotect and mremap must keep the host mapping in step, and a
    // handler installed later must see precise faults.
    compare_with_qemu("wildread", &[]);
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
    require("aarch64-linux-gnu-as");
    let st = Command::new("aarch64-linux-gnu-as")
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("aarch64-linux-gnu-ld")
        .arg(&obj)
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap();
    assert!(st.success());
    for engine in ENGINES {
        let o = armboard(engine, &exe, &[]);
        assert_eq!(String::from_utf8_lossy(&o.stdout), "hello\n", "{engine}");
        assert_eq!(o.status.code(), Some(7), "{engine}");
    }
}

#[test]
fn bad_programs_give_one_line_errors() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let missing = armboard("tiered", &dir.join("no-such-program"), &[]);
    assert_eq!(missing.status.code(), Some(125));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    let text = dir.join("not-elf.txt");
    std::fs::write(&text, "just text\n").unwrap();
    let o = armboard("tiered", &text, &[]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an ELF"));
    // A host (x86-64) binary is refused by architecture.
    let o = armboard("tiered", Path::new("/bin/true"), &[]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("aarch64"));
}
