//! The BCM2835 VideoCore mailbox (bus 0x7e00b880) and the Raspberry Pi firmware behind it, as
//! Linux's `bcm2835-mailbox` driver and the firmware clients built on it use them
//! (`raspberrypi-firmware`, `raspberrypi-clk`, `raspberrypi-power`, `raspberrypi-exp-gpio`,
//! `raspberrypi-hwmon`).
//!
//! Mailbox 0 carries words from the VideoCore to the ARM (a FIFO of 8, read at 0x00), mailbox
//! 1 carries words from the ARM to the VideoCore (written at 0x20). The "firmware" consumes a
//! word the moment it is written: on channel 8 (the property interface) the word is the bus
//! address of a buffer in RAM, which is read, answered tag by tag and written back before the
//! same word is posted to mailbox 0 (raising the interrupt when CONFIG.IHAVEDATAIRQEN is set).
//! Mailbox 1 is therefore never full.
//!
//! The property interface answers the tags a Pi 3 Model B's firmware answers to Linux 6.1 (see
//! [`Firmware`]): each answered tag gets bit 31 set in its request/response word together with
//! the length of its response; tags the firmware does not know are left untouched, as the real
//! firmware leaves them (`raspberrypi-power` relies on that to detect the domain interface).

use armboard_bus::{Device, IrqLine, Ram};
use std::collections::VecDeque;
use std::sync::Arc;

/// Size of the register frame (mailbox 0 and mailbox 1).
pub const SIZE: u64 = 0x40;

const MAIL0_READ: u64 = 0x00;
const MAIL0_PEEK: u64 = 0x10;
const MAIL0_SENDER: u64 = 0x14;
const MAIL0_STATUS: u64 = 0x18;
const MAIL0_CONFIG: u64 = 0x1c;
const MAIL1_WRITE: u64 = 0x20;
const MAIL1_PEEK: u64 = 0x30;
const MAIL1_SENDER: u64 = 0x34;
const MAIL1_STATUS: u64 = 0x38;
const MAIL1_CONFIG: u64 = 0x3c;

/// STATUS: the FIFO is full.
pub const STATUS_FULL: u32 = 1 << 31;
/// STATUS: the FIFO is empty.
pub const STATUS_EMPTY: u32 = 1 << 30;
/// CONFIG: interrupt while the FIFO holds data.
pub const CONFIG_IHAVEDATAIRQEN: u32 = 1 << 0;
/// CONFIG bits that are stored (data, space and opposite-empty interrupt enables).
const CONFIG_MASK: u32 = 0x7;

/// Depth of each mailbox FIFO.
pub const FIFO_DEPTH: usize = 8;

/// The property interface channel (ARM to VideoCore).
pub const CHANNEL_PROPERTY: u32 = 8;

/// Property buffer request/response codes.
pub const CODE_REQUEST: u32 = 0;
pub const CODE_SUCCESS: u32 = 0x8000_0000;
pub const CODE_ERROR: u32 = 0x8000_0001;
/// Bit 31 of a tag's request/response word: the tag was answered.
pub const TAG_RESPONSE: u32 = 0x8000_0000;

/// The firmware refuses buffers of 1 MiB or more without parsing them (as the real one does;
/// Linux warns about it in `rpi_firmware_property_list`). This also bounds the copy made here.
pub const MAX_BUFFER: u32 = 1 << 20;

