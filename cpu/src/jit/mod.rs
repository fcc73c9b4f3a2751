//! Tier 1: IR blocks compiled to native code with Cranelift.
//!
//! A compiled block is `extern "C" fn(*mut CpuState, *mut JitCtx) -> u32`, returning one of
//! the `EXIT_*` codes with `state.pc` set, exactly as the interpreter leaves it. Guest X
//! registers and NZCV are SSA values inside a block and written back before anything that can
//! leave it (a memory call that may fault, a helper, the terminal). Memory accesses and
//! helpers call the `extern "C"` entry points in [`runtime`], which return status codes and
//! never unwind into compiled code.
//!
//! Blocks are compiled either inline ([`Jit::compile`]) or, for the tiered engine, on a compile
//! worker thread ([`Jit::request`]; the vCPU keeps interpreting the block and picks the code
//! up with [`Jit::poll`] at the dispatcher). Either way linking — exit slots and the
//! indirect-branch table — happens on the vCPU thread while no compiled code runs.
//!
//! Code memory is reclaimed by generations: each generation's code lives in one `JITModule`;
//! flushing the code cache drops the whole generation at once, at the dispatcher, when no block
//! is running. Work is tagged with its generation, so code finished for a flushed generation is
//! thrown away.

#[cfg(target_arch = "x86_64")]
mod arena;
mod emit;
pub mod runtime;
mod worker;

use crate::ir::{Block, Terminal};
use crate::mem::{FastMem, TlbFast};
use crate::state::CpuState;
use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Signature, Type};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Module};
use emit::Emitter;
use runtime::JitCtx;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use worker::Worker;

/// A compiled block: native code in the `tail` calling convention, taking the CPU state and
/// the [`JitCtx`] and returning an `EXIT_*` code. Entered through [`Jit::enter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockFn(*const u8);

impl BlockFn {
    /// The code's address (never 0).
    pub fn addr(self) -> usize {
        self.0 as usize
    }

    /// The block whose code is at `addr`, from [`BlockFn::addr`].
    pub fn from_addr(addr: usize) -> Self {
        BlockFn(addr as *const u8)
    }
}

/// The entry trampoline (host C convention), which calls a block.
type EnterFn = unsafe extern "C" fn(*mut CpuState, *mut JitCtx<'_>, *const u8) -> u32;

/// The linking side of one generation of code: what it has compiled and the exit slots
/// through which its blocks chain. (The code itself lives in the compiler's module for the
/// generation.)
struct Generation {
    number: u64,
    /// Compiled code by (guest pc, [`LinkPolicy`] tag).
    compiled: HashMap<(u64, u64), usize>,
    /// Exit slots waiting for a block at this (pc, tag) to be compiled.
    pending: HashMap<(u64, u64), Vec<usize>>,
    /// Exit slots: a block's known-target exits tail-call the code a slot holds (0 = return to
    /// the dispatcher). Boxed so their addresses, embedded in code, stay put when the Vec
    /// grows.
    slots: Vec<Box<[AtomicUsize]>>,
    /// Indirect-branch lookup: a direct-mapped table of (guest pc, code) pairs that compiled
    /// BR/BLR/RET exits probe before returning to the dispatcher.
    lookup: Box<[AtomicUsize]>,
    bytes: usize,
}

impl Generation {
    fn new(number: u64) -> Self {
        Self {
            number,
            compiled: HashMap::new(),
            pending: HashMap::new(),
            slots: Vec::new(),
            lookup: (0..2 * LOOKUP_ENTRIES)
                .map(|_| AtomicUsize::new(0))
                .collect(),
            bytes: 0,
        }
    }
}

/// Entries of the indirect-branch table (a power of two).
const LOOKUP_ENTRIES: usize = 4096;

fn lookup_index(pc: u64) -> usize {
    ((pc >> 2) as usize) & (LOOKUP_ENTRIES - 1)
}

/// log2 of the entries of a vCPU's jump cache, the table of `[guest pc, exec epoch, code,
/// (engine's use)]` 8-byte words at the address given to [`Jit::set_jcache`], indexed by
/// bits of the pc ([`jcache_index`]). An entry with the memory's current exec epoch and
/// nonzero code holds the code of the block that pc translates to now. Exits that cannot
/// chain directly (other pages, indirect branches; system mode) probe it.
pub const JCACHE_BITS: u32 = 14;
pub const JCACHE_ENTRIES: usize = 1 << JCACHE_BITS;

/// The jump-cache entry of `pc`.
#[inline]
pub fn jcache_index(pc: u64) -> usize {
    ((pc >> 2) as usize) & (JCACHE_ENTRIES - 1)
}

pub const EXIT_CONTINUE: u32 = 0;
pub const EXIT_SVC: u32 = 1;
pub const EXIT_BRK: u32 = 2;
pub const EXIT_UNDEFINED: u32 = 3;
pub const EXIT_FAULT: u32 = 4;
pub const EXIT_WAIT: u32 = 5;

/// Which other compiled code a block may enter directly, without the dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkPolicy {
    /// User mode: guest addresses never change meaning, so known-target exits chain to any
    /// compiled block and indirect branches probe the indirect-branch table.
    #[default]
    Any,
    /// System mode: a virtual pc means something only under the translation it was read
    /// with. A known-target exit chains only to a block in the same 4 KiB page as this
    /// block's first instruction that was compiled with the same `tag` (the engine's name for
    /// the translation, e.g. the physical page and regime; blocks with equal pc and tag must
    /// be the same code). Every other exit, and every indirect branch, returns to the
    /// dispatcher, which revalidates the translation.
    SamePage { tag: u64 },
}

