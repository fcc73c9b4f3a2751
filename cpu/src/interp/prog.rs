//! The interpreter's pre-decoded block form, built once per block at translation and run by
//! [`run_prog`] every time the block is interpreted.
//!
//! A [`Prog`] works on a frame of 64-bit slots: slots `0..32` are a copy of the X registers
//! (made when the block starts, written back whenever the state must be current: before
//! helper calls, at faults and at the end), then one slot per IR temp, then the block's
//! constants. Lowering removes most of the IR's bookkeeping ops:
//! - `Const` disappears: its temp becomes a constant slot (copied in with the registers).
//! - `GetReg` disappears when the register is not written before the temp's last use: the
//!   temp reads the register's slot directly.
//! - `SetReg` disappears when the op right before it computed its value: that op writes the
//!   register's slot directly (a fault in that op writes nothing, so instructions stay
//!   all-or-nothing).
//! - An address `base + offset` used once by the next load or store is folded into it, and
//!   `Not` feeding a flag-setting add (SUBS/CMP) becomes one subtract-with-flags.
//! - Common binary ops, loads and stores get one variant per operation and width, so running
//!   one costs a single dispatch.
//!
//! Slot numbers are checked against the frame size when the program is built; the runner
//! indexes a fixed-size frame with the slot masked to it, so it needs no bounds checks.
//!
//! Loads and stores probe the memory's inline TLB ([`TlbFast`], system mode) before calling
//! [`Mem::read`]/[`Mem::write`], exactly as compiled code does.

use super::{
    add_with_flags, bin, cond_holds, load_exclusive, mask, size_mask, store_exclusive, un, v_elem,
    AsDynMem, BlockExit,
};
use crate::ir::{
    defs, terminal_use, uses, BinOp, Block, Carry, Helper, HelperError, Op, Terminal, UnOp,
    ValueHelper, Width, T,
};
use crate::mem::{Access, FaultKind, Mem, MemFault, TlbFast};
use crate::mmu::{host_load, host_store};
use crate::state::{nzcv, CpuState};
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots in the frame (a power of two: slots are masked with `FRAME - 1`).
pub const FRAME: usize = 4096;
const REGS: usize = 32;

type S = u16;

/// One pre-decoded op. `d` is the destination slot, `a`, `b`, `c` sources; loads and stores
/// address `slot[base] + slot[off]`.
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
enum I {
    Mul64 {
        d: S,
        a: S,
        b: S,
    },
    /// d = if condition `c` holds { a } else { b }.
    SelCond {
        d: S,
        c: u8,
        a: S,
        b: S,
    },
    Mov {
        d: S,
        s: S,
    },
    Add64 {
        d: S,
        a: S,
        b: S,
    },
    Add32 {
        d: S,
        a: S,
        b: S,
    },
    Sub64 {
        d: S,
        a: S,
        b: S,
    },
    Sub32 {
        d: S,
        a: S,
        b: S,
    },
    And64 {
        d: S,
        a: S,
        b: S,
    },
    And32 {
        d: S,
        a: S,
        b: S,
    },
    Or64 {
        d: S,
        a: S,
        b: S,
    },
    Or32 {
        d: S,
        a: S,
        b: S,
    },
    Xor64 {
        d: S,
        a: S,
        b: S,
    },
    Xor32 {
        d: S,
        a: S,
        b: S,
    },
    Shl64 {
        d: S,
        a: S,
        b: S,
    },
    Lsr64 {
        d: S,
        a: S,
        b: S,
    },
    Asr64 {
        d: S,
        a: S,
        b: S,
    },
    Eq64 {
        d: S,
        a: S,
        b: S,
    },
    Ne64 {
        d: S,
        a: S,
        b: S,
    },
    Bin {
        op: BinOp,
        w: Width,
        d: S,
        a: S,
        b: S,
    },
    Zext32 {
        d: S,
        a: S,
    },
    Un {
        op: UnOp,
        w: Width,
        d: S,
        a: S,
    },
    /// a + b + c (c is 0 or 1), with flags.
    AddF64 {
        d: S,
        a: S,
        b: S,
        c: u8,
    },
    AddF32 {
        d: S,
        a: S,
        b: S,
        c: u8,
    },
    /// a + !b + c (c is 0 or 1), with flags: SUBS, CMP.
    SubF64 {
        d: S,
        a: S,
        b: S,
        c: u8,
    },
    SubF32 {
        d: S,
        a: S,
        b: S,
        c: u8,
    },
    /// a + b + C, with flags.
    AddFC {
        w: Width,
        d: S,
        a: S,
        b: S,
    },
    Adc {
        w: Width,
        d: S,
        a: S,
        b: S,
    },
    Logic64 {
        s: S,
    },
    Logic32 {
        s: S,
    },
    GetNzcv {
        d: S,
    },
    SetNzcv {
        s: S,
    },
    Cond {
        d: S,
        cond: u8,
    },
    Select {
        d: S,
        c: S,
        a: S,
        b: S,
    },
    Ld8 {
        d: S,
        base: S,
        off: S,
    },
    Ld16 {
        d: S,
        base: S,
        off: S,
    },
    Ld32 {
        d: S,
        base: S,
        off: S,
    },
    Ld64 {
        d: S,
        base: S,
        off: S,
    },
    Ld8s {
        d: S,
        base: S,
        off: S,
    },
    Ld16s {
        d: S,
        base: S,
        off: S,
    },
    Ld32s {
        d: S,
        base: S,
        off: S,
    },
    St8 {
        s: S,
        base: S,
        off: S,
    },
    St16 {
        s: S,
        base: S,
        off: S,
    },
    St32 {
        s: S,
        base: S,
        off: S,
    },
    St64 {
        s: S,
        base: S,
        off: S,
    },
    LoadV {
        reg: u8,
        size: u8,
        base: S,
        off: S,
    },
    StoreV {
        reg: u8,
        size: u8,
        base: S,
        off: S,
    },
    LoadExcl {
        d: S,
        hi: Option<S>,
        a: S,
        size: u8,
    },
    StoreExcl {
        status: S,
        a: S,
        s: S,
        hi: Option<S>,
        size: u8,
    },
    ClearExcl,
    CheckAlign {
        a: S,
        size: u8,
        write: bool,
    },
    Fence,
    GetVElem {
        d: S,
        reg: u8,
        esize: u8,
        idx: u8,
    },
    SetVElem {
        reg: u8,
        s: S,
        esize: u8,
        idx: u8,
    },
    SetVScalar {
        reg: u8,
        s: S,
        esize: u8,
    },
    /// Helper `calls[i]`.
    Call {
        i: u16,
    },
    /// Value helper `vcalls[i]`.
    CallValue {
        i: u16,
        d: S,
        a: S,
        b: S,
        c: S,
    },
}

