//! Boards and the Linux user-mode machine.

pub mod linux_user;
pub mod raspi;
pub mod system;
pub mod virt;
