//! Container lifecycle through the runtime's CLI: create/start/state/kill/delete/list/ps,
//! foreground and detached run, exec, spec.

use std::time::Duration;

use berth_itest::{Bundle, Kind, probe_line, runtime};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(10);

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim_end()
                .to_string()
        })
        .unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() < 20 || !digits(0..4) || b[4] != b'-' || !digits(5..7) || b[7] != b'-' {
        return false;
    }
    if !digits(8..10) || b[10] != b'T' || !digits(11..13) || b[13] != b':' || !digits(14..16) {
        return false;
    }
    if b[16] != b':' || !digits(17..19) {
        return false;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        b"Z" => true,
        [sign, h1, h2, b':', m1, m2] if (*sign == b'+' || *sign == b'-') => {
            [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
        }
        _ => false,
    }
}

#[test]
fn rfc3339_checker() {
    assert!(is_rfc3339("2026-11-23T14:30:26.184894616Z"));
    assert!(is_rfc3339("2026-11-23T14:30:26+01:00"));
    assert!(!is_rfc3339("2026-11-23 14:30:26Z"));
    assert!(!is_rfc3339("2026-11-23T14:30:26."));
}

#[test]
fn create_leaves_init_blocked_then_start_runs_the_process() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.annotation("org.berth.test", "lifecycle");
    let id = rt.id("create-start");
    rt.create(&b, &id);

    let s = rt.state(&id);
    assert_eq!(s["status"], "created", "{s}");
    assert_eq!(s["id"], json!(id));
    let pid = s["pid"].as_i64().expect("pid") as i32;
    assert!(pid > 0, "{s}");
    assert!(
        s["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "ociVersion: {s}"
    );
    let bundle = b.path().canonicalize().expect("bundle path");
    assert_eq!(s["bundle"], json!(bundle.to_str()), "{s}");
    if rt.kind() == Kind::Crun {
        // crun 1.8 reports root.path as written in config.json.
        assert_eq!(s["rootfs"], "rootfs", "{s}");
    } else {
        assert_eq!(s["rootfs"], json!(bundle.join("rootfs").to_str()), "{s}");
    }
    let created = s["created"].as_str().unwrap_or_default();
    assert!(is_rfc3339(created), "created is not RFC3339: {created:?}");
    assert!(s["owner"].is_string(), "owner: {s}");
    assert_eq!(s["annotations"]["org.berth.test"], "lifecycle", "{s}");

    // The init is the runtime's, blocked before exec: not yet the user's program.
    let before = cmdline(pid);
    assert!(!before.is_empty(), "init {pid} is gone after create");
    assert!(
        !before.starts_with("/probe"),
        "user process already exec'd at create: {before}"
    );

    rt.start(&id);
    rt.wait_for_status(&id, "running", T);
    assert_eq!(rt.pid(&id), pid, "start must not change the init pid");
    berth_itest::wait_until("init exec'd the user process", T, || {
        (cmdline(pid) == "/probe sleep-forever").then_some(())
    });
}

#[test]
fn state_has_no_annotations_key_problem_when_unset() {
    let rt = runtime();
    let b = Bundle::busybox();
    let id = rt.id("state-plain");
    rt.create(&b, &id);
    let s = rt.state(&id);
    // runc omits the key when there are none; an empty object would be fine too.
    assert!(
        s.get("annotations")
            .is_none_or(|a| a.is_null() || a.as_object().is_some_and(|o| o.is_empty())),
        "{s}"
    );
}

#[test]
fn kill_accepts_name_prefixed_name_and_number() {
    let rt = runtime();
    let b = Bundle::busybox();
    for sig in ["KILL", "SIGKILL", "9"] {
        let id = rt.id(&format!("kill-{sig}"));
        rt.run_detached(&b, &id);
        rt.wait_for_status(&id, "running", T);
        let pid = rt.pid(&id);
        rt.kill(&id, sig);
        rt.wait_for_status(&id, "stopped", T);
        berth_itest::wait_until("init reaped", T, || cmdline(pid).is_empty().then_some(()));
        rt.cmd(["delete", id.as_str()]).ok();
        assert!(rt.try_state(&id).is_none(), "state of {id} after delete");
    }
}

