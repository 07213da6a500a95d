//! `state`, `list`, `kill`, `delete`, `ps`, `pause`, `resume`.

use std::time::{Duration, Instant};

use berth_spec::{State, Status};

use crate::error::{Error, Result};
use crate::store::{ContainerDir, Record, Store};

/// `berth state ID`.
pub fn state(store: &Store, id: &str) -> Result<State> {
    let dir = store.open(id)?;
    let record = dir.load()?;
    Ok(super::state_of(&dir, &record))
}

/// `berth list`: every container's state, sorted by id. Containers removed meanwhile are
/// skipped.
pub fn list(store: &Store) -> Result<Vec<State>> {
    let mut out = Vec::new();
    for id in store.ids()? {
        match store
            .open(&id)
            .and_then(|dir| dir.load().map(|r| super::state_of(&dir, &r)))
        {
            Ok(s) => out.push(s),
            Err(Error::NotExist(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// `berth kill ID SIGNAL [--all]`.
pub fn kill(store: &Store, id: &str, signal: i32, all: bool) -> Result<()> {
    let dir = store.open(id)?;
    let record = dir.load()?;
    let status = super::status(&dir, &record);
    if all && status == Status::Stopped {
        // As runc: `kill --all` of a stopped container signals whatever is left in its cgroup
        // and succeeds (containerd's shim sends it while tearing a task down).
        if let Some(cg) = &record.cgroup {
            if let Err(e) = cg.kill_all(signal) {
                log::debug!("kill --all {id}: stopped container's cgroup: {e}");
            }
        }
        return Ok(());
    }
    if matches!(status, Status::Stopped | Status::Creating) {
        return Err(Error::NotRunning(id.to_string()));
    }
    if all {
        if let Some(cg) = &record.cgroup {
            cg.kill_all(signal)?;
            return Ok(());
        }
    }
    berth_sys::signal::kill(record.pid, signal).map_err(|e| {
        Error::sys(
            format!("kill {} (pid {}) with signal {signal}", id, record.pid),
            e,
        )
    })
}

/// Waits until `pid` (with this start time) is gone, up to `timeout`.
fn wait_gone(pid: i32, start: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while crate::procfs::is_alive(pid, start) {
        // Reap it if it happens to be our child.
        let _ = rustix::process::waitpid(
            rustix::process::Pid::from_raw(pid),
            rustix::process::WaitOptions::NOHANG,
        );
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Removes what a stopped container leaves: poststop hooks, cgroup, state directory.
pub(crate) fn destroy(dir: ContainerDir, record: &Record) -> Result<()> {
    if let Some(cg) = &record.cgroup {
        if cg.is_shared() {
            // Made in a cgroup other processes were in (runc 1.1 allows it): they are not
            // this container's to kill, and the cgroup stays while they are in it.
            let others = cg.pids().unwrap_or_default().len();
            if others > 0 {
                log::debug!(
                    "shared cgroup {} kept: {others} process(es) in it",
                    cg.path()
                );
            } else if let Err(e) = cg.destroy() {
                log::warn!("shared cgroup {} left in place: {e}", cg.path());
            }
        } else if !cg.remove_if_empty() {
            // Anything the init left behind in its cgroup goes with it.
            if !cg.pids().unwrap_or_default().is_empty() {
                let _ = cg.kill_all(libc::SIGKILL);
            }
            cg.destroy()?;
        }
    }
    let hooks = record.spec.hooks.clone().unwrap_or_default();
    if !hooks.poststop.is_empty() {
        let state =
            crate::hooks::state_json(&record.id, "stopped", 0, &record.bundle, &record.spec);
        crate::hooks::run_all_warn("poststop", &hooks.poststop, &state);
    }
    dir.remove()
}

/// `berth delete ID [--force]`.
pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    let dir = match store.open(id) {
        Ok(dir) => dir,
        // As runc: `delete --force` of an unknown container succeeds. podman and containerd's
        // shim call it to clean up after a failed create, and log its error otherwise.
        Err(Error::NotExist(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let record = match dir.load() {
        Ok(r) => r,
        Err(Error::CorruptState { .. }) if force => return dir.remove(),
        Err(e) => return Err(e),
    };
    let status = super::status(&dir, &record);
    match status {
        Status::Stopped => {}
        Status::Created | Status::Creating => kill_and_wait(&record)?,
        Status::Running | Status::Paused => {
            if !force {
                return Err(Error::State(format!(
                    "cannot delete container {id} that is not stopped: {status}"
                )));
            }
            kill_and_wait(&record)?;
        }
    }
    destroy(dir, &record)
}

fn kill_and_wait(record: &Record) -> Result<()> {
    if let Some(cg) = record.cgroup.as_ref().filter(|cg| !cg.is_shared()) {
        cg.kill_all(libc::SIGKILL)?;
        // A paused container's processes (cgroup v1 freezer) die only once thawed; runc thaws
        // after killing too (`delete --force` of a paused container).
        if cg.is_frozen().unwrap_or(false) {
            cg.thaw()?;
        }
    }
    let _ = berth_sys::signal::kill(record.pid, libc::SIGKILL);
    if !wait_gone(record.pid, record.pid_start, Duration::from_secs(10)) {
        return Err(Error::State(format!(
            "container {}: init (pid {}) did not exit after SIGKILL",
            record.id, record.pid
        )));
    }
    Ok(())
}

/// `berth ps ID`: the pids in the container's cgroup. For a stopped container that is what is
/// left there, usually nothing, and not an error (runc's ps.bats "ps after the container
/// stopped").
pub fn pids(store: &Store, id: &str) -> Result<Vec<i32>> {
    let dir = store.open(id)?;
    let record = dir.load()?;
    if super::status(&dir, &record) == Status::Stopped {
        return Ok(record
            .cgroup
            .as_ref()
            .and_then(|cg| cg.pids().ok())
            .unwrap_or_default());
    }
    match &record.cgroup {
        Some(cg) => Ok(cg.pids()?),
        None => Ok(vec![record.pid]),
    }
}

/// `berth pause ID` / `berth resume ID`.
pub fn set_paused(store: &Store, id: &str, paused: bool) -> Result<()> {
    let dir = store.open(id)?;
    let record = dir.load()?;
    let status = super::status(&dir, &record);
    let cg = record
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::State(format!("container {id} has no cgroup to freeze")))?;
    match (paused, status) {
        (true, Status::Running) => Ok(cg.freeze()?),
        (false, Status::Paused) => Ok(cg.thaw()?),
        (true, Status::Paused) => Err(Error::State("container paused".into())),
        (false, Status::Running | Status::Created) => {
            Err(Error::State("container not paused".into()))
        }
        _ => Err(Error::NotRunning(id.to_string())),
    }
}
