//! OCI images for `armboard run --oci`: a `docker save` tarball (its `manifest.json`), an
//! OCI image layout (`index.json` + `blobs/`) as a directory or a tarball. The layers are
//! applied in order into a root directory, honouring whiteouts (`.wh.NAME` removes `NAME`
//! of the layers below, `.wh..wh..opq` empties its directory first), and the image's
//! configuration gives Entrypoint, Cmd, Env and WorkingDir.

use crate::deb;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why an image could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}")]
    Bad(String),
    #[error("image is {0}, board is arm64")]
    WrongPlatform(String),
    #[error("layer {0}: {1}")]
    Layer(String, String),
}

fn bad(s: impl Into<String>) -> OciError {
    OciError::Bad(s.into())
}

/// What the image's configuration says about running it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
}

/// Where the image's files are read from.
enum Source {
    Dir(PathBuf),
    /// The members of a tarball, by cleaned path.
    Tar(HashMap<String, Vec<u8>>),
}

impl Source {
    fn open(path: &Path) -> Result<Source, OciError> {
        let md = std::fs::metadata(path).map_err(|e| OciError::Io(path.into(), e))?;
        if md.is_dir() {
            return Ok(Source::Dir(path.to_path_buf()));
        }
        let raw = std::fs::read(path).map_err(|e| OciError::Io(path.into(), e))?;
        let data = decompress(&raw).map_err(|e| bad(format!("not an image archive: {e}")))?;
        let mut files = HashMap::new();
        let mut ar = tar::Archive::new(&data[..]);
        let entries = ar
            .entries()
            .map_err(|e| bad(format!("not a tar archive: {e}")))?;
        for e in entries {
            let mut e = e.map_err(|e| bad(format!("not a tar archive: {e}")))?;
            if !e.header().entry_type().is_file() {
                continue;
            }
            let name = e
                .path()
                .map_err(|e| bad(format!("bad member name: {e}")))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let mut v = Vec::new();
            e.read_to_end(&mut v)
                .map_err(|e| bad(format!("reading {name}: {e}")))?;
            files.insert(name, v);
        }
        if files.is_empty() {
            return Err(bad("not an image archive: no files in it"));
        }
        Ok(Source::Tar(files))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, OciError> {
        let name = name.trim_start_matches("./").trim_start_matches('/');
        if name.split('/').any(|c| c == "..") {
            return Err(bad(format!("bad path {name:?} in the image")));
        }
        match self {
            Source::Dir(d) => {
                let p = d.join(name);
                std::fs::read(&p).map_err(|e| OciError::Io(p, e))
            }
            Source::Tar(f) => f
                .get(name)
                .cloned()
                .ok_or_else(|| bad(format!("{name} is missing from the archive"))),
        }
    }

    fn has(&self, name: &str) -> bool {
        match self {
            Source::Dir(d) => d.join(name).is_file(),
            Source::Tar(f) => f.contains_key(name),
        }
    }

    fn json(&self, name: &str) -> Result<Value, OciError> {
        let b = self.read(name)?;
        serde_json::from_slice(&b).map_err(|e| bad(format!("{name}: bad JSON: {e}")))
    }

    fn blob(&self, digest: &str) -> Result<Vec<u8>, OciError> {
        self.read(&blob_path(digest)?)
    }
}

/// The path of the blob `digest` (`ALG:HEX`) in an OCI layout.
fn blob_path(digest: &str) -> Result<String, OciError> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| bad(format!("bad digest {digest:?}")))?;
    if alg.contains('/') || hex.contains('/') {
        return Err(bad(format!("bad digest {digest:?}")));
    }
    Ok(format!("blobs/{alg}/{hex}"))
}

