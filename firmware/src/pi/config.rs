//! config.txt as the Pi firmware reads it, and the boot plan that follows from it.
//!
//! One setting per line: `key=value` (spaces around them ignored), `# comments`,
//! `[filter]` sections, `include FILE` and the odd `initramfs FILE ADDR|followkernel`.
//! Filters (Raspberry Pi documentation, "Conditional filters"): `[all]` resets all,
//! `[none]` disables until `[all]`; filters of one type replace each other (`[pi4]` after
//! `[pi3]`), filters of different types combine (`[pi3]` then `[board-type=0x8]`: both must
//! hold). Types: model (`[pi3]`, `[pi3+]`, `[pi02]`, ...), `board-type=`, serial (`[0x...]`),
//! `EDID=`, `gpioN=`, `HDMI:N`, `tryboot`. No monitor is attached and GPIO levels are
//! unknown, so `EDID` and `gpio` filters never hold; `HDMI:N` always does (it only scopes
//! HDMI settings).
//!
//! `dtparam=` lines after a `dtoverlay=` are that overlay's parameters until the next
//! `dtoverlay=` (an empty one returns to the base DTB's parameters).

use super::overlay::{self, Param};
use super::{BootFile, BootPlan, DtNote, FatVolume, Initramfs, PiBoard, PiBootError, MIB};
use crate::fdt::Fdt;

/// Nested `include`s deeper than this are refused (a file including itself).
const MAX_INCLUDE_DEPTH: usize = 8;

/// A device-tree directive, in config order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DtDirective {
    /// `dtparam=` for the base DTB.
    Param(Param),
    /// `dtoverlay=name,params...` with the `dtparam=`s that followed it.
    Overlay { name: String, params: Vec<Param> },
}

/// `initramfs`/`ramfsfile`/`ramfsaddr`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitramfsSpec {
    pub files: Vec<String>,
    /// None: followkernel.
    pub address: Option<u64>,
}

/// The settings of config.txt that apply to the board.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// `key=value` settings in order (later ones win).
    pub settings: Vec<(String, String)>,
    pub initramfs: Option<InitramfsSpec>,
    pub dt: Vec<DtDirective>,
    /// Lines that did not parse, filters that cannot be evaluated, missing includes.
    pub notes: Vec<String>,
}

impl Config {
    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The last value of `key` as an integer (decimal or 0x hex).
    pub fn get_int(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(parse_num)
    }

    /// `key` as a flag (non-zero integer).
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get_int(key).map(|v| v != 0)
    }

    /// Parses `text` for `board`; `include` reads other files through `read`.
    pub fn parse(
        text: &str,
        board: &PiBoard,
        read: &mut dyn FnMut(&str) -> Option<String>,
    ) -> Config {
        let mut c = Config::default();
        let mut st = Parser {
            filters: Vec::new(),
            none: false,
            overlay: None,
        };
        st.lines(text, "config.txt", board, read, &mut c, 0);
        if let Some(o) = st.overlay.take() {
            c.dt.push(o);
        }
        c
    }

    /// Reads config.txt from the volume (an absent one gives defaults and a note).
    pub fn load(vol: &FatVolume, board: &PiBoard) -> Result<Config, PiBootError> {
        let text = match vol.read_file_max("config.txt", 1 << 20) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(super::FatError::NotFound(_)) => {
                let mut c = Config::default();
                c.notes.push("no config.txt: defaults used".into());
                return Ok(c);
            }
            Err(e) => return Err(e.into()),
        };
        let mut read = |name: &str| {
            vol.read_file_max(name, 1 << 20)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        Ok(Config::parse(&text, board, &mut read))
    }
}

/// A number as config.txt writes them: decimal or 0x hex.
pub fn parse_num(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Splits `a=b,c,d=e` into parameters.
fn params(s: &str) -> Vec<Param> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
            None => (p.to_string(), None),
        })
        .collect()
}

struct Parser {
    /// (type, holds) of the filters in force.
    filters: Vec<(String, bool)>,
    none: bool,
    /// The overlay whose parameters `dtparam=` currently sets.
    overlay: Option<DtDirective>,
}

impl Parser {
    fn active(&self) -> bool {
        !self.none && self.filters.iter().all(|(_, v)| *v)
    }

