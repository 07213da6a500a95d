//! The lifecycle verbs, one module each: berth's side of every `berth VERB`.

mod cgroup;
pub mod create;
pub mod exec;
pub mod manage;
pub mod run;
pub mod start;
pub mod update;

use berth_spec::{State, Status};

use crate::store::{ContainerDir, Record};

/// A container's status, computed as runc does: a dead (or reused) pid is `stopped`; a pending
/// start socket is `created`; a frozen cgroup is `paused`; otherwise `running`.
pub fn status(dir: &ContainerDir, record: &Record) -> Status {
    let alive = crate::procfs::is_alive(record.pid, record.pid_start);
    if record.creating {
        return if record.pid == 0 || alive {
            Status::Creating
        } else {
            Status::Stopped
        };
    }
    if !alive {
        return Status::Stopped;
    }
    if dir.start_socket().exists() {
        return Status::Created;
    }
    if record
        .cgroup
        .as_ref()
        .is_some_and(|c| c.is_frozen().unwrap_or(false))
    {
        return Status::Paused;
    }
    Status::Running
}

/// runc's state document for a container.
pub fn state_of(dir: &ContainerDir, record: &Record) -> State {
    let status = status(dir, record);
    State {
        oci_version: berth_spec::OCI_VERSION.to_string(),
        id: record.id.clone(),
        pid: if status == Status::Stopped {
            0
        } else {
            record.pid
        },
        status,
        bundle: record.bundle.clone(),
        rootfs: record.rootfs.clone(),
        created: record.created.clone(),
        annotations: record.spec.annotations.clone(),
        owner: record.owner.clone(),
    }
}
