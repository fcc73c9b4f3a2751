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
