//! Running berth as an unprivileged user (runc's "rootless" mode).
//!
//! - `--rootless true|false|auto` decides whether cgroups are optional ([`RootlessMode`]):
//!   `auto` (the default) means yes when berth's euid is not 0, or when it is 0 inside a user
//!   namespace and `XDG_RUNTIME_DIR` is set (runc's `shouldUseRootlessCgroupManager`).
//! - With optional cgroups, a container whose cgroup berth may not create (`EACCES`, `EPERM`,
//!   `EROFS`) and whose config names no `cgroupsPath` runs without one, in the caller's cgroups;
//!   if `linux.resources` asks for any limit (devices rules aside) that is an error naming the
//!   cgroup, as runc's "container could not join or create cgroup". An explicit `cgroupsPath`
//!   must always work.
//! - The state root defaults to `$XDG_RUNTIME_DIR/berth` for an unprivileged user (and for root
//!   in a user namespace unless `USER=root`), else `/run/berth` ([`default_root`], runc's
//!   `shouldHonorXDGRuntimeDir`).
//! - User namespace maps and the devpts/mknod differences are in [`crate::namespaces`] and the
//!   init's device setup (host nodes are bind-mounted in a user namespace).

use std::path::PathBuf;
use std::str::FromStr;

use berth_cgroups::{CgroupManager, CgroupPath, CgroupRoots};
use berth_spec::Spec;

use crate::error::{Error, Result};

/// The `--rootless` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RootlessMode {
    /// Decide from the euid and environment.
    #[default]
    Auto,
    /// Cgroups are optional.
    True,
    /// Cgroups are required.
    False,
}

impl FromStr for RootlessMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(RootlessMode::Auto),
            "true" => Ok(RootlessMode::True),
            "false" => Ok(RootlessMode::False),
            other => Err(Error::Usage(format!(
                "--rootless: invalid value {other:?} (want true, false or auto)"
            ))),
        }
    }
}

impl RootlessMode {
    /// Whether cgroups are optional (runc's `RootlessCgroups`).
    pub fn cgroups_optional(self) -> bool {
        match self {
            RootlessMode::True => true,
            RootlessMode::False => false,
            RootlessMode::Auto => {
                !rustix::process::geteuid().is_root()
                    || (running_in_userns() && std::env::var_os("XDG_RUNTIME_DIR").is_some())
            }
        }
    }
}

/// True when this process is not in the initial user namespace (its uid map is not the
/// identity over all 2^32 ids).
pub fn running_in_userns() -> bool {
    match berth_sys::procfs::read_to_string("/proc/self/uid_map") {
        Ok(text) => {
            let fields: Vec<&str> = text.split_whitespace().collect();
            fields != ["0", "0", "4294967295"]
        }
        Err(_) => false,
    }
}

/// The default `--root`: `$XDG_RUNTIME_DIR/berth` when runc would use its XDG directory,
/// else `/run/berth`.
pub fn default_root() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        let honour = if !rustix::process::geteuid().is_root() {
            true
        } else if running_in_userns() {
            std::env::var_os("USER").is_none_or(|u| u != "root")
        } else {
            false
        };
        if honour {
            return PathBuf::from(xdg).join("berth");
        }
    }
    PathBuf::from("/run/berth")
}

fn is_permission(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.raw_os_error(),
                Some(libc::EACCES | libc::EPERM | libc::EROFS)
            );
        }
        cur = err.source();
    }
    false
}

/// The resource fields the config sets, devices rules left out (those only restrict, and a
/// rootless container cannot have them anyway).
fn limits_asked(resources: &berth_spec::Resources) -> Vec<String> {
    match serde_json::to_value(resources) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .filter(|(k, v)| k != "devices" && !v.is_null())
            .map(|(k, _)| format!("linux.resources.{k}"))
            .collect(),
        _ => Vec::new(),
    }
}

/// Makes the container's cgroup at `path` and applies `linux.resources` (devices rules
/// included), or, when the cgroup is `optional` and there is no permission, returns `None` (see
/// the module docs). `roots`: the host's hierarchies if the caller already read them.
pub(crate) fn container_cgroup(
    spec: &Spec,
    path: &CgroupPath,
    roots: Option<&CgroupRoots>,
    optional: bool,
) -> Result<Option<CgroupManager>> {
    let made = match roots {
        Some(roots) => CgroupManager::create_in(roots, path),
        None => CgroupManager::create(path),
    };
    let cgroup = match made {
        Ok(cg) => cg,
        Err(e) if optional && is_permission(&e) => {
            let asked = limits_asked(
                spec.linux
                    .as_ref()
                    .and_then(|l| l.resources.as_ref())
                    .unwrap_or(&Default::default()),
            );
            if !asked.is_empty() {
                return Err(Error::Usage(format!(
                    "{}: cannot set limits: rootless container could not create its cgroup ({e})",
                    asked.join(", ")
                )));
            }
            log::debug!("rootless: running without a cgroup of its own: {e}");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    configure(spec, &cgroup)?;
    Ok(Some(cgroup))
}

/// Applies `linux.resources` with the effective device rules to a cgroup just made; on
/// failure removes it.
pub(crate) fn configure(spec: &Spec, cgroup: &CgroupManager) -> Result<()> {
    if let Err(e) = apply_resources(spec, cgroup) {
        if let Err(cleanup) = cgroup.destroy() {
            log::warn!("cleanup: {cleanup}");
        }
        return Err(e);
    }
    Ok(())
}

/// Applies `linux.resources` with the effective device rules to a cgroup just made, leaving
/// its removal on failure to the caller.
pub(crate) fn apply_resources(spec: &Spec, cgroup: &CgroupManager) -> Result<()> {
    apply_device_rules(spec, cgroup)?;
    apply_limits(spec, cgroup)
}

/// The device-rule half of [`apply_resources`]: `linux.resources.devices` with berth's
/// defaults ([`crate::devrules::effective_rules`]).
pub(crate) fn apply_device_rules(spec: &Spec, cgroup: &CgroupManager) -> Result<()> {
    let resources = berth_spec::Resources {
        devices: crate::devrules::effective_rules(spec),
        ..Default::default()
    };
    cgroup.apply(&resources)?;
    Ok(())
}

/// The other half of [`apply_resources`]: every limit in `linux.resources` but the device
/// rules.
pub(crate) fn apply_limits(spec: &Spec, cgroup: &CgroupManager) -> Result<()> {
    let mut resources = spec
        .linux
        .as_ref()
        .and_then(|l| l.resources.clone())
        .unwrap_or_default();
    resources.devices.clear();
    cgroup.apply(&resources)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_flag() {
        assert_eq!("auto".parse::<RootlessMode>().unwrap(), RootlessMode::Auto);
        assert_eq!("true".parse::<RootlessMode>().unwrap(), RootlessMode::True);
        assert_eq!(
            "false".parse::<RootlessMode>().unwrap(),
            RootlessMode::False
        );
        let e = "yes".parse::<RootlessMode>().unwrap_err().to_string();
        assert!(e.contains("--rootless") && e.contains("yes"), "{e}");
        assert!(RootlessMode::True.cgroups_optional());
        assert!(!RootlessMode::False.cgroups_optional());
    }

    #[test]
    fn limits_leave_devices_out() {
        let mut r = berth_spec::Resources::default();
        assert!(limits_asked(&r).is_empty());
        r.devices = vec![berth_spec::DeviceCgroup::default()];
        assert!(limits_asked(&r).is_empty());
        r.pids = Some(berth_spec::Pids { limit: 10 });
        assert_eq!(limits_asked(&r), ["linux.resources.pids"]);
    }
}
