//! Signal system calls (see [`crate::linux_user::signal`] for the model).

use super::{host_sys, nr, SysResult};
use crate::linux_user::memory::perm;
use crate::linux_user::signal::{self, mirrored, AltStack, SigAction, NSIG, UNBLOCKABLE};
use crate::linux_user::Thread;

fn valid(sig: u64) -> bool {
    (1..=NSIG as u64).contains(&sig)
}

fn rt_sigaction(t: &Thread, sig: u64, act: u64, oact: u64, size: u64) -> SysResult {
    if size != 8 || !valid(sig) {
        return Err(libc::EINVAL);
    }
    let sig = sig as i32;
    let old = t.proc.action(sig);
    if act != 0 {
        if sig == signal::SIGKILL || sig == signal::SIGSTOP {
            return Err(libc::EINVAL);
        }
        let b: [u8; 32] = t.read_obj(act)?;
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let new = SigAction {
            handler: w(0),
            flags: w(1),
            restorer: w(2),
            mask: w(3) & !UNBLOCKABLE,
        };
        if (sig == signal::SIGSEGV || sig == signal::SIGBUS)
            && new.handler > signal::SIG_IGN
            && t.proc.space.check_in_software()
        {
            // The handler must see precise faults: drop the code that accesses unchecked
            // (every thread recompiles before it runs guest code again).
            t.proc.code_changed();
        }
        t.proc.set_action(sig, new);
        signal::mirror_action(sig, &new);
    }
    if oact != 0 {
        let mut b = [0u8; 32];
        for (i, v) in [old.handler, old.flags, old.restorer, old.mask]
            .iter()
            .enumerate()
        {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        t.write_mem(oact, &b)?;
    }
    Ok(0)
}

fn rt_sigprocmask(t: &mut Thread, how: u64, set: u64, oset: u64, size: u64) -> SysResult {
    if size != 8 {
        return Err(libc::EINVAL);
    }
    let old = t.sigmask;
    if set != 0 {
        let s = t.read_u64(set)?;
        let new = match how as i32 {
            libc::SIG_BLOCK => old | s,
            libc::SIG_UNBLOCK => old & !s,
            libc::SIG_SETMASK => s,
            _ => return Err(libc::EINVAL),
        } & !UNBLOCKABLE;
        t.sigmask = new;
        signal::mirror_mask_now(new);
    }
    if oset != 0 {
        t.write_mem(oset, &old.to_le_bytes())?;
    }
    Ok(0)
}

fn sigaltstack(t: &mut Thread, ss: u64, oss: u64) -> SysResult {
    let sp = t.cpu.state.sp();
    let on = t.altstack.on(sp);
    let old = t.altstack;
    if ss != 0 {
        if on {
            return Err(libc::EPERM);
        }
        let b: [u8; 24] = t.read_obj(ss)?;
        let new = AltStack {
            sp: u64::from_le_bytes(b[0..8].try_into().unwrap_or([0; 8])),
            flags: u32::from_le_bytes(b[8..12].try_into().unwrap_or([0; 4])),
            size: u64::from_le_bytes(b[16..24].try_into().unwrap_or([0; 8])),
        };
        if new.flags & signal::SS_DISABLE != 0 {
            t.altstack = AltStack::default();
        } else {
            if new.flags & !(signal::SS_ONSTACK | (1 << 31)) != 0 {
                return Err(libc::EINVAL);
            }
            if new.size < signal::MINSIGSTKSZ {
                return Err(libc::ENOMEM);
            }
            t.altstack = AltStack { flags: 0, ..new };
        }
    }
    if oss != 0 {
        let mut b = [0u8; 24];
        let flags = if old.flags & signal::SS_DISABLE != 0 {
            signal::SS_DISABLE
        } else if on {
            signal::SS_ONSTACK
        } else {
            0
        };
        b[0..8].copy_from_slice(&old.sp.to_le_bytes());
        b[8..12].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&old.size.to_le_bytes());
        t.write_mem(oss, &b)?;
    }
    Ok(0)
}

fn rt_sigsuspend(t: &mut Thread, mask: u64, size: u64) -> SysResult {
    if size != 8 {
        return Err(libc::EINVAL);
    }
    let m = t.read_u64(mask)? & !UNBLOCKABLE;
    t.saved_mask = Some(t.sigmask);
    t.sigmask = m;
    if signal::pending_mask(t) & !m != 0 {
        return Err(libc::EINTR);
    }
    let _ = host_sys!(libc::SYS_rt_sigsuspend, &m as *const u64, 8);
    Err(libc::EINTR)
}

