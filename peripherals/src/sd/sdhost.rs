//! The BCM2835 SDHOST controller ("brcm,bcm2835-sdhost", bus 0x7e202000, 0x100 bytes), as
//! Linux's drivers/mmc/host/bcm2835.c drives it.
//!
//! Commands complete synchronously: a write of SDCMD with NEW_FLAG runs the command on the
//! card and clears NEW_FLAG before the write returns (FAIL_FLAG + SDHSTS CMD_TIME_OUT when the
//! card does not answer). A BUSYWAIT (R1b) command sets SDHSTS BUSY_IRPT at once (the card is
//! never busy for long). A data command moves SDHBCT x SDHBLC bytes through SDDATA, one 32-bit
//! little-endian word per access, whether the CPU (PIO) or the BCM2835 DMA engine (DREQ 13,
//! always ready) does the accesses: reads pull straight from the card, writes push straight
//! into it, so the FIFO never over- or underflows. SDEDM reports the FIFO level the driver's
//! PIO loop polls (the words left, up to 16, for reads; empty for writes) and the FSM state
//! (READDATA / WRITEDATA while data moves, DATAMODE once it is done, IDENTMODE before the card
//! has an address). SDHSTS DATA_FLAG is a level (data to read / room to write); BLOCK_IRPT is
//! set at the end of each written block when SDHCFG enables it (the driver's PIO write path).
//! The interrupt line is the OR of the enabled sources (SDHCFG BUSY, BLOCK, DATA, SDIO).

use super::card::SdCard;
use armboard_bus::{Device, IrqLine};

pub const SIZE: u64 = 0x100;
/// DMA request line of the controller.
pub const DREQ: u32 = 13;

const SDCMD: u64 = 0x00;
const SDARG: u64 = 0x04;
const SDTOUT: u64 = 0x08;
const SDCDIV: u64 = 0x0c;
const SDRSP0: u64 = 0x10;
const SDRSP3: u64 = 0x1c;
const SDHSTS: u64 = 0x20;
const SDVDD: u64 = 0x30;
const SDEDM: u64 = 0x34;
const SDHCFG: u64 = 0x38;
const SDHBCT: u64 = 0x3c;
const SDDATA: u64 = 0x40;
const SDHBLC: u64 = 0x50;

pub const CMD_NEW: u32 = 0x8000;
pub const CMD_FAIL: u32 = 0x4000;
pub const CMD_BUSYWAIT: u32 = 0x800;
pub const CMD_NO_RESPONSE: u32 = 0x400;
pub const CMD_LONG_RESPONSE: u32 = 0x200;
pub const CMD_WRITE: u32 = 0x80;
pub const CMD_READ: u32 = 0x40;
pub const CMD_INDEX: u32 = 0x3f;

pub const HSTS_BUSY_IRPT: u32 = 0x400;
pub const HSTS_BLOCK_IRPT: u32 = 0x200;
pub const HSTS_SDIO_IRPT: u32 = 0x100;
pub const HSTS_REW_TIME_OUT: u32 = 0x80;
pub const HSTS_CMD_TIME_OUT: u32 = 0x40;
pub const HSTS_CRC16_ERROR: u32 = 0x20;
pub const HSTS_CRC7_ERROR: u32 = 0x10;
pub const HSTS_FIFO_ERROR: u32 = 0x08;
pub const HSTS_DATA_FLAG: u32 = 0x01;
const HSTS_W1C: u32 = 0x7f8;

pub const HCFG_BUSY_IRPT_EN: u32 = 1 << 10;
pub const HCFG_BLOCK_IRPT_EN: u32 = 1 << 8;
pub const HCFG_SDIO_IRPT_EN: u32 = 1 << 5;
pub const HCFG_DATA_IRPT_EN: u32 = 1 << 4;

