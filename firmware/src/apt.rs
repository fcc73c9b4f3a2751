//! Fetching Debian arm64 packages with the host's `apt-get`, through a private configuration.
//!
//! Everything apt keeps — package lists, its cache, an (empty) dpkg status file and the
//! generated `sources.list` — lives under one directory of our cache, passed to every apt
//! command as `-o` options. The host's own dpkg state and architecture list are never read
//! or changed (no `dpkg --add-architecture`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Debian release guests come from.
pub const SUITE: &str = "bookworm";
/// The guest architecture, in Debian's name.
pub const ARCH: &str = "arm64";
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Why apt could not give us packages.
#[derive(Debug, thiserror::Error)]
pub enum AptError {
    #[error(
        "apt-get was not found on PATH: fetching Debian packages needs a Debian-family host \
         with apt (or pass an existing sysroot directory)"
    )]
    NoAptGet,
    #[error(
        "no Debian archive keyring at {0}: install the debian-archive-keyring package, or set \
         ARMBOARD_DEBIAN_KEYRING"
    )]
    NoKeyring(PathBuf),
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Failed {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("apt resolved no packages for {0:?}")]
    NothingResolved(Vec<String>),
    #[error("apt-get download did not produce {0}")]
    MissingDownload(PathBuf),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Where packages come from: one `deb` line of our private sources.list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    pub uri: String,
    pub keyring: Option<PathBuf>,
}

impl Mirror {
    /// The mirror the host itself uses for `bookworm` (from /etc/apt/sources.list and
    /// sources.list.d), else deb.debian.org; `ARMBOARD_DEBIAN_MIRROR` and
    /// `ARMBOARD_DEBIAN_KEYRING` override.
    pub fn detect() -> Mirror {
        let mut m = host_mirror(Path::new("/etc/apt")).unwrap_or(Mirror {
            uri: DEFAULT_MIRROR.into(),
            keyring: None,
        });
        if let Ok(uri) = std::env::var("ARMBOARD_DEBIAN_MIRROR") {
            m.uri = uri;
        }
        if let Ok(k) = std::env::var("ARMBOARD_DEBIAN_KEYRING") {
            m.keyring = Some(k.into());
        }
        if m.keyring.is_none() {
            m.keyring = Some(DEFAULT_KEYRING.into());
        }
        m
    }

    fn sources_line(&self) -> String {
        let mut opts = format!("arch={ARCH}");
        if let Some(k) = &self.keyring {
            opts.push_str(&format!(" signed-by={}", k.display()));
        }
        format!(
            "deb [{opts}] {} {SUITE} main\n",
            self.uri.trim_end_matches('/')
        )
    }
}