impl LinkPolicy {
    /// The tag blocks are recorded under (0 in user mode).
    fn tag(self) -> u64 {
        match self {
            LinkPolicy::Any => 0,
            LinkPolicy::SamePage { tag } => tag,
        }
    }

    /// Whether a block starting at `from` may chain straight to `to`.
    pub fn may_link(self, from: u64, to: u64) -> bool {
        match self {
            LinkPolicy::Any => true,
            LinkPolicy::SamePage { .. } => from >> 12 == to >> 12,
        }
    }

    /// Whether indirect branches may use the indirect-branch table.
    pub fn indirect_table(self) -> bool {
        self == LinkPolicy::Any
    }
}

/// A generation is dropped once it holds this much code.
const GENERATION_BYTES: usize = 64 << 20;

/// Counters reported by `--stats` and the benches.
#[derive(Debug, Default, Clone, Copy)]
pub struct JitStats {
    pub blocks: u64,
    pub guest_insns: u64,
    /// CPU time spent compiling (on whichever thread compiled).
    pub compile_ns: u64,
    pub code_bytes: u64,
    pub generations: u64,
    /// Blocks handed to the compile worker.
    pub queued: u64,
    /// Of those, finished for a generation that had been flushed meanwhile (thrown away).
    pub discarded: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum JitError {
    #[error("cranelift does not support this host: {0}")]
    Host(String),
    #[error("cranelift: {0}")]
    Codegen(String),
}

fn new_module() -> Result<JITModule, JitError> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| {
        f.set(k, v).map_err(|e| JitError::Host(e.to_string()))
    };
    // opt_level "none": no e-graph pass, which was a quarter of the compile time of a small
    // block. The emitter already shares constants within a CLIF block, folds the W32
    // narrowing and reads conditions from the flag operands, so the pass had little left to
    // do: code is the same size, blocks compile 30-40% faster (benches `jit_compile`, virt
    // boot 660 -> ~450 us per block) and the mix and busybox-sh workloads of
    // benches/compare.sh run within noise of "speed". (Before those emitter changes "none"
    // made busybox-sh run up to 15% slower.) The single-pass register allocator compiles a
    // quarter faster but its code runs 40% slower (mix).
    set(&mut flags, "opt_level", "none")?;
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", "false")?;
    // Tail calls between blocks need frame pointers in this Cranelift version.
    set(&mut flags, "preserve_frame_pointers", "true")?;
    set(
        &mut flags,
        "enable_verifier",
        if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        },
    )?;
    let isa = cranelift_native::builder()
        .map_err(|e| JitError::Host(e.to_string()))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| JitError::Host(e.to_string()))?;
    let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
    #[cfg(target_arch = "x86_64")]
    match arena::CodeArena::new() {
        Ok(a) => {
            builder.memory_provider(Box::new(a));
        }
        Err(e) => log::debug!("jit: no writable code arena ({e}); one mapping per block"),
    }
    Ok(JITModule::new(builder))
}

