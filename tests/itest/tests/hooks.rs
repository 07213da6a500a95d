//! OCI hooks with real containers: each kind runs at its moment, in its namespace, with the
//! state JSON on stdin, exactly its `env`, `args[0]` as `argv[0]`; a timeout kills it; failures
//! abort (prestart, createRuntime, createContainer, startContainer — nothing left behind) or
//! only warn (poststart, poststop); a missing hook binary is named.
//!
//! Every hook is `/bin/busybox` (static, so it runs on the host and inside the container) with
//! `args` `["sh", "-c", SCRIPT, "hook-argv0", NAME, DIR]`: busybox picks its applet from
//! `argv[0]`, and the script records, in DIR, its mount namespace, its stdin, its environment,
//! its own command line, and appends NAME to DIR/order. Host-side hooks and createContainer
//! (which runs before pivot_root) write to a host directory; startContainer resolves its path
//! and writes inside the container, to the same directory bind-mounted at /hookout. The
//! container's process appends `process` to the same order file.
//!
//! Against berth and runc 1.1.5; runc's deliberate differences are marked `Kind::Runc`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_itest::{Bundle, Kind, Leftovers, Runtime, runtime, runtime_exclusive};
use serde_json::{Value, json};
use support::{T, clear_err, create};

/// The shell opens its own command line itself (`/proc/self` as the shell; `$$` would not
/// do: createContainer runs in the container's pid namespace with the host's procfs).
const SCRIPT: &str = "n=$1; d=$2; exec 3< /proc/self/cmdline; \
    /bin/busybox tr '\\0' ' ' <&3 > $d/$n.cmdline; \
    /bin/busybox readlink /proc/self/ns/mnt > $d/$n.mnt; \
    /bin/busybox cat > $d/$n.state; \
    /bin/busybox env > $d/$n.env; \
    echo $n >> $d/order";

fn hook(name: &str, dir: &str) -> Value {
    json!({
        "path": "/bin/busybox",
        "args": ["sh", "-c", SCRIPT, "hook-argv0", name, dir],
        "env": ["HOOKVAR=value with spaces", "PATH=/bin:/usr/bin"]
    })
}

/// A hook running `script` (with `sh -c`), optionally with a timeout.
fn script_hook(script: &str, timeout: Option<u64>) -> Value {
    let mut h = json!({"path": "/bin/busybox", "args": ["sh", "-c", script]});
    if let Some(t) = timeout {
        h["timeout"] = json!(t);
    }
    h
}

struct Recorded {
    dir: tempfile::TempDir,
}

