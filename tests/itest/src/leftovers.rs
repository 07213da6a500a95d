//! Snapshots of host state a container operation could leak, compared before and after.
//!
//! A [`Leftovers`] snapshot records `kernel.pty.nr` (only a rise counts: the number is
//! host-wide, and a pty another process closes meanwhile was not left by the operation), every line of the host's
//! `/proc/self/mountinfo`, cgroup directories named after the test's container ids (v1
//! hierarchies under `/sys/fs/cgroup/*` and cgroup2 at `/sys/fs/cgroup/unified`), the listing of
//! the private state root, and the processes that belong to the test (in a cgroup named after an
//! id, or whose command line names an id or a bundle path). [`Leftovers::assert_unchanged`]
//! takes new snapshots for up to 3 s (teardown can be asynchronous) and fails with a precise
//! diff if they never match.
//!
//! `kernel.pty.nr` is host-wide, so a snapshot requires a runtime from
//! [`crate::runtime_exclusive`]: no other test of the process runs meanwhile.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::runtime::Runtime;

/// Directories of cgroup hierarchies: each v1 mount under `/sys/fs/cgroup` and cgroup2.
fn hierarchies() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                v.push(e.path());
            }
        }
    }
    if v.is_empty() {
        v.push(PathBuf::from("/sys/fs/cgroup")); // a pure cgroup2 host
    }
    v.sort();
    v
}

fn find_named(dir: &Path, id: &str, depth: usize, out: &mut BTreeSet<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let p = e.path();
        if e.file_name().to_string_lossy().contains(id) {
            out.insert(p);
        } else if depth > 0 {
            find_named(&p, id, depth - 1, out);
        }
    }
}

/// Cgroup directories whose name contains `id` (searched 4 levels deep in every hierarchy).
pub fn cgroup_dirs(id: &str) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    if id.is_empty() {
        return out;
    }
    for h in hierarchies() {
        find_named(&h, id, 4, &mut out);
    }
    out
}

/// Detaches every mount at or below `dir` (deepest first): what a container manager (podman,
/// containerd) left mounted in its private directories before they are removed.
pub fn unmount_under(dir: &Path) {
    let d = dir.to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&d))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = rustix::mount::unmount(p, rustix::mount::UnmountFlags::DETACH);
    }
}

/// Processes (pid, description) in a cgroup with a path component equal to one of `ids`, or
/// with a command-line argument that is one of `needles` (or a path under it: bundle paths).
/// Whole arguments only, so the needle `itest-x-1` does not match `itest-x-12`. The calling
/// process is never included.
pub fn processes(ids: &[String], needles: &[String]) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .replace('\0', " ")
                    .trim_end()
                    .to_string()
            })
            .unwrap_or_default();
        let cgroup = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        let in_cgroup = cgroup.lines().any(|l| {
            let path = l.splitn(3, ':').nth(2).unwrap_or("");
            path.split('/').any(|c| ids.iter().any(|id| id == c))
        });
        let named = cmdline.split(' ').any(|arg| {
            needles.iter().any(|n| {
                !n.is_empty()
                    && (arg == n
                        || arg
                            .strip_prefix(n.as_str())
                            .is_some_and(|rest| rest.starts_with('/')))
            })
        });
        if in_cgroup || named {
            out.push((
                pid,
                format!("{cmdline} [{}]", cgroup.lines().next().unwrap_or("")),
            ));
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    pty_nr: String,
    mountinfo: BTreeSet<String>,
    cgroups: BTreeSet<PathBuf>,
    state: BTreeSet<String>,
    procs: BTreeSet<String>,
}

/// A snapshot of host state to compare against later (see the module docs).
#[derive(Debug)]
pub struct Leftovers {
    ids: Vec<String>,
    needles: Vec<String>,
    root: PathBuf,
    before: Snapshot,
}

impl Leftovers {
    /// Records the current state for the given container ids and extra needles (bundle paths).
    /// Panics unless `rt` came from [`crate::runtime_exclusive`].
    #[track_caller]
    pub fn snapshot(rt: &Runtime, ids: &[&str], needles: &[&Path]) -> Self {
        assert!(
            rt.is_exclusive(),
            "Leftovers needs runtime_exclusive(): kernel.pty.nr is host-wide"
        );
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let mut all = ids.clone();
        all.extend(needles.iter().map(|p| p.to_string_lossy().into_owned()));
        let root = rt.root().to_path_buf();
        let before = take(&ids, &all, &root);
        Self {
            ids,
            needles: all,
            root,
            before,
        }
    }

    /// The differences between the snapshot and now, or `None` if equal.
    pub fn diff(&self) -> Option<String> {
        let now = take(&self.ids, &self.needles, &self.root);
        diff(&self.before, &now)
    }

    /// Asserts that the state returns to the snapshot within 3 s.
    #[track_caller]
    pub fn assert_unchanged(&self) {
        let start = Instant::now();
        loop {
            match self.diff() {
                None => return,
                Some(d) if start.elapsed() > Duration::from_secs(3) => {
                    panic!("leftovers after the operation (ids {:?}):\n{d}", self.ids)
                }
                Some(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

fn take(ids: &[String], needles: &[String], root: &Path) -> Snapshot {
    let pty_nr = std::fs::read_to_string("/proc/sys/kernel/pty/nr")
        .unwrap_or_default()
        .trim()
        .to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let cgroups = ids.iter().flat_map(|id| cgroup_dirs(id)).collect();
    let state = std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let procs = processes(ids, needles)
        .into_iter()
        .map(|(pid, what)| format!("{pid} {what}"))
        .collect();
    Snapshot {
        pty_nr,
        mountinfo,
        cgroups,
        state,
        procs,
    }
}

fn set_diff<T: Ord + std::fmt::Debug>(
    what: &str,
    a: &BTreeSet<T>,
    b: &BTreeSet<T>,
    out: &mut String,
) {
    for x in b.difference(a) {
        out.push_str(&format!("  + {what}: {x:?}\n"));
    }
    for x in a.difference(b) {
        out.push_str(&format!("  - {what}: {x:?}\n"));
    }
}

fn diff(a: &Snapshot, b: &Snapshot) -> Option<String> {
    let mut out = String::new();
    // Host-wide: a pty some other process (an earlier test's process on its way out) closed
    // meanwhile is not one the operation left behind. Only a rise is.
    let more_ptys = match (a.pty_nr.parse::<u64>(), b.pty_nr.parse::<u64>()) {
        (Ok(x), Ok(y)) => y > x,
        _ => a.pty_nr != b.pty_nr,
    };
    if more_ptys {
        out.push_str(&format!("  kernel.pty.nr: {} -> {}\n", a.pty_nr, b.pty_nr));
    }
    set_diff("mountinfo", &a.mountinfo, &b.mountinfo, &mut out);
    set_diff("cgroup dir", &a.cgroups, &b.cgroups, &mut out);
    set_diff("state root entry", &a.state, &b.state, &mut out);
    set_diff("process", &a.procs, &b.procs, &mut out);
    (!out.is_empty()).then_some(out)
}
