//! Files, directories, descriptors and I/O multiplexing.

use super::{cstring, host_sys, nr, SysResult};
use crate::linux_user::memory::perm;
use crate::linux_user::Thread;
use std::ffi::CString;
use std::path::PathBuf;

const AT_FDCWD: i64 = -100;

// Open flags that differ between arm64 (asm-generic with arm64's overrides) and the host.
const G_O_DIRECTORY: u64 = 0o40000;
const G_O_NOFOLLOW: u64 = 0o100000;
const G_O_DIRECT: u64 = 0o200000;
const G_O_LARGEFILE: u64 = 0o400000;
/// The host kernel's O_LARGEFILE (libc reports 0 for it on 64-bit hosts).
#[cfg(target_arch = "x86_64")]
const H_O_LARGEFILE: i64 = 0o100000;
#[cfg(not(target_arch = "x86_64"))]
const H_O_LARGEFILE: i64 = 0o400000;

const SWAPPED: [(u64, i64); 3] = [
    (G_O_DIRECTORY, libc::O_DIRECTORY as i64),
    (G_O_NOFOLLOW, libc::O_NOFOLLOW as i64),
    (G_O_DIRECT, libc::O_DIRECT as i64),
];

/// Guest open(2) flags to host flags.
pub fn host_open_flags(g: u64) -> i64 {
    let moved = G_O_DIRECTORY | G_O_NOFOLLOW | G_O_DIRECT | G_O_LARGEFILE;
    let mut h = (g & !moved) as i64;
    for (gb, hb) in SWAPPED {
        if g & gb != 0 {
            h |= hb;
        }
    }
    h
}

/// Host open flags (F_GETFL) to the guest's.
pub fn guest_open_flags(h: i64) -> u64 {
    let moved =
        libc::O_DIRECTORY as i64 | libc::O_NOFOLLOW as i64 | libc::O_DIRECT as i64 | H_O_LARGEFILE;
    let mut g = (h & !moved) as u64;
    for (gb, hb) in SWAPPED {
        if h & hb != 0 {
            g |= gb;
        }
    }
    if h & H_O_LARGEFILE != 0 {
        g |= G_O_LARGEFILE;
    }
    g
}

/// Convert a host `struct stat` to arm64's (asm-generic) 128-byte layout.
pub fn guest_stat(s: &libc::stat) -> [u8; 128] {
    let mut b = [0u8; 128];
    let mut put =
        |off: usize, v: u64, n: usize| b[off..off + n].copy_from_slice(&v.to_le_bytes()[..n]);
    put(0, s.st_dev, 8);
    put(8, s.st_ino, 8);
    put(16, s.st_mode as u64, 4);
    put(20, s.st_nlink, 4);
    put(24, s.st_uid as u64, 4);
    put(28, s.st_gid as u64, 4);
    put(32, s.st_rdev, 8);
    put(48, s.st_size as u64, 8);
    put(56, s.st_blksize as u64, 4);
    put(64, s.st_blocks as u64, 8);
    put(72, s.st_atime as u64, 8);
    put(80, s.st_atime_nsec as u64, 8);
    put(88, s.st_mtime as u64, 8);
    put(96, s.st_mtime_nsec as u64, 8);
    put(104, s.st_ctime as u64, 8);
    put(112, s.st_ctime_nsec as u64, 8);
    b
}

/// What a /proc path names, for the entries the guest must see as its own.
enum ProcSelf {
    Maps,
    Exe,
    Auxv,
}

fn proc_self(path: &[u8]) -> Option<ProcSelf> {
    let rest = path.strip_prefix(b"/proc/")?;
    let slash = rest.iter().position(|&c| c == b'/')?;
    let (who, what) = (&rest[..slash], &rest[slash + 1..]);
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() }.to_string();
    let me = who == b"self" || who == b"thread-self" || who == pid.as_bytes();
    if !me {
        return None;
    }
    match what {
        b"maps" => Some(ProcSelf::Maps),
        b"exe" => Some(ProcSelf::Exe),
        b"auxv" => Some(ProcSelf::Auxv),
        _ => None,
    }
}

