//! Writing resources into a cgroup v2 directory (the container's cgroup on a unified host, or
//! its mirror in a hybrid host's cgroup2 hierarchy for the controllers only that holds).
//!
//! Conversions from the spec's v1-shaped values are in [`crate::convert`]. The device
//! filter is an eBPF program attached with `BPF_F_ALLOW_MULTI`; on update the new program is
//! attached before the old ones are detached, so there is never a moment without a filter
//! (for that moment both apply, which can only deny more).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use berth_spec::{BlockIo, Cpu, DeviceCgroup, HugepageLimit, Memory};

use crate::convert::{
    RES, blkio_weight_to_io_weight, cpu_max, device_value_line, hugetlb_v2_max_file, io_max_line,
    shares_to_weight, swap_to_v2, v2_limit,
};
use crate::devices;
use crate::error::{CgroupError, Result};
use crate::fsutil::{read, read_opt, read_u64_opt, write};

fn f(name: &str) -> String {
    format!("{RES}.{name}")
}

/// `memory.*`.
pub fn memory(dir: &Path, m: &Memory) -> Result<()> {
    let limit = m.limit.filter(|&v| v != 0);
    if let Some(swap) = swap_to_v2(m.limit, m.swap)? {
        if dir.join("memory.swap.max").exists() {
            write(dir, "memory.swap.max", &swap, Some(&f("memory.swap")))?;
        } else if swap != "max" {
            return Err(CgroupError::invalid(
                f("memory.swap"),
                "swap accounting is not enabled on this host (no memory.swap.max)",
            ));
        }
    }
    if let Some(limit) = limit {
        if m.check_before_update == Some(true) && limit > 0 {
            let usage = read_u64_opt(&dir.join("memory.current"))?.unwrap_or(0);
            if usage > limit as u64 {
                return Err(CgroupError::invalid(
                    f("memory.limit"),
                    format!("{limit} is below the cgroup's current usage ({usage} bytes)"),
                ));
            }
        }
        write(
            dir,
            "memory.max",
            &v2_limit(limit),
            Some(&f("memory.limit")),
        )?;
    }
    if let Some(r) = m.reservation.filter(|&v| v != 0) {
        write(
            dir,
            "memory.low",
            &v2_limit(r),
            Some(&f("memory.reservation")),
        )?;
    }
    if m.swappiness.is_some() {
        log::warn!("linux.resources.memory.swappiness has no cgroup v2 equivalent and is ignored");
    }
    if m.disable_oom_killer == Some(true) {
        log::warn!(
            "linux.resources.memory.disableOOMKiller has no cgroup v2 equivalent and is ignored"
        );
    }
    if m.kernel.is_some_and(|k| k != 0) || m.kernel_tcp.is_some_and(|k| k != 0) {
        log::warn!(
            "linux.resources.memory.kernel and kernelTCP have no cgroup v2 equivalent and are ignored"
        );
    }
    Ok(())
}

/// `cpu.weight`, `cpu.max`, `cpu.max.burst`, `cpu.idle`. Real-time limits were refused by
/// validation.
pub fn cpu(dir: &Path, c: &Cpu) -> Result<()> {
    if let Some(s) = c.shares.filter(|&s| s != 0) {
        write(
            dir,
            "cpu.weight",
            &shares_to_weight(s).to_string(),
            Some(&f("cpu.shares")),
        )?;
    }
    let current = read_opt(&dir.join("cpu.max"))?.unwrap_or_default();
    let current_quota = current.split_whitespace().next().unwrap_or("max");
    if let Some(value) = cpu_max(c.quota, c.period, current_quota) {
        let field = if c.quota.is_some_and(|q| q != 0) {
            "cpu.quota"
        } else {
            "cpu.period"
        };
        write(dir, "cpu.max", &value, Some(&f(field)))?;
    }
    if let Some(b) = c.burst {
        if !dir.join("cpu.max.burst").exists() {
            return Err(CgroupError::invalid(
                f("cpu.burst"),
                "this kernel has no cpu.max.burst",
            ));
        }
        write(dir, "cpu.max.burst", &b.to_string(), Some(&f("cpu.burst")))?;
    }
    if let Some(idle) = c.idle {
        write(dir, "cpu.idle", &idle.to_string(), Some(&f("cpu.idle")))?;
    }
    Ok(())
}

