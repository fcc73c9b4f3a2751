//! virtio-net driven as Linux's virtio_net does: MAC read from configuration space a byte at
//! a time, single-descriptor receive buffers (header and frame together, as
//! `add_recvbuf_small` posts them), transmits with the header pushed in front of the frame
//! or in a descriptor of its own.

use super::*;
use crate::net::{checksum, user::UserNet, NetBackend};
use crate::virtio::net::{self, VirtioNet, DEFAULT_MAC, HDR_LEN, RX_QUEUE, TX_QUEUE};
use std::collections::VecDeque;

const GW_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
const GUEST_IP: [u8; 4] = [10, 0, 2, 15];
const GW_IP: [u8; 4] = [10, 0, 2, 2];
/// Linux's small receive buffer: header plus GOOD_PACKET_LEN (1518).
const RX_BUF: u32 = (HDR_LEN + 1518) as u32;

/// Frames the guest sent, and frames waiting for it.
#[derive(Default)]
struct Frames {
    sent: Vec<Vec<u8>>,
    waiting: VecDeque<Vec<u8>>,
}

/// A backend the test feeds and watches.
#[derive(Clone, Default)]
struct Wire(Arc<Mutex<Frames>>);
impl NetBackend for Wire {
    fn send(&mut self, frame: &[u8]) {
        self.0.lock().unwrap().sent.push(frame.to_vec());
    }
    fn recv(&mut self) -> Option<Vec<u8>> {
        self.0.lock().unwrap().waiting.pop_front()
    }
}
impl Wire {
    fn inject(&self, f: Vec<u8>) {
        self.0.lock().unwrap().waiting.push_back(f);
    }
    fn sent(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.0.lock().unwrap().sent)
    }
    fn waiting(&self) -> usize {
        self.0.lock().unwrap().waiting.len()
    }
}

fn arp_request(target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&DEFAULT_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&DEFAULT_MAC);
    f.extend_from_slice(&GUEST_IP);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f
}

fn ping(seq: u16) -> Vec<u8> {
    let mut f = GW_MAC.to_vec();
    f.extend_from_slice(&DEFAULT_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 36, 0, 1, 0x40, 0, 64, 1, 0, 0];
    ip.extend_from_slice(&GUEST_IP);
    ip.extend_from_slice(&GW_IP);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(b"pingpong");
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&icmp);
    f
}

fn net_driver(backend: Box<dyn NetBackend>) -> Driver<VirtioNet> {
    let mut d = Driver::new(VirtioNet::new(DEFAULT_MAC, backend));
    d.bring_up(16);
    d
}

/// Post `n` receive buffers of `len` bytes from `at` on, as the driver fills its ring.
fn post_rx(d: &mut Driver<VirtioNet>, at: u64, n: u64, len: u32) -> Vec<u16> {
    let heads = (0..n)
        .map(|i| d.post(RX_QUEUE, &[(at + i * 0x800, len, W)]))
        .collect();
    d.notify(RX_QUEUE);
    heads
}

/// Transmit `frame` with a zero header pushed in front of it (one descriptor).
fn send_pushed(d: &mut Driver<VirtioNet>, at: u64, frame: &[u8]) {
    d.mem.write(at, &[0; HDR_LEN]).unwrap();
    d.mem.write(at + HDR_LEN as u64, frame).unwrap();
    d.submit(TX_QUEUE, &[(at, (HDR_LEN + frame.len()) as u32, F)]);
}

/// Transmit `frame` with its header in a descriptor of its own and the frame in two pieces.
fn send_split(d: &mut Driver<VirtioNet>, at: u64, frame: &[u8]) {
    d.mem.write(at, &[0; HDR_LEN]).unwrap();
    d.mem.write(at + 0x100, frame).unwrap();
    let half = (frame.len() / 2) as u32;
    d.submit(
        TX_QUEUE,
        &[
            (at, HDR_LEN as u32, F),
            (at + 0x100, half, F),
            (at + 0x100 + half as u64, frame.len() as u32 - half, F),
        ],
    );
}

#[test]
fn net_identifies_itself_and_reports_its_mac() {
    let mut d = Driver::new(VirtioNet::new(DEFAULT_MAC, Box::new(Wire::default())));
    assert_eq!(d.r(DEVICE_ID), device_id::NET);
    d.w(DEVICE_FEATURES_SEL, 0);
    let lo = d.r(DEVICE_FEATURES) as u64;
    d.w(DEVICE_FEATURES_SEL, 1);
    let hi = d.r(DEVICE_FEATURES) as u64;
    let features = hi << 32 | lo;
    assert_ne!(features & net::VIRTIO_NET_F_MAC, 0);
    assert_ne!(features & VIRTIO_F_VERSION_1, 0);
    // No checksum/segmentation offloads, no merged buffers, no control queue, no status.
    assert_eq!(
        features & 0xFFFF_FFFF & !(net::VIRTIO_NET_F_MAC | 1 << 28),
        0
    );
    let mac: Vec<u8> = (0..6).map(|i| d.dev.read(CONFIG + i, 1) as u8).collect();
    assert_eq!(mac, DEFAULT_MAC);
    assert_eq!(d.dev.device().mac(), DEFAULT_MAC);
    for q in [RX_QUEUE, TX_QUEUE] {
        d.w(QUEUE_SEL, q as u32);
        assert_eq!(d.r(QUEUE_NUM_MAX), net::QUEUE_SIZE as u32);
    }
    d.w(QUEUE_SEL, 2);
    assert_eq!(d.r(QUEUE_NUM_MAX), 0, "no control queue");
}