/// gzip or zstd (by magic) or plain.
fn decompress(raw: &[u8]) -> Result<Vec<u8>, String> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut v = Vec::new();
        flate2::read::MultiGzDecoder::new(raw)
            .read_to_end(&mut v)
            .map_err(|e| format!("gzip: {e}"))?;
        Ok(v)
    } else if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let mut v = Vec::new();
        ruzstd::decoding::StreamingDecoder::new(raw)
            .map_err(|e| format!("zstd: {e}"))?
            .read_to_end(&mut v)
            .map_err(|e| format!("zstd: {e}"))?;
        Ok(v)
    } else {
        Ok(raw.to_vec())
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Where an image's parts are in its archive or layout.
struct Parts {
    /// The path of the image configuration.
    config_path: String,
    config: Value,
    /// `(name for messages, path)` of each layer, bottom first.
    layers: Vec<(String, String)>,
}

/// Finds the configuration (checked to be linux/arm64) and the layers of the image in `src`.
fn parts(src: &Source) -> Result<Parts, OciError> {
    if src.has("manifest.json") {
        // docker save: [{"Config": "...json", "Layers": [".../layer.tar", ...]}]
        let m = src.json("manifest.json")?;
        let first = m
            .as_array()
            .and_then(|a| a.first())
            .ok_or_else(|| bad("manifest.json lists no image"))?;
        let cfg = first["Config"]
            .as_str()
            .ok_or_else(|| bad("manifest.json: no Config"))?;
        let config = src.json(cfg)?;
        check_platform(&config)?;
        let layers = strings(&first["Layers"])
            .into_iter()
            .map(|l| (l.clone(), l))
            .collect();
        Ok(Parts {
            config_path: cfg.to_string(),
            config,
            layers,
        })
    } else if src.has("index.json") {
        let manifest = pick_manifest(src, &src.json("index.json")?, 0)?;
        let digest = manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| bad("image manifest: no config digest"))?;
        let config_path = blob_path(digest)?;
        let b = src.read(&config_path)?;
        let config: Value =
            serde_json::from_slice(&b).map_err(|e| bad(format!("image config: bad JSON: {e}")))?;
        check_platform(&config)?;
        let mut layers = Vec::new();
        for l in manifest["layers"].as_array().into_iter().flatten() {
            let d = l["digest"]
                .as_str()
                .ok_or_else(|| bad("image manifest: layer without a digest"))?;
            layers.push((d.to_string(), blob_path(d)?));
        }
        Ok(Parts {
            config_path,
            config,
            layers,
        })
    } else {
        Err(bad(
            "neither a docker save archive (manifest.json) nor an OCI image layout (index.json)",
        ))
    }
}

/// Unpacks the image at `image` into `root` (created) and returns its run configuration.
pub fn unpack(image: &Path, root: &Path) -> Result<ImageConfig, OciError> {
    let src = Source::open(image)?;
    let Parts { config, layers, .. } = parts(&src)?;
    let layers = layers
        .into_iter()
        .map(|(name, path)| Ok((name, src.read(&path)?)))
        .collect::<Result<Vec<_>, OciError>>()?;
    std::fs::create_dir_all(root).map_err(|e| OciError::Io(root.into(), e))?;
    for (name, raw) in &layers {
        let tar = decompress(raw).map_err(|e| OciError::Layer(name.clone(), e))?;
        apply_layer(&tar, root).map_err(|e| OciError::Layer(name.clone(), e))?;
    }
    let c = &config["config"];
    Ok(ImageConfig {
        entrypoint: strings(&c["Entrypoint"]),
        cmd: strings(&c["Cmd"]),
        env: strings(&c["Env"]),
        workdir: c["WorkingDir"].as_str().map(str::to_string),
    })
}

