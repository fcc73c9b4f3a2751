//! The BCM2835 clock manager, CPRMAN (bus 0x7e101000, "brcm,bcm2835-cprman"), with the A2W
//! (analogue-to-wire) PLL registers that share its block, as Linux's `clk-bcm2835` driver uses
//! it.
//!
//! The reset state is what the Pi 3 firmware leaves behind, so that Linux, computing from the
//! PLL multipliers, PLL channel dividers and clock CTL/DIV registers, arrives at the rates the
//! firmware reports over the mailbox ([`super::mbox::rate`]): core (VPU) 400 MHz from PLLC
//! (2.4 GHz) / 6; UART 48 MHz and EMMC 250 MHz from PLLD_PER (PLLD 2.25 GHz / 4 = 562.5 MHz,
//! dividers 11.71875 and 2.25, exact); ARM 1.2 GHz from PLLB / 2; the timer 1 MHz and TSENS
//! 1.92 MHz from the 19.2 MHz oscillator. Every PLL is powered and locked.
//!
//! Every write must carry the password 0x5a in bits 31:24, or it is ignored. Clocks and PLLs
//! settle at once: a CTL register's BUSY bit follows ENABLE (and drops with KILL), a PLL is
//! locked (CM_LOCK.FLOCKx) whenever it is out of reset (CM_PLLx.ANARST clear) and powered
//! (A2W_PLLx_CTRL.PWRDN clear), CM_OSCCOUNT has always finished counting and CM_TCNTCNT holds
//! the measured clock's rate in kHz. [`Cprman::rate`] computes any clock's rate from the
//! register state with Linux's arithmetic.

use armboard_bus::Device;

/// Size of the register block (CM at 0x0000, A2W at 0x1000).
pub const SIZE: u64 = 0x2000;

/// The crystal oscillator feeding everything.
pub const OSC_HZ: u64 = 19_200_000;

/// Bits 31:24 of every write.
pub const PASSWORD: u32 = 0x5a00_0000;
const PASSWORD_MASK: u32 = 0xff00_0000;

// CM_*CTL bits.
pub const CM_ENABLE: u32 = 1 << 4;
pub const CM_KILL: u32 = 1 << 5;
pub const CM_GATE: u32 = 1 << 6;
pub const CM_BUSY: u32 = 1 << 7;
pub const CM_BUSYD: u32 = 1 << 8;
pub const CM_FRAC: u32 = 1 << 9;
pub const CM_SRC_MASK: u32 = 0xf;

// Registers the model gives meaning to.
pub const CM_VPUCTL: u32 = 0x008;
pub const CM_VPUDIV: u32 = 0x00c;
pub const CM_PERIICTL: u32 = 0x020;
pub const CM_PWMCTL: u32 = 0x0a0;
pub const CM_PWMDIV: u32 = 0x0a4;
pub const CM_TCNTCTL: u32 = 0x0c0;
pub const CM_TCNTCNT: u32 = 0x0c4;
pub const CM_TSENSCTL: u32 = 0x0e0;
pub const CM_TSENSDIV: u32 = 0x0e4;
pub const CM_TIMERCTL: u32 = 0x0e8;
pub const CM_TIMERDIV: u32 = 0x0ec;
pub const CM_UARTCTL: u32 = 0x0f0;
pub const CM_UARTDIV: u32 = 0x0f4;
pub const CM_OSCCOUNT: u32 = 0x100;
pub const CM_PLLA: u32 = 0x104;
pub const CM_PLLC: u32 = 0x108;
pub const CM_PLLD: u32 = 0x10c;
pub const CM_PLLH: u32 = 0x110;
pub const CM_LOCK: u32 = 0x114;
pub const CM_PLLB: u32 = 0x170;
pub const CM_SDCCTL: u32 = 0x1a8;
pub const CM_SDCDIV: u32 = 0x1ac;
pub const CM_EMMCCTL: u32 = 0x1c0;
pub const CM_EMMCDIV: u32 = 0x1c4;
pub const A2W_XOSC_CTRL: u32 = 0x1190;

