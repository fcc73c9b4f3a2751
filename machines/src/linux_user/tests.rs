//! The system-call layer driven directly (no guest code): each test sets x8/x0..x5 as an SVC
//! would and checks the result and the guest-visible effects.

use super::memory::perm;
use super::syscall::{dispatch, nr};
use super::{test_thread, Thread};

fn sys(t: &mut Thread, n: u64, args: &[u64]) -> i64 {
    t.cpu.state.x[8] = n;
    for (i, &a) in args.iter().enumerate() {
        t.cpu.state.x[i] = a;
    }
    for i in args.len()..6 {
        t.cpu.state.x[i] = 0;
    }
    dispatch(t);
    t.cpu.state.x[0] as i64
}

/// Scratch guest memory for strings and buffers.
fn scratch(t: &mut Thread) -> u64 {
    let a = sys(t, nr::MMAP, &[0, 1 << 16, 3, 0x22, u64::MAX, 0]);
    assert!(a > 0, "mmap scratch: {a}");
    a as u64
}

fn put_str(t: &Thread, addr: u64, s: &str) -> u64 {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    t.proc.space.write_bytes(addr, &v).unwrap();
    addr
}

fn get(t: &Thread, addr: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    t.proc.space.read_bytes(addr, &mut v).unwrap();
    v
}

fn read_fd(t: &mut Thread, fd: i64, buf: u64) -> String {
    let mut out = Vec::new();
    loop {
        let n = sys(t, nr::READ, &[fd as u64, buf, 4096]);
        assert!(n >= 0, "read: {n}");
        if n == 0 {
            break;
        }
        out.extend(get(t, buf, n as usize));
    }
    String::from_utf8_lossy(&out).into_owned()
}

const ENOSYS: i64 = -38;

#[test]
fn unknown_syscall_is_enosys() {
    let mut t = test_thread();
    assert_eq!(sys(&mut t, 4000, &[]), ENOSYS);
    assert_eq!(sys(&mut t, 4000, &[]), ENOSYS);
}

#[test]
fn anonymous_mmap_is_placed_top_down_and_munmap_removes_it() {
    let mut t = test_thread();
    let a = sys(&mut t, nr::MMAP, &[0, 8192, 3, 0x22, u64::MAX, 0]) as u64;
    assert!(a < super::loader::INTERP_BASE && a.is_multiple_of(4096));
    assert_eq!(t.proc.space.perm_at(a), perm::R | perm::W);
    let b = sys(&mut t, nr::MMAP, &[0, 4096, 1, 0x22, u64::MAX, 0]) as u64;
    assert_eq!(b, a - 4096);
    assert_eq!(t.proc.space.perm_at(b), perm::R);
    // MAP_FIXED_NOREPLACE on a used range: EEXIST; MAP_FIXED replaces.
    assert_eq!(
        sys(&mut t, nr::MMAP, &[a, 4096, 3, 0x10_0022, u64::MAX, 0]),
        -17
    );
    assert_eq!(
        sys(&mut t, nr::MMAP, &[a, 4096, 7, 0x32, u64::MAX, 0]) as u64,
        a
    );
    assert_eq!(t.proc.space.perm_at(a), perm::R | perm::W | perm::X);
    assert_eq!(sys(&mut t, nr::MUNMAP, &[a, 8192]), 0);
    assert_eq!(t.proc.space.perm_at(a), 0);
    assert_eq!(sys(&mut t, nr::MUNMAP, &[a + 1, 8192]), -22);
}

#[test]
fn mprotect_changes_guest_permissions_and_rejects_holes() {
    let mut t = test_thread();
    let a = scratch(&mut t);
    assert_eq!(sys(&mut t, nr::MPROTECT, &[a, 4096, 1]), 0);
    assert!(t.proc.space.write_bytes(a, b"x").is_err());
    assert!(t.proc.space.write_bytes(a + 4096, b"x").is_ok());
    assert_eq!(sys(&mut t, nr::MPROTECT, &[0x2000_0000, 4096, 1]), -12);
    // Code changes are announced to all threads.
    let g = t.proc.code_gen.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(sys(&mut t, nr::MPROTECT, &[a, 4096, 5]), 0);
    assert!(t.proc.code_gen.load(std::sync::atomic::Ordering::SeqCst) > g);
}

