//! Devices wired as a board would: a PL011 behind `Shared`, fed by another thread, interrupting
//! a CPU through the GIC.

use armboard_bus::{Bus, CpuInterrupts, IrqLine, Shared};
use armboard_peripherals::{gic, pl011::Pl011};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn uart_input_from_another_thread_interrupts_the_cpu_through_the_gic() {
    let cpu0 = Arc::new(CpuInterrupts::new(Arc::new(AtomicBool::new(false))));
    let g = gic::Gic::new(1, 64, vec![cpu0.clone()]);
    let uart = Shared::new(Pl011::new(
        Box::new(std::io::sink()),
        IrqLine::new(g.clone(), 33),
    ));

    let mut bus = Bus::new();
    bus.insert(0x0800_0000, gic::DIST_SIZE, Box::new(g.distributor()))
        .unwrap();
    bus.insert(0x0801_0000, gic::CPU_IF_SIZE, Box::new(g.cpu_interface()))
        .unwrap();
    bus.insert(0x0900_0000, 0x1000, Box::new(uart.clone()))
        .unwrap();

    // The guest: GIC on, SPI 33 enabled, UART enabled with RX interrupts unmasked.
    bus.write_from(0, 0x0800_0000, 4, 1).unwrap();
    bus.write_from(0, 0x0800_0104, 4, 1 << 1).unwrap();
    bus.write_from(0, 0x0801_0004, 4, 0xF0).unwrap();
    bus.write_from(0, 0x0801_0000, 4, 1).unwrap();
    bus.write(0x0900_0030, 4, 0x301).unwrap();
    bus.write(0x0900_0038, 4, 0x50).unwrap();
    assert!(!cpu0.irq());

    let feeder = {
        let uart = uart.clone();
        std::thread::spawn(move || {
            let mut left: &[u8] = b"ok";
            // Bounded: the FIFO (1 entry without FEN) takes a byte each time the guest reads.
            for _ in 0..5000 {
                if left.is_empty() {
                    break;
                }
                let n = uart.lock().push_input(left);
                left = &left[n..];
                std::thread::sleep(Duration::from_millis(1));
            }
            left.is_empty()
        })
    };
    // The guest: WFI until the interrupt, acknowledge, drain the UART, EOI.
    let mut got = Vec::new();
    for _ in 0..1000 {
        if got.len() == 2 {
            break;
        }
        if !cpu0.irq() {
            cpu0.wait(Some(Duration::from_millis(10)));
            continue;
        }
        assert_eq!(bus.read_from(0, 0x0801_000C, 4).unwrap(), 33);
        while bus.read(0x0900_0018, 4).unwrap() & 0x10 == 0 {
            got.push(bus.read(0x0900_0000, 4).unwrap() as u8);
        }
        bus.write_from(0, 0x0801_0010, 4, 33).unwrap();
    }
    assert!(feeder.join().unwrap());
    assert_eq!(got, b"ok");
    assert!(!cpu0.irq());
}

/// Linux's IPI pattern across host threads: post work, then send an SGI; the target takes
/// every SGI it sees and reads the work. The last SGI after the last post must never be lost.
#[test]
fn ipis_between_cpu_threads_are_never_lost() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;
    const CPUS: usize = 4;
    const POSTS: u32 = 300;
    let outs: Vec<_> = (0..CPUS)
        .map(|_| Arc::new(CpuInterrupts::new(Arc::new(AtomicBool::new(false)))))
        .collect();
    let g = gic::Gic::new(CPUS, 32, outs.clone());
    let bus = Arc::new(Mutex::new(Bus::new()));
    {
        let mut b = bus.lock().unwrap();
        b.insert(0x0800_0000, gic::DIST_SIZE, Box::new(g.distributor()))
            .unwrap();
        b.insert(0x0801_0000, gic::CPU_IF_SIZE, Box::new(g.cpu_interface()))
            .unwrap();
        b.write_from(0, 0x0800_0000, 4, 1).unwrap();
        for cpu in 0..CPUS {
            b.write_from(cpu, 0x0800_0100, 4, 0xFFFF).unwrap();
            b.write_from(cpu, 0x0801_0004, 4, 0xF0).unwrap();
            b.write_from(cpu, 0x0801_0000, 4, 1).unwrap();
        }
    }
    let work: Arc<Vec<AtomicU32>> = Arc::new((0..CPUS).map(|_| AtomicU32::new(0)).collect());
    let threads: Vec<_> = (0..CPUS)
        .map(|cpu| {
            let (bus, work, me) = (bus.clone(), work.clone(), outs[cpu].clone());
            std::thread::spawn(move || {
                let target = (cpu + 1) % CPUS;
                let mut sent = 0;
                let mut seen = 0;
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                while (sent < POSTS || seen < POSTS) && std::time::Instant::now() < deadline {
                    if sent < POSTS {
                        work[target].fetch_add(1, Ordering::SeqCst);
                        let sgir = (1u64 << target) << 16 | 1;
                        bus.lock()
                            .unwrap()
                            .write_from(cpu, 0x0800_0F00, 4, sgir)
                            .unwrap();
                        sent += 1;
                    } else if !me.irq() {
                        me.wait(Some(Duration::from_millis(5)));
                    }
                    loop {
                        let iar = bus.lock().unwrap().read_from(cpu, 0x0801_000C, 4).unwrap();
                        if iar & 0x3FF == 1023 {
                            break;
                        }
                        seen = work[cpu].load(Ordering::SeqCst);
                        bus.lock()
                            .unwrap()
                            .write_from(cpu, 0x0801_0010, 4, iar)
                            .unwrap();
                    }
                }
                seen
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), POSTS);
    }
}
