//! Split virtqueues (virtio 1.x, section 2.7) read from guest RAM.
//!
//! Every guest-supplied index and address is checked: descriptor indices against the queue
//! size, chain lengths against the table size (so a looping chain ends), buffers against guest
//! RAM. A malformed chain is a [`QueueError`]; the transport then marks the device as needing
//! a reset.

use armboard_bus::Ram;
use std::sync::atomic::{fence, Ordering};

const VIRTQ_DESC_F_NEXT: u16 = 1;
const VIRTQ_DESC_F_WRITE: u16 = 2;
const VIRTQ_DESC_F_INDIRECT: u16 = 4;
const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;
const DESC_SIZE: u64 = 16;

/// What can be wrong with a queue or a descriptor chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("queue ring at {0:#x} lies outside guest RAM")]
    BadRing(u64),
    #[error("available index jumped by {0}, more than the queue size")]
    BadAvailIndex(u16),
    #[error("descriptor index {0} out of range")]
    BadIndex(u16),
    #[error("descriptor chain longer than its table (a loop?)")]
    ChainTooLong,
    #[error("indirect descriptor table of {0} bytes is malformed")]
    BadIndirect(u32),
    #[error("guest buffer at {0:#x} lies outside guest RAM")]
    BadBuffer(u64),
}

/// One buffer of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffer {
    pub addr: u64,
    pub len: u32,
    /// Device-writable (VIRTQ_DESC_F_WRITE).
    pub write: bool,
}

/// A descriptor chain taken from the available ring, indirect tables flattened.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    pub head: u16,
    pub buffers: Vec<Buffer>,
}

impl Chain {
    /// Total bytes of the device-readable buffers.
    pub fn readable_len(&self) -> u64 {
        self.buffers
            .iter()
            .filter(|b| !b.write)
            .map(|b| b.len as u64)
            .sum()
    }

    /// Total bytes of the device-writable buffers.
    pub fn writable_len(&self) -> u64 {
        self.buffers
            .iter()
            .filter(|b| b.write)
            .map(|b| b.len as u64)
            .sum()
    }

    /// A cursor over the readable bytes, in order.
    pub fn reader<'a>(&'a self, mem: &'a Ram) -> Cursor<'a> {
        Cursor::new(self, mem, false)
    }

    /// A cursor over the writable bytes, in order.
    pub fn writer<'a>(&'a self, mem: &'a Ram) -> Cursor<'a> {
        Cursor::new(self, mem, true)
    }
}

/// Sequential access to the readable or the writable buffers of a chain as one byte stream.
pub struct Cursor<'a> {
    mem: &'a Ram,
    bufs: Vec<Buffer>,
    idx: usize,
    off: u32,
    /// Bytes moved so far.
    pub done: u64,
}

impl<'a> Cursor<'a> {
    fn new(chain: &'a Chain, mem: &'a Ram, write: bool) -> Self {
        Cursor {
            mem,
            bufs: chain
                .buffers
                .iter()
                .filter(|b| b.write == write)
                .copied()
                .collect(),
            idx: 0,
            off: 0,
            done: 0,
        }
    }

    /// Bytes left in the stream.
    pub fn remaining(&self) -> u64 {
        let rest: u64 = self.bufs[self.idx.min(self.bufs.len())..]
            .iter()
            .map(|b| b.len as u64)
            .sum();
        rest - self.off as u64
    }

    /// Move to an absolute position in the stream.
    pub fn seek(&mut self, pos: u64) {
        self.idx = 0;
        self.off = 0;
        self.done = 0;
        self.skip(pos);
    }

    fn skip(&mut self, mut n: u64) {
        while n > 0 && self.idx < self.bufs.len() {
            let left = (self.bufs[self.idx].len - self.off) as u64;
            let step = left.min(n);
            self.advance(step as u32);
            n -= step;
        }
    }

