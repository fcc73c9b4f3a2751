//! BCM2835 GPIO block ("brcm,bcm2835-gpio"), as Linux's `pinctrl-bcm2835` driver (pin
//! functions, GPIO lines, pulls and the GPIO interrupt controller) uses it: 54 pins in two
//! banks (0..31, 32..53).
//!
//! Each pin's level (GPLEV) is its output latch (GPSET/GPCLR) when GPFSEL makes it an output;
//! otherwise the level the board drives with [`Gpio::set_input`], or, undriven, its pull
//! (GPPUD + GPPUDCLK latch a pull per pin; the reset pulls are the datasheet's; no pull reads
//! low). Any level change is run through event detection: rising/falling edges
//! (GPREN/GPAREN, GPFEN/GPAFEN; the synchronous and asynchronous detectors behave alike here)
//! and high/low levels (GPHEN/GPLEN, which re-assert GPEDS after a clear while the level
//! holds). GPEDS is write-1-to-clear. The four interrupt outputs follow GPEDS: line 0 for
//! pins 0..27, line 1 for 28..45, line 2 for 46..53 and line 3 for any pin (the DT lists all
//! four; Linux uses the first three).

use armboard_bus::{Device, IrqLine};

/// Size of the register frame.
pub const SIZE: u64 = 0xb4;
/// Number of pins.
pub const PINS: usize = 54;

const GPFSEL0: u64 = 0x00;
const GPFSEL5: u64 = 0x14;
const GPSET0: u64 = 0x1c;
const GPCLR0: u64 = 0x28;
const GPLEV0: u64 = 0x34;
const GPEDS0: u64 = 0x40;
const GPREN0: u64 = 0x4c;
const GPFEN0: u64 = 0x58;
const GPHEN0: u64 = 0x64;
const GPLEN0: u64 = 0x70;
const GPAREN0: u64 = 0x7c;
const GPAFEN0: u64 = 0x88;
const GPPUD: u64 = 0x94;
const GPPUDCLK0: u64 = 0x98;
const GPPUDCLK1: u64 = 0x9c;

/// Pins that exist, as a 64-bit mask (bank 1 has 22).
const PIN_MASK: u64 = (1 << PINS) - 1;

/// GPFSEL function "output".
const FSEL_OUTPUT: u8 = 1;

