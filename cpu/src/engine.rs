//! The run loop: translate on first use, cache blocks by pc, execute them until something
//! the machine must handle.

use crate::a64::translate_block;
use crate::icache::{IcBroadcast, IcOp};
use crate::interp::{run_block, run_prog, BlockExit, Prog};
use crate::ir::{Block, HelperError};
use crate::jit::runtime::JitCtx;
use crate::jit::{self, BlockFn, Jit, JitStats, LinkPolicy, Request};
use crate::mem::{Mem, MemFault};
use crate::model::CpuModel;
use crate::state::{pending, CpuState};
use crate::sys::daif;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Why [`Cpu::run`] returned. `state.pc` tells where to resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SVC #imm; pc is after the SVC.
    Svc(u16),
    /// BRK #imm; pc is the BRK.
    Brk(u16),
    /// Undefined instruction; pc is the instruction.
    Undefined(u32),
    /// A memory fault; pc is the faulting instruction.
    Fault(MemFault),
    /// Someone set the interrupt flag (a signal to deliver, a thread to stop).
    Interrupted,
    /// WFI, WFE, SEV or SEVL: the machine may sleep or signal an event; pc is after the
    /// instruction.
    Wait,
    /// HVC #imm; pc is after the HVC.
    Hvc(u16),
    /// SMC #imm; pc is after the SMC.
    Smc(u16),
    /// The IRQ input is asserted and unmasked (system mode): take the interrupt at pc.
    Irq,
    /// The FIQ input is asserted and unmasked.
    Fiq,
    /// State the machine watches changed ([`crate::state::pending::MACHINE`]).
    System,
    /// `state.retired` reached [`Cpu::stop_at`]; pc is the next block's.
    Budget,
}

/// Multiplicative hash for guest pcs (aligned, so the low bits carry nothing).
#[derive(Default)]
pub struct PcHasher(u64);

impl Hasher for PcHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v >> 2).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Which tiers run guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// The IR interpreter only.
    Interp,
    /// Compile every block before its first run (for testing the JIT).
    Jit,
    /// Interpret cold blocks; compile a block once it has run [`Cpu::hot_threshold`] times.
    #[default]
    Tiered,
}

impl EngineKind {
    /// From `ARMBOARD_ENGINE` (interp, jit, tiered); the default when unset or unknown.
    pub fn from_env() -> Self {
        match std::env::var("ARMBOARD_ENGINE").as_deref() {
            Ok("interp") => EngineKind::Interp,
            Ok("jit") => EngineKind::Jit,
            _ => EngineKind::Tiered,
        }
    }
}

/// One translated block and, once hot, its compiled code.
struct Entry {
    block: Block,
    /// The interpreter's lowered form of `block`, made on the block's [`LOWER_AT`]th run
    /// (None before, or when the block is too big for its frame).
    prog: Option<Prog>,
    /// System mode: the physical address the block was translated from.
    pa: u64,
    hits: u32,
    code: Option<BlockFn>,
    /// The JIT could not compile this block.
    refused: bool,
    /// Handed to the compile worker; interpreted until the code comes back.
    queued: bool,
    /// The exec epoch ([`Mem::exec_epoch`]) at which `pa` was last checked against the pc's
    /// translation: while the memory's epoch is still this, the check can be skipped.
    epoch: u64,
}

impl Entry {
    fn new(block: Block, pa: u64, epoch: u64) -> Self {
        Entry {
            prog: None,
            block,
            pa,
            epoch,
            hits: 0,
            code: None,
            refused: false,
            queued: false,
        }
    }
}

type BlockMap = HashMap<u64, Box<Entry>, BuildHasherDefault<PcHasher>>;

/// One slot of the dispatch cache; its first three words are the layout compiled code
/// probes as the JIT's jump cache ([`jit::JCACHE_BITS`]).
#[repr(C)]
#[derive(Clone, Copy)]
struct Slot {
    pc: u64,
    /// The exec epoch at which `entry` was checked against the translation of `pc`.
    epoch: u64,
    /// `entry`'s compiled code, or 0.
    code: usize,
    entry: *mut Entry,
}

/// No pc and epoch match it: epochs are 0 (no translation) or count up from 1.
const EMPTY: Slot = Slot {
    pc: u64::MAX,
    epoch: u64::MAX,
    code: 0,
    entry: std::ptr::null_mut(),
};

