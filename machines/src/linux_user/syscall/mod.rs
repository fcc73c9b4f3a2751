//! Linux arm64 system calls served by the host. Numbers are asm-generic's; most calls go
//! to the host kernel with guest pointers turned into host pointers (guest memory is host
//! memory at `space.host(addr)`), after checking the guest may access them. Structures
//! whose arm64 layout differs from the x86-64 host's (`struct stat`, `epoll_event`, open
//! flags) are converted.

mod fs;
mod mm;
mod net;
mod process;
mod sig;
mod time;

use super::memory::perm;
use super::Thread;
use std::collections::HashSet;
use std::ffi::CString;
use std::sync::Mutex;

pub use fs::{guest_open_flags, host_open_flags};

/// arm64 system call numbers (include/uapi/asm-generic/unistd.h).
pub mod nr {
    pub const GETCWD: u64 = 17;
    pub const EVENTFD2: u64 = 19;
    pub const EPOLL_CREATE1: u64 = 20;
    pub const EPOLL_CTL: u64 = 21;
    pub const EPOLL_PWAIT: u64 = 22;
    pub const DUP: u64 = 23;
    pub const DUP3: u64 = 24;
    pub const FCNTL: u64 = 25;
    pub const INOTIFY_INIT1: u64 = 26;
    pub const INOTIFY_ADD_WATCH: u64 = 27;
    pub const INOTIFY_RM_WATCH: u64 = 28;
    pub const IOCTL: u64 = 29;
    pub const FLOCK: u64 = 32;
    pub const MKNODAT: u64 = 33;
    pub const MKDIRAT: u64 = 34;
    pub const UNLINKAT: u64 = 35;
    pub const SYMLINKAT: u64 = 36;
    pub const LINKAT: u64 = 37;
    pub const RENAMEAT: u64 = 38;
    pub const STATFS: u64 = 43;
    pub const FSTATFS: u64 = 44;
    pub const TRUNCATE: u64 = 45;
    pub const FTRUNCATE: u64 = 46;
    pub const FALLOCATE: u64 = 47;
    pub const FACCESSAT: u64 = 48;
    pub const CHDIR: u64 = 49;
    pub const FCHDIR: u64 = 50;
    pub const CHROOT: u64 = 51;
    pub const FCHMOD: u64 = 52;
    pub const FCHMODAT: u64 = 53;
    pub const FCHOWNAT: u64 = 54;
    pub const FCHOWN: u64 = 55;
    pub const OPENAT: u64 = 56;
    pub const CLOSE: u64 = 57;
    pub const PIPE2: u64 = 59;
    pub const GETDENTS64: u64 = 61;
    pub const LSEEK: u64 = 62;
    pub const READ: u64 = 63;
    pub const WRITE: u64 = 64;
    pub const READV: u64 = 65;
    pub const WRITEV: u64 = 66;
    pub const PREAD64: u64 = 67;
    pub const PWRITE64: u64 = 68;
    pub const PREADV: u64 = 69;
    pub const PWRITEV: u64 = 70;
    pub const SENDFILE: u64 = 71;
    pub const PSELECT6: u64 = 72;
    pub const PPOLL: u64 = 73;
    pub const SPLICE: u64 = 76;
    pub const TEE: u64 = 77;
    pub const READLINKAT: u64 = 78;
    pub const NEWFSTATAT: u64 = 79;
    pub const FSTAT: u64 = 80;
    pub const SYNC: u64 = 81;
    pub const FSYNC: u64 = 82;
    pub const FDATASYNC: u64 = 83;
    pub const TIMERFD_CREATE: u64 = 85;
    pub const TIMERFD_SETTIME: u64 = 86;
    pub const TIMERFD_GETTIME: u64 = 87;
    pub const UTIMENSAT: u64 = 88;
    pub const CAPGET: u64 = 90;
    pub const CAPSET: u64 = 91;
    pub const PERSONALITY: u64 = 92;
    pub const EXIT: u64 = 93;
    pub const EXIT_GROUP: u64 = 94;
    pub const WAITID: u64 = 95;
    pub const SET_TID_ADDRESS: u64 = 96;
    pub const UNSHARE: u64 = 97;
    pub const FUTEX: u64 = 98;
    pub const SET_ROBUST_LIST: u64 = 99;
    pub const GET_ROBUST_LIST: u64 = 100;
    pub const NANOSLEEP: u64 = 101;
    pub const GETITIMER: u64 = 102;
    pub const SETITIMER: u64 = 103;
    pub const TIMER_CREATE: u64 = 107;
    pub const TIMER_GETTIME: u64 = 108;
    pub const TIMER_GETOVERRUN: u64 = 109;
    pub const TIMER_SETTIME: u64 = 110;
    pub const TIMER_DELETE: u64 = 111;
    pub const CLOCK_GETTIME: u64 = 113;
    pub const CLOCK_GETRES: u64 = 114;
    pub const CLOCK_NANOSLEEP: u64 = 115;
    pub const SCHED_SETPARAM: u64 = 118;
    pub const SCHED_SETSCHEDULER: u64 = 119;
    pub const SCHED_GETSCHEDULER: u64 = 120;
    pub const SCHED_GETPARAM: u64 = 121;
    pub const SCHED_SETAFFINITY: u64 = 122;
    pub const SCHED_GETAFFINITY: u64 = 123;
    pub const SCHED_YIELD: u64 = 124;
    pub const SCHED_GET_PRIORITY_MAX: u64 = 125;
    pub const SCHED_GET_PRIORITY_MIN: u64 = 126;
    pub const KILL: u64 = 129;
    pub const TKILL: u64 = 130;
    pub const TGKILL: u64 = 131;
    pub const SIGALTSTACK: u64 = 132;
    pub const RT_SIGSUSPEND: u64 = 133;
    pub const RT_SIGACTION: u64 = 134;
    pub const RT_SIGPROCMASK: u64 = 135;
    pub const RT_SIGPENDING: u64 = 136;
    pub const RT_SIGTIMEDWAIT: u64 = 137;
    pub const RT_SIGQUEUEINFO: u64 = 138;
    pub const RT_SIGRETURN: u64 = 139;
    pub const SETPRIORITY: u64 = 140;
    pub const GETPRIORITY: u64 = 141;
    pub const SETREGID: u64 = 143;
    pub const SETGID: u64 = 144;
    pub const SETREUID: u64 = 145;
    pub const SETUID: u64 = 146;
    pub const SETRESUID: u64 = 147;
    pub const GETRESUID: u64 = 148;
    pub const SETRESGID: u64 = 149;
    pub const GETRESGID: u64 = 150;
    pub const SETFSUID: u64 = 151;
    pub const SETFSGID: u64 = 152;
    pub const TIMES: u64 = 153;
    pub const SETPGID: u64 = 154;
    pub const GETPGID: u64 = 155;
    pub const GETSID: u64 = 156;
    pub const SETSID: u64 = 157;
    pub const GETGROUPS: u64 = 158;
    pub const SETGROUPS: u64 = 159;
    pub const UNAME: u64 = 160;
    pub const SETHOSTNAME: u64 = 161;
    pub const GETRLIMIT: u64 = 163;
    pub const SETRLIMIT: u64 = 164;
    pub const GETRUSAGE: u64 = 165;
    pub const UMASK: u64 = 166;
    pub const PRCTL: u64 = 167;
    pub const GETCPU: u64 = 168;
    pub const GETTIMEOFDAY: u64 = 169;
    pub const GETPID: u64 = 172;
    pub const GETPPID: u64 = 173;
    pub const GETUID: u64 = 174;
    pub const GETEUID: u64 = 175;
    pub const GETGID: u64 = 176;
    pub const GETEGID: u64 = 177;
    pub const GETTID: u64 = 178;
    pub const SYSINFO: u64 = 179;
    pub const SOCKET: u64 = 198;
    pub const SOCKETPAIR: u64 = 199;
    pub const BIND: u64 = 200;
    pub const LISTEN: u64 = 201;
    pub const ACCEPT: u64 = 202;
    pub const CONNECT: u64 = 203;
    pub const GETSOCKNAME: u64 = 204;
    pub const GETPEERNAME: u64 = 205;
    pub const SENDTO: u64 = 206;
    pub const RECVFROM: u64 = 207;
    pub const SETSOCKOPT: u64 = 208;
    pub const GETSOCKOPT: u64 = 209;
    pub const SHUTDOWN: u64 = 210;
    pub const SENDMSG: u64 = 211;
    pub const RECVMSG: u64 = 212;
    pub const READAHEAD: u64 = 213;
    pub const BRK: u64 = 214;
    pub const MUNMAP: u64 = 215;
    pub const MREMAP: u64 = 216;
    pub const CLONE: u64 = 220;
    pub const EXECVE: u64 = 221;
    pub const MMAP: u64 = 222;
    pub const FADVISE64: u64 = 223;
    pub const MPROTECT: u64 = 226;
    pub const MSYNC: u64 = 227;
    pub const MLOCK: u64 = 228;
    pub const MUNLOCK: u64 = 229;
    pub const MLOCKALL: u64 = 230;
    pub const MUNLOCKALL: u64 = 231;
    pub const MINCORE: u64 = 232;
    pub const MADVISE: u64 = 233;
    pub const ACCEPT4: u64 = 242;
    pub const WAIT4: u64 = 260;
    pub const PRLIMIT64: u64 = 261;
    pub const SYNCFS: u64 = 267;
    pub const RENAMEAT2: u64 = 276;
    pub const GETRANDOM: u64 = 278;
    pub const MEMFD_CREATE: u64 = 279;
    pub const EXECVEAT: u64 = 281;
    pub const MEMBARRIER: u64 = 283;
    pub const MLOCK2: u64 = 284;
    pub const COPY_FILE_RANGE: u64 = 285;
    pub const PREADV2: u64 = 286;
    pub const PWRITEV2: u64 = 287;
    pub const STATX: u64 = 291;
    pub const RSEQ: u64 = 293;
    pub const PIDFD_SEND_SIGNAL: u64 = 424;
    pub const IO_URING_SETUP: u64 = 425;
    pub const PIDFD_OPEN: u64 = 434;
    pub const CLONE3: u64 = 435;
    pub const CLOSE_RANGE: u64 = 436;
    pub const OPENAT2: u64 = 437;
    pub const FACCESSAT2: u64 = 439;
    pub const EPOLL_PWAIT2: u64 = 441;
}