#[test]
fn kill_all_kills_every_process() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.sh("/probe sleep-forever & exec /probe sleep-forever");
    let id = rt.id("kill-all");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);
    let pids = berth_itest::wait_until("two processes in ps", T, || {
        let out = rt.cmd(["ps", "--format", "json", id.as_str()]).ok();
        let v: Value = serde_json::from_slice(&out.stdout).expect("ps json");
        let pids: Vec<i64> = v.as_array()?.iter().filter_map(Value::as_i64).collect();
        (pids.len() == 2).then_some(pids)
    });
    rt.cmd(["kill", "--all", id.as_str(), "KILL"]).ok();
    rt.wait_for_status(&id, "stopped", T);
    for p in pids {
        berth_itest::wait_until("process gone", T, || {
            cmdline(p as i32).is_empty().then_some(())
        });
    }
}

#[test]
fn delete_running_needs_force() {
    let rt = runtime();
    let b = Bundle::busybox();
    let id = rt.id("delete-force");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);
    let pid = rt.pid(&id);
    let out = rt.cmd(["delete", id.as_str()]).fails();
    assert!(
        out.stderr_str().contains(&id) || out.stderr_str().contains("running"),
        "{out}"
    );
    assert_eq!(
        rt.status(&id).as_deref(),
        Some("running"),
        "a failed delete changed the container"
    );
    rt.delete_force(&id);
    assert!(rt.try_state(&id).is_none(), "state after delete --force");
    berth_itest::wait_until("init killed", T, || cmdline(pid).is_empty().then_some(()));
    assert!(!rt.root().join(&id).exists(), "state dir left behind");
}

#[test]
fn delete_stopped_and_created() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    let created = rt.id("delete-created");
    rt.create(&b, &created);
    let pid = rt.pid(&created);
    // A created container is deleted without --force, and its blocked init goes away.
    rt.cmd(["delete", created.as_str()]).ok();
    assert!(rt.try_state(&created).is_none());
    berth_itest::wait_until("created init killed", T, || {
        cmdline(pid).is_empty().then_some(())
    });

    b.probe(&["exit", "0"]);
    let stopped = rt.id("delete-stopped");
    rt.run_detached(&b, &stopped);
    rt.wait_for_status(&stopped, "stopped", T);
    rt.cmd(["delete", stopped.as_str()]).ok();
    assert!(rt.try_state(&stopped).is_none());
}

#[test]
fn list_table_quiet_and_json() {
    let rt = runtime();
    let b = Bundle::busybox();
    let id = rt.id("list");
    rt.create(&b, &id);
    let table = rt.cmd(["list"]).ok().stdout_str();
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    if rt.kind() == Kind::Crun {
        // crun 1.8's own table layout.
        let want = [
            "NAME", "PID", "STATUS", "BUNDLE", "PATH", "CREATED", "OWNER",
        ];
        assert_eq!(header, want, "{table}");
    } else {
        let want = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
        assert_eq!(header, want, "{table}");
    }
    let row: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row.first(), Some(&id.as_str()), "{table}");
    assert_eq!(row.get(2), Some(&"created"), "{table}");

    let quiet = rt.cmd(["list", "-q"]).ok().stdout_str();
    assert_eq!(quiet.trim(), id);

    let json = rt.cmd(["list", "--format", "json"]).ok();
    let v: Value = serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}: {json}"));
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 1, "{v}");
    assert_eq!(arr[0]["id"], json!(id));
    assert_eq!(arr[0]["status"], "created");
    assert_eq!(arr[0]["pid"], json!(rt.pid(&id)));
}

#[test]
fn list_empty_root() {
    let rt = runtime();
    let json = rt.cmd(["list", "--format", "json"]).ok();
    let v: Value = serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}: {json}"));
    // runc prints `null` for no containers; an empty array is equally acceptable.
    assert!(
        v.is_null() || v.as_array().is_some_and(Vec::is_empty),
        "{v}"
    );
}

#[test]
fn ps_table_and_json() {
    let rt = runtime();
    let b = Bundle::busybox();
    let id = rt.id("ps");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);
    let pid = rt.pid(&id);
    let json = rt.cmd(["ps", "--format", "json", id.as_str()]).ok();
    let v: Value = serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(v, json!([pid]), "{json}");
    let table = rt.cmd(["ps", id.as_str()]).ok().stdout_str();
    let header = table.lines().next().unwrap_or_default();
    assert!(header.split_whitespace().any(|w| w == "PID"), "{table}");
    if rt.kind() == Kind::Crun {
        // crun 1.8's table is the pid list only.
        assert_eq!(
            table.lines().nth(1),
            Some(pid.to_string().as_str()),
            "{table}"
        );
    } else {
        // runc runs ps(1): one row per process with its command.
        let row = table.lines().skip(1).find(|l| l.contains("sleep-forever"));
        assert!(row.is_some(), "{table}");
    }
}

