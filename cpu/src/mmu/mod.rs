//! System-mode memory: the CPU's view of a machine's physical address space through stage-1
//! translation ([`walk`]) and a per-vCPU software TLB ([`tlb`]).
//!
//! [`SysMem`] is what a system-mode vCPU runs on: it implements [`Mem`] (every access is
//! translated; RAM is reached through host pointers cached in the TLB, devices through the
//! [`AddressSpace`]) and [`SystemMem`] (register sync, TLBI, AT, the counter).
//!
//! ```text
//! let tlbs = Arc::new(TlbBroadcast::new());            // one per machine
//! let clock: Clock = Arc::new(move || counter_now());
//! let mut mem = SysMem::new(space.clone(), cpu_index, clock, tlbs.clone());
//! mem.sync(&cpu.state);                                  // after reset and every regime change
//! cpu.run(&mut mem);
//! ```

pub mod tlb;
pub mod walk;

pub use tlb::TlbBroadcast;
pub use walk::Regime;

use crate::mem::{Access, FaultKind, Mem, MemFault, TlbFast};
use crate::state::CpuState;
use crate::sys::{SystemMem, Tlbi};
use armboard_bus::AddressSpace;
use std::sync::atomic::fence;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use tlb::{Entry, FastTables, Tlb, GLOBAL};

/// The system counter's source (CNTPCT_EL0), shared by the machine's vCPUs. Called with the
/// reading CPU's retired-instruction count ([`crate::CpuState::retired`]).
pub type Clock = Arc<dyn Fn(u64) -> u64 + Send + Sync>;

const PAGE: u64 = 0x1000;
const PAGE_MASK: u64 = PAGE - 1;

/// Where one translated byte lives.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// RAM, at this host address.
    Host(*mut u8),
    /// Anything else: a device, or nothing (a bus fault when accessed).
    Phys(u64),
}

impl Target {
    /// The target `off` bytes further on, within the same page.
    fn add(self, off: u64) -> Target {
        match self {
            // SAFETY: callers stay within the 4 KiB page the pointer was made for, which is
            // all inside one RAM mapping.
            Target::Host(p) => Target::Host(unsafe { p.add(off as usize) }),
            Target::Phys(pa) => Target::Phys(pa + off),
        }
    }
}

/// One vCPU's memory in a system-mode machine.
pub struct SysMem {
    space: Arc<AddressSpace>,
    cpu: usize,
    clock: Clock,
    broadcast: Arc<TlbBroadcast>,
    /// The newest broadcast operation applied to `tlb`.
    seen: u64,
    regime: Regime,
    asid: u16,
    tlb: Tlb,
    /// The inline TLB of compiled code: RAM pages of `tlb`'s read and write entries for the
    /// current regime and ASID (emptied whenever those change or entries may be stale).
    fast: Arc<FastTables>,
    /// Data accesses that came through [`Mem`] (the interpreter's, and compiled code's
    /// inline-TLB misses).
    calls: u64,
}

impl SysMem {
    /// The memory of CPU `cpu` (its index for banked device registers) of the machine whose
    /// physical address space is `space`. `broadcast` is shared by all the machine's CPUs.
    /// Starts with the MMU off at EL1; call [`SystemMem::sync`] with the CPU's state.
    pub fn new(
        space: Arc<AddressSpace>,
        cpu: usize,
        clock: Clock,
        broadcast: Arc<TlbBroadcast>,
    ) -> Self {
        let fast = Arc::new(FastTables::new());
        broadcast.register(&fast);
        let seen = broadcast.epoch();
        let regime = Regime::from_sys(&crate::sys::SysRegs::reset_el1(crate::model::CORTEX_A72, 0));
        Self {
            space,
            cpu,
            clock,
            broadcast,
            seen,
            asid: regime.asid(),
            regime,
            tlb: Tlb::new(),
            fast,
            calls: 0,
        }
    }

