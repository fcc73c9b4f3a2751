//! BCM2835 AUX block: the auxiliary-peripheral enables/IRQ registers, the mini UART ("UART1")
//! and the two auxiliary SPI masters, as Linux 6.1 uses them: `clk-bcm2835-aux` (the
//! AUX_ENABLES bits are gate clocks), `8250_bcm2835aux` (the mini UART, driven by the 8250 core
//! as a `PORT_16550` with `UART_CAP_FIFO | UART_CAP_MINI`, register shift 2, 8-byte FIFOs, type
//! fixed so the core does not autoconfigure it) and the `bcm2835aux` earlycon.
//!
//! One [`Device`] covers the whole 0x100-byte block from the AUX base: AUX_IRQ 0x00,
//! AUX_ENABLES 0x04, the mini UART at 0x40..0x6c, SPI1 at 0x80 and SPI2 at 0xc0 (inert: their
//! registers read back, STAT shows both FIFOs empty, nothing is ever transferred).
//!
//! The mini UART's registers only answer while AUX_ENABLES bit 0 is set (reads 0, writes
//! ignored otherwise). Transmission is immediate while CNTL.TXEN is set: a byte written to
//! AUX_MU_IO goes straight to the output backend, so LSR shows THRE and TEMT (the 8250 core's
//! "both empty") and the transmit interrupt (IIR id 01) is pending whenever IER bit 1 is set.
//! With TXEN clear, up to 8 bytes wait in the transmit FIFO. Received bytes come from
//! [`Aux::push_input`] into the 8-byte receive FIFO; the receive interrupt (IIR id 10, priority
//! over transmit) is pending while it holds data and IER bit 0 is set. Interrupts are levels
//! (the hardware has no "THRE cleared by reading IIR"), which is what the 8250 core's THRE and
//! TXEN tests at startup expect of a working UART. Baud rate and line format are stored, read
//! back (DLAB maps IO/IER onto the baud register's bytes) and change nothing.

use armboard_bus::{Device, IrqLine};
use std::collections::VecDeque;
use std::io::Write;

/// Size of the register frame (AUX block, mini UART and both SPI masters).
pub const SIZE: u64 = 0x100;
/// Offset of the mini UART's registers (the DT's `brcm,bcm2835-aux-uart` node).
pub const UART_OFFSET: u64 = 0x40;
/// Depth of each mini UART FIFO.
pub const FIFO_DEPTH: usize = 8;

const AUX_IRQ: u64 = 0x00;
const AUX_ENABLES: u64 = 0x04;

// Mini UART registers (absolute offsets in the block).
const MU_IO: u64 = 0x40;
const MU_IER: u64 = 0x44;
const MU_IIR: u64 = 0x48;
const MU_LCR: u64 = 0x4c;
const MU_MCR: u64 = 0x50;
const MU_LSR: u64 = 0x54;
const MU_MSR: u64 = 0x58;
const MU_SCRATCH: u64 = 0x5c;
const MU_CNTL: u64 = 0x60;
const MU_STAT: u64 = 0x64;
const MU_BAUD: u64 = 0x68;

/// AUX_ENABLES / AUX_IRQ bits.
const AUX_UART: u32 = 1 << 0;
const AUX_SPI_MASK: u32 = 0x6;

// IER bits (the 8250 core's RDI and THRI); bits 3:2 are stored too (the errata says the
// hardware has them; Linux writes RLSI).
const IER_RX: u32 = 1 << 0;
const IER_TX: u32 = 1 << 1;
const IER_MASK: u32 = 0xf;

// IIR (read) values: FIFOs always enabled (bits 7:6), bit 0 = no interrupt pending.
const IIR_FIFOS: u32 = 0xc0;
const IIR_NO_INT: u32 = 0x01;
const IIR_TX_EMPTY: u32 = 0x02;
const IIR_RX_DATA: u32 = 0x04;
// IIR (write, the 8250 core's FCR) bits.
const FCR_CLEAR_RX: u32 = 1 << 1;
const FCR_CLEAR_TX: u32 = 1 << 2;

// LCR bits.
const LCR_DLAB: u32 = 1 << 7;
const LCR_MASK: u32 = 0xc3;

// LSR bits.
const LSR_DR: u32 = 1 << 0;
const LSR_OE: u32 = 1 << 1;
const LSR_THRE: u32 = 1 << 5;
const LSR_TEMT: u32 = 1 << 6;

