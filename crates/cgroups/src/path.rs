//! Turning `linux.cgroupsPath` into the cgroup a container gets.
//!
//! Rules (cgroupfs driver; berth has no systemd driver yet):
//!
//! - absent → `/berth/<id>`;
//! - absolute (`/a/b`) → that path below every hierarchy's root;
//! - relative (`a/b`) → below the calling process's own cgroup, which on v1 is looked up per
//!   controller in `/proc/self/cgroup` (runc does the same);
//! - `..` components, NUL bytes, a path naming a hierarchy root (`/`, `.`, empty) and
//!   systemd-style `slice:prefix:name` paths are refused; every error names the path.
//!
//! Resolution reads `/proc/self/cgroup` once, when the path is resolved, so a manager built
//! later from the same [`CgroupPath`] always means the same directories.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::error::{CgroupError, Result};

/// The parent of containers' cgroups when `cgroupsPath` is absent.
pub const DEFAULT_PARENT: &str = "/berth";

/// A resolved container cgroup path: for each hierarchy, an absolute path below its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupPath {
    /// As given (or as built from the id), for messages.
    given: String,
    /// The normalised components, never empty.
    rel: PathBuf,
    /// For relative paths: the caller's own cgroup per controller (`""` is cgroup2).
    own: Option<BTreeMap<String, PathBuf>>,
}

impl CgroupPath {
    /// The path as given, or `/berth/<id>` when none was.
    pub fn as_str(&self) -> &str {
        &self.given
    }

    /// Whether the path is relative to the caller's own cgroup.
    pub fn is_relative(&self) -> bool {
        self.own.is_some()
    }

    /// The absolute cgroup path (below the hierarchy root) in the v1 hierarchy that holds
    /// `controller`.
    pub fn for_controller(&self, controller: &str) -> PathBuf {
        self.below(controller)
    }

    /// The absolute cgroup path (below the root) in the cgroup2 hierarchy.
    pub fn for_unified(&self) -> PathBuf {
        self.below("")
    }

    fn below(&self, key: &str) -> PathBuf {
        let base = match &self.own {
            Some(own) => own.get(key).cloned().unwrap_or_else(|| PathBuf::from("/")),
            None => PathBuf::from("/"),
        };
        base.join(&self.rel)
    }
}

impl std::fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.given)
    }
}

/// Resolves `cgroupsPath` for container `id` (see the module docs), reading
/// `/proc/self/cgroup` when the path is relative.
pub fn resolve_path(cgroups_path: Option<&str>, id: &str) -> Result<CgroupPath> {
    resolve_path_with(cgroups_path, id, || {
        let path = Path::new("/proc/self/cgroup");
        std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
            path: path.into(),
            source,
        })
    })
}

