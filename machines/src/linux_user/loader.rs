//! ELF loading: the program and its interpreter (`PT_INTERP`, resolved inside the sysroot),
//! and the initial stack (argv, envp, auxv) as Linux builds it for arm64.

use super::memory::{perm, AddressSpace, MemError, PAGE};
use goblin::elf::{header, program_header, Elf};
use std::path::{Path, PathBuf};

/// Where a position-independent executable is placed.
pub const PIE_BASE: u64 = 0x55_5555_0000;
/// Where the dynamic loader is placed.
pub const INTERP_BASE: u64 = 0x7f_f7f0_0000;
/// Top of the initial stack.
pub const STACK_TOP: u64 = 0x7f_ffff_0000;
pub const STACK_SIZE: u64 = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: not an ELF file")]
    NotElf(PathBuf),
    #[error("{0}: is a {1} ELF; armboard user runs 64-bit arm64 (aarch64) programs")]
    WrongArch(PathBuf, String),
    #[error("{0}: truncated or malformed ELF: {1}")]
    Malformed(PathBuf, String),
    #[error("{0}: needs the interpreter {1}, which is not in the sysroot {2} (give --sysroot DIR or ARMBOARD_SYSROOT)")]
    MissingInterp(PathBuf, String, String),
    #[error("{0}: {1}")]
    Memory(PathBuf, MemError),
}

/// What the loader produced.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Entry point to start at (the interpreter's when there is one).
    pub entry: u64,
    /// The program's own entry (AT_ENTRY).
    pub prog_entry: u64,
    pub phdr: u64,
    pub phent: u64,
    pub phnum: u64,
    /// Load bias of the interpreter (AT_BASE), 0 without one.
    pub interp_base: u64,
    /// First address after the program's highest segment (start of brk).
    pub brk: u64,
    /// Mapped ranges: (start, end, prot, path) for /proc/self/maps.
    pub regions: Vec<(u64, u64, u8, String)>,
}

fn page_down(a: u64) -> u64 {
    a & !(PAGE - 1)
}
fn page_up(a: u64) -> u64 {
    (a + PAGE - 1) & !(PAGE - 1)
}

struct Image {
    entry: u64,
    bias: u64,
    phdr: u64,
    phent: u64,
    phnum: u64,
    end: u64,
    interp: Option<String>,
}

fn arch_name(e: &Elf) -> String {
    let class = if e.is_64 { "64-bit" } else { "32-bit" };
    let m = match e.header.e_machine {
        header::EM_AARCH64 => "aarch64",
        header::EM_ARM => "arm",
        header::EM_X86_64 => "x86-64",
        header::EM_386 => "i386",
        header::EM_RISCV => "riscv",
        other => return format!("{class} machine {other}"),
    };
    format!("{class} {m}")
}

