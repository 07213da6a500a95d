//! Process attributes observed inside real containers: `noNewPrivileges` (a setuid binary),
//! rlimits, `oomScoreAdj`, `linux.personality`, `ioPriority`, `scheduler`, `execCPUAffinity`,
//! and the AppArmor/SELinux labels on a host that has neither LSM.
//!
//! Against berth and runc 1.1.5. runc 1.1.5 does not implement `personality`, `ioPriority`,
//! `scheduler` or `execCPUAffinity` (runtime-spec 1.1/1.2 additions): it ignores them, and the
//! tests check that explicitly in `Kind::Runc` branches.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use berth_itest::{Bundle, Kind, probe_line, runtime, runtime_exclusive};
use serde_json::json;
use support::{T, bad_bundle, clear_err, create, sh};

/// A copy of `/probe` at `/suid-probe`, setuid root.
fn with_setuid_probe(b: &Bundle) {
    let dst = b.rootfs().join("suid-probe");
    std::fs::copy(b.rootfs().join("probe"), &dst).expect("copy probe");
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o4755)).expect("chmod");
}

#[test]
fn no_new_privileges_stops_setuid() {
    let rt = runtime();
    let all = format!("{:016x}", (1u64 << 5) | (1 << 10) | (1 << 29));
    for (nnp, want) in [(true, "0000000000000000".to_string()), (false, all)] {
        let mut b = Bundle::busybox();
        with_setuid_probe(&b);
        b.user(1000, 1000)
            .config(|c| c["process"]["noNewPrivileges"] = json!(nnp))
            .sh("grep NoNewPrivs /proc/self/status; /suid-probe caps");
        let out = rt.run_cmd(&b, &rt.id("nnp-suid")).ok().stdout_str();
        assert!(
            out.starts_with(&format!("NoNewPrivs:\t{}\n", u8::from(nnp))),
            "{out}"
        );
        // A setuid-root program gains the bounding set, unless no_new_privs.
        assert_eq!(probe_line(&out, "caps")["eff"], want, "nnp={nnp}: {out}");
    }
}

/// This test machine's root lacks CAP_SYS_RESOURCE (CapEff 0x1fffeffffff): hard limits can
/// only be lowered, and oom_score_adj only raised, so the values below stay within what the
/// test process itself has.
#[test]
fn rlimits() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.config(|c| {
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
            {"type": "RLIMIT_NPROC", "soft": 1000, "hard": 2000},
            {"type": "RLIMIT_MEMLOCK", "soft": 4096, "hard": 8192},
            {"type": "RLIMIT_FSIZE", "soft": 18446744073709551615u64, "hard": 18446744073709551615u64}
        ])
    });
    let out = sh(
        &rt,
        &mut b,
        "rlimits",
        "grep -E '^Max (open files|core file size|processes|locked memory|file size)' /proc/self/limits",
    );
    let row = |name: &str| -> Vec<String> {
        let line = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {out}"));
        line[name.len()..]
            .split_whitespace()
            .take(2)
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("Max open files"), ["321", "654"], "{out}");
    assert_eq!(row("Max core file size"), ["0", "4096"], "{out}");
    assert_eq!(row("Max processes"), ["1000", "2000"], "{out}");
    assert_eq!(row("Max locked memory"), ["4096", "8192"], "{out}");
    assert_eq!(row("Max file size"), ["unlimited", "unlimited"], "{out}");
}

#[test]
fn oom_score_adj() {
    let rt = runtime();
    // Lowering below the caller's value needs CAP_SYS_RESOURCE, which this machine's root
    // lacks (see rlimits).
    let own: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .expect("own oom_score_adj")
        .trim()
        .parse()
        .expect("number");
    for adj in [own, own.max(1) * 3 / 2 + 100, 999] {
        let mut b = Bundle::busybox();
        b.config(|c| c["process"]["oomScoreAdj"] = json!(adj));
        let out = sh(&rt, &mut b, "oom-adj", "cat /proc/self/oom_score_adj");
        assert_eq!(out.trim(), adj.to_string());
    }
}

