//! `linux.seccomp`, observed inside real containers: a denied syscall returns its errno,
//! argument filters (MASKED_EQ, several conditions on one argument, conditions on two), the
//! default action with `defaultErrnoRet`, SCMP_ACT_KILL, the filter in `exec`'d processes, with
//! and without `noNewPrivileges`, the flags, the profiles podman and Docker ship, and bad
//! profiles (exit 1, one line naming the JSON field, nothing left behind).
//!
//! Everything runs against berth and runc 1.1.5; where runc differs on purpose the test says so
//! in an explicit `Kind::Runc` branch and checks what runc does.
//!
//! Profiles: podman's is `/usr/share/containers/seccomp.json` (containers-common). Engines do not
//! hand that file to the runtime: they keep the rules matching the architecture and the
//! container's capabilities and write the result into `linux.seccomp` — [`engine_profile`]
//! does the same here. Docker's default profile is not on this machine; [`docker_profile`]
//! writes its documented structure (moby `profiles/seccomp/default.json`): default
//! `SCMP_ACT_ERRNO` with `defaultErrnoRet` 1, the x86_64/x86/x32 arch map, one allow list, no
//! namespace-creating syscalls without CAP_SYS_ADMIN (`clone` only with a MASKED_EQ condition
//! that excludes the CLONE_NEW* flags, `clone3` answered with ENOSYS so libc falls back), and
//! capability-gated lists. Its allow list is podman's unconditional one minus the syscalls Docker
//! keeps for CAP_SYS_ADMIN.

mod support;

use berth_itest::{Bundle, Kind, runtime, runtime_exclusive};
use serde_json::{Value, json};
use support::{T, bad_bundle, clear_err, create, sh};

const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";
/// CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET.
const CLONE_NS_FLAGS: u64 = 0x7E02_0000;

fn seccomp(b: &mut Bundle, profile: Value) {
    b.config(|c| c["linux"]["seccomp"] = profile);
}

/// A profile that allows everything but `rules`.
fn allow_but(rules: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
}

