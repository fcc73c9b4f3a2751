//! Stage-1 translation of the EL1&0 regime (VMSAv8-64): the registers that select a table,
//! the walk over table/block/page descriptors, and the permissions a final descriptor grants.
//!
//! Not modelled: 52-bit addresses (LPA/LVA), hierarchical permission disable, PAN, hardware
//! access-flag and dirty-state updates (we advertise none), the contiguous hint (a TLB may
//! ignore it). Address size faults are reported as translation faults at the same level
//! ([`FaultKind`] has no kind of its own for them).

use crate::mem::{Access, FaultKind, MemFault};
use crate::sys::{sctlr, SysRegs};
use armboard_bus::AddressSpace;

/// TCR_EL1 fields.
pub mod tcr {
    pub const T0SZ_SHIFT: u32 = 0;
    pub const EPD0: u64 = 1 << 7;
    pub const TG0_SHIFT: u32 = 14;
    pub const T1SZ_SHIFT: u32 = 16;
    pub const A1: u64 = 1 << 22;
    pub const EPD1: u64 = 1 << 23;
    pub const TG1_SHIFT: u32 = 30;
    pub const IPS_SHIFT: u32 = 32;
    /// ASID size: 16 bits when set, else 8.
    pub const AS: u64 = 1 << 36;
    pub const TBI0: u64 = 1 << 37;
    pub const TBI1: u64 = 1 << 38;
}

/// Translation table descriptor bits.
pub mod desc {
    pub const VALID: u64 = 1 << 0;
    /// At levels 0-2: a table (set) or a block (clear); at level 3 it must be set (page).
    pub const TABLE: u64 = 1 << 1;
    /// AP[1]: EL0 may access.
    pub const AP_EL0: u64 = 1 << 6;
    /// AP[2]: read-only.
    pub const AP_RO: u64 = 1 << 7;
    pub const AF: u64 = 1 << 10;
    pub const NG: u64 = 1 << 11;
    pub const PXN: u64 = 1 << 53;
    pub const UXN: u64 = 1 << 54;
    pub const PXN_TABLE: u64 = 1 << 59;
    pub const UXN_TABLE: u64 = 1 << 60;
    /// APTable[0]: no EL0 access below this table.
    pub const AP_TABLE_NO_EL0: u64 = 1 << 61;
    /// APTable[1]: no writes below this table.
    pub const AP_TABLE_RO: u64 = 1 << 62;
}

/// A translation granule: page size `1 << shift`, `shift - 3` address bits per level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granule {
    K4,
    K16,
    K64,
}

impl Granule {
    /// TCR_EL1.TG0 encoding (reserved values behave as 4K).
    fn from_tg0(tg: u64) -> Self {
        match tg & 3 {
            1 => Granule::K64,
            2 => Granule::K16,
            _ => Granule::K4,
        }
    }

    /// TCR_EL1.TG1 encoding, which differs from TG0's (reserved values behave as 4K).
    fn from_tg1(tg: u64) -> Self {
        match tg & 3 {
            1 => Granule::K16,
            3 => Granule::K64,
            _ => Granule::K4,
        }
    }

    pub fn shift(self) -> u32 {
        match self {
            Granule::K4 => 12,
            Granule::K16 => 14,
            Granule::K64 => 16,
        }
    }

    /// Whether a block descriptor is allowed at `level` (without 52-bit addressing).
    fn block_ok(self, level: u32) -> bool {
        match self {
            Granule::K4 => level == 1 || level == 2,
            Granule::K16 | Granule::K64 => level == 2,
        }
    }
}

/// Output address bits of a descriptor: [47:0] (ARMv8.0 has at most 48-bit PAs); a
/// descriptor's own address field is this masked below the granule or block size. Bits 51:48
/// are not address: Linux keeps its DBM/"writable" bit at 51 in every writable page.
const OA_BITS: u64 = (1 << 48) - 1;
/// TTBRn_EL1.BADDR: bits 47:1 (bit 0 is CnP, 63:48 the ASID).
const BADDR_BITS: u64 = ((1 << 48) - 1) & !1;
/// Bits 55:0 of a VA: what a TLBI operand and a TLB tag compare.
pub const VA_BITS: u64 = (1 << 56) - 1;