#[test]
fn brk_grows_and_shrinks_the_heap() {
    let mut t = test_thread();
    let b0 = sys(&mut t, nr::BRK, &[0]) as u64;
    assert_eq!(b0, 0x1000_0000);
    assert_eq!(sys(&mut t, nr::BRK, &[b0 + 10000]) as u64, b0 + 10000);
    assert!(t.proc.space.write_bytes(b0 + 9000, b"x").is_ok());
    assert_eq!(sys(&mut t, nr::BRK, &[b0 + 100]) as u64, b0 + 100);
    assert_eq!(t.proc.space.perm_at(b0 + 8192), 0);
    // Below the start: unchanged.
    assert_eq!(sys(&mut t, nr::BRK, &[b0 - 4096]) as u64, b0 + 100);
}

#[test]
fn mremap_moves_and_keeps_contents() {
    let mut t = test_thread();
    let a = sys(&mut t, nr::MMAP, &[0, 4096, 3, 0x22, u64::MAX, 0]) as u64;
    // Block the page after it so growth must move.
    let _ = sys(&mut t, nr::MMAP, &[a + 4096, 4096, 3, 0x32, u64::MAX, 0]);
    t.proc.space.write_bytes(a + 100, b"keep").unwrap();
    assert_eq!(sys(&mut t, nr::MREMAP, &[a, 4096, 16384, 0]), -12);
    let b = sys(&mut t, nr::MREMAP, &[a, 4096, 16384, 1]) as u64;
    assert_ne!(b, a);
    assert_eq!(get(&t, b + 100, 4), b"keep");
    assert_eq!(t.proc.space.perm_at(a), 0);
    assert!(t.proc.space.write_bytes(b + 16383, b"z").is_ok());
}