/// The dispatcher's direct-mapped cache in front of the block map, which compiled code also
/// probes as its jump cache. Entry pointers are into the map's boxes; the cache is emptied
/// whenever any entry is removed (and so whenever compiled code is dropped).
struct DispatchCache {
    slots: Box<[Slot]>,
}

impl DispatchCache {
    fn new() -> Self {
        Self {
            slots: vec![EMPTY; jit::JCACHE_ENTRIES].into_boxed_slice(),
        }
    }

    #[inline]
    fn get(&self, pc: u64) -> Slot {
        self.slots[jit::jcache_index(pc)]
    }

    #[inline]
    fn set(&mut self, pc: u64, epoch: u64, e: &mut Entry) {
        self.slots[jit::jcache_index(pc)] = Slot {
            pc,
            epoch,
            code: e.code.map_or(0, BlockFn::addr),
            entry: e,
        };
    }

    fn clear(&mut self) {
        self.slots.fill(EMPTY);
    }

    fn addr(&self) -> usize {
        self.slots.as_ptr() as usize
    }
}

/// The interpreted run at which a block is lowered to the interpreter's faster form
/// ([`Prog`]): lowering costs a few runs' worth of time, so code that runs once (start-up,
/// boot) stays on the plain IR. Measured (20 starts of static busybox `true`): lowering
/// every block at translation spent 18% of the time in lowering; lowering on the 2nd, 4th
/// or 8th run all cut user time by a quarter to a third, with the interpreter-only virt boot
/// unchanged within noise (15.5-16.3 s).
const LOWER_AT: u32 = 4;

/// Blocks run this many times in the interpreter before the tiered engine compiles them.
/// Measured with benches/compare.sh (CPU-time geomean against qemu-aarch64): 200 gave 1.68,
/// 1000 gave 1.51, 3000 gave 1.48 but shell scripts 10% slower. A Cranelift compile costs
/// ~0.5 ms per block on a 2 GHz host, so code must run ~1000 times to repay it.
pub const DEFAULT_HOT_THRESHOLD: u32 = 1000;

/// One vCPU: state, its code cache and its interpreter scratch.
pub struct Cpu {
    pub state: CpuState,
    pub model: CpuModel,
    pub engine: EngineKind,
    pub hot_threshold: u32,
    blocks: BlockMap,
    dcache: DispatchCache,
    /// System mode: the virtual pcs of blocks translated from each physical page (may list
    /// blocks since dropped), for IC IVAU.
    code_pages: HashMap<u64, Vec<u64>>,
    temps: Vec<u64>,
    jit: Option<Jit>,
    /// Set from other threads to make [`Cpu::run`] return [`Stop::Interrupted`] at the next
    /// block boundary. Compiled code reads it by address, so it is replaced only through
    /// [`Cpu::set_interrupt`].
    interrupt: Arc<AtomicBool>,
    /// Interrupt inputs (system mode), polled at block boundaries.
    pub inputs: Option<Arc<armboard_bus::CpuInterrupts>>,
    /// The machine's instruction-cache broadcast and this vCPU's index in it, with the
    /// newest of its operations applied here ([`Cpu::set_ic_broadcast`]).
    icache: Option<(Arc<IcBroadcast>, usize)>,
    ic_seen: u64,
    /// Guest instructions retired in compiled code (of `state.retired`).
    pub retired_jit: u64,
    /// Blocks translated, again after their code was dropped (IC maintenance) included.
    pub translations: u64,
    /// [`Cpu::run`] returns [`Stop::Budget`] at the first block boundary where
    /// `state.retired >= stop_at`. Exact (the same boundary under every engine) once
    /// [`Cpu::set_budgeted`] is on; without it compiled code may chain past it.
    pub stop_at: u64,
}

impl Cpu {
    pub fn new(model: CpuModel) -> Self {
        Self::with_engine(model, EngineKind::default())
    }

    /// Whether ARMBOARD_JIT_WORKER chose where the tiered engine compiles (1: on a worker
    /// thread, 0: inline); when it did not, the machine may ([`Cpu::set_compile_worker`]).
    pub fn worker_from_env() -> Option<bool> {
        match std::env::var("ARMBOARD_JIT_WORKER").as_deref() {
            Ok("1") => Some(true),
            Ok("0") => Some(false),
            _ => None,
        }
    }