    pub fn space(&self) -> &Arc<AddressSpace> {
        &self.space
    }

    pub fn cpu_index(&self) -> usize {
        self.cpu
    }

    /// Drop every cached translation of this vCPU (machine reset).
    pub fn flush_tlb(&mut self) {
        self.tlb.flush();
        self.fast.clear();
    }

    /// How many data accesses have come through [`Mem`]'s read and write methods (compiled
    /// code's accesses that hit the inline TLB do not).
    pub fn slow_accesses(&self) -> u64 {
        self.calls
    }

    /// The regime the next access translates in (as of the last [`SystemMem::sync`]).
    pub fn regime(&self) -> &Regime {
        &self.regime
    }

    /// The physical address of the instruction at `va` in the current regime, checked for
    /// execution at the current EL, exactly as [`Mem::fetch`] would find it (through the TLB).
    ///
    /// For the engine's code cache: a block translated from guest physical `pa` may run at
    /// `va` again only while `translate_exec(va)` still returns `pa`. A TLB hit costs a few
    /// compares; a miss walks the tables. The fault is the one the fetch would take.
    pub fn translate_exec(&mut self, va: u64) -> Result<u64, MemFault> {
        let e = self.entry(va, Access::Exec)?;
        // TLBIs of this region now bump the exec epoch. One published since `entry` caught
        // up may have missed the mark: then the translation may be stale, and the bump
        // makes the engine check it again.
        self.fast.mark_code(e.tag, e.shift);
        fence(std::sync::atomic::Ordering::SeqCst);
        if self.broadcast.epoch() != self.seen {
            self.fast.bump();
        }
        Ok(e.pa | (va & PAGE_MASK))
    }

    /// Apply other vCPUs' TLB maintenance if there is any we have not seen.
    #[inline]
    fn catch_up(&mut self) {
        if self.broadcast.epoch() != self.seen {
            let mask = self.regime.asid_mask();
            self.broadcast
                .sync(self.cpu, &mut self.seen, &mut self.tlb, mask, None);
        }
    }

    /// The TLB entry for `va`'s page for `access` at the current EL, walking on a miss.
    #[inline]
    fn entry(&mut self, va: u64, access: Access) -> Result<Entry, MemFault> {
        self.catch_up();
        let tag = Tlb::tag(self.regime.untag(va), self.regime.el);
        if let Some(e) = self.tlb.lookup(access, tag, self.asid) {
            return Ok(*e);
        }
        self.fill(va, tag, access)
    }

    #[cold]
    fn fill(&mut self, va: u64, tag: u64, access: Access) -> Result<Entry, MemFault> {
        let el = self.regime.el;
        let w = walk::walk(&self.space, &self.regime, va, el, access)?;
        if !w.perms.allows(access) {
            return Err(MemFault::at_level(
                va,
                access,
                FaultKind::Permission,
                w.level,
            ));
        }
        let pa = w.pa & !PAGE_MASK;
        let host = self
            .space
            .ram_at(pa, PAGE)
            .and_then(|r| r.host_ptr(pa, PAGE))
            .map_or(0, |p| p as usize);
        let e = Entry {
            tag,
            asid: if w.global { GLOBAL } else { self.asid as u32 },
            shift: w.shift,
            pa,
            host,
        };
        for (ok, a) in [
            (w.perms.read, Access::Read),
            (w.perms.write, Access::Write),
            (w.perms.exec, Access::Exec),
        ] {
            if ok {
                self.tlb.insert(a, e);
            }
        }
        Ok(e)
    }

    /// Where the byte at `va` is, for `access`.
    #[inline]
    fn target(&mut self, va: u64, access: Access) -> Result<Target, MemFault> {
        let e = self.entry(va, access)?;
        let off = va & PAGE_MASK;
        Ok(if e.host != 0 {
            if access != Access::Exec {
                self.fast_fill(access == Access::Write, &e);
            }
            Target::Host((e.host + off as usize) as *mut u8)
        } else {
            Target::Phys(e.pa | off)
        })
    }

