//! The one error type of this crate. Every variant names what it was acting on: the cgroup path,
//! the file and the value written, or the `config.json` field whose value is refused.
//!
//! OS errors are printed the way runc prints them (`invalid argument`, not
//! `Invalid argument (os error 22)`), so messages stay comparable across runtimes.

use std::io;
use std::path::PathBuf;

/// Why a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// `cgroupsPath` (or the container id used to build it) cannot be used.
    #[error("cgroupsPath {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A systemd-style `slice:prefix:name` path.
    #[error(
        "cgroupsPath {path:?}: systemd cgroup paths need --systemd-cgroup, which berth does not support yet"
    )]
    SystemdPath {
        /// The path as given.
        path: String,
    },
    /// No cgroup filesystem is mounted where berth looks for one.
    #[error("no cgroup filesystem found in {source_file}: {reason}")]
    NotMounted {
        /// Where the mounts were read from (normally `/proc/self/mountinfo`).
        source_file: PathBuf,
        /// What was missing.
        reason: String,
    },
    /// A file or directory could not be read.
    #[error("read {}: {}", path.display(), os_text(source))]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A cgroup file rejected a value.
    #[error("{}write {value} to {}: {}", field_prefix(field), path.display(), os_text(source))]
    Write {
        /// The `config.json` field the value came from, if any.
        field: Option<String>,
        /// The cgroup file.
        path: PathBuf,
        /// The value, exactly as written.
        value: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `exec --cgroup`: the process could not be put into the sub-cgroup.
    #[error("--cgroup: adding pid {pid} to {}: {}", path.display(), os_text(source))]
    AddPid {
        /// The process.
        pid: i32,
        /// The `cgroup.procs` file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A cgroup directory could not be made.
    #[error("mkdir {}: {}", path.display(), os_text(source))]
    Mkdir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A cgroup directory could not be removed.
    #[error("rmdir {}: {}", path.display(), os_text(source))]
    Rmdir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A cgroup file held something berth cannot parse.
    #[error("parse {}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was unexpected.
        reason: String,
    },
    /// A resource value is impossible or out of range.
    #[error("{field}: {reason}")]
    InvalidValue {
        /// The field, as a JSON path such as `linux.resources.pids.limit`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A resource was asked for but its controller is not there.
    #[error("{field}: invalid configuration: the {controller} controller is not available for {}{}", path.display(), detail)]
    ControllerUnavailable {
        /// The field that needs the controller.
        field: String,
        /// The controller (`memory`, `hugetlb`, …).
        controller: String,
        /// The cgroup directory (or hierarchy root) that lacks it.
        path: PathBuf,
        /// Extra context, starting with `: ` when not empty.
        detail: String,
    },
    /// The container's cgroup already exists and is frozen: a process placed there would stop
    /// at once (runc's message).
    #[error("container's cgroup unexpectedly frozen: {}", path.display())]
    Frozen {
        /// The frozen directory.
        path: PathBuf,
    },
    /// Freezing or thawing did not settle in time.
    #[error("{what} {}: timed out after {millis} ms (state {state:?})", path.display())]
    Timeout {
        /// `freeze` or `thaw`.
        what: &'static str,
        /// The freezer file.
        path: PathBuf,
        /// How long berth waited.
        millis: u64,
        /// The last state read.
        state: String,
    },
    /// A signal could not be sent.
    #[error("kill {pid} with signal {signal}: {}", os_text(source))]
    Signal {
        /// The process.
        pid: i32,
        /// The signal number.
        signal: i32,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Loading or attaching the cgroup v2 device filter failed.
    #[error("linux.resources.devices: {op} for {}: {}{}", path.display(), os_text(source), verifier_text(log))]
    DeviceFilter {
        /// The bpf(2) step (`load program`, `attach`, `query`, `detach`).
        op: &'static str,
        /// The cgroup directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
        /// The verifier log, when loading failed.
        log: String,
    },
}

/// A shorter name for this crate's results.
pub type Result<T, E = CgroupError> = std::result::Result<T, E>;

impl CgroupError {
    /// Shorthand for [`CgroupError::InvalidValue`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CgroupError::InvalidValue {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The OS error behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            CgroupError::Read { source, .. }
            | CgroupError::Write { source, .. }
            | CgroupError::AddPid { source, .. }
            | CgroupError::Mkdir { source, .. }
            | CgroupError::Rmdir { source, .. }
            | CgroupError::Signal { source, .. }
            | CgroupError::DeviceFilter { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// An OS error as runc prints it: the C library's text, lower case, without `(os error N)`.
pub fn os_text(err: &io::Error) -> String {
    let text = match err.raw_os_error() {
        Some(code) => {
            let full = io::Error::from_raw_os_error(code).to_string();
            match full.rfind(" (os error ") {
                Some(at) => full[..at].to_string(),
                None => full,
            }
        }
        None => err.to_string(),
    };
    let mut chars = text.chars();
    match chars.next() {
        // Only lower a capital that starts a word made of lower case letters ("Invalid"),
        // not an acronym ("I/O error" stays as it is).
        Some(first)
            if first.is_ascii_uppercase()
                && chars.next().is_some_and(|c| c.is_ascii_lowercase()) =>
        {
            let mut out = String::with_capacity(text.len());
            out.push(first.to_ascii_lowercase());
            out.push_str(&text[1..]);
            out
        }
        _ => text,
    }
}

fn field_prefix(field: &Option<String>) -> String {
    match field {
        Some(field) => format!("{field}: "),
        None => String::new(),
    }
}

fn verifier_text(log: &str) -> String {
    let log = log.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if log.is_empty() {
        String::new()
    } else {
        format!(" (verifier: {log})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_like_runc() {
        assert_eq!(
            os_text(&io::Error::from_raw_os_error(libc::EINVAL)),
            "invalid argument"
        );
        assert_eq!(
            os_text(&io::Error::from_raw_os_error(libc::EBUSY)),
            "device or resource busy"
        );
        assert_eq!(
            os_text(&io::Error::from_raw_os_error(libc::EIO)),
            "input/output error"
        );
        assert_eq!(os_text(&io::Error::other("Custom thing")), "custom thing");
    }

    #[test]
    fn write_errors_name_file_value_and_field() {
        let err = CgroupError::Write {
            field: None,
            path: "/sys/fs/cgroup/memory/x/memory.limit_in_bytes".into(),
            value: "123".into(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert_eq!(
            err.to_string(),
            "write 123 to /sys/fs/cgroup/memory/x/memory.limit_in_bytes: invalid argument"
        );
        let err = CgroupError::Write {
            field: Some("linux.resources.cpu.cpus".into()),
            path: "/c/cpuset.cpus".into(),
            value: "7".into(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert_eq!(
            err.to_string(),
            "linux.resources.cpu.cpus: write 7 to /c/cpuset.cpus: invalid argument"
        );
    }

    #[test]
    fn systemd_path_message() {
        let err = CgroupError::SystemdPath {
            path: "system.slice:berth:abc".into(),
        };
        assert_eq!(
            err.to_string(),
            "cgroupsPath \"system.slice:berth:abc\": systemd cgroup paths need --systemd-cgroup, which berth does not support yet"
        );
    }
}
