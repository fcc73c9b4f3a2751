//! BCM2835 power management block ("brcm,bcm2835-pm"): the reset/watchdog registers
//! `bcm2835_wdt` drives (restart, power-off, the watchdog device), the power-domain registers
//! `bcm2835-power` drives, and, as a second [`Device`], the AXI async bridge (ASB) block the
//! same driver stops and starts around each domain. The MFD parent `bcm2835-pm` maps both
//! ("pm" and "asb" in the DT's reg-names) and touches no register itself.
//!
//! Every PM write must carry the password 0x5a in bits 31:24 (writes without it are ignored,
//! as on the hardware); reads return bits 23:0 with a zero top byte, so Linux's
//! read-modify-write `PM_WRITE(reg, PM_READ(reg) | bit)` stays valid.
//!
//! Watchdog: PM_WDOG holds a 20-bit count of 1/65536 s ticks; it counts down while PM_RSTC's
//! WRCFG field selects a full reset (bit 5), and on reaching zero resets the chip. Reading
//! PM_WDOG gives the ticks left (Linux's `get_timeleft` shifts them to seconds). On expiry the
//! `on_reset` callback gets [`ResetKind::PowerOff`] if PM_RSTS's partition field (bits 0, 2, 4,
//! 6, 8, 10) reads 63, the firmware's "halt" partition that Linux's power-off handler sets,
//! else [`ResetKind::Reset`]. Short timeouts (Linux's restart uses 10 ticks, ~150 µs) expire
//! at the RSTC write that starts the count; longer ones when [`Pm::poll`] (or any PM access)
//! finds them due. The callback runs under the device's lock (inside an MMIO write or `poll`):
//! it must only record the request, never reach back into this device.
//!
//! Power domains (PM_IMAGE, PM_GRAFX, PM_PROC): POWOK follows POWUP at once and MRDONE follows
//! MEMREP while the domain is powered, so the driver's polling loops complete on the first
//! read. The other registers the driver names (GNRIC, AUDIO, PADS, CAM, DSI, HDMI, USB, ...)
//! store what is written.

use armboard_bus::Device;
use std::time::{Duration, Instant};

/// Size of the PM register frame.
pub const SIZE: u64 = 0x114;
/// Size of the ASB register frame.
pub const ASB_SIZE: u64 = 0x24;

const PASSWORD: u32 = 0x5a00_0000;
const PASSWORD_MASK: u32 = 0xff00_0000;

const PM_RSTC: u64 = 0x1c;
const PM_RSTS: u64 = 0x20;
const PM_WDOG: u64 = 0x24;
const PM_IMAGE: u64 = 0x108;
const PM_GRAFX: u64 = 0x10c;
const PM_PROC: u64 = 0x110;

/// Registers that store what is written (besides the watchdog and domain registers):
/// GNRIC, AUDIO, STATUS, PADS0..6, CAM0/1, CCP2TX, DSI0/1, HDMI, USB, PXLDO, PXBG, DFT, SMPS,
/// XOSC, SPAREW, SPARER, AVS_RSTDR, AVS_STAT, AVS_EVENT, AVS_INTEN, DUMMY.
fn is_plain(reg: u64) -> bool {
    matches!(reg, 0x00 | 0x04 | 0x18 | 0x28..=0x3c | 0x44..=0x88 | 0xfc)
}

const RSTC_RESET: u32 = 0x102;
/// WRCFG bit 5: watchdog expiry causes a full reset (WRCFG = 2, "full reset", or 3).
const RSTC_WRCFG_FULL: u32 = 0x20;
const RSTC_WRCFG_MASK: u32 = 0x30;
const RSTS_RESET: u32 = 0x1000;
/// RSTS.HADWRF: the last reset was a watchdog full reset.
const RSTS_HADWRF: u32 = 0x20;
const WDOG_TIME_MASK: u32 = 0x000f_ffff;
/// Watchdog ticks per second.
const TICKS_PER_SEC: u64 = 65536;
/// Timeouts up to this many ticks (~10 ms) expire at the write that starts them.
const IMMEDIATE_TICKS: u32 = 655;

