//! Linux arm64 system calls served by the host (a minimal first set; see the user-mode
//! issue for the whole list).

use super::memory::AddressSpace;
use armboard_cpu::CpuState;

/// arm64 system call numbers (include/uapi/asm-generic/unistd.h).
pub mod nr {
    pub const WRITE: u64 = 64;
    pub const EXIT: u64 = 93;
    pub const EXIT_GROUP: u64 = 94;
}

/// What a system call did to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Result in x0; continue.
    Continue,
    /// The process exits with this status.
    Exit(i32),
}

const ENOSYS: i64 = 38;
const EFAULT: i64 = 14;

/// Serve the system call in `st` (number in x8, arguments in x0..x5).
pub fn dispatch(space: &AddressSpace, st: &mut CpuState) -> Outcome {
    let a = [st.x[0], st.x[1], st.x[2], st.x[3], st.x[4], st.x[5]];
    let ret: i64 = match st.x[8] {
        nr::WRITE => {
            let mut buf = vec![0u8; a[2].min(1 << 20) as usize];
            match space.read_bytes(a[1], &mut buf) {
                // SAFETY: buf is a valid buffer of its length; the fd is the guest's.
                Ok(()) => unsafe {
                    let r =
                        libc::write(a[0] as i32, buf.as_ptr() as *const libc::c_void, buf.len());
                    if r < 0 {
                        -(std::io::Error::last_os_error().raw_os_error().unwrap_or(5) as i64)
                    } else {
                        r as i64
                    }
                },
                Err(_) => -EFAULT,
            }
        }
        nr::EXIT | nr::EXIT_GROUP => return Outcome::Exit(a[0] as i32),
        n => {
            log::warn!("unknown syscall {n}");
            -ENOSYS
        }
    };
    st.x[0] = ret as u64;
    Outcome::Continue
}
