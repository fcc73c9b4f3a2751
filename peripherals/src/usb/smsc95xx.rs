//! The Ethernet function of an SMSC LAN9512/LAN9514 (USB 0424:ec00, Linux's smsc95xx): a
//! 10/100 MAC with an internal PHY, registers reached with vendor control requests, frames on
//! bulk endpoints with the chip's TX command and RX status words, link events on an interrupt
//! endpoint. Frames go to and come from a [`NetBackend`]. Like the Pi's chip it has no EEPROM:
//! the MAC address is whatever the driver writes (from the device tree).

use super::{
    config_descriptor, device_descriptor, endpoint_descriptor, interface_descriptor, ClassResult,
    Descriptors, DeviceCore, Reply, Setup, Token, UsbDevice,
};
use crate::net::{ones_sum, NetBackend};
use std::collections::VecDeque;

/// Register offsets (vendor request wIndex).
pub mod reg {
    pub const ID_REV: u16 = 0x00;
    pub const INT_STS: u16 = 0x08;
    pub const RX_CFG: u16 = 0x0c;
    pub const TX_CFG: u16 = 0x10;
    pub const HW_CFG: u16 = 0x14;
    pub const RX_FIFO_INF: u16 = 0x18;
    pub const TX_FIFO_INF: u16 = 0x1c;
    pub const PM_CTRL: u16 = 0x20;
    pub const E2P_CMD: u16 = 0x30;
    pub const E2P_DATA: u16 = 0x34;
    pub const INT_EP_CTL: u16 = 0x68;
    pub const MAC_CR: u16 = 0x100;
    pub const ADDRH: u16 = 0x104;
    pub const ADDRL: u16 = 0x108;
    pub const MII_ADDR: u16 = 0x114;
    pub const MII_DATA: u16 = 0x118;
    pub const COE_CR: u16 = 0x130;
    /// The last register (the block is 0x00..=0x130 in 4-byte steps).
    pub const LAST: u16 = COE_CR;
}

const READ_REGISTER: u8 = 0xa1;
const WRITE_REGISTER: u8 = 0xa0;
const GET_STATS: u8 = 0xa2;

/// LAN9512/LAN9514, revision 2.
const ID_REV: u32 = 0xec00_0002;
const HW_CFG_SRST: u32 = 1 << 0;
const HW_CFG_LRST: u32 = 1 << 3;
const HW_CFG_RXDOFF_SHIFT: u32 = 9;
const PM_CTL_DEV_RDY: u32 = 1 << 7;
const PM_CTL_PHY_RST: u32 = 1 << 4;
const TX_CFG_ON: u32 = 1 << 2;
const MAC_CR_RXEN: u32 = 1 << 2;
const MAC_CR_TXEN: u32 = 1 << 3;
const MAC_CR_HPFILT: u32 = 1 << 13;
const MAC_CR_PRMS: u32 = 1 << 18;
const MAC_CR_MCPAS: u32 = 1 << 19;
const E2P_CMD_BUSY: u32 = 1 << 31;
const E2P_CMD_TIMEOUT: u32 = 1 << 10;
const MII_BUSY: u32 = 1 << 0;
const MII_WRITE: u32 = 1 << 1;
const INT_EP_CTL_PHY: u32 = 1 << 15;
const INT_STS_PHY: u32 = 1 << 15;
const COE_RX_EN: u32 = 1 << 0;
const TX_CMD_A_FIRST: u32 = 1 << 13;
const TX_CMD_A_LAST: u32 = 1 << 12;
const TX_CMD_B_CSUM: u32 = 1 << 14;
const RX_STS_MULTICAST: u32 = 1 << 10;
const RX_STS_BROADCAST: u32 = 1 << 13;