/// What compiling one block needs besides its IR, and what linking it needs afterwards.
/// Plain data, so it can travel to the compile worker and back.
#[derive(Debug, Clone)]
struct Job {
    /// The generation the code is for.
    gen: u64,
    /// The engine's name for the block, handed back with the code.
    key: u64,
    pc: u64,
    /// Guest instructions of the whole region.
    len: u32,
    fast: Option<FastMem>,
    /// The inline TLB loads and stores probe (system mode).
    tlb: Option<TlbFast>,
    link: LinkPolicy,
    /// Known exit targets outside the region, in slot order.
    targets: Vec<u64>,
    /// Address of the region's exit slots (one per target), when some exit may chain.
    slots: Option<usize>,
    /// Address of the indirect-branch table, when indirect branches probe it.
    lookup: Option<usize>,
    /// Address of the vCPU's interrupt flag: chained exits return to the dispatcher when set.
    interrupt: usize,
    /// Chained exits also check the instruction budget ([`Jit::budgeted`]).
    budgeted: bool,
    /// System mode: (address of the jump cache, address of the memory's exec epoch), probed
    /// by exits that cannot chain through a slot.
    jcache: Option<(usize, usize)>,
}

/// A finished job: the code's address and size (None: Cranelift refused the block) and how
/// long compiling took.
struct Done {
    job: Job,
    code: Option<(usize, usize)>,
    ns: u64,
}

/// CPU time of the calling thread in nanoseconds (compile cost, unaffected by other load).
fn thread_cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// ARMBOARD_JIT_DUMP=DIR: write each compiled block's CLIF and machine code to
/// `DIR/<function id>.txt` (perf names JIT functions `.Lfn<id in hex>`).
fn dump_dir() -> Option<&'static std::path::Path> {
    static DIR: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| std::env::var_os("ARMBOARD_JIT_DUMP").map(Into::into))
        .as_deref()
}

fn dump_block(
    dir: &std::path::Path,
    blocks: &[&Block],
    id: cranelift_module::FuncId,
    ctx: &Context,
) {
    let pcs: Vec<String> = blocks.iter().map(|b| format!("{:#x}", b.pc)).collect();
    let len: u32 = blocks.iter().map(|b| b.len).sum();
    let asm = ctx
        .compiled_code()
        .and_then(|c| c.vcode.clone())
        .unwrap_or_default();
    let text = format!(
        "guest pc {}, {len} instructions\n\n{}\n{asm}",
        pcs.join(" "),
        ctx.func
    );
    let path = dir.join(format!("{:x}.txt", id.as_u32()));
    if let Err(e) = std::fs::write(&path, text) {
        log::warn!("jit: {}: {e}", path.display());
    }
}

/// Cranelift's side: one module per generation that still has code, and the reusable
/// contexts. Lives on the vCPU thread (inline compilation) or on the compile worker.
struct Compiler {
    /// (generation, module), oldest first.
    modules: Vec<(u64, JITModule)>,
    ctx: Context,
    fctx: FunctionBuilderContext,
}

impl Compiler {
    fn new() -> Self {
        Self {
            modules: Vec::new(),
            ctx: Context::new(),
            fctx: FunctionBuilderContext::new(),
        }
    }

    /// Compile the region `blocks` (its head first) into generation `job.gen`'s module.
    fn compile(&mut self, blocks: &[&Block], job: &Job) -> Option<(usize, usize)> {
        let b = blocks[0];
        if self.modules.last().is_none_or(|(g, _)| *g != job.gen) {
            match new_module() {
                Ok(m) => self.modules.push((job.gen, m)),
                Err(e) => {
                    log::warn!("jit: {e}");
                    return None;
                }
            }
        }
        let (_, module) = self.modules.last_mut()?;
        let ptr = module.target_config().pointer_type();
        let sig = block_signature(ptr);
        let id = module.declare_anonymous_function(&sig).ok()?;
        self.ctx.func.signature = sig;
        let frontend = module.target_config();
        {
            let fb = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let cc = frontend.default_call_conv;
            let temps = blocks.iter().map(|b| b.temps as usize).max().unwrap_or(0);
            let mut e = Emitter::new(fb, ptr, temps, job.fast, cc);
            e.tlb = job.tlb;
            e.interrupt = job.interrupt;
            e.targets.clone_from(&job.targets);
            e.chain = job.slots.map(|s| (s, job.interrupt));
            e.lookup = job.lookup.map(|t| (t, job.interrupt));
            e.budgeted = job.budgeted;
            e.jcache = job.jcache.map(|(t, ep)| (t, ep, job.interrupt));
            e.region(blocks);
            e.fb.finalize(frontend);
        }
        let dump = dump_dir();
        if dump.is_some() {
            self.ctx.set_disasm(true);
        }
        let r = module.define_function(id, &mut self.ctx);
        if let (Some(dir), Ok(_)) = (dump, &r) {
            dump_block(dir, blocks, id, &self.ctx);
        }
        let size = self
            .ctx
            .compiled_code()
            .map_or(0, |c| c.code_buffer().len());
        module.clear_context(&mut self.ctx);
        if let Err(err) = r {
            log::warn!("jit: block {:#x} not compiled: {err:?}", b.pc);
            return None;
        }
        module.finalize_definitions().ok()?;
        Some((module.get_finalized_function(id) as usize, size))
    }

