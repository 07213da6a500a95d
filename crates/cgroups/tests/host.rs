//! Root tests on the host's own layout (hybrid on the dev/CI machine: v1 controllers plus the
//! cgroup2 mirror at /sys/fs/cgroup/unified, where hugetlb lives). Real cgroups, real
//! processes; every test cleans up through `Fixture`'s Drop.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use berth_cgroups::{CgroupError, CgroupManager, CgroupRoots, Hierarchy, resolve_path};
use berth_spec::{
    BlockIo, Cpu, DeviceCgroup, HugepageLimit, Memory, Pids, Resources, ThrottleDevice,
};
use common::*;

/// The file holding a v1 controller's setting, or its v2 twin in the cgroup2 directory.
fn ctl(m: &CgroupManager, v1_controller: &str, v1_file: &str, v2_file: &str) -> PathBuf {
    match m.v1_dirs().get(v1_controller) {
        Some(dir) => dir.join(v1_file),
        None => m.unified_dir().unwrap().join(v2_file),
    }
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

#[test]
fn layout_is_detected() {
    if !can_run() {
        return;
    }
    let roots = CgroupRoots::detect().unwrap();
    eprintln!("{roots:?}");
    let unified_root = PathBuf::from("/sys/fs/cgroup/unified");
    if unified_root.join("cgroup.controllers").exists() {
        assert_eq!(roots.hierarchy, Hierarchy::Hybrid);
        assert_eq!(roots.unified.as_deref(), Some(unified_root.as_path()));
        assert!(roots.v1.contains_key("memory"));
    }
    assert_eq!(Hierarchy::detect().unwrap(), roots.hierarchy);
}

#[test]
fn limits_are_written_and_read_back() {
    if !can_run() {
        return;
    }
    let mut fx = Fixture::new("limits");
    fx.sleeper();
    let m = &fx.manager;
    // 2MB first: a 4 MiB limit is two of its pages (1GB pages would round it down to 0).
    let mut hugepage_sizes = berth_cgroups::convert::host_hugepage_sizes();
    hugepage_sizes.sort_by_key(|s| s != "2MB");
    let block = some_block_device();
    let mut resources = Resources {
        memory: Some(Memory {
            limit: Some(64 << 20),
            reservation: Some(32 << 20),
            swap: Some(128 << 20),
            swappiness: Some(10),
            ..Default::default()
        }),
        cpu: Some(Cpu {
            shares: Some(512),
            quota: Some(50_000),
            period: Some(100_000),
            burst: Some(1000),
            cpus: Some("0".into()),
            mems: Some("0".into()),
            ..Default::default()
        }),
        pids: Some(Pids { limit: 7 }),
        block_io: Some(BlockIo {
            weight: Some(500),
            throttle_read_bps_device: block
                .map(|(major, minor)| {
                    vec![ThrottleDevice {
                        major,
                        minor,
                        rate: 1 << 20,
                    }]
                })
                .unwrap_or_default(),
            ..Default::default()
        }),
        hugepage_limits: hugepage_sizes
            .iter()
            .map(|size| HugepageLimit {
                page_size: size.clone(),
                limit: 4 << 20,
            })
            .take(1)
            .collect(),
        devices: vec![
            dev(true, "c", 1, 3, "rwm"),
            dev(true, "c", 1, 5, "r"),
            dev(false, "c", 1, 5, "m"),
        ],
        ..Default::default()
    };
    if m.hierarchy() != Hierarchy::V2 {
        resources.cpu.as_mut().unwrap().realtime_period = Some(500_000);
    }
    // A kernel without CFQ and BFQ (none, mq-deadline, kyber only) has no weight file: there
    // the weight must be refused by name, and the rest applied without it.
    let weight_file = m.v1_dirs().get("blkio").map(|dir| {
        ["blkio.weight", "blkio.bfq.weight"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists())
    });
    if let Some(None) = weight_file {
        let err = m.apply(&resources).unwrap_err().to_string();
        assert!(
            err.contains("linux.resources.blockIO.weight") && err.contains("no I/O scheduler"),
            "{err}"
        );
        resources.block_io.as_mut().unwrap().weight = None;
    }
    m.apply(&resources).unwrap();

    assert_eq!(
        read_trim(ctl(m, "memory", "memory.limit_in_bytes", "memory.max")),
        (64u64 << 20).to_string()
    );
    assert_eq!(read_trim(ctl(m, "pids", "pids.max", "pids.max")), "7");
    assert_eq!(
        read_trim(ctl(m, "cpuset", "cpuset.cpus", "cpuset.cpus")),
        "0"
    );
    assert_eq!(
        read_trim(ctl(m, "cpuset", "cpuset.mems", "cpuset.mems")),
        "0"
    );
    if let Some(size) = hugepage_sizes.first() {
        let file = ctl(
            m,
            "hugetlb",
            &format!("hugetlb.{size}.limit_in_bytes"),
            &format!("hugetlb.{size}.max"),
        );
        assert_eq!(read_trim(file), (4u64 << 20).to_string());
    }
    if let Some(dir) = m.v1_dirs().get("memory") {
        assert_eq!(
            read_trim(dir.join("memory.soft_limit_in_bytes")),
            (32u64 << 20).to_string()
        );
        assert_eq!(
            read_trim(dir.join("memory.memsw.limit_in_bytes")),
            (128u64 << 20).to_string()
        );
        assert_eq!(read_trim(dir.join("memory.swappiness")), "10");
    }
    if let Some(dir) = m.v1_dirs().get("cpu") {
        assert_eq!(read_trim(dir.join("cpu.shares")), "512");
        assert_eq!(read_trim(dir.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read_trim(dir.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read_trim(dir.join("cpu.cfs_burst_us")), "1000");
        assert_eq!(read_trim(dir.join("cpu.rt_period_us")), "500000");
    }
    if let Some(dir) = m.v1_dirs().get("blkio") {
        if let Some(Some(weight)) = &weight_file {
            assert!(read_trim(weight).ends_with("500"));
        }
        if let Some((major, minor)) = block {
            assert_eq!(
                read_trim(dir.join("blkio.throttle.read_bps_device")),
                format!("{major}:{minor} 1048576")
            );
        }
    }
    if let Some(dir) = m.v1_dirs().get("devices") {
        // Exactly the rules: deny-all first, then c 1:3 rwm, c 1:5 r (the deny of m on 1:5
        // removes nothing that was there).
        let list: BTreeSet<String> = read_trim(dir.join("devices.list"))
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(
            list,
            BTreeSet::from(["c 1:3 rwm".to_string(), "c 1:5 r".to_string()])
        );
    }

    // Stats see the same limits.
    let stats = m.stats().unwrap();
    assert_eq!(stats.memory.usage.limit, 64 << 20);
    assert_eq!(stats.pids.limit, 7);
    assert_eq!(stats.pids.current, 1);
    if let Some(size) = hugepage_sizes.first() {
        assert!(stats.hugetlb.contains_key(size), "{:?}", stats.hugetlb);
    }

    // update: raise memory (memsw first), lift the pids limit.
    let update = Resources {
        memory: Some(Memory {
            limit: Some(256 << 20),
            swap: Some(512 << 20),
            ..Default::default()
        }),
        pids: Some(Pids { limit: -1 }),
        ..Default::default()
    };
    m.update(&update).unwrap();
    assert_eq!(
        read_trim(ctl(m, "memory", "memory.limit_in_bytes", "memory.max")),
        (256u64 << 20).to_string()
    );
    assert_eq!(read_trim(ctl(m, "pids", "pids.max", "pids.max")), "max");
}

#[test]
fn pids_limit_is_enforced() {
    if !can_run() {
        return;
    }
    let mut fx = Fixture::new("pids");
    fx.manager
        .apply(&Resources {
            pids: Some(Pids { limit: 5 }),
            ..Default::default()
        })
        .unwrap();
    // The shell plus 4 sleeps fill the limit; the 5th fork fails, and dash gives up there.
    let sh = fx.gated_shell(
        "for i in $(seq 20); do sleep 30 >/dev/null 2>&1 & done; echo all-forked; wait",
    );
    let (ok, out, err) = fx.finish(sh);
    assert!(!ok, "the shell should have failed");
    assert!(
        !out.contains("all-forked"),
        "20 forks succeeded under a limit of 5"
    );
    assert!(
        err.to_lowercase().contains("fork"),
        "expected a fork failure, stderr: {err}"
    );
    let pids = fx.manager.pids().unwrap();
    assert_eq!(
        pids.len(),
        4,
        "the 4 sleeps that fit are still there: {pids:?}"
    );
    let dir = fx
        .manager
        .v1_dirs()
        .get("pids")
        .map(|d| d.as_path())
        .or(fx.manager.unified_dir())
        .unwrap();
    let events = read_trim(dir.join("pids.events"));
    let max: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(max >= 1, "pids.events: {events}");
    if dir.join("pids.peak").exists() {
        assert_eq!(read_trim(dir.join("pids.peak")), "5");
    }
}

#[test]
fn memory_limit_below_usage_is_refused() {
    if !can_run() {
        return;
    }
    let mut fx = Fixture::new("memusage");
    if !fx.manager.v1_dirs().contains_key("memory") {
        eprintln!("skipped: v1 memory only (v2 reclaims or OOM-kills instead of refusing)");
        return;
    }
    let swap_on = std::fs::read_to_string("/proc/swaps")
        .unwrap()
        .lines()
        .count()
        > 1;
    if swap_on {
        eprintln!("skipped: with swap the kernel can meet any limit by swapping out");
        return;
    }
    // Charge about 4 MB of anonymous memory to the cgroup (there is no swap to reclaim it to).
    let sh = fx.gated_shell("x=$(head -c 4000000 /dev/zero | tr '\\0' a); echo ready; sleep 100");
    let mut out = fx.stdout_lines(sh);
    assert_eq!(read_line(&mut out), "ready");
    let usage = fx.manager.stats().unwrap().memory.usage.usage;
    assert!(usage >= 4_000_000, "usage {usage}");
    let err = fx
        .manager
        .update(&Resources {
            memory: Some(Memory {
                limit: Some(1 << 20),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "linux.resources.memory.limit: 1048576 is below the cgroup's current usage"
        ),
        "{text}"
    );
    assert!(text.contains("memory.limit_in_bytes"), "{text}");
}

#[test]
fn freeze_and_thaw() {
    if !can_run() {
        return;
    }
    let mut fx = Fixture::new("freeze");
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
    assert!(!fx.manager.is_frozen().unwrap());

    fx.manager.freeze().unwrap();
    assert!(fx.manager.is_frozen().unwrap());
    if let Some(dir) = fx.manager.v1_dirs().get("freezer") {
        assert_eq!(read_trim(dir.join("freezer.state")), "FROZEN");
    }
    let before = counter();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(counter(), before, "the counter moved while frozen");

    fx.manager.thaw().unwrap();
    assert!(!fx.manager.is_frozen().unwrap());
    wait_until("the counter to move after thaw", || counter() > before + 2);
}

#[test]
fn kill_all_sigkill_reaches_every_process() {
    if !can_run() {
        return;
    }
    let mut fx = Fixture::new("killall");
    // Keeps forking: kill_all must also get children forked while it runs.
    let sh = fx.gated_shell("while :; do sleep 100 & sleep 0.01; done");
    wait_until("some children", || fx.manager.pids().unwrap().len() >= 5);
    let pids = fx.manager.pids().unwrap();
    fx.manager.kill_all(libc::SIGKILL).unwrap();
    fx.finish(sh);
    fx.wait_empty();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        fx.manager.pids().unwrap().is_empty(),
        "a process escaped kill_all"
    );
    wait_until("every process to die", || pids.iter().all(|&p| is_dead(p)));
}

#[test]
fn kill_all_other_signals_freeze_signal_thaw() {
    if !can_run() {
        return;
    }
    let mut fx = Fixture::new("killterm");
    let sh = fx.gated_shell("sleep 100 & sleep 100 & sleep 100 & wait");
    wait_until("four processes", || fx.manager.pids().unwrap().len() == 4);
    let pids = fx.manager.pids().unwrap();
    fx.manager.kill_all(libc::SIGTERM).unwrap();
    assert!(!fx.manager.is_frozen().unwrap(), "kill_all must thaw again");
    let (ok, _, _) = fx.finish(sh);
    assert!(!ok);
    fx.wait_empty();
    wait_until("every process to die", || pids.iter().all(|&p| is_dead(p)));
}

#[test]
fn pids_are_exact_and_recursive() {
    if !can_run() {
        return;
    }
    let mut fx = Fixture::new("pidlist");
    let sh = fx.gated_shell("sleep 100 & echo $!; sleep 100 & echo $!; echo done; wait");
    let sh_pid = fx.children[sh].id() as i32;
    let mut out = fx.stdout_lines(sh);
    let a: i32 = read_line(&mut out).parse().unwrap();
    let b: i32 = read_line(&mut out).parse().unwrap();
    assert_eq!(read_line(&mut out), "done");
    let mut want = vec![sh_pid, a, b];
    want.sort();
    assert_eq!(fx.manager.pids().unwrap(), want);

    // A child cgroup (as a container with its own cgroup tree would make) in every hierarchy:
    // its processes are still the container's, and destroy removes it first.
    for dir in fx.manager.dirs() {
        std::fs::create_dir(dir.join("sub")).unwrap();
        if fx.manager.v1_dirs().get("cpuset") == Some(&dir) {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                std::fs::write(
                    dir.join("sub").join(f),
                    std::fs::read_to_string(dir.join(f)).unwrap(),
                )
                .unwrap();
            }
        }
        std::fs::write(dir.join("sub/cgroup.procs"), b.to_string()).unwrap();
    }
    assert_eq!(fx.manager.pids().unwrap(), want);
}

#[test]
fn destroy_leaves_no_directory_anywhere() {
    if !can_run() {
        return;
    }
    let path = test_path("destroy");
    let rel = path.for_unified();
    let mut fx = Fixture::new("destroy");
    fx.sleeper();
    let dirs = fx.manager.dirs();
    assert!(!dirs.is_empty());
    for dir in &dirs {
        assert!(dir.is_dir(), "{} missing", dir.display());
        std::fs::create_dir(dir.join("child")).unwrap();
    }
    if fx.manager.hierarchy() == Hierarchy::Hybrid {
        assert!(
            dirs.iter().any(|d| d.starts_with("/sys/fs/cgroup/unified")),
            "{dirs:?}"
        );
    }
    fx.manager.kill_all(libc::SIGKILL).unwrap();
    for child in &mut fx.children {
        child.wait().unwrap();
    }
    fx.manager.destroy().unwrap();
    for mount in all_cgroup_mounts() {
        let dir = mount.join(rel.strip_prefix("/").unwrap());
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    // Destroying again is fine.
    fx.manager.destroy().unwrap();
    // The named systemd hierarchy was never touched.
    assert!(!fx.manager.v1_dirs().keys().any(|k| k.contains("systemd")));
}

/// `remove_if_empty` removes nothing it should not: a cgroup with a process or a child cgroup
/// stays (and says so); once empty, it goes in one call.
#[test]
fn remove_if_empty_only_removes_empty_cgroups() {
    if !can_run() {
        return;
    }
    let mut fx = Fixture::new("rmempty");
    fx.sleeper();
    assert!(!fx.manager.remove_if_empty(), "a cgroup with a process");
    assert!(fx.manager.dirs().iter().all(|d| d.is_dir()));
    fx.manager.kill_all(libc::SIGKILL).unwrap();
    for child in &mut fx.children {
        child.wait().unwrap();
    }
    fx.wait_empty();
    let first = fx.manager.dirs()[0].clone();
    std::fs::create_dir(first.join("child")).unwrap();
    assert!(
        !fx.manager.remove_if_empty(),
        "a cgroup with a child cgroup"
    );
    assert!(first.is_dir());
    std::fs::remove_dir(first.join("child")).unwrap();
    assert!(fx.manager.remove_if_empty());
    assert!(fx.manager.dirs().iter().all(|d| !d.exists()));
    assert!(fx.manager.remove_if_empty(), "already gone is gone");
}

#[test]
fn bad_inputs_are_refused_and_leave_nothing() {
    if !can_run() {
        return;
    }
    let err = resolve_path(Some("/berth-test/../escape"), "x").unwrap_err();
    assert!(err.to_string().contains("/berth-test/../escape"), "{err}");
    let err = resolve_path(Some("system.slice:berth:x"), "x").unwrap_err();
    assert!(
        err.to_string()
            .contains("systemd cgroup paths need --systemd-cgroup"),
        "{err}"
    );

    let path = test_path("badinput");
    let rel = path.for_unified();
    let cases: Vec<(Resources, &str)> = vec![
        (
            Resources {
                pids: Some(Pids { limit: -5 }),
                ..Default::default()
            },
            "linux.resources.pids.limit",
        ),
        (
            Resources {
                memory: Some(Memory {
                    limit: Some(200 << 20),
                    swap: Some(100 << 20),
                    ..Default::default()
                }),
                ..Default::default()
            },
            "linux.resources.memory.swap",
        ),
        (
            Resources {
                cpu: Some(Cpu {
                    shares: Some(1 << 30),
                    ..Default::default()
                }),
                ..Default::default()
            },
            "linux.resources.cpu.shares",
        ),
        (
            Resources {
                devices: vec![dev(true, "q", 1, 3, "rwm")],
                ..Default::default()
            },
            "linux.resources.devices[0].type",
        ),
        (
            Resources {
                hugepage_limits: vec![HugepageLimit {
                    page_size: "3MB".into(),
                    limit: 1,
                }],
                ..Default::default()
            },
            "linux.resources.hugepageLimits[0].pageSize",
        ),
        // Refused by the kernel, after the directories were made: they must go again.
        (
            Resources {
                cpu: Some(Cpu {
                    cpus: Some("4000".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            "linux.resources.cpu.cpus",
        ),
    ];
    for (resources, field) in cases {
        let err = CgroupManager::create_with(&path, &resources).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!("{field}:")),
            "{field}: {err}"
        );
        for mount in all_cgroup_mounts() {
            let dir = mount.join(rel.strip_prefix("/").unwrap());
            assert!(!dir.exists(), "{field}: {} left behind", dir.display());
        }
    }

    // net_cls/net_prio are v1 controllers; when they are not mounted the field is named.
    let fx = Fixture::new("network");
    let r = Resources {
        network: Some(serde_json::json!({"classID": 1048577})),
        ..Default::default()
    };
    match fx.manager.v1_dirs().get("net_cls") {
        Some(dir) => {
            fx.manager.apply(&r).unwrap();
            assert_eq!(read_trim(dir.join("net_cls.classid")), "1048577");
        }
        None => {
            let err = fx.manager.apply(&r).unwrap_err().to_string();
            assert!(
                err.starts_with(
                    "linux.resources.network.classID: invalid configuration: the net_cls controller"
                ),
                "{err}"
            );
        }
    }
    drop(fx);

    // A kernel refusal names the file and the value.
    let fx = Fixture::new("badwrite");
    let err = fx
        .manager
        .apply(&Resources {
            cpu: Some(Cpu {
                cpus: Some("4000".into()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(err, CgroupError::Write { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("write 4000 to /sys/fs/cgroup/") && text.contains("cpuset.cpus: "),
        "{text}"
    );
}

#[test]
fn stats_are_sane() {
    if !can_run() {
        return;
    }
    let mut fx = Fixture::new("stats");
    let sh =
        fx.gated_shell("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done; sleep 100");
    let mut out = fx.stdout_lines(sh);
    assert_eq!(read_line(&mut out), "done");
    let stats = fx.manager.stats().unwrap();
    assert!(
        stats.cpu.usage.total > 10_000_000,
        "cpu total {} ns",
        stats.cpu.usage.total
    );
    if fx.manager.v1_dirs().contains_key("cpuacct") {
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(stats.cpu.usage.percpu.len(), cpus);
        // Read a moment apart from the total, so allow a few ms of difference.
        let sum: u64 = stats.cpu.usage.percpu.iter().sum();
        assert!(
            sum.abs_diff(stats.cpu.usage.total) < 5_000_000,
            "{sum} vs {}",
            stats.cpu.usage.total
        );
    }
    assert!(stats.memory.usage.usage > 0);
    assert!(
        stats.memory.usage.limit > 1 << 40,
        "unlimited reads as a huge number"
    );
    assert!(!stats.memory.raw.is_empty());
    assert_eq!(
        stats.pids.current as usize,
        fx.manager.pids().unwrap().len()
    );
    assert_eq!(stats.pids.limit, 0);
    if fx.manager.v1_dirs().contains_key("cpuset") {
        assert!(!stats.cpuset.cpus.is_empty());
    }
    let json = serde_json::to_value(&stats).unwrap();
    eprintln!("{json}");
    assert!(json["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    assert!(json["memory"]["usage"]["limit"].is_u64());
    assert!(json["network_interfaces"].is_null());
}

#[test]
fn device_rules_are_enforced() {
    if !can_run() {
        return;
    }
    let mut fx = Fixture::new("devices");
    // /dev/null read-write, /dev/zero read-only, nothing else.
    let rules = vec![dev(true, "c", 1, 3, "rwm"), dev(true, "c", 1, 5, "r")];
    fx.manager
        .apply(&Resources {
            devices: rules,
            ..Default::default()
        })
        .unwrap();
    let sh = fx.gated_shell(
        "cat /dev/null && echo null-ok; head -c1 /dev/zero >/dev/null && echo zero-read-ok; \
         (echo x >/dev/zero) 2>/dev/null || echo zero-write-denied; \
         head -c1 /dev/urandom >/dev/null 2>&1 || echo urandom-denied",
    );
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
}

#[test]
fn manager_survives_a_state_file() {
    if !can_run() {
        return;
    }
    let mut fx = Fixture::new("serde");
    let pid = fx.sleeper();
    let json = serde_json::to_string(&fx.manager).unwrap();
    let back: CgroupManager = serde_json::from_str(&json).unwrap();
    assert_eq!(back, fx.manager);
    assert_eq!(back.pids().unwrap(), vec![pid]);
    assert_eq!(
        back.dir_fd_for_clone().is_some(),
        back.hierarchy() == Hierarchy::V2
    );
    // Rebuilt from the path alone (a lost state file), it is the same manager.
    let reopened = CgroupManager::open_in(&CgroupRoots::detect().unwrap(), &test_path("serde"));
    assert_eq!(reopened, fx.manager);
}