    /// Compile hot blocks on a worker thread (the vCPU interprets them until the code is
    /// ready) or inline. Pays where a host core would otherwise be idle.
    pub fn set_compile_worker(&mut self, on: bool) {
        if self.engine == EngineKind::Tiered {
            if let Some(j) = &mut self.jit {
                j.set_background(on);
            }
        }
    }

    pub fn with_engine(model: CpuModel, engine: EngineKind) -> Self {
        let interrupt = Arc::new(AtomicBool::new(false));
        let jit = match engine {
            EngineKind::Interp => None,
            // Every block compiled before it runs, inline: deterministic, for tests.
            EngineKind::Jit => Some(Jit::new(&interrupt)),
            // Hot blocks compiled inline, or on a worker thread with ARMBOARD_JIT_WORKER=1 (it
            // costs CPU time and gains no wall time on a loaded two-core host; see jit/worker.rs)
            // or when the machine asks for it.
            EngineKind::Tiered => Some(match Self::worker_from_env() {
                Some(true) => Jit::with_worker(&interrupt),
                _ => Jit::new(&interrupt),
            }),
        };
        let jit = jit.and_then(|j| j.map_err(|e| log::warn!("{e}; running interpreted")).ok());
        Self {
            state: CpuState::new(),
            model,
            engine,
            hot_threshold: match engine {
                EngineKind::Jit => 0,
                _ => std::env::var("ARMBOARD_HOT_THRESHOLD")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(DEFAULT_HOT_THRESHOLD),
            },
            blocks: BlockMap::default(),
            dcache: DispatchCache::new(),
            code_pages: HashMap::new(),
            temps: Vec::new(),
            jit,
            interrupt,
            inputs: None,
            icache: None,
            ic_seen: 0,
            retired_jit: 0,
            translations: 0,
            stop_at: u64::MAX,
        }
    }

    /// Make compiled code honour [`Cpu::stop_at`] at every chained exit (costs a load and a
    /// compare per chained block; off by default). Drops code compiled so far.
    pub fn set_budgeted(&mut self, on: bool) {
        if let Some(j) = &mut self.jit {
            if j.budgeted != on {
                j.budgeted = on;
                self.flush_code();
            }
        }
    }

    /// The flag that makes [`Cpu::run`] return [`Stop::Interrupted`] (set it from any thread).
    pub fn interrupt(&self) -> &Arc<AtomicBool> {
        &self.interrupt
    }

    /// Use `flag` as the interrupt flag (one the machine shares with its devices). Compiled
    /// code tests the flag by address at every chained exit, so the JIT learns the new address
    /// and code compiled against the old flag is dropped.
    pub fn set_interrupt(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = flag;
        if let Some(j) = &mut self.jit {
            j.set_interrupt(&self.interrupt);
        }
        self.flush_code();
    }

    /// Share instruction-cache maintenance with the machine's other vCPUs: what this one
    /// drops (IC IVAU, IC IALLUIS) they drop too, and the other way round. Call after
    /// [`Cpu::set_interrupt`]: publishing kicks the others through their interrupt flags.
    pub fn set_ic_broadcast(&mut self, b: Arc<IcBroadcast>, index: usize) {
        self.ic_seen = b.register(index, self.interrupt.clone());
        self.icache = Some((b, index));
    }

    /// Drop the code other vCPUs' instruction-cache maintenance has invalidated since the
    /// last look.
    #[cold]
    fn catch_up_icache(&mut self) {
        let Some((b, i)) = self.icache.clone() else {
            return;
        };
        for op in b.since(i, &mut self.ic_seen) {
            match op {
                IcOp::Page(pa) => self.invalidate_physical_page(pa),
                IcOp::All => self.flush_code(),
            }
        }
    }

    /// JIT counters, if the JIT tier is on.
    pub fn jit_stats(&self) -> Option<JitStats> {
        self.jit.as_ref().map(|j| j.stats)
    }

    /// Forget all translated code (after munmap/mprotect of code, or IC IALLU(IS)).
    pub fn flush_code(&mut self) {
        self.blocks.clear();
        self.dcache.clear();
        self.code_pages.clear();
        if let Some(j) = &mut self.jit {
            j.flush();
        }
    }