#[test]
fn net_pings_the_user_gateway() {
    let mut d = net_driver(Box::new(UserNet::default()));
    let rx = post_rx(&mut d, DATA, 4, RX_BUF);
    assert!(d.used(RX_QUEUE).is_none(), "nothing received yet");
    send_split(&mut d, DATA + 0x4000, &arp_request(GW_IP));
    assert!(d.used(TX_QUEUE).is_some(), "transmit buffer returned");
    d.ack_interrupt();
    d.dev.poll();
    assert!(d.irq.0.load(Ordering::SeqCst), "receive interrupt");
    assert_eq!(d.ack_interrupt(), INT_USED_BUFFER);
    assert_eq!(
        d.used(RX_QUEUE),
        Some((rx[0] as u32, (HDR_LEN + 60) as u32))
    );
    let got = d.bytes(DATA, HDR_LEN + 60);
    assert_eq!(&got[..10], &[0; 10], "no offload flags");
    assert_eq!(&got[10..12], &[1, 0], "num_buffers");
    let arp = &got[HDR_LEN..];
    assert_eq!(&arp[0..6], &DEFAULT_MAC);
    assert_eq!(&arp[12..14], &[0x08, 0x06]);
    assert_eq!(&arp[20..22], &[0, 2], "ARP reply");
    assert_eq!(&arp[22..28], &GW_MAC);

    send_pushed(&mut d, DATA + 0x4000, &ping(3));
    assert!(d.used(TX_QUEUE).is_some());
    d.dev.poll();
    let (head, len) = d.used(RX_QUEUE).expect("an echo reply");
    assert_eq!(head, rx[1] as u32);
    let reply = d.bytes(DATA + 0x800 + HDR_LEN as u64, len as usize - HDR_LEN);
    assert_eq!(&reply[0..6], &DEFAULT_MAC);
    assert_eq!(&reply[6..12], &GW_MAC);
    assert_eq!(&reply[26..30], &GW_IP);
    assert_eq!(&reply[30..34], &GUEST_IP);
    assert_eq!(reply[34], 0, "echo reply");
    assert_eq!(&reply[38..42], &[0x12, 0x34, 0, 3]);
    assert_eq!(&reply[42..50], b"pingpong");
    assert!(d.used(RX_QUEUE).is_none());
}

#[test]
fn net_transmits_frames_without_their_header() {
    let wire = Wire::default();
    let mut d = net_driver(Box::new(wire.clone()));
    let frame: Vec<u8> = (0..100u8).collect();
    send_pushed(&mut d, DATA, &frame);
    send_split(&mut d, DATA + 0x1000, &frame[..61]);
    // A chain holding only part of a header carries no frame.
    d.submit(TX_QUEUE, &[(DATA, 8, F)]);
    assert_eq!(wire.sent(), vec![frame.clone(), frame[..61].to_vec()]);
    for _ in 0..3 {
        assert_eq!(d.used(TX_QUEUE).map(|u| u.1), Some(0));
    }
    assert!(d.irq.0.load(Ordering::SeqCst));
}

#[test]
fn net_frames_wait_for_buffers_and_too_big_ones_are_dropped() {
    let wire = Wire::default();
    let mut d = net_driver(Box::new(wire.clone()));
    wire.inject(vec![0xaa; 200]);
    wire.inject(vec![0xbb; 60]);
    d.dev.poll();
    assert!(d.used(RX_QUEUE).is_none());
    assert!(!d.irq.0.load(Ordering::SeqCst), "nothing to receive into");
    assert_eq!(wire.waiting(), 0, "held by the device");
    // A buffer too small for the first frame: it is dropped, the buffer returned empty.
    let small = post_rx(&mut d, DATA, 1, 100);
    assert_eq!(d.used(RX_QUEUE), Some((small[0] as u32, 0)));
    let big = post_rx(&mut d, DATA + 0x1000, 1, RX_BUF);
    assert_eq!(
        d.used(RX_QUEUE),
        Some((big[0] as u32, (HDR_LEN + 60) as u32))
    );
    assert_eq!(d.bytes(DATA + 0x1000 + HDR_LEN as u64, 60), vec![0xbb; 60]);
}

#[test]
fn net_drops_frames_while_no_driver_runs_it_and_after_reset() {
    let wire = Wire::default();
    let mut d = Driver::new(VirtioNet::new(DEFAULT_MAC, Box::new(wire.clone())));
    wire.inject(vec![1; 60]);
    d.dev.poll();
    assert_eq!(wire.waiting(), 0, "drained before DRIVER_OK");
    d.bring_up(16);
    wire.inject(vec![2; 60]);
    d.dev.poll();
    // Reset with the frame still waiting for a buffer; the next driver does not get it.
    d.w(STATUS, 0);
    d.queues.clear();
    d.bring_up(16);
    post_rx(&mut d, DATA, 2, RX_BUF);
    d.dev.poll();
    assert!(d.used(RX_QUEUE).is_none());
    wire.inject(vec![3; 60]);
    d.dev.poll();
    assert_eq!(d.used(RX_QUEUE).map(|u| u.1), Some((HDR_LEN + 60) as u32));
    assert_eq!(d.bytes(DATA + HDR_LEN as u64, 60), vec![3; 60]);
}
