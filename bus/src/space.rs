//! A machine's whole physical address space: a few RAM regions reached directly, and the MMIO
//! bus behind one lock. Shared by every vCPU (`Arc<AddressSpace>`).
//!
//! The CPU's RAM path never takes the lock: its TLB holds host pointers into the RAM regions.
//! Only device accesses (and the loaders' copies, which are lock-free too) come here.

use crate::{Bus, BusError, Ram};
use std::sync::{Arc, Mutex, MutexGuard};

/// Guest physical memory: RAM regions sorted by base, and the device bus.
pub struct AddressSpace {
    ram: Vec<Arc<Ram>>,
    mmio: Mutex<Bus>,
}

impl AddressSpace {
    /// RAM regions (any order; they must not overlap each other) and the device bus. Where a
    /// RAM region and a device overlap, RAM wins.
    pub fn new(mut ram: Vec<Arc<Ram>>, bus: Bus) -> Result<Self, BusError> {
        ram.sort_by_key(|r| r.base());
        for w in ram.windows(2) {
            if w[0].base() + w[0].size() > w[1].base() {
                return Err(BusError::Overlap {
                    base: w[1].base(),
                    other: w[0].base(),
                });
            }
        }
        Ok(Self {
            ram,
            mmio: Mutex::new(bus),
        })
    }

    /// The RAM regions, sorted by base.
    pub fn rams(&self) -> &[Arc<Ram>] {
        &self.ram
    }

    /// The RAM region holding all of `[pa, pa + len)`, if one does.
    #[inline]
    pub fn ram_at(&self, pa: u64, len: u64) -> Option<&Ram> {
        self.ram.iter().map(|r| &**r).find(|r| r.contains(pa, len))
    }

    /// The device bus, for wiring after construction. Holding the guard blocks every vCPU's
    /// MMIO accesses.
    pub fn bus(&self) -> MutexGuard<'_, Bus> {
        // A device that panicked while the lock was held leaves the map itself intact.
        self.mmio.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A device read by CPU `cpu`.
    pub fn mmio_read(&self, cpu: usize, pa: u64, size: u8) -> Result<u64, BusError> {
        self.bus().read_from(cpu, pa, size)
    }

    /// A device write by CPU `cpu`.
    pub fn mmio_write(&self, cpu: usize, pa: u64, size: u8, value: u64) -> Result<(), BusError> {
        self.bus().write_from(cpu, pa, size, value)
    }

    /// A little-endian access of 1, 2, 4 or 8 bytes to RAM or, failing that, a device.
    pub fn read_phys(&self, cpu: usize, pa: u64, size: u8) -> Result<u64, BusError> {
        match self.ram_at(pa, size as u64) {
            Some(r) => r.load(pa, size),
            None => self.mmio_read(cpu, pa, size),
        }
    }

    pub fn write_phys(&self, cpu: usize, pa: u64, size: u8, value: u64) -> Result<(), BusError> {
        match self.ram_at(pa, size as u64) {
            Some(r) => r.store(pa, size, value),
            None => self.mmio_write(cpu, pa, size, value),
        }
    }

    /// Copy RAM at `pa` into `buf` (loaders, device DMA). The range may span adjacent RAM
    /// regions; any byte outside RAM fails the whole copy before anything is read.
    pub fn read_bytes(&self, pa: u64, buf: &mut [u8]) -> Result<(), BusError> {
        self.check_ram(pa, buf.len() as u64)?;
        let mut done = 0;
        while done < buf.len() {
            let a = pa + done as u64;
            let r = self.ram_at(a, 1).ok_or(BusError::Unmapped(a))?;
            let n = ((r.base() + r.size() - a) as usize).min(buf.len() - done);
            r.read(a, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// Copy `buf` into RAM at `pa`; like [`AddressSpace::read_bytes`], all or nothing.
    pub fn write_bytes(&self, pa: u64, buf: &[u8]) -> Result<(), BusError> {
        self.check_ram(pa, buf.len() as u64)?;
        let mut done = 0;
        while done < buf.len() {
            let a = pa + done as u64;
            let r = self.ram_at(a, 1).ok_or(BusError::Unmapped(a))?;
            let n = ((r.base() + r.size() - a) as usize).min(buf.len() - done);
            r.write(a, &buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// Whether `[pa, pa + len)` is all RAM (possibly over several adjacent regions).
    fn check_ram(&self, pa: u64, len: u64) -> Result<(), BusError> {
        pa.checked_add(len).ok_or(BusError::Unmapped(pa))?;
        let mut a = pa;
        let end = pa + len;
        while a < end {
            let r = self.ram_at(a, 1).ok_or(BusError::Unmapped(a))?;
            a = r.base() + r.size();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;

    struct Echo(u64);
    impl Device for Echo {
        fn read(&mut self, o: u64, _s: u8) -> u64 {
            self.0 + o
        }
        fn write(&mut self, _o: u64, _s: u8, v: u64) {
            self.0 = v;
        }
        fn read_from(&mut self, cpu: usize, o: u64, s: u8) -> u64 {
            self.read(o, s) + ((cpu as u64) << 32)
        }
    }

    fn space() -> AddressSpace {
        let mut bus = Bus::new();
        bus.insert(0x900_0000, 0x1000, Box::new(Echo(0x100)))
            .unwrap();
        let rams = vec![
            Arc::new(Ram::new(0x4000_2000, 0x1000).unwrap()),
            Arc::new(Ram::new(0x4000_0000, 0x2000).unwrap()),
        ];
        AddressSpace::new(rams, bus).unwrap()
    }

    #[test]
    fn ram_regions_are_found_and_copies_span_adjacent_ones() {
        let s = space();
        assert_eq!(s.rams()[0].base(), 0x4000_0000);
        assert!(s.ram_at(0x4000_1ffc, 4).is_some());
        assert!(
            s.ram_at(0x4000_1ffc, 8).is_none(),
            "an access must fit one region"
        );
        s.write_bytes(0x4000_1ffe, &[1, 2, 3, 4]).unwrap();
        assert_eq!(s.read_phys(0, 0x4000_2000, 2), Ok(0x0403));
        let mut b = [0u8; 4];
        s.read_bytes(0x4000_1ffe, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4]);
        assert_eq!(
            s.write_bytes(0x4000_2ffe, &[9, 9, 9, 9]),
            Err(BusError::Unmapped(0x4000_3000))
        );
        assert_eq!(
            s.read_phys(0, 0x4000_2ffe, 2),
            Ok(0),
            "failed copy wrote nothing"
        );
    }

    #[test]
    fn mmio_goes_to_the_device_with_the_cpu_index() {
        let s = space();
        assert_eq!(s.mmio_read(0, 0x900_0008, 4), Ok(0x108));
        assert_eq!(s.read_phys(2, 0x900_0000, 4), Ok(0x2_0000_0100));
        s.write_phys(0, 0x900_0000, 4, 7).unwrap();
        assert_eq!(s.mmio_read(0, 0x900_0000, 4), Ok(7));
        assert_eq!(
            s.read_phys(0, 0x800_0000, 4),
            Err(BusError::Unmapped(0x800_0000))
        );
    }

    #[test]
    fn overlapping_ram_is_rejected() {
        let rams = vec![
            Arc::new(Ram::new(0x1000, 0x2000).unwrap()),
            Arc::new(Ram::new(0x2000, 0x1000).unwrap()),
        ];
        assert!(AddressSpace::new(rams, Bus::new()).is_err());
    }
}