    /// Free the code of every generation up to `gen`.
    ///
    /// # Safety
    /// None of that code may be running or run again.
    unsafe fn retire(&mut self, gen: u64) {
        let keep = self
            .modules
            .split_off(self.modules.partition_point(|(g, _)| *g <= gen));
        for (_, m) in std::mem::replace(&mut self.modules, keep) {
            // SAFETY: per this function's contract.
            unsafe { m.free_memory() };
        }
    }
}

impl Drop for Compiler {
    fn drop(&mut self) {
        // SAFETY: a compiler is dropped with its JIT (inline) or when its JIT hung up on the
        // worker, in both cases when the vCPU is gone or back at the dispatcher for good.
        unsafe { self.retire(u64::MAX) };
    }
}

/// How [`Jit::request`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Compiled on the spot (None: Cranelift refused the block).
    Ready(Option<BlockFn>),
    /// Handed to the compile worker: [`Jit::poll`] returns it when done.
    Queued,
}

pub struct Jit {
    gen: Generation,
    /// The module holding the entry trampoline; lives as long as the JIT.
    tramp: Option<JITModule>,
    enter: EnterFn,
    /// The inline compiler, made on first use.
    inline: Option<Compiler>,
    /// Whether [`Jit::request`] compiles on a worker thread.
    background: bool,
    /// The compile worker, started on the first request.
    worker: Option<Worker>,
    /// Requests of the current generation not answered yet.
    in_flight: usize,
    /// The worker was lost (this process is a fork child that did not say so): flush.
    lost: bool,
    /// Address of the vCPU's interrupt flag: chained exits return to the dispatcher when set.
    interrupt: usize,
    /// The inline TLB loads and stores probe (system mode), see [`Jit::set_tlb_fast`].
    tlb: Option<TlbFast>,
    /// Blocks compiled from now on stop chaining once [`JitCtx::limit`] is reached (one
    /// compare per chained exit), so an instruction budget ends at the same block boundary
    /// as in the interpreter. Off: the limit is not looked at.
    pub budgeted: bool,
    /// The jump cache's address (see [`JCACHE_BITS`]), if the engine keeps one.
    jcache: Option<usize>,
    pub stats: JitStats,
}

impl Jit {
    /// Have blocks compiled from now on probe the inline TLB `tlb` (the [`crate::Mem`] they
    /// run on: [`crate::Mem::tlb_fast`]) before calling the memory for loads and stores.
    /// Code embeds the tables' address, so a vCPU must keep running on the same memory.
    pub fn set_tlb_fast(&mut self, tlb: Option<TlbFast>) {
        self.tlb = tlb;
    }

    /// A JIT that compiles inline, for a vCPU whose interrupt flag lives at `interrupt` (it
    /// must outlive the JIT).
    pub fn new(interrupt: &AtomicBool) -> Result<Self, JitError> {
        let mut module = new_module()?;
        let enter = trampoline(&mut module)?;
        Ok(Self {
            gen: Generation::new(0),
            tramp: Some(module),
            enter,
            inline: None,
            background: false,
            worker: None,
            in_flight: 0,
            lost: false,
            interrupt: interrupt as *const AtomicBool as usize,
            tlb: None,
            budgeted: false,
            jcache: None,
            stats: JitStats::default(),
        })
    }

