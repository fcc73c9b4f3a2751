//! A block the board does not model: reads as zero, ignores writes, and says so once per
//! register at debug level (QEMU's "unimplemented device"). Linux probes many SoC blocks it
//! then leaves alone; this keeps those probes from faulting.

use armboard_bus::Device;
use std::collections::HashSet;

pub struct Unimplemented {
    name: String,
    seen: HashSet<(u64, bool)>,
}

impl Unimplemented {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            seen: HashSet::new(),
        }
    }

    fn note(&mut self, offset: u64, write: bool, value: u64) {
        // Bounded: a guest sweeping the block logs each register once.
        if self.seen.len() < 4096 && self.seen.insert((offset, write)) {
            let what = if write { "write" } else { "read" };
            log::debug!(
                "{}: {what} at +{offset:#x} ({value:#x}), not modelled",
                self.name
            );
        }
    }
}

impl Device for Unimplemented {
    fn read(&mut self, offset: u64, _size: u8) -> u64 {
        self.note(offset, false, 0);
        0
    }

    fn write(&mut self, offset: u64, _size: u8, value: u64) {
        self.note(offset, true, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_zero_and_takes_writes() {
        let mut d = Unimplemented::new("usb");
        d.write(0x40, 4, 0xdead);
        assert_eq!(d.read(0x40, 4), 0);
        assert_eq!(d.read(0xffff, 8), 0);
    }
}
