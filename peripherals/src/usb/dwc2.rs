//! Synopsys DesignWare USB 2.0 OTG controller ("DWC2", the BCM2835's USB block) in host mode,
//! as Linux's dwc2 driver runs it there: buffer DMA (each host channel moves a whole transfer
//! between RAM and a device, then halts and interrupts), the root port (power, connect, reset,
//! enable), the frame counter and SOF interrupt. Device mode and the slave (FIFO) mode are not
//! modelled. The hardware configuration registers read what a BCM2835 reports.
//!
//! Transfers run when the driver enables a channel; a bulk or control IN the device NAKs
//! stays active and is retried as a real core does (when the device may have data: after any
//! other transfer and on [`Dwc2::poll`]), an interrupt-endpoint NAK halts the channel.

use super::{Reply, Token, UsbDevice};
use armboard_bus::{IrqLine, Ram};
use std::sync::Arc;

/// The register block's size.
pub const SIZE: u64 = 0x1_0000;
/// Host channels (GHWCFG2 says 8).
pub const CHANNELS: usize = 8;

/// Nanoseconds of guest time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Register offsets.
pub mod reg {
    pub const GOTGCTL: u64 = 0x000;
    pub const GOTGINT: u64 = 0x004;
    pub const GAHBCFG: u64 = 0x008;
    pub const GUSBCFG: u64 = 0x00c;
    pub const GRSTCTL: u64 = 0x010;
    pub const GINTSTS: u64 = 0x014;
    pub const GINTMSK: u64 = 0x018;
    pub const GRXSTSR: u64 = 0x01c;
    pub const GRXSTSP: u64 = 0x020;
    pub const GRXFSIZ: u64 = 0x024;
    pub const GNPTXFSIZ: u64 = 0x028;
    pub const GNPTXSTS: u64 = 0x02c;
    pub const GI2CCTL: u64 = 0x030;
    pub const GPVNDCTL: u64 = 0x034;
    pub const GGPIO: u64 = 0x038;
    pub const GUID: u64 = 0x03c;
    pub const GSNPSID: u64 = 0x040;
    pub const GHWCFG1: u64 = 0x044;
    pub const GHWCFG2: u64 = 0x048;
    pub const GHWCFG3: u64 = 0x04c;
    pub const GHWCFG4: u64 = 0x050;
    pub const GLPMCFG: u64 = 0x054;
    pub const GPWRDN: u64 = 0x058;
    pub const GDFIFOCFG: u64 = 0x05c;
    pub const HPTXFSIZ: u64 = 0x100;
    pub const HCFG: u64 = 0x400;
    pub const HFIR: u64 = 0x404;
    pub const HFNUM: u64 = 0x408;
    pub const HPTXSTS: u64 = 0x410;
    pub const HAINT: u64 = 0x414;
    pub const HAINTMSK: u64 = 0x418;
    pub const HPRT0: u64 = 0x440;
    /// Channel n's registers are at HC_BASE + 0x20 * n.
    pub const HC_BASE: u64 = 0x500;
    pub const HCCHAR: u64 = 0x00;
    pub const HCSPLT: u64 = 0x04;
    pub const HCINT: u64 = 0x08;
    pub const HCINTMSK: u64 = 0x0c;
    pub const HCTSIZ: u64 = 0x10;
    pub const HCDMA: u64 = 0x14;
    pub const HCDMAB: u64 = 0x1c;
    pub const PCGCTL: u64 = 0xe00;
}

/// What a BCM2835 reports: core 2.80a, 8 host channels, internal DMA, 4080-word FIFO.
pub const GSNPSID: u32 = 0x4f54_280a;
pub const GHWCFG1: u32 = 0x0000_0000;
pub const GHWCFG2: u32 = 0x228d_dd50;
pub const GHWCFG3: u32 = 0x0ff0_00e8;
pub const GHWCFG4: u32 = 0x1ff0_0020;

