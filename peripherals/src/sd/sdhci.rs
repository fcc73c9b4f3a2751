//! The Arasan SDHCI controller of the BCM2835 ("brcm,bcm2835-sdhci", the "EMMC" block, bus
//! 0x7e300000, 0x100 bytes), an SD Host Controller Simplified Spec 3.00 register set as
//! Linux's sdhci.c with the sdhci-iproc bcm2835 variant drives it.
//!
//! That variant only makes 32-bit accesses (it emulates 8/16-bit ones, writing TRANSFER_MODE
//! together with COMMAND); this model accepts any access of 1, 2 or 4 bytes with the standard
//! byte-lane semantics, so a write that covers COMMAND's upper byte issues the command. Data
//! moves by PIO only through the buffer data port: the capabilities (those the Linux variant
//! substitutes for the register anyway: 1024-byte blocks, 3.3 V, high speed, driver types A and
//! C) report no SDMA or ADMA, and a DMA-enabled transfer is done by PIO too. Auto CMD12 and
//! auto CMD23 (block count from ARGUMENT2) are performed, which Linux uses when it has no DMA.
//! Commands complete synchronously; R1b commands raise TRANSFER_COMPLETE as their busy end.
//! Present state reports card detect and the write-protect switch (low for a read-only card);
//! with no card every command times out. On the Pi 3B this controller is wired to the Wi-Fi
//! chip (SDIO), which is not modelled: with `None` it probes cleanly and finds nothing.

use super::card::SdCard;
use armboard_bus::{Device, IrqLine, Ram};
use std::sync::Arc;

pub const SIZE: u64 = 0x100;

const ARG2: usize = 0x00;
const BLKSZ: usize = 0x04;
const ARG: usize = 0x08;
const XFER: usize = 0x0c;
const RESP: usize = 0x10;
const BUFFER: usize = 0x20;
const PRESENT: usize = 0x24;
const HOSTCTL: usize = 0x28;
const CLOCK: usize = 0x2c;
const INT_STATUS: usize = 0x30;
const INT_ENABLE: usize = 0x34;
const INT_SIGNAL: usize = 0x38;
const ACMD_ERR: usize = 0x3c;
const CAPS: usize = 0x40;
const CAPS1: usize = 0x44;
const MAX_CURRENT: usize = 0x48;
const FORCE: usize = 0x50;
const ADMA_ERR: usize = 0x54;
const ADMA_ADDR: usize = 0x58;
const SLOT_INT: usize = 0xfc;

pub const INT_CMD_COMPLETE: u32 = 1 << 0;
pub const INT_XFER_COMPLETE: u32 = 1 << 1;
pub const INT_WRITE_READY: u32 = 1 << 4;
pub const INT_READ_READY: u32 = 1 << 5;
pub const INT_CARD_INSERT: u32 = 1 << 6;
pub const INT_CARD_REMOVE: u32 = 1 << 7;
pub const INT_ERROR: u32 = 1 << 15;
pub const INT_CMD_TIMEOUT: u32 = 1 << 16;
pub const INT_DATA_TIMEOUT: u32 = 1 << 20;
pub const INT_AUTO_CMD_ERR: u32 = 1 << 24;

pub const PRESENT_CMD_INHIBIT: u32 = 1 << 0;
pub const PRESENT_DAT_INHIBIT: u32 = 1 << 1;
pub const PRESENT_DAT_ACTIVE: u32 = 1 << 2;
pub const PRESENT_WRITE_ACTIVE: u32 = 1 << 8;
pub const PRESENT_READ_ACTIVE: u32 = 1 << 9;
pub const PRESENT_WRITE_ENABLE: u32 = 1 << 10;
pub const PRESENT_READ_ENABLE: u32 = 1 << 11;
pub const PRESENT_CARD_INSERTED: u32 = 1 << 16;
pub const PRESENT_CARD_STABLE: u32 = 1 << 17;
pub const PRESENT_CD_LEVEL: u32 = 1 << 18;
pub const PRESENT_WP_LEVEL: u32 = 1 << 19;