#[test]
fn run_foreground_exit_codes() {
    let rt = runtime();
    for code in [0, 3, 255] {
        let mut b = Bundle::busybox();
        b.probe(&["exit", &code.to_string()]);
        let out = rt.run_cmd(&b, &rt.id(&format!("run-exit-{code}"))).run();
        assert_eq!(out.code(), Some(code), "{out}");
    }
}

#[test]
fn run_foreground_output_and_stdin_pass_through() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.sh("echo out; echo err >&2; /probe cat");
    let out = rt
        .run_cmd(&b, &rt.id("run-stdio"))
        .stdin_bytes("from stdin\n")
        .ok();
    assert_eq!(out.stdout_str(), "out\nfrom stdin\n", "{out}");
    assert_eq!(out.stderr_str(), "err\n", "{out}");
}

#[test]
fn run_foreground_killed_by_signal_is_128_plus_n() {
    let rt = runtime();
    // Without a pid namespace the process is no namespace init, so it can die of SIGTERM.
    let mut b = Bundle::busybox();
    b.remove_namespace("pid").probe(&["kill-self", "15"]);
    let out = rt.run_cmd(&b, &rt.id("run-sigterm")).run();
    assert_eq!(out.code(), Some(128 + 15), "{out}");

    // A pid namespace init can only be killed by SIGKILL from outside.
    let b = Bundle::busybox();
    let id = rt.id("run-sigkill");
    let running = rt.run_cmd(&b, &id).spawn();
    rt.wait_for_status(&id, "running", T);
    rt.kill(&id, "KILL");
    let out = running.wait();
    assert_eq!(out.code(), Some(128 + 9), "{out}");
}

#[test]
fn run_detached_with_pid_file() {
    let rt = runtime();
    let b = Bundle::busybox();
    let id = rt.id("run-d-pidfile");
    let pid_file = b.path().join("run.pid");
    rt.cmd(["run", "-d", "--pid-file"])
        .arg(&pid_file)
        .arg("--bundle")
        .arg(b.path())
        .arg(&id)
        .ok();
    rt.guard().track(&id);
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    let written = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(
        written.trim(),
        rt.pid(&id).to_string(),
        "pid file {written:?}"
    );
}

#[test]
fn create_with_pid_file() {
    let rt = runtime();
    let b = Bundle::busybox();
    let id = rt.id("create-pidfile");
    let pid_file = b.path().join("create.pid");
    rt.cmd(["create", "--pid-file"])
        .arg(&pid_file)
        .arg("--bundle")
        .arg(b.path())
        .arg(&id)
        .ok();
    let written = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(written.trim(), rt.pid(&id).to_string());
}

#[test]
fn run_keep_leaves_a_stopped_container() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.probe(&["exit", "7"]);
    let id = rt.id("run-keep");
    let out = rt
        .cmd(["run", "--keep", "--bundle"])
        .arg(b.path())
        .arg(&id)
        .run();
    if rt.kind() == Kind::Crun {
        // crun 1.8 has no `run --keep`.
        assert!(out.stderr_str().contains("--keep"), "{out}");
        assert!(rt.try_state(&id).is_none());
        return;
    }
    assert_eq!(out.code(), Some(7), "{out}");
    assert_eq!(
        rt.status(&id).as_deref(),
        Some("stopped"),
        "--keep must keep the container"
    );
    rt.cmd(["delete", id.as_str()]).ok();
}

