//! A USB 2.0 hub (the hub function of an SMSC LAN9514: 0424:9514, five ports, multiple
//! transaction translators) with devices on some of its ports. The hub answers the hub class
//! requests Linux's hub driver makes and reports port changes on its interrupt endpoint.

use super::{
    config_descriptor, device_descriptor, endpoint_descriptor, interface_descriptor, req,
    ClassResult, Descriptors, DeviceCore, Reply, Setup, Token, UsbDevice,
};

/// wPortStatus bits.
pub mod port {
    pub const CONNECTION: u16 = 1 << 0;
    pub const ENABLE: u16 = 1 << 1;
    pub const SUSPEND: u16 = 1 << 2;
    pub const OVER_CURRENT: u16 = 1 << 3;
    pub const RESET: u16 = 1 << 4;
    pub const POWER: u16 = 1 << 8;
    pub const HIGH_SPEED: u16 = 1 << 10;
}

/// Hub class features.
mod feature {
    pub const PORT_ENABLE: u16 = 1;
    pub const PORT_SUSPEND: u16 = 2;
    pub const PORT_RESET: u16 = 4;
    pub const PORT_POWER: u16 = 8;
    pub const C_PORT_CONNECTION: u16 = 16;
    pub const C_PORT_ENABLE: u16 = 17;
    pub const C_PORT_SUSPEND: u16 = 18;
    pub const C_PORT_OVER_CURRENT: u16 = 19;
    pub const C_PORT_RESET: u16 = 20;
}

struct Port {
    device: Option<Box<dyn UsbDevice>>,
    status: u16,
    change: u16,
    removable: bool,
}

pub struct Hub {
    core: DeviceCore,
    ports: Vec<Port>,
}

impl Hub {
    /// The LAN9514's hub: `ports[i]` is what port i + 1 has attached; attached devices are
    /// the chip's own functions (not removable).
    pub fn lan9514(mut ports: Vec<Option<Box<dyn UsbDevice>>>) -> Self {
        ports.resize_with(5, || None);
        let mut body = Vec::new();
        // Alternate setting 0: one TT; 1: a TT per port. Endpoint 1 IN reports changes,
        // polled every 2^(12-1) microframes (256 ms).
        for (alt, protocol) in [(0, 1), (1, 2)] {
            body.extend_from_slice(&interface_descriptor(0, alt, 1, [9, 0, protocol]));
            body.extend_from_slice(&endpoint_descriptor(0x81, 3, 1, 12));
        }
        let desc = Descriptors {
            device: device_descriptor([9, 0, 2], 0x0424, 0x9514, 0x0200, [0, 0, 0]),
            config: config_descriptor(1, 0xe0, 1, &body),
            strings: Vec::new(),
        };
        Hub {
            core: DeviceCore::new(desc, true),
            ports: ports
                .into_iter()
                .map(|d| Port {
                    removable: d.is_none(),
                    device: d,
                    status: 0,
                    change: 0,
                })
                .collect(),
        }
    }
}

fn hub_descriptor(ports: &[Port]) -> Vec<u8> {
    let n = ports.len() as u8;
    let mut removable = 0u8;
    for (i, p) in ports.iter().enumerate() {
        if !p.removable {
            removable |= 1 << (i + 1);
        }
    }
    // Per-port power switching and over-current reporting, a compound device; power good
    // 100 ms after power-on.
    vec![9, 0x29, n, 0x0d, 0x00, 50, 1, removable, 0xff]
}

fn port_mut(ports: &mut [Port], index: u16) -> Result<&mut Port, ()> {
    let i = usize::from(index & 0xff);
    if i == 0 {
        return Err(());
    }
    ports.get_mut(i - 1).ok_or(())
}

fn class(ports: &mut [Port], s: &Setup) -> ClassResult {
    let r = match (s.request_type, s.request) {
        // The hub: descriptor, status, clearing its change bits.
        (0xa0, req::GET_DESCRIPTOR) if s.value >> 8 == 0x29 => Ok(hub_descriptor(ports)),
        (0xa0, req::GET_STATUS) => Ok(vec![0; 4]),
        (0x20, req::CLEAR_FEATURE | req::SET_FEATURE) => Ok(Vec::new()),
        (0xa3, req::GET_STATUS) => port_mut(ports, s.index).map(|p| {
            let [a, b] = p.status.to_le_bytes();
            let [c, d] = p.change.to_le_bytes();
            vec![a, b, c, d]
        }),
        (0x23, req::SET_FEATURE) => port_mut(ports, s.index).map(|p| {
            set_feature(p, s.value);
            Vec::new()
        }),
        (0x23, req::CLEAR_FEATURE) => port_mut(ports, s.index).map(|p| {
            clear_feature(p, s.value);
            Vec::new()
        }),
        _ => Err(()),
    };
    Some(r)
}