const TRNS_DMA: u32 = 1 << 0;
const TRNS_BLK_CNT_EN: u32 = 1 << 1;
const TRNS_AUTO_CMD12: u32 = 1 << 2;
const TRNS_AUTO_CMD23: u32 = 2 << 2;
const TRNS_AUTO_MASK: u32 = 3 << 2;
const TRNS_READ: u32 = 1 << 4;
const TRNS_MULTI: u32 = 1 << 5;

/// Capabilities: timeout clock 50 MHz, base clock 50 MHz, 1024-byte blocks, high speed,
/// 3.3 V; no SDMA/ADMA.
const CAPS_VALUE: u32 = 50 | (1 << 7) | (50 << 8) | (1 << 16) | (1 << 21) | (1 << 24);
/// Driver types A and C.
const CAPS1_VALUE: u32 = (1 << 4) | (1 << 5);
/// Vendor 0x99, specification 3.00.
const VERSION: u32 = 0x9902;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dir {
    None,
    Read,
    Write,
}

/// The SDHCI controller with an optional card.
pub struct Sdhci {
    card: Option<SdCard>,
    _ram: Arc<Ram>,
    irq: IrqLine,
    level: bool,
    regs: [u32; 64],
    /// Normal (15:0) and error (31:16) interrupt status.
    status: u32,
    dir: Dir,
    /// Blocks still to move after the one in the buffer (None: until stopped).
    blocks_left: Option<u32>,
    buf: Vec<u8>,
    pos: usize,
    auto_cmd12: bool,
}

impl Sdhci {
    pub fn new(card: Option<SdCard>, ram: Arc<Ram>, irq: IrqLine) -> Sdhci {
        let mut s = Sdhci {
            card,
            _ram: ram,
            irq,
            level: false,
            regs: [0; 64],
            status: 0,
            dir: Dir::None,
            blocks_left: None,
            buf: Vec::new(),
            pos: 0,
            auto_cmd12: false,
        };
        s.reset_all();
        s
    }

    pub fn card(&self) -> Option<&SdCard> {
        self.card.as_ref()
    }

    /// Insert or remove a card (card insertion / removal interrupts).
    pub fn set_card(&mut self, card: Option<SdCard>) -> Option<SdCard> {
        self.end_data();
        let ins = card.is_some();
        let old = std::mem::replace(&mut self.card, card);
        self.raise(if ins {
            INT_CARD_INSERT
        } else {
            INT_CARD_REMOVE
        });
        self.update_irq();
        old
    }

    fn reg(&self, off: usize) -> u32 {
        self.regs[off / 4]
    }

    fn set_reg(&mut self, off: usize, v: u32) {
        self.regs[off / 4] = v;
    }

    fn reset_all(&mut self) {
        self.regs = [0; 64];
        self.status = 0;
        self.end_data();
    }

    fn end_data(&mut self) {
        self.dir = Dir::None;
        self.blocks_left = None;
        self.buf.clear();
        self.pos = 0;
        self.auto_cmd12 = false;
    }

    fn powered(&self) -> bool {
        self.reg(HOSTCTL) & (1 << 8) != 0
    }

    /// Set status bits the status enable register lets through.
    fn raise(&mut self, bits: u32) {
        self.status |= bits & self.reg(INT_ENABLE);
    }

    fn status_value(&self) -> u32 {
        let mut s = self.status;
        if s & 0xffff_0000 != 0 {
            s |= INT_ERROR;
        }
        s
    }

    fn update_irq(&mut self) {
        let level = self.status_value() & self.reg(INT_SIGNAL) != 0;
        if level != self.level {
            self.level = level;
            self.irq.set(level);
        }
    }

    fn present(&self) -> u32 {
        let mut p = PRESENT_CARD_STABLE | (0xf << 20) | (1 << 24);
        if let Some(c) = &self.card {
            p |= PRESENT_CARD_INSERTED | PRESENT_CD_LEVEL;
            if !c.readonly() {
                p |= PRESENT_WP_LEVEL;
            }
        }
        match self.dir {
            Dir::Read => {
                p |= PRESENT_DAT_INHIBIT | PRESENT_DAT_ACTIVE | PRESENT_READ_ACTIVE;
                if self.pos < self.buf.len() {
                    p |= PRESENT_READ_ENABLE;
                }
            }
            Dir::Write => {
                p |= PRESENT_DAT_INHIBIT | PRESENT_DAT_ACTIVE | PRESENT_WRITE_ACTIVE;
                if self.pos < self.buf.len() {
                    p |= PRESENT_WRITE_ENABLE;
                }
            }
            Dir::None => {}
        }
        p
    }

