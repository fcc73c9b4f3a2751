//! USB: a host controller ([`dwc2`]) and devices behind it ([`hub`], [`smsc95xx`]). Devices are
//! modelled at the transaction level the host controller sees: a token (SETUP, IN, OUT) to an
//! endpoint of an addressed device, answered with data, ACK, NAK or STALL. [`DeviceCore`] does
//! what every device does on endpoint 0 (addressing, descriptors, configuration) and hands
//! class and vendor requests to the device.

pub mod dwc2;
pub mod hub;
pub mod smsc95xx;
#[cfg(test)]
mod tests;

/// A token from the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    Setup,
    In,
    Out,
}

/// A device's answer to one transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// IN: the data sent (a short or empty transfer ends it).
    Data(Vec<u8>),
    /// OUT or SETUP: taken.
    Ack,
    /// Nothing to send or no room: the host retries.
    Nak,
    /// The endpoint refuses the request.
    Stall,
}

/// A device on the bus (or a hub with devices behind it).
pub trait UsbDevice: Send {
    /// Bus reset: the device forgets its address and configuration.
    fn bus_reset(&mut self);
    /// The device answering `addr`: this one or one behind it (a hub's enabled ports).
    fn find(&mut self, addr: u8) -> Option<&mut dyn UsbDevice>;
    /// One transfer to endpoint `ep` of this device: `data` is what an OUT or SETUP carries,
    /// `max` the most an IN may return.
    fn transfer(&mut self, ep: u8, token: Token, data: &[u8], max: usize) -> Reply;
    /// Whether the device runs at high speed (all the devices here do).
    fn high_speed(&self) -> bool {
        true
    }
}

/// A SETUP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    pub request_type: u8,
    pub request: u8,
    pub value: u16,
    pub index: u16,
    pub length: u16,
}

impl Setup {
    pub fn parse(b: &[u8]) -> Option<Setup> {
        let b: &[u8; 8] = b.get(..8)?.try_into().ok()?;
        Some(Setup {
            request_type: b[0],
            request: b[1],
            value: u16::from_le_bytes([b[2], b[3]]),
            index: u16::from_le_bytes([b[4], b[5]]),
            length: u16::from_le_bytes([b[6], b[7]]),
        })
    }

    pub fn bytes(&self) -> [u8; 8] {
        let [v0, v1] = self.value.to_le_bytes();
        let [i0, i1] = self.index.to_le_bytes();
        let [l0, l1] = self.length.to_le_bytes();
        [self.request_type, self.request, v0, v1, i0, i1, l0, l1]
    }

    pub fn is_in(&self) -> bool {
        self.request_type & 0x80 != 0
    }

    /// 0 standard, 1 class, 2 vendor.
    pub fn kind(&self) -> u8 {
        (self.request_type >> 5) & 3
    }

    /// 0 device, 1 interface, 2 endpoint, 3 other (a hub's port).
    pub fn recipient(&self) -> u8 {
        self.request_type & 0x1f
    }
}

/// Standard requests.
pub mod req {
    pub const GET_STATUS: u8 = 0;
    pub const CLEAR_FEATURE: u8 = 1;
    pub const SET_FEATURE: u8 = 3;
    pub const SET_ADDRESS: u8 = 5;
    pub const GET_DESCRIPTOR: u8 = 6;
    pub const GET_CONFIGURATION: u8 = 8;
    pub const SET_CONFIGURATION: u8 = 9;
    pub const GET_INTERFACE: u8 = 10;
    pub const SET_INTERFACE: u8 = 11;
}

/// A device's fixed descriptors.
pub struct Descriptors {
    pub device: Vec<u8>,
    /// The configuration descriptor with its interfaces and endpoints.
    pub config: Vec<u8>,
    /// String descriptors 1.. (index 0, the languages, is English only).
    pub strings: Vec<&'static str>,
}

/// An 18-byte device descriptor (USB 2.0, 64-byte endpoint 0).
pub fn device_descriptor(
    class: [u8; 3],
    vid: u16,
    pid: u16,
    bcd: u16,
    strings: [u8; 3],
) -> Vec<u8> {
    let mut d = vec![18, 1, 0x00, 0x02, class[0], class[1], class[2], 64];
    d.extend_from_slice(&vid.to_le_bytes());
    d.extend_from_slice(&pid.to_le_bytes());
    d.extend_from_slice(&bcd.to_le_bytes());
    d.extend_from_slice(&[strings[0], strings[1], strings[2], 1]);
    d
}

