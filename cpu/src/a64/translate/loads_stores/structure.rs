//! AdvSIMD structure loads and stores: LD1-LD4/ST1-ST4 (multiple structures), the single
//! structure (lane) forms, LD1R-LD4R, each also post-indexed by an immediate (the transfer
//! size) or a register. Implemented as helpers over the V registers: every load is done into
//! locals before any register (V, then the base) is written.

use crate::a64::{Flow, Insn, Translator};
use crate::ir::{HelperError, Op};
use crate::mem::Mem;
use crate::state::CpuState;

/// Shape of a multiple-structures access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Multi {
    /// Registers transferred one after another (LD1 with 2-4 registers).
    rpt: usize,
    /// Elements per structure (LD2/LD3/LD4), interleaved across registers.
    selem: usize,
    /// Element size in bytes.
    ebytes: usize,
    /// Register size in bytes (8 or 16).
    datasize: usize,
}

fn decode_multi(i: Insn) -> Option<Multi> {
    let (rpt, selem) = match i.bits(15, 12) {
        0b0000 => (1, 4),
        0b0010 => (4, 1),
        0b0100 => (1, 3),
        0b0110 => (3, 1),
        0b0111 => (1, 1),
        0b1000 => (1, 2),
        0b1010 => (2, 1),
        _ => return None,
    };
    let size = i.bits(11, 10);
    let q = i.bit(30);
    // The 1D arrangement exists only for LD1/ST1.
    if size == 3 && !q && selem != 1 {
        return None;
    }
    Some(Multi {
        rpt,
        selem,
        ebytes: 1 << size,
        datasize: if q { 16 } else { 8 },
    })
}

/// Shape of a single-structure (lane or replicate) access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lane {
    selem: usize,
    ebytes: usize,
    index: u32,
    replicate: bool,
    /// Register size in bytes for the replicate forms.
    datasize: usize,
}

fn decode_single(i: Insn) -> Option<Lane> {
    let opcode = i.bits(15, 13);
    let s = i.bits(12, 12);
    let size = i.bits(11, 10);
    let q = i.bits(30, 30);
    let load = i.bit(22);
    let selem = ((((opcode & 1) << 1) | i.bits(21, 21)) + 1) as usize;
    let mut scale = opcode >> 1;
    let mut index = 0;
    let mut replicate = false;
    match scale {
        3 => {
            if !load || s == 1 {
                return None;
            }
            scale = size;
            replicate = true;
        }
        0 => index = (q << 3) | (s << 2) | size,
        1 => {
            if size & 1 == 1 {
                return None;
            }
            index = (q << 2) | (s << 1) | (size >> 1);
        }
        _ => {
            if size & 2 != 0 {
                return None;
            }
            if size & 1 == 0 {
                index = (q << 1) | s;
            } else {
                if s == 1 {
                    return None;
                }
                index = q;
                scale = 3;
            }
        }
    }
    Some(Lane {
        selem,
        ebytes: 1 << scale,
        index,
        replicate,
        datasize: if q == 1 { 16 } else { 8 },
    })
}

fn read_reg_bytes(mem: &mut dyn Mem, addr: u64, len: usize) -> Result<u128, HelperError> {
    Ok(if len == 16 {
        mem.read128(addr)?
    } else {
        u128::from(mem.read(addr, 8)?)
    })
}

fn elem(v: u128, idx: usize, ebytes: usize) -> u64 {
    let bits = ebytes * 8;
    let x = (v >> (idx * bits)) as u64;
    if bits == 64 {
        x
    } else {
        x & ((1u64 << bits) - 1)
    }
}

fn emask(ebytes: usize) -> u128 {
    (1u128 << (ebytes * 8)) - 1
}

/// Post-index writeback: Rm = 31 adds the transfer size, otherwise X[m].
fn post_index(st: &mut CpuState, i: Insn, base: u64, total: usize) {
    if i.bit(23) {
        let off = match i.rm() {
            31 => total as u64,
            m => st.x[m as usize],
        };
        st.x[i.rn() as usize] = base.wrapping_add(off);
    }
}

