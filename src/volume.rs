//! `armboard run --volume HOST:GUEST[:ro]`: a host directory the container sees at `GUEST`.
//!
//! The board has no file system shared with the host, so a volume travels on a disk: before
//! the boot the directory is copied into an ext4 file system (`mke2fs -d`, labelled
//! `armboard-vN` so the guest finds it whatever the disk's name), which the guest mounts and
//! the runtime bind-mounts into the container (see `armboard_firmware::guest::Volume`). After
//! the board powers off, a read-write volume's file system is checked (`e2fsck -p`, which
//! also replays its journal), dumped (`debugfs rdump`) and mirrored back into the host
//! directory: files the container created or changed are written, files it removed are
//! removed, unchanged ones (the same bytes) are left alone. The container's changes therefore reach the host
//! when the run ends, not while it runs, and they win over changes made on the host during
//! the run.
//!
//! If the file system cannot be read back (the check fails, or the dump reports an error),
//! the host directory is not touched and the disk image is kept, its path said, so nothing
//! the container wrote is lost.

use anyhow::{bail, Context};
use armboard_firmware::guest::Volume;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// Free space a volume's file system has beyond the directory's contents (the image file is
/// sparse: only what is written takes room on the host).
pub const SPARE: u64 = 1 << 30;

/// One `--volume` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeArg {
    pub host: PathBuf,
    pub target: String,
    pub readonly: bool,
}

/// Parses `HOST:GUEST`, `HOST:GUEST:ro` or `HOST:GUEST:rw`.
pub fn parse(spec: &str) -> anyhow::Result<VolumeArg> {
    let usage = || {
        format!(
            "--volume {spec:?}: expected HOST:GUEST or HOST:GUEST:ro (a host directory and \
             an absolute path in the container)"
        )
    };
    let (rest, readonly) = match spec.rsplit_once(':') {
        Some((r, "ro")) => (r, true),
        Some((r, "rw")) => (r, false),
        _ => (spec, false),
    };
    let (host, target) = rest
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!(usage()))?;
    if host.is_empty() {
        bail!(usage());
    }
    if !target.starts_with('/') {
        bail!("--volume {spec:?}: the container path {target:?} is not absolute");
    }
    if target.contains(|c: char| c == ',' || c.is_whitespace() || c.is_control()) {
        bail!("--volume {spec:?}: the container path may not hold commas or spaces");
    }
    let mut parts = Vec::new();
    for c in Path::new(target).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir | Component::Prefix(_) => {
                bail!("--volume {spec:?}: the container path may not hold \"..\"")
            }
        }
    }
    if parts.is_empty() {
        bail!("--volume {spec:?}: a volume cannot be the container's root");
    }
    Ok(VolumeArg {
        host: PathBuf::from(host),
        target: format!("/{}", parts.join("/")),
        readonly,
    })
}

/// A volume prepared for the board: its file system is in `image` at byte `offset`.
pub struct Prepared {
    pub arg: VolumeArg,
    pub volume: Volume,
    pub image: PathBuf,
    pub offset: u64,
    /// Bytes of the file system.
    pub size: u64,
    /// Whether the host directory had a `lost+found` of its own (mke2fs adds one).
    had_lost_found: bool,
}

/// Checks the host directories (creating missing ones, as `docker run -v` does) and gives
/// each volume its label.
pub fn check(args: &[VolumeArg]) -> anyhow::Result<Vec<(VolumeArg, Volume)>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if !seen.insert(a.target.clone()) {
            bail!("--volume: two volumes at {} in the container", a.target);
        }
        match std::fs::metadata(&a.host) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!(
                "--volume {}: not a directory (a volume is a host directory)",
                a.host.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !a.readonly => {
                std::fs::create_dir_all(&a.host)
                    .with_context(|| format!("--volume {}: creating it", a.host.display()))?
            }
            Err(e) => return Err(e).with_context(|| format!("--volume {}", a.host.display())),
        }
        let volume = Volume {
            label: format!("armboard-v{i}"),
            target: a.target.clone(),
            readonly: a.readonly,
        };
        out.push((a.clone(), volume));
    }
    Ok(out)
}

/// Bytes in the files under `dir` (not following symlinks), and the number of entries.
fn tree_size(dir: &Path) -> std::io::Result<(u64, u64)> {
    let (mut bytes, mut n) = (0, 0);
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let m = e.path().symlink_metadata()?;
            n += 1;
            if m.is_dir() {
                todo.push(e.path());
            } else {
                bytes += m.len();
            }
        }
    }
    Ok((bytes, n))
}

