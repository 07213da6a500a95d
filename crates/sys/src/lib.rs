//! The only crate of berth allowed to use `unsafe`: thin wrappers over the syscalls rustix
//! leaves out (clone3, execve, signal masks, close_range, mount_setattr, seccomp loading …).
//!
//! Each module wraps one area; every `unsafe` block carries a `// SAFETY:` comment saying why the
//! call is sound. Callers elsewhere in the workspace get safe functions taking `BorrowedFd` /
//! `OwnedFd` and returning `std::io::Result`.
#![allow(unsafe_code)]

pub mod bpf;
pub mod exemap;
pub mod fd;
pub mod mem;
pub mod mount;
pub mod process;
pub mod procfs;
pub mod seccomp;
pub mod signal;
pub mod tty;
