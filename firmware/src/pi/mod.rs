//! The Raspberry Pi firmware's boot flow: what the VideoCore does before the ARM runs. It
//! reads the FAT boot partition of an MBR SD card, config.txt and cmdline.txt, picks the
//! kernel, device tree and initramfs, applies overlays and parameters to the device tree,
//! and works out the ARM's share of memory.
//!
//! [`boot_from_sd`] is the whole flow; [`config::plan`] works on an opened [`fat::FatVolume`].
//! The result, a [`BootPlan`], holds the files' bytes as the firmware would load them; placing
//! them in RAM (and patching `/chosen` and `/memory`, see [`BootPlan::patched_dtb`]) is the
//! board's job.

pub mod config;
pub mod fat;
pub mod mbr;
pub mod overlay;

use std::path::{Path, PathBuf};

pub use config::plan;
pub use fat::{FatError, FatVolume};

const MIB: u64 = 1 << 20;

/// Why a card cannot be booted.
#[derive(Debug, thiserror::Error)]
pub enum PiBootError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Mbr(PathBuf, mbr::MbrError),
    #[error("{0}: no FAT boot partition: {1}")]
    NoBootPartition(PathBuf, String),
    #[error("boot partition: {0}")]
    Fat(#[from] FatError),
    #[error("no kernel on the boot partition: looked for {}", .tried.join(", "))]
    NoKernel { tried: Vec<String>, hint: String },
    #[error("no device tree on the boot partition: looked for {}", .tried.join(", "))]
    NoDtb { tried: Vec<String> },
    #[error("config.txt: {key} names {file}, which is not on the boot partition")]
    MissingFile { key: String, file: String },
    #[error("{0}")]
    Not64Bit(String),
    #[error("{file}: not a device tree blob: {why}")]
    BadDtb { file: String, why: String },
    #[error("config.txt: {0}")]
    Config(String),
}

/// The board being booted, as far as the firmware's choices depend on it.
#[derive(Clone, Debug)]
pub struct PiBoard {
    /// A short name ("pi3b").
    pub name: String,
    /// The revision code (0xa02082 for a Pi 3 Model B, Sony UK): `[board-type=]` filters use
    /// its type field (bits 4..11 of new-style codes).
    pub revision: u32,
    /// The serial number (`[0x12345678]` filters).
    pub serial: u32,
    /// RAM in bytes.
    pub memory: u64,
    /// The model filters that apply (`["pi3"]`; a 3B+ would have `["pi3", "pi3+"]`).
    pub filters: Vec<String>,
    /// The kernel loaded without `kernel=` when `arm_64bit` is 0 ("kernel7.img").
    pub kernel32: String,
    /// ... and when it is 1 ("kernel8.img").
    pub kernel64: String,
    /// The device trees tried in order without `device_tree=`.
    pub dtbs: Vec<String>,
    /// The upstream-Linux names among them, tried first with `upstream_kernel=1`.
    pub upstream_dtbs: Vec<String>,
    /// The emulator runs only AArch64: 32-bit kernels are refused.
    pub only_64bit: bool,
    /// `enable_uart` when config.txt does not set it (0 on boards whose primary UART is the
    /// mini UART, as on the Pi 3).
    pub enable_uart_default: bool,
}

impl PiBoard {
    /// A Raspberry Pi 3 Model B (1 GiB).
    pub fn raspi3b() -> PiBoard {
        PiBoard {
            name: "pi3b".into(),
            revision: 0x00a0_2082,
            serial: 0x1234_5678,
            memory: 1 << 30,
            filters: vec!["pi3".into()],
            kernel32: "kernel7.img".into(),
            kernel64: "kernel8.img".into(),
            dtbs: vec!["bcm2710-rpi-3-b.dtb".into(), "bcm2837-rpi-3-b.dtb".into()],
            upstream_dtbs: vec!["bcm2837-rpi-3-b.dtb".into()],
            only_64bit: true,
            enable_uart_default: false,
        }
    }

    /// The board type of a new-style revision code (bit 23 set), e.g. 0x8 for a 3B.
    pub fn board_type(&self) -> Option<u32> {
        (self.revision & (1 << 23) != 0).then_some((self.revision >> 4) & 0xff)
    }
}

