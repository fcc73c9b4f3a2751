//! Sockets: passed through; `struct msghdr`/`mmsghdr` hold guest pointers and are rebuilt
//! with host ones (their layouts are the same on arm64 and x86-64).

use super::fs::iovecs;
use super::{host_sys, nr, SysResult};
use crate::linux_user::memory::perm;
use crate::linux_user::Thread;

/// A host msghdr for the guest's at `addr`, plus the iovecs it points to.
struct HostMsg {
    hdr: libc::msghdr,
    _iov: Vec<libc::iovec>,
}

fn host_msg(t: &Thread, addr: u64, recv: bool) -> Result<HostMsg, i32> {
    let b: [u8; 56] = t.read_obj(addr)?;
    let q = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
    let name = q(0);
    let namelen = u32::from_le_bytes(b[8..12].try_into().unwrap_or([0; 4]));
    let (iov, iovlen, ctl, ctllen) = (q(16), q(24), q(32), q(40));
    let flags = i32::from_le_bytes(b[48..52].try_into().unwrap_or([0; 4]));
    let need = if recv { perm::W } else { perm::R };
    let iovs = iovecs(t, iov, iovlen, need)?;
    // SAFETY: a zeroed msghdr is valid; every pointer set below is checked host memory.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_name = t.opt_ptr(name, namelen as u64, need)? as *mut libc::c_void;
    hdr.msg_namelen = namelen;
    hdr.msg_iov = iovs.as_ptr() as *mut libc::iovec;
    hdr.msg_iovlen = iovs.len();
    hdr.msg_control = t.opt_ptr(ctl, ctllen, need)? as *mut libc::c_void;
    hdr.msg_controllen = ctllen as usize;
    hdr.msg_flags = flags;
    Ok(HostMsg { hdr, _iov: iovs })
}

/// After recvmsg: the lengths and flags the kernel updated.
fn msg_back(t: &Thread, addr: u64, h: &libc::msghdr) -> Result<(), i32> {
    t.write_mem(addr + 8, &h.msg_namelen.to_le_bytes())?;
    t.write_mem(addr + 40, &(h.msg_controllen as u64).to_le_bytes())?;
    t.write_mem(addr + 48, &h.msg_flags.to_le_bytes())
}

fn mmsg(t: &Thread, a: &[u64; 6], recv: bool) -> SysResult {
    let (fd, vec, vlen) = (a[0] as i32, a[1], a[2].min(1024));
    let mut msgs = Vec::with_capacity(vlen as usize);
    for i in 0..vlen {
        msgs.push(host_msg(t, vec + i * 64, recv)?);
    }
    let mut hv: Vec<libc::mmsghdr> = msgs
        .iter()
        .map(|m| libc::mmsghdr {
            msg_hdr: m.hdr,
            msg_len: 0,
        })
        .collect();
    let n = if recv {
        let tp = t.opt_ptr(a[4], 16, perm::W)?;
        host_sys!(
            libc::SYS_recvmmsg,
            fd,
            hv.as_mut_ptr(),
            hv.len(),
            a[3] as i32,
            tp
        )?
    } else {
        host_sys!(
            libc::SYS_sendmmsg,
            fd,
            hv.as_mut_ptr(),
            hv.len(),
            a[3] as i32
        )?
    };
    for (i, m) in hv.iter().take(n as usize).enumerate() {
        let g = vec + i as u64 * 64;
        if recv {
            msg_back(t, g, &m.msg_hdr)?;
        }
        t.write_mem(g + 56, &m.msg_len.to_le_bytes())?;
    }
    Ok(n)
}

/// An (address, length-pointer) pair for accept/getsockname/recvfrom.
fn addr_out(t: &Thread, addr: u64, lenp: u64) -> Result<(*mut u8, *mut u8), i32> {
    if addr == 0 || lenp == 0 {
        return Ok((std::ptr::null_mut(), t.opt_ptr(lenp, 4, perm::W)?));
    }
    let len = t.read_u32(lenp)?;
    Ok((t.ptr(addr, len as u64, perm::W)?, t.ptr(lenp, 4, perm::W)?))
}

pub fn call(t: &mut Thread, n: u64, a: &[u64; 6]) -> Option<SysResult> {
    let fd = a[0] as i32;
    Some(match n {
        nr::SOCKET => host_sys!(libc::SYS_socket, a[0] as i32, a[1] as i32, a[2] as i32),
        nr::SOCKETPAIR => t.ptr(a[3], 8, perm::W).and_then(|p| {
            host_sys!(
                libc::SYS_socketpair,
                a[0] as i32,
                a[1] as i32,
                a[2] as i32,
                p
            )
        }),
        nr::BIND | nr::CONNECT => t.ptr(a[1], a[2].min(4096), perm::R).and_then(|p| {
            let nr = if n == nr::BIND {
                libc::SYS_bind
            } else {
                libc::SYS_connect
            };
            host_sys!(nr, fd, p, a[2] as u32)
        }),
        nr::LISTEN => host_sys!(libc::SYS_listen, fd, a[1] as i32),
        nr::SHUTDOWN => host_sys!(libc::SYS_shutdown, fd, a[1] as i32),
        nr::ACCEPT | nr::ACCEPT4 => addr_out(t, a[1], a[2]).and_then(|(p, l)| {
            let flags = if n == nr::ACCEPT { 0 } else { a[3] as i32 };
            host_sys!(libc::SYS_accept4, fd, p, l, flags)
        }),
        nr::GETSOCKNAME | nr::GETPEERNAME => addr_out(t, a[1], a[2]).and_then(|(p, l)| {
            let nr = if n == nr::GETSOCKNAME {
                libc::SYS_getsockname
            } else {
                libc::SYS_getpeername
            };
            host_sys!(nr, fd, p, l)
        }),
        nr::SENDTO => (|| {
            let (b, len) = t.buf(a[1], a[2], perm::R)?;
            let to = t.opt_ptr(a[4], a[5].min(4096), perm::R)?;
            host_sys!(libc::SYS_sendto, fd, b, len, a[3] as i32, to, a[5] as u32)
        })(),
        nr::RECVFROM => (|| {
            let (b, len) = t.buf(a[1], a[2], perm::W)?;
            let (from, l) = addr_out(t, a[4], a[5])?;
            host_sys!(libc::SYS_recvfrom, fd, b, len, a[3] as i32, from, l)
        })(),
        nr::SETSOCKOPT => t.opt_ptr(a[3], a[4].min(4096), perm::R).and_then(|p| {
            host_sys!(
                libc::SYS_setsockopt,
                fd,
                a[1] as i32,
                a[2] as i32,
                p,
                a[4] as u32
            )
        }),
        nr::GETSOCKOPT => (|| {
            let (p, l) = addr_out(t, a[3], a[4])?;
            host_sys!(libc::SYS_getsockopt, fd, a[1] as i32, a[2] as i32, p, l)
        })(),
        nr::SENDMSG => host_msg(t, a[1], false).and_then(|m| {
            host_sys!(
                libc::SYS_sendmsg,
                fd,
                &m.hdr as *const libc::msghdr,
                a[2] as i32
            )
        }),
        nr::RECVMSG => (|| {
            let mut m = host_msg(t, a[1], true)?;
            let r = host_sys!(
                libc::SYS_recvmsg,
                fd,
                &mut m.hdr as *mut libc::msghdr,
                a[2] as i32
            )?;
            msg_back(t, a[1], &m.hdr)?;
            Ok(r)
        })(),
        243 => mmsg(t, a, true),
        269 => mmsg(t, a, false),
        _ => return None,
    })
}
