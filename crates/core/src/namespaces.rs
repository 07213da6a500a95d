//! Which namespaces a container gets, and how its init enters them.
//!
//! The fast path (no namespace joined by path, no time namespace) is one `clone3` carrying every
//! `CLONE_NEW*` flag: the child is the init, pid 1 of its pid namespace. Otherwise the child first
//! `setns`es into the joined namespaces (user first, so the rest are joined with its privileges),
//! `unshare`s the new ones, and forks once so a new or joined pid/time namespace applies.
//! A new cgroup namespace is always made last, by the init itself, after berth has put it into
//! its cgroup (so the namespace is rooted at the container's cgroup, as in runc).
//!
//! User namespaces. berth (the parent) writes a new user namespace's maps while the init waits:
//! - as root, directly into `/proc/<pid>/{uid,gid}_map` (any mapping the kernel accepts);
//! - unprivileged, a map that is exactly the caller's own id (`{c, euid, 1}`) is written
//!   directly too, `gid_map` after `deny` went into `/proc/<pid>/setgroups` (the kernel's rule
//!   since 3.19); every other map goes through the setuid helpers `newuidmap`/`newgidmap`
//!   (package `uidmap`), which check `/etc/subuid` and `/etc/subgid`.
//!
//! The helpers and unprivileged writes need `/proc/<pid>` to belong to the caller, so such an
//! init stays dumpable until its maps are written ([`NsPlan::dumpable_until_mapped`]); nothing
//! of the container exists yet at that point, and the init turns non-dumpable before it does
//! anything else. Whether `setgroups(2)` is allowed afterwards is read back from
//! `/proc/<pid>/setgroups` ([`setgroups_allowed`]): the helpers decide it themselves.
//!
//! A new network namespace costs about a millisecond to make on the development VM (the
//! loopback device, per-namespace sysctls, IPv6), most of a `clone3`'s time. Where nothing
//! else ties it to the clone (no user namespace, nothing joined), berth makes it on a helper
//! thread while it prepares the rest ([`PreparedNetns`]) and the init joins it first thing.
//!
//! [`validate_userns`] refuses, before anything is made, what would only fail later with a bare
//! `EINVAL`: a process uid/gid or a mount's `uid=`/`gid=` option outside the mappings, and an
//! unprivileged berth without a user namespace.

use std::os::fd::OwnedFd;

use berth_spec::{IdMapping, NamespaceType, Spec};
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
    /// berth is unprivileged and writes (or has newuidmap write) the new user namespace's maps:
    /// the init must stay dumpable until they are written (see the module docs).
    pub dumpable_until_mapped: bool,
    /// Idmapped bind mounts, made by berth before the clone ([`NsPlan::prepare_idmapped`]).
    pub idmapped: Vec<IdmappedMount>,
    /// The new network namespace berth made ahead ([`NsPlan::use_prepared_netns`]): the init
    /// joins it before anything else, and `clone_flags` lacks `CLONE_NEWNET`.
    pub prepared_net: Option<OwnedFd>,
}

/// A new network namespace being made on a helper thread ([`PreparedNetns::start`]) while
/// `create` loads the rest; [`NsPlan::use_prepared_netns`] takes it. Dropped unused, it waits
/// for the thread and closes the namespace.
#[derive(Debug)]
pub struct PreparedNetns {
    thread: Option<std::thread::JoinHandle<std::io::Result<OwnedFd>>>,
}

impl PreparedNetns {
    /// Starts making the network namespace if `spec` asks for a new one on the fast path (no
    /// namespace joined by path, no user or time namespace) and berth is root; `None` otherwise
    /// (the clone makes whatever is needed).
    pub fn start(spec: &Spec) -> Option<PreparedNetns> {
        let namespaces = &spec.linux.as_ref()?.namespaces;
        let wanted = namespaces
            .iter()
            .any(|n| n.typ == NamespaceType::Network && n.path.is_none());
        let simple = namespaces.iter().all(|n| {
            n.path.is_none() && !matches!(n.typ, NamespaceType::User | NamespaceType::Time)
        });
        if !wanted || !simple || !rustix::process::geteuid().is_root() {
            return None;
        }
        let thread = std::thread::Builder::new()
            .name("berth-netns".into())
            .stack_size(64 * 1024)
            .spawn(berth_sys::process::new_network_namespace)
            .ok()?;
        Some(PreparedNetns {
            thread: Some(thread),
        })
    }

