//! Guest signals.
//!
//! Guest signal numbers, masks and `siginfo` are the host's (asm-generic and x86-64 agree on
//! them), so most of the work is done by the host kernel: a guest disposition is mirrored
//! onto the host (a guest handler becomes [`host_handler`], `SIG_IGN`/`SIG_DFL` stay as they
//! are), and a guest thread's blocked mask is its host thread's mask. A host signal for a
//! guest handler is recorded by [`host_handler`] in the receiving thread's slot and the
//! vCPU's interrupt flag is raised; the run loop then builds the arm64 `rt_sigframe` on the
//! guest stack ([`deliver_pending`]). A default action therefore happens in the host kernel
//! itself, with the right status for the parent.
//!
//! Synchronous signals (guest faults: SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE) and glibc's
//! internal SIGCANCEL/SIGSETXID (32, 33, which the host's glibc keeps to itself) are never
//! mirrored: they are queued in the slots directly.

use super::Thread;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;

pub const NSIG: usize = 64;

pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGSEGV: i32 = 11;
pub const SIGCHLD: i32 = 17;
pub const SIGCONT: i32 = 18;
pub const SIGSTOP: i32 = 19;
pub const SIGTSTP: i32 = 20;
pub const SIGTTIN: i32 = 21;
pub const SIGTTOU: i32 = 22;
pub const SIGURG: i32 = 23;
pub const SIGWINCH: i32 = 28;

pub const SA_NOCLDSTOP: u64 = 1;
pub const SA_NOCLDWAIT: u64 = 2;
pub const SA_SIGINFO: u64 = 4;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

pub const SS_ONSTACK: u32 = 1;
pub const SS_DISABLE: u32 = 2;
pub const MINSIGSTKSZ: u64 = 5120;

/// si_code values.
pub const SI_USER: i32 = 0;
pub const SI_TKILL: i32 = -6;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const BUS_ADRALN: i32 = 1;
pub const BUS_ADRERR: i32 = 2;
pub const ILL_ILLOPC: i32 = 1;
pub const TRAP_BRKPT: i32 = 1;

const FPSIMD_MAGIC: u32 = 0x4650_8001;
const FPSIMD_SIZE: u32 = 528;
const SIGINFO_SIZE: u64 = 128;
/// offsetof(struct ucontext, uc_mcontext) on arm64.
const UC_MCONTEXT: u64 = 176;
/// sizeof(struct sigcontext): fault_address, regs[31], sp, pc, pstate, __reserved[4096].
const SIGCONTEXT_SIZE: u64 = 288 + 4096;
const FRAME_SIZE: u64 = SIGINFO_SIZE + UC_MCONTEXT + SIGCONTEXT_SIZE;

pub fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Signals that can never be blocked.
pub const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

/// Whether a guest disposition for `sig` is mirrored on the host.
pub fn mirrored(sig: i32) -> bool {
    (1..=NSIG as i32).contains(&sig)
        && !matches!(
            sig,
            SIGKILL | SIGSTOP | SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP | 32 | 33
        )
}

fn mirror_mask() -> u64 {
    (1..=NSIG as i32)
        .filter(|&s| mirrored(s))
        .fold(0, |m, s| m | bit(s))
}

/// A guest `struct sigaction` (arm64: handler, flags, restorer, mask).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// Per-thread alternate signal stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    pub flags: u32,
    pub size: u64,
}

impl Default for AltStack {
    fn default() -> Self {
        Self {
            sp: 0,
            flags: SS_DISABLE,
            size: 0,
        }
    }
}

impl AltStack {
    pub fn on(&self, sp: u64) -> bool {
        self.flags & SS_DISABLE == 0 && sp > self.sp && sp <= self.sp + self.size
    }
}

// ---- thread slots, written from the host signal handler ----

pub struct Slot {
    tid: AtomicI32,
    pub pending: AtomicU64,
    interrupt: AtomicPtr<AtomicBool>,
}

impl Slot {
    const fn new() -> Self {
        Self {
            tid: AtomicI32::new(0),
            pending: AtomicU64::new(0),
            interrupt: AtomicPtr::new(std::ptr::null_mut()),
        }
    }
}