impl Thread {
    /// The host path for a guest path: with a sysroot, an absolute path is looked up there
    /// first (as qemu-aarch64 -L does).
    pub fn host_path(&self, p: &[u8]) -> Vec<u8> {
        if let Some(root) = &self.proc.sysroot {
            if p.len() > 1 && p[0] == b'/' {
                let keep_host = [&b"/proc"[..], b"/dev", b"/sys"]
                    .iter()
                    .any(|d| p.starts_with(d) && (p.len() == d.len() || p[d.len()] == b'/'));
                if !keep_host {
                    let mut cand = root.as_os_str().as_encoded_bytes().to_vec();
                    cand.extend_from_slice(p);
                    if let Ok(c) = CString::new(cand.clone()) {
                        // SAFETY: c is a valid C string; st is a plain output buffer.
                        let ok = unsafe {
                            let mut st: libc::stat = std::mem::zeroed();
                            libc::lstat(c.as_ptr(), &mut st) == 0
                        };
                        if ok {
                            return cand;
                        }
                    }
                }
            }
        }
        p.to_vec()
    }

    /// Read a guest path argument and translate it.
    pub fn path_arg(&self, addr: u64) -> Result<CString, i32> {
        let p = self.cstr(addr)?;
        cstring(self.host_path(&p))
    }

    /// A host path buffer for an *at call whose path may be empty (AT_EMPTY_PATH).
    fn path_or_empty(&self, addr: u64) -> Result<CString, i32> {
        if addr == 0 {
            return Ok(CString::default());
        }
        self.path_arg(addr)
    }
}

fn memfd_with(name: &str, data: &[u8], cloexec: bool) -> SysResult {
    let cname = CString::new(name).unwrap_or_default();
    let flags = if cloexec { libc::MFD_CLOEXEC } else { 0 };
    let fd = host_sys!(libc::SYS_memfd_create, cname.as_ptr(), flags)?;
    let mut off = 0;
    while off < data.len() {
        let n = host_sys!(libc::SYS_write, fd, data[off..].as_ptr(), data.len() - off)?;
        if n == 0 {
            break;
        }
        off += n as usize;
    }
    host_sys!(libc::SYS_lseek, fd, 0, libc::SEEK_SET)?;
    Ok(fd)
}

fn openat(t: &Thread, dirfd: u64, path: u64, flags: u64, mode: u64) -> SysResult {
    let p = t.cstr(path)?;
    let hflags = host_open_flags(flags);
    let cloexec = hflags & libc::O_CLOEXEC as i64 != 0;
    match proc_self(&p) {
        Some(ProcSelf::Maps) => {
            let text = t.proc.mm().render_maps();
            return memfd_with("maps", text.as_bytes(), cloexec);
        }
        Some(ProcSelf::Auxv) => return memfd_with("auxv", &t.proc.auxv, cloexec),
        Some(ProcSelf::Exe) => {
            let c = cstring(t.proc.exe_host.as_os_str().as_encoded_bytes().to_vec())?;
            return host_sys!(libc::SYS_openat, AT_FDCWD, c.as_ptr(), hflags, mode);
        }
        None => {}
    }
    let c = cstring(t.host_path(&p))?;
    host_sys!(
        libc::SYS_openat,
        dirfd as i32 as i64,
        c.as_ptr(),
        hflags,
        mode
    )
}

/// Host iovecs for a guest iovec array; each buffer shortened to what is accessible.
pub fn iovecs(t: &Thread, addr: u64, cnt: u64, need: u8) -> Result<Vec<libc::iovec>, i32> {
    if cnt > 1024 {
        return Err(libc::EINVAL);
    }
    let mut v = Vec::with_capacity(cnt as usize);
    for i in 0..cnt {
        let base = t.read_u64(addr + i * 16)?;
        let len = t.read_u64(addr + i * 16 + 8)?;
        if len == 0 {
            v.push(libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            });
            continue;
        }
        let (p, n) = t.buf(base, len, need)?;
        v.push(libc::iovec {
            iov_base: p as *mut libc::c_void,
            iov_len: n as usize,
        });
        if n < len {
            break;
        }
    }
    Ok(v)
}