/// CM_PLLx: the PLL's analogue reset.
pub const CM_PLL_ANARST: u32 = 1 << 8;
/// A2W_PLLx_CTRL fields.
pub const A2W_PLL_CTRL_PRST_DISABLE: u32 = 1 << 17;
pub const A2W_PLL_CTRL_PWRDN: u32 = 1 << 16;
const A2W_PLL_CTRL_PDIV_SHIFT: u32 = 12;
const A2W_PLL_CTRL_NDIV_MASK: u32 = 0x3ff;
const A2W_PLL_FRAC_BITS: u32 = 20;
const A2W_PLL_FRAC_MASK: u32 = (1 << A2W_PLL_FRAC_BITS) - 1;
/// A2W PLL channel register: the channel is off.
pub const A2W_PLL_CHANNEL_DISABLE: u32 = 1 << 8;

const CM_DIV_FRAC_BITS: u32 = 12;

/// One PLL's registers.
pub struct PllInfo {
    pub name: &'static str,
    pub cm: u32,
    pub a2w_ctrl: u32,
    pub frac: u32,
    pub ana0: u32,
    /// Its FLOCK bit in CM_LOCK.
    pub lock: u32,
    /// The feedback pre-divider (x2) bit in ANA1.
    pub prediv: u32,
}

pub const PLLS: [PllInfo; 5] = [
    PllInfo {
        name: "plla",
        cm: CM_PLLA,
        a2w_ctrl: 0x1100,
        frac: 0x1200,
        ana0: 0x1010,
        lock: 1 << 8,
        prediv: 1 << 14,
    },
    PllInfo {
        name: "pllb",
        cm: CM_PLLB,
        a2w_ctrl: 0x11e0,
        frac: 0x12e0,
        ana0: 0x10f0,
        lock: 1 << 9,
        prediv: 1 << 14,
    },
    PllInfo {
        name: "pllc",
        cm: CM_PLLC,
        a2w_ctrl: 0x1120,
        frac: 0x1220,
        ana0: 0x1030,
        lock: 1 << 10,
        prediv: 1 << 14,
    },
    PllInfo {
        name: "plld",
        cm: CM_PLLD,
        a2w_ctrl: 0x1140,
        frac: 0x1240,
        ana0: 0x1050,
        lock: 1 << 11,
        prediv: 1 << 14,
    },
    PllInfo {
        name: "pllh",
        cm: CM_PLLH,
        a2w_ctrl: 0x1160,
        frac: 0x1260,
        ana0: 0x1070,
        lock: 1 << 12,
        prediv: 1 << 11,
    },
];

/// A PLL output channel: (name, PLL index in [`PLLS`], A2W divider register, fixed divider
/// after it, hold bit in CM_PLLx).
pub const PLL_CHANNELS: [(&str, usize, u32, u32, u32); 16] = [
    ("plla_dsi0", 0, 0x1300, 1, 1 << 1),
    ("plla_core", 0, 0x1400, 1, 1 << 5),
    ("plla_per", 0, 0x1500, 1, 1 << 7),
    ("plla_ccp2", 0, 0x1600, 1, 1 << 3),
    ("pllb_arm", 1, 0x13e0, 1, 1 << 1),
    ("pllc_core2", 2, 0x1320, 1, 1 << 5),
    ("pllc_core1", 2, 0x1420, 1, 1 << 3),
    ("pllc_per", 2, 0x1520, 1, 1 << 7),
    ("pllc_core0", 2, 0x1620, 1, 1 << 1),
    ("plld_dsi0", 3, 0x1340, 1, 1 << 1),
    ("plld_core", 3, 0x1440, 1, 1 << 5),
    ("plld_per", 3, 0x1540, 1, 1 << 7),
    ("plld_dsi1", 3, 0x1640, 1, 1 << 3),
    ("pllh_aux", 4, 0x1360, 1, 0),
    ("pllh_rcal", 4, 0x1460, 10, 0),
    ("pllh_pix", 4, 0x1560, 10, 0),
];

