//! The BCM2835 DMA controller, channels 0–14 (bus 0x7e007000, "brcm,bcm2835-dma"), as Linux's
//! `bcm2835-dma` driver uses it (memcpy, slave scatter-gather and cyclic transfers for the MMC
//! hosts, SPI, PWM and I2S).
//!
//! Each channel's registers sit at `channel * 0x100`: CS, CONBLK_AD, TI, SOURCE_AD, DEST_AD,
//! TXFR_LEN, STRIDE, NEXTCONBK, DEBUG; INT_STATUS (0xfe0) and ENABLE (0xff0) are shared.
//! Channel 15 lives elsewhere and is not part of this block.
//!
//! Transfers run synchronously: when CS is written with ACTIVE set and CONBLK_AD holds a
//! control block, the channel loads it (TI, source, destination, length, stride, next), moves
//! the data, sets END (and INT when TI.INTEN), and follows NEXTCONBK until it is 0; then
//! ACTIVE clears. DREQ pacing is honoured trivially (the peripheral is always ready, CS.DREQ
//! reads 1), WAIT_RESP, burst lengths, widths, PERMAP and wait cycles are accepted and have no
//! visible effect. Addresses are VideoCore bus addresses: 0x7e000000..0x7effffff goes to the
//! board's [`DmaPort`] one 32-bit word at a time, anything else is RAM (`addr & 0x3fffffff`,
//! the four bus aliases of ARM physical memory). A read outside both (control block or data)
//! stops the channel with CS.ERROR and DEBUG.READ_ERROR; a write outside both is dropped.
//!
//! Guests control lengths and chains, so one activation runs at most [`MAX_CBS_PER_RUN`]
//! control blocks and starts no new one after [`MAX_BYTES_PER_RUN`] bytes; a channel stopped
//! by these limits stays ACTIVE with CONBLK_AD at the next block, and the next write of ACTIVE
//! continues it (a cyclic chain advances once per write, as Linux's interrupt handler writes
//! INT | ACTIVE each period).
//!
//! Channels 7–14 are "lite" channels (DEBUG.LITE): 16-bit lengths and no 2D mode.

use armboard_bus::{Device, IrqLine, Ram};
use std::sync::Arc;

/// Size of the register frame (the DT's reg is 0xf00; INT_STATUS and ENABLE lie above it).
pub const SIZE: u64 = 0x1000;
/// Channels in this block.
pub const CHANNELS: usize = 15;
/// Control blocks run per activation at most.
pub const MAX_CBS_PER_RUN: usize = 1024;
/// No further control block is started in one activation after this many bytes.
pub const MAX_BYTES_PER_RUN: u64 = 64 << 20;

const INT_STATUS: u64 = 0xfe0;
const ENABLE: u64 = 0xff0;

// Channel registers.
const CS: u64 = 0x00;
const CONBLK_AD: u64 = 0x04;
const TI: u64 = 0x08;
const SOURCE_AD: u64 = 0x0c;
const DEST_AD: u64 = 0x10;
const TXFR_LEN: u64 = 0x14;
const STRIDE: u64 = 0x18;
const NEXTCONBK: u64 = 0x1c;
const DEBUG: u64 = 0x20;

// CS bits.
pub const CS_ACTIVE: u32 = 1 << 0;
pub const CS_END: u32 = 1 << 1;
pub const CS_INT: u32 = 1 << 2;
pub const CS_DREQ: u32 = 1 << 3;
pub const CS_PAUSED: u32 = 1 << 4;
pub const CS_WAITING_FOR_OUTSTANDING_WRITES: u32 = 1 << 6;
pub const CS_ERROR: u32 = 1 << 8;
pub const CS_ABORT: u32 = 1 << 30;
pub const CS_RESET: u32 = 1 << 31;
/// Stored CS bits: ACTIVE, PRIORITY, PANIC_PRIORITY, WAIT_FOR_OUTSTANDING_WRITES, DISDEBUG.
const CS_RW: u32 = 0x30ff_0001;