fn map_image(
    space: &AddressSpace,
    path: &Path,
    data: &[u8],
    dyn_base: u64,
    regions: &mut Vec<(u64, u64, u8, String)>,
) -> Result<Image, LoadError> {
    let p = || path.to_path_buf();
    if data.len() < 4 || &data[..4] != b"\x7fELF" {
        return Err(LoadError::NotElf(p()));
    }
    let elf = Elf::parse(data).map_err(|e| LoadError::Malformed(p(), e.to_string()))?;
    if !elf.is_64 || elf.header.e_machine != header::EM_AARCH64 || !elf.little_endian {
        return Err(LoadError::WrongArch(p(), arch_name(&elf)));
    }
    let bias = match elf.header.e_type {
        header::ET_EXEC => 0,
        header::ET_DYN => dyn_base,
        t => {
            return Err(LoadError::Malformed(
                p(),
                format!("ELF type {t} is not executable"),
            ))
        }
    };
    let mut end = 0;
    let mut phdr = 0;
    let mut any = false;
    for ph in &elf.program_headers {
        if ph.p_type == program_header::PT_PHDR {
            phdr = bias + ph.p_vaddr;
        }
        if ph.p_type != program_header::PT_LOAD || ph.p_memsz == 0 {
            continue;
        }
        any = true;
        let off = ph.p_offset as usize;
        let filesz = ph.p_filesz as usize;
        if off.checked_add(filesz).is_none_or(|e| e > data.len()) || ph.p_filesz > ph.p_memsz {
            return Err(LoadError::Malformed(
                p(),
                "segment extends past end of file".into(),
            ));
        }
        let start = bias
            .checked_add(ph.p_vaddr)
            .ok_or_else(|| LoadError::Malformed(p(), "segment address overflows".into()))?;
        let seg_end = start
            .checked_add(ph.p_memsz)
            .ok_or_else(|| LoadError::Malformed(p(), "segment size overflows".into()))?;
        let (ms, me) = (page_down(start), page_up(seg_end));
        let mut prot = 0;
        if ph.p_flags & program_header::PF_R != 0 {
            prot |= perm::R;
        }
        if ph.p_flags & program_header::PF_W != 0 {
            prot |= perm::W;
        }
        if ph.p_flags & program_header::PF_X != 0 {
            prot |= perm::X;
        }
        // Segments may share a page: map fresh only pages not yet mapped; a shared page gets
        // the union of the segments' permissions.
        let mut fresh = Vec::new();
        let mut a = ms;
        while a < me {
            let old = space.perm_at(a);
            fresh.push(old == 0);
            if old == 0 {
                space
                    .map_anon(a, PAGE, perm::R | perm::W)
                    .map_err(|e| LoadError::Memory(p(), e))?;
            }
            a += PAGE;
        }
        space
            .poke_bytes(start, &data[off..off + filesz])
            .map_err(|f| LoadError::Malformed(p(), f.to_string()))?;
        for (k, is_fresh) in fresh.into_iter().enumerate() {
            let a = ms + k as u64 * PAGE;
            let new = if is_fresh {
                prot
            } else {
                space.perm_at(a) | prot
            };
            space
                .set_perms(a, PAGE, new)
                .map_err(|e| LoadError::Memory(p(), e))?;
        }
        regions.push((ms, me, prot, path.display().to_string()));
        if phdr == 0 && ph.p_offset == 0 {
            phdr = start + elf.header.e_phoff;
        }
        end = end.max(seg_end);
    }
    if !any {
        return Err(LoadError::Malformed(p(), "no loadable segments".into()));
    }
    let interp = elf.interpreter.map(str::to_string);
    Ok(Image {
        entry: bias + elf.header.e_entry,
        bias,
        phdr,
        phent: elf.header.e_phentsize as u64,
        phnum: elf.header.e_phnum as u64,
        end,
        interp,
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|e| LoadError::Io(path.to_path_buf(), e))
}

/// Resolve an absolute guest path inside the sysroot.
pub fn in_sysroot(sysroot: Option<&Path>, guest: &str) -> PathBuf {
    match sysroot {
        Some(root) => root.join(guest.trim_start_matches('/')),
        None => PathBuf::from(guest),
    }
}

/// Load `path` (and its interpreter from `sysroot`) into `space`.
pub fn load(
    space: &AddressSpace,
    path: &Path,
    sysroot: Option<&Path>,
) -> Result<Loaded, LoadError> {
    let data = read_file(path)?;
    let mut regions = Vec::new();
    let prog = map_image(space, path, &data, PIE_BASE, &mut regions)?;
    let mut loaded = Loaded {
        entry: prog.entry,
        prog_entry: prog.entry,
        phdr: prog.phdr,
        phent: prog.phent,
        phnum: prog.phnum,
        interp_base: 0,
        brk: page_up(prog.end),
        regions,
    };
    if let Some(interp) = prog.interp {
        let ipath = in_sysroot(sysroot, &interp);
        let idata = match std::fs::read(&ipath) {
            Ok(d) => d,
            Err(_) => {
                return Err(LoadError::MissingInterp(
                    path.to_path_buf(),
                    interp,
                    sysroot.map_or("/".into(), |s| s.display().to_string()),
                ))
            }
        };
        let im = map_image(space, &ipath, &idata, INTERP_BASE, &mut loaded.regions)?;
        loaded.entry = im.entry;
        loaded.interp_base = im.bias;
    }
    Ok(loaded)
}

/// Auxiliary vector keys (include/uapi/linux/auxvec.h).
pub mod at {
    pub const NULL: u64 = 0;
    pub const PHDR: u64 = 3;
    pub const PHENT: u64 = 4;
    pub const PHNUM: u64 = 5;
    pub const PAGESZ: u64 = 6;
    pub const BASE: u64 = 7;
    pub const FLAGS: u64 = 8;
    pub const ENTRY: u64 = 9;
    pub const UID: u64 = 11;
    pub const EUID: u64 = 12;
    pub const GID: u64 = 13;
    pub const EGID: u64 = 14;
    pub const PLATFORM: u64 = 15;
    pub const HWCAP: u64 = 16;
    pub const CLKTCK: u64 = 17;
    pub const SECURE: u64 = 23;
    pub const RANDOM: u64 = 25;
    pub const HWCAP2: u64 = 26;
    pub const EXECFN: u64 = 31;
}

/// Map the stack and write argv, envp and auxv onto it as Linux does. Returns the initial SP.
pub fn setup_stack(
    space: &AddressSpace,
    loaded: &Loaded,
    args: &[Vec<u8>],
    env: &[Vec<u8>],
    execfn: &[u8],
    random: [u8; 16],
) -> Result<u64, MemError> {
    let bottom = STACK_TOP - STACK_SIZE;
    space.map_anon(bottom, STACK_SIZE, perm::R | perm::W)?;
    let mut sp = STACK_TOP;
    let push_bytes = |bytes: &[u8], sp: &mut u64| -> u64 {
        *sp -= bytes.len() as u64 + 1;
        let mut v = bytes.to_vec();
        v.push(0);
        space.write_bytes(*sp, &v).expect("stack is mapped");
        *sp
    };
    let execfn_p = push_bytes(execfn, &mut sp);
    let platform_p = push_bytes(b"aarch64", &mut sp);
    let env_p: Vec<u64> = env.iter().map(|e| push_bytes(e, &mut sp)).collect();
    let arg_p: Vec<u64> = args.iter().map(|a| push_bytes(a, &mut sp)).collect();
    sp &= !15;
    sp -= 16;
    space.write_bytes(sp, &random).expect("stack is mapped");
    let random_p = sp;
    let auxv: Vec<(u64, u64)> = vec![
        (at::PHDR, loaded.phdr),
        (at::PHENT, loaded.phent),
        (at::PHNUM, loaded.phnum),
        (at::PAGESZ, PAGE),
        (at::BASE, loaded.interp_base),
        (at::FLAGS, 0),
        (at::ENTRY, loaded.prog_entry),
        (at::UID, 0),
        (at::EUID, 0),
        (at::GID, 0),
        (at::EGID, 0),
        (at::PLATFORM, platform_p),
        (at::HWCAP, armboard_cpu::model::user_hwcap()),
        (at::HWCAP2, 0),
        (at::CLKTCK, 100),
        (at::SECURE, 0),
        (at::RANDOM, random_p),
        (at::EXECFN, execfn_p),
        (at::NULL, 0),
    ];
    let words = 1 + arg_p.len() + 1 + env_p.len() + 1 + auxv.len() * 2;
    sp -= words as u64 * 8;
    sp &= !15;
    let mut v: Vec<u64> = Vec::with_capacity(words);
    v.push(arg_p.len() as u64);
    v.extend(&arg_p);
    v.push(0);
    v.extend(&env_p);
    v.push(0);
    for (k, val) in auxv {
        v.push(k);
        v.push(val);
    }
    let bytes: Vec<u8> = v.iter().flat_map(|w| w.to_le_bytes()).collect();
    space.write_bytes(sp, &bytes).expect("stack is mapped");
    Ok(sp)
}
