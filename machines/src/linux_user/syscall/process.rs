//! Processes and threads: identity, clone (threads as host threads, fork as host fork),
//! wait, execve (re-running armboard on the new program), futex, limits, prctl, uname.

use super::{cstring, host_sys, nr, SysResult};
use crate::linux_user::memory::perm;
use crate::linux_user::{signal, thread_exit, Thread, ThreadEnd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::Ordering;

const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_SETTLS: u64 = 0x8_0000;
const CLONE_PARENT_SETTID: u64 = 0x10_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
const CLONE_CHILD_SETTID: u64 = 0x100_0000;

fn clone(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    // arm64 argument order: flags, newsp, parent_tid, tls, child_tid.
    let (flags, newsp, ptid, tls, ctid) = (a[0], a[1], a[2], a[3], a[4]);
    if flags & CLONE_VM != 0 && flags & CLONE_VFORK == 0 {
        return spawn_thread(t, flags, newsp, ptid, tls, ctid);
    }
    // A new process: the host forks; guest memory is private host memory, so it is copied
    // (and MAP_SHARED areas stay shared). Only the calling thread lives on in the child.
    let pid = {
        let _mm = t.proc.mm();
        let _acts = t.proc.actions.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: fork in a possibly multi-threaded process: the child only runs this thread,
        // and the locks it needs (guest memory map, actions) are held across the fork and
        // released by the guards in both processes.
        unsafe { libc::fork() }
    };
    if pid < 0 {
        return Err(super::errno());
    }
    if pid == 0 {
        t.cpu.after_fork();
        let tid = crate::linux_user::gettid();
        t.tid = tid;
        signal::forget_others(t.slot, tid);
        t.proc.live_threads.store(1, Ordering::SeqCst);
        if flags & CLONE_CHILD_SETTID != 0 {
            let _ = t.write_mem(ctid, &tid.to_le_bytes());
        }
        if flags & CLONE_CHILD_CLEARTID != 0 {
            t.clear_child_tid = ctid;
        }
        if newsp != 0 {
            t.cpu.state.set_sp(newsp);
        }
        if flags & CLONE_SETTLS != 0 {
            t.cpu.state.tpidr_el0 = tls;
        }
        return Ok(0);
    }
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = t.write_mem(ptid, &pid.to_le_bytes());
    }
    Ok(pid as u64)
}

fn spawn_thread(
    t: &mut Thread,
    flags: u64,
    newsp: u64,
    ptid: u64,
    tls: u64,
    ctid: u64,
) -> SysResult {
    let proc = t.proc.clone();
    let mut st = t.cpu.state.clone();
    st.x[0] = 0;
    if newsp != 0 {
        st.set_sp(newsp);
    }
    if flags & CLONE_SETTLS != 0 {
        st.tpidr_el0 = tls;
    }
    st.monitor.valid = false;
    let mask = t.sigmask;
    let (tx, rx) = std::sync::mpsc::sync_channel::<i32>(1);
    proc.live_threads.fetch_add(1, Ordering::SeqCst);
    let p2 = proc.clone();
    let r = std::thread::Builder::new()
        .name("guest".into())
        .stack_size(16 << 20)
        .spawn(move || {
            let mut th = Thread::new(p2, st, mask);
            let tid = th.tid.to_le_bytes();
            if flags & CLONE_PARENT_SETTID != 0 {
                let _ = th.write_mem(ptid, &tid);
            }
            if flags & CLONE_CHILD_SETTID != 0 {
                let _ = th.write_mem(ctid, &tid);
            }
            if flags & CLONE_CHILD_CLEARTID != 0 {
                th.clear_child_tid = ctid;
            }
            let _ = tx.send(th.tid);
            match th.run() {
                ThreadEnd::Thread(c) => thread_exit(&mut th, c),
                ThreadEnd::Group(c) => std::process::exit(c & 0xff),
            }
        });
    if r.is_err() {
        proc.live_threads.fetch_sub(1, Ordering::SeqCst);
        return Err(libc::EAGAIN);
    }
    rx.recv().map(|tid| tid as u64).map_err(|_| libc::EAGAIN)
}