impl Hub {
    /// The change bitmap (bit n: port n) the status endpoint reports.
    fn changes(&self) -> u8 {
        let mut m = 0;
        for (i, p) in self.ports.iter().enumerate() {
            if p.change != 0 {
                m |= 1 << (i + 1);
            }
        }
        m
    }
}

fn set_feature(p: &mut Port, f: u16) {
    match f {
        feature::PORT_POWER if p.status & port::POWER == 0 => {
            p.status |= port::POWER;
            if p.device.is_some() {
                p.status |= port::CONNECTION;
                p.change |= port::CONNECTION;
            }
        }
        feature::PORT_RESET if p.status & port::CONNECTION != 0 => {
            // The reset is over by the time the host looks again.
            let hs = match &mut p.device {
                Some(d) => {
                    d.bus_reset();
                    d.high_speed()
                }
                None => false,
            };
            p.status &= !(port::SUSPEND | port::RESET);
            p.status |= port::ENABLE | if hs { port::HIGH_SPEED } else { 0 };
            p.change |= port::RESET;
        }
        feature::PORT_SUSPEND if p.status & port::ENABLE != 0 => {
            p.status |= port::SUSPEND;
        }
        _ => {}
    }
}

fn clear_feature(p: &mut Port, f: u16) {
    match f {
        feature::PORT_ENABLE => p.status &= !(port::ENABLE | port::HIGH_SPEED),
        feature::PORT_SUSPEND if p.status & port::SUSPEND != 0 => {
            p.status &= !port::SUSPEND;
            p.change |= port::SUSPEND;
        }
        feature::PORT_POWER => {
            p.status = 0;
        }
        feature::C_PORT_CONNECTION => p.change &= !port::CONNECTION,
        feature::C_PORT_ENABLE => p.change &= !port::ENABLE,
        feature::C_PORT_SUSPEND => p.change &= !port::SUSPEND,
        feature::C_PORT_OVER_CURRENT => p.change &= !port::OVER_CURRENT,
        feature::C_PORT_RESET => p.change &= !port::RESET,
        _ => {}
    }
}

impl UsbDevice for Hub {
    fn bus_reset(&mut self) {
        self.core.bus_reset();
        for p in &mut self.ports {
            if p.status & port::ENABLE != 0 {
                if let Some(d) = &mut p.device {
                    d.bus_reset();
                }
            }
            p.status = 0;
            p.change = 0;
        }
    }

    fn find(&mut self, addr: u8) -> Option<&mut dyn UsbDevice> {
        if self.core.address == addr {
            return Some(self);
        }
        for p in &mut self.ports {
            if p.status & port::ENABLE != 0 && p.status & port::SUSPEND == 0 {
                if let Some(d) = &mut p.device {
                    if let Some(found) = d.find(addr) {
                        return Some(found);
                    }
                }
            }
        }
        None
    }