pub const EDM_FORCE_DATA_MODE: u32 = 1 << 19;
pub const EDM_FSM_MASK: u32 = 0xf;
pub const FSM_IDENTMODE: u32 = 0x0;
pub const FSM_DATAMODE: u32 = 0x1;
pub const FSM_READDATA: u32 = 0x2;
pub const FSM_WRITEDATA: u32 = 0x3;
const FIFO_WORDS: u32 = 16;
/// SDEDM bits kept as written (thresholds and the debug controls); FSM, FIFO level and the
/// self-clearing FORCE_DATA_MODE / CLOCK_PULSE are not stored.
const EDM_STORED: u32 = !(0x1ff | EDM_FORCE_DATA_MODE | (1 << 20));

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dir {
    None,
    Read,
    Write,
}

/// The SDHOST controller with an optional card in its slot.
pub struct Sdhost {
    card: Option<SdCard>,
    irq: IrqLine,
    level: bool,
    cmd: u32,
    arg: u32,
    tout: u32,
    cdiv: u32,
    rsp: [u32; 4],
    hsts: u32,
    vdd: u32,
    edm: u32,
    hcfg: u32,
    hbct: u32,
    hblc: u32,
    dir: Dir,
    /// Bytes of the data phase still to move.
    remaining: u64,
    /// Bytes moved in the current block (writes: for BLOCK_IRPT).
    block_pos: u32,
}

impl Sdhost {
    pub fn new(card: Option<SdCard>, irq: IrqLine) -> Sdhost {
        Sdhost {
            card,
            irq,
            level: false,
            cmd: 0,
            arg: 0,
            tout: 0xf0_0000,
            cdiv: 0x1fb,
            rsp: [0; 4],
            hsts: 0,
            vdd: 1,
            edm: 0xc600,
            hcfg: 0,
            hbct: 0,
            hblc: 0,
            dir: Dir::None,
            remaining: 0,
            block_pos: 0,
        }
    }

    pub fn card(&self) -> Option<&SdCard> {
        self.card.as_ref()
    }

    /// Put a card in the slot (or take it out), returning the previous one.
    pub fn set_card(&mut self, card: Option<SdCard>) -> Option<SdCard> {
        self.dir = Dir::None;
        self.remaining = 0;
        let old = std::mem::replace(&mut self.card, card);
        self.update_irq();
        old
    }

    fn fifo_level(&self) -> u32 {
        match self.dir {
            Dir::Read if self.card.as_ref().is_some_and(|c| c.data_ready()) => {
                (self.remaining.div_ceil(4)).min(FIFO_WORDS as u64) as u32
            }
            _ => 0,
        }
    }

    fn data_flag(&self) -> bool {
        match self.dir {
            Dir::Read => self.fifo_level() > 0,
            Dir::Write => self.remaining > 0,
            Dir::None => false,
        }
    }

    fn fsm(&self) -> u32 {
        match self.dir {
            Dir::Read => FSM_READDATA,
            Dir::Write => FSM_WRITEDATA,
            Dir::None => {
                use super::card::State::*;
                match self.card.as_ref().map(|c| c.state()) {
                    Some(Idle | Ready | Ident | Ina) | None => FSM_IDENTMODE,
                    Some(_) => FSM_DATAMODE,
                }
            }
        }
    }

    fn hsts_value(&self) -> u32 {
        self.hsts | if self.data_flag() { HSTS_DATA_FLAG } else { 0 }
    }

    fn update_irq(&mut self) {
        let h = self.hsts;
        let c = self.hcfg;
        let level = (h & HSTS_BUSY_IRPT != 0 && c & HCFG_BUSY_IRPT_EN != 0)
            || (h & HSTS_BLOCK_IRPT != 0 && c & HCFG_BLOCK_IRPT_EN != 0)
            || (h & HSTS_SDIO_IRPT != 0 && c & HCFG_SDIO_IRPT_EN != 0)
            || (self.data_flag() && c & HCFG_DATA_IRPT_EN != 0);
        if level != self.level {
            self.level = level;
            self.irq.set(level);
        }
    }

    fn end_data(&mut self) {
        self.dir = Dir::None;
        self.remaining = 0;
        self.block_pos = 0;
    }

