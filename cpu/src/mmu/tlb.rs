//! The per-vCPU software TLB, and the object through which vCPUs tell each other to
//! invalidate.
//!
//! Three direct-mapped arrays, one per access class (read, write, execute). An entry is made
//! for one 4 KiB page of virtual address space even when a larger block or page mapped it;
//! it remembers the mapping's size so TLBI by address removes every 4 KiB entry the
//! architectural entry would have covered. An entry is only ever in the array of an access
//! its translation permits, at the exception level it was walked for: a hit needs no
//! permission check.

use super::walk::VA_BITS;
use crate::mem::Access;
use crate::mem::TlbFast;
use crate::oplog::OpLog;
use crate::sys::Tlbi;
use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// log2 of the entries per access class.
pub const TLB_BITS: u32 = 10;
const ENTRIES: usize = 1 << TLB_BITS;

/// [`Entry::asid`] of a global entry (matches every ASID).
pub const GLOBAL: u32 = 1 << 16;

/// One cached translation of a 4 KiB virtual page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entry {
    /// [`Tlb::tag`] of the virtual page; 0 = empty.
    pub tag: u64,
    /// The ASID the entry belongs to, or [`GLOBAL`].
    pub asid: u32,
    /// log2 of the size of the mapping the page came from (12 for a 4K page).
    pub shift: u32,
    /// Physical address of the page.
    pub pa: u64,
    /// Host address of the page when it is RAM; 0 when it is a device or nothing (the
    /// access goes to the address space). Host mappings are never at address 0.
    pub host: usize,
}

fn class(access: Access) -> usize {
    match access {
        Access::Read => 0,
        Access::Write => 1,
        Access::Exec => 2,
    }
}

/// The software TLB of one vCPU.
pub struct Tlb {
    classes: [Box<[Entry]>; 3],
    /// Slots holding entries from mappings larger than 4 KiB, indexed by the region of the
    /// mapping (its shift and its VA >> shift), so TLBI by address looks at the entries that
    /// may cover the address only. A list may name slots since overwritten (checked against
    /// `listed` when it is visited); a slot is listed under one key at a time.
    large: HashMap<Region, Vec<(u8, u16)>>,
    /// The key each slot is listed under in `large`, if any.
    listed: [Box<[Option<Region>]>; 3],
    /// Bit `s` is set while `large` may hold a key with shift `s`.
    shifts: u64,
}

impl Default for Tlb {
    fn default() -> Self {
        Self::new()
    }
}

/// (log2 of a mapping's size, its VA >> that): where [`Tlb`] lists large entries.
type Region = (u32, u64);

/// The key under which an entry of a `shift`-sized mapping holding `va` is listed.
#[inline]
fn region(shift: u32, va: u64) -> Region {
    (shift, (va & VA_BITS) >> shift)
}

impl Tlb {
    pub fn new() -> Self {
        let empty = || vec![Entry::default(); ENTRIES].into_boxed_slice();
        let unlisted = || vec![None; ENTRIES].into_boxed_slice();
        Self {
            classes: [empty(), empty(), empty()],
            large: HashMap::new(),
            listed: [unlisted(), unlisted(), unlisted()],
            shifts: 0,
        }
    }

    /// The tag of the (untagged) virtual page holding `va` as seen from `el`. Never 0.
    #[inline]
    pub fn tag(va: u64, el: u8) -> u64 {
        (va & !0xfff) | ((el as u64) << 1) | 1
    }

    #[inline]
    fn index(tag: u64) -> usize {
        (tag >> 12) as usize & (ENTRIES - 1)
    }

    #[inline]
    pub fn lookup(&self, access: Access, tag: u64, asid: u16) -> Option<&Entry> {
        let e = &self.classes[class(access)][Self::index(tag)];
        (e.tag == tag && (e.asid == GLOBAL || e.asid == asid as u32)).then_some(e)
    }

    pub fn insert(&mut self, access: Access, e: Entry) {
        let c = class(access);
        let i = Self::index(e.tag);
        self.classes[c][i] = e;
        if e.shift > 12 && e.shift < 64 {
            let key = region(e.shift, e.tag);
            if self.listed[c][i] != Some(key) {
                self.listed[c][i] = Some(key);
                self.large.entry(key).or_default().push((c as u8, i as u16));
                self.shifts |= 1 << e.shift;
            }
        } else {
            self.listed[c][i] = None;
        }
    }