    fn set_filter(&mut self, kind: &str, holds: bool) {
        self.filters.retain(|(k, _)| k != kind);
        self.filters.push((kind.to_string(), holds));
    }

    fn section(&mut self, f: &str, board: &PiBoard, notes: &mut Vec<String>) {
        let lf = f.trim().to_ascii_lowercase();
        if lf == "all" {
            self.filters.clear();
            self.none = false;
        } else if lf == "none" {
            self.none = true;
        } else if let Some(t) = lf.strip_prefix("board-type=") {
            let holds = parse_num(t).is_some_and(|t| Some(t as u32) == board.board_type());
            self.set_filter("board-type", holds);
        } else if lf.starts_with("0x") {
            let holds = parse_num(&lf) == Some(u64::from(board.serial));
            self.set_filter("serial", holds);
        } else if lf.starts_with("edid=") {
            self.set_filter("edid", false);
        } else if lf.starts_with("gpio") && lf.contains('=') {
            notes.push(format!(
                "[{f}]: GPIO levels at boot are unknown, taken as not matching"
            ));
            self.set_filter("gpio", false);
        } else if lf.starts_with("hdmi:") {
            self.set_filter("hdmi", true);
        } else if lf == "tryboot" {
            self.set_filter("tryboot", false);
        } else if (lf.starts_with("pi") || lf.starts_with("cm"))
            && lf[2..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
        {
            let holds = board.filters.iter().any(|b| b.eq_ignore_ascii_case(&lf));
            self.set_filter("model", holds);
        } else {
            notes.push(format!("[{f}]: unknown filter, taken as not matching"));
            self.set_filter(&format!("unknown:{lf}"), false);
        }
    }

    fn lines(
        &mut self,
        text: &str,
        file: &str,
        board: &PiBoard,
        read: &mut dyn FnMut(&str) -> Option<String>,
        c: &mut Config,
        depth: usize,
    ) {
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim().trim_end_matches('\r');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("{file}:{}", n + 1);
            if let Some(f) = line.strip_prefix('[') {
                match f.strip_suffix(']') {
                    Some(f) => self.section(f, board, &mut c.notes),
                    None => c.notes.push(format!("{at}: unterminated section {line:?}")),
                }
                continue;
            }
            // `include FILE` and `initramfs FILE ADDR` are space-separated.
            let (word, rest) = match line.split_once(|ch: char| ch.is_whitespace()) {
                Some((w, r)) if !w.contains('=') => (w, r.trim()),
                _ => (line, ""),
            };
            if word == "include" && !rest.is_empty() {
                if depth >= MAX_INCLUDE_DEPTH {
                    c.notes
                        .push(format!("{at}: include {rest}: nested too deeply, ignored"));
                } else if let Some(t) = read(rest) {
                    self.lines(&t, rest, board, read, c, depth + 1);
                } else {
                    c.notes.push(format!(
                        "{at}: include {rest}: not on the boot partition, ignored"
                    ));
                }
                continue;
            }
            if !self.active() {
                continue;
            }
            if word == "initramfs" && !rest.is_empty() {
                let mut it = rest.split_whitespace();
                let files: Vec<String> = it
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                let address = match it.next() {
                    None | Some("followkernel") => None,
                    Some(a) => {
                        match parse_num(a) {
                            Some(0) => None,
                            Some(v) => Some(v),
                            None => {
                                c.notes.push(format!("{at}: initramfs address {a:?} is not a number: followkernel used"));
                                None
                            }
                        }
                    }
                };
                c.initramfs = Some(InitramfsSpec { files, address });
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                c.notes
                    .push(format!("{at}: {line:?} is not key=value, ignored"));
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            match k.as_str() {
                "dtoverlay" | "device_tree_overlay" => {
                    if let Some(o) = self.overlay.take() {
                        c.dt.push(o);
                    }
                    let mut ps = params(&v);
                    if !ps.is_empty() {
                        let (name, _) = ps.remove(0);
                        self.overlay = Some(DtDirective::Overlay { name, params: ps });
                    }
                }
                "dtparam" | "device_tree_param" => match &mut self.overlay {
                    Some(DtDirective::Overlay { params: ps, .. }) => ps.extend(params(&v)),
                    _ => c.dt.extend(params(&v).into_iter().map(DtDirective::Param)),
                },
                "initramfs" => {
                    c.notes.push(format!(
                        "{at}: initramfs takes a space, not '=' (initramfs FILE followkernel): \
                         read as such"
                    ));
                    c.initramfs = Some(InitramfsSpec {
                        files: v.split(',').map(str::to_string).collect(),
                        address: None,
                    });
                }
                "ramfsfile" => {
                    let spec = c.initramfs.get_or_insert_with(InitramfsSpec::default);
                    spec.files = v
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                }
                "ramfsaddr" => {
                    let spec = c.initramfs.get_or_insert_with(InitramfsSpec::default);
                    spec.address = parse_num(&v).filter(|&a| a != 0);
                }
                _ => c.settings.push((k, v)),
            }
        }
    }
}

/// Settings [`plan`] uses; the rest are noted as ignored.
const USED: &[&str] = &[
    "arm_64bit",
    "kernel",
    "device_tree",
    "device_tree_address",
    "os_prefix",
    "overlay_prefix",
    "upstream_kernel",
    "cmdline",
    "enable_uart",
    "uart_2ndstage",
    "gpu_mem",
    "gpu_mem_256",
    "gpu_mem_512",
    "gpu_mem_1024",
    "total_mem",
    "kernel_address",
    "dtdebug",
];

/// What a kernel file looks like.
#[derive(Debug, PartialEq, Eq)]
enum KernelKind {
    Arm64,
    Compressed(&'static str),
    Zimage,
    Unknown,
}

fn kernel_kind(b: &[u8]) -> KernelKind {
    if b.get(0x38..0x3c) == Some(b"ARM\x64") {
        KernelKind::Arm64
    } else if b.starts_with(&[0x1f, 0x8b]) {
        KernelKind::Compressed("gzip")
    } else if b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        KernelKind::Compressed("zstd")
    } else if b.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        KernelKind::Compressed("xz")
    } else if b.starts_with(b"MZ") && b.get(4..8) == Some(b"zimg") {
        KernelKind::Compressed("EFI zboot")
    } else if b.get(0x24..0x28) == Some(&0x016f_2818u32.to_le_bytes()) {
        KernelKind::Zimage
    } else {
        KernelKind::Unknown
    }
}

