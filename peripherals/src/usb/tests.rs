//! The controller, the hub and the Ethernet function together, driven the way Linux's dwc2,
//! hub and smsc95xx drivers drive them: registers, DMA buffers in RAM, interrupts.

use super::dwc2::{gint, hcint, hprt, reg, Dwc2};
use super::hub::Hub;
use super::smsc95xx::{self, Smsc95xx};
use super::{Setup, UsbDevice};
use crate::net::user::UserNet;
use crate::net::{ones_sum, NetBackend};
use armboard_bus::{Device, IrqLine, IrqSink, Ram};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Default)]
struct Level(AtomicBool);

impl IrqSink for Level {
    fn set_level(&self, _line: u32, level: bool) {
        self.0.store(level, Ordering::SeqCst);
    }
}

const BUF: u64 = 0x1000;
const GUEST_MAC: [u8; 6] = [0xb8, 0x27, 0xeb, 0x2c, 0x3b, 0x4a];

struct Host {
    hc: Dwc2,
    ram: Arc<Ram>,
    irq: Arc<Level>,
    now: Arc<AtomicU64>,
}

fn ch(n: u64, r: u64) -> u64 {
    reg::HC_BASE + 0x20 * n + r
}

impl Host {
    fn new(root: Option<Box<dyn UsbDevice>>) -> Host {
        let ram = Arc::new(Ram::new(0, 0x10_0000).unwrap());
        let irq = Arc::new(Level::default());
        let now = Arc::new(AtomicU64::new(1_000_000));
        let clock = {
            let now = now.clone();
            Arc::new(move || now.load(Ordering::SeqCst))
        };
        let hc = Dwc2::new(ram.clone(), IrqLine::new(irq.clone(), 9), clock, root);
        Host { hc, ram, irq, now }
    }

    fn rd(&mut self, o: u64) -> u32 {
        self.hc.read(o, 4) as u32
    }

    fn wr(&mut self, o: u64, v: u32) {
        self.hc.write(o, 4, u64::from(v));
    }

    fn irq(&self) -> bool {
        self.irq.0.load(Ordering::SeqCst)
    }

    /// dwc2's probe and host init: identify, reset, force host mode, DMA, interrupts,
    /// port power.
    fn init(&mut self) {
        assert_eq!(self.rd(reg::GSNPSID) & 0xffff_f000, 0x4f54_2000);
        self.wr(reg::GRSTCTL, 1);
        assert_eq!(self.rd(reg::GRSTCTL) & 1, 0, "soft reset is over at once");
        assert_ne!(self.rd(reg::GRSTCTL) & (1 << 31), 0, "AHB idle");
        let u = self.rd(reg::GUSBCFG);
        self.wr(reg::GUSBCFG, u | 1 << 29);
        assert_ne!(self.rd(reg::GINTSTS) & gint::CURMODE_HOST, 0);
        self.wr(reg::GAHBCFG, 1 | 1 << 5);
        self.wr(reg::GINTMSK, gint::PRTINT | gint::HCHINT | gint::DISCONNINT);
        self.wr(reg::HAINTMSK, 0xff);
        assert!(!self.irq());
        self.wr(reg::HPRT0, hprt::PWR);
    }

    fn port_reset(&mut self) {
        let p = self.rd(reg::HPRT0) & !(hprt::CHANGES | hprt::ENA);
        self.wr(reg::HPRT0, p | hprt::RST);
        self.wr(reg::HPRT0, p);
        let p = self.rd(reg::HPRT0);
        assert_ne!(p & hprt::ENA, 0, "enabled after reset: {p:#x}");
        assert_ne!(p & hprt::ENACHG, 0);
        assert_eq!(p & (3 << 17), 0, "high speed");
        self.wr(reg::HPRT0, (p & !hprt::ENA) | hprt::ENACHG);
    }

    /// One channel transfer; returns HCINT (cleared) and the bytes moved for IN.
    #[allow(clippy::too_many_arguments)]
    fn xfer(
        &mut self,
        n: u64,
        addr: u8,
        ep: u8,
        kind: u32,
        is_in: bool,
        pid: u32,
        data: &[u8],
        len: usize,
    ) -> (u32, Vec<u8>) {
        let mps: u32 = if kind == 0 {
            64
        } else if kind == 3 {
            16
        } else {
            512
        };
        let size = if is_in { len } else { data.len() };
        let pkts = (size as u32).div_ceil(mps).max(1);
        self.wr(ch(n, reg::HCINT), 0xffff_ffff);
        self.wr(ch(n, reg::HCINTMSK), hcint::CHHLTD);
        self.wr(ch(n, reg::HCTSIZ), pid << 29 | pkts << 19 | size as u32);
        self.ram.write(BUF, data).unwrap();
        self.wr(ch(n, reg::HCDMA), 0xc000_0000 | BUF as u32);
        let c = mps
            | u32::from(ep) << 11
            | u32::from(is_in) << 15
            | kind << 18
            | u32::from(addr) << 22
            | 1 << 31;
        self.wr(ch(n, reg::HCCHAR), c);
        self.finish(n, size)
    }

