//! Differential test: armboard's interpreter against unicorn (QEMU's TCG as a library) as the
//! reference CPU.
//!
//! `tests/reference/diffgen.py` generates random instruction sequences per class, runs them in
//! unicorn and prints each case with the final state unicorn reached (JSON lines). Each test
//! here runs the generator for one class, runs every case on armboard and compares the whole
//! architectural state: X0-X30, SP, NZCV, FPSR, V0-V31 and the data memory. Encodings unicorn
//! treats as UNDEFINED must be UNDEFINED on armboard too. A per-form table of outcomes is
//! printed (`--nocapture` to see it on success); any mismatch, unimplemented instruction or
//! panic fails the class.
//!
//! Environment:
//! - `ARMBOARD_DIFF_CLASSES=int,ldst,fp,simd` which classes run (default all).
//! - `ARMBOARD_DIFF_CASES=N` cases per class (default 1000); `ARMBOARD_DIFF_SEED=S` (default 1).
//! - `ARMBOARD_DIFF_ENGINES=interp,jit` the engines every case runs on (default both).
//! - `ARMBOARD_DIFF_JOBS=J` generator processes per class (default 1; seeds S, S+1, ...).
//! - `ARMBOARD_DIFF_SHOW=N` failing cases printed in full per class (default 8).
//! - `ARMBOARD_DIFF_IGNORE=fpsr` state parts not compared (comma list: fpsr, nzcv, mem, v).
//! - `ARMBOARD_DIFF_FILE=path` run the cases of a file (e.g. the failures file a failing run
//!   writes to `target/differential-<class>-failures.jsonl`) instead of generating.
//! - `ARMBOARD_PYTHON` the Python interpreter (default `python3`).
//!
//! Millions of cases: `ARMBOARD_DIFF_CASES=1000000 ARMBOARD_DIFF_JOBS=2 cargo test --release
//! -p armboard-cpu --test differential -- --nocapture`.

use armboard_cpu::engine::EngineKind;
use armboard_cpu::testing::{FlatMem, CODE, DATA};
use armboard_cpu::{model, Cpu, CpuState, Stop};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MEM_LEN: usize = 128 << 10;
const DATA_LEN: usize = 0x1_0000;
const DATA_OFF: usize = (DATA - CODE) as usize;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn env_num(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

fn class_selected(class: &str) -> bool {
    let sel = env_or("ARMBOARD_DIFF_CLASSES", "all");
    sel == "all" || sel.split(',').any(|c| c.trim() == class)
}

fn ignored(part: &str) -> bool {
    env_or("ARMBOARD_DIFF_IGNORE", "")
        .split(',')
        .any(|c| c.trim() == part)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cpu crate sits in the workspace")
        .to_path_buf()
}

/// The data region's initial contents: splitmix64 words, as diffgen.py writes them.
fn data_fill(seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(DATA_LEN);
    let mut state = seed;
    for _ in 0..DATA_LEN / 8 {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out
}

fn hex(v: &Value) -> u128 {
    let s = v.as_str().expect("hex string");
    u128::from_str_radix(s, 16).expect("hex number")
}

fn hex_list(v: Option<&Value>, n: usize) -> Vec<u128> {
    match v {
        Some(Value::Array(a)) => {
            assert_eq!(a.len(), n, "register list length");
            a.iter().map(hex).collect()
        }
        _ => vec![0; n],
    }
}

fn num(v: &Value, key: &str) -> u32 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0) as u32
}

/// One generated case.
struct Case {
    raw: String,
    id: u64,
    forms: Vec<String>,
    words: Vec<u32>,
    x: Vec<u128>,
    nzcv: u32,
    fpcr: u32,
    fpsr: u32,
    v: Vec<u128>,
    undef: bool,
    out_x: Vec<u128>,
    out_nzcv: u32,
    out_fpsr: u32,
    out_v: Vec<u128>,
    out_mem: Vec<(usize, Vec<u8>)>,
}