/// What a system call did to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Result in x0; continue.
    Continue,
    /// This thread exits (SYS_exit).
    ExitThread(i32),
    /// The process exits with this status.
    ExitGroup(i32),
}

/// A syscall result: the value for x0, or an errno.
pub type SysResult = Result<u64, i32>;

pub const EINTR: i32 = libc::EINTR;

/// errno of the last failed host call.
pub fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Convert a host `-1 + errno` return into a [`SysResult`].
pub fn cvt(r: i64) -> SysResult {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as u64)
    }
}

/// A raw host system call.
#[macro_export]
#[doc(hidden)]
macro_rules! host_sys {
    ($nr:expr $(, $a:expr)*) => {
        // SAFETY: every pointer argument is the host address of guest memory the caller has
        // checked the guest may access for the call's length, or a host buffer; the host
        // kernel validates the rest.
        $crate::linux_user::syscall::cvt(unsafe { libc::syscall($nr $(, $a as i64)*) } as i64)
    };
}
pub(crate) use host_sys;

impl Thread {
    /// Host pointer for guest `[addr, addr+len)` if every page has `need`.
    pub fn ptr(&self, addr: u64, len: u64, need: u8) -> Result<*mut u8, i32> {
        if len == 0 {
            return Ok(self.proc.space.host(addr));
        }
        self.proc
            .space
            .check_pages(addr, len, need, armboard_cpu::Access::Read)
            .map_err(|_| libc::EFAULT)?;
        Ok(self.proc.space.host(addr))
    }

