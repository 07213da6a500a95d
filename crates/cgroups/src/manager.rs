//! [`CgroupManager`]: the directories of one container's cgroup and everything done to them.
//!
//! Order of operations for a container: [`CgroupManager::create`] (or
//! [`CgroupManager::create_with`], which also validates and applies, and removes what it made
//! if that fails) → [`CgroupManager::apply`] → [`CgroupManager::add_pid`] for the init (or
//! [`CgroupManager::dir_fd_for_clone`] for `CLONE_INTO_CGROUP` on a unified host) → later
//! [`CgroupManager::update`], [`CgroupManager::freeze`]/[`CgroupManager::thaw`],
//! [`CgroupManager::stats`] → [`CgroupManager::kill_all`] → [`CgroupManager::destroy`].
//!
//! Where each resource goes:
//!
//! | layout | directories | controllers |
//! |---|---|---|
//! | v2 | one, below the cgroup2 root; the parents' `cgroup.subtree_control` get the controllers they offer | all v2; devices via eBPF |
//! | v1 | one per mounted controller hierarchy (co-mounted controllers share it); the `name=systemd` hierarchy is not touched | all v1 |
//! | hybrid | the v1 ones plus the same path in the cgroup2 hierarchy | v1 where mounted; controllers bound only to cgroup2 (hugetlb on some hosts) use the v2 files there; `unified` goes there too |
//!
//! The freezer is v1's `freezer.state` when the freezer controller is mounted, else v2's
//! `cgroup.freeze`. `kill_all(SIGKILL)` uses `cgroup.kill` when there is a cgroup2 directory
//! (kernel 5.14+); other signals, or no `cgroup.kill`, freeze, signal every process, thaw.
//!
//! The manager is plain data (serde): the runtime stores it in its state file and gets the
//! same manager back in a later invocation, without looking at the host again.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_spec::Resources;
use serde::{Deserialize, Serialize};

use crate::convert::RES;
use crate::error::{CgroupError, Result};
use crate::fsutil::{read, read_opt, read_procs, walk, write};
use crate::hierarchy::{CgroupRoots, Hierarchy, V1_CONTROLLERS, V2_CONTROLLERS};
use crate::path::CgroupPath;
use crate::stats::{Source, StatSources, Stats, read_stats_from};
use crate::validate::validate;
use crate::{v1, v2};

/// How long freeze and thaw wait for the state to settle.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long destroy retries a busy directory (processes still exiting).
const RMDIR_TIMEOUT: Duration = Duration::from_secs(5);

/// One container's cgroup: the layout and the absolute directories it owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupManager {
    hierarchy: Hierarchy,
    /// The cgroup path as resolved (for messages).
    path: String,
    /// v1 controller → the container's directory in that controller's hierarchy.
    #[serde(default)]
    v1: BTreeMap<String, PathBuf>,
    /// The container's directory in the cgroup2 hierarchy (v2 and hybrid).
    #[serde(default)]
    unified: Option<PathBuf>,
    /// The cgroup held other processes when the container was made in it.
    #[serde(default)]
    shared: bool,
}

/// Where one resource is written.
enum Place<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

/// What the freezer is.
enum Freezer<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

impl CgroupManager {
    /// Detects the host's layout and makes the container's directories (see the module docs).
    pub fn create(path: &CgroupPath) -> Result<Self> {
        Self::create_in(&CgroupRoots::detect()?, path)
    }

    /// Like [`CgroupManager::create`], with the hierarchies given (tests root a v2 manager at a
    /// hybrid host's `/sys/fs/cgroup/unified` this way).
    ///
    /// Directories that already exist are used. If they already hold processes, the
    /// container shares the cgroup (runc 1.1 warns and goes on; so does berth, with runc's
    /// warning): [`CgroupManager::is_shared`] then tells `delete` not to kill or wait for the
    /// other processes. On error, the directories this call made are removed.
    pub fn create_in(roots: &CgroupRoots, path: &CgroupPath) -> Result<Self> {
        let mut manager = Self::open_in(roots, path);
        manager.make_in(roots)?;
        Ok(manager)
    }