/// [`resolve_path`] with the text of `/proc/self/cgroup` supplied by `own_cgroup` (called only
/// for relative paths).
pub fn resolve_path_with(
    cgroups_path: Option<&str>,
    id: &str,
    own_cgroup: impl FnOnce() -> Result<String>,
) -> Result<CgroupPath> {
    let Some(given) = cgroups_path.filter(|p| !p.is_empty()) else {
        let bad_id =
            id.is_empty() || id == "." || id == ".." || id.contains('/') || id.contains('\0');
        if bad_id {
            return Err(CgroupError::InvalidPath {
                path: format!("{DEFAULT_PARENT}/{id}"),
                reason: format!("container id {id:?} cannot name a cgroup"),
            });
        }
        return Ok(CgroupPath {
            given: format!("{DEFAULT_PARENT}/{id}"),
            rel: Path::new(&DEFAULT_PARENT[1..]).join(id),
            own: None,
        });
    };
    let invalid = |reason: &str| CgroupError::InvalidPath {
        path: given.to_string(),
        reason: reason.into(),
    };
    if given.split(':').count() == 3 {
        return Err(CgroupError::SystemdPath {
            path: given.to_string(),
        });
    }
    if given.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    let mut rel = PathBuf::new();
    for component in Path::new(given).components() {
        match component {
            Component::Normal(name) => rel.push(name),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(invalid("must not contain \"..\"")),
            Component::Prefix(_) => return Err(invalid("has a prefix")),
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(invalid(
            "names the root of the cgroup hierarchy (or the caller's own cgroup)",
        ));
    }
    let own = if given.starts_with('/') {
        None
    } else {
        Some(parse_proc_cgroup(&own_cgroup()?))
    };
    Ok(CgroupPath {
        given: given.to_string(),
        rel,
        own,
    })
}

/// Parses `/proc/PID/cgroup`: controller (`""` for cgroup2) → the process's cgroup.
/// Co-mounted controllers (`cpu,cpuacct`) each get an entry; named hierarchies
/// (`name=systemd`) are kept under their full name.
pub fn parse_proc_cgroup(text: &str) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        for controller in controllers.split(',') {
            out.insert(controller.to_string(), PathBuf::from(path));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str =
        "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/user.slice\n0::/init.scope\n";

    fn never() -> Result<String> {
        panic!("absolute paths must not read /proc/self/cgroup")
    }

    #[test]
    fn absent_is_berth_id() {
        let p = resolve_path_with(None, "c1", never).unwrap();
        assert_eq!(p.as_str(), "/berth/c1");
        assert_eq!(p.for_controller("memory"), Path::new("/berth/c1"));
        assert_eq!(p.for_unified(), Path::new("/berth/c1"));
        assert!(!p.is_relative());
        // An empty string is the same as no path (runc treats "" as unset).
        assert_eq!(resolve_path_with(Some(""), "c1", never).unwrap(), p);
    }

    #[test]
    fn absolute_is_as_given() {
        let p = resolve_path_with(Some("/a/b//c/"), "x", never).unwrap();
        assert_eq!(p.as_str(), "/a/b//c/");
        assert_eq!(p.for_controller("cpu"), Path::new("/a/b/c"));
        assert_eq!(p.for_unified(), Path::new("/a/b/c"));
    }

    #[test]
    fn relative_is_below_own_cgroup_per_controller() {
        let p = resolve_path_with(Some("pod/ctr"), "x", || Ok(OWN.to_string())).unwrap();
        assert!(p.is_relative());
        assert_eq!(
            p.for_controller("memory"),
            Path::new("/process_api/abc/pod/ctr")
        );
        assert_eq!(
            p.for_controller("cpuacct"),
            Path::new("/user.slice/pod/ctr")
        );
        assert_eq!(p.for_controller("pids"), Path::new("/pod/ctr"));
        assert_eq!(p.for_unified(), Path::new("/init.scope/pod/ctr"));
    }

    #[test]
    fn refusals_name_the_path() {
        for (path, needle) in [
            ("/a/../b", "\"/a/../b\": must not contain \"..\""),
            ("..", "must not contain"),
            ("/", "root of the cgroup hierarchy"),
            (".", "root of the cgroup hierarchy"),
            ("/a\0b", "NUL"),
        ] {
            let err = resolve_path_with(Some(path), "x", || Ok(OWN.into())).unwrap_err();
            assert!(err.to_string().contains(needle), "{path:?}: {err}");
        }
        let err = resolve_path_with(Some("system.slice:berth:abc"), "x", never).unwrap_err();
        assert!(matches!(err, CgroupError::SystemdPath { .. }));
        assert!(err.to_string().contains("system.slice:berth:abc"));
        assert!(err.to_string().contains("need --systemd-cgroup"));
        for id in ["", "..", "a/b"] {
            let err = resolve_path_with(None, id, never).unwrap_err();
            assert!(err.to_string().contains("container id"), "{err}");
        }
    }

    #[test]
    fn proc_cgroup_parsing() {
        let own = parse_proc_cgroup(OWN);
        assert_eq!(own["cpu"], Path::new("/user.slice"));
        assert_eq!(own["cpuacct"], Path::new("/user.slice"));
        assert_eq!(own[""], Path::new("/init.scope"));
        assert_eq!(own["name=systemd"], Path::new("/"));
    }
}
