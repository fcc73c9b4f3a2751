//! Arm PrimeCell UART (PL011), as Linux's `amba-pl011` driver and the `pl011` earlycon use it.
//!
//! Transmission is immediate: a byte written to UARTDR goes straight to the output backend, so
//! the transmit FIFO is always empty, UARTFR.TXFE is 1, TXFF and BUSY are 0, and the transmit
//! interrupt (TXRIS: FIFO at or below its trigger level) is asserted whenever it is unmasked.
//! Received bytes come from [`Pl011::push_input`] into a FIFO of 32 entries (1 with FIFOs
//! disabled), the hardware's depth; a full FIFO accepts nothing more, so the caller keeps the
//! rest (no overrun is modelled, no byte is dropped). Baud rate and line format registers are
//! stored and read back but change nothing.

use armboard_bus::{Device, IrqLine};
use std::collections::VecDeque;
use std::io::Write;

/// Size of the register frame.
pub const SIZE: u64 = 0x1000;
/// Receive FIFO depth (with UARTLCR_H.FEN set): 32 entries, as the PL011 r1p5 has. Earlier
/// revisions, which the revision field of these ID registers names, had 16, and Linux sizes its
/// transmit bursts for 16; it drains the receive FIFO until RXFE whatever the depth, so the
/// only visible difference is where the 1/8..7/8 receive trigger levels fall.
pub const FIFO_DEPTH: usize = 32;

const UARTDR: u64 = 0x000;
const UARTRSR: u64 = 0x004; // read: RSR, write: ECR
const UARTFR: u64 = 0x018;
const UARTILPR: u64 = 0x020;
const UARTIBRD: u64 = 0x024;
const UARTFBRD: u64 = 0x028;
const UARTLCR_H: u64 = 0x02C;
const UARTCR: u64 = 0x030;
const UARTIFLS: u64 = 0x034;
const UARTIMSC: u64 = 0x038;
const UARTRIS: u64 = 0x03C;
const UARTMIS: u64 = 0x040;
const UARTICR: u64 = 0x044;
const UARTDMACR: u64 = 0x048;
const UARTPERIPHID0: u64 = 0xFE0;

/// UARTPeriphID0..3, UARTPCellID0..3.
const ID: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1];

// UARTFR bits.
const FR_CTS: u32 = 1 << 0;
const FR_RXFE: u32 = 1 << 4;
/// Transmit FIFO full: never set (transmission is immediate).
#[cfg_attr(not(test), allow(dead_code))]
const FR_TXFF: u32 = 1 << 5;
const FR_RXFF: u32 = 1 << 6;
const FR_TXFE: u32 = 1 << 7;

// UARTLCR_H bits.
const LCR_H_FEN: u32 = 1 << 4;

// UARTCR bits.
const CR_UARTEN: u32 = 1 << 0;
const CR_LBE: u32 = 1 << 7;
const CR_RXE: u32 = 1 << 9;
const CR_RESET: u32 = 0x300; // TXE | RXE

// Interrupt bits (IMSC, RIS, MIS, ICR).
const INT_RX: u32 = 1 << 4;
const INT_TX: u32 = 1 << 5;
const INT_RT: u32 = 1 << 6;
const INT_ALL: u32 = 0x7FF;

const IFLS_RESET: u32 = 0x12;

/// A PL011 UART.
pub struct Pl011 {
    out: Box<dyn Write + Send>,
    irq: IrqLine,
    irq_level: bool,
    rx: VecDeque<u8>,
    rsr: u32,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    /// Latched raw interrupt bits (RX, RT, errors); TX is computed.
    ris: u32,
    dmacr: u32,
    out_failed: bool,
}

impl Pl011 {
    /// A UART writing what the guest sends to `out` and interrupting through `irq`.
    pub fn new(out: Box<dyn Write + Send>, irq: IrqLine) -> Pl011 {
        Pl011 {
            out,
            irq,
            irq_level: false,
            rx: VecDeque::with_capacity(FIFO_DEPTH),
            rsr: 0,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_RESET,
            ifls: IFLS_RESET,
            imsc: 0,
            ris: 0,
            dmacr: 0,
            out_failed: false,
        }
    }