/// The internal PHY's address on the MII bus.
const PHY_ADDR: u32 = 1;
mod phy {
    pub const BMCR_RESET: u16 = 1 << 15;
    pub const BMCR_ANRESTART: u16 = 1 << 9;
    pub const BMCR_PDOWN: u16 = 1 << 11;
    pub const BMCR_DEFAULT: u16 = 0x3000; // 100 Mb/s, autonegotiation on
    pub const ANAR_DEFAULT: u16 = 0x01e1;
    /// The link partner: 10/100 half and full duplex, pause, acknowledged.
    pub const ANLPAR: u16 = 0x45e1;
    pub const INT_ANEG_COMP: u16 = 1 << 6;
    pub const INT_LINK_DOWN: u16 = 1 << 4;
}

/// Frames waiting for the guest: beyond this many the oldest are dropped (a full RX FIFO).
const RX_QUEUE_MAX: usize = 64;

struct Regs {
    int_sts: u32,
    rx_cfg: u32,
    tx_cfg: u32,
    hw_cfg: u32,
    pm_ctrl: u32,
    e2p_cmd: u32,
    int_ep_ctl: u32,
    mac_cr: u32,
    addrh: u32,
    addrl: u32,
    mii_addr: u32,
    mii_data: u32,
    coe_cr: u32,
    /// Everything else the driver writes and reads back.
    other: [u32; reg::LAST as usize / 4 + 1],
}

impl Regs {
    fn reset() -> Self {
        let mut other = [0; reg::LAST as usize / 4 + 1];
        other[0x2c / 4] = 0x00f8_30a0; // AFC_CFG
        other[0x6c / 4] = 0x0000_0800; // BULK_IN_DLY
        other[0x120 / 4] = 0x8100; // VLAN1
        Regs {
            int_sts: 0,
            rx_cfg: 0,
            tx_cfg: 0,
            hw_cfg: 0,
            pm_ctrl: PM_CTL_DEV_RDY,
            e2p_cmd: 0,
            int_ep_ctl: 0,
            mac_cr: 0,
            // No EEPROM: the address registers come up all ones.
            addrh: 0xffff,
            addrl: 0xffff_ffff,
            mii_addr: 0,
            mii_data: 0,
            coe_cr: 0,
            other,
        }
    }
}

struct Phy {
    bmcr: u16,
    anar: u16,
    int_src: u16,
    int_mask: u16,
    /// Latched-low link status: reads 0 once after the link went down.
    link_was_down: bool,
}

impl Phy {
    fn reset() -> Self {
        Phy {
            bmcr: phy::BMCR_DEFAULT,
            anar: phy::ANAR_DEFAULT,
            int_src: 0,
            int_mask: 0,
            link_was_down: true,
        }
    }

    fn link(&self) -> bool {
        self.bmcr & phy::BMCR_PDOWN == 0
    }

    fn read(&mut self, r: u32) -> u16 {
        match r {
            0 => self.bmcr,
            1 => {
                // 10/100 capable, can autonegotiate, extended registers.
                let mut v = 0x7809;
                let up = self.link() && !std::mem::take(&mut self.link_was_down);
                if up {
                    v |= 0x0024; // link up, autonegotiation complete
                }
                v
            }
            2 => 0x0007,
            3 => 0xc0c3,
            4 => self.anar,
            5 if self.link() => phy::ANLPAR,
            6 => 0x0001,
            17 => 0x0002, // mode control/status: energy on
            18 => 0x00e0 | PHY_ADDR as u16,
            29 => std::mem::take(&mut self.int_src),
            30 => self.int_mask,
            // Special control/status: autonegotiation done, 100 Mb/s full duplex.
            31 => 0x1058,
            _ => 0,
        }
    }

    fn write(&mut self, r: u32, v: u16) {
        match r {
            0 => {
                if v & phy::BMCR_RESET != 0 {
                    let mask = self.int_mask;
                    *self = Phy::reset();
                    self.int_mask = mask;
                    self.int_src |= phy::INT_ANEG_COMP;
                    return;
                }
                let was_up = self.link();
                self.bmcr = v & !phy::BMCR_ANRESTART;
                if was_up && !self.link() {
                    self.link_was_down = true;
                    self.int_src |= phy::INT_LINK_DOWN;
                } else if v & phy::BMCR_ANRESTART != 0 || (!was_up && self.link()) {
                    self.int_src |= phy::INT_ANEG_COMP;
                }
            }
            4 => self.anar = v,
            30 => self.int_mask = v,
            _ => {}
        }
    }
}

