//! Memory: brk, mmap and friends. Guest areas are tracked in [`Mm`](crate::linux_user::vma::Mm);
//! guest permissions are enforced in software; file and shared mappings are host mappings
//! at the guest address's host address.

use super::{host_sys, nr, prot_to_perm, SysResult};
use crate::linux_user::memory::{perm, GUEST_SPACE, PAGE};
use crate::linux_user::vma::{page_up, Vma};
use crate::linux_user::Thread;

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_TYPE: u64 = 0x0f;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;

fn fd_path(fd: i64) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn brk(t: &Thread, want: u64) -> SysResult {
    let mut mm = t.proc.mm();
    let cur = mm.brk;
    if want < mm.brk_start || want >= GUEST_SPACE {
        return Ok(cur);
    }
    let (old_top, new_top) = (page_up(cur), page_up(want));
    if new_top > old_top {
        if mm.overlaps(old_top, new_top) {
            return Ok(cur);
        }
        if t.proc
            .space
            .map_anon(old_top, new_top - old_top, perm::R | perm::W)
            .is_err()
        {
            return Ok(cur);
        }
    } else if new_top < old_top {
        let _ = t.proc.space.unmap(new_top, old_top - new_top);
        mm.remove(new_top, old_top);
    }
    let start = page_up(mm.brk_start);
    mm.remove(start, new_top.max(old_top));
    if new_top > start {
        let mut v = Vma::anon(new_top, perm::R | perm::W);
        v.name = "[heap]".into();
        mm.insert(start, v);
    }
    mm.brk = want;
    Ok(want)
}

fn mmap(t: &Thread, a: &[u64; 6]) -> SysResult {
    let (addr, len, prot, flags, fd, off) = (a[0], a[1], a[2], a[3], a[4] as i32 as i64, a[5]);
    if len == 0 || !off.is_multiple_of(PAGE) {
        return Err(libc::EINVAL);
    }
    let len = page_up(len);
    if len == 0 || len >= GUEST_SPACE {
        return Err(libc::ENOMEM);
    }
    let typ = flags & MAP_TYPE;
    if !matches!(typ, MAP_SHARED | MAP_PRIVATE | MAP_SHARED_VALIDATE) {
        return Err(libc::EINVAL);
    }
    let shared = typ != MAP_PRIVATE;
    let anon = flags & MAP_ANONYMOUS != 0;
    let p = prot_to_perm(prot);

    // The file: checks that must fail before anything changes.
    let mut vma = Vma::anon(0, p);
    vma.shared = shared;
    let mut file_len = 0;
    if !anon {
        // SAFETY: zeroed stat is a valid output buffer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        host_sys!(libc::SYS_fstat, fd, &mut st as *mut libc::stat)?;
        let acc = host_sys!(libc::SYS_fcntl, fd, libc::F_GETFL)? as i32 & libc::O_ACCMODE;
        if acc == libc::O_WRONLY {
            return Err(libc::EACCES);
        }
        if shared && acc != libc::O_RDWR {
            if prot & 2 != 0 {
                return Err(libc::EACCES);
            }
            vma.no_write = true;
        }
        file_len = if st.st_mode & libc::S_IFMT == libc::S_IFREG {
            let size = st.st_size as u64;
            if size > off {
                page_up(size - off).min(len)
            } else {
                0
            }
        } else {
            len
        };
        vma.offset = off;
        vma.dev = st.st_dev;
        vma.inode = st.st_ino;
        vma.name = fd_path(fd);
    }

    let mut mm = t.proc.mm();
    let start = if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
        if !addr.is_multiple_of(PAGE) {
            return Err(libc::EINVAL);
        }
        if addr.checked_add(len).is_none_or(|e| e > GUEST_SPACE) {
            return Err(libc::ENOMEM);
        }
        if flags & MAP_FIXED == 0 && mm.overlaps(addr, addr + len) {
            return Err(libc::EEXIST);
        }
        addr
    } else {
        mm.place(addr, len, GUEST_SPACE).ok_or(libc::ENOMEM)?
    };
    let removed = mm.remove(start, start + len);
    let had_exec = removed.iter().any(|(_, v)| v.prot & perm::X != 0);
    let space = &t.proc.space;
    let res = if anon && !shared {
        space.map_anon(start, len, p).map_err(|_| libc::ENOMEM)
    } else if anon {
        space
            .map_host(
                start,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
                p,
            )
            .map_err(|e| e.raw_os_error().unwrap_or(libc::ENOMEM))
    } else {
        let (hprot, hflags) = if shared {
            let w = if vma.no_write { 0 } else { libc::PROT_WRITE };
            (libc::PROT_READ | w, libc::MAP_SHARED)
        } else {
            (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE)
        };
        let mut r = Ok(());
        if file_len > 0 {
            r = space
                .map_host(start, file_len, hprot, hflags, fd as i32, off as i64, p)
                .map_err(|e| e.raw_os_error().unwrap_or(libc::ENOMEM));
        }
        if r.is_ok() && file_len < len {
            // Past the end of the file: zero pages (Linux would raise SIGBUS on access).
            r = space
                .map_anon(start + file_len, len - file_len, p)
                .map_err(|_| libc::ENOMEM);
        }
        r
    };
    if let Err(e) = res {
        let _ = space.unmap(start, len);
        if had_exec {
            t.proc.code_changed();
        }
        return Err(e);
    }
    vma.end = start + len;
    mm.insert(start, vma);
    drop(mm);
    if had_exec || p & perm::X != 0 {
        t.proc.code_changed();
    }
    Ok(start)
}

