//! The guest's address space: one host reservation covering guest virtual addresses
//! `0..GUEST_SPACE`, so a guest address maps to `base + addr`. Guest page permissions are kept
//! in a byte per page beside it, so every access is checked in software and a bad guest
//! pointer is a guest fault, never a host one.
//!
//! With one exception, for speed: while the guest has no handler for SIGSEGV or SIGBUS,
//! compiled code accesses memory without looking at the permission bytes
//! ([`FastMem::host_checks`]). The host mapping of every page carries the guest's
//! permissions ([`host_prot`]: inaccessible where the guest may not read, which is the
//! reservation's own `PROT_NONE` or an `mprotect`, read-only where it may not write), so a
//! forbidden access faults in the host, and the host SIGSEGV/SIGBUS handler here
//! ([`install_fault_handler`]) ends the process the way the guest's fault would have:
//! killed by that signal. A guest that installs a handler for either signal gets every
//! access checked from then on ([`AddressSpace::check_in_software`]), so its handler sees
//! the precise fault. (Self-modifying code needs no write detection here: arm64 code must
//! clean and invalidate the caches, and `IC IVAU` drops the translations.)
//!
//! [`FastMem::host_checks`]: armboard_cpu::FastMem::host_checks

use armboard_cpu::{Access, FaultKind, Mem, MemFault};
use std::sync::atomic::{
    AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

/// Size of the guest virtual address space (40 bits).
pub const GUEST_SPACE: u64 = 1 << 40;
pub const PAGE: u64 = 4096;
/// The host reservation: the guest space and [`FastMem::GUARD`] inaccessible bytes after it.
///
/// [`FastMem::GUARD`]: armboard_cpu::FastMem::GUARD
const WINDOW: u64 = GUEST_SPACE + armboard_cpu::FastMem::GUARD;

/// Page permission bits.
pub mod perm {
    pub const R: u8 = 1;
    pub const W: u8 = 2;
    pub const X: u8 = 4;
}

#[derive(Debug, thiserror::Error)]
pub enum MemError {
    #[error("cannot reserve {0} bytes of host address space for the guest: {1}")]
    Reserve(u64, std::io::Error),
    #[error("guest range {0:#x}+{1:#x} is outside the guest address space")]
    OutOfRange(u64, u64),
    #[error("host mmap failed: {0}")]
    Mmap(std::io::Error),
}

/// Guest memory. Shared by all guest threads (`&AddressSpace` is `Sync`); accesses are plain
/// host loads and stores, as on shared memory between processes.
pub struct AddressSpace {
    base: *mut u8,
    perms: *mut u8,
    /// Compiled code may access memory without checking permissions (see the module's
    /// comment).
    host_checks: AtomicBool,
}

// SAFETY: the raw pointers address two fixed host reservations that live as long as the
// AddressSpace; concurrent guest accesses to them are the guest's shared memory, and every
// access goes through bounds checks against GUEST_SPACE.
unsafe impl Send for AddressSpace {}
// SAFETY: see above; permission bytes are accessed atomically.
unsafe impl Sync for AddressSpace {}

fn reserve(len: u64) -> Result<*mut u8, std::io::Error> {
    // SAFETY: an anonymous PROT_NONE reservation at an address of the kernel's choosing does
    // not touch existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len as usize,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(p as *mut u8)
    }
}