    fn depth(&self) -> usize {
        if self.lcr_h & LCR_H_FEN != 0 {
            FIFO_DEPTH
        } else {
            1
        }
    }

    /// RX FIFO level that raises RXRIS (UARTIFLS.RXIFLSEL: 1/8 .. 7/8 full).
    fn rx_trigger(&self) -> usize {
        if self.lcr_h & LCR_H_FEN == 0 {
            return 1;
        }
        match (self.ifls >> 3) & 7 {
            0 => 4,
            1 => 8,
            2 => 16,
            3 => 24,
            _ => 28,
        }
    }

    fn raw_status(&self) -> u32 {
        // The transmit FIFO is always empty: at or below any trigger level.
        self.ris | INT_TX
    }

    fn update_irq(&mut self) {
        let level = self.raw_status() & self.imsc != 0;
        if level != self.irq_level {
            self.irq_level = level;
            self.irq.set(level);
        }
    }

    /// Offer received bytes; returns how many were taken (0 when the FIFO is full or the
    /// receiver is disabled). The caller keeps and re-offers the rest.
    pub fn push_input(&mut self, bytes: &[u8]) -> usize {
        if self.cr & CR_LBE != 0 {
            return 0;
        }
        self.receive(bytes)
    }

    fn receive(&mut self, bytes: &[u8]) -> usize {
        if self.cr & (CR_UARTEN | CR_RXE) != CR_UARTEN | CR_RXE {
            return 0;
        }
        let room = self.depth().saturating_sub(self.rx.len());
        let n = room.min(bytes.len());
        if n == 0 {
            return 0;
        }
        self.rx.extend(&bytes[..n]);
        if self.rx.len() >= self.rx_trigger() {
            self.ris |= INT_RX;
        }
        // No time passes between bytes here, so the receive timeout is taken as expired as soon
        // as data is waiting below the trigger level (the driver treats RX and RT alike).
        self.ris |= INT_RT;
        self.update_irq();
        n
    }

    /// Whether the receive FIFO has room (a stdin thread may wait on this).
    pub fn can_accept(&self) -> bool {
        self.cr & CR_LBE == 0
            && self.cr & (CR_UARTEN | CR_RXE) == CR_UARTEN | CR_RXE
            && self.rx.len() < self.depth()
    }

    fn transmit(&mut self, byte: u8) {
        if self.cr & CR_LBE != 0 {
            self.receive(&[byte]);
            return;
        }
        let r = self.out.write_all(&[byte]).and_then(|_| self.out.flush());
        if let Err(e) = r {
            if !self.out_failed {
                log::warn!("pl011: output backend failed: {e}");
                self.out_failed = true;
            }
        }
    }

    fn read_dr(&mut self) -> u32 {
        let Some(b) = self.rx.pop_front() else {
            return 0;
        };
        if self.rx.len() < self.rx_trigger() {
            self.ris &= !INT_RX;
        }
        if self.rx.is_empty() {
            self.ris &= !INT_RT;
        }
        self.update_irq();
        b as u32
    }

    fn flags(&self) -> u32 {
        let mut fr = FR_CTS | FR_TXFE;
        if self.rx.is_empty() {
            fr |= FR_RXFE;
        }
        if self.rx.len() >= self.depth() {
            fr |= FR_RXFF;
        }
        fr
    }

    fn read32(&mut self, reg: u64) -> u32 {
        match reg {
            UARTDR => self.read_dr(),
            UARTRSR => self.rsr,
            UARTFR => self.flags(),
            UARTILPR => self.ilpr,
            UARTIBRD => self.ibrd,
            UARTFBRD => self.fbrd,
            UARTLCR_H => self.lcr_h,
            UARTCR => self.cr,
            UARTIFLS => self.ifls,
            UARTIMSC => self.imsc,
            UARTRIS => self.raw_status(),
            UARTMIS => self.raw_status() & self.imsc,
            UARTDMACR => self.dmacr,
            UARTPERIPHID0..=0xFFC => ID[((reg - UARTPERIPHID0) / 4) as usize] as u32,
            UARTICR => 0,
            _ => {
                log::debug!("pl011: read of reserved offset {reg:#x}");
                0
            }
        }
    }