// Power-domain register bits.
const PM_POWUP: u32 = 1 << 0;
const PM_POWOK: u32 = 1 << 1;
const PM_MEMREP: u32 = 1 << 3;
const PM_MRDONE: u32 = 1 << 4;

/// The partition Linux's power-off handler leaves in PM_RSTS for the firmware: halt.
const HALT_PARTITION: u32 = 63;

/// What a watchdog-triggered full reset means for the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetKind {
    /// PM_RSTS named partition 63: the firmware would halt (Linux's power-off).
    PowerOff,
    /// Any other full reset: reboot.
    Reset,
}

/// The PM block: watchdog, reset status, power domains.
pub struct Pm {
    on_reset: Box<dyn Fn(ResetKind) + Send>,
    /// Word-indexed storage of bits 23:0 of every register.
    regs: [u32; (SIZE / 4) as usize],
    /// Watchdog count: the ticks left when the count last (re)started or stopped.
    wdog_load: u32,
    /// When the count started, while it runs.
    running_since: Option<Instant>,
}

impl Pm {
    /// The PM block at power-on; `on_reset` receives watchdog resets (see the module doc for
    /// the context it runs in).
    pub fn new(on_reset: Box<dyn Fn(ResetKind) + Send>) -> Pm {
        let mut regs = [0; (SIZE / 4) as usize];
        regs[(PM_RSTC / 4) as usize] = RSTC_RESET;
        regs[(PM_RSTS / 4) as usize] = RSTS_RESET;
        Pm {
            on_reset,
            regs,
            wdog_load: 0,
            running_since: None,
        }
    }

    /// The AXI async bridge block that goes with this PM block.
    pub fn asb() -> Asb {
        Asb::new()
    }

    fn reg(&self, r: u64) -> u32 {
        self.regs[(r / 4) as usize]
    }

    fn set_reg(&mut self, r: u64, v: u32) {
        self.regs[(r / 4) as usize] = v;
    }

    /// Check the watchdog: fires `on_reset` if its count has run out. The board's timer thread
    /// calls this periodically (see [`Pm::deadline`]).
    pub fn poll(&mut self) {
        self.check(Instant::now());
    }

    /// When the running watchdog will expire, if it runs.
    pub fn deadline(&self) -> Option<Instant> {
        self.running_since
            .map(|t| t + ticks_to_duration(self.wdog_load))
    }

    fn ticks_left(&self, now: Instant) -> u32 {
        match self.running_since {
            Some(t) => {
                let elapsed = now.saturating_duration_since(t);
                let ticks = (elapsed.as_nanos() * TICKS_PER_SEC as u128 / 1_000_000_000)
                    .min(u32::MAX as u128) as u32;
                self.wdog_load.saturating_sub(ticks)
            }
            None => self.wdog_load,
        }
    }

    fn check(&mut self, now: Instant) {
        if self.running_since.is_none() {
            return;
        }
        if self.wdog_load > IMMEDIATE_TICKS && self.ticks_left(now) > 0 {
            return;
        }
        self.running_since = None;
        self.wdog_load = 0;
        let rstc = self.reg(PM_RSTC) & !RSTC_WRCFG_MASK;
        self.set_reg(PM_RSTC, rstc);
        let rsts = self.reg(PM_RSTS);
        self.set_reg(PM_RSTS, rsts | RSTS_HADWRF);
        let kind = if partition(rsts) == HALT_PARTITION {
            ResetKind::PowerOff
        } else {
            ResetKind::Reset
        };
        log::info!("bcm2835 pm: watchdog full reset ({kind:?}, RSTS {rsts:#x})");
        (self.on_reset)(kind);
    }

    fn read32(&mut self, reg: u64) -> u32 {
        let now = Instant::now();
        self.check(now);
        match reg {
            PM_WDOG => self.ticks_left(now) & WDOG_TIME_MASK,
            PM_RSTC | PM_RSTS | PM_IMAGE | PM_GRAFX | PM_PROC => self.reg(reg),
            r if is_plain(r) => self.reg(r),
            _ => {
                log::debug!("bcm2835 pm: read of unknown offset {reg:#x}");
                0
            }
        }
    }