/// GINTSTS bits.
pub mod gint {
    pub const CURMODE_HOST: u32 = 1 << 0;
    pub const SOF: u32 = 1 << 3;
    pub const NPTXFEMP: u32 = 1 << 5;
    pub const PRTINT: u32 = 1 << 24;
    pub const HCHINT: u32 = 1 << 25;
    pub const PTXFEMP: u32 = 1 << 26;
    pub const DISCONNINT: u32 = 1 << 29;
    /// The bits software clears by writing 1 (the rest are read-only summaries).
    pub const W1C: u32 = 0xf0f0_fc0a;
}

/// HPRT0 bits.
pub mod hprt {
    pub const CONNSTS: u32 = 1 << 0;
    pub const CONNDET: u32 = 1 << 1;
    pub const ENA: u32 = 1 << 2;
    pub const ENACHG: u32 = 1 << 3;
    pub const OVRCURRCHG: u32 = 1 << 5;
    pub const RES: u32 = 1 << 6;
    pub const SUSP: u32 = 1 << 7;
    pub const RST: u32 = 1 << 8;
    pub const PWR: u32 = 1 << 12;
    pub const TSTCTL: u32 = 0xf << 13;
    /// Speed, bits 18:17: 0 high, 1 full, 2 low.
    pub const SPD_FULL: u32 = 1 << 17;
    pub const CHANGES: u32 = CONNDET | ENACHG | OVRCURRCHG;
}

/// HCCHAR bits.
pub mod hcchar {
    pub const EPDIR_IN: u32 = 1 << 15;
    pub const CHDIS: u32 = 1 << 30;
    pub const CHENA: u32 = 1 << 31;
}

/// HCINT bits.
pub mod hcint {
    pub const XFERCOMPL: u32 = 1 << 0;
    pub const CHHLTD: u32 = 1 << 1;
    pub const STALL: u32 = 1 << 3;
    pub const NAK: u32 = 1 << 4;
    pub const ACK: u32 = 1 << 5;
    pub const XACTERR: u32 = 1 << 7;
}

const GUSBCFG_FORCEHOSTMODE: u32 = 1 << 29;
const GUSBCFG_FORCEDEVMODE: u32 = 1 << 30;
const GRSTCTL_CSFTRST: u32 = 1 << 0;
const GRSTCTL_AHBIDLE: u32 = 1 << 31;
const GAHBCFG_GLBLINTRMSK: u32 = 1 << 0;
const GOTGCTL_ASESVLD: u32 = 1 << 18;
const PID_DATA0: u32 = 0;
const PID_DATA1: u32 = 2;
const PID_SETUP: u32 = 3;
/// A high-speed microframe.
const UFRAME_NS: u64 = 125_000;
/// SOF interrupts are raised at most once per this many microframes (a full frame): Linux
/// only needs them to start periodic transfers, and one every 125 us would swamp the guest.
const SOF_EVERY: u64 = 8;
/// The largest transfer a channel does (GHWCFG3: 19-bit transfer size).
const MAX_XFER: usize = 0x7_ffff;

#[derive(Clone, Copy, Default)]
struct Channel {
    hcchar: u32,
    hcsplt: u32,
    hcint: u32,
    hcintmsk: u32,
    hctsiz: u32,
    hcdma: u32,
    /// Enabled, NAKed, waiting to be retried.
    waiting: bool,
}

pub struct Dwc2 {
    ram: Arc<Ram>,
    irq: IrqLine,
    clock: Clock,
    /// The device on the root port.
    root: Option<Box<dyn UsbDevice>>,
    gotgctl: u32,
    gotgint: u32,
    gahbcfg: u32,
    gusbcfg: u32,
    /// Latched GINTSTS bits (the W1C ones).
    gintsts: u32,
    gintmsk: u32,
    grxfsiz: u32,
    gnptxfsiz: u32,
    gi2cctl: u32,
    gpvndctl: u32,
    ggpio: u32,
    guid: u32,
    glpmcfg: u32,
    gpwrdn: u32,
    gdfifocfg: u32,
    hptxfsiz: u32,
    hcfg: u32,
    hfir: u32,
    haintmsk: u32,
    hprt: u32,
    pcgctl: u32,
    ch: [Channel; CHANNELS],
    /// When the port was enabled: microframe 0.
    frame_base: u64,
    /// The microframe of the last SOF interrupt.
    last_sof: u64,
    warned_slave: bool,
}