/// MSR: CTS asserted (bit 4 for the 8250 core; the mini UART's own CTS-status bit is 5).
const MSR_VALUE: u32 = 0x30;

// CNTL bits.
const CNTL_RXEN: u32 = 1 << 0;
const CNTL_TXEN: u32 = 1 << 1;
const CNTL_RESET: u32 = CNTL_RXEN | CNTL_TXEN;

// STAT bits.
const STAT_RX_AVAIL: u32 = 1 << 0;
const STAT_TX_SPACE: u32 = 1 << 1;
const STAT_RX_IDLE: u32 = 1 << 2;
const STAT_TX_IDLE: u32 = 1 << 3;
const STAT_RX_OVERRUN: u32 = 1 << 4;
const STAT_TX_FULL: u32 = 1 << 5;
const STAT_CTS: u32 = 1 << 7;
const STAT_TX_EMPTY: u32 = 1 << 8;
const STAT_TX_DONE: u32 = 1 << 9;

// SPI masters: 0x40 bytes each from 0x80; 16 words of stored registers.
const SPI1: u64 = 0x80;
const SPI_FRAME: u64 = 0x40;
const SPI_STAT: u64 = 0x08;
/// SPI STAT as the inert masters show it: receive FIFO empty, transmit FIFO empty, not busy.
const SPI_STAT_IDLE: u32 = 0x280;

/// The baud register value the firmware leaves for 115200 baud with a 250 MHz core clock
/// (`enable_uart=1`): 250e6 / (8 * 115200) - 1.
const FIRMWARE_BAUD: u32 = 270;

/// The AUX block with its mini UART.
pub struct Aux {
    out: Box<dyn Write + Send>,
    irq: IrqLine,
    irq_level: bool,
    enables: u32,
    rx: VecDeque<u8>,
    tx: VecDeque<u8>,
    ier: u32,
    lcr: u32,
    mcr: u32,
    scratch: u32,
    cntl: u32,
    baud: u32,
    overrun: bool,
    spi: [[u32; 16]; 2],
    out_failed: bool,
}

impl Aux {
    /// The AUX block at reset (every peripheral disabled), writing what the guest transmits to
    /// `out` and interrupting through `irq` (the block's one shared line).
    pub fn new(out: Box<dyn Write + Send>, irq: IrqLine) -> Aux {
        Aux {
            out,
            irq,
            irq_level: false,
            enables: 0,
            rx: VecDeque::with_capacity(FIFO_DEPTH),
            tx: VecDeque::with_capacity(FIFO_DEPTH),
            ier: 0,
            lcr: 0,
            mcr: 0,
            scratch: 0,
            cntl: CNTL_RESET,
            baud: 0,
            overrun: false,
            spi: [[0; 16]; 2],
            out_failed: false,
        }
    }

    /// What the Pi firmware does with `enable_uart=1` before starting the kernel: the mini
    /// UART enabled, 8 data bits, 115200 baud at the 250 MHz core clock. Without this, the
    /// UART stays disabled until Linux enables its clock gate (AUX_ENABLES bit 0), so an
    /// earlycon on it would write into a disabled block.
    pub fn firmware_enable_uart(&mut self) {
        self.enables |= AUX_UART;
        self.lcr = 0x03;
        self.cntl = CNTL_RESET;
        self.baud = FIRMWARE_BAUD;
        self.drain_tx();
        self.update_irq();
    }

    fn uart_on(&self) -> bool {
        self.enables & AUX_UART != 0
    }

    fn rx_on(&self) -> bool {
        self.uart_on() && self.cntl & CNTL_RXEN != 0
    }

    fn tx_on(&self) -> bool {
        self.uart_on() && self.cntl & CNTL_TXEN != 0
    }

    /// Offer received bytes; returns how many were taken (0 when the FIFO is full, or the UART
    /// or its receiver is disabled). The caller keeps and re-offers the rest.
    pub fn push_input(&mut self, bytes: &[u8]) -> usize {
        if !self.rx_on() {
            return 0;
        }
        let n = FIFO_DEPTH.saturating_sub(self.rx.len()).min(bytes.len());
        if n == 0 {
            return 0;
        }
        self.rx.extend(&bytes[..n]);
        self.update_irq();
        n
    }

