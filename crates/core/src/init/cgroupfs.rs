//! A `cgroup` mount in the container: what runc does, per host layout.
//!
//! - unified host: one `cgroup2` mount;
//! - v1 or hybrid host: a tmpfs at the destination holding one directory per host hierarchy
//!   (the controllers' mount names, e.g. `cpu,cpuacct`, plus the host's symlinks such as
//!   `cpu -> cpu,cpuacct`), and `unified` on hybrid hosts. With a new cgroup namespace each is a
//!   fresh cgroup mount (rooted at the container's cgroup); without one, each is a bind of the
//!   container's own cgroup directory, so the container sees its limits and nothing else.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_spec::Mount;
use berth_spec::mount::MountOptions;
use berth_sys::mount::{self as sysmount, MountAttr};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::paths::{mkdir_all, open_in_root};
use super::rootfs::RootfsPlan;
use crate::error::{Error, Result};

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;

/// One cgroup filesystem mounted on the host.
#[derive(Debug)]
struct HostHierarchy {
    mount_point: PathBuf,
    /// `cgroup` or `cgroup2`.
    fstype: String,
    /// Controllers (or `name=…`), as `/proc/self/cgroup` lists them, comma-joined.
    controllers: String,
}

fn host_hierarchies() -> std::io::Result<Vec<HostHierarchy>> {
    let text = berth_sys::procfs::read_to_string("/proc/self/mountinfo")?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let rfields: Vec<&str> = right.split(' ').collect();
        let (Some(mp), Some(fstype), Some(sopts)) =
            (fields.get(4), rfields.first(), rfields.get(2))
        else {
            continue;
        };
        if *fstype != "cgroup" && *fstype != "cgroup2" {
            continue;
        }
        if !mp.starts_with("/sys/fs/cgroup") {
            continue;
        }
        let controllers: Vec<&str> = sopts
            .split(',')
            .filter(|o| {
                !matches!(
                    *o,
                    "rw" | "ro" | "xattr" | "nsdelegate" | "memory_recursiveprot" | "noprefix"
                ) && !o.starts_with("release_agent=")
                    && !o.starts_with("clone_children")
            })
            .collect();
        // mountinfo also lists mounts another mount now hides: keep only live ones.
        let magic = if *fstype == "cgroup2" {
            CGROUP2_SUPER_MAGIC
        } else {
            CGROUP_SUPER_MAGIC
        };
        if !rustix::fs::statfs(*mp).is_ok_and(|st| st.f_type == magic) {
            continue;
        }
        out.push(HostHierarchy {
            mount_point: PathBuf::from(mp.replace("\\040", " ")),
            fstype: fstype.to_string(),
            controllers: controllers.join(","),
        });
    }
    Ok(out)
}

/// `controllers -> path` from `/proc/self/cgroup` (`""` is the v2 entry).
fn own_cgroups() -> std::io::Result<Vec<(String, String)>> {
    let text = berth_sys::procfs::read_to_string("/proc/self/cgroup")?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect())
}

fn own_path<'a>(own: &'a [(String, String)], controllers: &str) -> &'a str {
    let mut wanted: Vec<&str> = controllers.split(',').collect();
    wanted.sort_unstable();
    own.iter()
        .find(|(c, _)| {
            let mut have: Vec<&str> = c.split(',').collect();
            have.sort_unstable();
            have == wanted
        })
        .map(|(_, p)| p.as_str())
        .unwrap_or("/")
}

/// The directory berth made for the container in hierarchy `h`, if it manages one there.
fn managed_dir(
    cgroup: Option<&berth_cgroups::CgroupManager>,
    h: &HostHierarchy,
) -> Option<PathBuf> {
    let cg = cgroup?;
    if h.fstype == "cgroup2" {
        return cg
            .unified_dir()
            .filter(|d| d.starts_with(&h.mount_point))
            .map(Path::to_path_buf);
    }
    h.controllers
        .split(',')
        .filter_map(|c| cg.v1_dirs().get(c))
        .find(|d| d.starts_with(&h.mount_point))
        .cloned()
}