    /// Forget translated code overlapping `[start, end)`. If any of it was compiled (or
    /// being compiled), all compiled code goes: other blocks may chain into it.
    pub fn invalidate_range(&mut self, start: u64, end: u64) {
        let mut compiled = false;
        self.blocks.retain(|&pc, e| {
            let keep = pc + 4 * e.block.len as u64 <= start || pc >= end;
            compiled |= !keep && (e.code.is_some() || e.queued);
            keep
        });
        self.dcache.clear();
        if compiled {
            self.flush_code();
        }
    }

    /// This process is the child of a fork (user mode): the compile worker thread did not
    /// come along, so blocks it had not answered are queued again later.
    pub fn after_fork(&mut self) {
        if let Some(j) = &mut self.jit {
            j.after_fork();
        }
        for e in self.blocks.values_mut() {
            e.queued = false;
        }
    }

    /// Install the code the compile worker has finished.
    fn install_compiled(&mut self) {
        let Cpu { blocks, jit, .. } = self;
        let Some(j) = jit.as_mut() else { return };
        j.poll(|key, code| {
            if let Some(e) = blocks.get_mut(&key).filter(|e| e.queued) {
                e.queued = false;
                e.code = code;
                e.refused = code.is_none();
            }
        });
    }

    /// Drop the blocks translated from physical page `pa_page` (an address), with every
    /// other block of their virtual pages (compiled blocks link within their page).
    fn invalidate_physical_page(&mut self, pa_page: u64) {
        let Some(pcs) = self.code_pages.remove(&(pa_page >> 12)) else {
            return;
        };
        let mut vpages: Vec<u64> = pcs
            .iter()
            .filter(|pc| {
                self.blocks
                    .get(pc)
                    .is_some_and(|e| e.pa >> 12 == pa_page >> 12)
            })
            .map(|pc| pc >> 12)
            .collect();
        vpages.sort_unstable();
        vpages.dedup();
        if vpages.is_empty() {
            return;
        }
        self.blocks
            .retain(|pc, _| vpages.binary_search(&(pc >> 12)).is_err());
        self.dcache.clear();
        if let Some(j) = &mut self.jit {
            for &p in &vpages {
                j.forget_page(p);
            }
        }
    }

    /// The block at `pc`, translated now if it is new, when the dispatch cache did not hold
    /// it checked at `epoch` (`slot` is what it held). System mode: checked against the
    /// current translation of `pc`.
    fn lookup<M: Mem>(
        &mut self,
        mem: &mut M,
        pc: u64,
        epoch: u64,
        slot: Slot,
    ) -> Result<*mut Entry, Stop> {
        if slot.pc == pc {
            if slot.epoch == epoch {
                return Ok(slot.entry);
            }
            // Checked at an older epoch: check again without the map.
            if let Some(r) = mem.system().map(|s| s.translate_exec(pc)) {
                let pa = r.map_err(Stop::Fault)?;
                // SAFETY: the cache only holds pointers into live boxes of `blocks` (it is
                // emptied whenever an entry is removed).
                let e = unsafe { &mut *slot.entry };
                if e.pa == pa {
                    e.epoch = epoch;
                    self.dcache.set(pc, epoch, e);
                    return Ok(e);
                }
            }
        }
        self.lookup_slow(mem, pc, epoch)
    }

    #[cold]
    #[inline(never)]
    fn lookup_slow<M: Mem>(
        &mut self,
        mem: &mut M,
        pc: u64,
        epoch: u64,
    ) -> Result<*mut Entry, Stop> {
        // System mode: a cached block is reused only while its virtual pc still maps the
        // physical code it was translated from.
        let (system, pa) = match mem.system().map(|s| s.translate_exec(pc)) {
            None => (false, 0),
            Some(Ok(pa)) => (true, pa),
            Some(Err(f)) => return Err(Stop::Fault(f)),
        };
        let e: *mut Entry = match self.blocks.get_mut(&pc) {
            Some(e) if e.pa == pa => {
                e.epoch = epoch;
                &mut **e
            }
            found => {
                if found.is_some() {
                    // The page now maps other code: drop all of its blocks together, since
                    // compiled blocks link to others of their own page.
                    let page = pc >> 12;
                    self.blocks.retain(|&p, _| p >> 12 != page);
                    self.dcache.clear();
                    if let Some(j) = self.jit.as_mut() {
                        j.forget_page(page);
                    }
                }
                if system {
                    self.code_pages.entry(pa >> 12).or_default().push(pc);
                }
                self.translations += 1;
                let b = Box::new(Entry::new(translate_block(mem, pc), pa, epoch));
                &mut **self.blocks.entry(pc).insert_entry(b).get_mut()
            }
        };
        // SAFETY: `e` points into a live box of `blocks`.
        self.dcache.set(pc, epoch, unsafe { &mut *e });
        Ok(e)
    }