    /// Put the RAM page of `e`, just looked up at the current EL, into the inline table.
    #[inline]
    fn fast_fill(&mut self, write: bool, e: &Entry) {
        if self.fast.holds(write, e.tag) {
            return;
        }
        let addend = (e.host as u64).wrapping_sub(e.tag & !PAGE_MASK);
        self.fast.insert(write, e.tag, addend, e.shift);
        // Another vCPU may have published a TLBI (and emptied our tables) since `entry`
        // caught up: then this fill may be stale; the next access catches up again.
        fence(std::sync::atomic::Ordering::SeqCst);
        if self.broadcast.epoch() != self.seen {
            self.fast.remove(write, e.tag);
        }
    }

    fn bus_fault(va: u64, access: Access) -> MemFault {
        MemFault::new(va, access, FaultKind::Bus)
    }

    fn load(&self, t: Target, size: u8, va: u64) -> Result<u64, MemFault> {
        match t {
            // SAFETY: `p` points at `size` bytes inside one RAM page (callers split accesses
            // at page boundaries), kept alive by `self.space`.
            Target::Host(p) => Ok(unsafe { host_load(p, size) }),
            Target::Phys(pa) => self
                .space
                .mmio_read(self.cpu, pa, size)
                .map_err(|_| Self::bus_fault(va, Access::Read)),
        }
    }

    fn store(&self, t: Target, size: u8, value: u64, va: u64) -> Result<(), MemFault> {
        match t {
            Target::Host(p) => {
                // SAFETY: as in `load`.
                unsafe { host_store(p, size, value) };
                Ok(())
            }
            Target::Phys(pa) => self
                .space
                .mmio_write(self.cpu, pa, size, value)
                .map_err(|_| Self::bus_fault(va, Access::Write)),
        }
    }

    /// The targets of an access of `len` bytes at `va` that crosses into the next page:
    /// (first page, bytes in it, second page). Both are translated before either is used.
    fn split(&mut self, va: u64, access: Access) -> Result<(Target, u64, Target), MemFault> {
        let first = PAGE - (va & PAGE_MASK);
        let a = self.target(va, access)?;
        let b = self.target(va.wrapping_add(first), access)?;
        Ok((a, first, b))
    }

    /// A little-endian read of `len` (<= 16) bytes crossing a page boundary, byte by byte.
    fn read_split(&mut self, va: u64, len: u64) -> Result<u128, MemFault> {
        let (a, first, b) = self.split(va, Access::Read)?;
        let mut v = 0u128;
        for i in 0..len {
            let t = if i < first {
                a.add(i)
            } else {
                b.add(i - first)
            };
            v |= u128::from(self.load(t, 1, va.wrapping_add(i))?) << (8 * i);
        }
        Ok(v)
    }

    fn write_split(&mut self, va: u64, len: u64, value: u128) -> Result<(), MemFault> {
        let (a, first, b) = self.split(va, Access::Write)?;
        for i in 0..len {
            let t = if i < first {
                a.add(i)
            } else {
                b.add(i - first)
            };
            self.store(t, 1, (value >> (8 * i)) as u64 & 0xff, va.wrapping_add(i))?;
        }
        Ok(())
    }

    /// Host address of an aligned `size`-byte location for an atomic update, or the fault:
    /// devices do not take part in exclusives or atomics (bus fault).
    fn atomic_target(&mut self, va: u64, size: u64) -> Result<*mut u8, MemFault> {
        if !va.is_multiple_of(size) {
            return Err(MemFault::new(va, Access::Write, FaultKind::Alignment));
        }
        match self.target(va, Access::Write)? {
            Target::Host(p) => Ok(p),
            Target::Phys(_) => Err(Self::bus_fault(va, Access::Write)),
        }
    }
}