    fn run_command(&mut self) {
        let flags = self.cmd;
        let index = (flags & CMD_INDEX) as u8;
        self.cmd &= !CMD_FAIL;
        let no_resp = flags & CMD_NO_RESPONSE != 0;
        let long = flags & CMD_LONG_RESPONSE != 0;
        let powered = self.vdd & 1 != 0;
        let resp = match self.card.as_mut() {
            Some(card) if powered => Some(card.command(index, self.arg)),
            _ => None,
        };
        let ok = match resp {
            None => false, // no card or no power: nothing answers
            Some(_) if no_resp => true,
            Some(None) => false,
            Some(Some(r)) => {
                if let super::card::Response::R2(b) = r {
                    for i in 0..4 {
                        let j = 12 - 4 * i;
                        self.rsp[i] = u32::from_be_bytes([b[j], b[j + 1], b[j + 2], b[j + 3]]);
                    }
                    true
                } else if long {
                    false
                } else {
                    self.rsp = [r.short(), 0, 0, 0];
                    true
                }
            }
        };
        if index == 12 {
            self.end_data();
        }
        if !ok {
            self.cmd |= CMD_FAIL;
            self.hsts |= HSTS_CMD_TIME_OUT;
        } else if flags & (CMD_READ | CMD_WRITE) != 0 {
            self.dir = if flags & CMD_READ != 0 {
                Dir::Read
            } else {
                Dir::Write
            };
            self.remaining = self.hbct as u64 * self.hblc as u64;
            self.block_pos = 0;
            if self.dir == Dir::Read && !self.card.as_ref().is_some_and(|c| c.data_ready()) {
                // The card sends nothing (an error in its response): read timeout.
                self.hsts |= HSTS_REW_TIME_OUT;
                self.end_data();
            }
            if self.remaining == 0 {
                self.end_data();
            }
        }
        if flags & CMD_BUSYWAIT != 0 && self.hcfg & HCFG_BUSY_IRPT_EN != 0 {
            self.hsts |= HSTS_BUSY_IRPT;
        }
        self.cmd &= !CMD_NEW;
    }

    fn read_data(&mut self) -> u32 {
        if self.dir != Dir::Read || self.remaining == 0 {
            return 0;
        }
        let n = self.remaining.min(4) as usize;
        let mut w = [0u8; 4];
        let got = match self.card.as_mut() {
            Some(c) => c.read_data(&mut w[..n]),
            None => 0,
        };
        if got < n {
            self.hsts |= HSTS_REW_TIME_OUT;
            self.end_data();
        } else {
            self.remaining -= n as u64;
            if self.remaining == 0 {
                self.end_data();
            }
        }
        u32::from_le_bytes(w)
    }

    fn write_data(&mut self, value: u32) {
        if self.dir != Dir::Write || self.remaining == 0 {
            log::debug!("sdhost: SDDATA write {value:#x} outside a write");
            return;
        }
        let n = self.remaining.min(4) as usize;
        if let Some(c) = self.card.as_mut() {
            // A card that refused the write (write protected) takes nothing: dropped.
            c.write_data(&value.to_le_bytes()[..n]);
        }
        self.remaining -= n as u64;
        self.block_pos += n as u32;
        if self.block_pos >= self.hbct.max(1) {
            self.block_pos = 0;
            if self.hcfg & HCFG_BLOCK_IRPT_EN != 0 {
                self.hsts |= HSTS_BLOCK_IRPT;
            }
        }
        if self.remaining == 0 {
            self.end_data();
        }
    }

    fn read32(&mut self, reg: u64) -> u32 {
        match reg {
            SDCMD => self.cmd,
            SDARG => self.arg,
            SDTOUT => self.tout,
            SDCDIV => self.cdiv,
            SDRSP0..=SDRSP3 => self.rsp[((reg - SDRSP0) / 4) as usize],
            SDHSTS => self.hsts_value(),
            SDVDD => self.vdd,
            SDEDM => (self.edm & EDM_STORED) | (self.fifo_level() << 4) | self.fsm(),
            SDHCFG => self.hcfg,
            SDHBCT => self.hbct,
            SDDATA => {
                let v = self.read_data();
                self.update_irq();
                v
            }
            SDHBLC => self.hblc,
            _ => {
                log::debug!("sdhost: read of unknown register {reg:#x}");
                0
            }
        }
    }