/// The image manifest an index points at: the linux/arm64 one of a multi-platform index.
fn pick_manifest(src: &Source, index: &Value, depth: u32) -> Result<Value, OciError> {
    if depth > 4 {
        return Err(bad("image indexes nest too deeply"));
    }
    let ms = index["manifests"]
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| bad("the image index lists no manifests"))?;
    let platform = |m: &Value| {
        format!(
            "{}/{}",
            m["platform"]["os"].as_str().unwrap_or("linux"),
            m["platform"]["architecture"].as_str().unwrap_or("?")
        )
    };
    let chosen = if ms.len() == 1 {
        &ms[0]
    } else {
        ms.iter()
            .find(|m| platform(m) == "linux/arm64")
            .ok_or_else(|| {
                let all: Vec<String> = ms.iter().map(platform).collect();
                OciError::WrongPlatform(all.join(", "))
            })?
    };
    let digest = chosen["digest"]
        .as_str()
        .ok_or_else(|| bad("image index: manifest without a digest"))?;
    let b = src.blob(digest)?;
    let m: Value =
        serde_json::from_slice(&b).map_err(|e| bad(format!("manifest {digest}: bad JSON: {e}")))?;
    if m.get("manifests").is_some() {
        return pick_manifest(src, &m, depth + 1);
    }
    Ok(m)
}

fn check_platform(config: &Value) -> Result<(), OciError> {
    let os = config["os"].as_str().unwrap_or("linux");
    let arch = config["architecture"].as_str().unwrap_or("unknown");
    if os != "linux" || arch != "arm64" {
        return Err(OciError::WrongPlatform(format!("{os}/{arch}")));
    }
    Ok(())
}

/// Applies one uncompressed layer: whiteouts first (they hide what the layers below
/// have), then the entries.
pub fn apply_layer(tar: &[u8], root: &Path) -> Result<(), String> {
    let mut ar = tar::Archive::new(tar);
    let mut whiteouts = Vec::new();
    for e in ar.entries().map_err(|e| e.to_string())? {
        let e = e.map_err(|e| e.to_string())?;
        let p = e.path().map_err(|e| e.to_string())?.into_owned();
        if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
            if let Some(hidden) = name.strip_prefix(".wh.") {
                let parent = p.parent().unwrap_or(Path::new("")).to_path_buf();
                whiteouts.push((parent, hidden.to_string()));
            }
        }
    }
    for (parent, hidden) in &whiteouts {
        let Ok(dir) = deb::resolve_in_root(root, parent, false) else {
            continue;
        };
        if !dir.starts_with(root) {
            continue;
        }
        if hidden == ".wh..opq" {
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    remove(&e.path());
                }
            }
        } else if !hidden.is_empty() && hidden != "." && hidden != ".." {
            remove(&dir.join(hidden));
        }
    }
    deb::unpack_tar(tar, root).map_err(|e| e.to_string())?;
    // The whiteout markers themselves were unpacked as empty files.
    for (parent, hidden) in &whiteouts {
        if let Ok(dir) = deb::resolve_in_root(root, parent, false) {
            let _ = std::fs::remove_file(dir.join(format!(".wh.{hidden}")));
        }
    }
    Ok(())
}

/// The image as one uncompressed tar stream for `ctr images import`: a tarball is
/// decompressed (ctr reads plain tar only), an OCI layout directory is archived; the
/// result is padded to whole 512-byte sectors (it becomes a disk).
pub fn import_archive(image: &Path) -> Result<Vec<u8>, OciError> {
    let md = std::fs::metadata(image).map_err(|e| OciError::Io(image.into(), e))?;
    let mut data = if md.is_dir() {
        let mut b = tar::Builder::new(Vec::new());
        let mut todo = vec![PathBuf::new()];
        while let Some(rel) = todo.pop() {
            let dir = image.join(&rel);
            let mut names: Vec<_> = std::fs::read_dir(&dir)
                .map_err(|e| OciError::Io(dir.clone(), e))?
                .filter_map(|e| e.ok())
                .collect();
            names.sort_by_key(|e| e.file_name());
            for e in names {
                let name = rel.join(e.file_name());
                let ft = e.file_type().map_err(|err| OciError::Io(e.path(), err))?;
                if ft.is_dir() {
                    todo.push(name);
                } else if ft.is_file() {
                    b.append_path_with_name(e.path(), &name)
                        .map_err(|err| OciError::Io(e.path(), err))?;
                }
            }
        }
        b.into_inner().map_err(|e| OciError::Io(image.into(), e))?
    } else {
        let raw = std::fs::read(image).map_err(|e| OciError::Io(image.into(), e))?;
        decompress(&raw).map_err(|e| bad(format!("not an image archive: {e}")))?
    };
    data.resize(data.len().next_multiple_of(512), 0);
    Ok(data)
}

