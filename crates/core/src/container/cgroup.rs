//! When `create` makes the container's cgroup.
//!
//! The init has to be in its cgroup before it reports ready (and before it unshares a cgroup
//! namespace or binds its cgroup directories into a `cgroup` mount), not before it is cloned.
//! On v1 and hybrid hosts, where berth moves the init with a `cgroup.procs` write anyway,
//! berth therefore resolves the cgroup before the clone (it is saved in the state, so a failed
//! `create` removes it) and makes the directories after it, while the init sets up its mounts
//! (a `mkdir` in each of nine v1 hierarchies costs about a millisecond); `create` then tells
//! the init they exist and writes the limits, moves the init in and writes the device rules
//! while the init binds them (see `continue_in_cgroup` in `create.rs` for the order). On a
//! cgroup2 host the directory must exist before the clone (`CLONE_INTO_CGROUP`), and a
//! rootless container may find it has no cgroup at all: both make it at once.

use berth_cgroups::{CgroupManager, CgroupRoots, Hierarchy};
use berth_spec::Spec;

use crate::error::Result;

/// The container's cgroup as `create` has it before the clone.
pub(crate) enum CgroupPlan {
    /// No cgroup of its own (rootless, without permission to make one).
    Without,
    /// Made and configured.
    Made(CgroupManager),
    /// Resolved only: [`CgroupPlan::make`] makes it, the caller configures it.
    Later {
        /// The manager, its directories not made yet.
        manager: CgroupManager,
        /// The host's hierarchies it was resolved in.
        roots: CgroupRoots,
    },
}

impl CgroupPlan {
    /// Resolves the container's cgroup, making it at once where it cannot wait (see the module
    /// docs).
    pub(crate) fn for_spec(spec: &Spec, id: &str, cgroups_optional: bool) -> Result<CgroupPlan> {
        let cgroups_path = spec.linux.as_ref().and_then(|l| l.cgroups_path.as_deref());
        let optional = cgroups_optional && cgroups_path.is_none();
        let path = berth_cgroups::resolve_path(cgroups_path, id)?;
        // A rootless container's cgroup is tried as one step (see crate::rootless).
        let roots = if optional {
            None
        } else {
            Some(CgroupRoots::detect()?)
        };
        match roots {
            Some(roots) if roots.hierarchy != Hierarchy::V2 => {
                let manager = CgroupManager::open_in(&roots, &path);
                Ok(CgroupPlan::Later { manager, roots })
            }
            roots => Ok(
                match crate::rootless::container_cgroup(spec, &path, roots.as_ref(), optional)? {
                    Some(made) => CgroupPlan::Made(made),
                    None => CgroupPlan::Without,
                },
            ),
        }
    }

    /// The manager, made or not (what the state records and a failed `create` removes).
    pub(crate) fn manager(&self) -> Option<&CgroupManager> {
        match self {
            CgroupPlan::Without => None,
            CgroupPlan::Made(m) | CgroupPlan::Later { manager: m, .. } => Some(m),
        }
    }

    /// Makes the directories of a [`CgroupPlan::Later`] cgroup, not its resources: returns the
    /// manager when it made them now, for the caller to apply the resources with
    /// [`crate::rootless::apply_limits`] and [`crate::rootless::apply_device_rules`] once it
    /// has told the init the directories exist.
    /// Does nothing for the other kinds, or when called again.
    pub(crate) fn make(&mut self) -> Result<Option<CgroupManager>> {
        let CgroupPlan::Later { manager, roots } = self else {
            return Ok(None);
        };
        let mut made = manager.clone();
        made.make_in(roots)?;
        log::debug!("cgroup {} made", made.path());
        *self = CgroupPlan::Made(made.clone());
        Ok(Some(made))
    }
}
