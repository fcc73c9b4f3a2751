//! The run loop: translate on first use, cache blocks by pc, execute them until something
//! the machine must handle.

use crate::a64::translate_block;
use crate::interp::{run_block, BlockExit};
use crate::ir::Block;
use crate::mem::{Mem, MemFault};
use crate::model::CpuModel;
use crate::state::CpuState;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Why [`Cpu::run`] returned. `state.pc` tells where to resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SVC #imm; pc is after the SVC.
    Svc(u16),
    /// BRK #imm; pc is the BRK.
    Brk(u16),
    /// Undefined instruction; pc is the instruction.
    Undefined(u32),
    /// A memory fault; pc is the faulting instruction.
    Fault(MemFault),
    /// Someone set the interrupt flag (a signal to deliver, a thread to stop).
    Interrupted,
    /// WFI/WFE: the machine may sleep; pc is after the instruction.
    Wait,
}

/// Multiplicative hash for guest pcs (aligned, so the low bits carry nothing).
#[derive(Default)]
pub struct PcHasher(u64);

impl Hasher for PcHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v >> 2).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type BlockMap = HashMap<u64, Rc<Block>, BuildHasherDefault<PcHasher>>;

/// One vCPU: state, its code cache and its interpreter scratch.
pub struct Cpu {
    pub state: CpuState,
    pub model: CpuModel,
    blocks: BlockMap,
    temps: Vec<u64>,
    /// Set from other threads to make [`Cpu::run`] return [`Stop::Interrupted`] at the next
    /// block boundary.
    pub interrupt: Arc<AtomicBool>,
    /// Guest instructions retired (counted per block).
    pub retired: u64,
}

impl Cpu {
    pub fn new(model: CpuModel) -> Self {
        Self {
            state: CpuState::new(),
            model,
            blocks: BlockMap::default(),
            temps: Vec::new(),
            interrupt: Arc::new(AtomicBool::new(false)),
            retired: 0,
        }
    }

    /// Forget all translated code (after munmap/mprotect of code, or IC IALLU).
    pub fn flush_code(&mut self) {
        self.blocks.clear();
    }

    /// Forget translated code overlapping `[start, end)`.
    pub fn invalidate_range(&mut self, start: u64, end: u64) {
        self.blocks
            .retain(|&pc, b| pc + 4 * b.len as u64 <= start || pc >= end);
    }

    fn block(&mut self, mem: &mut impl Mem, pc: u64) -> Rc<Block> {
        if let Some(b) = self.blocks.get(&pc) {
            return b.clone();
        }
        let b = Rc::new(translate_block(mem, pc));
        self.blocks.insert(pc, b.clone());
        b
    }

    /// Run until something needs the machine.
    pub fn run(&mut self, mem: &mut impl Mem) -> Stop {
        loop {
            if self.interrupt.load(Ordering::Relaxed) {
                return Stop::Interrupted;
            }
            let b = self.block(mem, self.state.pc);
            self.retired += b.len as u64;
            let exit = run_block(&b, &mut self.state, mem, &mut self.temps);
            if self.state.ic_flush {
                self.state.ic_flush = false;
                self.flush_code();
            }
            match exit {
                BlockExit::Continue => {}
                BlockExit::Svc(i) => return Stop::Svc(i),
                BlockExit::Brk(i) => return Stop::Brk(i),
                BlockExit::Undefined(i) => return Stop::Undefined(i),
                BlockExit::Fault(f) => return Stop::Fault(f),
                BlockExit::Wait => return Stop::Wait,
            }
        }
    }
}
