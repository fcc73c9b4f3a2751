//! BCM2835 ARM interrupt controller ("armctrl"), as the BCM2836/7 use it (DT
//! `brcm,bcm2836-armctrl-ic`, bus 0x7e00b200, 0x200 bytes): it collects the 64 VideoCore
//! ("GPU") peripheral interrupts and 8 ARM basic interrupts and signals one IRQ and one FIQ,
//! which on the Pi 2/3 feed the ARM-local controller's GPU IRQ/FIQ inputs
//! ([`super::local_intc`]). Linux: `drivers/irqchip/irq-bcm2835.c` (chained below
//! `irq-bcm2836.c` through local interrupt 8).
//!
//! Registers (offsets from 0x7e00b200, 32-bit): 0x00 basic pending, 0x04 pending 1 (GPU
//! 0..31), 0x08 pending 2 (GPU 32..63), 0x0c FIQ control (bits 6:0 source: GPU 0..63, then ARM
//! 64..71; bit 7 enable), 0x10/0x14/0x18 enable 1/2/basic and 0x1c/0x20/0x24 disable 1/2/basic
//! (write 1 to set/clear an enable; both read back the enable mask).
//!
//! Basic pending: bits 7:0 enabled pending ARM interrupts; bit 8/9 "something enabled is
//! pending in bank 1/2"; bits 20:10 shortcut copies of GPU IRQs 7, 9, 10, 18, 19, 53..57, 62.
//! As Linux documents for real hardware, an interrupt with a shortcut bit does not set the
//! bank summary bit 8/9. Pending registers show enabled interrupts only (masked ones are
//! invisible, as Linux's handler expects).
//!
//! Inputs ([`IrqSink`]): line n < 64 is GPU interrupt n (DT `<1 k>` → k, `<2 k>` → 32 + k);
//! line 64 + k is ARM basic interrupt k (DT `<0 k>`; the VideoCore mailbox is 65). All inputs
//! are levels. Lock order: a device → [`Armctrl`] → the local controller it drives.

use armboard_bus::{Device, IrqLine, IrqSink};
use std::sync::{Arc, Mutex, MutexGuard};

/// Size of the register block (from 0x7e00b200).
pub const SIZE: u64 = 0x200;
/// Number of GPU interrupt lines; ARM basic interrupt k is line `ARM_BASE + k`.
pub const GPU_IRQS: u32 = 64;
/// First ARM basic interrupt line.
pub const ARM_BASE: u32 = 64;
/// Number of ARM basic interrupts.
pub const ARM_IRQS: u32 = 8;
/// Line of the VideoCore mailbox's interrupt (ARM basic interrupt 1).
pub const MAILBOX_LINE: u32 = ARM_BASE + 1;

const BASIC_PENDING: u64 = 0x00;
const PENDING_1: u64 = 0x04;
const PENDING_2: u64 = 0x08;
const FIQ_CONTROL: u64 = 0x0c;
const ENABLE_1: u64 = 0x10;
const ENABLE_2: u64 = 0x14;
const ENABLE_BASIC: u64 = 0x18;
const DISABLE_1: u64 = 0x1c;
const DISABLE_2: u64 = 0x20;
const DISABLE_BASIC: u64 = 0x24;

/// GPU interrupts copied into basic pending bits 10.. (in bit order).
const SHORTCUTS: [u32; 11] = [7, 9, 10, 18, 19, 53, 54, 55, 56, 57, 62];
const SHORTCUT_SHIFT: u32 = 10;

const FIQ_ENABLE: u32 = 1 << 7;
const FIQ_SOURCE: u32 = 0x7f;

#[derive(Default)]
struct State {
    gpu_level: u64,
    gpu_enable: u64,
    arm_level: u8,
    arm_enable: u8,
    fiq_control: u32,
    irq_out: bool,
    fiq_out: bool,
}

impl State {
    fn gpu_pending(&self) -> u64 {
        self.gpu_level & self.gpu_enable
    }

