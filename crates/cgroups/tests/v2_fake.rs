//! What the v2 code writes into controller files, checked against a plain directory tree that
//! imitates a cgroup2 hierarchy (no root needed). Only the formatting and the choice of files
//! are tested here — the kernel's acceptance of these values is not (this CI host has no v2
//! memory/cpu/io/pids controllers). Regular files keep only the last write, so each file gets
//! one value per apply.

use std::fs;
use std::path::Path;

use berth_cgroups::{CgroupManager, CgroupRoots, resolve_path};
use berth_spec::{
    BlockIo, Cpu, HugepageLimit, Memory, Pids, Resources, ThrottleDevice, WeightDevice,
};

const CONTROLLERS: &str = "cpuset cpu io memory hugetlb pids rdma misc";

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path).unwrap()
}

/// A fake hierarchy at `root` with the container's directory made by the manager, and the
/// files the kernel would have put in it.
fn fake(root: &Path) -> CgroupManager {
    fs::write(root.join("cgroup.controllers"), CONTROLLERS).unwrap();
    fs::write(root.join("cgroup.subtree_control"), "").unwrap();
    let path = resolve_path(Some("/pod/ctr"), "x").unwrap();
    // The middle level appears when the manager makes it; give it its files right away by
    // making it first, as the kernel would.
    fs::create_dir(root.join("pod")).unwrap();
    fs::write(root.join("pod/cgroup.controllers"), CONTROLLERS).unwrap();
    fs::write(root.join("pod/cgroup.subtree_control"), "").unwrap();
    let manager = CgroupManager::create_in(&CgroupRoots::unified_at(root), &path).unwrap();
    let dir = root.join("pod/ctr");
    assert_eq!(manager.unified_dir(), Some(dir.as_path()));
    fs::write(dir.join("cgroup.controllers"), CONTROLLERS).unwrap();
    for file in [
        "memory.max",
        "memory.low",
        "memory.swap.max",
        "cpu.weight",
        "cpu.max.burst",
        "cpu.idle",
        "cpuset.cpus",
        "cpuset.mems",
        "pids.max",
        "io.weight",
        "io.max",
        "hugetlb.2MB.max",
    ] {
        fs::write(dir.join(file), "").unwrap();
    }
    fs::write(dir.join("cpu.max"), "max 100000\n").unwrap();
    manager
}

#[test]
fn controllers_are_enabled_in_every_parent() {
    let tmp = tempfile::tempdir().unwrap();
    fake(tmp.path());
    let want = "+cpu +cpuset +io +memory +pids +hugetlb +rdma +misc";
    assert_eq!(read(tmp.path().join("cgroup.subtree_control")), want);
    assert_eq!(read(tmp.path().join("pod/cgroup.subtree_control")), want);
    // Never in the container's own directory (it holds processes).
    assert!(!tmp.path().join("pod/ctr/cgroup.subtree_control").exists());
}

#[test]
fn v2_files_and_values() {
    let tmp = tempfile::tempdir().unwrap();
    let m = fake(tmp.path());
    let dir = tmp.path().join("pod/ctr");
    let r = Resources {
        memory: Some(Memory {
            limit: Some(100 << 20),
            reservation: Some(50 << 20),
            swap: Some(300 << 20),
            ..Default::default()
        }),
        cpu: Some(Cpu {
            shares: Some(1024),
            quota: Some(50_000),
            period: Some(200_000),
            burst: Some(10_000),
            idle: Some(1),
            cpus: Some("0-1".into()),
            mems: Some("0".into()),
            ..Default::default()
        }),
        pids: Some(Pids { limit: 0 }),
        block_io: Some(BlockIo {
            weight: Some(500),
            throttle_write_iops_device: vec![ThrottleDevice {
                major: 8,
                minor: 16,
                rate: 300,
            }],
            ..Default::default()
        }),
        hugepage_limits: if berth_cgroups::convert::host_hugepage_sizes()
            .iter()
            .any(|s| s == "2MB")
        {
            vec![HugepageLimit {
                page_size: "2MB".into(),
                limit: 1 << 30,
            }]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    m.apply(&r).unwrap();
    assert_eq!(read(dir.join("memory.max")), "104857600");
    assert_eq!(read(dir.join("memory.low")), "52428800");
    assert_eq!(read(dir.join("memory.swap.max")), "209715200"); // swap - limit
    assert_eq!(read(dir.join("cpu.weight")), "39"); // runc's conversion of 1024 shares
    assert_eq!(read(dir.join("cpu.max")), "50000 200000");
    assert_eq!(read(dir.join("cpu.max.burst")), "10000");
    assert_eq!(read(dir.join("cpu.idle")), "1");
    assert_eq!(read(dir.join("cpuset.cpus")), "0-1");
    assert_eq!(read(dir.join("cpuset.mems")), "0");
    assert_eq!(read(dir.join("pids.max")), "max");
    assert_eq!(read(dir.join("io.weight")), "4950");
    assert_eq!(read(dir.join("io.max")), "8:16 wiops=300");
    if !r.hugepage_limits.is_empty() {
        assert_eq!(read(dir.join("hugetlb.2MB.max")), "1073741824");
    }

    // Updating the period alone keeps the quota that is there; -1 is "max".
    let r = Resources {
        cpu: Some(Cpu {
            period: Some(250_000),
            ..Default::default()
        }),
        memory: Some(Memory {
            limit: Some(-1),
            ..Default::default()
        }),
        pids: Some(Pids { limit: 12 }),
        ..Default::default()
    };
    fs::write(dir.join("cpu.max"), "50000 200000\n").unwrap();
    m.update(&r).unwrap();
    assert_eq!(read(dir.join("cpu.max")), "50000 250000");
    assert_eq!(read(dir.join("memory.max")), "max");
    assert_eq!(read(dir.join("memory.swap.max")), "max");
    assert_eq!(read(dir.join("pids.max")), "12");

    // BFQ takes the v1 weight range as is, per device too.
    fs::write(dir.join("io.bfq.weight"), "").unwrap();
    let r = Resources {
        block_io: Some(BlockIo {
            weight_device: vec![WeightDevice {
                major: 8,
                minor: 0,
                weight: Some(200),
                leaf_weight: None,
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    m.apply(&r).unwrap();
    assert_eq!(read(dir.join("io.bfq.weight")), "8:0 200");

    // Things v2 cannot express are refused, naming the field.
    let r = Resources {
        cpu: Some(Cpu {
            realtime_runtime: Some(1000),
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = m.apply(&r).unwrap_err().to_string();
    assert!(
        err.starts_with("linux.resources.cpu.realtimeRuntime:"),
        "{err}"
    );
    let r = Resources {
        memory: Some(Memory {
            swap: Some(1 << 30),
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = m.apply(&r).unwrap_err().to_string();
    assert!(
        err.starts_with("linux.resources.memory.swap: a swap limit needs a memory limit"),
        "{err}"
    );
}

#[test]
fn missing_controller_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let m = fake(tmp.path());
    fs::write(tmp.path().join("pod/ctr/cgroup.controllers"), "cpu memory").unwrap();
    let r = Resources {
        pids: Some(Pids { limit: 3 }),
        ..Default::default()
    };
    let err = m.apply(&r).unwrap_err().to_string();
    assert!(
        err.starts_with("linux.resources.pids.limit: invalid configuration: the pids controller is not available for ")
            && err.ends_with("(cgroup.controllers: \"cpu memory\")"),
        "{err}"
    );
}
