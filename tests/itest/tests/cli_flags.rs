//! runc's global flags and the remaining create/run flags, and the namespaces not covered in
//! isolation.rs (time, cgroup, domainname), observed from inside real containers.

use std::time::Duration;

use berth_itest::{Bundle, Kind, runtime};
use serde_json::Value;

/// `--log FILE --log-format json`: every line is `{"level","msg","time"}` with an RFC 3339
/// time (what containerd's shim decodes), and a failure leaves an `error` line naming the cause.
#[test]
fn log_format_json_lines_are_logrus() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runtime.log");
    let out = rt
        .cmd(["--log"])
        .arg(&log)
        .args(["--log-format", "json", "state", "no-such-container-xyz"])
        .fails();
    assert_eq!(out.code(), Some(1), "{}", out.stderr_str());
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    let last_error = lines
        .iter()
        .rev()
        .find(|v| v["level"] == "error")
        .unwrap_or_else(|| panic!("no error line in {text}"));
    for key in ["level", "msg", "time"] {
        assert!(last_error.get(key).is_some(), "{key} missing: {last_error}");
    }
    let msg = last_error["msg"].as_str().unwrap();
    assert!(msg.contains("does not exist"), "{msg}");
    let time = last_error["time"].as_str().unwrap();
    assert!(
        time.len() >= 20 && time.as_bytes()[10] == b'T',
        "time {time}"
    );
    if rt.kind() == Kind::Berth {
        assert!(
            msg.contains("no-such-container-xyz"),
            "berth names the id: {msg}"
        );
        // With --log elsewhere, the error is also printed on stderr.
        assert!(
            out.stderr_str().contains("does not exist"),
            "{}",
            out.stderr_str()
        );
    }
}

/// `--log-format text` (the default) writes logrus text lines.
#[test]
fn log_format_text_lines() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runtime.log");
    rt.cmd(["--log"])
        .arg(&log)
        .args(["state", "no-such-container-abc"])
        .fails();
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().last().unwrap_or_default();
    assert!(line.contains("level=error"), "{text}");
    assert!(line.contains("msg="), "{text}");
    assert!(line.starts_with("time=\""), "{text}");
}

/// `--debug` adds debug lines; without it there are none.
#[test]
fn debug_flag() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.args(&["/bin/true"]);
    let dir = tempfile::tempdir().unwrap();
    let with = dir.path().join("with.log");
    let without = dir.path().join("without.log");
    let id = rt.id("debug");
    rt.cmd(["--debug", "--log"])
        .arg(&with)
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg(&id)
        .ok();
    let id2 = rt.id("nodebug");
    rt.cmd(["--log"])
        .arg(&without)
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg(&id2)
        .ok();
    let with = std::fs::read_to_string(&with).unwrap();
    let without = std::fs::read_to_string(&without).unwrap_or_default();
    assert!(with.contains("level=debug"), "{with}");
    assert!(!without.contains("level=debug"), "{without}");
}

/// The init and berth write debug lines to the same `--log` file at the same moments; every
/// line stays whole JSON (containerd parses them). berth once wrote each line's newline in a
/// second write, and with a release build about one run in a hundred spliced two lines
/// together (this test caught it in one of two tries; the debug build is slower and collides
/// less).
#[test]
fn debug_log_lines_from_init_and_parent_stay_whole() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.args(&["/bin/true"]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runtime.log");
    for n in 0..150 {
        let id = rt.id(&format!("whole-{n}"));
        rt.cmd(["--debug", "--log-format", "json", "--log"])
            .arg(&log)
            .args(["run", "--bundle"])
            .arg(b.path())
            .arg(&id)
            .ok();
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines = 0;
    for line in text.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
        assert!(v.get("msg").is_some(), "{line}");
        lines += 1;
    }
    assert!(lines >= 150 * 3, "{lines} lines: {text}");
}

/// `--systemd-cgroup` is refused with a clear error while berth does not support it (runc
/// supports it; that is a deliberate, documented difference).
#[test]
fn systemd_cgroup_is_a_clear_error() {
    let rt = runtime();
    if rt.kind() != Kind::Berth {
        // Deliberate difference: runc and crun drive systemd over D-Bus here.
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["/bin/true"]);
    let id = rt.id("systemd-cg");
    let out = rt
        .cmd(["--systemd-cgroup", "run", "--bundle"])
        .arg(b.path())
        .arg(&id)
        .fails();
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr_str().contains("--systemd-cgroup"),
        "{}",
        out.stderr_str()
    );
    assert!(rt.try_state(&id).is_none(), "nothing left behind");
}