    fn advance(&mut self, n: u32) {
        self.off += n;
        self.done += n as u64;
        if self.idx < self.bufs.len() && self.off >= self.bufs[self.idx].len {
            self.idx += 1;
            self.off = 0;
        }
    }

    /// The next piece of the stream: guest address and length (at most `max`).
    fn piece(&mut self, max: usize) -> Option<(u64, usize)> {
        while self.idx < self.bufs.len() && self.bufs[self.idx].len == self.off {
            self.idx += 1;
            self.off = 0;
        }
        let b = self.bufs.get(self.idx)?;
        let n = ((b.len - self.off) as usize).min(max);
        Some((b.addr.wrapping_add(self.off as u64), n))
    }

    /// Copy from guest buffers into `buf`; returns the bytes copied (less at the end).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, QueueError> {
        let mut got = 0;
        while got < buf.len() {
            let Some((addr, n)) = self.piece(buf.len() - got) else {
                break;
            };
            self.mem
                .read(addr, &mut buf[got..got + n])
                .map_err(|_| QueueError::BadBuffer(addr))?;
            self.advance(n as u32);
            got += n;
        }
        Ok(got)
    }

    /// Copy `buf` into guest buffers; returns the bytes copied (less at the end).
    pub fn write(&mut self, buf: &[u8]) -> Result<usize, QueueError> {
        let mut put = 0;
        while put < buf.len() {
            let Some((addr, n)) = self.piece(buf.len() - put) else {
                break;
            };
            self.mem
                .write(addr, &buf[put..put + n])
                .map_err(|_| QueueError::BadBuffer(addr))?;
            self.advance(n as u32);
            put += n;
        }
        Ok(put)
    }
}

/// One split virtqueue's transport state.
#[derive(Debug, Clone)]
pub struct Queue {
    pub max_size: u16,
    /// QueueNum: the size the driver chose.
    pub size: u16,
    pub ready: bool,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    next_avail: u16,
    next_used: u16,
}

impl Queue {
    pub fn new(max_size: u16) -> Queue {
        Queue {
            max_size,
            size: max_size,
            ready: false,
            desc: 0,
            avail: 0,
            used: 0,
            next_avail: 0,
            next_used: 0,
        }
    }

    /// Back to the reset state (QueueReady 0, addresses 0, indices 0).
    pub fn reset(&mut self) {
        *self = Queue::new(self.max_size);
    }

    fn load(mem: &Ram, pa: u64, size: u8) -> Result<u64, QueueError> {
        mem.load(pa, size).map_err(|_| QueueError::BadRing(pa))
    }

    /// Whether the driver has made buffers available that were not taken yet.
    pub fn has_available(&self, mem: &Ram) -> Result<bool, QueueError> {
        Ok(Self::load(mem, self.avail.wrapping_add(2), 2)? as u16 != self.next_avail)
    }

    /// Take the next available chain, if any.
    pub fn pop(&mut self, mem: &Ram) -> Result<Option<Chain>, QueueError> {
        if !self.ready || self.size == 0 {
            return Ok(None);
        }
        let avail_idx = Self::load(mem, self.avail.wrapping_add(2), 2)? as u16;
        let pending = avail_idx.wrapping_sub(self.next_avail);
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.size {
            return Err(QueueError::BadAvailIndex(pending));
        }
        // Read the ring entry and descriptors only after seeing the index.
        fence(Ordering::Acquire);
        let slot = (self.next_avail % self.size) as u64;
        let head = Self::load(mem, self.avail.wrapping_add(4 + 2 * slot), 2)? as u16;
        let chain = self.walk(mem, head)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        Ok(Some(chain))
    }