fn munmap(t: &Thread, addr: u64, len: u64) -> SysResult {
    if !addr.is_multiple_of(PAGE) || len == 0 {
        return Err(libc::EINVAL);
    }
    let len = page_up(len);
    if addr.checked_add(len).is_none_or(|e| e > GUEST_SPACE) {
        return Err(libc::EINVAL);
    }
    let removed = t.proc.mm().remove(addr, addr + len);
    for (s, v) in &removed {
        let _ = t.proc.space.unmap(*s, v.end - s);
    }
    if removed.iter().any(|(_, v)| v.prot & perm::X != 0) {
        t.proc.code_changed();
    }
    Ok(0)
}

fn mprotect(t: &Thread, addr: u64, len: u64, prot: u64) -> SysResult {
    if !addr.is_multiple_of(PAGE) {
        return Err(libc::EINVAL);
    }
    let len = page_up(len);
    if len == 0 {
        return Ok(0);
    }
    let end = addr.checked_add(len).ok_or(libc::ENOMEM)?;
    let p = prot_to_perm(prot & 7);
    let mut mm = t.proc.mm();
    if !mm.covered(addr, end) {
        return Err(libc::ENOMEM);
    }
    let mut exec = p & perm::X != 0;
    for (_, v) in mm.vmas.range(..end).rev() {
        if v.end <= addr {
            break;
        }
        if v.no_write && p & perm::W != 0 {
            return Err(libc::EACCES);
        }
        exec |= v.prot & perm::X != 0;
    }
    mm.protect(addr, end, p);
    t.proc
        .space
        .set_perms(addr, len, p)
        .map_err(|_| libc::ENOMEM)?;
    drop(mm);
    if exec {
        t.proc.code_changed();
    }
    Ok(0)
}

