//! Control groups for berth: one cgroup per container, on cgroup v1, v2 and hybrid hosts.
//!
//! The runtime never touches cgroupfs itself. It resolves `linux.cgroupsPath` with
//! [`resolve_path`], makes a [`CgroupManager`] (which detects the host's [`Hierarchy`]),
//! applies `linux.resources`, adds the container's init, and later updates, freezes, reads
//! [`Stats`], kills and destroys through the same manager — which it can store in its state
//! file (serde) and rebuild in a later invocation.
//!
//! Invariants:
//!
//! - every error names what it acted on: the cgroup path, the file and the value written, or
//!   the `config.json` field ([`CgroupError`]);
//! - values are checked before any directory is made ([`validate::validate`]), so
//!   [`CgroupManager::create_with`] leaves nothing behind on a refused config;
//! - only the fields that are set are written; device rules are exactly the spec's (no implied
//!   defaults), and an empty rule list leaves the device cgroup alone;
//! - the `name=systemd` v1 hierarchy is never touched, and there is no systemd driver yet:
//!   `slice:prefix:name` paths are refused.
//!
//! Layout-specific behaviour is described in [`manager`]; v1 → v2 value conversions in
//! [`convert`]; the device rule semantics and the eBPF program in [`devices`].

pub mod convert;
pub mod devices;
pub mod error;
mod fsutil;
pub mod hierarchy;
pub mod manager;
pub mod path;
pub mod prime;
pub mod stats;
pub mod sub;
mod v1;
mod v2;
pub mod validate;

pub use error::{CgroupError, Result};
pub use hierarchy::{CgroupRoots, Hierarchy};
pub use manager::{CgroupManager, read_stats};
pub use path::{CgroupPath, resolve_path, resolve_path_with};
pub use prime::migration_primer;
pub use stats::Stats;
pub use sub::SubCgroups;