impl Dwc2 {
    /// A controller reaching RAM (at bus addresses 0xc0000000 + physical, as the Pi's DMA
    /// masters do; the top two address bits are ignored) with `root` on its port.
    pub fn new(
        ram: Arc<Ram>,
        irq: IrqLine,
        clock: Clock,
        root: Option<Box<dyn UsbDevice>>,
    ) -> Self {
        Dwc2 {
            ram,
            irq,
            clock,
            root,
            gotgctl: GOTGCTL_ASESVLD,
            gotgint: 0,
            gahbcfg: 0,
            gusbcfg: 0x0000_1400,
            gintsts: 0,
            gintmsk: 0,
            grxfsiz: 0x1000,
            gnptxfsiz: 0x0100_1000,
            gi2cctl: 0,
            gpvndctl: 0,
            ggpio: 0,
            guid: 0,
            glpmcfg: 0,
            gpwrdn: 0,
            gdfifocfg: 0,
            hptxfsiz: 0x0200_2000,
            hcfg: 0,
            hfir: 7500,
            haintmsk: 0,
            hprt: 0,
            pcgctl: 0,
            ch: [Channel::default(); CHANNELS],
            frame_base: 0,
            last_sof: 0,
            warned_slave: false,
        }
    }

    fn host_mode(&self) -> bool {
        self.gusbcfg & GUSBCFG_FORCEDEVMODE == 0 || self.gusbcfg & GUSBCFG_FORCEHOSTMODE != 0
    }

    fn uframe(&self) -> u64 {
        if self.hprt & hprt::ENA == 0 {
            return 0;
        }
        (self.clock)().saturating_sub(self.frame_base) / UFRAME_NS
    }

    fn hfnum(&self) -> u32 {
        if self.hprt & hprt::ENA == 0 {
            return 0x3fff;
        }
        let t = (self.clock)().saturating_sub(self.frame_base);
        let frame = (t / UFRAME_NS) as u32 & 0x3fff;
        let frint = u64::from(self.hfir & 0xffff);
        let rem = frint - (t % UFRAME_NS) * frint / UFRAME_NS;
        ((rem as u32 & 0xffff) << 16) | frame
    }

    fn haint(&self) -> u32 {
        let mut v = 0;
        for (i, c) in self.ch.iter().enumerate() {
            if c.hcint & c.hcintmsk != 0 {
                v |= 1 << i;
            }
        }
        v
    }

    fn gintsts(&self) -> u32 {
        let mut v = self.gintsts | gint::NPTXFEMP | gint::PTXFEMP;
        if self.host_mode() {
            v |= gint::CURMODE_HOST;
        }
        if self.hprt & hprt::CHANGES != 0 {
            v |= gint::PRTINT;
        }
        if self.haint() & self.haintmsk != 0 {
            v |= gint::HCHINT;
        }
        v
    }

    fn update(&mut self) {
        let on = self.gahbcfg & GAHBCFG_GLBLINTRMSK != 0 && self.gintsts() & self.gintmsk != 0;
        self.irq.set(on);
    }

    /// Time passes: SOF interrupts and retrying NAKed transfers. Call it often (every
    /// millisecond or so).
    pub fn poll(&mut self) {
        if self.hprt & hprt::ENA != 0 {
            let f = self.uframe();
            if f >= self.last_sof + SOF_EVERY {
                self.last_sof = f;
                self.gintsts |= gint::SOF;
            }
        }
        self.retry_waiting();
        self.update();
    }

    /// The device on the root port.
    pub fn root_mut(&mut self) -> Option<&mut (dyn UsbDevice + 'static)> {
        self.root.as_deref_mut()
    }