const NSLOTS: usize = 512;
pub static SLOTS: [Slot; NSLOTS] = [const { Slot::new() }; NSLOTS];
/// Process-directed signals that arrived on a thread without a slot.
static PROC_PENDING: AtomicU64 = AtomicU64::new(0);
/// The last siginfo seen for each signal (128 bytes as 16 words).
static SIGINFO: [[AtomicU64; 16]; NSIG + 1] =
    [const { [const { AtomicU64::new(0) }; 16] }; NSIG + 1];

/// Give a thread a slot; its interrupt flag is kept alive for the process's lifetime (the
/// host handler may touch it at any time).
pub fn register(tid: i32, interrupt: &Arc<AtomicBool>) -> usize {
    let p = Arc::into_raw(interrupt.clone()) as *mut AtomicBool;
    for (i, s) in SLOTS.iter().enumerate() {
        if s.tid
            .compare_exchange(0, tid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            s.pending.store(0, Ordering::SeqCst);
            s.interrupt.store(p, Ordering::SeqCst);
            return i;
        }
    }
    log::warn!("more than {NSLOTS} guest threads: signals to thread {tid} are process-wide");
    usize::MAX
}

pub fn unregister(slot: usize) {
    if let Some(s) = SLOTS.get(slot) {
        s.interrupt.store(std::ptr::null_mut(), Ordering::SeqCst);
        s.tid.store(0, Ordering::SeqCst);
    }
}

/// After fork: only the calling thread exists.
pub fn forget_others(keep: usize, tid: i32) {
    for (i, s) in SLOTS.iter().enumerate() {
        if i == keep {
            s.tid.store(tid, Ordering::SeqCst);
        } else {
            s.interrupt.store(std::ptr::null_mut(), Ordering::SeqCst);
            s.tid.store(0, Ordering::SeqCst);
        }
    }
}

fn slot_of(tid: i32) -> Option<usize> {
    SLOTS
        .iter()
        .position(|s| tid != 0 && s.tid.load(Ordering::Relaxed) == tid)
}

fn poke(slot: &Slot) {
    let p = slot.interrupt.load(Ordering::SeqCst);
    if !p.is_null() {
        // SAFETY: interrupt pointers come from Arc::into_raw in `register` and are never
        // released, so they stay valid for the whole process.
        unsafe { (*p).store(true, Ordering::SeqCst) };
    }
}

/// Interrupt every guest thread (a process-wide event such as a code flush).
pub fn interrupt_all() {
    for s in SLOTS.iter() {
        poke(s);
    }
}

fn store_info(sig: i32, info: &[u8; 128]) {
    if let Some(slot) = SIGINFO.get(sig as usize) {
        for (k, w) in slot.iter().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&info[k * 8..k * 8 + 8]);
            w.store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
    }
}