/// The containers-image transport that reads an [`import_archive`] stream:
/// `docker-archive` when it has a top-level `manifest.json` (a `docker save` tarball, also
/// one that carries an OCI layout beside it), else `oci-archive` (an OCI layout).
pub fn archive_transport(tar: &[u8]) -> &'static str {
    let docker = tar::Archive::new(tar).entries().is_ok_and(|mut es| {
        es.any(|e| {
            e.ok()
                .and_then(|e| e.path().ok().map(|p| p.into_owned()))
                .is_some_and(|p| {
                    let p = p.strip_prefix(".").unwrap_or(&p);
                    p == Path::new("manifest.json")
                })
        })
    });
    if docker {
        "docker-archive"
    } else {
        "oci-archive"
    }
}

/// The image as a `docker save` archive for `docker load`, its one image tagged `tag`: the
/// configuration and the layers (as they are, compressed or not: `docker load` inflates
/// them) under their paths in the image, and a `manifest.json` naming them. Docker 20.10
/// loads no OCI layout (no `manifest.json`), and a `docker save` archive may have no tag or
/// several images, so every image is written this way. Padded to whole 512-byte sectors (it
/// becomes a disk).
pub fn docker_archive(image: &Path, tag: &str) -> Result<Vec<u8>, OciError> {
    let src = Source::open(image)?;
    let p = parts(&src)?;
    let layers: Vec<&str> = p.layers.iter().map(|(_, path)| path.as_str()).collect();
    let manifest = serde_json::json!([{
        "Config": p.config_path,
        "RepoTags": [tag],
        "Layers": layers,
    }]);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| -> Result<(), OciError> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data)
            .map_err(|e| bad(format!("writing {name} into the docker archive: {e}")))
    };
    let mut done = std::collections::BTreeSet::new();
    for path in std::iter::once(p.config_path.as_str()).chain(layers.iter().copied()) {
        // A layer may repeat (the same blob twice in a manifest).
        if done.insert(path) {
            add(path, &src.read(path)?)?;
        }
    }
    add("manifest.json", manifest.to_string().as_bytes())?;
    let mut data = b
        .into_inner()
        .map_err(|e| bad(format!("writing the docker archive: {e}")))?;
    data.resize(data.len().next_multiple_of(512), 0);
    Ok(data)
}

