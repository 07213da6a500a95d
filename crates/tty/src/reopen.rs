//! Private, non-blocking descriptions of a terminal or pipe another process handed over.
//!
//! A relay or monitor that serves a user's terminal needs it non-blocking, but `O_NONBLOCK`
//! belongs to the open file description, which the user's shell shares: set in place, the
//! shell would find its terminal non-blocking after berth left. Reopening the fd through
//! `/proc/self/fd/N` gives a description of our own on the same tty or pipe.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, Mode, OFlags};

/// Pty masters: `/dev/ptmx`/`/dev/pts/ptmx` (5:2) and the BSD/legacy master majors.
pub fn is_master_rdev(rdev: u64) -> bool {
    let (major, minor) = (fs::major(rdev), fs::minor(rdev));
    (major == 5 && minor == 2) || major == 2 || (128..=135).contains(&major)
}

/// Opens a private description of a tty (not a master, not a 5:x alias) or a pipe/FIFO through
/// `/proc/self/fd/N`, non-blocking, so that `O_NONBLOCK` never reaches the description other
/// processes share (a user's shell on the same terminal); `None` if that is not possible
/// (a socket, a regular file, a master, or the open failed).
pub fn reopen_private(fd: BorrowedFd<'_>, write: bool) -> Option<OwnedFd> {
    let st = fs::fstat(fd).ok()?;
    if !eligible(fd, &st) {
        return None;
    }
    let access = if write {
        OFlags::WRONLY
    } else {
        OFlags::RDONLY
    };
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let new = fs::open(
        path.as_str(),
        access | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let now = fs::fstat(&new).ok()?;
    (now.st_dev == st.st_dev && now.st_ino == st.st_ino && now.st_rdev == st.st_rdev).then_some(new)
}

/// Whether [`reopen_private`] can work on `fd`: a pipe/FIFO, or a tty that is not a master and
/// not a 5:x alias (`/dev/tty`, `/dev/console`, `/dev/ptmx`).
pub fn can_reopen_private(fd: BorrowedFd<'_>) -> bool {
    fs::fstat(fd).is_ok_and(|st| eligible(fd, &st))
}

fn eligible(fd: BorrowedFd<'_>, st: &fs::Stat) -> bool {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => true,
        libc::S_IFCHR => {
            fs::major(st.st_rdev) != 5 && !is_master_rdev(st.st_rdev) && rustix::termios::isatty(fd)
        }
        _ => false,
    }
}
