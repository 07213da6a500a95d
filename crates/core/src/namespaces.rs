//! Which namespaces a container gets, and how its init enters them.
//!
//! The fast path (no namespace joined by path, no time namespace) is one `clone3` carrying every
//! `CLONE_NEW*` flag: the child is the init, pid 1 of its pid namespace. Otherwise the child first
//! `setns`es into the joined namespaces (user first, so the rest are joined with its privileges),
//! `unshare`s the new ones, and forks once so a new or joined pid/time namespace applies.
//! A new cgroup namespace is always made last, by the init itself, after berth has put it into
//! its cgroup (so the namespace is rooted at the container's cgroup, as in runc).

use std::os::fd::OwnedFd;

use berth_spec::{NamespaceType, Spec};
use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};

/// The `CLONE_NEW*` flag of a namespace type.
pub fn clone_flag(t: NamespaceType) -> u64 {
    (match t {
        NamespaceType::Pid => libc::CLONE_NEWPID,
        NamespaceType::Network => libc::CLONE_NEWNET,
        NamespaceType::Mount => libc::CLONE_NEWNS,
        NamespaceType::Ipc => libc::CLONE_NEWIPC,
        NamespaceType::Uts => libc::CLONE_NEWUTS,
        NamespaceType::User => libc::CLONE_NEWUSER,
        NamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        NamespaceType::Time => libc::CLONE_NEWTIME,
    }) as u64
}

/// How the init gets its namespaces.
#[derive(Debug, Default)]
pub struct NsPlan {
    /// Flags for the one `clone3` of the fast path.
    pub clone_flags: u64,
    /// The general path is needed.
    pub general: bool,
    /// Namespaces to join (general path), user first, mount last.
    pub joins: Vec<(NamespaceType, OwnedFd)>,
    /// New namespaces to `unshare` (general path).
    pub unshare_flags: u64,
    /// A new user namespace whose maps berth writes.
    pub new_user: bool,
    /// The init is in a user namespace other than berth's (new or joined).
    pub in_userns: bool,
    /// A new cgroup namespace (made by the init after joining its cgroup).
    pub new_cgroup: bool,
    /// Fork after unshare/setns (pid or time namespace changed).
    pub fork_after: bool,
    /// `/proc/self/timens_offsets` content for a new time namespace.
    pub time_offsets: Option<String>,
    /// `setgroups(2)` is allowed in the init's user namespace.
    pub setgroups_allowed: bool,
}

/// Opens a namespace file for joining, with an error that names the field and the path.
pub fn open_ns(path: &std::path::Path, field: &str) -> Result<OwnedFd> {
    rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::Usage(format!("{field}: open namespace {}: {e}", path.display())))
}

/// Orders joins: user first (its privileges are needed for the rest), mount last.
pub fn order_joins(joins: &mut [(NamespaceType, OwnedFd)]) {
    joins.sort_by_key(|(t, _)| match t {
        NamespaceType::User => 0,
        NamespaceType::Mount => 2,
        _ => 1,
    });
}

impl NsPlan {
    /// The plan for a container's init.
    pub fn for_spec(spec: &Spec) -> Result<NsPlan> {
        let mut plan = NsPlan {
            setgroups_allowed: true,
            ..NsPlan::default()
        };
        let Some(linux) = &spec.linux else {
            return Ok(plan);
        };
        let mut new_flags = 0u64;
        let mut pid_changes = false;
        let mut time_changes = false;
        for (i, ns) in linux.namespaces.iter().enumerate() {
            match &ns.path {
                Some(path) => {
                    let fd = open_ns(path, &format!("linux.namespaces[{i}].path"))?;
                    plan.joins.push((ns.typ, fd));
                    match ns.typ {
                        NamespaceType::Pid => pid_changes = true,
                        NamespaceType::Time => time_changes = true,
                        NamespaceType::User => plan.in_userns = true,
                        _ => {}
                    }
                }
                None => {
                    match ns.typ {
                        NamespaceType::Cgroup => plan.new_cgroup = true,
                        NamespaceType::User => {
                            plan.new_user = true;
                            plan.in_userns = true;
                        }
                        NamespaceType::Pid => pid_changes = true,
                        NamespaceType::Time => time_changes = true,
                        _ => {}
                    }
                    if ns.typ != NamespaceType::Cgroup {
                        new_flags |= clone_flag(ns.typ);
                    }
                }
            }
        }
        order_joins(&mut plan.joins);
        let new_time = new_flags & libc::CLONE_NEWTIME as u64 != 0;
        plan.general = !plan.joins.is_empty() || new_time;
        if plan.general {
            plan.unshare_flags = new_flags;
            plan.fork_after = pid_changes || time_changes;
        } else {
            plan.clone_flags = new_flags;
        }
        if new_time && !linux.time_offsets.is_empty() {
            let mut text = String::new();
            for (clock, off) in &linux.time_offsets {
                text.push_str(&format!("{clock} {} {}\n", off.secs, off.nanosecs));
            }
            plan.time_offsets = Some(text);
        }
        Ok(plan)
    }
}

/// Writes the uid and gid maps of `pid`'s new user namespace from the spec (as root).
pub fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let Some(linux) = &spec.linux else {
        return Ok(());
    };
    let fmt = |maps: &[berth_spec::IdMapping]| {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
            .collect::<String>()
    };
    for (file, maps, field) in [
        ("uid_map", &linux.uid_mappings, "linux.uidMappings"),
        ("gid_map", &linux.gid_mappings, "linux.gidMappings"),
    ] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, fmt(maps)).map_err(|e| {
            Error::Usage(format!("{field}: cannot write the mapping to {path}: {e}"))
        })?;
    }
    Ok(())
}