/// The registers that decide how an EL1&0 address translates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Regime {
    pub mmu: bool,
    pub wxn: bool,
    pub tcr: u64,
    pub ttbr0: u64,
    pub ttbr1: u64,
    pub el: u8,
    /// Physical address size in bits (TCR.IPS limited by the model's PARange).
    pub pa_bits: u32,
}

/// PA size in bits of an ID_AA64MMFR0.PARange / TCR.IPS encoding.
fn pa_size(enc: u64) -> u32 {
    match enc & 7 {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        _ => 48,
    }
}

impl Regime {
    pub fn from_sys(sys: &SysRegs) -> Self {
        let ips = pa_size(sys.tcr_el1 >> tcr::IPS_SHIFT);
        let parange = pa_size(sys.model.id_aa64mmfr0);
        Self {
            mmu: sys.sctlr_el1 & sctlr::M != 0,
            wxn: sys.sctlr_el1 & sctlr::WXN != 0,
            tcr: sys.tcr_el1,
            ttbr0: sys.ttbr0_el1,
            ttbr1: sys.ttbr1_el1,
            el: sys.el,
            pa_bits: ips.min(parange),
        }
    }

    /// The current ASID (TCR.A1 picks TTBR1's; TCR.AS says whether it has 8 or 16 bits).
    pub fn asid(&self) -> u16 {
        let ttbr = if self.tcr & tcr::A1 != 0 {
            self.ttbr1
        } else {
            self.ttbr0
        };
        ((ttbr >> 48) as u16) & self.asid_mask()
    }

    pub fn asid_mask(&self) -> u16 {
        if self.tcr & tcr::AS != 0 {
            0xffff
        } else {
            0xff
        }
    }

    /// `va` with its top byte replaced by copies of bit 55 where top-byte-ignore applies, so
    /// tagged and untagged pointers share TLB entries. Addresses TBI does not cover come back
    /// unchanged (and fail the range check if their top byte is not a sign extension).
    #[inline]
    pub fn untag(&self, va: u64) -> u64 {
        if !self.mmu {
            return va;
        }
        if va & (1 << 55) != 0 {
            if self.tcr & tcr::TBI1 != 0 {
                return va | !VA_BITS;
            }
        } else if self.tcr & tcr::TBI0 != 0 {
            return va & VA_BITS;
        }
        va
    }
}

/// What the final descriptor lets the translating EL do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Perms {
    pub const ALL: Perms = Perms {
        read: true,
        write: true,
        exec: true,
    };

    pub fn allows(self, access: Access) -> bool {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
            Access::Exec => self.exec,
        }
    }
}

/// A successful walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// Physical address of the translated byte.
    pub pa: u64,
    /// log2 of the size of the page or block that mapped it.
    pub shift: u32,
    /// Level of the final descriptor (where a permission fault is reported).
    pub level: u8,
    /// Not ASID-tagged (nG clear, or the MMU is off).
    pub global: bool,
    pub perms: Perms,
}