    /// Have code compiled from now on test the interrupt flag at `interrupt` (it must outlive
    /// the JIT) instead of the one given at creation.
    pub fn set_interrupt(&mut self, interrupt: &AtomicBool) {
        self.interrupt = interrupt as *const AtomicBool as usize;
    }

    /// A JIT whose [`Jit::request`] compiles on a worker thread.
    pub fn with_worker(interrupt: &AtomicBool) -> Result<Self, JitError> {
        let mut j = Self::new(interrupt)?;
        j.background = true;
        Ok(j)
    }

    /// Compile on a worker thread (started at the first request) from now on, or inline.
    pub fn set_background(&mut self, on: bool) {
        self.background = on;
    }

    /// Whether the caller should flush: the current generation is full, or the compile
    /// worker was lost.
    pub fn wants_flush(&self) -> bool {
        self.lost || self.gen.bytes >= GENERATION_BYTES
    }

    /// Drop every compiled block and every answer still to come. The caller must hold no
    /// `BlockFn` of this JIT afterwards and must not be running one.
    pub fn flush(&mut self) {
        if self.gen.compiled.is_empty() && self.in_flight == 0 && !self.lost {
            return;
        }
        let old = self.gen.number;
        self.gen = Generation::new(old + 1);
        self.in_flight = 0;
        self.lost = false;
        if let Some(w) = &self.worker {
            w.retire(old, self.gen.number);
        }
        if let Some(c) = &mut self.inline {
            // SAFETY: the caller guarantees no pointer into the old generation's code is kept
            // or executing (the engine clears its block map together with this call); the
            // exit slots and table that point into it were dropped just above.
            unsafe { c.retire(old) };
        }
        self.stats.generations += 1;
    }

    /// Forget the compiled blocks of the 4 KiB guest page `page` (a virtual page number) so no
    /// new block links to them. System mode only: there blocks link only within their page,
    /// so the old code becomes unreachable once the engine drops its entries.
    pub fn forget_page(&mut self, page: u64) {
        let g = &mut self.gen;
        g.compiled.retain(|&(pc, _), _| pc >> 12 != page);
        g.pending.retain(|&(pc, _), _| pc >> 12 != page);
    }

    /// Have blocks compiled from now on in system mode probe the jump cache at `table` (see
    /// [`JCACHE_BITS`]; it must outlive the JIT's code) when an exit cannot chain directly.
    pub fn set_jcache(&mut self, table: usize) {
        self.jcache = Some(table);
    }

    /// This process is the child of a fork: the compile worker did not come along. Its
    /// unanswered requests are forgotten (the caller re-queues those blocks); the code it
    /// made stays valid (the memory was copied) and a new worker starts on the next request.
    pub fn after_fork(&mut self) {
        if let Some(w) = self.worker.take() {
            // The channels' other ends belong to a thread that no longer exists: leave them
            // untouched rather than run their disconnect logic.
            std::mem::forget(w);
        }
        self.in_flight = 0;
    }

    /// Run compiled code.
    ///
    /// # Safety
    /// `code` must come from this JIT's current generation, and `ctx` must point at `state`
    /// and a memory that stay exclusively borrowed for the call.
    pub unsafe fn enter(&self, code: BlockFn, state: *mut CpuState, ctx: &mut JitCtx<'_>) -> u32 {
        // SAFETY: per this function's contract.
        unsafe { (self.enter)(state, ctx, code.0) }
    }

    /// Whether the block can be compiled at all (fetch faults stay in the interpreter).
    pub fn compilable(b: &Block) -> bool {
        !matches!(b.terminal, Terminal::FetchFault { .. })
    }

    /// Compile `b` now, whose loads and stores may use the window `fast`, linking its exits
    /// as `link` allows. `None` if Cranelift refused it (the block then stays interpreted).
    pub fn compile(
        &mut self,
        b: &Block,
        fast: Option<FastMem>,
        link: LinkPolicy,
    ) -> Option<BlockFn> {
        self.compile_region(&[b], fast, link)
    }