fn err(m: &Mount, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Init(format!(
        "mount cgroup on {} ({what}): {e}",
        m.destination.display()
    ))
}

/// The part of a v1 `cgroup` mount that waits for berth to make the container's cgroup
/// directories (berth makes them while the init sets up its mounts, see
/// `container/cgroup.rs`): binding them, the host's alias symlinks, and the read-only flag.
/// [`mount_cgroup`] leaves it for [`CgroupBinds::finish`], which the rootfs setup calls as
/// late as the spec's order allows, so that the later mounts and `/dev` are done meanwhile.
pub(crate) struct CgroupBinds {
    mount: Mount,
    tmpfs: OwnedFd,
    /// Each managed hierarchy: the container's directory on the host, the directory in the
    /// tmpfs it is bound on, and the controllers (for messages).
    managed: Vec<(PathBuf, OwnedFd, String)>,
    attr: MountAttr,
    ro: bool,
}

impl CgroupBinds {
    /// Whether the mount `later` (after this one in the spec) may be made before these binds
    /// without changing the result: it must not lie at or under this mount's destination.
    /// Destinations are compared by their components; one with a `..` is taken to overlap.
    pub(crate) fn may_wait_past(&self, later: &Path) -> bool {
        !at_or_under(later, &self.mount.destination)
    }

    /// Waits for the container's cgroup directories if it binds any, binds them, adds the
    /// host's aliases and makes the tmpfs read-only when the mount says so.
    pub(crate) fn finish(self, plan: &RootfsPlan<'_>) -> Result<()> {
        let m = &self.mount;
        if !self.managed.is_empty() {
            (plan.cgroup_ready)()?;
        }
        for (dir, sub, what) in &self.managed {
            bind(m, dir, sub, what, &self.attr)?;
        }
        // The host's aliases (cpu -> cpu,cpuacct and the like).
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_symlink()) {
                    if let Ok(link) = std::fs::read_link(e.path()) {
                        let _ = rustix::fs::symlinkat(
                            &link,
                            self.tmpfs.as_fd(),
                            e.file_name().as_os_str(),
                        );
                    }
                }
            }
        }
        if self.ro {
            let attr = MountAttr {
                attr_set: sysmount::MOUNT_ATTR_RDONLY,
                ..MountAttr::default()
            };
            sysmount::mount_setattr(self.tmpfs.as_fd(), false, &attr)
                .map_err(|e| err(m, "read-only", e))?;
        }
        Ok(())
    }
}

/// Whether the mount destination `path` is `base` or below it, by components (`//`, `.` and
/// a trailing `/` do not matter); a `path` with a `..` is taken to be below anything.
fn at_or_under(path: &Path, base: &Path) -> bool {
    use std::path::Component;
    path.components().any(|c| c == Component::ParentDir)
        || super::paths::relative(path).starts_with(super::paths::relative(base))
}

/// Binds the host directory `host_dir` onto `sub` (a directory in the cgroup tmpfs).
fn bind(m: &Mount, host_dir: &Path, sub: &OwnedFd, what: &str, attr: &MountAttr) -> Result<()> {
    super::rootfs::attach_bind_path(host_dir, sub.as_fd(), attr)
        .map_err(|e| err(m, &format!("{what} ({})", host_dir.display()), e))
}