impl Case {
    fn parse(line: &str) -> Case {
        let j: Value = serde_json::from_str(line).expect("case is JSON");
        let words = j["w"]
            .as_array()
            .expect("words")
            .iter()
            .map(|w| w.as_u64().expect("word") as u32)
            .collect();
        let forms = j["f"]
            .as_array()
            .expect("forms")
            .iter()
            .map(|f| f.as_str().expect("form").to_string())
            .collect();
        let out_mem = match j.get("om") {
            Some(Value::Array(runs)) => runs
                .iter()
                .map(|r| {
                    let off = r[0].as_u64().expect("offset") as usize;
                    let s = r[1].as_str().expect("bytes");
                    let bytes = (0..s.len() / 2)
                        .map(|k| u8::from_str_radix(&s[2 * k..2 * k + 2], 16).expect("hex byte"))
                        .collect();
                    (off, bytes)
                })
                .collect(),
            _ => Vec::new(),
        };
        Case {
            raw: line.to_string(),
            id: j["i"].as_u64().unwrap_or(0),
            forms,
            words,
            x: hex_list(j.get("x"), 32),
            nzcv: num(&j, "n"),
            fpcr: num(&j, "fc"),
            fpsr: num(&j, "fs"),
            v: hex_list(j.get("v"), 32),
            undef: j.get("u").and_then(Value::as_bool).unwrap_or(false),
            out_x: hex_list(j.get("ox"), 32),
            out_nzcv: num(&j, "on"),
            out_fpsr: num(&j, "ofs"),
            out_v: hex_list(j.get("ov"), 32),
            out_mem,
        }
    }

    fn initial_state(&self) -> CpuState {
        let mut st = CpuState::new();
        for (r, &v) in self.x.iter().enumerate() {
            st.x[r] = v as u64;
        }
        st.v.copy_from_slice(&self.v);
        st.nzcv = self.nzcv;
        st.fpcr = self.fpcr;
        st.fpsr = self.fpsr;
        st
    }
}

/// How one case went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Pass,
    /// Both unicorn and armboard: UNDEFINED.
    UndefOk,
    Mismatch,
    /// armboard: UNDEFINED where unicorn executes.
    Unimplemented,
    /// armboard executes an encoding unicorn (cortex-a72) treats as UNDEFINED.
    AcceptsReserved,
    Panic,
    /// armboard stopped otherwise (fault, hang).
    BadStop,
}

const OUTCOMES: [Outcome; 7] = [
    Outcome::Pass,
    Outcome::UndefOk,
    Outcome::Mismatch,
    Outcome::Unimplemented,
    Outcome::AcceptsReserved,
    Outcome::Panic,
    Outcome::BadStop,
];

impl Outcome {
    fn failed(self) -> bool {
        !matches!(self, Outcome::Pass | Outcome::UndefOk)
    }
    fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::UndefOk => "undef-ok",
            Outcome::Mismatch => "mismatch",
            Outcome::Unimplemented => "unimpl",
            Outcome::AcceptsReserved => "rsv-acc",
            Outcome::Panic => "panic",
            Outcome::BadStop => "badstop",
        }
    }
}

/// Stops a runaway guest (a mis-decoded branch) after a while: it sets the current case's
/// interrupt flag when the case counter has not moved for five seconds.
struct Watchdog {
    counter: Arc<AtomicU64>,
    current: Arc<Mutex<Option<Arc<AtomicBool>>>>,
    done: Arc<AtomicBool>,
}

impl Watchdog {
    fn start() -> Watchdog {
        let w = Watchdog {
            counter: Arc::new(AtomicU64::new(0)),
            current: Arc::new(Mutex::new(None)),
            done: Arc::new(AtomicBool::new(false)),
        };
        let (counter, current, done) = (w.counter.clone(), w.current.clone(), w.done.clone());
        std::thread::spawn(move || {
            let mut last = u64::MAX;
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5000));
                let now = counter.load(Ordering::Relaxed);
                if now == last {
                    if let Some(flag) = current.lock().map(|g| g.clone()).ok().flatten() {
                        flag.store(true, Ordering::Relaxed);
                    }
                }
                last = now;
            }
        });
        w
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// Case runs that executed compiled code (a check that the JIT tier is really exercised).
static JIT_CASES: AtomicU64 = AtomicU64::new(0);

