//! An SD memory card (SD Physical Layer Simplified Spec 3.01 subset) backed by an image file.
//!
//! The card is a high-capacity card (CSD version 2.0: SDHC up to 32 GiB, SDXC above), block
//! addressed with a fixed 512-byte block. A CSD v2 describes capacity in units of 512 KiB
//! (`(C_SIZE + 1) * 512 KiB`, C_SIZE 22 bits, so at most 2 TiB); an image whose size is not a
//! multiple of 512 KiB exposes only the whole units (the tail is never read or written), and a
//! larger one exposes the first 2 TiB. Images under 1 MiB are refused.
//!
//! Commands run synchronously: [`SdCard::command`] returns the response (or `None` when a real
//! card would not answer: an illegal command, a wrong RCA, the inactive state). Data moves
//! through the byte-stream API shared by the host controllers: [`SdCard::data_ready`] /
//! [`SdCard::read_data`] for card-to-host, [`SdCard::receiving`] / [`SdCard::write_data`]
//! for host-to-card. Written blocks go to the file immediately (positioned writes); the file
//! is synced when a write stream ends and on drop. A read-only card refuses writes with
//! WP_VIOLATION and reports itself as write protected (CSD PERM_WRITE_PROTECT, and no block
//! write / erase command classes, like an SD ROM card, so Linux makes the disk read-only).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub const BLOCK: usize = 512;
const UNIT: u64 = 512 * 1024;
/// Smallest image accepted.
pub const MIN_IMAGE: u64 = 1024 * 1024;
const MAX_C_SIZE: u64 = (1 << 22) - 1;

/// R1 card status bits.
pub mod status {
    pub const OUT_OF_RANGE: u32 = 1 << 31;
    pub const ADDRESS_ERROR: u32 = 1 << 30;
    pub const BLOCK_LEN_ERROR: u32 = 1 << 29;
    pub const ERASE_SEQ_ERROR: u32 = 1 << 28;
    pub const ERASE_PARAM: u32 = 1 << 27;
    pub const WP_VIOLATION: u32 = 1 << 26;
    pub const CARD_IS_LOCKED: u32 = 1 << 25;
    pub const COM_CRC_ERROR: u32 = 1 << 23;
    pub const ILLEGAL_COMMAND: u32 = 1 << 22;
    pub const CC_ERROR: u32 = 1 << 20;
    pub const ERROR: u32 = 1 << 19;
    pub const WP_ERASE_SKIP: u32 = 1 << 15;
    pub const ERASE_RESET: u32 = 1 << 13;
    pub const READY_FOR_DATA: u32 = 1 << 8;
    pub const APP_CMD: u32 = 1 << 5;
    /// Bits cleared once they have been reported in a response.
    pub const CLEAR_ON_READ: u32 = OUT_OF_RANGE
        | ADDRESS_ERROR
        | BLOCK_LEN_ERROR
        | ERASE_SEQ_ERROR
        | ERASE_PARAM
        | WP_VIOLATION
        | COM_CRC_ERROR
        | ILLEGAL_COMMAND
        | CC_ERROR
        | ERROR
        | WP_ERASE_SKIP
        | ERASE_RESET;
}

/// OCR: voltage window 2.7-3.6 V.
const OCR_VOLTAGES: u32 = 0x00ff_8000;
const OCR_BUSY_DONE: u32 = 1 << 31;
const OCR_CCS: u32 = 1 << 30;
const OCR_HCS: u32 = 1 << 30;
/// Relative card address the card publishes on CMD3.
const FIRST_RCA: u16 = 0xb368;

/// Card states (the CURRENT_STATE field of R1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle = 0,
    Ready = 1,
    Ident = 2,
    Stby = 3,
    Tran = 4,
    Data = 5,
    Rcv = 6,
    Prg = 7,
    Dis = 8,
    /// Inactive (no state number on the bus: the card never answers).
    Ina = 15,
}

/// A command response as the card sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// R1 card status.
    R1(u32),
    /// R1 followed by busy on DAT0 (the card is never busy for long here).
    R1b(u32),
    /// 136-bit CID or CSD: the 128-bit register, most significant byte first, CRC7 and end
    /// bit in the last byte.
    R2([u8; 16]),
    /// OCR (no CRC).
    R3(u32),
    /// Published RCA and status bits.
    R6(u32),
    /// Interface condition echo.
    R7(u32),
}

impl Response {
    /// The 32 payload bits of a 48-bit response (0 for R2).
    pub fn short(&self) -> u32 {
        match *self {
            Response::R1(v)
            | Response::R1b(v)
            | Response::R3(v)
            | Response::R6(v)
            | Response::R7(v) => v,
            Response::R2(_) => 0,
        }
    }

    pub fn is_long(&self) -> bool {
        matches!(self, Response::R2(_))
    }

    pub fn is_busy(&self) -> bool {
        matches!(self, Response::R1b(_))
    }
}