#[test]
fn personality() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.config(|c| {
        c["linux"]["personality"] = json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]})
    });
    let out = sh(
        &rt,
        &mut b,
        "persona",
        "uname -m; cat /proc/self/personality",
    );
    if rt.kind() == Kind::Runc {
        // runc 1.1.5 ignores linux.personality.
        assert_eq!(out, "x86_64\n00000000\n");
    } else {
        // PER_LINUX32 (0x8) | ADDR_NO_RANDOMIZE (0x40000), inherited across execve.
        assert_eq!(out, "i686\n00040008\n");
    }
}

#[test]
fn io_priority() {
    let rt = runtime();
    for (class, prio, want) in [
        ("IOPRIO_CLASS_BE", 6, "best-effort: prio 6"),
        ("IOPRIO_CLASS_IDLE", 0, "idle"),
    ] {
        let mut b = Bundle::busybox();
        b.config(|c| c["process"]["ioPriority"] = json!({"class": class, "priority": prio}));
        let out = sh(&rt, &mut b, "ioprio", "/bin/busybox ionice -p $$");
        if rt.kind() == Kind::Runc {
            assert_eq!(out.trim(), "none: prio 0", "runc 1.1.5 ignores ioPriority");
        } else {
            assert_eq!(out.trim(), want);
        }
    }
}

#[test]
fn scheduler() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.config(|c| c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7}));
    // /proc/self/stat: field 19 is nice, 41 the policy (SCHED_BATCH = 3).
    let out = sh(
        &rt,
        &mut b,
        "sched",
        "cut -d' ' -f19,41 /proc/self/stat; grep -E '^policy' /proc/self/sched | tr -s ' '",
    );
    if rt.kind() == Kind::Runc {
        assert_eq!(out, "0 0\npolicy : 0\n", "runc 1.1.5 ignores scheduler");
    } else {
        assert_eq!(out, "7 3\npolicy : 3\n");
    }
}

#[test]
fn exec_cpu_affinity() {
    let rt = runtime();
    let b = Bundle::busybox();
    let id = rt.id("affinity");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);
    let mut process = b.spec()["process"].clone();
    process["args"] = json!(["grep", "Cpus_allowed_list", "/proc/self/status"]);
    process["execCPUAffinity"] = json!({"initial": "0", "final": "1"});
    let file = b.path().join("process.json");
    std::fs::write(&file, process.to_string()).expect("process.json");
    let out = rt
        .cmd(["exec", "--process"])
        .arg(&file)
        .arg(&id)
        .ok()
        .stdout_str();
    let host = std::fs::read_to_string("/proc/self/status").expect("status");
    let host = host
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list"))
        .expect("host affinity")
        .to_string();
    if rt.kind() == Kind::Runc {
        assert_eq!(out.trim(), host, "runc 1.1.5 ignores execCPUAffinity");
    } else {
        assert_eq!(out.trim(), "Cpus_allowed_list:\t1");
    }
    rt.delete_force(&id);
}

#[test]
fn lsm_labels_without_the_lsm() {
    // This host has neither AppArmor nor SELinux: asking for a label is an error naming it.
    assert!(
        !std::path::Path::new("/sys/fs/selinux/enforce").exists()
            && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
                .map_or(true, |s| !s.starts_with('Y')),
        "this test expects a host without AppArmor and SELinux"
    );
    let rt = runtime_exclusive();
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit, &str); 3] = [
        (
            "lsm-apparmor",
            |c| c["process"]["apparmorProfile"] = json!("berth-test-profile"),
            "process.apparmorProfile",
        ),
        (
            "lsm-selinux",
            |c| c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0"),
            "process.selinuxLabel",
        ),
        (
            "lsm-mount",
            |c| c["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0"),
            "linux.mountLabel",
        ),
    ];
    for (name, edit, field) in cases {
        let id = rt.id(name);
        let (b, l) = bad_bundle(&rt, &id, edit);
        let out = create(&rt, &b, &id);
        if rt.kind() == Kind::Runc {
            // runc fails too, but in its init with the kernel's EINVAL (apparmor, mountLabel)
            // or a message without the field (selinux).
            assert_eq!(out.code(), Some(1), "{name}: {out}");
        } else {
            clear_err(&out, &[field]);
        }
        l.assert_unchanged();
    }
}