    pub fn flush(&mut self) {
        for c in &mut self.classes {
            c.fill(Entry::default());
        }
        for l in &mut self.listed {
            l.fill(None);
        }
        self.large.clear();
        self.shifts = 0;
    }

    /// Apply one TLB maintenance operation. ASIDs in `op` are masked with `asid_mask`.
    pub fn invalidate(&mut self, op: Tlbi, asid_mask: u16) {
        let matches = |e: &Entry| -> bool {
            if e.tag == 0 {
                return false;
            }
            let same_va = |va: u64| {
                let mask = VA_BITS & !((1u64 << e.shift) - 1);
                (e.tag ^ va) & mask == 0
            };
            match op {
                Tlbi::All => true,
                Tlbi::Asid(a) => e.asid == (a & asid_mask) as u32,
                Tlbi::Va { va, asid } => {
                    (e.asid == GLOBAL || e.asid == (asid & asid_mask) as u32) && same_va(va)
                }
                Tlbi::VaAllAsids { va } => same_va(va),
            }
        };
        match op {
            Tlbi::All => self.flush(),
            Tlbi::Asid(_) => {
                for c in &mut self.classes {
                    for e in c.iter_mut().filter(|e| matches(e)) {
                        *e = Entry::default();
                    }
                }
            }
            Tlbi::Va { va, .. } | Tlbi::VaAllAsids { va } => {
                // 4 KiB entries of the page sit in one slot per class (either EL's tag).
                let i = Self::index(Self::tag(va, 0));
                for c in &mut self.classes {
                    if matches(&c[i]) {
                        c[i] = Entry::default();
                    }
                }
                // Entries of larger mappings are listed by the region they cover.
                let mut shifts = self.shifts;
                while shifts != 0 {
                    let shift = shifts.trailing_zeros();
                    shifts &= shifts - 1;
                    let key = region(shift, va);
                    let Some(slots) = self.large.remove(&key) else {
                        continue;
                    };
                    for (c, i) in slots {
                        let (c, i) = (c as usize, i as usize);
                        if self.listed[c][i] != Some(key) {
                            continue; // overwritten since, and listed elsewhere if large
                        }
                        let e = &mut self.classes[c][i];
                        if matches(e) || e.tag == 0 {
                            *e = Entry::default();
                            self.listed[c][i] = None;
                        } else {
                            // Another ASID's entry: keep it listed.
                            self.large.entry(key).or_default().push((c as u8, i as u16));
                        }
                    }
                }
            }
        }
    }
}

/// log2 of the entries of each of [`FastTables`]' two tables.
pub const FAST_BITS: u32 = 10;
const FAST_ENTRIES: usize = 1 << FAST_BITS;

/// The inline TLB compiled code probes ([`TlbFast`]): for reads and for writes, a
/// direct-mapped table of `[tag, addend]` pairs, valid for the current EL's tag and the
/// current regime and ASID only. Its owner fills it from entries of its [`Tlb`]; anyone (the
/// owner on a regime change or TLBI, other vCPUs when they broadcast a TLBI) may empty it.
///
/// Only tags are ever cleared, never addends, so compiled code that read a valid tag just
/// before it was cleared still finds the addend that went with it.
pub struct FastTables {
    /// Read entries, then write entries, two words each.
    words: Box<[AtomicU64]>,
    /// The exec epoch: bumped whenever translations of code may have changed (every
    /// [`Self::clear`], EL changes, a TLBI of a page in a [`Regions`] of `code`). A
    /// code-cache entry validated against the translation at one epoch stays valid while the
    /// epoch is unchanged.
    epoch: AtomicU64,
    /// Where the tables hold pages of mappings larger than a page: a TLBI by VA there drops
    /// the whole table rather than one slot.
    large: Regions,
    /// Where the owner has translated code ([`Self::mark_code`]): only a TLBI by VA there
    /// bumps the exec epoch (which sends every cached block back through the translation).
    code: Regions,
}

/// A conservative set of 2 MiB regions of virtual addresses (hashed; a hit may be a false
/// positive, a region once added stays until [`Regions::reset`]), and whether a mapping
/// larger than a region was added, which makes every address a hit.
#[derive(Default)]
struct Regions {
    bits: [AtomicU64; 4],
    huge: std::sync::atomic::AtomicBool,
}

