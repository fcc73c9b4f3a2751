//! The built-in "user" network: a gateway (10.0.2.2 by default, as with QEMU's slirp) that
//! answers ARP requests for its address and ICMP echo requests sent to it. Everything else the
//! guest sends is dropped. No host networking is used.

use super::{checksum, NetBackend};
use std::collections::VecDeque;

const ETH_ARP: u16 = 0x0806;
const ETH_IPV4: u16 = 0x0800;
/// At most this many replies wait for the guest; older ones are dropped past it.
const QUEUE_MAX: usize = 256;

pub struct UserNet {
    ip: [u8; 4],
    mac: [u8; 6],
    queue: VecDeque<Vec<u8>>,
}

impl Default for UserNet {
    fn default() -> Self {
        Self::new([10, 0, 2, 2], [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02])
    }
}

impl UserNet {
    /// A gateway at `ip` with Ethernet address `mac`.
    pub fn new(ip: [u8; 4], mac: [u8; 6]) -> Self {
        Self {
            ip,
            mac,
            queue: VecDeque::new(),
        }
    }

    fn reply(&mut self, mut frame: Vec<u8>) {
        // Ethernet's minimum frame (without FCS) is 60 bytes.
        if frame.len() < 60 {
            frame.resize(60, 0);
        }
        if self.queue.len() >= QUEUE_MAX {
            self.queue.pop_front();
        }
        self.queue.push_back(frame);
    }

    fn arp(&mut self, f: &[u8]) {
        let a = &f[14..];
        if a.len() < 28 || a[0..2] != [0, 1] || a[2..4] != [8, 0] || a[4] != 6 || a[5] != 4 {
            return;
        }
        let op = u16::from_be_bytes([a[6], a[7]]);
        if op != 1 || a[24..28] != self.ip {
            return;
        }
        let (sha, spa) = (&a[8..14], &a[14..18]);
        let mut r = Vec::with_capacity(60);
        r.extend_from_slice(sha);
        r.extend_from_slice(&self.mac);
        r.extend_from_slice(&ETH_ARP.to_be_bytes());
        r.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
        r.extend_from_slice(&self.mac);
        r.extend_from_slice(&self.ip);
        r.extend_from_slice(sha);
        r.extend_from_slice(spa);
        self.reply(r);
    }

    fn ipv4(&mut self, f: &[u8]) {
        let ip = &f[14..];
        if ip.len() < 20 || ip[0] >> 4 != 4 {
            return;
        }
        let ihl = usize::from(ip[0] & 0xf) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if ihl < 20 || total < ihl + 8 || total > ip.len() || ip[16..20] != self.ip {
            return;
        }
        // Fragments (more-fragments set or an offset) are not reassembled.
        if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 || ip[9] != 1 {
            return;
        }
        let icmp = &ip[ihl..total];
        if icmp[0] != 8 || icmp[1] != 0 {
            return;
        }
        let mut r = Vec::with_capacity(14 + total);
        r.extend_from_slice(&f[6..12]);
        r.extend_from_slice(&self.mac);
        r.extend_from_slice(&ETH_IPV4.to_be_bytes());
        let h = r.len();
        r.extend_from_slice(&ip[..20]);
        r[h + 1] = 0; // TOS
        r[h + 2..h + 4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
        r[h + 6..h + 8].copy_from_slice(&[0, 0]);
        r[h + 8] = 64; // TTL
        r[h + 10..h + 12].copy_from_slice(&[0, 0]);
        r[h + 12..h + 16].copy_from_slice(&self.ip);
        r[h + 16..h + 20].copy_from_slice(&ip[12..16]);
        r[h] = 0x45;
        let c = checksum(&r[h..h + 20]);
        r[h + 10..h + 12].copy_from_slice(&c.to_be_bytes());
        let i = r.len();
        r.extend_from_slice(icmp);
        r[i] = 0; // echo reply
        r[i + 2..i + 4].copy_from_slice(&[0, 0]);
        let c = checksum(&r[i..]);
        r[i + 2..i + 4].copy_from_slice(&c.to_be_bytes());
        self.reply(r);
    }
}

impl NetBackend for UserNet {
    fn send(&mut self, f: &[u8]) {
        if f.len() < 14 {
            return;
        }
        match u16::from_be_bytes([f[12], f[13]]) {
            ETH_ARP => self.arp(f),
            ETH_IPV4 => self.ipv4(f),
            _ => {}
        }
    }

    fn recv(&mut self) -> Option<Vec<u8>> {
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::super::ones_sum;
    use super::*;

    const GUEST_MAC: [u8; 6] = [0xb8, 0x27, 0xeb, 0x2c, 0x3b, 0x4a];
    const GUEST_IP: [u8; 4] = [10, 0, 2, 15];

    fn arp_request(target: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&GUEST_MAC);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&GUEST_MAC);
        f.extend_from_slice(&GUEST_IP);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target);
        f
    }

    pub(crate) fn ping(dst_mac: [u8; 6], seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = dst_mac.to_vec();
        f.extend_from_slice(&GUEST_MAC);
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + 8 + payload.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&GUEST_IP);
        ip.extend_from_slice(&[10, 0, 2, 2]);
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut icmp = vec![8, 0, 0, 0, 0xab, 0xcd];
        icmp.extend_from_slice(&seq.to_be_bytes());
        icmp.extend_from_slice(payload);
        let c = checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&icmp);
        f
    }

    #[test]
    fn the_gateway_answers_arp_for_its_address_only() {
        let mut n = UserNet::default();
        n.send(&arp_request([10, 0, 2, 3]));
        assert!(n.recv().is_none());
        n.send(&arp_request([10, 0, 2, 2]));
        let r = n.recv().expect("an ARP reply");
        assert_eq!(r.len(), 60);
        assert_eq!(&r[0..6], &GUEST_MAC);
        assert_eq!(&r[6..12], &[0x52, 0x55, 0x0a, 0, 2, 2]);
        assert_eq!(&r[12..14], &[0x08, 0x06]);
        assert_eq!(&r[20..22], &[0, 2], "op = reply");
        assert_eq!(&r[22..28], &[0x52, 0x55, 0x0a, 0, 2, 2]);
        assert_eq!(&r[28..32], &[10, 0, 2, 2]);
        assert_eq!(&r[32..38], &GUEST_MAC);
        assert_eq!(&r[38..42], &GUEST_IP);
    }

    #[test]
    fn the_gateway_echoes_pings_with_valid_checksums() {
        let mut n = UserNet::default();
        let gw = [0x52, 0x55, 0x0a, 0, 2, 2];
        n.send(&ping(gw, 7, b"hello, gateway!"));
        let r = n.recv().expect("an echo reply");
        assert_eq!(&r[0..6], &GUEST_MAC);
        let ip = &r[14..34];
        assert_eq!(ones_sum(ip), 0xffff, "IP header checksum");
        assert_eq!(&ip[12..16], &[10, 0, 2, 2]);
        assert_eq!(&ip[16..20], &GUEST_IP);
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let icmp = &r[34..14 + total];
        assert_eq!(icmp[0], 0, "echo reply");
        assert_eq!(ones_sum(icmp), 0xffff, "ICMP checksum");
        assert_eq!(&icmp[4..8], &[0xab, 0xcd, 0, 7], "id and sequence kept");
        assert_eq!(&icmp[8..], b"hello, gateway!");
        assert!(n.recv().is_none());
    }
}
