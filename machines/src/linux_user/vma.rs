//! The guest's memory map as Linux keeps it: a set of non-overlapping areas (VMAs) used to
//! place new mappings, to split on partial munmap/mprotect, and to render `/proc/self/maps`.

use super::memory::{perm, PAGE};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Lowest address a mapping may get (vm.mmap_min_addr).
pub const MIN_ADDR: u64 = 0x10000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vma {
    pub end: u64,
    /// Guest permissions (memory::perm bits).
    pub prot: u8,
    /// MAP_SHARED.
    pub shared: bool,
    /// A shared mapping of a file opened read-only: never writable.
    pub no_write: bool,
    /// File offset of the area's start (0 for anonymous memory).
    pub offset: u64,
    pub dev: u64,
    pub inode: u64,
    /// Path, `[heap]`, `[stack]` or empty.
    pub name: String,
}

impl Vma {
    pub fn anon(end: u64, prot: u8) -> Self {
        Self {
            end,
            prot,
            shared: false,
            no_write: false,
            offset: 0,
            dev: 0,
            inode: 0,
            name: String::new(),
        }
    }
}

pub fn page_up(a: u64) -> u64 {
    a.wrapping_add(PAGE - 1) & !(PAGE - 1)
}

/// The memory map plus the program break.
#[derive(Debug, Default)]
pub struct Mm {
    pub vmas: BTreeMap<u64, Vma>,
    pub brk_start: u64,
    pub brk: u64,
    /// Mappings without a usable hint go top-down from here.
    pub mmap_top: u64,
}

impl Mm {
    pub fn new(brk: u64, mmap_top: u64) -> Self {
        Self {
            vmas: BTreeMap::new(),
            brk_start: brk,
            brk,
            mmap_top,
        }
    }

    /// Split the area containing `addr` (strictly inside) in two.
    fn split_at(&mut self, addr: u64) {
        let Some((&s, v)) = self.vmas.range(..addr).next_back() else {
            return;
        };
        if v.end <= addr || s == addr {
            return;
        }
        let mut hi = v.clone();
        hi.offset += if hi.inode != 0 || hi.shared {
            addr - s
        } else {
            0
        };
        if let Some(lo) = self.vmas.get_mut(&s) {
            lo.end = addr;
        }
        self.vmas.insert(addr, hi);
    }

    /// Remove `[start, end)` from the map; returns the removed pieces.
    pub fn remove(&mut self, start: u64, end: u64) -> Vec<(u64, Vma)> {
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.vmas.range(start..end).map(|(&k, _)| k).collect();
        keys.into_iter()
            .filter_map(|k| self.vmas.remove(&k).map(|v| (k, v)))
            .collect()
    }

    pub fn insert(&mut self, start: u64, vma: Vma) {
        self.remove(start, vma.end);
        self.vmas.insert(start, vma);
    }