/// Mounts the container's view of the cgroup hierarchies at `m.destination`; on a v1 or hybrid
/// host the binds of the container's own directories are left to the returned
/// [`CgroupBinds`].
pub(crate) fn mount_cgroup(
    root: BorrowedFd<'_>,
    plan: &RootfsPlan<'_>,
    m: &Mount,
    opts: &MountOptions,
) -> Result<Option<CgroupBinds>> {
    let flags = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
    let ro = flags & libc::MS_RDONLY != 0;
    let target =
        mkdir_all(root, &m.destination, 0o755).map_err(|e| err(m, "create mount point", e))?;
    let unified_host =
        rustix::fs::statfs("/sys/fs/cgroup").is_ok_and(|s| s.f_type == CGROUP2_SUPER_MAGIC);
    if unified_host {
        sysmount::mount_at_fd(
            Some("cgroup2"),
            target.as_fd(),
            Some("cgroup2"),
            flags,
            None,
        )
        .map_err(|e| err(m, "cgroup2", e))?;
        return Ok(None);
    }
    let hierarchies = host_hierarchies().map_err(|e| err(m, "read mountinfo", e))?;
    let own = own_cgroups().map_err(|e| err(m, "read /proc/self/cgroup", e))?;
    let base = flags & !libc::MS_RDONLY;
    sysmount::mount_at_fd(
        Some("tmpfs"),
        target.as_fd(),
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )
    .map_err(|e| err(m, "tmpfs", e))?;
    // Each bind gets the mount's read-only, nosuid, nodev and noexec flags (not its atime ones).
    let attr = super::rootfs::attrs_for(
        flags & (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC),
        0,
    );
    // The fresh tmpfs (nothing in the container has seen it yet): each hierarchy's directory is
    // made and opened in it by name, instead of resolving the whole path from the root again.
    let tmpfs = open_in_root(root, &m.destination, ResolveFlags::empty())
        .map_err(|e| err(m, "open the tmpfs", e))?;
    let subdir = |name: &std::ffi::OsStr| -> std::io::Result<OwnedFd> {
        match rustix::fs::mkdirat(tmpfs.as_fd(), name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(rustix::fs::openat(
            tmpfs.as_fd(),
            name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    };
    // The hierarchies berth manages are bound from the container's own directories, which
    // berth may still be making (v1 hosts, see container/cgroup.rs): those are left for
    // CgroupBinds::finish.
    let mut managed = Vec::new();
    for h in &hierarchies {
        let Some(name) = h.mount_point.file_name() else {
            continue;
        };
        if h.mount_point == Path::new("/sys/fs/cgroup") {
            continue;
        }
        let sub = subdir(name).map_err(|e| err(m, "create hierarchy dir", e))?;
        if plan.cgroupns {
            let data = if h.fstype == "cgroup2" {
                None
            } else {
                Some(h.controllers.as_str())
            };
            sysmount::mount_at_fd(Some("cgroup"), sub.as_fd(), Some(&h.fstype), flags, data)
                .map_err(|e| err(m, &h.controllers, e))?;
        } else if let Some(dir) = managed_dir(plan.cgroup, h) {
            managed.push((dir, sub, h.controllers.clone()));
        } else {
            // Where the init already is.
            let key = if h.fstype == "cgroup2" {
                ""
            } else {
                h.controllers.as_str()
            };
            let dir = h
                .mount_point
                .join(own_path(&own, key).trim_start_matches('/'));
            bind(m, &dir, &sub, &h.controllers, &attr)?;
        }
    }
    Ok(Some(CgroupBinds {
        mount: m.clone(),
        tmpfs,
        managed,
        attr,
        ro,
    }))
}

#[cfg(test)]
mod tests {
    use super::at_or_under;
    use std::path::Path;

    #[test]
    fn later_mounts_at_or_under_the_cgroup_mount() {
        let base = Path::new("/sys/fs/cgroup");
        for p in [
            "/sys/fs/cgroup",
            "/sys/fs/cgroup/",
            "/sys/fs/cgroup/pids",
            "//sys/./fs/cgroup/memory/x",
            "/tmp/../sys/fs/cgroup",
            "/a/..",
        ] {
            assert!(at_or_under(Path::new(p), base), "{p}");
        }
        for p in [
            "/sys",
            "/sys/fs",
            "/sys/fs/cgroupx",
            "/dev",
            "/mnt/sys/fs/cgroup",
        ] {
            assert!(!at_or_under(Path::new(p), base), "{p}");
        }
    }
}
