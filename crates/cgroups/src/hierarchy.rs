//! Which cgroup layout the host has, and where each hierarchy is mounted.
//!
//! Detection reads `/proc/self/mountinfo` once and `statfs(2)`s `/sys/fs/cgroup`:
//!
//! - `/sys/fs/cgroup` is a cgroup2 filesystem → [`Hierarchy::V2`] (a "unified" host);
//! - otherwise every `cgroup` (v1) mount is mapped controller → mount point (co-mounted
//!   controllers such as `cpu,cpuacct` share one directory; named hierarchies such as
//!   `name=systemd` carry no controller and are ignored), and a `cgroup2` mount (preferably
//!   `/sys/fs/cgroup/unified`) makes the host [`Hierarchy::Hybrid`]; without one it is
//!   [`Hierarchy::V1`].
//!
//! Only mounts of the whole hierarchy (mountinfo root `/`) are used, the first one per
//! controller, preferring mounts below `/sys/fs/cgroup`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CgroupError, Result};

/// The usual mount point of the cgroup filesystems.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The v1 controllers berth places a container in, when they are mounted.
pub const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "pids",
    "devices",
    "freezer",
    "blkio",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
];

/// The v2 controllers berth enables for a container, when the parent offers them.
pub const V2_CONTROLLERS: &[&str] = &[
    "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc",
];

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hierarchy {
    /// Legacy: one v1 hierarchy per controller (or group of co-mounted controllers).
    V1,
    /// Unified: one cgroup2 hierarchy holds every controller.
    V2,
    /// v1 controllers plus a cgroup2 hierarchy (usually `/sys/fs/cgroup/unified`), which may
    /// hold the controllers that no v1 hierarchy binds.
    Hybrid,
}

impl Hierarchy {
    /// Detects the host's layout (see the module docs).
    pub fn detect() -> Result<Self> {
        CgroupRoots::detect().map(|roots| roots.hierarchy)
    }
}

impl std::fmt::Display for Hierarchy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Hierarchy::V1 => "cgroup v1",
            Hierarchy::V2 => "cgroup v2",
            Hierarchy::Hybrid => "hybrid cgroup v1 + v2",
        })
    }
}

/// Where the hierarchies are mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupRoots {
    /// The layout.
    pub hierarchy: Hierarchy,
    /// v1 controller name → mount point. Empty on [`Hierarchy::V2`].
    pub v1: BTreeMap<String, PathBuf>,
    /// The cgroup2 mount point. `None` on [`Hierarchy::V1`].
    pub unified: Option<PathBuf>,
}

impl CgroupRoots {
    /// Reads `/proc/self/mountinfo` and `statfs(/sys/fs/cgroup)`.
    pub fn detect() -> Result<Self> {
        let mountinfo = Path::new("/proc/self/mountinfo");
        let text =
            berth_sys::procfs::read_to_string(mountinfo).map_err(|source| CgroupError::Read {
                path: mountinfo.into(),
                source,
            })?;
        // f_type's integer type differs between architectures, hence the casts.
        #[allow(clippy::unnecessary_cast)]
        let unified_host = match rustix::fs::statfs(CGROUP_ROOT) {
            Ok(st) => st.f_type as i64 == libc::CGROUP2_SUPER_MAGIC as i64,
            Err(_) => false,
        };
        let mut roots = Self::from_mountinfo(&text, unified_host)?;
        if !unified_host {
            roots.drop_shadowed();
        }
        Ok(roots)
    }

    /// Forgets mounts that mountinfo lists but that another mount now hides (a tmpfs mounted
    /// over `/sys/fs/cgroup` in a private mount namespace, say): the path no longer reaches a
    /// cgroup filesystem of the right kind.
    #[allow(clippy::unnecessary_cast)] // f_type's and the magics' types differ between arches
    fn drop_shadowed(&mut self) {
        let is =
            |p: &Path, magic: i64| rustix::fs::statfs(p).is_ok_and(|st| st.f_type as i64 == magic);
        if let Some(u) = &self.unified {
            if !is(u, libc::CGROUP2_SUPER_MAGIC as i64) {
                self.unified = None;
            }
        }
        self.v1
            .retain(|_, p| is(p, libc::CGROUP_SUPER_MAGIC as i64));
        self.hierarchy = match (self.v1.is_empty(), self.unified.is_some()) {
            (false, true) => Hierarchy::Hybrid,
            (true, true) => Hierarchy::V2,
            _ => Hierarchy::V1,
        };
    }