    /// Compile a region: `blocks[0]`, its head, and blocks of its page it branches to
    /// directly (see [`Jit::request`]).
    pub fn compile_region(
        &mut self,
        blocks: &[&Block],
        fast: Option<FastMem>,
        link: LinkPolicy,
    ) -> Option<BlockFn> {
        let job = self.job(blocks[0].pc, blocks, fast, link);
        let start = thread_cpu_ns();
        let code = self
            .inline
            .get_or_insert_with(Compiler::new)
            .compile(blocks, &job);
        let ns = thread_cpu_ns().saturating_sub(start);
        self.install(Done { job, code, ns })
    }

    /// Compile the region `blocks` (the engine's block `key` first, then blocks of its page
    /// that are entered only from inside the region by the code compiled here: known-target
    /// exits to them jump inside the function) in the background if this JIT has a worker,
    /// else now. The code is entered at `blocks[0]`'s pc.
    pub fn request(
        &mut self,
        key: u64,
        blocks: &[&Block],
        fast: Option<FastMem>,
        link: LinkPolicy,
    ) -> Request {
        if !self.background {
            return Request::Ready(self.compile_region(blocks, fast, link));
        }
        if self.worker.as_ref().is_some_and(|w| !w.alive_here()) {
            // A fork child nobody told: its unanswered requests are lost, so start over.
            self.after_fork();
            self.lost = true;
        }
        if self.worker.is_none() {
            match Worker::spawn(self.gen.number) {
                Ok(w) => self.worker = Some(w),
                Err(e) => {
                    log::warn!("jit: no compile worker ({e}); compiling inline");
                    self.background = false;
                    return Request::Ready(self.compile_region(blocks, fast, link));
                }
            }
        }
        let job = self.job(key, blocks, fast, link);
        let w = self.worker.as_ref().expect("worker started above");
        if w.compile(blocks.iter().map(|&b| b.clone()).collect(), job) {
            self.in_flight += 1;
            self.stats.queued += 1;
            Request::Queued
        } else {
            // The worker died (it never panics on guest input, but be safe): go inline.
            self.worker = None;
            self.background = false;
            Request::Ready(self.compile_region(blocks, fast, link))
        }
    }

    /// Whether requests are outstanding (then the dispatcher should [`Jit::poll`]).
    pub fn busy(&self) -> bool {
        self.in_flight > 0
    }

    /// Link the code the worker has finished and hand each block's (key, code) to `install`
    /// (None: Cranelift refused the block). Answers for flushed generations are dropped.
    pub fn poll(&mut self, mut install: impl FnMut(u64, Option<BlockFn>)) {
        while let Some(done) = self.worker.as_mut().and_then(Worker::try_done) {
            if done.job.gen != self.gen.number {
                self.stats.discarded += 1;
                continue;
            }
            self.in_flight = self.in_flight.saturating_sub(1);
            let key = done.job.key;
            let code = self.install(done);
            install(key, code);
        }
    }

    /// Describe compiling the region `blocks` for the current generation; allocates its
    /// exit slots.
    fn job(&mut self, key: u64, blocks: &[&Block], fast: Option<FastMem>, link: LinkPolicy) -> Job {
        let g = &mut self.gen;
        let b = blocks[0];
        // Exit slots for known targets outside the region (slot k for target k). A target
        // the policy does not let this block link to keeps an empty slot: that exit always
        // returns.
        let mut targets: Vec<u64> = Vec::new();
        for t in blocks.iter().flat_map(|m| m.terminal.known_targets()) {
            if !blocks.iter().any(|m| m.pc == t) && !targets.contains(&t) {
                targets.push(t);
            }
        }
        let slots = if !targets.iter().any(|&t| link.may_link(b.pc, t)) {
            None
        } else {
            let bx: Box<[AtomicUsize]> = targets.iter().map(|_| AtomicUsize::new(0)).collect();
            let addr = bx.as_ptr() as usize;
            g.slots.push(bx);
            Some(addr)
        };
        Job {
            gen: g.number,
            key,
            pc: b.pc,
            len: blocks.iter().map(|m| m.len).sum(),
            fast,
            tlb: self.tlb,
            link,
            targets,
            slots,
            lookup: link.indirect_table().then_some(g.lookup.as_ptr() as usize),
            interrupt: self.interrupt,
            budgeted: self.budgeted,
            jcache: match (link, self.tlb, self.jcache) {
                (LinkPolicy::SamePage { .. }, Some(t), Some(table)) if t.epoch != 0 => {
                    Some((table, t.epoch))
                }
                _ => None,
            },
        }
    }

