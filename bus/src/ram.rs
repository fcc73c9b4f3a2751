//! Guest RAM: one anonymous host mapping per region, shared by vCPU threads and device
//! backends (virtio DMA). The CPU reaches it through a host pointer (the TLB addend); devices
//! use the checked copy functions here.

use crate::BusError;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// A region of guest physical RAM backed by host memory.
pub struct Ram {
    base: u64,
    size: u64,
    ptr: *mut u8,
}

// SAFETY: the mapping is owned by this struct and lives until drop; concurrent guest accesses
// to the same bytes are the guest's business (as on hardware), and every access here is
// bounds-checked against the mapping.
unsafe impl Send for Ram {}
// SAFETY: as above; no interior state besides the mapped bytes.
unsafe impl Sync for Ram {}

impl Ram {
    /// Map `size` bytes (a multiple of 4 KiB) of zeroed RAM at guest physical `base`. Pages are
    /// committed on first touch.
    pub fn new(base: u64, size: u64) -> Result<Ram, BusError> {
        if size == 0 || !size.is_multiple_of(4096) || base.checked_add(size - 1).is_none() {
            return Err(BusError::BadRange { base, len: size });
        }
        // SAFETY: an anonymous private mapping with no address hint; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(BusError::NoMemory(size));
        }
        Ok(Ram {
            base,
            size,
            ptr: ptr.cast(),
        })
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether `[pa, pa + len)` lies inside this region.
    pub fn contains(&self, pa: u64, len: u64) -> bool {
        pa >= self.base
            && pa
                .checked_add(len)
                .is_some_and(|end| end <= self.base + self.size)
    }

    /// Host address of guest physical `pa`, valid for `len` bytes.
    pub fn host_ptr(&self, pa: u64, len: u64) -> Option<*mut u8> {
        // SAFETY: the offset is inside the mapping (checked by `contains`).
        self.contains(pa, len)
            .then(|| unsafe { self.ptr.add((pa - self.base) as usize) })
    }

    /// Host address of the first byte (for the TLB addend: host = pa - base + ptr).
    pub fn host_base(&self) -> *mut u8 {
        self.ptr
    }

    /// Bytes of this region the host has committed (pages the guest or a device touched),
    /// or None if the host cannot tell.
    pub fn resident(&self) -> Option<u64> {
        let pages = self.size.div_ceil(4096) as usize;
        let mut vec = vec![0u8; pages];
        // SAFETY: `ptr..ptr + size` is this struct's live mapping and `vec` has one byte per
        // 4 KiB page of it, as mincore needs (the host page size is 4 KiB on the hosts we
        // build for; a larger one needs fewer bytes).
        let r = unsafe { libc::mincore(self.ptr.cast(), self.size as usize, vec.as_mut_ptr()) };
        (r == 0).then(|| vec.iter().filter(|&&b| b & 1 != 0).count() as u64 * 4096)
    }

    pub fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), BusError> {
        let p = self
            .host_ptr(pa, buf.len() as u64)
            .ok_or(BusError::Unmapped(pa))?;
        // SAFETY: `p` is valid for `buf.len()` bytes (checked above); `buf` cannot overlap guest
        // RAM because it is a Rust-owned buffer.
        unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    pub fn write(&self, pa: u64, buf: &[u8]) -> Result<(), BusError> {
        let p = self
            .host_ptr(pa, buf.len() as u64)
            .ok_or(BusError::Unmapped(pa))?;
        // SAFETY: as in `read`.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), p, buf.len()) };
        Ok(())
    }

    /// A little-endian load of 1, 2, 4 or 8 bytes; naturally aligned loads are single-copy
    /// atomic.
    pub fn load(&self, pa: u64, size: u8) -> Result<u64, BusError> {
        let p = self
            .host_ptr(pa, size as u64)
            .ok_or(BusError::Unmapped(pa))?;
        // SAFETY: `p` is valid for `size` bytes; unaligned reads use read_unaligned; aligned
        // ones go through atomics so racing vCPUs see whole values.
        Ok(unsafe {
            if !(p as usize).is_multiple_of(size as usize) {
                let mut b = [0u8; 8];
                std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), size as usize);
                u64::from_le_bytes(b)
            } else {
                match size {
                    1 => (*(p as *const AtomicU8)).load(Ordering::Relaxed) as u64,
                    2 => (*(p as *const AtomicU16)).load(Ordering::Relaxed) as u64,
                    4 => (*(p as *const AtomicU32)).load(Ordering::Relaxed) as u64,
                    _ => (*(p as *const AtomicU64)).load(Ordering::Relaxed),
                }
            }
        })
    }

    /// A little-endian store of 1, 2, 4 or 8 bytes.
    pub fn store(&self, pa: u64, size: u8, value: u64) -> Result<(), BusError> {
        let p = self
            .host_ptr(pa, size as u64)
            .ok_or(BusError::Unmapped(pa))?;
        // SAFETY: as in `load`.
        unsafe {
            if !(p as usize).is_multiple_of(size as usize) {
                let b = value.to_le_bytes();
                std::ptr::copy_nonoverlapping(b.as_ptr(), p, size as usize);
            } else {
                match size {
                    1 => (*(p as *const AtomicU8)).store(value as u8, Ordering::Relaxed),
                    2 => (*(p as *const AtomicU16)).store(value as u16, Ordering::Relaxed),
                    4 => (*(p as *const AtomicU32)).store(value as u32, Ordering::Relaxed),
                    _ => (*(p as *const AtomicU64)).store(value, Ordering::Relaxed),
                }
            }
        }
        Ok(())
    }
}

impl Drop for Ram {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `new`; no references outlive `self`
        // (users hold `Arc<Ram>`).
        unsafe { libc::munmap(self.ptr.cast(), self.size as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_are_bounds_checked() {
        let r = Ram::new(0x4000_0000, 0x2000).unwrap();
        r.store(0x4000_0ffc, 8, 0x1122_3344_5566_7788).unwrap();
        assert_eq!(r.load(0x4000_0ffc, 8).unwrap(), 0x1122_3344_5566_7788);
        assert_eq!(r.load(0x4000_1000, 2).unwrap(), 0x3344);
        assert!(r.load(0x4000_1ffc, 8).is_err());
        assert!(r.load(0x3fff_fffc, 4).is_err());
        let mut b = [0u8; 4];
        r.read(0x4000_0ffc, &mut b).unwrap();
        assert_eq!(b, [0x88, 0x77, 0x66, 0x55]);
        assert!(Ram::new(0, 100).is_err());
    }

    #[test]
    fn resident_counts_the_pages_touched() {
        let r = Ram::new(0x4000_0000, 64 << 20).unwrap();
        assert_eq!(r.resident(), Some(0));
        r.store(0x4000_0000, 8, 1).unwrap();
        r.store(0x4100_0000, 1, 1).unwrap();
        r.load(0x4200_0000, 4).unwrap();
        // Two written pages; the read of an untouched page may map the shared zero page.
        let n = r.resident().unwrap();
        assert!((2 * 4096..=3 * 4096).contains(&n), "{n}");
    }
}
