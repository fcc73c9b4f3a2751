//! The IR: a block is a list of typed ops over 64-bit temporaries plus exactly one
//! [`Terminal`]. Translation writes an instruction's semantics here once; the interpreter (and,
//! later, the JIT) executes blocks without knowing A64 from A32.
//!
//! Conventions every producer keeps:
//! - Temps hold 64-bit values. An op with [`Width::W32`] reads the low 32 bits of its operands
//!   and produces a zero-extended 32-bit result, so its output can be written to an X register
//!   as the W-register write it stands for.
//! - Within one guest instruction every op that can fault comes before any op that writes
//!   guest state (registers, flags, memory), so a fault leaves the instruction unexecuted.
//! - Each guest instruction begins with an entry in [`Block::insns`]; a fault at op `k` is
//!   reported at the pc of the last instruction starting at or before `k`.

mod verify;

pub use verify::verify;
pub(crate) use verify::{defs, terminal_use, uses};

use crate::mem::Mem;
use crate::state::CpuState;

/// A temporary, numbered within its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct T(pub u16);

/// Operand width of integer ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    W32,
    W64,
}

impl Width {
    pub fn bits(self) -> u32 {
        match self {
            Width::W32 => 32,
            Width::W64 => 64,
        }
    }
}

/// Two-operand integer ops. Shift and rotate amounts are taken modulo the width, as the A64
/// variable shifts define. Division by zero gives zero (A64 semantics); `i64::MIN / -1` wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    And,
    Or,
    Xor,
    /// a & !b
    AndNot,
    /// a | !b
    OrNot,
    /// a ^ !b
    XorNot,
    Shl,
    Lsr,
    Asr,
    Ror,
    Mul,
    /// High 64 bits of the unsigned 128-bit product (W64 only).
    UMulH,
    /// High 64 bits of the signed 128-bit product (W64 only).
    SMulH,
    UDiv,
    SDiv,
    /// Comparison results: 1 if true, 0 if false.
    Eq,
    Ne,
    /// Unsigned a < b.
    Ult,
    /// Signed a < b.
    Slt,
}

/// One-operand integer ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Not,
    Neg,
    /// Count leading zeros within the width.
    Clz,
    /// Count leading sign bits (excluding the sign bit itself) within the width.
    Cls,
    /// Reverse bit order within the width.
    Rbit,
    /// Reverse byte order within the width.
    Rev,
    /// Reverse bytes within each 16-bit halfword.
    Rev16,
    /// Reverse bytes within each 32-bit word (W64 only).
    Rev32,
    /// Sign-extend from 8/16/32 bits to the width.
    Sext8,
    Sext16,
    Sext32,
    /// Zero-extend from 8/16/32 bits (masks).
    Zext8,
    Zext16,
    Zext32,
}

/// Carry input of [`Op::AddFlags`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carry {
    Zero,
    One,
    /// The current C flag.
    Flag,
}

/// A helper called with the whole CPU state and memory, given the raw instruction word so it
/// can decode its own fields. Used for instruction classes whose semantics are best written as
/// Rust (AdvSIMD, system registers). A helper that fails returns a [`HelperError`] and must
/// not have changed guest state.
pub type Helper = fn(&mut CpuState, &mut dyn Mem, u32) -> Result<(), HelperError>;

/// A pure-ish value helper: three inputs, one output, may read/update FPCR/FPSR in the state.
pub type ValueHelper = fn(&mut CpuState, u64, u64, u64) -> u64;

/// Why a helper stopped the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelperError {
    Mem(crate::mem::MemFault),
    /// The encoding turned out to be unallocated or unimplemented.
    Undefined,
}

