//! Cranelift IR for one block: the emitter that turns IR ops into Cranelift instructions,
//! keeping guest registers and flags in SSA values between exits.

use super::runtime::{self, JitCtx};
use super::{block_signature, LOOKUP_ENTRIES};
use super::{EXIT_BRK, EXIT_CONTINUE, EXIT_FAULT, EXIT_SVC, EXIT_UNDEFINED, EXIT_WAIT};
use crate::ir::{BinOp, Block, Carry, Op, Terminal, UnOp, Width, T};
use crate::mem::{FastMem, TlbFast};
use crate::state::CpuState;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, BlockArg, InstBuilder, MemFlagsData, SigRef, Signature, Type, Value,
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

struct Sigs {
    load: SigRef,
    store: SigRef,
    vmem: SigRef,
    load_excl: SigRef,
    store_excl: SigRef,
    align: SigRef,
    call: SigRef,
    call_value: SigRef,
}

pub(super) struct Emitter<'a> {
    pub(super) fb: FunctionBuilder<'a>,
    ptr: Type,
    st: Value,
    cx: Value,
    temps: Vec<Option<Value>>,
    regs: [Option<Value>; 32],
    dirty: u32,
    nzcv: Option<Value>,
    nzcv_dirty: bool,
    fault: cranelift_codegen::ir::Block,
    sigs: Sigs,
    fast: Option<FastMem>,
    /// The inline TLB (system mode; used when `fast` is None).
    pub(super) tlb: Option<TlbFast>,
    /// The low bits of this EL's inline-TLB tags ([`TlbFast::tag`]), once loaded.
    el_tag: Option<Value>,
    /// (address of this block's exit-slot pair, address of the interrupt flag).
    pub(super) chain: Option<(usize, usize)>,
    /// (address of the indirect-branch table, address of the interrupt flag).
    pub(super) lookup: Option<(usize, usize)>,
    /// The block calls a helper (which may request an instruction-cache flush).
    has_call: bool,
    /// Chained exits also stop at [`JitCtx::limit`] (icount runs).
    pub(super) budgeted: bool,
    /// `state.retired` after this block's instructions, once counted.
    retired: Option<Value>,
    tail_sig: SigRef,
}

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
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
        let fault = fb.create_block();
        fb.append_block_param(fault, types::I64);
        let mut mk = |params: &[Type], ret: Type| {
            let mut s = Signature::new(host_cc);
            s.params.push(AbiParam::new(ptr));
            s.params.extend(params.iter().map(|&t| AbiParam::new(t)));
            s.returns.push(AbiParam::new(ret));
            fb.import_signature(s)
        };
        let (i32t, i64t) = (types::I32, types::I64);
        let sigs = Sigs {
            load: mk(&[i64t, i32t], i64t),
            store: mk(&[i64t, i32t, i64t], i32t),
            vmem: mk(&[i32t, i64t, i32t], i32t),
            load_excl: mk(&[i64t, i32t], i32t),
            store_excl: mk(&[i64t, i32t, i64t, i64t], i32t),
            align: mk(&[i64t, i32t], i32t),
            call: mk(&[ptr, i32t], i32t),
            call_value: mk(&[ptr, i64t, i64t, i64t], i64t),
        };
        let tail_sig = fb.import_signature(block_signature(ptr));
        Self {
            fb,
            ptr,
            st,
            cx,
            chain: None,
            lookup: None,
            has_call: false,
            budgeted: false,
            retired: None,
            tail_sig,
            temps: vec![None; ntemps],
            regs: [None; 32],
            dirty: 0,
            nzcv: None,
            nzcv_dirty: false,
            fault,
            sigs,
            fast,
            tlb: None,
            el_tag: None,
        }
    }

    /// Write dirty state back without forgetting it is dirty: for side paths that may leave
    /// the block while the main path keeps its registers in SSA values.
    fn spill(&mut self) {
        let (dirty, nd) = (self.dirty, self.nzcv_dirty);
        self.flush();
        self.dirty = dirty;
        self.nzcv_dirty = nd;
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
                let el = self.fb.ins().ishl_imm_u(el, 1);
                let v = self.fb.ins().bor_imm_u(el, 1);
                self.el_tag = Some(v);
                v
            }
        };
        let mask = (1i64 << tf.index_bits) - 1;
        let idx = self.fb.ins().ushr_imm_u(a, TlbFast::PAGE_SHIFT as i64);
        let idx = self.fb.ins().band_imm_u(idx, mask);
        let off = self
            .fb
            .ins()
            .ishl_imm_u(idx, TlbFast::ENTRY.trailing_zeros() as i64);
        let table = if write { tf.write } else { tf.read };
        let base = self.fb.ins().iconst(self.ptr, table as i64);
        let entry = self.fb.ins().iadd(base, off);
        let tag = self.fb.ins().load(types::I64, flags(), entry, 0);
        let last = self.fb.ins().iadd_imm_u(a, size as i64 - 1);
        let page = self.fb.ins().band_imm_u(last, !0xfffi64);
        let want = self.fb.ins().bor(page, el_tag);
        let hit = self.fb.ins().icmp(IntCC::Equal, tag, want);
        let fast = self.fb.create_block();
        self.fb.ins().brif(hit, fast, &[], slow, &[]);
        self.fb.seal_block(fast);
        self.fb.switch_to_block(fast);
        let addend = self.fb.ins().load(types::I64, flags(), entry, 8);
        self.fb.ins().iadd(a, addend)
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
        let perm = self.fb.create_block();
        let in_range = self.fb.ins().icmp_imm_u(
            IntCC::UnsignedLessThanOrEqual,
            a,
            (fm.limit - size as u64) as i64,
        );
        self.fb.ins().brif(in_range, perm, &[], slow, &[]);
        self.fb.seal_block(perm);
        self.fb.switch_to_block(perm);
        let perms = self.fb.ins().iconst(self.ptr, fm.perms as i64);
        let p1 = self.fb.ins().ushr_imm_u(a, FastMem::PAGE_SHIFT as i64);
        let p1 = self.fb.ins().iadd(perms, p1);
        let b1 = self.fb.ins().uload8(types::I32, flags(), p1, 0);
        let last = self.fb.ins().iadd_imm_u(a, size as i64 - 1);
        let p2 = self.fb.ins().ushr_imm_u(last, FastMem::PAGE_SHIFT as i64);
        let p2 = self.fb.ins().iadd(perms, p2);
        let b2 = self.fb.ins().uload8(types::I32, flags(), p2, 0);
        let both = self.fb.ins().band(b1, b2);
        let ok = self.fb.ins().band_imm_u(both, need as i64);
        self.fb.ins().brif(ok, fast, &[], slow, &[]);
        self.fb.seal_block(fast);
        self.fb.switch_to_block(fast);
        let base = self.fb.ins().iconst(self.ptr, fm.base as i64);
        self.fb.ins().iadd(base, a)
    }

    fn t(&self, t: T) -> Value {
        self.temps[t.0 as usize].expect("verified IR defines temps before use")
    }

    fn def(&mut self, t: T, v: Value) {
        self.temps[t.0 as usize] = Some(v);
    }

    fn iconst(&mut self, v: u64) -> Value {
        self.fb.ins().iconst(types::I64, v as i64)
    }

    fn i32c(&mut self, v: u32) -> Value {
        self.fb.ins().iconst(types::I32, v as i64)
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

    fn get_nzcv(&mut self) -> Value {
        if let Some(v) = self.nzcv {
            return v;
        }
        let v = self.fb.ins().load(types::I32, flags(), self.st, NZCV_OFF);
        self.nzcv = Some(v);
        v
    }

    fn set_nzcv(&mut self, v: Value) {
        self.nzcv = Some(v);
        self.nzcv_dirty = true;
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
            let v = self.nzcv.expect("dirty flags have a value");
            self.fb.ins().store(flags(), v, self.st, NZCV_OFF);
            self.nzcv_dirty = false;
        }
    }

    /// Forget cached registers (a helper may have changed any of them).
    fn invalidate(&mut self) {
        self.regs = [None; 32];
        self.nzcv = None;
        self.el_tag = None;
    }

    fn call(&mut self, sig: SigRef, f: usize, args: &[Value]) -> Value {
        let fp = self.fb.ins().iconst(self.ptr, f as i64);
        let mut all = vec![self.cx];
        all.extend_from_slice(args);
        let inst = self.fb.ins().call_indirect(sig, fp, &all);
        self.fb.inst_results(inst)[0]
    }

    /// Branch to the fault exit (reporting `pc`) if `status` is non-zero.
    fn check(&mut self, status: Value, pc: u64) {
        let cont = self.fb.create_block();
        let pcv = self.iconst(pc);
        self.fb
            .ins()
            .brif(status, self.fault, &[BlockArg::Value(pcv)], cont, &[]);
        self.fb.seal_block(cont);
        self.fb.switch_to_block(cont);
    }

    fn narrow(&mut self, w: Width, v: Value) -> Value {
        match w {
            Width::W64 => v,
            Width::W32 => self.fb.ins().ireduce(types::I32, v),
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
                let zero = ins.icmp_imm_u(IntCC::Equal, b, 0);
                let one = self.fb.ins().iconst(ty, 1);
                let safe = self.fb.ins().select(zero, one, b);
                let q = self.fb.ins().udiv(a, safe);
                let z = self.fb.ins().iconst(ty, 0);
                self.fb.ins().select(zero, z, q)
            }
            BinOp::SDiv => {
                // x86 traps on x/0 and MIN/-1; A64 gives 0 and MIN.
                let zero = ins.icmp_imm_u(IntCC::Equal, b, 0);
                let m1 = self.fb.ins().icmp_imm_s(IntCC::Equal, b, -1);
                let bad = self.fb.ins().bor(zero, m1);
                let one = self.fb.ins().iconst(ty, 1);
                let safe = self.fb.ins().select(bad, one, b);
                let q = self.fb.ins().sdiv(a, safe);
                let neg = self.fb.ins().ineg(a);
                let q = self.fb.ins().select(m1, neg, q);
                let z = self.fb.ins().iconst(ty, 0);
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
                let m = self.fb.ins().iconst(ty, 0x00ff_00ff_00ff_00ffu64 as i64);
                let lo = self.fb.ins().band(a, m);
                let lo = self.fb.ins().ishl_imm_u(lo, 8);
                let hi = self.fb.ins().ushr_imm_u(a, 8);
                let hi = self.fb.ins().band(hi, m);
                self.fb.ins().bor(lo, hi)
            }
            UnOp::Rev32 => {
                if w == Width::W32 {
                    self.fb.ins().bswap(a)
                } else {
                    let s = self.fb.ins().bswap(a);
                    self.fb.ins().rotl_imm_u(s, 32)
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
            UnOp::Zext8 => self.fb.ins().band_imm_u(a, 0xff),
            UnOp::Zext16 => self.fb.ins().band_imm_u(a, 0xffff),
            UnOp::Zext32 => {
                if ty == types::I32 {
                    a
                } else {
                    self.fb.ins().band_imm_u(a, 0xffff_ffff)
                }
            }
        };
        self.widen(w, r)
    }

    /// a + b + c with NZCV (an i32 in bits 31..28).
    fn add_flags(&mut self, w: Width, a: Value, b: Value, c: Value) -> (Value, Value) {
        match w {
            Width::W32 => {
                let a32 = self.fb.ins().band_imm_u(a, 0xffff_ffff);
                let b32 = self.fb.ins().band_imm_u(b, 0xffff_ffff);
                let s = self.fb.ins().iadd(a32, b32);
                let wide = self.fb.ins().iadd(s, c);
                let r = self.fb.ins().band_imm_u(wide, 0xffff_ffff);
                let carry = self.fb.ins().ushr_imm_u(wide, 32);
                let x1 = self.fb.ins().bxor(a32, r);
                let x2 = self.fb.ins().bxor(b32, r);
                let v = self.fb.ins().band(x1, x2);
                let v = self.fb.ins().ushr_imm_u(v, 31);
                let n = self.fb.ins().ushr_imm_u(r, 31);
                let z = self.fb.ins().icmp_imm_u(IntCC::Equal, r, 0);
                let z = self.bool64(z);
                let f = self.pack_nzcv(n, z, carry, v);
                (r, f)
            }
            Width::W64 => {
                let t = self.fb.ins().iadd(b, c);
                let c1 = self.fb.ins().icmp(IntCC::UnsignedLessThan, t, b);
                let r = self.fb.ins().iadd(a, t);
                let c2 = self.fb.ins().icmp(IntCC::UnsignedLessThan, r, a);
                let carry = self.fb.ins().bor(c1, c2);
                let carry = self.bool64(carry);
                let x1 = self.fb.ins().bxor(a, r);
                let x2 = self.fb.ins().bxor(b, r);
                let v = self.fb.ins().band(x1, x2);
                let v = self.fb.ins().ushr_imm_u(v, 63);
                let n = self.fb.ins().ushr_imm_u(r, 63);
                let z = self.fb.ins().icmp_imm_u(IntCC::Equal, r, 0);
                let z = self.bool64(z);
                let f = self.pack_nzcv(n, z, carry, v);
                (r, f)
            }
        }
    }

    /// Four 0/1 i64 values into NZCV (i32).
    fn pack_nzcv(&mut self, n: Value, z: Value, c: Value, v: Value) -> Value {
        let n = self.fb.ins().ishl_imm_u(n, 3);
        let z = self.fb.ins().ishl_imm_u(z, 2);
        let c = self.fb.ins().ishl_imm_u(c, 1);
        let nz = self.fb.ins().bor(n, z);
        let cv = self.fb.ins().bor(c, v);
        let all = self.fb.ins().bor(nz, cv);
        let all = self.fb.ins().ireduce(types::I32, all);
        self.fb.ins().ishl_imm_u(all, 28)
    }

    /// An i8 0/1 for A64 condition `cond` on the current flags.
    fn cond(&mut self, cond: u8) -> Value {
        let f = self.get_nzcv();
        let bit = |e: &mut Self, n: i64| {
            let s = e.fb.ins().ushr_imm_u(f, n);
            e.fb.ins().band_imm_u(s, 1)
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
                let ge = self.fb.ins().bxor_imm_u(x, 1);
                if cond >> 1 == 6 {
                    let z = bit(self, 30);
                    self.fb.ins().band_not(ge, z)
                } else {
                    ge
                }
            }
            _ => self.fb.ins().iconst(types::I32, 1),
        };
        let r = if cond & 1 == 1 && cond != 0xf {
            self.fb.ins().bxor_imm_u(r, 1)
        } else {
            r
        };
        self.fb.ins().ireduce(types::I8, r)
    }

    fn v_off(reg: u8, esize: u8, idx: u8) -> i32 {
        V_OFF + 16 * (reg as i32 & 31) + esize as i32 * idx as i32
    }

    pub(super) fn block(&mut self, b: &Block) {
        self.has_call = b.ops.iter().any(|op| matches!(op, Op::Call { .. }));
        // Count retired guest instructions (chained blocks never pass the dispatcher).
        let n = self
            .fb
            .ins()
            .load(types::I64, flags(), self.st, RETIRED_OFF);
        let n = self.fb.ins().iadd_imm_u(n, b.len as i64);
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
        // The shared fault exit: state.pc = the faulting instruction.
        self.fb.switch_to_block(self.fault);
        self.fb.seal_block(self.fault);
        let pc = self.fb.block_params(self.fault)[0];
        self.fb.ins().store(flags(), pc, self.st, PC_OFF);
        let code = self.i32c(EXIT_FAULT);
        self.fb.ins().return_(&[code]);
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
                let c = self.carry(carry);
                let (r, f) = self.add_flags(w, a, b, c);
                self.set_nzcv(f);
                self.def(dst, r);
            }
            Op::Adc { w, dst, a, b } => {
                let (a, b) = (self.t(a), self.t(b));
                let c = self.carry(Carry::Flag);
                let s = self.fb.ins().iadd(a, b);
                let s = self.fb.ins().iadd(s, c);
                let r = if w == Width::W32 {
                    self.fb.ins().band_imm_u(s, 0xffff_ffff)
                } else {
                    s
                };
                self.def(dst, r);
            }
            Op::LogicFlags { w, src } => {
                let v = self.t(src);
                let v = self.narrow(w, v);
                let sh = if w == Width::W32 { 31 } else { 63 };
                let n = self.fb.ins().ushr_imm_u(v, sh);
                let n = self.widen(w, n);
                let z = self.fb.ins().icmp_imm_u(IntCC::Equal, v, 0);
                let z = self.bool64(z);
                let zero = self.iconst(0);
                let f = self.pack_nzcv(n, z, zero, zero);
                self.set_nzcv(f);
            }
            Op::GetNzcv { dst } => {
                let f = self.get_nzcv();
                let v = self.fb.ins().uextend(types::I64, f);
                self.def(dst, v);
            }
            Op::SetNzcv { src } => {
                let v = self.t(src);
                let v = self.fb.ins().ireduce(types::I32, v);
                let v = self.fb.ins().band_imm_u(v, 0xf000_0000i64);
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
                let v = if self.has_fast() {
                    let slow = self.fb.create_block();
                    let join = self.fb.create_block();
                    self.fb.append_block_param(join, types::I64);
                    let host = self.fast_host(a, size, FastMem::READ, slow);
                    let v = self.host_load(host, size, signed);
                    self.fb.ins().jump(join, &[BlockArg::Value(v)]);
                    self.fb.seal_block(slow);
                    self.fb.switch_to_block(slow);
                    self.spill();
                    let v = self.slow_load(a, size, signed, pc);
                    self.fb.ins().jump(join, &[BlockArg::Value(v)]);
                    self.fb.seal_block(join);
                    self.fb.switch_to_block(join);
                    self.fb.block_params(join)[0]
                } else {
                    self.flush();
                    self.slow_load(a, size, signed, pc)
                };
                self.def(dst, v);
            }
            Op::Store { addr, src, size } => {
                let (a, v) = (self.t(addr), self.t(src));
                if self.has_fast() {
                    let slow = self.fb.create_block();
                    let join = self.fb.create_block();
                    let host = self.fast_host(a, size, FastMem::WRITE, slow);
                    self.host_store(host, v, size);
                    self.fb.ins().jump(join, &[]);
                    self.fb.seal_block(slow);
                    self.fb.switch_to_block(slow);
                    self.spill();
                    self.slow_store(a, v, size, pc);
                    self.fb.ins().jump(join, &[]);
                    self.fb.seal_block(join);
                    self.fb.switch_to_block(join);
                } else {
                    self.flush();
                    self.slow_store(a, v, size, pc);
                }
            }
            Op::LoadV { reg, addr, size } | Op::StoreV { reg, addr, size } => {
                let load = matches!(op, Op::LoadV { .. });
                let a = self.t(addr);
                if self.has_fast() {
                    let slow = self.fb.create_block();
                    let join = self.fb.create_block();
                    let need = if load { FastMem::READ } else { FastMem::WRITE };
                    let host = self.fast_host(a, size, need, slow);
                    self.host_vec(host, reg, size, load);
                    self.fb.ins().jump(join, &[]);
                    self.fb.seal_block(slow);
                    self.fb.switch_to_block(slow);
                    self.spill();
                    self.slow_vec(a, reg, size, load, pc);
                    self.fb.ins().jump(join, &[]);
                    self.fb.seal_block(join);
                    self.fb.switch_to_block(join);
                } else {
                    self.flush();
                    self.slow_vec(a, reg, size, load, pc);
                }
            }
            Op::LoadExcl {
                dst,
                dst_hi,
                addr,
                size,
            } => {
                self.flush();
                let a = self.t(addr);
                let sz = self.i32c(size as u32);
                let s = self.call(
                    self.sigs.load_excl,
                    runtime::jit_load_excl as *const () as usize,
                    &[a, sz],
                );
                self.check(s, pc);
                let lo = self
                    .fb
                    .ins()
                    .load(types::I64, flags(), self.cx, SCRATCH_OFF);
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
                let sz = self.i32c(size as u32);
                let s = self.call(
                    self.sigs.store_excl,
                    runtime::jit_store_excl as *const () as usize,
                    &[a, sz, lo, hi],
                );
                self.check(s, pc);
                let r = self
                    .fb
                    .ins()
                    .load(types::I64, flags(), self.cx, SCRATCH_OFF);
                self.def(status, r);
            }
            Op::ClearExcl => {
                let z = self.fb.ins().iconst(types::I8, 0);
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
                let low = self.fb.ins().band_imm_u(a, size as i64 - 1);
                let bad = self.fb.create_block();
                let ok = self.fb.create_block();
                self.fb.ins().brif(low, bad, &[], ok, &[]);
                self.fb.seal_block(bad);
                self.fb.switch_to_block(bad);
                self.flush_for_exit_path(|e| {
                    let w = e.i32c(write as u32);
                    let s = e.call(
                        e.sigs.align,
                        runtime::jit_align_fault as *const () as usize,
                        &[a, w],
                    );
                    let _ = s;
                    let pcv = e.iconst(pc);
                    e.fb.ins().jump(e.fault, &[BlockArg::Value(pcv)]);
                });
                self.fb.seal_block(ok);
                self.fb.switch_to_block(ok);
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
                    1 => self.fb.ins().band_imm_u(v, 0xff),
                    2 => self.fb.ins().band_imm_u(v, 0xffff),
                    4 => self.fb.ins().band_imm_u(v, 0xffff_ffff),
                    _ => v,
                };
                let z = self.iconst(0);
                self.fb.ins().store(flags(), v, self.st, off);
                self.fb.ins().store(flags(), z, self.st, off + 8);
            }
            Op::Call { f, insn } => {
                self.flush();
                let fp = self
                    .fb
                    .ins()
                    .iconst(self.ptr, f as *const () as usize as i64);
                let iw = self.i32c(insn);
                let s = self.call(
                    self.sigs.call,
                    runtime::jit_call as *const () as usize,
                    &[fp, iw],
                );
                self.invalidate();
                self.check(s, pc);
            }
            Op::CallValue { f, dst, a, b, c } => {
                self.flush();
                let fp = self
                    .fb
                    .ins()
                    .iconst(self.ptr, f as *const () as usize as i64);
                let (a, b, c) = (self.t(a), self.t(b), self.t(c));
                let v = self.call(
                    self.sigs.call_value,
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
        self.flush();
        f(self);
        self.regs = regs;
        self.dirty = dirty;
        self.nzcv = nzcv;
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

    fn slow_load(&mut self, a: Value, size: u8, signed: bool, pc: u64) -> Value {
        let sz = self.i32c(size as u32);
        let v = self.call(
            self.sigs.load,
            runtime::jit_load as *const () as usize,
            &[a, sz],
        );
        let failed = self.fb.ins().load(types::I32, flags(), self.cx, FAILED_OFF);
        self.check(failed, pc);
        if signed && size < 8 {
            let n = self.fb.ins().ireduce(Self::int_type(size), v);
            self.fb.ins().sextend(types::I64, n)
        } else {
            v
        }
    }

    fn slow_store(&mut self, a: Value, v: Value, size: u8, pc: u64) {
        let sz = self.i32c(size as u32);
        let s = self.call(
            self.sigs.store,
            runtime::jit_store as *const () as usize,
            &[a, sz, v],
        );
        self.check(s, pc);
    }

    fn slow_vec(&mut self, a: Value, reg: u8, size: u8, load: bool, pc: u64) {
        let f = if load {
            runtime::jit_load_v as *const () as usize
        } else {
            runtime::jit_store_v as *const () as usize
        };
        let r = self.i32c(reg as u32);
        let sz = self.i32c(size as u32);
        let s = self.call(self.sigs.vmem, f, &[r, a, sz]);
        self.check(s, pc);
    }

    fn carry(&mut self, c: Carry) -> Value {
        match c {
            Carry::Zero => self.iconst(0),
            Carry::One => self.iconst(1),
            Carry::Flag => {
                let f = self.get_nzcv();
                let s = self.fb.ins().ushr_imm_u(f, 29);
                let b = self.fb.ins().band_imm_u(s, 1);
                self.fb.ins().uextend(types::I64, b)
            }
        }
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
        let have = self.fb.ins().icmp_imm_u(IntCC::NotEqual, target, 0);
        self.tail_call_if(have, target, interrupt);
    }

    /// Leave for a computed pc: tail-call its code if the indirect-branch table has it, else
    /// return to the dispatcher.
    fn exit_indirect(&mut self, pc: Value, table: usize, interrupt: usize) {
        self.flush();
        self.fb.ins().store(flags(), pc, self.st, PC_OFF);
        let idx = self.fb.ins().ushr_imm_u(pc, 2);
        let idx = self.fb.ins().band_imm_u(idx, LOOKUP_ENTRIES as i64 - 1);
        let off = self.fb.ins().ishl_imm_u(idx, 4);
        let base = self.fb.ins().iconst(self.ptr, table as i64);
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
        let flag = self.fb.ins().iconst(self.ptr, interrupt as i64);
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
        let quiet = self.fb.ins().icmp_imm_u(IntCC::Equal, pending, 0);
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
        self.fb.switch_to_block(chain);
        let (st, cx) = (self.st, self.cx);
        self.fb
            .ins()
            .return_call_indirect(self.tail_sig, code, &[st, cx]);
        self.fb.switch_to_block(ret);
        let c = self.i32c(EXIT_CONTINUE);
        self.fb.ins().return_(&[c]);
    }

    fn terminal(&mut self, t: &Terminal) {
        match *t {
            Terminal::Jump(pc) => {
                let v = self.iconst(pc);
                match self.chain {
                    Some((slots, intr)) => {
                        let s = self.iconst(slots as u64);
                        self.exit_chained(v, s, intr)
                    }
                    None => self.exit(v, EXIT_CONTINUE),
                }
            }
            Terminal::Branch {
                cond,
                taken,
                not_taken,
            } => {
                let c = self.t(cond);
                let a = self.iconst(taken);
                let b = self.iconst(not_taken);
                let pc = self.fb.ins().select(c, a, b);
                match self.chain {
                    Some((slots, intr)) => {
                        let s0 = self.iconst(slots as u64);
                        let s1 =
                            self.iconst(slots as u64 + std::mem::size_of::<AtomicUsize>() as u64);
                        let s = self.fb.ins().select(c, s0, s1);
                        self.exit_chained(pc, s, intr)
                    }
                    None => self.exit(pc, EXIT_CONTINUE),
                }
            }
            Terminal::Indirect { target } => {
                let v = self.t(target);
                match self.lookup {
                    Some((table, intr)) => self.exit_indirect(v, table, intr),
                    None => self.exit(v, EXIT_CONTINUE),
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