fn rt_sigtimedwait(t: &mut Thread, set: u64, info: u64, ts: u64, size: u64) -> SysResult {
    if size != 8 {
        return Err(libc::EINVAL);
    }
    let s = t.read_u64(set)? & !UNBLOCKABLE;
    let ip = t.opt_ptr(info, 128, perm::W)?;
    let tp = t.opt_ptr(ts, 16, perm::R)?;
    host_sys!(libc::SYS_rt_sigtimedwait, &s as *const u64, ip, tp, 8)
}

fn own_pid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

fn kill(_t: &Thread, pid: u64, sig: u64) -> SysResult {
    let (pid, sig) = (pid as i32, sig as i32);
    if sig != 0 && !valid(sig as u64) {
        return Err(libc::EINVAL);
    }
    if pid == own_pid()
        && sig != 0
        && !mirrored(sig)
        && sig != signal::SIGKILL
        && sig != signal::SIGSTOP
    {
        signal::queue_internal(0, sig, &signal::user_info(sig, signal::SI_USER));
        return Ok(0);
    }
    host_sys!(libc::SYS_kill, pid, sig)
}

fn tgkill(_t: &Thread, tgid: i32, tid: i32, sig: u64) -> SysResult {
    let sig = sig as i32;
    if sig != 0 && !valid(sig as u64) {
        return Err(libc::EINVAL);
    }
    let ours = tgid == -1 || tgid == own_pid();
    if ours
        && sig != 0
        && !mirrored(sig)
        && sig != signal::SIGKILL
        && sig != signal::SIGSTOP
        && signal::queue_internal(tid, sig, &signal::user_info(sig, signal::SI_TKILL))
    {
        return Ok(0);
    }
    if tgid == -1 {
        host_sys!(libc::SYS_tkill, tid, sig)
    } else {
        host_sys!(libc::SYS_tgkill, tgid, tid, sig)
    }
}

pub fn call(t: &mut Thread, n: u64, a: &[u64; 6]) -> Option<SysResult> {
    Some(match n {
        nr::RT_SIGACTION => rt_sigaction(t, a[0], a[1], a[2], a[3]),
        nr::RT_SIGPROCMASK => rt_sigprocmask(t, a[0], a[1], a[2], a[3]),
        nr::RT_SIGPENDING => {
            let p = signal::pending_set(t) & t.sigmask;
            t.write_mem(a[0], &p.to_le_bytes()).map(|_| 0)
        }
        nr::RT_SIGSUSPEND => rt_sigsuspend(t, a[0], a[1]),
        nr::RT_SIGTIMEDWAIT => rt_sigtimedwait(t, a[0], a[1], a[2], a[3]),
        nr::SIGALTSTACK => sigaltstack(t, a[0], a[1]),
        nr::KILL => kill(t, a[0], a[1]),
        nr::TKILL => tgkill(t, -1, a[0] as i32, a[1]),
        nr::TGKILL => tgkill(t, a[0] as i32, a[1] as i32, a[2]),
        nr::RT_SIGQUEUEINFO => t
            .ptr(a[2], 128, perm::R)
            .and_then(|p| host_sys!(libc::SYS_rt_sigqueueinfo, a[0] as i32, a[1] as i32, p)),
        240 => t.ptr(a[3], 128, perm::R).and_then(|p| {
            host_sys!(
                libc::SYS_rt_tgsigqueueinfo,
                a[0] as i32,
                a[1] as i32,
                a[2] as i32,
                p
            )
        }),
        nr::PIDFD_SEND_SIGNAL => t.opt_ptr(a[2], 128, perm::R).and_then(|p| {
            host_sys!(
                libc::SYS_pidfd_send_signal,
                a[0] as i32,
                a[1] as i32,
                p,
                a[3] as u32
            )
        }),
        74 => (|| {
            // signalfd4(fd, mask, size, flags)
            if a[2] != 8 {
                return Err(libc::EINVAL);
            }
            let m = t.read_u64(a[1])?;
            host_sys!(
                libc::SYS_signalfd4,
                a[0] as i32,
                &m as *const u64,
                8,
                super::host_open_flags(a[3])
            )
        })(),
        _ => return None,
    })
}