// TI bits.
pub const TI_INTEN: u32 = 1 << 0;
pub const TI_TDMODE: u32 = 1 << 1;
pub const TI_WAIT_RESP: u32 = 1 << 3;
pub const TI_DEST_INC: u32 = 1 << 4;
pub const TI_DEST_WIDTH: u32 = 1 << 5;
pub const TI_DEST_DREQ: u32 = 1 << 6;
pub const TI_DEST_IGNORE: u32 = 1 << 7;
pub const TI_SRC_INC: u32 = 1 << 8;
pub const TI_SRC_WIDTH: u32 = 1 << 9;
pub const TI_SRC_DREQ: u32 = 1 << 10;
pub const TI_SRC_IGNORE: u32 = 1 << 11;

// DEBUG bits.
pub const DEBUG_READ_LAST_NOT_SET_ERROR: u32 = 1 << 0;
pub const DEBUG_FIFO_ERROR: u32 = 1 << 1;
pub const DEBUG_READ_ERROR: u32 = 1 << 2;
const DEBUG_ERRORS: u32 = 0x7;
const DEBUG_VERSION: u32 = 2 << 25;
pub const DEBUG_LITE: u32 = 1 << 28;

/// The first lite channel.
const FIRST_LITE: usize = 7;

/// Peripheral bus addresses, reached through the board's port.
const PERIPH_BASE: u32 = 0x7e00_0000;
const PERIPH_END: u32 = 0x7eff_ffff;

/// RAM→RAM copies move at most this much at a time (bounds the staging buffer).
const COPY_CHUNK: usize = 1 << 20;

/// The board's side of DMA transfers to and from peripherals: 32-bit accesses at VideoCore bus
/// addresses 0x7e000000..0x7effffff. It is called while the DMA controller itself is being
/// accessed, so it must not go back through a lock the caller of the DMA's register accesses
/// holds.
pub trait DmaPort: Send {
    fn read(&mut self, bus_addr: u32) -> u32;
    fn write(&mut self, bus_addr: u32, value: u32);
}

/// A port with nothing behind it: reads 0, writes are dropped.
pub struct NoPort;

