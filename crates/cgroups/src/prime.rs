//! Starting the wait of a cgroup v1 migration early.
//!
//! Moving a process between v1 cgroups (a write to `cgroup.procs`) takes the kernel's global
//! `cgroup_threadgroup_rwsem` for writing. When nobody has done so for a while, that first
//! takes an RCU grace period: 6-10 ms on the 2-core development VM, measured, more than all of
//! berth's other work for `run` of `/bin/true`. Writers that follow within a grace period of the
//! last one do not wait (the semaphore's `rcu_sync` is still in its writer state).
//!
//! So `create`, `run` and `exec` call [`prime_migration`] first thing (before berth's sealing
//! re-exec, whose second image finds the child and does not make another): a silent child (see
//! [`berth_sys::process::CloneOptions::silent_exit`]) moves itself into the cgroup it is
//! already in, which changes nothing but starts the grace period while berth loads the config
//! and makes the container's cgroup; when berth moves the init, the wait is over or shorter.
//! The kernel holds `cgroup_mutex` while such a write waits, so cgroup `mkdir`s (berth's own
//! for the container) wait for the same grace period; that is one reason `create` makes a v1
//! container's cgroup after the clone, while the init sets up its mounts.
//! On a cgroup2-only host berth starts the init in its cgroup with `CLONE_INTO_CGROUP`, no
//! migration happens, and nothing is done. Every failure is ignored: this only saves time.
//! The parent collects the child with [`berth_sys::process::reap_silent_children`].

/// Where cgroup file systems are mounted on every host berth supports.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Starts the grace period a v1 cgroup migration waits for, in a child process, and returns
/// at once. Does nothing on a cgroup2-only host, or when the process already has such a child
/// (berth calls this before its sealing re-exec, and again after it, which then finds the
/// first image's child; a berth installed read-only does not re-exec and starts it then).
pub fn prime_migration() {
    if berth_sys::process::has_silent_children() {
        return;
    }
    // f_type's integer type differs between architectures, hence the casts.
    #[allow(clippy::unnecessary_cast)]
    match rustix::fs::statfs(CGROUP_ROOT) {
        Ok(st) if st.f_type as i64 == libc::CGROUP2_SUPER_MAGIC as i64 => return,
        Ok(_) => {}
        Err(_) => return,
    }
    let options = berth_sys::process::CloneOptions {
        silent_exit: true,
        ..Default::default()
    };
    if let Ok(berth_sys::process::Forked::Child) = berth_sys::process::clone3(0, &options) {
        // The child holds none of berth's descriptors (a caller waiting for end of file on
        // berth's output must not wait for it) and ends without unwinding.
        let _ = berth_sys::process::close_fds_from(0);
        let _ = move_into_own_cgroup();
        berth_sys::process::exit_immediately(0);
    }
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