impl Regions {
    const SHIFT: u32 = 21;

    fn bit(va: u64) -> (usize, u64) {
        let r = ((va & VA_BITS) >> Self::SHIFT) as usize & 255;
        (r >> 6, 1 << (r & 63))
    }

    /// Add the region of `va`, reached through a mapping of `1 << shift` bytes.
    fn add(&self, va: u64, shift: u32) {
        if shift > Self::SHIFT {
            self.huge.store(true, Ordering::Relaxed);
        }
        let (w, b) = Self::bit(va);
        if self.bits[w].load(Ordering::Relaxed) & b == 0 {
            self.bits[w].fetch_or(b, Ordering::Relaxed);
        }
    }

    fn hit(&self, va: u64) -> bool {
        let (w, b) = Self::bit(va);
        self.huge.load(Ordering::Relaxed) || self.bits[w].load(Ordering::Relaxed) & b != 0
    }

    fn reset(&self) {
        self.huge.store(false, Ordering::Relaxed);
        for w in &self.bits {
            w.store(0, Ordering::Relaxed);
        }
    }
}

impl Default for FastTables {
    fn default() -> Self {
        Self::new()
    }
}

impl FastTables {
    pub fn new() -> Self {
        Self {
            words: (0..4 * FAST_ENTRIES).map(|_| AtomicU64::new(0)).collect(),
            epoch: AtomicU64::new(1),
            large: Regions::default(),
            code: Regions::default(),
        }
    }

    /// Where compiled code finds the tables.
    pub fn layout(&self) -> TlbFast {
        let base = self.words.as_ptr() as usize;
        TlbFast {
            read: base,
            write: base + FAST_ENTRIES * TlbFast::ENTRY,
            index_bits: FAST_BITS,
            epoch: &self.epoch as *const AtomicU64 as usize,
        }
    }

    /// The word index of the tag of `tag`'s slot in `write`'s table.
    #[inline]
    fn slot(write: bool, tag: u64) -> usize {
        let i = (tag >> TlbFast::PAGE_SHIFT) as usize & (FAST_ENTRIES - 1);
        2 * (i + if write { FAST_ENTRIES } else { 0 })
    }

    /// Whether the slot for `tag` holds it.
    #[inline]
    pub fn holds(&self, write: bool, tag: u64) -> bool {
        self.words[Self::slot(write, tag)].load(Ordering::Relaxed) == tag
    }

    /// The addend of the entry an access of `size` (1..=16) bytes at `va` from `el` may use,
    /// exactly as compiled code probes it ([`TlbFast`]): None for a miss or a page-crossing
    /// access.
    #[inline]
    pub fn lookup(&self, write: bool, va: u64, size: u8, el: u8) -> Option<u64> {
        let want = TlbFast::tag(va.wrapping_add(size as u64 - 1), el);
        let k = Self::slot(write, TlbFast::tag(va, el));
        (self.words[k].load(Ordering::Acquire) == want)
            .then(|| self.words[k + 1].load(Ordering::Relaxed))
    }

    /// Make the page of `tag`, of a mapping of `1 << shift` bytes, reach host `addend + va`
    /// (owner only).
    pub fn insert(&self, write: bool, tag: u64, addend: u64, shift: u32) {
        if shift > 12 {
            self.large.add(tag, shift);
        }
        let k = Self::slot(write, tag);
        // Addend first: a reader that sees the new tag finds the new addend with it (both
        // are read by the owner's own thread; other threads only clear tags).
        self.words[k + 1].store(addend, Ordering::Relaxed);
        self.words[k].store(tag, Ordering::Release);
    }

    /// Empty the slot of `tag` (owner only).
    pub fn remove(&self, write: bool, tag: u64) {
        self.words[Self::slot(write, tag)].store(0, Ordering::Relaxed);
    }

    /// Empty both tables (any thread); bumps the exec epoch.
    pub fn clear(&self) {
        self.large.reset();
        for t in self.words.iter().step_by(2) {
            t.store(0, Ordering::Relaxed);
        }
        self.bump();
    }

    /// Note that the owner translated code at `va`, reached through a mapping of
    /// `1 << shift` bytes. The owner must check for broadcasts again afterwards (with a
    /// SeqCst fence between), as for a fill: see [`TlbBroadcast::register`].
    pub fn mark_code(&self, va: u64, shift: u32) {
        self.code.add(va, shift);
    }