    fn write_hprt(&mut self, v: u32) {
        let old = self.hprt;
        let mut p = old & !(v & hprt::CHANGES);
        // Writing 1 to the enable bit disables the port.
        if v & hprt::ENA != 0 && p & hprt::ENA != 0 {
            p &= !hprt::ENA;
            p |= hprt::ENACHG;
        }
        if v & hprt::PWR != 0 && old & hprt::PWR == 0 {
            p |= hprt::PWR;
            if self.root.is_some() {
                p |= hprt::CONNSTS | hprt::CONNDET;
            }
        } else if v & hprt::PWR == 0 && old & hprt::PWR != 0 {
            if p & hprt::CONNSTS != 0 {
                self.gintsts |= gint::DISCONNINT;
            }
            p &= !(hprt::PWR | hprt::CONNSTS | hprt::ENA | hprt::RST | hprt::SUSP);
        }
        if v & hprt::RST != 0 && p & hprt::PWR != 0 {
            if old & hprt::RST == 0 {
                if let Some(d) = &mut self.root {
                    d.bus_reset();
                }
            }
            p |= hprt::RST;
            p &= !(hprt::ENA | hprt::SUSP);
        } else if old & hprt::RST != 0 {
            p &= !hprt::RST;
            if p & hprt::CONNSTS != 0 {
                let fs = self.root.as_ref().is_some_and(|d| !d.high_speed());
                p = (p & !(3 << 17)) | if fs { hprt::SPD_FULL } else { 0 };
                p |= hprt::ENA | hprt::ENACHG;
                self.frame_base = (self.clock)();
                self.last_sof = 0;
            }
        }
        p = (p & !(hprt::SUSP | hprt::RES | hprt::TSTCTL))
            | (v & (hprt::TSTCTL | hprt::RES))
            | if v & hprt::SUSP != 0 && p & hprt::ENA != 0 {
                hprt::SUSP
            } else {
                0
            };
        // Resume ends the suspend when the driver clears the resume bit.
        if old & hprt::RES != 0 && v & hprt::RES == 0 {
            p &= !hprt::SUSP;
        } else if old & hprt::SUSP != 0 && v & hprt::RES == 0 {
            p |= old & hprt::SUSP;
        }
        self.hprt = p;
    }

    fn soft_reset(&mut self) {
        for c in &mut self.ch {
            *c = Channel::default();
        }
        self.gintsts = 0;
        self.haintmsk = 0;
    }

    fn write_hcchar(&mut self, n: usize, v: u32) {
        let c = &mut self.ch[n];
        if v & hcchar::CHDIS != 0 {
            // Halt: an active channel stops, an idle one reports itself halted.
            c.hcchar = v & !(hcchar::CHENA | hcchar::CHDIS);
            c.waiting = false;
            if v & hcchar::CHENA != 0 || c.hcchar & hcchar::CHENA != 0 {
                c.hcint |= hcint::CHHLTD;
            }
            return;
        }
        let was_on = c.hcchar & hcchar::CHENA != 0;
        c.hcchar = v;
        if v & hcchar::CHENA != 0 && !was_on {
            if self.gahbcfg & (1 << 5) == 0 && !self.warned_slave {
                self.warned_slave = true;
                log::warn!("dwc2: a transfer without DMA enabled (slave mode is not modelled)");
            }
            self.run(n);
            self.retry_waiting();
        }
    }

    fn retry_waiting(&mut self) {
        for n in 0..CHANNELS {
            if self.ch[n].waiting && self.ch[n].hcchar & hcchar::CHENA != 0 {
                self.run(n);
            }
        }
    }