fn remove(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(p);
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("armboard-oci-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn layer(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            if name.ends_with('/') {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                b.append_data(&mut h, name, &[][..]).unwrap();
            } else {
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, name, data.as_bytes()).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    fn gz(b: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn import_archive_is_a_plain_tar_of_the_layout_in_whole_sectors() {
        let d = tmp("import");
        std::fs::create_dir_all(d.join("layout/blobs/sha256")).unwrap();
        std::fs::write(d.join("layout/index.json"), "{}").unwrap();
        std::fs::write(d.join("layout/blobs/sha256/ab"), "blob").unwrap();
        let names = |data: &[u8]| {
            let mut ar = tar::Archive::new(data);
            let mut v: Vec<(String, String)> = ar
                .entries()
                .unwrap()
                .map(|e| {
                    let mut e = e.unwrap();
                    let mut s = String::new();
                    e.read_to_string(&mut s).unwrap();
                    (e.path().unwrap().to_string_lossy().into_owned(), s)
                })
                .collect();
            v.sort();
            v
        };
        let want = vec![
            ("blobs/sha256/ab".to_string(), "blob".to_string()),
            ("index.json".to_string(), "{}".to_string()),
        ];
        let from_dir = import_archive(&d.join("layout")).unwrap();
        assert_eq!(from_dir.len() % 512, 0);
        assert_eq!(names(&from_dir), want);
        assert_eq!(archive_transport(&from_dir), "oci-archive");
        let mut docker = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_cksum();
        docker
            .append_data(&mut h, "./manifest.json", &b"[]"[..])
            .unwrap();
        assert_eq!(
            archive_transport(&docker.into_inner().unwrap()),
            "docker-archive"
        );
        // A gzip'd tarball comes back decompressed.
        std::fs::write(d.join("image.tar.gz"), gz(&from_dir)).unwrap();
        let from_gz = import_archive(&d.join("image.tar.gz")).unwrap();
        assert_eq!(from_gz, from_dir);
        let _ = std::fs::remove_dir_all(&d);
    }

    fn sha(data: &[u8]) -> String {
        // Any unique name works: the reader trusts the digests it is given.
        format!("sha256:{:064x}", crate::deb::fnv1a(data))
    }

    /// An OCI layout directory with the given config and layers.
    fn layout(dir: &Path, config: &str, layers: &[Vec<u8>]) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |data: &[u8]| {
            let d = sha(data);
            std::fs::write(blobs.join(&d[7..]), data).unwrap();
            d
        };
        let cfg = put(config.as_bytes());
        let ls: Vec<String> = layers
            .iter()
            .map(|l| {
                format!(
                    r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}"#,
                    put(l),
                    l.len()
                )
            })
            .collect();
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{cfg}"}},"layers":[{}]}}"#,
            ls.join(",")
        );
        let m = put(manifest.as_bytes());
        std::fs::write(
            dir.join("index.json"),
            format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{m}"}}]}}"#),
        )
        .unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    }

    #[test]
    fn layers_apply_in_order_with_whiteouts() {
        let d = tmp("layout");
        let img = d.join("img");
        let l1 = gz(&layer(&[
            ("etc/", ""),
            ("etc/keep", "1"),
            ("etc/gone", "1"),
            ("var/", ""),
            ("var/old/", ""),
            ("var/old/x", "1"),
            ("bin/", ""),
            ("bin/tool", "v1"),
        ]));
        let l2 = gz(&layer(&[
            ("etc/.wh.gone", ""),
            ("var/old/.wh..wh..opq", ""),
            ("var/old/y", "2"),
            ("bin/tool", "v2"),
        ]));
        let config = r#"{"architecture":"arm64","os":"linux","config":{"Env":["PATH=/bin","A=b"],"Entrypoint":["/bin/tool"],"Cmd":["--x"],"WorkingDir":"/var"}}"#;
        layout(&img, config, &[l1, l2]);
        let root = d.join("root");
        let c = unpack(&img, &root).unwrap();
        assert_eq!(c.entrypoint, ["/bin/tool"]);
        assert_eq!(c.cmd, ["--x"]);
        assert_eq!(c.env, ["PATH=/bin", "A=b"]);
        assert_eq!(c.workdir.as_deref(), Some("/var"));
        assert!(root.join("etc/keep").is_file());
        assert!(!root.join("etc/gone").exists());
        assert!(!root.join("etc/.wh.gone").exists());
        assert!(!root.join("var/old/x").exists());
        assert_eq!(
            std::fs::read_to_string(root.join("var/old/y")).unwrap(),
            "2"
        );
        assert!(!root.join("var/old/.wh..wh..opq").exists());
        assert_eq!(
            std::fs::read_to_string(root.join("bin/tool")).unwrap(),
            "v2"
        );
    }

    #[test]
    fn docker_save_archives_unpack_and_other_platforms_are_refused() {
        let d = tmp("docker");
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, data).unwrap();
        };
        add(
            "manifest.json",
            br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l1/layer.tar"]}]"#,
        );
        add(
            "c.json",
            br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]}}"#,
        );
        add("l1/layer.tar", &layer(&[("hello", "hi")]));
        let data = b.into_inner().unwrap();
        let arch = d.join("amd64.tar");
        std::fs::write(&arch, &data).unwrap();
        let e = unpack(&arch, &d.join("r1")).unwrap_err();
        assert_eq!(e.to_string(), "image is linux/amd64, board is arm64");
        let fixed = String::from_utf8_lossy(&data).replace("amd64", "arm64");
        let arch = d.join("arm64.tar");
        std::fs::write(&arch, fixed.as_bytes()).unwrap();
        let c = unpack(&arch, &d.join("r2")).unwrap();
        assert_eq!(c.cmd, ["sh"]);
        assert_eq!(std::fs::read_to_string(d.join("r2/hello")).unwrap(), "hi");
        let junk = d.join("junk.tar");
        std::fs::write(&junk, vec![0x42u8; 3000]).unwrap();
        assert!(unpack(&junk, &d.join("r3")).is_err());
    }

    /// The members of a tar stream, by path.
    fn members(data: &[u8]) -> HashMap<String, Vec<u8>> {
        let mut ar = tar::Archive::new(data);
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut v = Vec::new();
                e.read_to_end(&mut v).unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), v)
            })
            .collect()
    }

    #[test]
    fn docker_archives_name_the_config_and_layers_of_a_layout_or_a_docker_save_with_one_tag() {
        let d = tmp("docker-archive");
        let img = d.join("img");
        let cfg = r#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers"}}"#;
        let l1 = gz(&layer(&[("a", "1")]));
        let l2 = gz(&layer(&[("b", "2")]));
        layout(&img, cfg, &[l1.clone(), l2.clone()]);
        let data = docker_archive(&img, "armboard/image:latest").unwrap();
        assert_eq!(data.len() % 512, 0);
        let m = members(&data);
        let manifest: Value = serde_json::from_slice(&m["manifest.json"]).unwrap();
        let entry = &manifest[0];
        assert_eq!(manifest.as_array().unwrap().len(), 1);
        assert_eq!(strings(&entry["RepoTags"]), ["armboard/image:latest"]);
        let config_path = entry["Config"].as_str().unwrap();
        assert_eq!(m[config_path], cfg.as_bytes());
        let layers = strings(&entry["Layers"]);
        assert_eq!(layers.len(), 2);
        // The layers as they are in the image (still gzip'd), bottom first.
        assert_eq!(m[&layers[0]], l1);
        assert_eq!(m[&layers[1]], l2);
        // A docker save archive of it (untagged) gets the tag; its paths are kept.
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in [
            (
                "manifest.json",
                br#"[{"Config":"c.json","RepoTags":null,"Layers":["x/layer.tar"]}]"#.to_vec(),
            ),
            ("c.json", cfg.as_bytes().to_vec()),
            ("x/layer.tar", layer(&[("a", "1")])),
            ("unrelated", b"not copied".to_vec()),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, &body[..]).unwrap();
        }
        let saved = d.join("saved.tar.gz");
        std::fs::write(&saved, gz(&b.into_inner().unwrap())).unwrap();
        let m = members(&docker_archive(&saved, "t:1").unwrap());
        let manifest: Value = serde_json::from_slice(&m["manifest.json"]).unwrap();
        assert_eq!(strings(&manifest[0]["RepoTags"]), ["t:1"]);
        assert_eq!(manifest[0]["Config"], "c.json");
        assert_eq!(strings(&manifest[0]["Layers"]), ["x/layer.tar"]);
        assert!(m.contains_key("x/layer.tar") && !m.contains_key("unrelated"));
        // Not an image: an error, no archive.
        let junk = d.join("junk.tar");
        std::fs::write(&junk, vec![0x42u8; 3000]).unwrap();
        assert!(docker_archive(&junk, "t:1").is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
