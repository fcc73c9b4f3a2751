//! The transport and devices driven the way Linux's virtio_mmio and drivers do, with rings
//! built in guest RAM by the test.

use super::blk::*;
use super::*;
use armboard_bus::IrqSink;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

const RAM_BASE: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 0x10_0000;
const DATA: u64 = RAM_BASE + 0x8_0000;

#[derive(Default)]
struct Level(AtomicBool);
impl IrqSink for Level {
    fn set_level(&self, _line: u32, level: bool) {
        self.0.store(level, Ordering::SeqCst);
    }
}

#[derive(Clone, Default)]
struct Out(Arc<Mutex<Vec<u8>>>);
impl Write for Out {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct DrvQueue {
    desc: u64,
    avail: u64,
    used: u64,
    size: u16,
    next_desc: u16,
    avail_idx: u16,
    used_seen: u16,
}

struct Driver<D: VirtioDevice> {
    dev: VirtioMmio<D>,
    mem: Arc<Ram>,
    irq: Arc<Level>,
    queues: Vec<DrvQueue>,
}

const F: u8 = 0; // readable
const W: u8 = 1; // writable

impl<D: VirtioDevice> Driver<D> {
    fn new(dev: D) -> Self {
        let mem = Arc::new(Ram::new(RAM_BASE, RAM_SIZE).unwrap());
        let irq = Arc::new(Level::default());
        let dev = VirtioMmio::new(dev, mem.clone(), IrqLine::new(irq.clone(), 48));
        Driver {
            dev,
            mem,
            irq,
            queues: Vec::new(),
        }
    }

    fn r(&mut self, off: u64) -> u32 {
        self.dev.read(off, 4) as u32
    }
    fn w(&mut self, off: u64, v: u32) {
        self.dev.write(off, 4, v as u64)
    }

    /// Linux's probe + virtio_dev_probe + find_vqs, accepting every offered feature.
    fn bring_up(&mut self, size: u16) {
        self.w(STATUS, 0);
        self.w(STATUS, STATUS_ACKNOWLEDGE);
        self.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        self.w(DEVICE_FEATURES_SEL, 1);
        let hi = self.r(DEVICE_FEATURES);
        self.w(DEVICE_FEATURES_SEL, 0);
        let lo = self.r(DEVICE_FEATURES);
        self.w(DRIVER_FEATURES_SEL, 1);
        self.w(DRIVER_FEATURES, hi);
        self.w(DRIVER_FEATURES_SEL, 0);
        self.w(DRIVER_FEATURES, lo);
        self.w(
            STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
        );
        assert_ne!(self.r(STATUS) & STATUS_FEATURES_OK, 0);
        let nq = self.dev.device().queue_max_sizes().len();
        for i in 0..nq {
            self.w(QUEUE_SEL, i as u32);
            assert_eq!(self.r(QUEUE_READY), 0);
            let size = size.min(self.r(QUEUE_NUM_MAX) as u16);
            let base = RAM_BASE + 0x1_0000 * i as u64;
            let q = DrvQueue {
                desc: base,
                avail: base + 0x4000,
                used: base + 0x8000,
                size,
                next_desc: 0,
                avail_idx: 0,
                used_seen: 0,
            };
            self.w(QUEUE_NUM, size as u32);
            self.w(QUEUE_DESC_LOW, q.desc as u32);
            self.w(QUEUE_DESC_HIGH, (q.desc >> 32) as u32);
            self.w(QUEUE_DRIVER_LOW, q.avail as u32);
            self.w(QUEUE_DRIVER_HIGH, 0);
            self.w(QUEUE_DEVICE_LOW, q.used as u32);
            self.w(QUEUE_DEVICE_HIGH, 0);
            self.w(QUEUE_READY, 1);
            self.queues.push(q);
        }
        self.w(
            STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
        );
    }

    fn write_desc(&self, at: u64, addr: u64, len: u32, flags: u16, next: u16) {
        self.mem.store(at, 8, addr).unwrap();
        self.mem.store(at + 8, 4, len as u64).unwrap();
        self.mem.store(at + 12, 2, flags as u64).unwrap();
        self.mem.store(at + 14, 2, next as u64).unwrap();
    }