fn load_info(sig: i32) -> [u8; 128] {
    let mut out = [0u8; 128];
    if let Some(slot) = SIGINFO.get(sig as usize) {
        for (k, w) in slot.iter().enumerate() {
            out[k * 8..k * 8 + 8].copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
    }
    out
}

fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The host handler for every signal the guest handles. Async-signal-safe: atomics and
/// gettid only.
extern "C" fn host_handler(sig: libc::c_int, info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    if !(1..=NSIG as i32).contains(&sig) {
        return;
    }
    let mut buf = [0u8; 128];
    if !info.is_null() {
        // SAFETY: the kernel passes a valid siginfo_t (128 bytes) to SA_SIGINFO handlers.
        unsafe { std::ptr::copy_nonoverlapping(info as *const u8, buf.as_mut_ptr(), 128) };
    }
    store_info(sig, &buf);
    match slot_of(gettid()) {
        Some(i) => {
            SLOTS[i].pending.fetch_or(bit(sig), Ordering::SeqCst);
            poke(&SLOTS[i]);
        }
        None => {
            PROC_PENDING.fetch_or(bit(sig), Ordering::SeqCst);
            interrupt_all();
        }
    }
}

/// Make the host disposition of `sig` follow the guest's `act`.
pub fn mirror_action(sig: i32, act: &SigAction) {
    if !mirrored(sig) {
        return;
    }
    // SAFETY: a zeroed sigaction is a valid starting point; the handler is an
    // async-signal-safe extern "C" fn.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = match act.handler {
            SIG_DFL => libc::SIG_DFL,
            SIG_IGN => libc::SIG_IGN,
            _ => host_handler as *const () as usize,
        };
        let mut flags = (act.flags & (SA_NOCLDSTOP | SA_NOCLDWAIT)) as i32;
        if act.handler > SIG_IGN {
            flags |= libc::SA_SIGINFO;
        }
        sa.sa_flags = flags;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// Make the calling host thread's mask follow the guest mask.
pub fn mirror_mask_now(mask: u64) {
    let m = mask & mirror_mask();
    // SAFETY: a sigset_t built with sigemptyset/sigaddset, passed to pthread_sigmask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in 1..=NSIG as i32 {
            if m & bit(s) != 0 {
                libc::sigaddset(&mut set, s);
            }
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Host pending signals of this thread/process (for rt_sigpending).
pub fn host_pending() -> u64 {
    // SAFETY: sigpending fills the sigset we pass.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut set);
        let mut m = 0;
        for s in 1..=NSIG as i32 {
            if libc::sigismember(&set, s) == 1 {
                m |= bit(s);
            }
        }
        m
    }
}

/// A siginfo for a signal sent by a process.
pub fn user_info(sig: i32, code: i32) -> [u8; 128] {
    let mut i = [0u8; 128];
    i[0..4].copy_from_slice(&sig.to_le_bytes());
    i[8..12].copy_from_slice(&code.to_le_bytes());
    // SAFETY: getpid/getuid cannot fail.
    let (pid, uid) = unsafe { (libc::getpid(), libc::getuid()) };
    i[16..20].copy_from_slice(&pid.to_le_bytes());
    i[20..24].copy_from_slice(&uid.to_le_bytes());
    i
}

/// A siginfo for a fault at `addr`.
pub fn fault_info(sig: i32, code: i32, addr: u64) -> [u8; 128] {
    let mut i = [0u8; 128];
    i[0..4].copy_from_slice(&sig.to_le_bytes());
    i[8..12].copy_from_slice(&code.to_le_bytes());
    i[16..24].copy_from_slice(&addr.to_le_bytes());
    i
}

/// Queue a non-mirrored signal for thread `tid` (0: any thread of this process).
pub fn queue_internal(tid: i32, sig: i32, info: &[u8; 128]) -> bool {
    store_info(sig, info);
    match if tid == 0 { None } else { slot_of(tid) } {
        Some(i) => {
            SLOTS[i].pending.fetch_or(bit(sig), Ordering::SeqCst);
            poke(&SLOTS[i]);
            true
        }
        None if tid == 0 => {
            PROC_PENDING.fetch_or(bit(sig), Ordering::SeqCst);
            interrupt_all();
            true
        }
        None => false,
    }
}

pub fn signame(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        17 => "SIGCHLD",
        _ => "signal",
    }
}

/// Terminate the process as killed by `sig`, the way the host shows it to the parent.
pub fn die(sig: i32) -> ! {
    // SAFETY: resetting a disposition, unblocking and raising a signal on ourselves; if the
    // signal does not kill us we exit with the shell's 128+sig.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &sa, std::ptr::null_mut());
        // Core dumps of the emulator are of no use to the guest's user.
        let rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &rl);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::syscall(libc::SYS_tgkill, libc::getpid(), gettid(), sig);
        libc::_exit(128 + sig)
    }
}

fn default_ignored(sig: i32) -> bool {
    matches!(
        sig,
        SIGCHLD | SIGCONT | SIGURG | SIGWINCH | SIGTSTP | SIGTTIN | SIGTTOU
    ) || sig >= 32
}

/// Whether a pending, unblocked signal would interrupt a system call with SA_RESTART.
pub fn pending_restartable(t: &Thread) -> Option<bool> {
    let pend = pending_mask(t) & !t.sigmask;
    if pend == 0 {
        return None;
    }
    let sig = pend.trailing_zeros() as i32 + 1;
    let act = t.proc.action(sig);
    Some(act.flags & SA_RESTART != 0)
}

pub fn pending_mask(t: &Thread) -> u64 {
    let own = SLOTS
        .get(t.slot)
        .map_or(0, |s| s.pending.load(Ordering::SeqCst));
    own | PROC_PENDING.load(Ordering::SeqCst)
}

fn take(t: &Thread, sig: i32) -> bool {
    let b = bit(sig);
    if let Some(s) = SLOTS.get(t.slot) {
        if s.pending.fetch_and(!b, Ordering::SeqCst) & b != 0 {
            return true;
        }
    }
    PROC_PENDING.fetch_and(!b, Ordering::SeqCst) & b != 0
}