impl DmaPort for NoPort {
    fn read(&mut self, bus_addr: u32) -> u32 {
        log::debug!("dma: read of peripheral {bus_addr:#x} with no port");
        0
    }
    fn write(&mut self, bus_addr: u32, value: u32) {
        log::debug!("dma: write {value:#x} to peripheral {bus_addr:#x} with no port");
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Channel {
    cs: u32,
    conblk_ad: u32,
    ti: u32,
    source_ad: u32,
    dest_ad: u32,
    txfr_len: u32,
    stride: u32,
    nextconbk: u32,
    debug: u32,
}

/// Where a bus address goes.
enum Target {
    Ram(u64),
    Port(u32),
    None,
}

/// A read outside RAM and peripherals.
struct ReadError;

/// The DMA controller (channels 0–14).
pub struct Dma {
    ram: Arc<Ram>,
    irqs: Vec<IrqLine>,
    levels: Vec<bool>,
    port: Box<dyn DmaPort>,
    chans: [Channel; CHANNELS],
    enable: u32,
}

impl Dma {
    /// `irqs[i]` is channel `i`'s interrupt line. With fewer than 15 lines, the channels from
    /// `irqs.len() - 1` up share the last one (the DT's layout: GPU IRQs 16..=26 for channels
    /// 0..=10 and 27 shared by 11..=14, so the board passes 12 lines); a shared line is the OR
    /// of its channels' INT bits. With no lines the interrupts go nowhere.
    pub fn new(ram: Arc<Ram>, irqs: Vec<IrqLine>, port: Box<dyn DmaPort>) -> Dma {
        let levels = vec![false; irqs.len()];
        let mut d = Dma {
            ram,
            irqs,
            levels,
            port,
            chans: [Channel::default(); CHANNELS],
            enable: 0x7fff,
        };
        for c in 0..CHANNELS {
            d.reset_channel(c);
        }
        d
    }

    fn is_lite(c: usize) -> bool {
        c >= FIRST_LITE
    }

    fn reset_channel(&mut self, c: usize) {
        self.chans[c] = Channel::default();
    }

    fn line_of(&self, c: usize) -> Option<usize> {
        let n = self.irqs.len();
        (n > 0).then(|| c.min(n - 1))
    }

    fn update_irqs(&mut self) {
        for j in 0..self.irqs.len() {
            let level = (0..CHANNELS)
                .filter(|&c| self.line_of(c) == Some(j))
                .any(|c| self.chans[c].cs & CS_INT != 0);
            if level != self.levels[j] {
                self.levels[j] = level;
                self.irqs[j].set(level);
            }
        }
    }

    fn route(&self, bus: u32, len: u64) -> Target {
        if (PERIPH_BASE..=PERIPH_END).contains(&bus) {
            return Target::Port(bus);
        }
        let pa = (bus & 0x3fff_ffff) as u64;
        if self.ram.contains(pa, len) {
            Target::Ram(pa)
        } else {
            Target::None
        }
    }

    /// Reads `n` (1..=4) bytes at bus address `bus`.
    fn read_unit(&mut self, bus: u32, n: usize) -> Result<u32, ReadError> {
        match self.route(bus, n as u64) {
            Target::Port(a) => Ok(self.port.read(a)),
            Target::Ram(pa) => {
                let mut b = [0u8; 4];
                self.ram.read(pa, &mut b[..n]).map_err(|_| ReadError)?;
                Ok(u32::from_le_bytes(b))
            }
            Target::None => Err(ReadError),
        }
    }

    /// Writes the low `n` (1..=4) bytes of `v` at bus address `bus`.
    fn write_unit(&mut self, bus: u32, n: usize, v: u32) {
        match self.route(bus, n as u64) {
            Target::Port(a) => self.port.write(a, v),
            Target::Ram(pa) => {
                let _ = self.ram.write(pa, &v.to_le_bytes()[..n]);
            }
            Target::None => log::debug!("dma: write to {bus:#x} outside RAM dropped"),
        }
    }

    /// Moves one row of `len` bytes; returns the addresses after it.
    fn row(&mut self, ti: u32, src: u32, dst: u32, len: u32) -> Result<(u32, u32), ReadError> {
        let (s_inc, d_inc) = (ti & TI_SRC_INC != 0, ti & TI_DEST_INC != 0);
        let (s_ign, d_ign) = (ti & TI_SRC_IGNORE != 0, ti & TI_DEST_IGNORE != 0);
        let (mut src, mut dst) = (src, dst);
        let mut left = len as usize;
        if s_inc && d_inc && !s_ign && !d_ign {
            // Memory to memory: bulk copies while both ends are RAM.
            let mut buf = vec![0u8; left.min(COPY_CHUNK)];
            while left > 0 {
                let n = left.min(COPY_CHUNK);
                let (Target::Ram(s), Target::Ram(d)) =
                    (self.route(src, n as u64), self.route(dst, n as u64))
                else {
                    break;
                };
                self.ram.read(s, &mut buf[..n]).map_err(|_| ReadError)?;
                let _ = self.ram.write(d, &buf[..n]);
                src = src.wrapping_add(n as u32);
                dst = dst.wrapping_add(n as u32);
                left -= n;
            }
        }
        while left > 0 {
            let n = left.min(4);
            let v = if s_ign { 0 } else { self.read_unit(src, n)? };
            if !d_ign {
                self.write_unit(dst, n, v);
            }
            if s_inc {
                src = src.wrapping_add(n as u32);
            }
            if d_inc {
                dst = dst.wrapping_add(n as u32);
            }
            left -= n;
        }
        Ok((src, dst))
    }

    /// Runs channel `c` from its CONBLK_AD.
    fn run(&mut self, c: usize) {
        let mut bytes: u64 = 0;
        let mut cbs = 0;
        while self.chans[c].conblk_ad != 0 && self.enable & (1 << c) != 0 {
            if cbs >= MAX_CBS_PER_RUN || bytes >= MAX_BYTES_PER_RUN {
                log::debug!("dma{c}: activation limit reached, channel left active");
                self.update_irqs();
                return;
            }
            cbs += 1;
            let cb_bus = self.chans[c].conblk_ad;
            let mut cb = [0u8; 24];
            let loaded = match self.route(cb_bus, 32) {
                Target::Ram(pa) => self.ram.read(pa, &mut cb).is_ok(),
                _ => false,
            };
            if !loaded {
                log::debug!("dma{c}: control block at {cb_bus:#x} outside RAM");
                self.fail(c);
                return;
            }
            let w = |i: usize| {
                u32::from_le_bytes([cb[i * 4], cb[i * 4 + 1], cb[i * 4 + 2], cb[i * 4 + 3]])
            };
            let ch = &mut self.chans[c];
            ch.ti = w(0);
            ch.source_ad = w(1);
            ch.dest_ad = w(2);
            ch.txfr_len = w(3);
            ch.stride = w(4);
            ch.nextconbk = w(5) & !0x1f;
            let (ti, len, stride) = (ch.ti, ch.txfr_len, ch.stride);
            let lite = Self::is_lite(c);
            let (xlen, rows) = if ti & TI_TDMODE != 0 && !lite {
                // 2D: YLENGTH + 1 rows of XLENGTH bytes, strides added between rows.
                (len & 0xffff, ((len >> 16) & 0x3fff) + 1)
            } else if lite {
                (len & 0xffff, 1)
            } else {
                (len & 0x3fff_ffff, 1)
            };
            let (s_stride, d_stride) = (
                stride as u16 as i16 as i32,
                (stride >> 16) as u16 as i16 as i32,
            );
            let (mut src, mut dst) = (self.chans[c].source_ad, self.chans[c].dest_ad);
            for r in 0..rows {
                match self.row(ti, src, dst, xlen) {
                    Ok((s, d)) => (src, dst) = (s, d),
                    Err(ReadError) => {
                        log::debug!("dma{c}: read outside RAM in the block at {cb_bus:#x}");
                        self.chans[c].source_ad = src;
                        self.chans[c].dest_ad = dst;
                        self.fail(c);
                        return;
                    }
                }
                if r + 1 < rows {
                    src = src.wrapping_add_signed(s_stride);
                    dst = dst.wrapping_add_signed(d_stride);
                }
                bytes += xlen as u64;
            }
            let ch = &mut self.chans[c];
            ch.source_ad = src;
            ch.dest_ad = dst;
            ch.txfr_len = 0;
            ch.cs |= CS_END;
            if ti & TI_INTEN != 0 {
                ch.cs |= CS_INT;
            }
            ch.conblk_ad = ch.nextconbk;
        }
        if self.chans[c].conblk_ad == 0 {
            self.chans[c].cs &= !CS_ACTIVE;
        }
        self.update_irqs();
    }

    /// A read error: the channel stops with ERROR set.
    fn fail(&mut self, c: usize) {
        let ch = &mut self.chans[c];
        ch.debug |= DEBUG_READ_ERROR;
        ch.cs |= CS_ERROR;
        ch.cs &= !CS_ACTIVE;
        self.update_irqs();
    }

    fn write_cs(&mut self, c: usize, v: u32) {
        if v & CS_RESET != 0 {
            self.reset_channel(c);
        }
        let ch = &mut self.chans[c];
        // END and INT are write-1-to-clear.
        ch.cs &= !(v & (CS_END | CS_INT));
        ch.cs = (ch.cs & !CS_RW) | (v & CS_RW);
        // ABORT ends the current block; blocks always run to completion here, so there is
        // never one to abandon.
        self.update_irqs();
        if v & CS_ACTIVE != 0 && self.chans[c].conblk_ad != 0 {
            self.run(c);
        }
    }

    fn read_chan(&self, c: usize, reg: u64) -> u32 {
        let ch = &self.chans[c];
        match reg {
            CS => {
                let mut v = ch.cs | CS_DREQ;
                if ch.cs & CS_ACTIVE == 0 {
                    v |= CS_PAUSED;
                }
                v & !CS_WAITING_FOR_OUTSTANDING_WRITES
            }
            CONBLK_AD => ch.conblk_ad,
            TI => ch.ti,
            SOURCE_AD => ch.source_ad,
            DEST_AD => ch.dest_ad,
            TXFR_LEN => ch.txfr_len,
            STRIDE => ch.stride,
            NEXTCONBK => ch.nextconbk,
            DEBUG => {
                let lite = if Self::is_lite(c) { DEBUG_LITE } else { 0 };
                (ch.debug & DEBUG_ERRORS) | DEBUG_VERSION | lite
            }
            _ => {
                log::debug!("dma{c}: read of unknown register {reg:#x}");
                0
            }
        }
    }

    fn write_chan(&mut self, c: usize, reg: u64, v: u32) {
        match reg {
            CS => self.write_cs(c, v),
            // Control blocks are 256-bit aligned.
            CONBLK_AD => self.chans[c].conblk_ad = v & !0x1f,
            NEXTCONBK => self.chans[c].nextconbk = v & !0x1f,
            DEBUG => self.chans[c].debug &= !(v & DEBUG_ERRORS),
            TI | SOURCE_AD | DEST_AD | TXFR_LEN | STRIDE => {
                log::debug!("dma{c}: write to read-only register {reg:#x}")
            }
            _ => log::debug!("dma{c}: write {v:#x} to unknown register {reg:#x}"),
        }
    }

    fn int_status(&self) -> u32 {
        (0..CHANNELS)
            .filter(|&c| self.chans[c].cs & CS_INT != 0)
            .fold(0, |a, c| a | 1 << c)
    }
}

impl Device for Dma {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if size != 4 || !offset.is_multiple_of(4) {
            log::debug!("dma: bad read of size {size} at {offset:#x}");
            return 0;
        }
        let v = match offset {
            INT_STATUS => self.int_status(),
            ENABLE => self.enable,
            o if o < (CHANNELS as u64) << 8 => self.read_chan((o >> 8) as usize, o & 0xff),
            _ => {
                log::debug!("dma: read of unknown offset {offset:#x}");
                0
            }
        };
        v as u64
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if size != 4 || !offset.is_multiple_of(4) {
            log::debug!("dma: bad write of size {size} at {offset:#x}");
            return;
        }
        let v = value as u32;
        match offset {
            INT_STATUS => log::debug!("dma: write to read-only INT_STATUS"),
            ENABLE => {
                let newly = v & !self.enable;
                self.enable = v & 0xffff;
                // A channel activated while disabled starts when it is enabled.
                for c in 0..CHANNELS {
                    let ch = &self.chans[c];
                    if newly & (1 << c) != 0 && ch.cs & CS_ACTIVE != 0 && ch.conblk_ad != 0 {
                        self.run(c);
                    }
                }
            }
            o if o < (CHANNELS as u64) << 8 => self.write_chan((o >> 8) as usize, o & 0xff, v),
            _ => log::debug!("dma: write {v:#x} to unknown offset {offset:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use armboard_bus::IrqSink;
    use std::sync::Mutex;

    /// Records line levels.
    struct Lines(Mutex<Vec<bool>>);
    impl IrqSink for Lines {
        fn set_level(&self, line: u32, level: bool) {
            self.0.lock().unwrap()[line as usize] = level;
        }
    }

    /// A peripheral FIFO: writes are logged, reads count up.
    #[derive(Default)]
    struct Fifo {
        writes: Vec<(u32, u32)>,
        next: u32,
    }
    struct TestPort(Arc<Mutex<Fifo>>);
    impl DmaPort for TestPort {
        fn read(&mut self, _a: u32) -> u32 {
            let mut f = self.0.lock().unwrap();
            f.next += 1;
            f.next
        }
        fn write(&mut self, a: u32, v: u32) {
            self.0.lock().unwrap().writes.push((a, v));
        }
    }

    struct Rig {
        ram: Arc<Ram>,
        lines: Arc<Lines>,
        fifo: Arc<Mutex<Fifo>>,
        dma: Dma,
    }

    fn rig() -> Rig {
        let ram = Arc::new(Ram::new(0, 0x20_0000).unwrap());
        let lines = Arc::new(Lines(Mutex::new(vec![false; 12])));
        let irqs = (0..12)
            .map(|i| IrqLine::new(lines.clone(), i))
            .collect::<Vec<_>>();
        let fifo = Arc::new(Mutex::new(Fifo::default()));
        let dma = Dma::new(ram.clone(), irqs, Box::new(TestPort(fifo.clone())));
        Rig {
            ram,
            lines,
            fifo,
            dma,
        }
    }

    /// Bus address of ARM physical `pa` as Linux's dma-ranges give it.
    fn bus(pa: u64) -> u32 {
        0xc000_0000 | pa as u32
    }

    fn put_cb(ram: &Ram, at: u64, cb: [u32; 6]) {
        for (i, w) in cb.iter().enumerate() {
            ram.store(at + i as u64 * 4, 4, *w as u64).unwrap();
        }
    }

    fn chan(c: u64, reg: u64) -> u64 {
        (c << 8) | reg
    }

    /// What bcm2835_dma_start_desc does.
    fn start(dma: &mut Dma, c: u64, cb: u64) {
        dma.write(chan(c, CONBLK_AD), 4, bus(cb) as u64);
        dma.write(chan(c, CS), 4, CS_ACTIVE as u64);
    }

    #[test]
    fn linux_memcpy_chain_completes_with_interrupt() {
        let Rig {
            ram,
            lines,
            mut dma,
            ..
        } = rig();
        let src: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        ram.write(0x1_0000, &src).unwrap();
        // bcm2835_dma_prep_dma_memcpy split into two frames; INTEN | WAIT_RESP on the last.
        let info = TI_SRC_INC | TI_DEST_INC;
        put_cb(
            &ram,
            0x1000,
            [info, bus(0x1_0000), bus(0x2_0000), 2000, 0, bus(0x1020)],
        );
        put_cb(
            &ram,
            0x1020,
            [
                info | TI_INTEN | TI_WAIT_RESP,
                bus(0x1_0000 + 2000),
                bus(0x2_0000 + 2000),
                1000,
                0,
                0,
            ],
        );
        start(&mut dma, 2, 0x1000);
        let mut out = vec![0u8; 3000];
        ram.read(0x2_0000, &mut out).unwrap();
        assert_eq!(out, src);
        let cs = dma.read(chan(2, CS), 4) as u32;
        assert_eq!(cs & (CS_ACTIVE | CS_END | CS_INT), CS_END | CS_INT);
        assert_eq!(dma.read(chan(2, CONBLK_AD), 4), 0, "idle: CONBLK_AD is 0");
        assert_eq!(dma.read(chan(2, SOURCE_AD), 4) as u32, bus(0x1_0000 + 3000));
        assert_eq!(dma.read(INT_STATUS, 4), 1 << 2);
        assert!(lines.0.lock().unwrap()[2]);
        // The interrupt handler: INT | ACTIVE clears INT and leaves the idle channel idle.
        dma.write(chan(2, CS), 4, (CS_INT | CS_ACTIVE) as u64);
        assert!(!lines.0.lock().unwrap()[2]);
        assert_eq!(dma.read(INT_STATUS, 4), 0);
        assert_eq!(dma.read(chan(2, CONBLK_AD), 4), 0);
    }

    #[test]
    fn two_d_transfer_uses_ylength_plus_one_rows_and_strides() {
        let Rig { ram, mut dma, .. } = rig();
        // A 4x3 block of 8-byte rows out of a 32-byte-pitch source into a 16-byte pitch.
        for i in 0..128u64 {
            ram.store(0x3_0000 + i, 1, i).unwrap();
        }
        let info = TI_TDMODE | TI_SRC_INC | TI_DEST_INC | TI_INTEN;
        let len = (2 << 16) | 8; // YLENGTH 2: three rows
        let stride = ((16 - 8) << 16) | (32 - 8);
        put_cb(
            &ram,
            0x1000,
            [info, bus(0x3_0000), bus(0x4_0000), len, stride, 0],
        );
        start(&mut dma, 0, 0x1000);
        for row in 0..3u64 {
            let mut b = [0u8; 16];
            ram.read(0x4_0000 + row * 16, &mut b).unwrap();
            let want: Vec<u8> = (0..8).map(|i| (row * 32 + i) as u8).collect();
            assert_eq!(&b[..8], &want[..], "row {row}");
            assert_eq!(&b[8..], &[0; 8], "gap untouched");
        }
        assert_eq!(ram.load(0x4_0000 + 48, 1).unwrap(), 0, "no fourth row");
    }

    #[test]
    fn dreq_paced_transfers_go_through_the_port() {
        let Rig {
            ram, fifo, mut dma, ..
        } = rig();
        // MEM_TO_DEV as prep_slave_sg builds it: D_DREQ, S_INC, PERMAP, fixed FIFO address.
        for i in 0..4u64 {
            ram.store(0x5_0000 + i * 4, 4, 0x1000 + i).unwrap();
        }
        let info = TI_WAIT_RESP | TI_DEST_DREQ | TI_SRC_INC | (13 << 16) | TI_INTEN;
        put_cb(&ram, 0x1000, [info, bus(0x5_0000), 0x7e20_2040, 16, 0, 0]);
        start(&mut dma, 4, 0x1000);
        let w = fifo.lock().unwrap().writes.clone();
        assert_eq!(
            w,
            (0..4)
                .map(|i| (0x7e20_2040, 0x1000 + i))
                .collect::<Vec<_>>()
        );
        // DEV_TO_MEM: S_DREQ, D_INC.
        let info = TI_SRC_DREQ | TI_DEST_INC | TI_INTEN;
        put_cb(&ram, 0x1020, [info, 0x7e20_2040, bus(0x6_0000), 12, 0, 0]);
        start(&mut dma, 4, 0x1020);
        for i in 0..3u64 {
            assert_eq!(ram.load(0x6_0000 + i * 4, 4).unwrap(), i + 1);
        }
        // SRC_IGNORE writes zeros without reading memory; DEST_IGNORE writes nothing.
        put_cb(
            &ram,
            0x1040,
            [
                TI_SRC_IGNORE | TI_DEST_INC,
                0xdead_0000,
                bus(0x6_0000),
                8,
                0,
                bus(0x1060),
            ],
        );
        put_cb(
            &ram,
            0x1060,
            [
                TI_DEST_IGNORE | TI_SRC_INC,
                bus(0x5_0000),
                bus(0x7_0000),
                8,
                0,
                0,
            ],
        );
        ram.store(0x7_0000, 4, 0x55).unwrap();
        start(&mut dma, 4, 0x1040);
        assert_eq!(ram.load(0x6_0000, 8).unwrap(), 0);
        assert_eq!(ram.load(0x7_0000, 4).unwrap(), 0x55);
        assert_eq!(dma.read(chan(4, CS), 4) as u32 & CS_ERROR, 0);
    }

    #[test]
    fn shared_interrupt_line_is_the_or_of_its_channels() {
        let Rig {
            ram,
            lines,
            mut dma,
            ..
        } = rig();
        put_cb(
            &ram,
            0x1000,
            [
                TI_INTEN | TI_SRC_INC | TI_DEST_INC,
                bus(0x100),
                bus(0x200),
                4,
                0,
                0,
            ],
        );
        start(&mut dma, 11, 0x1000);
        start(&mut dma, 13, 0x1000);
        assert!(lines.0.lock().unwrap()[11]);
        dma.write(chan(11, CS), 4, CS_INT as u64);
        assert!(lines.0.lock().unwrap()[11], "channel 13 still pending");
        dma.write(chan(13, CS), 4, CS_INT as u64);
        assert!(!lines.0.lock().unwrap()[11]);
    }

    #[test]
    fn lite_channels_and_reset() {
        let Rig { ram, mut dma, .. } = rig();
        assert_ne!(dma.read(chan(8, DEBUG), 4) as u32 & DEBUG_LITE, 0);
        assert_eq!(dma.read(chan(6, DEBUG), 4) as u32 & DEBUG_LITE, 0);
        // A lite channel takes 16 bits of length.
        put_cb(
            &ram,
            0x1000,
            [
                TI_SRC_INC | TI_DEST_INC,
                bus(0x8_0000),
                bus(0x9_0000),
                0x1_0008,
                0,
                0,
            ],
        );
        ram.store(0x8_0000 + 8, 4, 0x77).unwrap();
        start(&mut dma, 8, 0x1000);
        assert_eq!(ram.load(0x9_0000 + 8, 4).unwrap(), 0);
        // bcm2835_dma_abort: pause, wait for writes, reset.
        dma.write(chan(8, CS), 4, 0);
        assert_eq!(
            dma.read(chan(8, CS), 4) as u32 & CS_WAITING_FOR_OUTSTANDING_WRITES,
            0
        );
        dma.write(chan(8, CS), 4, CS_RESET as u64);
        assert_eq!(dma.read(chan(8, CS), 4) as u32 & (CS_END | CS_ACTIVE), 0);
        assert_eq!(dma.read(chan(8, CONBLK_AD), 4), 0);
    }

    #[test]
    fn looping_chains_and_bad_addresses_are_bounded() {
        let Rig {
            ram, fifo, mut dma, ..
        } = rig();
        // A cyclic chain of two blocks: each activation runs a bounded number of blocks.
        let info = TI_SRC_INC | TI_DEST_DREQ | TI_INTEN;
        put_cb(
            &ram,
            0x1000,
            [info, bus(0x100), 0x7e20_c018, 4, 0, bus(0x1020)],
        );
        put_cb(
            &ram,
            0x1020,
            [info, bus(0x104), 0x7e20_c018, 4, 0, bus(0x1000)],
        );
        start(&mut dma, 1, 0x1000);
        assert_eq!(fifo.lock().unwrap().writes.len(), MAX_CBS_PER_RUN);
        let cs = dma.read(chan(1, CS), 4) as u32;
        assert_ne!(cs & CS_ACTIVE, 0, "still active");
        dma.write(chan(1, CS), 4, (CS_INT | CS_ACTIVE) as u64);
        assert_eq!(fifo.lock().unwrap().writes.len(), 2 * MAX_CBS_PER_RUN);
        dma.write(chan(1, CS), 4, CS_RESET as u64);

        // A huge memcpy: one block runs, the next is not started in the same activation.
        let huge = TI_SRC_INC | TI_DEST_INC;
        put_cb(
            &ram,
            0x1040,
            [huge, bus(0x0), bus(0x10_0000), 0x10_0000, 0, bus(0x1040)],
        );
        start(&mut dma, 0, 0x1040);
        assert_ne!(
            dma.read(chan(0, CS), 4) as u32 & CS_ACTIVE,
            0,
            "stopped by the byte budget"
        );
        assert_eq!(dma.read(chan(0, CONBLK_AD), 4) as u32, bus(0x1040));
        // Reads outside RAM stop the channel with an error.
        put_cb(
            &ram,
            0x1060,
            [TI_SRC_INC, 0x3000_0000, bus(0x100), 64, 0, 0],
        );
        start(&mut dma, 3, 0x1060);
        assert_ne!(dma.read(chan(3, CS), 4) as u32 & CS_ERROR, 0);
        assert_ne!(dma.read(chan(3, DEBUG), 4) as u32 & DEBUG_READ_ERROR, 0);
        assert_eq!(dma.read(chan(3, CS), 4) as u32 & CS_ACTIVE, 0);
        // A control block outside RAM.
        dma.write(chan(5, CONBLK_AD), 4, 0x3fff_ffe0);
        dma.write(chan(5, CS), 4, CS_ACTIVE as u64);
        assert_ne!(dma.read(chan(5, CS), 4) as u32 & CS_ERROR, 0);
        // A write running off the end of RAM is dropped; 2D with negative strides wraps.
        put_cb(
            &ram,
            0x1080,
            [
                TI_TDMODE | TI_SRC_INC | TI_DEST_INC,
                bus(0),
                bus(0x1f_fff0),
                0x3fff_0040,
                0x8000_8000,
                0,
            ],
        );
        start(&mut dma, 6, 0x1080);
        // Disabled channels do not run.
        dma.write(ENABLE, 4, 0);
        put_cb(&ram, 0x10a0, [TI_INTEN, 0, 0, 4, 0, 0]);
        start(&mut dma, 2, 0x10a0);
        assert_eq!(dma.read(chan(2, CS), 4) as u32 & CS_END, 0);
        dma.write(ENABLE, 4, 0x7fff);
        assert_ne!(
            dma.read(chan(2, CS), 4) as u32 & CS_END,
            0,
            "runs once enabled"
        );
        // Odd accesses.
        assert_eq!(dma.read(0xf00, 4), 0);
        assert_eq!(dma.read(0x1, 4), 0);
        assert_eq!(dma.read(0x0, 2), 0);
        dma.write(0x1_0000, 4, 1);
        dma.write(chan(0, TI), 4, 1);
    }
}