    /// Run until something needs the machine.
    pub fn run<M: Mem>(&mut self, mem: &mut M) -> Stop {
        // Interrupt inputs are checked on entry and when a helper unmasked interrupts
        // (IRQ_CHECK); an input that rises meanwhile kicks the vCPU.
        if let Some(stop) = self.interrupt_stop() {
            return stop;
        }
        loop {
            if self.interrupt.load(Ordering::Relaxed) {
                return Stop::Interrupted;
            }
            if let Some((b, _)) = &self.icache {
                if b.epoch() != self.ic_seen {
                    self.catch_up_icache();
                }
            }
            if self.state.retired >= self.stop_at {
                return Stop::Budget;
            }
            if let Some(j) = &self.jit {
                if j.wants_flush() {
                    self.flush_code();
                } else if j.busy() {
                    self.install_compiled();
                }
            }
            let pc = self.state.pc;
            let epoch = mem.exec_epoch();
            let slot = self.dcache.get(pc);
            let exit = if slot.pc == pc && slot.epoch == epoch && slot.code != 0 {
                self.run_code(BlockFn::from_addr(slot.code), mem)
            } else {
                match self.step(mem, pc, epoch, slot) {
                    Ok(exit) => exit,
                    Err(stop) => return stop,
                }
            };
            if self.state.pending != 0 {
                if let Some(stop) = self.handle_pending(exit) {
                    return stop;
                }
            }
            match exit {
                BlockExit::Continue => {}
                BlockExit::Svc(i) => return Stop::Svc(i),
                BlockExit::Hvc(i) => return Stop::Hvc(i),
                BlockExit::Smc(i) => return Stop::Smc(i),
                BlockExit::Brk(i) => return Stop::Brk(i),
                BlockExit::Undefined(i) => return Stop::Undefined(i),
                BlockExit::Fault(f) => return Stop::Fault(f),
                BlockExit::Wait => return Stop::Wait,
            }
        }
    }

    /// Run compiled code of the current generation.
    #[inline]
    fn run_code<M: Mem>(&mut self, code: BlockFn, mem: &mut M) -> BlockExit {
        let Some(j) = self.jit.as_ref() else {
            return BlockExit::Continue;
        };
        let before = self.state.retired;
        let exit = run_compiled(j, code, &mut self.state, mem, self.stop_at);
        self.retired_jit += self.state.retired - before;
        exit
    }

    /// Dispatch the block at `pc` the slow way: find or translate it, compile it once hot,
    /// run it.
    fn step<M: Mem>(
        &mut self,
        mem: &mut M,
        pc: u64,
        epoch: u64,
        slot: Slot,
    ) -> Result<BlockExit, Stop> {
        let entry = self.lookup(mem, pc, epoch, slot)?;
        // SAFETY: `lookup` returns a pointer into a live box of `blocks`, and nothing below
        // removes entries before the block has run.
        let entry = unsafe { &mut *entry };
        if entry.code.is_none() && !entry.refused && !entry.queued {
            if let Some(j) = self.jit.as_mut() {
                j.set_tlb_fast(mem.tlb_fast());
                j.set_jcache(self.dcache.addr());
                if entry.hits >= self.hot_threshold && Jit::compilable(&entry.block) {
                    let link = link_policy(&self.state, entry.pa);
                    // System mode compiles single blocks: a boot runs most code a few hundred
                    // times, and regions doubled the compile work (virt boot: 0.9 s -> 1.8 s
                    // on the worker, 94% -> 89% of instructions compiled, slower to the
                    // marker), while in user mode they run loops of several blocks in one
                    // function (benches/compare.sh, CPU time, two runs each: 7zz 31.9-36.0
                    // -> 28.4-29.1 s, xz -9 5.0-5.2 -> 4.7-4.9 s; xz -d, short, 0.23-0.27
                    // -> 0.30-0.32 s).
                    let members = if self.state.sys.system {
                        vec![&entry.block]
                    } else {
                        let min_hits = self.hot_threshold / REGION_HITS_DIVISOR;
                        region(&self.blocks, &entry.block, entry.pa, min_hits)
                    };
                    match j.request(pc, &members, mem.fast_path(), link) {
                        Request::Ready(code) => {
                            entry.code = code;
                            // Refused by Cranelift: stays interpreted, never tried again.
                            entry.refused = code.is_none();
                        }
                        Request::Queued => entry.queued = true,
                    }
                }
            }
        }
        if let Some(code) = entry.code {
            // Compiled since the cache slot was made (or the slot was for another pc).
            self.dcache.set(pc, epoch, entry);
            return Ok(self.run_code(code, mem));
        }
        entry.hits = entry.hits.saturating_add(1);
        self.state.retired += entry.block.len as u64;
        if entry.hits == LOWER_AT {
            entry.prog = Prog::build(&entry.block);
        }
        Ok(match &entry.prog {
            Some(p) => run_prog(p, &mut self.state, mem, &mut self.temps),
            None => run_block(&entry.block, &mut self.state, mem, &mut self.temps),
        })
    }

