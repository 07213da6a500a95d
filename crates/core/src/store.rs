//! The state directory: `<root>/<id>/` holds `state.json` (a [`Record`]) and, while the
//! container is created but not started, the `start` socket its init waits on.
//!
//! Invariants:
//! - a container exists iff its directory exists; `create` makes the directory with `mkdir`, so
//!   two creates of one id cannot both succeed;
//! - every command on a container holds an exclusive `flock` on the directory for its whole run,
//!   so commands on one container are serialised;
//! - `state.json` is replaced atomically (write to a temporary file, rename). It is not fsynced:
//!   the state root lives on a tmpfs (`/run`) and does not outlive a reboot, as with runc.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, RenameFlags, flock};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What berth remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The id.
    pub id: String,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    /// Owner name (empty for root, as runc).
    pub owner: String,
    /// The init's pid in berth's pid namespace (0 until known).
    pub pid: i32,
    /// The init's start time (field 22 of `/proc/PID/stat`), to detect pid reuse.
    pub pid_start: u64,
    /// True while `create` is still running.
    pub creating: bool,
    /// The config the container was created from.
    pub spec: berth_spec::Spec,
    /// The container's cgroup, when berth made one.
    pub cgroup: Option<berth_cgroups::CgroupManager>,
    /// The container was created with `--no-pivot`.
    #[serde(default)]
    pub no_pivot: bool,
    /// Extra, berth-only facts (monitor socket and the like).
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
}

/// The state root (`--root`).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// An open, locked container directory.
#[derive(Debug)]
pub struct ContainerDir {
    id: String,
    path: PathBuf,
    lock: File,
}

impl Store {
    /// A store rooted at `root`; the directory is made (mode 0700) when first needed.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn ensure_root(&self) -> Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| Error::io("create state root", &self.root, e))
    }

    /// Makes the directory of a new container and locks it. Fails with [`Error::Exist`] when
    /// the id is taken.
    pub fn create(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        self.ensure_root()?;
        let path = self.root.join(id);
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exist(id.to_string()));
            }
            Err(e) => return Err(Error::io("create state directory", &path, e)),
        }
        ContainerDir::lock(id, path)
    }

    /// Opens and locks the directory of an existing container.
    pub fn open(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        let path = self.root.join(id);
        if !path.is_dir() {
            return Err(Error::NotExist(id.to_string()));
        }
        let dir = ContainerDir::lock(id, path)?;
        // Deleted while we waited for the lock?
        if !dir.path.join("state.json").exists() && !dir.path.is_dir() {
            return Err(Error::NotExist(id.to_string()));
        }
        Ok(dir)
    }

    /// The ids of all containers, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read state root", &self.root, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

impl ContainerDir {
    fn lock(id: &str, path: PathBuf) -> Result<Self> {
        let lock = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| Error::io("open state directory", &path, e))?;
        flock(lock.as_fd(), FlockOperation::LockExclusive)
            .map_err(|e| Error::io("lock state directory", &path, e.into()))?;
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            lock,
        })
    }

    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of the socket a created container's init waits on for `start`.
    pub fn start_socket(&self) -> PathBuf {
        self.path.join("start")
    }

    /// The number of the lock's fd, which a cloned child closes (see
    /// `berth_sys::fd::close_inherited`) so it does not hold the lock.
    pub fn lock_fd_number(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.lock)
    }

    /// The directory's fd (also the lock).
    pub fn dir_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.lock.as_fd()
    }

    /// Reads `state.json`.
    pub fn load(&self) -> Result<Record> {
        let path = self.path.join("state.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotExist(self.id.clone()));
            }
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::CorruptState {
            id: self.id.clone(),
            message: e.to_string(),
        })
    }

    /// Replaces `state.json` atomically.
    pub fn save(&self, record: &Record) -> Result<()> {
        let bytes = serde_json::to_vec(record).map_err(|e| Error::CorruptState {
            id: self.id.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&self.path.join("state.json"), &bytes, 0o600)
    }

    /// Removes the directory and everything in it.
    pub fn remove(self) -> Result<()> {
        std::fs::remove_dir_all(&self.path)
            .map_err(|e| Error::io("remove state directory", &self.path, e))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
///
/// When `path` exists the two names are exchanged (`RENAME_EXCHANGE`) and the old file is then
/// unlinked under the temporary name: readers still see the old or the new file whole, but
/// ext4 does not start writing the new file out as it does when a rename replaces a file
/// (`auto_da_alloc`), an I/O whose end a later unlink of it would wait for (about 0.2 ms a
/// save, and again at `delete`, with the state directory on ext4).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = File::options()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(bytes)?;
        drop(f);
        let cwd = rustix::fs::CWD;
        match rustix::fs::renameat_with(cwd, &tmp, cwd, path, RenameFlags::EXCHANGE) {
            Ok(()) => {
                // `tmp` now names the old file.
                std::fs::remove_file(&tmp)
            }
            // No file to exchange with yet, or a file system without RENAME_EXCHANGE.
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::INVAL) => std::fs::rename(&tmp, path),
            Err(e) => Err(e.into()),
        }
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("write", path, e)
    })
}

/// Checks a container id (runc's rule, see [`berth_spec::validate_id`]).
pub fn validate_id(id: &str) -> Result<()> {
    berth_spec::validate_id(id).map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for good in ["a", "test_busybox", "x.y-z+1", "A"] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a b",
            "a\0b",
            &"x".repeat(1025),
        ] {
            let err = validate_id(bad).unwrap_err().to_string();
            assert!(
                err.contains("invalid container ID format") || err.contains("id cannot be empty"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn create_twice_and_atomic_save() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("root"));
        let c = store.create("one").unwrap();
        let err = store.create("one").unwrap_err().to_string();
        assert!(
            err.contains("already exists") && err.contains("one"),
            "{err}"
        );
        write_atomic(&c.path().join("x"), b"hello", 0o600).unwrap();
        assert_eq!(std::fs::read(c.path().join("x")).unwrap(), b"hello");
        // A second save exchanges the files and removes the old one: nothing else is left.
        let reader = File::open(c.path().join("x")).unwrap();
        write_atomic(&c.path().join("x"), b"again", 0o600).unwrap();
        assert_eq!(std::fs::read(c.path().join("x")).unwrap(), b"again");
        assert_eq!(std::io::read_to_string(reader).unwrap(), "hello");
        let names: Vec<_> = std::fs::read_dir(c.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["x"]);
        assert_eq!(store.ids().unwrap(), vec!["one".to_string()]);
        c.remove().unwrap();
        assert!(store.ids().unwrap().is_empty());
        let err = store.open("one").unwrap_err().to_string();
        assert!(
            err.contains("does not exist") && err.contains("one"),
            "{err}"
        );
    }
}
