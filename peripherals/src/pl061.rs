//! Arm PrimeCell GPIO (PL061): 8 pins, each an input or an output, with edge or level
//! interrupts. QEMU's `virt` uses pin 3 as the power button (`gpio-keys`).
//!
//! The board drives input pins with [`Pl061::set_input`]; [`Pl061::outputs`] is what the guest
//! drives. Linux's `gpio-pl061` driver uses byte accesses; halfword and word ones work too.

use armboard_bus::{Device, IrqLine};

/// Size of the register frame.
pub const SIZE: u64 = 0x1000;

const GPIODATA_END: u64 = 0x3FC;
const GPIODIR: u64 = 0x400;
const GPIOIS: u64 = 0x404;
const GPIOIBE: u64 = 0x408;
const GPIOIEV: u64 = 0x40C;
const GPIOIE: u64 = 0x410;
const GPIORIS: u64 = 0x414;
const GPIOMIS: u64 = 0x418;
const GPIOIC: u64 = 0x41C;
const GPIOAFSEL: u64 = 0x420;
const GPIOPERIPHID0: u64 = 0xFE0;

/// GPIOPeriphID0..3, GPIOPCellID0..3.
const ID: [u8; 8] = [0x61, 0x10, 0x04, 0x00, 0x0D, 0xF0, 0x05, 0xB1];

/// A PL061 GPIO controller.
pub struct Pl061 {
    irq: IrqLine,
    irq_level: bool,
    /// Levels driven from outside on the pins.
    input: u8,
    /// Levels the guest drives on output pins.
    data: u8,
    dir: u8,
    is: u8,
    ibe: u8,
    iev: u8,
    ie: u8,
    /// Latched edge interrupts.
    edge_ris: u8,
    afsel: u8,
}

impl Pl061 {
    pub fn new(irq: IrqLine) -> Pl061 {
        Pl061 {
            irq,
            irq_level: false,
            input: 0,
            data: 0,
            dir: 0,
            is: 0,
            ibe: 0,
            iev: 0,
            ie: 0,
            edge_ris: 0,
            afsel: 0,
        }
    }

    /// Pin levels as the guest reads them: outputs read back what it drives.
    fn pins(&self) -> u8 {
        (self.data & self.dir) | (self.input & !self.dir)
    }

    /// Level interrupts: pins whose level equals the chosen one (GPIOIEV: 1 = high).
    fn level_ris(&self) -> u8 {
        let p = self.pins();
        self.is & !(p ^ self.iev)
    }

    fn ris(&self) -> u8 {
        self.level_ris() | (self.edge_ris & !self.is)
    }

    fn update(&mut self, before: u8) {
        let after = self.pins();
        let rose = !before & after;
        let fell = before & !after;
        let both = self.ibe & (rose | fell);
        let single = !self.ibe & ((self.iev & rose) | (!self.iev & fell));
        self.edge_ris |= (both | single) & !self.is;
        let level = self.ris() & self.ie != 0;
        if level != self.irq_level {
            self.irq_level = level;
            self.irq.set(level);
        }
    }

    /// Drive input pin `pin` (0..7) to `level` from outside.
    pub fn set_input(&mut self, pin: u8, level: bool) {
        if pin >= 8 {
            log::warn!("pl061: no pin {pin}");
            return;
        }
        let before = self.pins();
        if level {
            self.input |= 1 << pin;
        } else {
            self.input &= !(1 << pin);
        }
        self.update(before);
    }

    /// The levels of the pins the guest drives as outputs (other bits 0).
    pub fn outputs(&self) -> u8 {
        self.data & self.dir
    }

    fn read8(&self, off: u64) -> u8 {
        match off {
            0..=GPIODATA_END => self.pins() & ((off >> 2) as u8),
            GPIODIR => self.dir,
            GPIOIS => self.is,
            GPIOIBE => self.ibe,
            GPIOIEV => self.iev,
            GPIOIE => self.ie,
            GPIORIS => self.ris(),
            GPIOMIS => self.ris() & self.ie,
            GPIOAFSEL => self.afsel,
            GPIOPERIPHID0..=0xFFC => ID[((off - GPIOPERIPHID0) / 4) as usize],
            _ => 0,
        }
    }