    fn basic_pending(&self) -> u32 {
        let gpu = self.gpu_pending();
        let mut shortcut_mask = 0u64;
        let mut v = u32::from(self.arm_level & self.arm_enable);
        for (i, &n) in SHORTCUTS.iter().enumerate() {
            shortcut_mask |= 1 << n;
            if gpu & (1 << n) != 0 {
                v |= 1 << (SHORTCUT_SHIFT + i as u32);
            }
        }
        let rest = gpu & !shortcut_mask;
        if rest as u32 != 0 {
            v |= 1 << 8;
        }
        if rest >> 32 != 0 {
            v |= 1 << 9;
        }
        v
    }

    fn irq(&self) -> bool {
        self.gpu_pending() != 0 || self.arm_level & self.arm_enable != 0
    }

    fn fiq(&self) -> bool {
        if self.fiq_control & FIQ_ENABLE == 0 {
            return false;
        }
        match self.fiq_control & FIQ_SOURCE {
            n @ 0..GPU_IRQS => self.gpu_level & (1 << n) != 0,
            n => n - ARM_BASE < ARM_IRQS && self.arm_level & (1 << (n - ARM_BASE)) != 0,
        }
    }
}

/// The controller: an [`IrqSink`] for its inputs; [`Armctrl::device`] gives its registers.
pub struct Armctrl {
    state: Mutex<State>,
    irq_out: IrqLine,
    fiq_out: IrqLine,
}

impl Armctrl {
    /// A controller driving `irq_out`/`fiq_out` (the local controller's GPU IRQ/FIQ lines).
    pub fn new(irq_out: IrqLine, fiq_out: IrqLine) -> Arc<Armctrl> {
        Arc::new(Armctrl {
            state: Mutex::new(State::default()),
            irq_out,
            fiq_out,
        })
    }

