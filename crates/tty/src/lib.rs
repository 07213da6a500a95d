//! Pseudo-terminals for berth: allocation inside a given devpts with runc's identity checks
//! ([`pty`]), window sizes ([`winsize`]), raw mode with guaranteed restore ([`raw`]), runc's
//! `--console-socket` wire protocol ([`console_socket`]), the single-threaded epoll relay used
//! by foreground `run`/`exec` ([`relay`]), private non-blocking reopens of handed-over
//! terminals ([`reopen`]) and the adaptive-polling epoll wait it and the monitor
//! sleep in ([`wait`]).
//!
//! This crate knows nothing of containers: it takes file descriptors (a devpts directory, a
//! master, stdio) and a pid. Every fd it opens is close-on-exec, and every terminal open uses
//! `O_NOCTTY`, so nothing here ever gives berth a controlling terminal.

pub mod console_socket;
pub mod error;
pub mod pty;
pub mod raw;
pub mod relay;
pub mod reopen;
pub mod wait;
pub mod winsize;

pub use console_socket::{ConsoleListener, ConsoleSocket, recv_master};
pub use error::TtyError;
pub use pty::{MASTER_NAME, PtyPair};
pub use raw::{HostConsole, RawGuard, host_console, set_onlcr};
pub use relay::{ExitStatus, Relay};
pub use reopen::{can_reopen_private, reopen_private};
pub use wait::PollingWait;
pub use winsize::Winsize;
