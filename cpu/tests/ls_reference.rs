//! Differential test of the A64 loads and stores against Unicorn.
//!
//! `tests/reference/ls_cases.py` draws random instruction words from every load/store
//! encoding class (field bits random, so unallocated encodings are included) and from the
//! whole load/store space, with register, V-register and memory state from a fixed seed, and
//! records what Unicorn's Cortex-A72 does with each. This test runs every case on the
//! interpreter (and every 16th also on the JIT, through `testing::run_with`) and compares
//! X0-X30, SP, V0-V31, the data area and whether the word faulted or was undefined.
//!
//! Known, intended differences are skipped: ARMv8.0 checks alignment for LDAR/STLR and for a
//! store-exclusive even when the monitor is clear (Unicorn does not), and whether a failing
//! store-exclusive checks its access first is IMPLEMENTATION DEFINED.

use armboard_cpu::testing::{run_on, run_with, FlatMem, CODE, DATA};
use armboard_cpu::{CpuState, EngineKind, FaultKind, Stop};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/ls_cases.py");
const CASES: u32 = 20_000;
const DLEN: usize = 0x2000;

/// The case file, regenerated if missing or older than the script. `None` if the generator
/// cannot run here.
fn case_file() -> Option<PathBuf> {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ls_cases.txt");
    armboard_cpu::testing::generated_cases(Path::new(SCRIPT), &out, CASES)
}

fn splitmix(z: u64) -> u64 {
    let z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn v_init(seed: u64, j: u64) -> u128 {
    u128::from(splitmix(seed ^ (0xaaaa_0000 + 2 * j)))
        | (u128::from(splitmix(seed ^ (0xaaaa_0000 + 2 * j + 1))) << 64)
}

fn mem_init(m: &mut FlatMem, seed: u64) {
    let o = (DATA - CODE) as usize;
    for k in 0..DLEN / 8 {
        let w = splitmix(seed.wrapping_mul(0x10000).wrapping_add(k as u64));
        m.data[o + 8 * k..o + 8 * k + 8].copy_from_slice(&w.to_le_bytes());
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Run one case; `Ok(false)` if it was skipped as a known difference, `Err` on a mismatch.
fn check(line: &str, both_engines: bool) -> Result<bool, String> {
    let (inp, out) = line.split_once(" | ").expect("case has |");
    let inp: Vec<u64> = inp
        .split(' ')
        .map(|s| u64::from_str_radix(s, 16).expect("hex"))
        .collect();
    let mut outs = out.split(' ');
    let want = outs.next().expect("status");
    let out: Vec<u128> = outs
        .map(|s| u128::from_str_radix(s, 16).expect("hex"))
        .collect();
    assert_eq!((inp.len(), out.len()), (34, 65), "malformed case {line}");
    let (word, seed) = (inp[0] as u32, inp[1]);
    let mut st = CpuState::new();
    st.x.copy_from_slice(&inp[2..34]);
    for (j, v) in st.v.iter_mut().enumerate() {
        *v = v_init(seed, j as u64);
    }
    let init = |m: &mut FlatMem| mem_init(m, seed);
    let (st, mem, stop) = if both_engines {
        run_with(&[word], st, init)
    } else {
        run_on(EngineKind::Interp, &[word], st, init)
    };
    let got = match stop {
        Stop::Brk(0) => "ok",
        Stop::Fault(f) if f.kind == FaultKind::Alignment => return Ok(false),
        Stop::Fault(_) => "fault",
        Stop::Undefined(_) => "undef",
        _ => "other",
    };
    let store_excl = word & 0x3f40_0000 == 0x0800_0000;
    if store_excl && got == "ok" && want == "fault" {
        return Ok(false);
    }
    let mut diffs = Vec::new();
    if got != want {
        diffs.push(format!("{got}, want {want}"));
    }
    for (k, (&x, &w)) in st.x.iter().zip(&out[..32]).enumerate() {
        if u128::from(x) != w {
            diffs.push(format!("x{k} = {x:#x}, want {w:#x}"));
        }
    }
    for (j, (&v, &w)) in st.v.iter().zip(&out[32..64]).enumerate() {
        if v != w {
            diffs.push(format!("v{j} = {v:#x}, want {w:#x}"));
        }
    }
    let o = (DATA - CODE) as usize;
    if u128::from(fnv(&mem.data[o..o + DLEN])) != out[64] {
        diffs.push("data area differs".into());
    }
    if diffs.is_empty() {
        Ok(true)
    } else {
        Err(diffs.join("; "))
    }
}

#[test]
fn loads_and_stores_match_unicorn() {
    // Never skip: CI installs python3 and unicorn (.ci/run).
    let path = case_file().unwrap_or_else(|| {
        panic!("python3 with the unicorn package (pip install unicorn) is needed for {SCRIPT}")
    });
    let text = std::fs::read_to_string(&path).expect("read case file");
    let (mut total, mut compared) = (0, 0);
    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (n, line) in text.lines().filter(|l| !l.is_empty()).enumerate() {
        total += 1;
        match check(line, n % 16 == 0) {
            Ok(true) => compared += 1,
            Ok(false) => {}
            Err(e) => {
                let word = u32::from_str_radix(&line[..8], 16).expect("hex");
                let row = armboard_cpu::a64::decode(word).map_or("(no row)", |r| r.name);
                failures
                    .entry(row.to_string())
                    .or_default()
                    .push(format!("{word:#010x}: {e}"));
            }
        }
    }
    assert!(
        compared > total / 2,
        "only {compared} of {total} cases compared"
    );
    if !failures.is_empty() {
        let mut report = String::new();
        let mut n = 0;
        for (row, fs) in &failures {
            n += fs.len();
            report += &format!("{row}: {} failures\n", fs.len());
            for f in fs.iter().take(5) {
                report += &format!("  {f}\n");
            }
        }
        panic!("{n} of {total} cases differ from Unicorn:\n{report}");
    }
}