/// Works out what the firmware would load from `volume` for `board`.
pub fn plan(volume: &FatVolume, board: &PiBoard) -> Result<BootPlan, PiBootError> {
    let cfg = Config::load(volume, board)?;
    let mut notes = cfg.notes.clone();
    for (k, v) in &cfg.settings {
        if !USED.contains(&k.as_str()) {
            notes.push(format!("{k}={v}: not used by the emulated boot, ignored"));
        }
    }
    let arm_64bit = cfg.flag("arm_64bit").unwrap_or(false);
    let upstream = cfg.flag("upstream_kernel").unwrap_or(false);

    let kernel_name = match cfg.get("kernel") {
        Some(k) if !k.is_empty() => k.to_string(),
        _ if arm_64bit => board.kernel64.clone(),
        _ => board.kernel32.clone(),
    };
    let dtb_names: Vec<String> = match cfg.get("device_tree") {
        Some("") => {
            return Err(PiBootError::Config(
                "device_tree= (empty) boots without a device tree (ATAGs), which an arm64 \
                 kernel cannot use"
                    .into(),
            ))
        }
        Some(d) => vec![d.to_string()],
        None => {
            let mut v: Vec<String> = Vec::new();
            let first: &[String] = if upstream { &board.upstream_dtbs } else { &[] };
            for n in first.iter().chain(&board.dtbs).chain(&board.upstream_dtbs) {
                if !v.contains(n) {
                    v.push(n.clone());
                }
            }
            v
        }
    };

    // os_prefix applies only if the kernel and a device tree are found under it.
    let mut prefix = match cfg.get("os_prefix") {
        Some(p) => p.to_string(),
        None if upstream => "upstream/".into(),
        None => String::new(),
    };
    let with = |prefix: &str, name: &str| match name.strip_prefix('/') {
        Some(abs) => abs.to_string(),
        None => format!("{prefix}{name}"),
    };
    if !prefix.is_empty() {
        let viable = volume.is_file(&with(&prefix, &kernel_name))
            && dtb_names.iter().any(|d| volume.is_file(&with(&prefix, d)));
        if !viable {
            notes.push(format!(
                "os_prefix {prefix:?}: {} or no device tree is not there, prefix ignored",
                with(&prefix, &kernel_name)
            ));
            prefix.clear();
        }
    }

    // The kernel.
    let kpath = with(&prefix, &kernel_name);
    let kernel_bytes = match volume.read_file(&kpath) {
        Ok(b) => b,
        Err(super::FatError::NotFound(_)) => {
            let mut hint = String::new();
            if !arm_64bit
                && cfg.get("kernel").is_none()
                && volume.is_file(&with(&prefix, &board.kernel64))
            {
                hint = format!(
                    "{} is there: set arm_64bit=1 in config.txt to boot it",
                    board.kernel64
                );
            }
            return Err(PiBootError::NoKernel {
                tried: vec![kpath],
                hint,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let kind = kernel_kind(&kernel_bytes);
    if board.only_64bit {
        if kind == KernelKind::Zimage {
            return Err(PiBootError::Not64Bit(format!(
                "{kpath} is a 32-bit ARM zImage; armboard emulates only AArch64: put an arm64 \
                 kernel on the card and set arm_64bit=1"
            )));
        }
        if !arm_64bit && kind != KernelKind::Arm64 {
            return Err(PiBootError::Not64Bit(format!(
                "config.txt has arm_64bit=0 (the default), so the firmware would start {kpath} \
                 as a 32-bit kernel, and it is not an arm64 Image ({}); armboard emulates only \
                 AArch64: set arm_64bit=1 and use an arm64 kernel",
                match kind {
                    KernelKind::Compressed(c) => format!("{c}-compressed"),
                    _ => "unknown format".to_string(),
                }
            )));
        }
        if !arm_64bit {
            notes.push(format!(
                "arm_64bit=0 but {kpath} is an arm64 Image: started in AArch64 (the real \
                 firmware would start it in AArch32)"
            ));
        }
    }

    // The device tree.
    let mut tried = Vec::new();
    let mut dtb = None;
    for d in &dtb_names {
        let p = with(&prefix, d);
        match volume.read_file_max(&p, 4 << 20) {
            Ok(b) => {
                dtb = Some(BootFile { name: p, bytes: b });
                break;
            }
            Err(super::FatError::NotFound(_)) => tried.push(p),
            Err(e) => return Err(e.into()),
        }
    }
    let Some(mut dtb) = dtb else {
        if cfg.get("device_tree").is_some() {
            return Err(PiBootError::MissingFile {
                key: "device_tree".into(),
                file: tried.join(", "),
            });
        }
        return Err(PiBootError::NoDtb { tried });
    };

    // The initramfs.
    let initramfs = match &cfg.initramfs {
        Some(spec) if !spec.files.is_empty() => {
            let mut bytes = Vec::new();
            let mut names = Vec::new();
            for f in &spec.files {
                let p = with(&prefix, f);
                match volume.read_file(&p) {
                    Ok(b) => bytes.extend_from_slice(&b),
                    Err(super::FatError::NotFound(_)) => {
                        return Err(PiBootError::MissingFile {
                            key: "initramfs".into(),
                            file: p,
                        })
                    }
                    Err(e) => return Err(e.into()),
                }
                names.push(p);
            }
            Some(Initramfs {
                name: names.join(","),
                bytes,
                address: spec.address,
            })
        }
        _ => None,
    };

    // The command line.
    let cmd_name = cfg.get("cmdline").filter(|c| !c.is_empty());
    let cpath = with(&prefix, cmd_name.unwrap_or("cmdline.txt"));
    let (cmdline, cmdline_file) = match volume.read_file_max(&cpath, 64 << 10) {
        Ok(b) => {
            let text = String::from_utf8_lossy(&b);
            let joined: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            (joined.join(" "), Some(cpath))
        }
        Err(super::FatError::NotFound(_)) => {
            if cmd_name.is_some() {
                return Err(PiBootError::MissingFile {
                    key: "cmdline".into(),
                    file: cpath,
                });
            }
            notes.push(format!("no {cpath}: empty kernel command line"));
            (String::new(), None)
        }
        Err(e) => return Err(e.into()),
    };

    // Memory: total_mem clamps, gpu_mem (or gpu_mem_<size>) comes off the top.
    let mut total = board.memory;
    if let Some(t) = cfg.get_int("total_mem") {
        total = t
            .saturating_mul(MIB)
            .clamp(128 * MIB, board.memory.max(128 * MIB))
            .min(board.memory);
    }
    let mut gpu = if total >= 1 << 30 { 76 } else { 64 };
    if let Some(g) = cfg.get_int("gpu_mem") {
        gpu = g;
    }
    let sized = if total >= 1 << 30 {
        "gpu_mem_1024"
    } else if total == 512 * MIB {
        "gpu_mem_512"
    } else if total == 256 * MIB {
        "gpu_mem_256"
    } else {
        ""
    };
    if let Some(g) = cfg.get_int(sized) {
        gpu = g;
    }
    if gpu < 16 {
        notes.push(format!("gpu_mem={gpu} is below the minimum: 16 used"));
        gpu = 16;
    }
    if gpu.saturating_mul(MIB) >= total / 2 + total / 4 {
        let default = if total >= 1 << 30 { 76 } else { 64 };
        notes.push(format!(
            "gpu_mem={gpu} leaves the ARM too little of {} MiB: {default} used",
            total / MIB
        ));
        gpu = default;
    }
    let arm_memory = total - gpu * MIB;

    // Overlays and parameters.
    let mut dt = Vec::new();
    let dt_changed = apply_dt(volume, &cfg, &prefix, &mut dtb, &mut dt)?;
    if dt_changed {
        notes.push(format!(
            "{}: rewritten with the applied overlays/parameters",
            dtb.name
        ));
    }

    Ok(BootPlan {
        kernel: BootFile {
            name: kpath,
            bytes: kernel_bytes,
        },
        dtb,
        initramfs,
        cmdline,
        cmdline_file,
        arm_64bit,
        gpu_mem_mib: gpu,
        total_memory: total,
        arm_memory,
        enable_uart: cfg.flag("enable_uart").unwrap_or(board.enable_uart_default),
        uart_2ndstage: cfg.flag("uart_2ndstage").unwrap_or(false),
        kernel_address: cfg.get_int("kernel_address"),
        device_tree_address: cfg.get_int("device_tree_address").filter(|&a| a != 0),
        os_prefix: prefix,
        dt,
        notes,
        config: cfg,
    })
}

/// Applies the config's dtoverlay/dtparam directives to `dtb`; true if it changed.
fn apply_dt(
    volume: &FatVolume,
    cfg: &Config,
    prefix: &str,
    dtb: &mut BootFile,
    out: &mut Vec<DtNote>,
) -> Result<bool, PiBootError> {
    if cfg.dt.is_empty() {
        return Ok(false);
    }
    let mut fdt = Fdt::parse(&dtb.bytes).map_err(|e| PiBootError::BadDtb {
        file: dtb.name.clone(),
        why: e.to_string(),
    })?;
    let overlay_prefix = cfg.get("overlay_prefix").unwrap_or("overlays/").to_string();
    let shared = format!("{prefix}{overlay_prefix}README");
    let odir = if !prefix.is_empty() && volume.is_file(&shared) {
        format!("{prefix}{overlay_prefix}")
    } else {
        overlay_prefix
    };
    let mut changed = false;
    for d in &cfg.dt {
        match d {
            DtDirective::Param((name, value)) => {
                let directive = format!("dtparam={}", overlay::show_param(name, value.as_deref()));
                let r = overlay::apply_dtparam(&mut fdt, name, value.as_deref());
                changed |= r.is_ok();
                out.push(match r {
                    Ok(()) => DtNote {
                        directive,
                        applied: true,
                        detail: "applied".into(),
                    },
                    Err(e) => DtNote {
                        directive,
                        applied: false,
                        detail: format!("{e}, ignored"),
                    },
                });
            }
            DtDirective::Overlay { name, params } => {
                let mut directive = format!("dtoverlay={name}");
                for (k, v) in params {
                    directive.push(',');
                    directive.push_str(&overlay::show_param(k, v.as_deref()));
                }
                let file = format!("{odir}{name}.dtbo");
                let note = |applied, detail: String| DtNote {
                    directive: directive.clone(),
                    applied,
                    detail,
                };
                let bytes = match volume.read_file_max(&file, 4 << 20) {
                    Ok(b) => b,
                    Err(super::FatError::NotFound(_)) => {
                        out.push(note(
                            false,
                            format!("{file} not on the boot partition, ignored"),
                        ));
                        continue;
                    }
                    Err(e) => {
                        out.push(note(false, format!("{e}, ignored")));
                        continue;
                    }
                };
                let ov = match Fdt::parse(&bytes) {
                    Ok(o) => o,
                    Err(e) => {
                        out.push(note(false, format!("{file}: {e}, ignored")));
                        continue;
                    }
                };
                match overlay::apply_overlay(&mut fdt, &ov, params) {
                    Ok(pnotes) => {
                        changed = true;
                        let mut detail = format!("{file} applied");
                        if !pnotes.is_empty() {
                            detail.push_str(&format!(" ({})", pnotes.join("; ")));
                        }
                        out.push(note(true, detail));
                    }
                    Err(e) => out.push(note(false, format!("{file} not applied: {e}"))),
                }
            }
        }
    }
    if changed {
        dtb.bytes = fdt.to_bytes().map_err(|e| PiBootError::BadDtb {
            file: dtb.name.clone(),
            why: e.to_string(),
        })?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::parse(text, &PiBoard::raspi3b(), &mut |n| {
            (n == "extra.txt").then(|| "[all]\nkernel=from-include.img\n".to_string())
        })
    }

    #[test]
    fn filters_select_the_board_sections() {
        let c = parse(
            "# comment\n  kernel = a.img \n[pi4]\nkernel=pi4.img\n[pi3]\narm_64bit=1\n\
             [pi3+]\ngpu_mem=1\n[pi3]\n[board-type=0x8]\ngpu_mem=64\n[board-type=0x11]\n\
             gpu_mem=2\n[all]\n[none]\nenable_uart=1\n[all]\ndisable_overscan=1\n",
        );
        assert_eq!(c.get("kernel"), Some("a.img"));
        assert_eq!(c.flag("arm_64bit"), Some(true));
        assert_eq!(c.get_int("gpu_mem"), Some(64));
        assert_eq!(c.get("enable_uart"), None);
        assert_eq!(c.get("disable_overscan"), Some("1"));
        let c = parse("[0x12345678]\nenable_uart=1\n[0x1]\nuart_2ndstage=1\n[EDID=X]\ncmdline=x\n");
        assert_eq!(c.flag("enable_uart"), Some(true));
        assert_eq!(c.get("uart_2ndstage"), None);
        assert_eq!(c.get("cmdline"), None);
    }

    #[test]
    fn initramfs_include_and_dt_directives_parse() {
        let c = parse(
            "initramfs initrd.img followkernel\ninclude extra.txt\ninclude missing.txt\n\
             dtparam=audio=on,spi\ndtoverlay=disable-bt\ndtparam=x=1\n\
             dtoverlay=foo,a=1,b\ndtoverlay=\ndtparam=i2c_arm=on\n",
        );
        assert_eq!(
            c.initramfs,
            Some(InitramfsSpec {
                files: vec!["initrd.img".into()],
                address: None
            })
        );
        assert_eq!(c.get("kernel"), Some("from-include.img"));
        assert!(c.notes.iter().any(|n| n.contains("missing.txt")));
        let p = |k: &str, v: Option<&str>| (k.to_string(), v.map(str::to_string));
        assert_eq!(
            c.dt,
            vec![
                DtDirective::Param(p("audio", Some("on"))),
                DtDirective::Param(p("spi", None)),
                DtDirective::Overlay {
                    name: "disable-bt".into(),
                    params: vec![p("x", Some("1"))]
                },
                DtDirective::Overlay {
                    name: "foo".into(),
                    params: vec![p("a", Some("1")), p("b", None)]
                },
                DtDirective::Param(p("i2c_arm", Some("on"))),
            ]
        );
        let c = parse("ramfsfile=a.gz,b.gz\nramfsaddr=0x2000000\n");
        assert_eq!(
            c.initramfs,
            Some(InitramfsSpec {
                files: vec!["a.gz".into(), "b.gz".into()],
                address: Some(0x200_0000)
            })
        );
    }

    #[test]
    fn self_including_config_terminates() {
        let mut read = |_: &str| Some("include self.txt\nkernel=k\n".to_string());
        let c = Config::parse("include self.txt\n", &PiBoard::raspi3b(), &mut read);
        assert_eq!(c.get("kernel"), Some("k"));
        assert!(c.notes.iter().any(|n| n.contains("nested too deeply")));
    }
}
