//! The compile worker: a thread that owns the Cranelift modules of a tiered vCPU, compiles the
//! blocks the vCPU sends it and sends the code back. The vCPU links and installs the code at
//! its dispatcher; the worker never touches anything the vCPU uses.
//!
//! Off by default (ARMBOARD_JIT_WORKER=1 turns it on for the tiered engine): on a two-core
//! host shared with other load it cost about 10% more CPU time (the vCPU interprets a hot
//! block until its code arrives) and won no wall time. It can only pay where a core is idle.

use super::{thread_cpu_ns, Compiler, Done, Job};
use crate::ir::Block;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

enum Msg {
    /// A region's blocks, head first.
    Compile(Vec<Block>, Box<Job>),
    /// Free the code of generations up to this one: the vCPU has flushed them.
    Retire(u64),
}

pub(super) struct Worker {
    tx: Sender<Msg>,
    rx: Receiver<Done>,
    /// The generation the vCPU runs: work for older ones is skipped.
    live: Arc<AtomicU64>,
    /// Answers sent so far (counted after each send), and those taken: the vCPU polls at
    /// every dispatch while jobs are out, and a load is much cheaper than `try_recv`.
    sent: Arc<AtomicU64>,
    taken: u64,
    /// The process the worker thread belongs to (a fork child has no worker thread).
    pid: u32,
}

impl Worker {
    /// Start a worker for a vCPU now at generation `gen`.
    pub(super) fn spawn(gen: u64) -> std::io::Result<Self> {
        let (tx, jobs) = channel();
        let (done, rx) = channel();
        let live = Arc::new(AtomicU64::new(gen));
        let sent = Arc::new(AtomicU64::new(0));
        let (l, s) = (live.clone(), sent.clone());
        std::thread::Builder::new()
            .name("armboard-jit".into())
            .spawn(move || run(jobs, done, l, s))?;
        Ok(Self {
            tx,
            rx,
            live,
            sent,
            taken: 0,
            pid: std::process::id(),
        })
    }

    /// Whether the worker thread exists in this process.
    pub(super) fn alive_here(&self) -> bool {
        self.pid == std::process::id()
    }

    /// Queue a block; false if the worker has gone.
    pub(super) fn compile(&self, b: Vec<Block>, job: Job) -> bool {
        self.tx.send(Msg::Compile(b, Box::new(job))).is_ok()
    }

    /// The vCPU flushed generation `old` and now runs `new`.
    pub(super) fn retire(&self, old: u64, new: u64) {
        self.live.store(new, Ordering::Release);
        let _ = self.tx.send(Msg::Retire(old));
    }

    /// A finished job, if one is waiting.
    pub(super) fn try_done(&mut self) -> Option<Done> {
        if self.sent.load(Ordering::Acquire) == self.taken {
            return None;
        }
        let d = self.rx.try_recv().ok()?;
        self.taken += 1;
        Some(d)
    }
}

fn run(jobs: Receiver<Msg>, done: Sender<Done>, live: Arc<AtomicU64>, sent: Arc<AtomicU64>) {
    let mut c = Compiler::new();
    while let Ok(m) = jobs.recv() {
        match m {
            Msg::Compile(b, job) => {
                let start = thread_cpu_ns();
                // Messages arrive in order, so a job's generation is never retired before the
                // job is seen; it may have been flushed, though, and then is not worth doing.
                let code = if job.gen == live.load(Ordering::Acquire) {
                    c.compile(&b.iter().collect::<Vec<_>>(), &job)
                } else {
                    None
                };
                let ns = thread_cpu_ns().saturating_sub(start);
                if done
                    .send(Done {
                        job: *job,
                        code,
                        ns,
                    })
                    .is_err()
                {
                    break;
                }
                sent.fetch_add(1, Ordering::Release);
            }
            // SAFETY: the vCPU sends this after flushing the generation: it holds no pointer
            // into that code and does not run it.
            Msg::Retire(g) => unsafe { c.retire(g) },
        }
    }
    // The vCPU hung up (its JIT was dropped): dropping the compiler frees the code.
}