    /// Whether the receive FIFO has room (a stdin thread may wait on this).
    pub fn can_accept(&self) -> bool {
        self.rx_on() && self.rx.len() < FIFO_DEPTH
    }

    /// Whether the mini UART has an interrupt pending (AUX_IRQ bit 0).
    fn uart_pending(&self) -> bool {
        self.uart_on()
            && ((self.ier & IER_RX != 0 && !self.rx.is_empty())
                || (self.ier & IER_TX != 0 && self.tx.is_empty()))
    }

    fn update_irq(&mut self) {
        let level = self.uart_pending();
        if level != self.irq_level {
            self.irq_level = level;
            self.irq.set(level);
        }
    }

    fn drain_tx(&mut self) {
        if !self.tx_on() || self.tx.is_empty() {
            return;
        }
        let bytes: Vec<u8> = self.tx.drain(..).collect();
        let r = self.out.write_all(&bytes).and_then(|_| self.out.flush());
        if let Err(e) = r {
            if !self.out_failed {
                log::warn!("bcm2835 aux: mini UART output backend failed: {e}");
                self.out_failed = true;
            }
        }
    }

    fn transmit(&mut self, byte: u8) {
        if self.tx.len() >= FIFO_DEPTH {
            log::debug!("bcm2835 aux: mini UART transmit FIFO full, byte dropped");
            return;
        }
        self.tx.push_back(byte);
        self.drain_tx();
    }

    fn iir(&self) -> u32 {
        let id = if self.ier & IER_RX != 0 && !self.rx.is_empty() {
            IIR_RX_DATA
        } else if self.ier & IER_TX != 0 && self.tx.is_empty() {
            IIR_TX_EMPTY
        } else {
            IIR_NO_INT
        };
        IIR_FIFOS | id
    }

    fn lsr(&mut self) -> u32 {
        let mut v = 0;
        if !self.rx.is_empty() {
            v |= LSR_DR;
        }
        if self.overrun {
            v |= LSR_OE;
            self.overrun = false;
        }
        if self.tx.len() < FIFO_DEPTH {
            v |= LSR_THRE;
        }
        if self.tx.is_empty() {
            v |= LSR_TEMT;
        }
        v
    }

    fn stat(&self) -> u32 {
        let mut v = STAT_CTS | STAT_RX_IDLE;
        if !self.rx.is_empty() {
            v |= STAT_RX_AVAIL;
        }
        if self.tx.len() < FIFO_DEPTH {
            v |= STAT_TX_SPACE;
        } else {
            v |= STAT_TX_FULL;
        }
        if self.tx.is_empty() {
            v |= STAT_TX_IDLE | STAT_TX_EMPTY | STAT_TX_DONE;
        }
        if self.overrun {
            v |= STAT_RX_OVERRUN;
        }
        if self.mcr & 2 != 0 {
            v |= 1 << 6; // RTS status
        }
        v | (self.rx.len() as u32) << 16 | (self.tx.len() as u32) << 24
    }

    fn read_uart(&mut self, reg: u64) -> u32 {
        if !self.uart_on() {
            log::debug!("bcm2835 aux: read of {reg:#x} with the mini UART disabled");
            return 0;
        }
        let dlab = self.lcr & LCR_DLAB != 0;
        match reg {
            MU_IO if dlab => self.baud & 0xff,
            MU_IO => {
                let b = self.rx.pop_front().unwrap_or(0);
                self.update_irq();
                b as u32
            }
            MU_IER if dlab => (self.baud >> 8) & 0xff,
            MU_IER => self.ier,
            MU_IIR => self.iir(),
            MU_LCR => self.lcr,
            MU_MCR => self.mcr,
            MU_LSR => self.lsr(),
            MU_MSR => MSR_VALUE,
            MU_SCRATCH => self.scratch,
            MU_CNTL => self.cntl,
            MU_STAT => self.stat(),
            MU_BAUD => self.baud,
            _ => {
                log::debug!("bcm2835 aux: read of reserved offset {reg:#x}");
                0
            }
        }
    }