    fn finish(&mut self, n: u64, size: usize) -> (u32, Vec<u8>) {
        let i = self.rd(ch(n, reg::HCINT));
        if i & hcint::CHHLTD == 0 {
            return (i, Vec::new());
        }
        assert!(self.irq(), "a halted channel interrupts");
        assert_ne!(self.rd(reg::GINTSTS) & gint::HCHINT, 0);
        assert_ne!(self.rd(reg::HAINT) & (1 << n), 0);
        assert_eq!(
            self.rd(ch(n, reg::HCCHAR)) & (1 << 31),
            0,
            "disabled once halted"
        );
        self.wr(ch(n, reg::HCINT), i);
        assert_eq!(self.rd(reg::HAINT) & (1 << n), 0);
        assert_eq!(
            self.irq(),
            self.rd(reg::HAINT) != 0,
            "the line follows the channels"
        );
        let left = (self.rd(ch(n, reg::HCTSIZ)) & 0x7_ffff) as usize;
        let mut got = vec![0; size - left];
        self.ram.read(BUF, &mut got).unwrap();
        (i, got)
    }

    fn control(&mut self, addr: u8, s: Setup, out: &[u8]) -> Result<Vec<u8>, u32> {
        let (i, _) = self.xfer(0, addr, 0, 0, false, 3, &s.bytes(), 0);
        if i & hcint::XFERCOMPL == 0 {
            return Err(i);
        }
        let mut got = Vec::new();
        if s.length > 0 {
            let (i, d) = if s.is_in() {
                let len = usize::from(s.length).div_ceil(64) * 64;
                self.xfer(0, addr, 0, 0, true, 2, &[], len)
            } else {
                self.xfer(0, addr, 0, 0, false, 2, out, 0)
            };
            if i & hcint::XFERCOMPL == 0 {
                return Err(i);
            }
            got = d;
        }
        let (i, _) = self.xfer(0, addr, 0, 0, !s.is_in() || s.length == 0, 2, &[], 0);
        if i & hcint::XFERCOMPL == 0 {
            return Err(i);
        }
        Ok(got)
    }

    fn read_reg(&mut self, addr: u8, r: u16) -> u32 {
        let v = self.control(addr, setup(0xc0, 0xa1, 0, r, 4), &[]).unwrap();
        u32::from_le_bytes(v[..4].try_into().unwrap())
    }

    fn write_reg(&mut self, addr: u8, r: u16, v: u32) {
        self.control(addr, setup(0x40, 0xa0, 0, r, 4), &v.to_le_bytes())
            .unwrap();
    }
}

fn setup(request_type: u8, request: u8, value: u16, index: u16, length: u16) -> Setup {
    super::testing::setup(request_type, request, value, index, length)
}

/// The Pi's wiring: the LAN9514 hub on the root port, its Ethernet on hub port 1.
fn pi_host(backend: Box<dyn NetBackend>) -> Host {
    let eth: Box<dyn UsbDevice> = Box::new(Smsc95xx::new(backend));
    Host::new(Some(Box::new(Hub::lan9514(vec![Some(eth)]))))
}