impl From<crate::mem::MemFault> for HelperError {
    fn from(f: crate::mem::MemFault) -> Self {
        HelperError::Mem(f)
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Op {
    Const {
        dst: T,
        value: u64,
    },
    Mov {
        dst: T,
        src: T,
    },
    /// Read X register `reg` (31 is SP).
    GetReg {
        dst: T,
        reg: u8,
    },
    /// Write X register `reg` (31 is SP).
    SetReg {
        reg: u8,
        src: T,
    },
    Bin {
        op: BinOp,
        w: Width,
        dst: T,
        a: T,
        b: T,
    },
    Un {
        op: UnOp,
        w: Width,
        dst: T,
        a: T,
    },
    /// dst = a + b + carry, and NZCV from the addition. Subtraction is a + !b + 1.
    AddFlags {
        w: Width,
        dst: T,
        a: T,
        b: T,
        carry: Carry,
    },
    /// dst = a + b + C (no flags written).
    Adc {
        w: Width,
        dst: T,
        a: T,
        b: T,
    },
    /// N and Z from `src`, C and V cleared.
    LogicFlags {
        w: Width,
        src: T,
    },
    /// dst = NZCV in bits 31..28.
    GetNzcv {
        dst: T,
    },
    /// NZCV = src bits 31..28.
    SetNzcv {
        src: T,
    },
    /// dst = 1 if the A64 condition code holds, else 0.
    Cond {
        dst: T,
        cond: u8,
    },
    /// dst = if cond != 0 { a } else { b }.
    Select {
        dst: T,
        cond: T,
        a: T,
        b: T,
    },
    /// Scalar load of 1/2/4/8 bytes, zero- or sign-extended to 64 bits.
    Load {
        dst: T,
        addr: T,
        size: u8,
        signed: bool,
    },
    Store {
        addr: T,
        src: T,
        size: u8,
    },
    /// Load 1/2/4/8/16 bytes into V register `reg`, zeroing the rest of it.
    LoadV {
        reg: u8,
        addr: T,
        size: u8,
    },
    /// Store the low 1/2/4/8/16 bytes of V register `reg`.
    StoreV {
        reg: u8,
        addr: T,
        size: u8,
    },
    /// Load-exclusive of 1/2/4/8/16 bytes (aligned to size); arms the monitor. For 16 bytes
    /// the high half goes to `dst_hi`.
    LoadExcl {
        dst: T,
        dst_hi: Option<T>,
        addr: T,
        size: u8,
    },
    /// Store-exclusive: `status` = 0 on success, 1 on failure. For 16 bytes `src_hi` is the
    /// high half. Always clears the monitor.
    StoreExcl {
        status: T,
        addr: T,
        src: T,
        src_hi: Option<T>,
        size: u8,
    },
    ClearExcl,
    /// Fault with an alignment fault unless `addr` is a multiple of `size`.
    CheckAlign {
        addr: T,
        size: u8,
        write: bool,
    },
    /// A memory barrier (DMB/DSB).
    Fence,
    /// dst = element `idx` (of `esize` bytes) of V register `reg`, zero-extended.
    GetVElem {
        dst: T,
        reg: u8,
        esize: u8,
        idx: u8,
    },
    /// Element `idx` (of `esize` bytes) of V register `reg` = src; other bits unchanged.
    SetVElem {
        reg: u8,
        src: T,
        esize: u8,
        idx: u8,
    },
    /// V register `reg` = src zero-extended from `esize` bytes (the scalar FP write).
    SetVScalar {
        reg: u8,
        src: T,
        esize: u8,
    },
    Call {
        f: Helper,
        insn: u32,
    },
    CallValue {
        f: ValueHelper,
        dst: T,
        a: T,
        b: T,
        c: T,
    },
}

/// How a block ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    /// Continue at a known pc.
    Jump(u64),
    /// If `cond != 0` continue at `taken`, else at `not_taken`.
    Branch { cond: T, taken: u64, not_taken: u64 },
    /// Continue at the address in `target` (BR, BLR, RET).
    Indirect { target: T },
    /// SVC #imm; `next` is the pc after the SVC (the preferred return address).
    Svc { imm: u16, next: u64 },
    /// BRK #imm at `pc`.
    Brk { imm: u16, pc: u64 },
    /// An unallocated or unimplemented encoding at `pc`.
    Undefined { insn: u32, pc: u64 },
    /// The instruction at `pc` could not be fetched.
    FetchFault {
        pc: u64,
        fault: crate::mem::MemFault,
    },
    /// WFI, WFE, SEV or SEVL at `pc` (the machine reads which); `next` resumes after it.
    Wait { next: u64 },
    /// HVC #imm (PSCI calls in system mode); `next` is the pc after it.
    Hvc { imm: u16, next: u64 },
    /// SMC #imm; `next` is the pc after it.
    Smc { imm: u16, next: u64 },
    /// A helper has set `state.pc` (ERET, exception entry): return to the dispatcher.
    Dynamic,
}

impl Terminal {
    /// The pcs this terminal continues at that are known at translation, in the JIT's exit
    /// slot order (a branch's taken target first).
    pub fn known_targets(&self) -> Vec<u64> {
        match *self {
            Terminal::Jump(t) => vec![t],
            Terminal::Branch {
                taken, not_taken, ..
            } => vec![taken, not_taken],
            _ => vec![],
        }
    }
}

/// Where guest instruction `pc` starts in [`Block::ops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsnStart {
    pub op: u32,
    pub pc: u64,
}

#[derive(Debug, Clone)]
pub struct Block {
    /// Guest address of the first instruction.
    pub pc: u64,
    /// Number of guest instructions.
    pub len: u32,
    pub ops: Vec<Op>,
    pub insns: Vec<InsnStart>,
    pub terminal: Terminal,
    /// Temps used (the interpreter sizes its scratch to this).
    pub temps: u16,
}

impl Block {
    /// The guest pc of the instruction that op `op` belongs to.
    pub fn pc_of_op(&self, op: usize) -> u64 {
        let i = self.insns.partition_point(|s| s.op as usize <= op);
        if i == 0 {
            self.pc
        } else {
            self.insns[i - 1].pc
        }
    }
}
