//! The Raspberry Pi 3 B's networking with Debian's kernel and device tree: the DWC2 USB
//! controller, the LAN9514 hub and its SMSC Ethernet function (Linux's dwc2, usbnet and
//! smsc95xx modules), and the built-in user-mode network whose gateway answers ping.

mod board;

use board::{armboard_ok, value, PiGuest};
use std::sync::OnceLock;

/// The USB PHY (a no-op transceiver in the tree), the host controller, the Ethernet driver
/// and its PHY's driver (what udev would load from the modaliases; dependencies come along),
/// and the watchdog that powers the board off.
const MODULES: &[&str] = &[
    "bcm2835_wdt",
    "phy_generic",
    "dwc2",
    "smsc",
    "usbnet",
    "smsc95xx",
];

const INIT: &str = r#"#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
@MODULES@
echo ARMBOARD-BOOT-OK
for i in $(seq 1 60); do [ -e /sys/class/net/eth0 ] && break; sleep 1; done
echo "mac=$(cat /sys/class/net/eth0/address)"
echo "driver=$(basename "$(readlink /sys/class/net/eth0/device/driver)")"
echo "usb=$(cat /sys/bus/usb/devices/*/idVendor /sys/bus/usb/devices/*/idProduct 2>/dev/null | tr '\n' ' ')"
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
for i in $(seq 1 30); do [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" = 1 ] && break; sleep 1; done
echo "carrier=$(cat /sys/class/net/eth0/carrier)"
if ping -c 1 -W 10 10.0.2.2; then echo "ping=ok"; else echo "ping=failed"; fi
echo "rx=$(cat /sys/class/net/eth0/statistics/rx_packets) tx=$(cat /sys/class/net/eth0/statistics/tx_packets)"
dmesg | grep -iE 'dwc2|usb|smsc|eth0|hw csum' | tail -n 40
echo ARMBOARD-DONE
poweroff -f
"#;

fn guest() -> &'static PiGuest {
    static G: OnceLock<PiGuest> = OnceLock::new();
    G.get_or_init(|| PiGuest::build("net_raspi", INIT, MODULES))
}

fn boot(engine: &str) -> String {
    armboard_ok(
        &guest().boot_args(engine, "console=ttyAMA0 panic=-1"),
        "ARMBOARD-DONE",
    )
}

fn check(out: &str) {
    // The board's address, from the device tree the firmware filled in.
    assert_eq!(value(out, "mac="), "b8:27:eb:2c:3b:4a", "{out}");
    assert_eq!(value(out, "driver="), "smsc95xx", "{out}");
    let usb = value(out, "usb=");
    assert!(
        usb.contains("0424") && usb.contains("9514") && usb.contains("ec00"),
        "{usb}"
    );
    assert_eq!(value(out, "carrier="), "1", "{out}");
    // The LAN9514's PHY, driven by its own driver through the interrupt endpoint.
    assert!(out.contains("SMSC LAN8700"), "{out}");
    assert!(!out.contains("irq=POLL"), "{out}");
    assert_eq!(value(out, "ping="), "ok", "{out}");
    assert!(!out.contains("hw csum failure"), "{out}");
}

#[test]
fn the_pi3b_ethernet_pings_the_user_network_gateway() {
    check(&boot("tiered"));
}

#[test]
fn the_pi3b_ethernet_pings_the_user_network_gateway_under_the_interpreter() {
    check(&boot("interp"));
}
