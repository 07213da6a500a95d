//! The runtime under test, a private `--root` per test, and the cleanup [`Guard`].
//!
//! [`runtime()`] picks the binary once per process (`BERTH_TEST_RUNTIME`, then `BERTH_BIN`,
//! then the workspace's built `berth`), detects its [`Kind`] from `--version`, and returns a
//! [`Runtime`] whose every command carries `--root <private temp dir>`: tests never see each
//! other's containers and the machine's `/run/runc` stays untouched. crun 1.8 refuses this
//! machine's hybrid cgroups, so it is run through `shared/tools/hybrid-cgroup-fix.sh run` (its
//! own stderr line is filtered out); when that script cannot bind cgroup2's controllers to v1
//! (another process has them enabled in cgroup2), `tests/itest/tools/crun-cgroup-v1.sh` hides
//! cgroup2 from crun in a private mount namespace instead. `BERTH_CRUN_WRAPPER` overrides both
//! (empty: no wrapper).
//!
//! Dropping a `Runtime` runs its [`Guard`]: `delete --force` for every container it made (the
//! tracked ids and whatever is in the private root), SIGKILL for leftover processes (in the
//! container's cgroup, or whose command line names the id or the bundle), `rmdir` of leftover
//! cgroup directories named after the id, and removal of the root.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::bundle::Bundle;
use crate::cmd::{Cmd, Output};

/// Which runtime implementation is under test (for marking deliberate differences).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// berth itself.
    Berth,
    /// runc (the reference).
    Runc,
    /// crun.
    Crun,
}

/// The binary under test, resolved once per process.
#[derive(Debug)]
struct Binary {
    path: PathBuf,
    kind: Kind,
    /// A wrapper command prepended (crun's hybrid-cgroup workaround).
    wrapper: Vec<PathBuf>,
}

fn find_berth() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_BIN") {
        return PathBuf::from(p);
    }
    let mut tried = Vec::new();
    for dir in [
        crate::probe::target_dir(),
        crate::probe::workspace_root().join("target"),
    ] {
        for profile in ["debug", "release"] {
            let p = dir.join(profile).join("berth");
            if p.is_file() {
                return p;
            }
            tried.push(p);
        }
    }
    panic!(
        "berth binary not found (tried {tried:?}); build it with `cargo build -p berth-cli`, or set \
         BERTH_BIN, or run another runtime with BERTH_TEST_RUNTIME=/usr/sbin/runc"
    );
}

fn crun_wrapper() -> Vec<PathBuf> {
    if let Some(w) = std::env::var_os("BERTH_CRUN_WRAPPER") {
        return if w.is_empty() {
            vec![]
        } else {
            vec![PathBuf::from(w)]
        };
    }
    let candidates = [
        crate::probe::workspace_root().join("../shared/tools/hybrid-cgroup-fix.sh"),
        PathBuf::from("/work/shared/tools/hybrid-cgroup-fix.sh"),
    ];
    let fallback = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/crun-cgroup-v1.sh");
    if let Some(shared) = candidates.into_iter().find(|p| p.is_file()) {
        let probe = Cmd::new(&shared)
            .args(["run", "true"])
            .timeout(Duration::from_secs(30))
            .run();
        if probe.success() {
            return vec![shared, PathBuf::from("run")];
        }
        eprintln!(
            "itest: {} cannot wrap crun here ({}); using {}",
            shared.display(),
            probe.stderr_str().trim(),
            fallback.display()
        );
    }
    vec![fallback]
}

fn binary() -> &'static Binary {
    static B: OnceLock<Binary> = OnceLock::new();
    B.get_or_init(|| {
        let path = match std::env::var_os("BERTH_TEST_RUNTIME") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => find_berth(),
        };
        assert!(
            path.is_file(),
            "runtime under test {} does not exist",
            path.display()
        );
        let version = Cmd::new(&path)
            .arg("--version")
            .timeout(Duration::from_secs(10))
            .run();
        let text = version.stdout_str().to_lowercase();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_lowercase();
        let kind = if text.starts_with("runc") || (!text.contains("version") && name == "runc") {
            Kind::Runc
        } else if text.starts_with("crun") || (!text.contains("version") && name == "crun") {
            Kind::Crun
        } else {
            Kind::Berth
        };
        let wrapper = if kind == Kind::Crun {
            crun_wrapper()
        } else {
            vec![]
        };
        Binary {
            path,
            kind,
            wrapper,
        }
    })
}