/// # Safety
/// `p` must be valid for reads of `size` (1, 2, 4 or 8) bytes.
#[inline(always)]
pub(crate) unsafe fn host_load(p: *const u8, size: u8) -> u64 {
    // SAFETY: valid per the contract; aligned accesses go through atomics so racing vCPUs
    // see whole values, unaligned ones are plain unaligned reads.
    unsafe {
        if !(p as usize).is_multiple_of(size as usize) {
            let mut b = [0u8; 8];
            std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), size as usize);
            return u64::from_le_bytes(b);
        }
        match size {
            1 => (*(p as *const AtomicU8)).load(Ordering::Relaxed) as u64,
            2 => (*(p as *const AtomicU16)).load(Ordering::Relaxed) as u64,
            4 => (*(p as *const AtomicU32)).load(Ordering::Relaxed) as u64,
            _ => (*(p as *const AtomicU64)).load(Ordering::Relaxed),
        }
    }
}

/// # Safety
/// `p` must be valid for writes of `size` (1, 2, 4 or 8) bytes.
#[inline(always)]
pub(crate) unsafe fn host_store(p: *mut u8, size: u8, value: u64) {
    // SAFETY: as in `host_load`.
    unsafe {
        if !(p as usize).is_multiple_of(size as usize) {
            let b = value.to_le_bytes();
            std::ptr::copy_nonoverlapping(b.as_ptr(), p, size as usize);
            return;
        }
        match size {
            1 => (*(p as *const AtomicU8)).store(value as u8, Ordering::Relaxed),
            2 => (*(p as *const AtomicU16)).store(value as u16, Ordering::Relaxed),
            4 => (*(p as *const AtomicU32)).store(value as u32, Ordering::Relaxed),
            _ => (*(p as *const AtomicU64)).store(value, Ordering::Relaxed),
        }
    }
}

/// Atomic compare-and-swap of an aligned value.
///
/// # Safety
/// `p` must be valid for `size` bytes and aligned to `size`.
unsafe fn host_cas(p: *mut u8, size: u8, old: u64, new: u64) -> bool {
    let (s, f) = (Ordering::SeqCst, Ordering::SeqCst);
    // SAFETY: per the contract, the atomic views are valid and aligned.
    unsafe {
        match size {
            1 => AtomicU8::from_ptr(p)
                .compare_exchange(old as u8, new as u8, s, f)
                .is_ok(),
            2 => AtomicU16::from_ptr(p.cast())
                .compare_exchange(old as u16, new as u16, s, f)
                .is_ok(),
            4 => AtomicU32::from_ptr(p.cast())
                .compare_exchange(old as u32, new as u32, s, f)
                .is_ok(),
            _ => AtomicU64::from_ptr(p.cast())
                .compare_exchange(old, new, s, f)
                .is_ok(),
        }
    }
}

/// 16-byte compare-and-swap.
///
/// # Safety
/// `p` must be valid for 16 bytes and 16-byte aligned.
#[cfg(target_arch = "x86_64")]
unsafe fn host_cas128(p: *mut u8, old: u128, new: u128) -> bool {
    let ok: u8;
    // SAFETY: per the contract; CMPXCHG16B compares rdx:rax with the 16 bytes at `p` and
    // stores rcx:rbx there if equal. rbx is reserved by LLVM, so the new low half is swapped
    // into it around the instruction.
    unsafe {
        std::arch::asm!(
            "xchg {lo}, rbx",
            "lock cmpxchg16b xmmword ptr [{p}]",
            "sete {ok}",
            "mov rbx, {lo}",
            p = in(reg) p,
            lo = inout(reg) new as u64 => _,
            ok = out(reg_byte) ok,
            inout("rax") old as u64 => _,
            inout("rdx") (old >> 64) as u64 => _,
            in("rcx") (new >> 64) as u64,
            options(nostack),
        );
    }
    ok != 0
}