    fn card_command(&mut self, index: u8, arg: u32) -> Option<super::card::Response> {
        if !self.powered() {
            return None;
        }
        self.card.as_mut()?.command(index, arg)
    }

    fn issue_command(&mut self) {
        let word = self.reg(XFER);
        let mode = word & 0xffff;
        let cmd = word >> 16;
        let index = ((cmd >> 8) & 0x3f) as u8;
        let rtype = cmd & 3;
        let data = cmd & (1 << 5) != 0;
        let arg = self.reg(ARG);
        if data {
            self.end_data();
            if mode & TRNS_AUTO_MASK == TRNS_AUTO_CMD23 && mode & TRNS_MULTI != 0 {
                let count = self.reg(ARG2);
                match self.card_command(23, count) {
                    Some(_) => {}
                    None => {
                        self.raise(INT_AUTO_CMD_ERR);
                        self.set_reg(ACMD_ERR, (self.reg(ACMD_ERR) & !0xffff) | 0x2);
                    }
                }
            }
        }
        let resp = self.card_command(index, arg);
        let r = match (rtype, resp) {
            (0, _) => {
                self.raise(INT_CMD_COMPLETE);
                None
            }
            (_, None) => {
                self.raise(INT_CMD_TIMEOUT);
                self.update_irq();
                return;
            }
            (_, Some(r)) => Some(r),
        };
        if let Some(r) = r {
            let mut words = [0u32; 4];
            if let super::card::Response::R2(b) = r {
                // Bits 127:8 of the register (no CRC) in RESPONSE[119:0].
                let v = u128::from_be_bytes(b) >> 8;
                for (i, w) in words.iter_mut().enumerate() {
                    *w = (v >> (32 * i)) as u32;
                }
            } else {
                words[0] = r.short();
            }
            for (i, w) in words.iter().enumerate() {
                self.set_reg(RESP + 4 * i, *w);
            }
            self.raise(INT_CMD_COMPLETE);
            if rtype == 3 && !data {
                // Busy signalled and over at once.
                self.raise(INT_XFER_COMPLETE);
            }
        }
        if index == 12 && !data {
            self.end_data();
        }
        if data {
            self.start_data(mode);
        }
        self.update_irq();
    }

    fn block_size(&self) -> usize {
        (self.reg(BLKSZ) & 0xfff) as usize
    }

    fn start_data(&mut self, mode: u32) {
        let blksz = self.block_size();
        let count = self.reg(BLKSZ) >> 16;
        if mode & TRNS_DMA != 0 {
            log::debug!("sdhci: DMA requested but not offered; doing PIO");
        }
        let total = if mode & TRNS_MULTI == 0 {
            Some(1)
        } else if mode & TRNS_BLK_CNT_EN != 0 {
            Some(count)
        } else {
            None
        };
        if blksz == 0 || total == Some(0) {
            self.raise(INT_XFER_COMPLETE);
            return;
        }
        self.auto_cmd12 = mode & TRNS_AUTO_MASK == TRNS_AUTO_CMD12 && mode & TRNS_MULTI != 0;
        self.blocks_left = total.map(|t| t - 1);
        self.buf = vec![0; blksz];
        self.pos = 0;
        if mode & TRNS_READ != 0 {
            self.dir = Dir::Read;
            self.fill_read_block();
        } else {
            self.dir = Dir::Write;
            self.raise(INT_WRITE_READY);
        }
    }

    fn fill_read_block(&mut self) {
        let got = match self.card.as_mut() {
            Some(c) if c.data_ready() => c.read_data(&mut self.buf),
            _ => 0,
        };
        if got < self.buf.len() {
            self.raise(INT_DATA_TIMEOUT);
            self.end_data();
            return;
        }
        self.pos = 0;
        self.raise(INT_READ_READY);
    }

