//! The monitor's error type: every variant names the operation and what it was applied to.

use std::io;

/// Errors of the monitor library.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// A system call failed.
    #[error("{op} {target}: {source}")]
    Os {
        /// What was attempted (`open`, `bind`, `epoll_ctl`, …).
        op: &'static str,
        /// On what (a path, a socket, a pid).
        target: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A pty or console-socket operation failed.
    #[error("{context}: {source}")]
    Tty {
        /// What the monitor was doing.
        context: String,
        /// The terminal library's error.
        #[source]
        source: berth_tty::TtyError,
    },
    /// A bad option or configuration value; the message names it.
    #[error("{0}")]
    Usage(String),
    /// The container runtime failed; the message includes its own last error line.
    #[error("{0}")]
    Runtime(String),
}

impl MonitorError {
    /// An [`MonitorError::Os`] from anything convertible to an `io::Error` (rustix's `Errno`).
    pub fn sys(
        op: &'static str,
        target: impl std::fmt::Display,
        source: impl Into<io::Error>,
    ) -> MonitorError {
        MonitorError::Os {
            op,
            target: target.to_string(),
            source: source.into(),
        }
    }

    /// A [`MonitorError::Tty`].
    pub fn tty(context: impl Into<String>, source: berth_tty::TtyError) -> MonitorError {
        MonitorError::Tty {
            context: context.into(),
            source,
        }
    }
}