    /// Post a chain of (addr, len, W/F) buffers without notifying; returns the head.
    fn post(&mut self, qi: usize, bufs: &[(u64, u32, u8)]) -> u16 {
        let q = &mut self.queues[qi];
        let head = q.next_desc;
        let mut cur = head;
        let mut descs = Vec::new();
        for (i, &(addr, len, w)) in bufs.iter().enumerate() {
            let next = (cur + 1) % q.size;
            let mut flags = if w == W { 2 } else { 0 };
            if i + 1 < bufs.len() {
                flags |= 1;
            }
            descs.push((q.desc + 16 * cur as u64, addr, len, flags, next));
            cur = next;
        }
        q.next_desc = cur;
        let slot = q.avail + 4 + 2 * (q.avail_idx % q.size) as u64;
        q.avail_idx = q.avail_idx.wrapping_add(1);
        let (avail, idx) = (q.avail, q.avail_idx);
        for d in descs {
            self.write_desc(d.0, d.1, d.2, d.3, d.4);
        }
        self.mem.store(slot, 2, head as u64).unwrap();
        self.mem.store(avail + 2, 2, idx as u64).unwrap();
        head
    }

    fn notify(&mut self, qi: usize) {
        self.w(QUEUE_NOTIFY, qi as u32);
    }

    fn submit(&mut self, qi: usize, bufs: &[(u64, u32, u8)]) -> u16 {
        let h = self.post(qi, bufs);
        self.notify(qi);
        h
    }

    fn used(&mut self, qi: usize) -> Option<(u32, u32)> {
        let q = &mut self.queues[qi];
        let idx = self.mem.load(q.used + 2, 2).unwrap() as u16;
        if idx == q.used_seen {
            return None;
        }
        let at = q.used + 4 + 8 * (q.used_seen % q.size) as u64;
        q.used_seen = q.used_seen.wrapping_add(1);
        Some((
            self.mem.load(at, 4).unwrap() as u32,
            self.mem.load(at + 4, 4).unwrap() as u32,
        ))
    }

    fn ack_interrupt(&mut self) -> u32 {
        let s = self.r(INTERRUPT_STATUS);
        self.w(INTERRUPT_ACK, s);
        s
    }