/// The engines each case runs on (`ARMBOARD_DIFF_ENGINES`, default `interp,jit`).
fn engines() -> Vec<EngineKind> {
    env_or("ARMBOARD_DIFF_ENGINES", "interp,jit")
        .split(',')
        .filter_map(|e| match e.trim() {
            "interp" => Some(EngineKind::Interp),
            "jit" => Some(EngineKind::Jit),
            "tiered" => Some(EngineKind::Tiered),
            "" => None,
            other => panic!("ARMBOARD_DIFF_ENGINES: unknown engine {other}"),
        })
        .collect()
}

/// Run a case on armboard: final state, memory, stop. The CPU is reused across cases (its
/// translated code is dropped first).
fn run_armboard(
    cpu: &mut Cpu,
    case: &Case,
    data: &[u8],
    dog: &Watchdog,
) -> (CpuState, FlatMem, Stop) {
    let mut mem = FlatMem::new(CODE, MEM_LEN);
    let mut code = case.words.clone();
    code.push(0xd420_0000); // BRK #0
    mem.load_words(CODE, &code);
    mem.data[DATA_OFF..DATA_OFF + DATA_LEN].copy_from_slice(data);
    cpu.flush_code();
    cpu.state = case.initial_state();
    cpu.state.pc = CODE;
    // Counted at the start and the end: the watchdog fires only on a case that spans a whole
    // period (a stale flag set while waiting for the generator is cleared below).
    dog.counter.fetch_add(1, Ordering::Relaxed);
    cpu.interrupt().store(false, Ordering::Relaxed);
    if let Ok(mut g) = dog.current.lock() {
        *g = Some(cpu.interrupt().clone());
    }
    let stop = cpu.run(&mut mem);
    dog.counter.fetch_add(1, Ordering::Relaxed);
    if cpu.retired_jit > 0 {
        JIT_CASES.fetch_add(1, Ordering::Relaxed);
        cpu.retired_jit = 0;
    }
    (cpu.state.clone(), mem, stop)
}

fn reg_name(r: usize) -> String {
    if r == 31 {
        "sp".into()
    } else {
        format!("x{r}")
    }
}

/// Compare armboard's final state with unicorn's; the differences, one per line.
fn compare(case: &Case, st: &CpuState, mem: &FlatMem, data: &[u8]) -> Vec<String> {
    let mut d = Vec::new();
    for r in 0..32 {
        let want = case.out_x[r] as u64;
        if st.x[r] != want {
            d.push(format!(
                "{:>4}: armboard {:#018x}  unicorn {:#018x}",
                reg_name(r),
                st.x[r],
                want
            ));
        }
    }
    if !ignored("nzcv") && st.nzcv != case.out_nzcv {
        d.push(format!(
            "nzcv: armboard {:04b}  unicorn {:04b}",
            st.nzcv >> 28,
            case.out_nzcv >> 28
        ));
    }
    if !ignored("fpsr") && st.fpsr != case.out_fpsr {
        d.push(format!(
            "fpsr: armboard {:#010x}  unicorn {:#010x}",
            st.fpsr, case.out_fpsr
        ));
    }
    if !ignored("v") {
        for r in 0..32 {
            if st.v[r] != case.out_v[r] {
                d.push(format!(
                    "{:>4}: armboard {:#034x}  unicorn {:#034x}",
                    format!("v{r}"),
                    st.v[r],
                    case.out_v[r]
                ));
            }
        }
    }
    if !ignored("mem") {
        let mut want = data.to_vec();
        for (off, bytes) in &case.out_mem {
            want[*off..*off + bytes.len()].copy_from_slice(bytes);
        }
        let got = &mem.data[DATA_OFF..DATA_OFF + DATA_LEN];
        if got != want.as_slice() {
            let mut shown = 0;
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                if g != w {
                    if shown < 16 {
                        d.push(format!(
                            "mem {:#x}: armboard {g:02x}  unicorn {w:02x}",
                            DATA + k as u64
                        ));
                    }
                    shown += 1;
                }
            }
            if shown > 16 {
                d.push(format!("mem: {} more differing bytes", shown - 16));
            }
        }
    }
    d
}