#[test]
fn files_open_stat_read_and_proc_self() {
    let mut t = test_thread();
    let s = scratch(&mut t);
    let dir = std::env::temp_dir().join(format!("armboard-ut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("f.txt");
    std::fs::write(&path, b"0123456789").unwrap();
    let p = put_str(&t, s, path.to_str().unwrap());
    // O_RDONLY|O_CLOEXEC
    let fd = sys(&mut t, nr::OPENAT, &[-100i64 as u64, p, 0o2000000, 0]);
    assert!(fd >= 0);
    let st = s + 4096;
    assert_eq!(sys(&mut t, nr::FSTAT, &[fd as u64, st]), 0);
    let b = get(&t, st, 128);
    assert_eq!(u64::from_le_bytes(b[48..56].try_into().unwrap()), 10);
    assert_eq!(
        u32::from_le_bytes(b[16..20].try_into().unwrap()) & 0o170000,
        0o100000
    );
    assert_eq!(sys(&mut t, nr::PREAD64, &[fd as u64, s + 8192, 4, 3]), 4);
    assert_eq!(get(&t, s + 8192, 4), b"3456");
    // F_GETFL shows O_RDONLY with arm64's O_LARGEFILE bit.
    let fl = sys(&mut t, nr::FCNTL, &[fd as u64, 3]);
    assert_eq!(fl & 0o3, 0);
    assert_eq!(sys(&mut t, nr::CLOSE, &[fd as u64]), 0);
    // O_DIRECTORY (arm64 0o40000) on a file: ENOTDIR.
    assert_eq!(
        sys(&mut t, nr::OPENAT, &[-100i64 as u64, p, 0o40000, 0]),
        -20
    );
    // readlink /proc/self/exe is the guest program.
    let e = put_str(&t, s, "/proc/self/exe");
    let n = sys(&mut t, nr::READLINKAT, &[-100i64 as u64, e, s + 100, 200]);
    assert_eq!(get(&t, s + 100, n as usize), b"/guest/prog");
    // /proc/self/maps lists the scratch mapping.
    let m = put_str(&t, s, "/proc/self/maps");
    let fd = sys(&mut t, nr::OPENAT, &[-100i64 as u64, m, 0, 0]);
    let text = read_fd(&mut t, fd, s + 8192);
    assert!(
        text.contains(&format!("{s:08x}-{:08x} rw-p", s + (1 << 16))),
        "{text}"
    );
    sys(&mut t, nr::CLOSE, &[fd as u64]);
    // newfstatat on a missing file: ENOENT; bad pointer: EFAULT.
    let q = put_str(&t, s, "/nonexistent/x");
    assert_eq!(sys(&mut t, nr::NEWFSTATAT, &[-100i64 as u64, q, st, 0]), -2);
    assert_eq!(
        sys(&mut t, nr::NEWFSTATAT, &[-100i64 as u64, 16, st, 0]),
        -14
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn file_mappings_private_and_shared() {
    let mut t = test_thread();
    let s = scratch(&mut t);
    let path = std::env::temp_dir().join(format!("armboard-map-{}", std::process::id()));
    std::fs::write(&path, vec![b'a'; 6000]).unwrap();
    let p = put_str(&t, s, path.to_str().unwrap());
    let fd = sys(&mut t, nr::OPENAT, &[-100i64 as u64, p, 2, 0]) as u64;
    let m = sys(&mut t, nr::MMAP, &[0, 8192, 3, 2, fd, 0]) as u64;
    assert_eq!(get(&t, m + 5999, 1), b"a");
    t.proc.space.write_bytes(m, b"P").unwrap();
    let sh = sys(&mut t, nr::MMAP, &[0, 4096, 3, 1, fd, 0]) as u64;
    t.proc.space.write_bytes(sh + 1, b"S").unwrap();
    assert_eq!(sys(&mut t, nr::MSYNC, &[sh, 4096, 4]), 0);
    let data = std::fs::read(&path).unwrap();
    assert_eq!(
        &data[..2],
        b"aS",
        "private write stays private, shared reaches the file"
    );
    let maps = t.proc.mm().render_maps();
    assert!(maps.contains(path.to_str().unwrap()), "{maps}");
    sys(&mut t, nr::CLOSE, &[fd]);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn pipes_carry_data() {
    let mut t = test_thread();
    let s = scratch(&mut t);
    assert_eq!(sys(&mut t, nr::PIPE2, &[s, 0]), 0);
    let fds = get(&t, s, 8);
    let (r, w) = (
        u32::from_le_bytes(fds[..4].try_into().unwrap()) as u64,
        u32::from_le_bytes(fds[4..].try_into().unwrap()) as u64,
    );
    put_str(&t, s + 64, "ping");
    assert_eq!(sys(&mut t, nr::WRITE, &[w, s + 64, 4]), 4);
    sys(&mut t, nr::CLOSE, &[w]);
    assert_eq!(read_fd(&mut t, r as i64, s + 128), "ping");
    sys(&mut t, nr::CLOSE, &[r]);
}

#[test]
fn uname_says_aarch64() {
    let mut t = test_thread();
    let s = scratch(&mut t);
    assert_eq!(sys(&mut t, nr::UNAME, &[s]), 0);
    assert_eq!(&get(&t, s + 4 * 65, 8), b"aarch64\0");
    assert_eq!(&get(&t, s, 6), b"Linux\0");
}

#[test]
fn signal_frame_round_trips_through_sigreturn() {
    use super::signal;
    let mut t = test_thread();
    let s = scratch(&mut t);
    // Handler for signal 5 (SIGTRAP: never mirrored on the host) with SA_RESTORER.
    let handler = 0x40_1000u64;
    let restorer = 0x40_2000u64;
    let act: Vec<u8> = [
        handler,
        signal::SA_RESTORER | signal::SA_SIGINFO,
        restorer,
        1 << 9,
    ]
    .iter()
    .flat_map(|v| v.to_le_bytes())
    .collect();
    t.proc.space.write_bytes(s, &act).unwrap();
    assert_eq!(sys(&mut t, nr::RT_SIGACTION, &[5, s, 0, 8]), 0);
    for r in 0..31 {
        t.cpu.state.x[r] = 0x1000 + r as u64;
    }
    t.cpu.state.v[3] = 0x1234_5678_9abc_def0_1111_2222_3333_4444;
    t.cpu.state.nzcv = 0x6000_0000;
    t.cpu.state.pc = 0x40_0abc;
    let sp0 = t.cpu.state.sp();
    let info = signal::fault_info(5, signal::TRAP_BRKPT, 0x40_0abc);
    signal::force(&mut t, 5, &info);
    let st = &t.cpu.state;
    assert_eq!(st.pc, handler);
    assert_eq!(st.x[0], 5);
    assert_eq!(st.x[30], restorer);
    assert_eq!(st.sp() % 16, 0);
    assert!(st.sp() < sp0);
    assert_eq!(st.x[1], st.sp(), "siginfo at the frame's start");
    assert_eq!(st.x[2], st.sp() + 128, "ucontext after siginfo");
    // The handler runs with its sa_mask and the signal itself blocked.
    assert_eq!(t.sigmask, (1 << 9) | (1 << 4));
    // sigcontext.pc and the FPSIMD record's magic.
    let mc = st.x[2] + 176;
    let pc = u64::from_le_bytes(get(&t, mc + 264, 8).try_into().unwrap());
    assert_eq!(pc, 0x40_0abc);
    let magic = u32::from_le_bytes(get(&t, mc + 288, 4).try_into().unwrap());
    assert_eq!(magic, 0x4650_8001);
    // The handler clobbers state, then returns through rt_sigreturn.
    t.cpu.state.x[7] = 0;
    t.cpu.state.v[3] = 0;
    t.cpu.state.nzcv = 0;
    sys(&mut t, nr::RT_SIGRETURN, &[]);
    let st = &t.cpu.state;
    assert_eq!(st.pc, 0x40_0abc);
    assert_eq!(st.sp(), sp0);
    assert_eq!(st.x[7], 0x1007);
    assert_eq!(st.x[0], 0x1000);
    assert_eq!(st.x[30], 0x1000 + 30);
    assert_eq!(st.v[3], 0x1234_5678_9abc_def0_1111_2222_3333_4444);
    assert_eq!(st.nzcv, 0x6000_0000);
    assert_eq!(t.sigmask, 0);
}

#[test]
fn sigprocmask_and_sigaltstack() {
    let mut t = test_thread();
    let s = scratch(&mut t);
    t.proc
        .space
        .write_bytes(s, &(1u64 << 9).to_le_bytes())
        .unwrap();
    assert_eq!(sys(&mut t, nr::RT_SIGPROCMASK, &[0, s, s + 8, 8]), 0);
    assert_eq!(t.sigmask, 1 << 9);
    assert_eq!(sys(&mut t, nr::RT_SIGPROCMASK, &[2, 0, s + 8, 8]), 0);
    assert_eq!(get(&t, s + 8, 8), (1u64 << 9).to_le_bytes());
    assert_eq!(sys(&mut t, nr::RT_SIGPROCMASK, &[0, s, 0, 4]), -22);
    // SIGKILL cannot be blocked.
    t.proc
        .space
        .write_bytes(s, &(1u64 << 8).to_le_bytes())
        .unwrap();
    sys(&mut t, nr::RT_SIGPROCMASK, &[2, s, 0, 8]);
    assert_eq!(t.sigmask, 0);
    // sigaltstack: too small is ENOMEM, then set and read back.
    let ss: Vec<u8> = [s + 4096, 0, 100]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    t.proc.space.write_bytes(s + 64, &ss).unwrap();
    assert_eq!(sys(&mut t, nr::SIGALTSTACK, &[s + 64, 0]), -12);
    let ss: Vec<u8> = [s + 4096, 0, 32768]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    t.proc.space.write_bytes(s + 64, &ss).unwrap();
    assert_eq!(sys(&mut t, nr::SIGALTSTACK, &[s + 64, s + 128]), 0);
    assert_eq!(sys(&mut t, nr::SIGALTSTACK, &[0, s + 128]), 0);
    assert_eq!(get(&t, s + 128, 8), (s + 4096).to_le_bytes());
    assert_eq!(get(&t, s + 144, 8), 32768u64.to_le_bytes());
}

#[test]
fn identity_and_time() {
    let mut t = test_thread();
    let s = scratch(&mut t);
    assert_eq!(sys(&mut t, nr::GETPID, &[]), std::process::id() as i64);
    assert_eq!(sys(&mut t, nr::GETTID, &[]), t.tid as i64);
    assert_eq!(sys(&mut t, nr::SET_TID_ADDRESS, &[s]), t.tid as i64);
    assert_eq!(sys(&mut t, nr::CLOCK_GETTIME, &[1, s]), 0);
    let secs = i64::from_le_bytes(get(&t, s, 8).try_into().unwrap());
    assert!(secs >= 0);
    assert_eq!(sys(&mut t, nr::CLOCK_GETTIME, &[1, 8]), -14);
    assert_eq!(sys(&mut t, nr::GETRANDOM, &[s, 32, 0]), 32);
}