impl I {
    /// Whether the op reads or writes slot `x` (helper calls touch every register slot).
    fn touches(&self, x: S) -> bool {
        use I::*;
        match *self {
            Mov { d, s } => d == x || s == x,
            Add64 { d, a, b }
            | Add32 { d, a, b }
            | Sub64 { d, a, b }
            | Sub32 { d, a, b }
            | And64 { d, a, b }
            | And32 { d, a, b }
            | Or64 { d, a, b }
            | Or32 { d, a, b }
            | Xor64 { d, a, b }
            | Xor32 { d, a, b }
            | Shl64 { d, a, b }
            | Lsr64 { d, a, b }
            | Asr64 { d, a, b }
            | Mul64 { d, a, b }
            | Eq64 { d, a, b }
            | Ne64 { d, a, b }
            | Bin { d, a, b, .. }
            | AddF64 { d, a, b, .. }
            | AddF32 { d, a, b, .. }
            | SubF64 { d, a, b, .. }
            | SubF32 { d, a, b, .. }
            | AddFC { d, a, b, .. }
            | Adc { d, a, b, .. } => d == x || a == x || b == x,
            Zext32 { d, a } | Un { d, a, .. } => d == x || a == x,
            Logic64 { s } | Logic32 { s } | SetNzcv { s } => s == x,
            GetNzcv { d } | Cond { d, .. } | GetVElem { d, .. } => d == x,
            Select { d, c, a, b } => d == x || c == x || a == x || b == x,
            SelCond { d, a, b, .. } => d == x || a == x || b == x,
            Ld8 { d, base, off }
            | Ld16 { d, base, off }
            | Ld32 { d, base, off }
            | Ld64 { d, base, off }
            | Ld8s { d, base, off }
            | Ld16s { d, base, off }
            | Ld32s { d, base, off } => d == x || base == x || off == x,
            St8 { s, base, off }
            | St16 { s, base, off }
            | St32 { s, base, off }
            | St64 { s, base, off } => s == x || base == x || off == x,
            LoadV { base, off, .. } | StoreV { base, off, .. } => base == x || off == x,
            LoadExcl { d, hi, a, .. } => d == x || hi == Some(x) || a == x,
            StoreExcl {
                status, a, s, hi, ..
            } => status == x || a == x || s == x || hi == Some(x),
            CheckAlign { a, .. } => a == x,
            SetVElem { s, .. } | SetVScalar { s, .. } => s == x,
            ClearExcl | Fence => false,
            Call { .. } => (x as usize) < REGS,
            CallValue { d, a, b, c, .. } => d == x || a == x || b == x || c == x,
        }
    }

    /// The destination slot of an op with exactly one.
    fn dst_mut(&mut self) -> Option<&mut S> {
        use I::*;
        match self {
            Mov { d, .. }
            | Add64 { d, .. }
            | Add32 { d, .. }
            | Sub64 { d, .. }
            | Sub32 { d, .. }
            | And64 { d, .. }
            | And32 { d, .. }
            | Or64 { d, .. }
            | Or32 { d, .. }
            | Xor64 { d, .. }
            | Xor32 { d, .. }
            | Shl64 { d, .. }
            | Lsr64 { d, .. }
            | Asr64 { d, .. }
            | Mul64 { d, .. }
            | Eq64 { d, .. }
            | Ne64 { d, .. }
            | Bin { d, .. }
            | Zext32 { d, .. }
            | Un { d, .. }
            | AddF64 { d, .. }
            | AddF32 { d, .. }
            | SubF64 { d, .. }
            | SubF32 { d, .. }
            | AddFC { d, .. }
            | Adc { d, .. }
            | GetNzcv { d }
            | Cond { d, .. }
            | Select { d, .. }
            | SelCond { d, .. }
            | Ld8 { d, .. }
            | Ld16 { d, .. }
            | Ld32 { d, .. }
            | Ld64 { d, .. }
            | Ld8s { d, .. }
            | Ld16s { d, .. }
            | Ld32s { d, .. }
            | GetVElem { d, .. }
            | CallValue { d, .. } => Some(d),
            _ => None,
        }
    }
}

/// How a program ends (the IR terminal with temps resolved to slots).
#[derive(Debug, Clone, Copy)]
enum End {
    Jump(u64),
    Branch {
        c: S,
        taken: u64,
        not_taken: u64,
    },
    /// A branch on condition code `c`.
    BranchCond {
        c: u8,
        taken: u64,
        not_taken: u64,
    },
    Indirect {
        s: S,
    },
    Exit(Terminal),
}

/// A block lowered for the interpreter.
#[derive(Debug, Clone)]
pub struct Prog {
    ops: Box<[I]>,
    /// The guest pc of each op's instruction (where a fault in it is reported).
    pcs: Box<[u64]>,
    consts: Box<[u64]>,
    const_base: usize,
    calls: Box<[(Helper, u32)]>,
    vcalls: Box<[ValueHelper]>,
    end: End,
    /// Registers copied into the frame at the start (read, or written: a fault writes the
    /// written ones back, so they must hold the state's values until written).
    regs_in: u32,
    /// Registers the ops may write (copied back to the state).
    regs_out: u32,
}

impl Prog {
    /// Lower `b`, or None if it needs more slots than a frame has.
    pub fn build(b: &Block) -> Option<Prog> {
        Builder::new(b)?.run()
    }

    /// Number of ops (for statistics and tests).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// An op folded into a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fold {
    None,
    /// This Bin Add (W64) is the address of the load or store at the given op.
    Addr,
    /// This Not is the `b` of the AddFlags at the given op.
    Not,
    /// This Cond is the condition of a Select, or of the terminal branch.
    Cond,
}

/// Whether an IR op may write NZCV.
fn writes_flags(op: &Op) -> bool {
    matches!(
        op,
        Op::AddFlags { .. }
            | Op::LogicFlags { .. }
            | Op::SetNzcv { .. }
            | Op::Call { .. }
            | Op::CallValue { .. }
    )
}

