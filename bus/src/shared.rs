//! A device shared between the bus and other threads (a stdin reader feeding a UART, a
//! machine loop polling an RTC).

use crate::Device;
use std::sync::{Arc, Mutex, MutexGuard};

/// `Arc<Mutex<D>>` that is itself a [`Device`]: each MMIO access locks the device for its
/// duration. Clones share the same device. A poisoned lock is taken over (a device's state is
/// plain data; a panic elsewhere must not wedge the guest's MMIO).
pub struct Shared<D>(Arc<Mutex<D>>);

impl<D> Shared<D> {
    pub fn new(dev: D) -> Self {
        Shared(Arc::new(Mutex::new(dev)))
    }

    pub fn lock(&self) -> MutexGuard<'_, D> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<D> Clone for Shared<D> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<D: Device> Device for Shared<D> {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        self.lock().read(offset, size)
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        self.lock().write(offset, size, value)
    }

    fn read_from(&mut self, cpu: usize, offset: u64, size: u8) -> u64 {
        self.lock().read_from(cpu, offset, size)
    }

    fn write_from(&mut self, cpu: usize, offset: u64, size: u8, value: u64) {
        self.lock().write_from(cpu, offset, size, value)
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
    fn clones_share_one_device() {
        let a = Shared::new(Reg(1));
        let mut b: Box<dyn Device> = Box::new(a.clone());
        b.write(0, 4, 7);
        assert_eq!(a.lock().0, 7);
        a.lock().0 = 9;
        assert_eq!(b.read_from(1, 0, 4), 9);
    }
}
