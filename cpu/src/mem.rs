//! The CPU's view of memory. A machine implements [`Mem`]: user mode maps guest virtual
//! addresses straight onto a reserved host range; system mode goes through the MMU and bus.

/// What an access was doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Exec,
}

/// Why an access failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Nothing is mapped at the address.
    Unmapped,
    /// Mapped, but the access is not permitted.
    Permission,
    /// The access needs alignment it does not have (exclusives, acquire/release).
    Alignment,
    /// A bus error behind a mapping (a file mapping beyond end of file, a device error).
    Bus,
    /// The translation table entry has its access flag clear (system mode).
    AccessFlag,
}

/// A failed memory access, reported to the machine with the address that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemFault {
    pub addr: u64,
    pub access: Access,
    pub kind: FaultKind,
    /// Translation table level the fault was found at (system mode; 0 otherwise).
    pub level: u8,
}

impl MemFault {
    pub fn new(addr: u64, access: Access, kind: FaultKind) -> Self {
        Self {
            addr,
            access,
            kind,
            level: 0,
        }
    }

    /// A fault found by a translation table walk at `level`.
    pub fn at_level(addr: u64, access: Access, kind: FaultKind, level: u8) -> Self {
        Self {
            addr,
            access,
            kind,
            level,
        }
    }
}

impl std::fmt::Display for MemFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} fault on {:?} at {:#x}",
            self.kind, self.access, self.addr
        )
    }
}

/// A flat window the JIT may access directly: guest address `a` is host address `base + a`
/// when `a + size <= limit` and the permission byte `perms[a >> 12]` of every page touched has
/// the access's bit ([`FastMem::READ`] or [`FastMem::WRITE`]). Permission bytes may change
/// while code runs (mprotect); the window itself must stay valid as long as the memory does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastMem {
    pub base: usize,
    pub perms: usize,
    pub limit: u64,
    /// Accesses inside the window skip the permission bytes: the host mapping of every page
    /// enforces the guest's permissions (inaccessible where it may not read, read-only
    /// where it may not write), so a forbidden access faults in the host, and the memory's
    /// owner turns that fault into the guest's (fatal) one. Only for a guest that cannot
    /// catch the fault: compiled code holds guest registers a fault handler cannot recover.
    /// The [`FastMem::GUARD`] bytes after `limit` are inaccessible on the host too, so code
    /// may send an access outside the window there instead of branching.
    pub host_checks: bool,
}

impl FastMem {
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const PAGE_SHIFT: u32 = 12;
    /// Inaccessible bytes after the window when `host_checks` is on (at least one access).
    pub const GUARD: u64 = 1 << 16;
}

/// The inline TLB compiled code may probe before calling [`Mem::read`] and [`Mem::write`]
/// (system mode): two direct-mapped tables, one for reads and one for writes, of
/// `1 << index_bits` entries of two `u64`s each, `[tag, addend]`, at stable host addresses.
///
/// An access of `size` bytes at virtual `va` may go straight to host address `va + addend` of
/// the entry at index `(va >> 12) & mask` when that entry's tag equals
/// [`TlbFast::tag`]`(va + size - 1, el)` for the current EL (so a page-crossing access never
/// matches). Entries only ever hold RAM pages the current translation regime permits for
/// that access at that EL; the memory clears them whenever that may stop being true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlbFast {
    pub read: usize,
    pub write: usize,
    pub index_bits: u32,
    /// Address of the memory's exec epoch (an `AtomicU64`, see [`Mem::exec_epoch`]).
    pub epoch: usize,
}

impl TlbFast {
    pub const PAGE_SHIFT: u32 = 12;
    /// Bytes per entry.
    pub const ENTRY: usize = 16;

    /// The tag of the page holding `va` at exception level `el`: never 0 (0 = empty).
    #[inline]
    pub fn tag(va: u64, el: u8) -> u64 {
        (va & !0xfff) | ((el as u64) << 1) | 1
    }
}

/// Guest memory as the CPU sees it. Sizes are in bytes: 1, 2, 4 or 8 for scalar accesses.
/// Values are little-endian and zero-extended into the `u64`.
pub trait Mem {
    fn read(&mut self, addr: u64, size: u8) -> Result<u64, MemFault>;
    fn write(&mut self, addr: u64, size: u8, value: u64) -> Result<(), MemFault>;

    /// The direct window compiled code may use instead of calling [`Mem::read`] and
    /// [`Mem::write`], if this memory has one.
    fn fast_path(&self) -> Option<FastMem> {
        None
    }

    /// The inline TLB compiled code may probe instead of calling [`Mem::read`] and
    /// [`Mem::write`], if this memory has one. It must stay at the same address for as long
    /// as the memory lives (compiled code embeds it).
    fn tlb_fast(&self) -> Option<TlbFast> {
        None
    }

    /// A number that changes whenever the translation of instruction addresses may have
    /// changed (TLB maintenance, regime, ASID or EL changes). A code-cache entry whose pc was
    /// checked against the translation at one epoch may be reused without checking again
    /// while the epoch is the same. Memories without translation return 0 forever.
    #[inline]
    fn exec_epoch(&mut self) -> u64 {
        0
    }

    /// Fetch one instruction word.
    fn fetch(&mut self, addr: u64) -> Result<u32, MemFault>;

    /// Atomically replace `old` by `new` at `addr` (size 1, 2, 4 or 8). Returns whether the
    /// swap happened. The address is aligned to `size` by the caller.
    fn cmpxchg(&mut self, addr: u64, size: u8, old: u64, new: u64) -> Result<bool, MemFault>;

    /// 16-byte compare-and-swap for the pair exclusives. The address is 16-byte aligned.
    fn cmpxchg128(&mut self, addr: u64, old: u128, new: u128) -> Result<bool, MemFault>;

    /// A 16-byte read (Q registers, pairs). Both halves are checked before either is used.
    fn read128(&mut self, addr: u64) -> Result<u128, MemFault> {
        let lo = self.read(addr, 8)?;
        let hi = self.read(addr.wrapping_add(8), 8)?;
        Ok(u128::from(lo) | (u128::from(hi) << 64))
    }

    /// A 16-byte write. Implementations should check both halves before writing either.
    fn write128(&mut self, addr: u64, value: u128) -> Result<(), MemFault> {
        // Probe the second half first so a fault leaves memory unchanged.
        self.read(addr.wrapping_add(8), 1)?;
        self.write(addr, 8, value as u64)?;
        self.write(addr.wrapping_add(8), 8, (value >> 64) as u64)
    }

    /// The system-mode interface (MMU, TLB maintenance, counter), when this memory is a
    /// whole machine's rather than a process's.
    fn system(&mut self) -> Option<&mut dyn crate::sys::SystemMem> {
        None
    }

    /// Zero `len` bytes at `addr` (DC ZVA).
    fn zero(&mut self, addr: u64, len: u64) -> Result<(), MemFault> {
        let mut a = addr;
        while a < addr + len {
            self.write(a, 8, 0)?;
            a += 8;
        }
        Ok(())
    }
}