fn mremap(t: &Thread, a: &[u64; 6]) -> SysResult {
    let (old, flags) = (a[0], a[3]);
    if !old.is_multiple_of(PAGE) || flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | 4) != 0 {
        return Err(libc::EINVAL);
    }
    if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
        return Err(libc::EINVAL);
    }
    let (osz, nsz) = (page_up(a[1]), page_up(a[2]));
    if nsz == 0 || osz == 0 {
        return Err(libc::EINVAL);
    }
    let space = &t.proc.space;
    let mut mm = t.proc.mm();
    let (vs, v) = match mm.find(old) {
        Some((s, v)) if v.end >= old + osz => (s, v.clone()),
        _ => return Err(libc::EFAULT),
    };
    let exec = v.prot & perm::X != 0;
    let private_anon = !v.shared && v.inode == 0;
    let offset = v.offset + (old - vs);
    let fixed = flags & MREMAP_FIXED != 0;
    if !fixed && nsz <= osz {
        if nsz < osz {
            mm.remove(old + nsz, old + osz);
            let _ = space.unmap(old + nsz, osz - nsz);
        }
        return Ok(old);
    }
    // Grow in place when the space after is free.
    if !fixed
        && old + nsz <= GUEST_SPACE
        && !mm.overlaps(old + osz, old + nsz)
        && private_anon
        && space.map_anon(old + osz, nsz - osz, v.prot).is_ok()
    {
        let mut nv = v.clone();
        nv.end = old + nsz;
        mm.remove(old, old + osz);
        mm.insert(old, nv);
        return Ok(old);
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return Err(libc::ENOMEM);
    }
    let dest = if fixed {
        let d = a[4];
        if !d.is_multiple_of(PAGE) || d.checked_add(nsz).is_none_or(|e| e > GUEST_SPACE) {
            return Err(libc::EINVAL);
        }
        if d < old + osz && old < d + nsz {
            return Err(libc::EINVAL);
        }
        mm.remove(d, d + nsz);
        d
    } else {
        mm.place(0, nsz, GUEST_SPACE).ok_or(libc::ENOMEM)?
    };
    if private_anon {
        space
            .map_anon(dest, nsz, perm::R | perm::W)
            .map_err(|_| libc::ENOMEM)?;
        let n = osz.min(nsz) as usize;
        if v.prot & perm::R == 0 {
            // Inaccessible on the host as for the guest; the copy needs to read it.
            space.host_readable(old, osz).map_err(|_| libc::ENOMEM)?;
        }
        // SAFETY: both ranges are live host mappings inside the reservation (mapped above and
        // checked by find), and they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(space.host(old), space.host(dest), n) };
        space
            .set_perms(dest, nsz, v.prot)
            .map_err(|_| libc::ENOMEM)?;
    } else {
        host_sys!(
            libc::SYS_mremap,
            space.host(old),
            osz,
            nsz,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            space.host(dest)
        )?;
        space
            .set_perms(dest, nsz, v.prot)
            .map_err(|_| libc::ENOMEM)?;
    }
    let _ = space.unmap(old, osz);
    mm.remove(old, old + osz);
    let mut nv = v;
    nv.end = dest + nsz;
    nv.offset = offset;
    mm.insert(dest, nv);
    drop(mm);
    if exec {
        t.proc.code_changed();
    }
    Ok(dest)
}

fn madvise(t: &Thread, addr: u64, len: u64, advice: u64) -> SysResult {
    if !addr.is_multiple_of(PAGE) {
        return Err(libc::EINVAL);
    }
    let len = page_up(len);
    let end = addr.checked_add(len).ok_or(libc::EINVAL)?;
    let mm = t.proc.mm();
    if len != 0 && !mm.covered(addr, end) {
        return Err(libc::ENOMEM);
    }
    if advice as i32 == libc::MADV_DONTNEED {
        // Private anonymous memory reads back as zeroes, private file pages as the file.
        host_sys!(
            libc::SYS_madvise,
            t.proc.space.host(addr),
            len,
            libc::MADV_DONTNEED
        )?;
    }
    Ok(0)
}

fn msync(t: &Thread, addr: u64, len: u64, flags: u64) -> SysResult {
    if !addr.is_multiple_of(PAGE) {
        return Err(libc::EINVAL);
    }
    let len = page_up(len);
    if !t.proc.mm().covered(addr, addr.saturating_add(len)) {
        return Err(libc::ENOMEM);
    }
    host_sys!(libc::SYS_msync, t.proc.space.host(addr), len, flags as i32)
}

fn mincore(t: &Thread, addr: u64, len: u64, vec: u64) -> SysResult {
    if !addr.is_multiple_of(PAGE) {
        return Err(libc::EINVAL);
    }
    let pages = page_up(len) / PAGE;
    if !t.proc.mm().covered(addr, addr.saturating_add(pages * PAGE)) {
        return Err(libc::ENOMEM);
    }
    t.write_mem(vec, &vec![1u8; pages as usize])?;
    Ok(0)
}

pub fn call(t: &mut Thread, n: u64, a: &[u64; 6]) -> Option<SysResult> {
    Some(match n {
        nr::BRK => brk(t, a[0]),
        nr::MMAP => mmap(t, a),
        nr::MUNMAP => munmap(t, a[0], a[1]),
        nr::MPROTECT => mprotect(t, a[0], a[1], a[2]),
        nr::MREMAP => mremap(t, a),
        nr::MADVISE => madvise(t, a[0], a[1], a[2]),
        nr::MSYNC => msync(t, a[0], a[1], a[2]),
        nr::MINCORE => mincore(t, a[0], a[1], a[2]),
        nr::MLOCK | nr::MUNLOCK | nr::MLOCKALL | nr::MUNLOCKALL | nr::MLOCK2 => Ok(0),
        _ => return None,
    })
}