    fn bytes(&self, pa: u64, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.mem.read(pa, &mut v).unwrap();
        v
    }
}

struct TempFile(PathBuf);
impl TempFile {
    fn new(name: &str, content: &[u8]) -> TempFile {
        let p = std::env::temp_dir().join(format!("armboard-{}-{name}", std::process::id()));
        std::fs::write(&p, content).unwrap();
        TempFile(p)
    }
}
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn blk_header(mem: &Ram, at: u64, kind: u32, sector: u64) {
    mem.store(at, 4, kind as u64).unwrap();
    mem.store(at + 4, 4, 0).unwrap();
    mem.store(at + 8, 8, sector).unwrap();
}

#[test]
fn registers_identify_a_version_2_device() {
    let mut d = Driver::new(VirtioRng::with_source(Box::new(std::io::repeat(1))));
    assert_eq!(d.r(MAGIC_VALUE), 0x7472_6976);
    assert_eq!(d.r(VERSION), 2);
    assert_eq!(d.r(DEVICE_ID), device_id::ENTROPY);
    assert_eq!(d.r(VENDOR), 0x554D_4551);
    d.w(DEVICE_FEATURES_SEL, 1);
    assert_eq!(d.r(DEVICE_FEATURES) & 1, 1, "VIRTIO_F_VERSION_1");
    d.w(QUEUE_SEL, 0);
    assert_eq!(d.r(QUEUE_NUM_MAX), rng::QUEUE_SIZE as u32);
    d.w(QUEUE_NUM, 3);
    assert_eq!(
        d.r(QUEUE_NUM),
        rng::QUEUE_SIZE as u32,
        "not a power of two: refused"
    );
    d.w(QUEUE_NUM, 16);
    assert_eq!(d.r(QUEUE_NUM), 16);
    d.w(QUEUE_NUM, 4096);
    assert_eq!(d.r(QUEUE_NUM), 16, "above QueueNumMax: refused");
    d.w(QUEUE_SEL, 1);
    assert_eq!(d.r(QUEUE_NUM_MAX), 0, "no second queue");
    assert_eq!(d.r(SHM_LEN_LOW), u32::MAX);
    d.w(STATUS, 3);
    assert_eq!(d.r(STATUS), 3);
    d.w(STATUS, 0);
    assert_eq!(d.r(STATUS), 0);
    assert_eq!(d.dev.read(DEVICE_ID, 2), 0, "registers are 32-bit only");
}

#[test]
fn features_ok_needs_version_1() {
    let mut d = Driver::new(VirtioRng::with_source(Box::new(std::io::repeat(1))));
    d.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    d.w(DRIVER_FEATURES_SEL, 0);
    d.w(DRIVER_FEATURES, 0);
    d.w(
        STATUS,
        STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
    );
    assert_eq!(d.r(STATUS) & STATUS_FEATURES_OK, 0);
    // A feature the device did not offer is refused too.
    d.w(STATUS, 0);
    d.w(DRIVER_FEATURES_SEL, 1);
    d.w(DRIVER_FEATURES, 1 | 1 << 20);
    d.w(
        STATUS,
        STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
    );
    assert_eq!(d.r(STATUS) & STATUS_FEATURES_OK, 0);
}

#[test]
fn rng_fills_buffers_and_interrupts() {
    let mut d = Driver::new(VirtioRng::with_source(Box::new(std::io::repeat(0xA5))));
    d.bring_up(16);
    assert!(!d.irq.0.load(Ordering::SeqCst));
    let head = d.submit(0, &[(DATA, 10, W), (DATA + 0x100, 6, W)]);
    assert_eq!(d.used(0), Some((head as u32, 16)));
    assert_eq!(d.bytes(DATA, 10), vec![0xA5; 10]);
    assert_eq!(
        d.bytes(DATA + 0x100, 7),
        [[0xA5; 6].as_slice(), &[0]].concat()
    );
    assert!(d.irq.0.load(Ordering::SeqCst));
    assert_eq!(d.ack_interrupt(), INT_USED_BUFFER);
    assert!(!d.irq.0.load(Ordering::SeqCst));
}

#[test]
fn real_entropy_source_works() {
    let mut d = Driver::new(VirtioRng::new().unwrap());
    d.bring_up(8);
    d.submit(0, &[(DATA, 64, W)]);
    assert_eq!(d.used(0).map(|u| u.1), Some(64));
    assert_ne!(d.bytes(DATA, 64), vec![0; 64]);
}

#[test]
fn no_interrupt_flag_suppresses_the_interrupt() {
    let mut d = Driver::new(VirtioRng::with_source(Box::new(std::io::repeat(1))));
    d.bring_up(8);
    let avail = d.queues[0].avail;
    d.mem.store(avail, 2, 1).unwrap();
    d.submit(0, &[(DATA, 4, W)]);
    assert!(d.used(0).is_some());
    assert!(!d.irq.0.load(Ordering::SeqCst));
}

#[test]
fn blk_config_reports_capacity_rounded_down() {
    let f = TempFile::new("cap.img", &vec![0u8; 8 * 512 + 100]);
    let mut d = Driver::new(VirtioBlk::open(&f.0, false).unwrap());
    assert_eq!(d.dev.read(CONFIG, 8), 8);
    assert_eq!(d.dev.read(CONFIG + 4, 4), 0);
    assert_eq!(d.dev.read(CONFIG + 20, 4), 512, "blk_size");
    assert_eq!(d.dev.read(CONFIG + 12, 4), 254, "seg_max");
    let f0 = d.r(DEVICE_FEATURES);
    assert_ne!(f0 as u64 & VIRTIO_BLK_F_FLUSH, 0);
    assert_eq!(f0 as u64 & VIRTIO_BLK_F_RO, 0);
}

#[test]
fn blk_writes_reach_the_file_and_read_back() {
    let f = TempFile::new("rw.img", &vec![0u8; 16 * 512]);
    let mut d = Driver::new(VirtioBlk::open(&f.0, false).unwrap());
    d.bring_up(32);
    let data: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
    d.mem.write(DATA + 0x1000, &data).unwrap();
    blk_header(&d.mem, DATA, VIRTIO_BLK_T_OUT, 3);
    // Header, data in two pieces, status: as Linux lays a request out.
    let h = d.submit(
        0,
        &[
            (DATA, 16, F),
            (DATA + 0x1000, 512, F),
            (DATA + 0x1200, 512, F),
            (DATA + 0x3000, 1, W),
        ],
    );
    assert_eq!(d.used(0), Some((h as u32, 1)));
    assert_eq!(d.bytes(DATA + 0x3000, 1), [VIRTIO_BLK_S_OK]);
    let file = std::fs::read(&f.0).unwrap();
    assert_eq!(&file[3 * 512..5 * 512], &data[..]);
    assert!(file[..3 * 512].iter().all(|&b| b == 0));

    // Read sectors 3..5 back, split differently.
    blk_header(&d.mem, DATA + 0x100, VIRTIO_BLK_T_IN, 3);
    d.mem.store(DATA + 0x3000, 1, 0xFF).unwrap();
    let h = d.submit(
        0,
        &[
            (DATA + 0x100, 16, F),
            (DATA + 0x5000, 100, W),
            (DATA + 0x6000, 924, W),
            (DATA + 0x3000, 1, W),
        ],
    );
    assert_eq!(d.used(0), Some((h as u32, 1025)));
    assert_eq!(d.bytes(DATA + 0x5000, 100), &data[..100]);
    assert_eq!(d.bytes(DATA + 0x6000, 924), &data[100..]);
    assert_eq!(d.bytes(DATA + 0x3000, 1), [VIRTIO_BLK_S_OK]);

    // Flush.
    blk_header(&d.mem, DATA + 0x200, VIRTIO_BLK_T_FLUSH, 0);
    d.submit(0, &[(DATA + 0x200, 16, F), (DATA + 0x3000, 1, W)]);
    assert_eq!(d.used(0).map(|u| u.1), Some(1));
    assert_eq!(d.bytes(DATA + 0x3000, 1), [VIRTIO_BLK_S_OK]);
}

#[test]
fn blk_get_id_errors_and_read_only() {
    let f = TempFile::new("ro.img", &vec![0x5Au8; 4 * 512]);
    let mut blk = VirtioBlk::open(&f.0, true).unwrap();
    blk.set_serial(b"serial-1");
    let mut d = Driver::new(blk);
    assert_ne!(d.r(DEVICE_FEATURES) as u64 & VIRTIO_BLK_F_RO, 0);
    d.bring_up(32);

    blk_header(&d.mem, DATA, VIRTIO_BLK_T_GET_ID, 0);
    d.submit(
        0,
        &[(DATA, 16, F), (DATA + 0x1000, 20, W), (DATA + 0x3000, 1, W)],
    );
    assert_eq!(d.used(0).map(|u| u.1), Some(21));
    assert_eq!(&d.bytes(DATA + 0x1000, 9), b"serial-1\0");

    // Write to a read-only disk.
    blk_header(&d.mem, DATA, VIRTIO_BLK_T_OUT, 0);
    d.submit(
        0,
        &[
            (DATA, 16, F),
            (DATA + 0x1000, 512, F),
            (DATA + 0x3000, 1, W),
        ],
    );
    d.used(0).unwrap();
    assert_eq!(d.bytes(DATA + 0x3000, 1), [VIRTIO_BLK_S_IOERR]);
    assert_eq!(std::fs::read(&f.0).unwrap(), vec![0x5A; 4 * 512]);

    // Read past the end.
    blk_header(&d.mem, DATA, VIRTIO_BLK_T_IN, 3);
    d.submit(
        0,
        &[
            (DATA, 16, F),
            (DATA + 0x1000, 1024, W),
            (DATA + 0x3000, 1, W),
        ],
    );
    d.used(0).unwrap();
    assert_eq!(d.bytes(DATA + 0x3000, 1), [VIRTIO_BLK_S_IOERR]);

    // Data buffer outside guest RAM.
    blk_header(&d.mem, DATA, VIRTIO_BLK_T_IN, 0);
    d.submit(0, &[(DATA, 16, F), (0x1000, 512, W), (DATA + 0x3000, 1, W)]);
    d.used(0).unwrap();
    assert_eq!(d.bytes(DATA + 0x3000, 1), [VIRTIO_BLK_S_IOERR]);

    // Unknown request type.
    blk_header(&d.mem, DATA, 99, 0);
    d.submit(0, &[(DATA, 16, F), (DATA + 0x3000, 1, W)]);
    d.used(0).unwrap();
    assert_eq!(d.bytes(DATA + 0x3000, 1), [VIRTIO_BLK_S_UNSUPP]);
    assert_eq!(d.r(STATUS) & STATUS_NEEDS_RESET, 0);
}

#[test]
fn blk_indirect_descriptors() {
    let f = TempFile::new(
        "ind.img",
        &(0..2048u32).map(|i| i as u8).collect::<Vec<_>>(),
    );
    let mut d = Driver::new(VirtioBlk::open(&f.0, false).unwrap());
    d.bring_up(8);
    blk_header(&d.mem, DATA, VIRTIO_BLK_T_IN, 1);
    let table = DATA + 0x8000;
    d.write_desc(table, DATA, 16, 1, 1);
    d.write_desc(table + 16, DATA + 0x1000, 512, 2 | 1, 2);
    d.write_desc(table + 32, DATA + 0x3000, 1, 2, 0);
    // One ring descriptor pointing at the table.
    let q = &d.queues[0];
    let (desc, avail) = (q.desc, q.avail);
    d.write_desc(desc, table, 48, 4, 0);
    d.mem.store(avail + 4, 2, 0).unwrap();
    d.mem.store(avail + 2, 2, 1).unwrap();
    d.notify(0);
    assert_eq!(d.used(0), Some((0, 513)));
    assert_eq!(d.bytes(DATA + 0x1000, 4), [0, 1, 2, 3]);
    assert_eq!(d.bytes(DATA + 0x3000, 1), [VIRTIO_BLK_S_OK]);
}

#[test]
fn looping_chain_needs_reset_and_reset_recovers() {
    let mut d = Driver::new(VirtioRng::with_source(Box::new(std::io::repeat(1))));
    d.bring_up(8);
    let q = &d.queues[0];
    let (desc, avail) = (q.desc, q.avail);
    // Descriptor 0 chains to itself forever.
    d.write_desc(desc, DATA, 4, 2 | 1, 0);
    d.mem.store(avail + 4, 2, 0).unwrap();
    d.mem.store(avail + 2, 2, 1).unwrap();
    d.notify(0);
    assert_ne!(d.r(STATUS) & STATUS_NEEDS_RESET, 0);
    assert_eq!(d.ack_interrupt(), INT_CONFIG_CHANGE);
    assert!(d.used(0).is_none());
    // Reset and bring up again on fresh (zeroed) rings: works.
    d.mem.write(desc, &[0; 0x9000]).unwrap();
    d.queues.clear();
    d.bring_up(8);
    assert_eq!(d.r(STATUS) & STATUS_NEEDS_RESET, 0);
    d.submit(0, &[(DATA, 4, W)]);
    assert_eq!(d.used(0).map(|u| u.1), Some(4));
}

#[test]
fn bad_indices_and_rings_outside_ram_need_reset() {
    let mut d = Driver::new(VirtioRng::with_source(Box::new(std::io::repeat(1))));
    d.bring_up(8);
    let avail = d.queues[0].avail;
    d.mem.store(avail + 4, 2, 200).unwrap(); // head beyond the table
    d.mem.store(avail + 2, 2, 1).unwrap();
    d.notify(0);
    assert_ne!(d.r(STATUS) & STATUS_NEEDS_RESET, 0);

    let mut d = Driver::new(VirtioRng::with_source(Box::new(std::io::repeat(1))));
    d.bring_up(8);
    d.w(QUEUE_SEL, 0);
    d.w(QUEUE_DRIVER_LOW, 0x1000); // not RAM
    d.notify(0);
    assert_ne!(d.r(STATUS) & STATUS_NEEDS_RESET, 0);
}

#[test]
fn console_transmits_and_receives() {
    let out = Out::default();
    let mut d = Driver::new(VirtioConsole::new(Box::new(out.clone())));
    assert_eq!(d.r(DEVICE_ID), device_id::CONSOLE);
    // Input typed before the driver is up waits.
    assert_eq!(d.dev.push_input(b"early "), 6);
    d.bring_up(16);
    d.mem.write(DATA, b"hello, world\n").unwrap();
    d.submit(console::TX_QUEUE, &[(DATA, 7, F), (DATA + 7, 6, F)]);
    assert!(d.used(console::TX_QUEUE).is_some());
    assert_eq!(&*out.0.lock().unwrap(), b"hello, world\n");

    // The guest posts a receive buffer: the early input lands in it.
    let h = d.submit(console::RX_QUEUE, &[(DATA + 0x100, 64, W)]);
    assert_eq!(d.used(console::RX_QUEUE), Some((h as u32, 6)));
    assert_eq!(&d.bytes(DATA + 0x100, 6), b"early ");
    // With a buffer already posted, input is delivered at once, split across buffers.
    d.post(console::RX_QUEUE, &[(DATA + 0x200, 3, W)]);
    d.post(console::RX_QUEUE, &[(DATA + 0x300, 64, W)]);
    d.ack_interrupt();
    assert_eq!(d.dev.push_input(b"typed"), 5);
    assert_eq!(d.used(console::RX_QUEUE).map(|u| u.1), Some(3));
    assert_eq!(d.used(console::RX_QUEUE).map(|u| u.1), Some(2));
    assert_eq!(&d.bytes(DATA + 0x200, 3), b"typ");
    assert_eq!(&d.bytes(DATA + 0x300, 2), b"ed");
    assert!(d.irq.0.load(Ordering::SeqCst));
    // Input beyond the bound is refused, not dropped silently.
    let big = vec![b'x'; console::INPUT_LIMIT + 10];
    assert_eq!(d.dev.push_input(&big), console::INPUT_LIMIT);
}

mod net;
