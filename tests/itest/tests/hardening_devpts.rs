//! one container cannot use up the ptys of the host and of other containers. berth
//! mounts every devpts instance with `max=` (default 1024, annotation
//! `io.github.berth.devpts.max`): allocating beyond it fails with ENOSPC inside that
//! container only, while the host and another container still allocate, and `exec -t` into
//! the exhausted container is a clear error. runc 1.1.5 sets no `max=` (it ignores the
//! annotation): its branch asserts the container allocates past it.

use std::time::Duration;

use berth_itest::attack::{install_attack, result_line};
use berth_itest::{Bundle, Kind, Leftovers, MasterIo, Pty, runtime, runtime_exclusive};

const T: Duration = Duration::from_secs(15);
const ANNOTATION: &str = "io.github.berth.devpts.max";

fn holder(max: Option<&str>, want: usize) -> Bundle {
    let mut b = Bundle::busybox();
    install_attack(&b);
    b.readonly(false).args(&[
        "/attack",
        "ptys",
        &want.to_string(),
        "/tmp/result",
        "--hold",
    ]);
    if let Some(m) = max {
        b.annotation(ANNOTATION, m);
    }
    b
}

#[test]
fn x02_devpts_max_caps_one_container_only() {
    let rt = runtime_exclusive();
    let a = holder(Some("4"), 16);
    let b = holder(None, 1);
    let (ida, idb) = (rt.id("x02-a"), rt.id("x02-b"));
    let l = Leftovers::snapshot(&rt, &[&ida, &idb], &[a.path(), b.path()]);

    rt.run_detached(&a, &ida);
    let va = result_line(&a.rootfs().join("tmp/result"), "ptys", T);
    if rt.kind() == Kind::Runc {
        assert_eq!(
            (va["opened"].as_str(), va["err"].as_str()),
            ("16", "none"),
            "{va:?}"
        );
    } else {
        assert_eq!(
            (va["opened"].as_str(), va["err"].as_str()),
            ("4", "ENOSPC"),
            "{va:?}"
        );
    }

    // The host still allocates, and so does another container (default limit).
    let host = Pty::new();
    drop(host);
    rt.run_detached(&b, &idb);
    let vb = result_line(&b.rootfs().join("tmp/result"), "ptys", T);
    assert_eq!(
        (vb["opened"].as_str(), vb["err"].as_str()),
        ("1", "none"),
        "{vb:?}"
    );

    // exec -t into the exhausted container.
    let mut pty = Pty::new();
    let running = pty.spawn(rt.cmd(["exec", "-t", ida.as_str(), "true"]));
    let text = String::from_utf8_lossy(&pty.read_until_eof(T)).into_owned();
    let out = running.wait_unchecked();
    drop(pty);
    assert!(!out.timed_out, "{out}");
    if rt.kind() == Kind::Runc {
        assert!(out.success(), "{text:?} {out}");
    } else {
        assert_eq!(
            out.code(),
            Some(255),
            "exec must fail to start: {text:?} {out}"
        );
        assert!(text.contains("No space left on device"), "{text:?}");
    }

    rt.delete_force(&ida);
    rt.delete_force(&idb);
    l.assert_unchanged();
}

/// The default `max=1024` (and the annotation's value) show in the container's mountinfo.
#[test]
fn x02_default_and_annotated_max_in_mountinfo() {
    let rt = runtime();
    for (annotation, want) in [(None, "max=1024"), (Some("7"), "max=7")] {
        let mut b = Bundle::busybox();
        if let Some(v) = annotation {
            b.annotation(ANNOTATION, v);
        }
        b.sh("awk '$5 == \"/dev/pts\" { print $NF }' /proc/self/mountinfo");
        let out = rt.run_cmd(&b, &rt.id("x02-mountinfo")).ok();
        let opts = out.stdout_str();
        let has = opts.trim().split(',').any(|o| o == want);
        if rt.kind() == Kind::Runc {
            assert!(!opts.contains("max="), "runc 1.1.5 sets no max=: {out}");
        } else {
            assert!(has, "{want} missing: {out}");
        }
    }
}

/// A bad annotation value: exit 1 with one line naming the annotation, nothing left behind
/// (runc ignores unknown annotations and runs).
#[test]
fn x02_bad_annotation_is_a_clear_error() {
    let rt = runtime_exclusive();
    for value in ["0", "lots", "-1"] {
        let mut b = Bundle::busybox();
        b.annotation(ANNOTATION, value)
            .args(&["/probe", "exit", "0"]);
        let id = rt.id("x02-bad");
        let l = Leftovers::snapshot(&rt, &[&id], &[b.path()]);
        rt.guard().track(&id);
        let out = rt.cmd(["run", "--bundle"]).arg(b.path()).arg(&id).run();
        if rt.kind() == Kind::Runc {
            assert!(out.success(), "{out}");
        } else {
            assert_eq!(out.code(), Some(1), "{out}");
            let err = out.stderr_str();
            let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines.len(), 1, "{out}");
            assert!(
                lines[0].contains(ANNOTATION) && lines[0].contains(value),
                "{out}"
            );
        }
        l.assert_unchanged();
    }
}