    /// As [`Thread::ptr`], but a NULL guest pointer stays NULL.
    pub fn opt_ptr(&self, addr: u64, len: u64, need: u8) -> Result<*mut u8, i32> {
        if addr == 0 {
            Ok(std::ptr::null_mut())
        } else {
            self.ptr(addr, len, need)
        }
    }

    /// A readable buffer's host pointer, shortened to its accessible prefix (the kernel
    /// reads until it faults; we refuse only when nothing is accessible).
    pub fn buf(&self, addr: u64, len: u64, need: u8) -> Result<(*mut u8, u64), i32> {
        if len == 0 {
            return Ok((self.proc.space.host(addr), 0));
        }
        let n = self.proc.space.valid_prefix(addr, len, need);
        if n == 0 {
            return Err(libc::EFAULT);
        }
        Ok((self.proc.space.host(addr), n))
    }

    pub fn read_obj<const N: usize>(&self, addr: u64) -> Result<[u8; N], i32> {
        let mut b = [0u8; N];
        self.proc
            .space
            .read_bytes(addr, &mut b)
            .map_err(|_| libc::EFAULT)?;
        Ok(b)
    }

    pub fn read_u64(&self, addr: u64) -> Result<u64, i32> {
        self.read_obj::<8>(addr).map(u64::from_le_bytes)
    }

    pub fn read_u32(&self, addr: u64) -> Result<u32, i32> {
        self.read_obj::<4>(addr).map(u32::from_le_bytes)
    }

    pub fn write_mem(&self, addr: u64, data: &[u8]) -> Result<(), i32> {
        self.proc
            .space
            .write_bytes(addr, data)
            .map_err(|_| libc::EFAULT)
    }