/// The data phase in progress.
enum Xfer {
    None,
    /// A register or status block (SCR, SD status, switch status, ...).
    Fixed {
        buf: Vec<u8>,
        pos: usize,
    },
    /// Memory blocks from `next` (block number); `left`: blocks still to send (None: until
    /// CMD12).
    Read {
        buf: Box<[u8; BLOCK]>,
        pos: usize,
        next: u64,
        left: Option<u32>,
    },
    /// Memory blocks to `block`; `left` as for reads, counting the block being received.
    Write {
        buf: Box<[u8; BLOCK]>,
        pos: usize,
        block: u64,
        left: Option<u32>,
    },
    /// Data the card takes and throws away (CMD42's lock structure, refused writes).
    Sink {
        left: usize,
    },
}

/// An SD memory card.
pub struct SdCard {
    file: File,
    readonly: bool,
    /// Blocks exposed.
    blocks: u64,
    state: State,
    rca: u16,
    status: u32,
    app_cmd: bool,
    cmd8_ok: bool,
    acmd41_polls: u32,
    hcs: bool,
    bus_width4: bool,
    high_speed: bool,
    block_count: Option<u32>,
    erase_start: Option<u64>,
    erase_end: Option<u64>,
    written_blocks: u32,
    dirty: bool,
    xfer: Xfer,
    cid: [u8; 16],
    csd: [u8; 16],
}