impl AddressSpace {
    pub fn new() -> Result<Self, MemError> {
        // The window, and the guard after it compiled code sends out-of-window accesses to.
        let base = reserve(WINDOW).map_err(|e| MemError::Reserve(WINDOW, e))?;
        let plen = GUEST_SPACE / PAGE;
        let perms = reserve(plen).map_err(|e| MemError::Reserve(plen, e))?;
        // SAFETY: perms is our own fresh reservation of plen bytes.
        let r = unsafe {
            libc::mprotect(
                perms as *mut libc::c_void,
                plen as usize,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if r != 0 {
            return Err(MemError::Mmap(std::io::Error::last_os_error()));
        }
        install_fault_handler();
        // Without a slot the host handler would not know the window: check every access.
        let host_checks = register_window(base as usize);
        Ok(Self {
            base,
            perms,
            host_checks: AtomicBool::new(host_checks),
        })
    }

    /// Check every access in software from now on (the guest installed a handler for
    /// SIGSEGV or SIGBUS). True if they were not before: code compiled until now must be
    /// dropped.
    pub fn check_in_software(&self) -> bool {
        self.host_checks.swap(false, Ordering::SeqCst)
    }

    /// Make the host mapping of `[addr, addr+len)` readable whatever the guest's permissions
    /// (for copying out pages the guest may not read; the caller unmaps them after).
    pub fn host_readable(&self, addr: u64, len: u64) -> Result<(), MemError> {
        Self::check_range(addr, len)?;
        host_protect(self.host(addr), len, libc::PROT_READ)
    }

    /// Host address of guest address `addr` (no checks).
    pub fn host(&self, addr: u64) -> *mut u8 {
        self.base.wrapping_add(addr as usize)
    }

    fn perm_byte(&self, page: u64) -> &AtomicU8 {
        debug_assert!(page < GUEST_SPACE / PAGE);
        // SAFETY: page < GUEST_SPACE / PAGE is checked by every caller, and the permission
        // table is a live read/write mapping of that many bytes.
        unsafe { AtomicU8::from_ptr(self.perms.add(page as usize)) }
    }

    /// Permissions of the page holding `addr` (0 outside the space or when unmapped).
    pub fn perm_at(&self, addr: u64) -> u8 {
        if addr >= GUEST_SPACE {
            return 0;
        }
        self.perm_byte(addr / PAGE).load(Ordering::Relaxed)
    }

    fn check_range(addr: u64, len: u64) -> Result<(), MemError> {
        match addr.checked_add(len) {
            Some(end) if end <= GUEST_SPACE => Ok(()),
            _ => Err(MemError::OutOfRange(addr, len)),
        }
    }

    /// Make `[addr, addr+len)` fresh zeroed anonymous memory with guest permissions `prot`.
    /// `addr` and `len` are page aligned.
    pub fn map_anon(&self, addr: u64, len: u64, prot: u8) -> Result<(), MemError> {
        Self::check_range(addr, len)?;
        // SAFETY: the range lies inside our reservation (checked above); MAP_FIXED replaces
        // only guest memory.
        let p = unsafe {
            libc::mmap(
                self.host(addr) as *mut libc::c_void,
                len as usize,
                host_prot(prot),
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(MemError::Mmap(std::io::Error::last_os_error()));
        }
        self.store_perms(addr, len, prot);
        Ok(())
    }

    /// Map host memory (a file, or shared anonymous memory) at guest `[addr, addr+len)` with
    /// host protection `mapped` and `mmap` flags (`MAP_FIXED` is added), then give it guest
    /// permissions `prot`.
    #[allow(clippy::too_many_arguments)]
    pub fn map_host(
        &self,
        addr: u64,
        len: u64,
        mapped: i32,
        flags: i32,
        fd: i32,
        off: i64,
        prot: u8,
    ) -> Result<(), std::io::Error> {
        Self::check_range(addr, len)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::ENOMEM))?;
        // SAFETY: the range lies inside our reservation (checked above); MAP_FIXED replaces
        // only guest memory.
        let p = unsafe {
            libc::mmap(
                self.host(addr) as *mut libc::c_void,
                len as usize,
                mapped,
                flags | libc::MAP_FIXED,
                fd,
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // Less than mapped where the guest may do less (a read-only or inaccessible page).
        let want = host_prot(prot);
        if want != mapped && want & !mapped == 0 {
            host_protect(self.host(addr), len, want)
                .map_err(|_| std::io::Error::from_raw_os_error(libc::ENOMEM))?;
        }
        self.store_perms(addr, len, prot);
        Ok(())
    }

    /// Length of the longest prefix of `[addr, addr+len)` whose pages all have one of the
    /// `need` permissions (0 when the first page lacks them).
    pub fn valid_prefix(&self, addr: u64, len: u64, need: u8) -> u64 {
        if len == 0 || addr >= GUEST_SPACE {
            return 0;
        }
        let end = addr.saturating_add(len).min(GUEST_SPACE);
        let mut page = addr / PAGE;
        while page * PAGE < end {
            if self.perm_byte(page).load(Ordering::Relaxed) & need == 0 {
                return (page * PAGE).max(addr) - addr;
            }
            page += 1;
        }
        end - addr
    }

    /// Return `[addr, addr+len)` to the reservation (unmapped for the guest).
    pub fn unmap(&self, addr: u64, len: u64) -> Result<(), MemError> {
        Self::check_range(addr, len)?;
        // SAFETY: inside our reservation; replaces guest memory with inaccessible pages.
        let p = unsafe {
            libc::mmap(
                self.host(addr) as *mut libc::c_void,
                len as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(MemError::Mmap(std::io::Error::last_os_error()));
        }
        self.store_perms(addr, len, 0);
        Ok(())
    }

    /// Give `[addr, addr+len)` (mapped) guest permissions `prot`, with the host mapping to
    /// match ([`host_prot`]): pages gaining rights get them on the host before the permission
    /// bytes say so, pages losing rights lose them after (a checked access never faults on
    /// the host).
    pub fn set_perms(&self, addr: u64, len: u64, prot: u8) -> Result<(), MemError> {
        Self::check_range(addr, len)?;
        let want = host_prot(prot);
        let (first, last) = (addr / PAGE, (addr + len).div_ceil(PAGE));
        let old: Vec<i32> = (first..last)
            .map(|p| host_prot(self.perm_byte(p).load(Ordering::Relaxed)))
            .collect();
        self.protect_runs(first, &old, want, |o| o & !want == 0)?;
        self.store_perms(addr, len, prot);
        self.protect_runs(first, &old, want, |o| o & !want != 0)
    }

    /// `mprotect`s to `want` each run of pages from `first` whose old host protection
    /// (in `old`) differs from it and passes `pick`.
    fn protect_runs(
        &self,
        first: u64,
        old: &[i32],
        want: i32,
        pick: impl Fn(i32) -> bool,
    ) -> Result<(), MemError> {
        let mut k = 0;
        while k < old.len() {
            if old[k] == want || !pick(old[k]) {
                k += 1;
                continue;
            }
            let start = k;
            while k < old.len() && old[k] != want && pick(old[k]) {
                k += 1;
            }
            let h = self.host((first + start as u64) * PAGE);
            let n = (k - start) as u64 * PAGE;
            // A shared mapping of a file opened read-only can only be readable (the guest
            // is refused write permission on it anyway).
            host_protect(h, n, want).or_else(|e| {
                if want & libc::PROT_WRITE != 0 {
                    host_protect(h, n, libc::PROT_READ)
                } else {
                    Err(e)
                }
            })?;
        }
        Ok(())
    }

    /// The permission bytes alone.
    fn store_perms(&self, addr: u64, len: u64, prot: u8) {
        let first = addr / PAGE;
        let last = (addr + len).div_ceil(PAGE);
        for p in first..last {
            self.perm_byte(p).store(prot, Ordering::Relaxed);
        }
    }

    #[inline]
    fn check(&self, addr: u64, size: u64, need: u8, access: Access) -> Result<*mut u8, MemFault> {
        let last = addr.wrapping_add(size - 1);
        if last >= GUEST_SPACE || last < addr {
            return Err(MemFault::new(addr, access, FaultKind::Unmapped));
        }
        for page in [addr / PAGE, last / PAGE] {
            let p = self.perm_byte(page).load(Ordering::Relaxed);
            if p & need == 0 {
                let fa = if page == addr / PAGE {
                    addr
                } else {
                    page * PAGE
                };
                let kind = if p == 0 {
                    FaultKind::Unmapped
                } else {
                    FaultKind::Permission
                };
                return Err(MemFault::new(fa, access, kind));
            }
        }
        Ok(self.host(addr))
    }

    /// Copy guest memory out (for system calls). Faults on an inaccessible page.
    pub fn read_bytes(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        if buf.is_empty() {
            return Ok(());
        }
        self.check_pages(addr, buf.len() as u64, perm::R, Access::Read)?;
        // SAFETY: every page of the range is mapped for the guest (checked), hence a live
        // read/write host mapping inside our reservation.
        unsafe { std::ptr::copy_nonoverlapping(self.host(addr), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copy into guest memory (for system calls and the loader).
    pub fn write_bytes(&self, addr: u64, buf: &[u8]) -> Result<(), MemFault> {
        if buf.is_empty() {
            return Ok(());
        }
        self.check_pages(addr, buf.len() as u64, perm::W, Access::Write)?;
        // SAFETY: as in read_bytes, for writable pages.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), self.host(addr), buf.len()) };
        Ok(())
    }

    /// Write ignoring guest permissions (the loader filling read-only segments).
    pub fn poke_bytes(&self, addr: u64, buf: &[u8]) -> Result<(), MemFault> {
        if buf.is_empty() {
            return Ok(());
        }
        self.check_pages(
            addr,
            buf.len() as u64,
            perm::R | perm::W | perm::X,
            Access::Write,
        )?;
        // Writable on the host for the copy, then as the permissions say again.
        let (first, last) = (addr / PAGE, (addr + buf.len() as u64).div_ceil(PAGE));
        let h = self.host(first * PAGE);
        let n = (last - first) * PAGE;
        let fail = |_| MemFault::new(addr, Access::Write, FaultKind::Permission);
        host_protect(h, n, libc::PROT_READ | libc::PROT_WRITE).map_err(fail)?;
        // SAFETY: as in write_bytes; the pages are mapped (some permission set) and now
        // writable on the host.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), self.host(addr), buf.len()) };
        for p in first..last {
            let want = host_prot(self.perm_byte(p).load(Ordering::Relaxed));
            host_protect(self.host(p * PAGE), PAGE, want).map_err(fail)?;
        }
        Ok(())
    }

    /// Check that every page of `[addr, addr+len)` has one of the `need` permissions.
    pub fn check_pages(
        &self,
        addr: u64,
        len: u64,
        need: u8,
        access: Access,
    ) -> Result<(), MemFault> {
        let end = addr
            .checked_add(len)
            .filter(|&e| e <= GUEST_SPACE)
            .ok_or(MemFault::new(addr, access, FaultKind::Unmapped))?;
        let mut page = addr / PAGE;
        while page * PAGE < end {
            let p = self.perm_byte(page).load(Ordering::Relaxed);
            if p & need == 0 {
                let fa = (page * PAGE).max(addr);
                let kind = if p == 0 {
                    FaultKind::Unmapped
                } else {
                    FaultKind::Permission
                };
                return Err(MemFault::new(fa, access, kind));
            }
            page += 1;
        }
        Ok(())
    }

    /// Read a NUL-terminated string of at most `max` bytes.
    pub fn read_cstr(&self, addr: u64, max: usize) -> Result<Vec<u8>, MemFault> {
        let mut out = Vec::new();
        let mut a = addr;
        while out.len() < max {
            self.check(a, 1, perm::R, Access::Read)?;
            // Copy up to the end of this page at once.
            let n = ((PAGE - a % PAGE) as usize).min(max - out.len());
            // SAFETY: the page holding a is readable (checked); n stays within it.
            let chunk = unsafe { std::slice::from_raw_parts(self.host(a), n) };
            if let Some(z) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..z]);
                return Ok(out);
            }
            out.extend_from_slice(chunk);
            a += n as u64;
        }
        Ok(out)
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        unregister_window(self.base as usize);
        // SAFETY: both reservations were made by `new` with these sizes and are not used after
        // drop.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, WINDOW as usize);
            libc::munmap(
                self.perms as *mut libc::c_void,
                (GUEST_SPACE / PAGE) as usize,
            );
        }
    }
}

/// The CPU's window on an address space.
impl Mem for &AddressSpace {
    fn fast_path(&self) -> Option<armboard_cpu::FastMem> {
        // perm::R and perm::W are FastMem::READ and FastMem::WRITE.
        Some(armboard_cpu::FastMem {
            base: self.base as usize,
            perms: self.perms as usize,
            limit: GUEST_SPACE,
            host_checks: self.host_checks.load(Ordering::SeqCst),
        })
    }

    #[inline]
    fn read(&mut self, addr: u64, size: u8) -> Result<u64, MemFault> {
        let p = self.check(addr, size as u64, perm::R, Access::Read)?;
        // SAFETY: check() verified the whole access lies in readable guest pages, which are
        // live host mappings; unaligned reads are allowed.
        unsafe {
            Ok(match size {
                1 => *p as u64,
                2 => (p as *const u16).read_unaligned() as u64,
                4 => (p as *const u32).read_unaligned() as u64,
                _ => (p as *const u64).read_unaligned(),
            })
        }
    }

    #[inline]
    fn write(&mut self, addr: u64, size: u8, value: u64) -> Result<(), MemFault> {
        let p = self.check(addr, size as u64, perm::W, Access::Write)?;
        // SAFETY: as in read, for writable pages.
        unsafe {
            match size {
                1 => *p = value as u8,
                2 => (p as *mut u16).write_unaligned(value as u16),
                4 => (p as *mut u32).write_unaligned(value as u32),
                _ => (p as *mut u64).write_unaligned(value),
            }
        }
        Ok(())
    }

    #[inline]
    fn fetch(&mut self, addr: u64) -> Result<u32, MemFault> {
        if !addr.is_multiple_of(4) {
            return Err(MemFault::new(addr, Access::Exec, FaultKind::Alignment));
        }
        let p = self.check(addr, 4, perm::X, Access::Exec)?;
        // SAFETY: executable guest page, aligned 4-byte read inside it.
        Ok(unsafe { (p as *const u32).read() })
    }

    fn read128(&mut self, addr: u64) -> Result<u128, MemFault> {
        let p = self.check(addr, 16, perm::R, Access::Read)?;
        // SAFETY: as in read.
        Ok(unsafe { (p as *const u128).read_unaligned() })
    }

    fn write128(&mut self, addr: u64, value: u128) -> Result<(), MemFault> {
        let p = self.check(addr, 16, perm::W, Access::Write)?;
        // SAFETY: as in write.
        unsafe { (p as *mut u128).write_unaligned(value) };
        Ok(())
    }

    fn cmpxchg(&mut self, addr: u64, size: u8, old: u64, new: u64) -> Result<bool, MemFault> {
        let p = self.check(addr, size as u64, perm::W, Access::Write)?;
        // SAFETY: writable guest memory, aligned to size by the caller (the IR checks
        // exclusives' alignment), so the atomic views are valid.
        unsafe {
            Ok(match size {
                1 => AtomicU8::from_ptr(p)
                    .compare_exchange(old as u8, new as u8, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok(),
                2 => AtomicU16::from_ptr(p as *mut u16)
                    .compare_exchange(old as u16, new as u16, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok(),
                4 => AtomicU32::from_ptr(p as *mut u32)
                    .compare_exchange(old as u32, new as u32, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok(),
                _ => AtomicU64::from_ptr(p as *mut u64)
                    .compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok(),
            })
        }
    }

    fn cmpxchg128(&mut self, addr: u64, old: u128, new: u128) -> Result<bool, MemFault> {
        let p = self.check(addr, 16, perm::W, Access::Write)?;
        Ok(cas128(p as *mut u128, old, new))
    }

    fn zero(&mut self, addr: u64, len: u64) -> Result<(), MemFault> {
        let p = self.check(addr, len, perm::W, Access::Write)?;
        // SAFETY: the range is writable guest memory (both ends checked, len <= one page).
        unsafe { std::ptr::write_bytes(p, 0, len as usize) };
        Ok(())
    }
}

/// 16-byte compare-and-swap on an aligned address.
fn cas128(p: *mut u128, old: u128, new: u128) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let (mut lo, mut hi) = (old as u64, (old >> 64) as u64);
        let ok: u8;
        // SAFETY: p is a 16-byte aligned pointer into writable guest memory (checked by the
        // caller); cmpxchg16b reads and conditionally writes exactly those 16 bytes. rbx is
        // saved and restored around the instruction because LLVM reserves it.
        unsafe {
            std::arch::asm!(
                "xchg {nlo}, rbx",
                "lock cmpxchg16b [{p}]",
                "sete {ok}",
                "mov rbx, {nlo}",
                p = in(reg) p,
                nlo = inout(reg) new as u64 => _,
                ok = out(reg_byte) ok,
                inout("rax") lo,
                inout("rdx") hi,
                in("rcx") (new >> 64) as u64,
                options(nostack)
            );
        }
        let _ = (&mut lo, &mut hi);
        ok != 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::Mutex;
        static LOCK: Mutex<()> = Mutex::new(());
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: p is aligned writable guest memory (checked by the caller); other 128-bit
        // exclusives serialise on LOCK.
        unsafe {
            if p.read() == old {
                p.write(new);
                true
            } else {
                false
            }
        }
    }
}

/// The host protection of a page with guest permissions `p`: read/write where the guest may
/// write, read-only where it may only read (or execute: that includes reading),
/// inaccessible where it may do nothing.
pub fn host_prot(p: u8) -> i32 {
    if p & perm::W != 0 {
        libc::PROT_READ | libc::PROT_WRITE
    } else if p & perm::R != 0 {
        libc::PROT_READ
    } else {
        libc::PROT_NONE
    }
}

fn host_protect(host: *mut u8, len: u64, prot: i32) -> Result<(), MemError> {
    // SAFETY: callers pass a page-aligned range inside a reservation of ours; changing its
    // protection touches no Rust object.
    let r = unsafe { libc::mprotect(host as *mut libc::c_void, len as usize, prot) };
    if r != 0 {
        return Err(MemError::Mmap(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The bases of the live guest windows (0: free slot), for the host fault handler.
static WINDOWS: [AtomicUsize; 16] = [const { AtomicUsize::new(0) }; 16];

/// Records a window; false when every slot is taken.
fn register_window(base: usize) -> bool {
    WINDOWS.iter().any(|w| {
        w.compare_exchange(0, base, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    })
}

fn unregister_window(base: usize) {
    for w in &WINDOWS {
        let _ = w.compare_exchange(base, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// The guest address of host address `a` when it is in a live window.
fn guest_address(a: usize) -> Option<u64> {
    WINDOWS.iter().find_map(|w| {
        let base = w.load(Ordering::Relaxed);
        let off = a.wrapping_sub(base);
        (base != 0 && (off as u64) < WINDOW).then_some(off as u64)
    })
}

/// The handlers of SIGSEGV and SIGBUS before ours (Rust's stack-overflow check).
static PREVIOUS: std::sync::OnceLock<[libc::sigaction; 2]> = std::sync::OnceLock::new();

/// Installs (once per process) the host SIGSEGV and SIGBUS handler that ends the process as
/// the guest's fault would when a guest read faults in a window (see the module's comment),
/// and hands every other fault to the handler that was there before.
pub fn install_fault_handler() {
    PREVIOUS.get_or_init(|| {
        // SAFETY: sigaction with a zeroed, then filled struct; the handler only does
        // async-signal-safe work (atomic loads, write, sigaction, setrlimit).
        unsafe {
            let mut old: [libc::sigaction; 2] = std::mem::zeroed();
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = host_fault as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGSEGV, &sa, &mut old[0]);
            libc::sigaction(libc::SIGBUS, &sa, &mut old[1]);
            old
        }
    });
}

extern "C" fn host_fault(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SIGSEGV and SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    let slot = usize::from(sig == libc::SIGBUS);
    let Some(guest) = guest_address(addr) else {
        // Not a guest read: the previous handler's business.
        if let Some(prev) = PREVIOUS.get() {
            let p = prev[slot];
            if p.sa_flags & libc::SA_SIGINFO != 0 && p.sa_sigaction > libc::SIG_IGN {
                // SAFETY: a SA_SIGINFO handler installed before ours, called as the kernel
                // would.
                unsafe {
                    let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) =
                        std::mem::transmute(p.sa_sigaction);
                    f(sig, info, ctx);
                }
                return;
            }
        }
        default_and_refault(sig);
        return;
    };
    let mut msg = [0u8; 128];
    let mut n = 0;
    let mut put = |b: &[u8]| {
        for &c in b {
            if n < msg.len() {
                msg[n] = c;
                n += 1;
            }
        }
    };
    put(b"armboard: guest terminated by ");
    put(if slot == 1 {
        b"SIGBUS (7)"
    } else {
        b"SIGSEGV (11)"
    });
    put(if write_fault(ctx) {
        b": compiled code wrote to "
    } else {
        b": compiled code read "
    });
    if guest >= GUEST_SPACE {
        put(b"an address outside the guest's space");
    } else {
        put(b"guest address 0x");
        let digits = if guest == 0 {
            1
        } else {
            16 - guest.leading_zeros() as usize / 4
        };
        for k in (0..digits).rev() {
            put(&[b"0123456789abcdef"[(guest >> (4 * k)) as usize & 15]]);
        }
    }
    put(b"\n");
    // SAFETY: write(2) of a stack buffer is async-signal-safe.
    unsafe { libc::write(2, msg.as_ptr() as *const libc::c_void, n) };
    default_and_refault(sig);
}

/// Whether the faulting access was a write (the x86 page-fault error code's bit 1).
fn write_fault(ctx: *mut libc::c_void) -> bool {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        // SAFETY: for a SA_SIGINFO handler the third argument is the interrupted context.
        let uc = unsafe { &*(ctx as *const libc::ucontext_t) };
        uc.uc_mcontext.gregs[libc::REG_ERR as usize] & 2 != 0
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        let _ = ctx;
        false
    }
}

/// Back to the default action (no core file, as `signal::die`): returning re-runs the
/// faulting access, which now kills the process with `sig`.
fn default_and_refault(sig: i32) {
    // SAFETY: async-signal-safe calls on zeroed structs.
    unsafe {
        let rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &rl);
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}