    fn write32(&mut self, reg: u64, v: u32) {
        match reg {
            UARTDR => self.transmit(v as u8),
            UARTRSR => self.rsr = 0,
            UARTILPR => self.ilpr = v & 0xFF,
            UARTIBRD => self.ibrd = v & 0xFFFF,
            UARTFBRD => self.fbrd = v & 0x3F,
            UARTLCR_H => {
                let was_fifo = self.lcr_h & LCR_H_FEN != 0;
                self.lcr_h = v & 0xFF;
                if was_fifo != (self.lcr_h & LCR_H_FEN != 0) {
                    // Keep what the new depth holds.
                    let depth = self.depth();
                    self.rx.truncate(depth);
                }
            }
            UARTCR => self.cr = v & 0xFF87,
            UARTIFLS => self.ifls = v & 0x3F,
            UARTIMSC => self.imsc = v & INT_ALL,
            UARTICR => self.ris &= !v,
            UARTDMACR => self.dmacr = v & 7,
            UARTFR | UARTRIS | UARTMIS | UARTPERIPHID0..=0xFFC => {
                log::debug!("pl011: write to read-only offset {reg:#x}")
            }
            _ => log::debug!("pl011: write {v:#x} to reserved offset {reg:#x}"),
        }
        self.update_irq();
    }
}

