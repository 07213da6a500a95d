//! Bad input: every case exits 1 within 5 s with one clear stderr line naming the offending
//! field, path or id, and leaves nothing behind (no state dir, process, mount, cgroup or pty).
//!
//! Messages are matched on the *name* appearing, not on exact text. Where runc 1.1.5 behaves
//! differently on purpose (accepts the input) or its message lacks the name, the test says so
//! with an explicit `rt.kind() == Kind::Runc` branch, and still checks what runc does.

use std::path::Path;
use std::time::Duration;

use berth_itest::{Bundle, Kind, Leftovers, Output, Runtime, runtime_exclusive};
use serde_json::json;

/// Exit status 1, within 5 s, exactly one non-empty stderr line, which contains every one of
/// `names`.
#[track_caller]
fn clear_err(out: &Output, names: &[&str]) {
    assert_eq!(out.code(), Some(1), "exit status: {out}");
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

/// A bundle whose config.json is `edit`ed, and a leftovers snapshot taken before using it.
fn setup(rt: &Runtime, id: &str, edit: impl FnOnce(&mut serde_json::Value)) -> (Bundle, Leftovers) {
    let mut b = Bundle::busybox();
    b.config(edit);
    let l = Leftovers::snapshot(rt, &[id], &[b.path()]);
    (b, l)
}

fn create(rt: &Runtime, b: &Bundle, id: &str) -> Output {
    rt.guard().track(id);
    rt.cmd(["create", "--bundle"]).arg(b.path()).arg(id).run()
}

#[test]
fn missing_config_json() {
    let rt = runtime_exclusive();
    let id = rt.id("no-config");
    let (b, l) = setup(&rt, &id, |_| {});
    std::fs::remove_file(b.config_path()).expect("rm config.json");
    clear_err(&create(&rt, &b, &id), &["config.json"]);
    l.assert_unchanged();
}

#[test]
fn malformed_json() {
    let rt = runtime_exclusive();
    let id = rt.id("malformed");
    let (b, l) = setup(&rt, &id, |_| {});
    std::fs::write(b.config_path(), "{\"ociVersion\": ").expect("write");
    let out = create(&rt, &b, &id);
    if rt.kind() == Kind::Runc {
        // runc 1.1.5 prints only the decoder's "unexpected EOF", without the file name.
        clear_err(&out, &["unexpected EOF"]);
    } else {
        clear_err(&out, &["config.json"]);
    }
    l.assert_unchanged();
}

#[test]
fn wrong_type_for_a_field() {
    let rt = runtime_exclusive();
    let cases = [
        ("wrong-type-args", "args", json!("/probe sleep-forever")),
        ("wrong-type-terminal", "terminal", json!("yes")),
    ];
    for (name, field, value) in cases {
        let id = rt.id(name);
        let (b, l) = setup(&rt, &id, |c| c["process"][field] = value);
        let out = create(&rt, &b, &id);
        if rt.kind() == Kind::Crun {
            // crun 1.8's parser silently ignores a value of the wrong type.
            out.assert_ok();
            rt.delete_force(&id);
        } else {
            clear_err(&out, &[field]);
        }
        l.assert_unchanged();
    }
}

#[test]
fn unknown_namespace_type() {
    let rt = runtime_exclusive();
    let id = rt.id("bogus-ns");
    let (b, l) = setup(&rt, &id, |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("ns")
            .push(json!({"type": "bogus"}))
    });
    clear_err(&create(&rt, &b, &id), &["bogus"]);
    l.assert_unchanged();
}

#[test]
fn relative_mount_destination() {
    let rt = runtime_exclusive();
    let id = rt.id("rel-dest");
    let (b, l) = setup(&rt, &id, |c| {
        c["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": "relative/dest", "type": "tmpfs", "source": "tmpfs"
        }))
    });
    let out = create(&rt, &b, &id);
    if rt.kind() == Kind::Runc {
        // runc 1.1.5 still accepts relative destinations (deprecated): it warns, naming the
        // path, and mounts under the rootfs.
        let out = out.assert_ok();
        assert!(out.stderr_str().contains("relative/dest"), "{out}");
        rt.delete_force(&id);
    } else if rt.kind() == Kind::Crun {
        // crun 1.8 accepts them silently, relative to the rootfs.
        out.assert_ok();
        rt.delete_force(&id);
    } else {
        clear_err(&out, &["relative/dest"]);
    }
    l.assert_unchanged();
}

