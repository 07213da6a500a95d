//! Capabilities: the five sets of `process.capabilities` and `exec --cap`, observed in
//! `/proc/self/status` inside real containers (probe `caps`), and bad capability input.
//!
//! What a process ends up with after `execve` follows the kernel's rules, which the tests
//! spell out: a non-root user without file capabilities keeps exactly its ambient set as
//! permitted and effective; root gets its inheritable set plus the bounding set as permitted
//! and effective — but never more than it had when `no_new_privs` is set (runc's default).
//!
//! Against berth and runc 1.1.5. Deliberate differences: an unknown capability name is an error
//! in berth (runc warns and drops it), for the config and for `exec --cap`.

mod support;

use berth_itest::{Bundle, Kind, probe_line, runtime, runtime_exclusive};
use serde_json::json;
use support::{T, bad_bundle, clear_err, clear_err_code, create};

const CHOWN: u64 = 1 << 0;
const KILL: u64 = 1 << 5;
const SETUID: u64 = 1 << 7;
const NET_BIND_SERVICE: u64 = 1 << 10;
const SYS_ADMIN: u64 = 1 << 21;
const AUDIT_WRITE: u64 = 1 << 29;
const RUNC_DEFAULT: u64 = KILL | NET_BIND_SERVICE | AUDIT_WRITE;

fn hex(v: u64) -> String {
    format!("{v:016x}")
}

/// Asserts the five sets printed by `/probe caps`.
#[track_caller]
fn assert_caps(out: &str, inh: u64, prm: u64, eff: u64, bnd: u64, amb: u64) {
    let caps = probe_line(out, "caps");
    for (k, v) in [
        ("inh", inh),
        ("prm", prm),
        ("eff", eff),
        ("bnd", bnd),
        ("amb", amb),
    ] {
        assert_eq!(caps[k], hex(v), "{k}: {out}");
    }
}

#[test]
fn five_sets_for_a_user() {
    // uid 1000: after execve, permitted = effective = ambient (no file capabilities), so
    // CAP_KILL (effective and permitted, not ambient) is gone and CAP_CHOWN stays.
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.user(1000, 1000).probe(&["caps"]).config(|c| {
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_SETUID"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL"],
            "inheritable": ["CAP_CHOWN", "CAP_KILL"],
            "ambient": ["CAP_CHOWN"]
        })
    });
    let out = rt.run_cmd(&b, &rt.id("caps-user5")).ok().stdout_str();
    assert_caps(
        &out,
        CHOWN | KILL,
        CHOWN,
        CHOWN,
        RUNC_DEFAULT | CHOWN | SETUID,
        CHOWN,
    );
}

#[test]
fn ambient_needs_inheritable() {
    // runc's default spec has an ambient set and no inheritable one: the kernel refuses to
    // raise those ambient capabilities, and both runtimes go on without them.
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.user(1000, 1000).probe(&["caps"]);
    let out = rt.run_cmd(&b, &rt.id("caps-noinh")).ok().stdout_str();
    assert_caps(&out, 0, 0, 0, RUNC_DEFAULT, 0);
}

#[test]
fn root_with_no_new_privileges_keeps_its_permitted_set() {
    // root: execve would grant inheritable | bounding, but no_new_privs caps it at the old
    // permitted set.
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.probe(&["caps"]).config(|c| {
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"],
            "inheritable": ["CAP_CHOWN"]
        })
    });
    let out = rt.run_cmd(&b, &rt.id("caps-root-nnp")).ok().stdout_str();
    assert_caps(&out, CHOWN, KILL, KILL, KILL | CHOWN, 0);

    // Without no_new_privs root gains inheritable | bounding at execve.
    let mut b = Bundle::busybox();
    b.probe(&["caps"]).config(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"],
            "inheritable": ["CAP_CHOWN"]
        })
    });
    let out = rt.run_cmd(&b, &rt.id("caps-root")).ok().stdout_str();
    assert_caps(&out, CHOWN, KILL | CHOWN, KILL | CHOWN, KILL | CHOWN, 0);
}