/// Guest-visible pending set.
pub fn pending_set(t: &Thread) -> u64 {
    pending_mask(t) | host_pending()
}

/// Deliver every pending unblocked signal to the guest.
pub fn deliver_pending(t: &mut Thread) {
    loop {
        let pend = pending_mask(t) & !t.sigmask;
        if pend == 0 {
            break;
        }
        let sig = pend.trailing_zeros() as i32 + 1;
        if !take(t, sig) {
            continue;
        }
        let info = load_info(sig);
        deliver(t, sig, &info, false);
    }
    if let Some(m) = t.saved_mask.take() {
        t.sigmask = m;
        mirror_mask_now(m);
    }
}

/// A signal caused by the instruction at pc: delivered now; blocked or ignored means death.
pub fn force(t: &mut Thread, sig: i32, info: &[u8; 128]) {
    let act = t.proc.action(sig);
    if t.sigmask & bit(sig) != 0 || act.handler == SIG_IGN {
        fatal(t, sig);
    }
    deliver(t, sig, info, true);
}

fn fatal(t: &Thread, sig: i32) -> ! {
    eprintln!(
        "armboard: guest terminated by {} ({sig}) at pc {:#x}",
        signame(sig),
        t.cpu.state.pc
    );
    die(sig)
}

fn deliver(t: &mut Thread, sig: i32, info: &[u8; 128], sync: bool) {
    let act = t.proc.action(sig);
    match act.handler {
        SIG_IGN => {}
        SIG_DFL => {
            if sync || !default_ignored(sig) {
                fatal(t, sig);
            }
        }
        _ => {
            if setup_frame(t, sig, info, &act).is_err() {
                fatal(t, SIGSEGV);
            }
            let mut newmask = t.sigmask | act.mask;
            if act.flags & SA_NODEFER == 0 {
                newmask |= bit(sig);
            }
            newmask &= !UNBLOCKABLE;
            // The frame holds the mask to restore (saved_mask for sigsuspend & co).
            t.saved_mask = None;
            t.sigmask = newmask;
            mirror_mask_now(newmask);
            if act.flags & SA_RESETHAND != 0 {
                let dfl = SigAction::default();
                t.proc.set_action(sig, dfl);
                mirror_action(sig, &dfl);
            }
        }
    }
}

