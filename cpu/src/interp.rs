//! Tier 0: the IR interpreter. Executes one block against the CPU state and memory.

use crate::ir::{BinOp, Block, Carry, HelperError, Op, Terminal, UnOp, Width};
use crate::mem::{Access, FaultKind, Mem, MemFault};
use crate::state::{nzcv, CpuState};

mod prog;

pub use prog::{run_prog, Prog};

/// Why a block stopped. On every exit `state.pc` is the pc to resume at (or the pc of the
/// instruction that faulted / is undefined).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockExit {
    /// Normal end: continue at `state.pc`.
    Continue,
    Svc(u16),
    Hvc(u16),
    Smc(u16),
    Brk(u16),
    Undefined(u32),
    Fault(MemFault),
    Wait,
}

#[inline(always)]
fn mask(w: Width, v: u64) -> u64 {
    match w {
        Width::W32 => v as u32 as u64,
        Width::W64 => v,
    }
}

#[inline(always)]
fn bin(op: BinOp, w: Width, a: u64, b: u64) -> u64 {
    let bits = w.bits();
    match op {
        BinOp::Add => mask(w, a.wrapping_add(b)),
        BinOp::Sub => mask(w, a.wrapping_sub(b)),
        BinOp::And => mask(w, a & b),
        BinOp::Or => mask(w, a | b),
        BinOp::Xor => mask(w, a ^ b),
        BinOp::AndNot => mask(w, a & !b),
        BinOp::OrNot => mask(w, a | !b),
        BinOp::XorNot => mask(w, a ^ !b),
        BinOp::Shl => mask(w, a << (b as u32 % bits)),
        BinOp::Lsr => mask(w, a) >> (b as u32 % bits),
        BinOp::Asr => match w {
            Width::W32 => ((a as i32) >> (b as u32 % 32)) as u32 as u64,
            Width::W64 => ((a as i64) >> (b as u32 % 64)) as u64,
        },
        BinOp::Ror => match w {
            Width::W32 => (a as u32).rotate_right(b as u32 % 32) as u64,
            Width::W64 => a.rotate_right(b as u32 % 64),
        },
        BinOp::Mul => mask(w, a.wrapping_mul(b)),
        BinOp::UMulH => ((a as u128 * b as u128) >> 64) as u64,
        BinOp::SMulH => ((a as i64 as i128 * b as i64 as i128) >> 64) as u64,
        BinOp::UDiv => {
            let (a, b) = (mask(w, a), mask(w, b));
            a.checked_div(b).unwrap_or(0)
        }
        BinOp::SDiv => match w {
            Width::W32 => {
                let (a, b) = (a as i32, b as i32);
                if b == 0 {
                    0
                } else {
                    a.wrapping_div(b) as u32 as u64
                }
            }
            Width::W64 => {
                let (a, b) = (a as i64, b as i64);
                if b == 0 {
                    0
                } else {
                    a.wrapping_div(b) as u64
                }
            }
        },
        BinOp::Eq => (mask(w, a) == mask(w, b)) as u64,
        BinOp::Ne => (mask(w, a) != mask(w, b)) as u64,
        BinOp::Ult => (mask(w, a) < mask(w, b)) as u64,
        BinOp::Slt => match w {
            Width::W32 => ((a as i32) < (b as i32)) as u64,
            Width::W64 => ((a as i64) < (b as i64)) as u64,
        },
    }
}

#[inline(always)]
fn un(op: UnOp, w: Width, a: u64) -> u64 {
    match (op, w) {
        (UnOp::Not, _) => mask(w, !a),
        (UnOp::Neg, _) => mask(w, a.wrapping_neg()),
        (UnOp::Clz, Width::W32) => (a as u32).leading_zeros() as u64,
        (UnOp::Clz, Width::W64) => a.leading_zeros() as u64,
        (UnOp::Cls, Width::W32) => {
            let x = a as u32;
            ((x ^ ((x as i32) >> 1) as u32) & 0x7fff_ffff).leading_zeros() as u64 - 1
        }
        (UnOp::Cls, Width::W64) => {
            ((a ^ ((a as i64) >> 1) as u64) & (u64::MAX >> 1)).leading_zeros() as u64 - 1
        }
        (UnOp::Rbit, Width::W32) => (a as u32).reverse_bits() as u64,
        (UnOp::Rbit, Width::W64) => a.reverse_bits(),
        (UnOp::Rev, Width::W32) => (a as u32).swap_bytes() as u64,
        (UnOp::Rev, Width::W64) => a.swap_bytes(),
        (UnOp::Rev16, _) => {
            let v = mask(w, a);
            ((v & 0x00ff_00ff_00ff_00ff) << 8) | ((v >> 8) & 0x00ff_00ff_00ff_00ff)
        }
        (UnOp::Rev32, _) => {
            let lo = (a as u32).swap_bytes() as u64;
            let hi = ((a >> 32) as u32).swap_bytes() as u64;
            mask(w, lo | (hi << 32))
        }
        (UnOp::Sext8, _) => mask(w, a as i8 as i64 as u64),
        (UnOp::Sext16, _) => mask(w, a as i16 as i64 as u64),
        (UnOp::Sext32, _) => mask(w, a as i32 as i64 as u64),
        (UnOp::Zext8, _) => a & 0xff,
        (UnOp::Zext16, _) => a & 0xffff,
        (UnOp::Zext32, _) => a & 0xffff_ffff,
    }
}

