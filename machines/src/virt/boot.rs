//! Everything the `virt` board loads before the first instruction, as QEMU's `-kernel`
//! direct boot does: the arm64 `Image` (unwrapped from Debian's vmlinuz), the initrd and
//! the device tree (generated for the board, or the user's `--dtb` patched), placed in RAM
//! by [`plan_boot`].
//!
//! The boot CPU then starts as Documentation/arch/arm64/booting.rst requires: PC at
//! [`BootImages::entry`], x0 = [`BootImages::dtb_addr`], x1 = x2 = x3 = 0, EL1h (or EL2)
//! with the MMU and caches off and D, A, I, F masked. Secondary CPUs stay off until the
//! kernel starts them with PSCI CPU_ON (the tree's `enable-method = "psci"`, conduit HVC).

use super::dt::{self, DtError, VirtConfig};
use super::layout::RAM_BASE;
use armboard_bus::ram::Ram;
use armboard_bus::BusError;
use armboard_firmware::fdt::{BootParams, Fdt, FdtError};
use armboard_firmware::image::{plan_boot, ImageError, KernelImage, DTB_MAX};
use std::path::{Path, PathBuf};

/// Why the board cannot be booted with these files.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("kernel {0}: {1}")]
    Kernel(PathBuf, ImageError),
    #[error("placing the boot images: {0}")]
    Placement(ImageError),
    #[error("initrd {0}: {1}")]
    Initrd(PathBuf, std::io::Error),
    #[error("device tree {0}: {1}")]
    DtbRead(PathBuf, std::io::Error),
    #[error("device tree {0}: {1}")]
    Dtb(PathBuf, FdtError),
    #[error("generating the device tree: {0}")]
    Generate(#[from] DtError),
    #[error("the device tree is {0} bytes; at most {DTB_MAX} are allowed")]
    DtbTooLarge(usize),
    #[error("copying into guest RAM: {0}")]
    Ram(BusError),
}

/// What to boot, from the command line.
#[derive(Clone, Debug)]
pub struct BootOptions {
    /// `--kernel`: an `Image`, a compressed `Image` or an EFI zboot vmlinuz.
    pub kernel: PathBuf,
    /// `--initrd`.
    pub initrd: Option<PathBuf>,
    /// `--append`: the kernel command line.
    pub append: Option<String>,
    /// `--dtb`: use this device tree (patched) instead of generating one.
    pub dtb: Option<PathBuf>,
    /// The board: CPUs, RAM size, virtio slots, optional devices. Its `bootargs` and
    /// `initrd` are filled in by [`prepare`].
    pub board: VirtConfig,
}

/// One blob and where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub addr: u64,
    pub bytes: Vec<u8>,
}

/// The boot images, placed.
#[derive(Clone, Debug)]
pub struct BootImages {
    pub kernel: Blob,
    pub initrd: Option<Blob>,
    pub dtb: Blob,
    /// The kernel's decoded header (text_offset, image_size, flags).
    pub image: KernelImage,
}

impl BootImages {
    /// The boot CPU's first PC.
    pub fn entry(&self) -> u64 {
        self.kernel.addr
    }

    /// The device tree's address: x0 at entry.
    pub fn dtb_addr(&self) -> u64 {
        self.dtb.addr
    }

    /// Copies kernel, initrd and device tree into guest RAM.
    pub fn load_into(&self, ram: &Ram) -> Result<(), BootError> {
        let blobs = [Some(&self.kernel), self.initrd.as_ref(), Some(&self.dtb)];
        for b in blobs.into_iter().flatten() {
            ram.write(b.addr, &b.bytes).map_err(BootError::Ram)?;
        }
        Ok(())
    }
}

/// Reads and places everything `opts` names.
pub fn prepare(opts: &BootOptions) -> Result<BootImages, BootError> {
    let ram_size = opts.board.ram_size;
    let image =
        KernelImage::load(&opts.kernel).map_err(|e| BootError::Kernel(opts.kernel.clone(), e))?;
    let initrd = match &opts.initrd {
        Some(p) => Some(std::fs::read(p).map_err(|e| BootError::Initrd(p.clone(), e))?),
        None => None,
    };
    let plan = plan_boot(
        RAM_BASE,
        ram_size,
        &image,
        initrd.as_ref().map(|i| i.len() as u64),
    )
    .map_err(BootError::Placement)?;
    let dtb = match &opts.dtb {
        Some(path) => patch_user_dtb(path, opts, &plan.initrd)?,
        None => {
            let mut cfg = opts.board.clone();
            cfg.bootargs = opts.append.clone().unwrap_or_default();
            cfg.initrd = plan.initrd.clone();
            dt::generate(&cfg)?
        }
    };
    if dtb.len() as u64 > DTB_MAX {
        return Err(BootError::DtbTooLarge(dtb.len()));
    }
    Ok(BootImages {
        kernel: Blob {
            addr: plan.kernel,
            bytes: image.bytes.clone(),
        },
        initrd: match (plan.initrd, initrd) {
            (Some(r), Some(bytes)) => Some(Blob {
                addr: r.start,
                bytes,
            }),
            _ => None,
        },
        dtb: Blob {
            addr: plan.dtb,
            bytes: dtb,
        },
        image,
    })
}

