//! System-mode instruction tests, each run under the interpreter and the JIT, on a flat
//! memory that also answers `system()` (identity translation, a fixed counter, a log of TLB
//! maintenance and MMU syncs).

use super::sysreg::*;
use crate::engine::{Cpu, EngineKind, Stop};
use crate::mem::{Access, FastMem, FaultKind, Mem, MemFault};
use crate::model::{self, CORTEX_A72};
use crate::state::CpuState;
use crate::sys::exception::{self, set_el_sp};
use crate::sys::{SysRegs, SystemMem, Tlbi};
use crate::testing::{FlatMem, CODE};

const COUNTER: u64 = 1_000_000;
const MPIDR: u64 = 0x8000_0001;
/// Exception vectors (2 KiB aligned) and EL0 code inside the test memory.
const VBAR: u64 = CODE + 0x800;
const EL0_CODE: u64 = CODE + 0x400;
/// First address past the test memory: translation faults there.
const END: u64 = CODE + (128 << 10);

struct SysMem {
    flat: FlatMem,
    counter: u64,
    tlbis: Vec<Tlbi>,
    syncs: u32,
    /// Machine stops seen (timer writes) and exceptions delivered by the runner.
    system_stops: u32,
    delivered: Vec<exception::Exception>,
}

impl Mem for SysMem {
    fn read(&mut self, addr: u64, size: u8) -> Result<u64, MemFault> {
        self.flat.read(addr, size)
    }
    fn write(&mut self, addr: u64, size: u8, value: u64) -> Result<(), MemFault> {
        self.flat.write(addr, size, value)
    }
    fn fast_path(&self) -> Option<FastMem> {
        self.flat.fast_path()
    }
    fn fetch(&mut self, addr: u64) -> Result<u32, MemFault> {
        self.flat.fetch(addr)
    }
    fn cmpxchg(&mut self, addr: u64, size: u8, old: u64, new: u64) -> Result<bool, MemFault> {
        self.flat.cmpxchg(addr, size, old, new)
    }
    fn cmpxchg128(&mut self, addr: u64, old: u128, new: u128) -> Result<bool, MemFault> {
        self.flat.cmpxchg128(addr, old, new)
    }
    fn system(&mut self) -> Option<&mut dyn SystemMem> {
        Some(self)
    }
}

impl SystemMem for SysMem {
    fn sync(&mut self, _st: &CpuState) {
        self.syncs += 1;
    }
    fn tlbi(&mut self, _st: &CpuState, op: Tlbi) {
        self.tlbis.push(op);
    }
    fn translate(
        &mut self,
        _st: &CpuState,
        va: u64,
        access: Access,
        _el0: bool,
    ) -> Result<u64, MemFault> {
        if (CODE..END).contains(&va) {
            Ok(va)
        } else {
            Err(MemFault::at_level(va, access, FaultKind::Unmapped, 3))
        }
    }
    fn counter(&mut self, _retired: u64) -> u64 {
        self.counter
    }
    fn translate_exec(&mut self, va: u64) -> Result<u64, MemFault> {
        if (CODE..END).contains(&va) {
            Ok(va)
        } else {
            Err(MemFault::at_level(va, Access::Exec, FaultKind::Unmapped, 3))
        }
    }
}

/// An EL1h state of the test model with interrupts masked.
fn el1() -> CpuState {
    let mut st = CpuState::new();
    st.sys = SysRegs::reset_el1(CORTEX_A72, MPIDR);
    st.sys.vbar_el1 = VBAR;
    st
}

/// The same at EL0 (SP_EL0 in use).
fn el0() -> CpuState {
    let mut st = el1();
    set_el_sp(&mut st, 0, false);
    st.sys.daif = 0;
    st
}