/// a + b + c with the A64 NZCV result.
#[inline(always)]
pub fn add_with_flags(w: Width, a: u64, b: u64, c: u64) -> (u64, u32) {
    match w {
        Width::W32 => {
            let (a, b) = (a as u32, b as u32);
            let wide = a as u64 + b as u64 + c;
            let r = wide as u32;
            let mut f = 0;
            if (r as i32) < 0 {
                f |= nzcv::N;
            }
            if r == 0 {
                f |= nzcv::Z;
            }
            if wide >> 32 != 0 {
                f |= nzcv::C;
            }
            if ((a ^ r) & (b ^ r)) >> 31 != 0 {
                f |= nzcv::V;
            }
            (r as u64, f)
        }
        Width::W64 => {
            let wide = a as u128 + b as u128 + c as u128;
            let r = wide as u64;
            let mut f = 0;
            if (r as i64) < 0 {
                f |= nzcv::N;
            }
            if r == 0 {
                f |= nzcv::Z;
            }
            if wide >> 64 != 0 {
                f |= nzcv::C;
            }
            if ((a ^ r) & (b ^ r)) >> 63 != 0 {
                f |= nzcv::V;
            }
            (r, f)
        }
    }
}

/// Whether A64 condition `cond` holds for `flags` (NZCV in bits 31..28).
#[inline(always)]
pub fn cond_holds(cond: u8, flags: u32) -> bool {
    let n = flags & nzcv::N != 0;
    let z = flags & nzcv::Z != 0;
    let c = flags & nzcv::C != 0;
    let v = flags & nzcv::V != 0;
    let r = match cond >> 1 {
        0 => z,
        1 => c,
        2 => n,
        3 => v,
        4 => c && !z,
        5 => n == v,
        6 => !z && n == v,
        _ => true,
    };
    if cond & 1 == 1 && cond != 0xf {
        !r
    } else {
        r
    }
}

fn v_elem(v: u128, esize: u8, idx: u8) -> u64 {
    let bits = esize as u32 * 8;
    let shifted = v >> (bits * idx as u32);
    if bits == 64 {
        shifted as u64
    } else {
        (shifted as u64) & ((1u64 << bits) - 1)
    }
}

fn size_mask(size: u8) -> u128 {
    if size >= 16 {
        u128::MAX
    } else {
        (1u128 << (size as u32 * 8)) - 1
    }
}

/// LDXR and friends: an aligned load that arms the monitor. Shared by both tiers.
pub fn load_exclusive<M: Mem + ?Sized>(
    st: &mut CpuState,
    mem: &mut M,
    a: u64,
    size: u8,
) -> Result<u128, MemFault> {
    if !a.is_multiple_of(size as u64) {
        return Err(MemFault::new(a, Access::Read, FaultKind::Alignment));
    }
    let v = if size == 16 {
        mem.read128(a)?
    } else {
        u128::from(mem.read(a, size)?)
    };
    st.monitor.valid = true;
    st.monitor.addr = a;
    st.monitor.size = size;
    st.monitor.value = v;
    Ok(v)
}

/// STXR and friends: returns the status register value (0 stored, 1 failed). The store
/// succeeds only if the monitor is armed for this address and size and memory still holds
/// the value the load-exclusive saw (compare-and-swap). Always disarms the monitor.
pub fn store_exclusive<M: Mem + ?Sized>(
    st: &mut CpuState,
    mem: &mut M,
    a: u64,
    size: u8,
    lo: u64,
    hi: u64,
) -> Result<u64, MemFault> {
    if !a.is_multiple_of(size as u64) {
        return Err(MemFault::new(a, Access::Write, FaultKind::Alignment));
    }
    let m = st.monitor;
    st.monitor.valid = false;
    if !(m.valid && m.addr == a && m.size == size) {
        return Ok(1);
    }
    let ok = if size == 16 {
        mem.cmpxchg128(a, m.value, u128::from(lo) | (u128::from(hi) << 64))?
    } else {
        mem.cmpxchg(a, size, m.value as u64, lo & size_mask(size) as u64)?
    };
    Ok((!ok) as u64)
}