#[test]
fn bad_personality_flag() {
    let rt = runtime_exclusive();
    let id = rt.id("persona-bad");
    let (b, l) = bad_bundle(&rt, &id, |c| {
        c["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["NOT_A_FLAG"]})
    });
    let out = create(&rt, &b, &id);
    if rt.kind() == Kind::Runc {
        out.assert_ok(); // ignored by runc 1.1.5
        rt.delete_force(&id);
    } else {
        clear_err(&out, &["linux.personality.flags[0]", "NOT_A_FLAG"]);
    }
    l.assert_unchanged();
}

#[test]
fn exec_lsm_flags_without_the_lsm() {
    let rt = runtime_exclusive();
    let b = Bundle::busybox();
    let id = rt.id("lsm-exec");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);
    for (flag, field) in [
        ("--apparmor", "process.apparmorProfile"),
        ("--process-label", "process.selinuxLabel"),
    ] {
        let l = berth_itest::Leftovers::snapshot(&rt, &[], &[]);
        let out = rt
            .cmd(["exec", flag, "some-label", id.as_str(), "true"])
            .run();
        if rt.kind() == Kind::Runc {
            // runc fails in its init with the kernel's EINVAL, or refuses the label.
            assert_eq!(out.code(), Some(255), "{flag}: {out}");
        } else {
            // Every failed exec exits 255, as with runc.
            support::clear_err_code(&out, 255, &[field, "some-label"]);
        }
        l.assert_unchanged();
    }
    rt.delete_force(&id);
}

/// A caller that ignores signals (`nohup`, a shell's `trap ''`, a Rust program's SIGPIPE, the
/// C library's 32 and 33 that dash ignores) must not hand that on: the container's process, from `run` and from `exec`, starts with no signal
/// ignored or caught (`SigIgn` and `SigCgt` 0 in its status).
#[test]
fn the_containers_process_ignores_no_signal_its_caller_ignored() {
    let rt = runtime();
    let ignored = [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGUSR2,
        libc::SIGPIPE,
        libc::SIGRTMIN() + 5,
    ];
    let dispositions = |status: &str| {
        status
            .lines()
            .filter(|l| l.starts_with("SigIgn:") || l.starts_with("SigCgt:"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // The caller's /bin/sh (dash) also hands on the C library's signals 32 and 33 ignored.
    // runc 1.1 resets 33 but leaves 32 ignored (its Go runtime installs no handler there).
    let zero = vec![
        if rt.kind() == Kind::Runc {
            "SigIgn:\t0000000080000000".to_string()
        } else {
            "SigIgn:\t0000000000000000".to_string()
        },
        "SigCgt:\t0000000000000000".to_string(),
    ];
    let mut b = Bundle::busybox();
    b.args(&["cat", "/proc/self/status"]);
    let out = rt
        .run_cmd(&b, &rt.id("sigign-run"))
        .ignoring_signals(&ignored)
        .ok();
    assert_eq!(dispositions(&out.stdout_str()), zero, "run: {out}");

    let mut b = Bundle::busybox();
    b.args(&["sleep", "30"]);
    let id = rt.id("sigign-exec");
    let running = rt.run_cmd(&b, &id).ignoring_signals(&ignored).spawn();
    rt.wait_for_status(&id, "running", Duration::from_secs(10));
    let out = rt
        .exec_cmd(&id, &["cat", "/proc/self/status"])
        .ignoring_signals(&ignored)
        .ok();
    assert_eq!(dispositions(&out.stdout_str()), zero, "exec: {out}");
    rt.kill(&id, "KILL");
    let _ = running.wait_unchecked();
}