    /// Makes the directories of a manager from [`CgroupManager::open_in`], as
    /// [`CgroupManager::create_in`] does (berth resolves the cgroup and saves it in the
    /// container's state first, and makes it after the clone on v1 and hybrid hosts).
    pub fn make_in(&mut self, roots: &CgroupRoots) -> Result<()> {
        let mut made = Vec::new();
        match self.make_dirs(roots, &mut made) {
            Ok(found) => {
                if found > 0 {
                    log::warn!("container's cgroup is not empty: {found} process(es) found");
                    self.shared = true;
                }
                Ok(())
            }
            Err(err) => {
                for dir in made.iter().rev() {
                    let _ = std::fs::remove_dir(dir);
                }
                Err(err)
            }
        }
    }

    /// True when the cgroup held other processes when this container was made in it.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// The manager for `path` under `roots`, without making or checking anything: for a
    /// runtime that lost its state file and must still kill and remove a container's cgroup.
    pub fn open_in(roots: &CgroupRoots, path: &CgroupPath) -> Self {
        let mut manager = CgroupManager {
            hierarchy: roots.hierarchy,
            path: path.as_str().to_string(),
            v1: BTreeMap::new(),
            unified: None,
            shared: false,
        };
        if roots.hierarchy != Hierarchy::V2 {
            for (controller, mount) in &roots.v1 {
                if V1_CONTROLLERS.contains(&controller.as_str()) {
                    let dir = mount.join(strip_root(&path.for_controller(controller)));
                    manager.v1.insert(controller.clone(), dir);
                }
            }
        }
        if roots.hierarchy != Hierarchy::V1 {
            if let Some(root) = &roots.unified {
                manager.unified = Some(root.join(strip_root(&path.for_unified())));
            }
        }
        manager
    }

    /// Makes the missing directories; returns how many processes the existing ones hold.
    fn make_dirs(&self, roots: &CgroupRoots, made: &mut Vec<PathBuf>) -> Result<usize> {
        let mut found = 0;
        for dir in self.dirs() {
            let existed = dir.is_dir();
            if !existed {
                // Each missing level, so a failure removes exactly what this call made.
                let mut missing = Vec::new();
                let mut at = dir.as_path();
                while !at.exists() {
                    missing.push(at.to_path_buf());
                    match at.parent() {
                        Some(parent) => at = parent,
                        None => break,
                    }
                }
                for level in missing.into_iter().rev() {
                    match std::fs::create_dir(&level) {
                        Ok(()) => made.push(level),
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(source) => {
                            return Err(CgroupError::Mkdir {
                                path: level,
                                source,
                            });
                        }
                    }
                }
            } else {
                found = found.max(read_procs(&dir).map(|p| p.len()).unwrap_or(0));
            }
        }
        // As runc: a pre-existing frozen cgroup is refused (the init would freeze as soon as it
        // joined, and create would wait for it forever).
        if self.is_frozen().unwrap_or(false) {
            let path = match self.freezer() {
                Ok(Freezer::V1(dir) | Freezer::V2(dir)) => dir.to_path_buf(),
                Err(_) => PathBuf::from(&self.path),
            };
            return Err(CgroupError::Frozen { path });
        }
        if let (Some(dir), Some(mount)) = (self.v1.get("cpuset"), roots.v1.get("cpuset")) {
            init_cpuset(mount, dir)?;
        }
        // On a hybrid host the cgroup2 side is only a mirror for cgroup.kill/freeze/procs: its
        // controllers are enabled on demand (see `place`), so the host keeps them free for v1
        // users (a v1 mount of hugetlb fails while cgroup2 has it enabled anywhere).
        if let (Some(dir), Some(root), Hierarchy::V2) =
            (&self.unified, &roots.unified, self.hierarchy)
        {
            let enabled = v2::enable_controllers(root, dir, V2_CONTROLLERS)?;
            log::debug!(
                "{}: controllers enabled by the parent: {}",
                dir.display(),
                enabled.join(" ")
            );
        }
        Ok(found)
    }

    /// Validates `resources`, makes the directories and applies the resources. A refused value
    /// leaves no directory behind; a failed write removes what this call made.
    pub fn create_with(path: &CgroupPath, resources: &Resources) -> Result<Self> {
        Self::create_with_in(&CgroupRoots::detect()?, path, resources)
    }