/// Everything up to a configured Ethernet function at address 2 with RX and TX on.
fn bring_up(h: &mut Host) {
    h.init();
    let p = h.rd(reg::HPRT0);
    assert_eq!(
        p & (hprt::CONNSTS | hprt::CONNDET),
        hprt::CONNSTS | hprt::CONNDET
    );
    assert!(h.irq(), "connect interrupts through PRTINT");
    h.wr(reg::HPRT0, p);
    assert!(!h.irq());
    h.port_reset();
    let d = h.control(0, setup(0x80, 6, 0x100, 0, 64), &[]).unwrap();
    assert_eq!(d.len(), 18, "a short read ends the transfer");
    h.control(0, setup(0, 5, 1, 0, 0), &[]).unwrap();
    h.control(1, setup(0, 9, 1, 0, 0), &[]).unwrap();
    h.control(1, setup(0x23, 3, 8, 1, 0), &[]).unwrap(); // PORT_POWER
    h.control(1, setup(0x23, 3, 4, 1, 0), &[]).unwrap(); // PORT_RESET
    let st = h.control(1, setup(0xa3, 0, 0, 1, 4), &[]).unwrap();
    assert_eq!(st[0] & 3, 3, "connected and enabled");
    let d = h.control(0, setup(0x80, 6, 0x100, 0, 18), &[]).unwrap();
    assert_eq!(&d[8..12], &[0x24, 0x04, 0x00, 0xec]);
    h.control(0, setup(0, 5, 2, 0, 0), &[]).unwrap();
    let c = h.control(2, setup(0x80, 6, 0x200, 0, 255), &[]).unwrap();
    assert_eq!(c.len(), 9 + 9 + 3 * 7);
    h.control(2, setup(0, 9, 1, 0, 0), &[]).unwrap();
    h.write_reg(
        2,
        smsc95xx::reg::ADDRL,
        u32::from_le_bytes(GUEST_MAC[..4].try_into().unwrap()),
    );
    h.write_reg(
        2,
        smsc95xx::reg::ADDRH,
        u32::from(GUEST_MAC[4]) | u32::from(GUEST_MAC[5]) << 8,
    );
    h.write_reg(2, smsc95xx::reg::HW_CFG, 2 << 9 | 1 << 5 | 1 << 1);
    h.write_reg(2, smsc95xx::reg::COE_CR, 1 | 1 << 16);
    h.write_reg(2, smsc95xx::reg::MAC_CR, 1 << 2 | 1 << 3 | 1 << 20);
    h.write_reg(2, smsc95xx::reg::TX_CFG, 1 << 2);
}

fn arp_request() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&[10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 2]);
    f
}

#[test]
fn the_controller_reports_a_bcm2835s_configuration() {
    let mut h = Host::new(None);
    assert_eq!(h.rd(reg::GSNPSID), 0x4f54_280a);
    assert_eq!(h.rd(reg::GHWCFG2), 0x228d_dd50);
    assert_eq!((h.rd(reg::GHWCFG2) >> 14) & 0xf, 7, "8 host channels");
    assert_eq!((h.rd(reg::GHWCFG2) >> 3) & 3, 2, "internal DMA");
    assert_eq!(h.rd(reg::GHWCFG3) >> 16, 0x0ff0, "FIFO depth");
    assert_eq!(h.rd(reg::GHWCFG4), 0x1ff0_0020);
    assert_eq!(h.rd(reg::GRXFSIZ), 0x1000);
    h.init();
    assert_eq!(h.rd(reg::HPRT0) & hprt::CONNSTS, 0, "nothing on the port");
}

#[test]
fn idle_channels_halt_when_disabled_like_dwc2_host_init_expects() {
    let mut h = Host::new(None);
    h.wr(ch(3, reg::HCCHAR), 1 << 31 | 1 << 30);
    assert_eq!(h.rd(ch(3, reg::HCCHAR)) & (1 << 31), 0);
    assert_ne!(h.rd(ch(3, reg::HCINT)) & hcint::CHHLTD, 0);
}

#[test]
fn linux_enumerates_the_hub_and_the_ethernet_function() {
    let mut h = pi_host(Box::new(UserNet::default()));
    bring_up(&mut h);
    assert_eq!(h.read_reg(2, smsc95xx::reg::ID_REV) >> 16, 0xec00);
    // The PHY over MII: PHY 1's identifier, then BMSR's link bit (read twice: latched).
    h.write_reg(2, smsc95xx::reg::MII_ADDR, 1 << 11 | 2 << 6 | 1);
    assert_eq!(
        h.read_reg(2, smsc95xx::reg::MII_ADDR) & 1,
        0,
        "MII not busy"
    );
    assert_eq!(h.read_reg(2, smsc95xx::reg::MII_DATA), 0x0007);
    for _ in 0..2 {
        h.write_reg(2, smsc95xx::reg::MII_ADDR, 1 << 11 | 1 << 6 | 1);
    }
    assert_ne!(h.read_reg(2, smsc95xx::reg::MII_DATA) & 4, 0, "link up");
    // No EEPROM: the driver takes its MAC address from the device tree.
    assert_eq!(h.read_reg(2, smsc95xx::reg::E2P_CMD) & (1 << 9), 0);
    // An unknown device address: a transaction error.
    let (i, _) = h.xfer(
        0,
        9,
        0,
        0,
        false,
        3,
        &setup(0x80, 6, 0x100, 0, 18).bytes(),
        0,
    );
    assert_ne!(i & hcint::XACTERR, 0);
}