fn stat_out(t: &Thread, r: i64, st: &libc::stat, buf: u64) -> SysResult {
    let _ = r;
    t.write_mem(buf, &guest_stat(st))?;
    Ok(0)
}

fn fstatat(t: &Thread, dirfd: u64, path: u64, buf: u64, flags: u64) -> SysResult {
    let p = if path == 0 { Vec::new() } else { t.cstr(path)? };
    let c = match proc_self(&p) {
        Some(ProcSelf::Exe) if flags & libc::AT_SYMLINK_NOFOLLOW as u64 == 0 => {
            cstring(t.proc.exe_host.as_os_str().as_encoded_bytes().to_vec())?
        }
        _ => cstring(t.host_path(&p))?,
    };
    // SAFETY: zeroed stat is a valid output buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let r = host_sys!(
        libc::SYS_newfstatat,
        dirfd as i32 as i64,
        c.as_ptr(),
        &mut st as *mut libc::stat,
        flags
    )?;
    stat_out(t, r as i64, &st, buf)
}

fn readlinkat(t: &Thread, dirfd: u64, path: u64, buf: u64, size: u64) -> SysResult {
    let p = t.cstr(path)?;
    if let Some(ProcSelf::Exe) = proc_self(&p) {
        let s = t.proc.exe_guest.as_bytes();
        let n = s.len().min(size as usize);
        t.write_mem(buf, &s[..n])?;
        return Ok(n as u64);
    }
    let c = cstring(t.host_path(&p))?;
    let (hb, n) = t.buf(buf, size, perm::W)?;
    host_sys!(libc::SYS_readlinkat, dirfd as i32 as i64, c.as_ptr(), hb, n)
}

fn fcntl(t: &Thread, fd: u64, cmd: u64, arg: u64) -> SysResult {
    let fd = fd as i32 as i64;
    match cmd as i32 {
        libc::F_GETFL => host_sys!(libc::SYS_fcntl, fd, cmd).map(|f| guest_open_flags(f as i64)),
        libc::F_SETFL => host_sys!(libc::SYS_fcntl, fd, cmd, host_open_flags(arg)),
        libc::F_GETLK
        | libc::F_SETLK
        | libc::F_SETLKW
        | libc::F_OFD_GETLK
        | libc::F_OFD_SETLK
        | libc::F_OFD_SETLKW => {
            let p = t.ptr(arg, 32, perm::W)?;
            host_sys!(libc::SYS_fcntl, fd, cmd, p)
        }
        15 | 16 => {
            let p = t.ptr(arg, 8, perm::W)?;
            host_sys!(libc::SYS_fcntl, fd, cmd, p)
        }
        _ => host_sys!(libc::SYS_fcntl, fd, cmd, arg),
    }
}

fn ioctl(t: &Thread, fd: u64, req: u64, arg: u64) -> SysResult {
    let fd = fd as i32 as i64;
    // (request, bytes at the pointer argument, whether it is written) — 0 bytes: an int.
    let (size, out): (u64, bool) = match req as u32 {
        0x5401 => (36, true),                            // TCGETS
        0x5402..=0x5404 => (36, false),                  // TCSETS, TCSETSW, TCSETSF
        0x5409..=0x540b | 0x540e => (0, false),          // TCSBRK, TCXONC, TCFLSH, TIOCSCTTY
        0x540f | 0x5411 | 0x541b | 0x5429 => (4, true),  // TIOCGPGRP, TIOCOUTQ, FIONREAD, TIOCGSID
        0x5410 | 0x5421 | 0x5452 => (4, false),          // TIOCSPGRP, FIONBIO, FIOASYNC
        0x5413 => (8, true),                             // TIOCGWINSZ
        0x5414 => (8, false),                            // TIOCSWINSZ
        0x5422 | 0x5450 | 0x5451 | 0x5441 => (0, false), // TIOCNOTTY, FIONCLEX, FIOCLEX, TIOCGPTPEER
        0x8004_5430 => (4, true),                        // TIOCGPTN
        0x4004_5431 => (4, false),                       // TIOCSPTLCK
        _ => {
            log::debug!("ioctl {req:#x} on fd {fd}: ENOTTY");
            return Err(libc::ENOTTY);
        }
    };
    if size == 0 {
        return host_sys!(libc::SYS_ioctl, fd, req, arg);
    }
    let p = t.ptr(arg, size, if out { perm::W } else { perm::R })?;
    host_sys!(libc::SYS_ioctl, fd, req, p)
}