    /// Waits for the thread; the namespace, or why it could not be made.
    fn wait(&mut self) -> std::io::Result<OwnedFd> {
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the netns thread panicked")),
            None => Err(std::io::Error::other("already taken")),
        }
    }
}

impl Drop for PreparedNetns {
    fn drop(&mut self) {
        let _ = self.wait();
    }
}

/// A bind mount's source, cloned (`open_tree`) and idmapped (`MOUNT_ATTR_IDMAP`) by berth in
/// its own user namespace: only a process privileged over the source's file system may set an
/// idmapping, which the init, already in the container's user namespace, is not. The init
/// attaches the detached tree with `move_mount`.
#[derive(Debug)]
pub struct IdmappedMount {
    /// The mount's index in `mounts`.
    pub index: usize,
    /// The detached, idmapped mount tree.
    pub tree: OwnedFd,
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
    /// Gives the init the network namespace made ahead instead of a `CLONE_NEWNET`, when this
    /// plan makes one in its clone; if making it failed, the clone makes it as before (and
    /// reports the error if it fails again).
    pub fn use_prepared_netns(&mut self, mut netns: PreparedNetns) {
        let newnet = libc::CLONE_NEWNET as u64;
        if self.general || self.new_user || self.clone_flags & newnet == 0 {
            return;
        }
        match netns.wait() {
            Ok(fd) => {
                self.clone_flags &= !newnet;
                self.prepared_net = Some(fd);
            }
            Err(e) => log::debug!("network namespace made ahead: {e}; the clone makes it"),
        }
    }