/// Property tags (Linux's `include/soc/bcm2835/raspberrypi-firmware.h`).
pub mod tag {
    pub const FIRMWARE_REVISION: u32 = 0x0000_0001;
    pub const SET_CURSOR_INFO: u32 = 0x0000_8010;
    pub const SET_CURSOR_STATE: u32 = 0x0000_8011;
    pub const BOARD_MODEL: u32 = 0x0001_0001;
    pub const BOARD_REVISION: u32 = 0x0001_0002;
    pub const BOARD_MAC_ADDRESS: u32 = 0x0001_0003;
    pub const BOARD_SERIAL: u32 = 0x0001_0004;
    pub const ARM_MEMORY: u32 = 0x0001_0005;
    pub const VC_MEMORY: u32 = 0x0001_0006;
    pub const CLOCKS: u32 = 0x0001_0007;
    pub const GET_POWER_STATE: u32 = 0x0002_0001;
    pub const GET_TIMING: u32 = 0x0002_0002;
    pub const SET_POWER_STATE: u32 = 0x0002_8001;
    pub const GET_CLOCK_STATE: u32 = 0x0003_0001;
    pub const GET_CLOCK_RATE: u32 = 0x0003_0002;
    pub const GET_VOLTAGE: u32 = 0x0003_0003;
    pub const GET_MAX_CLOCK_RATE: u32 = 0x0003_0004;
    pub const GET_MAX_VOLTAGE: u32 = 0x0003_0005;
    pub const GET_TEMPERATURE: u32 = 0x0003_0006;
    pub const GET_MIN_CLOCK_RATE: u32 = 0x0003_0007;
    pub const GET_MIN_VOLTAGE: u32 = 0x0003_0008;
    pub const GET_TURBO: u32 = 0x0003_0009;
    pub const GET_MAX_TEMPERATURE: u32 = 0x0003_000a;
    pub const GET_EDID_BLOCK: u32 = 0x0003_0020;
    pub const GET_CUSTOMER_OTP: u32 = 0x0003_0021;
    pub const GET_DOMAIN_STATE: u32 = 0x0003_0030;
    pub const GET_GPIO_STATE: u32 = 0x0003_0041;
    pub const GET_GPIO_CONFIG: u32 = 0x0003_0043;
    pub const GET_THROTTLED: u32 = 0x0003_0046;
    pub const GET_CLOCK_MEASURED: u32 = 0x0003_0047;
    pub const NOTIFY_REBOOT: u32 = 0x0003_0048;
    pub const NOTIFY_DISPLAY_DONE: u32 = 0x0003_0066;
    pub const SET_CLOCK_STATE: u32 = 0x0003_8001;
    pub const SET_CLOCK_RATE: u32 = 0x0003_8002;
    pub const SET_VOLTAGE: u32 = 0x0003_8003;
    pub const SET_TURBO: u32 = 0x0003_8009;
    pub const SET_DOMAIN_STATE: u32 = 0x0003_8030;
    pub const SET_GPIO_STATE: u32 = 0x0003_8041;
    pub const SET_GPIO_CONFIG: u32 = 0x0003_8043;
    pub const FB_ALLOCATE: u32 = 0x0004_0001;
    pub const FB_BLANK: u32 = 0x0004_0002;
    pub const FB_GET_PHYSICAL_SIZE: u32 = 0x0004_0003;
    pub const FB_GET_VIRTUAL_SIZE: u32 = 0x0004_0004;
    pub const FB_GET_DEPTH: u32 = 0x0004_0005;
    pub const FB_GET_PIXEL_ORDER: u32 = 0x0004_0006;
    pub const FB_GET_ALPHA_MODE: u32 = 0x0004_0007;
    pub const FB_GET_PITCH: u32 = 0x0004_0008;
    pub const FB_GET_VIRTUAL_OFFSET: u32 = 0x0004_0009;
    pub const FB_GET_OVERSCAN: u32 = 0x0004_000a;
    pub const FB_GET_PALETTE: u32 = 0x0004_000b;
    pub const FB_TEST_PHYSICAL_SIZE: u32 = 0x0004_4003;
    pub const FB_TEST_VIRTUAL_SIZE: u32 = 0x0004_4004;
    pub const FB_TEST_DEPTH: u32 = 0x0004_4005;
    pub const FB_TEST_PIXEL_ORDER: u32 = 0x0004_4006;
    pub const FB_TEST_ALPHA_MODE: u32 = 0x0004_4007;
    pub const FB_TEST_VIRTUAL_OFFSET: u32 = 0x0004_4009;
    pub const FB_TEST_OVERSCAN: u32 = 0x0004_400a;
    pub const FB_TEST_PALETTE: u32 = 0x0004_400b;
    pub const FB_TEST_VSYNC: u32 = 0x0004_400e;
    pub const FB_RELEASE: u32 = 0x0004_8001;
    pub const FB_SET_PHYSICAL_SIZE: u32 = 0x0004_8003;
    pub const FB_SET_VIRTUAL_SIZE: u32 = 0x0004_8004;
    pub const FB_SET_DEPTH: u32 = 0x0004_8005;
    pub const FB_SET_PIXEL_ORDER: u32 = 0x0004_8006;
    pub const FB_SET_ALPHA_MODE: u32 = 0x0004_8007;
    pub const FB_SET_VIRTUAL_OFFSET: u32 = 0x0004_8009;
    pub const FB_SET_OVERSCAN: u32 = 0x0004_800a;
    pub const FB_SET_PALETTE: u32 = 0x0004_800b;
    pub const FB_SET_VSYNC: u32 = 0x0004_800e;
    pub const FB_SET_BACKLIGHT: u32 = 0x0004_800f;
    pub const COMMAND_LINE: u32 = 0x0005_0001;
    pub const DMA_CHANNELS: u32 = 0x0006_0001;
}

/// Firmware clock ids (`enum rpi_firmware_clk_id`).
pub mod clock {
    pub const EMMC: u32 = 1;
    pub const UART: u32 = 2;
    pub const ARM: u32 = 3;
    pub const CORE: u32 = 4;
    pub const V3D: u32 = 5;
    pub const H264: u32 = 6;
    pub const ISP: u32 = 7;
    pub const SDRAM: u32 = 8;
    pub const PIXEL: u32 = 9;
    pub const PWM: u32 = 10;
}

/// Rates a Pi 3 Model B's firmware runs at with a default config.txt. The clock manager's
/// reset state ([`super::cprman`]) produces the same EMMC, UART and core (VPU) rates.
pub mod rate {
    pub const EMMC: u32 = 250_000_000;
    pub const UART: u32 = 48_000_000;
    pub const ARM: u32 = 1_200_000_000;
    pub const ARM_MIN: u32 = 600_000_000;
    pub const CORE: u32 = 400_000_000;
    pub const CORE_MIN: u32 = 250_000_000;
    pub const V3D: u32 = 300_000_000;
    pub const V3D_MIN: u32 = 250_000_000;
    pub const SDRAM: u32 = 450_000_000;
    pub const SDRAM_MIN: u32 = 400_000_000;
}

/// What the firmware knows about the board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardInfo {
    /// Board model (the real firmware answers 0).
    pub model: u32,
    /// Revision code (new-style; Pi 3 Model B 1.2, Sony UK: 0xa02082).
    pub revision: u32,
    pub serial: u64,
    pub mac: [u8; 6],
    /// (base, size) of the ARM's memory.
    pub arm_mem: (u32, u32),
    /// (base, size) of the VideoCore's memory (ARM physical addresses).
    pub vc_mem: (u32, u32),
    /// Kernel command line handed out by tag 0x50001.
    pub cmdline: String,
    /// Build time of the firmware (Unix seconds); Linux prints it at probe.
    pub firmware_revision: u32,
    /// Mask of DMA channels the ARM may use.
    pub dma_channels: u32,
    /// SoC temperature, in thousandths of a degree Celsius.
    pub temperature: u32,
}

impl BoardInfo {
    /// A Raspberry Pi 3 Model B whose ARM owns the first `arm_mem_size` bytes of its 1 GiB
    /// (the VideoCore the rest: 948 MiB / 76 MiB with the default gpu_mem).
    pub fn pi3b(arm_mem_size: u32) -> BoardInfo {
        let total: u32 = 0x4000_0000;
        let arm = arm_mem_size.min(total);
        let serial: u64 = 0x0000_0000_1d2c_3b4a;
        BoardInfo {
            model: 0,
            revision: 0x00a0_2082,
            serial,
            // The Raspberry Pi Foundation's OUI followed by the low 24 bits of the serial.
            mac: [
                0xb8,
                0x27,
                0xeb,
                (serial >> 16) as u8,
                (serial >> 8) as u8,
                serial as u8,
            ],
            arm_mem: (0, arm),
            vc_mem: (arm, total - arm),
            cmdline: String::new(),
            // 2023-03-17 10:50:39 UTC, a firmware release of that spring.
            firmware_revision: 0x6414_45ff,
            dma_channels: 0x7f35,
            temperature: 45_000,
        }
    }
}

