//! Shared support for the integration tests that run real Debian arm64 programs.
//!
//! Guests come from Debian bookworm through `armboard_firmware::deb` (cached, see its docs).
//! Each program runs under `armboard user` (the release binary, once per engine) and under
//! `qemu-aarch64 -L <sysroot>` as the reference; status, stdout and the files the program
//! writes must agree. Nothing is skipped: a missing tool or a failed fetch fails the test
//! with the reason.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Everything the program tests need, in one sysroot (one fetch, shared by all tests).
pub const GUEST_PACKAGES: &[&str] = &[
    "busybox-static",
    "python3.11",
    "xz-utils",
    "openssl",
    "7zip",
];

/// The armboard binary under test.
pub const ARMBOARD: &str = env!("CARGO_BIN_EXE_armboard");

/// The sysroot holding [`GUEST_PACKAGES`], fetched on first use.
pub fn sysroot() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(
        || match armboard_firmware::deb::Sysroot::ensure(GUEST_PACKAGES) {
            Ok(s) => s.path,
            Err(e) => panic!(
                "fetching the Debian arm64 guests {GUEST_PACKAGES:?} failed: {e}\n\
                 (this test needs apt-get and access to a Debian mirror)"
            ),
        },
    )
}

/// Host path of a program in the sysroot, e.g. `busybox`.
pub fn program(name: &str) -> PathBuf {
    armboard_firmware::deb::find_program(sysroot(), name)
        .unwrap_or_else(|| panic!("{name} is not in the sysroot {}", sysroot().display()))
}

/// `ARMBOARD_TEST_REFERENCE_ONLY=1` runs only the QEMU reference and the known-good checks:
/// for checking the tests themselves, never what CI runs.
pub fn reference_only() -> bool {
    std::env::var_os("ARMBOARD_TEST_REFERENCE_ONLY").is_some_and(|v| v == "1")
}

/// The engines to test: `$ARMBOARD_ENGINE` alone if set, else the default and `interp`.
pub fn engines() -> Vec<Option<String>> {
    match std::env::var("ARMBOARD_ENGINE") {
        Ok(e) if !e.is_empty() => vec![Some(e)],
        _ => vec![None, Some("interp".to_string())],
    }
}

/// How long one guest run may take (`$ARMBOARD_TEST_TIMEOUT` seconds, default `default`).
pub fn timeout(default: u64) -> Duration {
    let s = std::env::var("ARMBOARD_TEST_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Duration::from_secs(s)
}

/// A fresh, empty working directory for one run.
pub fn workdir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("armboard-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating a work directory");
    d
}

/// What one run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Exit status; `None` when killed by a signal.
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs `cmd` with `stdin`, killing it after `limit`.
pub fn run(mut cmd: Command, stdin: &[u8], limit: Duration) -> Outcome {
    let shown = format!("{cmd:?}");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let mut input = child.stdin.take().expect("piped stdin");
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data); // the guest may exit without reading it all
    });
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let ereader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() >= limit => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("waiting for a killed child");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for {shown}: {e}"),
        }
    };
    let elapsed = start.elapsed();
    let _ = feeder.join();
    Outcome {
        status: status.code(),
        stdout: reader.join().unwrap_or_default(),
        stderr: ereader.join().unwrap_or_default(),
        timed_out,
        elapsed,
    }
}

/// The environment every guest sees, the same under armboard and QEMU.
fn guest_env(cmd: &mut Command) {
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .env("HOME", "/tmp")
        .env("PYTHONHASHSEED", "0");
}

/// `armboard user` running `prog` with `args` in `dir`.
pub fn armboard_cmd(engine: Option<&str>, prog: &Path, args: &[String], dir: &Path) -> Command {
    let mut cmd = Command::new(ARMBOARD);
    guest_env(&mut cmd);
    cmd.arg("user");
    if let Some(e) = engine {
        cmd.args(["--engine", e]);
    }
    cmd.arg("--sysroot").arg(sysroot()).arg(prog).args(args);
    cmd.current_dir(dir);
    cmd
}