/// Where the program named by an execve lives on the host, with the argv the kernel would
/// build for it (interpreter scripts expanded).
fn exec_target(
    t: &Thread,
    mut path: Vec<u8>,
    mut args: Vec<Vec<u8>>,
) -> Result<(std::path::PathBuf, Vec<Vec<u8>>), i32> {
    for _ in 0..5 {
        let host = super::fs::resolve_program(t, &path);
        let mut head = [0u8; 256];
        let n = {
            use std::io::Read;
            let mut f =
                std::fs::File::open(&host).map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))?;
            if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
                return Err(libc::EACCES);
            }
            f.read(&mut head)
                .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?
        };
        let c = cstring(host.as_os_str().as_bytes().to_vec())?;
        // SAFETY: c is a valid C string.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
            return Err(libc::EACCES);
        }
        let head = &head[..n];
        if head.starts_with(b"#!") {
            let line = head[2..]
                .split(|&b| b == b'\n')
                .next()
                .ok_or(libc::ENOEXEC)?;
            let line: Vec<u8> = line.to_vec();
            let s = String::from_utf8_lossy(&line);
            let s = s.trim();
            let (interp, arg) = match s.find([' ', '\t']) {
                Some(i) => (s[..i].to_string(), Some(s[i..].trim().to_string())),
                None => (s.to_string(), None),
            };
            if interp.is_empty() {
                return Err(libc::ENOEXEC);
            }
            let mut na = vec![interp.clone().into_bytes()];
            if let Some(a) = arg.filter(|a| !a.is_empty()) {
                na.push(a.into_bytes());
            }
            na.push(path.clone());
            na.extend(args.into_iter().skip(1));
            args = na;
            path = interp.into_bytes();
            continue;
        }
        if head.len() >= 20 && head.starts_with(b"\x7fELF") {
            let machine = u16::from_le_bytes([head[18], head[19]]);
            if head[4] == 2 && machine == 183 {
                return Ok((host, args));
            }
        }
        return Err(libc::ENOEXEC);
    }
    Err(libc::ELOOP)
}

fn execve(t: &Thread, dirfd: i64, path: u64, argv: u64, envp: u64, flags: u64) -> SysResult {
    let mut p = t.cstr(path)?;
    let args = t.cstr_array(argv)?;
    let env = t.cstr_array(envp)?;
    if dirfd != -100 && p.first() != Some(&b'/') {
        let mut full = format!("/proc/self/fd/{dirfd}").into_bytes();
        if !p.is_empty() {
            full.push(b'/');
            full.extend_from_slice(&p);
        } else if flags & libc::AT_EMPTY_PATH as u64 == 0 {
            return Err(libc::ENOENT);
        }
        p = full;
    }
    if p.is_empty() {
        return Err(libc::ENOENT);
    }
    let (host, args) = exec_target(t, p, args)?;
    let exe = std::env::current_exe().map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))?;
    let mut argv: Vec<Vec<u8>> = vec![exe.as_os_str().as_bytes().to_vec(), b"user".to_vec()];
    if let Some(root) = &t.proc.sysroot {
        argv.push(b"--sysroot".to_vec());
        argv.push(root.as_os_str().as_bytes().to_vec());
    }
    argv.push(b"--engine".to_vec());
    argv.push(
        match t.proc.engine {
            armboard_cpu::EngineKind::Interp => "interp",
            armboard_cpu::EngineKind::Jit => "jit",
            armboard_cpu::EngineKind::Tiered => "tiered",
        }
        .into(),
    );
    if let Some(a0) = args.first() {
        argv.push(b"--argv0".to_vec());
        argv.push(a0.clone());
    }
    argv.push(b"--".to_vec());
    argv.push(host.as_os_str().as_bytes().to_vec());
    argv.extend(args.into_iter().skip(1));
    let cargs: Vec<std::ffi::CString> = argv.into_iter().map(cstring).collect::<Result<_, _>>()?;
    let cenv: Vec<std::ffi::CString> = env.into_iter().map(cstring).collect::<Result<_, _>>()?;
    let mut pa: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    pa.push(std::ptr::null());
    let mut pe: Vec<*const libc::c_char> = cenv.iter().map(|c| c.as_ptr()).collect();
    pe.push(std::ptr::null());
    let cexe = cstring(exe.as_os_str().as_bytes().to_vec())?;
    host_sys!(libc::SYS_execve, cexe.as_ptr(), pa.as_ptr(), pe.as_ptr())
}