    /// The block in the buffer is done: next block or transfer complete.
    fn block_done(&mut self) {
        match self.blocks_left {
            Some(0) => self.finish_data(),
            _ => {
                if let Some(n) = self.blocks_left.as_mut() {
                    *n -= 1;
                }
                self.pos = 0;
                if self.dir == Dir::Read {
                    self.fill_read_block();
                } else {
                    self.raise(INT_WRITE_READY);
                }
            }
        }
    }

    fn finish_data(&mut self) {
        if self.auto_cmd12 {
            match self.card_command(12, 0) {
                Some(r) => self.set_reg(RESP + 12, r.short()),
                None => {
                    self.raise(INT_AUTO_CMD_ERR);
                    self.set_reg(ACMD_ERR, (self.reg(ACMD_ERR) & !0xffff) | 0x2);
                }
            }
        }
        self.end_data();
        self.raise(INT_XFER_COMPLETE);
    }

    fn read_buffer(&mut self) -> u32 {
        if self.dir != Dir::Read || self.pos >= self.buf.len() {
            return 0;
        }
        let mut w = [0u8; 4];
        let n = (self.buf.len() - self.pos).min(4);
        w[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.buf.len() {
            self.block_done();
        }
        u32::from_le_bytes(w)
    }

    fn write_buffer(&mut self, v: u32) {
        if self.dir != Dir::Write || self.pos >= self.buf.len() {
            return;
        }
        let n = (self.buf.len() - self.pos).min(4);
        self.buf[self.pos..self.pos + n].copy_from_slice(&v.to_le_bytes()[..n]);
        self.pos += n;
        if self.pos == self.buf.len() {
            if let Some(c) = self.card.as_mut() {
                c.write_data(&self.buf);
            }
            self.block_done();
        }
    }

    fn read32(&mut self, off: usize) -> u32 {
        match off {
            BUFFER => {
                let v = self.read_buffer();
                self.update_irq();
                v
            }
            PRESENT => self.present(),
            CLOCK => {
                let mut v = self.reg(CLOCK) & !(0x07 << 24);
                if v & 1 != 0 {
                    v |= 2; // internal clock stable
                }
                v
            }
            INT_STATUS => self.status_value(),
            CAPS => CAPS_VALUE,
            CAPS1 => CAPS1_VALUE,
            MAX_CURRENT | FORCE | ADMA_ERR | ADMA_ADDR => 0,
            SLOT_INT => (VERSION << 16) | self.level as u32,
            _ if off < SIZE as usize => self.reg(off),
            _ => 0,
        }
    }

    /// A write of the bytes selected by `mask` in the 32-bit register at `off`.
    fn write32(&mut self, off: usize, value: u32, mask: u32) {
        let merged = (self.reg(off) & !mask) | (value & mask);
        match off {
            BUFFER => {
                if mask == u32::MAX {
                    self.write_buffer(value);
                } else {
                    log::debug!("sdhci: partial buffer port write ignored");
                }
            }
            XFER => {
                self.set_reg(XFER, merged);
                if mask & 0xff00_0000 != 0 {
                    self.issue_command();
                }
            }
            BLKSZ => self.set_reg(BLKSZ, merged & 0xffff_7fff),
            HOSTCTL => {
                let was = self.powered();
                self.set_reg(HOSTCTL, merged & 0x0f0f_ffff);
                if was && !self.powered() {
                    if let Some(c) = self.card.as_mut() {
                        c.power_reset();
                    }
                    self.end_data();
                }
            }
            CLOCK => {
                let reset = merged >> 24;
                self.set_reg(CLOCK, merged & 0x000f_ffe5);
                if reset & 1 != 0 {
                    self.reset_all();
                } else {
                    if reset & 2 != 0 {
                        self.status &= !0x000f_0001;
                    }
                    if reset & 4 != 0 {
                        self.end_data();
                        self.status &= !0x0070_003e;
                    }
                }
            }
            INT_STATUS => {
                self.status &= !(value & mask);
            }
            INT_ENABLE => {
                self.set_reg(INT_ENABLE, merged & !INT_ERROR);
                self.status &= self.reg(INT_ENABLE);
            }
            INT_SIGNAL => self.set_reg(INT_SIGNAL, merged & !INT_ERROR),
            ACMD_ERR => self.set_reg(
                ACMD_ERR,
                (self.reg(ACMD_ERR) & 0xffff) | (merged & 0xffff_0000),
            ),
            FORCE => self.status |= value & mask & 0xffff_0000 & self.reg(INT_ENABLE),
            RESP | 0x14 | 0x18 | 0x1c | PRESENT | CAPS | CAPS1 | MAX_CURRENT | SLOT_INT => {}
            _ => self.set_reg(off, merged),
        }
        self.update_irq();
    }
}

impl Device for Sdhci {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if offset >= SIZE || !matches!(size, 1 | 2 | 4) || !offset.is_multiple_of(size as u64) {
            log::debug!("sdhci: bad read at {offset:#x} size {size}");
            return 0;
        }
        let v = self.read32((offset & !3) as usize);
        let shift = (offset & 3) * 8;
        let mask = if size == 4 {
            u32::MAX
        } else {
            (1u32 << (size as u32 * 8)) - 1
        };
        ((v >> shift) & mask) as u64
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset >= SIZE || !matches!(size, 1 | 2 | 4) || !offset.is_multiple_of(size as u64) {
            log::debug!("sdhci: bad write at {offset:#x} size {size}");
            return;
        }
        let shift = (offset & 3) * 8;
        let lanes = if size == 4 {
            u32::MAX
        } else {
            (1u32 << (size as u32 * 8)) - 1
        };
        self.write32(
            (offset & !3) as usize,
            ((value as u32) & lanes) << shift,
            lanes << shift,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sd::card::tests::image;
    use armboard_bus::IrqSink;
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Default)]
    struct Line(AtomicBool);
    impl IrqSink for Line {
        fn set_level(&self, _line: u32, level: bool) {
            self.0.store(level, Ordering::SeqCst);
        }
    }

