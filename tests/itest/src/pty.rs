//! Ptys the test allocates itself, and I/O on any pty master.
//!
//! Every terminal test drives a pty pair it owns: [`Pty::new`] opens the host's `/dev/ptmx`
//! (close-on-exec, `O_NOCTTY`) and the peer with `TIOCGPTPEER`; [`Pty::spawn`] runs a command with
//! the peer as stdin/stdout/stderr and as its controlling terminal (`setsid` + `TIOCSCTTY` in
//! `pre_exec`), then closes the test's own copy of the peer so that reading the master ends with
//! EIO exactly when the last user of the terminal is gone. No test skips for lack of a tty.
//!
//! [`MasterIo`] gives the same read/write/termios helpers for a [`Pty`] and for a master received
//! over a console socket.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;

use crate::cmd::{Cmd, Input, Running, Sink};

/// Arranges for `c` to start in a new session whose controlling terminal is the first of fds
/// 0, 1, 2 that is a terminal.
pub(crate) fn set_controlling_tty_on_exec(c: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only makes raw syscalls
    // (setsid, ioctl) through rustix, which are async-signal-safe: no allocation, no locks.
    // The fds 0..=2 it borrows are the child's stdio, already set up by std at that point.
    unsafe {
        c.pre_exec(|| {
            rustix::process::setsid().map_err(std::io::Error::from)?;
            for raw in 0..=2 {
                let fd = BorrowedFd::borrow_raw(raw);
                if rustix::process::ioctl_tiocsctty(fd).is_ok() {
                    break;
                }
            }
            Ok(())
        });
    }
}

/// Read/write helpers for a pty master (a [`Pty`] or a received console).
pub trait MasterIo {
    /// The master fd.
    fn master_fd(&self) -> BorrowedFd<'_>;

    /// Writes all of `bytes` to the master (input for the terminal's reader).
    fn write_all(&self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match rustix::io::write(self.master_fd(), bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => panic!("write to pty master: {e}"),
            }
        }
    }

    /// Reads until EOF/EIO (every peer closed). Panics (showing what was read) after `timeout`.
    #[track_caller]
    fn read_until_eof(&self, timeout: Duration) -> Vec<u8> {
        let mut got = Vec::new();
        if !read_master(self.master_fd(), &mut got, timeout, |_| false) {
            panic!(
                "watchdog: pty master did not reach EOF/EIO within {timeout:?}; read so far: {:?}",
                String::from_utf8_lossy(&got)
            );
        }
        got
    }

    /// Reads until the data read so far contains `needle`; panics after `timeout` (or at EOF
    /// without it).
    #[track_caller]
    fn read_until(&self, needle: &[u8], timeout: Duration) -> Vec<u8> {
        let mut got = Vec::new();
        let found = |g: &[u8]| g.windows(needle.len().max(1)).any(|w| w == needle);
        read_master(self.master_fd(), &mut got, timeout, found);
        assert!(
            found(&got),
            "pty master: {:?} not seen within {timeout:?}; read: {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&got)
        );
        got
    }

    /// Reads whatever arrives during `d` (stops early at EOF/EIO).
    fn read_for(&self, d: Duration) -> Vec<u8> {
        let mut got = Vec::new();
        read_master(self.master_fd(), &mut got, d, |_| false);
        got
    }

    /// Sets the window size.
    fn set_size(&self, rows: u16, cols: u16) {
        let ws = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(self.master_fd(), ws).expect("TIOCSWINSZ");
    }

    /// The window size (rows, cols).
    fn size(&self) -> (u16, u16) {
        let ws = rustix::termios::tcgetwinsize(self.master_fd()).expect("TIOCGWINSZ");
        (ws.ws_row, ws.ws_col)
    }

    /// The terminal's settings as a comparable string, like `stty -g` (flags and control
    /// characters; the same before and after means byte-identical termios).
    fn termios(&self) -> String {
        let t = rustix::termios::tcgetattr(self.master_fd()).expect("TCGETS");
        format!(
            "{:x}:{:x}:{:x}:{:x}:{:?}:{}:{}",
            t.input_modes.bits(),
            t.output_modes.bits(),
            t.control_modes.bits(),
            t.local_modes.bits(),
            t.special_codes,
            t.input_speed(),
            t.output_speed()
        )
    }

    /// Whether ONLCR (`\n` → `\r\n`) is on.
    fn onlcr(&self) -> bool {
        let t = rustix::termios::tcgetattr(self.master_fd()).expect("TCGETS");
        t.output_modes.contains(rustix::termios::OutputModes::ONLCR)
    }
}