    /// Runs channel `n`'s transfer: completes or halts it, or leaves it waiting.
    fn run(&mut self, n: usize) {
        let c = self.ch[n];
        let ch = c.hcchar;
        let mps = (ch & 0x7ff).max(1) as usize;
        let ep = ((ch >> 11) & 0xf) as u8;
        let is_in = ch & hcchar::EPDIR_IN != 0;
        let periodic = (ch >> 18) & 1 == 1; // isochronous (1) or interrupt (3)
        let addr = ((ch >> 22) & 0x7f) as u8;
        let size = ((c.hctsiz & 0x7_ffff) as usize).min(MAX_XFER);
        let pid = (c.hctsiz >> 29) & 3;
        let dma = u64::from(c.hcdma & 0x3fff_ffff);
        let token = if pid == PID_SETUP {
            Token::Setup
        } else if is_in {
            Token::In
        } else {
            Token::Out
        };
        let port_up = self.hprt & hprt::ENA != 0 && self.hprt & hprt::SUSP == 0;
        let dev = if port_up {
            self.root.as_mut().and_then(|r| r.find(addr))
        } else {
            None
        };
        let Some(dev) = dev else {
            self.halt(n, hcint::XACTERR);
            return;
        };
        let mut out = Vec::new();
        if token != Token::In {
            out.resize(size, 0);
            if self.ram.read(dma, &mut out).is_err() {
                log::debug!("dwc2: channel {n} reads outside RAM at {dma:#x}");
                self.halt(n, hcint::XACTERR);
                return;
            }
        }
        match dev.transfer(ep, token, &out, size) {
            Reply::Ack => self.complete(n, size, mps, false),
            Reply::Data(mut v) => {
                v.truncate(size);
                if self.ram.write(dma, &v).is_err() {
                    log::debug!("dwc2: channel {n} writes outside RAM at {dma:#x}");
                    self.halt(n, hcint::XACTERR);
                    return;
                }
                self.complete(n, v.len(), mps, true);
            }
            Reply::Nak if periodic => self.halt(n, hcint::NAK),
            Reply::Nak => self.ch[n].waiting = true,
            Reply::Stall => self.halt(n, hcint::STALL),
        }
    }

    fn halt(&mut self, n: usize, why: u32) {
        let c = &mut self.ch[n];
        c.waiting = false;
        c.hcchar &= !hcchar::CHENA;
        c.hcint |= why | hcint::CHHLTD;
    }

    fn complete(&mut self, n: usize, bytes: usize, mps: usize, is_in: bool) {
        let c = &mut self.ch[n];
        let size = (c.hctsiz & 0x7_ffff) as usize;
        let pktcnt = (c.hctsiz >> 19) & 0x3ff;
        let pid = (c.hctsiz >> 29) & 3;
        // Packets moved: a short (or zero-length) last packet ends an IN transfer.
        let mut packets = bytes.div_ceil(mps);
        if bytes == 0 || (is_in && bytes < size && bytes.is_multiple_of(mps)) {
            packets += 1;
        }
        let next_pid = match pid {
            PID_SETUP => PID_DATA1,
            PID_DATA0 | PID_DATA1 if packets % 2 == 1 => PID_DATA0 + PID_DATA1 - pid,
            p => p,
        };
        let left = if is_in { size - bytes.min(size) } else { 0 };
        let pkt_left = pktcnt.saturating_sub(packets as u32);
        c.hctsiz = (c.hctsiz & (1 << 31)) | (next_pid << 29) | (pkt_left << 19) | left as u32;
        c.hcdma = c.hcdma.wrapping_add(bytes as u32);
        c.hcchar &= !hcchar::CHENA;
        c.waiting = false;
        c.hcint |= hcint::XFERCOMPL | hcint::CHHLTD | hcint::ACK;
    }