/// The arm64 `struct epoll_event` is 16 bytes (u32 events, padding, u64 data); the x86-64
/// host's is packed into 12.
fn epoll_ctl(t: &Thread, epfd: u64, op: u64, fd: u64, ev: u64) -> SysResult {
    let mut hev = libc::epoll_event { events: 0, u64: 0 };
    let p = if ev != 0 && op as i32 != libc::EPOLL_CTL_DEL {
        hev.events = t.read_u32(ev)?;
        hev.u64 = t.read_u64(ev + 8)?;
        &mut hev as *mut libc::epoll_event
    } else {
        std::ptr::null_mut()
    };
    host_sys!(libc::SYS_epoll_ctl, epfd, op, fd, p)
}

fn epoll_wait(t: &mut Thread, a: &[u64; 6], v2: bool) -> SysResult {
    let (epfd, events, max) = (a[0], a[1], a[2] as i32);
    if !(1..=65536).contains(&max) {
        return Err(libc::EINVAL);
    }
    t.ptr(events, max as u64 * 16, perm::W)?;
    let mut hev = vec![libc::epoll_event { events: 0, u64: 0 }; max as usize];
    let mask = if a[4] != 0 {
        Some(t.read_u64(a[4])?)
    } else {
        None
    };
    let hmask = mask.map(|m| m & !crate::linux_user::signal::UNBLOCKABLE);
    let mp = hmask.as_ref().map_or(std::ptr::null(), |m| m as *const u64);
    let n = if v2 {
        let tp = t.opt_ptr(a[3], 16, perm::R)?;
        host_sys!(
            libc::SYS_epoll_pwait2,
            epfd,
            hev.as_mut_ptr(),
            max,
            tp,
            mp,
            8
        )
    } else {
        host_sys!(
            libc::SYS_epoll_pwait,
            epfd,
            hev.as_mut_ptr(),
            max,
            a[3] as i32,
            mp,
            8
        )
    };
    if let Some(m) = mask {
        if n == Err(libc::EINTR) {
            t.saved_mask = Some(t.sigmask);
            t.sigmask = m;
        }
    }
    let n = n?;
    let mut out = Vec::with_capacity(n as usize * 16);
    for e in &hev[..n as usize] {
        let (ev, data) = (e.events, e.u64);
        out.extend_from_slice(&ev.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&data.to_le_bytes());
    }
    t.write_mem(events, &out)?;
    Ok(n)
}

/// A guest sigset argument for ppoll/pselect6: the host mask to use and the mask the guest
/// sees during the call.
fn temp_mask(t: &Thread, addr: u64) -> Result<Option<u64>, i32> {
    if addr == 0 {
        return Ok(None);
    }
    Ok(Some(
        t.read_u64(addr)? & !crate::linux_user::signal::UNBLOCKABLE,
    ))
}

fn after_temp_mask(t: &mut Thread, mask: Option<u64>, r: &SysResult) {
    if let (Some(m), Err(libc::EINTR)) = (mask, r) {
        t.saved_mask = Some(t.sigmask);
        t.sigmask = m;
    }
}

fn ppoll(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let (fds, nfds) = (a[0], a[1]);
    if nfds > 65536 {
        return Err(libc::EINVAL);
    }
    let fp = t.ptr(fds, nfds * 8, perm::W)?;
    let tp = t.opt_ptr(a[2], 16, perm::W)?;
    let mask = temp_mask(t, a[3])?;
    let mp = mask.as_ref().map_or(std::ptr::null(), |m| m as *const u64);
    let r = host_sys!(libc::SYS_ppoll, fp, nfds, tp, mp, 8);
    after_temp_mask(t, mask, &r);
    r
}