/// `--version` and `-v` print runc's three lines (`NAME version X.Y.Z`, `commit: …`,
/// `spec: X.Y.Z`, what Docker's `info` parses); `features` prints a JSON document.
#[test]
fn version_and_features() {
    let rt = runtime();
    for flag in ["--version", "-v"] {
        let v = rt.cmd_no_root([flag]).ok().stdout_str();
        let lines: Vec<&str> = v.lines().collect();
        let semver = |s: &str| {
            let core = s.split(['+', '-', '~']).next().unwrap_or_default();
            core.split('.').count() == 3 && core.split('.').all(|p| p.parse::<u32>().is_ok())
        };
        assert!(lines.len() >= 3, "{flag}: {v}");
        let (name, version) = lines[0].split_once(" version ").expect("NAME version X");
        assert!(!name.is_empty() && semver(version), "{flag}: {v}");
        assert!(lines[1].starts_with("commit: "), "{flag}: {v}");
        assert!(
            lines[2].strip_prefix("spec: ").is_some_and(semver),
            "{flag}: {v}"
        );
    }
    let f = rt.cmd_no_root(["features"]).run();
    if rt.kind() == Kind::Runc && !f.success() {
        // runc 1.1.5 has no `features` command yet.
        return;
    }
    let f: Value = serde_json::from_str(&f.stdout_str()).expect("features is JSON");
    assert!(f["ociVersionMin"].is_string(), "{f}");
    assert!(f["ociVersionMax"].is_string(), "{f}");
    let ns = f["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces");
    for n in ["pid", "network", "mount", "ipc", "uts", "user", "cgroup"] {
        assert!(ns.iter().any(|x| x == n), "{n} in {f}");
    }
}

/// `--no-pivot`: the container still gets its rootfs as `/` (MS_MOVE + chroot).
#[test]
fn no_pivot_runs_in_the_rootfs() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.sh("test -x /probe && ls / | tr '\\n' ' '");
    let id = rt.id("no-pivot");
    let out = rt
        .cmd(["run", "--no-pivot", "--bundle"])
        .arg(b.path())
        .arg(&id)
        .ok();
    let listing = out.stdout_str();
    assert!(
        listing.contains("probe") && listing.contains("proc"),
        "{listing}"
    );
}

/// `--preserve-fds N` hands fds 3..3+N to the process, and nothing else.
#[test]
fn preserve_fds_passes_exactly_those() {
    let rt = runtime();
    if rt.kind() == Kind::Crun {
        // crun runs through its cgroup wrapper script here, which this test cannot put between
        // the shell that opens fds 3 and 4 and the runtime.
        return;
    }
    let mut b = Bundle::busybox();
    b.sh("ls -l /proc/self/fd | grep -o '[0-9]* -> .*' | sort -n");
    let id = rt.id("preserve");
    // The shell opens fds 3 and 4, then becomes the runtime, which must pass exactly those on.
    let script = r#"exec 3</dev/null 4</dev/zero 5</dev/full 6<&-; exec "$@""#;
    let out = berth_itest::Cmd::new("/bin/sh")
        .args(["-c", script, "sh"])
        .arg(rt.bin())
        .arg("--root")
        .arg(rt.root())
        .args(["run", "--preserve-fds", "2", "--bundle"])
        .arg(b.path())
        .arg(&id)
        .run();
    rt.guard().track(&id);
    assert!(out.success(), "{}", out.stderr_str());
    let text = out.stdout_str();
    let fds: Vec<(u32, String)> = text
        .lines()
        .filter_map(|l| {
            let (n, target) = l.split_once(" -> ")?;
            Some((n.trim().parse().ok()?, target.to_string()))
        })
        .collect();
    let has = |n: u32, t: &str| fds.iter().any(|(f, x)| *f == n && x == t);
    assert!(has(3, "/dev/null") && has(4, "/dev/zero"), "{text}");
    assert!(
        !fds.iter().any(|(_, t)| t == "/dev/full"),
        "fd 5 was not preserved: {text}"
    );
    // 0-4, plus the directory ls reads.
    assert!(fds.len() <= 6, "{text}");
}