/// Run `block` once. `temps` is scratch reused across calls (no allocation per block run once
/// it has grown to the largest block).
pub fn run_block<M: Mem + AsDynMem + ?Sized>(
    block: &Block,
    st: &mut CpuState,
    mem: &mut M,
    temps: &mut Vec<u64>,
) -> BlockExit {
    if temps.len() < block.temps as usize {
        temps.resize(block.temps as usize, 0);
    }
    let t = &mut temps[..];
    macro_rules! fault {
        ($i:expr, $e:expr) => {{
            st.pc = block.pc_of_op($i);
            return $e;
        }};
    }
    for (i, op) in block.ops.iter().enumerate() {
        match *op {
            Op::Const { dst, value } => t[dst.0 as usize] = value,
            Op::Mov { dst, src } => t[dst.0 as usize] = t[src.0 as usize],
            Op::GetReg { dst, reg } => t[dst.0 as usize] = st.x[reg as usize & 31],
            Op::SetReg { reg, src } => st.x[reg as usize & 31] = t[src.0 as usize],
            Op::Bin { op, w, dst, a, b } => {
                t[dst.0 as usize] = bin(op, w, t[a.0 as usize], t[b.0 as usize])
            }
            Op::Un { op, w, dst, a } => t[dst.0 as usize] = un(op, w, t[a.0 as usize]),
            Op::AddFlags {
                w,
                dst,
                a,
                b,
                carry,
            } => {
                let c = match carry {
                    Carry::Zero => 0,
                    Carry::One => 1,
                    Carry::Flag => (st.nzcv >> 29) as u64 & 1,
                };
                let (r, f) = add_with_flags(w, t[a.0 as usize], t[b.0 as usize], c);
                t[dst.0 as usize] = r;
                st.nzcv = f;
            }
            Op::Adc { w, dst, a, b } => {
                let c = (st.nzcv >> 29) as u64 & 1;
                t[dst.0 as usize] = mask(
                    w,
                    t[a.0 as usize]
                        .wrapping_add(t[b.0 as usize])
                        .wrapping_add(c),
                );
            }
            Op::LogicFlags { w, src } => {
                let v = t[src.0 as usize];
                let (neg, zero) = match w {
                    Width::W32 => ((v as u32 as i32) < 0, v as u32 == 0),
                    Width::W64 => ((v as i64) < 0, v == 0),
                };
                st.nzcv = if neg { nzcv::N } else { 0 } | if zero { nzcv::Z } else { 0 };
            }
            Op::GetNzcv { dst } => t[dst.0 as usize] = st.nzcv as u64,
            Op::SetNzcv { src } => st.nzcv = (t[src.0 as usize] as u32) & 0xf000_0000,
            Op::Cond { dst, cond } => t[dst.0 as usize] = cond_holds(cond, st.nzcv) as u64,
            Op::Select { dst, cond, a, b } => {
                t[dst.0 as usize] = if t[cond.0 as usize] != 0 {
                    t[a.0 as usize]
                } else {
                    t[b.0 as usize]
                }
            }
            Op::Load {
                dst,
                addr,
                size,
                signed,
            } => match mem.read(t[addr.0 as usize], size) {
                Ok(v) => {
                    t[dst.0 as usize] = if signed {
                        match size {
                            1 => v as i8 as i64 as u64,
                            2 => v as i16 as i64 as u64,
                            4 => v as i32 as i64 as u64,
                            _ => v,
                        }
                    } else {
                        v
                    }
                }
                Err(f) => fault!(i, BlockExit::Fault(f)),
            },
            Op::Store { addr, src, size } => {
                if let Err(f) = mem.write(t[addr.0 as usize], size, t[src.0 as usize]) {
                    fault!(i, BlockExit::Fault(f))
                }
            }
            Op::LoadV { reg, addr, size } => {
                let a = t[addr.0 as usize];
                let r = if size == 16 {
                    mem.read128(a)
                } else {
                    mem.read(a, size).map(u128::from)
                };
                match r {
                    Ok(v) => st.v[reg as usize] = v,
                    Err(f) => fault!(i, BlockExit::Fault(f)),
                }
            }
            Op::StoreV { reg, addr, size } => {
                let a = t[addr.0 as usize];
                let v = st.v[reg as usize];
                let r = if size == 16 {
                    mem.write128(a, v)
                } else {
                    mem.write(a, size, v as u64)
                };
                if let Err(f) = r {
                    fault!(i, BlockExit::Fault(f))
                }
            }
            Op::LoadExcl {
                dst,
                dst_hi,
                addr,
                size,
            } => match load_exclusive(st, mem, t[addr.0 as usize], size) {
                Ok(v) => {
                    t[dst.0 as usize] = v as u64;
                    if let Some(h) = dst_hi {
                        t[h.0 as usize] = (v >> 64) as u64;
                    }
                }
                Err(f) => fault!(i, BlockExit::Fault(f)),
            },
            Op::StoreExcl {
                status,
                addr,
                src,
                src_hi,
                size,
            } => {
                let hi = src_hi.map_or(0, |h| t[h.0 as usize]);
                match store_exclusive(st, mem, t[addr.0 as usize], size, t[src.0 as usize], hi) {
                    Ok(failed) => t[status.0 as usize] = failed,
                    Err(f) => fault!(i, BlockExit::Fault(f)),
                }
            }
            Op::ClearExcl => st.monitor.valid = false,
            Op::CheckAlign { addr, size, write } => {
                let a = t[addr.0 as usize];
                if !a.is_multiple_of(size as u64) {
                    let acc = if write { Access::Write } else { Access::Read };
                    fault!(
                        i,
                        BlockExit::Fault(MemFault::new(a, acc, FaultKind::Alignment))
                    )
                }
            }
            Op::Fence => std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst),
            Op::GetVElem {
                dst,
                reg,
                esize,
                idx,
            } => t[dst.0 as usize] = v_elem(st.v[reg as usize], esize, idx),
            Op::SetVElem {
                reg,
                src,
                esize,
                idx,
            } => {
                let sh = esize as u32 * 8 * idx as u32;
                let m = size_mask(esize) << sh;
                let v = &mut st.v[reg as usize];
                *v = (*v & !m) | ((u128::from(t[src.0 as usize]) << sh) & m);
            }
            Op::SetVScalar { reg, src, esize } => {
                st.v[reg as usize] = u128::from(t[src.0 as usize]) & size_mask(esize);
            }
            Op::Call { f, insn } => {
                if let Err(e) = f(st, mem.as_dyn(), insn) {
                    st.pc = block.pc_of_op(i);
                    return match e {
                        HelperError::Mem(f) => BlockExit::Fault(f),
                        HelperError::Undefined => BlockExit::Undefined(insn),
                    };
                }
            }
            Op::CallValue { f, dst, a, b, c } => {
                t[dst.0 as usize] = f(st, t[a.0 as usize], t[b.0 as usize], t[c.0 as usize])
            }
        }
    }
    match block.terminal {
        Terminal::Branch { cond, .. } => exit(block.terminal, st, t[cond.0 as usize]),
        Terminal::Indirect { target } => exit(block.terminal, st, t[target.0 as usize]),
        term => exit(term, st, 0),
    }
}

