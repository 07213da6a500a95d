//! `start`: releases a created container's init.
//!
//! The init of a created container waits in `accept` on a unix socket in its state directory
//! (runc's exec fifo, as a socket so that a failed exec can be reported back): `start` connects,
//! writes one byte, and reads until end of file. The init's end is close-on-exec, so an empty
//! read means the user's program is running; anything read is the init's error. The socket file
//! existing is what makes the status "created".

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::error::{Error, Result};
use crate::store::{ContainerDir, Store};

fn start_addr(dir: &ContainerDir) -> Result<SocketAddrUnix> {
    // Through the directory fd, so a long --root or id never hits the 108-byte sun_path limit.
    let path = format!("/proc/self/fd/{}/start", dir.dir_fd().as_raw_fd());
    SocketAddrUnix::new(path.as_str()).map_err(|e| Error::sys("start socket address", e))
}

/// Binds and listens on the start socket (before the init is cloned, which inherits it).
pub(crate) fn listen(dir: &ContainerDir) -> Result<OwnedFd> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| Error::sys("socket", e))?;
    rustix::net::bind(&fd, &start_addr(dir)?)
        .map_err(|e| Error::io("bind", dir.start_socket(), e.into()))?;
    rustix::net::listen(&fd, 4).map_err(|e| Error::io("listen", dir.start_socket(), e.into()))?;
    Ok(fd)
}

/// Connects to a created container's init and lets it exec. Returns the init's error if the
/// exec failed.
pub(crate) fn release(dir: &ContainerDir) -> Result<()> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| Error::sys("socket", e))?;
    rustix::net::connect(&fd, &start_addr(dir)?).map_err(|e| {
        Error::io(
            "connect to the container's init",
            dir.start_socket(),
            e.into(),
        )
    })?;
    let mut conn = std::fs::File::from(fd);
    conn.write_all(b"1")
        .map_err(|e| Error::io("signal start", dir.start_socket(), e))?;
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    let _ = std::fs::remove_file(dir.start_socket());
    if reply.is_empty() {
        Ok(())
    } else {
        Err(Error::Init(reply))
    }
}

/// `berth start ID`.
pub(crate) fn start(store: &Store, id: &str) -> Result<()> {
    let dir = store.open(id)?;
    let record = dir.load()?;
    let status = crate::container::status(&dir, &record);
    match status {
        berth_spec::Status::Created => {}
        berth_spec::Status::Stopped => {
            return Err(Error::State(
                "cannot start a container that has stopped".into(),
            ));
        }
        berth_spec::Status::Running => {
            return Err(Error::State(format!(
                "cannot start an already running container: {id}"
            )));
        }
        other => {
            return Err(Error::State(format!(
                "cannot start a container in the {other} state: {id}"
            )));
        }
    }
    if let Err(e) = release(&dir) {
        if matches!(e, Error::Init(_)) {
            // The init failed after start (a startContainer hook, the exec) and is exiting:
            // runtime-spec says stop the container and go on with its destruction.
            let _ = berth_sys::signal::kill(record.pid, libc::SIGKILL);
            let _ = super::manage::destroy(dir, &record);
        }
        return Err(e);
    }
    let hooks = record.spec.hooks.clone().unwrap_or_default();
    if !hooks.poststart.is_empty() {
        let state =
            crate::hooks::state_json(id, "running", record.pid, &record.bundle, &record.spec);
        crate::hooks::run_all_warn("poststart", &hooks.poststart, &state);
    }
    let _ = dir.dir_fd().as_fd();
    Ok(())
}
