//! Descriptor operations on fixed fd numbers (the standard streams, preserved fds), which
//! `OwnedFd` cannot express without `unsafe`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// Duplicates `fd` onto the number `target` (`dup3`, without `O_CLOEXEC`), replacing whatever
/// was open there. Used to install the standard streams of a process about to exec.
pub fn dup_onto(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    if fd.as_raw_fd() == target {
        return crate::process::clear_cloexec(fd);
    }
    // SAFETY: dup3 only manipulates the descriptor table; `fd` is open for the whole call and
    // `target` is a descriptor number the caller means to replace.
    let ret = unsafe { libc::dup3(fd.as_raw_fd(), target, 0) };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Borrows a descriptor by number, when the caller knows it is open (the standard streams,
/// fds handed down with `--preserve-fds`). Returns `None` when it is not open.
pub fn borrow_raw(fd: RawFd) -> Option<BorrowedFd<'static>> {
    // SAFETY: fcntl(F_GETFD) only queries the descriptor.
    let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1;
    // SAFETY: the descriptor is open (checked just above); callers use the borrow only while they
    // do not close that number, which holds for the process-lifetime fds this is meant for.
    open.then(|| unsafe { BorrowedFd::borrow_raw(fd) })
}

/// Closes the descriptor number `fd` in this process.
///
/// For a freshly cloned child that inherited an fd whose owner (an `OwnedFd` in the parent's
/// copy of memory) will never run its destructor, because the child ends in exec or `_exit`:
/// berth's init closes its copy of the state-directory lock this way, so the lock is released
/// when berth's `create` returns even though the init lives on.
pub fn close_inherited(fd: RawFd) {
    // SAFETY: closing a descriptor number has no memory-safety effect; the caller guarantees no
    // live owner in this process will use or close it again (see above).
    unsafe { libc::close(fd) };
}