/// Which parents a clock's source mux selects between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mux {
    /// gnd, xosc, testdebug0, testdebug1.
    Osc,
    /// ... plla_per, pllc_per, plld_per, pllh_aux.
    Per,
    /// ... plla_core, pllc_core0, plld_core, pllh_aux, pllc_core1, pllc_core2.
    Vpu,
    /// ... the DSI PHY's byte/DDR clocks (not modelled: 0 Hz).
    Dsi,
}

/// A CM clock generator: (name, CTL offset, integer divider bits, fractional divider bits,
/// mux, TCNT measurement mux).
pub struct ClockInfo {
    pub name: &'static str,
    pub ctl: u32,
    pub int_bits: u32,
    pub frac_bits: u32,
    pub mux: Mux,
    pub tcnt: u32,
}

const fn clk(
    name: &'static str,
    ctl: u32,
    int_bits: u32,
    frac_bits: u32,
    mux: Mux,
    tcnt: u32,
) -> ClockInfo {
    ClockInfo {
        name,
        ctl,
        int_bits,
        frac_bits,
        mux,
        tcnt,
    }
}

/// The clock generators Linux drives (DIV is at CTL + 4).
pub const CLOCKS: [ClockInfo; 29] = [
    clk("otp", 0x090, 4, 0, Mux::Osc, 6),
    clk("timer", CM_TIMERCTL, 6, 12, Mux::Osc, 0),
    clk("tsens", CM_TSENSCTL, 5, 0, Mux::Osc, 0),
    clk("tec", 0x0c8, 6, 0, Mux::Osc, 0),
    clk("h264", 0x028, 4, 8, Mux::Vpu, 1),
    clk("isp", 0x030, 4, 8, Mux::Vpu, 2),
    clk("sdram", CM_SDCCTL, 6, 0, Mux::Vpu, 3),
    clk("v3d", 0x038, 4, 8, Mux::Vpu, 4),
    clk("vpu", CM_VPUCTL, 12, 8, Mux::Vpu, 5),
    clk("aveo", 0x1b8, 4, 0, Mux::Per, 38),
    clk("cam0", 0x040, 4, 8, Mux::Per, 14),
    clk("cam1", 0x048, 4, 8, Mux::Per, 15),
    clk("dft", 0x168, 5, 0, Mux::Per, 0),
    clk("dpi", 0x068, 4, 8, Mux::Per, 17),
    clk("emmc", CM_EMMCCTL, 4, 8, Mux::Per, 39),
    clk("gp0", 0x070, 12, 12, Mux::Per, 20),
    clk("gp1", 0x078, 12, 12, Mux::Per, 21),
    clk("gp2", 0x080, 12, 12, Mux::Per, 0),
    clk("hsm", 0x088, 4, 8, Mux::Per, 22),
    clk("pcm", 0x098, 12, 12, Mux::Per, 23),
    clk("pwm", CM_PWMCTL, 12, 12, Mux::Per, 24),
    clk("slim", 0x0a8, 12, 12, Mux::Per, 25),
    clk("smi", 0x0b0, 4, 8, Mux::Per, 27),
    clk("uart", CM_UARTCTL, 10, 12, Mux::Per, 28),
    clk("vec", 0x0f8, 4, 0, Mux::Per, 29),
    clk("dsi0e", 0x058, 4, 8, Mux::Per, 18),
    clk("dsi1e", 0x158, 4, 8, Mux::Per, 19),
    clk("dsi0p", 0x060, 0, 0, Mux::Dsi, 12),
    clk("dsi1p", 0x160, 0, 0, Mux::Dsi, 13),
];

/// Other CTL registers with BUSY/ENABLE semantics (generic, periph A/image, system, ARM,
/// pulse, TCNT).
const OTHER_CTLS: [u32; 7] = [0x000, 0x010, 0x018, CM_PERIICTL, 0x1b0, 0x190, CM_TCNTCTL];