/// `qemu-aarch64 -L sysroot` running `prog` with `args` in `dir`.
pub fn qemu_cmd(prog: &Path, args: &[String], dir: &Path) -> Command {
    let qemu = find_on_path("qemu-aarch64").unwrap_or_else(|| {
        panic!("qemu-aarch64 (the reference) is not installed: apt-get install qemu-user")
    });
    let mut cmd = Command::new(qemu);
    guest_env(&mut cmd);
    cmd.arg("-L").arg(sysroot()).arg(prog).args(args);
    cmd.current_dir(dir);
    cmd
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn show(b: &[u8]) -> String {
    const MAX: usize = 3000;
    let s = String::from_utf8_lossy(b);
    if s.len() > MAX {
        let mut cut = s.len() - MAX;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        format!("...{}", &s[cut..])
    } else {
        s.into_owned()
    }
}

/// One guest program run, checked against QEMU under every engine.
pub struct Case {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    stdin: Vec<u8>,
    files: Vec<(String, Vec<u8>)>,
    outputs: Vec<String>,
    compare_stdout: bool,
    limit: Duration,
    verify: Vec<Verify>,
}

/// A known-good check applied to every run (QEMU's and armboard's): the run's working
/// directory and outcome; `Err` says what is wrong.
pub type Verify = Box<dyn Fn(&Path, &Outcome) -> Result<(), String>>;

/// What the reference (QEMU) run gave, for further checks by the test.
pub struct Reference {
    pub outcome: Outcome,
    /// The contents of the declared output files, in order.
    pub outputs: Vec<Vec<u8>>,
}

impl Case {
    /// Runs the sysroot program `program` (a name such as `busybox`) with `args`.
    pub fn new(name: &str, program_name: &str, args: &[&str]) -> Case {
        Case {
            name: name.to_string(),
            program: program(program_name),
            args: args.iter().map(|s| s.to_string()).collect(),
            stdin: Vec::new(),
            files: Vec::new(),
            outputs: Vec::new(),
            compare_stdout: true,
            limit: timeout(180),
            verify: Vec::new(),
        }
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Case {
        self.stdin = data.into();
        self
    }

    /// A file put into the working directory before the run.
    pub fn file(mut self, name: &str, data: impl Into<Vec<u8>>) -> Case {
        self.files.push((name.to_string(), data.into()));
        self
    }

    /// A file the program writes in its working directory; compared after the run.
    pub fn output(mut self, name: &str) -> Case {
        self.outputs.push(name.to_string());
        self
    }

    /// Stdout varies from run to run (timings): compare only status and output files.
    pub fn ignore_stdout(mut self) -> Case {
        self.compare_stdout = false;
        self
    }

    /// Adds a known-good check, applied to the reference run and to every armboard run.
    pub fn verify(mut self, f: impl Fn(&Path, &Outcome) -> Result<(), String> + 'static) -> Case {
        self.verify.push(Box::new(f));
        self
    }

    pub fn time_limit(mut self, secs: u64) -> Case {
        self.limit = timeout(secs);
        self
    }

    fn prepare(&self, tag: &str) -> PathBuf {
        let dir = workdir(&format!("{}-{tag}", self.name));
        for (n, d) in &self.files {
            std::fs::write(dir.join(n), d).expect("writing an input file");
        }
        dir
    }

    fn read_outputs(&self, dir: &Path, who: &str) -> Vec<Vec<u8>> {
        self.outputs
            .iter()
            .map(|n| {
                std::fs::read(dir.join(n))
                    .unwrap_or_else(|e| panic!("{}: {who} did not write {n}: {e}", self.name))
            })
            .collect()
    }

    /// Runs under QEMU, then under armboard with each engine, and asserts they agree.
    pub fn check(self) -> Reference {
        let qdir = self.prepare("qemu");
        let q = run(
            qemu_cmd(&self.program, &self.args, &qdir),
            &self.stdin,
            self.limit,
        );
        assert!(
            !q.timed_out,
            "{}: the reference run under qemu-aarch64 timed out",
            self.name
        );
        let qout = self.read_outputs(&qdir, "qemu-aarch64");
        for v in &self.verify {
            if let Err(e) = v(&qdir, &q) {
                panic!(
                    "{}: the reference run under qemu-aarch64 fails the known-good check: {e}\n\
                     --- qemu stderr ---\n{}\n--- qemu stdout ---\n{}",
                    self.name,
                    show(&q.stderr),
                    show(&q.stdout)
                );
            }
        }
        let _ = std::fs::remove_dir_all(&qdir);
        if reference_only() {
            return Reference {
                outcome: q,
                outputs: qout,
            };
        }
        for engine in engines() {
            let label = engine.as_deref().unwrap_or("default");
            let adir = self.prepare(label);
            let a = run(
                armboard_cmd(engine.as_deref(), &self.program, &self.args, &adir),
                &self.stdin,
                self.limit,
            );
            let ctx = || {
                format!(
                    "{} (engine {label}, {:.1?}): armboard status {:?}, qemu status {:?}\n\
                     --- armboard stderr ---\n{}\n--- armboard stdout ---\n{}\n\
                     --- qemu stdout ---\n{}",
                    self.name,
                    a.elapsed,
                    a.status,
                    q.status,
                    show(&a.stderr),
                    show(&a.stdout),
                    show(&q.stdout)
                )
            };
            assert!(!a.timed_out, "timed out after {:?}: {}", self.limit, ctx());
            assert_eq!(a.status, q.status, "exit status differs: {}", ctx());
            if self.compare_stdout {
                assert!(a.stdout == q.stdout, "stdout differs: {}", ctx());
            }
            for (i, n) in self.outputs.iter().enumerate() {
                let got = std::fs::read(adir.join(n))
                    .unwrap_or_else(|e| panic!("armboard did not write {n}: {e}: {}", ctx()));
                assert!(
                    got == qout[i],
                    "output file {n} differs ({} vs {} bytes): {}",
                    got.len(),
                    qout[i].len(),
                    ctx()
                );
            }
            for v in &self.verify {
                if let Err(e) = v(&adir, &a) {
                    panic!("known-good check failed: {e}: {}", ctx());
                }
            }
            // Shown with --nocapture: a rough idea of speed (benches/ measures it properly).
            eprintln!(
                "{}: engine {label}: {:.2?} (qemu-aarch64 {:.2?})",
                self.name, a.elapsed, q.elapsed
            );
            let _ = std::fs::remove_dir_all(&adir);
        }
        Reference {
            outcome: q,
            outputs: qout,
        }
    }
}

/// Deterministic text of about `len` bytes: words from a small vocabulary picked by an LCG,
/// compressible like real text but not trivially.
pub fn sample_text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "board",
        "kernel",
        "emulator",
        "arm64",
        "pi",
        "register",
        "vector",
        "cache",
        "page",
        "interrupt",
        "timer",
        "the",
        "a",
        "of",
        "and",
        "to",
        "in",
        "is",
        "bus",
        "device",
        "container",
        "thread",
        "signal",
        "memory",
        "zero",
        "one",
        "ninety",
        "x86",
        "debian",
    ];
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(len + 16);
    let mut col = 0;
    while out.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let w = WORDS[((x >> 33) % WORDS.len() as u64) as usize];
        out.extend_from_slice(w.as_bytes());
        col += w.len() + 1;
        if (x >> 20) & 63 == 0 {
            out.extend_from_slice(format!(" {}", x >> 40).as_bytes());
        }
        if col > 70 {
            out.push(b'\n');
            col = 0;
        } else {
            out.push(b' ');
        }
    }
    out
}

/// Pseudo-random bytes (incompressible), deterministic.
pub fn sample_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Runs a host tool (used for known-good checks), returning its stdout; panics on failure.
pub fn host(program: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let o = run(cmd, stdin, Duration::from_secs(120));
    assert!(
        o.status == Some(0),
        "host `{program} {}` failed ({:?}): {}",
        args.join(" "),
        o.status,
        o.stderr_text()
    );
    o.stdout
}

/// `Err` describing the difference unless `got == want`.
pub fn same(what: &str, got: &[u8], want: &[u8]) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: got {} bytes, want {} bytes\n--- got ---\n{}\n--- want ---\n{}",
            got.len(),
            want.len(),
            show(got),
            show(want)
        ))
    }
}