/// Whether an IR op may fault.
fn may_fault(op: &Op) -> bool {
    matches!(
        op,
        Op::Load { .. }
            | Op::Store { .. }
            | Op::LoadV { .. }
            | Op::StoreV { .. }
            | Op::LoadExcl { .. }
            | Op::StoreExcl { .. }
            | Op::CheckAlign { .. }
            | Op::Call { .. }
    )
}

struct Builder<'a> {
    b: &'a Block,
    ndefs: Vec<u16>,
    nuses: Vec<u16>,
    /// The op defining each single-def temp.
    def_at: Vec<u32>,
    /// The effective last use of each temp (after folding).
    last_use: Vec<u32>,
    fold: Vec<Fold>,
    /// Ops writing each register (SetReg of it, and every Call), ascending.
    reg_writes: [Vec<u32>; 32],
    slot: Vec<Option<S>>,
    consts: Vec<u64>,
    const_base: usize,
}

impl<'a> Builder<'a> {
    fn new(b: &'a Block) -> Option<Self> {
        let n = b.temps as usize;
        if REGS + n >= FRAME {
            return None;
        }
        Some(Self {
            b,
            ndefs: vec![0; n],
            nuses: vec![0; n],
            def_at: vec![u32::MAX; n],
            last_use: vec![0; n],
            fold: vec![Fold::None; b.ops.len()],
            reg_writes: Default::default(),
            slot: vec![None; n],
            consts: Vec::new(),
            const_base: REGS + n,
        })
    }

    /// Whether any op strictly between `from` and `to` writes a register.
    fn reg_write_between(&self, from: usize, to: usize) -> bool {
        self.b.ops[from + 1..to]
            .iter()
            .any(|o| matches!(o, Op::SetReg { .. } | Op::Call { .. }))
    }

    /// The first op after `i` that writes register `r`, or u32::MAX.
    fn next_write(&self, r: u8, i: usize) -> u32 {
        let w = &self.reg_writes[r as usize & 31];
        let k = w.partition_point(|&p| p as usize <= i);
        w.get(k).copied().unwrap_or(u32::MAX)
    }

    /// The single-def temp `t`'s defining op, if `t` is used once.
    fn single(&self, t: T) -> Option<usize> {
        let i = t.0 as usize;
        (self.ndefs[i] == 1 && self.nuses[i] == 1).then_some(self.def_at[i] as usize)
    }

    fn konst(&mut self, v: u64) -> Option<S> {
        let k = match self.consts.iter().position(|&c| c == v) {
            Some(k) => k,
            None => {
                self.consts.push(v);
                self.consts.len() - 1
            }
        };
        let s = self.const_base + k;
        (s < FRAME).then_some(s as S)
    }

    fn run(mut self) -> Option<Prog> {
        let b = self.b;
        let mut tmp = Vec::new();
        // Counts and definitions.
        for (i, op) in b.ops.iter().enumerate() {
            uses(op, &mut tmp);
            for t in &tmp {
                self.nuses[t.0 as usize] += 1;
            }
            defs(op, &mut tmp);
            for t in &tmp {
                let k = t.0 as usize;
                self.ndefs[k] = self.ndefs[k].saturating_add(1);
                self.def_at[k] = i as u32;
            }
            match *op {
                Op::SetReg { reg, .. } => self.reg_writes[reg as usize & 31].push(i as u32),
                Op::Call { .. } => {
                    for w in &mut self.reg_writes {
                        w.push(i as u32);
                    }
                }
                _ => {}
            }
        }
        if let Some(t) = terminal_use(&b.terminal) {
            self.nuses[t.0 as usize] += 1;
        }
        // Folds: an address add into its load/store, a Not into its AddFlags.
        for (i, op) in b.ops.iter().enumerate() {
            let addr = match *op {
                Op::Load { addr, .. }
                | Op::Store { addr, .. }
                | Op::LoadV { addr, .. }
                | Op::StoreV { addr, .. } => Some(addr),
                _ => None,
            };
            if let Some(j) = addr.and_then(|a| self.single(a)) {
                if matches!(
                    b.ops[j],
                    Op::Bin {
                        op: BinOp::Add,
                        w: Width::W64,
                        ..
                    }
                ) && !self.reg_write_between(j, i)
                {
                    self.fold[j] = Fold::Addr;
                }
            }
            if let Op::AddFlags {
                b: nb,
                carry: Carry::Zero | Carry::One,
                ..
            } = *op
            {
                if let Some(j) = self.single(nb) {
                    if matches!(b.ops[j], Op::Un { op: UnOp::Not, .. })
                        && !self.reg_write_between(j, i)
                    {
                        self.fold[j] = Fold::Not;
                    }
                }
            }
        }
        // A Cond read only by a Select or the terminal branch, with no flag write between.
        let n = b.ops.len();
        let cond_fold = |this: &mut Self, t: T, at: usize| {
            if let Some(j) = this.single(t) {
                if matches!(b.ops[j], Op::Cond { .. }) && !b.ops[j + 1..at].iter().any(writes_flags)
                {
                    this.fold[j] = Fold::Cond;
                }
            }
        };
        for (i, op) in b.ops.iter().enumerate() {
            if let Op::Select { cond, .. } = *op {
                cond_fold(&mut self, cond, i);
            }
        }
        if let Terminal::Branch { cond, .. } = b.terminal {
            cond_fold(&mut self, cond, n);
        }
        // Last uses, counting a folded op's operands as used where it is folded into.
        for (i, op) in b.ops.iter().enumerate() {
            if self.fold[i] != Fold::None {
                continue;
            }
            uses(op, &mut tmp);
            let mut k = 0;
            while k < tmp.len() {
                let t = tmp[k];
                let d = self.def_at[t.0 as usize] as usize;
                if self.ndefs[t.0 as usize] == 1
                    && self.fold.get(d).is_some_and(|&f| f != Fold::None)
                {
                    let mut inner = Vec::new();
                    uses(&b.ops[d], &mut inner);
                    tmp.extend(inner);
                }
                self.last_use[t.0 as usize] = i as u32;
                k += 1;
            }
        }
        let end_at = b.ops.len() as u32;
        if let Some(t) = terminal_use(&b.terminal) {
            self.last_use[t.0 as usize] = end_at;
        }
        self.emit()
    }