    fn transfer(&mut self, ep: u8, token: Token, data: &[u8], max: usize) -> Reply {
        match (ep, token) {
            (0, _) => {
                let Hub { core, ports } = self;
                core.control(token, data, max, |s, _| class(ports, s))
            }
            (1, Token::In) if self.core.configuration != 0 => match self.changes() {
                0 => Reply::Nak,
                m => Reply::Data(vec![m]),
            },
            _ => Reply::Stall,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{control, setup};
    use super::*;

    /// A device that only answers on endpoint 0 with its descriptor.
    struct Leaf(DeviceCore);

    impl UsbDevice for Leaf {
        fn bus_reset(&mut self) {
            self.0.bus_reset();
        }
        fn find(&mut self, addr: u8) -> Option<&mut dyn UsbDevice> {
            (self.0.address == addr).then_some(self as &mut dyn UsbDevice)
        }
        fn transfer(&mut self, ep: u8, token: Token, data: &[u8], max: usize) -> Reply {
            if ep != 0 {
                return Reply::Stall;
            }
            self.0.control(token, data, max, |_, _| None)
        }
    }

    fn leaf() -> Box<dyn UsbDevice> {
        Box::new(Leaf(DeviceCore::new(
            Descriptors {
                device: device_descriptor([0xff, 0, 0xff], 0x0424, 0xec00, 0x0200, [0, 0, 0]),
                config: config_descriptor(0, 0xe0, 1, &[]),
                strings: Vec::new(),
            },
            true,
        )))
    }

    fn port_status(h: &mut Hub, n: u16) -> (u16, u16) {
        let v = control(h, 1, setup(0xa3, req::GET_STATUS, 0, n, 4), &[]).unwrap();
        (
            u16::from_le_bytes([v[0], v[1]]),
            u16::from_le_bytes([v[2], v[3]]),
        )
    }

    #[test]
    fn the_hub_enumerates_and_brings_up_its_ethernet_port_like_linux_does() {
        let mut h = Hub::lan9514(vec![Some(leaf())]);
        let d = control(
            &mut h,
            0,
            setup(0x80, req::GET_DESCRIPTOR, 0x0100, 0, 64),
            &[],
        )
        .unwrap();
        assert_eq!(d.len(), 18);
        assert_eq!(&d[8..12], &[0x24, 0x04, 0x14, 0x95], "0424:9514");
        assert_eq!(d[4], 9, "hub class");
        control(&mut h, 0, setup(0, req::SET_ADDRESS, 1, 0, 0), &[]).unwrap();
        assert!(h.find(0).is_none(), "the hub moved to address 1");
        let c = control(
            &mut h,
            1,
            setup(0x80, req::GET_DESCRIPTOR, 0x0200, 0, 255),
            &[],
        )
        .unwrap();
        assert_eq!(usize::from(u16::from_le_bytes([c[2], c[3]])), c.len());
        control(&mut h, 1, setup(0, req::SET_CONFIGURATION, 1, 0, 0), &[]).unwrap();
        let hd = control(
            &mut h,
            1,
            setup(0xa0, req::GET_DESCRIPTOR, 0x2900, 0, 9),
            &[],
        )
        .unwrap();
        assert_eq!(hd[2], 5, "five ports");
        assert_eq!(hd[7], 0x02, "port 1 is not removable");

        assert_eq!(
            h.transfer(1, Token::In, &[], 1),
            Reply::Nak,
            "no changes yet"
        );
        for p in 1..=5 {
            control(
                &mut h,
                1,
                setup(0x23, req::SET_FEATURE, feature::PORT_POWER, p, 0),
                &[],
            )
            .unwrap();
        }
        assert_eq!(h.transfer(1, Token::In, &[], 1), Reply::Data(vec![0x02]));
        assert_eq!(
            port_status(&mut h, 1),
            (port::POWER | port::CONNECTION, port::CONNECTION)
        );
        assert_eq!(port_status(&mut h, 2), (port::POWER, 0));
        control(
            &mut h,
            1,
            setup(0x23, req::CLEAR_FEATURE, feature::C_PORT_CONNECTION, 1, 0),
            &[],
        )
        .unwrap();
        assert!(
            h.find(0).is_none(),
            "the port is not enabled before its reset"
        );
        control(
            &mut h,
            1,
            setup(0x23, req::SET_FEATURE, feature::PORT_RESET, 1, 0),
            &[],
        )
        .unwrap();
        let (st, ch) = port_status(&mut h, 1);
        assert_eq!(
            st & (port::ENABLE | port::HIGH_SPEED | port::RESET),
            port::ENABLE | port::HIGH_SPEED
        );
        assert_eq!(ch, port::RESET);
        control(
            &mut h,
            1,
            setup(0x23, req::CLEAR_FEATURE, feature::C_PORT_RESET, 1, 0),
            &[],
        )
        .unwrap();
        let d = control(
            &mut h,
            0,
            setup(0x80, req::GET_DESCRIPTOR, 0x0100, 0, 18),
            &[],
        )
        .unwrap();
        assert_eq!(
            &d[8..12],
            &[0x24, 0x04, 0x00, 0xec],
            "the device behind port 1"
        );
        control(&mut h, 0, setup(0, req::SET_ADDRESS, 2, 0, 0), &[]).unwrap();
        assert!(h.find(2).is_some());
        assert_eq!(h.transfer(1, Token::In, &[], 1), Reply::Nak);
    }

    #[test]
    fn unknown_hub_requests_stall() {
        let mut h = Hub::lan9514(vec![]);
        assert!(control(&mut h, 0, setup(0xa3, req::GET_STATUS, 0, 9, 4), &[]).is_err());
        assert!(control(&mut h, 0, setup(0xc0, 0x42, 0, 0, 4), &[]).is_err());
    }
}
