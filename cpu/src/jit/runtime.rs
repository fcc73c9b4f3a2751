//! What compiled code calls back into: memory accesses, exclusives and instruction helpers.
//! Every entry point is `extern "C"`, never panics across the JIT frame, and reports failure
//! through a status code with the error kept in [`JitCtx`].

use crate::interp::{load_exclusive, store_exclusive};
use crate::ir::{Helper, HelperError, ValueHelper};
use crate::mem::{Access, FaultKind, Mem, MemFault};
use crate::state::CpuState;

/// Per-run context handed to compiled code.
#[repr(C)]
pub struct JitCtx<'a> {
    /// 1 after a failed call (compiled code reads it after [`jit_load`]). Offset 0.
    pub failed: u32,
    /// Budgeted code ([`crate::Cpu::set_budgeted`]): chained exits return to the dispatcher
    /// once `state.retired` reaches this.
    pub limit: u64,
    pub state: *mut CpuState,
    pub mem: *mut (dyn Mem + 'a),
    /// Results of a 16-byte load-exclusive (low, high).
    pub scratch: [u64; 2],
    /// Set by a failing call; read by the engine after the block returns.
    pub error: Option<HelperError>,
}

/// Status codes returned by the fallible entry points.
pub const OK: u32 = 0;
pub const FAILED: u32 = 1;

impl JitCtx<'_> {
    /// # Safety
    /// `ctx` must be the live context the engine passed to the running block.
    unsafe fn get<'b>(
        ctx: *mut JitCtx<'b>,
    ) -> (&'b mut CpuState, &'b mut (dyn Mem + 'b), &'b mut JitCtx<'b>) {
        // SAFETY: the engine builds the context from exclusive borrows of the state and the
        // memory that outlive the block's run, and nothing else uses them meanwhile.
        unsafe { (&mut *(*ctx).state, &mut *(*ctx).mem, &mut *ctx) }
    }
}

fn fail(ctx: &mut JitCtx<'_>, e: HelperError) -> u32 {
    ctx.error = Some(e);
    ctx.failed = 1;
    FAILED
}

/// Load `size` bytes; on a fault records it and returns 0 with `ctx.failed` set.
pub(crate) extern "C" fn jit_load(ctx: *mut JitCtx<'_>, addr: u64, size: u32) -> u64 {
    // SAFETY: called only by compiled code with the engine's context.
    let (_, mem, c) = unsafe { JitCtx::get(ctx) };
    match mem.read(addr, size as u8) {
        Ok(v) => v,
        Err(f) => {
            fail(c, HelperError::Mem(f));
            0
        }
    }
}

pub(crate) extern "C" fn jit_store(ctx: *mut JitCtx<'_>, addr: u64, size: u32, value: u64) -> u32 {
    // SAFETY: as above.
    let (_, mem, c) = unsafe { JitCtx::get(ctx) };
    match mem.write(addr, size as u8, value) {
        Ok(()) => OK,
        Err(f) => fail(c, HelperError::Mem(f)),
    }
}

pub(crate) extern "C" fn jit_load_v(ctx: *mut JitCtx<'_>, reg: u32, addr: u64, size: u32) -> u32 {
    // SAFETY: as above.
    let (st, mem, c) = unsafe { JitCtx::get(ctx) };
    let r = if size == 16 {
        mem.read128(addr)
    } else {
        mem.read(addr, size as u8).map(u128::from)
    };
    match r {
        Ok(v) => {
            st.v[reg as usize & 31] = v;
            OK
        }
        Err(f) => fail(c, HelperError::Mem(f)),
    }
}

pub(crate) extern "C" fn jit_store_v(ctx: *mut JitCtx<'_>, reg: u32, addr: u64, size: u32) -> u32 {
    // SAFETY: as above.
    let (st, mem, c) = unsafe { JitCtx::get(ctx) };
    let v = st.v[reg as usize & 31];
    let r = if size == 16 {
        mem.write128(addr, v)
    } else {
        mem.write(addr, size as u8, v as u64)
    };
    match r {
        Ok(()) => OK,
        Err(f) => fail(c, HelperError::Mem(f)),
    }
}

/// Load-exclusive: the value goes to `ctx.scratch`.
pub(crate) extern "C" fn jit_load_excl(ctx: *mut JitCtx<'_>, addr: u64, size: u32) -> u32 {
    // SAFETY: as above.
    let (st, mem, c) = unsafe { JitCtx::get(ctx) };
    match load_exclusive(st, mem, addr, size as u8) {
        Ok(v) => {
            c.scratch = [v as u64, (v >> 64) as u64];
            OK
        }
        Err(f) => fail(c, HelperError::Mem(f)),
    }
}

/// Store-exclusive: the status register value goes to `ctx.scratch[0]`.
pub(crate) extern "C" fn jit_store_excl(
    ctx: *mut JitCtx<'_>,
    addr: u64,
    size: u32,
    lo: u64,
    hi: u64,
) -> u32 {
    // SAFETY: as above.
    let (st, mem, c) = unsafe { JitCtx::get(ctx) };
    match store_exclusive(st, mem, addr, size as u8, lo, hi) {
        Ok(s) => {
            c.scratch[0] = s;
            OK
        }
        Err(f) => fail(c, HelperError::Mem(f)),
    }
}

pub(crate) extern "C" fn jit_align_fault(ctx: *mut JitCtx<'_>, addr: u64, write: u32) -> u32 {
    // SAFETY: as above.
    let (_, _, c) = unsafe { JitCtx::get(ctx) };
    let access = if write != 0 {
        Access::Write
    } else {
        Access::Read
    };
    fail(
        c,
        HelperError::Mem(MemFault::new(addr, access, FaultKind::Alignment)),
    )
}

// The helper pointer passes through compiled code as an opaque pointer-sized value and is
// called here with its own (Rust) ABI, so its type not being FFI-safe does not matter.
#[allow(improper_ctypes_definitions)]
pub(crate) extern "C" fn jit_call(ctx: *mut JitCtx<'_>, f: Helper, insn: u32) -> u32 {
    // SAFETY: as above.
    let (st, mem, c) = unsafe { JitCtx::get(ctx) };
    match f(st, mem, insn) {
        Ok(()) => OK,
        Err(e) => fail(c, e),
    }
}

// As for jit_call.
#[allow(improper_ctypes_definitions)]
pub(crate) extern "C" fn jit_call_value(
    ctx: *mut JitCtx<'_>,
    f: ValueHelper,
    a: u64,
    b: u64,
    cc: u64,
) -> u64 {
    // SAFETY: as above.
    let (st, _, _) = unsafe { JitCtx::get(ctx) };
    f(st, a, b, cc)
}