    /// The condition code of `t` if it is a folded Cond.
    fn folded_cond(&self, t: T) -> Option<u8> {
        let k = t.0 as usize;
        let j = self.def_at[k] as usize;
        if self.ndefs[k] != 1 || self.fold.get(j) != Some(&Fold::Cond) {
            return None;
        }
        match self.b.ops[j] {
            Op::Cond { cond, .. } => Some(cond),
            _ => None,
        }
    }

    /// The slot temp `t` is read from.
    fn src(&self, t: T) -> Option<S> {
        self.slot.get(t.0 as usize).copied().flatten()
    }

    /// The slot of temp `t` as a destination (its own temp slot).
    fn tslot(t: T) -> S {
        (REGS + t.0 as usize) as S
    }

    fn emit(mut self) -> Option<Prog> {
        let b = self.b;
        let mut ops: Vec<I> = Vec::with_capacity(b.ops.len());
        let mut pcs: Vec<u64> = Vec::with_capacity(b.ops.len());
        let mut calls = Vec::new();
        let mut vcalls = Vec::new();
        // The emitted op of each IR op (usize::MAX: none).
        let mut emitted_at = vec![usize::MAX; b.ops.len()];
        for (i, op) in b.ops.iter().enumerate() {
            let pc = b.pc_of_op(i);
            if self.fold[i] != Fold::None {
                continue;
            }
            // Temps defined once get their slot now; others always live in their own.
            let single = |s: &Self, t: T| s.ndefs[t.0 as usize] == 1;
            let d = |t: T| Self::tslot(t);
            let set = |s: &mut Self, t: T| {
                s.slot[t.0 as usize] = Some(Self::tslot(t));
            };
            let new = match *op {
                Op::Const { dst, value } => {
                    let c = self.konst(value)?;
                    if single(&self, dst) {
                        self.slot[dst.0 as usize] = Some(c);
                        None
                    } else {
                        set(&mut self, dst);
                        Some(I::Mov { d: d(dst), s: c })
                    }
                }
                Op::Mov { dst, src } => {
                    let s = self.src(src)?;
                    set(&mut self, dst);
                    Some(I::Mov { d: d(dst), s })
                }
                Op::GetReg { dst, reg } => {
                    let r = (reg & 31) as S;
                    let t = dst.0 as usize;
                    if single(&self, dst) && self.next_write(reg, i) > self.last_use[t] {
                        self.slot[t] = Some(r);
                        None
                    } else {
                        set(&mut self, dst);
                        Some(I::Mov { d: d(dst), s: r })
                    }
                }
                Op::SetReg { reg, src } => {
                    let r = (reg & 31) as S;
                    let t = src.0 as usize;
                    let s = self.src(src)?;
                    let j = self.def_at[t] as usize;
                    let e = emitted_at.get(j).copied().unwrap_or(usize::MAX);
                    // The def may write the register itself when nothing between it and
                    // here can fault or touches the register, and the value stays there
                    // for the temp's later uses.
                    let retarget = single(&self, src)
                        && j < i
                        && s == Self::tslot(src)
                        && e < ops.len()
                        && !b.ops[j + 1..i].iter().any(may_fault)
                        && !ops[e + 1..].iter().any(|o| o.touches(r) || o.touches(s))
                        && self.next_write(reg, i) > self.last_use[t];
                    match ops.get_mut(e).and_then(|o| o.dst_mut()) {
                        Some(dst) if retarget && *dst == s => {
                            *dst = r;
                            self.slot[t] = Some(r);
                            None
                        }
                        _ => Some(I::Mov { d: r, s }),
                    }
                }
                Op::Bin {
                    op,
                    w,
                    dst,
                    a,
                    b: bb,
                } => {
                    let (a, bs) = (self.src(a)?, self.src(bb)?);
                    set(&mut self, dst);
                    let dd = d(dst);
                    Some(lower_bin(op, w, dd, a, bs))
                }
                Op::Un { op, w, dst, a } => {
                    let a = self.src(a)?;
                    set(&mut self, dst);
                    Some(match (op, w) {
                        (UnOp::Zext32, _) => I::Zext32 { d: d(dst), a },
                        _ => I::Un {
                            op,
                            w,
                            d: d(dst),
                            a,
                        },
                    })
                }
                Op::AddFlags {
                    w,
                    dst,
                    a,
                    b: bb,
                    carry,
                } => {
                    let a = self.src(a)?;
                    let nj = self.def_at[bb.0 as usize] as usize;
                    let not = (self.ndefs[bb.0 as usize] == 1
                        && self.fold.get(nj) == Some(&Fold::Not))
                    .then(|| match b.ops[nj] {
                        Op::Un { a: na, .. } => self.src(na),
                        _ => None,
                    })
                    .flatten();
                    let plain = if not.is_none() {
                        Some(self.src(bb)?)
                    } else {
                        None
                    };
                    set(&mut self, dst);
                    let dd = d(dst);
                    let c = match carry {
                        Carry::Zero => Some(0),
                        Carry::One => Some(1),
                        Carry::Flag => None,
                    };
                    Some(match (not, plain, c, w) {
                        (Some(nb), _, Some(c), Width::W64) => I::SubF64 { d: dd, a, b: nb, c },
                        (Some(nb), _, Some(c), Width::W32) => I::SubF32 { d: dd, a, b: nb, c },
                        (None, Some(bs), Some(c), Width::W64) => I::AddF64 { d: dd, a, b: bs, c },
                        (None, Some(bs), Some(c), Width::W32) => I::AddF32 { d: dd, a, b: bs, c },
                        (None, Some(bs), None, w) => I::AddFC { w, d: dd, a, b: bs },
                        _ => return None,
                    })
                }
                Op::Adc { w, dst, a, b: bb } => {
                    let (a, bs) = (self.src(a)?, self.src(bb)?);
                    set(&mut self, dst);
                    Some(I::Adc {
                        w,
                        d: d(dst),
                        a,
                        b: bs,
                    })
                }
                Op::LogicFlags { w, src } => {
                    let s = self.src(src)?;
                    Some(match w {
                        Width::W64 => I::Logic64 { s },
                        Width::W32 => I::Logic32 { s },
                    })
                }
                Op::GetNzcv { dst } => {
                    set(&mut self, dst);
                    Some(I::GetNzcv { d: d(dst) })
                }
                Op::SetNzcv { src } => Some(I::SetNzcv { s: self.src(src)? }),
                Op::Cond { dst, cond } => {
                    set(&mut self, dst);
                    Some(I::Cond { d: d(dst), cond })
                }
                Op::Select {
                    dst,
                    cond,
                    a,
                    b: bb,
                } if self.folded_cond(cond).is_some() => {
                    let c = self.folded_cond(cond)?;
                    let (a, bs) = (self.src(a)?, self.src(bb)?);
                    set(&mut self, dst);
                    Some(I::SelCond {
                        d: d(dst),
                        c,
                        a,
                        b: bs,
                    })
                }
                Op::Select {
                    dst,
                    cond,
                    a,
                    b: bb,
                } => {
                    let (c, a, bs) = (self.src(cond)?, self.src(a)?, self.src(bb)?);
                    set(&mut self, dst);
                    Some(I::Select {
                        d: d(dst),
                        c,
                        a,
                        b: bs,
                    })
                }
                Op::Load {
                    dst,
                    addr,
                    size,
                    signed,
                } => {
                    let (base, off) = self.address(addr)?;
                    set(&mut self, dst);
                    let dd = d(dst);
                    Some(match (size, signed) {
                        (1, false) => I::Ld8 { d: dd, base, off },
                        (2, false) => I::Ld16 { d: dd, base, off },
                        (4, false) => I::Ld32 { d: dd, base, off },
                        (8, _) => I::Ld64 { d: dd, base, off },
                        (1, true) => I::Ld8s { d: dd, base, off },
                        (2, true) => I::Ld16s { d: dd, base, off },
                        (4, true) => I::Ld32s { d: dd, base, off },
                        _ => return None,
                    })
                }
                Op::Store { addr, src, size } => {
                    let (base, off) = self.address(addr)?;
                    let s = self.src(src)?;
                    Some(match size {
                        1 => I::St8 { s, base, off },
                        2 => I::St16 { s, base, off },
                        4 => I::St32 { s, base, off },
                        8 => I::St64 { s, base, off },
                        _ => return None,
                    })
                }
                Op::LoadV { reg, addr, size } => {
                    let (base, off) = self.address(addr)?;
                    Some(I::LoadV {
                        reg: reg & 31,
                        size,
                        base,
                        off,
                    })
                }
                Op::StoreV { reg, addr, size } => {
                    let (base, off) = self.address(addr)?;
                    Some(I::StoreV {
                        reg: reg & 31,
                        size,
                        base,
                        off,
                    })
                }
                Op::LoadExcl {
                    dst,
                    dst_hi,
                    addr,
                    size,
                } => {
                    let a = self.src(addr)?;
                    set(&mut self, dst);
                    if let Some(h) = dst_hi {
                        set(&mut self, h);
                    }
                    Some(I::LoadExcl {
                        d: d(dst),
                        hi: dst_hi.map(d),
                        a,
                        size,
                    })
                }
                Op::StoreExcl {
                    status,
                    addr,
                    src,
                    src_hi,
                    size,
                } => {
                    let a = self.src(addr)?;
                    let s = self.src(src)?;
                    let hi = match src_hi {
                        Some(h) => Some(self.src(h)?),
                        None => None,
                    };
                    set(&mut self, status);
                    Some(I::StoreExcl {
                        status: d(status),
                        a,
                        s,
                        hi,
                        size,
                    })
                }
                Op::ClearExcl => Some(I::ClearExcl),
                Op::CheckAlign { addr, size, write } => Some(I::CheckAlign {
                    a: self.src(addr)?,
                    size,
                    write,
                }),
                Op::Fence => Some(I::Fence),
                Op::GetVElem {
                    dst,
                    reg,
                    esize,
                    idx,
                } => {
                    set(&mut self, dst);
                    Some(I::GetVElem {
                        d: d(dst),
                        reg: reg & 31,
                        esize,
                        idx,
                    })
                }
                Op::SetVElem {
                    reg,
                    src,
                    esize,
                    idx,
                } => Some(I::SetVElem {
                    reg: reg & 31,
                    s: self.src(src)?,
                    esize,
                    idx,
                }),
                Op::SetVScalar { reg, src, esize } => Some(I::SetVScalar {
                    reg: reg & 31,
                    s: self.src(src)?,
                    esize,
                }),
                Op::Call { f, insn } => {
                    calls.push((f, insn));
                    Some(I::Call {
                        i: u16::try_from(calls.len() - 1).ok()?,
                    })
                }
                Op::CallValue {
                    f,
                    dst,
                    a,
                    b: bb,
                    c,
                } => {
                    let (a, bs, c) = (self.src(a)?, self.src(bb)?, self.src(c)?);
                    vcalls.push(f);
                    set(&mut self, dst);
                    Some(I::CallValue {
                        i: u16::try_from(vcalls.len() - 1).ok()?,
                        d: d(dst),
                        a,
                        b: bs,
                        c,
                    })
                }
            };
            if let Some(o) = new {
                emitted_at[i] = ops.len();
                ops.push(o);
                pcs.push(pc);
            }
        }
        let end = match b.terminal {
            Terminal::Jump(pc) => End::Jump(pc),
            Terminal::Branch {
                cond,
                taken,
                not_taken,
            } if self.folded_cond(cond).is_some() => End::BranchCond {
                c: self.folded_cond(cond)?,
                taken,
                not_taken,
            },
            Terminal::Branch {
                cond,
                taken,
                not_taken,
            } => End::Branch {
                c: self.src(cond)?,
                taken,
                not_taken,
            },
            Terminal::Indirect { target } => End::Indirect {
                s: self.src(target)?,
            },
            t => End::Exit(t),
        };
        if self.const_base + self.consts.len() > FRAME {
            return None;
        }
        let mut regs_in = 0u32;
        let mut regs_out = 0u32;
        for r in 0..REGS as S {
            let bit = 1u32 << r;
            if ops.iter().any(|o| o.touches(r)) {
                regs_in |= bit;
            }
            if ops.iter_mut().any(|o| o.dst_mut().is_some_and(|d| *d == r)) {
                regs_out |= bit;
            }
        }
        match end {
            End::Branch { c: x, .. } | End::Indirect { s: x } if (x as usize) < REGS => {
                regs_in |= 1 << x;
            }
            _ => {}
        }
        Some(Prog {
            regs_in,
            regs_out,
            ops: ops.into(),
            pcs: pcs.into(),
            consts: self.consts.into(),
            const_base: self.const_base,
            calls: calls.into(),
            vcalls: vcalls.into(),
            end,
        })
    }

