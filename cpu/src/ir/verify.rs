//! The IR verifier: every temp is defined before it is used, and register and element
//! indices are in range. Runs after translation in debug builds.

use super::{Block, Op, Terminal, T};

/// The temps `op` reads, into `out` (emptied first).
pub(crate) fn uses(op: &Op, out: &mut Vec<T>) {
    out.clear();
    match *op {
        Op::Const { .. } | Op::GetReg { .. } | Op::GetNzcv { .. } | Op::Cond { .. } => {}
        Op::Mov { src, .. } | Op::SetReg { src, .. } | Op::SetNzcv { src } => out.push(src),
        Op::Bin { a, b, .. } | Op::AddFlags { a, b, .. } | Op::Adc { a, b, .. } => {
            out.extend([a, b])
        }
        Op::Un { a, .. } => out.push(a),
        Op::LogicFlags { src, .. } => out.push(src),
        Op::Select { cond, a, b, .. } => out.extend([cond, a, b]),
        Op::Load { addr, .. } | Op::LoadV { addr, .. } | Op::StoreV { addr, .. } => out.push(addr),
        Op::LoadExcl { addr, .. } | Op::CheckAlign { addr, .. } => out.push(addr),
        Op::Store { addr, src, .. } => out.extend([addr, src]),
        Op::StoreExcl {
            addr, src, src_hi, ..
        } => {
            out.extend([addr, src]);
            out.extend(src_hi);
        }
        Op::ClearExcl | Op::Fence | Op::Call { .. } | Op::GetVElem { .. } => {}
        Op::SetVElem { src, .. } | Op::SetVScalar { src, .. } => out.push(src),
        Op::CallValue { a, b, c, .. } => out.extend([a, b, c]),
    }
}

/// The temps `op` writes, into `out` (emptied first).
pub(crate) fn defs(op: &Op, out: &mut Vec<T>) {
    out.clear();
    match *op {
        Op::Const { dst, .. }
        | Op::Mov { dst, .. }
        | Op::GetReg { dst, .. }
        | Op::Bin { dst, .. }
        | Op::Un { dst, .. }
        | Op::AddFlags { dst, .. }
        | Op::Adc { dst, .. }
        | Op::GetNzcv { dst }
        | Op::Cond { dst, .. }
        | Op::Select { dst, .. }
        | Op::Load { dst, .. }
        | Op::GetVElem { dst, .. }
        | Op::CallValue { dst, .. } => out.push(dst),
        Op::LoadExcl { dst, dst_hi, .. } => {
            out.push(dst);
            out.extend(dst_hi);
        }
        Op::StoreExcl { status, .. } => out.push(status),
        _ => {}
    }
}

fn check_size(size: u8, vec: bool) -> bool {
    matches!(size, 1 | 2 | 4 | 8) || (vec && size == 16)
}

/// The temp a terminal reads, if any.
pub(crate) fn terminal_use(t: &Terminal) -> Option<T> {
    match *t {
        Terminal::Branch { cond, .. } => Some(cond),
        Terminal::Indirect { target } => Some(target),
        _ => None,
    }
}

/// Check a block's invariants; returns a description of the first violation.
pub fn verify(b: &Block) -> Result<(), String> {
    let mut defined = vec![false; b.temps as usize];
    let mut scratch = Vec::new();
    for (i, op) in b.ops.iter().enumerate() {
        uses(op, &mut scratch);
        for t in &scratch {
            match defined.get(t.0 as usize) {
                Some(true) => {}
                Some(false) => return Err(format!("op {i} {op:?}: {t:?} used before definition")),
                None => return Err(format!("op {i} {op:?}: {t:?} beyond temp count")),
            }
        }
        let ok = match *op {
            Op::GetReg { reg, .. } | Op::SetReg { reg, .. } => reg < 32,
            Op::Load { size, .. } | Op::Store { size, .. } => check_size(size, false),
            Op::LoadV { reg, size, .. } | Op::StoreV { reg, size, .. } => {
                reg < 32 && check_size(size, true)
            }
            Op::LoadExcl { size, dst_hi, .. } => {
                check_size(size, true) && (size == 16) == dst_hi.is_some()
            }
            Op::StoreExcl { size, src_hi, .. } => {
                check_size(size, true) && (size == 16) == src_hi.is_some()
            }
            Op::GetVElem {
                reg, esize, idx, ..
            }
            | Op::SetVElem {
                reg, esize, idx, ..
            } => reg < 32 && check_size(esize, false) && (idx as usize) * (esize as usize) < 16,
            Op::SetVScalar { reg, esize, .. } => reg < 32 && check_size(esize, true),
            Op::Cond { cond, .. } => cond < 16,
            _ => true,
        };
        if !ok {
            return Err(format!("op {i} {op:?}: operand out of range"));
        }
        defs(op, &mut scratch);
        for t in &scratch {
            match defined.get_mut(t.0 as usize) {
                Some(d) => *d = true,
                None => return Err(format!("op {i} {op:?}: {t:?} beyond temp count")),
            }
        }
    }
    if let Some(t) = terminal_use(&b.terminal) {
        if !defined.get(t.0 as usize).copied().unwrap_or(false) {
            return Err(format!("terminal uses undefined {t:?}"));
        }
    }
    if b.insns.windows(2).any(|w| w[0].op > w[1].op) {
        return Err("instruction starts out of order".into());
    }
    Ok(())
}
