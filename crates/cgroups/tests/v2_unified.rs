//! The v2 code path for real, on a hybrid host: a manager built as if the host were unified,
//! rooted at the cgroup2 hierarchy mounted at /sys/fs/cgroup/unified. That hierarchy offers
//! few or no controllers (hugetlb on the dev/CI machine), so this exercises what needs none:
//! directories, controller enabling in the parents, cgroup.procs, cgroup.freeze +
//! cgroup.events, cgroup.kill, the eBPF device filter, recursive pids, destroy, stats from
//! cpu.stat — plus hugetlb's v2 files when the hierarchy offers it. On a unified host the
//! host tests (tests/host.rs) run the v2 path with every controller instead.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_cgroups::{CgroupError, CgroupRoots, Hierarchy};
use berth_spec::{DeviceCgroup, HugepageLimit, Memory, Resources};
use common::*;

const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// The roots of a pure v2 layout on /sys/fs/cgroup/unified, or None (test skipped) when
/// this host has no cgroup2 hierarchy there.
fn v2_roots() -> Option<CgroupRoots> {
    if !can_run() {
        return None;
    }
    if !Path::new(UNIFIED).join("cgroup.controllers").exists() {
        eprintln!(
            "skipped: no cgroup2 hierarchy at {UNIFIED} (the host tests cover v2 on unified hosts)"
        );
        return None;
    }
    Some(CgroupRoots::unified_at(UNIFIED))
}

fn dev(allow: bool, typ: &str, major: i64, minor: i64, access: &str) -> DeviceCgroup {
    DeviceCgroup {
        allow,
        typ: Some(typ.into()),
        major: Some(major),
        minor: Some(minor),
        access: Some(access.into()),
    }
}

fn dir(fx: &Fixture) -> PathBuf {
    fx.manager.unified_dir().unwrap().to_path_buf()
}

#[test]
fn v2_create_add_pids_destroy() {
    let Some(roots) = v2_roots() else { return };
    let mut fx = Fixture::new_in(&roots, "v2-basic");
    assert_eq!(fx.manager.hierarchy(), Hierarchy::V2);
    assert!(fx.manager.v1_dirs().is_empty());
    let d = dir(&fx);
    assert!(d.starts_with(UNIFIED) && d.is_dir());
    assert_eq!(fx.manager.dirs(), vec![d.clone()]);
    // CLONE_INTO_CGROUP is offered for a v2 manager.
    assert!(fx.manager.dir_fd_for_clone().is_some());

    let a = fx.sleeper();
    let b = fx.sleeper();
    assert_eq!(read_trim(d.join("cgroup.procs")).lines().count(), 2);
    // The process really moved: its /proc/PID/cgroup names the directory.
    let own = std::fs::read_to_string(format!("/proc/{a}/cgroup")).unwrap();
    let rel = d.strip_prefix(UNIFIED).unwrap();
    assert!(
        own.lines().any(|l| l == format!("0::/{}", rel.display())),
        "{own}"
    );

    // A child cgroup: pids() is recursive, destroy removes it first.
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/cgroup.procs"), b.to_string()).unwrap();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(fx.manager.pids().unwrap(), want);
    assert_eq!(read_trim(d.join("cgroup.procs")), a.to_string());

    fx.manager.kill_all(libc::SIGKILL).unwrap();
    for child in &mut fx.children {
        child.wait().unwrap();
    }
    fx.manager.destroy().unwrap();
    assert!(!d.exists());
    fx.manager.destroy().unwrap();
}