/// Leave a block through `term`; `value` is the terminal's operand (branch condition or
/// indirect target), if it has one.
#[inline(always)]
fn exit(term: Terminal, st: &mut CpuState, value: u64) -> BlockExit {
    match term {
        Terminal::Jump(pc) => {
            st.pc = pc;
            BlockExit::Continue
        }
        Terminal::Branch {
            taken, not_taken, ..
        } => {
            st.pc = if value != 0 { taken } else { not_taken };
            BlockExit::Continue
        }
        Terminal::Indirect { .. } => {
            st.pc = value;
            BlockExit::Continue
        }
        Terminal::Svc { imm, next } => {
            st.pc = next;
            BlockExit::Svc(imm)
        }
        Terminal::Brk { imm, pc } => {
            st.pc = pc;
            BlockExit::Brk(imm)
        }
        Terminal::Undefined { insn, pc } => {
            st.pc = pc;
            BlockExit::Undefined(insn)
        }
        Terminal::FetchFault { pc, fault } => {
            st.pc = pc;
            BlockExit::Fault(fault)
        }
        Terminal::Wait { next } => {
            st.pc = next;
            BlockExit::Wait
        }
        Terminal::Hvc { imm, next } => {
            st.pc = next;
            BlockExit::Hvc(imm)
        }
        Terminal::Smc { imm, next } => {
            st.pc = next;
            BlockExit::Smc(imm)
        }
        Terminal::Dynamic => BlockExit::Continue,
    }
}

/// Lets generic memory be handed to helpers as a trait object.
pub trait AsDynMem {
    fn as_dyn(&mut self) -> &mut dyn Mem;
}

impl<M: Mem> AsDynMem for M {
    fn as_dyn(&mut self) -> &mut dyn Mem {
        self
    }
}

impl AsDynMem for dyn Mem + '_ {
    fn as_dyn(&mut self) -> &mut dyn Mem {
        self
    }
}