/// A configuration descriptor (value 1) around `body` (interfaces and endpoints).
pub fn config_descriptor(
    interfaces: u8,
    attributes: u8,
    max_power_2ma: u8,
    body: &[u8],
) -> Vec<u8> {
    let total = (9 + body.len()) as u16;
    let mut d = vec![9, 2];
    d.extend_from_slice(&total.to_le_bytes());
    d.extend_from_slice(&[interfaces, 1, 0, attributes, max_power_2ma]);
    d.extend_from_slice(body);
    d
}

pub fn interface_descriptor(number: u8, alt: u8, endpoints: u8, class: [u8; 3]) -> [u8; 9] {
    [
        9, 4, number, alt, endpoints, class[0], class[1], class[2], 0,
    ]
}

pub fn endpoint_descriptor(address: u8, kind: u8, max_packet: u16, interval: u8) -> [u8; 7] {
    let [m0, m1] = max_packet.to_le_bytes();
    [7, 5, address, kind, m0, m1, interval]
}

/// Where a control transfer is.
enum Stage {
    Idle,
    /// An IN request: its answer (or a stall) and how much of it was sent.
    In(Result<Vec<u8>, ()>, usize),
    /// An OUT request: its data so far.
    Out(Setup, Vec<u8>),
    /// A request without data, already done (Ok) or refused.
    NoData(Result<(), ()>),
}

/// What every device does: its address, configuration and the control pipe on endpoint 0.
pub struct DeviceCore {
    pub address: u8,
    pending_address: Option<u8>,
    pub configuration: u8,
    pub alt_setting: u8,
    stage: Stage,
    setup: Option<Setup>,
    pub desc: Descriptors,
    /// bit 0 of GET_STATUS(device): self-powered.
    pub self_powered: bool,
}

/// A device's answer to a class or vendor request: `None` when it does not know it.
pub type ClassResult = Option<Result<Vec<u8>, ()>>;

impl DeviceCore {
    pub fn new(desc: Descriptors, self_powered: bool) -> Self {
        Self {
            address: 0,
            pending_address: None,
            configuration: 0,
            alt_setting: 0,
            stage: Stage::Idle,
            setup: None,
            desc,
            self_powered,
        }
    }

    pub fn bus_reset(&mut self) {
        self.address = 0;
        self.pending_address = None;
        self.configuration = 0;
        self.alt_setting = 0;
        self.stage = Stage::Idle;
        self.setup = None;
    }

    /// A transfer on endpoint 0; `class(setup, data)` answers class and vendor requests (IN
    /// requests with the data to send, OUT requests with an empty vector).
    pub fn control(
        &mut self,
        token: Token,
        data: &[u8],
        max: usize,
        mut class: impl FnMut(&Setup, &[u8]) -> ClassResult,
    ) -> Reply {
        match token {
            Token::Setup => {
                let Some(s) = Setup::parse(data) else {
                    return Reply::Stall;
                };
                self.setup = Some(s);
                self.pending_address = None;
                self.stage = if s.is_in() {
                    let r = self.request(&s, &[], &mut class).map(|mut v| {
                        v.truncate(usize::from(s.length));
                        v
                    });
                    Stage::In(r, 0)
                } else if s.length == 0 {
                    Stage::NoData(self.request(&s, &[], &mut class).map(|_| ()))
                } else {
                    Stage::Out(s, Vec::new())
                };
                Reply::Ack
            }
            Token::In => match std::mem::replace(&mut self.stage, Stage::Idle) {
                Stage::In(Ok(v), pos) => {
                    let end = v.len().min(pos + max);
                    let chunk = v[pos..end].to_vec();
                    self.stage = Stage::In(Ok(v), end);
                    Reply::Data(chunk)
                }
                Stage::In(Err(()), _) | Stage::NoData(Err(())) => Reply::Stall,
                Stage::NoData(Ok(())) => {
                    self.status_done();
                    Reply::Data(Vec::new())
                }
                Stage::Out(s, v) => match self.request(&s, &v, &mut class) {
                    Ok(_) => {
                        self.status_done();
                        Reply::Data(Vec::new())
                    }
                    Err(()) => Reply::Stall,
                },
                Stage::Idle => Reply::Stall,
            },
            Token::Out => match &mut self.stage {
                Stage::Out(s, v) => {
                    let room = usize::from(s.length).saturating_sub(v.len());
                    v.extend_from_slice(&data[..data.len().min(room)]);
                    Reply::Ack
                }
                // The status stage of an IN request.
                Stage::In(Ok(_), _) => {
                    self.stage = Stage::Idle;
                    Reply::Ack
                }
                Stage::In(Err(()), _) => Reply::Stall,
                _ => Reply::Stall,
            },
        }
    }

