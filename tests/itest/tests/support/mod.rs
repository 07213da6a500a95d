//! Helpers shared by the resource and security tests (security_*.rs, hooks.rs, cgroups.rs).
//! Each test file uses a subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::time::Duration;

use berth_itest::{Bundle, Leftovers, Output, Runtime};

/// How long a container may take to reach a status.
pub const T: Duration = Duration::from_secs(10);

/// Exit status 1, within 5 s, exactly one non-empty stderr line, which contains every one of
/// `names` (the bad-input bar of docs/engineering-rules.md).
#[track_caller]
pub fn clear_err(out: &Output, names: &[&str]) {
    clear_err_code(out, 1, names);
}

/// [`clear_err`] with another exit status (runc's `exec` exits 255 for every failure).
#[track_caller]
pub fn clear_err_code(out: &Output, code: i32, names: &[&str]) {
    assert_eq!(out.code(), Some(code), "exit status: {out}");
    assert!(
        out.elapsed < Duration::from_secs(5),
        "took {:?}: {out}",
        out.elapsed
    );
    let err = out.stderr_str();
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "want one stderr line: {out}");
    for n in names {
        assert!(lines[0].contains(n), "stderr does not name {n:?}: {out}");
    }
}

/// A busybox bundle edited by `edit`, and a leftovers snapshot taken before it is used.
pub fn bad_bundle(
    rt: &Runtime,
    id: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (Bundle, Leftovers) {
    let mut b = Bundle::busybox();
    b.config(edit);
    let l = Leftovers::snapshot(rt, &[id], &[b.path()]);
    (b, l)
}

/// `create --bundle B ID`, whatever it does.
pub fn create(rt: &Runtime, b: &Bundle, id: &str) -> Output {
    rt.guard().track(id);
    rt.guard().track_bundle(b.path());
    rt.cmd(["create", "--bundle"]).arg(b.path()).arg(id).run()
}

/// Runs `script` with `sh -c` in a foreground container and returns its output (exit 0).
#[track_caller]
pub fn sh(rt: &Runtime, b: &mut Bundle, name: &str, script: &str) -> String {
    b.sh(script);
    rt.run_cmd(b, &rt.id(name)).ok().stdout_str()
}

/// A bundle whose container waits in `/probe sleep-forever`, with `/dev/shm` writable.
pub fn sleeper() -> Bundle {
    Bundle::busybox()
}