    /// Whether any area overlaps `[start, end)`.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        if let Some((_, v)) = self.vmas.range(..start.saturating_add(1)).next_back() {
            if v.end > start {
                return true;
            }
        }
        self.vmas.range(start..end).next().is_some()
    }

    /// Whether `[start, end)` is entirely covered by areas.
    pub fn covered(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        if let Some((&s, v)) = self.vmas.range(..=start).next_back() {
            if s <= start && v.end > start {
                at = v.end;
            }
        }
        if at == start {
            return start >= end;
        }
        for (&s, v) in self.vmas.range(start + 1..end) {
            if s != at {
                return false;
            }
            at = v.end;
        }
        at >= end
    }

    /// The area containing `addr`.
    pub fn find(&self, addr: u64) -> Option<(u64, &Vma)> {
        let (&s, v) = self.vmas.range(..=addr).next_back()?;
        (v.end > addr).then_some((s, v))
    }

    /// A free range of `len` bytes: the highest gap below `top`.
    pub fn find_free(&self, len: u64, top: u64) -> Option<u64> {
        let mut hi = top;
        for (&s, v) in self.vmas.range(..top).rev() {
            if v.end <= hi && hi - v.end >= len {
                return Some(hi - len);
            }
            hi = hi.min(s);
        }
        (hi >= MIN_ADDR + len).then(|| hi - len)
    }

    /// Pick the address for a new mapping: the hint when free, else top-down.
    pub fn place(&self, hint: u64, len: u64, limit: u64) -> Option<u64> {
        let hint = hint & !(PAGE - 1);
        if hint >= MIN_ADDR
            && hint.checked_add(len).is_some_and(|e| e <= limit)
            && !self.overlaps(hint, hint + len)
        {
            return Some(hint);
        }
        self.find_free(len, self.mmap_top)
            .or_else(|| self.find_free(len, limit))
    }

    /// Change the permissions of `[start, end)` (already checked to be covered).
    pub fn protect(&mut self, start: u64, end: u64, prot: u8) {
        self.split_at(start);
        self.split_at(end);
        for (_, v) in self.vmas.range_mut(start..end) {
            v.prot = prot;
        }
    }

    /// `/proc/self/maps` text.
    pub fn render_maps(&self) -> String {
        let mut out = String::new();
        for (&s, v) in &self.vmas {
            let p = |bit, c| if v.prot & bit != 0 { c } else { '-' };
            let _ = write!(
                out,
                "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {}",
                s,
                v.end,
                p(perm::R, 'r'),
                p(perm::W, 'w'),
                p(perm::X, 'x'),
                if v.shared { 's' } else { 'p' },
                v.offset,
                (v.dev >> 8) & 0xfff,
                v.dev & 0xff,
                v.inode
            );
            if v.name.is_empty() {
                out.push('\n');
            } else {
                let used = out.len() - out.rfind('\n').map_or(0, |i| i + 1);
                let pad = 73usize.saturating_sub(used).max(1);
                let _ = writeln!(out, "{:pad$}{}", "", v.name);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mm() -> Mm {
        let mut m = Mm::new(0x1000_0000, 0x7f_0000_0000);
        m.insert(0x40_0000, Vma::anon(0x40_4000, perm::R | perm::X));
        m
    }

    #[test]
    fn munmap_in_middle_splits_an_area() {
        let mut m = mm();
        let removed = m.remove(0x40_1000, 0x40_2000);
        assert_eq!(removed.len(), 1);
        let keys: Vec<_> = m.vmas.iter().map(|(&s, v)| (s, v.end)).collect();
        assert_eq!(keys, vec![(0x40_0000, 0x40_1000), (0x40_2000, 0x40_4000)]);
    }

    #[test]
    fn placement_is_top_down_and_honours_free_hints() {
        let mut m = mm();
        let a = m.place(0, 0x2000, 1 << 40).unwrap();
        assert_eq!(a, 0x7f_0000_0000 - 0x2000);
        m.insert(a, Vma::anon(a + 0x2000, perm::R));
        let b = m.place(0, 0x1000, 1 << 40).unwrap();
        assert_eq!(b, a - 0x1000);
        assert_eq!(m.place(0x50_0000, 0x1000, 1 << 40), Some(0x50_0000));
        // A hint on a used range is ignored.
        assert_ne!(m.place(0x40_0000, 0x1000, 1 << 40), Some(0x40_0000));
    }

    #[test]
    fn mprotect_splits_and_coverage_detects_holes() {
        let mut m = mm();
        assert!(m.covered(0x40_0000, 0x40_4000));
        assert!(!m.covered(0x40_0000, 0x40_5000));
        m.protect(0x40_1000, 0x40_2000, perm::R);
        assert_eq!(m.vmas.len(), 3);
        assert_eq!(m.find(0x40_1800).unwrap().1.prot, perm::R);
        assert!(m.covered(0x40_0000, 0x40_4000));
    }

    #[test]
    fn maps_text_looks_like_linux() {
        let mut m = mm();
        let mut v = Vma::anon(0x7f_ffff_0000, perm::R | perm::W);
        v.name = "[stack]".into();
        m.insert(0x7f_ff7f_0000, v);
        let t = m.render_maps();
        assert!(t.starts_with("00400000-00404000 r-xp 00000000 00:00 0\n"));
        assert!(t.contains("7fff7f0000-7fffff0000 rw-p 00000000 00:00 0"));
        assert!(t.trim_end().ends_with("[stack]"));
    }
}
