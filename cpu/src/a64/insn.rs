//! Typed access to the fields of an A64 instruction word, named as in the Arm ARM.

/// One A64 instruction word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn(pub u32);

impl Insn {
    /// Bits `hi..=lo`.
    #[inline]
    pub fn bits(self, hi: u32, lo: u32) -> u32 {
        (self.0 >> lo) & (u32::MAX >> (31 - (hi - lo)))
    }
    #[inline]
    pub fn bit(self, n: u32) -> bool {
        (self.0 >> n) & 1 == 1
    }
    /// Rd / Rt, bits 4:0.
    #[inline]
    pub fn rd(self) -> u8 {
        self.bits(4, 0) as u8
    }
    #[inline]
    pub fn rt(self) -> u8 {
        self.rd()
    }
    /// Rn, bits 9:5.
    #[inline]
    pub fn rn(self) -> u8 {
        self.bits(9, 5) as u8
    }
    /// Rt2 / Ra, bits 14:10.
    #[inline]
    pub fn rt2(self) -> u8 {
        self.bits(14, 10) as u8
    }
    #[inline]
    pub fn ra(self) -> u8 {
        self.rt2()
    }
    /// Rm / Rs, bits 20:16.
    #[inline]
    pub fn rm(self) -> u8 {
        self.bits(20, 16) as u8
    }
    #[inline]
    pub fn rs(self) -> u8 {
        self.rm()
    }
    /// sf, bit 31.
    #[inline]
    pub fn sf(self) -> bool {
        self.bit(31)
    }
    /// Operand width selected by sf (bit 31): 64-bit when set.
    #[inline]
    pub fn width(self) -> crate::ir::Width {
        if self.sf() {
            crate::ir::Width::W64
        } else {
            crate::ir::Width::W32
        }
    }
    /// cond, bits 15:12 (conditional select/compare).
    #[inline]
    pub fn cond(self) -> u8 {
        self.bits(15, 12) as u8
    }
    /// Sign-extend the field `hi..=lo`.
    #[inline]
    pub fn simm(self, hi: u32, lo: u32) -> i64 {
        let n = hi - lo + 1;
        let v = self.bits(hi, lo) as i64;
        (v << (64 - n)) >> (64 - n)
    }
}