    fn read_desc(mem: &Ram, table: u64, i: u16) -> Result<(u64, u32, u16, u16), QueueError> {
        let at = table.wrapping_add(DESC_SIZE * i as u64);
        let mut d = [0u8; 16];
        mem.read(at, &mut d).map_err(|_| QueueError::BadRing(at))?;
        let addr = u64::from_le_bytes(d[0..8].try_into().unwrap_or_default());
        let len = u32::from_le_bytes(d[8..12].try_into().unwrap_or_default());
        let flags = u16::from_le_bytes([d[12], d[13]]);
        let next = u16::from_le_bytes([d[14], d[15]]);
        Ok((addr, len, flags, next))
    }

    fn walk(&self, mem: &Ram, head: u16) -> Result<Chain, QueueError> {
        let mut chain = Chain {
            head,
            buffers: Vec::new(),
        };
        let mut i = head;
        let mut steps = 0u32;
        loop {
            if i >= self.size {
                return Err(QueueError::BadIndex(i));
            }
            steps += 1;
            if steps > self.size as u32 {
                return Err(QueueError::ChainTooLong);
            }
            let (addr, len, flags, next) = Self::read_desc(mem, self.desc, i)?;
            if flags & VIRTQ_DESC_F_INDIRECT != 0 {
                // An indirect table replaces this descriptor; it must end the chain.
                if len == 0 || len % DESC_SIZE as u32 != 0 || flags & VIRTQ_DESC_F_NEXT != 0 {
                    return Err(QueueError::BadIndirect(len));
                }
                Self::walk_indirect(mem, addr, len, &mut chain)?;
                return Ok(chain);
            }
            chain.buffers.push(Buffer {
                addr,
                len,
                write: flags & VIRTQ_DESC_F_WRITE != 0,
            });
            if flags & VIRTQ_DESC_F_NEXT == 0 {
                return Ok(chain);
            }
            i = next;
        }
    }

    fn walk_indirect(mem: &Ram, table: u64, len: u32, chain: &mut Chain) -> Result<(), QueueError> {
        let n = len / DESC_SIZE as u32;
        if n > u16::MAX as u32 + 1 || !mem.contains(table, len as u64) {
            return Err(QueueError::BadIndirect(len));
        }
        let mut i: u32 = 0;
        for _ in 0..n {
            let (addr, blen, flags, next) = Self::read_desc(mem, table, i as u16)?;
            if flags & VIRTQ_DESC_F_INDIRECT != 0 {
                return Err(QueueError::BadIndirect(len));
            }
            chain.buffers.push(Buffer {
                addr,
                len: blen,
                write: flags & VIRTQ_DESC_F_WRITE != 0,
            });
            if flags & VIRTQ_DESC_F_NEXT == 0 {
                return Ok(());
            }
            i = next as u32;
            if i >= n {
                return Err(QueueError::BadIndex(next));
            }
        }
        Err(QueueError::ChainTooLong)
    }

    /// Return a chain to the driver with `len` bytes written into it.
    pub fn add_used(&mut self, mem: &Ram, head: u16, len: u32) -> Result<(), QueueError> {
        if self.size == 0 {
            return Ok(());
        }
        let slot = (self.next_used % self.size) as u64;
        let at = self.used.wrapping_add(4 + 8 * slot);
        mem.store(at, 4, head as u64)
            .and_then(|_| mem.store(at.wrapping_add(4), 4, len as u64))
            .map_err(|_| QueueError::BadRing(at))?;
        self.next_used = self.next_used.wrapping_add(1);
        // The element must be visible before the index that publishes it.
        fence(Ordering::Release);
        let idx_at = self.used.wrapping_add(2);
        mem.store(idx_at, 2, self.next_used as u64)
            .map_err(|_| QueueError::BadRing(idx_at))?;
        fence(Ordering::SeqCst);
        Ok(())
    }

    /// Whether the driver wants an interrupt for used buffers (VIRTQ_AVAIL_F_NO_INTERRUPT clear).
    pub fn wants_interrupt(&self, mem: &Ram) -> bool {
        Self::load(mem, self.avail, 2).map_or(true, |f| f as u16 & VIRTQ_AVAIL_F_NO_INTERRUPT == 0)
    }
}