fn pselect6(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let n = a[0];
    if n > 65536 {
        return Err(libc::EINVAL);
    }
    let bytes = n.div_ceil(64) * 8;
    let r = t.opt_ptr(a[1], bytes, perm::W)?;
    let w = t.opt_ptr(a[2], bytes, perm::W)?;
    let e = t.opt_ptr(a[3], bytes, perm::W)?;
    let tp = t.opt_ptr(a[4], 16, perm::W)?;
    let mask = if a[5] != 0 {
        let set = t.read_u64(a[5])?;
        temp_mask(t, set)?
    } else {
        None
    };
    let sig = mask.as_ref().map(|m| [m as *const u64 as u64, 8u64]);
    let sp = sig.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    let res = host_sys!(libc::SYS_pselect6, n, r, w, e, tp, sp);
    after_temp_mask(t, mask, &res);
    res
}

fn pipe2(t: &Thread, fds: u64, flags: u64) -> SysResult {
    t.ptr(fds, 8, perm::W)?;
    let mut h = [0i32; 2];
    host_sys!(libc::SYS_pipe2, h.as_mut_ptr(), host_open_flags(flags))?;
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&h[0].to_le_bytes());
    b[4..].copy_from_slice(&h[1].to_le_bytes());
    t.write_mem(fds, &b)?;
    Ok(0)
}

fn getcwd(t: &Thread, buf: u64, size: u64) -> SysResult {
    let cwd = std::env::current_dir().map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))?;
    let mut s = cwd.as_os_str().as_encoded_bytes().to_vec();
    // Inside the sysroot, show the guest's view.
    if let Some(root) = &t.proc.sysroot {
        if let Ok(rest) = cwd.strip_prefix(root) {
            let mut g = b"/".to_vec();
            g.extend_from_slice(rest.as_os_str().as_encoded_bytes());
            s = g;
        }
    }
    s.push(0);
    if s.len() as u64 > size {
        return Err(libc::ERANGE);
    }
    t.write_mem(buf, &s)?;
    Ok(s.len() as u64)
}

fn off_ptr(t: &Thread, addr: u64) -> Result<*mut u8, i32> {
    t.opt_ptr(addr, 8, perm::W)
}

