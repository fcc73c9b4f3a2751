//! Guest physical address space: RAM regions, MMIO dispatch over a sorted range map, and
//! interrupt lines.

pub mod irq;
pub mod ram;
pub mod shared;
pub mod space;

pub use irq::{CpuInterrupts, IrqLine, IrqSink};
pub use ram::Ram;
pub use shared::Shared;
pub use space::AddressSpace;

use std::collections::BTreeMap;

/// A memory-mapped device: offsets are relative to its base. Sizes are 1, 2, 4 or 8 bytes.
/// A device never panics on a bad offset or size: it logs, ignores writes and reads zero.
pub trait Device: Send {
    fn read(&mut self, offset: u64, size: u8) -> u64;
    fn write(&mut self, offset: u64, size: u8, value: u64);

    /// A read by CPU `cpu`, for devices with per-CPU banked registers (GIC CPU interface).
    fn read_from(&mut self, _cpu: usize, offset: u64, size: u8) -> u64 {
        self.read(offset, size)
    }

    fn write_from(&mut self, _cpu: usize, offset: u64, size: u8, value: u64) {
        self.write(offset, size, value)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    #[error("device range at {base:#x} of length {len:#x} is empty or wraps the address space")]
    BadRange { base: u64, len: u64 },
    #[error("device range at {base:#x} overlaps the device at {other:#x}")]
    Overlap { base: u64, other: u64 },
    #[error("no device at {0:#x}")]
    Unmapped(u64),
    #[error("cannot map {0:#x} bytes of guest RAM")]
    NoMemory(u64),
}

struct Slot {
    /// Inclusive end.
    last: u64,
    dev: Box<dyn Device>,
}

/// Devices by base address. Lookup is `range(..=addr).next_back()`; ends are inclusive and
/// computed with checked arithmetic; overlapping inserts are rejected.
#[derive(Default)]
pub struct Bus {
    map: BTreeMap<u64, Slot>,
}

impl Bus {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, base: u64, len: u64, dev: Box<dyn Device>) -> Result<(), BusError> {
        let last = len
            .checked_sub(1)
            .and_then(|l| base.checked_add(l))
            .ok_or(BusError::BadRange { base, len })?;
        if let Some((&b, s)) = self.map.range(..=last).next_back() {
            if s.last >= base {
                return Err(BusError::Overlap { base, other: b });
            }
        }
        self.map.insert(base, Slot { last, dev });
        Ok(())
    }

    fn find(&mut self, addr: u64) -> Option<(u64, &mut Slot)> {
        let (&b, s) = self.map.range_mut(..=addr).next_back()?;
        (addr <= s.last).then_some((b, s))
    }

    pub fn read(&mut self, addr: u64, size: u8) -> Result<u64, BusError> {
        let (b, s) = self.find(addr).ok_or(BusError::Unmapped(addr))?;
        Ok(s.dev.read(addr - b, size))
    }

    pub fn write(&mut self, addr: u64, size: u8, value: u64) -> Result<(), BusError> {
        let (b, s) = self.find(addr).ok_or(BusError::Unmapped(addr))?;
        s.dev.write(addr - b, size, value);
        Ok(())
    }

    /// A read made by CPU `cpu` (banked registers).
    pub fn read_from(&mut self, cpu: usize, addr: u64, size: u8) -> Result<u64, BusError> {
        let (b, s) = self.find(addr).ok_or(BusError::Unmapped(addr))?;
        Ok(s.dev.read_from(cpu, addr - b, size))
    }

    pub fn write_from(
        &mut self,
        cpu: usize,
        addr: u64,
        size: u8,
        value: u64,
    ) -> Result<(), BusError> {
        let (b, s) = self.find(addr).ok_or(BusError::Unmapped(addr))?;
        s.dev.write_from(cpu, addr - b, size, value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Reg(u64);
    impl Device for Reg {
        fn read(&mut self, _o: u64, _s: u8) -> u64 {
            self.0
        }
        fn write(&mut self, _o: u64, _s: u8, v: u64) {
            self.0 = v;
        }
    }

    #[test]
    fn ranges_are_inclusive_and_checked() {
        let mut bus = Bus::new();
        bus.insert(0x1000, 0x1000, Box::new(Reg(1))).unwrap();
        assert_eq!(
            bus.insert(0x1fff, 1, Box::new(Reg(0))),
            Err(BusError::Overlap {
                base: 0x1fff,
                other: 0x1000
            })
        );
        bus.insert(0x2000, 0x10, Box::new(Reg(2))).unwrap();
        assert_eq!(bus.read(0x1fff, 4), Ok(1));
        assert_eq!(bus.read(0x2000, 4), Ok(2));
        assert_eq!(bus.read(0x2010, 4), Err(BusError::Unmapped(0x2010)));
        assert!(bus.insert(u64::MAX, 2, Box::new(Reg(0))).is_err());
        assert!(bus.insert(0x5000, 0, Box::new(Reg(0))).is_err());
    }
}
