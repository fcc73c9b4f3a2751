//! Differential test of the A64 integer data-processing instructions against Unicorn.
//!
//! `tests/reference/dp_cases.py` draws random instruction words (every data-processing
//! encoding, and whole classes so unallocated encodings are included) and register values
//! with a fixed seed and records what Unicorn's Cortex-A72 does with each. This test runs
//! every case on armboard and compares the result registers, NZCV and whether the word is
//! undefined. The case file is regenerated when the script changes; without Python or
//! Unicorn the test reports that it was skipped.

use armboard_cpu::a64::decode;
use armboard_cpu::model;
use armboard_cpu::testing::{FlatMem, CODE};
use armboard_cpu::{Cpu, EngineKind, Stop};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/dp_cases.py");
const CASES_PER_PATTERN: u32 = 1500;

struct Case {
    class: String,
    insn: u32,
    nzcv_in: u32,
    regs_in: Vec<(usize, u64)>,
    undef: bool,
    nzcv_out: u32,
    regs_out: Vec<(usize, u64)>,
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).expect("hex number in case file")
}

fn regs(tokens: &[&str]) -> Vec<(usize, u64)> {
    tokens
        .iter()
        .map(|t| {
            let (r, v) = t.split_once('=').expect("R=V");
            (r.parse().expect("register number"), hex(v))
        })
        .collect()
}

fn parse(line: &str) -> Case {
    let (lhs, rhs) = line.split_once(" -> ").expect("case has ->");
    let l: Vec<&str> = lhs.split_whitespace().collect();
    let r: Vec<&str> = rhs.split_whitespace().collect();
    Case {
        class: l[0].to_string(),
        insn: hex(l[1]) as u32,
        nzcv_in: hex(l[2]) as u32,
        regs_in: regs(&l[3..]),
        undef: r[0] == "undef",
        nzcv_out: hex(r[1]) as u32,
        regs_out: regs(&r[2..]),
    }
}

/// The case file, regenerated if missing or older than the script. `None` if the generator
/// cannot run here.
fn case_file() -> Option<PathBuf> {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dp_cases.txt");
    armboard_cpu::testing::generated_cases(Path::new(SCRIPT), &out, CASES_PER_PATTERN)
}

/// Run one case; `Err` describes a mismatch.
fn check(c: &Case, engine: EngineKind) -> Result<(), String> {
    let mut mem = FlatMem::new(CODE, 8);
    mem.load_words(CODE, &[c.insn, 0xd420_0000]);
    let mut cpu = Cpu::with_engine(model::CORTEX_A72, engine);
    for &(r, v) in &c.regs_in {
        cpu.state.x[r] = v;
    }
    cpu.state.nzcv = c.nzcv_in;
    cpu.state.pc = CODE;
    let stop = cpu.run(&mut mem);
    let want_stop = if c.undef {
        Stop::Undefined(c.insn)
    } else {
        Stop::Brk(0)
    };
    let mut errs = Vec::new();
    if stop != want_stop {
        errs.push(format!("stop {stop:?}, want {want_stop:?}"));
    }
    if cpu.state.nzcv != c.nzcv_out {
        errs.push(format!(
            "nzcv {:04b}, want {:04b}",
            cpu.state.nzcv >> 28,
            c.nzcv_out >> 28
        ));
    }
    for &(r, v) in &c.regs_out {
        if cpu.state.x[r] != v {
            errs.push(format!("x{r} = {:#x}, want {v:#x}", cpu.state.x[r]));
        }
    }
    for r in 0..32 {
        if !c.regs_in.iter().any(|&(q, _)| q == r) && cpu.state.x[r] != 0 {
            errs.push(format!("unrelated x{r} written: {:#x}", cpu.state.x[r]));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

#[test]
fn data_processing_matches_unicorn() {
    // Never skip: CI installs python3 and unicorn (.ci/run); a machine without them fails
    // here with the reason.
    let path = case_file().unwrap_or_else(|| {
        panic!("python3 with the unicorn package (pip install unicorn) is needed for {SCRIPT}")
    });
    let text = std::fs::read_to_string(&path).expect("read case file");
    let mut total = 0;
    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, line) in text.lines().filter(|l| !l.is_empty()).enumerate() {
        let c = parse(line);
        total += 1;
        // Every case under the interpreter; every 16th also compiled by the JIT (each case is
        // its own block, so compiling all of them would dominate the test's time).
        let r = check(&c, EngineKind::Interp).and_then(|()| {
            if k % 16 == 0 {
                check(&c, EngineKind::Jit).map_err(|e| format!("jit: {e}"))
            } else {
                Ok(())
            }
        });
        if let Err(e) = r {
            let row = decode(c.insn).map_or("(no row)", |r| r.name);
            let inputs: Vec<String> = c
                .regs_in
                .iter()
                .map(|(r, v)| format!("x{r}={v:#x}"))
                .collect();
            failures.entry(c.class.clone()).or_default().push(format!(
                "{:#010x} {row} nzcv={:04b} {}: {e}",
                c.insn,
                c.nzcv_in >> 28,
                inputs.join(" ")
            ));
        }
    }
    assert!(total > 10_000, "only {total} cases in {}", path.display());
    if !failures.is_empty() {
        let mut report = String::new();
        let mut n = 0;
        for (class, fs) in &failures {
            n += fs.len();
            report += &format!("{class}: {} failures\n", fs.len());
            for f in fs.iter().take(5) {
                report += &format!("  {f}\n");
            }
        }
        panic!("{n} of {total} cases differ from Unicorn:\n{report}");
    }
}