/// The container's capabilities (its bounding set), as engines match `includes.caps`.
fn caps_of(b: &Bundle) -> Vec<String> {
    b.spec()["process"]["capabilities"]["bounding"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// What podman and Docker do with a profile file before the runtime sees it: the native
/// entry of `archMap` gives `architectures`; a rule is kept when its `includes` match (arches
/// contain amd64, every listed capability is the container's) and its `excludes` do not.
fn engine_profile(profile: &Value, caps: &[String]) -> Value {
    let mut arches = Vec::new();
    for m in profile["archMap"].as_array().into_iter().flatten() {
        if m["architecture"] == "SCMP_ARCH_X86_64" {
            arches.push(json!("SCMP_ARCH_X86_64"));
            arches.extend(
                m["subArchitectures"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
    }
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut syscalls = Vec::new();
    for r in profile["syscalls"].as_array().into_iter().flatten() {
        let inc = &r["includes"];
        let exc = &r["excludes"];
        let inc_arches = strings(&inc["arches"]);
        if !inc_arches.is_empty() && !inc_arches.contains(&"amd64") {
            continue;
        }
        if !strings(&inc["caps"]).iter().all(|c| has(c)) {
            continue;
        }
        if strings(&exc["arches"]).contains(&"amd64")
            || strings(&exc["caps"]).iter().any(|c| has(c))
        {
            continue;
        }
        let mut rule = json!({"names": r["names"], "action": r["action"]});
        if r["args"].as_array().is_some_and(|a| !a.is_empty()) {
            rule["args"] = r["args"].clone();
        }
        if !r["errnoRet"].is_null() {
            rule["errnoRet"] = r["errnoRet"].clone();
        }
        syscalls.push(rule);
    }
    let mut out = json!({
        "defaultAction": profile["defaultAction"],
        "architectures": arches,
        "syscalls": syscalls,
    });
    if !profile["defaultErrnoRet"].is_null() {
        out["defaultErrnoRet"] = profile["defaultErrnoRet"].clone();
    }
    out
}

fn podman_profile() -> Value {
    let text = std::fs::read_to_string(PODMAN_PROFILE)
        .unwrap_or_else(|e| panic!("{PODMAN_PROFILE} (apt-get install containers-common): {e}"));
    serde_json::from_str(&text).expect("podman's profile parses")
}

/// Docker's default profile's structure (see the module docs).
fn docker_profile() -> Value {
    const ADMIN_ONLY: &[&str] = &[
        "clone",
        "clone3",
        "unshare",
        "setns",
        "mount",
        "umount",
        "umount2",
        "pivot_root",
        "syslog",
        "sethostname",
        "setdomainname",
    ];
    let podman = podman_profile();
    let mut allow: Vec<String> = Vec::new();
    for r in podman["syscalls"].as_array().expect("syscalls") {
        let plain = r["action"] == "SCMP_ACT_ALLOW"
            && r["args"].as_array().is_none_or(|a| a.is_empty())
            && r["includes"].as_object().is_none_or(|o| o.is_empty())
            && r["excludes"].as_object().is_none_or(|o| o.is_empty());
        if plain {
            allow.extend(
                strings(&r["names"])
                    .into_iter()
                    .filter(|n| !ADMIN_ONLY.contains(n))
                    .map(str::to_string),
            );
        }
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
        ],
        "syscalls": [
            {"names": allow, "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
             "includes": {"arches": ["amd64", "x32"]}},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": CLONE_NS_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ADMIN_ONLY, "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["chroot"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_CHROOT"]}},
            {"names": ["reboot"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_BOOT"]}}
        ]
    })
}

#[test]
fn a_denied_syscall_returns_its_errno() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    seccomp(
        &mut b,
        allow_but(
            json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]),
        ),
    );
    let out = sh(
        &rt,
        &mut b,
        "sc-errno",
        "mkdir /dev/shm/x 2>&1; echo rc=$?; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status",
    );
    assert!(
        out.contains("Function not implemented\nrc=1\n"),
        "mkdir was not answered with ENOSYS (38): {out}"
    );
    assert!(out.contains("Seccomp:\t2\n"), "no filter active: {out}");
    assert!(out.contains("NoNewPrivs:\t1\n"), "{out}");

    // Without an errnoRet, SCMP_ACT_ERRNO means EPERM.
    let mut b = Bundle::busybox();
    seccomp(
        &mut b,
        allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}])),
    );
    let out = sh(&rt, &mut b, "sc-eperm", "mkdir /dev/shm/x 2>&1; echo rc=$?");
    assert!(out.contains("Operation not permitted\nrc=1\n"), "{out}");
}