/// LD1-4/ST1-4 (multiple structures), optionally post-indexed.
fn multiple_helper(st: &mut CpuState, mem: &mut dyn Mem, insn: u32) -> Result<(), HelperError> {
    let i = Insn(insn);
    let m = decode_multi(i).ok_or(HelperError::Undefined)?;
    let t = i.rt() as usize;
    let base = st.x[i.rn() as usize];
    let nregs = m.rpt * m.selem;
    let elements = m.datasize / m.ebytes;
    let mut offs = 0u64;
    if i.bit(22) {
        let mut regs = [0u128; 4];
        if m.selem == 1 {
            for r in regs.iter_mut().take(nregs) {
                *r = read_reg_bytes(mem, base.wrapping_add(offs), m.datasize)?;
                offs += m.datasize as u64;
            }
        } else {
            for e in 0..elements {
                for r in regs.iter_mut().take(m.selem) {
                    let v = mem.read(base.wrapping_add(offs), m.ebytes as u8)?;
                    *r |= u128::from(v) << (e * m.ebytes * 8);
                    offs += m.ebytes as u64;
                }
            }
        }
        for (k, r) in regs.iter().take(nregs).enumerate() {
            st.v[(t + k) % 32] = *r;
        }
    } else if m.selem == 1 {
        for k in 0..nregs {
            let v = st.v[(t + k) % 32];
            let a = base.wrapping_add(offs);
            if m.datasize == 16 {
                mem.write128(a, v)?;
            } else {
                mem.write(a, 8, v as u64)?;
            }
            offs += m.datasize as u64;
        }
    } else {
        for e in 0..elements {
            for s in 0..m.selem {
                let v = elem(st.v[(t + s) % 32], e, m.ebytes);
                mem.write(base.wrapping_add(offs), m.ebytes as u8, v)?;
                offs += m.ebytes as u64;
            }
        }
    }
    post_index(st, i, base, nregs * m.datasize);
    Ok(())
}

/// LD1-4/ST1-4 (single structure) and LD1R-LD4R, optionally post-indexed.
fn single_helper(st: &mut CpuState, mem: &mut dyn Mem, insn: u32) -> Result<(), HelperError> {
    let i = Insn(insn);
    let l = decode_single(i).ok_or(HelperError::Undefined)?;
    let t = i.rt() as usize;
    let base = st.x[i.rn() as usize];
    let eb = l.ebytes;
    if i.bit(22) {
        let mut vals = [0u64; 4];
        for (s, v) in vals.iter_mut().take(l.selem).enumerate() {
            *v = mem.read(base.wrapping_add((s * eb) as u64), eb as u8)?;
        }
        for (s, &v) in vals.iter().take(l.selem).enumerate() {
            let reg = &mut st.v[(t + s) % 32];
            if l.replicate {
                let mut r = 0u128;
                for k in 0..l.datasize / eb {
                    r |= u128::from(v) << (k * eb * 8);
                }
                *reg = r;
            } else {
                let sh = l.index as usize * eb * 8;
                *reg = (*reg & !(emask(eb) << sh)) | (u128::from(v) << sh);
            }
        }
    } else {
        for s in 0..l.selem {
            let v = elem(st.v[(t + s) % 32], l.index as usize, eb);
            mem.write(base.wrapping_add((s * eb) as u64), eb as u8, v)?;
        }
    }
    post_index(st, i, base, l.selem * eb);
    Ok(())
}

pub(super) fn multiple(t: &mut Translator, i: Insn) -> Flow {
    if decode_multi(i).is_none() {
        return t.undefined(i);
    }
    t.op(Op::Call {
        f: multiple_helper,
        insn: i.0,
    });
    Flow::Next
}

pub(super) fn single_lane(t: &mut Translator, i: Insn) -> Flow {
    if decode_single(i).is_none() {
        return t.undefined(i);
    }
    t.op(Op::Call {
        f: single_helper,
        insn: i.0,
    });
    Flow::Next
}