fn futex(t: &Thread, a: &[u64; 6]) -> SysResult {
    let (uaddr, op, val, arg4, uaddr2, val3) = (a[0], a[1] as i32, a[2], a[3], a[4], a[5]);
    if uaddr % 4 != 0 {
        return Err(libc::EINVAL);
    }
    let host = t.ptr(uaddr, 4, perm::R)?;
    let cmd = op & 0x7f;
    // WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2 take a timeout pointer; the
    // others use the slot for a count.
    let a4 = match cmd {
        0 | 6 | 9 | 11 | 13 => t.opt_ptr(arg4, 16, perm::R)? as u64,
        _ => arg4,
    };
    let a5 = match cmd {
        3 | 4 | 5 | 11 | 12 => t.ptr(uaddr2, 4, perm::R)? as u64,
        _ => uaddr2,
    };
    host_sys!(libc::SYS_futex, host, op, val as u32, a4, a5, val3 as u32)
}

fn uname(t: &Thread, buf: u64) -> SysResult {
    // SAFETY: zeroed utsname is a valid output buffer.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    host_sys!(libc::SYS_uname, &mut u as *mut libc::utsname)?;
    let mut b = vec![0u8; 65 * 6];
    let fields = [
        &u.sysname,
        &u.nodename,
        &u.release,
        &u.version,
        &u.machine,
        &u.domainname,
    ];
    for (i, f) in fields.iter().enumerate() {
        for (k, &c) in f.iter().take(65).enumerate() {
            b[i * 65 + k] = c as u8;
        }
    }
    let m = b"aarch64\0";
    b[4 * 65..4 * 65 + 65].fill(0);
    b[4 * 65..4 * 65 + m.len()].copy_from_slice(m);
    t.write_mem(buf, &b)?;
    Ok(0)
}

fn prctl(t: &Thread, a: &[u64; 6]) -> SysResult {
    const PR_SET_PDEATHSIG: u64 = 1;
    const PR_GET_PDEATHSIG: u64 = 2;
    const PR_GET_DUMPABLE: u64 = 3;
    const PR_SET_DUMPABLE: u64 = 4;
    const PR_SET_NAME: u64 = 15;
    const PR_GET_NAME: u64 = 16;
    const PR_CAPBSET_READ: u64 = 23;
    const PR_SET_TIMERSLACK: u64 = 29;
    const PR_GET_TIMERSLACK: u64 = 30;
    const PR_SET_CHILD_SUBREAPER: u64 = 36;
    const PR_GET_CHILD_SUBREAPER: u64 = 37;
    const PR_SET_NO_NEW_PRIVS: u64 = 38;
    const PR_GET_NO_NEW_PRIVS: u64 = 39;
    match a[0] {
        PR_SET_NAME => {
            let mut name = [0u8; 16];
            let s = t.proc.space.read_cstr(a[1], 15).map_err(|_| libc::EFAULT)?;
            name[..s.len()].copy_from_slice(&s);
            host_sys!(libc::SYS_prctl, PR_SET_NAME, name.as_ptr())
        }
        PR_GET_NAME => {
            let mut name = [0u8; 16];
            host_sys!(libc::SYS_prctl, PR_GET_NAME, name.as_mut_ptr())?;
            t.write_mem(a[1], &name)?;
            Ok(0)
        }
        PR_GET_PDEATHSIG | PR_GET_CHILD_SUBREAPER => {
            let p = t.ptr(a[1], 4, perm::W)?;
            host_sys!(libc::SYS_prctl, a[0], p)
        }
        PR_SET_PDEATHSIG
        | PR_GET_DUMPABLE
        | PR_SET_DUMPABLE
        | PR_CAPBSET_READ
        | PR_SET_TIMERSLACK
        | PR_GET_TIMERSLACK
        | PR_SET_CHILD_SUBREAPER
        | PR_SET_NO_NEW_PRIVS
        | PR_GET_NO_NEW_PRIVS => {
            host_sys!(libc::SYS_prctl, a[0], a[1], a[2], a[3], a[4])
        }
        _ => Err(libc::EINVAL),
    }
}