    /// Act on the requests helpers left in `state.pending` after a block that left with
    /// `exit`.
    #[cold]
    fn handle_pending(&mut self, exit: BlockExit) -> Option<Stop> {
        let p = std::mem::take(&mut self.state.pending);
        if p & pending::FLUSH_LOCAL != 0 {
            self.flush_code();
        }
        let op = if p & pending::FLUSH_CODE != 0 {
            self.flush_code();
            Some(IcOp::All)
        } else if p & pending::FLUSH_PAGE != 0 {
            self.invalidate_physical_page(self.state.flush_pa);
            Some(IcOp::Page(self.state.flush_pa))
        } else {
            None
        };
        if let (Some(op), Some((b, i))) = (op, &self.icache) {
            b.publish(*i, op);
        }
        if exit != BlockExit::Continue {
            return None;
        }
        if p & pending::MACHINE != 0 {
            return Some(Stop::System);
        }
        if p & pending::IRQ_CHECK != 0 {
            return self.interrupt_stop();
        }
        None
    }
}

impl Cpu {
    /// An asserted, unmasked interrupt input (system mode).
    fn interrupt_stop(&self) -> Option<Stop> {
        let inputs = self.inputs.as_ref()?;
        let masked = self.state.sys.daif;
        if inputs.fiq() && masked & daif::F == 0 {
            Some(Stop::Fiq)
        } else if inputs.irq() && masked & daif::I == 0 {
            Some(Stop::Irq)
        } else {
            None
        }
    }
}

impl Drop for Cpu {
    fn drop(&mut self) {
        if std::env::var_os("ARMBOARD_JIT_STATS").is_some() {
            eprintln!("{}", self.stats_line());
        }
    }
}

impl Cpu {
    /// One line of engine statistics (ARMBOARD_JIT_STATS=1 prints it when a vCPU ends).
    pub fn stats_line(&self) -> String {
        let retired = self.state.retired;
        let frac = if retired == 0 {
            0.0
        } else {
            self.retired_jit as f64 / retired as f64
        };
        let ir_bytes: usize = self
            .blocks
            .values()
            .map(|e| {
                std::mem::size_of::<Entry>()
                    + e.block.ops.capacity() * std::mem::size_of::<crate::ir::Op>()
                    + e.block.insns.capacity() * std::mem::size_of::<crate::ir::InsnStart>()
            })
            .sum();
        let translated = format!(
            "{} blocks translated ({} held now, {} KiB of IR)",
            self.translations,
            self.blocks.len(),
            ir_bytes / 1024
        );
        match self.jit_stats() {
            Some(j) => format!(
                "armboard: {} guest instructions, {:.1}% in compiled code; {translated}; {} blocks compiled ({} instructions) in {:.3} s, {:.1} us per block, {} KiB code, {} generations dropped, {} queued to the worker ({} thrown away)",
                retired,
                100.0 * frac,
                j.blocks,
                j.guest_insns,
                j.compile_ns as f64 / 1e9,
                j.compile_ns as f64 / 1e3 / j.blocks.max(1) as f64,
                j.code_bytes / 1024,
                j.generations,
                j.queued,
                j.discarded
            ),
            None => format!("armboard: {retired} guest instructions (interpreter); {translated}"),
        }
    }
}