/// `io.weight` (or BFQ's `io.bfq.weight`, which takes the v1 range unconverted) and `io.max`.
pub fn io(dir: &Path, b: &BlockIo) -> Result<()> {
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight.filter(|&w| w != 0) {
        if bfq {
            write(
                dir,
                "io.bfq.weight",
                &w.to_string(),
                Some(&f("blockIO.weight")),
            )?;
        } else {
            write(
                dir,
                "io.weight",
                &blkio_weight_to_io_weight(w).to_string(),
                Some(&f("blockIO.weight")),
            )?;
        }
    }
    if b.leaf_weight.is_some_and(|w| w != 0) {
        return Err(CgroupError::invalid(
            f("blockIO.leafWeight"),
            "leaf weights exist only on cgroup v1 (CFQ)",
        ));
    }
    for (i, d) in b.weight_device.iter().enumerate() {
        if let Some(w) = d.weight.filter(|&w| w != 0) {
            let field = f(&format!("blockIO.weightDevice[{i}].weight"));
            if bfq {
                write(
                    dir,
                    "io.bfq.weight",
                    &device_value_line(d.major, d.minor, u64::from(w)),
                    Some(&field),
                )?;
            } else {
                let value = device_value_line(d.major, d.minor, blkio_weight_to_io_weight(w));
                write(dir, "io.weight", &value, Some(&field))?;
            }
        }
        if d.leaf_weight.is_some_and(|w| w != 0) {
            return Err(CgroupError::invalid(
                f(&format!("blockIO.weightDevice[{i}].leafWeight")),
                "leaf weights exist only on cgroup v1 (CFQ)",
            ));
        }
    }
    for (name, key, list) in [
        ("throttleReadBpsDevice", "rbps", &b.throttle_read_bps_device),
        (
            "throttleWriteBpsDevice",
            "wbps",
            &b.throttle_write_bps_device,
        ),
        (
            "throttleReadIOPSDevice",
            "riops",
            &b.throttle_read_iops_device,
        ),
        (
            "throttleWriteIOPSDevice",
            "wiops",
            &b.throttle_write_iops_device,
        ),
    ] {
        for (i, d) in list.iter().enumerate() {
            let field = f(&format!("blockIO.{name}[{i}]"));
            write(
                dir,
                "io.max",
                &io_max_line(d.major, d.minor, key, d.rate),
                Some(&field),
            )?;
        }
    }
    Ok(())
}

/// `hugetlb.<size>.max` (and `hugetlb.<size>.rsvd.max` when the kernel has it).
pub fn hugetlb(dir: &Path, limits: &[HugepageLimit]) -> Result<()> {
    for (i, h) in limits.iter().enumerate() {
        let field = f(&format!("hugepageLimits[{i}].limit"));
        let value = h.limit.to_string();
        write(
            dir,
            &hugetlb_v2_max_file(&h.page_size),
            &value,
            Some(&field),
        )?;
        let rsvd = format!("hugetlb.{}.rsvd.max", h.page_size);
        if dir.join(&rsvd).exists() {
            write(dir, &rsvd, &value, Some(&field))?;
        }
    }
    Ok(())
}

/// The `unified` map, verbatim, in key order. A key whose file is missing is reported with
/// the controller it belongs to when that controller is not enabled.
pub fn unified(dir: &Path, map: &BTreeMap<String, String>) -> Result<()> {
    let available = controllers(dir)?;
    for (key, value) in map {
        let field = f(&format!("unified[{key:?}]"));
        if !dir.join(key).exists() {
            let controller = key.split('.').next().unwrap_or_default();
            if !controller.is_empty()
                && controller != "cgroup"
                && !available.iter().any(|c| c == controller)
            {
                return Err(CgroupError::ControllerUnavailable {
                    field,
                    controller: controller.to_string(),
                    path: dir.to_path_buf(),
                    detail: format!(" (cgroup.controllers: {:?})", available.join(" ")),
                });
            }
        }
        write(dir, key, value, Some(&field))?;
    }
    Ok(())
}