impl SdCard {
    /// Open the image at `path` (read-write unless `readonly`).
    pub fn open(path: impl AsRef<Path>, readonly: bool) -> io::Result<SdCard> {
        let path = path.as_ref();
        let file = OpenOptions::new().read(true).write(!readonly).open(path)?;
        let serial = path.to_string_lossy().bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ b as u32).wrapping_mul(0x0100_0193)
        });
        SdCard::from_file(file, readonly, serial)
    }

    /// A card over an open file; `serial` is the CID's product serial number.
    pub fn from_file(file: File, readonly: bool, serial: u32) -> io::Result<SdCard> {
        use std::io::{Seek, SeekFrom};
        let mut f = file;
        let bytes = f.seek(SeekFrom::End(0))?;
        if bytes < MIN_IMAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("SD card image of {bytes} bytes is too small (at least {MIN_IMAGE} bytes)"),
            ));
        }
        let units = (bytes / UNIT).min(MAX_C_SIZE + 1);
        if bytes % UNIT != 0 {
            log::warn!(
                "sd: image of {bytes} bytes is not a multiple of 512 KiB; the card exposes the first {} bytes",
                units * UNIT
            );
        }
        let blocks = units * (UNIT / BLOCK as u64);
        let mut card = SdCard {
            file: f,
            readonly,
            blocks,
            state: State::Idle,
            rca: 0,
            status: 0,
            app_cmd: false,
            cmd8_ok: false,
            acmd41_polls: 0,
            hcs: false,
            bus_width4: false,
            high_speed: false,
            block_count: None,
            erase_start: None,
            erase_end: None,
            written_blocks: 0,
            dirty: false,
            xfer: Xfer::None,
            cid: [0; 16],
            csd: [0; 16],
        };
        card.cid = make_cid(serial);
        card.csd = make_csd(units - 1, readonly);
        Ok(card)
    }

    /// Capacity exposed to the host, in bytes.
    pub fn capacity(&self) -> u64 {
        self.blocks * BLOCK as u64
    }

    pub fn readonly(&self) -> bool {
        self.readonly
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn rca(&self) -> u16 {
        self.rca
    }

    pub fn bus_width4(&self) -> bool {
        self.bus_width4
    }

    pub fn high_speed(&self) -> bool {
        self.high_speed
    }

    pub fn cid(&self) -> [u8; 16] {
        self.cid
    }

    pub fn csd(&self) -> [u8; 16] {
        self.csd
    }

    /// Power cycle: back to the idle state with everything reset.
    pub fn power_reset(&mut self) {
        self.finish_stream();
        self.go_idle();
    }

    fn go_idle(&mut self) {
        self.state = State::Idle;
        self.rca = 0;
        self.status = 0;
        self.app_cmd = false;
        self.cmd8_ok = false;
        self.acmd41_polls = 0;
        self.hcs = false;
        self.bus_width4 = false;
        self.high_speed = false;
        self.block_count = None;
        self.erase_start = None;
        self.erase_end = None;
        self.xfer = Xfer::None;
    }

    /// The R1 status as sent now (reported clear-on-read bits are cleared).
    fn r1_status(&mut self, state: State) -> u32 {
        let mut s = self.status | ((state as u32 & 0xf) << 9);
        if matches!(self.xfer, Xfer::None) || matches!(self.xfer, Xfer::Write { .. }) {
            s |= status::READY_FOR_DATA;
        }
        if self.app_cmd {
            s |= status::APP_CMD;
        }
        self.status &= !status::CLEAR_ON_READ;
        s
    }

    fn illegal(&mut self) -> Option<Response> {
        self.status |= status::ILLEGAL_COMMAND;
        None
    }

    fn addressed(&self, arg: u32) -> bool {
        (arg >> 16) as u16 == self.rca
    }

    /// Send command `cmd` (0-63) with argument `arg`. `None`: the card does not answer.
    pub fn command(&mut self, cmd: u8, arg: u32) -> Option<Response> {
        if self.state == State::Ina {
            return None;
        }
        let app = std::mem::replace(&mut self.app_cmd, false);
        if app {
            // The APP_CMD bit shows in the application command's own response.
            self.app_cmd = true;
            let r = self.app_command(cmd, arg);
            self.app_cmd = false;
            if let Some(r) = r {
                return r;
            }
            // Not an application command: run it as the ordinary command of that number.
        }
        self.std_command(cmd, arg)
    }

    fn std_command(&mut self, cmd: u8, arg: u32) -> Option<Response> {
        let st = self.state;
        use State::*;
        match cmd {
            0 => {
                self.finish_stream();
                self.go_idle();
                None
            }
            8 => {
                if st != Idle {
                    return self.illegal();
                }
                // Only 2.7-3.6 V (VHS = 1) is accepted; otherwise no answer.
                if (arg >> 8) & 0xf != 1 {
                    return None;
                }
                self.cmd8_ok = true;
                Some(Response::R7(arg & 0xfff))
            }
            55 => match st {
                Idle => {
                    self.app_cmd = true;
                    Some(Response::R1(self.r1_status(st)))
                }
                Stby | Tran | Data | Rcv | Prg | Dis if self.addressed(arg) => {
                    self.app_cmd = true;
                    Some(Response::R1(self.r1_status(st)))
                }
                Stby | Tran | Data | Rcv | Prg | Dis => None,
                _ => self.illegal(),
            },
            2 => {
                if st != Ready {
                    return self.illegal();
                }
                self.state = Ident;
                Some(Response::R2(self.cid))
            }
            3 => {
                if st != Ident && st != Stby {
                    return self.illegal();
                }
                self.rca = if self.rca == 0 {
                    FIRST_RCA
                } else {
                    self.rca.wrapping_add(0x1111).max(1)
                };
                self.state = Stby;
                let s = self.r1_status(st);
                // R6: bits 23, 22, 19 of the status in 15:13, bits 12:0 as they are.
                let bits = ((s >> 8) & 0x6000) | ((s >> 6) & 0x2000) | (s & 0x1fff);
                Some(Response::R6(((self.rca as u32) << 16) | bits))
            }
            9 | 10 => {
                if st != Stby {
                    return self.illegal();
                }
                if !self.addressed(arg) {
                    return None;
                }
                Some(Response::R2(if cmd == 9 { self.csd } else { self.cid }))
            }
            7 => match st {
                Stby | Tran | Data | Prg | Dis => {
                    if self.addressed(arg) && self.rca != 0 {
                        if st == Stby {
                            self.state = Tran;
                        } else if st == Dis {
                            self.state = Prg;
                        }
                        let s = self.r1_status(st);
                        Some(Response::R1b(s))
                    } else {
                        // Deselected: no answer.
                        if st == Tran || st == Data {
                            self.finish_stream();
                            self.xfer = Xfer::None;
                            self.state = Stby;
                        } else if st == Prg {
                            self.state = Dis;
                        }
                        None
                    }
                }
                _ => self.illegal(),
            },
            13 => match st {
                Stby | Tran | Data | Rcv | Prg | Dis => {
                    if !self.addressed(arg) {
                        return None;
                    }
                    Some(Response::R1(self.r1_status(st)))
                }
                _ => self.illegal(),
            },
            15 => {
                if matches!(st, Idle | Ready | Ident) {
                    return self.illegal();
                }
                if self.addressed(arg) {
                    self.finish_stream();
                    self.xfer = Xfer::None;
                    self.state = Ina;
                }
                None
            }
            12 => match st {
                Data | Rcv => {
                    let s = self.r1_status(st);
                    self.finish_stream();
                    self.xfer = Xfer::None;
                    self.state = Tran;
                    Some(Response::R1b(s))
                }
                _ => self.illegal(),
            },
            16 => {
                if st != Tran {
                    return self.illegal();
                }
                if arg == 0 || arg > BLOCK as u32 {
                    self.status |= status::BLOCK_LEN_ERROR;
                }
                Some(Response::R1(self.r1_status(st)))
            }
            17 | 18 => {
                if st != Tran {
                    return self.illegal();
                }
                let block = arg as u64;
                let count = self.block_count.take();
                if block >= self.blocks {
                    self.status |= status::OUT_OF_RANGE;
                    return Some(Response::R1(self.r1_status(st)));
                }
                let s = self.r1_status(st);
                let left = if cmd == 17 { Some(1) } else { count };
                let mut buf = Box::new([0u8; BLOCK]);
                self.load_block(block, &mut buf);
                self.xfer = Xfer::Read {
                    buf,
                    pos: 0,
                    next: block + 1,
                    left,
                };
                self.state = Data;
                Some(Response::R1(s))
            }
            23 => {
                if st != Tran {
                    return self.illegal();
                }
                self.block_count = Some(arg).filter(|&n| n != 0);
                Some(Response::R1(self.r1_status(st)))
            }
            24 | 25 => {
                if st != Tran {
                    return self.illegal();
                }
                let block = arg as u64;
                let count = self.block_count.take();
                if self.readonly {
                    self.status |= status::WP_VIOLATION;
                    return Some(Response::R1(self.r1_status(st)));
                }
                if block >= self.blocks {
                    self.status |= status::OUT_OF_RANGE;
                    return Some(Response::R1(self.r1_status(st)));
                }
                let s = self.r1_status(st);
                self.written_blocks = 0;
                self.xfer = Xfer::Write {
                    buf: Box::new([0u8; BLOCK]),
                    pos: 0,
                    block,
                    left: if cmd == 24 { Some(1) } else { count },
                };
                self.state = Rcv;
                Some(Response::R1(s))
            }
            6 => {
                if st != Tran {
                    return self.illegal();
                }
                let s = self.r1_status(st);
                let buf = self.switch_function(arg);
                self.start_fixed(buf);
                Some(Response::R1(s))
            }
            32 | 33 => {
                if st != Tran {
                    return self.illegal();
                }
                let block = arg as u64;
                if block >= self.blocks {
                    self.status |= status::OUT_OF_RANGE;
                    self.erase_start = None;
                    self.erase_end = None;
                } else if cmd == 32 {
                    self.erase_start = Some(block);
                    self.erase_end = None;
                } else if self.erase_start.is_none() {
                    self.status |= status::ERASE_SEQ_ERROR;
                } else {
                    self.erase_end = Some(block);
                }
                Some(Response::R1(self.r1_status(st)))
            }
            38 => {
                if st != Tran {
                    return self.illegal();
                }
                match (self.erase_start.take(), self.erase_end.take()) {
                    (Some(a), Some(b)) => {
                        if self.readonly {
                            self.status |= status::WP_ERASE_SKIP;
                        } else if arg & 1 == 0 {
                            // Erase (and FULE): the SCR's DATA_STAT_AFTER_ERASE is 0, so
                            // erased blocks read as zeros. Discard (arg bit 0) leaves the data.
                            let (lo, hi) = (a.min(b), a.max(b));
                            self.zero_blocks(lo, hi - lo + 1);
                        }
                    }
                    _ => self.status |= status::ERASE_SEQ_ERROR,
                }
                Some(Response::R1b(self.r1_status(st)))
            }
            42 => {
                if st != Tran {
                    return self.illegal();
                }
                // Lock/unlock is not supported: take the data block and report failure.
                self.status |= status::ERROR;
                let s = self.r1_status(st);
                self.xfer = Xfer::Sink { left: BLOCK };
                self.state = Rcv;
                Some(Response::R1(s))
            }
            // CMD1 (MMC), CMD5/52/53 (SDIO), CMD11 (1.8 V switch), CMD19 (tuning) and the
            // rest: not supported by this card.
            _ => self.illegal(),
        }
    }

    /// An application command; `None` when `cmd` is not one.
    fn app_command(&mut self, cmd: u8, arg: u32) -> Option<Option<Response>> {
        let st = self.state;
        if !matches!(cmd, 6 | 13 | 22 | 23 | 41 | 42 | 51) {
            return None;
        }
        Some(self.app_command_known(cmd, arg, st))
    }

    fn app_command_known(&mut self, cmd: u8, arg: u32, st: State) -> Option<Response> {
        use State::*;
        match cmd {
            41 => {
                if st != Idle {
                    return self.illegal();
                }
                let window = arg & OCR_VOLTAGES;
                if arg & 0x00ff_ffff == 0 {
                    // Inquiry: report the OCR, stay idle.
                    return Some(Response::R3(OCR_VOLTAGES));
                }
                if window == 0 {
                    self.state = Ina;
                    return None;
                }
                // HCS counts only after CMD8; a high-capacity card stays busy without it.
                self.hcs = arg & OCR_HCS != 0 && self.cmd8_ok;
                self.acmd41_polls += 1;
                // Busy on the first request, ready from the second.
                if self.acmd41_polls < 2 || !self.hcs {
                    return Some(Response::R3(OCR_VOLTAGES));
                }
                self.state = Ready;
                Some(Response::R3(OCR_VOLTAGES | OCR_BUSY_DONE | OCR_CCS))
            }
            6 => {
                if st != Tran {
                    return self.illegal();
                }
                match arg & 3 {
                    0 => self.bus_width4 = false,
                    2 => self.bus_width4 = true,
                    _ => self.status |= status::ERROR,
                }
                Some(Response::R1(self.r1_status(st)))
            }
            13 => {
                if st != Tran {
                    return self.illegal();
                }
                let s = self.r1_status(st);
                let buf = self.sd_status();
                self.start_fixed(buf);
                Some(Response::R1(s))
            }
            22 => {
                if st != Tran {
                    return self.illegal();
                }
                let s = self.r1_status(st);
                self.start_fixed(self.written_blocks.to_be_bytes().to_vec());
                Some(Response::R1(s))
            }
            23 => {
                if st != Tran {
                    return self.illegal();
                }
                Some(Response::R1(self.r1_status(st)))
            }
            42 => {
                if st != Tran {
                    return self.illegal();
                }
                Some(Response::R1(self.r1_status(st)))
            }
            51 => {
                if st != Tran {
                    return self.illegal();
                }
                let s = self.r1_status(st);
                self.start_fixed(self.scr().to_vec());
                Some(Response::R1(s))
            }
            _ => self.illegal(),
        }
    }

    fn start_fixed(&mut self, buf: Vec<u8>) {
        self.xfer = Xfer::Fixed { buf, pos: 0 };
        self.state = State::Data;
    }

    /// SCR: version 0, SD spec 3.0x, erased data 0, SDHC/SDXC security, 1- and 4-bit
    /// buses, CMD23 supported.
    fn scr(&self) -> [u8; 8] {
        let security = if self.blocks > 64 * 1024 * 1024 * 2 {
            4
        } else {
            3
        };
        [0x02, (security << 4) | 0x05, 0x80, 0x02, 0, 0, 0, 0]
    }

    /// The 64-byte SD status (ACMD13).
    fn sd_status(&self) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[0] = if self.bus_width4 { 0x80 } else { 0 };
        b[8] = 4; // speed class 10
        b[10] = 9 << 4; // AU 4 MiB
        b
    }

    /// CMD6: the 64-byte switch status; in switch mode (arg bit 31) the change is applied.
    fn switch_function(&mut self, arg: u32) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[0..2].copy_from_slice(&100u16.to_be_bytes()); // max current (mA)
                                                        // Support bits for groups 6..1 (function 15 is marked as in the spec's examples).
        for g in 0..6 {
            let support: u16 = if g == 0 { 0x8003 } else { 0x8001 };
            let off = 2 + (5 - g) * 2;
            b[off..off + 2].copy_from_slice(&support.to_be_bytes());
        }
        let mut result = [0u8; 6];
        let mut ok = true;
        for (g, r) in result.iter_mut().enumerate() {
            let f = ((arg >> (g * 4)) & 0xf) as u8;
            let current = if g == 0 && self.high_speed { 1 } else { 0 };
            *r = match (g, f) {
                (_, 0xf) => current,
                (_, 0) => 0,
                (0, 1) => 1,
                _ => {
                    ok = false;
                    0xf
                }
            };
        }
        if !ok {
            // Nothing is switched when any group asks for an unsupported function.
            for (g, r) in result.iter_mut().enumerate() {
                if *r != 0xf {
                    *r = if g == 0 && self.high_speed { 1 } else { 0 };
                }
            }
        } else if arg & (1 << 31) != 0 {
            self.high_speed = result[0] == 1;
        }
        b[14] = (result[5] << 4) | result[4];
        b[15] = (result[3] << 4) | result[2];
        b[16] = (result[1] << 4) | result[0];
        b
    }

    fn load_block(&mut self, block: u64, buf: &mut [u8; BLOCK]) {
        if let Err(e) = self.file.read_exact_at(buf, block * BLOCK as u64) {
            log::warn!("sd: reading block {block}: {e}");
            buf.fill(0);
            self.status |= status::ERROR;
        }
    }

    fn zero_blocks(&mut self, first: u64, count: u64) {
        let zeros = vec![0u8; 64 * BLOCK];
        let mut b = first;
        let end = (first + count).min(self.blocks);
        while b < end {
            let n = (end - b).min(64);
            let len = n as usize * BLOCK;
            if let Err(e) = self.file.write_all_at(&zeros[..len], b * BLOCK as u64) {
                log::warn!("sd: erasing at block {b}: {e}");
                self.status |= status::ERROR;
                return;
            }
            b += n;
        }
        self.dirty = true;
        self.sync();
    }

    fn sync(&mut self) {
        if self.dirty {
            if let Err(e) = self.file.sync_data() {
                log::warn!("sd: sync: {e}");
            }
            self.dirty = false;
        }
    }

    /// A write stream ends: make the data durable.
    fn finish_stream(&mut self) {
        self.sync();
    }

    /// The card has data for the host (a data phase card-to-host is in progress).
    pub fn data_ready(&self) -> bool {
        match &self.xfer {
            Xfer::Fixed { buf, pos } => *pos < buf.len(),
            Xfer::Read { .. } => true,
            _ => false,
        }
    }

    /// The card takes data from the host (a data phase host-to-card is in progress).
    pub fn receiving(&self) -> bool {
        matches!(self.xfer, Xfer::Write { .. } | Xfer::Sink { .. })
    }

    /// One byte card-to-host, if the card has one.
    pub fn read_byte(&mut self) -> Option<u8> {
        let mut b = [0u8];
        (self.read_data(&mut b) == 1).then_some(b[0])
    }

    /// Card-to-host data into `out`; returns the bytes given (fewer when the data ends).
    pub fn read_data(&mut self, out: &mut [u8]) -> usize {
        let mut done = 0;
        while done < out.len() {
            match &mut self.xfer {
                Xfer::Fixed { buf, pos } => {
                    let n = (buf.len() - *pos).min(out.len() - done);
                    out[done..done + n].copy_from_slice(&buf[*pos..*pos + n]);
                    *pos += n;
                    done += n;
                    if *pos == buf.len() {
                        self.xfer = Xfer::None;
                        self.state = State::Tran;
                    }
                    if n == 0 {
                        break;
                    }
                }
                Xfer::Read {
                    buf,
                    pos,
                    next,
                    left,
                } => {
                    let n = (BLOCK - *pos).min(out.len() - done);
                    out[done..done + n].copy_from_slice(&buf[*pos..*pos + n]);
                    *pos += n;
                    done += n;
                    if *pos == BLOCK {
                        if let Some(l) = left {
                            *l -= 1;
                        }
                        let more = left.is_none_or(|l| l > 0);
                        let block = *next;
                        if !more {
                            self.xfer = Xfer::None;
                            self.state = State::Tran;
                        } else if block >= self.blocks {
                            // Ran off the end: the error shows in CMD12's response.
                            self.status |= status::OUT_OF_RANGE;
                            self.xfer = Xfer::None;
                            self.state = State::Tran;
                        } else {
                            let mut b = std::mem::replace(buf, Box::new([0u8; BLOCK]));
                            *pos = 0;
                            *next = block + 1;
                            self.load_block(block, &mut b);
                            if let Xfer::Read { buf, .. } = &mut self.xfer {
                                *buf = b;
                            }
                        }
                    }
                }
                _ => break,
            }
        }
        done
    }

    /// One byte host-to-card; false if the card takes no data.
    pub fn write_byte(&mut self, b: u8) -> bool {
        self.write_data(&[b]) == 1
    }

    /// Host-to-card data; returns the bytes taken. Each complete block is written to the
    /// image at once.
    pub fn write_data(&mut self, data: &[u8]) -> usize {
        let mut done = 0;
        while done < data.len() {
            match &mut self.xfer {
                Xfer::Sink { left } => {
                    let n = (*left).min(data.len() - done);
                    *left -= n;
                    done += n;
                    if *left == 0 {
                        self.xfer = Xfer::None;
                        self.state = State::Tran;
                    }
                }
                Xfer::Write {
                    buf,
                    pos,
                    block,
                    left,
                } => {
                    let n = (BLOCK - *pos).min(data.len() - done);
                    buf[*pos..*pos + n].copy_from_slice(&data[done..done + n]);
                    *pos += n;
                    done += n;
                    if *pos < BLOCK {
                        continue;
                    }
                    let at = *block;
                    if let Some(l) = left {
                        *l -= 1;
                    }
                    let more = left.is_none_or(|l| l > 0);
                    *pos = 0;
                    *block += 1;
                    let res = self.file.write_all_at(&buf[..], at * BLOCK as u64);
                    match res {
                        Ok(()) => {
                            self.dirty = true;
                            self.written_blocks = self.written_blocks.wrapping_add(1);
                        }
                        Err(e) => {
                            log::warn!("sd: writing block {at}: {e}");
                            self.status |= status::ERROR;
                        }
                    }
                    if !more {
                        self.xfer = Xfer::None;
                        self.state = State::Tran;
                        self.finish_stream();
                    } else if at + 1 >= self.blocks {
                        self.status |= status::OUT_OF_RANGE;
                        self.xfer = Xfer::None;
                        self.state = State::Tran;
                        self.finish_stream();
                    }
                }
                _ => break,
            }
        }
        done
    }
}