/// Drops the crun wrapper's informational stderr line.
fn filter_wrapper_noise(stderr: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&stderr);
    if !text.contains("hybrid-cgroup-fix:") {
        return stderr;
    }
    text.split_inclusive('\n')
        .filter(|l| !l.starts_with("hybrid-cgroup-fix:"))
        .collect::<String>()
        .into_bytes()
}

/// Cleans up after a test (see the module docs); owned by [`Runtime`].
#[derive(Debug)]
pub struct Guard {
    bin: &'static Binary,
    root: PathBuf,
    root_dir: Option<TempDir>,
    ids: Mutex<Vec<String>>,
    bundles: Mutex<Vec<PathBuf>>,
}

impl Guard {
    /// Remembers a container id to delete at the end.
    pub fn track(&self, id: &str) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }

    /// Remembers a bundle path (processes naming it are killed at the end).
    pub fn track_bundle(&self, p: &Path) {
        self.bundles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(p.to_path_buf());
    }

    fn cleanup(&mut self) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Ok(rd) = std::fs::read_dir(&self.root) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                // `@monitor` (berth's console monitors) is not a container: `@` is not valid
                // in ids. Treating it as one would kill every process naming a monitor path.
                if e.path().is_dir() && !ids.contains(&n) && !n.starts_with('@') {
                    ids.push(n);
                }
            }
        }
        for id in &ids {
            let out = base_cmd(self.bin, &self.root)
                .args(["delete", "--force", id.as_str()])
                .timeout(Duration::from_secs(15))
                .spawn()
                .wait_unchecked();
            if out.timed_out {
                eprintln!("guard: {out}");
            }
        }
        let bundles = self
            .bundles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut needles: Vec<String> = ids.clone();
        needles.extend(bundles.iter().map(|b| b.to_string_lossy().into_owned()));
        for (pid, what) in crate::leftovers::processes(&ids, &needles) {
            eprintln!("guard: killing leftover process {pid}: {what}");
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        for id in &ids {
            for dir in crate::leftovers::cgroup_dirs(id) {
                // Children first; only empty cgroups can go.
                let mut all: Vec<PathBuf> = walk_dirs(&dir);
                all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
                for d in all {
                    let _ = std::fs::remove_dir(&d);
                }
            }
        }
        if let Some(d) = self.root_dir.take() {
            let _ = d.close();
        }
    }
}

fn walk_dirs(d: &Path) -> Vec<PathBuf> {
    let mut v = vec![d.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                v.extend(walk_dirs(&e.path()));
            }
        }
    }
    v
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn base_cmd(bin: &Binary, root: &Path) -> Cmd {
    let mut c = match bin.wrapper.split_first() {
        Some((w, rest)) => Cmd::new(w).args(rest).arg(&bin.path),
        None => Cmd::new(&bin.path),
    };
    if !bin.wrapper.is_empty() {
        c = c.stderr_filter(filter_wrapper_noise);
    }
    c.arg("--root").arg(root)
}

/// The runtime under test with a private state root; cleans up on drop.
#[derive(Debug)]
pub struct Runtime {
    bin: &'static Binary,
    guard: Guard,
    // Dropped after `guard`: cleanup happens while the lock is still held.
    host: crate::hostlock::HostGuard,
}

fn new_runtime(exclusive: bool) -> Runtime {
    crate::require_root();
    let host = if exclusive {
        crate::hostlock::exclusive()
    } else {
        crate::hostlock::shared()
    };
    let bin = binary();
    let dir = tempfile::Builder::new()
        .prefix("berth-itest-root-")
        .tempdir_in("/tmp")
        .expect("root temp dir");
    let root = dir.path().join("state");
    Runtime {
        bin,
        guard: Guard {
            bin,
            root,
            root_dir: Some(dir),
            ids: Mutex::new(Vec::new()),
            bundles: Mutex::new(Vec::new()),
        },
        host,
    }
}

/// The runtime under test with a fresh private root. Tests holding one run concurrently with
/// each other (but never with a [`runtime_exclusive`] test of the same process; see
/// [`crate::hostlock`]).
pub fn runtime() -> Runtime {
    new_runtime(false)
}

/// Like [`runtime`], but no other test of this process holds a runtime meanwhile: needed for
/// host-wide counters such as `kernel.pty.nr` in [`crate::Leftovers`].
pub fn runtime_exclusive() -> Runtime {
    new_runtime(true)
}

