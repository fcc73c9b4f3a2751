//! SD cards and the host controllers that talk to them.

pub mod card;
pub mod sdhci;
pub mod sdhost;