    fn write8(&mut self, off: u64, v: u8) {
        let before = self.pins();
        match off {
            0..=GPIODATA_END => {
                // Address bits 9:2 select which bits the write changes.
                let mask = (off >> 2) as u8;
                self.data = (self.data & !mask) | (v & mask);
            }
            GPIODIR => self.dir = v,
            GPIOIS => self.is = v,
            GPIOIBE => self.ibe = v,
            GPIOIEV => self.iev = v,
            GPIOIE => self.ie = v,
            GPIOIC => self.edge_ris &= !v,
            GPIOAFSEL => self.afsel = v,
            _ => log::debug!("pl061: write {v:#x} to read-only/reserved offset {off:#x}"),
        }
        self.update(before);
    }
}

impl Device for Pl061 {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if offset >= SIZE || offset & 3 != 0 || !matches!(size, 1 | 2 | 4) {
            log::warn!("pl061: bad read of size {size} at {offset:#x}");
            return 0;
        }
        self.read8(offset) as u64
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset >= SIZE || offset & 3 != 0 || !matches!(size, 1 | 2 | 4) {
            log::warn!("pl061: bad write of size {size} at {offset:#x}");
            return;
        }
        self.write8(offset, value as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use armboard_bus::IrqSink;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[derive(Default)]
    struct Level(AtomicBool);
    impl IrqSink for Level {
        fn set_level(&self, _line: u32, level: bool) {
            self.0.store(level, Ordering::SeqCst);
        }
    }

    fn gpio() -> (Pl061, Arc<Level>) {
        let l = Arc::new(Level::default());
        (Pl061::new(IrqLine::new(l.clone(), 39)), l)
    }

    #[test]
    fn ids_identify_a_pl061() {
        let (mut g, _) = gpio();
        let id: Vec<u64> = (0..8).map(|i| g.read(0xFE0 + 4 * i, 1)).collect();
        assert_eq!(id, [0x61, 0x10, 0x04, 0x00, 0x0D, 0xF0, 0x05, 0xB1]);
    }

    #[test]
    fn data_accesses_are_masked_by_address() {
        let (mut g, _) = gpio();
        g.write(GPIODIR, 1, 0x0F);
        // Address 0x3FC: all bits; 0x04 << 2: bit 2 only.
        g.write(0x3FC, 1, 0xFF);
        assert_eq!(g.outputs(), 0x0F, "inputs are not driven");
        g.write(0x04 << 2, 1, 0x00);
        assert_eq!(g.outputs(), 0x0B);
        g.set_input(7, true);
        assert_eq!(g.read(0x3FC, 1), 0x8B);
        assert_eq!(g.read(0x80 << 2, 1), 0x80);
        assert_eq!(g.read(0x01 << 2, 1), 0x01);
    }

    #[test]
    fn power_button_edges_interrupt_as_gpio_keys_sets_them() {
        let (mut g, l) = gpio();
        // gpio-keys: pin 3 input, both edges, unmasked.
        g.write(GPIOIBE, 1, 1 << 3);
        g.write(GPIOIE, 1, 1 << 3);
        assert!(!l.0.load(Ordering::SeqCst));
        g.set_input(3, true);
        assert!(l.0.load(Ordering::SeqCst));
        assert_eq!(g.read(GPIOMIS, 1), 1 << 3);
        assert_eq!(g.read(1 << 3 << 2, 1), 1 << 3, "pressed");
        g.write(GPIOIC, 1, 1 << 3);
        assert!(!l.0.load(Ordering::SeqCst));
        g.set_input(3, false);
        assert!(l.0.load(Ordering::SeqCst), "release is an edge too");
    }

    #[test]
    fn level_and_single_edge_interrupts() {
        let (mut g, l) = gpio();
        // Pin 0: level high; pin 1: falling edge.
        g.write(GPIOIS, 1, 1);
        g.write(GPIOIEV, 1, 1);
        g.write(GPIOIE, 1, 3);
        g.set_input(0, true);
        assert!(l.0.load(Ordering::SeqCst));
        g.write(GPIOIC, 1, 1);
        assert!(l.0.load(Ordering::SeqCst), "level stays while high");
        g.set_input(0, false);
        assert!(!l.0.load(Ordering::SeqCst));
        g.set_input(1, true);
        assert!(!l.0.load(Ordering::SeqCst), "rising edge ignored");
        g.set_input(1, false);
        assert_eq!(g.read(GPIORIS, 1), 2);
    }
}
