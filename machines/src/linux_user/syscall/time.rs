//! Clocks, sleeps and timers: the structures (timespec, timeval, itimerspec, sigevent) have
//! the same layout on arm64 and x86-64, so these are pointer translations.

use super::{host_sys, nr, SysResult};
use crate::linux_user::memory::perm;
use crate::linux_user::Thread;

pub fn call(t: &mut Thread, n: u64, a: &[u64; 6]) -> Option<SysResult> {
    let w = perm::W;
    let r = perm::R;
    Some(match n {
        nr::CLOCK_GETTIME => t
            .ptr(a[1], 16, w)
            .and_then(|p| host_sys!(libc::SYS_clock_gettime, a[0] as i32, p)),
        nr::CLOCK_GETRES => t
            .opt_ptr(a[1], 16, w)
            .and_then(|p| host_sys!(libc::SYS_clock_getres, a[0] as i32, p)),
        nr::GETTIMEOFDAY => (|| {
            let tv = t.opt_ptr(a[0], 16, w)?;
            let tz = t.opt_ptr(a[1], 8, w)?;
            host_sys!(libc::SYS_gettimeofday, tv, tz)
        })(),
        nr::NANOSLEEP => (|| {
            let req = t.ptr(a[0], 16, r)?;
            let rem = t.opt_ptr(a[1], 16, w)?;
            host_sys!(libc::SYS_nanosleep, req, rem)
        })(),
        nr::CLOCK_NANOSLEEP => (|| {
            let req = t.ptr(a[2], 16, r)?;
            let rem = t.opt_ptr(a[3], 16, w)?;
            host_sys!(
                libc::SYS_clock_nanosleep,
                a[0] as i32,
                a[1] as i32,
                req,
                rem
            )
        })(),
        nr::TIMES => t
            .opt_ptr(a[0], 32, w)
            .and_then(|p| host_sys!(libc::SYS_times, p)),
        nr::GETITIMER => t
            .ptr(a[1], 32, w)
            .and_then(|p| host_sys!(libc::SYS_getitimer, a[0] as i32, p)),
        nr::SETITIMER => (|| {
            let new = t.opt_ptr(a[1], 32, r)?;
            let old = t.opt_ptr(a[2], 32, w)?;
            host_sys!(libc::SYS_setitimer, a[0] as i32, new, old)
        })(),
        nr::TIMER_CREATE => (|| {
            let ev = t.opt_ptr(a[1], 64, r)?;
            let id = t.ptr(a[2], 4, w)?;
            host_sys!(libc::SYS_timer_create, a[0] as i32, ev, id)
        })(),
        nr::TIMER_SETTIME => (|| {
            let new = t.ptr(a[2], 32, r)?;
            let old = t.opt_ptr(a[3], 32, w)?;
            host_sys!(libc::SYS_timer_settime, a[0] as i32, a[1] as i32, new, old)
        })(),
        nr::TIMER_GETTIME => t
            .ptr(a[1], 32, w)
            .and_then(|p| host_sys!(libc::SYS_timer_gettime, a[0] as i32, p)),
        nr::TIMER_GETOVERRUN => host_sys!(libc::SYS_timer_getoverrun, a[0] as i32),
        nr::TIMER_DELETE => host_sys!(libc::SYS_timer_delete, a[0] as i32),
        nr::TIMERFD_CREATE => host_sys!(
            libc::SYS_timerfd_create,
            a[0] as i32,
            super::host_open_flags(a[1])
        ),
        nr::TIMERFD_SETTIME => (|| {
            let new = t.ptr(a[2], 32, r)?;
            let old = t.opt_ptr(a[3], 32, w)?;
            host_sys!(
                libc::SYS_timerfd_settime,
                a[0] as i32,
                a[1] as i32,
                new,
                old
            )
        })(),
        nr::TIMERFD_GETTIME => t
            .ptr(a[1], 32, w)
            .and_then(|p| host_sys!(libc::SYS_timerfd_gettime, a[0] as i32, p)),
        _ => return None,
    })
}