/// The clock manager.
pub struct Cprman {
    regs: Box<[u32]>,
}

impl Default for Cprman {
    fn default() -> Self {
        Self::new()
    }
}

impl Cprman {
    /// The block as the Pi 3 firmware leaves it.
    pub fn new() -> Cprman {
        let mut c = Cprman {
            regs: vec![0u32; (SIZE / 4) as usize].into_boxed_slice(),
        };
        c.reset();
        c
    }

    fn set(&mut self, off: u32, v: u32) {
        if let Some(r) = self.regs.get_mut((off / 4) as usize) {
            *r = v;
        }
    }

    fn get(&self, off: u32) -> u32 {
        self.regs.get((off / 4) as usize).copied().unwrap_or(0)
    }

    fn reset(&mut self) {
        self.regs.iter_mut().for_each(|r| *r = 0);
        // Every PLL's reference enabled.
        self.set(A2W_XOSC_CTRL, 0xff);
        // (PLL, multiplier ndiv + fdiv / 2^20 from 19.2 MHz, feedback pre-divider in use):
        // PLLA 1.5 GHz, PLLB 2.4 GHz, PLLC 2.4 GHz, PLLD 2.25 GHz, PLLH 1.296 GHz. Above
        // 1.75 GHz the VCO runs from the x2 pre-divider, so the multiplier is halved, as
        // Linux's bcm2835_pll_set_rate programs it.
        let plls: [(usize, u32, u32, bool); 5] = [
            (0, 78, 0x2_0000, false),
            (1, 62, 0x8_0000, true),
            (2, 62, 0x8_0000, true),
            (3, 58, 0x9_8000, true),
            (4, 67, 0x8_0000, false),
        ];
        for (i, ndiv, fdiv, prediv) in plls {
            let p = &PLLS[i];
            self.set(
                p.a2w_ctrl,
                A2W_PLL_CTRL_PRST_DISABLE | (1 << A2W_PLL_CTRL_PDIV_SHIFT) | ndiv,
            );
            self.set(p.frac, fdiv);
            // ANA1: KI = 2, KP = 8 (Linux's defaults), plus the pre-divider.
            let ana1 = if i == 4 {
                6 << 1
            } else {
                (2 << 19) | (8 << 15)
            };
            self.set(p.ana0 + 4, ana1 | if prediv { p.prediv } else { 0 });
            if i != 4 {
                self.set(p.ana0 + 12, 2 << 7);
            }
        }
        // PLL channels: (name, divider, enabled).
        let channels: [(&str, u32, bool); 16] = [
            ("plla_dsi0", 1, false),
            ("plla_core", 4, false),
            ("plla_per", 4, false),
            ("plla_ccp2", 4, false),
            ("pllb_arm", 2, true),
            ("pllc_core2", 10, true),
            ("pllc_core1", 6, true),
            ("pllc_per", 2, true),
            ("pllc_core0", 6, true),
            ("plld_dsi0", 1, false),
            ("plld_core", 4, true),
            ("plld_per", 4, true),
            ("plld_dsi1", 1, false),
            ("pllh_aux", 1, false),
            ("pllh_rcal", 1, false),
            ("pllh_pix", 1, false),
        ];
        for (name, div, on) in channels {
            let Some(&(_, pll, reg, _, hold)) = PLL_CHANNELS.iter().find(|c| c.0 == name) else {
                continue;
            };
            self.set(reg, div | if on { 0 } else { A2W_PLL_CHANNEL_DISABLE });
            if !on {
                let cm = PLLS[pll].cm;
                self.set(cm, self.get(cm) | hold);
            }
        }
        // Clock generators: (CTL, source, DIV as 12.12 fixed point, enabled).
        let src_osc = 1;
        let src_pllc_core0 = 5;
        let src_plld_per = 6;
        let gens: [(u32, u32, u32, bool); 6] = [
            (CM_VPUCTL, src_pllc_core0, 1 << 12, true),
            (CM_UARTCTL, src_plld_per, 48000, true), // 11.71875: 562.5 MHz -> 48 MHz
            (CM_EMMCCTL, src_plld_per, 9216, true),  // 2.25: 562.5 MHz -> 250 MHz
            (CM_TIMERCTL, src_osc, 0x1_3333, true),  // 19.2: 1 MHz
            (CM_TSENSCTL, src_osc, 10 << 12, true),  // 1.92 MHz
            (CM_SDCCTL, src_osc, 1 << 12, false),
        ];
        for (ctl, src, div, on) in gens {
            let frac = if div & 0xfff != 0 { CM_FRAC } else { 0 };
            self.set(ctl, src | frac | if on { CM_ENABLE } else { 0 });
            self.set(ctl + 4, div);
        }
        self.set(CM_PERIICTL, CM_ENABLE | CM_GATE);
    }