    fn write_uart(&mut self, reg: u64, v: u32) {
        if !self.uart_on() {
            log::debug!("bcm2835 aux: write {v:#x} to {reg:#x} with the mini UART disabled");
            return;
        }
        let dlab = self.lcr & LCR_DLAB != 0;
        match reg {
            MU_IO if dlab => self.baud = (self.baud & 0xff00) | (v & 0xff),
            MU_IO => self.transmit(v as u8),
            MU_IER if dlab => self.baud = (self.baud & 0xff) | (v & 0xff) << 8,
            MU_IER => self.ier = v & IER_MASK,
            MU_IIR => {
                if v & FCR_CLEAR_RX != 0 {
                    self.rx.clear();
                }
                if v & FCR_CLEAR_TX != 0 {
                    self.tx.clear();
                }
            }
            MU_LCR => self.lcr = v & LCR_MASK,
            MU_MCR => self.mcr = v & 0x02,
            MU_SCRATCH => self.scratch = v & 0xff,
            MU_CNTL => {
                self.cntl = v & 0xff;
                self.drain_tx();
            }
            MU_BAUD => self.baud = v & 0xffff,
            MU_LSR | MU_MSR | MU_STAT => {
                log::debug!("bcm2835 aux: write {v:#x} to read-only offset {reg:#x}")
            }
            _ => log::debug!("bcm2835 aux: write {v:#x} to reserved offset {reg:#x}"),
        }
    }

    fn read32(&mut self, reg: u64) -> u32 {
        match reg {
            AUX_IRQ => self.uart_pending() as u32,
            AUX_ENABLES => self.enables,
            MU_IO..=0x7c => self.read_uart(reg),
            SPI1..=0xfc => {
                let (n, r) = ((reg - SPI1) / SPI_FRAME, (reg - SPI1) % SPI_FRAME);
                if r == SPI_STAT {
                    SPI_STAT_IDLE
                } else {
                    self.spi[n as usize][(r / 4) as usize]
                }
            }
            _ => {
                log::debug!("bcm2835 aux: read of reserved offset {reg:#x}");
                0
            }
        }
    }

    fn write32(&mut self, reg: u64, v: u32) {
        match reg {
            AUX_ENABLES => {
                self.enables = v & (AUX_UART | AUX_SPI_MASK);
                self.drain_tx();
            }
            MU_IO..=0x7c => self.write_uart(reg, v),
            SPI1..=0xfc => {
                let (n, r) = ((reg - SPI1) / SPI_FRAME, (reg - SPI1) % SPI_FRAME);
                log::debug!("bcm2835 aux: SPI{} register {r:#x} = {v:#x} (inert)", n + 1);
                self.spi[n as usize][(r / 4) as usize] = v;
            }
            _ => log::debug!("bcm2835 aux: write {v:#x} to read-only/reserved offset {reg:#x}"),
        }
        self.update_irq();
    }
}

impl Device for Aux {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        let sub = offset & 3;
        if offset >= SIZE || !matches!(size, 1 | 2 | 4) || sub + size as u64 > 4 {
            log::debug!("bcm2835 aux: bad read of size {size} at {offset:#x}");
            return 0;
        }
        let reg = offset & !3;
        if sub != 0 && reg == MU_IO {
            // The upper bytes of the data register are zero; reading them pops nothing.
            return 0;
        }
        let v = self.read32(reg) >> (8 * sub);
        (v & (u32::MAX >> (32 - 8 * size as u32))) as u64
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset >= SIZE || offset & 3 != 0 || !matches!(size, 1 | 2 | 4) {
            log::debug!("bcm2835 aux: bad write of size {size} at {offset:#x}");
            return;
        }
        let mask = u32::MAX >> (32 - 8 * size as u32);
        self.write32(offset, value as u32 & mask);
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

    fn aux() -> (Aux, Out, Arc<Level>) {
        let out = Out::default();
        let lvl = Arc::new(Level::default());
        let a = Aux::new(Box::new(out.clone()), IrqLine::new(lvl.clone(), 29));
        (a, out, lvl)
    }

    /// The 8250 core's register `r` (UART_RX = 0 ...) with reg-shift 2, as a byte access.
    fn rd(a: &mut Aux, r: u64) -> u8 {
        a.read(UART_OFFSET + (r << 2), 1) as u8
    }
    fn wr(a: &mut Aux, r: u64, v: u8) {
        a.write(UART_OFFSET + (r << 2), 1, v as u64)
    }
    const RX: u64 = 0;
    const IER: u64 = 1;
    const IIR: u64 = 2;
    const LCR: u64 = 3;
    const MCR: u64 = 4;
    const LSR: u64 = 5;
    const MSR: u64 = 6;

