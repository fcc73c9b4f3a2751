//! Raspberry Pi boards as data: which SoC, how much memory, what the firmware reports and
//! which files it looks for. Variants of a SoC differ only here.

use armboard_cpu::model::{self, CpuModel};

/// One board model.
#[derive(Debug, Clone)]
pub struct Board {
    /// The `--machine` name.
    pub name: &'static str,
    /// What `/proc/device-tree/model` says on the real board.
    pub model_name: &'static str,
    pub cpu: CpuModel,
    pub cpus: usize,
    /// SDRAM, shared between the ARM and the VideoCore.
    pub memory: u64,
    /// The new-style revision code the firmware reports (and puts in /system).
    pub revision: u32,
    /// The generic timer's frequency as the firmware sets CNTFRQ_EL0.
    pub timer_hz: u64,
    /// The VideoCore's share of memory when config.txt does not say (gpu_mem).
    pub default_gpu_mem: u64,
    /// Device trees the firmware tries, in order.
    pub dtbs: &'static [&'static str],
    /// config.txt section filters that apply to this board (`[pi3]`).
    pub filters: &'static [&'static str],
}

/// The Raspberry Pi 3 Model B (BCM2837, 4 x Cortex-A53 at 1.2 GHz, 1 GiB).
pub const PI3B: Board = Board {
    name: "raspi3b",
    model_name: "Raspberry Pi 3 Model B",
    cpu: model::CORTEX_A53,
    cpus: 4,
    memory: 1 << 30,
    revision: 0x00a0_2082,
    timer_hz: 19_200_000,
    default_gpu_mem: 76 << 20,
    dtbs: &["bcm2710-rpi-3-b.dtb", "bcm2837-rpi-3-b.dtb"],
    filters: &["pi3"],
};

impl Board {
    /// The ARM's share of memory with `gpu_mem` bytes given to the VideoCore.
    pub fn arm_memory(&self, gpu_mem: u64) -> u64 {
        self.memory.saturating_sub(gpu_mem).max(16 << 20)
    }
}

/// The boards `--machine` knows.
pub fn by_name(name: &str) -> Option<&'static Board> {
    [&PI3B].into_iter().find(|b| b.name == name)
}
