//! Shared fixtures for the root tests: a cgroup that is always killed and removed (even when
//! the test panics), and gated shells that run their script only once they are in the cgroup.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use berth_cgroups::{CgroupManager, CgroupPath, CgroupRoots, resolve_path};

/// Whether the tests can run: root and a cgroup filesystem. Prints why not otherwise.
pub fn can_run() -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    if CgroupRoots::detect().is_err() {
        eprintln!("skipped: no cgroup filesystem");
        return false;
    }
    true
}

/// A unique path for test `name`: `/berth-test/<name>-<pid>`.
pub fn test_path(name: &str) -> CgroupPath {
    resolve_path(
        Some(&format!("/berth-test/{name}-{}", std::process::id())),
        "unused",
    )
    .unwrap()
}

/// A cgroup plus the processes a test started; Drop kills them all and removes the cgroup.
pub struct Fixture {
    pub manager: CgroupManager,
    pub children: Vec<Child>,
}

impl Fixture {
    /// Creates the cgroup for `name` with the host's layout.
    pub fn new(name: &str) -> Fixture {
        Fixture::new_in(&CgroupRoots::detect().unwrap(), name)
    }

    /// Creates the cgroup for `name` under `roots`. A leftover from an earlier crashed run with
    /// the same name and pid is removed first.
    pub fn new_in(roots: &CgroupRoots, name: &str) -> Fixture {
        let path = test_path(name);
        let stale = CgroupManager::open_in(roots, &path);
        if stale.dirs().iter().any(|d| d.exists()) {
            let _ = stale.kill_all(libc::SIGKILL);
            let _ = stale.destroy();
        }
        let manager = CgroupManager::create_in(roots, &path).unwrap();
        Fixture {
            manager,
            children: Vec::new(),
        }
    }

    /// Starts `sleep 100` and moves it into the cgroup; returns its pid.
    pub fn sleeper(&mut self) -> i32 {
        let child = Command::new("sleep")
            .arg("100")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        self.children.push(child);
        self.manager.add_pid(pid).unwrap();
        pid
    }

    /// Starts `sh -c 'read _; SCRIPT'`, moves it into the cgroup, then lets it run SCRIPT.
    /// Returns its index in `children` (stdout and stderr are piped).
    pub fn gated_shell(&mut self, script: &str) -> usize {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("read _; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.manager.add_pid(child.id() as i32).unwrap();
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        self.children.push(child);
        self.children.len() - 1
    }

    /// Waits for child `index` and returns (success, stdout, stderr).
    pub fn finish(&mut self, index: usize) -> (bool, String, String) {
        let child = &mut self.children[index];
        drop(child.stdin.take());
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut s) = child.stdout.take() {
            s.read_to_string(&mut out).unwrap();
        }
        if let Some(mut s) = child.stderr.take() {
            s.read_to_string(&mut err).unwrap();
        }
        let status = child.wait().unwrap();
        (status.success(), out, err)
    }

    /// Takes child `index`'s stdout as a line reader.
    pub fn stdout_lines(&mut self, index: usize) -> BufReader<ChildStdout> {
        BufReader::new(self.children[index].stdout.take().unwrap())
    }

    /// Waits until the cgroup has no process (or panics after 10 s).
    pub fn wait_empty(&self) {
        wait_until("the cgroup to be empty", || {
            self.manager.pids().unwrap().is_empty()
        });
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
        }
        let _ = self.manager.kill_all(libc::SIGKILL);
        let _ = self.manager.thaw();
        for child in &mut self.children {
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.manager.pids().is_ok_and(|p| !p.is_empty()) && Instant::now() < deadline {
            let _ = self.manager.kill_all(libc::SIGKILL);
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Err(err) = self.manager.destroy() {
            eprintln!("cleanup: {err}");
        }
    }
}

/// Reads a line from a child's stdout.
pub fn read_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line.trim().to_string()
}

/// Polls `cond` every 10 ms for up to 10 s; panics naming `what` on timeout.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A cgroup file's content, trimmed.
pub fn read_trim(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Whether process `pid` is gone or a zombie.
pub fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// Every cgroup mount point on the host, v1 (named hierarchies included) and v2.
pub fn all_cgroup_mounts() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fs = right.split(' ').next()?;
            let mount_point = PathBuf::from(left.split(' ').nth(4)?);
            (fs == "cgroup" || fs == "cgroup2").then_some(mount_point)
        })
        .collect()
}

/// A block device of this host (`major`, `minor`), preferring real disks.
pub fn some_block_device() -> Option<(i64, i64)> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("loop") && !n.starts_with("ram") && !n.starts_with("zram"))
        .collect();
    names.sort();
    let dev = read_trim(format!("/sys/block/{}/dev", names.first()?));
    let (major, minor) = dev.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}