    /// Builds the roots from the text of a mountinfo file. `unified_host` says that
    /// `/sys/fs/cgroup` itself is a cgroup2 filesystem (what `statfs` found).
    pub fn from_mountinfo(text: &str, unified_host: bool) -> Result<Self> {
        if unified_host {
            return Ok(Self::unified_at(CGROUP_ROOT));
        }
        let mut v1: BTreeMap<String, (PathBuf, bool)> = BTreeMap::new();
        let mut unified: Option<PathBuf> = None;
        for line in text.lines() {
            let Some(mount) = MountLine::parse(line) else {
                continue;
            };
            if mount.root != "/" {
                continue;
            }
            let preferred = mount.mount_point.starts_with(CGROUP_ROOT);
            match mount.fs_type {
                "cgroup2" => {
                    let better = match &unified {
                        None => true,
                        Some(old) => {
                            mount.mount_point == Path::new(CGROUP_ROOT).join("unified")
                                && *old != mount.mount_point
                        }
                    };
                    if better {
                        unified = Some(mount.mount_point.clone());
                    }
                }
                "cgroup" => {
                    for opt in mount.super_options.split(',') {
                        if !V1_CONTROLLERS.contains(&opt) {
                            continue;
                        }
                        let replace = match v1.get(opt) {
                            None => true,
                            Some((_, old_preferred)) => preferred && !old_preferred,
                        };
                        if replace {
                            v1.insert(opt.to_string(), (mount.mount_point.clone(), preferred));
                        }
                    }
                }
                _ => {}
            }
        }
        let v1: BTreeMap<String, PathBuf> = v1.into_iter().map(|(k, (p, _))| (k, p)).collect();
        let hierarchy = match (v1.is_empty(), unified.is_some()) {
            (false, true) => Hierarchy::Hybrid,
            (false, false) => Hierarchy::V1,
            (true, true) => Hierarchy::V2,
            (true, false) => {
                return Err(CgroupError::NotMounted {
                    source_file: "/proc/self/mountinfo".into(),
                    reason: "neither a cgroup2 mount nor a cgroup v1 controller mount".into(),
                });
            }
        };
        let v1 = if hierarchy == Hierarchy::V2 {
            BTreeMap::new()
        } else {
            v1
        };
        Ok(CgroupRoots {
            hierarchy,
            v1,
            unified,
        })
    }

    /// A pure v2 layout rooted at `path`, which must be (a directory of) a cgroup2 mount.
    /// Tests use it to run the v2 code on a hybrid host's `/sys/fs/cgroup/unified`, or on a
    /// plain directory tree to check what would be written.
    pub fn unified_at(path: impl Into<PathBuf>) -> Self {
        CgroupRoots {
            hierarchy: Hierarchy::V2,
            v1: BTreeMap::new(),
            unified: Some(path.into()),
        }
    }
}

/// The fields of one mountinfo line that matter here.
struct MountLine<'a> {
    root: String,
    mount_point: PathBuf,
    fs_type: &'a str,
    super_options: &'a str,
}

impl<'a> MountLine<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
        let (left, right) = line.split_once(" - ")?;
        let left: Vec<&str> = left.split(' ').collect();
        if left.len() < 6 {
            return None;
        }
        let mut right = right.split(' ');
        let fs_type = right.next()?;
        let _source = right.next()?;
        let super_options = right.next().unwrap_or("");
        Some(MountLine {
            root: unescape(left[3]),
            mount_point: PathBuf::from(unescape(left[4])),
            fs_type,
            super_options,
        })
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, and so on).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = (bytes[i + 1] - b'0') as u32 * 64
                + (bytes[i + 2] - b'0') as u32 * 8
                + (bytes[i + 3] - b'0') as u32;
            out.push(value as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_host() {
        let roots = CgroupRoots::from_mountinfo(HYBRID, false).unwrap();
        assert_eq!(roots.hierarchy, Hierarchy::Hybrid);
        assert_eq!(
            roots.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(roots.v1["cpu"], Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(roots.v1["pids"], Path::new("/sys/fs/cgroup/pids"));
        assert!(!roots.v1.contains_key("systemd"));
        assert!(!roots.v1.contains_key("name=systemd"));
        assert!(!roots.v1.contains_key("hugetlb"));
        assert_eq!(roots.v1.len(), 8);
    }

    #[test]
    fn co_mounted_legacy_host() {
        let text = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,release_agent=/lib/systemd/x,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
31 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
99 31 0:28 /sub /mnt/memsub rw - cgroup cgroup rw,memory
";
        let roots = CgroupRoots::from_mountinfo(text, false).unwrap();
        assert_eq!(roots.hierarchy, Hierarchy::V1);
        assert_eq!(roots.unified, None);
        assert_eq!(roots.v1["cpu"], Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(roots.v1["cpuacct"], Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(
            roots.v1["net_prio"],
            Path::new("/sys/fs/cgroup/net_cls,net_prio")
        );
        assert_eq!(roots.v1["memory"], Path::new("/sys/fs/cgroup/memory"));
    }

    #[test]
    fn unified_host() {
        let text = "35 24 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let roots = CgroupRoots::from_mountinfo(text, false).unwrap();
        assert_eq!(roots.hierarchy, Hierarchy::V2);
        assert_eq!(roots.unified.as_deref(), Some(Path::new("/sys/fs/cgroup")));
        let roots = CgroupRoots::from_mountinfo("", true).unwrap();
        assert_eq!(roots.hierarchy, Hierarchy::V2);
        assert!(roots.v1.is_empty());
    }

    #[test]
    fn nothing_mounted() {
        let err =
            CgroupRoots::from_mountinfo("1 0 0:1 / / rw - ext4 /dev/vda rw\n", false).unwrap_err();
        assert!(err.to_string().contains("no cgroup filesystem"), "{err}");
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape(r"/x\\"), r"/x\\");
    }
}