fn le64(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

fn setup_frame(t: &mut Thread, sig: i32, info: &[u8; 128], act: &SigAction) -> Result<(), ()> {
    let st = &t.cpu.state;
    let mut sp = st.sp();
    if act.flags & SA_ONSTACK != 0 && t.altstack.flags & SS_DISABLE == 0 && !t.altstack.on(sp) {
        sp = t.altstack.sp + t.altstack.size;
    }
    let record = (sp - 16) & !15;
    let frame = (record - FRAME_SIZE) & !15;
    let mut buf = vec![0u8; (record + 16 - frame) as usize];
    buf[..128].copy_from_slice(info);
    let uc = SIGINFO_SIZE as usize;
    // uc_flags, uc_link = 0; uc_stack
    let ss_flags = if t.altstack.flags & SS_DISABLE != 0 {
        SS_DISABLE
    } else if t.altstack.on(st.sp()) {
        SS_ONSTACK
    } else {
        0
    };
    buf[uc + 16..uc + 24].copy_from_slice(&le64(t.altstack.sp));
    buf[uc + 24..uc + 28].copy_from_slice(&ss_flags.to_le_bytes());
    buf[uc + 32..uc + 40].copy_from_slice(&le64(t.altstack.size));
    let mask = t.saved_mask.unwrap_or(t.sigmask);
    buf[uc + 40..uc + 48].copy_from_slice(&le64(mask));
    let mc = uc + UC_MCONTEXT as usize;
    let fault_addr = if matches!(sig, SIGSEGV | SIGBUS) {
        u64::from_le_bytes(info[16..24].try_into().unwrap_or([0; 8]))
    } else {
        0
    };
    buf[mc..mc + 8].copy_from_slice(&le64(fault_addr));
    for r in 0..31 {
        buf[mc + 8 + r * 8..mc + 16 + r * 8].copy_from_slice(&le64(st.x[r]));
    }
    buf[mc + 256..mc + 264].copy_from_slice(&le64(st.sp()));
    buf[mc + 264..mc + 272].copy_from_slice(&le64(st.pc));
    buf[mc + 272..mc + 280].copy_from_slice(&le64(st.nzcv as u64 & 0xf000_0000));
    let fp = mc + 288;
    buf[fp..fp + 4].copy_from_slice(&FPSIMD_MAGIC.to_le_bytes());
    buf[fp + 4..fp + 8].copy_from_slice(&FPSIMD_SIZE.to_le_bytes());
    buf[fp + 8..fp + 12].copy_from_slice(&st.fpsr.to_le_bytes());
    buf[fp + 12..fp + 16].copy_from_slice(&st.fpcr.to_le_bytes());
    for (k, v) in st.v.iter().enumerate() {
        buf[fp + 16 + k * 16..fp + 32 + k * 16].copy_from_slice(&v.to_le_bytes());
    }
    // The terminating null record follows (already zero).
    let fr = (record - frame) as usize;
    buf[fr..fr + 8].copy_from_slice(&le64(st.x[29]));
    buf[fr + 8..fr + 16].copy_from_slice(&le64(st.x[30]));
    t.proc.space.write_bytes(frame, &buf).map_err(|_| ())?;
    let restorer = if act.flags & SA_RESTORER != 0 && act.restorer != 0 {
        act.restorer
    } else {
        t.proc.sigreturn_tramp
    };
    let st = &mut t.cpu.state;
    st.x[0] = sig as u64;
    st.x[1] = frame;
    st.x[2] = frame + SIGINFO_SIZE;
    st.x[29] = record;
    st.x[30] = restorer;
    st.set_sp(frame);
    st.pc = act.handler;
    Ok(())
}

/// rt_sigreturn: restore the context saved by [`setup_frame`]. Returns x0.
#[allow(clippy::result_unit_err)]
pub fn sigreturn(t: &mut Thread) -> Result<u64, ()> {
    let frame = t.cpu.state.sp();
    let space = &t.proc.space;
    let mut buf = vec![0u8; FRAME_SIZE as usize];
    space.read_bytes(frame, &mut buf).map_err(|_| ())?;
    let g = |o: usize| u64::from_le_bytes(buf[o..o + 8].try_into().unwrap_or([0; 8]));
    let uc = SIGINFO_SIZE as usize;
    let mc = uc + UC_MCONTEXT as usize;
    let st = &mut t.cpu.state;
    for r in 0..31 {
        st.x[r] = g(mc + 8 + r * 8);
    }
    st.set_sp(g(mc + 256));
    st.pc = g(mc + 264);
    st.nzcv = (g(mc + 272) & 0xf000_0000) as u32;
    let mut off = mc + 288;
    let end = mc + SIGCONTEXT_SIZE as usize;
    while off + 8 <= end {
        let magic = u32::from_le_bytes(buf[off..off + 4].try_into().unwrap_or([0; 4]));
        let size = u32::from_le_bytes(buf[off + 4..off + 8].try_into().unwrap_or([0; 4])) as usize;
        if magic == 0 || size < 8 || off + size > end {
            break;
        }
        if magic == FPSIMD_MAGIC && size >= FPSIMD_SIZE as usize {
            st.fpsr = u32::from_le_bytes(buf[off + 8..off + 12].try_into().unwrap_or([0; 4]));
            st.fpcr = u32::from_le_bytes(buf[off + 12..off + 16].try_into().unwrap_or([0; 4]));
            for k in 0..32 {
                let o = off + 16 + k * 16;
                st.v[k] = u128::from_le_bytes(buf[o..o + 16].try_into().unwrap_or([0; 16]));
            }
        }
        off += size;
    }
    st.monitor.valid = false;
    let mask = g(uc + 40) & !UNBLOCKABLE;
    t.sigmask = mask;
    t.saved_mask = None;
    mirror_mask_now(mask);
    let ss = AltStack {
        sp: g(uc + 16),
        flags: g(uc + 24) as u32,
        size: g(uc + 32),
    };
    if !t.altstack.on(t.cpu.state.sp()) {
        if ss.flags & SS_DISABLE != 0 {
            t.altstack = AltStack::default();
        } else if ss.size >= MINSIGSTKSZ {
            t.altstack = AltStack { flags: 0, ..ss };
        }
    }
    Ok(t.cpu.state.x[0])
}
