//! `exec --cgroup`: the sub-cgroup of the container's cgroup an exec'd process joins, per
//! controller, as runc 1.1 takes it (`PATH` for every controller, or `CTRL[,CTRL]:PATH`).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::error::{CgroupError, Result};

/// Parsed `--cgroup` arguments: controller → path below the container's cgroup. The key `""`
/// (a bare `PATH`) applies to every controller not named, and to the cgroup2 hierarchy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubCgroups(BTreeMap<String, String>);

const FIELD: &str = "--cgroup";

impl SubCgroups {
    /// Parses the `--cgroup` values; a bare `PATH` must be the only one (runc's rule).
    pub fn parse(args: &[String]) -> Result<SubCgroups> {
        let mut map = BTreeMap::new();
        for arg in args {
            let parts: Vec<&str> = arg.splitn(3, ':').collect();
            match parts.as_slice() {
                [path] => {
                    if args.len() != 1 {
                        return Err(CgroupError::invalid(
                            FIELD,
                            format!(
                                "invalid --cgroup argument: {arg} (missing <controller>: prefix)"
                            ),
                        ));
                    }
                    map.insert(String::new(), path.to_string());
                }
                [ctrls, path] => {
                    for ctrl in ctrls.split(',') {
                        if ctrl.is_empty() {
                            return Err(CgroupError::invalid(
                                FIELD,
                                format!("invalid --cgroup argument: {arg} (empty controller)"),
                            ));
                        }
                        map.insert(ctrl.to_string(), path.to_string());
                    }
                }
                _ => {
                    return Err(CgroupError::invalid(
                        FIELD,
                        format!("invalid --cgroup argument: {arg}"),
                    ));
                }
            }
        }
        Ok(SubCgroups(map))
    }

    /// True when no `--cgroup` was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The controllers named explicitly (not the bare-path key).
    pub fn controllers(&self) -> impl Iterator<Item = &str> {
        self.0.keys().filter(|k| !k.is_empty()).map(String::as_str)
    }

    /// The path for `controller`: its own, else the bare one, else none (the container's cgroup).
    pub fn for_controller(&self, controller: &str) -> Option<&str> {
        self.0
            .get(controller)
            .or_else(|| self.0.get(""))
            .map(String::as_str)
    }

    /// The bare path, if one was given.
    pub fn bare(&self) -> Option<&str> {
        self.0.get("").map(String::as_str)
    }
}

/// `base` joined with `sub` lexically (a leading `/` is relative to `base`); an error when the
/// result leaves `base`, as `..` does.
pub fn join_below(base: &Path, sub: &str) -> Result<PathBuf> {
    let mut rel: Vec<&std::ffi::OsStr> = Vec::new();
    for c in Path::new(sub).components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::ParentDir => {
                if rel.pop().is_none() {
                    return Err(CgroupError::invalid(
                        FIELD,
                        format!("{sub} is not a sub cgroup path"),
                    ));
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    let mut out = base.to_path_buf();
    out.extend(rel);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parse_forms() {
        let s = SubCgroups::parse(&args(&["memory:submem", "cpu,cpuacct:subcpu"])).unwrap();
        assert_eq!(s.for_controller("memory"), Some("submem"));
        assert_eq!(s.for_controller("cpuacct"), Some("subcpu"));
        assert_eq!(s.for_controller("pids"), None);
        assert_eq!(s.controllers().count(), 3);
        let s = SubCgroups::parse(&args(&["foo"])).unwrap();
        assert_eq!(s.for_controller("pids"), Some("foo"));
        assert_eq!(s.bare(), Some("foo"));
        assert!(SubCgroups::parse(&[]).unwrap().is_empty());
    }

    #[test]
    fn parse_errors_name_the_flag() {
        for bad in [&["a", "b"][..], &["a:b:c"], &[":x"], &["foo", "memory:x"]] {
            let e = SubCgroups::parse(&args(bad)).unwrap_err().to_string();
            assert!(
                e.starts_with("--cgroup: invalid --cgroup argument"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn join_stays_below_the_base() {
        let base = Path::new("/sys/fs/cgroup/memory/c1");
        assert_eq!(join_below(base, "/").unwrap(), base);
        assert_eq!(join_below(base, "a/./b").unwrap(), base.join("a/b"));
        assert_eq!(join_below(base, "/a/../b").unwrap(), base.join("b"));
        let e = join_below(base, "..").unwrap_err().to_string();
        assert_eq!(e, "--cgroup: .. is not a sub cgroup path");
        assert!(join_below(base, "a/../../c1").is_err());
    }
}