/// One firmware-managed clock.
#[derive(Clone, Debug)]
struct FwClock {
    id: u32,
    rate: u32,
    min: u32,
    max: u32,
    on: bool,
}

/// One expander GPIO (128 + n) as the firmware reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ExpGpio {
    /// 0 = input, 1 = output.
    direction: u32,
    polarity: u32,
    term_en: u32,
    term_pull_up: u32,
    state: u32,
}

/// First expander GPIO number and count (gpio-raspberrypi-exp: 8 lines at 128).
pub const EXP_GPIO_BASE: u32 = 128;
pub const EXP_GPIO_COUNT: usize = 8;

/// Legacy power devices (tags 0x20001/0x28001): SD, UART0, UART1, USB HCD, I2C0..2, SPI, CCP2TX.
const POWER_DEVICES: usize = 9;
/// Power domains of the newer interface (tags 0x30030/0x38030): firmware numbers 0..=23.
const DOMAINS: usize = 24;

/// Firmware framebuffer state (answered sensibly; nothing displays it).
#[derive(Clone, Debug)]
struct Framebuffer {
    phys: (u32, u32),
    virt: (u32, u32),
    depth: u32,
    pixel_order: u32,
    alpha_mode: u32,
    offset: (u32, u32),
    overscan: [u32; 4],
    blank: u32,
    palette: Box<[u32; 256]>,
    allocated: Option<(u32, u32)>,
}

impl Framebuffer {
    fn new() -> Self {
        Framebuffer {
            phys: (1024, 768),
            virt: (1024, 768),
            depth: 32,
            pixel_order: 1,
            alpha_mode: 2,
            offset: (0, 0),
            overscan: [0; 4],
            blank: 0,
            palette: Box::new([0; 256]),
            allocated: None,
        }
    }

    fn pitch(&self) -> u32 {
        let bytes = (self.virt.0 as u64 * self.depth as u64).div_ceil(8);
        // Rows are 16-byte aligned, as the firmware lays them out.
        (bytes.div_ceil(16) * 16).min(u32::MAX as u64) as u32
    }

    fn size(&self) -> u64 {
        self.pitch() as u64 * self.virt.1 as u64
    }
}

fn clamp_size(w: u32, h: u32) -> (u32, u32) {
    (w.clamp(1, 4096), h.clamp(1, 4096))
}

fn valid_depth(d: u32, current: u32) -> u32 {
    match d {
        8 | 16 | 24 | 32 => d,
        _ => current,
    }
}