#[test]
fn without_no_new_privileges_the_filter_holds_and_nnp_stays_off() {
    // Loaded while the init still has CAP_SYS_ADMIN; libseccomp must not set no_new_privs
    // behind the config's back. As a user, after the capabilities were dropped.
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.user(1000, 1000)
        .config(|c| c["process"]["noNewPrivileges"] = json!(false));
    seccomp(
        &mut b,
        allow_but(
            json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]),
        ),
    );
    let out = sh(
        &rt,
        &mut b,
        "sc-nonnp",
        "mkdir /dev/shm/x 2>&1; echo rc=$?; grep -E '^(Seccomp|NoNewPrivs|Uid):' /proc/self/status",
    );
    assert!(out.contains("Function not implemented\nrc=1\n"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0\n"), "{out}");
    assert!(out.contains("Seccomp:\t2\n"), "{out}");
    assert!(out.contains("Uid:\t1000\t1000\t1000\t1000\n"), "{out}");
}

#[test]
fn argument_filters() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    let mode =
        |index: u32, v: u64, op: &str| json!({"index": index, "value": v, "valueTwo": 0, "op": op});
    seccomp(
        &mut b,
        allow_but(json!([
            // MASKED_EQ: value is the mask, valueTwo the datum. chmod(path, mode): index 1;
            // fchmodat(dirfd, path, mode): index 2 (busybox's chmod uses chmod(2)).
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "args": [{"index": 1, "value": 0o777, "valueTwo": 0o700, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "args": [{"index": 2, "value": 0o777, "valueTwo": 0o700, "op": "SCMP_CMP_MASKED_EQ"}]},
            // The same argument twice: either condition (runc splits them into two rules).
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [mode(1, 0o711, "SCMP_CMP_EQ"), mode(1, 0o733, "SCMP_CMP_EQ")]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [mode(2, 0o711, "SCMP_CMP_EQ"), mode(2, 0o733, "SCMP_CMP_EQ")]},
            // Two arguments: both conditions. kill(1, SIGUSR1) only.
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [mode(0, 1, "SCMP_CMP_EQ"), mode(1, 10, "SCMP_CMP_EQ")]}
        ])),
    );
    let script = "cd /dev/shm; touch f; for m in 700 4700 755 711 733 744; do chmod $m f 2>&1; echo m$m=$?; done; \
                  kill -USR1 1 2>&1; echo k1=$?; kill -USR2 1; echo k2=$?; \
                  sleep 30 & kill -USR1 $!; echo k3=$?";
    let out = sh(&rt, &mut b, "sc-args", script);
    let want = [
        ("m700", "Function not implemented", 1),
        ("m4700", "Function not implemented", 1), // the mask ignores the setuid bit
        ("m755", "", 0),
        ("m711", "Invalid argument", 1),
        ("m733", "Invalid argument", 1),
        ("m744", "", 0),
    ];
    for (key, msg, rc) in want {
        assert!(out.contains(&format!("{key}={rc}\n")), "{key}: {out}");
        if !msg.is_empty() {
            assert!(
                out.contains(&format!("{msg}\n{key}=1\n")),
                "{key} should fail with {msg:?}: {out}"
            );
        }
    }
    assert!(
        out.contains("Permission denied\nk1=1\n"),
        "kill(1, USR1): {out}"
    );
    assert!(out.contains("k2=0\n"), "kill(1, USR2) is allowed: {out}");
    assert!(
        out.contains("k3=0\n"),
        "kill(other, USR1) is allowed: {out}"
    );
}

#[test]
fn default_action_with_default_errno_ret() {
    // Default: EACCES (13) for everything not allowed; everything but mkdir is allowed.
    let rt = runtime();
    let mut b = Bundle::busybox();
    let mut profile = engine_profile(&podman_profile(), &caps_of(&b));
    for rule in profile["syscalls"].as_array_mut().expect("rules") {
        if let Some(names) = rule["names"].as_array_mut() {
            names.retain(|n| n != "mkdir" && n != "mkdirat");
        }
    }
    profile["syscalls"]
        .as_array_mut()
        .expect("rules")
        .retain(|r| r["names"].as_array().is_some_and(|n| !n.is_empty()));
    profile["defaultErrnoRet"] = json!(13);
    seccomp(&mut b, profile);
    let out = sh(
        &rt,
        &mut b,
        "sc-default",
        "mkdir /dev/shm/x 2>&1; echo rc=$?",
    );
    assert!(out.contains("Permission denied\nrc=1\n"), "{out}");
}

#[test]
fn kill_actions_kill() {
    let rt = runtime();
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
    ] {
        let mut b = Bundle::busybox();
        seccomp(
            &mut b,
            allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": action}])),
        );
        let out = sh(
            &rt,
            &mut b,
            "sc-kill",
            "mkdir /dev/shm/x; echo status=$?; [ -d /dev/shm/x ] || echo absent",
        );
        // 159 = 128 + SIGSYS.
        assert!(out.contains("status=159\nabsent\n"), "{action}: {out}");
    }
}

#[test]
fn exec_gets_the_filter_too() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    seccomp(
        &mut b,
        allow_but(
            json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]),
        ),
    );
    let id = rt.id("sc-exec");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);
    let out = rt
        .exec_cmd(&id, &["sh", "-c", "mkdir /dev/shm/y 2>&1; echo rc=$?"])
        .ok();
    assert!(
        out.stdout_str()
            .contains("Function not implemented\nrc=1\n"),
        "{out}"
    );
    rt.delete_force(&id);
}

