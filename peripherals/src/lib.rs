//! Modelled devices (system emulation; see the virt and board issues).