/// Place `words` at `at` in `mem`.
type Placed<'a> = &'a [(u64, &'a [u32])];

/// Run `words` at CODE (plus `extra` code elsewhere) on one engine until BRK #0. Machine stops
/// are resumed; with `deliver`, stops that are exceptions are taken to EL1 and the run goes
/// on.
fn run_on(
    engine: EngineKind,
    words: &[u32],
    extra: Placed,
    state: CpuState,
    deliver: bool,
) -> (CpuState, SysMem, Stop) {
    let mut mem = sys_mem();
    let mut code = words.to_vec();
    code.push(0xd420_0000); // BRK #0
    mem.flat.load_words(CODE, &code);
    for (at, w) in extra {
        mem.flat.load_words(*at, w);
    }
    let mut cpu = Cpu::with_engine(model::CORTEX_A72, engine);
    cpu.state = state;
    cpu.state.pc = CODE;
    for _ in 0..100 {
        let stop = cpu.run(&mut mem);
        if stop == Stop::System {
            mem.system_stops += 1;
            continue;
        }
        if deliver && stop != Stop::Brk(0) {
            if let Some((ex, ret)) = exception::from_stop(&cpu.state, stop) {
                mem.delivered.push(ex);
                exception::enter(&mut cpu.state, &mut mem, ex, ret);
                continue;
            }
        }
        return (cpu.state.clone(), mem, stop);
    }
    panic!("no end after 100 stops");
}

fn sys_mem() -> SysMem {
    SysMem {
        flat: FlatMem::new(CODE, (END - CODE) as usize),
        counter: COUNTER,
        tlbis: Vec::new(),
        syncs: 0,
        system_stops: 0,
        delivered: Vec::new(),
    }
}

/// Run under both engines, check they agree (registers, system registers, memory, stop and
/// what reached the MMU) and return the interpreter's result.
fn run_both(
    words: &[u32],
    extra: Placed,
    state: CpuState,
    deliver: bool,
) -> (CpuState, SysMem, Stop) {
    let i = run_on(EngineKind::Interp, words, extra, state.clone(), deliver);
    let j = run_on(EngineKind::Jit, words, extra, state, deliver);
    let view = |r: &(CpuState, SysMem, Stop)| {
        let (st, m, stop) = r;
        format!(
            "x {:x?} pc {:#x} nzcv {:#x} tpidr {:#x} {:#x} {:?} stop {:?} tlbi {:?} syncs {} sys-stops {} delivered {:?} mem-eq-len {}",
            st.x, st.pc, st.nzcv, st.tpidr_el0, st.tpidrro_el0, st.sys, stop, m.tlbis, m.syncs,
            m.system_stops, m.delivered, m.flat.data.len()
        )
    };
    assert_eq!(view(&i), view(&j), "interpreter and JIT disagree");
    assert!(i.1.flat.data == j.1.flat.data, "memory differs");
    i
}

/// Run to the final BRK #0 and return the state and memory.
fn run(words: &[u32], state: CpuState) -> (CpuState, SysMem) {
    let (st, mem, stop) = run_both(words, &[], state, false);
    assert_eq!(stop, Stop::Brk(0), "stopped early at {:#x}", st.pc);
    (st, mem)
}

/// Run and expect an undefined-instruction stop at word `index` of `words`.
fn assert_undefined_at(words: &[u32], state: CpuState, index: usize) -> CpuState {
    let (st, _, stop) = run_both(words, &[], state, false);
    assert_eq!(stop, Stop::Undefined(words[index]), "{words:08x?}");
    assert_eq!(st.pc, CODE + 4 * index as u64);
    st
}

fn mrs(rt: u32, reg: u32) -> u32 {
    0xd530_0000 | (reg << 5) | rt
}

fn msr(reg: u32, rt: u32) -> u32 {
    0xd510_0000 | (reg << 5) | rt
}

/// MSR (immediate) to a PSTATE field.
fn msr_imm(op1: u32, op2: u32, imm: u32) -> u32 {
    0xd500_401f | (op1 << 16) | (imm << 8) | (op2 << 5)
}

fn daifset(imm: u32) -> u32 {
    msr_imm(3, 6, imm)
}
fn daifclr(imm: u32) -> u32 {
    msr_imm(3, 7, imm)
}
fn spsel(imm: u32) -> u32 {
    msr_imm(0, 5, imm)
}

/// SYS #op1, Cn, Cm, #op2, Xt.
fn sys(op1: u32, crn: u32, crm: u32, op2: u32, rt: u32) -> u32 {
    0xd508_0000 | (op1 << 16) | (crn << 12) | (crm << 8) | (op2 << 5) | rt
}

const ERET: u32 = 0xd69f_03e0;
const HVC0: u32 = 0xd400_0002;
const SMC0: u32 = 0xd400_0003;
const MOV_X0_SP: u32 = 0x9100_03e0;
const MOV_SP_X5: u32 = 0x9100_00bf;

const SCTLR: u32 = sysreg(3, 0, 1, 0, 0);
const CPACR: u32 = sysreg(3, 0, 1, 0, 2);
const TTBR0: u32 = sysreg(3, 0, 2, 0, 0);
const TTBR1: u32 = sysreg(3, 0, 2, 0, 1);
const TCR: u32 = sysreg(3, 0, 2, 0, 2);
const SPSR: u32 = sysreg(3, 0, 4, 0, 0);
const ELR: u32 = sysreg(3, 0, 4, 0, 1);
const SP_EL0: u32 = sysreg(3, 0, 4, 1, 0);
const SP_EL1: u32 = sysreg(3, 4, 4, 1, 0);
const SPSEL: u32 = sysreg(3, 0, 4, 2, 0);
const CURRENT_EL: u32 = sysreg(3, 0, 4, 2, 2);
const AFSR0: u32 = sysreg(3, 0, 5, 1, 0);
const AFSR1: u32 = sysreg(3, 0, 5, 1, 1);
const ESR: u32 = sysreg(3, 0, 5, 2, 0);
const FAR: u32 = sysreg(3, 0, 6, 0, 0);
const PAR: u32 = sysreg(3, 0, 7, 4, 0);
const MAIR: u32 = sysreg(3, 0, 10, 2, 0);
const AMAIR: u32 = sysreg(3, 0, 10, 3, 0);
const VBAR_EL1: u32 = sysreg(3, 0, 12, 0, 0);
const CONTEXTIDR: u32 = sysreg(3, 0, 13, 0, 1);
const TPIDR_EL1: u32 = sysreg(3, 0, 13, 0, 4);
const CNTKCTL: u32 = sysreg(3, 0, 14, 1, 0);
const CSSELR: u32 = sysreg(3, 2, 0, 0, 0);
const CCSIDR: u32 = sysreg(3, 1, 0, 0, 0);
const CLIDR: u32 = sysreg(3, 1, 0, 0, 1);
const MDSCR: u32 = sysreg(2, 0, 0, 2, 2);
const OSLAR: u32 = sysreg(2, 0, 1, 0, 4);
const DBGBCR0: u32 = sysreg(2, 0, 0, 0, 5);
const PMCR: u32 = sysreg(3, 3, 9, 12, 0);
const PMUSERENR: u32 = sysreg(3, 3, 9, 14, 0);
const PMCCFILTR: u32 = sysreg(3, 3, 14, 15, 7);
const CNTP_TVAL: u32 = sysreg(3, 3, 14, 2, 0);
const CNTP_CTL: u32 = sysreg(3, 3, 14, 2, 1);
const CNTP_CVAL: u32 = sysreg(3, 3, 14, 2, 2);
const CNTV_TVAL: u32 = sysreg(3, 3, 14, 3, 0);
const CNTV_CTL: u32 = sysreg(3, 3, 14, 3, 1);
const CNTV_CVAL: u32 = sysreg(3, 3, 14, 3, 2);

#[test]
fn encodings_match_the_assembler() {
    // Checked against aarch64-linux-gnu-as.
    assert_eq!(mrs(0, SCTLR), 0xd538_1000);
    assert_eq!(msr(SCTLR, 1), 0xd518_1001);
    assert_eq!(mrs(2, CURRENT_EL), 0xd538_4242);
    assert_eq!(daifset(0xf), 0xd503_4fdf);
    assert_eq!(daifclr(2), 0xd503_42ff);
    assert_eq!(spsel(0), 0xd500_40bf);
    assert_eq!(msr(CNTV_CVAL, 4), 0xd51b_e344);
    assert_eq!(mrs(3, CNTV_TVAL), 0xd53b_e303);
    assert_eq!(mrs(0, PMCR), 0xd53b_9c00);
    assert_eq!(msr(OSLAR, 0), 0xd510_1080);
    assert_eq!(sys(0, 8, 3, 0, 31), 0xd508_831f); // tlbi vmalle1is
    assert_eq!(sys(0, 7, 8, 3, 1), 0xd508_7861); // at s1e0w, x1
    assert_eq!(sys(3, 7, 4, 1, 0), 0xd50b_7420); // dc zva, x0
    assert_eq!(sys(0, 7, 5, 0, 31), 0xd508_751f); // ic iallu
}

#[test]
fn el1_registers_round_trip_through_msr_and_mrs() {
    let v = 0x1234_5678_9abc_d5f0u64;
    let lo = v & 0xffff_ffff;
    let cases: &[(u32, u64)] = &[
        (SCTLR, v),
        (TCR, v),
        (TTBR0, v),
        (TTBR1, v),
        (MAIR, v),
        (AMAIR, v),
        (VBAR_EL1, v & !0x7ff),
        (ELR, v),
        (SPSR, lo),
        (ESR, lo),
        (FAR, v),
        (AFSR0, lo),
        (AFSR1, lo),
        (CONTEXTIDR, lo),
        (TPIDR_EL1, v),
        (CPACR, lo),
        (PAR, v),
        (CNTKCTL, v & 0x3ff),
        (CSSELR, v & 0xf),
        (MDSCR, lo),
        (SP_EL0, v),
        (TPIDR_EL0, v),
        (TPIDRRO_EL0, v),
        (NZCV, v & 0xf000_0000),
        (FPCR, v & 0x07ff_0000),
        (FPSR, v & 0xf800_009f),
    ];
    for &(reg, want) in cases {
        let mut st = el1();
        st.x[1] = v;
        let (st, mem) = run(&[msr(reg, 1), mrs(2, reg)], st);
        assert_eq!(st.x[2], want, "register {reg:#x}");
        let mmu = matches!(reg, SCTLR | TCR | TTBR0 | TTBR1 | MAIR | CONTEXTIDR);
        assert_eq!(mem.syncs, mmu as u32, "MMU syncs after writing {reg:#x}");
    }
    // The fields land where the MMU reads them.
    let mut st = el1();
    st.x[1] = 0x0005_0000_4000_0000;
    st.x[2] = 0x0000_0035_b551_3510;
    let (st, _) = run(&[msr(TTBR1, 1), msr(TCR, 2)], st);
    assert_eq!(st.sys.ttbr1_el1, 0x0005_0000_4000_0000);
    assert_eq!(st.sys.tcr_el1, 0x0000_0035_b551_3510);
}

#[test]
fn identification_and_status_registers_read_from_the_model() {
    let words = [
        mrs(0, CURRENT_EL),
        mrs(1, SPSEL),
        mrs(2, MIDR_EL1),
        mrs(3, MPIDR_EL1),
        mrs(4, ID_AA64DFR0_EL1),
        mrs(5, ID_AA64PFR0_EL1),
        mrs(6, ID_AA64MMFR0_EL1),
        mrs(7, sysreg(3, 0, 0, 3, 1)), // in the ID space, unallocated: RAZ
        mrs(8, CTR_EL0),
        mrs(9, DCZID_EL0),
        mrs(10, CLIDR),
        msr(CSSELR, 31),
        mrs(11, CCSIDR), // L1 data
        mrs(12, CNTFRQ_EL0),
        mrs(13, ID_AA64ISAR0_EL1),
    ];
    let (st, _) = run(&words, el1());
    let m = CORTEX_A72;
    assert_eq!(st.x[0], 4);
    assert_eq!(st.x[1], 1);
    assert_eq!(st.x[2], m.midr);
    assert_eq!(st.x[3], MPIDR);
    assert_eq!((st.x[4] >> 8) & 0xf, 0, "PMUVer says no PMU");
    assert_eq!(st.x[4] & 0xf, m.id_aa64dfr0 & 0xf, "DebugVer kept");
    assert_eq!(st.x[5], m.id_aa64pfr0);
    assert_eq!(st.x[6], m.id_aa64mmfr0);
    assert_eq!(st.x[7], 0);
    assert_eq!(st.x[8], m.ctr);
    assert_eq!(st.x[9], model::DCZID);
    // L1 I+D, L2 unified, LoC 2.
    assert_eq!(st.x[10] & 0x3f, 0b100_011);
    assert_eq!((st.x[10] >> 24) & 7, 2);
    // 32 KiB, 2 ways, 64-byte lines: 256 sets.
    assert_eq!((st.x[11] >> 13) & 0x7fff, 255);
    assert_eq!((st.x[11] >> 3) & 0x3ff, 1);
    assert_eq!(st.x[11] & 7, 2);
    assert_eq!(st.x[12], model::CNTFRQ);
    assert_eq!(st.x[13], m.id_aa64isar0);
}

#[test]
fn pmu_and_debug_registers_read_as_zero_and_ignore_writes() {
    let mut st = el1();
    st.x[1] = !0;
    st.x[2] = 7;
    st.x[3] = 7;
    st.x[4] = 7;
    let words = [
        msr(PMCR, 1),
        mrs(2, PMCR),
        msr(PMUSERENR, 1),
        mrs(3, PMCCFILTR),
        msr(OSLAR, 31),
        msr(DBGBCR0, 1),
        mrs(4, DBGBCR0),
    ];
    let (st, _) = run(&words, st);
    assert_eq!((st.x[2], st.x[3], st.x[4]), (0, 0, 0));
}

#[test]
fn unknown_and_read_only_registers_are_undefined() {
    // An unallocated register, MSR to MIDR_EL1, SP_EL1 (EL2 only), CurrentEL written.
    for w in [
        mrs(0, sysreg(3, 0, 15, 0, 0)),
        msr(MIDR_EL1, 0),
        mrs(0, SP_EL1),
        msr(CURRENT_EL, 0),
        msr(CTR_EL0, 0),
        msr_imm(0, 4, 1),    // PAN: not in v8.0
        msr_imm(3, 1, 1),    // SSBS
        sys(0, 8, 1, 0, 31), // TLBI VMALLE1OS (v8.4)
    ] {
        assert_undefined_at(&[0xd280_0021, w], el1(), 1); // mov x1, #1; <w>
    }
}

#[test]
fn daifset_daifclr_and_msr_daif_update_the_mask() {
    let mut st = el1();
    st.x[2] = 0x40;
    let words = [
        daifclr(2), // I
        mrs(0, DAIF),
        daifclr(0xf),
        daifset(0xf),
        mrs(1, DAIF),
        msr(DAIF, 2),
        mrs(3, DAIF),
    ];
    let (st, _) = run(&words, st);
    assert_eq!(st.x[0], 0x340);
    assert_eq!(st.x[1], 0x3c0);
    assert_eq!(st.x[3], 0x40);
    assert_eq!(st.sys.daif, 0x40);
}

#[test]
fn spsel_switches_between_banked_stack_pointers() {
    let mut st = el1();
    st.x[31] = 0x1000; // SP_EL1
    st.sys.sp_el0 = 0x2000;
    st.x[5] = 0x3000;
    let words = [
        MOV_X0_SP,
        spsel(0),
        0x9100_03e1, // mov x1, sp
        MOV_SP_X5,
        spsel(1),
        0x9100_03e2, // mov x2, sp
        mrs(3, SP_EL0),
        msr(SPSEL, 31),
        mrs(4, SPSEL),
        0x9100_03e6, // mov x6, sp
    ];
    let (st, _) = run(&words, st);
    assert_eq!(st.x[0], 0x1000);
    assert_eq!(st.x[1], 0x2000);
    assert_eq!(st.x[2], 0x1000);
    assert_eq!(st.x[3], 0x3000);
    assert_eq!(st.x[4], 0);
    assert_eq!(st.x[6], 0x3000);
    assert_eq!(st.sys.sp_el1, 0x1000);
    // SP_EL0 by name while it is the stack pointer is undefined.
    let mut st = el1();
    set_el_sp(&mut st, 1, false);
    assert_undefined_at(&[mrs(0, SP_EL0)], st, 0);
}

#[test]
fn eret_to_el0_and_svc_back_through_the_lower_el_vector() {
    let mut st = el1();
    st.x[0] = EL0_CODE;
    st.x[1] = 0x2000_0000; // SPSR: C set, EL0t, nothing masked
    st.x[31] = 0x8000; // SP_EL1
    st.sys.sp_el0 = 0x9000;
    let el1_code = [msr(ELR, 0), msr(SPSR, 1), ERET];
    let el0_code: &[u32] = &[
        0xd280_0027, // mov x7, #1
        MOV_X0_SP,   // x0 = SP_EL0
        0xd400_0841, // svc #0x42
        0xd280_0129, // mov x9, #9
        0xd420_0000, // brk #0
    ];
    // Lower EL, AArch64, synchronous.
    let vector: &[u32] = &[
        mrs(10, ESR),
        mrs(11, ELR),
        mrs(12, SPSR),
        mrs(13, CURRENT_EL),
        0x9100_03ee, // mov x14, sp
        ERET,
    ];
    let (st, mem, stop) = run_both(
        &el1_code,
        &[(EL0_CODE, el0_code), (VBAR + 0x400, vector)],
        st,
        true,
    );
    assert_eq!(stop, Stop::Brk(0));
    assert_eq!(st.pc, EL0_CODE + 16);
    assert_eq!(st.x[7], 1);
    assert_eq!(st.x[0], 0x9000);
    assert_eq!(st.x[10], (0x15 << 26) | (1 << 25) | 0x42);
    assert_eq!(st.x[11], EL0_CODE + 12);
    assert_eq!(st.x[12], 0x2000_0000);
    assert_eq!(st.x[13], 4);
    assert_eq!(st.x[14], 0x8000, "the handler ran on SP_EL1");
    assert_eq!(st.x[9], 9);
    assert_eq!(st.nzcv, 0x2000_0000);
    assert_eq!((st.sys.el, st.sys.spsel, st.sys.daif), (0, false, 0));
    assert_eq!(st.x[31], 0x9000);
    assert_eq!(mem.delivered.len(), 1);
}

#[test]
fn undefined_at_el0_is_taken_to_el1_with_ec_0() {
    let mut st = el1();
    st.x[0] = EL0_CODE;
    let el1_code = [msr(ELR, 0), msr(SPSR, 31), ERET];
    let el0_code: &[u32] = &[mrs(1, SCTLR)];
    let vector: &[u32] = &[mrs(10, ESR), mrs(11, ELR), 0xd420_0000];
    let (st, _, stop) = run_both(
        &el1_code,
        &[(EL0_CODE, el0_code), (VBAR + 0x400, vector)],
        st,
        true,
    );
    assert_eq!(stop, Stop::Brk(0));
    assert_eq!(st.pc, VBAR + 0x408);
    assert_eq!(st.x[10], 1 << 25);
    assert_eq!(st.x[11], EL0_CODE);
    assert_eq!(st.sys.el, 1);
}

#[test]
fn el0_may_not_use_el1_registers_or_operations() {
    for w in [
        mrs(0, SCTLR),
        msr(VBAR_EL1, 0),
        mrs(0, CURRENT_EL),
        mrs(0, MIDR_EL1),
        mrs(0, PMCR),
        mrs(0, MDSCR),
        msr(TPIDRRO_EL0, 0),
        daifset(2), // SCTLR_EL1.UMA clear
        spsel(1),
        sys(0, 8, 7, 0, 31), // tlbi vmalle1
        sys(0, 7, 8, 0, 0),  // at s1e1r
        sys(0, 7, 5, 0, 31), // ic iallu
        sys(0, 7, 14, 2, 0), // dc cisw
        sys(3, 7, 4, 1, 0),  // dc zva with SCTLR_EL1.DZE clear
        sys(3, 7, 14, 1, 0), // dc civac with SCTLR_EL1.UCI clear
        mrs(0, CTR_EL0),     // SCTLR_EL1.UCT clear
        ERET,
        HVC0,
        SMC0,
    ] {
        assert_undefined_at(&[w], el0(), 0);
    }
}

#[test]
fn el0_cache_operations_follow_sctlr_enables() {
    let mut st = el0();
    st.sys.sctlr_el1 |= crate::sys::sctlr::DZE | crate::sys::sctlr::UCI | crate::sys::sctlr::UCT;
    st.x[0] = CODE + 0x1010;
    st.x[1] = !0;
    let words = [
        0xf900_0401,         // str x1, [x0, #8]
        sys(3, 7, 4, 1, 0),  // dc zva, x0
        0xf940_0402,         // ldr x2, [x0, #8]
        sys(3, 7, 14, 1, 0), // dc civac, x0
        mrs(3, DCZID_EL0),
        mrs(4, CTR_EL0),
    ];
    let (st, _) = run(&words, st);
    assert_eq!(st.x[2], 0);
    assert_eq!(st.x[3], model::DCZID, "DZP clear");
    assert_eq!(st.x[4], CORTEX_A72.ctr);
    // With DZE clear DCZID_EL0 says DC ZVA is prohibited.
    let (st, _) = run(&[mrs(3, DCZID_EL0)], el0());
    assert_eq!(st.x[3], model::DCZID | 1 << 4);
}

#[test]
fn timer_tval_cval_ctl_and_counters() {
    let mut st = el1();
    st.sys.cntvoff = 1000;
    st.x[1] = 500;
    st.x[4] = 1;
    st.x[8] = (-10i64) as u64;
    let words = [
        msr(CNTV_TVAL, 1),
        mrs(2, CNTV_CVAL),
        mrs(3, CNTV_TVAL),
        msr(CNTV_CTL, 4),
        mrs(5, CNTV_CTL),
        msr(CNTV_CVAL, 31),
        mrs(6, CNTV_CTL),
        mrs(7, CNTV_TVAL),
        msr(CNTP_TVAL, 8),
        mrs(9, CNTPCT_EL0),
        mrs(10, CNTVCT_EL0),
        mrs(11, CNTP_CVAL),
        msr(CNTP_CTL, 4),
        mrs(12, CNTP_CTL),
    ];
    let (st, mem) = run(&words, st);
    let vcount = COUNTER - 1000;
    assert_eq!(st.x[2], vcount + 500);
    assert_eq!(st.x[3], 500);
    assert_eq!(st.x[5], 1, "enabled, not yet met");
    assert_eq!(st.x[6], 0b101, "met: ISTATUS");
    assert_eq!(st.x[7], (0u64.wrapping_sub(vcount)) as u32 as u64);
    assert_eq!(st.x[9], COUNTER);
    assert_eq!(st.x[10], vcount);
    assert_eq!(st.x[11], COUNTER - 10);
    assert_eq!(st.x[12], 0b101);
    assert_eq!((st.sys.cntv_ctl, st.sys.cntv_cval), (1, 0));
    assert_eq!((st.sys.cntp_ctl, st.sys.cntp_cval), (1, COUNTER - 10));
    // Every timer write returned to the machine.
    assert_eq!(mem.system_stops, 5);
}

#[test]
fn el0_counter_and_timer_access_follows_cntkctl() {
    for w in [
        mrs(0, CNTVCT_EL0),
        mrs(0, CNTPCT_EL0),
        mrs(0, CNTFRQ_EL0),
        mrs(0, CNTV_CTL),
        msr(CNTP_CVAL, 0),
    ] {
        assert_undefined_at(&[w], el0(), 0);
    }
    let mut st = el0();
    st.sys.cntkctl_el1 = 0b11 | (1 << 8);
    let (st, _) = run(
        &[mrs(0, CNTVCT_EL0), mrs(1, CNTFRQ_EL0), mrs(2, CNTV_CTL)],
        st,
    );
    assert_eq!(st.x[0], COUNTER);
    assert_eq!(st.x[1], model::CNTFRQ);
    assert_eq!(st.x[2], 0);
    // The physical timer stays closed without EL0PTEN.
    let mut st = el0();
    st.sys.cntkctl_el1 = 0b11 | (1 << 8);
    assert_undefined_at(&[mrs(0, CNTP_CTL)], st, 0);
}

#[test]
fn tlbi_operations_reach_the_mmu_decoded() {
    let mut st = el1();
    let va = 0xffff_8000_1234_5000u64;
    st.x[1] = (5u64 << 48) | ((va >> 12) & ((1 << 44) - 1));
    st.x[2] = 7u64 << 48;
    st.x[3] = 0x40_0000 >> 12;
    let words = [
        sys(0, 8, 3, 0, 31), // tlbi vmalle1is
        sys(0, 8, 3, 1, 1),  // tlbi vae1is, x1
        sys(0, 8, 7, 2, 2),  // tlbi aside1, x2
        sys(0, 8, 7, 7, 3),  // tlbi vaale1, x3
        sys(0, 8, 7, 5, 1),  // tlbi vale1, x1
    ];
    let (_, mem) = run(&words, st);
    assert_eq!(
        mem.tlbis,
        vec![
            Tlbi::All,
            Tlbi::Va { va, asid: 5 },
            Tlbi::Asid(7),
            Tlbi::VaAllAsids { va: 0x40_0000 },
            Tlbi::Va { va, asid: 5 },
        ]
    );
}

#[test]
fn at_writes_par_with_address_or_fault_status() {
    let mut st = el1();
    st.x[1] = CODE + 0x1234;
    st.x[2] = END + 0x10;
    let words = [
        sys(0, 7, 8, 0, 1), // at s1e1r, x1
        mrs(3, PAR),
        sys(0, 7, 8, 3, 2), // at s1e0w, x2
        mrs(4, PAR),
    ];
    let (st, _) = run(&words, st);
    assert_eq!(
        st.x[3],
        (0xff << 56) | (CODE + 0x1000) | (1 << 11) | (0b11 << 7)
    );
    // F=1, FST = level 3 translation fault, bit 11 RES1.
    assert_eq!(st.x[4], (1 << 11) | (0b000111 << 1) | 1);
}

#[test]
fn cache_maintenance_checks_the_address_and_ic_flushes() {
    let mut st = el1();
    st.x[0] = CODE + 0x100;
    st.x[1] = END + 0x100;
    let ok = [
        sys(0, 7, 5, 0, 31), // ic iallu
        sys(3, 7, 14, 1, 0), // dc civac, x0
        sys(0, 7, 6, 1, 0),  // dc ivac, x0
        sys(0, 7, 14, 2, 0), // dc cisw, x0
        sys(3, 7, 5, 1, 0),  // ic ivau, x0
    ];
    run(&ok, st.clone());
    let (st, _, stop) = run_both(&[sys(3, 7, 10, 1, 1)], &[], st, false); // dc cvac, x1
    assert_eq!(
        stop,
        Stop::Fault(MemFault::at_level(
            END + 0x100,
            Access::Read,
            FaultKind::Unmapped,
            3
        ))
    );
    assert_eq!(st.pc, CODE);
}

#[test]
fn ic_iallu_drops_only_this_cpus_code_and_ic_ialluis_every_cpus() {
    use crate::icache::IcBroadcast;
    use std::sync::Arc;
    const MOVZ_X0: [u32; 3] = [0xd280_0020, 0xd280_0040, 0xd280_0060]; // movz x0, #1/#2/#3
    const BRK0: u32 = 0xd420_0000;
    for engine in [EngineKind::Interp, EngineKind::Jit] {
        let ic = Arc::new(IcBroadcast::new());
        let mut mem = sys_mem();
        let [iallu, ialluis] = [sys(0, 7, 5, 0, 31), sys(0, 7, 1, 0, 31)];
        mem.flat.load_words(CODE + 0x100, &[iallu, BRK0]);
        mem.flat.load_words(CODE + 0x200, &[ialluis, BRK0]);
        let mut cpus = [0, 1].map(|i| {
            let mut c = Cpu::with_engine(model::CORTEX_A72, engine);
            c.state = el1();
            c.set_ic_broadcast(ic.clone(), i);
            c
        });
        let run_at = |c: &mut Cpu, mem: &mut SysMem, pc: u64| {
            c.state.pc = pc;
            // A publication kicks the others.
            while c.run(mem) == Stop::Interrupted {
                c.interrupt()
                    .store(false, std::sync::atomic::Ordering::SeqCst);
            }
            assert_eq!(c.state.pc, pc + 4, "stopped at the BRK");
            c.state.x[0]
        };
        mem.flat.load_words(CODE, &[MOVZ_X0[0], BRK0]);
        let [a, b] = &mut cpus;
        assert_eq!(
            (run_at(a, &mut mem, CODE), run_at(b, &mut mem, CODE)),
            (1, 1)
        );
        // New code, then IC IALLU (at +0x100) or IC IALLUIS (+0x200) on a.
        let steps = [
            (1, 0x100, (2, 1), "IC IALLU on a drops a's code only"),
            (2, 0x200, (3, 3), "IC IALLUIS drops every CPU's code"),
        ];
        for (code, op, want, what) in steps {
            mem.flat.load_words(CODE, &[MOVZ_X0[code], BRK0]);
            run_at(a, &mut mem, CODE + op);
            let seen = (run_at(a, &mut mem, CODE), run_at(b, &mut mem, CODE));
            assert_eq!(seen, want, "{engine:?}: {what}");
        }
    }
}

#[test]
fn hvc_and_smc_stop_for_the_machine_at_el1() {
    let (st, _, stop) = run_both(&[HVC0], &[], el1(), false);
    assert_eq!((stop, st.pc), (Stop::Hvc(0), CODE + 4));
    let (st, _, stop) = run_both(&[0xd400_0063], &[], el1(), false); // smc #3
    assert_eq!((stop, st.pc), (Stop::Smc(3), CODE + 4));
}

#[test]
fn eret_illegal_mode_keeps_el1_and_restores_flags() {
    let mut st = el1();
    st.x[0] = CODE + 12;
    st.x[1] = 0x8000_0000 | 0x3c0 | 0b1001; // EL2h: not implemented
    let words = [msr(ELR, 0), msr(SPSR, 1), ERET];
    let (st, _) = run(&words, st);
    assert_eq!((st.sys.el, st.sys.spsel), (1, true));
    assert_eq!(st.nzcv, 0x8000_0000);
}

#[test]
fn wfi_wfe_sev_and_sevl_stop_for_the_machine_and_eret_sets_the_event_register() {
    // wfi, wfe, sev, sevl: the machine acts on each (pc after it); yield runs on.
    for w in [0xd503_207f, 0xd503_205f, 0xd503_209f, 0xd503_20bf] {
        let (st, _, stop) = run_both(&[0xd503_203f, w], &[], el1(), false);
        assert_eq!((stop, st.pc), (Stop::Wait, CODE + 8), "{w:#x}");
        assert!(!st.sys.event);
    }
    let mut st = el1();
    st.x[0] = CODE + 12;
    st.x[1] = 0x3c5; // EL1h
    let (st, _) = run(&[msr(ELR, 0), msr(SPSR, 1), ERET], st);
    assert!(st.sys.event, "an exception return sets the event register");
}

#[test]
fn user_mode_keeps_el0_linux_behaviour() {
    let st = CpuState::new();
    for w in [
        mrs(0, SCTLR),
        mrs(0, CURRENT_EL),
        msr(DAIF, 0),
        daifset(2),
        ERET,
        HVC0,
        sys(0, 8, 7, 0, 31),
        msr(CNTV_CTL, 0),
    ] {
        assert_undefined_at(&[w], st.clone(), 0);
    }
    let mut st = CpuState::new();
    st.x[1] = 0xabc;
    let (st, _) = run(
        &[
            msr(TPIDR_EL0, 1),
            mrs(2, TPIDR_EL0),
            mrs(3, MIDR_EL1),
            mrs(4, ID_AA64DFR0_EL1),
        ],
        st,
    );
    assert_eq!(st.x[2], 0xabc);
    assert_eq!(st.x[3], CORTEX_A72.midr);
    assert_eq!(st.x[4], 6);
}
