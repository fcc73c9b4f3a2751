//! Debian packages: fetching with apt-get download and unpacking in Rust (to be written).