    /// serial8250_do_startup for this port (UART_CAP_FIFO, no autoconfig), then
    /// set_termios at 115200 8N1: returns whether the core would flag THRE/TXEN bugs.
    fn linux_startup(a: &mut Aux) -> (bool, bool) {
        // clk_prepare_enable of the aux clock gate.
        let en = a.read(AUX_ENABLES, 4);
        a.write(AUX_ENABLES, 4, en | 1);
        // serial8250_clear_fifos.
        wr(a, IIR, 0x01);
        wr(a, IIR, 0x07);
        wr(a, IIR, 0x00);
        for r in [LSR, RX, IIR, MSR] {
            rd(a, r);
        }
        assert_ne!(rd(a, LSR), 0xff, "LSR safety check");
        wr(a, LCR, 0x03);
        // THRE test.
        wr(a, IER, 0x02);
        let iir1 = rd(a, IIR);
        wr(a, IER, 0);
        wr(a, IER, 0x02);
        let iir = rd(a, IIR);
        wr(a, IER, 0);
        let bug_thre = iir1 & 1 == 0 && iir & 1 != 0;
        // serial8250_set_mctrl: RTS | DTR | OUT2.
        wr(a, MCR, 0x0b);
        // TXEN test.
        wr(a, IER, 0x02);
        let lsr = rd(a, LSR);
        let iir = rd(a, IIR);
        wr(a, IER, 0);
        let bug_txen = lsr & 0x40 != 0 && iir & 1 != 0;
        for r in [LSR, RX, IIR, MSR] {
            rd(a, r);
        }
        // set_termios: divisor through DLAB, then LCR 8N1, FCR.
        wr(a, LCR, 0x83);
        wr(a, RX, 0x0e);
        wr(a, IER, 0x01);
        wr(a, LCR, 0x03);
        wr(a, IIR, 0x01);
        // up->ier = RLSI | RDI.
        wr(a, IER, 0x05);
        (bug_thre, bug_txen)
    }

    #[test]
    fn block_is_disabled_at_reset_and_the_clock_gate_enables_the_uart() {
        let (mut a, out, _) = aux();
        assert_eq!(a.read(AUX_ENABLES, 4), 0);
        assert_eq!(a.push_input(b"x"), 0);
        a.write(MU_IO, 4, b'a' as u64);
        assert!(out.0.lock().unwrap().is_empty());
        assert_eq!(a.read(MU_LSR, 4), 0);
        a.write(AUX_ENABLES, 4, 0xff);
        assert_eq!(a.read(AUX_ENABLES, 4), 7, "mini UART, SPI1, SPI2 gates");
        assert_eq!(a.read(MU_LSR, 4), 0x60);
        assert_eq!(a.read(MU_CNTL, 4), 3);
        assert_eq!(a.read(MU_IIR, 4), 0xc1);
    }

    #[test]
    fn linux_8250_startup_sees_a_working_uart() {
        let (mut a, _, lvl) = aux();
        let (bug_thre, bug_txen) = linux_startup(&mut a);
        assert!(!bug_thre, "THRE re-asserts");
        assert!(!bug_txen, "TX interrupt while idle");
        assert_eq!(a.read(MU_BAUD, 4), 0x0e | 0x01 << 8);
        assert_eq!(rd(&mut a, LCR), 0x03);
        assert_eq!(rd(&mut a, IER), 0x05);
        assert_eq!(rd(&mut a, MCR), 0x02, "only RTS exists");
        assert_ne!(rd(&mut a, MSR) & 0x10, 0, "CTS");
        assert!(!lvl.0.load(Ordering::SeqCst));
    }

    #[test]
    fn transmit_with_the_tx_interrupt_reaches_the_backend() {
        let (mut a, out, lvl) = aux();
        linux_startup(&mut a);
        // start_tx: IER |= THRI; the handler sees IIR id 01 and LSR.THRE and writes bytes.
        wr(&mut a, IER, 0x07);
        assert!(lvl.0.load(Ordering::SeqCst));
        assert_eq!(a.read(AUX_IRQ, 4), 1);
        for &b in b"login: " {
            let iir = rd(&mut a, IIR);
            assert_eq!(iir & 0x0f, 0x02);
            assert_ne!(rd(&mut a, LSR) & 0x20, 0);
            wr(&mut a, RX, b);
        }
        // Circular buffer empty: stop_tx clears THRI.
        wr(&mut a, IER, 0x05);
        assert!(!lvl.0.load(Ordering::SeqCst));
        assert_eq!(rd(&mut a, IIR), 0xc1);
        assert_eq!(&*out.0.lock().unwrap(), b"login: ");
    }