    fn write32(&mut self, reg: u64, value: u32) {
        if value & PASSWORD_MASK != PASSWORD {
            log::debug!("bcm2835 pm: write {value:#x} to {reg:#x} without the password ignored");
            return;
        }
        let v = value & !PASSWORD_MASK;
        let now = Instant::now();
        match reg {
            PM_WDOG => {
                self.wdog_load = v & WDOG_TIME_MASK;
                if self.running_since.is_some() {
                    self.running_since = Some(now);
                }
            }
            PM_RSTC => {
                self.set_reg(PM_RSTC, v);
                if v & RSTC_WRCFG_FULL != 0 {
                    if self.running_since.is_none() {
                        self.running_since = Some(now);
                    }
                } else if self.running_since.is_some() {
                    // Stopped: the count freezes where it is.
                    self.wdog_load = self.ticks_left(now);
                    self.running_since = None;
                }
            }
            PM_RSTS => self.set_reg(PM_RSTS, v),
            PM_IMAGE | PM_GRAFX | PM_PROC => self.set_reg(reg, domain_status(v)),
            r if is_plain(r) => self.set_reg(r, v),
            _ => log::debug!("bcm2835 pm: write {value:#x} to unknown offset {reg:#x}"),
        }
        self.check(now);
    }
}

/// A domain register after a write: the power switch and memory repair complete at once.
fn domain_status(v: u32) -> u32 {
    let mut v = v & !(PM_POWOK | PM_MRDONE);
    if v & PM_POWUP != 0 {
        v |= PM_POWOK;
        if v & PM_MEMREP != 0 {
            v |= PM_MRDONE;
        }
    }
    v
}

/// The boot partition the firmware reads from PM_RSTS bits 0, 2, 4, 6, 8, 10.
fn partition(rsts: u32) -> u32 {
    (0..6).fold(0, |p, i| p | ((rsts >> (2 * i)) & 1) << i)
}

fn ticks_to_duration(ticks: u32) -> Duration {
    Duration::from_nanos(ticks as u64 * 1_000_000_000 / TICKS_PER_SEC)
}

/// Access-size check shared by both frames: 32-bit aligned accesses only (smaller reads of a
/// word are served, smaller writes are ignored: every write needs the password in bits 31:24).
fn read_word(size_limit: u64, offset: u64, size: u8, read32: impl FnOnce(u64) -> u32) -> u64 {
    let sub = offset & 3;
    if offset >= size_limit || !matches!(size, 1 | 2 | 4) || sub + size as u64 > 4 {
        log::debug!("bcm2835 pm: bad read of size {size} at {offset:#x}");
        return 0;
    }
    let v = read32(offset & !3) >> (8 * sub);
    (v & (u32::MAX >> (32 - 8 * size as u32))) as u64
}

impl Device for Pm {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        read_word(SIZE, offset, size, |r| self.read32(r))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset >= SIZE || offset & 3 != 0 || size != 4 {
            log::debug!("bcm2835 pm: bad write of size {size} at {offset:#x}");
            return;
        }
        self.write32(offset, value as u32);
    }
}

const ASB_BRDG_VERSION: u64 = 0x00;
const ASB_CPR_CTRL: u64 = 0x04;
const ASB_AXI_BRDG_ID: u64 = 0x20;
/// "BRDG", which `bcm2835-power` checks before registering its domains.
const ASB_ID: u32 = 0x6272_6467;
const ASB_REQ_STOP: u32 = 1 << 0;
const ASB_ACK: u32 = 1 << 1;
const ASB_EMPTY: u32 = 1 << 2;