/// A file read from the boot partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootFile {
    /// Its path on the partition (with `os_prefix`).
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Where the initramfs goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Initramfs {
    /// The file names (several are concatenated).
    pub name: String,
    pub bytes: Vec<u8>,
    /// The load address, or None for `followkernel` (right after the kernel).
    pub address: Option<u64>,
}

/// What happened to one `dtoverlay=` or `dtparam=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DtNote {
    /// The directive as written (`dtoverlay=disable-bt`, `dtparam=audio=on`).
    pub directive: String,
    pub applied: bool,
    /// Why not, or what was done.
    pub detail: String,
}

impl std::fmt::Display for DtNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.directive, self.detail)
    }
}

/// Everything the firmware decided.
#[derive(Clone, Debug)]
pub struct BootPlan {
    pub kernel: BootFile,
    /// The device tree with overlays and parameters applied (byte-identical to the file when
    /// nothing was applied).
    pub dtb: BootFile,
    pub initramfs: Option<Initramfs>,
    /// The kernel command line (cmdline.txt, lines joined, trimmed).
    pub cmdline: String,
    /// The file it came from, None if there was none.
    pub cmdline_file: Option<String>,
    pub arm_64bit: bool,
    /// GPU memory in MiB (taken from the top of RAM).
    pub gpu_mem_mib: u64,
    /// RAM the firmware uses (after `total_mem`), bytes.
    pub total_memory: u64,
    /// RAM left to the ARM: `total_memory - gpu_mem`, from address 0.
    pub arm_memory: u64,
    pub enable_uart: bool,
    pub uart_2ndstage: bool,
    pub kernel_address: Option<u64>,
    pub device_tree_address: Option<u64>,
    /// The `os_prefix` in effect ("" if none or not viable).
    pub os_prefix: String,
    /// Each dtoverlay/dtparam, in order.
    pub dt: Vec<DtNote>,
    /// Everything else worth telling: ignored settings, defaults used, missing optional files.
    pub notes: Vec<String>,
    pub config: config::Config,
}

impl BootPlan {
    /// The device tree with `/chosen` bootargs (the cmdline), the initrd range and `/memory`
    /// (0..arm_memory) set, as the firmware passes it.
    pub fn patched_dtb(
        &self,
        initrd: Option<std::ops::Range<u64>>,
    ) -> Result<Vec<u8>, PiBootError> {
        let bad = |e: crate::fdt::FdtError| PiBootError::BadDtb {
            file: self.dtb.name.clone(),
            why: e.to_string(),
        };
        let mut fdt = crate::fdt::Fdt::parse(&self.dtb.bytes).map_err(bad)?;
        fdt.patch_for_boot(&crate::fdt::BootParams {
            bootargs: Some(&self.cmdline),
            initrd,
            memory: &[(0, self.arm_memory)],
            stdout_path: None,
        })
        .map_err(bad)?;
        fdt.to_bytes().map_err(bad)
    }
}

/// The boot partition of an SD-card image: the first FAT primary partition.
pub fn open_boot_partition(image: &Path) -> Result<FatVolume, PiBootError> {
    let file = std::fs::File::open(image).map_err(|e| PiBootError::Io(image.to_path_buf(), e))?;
    let parts = mbr::read(&file).map_err(|e| PiBootError::Mbr(image.to_path_buf(), e))?;
    let Some(p) = parts.iter().find(|p| p.is_fat()) else {
        let found = if parts.is_empty() {
            "the partition table is empty".to_string()
        } else {
            let list: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
            format!("found {}", list.join("; "))
        };
        return Err(PiBootError::NoBootPartition(image.to_path_buf(), found));
    };
    let r = p.byte_range();
    Ok(FatVolume::open_file(file, r.start, r.end - r.start)?)
}

/// The whole firmware flow on an SD-card image: MBR, first FAT partition, config.txt,
/// kernel, device tree (with overlays and parameters), initramfs and cmdline.
pub fn boot_from_sd(image: &Path, board: &PiBoard) -> Result<BootPlan, PiBootError> {
    let vol = open_boot_partition(image)?;
    plan(&vol, board)
}
