//! Raw mode for the user's terminal while a foreground container runs, and ONLCR control.
//!
//! [`RawGuard::enter`]:
//! 1. if the terminal is the caller's controlling terminal and the caller is not in its
//!    foreground process group (a background job), returns `Ok(None)` after a warning: changing
//!    the settings would raise `SIGTTOU` and stop the process;
//! 2. saves the settings (`tcgetattr`, the whole `termios2`);
//! 3. applies `cfmakeraw` but keeps the saved output flags (OPOST, ONLCR…), like
//!    containerd/console, so `\n` written by berth itself still moves to column 0 (the
//!    foreground relay may then take the `\n` → `\r\n` translation over for its lifetime, see
//!    "Newline translation" in [`crate::relay`]; the guard restores the saved flags either way);
//! 4. restores the saved settings byte-identically on [`RawGuard::restore`], on drop, and — once
//!    [`RawGuard::install_panic_restore`] has been called — from the panic hook, before the
//!    panic message is printed (needed with `panic = "abort"`, harmless with unwinding: restoring
//!    twice sets the same bytes twice).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, Once};

use rustix::io::Errno;
use rustix::termios::{self, OptionalActions, OutputModes, Termios};

use crate::error::TtyError;
use crate::winsize::fd_name;

/// Terminals currently in raw mode, for the panic hook: (guard id, dup of the fd, saved settings).
static ACTIVE: Mutex<Vec<(u64, OwnedFd, Termios)>> = Mutex::new(Vec::new());
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
static HOOK: Once = Once::new();

/// Keeps a terminal in raw mode; restores the saved settings when dropped.
#[derive(Debug)]
pub struct RawGuard {
    id: u64,
    fd: OwnedFd,
    saved: Termios,
    restored: bool,
}

impl RawGuard {
    /// Saves `fd`'s settings and makes it raw (keeping the output flags). `Ok(None)` when the
    /// caller is a background job of that terminal (see the module docs).
    pub fn enter(fd: BorrowedFd<'_>) -> Result<Option<RawGuard>, TtyError> {
        match termios::tcgetpgrp(fd) {
            Ok(fg) if fg != rustix::process::getpgrp() => {
                log::warn!(
                    "not in the foreground process group of the terminal (foreground {}, ours {}): leaving it in its current mode",
                    fg.as_raw_nonzero(),
                    rustix::process::getpgrp().as_raw_nonzero()
                );
                return Ok(None);
            }
            // ENOTTY: not our controlling terminal, so tcsetattr cannot raise SIGTTOU.
            // OPNOTSUPP: rustix's answer for "no foreground group" (0).
            Ok(_) | Err(Errno::NOTTY) | Err(Errno::OPNOTSUPP) => {}
            Err(e) => return Err(TtyError::os("tcgetpgrp", fd_name(fd), e)),
        }
        let saved =
            termios::tcgetattr(fd).map_err(|e| TtyError::os("tcgetattr", fd_name(fd), e))?;
        let mut raw = saved.clone();
        raw.make_raw();
        raw.output_modes = saved.output_modes;
        let dup = rustix::io::fcntl_dupfd_cloexec(fd, 0)
            .map_err(|e| TtyError::os("dup", fd_name(fd), e))?;
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        {
            let dup2 = rustix::io::fcntl_dupfd_cloexec(fd, 0)
                .map_err(|e| TtyError::os("dup", fd_name(fd), e))?;
            lock_active().push((id, dup2, saved.clone()));
        }
        let guard = RawGuard {
            id,
            fd: dup,
            saved,
            restored: false,
        };
        termios::tcsetattr(&guard.fd, OptionalActions::Now, &raw)
            .map_err(|e| TtyError::os("tcsetattr", fd_name(fd), e))?;
        Ok(Some(guard))
    }

    /// Restores the saved settings now (idempotent; drop then does nothing).
    pub fn restore(&mut self) -> Result<(), TtyError> {
        if self.restored {
            return Ok(());
        }
        self.restored = true;
        lock_active().retain(|(id, _, _)| *id != self.id);
        termios::tcsetattr(&self.fd, OptionalActions::Now, &self.saved)
            .map_err(|e| TtyError::os("tcsetattr", fd_name(self.fd.as_fd()), e))
    }

    /// The settings saved by [`RawGuard::enter`].
    pub fn saved(&self) -> &Termios {
        &self.saved
    }

    /// Installs (once per process) a panic hook that restores every terminal still held by a
    /// `RawGuard`, then runs the previous hook.
    pub fn install_panic_restore() {
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore_all_for_panic();
                previous(info);
            }));
        });
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            log::warn!("restoring terminal settings: {e}");
        }
    }
}