pub struct Smsc95xx {
    core: DeviceCore,
    mac: Mac,
}

/// Everything but endpoint 0's bookkeeping.
struct Mac {
    regs: Regs,
    phy: Phy,
    backend: Box<dyn NetBackend>,
    rx: VecDeque<Vec<u8>>,
    /// A frame being gathered from TX segments.
    tx_frame: Vec<u8>,
    tx_frames: u64,
    rx_frames: u64,
}

impl Smsc95xx {
    pub fn new(backend: Box<dyn NetBackend>) -> Self {
        let mut body = interface_descriptor(0, 0, 3, [0xff, 0x00, 0xff]).to_vec();
        body.extend_from_slice(&endpoint_descriptor(0x81, 2, 512, 0));
        body.extend_from_slice(&endpoint_descriptor(0x02, 2, 512, 0));
        body.extend_from_slice(&endpoint_descriptor(0x83, 3, 16, 4));
        let desc = Descriptors {
            device: device_descriptor([0xff, 0x00, 0xff], 0x0424, 0xec00, 0x0200, [0, 0, 0]),
            config: config_descriptor(1, 0xe0, 1, &body),
            strings: Vec::new(),
        };
        Smsc95xx {
            core: DeviceCore::new(desc, true),
            mac: Mac {
                regs: Regs::reset(),
                phy: Phy::reset(),
                backend,
                rx: VecDeque::new(),
                tx_frame: Vec::new(),
                tx_frames: 0,
                rx_frames: 0,
            },
        }
    }

    /// The MAC address the driver programmed.
    pub fn mac(&self) -> [u8; 6] {
        self.mac.address()
    }

    /// Frames sent to and received from the backend.
    pub fn counts(&self) -> (u64, u64) {
        (self.mac.tx_frames, self.mac.rx_frames)
    }
}

impl Mac {
    fn address(&self) -> [u8; 6] {
        let l = self.regs.addrl.to_le_bytes();
        let h = self.regs.addrh.to_le_bytes();
        [l[0], l[1], l[2], l[3], h[0], h[1]]
    }

    fn read_reg(&mut self, r: u16) -> u32 {
        let g = &self.regs;
        match r {
            reg::ID_REV => ID_REV,
            reg::INT_STS => self.int_sts(),
            reg::RX_CFG => g.rx_cfg,
            reg::TX_CFG => g.tx_cfg,
            reg::HW_CFG => g.hw_cfg,
            reg::RX_FIFO_INF => 0,
            reg::TX_FIFO_INF => 0x0000_1200, // all of the TX data FIFO free
            reg::PM_CTRL => g.pm_ctrl,
            reg::E2P_CMD => g.e2p_cmd,
            reg::E2P_DATA => 0,
            reg::INT_EP_CTL => g.int_ep_ctl,
            reg::MAC_CR => g.mac_cr,
            reg::ADDRH => g.addrh,
            reg::ADDRL => g.addrl,
            reg::MII_ADDR => g.mii_addr,
            reg::MII_DATA => g.mii_data,
            reg::COE_CR => g.coe_cr,
            r => g.other[usize::from(r / 4)],
        }
    }

