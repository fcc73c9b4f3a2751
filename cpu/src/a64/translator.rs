//! The block translator: fetches and decodes guest instructions and lets each row's handler
//! emit IR, until a handler ends the block.

use super::decode::decode;
use super::Insn;
use crate::ir::{BinOp, Block, InsnStart, Op, Terminal, UnOp, Width, T};
use crate::mem::Mem;

/// What a handler tells the translator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The instruction falls through to the next one.
    Next,
    /// The handler set the block's terminal.
    End,
}

/// Most guest instructions per block.
pub const MAX_BLOCK_INSNS: u32 = 128;

/// Builds one IR block.
pub struct Translator {
    /// Address of the instruction being translated.
    pub pc: u64,
    ops: Vec<Op>,
    insns: Vec<InsnStart>,
    next_temp: u16,
    terminal: Option<Terminal>,
}

impl Translator {
    pub fn new(pc: u64) -> Self {
        Self {
            pc,
            ops: Vec::with_capacity(64),
            insns: Vec::new(),
            next_temp: 0,
            terminal: None,
        }
    }

    /// A fresh temp.
    pub fn temp(&mut self) -> T {
        let t = T(self.next_temp);
        self.next_temp += 1;
        t
    }

    pub fn op(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// End the block with `t`.
    pub fn end(&mut self, t: Terminal) -> Flow {
        self.terminal = Some(t);
        Flow::End
    }

    /// End the block as an undefined instruction at the current pc.
    pub fn undefined(&mut self, insn: Insn) -> Flow {
        // Drop anything this instruction already emitted.
        if let Some(start) = self.insns.last() {
            self.ops.truncate(start.op as usize);
        }
        self.end(Terminal::Undefined {
            insn: insn.0,
            pc: self.pc,
        })
    }

    pub fn konst(&mut self, value: u64) -> T {
        let dst = self.temp();
        self.op(Op::Const { dst, value });
        dst
    }

    /// X register `r` where 31 reads as zero (XZR).
    pub fn get_x(&mut self, r: u8) -> T {
        if r == 31 {
            self.konst(0)
        } else {
            self.get_xsp(r)
        }
    }

    /// X register `r` where 31 is SP.
    pub fn get_xsp(&mut self, r: u8) -> T {
        let dst = self.temp();
        self.op(Op::GetReg { dst, reg: r });
        dst
    }

    /// Write X register `r` where 31 discards (XZR). The value must already be zero-extended
    /// for a W-register write (W32 ops produce that).
    pub fn set_x(&mut self, r: u8, src: T) {
        if r != 31 {
            self.op(Op::SetReg { reg: r, src });
        }
    }

    /// Write X register `r` where 31 is SP.
    pub fn set_xsp(&mut self, r: u8, src: T) {
        self.op(Op::SetReg { reg: r, src });
    }

    /// Read a general register at width `w` (31 = XZR); W32 reads are zero-extended.
    pub fn get_reg(&mut self, r: u8, w: Width) -> T {
        let x = self.get_x(r);
        match w {
            Width::W64 => x,
            Width::W32 => self.un(UnOp::Zext32, Width::W64, x),
        }
    }

    pub fn bin(&mut self, op: BinOp, w: Width, a: T, b: T) -> T {
        let dst = self.temp();
        self.op(Op::Bin { op, w, dst, a, b });
        dst
    }

    /// `a op imm`.
    pub fn bin_imm(&mut self, op: BinOp, w: Width, a: T, imm: u64) -> T {
        let b = self.konst(imm);
        self.bin(op, w, a, b)
    }

    pub fn un(&mut self, op: UnOp, w: Width, a: T) -> T {
        let dst = self.temp();
        self.op(Op::Un { op, w, dst, a });
        dst
    }

    /// Address of the next instruction.
    pub fn next_pc(&self) -> u64 {
        self.pc.wrapping_add(4)
    }

    fn finish(mut self, start: u64, len: u32) -> Block {
        let terminal = self.terminal.unwrap_or(Terminal::Jump(self.pc));
        // Blocks live as long as the code cache: keep no spare capacity (a booting kernel
        // translates ~50 000 blocks; 64 spare ops each were ~95 MiB).
        self.ops.shrink_to_fit();
        self.insns.shrink_to_fit();
        let b = Block {
            pc: start,
            len,
            ops: self.ops,
            insns: self.insns,
            terminal,
            temps: self.next_temp,
        };
        #[cfg(debug_assertions)]
        if let Err(e) = crate::ir::verify(&b) {
            panic!("IR verifier: block at {start:#x}: {e}\n{b:#?}");
        }
        b
    }
}

/// Translate the block starting at `pc`. Stops at a handler that ends the block, after
/// [`MAX_BLOCK_INSNS`], or at a page boundary (so a fetch fault belongs to its own block).
pub fn translate_block<M: Mem + ?Sized>(mem: &mut M, pc: u64) -> Block {
    let mut t = Translator::new(pc);
    let mut n = 0;
    loop {
        let word = match mem.fetch(t.pc) {
            Ok(w) => w,
            Err(fault) => {
                if n == 0 {
                    t.terminal = Some(Terminal::FetchFault { pc: t.pc, fault });
                    return t.finish(pc, 0);
                }
                break;
            }
        };
        t.insns.push(InsnStart {
            op: t.ops.len() as u32,
            pc: t.pc,
        });
        let insn = Insn(word);
        let flow = match decode(word) {
            Some(row) => (row.handler)(&mut t, insn),
            None => t.undefined(insn),
        };
        n += 1;
        if flow == Flow::End {
            break;
        }
        t.pc = t.pc.wrapping_add(4);
        if n >= MAX_BLOCK_INSNS || t.pc & 0xfff == 0 {
            break;
        }
    }
    t.finish(pc, n)
}
