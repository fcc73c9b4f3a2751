//! Differential test of the AdvSIMD integer instructions against Unicorn.
//!
//! `reference/simd_cases.txt` lists encodings (regenerate it from `simd_cases.s` with
//! `reference/gen_cases.sh`); `reference/simd_ref.py` runs each on random register contents
//! under Unicorn at test time and prints inputs and results, which this test replays on the
//! interpreter. Needs `python3` with the `unicorn` package.

use armboard_cpu::testing::run_with;
use armboard_cpu::{CpuState, Stop};
use std::io::Write;
use std::process::{Command, Stdio};

const CASES: &str = include_str!("reference/simd_cases.txt");
const STATES_PER_CASE: usize = 24;
const NV: usize = 8;
const NX: usize = 4;

fn reference(words: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/simd_ref.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg("1")
        .arg(STATES_PER_CASE.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(words.as_bytes())
        .expect("write words");
    let out = child.wait_with_output().expect("reference finishes");
    assert!(
        out.status.success(),
        "simd_ref.py failed (is the unicorn package installed?)"
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn hex(s: &str) -> u128 {
    u128::from_str_radix(s, 16).expect("hex")
}

#[test]
fn simd_matches_unicorn() {
    let names: Vec<(u32, &str)> = CASES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (w, asm) = l.split_once(' ').unwrap_or((l, ""));
            (u32::from_str_radix(w, 16).expect("word"), asm)
        })
        .collect();
    let words: String = names.iter().map(|(w, _)| format!("{w:08x}\n")).collect();
    let out = reference(&words);
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let word = hex(f[0]) as u32;
        let asm = names
            .iter()
            .find(|(w, _)| *w == word)
            .map_or("", |(_, a)| a);
        let mut st = CpuState::new();
        for k in 0..NV {
            st.v[k] = hex(f[1 + k]);
        }
        for k in 0..NX {
            st.x[k] = hex(f[1 + NV + k]) as u64;
        }
        let res = &f[2 + NV + NX..];
        let (got, _, stop) = run_with(&[word], st.clone(), |_| {});
        checked += 1;
        if res[0] == "UNDEF" {
            if stop != Stop::Undefined(word) {
                failures.push(format!("{asm} ({word:08x}): expected UNDEF, got {stop:?}"));
            }
            continue;
        }
        if stop != Stop::Brk(0) {
            failures.push(format!("{asm} ({word:08x}): stopped with {stop:?}"));
            continue;
        }
        let mut diffs = Vec::new();
        for (k, r) in res[..NV].iter().enumerate() {
            let want = hex(r);
            if got.v[k] != want {
                diffs.push(format!("v{k}={:032x} want {want:032x}", got.v[k]));
            }
        }
        for k in 0..NX {
            let want = hex(res[NV + k]) as u64;
            if got.x[k] != want {
                diffs.push(format!("x{k}={:016x} want {want:016x}", got.x[k]));
            }
        }
        let want_qc = hex(res[NV + NX]) as u32 & (1 << 27);
        if got.fpsr & (1 << 27) != want_qc {
            diffs.push(format!("QC={} want {}", got.fpsr >> 27 & 1, want_qc >> 27));
        }
        if !diffs.is_empty() {
            let ins: Vec<String> = (0..4).map(|k| format!("v{k}={:032x}", st.v[k])).collect();
            failures.push(format!(
                "{asm} ({word:08x}): {}\n    inputs {} x0={:016x} x1={:016x}",
                diffs.join(" "),
                ins.join(" "),
                st.x[0],
                st.x[1]
            ));
        }
    }
    assert_eq!(
        checked,
        names.len() * STATES_PER_CASE,
        "reference output complete"
    );
    if !failures.is_empty() {
        let n = failures.len();
        failures.truncate(40);
        panic!("{n} mismatches:\n{}", failures.join("\n"));
    }
}