    fn is_ctl(off: u32) -> bool {
        CLOCKS.iter().any(|c| c.ctl == off) || OTHER_CTLS.contains(&off)
    }

    fn pll_locked(&self, p: &PllInfo) -> bool {
        self.get(p.a2w_ctrl) & A2W_PLL_CTRL_PWRDN == 0 && self.get(p.cm) & CM_PLL_ANARST == 0
    }

    fn read32(&self, off: u32) -> u32 {
        match off {
            CM_OSCCOUNT => 0,
            CM_LOCK => PLLS
                .iter()
                .filter(|p| self.pll_locked(p))
                .fold(0, |a, p| a | p.lock),
            CM_TCNTCNT => {
                let ctl = self.get(CM_TCNTCTL);
                let mux = (ctl & CM_SRC_MASK) | ((ctl >> 12) & 0xf) << 4;
                CLOCKS
                    .iter()
                    .find(|c| c.tcnt == mux && mux != 0)
                    .and_then(|c| self.rate(c.name))
                    .map(|r| (r / 1000) as u32)
                    .unwrap_or(0)
            }
            _ if Self::is_ctl(off) => {
                let v = self.get(off) & !(CM_BUSY | CM_BUSYD);
                let running = v & CM_ENABLE != 0 && v & CM_KILL == 0;
                v | if running { CM_BUSY } else { 0 }
            }
            _ => self.get(off),
        }
    }

    fn write32(&mut self, off: u32, v: u32) {
        if v & PASSWORD_MASK != PASSWORD {
            log::debug!("cprman: write {v:#x} to {off:#x} without the password ignored");
            return;
        }
        let v = v & !PASSWORD_MASK;
        match off {
            CM_LOCK | CM_TCNTCNT => log::debug!("cprman: write to read-only {off:#x}"),
            _ if Self::is_ctl(off) => self.set(off, v & !(CM_BUSY | CM_BUSYD)),
            _ => self.set(off, v),
        }
    }

    /// The rate in Hz of the named clock (Linux's names: "osc", "plld", "plld_per", "uart",
    /// ...), computed from the registers as `clk-bcm2835` computes it; None for unknown names.
    pub fn rate(&self, name: &str) -> Option<u64> {
        if name == "osc" || name == "xosc" {
            return Some(OSC_HZ);
        }
        if let Some(p) = PLLS.iter().find(|p| p.name == name) {
            return Some(self.pll_rate(p));
        }
        if let Some(&(_, pll, reg, fixed, _)) = PLL_CHANNELS.iter().find(|c| c.0 == name) {
            let parent = self.pll_rate(&PLLS[pll]);
            // clk_divider with CLK_DIVIDER_MAX_AT_ZERO over 8 bits, rounding up.
            let div = match self.get(reg) & 0xff {
                0 => 256,
                d => d as u64,
            };
            return Some(parent.div_ceil(div) / fixed as u64);
        }
        let c = CLOCKS.iter().find(|c| c.name == name)?;
        let parent = self.parent_rate(c);
        if c.int_bits == 0 && c.frac_bits == 0 {
            return Some(parent);
        }
        let div = (self.get(c.ctl + 4) >> (CM_DIV_FRAC_BITS - c.frac_bits))
            & ((1 << (c.int_bits + c.frac_bits)) - 1);
        if div == 0 {
            return Some(0);
        }
        Some((parent << c.frac_bits) / div as u64)
    }