    #[test]
    fn receive_interrupt_rises_and_the_fifo_drains_in_order() {
        let (mut a, _, lvl) = aux();
        linux_startup(&mut a);
        let data: Vec<u8> = (1..=12).collect();
        assert_eq!(a.push_input(&data), FIFO_DEPTH);
        assert!(!a.can_accept());
        assert_eq!(a.push_input(&data[8..]), 0);
        assert!(lvl.0.load(Ordering::SeqCst));
        assert_eq!(rd(&mut a, IIR), 0xc4);
        assert_eq!(a.read(MU_STAT, 4) >> 16 & 0xf, 8);
        // serial8250_handle_irq: read while LSR.DR.
        let mut got = vec![];
        while rd(&mut a, LSR) & 1 != 0 {
            got.push(rd(&mut a, RX));
        }
        assert_eq!(got, &data[..8]);
        assert!(!lvl.0.load(Ordering::SeqCst));
        assert_eq!(rd(&mut a, IIR), 0xc1);
        assert_eq!(a.push_input(&data[8..]), 4);
        // Receive FIFO clear through FCR.
        wr(&mut a, IIR, 0x03);
        assert_eq!(rd(&mut a, LSR) & 1, 0);
    }

    #[test]
    fn disabled_transmitter_holds_eight_bytes_until_enabled() {
        let (mut a, out, _) = aux();
        a.firmware_enable_uart();
        a.write(MU_CNTL, 4, 0);
        assert_eq!(a.push_input(b"x"), 0, "receiver off");
        for b in 0..10u8 {
            a.write(MU_IO, 4, b as u64);
        }
        assert_eq!(a.read(MU_LSR, 4) & 0x60, 0, "FIFO full");
        assert_eq!(a.read(MU_STAT, 4) >> 24 & 0xf, 8);
        assert!(out.0.lock().unwrap().is_empty());
        a.write(MU_CNTL, 4, 3);
        assert_eq!(&*out.0.lock().unwrap(), &[0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(a.read(MU_LSR, 4), 0x60);
    }

    #[test]
    fn earlycon_after_firmware_setup_writes_out() {
        let (mut a, out, _) = aux();
        a.firmware_enable_uart();
        assert_eq!(a.read(MU_BAUD, 4), 270);
        // early_serial8250 init_port: LCR, IER, FCR, MCR; then putc polling LSR.
        wr(&mut a, LCR, 3);
        wr(&mut a, IER, 0);
        wr(&mut a, IIR, 0);
        wr(&mut a, MCR, 3);
        for &b in b"ok\n" {
            assert_eq!(rd(&mut a, LSR) & 0x60, 0x60);
            wr(&mut a, RX, b);
        }
        assert_eq!(&*out.0.lock().unwrap(), b"ok\n");
    }

    #[test]
    fn spi_registers_are_inert_and_bad_accesses_ignored() {
        let (mut a, _, _) = aux();
        a.write(0x80, 4, 0x1234);
        a.write(0xc4, 4, 0x55);
        assert_eq!(a.read(0x80, 4), 0x1234);
        assert_eq!(a.read(0xc4, 4), 0x55);
        assert_eq!(a.read(0x88, 4), 0x280);
        assert_eq!(a.read(0xc8, 4), 0x280);
        a.write(0x100, 4, 1);
        a.write(0x41, 1, 1);
        assert_eq!(a.read(0x100, 4), 0);
        assert_eq!(a.read(0x04, 8), 0);
        assert_eq!(a.read(0x20, 4), 0);
        a.firmware_enable_uart();
        a.push_input(b"q");
        assert_eq!(a.read(MU_IO + 1, 1), 0, "upper byte pops nothing");
        assert_eq!(a.read(MU_IO, 4), b'q' as u64);
        assert_eq!(a.read(MU_STAT + 2, 1), 0);
    }
}