#[test]
fn flags_log_spec_allow_tsync() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    let mut profile = allow_but(
        json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]),
    );
    profile["flags"] = json!([
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_TSYNC"
    ]);
    seccomp(&mut b, profile);
    b.sh("mkdir /dev/shm/x 2>&1; echo rc=$?");
    let out = rt.run_cmd(&b, &rt.id("sc-flags")).run();
    if rt.kind() == Kind::Runc {
        // runc 1.1.5 refuses every seccomp flag ("seccomp flags are not yet supported").
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(out.stderr_str().contains("flags"), "{out}");
    } else {
        let out = out.assert_ok();
        assert!(
            out.stdout_str()
                .contains("Function not implemented\nrc=1\n"),
            "{out}"
        );
    }
}

#[test]
fn podmans_profile_loads_and_runs() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    let profile = engine_profile(&podman_profile(), &caps_of(&b));
    assert_eq!(profile["defaultErrnoRet"], 38, "podman's profile changed?");
    seccomp(&mut b, profile);
    // fork/exec, files, pipes, signals; podman allows unshare(CLONE_NEWUSER).
    let script = "echo hello | cat; mkdir /dev/shm/d && echo made; sleep 0 & wait; \
                  /bin/busybox unshare -U true; echo unshare=$?; \
                  grep -E '^Seccomp(_filters)?:' /proc/self/status";
    let out = sh(&rt, &mut b, "sc-podman", script);
    assert_eq!(
        out, "hello\nmade\nunshare=0\nSeccomp:\t2\nSeccomp_filters:\t1\n",
        "{out}"
    );
}

#[test]
fn dockers_profile_loads_and_runs() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    let profile = engine_profile(&docker_profile(), &caps_of(&b));
    seccomp(&mut b, profile);
    // fork goes through clone() without CLONE_NEW* flags: allowed by the MASKED_EQ rule;
    // unshare is Docker's only with CAP_SYS_ADMIN: EPERM (the default errno).
    let script = "echo hello | cat; mkdir /dev/shm/d && echo made; sleep 0 & wait; \
                  /bin/busybox unshare -U true 2>&1; echo unshare=$?; \
                  grep -E '^Seccomp:' /proc/self/status";
    let out = sh(&rt, &mut b, "sc-docker", script);
    assert!(out.starts_with("hello\nmade\n"), "{out}");
    assert!(
        out.contains("Operation not permitted\nunshare=1\n"),
        "unshare must be refused with EPERM: {out}"
    );
    assert!(out.ends_with("Seccomp:\t2\n"), "{out}");
}

/// A bad profile: exit 1, one line naming `names` (berth) and nothing left behind.
fn bad_profile(name: &str, profile: Value, names: &[&str], runc_accepts: bool) {
    let rt = runtime_exclusive();
    let id = rt.id(name);
    let (b, l) = bad_bundle(&rt, &id, |c| c["linux"]["seccomp"] = profile);
    let out = create(&rt, &b, &id);
    match rt.kind() {
        Kind::Runc if runc_accepts => {
            out.assert_ok();
            rt.delete_force(&id);
        }
        Kind::Runc => assert_eq!(out.code(), Some(1), "{out}"),
        _ => clear_err(&out, names),
    }
    l.assert_unchanged();
}

#[test]
fn bad_action() {
    bad_profile(
        "sc-bad-action",
        allow_but(json!([{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}])),
        &["linux.seccomp.syscalls[0].action", "SCMP_ACT_BOGUS"],
        false,
    );
    bad_profile(
        "sc-bad-default",
        json!({"defaultAction": "SCMP_ACT_NOPE"}),
        &["linux.seccomp.defaultAction", "SCMP_ACT_NOPE"],
        false,
    );
}

#[test]
fn bad_syscall_name() {
    // runc skips names libseccomp cannot resolve, malformed or not; berth refuses a malformed
    // one (a well-formed name newer than libseccomp is skipped by both).
    bad_profile(
        "sc-bad-name",
        allow_but(json!([{"names": ["getpid", "Mk Dir!"], "action": "SCMP_ACT_ERRNO"}])),
        &["linux.seccomp.syscalls[0].names[1]", "Mk Dir!"],
        true,
    );
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    seccomp(
        &mut b,
        allow_but(
            json!([{"names": ["mkdir", "mkdirat", "some_future_syscall"],
                          "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]),
        ),
    );
    let out = sh(
        &rt,
        &mut b,
        "sc-future",
        "mkdir /dev/shm/x 2>&1; echo rc=$?",
    );
    assert!(out.contains("Function not implemented\nrc=1\n"), "{out}");
}

#[test]
fn bad_architecture() {
    bad_profile(
        "sc-bad-arch",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]}),
        &["linux.seccomp.architectures[1]", "SCMP_ARCH_Z80"],
        false,
    );
}