impl Drop for SdCard {
    fn drop(&mut self) {
        self.sync();
    }
}

/// CRC7 (polynomial x^7 + x^3 + 1) over `data`, as the card appends it to CID and CSD.
pub fn crc7(data: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &byte in data {
        for i in (0..8).rev() {
            let bit = (byte >> i) & 1;
            let top = (crc >> 6) & 1;
            crc = (crc << 1) & 0x7f;
            if bit ^ top != 0 {
                crc ^= 0x09;
            }
        }
    }
    crc
}

fn seal(mut r: [u8; 16]) -> [u8; 16] {
    r[15] = (crc7(&r[..15]) << 1) | 1;
    r
}

fn make_cid(serial: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x5a; // manufacturer ID
    c[1..3].copy_from_slice(b"AB"); // OEM ID
    c[3..8].copy_from_slice(b"ARMBD"); // product name
    c[8] = 0x10; // product revision 1.0
    c[9..13].copy_from_slice(&serial.to_be_bytes());
    // Manufacturing date: 2024-01 (year offset from 2000 in bits 19:12, month 11:8).
    let mdt: u16 = (24 << 4) | 1;
    c[13] = (mdt >> 8) as u8 & 0x0f;
    c[14] = mdt as u8;
    seal(c)
}

/// CSD version 2.0 with C_SIZE `c_size`.
fn make_csd(c_size: u64, readonly: bool) -> [u8; 16] {
    let mut bits: u128 = 0;
    let mut put = |hi: u32, width: u32, v: u64| {
        let lo = hi + 1 - width;
        bits |= ((v as u128) & ((1u128 << width) - 1)) << lo;
    };
    put(127, 2, 1); // CSD_STRUCTURE
    put(119, 8, 0x0e); // TAAC: 1 ms
    put(111, 8, 0); // NSAC
    put(103, 8, 0x32); // TRAN_SPEED 25 MHz
                       // Command classes 0, 2, 4, 5, 7, 8, 10; a read-only card has no write / erase.
    let ccc = if readonly { 0x585 } else { 0x5b5 };
    put(95, 12, ccc);
    put(83, 4, 9); // READ_BL_LEN
    put(69, 22, c_size);
    put(46, 1, 1); // ERASE_BLK_EN
    put(45, 7, 0x7f); // SECTOR_SIZE
    put(28, 3, 2); // R2W_FACTOR
    put(25, 4, 9); // WRITE_BL_LEN
    put(13, 1, readonly as u64); // PERM_WRITE_PROTECT
    seal(bits.to_be_bytes())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn image(name: &str, bytes: u64) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("armboard-sd-{}-{name}", std::process::id()));
        let f = File::create(&p).unwrap();
        f.set_len(bytes).unwrap();
        // A recognisable pattern in the first blocks: byte i of block b = b + i.
        let mut data = vec![0u8; 64 * BLOCK];
        for (i, d) in data.iter_mut().enumerate() {
            *d = ((i / BLOCK) as u8).wrapping_add(i as u8);
        }
        f.write_all_at(&data, 0).unwrap();
        p
    }

    fn bits(r: &[u8; 16], hi: u32, width: u32) -> u64 {
        let v = u128::from_be_bytes(*r);
        ((v >> (hi + 1 - width)) & ((1u128 << width) - 1)) as u64
    }

    /// The Linux init sequence up to the transfer state.
    pub(crate) fn init(card: &mut SdCard) -> u16 {
        assert_eq!(card.command(0, 0), None);
        assert_eq!(card.command(8, 0x1aa), Some(Response::R7(0x1aa)));
        assert!(card.command(55, 0).is_some());
        assert_eq!(card.command(41, 0), Some(Response::R3(OCR_VOLTAGES)));
        let mut polls = 0;
        loop {
            let r = card.command(55, 0).unwrap();
            assert_ne!(r.short() & status::APP_CMD, 0);
            let ocr = card.command(41, 0x4030_0000).unwrap().short();
            polls += 1;
            if ocr & OCR_BUSY_DONE != 0 {
                assert_ne!(ocr & OCR_CCS, 0);
                break;
            }
            assert!(polls < 5);
        }
        assert!(matches!(card.command(2, 0), Some(Response::R2(_))));
        let rca = (card.command(3, 0).unwrap().short() >> 16) as u16;
        assert_ne!(rca, 0);
        let arg = (rca as u32) << 16;
        assert!(matches!(card.command(9, arg), Some(Response::R2(_))));
        assert!(card.command(7, arg).unwrap().is_busy());
        assert_eq!(card.state(), State::Tran);
        rca
    }

    #[test]
    fn init_sequence_reaches_transfer_state_and_reports_capacity() {
        let p = image("init", 8 * 1024 * 1024);
        let mut card = SdCard::open(&p, false).unwrap();
        init(&mut card);
        let csd = card.csd();
        assert_eq!(bits(&csd, 127, 2), 1);
        assert_eq!((bits(&csd, 69, 22) + 1) * 512 * 1024, 8 * 1024 * 1024);
        assert_eq!(csd[15], (crc7(&csd[..15]) << 1) | 1);
        let st = card.command(13, (card.rca() as u32) << 16).unwrap().short();
        assert_eq!((st >> 9) & 0xf, State::Tran as u32);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn crc7_matches_the_spec_example() {
        // CMD0 with argument 0: 0x40 00 00 00 00 -> CRC7 0x4a.
        assert_eq!(crc7(&[0x40, 0, 0, 0, 0]), 0x4a);
        // CMD17 with argument 0: CRC7 0x2a.
        assert_eq!(crc7(&[0x51, 0, 0, 0, 0]), 0x2a);
    }

    #[test]
    fn odd_size_image_exposes_whole_512k_units() {
        let p = image("odd", 3 * 1024 * 1024 + 12345);
        let card = SdCard::open(&p, false).unwrap();
        assert_eq!(card.capacity(), 3 * 1024 * 1024);
        assert_eq!(bits(&card.csd(), 69, 22), 5);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn tiny_image_is_refused() {
        let p = image("tiny", 64 * 1024);
        let e = SdCard::open(&p, false).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn illegal_command_gets_no_answer_and_is_reported_next() {
        let p = image("illegal", 2 * 1024 * 1024);
        let mut card = SdCard::open(&p, false).unwrap();
        let rca = init(&mut card);
        assert_eq!(card.command(11, 0), None);
        assert_eq!(card.command(19, 0), None);
        let st = card.command(13, (rca as u32) << 16).unwrap().short();
        assert_ne!(st & status::ILLEGAL_COMMAND, 0);
        let st = card.command(13, (rca as u32) << 16).unwrap().short();
        assert_eq!(st & status::ILLEGAL_COMMAND, 0);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn multi_block_read_with_set_block_count_returns_to_tran() {
        let p = image("read", 2 * 1024 * 1024);
        let mut card = SdCard::open(&p, false).unwrap();
        init(&mut card);
        card.command(23, 3).unwrap();
        card.command(18, 2).unwrap();
        let mut buf = vec![0u8; 3 * BLOCK];
        assert_eq!(card.read_data(&mut buf), 3 * BLOCK);
        assert_eq!(buf[0], 2);
        assert_eq!(buf[BLOCK + 1], 4);
        assert!(!card.data_ready());
        assert_eq!(card.state(), State::Tran);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn out_of_range_read_is_flagged_without_data() {
        let p = image("oor", 2 * 1024 * 1024);
        let mut card = SdCard::open(&p, false).unwrap();
        init(&mut card);
        let st = card.command(17, 4096).unwrap().short();
        assert_ne!(st & status::OUT_OF_RANGE, 0);
        assert!(!card.data_ready());
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn write_goes_to_file_and_erase_zeroes() {
        let p = image("write", 2 * 1024 * 1024);
        let mut card = SdCard::open(&p, false).unwrap();
        init(&mut card);
        card.command(25, 10).unwrap();
        assert!(card.receiving());
        assert_eq!(card.write_data(&[0xab; 2 * BLOCK]), 2 * BLOCK);
        assert!(card.command(12, 0).unwrap().is_busy());
        let f = File::open(&p).unwrap();
        let mut b = [0u8; 2 * BLOCK];
        f.read_exact_at(&mut b, 10 * BLOCK as u64).unwrap();
        assert!(b.iter().all(|&x| x == 0xab));
        card.command(32, 10).unwrap();
        card.command(33, 10).unwrap();
        card.command(38, 0).unwrap();
        f.read_exact_at(&mut b, 10 * BLOCK as u64).unwrap();
        assert!(b[..BLOCK].iter().all(|&x| x == 0));
        assert!(b[BLOCK..].iter().all(|&x| x == 0xab));
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn readonly_card_refuses_writes_with_wp_violation() {
        let p = image("ro", 2 * 1024 * 1024);
        let mut card = SdCard::open(&p, true).unwrap();
        init(&mut card);
        assert_eq!(bits(&card.csd(), 13, 1), 1);
        let st = card.command(24, 0).unwrap().short();
        assert_ne!(st & status::WP_VIOLATION, 0);
        assert!(!card.receiving());
        assert_eq!(card.write_data(&[0; BLOCK]), 0);
        let f = File::open(&p).unwrap();
        let mut b = [0u8; 4];
        f.read_exact_at(&mut b, 0).unwrap();
        assert_eq!(b, [0, 1, 2, 3]);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn switch_function_queries_and_sets_high_speed() {
        let p = image("switch", 2 * 1024 * 1024);
        let mut card = SdCard::open(&p, false).unwrap();
        init(&mut card);
        card.command(6, 0x00ff_fff0).unwrap();
        let mut st = [0u8; 64];
        assert_eq!(card.read_data(&mut st), 64);
        assert_ne!(st[13] & 2, 0);
        assert!(!card.high_speed());
        card.command(6, 0x80ff_fff1).unwrap();
        assert_eq!(card.read_data(&mut st), 64);
        assert_eq!(st[16] & 0xf, 1);
        assert!(card.high_speed());
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn app_commands_return_sd_status_written_blocks_and_scr() {
        let p = image("acmd", 2 * 1024 * 1024);
        let mut card = SdCard::open(&p, false).unwrap();
        let rca = (init(&mut card) as u32) << 16;
        card.command(55, rca).unwrap();
        card.command(6, 2).unwrap();
        card.command(55, rca).unwrap();
        let r = card.command(13, 0).unwrap().short();
        assert_ne!(r & status::APP_CMD, 0);
        let mut ssr = [0u8; 64];
        assert_eq!(card.read_data(&mut ssr), 64);
        assert_eq!(ssr[0] >> 6, 2, "4-bit bus in the SD status");
        card.command(25, 0).unwrap();
        card.write_data(&[1; 3 * BLOCK]);
        card.command(12, 0).unwrap();
        card.command(55, rca).unwrap();
        card.command(22, 0).unwrap();
        let mut n = [0u8; 4];
        assert_eq!(card.read_data(&mut n), 4);
        assert_eq!(u32::from_be_bytes(n), 3);
        card.command(55, rca).unwrap();
        card.command(51, 0).unwrap();
        let mut scr = [0u8; 8];
        assert_eq!(card.read_data(&mut scr), 8);
        assert_eq!(scr[1] & 0x0f, 5, "1- and 4-bit buses");
        // Plain CMD13 again is the status, and CMD16 with a bad length is flagged.
        assert_eq!(card.command(13, rca).unwrap().short() & status::APP_CMD, 0);
        let st = card.command(16, 4096).unwrap().short();
        assert_ne!(st & status::BLOCK_LEN_ERROR, 0);
        assert_eq!(
            card.command(16, 512).unwrap().short() & status::BLOCK_LEN_ERROR,
            0
        );
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn every_command_and_argument_is_survived() {
        let p = image("fuzz", 2 * 1024 * 1024);
        let mut card = SdCard::open(&p, false).unwrap();
        let mut x = 0x1234_5678u32;
        for i in 0..20000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let cmd = (x % 64) as u8;
            let arg = if i % 3 == 0 { x } else { x & 0xffff };
            if cmd == 24 || cmd == 25 || cmd == 38 {
                continue; // keep the image intact for speed; writes are covered above
            }
            let _ = card.command(cmd, arg);
            let mut b = [0u8; 7];
            card.read_data(&mut b);
            card.write_data(&b);
        }
        std::fs::remove_file(p).unwrap();
    }
}
