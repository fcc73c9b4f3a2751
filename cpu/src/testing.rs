//! Test support shared by the per-class instruction tests and the differential harness: a flat
//! little memory and a runner for a short code sequence.

use crate::engine::{Cpu, Stop};
use crate::mem::{Access, FaultKind, Mem, MemFault};
use crate::model;
use crate::state::CpuState;

/// Flat memory at `[base, base+len)`, readable, writable and executable.
pub struct FlatMem {
    pub base: u64,
    pub data: Vec<u8>,
}

impl FlatMem {
    pub fn new(base: u64, len: usize) -> Self {
        Self {
            base,
            data: vec![0; len],
        }
    }

    fn off(&self, addr: u64, size: u64, access: Access) -> Result<usize, MemFault> {
        let end = addr.checked_add(size);
        if addr < self.base || end.is_none_or(|e| e > self.base + self.data.len() as u64) {
            return Err(MemFault::new(addr, access, FaultKind::Unmapped));
        }
        Ok((addr - self.base) as usize)
    }

    pub fn load_words(&mut self, addr: u64, words: &[u32]) {
        for (k, w) in words.iter().enumerate() {
            let o = (addr - self.base) as usize + 4 * k;
            self.data[o..o + 4].copy_from_slice(&w.to_le_bytes());
        }
    }
}

impl Mem for FlatMem {
    fn read(&mut self, addr: u64, size: u8) -> Result<u64, MemFault> {
        let o = self.off(addr, size as u64, Access::Read)?;
        let mut b = [0u8; 8];
        b[..size as usize].copy_from_slice(&self.data[o..o + size as usize]);
        Ok(u64::from_le_bytes(b))
    }
    fn write(&mut self, addr: u64, size: u8, value: u64) -> Result<(), MemFault> {
        let o = self.off(addr, size as u64, Access::Write)?;
        self.data[o..o + size as usize].copy_from_slice(&value.to_le_bytes()[..size as usize]);
        Ok(())
    }
    fn fetch(&mut self, addr: u64) -> Result<u32, MemFault> {
        let o = self.off(addr, 4, Access::Exec)?;
        Ok(u32::from_le_bytes(
            self.data[o..o + 4].try_into().expect("4 bytes"),
        ))
    }
    fn cmpxchg(&mut self, addr: u64, size: u8, old: u64, new: u64) -> Result<bool, MemFault> {
        let cur = self.read(addr, size)?;
        if cur == old {
            self.write(addr, size, new)?;
            Ok(true)
        } else {
            Ok(false)
        }
    }
    fn cmpxchg128(&mut self, addr: u64, old: u128, new: u128) -> Result<bool, MemFault> {
        let cur = self.read128(addr)?;
        if cur == old {
            self.write128(addr, new)?;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

/// Where [`run`] places code.
pub const CODE: u64 = 0x10_0000;
/// Start of the data area of [`run`]'s memory (64 KiB after the code).
pub const DATA: u64 = 0x11_0000;

/// Run `words` at [`CODE`] from `state` until the BRK that [`run`] appends (or any other
/// stop). Memory covers `CODE..CODE+128KiB`; `mem_init` may fill it first.
pub fn run_with(
    words: &[u32],
    state: CpuState,
    mem_init: impl FnOnce(&mut FlatMem),
) -> (CpuState, FlatMem, Stop) {
    let mut mem = FlatMem::new(CODE, 128 << 10);
    let mut code = words.to_vec();
    code.push(0xd420_0000); // BRK #0
    mem.load_words(CODE, &code);
    mem_init(&mut mem);
    let mut cpu = Cpu::new(model::CORTEX_A72);
    cpu.state = state;
    cpu.state.pc = CODE;
    let stop = cpu.run(&mut mem);
    (cpu.state, mem, stop)
}

/// Run `words` with registers `x` set (others zero); returns the final state.
pub fn run(words: &[u32], x: &[(usize, u64)]) -> CpuState {
    let mut st = CpuState::new();
    for &(r, v) in x {
        st.x[r] = v;
    }
    let (st, _, stop) = run_with(words, st, |_| {});
    assert_eq!(
        stop,
        Stop::Brk(0),
        "code did not run to its end: {stop:?} at {:#x}",
        st.pc
    );
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn movz_movk_add_branch() {
        // movz x0, #0x1234, lsl #16; movk x0, #0x5678; add x1, x0, #1; b +8; add x1,x1,#1(skipped)
        let st = run(
            &[
                0xd2a2_4680,
                0xf28a_cf00,
                0x9100_0401,
                0x1400_0002,
                0x9100_0421,
            ],
            &[],
        );
        assert_eq!(st.x[0], 0x1234_5678);
        assert_eq!(st.x[1], 0x1234_5679);
    }

    #[test]
    fn subs_sets_flags_and_bcond() {
        // subs w0, w1, #1; b.eq +8; mov x2,#1 ; (target) brk
        let st = run(&[0x7100_0420, 0x5400_0040, 0xd280_0022], &[(1, 1)]);
        assert_eq!(st.x[0], 0);
        assert_eq!(st.nzcv >> 28, 0b0110);
        assert_eq!(st.x[2], 0);
    }
}
