//! The crate's error type. Every variant names what failed (operation, path or fd) so a message
//! printed on its own tells the user what to look at.

use std::io;
use std::path::PathBuf;

/// Errors from pty allocation, terminal settings, the console socket and the relay.
#[derive(Debug, thiserror::Error)]
pub enum TtyError {
    /// A system call failed: `op` is what was attempted, `target` what it was attempted on.
    #[error("{op} {target}: {source}")]
    Os {
        /// The operation, e.g. `open`, `ioctl(TIOCGPTPEER)`, `tcsetattr`.
        op: &'static str,
        /// The object: a path, `fd 5`, `devpts ptmx`…
        target: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// `ptmx` in the given directory is not on a devpts filesystem.
    #[error("devpts ptmx: not a devpts filesystem (magic {magic:#x})")]
    PtmxNotDevpts {
        /// The filesystem magic found by `fstatfs`.
        magic: u64,
    },
    /// `ptmx` is on devpts but is not its inode 2.
    #[error("devpts ptmx: wrong inode {ino} (the devpts ptmx is inode 2)")]
    PtmxWrongInode {
        /// The inode number found.
        ino: u64,
    },
    /// `ptmx` is not the character device 5:2.
    #[error("devpts ptmx: not the ptmx device (found {kind} {major}:{minor}, want char 5:2)")]
    PtmxWrongDevice {
        /// File type found (`char device`, `regular file`, `fifo`…).
        kind: &'static str,
        /// Major number found.
        major: u32,
        /// Minor number found.
        minor: u32,
    },
    /// Reopening the verified `O_PATH` handle gave a different file (a race or a tampered /proc).
    #[error("devpts ptmx: reopened file {found} is not the verified ptmx {expected}")]
    PtmxReopenMismatch {
        /// `dev:ino` of the verified handle.
        expected: String,
        /// `dev:ino` of the reopened file.
        found: String,
    },
    /// The fd given as a pty master is not one.
    #[error("pty master: fd is not a pty master (found {kind} {major}:{minor}, want char 5:2)")]
    NotAMaster {
        /// File type found.
        kind: &'static str,
        /// Major number found.
        major: u32,
        /// Minor number found.
        minor: u32,
    },
    /// The peer from `TIOCGPTPEER` is not on a devpts filesystem.
    #[error("pty peer {index}: not on a devpts filesystem (magic {magic:#x})")]
    PeerNotDevpts {
        /// The index from `TIOCGPTN`.
        index: u32,
        /// The filesystem magic found.
        magic: u64,
    },
    /// The peer is not the char device 136..=143:`index`.
    #[error(
        "pty peer {index}: not the expected device (found {kind} {major}:{minor}, want char 136-143:{index})"
    )]
    PeerWrongDevice {
        /// The index from `TIOCGPTN`.
        index: u32,
        /// File type found.
        kind: &'static str,
        /// Major number found.
        major: u32,
        /// Minor number found.
        minor: u32,
    },
    /// The peer lives in a different devpts instance than the ptmx it came from.
    #[error(
        "pty peer {index}: in another devpts instance (dev {found:#x}, ptmx dev {expected:#x})"
    )]
    PeerOtherInstance {
        /// The index from `TIOCGPTN`.
        index: u32,
        /// `st_dev` of the ptmx.
        expected: u64,
        /// `st_dev` of the peer.
        found: u64,
    },

    /// No stdio stream is a terminal and `/dev/tty` cannot be opened (runc's wording).
    #[error("open /dev/tty: {}", go_errno_text(source))]
    NoHostConsole {
        /// Why `/dev/tty` could not be opened (ENXIO without a controlling terminal).
        #[source]
        source: io::Error,
    },

    /// A console size dimension does not fit a `u16`.
    #[error("console size {dimension} {value} is out of range (at most 65535)")]
    SizeTooLarge {
        /// `height` or `width`.
        dimension: &'static str,
        /// The value given.
        value: u64,
    },

    /// The console socket path does not exist.
    #[error("console socket {path}: does not exist")]
    SocketMissing {
        /// The path given.
        path: PathBuf,
    },
    /// The console socket path exists but is something else.
    #[error("console socket {path}: is not a socket (it is a {kind})")]
    NotASocket {
        /// The path given.
        path: PathBuf,
        /// What it is (`regular file`, `directory`…).
        kind: &'static str,
    },
    /// Nothing listens on the socket.
    #[error("console socket {path}: connection refused (nothing is listening on it)")]
    SocketRefused {
        /// The path given.
        path: PathBuf,
    },
    /// The listener is a datagram or seqpacket socket.
    #[error("console socket {path}: is not a stream socket (EPROTOTYPE)")]
    NotStreamSocket {
        /// The path given.
        path: PathBuf,
    },
    /// The path does not fit `sockaddr_un`.
    #[error(
        "console socket {path}: path is {len} bytes, longer than the 108-byte sun_path limit (107 usable)"
    )]
    SocketPathTooLong {
        /// The path given.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// A path with a NUL byte or an empty path.
    #[error("console socket {path:?}: invalid path")]
    SocketPathInvalid {
        /// The path given.
        path: PathBuf,
    },
    /// The name to send is empty (a zero-byte stream message cannot carry the fd).
    #[error("console socket: the name sent with the master must not be empty")]
    EmptyName,
    /// `sendmsg` sent only part of the name.
    #[error("console socket: short send ({sent} of {len} bytes)")]
    ShortSend {
        /// Bytes sent.
        sent: usize,
        /// Bytes wanted.
        len: usize,
    },
    /// The peer closed the connection without sending anything.
    #[error("console socket: connection closed before the master was sent")]
    SocketClosed,
    /// The message did not carry exactly one SCM_RIGHTS with exactly one fd.
    #[error(
        "console socket: expected exactly one fd in one SCM_RIGHTS message, got {fds} fd(s) in {messages} message(s)"
    )]
    BadFdCount {
        /// SCM_RIGHTS messages received.
        messages: usize,
        /// File descriptors received (all closed).
        fds: usize,
    },
    /// The control data was truncated (`MSG_CTRUNC`): fds were lost.
    #[error("console socket: control message truncated (MSG_CTRUNC), file descriptors were lost")]
    ControlTruncated,
    /// The name was 4096 bytes or longer.
    #[error("console socket: name too long (at least {len} bytes, limit 4095)")]
    NameTooLong {
        /// Bytes received.
        len: usize,
    },
    /// The name was not UTF-8.
    #[error("console socket: name is not valid UTF-8")]
    NameNotUtf8,
    /// A test-only failpoint fired (see `relay`'s module docs).
    #[error("relay: test failpoint {name} is set")]
    Failpoint {
        /// The environment variable that is set.
        name: &'static str,
    },
}

impl TtyError {
    /// A [`TtyError::Os`] from anything convertible to an `io::Error` (rustix's `Errno` too).
    pub fn os(
        op: &'static str,
        target: impl Into<String>,
        source: impl Into<io::Error>,
    ) -> TtyError {
        TtyError::Os {
            op,
            target: target.into(),
            source: source.into(),
        }
    }

    /// The OS error number, for [`TtyError::Os`].
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            TtyError::Os { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// An errno's text the way Go prints it (lower case, no "(os error N)").
fn go_errno_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A short name for a file type from `st_mode`.
pub(crate) fn file_kind(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "regular file",
        libc::S_IFDIR => "directory",
        libc::S_IFCHR => "char device",
        libc::S_IFBLK => "block device",
        libc::S_IFIFO => "fifo",
        libc::S_IFLNK => "symlink",
        libc::S_IFSOCK => "socket",
        _ => "unknown file type",
    }
}
