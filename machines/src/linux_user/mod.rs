//! The Linux user-mode machine: an arm64 ELF loaded into a process-like address space, its
//! system calls served by the host. Guest threads are host threads sharing one
//! [`AddressSpace`]; guest processes (fork) are host processes.

pub mod loader;
pub mod memory;
pub mod signal;
pub mod syscall;
pub mod vma;

pub use loader::{load, LoadError, Loaded};
pub use memory::AddressSpace;

use armboard_cpu::icache::IcBroadcast;
use armboard_cpu::{model, Cpu, CpuState, EngineKind, FaultKind, Mem, Stop};
use memory::{perm, PAGE};
use signal::SigAction;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use vma::{Mm, Vma};

/// How to run a program.
#[derive(Debug, Clone, Default)]
pub struct UserConfig {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub sysroot: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    /// argv[0] when it differs from the program path (execve keeps the caller's).
    pub argv0: Option<String>,
    pub engine: EngineKind,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Memory(#[from] memory::MemError),
}

/// Where the page holding the default signal-return trampoline is mapped.
pub const SIGTRAMP: u64 = 0x7f_ffff_e000;

/// State shared by all threads of a guest process.
pub struct Process {
    pub space: AddressSpace,
    pub mm: Mutex<Mm>,
    pub sysroot: Option<PathBuf>,
    /// Host path of the program file (for /proc/self/exe and execve of it).
    pub exe_host: PathBuf,
    /// The program path as the guest should see it.
    pub exe_guest: String,
    pub actions: Mutex<[SigAction; signal::NSIG + 1]>,
    /// Bumped when executable memory changes; each thread flushes its code cache on seeing it.
    pub code_gen: AtomicU64,
    /// Instruction-cache maintenance (IC IVAU) of one thread reaches the others' code caches.
    pub icache: Arc<IcBroadcast>,
    pub live_threads: AtomicUsize,
    pub sigreturn_tramp: u64,
    /// The initial auxv words (for /proc/self/auxv).
    pub auxv: Vec<u8>,
    pub engine: EngineKind,
}

impl Process {
    pub fn mm(&self) -> MutexGuard<'_, Mm> {
        self.mm.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn action(&self, sig: i32) -> SigAction {
        let a = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        a.get(sig as usize).copied().unwrap_or_default()
    }

    pub fn set_action(&self, sig: i32, act: SigAction) {
        let mut a = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = a.get_mut(sig as usize) {
            *s = act;
        }
    }

    /// Executable memory changed: make every thread drop its translations.
    pub fn code_changed(&self) {
        self.code_gen.fetch_add(1, Ordering::SeqCst);
        signal::interrupt_all();
    }
}

/// One guest thread: its vCPU and per-thread kernel state.
pub struct Thread {
    pub proc: Arc<Process>,
    pub cpu: Cpu,
    pub tid: i32,
    pub slot: usize,
    /// Blocked signals (mirrored on the host thread).
    pub sigmask: u64,
    /// The mask to restore after a handler when a syscall (sigsuspend, ppoll) swapped it.
    pub saved_mask: Option<u64>,
    pub altstack: signal::AltStack,
    pub clear_child_tid: u64,
    pub code_gen: u64,
}

/// How a thread's run ended.
pub enum ThreadEnd {
    /// SYS_exit: this thread only.
    Thread(i32),
    /// exit_group.
    Group(i32),
}

pub fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

impl Thread {
    pub fn new(proc: Arc<Process>, state: CpuState, sigmask: u64) -> Self {
        let mut cpu = Cpu::with_engine(model::CORTEX_A72, proc.engine);
        cpu.state = state;
        let tid = gettid();
        let slot = signal::register(tid, cpu.interrupt());
        if slot != usize::MAX {
            // Threads without a signal slot (past the limit) keep their own code cache.
            cpu.set_ic_broadcast(proc.icache.clone(), slot);
        }
        let code_gen = proc.code_gen.load(Ordering::SeqCst);
        Self {
            proc,
            cpu,
            tid,
            slot,
            sigmask,
            saved_mask: None,
            altstack: signal::AltStack::default(),
            clear_child_tid: 0,
            code_gen,
        }
    }

    fn sync_code(&mut self) {
        let g = self.proc.code_gen.load(Ordering::SeqCst);
        if g != self.code_gen {
            self.code_gen = g;
            self.cpu.flush_code();
        }
    }

    fn fault_signal(&mut self, f: armboard_cpu::MemFault) {
        use signal::*;
        let (sig, code) = match f.kind {
            FaultKind::Alignment => (SIGBUS, BUS_ADRALN),
            FaultKind::Bus => (SIGBUS, BUS_ADRERR),
            FaultKind::Permission | FaultKind::AccessFlag => (SIGSEGV, SEGV_ACCERR),
            FaultKind::Unmapped => {
                // A PROT_NONE page is mapped for Linux, only without access.
                if self.proc.mm().find(f.addr).is_some() {
                    (SIGSEGV, SEGV_ACCERR)
                } else {
                    (SIGSEGV, SEGV_MAPERR)
                }
            }
        };
        log::debug!("guest fault: {f} at pc {:#x}", self.cpu.state.pc);
        force(self, sig, &fault_info(sig, code, f.addr));
    }