/// The AXI async bridge (ASB) block: the V3D, ISP and H.264 master/slave bridge controls at
/// 0x08..0x1c and the "BRDG" ID at 0x20. A stop request (REQ_STOP) is acknowledged (ACK) at
/// once and a stopped bridge shows EMPTY. The version register at 0x00 takes part in the same
/// handshake (Linux 6.1 passes register 0 as the `peri_image` domain's bridges).
pub struct Asb {
    cpr_ctrl: u32,
    /// REQ_STOP per register index 0..8 (0x00..0x1c).
    stop: [bool; 8],
}

impl Asb {
    pub fn new() -> Asb {
        Asb {
            cpr_ctrl: 0,
            stop: [false; 8],
        }
    }

    fn read32(&self, reg: u64) -> u32 {
        match reg {
            ASB_BRDG_VERSION | 0x08..=0x1c => {
                if self.stop[(reg / 4) as usize] {
                    ASB_REQ_STOP | ASB_ACK | ASB_EMPTY
                } else {
                    0
                }
            }
            ASB_CPR_CTRL => self.cpr_ctrl,
            ASB_AXI_BRDG_ID => ASB_ID,
            _ => {
                log::debug!("bcm2835 asb: read of unknown offset {reg:#x}");
                0
            }
        }
    }

    fn write32(&mut self, reg: u64, value: u32) {
        let v = value & !PASSWORD_MASK;
        match reg {
            ASB_BRDG_VERSION | 0x08..=0x1c => self.stop[(reg / 4) as usize] = v & ASB_REQ_STOP != 0,
            ASB_CPR_CTRL => self.cpr_ctrl = v,
            _ => log::debug!("bcm2835 asb: write {value:#x} to read-only/unknown offset {reg:#x}"),
        }
    }
}

impl Default for Asb {
    fn default() -> Self {
        Asb::new()
    }
}

