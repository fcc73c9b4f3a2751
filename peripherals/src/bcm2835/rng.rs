//! BCM2835 hardware random number generator ("brcm,bcm2835-rng"), as Linux's `bcm2835-rng`
//! hwrng driver uses it: probe writes the warm-up count to RNG_STATUS and sets RNG_CTRL.RBGEN;
//! a read waits for RNG_STATUS bits 31:24 (words in the FIFO) to be non-zero and then takes
//! that many words from RNG_DATA.
//!
//! The words come from the host's `/dev/urandom`. While the generator is enabled the FIFO is
//! kept full (4 words), so warm-up completes at once (the warm-up field reads 0). If the host
//! source fails, the FIFO simply stays empty: the guest waits rather than getting non-random
//! data. RNG_FF_THRES and RNG_INT_MASK are stored; the interrupt is not modelled (Linux does
//! not use it on this SoC).

use armboard_bus::Device;
use std::fs::File;
use std::io::Read;

/// Size of the register frame (RNG_CTRL .. RNG_INT_MASK).
pub const SIZE: u64 = 0x14;
/// Words the FIFO holds; shown in RNG_STATUS bits 31:24 while the generator runs.
pub const FIFO_WORDS: u32 = 4;

const RNG_CTRL: u64 = 0x00;
const RNG_STATUS: u64 = 0x04;
const RNG_DATA: u64 = 0x08;
const RNG_FF_THRES: u64 = 0x0c;
const RNG_INT_MASK: u64 = 0x10;

const CTRL_RBGEN: u32 = 1 << 0;
const WARMUP_MASK: u32 = 0x000f_ffff;

/// Host randomness fetched per refill.
const POOL_BYTES: usize = 256;

/// The RNG.
pub struct Rng {
    source: Box<dyn Read + Send>,
    pool: Vec<u8>,
    ctrl: u32,
    warmup: u32,
    ff_thres: u32,
    int_mask: u32,
    failed: bool,
}

impl Rng {
    /// An RNG at reset (disabled) drawing from the host's `/dev/urandom`.
    pub fn new() -> std::io::Result<Rng> {
        Ok(Rng::with_source(Box::new(File::open("/dev/urandom")?)))
    }

    /// An RNG drawing from `source` (a seeded stream, for runs that must repeat).
    pub fn with_source(source: Box<dyn Read + Send>) -> Rng {
        Rng {
            source,
            pool: Vec::with_capacity(POOL_BYTES),
            ctrl: 0,
            warmup: 0,
            ff_thres: 0,
            int_mask: 0,
            failed: false,
        }
    }

    fn enabled(&self) -> bool {
        self.ctrl & CTRL_RBGEN != 0
    }

    /// Make sure the pool holds a word; false if the host source failed.
    fn refill(&mut self) -> bool {
        if self.pool.len() >= 4 {
            return true;
        }
        if self.failed {
            return false;
        }
        let mut buf = [0u8; POOL_BYTES];
        match self.source.read_exact(&mut buf) {
            Ok(()) => {
                self.pool.extend_from_slice(&buf);
                true
            }
            Err(e) => {
                log::warn!("bcm2835 rng: host random source failed: {e}");
                self.failed = true;
                false
            }
        }
    }

    fn available(&mut self) -> u32 {
        if self.enabled() && self.refill() {
            FIFO_WORDS
        } else {
            0
        }
    }

    fn next_word(&mut self) -> u32 {
        if !self.enabled() || !self.refill() {
            log::debug!("bcm2835 rng: RNG_DATA read with an empty FIFO");
            return 0;
        }
        let n = self.pool.len();
        let w: [u8; 4] = [
            self.pool[n - 4],
            self.pool[n - 3],
            self.pool[n - 2],
            self.pool[n - 1],
        ];
        self.pool.truncate(n - 4);
        u32::from_le_bytes(w)
    }

    fn read32(&mut self, reg: u64) -> u32 {
        match reg {
            RNG_CTRL => self.ctrl,
            RNG_STATUS => {
                let warmup = if self.enabled() { 0 } else { self.warmup };
                self.available() << 24 | warmup
            }
            RNG_DATA => self.next_word(),
            RNG_FF_THRES => self.ff_thres,
            RNG_INT_MASK => self.int_mask,
            _ => {
                log::debug!("bcm2835 rng: read of unknown offset {reg:#x}");
                0
            }
        }
    }

    fn write32(&mut self, reg: u64, v: u32) {
        match reg {
            RNG_CTRL => self.ctrl = v,
            RNG_STATUS => self.warmup = v & WARMUP_MASK,
            RNG_FF_THRES => self.ff_thres = v & 0xff,
            RNG_INT_MASK => self.int_mask = v & 1,
            _ => log::debug!("bcm2835 rng: write {v:#x} to read-only/unknown offset {reg:#x}"),
        }
    }
}

impl Device for Rng {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if offset & 3 != 0 || size != 4 {
            log::debug!("bcm2835 rng: bad read of size {size} at {offset:#x}");
            return 0;
        }
        self.read32(offset) as u64
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset & 3 != 0 || size != 4 {
            log::debug!("bcm2835 rng: bad write of size {size} at {offset:#x}");
            return;
        }
        self.write32(offset, value as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_rng_has_no_data() {
        let mut r = Rng::new().unwrap();
        assert_eq!(r.read(RNG_STATUS, 4) >> 24, 0);
        assert_eq!(r.read(RNG_DATA, 4), 0);
    }

    /// bcm2835_rng_init then bcm2835_rng_read with a 32-byte buffer.
    #[test]
    fn linux_probe_and_read_get_random_words() {
        let mut r = Rng::new().unwrap();
        r.write(RNG_STATUS, 4, 0x40000);
        assert_eq!(
            r.read(RNG_STATUS, 4),
            0x40000,
            "warm-up stored while disabled"
        );
        r.write(RNG_CTRL, 4, 1);
        assert_eq!(r.read(RNG_CTRL, 4), 1);
        let mut words = Vec::new();
        for _ in 0..64 {
            let n = (r.read(RNG_STATUS, 4) >> 24) as usize;
            assert_eq!(n, FIFO_WORDS as usize);
            for _ in 0..n.min(8) {
                words.push(r.read(RNG_DATA, 4) as u32);
            }
        }
        assert_eq!(words.len(), 256);
        let mut uniq = words.clone();
        uniq.sort_unstable();
        uniq.dedup();
        assert!(uniq.len() > 250, "words look random");
        let ones: u32 = words.iter().map(|w| w.count_ones()).sum();
        assert!(
            (3600..4600).contains(&ones),
            "about half the bits set: {ones}"
        );
        // bcm2835_rng_cleanup disables it.
        r.write(RNG_CTRL, 4, 0);
        assert_eq!(r.read(RNG_STATUS, 4) >> 24, 0);
    }

    #[test]
    fn other_registers_store_and_bad_accesses_are_ignored() {
        let mut r = Rng::new().unwrap();
        r.write(RNG_INT_MASK, 4, 1);
        r.write(RNG_FF_THRES, 4, 2);
        assert_eq!(r.read(RNG_INT_MASK, 4), 1);
        assert_eq!(r.read(RNG_FF_THRES, 4), 2);
        r.write(RNG_DATA, 4, 5);
        r.write(0x100, 4, 5);
        assert_eq!(r.read(0x100, 4), 0);
        assert_eq!(r.read(RNG_CTRL, 1), 0);
        r.write(RNG_CTRL, 2, 1);
        assert_eq!(r.read(RNG_CTRL, 4), 0);
    }
}