#[test]
fn v2_freeze_thaw_with_cgroup_events() {
    let Some(roots) = v2_roots() else { return };
    let mut fx = Fixture::new_in(&roots, "v2-freeze");
    let d = dir(&fx);
    let tick = tempfile::NamedTempFile::new().unwrap();
    let tick_path = tick.path().to_path_buf();
    fx.gated_shell(&format!(
        "i=0; while :; do i=$((i+1)); echo $i > {}; sleep 0.01; done",
        tick_path.display()
    ));
    let counter = || {
        std::fs::read_to_string(&tick_path)
            .unwrap_or_default()
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    wait_until("the counter to run", || counter() > 2);

    fx.manager.freeze().unwrap();
    assert!(fx.manager.is_frozen().unwrap());
    assert_eq!(read_trim(d.join("cgroup.freeze")), "1");
    assert!(
        read_trim(d.join("cgroup.events"))
            .lines()
            .any(|l| l == "frozen 1")
    );
    let before = counter();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(counter(), before, "the counter moved while frozen");

    fx.manager.thaw().unwrap();
    assert!(!fx.manager.is_frozen().unwrap());
    assert!(
        read_trim(d.join("cgroup.events"))
            .lines()
            .any(|l| l == "frozen 0")
    );
    wait_until("the counter to move after thaw", || counter() > before + 2);
}

#[test]
fn v2_kill_all_with_cgroup_kill_and_with_signals() {
    let Some(roots) = v2_roots() else { return };
    let mut fx = Fixture::new_in(&roots, "v2-kill");
    if !dir(&fx).join("cgroup.kill").exists() {
        eprintln!("skipped: kernel without cgroup.kill");
        return;
    }
    let sh = fx.gated_shell("while :; do sleep 100 & sleep 0.01; done");
    wait_until("some children", || fx.manager.pids().unwrap().len() >= 5);
    let pids = fx.manager.pids().unwrap();
    fx.manager.kill_all(libc::SIGKILL).unwrap();
    fx.finish(sh);
    fx.wait_empty();
    wait_until("every process to die", || pids.iter().all(|&p| is_dead(p)));

    // Other signals: freeze (cgroup.freeze), signal each, thaw.
    let sh = fx.gated_shell("sleep 100 & sleep 100 & wait");
    wait_until("three processes", || fx.manager.pids().unwrap().len() == 3);
    let pids = fx.manager.pids().unwrap();
    fx.manager.kill_all(libc::SIGTERM).unwrap();
    assert!(!fx.manager.is_frozen().unwrap());
    fx.finish(sh);
    fx.wait_empty();
    wait_until("every process to die", || pids.iter().all(|&p| is_dead(p)));
}

#[test]
fn v2_device_filter_is_enforced_and_replaced() {
    let Some(roots) = v2_roots() else { return };
    let mut fx = Fixture::new_in(&roots, "v2-devices");
    let probe = "cat /dev/null && echo null-ok; head -c1 /dev/zero >/dev/null && echo zero-read-ok; \
                 (echo x >/dev/zero) 2>/dev/null || echo zero-write-denied; \
                 head -c1 /dev/urandom >/dev/null 2>&1 && echo urandom-ok || echo urandom-denied";

    let rules = vec![dev(true, "c", 1, 3, "rwm"), dev(true, "c", 1, 5, "r")];
    fx.manager
        .apply(&Resources {
            devices: rules,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(fx.manager.device_programs().unwrap().len(), 1);
    let sh = fx.gated_shell(probe);
    let (_, out, _) = fx.finish(sh);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "null-ok",
            "zero-read-ok",
            "zero-write-denied",
            "urandom-denied"
        ]
    );

    // update: allow everything, then deny /dev/zero. The old program must be gone (else the
    // intersection would still deny /dev/urandom).
    let rules = vec![
        DeviceCgroup {
            allow: true,
            typ: Some("a".into()),
            access: Some("rwm".into()),
            ..Default::default()
        },
        dev(false, "c", 1, 5, "rwm"),
    ];
    fx.manager
        .update(&Resources {
            devices: rules,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(fx.manager.device_programs().unwrap().len(), 1);
    let sh = fx.gated_shell(probe);
    let (_, out, _) = fx.finish(sh);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["null-ok", "zero-write-denied", "urandom-ok"]
    );
}

#[test]
fn v2_controller_files_and_unified_map() {
    let Some(roots) = v2_roots() else { return };
    let mut fx = Fixture::new_in(&roots, "v2-files");
    let d = dir(&fx);
    let offered = read_trim(Path::new(UNIFIED).join("cgroup.controllers"));
    let available = read_trim(d.join("cgroup.controllers"));
    // Whatever the root offers (of what berth wants) was enabled down to the container.
    for c in offered.split_whitespace() {
        if berth_cgroups::hierarchy::V2_CONTROLLERS.contains(&c) {
            assert!(
                available.split_whitespace().any(|a| a == c),
                "{c} not enabled: {available:?}"
            );
        }
    }

    // hugetlb's v2 files, when the hierarchy has the controller.
    let sizes = berth_cgroups::convert::host_hugepage_sizes();
    if available.split_whitespace().any(|c| c == "hugetlb") && sizes.iter().any(|s| s == "2MB") {
        let r = Resources {
            hugepage_limits: vec![HugepageLimit {
                page_size: "2MB".into(),
                limit: 8 << 20,
            }],
            ..Default::default()
        };
        fx.manager.apply(&r).unwrap();
        assert_eq!(
            read_trim(d.join("hugetlb.2MB.max")),
            (8u64 << 20).to_string()
        );
        fx.sleeper();
        let stats = fx.manager.stats().unwrap();
        assert_eq!(stats.hugetlb["2MB"].usage, 0);
    }

    // A controller the hierarchy lacks is an error naming the field and the controller.
    if !available.split_whitespace().any(|c| c == "memory") {
        let r = Resources {
            memory: Some(Memory {
                limit: Some(1 << 30),
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = fx.manager.apply(&r).unwrap_err();
        assert!(
            matches!(err, CgroupError::ControllerUnavailable { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with(
                    "linux.resources.memory: invalid configuration: the memory controller is not available"
                ),
            "{err}"
        );
        let mut r = Resources::default();
        r.unified.insert("memory.high".into(), "1000000".into());
        let err = fx.manager.apply(&r).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(
                    "linux.resources.unified[\"memory.high\"]: invalid configuration: the memory controller"
                ),
            "{err}"
        );
    }

    // The unified map is written verbatim.
    let mut r = Resources::default();
    r.unified
        .insert("cgroup.max.descendants".into(), "7".into());
    r.unified.insert("cgroup.max.depth".into(), "3".into());
    fx.manager.apply(&r).unwrap();
    assert_eq!(read_trim(d.join("cgroup.max.descendants")), "7");
    assert_eq!(read_trim(d.join("cgroup.max.depth")), "3");
    // ... and a kernel refusal names file and value.
    let mut r = Resources::default();
    r.unified.insert("cgroup.max.depth".into(), "lots".into());
    let err = fx.manager.apply(&r).unwrap_err().to_string();
    assert!(
        err.contains("write lots to ") && err.ends_with("cgroup.max.depth: invalid argument"),
        "{err}"
    );
}

#[test]
fn v2_stats_without_controllers() {
    let Some(roots) = v2_roots() else { return };
    let mut fx = Fixture::new_in(&roots, "v2-stats");
    let sh =
        fx.gated_shell("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done; sleep 100");
    let mut out = fx.stdout_lines(sh);
    assert_eq!(read_line(&mut out), "done");
    let stats = fx.manager.stats().unwrap();
    // cpu.stat's usage exists in every cgroup2 directory.
    assert!(stats.cpu.usage.total > 10_000_000, "{:?}", stats.cpu);
    assert!(stats.cpu.usage.user + stats.cpu.usage.kernel > 0);
}
