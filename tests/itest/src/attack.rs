//! Pieces of the hardening tests (security.md §6 R, F, X): the hostile `berth-attack` helper,
//! commands started with leaked fds, the outside-marker pattern and binary fingerprints.
//!
//! - [`attack_path`] is the static `berth-attack` (`BERTH_ATTACK`, else built next to the
//!   probe); [`install_attack`] puts it into a bundle's rootfs as `/attack`.
//! - [`with_fds`] starts the runtime under `berth-attack with-fds P --`: fds 3..3+P are memfds
//!   named `preserved-N` (for `--preserve-fds P`) and after them sit a directory, an `O_PATH`
//!   fd and a socket pair, none close-on-exec: what a careless caller leaks to a runtime
//!   ([`with_dir_fds`]: the preserved fds are host directories).
//! - [`Markers`] is crun's outside-marker pattern (`test_dev_symlink_does_not_populate_outside_
//!   rootfs`): a host directory with known entries, compared byte for byte (type, mode, content,
//!   link target, listing) after the run.
//! - [`Fingerprint`] is a file's bytes, mode and inode, for "the runtime binary is unchanged".

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::bundle::Bundle;
use crate::cmd::Cmd;
use crate::runtime::Runtime;

/// The static `berth-attack` binary.
pub fn attack_path() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let p = match std::env::var_os("BERTH_ATTACK") {
            Some(p) => PathBuf::from(p),
            None => crate::probe::probe_path().with_file_name("berth-attack"),
        };
        assert!(
            crate::probe::is_static_elf(&p),
            "{} is not a static executable (set BERTH_ATTACK, or let the harness build the helpers)",
            p.display()
        );
        p
    })
}

/// Copies `berth-attack` into the bundle's rootfs as `/attack` (a hard link when possible).
pub fn install_attack(b: &Bundle) {
    let dst = b.rootfs().join("attack");
    let _ = std::fs::remove_file(&dst);
    if std::fs::hard_link(attack_path(), &dst).is_err() {
        std::fs::copy(attack_path(), &dst).expect("copy berth-attack into the rootfs");
    }
}

/// `berth-attack with-fds P -- <runtime> --root <root> ARGS…` (see the module docs).
pub fn with_fds<I, S>(rt: &Runtime, preserve: u32, args: I) -> Cmd
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Cmd::new(attack_path())
        .args(["with-fds", &preserve.to_string(), "--"])
        .arg(rt.bin())
        .arg("--root")
        .arg(rt.root())
        .args(args)
}

/// Like [`with_fds`], with the preserved fds being the host's `/tmp` (`O_DIRECTORY`), as a
/// caller might hand a runtime a directory to pass on.
pub fn with_dir_fds<I, S>(rt: &Runtime, preserve: u32, args: I) -> Cmd
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Cmd::new(attack_path())
        .args(["with-fds", &preserve.to_string(), "--dirs", "--"])
        .arg(rt.bin())
        .arg("--root")
        .arg(rt.root())
        .args(args)
}

/// One entry of a [`Markers`] directory.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    File { mode: u32, bytes: Vec<u8> },
    Dir { mode: u32 },
    Link { target: PathBuf },
    Other { mode: u32 },
}

fn scan(dir: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
    let Ok(rd) = std::fs::read_dir(dir.join(rel)) else {
        return;
    };
    for e in rd.flatten() {
        let r = rel.join(e.file_name());
        let p = dir.join(&r);
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let ft = m.file_type();
        let entry = if ft.is_symlink() {
            Entry::Link {
                target: std::fs::read_link(&p).unwrap_or_default(),
            }
        } else if ft.is_dir() {
            scan(dir, &r, out);
            Entry::Dir { mode: m.mode() }
        } else if ft.is_file() {
            Entry::File {
                mode: m.mode(),
                bytes: std::fs::read(&p).unwrap_or_default(),
            }
        } else {
            Entry::Other { mode: m.mode() }
        };
        out.insert(r, entry);
    }
}

/// A host directory outside any rootfs, with marker files a hostile rootfs aims at.
#[derive(Debug)]
pub struct Markers {
    dir: tempfile::TempDir,
    before: BTreeMap<PathBuf, Entry>,
}

impl Markers {
    /// A fresh directory under `/tmp` holding `files` (`name`, content); every name in
    /// `files` is a regular file with mode 0644. Its state is recorded now.
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-itest-outside-")
            .tempdir_in("/tmp")
            .expect("outside dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod outside dir");
        for (name, content) in files {
            let p = dir.path().join(name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).expect("mkdir marker parent");
            }
            std::fs::write(&p, content).expect("write marker");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))
                .expect("chmod marker");
        }
        let mut m = Self {
            dir,
            before: BTreeMap::new(),
        };
        m.before = m.now();
        m
    }

    /// The directory (absolute, on the host).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn now(&self) -> BTreeMap<PathBuf, Entry> {
        let mut out = BTreeMap::new();
        scan(self.dir.path(), Path::new(""), &mut out);
        out
    }

    /// Asserts the directory is exactly as recorded: same entries, types, modes, contents,
    /// link targets, and no mount on or below it.
    #[track_caller]
    pub fn assert_untouched(&self, what: &str) {
        let now = self.now();
        assert_eq!(
            now,
            self.before,
            "{what}: the host directory {} outside the rootfs changed",
            self.path().display()
        );
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let me = self.path().to_string_lossy().into_owned();
        assert!(
            !mountinfo.lines().any(|l| l.contains(&me)),
            "{what}: something is mounted on the host at {me}"
        );
    }
}

/// A file's identity and full content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    ino: u64,
    mode: u32,
    len: u64,
    bytes: Vec<u8>,
}

impl Fingerprint {
    /// Reads `path` now.
    pub fn of(path: &Path) -> Self {
        let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self {
            ino: m.ino(),
            mode: m.mode(),
            len: m.len(),
            bytes: std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        }
    }

    /// Asserts `path` still has this fingerprint.
    #[track_caller]
    pub fn assert_same(&self, path: &Path, what: &str) {
        let now = Self::of(path);
        if now != *self {
            let first = now
                .bytes
                .iter()
                .zip(&self.bytes)
                .position(|(a, b)| a != b)
                .map_or("none".into(), |i| format!("offset {i}"));
            panic!(
                "{what}: {} changed (inode {} -> {}, length {} -> {}, first differing byte: {first})",
                path.display(),
                self.ino,
                now.ino,
                self.len,
                now.len
            );
        }
    }
}

/// A line written by `berth-attack` to OUT, parsed (waits up to `timeout` for it to appear).
#[track_caller]
pub fn result_line(
    out: &Path,
    name: &str,
    timeout: std::time::Duration,
) -> BTreeMap<String, String> {
    let text = crate::cmd::wait_until(
        &format!("berth-attack result {}", out.display()),
        timeout,
        || {
            std::fs::read_to_string(out)
                .ok()
                .filter(|t| t.ends_with('\n'))
        },
    );
    crate::probe::probe_line(&text, name)
}
