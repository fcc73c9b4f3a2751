//! Cranelift IR for one block: the emitter that turns IR ops into Cranelift instructions,
//! keeping guest registers and flags in SSA values between exits.

use super::runtime::{self, JitCtx};
use super::{block_signature, JCACHE_ENTRIES, LOOKUP_ENTRIES};
use super::{EXIT_BRK, EXIT_CONTINUE, EXIT_FAULT, EXIT_SVC, EXIT_UNDEFINED, EXIT_WAIT};
use crate::ir::{BinOp, Block, Carry, Op, Terminal, UnOp, Width, T};
use crate::mem::{FastMem, TlbFast};
use crate::state::CpuState;
use cranelift_codegen::ir::condcodes::{CondCode, IntCC};
use cranelift_codegen::ir::{
    types, AbiParam, BlockArg, InstBuilder, InstructionData, MemFlagsData, Opcode, SigRef,
    Signature, Type, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::FunctionBuilder;
use std::mem::offset_of;
use std::sync::atomic::AtomicUsize;

const X_OFF: i32 = offset_of!(CpuState, x) as i32;
const V_OFF: i32 = offset_of!(CpuState, v) as i32;
const PC_OFF: i32 = offset_of!(CpuState, pc) as i32;
const NZCV_OFF: i32 = offset_of!(CpuState, nzcv) as i32;
const PENDING_OFF: i32 = offset_of!(CpuState, pending) as i32;
const EL_OFF: i32 = (offset_of!(CpuState, sys) + offset_of!(crate::sys::SysRegs, el)) as i32;
const FAILED_OFF: i32 = offset_of!(JitCtx<'static>, failed) as i32;
const RETIRED_OFF: i32 = offset_of!(CpuState, retired) as i32;
const LIMIT_OFF: i32 = offset_of!(JitCtx<'static>, limit) as i32;
const SCRATCH_OFF: i32 = offset_of!(JitCtx<'static>, scratch) as i32;

/// The host functions compiled code calls, by signature. Signatures are imported into the
/// function only when used (Cranelift computes the ABI of every imported signature).
#[derive(Clone, Copy)]
enum Sig {
    Load,
    Store,
    Vmem,
    LoadExcl,
    StoreExcl,
    Align,
    Call,
    CallValue,
}

impl Sig {
    /// Parameter types after the context pointer, and the return type.
    fn shape(self, ptr: Type) -> (&'static [Type], Type) {
        const I32: Type = types::I32;
        const I64: Type = types::I64;
        match self {
            Sig::Load => (&[I64, I32], I64),
            Sig::Store => (&[I64, I32, I64], I32),
            Sig::Vmem => (&[I32, I64, I32], I32),
            Sig::LoadExcl => (&[I64, I32], I32),
            Sig::StoreExcl => (&[I64, I32, I64, I64], I32),
            Sig::Align => (&[I64, I32], I32),
            // The helper's address is pointer-sized: the host is 64-bit.
            Sig::Call => {
                debug_assert_eq!(ptr, I64);
                (&[I64, I32], I32)
            }
            Sig::CallValue => (&[I64, I64, I64, I64], I64),
        }
    }
}

pub(super) struct Emitter<'a> {
    pub(super) fb: FunctionBuilder<'a>,
    ptr: Type,
    st: Value,
    cx: Value,
    temps: Vec<Option<Value>>,
    regs: [Option<Value>; 32],
    dirty: u32,
    /// The packed NZCV (an i32, bits 31..28), once computed or loaded.
    nzcv: Option<Value>,
    /// How the current flags were computed, while that is known: conditions are read from
    /// it directly, and the packed form is built only when something needs it.
    lazy: Option<Flags>,
    nzcv_dirty: bool,
    /// The shared fault exit (parameter: the faulting pc), made on first use.
    fault: Option<cranelift_codegen::ir::Block>,
    /// Constants already made in the current CLIF block: (type, value, SSA value).
    consts: Vec<(Type, u64, Value)>,
    /// Imported signatures by [`Sig`], and the tail-call one.
    sigs: [Option<SigRef>; 8],
    tail_sig: Option<SigRef>,
    host_cc: CallConv,
    fast: Option<FastMem>,
    /// The inline TLB (system mode; used when `fast` is None).
    pub(super) tlb: Option<TlbFast>,
    /// The low bits of this EL's inline-TLB tags ([`TlbFast::tag`]), once loaded.
    el_tag: Option<Value>,
    /// (address of this block's exit-slot pair, address of the interrupt flag).
    pub(super) chain: Option<(usize, usize)>,
    /// (address of the indirect-branch table, address of the interrupt flag).
    pub(super) lookup: Option<(usize, usize)>,
    /// (address of the jump cache, address of the exec epoch, address of the interrupt flag).
    pub(super) jcache: Option<(usize, usize, usize)>,
    /// The block calls a helper (which may request an instruction-cache flush).
    has_call: bool,
    /// Chained exits also stop at [`JitCtx::limit`] (icount runs).
    pub(super) budgeted: bool,
    /// `state.retired` after this block's instructions, once counted.
    retired: Option<Value>,
    /// The region's blocks: (guest pc, CLIF block of its start), the head first. A
    /// known-target exit to one of them jumps there inside the function.
    members: Vec<(u64, cranelift_codegen::ir::Block)>,
    /// The member being emitted.
    cur: usize,
    /// The known targets outside the region, in exit-slot order (slot k at
    /// `chain.0 + 8 * k`).
    pub(super) targets: Vec<u64>,
    /// Address of the vCPU's interrupt flag.
    pub(super) interrupt: usize,
}

/// How a chained exit goes on when it may.
#[derive(Clone, Copy)]
enum Next {
    /// Tail-call compiled code (pc already stored).
    Tail(Value),
    /// Jump to a region member's start ([`Emitter::members`]); `pc` (the member's) is
    /// stored only if the exit returns to the dispatcher instead.
    Loop {
        head: cranelift_codegen::ir::Block,
        pc: Value,
    },
}

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// How the current NZCV was computed, at the operation's width (i32 or i64 values).
#[derive(Debug, Clone, Copy)]
enum Flags {
    /// `r = a - m` (the IR's `a + !m + 1`).
    Sub { a: Value, m: Value, r: Value },
    /// `r = a + b` (carry in 0).
    Add { a: Value, b: Value, r: Value },
    /// N and Z of `r`; C and V clear.
    Logic { r: Value },
}

impl<'a> Emitter<'a> {
    pub(super) fn new(
        mut fb: FunctionBuilder<'a>,
        ptr: Type,
        ntemps: usize,
        fast: Option<FastMem>,
        host_cc: CallConv,
    ) -> Self {
        let entry = fb.create_block();
        fb.append_block_params_for_function_params(entry);
        fb.switch_to_block(entry);
        fb.seal_block(entry);
        let st = fb.block_params(entry)[0];
        let cx = fb.block_params(entry)[1];
        Self {
            fb,
            ptr,
            st,
            cx,
            chain: None,
            lookup: None,
            jcache: None,
            has_call: false,
            budgeted: false,
            retired: None,
            members: Vec::new(),
            cur: 0,
            targets: Vec::new(),
            interrupt: 0,
            tail_sig: None,
            host_cc,
            temps: vec![None; ntemps],
            regs: [None; 32],
            dirty: 0,
            nzcv: None,
            lazy: None,
            nzcv_dirty: false,
            fault: None,
            consts: Vec::new(),
            sigs: [None; 8],
            fast,
            tlb: None,
            el_tag: None,
        }
    }

    /// Write dirty state back without forgetting it is dirty: for side paths that may leave
    /// the block while the main path keeps its registers in SSA values.
    fn spill(&mut self) {
        let (dirty, nd, nzcv, lazy) = (self.dirty, self.nzcv_dirty, self.nzcv, self.lazy);
        self.flush();
        self.dirty = dirty;
        self.nzcv_dirty = nd;
        self.nzcv = nzcv;
        self.lazy = lazy;
    }

    /// Build the packed flags on the main path if a side path is about to need them, so
    /// they are built once rather than on every side path.
    fn settle_flags(&mut self) {
        if self.nzcv_dirty {
            self.get_nzcv();
        }
    }

    /// Continue emitting into `b` (a fresh block: constants of the previous one are not
    /// visible there).
    fn switch(&mut self, b: cranelift_codegen::ir::Block) {
        self.fb.switch_to_block(b);
        self.consts.clear();
    }

    /// A constant of type `ty` (bits above its width dropped), shared within the block.
    fn k(&mut self, ty: Type, v: i64) -> Value {
        let v = match ty.bits() {
            64 => v as u64,
            n => v as u64 & ((1u64 << n) - 1),
        };
        if let Some(&(_, _, c)) = self.consts.iter().find(|&&(t, x, _)| t == ty && x == v) {
            return c;
        }
        let c = self.fb.ins().iconst(ty, v as i64);
        self.consts.push((ty, v, c));
        c
    }

    fn ty(&self, v: Value) -> Type {
        self.fb.func.dfg.value_type(v)
    }

    /// The constant `v` was made from, if it is one.
    fn const_of(&self, v: Value) -> Option<u64> {
        let dfg = &self.fb.func.dfg;
        let inst = dfg.value_def(v).inst()?;
        match dfg.insts[inst] {
            InstructionData::UnaryImm {
                opcode: Opcode::Iconst,
                imm,
            } => Some(imm.bits() as u64),
            _ => None,
        }
    }

    /// `x` if `v` is `bnot x`.
    fn not_of(&self, v: Value) -> Option<Value> {
        let dfg = &self.fb.func.dfg;
        let inst = dfg.value_def(v).inst()?;
        match dfg.insts[inst] {
            InstructionData::Unary {
                opcode: Opcode::Bnot,
                arg,
            } => Some(arg),
            _ => None,
        }
    }

    /// `x` if `v` is `uextend.i64 x` of an i32.
    fn unextended(&self, v: Value) -> Option<Value> {
        let dfg = &self.fb.func.dfg;
        let inst = dfg.value_def(v).inst()?;
        match dfg.insts[inst] {
            InstructionData::Unary {
                opcode: Opcode::Uextend,
                arg,
            } if dfg.value_type(arg) == types::I32 => Some(arg),
            _ => None,
        }
    }

    fn ushr_k(&mut self, x: Value, k: i64) -> Value {
        let c = self.k(self.ty(x), k);
        self.fb.ins().ushr(x, c)
    }

    fn ishl_k(&mut self, x: Value, k: i64) -> Value {
        let c = self.k(self.ty(x), k);
        self.fb.ins().ishl(x, c)
    }

    fn rotl_k(&mut self, x: Value, k: i64) -> Value {
        let c = self.k(self.ty(x), k);
        self.fb.ins().rotl(x, c)
    }

    fn band_k(&mut self, x: Value, k: i64) -> Value {
        let c = self.k(self.ty(x), k);
        self.fb.ins().band(x, c)
    }

    fn bor_k(&mut self, x: Value, k: i64) -> Value {
        let c = self.k(self.ty(x), k);
        self.fb.ins().bor(x, c)
    }

    fn bxor_k(&mut self, x: Value, k: i64) -> Value {
        let c = self.k(self.ty(x), k);
        self.fb.ins().bxor(x, c)
    }

    fn iadd_k(&mut self, x: Value, k: i64) -> Value {
        if k == 0 {
            return x;
        }
        let c = self.k(self.ty(x), k);
        self.fb.ins().iadd(x, c)
    }

    fn icmp_k(&mut self, cc: IntCC, x: Value, k: i64) -> Value {
        let c = self.k(self.ty(x), k);
        self.fb.ins().icmp(cc, x, c)
    }

    /// Whether loads and stores have an inline fast path.
    fn has_fast(&self) -> bool {
        self.fast.is_some() || self.tlb.is_some()
    }

    /// The inline fast path of a `size`-byte access at `a` (`need` is [`FastMem::READ`] or
    /// [`FastMem::WRITE`]): continues in a new block (switched to) with the host address
    /// returned when the access can go straight to host memory, else branches to `slow`.
    fn fast_host(
        &mut self,
        a: Value,
        size: u8,
        need: u8,
        slow: cranelift_codegen::ir::Block,
    ) -> Value {
        match (self.fast, self.tlb) {
            (Some(fm), _) => self.fast_check(fm, a, size, need, slow),
            (None, Some(tf)) => self.tlb_check(tf, a, size, need == FastMem::WRITE, slow),
            (None, None) => unreachable!("fast_host without a fast path"),
        }
    }

    /// The inline TLB probe: index by `a`'s page, hit when the entry's tag is that of the
    /// page of the access's last byte at the current EL (so an access crossing a page never
    /// hits), host address = `a` + the entry's addend.
    fn tlb_check(
        &mut self,
        tf: TlbFast,
        a: Value,
        size: u8,
        write: bool,
        slow: cranelift_codegen::ir::Block,
    ) -> Value {
        let el_tag = match self.el_tag {
            Some(v) => v,
            None => {
                let el = self.fb.ins().uload8(types::I64, flags(), self.st, EL_OFF);
                let el = self.ishl_k(el, 1);
                let v = self.bor_k(el, 1);
                self.el_tag = Some(v);
                v
            }
        };
        let mask = (1i64 << tf.index_bits) - 1;
        // ((a >> PAGE_SHIFT) & mask) * ENTRY, as one shift and one mask.
        let esh = TlbFast::ENTRY.trailing_zeros();
        let off = self.ushr_k(a, (TlbFast::PAGE_SHIFT - esh) as i64);
        let off = self.band_k(off, mask << esh);
        let table = if write { tf.write } else { tf.read };
        let base = self.k(self.ptr, table as i64);
        let entry = self.fb.ins().iadd(base, off);
        let tag = self.fb.ins().load(types::I64, flags(), entry, 0);
        let last = self.iadd_k(a, size as i64 - 1);
        let page = self.band_k(last, !0xfffi64);
        let want = self.fb.ins().bor(page, el_tag);
        let hit = self.fb.ins().icmp(IntCC::Equal, tag, want);
        let fast = self.fb.create_block();
        self.fb.ins().brif(hit, fast, &[], slow, &[]);
        self.fb.seal_block(fast);
        self.switch(fast);
        let addend = self.fb.ins().load(types::I64, flags(), entry, 8);
        self.fb.ins().iadd(a, addend)
    }

    /// With host checks ([`FastMem::host_checks`]), the host address of a `size`-byte access
    /// at `a`, without a branch: the host faults on whatever the guest may not access, and
    /// an address outside the window is sent to the guard after it, which faults too.
    fn guarded_host(&mut self, a: Value, size: u8) -> Option<Value> {
        let fm = self.fast.filter(|f| f.host_checks)?;
        let inside = self.icmp_k(
            IntCC::UnsignedLessThanOrEqual,
            a,
            (fm.limit - size as u64) as i64,
        );
        let guard = self.iconst(fm.limit);
        let a = self.fb.ins().select(inside, a, guard);
        let base = self.k(self.ptr, fm.base as i64);
        Some(self.fb.ins().iadd(base, a))
    }

    fn host_checked(&self) -> bool {
        self.fast.is_some_and(|f| f.host_checks)
    }

    /// The load-exclusive helper: (status, the loaded value's low 64 bits; the high ones are
    /// at `SCRATCH_OFF + 8`).
    fn load_exclusive_call(&mut self, a: Value, size: u8) -> (Value, Value) {
        let sz = self.i32c(size as u32);
        let s = self.call(
            Sig::LoadExcl,
            runtime::jit_load_excl as *const () as usize,
            &[a, sz],
        );
        (s, self.scratch0())
    }

    /// The store-exclusive helper: (status, the instruction's status register value).
    fn store_exclusive_call(&mut self, a: Value, size: u8, lo: Value, hi: Value) -> (Value, Value) {
        let sz = self.i32c(size as u32);
        let s = self.call(
            Sig::StoreExcl,
            runtime::jit_store_excl as *const () as usize,
            &[a, sz, lo, hi],
        );
        (s, self.scratch0())
    }

    /// The first word of the context's scratch, where helpers leave a result.
    fn scratch0(&mut self) -> Value {
        self.fb
            .ins()
            .load(types::I64, flags(), self.cx, SCRATCH_OFF)
    }

    /// Offset in the state of a field of the exclusive monitor.
    fn monitor_off(field: usize) -> i32 {
        (offset_of!(CpuState, monitor) + field) as i32
    }

    /// The start of an inline exclusive: on to a fresh block (switched to) when `a` is
    /// aligned, else to the returned cold `slow` block; `join` takes the result (one I64).
    fn exclusive_split(
        &mut self,
        a: Value,
        size: u8,
    ) -> (cranelift_codegen::ir::Block, cranelift_codegen::ir::Block) {
        self.settle_flags();
        let (slow, fast, join) = (
            self.fb.create_block(),
            self.fb.create_block(),
            self.fb.create_block(),
        );
        self.fb.set_cold_block(slow);
        self.fb.append_block_param(join, types::I64);
        let misaligned = self.band_k(a, size as i64 - 1);
        self.fb.ins().brif(misaligned, slow, &[], fast, &[]);
        self.fb.seal_block(fast);
        self.switch(fast);
        (slow, join)
    }

    /// LDXR & co. (up to 8 bytes) with host checks: an aligned access loads and arms the
    /// monitor inline; a misaligned one takes the helper, which raises the alignment fault.
    fn load_exclusive_inline(&mut self, a: Value, size: u8, pc: u64) -> Value {
        use crate::state::Monitor;
        let (slow, join) = self.exclusive_split(a, size);
        let host = self.guarded_host(a, size).expect("host checks");
        let v = self.host_load(host, size, false);
        let one = self.k(types::I8, 1);
        let sz = self.k(types::I8, size as i64);
        let zero = self.iconst(0);
        let st = self.st;
        let ins = |e: &mut Self, v: Value, field: usize| {
            e.fb.ins().store(flags(), v, st, Self::monitor_off(field));
        };
        ins(self, a, offset_of!(Monitor, addr));
        ins(self, sz, offset_of!(Monitor, size));
        ins(self, v, offset_of!(Monitor, value));
        ins(self, zero, offset_of!(Monitor, value) + 8);
        ins(self, one, offset_of!(Monitor, valid));
        self.fb.ins().jump(join, &[BlockArg::Value(v)]);
        self.fb.seal_block(slow);
        self.switch(slow);
        self.spill();
        let (s, lo) = self.load_exclusive_call(a, size);
        self.check_then(s, pc, join, &[BlockArg::Value(lo)]);
        self.fb.seal_block(join);
        self.switch(join);
        self.fb.block_params(join)[0]
    }

    /// STXR & co. (up to 8 bytes) with host checks: disarm the monitor; if it was armed for
    /// this address and size, compare-and-swap the value the load saw for the new one.
    /// Status 0 on success, 1 on failure. A misaligned access takes the helper.
    fn store_exclusive_inline(&mut self, a: Value, v: Value, size: u8, pc: u64) -> Value {
        use crate::state::Monitor;
        let (slow, join) = self.exclusive_split(a, size);
        let cas = self.fb.create_block();
        let st = self.st;
        let get = |e: &mut Self, ty: Type, field: usize| {
            e.fb.ins().load(ty, flags(), st, Self::monitor_off(field))
        };
        let valid = get(self, types::I8, offset_of!(Monitor, valid));
        let maddr = get(self, types::I64, offset_of!(Monitor, addr));
        let msize = get(self, types::I8, offset_of!(Monitor, size));
        let ty = Self::int_type(size);
        let mval = get(self, ty, offset_of!(Monitor, value));
        let zero8 = self.k(types::I8, 0);
        self.fb.ins().store(
            flags(),
            zero8,
            st,
            Self::monitor_off(offset_of!(Monitor, valid)),
        );
        let same_addr = self.fb.ins().icmp(IntCC::Equal, maddr, a);
        let same_size = self.fb.ins().icmp_imm_u(IntCC::Equal, msize, size as i64);
        let armed = self.fb.ins().icmp_imm_u(IntCC::NotEqual, valid, 0);
        let ok = self.fb.ins().band(same_addr, same_size);
        let ok = self.fb.ins().band(ok, armed);
        let failed = self.iconst(1);
        self.fb
            .ins()
            .brif(ok, cas, &[], join, &[BlockArg::Value(failed)]);
        self.fb.seal_block(cas);
        self.switch(cas);
        let host = self.guarded_host(a, size).expect("host checks");
        let new = if size == 8 {
            v
        } else {
            self.fb.ins().ireduce(ty, v)
        };
        let old = self
            .fb
            .ins()
            .atomic_cas(Self::guest_flags(), host, mval, new);
        let differs = self.fb.ins().icmp(IntCC::NotEqual, old, mval);
        let status = self.fb.ins().uextend(types::I64, differs);
        self.fb.ins().jump(join, &[BlockArg::Value(status)]);
        self.fb.seal_block(slow);
        self.switch(slow);
        self.spill();
        let hi = self.iconst(0);
        let (s, r) = self.store_exclusive_call(a, size, v, hi);
        self.check_then(s, pc, join, &[BlockArg::Value(r)]);
        self.fb.seal_block(join);
        self.switch(join);
        self.fb.block_params(join)[0]
    }

    /// The inline fast path of a `size`-byte access at `a`: branches to the returned block with
    /// the host address as its parameter when the access is inside the window and permitted,
    /// else to `slow`. Returns the fast block (already switched to) and its host address.
    fn fast_check(
        &mut self,
        fm: FastMem,
        a: Value,
        size: u8,
        need: u8,
        slow: cranelift_codegen::ir::Block,
    ) -> Value {
        let fast = self.fb.create_block();
        let in_range = self.icmp_k(
            IntCC::UnsignedLessThanOrEqual,
            a,
            (fm.limit - size as u64) as i64,
        );
        let perm = self.fb.create_block();
        self.fb.ins().brif(in_range, perm, &[], slow, &[]);
        self.fb.seal_block(perm);
        self.switch(perm);
        let perms = self.k(self.ptr, fm.perms as i64);
        let p1 = self.ushr_k(a, FastMem::PAGE_SHIFT as i64);
        let p1 = self.fb.ins().iadd(perms, p1);
        let b1 = self.fb.ins().uload8(types::I32, flags(), p1, 0);
        // A one-byte access is in one page.
        let both = if size > 1 {
            let last = self.iadd_k(a, size as i64 - 1);
            let p2 = self.ushr_k(last, FastMem::PAGE_SHIFT as i64);
            let p2 = self.fb.ins().iadd(perms, p2);
            let b2 = self.fb.ins().uload8(types::I32, flags(), p2, 0);
            self.fb.ins().band(b1, b2)
        } else {
            b1
        };
        let ok = self.band_k(both, need as i64);
        self.fb.ins().brif(ok, fast, &[], slow, &[]);
        self.fb.seal_block(fast);
        self.switch(fast);
        let base = self.k(self.ptr, fm.base as i64);
        self.fb.ins().iadd(base, a)
    }

    fn t(&self, t: T) -> Value {
        self.temps[t.0 as usize].expect("verified IR defines temps before use")
    }

    fn def(&mut self, t: T, v: Value) {
        self.temps[t.0 as usize] = Some(v);
    }

    fn iconst(&mut self, v: u64) -> Value {
        self.k(types::I64, v as i64)
    }

    fn i32c(&mut self, v: u32) -> Value {
        self.k(types::I32, v as i64)
    }

    fn get_reg(&mut self, r: u8) -> Value {
        let r = r as usize & 31;
        if let Some(v) = self.regs[r] {
            return v;
        }
        let v = self
            .fb
            .ins()
            .load(types::I64, flags(), self.st, X_OFF + 8 * r as i32);
        self.regs[r] = Some(v);
        v
    }

    fn set_reg(&mut self, r: u8, v: Value) {
        let r = r as usize & 31;
        self.regs[r] = Some(v);
        self.dirty |= 1 << r;
    }

    /// The packed NZCV: built from [`Flags`] or loaded, on the current (main) path.
    fn get_nzcv(&mut self) -> Value {
        if let Some(v) = self.nzcv {
            return v;
        }
        let v = match self.lazy {
            Some(f) => self.pack_flags(f),
            None => self.fb.ins().load(types::I32, flags(), self.st, NZCV_OFF),
        };
        self.nzcv = Some(v);
        v
    }

    fn set_nzcv(&mut self, v: Value) {
        self.nzcv = Some(v);
        self.lazy = None;
        self.nzcv_dirty = true;
    }

    fn set_lazy(&mut self, f: Flags) {
        self.nzcv = None;
        self.lazy = Some(f);
        self.nzcv_dirty = true;
    }

    /// The packed NZCV of `f`.
    fn pack_flags(&mut self, f: Flags) -> Value {
        let (r, cv) = match f {
            Flags::Sub { a, m, r } => {
                let c = self.fb.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, a, m);
                let (_, v) = self.fb.ins().ssub_overflow(a, m);
                (r, Some((c, v)))
            }
            Flags::Add { a, b, r } => {
                let c = self.fb.ins().icmp(IntCC::UnsignedLessThan, r, a);
                let (_, v) = self.fb.ins().sadd_overflow(a, b);
                (r, Some((c, v)))
            }
            Flags::Logic { r } => (r, None),
        };
        let n = self.icmp_k(IntCC::SignedLessThan, r, 0);
        let z = self.icmp_k(IntCC::Equal, r, 0);
        match cv {
            Some((c, v)) => self.pack_nzcv(n, z, c, v),
            None => {
                let nz = self.fb.ins().iadd(n, n);
                let nz = self.fb.ins().bor(nz, z);
                let nz = self.fb.ins().uextend(types::I32, nz);
                self.ishl_k(nz, 30)
            }
        }
    }

    /// Write dirty registers and flags back to the state.
    fn flush(&mut self) {
        for r in 0..32 {
            if self.dirty & (1 << r) != 0 {
                let v = self.regs[r].expect("dirty register has a value");
                self.fb
                    .ins()
                    .store(flags(), v, self.st, X_OFF + 8 * r as i32);
            }
        }
        self.dirty = 0;
        if self.nzcv_dirty {
            let v = self.get_nzcv();
            self.fb.ins().store(flags(), v, self.st, NZCV_OFF);
            self.nzcv_dirty = false;
        }
    }

    /// Forget cached registers (a helper may have changed any of them).
    fn invalidate(&mut self) {
        self.regs = [None; 32];
        self.nzcv = None;
        self.lazy = None;
        self.el_tag = None;
    }

    fn sig(&mut self, which: Sig) -> SigRef {
        if let Some(s) = self.sigs[which as usize] {
            return s;
        }
        let (params, ret) = which.shape(self.ptr);
        let mut sig = Signature::new(self.host_cc);
        sig.params.push(AbiParam::new(self.ptr));
        sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
        sig.returns.push(AbiParam::new(ret));
        let s = self.fb.import_signature(sig);
        self.sigs[which as usize] = Some(s);
        s
    }

    fn call(&mut self, which: Sig, f: usize, args: &[Value]) -> Value {
        let sig = self.sig(which);
        let fp = self.k(self.ptr, f as i64);
        let mut all = vec![self.cx];
        all.extend_from_slice(args);
        let inst = self.fb.ins().call_indirect(sig, fp, &all);
        self.fb.inst_results(inst)[0]
    }

    /// The shared fault exit, taking the faulting pc.
    fn fault_block(&mut self) -> cranelift_codegen::ir::Block {
        *self.fault.get_or_insert_with(|| {
            let b = self.fb.create_block();
            self.fb.append_block_param(b, types::I64);
            b
        })
    }

    /// Branch to the fault exit (reporting `pc`) if `status` is non-zero.
    fn check(&mut self, status: Value, pc: u64) {
        let cont = self.fb.create_block();
        self.check_then(status, pc, cont, &[]);
        self.fb.seal_block(cont);
        self.switch(cont);
    }

    /// Branch to the fault exit (reporting `pc`) if `status` is non-zero, else to `next`.
    fn check_then(
        &mut self,
        status: Value,
        pc: u64,
        next: cranelift_codegen::ir::Block,
        args: &[BlockArg],
    ) {
        let pcv = self.iconst(pc);
        let fault = self.fault_block();
        self.fb
            .ins()
            .brif(status, fault, &[BlockArg::Value(pcv)], next, args);
    }

    fn narrow(&mut self, w: Width, v: Value) -> Value {
        match w {
            Width::W64 => v,
            Width::W32 => {
                if let Some(x) = self.unextended(v) {
                    x
                } else if let Some(k) = self.const_of(v) {
                    self.k(types::I32, k as i64)
                } else {
                    self.fb.ins().ireduce(types::I32, v)
                }
            }
        }
    }

    fn widen(&mut self, w: Width, v: Value) -> Value {
        match w {
            Width::W64 => v,
            Width::W32 => self.fb.ins().uextend(types::I64, v),
        }
    }

    fn bool64(&mut self, b: Value) -> Value {
        self.fb.ins().uextend(types::I64, b)
    }

    fn bin(&mut self, op: BinOp, w: Width, a: Value, b: Value) -> Value {
        let ty = if w == Width::W32 {
            types::I32
        } else {
            types::I64
        };
        let (a, b) = (self.narrow(w, a), self.narrow(w, b));
        let ins = self.fb.ins();
        let r = match op {
            BinOp::Add => ins.iadd(a, b),
            BinOp::Sub => ins.isub(a, b),
            BinOp::And => ins.band(a, b),
            BinOp::Or => ins.bor(a, b),
            BinOp::Xor => ins.bxor(a, b),
            BinOp::AndNot => ins.band_not(a, b),
            BinOp::OrNot => ins.bor_not(a, b),
            BinOp::XorNot => ins.bxor_not(a, b),
            BinOp::Shl => ins.ishl(a, b),
            BinOp::Lsr => ins.ushr(a, b),
            BinOp::Asr => ins.sshr(a, b),
            BinOp::Ror => ins.rotr(a, b),
            BinOp::Mul => ins.imul(a, b),
            BinOp::UMulH => ins.umulhi(a, b),
            BinOp::SMulH => ins.smulhi(a, b),
            BinOp::UDiv => {
                let zero = self.icmp_k(IntCC::Equal, b, 0);
                let one = self.k(ty, 1);
                let safe = self.fb.ins().select(zero, one, b);
                let q = self.fb.ins().udiv(a, safe);
                let z = self.k(ty, 0);
                self.fb.ins().select(zero, z, q)
            }
            BinOp::SDiv => {
                // x86 traps on x/0 and MIN/-1; A64 gives 0 and MIN.
                let zero = self.icmp_k(IntCC::Equal, b, 0);
                let m1 = self.icmp_k(IntCC::Equal, b, -1);
                let bad = self.fb.ins().bor(zero, m1);
                let one = self.k(ty, 1);
                let safe = self.fb.ins().select(bad, one, b);
                let q = self.fb.ins().sdiv(a, safe);
                let neg = self.fb.ins().ineg(a);
                let q = self.fb.ins().select(m1, neg, q);
                let z = self.k(ty, 0);
                self.fb.ins().select(zero, z, q)
            }
            BinOp::Eq | BinOp::Ne | BinOp::Ult | BinOp::Slt => {
                let cc = match op {
                    BinOp::Eq => IntCC::Equal,
                    BinOp::Ne => IntCC::NotEqual,
                    BinOp::Ult => IntCC::UnsignedLessThan,
                    _ => IntCC::SignedLessThan,
                };
                let c = ins.icmp(cc, a, b);
                return self.bool64(c);
            }
        };
        self.widen(w, r)
    }

    fn un(&mut self, op: UnOp, w: Width, a: Value) -> Value {
        let a = self.narrow(w, a);
        let ty = if w == Width::W32 {
            types::I32
        } else {
            types::I64
        };
        let r = match op {
            UnOp::Not => self.fb.ins().bnot(a),
            UnOp::Neg => self.fb.ins().ineg(a),
            UnOp::Clz => self.fb.ins().clz(a),
            UnOp::Cls => self.fb.ins().cls(a),
            UnOp::Rbit => self.fb.ins().bitrev(a),
            UnOp::Rev => self.fb.ins().bswap(a),
            UnOp::Rev16 => {
                let m = self.k(ty, 0x00ff_00ff_00ff_00ffu64 as i64);
                let lo = self.fb.ins().band(a, m);
                let lo = self.ishl_k(lo, 8);
                let hi = self.ushr_k(a, 8);
                let hi = self.fb.ins().band(hi, m);
                self.fb.ins().bor(lo, hi)
            }
            UnOp::Rev32 => {
                if w == Width::W32 {
                    self.fb.ins().bswap(a)
                } else {
                    let s = self.fb.ins().bswap(a);
                    self.rotl_k(s, 32)
                }
            }
            UnOp::Sext8 | UnOp::Sext16 | UnOp::Sext32 => {
                let nt = match op {
                    UnOp::Sext8 => types::I8,
                    UnOp::Sext16 => types::I16,
                    _ => types::I32,
                };
                if nt == ty {
                    a
                } else {
                    let n = self.fb.ins().ireduce(nt, a);
                    self.fb.ins().sextend(ty, n)
                }
            }
            UnOp::Zext8 => self.band_k(a, 0xff),
            UnOp::Zext16 => self.band_k(a, 0xffff),
            UnOp::Zext32 => {
                if ty == types::I32 {
                    a
                } else {
                    self.band_k(a, 0xffff_ffff)
                }
            }
        };
        self.widen(w, r)
    }

    /// `a + b + carry` at width `w` (a 64-bit result), setting the flags.
    fn add_flags(&mut self, w: Width, a: Value, b: Value, carry: Carry) -> Value {
        let (a, b) = (self.narrow(w, a), self.narrow(w, b));
        let ty = self.ty(a);
        let r = match carry {
            Carry::Zero => {
                let r = self.fb.ins().iadd(a, b);
                self.set_lazy(Flags::Add { a, b, r });
                r
            }
            // Subtraction a - m, with b = !m: a constant or a `bnot`.
            Carry::One if self.const_of(b).is_some() || self.not_of(b).is_some() => {
                let m = match self.const_of(b) {
                    Some(k) => self.k(ty, !k as i64),
                    None => self.not_of(b).expect("checked above"),
                };
                let r = self.fb.ins().isub(a, m);
                self.set_lazy(Flags::Sub { a, m, r });
                r
            }
            Carry::One | Carry::Flag => {
                let cin = match carry {
                    Carry::One => self.k(ty, 1),
                    _ => self.carry_bit(ty),
                };
                let t = self.fb.ins().iadd(b, cin);
                let c1 = self.fb.ins().icmp(IntCC::UnsignedLessThan, t, b);
                let r = self.fb.ins().iadd(a, t);
                let c2 = self.fb.ins().icmp(IntCC::UnsignedLessThan, r, a);
                let c = self.fb.ins().bor(c1, c2);
                let x1 = self.fb.ins().bxor(a, r);
                let x2 = self.fb.ins().bxor(b, r);
                let x = self.fb.ins().band(x1, x2);
                let v = self.icmp_k(IntCC::SignedLessThan, x, 0);
                let n = self.icmp_k(IntCC::SignedLessThan, r, 0);
                let z = self.icmp_k(IntCC::Equal, r, 0);
                let f = self.pack_nzcv(n, z, c, v);
                self.set_nzcv(f);
                r
            }
        };
        self.widen(w, r)
    }

    /// Four 0/1 i8 values into NZCV (i32, bits 31..28).
    fn pack_nzcv(&mut self, n: Value, z: Value, c: Value, v: Value) -> Value {
        let x = self.fb.ins().iadd(n, n);
        let x = self.fb.ins().bor(x, z);
        let x = self.fb.ins().iadd(x, x);
        let x = self.fb.ins().bor(x, c);
        let x = self.fb.ins().iadd(x, x);
        let x = self.fb.ins().bor(x, v);
        let x = self.fb.ins().uextend(types::I32, x);
        self.ishl_k(x, 28)
    }

    /// The C flag as a 0/1 value of type `ty`.
    fn carry_bit(&mut self, ty: Type) -> Value {
        let c = match self.lazy {
            Some(Flags::Sub { a, m, .. }) => {
                self.fb.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, a, m)
            }
            Some(Flags::Add { a, r, .. }) => self.fb.ins().icmp(IntCC::UnsignedLessThan, r, a),
            Some(Flags::Logic { .. }) => return self.k(ty, 0),
            None => {
                let f = self.get_nzcv();
                let s = self.ushr_k(f, 29);
                let b = self.band_k(s, 1);
                return match ty.bits() {
                    32 => b,
                    _ => self.fb.ins().uextend(ty, b),
                };
            }
        };
        self.fb.ins().uextend(ty, c)
    }

    /// Condition `c` (an A64 condition without its invert bit) straight from how the flags
    /// were computed, inverted if `inv`, when that is one compare.
    fn lazy_cond(&mut self, f: Flags, c: u8, inv: bool) -> Option<Value> {
        let cc = |base: IntCC| if inv { base.complement() } else { base };
        let v = match (f, c) {
            (Flags::Sub { a, m, .. }, 0 | 1 | 4 | 5 | 6) => {
                let base = match c {
                    0 => IntCC::Equal,
                    1 => IntCC::UnsignedGreaterThanOrEqual,
                    4 => IntCC::UnsignedGreaterThan,
                    5 => IntCC::SignedGreaterThanOrEqual,
                    _ => IntCC::SignedGreaterThan,
                };
                self.fb.ins().icmp(cc(base), a, m)
            }
            (Flags::Add { a, r, .. }, 1) => self.fb.ins().icmp(cc(IntCC::UnsignedLessThan), r, a),
            (Flags::Add { r, .. } | Flags::Logic { r }, 0) => self.icmp_k(cc(IntCC::Equal), r, 0),
            (Flags::Sub { r, .. } | Flags::Add { r, .. } | Flags::Logic { r }, 2) => {
                self.icmp_k(cc(IntCC::SignedLessThan), r, 0)
            }
            // C and V clear: CS, VS and HI never hold; GE is N clear, GT also Z clear.
            (Flags::Logic { .. }, 1 | 3 | 4) => self.k(types::I8, inv as i64),
            (Flags::Logic { r }, 5) => self.icmp_k(cc(IntCC::SignedGreaterThanOrEqual), r, 0),
            (Flags::Logic { r }, 6) => self.icmp_k(cc(IntCC::SignedGreaterThan), r, 0),
            _ => return None,
        };
        Some(v)
    }

    /// An i8 0/1 for A64 condition `cond` on the current flags.
    fn cond(&mut self, cond: u8) -> Value {
        if cond >> 1 == 7 {
            return self.k(types::I8, 1);
        }
        if let Some(f) = self.lazy {
            if let Some(v) = self.lazy_cond(f, cond >> 1, cond & 1 == 1) {
                return v;
            }
        }
        let f = self.get_nzcv();
        let bit = |e: &mut Self, n: i64| {
            let s = e.ushr_k(f, n);
            e.band_k(s, 1)
        };
        let r = match cond >> 1 {
            0 => bit(self, 30),
            1 => bit(self, 29),
            2 => bit(self, 31),
            3 => bit(self, 28),
            4 => {
                let c = bit(self, 29);
                let z = bit(self, 30);
                self.fb.ins().band_not(c, z)
            }
            5 | 6 => {
                let n = bit(self, 31);
                let v = bit(self, 28);
                let x = self.fb.ins().bxor(n, v);
                let ge = self.bxor_k(x, 1);
                if cond >> 1 == 6 {
                    let z = bit(self, 30);
                    self.fb.ins().band_not(ge, z)
                } else {
                    ge
                }
            }
            _ => self.k(types::I32, 1),
        };
        let r = if cond & 1 == 1 && cond != 0xf {
            self.bxor_k(r, 1)
        } else {
            r
        };
        self.fb.ins().ireduce(types::I8, r)
    }

    fn v_off(reg: u8, esize: u8, idx: u8) -> i32 {
        V_OFF + 16 * (reg as i32 & 31) + esize as i32 * idx as i32
    }

    /// Emit a region: `blocks[0]` (where the function is entered) and blocks of its page
    /// that its exits reach. Each member starts in a CLIF block of its own with the guest
    /// state in memory (every exit writes it back), so any member may jump to any other.
    pub(super) fn region(&mut self, blocks: &[&Block]) {
        self.has_call = blocks
            .iter()
            .any(|b| b.ops.iter().any(|op| matches!(op, Op::Call { .. })));
        self.members = blocks
            .iter()
            .map(|b| (b.pc, self.fb.create_block()))
            .collect();
        self.fb.ins().jump(self.members[0].1, &[]);
        for (i, b) in blocks.iter().enumerate() {
            self.cur = i;
            self.switch(self.members[i].1);
            self.invalidate();
            self.block(b);
        }
        for &(_, blk) in &self.members {
            self.fb.seal_block(blk);
        }
        // The shared fault exit: state.pc = the faulting instruction.
        if let Some(fault) = self.fault {
            self.switch(fault);
            self.fb.seal_block(fault);
            let pc = self.fb.block_params(fault)[0];
            self.fb.ins().store(flags(), pc, self.st, PC_OFF);
            let code = self.i32c(EXIT_FAULT);
            self.fb.ins().return_(&[code]);
        }
    }

    /// Emit one member of the region, from its start to its exits.
    fn block(&mut self, b: &Block) {
        // Count retired guest instructions (chained blocks never pass the dispatcher).
        let n = self
            .fb
            .ins()
            .load(types::I64, flags(), self.st, RETIRED_OFF);
        let n = self.iadd_k(n, b.len as i64);
        self.fb.ins().store(flags(), n, self.st, RETIRED_OFF);
        self.retired = Some(n);
        let mut insn = 0usize;
        for (i, op) in b.ops.iter().enumerate() {
            while insn + 1 < b.insns.len() && b.insns[insn + 1].op as usize <= i {
                insn += 1;
            }
            let pc = b.insns.get(insn).map_or(b.pc, |s| s.pc);
            self.op(op, pc);
        }
        self.terminal(&b.terminal);
    }

    fn op(&mut self, op: &Op, pc: u64) {
        match *op {
            Op::Const { dst, value } => {
                let v = self.iconst(value);
                self.def(dst, v);
            }
            Op::Mov { dst, src } => {
                let v = self.t(src);
                self.def(dst, v);
            }
            Op::GetReg { dst, reg } => {
                let v = self.get_reg(reg);
                self.def(dst, v);
            }
            Op::SetReg { reg, src } => {
                let v = self.t(src);
                self.set_reg(reg, v);
            }
            Op::Bin { op, w, dst, a, b } => {
                let (a, b) = (self.t(a), self.t(b));
                let v = self.bin(op, w, a, b);
                self.def(dst, v);
            }
            Op::Un { op, w, dst, a } => {
                let a = self.t(a);
                let v = self.un(op, w, a);
                self.def(dst, v);
            }
            Op::AddFlags {
                w,
                dst,
                a,
                b,
                carry,
            } => {
                let (a, b) = (self.t(a), self.t(b));
                let r = self.add_flags(w, a, b, carry);
                self.def(dst, r);
            }
            Op::Adc { w, dst, a, b } => {
                let (a, b) = (self.t(a), self.t(b));
                let c = self.carry_bit(types::I64);
                let s = self.fb.ins().iadd(a, b);
                let s = self.fb.ins().iadd(s, c);
                let r = if w == Width::W32 {
                    self.band_k(s, 0xffff_ffff)
                } else {
                    s
                };
                self.def(dst, r);
            }
            Op::LogicFlags { w, src } => {
                let v = self.t(src);
                let r = self.narrow(w, v);
                self.set_lazy(Flags::Logic { r });
            }
            Op::GetNzcv { dst } => {
                let f = self.get_nzcv();
                let v = self.fb.ins().uextend(types::I64, f);
                self.def(dst, v);
            }
            Op::SetNzcv { src } => {
                let v = self.t(src);
                let v = self.fb.ins().ireduce(types::I32, v);
                let v = self.band_k(v, 0xf000_0000i64);
                self.set_nzcv(v);
            }
            Op::Cond { dst, cond } => {
                let c = self.cond(cond);
                let v = self.bool64(c);
                self.def(dst, v);
            }
            Op::Select { dst, cond, a, b } => {
                let (c, a, b) = (self.t(cond), self.t(a), self.t(b));
                let v = self.fb.ins().select(c, a, b);
                self.def(dst, v);
            }
            Op::Load {
                dst,
                addr,
                size,
                signed,
            } => {
                let a = self.t(addr);
                let v = if let Some(host) = self.guarded_host(a, size) {
                    self.host_load(host, size, signed)
                } else if self.has_fast() {
                    self.settle_flags();
                    let slow = self.fb.create_block();
                    self.fb.set_cold_block(slow);
                    let join = self.fb.create_block();
                    self.fb.append_block_param(join, types::I64);
                    let host = self.fast_host(a, size, FastMem::READ, slow);
                    let v = self.host_load(host, size, signed);
                    self.fb.ins().jump(join, &[BlockArg::Value(v)]);
                    self.fb.seal_block(slow);
                    self.switch(slow);
                    self.spill();
                    self.slow_load(a, size, signed, pc, Some(join));
                    self.fb.seal_block(join);
                    self.switch(join);
                    self.fb.block_params(join)[0]
                } else {
                    self.flush();
                    self.slow_load(a, size, signed, pc, None)
                };
                self.def(dst, v);
            }
            Op::Store { addr, src, size } => {
                let (a, v) = (self.t(addr), self.t(src));
                if let Some(host) = self.guarded_host(a, size) {
                    self.host_store(host, v, size);
                } else if self.has_fast() {
                    self.settle_flags();
                    let slow = self.fb.create_block();
                    self.fb.set_cold_block(slow);
                    let join = self.fb.create_block();
                    let host = self.fast_host(a, size, FastMem::WRITE, slow);
                    self.host_store(host, v, size);
                    self.fb.ins().jump(join, &[]);
                    self.fb.seal_block(slow);
                    self.switch(slow);
                    self.spill();
                    self.slow_store(a, v, size, pc, Some(join));
                    self.fb.seal_block(join);
                    self.switch(join);
                } else {
                    self.flush();
                    self.slow_store(a, v, size, pc, None);
                }
            }
            Op::LoadV { reg, addr, size } | Op::StoreV { reg, addr, size } => {
                let load = matches!(op, Op::LoadV { .. });
                let a = self.t(addr);
                if let Some(host) = self.guarded_host(a, size) {
                    self.host_vec(host, reg, size, load);
                } else if self.has_fast() {
                    self.settle_flags();
                    let slow = self.fb.create_block();
                    self.fb.set_cold_block(slow);
                    let join = self.fb.create_block();
                    let need = if load { FastMem::READ } else { FastMem::WRITE };
                    let host = self.fast_host(a, size, need, slow);
                    self.host_vec(host, reg, size, load);
                    self.fb.ins().jump(join, &[]);
                    self.fb.seal_block(slow);
                    self.switch(slow);
                    self.spill();
                    self.slow_vec(a, (reg, size, load), pc, Some(join));
                    self.fb.seal_block(join);
                    self.switch(join);
                } else {
                    self.flush();
                    self.slow_vec(a, (reg, size, load), pc, None);
                }
            }
            Op::LoadExcl {
                dst,
                dst_hi: None,
                addr,
                size,
            } if self.host_checked() => {
                let v = self.load_exclusive_inline(self.t(addr), size, pc);
                self.def(dst, v);
            }
            Op::StoreExcl {
                status,
                addr,
                src,
                src_hi: None,
                size,
            } if self.host_checked() => {
                let s = self.store_exclusive_inline(self.t(addr), self.t(src), size, pc);
                self.def(status, s);
            }
            Op::LoadExcl {
                dst,
                dst_hi,
                addr,
                size,
            } => {
                self.flush();
                let a = self.t(addr);
                let (s, lo) = self.load_exclusive_call(a, size);
                self.check(s, pc);
                self.def(dst, lo);
                if let Some(h) = dst_hi {
                    let hi = self
                        .fb
                        .ins()
                        .load(types::I64, flags(), self.cx, SCRATCH_OFF + 8);
                    self.def(h, hi);
                }
            }
            Op::StoreExcl {
                status,
                addr,
                src,
                src_hi,
                size,
            } => {
                self.flush();
                let (a, lo) = (self.t(addr), self.t(src));
                let hi = match src_hi {
                    Some(h) => self.t(h),
                    None => self.iconst(0),
                };
                let (s, r) = self.store_exclusive_call(a, size, lo, hi);
                self.check(s, pc);
                self.def(status, r);
            }
            Op::ClearExcl => {
                let z = self.k(types::I8, 0);
                self.fb.ins().store(
                    flags(),
                    z,
                    self.st,
                    offset_of!(CpuState, monitor) as i32
                        + offset_of!(crate::state::Monitor, valid) as i32,
                );
            }
            Op::CheckAlign { addr, size, write } => {
                let a = self.t(addr);
                let low = self.band_k(a, size as i64 - 1);
                let bad = self.fb.create_block();
                let ok = self.fb.create_block();
                self.fb.ins().brif(low, bad, &[], ok, &[]);
                self.fb.seal_block(bad);
                self.switch(bad);
                self.flush_for_exit_path(|e| {
                    let w = e.i32c(write as u32);
                    let s = e.call(
                        Sig::Align,
                        runtime::jit_align_fault as *const () as usize,
                        &[a, w],
                    );
                    let _ = s;
                    let pcv = e.iconst(pc);
                    let fault = e.fault_block();
                    e.fb.ins().jump(fault, &[BlockArg::Value(pcv)]);
                });
                self.fb.seal_block(ok);
                self.switch(ok);
            }
            Op::Fence => {
                self.fb.ins().fence();
            }
            Op::GetVElem {
                dst,
                reg,
                esize,
                idx,
            } => {
                let off = Self::v_off(reg, esize, idx);
                let v = match esize {
                    1 => self.fb.ins().uload8(types::I64, flags(), self.st, off),
                    2 => self.fb.ins().uload16(types::I64, flags(), self.st, off),
                    4 => self.fb.ins().uload32(flags(), self.st, off),
                    _ => self.fb.ins().load(types::I64, flags(), self.st, off),
                };
                self.def(dst, v);
            }
            Op::SetVElem {
                reg,
                src,
                esize,
                idx,
            } => {
                let off = Self::v_off(reg, esize, idx);
                let v = self.t(src);
                match esize {
                    1 => self.fb.ins().istore8(flags(), v, self.st, off),
                    2 => self.fb.ins().istore16(flags(), v, self.st, off),
                    4 => self.fb.ins().istore32(flags(), v, self.st, off),
                    _ => self.fb.ins().store(flags(), v, self.st, off),
                };
            }
            Op::SetVScalar { reg, src, esize } => {
                let off = Self::v_off(reg, 1, 0);
                let v = self.t(src);
                let v = match esize {
                    1 => self.band_k(v, 0xff),
                    2 => self.band_k(v, 0xffff),
                    4 => self.band_k(v, 0xffff_ffff),
                    _ => v,
                };
                let z = self.iconst(0);
                self.fb.ins().store(flags(), v, self.st, off);
                self.fb.ins().store(flags(), z, self.st, off + 8);
            }
            Op::Call { f, insn } => {
                self.flush();
                let fp = self.k(self.ptr, f as *const () as usize as i64);
                let iw = self.i32c(insn);
                let s = self.call(
                    Sig::Call,
                    runtime::jit_call as *const () as usize,
                    &[fp, iw],
                );
                self.invalidate();
                self.check(s, pc);
            }
            Op::CallValue { f, dst, a, b, c } => {
                self.flush();
                let fp = self.k(self.ptr, f as *const () as usize as i64);
                let (a, b, c) = (self.t(a), self.t(b), self.t(c));
                let v = self.call(
                    Sig::CallValue,
                    runtime::jit_call_value as *const () as usize,
                    &[fp, a, b, c],
                );
                self.invalidate();
                self.def(dst, v);
            }
        }
    }

    /// Emit code on a side path that leaves the block: the dirty state must be written first,
    /// without disturbing the main path's bookkeeping.
    fn flush_for_exit_path(&mut self, f: impl FnOnce(&mut Self)) {
        let (regs, dirty, nzcv, nd) = (self.regs, self.dirty, self.nzcv, self.nzcv_dirty);
        let lazy = self.lazy;
        self.flush();
        f(self);
        self.regs = regs;
        self.dirty = dirty;
        self.nzcv = nzcv;
        self.lazy = lazy;
        self.nzcv_dirty = nd;
    }

    fn int_type(size: u8) -> Type {
        match size {
            1 => types::I8,
            2 => types::I16,
            4 => types::I32,
            8 => types::I64,
            _ => types::I128,
        }
    }

    /// Guest memory may be unaligned and is shared with other threads: plain, unaligned,
    /// non-trapping host accesses (the fast-path check guarantees they are mapped).
    fn guest_flags() -> MemFlagsData {
        MemFlagsData::new().with_notrap()
    }

    fn host_load(&mut self, host: Value, size: u8, signed: bool) -> Value {
        let ty = Self::int_type(size);
        let v = self.fb.ins().load(ty, Self::guest_flags(), host, 0);
        if size == 8 {
            v
        } else if signed {
            self.fb.ins().sextend(types::I64, v)
        } else {
            self.fb.ins().uextend(types::I64, v)
        }
    }

    fn host_store(&mut self, host: Value, v: Value, size: u8) {
        let v = if size == 8 {
            v
        } else {
            self.fb.ins().ireduce(Self::int_type(size), v)
        };
        self.fb.ins().store(Self::guest_flags(), v, host, 0);
    }

    fn host_vec(&mut self, host: Value, reg: u8, size: u8, load: bool) {
        let ty = Self::int_type(size);
        let off = Self::v_off(reg, 1, 0);
        if load {
            let v = self.fb.ins().load(ty, Self::guest_flags(), host, 0);
            let v = if size == 16 {
                v
            } else {
                self.fb.ins().uextend(types::I128, v)
            };
            self.fb.ins().store(flags(), v, self.st, off);
        } else {
            let v = self.fb.ins().load(ty, flags(), self.st, off);
            self.fb.ins().store(Self::guest_flags(), v, host, 0);
        }
    }

    /// After a memory call with status `s`: on to `join` (with `args`) if given, else to a
    /// new block; the fault exit if `s` is non-zero.
    fn check_or_join(
        &mut self,
        s: Value,
        pc: u64,
        join: Option<cranelift_codegen::ir::Block>,
        args: &[BlockArg],
    ) {
        match join {
            Some(j) => self.check_then(s, pc, j, args),
            None => self.check(s, pc),
        }
    }

    /// The load through the memory; with `join`, the value goes there as its parameter.
    fn slow_load(
        &mut self,
        a: Value,
        size: u8,
        signed: bool,
        pc: u64,
        join: Option<cranelift_codegen::ir::Block>,
    ) -> Value {
        let sz = self.i32c(size as u32);
        let v = self.call(Sig::Load, runtime::jit_load as *const () as usize, &[a, sz]);
        let failed = self.fb.ins().load(types::I32, flags(), self.cx, FAILED_OFF);
        let v = if signed && size < 8 {
            let n = self.fb.ins().ireduce(Self::int_type(size), v);
            self.fb.ins().sextend(types::I64, n)
        } else {
            v
        };
        self.check_or_join(failed, pc, join, &[BlockArg::Value(v)]);
        v
    }

    fn slow_store(
        &mut self,
        a: Value,
        v: Value,
        size: u8,
        pc: u64,
        join: Option<cranelift_codegen::ir::Block>,
    ) {
        let sz = self.i32c(size as u32);
        let s = self.call(
            Sig::Store,
            runtime::jit_store as *const () as usize,
            &[a, sz, v],
        );
        self.check_or_join(s, pc, join, &[]);
    }

    fn slow_vec(
        &mut self,
        a: Value,
        (reg, size, load): (u8, u8, bool),
        pc: u64,
        join: Option<cranelift_codegen::ir::Block>,
    ) {
        let f = if load {
            runtime::jit_load_v as *const () as usize
        } else {
            runtime::jit_store_v as *const () as usize
        };
        let r = self.i32c(reg as u32);
        let sz = self.i32c(size as u32);
        let s = self.call(Sig::Vmem, f, &[r, a, sz]);
        self.check_or_join(s, pc, join, &[]);
    }

    fn exit(&mut self, pc: Value, code: u32) {
        self.flush();
        self.fb.ins().store(flags(), pc, self.st, PC_OFF);
        let c = self.i32c(code);
        self.fb.ins().return_(&[c]);
    }

    /// Leave for a known pc through exit slot `slot` (an address value): tail-call the
    /// compiled target if the slot has one, else return to the dispatcher.
    fn exit_chained(&mut self, pc: Value, slot: Value, interrupt: usize) {
        self.flush();
        self.fb.ins().store(flags(), pc, self.st, PC_OFF);
        let target = self.fb.ins().load(types::I64, flags(), slot, 0);
        let have = self.icmp_k(IntCC::NotEqual, target, 0);
        match self.jcache {
            // An empty slot (a target in another page, or not compiled yet) falls back on
            // the jump cache.
            Some((table, epoch, _)) => {
                let (hit, code) = self.probe_jcache(pc, table, epoch);
                let code = self.fb.ins().select(have, target, code);
                let ok = self.fb.ins().bor(have, hit);
                self.tail_call_if(ok, code, interrupt);
            }
            None => self.tail_call_if(have, target, interrupt),
        }
    }

    /// Whether a region member starts at `pc`.
    fn is_member(&self, pc: u64) -> bool {
        self.members.iter().any(|&(m, _)| m == pc)
    }

    /// Go on at the region member that starts at `target`, if there is one: a plain jump
    /// to a later member, unless the flags a chained exit tests could be set (an interrupt
    /// and pending requests only matter at a loop's back-edge while no helper is called, so
    /// every pass through a region does a bounded amount of work), else the checks of a
    /// chained exit. False (nothing emitted) when `target` is outside the region.
    fn goto_member(&mut self, target: u64) -> bool {
        let Some(j) = self.members.iter().position(|&(pc, _)| pc == target) else {
            return false;
        };
        let head = self.members[j].1;
        self.flush();
        if j > self.cur && !self.has_call && !self.budgeted {
            self.fb.ins().jump(head, &[]);
        } else {
            let pc = self.iconst(target);
            let yes = self.fb.ins().iconst(types::I8, 1);
            self.continue_if(yes, Next::Loop { head, pc }, self.interrupt);
        }
        true
    }

    /// Leave for the known pc `target`: jump to it inside the region, or through its exit
    /// slot (in the region's [`Emitter::chain`] slots).
    fn exit_known(&mut self, target: u64, slots: usize, interrupt: usize) {
        if self.goto_member(target) {
            return;
        }
        let k = self.targets.iter().position(|&t| t == target);
        let k = k.expect("the job lists every known target outside the region");
        let pc = self.iconst(target);
        let s = self.iconst((slots + k * std::mem::size_of::<AtomicUsize>()) as u64);
        self.exit_chained(pc, s, interrupt);
    }

    /// Look `pc` up in the jump cache: (hit at the current exec epoch, its code).
    fn probe_jcache(&mut self, pc: Value, table: usize, epoch: usize) -> (Value, Value) {
        let idx = self.ushr_k(pc, 2);
        let idx = self.band_k(idx, JCACHE_ENTRIES as i64 - 1);
        let off = self.ishl_k(idx, 5);
        let base = self.k(self.ptr, table as i64);
        let entry = self.fb.ins().iadd(base, off);
        let tag = self.fb.ins().load(types::I64, flags(), entry, 0);
        let ep = self.fb.ins().load(types::I64, flags(), entry, 8);
        let code = self.fb.ins().load(types::I64, flags(), entry, 16);
        let ea = self.k(self.ptr, epoch as i64);
        let now = self.fb.ins().load(types::I64, MemFlagsData::new(), ea, 0);
        let same_pc = self.fb.ins().icmp(IntCC::Equal, tag, pc);
        let same_ep = self.fb.ins().icmp(IntCC::Equal, ep, now);
        let compiled = self.icmp_k(IntCC::NotEqual, code, 0);
        let hit = self.fb.ins().band(same_pc, same_ep);
        (self.fb.ins().band(hit, compiled), code)
    }

    /// Leave for `pc` through the jump cache.
    fn exit_jcache(&mut self, pc: Value, table: usize, epoch: usize, interrupt: usize) {
        self.flush();
        self.fb.ins().store(flags(), pc, self.st, PC_OFF);
        let (hit, code) = self.probe_jcache(pc, table, epoch);
        self.tail_call_if(hit, code, interrupt);
    }

    /// Leave for a computed pc: tail-call its code if the indirect-branch table has it, else
    /// return to the dispatcher.
    fn exit_indirect(&mut self, pc: Value, table: usize, interrupt: usize) {
        self.flush();
        self.fb.ins().store(flags(), pc, self.st, PC_OFF);
        let idx = self.ushr_k(pc, 2);
        let idx = self.band_k(idx, LOOKUP_ENTRIES as i64 - 1);
        let off = self.ishl_k(idx, 4);
        let base = self.k(self.ptr, table as i64);
        let entry = self.fb.ins().iadd(base, off);
        let tag = self.fb.ins().load(types::I64, flags(), entry, 0);
        let code = self.fb.ins().load(types::I64, flags(), entry, 8);
        let hit = self.fb.ins().icmp(IntCC::Equal, tag, pc);
        self.tail_call_if(hit, code, interrupt);
    }

    /// With state written back and pc stored: tail-call `code` if `ok` and no interrupt is
    /// pending, else return [`EXIT_CONTINUE`] to the dispatcher. A block that called a helper
    /// also returns when the helper asked for an instruction-cache flush (IC IVAU), so the
    /// dispatcher drops stale code before anything else runs.
    fn tail_call_if(&mut self, ok: Value, code: Value, interrupt: usize) {
        self.continue_if(ok, Next::Tail(code), interrupt)
    }

    /// [`Emitter::tail_call_if`] for either way of going on ([`Next`]).
    fn continue_if(&mut self, ok: Value, next: Next, interrupt: usize) {
        let flag = self.k(self.ptr, interrupt as i64);
        let mut pending = self
            .fb
            .ins()
            .uload8(types::I32, MemFlagsData::new(), flag, 0);
        if self.has_call {
            let ic = self
                .fb
                .ins()
                .uload8(types::I32, MemFlagsData::new(), self.st, PENDING_OFF);
            pending = self.fb.ins().bor(pending, ic);
        }
        let quiet = self.icmp_k(IntCC::Equal, pending, 0);
        let mut go = self.fb.ins().band(ok, quiet);
        if let (true, Some(n)) = (self.budgeted, self.retired) {
            // The instruction budget: stop chaining once it is spent, so the dispatcher
            // stops at the same block boundary the interpreter would.
            let limit = self.fb.ins().load(types::I64, flags(), self.cx, LIMIT_OFF);
            let under = self.fb.ins().icmp(IntCC::UnsignedLessThan, n, limit);
            go = self.fb.ins().band(go, under);
        }
        let chain = self.fb.create_block();
        let ret = self.fb.create_block();
        self.fb.ins().brif(go, chain, &[], ret, &[]);
        self.fb.seal_block(chain);
        self.fb.seal_block(ret);
        self.switch(chain);
        match next {
            Next::Tail(code) => {
                let (st, cx) = (self.st, self.cx);
                let ptr = self.ptr;
                let tail = *self
                    .tail_sig
                    .get_or_insert_with(|| self.fb.import_signature(block_signature(ptr)));
                self.fb.ins().return_call_indirect(tail, code, &[st, cx]);
            }
            Next::Loop { head, .. } => {
                self.fb.ins().jump(head, &[]);
            }
        }
        self.switch(ret);
        if let Next::Loop { pc, .. } = next {
            // Leaving the loop: the dispatcher resumes at the member's start.
            self.fb.ins().store(flags(), pc, self.st, PC_OFF);
        }
        let c = self.i32c(EXIT_CONTINUE);
        self.fb.ins().return_(&[c]);
    }

    /// With state written back: branch on `c` into one CLIF block per direction and emit
    /// `exit(self, target)` in each, so each exit has an indirect jump of its own, with one
    /// target the host can predict (a shared jump whose target follows the condition was
    /// mispredicted).
    fn per_direction(
        &mut self,
        c: Value,
        taken: u64,
        not_taken: u64,
        mut exit: impl FnMut(&mut Self, u64),
    ) {
        self.flush();
        let (yes, no) = (self.fb.create_block(), self.fb.create_block());
        self.fb.ins().brif(c, yes, &[], no, &[]);
        self.fb.seal_block(yes);
        self.fb.seal_block(no);
        for (blk, target) in [(yes, taken), (no, not_taken)] {
            self.switch(blk);
            exit(self, target);
        }
    }

    fn terminal(&mut self, t: &Terminal) {
        match *t {
            Terminal::Jump(pc) => {
                if self.goto_member(pc) {
                    return;
                }
                let v = self.iconst(pc);
                match (self.chain, self.jcache) {
                    (Some((slots, intr)), _) => self.exit_known(pc, slots, intr),
                    (None, Some((t, e, intr))) => self.exit_jcache(v, t, e, intr),
                    (None, None) => self.exit(v, EXIT_CONTINUE),
                }
            }
            Terminal::Branch {
                cond,
                taken,
                not_taken,
            } => {
                let c = self.t(cond);
                match self.chain {
                    Some((slots, intr)) => {
                        self.per_direction(c, taken, not_taken, |e, target| {
                            e.exit_known(target, slots, intr)
                        });
                    }
                    None => match self.jcache {
                        Some((t, ep, intr)) => {
                            self.per_direction(c, taken, not_taken, |e, target| {
                                if !e.goto_member(target) {
                                    let pc = e.iconst(target);
                                    e.exit_jcache(pc, t, ep, intr)
                                }
                            });
                        }
                        None if self.is_member(taken) || self.is_member(not_taken) => {
                            self.per_direction(c, taken, not_taken, |e, target| {
                                if !e.goto_member(target) {
                                    let pc = e.iconst(target);
                                    e.exit(pc, EXIT_CONTINUE)
                                }
                            });
                        }
                        None => {
                            let a = self.iconst(taken);
                            let b = self.iconst(not_taken);
                            let pc = self.fb.ins().select(c, a, b);
                            self.exit(pc, EXIT_CONTINUE)
                        }
                    },
                }
            }
            Terminal::Indirect { target } => {
                let v = self.t(target);
                match (self.lookup, self.jcache) {
                    (Some((table, intr)), _) => self.exit_indirect(v, table, intr),
                    (None, Some((t, e, intr))) => self.exit_jcache(v, t, e, intr),
                    (None, None) => self.exit(v, EXIT_CONTINUE),
                }
            }
            // SVC, HVC and SMC share one exit code; the dispatcher tells them apart by the
            // instruction before the pc.
            Terminal::Svc { next, .. }
            | Terminal::Hvc { next, .. }
            | Terminal::Smc { next, .. } => {
                let v = self.iconst(next);
                self.exit(v, EXIT_SVC)
            }
            Terminal::Dynamic => {
                self.flush();
                let c = self.i32c(EXIT_CONTINUE);
                self.fb.ins().return_(&[c]);
            }
            Terminal::Brk { pc, .. } => {
                let v = self.iconst(pc);
                self.exit(v, EXIT_BRK)
            }
            Terminal::Undefined { pc, .. } => {
                let v = self.iconst(pc);
                self.exit(v, EXIT_UNDEFINED)
            }
            Terminal::FetchFault { pc, .. } => {
                let v = self.iconst(pc);
                self.exit(v, EXIT_FAULT)
            }
            Terminal::Wait { next } => {
                let v = self.iconst(next);
                self.exit(v, EXIT_WAIT)
            }
        }
    }
}