#[test]
fn mount_destination_with_dotdot() {
    let rt = runtime_exclusive();
    let id = rt.id("dotdot-dest");
    let escape = format!("berth-escape-{}", std::process::id());
    let dest = format!("/../../../../tmp/{escape}");
    let (b, l) = setup(&rt, &id, |c| {
        c["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": dest, "type": "tmpfs", "source": "tmpfs"
        }))
    });
    let out = create(&rt, &b, &id);
    let host_escape = Path::new("/tmp").join(&escape);
    if matches!(rt.kind(), Kind::Runc | Kind::Crun) {
        // runc 1.1.5 and crun 1.8 resolve the destination inside the rootfs and accept it.
        out.assert_ok();
        let inside = b.rootfs().join("tmp").join(&escape);
        assert!(inside.is_dir(), "mounted elsewhere than {inside:?}");
        rt.delete_force(&id);
    } else {
        clear_err(&out, &[&dest]);
    }
    assert!(
        !host_escape.exists(),
        "a mount destination escaped the rootfs: {host_escape:?}"
    );
    l.assert_unchanged();
}

#[test]
fn missing_rootfs_dir() {
    let rt = runtime_exclusive();
    let id = rt.id("no-rootfs");
    let (b, l) = setup(&rt, &id, |c| c["root"]["path"] = json!("no-such-rootfs"));
    clear_err(&create(&rt, &b, &id), &["no-such-rootfs"]);
    l.assert_unchanged();
}

#[test]
fn duplicate_id() {
    let rt = runtime_exclusive();
    let b = Bundle::busybox();
    let id = rt.id("dup");
    rt.create(&b, &id);
    let pid = rt.pid(&id);
    let l = Leftovers::snapshot(&rt, &[&id], &[b.path()]);
    let out = create(&rt, &b, &id);
    if rt.kind() == Kind::Runc {
        // runc 1.1.5: "container with given ID already exists", without the id.
        clear_err(&out, &["already exists"]);
    } else {
        clear_err(&out, &[&id]);
    }
    l.assert_unchanged();
    // The first container is untouched.
    assert_eq!(rt.status(&id).as_deref(), Some("created"));
    assert_eq!(rt.pid(&id), pid);
}

#[test]
fn invalid_ids() {
    let rt = runtime_exclusive();
    let b = Bundle::busybox();
    let outside = rt.root().parent().expect("root parent").to_path_buf();
    for bad in ["a/b", "..", "../itest-escape", "a b"] {
        let l = Leftovers::snapshot(&rt, &[bad], &[b.path()]);
        let out = rt.cmd(["create", "--bundle"]).arg(b.path()).arg(bad).run();
        if rt.kind() == Kind::Crun && bad == "a b" {
            // crun 1.8 only rejects ids that are not a single path component.
            out.assert_ok();
            rt.delete_force(bad);
        } else if rt.kind() == Kind::Runc {
            // runc 1.1.5: "invalid container ID format", without the id.
            clear_err(&out, &["invalid container ID format"]);
        } else {
            clear_err(&out, &[bad]);
        }
        l.assert_unchanged();
        assert!(
            !outside.join("itest-escape").exists(),
            "state escaped the root"
        );
    }
}

#[test]
fn unknown_container() {
    let rt = runtime_exclusive();
    let id = rt.id("nosuch");
    let l = Leftovers::snapshot(&rt, &[&id], &[]);
    let id = id.as_str();
    let cases: [&[&str]; 5] = [
        &["state", id],
        &["start", id],
        &["kill", id, "KILL"],
        &["delete", id],
        &["ps", id],
    ];
    for args in cases {
        let out = rt.cmd(args).run();
        if rt.kind() == Kind::Crun && args[0] == "ps" {
            // crun 1.8's ps exits 253 (its -errno convention), naming the state path.
            assert_eq!(out.code(), Some(253), "{out}");
            assert!(out.stderr_str().contains(id), "{out}");
        } else if rt.kind() == Kind::Runc {
            // runc 1.1.5: "container does not exist", without the id.
            clear_err(&out, &["does not exist"]);
        } else {
            clear_err(&out, &[id]);
        }
    }
    l.assert_unchanged();
}

#[test]
fn start_on_a_running_container() {
    let rt = runtime_exclusive();
    let b = Bundle::busybox();
    let id = rt.id("start-twice");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", Duration::from_secs(10));
    let pid = rt.pid(&id);
    let l = Leftovers::snapshot(&rt, &[&id], &[b.path()]);
    let out = rt.cmd(["start", id.as_str()]).run();
    if rt.kind() == Kind::Runc {
        // runc 1.1.5: "cannot start an already running container", without the id.
        clear_err(&out, &["already running"]);
    } else {
        clear_err(&out, &[&id]);
    }
    l.assert_unchanged();
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    assert_eq!(rt.pid(&id), pid);
}

#[test]
fn delete_running_without_force() {
    let rt = runtime_exclusive();
    let b = Bundle::busybox();
    let id = rt.id("delete-running");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", Duration::from_secs(10));
    let l = Leftovers::snapshot(&rt, &[&id], &[b.path()]);
    let out = rt.cmd(["delete", id.as_str()]).run();
    // The runtimes agree here: runc says "cannot delete container ID that is not stopped".
    clear_err(&out, &[&id]);
    l.assert_unchanged();
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
}
