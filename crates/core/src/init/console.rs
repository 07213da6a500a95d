//! The process's terminal, set up inside the container after `pivot_root` and before the user's
//! program runs (runc's `setupConsole`, youki's `tty.rs`, hardened after CVE-2025-52565):
//!
//! 1. open the container's `/dev/pts` (no symlinks) and allocate the pair there
//!    ([`berth_tty::PtyPair::open_in`]: ptmx verified by magic, inode and rdev; peer only through
//!    `TIOCGPTPEER`);
//! 2. size it (`consoleSize`, else the caller's terminal size) and, for berth's own foreground
//!    relay, clear ONLCR — all before anyone else sees the master;
//! 3. for the init: bind the peer onto `/dev/console`, fd to fd;
//! 4. send the master to whoever holds it (console socket or berth's relay), then close it here,
//!    so no process in the container ever holds the master;
//! 5. own the peer by the process's uid (group stays the devpts `gid=`), `dup3` it onto 0/1/2
//!    and make it the controlling terminal (`TIOCSCTTY`, failure is an error). `setsid` was
//!    done at the very start of the init.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use berth_tty::{ConsoleSocket, PtyPair, Winsize};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::paths::open_in_root;
use crate::error::{Error, Result};

/// How the console is to be set up.
pub(crate) struct ConsolePlan<'a> {
    /// Where the master goes.
    pub socket: &'a ConsoleSocket,
    /// The size to apply (never 0x0 when the caller knows one).
    pub size: Option<Winsize>,
    /// Clear ONLCR (berth relays the output itself).
    pub clear_onlcr: bool,
    /// Bind the peer onto `/dev/console` (the init, not exec'd processes).
    pub mount_console: bool,
    /// The uid to own the peer.
    pub uid: u32,
}

/// The container's root and its `/dev/pts` (we are in that root), opened `O_PATH`, the
/// latter without following any link. The outer error is opening `/`; the inner one, for the
/// caller to word, opening `/dev/pts`.
pub(crate) fn open_root_and_devpts() -> Result<(OwnedFd, rustix::io::Result<OwnedFd>)> {
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open /", e))?;
    let devpts = rustix::fs::openat2(
        root.as_fd(),
        "dev/pts",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::BENEATH,
    );
    Ok((root, devpts))
}

/// Steps 1–5. Returns nothing: afterwards fds 0/1/2 are the peer.
pub(crate) fn setup(plan: &ConsolePlan<'_>) -> Result<()> {
    let (root, devpts) = open_root_and_devpts()?;
    let devpts = devpts.map_err(|e| {
        Error::Init(format!(
            "terminal: no devpts directory at /dev/pts in the container: {e}"
        ))
    })?;
    let pair = PtyPair::open_in(devpts.as_fd())?;
    if let Some(size) = plan.size.filter(|s| !s.is_zero()) {
        size.set(pair.master.as_fd())?;
    }
    if plan.clear_onlcr {
        berth_tty::set_onlcr(pair.master.as_fd(), false)?;
    }
    if plan.mount_console {
        mount_console(root.as_fd(), pair.peer.as_fd())?;
    }
    plan.socket
        .send_master("/dev/pts/ptmx", pair.master.as_fd())?;
    let PtyPair { master, peer, .. } = pair;
    drop(master);
    rustix::fs::fchown(&peer, Some(rustix::fs::Uid::from_raw(plan.uid)), None)
        .map_err(|e| Error::sys("chown the terminal to the process's user", e))?;
    dup_stdio(peer)?;
    rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())
        .map_err(|e| Error::sys("make the terminal the controlling terminal (TIOCSCTTY)", e))?;
    Ok(())
}

/// Makes `fd` the process's stdin, stdout and stderr.
pub(crate) fn dup_stdio(fd: OwnedFd) -> Result<()> {
    for target in 0..3 {
        berth_sys::fd::dup_onto(fd.as_fd(), target)
            .map_err(|e| Error::sys(format!("dup the terminal onto fd {target}"), e))?;
    }
    Ok(())
}

/// Binds the peer onto `/dev/console`, fd to fd, never following or removing anything:
/// - an existing non-directory (the image's regular file, device node, FIFO, a host `/dev`'s
///   real console when `/dev` is bound from the host) is covered by the bind mount in place,
///   opened `O_PATH | O_NOFOLLOW` so a FIFO cannot block and nothing is truncated (runc's
///   CVE-2025-52565 fix; unlinking would delete a host inode when `/dev` is the host's, R-13);
/// - a missing one is created as an empty regular file in the container's `/dev`;
/// - a symlink or a directory there is refused (clear error, R-06): following a link could
///   land the terminal on any file, and replacing it would modify what may be a host `/dev`.
fn mount_console(root: BorrowedFd<'_>, peer: BorrowedFd<'_>) -> Result<()> {
    let dev = open_in_root(root, Path::new("/dev"), ResolveFlags::NO_SYMLINKS)
        .map_err(|e| Error::io("open", "/dev", e))?;
    match rustix::fs::mknodat(
        dev.as_fd(),
        "console",
        rustix::fs::FileType::RegularFile,
        Mode::from_raw_mode(0o600),
        0,
    ) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(Error::io("create", "/dev/console", e.into())),
    }
    let target = rustix::fs::openat(
        dev.as_fd(),
        "console",
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open", "/dev/console", e.into()))?;
    let st = rustix::fs::fstat(&target).map_err(|e| Error::io("stat", "/dev/console", e.into()))?;
    match rustix::fs::FileType::from_raw_mode(st.st_mode) {
        rustix::fs::FileType::Symlink => {
            return Err(Error::Init(
                "terminal: /dev/console in the container is a symlink; berth neither follows nor replaces it".into(),
            ));
        }
        rustix::fs::FileType::Directory => {
            return Err(Error::Init(
                "terminal: /dev/console in the container is a directory; berth cannot bind the terminal onto it".into(),
            ));
        }
        _ => {}
    }
    super::rootfs::attach_bind(peer, target.as_fd(), false, &Default::default())
        .map_err(|e| Error::io("bind the terminal onto", "/dev/console", e))?;
    Ok(())
}