    fn write_reg(&mut self, r: u16, v: u32) {
        let g = &mut self.regs;
        match r {
            reg::ID_REV | reg::RX_FIFO_INF | reg::TX_FIFO_INF => {}
            reg::INT_STS => g.int_sts &= !v,
            reg::RX_CFG => g.rx_cfg = v & !1, // the FIFO flush is immediate
            reg::TX_CFG => g.tx_cfg = v & TX_CFG_ON,
            reg::HW_CFG => {
                if v & (HW_CFG_SRST | HW_CFG_LRST) != 0 {
                    let (addrh, addrl) = (g.addrh, g.addrl);
                    *g = Regs::reset();
                    if v & HW_CFG_LRST != 0 {
                        // A lite reset keeps the address.
                        g.addrh = addrh;
                        g.addrl = addrl;
                    }
                    self.rx.clear();
                    self.tx_frame.clear();
                } else {
                    g.hw_cfg = v;
                }
            }
            reg::PM_CTRL => {
                if v & PM_CTL_PHY_RST != 0 {
                    self.phy = Phy::reset();
                }
                g.pm_ctrl = (v & !PM_CTL_PHY_RST) | PM_CTL_DEV_RDY;
            }
            reg::E2P_CMD => {
                // No EEPROM: a command finishes at once with a timeout; LOADED stays clear.
                g.e2p_cmd = if v & E2P_CMD_BUSY != 0 {
                    (v & !E2P_CMD_BUSY) | E2P_CMD_TIMEOUT
                } else {
                    v
                };
            }
            reg::E2P_DATA => {}
            reg::INT_EP_CTL => g.int_ep_ctl = v,
            reg::MAC_CR => g.mac_cr = v,
            reg::ADDRH => g.addrh = v & 0xffff,
            reg::ADDRL => g.addrl = v,
            reg::MII_DATA => g.mii_data = v & 0xffff,
            reg::MII_ADDR => {
                let (id, idx) = ((v >> 11) & 0x1f, (v >> 6) & 0x1f);
                if v & MII_BUSY != 0 && id == PHY_ADDR {
                    if v & MII_WRITE != 0 {
                        self.phy.write(idx, g.mii_data as u16);
                    } else {
                        g.mii_data = u32::from(self.phy.read(idx));
                    }
                } else if v & MII_BUSY != 0 && v & MII_WRITE == 0 {
                    g.mii_data = 0xffff; // nothing answers at that address
                }
                g.mii_addr = v & !MII_BUSY;
            }
            reg::COE_CR => g.coe_cr = v,
            r => g.other[usize::from(r / 4)] = v,
        }
    }

    fn vendor(&mut self, s: &Setup, data: &[u8]) -> ClassResult {
        let r = usize::from(s.index);
        if s.kind() != 2 || r % 4 != 0 || r > usize::from(reg::LAST) {
            return (s.kind() == 2 && s.request == GET_STATS)
                .then(|| Ok(vec![0; usize::from(s.length)]));
        }
        match (s.request, s.is_in()) {
            (READ_REGISTER, true) => Some(Ok(self.read_reg(s.index).to_le_bytes().to_vec())),
            (WRITE_REGISTER, false) => {
                // Called at the status stage, with the data stage's four bytes.
                if let Some(b) = data.get(..4) {
                    let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    self.write_reg(s.index, v);
                }
                Some(Ok(Vec::new()))
            }
            (GET_STATS, true) => Some(Ok(vec![0; usize::from(s.length)])),
            _ => None,
        }
    }

    /// A bulk-out transfer: TX command words and frame data.
    fn bulk_out(&mut self, mut d: &[u8]) {
        while d.len() >= 8 {
            let a = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
            let b = u32::from_le_bytes([d[4], d[5], d[6], d[7]]);
            let size = (a & 0x7ff) as usize;
            let offset = ((a >> 16) & 0x1f) as usize;
            let start = 8 + offset;
            let Some(seg) = d.get(start..start + size) else {
                log::debug!("smsc95xx: TX segment past the transfer ({a:#x})");
                self.tx_frame.clear();
                return;
            };
            if a & TX_CMD_A_FIRST != 0 {
                self.tx_frame.clear();
            }
            self.tx_frame.extend_from_slice(seg);
            if a & TX_CMD_A_LAST != 0 {
                let mut f = std::mem::take(&mut self.tx_frame);
                let len = (b & 0x7ff) as usize;
                if b & TX_CMD_B_CSUM != 0 && f.len() >= 4 {
                    let pre = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
                    f.drain(..4);
                    insert_checksum(&mut f, (pre & 0xffff) as usize, (pre >> 16) as usize);
                }
                f.truncate(len.max(14).min(f.len()));
                if f.len() < 60 {
                    f.resize(60, 0);
                }
                self.transmit(&f);
            }
            // Frames in one transfer start on 4-byte boundaries.
            let next = (start + size + 3) & !3;
            d = d.get(next..).unwrap_or(&[]);
        }
    }

