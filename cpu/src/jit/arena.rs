//! Code memory for one generation: large read-write-execute chunks filled front to back.
//!
//! Cranelift's default provider maps a fresh page for every finalized function and changes its
//! protection with `mprotect` (a page, a mapping and two system calls per block, and a TLB
//! shootdown per call once a compile worker runs). Here a block costs a bump of a pointer.
//! Only on x86-64, whose instruction fetch is coherent with data writes, so nothing needs
//! flushing before new code runs; other hosts keep Cranelift's provider.

use cranelift_jit::{BranchProtection, JITMemoryKind, JITMemoryProvider};
use cranelift_module::ModuleResult;
use std::io;

/// Bytes mapped at a time (reserved, not committed: pages fault in as code is written).
const CHUNK: usize = 8 << 20;

pub(super) struct CodeArena {
    /// (start, length) of every mapping, the one being filled last.
    chunks: Vec<(usize, usize)>,
    /// Next free byte of the last chunk.
    next: usize,
}

impl CodeArena {
    /// An arena with its first chunk mapped, or an error if the host refuses executable
    /// writable memory.
    pub(super) fn new() -> io::Result<Self> {
        let mut a = Self {
            chunks: Vec::new(),
            next: 0,
        };
        a.map(CHUNK)?;
        Ok(a)
    }

    fn map(&mut self, len: usize) -> io::Result<()> {
        // SAFETY: a fresh anonymous private mapping at an address the kernel picks; nothing
        // else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        self.chunks.push((p as usize, len));
        self.next = p as usize;
        Ok(())
    }
}

// SAFETY: the arena is plain addresses of mappings it owns; whichever thread holds it may
// allocate from or free them.
unsafe impl Send for CodeArena {}

impl JITMemoryProvider for CodeArena {
    fn allocate(&mut self, size: usize, align: u64, _kind: JITMemoryKind) -> io::Result<*mut u8> {
        let align = usize::try_from(align.max(1)).unwrap_or(usize::MAX);
        if !align.is_power_of_two() || align > 4096 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad alignment"));
        }
        let (start, len) = self.chunks.last().copied().unwrap_or((0, 0));
        let at = self.next.next_multiple_of(align);
        if self.chunks.is_empty() || at + size > start + len {
            self.map(size.max(CHUNK).next_multiple_of(4096))?;
            self.next += size;
            return Ok(self.chunks[self.chunks.len() - 1].0 as *mut u8);
        }
        self.next = at + size;
        Ok(at as *mut u8)
    }

    unsafe fn free_memory(&mut self) {
        for (p, len) in self.chunks.drain(..) {
            // SAFETY: each chunk is a mapping this arena made; the caller guarantees none of
            // its code runs any more.
            unsafe { libc::munmap(p as *mut libc::c_void, len) };
        }
        self.next = 0;
    }

    fn finalize(&mut self, _: BranchProtection) -> ModuleResult<()> {
        // x86-64: writes are visible to instruction fetch; the code is already executable.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_disjoint_and_span_chunks() {
        let mut a = CodeArena::new().unwrap();
        let mut got: Vec<(usize, usize)> = Vec::new();
        for k in 0..64 {
            let size = 1000 + k * 37;
            let p = a.allocate(size, 16, JITMemoryKind::Executable).unwrap() as usize;
            assert_eq!(p % 16, 0);
            assert!(got.iter().all(|&(q, n)| p + size <= q || q + n <= p));
            got.push((p, size));
            // SAFETY: the allocation is writable and `size` bytes long.
            unsafe { std::ptr::write_bytes(p as *mut u8, 0xc3, size) };
        }
        // Bigger than a chunk: its own mapping.
        let big = a
            .allocate(CHUNK + 1, 16, JITMemoryKind::Executable)
            .unwrap();
        // SAFETY: as above.
        unsafe { std::ptr::write_bytes(big, 0, CHUNK + 1) };
        assert!(a.chunks.len() >= 2);
        // SAFETY: no code from this arena runs.
        unsafe { a.free_memory() };
        assert!(a.chunks.is_empty());
    }
}