/// A new time namespace with `linux.timeOffsets`: CLOCK_BOOTTIME inside is shifted.
#[test]
fn time_namespace_offsets() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.namespace("time", None);
    b.config(|v| {
        v["linux"]["timeOffsets"] =
            serde_json::json!({"boottime": {"secs": 86400 * 365, "nanosecs": 0}});
    });
    b.sh("cut -d. -f1 /proc/uptime");
    let id = rt.id("timens");
    let out = rt.run_cmd(&b, &id).run();
    if rt.kind() == Kind::Runc {
        // runc 1.1.5 does not know the time namespace.
        assert!(!out.success());
        return;
    }
    assert!(out.success(), "{}", out.stderr_str());
    let uptime: u64 = out.stdout_str().trim().parse().expect("uptime seconds");
    assert!(uptime >= 86400 * 365, "boottime offset applied: {uptime}");
}

/// A new cgroup namespace: the container's /proc/self/cgroup paths are `/`.
#[test]
fn cgroup_namespace_roots_at_the_container() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.namespace("cgroup", None);
    b.sh("cat /proc/self/cgroup");
    let id = rt.id("cgroupns");
    let out = rt.run_cmd(&b, &id).ok();
    let text = out.stdout_str();
    assert!(!text.is_empty());
    for line in text.lines() {
        // The namespace is made after the init joined its cgroups, so it is rooted there.
        assert!(line.ends_with(":/"), "{line} in {text}");
    }
}

/// hostname and domainname from the config (UTS namespace).
#[test]
fn hostname_and_domainname() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.hostname("berth-host");
    b.config(|v| v["domainname"] = "example.test".into());
    b.sh("hostname; cat /proc/sys/kernel/domainname");
    let id = rt.id("uts");
    let out = rt.run_cmd(&b, &id).ok();
    if rt.kind() == Kind::Runc {
        // runc 1.1.5 predates domainname support (runc 1.2).
        assert_eq!(out.stdout_str(), "berth-host\n(none)\n");
        return;
    }
    assert_eq!(out.stdout_str(), "berth-host\nexample.test\n");
}

/// Commands on one container are serialised: many concurrent `state` calls while `kill`
/// and `delete` run never see a half-written state or an error other than "does not exist".
#[test]
fn concurrent_commands_are_serialised() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.probe(&["sleep-forever"]);
    let id = rt.id("lock");
    rt.run_detached(&b, &id);
    let readers: Vec<_> = (0..8)
        .map(|_| {
            rt.cmd(["state", &id])
                .timeout(Duration::from_secs(20))
                .spawn()
        })
        .collect();
    rt.kill(&id, "KILL");
    rt.wait_for_status(&id, "stopped", Duration::from_secs(10));
    rt.cmd(["delete", &id]).ok();
    for r in readers {
        let out = r.wait_unchecked();
        if out.success() {
            let v: Value = serde_json::from_str(&out.stdout_str()).expect("whole JSON");
            assert_eq!(v["id"], id.as_str());
        } else {
            assert!(
                out.stderr_str().contains("does not exist"),
                "{}",
                out.stderr_str()
            );
        }
    }
}

/// `exec --ignore-paused` into a paused container: the process waits, frozen, and `resume`
/// (which must not wait for the exec's lock) lets it run; without the flag it is refused.
#[test]
fn exec_ignore_paused_waits_for_resume() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.probe(&["sleep-forever"]);
    let id = rt.id("ignore-paused");
    rt.run_detached(&b, &id);
    rt.cmd(["pause", &id]).ok();
    let refused = rt.exec_cmd(&id, &["true"]).fails();
    assert!(
        refused.stderr_str().contains("paused"),
        "{}",
        refused.stderr_str()
    );
    let exec = rt
        .cmd(["exec", "--ignore-paused", &id, "sh", "-c", "echo ran"])
        .timeout(Duration::from_secs(30))
        .spawn();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        exec.is_running(),
        "the exec waits while the container is frozen"
    );
    rt.cmd(["resume", &id])
        .timeout(Duration::from_secs(10))
        .ok();
    let out = exec.wait();
    assert_eq!(out.stdout_str(), "ran\n", "{}", out.stderr_str());
}