    fn transmit(&mut self, f: &[u8]) {
        if self.regs.tx_cfg & TX_CFG_ON == 0 || self.regs.mac_cr & MAC_CR_TXEN == 0 {
            return;
        }
        if !self.phy.link() {
            return;
        }
        self.tx_frames += 1;
        self.backend.send(f);
    }

    fn accepts(&self, f: &[u8]) -> bool {
        let cr = self.regs.mac_cr;
        if cr & MAC_CR_RXEN == 0 || f.len() < 14 {
            return false;
        }
        if cr & MAC_CR_PRMS != 0 || f[..6] == self.address() || f[..6] == [0xff; 6] {
            return true;
        }
        f[0] & 1 != 0 && cr & (MAC_CR_MCPAS | MAC_CR_HPFILT) != 0
    }

    fn pull_backend(&mut self) {
        while let Some(f) = self.backend.recv() {
            if !self.accepts(&f) {
                continue;
            }
            if self.rx.len() >= RX_QUEUE_MAX {
                self.rx.pop_front();
            }
            self.rx.push_back(f);
        }
    }

    /// A bulk-in transfer: one received frame with its status word.
    fn bulk_in(&mut self, max: usize) -> Reply {
        self.pull_backend();
        let Some(f) = self.rx.front() else {
            return Reply::Nak;
        };
        let coe = self.regs.coe_cr & COE_RX_EN != 0;
        let pad = ((self.regs.hw_cfg >> HW_CFG_RXDOFF_SHIFT) & 3) as usize;
        let len = f.len() + 4 + if coe { 2 } else { 0 };
        if 4 + pad + len > max {
            // Cannot fit this transfer: drop it (the driver's buffers hold a full frame).
            self.rx.pop_front();
            return Reply::Nak;
        }
        let mut status = (len as u32) << 16;
        if f[..6] == [0xff; 6] {
            status |= RX_STS_BROADCAST;
        } else if f[0] & 1 != 0 {
            status |= RX_STS_MULTICAST;
        }
        let mut out = Vec::with_capacity(4 + pad + len);
        out.extend_from_slice(&status.to_le_bytes());
        out.resize(4 + pad, 0);
        out.extend_from_slice(f);
        out.extend_from_slice(&crc32(f).to_le_bytes());
        if coe {
            // The ones' complement sum of everything after the Ethernet header.
            out.extend_from_slice(&ones_sum(&f[14..]).to_be_bytes());
        }
        self.rx.pop_front();
        self.rx_frames += 1;
        Reply::Data(out)
    }

    /// The interrupt endpoint: INT_STS's enabled sources while any is active (the PHY's
    /// interrupt is a level: it stays until the driver reads the PHY's source register).
    fn interrupt_in(&mut self) -> Reply {
        let v = self.int_sts() & self.regs.int_ep_ctl;
        if v & INT_EP_CTL_PHY == 0 {
            return Reply::Nak;
        }
        Reply::Data(v.to_le_bytes().to_vec())
    }

    fn int_sts(&self) -> u32 {
        let phy = self.phy.int_src & self.phy.int_mask != 0;
        self.regs.int_sts | if phy { INT_STS_PHY } else { 0 }
    }
}