/// 16-byte compare-and-swap (portable fallback: two 8-byte halves, the low one atomic; not
/// atomic against a racing writer of the high half).
///
/// # Safety
/// `p` must be valid for 16 bytes and 16-byte aligned.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn host_cas128(p: *mut u8, old: u128, new: u128) -> bool {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: per the contract.
    unsafe {
        let hi = AtomicU64::from_ptr(p.add(8).cast());
        if hi.load(Ordering::SeqCst) != (old >> 64) as u64 {
            return false;
        }
        if !host_cas(p, 8, old as u64, new as u64) {
            return false;
        }
        hi.store((new >> 64) as u64, Ordering::SeqCst);
    }
    true
}

impl Mem for SysMem {
    fn read(&mut self, addr: u64, size: u8) -> Result<u64, MemFault> {
        self.calls += 1;
        if let Some(addend) = self.fast.lookup(false, addr, size, self.regime.el) {
            // SAFETY: an inline-TLB hit is a RAM page the current regime lets this EL read,
            // and the access does not cross it (see `TlbFast`).
            return Ok(unsafe { host_load(addend.wrapping_add(addr) as *const u8, size) });
        }
        if (addr & PAGE_MASK) + size as u64 > PAGE {
            return self.read_split(addr, size as u64).map(|v| v as u64);
        }
        let t = self.target(addr, Access::Read)?;
        self.load(t, size, addr)
    }

    fn write(&mut self, addr: u64, size: u8, value: u64) -> Result<(), MemFault> {
        self.calls += 1;
        if let Some(addend) = self.fast.lookup(true, addr, size, self.regime.el) {
            // SAFETY: as in `read`, for writes.
            unsafe { host_store(addend.wrapping_add(addr) as *mut u8, size, value) };
            return Ok(());
        }
        if (addr & PAGE_MASK) + size as u64 > PAGE {
            return self.write_split(addr, size as u64, value.into());
        }
        let t = self.target(addr, Access::Write)?;
        self.store(t, size, value, addr)
    }

    fn fetch(&mut self, addr: u64) -> Result<u32, MemFault> {
        if !addr.is_multiple_of(4) {
            return Err(MemFault::new(addr, Access::Exec, FaultKind::Alignment));
        }
        match self.target(addr, Access::Exec)? {
            // SAFETY: an aligned word inside a RAM page.
            Target::Host(p) => Ok(unsafe { host_load(p, 4) } as u32),
            Target::Phys(pa) => self
                .space
                .mmio_read(self.cpu, pa, 4)
                .map(|v| v as u32)
                .map_err(|_| Self::bus_fault(addr, Access::Exec)),
        }
    }

    fn read128(&mut self, addr: u64) -> Result<u128, MemFault> {
        self.calls += 1;
        if (addr & PAGE_MASK) + 16 > PAGE {
            return self.read_split(addr, 16);
        }
        match self.target(addr, Access::Read)? {
            // SAFETY: 16 bytes inside one RAM page.
            Target::Host(p) => Ok(unsafe { (p as *const u128).read_unaligned() }),
            t @ Target::Phys(_) => {
                let lo = self.load(t, 8, addr)?;
                let hi = self.load(t.add(8), 8, addr)?;
                Ok(u128::from(lo) | (u128::from(hi) << 64))
            }
        }
    }

    fn write128(&mut self, addr: u64, value: u128) -> Result<(), MemFault> {
        self.calls += 1;
        if (addr & PAGE_MASK) + 16 > PAGE {
            return self.write_split(addr, 16, value);
        }
        match self.target(addr, Access::Write)? {
            Target::Host(p) => {
                // SAFETY: 16 bytes inside one RAM page.
                unsafe { (p as *mut u128).write_unaligned(value) };
                Ok(())
            }
            t @ Target::Phys(_) => {
                self.store(t, 8, value as u64, addr)?;
                self.store(t.add(8), 8, (value >> 64) as u64, addr)
            }
        }
    }