/// The controllers enabled for `dir` (its `cgroup.controllers`); empty when the file is
/// missing.
pub fn controllers(dir: &Path) -> Result<Vec<String>> {
    Ok(read_opt(&dir.join("cgroup.controllers"))?
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// Enables `wanted` controllers for the children of each directory from `root` down to the
/// parent of `leaf` (`root` included), skipping controllers a level does not offer.
/// Returns the controllers that ended up enabled in `leaf`'s parent.
pub fn enable_controllers(root: &Path, leaf: &Path, wanted: &[&str]) -> Result<Vec<String>> {
    let Ok(rel) = leaf.strip_prefix(root) else {
        return Ok(Vec::new());
    };
    let mut current = root.to_path_buf();
    let mut enabled = Vec::new();
    let components: Vec<_> = rel.components().collect();
    for (i, component) in components.iter().enumerate() {
        let offered = controllers(&current)?;
        let todo: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|c| offered.iter().any(|o| o == c))
            .collect();
        let already = read_opt(&current.join("cgroup.subtree_control"))?.unwrap_or_default();
        let missing: Vec<&str> = todo
            .iter()
            .copied()
            .filter(|c| !already.split_whitespace().any(|a| a == *c))
            .collect();
        if !missing.is_empty() {
            let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
            if write(&current, "cgroup.subtree_control", &all.join(" "), None).is_err() {
                // One at a time, so one refusal (a busy or threaded cgroup) does not block the rest.
                for c in &missing {
                    if let Err(err) =
                        write(&current, "cgroup.subtree_control", &format!("+{c}"), None)
                    {
                        log::warn!("{err}");
                    }
                }
            }
        }
        if i + 1 == components.len() {
            let now = read_opt(&current.join("cgroup.subtree_control"))?.unwrap_or_default();
            enabled = now.split_whitespace().map(str::to_string).collect();
        }
        current.push(component);
    }
    Ok(enabled)
}

/// Loads the device filter for `rules` and attaches it to `dir`, replacing berth's earlier
/// filters there. An empty list changes nothing.
pub fn devices(dir: &Path, list: &[DeviceCgroup]) -> Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    let rules = devices::rules(list)?;
    let insns = devices::program_bytes(&devices::program(&rules));
    let fail = |op: &'static str, source: std::io::Error, log: String| CgroupError::DeviceFilter {
        op,
        path: dir.to_path_buf(),
        source,
        log,
    };
    let dir_fd: OwnedFd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| CgroupError::Read {
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    use berth_sys::bpf;
    let old = bpf::prog_query(dir_fd.as_fd(), bpf::ATTACH_CGROUP_DEVICE)
        .map_err(|e| fail("query programs", e, String::new()))?;
    let prog = bpf::prog_load(
        bpf::PROG_TYPE_CGROUP_DEVICE,
        &insns,
        c"Apache",
        "berth_devices",
    )
    .map_err(|(e, log)| fail("load program", e, log))?;
    bpf::prog_attach(
        dir_fd.as_fd(),
        prog.as_fd(),
        bpf::ATTACH_CGROUP_DEVICE,
        bpf::F_ALLOW_MULTI,
    )
    .map_err(|e| fail("attach program", e, String::new()))?;
    for id in old {
        let old_fd = match bpf::prog_get_fd_by_id(id) {
            Ok(fd) => fd,
            // Gone already (detached by someone else): fine.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(fail("open old program", e, String::new())),
        };
        match bpf::prog_detach(dir_fd.as_fd(), old_fd.as_fd(), bpf::ATTACH_CGROUP_DEVICE) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(fail("detach old program", e, String::new())),
        }
    }
    Ok(())
}

/// The ids of the device programs attached to `dir` itself (for tests and diagnostics).
pub fn device_programs(dir: &Path) -> Result<Vec<u32>> {
    let dir_fd: OwnedFd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| CgroupError::Read {
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    berth_sys::bpf::prog_query(dir_fd.as_fd(), berth_sys::bpf::ATTACH_CGROUP_DEVICE).map_err(
        |source| CgroupError::DeviceFilter {
            op: "query programs",
            path: dir.to_path_buf(),
            source,
            log: String::new(),
        },
    )
}

/// Reads `cgroup.events` and says whether `key` is 1.
pub fn event_is_set(dir: &Path, key: &str) -> Result<bool> {
    let text = read(&dir.join("cgroup.events"))?;
    Ok(crate::fsutil::parse_flat_keyed(&text)
        .iter()
        .any(|(k, v)| *k == key && *v == 1))
}