#[test]
fn capabilities_are_enforced() {
    // Without CAP_CHOWN, chown fails; with it (and nothing else), it works.
    let rt = runtime();
    for (caps, want) in [
        (json!(["CAP_KILL"]), "Operation not permitted"),
        (json!(["CAP_CHOWN"]), "chowned"),
    ] {
        let mut b = Bundle::busybox();
        b.config(|c| {
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set] = caps.clone();
            }
        })
        .sh("touch /dev/shm/f && chown 1000 /dev/shm/f 2>&1 && echo chowned");
        let out = rt.run_cmd(&b, &rt.id("caps-enforced")).run();
        assert!(out.stdout_str().contains(want), "{caps}: {out}");
    }
}

#[test]
fn exec_cap_adds_to_four_sets_but_not_inheritable() {
    let rt = runtime();
    let b = Bundle::busybox();
    let id = rt.id("caps-exec");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);

    let out = rt
        .cmd([
            "exec",
            "--cap",
            "CAP_SYS_ADMIN",
            id.as_str(),
            "/probe",
            "caps",
        ])
        .ok()
        .stdout_str();
    let want = RUNC_DEFAULT | SYS_ADMIN;
    // root: the ambient set is cleared by execve (root counts as privileged).
    assert_caps(&out, 0, want, want, want, 0);

    // A user: ambient without inheritable cannot be raised, so nothing is left but the
    // bounding set (CVE-2022-29162: exec --cap must not fill the inheritable set).
    let out = rt
        .cmd([
            "exec",
            "--cap",
            "CAP_SYS_ADMIN",
            "--user",
            "1000:1000",
            id.as_str(),
            "/probe",
            "caps",
        ])
        .ok()
        .stdout_str();
    assert_caps(&out, 0, 0, 0, want, 0);

    // The container's own process is unchanged.
    let out = rt.exec_cmd(&id, &["/probe", "caps"]).ok().stdout_str();
    assert_caps(&out, 0, RUNC_DEFAULT, RUNC_DEFAULT, RUNC_DEFAULT, 0);
    rt.delete_force(&id);
}

#[test]
fn unknown_capability_in_config() {
    let rt = runtime_exclusive();
    let id = rt.id("caps-unknown");
    let (b, l) = bad_bundle(&rt, &id, |c| {
        c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .expect("bounding")
            .push(json!("CAP_BOGUS"))
    });
    let out = create(&rt, &b, &id);
    if rt.kind() == Kind::Runc {
        // runc 1.1.5 warns ("ignoring unknown or unavailable capabilities") and goes on.
        let out = out.assert_ok();
        assert!(out.stderr_str().contains("CAP_BOGUS"), "{out}");
        rt.delete_force(&id);
    } else {
        clear_err(&out, &["process.capabilities.bounding[3]", "CAP_BOGUS"]);
    }
    l.assert_unchanged();
}

#[test]
fn effective_outside_permitted() {
    let rt = runtime_exclusive();
    let id = rt.id("caps-eff-perm");
    let (b, l) = bad_bundle(&rt, &id, |c| {
        c["process"]["capabilities"]["effective"] = json!(["CAP_CHOWN", "CAP_KILL"]);
        c["process"]["capabilities"]["permitted"] = json!(["CAP_KILL"]);
    });
    let out = create(&rt, &b, &id);
    if rt.kind() == Kind::Runc {
        // runc finds out in its init: "unable to apply caps: operation not permitted".
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(out.stderr_str().contains("caps"), "{out}");
    } else {
        clear_err(&out, &["process.capabilities.effective", "CAP_CHOWN"]);
    }
    l.assert_unchanged();
}

#[test]
fn exec_with_an_unknown_cap() {
    let rt = runtime_exclusive();
    let b = Bundle::busybox();
    let id = rt.id("caps-exec-bad");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);
    let l = berth_itest::Leftovers::snapshot(&rt, &[], &[]);
    let out = rt
        .cmd(["exec", "--cap", "CAP_BOGUS", id.as_str(), "/probe", "caps"])
        .run();
    if rt.kind() == Kind::Runc {
        // runc warns and runs the process without it.
        let out = out.assert_ok();
        assert_caps(
            &out.stdout_str(),
            0,
            RUNC_DEFAULT,
            RUNC_DEFAULT,
            RUNC_DEFAULT,
            0,
        );
    } else {
        // Like every failed exec, runc's exit status for it: 255.
        clear_err_code(&out, 255, &["--cap", "CAP_BOGUS"]);
    }
    l.assert_unchanged();
    rt.delete_force(&id);
}
