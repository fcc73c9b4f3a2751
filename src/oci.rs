//! Unpacking an arm64 OCI image (a `docker save` tarball or an OCI image layout directory)
//! into a root directory.

use anyhow::bail;
use std::path::Path;

/// What the image's configuration says about running it.
#[derive(Debug, Default)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
}

pub fn unpack(_image: &Path, _root: &Path) -> anyhow::Result<ImageConfig> {
    bail!("OCI images are not supported yet")
}
