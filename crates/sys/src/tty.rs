//! Terminal ioctls rustix does not wrap: `TIOCGPTN`, `TIOCSCTTY` with the steal flag, `TIOCSTI`,
//! `TIOCLINUX`, the raw `termios2` bytes (`TCGETS2`), and a pre-exec hook making a child a
//! session leader with a controlling terminal.
//!
//! `TIOCSTI` and `TIOCLINUX` exist for tests that check a container cannot inject input into a
//! terminal it does not own; berth itself never calls them.

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::process::Command;

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `ioctl(TIOCGPTN)`: the index `N` of a pty master's peer (`/dev/pts/N`).
pub fn tiocgptn(master: BorrowedFd<'_>) -> io::Result<u32> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through the pointer, which is valid for writes.
    check(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTN,
            &mut n as *mut libc::c_uint,
        )
    })?;
    Ok(n)
}

/// `ioctl(TIOCSCTTY, steal)`: makes the terminal the caller's controlling terminal. The caller
/// must be a session leader without one; `steal` (root only) takes it from another session.
pub fn tiocsctty(fd: BorrowedFd<'_>, steal: bool) -> io::Result<()> {
    tiocsctty_raw(fd.as_raw_fd(), steal)
}

fn tiocsctty_raw(fd: RawFd, steal: bool) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument, no pointer.
    check(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, libc::c_int::from(steal)) }).map(|_| ())
}

/// `ioctl(TIOCSTI, &byte)`: pushes one byte into the terminal's input queue as if typed.
/// The kernel refuses it (EPERM/EIO) unless the terminal is the caller's controlling terminal
/// and `dev.tty.legacy_tiocsti` allows it, or the caller has `CAP_SYS_ADMIN`.
pub fn tiocsti(fd: BorrowedFd<'_>, byte: u8) -> io::Result<()> {
    let b = byte as libc::c_char;
    // SAFETY: TIOCSTI reads one char through the pointer, which is valid for reads.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSTI, &b as *const libc::c_char) })
        .map(|_| ())
}

/// `ioctl(TIOCLINUX, buf)` with `buf = [subcode, payload…]`: the Linux virtual-console
/// multiplexer (selection, paste, shift state…). Returns the first byte of the buffer after the
/// call, where the "get" subcodes store their answer. `payload` is at most 62 bytes.
pub fn tioclinux(fd: BorrowedFd<'_>, subcode: u8, payload: &[u8]) -> io::Result<u8> {
    // The kernel reads at most 1 + sizeof(struct tiocl_selection) = 11 bytes and writes 1.
    let mut buf = [0u8; 64];
    if payload.len() > buf.len() - 2 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    buf[0] = subcode;
    buf[1..=payload.len()].copy_from_slice(payload);
    // SAFETY: `buf` is 64 writable bytes, more than any TIOCLINUX subcode reads or writes.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCLINUX, buf.as_mut_ptr()) })?;
    Ok(buf[0])
}

/// Size of the kernel's `struct termios2`.
pub const TERMIOS2_SIZE: usize = size_of::<libc::termios2>();

/// The terminal's settings as the kernel's raw `struct termios2` bytes (`TCGETS2`): two terminals
/// (or one terminal at two times) have identical settings exactly when these bytes are equal,
/// which is what `stty -g` comparisons approximate.
pub fn termios_bytes(fd: BorrowedFd<'_>) -> io::Result<[u8; TERMIOS2_SIZE]> {
    let mut t = MaybeUninit::<libc::termios2>::zeroed();
    // SAFETY: TCGETS2 fills a struct termios2 through the pointer, which is valid for writes of
    // that size (and already zero-initialised, padding included).
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCGETS2, t.as_mut_ptr()) })?;
    let mut out = [0u8; TERMIOS2_SIZE];
    // SAFETY: `t` is fully initialised (zeroed, then written by the kernel) and `out` has exactly
    // size_of::<termios2>() bytes; the regions do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(t.as_ptr().cast::<u8>(), out.as_mut_ptr(), TERMIOS2_SIZE);
    }
    Ok(out)
}

/// Makes `cmd`'s child a session leader (`setsid`) whose controlling terminal is its fd
/// `child_fd` (usually 0, the pty peer given as stdin), just before exec.
pub fn command_set_ctty(cmd: &mut Command, child_fd: RawFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only calls setsid and ioctl,
    // which are async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(move || {
            check(libc::setsid())?;
            tiocsctty_raw(child_fd, false)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::pty::OpenptFlags;
    use rustix::termios::{OptionalActions, OutputModes, tcgetattr, tcsetattr};
    use std::os::fd::{AsFd, OwnedFd};

    fn pty() -> (OwnedFd, OwnedFd) {
        let master =
            rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
                .unwrap();
        rustix::pty::unlockpt(&master).unwrap();
        let peer = rustix::pty::ioctl_tiocgptpeer(
            &master,
            OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
        )
        .unwrap();
        (master, peer)
    }

    #[test]
    fn tiocgptn_matches_ptsname() {
        let (master, _peer) = pty();
        let n = tiocgptn(master.as_fd()).unwrap();
        let name = rustix::pty::ptsname(&master, Vec::new()).unwrap();
        assert_eq!(name.to_str().unwrap(), format!("/dev/pts/{n}"));
        let null = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(
            tiocgptn(null.as_fd()).unwrap_err().raw_os_error(),
            Some(libc::ENOTTY)
        );
    }

    #[test]
    fn termios_bytes_track_every_change() {
        let (_master, peer) = pty();
        let a = termios_bytes(peer.as_fd()).unwrap();
        assert_eq!(a.len(), TERMIOS2_SIZE);
        let mut t = tcgetattr(&peer).unwrap();
        t.output_modes.remove(OutputModes::ONLCR);
        tcsetattr(&peer, OptionalActions::Now, &t).unwrap();
        let b = termios_bytes(peer.as_fd()).unwrap();
        assert_ne!(a, b);
        t.output_modes.insert(OutputModes::ONLCR);
        tcsetattr(&peer, OptionalActions::Now, &t).unwrap();
        assert_eq!(termios_bytes(peer.as_fd()).unwrap(), a);
    }

    #[test]
    fn tiocsti_needs_the_ctty_or_cap_sys_admin() {
        let (_master, peer) = pty();
        let mut t = tcgetattr(&peer).unwrap();
        t.make_raw();
        tcsetattr(&peer, OptionalActions::Now, &t).unwrap();
        let admin = rustix::thread::capabilities(None)
            .map(|c| {
                c.effective
                    .contains(rustix::thread::CapabilitySet::SYS_ADMIN)
            })
            .unwrap_or(false);
        match tiocsti(peer.as_fd(), b'x') {
            Ok(()) => {
                assert!(
                    admin,
                    "TIOCSTI into a tty that is not our ctty worked without CAP_SYS_ADMIN"
                );
                let mut b = [0u8; 4];
                assert_eq!(rustix::io::read(&peer, &mut b).unwrap(), 1);
                assert_eq!(b[0], b'x');
            }
            Err(e) => {
                assert!(!admin, "TIOCSTI failed with CAP_SYS_ADMIN: {e}");
                assert!(
                    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EIO)),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn tioclinux_is_refused_on_a_pty() {
        let (_master, peer) = pty();
        // TIOCL_GETSHIFTSTATE (6) only exists on virtual consoles.
        assert!(tioclinux(peer.as_fd(), 6, &[]).is_err());
        assert_eq!(
            tioclinux(peer.as_fd(), 6, &[0; 63])
                .unwrap_err()
                .raw_os_error(),
            Some(libc::EINVAL)
        );
    }
}