    /// [`CgroupManager::create_with`] with the hierarchies given.
    pub fn create_with_in(
        roots: &CgroupRoots,
        path: &CgroupPath,
        resources: &Resources,
    ) -> Result<Self> {
        validate(resources, roots.hierarchy)?;
        let manager = Self::create_in(roots, path)?;
        if let Err(err) = manager.apply(resources) {
            if let Err(cleanup) = manager.destroy() {
                log::warn!("removing {} after a failed apply: {cleanup}", manager.path);
            }
            return Err(err);
        }
        Ok(manager)
    }

    /// The layout this manager was made for.
    pub fn hierarchy(&self) -> Hierarchy {
        self.hierarchy
    }

    /// The cgroup path (as resolved from `cgroupsPath`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// v1 controller → directory.
    pub fn v1_dirs(&self) -> &BTreeMap<String, PathBuf> {
        &self.v1
    }

    /// The cgroup2 directory, on v2 and hybrid hosts.
    pub fn unified_dir(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// Every directory this manager owns, each once (co-mounted v1 controllers share one).
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for dir in self.v1.values().chain(self.unified.iter()) {
            if seen.insert(dir.clone()) {
                out.push(dir.clone());
            }
        }
        out
    }

    fn place(&self, v1_name: &str, v2_name: &str, field: &str) -> Result<Place<'_>> {
        if let Some(dir) = self.v1.get(v1_name) {
            return Ok(Place::V1(dir));
        }
        if let Some(dir) = &self.unified {
            if self.hierarchy == Hierarchy::Hybrid {
                if let Some(root) = CgroupRoots::detect()?.unified {
                    v2::enable_controllers(&root, dir, &[v2_name])?;
                }
            }
            let available = v2::controllers(dir)?;
            if available.iter().any(|c| c == v2_name) {
                return Ok(Place::V2(dir));
            }
            if self.hierarchy == Hierarchy::V2 {
                return Err(CgroupError::ControllerUnavailable {
                    field: field.to_string(),
                    controller: v2_name.to_string(),
                    path: dir.clone(),
                    detail: format!(" (cgroup.controllers: {:?})", available.join(" ")),
                });
            }
        }
        Err(CgroupError::ControllerUnavailable {
            field: field.to_string(),
            controller: v1_name.to_string(),
            path: self.path.clone().into(),
            detail: ": no v1 hierarchy has it and the cgroup2 hierarchy does not offer it"
                .to_string(),
        })
    }

    /// Writes `resources` (see [`crate::validate`] for what is refused and what 0 means).
    /// Fields that are not set are left as they are.
    pub fn apply(&self, resources: &Resources) -> Result<()> {
        let r = resources;
        validate(r, self.hierarchy)?;
        if let Some(cpu) = &r.cpu {
            if v1::cpuset_needed(cpu) {
                match self.place("cpuset", "cpuset", &format!("{RES}.cpu.cpus"))? {
                    Place::V1(dir) | Place::V2(dir) => v1::cpuset(dir, cpu)?,
                }
            }
        }
        if let Some(memory) = &r.memory {
            if *memory != berth_spec::Memory::default() {
                match self.place("memory", "memory", &format!("{RES}.memory"))? {
                    Place::V1(dir) => v1::memory(dir, memory)?,
                    Place::V2(dir) => v2::memory(dir, memory)?,
                }
            }
        }
        if let Some(cpu) = &r.cpu {
            if v1::cpu_needed(cpu) {
                match self.place("cpu", "cpu", &format!("{RES}.cpu"))? {
                    Place::V1(dir) => v1::cpu(dir, cpu)?,
                    Place::V2(dir) => v2::cpu(dir, cpu)?,
                }
            }
        }
        if let Some(pids) = &r.pids {
            match self.place("pids", "pids", &format!("{RES}.pids.limit"))? {
                Place::V1(dir) | Place::V2(dir) => v1::pids(dir, pids)?,
            }
        }
        if let Some(blkio) = &r.block_io {
            if v1::blkio_needed(blkio) {
                match self.place("blkio", "io", &format!("{RES}.blockIO"))? {
                    Place::V1(dir) => v1::blkio(dir, blkio)?,
                    Place::V2(dir) => v2::io(dir, blkio)?,
                }
            }
        }
        if !r.hugepage_limits.is_empty() {
            match self.place("hugetlb", "hugetlb", &format!("{RES}.hugepageLimits"))? {
                Place::V1(dir) => v1::hugetlb(dir, &r.hugepage_limits)?,
                Place::V2(dir) => v2::hugetlb(dir, &r.hugepage_limits)?,
            }
        }
        if let Some(network) = &r.network {
            let v1::Network {
                class_id,
                priorities,
            } = v1::parse_network(network)?;
            if let Some(class_id) = class_id {
                match self.v1.get("net_cls") {
                    Some(dir) => write(
                        dir,
                        "net_cls.classid",
                        &class_id.to_string(),
                        Some(&format!("{RES}.network.classID")),
                    )?,
                    None => return Err(self.v1_only("net_cls", "network.classID")),
                }
            }
            for (i, (name, priority)) in priorities.iter().enumerate() {
                let field = format!("{RES}.network.priorities[{i}]");
                match self.v1.get("net_prio") {
                    Some(dir) => write(
                        dir,
                        "net_prio.ifpriomap",
                        &format!("{name} {priority}"),
                        Some(&field),
                    )?,
                    None => {
                        return Err(self.v1_only("net_prio", &format!("network.priorities[{i}]")));
                    }
                }
            }
        }
        if r.rdma.as_ref().is_some_and(|v| !v.is_null()) {
            log::warn!("linux.resources.rdma is not supported by berth yet and is ignored");
        }
        if !r.devices.is_empty() {
            match (self.v1.get("devices"), &self.unified) {
                (Some(dir), _) => v1::devices(dir, &r.devices)?,
                (None, Some(dir)) => v2::devices(dir, &r.devices)?,
                (None, None) => {
                    return Err(CgroupError::ControllerUnavailable {
                        field: format!("{RES}.devices"),
                        controller: "devices".into(),
                        path: self.path.clone().into(),
                        detail: ": not mounted".into(),
                    });
                }
            }
        }
        if !r.unified.is_empty() {
            match &self.unified {
                Some(dir) => v2::unified(dir, &r.unified)?,
                None => {
                    return Err(CgroupError::invalid(
                        format!("{RES}.unified"),
                        "invalid configuration: cgroup v2 files cannot be set on a cgroup v1 host",
                    ));
                }
            }
        }
        Ok(())
    }

    fn v1_only(&self, controller: &str, field: &str) -> CgroupError {
        CgroupError::ControllerUnavailable {
            field: format!("{RES}.{field}"),
            controller: controller.to_string(),
            path: self.path.clone().into(),
            detail: ": it is a cgroup v1 controller and is not mounted".to_string(),
        }
    }

    /// [`CgroupManager::apply`] on a running container (`berth update`): the same code.
    pub fn update(&self, resources: &Resources) -> Result<()> {
        self.apply(resources)
    }

    /// Moves process `pid` into the container's cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        self.add_pid_where(pid, |_| true)
    }

    /// [`CgroupManager::add_pid`] for a new container's init in two steps: with
    /// `devices == false` into every hierarchy but the v1 `devices` one, with `devices == true`
    /// into that one only. berth moves the init into the others as soon as the directories
    /// exist (on a v1 host a migration waits for an RCU grace period unless one ended just
    /// before, see [`crate::prime`]) and into `devices` once its rules are written, so that the
    /// device nodes the init makes meanwhile never meet a half-written rule set.
    pub fn add_pid_in_steps(&self, pid: i32, devices: bool) -> Result<()> {
        let devices_dir = self.v1.get("devices");
        self.add_pid_where(pid, |dir| (Some(dir) == devices_dir) == devices)
    }

    /// Writes `pid` to `cgroup.procs` of each of the container's directories that `wanted`
    /// picks.
    fn add_pid_where(&self, pid: i32, wanted: impl Fn(&PathBuf) -> bool) -> Result<()> {
        if pid <= 0 {
            return Err(CgroupError::invalid(
                "pid",
                format!("{pid} is not a process id"),
            ));
        }
        for dir in self.dirs().iter().filter(|d| wanted(d)) {
            write(dir, "cgroup.procs", &pid.to_string(), None)?;
        }
        Ok(())
    }

    /// Moves process `pid` into sub-cgroups of the container's cgroup (`exec --cgroup`): in
    /// each v1 hierarchy the path given for its controller, else the bare path, else the
    /// container's cgroup; in the cgroup2 hierarchy the bare path (on a hybrid host, whose
    /// cgroup2 tree has no controllers, only if that sub-cgroup exists there).
    pub fn add_pid_below(&self, pid: i32, subs: &crate::SubCgroups) -> Result<()> {
        if subs.is_empty() {
            return self.add_pid(pid);
        }
        for ctrl in subs.controllers() {
            if self.hierarchy == Hierarchy::V2 {
                return Err(CgroupError::invalid(
                    "--cgroup",
                    format!("controller {ctrl}: a controller-specific path needs cgroup v1"),
                ));
            }
            if !self.v1.contains_key(ctrl) {
                return Err(CgroupError::invalid(
                    "--cgroup",
                    format!("unknown controller {ctrl}"),
                ));
            }
        }
        // Co-mounted controllers (cpu,cpuacct) share a directory: a path named for any of
        // them is the hierarchy's.
        let mut per_hierarchy: BTreeMap<&Path, Option<&str>> = BTreeMap::new();
        for (ctrl, base) in &self.v1 {
            let chosen = per_hierarchy.entry(base.as_path()).or_insert(None);
            let named = subs.controllers().any(|c| c == ctrl);
            if named || chosen.is_none() {
                *chosen = subs.for_controller(ctrl).or(*chosen);
            }
        }
        let mut targets = BTreeSet::new();
        for (base, sub) in per_hierarchy {
            targets.insert(match sub {
                Some(sub) => crate::sub::join_below(base, sub)?,
                None => base.to_path_buf(),
            });
        }
        if let Some(base) = &self.unified {
            let dir = match subs.bare() {
                Some(sub) => crate::sub::join_below(base, sub)?,
                None => base.clone(),
            };
            if self.hierarchy == Hierarchy::Hybrid && !dir.is_dir() {
                targets.insert(base.clone());
            } else {
                targets.insert(dir);
            }
        }
        for dir in targets {
            let path = dir.join("cgroup.procs");
            std::fs::write(&path, pid.to_string()).map_err(|source| CgroupError::AddPid {
                pid,
                path,
                source,
            })?;
        }
        Ok(())
    }

    /// Every process in the cgroup and the cgroups below it, sorted, each once.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut all = BTreeSet::new();
        for dir in self.process_dirs() {
            for sub in walk(dir)? {
                match read_procs(&sub) {
                    Ok(pids) => all.extend(pids),
                    // A child cgroup removed while walking.
                    Err(CgroupError::Read { source, .. })
                        if source.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(all.into_iter().collect())
    }

    /// The directories whose membership counts: the freezer's v1 directory (or another v1
    /// one) and the cgroup2 directory.
    fn process_dirs(&self) -> Vec<&Path> {
        let mut out = Vec::new();
        let v1 = ["freezer", "devices", "pids", "memory", "cpu"]
            .iter()
            .find_map(|c| self.v1.get(*c));
        if let Some(dir) = v1.or_else(|| self.v1.values().next()) {
            out.push(dir.as_path());
        }
        if let Some(dir) = &self.unified {
            out.push(dir.as_path());
        }
        out
    }

    fn freezer(&self) -> Result<Freezer<'_>> {
        if let Some(dir) = self.v1.get("freezer") {
            return Ok(Freezer::V1(dir));
        }
        if let Some(dir) = &self.unified {
            return Ok(Freezer::V2(dir));
        }
        Err(CgroupError::ControllerUnavailable {
            field: "freezer".into(),
            controller: "freezer".into(),
            path: self.path.clone().into(),
            detail: ": not mounted".into(),
        })
    }

    /// Freezes every process in the cgroup and waits until the kernel says they are frozen.
    /// On timeout the cgroup is thawed again and the error says the last state seen.
    pub fn freeze(&self) -> Result<()> {
        match self.freezer()? {
            Freezer::V1(dir) => freeze_v1(dir),
            Freezer::V2(dir) => set_v2_frozen(dir, true),
        }
    }

    /// Thaws the cgroup and waits until it is.
    pub fn thaw(&self) -> Result<()> {
        match self.freezer()? {
            Freezer::V1(dir) => {
                write(dir, "freezer.state", "THAWED", None)?;
                wait_for(dir.join("freezer.state"), "thaw", || {
                    let state = read(&dir.join("freezer.state"))?.trim().to_string();
                    Ok((state == "THAWED", state))
                })
            }
            Freezer::V2(dir) => set_v2_frozen(dir, false),
        }
    }

    /// Whether the cgroup is frozen (v1: `freezer.state` is `FROZEN`; v2: `cgroup.freeze` is 1,
    /// as runc reads it).
    pub fn is_frozen(&self) -> Result<bool> {
        match self.freezer()? {
            Freezer::V1(dir) => Ok(read(&dir.join("freezer.state"))?.trim() == "FROZEN"),
            Freezer::V2(dir) => {
                Ok(read_opt(&dir.join("cgroup.freeze"))?.is_some_and(|s| s.trim() == "1"))
            }
        }
    }

    /// Sends `signal` to every process in the cgroup, including those forked while this runs.
    ///
    /// SIGKILL with a cgroup2 directory that has `cgroup.kill`: one write, which the kernel
    /// applies atomically to the whole subtree. Otherwise: freeze (if possible; a failure is
    /// logged), signal each process, thaw — runc's approach, which stops forks racing the
    /// loop. A process that exits meanwhile is not an error.
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        if signal == libc::SIGKILL {
            if let Some(dir) = &self.unified {
                if dir.join("cgroup.kill").exists() {
                    return write(dir, "cgroup.kill", "1", None);
                }
            }
        }
        let frozen = match self.freeze() {
            Ok(()) => true,
            Err(err) => {
                log::warn!("kill_all: could not freeze {}: {err}", self.path);
                false
            }
        };
        let result = self.signal_each(signal);
        if frozen {
            if let Err(err) = self.thaw() {
                // The signalling error, if any, says more; else the thaw failure is the error.
                return result.and(Err(err));
            }
        }
        result
    }

    fn signal_each(&self, signal: i32) -> Result<()> {
        for pid in self.pids()? {
            if pid <= 0 {
                continue;
            }
            match berth_sys::signal::kill(pid, signal) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(source) => {
                    return Err(CgroupError::Signal {
                        pid,
                        signal,
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Removes the cgroup's directories if nothing is in them (no process, no child cgroup):
    /// one `rmdir` each, no waiting. Returns whether all of them are gone; if not, what is left
    /// is for [`CgroupManager::kill_all`] and [`CgroupManager::destroy`].
    pub fn remove_if_empty(&self) -> bool {
        self.dirs()
            .iter()
            .all(|dir| match std::fs::remove_dir(dir) {
                Ok(()) => true,
                Err(e) => e.kind() == io::ErrorKind::NotFound,
            })
    }

    /// Removes every directory of the cgroup, child cgroups first, in every hierarchy.
    /// A busy directory (processes still exiting) is retried for a few seconds; a directory
    /// that is already gone is fine. All directories are tried; the first error is returned.
    pub fn destroy(&self) -> Result<()> {
        let mut first_error = None;
        for dir in self.dirs() {
            let tree = match walk(&dir) {
                Ok(tree) => tree,
                Err(err) => {
                    first_error.get_or_insert(err);
                    continue;
                }
            };
            for sub in tree.iter().rev() {
                if let Err(err) = rmdir_retrying(sub) {
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Resource usage, shaped like `runc events --stats` (see [`crate::stats`]).
    pub fn stats(&self) -> Result<Stats> {
        read_stats(self)
    }

    /// On a unified (pure v2) host, the cgroup directory opened `O_DIRECTORY|O_CLOEXEC`, for
    /// `clone3(CLONE_INTO_CGROUP)`. `None` on v1 and hybrid hosts (the child must then be
    /// added with [`CgroupManager::add_pid`]) or when the directory cannot be opened (logged).
    pub fn dir_fd_for_clone(&self) -> Option<OwnedFd> {
        if self.hierarchy != Hierarchy::V2 {
            return None;
        }
        let dir = self.unified.as_ref()?;
        let flags = rustix::fs::OFlags::RDONLY
            | rustix::fs::OFlags::DIRECTORY
            | rustix::fs::OFlags::CLOEXEC;
        match rustix::fs::open(dir, flags, rustix::fs::Mode::empty()) {
            Ok(fd) => Some(fd),
            Err(err) => {
                log::warn!("open {}: {err}", dir.display());
                None
            }
        }
    }

    /// The ids of the cgroup v2 device programs attached to the cgroup2 directory.
    pub fn device_programs(&self) -> Result<Vec<u32>> {
        match &self.unified {
            Some(dir) => v2::device_programs(dir),
            None => Ok(Vec::new()),
        }
    }

    fn stat_sources(&self) -> StatSources<'_> {
        let unified_offers = |name: &str| -> Option<&Path> {
            let dir = self.unified.as_deref()?;
            let available = v2::controllers(dir).ok()?;
            available.iter().any(|c| c == name).then_some(dir)
        };
        let source = |v1_name: &str, v2_name: &str| -> Source<'_> {
            match self.v1.get(v1_name) {
                Some(dir) => Source::V1(dir),
                None => match unified_offers(v2_name) {
                    Some(dir) => Source::V2(dir),
                    None => Source::None,
                },
            }
        };
        let mut sources = StatSources {
            cpu: source("cpu", "cpu"),
            cpuacct: self
                .v1
                .get("cpuacct")
                .map_or(Source::None, |d| Source::V1(d)),
            cpuset: source("cpuset", "cpuset"),
            memory: source("memory", "memory"),
            pids: source("pids", "pids"),
            blkio: source("blkio", "io"),
            hugetlb: source("hugetlb", "hugetlb"),
        };
        // cpu.stat (usage) exists in every cgroup2 directory, controller or not.
        if self.hierarchy == Hierarchy::V2 {
            if let (Source::None, Some(dir)) = (sources.cpu, self.unified.as_deref()) {
                sources.cpu = Source::V2(dir);
            }
        }
        sources
    }
}

/// Reads the statistics of `manager`'s cgroup (see [`crate::stats`]).
pub fn read_stats(manager: &CgroupManager) -> Result<Stats> {
    read_stats_from(&manager.stat_sources())
}

fn strip_root(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// A new v1 cpuset has empty `cpuset.cpus`/`cpuset.mems`, and no process can join it until
/// they are set: copy them from the parent at every level from the mount down, as runc does.
fn init_cpuset(mount: &Path, dir: &Path) -> Result<()> {
    let Ok(rel) = dir.strip_prefix(mount) else {
        return Ok(());
    };
    let mut parent = mount.to_path_buf();
    for component in rel.components() {
        let child = parent.join(component);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let current = read(&child.join(file))?;
            if current.trim().is_empty() {
                let from_parent = read(&parent.join(file))?;
                let value = from_parent.trim();
                if !value.is_empty() {
                    write(&child, file, value, None)?;
                }
            }
        }
        parent = child;
    }
    Ok(())
}

/// Polls `check` (done?, state) with a short back-off until it says done or `FREEZE_TIMEOUT`.
fn wait_for(
    path: PathBuf,
    what: &'static str,
    mut check: impl FnMut() -> Result<(bool, String)>,
) -> Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(500);
    loop {
        let (done, state) = check()?;
        if done {
            return Ok(());
        }
        if start.elapsed() > FREEZE_TIMEOUT {
            return Err(CgroupError::Timeout {
                what,
                path,
                millis: FREEZE_TIMEOUT.as_millis() as u64,
                state,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

fn freeze_v1(dir: &Path) -> Result<()> {
    let file = dir.join("freezer.state");
    let mut attempts = 0u32;
    let result = wait_for(file.clone(), "freeze", || {
        attempts += 1;
        // A freeze can stall in FREEZING when a task keeps being woken; thawing and freezing
        // again now and then gets it moving (runc does the same).
        if attempts % 100 == 0 {
            write(dir, "freezer.state", "THAWED", None)?;
        }
        write(dir, "freezer.state", "FROZEN", None)?;
        let state = read(&file)?.trim().to_string();
        Ok((state == "FROZEN", state))
    });
    if result.is_err() {
        let _ = write(dir, "freezer.state", "THAWED", None);
    }
    result
}

fn set_v2_frozen(dir: &Path, frozen: bool) -> Result<()> {
    write(dir, "cgroup.freeze", if frozen { "1" } else { "0" }, None)?;
    let result = wait_for(
        dir.join("cgroup.events"),
        if frozen { "freeze" } else { "thaw" },
        || {
            let is = v2::event_is_set(dir, "frozen")?;
            Ok((is == frozen, format!("frozen {}", u8::from(is))))
        },
    );
    if result.is_err() && frozen {
        let _ = write(dir, "cgroup.freeze", "0", None);
    }
    result
}

fn rmdir_retrying(dir: &Path) -> Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < RMDIR_TIMEOUT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(CgroupError::Rmdir {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
}