    fn write32(&mut self, reg: u64, value: u32) {
        match reg {
            SDCMD => {
                self.cmd = value & 0xffff;
                if value & CMD_NEW != 0 {
                    self.run_command();
                }
            }
            SDARG => self.arg = value,
            SDTOUT => self.tout = value,
            SDCDIV => self.cdiv = value & 0x7ff,
            SDHSTS => self.hsts &= !(value & HSTS_W1C),
            SDVDD => {
                let on = value & 1;
                if on == 0 && self.vdd & 1 != 0 {
                    if let Some(c) = self.card.as_mut() {
                        c.power_reset();
                    }
                    self.end_data();
                }
                self.vdd = on;
            }
            SDEDM => {
                if value & EDM_FORCE_DATA_MODE != 0 {
                    self.end_data();
                }
                self.edm = value & EDM_STORED;
            }
            SDHCFG => self.hcfg = value & 0x7ff,
            SDHBCT => self.hbct = value,
            SDDATA => self.write_data(value),
            // Documented as 9 bits, but Linux asks for up to 1024 blocks (512 KiB requests):
            // the whole value counts.
            SDHBLC => self.hblc = value,
            _ => log::debug!("sdhost: write {value:#x} to unknown register {reg:#x}"),
        }
        self.update_irq();
    }
}