fn lock_active() -> std::sync::MutexGuard<'static, Vec<(u64, OwnedFd, Termios)>> {
    ACTIVE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Restores every active guard's terminal. Uses `try_lock`: a panic raised while this thread
/// holds the registry lock must not deadlock (unwinding then restores through `Drop`).
fn restore_all_for_panic() {
    let active = match ACTIVE.try_lock() {
        Ok(a) => a,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    for (_, fd, saved) in active.iter() {
        let _ = termios::tcsetattr(fd, OptionalActions::Now, saved);
    }
}

/// The settings a [`RawGuard`] of this process saved for the terminal `fd` refers to (the same
/// character device), if one is active: the terminal is raw now and will be restored to them.
pub(crate) fn guarded_settings(fd: BorrowedFd<'_>) -> Option<Termios> {
    let rdev = tty_rdev(fd)?;
    lock_active()
        .iter()
        .find(|(_, gfd, _)| tty_rdev(gfd.as_fd()) == Some(rdev))
        .map(|(_, _, saved)| saved.clone())
}

/// The device number of a character device (a terminal), else `None`.
pub(crate) fn tty_rdev(fd: BorrowedFd<'_>) -> Option<u64> {
    let st = rustix::fs::fstat(fd).ok()?;
    (st.st_mode & libc::S_IFMT == libc::S_IFCHR).then_some(st.st_rdev)
}

/// Whether the output processing `t` asks for is exactly "`\n` becomes `\r\n`" (OPOST and
/// ONLCR, none of OCRNL, ONOCR, ONLRET, OLCUC, OFILL, and no tab expansion): what a program
/// can do itself, byte for byte, instead of the kernel. Delay bits are ignored by Linux.
pub(crate) fn output_is_plain_onlcr(t: &Termios) -> bool {
    let o = t.output_modes;
    let tabs = o & OutputModes::TABDLY;
    o.contains(OutputModes::OPOST | OutputModes::ONLCR)
        && !o.intersects(
            OutputModes::OCRNL
                | OutputModes::ONOCR
                | OutputModes::ONLRET
                | OutputModes::OLCUC
                | OutputModes::OFILL,
        )
        && tabs != OutputModes::TAB3
}

/// The user's terminal for a foreground container with a terminal.
#[derive(Debug)]
pub enum HostConsole {
    /// berth's stderr, stdout or stdin (the first that is a terminal).
    Stdio(BorrowedFd<'static>),
    /// `/dev/tty` (the controlling terminal), when no stdio stream is a terminal.
    DevTty(OwnedFd),
}

impl AsFd for HostConsole {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            HostConsole::Stdio(fd) => *fd,
            HostConsole::DevTty(fd) => fd.as_fd(),
        }
    }
}

/// Finds the host console as runc does: the first of stderr, stdout, stdin that is a terminal,
/// else `/dev/tty` (opened `O_RDWR|O_NOCTTY|O_CLOEXEC`). Without one the error reads like runc's:
/// `open /dev/tty: no such device or address`.
pub fn host_console() -> Result<HostConsole, TtyError> {
    let stdio = [
        rustix::stdio::stderr(),
        rustix::stdio::stdout(),
        rustix::stdio::stdin(),
    ];
    if let Some(fd) = stdio.into_iter().find(|fd| termios::isatty(fd)) {
        return Ok(HostConsole::Stdio(fd));
    }
    rustix::fs::open(
        "/dev/tty",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map(HostConsole::DevTty)
    .map_err(|e| TtyError::NoHostConsole { source: e.into() })
}

/// Sets (`on`) or clears ONLCR (`\n` → `\r\n` output translation) on a terminal.
pub fn set_onlcr(fd: BorrowedFd<'_>, on: bool) -> Result<(), TtyError> {
    let mut t = termios::tcgetattr(fd).map_err(|e| TtyError::os("tcgetattr", fd_name(fd), e))?;
    t.output_modes.set(OutputModes::ONLCR, on);
    termios::tcsetattr(fd, OptionalActions::Now, &t)
        .map_err(|e| TtyError::os("tcsetattr", fd_name(fd), e))
}

/// Applies `cfmakeraw` (output processing included) to a terminal — for a container-side pty
/// that must pass bytes through unchanged.
pub fn make_raw(fd: BorrowedFd<'_>) -> Result<(), TtyError> {
    let mut t = termios::tcgetattr(fd).map_err(|e| TtyError::os("tcgetattr", fd_name(fd), e))?;
    t.make_raw();
    termios::tcsetattr(fd, OptionalActions::Now, &t)
        .map_err(|e| TtyError::os("tcsetattr", fd_name(fd), e))
}