    const RSP_NONE: u32 = 0;
    const RSP_136: u32 = 1 | (1 << 3);
    const RSP_48: u32 = 2 | (1 << 3) | (1 << 4);
    const RSP_48B: u32 = 3 | (1 << 3) | (1 << 4);
    const DATA: u32 = 1 << 5;

    /// Drives the controller as sdhci.c through the iproc 32-bit accessors.
    struct Driver {
        h: Sdhci,
        line: Arc<Line>,
    }

    impl Driver {
        fn new(card: Option<SdCard>) -> Driver {
            let line = Arc::new(Line::default());
            let ram = Arc::new(Ram::new(0, 0x10000).unwrap());
            let mut d = Driver {
                h: Sdhci::new(card, ram, IrqLine::new(line.clone(), 0)),
                line,
            };
            // sdhci_do_reset(SDHCI_RESET_ALL): RMW of the clock word, wait for the bit.
            let c = d.rd(CLOCK);
            d.wr(CLOCK, c | (1 << 24));
            assert_eq!(d.rd(CLOCK) >> 24, 0);
            // sdhci_init: enable interrupts.
            let ints = 0x027f_0000
                | INT_CMD_COMPLETE
                | INT_XFER_COMPLETE
                | INT_WRITE_READY
                | INT_READ_READY
                | INT_CARD_INSERT
                | INT_CARD_REMOVE;
            d.wr(INT_ENABLE, ints);
            d.wr(INT_SIGNAL, ints);
            // Power 3.3 V on, then clock.
            let h = d.rd(HOSTCTL) & !0xff00;
            d.wr(HOSTCTL, h | (0x0e << 8));
            d.wr(HOSTCTL, h | (0x0f << 8));
            d.wr(CLOCK, 0x0e_0000 | (0x80 << 8) | 1);
            assert_ne!(d.rd(CLOCK) & 2, 0, "internal clock stable");
            let c = d.rd(CLOCK);
            d.wr(CLOCK, c | 4);
            d
        }