    fn status_done(&mut self) {
        if let Some(a) = self.pending_address.take() {
            self.address = a;
        }
        self.stage = Stage::Idle;
    }

    fn request(
        &mut self,
        s: &Setup,
        data: &[u8],
        class: &mut impl FnMut(&Setup, &[u8]) -> ClassResult,
    ) -> Result<Vec<u8>, ()> {
        if s.kind() != 0 {
            return class(s, data).unwrap_or(Err(()));
        }
        match (s.request, s.recipient()) {
            (req::GET_STATUS, 0) => Ok(vec![u8::from(self.self_powered), 0]),
            (req::GET_STATUS, _) => Ok(vec![0, 0]),
            (req::CLEAR_FEATURE | req::SET_FEATURE, _) => Ok(Vec::new()),
            (req::SET_ADDRESS, 0) => {
                self.pending_address = Some((s.value & 0x7f) as u8);
                Ok(Vec::new())
            }
            (req::GET_DESCRIPTOR, _) => self.descriptor(s),
            (req::GET_CONFIGURATION, 0) => Ok(vec![self.configuration]),
            (req::SET_CONFIGURATION, 0) => match s.value {
                0 | 1 => {
                    self.configuration = s.value as u8;
                    Ok(Vec::new())
                }
                _ => Err(()),
            },
            (req::GET_INTERFACE, 1) => Ok(vec![self.alt_setting]),
            (req::SET_INTERFACE, 1) => {
                self.alt_setting = s.value as u8;
                Ok(Vec::new())
            }
            _ => class(s, data).unwrap_or(Err(())),
        }
    }

    fn descriptor(&self, s: &Setup) -> Result<Vec<u8>, ()> {
        let [index, kind] = s.value.to_le_bytes();
        match kind {
            1 => Ok(self.desc.device.clone()),
            2 if index == 0 => Ok(self.desc.config.clone()),
            3 if index == 0 => Ok(vec![4, 3, 0x09, 0x04]),
            3 => {
                let text = self.desc.strings.get(usize::from(index) - 1).ok_or(())?;
                let mut d = vec![0, 3];
                for u in text.encode_utf16() {
                    d.extend_from_slice(&u.to_le_bytes());
                }
                d[0] = d.len() as u8;
                Ok(d)
            }
            _ => Err(()),
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A whole control transfer the way a host runs it: SETUP, data stage, status stage.
    pub fn control(dev: &mut dyn UsbDevice, addr: u8, s: Setup, out: &[u8]) -> Result<Vec<u8>, ()> {
        let d = dev.find(addr).ok_or(())?;
        assert_eq!(d.transfer(0, Token::Setup, &s.bytes(), 0), Reply::Ack);
        if s.is_in() {
            let got = match d.transfer(0, Token::In, &[], usize::from(s.length)) {
                Reply::Data(v) => v,
                Reply::Stall => return Err(()),
                r => panic!("data stage: {r:?}"),
            };
            assert_eq!(d.transfer(0, Token::Out, &[], 0), Reply::Ack);
            Ok(got)
        } else {
            if !out.is_empty() {
                assert_eq!(d.transfer(0, Token::Out, out, 0), Reply::Ack);
            }
            match d.transfer(0, Token::In, &[], 0) {
                Reply::Data(v) if v.is_empty() => Ok(v),
                Reply::Stall => Err(()),
                r => panic!("status stage: {r:?}"),
            }
        }
    }

    pub fn setup(request_type: u8, request: u8, value: u16, index: u16, length: u16) -> Setup {
        Setup {
            request_type,
            request,
            value,
            index,
            length,
        }
    }
}