    /// The (base, offset) slots of the address `addr`: the operands of its folded add, or
    /// the address itself plus a zero constant.
    fn address(&mut self, addr: T) -> Option<(S, S)> {
        let k = addr.0 as usize;
        let j = self.def_at[k] as usize;
        if self.ndefs[k] == 1 && self.fold.get(j) == Some(&Fold::Addr) {
            if let Op::Bin { a, b, .. } = self.b.ops[j] {
                return Some((self.src(a)?, self.src(b)?));
            }
        }
        let base = self.src(addr)?;
        Some((base, self.konst(0)?))
    }
}

fn lower_bin(op: BinOp, w: Width, d: S, a: S, b: S) -> I {
    match (op, w) {
        (BinOp::Add, Width::W64) => I::Add64 { d, a, b },
        (BinOp::Add, Width::W32) => I::Add32 { d, a, b },
        (BinOp::Sub, Width::W64) => I::Sub64 { d, a, b },
        (BinOp::Sub, Width::W32) => I::Sub32 { d, a, b },
        (BinOp::And, Width::W64) => I::And64 { d, a, b },
        (BinOp::And, Width::W32) => I::And32 { d, a, b },
        (BinOp::Or, Width::W64) => I::Or64 { d, a, b },
        (BinOp::Or, Width::W32) => I::Or32 { d, a, b },
        (BinOp::Xor, Width::W64) => I::Xor64 { d, a, b },
        (BinOp::Xor, Width::W32) => I::Xor32 { d, a, b },
        (BinOp::Shl, Width::W64) => I::Shl64 { d, a, b },
        (BinOp::Lsr, Width::W64) => I::Lsr64 { d, a, b },
        (BinOp::Asr, Width::W64) => I::Asr64 { d, a, b },
        (BinOp::Mul, Width::W64) => I::Mul64 { d, a, b },
        (BinOp::Eq, Width::W64) => I::Eq64 { d, a, b },
        (BinOp::Ne, Width::W64) => I::Ne64 { d, a, b },
        _ => I::Bin { op, w, d, a, b },
    }
}