impl Recorded {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-itest-hooks-")
            .tempdir_in("/tmp")
            .expect("hook dir");
        Recorded { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn read(&self, name: &str, what: &str) -> String {
        let p = self.path().join(format!("{name}.{what}"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }
    fn state(&self, name: &str) -> Value {
        serde_json::from_str(&self.read(name, "state"))
            .unwrap_or_else(|e| panic!("{name}.state: {e}: {}", self.read(name, "state")))
    }
    fn order(&self) -> Vec<String> {
        std::fs::read_to_string(self.path().join("order"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A bundle with every hook kind recording into `rec`, and a container process that appends
/// `process` to the order file and then sleeps.
fn recording_bundle(rec: &Recorded) -> Bundle {
    let host = rec.path().to_string_lossy().into_owned();
    let mut b = Bundle::busybox();
    b.mount(json!({
        "destination": "/hookout", "type": "bind", "source": host, "options": ["rbind", "rw"]
    }))
    .sh("echo process >> /hookout/order; exec /probe sleep-forever")
    .annotation("org.berth.test", "hooks")
    .config(|c| {
        c["hooks"] = json!({
            "prestart": [hook("prestart", &host)],
            "createRuntime": [hook("createRuntime", &host)],
            "createContainer": [hook("createContainer", &host)],
            "startContainer": [hook("startContainer", "/hookout")],
            "poststart": [hook("poststart", &host)],
            "poststop": [hook("poststop", &host)]
        })
    });
    b
}

fn host_mnt() -> String {
    std::fs::read_link("/proc/self/ns/mnt")
        .expect("own mnt ns")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_hook_at_its_moment_in_its_namespace() {
    let rt = runtime();
    let rec = Recorded::new();
    let b = recording_bundle(&rec);
    let id = rt.id("hooks-all");
    rt.create(&b, &id);
    let pid = rt.pid(&id);
    let ctr_mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .expect("container mnt ns")
        .to_string_lossy()
        .into_owned();
    assert_ne!(ctr_mnt, host_mnt());
    let mut after_create = vec!["prestart", "createRuntime", "createContainer"];
    if rt.kind() == Kind::Runc {
        // runc 1.1.5 runs poststart hooks in create, before the process (fixed in runc 1.2).
        after_create.push("poststart");
    }
    assert_eq!(rec.order(), after_create, "after create");
    rt.start(&id);
    berth_itest::wait_until("the container's process", T, || {
        rec.order().contains(&"process".to_string()).then_some(())
    });
    let order = rec.order();
    assert_eq!(order.len(), 6, "{order:?}");
    if rt.kind() == Kind::Runc {
        assert_eq!(order[4..], ["startContainer", "process"], "{order:?}");
    } else {
        assert_eq!(order[3], "startContainer", "{order:?}");
        // poststart runs after the process started; the process's own line may come before
        // or after it.
        assert!(order[4..].contains(&"poststart".to_string()), "{order:?}");
    }
    rt.kill(&id, "KILL");
    rt.wait_for_status(&id, "stopped", T);
    rt.cmd(["delete", id.as_str()]).ok();
    assert_eq!(rec.order().last().map(String::as_str), Some("poststop"));

    for name in ["prestart", "createRuntime", "poststart", "poststop"] {
        assert_eq!(
            rec.read(name, "mnt").trim(),
            host_mnt(),
            "{name} runs in the host's mount ns"
        );
    }
    for name in ["createContainer", "startContainer"] {
        assert_eq!(
            rec.read(name, "mnt").trim(),
            ctr_mnt,
            "{name} runs in the container's"
        );
    }
    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        // args[0] is argv[0]: busybox ran as "sh".
        let cmdline = rec.read(name, "cmdline");
        assert!(cmdline.starts_with("sh -c "), "{name}: argv {cmdline:?}");
        assert!(
            cmdline.contains(&format!(" hook-argv0 {name} ")),
            "{cmdline:?}"
        );
        // exactly the hook's env (busybox sh adds PWD, SHLVL and `_` itself).
        let env = rec.read(name, "env");
        assert!(env.contains("HOOKVAR=value with spaces\n"), "{name}: {env}");
        assert!(
            !env.contains("HOME="),
            "{name} inherited the environment: {env}"
        );
        let st = rec.state(name);
        assert_eq!(st["id"], id.as_str(), "{name}: {st}");
        assert_eq!(st["annotations"]["org.berth.test"], "hooks", "{name}: {st}");
        assert_eq!(
            Path::new(st["bundle"].as_str().unwrap_or_default()),
            b.path(),
            "{name}: {st}"
        );
        assert!(st["ociVersion"].is_string(), "{name}: {st}");
    }
    // The state's pid is the init's as the host sees it; poststop has none.
    for name in ["prestart", "createRuntime", "poststart"] {
        assert_eq!(rec.state(name)["pid"], pid, "{name}");
    }
    assert!(rec.state("poststop")["pid"].is_null());
    for name in ["createContainer", "startContainer"] {
        if rt.kind() == Kind::Runc {
            // runc 1.1.5 gives the pid inside the container's pid namespace.
            assert_eq!(rec.state(name)["pid"], 1, "{name}");
        } else {
            assert_eq!(rec.state(name)["pid"], pid, "{name}");
        }
    }
    let status = |n: &str| {
        rec.state(n)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    for (name, want) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststop", "stopped"),
    ] {
        assert_eq!(status(name), want, "{name}");
    }
    if rt.kind() == Kind::Runc {
        // runc 1.1.5 runs poststart in create (see above).
        assert_eq!(status("poststart"), "created");
    } else {
        assert_eq!(status("poststart"), "running");
    }
}

#[test]
fn hooks_with_run() {
    // run = create + start: the same order, and poststop after the process exits.
    let rt = runtime();
    let rec = Recorded::new();
    let mut b = recording_bundle(&rec);
    b.sh("echo process >> /hookout/order");
    rt.run_cmd(&b, &rt.id("hooks-run")).ok();
    let order = rec.order();
    if rt.kind() == Kind::Runc {
        // runc 1.1.5: poststart before startContainer (see above).
        assert_eq!(
            order[..5],
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "poststart",
                "startContainer"
            ],
            "{order:?}"
        );
    } else {
        assert_eq!(
            order[..4],
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer"
            ],
            "{order:?}"
        );
    }
    assert_eq!(
        order.last().map(String::as_str),
        Some("poststop"),
        "{order:?}"
    );
    assert_eq!(order.len(), 7, "{order:?}");
}

/// A config whose hook of kind `kind` is `h`, with the host-side leftovers snapshot.
fn with_hook(rt: &Runtime, id: &str, kind: &str, h: Value) -> (Bundle, Leftovers) {
    support::bad_bundle(rt, id, |c| c["hooks"] = json!({ kind: [h] }))
}

#[test]
fn failing_create_hooks_abort_and_leave_nothing() {
    let rt = runtime_exclusive();
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let id = rt.id(&format!("hookfail-{kind}"));
        let (b, l) = with_hook(
            &rt,
            &id,
            kind,
            script_hook("echo hook-says-no >&2; exit 3", None),
        );
        let out = create(&rt, &b, &id);
        if rt.kind() == Kind::Runc {
            assert_eq!(out.code(), Some(1), "{kind}: {out}");
            assert!(out.stderr_str().contains("exit status 3"), "{kind}: {out}");
        } else {
            clear_err(&out, &[kind, "/bin/busybox", "3", "hook-says-no"]);
        }
        l.assert_unchanged();
    }
}

#[test]
fn failing_start_container_hook() {
    let rt = runtime_exclusive();
    let id = rt.id("hookfail-startContainer");
    let (b, l) = with_hook(
        &rt,
        &id,
        "startContainer",
        script_hook("echo start-says-no >&2; exit 4", None),
    );
    rt.create(&b, &id);
    let out = rt.cmd(["start", id.as_str()]).run();
    if rt.kind() == Kind::Runc {
        // runc 1.1.5's start returns before its init runs the hook: exit 0, and the container
        // is then stopped; delete removes it.
        out.assert_ok();
        rt.wait_for_status(&id, "stopped", T);
        rt.cmd(["delete", id.as_str()]).ok();
    } else {
        // runtime-spec: stop the container and destroy it.
        clear_err(&out, &["startContainer", "start-says-no"]);
        assert!(rt.try_state(&id).is_none(), "container still exists");
    }
    l.assert_unchanged();
}

#[test]
fn failing_poststart_and_poststop_hooks_only_warn() {
    let rt = runtime_exclusive();
    let id = rt.id("hookwarn");
    let b = Bundle::busybox();
    let l = Leftovers::snapshot(&rt, &[&id], &[b.path()]);
    let mut b = b;
    b.config(|c| {
        c["hooks"] = json!({
            "poststart": [script_hook("exit 5", None)],
            "poststop": [script_hook("exit 6", None)]
        })
    });
    if rt.kind() == Kind::Runc {
        // runc 1.1.5 runs poststart in create and fails it (then destroys the container,
        // running poststop, whose failure it only logs).
        let out = create(&rt, &b, &id);
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(out.stderr_str().contains("exit status 5"), "{out}");
        assert!(rt.try_state(&id).is_none());
        l.assert_unchanged();
        return;
    }
    rt.create(&b, &id);
    let out = rt.cmd(["start", id.as_str()]).run();
    {
        let out = out.assert_ok();
        assert!(out.stderr_str().contains("poststart"), "no warning: {out}");
        assert_eq!(rt.status(&id).as_deref(), Some("running"));
        rt.kill(&id, "KILL");
        rt.wait_for_status(&id, "stopped", T);
    }
    let out = rt.cmd(["delete", id.as_str()]).ok();
    assert!(out.stderr_str().contains("poststop"), "no warning: {out}");
    assert!(rt.try_state(&id).is_none());
    l.assert_unchanged();
}

#[test]
fn hook_timeout_kills_it() {
    let rt = runtime_exclusive();
    let id = rt.id("hook-timeout");
    let (b, l) = with_hook(&rt, &id, "createRuntime", script_hook("sleep 30", Some(1)));
    let out = create(&rt, &b, &id);
    assert!(
        out.elapsed < Duration::from_secs(4),
        "the timeout was not applied: {out}"
    );
    if rt.kind() == Kind::Runc {
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(out.stderr_str().contains("timeout"), "{out}");
    } else {
        clear_err(&out, &["createRuntime", "timed out"]);
    }
    l.assert_unchanged();
    // The hook's sleep is gone too.
    let sleeping = std::fs::read_dir("/proc")
        .expect("proc")
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|c| c.starts_with(b"sh\0-c\0sleep 30"));
    assert!(!sleeping, "the timed-out hook still runs");
}

#[test]
fn missing_hook_binary() {
    let rt = runtime_exclusive();
    for kind in ["prestart", "createContainer"] {
        let id = rt.id(&format!("hook-missing-{kind}"));
        let (b, l) = with_hook(&rt, &id, kind, json!({"path": "/nonexistent/berth-hook"}));
        let out = create(&rt, &b, &id);
        if rt.kind() == Kind::Runc {
            assert_eq!(out.code(), Some(1), "{out}");
        } else {
            clear_err(&out, &[kind, "/nonexistent/berth-hook"]);
        }
        l.assert_unchanged();
    }
}

/// The state a hook sees is small JSON; a hook that does not read it at all still runs.
#[test]
fn hook_that_ignores_stdin() {
    let rt = runtime();
    let rec = Recorded::new();
    let marker: PathBuf = rec.path().join("ran");
    let mut b = Bundle::busybox();
    b.probe(&["exit", "0"]).config(|c| {
        c["hooks"] = json!({"createRuntime": [script_hook(
            &format!("/bin/busybox touch {}", marker.display()), Some(5))]})
    });
    rt.run_cmd(&b, &rt.id("hook-nostdin")).ok();
    assert!(marker.exists());
}