/// Stores at `at` the Internet checksum of `f[start..]`.
fn insert_checksum(f: &mut [u8], start: usize, at: usize) {
    if start >= f.len() || at + 2 > f.len() {
        return;
    }
    let c = !ones_sum(&f[start..]);
    // A UDP checksum of zero means "none": send all ones instead.
    let c = if c == 0 { 0xffff } else { c };
    f[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Ethernet's CRC-32 (the FCS), as the chip appends it.
pub(crate) fn crc32(d: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in d {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

impl UsbDevice for Smsc95xx {
    fn bus_reset(&mut self) {
        self.core.bus_reset();
    }

    fn find(&mut self, addr: u8) -> Option<&mut dyn UsbDevice> {
        (self.core.address == addr).then_some(self as &mut dyn UsbDevice)
    }

    fn transfer(&mut self, ep: u8, token: Token, data: &[u8], max: usize) -> Reply {
        if ep == 0 {
            let Smsc95xx { core, mac } = self;
            return core.control(token, data, max, |s, d| mac.vendor(s, d));
        }
        if self.core.configuration == 0 {
            return Reply::Stall;
        }
        match (ep, token) {
            (1, Token::In) => self.mac.bulk_in(max),
            (2, Token::Out) => {
                self.mac.bulk_out(data);
                Reply::Ack
            }
            (3, Token::In) => self.mac.interrupt_in(),
            _ => Reply::Stall,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{control, setup};
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A backend recording what was sent and replaying queued frames.
    #[derive(Clone, Default)]
    struct Wire(Arc<Mutex<Frames>>);

    /// Frames sent, frames waiting to be received.
    type Frames = (Vec<Vec<u8>>, VecDeque<Vec<u8>>);

    impl NetBackend for Wire {
        fn send(&mut self, f: &[u8]) {
            self.0.lock().unwrap().0.push(f.to_vec());
        }
        fn recv(&mut self) -> Option<Vec<u8>> {
            self.0.lock().unwrap().1.pop_front()
        }
    }

    const MAC: [u8; 6] = [0xb8, 0x27, 0xeb, 1, 2, 3];

    fn rd(d: &mut Smsc95xx, r: u16) -> u32 {
        let v = control(d, 0, setup(0xc0, READ_REGISTER, 0, r, 4), &[]).unwrap();
        u32::from_le_bytes(v[..4].try_into().unwrap())
    }

    fn wr(d: &mut Smsc95xx, r: u16, v: u32) {
        control(d, 0, setup(0x40, WRITE_REGISTER, 0, r, 4), &v.to_le_bytes()).unwrap();
    }

    /// Configured, with the driver's address, RX and TX on.
    fn ready() -> (Smsc95xx, Wire) {
        let w = Wire::default();
        let mut d = Smsc95xx::new(Box::new(w.clone()));
        control(&mut d, 0, setup(0, 9, 1, 0, 0), &[]).unwrap();
        wr(
            &mut d,
            reg::ADDRL,
            u32::from_le_bytes(MAC[..4].try_into().unwrap()),
        );
        wr(
            &mut d,
            reg::ADDRH,
            u32::from(MAC[4]) | u32::from(MAC[5]) << 8,
        );
        wr(&mut d, reg::MAC_CR, MAC_CR_RXEN | MAC_CR_TXEN);
        wr(&mut d, reg::TX_CFG, TX_CFG_ON);
        (d, w)
    }

    #[test]
    fn resets_self_clear_and_the_lite_reset_keeps_the_address() {
        let (mut d, _) = ready();
        assert_eq!(rd(&mut d, reg::ID_REV), 0xec00_0002);
        wr(&mut d, reg::HW_CFG, HW_CFG_LRST);
        assert_eq!(rd(&mut d, reg::HW_CFG) & HW_CFG_LRST, 0);
        assert_eq!(d.mac(), MAC);
        wr(&mut d, reg::PM_CTRL, PM_CTL_PHY_RST);
        assert_eq!(rd(&mut d, reg::PM_CTRL) & PM_CTL_PHY_RST, 0);
        wr(&mut d, 0x38, 37); // BURST_CAP reads back
        assert_eq!(rd(&mut d, 0x38), 37);
        assert!(control(&mut d, 0, setup(0xc0, READ_REGISTER, 0, 0x2000, 4), &[]).is_err());
    }

    #[test]
    fn tx_checksum_offload_fills_in_the_checksum_the_preamble_names() {
        let (mut d, w) = ready();
        // Ethernet header, then 20 bytes summed from offset 14 into offset 30.
        let mut f = vec![0u8; 34];
        f[12] = 0x08;
        for (i, b) in f[14..].iter_mut().enumerate() {
            *b = i as u8 * 7;
        }
        f[30] = 0;
        f[31] = 0;
        let pre: u32 = 14 | 30 << 16;
        let mut t = ((f.len() + 4) as u32 | TX_CMD_A_FIRST | TX_CMD_A_LAST)
            .to_le_bytes()
            .to_vec();
        t.extend_from_slice(&(f.len() as u32 | TX_CMD_B_CSUM).to_le_bytes());
        t.extend_from_slice(&pre.to_le_bytes());
        t.extend_from_slice(&f);
        assert_eq!(d.transfer(2, Token::Out, &t, 0), Reply::Ack);
        let sent = w.0.lock().unwrap().0.pop().expect("a frame");
        assert_eq!(sent.len(), 60, "padded to the minimum");
        assert_eq!(
            ones_sum(&sent[14..34]),
            0xffff,
            "the checksum completes the sum"
        );
        assert_eq!(d.counts(), (1, 0));
    }

    #[test]
    fn rx_takes_own_and_broadcast_frames_and_others_only_when_promiscuous() {
        let (mut d, w) = ready();
        let frame = |dst: [u8; 6]| {
            let mut f = dst.to_vec();
            f.resize(60, 0x5a);
            f
        };
        w.0.lock()
            .unwrap()
            .1
            .extend([frame([2; 6]), frame(MAC), frame([0xff; 6])]);
        let mut got = Vec::new();
        while let Reply::Data(v) = d.transfer(1, Token::In, &[], 2048) {
            got.push(v[4..10].to_vec());
        }
        assert_eq!(got, vec![MAC.to_vec(), vec![0xff; 6]]);
        wr(&mut d, reg::MAC_CR, MAC_CR_RXEN | MAC_CR_PRMS);
        w.0.lock().unwrap().1.push_back(frame([2; 6]));
        let Reply::Data(v) = d.transfer(1, Token::In, &[], 2048) else {
            panic!("promiscuous mode takes every frame");
        };
        assert_eq!(
            u32::from_le_bytes(v[..4].try_into().unwrap()) >> 16,
            64,
            "frame + FCS"
        );
        assert_eq!(v.len(), 4 + 64, "no RX data offset, no checksum word");
    }

    #[test]
    fn the_phy_interrupt_reaches_the_interrupt_endpoint_until_its_source_is_read() {
        let (mut d, _) = ready();
        assert_eq!(d.transfer(3, Token::In, &[], 16), Reply::Nak);
        wr(&mut d, reg::INT_EP_CTL, INT_EP_CTL_PHY);
        // The PHY driver: mask in autonegotiation done, restart autonegotiation.
        wr(&mut d, reg::MII_DATA, u32::from(phy::INT_ANEG_COMP));
        wr(
            &mut d,
            reg::MII_ADDR,
            PHY_ADDR << 11 | 30 << 6 | MII_WRITE | MII_BUSY,
        );
        wr(
            &mut d,
            reg::MII_DATA,
            u32::from(phy::BMCR_DEFAULT | phy::BMCR_ANRESTART),
        );
        wr(&mut d, reg::MII_ADDR, PHY_ADDR << 11 | MII_WRITE | MII_BUSY);
        assert_eq!(
            d.transfer(3, Token::In, &[], 16),
            Reply::Data(INT_STS_PHY.to_le_bytes().to_vec())
        );
        wr(&mut d, reg::MII_ADDR, PHY_ADDR << 11 | 29 << 6 | MII_BUSY);
        assert_ne!(rd(&mut d, reg::MII_DATA) & u32::from(phy::INT_ANEG_COMP), 0);
        assert_eq!(d.transfer(3, Token::In, &[], 16), Reply::Nak);
    }
}
