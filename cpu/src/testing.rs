//! Test support shared by the per-class instruction tests and the differential harness: a flat
//! little memory and a runner for a short code sequence.

use crate::engine::{Cpu, EngineKind, Stop};
use crate::mem::{Access, FastMem, FaultKind, Mem, MemFault};
use crate::model;
use crate::state::CpuState;

/// Flat memory at `[base, base+len)`, readable, writable and executable.
pub struct FlatMem {
    pub base: u64,
    pub data: Vec<u8>,
    /// One permission byte per page from address 0 up to the end (for the JIT's fast path).
    perms: Vec<u8>,
}

impl FlatMem {
    pub fn new(base: u64, len: usize) -> Self {
        let end = base + len as u64;
        let perms = (0..end.div_ceil(4096))
            .map(|p| {
                if p * 4096 >= base {
                    FastMem::READ | FastMem::WRITE
                } else {
                    0
                }
            })
            .collect();
        Self {
            base,
            data: vec![0; len],
            perms,
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
    fn fast_path(&self) -> Option<FastMem> {
        // Page-granular: only when the memory starts and ends on page boundaries.
        if !self.base.is_multiple_of(4096) || !self.data.len().is_multiple_of(4096) {
            return None;
        }
        Some(FastMem {
            base: (self.data.as_ptr() as usize).wrapping_sub(self.base as usize),
            perms: self.perms.as_ptr() as usize,
            limit: self.base + self.data.len() as u64,
            host_checks: false,
        })
    }

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

/// The case file a reference script (Python, Unicorn) writes as `script OUT COUNT`,
/// regenerated when missing or older than the script. `None` if the generator cannot run here
/// (no python3, or the script exits 77 because unicorn is missing); the callers fail then.
pub fn generated_cases(
    script: &std::path::Path,
    out: &std::path::Path,
    count: u32,
) -> Option<std::path::PathBuf> {
    let mtime = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(o), Some(s)) = (mtime(out), mtime(script)) {
        if o >= s {
            return Some(out.to_path_buf());
        }
    }
    let tmp = out.with_extension("tmp");
    let status = std::process::Command::new("python3")
        .arg(script)
        .arg(&tmp)
        .arg(count.to_string())
        .status();
    match status {
        Ok(s) if s.success() => {
            std::fs::rename(&tmp, out).expect("rename case file");
            Some(out.to_path_buf())
        }
        Ok(s) if s.code() == Some(77) => None,
        Ok(s) => panic!("{} failed: {s}", script.display()),
        Err(_) => None,
    }
}

/// Where [`run`] places code.
pub const CODE: u64 = 0x10_0000;
/// Start of the data area of [`run`]'s memory (64 KiB after the code).
pub const DATA: u64 = 0x11_0000;

/// Run `words` at [`CODE`] from `state` on one engine until the BRK that [`run`] appends (or
/// any other stop). Memory covers `CODE..CODE+128KiB`; `mem_init` may fill it first.
pub fn run_on(
    engine: EngineKind,
    words: &[u32],
    state: CpuState,
    mem_init: impl FnOnce(&mut FlatMem),
) -> (CpuState, FlatMem, Stop) {
    let mut mem = FlatMem::new(CODE, 128 << 10);
    let mut code = words.to_vec();
    code.push(0xd420_0000); // BRK #0
    mem.load_words(CODE, &code);
    mem_init(&mut mem);
    let mut cpu = Cpu::with_engine(model::CORTEX_A72, engine);
    cpu.state = state;
    cpu.state.pc = CODE;
    let stop = cpu.run(&mut mem);
    (cpu.state.clone(), mem, stop)
}

/// Everything a test can observe of a run, for comparing engines.
fn observable(r: &(CpuState, FlatMem, Stop)) -> impl PartialEq + std::fmt::Debug + '_ {
    let (st, mem, stop) = r;
    (
        st.x,
        st.v,
        st.pc,
        st.nzcv,
        st.fpcr,
        st.fpsr,
        st.tpidr_el0,
        st.monitor,
        *stop,
        &mem.data,
    )
}

/// Run `words` under the interpreter and under the JIT (every block compiled), check both
/// end in the same state, memory and stop, and return the interpreter's result. Every
/// instruction test that uses this therefore tests both tiers.
pub fn run_with(
    words: &[u32],
    state: CpuState,
    mem_init: impl Fn(&mut FlatMem),
) -> (CpuState, FlatMem, Stop) {
    let interp = run_on(EngineKind::Interp, words, state.clone(), &mem_init);
    let jit = run_on(EngineKind::Jit, words, state, &mem_init);
    if observable(&interp) != observable(&jit) {
        let (si, sj) = (&interp.0, &jit.0);
        let mut diff = String::new();
        for r in 0..32 {
            if si.x[r] != sj.x[r] {
                diff += &format!("x{r}: interp {:#x} jit {:#x}\n", si.x[r], sj.x[r]);
            }
            if si.v[r] != sj.v[r] {
                diff += &format!("v{r}: interp {:#x} jit {:#x}\n", si.v[r], sj.v[r]);
            }
        }
        panic!(
            "interpreter and JIT disagree on {words:08x?}:\n{diff}interp: pc {:#x} nzcv {:#x} fpsr {:#x} {:?}\njit:    pc {:#x} nzcv {:#x} fpsr {:#x} {:?}\nmemory equal: {}",
            si.pc, si.nzcv, si.fpsr, interp.2, sj.pc, sj.nzcv, sj.fpsr, jit.2, interp.1.data == jit.1.data
        );
    }
    interp
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
    fn loops_chain_through_compiled_blocks() {
        // mov x0,#50000; loop: add x1,x1,x0; subs x0,x0,#1; b.ne loop; (then a second block)
        // mov x2,#7
        let words = [
            0xd298_6a00,
            0x8b00_0021,
            0xf100_0400,
            0x54ff_ffc1,
            0xd280_00e2,
        ];
        let st = run(&words, &[]);
        assert_eq!(st.x[1], 50000 * 50001 / 2);
        assert_eq!(st.x[2], 7);
        // The JIT ran the loop without returning to the dispatcher each iteration, and still
        // counted every instruction.
        let mut mem = FlatMem::new(CODE, 64 << 10);
        let mut code = words.to_vec();
        code.push(0xd420_0000);
        mem.load_words(CODE, &code);
        let mut cpu = Cpu::with_engine(model::CORTEX_A72, EngineKind::Jit);
        cpu.state.pc = CODE;
        assert_eq!(cpu.run(&mut mem), Stop::Brk(0));
        assert_eq!(cpu.state.retired, 1 + 3 * 50000 + 1 + 1);
        assert_eq!(cpu.retired_jit, cpu.state.retired);
    }

    #[test]
    fn a_replaced_interrupt_flag_stops_chained_code() {
        // `b .`: compiled, it chains to itself until the interrupt flag is set. The machine
        // gives each vCPU a flag shared with its devices; compiled code must test that one,
        // not the flag the CPU was created with.
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let mut mem = FlatMem::new(CODE, 64 << 10);
        mem.load_words(CODE, &[0x1400_0000]);
        let mut cpu = Cpu::with_engine(model::CORTEX_A72, EngineKind::Jit);
        let first = cpu.interrupt().clone();
        let shared = Arc::new(AtomicBool::new(false));
        cpu.set_interrupt(shared.clone());
        cpu.state.pc = CODE;
        let old_flag_used = Arc::new(AtomicBool::new(false));
        let kicker = {
            let used = old_flag_used.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                shared.store(true, Ordering::SeqCst);
                // Only if the code ignored the shared flag: end the loop anyway, and say so.
                std::thread::sleep(std::time::Duration::from_secs(5));
                used.store(true, Ordering::SeqCst);
                first.store(true, Ordering::SeqCst);
            })
        };
        assert_eq!(cpu.run(&mut mem), Stop::Interrupted);
        assert!(
            !old_flag_used.load(Ordering::SeqCst),
            "code tested the old flag"
        );
        assert!(cpu.retired_jit > 1000, "the loop ran compiled");
        drop(kicker);
    }

    #[test]
    fn instruction_cache_maintenance_reaches_the_other_vcpus() {
        // vCPU b runs `movz x0, #1; brk` at CODE; the code becomes `movz x0, #2; brk` and
        // vCPU a runs `ic ivau, x1`: b is kicked and runs the new code (as IC IVAU is
        // broadcast in the inner-shareable domain; Linux relies on it when it patches
        // kernel text on one CPU).
        use crate::icache::IcBroadcast;
        use std::sync::atomic::Ordering;
        use std::sync::Arc;
        const MOVZ_X0_1: u32 = 0xd280_0020;
        const MOVZ_X0_2: u32 = 0xd280_0040;
        const IC_IVAU_X1: u32 = 0xd50b_7521;
        const BRK: u32 = 0xd420_0000;
        for engine in [EngineKind::Interp, EngineKind::Jit] {
            let ic = Arc::new(IcBroadcast::new());
            let mut mem = FlatMem::new(CODE, 64 << 10);
            mem.load_words(CODE, &[MOVZ_X0_1, BRK]);
            mem.load_words(CODE + 0x100, &[IC_IVAU_X1, BRK]);
            let mut a = Cpu::with_engine(model::CORTEX_A72, engine);
            let mut b = Cpu::with_engine(model::CORTEX_A72, engine);
            a.set_ic_broadcast(ic.clone(), 0);
            b.set_ic_broadcast(ic.clone(), 1);
            let mut run_b = |b: &mut Cpu, mem: &mut FlatMem| {
                b.state.pc = CODE;
                assert_eq!(b.run(mem), Stop::Brk(0));
                b.state.x[0]
            };
            assert_eq!(run_b(&mut b, &mut mem), 1);
            mem.load_words(CODE, &[MOVZ_X0_2, BRK]);
            assert_eq!(
                run_b(&mut b, &mut mem),
                1,
                "{engine:?}: b keeps its translation"
            );
            a.state.x[1] = CODE;
            a.state.pc = CODE + 0x100;
            assert_eq!(a.run(&mut mem), Stop::Brk(0));
            assert!(b.interrupt().swap(false, Ordering::SeqCst), "b was kicked");
            assert_eq!(
                run_b(&mut b, &mut mem),
                2,
                "{engine:?}: b dropped its translation"
            );
        }
    }

    /// Run the 50000-iteration loop of `loops_chain_through_compiled_blocks` under `engine`
    /// with an instruction budget of `budget`: (stop, retired, pc, x0, x1).
    fn budgeted_loop(engine: EngineKind, budget: u64) -> (Stop, u64, u64, u64, u64) {
        let words = [
            0xd298_6a00,
            0x8b00_0021,
            0xf100_0400,
            0x54ff_ffc1,
            0xd280_00e2,
            0xd420_0000,
        ];
        let mut mem = FlatMem::new(CODE, 64 << 10);
        mem.load_words(CODE, &words);
        let mut cpu = Cpu::with_engine(model::CORTEX_A72, engine);
        cpu.hot_threshold = 10;
        cpu.set_budgeted(true);
        cpu.state.pc = CODE;
        cpu.stop_at = budget;
        let stop = cpu.run(&mut mem);
        let st = &cpu.state;
        (stop, st.retired, st.pc, st.x[0], st.x[1])
    }

    #[test]
    fn a_budget_stops_every_engine_at_the_same_block_boundary() {
        // Blocks: [mov, add, subs, b.ne] (4), then the loop body [add, subs, b.ne] (3): the
        // first boundary at or past 1001 instructions is 4 + 3 * 333 = 1003.
        let want = (Stop::Budget, 1003, CODE + 4, 50000 - 334, {
            let n = 334u64;
            n * 50000 - n * (n - 1) / 2
        });
        for engine in [EngineKind::Interp, EngineKind::Jit, EngineKind::Tiered] {
            assert_eq!(budgeted_loop(engine, 1001), want, "{engine:?}");
        }
        // A budget already spent stops before anything runs.
        for engine in [EngineKind::Interp, EngineKind::Jit] {
            assert_eq!(
                budgeted_loop(engine, 0),
                (Stop::Budget, 0, CODE, 0, 0),
                "{engine:?}"
            );
        }
    }

    #[test]
    fn a_run_resumes_after_a_budget_stop_and_finishes_the_same() {
        for engine in [EngineKind::Interp, EngineKind::Jit, EngineKind::Tiered] {
            let mut mem = FlatMem::new(CODE, 64 << 10);
            mem.load_words(
                CODE,
                &[
                    0xd298_6a00,
                    0x8b00_0021,
                    0xf100_0400,
                    0x54ff_ffc1,
                    0xd280_00e2,
                    0xd420_0000,
                ],
            );
            let mut cpu = Cpu::with_engine(model::CORTEX_A72, engine);
            cpu.hot_threshold = 10;
            cpu.set_budgeted(true);
            cpu.state.pc = CODE;
            let mut stops = 0;
            loop {
                cpu.stop_at = cpu.state.retired + 7919;
                match cpu.run(&mut mem) {
                    Stop::Budget => stops += 1,
                    s => {
                        assert_eq!(s, Stop::Brk(0), "{engine:?}");
                        break;
                    }
                }
            }
            assert_eq!(cpu.state.x[1], 50000 * 50001 / 2, "{engine:?}");
            assert_eq!(cpu.state.retired, 1 + 3 * 50000 + 1 + 1, "{engine:?}");
            // About 150000 / 7919 stops (each may overshoot by up to a block).
            assert!((18..=19).contains(&stops), "{engine:?}: {stops}");
        }
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
