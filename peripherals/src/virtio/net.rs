//! virtio-net (virtio 1.x section 5.1): an Ethernet NIC whose far side is a [`NetBackend`].
//! Queue 0 receives (host to guest), queue 1 transmits; no control queue, no offloads, one
//! queue pair. The device offers VIRTIO_NET_F_MAC (its address in configuration space);
//! VERSION_1 (which the transport requires) makes every frame carry the 12-byte
//! `virtio_net_hdr_v1` in front of it.
//!
//! Frames from the backend wait in a short queue until the guest has receive buffers posted:
//! [`VirtioMmio::<VirtioNet>::poll`] (called by the board's poller) pulls them from the backend
//! and fills the buffers. A frame too big for the buffer it gets is dropped (the buffer comes
//! back with length 0, which Linux counts as a length error).

use super::{config_bytes, device_id, Queue, QueueError, VirtioDevice, VirtioMmio};
use super::{STATUS_DRIVER_OK, STATUS_NEEDS_RESET};
use crate::net::NetBackend;
use armboard_bus::Ram;
use std::collections::VecDeque;

pub const RX_QUEUE: usize = 0;
pub const TX_QUEUE: usize = 1;
/// Queue size offered (QEMU's default for virtio-net).
pub const QUEUE_SIZE: u16 = 256;
/// The device's Ethernet address in configuration space.
pub const VIRTIO_NET_F_MAC: u64 = 1 << 5;
/// `struct virtio_net_hdr_v1`: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset,
/// num_buffers.
pub const HDR_LEN: usize = 12;
/// QEMU's default NIC address (locally administered, 52:54:00 is QEMU's prefix).
pub const DEFAULT_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// Frames held for the guest while it has no receive buffers posted; the backend keeps (and
/// bounds) the rest.
pub const RX_LIMIT: usize = 64;
/// The largest transmitted chain read (header plus a 64 KiB frame: more than any frame sent
/// without segmentation offloads).
pub const TX_MAX: usize = HDR_LEN + 65_550;

/// A virtio network device.
pub struct VirtioNet {
    backend: Box<dyn NetBackend>,
    config: [u8; 8],
    rx: VecDeque<Vec<u8>>,
}

impl VirtioNet {
    /// A NIC with address `mac` whose frames go to and come from `backend`.
    pub fn new(mac: [u8; 6], backend: Box<dyn NetBackend>) -> VirtioNet {
        // mac[6], then status (only meaningful with VIRTIO_NET_F_STATUS, not offered).
        let mut config = [0u8; 8];
        config[..6].copy_from_slice(&mac);
        VirtioNet {
            backend,
            config,
            rx: VecDeque::new(),
        }
    }

    pub fn mac(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.config[..6]);
        m
    }

    /// Take frames from the backend while there is room; whether any are waiting.
    fn pull(&mut self) -> bool {
        while self.rx.len() < RX_LIMIT {
            match self.backend.recv() {
                Some(f) => self.rx.push_back(f),
                None => break,
            }
        }
        !self.rx.is_empty()
    }

    fn receive(&mut self, q: &mut Queue, mem: &Ram) -> Result<bool, QueueError> {
        let mut used = false;
        while let Some(frame) = self.rx.front() {
            let Some(chain) = q.pop(mem)? else { break };
            let mut len = 0;
            if chain.writable_len() >= (HDR_LEN + frame.len()) as u64 {
                let mut hdr = [0u8; HDR_LEN];
                // num_buffers: one buffer per frame without VIRTIO_NET_F_MRG_RXBUF.
                hdr[10..12].copy_from_slice(&1u16.to_le_bytes());
                let mut w = chain.writer(mem);
                w.write(&hdr)?;
                w.write(frame)?;
                len = w.done as u32;
            } else {
                log::debug!(
                    "virtio-net: {}-byte frame dropped: receive buffer of {} bytes",
                    frame.len(),
                    chain.writable_len()
                );
            }
            self.rx.pop_front();
            q.add_used(mem, chain.head, len)?;
            used = true;
        }
        Ok(used)
    }

    fn transmit(&mut self, q: &mut Queue, mem: &Ram) -> Result<bool, QueueError> {
        let mut used = false;
        while let Some(chain) = q.pop(mem)? {
            let n = (chain.readable_len() as usize).min(TX_MAX);
            let mut buf = vec![0u8; n];
            let got = chain.reader(mem).read(&mut buf)?;
            if got > HDR_LEN {
                self.backend.send(&buf[HDR_LEN..got]);
            } else {
                log::debug!("virtio-net: {got}-byte transmit chain without a frame");
            }
            q.add_used(mem, chain.head, 0)?;
            used = true;
        }
        Ok(used)
    }
}

impl VirtioDevice for VirtioNet {
    fn device_id(&self) -> u32 {
        device_id::NET
    }

    fn features(&self) -> u64 {
        VIRTIO_NET_F_MAC
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        config_bytes(&self.config, offset, data);
    }

    fn process(&mut self, index: usize, q: &mut Queue, mem: &Ram) -> Result<bool, QueueError> {
        match index {
            RX_QUEUE => self.receive(q, mem),
            TX_QUEUE => self.transmit(q, mem),
            _ => Ok(false),
        }
    }

    fn reset(&mut self) {
        // Frames meant for the old driver's link are stale for the next one.
        self.rx.clear();
    }
}

impl VirtioMmio<VirtioNet> {
    /// Move frames from the backend into the guest's receive buffers (interrupting it if it
    /// asked). Frames that arrive while no driver runs the device are dropped.
    pub fn poll(&mut self) {
        let live = self.status() & (STATUS_DRIVER_OK | STATUS_NEEDS_RESET) == STATUS_DRIVER_OK;
        if !live {
            while self.device_mut().backend.recv().is_some() {}
            return;
        }
        if self.device_mut().pull() {
            self.kick(RX_QUEUE);
        }
    }
}