        fn rd(&mut self, off: usize) -> u32 {
            self.h.read(off as u64, 4) as u32
        }

        fn wr(&mut self, off: usize, v: u32) {
            self.h.write(off as u64, 4, v as u64)
        }

        fn ack(&mut self) -> u32 {
            let s = self.rd(INT_STATUS);
            self.wr(INT_STATUS, s);
            s
        }

        /// sdhci_send_command through the iproc shadow: Ok(resp) or Err(int status).
        fn cmd(&mut self, op: u32, arg: u32, flags: u32, mode: u32) -> Result<[u32; 4], u32> {
            let mask = PRESENT_CMD_INHIBIT
                | if flags & DATA != 0 {
                    PRESENT_DAT_INHIBIT
                } else {
                    0
                };
            assert_eq!(self.rd(PRESENT) & mask, 0);
            self.wr(ARG, arg);
            self.wr(XFER, ((op << 8 | flags) << 16) | mode);
            assert!(self.line.0.load(Ordering::SeqCst), "interrupt");
            let s = self.rd(INT_STATUS);
            if s & INT_ERROR != 0 {
                self.ack();
                return Err(s);
            }
            assert_ne!(s & INT_CMD_COMPLETE, 0);
            self.wr(INT_STATUS, INT_CMD_COMPLETE);
            let mut r = [0u32; 4];
            if flags & 3 == 1 {
                let w: Vec<u32> = (0..4).map(|i| self.rd(RESP + 4 * i)).collect();
                for (i, out) in r.iter_mut().enumerate() {
                    *out = w[3 - i] << 8 | if i < 3 { w[2 - i] >> 24 } else { 0 };
                }
            } else {
                r[0] = self.rd(RESP);
            }
            if flags & 3 == 3 {
                assert_ne!(self.rd(INT_STATUS) & INT_XFER_COMPLETE, 0);
                self.wr(INT_STATUS, INT_XFER_COMPLETE);
            }
            Ok(r)
        }

        fn init_card(&mut self) -> u32 {
            self.cmd(0, 0, RSP_NONE, 0).unwrap();
            self.cmd(8, 0x1aa, RSP_48, 0).unwrap();
            loop {
                self.cmd(55, 0, RSP_48, 0).unwrap();
                let o = self.cmd(41, 0x4030_0000, 2, 0).unwrap()[0];
                if o & (1 << 31) != 0 {
                    break;
                }
            }
            let cid = self.cmd(2, 0, RSP_136, 0).unwrap();
            assert_eq!(cid[0] >> 24, 0x5a);
            let rca = self.cmd(3, 0, RSP_48, 0).unwrap()[0] >> 16;
            let csd = self.cmd(9, rca << 16, RSP_136, 0).unwrap();
            assert_eq!(csd[0] >> 30, 1);
            self.cmd(7, rca << 16, RSP_48B, 0).unwrap();
            rca
        }

        /// sdhci_transfer_pio over a whole read.
        fn pio_read(&mut self, blocks: usize, blksz: usize) -> Vec<u8> {
            let mut out = Vec::new();
            let mut left = blocks;
            while left > 0 {
                let s = self.ack();
                assert_ne!(s & INT_READ_READY, 0, "status {s:#x}");
                while self.rd(PRESENT) & PRESENT_READ_ENABLE != 0 {
                    for _ in 0..blksz / 4 {
                        out.extend_from_slice(&self.rd(BUFFER).to_le_bytes());
                    }
                    left -= 1;
                    if left == 0 {
                        break;
                    }
                }
            }
            assert_ne!(self.ack() & INT_XFER_COMPLETE, 0);
            assert_eq!(self.rd(PRESENT) & PRESENT_DAT_INHIBIT, 0);
            out
        }
    }