    /// Link finished code of the current generation: its exits to compiled targets, waiting
    /// exits to it, and the indirect-branch table.
    fn install(&mut self, done: Done) -> Option<BlockFn> {
        let Done { job, code, ns } = done;
        self.stats.compile_ns += ns;
        let (code, size) = code?;
        let g = &mut self.gen;
        debug_assert_eq!(job.gen, g.number);
        let tag = job.link.tag();
        g.bytes += size;
        if let Some(base) = job.slots {
            let linkable = job.targets.iter().enumerate();
            for (k, t) in linkable.filter(|(_, &t)| job.link.may_link(job.pc, t)) {
                let slot = base + k * std::mem::size_of::<AtomicUsize>();
                match g.compiled.get(&(*t, tag)) {
                    Some(&c) => slot_ref(slot).store(c, Ordering::Release),
                    None => g.pending.entry((*t, tag)).or_default().push(slot),
                }
            }
        }
        for slot in g.pending.remove(&(job.pc, tag)).unwrap_or_default() {
            slot_ref(slot).store(code, Ordering::Release);
        }
        g.compiled.insert((job.pc, tag), code);
        if job.lookup.is_some() {
            let k = 2 * lookup_index(job.pc);
            g.lookup[k].store(job.pc as usize, Ordering::Release);
            g.lookup[k + 1].store(code, Ordering::Release);
        }
        self.stats.blocks += 1;
        self.stats.guest_insns += job.len as u64;
        self.stats.code_bytes += size as u64;
        Some(BlockFn(code as *const u8))
    }
}

impl Drop for Jit {
    fn drop(&mut self) {
        if self.worker.as_ref().is_some_and(|w| !w.alive_here()) {
            self.after_fork();
        }
        if let Some(m) = self.tramp.take() {
            // SAFETY: the JIT is going away, so nothing runs its code any more.
            unsafe { m.free_memory() };
        }
    }
}

/// Define the entry trampoline in `module`: enter(state, ctx, code) -> code(state, ctx).
fn trampoline(module: &mut JITModule) -> Result<EnterFn, JitError> {
    let ptr = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    sig.params.extend([AbiParam::new(ptr); 3]);
    sig.returns.push(AbiParam::new(types::I32));
    let id = module
        .declare_anonymous_function(&sig)
        .map_err(|e| JitError::Codegen(e.to_string()))?;
    let mut ctx = Context::new();
    let mut fctx = FunctionBuilderContext::new();
    ctx.func.signature = sig;
    let frontend = module.target_config();
    {
        let mut fb = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let entry = fb.create_block();
        fb.append_block_params_for_function_params(entry);
        fb.switch_to_block(entry);
        fb.seal_block(entry);
        let p = fb.block_params(entry).to_vec();
        let tail = fb.import_signature(block_signature(ptr));
        let call = fb.ins().call_indirect(tail, p[2], &[p[0], p[1]]);
        let r = fb.inst_results(call)[0];
        fb.ins().return_(&[r]);
        fb.finalize(frontend);
    }
    module
        .define_function(id, &mut ctx)
        .map_err(|e| JitError::Codegen(format!("{e:?}")))?;
    module.clear_context(&mut ctx);
    module
        .finalize_definitions()
        .map_err(|e| JitError::Codegen(e.to_string()))?;
    let code = module.get_finalized_function(id);
    // SAFETY: `code` is the trampoline just defined with exactly EnterFn's signature in the
    // host's default C calling convention.
    Ok(unsafe { std::mem::transmute::<*const u8, EnterFn>(code) })
}

/// The slot at `addr`, one of the current generation's boxed exit slots.
fn slot_ref(addr: usize) -> &'static AtomicUsize {
    // SAFETY: `addr` is an element of a `Box<[AtomicUsize]>` owned by the current
    // generation, which outlives every use here (linking happens while it is current).
    unsafe { &*(addr as *const AtomicUsize) }
}

/// Blocks use the `tail` convention so exits can tail-call the next block.
fn block_signature(ptr: Type) -> Signature {
    let mut sig = Signature::new(CallConv::Tail);
    sig.params.push(AbiParam::new(ptr));
    sig.params.push(AbiParam::new(ptr));
    sig.returns.push(AbiParam::new(types::I32));
    sig
}

#[cfg(test)]
mod tests;