/// Finds a `deb` source for [`SUITE`] in the host's apt configuration directory.
fn host_mirror(etc_apt: &Path) -> Option<Mirror> {
    let mut files = vec![etc_apt.join("sources.list")];
    if let Ok(rd) = std::fs::read_dir(etc_apt.join("sources.list.d")) {
        let mut more: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let found = if name.ends_with(".sources") {
            parse_deb822(&text)
        } else if name.ends_with(".list") {
            parse_one_line(&text)
        } else {
            None
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// One-line style: `deb [opts] URI SUITE COMPONENTS...`.
fn parse_one_line(text: &str) -> Option<Mirror> {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line.strip_prefix("deb ") else {
            continue;
        };
        let mut rest = rest.trim();
        let mut keyring = None;
        if let Some(r) = rest.strip_prefix('[') {
            let (opts, after) = r.split_once(']')?;
            for o in opts.split_whitespace() {
                if let Some(k) = o.strip_prefix("signed-by=") {
                    keyring = Some(PathBuf::from(k));
                }
            }
            rest = after.trim();
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        if suite == SUITE && words.any(|c| c == "main") {
            return Some(Mirror {
                uri: uri.into(),
                keyring,
            });
        }
    }
    None
}

/// deb822 style (`.sources`): stanzas of `Key: value` fields separated by blank lines.
fn parse_deb822(text: &str) -> Option<Mirror> {
    for stanza in text.split("\n\n") {
        let mut types = "";
        let mut uris = "";
        let mut suites = "";
        let mut comps = "";
        let mut keyring = None;
        let mut enabled = true;
        for line in stanza.lines() {
            if line.trim_start().starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "types" => types = v,
                "uris" => uris = v,
                "suites" => suites = v,
                "components" => comps = v,
                "signed-by" if v.starts_with('/') => keyring = Some(PathBuf::from(v)),
                "enabled" => enabled = v != "no",
                _ => {}
            }
        }
        let has = |list: &str, w: &str| list.split_whitespace().any(|x| x == w);
        if enabled && has(types, "deb") && has(suites, SUITE) && has(comps, "main") {
            if let Some(uri) = uris.split_whitespace().next() {
                return Some(Mirror {
                    uri: uri.into(),
                    keyring,
                });
            }
        }
    }
    None
}

/// A package at an exact version, as apt resolved it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PkgVersion {
    pub name: String,
    pub version: String,
    /// `arm64` or `all`.
    pub arch: String,
}

impl PkgVersion {
    /// The file name `apt-get download` gives the package (`:` in versions becomes `%3a`).
    pub fn deb_file_name(&self) -> String {
        let q = |s: &str| s.replace(':', "%3a");
        format!("{}_{}_{}.deb", q(&self.name), q(&self.version), self.arch)
    }
}

/// apt-get, run with our private configuration rooted at `dir`.
pub struct Apt {
    dir: PathBuf,
    apt_get: PathBuf,
}

impl Apt {
    /// Prepares the private configuration under `dir` for `mirror`.
    pub fn new(dir: &Path, mirror: &Mirror) -> Result<Apt, AptError> {
        let apt_get = find_on_path("apt-get").ok_or(AptError::NoAptGet)?;
        if let Some(k) = &mirror.keyring {
            if !k.exists() {
                return Err(AptError::NoKeyring(k.clone()));
            }
        }
        let io = |p: &Path, e| AptError::Io(p.to_path_buf(), e);
        for sub in ["lists/partial", "cache/archives/partial", "sources.list.d"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
        }
        let status = dir.join("status");
        if !status.exists() {
            std::fs::write(&status, b"").map_err(|e| io(&status, e))?;
        }
        let sources = dir.join("sources.list");
        let line = mirror.sources_line();
        if std::fs::read_to_string(&sources).ok().as_deref() != Some(line.as_str()) {
            std::fs::write(&sources, line).map_err(|e| io(&sources, e))?;
            // A different mirror: the old lists no longer describe it.
            clear_lists(&dir.join("lists"));
        }
        Ok(Apt {
            dir: dir.to_path_buf(),
            apt_get,
        })
    }

    fn options(&self) -> Vec<String> {
        let d = |s: &str| self.dir.join(s).display().to_string();
        vec![
            format!("-oAPT::Architecture={ARCH}"),
            format!("-oAPT::Architectures={ARCH}"),
            format!("-oDir::State::Lists={}", d("lists")),
            format!("-oDir::Cache={}", d("cache")),
            format!("-oDir::State::Status={}", d("status")),
            format!("-oDir::Etc::SourceList={}", d("sources.list")),
            format!("-oDir::Etc::SourceParts={}", d("sources.list.d")),
            // Only the Packages indices: no translations, AppStream or Contents.
            "-oAcquire::Languages=none".into(),
            "-oAcquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".into(),
            // Our directories may not be reachable by the _apt sandbox user.
            "-oAPT::Sandbox::User=root".into(),
            "-q".into(),
        ]
    }

    fn run(&self, args: &[&str], cwd: Option<&Path>) -> Result<String, AptError> {
        let mut cmd = Command::new(&self.apt_get);
        cmd.args(self.options()).args(args);
        cmd.env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive");
        if let Some(c) = cwd {
            cmd.current_dir(c);
        }
        let shown = format!("apt-get {}", args.join(" "));
        log::info!("running {shown}");
        let out = cmd
            .output()
            .map_err(|e| AptError::Io(self.apt_get.clone(), e))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stderr = stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(AptError::Failed {
                cmd: shown,
                status: out.status.to_string(),
                stderr,
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// True when package lists have been fetched at least once (they may be kept
    /// compressed, `..._Packages.lz4`, depending on the host's apt configuration).
    pub fn has_lists(&self) -> bool {
        std::fs::read_dir(self.dir.join("lists"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
            })
            .unwrap_or(false)
    }

    /// `apt-get update`: fetches the package lists.
    pub fn update(&self) -> Result<(), AptError> {
        self.run(&["update"], None).map(drop)
    }

    /// The packages (and their exact versions) that installing `pkgs` on an empty system
    /// needs, without recommends: apt's own resolver, run as a simulation.
    pub fn resolve(&self, pkgs: &[&str]) -> Result<Vec<PkgVersion>, AptError> {
        let mut args = vec!["-s", "install", "--no-install-recommends", "-y"];
        args.extend(pkgs);
        let out = self.run(&args, None)?;
        let mut v = parse_simulation(&out);
        v.sort();
        v.dedup();
        if v.is_empty() {
            return Err(AptError::NothingResolved(
                pkgs.iter().map(|s| s.to_string()).collect(),
            ));
        }
        Ok(v)
    }

    /// Downloads those of `pkgs` not yet in `debs` into it; returns every package's path.
    /// The caller holds the cache lock.
    pub fn download(&self, pkgs: &[PkgVersion], debs: &Path) -> Result<Vec<PathBuf>, AptError> {
        let io = |p: &Path, e| AptError::Io(p.to_path_buf(), e);
        std::fs::create_dir_all(debs).map_err(|e| io(debs, e))?;
        let missing: Vec<&PkgVersion> = pkgs
            .iter()
            .filter(|p| !debs.join(p.deb_file_name()).is_file())
            .collect();
        if !missing.is_empty() {
            // Download into a private directory so a half-written file is never taken as a
            // package, then move each into place.
            crate::deb::remove_stale(debs, ".download-");
            let tmp = debs.join(format!(".download-{}", std::process::id()));
            std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
            let specs: Vec<String> = missing
                .iter()
                .map(|p| format!("{}:{}={}", p.name, ARCH, p.version))
                .collect();
            let mut args = vec!["download"];
            args.extend(specs.iter().map(String::as_str));
            let r = self.run(&args, Some(&tmp));
            if let Err(e) = r {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
            for p in &missing {
                let f = p.deb_file_name();
                let from = tmp.join(&f);
                if !from.is_file() {
                    let _ = std::fs::remove_dir_all(&tmp);
                    return Err(AptError::MissingDownload(from));
                }
                let to = debs.join(&f);
                std::fs::rename(&from, &to).map_err(|e| io(&to, e))?;
            }
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Ok(pkgs.iter().map(|p| debs.join(p.deb_file_name())).collect())
    }
}

fn clear_lists(lists: &Path) {
    if let Ok(rd) = std::fs::read_dir(lists) {
        for e in rd.filter_map(|e| e.ok()) {
            if e.path().is_file() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Parses the `Inst NAME (VERSION ... [ARCH])` lines of `apt-get -s install`.
fn parse_simulation(out: &str) -> Vec<PkgVersion> {
    let mut v = Vec::new();
    for line in out.lines() {
        let Some(rest) = line.strip_prefix("Inst ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let Some(name) = words.next() else { continue };
        let name = name.split(':').next().unwrap_or(name);
        let Some(open) = rest.find('(') else { continue };
        let inside = &rest[open + 1..];
        let inside = inside.split(')').next().unwrap_or(inside);
        let Some(version) = inside.split_whitespace().next() else {
            continue;
        };
        let arch = inside
            .rfind('[')
            .and_then(|i| inside[i + 1..].split(']').next())
            .unwrap_or(ARCH);
        v.push(PkgVersion {
            name: name.into(),
            version: version.into(),
            arch: arch.into(),
        });
    }
    v
}

/// The first executable called `name` in `$PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_simulated_install() {
        let out = "Reading package lists...\n\
            Inst gcc-12-base (12.2.0-14+deb12u1 Debian:12.15/oldstable [arm64])\n\
            Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [arm64]) []\n\
            Inst busybox-static (1:1.35.0-4+deb12u1+b1 Debian:12.15/oldstable [arm64])\n\
            Inst media-types (10.0.0 Debian:12.15/oldstable [all])\n\
            Conf libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [arm64])\n";
        let v = parse_simulation(out);
        assert_eq!(v.len(), 4);
        assert_eq!(v[1].name, "libc6");
        assert_eq!(v[1].version, "2.36-9+deb12u14");
        assert_eq!(v[1].arch, "arm64");
        assert_eq!(v[3].arch, "all");
        assert_eq!(
            v[2].deb_file_name(),
            "busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb"
        );
    }

    #[test]
    fn finds_bookworm_in_deb822_and_one_line_sources() {
        let d822 = "Types: deb\n# comment\nURIs: http://mirror.example/debian\n\
            Suites: bookworm bookworm-updates\nComponents: main\n\
            Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
            Types: deb\nURIs: http://security.example/debian-security\n\
            Suites: bookworm-security\nComponents: main\n";
        let m = parse_deb822(d822).unwrap();
        assert_eq!(m.uri, "http://mirror.example/debian");
        assert_eq!(
            m.keyring.as_deref(),
            Some(Path::new("/usr/share/keyrings/debian-archive-keyring.gpg"))
        );
        let one = "# x\ndeb http://other.example/ubuntu jammy main\n\
            deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main contrib\n";
        let m = parse_one_line(one).unwrap();
        assert_eq!(m.uri, "http://m.example/debian");
        assert_eq!(m.keyring.as_deref(), Some(Path::new("/k.gpg")));
        assert!(parse_one_line("deb http://x/ubuntu jammy main\n").is_none());
    }

    #[test]
    fn sources_line_is_arm64_only() {
        let m = Mirror {
            uri: "http://deb.debian.org/debian/".into(),
            keyring: Some("/k.gpg".into()),
        };
        assert_eq!(
            m.sources_line(),
            "deb [arch=arm64 signed-by=/k.gpg] http://deb.debian.org/debian bookworm main\n"
        );
    }
}