impl Device for Pl011 {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        let sub = offset & 3;
        if offset >= SIZE || !matches!(size, 1 | 2 | 4) || sub + size as u64 > 4 {
            log::warn!("pl011: bad read of size {size} at {offset:#x}");
            return 0;
        }
        let v = self.read32(offset & !3) >> (8 * sub);
        (v & (u32::MAX >> (32 - 8 * size as u32))) as u64
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset >= SIZE || offset & 3 != 0 || !matches!(size, 1 | 2 | 4) {
            log::warn!("pl011: bad write of size {size} at {offset:#x}");
            return;
        }
        self.write32(offset, value as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use armboard_bus::IrqSink;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Out(Arc<Mutex<Vec<u8>>>);
    impl Write for Out {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[derive(Default)]
    struct Level(AtomicBool);
    impl IrqSink for Level {
        fn set_level(&self, _line: u32, level: bool) {
            self.0.store(level, Ordering::SeqCst);
        }
    }

    fn uart() -> (Pl011, Out, Arc<Level>) {
        let out = Out::default();
        let lvl = Arc::new(Level::default());
        let u = Pl011::new(Box::new(out.clone()), IrqLine::new(lvl.clone(), 33));
        (u, out, lvl)
    }

    /// What the Linux driver's startup leaves: FIFOs on, UART enabled, RX/RT unmasked.
    fn linux_startup(u: &mut Pl011) {
        u.write(UARTLCR_H, 2, (LCR_H_FEN | 0x60) as u64);
        u.write(UARTIFLS, 2, 0x12);
        u.write(UARTCR, 2, 0x301);
        u.write(UARTICR, 2, (INT_RX | INT_RT) as u64);
        u.write(UARTIMSC, 2, (INT_RX | INT_RT) as u64);
    }

    #[test]
    fn id_registers_identify_a_pl011() {
        let (mut u, _, _) = uart();
        let id: Vec<u64> = (0..8).map(|i| u.read(0xFE0 + 4 * i, 4)).collect();
        assert_eq!(id, [0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1]);
        assert_eq!(u.read(0xFE0, 1), 0x11);
    }

    #[test]
    fn transmit_is_immediate_and_reaches_the_backend() {
        let (mut u, out, _) = uart();
        // Earlycon writes without enabling the UART.
        for b in b"hi\n" {
            assert_eq!(u.read(UARTFR, 2) as u32 & FR_TXFF, 0);
            u.write(UARTDR, 4, *b as u64);
        }
        assert_eq!(&*out.0.lock().unwrap(), b"hi\n");
        let fr = u.read(UARTFR, 4) as u32;
        assert_eq!(
            fr & (FR_TXFE | FR_RXFE | FR_CTS),
            FR_TXFE | FR_RXFE | FR_CTS
        );
        assert_eq!(fr & (1 << 3), 0, "never BUSY");
    }

    #[test]
    fn tx_interrupt_follows_its_mask() {
        let (mut u, _, lvl) = uart();
        linux_startup(&mut u);
        assert!(!lvl.0.load(Ordering::SeqCst));
        u.write(UARTIMSC, 2, (INT_RX | INT_RT | INT_TX) as u64);
        assert!(lvl.0.load(Ordering::SeqCst), "empty TX FIFO asserts TXRIS");
        assert_eq!(u.read(UARTMIS, 4) as u32, INT_TX);
        u.write(UARTIMSC, 2, (INT_RX | INT_RT) as u64);
        assert!(!lvl.0.load(Ordering::SeqCst));
    }

    #[test]
    fn rx_fifo_is_bounded_and_ordered() {
        let (mut u, _, _) = uart();
        linux_startup(&mut u);
        let data: Vec<u8> = (0..40).collect();
        assert_eq!(u.push_input(&data), FIFO_DEPTH);
        assert_eq!(u.push_input(&data[32..]), 0);
        assert!(!u.can_accept());
        assert_ne!(u.read(UARTFR, 4) as u32 & FR_RXFF, 0);
        for i in 0..32 {
            assert_eq!(u.read(UARTDR, 4), i);
        }
        assert_ne!(u.read(UARTFR, 4) as u32 & FR_RXFE, 0);
        assert_eq!(u.read(UARTDR, 4), 0);
        // Without FIFOs the holding register takes one byte.
        u.write(UARTLCR_H, 2, 0x60);
        assert_eq!(u.push_input(b"ab"), 1);
    }

    #[test]
    fn rx_and_timeout_interrupts_rise_and_clear() {
        let (mut u, _, lvl) = uart();
        linux_startup(&mut u);
        u.push_input(b"x");
        assert!(lvl.0.load(Ordering::SeqCst));
        assert_eq!(
            u.read(UARTMIS, 4) as u32,
            INT_RT,
            "below trigger: timeout only"
        );
        assert_eq!(u.read(UARTDR, 4), b'x' as u64);
        assert!(!lvl.0.load(Ordering::SeqCst), "drained");
        // IFLS 0x12: RX trigger at half full (16).
        u.push_input(&[7; 16]);
        assert_eq!(
            u.read(UARTRIS, 4) as u32 & (INT_RX | INT_RT),
            INT_RX | INT_RT
        );
        u.read(UARTDR, 4);
        assert_eq!(u.read(UARTRIS, 4) as u32 & INT_RX, 0, "below trigger again");
        u.write(UARTICR, 4, INT_RT as u64);
        assert!(!lvl.0.load(Ordering::SeqCst), "cleared by ICR");
    }

    #[test]
    fn disabled_receiver_and_loopback() {
        let (mut u, out, _) = uart();
        assert_eq!(u.push_input(b"a"), 0, "UART disabled at reset");
        linux_startup(&mut u);
        u.write(UARTCR, 2, (0x301 | CR_LBE) as u64);
        u.write(UARTDR, 4, b'z' as u64);
        assert!(out.0.lock().unwrap().is_empty());
        assert_eq!(u.read(UARTDR, 4), b'z' as u64);
    }

    #[test]
    fn registers_read_back_and_bad_accesses_are_ignored() {
        let (mut u, _, _) = uart();
        u.write(UARTIBRD, 4, 0x1A);
        u.write(UARTFBRD, 4, 0x3);
        u.write(UARTDMACR, 4, 0);
        assert_eq!(u.read(UARTIBRD, 4), 0x1A);
        assert_eq!(u.read(UARTFBRD, 4), 0x3);
        assert_eq!(u.read(UARTCR, 4), 0x300);
        assert_eq!(u.read(UARTIFLS, 4), 0x12);
        u.write(0x2001, 4, 1);
        assert_eq!(u.read(0x2000, 4), 0);
        assert_eq!(u.read(UARTCR, 8), 0);
    }
}
