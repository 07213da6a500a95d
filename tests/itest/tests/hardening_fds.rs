//! Fds, the working directory and dumpability (security.md §6 F-02, F-06; CVE-2024-21626,
//! CVE-2016-9962). The F-01 fd whitelist matrix is in `fds.rs`.
//!
//! - F-02: `process.cwd=/proc/self/fd/N` for every N in 3..64, with the caller leaking a host
//!   directory (and other fds) to the runtime, and with host directories handed over by
//!   `--preserve-fds`; `exec --cwd` through a symlink into `/proc/self/fd/N`. The process must
//!   never start with a working directory outside the container.
//! - F-06: the container's PID 1 tries `PTRACE_ATTACH` and `/proc/<pid>/fd` on every process
//!   that appears while `exec` runs 100 times: the runtime's code before execve must always
//!   refuse (non-dumpable), and nothing it holds may be reached.
//!
//! Debian 12's runc 1.1.5 carries the CVE-2024-21626 fixes (upstream 1.1.12): it refuses the
//! same cases, with its own message.

use std::time::Duration;

use berth_itest::attack::{install_attack, result_line, with_dir_fds, with_fds};
use berth_itest::{Bundle, Kind, Output, runtime};

const T: Duration = Duration::from_secs(15);

/// What a `pwd`-and-fds container reported, or the runtime's refusal.
enum Outcome {
    /// The runtime refused: its one error line.
    Refused(String),
    /// The process ran: its output.
    Ran(String),
}

fn outcome(out: &Output) -> Outcome {
    assert!(!out.timed_out, "hung: {out}");
    if out.success() {
        Outcome::Ran(out.stdout_str())
    } else {
        assert_eq!(out.code(), Some(1), "{out}");
        Outcome::Refused(out.stderr_str())
    }
}

/// F-02: `process.cwd` = `/proc/self/fd/N`, N = 3..64, with a directory, an O_PATH fd and a
/// socket leaked by the caller (fds 3..6). Every run is refused: the leaked fds never reach
/// berth's init (its sealed re-exec closes them), and any other fd is not a directory.
#[test]
fn f02_cwd_through_leaked_fds_3_to_63() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.sh("pwd");
    let mut escaped = Vec::new();
    for n in 3..64 {
        b.cwd(&format!("/proc/self/fd/{n}"));
        let id = rt.id(&format!("f02-cwd-{n}"));
        rt.guard().track(&id);
        let out = with_fds(&rt, 0, ["run", "--bundle"])
            .arg(b.path())
            .arg(&id)
            .timeout(T)
            .run();
        match outcome(&out) {
            Outcome::Refused(err) => {
                assert!(
                    err.contains("cwd") || err.contains("/proc/self/fd"),
                    "fd {n}: the error does not name the cwd: {out}"
                );
            }
            Outcome::Ran(text) => escaped.push((n, text)),
        }
    }
    assert!(
        escaped.is_empty(),
        "started with a cwd outside the container: {escaped:?}"
    );
}

/// F-02 with `--preserve-fds`: the preserved fds 3..6 are host directories on purpose, so
/// `cwd=/proc/self/fd/3` really enters a host directory; the getcwd check refuses it.
#[test]
fn f02_cwd_through_a_preserved_directory() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.sh("pwd").cwd("/proc/self/fd/3");
    let id = rt.id("f02-preserved");
    rt.guard().track(&id);
    let out = with_dir_fds(&rt, 3, ["run", "--preserve-fds", "3", "--bundle"])
        .arg(b.path())
        .arg(&id)
        .timeout(T)
        .run();
    match outcome(&out) {
        Outcome::Refused(err) => {
            // runc's text (its CVE-2024-21626 fix, backported to Debian's 1.1.5) differs.
            let want = match rt.kind() {
                Kind::Runc => "outside of container mount namespace root",
                _ => "outside the container",
            };
            assert!(err.contains(want), "{out}");
            let lines = err.lines().filter(|l| !l.trim().is_empty()).count();
            assert_eq!(lines, 1, "{out}");
        }
        Outcome::Ran(text) => panic!("started outside the container: {text:?} {out}"),
    }
}

/// F-02 for exec: `exec --cwd /link` where `/link -> /proc/self/fd/N` (N = 3..10), with the
/// caller of `exec` leaking a host directory at fd 3.
#[test]
fn f02_exec_cwd_through_a_symlink() {
    let rt = runtime();
    let b = Bundle::busybox();
    let id = rt.id("f02-exec");
    for n in 3..10 {
        std::os::unix::fs::symlink(
            format!("/proc/self/fd/{n}"),
            b.rootfs().join(format!("link{n}")),
        )
        .expect("link");
    }
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);
    let mut escaped = Vec::new();
    for n in 3..10 {
        let out = with_fds(
            &rt,
            0,
            ["exec", "--cwd", &format!("/link{n}"), id.as_str(), "pwd"],
        )
        .timeout(T)
        .run();
        assert!(!out.timed_out, "{out}");
        if out.success() {
            escaped.push((n, out.stdout_str()));
        } else {
            // exec failures exit 255 (runc) or 1.
            assert!(matches!(out.code(), Some(1) | Some(255)), "{out}");
        }
    }
    assert!(
        escaped.is_empty(),
        "exec started outside the container: {escaped:?}"
    );
}

/// F-06: PID 1 attaches to (and reads the fds of) every new process while `exec` runs 100
/// times. The runtime's children refuse until they have exec'd (denied > 0 proves the
/// watcher saw them); nothing foreign is ever attached or read (leaks = 0).
#[test]
fn f06_exec_children_are_not_dumpable_100() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    install_attack(&b);
    b.readonly(false)
        .args(&["/attack", "ptrace-watch", "/tmp/stop", "/tmp/result"]);
    let id = rt.id("f06");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);
    for _ in 0..100 {
        rt.exec_cmd(&id, &["/probe", "exit", "0"]).ok();
    }
    std::fs::write(b.rootfs().join("tmp/stop"), "").expect("stop");
    let v = result_line(&b.rootfs().join("tmp/result"), "ptrace-watch", T);
    eprintln!("f06: {v:?}");
    assert_eq!(
        v["leaks"], "0",
        "the runtime's children were reachable: {v:?}"
    );
    let pids: u32 = v["pids"].parse().expect("pids");
    let denied: u32 = v["denied"].parse().expect("denied");
    assert!(pids >= 50, "the watcher saw too few processes: {v:?}");
    assert!(
        denied > 0,
        "the watcher never met a runtime child before its execve: {v:?}"
    );
}