    /// The register block, [`SIZE`] bytes.
    pub fn device(self: &Arc<Self>) -> ArmctrlRegs {
        ArmctrlRegs(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drive the outputs from the state (with the state locked, so levels arrive in order).
    fn update(&self, s: &mut State) {
        let (irq, fiq) = (s.irq(), s.fiq());
        if irq != s.irq_out {
            s.irq_out = irq;
            self.irq_out.set(irq);
        }
        if fiq != s.fiq_out {
            s.fiq_out = fiq;
            self.fiq_out.set(fiq);
        }
    }

    fn read32(&self, offset: u64) -> u32 {
        let s = self.lock();
        match offset {
            BASIC_PENDING => s.basic_pending(),
            PENDING_1 => s.gpu_pending() as u32,
            PENDING_2 => (s.gpu_pending() >> 32) as u32,
            FIQ_CONTROL => s.fiq_control,
            ENABLE_1 | DISABLE_1 => s.gpu_enable as u32,
            ENABLE_2 | DISABLE_2 => (s.gpu_enable >> 32) as u32,
            ENABLE_BASIC | DISABLE_BASIC => u32::from(s.arm_enable),
            _ => {
                log::debug!("bcm2835-armctrl: read of unknown offset {offset:#x}");
                0
            }
        }
    }

    fn write32(&self, offset: u64, v: u32) {
        let mut s = self.lock();
        let v64 = u64::from(v);
        match offset {
            FIQ_CONTROL => s.fiq_control = v & (FIQ_ENABLE | FIQ_SOURCE),
            ENABLE_1 => s.gpu_enable |= v64,
            ENABLE_2 => s.gpu_enable |= v64 << 32,
            ENABLE_BASIC => s.arm_enable |= v as u8,
            DISABLE_1 => s.gpu_enable &= !v64,
            DISABLE_2 => s.gpu_enable &= !(v64 << 32),
            DISABLE_BASIC => s.arm_enable &= !(v as u8),
            BASIC_PENDING | PENDING_1 | PENDING_2 => {
                log::debug!("bcm2835-armctrl: write to read-only pending register {offset:#x}");
                return;
            }
            _ => {
                log::debug!("bcm2835-armctrl: write {v:#x} to unknown offset {offset:#x}");
                return;
            }
        }
        self.update(&mut s);
    }
}

impl IrqSink for Armctrl {
    fn set_level(&self, line: u32, level: bool) {
        let mut s = self.lock();
        if line < GPU_IRQS {
            let bit = 1u64 << line;
            if level {
                s.gpu_level |= bit;
            } else {
                s.gpu_level &= !bit;
            }
        } else if line - ARM_BASE < ARM_IRQS {
            let bit = 1u8 << (line - ARM_BASE);
            if level {
                s.arm_level |= bit;
            } else {
                s.arm_level &= !bit;
            }
        } else {
            log::warn!("bcm2835-armctrl: input on unknown line {line}");
            return;
        }
        self.update(&mut s);
    }
}

/// The register block of an [`Armctrl`].
pub struct ArmctrlRegs(Arc<Armctrl>);

impl Device for ArmctrlRegs {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if size != 4 || !offset.is_multiple_of(4) {
            log::debug!("bcm2835-armctrl: {size}-byte read at {offset:#x}");
            return 0;
        }
        u64::from(self.0.read32(offset))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if size != 4 || !offset.is_multiple_of(4) {
            log::debug!("bcm2835-armctrl: {size}-byte write at {offset:#x}");
            return;
        }
        self.0.write32(offset, value as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Records lines 0 (IRQ) and 1 (FIQ) as bits.
    #[derive(Default)]
    struct Out(AtomicU32);
    impl IrqSink for Out {
        fn set_level(&self, line: u32, level: bool) {
            if level {
                self.0.fetch_or(1 << line, Ordering::SeqCst);
            } else {
                self.0.fetch_and(!(1 << line), Ordering::SeqCst);
            }
        }
    }
    impl Out {
        fn irq(&self) -> bool {
            self.0.load(Ordering::SeqCst) & 1 != 0
        }
        fn fiq(&self) -> bool {
            self.0.load(Ordering::SeqCst) & 2 != 0
        }
    }

    fn setup() -> (Arc<Armctrl>, ArmctrlRegs, Arc<Out>) {
        let out = Arc::new(Out::default());
        let a = Armctrl::new(IrqLine::new(out.clone(), 0), IrqLine::new(out.clone(), 1));
        let regs = a.device();
        (a, regs, out)
    }

    #[test]
    fn pending_shows_only_enabled_inputs_and_drives_irq() {
        let (a, mut r, out) = setup();
        a.set_level(3, true); // system timer channel 3 (bank 1)
        assert_eq!(r.read(PENDING_1, 4), 0);
        assert_eq!(r.read(BASIC_PENDING, 4), 0);
        assert!(!out.irq());
        r.write(ENABLE_1, 4, 1 << 3);
        assert_eq!(r.read(ENABLE_1, 4), 1 << 3);
        assert_eq!(r.read(PENDING_1, 4), 1 << 3);
        assert_eq!(r.read(BASIC_PENDING, 4), 1 << 8);
        assert!(out.irq());
        r.write(DISABLE_1, 4, 1 << 3);
        assert_eq!(r.read(ENABLE_1, 4), 0);
        assert_eq!(r.read(PENDING_1, 4), 0);
        assert!(!out.irq());
        r.write(ENABLE_1, 4, 1 << 3);
        assert!(out.irq());
        a.set_level(3, false);
        assert!(!out.irq());
        assert_eq!(r.read(BASIC_PENDING, 4), 0);
    }

    #[test]
    fn bank2_and_arm_basic_interrupts() {
        let (a, mut r, out) = setup();
        // GPU 52 = DT <2 20>: bank 2 bit 20, no shortcut.
        a.set_level(52, true);
        r.write(ENABLE_2, 4, 1 << 20);
        assert_eq!(r.read(PENDING_2, 4), 1 << 20);
        assert_eq!(r.read(BASIC_PENDING, 4), 1 << 9);
        assert_eq!(r.read(ENABLE_2, 4), 1 << 20);
        r.write(DISABLE_2, 4, 1 << 20);
        assert!(!out.irq());
        // Mailbox: ARM basic 1 = line 65.
        a.set_level(MAILBOX_LINE, true);
        r.write(ENABLE_BASIC, 4, 0x2);
        assert_eq!(r.read(ENABLE_BASIC, 4), 0x2);
        assert_eq!(r.read(BASIC_PENDING, 4), 0x2);
        assert!(out.irq());
        r.write(DISABLE_BASIC, 4, 0x2);
        assert_eq!(r.read(BASIC_PENDING, 4), 0);
        assert!(!out.irq());
    }

    #[test]
    fn shortcut_bits_replace_the_bank_summary_bits() {
        let (a, mut r, _) = setup();
        r.write(ENABLE_1, 4, u64::from(u32::MAX));
        r.write(ENABLE_2, 4, u64::from(u32::MAX));
        // GPU 57 (UART, DT <2 25>) is shortcut index 9 → basic bit 19, without bit 9.
        a.set_level(57, true);
        assert_eq!(r.read(BASIC_PENDING, 4), 1 << 19);
        assert_eq!(r.read(PENDING_2, 4), 1 << 25);
        // GPU 7 → bit 10; GPU 62 → bit 20.
        a.set_level(7, true);
        a.set_level(62, true);
        assert_eq!(r.read(BASIC_PENDING, 4), 1 << 10 | 1 << 19 | 1 << 20);
        // A non-shortcut bank 1 interrupt adds the summary bit 8.
        a.set_level(1, true);
        assert_eq!(
            r.read(BASIC_PENDING, 4),
            1 << 8 | 1 << 10 | 1 << 19 | 1 << 20
        );
        // Every shortcut maps to its bit.
        let (a, mut r, _) = setup();
        r.write(ENABLE_1, 4, u64::from(u32::MAX));
        r.write(ENABLE_2, 4, u64::from(u32::MAX));
        for (i, &n) in SHORTCUTS.iter().enumerate() {
            a.set_level(n, true);
            assert_eq!(r.read(BASIC_PENDING, 4), 1 << (10 + i), "GPU irq {n}");
            a.set_level(n, false);
        }
        // Shortcut bits cannot be enabled through the basic enable register.
        r.write(ENABLE_BASIC, 4, u64::from(u32::MAX));
        assert_eq!(r.read(ENABLE_BASIC, 4), 0xff);
    }

    #[test]
    fn fiq_control_selects_one_source() {
        let (a, mut r, out) = setup();
        r.write(FIQ_CONTROL, 4, 0x80 | 40);
        assert_eq!(r.read(FIQ_CONTROL, 4), 0x80 | 40);
        a.set_level(40, true);
        assert!(out.fiq());
        assert!(!out.irq());
        a.set_level(40, false);
        assert!(!out.fiq());
        // ARM basic 0 is source 64.
        r.write(FIQ_CONTROL, 4, 0x80 | 64);
        a.set_level(ARM_BASE, true);
        assert!(out.fiq());
        r.write(FIQ_CONTROL, 4, 64);
        assert!(!out.fiq());
        // Source 127 is nothing.
        r.write(FIQ_CONTROL, 4, 0xff);
        assert!(!out.fiq());
    }

    #[test]
    fn bad_lines_and_accesses_are_ignored() {
        let (a, mut r, out) = setup();
        a.set_level(72, true);
        a.set_level(u32::MAX, true);
        r.write(ENABLE_BASIC, 4, 0xff);
        assert!(!out.irq());
        assert_eq!(r.read(0x1fc, 4), 0);
        assert_eq!(r.read(0x3, 4), 0);
        r.write(ENABLE_1, 8, u64::MAX);
        r.write(PENDING_1, 4, u64::MAX);
        assert_eq!(r.read(ENABLE_1, 4), 0);
        assert_eq!(r.read(PENDING_1, 4), 0);
    }
}
