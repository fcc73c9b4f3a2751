//! The Linux user-mode machine: an arm64 ELF loaded into a process-like address space, its
//! system calls served by the host.

pub mod loader;
pub mod memory;
pub mod syscall;

pub use loader::{load, LoadError, Loaded};
pub use memory::AddressSpace;

use armboard_cpu::{model, Cpu, EngineKind, Stop};
use std::path::{Path, PathBuf};

/// How to run a program.
#[derive(Debug, Clone, Default)]
pub struct UserConfig {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub sysroot: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub engine: EngineKind,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Memory(#[from] memory::MemError),
}

/// Run a program to completion; returns its exit status as a shell would see it.
pub fn run(cfg: &UserConfig) -> Result<i32, UserError> {
    let space = AddressSpace::new()?;
    let loaded = load(&space, &cfg.program, cfg.sysroot.as_deref())?;
    let mut args: Vec<Vec<u8>> = vec![cfg.program.as_os_str().as_encoded_bytes().to_vec()];
    args.extend(cfg.args.iter().map(|a| a.as_bytes().to_vec()));
    let env: Vec<Vec<u8>> = cfg
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}").into_bytes())
        .collect();
    let execfn = cfg.program.as_os_str().as_encoded_bytes().to_vec();
    let mut random = [0u8; 16];
    getrandom_bytes(&mut random);
    let sp = loader::setup_stack(&space, &loaded, &args, &env, &execfn, random)?;
    let mut cpu = Cpu::with_engine(model::CORTEX_A72, cfg.engine);
    cpu.state.pc = loaded.entry;
    cpu.state.set_sp(sp);
    let mut mem = &space;
    loop {
        match cpu.run(&mut mem) {
            Stop::Svc(_) => match syscall::dispatch(&space, &mut cpu.state) {
                syscall::Outcome::Continue => {}
                syscall::Outcome::Exit(code) => return Ok(code & 0xff),
            },
            Stop::Undefined(insn) => {
                eprintln!(
                    "armboard: undefined instruction {insn:#010x} at {:#x}: SIGILL",
                    cpu.state.pc
                );
                return Ok(128 + libc::SIGILL);
            }
            Stop::Fault(f) => {
                eprintln!("armboard: {f} (pc {:#x}): SIGSEGV", cpu.state.pc);
                return Ok(128 + libc::SIGSEGV);
            }
            Stop::Brk(_) => {
                eprintln!("armboard: BRK at {:#x}: SIGTRAP", cpu.state.pc);
                return Ok(128 + libc::SIGTRAP);
            }
            Stop::Wait | Stop::Interrupted => std::thread::yield_now(),
        }
    }
}

fn getrandom_bytes(buf: &mut [u8]) {
    // SAFETY: buf is a valid writable buffer of its length.
    unsafe { libc::getrandom(buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
}

/// Whether `p` exists (for clearer CLI errors).
pub fn exists(p: &Path) -> bool {
    p.exists()
}
