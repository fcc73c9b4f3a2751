//! Differential tests of the AdvSIMD integer instructions against Unicorn.
//!
//! `reference/simd_ref.py` runs instruction words on random register contents under Unicorn
//! at test time and prints inputs and results, which these tests replay on the interpreter.
//! - `listed_encodings_match_unicorn`: the encodings of `reference/simd_cases.txt`
//!   (regenerate it from `simd_cases.s` with `reference/gen_cases.sh`), many states each.
//! - `simd_rows_sweep_matches_unicorn`: every instance of each `simd::ROWS` pattern over its
//!   non-register fields (sampled where there are many), including the reserved ones, which
//!   must be undefined on both sides.
//!
//! Needs `python3` with the `unicorn` package (`pip install unicorn`).

use armboard_cpu::a64::translate::simd;
use armboard_cpu::a64::{decode, Row};
use armboard_cpu::testing::run_with;
use armboard_cpu::{CpuState, Stop};
use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};

const CASES: &str = include_str!("reference/simd_cases.txt");
const NV: usize = 8;
const NX: usize = 4;

/// Unicorn's results for `words`, `count` states each.
fn reference(words: &[u32], seed: u32, count: usize) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/simd_ref.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(seed.to_string())
        .arg(count.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let input: String = words.iter().map(|w| format!("{w:08x}\n")).collect();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
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

/// Runs every reference line on the interpreter; returns the mismatches, described with
/// `name(word)`.
fn compare(out: &str, expected_lines: usize, name: impl Fn(u32) -> String) -> Vec<String> {
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let word = hex(f[0]) as u32;
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
        let asm = name(word);
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
        for (k, r) in res[NV..NV + NX].iter().enumerate() {
            let want = hex(r) as u64;
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
    assert_eq!(checked, expected_lines, "reference output complete");
    failures
}

fn report(mut failures: Vec<String>) {
    if !failures.is_empty() {
        let n = failures.len();
        failures.truncate(40);
        panic!("{n} mismatches:\n{}", failures.join("\n"));
    }
}

#[test]
fn listed_encodings_match_unicorn() {
    const STATES: usize = 24;
    let cases: Vec<(u32, &str)> = CASES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (w, asm) = l.split_once(' ').unwrap_or((l, ""));
            (u32::from_str_radix(w, 16).expect("word"), asm)
        })
        .collect();
    let words: Vec<u32> = cases.iter().map(|c| c.0).collect();
    let out = reference(&words, 1, STATES);
    report(compare(&out, words.len() * STATES, |w| {
        cases
            .iter()
            .find(|c| c.0 == w)
            .map_or(String::new(), |c| c.1.to_string())
    }));
}

/// A small deterministic generator for the sweep.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

/// Instances of `row`: register fields (`d`, `n`, `m`) random within v0-v7 (`m` may also
/// name v16-v23, which hold zero), every other field enumerated, or sampled if it has more
/// than 5 bits.
fn instances(row: &Row, rng: &mut Lcg) -> Vec<u32> {
    let pat = row.pattern.as_bytes();
    let mut fixed = 0u32;
    let mut free = Vec::new();
    let mut regs: Vec<(u8, Vec<u32>)> = Vec::new();
    for (k, &c) in pat.iter().enumerate() {
        let bit = 31 - k as u32;
        match c {
            b'0' => {}
            b'1' => fixed |= 1 << bit,
            b'd' | b'n' | b'm' => match regs.iter_mut().find(|r| r.0 == c) {
                Some(r) => r.1.push(bit),
                None => regs.push((c, vec![bit])),
            },
            _ => free.push(bit),
        }
    }
    let combos: Vec<u32> = if free.len() <= 5 {
        (0..1u32 << free.len()).collect()
    } else {
        (0..40)
            .map(|_| rng.next() & ((1 << free.len()) - 1))
            .collect()
    };
    combos
        .into_iter()
        .map(|combo| {
            let mut w = fixed;
            for (j, &bit) in free.iter().enumerate() {
                w |= (combo >> j & 1) << bit;
            }
            for (c, bits) in &regs {
                let mut r = rng.next() % 8;
                if *c == b'm' && bits.len() == 5 {
                    r |= (rng.next() & 1) << 4;
                }
                // Field bits are listed high first.
                for (j, &bit) in bits.iter().rev().enumerate() {
                    w |= (r >> j & 1) << bit;
                }
            }
            w
        })
        .collect()
}

#[test]
fn simd_rows_sweep_matches_unicorn() {
    const STATES: usize = 2;
    let mut rng = Lcg(0x5eed);
    let mut seen = HashSet::new();
    let mut words = Vec::new();
    for row in simd::ROWS {
        for w in instances(row, &mut rng) {
            // Only words this row owns (a more specific row of another class may take some).
            if decode(w).is_some_and(|r| r.pattern == row.pattern) && seen.insert(w) {
                words.push(w);
            }
        }
    }
    assert!(words.len() > 1000, "sweep covers the rows");
    eprintln!("sweep: {} encodings", words.len());
    let out = reference(&words, 2, STATES);
    report(compare(&out, words.len() * STATES, |w| {
        decode(w).map_or(String::new(), |r| r.name.to_string())
    }));
}