    fn parent_rate(&self, c: &ClockInfo) -> u64 {
        let src = self.get(c.ctl) & CM_SRC_MASK;
        let parent = match (c.mux, src) {
            (_, 1) => return OSC_HZ,
            (Mux::Per, 4) => "plla_per",
            (Mux::Per, 5) => "pllc_per",
            (Mux::Per, 6) => "plld_per",
            (Mux::Per | Mux::Vpu, 7) => "pllh_aux",
            (Mux::Vpu, 4) => "plla_core",
            (Mux::Vpu, 5) => "pllc_core0",
            (Mux::Vpu, 6) => "plld_core",
            (Mux::Vpu, 8) => "pllc_core1",
            (Mux::Vpu, 9) => "pllc_core2",
            _ => return 0,
        };
        self.rate(parent).unwrap_or(0)
    }

    fn pll_rate(&self, p: &PllInfo) -> u64 {
        let ctrl = self.get(p.a2w_ctrl);
        let mut fdiv = (self.get(p.frac) & A2W_PLL_FRAC_MASK) as u64;
        let mut ndiv = (ctrl & A2W_PLL_CTRL_NDIV_MASK) as u64;
        let pdiv = ((ctrl >> A2W_PLL_CTRL_PDIV_SHIFT) & 7) as u64;
        if self.get(p.ana0 + 4) & p.prediv != 0 {
            ndiv *= 2;
            fdiv *= 2;
        }
        if pdiv == 0 {
            return 0;
        }
        (OSC_HZ * ((ndiv << A2W_PLL_FRAC_BITS) + fdiv) / pdiv) >> A2W_PLL_FRAC_BITS
    }
}

