//! Starting the wait of a cgroup v1 migration early.
//!
//! Moving a process between v1 cgroups (a write to `cgroup.procs`) takes the kernel's global
//! `cgroup_threadgroup_rwsem` for writing. When nobody has done so for a while, that first
//! takes an RCU grace period: 6-10 ms on the 2-core development VM, measured, more than all of
//! berth's other work for `run` of `/bin/true`. Writers that follow within a grace period of the
//! last one do not wait (the semaphore's `rcu_sync` is still in its writer state).
//!
//! So `create`, `run` and `exec` fork a helper child first thing (before berth's sealing
//! re-exec, whose second image finds the child and does not make another), which runs
//! [`migration_primer`]'s job: it moves itself into the cgroup it is
//! already in, which changes nothing but starts the grace period while berth loads the config
//! and makes the container's cgroup; when berth moves the init, the wait is over or shorter.
//! The kernel holds `cgroup_mutex` while such a write waits, so cgroup `mkdir`s (berth's own
//! for the container) wait for the same grace period; that is one reason `create` makes a v1
//! container's cgroup after the clone, while the init sets up its mounts.
//! On a cgroup2-only host berth starts the init in its cgroup with `CLONE_INTO_CGROUP`, no
//! migration happens, and nothing is done. Every failure is ignored: this only saves time.
//! The child is [`berth_sys::process::Helper`], which also closes fds for berth's sealing;
//! the parent collects it with [`berth_sys::process::reap_silent_children`].

/// Where cgroup file systems are mounted on every host berth supports.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The job that starts the grace period a v1 cgroup migration waits for, for berth's helper
/// child ([`berth_sys::process::Helper`]) to run first thing; `None` on a cgroup2-only host
/// (or when `/sys/fs/cgroup` cannot be read), where there is nothing to start.
pub fn migration_primer() -> Option<fn()> {
    // f_type's integer type differs between architectures, hence the casts.
    #[allow(clippy::unnecessary_cast)]
    match rustix::fs::statfs(CGROUP_ROOT) {
        Ok(st) if st.f_type as i64 == libc::CGROUP2_SUPER_MAGIC as i64 => None,
        Ok(_) => Some(prime_in_this_process),
        Err(_) => None,
    }
}

/// Moves the calling process (the helper child) into its own cgroup; failures are ignored.
fn prime_in_this_process() {
    let _ = move_into_own_cgroup();
}

/// Writes the calling process into the cgroup it is in, in its first v1 controller hierarchy.
fn move_into_own_cgroup() -> std::io::Result<()> {
    let text = berth_sys::procfs::read_to_string("/proc/self/cgroup")?;
    let target = own_v1_procs_file(&text).ok_or(std::io::ErrorKind::NotFound)?;
    std::fs::write(target, "0")
}

/// The `cgroup.procs` of the first v1 controller hierarchy in `/proc/self/cgroup`'s text
/// (`ID:CONTROLLERS:PATH` lines; named hierarchies such as `name=systemd` and the cgroup2 line
/// are skipped).
fn own_v1_procs_file(proc_self_cgroup: &str) -> Option<String> {
    proc_self_cgroup.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let first = controllers.split(',').next()?;
        if first.is_empty() || first.starts_with("name=") || !path.starts_with('/') {
            return None;
        }
        let dir = if controllers.contains(',') {
            controllers
        } else {
            first
        };
        Some(format!("{CGROUP_ROOT}/{dir}{path}/cgroup.procs").replace("//", "/"))
    })
}

#[cfg(test)]
mod tests {
    use super::own_v1_procs_file;

    #[test]
    fn first_controller_hierarchy_is_chosen() {
        let text = "12:name=systemd:/user.slice\n11:cpu,cpuacct:/a\n10:pids:/b\n0::/c\n";
        assert_eq!(
            own_v1_procs_file(text).as_deref(),
            Some("/sys/fs/cgroup/cpu,cpuacct/a/cgroup.procs")
        );
        assert_eq!(
            own_v1_procs_file("8:pids:/\n").as_deref(),
            Some("/sys/fs/cgroup/pids/cgroup.procs")
        );
    }

    #[test]
    fn cgroup2_and_named_hierarchies_only_give_nothing() {
        assert_eq!(own_v1_procs_file("0::/user.slice\n"), None);
        assert_eq!(own_v1_procs_file("1:name=systemd:/\n0::/\n"), None);
        assert_eq!(own_v1_procs_file(""), None);
    }
}