/// Judge one case on every engine: the worst outcome, the index of the instruction to blame
/// (if known) and details.
fn judge(
    cpus: &mut [(EngineKind, Option<Cpu>)],
    case: &Case,
    data: &[u8],
    dog: &Watchdog,
) -> (Outcome, Option<usize>, Vec<String>) {
    let mut worst = (Outcome::Pass, None, Vec::new());
    for (kind, cpu) in cpus.iter_mut() {
        let (o, blame, details) = judge_on(*kind, cpu, case, data, dog);
        if o > worst.0 {
            let details = details
                .into_iter()
                .map(|d| format!("[{kind:?}] {d}"))
                .collect();
            worst = (o, blame, details);
        }
    }
    worst
}

fn judge_on(
    kind: EngineKind,
    slot: &mut Option<Cpu>,
    case: &Case,
    data: &[u8],
    dog: &Watchdog,
) -> (Outcome, Option<usize>, Vec<String>) {
    let cpu = slot.get_or_insert_with(|| Cpu::with_engine(model::CORTEX_A72, kind));
    let res = catch_unwind(AssertUnwindSafe(|| run_armboard(cpu, case, data, dog)));
    if res.is_err() {
        // A panic may leave the CPU's caches half updated: start afresh.
        *slot = None;
    }
    let (st, mem, stop) = match res {
        Ok(r) => r,
        Err(e) => {
            dog.counter.fetch_add(1, Ordering::Relaxed);
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            return (Outcome::Panic, None, vec![format!("panic: {msg}")]);
        }
    };
    let end = CODE + 4 * case.words.len() as u64;
    let index = |pc: u64| {
        let k = pc.wrapping_sub(CODE) / 4;
        (k < case.words.len() as u64).then_some(k as usize)
    };
    if case.undef {
        return match stop {
            Stop::Undefined(_) if st.pc == CODE => (Outcome::UndefOk, None, vec![]),
            other => (
                Outcome::AcceptsReserved,
                None,
                vec![format!(
                    "unicorn: UNDEFINED; armboard: {other:?} at pc {:#x}",
                    st.pc
                )],
            ),
        };
    }
    match stop {
        Stop::Brk(0) if st.pc == end => {}
        Stop::Undefined(w) => {
            return (
                Outcome::Unimplemented,
                index(st.pc),
                vec![format!(
                    "armboard: UNDEFINED {w:#010x} at pc {:#x}; unicorn executes it",
                    st.pc
                )],
            )
        }
        other => {
            return (
                Outcome::BadStop,
                index(st.pc),
                vec![format!(
                    "armboard stopped with {other:?} at pc {:#x} (expected BRK at {end:#x})",
                    st.pc
                )],
            )
        }
    }
    let diff = compare(case, &st, &mem, data);
    if diff.is_empty() {
        (Outcome::Pass, None, diff)
    } else {
        (Outcome::Mismatch, None, diff)
    }
}

/// The words disassembled by aarch64-linux-gnu-objdump, or plain hex without it.
fn disassemble(words: &[u32]) -> Vec<String> {
    let plain = || {
        words
            .iter()
            .enumerate()
            .map(|(k, w)| format!("{:x}: {w:08x}", CODE + 4 * k as u64))
            .collect::<Vec<_>>()
    };
    let path = std::env::temp_dir().join(format!("armboard-diff-{}.bin", std::process::id()));
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    if std::fs::write(&path, bytes).is_err() {
        return plain();
    }
    let out = Command::new("aarch64-linux-gnu-objdump")
        .args([
            "-D",
            "-b",
            "binary",
            "-m",
            "aarch64",
            "--adjust-vma=0x100000",
        ])
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let lines: Vec<String> = text
                .lines()
                .filter(|l| l.trim_start().starts_with("1000") && l.contains(':'))
                .map(|l| l.trim().replace('\t', " "))
                .collect();
            if lines.len() == words.len() {
                lines
            } else {
                plain()
            }
        }
        _ => plain(),
    }
}