    fn cmpxchg(&mut self, addr: u64, size: u8, old: u64, new: u64) -> Result<bool, MemFault> {
        let p = self.atomic_target(addr, size as u64)?;
        // SAFETY: `p` is an aligned `size`-byte location in RAM.
        Ok(unsafe { host_cas(p, size, old, new) })
    }

    fn cmpxchg128(&mut self, addr: u64, old: u128, new: u128) -> Result<bool, MemFault> {
        let p = self.atomic_target(addr, 16)?;
        // SAFETY: `p` is a 16-byte aligned location in RAM.
        Ok(unsafe { host_cas128(p, old, new) })
    }

    fn zero(&mut self, addr: u64, len: u64) -> Result<(), MemFault> {
        // The bytes of the page holding `a` from `a` on, up to `end`.
        let chunk = |a: u64, end: u64| (PAGE - (a & PAGE_MASK)).min(end.wrapping_sub(a));
        // Translate every page first so a fault leaves memory untouched.
        let end = addr.wrapping_add(len);
        let mut a = addr;
        while a != end {
            self.target(a, Access::Write)?;
            a = a.wrapping_add(chunk(a, end));
        }
        let mut a = addr;
        while a != end {
            let n = chunk(a, end);
            match self.target(a, Access::Write)? {
                // SAFETY: `n` bytes from `p` stay inside one RAM page.
                Target::Host(p) => unsafe { std::ptr::write_bytes(p, 0, n as usize) },
                t @ Target::Phys(_) => {
                    for i in 0..n {
                        self.store(t.add(i), 1, 0, a.wrapping_add(i))?;
                    }
                }
            }
            a = a.wrapping_add(n);
        }
        Ok(())
    }

    fn system(&mut self) -> Option<&mut dyn SystemMem> {
        Some(self)
    }

    fn tlb_fast(&self) -> Option<TlbFast> {
        Some(self.fast.layout())
    }

    #[inline]
    fn exec_epoch(&mut self) -> u64 {
        // Other vCPUs' TLBIs bump it when they publish (they clear our inline tables).
        self.fast.epoch()
    }
}

impl SystemMem for SysMem {
    fn translate_exec(&mut self, va: u64) -> Result<u64, MemFault> {
        SysMem::translate_exec(self, va)
    }

    fn sync(&mut self, st: &CpuState) {
        let new = Regime::from_sys(&st.sys);
        let old = self.regime;
        // Entries are tagged with the EL and ASID they were made for, so those may change
        // freely. Anything else that decides translations drops them all.
        if new.mmu != old.mmu || new.wxn != old.wxn || new.tcr != old.tcr {
            self.tlb.flush();
            self.fast.clear();
        } else if new.asid() != self.asid {
            // The inline tables are not ASID-tagged (they hold EL-tagged entries, so an EL
            // change alone keeps them).
            self.fast.clear();
        } else if new != old {
            // Execute permissions depend on the EL; TTBR changes may remap code.
            self.fast.bump();
        }
        self.regime = new;
        self.asid = new.asid();
    }

    fn tlbi(&mut self, _st: &CpuState, op: Tlbi) {
        let mask = self.regime.asid_mask();
        self.tlb.invalidate(op, mask);
        // Publishing empties every vCPU's inline tables, ours included.
        self.broadcast
            .sync(self.cpu, &mut self.seen, &mut self.tlb, mask, Some(op));
    }

    fn translate(
        &mut self,
        st: &CpuState,
        va: u64,
        access: Access,
        el0: bool,
    ) -> Result<u64, MemFault> {
        let r = Regime::from_sys(&st.sys);
        let el = if el0 { 0 } else { r.el };
        let w = walk::walk(&self.space, &r, va, el, access)?;
        if !w.perms.allows(access) {
            return Err(MemFault::at_level(
                va,
                access,
                FaultKind::Permission,
                w.level,
            ));
        }
        Ok(w.pa)
    }

    fn counter(&mut self, retired: u64) -> u64 {
        (self.clock)(retired)
    }
}

#[cfg(test)]
mod tests;
