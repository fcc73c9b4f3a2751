//! Bad input to `armboard user`: each is refused with one clear line on stderr and
//! armboard's own exit status (125), which no guest exit status is confused with.

mod common;

use common::{run, workdir, ARMBOARD};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// armboard's exit status for errors it reports itself.
const EXIT_ARMBOARD: i32 = 125;

/// Runs `armboard user ARGS`, asserts exit status 125 and a single stderr line that
/// contains every word of `words` (case-insensitive); returns the line.
fn refused(args: &[&str], words: &[&str]) -> String {
    let mut cmd = Command::new(ARMBOARD);
    cmd.arg("user").args(args).env_remove("ARMBOARD_SYSROOT");
    let o = run(cmd, b"", Duration::from_secs(60));
    let err = o.stderr_text();
    assert_eq!(
        o.status,
        Some(EXIT_ARMBOARD),
        "armboard user {args:?}: status {:?}, stderr: {err}",
        o.status
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "want exactly one line of error, got: {err:?}"
    );
    let line = lines[0].to_string();
    assert!(line.starts_with("armboard: "), "unlabelled error: {line:?}");
    for w in words {
        assert!(
            line.to_lowercase().contains(&w.to_lowercase()),
            "error {line:?} does not mention {w:?}"
        );
    }
    assert!(o.stdout.is_empty(), "no output expected on stdout");
    line
}

fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.to_str().unwrap().to_string()
}

/// A 64-byte ELF header for a 64-bit little-endian arm64 executable whose program
/// headers (`phnum` of them at `phoff`) lie wherever the caller says.
fn arm64_elf_header(phoff: u64, phnum: u16) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // ELFCLASS64
    h[5] = 1; // little endian
    h[6] = 1; // EV_CURRENT
    h[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    h[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h[24..32].copy_from_slice(&0x400000u64.to_le_bytes()); // e_entry
    h[32..40].copy_from_slice(&phoff.to_le_bytes());
    h[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    h[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    h[56..58].copy_from_slice(&phnum.to_le_bytes());
    h
}

#[test]
fn non_elf_file_is_refused() {
    let d = workdir("err-text");
    let p = write(
        &d,
        "notes.txt",
        b"#!/bin/sh\necho this is a script, not an ELF\n",
    );
    refused(&[&p], &["notes.txt", "not an elf"]);
    let p = write(&d, "empty", b"");
    refused(&[&p], &["empty"]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn x86_64_elf_is_refused_naming_both_architectures() {
    let truth = ["/bin/true", "/usr/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("the host has /bin/true");
    refused(&[truth], &["x86-64", "arm64"]);
}

#[test]
fn truncated_elf_is_refused() {
    let d = workdir("err-trunc");
    // Program headers promised past the end of the file.
    let p = write(&d, "trunc", &arm64_elf_header(64, 6));
    refused(&[&p], &["trunc"]);
    // Cut inside the ELF header itself.
    let p = write(&d, "trunc-header", &arm64_elf_header(64, 1)[..40]);
    refused(&[&p], &["trunc-header"]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn missing_program_is_refused() {
    refused(
        &["/nonexistent/armboard-test-prog"],
        &["/nonexistent/armboard-test-prog"],
    );
}

#[test]
fn missing_sysroot_is_refused() {
    refused(
        &["--sysroot", "/nonexistent/armboard-sysroot", "/bin/true"],
        &["/nonexistent/armboard-sysroot"],
    );
}

#[test]
fn dynamic_program_without_its_interpreter_is_refused() {
    // A real dynamically linked Debian arm64 program, run without the sysroot that holds
    // /lib/ld-linux-aarch64.so.1.
    let xz = common::program("xz");
    let empty = workdir("err-empty-root");
    refused(
        &[
            "--sysroot",
            empty.to_str().unwrap(),
            xz.to_str().unwrap(),
            "--version",
        ],
        &["ld-linux-aarch64.so.1", "sysroot"],
    );
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn guest_exit_statuses_are_distinct_from_armboard_errors() {
    // A guest's own exit status comes through unchanged (busybox sh `exit N`).
    for n in [0, 1, 42] {
        let mut cmd = Command::new(ARMBOARD);
        cmd.arg("user")
            .arg(common::program("busybox"))
            .args(["sh", "-c", &format!("exit {n}")]);
        let o = run(cmd, b"", common::timeout(120));
        assert_eq!(
            o.status,
            Some(n),
            "busybox sh -c 'exit {n}': {}",
            o.stderr_text()
        );
    }
}