/// An ext4 file system made from a directory with e2fsprogs' `mke2fs -d`, sized for the
/// directory as it was measured.
pub struct Ext4<'a> {
    dir: &'a Path,
    label: Option<&'a str>,
    /// The root directory's owner: root (a container's root) instead of the directory's.
    root_owned: bool,
    /// The file system's size in bytes (a multiple of 1 MiB).
    pub size: u64,
    /// Entries in the directory (the inodes the file system needs beyond its spare ones).
    entries: u64,
}

impl<'a> Ext4<'a> {
    /// Measures `dir` (once) for a file system with `spare` bytes free beyond its contents.
    pub fn new(
        dir: &'a Path,
        label: Option<&'a str>,
        spare: u64,
        root_owned: bool,
    ) -> anyhow::Result<Self> {
        let (bytes, entries) =
            tree_size(dir).with_context(|| format!("reading {}", dir.display()))?;
        let size = (bytes + entries * 4096) * 5 / 4 + (32 << 20) + spare;
        Ok(Ext4 {
            dir,
            label,
            root_owned,
            size: size.next_multiple_of(1 << 20),
            entries,
        })
    }

    /// Writes the file system into `img` at byte `offset` (the file is made or extended as
    /// needed).
    pub fn write(&self, img: &Path, offset: u64) -> anyhow::Result<()> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(img)
            .with_context(|| format!("creating {}", img.display()))?;
        if f.metadata()?.len() < offset + self.size {
            f.set_len(offset + self.size)
                .with_context(|| format!("sizing {}", img.display()))?;
        }
        let mut cmd = Command::new("mke2fs");
        cmd.args(["-q", "-F", "-t", "ext4", "-N"])
            .arg((self.entries + 1024).to_string());
        let mut ext = vec![format!("offset={offset}")];
        if self.root_owned {
            ext.push("root_owner=0:0".into());
        }
        cmd.arg("-E").arg(ext.join(","));
        if let Some(l) = self.label {
            cmd.args(["-L", l]);
        }
        let out = cmd
            .arg("-d")
            .arg(self.dir)
            .arg(img)
            .arg(format!("{}k", self.size / 1024))
            .output()
            .context("running mke2fs (install e2fsprogs)")?;
        if !out.status.success() {
            bail!(
                "mke2fs -d {} failed: {}",
                self.dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

impl Prepared {
    /// Writes `arg`'s directory as `volume`'s file system into `image` at `offset` (its
    /// size, [`SPARE`] free beyond the contents, is in the result).
    pub fn write(
        arg: VolumeArg,
        volume: Volume,
        image: PathBuf,
        offset: u64,
    ) -> anyhow::Result<Prepared> {
        let context = || format!("--volume {}", arg.host.display());
        let fs = Ext4::new(&arg.host, Some(&volume.label), SPARE, false).with_context(context)?;
        fs.write(&image, offset).with_context(context)?;
        let size = fs.size;
        let had_lost_found = arg.host.join("lost+found").symlink_metadata().is_ok();
        let p = Prepared {
            arg,
            volume,
            image,
            offset,
            size,
            had_lost_found,
        };
        if !had_lost_found {
            // The container sees the directory as it is on the host: without the
            // lost+found mke2fs makes (e2fsck may make it again; it is not copied back).
            debugfs(&p.device(), "rmdir /lost+found", true)
                .with_context(|| format!("--volume {}", p.arg.host.display()))?;
        }
        Ok(p)
    }

    /// The file system's name for e2fsprogs (its image, with the offset when not 0).
    fn device(&self) -> OsString {
        let mut d = self.image.clone().into_os_string();
        if self.offset != 0 {
            d.push(format!("?offset={}", self.offset));
        }
        d
    }

    /// Copies a read-write volume back into its host directory (see the module's
    /// documentation); `scratch` is a directory for the dump.
    pub fn copy_back(&self, scratch: &Path) -> anyhow::Result<Mirrored> {
        if self.arg.readonly {
            return Ok(Mirrored::default());
        }
        let dev = self.device();
        let fsck = Command::new("e2fsck")
            .args(["-f", "-p"])
            .arg(&dev)
            .output()
            .context("running e2fsck (install e2fsprogs)")?;
        // 0: clean, 1: errors corrected; anything else leaves it uncertain.
        if !matches!(fsck.status.code(), Some(0 | 1)) {
            bail!(
                "the volume's file system does not check clean ({}): {}",
                fsck.status,
                String::from_utf8_lossy(&fsck.stdout).trim()
            );
        }
        let out = scratch.join(format!("{}.dump", self.volume.label));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        debugfs(&dev, &format!("rdump / {}", out.display()), false)
            .context("reading the volume's file system back")?;
        let mut m = Mirrored::default();
        let mut skip = BTreeSet::new();
        if !self.had_lost_found {
            skip.insert(OsString::from("lost+found"));
        }
        mirror_dir(&out, &self.arg.host, &skip, &mut m)
            .with_context(|| format!("writing the volume back into {}", self.arg.host.display()))?;
        let _ = std::fs::remove_dir_all(&out);
        Ok(m)
    }
}

/// Runs debugfs' `request` on the file system `dev` (writable with `write`).
fn debugfs(dev: &OsString, request: &str, write: bool) -> anyhow::Result<()> {
    let mut cmd = Command::new("debugfs");
    if write {
        cmd.arg("-w");
    }
    let out = cmd
        .arg("-R")
        .arg(request)
        .arg(dev)
        .output()
        .context("running debugfs (install e2fsprogs)")?;
    // debugfs names itself on stderr; anything more is an error it did not fail on.
    let complaints: Vec<&str> = std::str::from_utf8(&out.stderr)
        .unwrap_or("(not text)")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("debugfs "))
        .collect();
    if !out.status.success() || !complaints.is_empty() {
        bail!("debugfs {request}: {}", complaints.join("; "));
    }
    Ok(())
}

/// What a copy back changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mirrored {
    /// Files, links and directories written.
    pub written: u64,
    /// Entries removed.
    pub removed: u64,
    /// Entries left out: devices, FIFOs and sockets.
    pub skipped: u64,
}

fn remove_any(p: &Path) -> std::io::Result<()> {
    match p.symlink_metadata() {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn same_contents(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(fb.read(&mut bb[..1])? == 0);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// Owner, permissions and modification time of `src` onto `dst` (ownership only where the
/// host allows it: as root).
fn copy_meta(src: &std::fs::Metadata, dst: &Path) -> std::io::Result<()> {
    let dm = dst.metadata()?;
    if (dm.uid(), dm.gid()) != (src.uid(), src.gid()) {
        match std::os::unix::fs::lchown(dst, Some(src.uid()), Some(src.gid())) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
            r => r?,
        }
    }
    if dm.mode() & 0o7777 != src.mode() & 0o7777 {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(src.mode() & 0o7777))?;
    }
    Ok(())
}

/// Makes the directory `dst` hold what `src` holds, `skip` names of `src` left out (and
/// left alone in `dst`).
fn mirror_dir(
    src: &Path,
    dst: &Path,
    skip: &BTreeSet<OsString>,
    m: &mut Mirrored,
) -> std::io::Result<()> {
    let mut names = BTreeSet::new();
    for e in std::fs::read_dir(src)? {
        let name = e?.file_name();
        if !skip.contains(&name) {
            names.insert(name);
        }
    }
    for e in std::fs::read_dir(dst)? {
        let name = e?.file_name();
        if !names.contains(&name) && !skip.contains(&name) {
            remove_any(&dst.join(&name))?;
            m.removed += 1;
        }
    }
    let none = BTreeSet::new();
    for name in &names {
        let (s, d) = (src.join(name), dst.join(name));
        let sm = s.symlink_metadata()?;
        let dm = d.symlink_metadata().ok();
        let ft = sm.file_type();
        if ft.is_dir() {
            if !dm.as_ref().is_some_and(|x| x.is_dir()) {
                remove_any(&d)?;
                std::fs::create_dir(&d)?;
                m.written += 1;
            }
            mirror_dir(&s, &d, &none, m)?;
            copy_meta(&sm, &d)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&s)?;
            let same = dm.as_ref().is_some_and(|x| x.file_type().is_symlink())
                && std::fs::read_link(&d)? == target;
            if !same {
                remove_any(&d)?;
                std::os::unix::fs::symlink(&target, &d)?;
                m.written += 1;
            }
        } else if ft.is_file() {
            let unchanged = match &dm {
                // By contents, not times: a file rewritten within the same clock tick,
                // or given back its old time, has the same size and time.
                Some(x) if x.is_file() && x.len() == sm.len() => same_contents(&s, &d)?,
                _ => false,
            };
            if !unchanged {
                // Written beside it and renamed over it: the old file stays whole until the
                // new one is.
                let tmp = dst.join(format!(".{}.armboard-tmp", name.to_string_lossy()));
                std::fs::copy(&s, &tmp)?;
                std::fs::File::options()
                    .write(true)
                    .open(&tmp)?
                    .set_modified(sm.modified()?)?;
                if dm.as_ref().is_some_and(|x| x.is_dir()) {
                    remove_any(&d)?;
                }
                std::fs::rename(&tmp, &d)?;
                m.written += 1;
            }
            copy_meta(&sm, &d)?;
        } else {
            m.skipped += 1;
        }
    }
    Ok(())
}

/// Keeps a volume's disk image that could not be copied back: moves it out of the run's
/// temporary directory and says where it is.
pub fn keep_image(p: &Prepared, why: &anyhow::Error) {
    let kept = std::env::temp_dir().join(format!(
        "armboard-volume-{}-{}.img",
        std::process::id(),
        p.volume.label
    ));
    let moved = std::fs::rename(&p.image, &kept).is_ok();
    let at = if p.offset != 0 {
        format!(" (the file system starts at byte {})", p.offset)
    } else {
        String::new()
    };
    eprintln!(
        "armboard: the volume {} was not copied back: {why:#}",
        p.arg.host.display()
    );
    if moved {
        eprintln!(
            "armboard: what the container wrote is kept in {}{at}",
            kept.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_arguments_parse_and_bad_ones_are_refused() {
        let v = parse("/srv/data:/data").unwrap();
        assert_eq!(v.host, PathBuf::from("/srv/data"));
        assert_eq!(v.target, "/data");
        assert!(!v.readonly);
        let v = parse("rel/dir:/a/./b/:ro").unwrap();
        assert_eq!((v.target.as_str(), v.readonly), ("/a/b", true));
        assert!(!parse("d:/x:rw").unwrap().readonly);
        for bad in [
            "nocolon",
            ":/x",
            "d:rel",
            "d:/",
            "d:/a/../b",
            "d:/a b",
            "d:/a,b",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    fn tree(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let m = p.symlink_metadata().unwrap();
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                if m.file_type().is_symlink() {
                    out.push(format!(
                        "{rel} -> {}",
                        std::fs::read_link(&p).unwrap().display()
                    ));
                } else if m.is_dir() {
                    out.push(format!("{rel}/ {:o}", m.mode() & 0o7777));
                    todo.push(p);
                } else {
                    let data = std::fs::read(&p).unwrap();
                    out.push(format!(
                        "{rel} {:o} {}",
                        m.mode() & 0o7777,
                        String::from_utf8_lossy(&data)
                    ));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn a_volume_round_trips_and_a_damaged_one_leaves_the_host_directory_alone() {
        let base = std::env::temp_dir().join(format!("armboard-volrt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let host = base.join("host");
        std::fs::create_dir_all(host.join("d")).unwrap();
        std::fs::write(host.join("d/f"), "data").unwrap();
        let arg = parse(&format!("{}:/v", host.display())).unwrap();
        let (arg, vol) = check(&[arg]).unwrap().remove(0);
        let img = base.join("disk.img");
        let p = Prepared::write(arg, vol, img.clone(), 1 << 20).unwrap();
        // Unchanged: nothing is written or removed (and no lost+found appears).
        assert_eq!(p.copy_back(&base).unwrap(), Mirrored::default());
        assert!(!host.join("lost+found").exists());
        assert_eq!(std::fs::read(host.join("d/f")).unwrap(), b"data");
        // A file system whose superblocks are gone is not read back, and the host keeps
        // its files.
        {
            use std::os::unix::fs::FileExt;
            let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
            f.write_all_at(&vec![0u8; 8 << 20], 1 << 20).unwrap();
        }
        assert!(p.copy_back(&base).is_err());
        assert_eq!(std::fs::read(host.join("d/f")).unwrap(), b"data");
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn mirroring_writes_changes_removes_what_is_gone_and_keeps_the_rest() {
        let base = std::env::temp_dir().join(format!("armboard-mirror-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (src, dst) = (base.join("src"), base.join("dst"));
        for d in [&src, &dst] {
            std::fs::create_dir_all(d.join("sub")).unwrap();
            std::fs::write(d.join("same"), "same").unwrap();
        }
        std::fs::write(src.join("new"), "new").unwrap();
        std::fs::set_permissions(src.join("new"), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::write(src.join("sub/changed"), "after").unwrap();
        std::fs::write(dst.join("sub/changed"), "befor").unwrap();
        std::fs::write(dst.join("gone"), "x").unwrap();
        std::fs::create_dir_all(dst.join("gonedir/deep")).unwrap();
        std::fs::create_dir(src.join("was-file")).unwrap();
        std::fs::write(dst.join("was-file"), "f").unwrap();
        std::os::unix::fs::symlink("new", src.join("link")).unwrap();
        std::fs::create_dir(src.join("lost+found")).unwrap();
        let mut m = Mirrored::default();
        let skip = [OsString::from("lost+found")].into_iter().collect();
        mirror_dir(&src, &dst, &skip, &mut m).unwrap();
        let mut want = tree(&src);
        want.retain(|l| !l.starts_with("lost+found"));
        assert_eq!(tree(&dst), want);
        assert_eq!(m.removed, 2, "{m:?}");
        // new, sub/changed, was-file, link.
        assert_eq!(m.written, 4, "{m:?}");
        let mut again = Mirrored::default();
        mirror_dir(&src, &dst, &skip, &mut again).unwrap();
        assert_eq!(again, Mirrored::default());
        let _ = std::fs::remove_dir_all(&base);
    }
}