    /// Apply a TLBI (any thread): by VA, empty that page's slots, or the whole tables where
    /// they hold pages of larger mappings around it, and bump the exec epoch only where code
    /// was translated; anything else empties everything.
    pub fn invalidate(&self, op: Tlbi) {
        let va = match op {
            Tlbi::Va { va, .. } | Tlbi::VaAllAsids { va } => va,
            Tlbi::All | Tlbi::Asid(_) => return self.clear(),
        };
        if self.large.hit(va) {
            return self.clear();
        }
        let tag = TlbFast::tag(va, 0);
        for write in [false, true] {
            self.words[Self::slot(write, tag)].store(0, Ordering::Relaxed);
        }
        if self.code.hit(va) {
            self.bump();
        }
    }

    /// Start a new exec epoch (any thread).
    #[inline]
    pub fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The current exec epoch.
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}

/// TLB maintenance broadcast between the vCPUs of one machine (the inner-shareable domain).
/// Every [`super::SysMem`] of a machine holds the same one; each compares [`Self::epoch`]
/// with what it has applied before every lookup and catches up when it differs.
#[derive(Default)]
pub struct TlbBroadcast {
    /// Sequence number of the newest operation in the log.
    epoch: AtomicU64,
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    ops: OpLog<Tlbi>,
    /// Every vCPU's inline tables, emptied on every published operation.
    fast: Vec<Weak<FastTables>>,
}

