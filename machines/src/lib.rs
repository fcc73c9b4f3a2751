//! Boards and the Linux user-mode machine.

pub mod linux_user;
pub mod virt;