#[test]
fn bad_argument_index() {
    bad_profile(
        "sc-bad-index",
        allow_but(json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}])),
        &["linux.seccomp.syscalls[0].args[0].index"],
        false,
    );
    bad_profile(
        "sc-bad-op",
        allow_but(json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_ABOUT"}]}])),
        &["linux.seccomp.syscalls[0].args[0].op", "SCMP_CMP_ABOUT"],
        false,
    );
}

#[test]
fn notify_is_refused_clearly() {
    let rt = runtime_exclusive();
    let id = rt.id("sc-notify");
    let (b, l) = bad_bundle(&rt, &id, |c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/nonexistent-agent.sock",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
    });
    let out = create(&rt, &b, &id);
    if rt.kind() == Kind::Runc {
        // runc tries to connect to the agent.
        assert_eq!(out.code(), Some(1), "{out}");
    } else {
        clear_err(
            &out,
            &["linux.seccomp.syscalls[0].action", "SCMP_ACT_NOTIFY"],
        );
    }
    l.assert_unchanged();
}

/// The helpers above must not be vacuous: the converted podman profile keeps its arg rules
/// and drops the capability-gated ones the container lacks.
#[test]
fn engine_conversion_is_faithful() {
    let caps: Vec<String> = ["CAP_KILL", "CAP_AUDIT_WRITE"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let p = engine_profile(&podman_profile(), &caps);
    assert_eq!(
        p["architectures"],
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    );
    let rules = p["syscalls"].as_array().expect("rules");
    let with = |name: &str| {
        rules
            .iter()
            .filter(|r| strings(&r["names"]).contains(&name))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(with("personality").iter().all(|r| r["args"].is_array()));
    let chroot = with("chroot");
    assert_eq!(chroot.len(), 1, "{chroot:?}");
    assert_eq!(chroot[0]["action"], "SCMP_ACT_ERRNO");
    let d = engine_profile(&docker_profile(), &caps);
    let clone = d["syscalls"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["names"] == json!(["clone"]))
        .cloned()
        .expect("clone rule");
    assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
}

/// As runc: under a profile whose default refuses with another errno (Docker's: EPERM), a
/// syscall numbered above every syscall the profile names gets ENOSYS, so a program probing for
/// a syscall newer than the profile falls back instead of failing; a syscall the profile knows
/// but leaves out still gets the default errno.
#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    let profile = engine_profile(&docker_profile(), &caps_of(&b));
    assert_eq!(profile["defaultErrnoRet"], 1);
    seccomp(&mut b, profile);
    // 246 is kexec_load on x86_64: Docker allows it only with CAP_SYS_BOOT.
    let out = sh(
        &rt,
        &mut b,
        "sc-enosys",
        "/probe syscall 1000; /probe syscall 246",
    );
    assert_eq!(
        out, "syscall nr=1000 err=ENOSYS\nsyscall nr=246 err=EPERM\n",
        "{out}"
    );
}

/// As runc: startContainer hooks run under the container's seccomp filter (runc's
/// seccomp.bats): a hook that makes a syscall the profile kills fails the run, with the
/// signal named.
#[test]
fn start_container_hooks_run_under_the_filter() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    seccomp(
        &mut b,
        allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}])),
    );
    b.config(|c| {
        c["process"]["args"] = json!(["/bin/true"]);
        c["hooks"] = json!({"startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "mkdir /dev/shm/foo"]}
        ]});
    });
    let id = rt.id("sc-hook");
    let out = rt.run_cmd(&b, &id).fails();
    let err = out.stderr_str();
    assert!(err.contains("error running hook"), "{out}");
    assert!(err.contains("bad system call"), "{out}");
}