#[test]
fn a_frame_sent_on_bulk_out_is_answered_on_bulk_in_with_rx_status_offset_and_checksum() {
    let mut h = pi_host(Box::new(UserNet::default()));
    bring_up(&mut h);
    // usbnet keeps a bulk IN queued: with nothing to receive it stays active, no interrupt.
    let (i, _) = h.xfer(1, 2, 1, 2, true, 0, &[], 18944);
    assert_eq!(i & hcint::CHHLTD, 0);
    assert_ne!(
        h.rd(ch(1, reg::HCCHAR)) & (1 << 31),
        0,
        "still enabled, NAKed"
    );
    assert!(!h.irq());
    // An ARP request with smsc95xx's TX command words.
    let f = arp_request();
    let mut tx = (f.len() as u32 | 1 << 13 | 1 << 12).to_le_bytes().to_vec();
    tx.extend_from_slice(&(f.len() as u32).to_le_bytes());
    tx.extend_from_slice(&f);
    let (i, _) = h.xfer(2, 2, 2, 2, false, 0, &tx, 0);
    assert_ne!(i & hcint::XFERCOMPL, 0);
    assert_eq!(
        h.rd(ch(2, reg::HCTSIZ)) >> 29,
        2,
        "one packet: DATA0 -> DATA1"
    );
    // The reply completed the waiting bulk IN.
    let (i, rx) = h.finish(1, 18944);
    assert_ne!(i & hcint::XFERCOMPL, 0);
    let status = u32::from_le_bytes(rx[..4].try_into().unwrap());
    let len = (status >> 16) as usize;
    assert_eq!(len, 60 + 4 + 2, "frame, FCS and the RX checksum");
    assert_eq!(
        rx.len(),
        4 + 2 + len,
        "status word and the 2-byte RX data offset"
    );
    let frame = &rx[6..66];
    assert_eq!(&frame[..6], &GUEST_MAC);
    assert_eq!(&frame[12..14], &[0x08, 0x06]);
    assert_eq!(&frame[20..22], &[0, 2], "an ARP reply");
    let fcs = u32::from_le_bytes(rx[66..70].try_into().unwrap());
    assert_eq!(fcs, smsc95xx::crc32(frame));
    let sum = u16::from_be_bytes([rx[70], rx[71]]);
    assert_eq!(sum, ones_sum(&frame[14..]));
    assert_eq!(
        h.rd(ch(1, reg::HCTSIZ)) >> 29,
        2,
        "a 72-byte read is one packet: DATA0 -> DATA1"
    );
}

#[test]
fn the_interrupt_endpoint_naks_into_a_halt_and_frames_count_with_time() {
    let mut h = pi_host(Box::new(UserNet::default()));
    bring_up(&mut h);
    let (i, _) = h.xfer(3, 2, 3, 3, true, 0, &[], 16);
    assert_eq!(i & (hcint::NAK | hcint::CHHLTD), hcint::NAK | hcint::CHHLTD);
    let f0 = h.rd(reg::HFNUM) & 0x3fff;
    h.now.fetch_add(10 * 125_000, Ordering::SeqCst);
    let f1 = h.rd(reg::HFNUM) & 0x3fff;
    assert_eq!(f1.wrapping_sub(f0) & 0x3fff, 10, "microframes");
    let m = h.rd(reg::GINTMSK);
    h.wr(reg::GINTMSK, m | gint::SOF);
    h.hc.poll();
    assert_ne!(h.rd(reg::GINTSTS) & gint::SOF, 0);
    assert!(h.irq());
    h.wr(reg::GINTSTS, gint::SOF);
    assert!(!h.irq());
    h.hc.poll();
    assert_eq!(
        h.rd(reg::GINTSTS) & gint::SOF,
        0,
        "not again within the frame"
    );
}

#[test]
fn disabling_a_waiting_channel_halts_it() {
    let mut h = pi_host(Box::new(UserNet::default()));
    bring_up(&mut h);
    h.xfer(1, 2, 1, 2, true, 0, &[], 2048);
    let c = h.rd(ch(1, reg::HCCHAR));
    h.wr(ch(1, reg::HCCHAR), c | 1 << 30);
    let i = h.rd(ch(1, reg::HCINT));
    assert_eq!(i & (hcint::CHHLTD | hcint::XFERCOMPL), hcint::CHHLTD);
    assert_eq!(h.rd(ch(1, reg::HCCHAR)) & (1 << 31), 0);
}