/// The memory's inline TLB, probed before calling it for loads and stores.
#[derive(Clone, Copy)]
struct Fast {
    tlb: Option<TlbFast>,
}

impl Fast {
    /// The host address for an access of `size` bytes at `va` from `el` if the inline TLB
    /// has its page for this access (see [`TlbFast`]).
    #[inline(always)]
    fn host(&self, write: bool, va: u64, size: u8, el: u8) -> Option<usize> {
        let t = self.tlb.as_ref()?;
        let idx = (va >> TlbFast::PAGE_SHIFT) as usize & ((1usize << t.index_bits) - 1);
        let table = if write { t.write } else { t.read };
        let e = (table + idx * TlbFast::ENTRY) as *const AtomicU64;
        let want = TlbFast::tag(va.wrapping_add(size as u64 - 1), el);
        // SAFETY: the memory keeps its tables (`1 << index_bits` entries of two u64 words) at
        // this stable address for as long as it lives, and it outlives this block run; the
        // index is masked to the table.
        let tag = unsafe { (*e).load(Ordering::Acquire) };
        if tag != want {
            return None;
        }
        // SAFETY: as above; the addend is the entry's second word.
        let addend = unsafe { (*e.add(1)).load(Ordering::Relaxed) };
        Some(va.wrapping_add(addend) as usize)
    }
}

/// Run `p` once. `frame` is scratch reused across calls (grown to [`FRAME`] slots once).
pub fn run_prog<M: Mem + AsDynMem + ?Sized>(
    p: &Prog,
    st: &mut CpuState,
    mem: &mut M,
    frame: &mut Vec<u64>,
) -> BlockExit {
    if frame.len() < FRAME {
        frame.resize(FRAME, 0);
    }
    let Ok(f) = <&mut [u64; FRAME]>::try_from(&mut frame[..FRAME]) else {
        unreachable!("the frame has FRAME slots")
    };
    regs_in(f, st, p.regs_in);
    let cb = p.const_base;
    for (k, &c) in p.consts.iter().enumerate() {
        f[ix((cb + k) as S)] = c;
    }
    let fast = Fast {
        tlb: mem.tlb_fast(),
    };
    let exit = run_ops(p, f, st, mem, fast);
    regs_out(f, st, p.regs_out);
    exit
}

/// Copy the registers of `mask` from the state into the frame.
#[inline(always)]
fn regs_in(f: &mut [u64; FRAME], st: &CpuState, mask: u32) {
    if mask.count_ones() > 12 {
        f[..REGS].copy_from_slice(&st.x);
        return;
    }
    let mut m = mask;
    while m != 0 {
        let r = m.trailing_zeros() as usize & (REGS - 1);
        f[r] = st.x[r];
        m &= m - 1;
    }
}

/// Copy the registers of `mask` from the frame back to the state.
#[inline(always)]
fn regs_out(f: &[u64; FRAME], st: &mut CpuState, mask: u32) {
    if mask.count_ones() > 12 {
        st.x.copy_from_slice(&f[..REGS]);
        return;
    }
    let mut m = mask;
    while m != 0 {
        let r = m.trailing_zeros() as usize & (REGS - 1);
        st.x[r] = f[r];
        m &= m - 1;
    }
}

#[inline(always)]
fn ix(s: S) -> usize {
    s as usize & (FRAME - 1)
}