    /// Run guest code until the thread or the process exits.
    pub fn run(&mut self) -> ThreadEnd {
        let proc = self.proc.clone();
        let mut mem = &proc.space;
        loop {
            match self.cpu.run(&mut mem) {
                Stop::Svc(_) => match syscall::dispatch(self) {
                    syscall::Outcome::Continue => {}
                    syscall::Outcome::ExitThread(c) => return ThreadEnd::Thread(c),
                    syscall::Outcome::ExitGroup(c) => return ThreadEnd::Group(c),
                },
                Stop::Fault(f) => self.fault_signal(f),
                // HVC and SMC are undefined at EL0.
                Stop::Hvc(_) | Stop::Smc(_) => {
                    let pc = self.cpu.state.pc.wrapping_sub(4);
                    self.cpu.state.pc = pc;
                    signal::force(
                        self,
                        signal::SIGILL,
                        &signal::fault_info(signal::SIGILL, signal::ILL_ILLOPC, pc),
                    );
                }
                // No interrupt inputs or machine state in user mode.
                Stop::Irq | Stop::Fiq | Stop::System | Stop::Budget => {}
                Stop::Undefined(insn) => {
                    log::warn!(
                        "undefined instruction {insn:#010x} at {:#x}",
                        self.cpu.state.pc
                    );
                    let pc = self.cpu.state.pc;
                    signal::force(
                        self,
                        signal::SIGILL,
                        &signal::fault_info(signal::SIGILL, signal::ILL_ILLOPC, pc),
                    );
                }
                Stop::Brk(_) => {
                    let pc = self.cpu.state.pc;
                    signal::force(
                        self,
                        signal::SIGTRAP,
                        &signal::fault_info(signal::SIGTRAP, signal::TRAP_BRKPT, pc),
                    );
                }
                Stop::Interrupted => {
                    self.cpu.interrupt().store(false, Ordering::SeqCst);
                }
                // WFI and WFE yield the host CPU; SEV and SEVL stop too, with nothing to
                // wait for.
                Stop::Wait => {
                    let pc = self.cpu.state.pc.wrapping_sub(4);
                    if !matches!(mem.fetch(pc), Ok(0xd503_209f | 0xd503_20bf)) {
                        std::thread::yield_now();
                    }
                }
            }
            self.sync_code();
            signal::deliver_pending(self);
        }
    }