/// A region holds at most this many blocks and guest instructions (user mode: in system
/// mode a region is one block; see [`Cpu::step`]).
const REGION_BLOCKS: usize = 8;
const REGION_INSNS: u32 = 128;
/// A block joins a region if it has run at least this fraction of the hot threshold.
const REGION_HITS_DIVISOR: u32 = 8;

/// The region compiled for the hot block `head` (translated from `pa`): it, then the
/// blocks its exits reach directly, breadth first, that start in its page, come from the
/// same physical page, have run at least `min_hits` times and compile (so the region's
/// internal branches stay inside one function).
fn region<'a>(blocks: &'a BlockMap, head: &'a Block, pa: u64, min_hits: u32) -> Vec<&'a Block> {
    let mut r = vec![head];
    let mut insns = head.len;
    let mut i = 0;
    while i < r.len() {
        for t in r[i].terminal.known_targets() {
            if r.len() == REGION_BLOCKS {
                return r;
            }
            if t >> 12 != head.pc >> 12 || r.iter().any(|b| b.pc == t) {
                continue;
            }
            // Not the head itself (checked above), so not the entry the caller holds.
            let Some(e) = blocks.get(&t) else { continue };
            let fits = insns + e.block.len <= REGION_INSNS;
            if fits
                && e.pa >> 12 == pa >> 12
                && e.hits >= min_hits
                && !e.refused
                && Jit::compilable(&e.block)
            {
                insns += e.block.len;
                r.push(&e.block);
            }
        }
        i += 1;
    }
    r
}

/// How compiled code may chain: freely in user mode; in system mode only within a page, so
/// every exit to another page or through a register comes back to the dispatcher, which
/// checks the translation. Blocks are keyed by pc alone, so every block gets the same tag.
fn link_policy(st: &CpuState, pa: u64) -> LinkPolicy {
    if st.sys.system {
        // Tagged with the physical page: a block links only to blocks translated from the
        // same physical code, even if the virtual page has mapped other code since.
        LinkPolicy::SamePage { tag: pa >> 12 }
    } else {
        LinkPolicy::Any
    }
}

/// Run compiled code and turn its exit code into the interpreter's [`BlockExit`].
///
/// Compiled code may chain into other blocks, so the exit belongs to whichever block ran last.
/// Budgeted code stops chaining once `st.retired` reaches `limit`.
fn run_compiled<M: Mem>(
    jit: &Jit,
    code: BlockFn,
    st: &mut CpuState,
    mem: &mut M,
    limit: u64,
) -> BlockExit {
    let mut ctx = JitCtx {
        failed: 0,
        limit,
        state: st,
        mem: mem as &mut dyn Mem as *mut dyn Mem,
        scratch: [0; 2],
        error: None,
    };
    // SAFETY: `code` was compiled from `block` by this CPU's JIT and its generation is alive
    // (flushes clear the block map first); the context points at the exclusive borrows above,
    // which outlive the call.
    let r = unsafe { jit.enter(code, ctx.state, &mut ctx) };
    let error = ctx.error;
    // The block that exited may be a chained successor of `block`, so terminal immediates are
    // read back from the guest code at the pc it left.
    let imm = |w: u32| ((w >> 5) & 0xffff) as u16;
    match r {
        jit::EXIT_CONTINUE => BlockExit::Continue,
        jit::EXIT_SVC => {
            // SVC, HVC and SMC share the exit; the low two bits of the word tell them apart.
            let w = mem.fetch(st.pc.wrapping_sub(4)).unwrap_or(1);
            match w & 3 {
                2 => BlockExit::Hvc(imm(w)),
                3 => BlockExit::Smc(imm(w)),
                _ => BlockExit::Svc(imm(w)),
            }
        }
        jit::EXIT_BRK => BlockExit::Brk(mem.fetch(st.pc).map_or(0, imm)),
        jit::EXIT_UNDEFINED => BlockExit::Undefined(mem.fetch(st.pc).unwrap_or(0)),
        jit::EXIT_WAIT => BlockExit::Wait,
        _ => match error {
            Some(HelperError::Mem(f)) => BlockExit::Fault(f),
            _ => BlockExit::Undefined(mem.fetch(st.pc).unwrap_or(0)),
        },
    }
}
