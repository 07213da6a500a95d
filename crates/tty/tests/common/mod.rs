//! Shared test utilities: timed reads and process waits, so a broken relay fails a test instead
//! of hanging the suite.
#![allow(dead_code)]

use std::os::fd::{AsFd, BorrowedFd};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;

/// The relay helper binary built from this crate.
pub const HELPER: &str = env!("CARGO_BIN_EXE_berth-tty-run");

/// Reads from `fd` until EOF (or EIO, for a pty master) or until `deadline`; panics on timeout.
pub fn read_to_end(fd: BorrowedFd<'_>, timeout: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    loop {
        if !wait_readable(fd, deadline) {
            panic!(
                "timed out after {timeout:?} reading; got {} bytes so far",
                out.len()
            );
        }
        let mut buf = [0u8; 65536];
        match rustix::io::read(fd, &mut buf) {
            Ok(0) | Err(Errno::IO) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::INTR) | Err(Errno::AGAIN) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Reads from `fd` into `acc` until `acc` contains `needle`; panics on timeout or EOF.
pub fn read_until(fd: BorrowedFd<'_>, acc: &mut Vec<u8>, needle: &[u8], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !contains(acc, needle) {
        if !wait_readable(fd, deadline) {
            panic!(
                "timed out waiting for {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(acc)
            );
        }
        let mut buf = [0u8; 4096];
        match rustix::io::read(fd, &mut buf) {
            Ok(0) | Err(Errno::IO) => panic!(
                "EOF while waiting for {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(acc)
            ),
            Ok(n) => acc.extend_from_slice(&buf[..n]),
            Err(Errno::INTR) | Err(Errno::AGAIN) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Whether `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Polls `fd` for input until `deadline`; false on timeout.
pub fn wait_readable(fd: BorrowedFd<'_>, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ts = rustix::time::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(Errno::INTR) => {}
            Err(e) => panic!("poll: {e}"),
        }
    }
}

/// Waits for `child` until `timeout`; kills it and panics on timeout.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} did not exit within {timeout:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A child that is killed and reaped if the test panics before waiting for it.
pub struct Reaper(pub Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The children of `pid` (its main thread's), from /proc.
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Polls `cond` every 5 ms until it holds; panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `sig` to `pid`.
pub fn kill(pid: u32, sig: i32) {
    berth_sys::signal::kill(pid as i32, sig).expect("kill");
}

/// The raw termios2 bytes of a terminal.
pub fn termios_bytes(fd: impl AsFd) -> Vec<u8> {
    berth_sys::tty::termios_bytes(fd.as_fd())
        .expect("TCGETS2")
        .to_vec()
}