pub fn call(t: &mut Thread, n: u64, a: &[u64; 6]) -> Option<SysResult> {
    let fd = a[0] as i32 as i64;
    Some(match n {
        nr::OPENAT => openat(t, a[0], a[1], a[2], a[3]),
        nr::OPENAT2 => Err(libc::ENOSYS),
        nr::CLOSE => host_sys!(libc::SYS_close, fd),
        nr::CLOSE_RANGE => host_sys!(libc::SYS_close_range, a[0] as u32, a[1] as u32, a[2] as u32),
        nr::READ => t
            .buf(a[1], a[2], perm::W)
            .and_then(|(p, len)| host_sys!(libc::SYS_read, fd, p, len)),
        nr::WRITE => t
            .buf(a[1], a[2], perm::R)
            .and_then(|(p, len)| host_sys!(libc::SYS_write, fd, p, len)),
        nr::PREAD64 => t
            .buf(a[1], a[2], perm::W)
            .and_then(|(p, len)| host_sys!(libc::SYS_pread64, fd, p, len, a[3])),
        nr::PWRITE64 => t
            .buf(a[1], a[2], perm::R)
            .and_then(|(p, len)| host_sys!(libc::SYS_pwrite64, fd, p, len, a[3])),
        nr::READV | nr::WRITEV | nr::PREADV | nr::PWRITEV | nr::PREADV2 | nr::PWRITEV2 => {
            let reading = matches!(n, nr::READV | nr::PREADV | nr::PREADV2);
            let v = match iovecs(t, a[1], a[2], if reading { perm::W } else { perm::R }) {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            };
            let (p, c) = (v.as_ptr(), v.len());
            match n {
                nr::READV => host_sys!(libc::SYS_readv, fd, p, c),
                nr::WRITEV => host_sys!(libc::SYS_writev, fd, p, c),
                nr::PREADV => host_sys!(libc::SYS_preadv, fd, p, c, a[3], 0),
                nr::PWRITEV => host_sys!(libc::SYS_pwritev, fd, p, c, a[3], 0),
                nr::PREADV2 => host_sys!(libc::SYS_preadv2, fd, p, c, a[3], a[4], a[5]),
                _ => host_sys!(libc::SYS_pwritev2, fd, p, c, a[3], a[4], a[5]),
            }
        }
        nr::LSEEK => host_sys!(libc::SYS_lseek, fd, a[1], a[2] as i32),
        nr::GETDENTS64 => t
            .buf(a[1], a[2], perm::W)
            .and_then(|(p, len)| host_sys!(libc::SYS_getdents64, fd, p, len)),
        nr::NEWFSTATAT => fstatat(t, a[0], a[1], a[2], a[3]),
        nr::FSTAT => {
            // SAFETY: zeroed stat is a valid output buffer.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            host_sys!(libc::SYS_fstat, fd, &mut st as *mut libc::stat)
                .and_then(|r| stat_out(t, r as i64, &st, a[1]))
        }
        nr::STATX => (|| {
            let c = t.path_or_empty(a[1])?;
            let p = t.ptr(a[4], 256, perm::W)?;
            host_sys!(libc::SYS_statx, fd, c.as_ptr(), a[2] as i32, a[3] as u32, p)
        })(),
        nr::READLINKAT => readlinkat(t, a[0], a[1], a[2], a[3]),
        nr::FACCESSAT => t
            .path_arg(a[1])
            .and_then(|c| host_sys!(libc::SYS_faccessat, fd, c.as_ptr(), a[2] as i32)),
        nr::FACCESSAT2 => t.path_or_empty(a[1]).and_then(|c| {
            host_sys!(
                libc::SYS_faccessat2,
                fd,
                c.as_ptr(),
                a[2] as i32,
                a[3] as i32
            )
        }),
        nr::FCNTL => fcntl(t, a[0], a[1], a[2]),
        nr::IOCTL => ioctl(t, a[0], a[1], a[2]),
        nr::DUP => host_sys!(libc::SYS_dup, fd),
        nr::DUP3 => host_sys!(libc::SYS_dup3, fd, a[1] as i32, host_open_flags(a[2])),
        nr::PIPE2 => pipe2(t, a[0], a[1]),
        nr::MKDIRAT => t
            .path_arg(a[1])
            .and_then(|c| host_sys!(libc::SYS_mkdirat, fd, c.as_ptr(), a[2] as u32)),
        nr::MKNODAT => t
            .path_arg(a[1])
            .and_then(|c| host_sys!(libc::SYS_mknodat, fd, c.as_ptr(), a[2] as u32, a[3])),
        nr::UNLINKAT => t
            .path_arg(a[1])
            .and_then(|c| host_sys!(libc::SYS_unlinkat, fd, c.as_ptr(), a[2] as i32)),
        nr::SYMLINKAT => (|| {
            let target = cstring(t.cstr(a[0])?)?;
            let link = t.path_arg(a[2])?;
            host_sys!(
                libc::SYS_symlinkat,
                target.as_ptr(),
                a[1] as i32,
                link.as_ptr()
            )
        })(),
        nr::LINKAT => (|| {
            let old = t.path_or_empty(a[1])?;
            let new = t.path_arg(a[3])?;
            host_sys!(
                libc::SYS_linkat,
                fd,
                old.as_ptr(),
                a[2] as i32,
                new.as_ptr(),
                a[4] as i32
            )
        })(),
        nr::RENAMEAT | nr::RENAMEAT2 => (|| {
            let old = t.path_arg(a[1])?;
            let new = t.path_arg(a[3])?;
            let flags = if n == nr::RENAMEAT { 0 } else { a[4] as u32 };
            host_sys!(
                libc::SYS_renameat2,
                fd,
                old.as_ptr(),
                a[2] as i32,
                new.as_ptr(),
                flags
            )
        })(),
        nr::FCHMOD => host_sys!(libc::SYS_fchmod, fd, a[1] as u32),
        nr::FCHMODAT => t
            .path_arg(a[1])
            .and_then(|c| host_sys!(libc::SYS_fchmodat, fd, c.as_ptr(), a[2] as u32)),
        nr::FCHOWN => host_sys!(libc::SYS_fchown, fd, a[1] as u32, a[2] as u32),
        nr::FCHOWNAT => t.path_or_empty(a[1]).and_then(|c| {
            host_sys!(
                libc::SYS_fchownat,
                fd,
                c.as_ptr(),
                a[2] as u32,
                a[3] as u32,
                a[4] as i32
            )
        }),
        nr::UTIMENSAT => (|| {
            let c = if a[1] == 0 {
                None
            } else {
                Some(t.path_arg(a[1])?)
            };
            let cp = c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
            let tp = t.opt_ptr(a[2], 32, perm::R)?;
            host_sys!(libc::SYS_utimensat, fd, cp, tp, a[3] as i32)
        })(),
        nr::TRUNCATE => t
            .path_arg(a[0])
            .and_then(|c| host_sys!(libc::SYS_truncate, c.as_ptr(), a[1])),
        nr::FTRUNCATE => host_sys!(libc::SYS_ftruncate, fd, a[1]),
        nr::FALLOCATE => host_sys!(libc::SYS_fallocate, fd, a[1] as i32, a[2], a[3]),
        nr::FSYNC => host_sys!(libc::SYS_fsync, fd),
        nr::FDATASYNC => host_sys!(libc::SYS_fdatasync, fd),
        nr::SYNC => host_sys!(libc::SYS_sync),
        nr::SYNCFS => host_sys!(libc::SYS_syncfs, fd),
        nr::FLOCK => host_sys!(libc::SYS_flock, fd, a[1] as i32),
        nr::FADVISE64 => host_sys!(libc::SYS_fadvise64, fd, a[1], a[2], a[3] as i32),
        nr::READAHEAD => host_sys!(libc::SYS_readahead, fd, a[1], a[2]),
        nr::GETCWD => getcwd(t, a[0], a[1]),
        nr::CHDIR => t
            .path_arg(a[0])
            .and_then(|c| host_sys!(libc::SYS_chdir, c.as_ptr())),
        nr::FCHDIR => host_sys!(libc::SYS_fchdir, fd),
        nr::CHROOT => t
            .path_arg(a[0])
            .and_then(|c| host_sys!(libc::SYS_chroot, c.as_ptr())),
        nr::STATFS => (|| {
            let c = t.path_arg(a[0])?;
            let p = t.ptr(a[1], 120, perm::W)?;
            host_sys!(libc::SYS_statfs, c.as_ptr(), p)
        })(),
        nr::FSTATFS => t
            .ptr(a[1], 120, perm::W)
            .and_then(|p| host_sys!(libc::SYS_fstatfs, fd, p)),
        nr::SENDFILE => {
            off_ptr(t, a[2]).and_then(|p| host_sys!(libc::SYS_sendfile, fd, a[1] as i32, p, a[3]))
        }
        nr::COPY_FILE_RANGE => (|| {
            let i = off_ptr(t, a[1])?;
            let o = off_ptr(t, a[3])?;
            host_sys!(
                libc::SYS_copy_file_range,
                fd,
                i,
                a[2] as i32,
                o,
                a[4],
                a[5] as u32
            )
        })(),
        nr::SPLICE => (|| {
            let i = off_ptr(t, a[1])?;
            let o = off_ptr(t, a[3])?;
            host_sys!(libc::SYS_splice, fd, i, a[2] as i32, o, a[4], a[5] as u32)
        })(),
        nr::TEE => host_sys!(libc::SYS_tee, fd, a[1] as i32, a[2], a[3] as u32),
        nr::PPOLL => ppoll(t, a),
        nr::PSELECT6 => pselect6(t, a),
        nr::EPOLL_CREATE1 => host_sys!(libc::SYS_epoll_create1, host_open_flags(a[0])),
        nr::EPOLL_CTL => epoll_ctl(t, a[0], a[1], a[2], a[3]),
        nr::EPOLL_PWAIT => epoll_wait(t, a, false),
        nr::EPOLL_PWAIT2 => epoll_wait(t, a, true),
        nr::EVENTFD2 => host_sys!(libc::SYS_eventfd2, a[0] as u32, host_open_flags(a[1])),
        nr::INOTIFY_INIT1 => host_sys!(libc::SYS_inotify_init1, host_open_flags(a[0])),
        nr::INOTIFY_ADD_WATCH => t
            .path_arg(a[1])
            .and_then(|c| host_sys!(libc::SYS_inotify_add_watch, fd, c.as_ptr(), a[2] as u32)),
        nr::INOTIFY_RM_WATCH => host_sys!(libc::SYS_inotify_rm_watch, fd, a[1] as i32),
        nr::UMASK => host_sys!(libc::SYS_umask, a[0] as u32),
        nr::MEMFD_CREATE => t
            .cstr(a[0])
            .and_then(cstring)
            .and_then(|c| host_sys!(libc::SYS_memfd_create, c.as_ptr(), a[1] as u32)),
        _ => return None,
    })
}

