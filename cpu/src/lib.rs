//! The armboard guest CPU.
//!
//! Guest bytes are decoded by a table of encodings ([`a64`]), translated into IR blocks
//! ([`ir`]) and executed by the interpreter ([`interp`]). [`engine::Cpu`] ties these together
//! with a block cache and a run loop that stops at anything the machine must handle (system
//! calls, faults, undefined instructions).

pub mod a64;
pub mod engine;
pub mod fpu;
pub mod icache;
pub mod interp;
pub mod ir;
pub mod jit;
pub mod mem;
pub mod mmu;
pub mod model;
mod oplog;
pub mod state;
pub mod sys;
#[doc(hidden)]
pub mod testing;

pub use engine::{Cpu, EngineKind, Stop};
pub use mem::{Access, FastMem, FaultKind, Mem, MemFault, TlbFast};
pub use state::CpuState;