impl Runtime {
    /// Which implementation this is.
    pub fn kind(&self) -> Kind {
        self.bin.kind
    }

    /// The binary's path.
    pub fn bin(&self) -> &Path {
        &self.bin.path
    }

    /// The private `--root` directory (may not exist before the first container).
    pub fn root(&self) -> &Path {
        &self.guard.root
    }

    /// Whether this runtime holds the host lock exclusively.
    pub fn is_exclusive(&self) -> bool {
        self.host.is_exclusive()
    }

    /// The cleanup guard.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// `<runtime> --root <private root> ARGS...` (not run yet).
    pub fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        base_cmd(self.bin, self.root()).args(args)
    }

    /// `<runtime> ARGS...` without `--root` (for `spec`, `--version`...).
    pub fn cmd_no_root<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let c = match self.bin.wrapper.split_first() {
            Some((w, rest)) => Cmd::new(w)
                .args(rest)
                .arg(&self.bin.path)
                .stderr_filter(filter_wrapper_noise),
            None => Cmd::new(&self.bin.path),
        };
        c.args(args)
    }

    /// A unique container id for this test, tracked by the guard.
    pub fn id(&self, name: &str) -> String {
        let id = crate::unique_id(name);
        self.guard.track(&id);
        id
    }

    /// `create --bundle B ID`, asserting success.
    #[track_caller]
    pub fn create(&self, bundle: &Bundle, id: &str) -> Output {
        self.guard.track(id);
        self.guard.track_bundle(bundle.path());
        self.cmd(["create", "--bundle"])
            .arg(bundle.path())
            .arg(id)
            .ok()
    }

    /// `start ID`, asserting success.
    #[track_caller]
    pub fn start(&self, id: &str) -> Output {
        self.cmd(["start", id]).ok()
    }

    /// `run -d --bundle B ID` (stdio `/dev/null`), asserting success.
    #[track_caller]
    pub fn run_detached(&self, bundle: &Bundle, id: &str) -> Output {
        self.guard.track(id);
        self.guard.track_bundle(bundle.path());
        self.cmd(["run", "-d", "--bundle"])
            .arg(bundle.path())
            .arg(id)
            .ok()
    }

    /// `run --bundle B ID` in the foreground (not run yet).
    pub fn run_cmd(&self, bundle: &Bundle, id: &str) -> Cmd {
        self.guard.track(id);
        self.guard.track_bundle(bundle.path());
        self.cmd(["run", "--bundle"]).arg(bundle.path()).arg(id)
    }

    /// `exec ID ARGS...` (not run yet).
    pub fn exec_cmd(&self, id: &str, args: &[&str]) -> Cmd {
        self.cmd(["exec", id]).args(args)
    }

    /// `kill ID SIGNAL`, asserting success.
    #[track_caller]
    pub fn kill(&self, id: &str, signal: &str) -> Output {
        self.cmd(["kill", id, signal]).ok()
    }

    /// `delete --force ID`, asserting success.
    #[track_caller]
    pub fn delete_force(&self, id: &str) -> Output {
        self.cmd(["delete", "--force", id]).ok()
    }

    /// `state ID` parsed, or `None` if the command fails.
    pub fn try_state(&self, id: &str) -> Option<Value> {
        let out = self.cmd(["state", id]).run();
        if !out.success() {
            return None;
        }
        Some(
            serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("state JSON: {e}: {out}")),
        )
    }

    /// `state ID` parsed; panics if it fails.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let out = self.cmd(["state", id]).ok();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("state JSON: {e}: {out}"))
    }

    /// The `status` field of `state ID`, or `None` if `state` fails.
    pub fn status(&self, id: &str) -> Option<String> {
        self.try_state(id)
            .map(|v| v["status"].as_str().unwrap_or_default().to_string())
    }

    /// The container's init pid from `state`.
    #[track_caller]
    pub fn pid(&self, id: &str) -> i32 {
        let s = self.state(id);
        s["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("no pid in state {s}")) as i32
    }

    /// Polls `state` until its status is `status`; panics after `timeout`.
    #[track_caller]
    pub fn wait_for_status(&self, id: &str, status: &str, timeout: Duration) {
        let start = std::time::Instant::now();
        loop {
            let last = self.status(id);
            if last.as_deref() == Some(status) {
                return;
            }
            if start.elapsed() > timeout {
                panic!(
                    "watchdog: container {id} did not reach status {status:?} within {timeout:?}; \
                     last status {last:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