/// Pins on interrupt lines 0, 1 and 2 (line 3 takes them all).
const LINE_PINS: [u64; 3] = [
    (1 << 28) - 1,
    ((1 << 46) - 1) & !((1 << 28) - 1),
    PIN_MASK & !((1 << 46) - 1),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pull {
    None,
    Down,
    Up,
}

/// The reset pulls from the BCM2835 datasheet's pin table.
fn reset_pull(pin: usize) -> Pull {
    match pin {
        0..=8 | 34..=36 | 46..=53 => Pull::Up,
        28 | 29 | 44 | 45 => Pull::None,
        _ => Pull::Down,
    }
}

/// The GPIO block.
pub struct Gpio {
    irqs: [IrqLine; 4],
    irq_levels: [bool; 4],
    fsel: [u8; PINS],
    pull: [Pull; PINS],
    /// Output latches.
    out: u64,
    /// Pins the board drives, and the levels it drives them to.
    driven: u64,
    driven_level: u64,
    /// Current pin levels (GPLEV).
    level: u64,
    eds: u64,
    ren: u64,
    fen: u64,
    hen: u64,
    len: u64,
    aren: u64,
    afen: u64,
    pud: u32,
    pudclk: [u32; 2],
}

impl Gpio {
    /// The GPIO block at reset (every pin an input with its reset pull), interrupting through
    /// `irqs` in the DT's order (bank 0, bank 1, bank 2, all).
    pub fn new(irqs: [IrqLine; 4]) -> Gpio {
        let mut g = Gpio {
            irqs,
            irq_levels: [false; 4],
            fsel: [0; PINS],
            pull: std::array::from_fn(reset_pull),
            out: 0,
            driven: 0,
            driven_level: 0,
            level: 0,
            eds: 0,
            ren: 0,
            fen: 0,
            hen: 0,
            len: 0,
            aren: 0,
            afen: 0,
            pud: 0,
            pudclk: [0; 2],
        };
        g.level = g.compute_levels();
        g
    }

    /// Drive input `pin` to `level` from outside (a button, a card-detect switch). Pins out of
    /// range are ignored. An output pin keeps showing its latch.
    pub fn set_input(&mut self, pin: usize, level: bool) {
        if pin >= PINS {
            log::debug!("bcm2835 gpio: set_input on pin {pin} out of range");
            return;
        }
        let bit = 1u64 << pin;
        self.driven |= bit;
        if level {
            self.driven_level |= bit;
        } else {
            self.driven_level &= !bit;
        }
        self.update();
    }

    /// Stop driving `pin`: it reads its pull again.
    pub fn release_input(&mut self, pin: usize) {
        if pin < PINS {
            self.driven &= !(1u64 << pin);
            self.update();
        }
    }

    /// The level of `pin` (GPLEV), false out of range.
    pub fn level(&self, pin: usize) -> bool {
        pin < PINS && self.level >> pin & 1 != 0
    }

    /// The function `pin` is set to (GPFSEL: 0 input, 1 output, 4..7 / 3 / 2 alternate
    /// functions 0..3 / 4 / 5), 0 out of range.
    pub fn function(&self, pin: usize) -> u8 {
        self.fsel.get(pin).copied().unwrap_or(0)
    }

    fn compute_levels(&self) -> u64 {
        let mut lv = 0;
        for pin in 0..PINS {
            let bit = 1u64 << pin;
            let high = if self.fsel[pin] == FSEL_OUTPUT {
                self.out & bit != 0
            } else if self.driven & bit != 0 {
                self.driven_level & bit != 0
            } else {
                self.pull[pin] == Pull::Up
            };
            if high {
                lv |= bit;
            }
        }
        lv
    }

    /// Recompute levels, detect events, drive the interrupt lines.
    fn update(&mut self) {
        let old = self.level;
        let new = self.compute_levels();
        self.level = new;
        let rising = new & !old;
        let falling = old & !new;
        self.eds |= rising & (self.ren | self.aren) | falling & (self.fen | self.afen);
        self.eds |= self.hen & new | self.len & !new;
        self.eds &= PIN_MASK;
        for (i, pins) in LINE_PINS.iter().chain(&[PIN_MASK]).enumerate() {
            let on = self.eds & pins != 0;
            if on != self.irq_levels[i] {
                self.irq_levels[i] = on;
                self.irqs[i].set(on);
            }
        }
    }

    fn fsel_reg(&self, n: usize) -> u32 {
        (0..10)
            .filter(|i| n * 10 + i < PINS)
            .fold(0, |v, i| v | (self.fsel[n * 10 + i] as u32) << (3 * i))
    }

    fn set_fsel_reg(&mut self, n: usize, v: u32) {
        for i in 0..10 {
            if let Some(f) = self.fsel.get_mut(n * 10 + i) {
                *f = (v >> (3 * i) & 7) as u8;
            }
        }
    }

    fn clock_pulls(&mut self, bank: usize, bits: u32) {
        let pull = match self.pud & 3 {
            1 => Pull::Down,
            2 => Pull::Up,
            _ => Pull::None,
        };
        for i in 0..32 {
            let pin = bank * 32 + i;
            if bits >> i & 1 != 0 && pin < PINS {
                self.pull[pin] = pull;
            }
        }
    }

    fn read32(&self, reg: u64) -> u32 {
        // Two-register banks: (register value for the bank, or None).
        let bank = |base: u64, v: u64| -> Option<u32> {
            match reg.checked_sub(base) {
                Some(0) => Some(v as u32),
                Some(4) => Some((v >> 32) as u32),
                _ => None,
            }
        };
        match reg {
            GPFSEL0..=GPFSEL5 => return self.fsel_reg((reg / 4) as usize),
            GPPUD => return self.pud,
            GPPUDCLK0 => return self.pudclk[0],
            GPPUDCLK1 => return self.pudclk[1],
            _ => {}
        }
        let regs = [
            (GPSET0, 0),
            (GPCLR0, 0),
            (GPLEV0, self.level),
            (GPEDS0, self.eds),
            (GPREN0, self.ren),
            (GPFEN0, self.fen),
            (GPHEN0, self.hen),
            (GPLEN0, self.len),
            (GPAREN0, self.aren),
            (GPAFEN0, self.afen),
        ];
        for (base, v) in regs {
            if let Some(x) = bank(base, v) {
                return x;
            }
        }
        log::debug!("bcm2835 gpio: read of unknown offset {reg:#x}");
        0
    }

    fn write32(&mut self, reg: u64, v: u32) {
        let (base, hi) = match reg {
            GPFSEL0..=GPFSEL5 => {
                self.set_fsel_reg((reg / 4) as usize, v);
                self.update();
                return;
            }
            GPPUD => {
                self.pud = v & 3;
                return;
            }
            GPPUDCLK0 | GPPUDCLK1 => {
                let bank = ((reg - GPPUDCLK0) / 4) as usize;
                self.pudclk[bank] = v;
                self.clock_pulls(bank, v);
                self.update();
                return;
            }
            _ if (GPSET0..GPPUD).contains(&reg) => {
                let off = reg - GPSET0;
                (GPSET0 + off / 12 * 12, off % 12)
            }
            _ => {
                log::debug!("bcm2835 gpio: write {v:#x} to unknown offset {reg:#x}");
                return;
            }
        };
        let mask = match hi {
            0 => v as u64,
            4 => (v as u64) << 32 & PIN_MASK,
            _ => {
                log::debug!("bcm2835 gpio: write {v:#x} to reserved offset {reg:#x}");
                return;
            }
        };
        let keep = if hi == 0 {
            !0xffff_ffffu64
        } else {
            0xffff_ffff
        };
        let set = |r: &mut u64| *r = (*r & keep) | mask;
        match base {
            GPSET0 => self.out |= mask,
            GPCLR0 => self.out &= !mask,
            GPLEV0 => log::debug!("bcm2835 gpio: write to read-only GPLEV"),
            GPEDS0 => self.eds &= !mask,
            GPREN0 => set(&mut self.ren),
            GPFEN0 => set(&mut self.fen),
            GPHEN0 => set(&mut self.hen),
            GPLEN0 => set(&mut self.len),
            GPAREN0 => set(&mut self.aren),
            _ => set(&mut self.afen),
        }
        self.update();
    }
}

impl Device for Gpio {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if offset >= SIZE || offset & 3 != 0 || size != 4 {
            log::debug!("bcm2835 gpio: bad read of size {size} at {offset:#x}");
            return 0;
        }
        self.read32(offset) as u64
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset >= SIZE || offset & 3 != 0 || size != 4 {
            log::debug!("bcm2835 gpio: bad write of size {size} at {offset:#x}");
            return;
        }
        self.write32(offset, value as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use armboard_bus::IrqSink;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    /// Levels of lines 0..3 as bits.
    #[derive(Default)]
    struct Lines(AtomicU32);
    impl IrqSink for Lines {
        fn set_level(&self, line: u32, level: bool) {
            if level {
                self.0.fetch_or(1 << line, Ordering::SeqCst);
            } else {
                self.0.fetch_and(!(1 << line), Ordering::SeqCst);
            }
        }
    }

    fn gpio() -> (Gpio, Arc<Lines>) {
        let l = Arc::new(Lines::default());
        let irqs = std::array::from_fn(|i| IrqLine::new(l.clone(), i as u32));
        (Gpio::new(irqs), l)
    }

    fn lines(l: &Lines) -> u32 {
        l.0.load(Ordering::SeqCst)
    }

    /// bcm2835_pinctrl_fsel_set.
    fn fsel_set(g: &mut Gpio, pin: u64, f: u32) {
        let reg = GPFSEL0 + pin / 10 * 4;
        let shift = (pin % 10) * 3;
        let v = g.read(reg, 4) as u32 & !(7 << shift) | f << shift;
        g.write(reg, 4, v as u64);
    }

    /// bcm2835_gpio_set_bit: write BIT(pin % 32) to bank register base + pin / 32 * 4.
    fn set_bit(g: &mut Gpio, base: u64, pin: u64) {
        g.write(base + pin / 32 * 4, 4, 1 << (pin % 32));
    }

    fn lev(g: &mut Gpio, pin: u64) -> bool {
        g.read(GPLEV0 + pin / 32 * 4, 4) >> (pin % 32) & 1 != 0
    }

    /// Linux's probe: every event detector off, pending events cleared.
    fn linux_probe(g: &mut Gpio) {
        for base in [GPFEN0, GPREN0, GPLEN0, GPHEN0, GPAFEN0, GPAREN0] {
            g.write(base, 4, 0);
            g.write(base + 4, 4, 0);
        }
        for bank in 0..2 {
            let ev = g.read(GPEDS0 + bank * 4, 4);
            g.write(GPEDS0 + bank * 4, 4, ev);
        }
    }

    #[test]
    fn function_select_reads_back_per_pin() {
        let (mut g, _) = gpio();
        fsel_set(&mut g, 14, 2); // uart1_gpio14: ALT5
        fsel_set(&mut g, 15, 2);
        fsel_set(&mut g, 48, 4); // ALT0
        fsel_set(&mut g, 53, 4);
        assert_eq!(g.read(0x04, 4), 2 << 12 | 2 << 15);
        assert_eq!(g.read(0x10, 4), 4 << 24);
        assert_eq!(g.read(0x14, 4), 4 << 9, "pins 54..59 do not exist");
        g.write(0x14, 4, 0x3fff_ffff);
        assert_eq!(g.read(0x14, 4), 0xfff);
        assert_eq!(g.function(14), 2);
        assert_eq!(g.function(99), 0);
    }

    #[test]
    fn outputs_latch_set_and_clear_through_gplev() {
        let (mut g, _) = gpio();
        linux_probe(&mut g);
        // gpio_direction_output(47, 1): set the value, then the function.
        set_bit(&mut g, GPSET0, 47);
        fsel_set(&mut g, 47, 1);
        assert!(lev(&mut g, 47));
        set_bit(&mut g, GPCLR0, 47);
        assert!(!lev(&mut g, 47));
        assert!(!g.level(47));
        set_bit(&mut g, GPSET0, 5);
        assert!(
            lev(&mut g, 5),
            "input 5 pulled up at reset, latch not visible"
        );
        set_bit(&mut g, GPCLR0, 5);
        assert!(lev(&mut g, 5));
        fsel_set(&mut g, 5, 1);
        assert!(!lev(&mut g, 5), "output: the cleared latch");
        assert_eq!(g.read(GPSET0, 4), 0, "write-only");
        assert_eq!(g.read(GPLEV0 + 4, 4) >> 22, 0, "bank 1 has 22 pins");
    }

    #[test]
    fn inputs_read_their_pull_or_the_driven_level() {
        let (mut g, _) = gpio();
        assert!(lev(&mut g, 2) && !lev(&mut g, 10) && lev(&mut g, 50));
        // bcm2835_pull_config_set(10, up).
        g.write(GPPUD, 4, 2);
        g.write(GPPUDCLK0, 4, 1 << 10);
        g.write(GPPUDCLK0, 4, 0);
        assert!(lev(&mut g, 10));
        g.write(GPPUD, 4, 1);
        g.write(GPPUDCLK1, 4, 1 << (50 - 32));
        g.write(GPPUDCLK1, 4, 0);
        assert!(!lev(&mut g, 50));
        g.set_input(10, false);
        assert!(!lev(&mut g, 10));
        g.release_input(10);
        assert!(lev(&mut g, 10));
        g.set_input(99, true);
    }

    #[test]
    fn edge_events_raise_the_bank_lines_and_clear_with_w1c() {
        let (mut g, l) = gpio();
        linux_probe(&mut g);
        g.set_input(17, false);
        g.set_input(40, false);
        assert_eq!(lines(&l), 0);
        // IRQ_TYPE_EDGE_RISING on 17, EDGE_BOTH on 40.
        set_bit(&mut g, GPREN0, 17);
        g.write(GPREN0 + 4, 4, 1 << 8);
        g.write(GPFEN0 + 4, 4, 1 << 8);
        g.set_input(17, true);
        assert_eq!(lines(&l), 0b1001, "bank 0 line and the all-pins line");
        assert_eq!(g.read(GPEDS0, 4), 1 << 17);
        g.set_input(17, false);
        assert_eq!(g.read(GPEDS0, 4), 1 << 17, "no falling detector");
        set_bit(&mut g, GPEDS0, 17);
        assert_eq!(lines(&l), 0);
        g.set_input(40, true);
        assert_eq!(lines(&l), 0b1010, "pin 40 is on line 1");
        set_bit(&mut g, GPEDS0, 40);
        g.set_input(40, false);
        assert_eq!(g.read(GPEDS0 + 4, 4), 1 << 8, "falling edge too");
        set_bit(&mut g, GPEDS0, 40);
        // Output pins generate events as well; pin 50 is on line 2.
        g.write(GPAFEN0 + 4, 4, 1 << 18);
        fsel_set(&mut g, 50, 1);
        assert_eq!(lines(&l), 0b1100, "pulled-up 50 driven low by its latch");
        assert_eq!(g.read(GPEDS0 + 4, 4), 1 << 18);
    }

    #[test]
    fn level_events_reassert_while_the_level_holds() {
        let (mut g, l) = gpio();
        linux_probe(&mut g);
        g.set_input(4, false);
        // IRQ_TYPE_LEVEL_HIGH on 4: unmask sets GPHEN.
        set_bit(&mut g, GPHEN0, 4);
        assert_eq!(lines(&l), 0);
        g.set_input(4, true);
        assert_eq!(lines(&l) & 1, 1);
        // handle_level_irq: mask (GPHEN off), ack (w1c), handler, unmask.
        g.write(GPHEN0, 4, 0);
        set_bit(&mut g, GPEDS0, 4);
        assert_eq!(lines(&l), 0);
        set_bit(&mut g, GPHEN0, 4);
        assert_eq!(lines(&l) & 1, 1, "still high: pending again");
        g.write(GPHEN0, 4, 0);
        set_bit(&mut g, GPEDS0, 4);
        g.set_input(4, false);
        set_bit(&mut g, GPHEN0, 4);
        assert_eq!(lines(&l), 0);
        // Low level.
        g.write(GPLEN0, 4, 1 << 4);
        assert_eq!(g.read(GPEDS0, 4), 1 << 4);
    }

    #[test]
    fn bad_and_unknown_accesses_are_ignored() {
        let (mut g, _) = gpio();
        g.write(0x18, 4, 0xffff_ffff);
        g.write(0xa0, 4, 1);
        g.write(0xb4, 4, 1);
        g.write(0x1e, 2, 1);
        assert_eq!(g.read(0x18, 4), 0);
        assert_eq!(g.read(0xb0, 4), 0);
        assert_eq!(g.read(0x1000, 4), 0);
        assert_eq!(g.read(0x00, 8), 0);
        assert_eq!(g.read(0x00, 4), 0);
        g.write(GPREN0, 4, 0xffff_ffff);
        g.write(GPREN0 + 4, 4, 0xffff_ffff);
        assert_eq!(g.read(GPREN0 + 4, 4), 0x3f_ffff);
        assert_eq!(g.read(GPREN0, 4), 0xffff_ffff);
    }
}