#[test]
fn exec_args_exit_codes_env_cwd_user() {
    let rt = runtime();
    let b = Bundle::busybox();
    let id = rt.id("exec");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);

    rt.exec_cmd(&id, &["/probe", "exit", "0"]).ok();
    let out = rt.exec_cmd(&id, &["/probe", "exit", "5"]).run();
    assert_eq!(out.code(), Some(5), "{out}");

    let out = rt
        .cmd([
            "exec",
            "--env",
            "BERTH_X=hello world",
            id.as_str(),
            "/bin/env",
        ])
        .ok();
    let env = out.stdout_str();
    assert!(env.lines().any(|l| l == "BERTH_X=hello world"), "{out}");
    let has_path = env.lines().any(|l| l.starts_with("PATH="));
    if rt.kind() == Kind::Crun {
        // crun 1.8: --env replaces the config's environment instead of adding to it.
        assert!(!has_path, "{out}");
    } else {
        assert!(has_path, "the config's env must be kept: {out}");
    }

    let out = rt.cmd(["exec", "--cwd", "/tmp", id.as_str(), "pwd"]).ok();
    assert_eq!(out.stdout_str(), "/tmp\n");

    let out = rt
        .cmd(["exec", "--user", "1000:1000", id.as_str(), "id"])
        .ok();
    assert!(
        out.stdout_str()
            .starts_with("uid=1000(user) gid=1000(user)"),
        "{out}"
    );

    let out = rt
        .cmd([
            "exec",
            id.as_str(),
            "sh",
            "-c",
            "echo $$; cat /proc/1/cmdline",
        ])
        .ok();
    let text = out.stdout_str();
    assert!(
        text.contains("/probe\0sleep-forever") || text.contains("/probe"),
        "{out}"
    );
    assert_ne!(
        text.lines().next(),
        Some("1"),
        "exec'd process must not be pid 1: {out}"
    );
}

#[test]
fn exec_process_json() {
    let rt = runtime();
    let b = Bundle::busybox();
    let id = rt.id("exec-p");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);
    let process = json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [5]},
        "args": ["sh", "-c", "id; pwd; echo $BERTH_P; exit 4"],
        "env": ["PATH=/bin", "BERTH_P=from-json"],
        "cwd": "/tmp"
    });
    let p = b.path().join("process.json");
    std::fs::write(&p, process.to_string()).expect("write process.json");
    let out = rt.cmd(["exec", "-p"]).arg(&p).arg(&id).run();
    assert_eq!(out.code(), Some(4), "{out}");
    let text = out.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("uid=1000(user) gid=1000(user)")),
        "{out}"
    );
    assert!(
        lines.first().is_some_and(|l| l.contains("5(tty)")),
        "additionalGids: {out}"
    );
    assert_eq!(lines.get(1), Some(&"/tmp"), "{out}");
    assert_eq!(lines.get(2), Some(&"from-json"), "{out}");
}

#[test]
fn exec_detached_and_into_stopped_container() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    let id = rt.id("exec-d");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);
    rt.cmd(["exec", "-d", id.as_str(), "/probe", "sleep-forever"])
        .ok();
    let json = rt.cmd(["ps", "--format", "json", id.as_str()]).ok();
    let v: Value = serde_json::from_slice(&json.stdout).expect("ps json");
    assert_eq!(
        v.as_array().map(Vec::len),
        Some(2),
        "exec -d process missing: {v}"
    );

    b.probe(&["exit", "0"]);
    let stopped = rt.id("exec-stopped");
    rt.run_detached(&b, &stopped);
    rt.wait_for_status(&stopped, "stopped", T);
    let out = rt.exec_cmd(&stopped, &["true"]).fails();
    assert!(!out.stderr.is_empty(), "no error message: {out}");
}

#[test]
fn exec_probe_sees_the_container() {
    let rt = runtime();
    let b = Bundle::busybox();
    let id = rt.id("exec-probe");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);
    let out = rt.exec_cmd(&id, &["/probe", "fds"]).ok();
    let fds = probe_line(&out.stdout_str(), "fds");
    // Only stdio: nothing of the runtime leaks into an exec'd process.
    assert_eq!(fds.keys().collect::<Vec<_>>(), ["0", "1", "2"], "{out}");
}

#[test]
fn spec_writes_a_default_config() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    rt.cmd_no_root(["spec"]).current_dir(dir.path()).ok();
    let text = std::fs::read_to_string(dir.path().join("config.json")).expect("config.json");
    let v: Value = serde_json::from_str(&text).expect("spec output parses");
    assert!(
        v["ociVersion"]
            .as_str()
            .is_some_and(|s| s.starts_with("1.")),
        "{v}"
    );
    assert_eq!(v["process"]["args"], json!(["sh"]));
    assert_eq!(v["process"]["terminal"], json!(true));
    assert_eq!(v["root"]["path"], "rootfs");
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for t in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(ns.contains(&t), "default namespaces {ns:?} lack {t}");
    }
    // A second `spec` must not clobber the file.
    let again = rt.cmd_no_root(["spec"]).current_dir(dir.path()).run();
    assert!(!again.success(), "spec overwrote config.json: {again}");

    let other = tempfile::tempdir().expect("tempdir");
    rt.cmd_no_root(["spec", "--bundle"]).arg(other.path()).ok();
    assert!(other.path().join("config.json").is_file(), "spec --bundle");
}