    #[test]
    fn no_card_probes_cleanly_and_times_out() {
        let mut d = Driver::new(None);
        let p = d.rd(PRESENT);
        assert_eq!(p & PRESENT_CARD_INSERTED, 0);
        assert_ne!(p & PRESENT_CARD_STABLE, 0);
        assert_eq!(d.rd(SLOT_INT) >> 16, VERSION);
        // SDIO probe: CMD52, CMD0, CMD8, CMD5 all time out (CMD0 has no response).
        let e = d.cmd(52, 0x8000_0c08, RSP_48, 0).unwrap_err();
        assert_ne!(e & INT_CMD_TIMEOUT, 0);
        d.cmd(0, 0, RSP_NONE, 0).unwrap();
        assert!(d.cmd(8, 0x1aa, RSP_48, 0).is_err());
        assert!(d.cmd(5, 0, 2, 0).is_err());
        assert!(!d.line.0.load(Ordering::SeqCst));
    }

    #[test]
    fn pio_read_of_a_block_and_multi_block_with_auto_cmd23() {
        let p = image("sdhci-read", 4 * 1024 * 1024);
        let mut d = Driver::new(Some(SdCard::open(&p, false).unwrap()));
        assert_ne!(d.rd(PRESENT) & PRESENT_WP_LEVEL, 0);
        d.init_card();
        d.wr(BLKSZ, (1 << 16) | 512);
        d.cmd(17, 3, RSP_48 | DATA, TRNS_READ | TRNS_BLK_CNT_EN)
            .unwrap();
        let b = d.pio_read(1, 512);
        assert_eq!(&b[..4], &[3, 4, 5, 6]);
        // Auto CMD23 with the count in ARGUMENT2.
        d.wr(ARG2, 3);
        d.wr(BLKSZ, (3 << 16) | 512);
        let mode = TRNS_READ | TRNS_BLK_CNT_EN | TRNS_MULTI | TRNS_AUTO_CMD23;
        d.cmd(18, 10, RSP_48 | DATA, mode).unwrap();
        let b = d.pio_read(3, 512);
        assert_eq!(b.len(), 1536);
        assert_eq!(b[1024], 12);
        assert_eq!(d.h.card().unwrap().state(), crate::sd::card::State::Tran);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn pio_write_with_auto_cmd12_reaches_the_file() {
        let p = image("sdhci-write", 4 * 1024 * 1024);
        let mut d = Driver::new(Some(SdCard::open(&p, false).unwrap()));
        d.init_card();
        d.wr(BLKSZ, (2 << 16) | 512);
        let mode = TRNS_BLK_CNT_EN | TRNS_MULTI | TRNS_AUTO_CMD12;
        d.cmd(25, 40, RSP_48 | DATA, mode).unwrap();
        for blk in 0..2u32 {
            assert_ne!(d.ack() & INT_WRITE_READY, 0);
            assert_ne!(d.rd(PRESENT) & PRESENT_WRITE_ENABLE, 0);
            for i in 0..128u32 {
                d.wr(BUFFER, blk << 16 | i);
            }
        }
        assert_ne!(d.ack() & INT_XFER_COMPLETE, 0);
        assert_eq!(d.h.card().unwrap().state(), crate::sd::card::State::Tran);
        let f = std::fs::File::open(&p).unwrap();
        let mut b = [0u8; 4];
        f.read_exact_at(&mut b, 41 * 512 + 4 * 5).unwrap();
        assert_eq!(u32::from_le_bytes(b), 1 << 16 | 5);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn read_only_card_shows_write_protect() {
        let p = image("sdhci-ro", 2 * 1024 * 1024);
        let mut d = Driver::new(Some(SdCard::open(&p, true).unwrap()));
        assert_eq!(d.rd(PRESENT) & PRESENT_WP_LEVEL, 0);
        assert_ne!(d.rd(PRESENT) & PRESENT_CARD_INSERTED, 0);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn any_register_value_is_survived() {
        let p = image("sdhci-fuzz", 2 * 1024 * 1024);
        let mut d = Driver::new(Some(SdCard::open(&p, true).unwrap()));
        let mut x = 0x2545_f491u32;
        for _ in 0..20000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let off = (x as u64 >> 8) % 0x110;
            let size = [1u8, 2, 4, 8][(x & 3) as usize];
            if x & 0x10 != 0 {
                d.h.write(off, size, x as u64);
            } else {
                d.h.read(off, size);
            }
        }
        std::fs::remove_file(p).unwrap();
    }
}