impl Device for Asb {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        read_word(ASB_SIZE, offset, size, |r| self.read32(r))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset >= ASB_SIZE || offset & 3 != 0 || size != 4 {
            log::debug!("bcm2835 asb: bad write of size {size} at {offset:#x}");
            return;
        }
        self.write32(offset, value as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn pm() -> (Pm, Arc<Mutex<Vec<ResetKind>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let pm = Pm::new(Box::new(move |k| l.lock().unwrap().push(k)));
        (pm, log)
    }

    fn w(d: &mut impl Device, reg: u64, v: u32) {
        d.write(reg, 4, (PASSWORD | v) as u64);
    }
    fn r(d: &mut impl Device, reg: u64) -> u32 {
        d.read(reg, 4) as u32
    }
    /// `PM_WRITE(reg, PM_READ(reg) | bits)`.
    fn set(d: &mut impl Device, reg: u64, bits: u32) {
        let v = r(d, reg) | bits;
        w(d, reg, v);
    }
    /// `PM_WRITE(reg, PM_READ(reg) & ~bits)`.
    fn clr(d: &mut impl Device, reg: u64, bits: u32) {
        let v = r(d, reg) & !bits;
        w(d, reg, v);
    }

    /// `__bcm2835_restart`.
    fn linux_restart(pm: &mut Pm) {
        pm.write(PM_WDOG, 4, (10 | PASSWORD) as u64);
        let val = (r(pm, PM_RSTC) & 0xffff_ffcf) | PASSWORD | 0x20;
        pm.write(PM_RSTC, 4, val as u64);
    }

    /// `bcm2835_wdt_start` with a timeout in seconds.
    fn linux_wdt_start(pm: &mut Pm, secs: u32) {
        w(pm, PM_WDOG, (secs << 16) & WDOG_TIME_MASK);
        let cur = r(pm, PM_RSTC);
        w(pm, PM_RSTC, (cur & 0xffff_ffcf) | 0x20);
    }

    #[test]
    fn reset_values_and_the_watchdog_is_not_running() {
        let (mut pm, _) = pm();
        assert_eq!(r(&mut pm, PM_RSTC), 0x102);
        assert_eq!(r(&mut pm, PM_RSTS), 0x1000);
        assert_eq!(r(&mut pm, PM_RSTC) & 0x20, 0, "bcm2835_wdt_is_running");
        assert_eq!(r(&mut pm, PM_WDOG), 0);
    }

    #[test]
    fn restart_triggers_a_reset() {
        let (mut pm, log) = pm();
        linux_restart(&mut pm);
        assert_eq!(*log.lock().unwrap(), [ResetKind::Reset]);
        assert_eq!(r(&mut pm, PM_RSTS) & RSTS_HADWRF, RSTS_HADWRF);
        pm.poll();
        assert_eq!(log.lock().unwrap().len(), 1, "fires once");
    }

    #[test]
    fn power_off_sequence_requests_power_off() {
        let (mut pm, log) = pm();
        // bcm2835_power_off: RSTS |= PASSWORD | 0x555, then the restart sequence.
        let val = r(&mut pm, PM_RSTS) | PASSWORD | 0x555;
        pm.write(PM_RSTS, 4, val as u64);
        assert_eq!(r(&mut pm, PM_RSTS), 0x1555);
        assert!(log.lock().unwrap().is_empty());
        linux_restart(&mut pm);
        assert_eq!(*log.lock().unwrap(), [ResetKind::PowerOff]);
    }

    #[test]
    fn writes_without_the_password_are_ignored() {
        let (mut pm, log) = pm();
        pm.write(PM_WDOG, 4, 10);
        pm.write(PM_RSTC, 4, 0x20);
        pm.write(PM_RSTS, 4, 0x555);
        assert_eq!(r(&mut pm, PM_RSTC), 0x102);
        assert_eq!(r(&mut pm, PM_RSTS), 0x1000);
        assert!(log.lock().unwrap().is_empty());
    }

    #[test]
    fn watchdog_counts_down_stops_and_expires() {
        let (mut pm, log) = pm();
        linux_wdt_start(&mut pm, 15);
        assert_ne!(r(&mut pm, PM_RSTC) & 0x20, 0, "running");
        let left = r(&mut pm, PM_WDOG);
        assert!(
            left <= 0xf0000 && left > 0xe0000,
            "get_timeleft about 15 s: {left:#x}"
        );
        std::thread::sleep(Duration::from_millis(20));
        assert!(r(&mut pm, PM_WDOG) < left, "counting down");
        let d = pm.deadline().expect("running");
        assert!(d > Instant::now() + Duration::from_secs(14));
        pm.poll();
        assert!(log.lock().unwrap().is_empty());
        // Stop (PM_RSTC_RESET): the count freezes.
        w(&mut pm, PM_RSTC, 0x102);
        assert!(pm.deadline().is_none());
        let frozen = r(&mut pm, PM_WDOG);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(r(&mut pm, PM_WDOG), frozen);
        // Expiry: pretend the count started long ago.
        linux_wdt_start(&mut pm, 1);
        pm.running_since = Some(Instant::now() - Duration::from_secs(2));
        assert_eq!(r(&mut pm, PM_WDOG), 0, "an access notices the expiry too");
        assert_eq!(*log.lock().unwrap(), [ResetKind::Reset]);
        assert_eq!(r(&mut pm, PM_RSTC) & 0x20, 0, "no longer running");
    }

    #[test]
    fn watchdog_expires_via_poll_after_its_timeout() {
        let (mut pm, log) = pm();
        // 0x1000 ticks = 62.5 ms.
        w(&mut pm, PM_WDOG, 0x1000);
        w(&mut pm, PM_RSTC, 0x20);
        pm.poll();
        assert!(log.lock().unwrap().is_empty());
        std::thread::sleep(Duration::from_millis(80));
        pm.poll();
        assert_eq!(*log.lock().unwrap(), [ResetKind::Reset]);
    }

    #[test]
    fn ping_reloads_the_count() {
        let (mut pm, log) = pm();
        w(&mut pm, PM_WDOG, 0x1000);
        w(&mut pm, PM_RSTC, 0x20);
        std::thread::sleep(Duration::from_millis(40));
        // The framework pings by calling start again.
        w(&mut pm, PM_WDOG, 0x1000);
        w(&mut pm, PM_RSTC, 0x20);
        std::thread::sleep(Duration::from_millis(40));
        pm.poll();
        assert!(log.lock().unwrap().is_empty(), "reloaded 40 ms ago");
        assert!(r(&mut pm, PM_WDOG) < 0x1000);
    }

    /// bcm2835_power_power_on then bcm2835_asb_power_on for V3D, and back off.
    #[test]
    fn grafx_v3d_domain_powers_on_and_off() {
        let (mut pm, _) = pm();
        let mut asb = Pm::asb();
        assert_eq!(r(&mut asb, ASB_AXI_BRDG_ID), 0x6272_6467);
        let reg = PM_GRAFX;
        assert_eq!(r(&mut pm, reg) & PM_POWUP, 0, "off at boot");
        // Inrush ramp: the first step already shows POWOK.
        let v = (r(&mut pm, reg) & !(3 << 13)) | PM_POWUP;
        w(&mut pm, reg, v);
        assert_ne!(r(&mut pm, reg) & PM_POWOK, 0);
        set(&mut pm, reg, 1 << 2); // ISPOW
        set(&mut pm, reg, PM_MEMREP);
        assert_ne!(r(&mut pm, reg) & PM_MRDONE, 0);
        set(&mut pm, reg, 1 << 5); // ISFUNC
        set(&mut pm, reg, 1 << 6); // V3DRSTN
        for b in [0x0c, 0x08] {
            clr(&mut asb, b, ASB_REQ_STOP);
            assert_eq!(r(&mut asb, b) & ASB_ACK, 0, "bridge {b:#x} running");
        }
        assert_eq!(r(&mut pm, reg), 0x7f);
        // Off: bridges stop (ACK), resets asserted, isolation, switches open.
        for b in [0x08, 0x0c] {
            set(&mut asb, b, ASB_REQ_STOP);
            assert_ne!(r(&mut asb, b) & ASB_ACK, 0, "bridge {b:#x} stopped");
        }
        clr(&mut pm, reg, 1 << 6);
        clr(&mut pm, reg, 1 << 5);
        clr(&mut pm, reg, 1 << 2);
        clr(&mut pm, reg, PM_POWUP);
        assert_eq!(r(&mut pm, reg) & (PM_POWUP | PM_POWOK | PM_MRDONE), 0);
        // peri_image's bridges are register 0 in Linux 6.1: the handshake completes too.
        set(&mut asb, 0, ASB_REQ_STOP);
        assert_ne!(r(&mut asb, 0) & ASB_ACK, 0);
        clr(&mut asb, 0, ASB_REQ_STOP);
        assert_eq!(r(&mut asb, 0) & ASB_ACK, 0);
    }

    #[test]
    fn simple_domains_and_unknown_offsets() {
        let (mut pm, _) = pm();
        w(&mut pm, 0x5c, 1); // USB CTRLEN
        assert_eq!(r(&mut pm, 0x5c), 1);
        w(&mut pm, 0x50, 0x5); // DSI0
        assert_eq!(r(&mut pm, 0x50), 0x5);
        w(&mut pm, 0x40, 7);
        assert_eq!(r(&mut pm, 0x40), 0);
        assert_eq!(r(&mut pm, 0x114), 0);
        assert_eq!(pm.read(PM_RSTC, 8), 0);
        pm.write(PM_RSTC, 1, 0x20);
        assert_eq!(pm.read(PM_RSTC + 1, 1), 1);
        let mut asb = Asb::new();
        asb.write(0x20, 4, 0);
        assert_eq!(asb.read(0x20, 4), 0x6272_6467);
        assert_eq!(asb.read(0x24, 4), 0);
    }

    #[test]
    fn partition_field_is_spread_over_even_bits() {
        assert_eq!(partition(0x555), 63);
        assert_eq!(partition(0x1000), 0);
        assert_eq!(partition(0x1), 1);
        assert_eq!(partition(0x4), 2);
        assert_eq!(partition(0x400), 32);
    }
}