    fn read_reg(&mut self, o: u64) -> u32 {
        match o {
            reg::GOTGCTL => self.gotgctl,
            reg::GOTGINT => self.gotgint,
            reg::GAHBCFG => self.gahbcfg,
            reg::GUSBCFG => self.gusbcfg,
            reg::GRSTCTL => GRSTCTL_AHBIDLE,
            reg::GINTSTS => self.gintsts(),
            reg::GINTMSK => self.gintmsk,
            reg::GRXSTSR | reg::GRXSTSP => 0,
            reg::GRXFSIZ => self.grxfsiz,
            reg::GNPTXFSIZ => self.gnptxfsiz,
            // Queue and FIFO space all free.
            reg::GNPTXSTS => (8 << 16) | (self.gnptxfsiz >> 16),
            reg::GI2CCTL => self.gi2cctl,
            reg::GPVNDCTL => self.gpvndctl,
            reg::GGPIO => self.ggpio,
            reg::GUID => self.guid,
            reg::GSNPSID => GSNPSID,
            reg::GHWCFG1 => GHWCFG1,
            reg::GHWCFG2 => GHWCFG2,
            reg::GHWCFG3 => GHWCFG3,
            reg::GHWCFG4 => GHWCFG4,
            reg::GLPMCFG => self.glpmcfg,
            reg::GPWRDN => self.gpwrdn,
            reg::GDFIFOCFG => self.gdfifocfg,
            reg::HPTXFSIZ => self.hptxfsiz,
            reg::HCFG => self.hcfg,
            reg::HFIR => self.hfir,
            reg::HFNUM => self.hfnum(),
            reg::HPTXSTS => (8 << 16) | (self.hptxfsiz >> 16),
            reg::HAINT => self.haint(),
            reg::HAINTMSK => self.haintmsk,
            reg::HPRT0 => self.hprt,
            reg::PCGCTL => self.pcgctl,
            o if (reg::HC_BASE..reg::HC_BASE + 0x20 * CHANNELS as u64).contains(&o) => {
                let c = &self.ch[((o - reg::HC_BASE) / 0x20) as usize];
                match o & 0x1f {
                    reg::HCCHAR => c.hcchar,
                    reg::HCSPLT => c.hcsplt,
                    reg::HCINT => c.hcint,
                    reg::HCINTMSK => c.hcintmsk,
                    reg::HCTSIZ => c.hctsiz,
                    reg::HCDMA => c.hcdma,
                    reg::HCDMAB => c.hcdma,
                    _ => 0,
                }
            }
            _ => 0,
        }
    }

    fn write_reg(&mut self, o: u64, v: u32) {
        match o {
            reg::GOTGCTL => self.gotgctl = (self.gotgctl & 0x000f_0000) | (v & !0x000f_0000),
            reg::GOTGINT => self.gotgint &= !v,
            reg::GAHBCFG => self.gahbcfg = v,
            reg::GUSBCFG => self.gusbcfg = v,
            reg::GRSTCTL if v & GRSTCTL_CSFTRST != 0 => {
                self.soft_reset();
            }
            // FIFO flushes finish at once.
            reg::GINTSTS => self.gintsts &= !(v & gint::W1C),
            reg::GINTMSK => self.gintmsk = v,
            reg::GRXFSIZ => self.grxfsiz = v,
            reg::GNPTXFSIZ => self.gnptxfsiz = v,
            reg::GI2CCTL => self.gi2cctl = v,
            reg::GPVNDCTL => self.gpvndctl = v & !(1 << 22 | 1 << 25),
            reg::GGPIO => self.ggpio = v,
            reg::GUID => self.guid = v,
            reg::GLPMCFG => self.glpmcfg = v,
            reg::GPWRDN => self.gpwrdn = v,
            reg::GDFIFOCFG => self.gdfifocfg = v,
            reg::HPTXFSIZ => self.hptxfsiz = v,
            reg::HCFG => self.hcfg = v,
            reg::HFIR => self.hfir = v,
            reg::HAINTMSK => self.haintmsk = v & 0xff,
            reg::HPRT0 => self.write_hprt(v),
            reg::PCGCTL => self.pcgctl = v,
            o if (reg::HC_BASE..reg::HC_BASE + 0x20 * CHANNELS as u64).contains(&o) => {
                let n = ((o - reg::HC_BASE) / 0x20) as usize;
                let c = &mut self.ch[n];
                match o & 0x1f {
                    reg::HCCHAR => self.write_hcchar(n, v),
                    reg::HCSPLT => c.hcsplt = v,
                    reg::HCINT => c.hcint &= !v,
                    reg::HCINTMSK => c.hcintmsk = v,
                    reg::HCTSIZ => c.hctsiz = v,
                    reg::HCDMA => c.hcdma = v,
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

impl armboard_bus::Device for Dwc2 {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if size != 4 || !offset.is_multiple_of(4) {
            log::debug!("dwc2: {size}-byte read at +{offset:#x}");
            return 0;
        }
        u64::from(self.read_reg(offset))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if size != 4 || !offset.is_multiple_of(4) {
            log::debug!("dwc2: {size}-byte write at +{offset:#x}");
            return;
        }
        self.write_reg(offset, value as u32);
        self.update();
    }
}