impl Device for Cprman {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if size != 4 || !offset.is_multiple_of(4) || offset >= SIZE {
            log::debug!("cprman: bad read of size {size} at {offset:#x}");
            return 0;
        }
        self.read32(offset as u32) as u64
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if size != 4 || !offset.is_multiple_of(4) || offset >= SIZE {
            log::debug!("cprman: bad write of size {size} at {offset:#x}");
            return;
        }
        self.write32(offset as u32, value as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bcm2835::mbox;

    fn wr(c: &mut Cprman, off: u32, v: u32) {
        c.write(off as u64, 4, (PASSWORD | v) as u64);
    }

    fn rd(c: &mut Cprman, off: u32) -> u32 {
        c.read(off as u64, 4) as u32
    }

    #[test]
    fn reset_rates_match_what_the_firmware_reports() {
        let c = Cprman::new();
        assert_eq!(c.rate("vpu"), Some(mbox::rate::CORE as u64));
        assert_eq!(c.rate("uart"), Some(mbox::rate::UART as u64));
        assert_eq!(c.rate("emmc"), Some(mbox::rate::EMMC as u64));
        assert_eq!(c.rate("pllb_arm"), Some(mbox::rate::ARM as u64));
        assert_eq!(c.rate("pllc"), Some(2_400_000_000));
        assert_eq!(c.rate("plld"), Some(2_250_000_000));
        assert_eq!(c.rate("plld_per"), Some(562_500_000));
        assert_eq!(c.rate("timer"), Some(1_000_002));
        assert_eq!(c.rate("tsens"), Some(1_920_000));
        assert_eq!(c.rate("pwm"), Some(0), "off and unprogrammed");
        assert_eq!(c.rate("nonsense"), None);
    }

    #[test]
    fn plls_are_locked_and_enabled_clocks_busy() {
        let mut c = Cprman::new();
        assert_eq!(rd(&mut c, CM_LOCK) & 0x1f00, 0x1f00);
        for p in &PLLS {
            assert_ne!(rd(&mut c, p.a2w_ctrl) & A2W_PLL_CTRL_PRST_DISABLE, 0);
        }
        assert_ne!(rd(&mut c, CM_UARTCTL) & CM_BUSY, 0);
        assert_eq!(rd(&mut c, CM_PWMCTL) & CM_BUSY, 0);
    }

    #[test]
    fn writes_without_the_password_are_ignored() {
        let mut c = Cprman::new();
        let before = rd(&mut c, CM_UARTDIV);
        c.write(CM_UARTDIV as u64, 4, 0x1000);
        c.write(CM_UARTDIV as u64, 4, 0x5b00_1000);
        assert_eq!(rd(&mut c, CM_UARTDIV), before);
        wr(&mut c, CM_UARTDIV, 0x1000);
        assert_eq!(rd(&mut c, CM_UARTDIV), 0x1000, "password bits read as 0");
    }

    /// Linux's bcm2835_clock_choose_div (round down, non-MASH or MASH clamps).
    fn choose_div(c: &ClockInfo, rate: u64, parent: u64, mash: bool) -> u32 {
        let unused = ((1u32 << (CM_DIV_FRAC_BITS - c.frac_bits + 1)) - 1) >> 1;
        let mut div = ((parent << CM_DIV_FRAC_BITS) / rate) as u32;
        div &= !unused;
        let (min, max) = if mash {
            (2 << 12, ((1 << c.int_bits) - 1) << 12)
        } else {
            let hi = c.int_bits + CM_DIV_FRAC_BITS - 1;
            let lo = CM_DIV_FRAC_BITS - c.frac_bits;
            (1 << 12, ((1u32 << (hi + 1)) - 1) & !((1 << lo) - 1))
        };
        div.clamp(min, max)
    }

    #[test]
    fn linux_pwm_assigned_rate_sequence() {
        // The DT assigns 10 MHz to the PWM clock: Linux picks plld_per (index 6), switches
        // the mux while the clock is off, programs DIV, then enables.
        let mut c = Cprman::new();
        let pwm = CLOCKS.iter().find(|k| k.name == "pwm").unwrap();
        let parent = c.rate("plld_per").unwrap();
        let div = choose_div(pwm, 10_000_000, parent, true);
        wr(&mut c, CM_PWMCTL, 6); // set_parent
        let ctl = rd(&mut c, CM_PWMCTL) & !CM_FRAC;
        wr(
            &mut c,
            CM_PWMCTL,
            ctl | if div & 0xfff != 0 { CM_FRAC } else { 0 },
        );
        wr(&mut c, CM_PWMDIV, div);
        let ctl = rd(&mut c, CM_PWMCTL);
        wr(&mut c, CM_PWMCTL, ctl | CM_ENABLE | CM_GATE); // clock_on
        assert_ne!(rd(&mut c, CM_PWMCTL) & CM_BUSY, 0);
        assert_eq!(c.rate("pwm"), Some(10_000_000));
        // clock_off: BUSY drops so the driver's wait completes.
        let ctl = rd(&mut c, CM_PWMCTL);
        wr(&mut c, CM_PWMCTL, ctl & !CM_ENABLE);
        assert_eq!(rd(&mut c, CM_PWMCTL) & CM_BUSY, 0);
    }

    #[test]
    fn linux_pll_off_on_and_set_rate_sequence() {
        let mut c = Cprman::new();
        let p = &PLLS[3]; // PLLD
                          // bcm2835_pll_off
        wr(&mut c, p.cm, CM_PLL_ANARST);
        let a = rd(&mut c, p.a2w_ctrl);
        wr(&mut c, p.a2w_ctrl, a | A2W_PLL_CTRL_PWRDN);
        assert_eq!(rd(&mut c, CM_LOCK) & p.lock, 0);
        // bcm2835_pll_set_rate(2 GHz): above 1.75 GHz, pre-divider on, rate / 2.
        let rate: u64 = 2_000_000_000 / 2;
        let div = (rate << A2W_PLL_FRAC_BITS) / OSC_HZ;
        let (ndiv, fdiv) = ((div >> 20) as u32, (div & 0xf_ffff) as u32);
        let mut ana = [0u32; 4];
        for (i, a) in ana.iter_mut().enumerate() {
            *a = rd(&mut c, p.ana0 + i as u32 * 4);
        }
        for i in (0..4).rev() {
            wr(&mut c, p.ana0 + i as u32 * 4, ana[i]);
        }
        wr(&mut c, p.frac, fdiv);
        let a = rd(&mut c, p.a2w_ctrl) & !0x3ff & !0x7000;
        wr(&mut c, p.a2w_ctrl, a | ndiv | (1 << 12));
        // bcm2835_pll_on
        let a = rd(&mut c, p.a2w_ctrl);
        wr(&mut c, p.a2w_ctrl, a & !A2W_PLL_CTRL_PWRDN);
        let m = rd(&mut c, p.cm);
        wr(&mut c, p.cm, m & !CM_PLL_ANARST);
        assert_ne!(rd(&mut c, CM_LOCK) & p.lock, 0, "locks at once");
        let a = rd(&mut c, p.a2w_ctrl);
        wr(&mut c, p.a2w_ctrl, a | A2W_PLL_CTRL_PRST_DISABLE);
        // 1 GHz multiplier doubled by the pre-divider, truncated as Linux truncates.
        assert_eq!(c.rate("plld"), Some(1_999_999_987));
        // bcm2835_pll_divider_set_rate(plld_per, 500 MHz): DIV_ROUND_UP(parent, rate) = 4.
        let ch = PLL_CHANNELS.iter().find(|c| c.0 == "plld_per").unwrap();
        wr(&mut c, ch.2, 4);
        let m = rd(&mut c, p.cm);
        wr(&mut c, p.cm, m | (1 << 6));
        wr(&mut c, p.cm, m & !(1 << 6));
        assert_eq!(c.rate("plld_per"), Some(499_999_997));
    }

    #[test]
    fn tcnt_measures_the_selected_clock() {
        let mut c = Cprman::new();
        // bcm2835_measure_tcnt_mux(uart = 28): src 28 & 0xf, src1 28 >> 4.
        wr(&mut c, CM_TCNTCTL, CM_KILL);
        wr(&mut c, CM_TCNTCTL, (28 & 0xf) | ((28 >> 4) << 12));
        wr(&mut c, CM_OSCCOUNT, 19200);
        assert_eq!(rd(&mut c, CM_OSCCOUNT), 0);
        assert_eq!(rd(&mut c, CM_TCNTCTL) & CM_BUSY, 0);
        assert_eq!(rd(&mut c, CM_TCNTCNT) as u64 * 1000, 48_000_000);
    }

    #[test]
    fn bad_accesses_are_harmless() {
        let mut c = Cprman::new();
        assert_eq!(c.read(0x2000, 4), 0);
        assert_eq!(c.read(0x3, 4), 0);
        assert_eq!(c.read(0x8, 2), 0);
        c.write(0x2000, 4, 0x5a00_0000);
        c.write(u64::MAX - 3, 4, 0x5a00_0000);
        wr(&mut c, CM_LOCK, 0);
        assert_eq!(rd(&mut c, CM_LOCK) & 0x1f00, 0x1f00);
        // A zero divider and a zero pre-divider give 0 Hz, not a division by zero.
        wr(&mut c, CM_UARTDIV, 0);
        assert_eq!(c.rate("uart"), Some(0));
        wr(&mut c, PLLS[3].a2w_ctrl, 0);
        assert_eq!(c.rate("plld"), Some(0));
        assert_eq!(c.rate("emmc"), Some(0));
    }
}
