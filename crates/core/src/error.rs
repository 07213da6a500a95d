//! The runtime's error type. Every variant names what it was doing and to what (an id, a path,
//! a field), so the one line the CLI prints is enough to act on. Texts keep runc's phrases
//! ("container does not exist", "container not running", …) because podman and containerd match
//! on them.

use std::io;
use std::path::PathBuf;

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config or a process document was refused.
    #[error(transparent)]
    Spec(#[from] berth_spec::SpecError),
    /// The container id is malformed.
    #[error("invalid container ID format: {id:?}: {reason}")]
    InvalidId {
        /// The id given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No container has this id.
    #[error("container does not exist: {0}")]
    NotExist(String),
    /// The id is taken.
    #[error("container with given ID already exists: {0}")]
    Exist(String),
    /// The operation needs a running container.
    #[error("container not running: {0}")]
    NotRunning(String),
    /// The container is in the wrong state for the operation.
    #[error("{0}")]
    State(String),
    /// A usage error (flags that do not go together).
    #[error("{0}")]
    Usage(String),
    /// A syscall or file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What berth was doing.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A syscall without a path failed.
    #[error("{op}: {source}")]
    Sys {
        /// What berth was doing.
        op: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The pty layer failed.
    #[error(transparent)]
    Tty(#[from] berth_tty::TtyError),
    /// The cgroup layer failed.
    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::CgroupError),
    /// The container's init reported a failure while setting up.
    #[error("{0}")]
    Init(String),
    /// A hook failed.
    #[error("{0}")]
    Hook(String),
    /// The state directory holds something berth cannot read.
    #[error("corrupt state for container {id}: {message}")]
    CorruptState {
        /// The container id.
        id: String,
        /// What was wrong.
        message: String,
    },
}

impl Error {
    /// An [`Error::Io`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Sys`].
    pub fn sys(op: impl Into<String>, source: impl Into<io::Error>) -> Self {
        Error::Sys {
            op: op.into(),
            source: source.into(),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