impl TlbBroadcast {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Have every operation published from now on empty `fast` (a vCPU's inline tables)
    /// before [`Self::sync`] returns to the publisher.
    ///
    /// The owner of `fast` must check [`Self::epoch`] again after each fill (with a SeqCst
    /// fence between): a fill that raced with a publication may have landed after it emptied
    /// the tables.
    pub fn register(&self, fast: &Arc<FastTables>) {
        let mut log = self.lock();
        log.fast.retain(|w| w.strong_count() > 0);
        log.fast.push(Arc::downgrade(fast));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bring `tlb` (of CPU `cpu`, which has applied everything up to `*seen`) up to date
    /// with other CPUs' operations, and, if `op` is given, publish it. `*seen` ends at the
    /// newest sequence number.
    pub fn sync(
        &self,
        cpu: usize,
        seen: &mut u64,
        tlb: &mut Tlb,
        asid_mask: u16,
        op: Option<Tlbi>,
    ) {
        let mut log = self.lock();
        let newest = self.epoch.load(Ordering::Relaxed);
        if newest != *seen {
            match log.ops.since(cpu, *seen) {
                Some(missed) => missed.for_each(|o| tlb.invalidate(o, asid_mask)),
                // Fell behind the log: whatever was missed is covered by flushing it all.
                None => tlb.flush(),
            }
        }
        let mut seq = newest;
        if let Some(o) = op {
            seq += 1;
            log.ops.push(seq, cpu, o);
            self.epoch.store(seq, Ordering::SeqCst);
            // Pairs with the fence in a filling owner (see `register`): either its fill is
            // emptied here, or it sees the new epoch and takes the fill back.
            fence(Ordering::SeqCst);
            for f in log.fast.iter().filter_map(Weak::upgrade) {
                f.invalidate(o);
            }
        }
        *seen = seq;
    }
}

#[cfg(test)]
mod region_tests {
    use super::*;

    fn block(va: u64, asid: u32) -> Entry {
        Entry {
            tag: Tlb::tag(va, 1),
            asid,
            shift: 21,
            pa: 0x4000_0000,
            host: 0,
        }
    }

    #[test]
    fn tlbi_by_va_removes_only_the_covering_asids_large_entries() {
        let mut t = Tlb::new();
        let (a, b) = (0x20_0000u64, 0x20_1000u64);
        t.insert(Access::Read, block(a, 5));
        t.insert(Access::Read, block(b, 6));
        t.insert(Access::Read, block(0x60_0000, 5));
        // TLBI VAE1 for ASID 5 anywhere in the first 2 MiB block.
        t.invalidate(
            Tlbi::Va {
                va: 0x3f_f000,
                asid: 5,
            },
            0xffff,
        );
        assert!(t.lookup(Access::Read, Tlb::tag(a, 1), 5).is_none());
        assert!(t.lookup(Access::Read, Tlb::tag(b, 1), 6).is_some());
        assert!(t.lookup(Access::Read, Tlb::tag(0x60_0000, 1), 5).is_some());
        // ASID 6's entry is still listed: a later TLBI for it finds it.
        t.invalidate(Tlbi::VaAllAsids { va: 0x20_0000 }, 0xffff);
        assert!(t.lookup(Access::Read, Tlb::tag(b, 1), 6).is_none());
    }

    #[test]
    fn a_slot_reused_by_another_region_is_found_under_the_new_one() {
        let mut t = Tlb::new();
        // Same slot (index by the 4K page number modulo the TLB size), two regions.
        let first = 0x20_0000u64;
        let second = first + ((ENTRIES as u64) << 12);
        t.insert(Access::Write, block(first, GLOBAL));
        t.insert(Access::Write, block(second, GLOBAL));
        t.invalidate(
            Tlbi::VaAllAsids {
                va: second + 0x1000,
            },
            0xffff,
        );
        assert!(t.lookup(Access::Write, Tlb::tag(second, 1), 1).is_none());
        // A small entry in the slot takes it off the large lists.
        t.insert(Access::Write, block(first, GLOBAL));
        t.insert(
            Access::Write,
            Entry {
                shift: 12,
                ..block(first, GLOBAL)
            },
        );
        t.invalidate(Tlbi::VaAllAsids { va: first + 0x5000 }, 0xffff);
        assert!(t.lookup(Access::Write, Tlb::tag(first, 1), 1).is_some());
    }
}

#[cfg(test)]
mod fast_tests {
    use super::*;

    const EL1: u8 = 1;

    fn fill(f: &FastTables, pages: &[(u64, u32)]) {
        for &(va, shift) in pages {
            let tag = TlbFast::tag(va, EL1);
            f.insert(false, tag, 0x1000, shift);
            f.insert(true, tag, 0x1000, shift);
        }
    }

    fn filled(pages: &[(u64, u32)]) -> FastTables {
        let f = FastTables::new();
        fill(&f, pages);
        f
    }

    fn held(f: &FastTables, va: u64) -> bool {
        let tag = TlbFast::tag(va, EL1);
        f.holds(false, tag) && f.holds(true, tag)
    }

    #[test]
    fn tlbi_by_va_empties_only_its_page_and_bumps_the_epoch_only_over_code() {
        let (a, b, code) = (0x40_0000u64, 0x40_1000u64, 0x1234_0000u64);
        let f = filled(&[(a, 12), (b, 12)]);
        f.mark_code(code, 12);
        let epoch = f.epoch();
        f.invalidate(Tlbi::VaAllAsids { va: a });
        assert!(!held(&f, a) && held(&f, b));
        assert_eq!(f.epoch(), epoch, "no code there: cached blocks stay valid");
        f.invalidate(Tlbi::Va {
            va: code + 0x3000,
            asid: 1,
        });
        assert!(held(&f, b));
        assert_ne!(
            f.epoch(),
            epoch,
            "code in that 2 MiB region: blocks are checked again"
        );
    }

    #[test]
    fn tlbi_near_a_page_of_a_block_mapping_empties_everything() {
        let (a, b) = (0x40_0000u64, 0x80_5000u64);
        let f = filled(&[(a, 21), (b, 12)]);
        let epoch = f.epoch();
        // Another page of the same 2 MiB block: the block's whole entry goes, so must `a`.
        f.invalidate(Tlbi::VaAllAsids { va: a + 0x7000 });
        assert!(!held(&f, a) && !held(&f, b));
        assert_ne!(f.epoch(), epoch);
        // After the full clear the block's region is forgotten: TLBIs are per page again.
        fill(&f, &[(a, 12), (a + 0x1000, 12)]);
        f.invalidate(Tlbi::VaAllAsids { va: a });
        assert!(!held(&f, a) && held(&f, a + 0x1000));
    }

    #[test]
    fn code_through_a_huge_mapping_makes_every_tlbi_bump_the_epoch() {
        let f = FastTables::new();
        f.mark_code(0x4000_0000, 30);
        let epoch = f.epoch();
        f.invalidate(Tlbi::VaAllAsids { va: 0x9999_0000 });
        assert_ne!(f.epoch(), epoch);
    }
}