    /// This thread leaves (SYS_exit or the end of a clone child): clear_child_tid and wake
    /// a joiner.
    pub fn leave(&mut self) {
        if self.clear_child_tid != 0 {
            let a = self.clear_child_tid;
            if self.proc.space.write_bytes(a, &0u32.to_le_bytes()).is_ok() {
                let p = self.proc.space.host(a);
                for op in [
                    libc::FUTEX_WAKE,
                    libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                ] {
                    // SAFETY: p is the host address of a mapped, 4-byte guest word.
                    unsafe { libc::syscall(libc::SYS_futex, p, op, i32::MAX, 0, 0, 0) };
                }
            }
        }
        signal::unregister(self.slot);
    }
}

/// End of a thread with SYS_exit: the process ends with the last one.
pub fn thread_exit(t: &mut Thread, code: i32) {
    t.leave();
    if t.proc.live_threads.fetch_sub(1, Ordering::SeqCst) == 1 {
        std::process::exit(code & 0xff);
    }
}

fn resolve_exe(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Map the page with the default sigreturn trampoline (`mov x8, #139; svc #0`).
fn map_trampoline(space: &AddressSpace) -> Result<u64, memory::MemError> {
    space.map_anon(SIGTRAMP, PAGE, perm::R | perm::W)?;
    let code: [u32; 2] = [0xd280_1168, 0xd400_0001];
    let bytes: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
    let _ = space.write_bytes(SIGTRAMP, &bytes);
    space.set_perms(SIGTRAMP, PAGE, perm::R | perm::X)?;
    Ok(SIGTRAMP)
}

/// Run a program to completion; returns its exit status as a shell would see it.
pub fn run(cfg: &UserConfig) -> Result<i32, UserError> {
    let space = AddressSpace::new()?;
    let loaded = load(&space, &cfg.program, cfg.sysroot.as_deref())?;
    let prog_bytes = cfg.program.as_os_str().as_encoded_bytes().to_vec();
    let argv0 = cfg
        .argv0
        .as_ref()
        .map_or(prog_bytes.clone(), |a| a.as_bytes().to_vec());
    let mut args: Vec<Vec<u8>> = vec![argv0];
    args.extend(cfg.args.iter().map(|a| a.as_bytes().to_vec()));
    let env: Vec<Vec<u8>> = cfg
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}").into_bytes())
        .collect();
    let mut random = [0u8; 16];
    getrandom_bytes(&mut random);
    let sp = loader::setup_stack(&space, &loaded, &args, &env, &prog_bytes, random)?;
    let tramp = map_trampoline(&space)?;

    let mut mm = Mm::new(loaded.brk, loader::INTERP_BASE);
    for (s, e, prot, name) in &loaded.regions {
        let mut v = Vma::anon(*e, *prot);
        v.name = name.clone();
        // Segments sharing a page: keep the first piece's name, widen permissions.
        if let Some((ps, pv)) = mm.find(*s).map(|(a, b)| (a, b.clone())) {
            if ps == *s && pv.end >= *e {
                continue;
            }
        }
        mm.insert(*s, v);
    }
    let mut stack = Vma::anon(loader::STACK_TOP, perm::R | perm::W);
    stack.name = "[stack]".into();
    mm.insert(loader::STACK_TOP - loader::STACK_SIZE, stack);
    let mut vdso = Vma::anon(SIGTRAMP + PAGE, perm::R | perm::X);
    vdso.name = "[vdso]".into();
    mm.insert(SIGTRAMP, vdso);

    let auxv = read_auxv(&space, sp);
    let exe_host = resolve_exe(&cfg.program);
    let proc = Arc::new(Process {
        space,
        mm: Mutex::new(mm),
        sysroot: cfg.sysroot.clone(),
        exe_guest: exe_host.display().to_string(),
        exe_host,
        actions: Mutex::new([SigAction::default(); signal::NSIG + 1]),
        code_gen: AtomicU64::new(0),
        icache: Arc::new(IcBroadcast::new()),
        live_threads: AtomicUsize::new(1),
        sigreturn_tramp: tramp,
        auxv,
        engine: cfg.engine,
    });
    // Inherited ignored dispositions stay ignored, as across a real execve.
    for sig in 1..=signal::NSIG as i32 {
        if signal::mirrored(sig) && host_ignored(sig) {
            proc.set_action(
                sig,
                SigAction {
                    handler: signal::SIG_IGN,
                    ..Default::default()
                },
            );
        }
    }
    let mut st = CpuState::new();
    st.pc = loaded.entry;
    st.set_sp(sp);
    let mask = host_mask();
    let mut t = Thread::new(proc, st, mask);
    match t.run() {
        ThreadEnd::Group(c) => Ok(c & 0xff),
        ThreadEnd::Thread(c) => {
            t.leave();
            if t.proc.live_threads.fetch_sub(1, Ordering::SeqCst) == 1 {
                return Ok(c & 0xff);
            }
            // Other threads go on; the process ends with the last of them.
            loop {
                std::thread::park();
            }
        }
    }
}

fn host_ignored(sig: i32) -> bool {
    // SAFETY: querying a disposition into a zeroed struct.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

fn host_mask() -> u64 {
    // SAFETY: reading the current thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut set);
        let mut m = 0;
        for s in 1..=signal::NSIG as i32 {
            if libc::sigismember(&set, s) == 1 {
                m |= signal::bit(s);
            }
        }
        m
    }
}

/// The auxv words following envp on the initial stack.
fn read_auxv(space: &AddressSpace, sp: u64) -> Vec<u8> {
    let word = |a: u64| {
        let mut b = [0u8; 8];
        space.read_bytes(a, &mut b).map(|_| u64::from_le_bytes(b))
    };
    let mut a = sp;
    let Ok(argc) = word(a) else {
        return Vec::new();
    };
    a += 8 * (argc + 2);
    while let Ok(w) = word(a) {
        a += 8;
        if w == 0 {
            break;
        }
    }
    let mut out = Vec::new();
    while let (Ok(k), Ok(v)) = (word(a), word(a + 8)) {
        out.extend_from_slice(&k.to_le_bytes());
        out.extend_from_slice(&v.to_le_bytes());
        a += 16;
        if k == 0 {
            break;
        }
    }
    out
}

fn getrandom_bytes(buf: &mut [u8]) {
    // SAFETY: buf is a valid writable buffer of its length.
    unsafe { libc::getrandom(buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
}

#[cfg(test)]
mod tests;

/// A thread of an empty process (no program loaded), for tests of the system-call layer.
#[cfg(test)]
pub(crate) fn test_thread() -> Thread {
    let space = AddressSpace::new().expect("reserve guest space");
    let mut mm = Mm::new(0x1000_0000, loader::INTERP_BASE);
    // A stack for signal frames.
    let stack_lo = 0x7f_0000_0000;
    space
        .map_anon(stack_lo, 1 << 20, perm::R | perm::W)
        .expect("map stack");
    mm.insert(stack_lo, Vma::anon(stack_lo + (1 << 20), perm::R | perm::W));
    let proc = Arc::new(Process {
        space,
        mm: Mutex::new(mm),
        sysroot: None,
        exe_host: PathBuf::from("/bin/true"),
        exe_guest: "/guest/prog".into(),
        actions: Mutex::new([SigAction::default(); signal::NSIG + 1]),
        code_gen: AtomicU64::new(0),
        icache: Arc::new(IcBroadcast::new()),
        live_threads: AtomicUsize::new(1),
        sigreturn_tramp: SIGTRAMP,
        auxv: vec![0; 16],
        engine: EngineKind::Interp,
    });
    let mut st = CpuState::new();
    st.set_sp(stack_lo + (1 << 20) - 256);
    Thread::new(proc, st, 0)
}