    /// A NUL-terminated guest string.
    pub fn cstr(&self, addr: u64) -> Result<Vec<u8>, i32> {
        if addr == 0 {
            return Err(libc::EFAULT);
        }
        let v = self
            .proc
            .space
            .read_cstr(addr, 4096)
            .map_err(|_| libc::EFAULT)?;
        if v.len() >= 4096 {
            return Err(libc::ENAMETOOLONG);
        }
        Ok(v)
    }

    /// A NULL-terminated array of guest strings (argv, envp).
    pub fn cstr_array(&self, addr: u64) -> Result<Vec<Vec<u8>>, i32> {
        let mut out = Vec::new();
        if addr == 0 {
            return Ok(out);
        }
        for i in 0..65536u64 {
            let p = self.read_u64(addr + i * 8)?;
            if p == 0 {
                return Ok(out);
            }
            out.push(
                self.proc
                    .space
                    .read_cstr(p, 1 << 20)
                    .map_err(|_| libc::EFAULT)?,
            );
        }
        Err(libc::E2BIG)
    }
}

pub fn cstring(v: Vec<u8>) -> Result<CString, i32> {
    CString::new(v).map_err(|_| libc::EINVAL)
}

fn log_unknown(n: u64) {
    static SEEN: Mutex<Option<HashSet<u64>>> = Mutex::new(None);
    let mut s = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if s.get_or_insert_with(HashSet::new).insert(n) {
        log::warn!("unimplemented system call {n} (returns ENOSYS)");
    }
}

/// Calls that are not restarted after a handler (the kernel's -ERESTARTNOHAND and
/// timeouts that cannot simply be redone).
fn restartable(n: u64) -> bool {
    !matches!(
        n,
        nr::PPOLL
            | nr::PSELECT6
            | nr::EPOLL_PWAIT
            | nr::EPOLL_PWAIT2
            | nr::RT_SIGSUSPEND
            | nr::RT_SIGTIMEDWAIT
            | nr::NANOSLEEP
            | nr::CLOCK_NANOSLEEP
    )
}

/// Serve the system call in the thread's state (number in x8, arguments in x0..x5).
pub fn dispatch(t: &mut Thread) -> Outcome {
    let st = &t.cpu.state;
    let n = st.x[8];
    let a = [st.x[0], st.x[1], st.x[2], st.x[3], st.x[4], st.x[5]];
    let r: SysResult = match n {
        nr::EXIT => {
            return Outcome::ExitThread(a[0] as i32);
        }
        nr::EXIT_GROUP => return Outcome::ExitGroup(a[0] as i32),
        nr::RT_SIGRETURN => match super::signal::sigreturn(t) {
            Ok(x0) => Ok(x0),
            Err(()) => {
                let pc = t.cpu.state.pc;
                super::signal::force(
                    t,
                    super::signal::SIGSEGV,
                    &super::signal::fault_info(super::signal::SIGSEGV, 1, pc),
                );
                return Outcome::Continue;
            }
        },
        _ => {
            let r = fs::call(t, n, &a)
                .or_else(|| mm::call(t, n, &a))
                .or_else(|| process::call(t, n, &a))
                .or_else(|| sig::call(t, n, &a))
                .or_else(|| time::call(t, n, &a))
                .or_else(|| net::call(t, n, &a));
            match r {
                Some(r) => r,
                None => {
                    log_unknown(n);
                    Err(libc::ENOSYS)
                }
            }
        }
    };
    log::trace!("syscall {n}({:#x}, {:#x}, {:#x}) = {r:?}", a[0], a[1], a[2]);
    match r {
        Ok(v) => t.cpu.state.x[0] = v,
        Err(EINTR) if restartable(n) && super::signal::pending_restartable(t) == Some(true) => {
            // Redo the call after the handler: back to the SVC with the original x0.
            t.cpu.state.pc -= 4;
            t.cpu.state.x[0] = a[0];
        }
        Err(e) => t.cpu.state.x[0] = (-(e as i64)) as u64,
    }
    Outcome::Continue
}

/// Guest prot bits (PROT_READ/WRITE/EXEC) as memory::perm bits; any access implies read.
pub fn prot_to_perm(prot: u64) -> u8 {
    let mut p = 0;
    if prot & 1 != 0 {
        p |= perm::R;
    }
    if prot & 2 != 0 {
        p |= perm::W | perm::R;
    }
    if prot & 4 != 0 {
        p |= perm::X | perm::R;
    }
    p
}