/// Reads the `i`th little-endian word of a tag's value buffer; 0 beyond its end.
fn word(v: &[u8], i: usize) -> u32 {
    v.get(i * 4..i * 4 + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The VideoCore firmware's property interface.
pub struct Firmware {
    info: BoardInfo,
    clocks: Vec<FwClock>,
    power: [bool; POWER_DEVICES],
    domains: [bool; DOMAINS],
    gpios: [ExpGpio; EXP_GPIO_COUNT],
    turbo: u32,
    fb: Framebuffer,
}

impl Firmware {
    pub fn new(info: BoardInfo) -> Firmware {
        let c = |id, rate, min, max, on| FwClock {
            id,
            rate,
            min,
            max,
            on,
        };
        let clocks = vec![
            c(clock::EMMC, rate::EMMC, rate::EMMC, rate::EMMC, true),
            c(clock::UART, rate::UART, rate::UART, rate::UART, true),
            c(clock::ARM, rate::ARM, rate::ARM_MIN, rate::ARM, true),
            c(clock::CORE, rate::CORE, rate::CORE_MIN, rate::CORE, true),
            c(clock::V3D, rate::V3D, rate::V3D_MIN, rate::V3D, true),
            c(clock::H264, rate::V3D, rate::V3D_MIN, rate::V3D, true),
            c(clock::ISP, rate::V3D, rate::V3D_MIN, rate::V3D, true),
            c(
                clock::SDRAM,
                rate::SDRAM,
                rate::SDRAM_MIN,
                rate::SDRAM,
                true,
            ),
            c(clock::PIXEL, 0, 0, 297_000_000, false),
            c(clock::PWM, 0, 0, 500_000_000, false),
        ];
        let out = |state| ExpGpio {
            direction: 1,
            polarity: 0,
            term_en: 0,
            term_pull_up: 0,
            state,
        };
        let input = |state| ExpGpio {
            direction: 0,
            ..out(state)
        };
        // BT_ON, WL_ON, STATUS_LED, LAN_RUN, HDMI_HPD_N, CAM_GPIO0, CAM_GPIO1, PWR_LOW_N.
        let gpios = [
            out(1),
            out(1),
            out(0),
            out(1),
            input(1),
            out(0),
            out(0),
            input(1),
        ];
        let mut power = [false; POWER_DEVICES];
        power[0] = true; // the SD card the firmware booted from
        let mut domains = [false; DOMAINS];
        domains[23] = true; // ARM
        Firmware {
            info,
            clocks,
            power,
            domains,
            gpios,
            turbo: 0,
            fb: Framebuffer::new(),
        }
    }

    pub fn info(&self) -> &BoardInfo {
        &self.info
    }

    /// The current rate of firmware clock `id` (0 for clocks the board lacks).
    pub fn clock_rate(&self, id: u32) -> u32 {
        self.clock(id).map(|c| c.rate).unwrap_or(0)
    }

    /// The state of expander GPIO `n` (0..8): (direction, state).
    pub fn exp_gpio(&self, n: usize) -> Option<(u32, u32)> {
        self.gpios.get(n).map(|g| (g.direction, g.state))
    }

    fn clock(&self, id: u32) -> Option<&FwClock> {
        self.clocks.iter().find(|c| c.id == id)
    }

    fn clock_mut(&mut self, id: u32) -> Option<&mut FwClock> {
        self.clocks.iter_mut().find(|c| c.id == id)
    }

    /// Processes the property buffer at ARM physical `pa` in `ram`.
    pub fn process(&mut self, ram: &Ram, pa: u64) {
        let mut hdr = [0u8; 8];
        if ram.read(pa, &mut hdr).is_err() {
            log::debug!("mbox: property buffer {pa:#x} is outside RAM");
            return;
        }
        let size = word(&hdr, 0);
        if !(12..MAX_BUFFER).contains(&size) || !ram.contains(pa, size as u64) {
            log::debug!("mbox: property buffer {pa:#x} of bad size {size:#x}");
            let _ = ram.store(pa + 4, 4, CODE_ERROR as u64);
            return;
        }
        let mut buf = vec![0u8; size as usize];
        if ram.read(pa, &mut buf).is_err() {
            return;
        }
        let code = self.process_buffer(&mut buf);
        buf[4..8].copy_from_slice(&code.to_le_bytes());
        if ram.write(pa, &buf).is_err() {
            log::debug!("mbox: property buffer {pa:#x} vanished");
        }
    }

    /// Answers the tags of a whole property buffer (header included) in place; returns the
    /// buffer's response code.
    pub fn process_buffer(&mut self, buf: &mut [u8]) -> u32 {
        let size = buf.len();
        let mut off = 8usize;
        while off + 4 <= size {
            let id = word(&buf[off..], 0);
            if id == 0 {
                return CODE_SUCCESS;
            }
            if off + 12 > size {
                break;
            }
            let buf_size = word(&buf[off..], 1) as usize;
            let value = off + 12;
            if buf_size > size - value {
                log::debug!("mbox: tag {id:#x} value buffer of {buf_size:#x} overruns the buffer");
                return CODE_ERROR;
            }
            let req = &buf[value..value + buf_size];
            match self.answer(id, req) {
                Some(resp) => {
                    let n = resp.len().min(buf_size);
                    buf[value..value + n].copy_from_slice(&resp[..n]);
                    let len = TAG_RESPONSE | (resp.len() as u32 & !TAG_RESPONSE);
                    buf[off + 8..off + 12].copy_from_slice(&len.to_le_bytes());
                }
                None => log::debug!("mbox: unknown property tag {id:#x}"),
            }
            off = value + buf_size.div_ceil(4) * 4;
        }
        // Ran off the end without an end tag.
        log::debug!("mbox: property buffer without an end tag");
        CODE_ERROR
    }

    /// The response to one tag, or None for tags this firmware does not answer.
    fn answer(&mut self, id: u32, req: &[u8]) -> Option<Vec<u8>> {
        let w = |i| word(req, i);
        let info = &self.info;
        let r = match id {
            tag::FIRMWARE_REVISION => words(&[info.firmware_revision]),
            tag::BOARD_MODEL => words(&[info.model]),
            tag::BOARD_REVISION => words(&[info.revision]),
            tag::BOARD_MAC_ADDRESS => info.mac.to_vec(),
            tag::BOARD_SERIAL => info.serial.to_le_bytes().to_vec(),
            tag::ARM_MEMORY => words(&[info.arm_mem.0, info.arm_mem.1]),
            tag::VC_MEMORY => words(&[info.vc_mem.0, info.vc_mem.1]),
            tag::CLOCKS => {
                // (parent, id) pairs; every clock is a root.
                let mut v = Vec::new();
                for c in &self.clocks {
                    v.extend_from_slice(&words(&[0, c.id]));
                }
                v
            }
            tag::COMMAND_LINE => {
                let mut v = info.cmdline.as_bytes().to_vec();
                v.push(0);
                v
            }
            tag::DMA_CHANNELS => words(&[info.dma_channels]),
            tag::GET_POWER_STATE => {
                let dev = w(0);
                words(&[dev, self.power_state(dev)])
            }
            tag::GET_TIMING => {
                // Devices come up without a settling delay here.
                words(&[w(0), 0])
            }
            tag::SET_POWER_STATE => {
                let dev = w(0);
                if let Some(p) = self.power.get_mut(dev as usize) {
                    *p = w(1) & 1 != 0;
                }
                words(&[dev, self.power_state(dev)])
            }
            tag::GET_CLOCK_STATE | tag::SET_CLOCK_STATE => {
                let cid = w(0);
                let state = match self.clock_mut(cid) {
                    Some(c) => {
                        if id == tag::SET_CLOCK_STATE {
                            c.on = w(1) & 1 != 0;
                        }
                        c.on as u32
                    }
                    None => 2, // "clock does not exist"
                };
                words(&[cid, state])
            }
            tag::GET_CLOCK_RATE | tag::GET_CLOCK_MEASURED => {
                let cid = w(0);
                words(&[cid, self.clock_rate(cid)])
            }
            tag::GET_MAX_CLOCK_RATE => {
                let cid = w(0);
                words(&[cid, self.clock(cid).map(|c| c.max).unwrap_or(0)])
            }
            tag::GET_MIN_CLOCK_RATE => {
                let cid = w(0);
                words(&[cid, self.clock(cid).map(|c| c.min).unwrap_or(0)])
            }
            tag::SET_CLOCK_RATE => {
                let cid = w(0);
                let rate = match self.clock_mut(cid) {
                    Some(c) => {
                        c.rate = w(1).clamp(c.min, c.max);
                        c.rate
                    }
                    None => 0,
                };
                words(&[cid, rate])
            }
            tag::GET_VOLTAGE | tag::GET_MAX_VOLTAGE | tag::GET_MIN_VOLTAGE | tag::SET_VOLTAGE => {
                // Core and SDRAM rails at 1.2 V (microvolts); no rail changes.
                let vid = w(0);
                let v = if (1..=4).contains(&vid) { 1_200_000 } else { 0 };
                words(&[vid, v])
            }
            tag::GET_TEMPERATURE => words(&[w(0), info.temperature]),
            tag::GET_MAX_TEMPERATURE => words(&[w(0), 85_000]),
            tag::GET_TURBO => words(&[w(0), self.turbo]),
            tag::SET_TURBO => {
                self.turbo = (w(1) != 0) as u32;
                words(&[w(0), self.turbo])
            }
            tag::GET_THROTTLED => words(&[0]),
            tag::GET_DOMAIN_STATE => {
                let d = w(0);
                let on = self.domains.get(d as usize).copied().unwrap_or(false);
                words(&[d, on as u32])
            }
            tag::SET_DOMAIN_STATE => {
                let d = w(0);
                let on = w(1) != 0;
                if let Some(s) = self.domains.get_mut(d as usize) {
                    *s = on;
                }
                words(&[
                    d,
                    self.domains.get(d as usize).copied().unwrap_or(false) as u32,
                ])
            }
            tag::GET_GPIO_STATE
            | tag::SET_GPIO_STATE
            | tag::GET_GPIO_CONFIG
            | tag::SET_GPIO_CONFIG => self.gpio(id, req),
            tag::GET_EDID_BLOCK => {
                // No display: status 1 (failure), no data.
                let mut v = words(&[w(0), 1]);
                v.resize(136, 0);
                v
            }
            tag::GET_CUSTOMER_OTP => {
                let start = w(0);
                let num = w(1).min(8);
                let mut v = words(&[start, num]);
                v.resize(8 + num as usize * 4, 0);
                v
            }
            tag::NOTIFY_REBOOT | tag::NOTIFY_DISPLAY_DONE => Vec::new(),
            tag::SET_CURSOR_INFO | tag::SET_CURSOR_STATE => words(&[0]),
            _ => return self.framebuffer(id, req),
        };
        Some(r)
    }

    fn power_state(&self, dev: u32) -> u32 {
        match self.power.get(dev as usize) {
            Some(&on) => on as u32,
            None => 2, // "device does not exist"
        }
    }

    fn gpio(&mut self, id: u32, req: &[u8]) -> Vec<u8> {
        let w = |i| word(req, i);
        let n = w(0);
        let Some(g) = n
            .checked_sub(EXP_GPIO_BASE)
            .and_then(|i| self.gpios.get_mut(i as usize))
        else {
            // Not an expander GPIO: the status word stays non-zero.
            log::debug!("mbox: firmware GPIO request for GPIO {n}");
            return req.to_vec();
        };
        match id {
            tag::GET_GPIO_STATE => words(&[0, g.state]),
            tag::SET_GPIO_STATE => {
                if g.direction == 1 {
                    g.state = (w(1) != 0) as u32;
                }
                words(&[0, g.state])
            }
            tag::GET_GPIO_CONFIG => words(&[0, g.direction, g.polarity, g.term_en, g.term_pull_up]),
            _ => {
                g.direction = (w(1) != 0) as u32;
                g.polarity = (w(2) != 0) as u32;
                g.term_en = (w(3) != 0) as u32;
                g.term_pull_up = (w(4) != 0) as u32;
                if g.direction == 1 {
                    g.state = (w(5) != 0) as u32;
                }
                words(&[0])
            }
        }
    }

    fn framebuffer(&mut self, id: u32, req: &[u8]) -> Option<Vec<u8>> {
        let w = |i| word(req, i);
        let fb = &mut self.fb;
        let r = match id {
            tag::FB_ALLOCATE => {
                let (vc_base, vc_size) = self.info.vc_mem;
                let size = fb.size();
                let (base, size) = if size > 0 && size <= vc_size as u64 {
                    let base = (vc_base as u64 + vc_size as u64 - size) & !0xfff;
                    // Handed out as a bus address (the uncached alias).
                    ((base as u32) | 0xc000_0000, size as u32)
                } else {
                    (0, 0)
                };
                fb.allocated = (size != 0).then_some((base, size));
                words(&[base, size])
            }
            tag::FB_RELEASE => {
                fb.allocated = None;
                Vec::new()
            }
            tag::FB_BLANK => {
                fb.blank = w(0) & 1;
                words(&[fb.blank])
            }
            tag::FB_GET_PHYSICAL_SIZE => words(&[fb.phys.0, fb.phys.1]),
            tag::FB_TEST_PHYSICAL_SIZE => {
                let (a, b) = clamp_size(w(0), w(1));
                words(&[a, b])
            }
            tag::FB_SET_PHYSICAL_SIZE => {
                fb.phys = clamp_size(w(0), w(1));
                words(&[fb.phys.0, fb.phys.1])
            }
            tag::FB_GET_VIRTUAL_SIZE => words(&[fb.virt.0, fb.virt.1]),
            tag::FB_TEST_VIRTUAL_SIZE => {
                let (a, b) = clamp_size(w(0), w(1));
                words(&[a, b])
            }
            tag::FB_SET_VIRTUAL_SIZE => {
                fb.virt = clamp_size(w(0), w(1));
                words(&[fb.virt.0, fb.virt.1])
            }
            tag::FB_GET_DEPTH => words(&[fb.depth]),
            tag::FB_TEST_DEPTH => words(&[valid_depth(w(0), fb.depth)]),
            tag::FB_SET_DEPTH => {
                fb.depth = valid_depth(w(0), fb.depth);
                words(&[fb.depth])
            }
            tag::FB_GET_PIXEL_ORDER => words(&[fb.pixel_order]),
            tag::FB_TEST_PIXEL_ORDER => words(&[w(0) & 1]),
            tag::FB_SET_PIXEL_ORDER => {
                fb.pixel_order = w(0) & 1;
                words(&[fb.pixel_order])
            }
            tag::FB_GET_ALPHA_MODE => words(&[fb.alpha_mode]),
            tag::FB_TEST_ALPHA_MODE => words(&[w(0).min(2)]),
            tag::FB_SET_ALPHA_MODE => {
                fb.alpha_mode = w(0).min(2);
                words(&[fb.alpha_mode])
            }
            tag::FB_GET_PITCH => words(&[fb.pitch()]),
            tag::FB_GET_VIRTUAL_OFFSET => words(&[fb.offset.0, fb.offset.1]),
            tag::FB_TEST_VIRTUAL_OFFSET => words(&[w(0), w(1)]),
            tag::FB_SET_VIRTUAL_OFFSET => {
                fb.offset = (w(0), w(1));
                words(&[fb.offset.0, fb.offset.1])
            }
            tag::FB_GET_OVERSCAN => words(&fb.overscan),
            tag::FB_TEST_OVERSCAN => words(&[w(0), w(1), w(2), w(3)]),
            tag::FB_SET_OVERSCAN => {
                fb.overscan = [w(0), w(1), w(2), w(3)];
                words(&fb.overscan)
            }
            tag::FB_GET_PALETTE => words(&fb.palette[..]),
            tag::FB_TEST_PALETTE | tag::FB_SET_PALETTE => {
                let (first, n) = (w(0) as usize, w(1) as usize);
                let ok = n >= 1 && first < 256 && n <= 256 - first;
                if ok && id == tag::FB_SET_PALETTE {
                    for i in 0..n {
                        fb.palette[first + i] = w(2 + i);
                    }
                }
                words(&[(!ok) as u32])
            }
            tag::FB_TEST_VSYNC | tag::FB_SET_VSYNC | tag::FB_SET_BACKLIGHT => words(&[w(0)]),
            _ => return None,
        };
        Some(r)
    }
}

/// The mailbox block with the firmware behind it.
pub struct Mailbox {
    ram: Arc<Ram>,
    irq: IrqLine,
    irq_level: bool,
    /// Mailbox 0: VideoCore to ARM.
    fifo: VecDeque<u32>,
    config0: u32,
    config1: u32,
    firmware: Firmware,
}

impl Mailbox {
    pub fn new(ram: Arc<Ram>, irq: IrqLine, info: BoardInfo) -> Mailbox {
        Mailbox {
            ram,
            irq,
            irq_level: false,
            fifo: VecDeque::with_capacity(FIFO_DEPTH),
            config0: 0,
            config1: 0,
            firmware: Firmware::new(info),
        }
    }

    pub fn firmware(&self) -> &Firmware {
        &self.firmware
    }

    pub fn firmware_mut(&mut self) -> &mut Firmware {
        &mut self.firmware
    }

    fn update_irq(&mut self) {
        let level = self.config0 & CONFIG_IHAVEDATAIRQEN != 0 && !self.fifo.is_empty();
        if level != self.irq_level {
            self.irq_level = level;
            self.irq.set(level);
        }
    }

    fn post(&mut self, msg: u32) {
        if self.fifo.len() >= FIFO_DEPTH {
            log::debug!("mbox: mailbox 0 full, reply {msg:#x} dropped");
            return;
        }
        self.fifo.push_back(msg);
        self.update_irq();
    }

    /// A word the ARM wrote to mailbox 1: the VideoCore handles it at once.
    fn send(&mut self, msg: u32) {
        let chan = msg & 0xf;
        let data = msg & !0xf;
        match chan {
            CHANNEL_PROPERTY => {
                // A bus address: 0x40000000/0x80000000/0xc0000000 alias ARM physical 0.
                let pa = (data & 0x3fff_ffff) as u64;
                self.firmware.process(&self.ram, pa);
                self.post(msg);
            }
            _ => log::debug!("mbox: message {msg:#x} on unhandled channel {chan}"),
        }
    }

    fn status0(&self) -> u32 {
        let mut s = self.fifo.len() as u32;
        if self.fifo.is_empty() {
            s |= STATUS_EMPTY;
        }
        if self.fifo.len() >= FIFO_DEPTH {
            s |= STATUS_FULL;
        }
        s
    }

    fn read32(&mut self, offset: u64) -> u32 {
        match offset {
            MAIL0_READ => {
                let v = self.fifo.pop_front().unwrap_or(0);
                self.update_irq();
                v
            }
            MAIL0_PEEK => self.fifo.front().copied().unwrap_or(0),
            MAIL0_SENDER | MAIL1_SENDER | MAIL1_PEEK => 0,
            MAIL0_STATUS => self.status0(),
            MAIL0_CONFIG => self.config0,
            // Mailbox 1 is drained as soon as it is written.
            MAIL1_STATUS => STATUS_EMPTY,
            MAIL1_CONFIG => self.config1,
            _ => {
                log::debug!("mbox: read of unknown offset {offset:#x}");
                0
            }
        }
    }

    fn write32(&mut self, offset: u64, v: u32) {
        match offset {
            MAIL0_CONFIG => {
                self.config0 = v & CONFIG_MASK;
                self.update_irq();
            }
            MAIL1_CONFIG => self.config1 = v & CONFIG_MASK,
            MAIL1_WRITE => self.send(v),
            _ => log::debug!("mbox: write {v:#x} to unhandled offset {offset:#x}"),
        }
    }
}

impl Device for Mailbox {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if size != 4 || !offset.is_multiple_of(4) {
            log::debug!("mbox: bad read of size {size} at {offset:#x}");
            return 0;
        }
        self.read32(offset) as u64
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if size != 4 || !offset.is_multiple_of(4) {
            log::debug!("mbox: bad write of size {size} at {offset:#x}");
            return;
        }
        self.write32(offset, value as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use armboard_bus::IrqSink;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Level(AtomicBool);
    impl IrqSink for Level {
        fn set_level(&self, _line: u32, level: bool) {
            self.0.store(level, Ordering::SeqCst);
        }
    }

    const BUF: u64 = 0x10_0000;

    fn setup() -> (Arc<Ram>, Arc<Level>, Mailbox) {
        let ram = Arc::new(Ram::new(0, 0x40_0000).unwrap());
        let level = Arc::new(Level(AtomicBool::new(false)));
        let irq = IrqLine::new(level.clone(), 1);
        let mb = Mailbox::new(ram.clone(), irq, BoardInfo::pi3b(0x3b40_0000));
        (ram, level, mb)
    }

    /// Builds a property buffer as `rpi_firmware_property_list` does: size, request code,
    /// tags (id, value buffer size, 0, value words), end tag.
    fn put_buffer(ram: &Ram, tags: &[(u32, usize, &[u32])]) -> Vec<u64> {
        let mut w: Vec<u32> = vec![0, CODE_REQUEST];
        let mut value_offsets = Vec::new();
        for &(id, size, vals) in tags {
            w.extend_from_slice(&[id, size as u32, 0]);
            value_offsets.push(BUF + w.len() as u64 * 4);
            let mut v = vals.to_vec();
            v.resize(size.div_ceil(4), 0);
            w.extend_from_slice(&v);
        }
        w.push(0);
        w[0] = w.len() as u32 * 4;
        for (i, x) in w.iter().enumerate() {
            ram.store(BUF + i as u64 * 4, 4, *x as u64).unwrap();
        }
        value_offsets
    }

    fn rd(ram: &Ram, a: u64) -> u32 {
        ram.load(a, 4).unwrap() as u32
    }

    /// Sends the buffer at BUF through the mailbox the way Linux does and returns the reply.
    fn transact(mb: &mut Mailbox) -> u32 {
        mb.write(MAIL0_CONFIG, 4, CONFIG_IHAVEDATAIRQEN as u64);
        assert_eq!(mb.read(MAIL1_STATUS, 4) as u32 & STATUS_FULL, 0);
        mb.write(MAIL1_WRITE, 4, 0xc000_0000 | BUF | 8);
        assert_eq!(mb.read(MAIL0_STATUS, 4) as u32 & STATUS_EMPTY, 0);
        mb.read(MAIL0_READ, 4) as u32
    }

    #[test]
    fn property_buffer_with_several_tags_is_answered() {
        let (ram, level, mut mb) = setup();
        let v = put_buffer(
            &ram,
            &[
                (tag::FIRMWARE_REVISION, 4, &[]),
                (tag::BOARD_REVISION, 4, &[]),
                (tag::BOARD_MAC_ADDRESS, 6, &[]),
                (tag::BOARD_SERIAL, 8, &[]),
                (tag::ARM_MEMORY, 8, &[]),
                (tag::VC_MEMORY, 8, &[]),
                (tag::GET_CLOCK_RATE, 12, &[clock::CORE, 0, 1]),
                (tag::GET_CLOCK_RATE, 12, &[clock::UART]),
                (tag::DMA_CHANNELS, 4, &[]),
            ],
        );
        mb.write(MAIL0_CONFIG, 4, 1);
        mb.write(MAIL1_WRITE, 4, 0xc000_0000 | BUF | 8);
        assert!(level.0.load(Ordering::SeqCst), "reply raises the interrupt");
        assert_eq!(mb.read(MAIL0_READ, 4), 0xc000_0000 | BUF | 8);
        assert!(!level.0.load(Ordering::SeqCst), "drained FIFO lowers it");
        assert_eq!(mb.read(MAIL0_STATUS, 4) as u32 & STATUS_EMPTY, STATUS_EMPTY);

        assert_eq!(rd(&ram, BUF + 4), CODE_SUCCESS);
        assert_eq!(rd(&ram, v[0]), 0x6414_45ff);
        assert_eq!(rd(&ram, v[0] - 4), TAG_RESPONSE | 4);
        assert_eq!(rd(&ram, v[1]), 0xa02082);
        assert_eq!(rd(&ram, v[2] - 4), TAG_RESPONSE | 6);
        let mut mac = [0u8; 6];
        ram.read(v[2], &mut mac).unwrap();
        assert_eq!(&mac[..3], &[0xb8, 0x27, 0xeb]);
        assert_eq!(ram.load(v[3], 8).unwrap(), 0x1d2c_3b4a);
        assert_eq!((rd(&ram, v[4]), rd(&ram, v[4] + 4)), (0, 0x3b40_0000));
        assert_eq!(
            (rd(&ram, v[5]), rd(&ram, v[5] + 4)),
            (0x3b40_0000, 0x04c0_0000)
        );
        assert_eq!(rd(&ram, v[6] - 4), TAG_RESPONSE | 8);
        assert_eq!((rd(&ram, v[6]), rd(&ram, v[6] + 4)), (4, 400_000_000));
        assert_eq!(rd(&ram, v[7] + 4), 48_000_000);
        assert_eq!(rd(&ram, v[8]), 0x7f35);
    }

    #[test]
    fn unknown_tags_are_left_unanswered() {
        let (ram, _, mut mb) = setup();
        // Linux's power driver probes with on = ~0 and checks it changed.
        let v = put_buffer(
            &ram,
            &[
                (0x0004_8010, 4, &[0x1234]), // VCHIQ init: not this firmware's business
                (tag::GET_DOMAIN_STATE, 8, &[22, !0]),
            ],
        );
        transact(&mut mb);
        assert_eq!(rd(&ram, BUF + 4), CODE_SUCCESS);
        assert_eq!(rd(&ram, v[0] - 4), 0, "no response bit");
        assert_eq!(rd(&ram, v[0]), 0x1234);
        assert_eq!(rd(&ram, v[1] - 4), TAG_RESPONSE | 8);
        assert_ne!(rd(&ram, v[1] + 4), !0);
    }

    #[test]
    fn clocks_as_raspberrypi_clk_discovers_them() {
        let (ram, _, mut mb) = setup();
        // RPI_FIRMWARE_NUM_CLK_ID (15) pairs, zeroed by kcalloc.
        let v = put_buffer(&ram, &[(tag::CLOCKS, 15 * 8, &[])]);
        transact(&mut mb);
        let mut ids = Vec::new();
        for i in 0..15 {
            let id = rd(&ram, v[0] + i * 8 + 4);
            if id == 0 {
                break;
            }
            ids.push(id);
        }
        assert!(ids.contains(&clock::ARM) && ids.contains(&clock::CORE));
        assert!(ids.len() < 15, "the list ends with a zero id");

        let v = put_buffer(
            &ram,
            &[
                (tag::GET_MIN_CLOCK_RATE, 12, &[clock::ARM, 0, 1]),
                (tag::GET_MAX_CLOCK_RATE, 12, &[clock::ARM, 0, 1]),
                (tag::SET_CLOCK_RATE, 12, &[clock::ARM, 900_000_000, 1]),
                (tag::SET_CLOCK_RATE, 12, &[clock::ARM, 2_000_000_000, 1]),
                (tag::GET_CLOCK_STATE, 12, &[clock::ARM, 0, 1]),
                (tag::GET_CLOCK_STATE, 12, &[13, 0, 1]),
            ],
        );
        transact(&mut mb);
        assert_eq!(rd(&ram, v[0] + 4), 600_000_000);
        assert_eq!(rd(&ram, v[1] + 4), 1_200_000_000);
        assert_eq!(rd(&ram, v[2] + 4), 900_000_000);
        assert_eq!(rd(&ram, v[3] + 4), 1_200_000_000, "clamped to the maximum");
        assert_eq!(rd(&ram, v[4] + 4), 1);
        assert_eq!(rd(&ram, v[5] + 4), 2, "absent clock");
        assert_eq!(mb.firmware().clock_rate(clock::ARM), 1_200_000_000);
    }

    #[test]
    fn expander_gpios_answer_as_the_firmware_does() {
        let (ram, _, mut mb) = setup();
        // What gpio-raspberrypi-exp asks: config of GPIO 128 + n, then set/get state.
        let v = put_buffer(
            &ram,
            &[
                (tag::GET_GPIO_CONFIG, 20, &[128]),
                (tag::GET_GPIO_CONFIG, 20, &[132]),
                (tag::SET_GPIO_CONFIG, 24, &[130, 1, 0, 0, 0, 1]),
                (tag::GET_GPIO_STATE, 8, &[130]),
                (tag::SET_GPIO_STATE, 8, &[130, 0]),
                (tag::GET_GPIO_STATE, 8, &[12]),
            ],
        );
        transact(&mut mb);
        assert_eq!(rd(&ram, v[0]), 0, "status 0 = success");
        assert_eq!(rd(&ram, v[0] + 4), 1, "BT_ON is an output");
        assert_eq!(rd(&ram, v[1]), 0);
        assert_eq!(rd(&ram, v[1] + 4), 0, "HDMI_HPD_N is an input");
        assert_eq!(rd(&ram, v[2]), 0);
        assert_eq!((rd(&ram, v[3]), rd(&ram, v[3] + 4)), (0, 1));
        assert_eq!(rd(&ram, v[4]), 0);
        assert_eq!(mb.firmware().exp_gpio(2), Some((1, 0)));
        assert_ne!(rd(&ram, v[5]), 0, "not an expander GPIO");
    }

    #[test]
    fn power_and_domain_state_round_trip() {
        let (ram, _, mut mb) = setup();
        let v = put_buffer(
            &ram,
            &[
                (tag::SET_POWER_STATE, 8, &[3, 3]),
                (tag::GET_POWER_STATE, 8, &[3]),
                (tag::GET_POWER_STATE, 8, &[40]),
                (tag::SET_DOMAIN_STATE, 8, &[11, 1]),
                (tag::GET_DOMAIN_STATE, 8, &[11]),
                (tag::GET_THROTTLED, 4, &[0xffff]),
                (tag::GET_TEMPERATURE, 8, &[0]),
                (tag::NOTIFY_REBOOT, 0, &[]),
            ],
        );
        transact(&mut mb);
        assert_eq!(rd(&ram, v[0] + 4), 1);
        assert_eq!(rd(&ram, v[1] + 4), 1, "USB powered on");
        assert_eq!(rd(&ram, v[2] + 4), 2, "no such device");
        assert_eq!(rd(&ram, v[4] + 4), 1);
        assert_eq!(rd(&ram, v[5]), 0);
        assert_eq!(rd(&ram, v[6] + 4), 45_000);
        assert_eq!(rd(&ram, v[7] - 4), TAG_RESPONSE);
    }

    #[test]
    fn framebuffer_tags_are_consistent() {
        let (ram, _, mut mb) = setup();
        let v = put_buffer(
            &ram,
            &[
                (tag::FB_SET_PHYSICAL_SIZE, 8, &[800, 600]),
                (tag::FB_SET_VIRTUAL_SIZE, 8, &[800, 600]),
                (tag::FB_SET_DEPTH, 4, &[16]),
                (tag::FB_ALLOCATE, 8, &[4096]),
                (tag::FB_GET_PITCH, 4, &[]),
            ],
        );
        transact(&mut mb);
        assert_eq!((rd(&ram, v[0]), rd(&ram, v[0] + 4)), (800, 600));
        assert_eq!(rd(&ram, v[2]), 16);
        let (base, size) = (rd(&ram, v[3]), rd(&ram, v[3] + 4));
        assert_eq!(size, 1600 * 600);
        let pa = base & 0x3fff_ffff;
        assert!(
            pa >= 0x3b40_0000 && pa + size <= 0x4000_0000,
            "inside VC memory"
        );
        assert_eq!(rd(&ram, v[4]), 1600);
    }

    #[test]
    fn truncated_responses_report_their_full_length() {
        let (ram, _, mut mb) = setup();
        let v = put_buffer(&ram, &[(tag::BOARD_SERIAL, 4, &[])]);
        transact(&mut mb);
        assert_eq!(rd(&ram, v[0] - 4), TAG_RESPONSE | 8);
        assert_eq!(rd(&ram, v[0] + 4), 0, "end tag untouched");
    }

    #[test]
    fn hostile_buffers_do_not_panic() {
        let (ram, _, mut mb) = setup();
        // Outside RAM: still answered on mailbox 0 (Linux would otherwise time out).
        mb.write(MAIL1_WRITE, 4, 0xfff0_0008);
        assert_eq!(mb.read(MAIL0_READ, 4), 0xfff0_0008);
        // Size too large, too small, tag overrunning the buffer, missing end tag.
        for words in [
            vec![0x7fff_fff0u32, 0],
            vec![4, 0],
            vec![24, 0, 1, 0xffff_fff0, 0, 0],
            vec![24, 0, 1, 4, 0, 0],
        ] {
            for (i, w) in words.iter().enumerate() {
                ram.store(BUF + i as u64 * 4, 4, *w as u64).unwrap();
            }
            transact(&mut mb);
            assert_eq!(rd(&ram, BUF + 4), CODE_ERROR);
        }
        // A buffer ending at the end of RAM.
        let end = ram.size() - 16;
        for (i, w) in [16u32, 0, 1, 0].iter().enumerate() {
            ram.store(end + i as u64 * 4, 4, *w as u64).unwrap();
        }
        mb.write(MAIL1_WRITE, 4, end | 8);
        assert_eq!(rd(&ram, end + 4), CODE_ERROR);
        // FIFO overflow drops replies instead of growing.
        for _ in 0..20 {
            mb.write(MAIL1_WRITE, 4, 0xfff0_0008);
        }
        assert_eq!(mb.read(MAIL0_STATUS, 4) as u32 & STATUS_FULL, STATUS_FULL);
        // Odd sizes and offsets.
        assert_eq!(mb.read(0x3, 1), 0);
        assert_eq!(mb.read(0x100, 4), 0);
        mb.write(0x24, 4, 1);
    }
}