/// Walk the translation tables for `va` (tag bits included; the fault reports it as given) as
/// seen from exception level `el`. `access` only labels a fault; permissions are returned,
/// not checked.
pub fn walk(
    space: &AddressSpace,
    r: &Regime,
    va: u64,
    el: u8,
    access: Access,
) -> Result<Walk, MemFault> {
    let fault = |kind, level| MemFault::at_level(va, access, kind, level);
    if !r.mmu {
        return Ok(Walk {
            pa: va,
            shift: 12,
            level: 0,
            global: true,
            perms: Perms::ALL,
        });
    }
    let upper = va & (1 << 55) != 0;
    let (tsz, granule, epd, tbi, ttbr) = if upper {
        (
            (r.tcr >> tcr::T1SZ_SHIFT) & 0x3f,
            Granule::from_tg1(r.tcr >> tcr::TG1_SHIFT),
            r.tcr & tcr::EPD1 != 0,
            r.tcr & tcr::TBI1 != 0,
            r.ttbr1,
        )
    } else {
        (
            (r.tcr >> tcr::T0SZ_SHIFT) & 0x3f,
            Granule::from_tg0(r.tcr >> tcr::TG0_SHIFT),
            r.tcr & tcr::EPD0 != 0,
            r.tcr & tcr::TBI0 != 0,
            r.ttbr0,
        )
    };
    // Out-of-range sizes behave as the nearest supported one (an IMPLEMENTATION DEFINED
    // choice the architecture allows for ARMv8.0 without TTST/LVA).
    let inputsize = 64 - tsz.clamp(16, 39) as u32;
    // Bits [top:inputsize] must all equal bit 55 (the half's selector).
    let top = if tbi { 55 } else { 63 };
    let high = (va >> inputsize) & ((1u64 << (top + 1 - inputsize)) - 1);
    let expect = if upper {
        (1u64 << (top + 1 - inputsize)) - 1
    } else {
        0
    };
    if high != expect || epd {
        return Err(fault(FaultKind::Unmapped, 0));
    }

    let grain = granule.shift();
    let stride = grain - 3;
    let levels = (inputsize - grain).div_ceil(stride);
    let start = 4 - levels;
    // Index bits resolved by the first table (fewer than `stride` when the size is short).
    let first_bits = inputsize - grain - (levels - 1) * stride;
    let pa_limit = 1u64 << r.pa_bits;
    let mut table = ttbr & BADDR_BITS & !((8u64 << first_bits) - 1);
    if table >= pa_limit {
        return Err(fault(FaultKind::Unmapped, start as u8));
    }

    let mut no_el0 = false;
    let mut read_only = false;
    let mut pxn_table = false;
    let mut uxn_table = false;
    let mut level = start;
    loop {
        let lvl = level as u8;
        let shift = grain + (3 - level) * stride;
        let bits = if level == start { first_bits } else { stride };
        let index = (va >> shift) & ((1u64 << bits) - 1);
        let dpa = table + index * 8;
        let d = space
            .ram_at(dpa, 8)
            .and_then(|ram| ram.load(dpa, 8).ok())
            .ok_or(fault(FaultKind::Bus, lvl))?;
        if d & desc::VALID == 0 {
            return Err(fault(FaultKind::Unmapped, lvl));
        }
        if level < 3 && d & desc::TABLE != 0 {
            table = d & OA_BITS & !((1u64 << grain) - 1);
            if table >= pa_limit {
                return Err(fault(FaultKind::Unmapped, lvl));
            }
            no_el0 |= d & desc::AP_TABLE_NO_EL0 != 0;
            read_only |= d & desc::AP_TABLE_RO != 0;
            pxn_table |= d & desc::PXN_TABLE != 0;
            uxn_table |= d & desc::UXN_TABLE != 0;
            level += 1;
            continue;
        }
        if (level == 3 && d & desc::TABLE == 0) || (level < 3 && !granule.block_ok(level)) {
            // Reserved encodings: a level-3 "block", or a block where none is allowed.
            return Err(fault(FaultKind::Unmapped, lvl));
        }
        // (Bits 15:12 of a 64K descriptor, OA[51:48] with 52-bit PAs, fall below `shift`.)
        let out = d & OA_BITS & !((1u64 << shift) - 1);
        if out >= pa_limit {
            return Err(fault(FaultKind::Unmapped, lvl));
        }
        if d & desc::AF == 0 {
            return Err(fault(FaultKind::AccessFlag, lvl));
        }
        let user = d & desc::AP_EL0 != 0 && !no_el0;
        let ro = d & desc::AP_RO != 0 || read_only;
        let user_w = user && !ro;
        let perms = if el == 0 {
            Perms {
                read: user,
                write: user_w,
                exec: !(d & desc::UXN != 0 || uxn_table || (r.wxn && user_w)),
            }
        } else {
            Perms {
                read: true,
                write: !ro,
                // EL1 never executes what EL0 may write.
                exec: !(d & desc::PXN != 0 || pxn_table || user_w || (r.wxn && !ro)),
            }
        };
        return Ok(Walk {
            pa: out | (va & ((1u64 << shift) - 1)),
            shift,
            level: lvl,
            global: d & desc::NG == 0,
            perms,
        });
    }
}