impl Device for Sdhost {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if offset >= SIZE || !matches!(size, 1 | 2 | 4) {
            log::debug!("sdhost: bad read at {offset:#x} size {size}");
            return 0;
        }
        let v = self.read32(offset & !3);
        let shift = (offset & 3) * 8;
        let mask = if size == 4 {
            u32::MAX
        } else {
            (1u32 << (size as u32 * 8)) - 1
        };
        ((v >> shift) & mask) as u64
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset >= SIZE || size != 4 || offset & 3 != 0 {
            log::debug!("sdhost: unsupported write at {offset:#x} size {size}");
            return;
        }
        self.write32(offset, value as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sd::card::tests::image;
    use armboard_bus::IrqSink;
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[derive(Default)]
    struct Line(AtomicBool);
    impl IrqSink for Line {
        fn set_level(&self, _line: u32, level: bool) {
            self.0.store(level, Ordering::SeqCst);
        }
    }

    /// Drives the controller the way bcm2835.c does.
    struct Driver {
        h: Sdhost,
        line: Arc<Line>,
        hcfg: u32,
    }

    const R1: u32 = 0;
    const R1B: u32 = CMD_BUSYWAIT;
    const R2: u32 = CMD_LONG_RESPONSE;
    const NONE: u32 = CMD_NO_RESPONSE;

    impl Driver {
        fn new(card: Option<SdCard>) -> Driver {
            let line = Arc::new(Line::default());
            let mut d = Driver {
                h: Sdhost::new(card, IrqLine::new(line.clone(), 0)),
                line,
                hcfg: HCFG_BUSY_IRPT_EN,
            };
            d.reset();
            d
        }

        fn rd(&mut self, r: u64) -> u32 {
            self.h.read(r, 4) as u32
        }

        fn wr(&mut self, r: u64, v: u32) {
            self.h.write(r, 4, v as u64)
        }

        fn irq(&self) -> bool {
            self.line.0.load(Ordering::SeqCst)
        }

        /// bcm2835_reset_internal.
        fn reset(&mut self) {
            self.wr(SDVDD, 0);
            self.wr(SDCMD, 0);
            self.wr(SDARG, 0);
            self.wr(SDTOUT, 0xf00000);
            self.wr(SDCDIV, 0);
            self.wr(SDHSTS, 0x7f8);
            self.wr(SDHCFG, 0);
            self.wr(SDHBCT, 0);
            self.wr(SDHBLC, 0);
            let mut edm = self.rd(SDEDM);
            edm &= !((0x1f << 14) | (0x1f << 9));
            edm |= (4 << 14) | (4 << 9);
            self.wr(SDEDM, edm);
            self.wr(SDVDD, 1);
            self.hcfg |= 0x2 | 0x8; // WIDE_INT_BUS, SLOW_CARD (set_ios)
            self.wr(SDHCFG, self.hcfg);
            self.wr(SDCDIV, 0x7ff);
        }

        /// bcm2835_send_command + finish_command: Ok(resp) or Err(hsts).
        fn cmd(&mut self, op: u32, arg: u32, flags: u32) -> Result<[u32; 4], u32> {
            assert_eq!(self.rd(SDCMD) & CMD_NEW, 0);
            let fsm = self.rd(SDEDM) & EDM_FSM_MASK;
            assert!(fsm == FSM_IDENTMODE || fsm == FSM_DATAMODE, "fsm {fsm}");
            let hsts = self.rd(SDHSTS);
            if hsts & 0xf8 != 0 {
                self.wr(SDHSTS, hsts);
            }
            self.wr(SDARG, arg);
            self.wr(SDCMD, op | flags | CMD_NEW);
            if flags & CMD_BUSYWAIT != 0 {
                assert!(self.irq(), "busy interrupt");
                let m = self.rd(SDHSTS);
                assert_ne!(m & HSTS_BUSY_IRPT, 0);
                self.wr(
                    SDHSTS,
                    HSTS_BUSY_IRPT | HSTS_BLOCK_IRPT | HSTS_SDIO_IRPT | 1,
                );
                assert!(!self.irq());
            }
            let c = self.rd(SDCMD);
            assert_eq!(c & CMD_NEW, 0);
            if c & CMD_FAIL != 0 {
                let hsts = self.rd(SDHSTS);
                self.wr(SDHSTS, 0xf8);
                return Err(hsts);
            }
            let mut r = [0u32; 4];
            if flags & CMD_LONG_RESPONSE != 0 {
                for (i, w) in r.iter_mut().rev().enumerate() {
                    *w = self.rd(SDRSP0 + 4 * i as u64);
                }
            } else {
                r[0] = self.rd(SDRSP0);
            }
            Ok(r)
        }

        fn app(&mut self, op: u32, arg: u32, flags: u32, rca: u32) -> Result<[u32; 4], u32> {
            let r = self.cmd(55, rca << 16, R1)?;
            assert_ne!(r[0] & (1 << 5), 0);
            self.cmd(op, arg, flags)
        }

        /// mmc_rescan + mmc_attach_sd up to the transfer state; returns the RCA.
        fn init_card(&mut self) -> u32 {
            self.cmd(0, 0, NONE).unwrap();
            assert_eq!(self.cmd(8, 0x1aa, R1).unwrap()[0], 0x1aa);
            // SDIO probe: CMD5 times out.
            assert_eq!(self.cmd(5, 0, R1), Err(HSTS_CMD_TIME_OUT));
            let ocr = self.app(41, 0, R1, 0).unwrap()[0];
            assert_ne!(ocr & (3 << 20), 0);
            self.cmd(0, 0, NONE).unwrap();
            self.cmd(8, 0x1aa, R1).unwrap();
            loop {
                let o = self.app(41, 0x4030_0000, R1, 0).unwrap()[0];
                if o & (1 << 31) != 0 {
                    assert_ne!(o & (1 << 30), 0);
                    break;
                }
            }
            let cid = self.cmd(2, 0, R2).unwrap();
            assert_eq!(cid[0] >> 24, 0x5a);
            let rca = self.cmd(3, 0, R1).unwrap()[0] >> 16;
            let csd = self.cmd(9, rca << 16, R2).unwrap();
            assert_eq!(csd[0] >> 30, 1);
            self.cmd(7, rca << 16, R1B).unwrap();
            rca
        }

        /// prepare_data + command, PIO: DATA_IRPT drives reads; BLOCK_IRPT after the first
        /// write block.
        fn pio(&mut self, op: u32, arg: u32, blksz: u32, buf: &mut [u8], write: bool) {
            let blocks = buf.len() as u32 / blksz;
            self.hcfg = (self.hcfg & !(HCFG_DATA_IRPT_EN | HCFG_BLOCK_IRPT_EN))
                | HCFG_DATA_IRPT_EN
                | HCFG_BUSY_IRPT_EN;
            self.wr(SDHCFG, self.hcfg);
            self.wr(SDHBCT, blksz);
            self.wr(SDHBLC, blocks);
            let flags = if write { CMD_WRITE } else { CMD_READ };
            self.cmd(op, arg, R1 | flags).unwrap();
            let mut left = blocks;
            let mut chunks = buf.chunks_mut(blksz as usize);
            let mut first = true;
            while left > 0 {
                assert!(self.irq(), "data/block interrupt with {left} blocks left");
                let m = self.rd(SDHSTS);
                self.wr(
                    SDHSTS,
                    HSTS_BUSY_IRPT | HSTS_BLOCK_IRPT | HSTS_SDIO_IRPT | 1,
                );
                let chunk = chunks.next().unwrap();
                if write {
                    if first {
                        assert!(m & 1 != 0 && self.hcfg & HCFG_DATA_IRPT_EN != 0);
                        self.hcfg = (self.hcfg & !HCFG_DATA_IRPT_EN) | HCFG_BLOCK_IRPT_EN;
                        self.wr(SDHCFG, self.hcfg);
                        first = false;
                    } else {
                        assert_ne!(m & HSTS_BLOCK_IRPT, 0);
                    }
                    self.transfer_block(chunk, true);
                    // The block interrupt for the block just written.
                    assert!(self.irq());
                    let m = self.rd(SDHSTS);
                    assert_ne!(m & HSTS_BLOCK_IRPT, 0);
                    left -= 1;
                    if left == 0 {
                        self.wr(SDHSTS, HSTS_BLOCK_IRPT);
                    }
                } else {
                    assert_ne!(m & 1, 0);
                    self.transfer_block(chunk, false);
                    left -= 1;
                }
            }
            self.hcfg &= !(HCFG_DATA_IRPT_EN | HCFG_BLOCK_IRPT_EN);
            self.wr(SDHCFG, self.hcfg);
            assert!(!self.irq());
        }

        /// bcm2835_transfer_block_pio.
        fn transfer_block(&mut self, buf: &mut [u8], write: bool) {
            let mut words: Vec<u32> = buf
                .chunks(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let mut i = 0;
            while i < words.len() {
                let burst = (words.len() - i).min(8);
                let edm = self.rd(SDEDM);
                let avail = if write {
                    16 - ((edm >> 4) & 0x1f) as usize
                } else {
                    ((edm >> 4) & 0x1f) as usize
                };
                assert!(avail >= burst, "fifo {avail} < burst {burst}, edm {edm:#x}");
                let fsm = edm & EDM_FSM_MASK;
                assert_eq!(fsm, if write { FSM_WRITEDATA } else { FSM_READDATA });
                let take = avail.min(words.len() - i);
                for w in &mut words[i..i + take] {
                    if write {
                        let v = *w;
                        self.wr(SDDATA, v);
                    } else {
                        *w = self.rd(SDDATA);
                    }
                }
                i += take;
            }
            for (c, w) in buf.chunks_mut(4).zip(words) {
                c.copy_from_slice(&w.to_le_bytes());
            }
        }

        /// bcm2835_wait_transfer_complete.
        fn wait_transfer_complete(&mut self) {
            let fsm = self.rd(SDEDM) & EDM_FSM_MASK;
            assert!(fsm == FSM_DATAMODE || fsm == FSM_IDENTMODE, "fsm {fsm}");
        }
    }

    #[test]
    fn no_card_commands_time_out() {
        let mut d = Driver::new(None);
        assert_eq!(d.cmd(0, 0, NONE), Err(HSTS_CMD_TIME_OUT));
        assert_eq!(d.cmd(8, 0x1aa, R1), Err(HSTS_CMD_TIME_OUT));
        assert_eq!(d.rd(SDEDM) & EDM_FSM_MASK, FSM_IDENTMODE);
    }

    #[test]
    fn linux_init_then_pio_reads_scr_and_a_block() {
        let p = image("sdhost-pio", 4 * 1024 * 1024);
        let mut d = Driver::new(Some(SdCard::open(&p, false).unwrap()));
        let rca = d.init_card();
        // ACMD51 (SCR, 8 bytes) by PIO.
        d.cmd(55, rca << 16, R1).unwrap();
        let mut scr = [0u8; 8];
        d.pio(51, 0, 8, &mut scr, false);
        d.wait_transfer_complete();
        assert_eq!(scr[0] & 0x0f, 2);
        assert_ne!(scr[3] & 2, 0, "CMD23 support");
        // ACMD6: 4-bit bus.
        d.app(6, 2, R1, rca).unwrap();
        assert!(d.h.card().unwrap().bus_width4());
        // CMD17 block 5 by PIO.
        let mut b = vec![0u8; 512];
        d.pio(17, 5, 512, &mut b, false);
        d.wait_transfer_complete();
        assert_eq!(&b[..4], &[5, 6, 7, 8]);
        let st = d.cmd(13, rca << 16, R1).unwrap()[0];
        assert_eq!((st >> 9) & 0xf, 4);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn dma_multi_block_read_with_cmd23_and_drain() {
        let p = image("sdhost-dma-read", 4 * 1024 * 1024);
        let mut d = Driver::new(Some(SdCard::open(&p, false).unwrap()));
        d.init_card();
        // prepare_dma: only BUSY enabled; CMD23 then CMD18; the DMA engine reads all but
        // the last 3 words from SDDATA, the driver drains those polling the FIFO level.
        d.hcfg = (d.hcfg & !(HCFG_DATA_IRPT_EN | HCFG_BLOCK_IRPT_EN)) | HCFG_BUSY_IRPT_EN;
        d.wr(SDHCFG, d.hcfg);
        d.cmd(23, 4, R1).unwrap();
        d.wr(SDHBCT, 512);
        d.wr(SDHBLC, 4);
        d.cmd(18, 8, R1 | CMD_READ).unwrap();
        let mut words = Vec::new();
        for _ in 0..(4 * 128 - 3) {
            words.push(d.rd(SDDATA));
        }
        for _ in 0..3 {
            let edm = d.rd(SDEDM);
            assert_ne!((edm >> 4) & 0x1f, 0);
            words.push(d.rd(SDDATA));
        }
        assert!(!d.irq());
        d.wait_transfer_complete();
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        for blk in 0..4 {
            assert_eq!(bytes[blk * 512], 8 + blk as u8);
        }
        assert_eq!(d.h.card().unwrap().state(), crate::sd::card::State::Tran);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn dma_read_of_a_maximal_request_of_1024_blocks() {
        let p = image("sdhost-dma-big", 4 * 1024 * 1024);
        let mut d = Driver::new(Some(SdCard::open(&p, false).unwrap()));
        d.init_card();
        d.cmd(23, 1024, R1).unwrap();
        d.wr(SDHBCT, 512);
        d.wr(SDHBLC, 1024);
        d.cmd(18, 0, R1 | CMD_READ).unwrap();
        let mut last = 0;
        for _ in 0..(1024 * 128) {
            last = d.rd(SDDATA);
        }
        d.wait_transfer_complete();
        assert_eq!(d.rd(SDHSTS) & 0xf8, 0);
        assert_eq!(last, 0, "beyond the pattern the image is zero");
        assert_eq!(d.h.card().unwrap().state(), crate::sd::card::State::Tran);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn dma_multi_block_write_with_stop_reaches_the_file() {
        let p = image("sdhost-dma-write", 4 * 1024 * 1024);
        let mut d = Driver::new(Some(SdCard::open(&p, false).unwrap()));
        d.init_card();
        d.hcfg = (d.hcfg & !(HCFG_DATA_IRPT_EN | HCFG_BLOCK_IRPT_EN)) | HCFG_BUSY_IRPT_EN;
        d.wr(SDHCFG, d.hcfg);
        d.wr(SDHBCT, 512);
        d.wr(SDHBLC, 3);
        d.cmd(25, 100, R1 | CMD_WRITE).unwrap();
        for i in 0..(3 * 128u32) {
            d.wr(SDDATA, 0xa5a5_0000 | i);
        }
        assert!(!d.irq(), "no block interrupt when it is not enabled");
        assert_eq!(d.rd(SDHSTS) & HSTS_BLOCK_IRPT, 0);
        d.cmd(12, 0, R1B).unwrap();
        d.wait_transfer_complete();
        let f = std::fs::File::open(&p).unwrap();
        let mut b = vec![0u8; 3 * 512];
        f.read_exact_at(&mut b, 100 * 512).unwrap();
        for i in 0..(3 * 128usize) {
            let w = u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
            assert_eq!(w, 0xa5a5_0000 | i as u32);
        }
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn pio_multi_block_write_uses_block_interrupts() {
        let p = image("sdhost-pio-write", 4 * 1024 * 1024);
        let mut d = Driver::new(Some(SdCard::open(&p, false).unwrap()));
        d.init_card();
        let mut data: Vec<u8> = (0..1024).map(|i| (i * 7) as u8).collect();
        d.pio(25, 20, 512, &mut data, true);
        d.cmd(12, 0, R1B).unwrap();
        let f = std::fs::File::open(&p).unwrap();
        let mut b = vec![0u8; 1024];
        f.read_exact_at(&mut b, 20 * 512).unwrap();
        assert_eq!(b, data);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn odd_size_image_and_read_only_card() {
        let p = image("sdhost-ro", 5 * 1024 * 1024 + 777);
        let mut d = Driver::new(Some(SdCard::open(&p, true).unwrap()));
        let rca = d.init_card();
        let csd = d.cmd(9, rca << 16, R2);
        // CMD9 is only legal in stby: the card stays silent in tran.
        assert!(csd.is_err());
        assert_eq!(d.h.card().unwrap().capacity(), 5 * 1024 * 1024);
        d.wr(SDHBCT, 512);
        d.wr(SDHBLC, 1);
        let r = d.cmd(24, 0, R1 | CMD_WRITE).unwrap()[0];
        assert_ne!(r & crate::sd::card::status::WP_VIOLATION, 0);
        for _ in 0..128 {
            d.wr(SDDATA, 0xffff_ffff);
        }
        let f = std::fs::File::open(&p).unwrap();
        let mut b = [0u8; 4];
        f.read_exact_at(&mut b, 0).unwrap();
        assert_eq!(b, [0, 1, 2, 3]);
        // The last exposed block reads; the one after is out of range.
        let last = (5 * 1024 * 1024 / 512) - 1;
        let mut blk = vec![0u8; 512];
        d.pio(17, last, 512, &mut blk, false);
        let r = d.cmd(17, last + 1, R1 | CMD_READ).unwrap()[0];
        assert_ne!(r & crate::sd::card::status::OUT_OF_RANGE, 0);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn any_register_value_is_survived() {
        let p = image("sdhost-fuzz", 2 * 1024 * 1024);
        let mut d = Driver::new(Some(SdCard::open(&p, true).unwrap()));
        let mut x = 0x9e37_79b9u32;
        for _ in 0..20000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let off = (x as u64 >> 8) % 0x110;
            let size = [1u8, 2, 4, 8][(x & 3) as usize];
            if x & 0x10 != 0 {
                d.h.write(off, size, x as u64 | ((x as u64) << 32));
            } else {
                d.h.read(off, size);
            }
        }
        std::fs::remove_file(p).unwrap();
    }
}