    /// Makes the idmapped mounts the config asks for (`uidMappings`/`gidMappings` on a bind
    /// mount, or its `idmap`/`ridmap` option with the container's maps); see
    /// [`IdmappedMount`]. `bundle` resolves relative sources.
    pub fn prepare_idmapped(&mut self, spec: &Spec, bundle: &std::path::Path) -> Result<()> {
        self.idmapped = crate::init::rootfs::prepare_idmapped(spec, bundle)?;
        Ok(())
    }

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
        if plan.new_user {
            validate_userns(spec)?;
            plan.dumpable_until_mapped = !rustix::process::geteuid().is_root();
        } else if !plan.in_userns && !rustix::process::geteuid().is_root() {
            return Err(Error::Usage(format!(
                "linux.namespaces: berth runs as uid {} (rootless), which needs a user namespace in the config (see berth spec --rootless)",
                rustix::process::geteuid().as_raw()
            )));
        }
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

/// Whether `id` falls inside one of `maps` (container side).
fn mapped(maps: &[IdMapping], id: u32) -> bool {
    maps.iter()
        .any(|m| id >= m.container_id && id - m.container_id < m.size)
}

/// Checks, for a container with a new user namespace, that what it will use is mapped: the
/// process's uid, gid and additional gids, and every `uid=`/`gid=` mount option (devpts's
/// `gid=5` in runc's template is the usual one). An unmapped id only fails later with `EINVAL`
/// from `setuid` or `mount`; berth names it instead. berth does not silently drop such an
/// option: `berth spec --rootless` writes a config without it, as runc's does.
pub fn validate_userns(spec: &Spec) -> Result<()> {
    let Some(linux) = &spec.linux else {
        return Ok(());
    };
    let (uids, gids) = (&linux.uid_mappings, &linux.gid_mappings);
    if let Some(p) = &spec.process {
        if !mapped(uids, p.user.uid) {
            return Err(Error::Usage(format!(
                "process.user.uid: {} is not mapped in the container's user namespace (linux.uidMappings)",
                p.user.uid
            )));
        }
        if !mapped(gids, p.user.gid) {
            return Err(Error::Usage(format!(
                "process.user.gid: {} is not mapped in the container's user namespace (linux.gidMappings)",
                p.user.gid
            )));
        }
        if let Some(g) = p.user.additional_gids.iter().find(|g| !mapped(gids, **g)) {
            return Err(Error::Usage(format!(
                "process.user.additionalGids: {g} is not mapped in the container's user namespace (linux.gidMappings)"
            )));
        }
    }
    for (i, m) in spec.mounts.iter().enumerate() {
        for opt in &m.options {
            let (key, maps, field) = if let Some(v) = opt.strip_prefix("uid=") {
                (v, uids, "linux.uidMappings")
            } else if let Some(v) = opt.strip_prefix("gid=") {
                (v, gids, "linux.gidMappings")
            } else {
                continue;
            };
            let Ok(id) = key.parse::<u32>() else {
                continue; // not an id: the file system judges it
            };
            if !mapped(maps, id) {
                return Err(Error::Usage(format!(
                    "mounts[{i}] ({}): option {opt} names an id that is not mapped in the container's user namespace ({field}); remove the option (berth spec --rootless does)",
                    m.destination.display()
                )));
            }
        }
    }
    Ok(())
}

/// Whether `setgroups(2)` is allowed in the user namespace of process `pid` (`"self"` or a
/// number): `/proc/<pid>/setgroups` says `allow` (or does not exist: no user namespace).
pub fn setgroups_allowed(pid: &str) -> bool {
    berth_sys::procfs::read_to_string(format!("/proc/{pid}/setgroups"))
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

fn map_text(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// One line for an error: the map as `c h s, c h s`.
fn map_summary(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}", m.container_id, m.host_id, m.size))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where `newuidmap`/`newgidmap` live: `$PATH`, then the usual directories.
fn find_helper(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(std::path::PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs `newuidmap`/`newgidmap` for `pid`.
fn run_helper(helper: &str, pid: i32, maps: &[IdMapping], field: &str) -> Result<()> {
    let Some(bin) = find_helper(helper) else {
        return Err(Error::Usage(format!(
            "{field}: mapping [{}] as uid {} needs {helper} (package uidmap), which is not installed",
            map_summary(maps),
            rustix::process::geteuid().as_raw()
        )));
    };
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id.to_string(),
            m.host_id.to_string(),
            m.size.to_string(),
        ]);
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::io("run", bin.clone(), e))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let text = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Error::Usage(format!(
            "{field}: {helper} refused the mapping [{}] ({}): {text}",
            map_summary(maps),
            out.status
        )));
    }
    Ok(())
}

fn write_map_file(pid: i32, file: &str, maps: &[IdMapping], field: &str) -> Result<()> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, map_text(maps)).map_err(|e| {
        Error::Usage(format!(
            "{field}: cannot write the mapping [{}] to {path}: {e}",
            map_summary(maps)
        ))
    })
}

/// Writes the uid and gid maps of `pid`'s new user namespace from the spec: directly as root,
/// and as an unprivileged user directly for a map of just the caller's own id (denying
/// `setgroups` first for the gid map), else through `newuidmap`/`newgidmap`.
pub fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let Some(linux) = &spec.linux else {
        return Ok(());
    };
    write_maps(
        pid,
        &linux.uid_mappings,
        &linux.gid_mappings,
        ["linux.uidMappings", "linux.gidMappings"],
    )
}