/// The user's DTB with /chosen and /memory set for this boot (bootargs only when
/// `--append` was given; otherwise the tree's own are kept).
fn patch_user_dtb(
    path: &Path,
    opts: &BootOptions,
    initrd: &Option<std::ops::Range<u64>>,
) -> Result<Vec<u8>, BootError> {
    let blob = std::fs::read(path).map_err(|e| BootError::DtbRead(path.to_path_buf(), e))?;
    let bad = |e| BootError::Dtb(path.to_path_buf(), e);
    let mut fdt = Fdt::parse(&blob).map_err(bad)?;
    fdt.patch_for_boot(&BootParams {
        bootargs: opts.append.as_deref(),
        initrd: initrd.clone(),
        memory: &[(RAM_BASE, opts.board.ram_size)],
        stdout_path: None,
    })
    .map_err(bad)?;
    fdt.to_bytes().map_err(bad)
}

/// Parses a memory size as QEMU's `-m` does: a number with an optional `K`, `M`, `G` or
/// `T` suffix (binary units; `KiB`/`MB`-style spellings too); a bare number is MiB.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: not a size (like 512M or 2G)"))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => 20,
        "k" | "kb" | "kib" => 10,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        "b" => 0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (K, M, G or T)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use armboard_firmware::image::ARM64_MAGIC;

    fn tmp(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("armboard-virt-boot-unit-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join(name)
    }

    fn fake_image() -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[16..24].copy_from_slice(&0x20_0000u64.to_le_bytes()); // image_size
        b[24..32].copy_from_slice(&0b1010u64.to_le_bytes());
        b[0x38..0x3c].copy_from_slice(&ARM64_MAGIC);
        b
    }

    fn opts() -> BootOptions {
        let k = tmp("Image");
        std::fs::write(&k, fake_image()).unwrap();
        let i = tmp("initrd");
        std::fs::write(&i, vec![0x5a; 10_000]).unwrap();
        BootOptions {
            kernel: k,
            initrd: Some(i),
            append: Some("console=ttyAMA0".into()),
            dtb: None,
            board: VirtConfig::new(2, 256 << 20),
        }
    }

    #[test]
    fn places_kernel_initrd_and_generated_dtb() {
        let b = prepare(&opts()).unwrap();
        assert_eq!(b.entry(), RAM_BASE);
        let initrd = b.initrd.as_ref().unwrap();
        assert_eq!(initrd.addr, RAM_BASE + (128 << 20));
        assert_eq!(b.dtb_addr(), RAM_BASE + (128 << 20) + (2 << 20));
        let f = Fdt::parse(&b.dtb.bytes).unwrap();
        let chosen = f.node("/chosen").unwrap();
        assert_eq!(chosen.prop_str("bootargs"), Some("console=ttyAMA0"));
        let end = chosen.prop_cells("linux,initrd-end").unwrap();
        assert_eq!(
            ((end[0] as u64) << 32) | end[1] as u64,
            initrd.addr + 10_000
        );
        let ram = Ram::new(RAM_BASE, 256 << 20).unwrap();
        b.load_into(&ram).unwrap();
        let mut magic = [0u8; 4];
        ram.read(RAM_BASE + 0x38, &mut magic).unwrap();
        assert_eq!(magic, ARM64_MAGIC);
    }

    #[test]
    fn patches_a_user_dtb_and_reports_bad_files() {
        let mut o = opts();
        let mut other = VirtConfig::new(1, 64 << 20);
        other.bootargs = "from the file".into();
        let d = tmp("user.dtb");
        std::fs::write(&d, dt::generate(&other).unwrap()).unwrap();
        o.dtb = Some(d.clone());
        o.append = None;
        let b = prepare(&o).unwrap();
        let f = Fdt::parse(&b.dtb.bytes).unwrap();
        assert_eq!(
            f.node("/chosen").unwrap().prop_str("bootargs"),
            Some("from the file")
        );
        assert_eq!(
            f.node("/memory@40000000")
                .unwrap()
                .prop_cells("reg")
                .unwrap(),
            [0, 0x4000_0000, 0, 256 << 20]
        );
        assert!(f
            .node("/chosen")
            .unwrap()
            .prop("linux,initrd-start")
            .is_some());

        std::fs::write(&d, b"not a dtb").unwrap();
        let e = prepare(&o).unwrap_err();
        assert!(matches!(e, BootError::Dtb(..)), "{e}");
        assert!(e.to_string().contains("user.dtb"), "{e}");
        o.dtb = None;
        o.kernel = d;
        assert!(matches!(prepare(&o), Err(BootError::Kernel(..))));
    }

    #[test]
    fn parses_sizes_like_qemu() {
        assert_eq!(parse_size("512"), Ok(512 << 20));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1Q").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