/// The host file for a guest program path (sysroot first for absolute paths).
pub fn resolve_program(t: &Thread, p: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&t.host_path(p)).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_swap_the_bits_arm64_moves() {
        // O_DIRECTORY | O_CLOEXEC | O_RDONLY as glibc for arm64 passes them.
        let g = 0o40000 | 0o2000000;
        let h = host_open_flags(g);
        assert_eq!(h, (libc::O_DIRECTORY | libc::O_CLOEXEC) as i64);
        assert_eq!(guest_open_flags(h), g);
        // O_NOFOLLOW and O_DIRECT too; O_CREAT/O_TRUNC/O_APPEND are shared.
        let g = 0o100000 | 0o200000 | 0o100 | 0o1000 | 0o2000 | 2;
        assert_eq!(guest_open_flags(host_open_flags(g)), g);
        assert_eq!(guest_open_flags(H_O_LARGEFILE | 2), 0o400000 | 2);
    }

    #[test]
    fn stat_layout_is_asm_generic() {
        // SAFETY: zeroed stat is valid; filled below.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        st.st_dev = 0x801;
        st.st_ino = 42;
        st.st_mode = 0o100644;
        st.st_nlink = 3;
        st.st_uid = 1000;
        st.st_gid = 100;
        st.st_size = 12345;
        st.st_blksize = 4096;
        st.st_blocks = 24;
        st.st_mtime = 1_700_000_000;
        st.st_mtime_nsec = 5;
        let b = guest_stat(&st);
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        assert_eq!(u64_at(0), 0x801);
        assert_eq!(u64_at(8), 42);
        assert_eq!(u32_at(16), 0o100644);
        assert_eq!(u32_at(20), 3);
        assert_eq!(u32_at(24), 1000);
        assert_eq!(u32_at(28), 100);
        assert_eq!(u64_at(48), 12345);
        assert_eq!(u32_at(56), 4096);
        assert_eq!(u64_at(64), 24);
        assert_eq!(u64_at(88), 1_700_000_000);
        assert_eq!(u64_at(96), 5);
    }

    #[test]
    fn proc_self_names_only_our_own_process() {
        assert!(matches!(
            proc_self(b"/proc/self/maps"),
            Some(ProcSelf::Maps)
        ));
        assert!(matches!(proc_self(b"/proc/self/exe"), Some(ProcSelf::Exe)));
        let own = format!("/proc/{}/exe", std::process::id());
        assert!(matches!(proc_self(own.as_bytes()), Some(ProcSelf::Exe)));
        assert!(proc_self(b"/proc/1/exe").is_none());
        assert!(proc_self(b"/proc/self/status").is_none());
    }
}