fn run_ops<M: Mem + AsDynMem + ?Sized>(
    p: &Prog,
    f: &mut [u64; FRAME],
    st: &mut CpuState,
    mem: &mut M,
    fast: Fast,
) -> BlockExit {
    macro_rules! r {
        ($s:expr) => {
            f[ix($s)]
        };
    }
    macro_rules! fault {
        ($i:expr, $e:expr) => {{
            st.pc = p.pcs.get($i).copied().unwrap_or(st.pc);
            return $e;
        }};
    }
    macro_rules! load {
        ($i:expr, $d:expr, $base:expr, $off:expr, $size:expr, $ext:expr) => {{
            let a = r!($base).wrapping_add(r!($off));
            let v = match fast.host(false, a, $size, st.sys.el) {
                // SAFETY: an inline-TLB hit is a RAM page the current regime lets this EL
                // read, and the access does not cross it (see `TlbFast`).
                Some(h) => unsafe { host_load(h as *const u8, $size) },
                None => match mem.read(a, $size) {
                    Ok(v) => v,
                    Err(e) => fault!($i, BlockExit::Fault(e)),
                },
            };
            #[allow(clippy::redundant_closure_call)]
            let v = ($ext)(v);
            r!($d) = v;
        }};
    }
    macro_rules! store {
        ($i:expr, $s:expr, $base:expr, $off:expr, $size:expr) => {{
            let a = r!($base).wrapping_add(r!($off));
            let v = r!($s);
            match fast.host(true, a, $size, st.sys.el) {
                // SAFETY: as for loads, for a page this EL may write.
                Some(h) => unsafe { host_store(h as *mut u8, $size, v) },
                None => {
                    if let Err(e) = mem.write(a, $size, v) {
                        fault!($i, BlockExit::Fault(e))
                    }
                }
            }
        }};
    }
    for (i, op) in p.ops.iter().enumerate() {
        match *op {
            I::Mov { d, s } => r!(d) = r!(s),
            I::Add64 { d, a, b } => r!(d) = r!(a).wrapping_add(r!(b)),
            I::Add32 { d, a, b } => r!(d) = (r!(a) as u32).wrapping_add(r!(b) as u32) as u64,
            I::Sub64 { d, a, b } => r!(d) = r!(a).wrapping_sub(r!(b)),
            I::Sub32 { d, a, b } => r!(d) = (r!(a) as u32).wrapping_sub(r!(b) as u32) as u64,
            I::And64 { d, a, b } => r!(d) = r!(a) & r!(b),
            I::And32 { d, a, b } => r!(d) = (r!(a) & r!(b)) as u32 as u64,
            I::Or64 { d, a, b } => r!(d) = r!(a) | r!(b),
            I::Or32 { d, a, b } => r!(d) = (r!(a) | r!(b)) as u32 as u64,
            I::Xor64 { d, a, b } => r!(d) = r!(a) ^ r!(b),
            I::Xor32 { d, a, b } => r!(d) = (r!(a) ^ r!(b)) as u32 as u64,
            I::Shl64 { d, a, b } => r!(d) = r!(a) << (r!(b) & 63),
            I::Lsr64 { d, a, b } => r!(d) = r!(a) >> (r!(b) & 63),
            I::Asr64 { d, a, b } => r!(d) = ((r!(a) as i64) >> (r!(b) & 63)) as u64,
            I::Mul64 { d, a, b } => r!(d) = r!(a).wrapping_mul(r!(b)),
            I::Eq64 { d, a, b } => r!(d) = (r!(a) == r!(b)) as u64,
            I::Ne64 { d, a, b } => r!(d) = (r!(a) != r!(b)) as u64,
            I::Bin { op, w, d, a, b } => r!(d) = bin(op, w, r!(a), r!(b)),
            I::Zext32 { d, a } => r!(d) = r!(a) as u32 as u64,
            I::Un { op, w, d, a } => r!(d) = un(op, w, r!(a)),
            I::AddF64 { d, a, b, c } => {
                let (v, fl) = add_with_flags(Width::W64, r!(a), r!(b), c as u64);
                r!(d) = v;
                st.nzcv = fl;
            }
            I::AddF32 { d, a, b, c } => {
                let (v, fl) = add_with_flags(Width::W32, r!(a), r!(b), c as u64);
                r!(d) = v;
                st.nzcv = fl;
            }
            I::SubF64 { d, a, b, c } => {
                let (v, fl) = add_with_flags(Width::W64, r!(a), !r!(b), c as u64);
                r!(d) = v;
                st.nzcv = fl;
            }
            I::SubF32 { d, a, b, c } => {
                let (v, fl) = add_with_flags(Width::W32, r!(a), !r!(b), c as u64);
                r!(d) = v;
                st.nzcv = fl;
            }
            I::AddFC { w, d, a, b } => {
                let c = (st.nzcv >> 29) as u64 & 1;
                let (v, fl) = add_with_flags(w, r!(a), r!(b), c);
                r!(d) = v;
                st.nzcv = fl;
            }
            I::Adc { w, d, a, b } => {
                let c = (st.nzcv >> 29) as u64 & 1;
                r!(d) = mask(w, r!(a).wrapping_add(r!(b)).wrapping_add(c));
            }
            I::Logic64 { s } => {
                let v = r!(s);
                st.nzcv =
                    if (v as i64) < 0 { nzcv::N } else { 0 } | if v == 0 { nzcv::Z } else { 0 };
            }
            I::Logic32 { s } => {
                let v = r!(s) as u32;
                st.nzcv =
                    if (v as i32) < 0 { nzcv::N } else { 0 } | if v == 0 { nzcv::Z } else { 0 };
            }
            I::GetNzcv { d } => r!(d) = st.nzcv as u64,
            I::SetNzcv { s } => st.nzcv = (r!(s) as u32) & 0xf000_0000,
            I::Cond { d, cond } => r!(d) = cond_holds(cond, st.nzcv) as u64,
            I::Select { d, c, a, b } => r!(d) = if r!(c) != 0 { r!(a) } else { r!(b) },
            I::SelCond { d, c, a, b } => r!(d) = if cond_holds(c, st.nzcv) { r!(a) } else { r!(b) },
            I::Ld8 { d, base, off } => load!(i, d, base, off, 1, |v| v),
            I::Ld16 { d, base, off } => load!(i, d, base, off, 2, |v| v),
            I::Ld32 { d, base, off } => load!(i, d, base, off, 4, |v| v),
            I::Ld64 { d, base, off } => load!(i, d, base, off, 8, |v| v),
            I::Ld8s { d, base, off } => load!(i, d, base, off, 1, |v| v as i8 as i64 as u64),
            I::Ld16s { d, base, off } => load!(i, d, base, off, 2, |v| v as i16 as i64 as u64),
            I::Ld32s { d, base, off } => load!(i, d, base, off, 4, |v| v as i32 as i64 as u64),
            I::St8 { s, base, off } => store!(i, s, base, off, 1),
            I::St16 { s, base, off } => store!(i, s, base, off, 2),
            I::St32 { s, base, off } => store!(i, s, base, off, 4),
            I::St64 { s, base, off } => store!(i, s, base, off, 8),
            I::LoadV {
                reg,
                size,
                base,
                off,
            } => {
                let a = r!(base).wrapping_add(r!(off));
                let v = if size == 16 {
                    mem.read128(a)
                } else {
                    mem.read(a, size).map(u128::from)
                };
                match v {
                    Ok(v) => st.v[reg as usize & 31] = v,
                    Err(e) => fault!(i, BlockExit::Fault(e)),
                }
            }
            I::StoreV {
                reg,
                size,
                base,
                off,
            } => {
                let a = r!(base).wrapping_add(r!(off));
                let v = st.v[reg as usize & 31];
                let res = if size == 16 {
                    mem.write128(a, v)
                } else {
                    mem.write(a, size, v as u64)
                };
                if let Err(e) = res {
                    fault!(i, BlockExit::Fault(e))
                }
            }
            I::LoadExcl { d, hi, a, size } => match load_exclusive(st, mem, r!(a), size) {
                Ok(v) => {
                    r!(d) = v as u64;
                    if let Some(h) = hi {
                        r!(h) = (v >> 64) as u64;
                    }
                }
                Err(e) => fault!(i, BlockExit::Fault(e)),
            },
            I::StoreExcl {
                status,
                a,
                s,
                hi,
                size,
            } => {
                let h = hi.map_or(0, |h| r!(h));
                match store_exclusive(st, mem, r!(a), size, r!(s), h) {
                    Ok(failed) => r!(status) = failed,
                    Err(e) => fault!(i, BlockExit::Fault(e)),
                }
            }
            I::ClearExcl => st.monitor.valid = false,
            I::CheckAlign { a, size, write } => {
                let a = r!(a);
                if !a.is_multiple_of(size as u64) {
                    let acc = if write { Access::Write } else { Access::Read };
                    fault!(
                        i,
                        BlockExit::Fault(MemFault::new(a, acc, FaultKind::Alignment))
                    )
                }
            }
            I::Fence => std::sync::atomic::fence(Ordering::SeqCst),
            I::GetVElem { d, reg, esize, idx } => {
                r!(d) = v_elem(st.v[reg as usize & 31], esize, idx)
            }
            I::SetVElem { reg, s, esize, idx } => {
                let sh = esize as u32 * 8 * idx as u32;
                let m = size_mask(esize) << sh;
                let v = &mut st.v[reg as usize & 31];
                *v = (*v & !m) | ((u128::from(r!(s)) << sh) & m);
            }
            I::SetVScalar { reg, s, esize } => {
                st.v[reg as usize & 31] = u128::from(r!(s)) & size_mask(esize);
            }
            I::Call { i: k } => {
                let Some(&(h, insn)) = p.calls.get(k as usize) else {
                    continue;
                };
                // Helpers see (and may change) the registers.
                regs_out(f, st, p.regs_out);
                let res = h(st, mem.as_dyn(), insn);
                f[..REGS].copy_from_slice(&st.x);
                if let Err(e) = res {
                    fault!(
                        i,
                        match e {
                            HelperError::Mem(m) => BlockExit::Fault(m),
                            HelperError::Undefined => BlockExit::Undefined(insn),
                        }
                    )
                }
            }
            I::CallValue { i: k, d, a, b, c } => {
                if let Some(h) = p.vcalls.get(k as usize) {
                    r!(d) = h(st, r!(a), r!(b), r!(c));
                }
            }
        }
    }
    match p.end {
        End::Jump(pc) => {
            st.pc = pc;
            BlockExit::Continue
        }
        End::Branch {
            c,
            taken,
            not_taken,
        } => {
            st.pc = if r!(c) != 0 { taken } else { not_taken };
            BlockExit::Continue
        }
        End::BranchCond {
            c,
            taken,
            not_taken,
        } => {
            st.pc = if cond_holds(c, st.nzcv) {
                taken
            } else {
                not_taken
            };
            BlockExit::Continue
        }
        End::Indirect { s } => {
            st.pc = r!(s);
            BlockExit::Continue
        }
        End::Exit(t) => super::exit(t, st, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::a64::translate_block;
    use crate::engine::{Cpu, EngineKind, Stop};
    use crate::testing::{FlatMem, CODE, DATA};

    fn lowered(words: &[u32]) -> Prog {
        let mut m = FlatMem::new(CODE, 4096);
        m.load_words(CODE, words);
        Prog::build(&translate_block(&mut m, CODE)).expect("small blocks fit a frame")
    }

    #[test]
    fn common_instructions_lower_to_one_op_each() {
        // add x0, x0, #1; ldr x2, [x1, #8]; subs w7, w8, #4; csel x3, x4, x5, eq; b.ne .-16
        let p = lowered(&[
            0x9100_0400,
            0xf940_0422,
            0x7100_1107,
            0x9a85_0083,
            0x54ff_ff81,
        ]);
        assert_eq!(p.len(), 4, "{:?}", p.ops);
        assert!(matches!(p.end, End::BranchCond { c: 1, .. }), "{:?}", p.end);
    }

    #[test]
    fn faulting_post_index_load_leaves_its_registers_unchanged() {
        // add x5, x5, #1; ldr x3, [x0], #16; brk #0
        let mut m = FlatMem::new(CODE, 128 << 10);
        m.load_words(CODE, &[0x9100_04a5, 0xf841_0403, 0xd420_0000]);
        let mut cpu = Cpu::with_engine(crate::model::CORTEX_A72, EngineKind::Interp);
        cpu.state.pc = CODE;
        cpu.state.x[0] = 0x7000_0000; // unmapped
        cpu.state.x[3] = 33;
        assert!(matches!(cpu.run(&mut m), Stop::Fault(_)));
        assert_eq!(cpu.state.pc, CODE + 4, "the fault is reported at the load");
        assert_eq!(
            cpu.state.x[5], 1,
            "the instruction before the load completed"
        );
        assert_eq!(cpu.state.x[0], 0x7000_0000, "no base writeback");
        assert_eq!(cpu.state.x[3], 33, "no load result");
        cpu.state.x[0] = DATA;
        cpu.state.pc = CODE + 4;
        assert_eq!(cpu.run(&mut m), Stop::Brk(0));
        assert_eq!((cpu.state.x[0], cpu.state.x[3]), (DATA + 16, 0));
    }
}
