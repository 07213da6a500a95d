//! Extra terminals for the init (LXC's `lxc.tty.max`): `/dev/tty1` … `/dev/ttyN` in the
//! container, each the peer of a pty whose master leaves over the console socket, so the
//! console monitor can serve `berth console ID -t N`.
//!
//! Only when the annotation [`TTY_MAX`] is set (and only for the init, never for `exec`): a
//! runc-compatible console-socket receiver that did not ask for ttys sees exactly runc's one
//! message. With N ≥ 1, after the console's master, N more messages follow on the same
//! connection, each in runc's wire format with the payload `/dev/ttyK`.
//!
//! Order, per tty K (after the console is set up, so after `pivot_root`):
//! 1. allocate a pair in the container's devpts with the same checks as the console
//!    ([`berth_tty::PtyPair::open_in`]);
//! 2. own the peer by the process's uid, mode 0620 (group stays the devpts `gid=`);
//! 3. bind the peer onto `/dev/ttyK` fd to fd (the target is created as an empty file in the
//!    container's own `/dev`, never followed through a symlink);
//! 4. send the master, then close both fds here: nobody in the container holds the master, and
//!    the peer is reopened through `/dev/ttyK` by whatever runs a getty or shell on it.

use std::os::fd::AsFd;
use std::path::Path;

use berth_spec::Spec;
use berth_tty::{ConsoleSocket, PtyPair};
use rustix::fs::Mode;

use crate::error::{Error, Result};

/// The annotation giving the number of extra ttys (0 to [`MAX_TTYS`]).
pub(crate) const TTY_MAX: &str = "io.github.berth.tty.max";
/// The most extra ttys a container may ask for.
pub(crate) const MAX_TTYS: u32 = 63;

/// How many extra ttys `spec` asks for; an error naming the annotation if the value is bad.
pub(crate) fn count(spec: &Spec) -> Result<u32> {
    let Some(v) = spec.annotations.get(TTY_MAX) else {
        return Ok(0);
    };
    match v.parse::<u32>() {
        Ok(n) if n <= MAX_TTYS => Ok(n),
        _ => Err(Error::Usage(format!(
            "annotations[{TTY_MAX:?}]: {v:?} is not a number from 0 to {MAX_TTYS}"
        ))),
    }
}

/// Allocates, mounts and sends the extra ttys (see the module docs). A no-op without the
/// annotation.
pub(crate) fn setup(spec: &Spec, socket: &ConsoleSocket, uid: u32) -> Result<()> {
    let n = count(spec)?;
    if n == 0 {
        return Ok(());
    }
    let (root, devpts) = super::console::open_root_and_devpts()?;
    let devpts =
        devpts.map_err(|e| Error::Init(format!("{TTY_MAX}: no devpts at /dev/pts: {e}")))?;
    for k in 1..=n {
        let name = format!("/dev/tty{k}");
        let pair = PtyPair::open_in(devpts.as_fd())?;
        rustix::fs::fchown(&pair.peer, Some(rustix::fs::Uid::from_raw(uid)), None)
            .map_err(|e| Error::io("chown", &name, e.into()))?;
        rustix::fs::fchmod(&pair.peer, Mode::from_raw_mode(0o620))
            .map_err(|e| Error::io("chmod", &name, e.into()))?;
        let target = super::paths::ensure_file(root.as_fd(), Path::new(&name))
            .map_err(|e| Error::io("create", &name, e))?;
        super::rootfs::attach_bind(
            pair.peer.as_fd(),
            target.as_fd(),
            false,
            &Default::default(),
        )
        .map_err(|e| Error::io("bind a tty onto", &name, e))?;
        socket.send_master(&name, pair.master.as_fd())?;
    }
    Ok(())
}