fn describe(case: &Case, outcome: Outcome, details: &[String]) -> String {
    let mut s = format!(
        "--- case {} [{}] {} ({})\n",
        case.id,
        case.forms.join(" "),
        outcome.label(),
        case.words
            .iter()
            .map(|&w| armboard_cpu::a64::decode(w).map_or("no row", |r| r.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for l in disassemble(&case.words) {
        s += &format!("    {l}\n");
    }
    s += "  initial:";
    for r in 0..32 {
        if r % 4 == 0 {
            s += "\n   ";
        }
        s += &format!(" {:>3}={:016x}", reg_name(r), case.x[r] as u64);
    }
    s += &format!(
        "\n    nzcv={:04b} fpcr={:#x} fpsr={:#x}\n",
        case.nzcv >> 28,
        case.fpcr,
        case.fpsr
    );
    for r in 0..32 {
        if case.v[r] != 0 {
            s += &format!("    v{r}={:032x}\n", case.v[r]);
        }
    }
    s += "  differences:\n";
    for l in details {
        s += &format!("    {l}\n");
    }
    s
}

#[derive(Default)]
struct Tally {
    by_form: BTreeMap<String, BTreeMap<Outcome, u64>>,
    total: BTreeMap<Outcome, u64>,
}

impl Tally {
    fn add(&mut self, form: &str, o: Outcome) {
        *self
            .by_form
            .entry(form.to_string())
            .or_default()
            .entry(o)
            .or_default() += 1;
    }

    fn table(&self, class: &str) -> String {
        let mut s = format!("differential [{class}] outcomes by form\n");
        s += &format!("{:<24}", "form");
        for o in OUTCOMES {
            s += &format!("{:>10}", o.label());
        }
        s += "\n";
        for (form, counts) in &self.by_form {
            let bad = counts.iter().any(|(o, &n)| o.failed() && n > 0);
            s += &format!("{:<24}", format!("{}{form}", if bad { "!" } else { " " }));
            for o in OUTCOMES {
                s += &format!("{:>10}", counts.get(&o).copied().unwrap_or(0));
            }
            s += "\n";
        }
        s += &format!("{:<24}", " (cases)");
        for o in OUTCOMES {
            s += &format!("{:>10}", self.total.get(&o).copied().unwrap_or(0));
        }
        s + "\n"
    }
}

/// Where cases come from: a file, or generator processes for the class.
type Source = (Box<dyn BufRead + Send>, Option<Child>);

fn case_sources(class: &str) -> Vec<Source> {
    if let Ok(path) = std::env::var("ARMBOARD_DIFF_FILE") {
        let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        return vec![(Box::new(BufReader::new(f)), None)];
    }
    let count = env_num("ARMBOARD_DIFF_CASES", 1000);
    let seed = env_num("ARMBOARD_DIFF_SEED", 1);
    let jobs = env_num("ARMBOARD_DIFF_JOBS", 1).max(1);
    let script = repo_root().join("tests/reference/diffgen.py");
    let python = env_or("ARMBOARD_PYTHON", "python3");
    (0..jobs)
        .map(|j| {
            let share = count / jobs + u64::from(j < count % jobs);
            let mut child = Command::new(&python)
                .arg(&script)
                .args(["--seed", &(seed + j).to_string()])
                .args(["--count", &share.to_string()])
                .args(["--classes", class])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {python} {}: {e}", script.display()));
            let stdout = child.stdout.take().expect("piped stdout");
            let reader = Box::new(BufReader::with_capacity(1 << 20, stdout));
            (reader as Box<dyn BufRead + Send>, Some(child))
        })
        .collect()
}

/// Run one source's cases; returns the tally, the failure descriptions to show and failing
/// cases' lines (with the meta line first).
fn run_source(class: &str, source: Source, show: usize) -> (Tally, Vec<String>, Vec<String>, u64) {
    let (src, child) = source;
    let dog = Watchdog::start();
    let mut cpus: Vec<(EngineKind, Option<Cpu>)> =
        engines().into_iter().map(|e| (e, None)).collect();
    let mut tally = Tally::default();
    let mut shown = Vec::new();
    let mut failures = Vec::new();
    let mut data: Option<Vec<u8>> = None;
    let mut meta = String::new();
    let mut cases = 0u64;
    for line in src.lines() {
        let line = line.expect("generator output");
        if line.starts_with("{\"meta\"") {
            let j: Value = serde_json::from_str(&line).expect("meta line");
            let seed = j["meta"]["data_seed"].as_u64().expect("data_seed");
            data = Some(data_fill(seed));
            meta = line;
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let data = data.as_deref().expect("meta line before cases");
        let case = Case::parse(&line);
        if !line.contains(&format!("\"c\":\"{class}\"")) {
            continue;
        }
        cases += 1;
        let (outcome, blame, details) = judge(&mut cpus, &case, data, &dog);
        *tally.total.entry(outcome).or_default() += 1;
        match blame {
            Some(k) => tally.add(&case.forms[k], outcome),
            None => {
                let mut seen: Vec<&String> = Vec::new();
                for f in &case.forms {
                    if !seen.contains(&f) {
                        seen.push(f);
                        tally.add(f, outcome);
                    }
                }
            }
        }
        if outcome.failed() {
            if failures.is_empty() {
                failures.push(meta.clone());
            }
            failures.push(case.raw.clone());
            if shown.len() < show {
                shown.push(describe(&case, outcome, &details));
            }
        }
    }
    if let Some(mut child) = child {
        let status = child.wait().expect("generator exit status");
        assert!(
            status.success(),
            "differential [{class}]: the generator failed ({status}); is unicorn installed? \
             (pip install unicorn)"
        );
    }
    (tally, shown, failures, cases)
}

fn run_class(class: &str) {
    if !class_selected(class) {
        eprintln!("differential [{class}]: not selected by ARMBOARD_DIFF_CLASSES, skipped");
        return;
    }
    let show = env_num("ARMBOARD_DIFF_SHOW", 8) as usize;
    let sources = case_sources(class);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = sources
            .into_iter()
            .map(|src| s.spawn(move || run_source(class, src, show)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("case runner thread"))
            .collect()
    });
    let mut tally = Tally::default();
    let mut shown = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut cases = 0;
    for (t, sh, fl, n) in results {
        for (form, counts) in t.by_form {
            for (o, k) in counts {
                *tally
                    .by_form
                    .entry(form.clone())
                    .or_default()
                    .entry(o)
                    .or_default() += k;
            }
        }
        for (o, k) in t.total {
            *tally.total.entry(o).or_default() += k;
        }
        shown.extend(sh);
        if failures.is_empty() {
            failures.extend(fl);
        } else {
            failures.extend(fl.into_iter().skip(1));
        }
        cases += n;
    }
    assert!(
        cases > 0,
        "differential [{class}]: the generator produced no cases (is unicorn installed? \
         pip install unicorn)"
    );
    let failed: u64 = tally
        .total
        .iter()
        .filter(|(o, _)| o.failed())
        .map(|(_, n)| n)
        .sum();
    for s in shown.iter().take(show) {
        eprintln!("{s}");
    }
    eprintln!("{}", tally.table(class));
    eprintln!(
        "differential [{class}]: {} passed, {failed} failed (engines {:?}; runs in compiled \
         code so far: {})",
        cases - failed,
        engines(),
        JIT_CASES.load(Ordering::Relaxed)
    );
    if failed > 0 {
        let path = repo_root().join(format!("target/differential-{class}-failures.jsonl"));
        if let Ok(mut f) = std::fs::File::create(&path) {
            for l in &failures {
                let _ = writeln!(f, "{l}");
            }
            eprintln!(
                "failing cases written to {} (rerun: ARMBOARD_DIFF_FILE={} cargo test -p \
                 armboard-cpu --test differential {class})",
                path.display(),
                path.display()
            );
        }
        panic!("differential [{class}]: {failed} of {cases} cases failed");
    }
}

#[test]
fn int() {
    run_class("int");
}

#[test]
fn ldst() {
    run_class("ldst");
}

#[test]
fn fp() {
    run_class("fp");
}

#[test]
fn simd() {
    run_class("simd");
}

/// The Rust data fill matches the generator's (first words of splitmix64 from seed 0).
#[test]
fn data_fill_is_splitmix64() {
    let d = data_fill(0);
    assert_eq!(
        u64::from_le_bytes(d[0..8].try_into().expect("8 bytes")),
        0xe220_a839_7b1d_cdaf
    );
}