pub fn call(t: &mut Thread, n: u64, a: &[u64; 6]) -> Option<SysResult> {
    Some(match n {
        nr::GETPID => host_sys!(libc::SYS_getpid),
        nr::GETPPID => host_sys!(libc::SYS_getppid),
        nr::GETTID => Ok(t.tid as u64),
        nr::GETUID => host_sys!(libc::SYS_getuid),
        nr::GETEUID => host_sys!(libc::SYS_geteuid),
        nr::GETGID => host_sys!(libc::SYS_getgid),
        nr::GETEGID => host_sys!(libc::SYS_getegid),
        nr::GETRESUID | nr::GETRESGID => (|| {
            let p: Vec<*mut u8> = a[..3]
                .iter()
                .map(|&x| t.ptr(x, 4, perm::W))
                .collect::<Result<_, _>>()?;
            let nr = if n == nr::GETRESUID {
                libc::SYS_getresuid
            } else {
                libc::SYS_getresgid
            };
            host_sys!(nr, p[0], p[1], p[2])
        })(),
        nr::SETUID => host_sys!(libc::SYS_setuid, a[0] as u32),
        nr::SETGID => host_sys!(libc::SYS_setgid, a[0] as u32),
        nr::SETREUID => host_sys!(libc::SYS_setreuid, a[0] as u32, a[1] as u32),
        nr::SETREGID => host_sys!(libc::SYS_setregid, a[0] as u32, a[1] as u32),
        nr::SETRESUID => host_sys!(libc::SYS_setresuid, a[0] as u32, a[1] as u32, a[2] as u32),
        nr::SETRESGID => host_sys!(libc::SYS_setresgid, a[0] as u32, a[1] as u32, a[2] as u32),
        nr::SETFSUID => host_sys!(libc::SYS_setfsuid, a[0] as u32),
        nr::SETFSGID => host_sys!(libc::SYS_setfsgid, a[0] as u32),
        nr::GETGROUPS => t
            .opt_ptr(a[1], a[0].min(65536) * 4, perm::W)
            .and_then(|p| host_sys!(libc::SYS_getgroups, a[0] as i32, p)),
        nr::SETGROUPS => t
            .opt_ptr(a[1], a[0].min(65536) * 4, perm::R)
            .and_then(|p| host_sys!(libc::SYS_setgroups, a[0], p)),
        nr::GETPGID => host_sys!(libc::SYS_getpgid, a[0] as i32),
        nr::SETPGID => host_sys!(libc::SYS_setpgid, a[0] as i32, a[1] as i32),
        nr::GETSID => host_sys!(libc::SYS_getsid, a[0] as i32),
        nr::SETSID => host_sys!(libc::SYS_setsid),
        nr::SET_TID_ADDRESS => {
            t.clear_child_tid = a[0];
            Ok(t.tid as u64)
        }
        nr::SET_ROBUST_LIST | nr::GET_ROBUST_LIST | nr::RSEQ | nr::CLONE3 | nr::IO_URING_SETUP => {
            Err(libc::ENOSYS)
        }
        nr::CLONE => clone(t, a),
        nr::EXECVE => execve(t, -100, a[0], a[1], a[2], 0),
        nr::EXECVEAT => execve(t, a[0] as i32 as i64, a[1], a[2], a[3], a[4]),
        nr::WAIT4 => (|| {
            let s = t.opt_ptr(a[1], 4, perm::W)?;
            let r = t.opt_ptr(a[3], 144, perm::W)?;
            host_sys!(libc::SYS_wait4, a[0] as i32, s, a[2] as i32, r)
        })(),
        nr::WAITID => (|| {
            let i = t.opt_ptr(a[2], 128, perm::W)?;
            let r = t.opt_ptr(a[4], 144, perm::W)?;
            host_sys!(
                libc::SYS_waitid,
                a[0] as i32,
                a[1] as i32,
                i,
                a[3] as i32,
                r
            )
        })(),
        nr::FUTEX => futex(t, a),
        nr::PRLIMIT64 => (|| {
            let new = t.opt_ptr(a[2], 16, perm::R)?;
            let old = t.opt_ptr(a[3], 16, perm::W)?;
            host_sys!(libc::SYS_prlimit64, a[0] as i32, a[1] as u32, new, old)
        })(),
        nr::GETRLIMIT => t
            .ptr(a[1], 16, perm::W)
            .and_then(|p| host_sys!(libc::SYS_prlimit64, 0, a[0] as u32, 0, p)),
        nr::SETRLIMIT => t
            .ptr(a[1], 16, perm::R)
            .and_then(|p| host_sys!(libc::SYS_prlimit64, 0, a[0] as u32, p, 0)),
        nr::GETRUSAGE => t
            .ptr(a[1], 144, perm::W)
            .and_then(|p| host_sys!(libc::SYS_getrusage, a[0] as i32, p)),
        nr::UNAME => uname(t, a[0]),
        nr::SETHOSTNAME => t
            .ptr(a[0], a[1].min(65), perm::R)
            .and_then(|p| host_sys!(libc::SYS_sethostname, p, a[1])),
        nr::SYSINFO => t
            .ptr(a[0], 112, perm::W)
            .and_then(|p| host_sys!(libc::SYS_sysinfo, p)),
        nr::PRCTL => prctl(t, a),
        nr::PERSONALITY => host_sys!(libc::SYS_personality, a[0] as u32),
        nr::GETRANDOM => t
            .buf(a[0], a[1], perm::W)
            .and_then(|(p, len)| host_sys!(libc::SYS_getrandom, p, len, a[2] as u32)),
        nr::SCHED_YIELD => host_sys!(libc::SYS_sched_yield),
        nr::SCHED_GETAFFINITY => t
            .ptr(a[2], a[1].min(1 << 16), perm::W)
            .and_then(|p| host_sys!(libc::SYS_sched_getaffinity, a[0] as i32, a[1], p)),
        nr::SCHED_SETAFFINITY => t
            .ptr(a[2], a[1].min(1 << 16), perm::R)
            .and_then(|p| host_sys!(libc::SYS_sched_setaffinity, a[0] as i32, a[1], p)),
        nr::SCHED_GETSCHEDULER => host_sys!(libc::SYS_sched_getscheduler, a[0] as i32),
        nr::SCHED_SETSCHEDULER => t
            .ptr(a[2], 4, perm::R)
            .and_then(|p| host_sys!(libc::SYS_sched_setscheduler, a[0] as i32, a[1] as i32, p)),
        nr::SCHED_GETPARAM => t
            .ptr(a[1], 4, perm::W)
            .and_then(|p| host_sys!(libc::SYS_sched_getparam, a[0] as i32, p)),
        nr::SCHED_SETPARAM => t
            .ptr(a[1], 4, perm::R)
            .and_then(|p| host_sys!(libc::SYS_sched_setparam, a[0] as i32, p)),
        nr::SCHED_GET_PRIORITY_MAX => host_sys!(libc::SYS_sched_get_priority_max, a[0] as i32),
        nr::SCHED_GET_PRIORITY_MIN => host_sys!(libc::SYS_sched_get_priority_min, a[0] as i32),
        nr::GETPRIORITY => host_sys!(libc::SYS_getpriority, a[0] as i32, a[1] as u32),
        nr::SETPRIORITY => host_sys!(libc::SYS_setpriority, a[0] as i32, a[1] as u32, a[2] as i32),
        nr::GETCPU => (|| {
            let c = t.opt_ptr(a[0], 4, perm::W)?;
            let nd = t.opt_ptr(a[1], 4, perm::W)?;
            host_sys!(libc::SYS_getcpu, c, nd, 0)
        })(),
        nr::CAPGET | nr::CAPSET => (|| {
            let h = t.ptr(a[0], 8, perm::W)?;
            let d = t.opt_ptr(a[1], 24, if n == nr::CAPGET { perm::W } else { perm::R })?;
            let nr = if n == nr::CAPGET {
                libc::SYS_capget
            } else {
                libc::SYS_capset
            };
            host_sys!(nr, h, d)
        })(),
        nr::UNSHARE => host_sys!(libc::SYS_unshare, a[0] as i32),
        nr::MEMBARRIER => host_sys!(libc::SYS_membarrier, a[0] as i32, a[1] as u32, a[2] as i32),
        nr::PIDFD_OPEN => host_sys!(libc::SYS_pidfd_open, a[0] as i32, a[1] as u32),
        _ => return None,
    })
}