/// Reads into `got` until EOF/EIO (returns true), `stop(got)` (returns true) or the deadline
/// (returns false).
fn read_master(
    fd: BorrowedFd<'_>,
    got: &mut Vec<u8>,
    timeout: Duration,
    stop: impl Fn(&[u8]) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 16384];
    loop {
        if stop(got) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        if !crate::cmd::readable_within(fd, deadline - now) {
            continue;
        }
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(_) => return true, // EIO: the terminal hung up
        }
    }
}

/// A pty pair allocated from the host's `/dev/ptmx` by the test.
#[derive(Debug)]
pub struct Pty {
    _host: crate::hostlock::HostGuard,
    master: OwnedFd,
    peer: Option<OwnedFd>,
    peer_path: PathBuf,
}

impl Default for Pty {
    fn default() -> Self {
        Self::new()
    }
}

impl Pty {
    /// Allocates a pair (24x80).
    pub fn new() -> Self {
        let host = crate::hostlock::shared();
        let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
        let master = rustix::pty::openpt(flags).expect("open /dev/ptmx");
        rustix::pty::grantpt(&master).expect("grantpt");
        rustix::pty::unlockpt(&master).expect("unlockpt");
        let name = rustix::pty::ptsname(&master, Vec::new()).expect("ptsname");
        let peer = rustix::pty::ioctl_tiocgptpeer(&master, flags).expect("TIOCGPTPEER");
        let pty = Self {
            _host: host,
            master,
            peer: Some(peer),
            peer_path: PathBuf::from(name.to_string_lossy().into_owned()),
        };
        pty.set_size(24, 80);
        pty
    }

    /// The peer's path (`/dev/pts/N` of the host).
    pub fn peer_path(&self) -> &Path {
        &self.peer_path
    }

    /// A new fd for the peer; panics after [`Pty::close_peer`].
    pub fn peer(&self) -> OwnedFd {
        self.peer
            .as_ref()
            .expect("peer already closed")
            .try_clone()
            .expect("dup peer")
    }

    /// Drops the test's own peer fd (so the master sees EIO once the children are gone).
    pub fn close_peer(&mut self) {
        self.peer = None;
    }

    /// `cmd` with the peer as stdin, stdout and stderr, in a new session with this pty as its
    /// controlling terminal.
    pub fn attach(&self, cmd: Cmd) -> Cmd {
        cmd.stdin(Input::Fd(self.peer()))
            .stdout(Sink::Fd(self.peer()))
            .stderr(Sink::Fd(self.peer()))
            .controlling_tty(true)
    }

    /// Spawns `cmd` attached to the pty (see [`Pty::attach`]) and closes the test's peer fd.
    pub fn spawn(&mut self, cmd: Cmd) -> Running {
        let r = self.attach(cmd).spawn();
        self.close_peer();
        r
    }
}

impl MasterIo for Pty {
    fn master_fd(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }
}

impl MasterIo for berth_helper::ReceivedConsole {
    fn master_fd(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }
}

/// Drops every run of `\r` directly before a `\n` (undoing ONLCR when comparing terminal
/// output with what was written, including `\r\r\n` from two ONLCR terminals in a row).
pub fn strip_cr(bytes: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b == b'\n' {
            while out.last() == Some(&b'\r') {
                out.pop();
            }
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn strip_cr_folds_onlcr() {
        assert_eq!(super::strip_cr(b"a\r\nb\r\r\nc\rd\n"), b"a\nb\nc\rd\n");
    }
}