/// A user namespace with these maps, as an fd (for `MOUNT_ATTR_IDMAP`): a child is cloned into
/// a new user namespace, its maps are written like a container's, its
/// `/proc/<pid>/ns/user` is opened, and it is killed. `fields` name the maps in errors.
pub(crate) fn userns_fd(
    uids: &[IdMapping],
    gids: &[IdMapping],
    fields: [&str; 2],
) -> Result<OwnedFd> {
    use berth_sys::process::{CloneOptions, Forked};
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::sys("pipe", e))?;
    let forked = berth_sys::process::clone3(libc::CLONE_NEWUSER as u64, &CloneOptions::default())
        .map_err(|e| Error::sys("clone a user namespace for an idmapped mount", e))?;
    let pid = match forked {
        Forked::Child => {
            drop(w);
            // Wait for berth to be done with our namespace (EOF), then go.
            let _ = rustix::io::read(&r, &mut [0u8; 1]);
            berth_sys::process::exit_immediately(0)
        }
        Forked::Parent { pid, .. } => pid,
    };
    drop(r);
    let result = write_maps(pid, uids, gids, fields).and_then(|()| {
        let path = format!("/proc/{pid}/ns/user");
        rustix::fs::open(
            path.as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open", path, e.into()))
    });
    drop(w);
    let _ = berth_sys::signal::kill(pid, libc::SIGKILL);
    let _ = rustix::process::waitpid(
        rustix::process::Pid::from_raw(pid),
        rustix::process::WaitOptions::empty(),
    );
    result
}

/// Writes `uids` and `gids` as the maps of `pid`'s user namespace (see [`write_id_maps`]).
fn write_maps(pid: i32, uids: &[IdMapping], gids: &[IdMapping], fields: [&str; 2]) -> Result<()> {
    let [ufield, gfield] = fields;
    let privileged = rustix::process::geteuid().is_root();
    let own = |maps: &[IdMapping], id: u32| matches!(maps, [m] if m.size == 1 && m.host_id == id);
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    if privileged || own(uids, euid) {
        write_map_file(pid, "uid_map", uids, ufield)?;
    } else {
        run_helper("newuidmap", pid, uids, ufield)?;
    }
    if privileged {
        write_map_file(pid, "gid_map", gids, gfield)?;
    } else if own(gids, egid) {
        let path = format!("/proc/{pid}/setgroups");
        std::fs::write(&path, "deny").map_err(|e| {
            Error::Usage(format!(
                "{gfield}: cannot write deny to {path} (needed to map gid {egid} without newgidmap): {e}"
            ))
        })?;
        write_map_file(pid, "gid_map", gids, gfield)?;
    } else {
        run_helper("newgidmap", pid, gids, gfield)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(maps: &[(u32, u32, u32)], devpts_gid: Option<&str>) -> Spec {
        let m: Vec<IdMapping> = maps
            .iter()
            .map(|&(c, h, s)| IdMapping {
                container_id: c,
                host_id: h,
                size: s,
            })
            .collect();
        let mut spec = berth_spec::template::default_spec(false);
        let linux = spec.linux.get_or_insert_with(Default::default);
        linux.uid_mappings = m.clone();
        linux.gid_mappings = m;
        for mount in &mut spec.mounts {
            mount.options.retain(|o| !o.starts_with("gid="));
            if mount.destination == std::path::Path::new("/dev/pts") {
                if let Some(g) = devpts_gid {
                    mount.options.push(g.to_string());
                }
            }
        }
        spec
    }

    #[test]
    fn mapped_ids_pass_and_unmapped_ones_are_named() {
        validate_userns(&spec_with(&[(0, 100000, 65536)], Some("gid=5"))).unwrap();
        validate_userns(&spec_with(&[(0, 1000, 1)], None)).unwrap();
        let e = validate_userns(&spec_with(&[(0, 1000, 1)], Some("gid=5")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("mounts[2]") && e.contains("gid=5"), "{e}");
        let mut s = spec_with(&[(0, 1000, 1)], None);
        s.process.as_mut().unwrap().user.uid = 7;
        let e = validate_userns(&s).unwrap_err().to_string();
        assert!(e.starts_with("process.user.uid: 7 "), "{e}");
    }

    #[test]
    fn map_text_and_summary() {
        let m = [
            IdMapping {
                container_id: 0,
                host_id: 1000,
                size: 1,
            },
            IdMapping {
                container_id: 1,
                host_id: 100000,
                size: 65536,
            },
        ];
        assert_eq!(map_text(&m), "0 1000 1\n1 100000 65536\n");
        assert_eq!(map_summary(&m), "0 1000 1, 1 100000 65536");
        assert!(mapped(&m, 0) && mapped(&m, 65536) && !mapped(&m, 65537));
    }
}
