//! Writing resources into cgroup v1 controller directories.
//!
//! Each function takes the container's directory in one controller's hierarchy and writes
//! only the fields that are set, in runc's order. Inputs have passed
//! [`crate::validate::validate`]. Order of operations that matter:
//!
//! - memory: when both limit and memory+swap change, the one that keeps
//!   `limit <= memsw` true at every step goes first (raising: memsw first);
//! - cpu: period before quota, retried the other way round on `EINVAL`; rt period before
//!   rt runtime;
//! - devices: `a` to `devices.deny`, then every rule in order.

use std::path::Path;

use berth_spec::{BlockIo, Cpu, DeviceCgroup, HugepageLimit, Memory, Pids};

use crate::convert::{RES, device_value_line, hugetlb_v1_limit_file};
use crate::devices;
use crate::error::{CgroupError, Result};
use crate::fsutil::{ControlFile, read_u64_opt, write};

fn f(name: &str) -> String {
    format!("{RES}.{name}")
}

/// Writes a v1 limit, turning "below current usage" into an error that names the field.
fn write_memory_limit(dir: &Path, file: &str, value: i64, field: &str) -> Result<()> {
    let field = f(field);
    write(dir, file, &value.to_string(), Some(&field)).map_err(|err| {
        if err.raw_os_error() == Some(libc::EBUSY) {
            let usage_file = if file.contains("memsw") { "memory.memsw.usage_in_bytes" } else { "memory.usage_in_bytes" };
            let usage = read_u64_opt(&dir.join(usage_file)).ok().flatten().unwrap_or(0);
            CgroupError::invalid(
                field,
                format!("{value} is below the cgroup's current usage ({usage} bytes) and the kernel could not reclaim enough ({err})"),
            )
        } else {
            err
        }
    })
}

/// `memory.*`.
pub fn memory(dir: &Path, m: &Memory) -> Result<()> {
    let limit = m.limit.filter(|&v| v != 0);
    let mut swap = m.swap.filter(|&v| v != 0);
    // Unlimited memory without a swap setting means unlimited memory+swap, as runc does.
    if limit == Some(-1) && swap.is_none() {
        swap = Some(-1);
    }
    let has_memsw = dir.join("memory.memsw.limit_in_bytes").exists();
    if swap.is_some() && !has_memsw {
        if swap == Some(-1) {
            log::debug!(
                "{}: swap accounting is off; unlimited swap needs no setting",
                dir.display()
            );
            swap = None;
        } else {
            return Err(CgroupError::invalid(
                f("memory.swap"),
                "swap accounting is not enabled on this host (no memory.memsw.limit_in_bytes)",
            ));
        }
    }
    match (limit, swap) {
        (Some(limit), Some(swap)) => {
            let current = read_u64_opt(&dir.join("memory.limit_in_bytes"))?.unwrap_or(u64::MAX);
            let raising = limit == -1 || limit as u64 > current;
            if raising {
                write_memory_limit(dir, "memory.memsw.limit_in_bytes", swap, "memory.swap")?;
                write_memory_limit(dir, "memory.limit_in_bytes", limit, "memory.limit")?;
            } else {
                write_memory_limit(dir, "memory.limit_in_bytes", limit, "memory.limit")?;
                write_memory_limit(dir, "memory.memsw.limit_in_bytes", swap, "memory.swap")?;
            }
        }
        (Some(limit), None) => {
            write_memory_limit(dir, "memory.limit_in_bytes", limit, "memory.limit")?
        }
        (None, Some(swap)) => {
            write_memory_limit(dir, "memory.memsw.limit_in_bytes", swap, "memory.swap")?
        }
        (None, None) => {}
    }
    if let Some(r) = m.reservation.filter(|&v| v != 0) {
        write(
            dir,
            "memory.soft_limit_in_bytes",
            &r.to_string(),
            Some(&f("memory.reservation")),
        )?;
    }
    if let Some(t) = m.kernel_tcp.filter(|&v| v != 0) {
        if !dir.join("memory.kmem.tcp.limit_in_bytes").exists() {
            return Err(CgroupError::invalid(
                f("memory.kernelTCP"),
                "this kernel has no memory.kmem.tcp.limit_in_bytes",
            ));
        }
        write(
            dir,
            "memory.kmem.tcp.limit_in_bytes",
            &t.to_string(),
            Some(&f("memory.kernelTCP")),
        )?;
    }
    if m.kernel.is_some_and(|k| k != 0) {
        log::warn!("linux.resources.memory.kernel is deprecated and ignored");
    }
    if let Some(s) = m.swappiness {
        write(
            dir,
            "memory.swappiness",
            &s.to_string(),
            Some(&f("memory.swappiness")),
        )?;
    }
    if m.disable_oom_killer == Some(true) {
        write(dir, "memory.oom_control", "1", Some(&f("disableOOMKiller")))?;
    }
    Ok(())
}

/// `cpu.*` (not the cpuset part of `linux.resources.cpu`).
pub fn cpu(dir: &Path, c: &Cpu) -> Result<()> {
    if let Some(s) = c.shares.filter(|&s| s != 0) {
        write(dir, "cpu.shares", &s.to_string(), Some(&f("cpu.shares")))?;
    }
    let quota = c.quota.filter(|&q| q != 0);
    let mut period_pending = None;
    if let Some(p) = c.period.filter(|&p| p != 0) {
        let value = p.to_string();
        match write(dir, "cpu.cfs_period_us", &value, Some(&f("cpu.period"))) {
            Ok(()) => {}
            // The old quota over the new period may exceed what the parent allows; setting the
            // quota first and then the period again fixes that.
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) && quota.is_some() => {
                period_pending = Some(value)
            }
            Err(err) => return Err(err),
        }
    }
    if let Some(q) = quota {
        write(
            dir,
            "cpu.cfs_quota_us",
            &q.to_string(),
            Some(&f("cpu.quota")),
        )?;
        if let Some(value) = period_pending {
            write(dir, "cpu.cfs_period_us", &value, Some(&f("cpu.period")))?;
        }
    }
    if let Some(b) = c.burst {
        if !dir.join("cpu.cfs_burst_us").exists() {
            return Err(CgroupError::invalid(
                f("cpu.burst"),
                "this kernel has no cpu.cfs_burst_us",
            ));
        }
        write(
            dir,
            "cpu.cfs_burst_us",
            &b.to_string(),
            Some(&f("cpu.burst")),
        )?;
    }
    if let Some(p) = c.realtime_period.filter(|&p| p != 0) {
        write(
            dir,
            "cpu.rt_period_us",
            &p.to_string(),
            Some(&f("cpu.realtimePeriod")),
        )?;
    }
    if let Some(r) = c.realtime_runtime.filter(|&r| r != 0) {
        write(
            dir,
            "cpu.rt_runtime_us",
            &r.to_string(),
            Some(&f("cpu.realtimeRuntime")),
        )?;
    }
    if let Some(idle) = c.idle {
        if !dir.join("cpu.idle").exists() {
            return Err(CgroupError::invalid(
                f("cpu.idle"),
                "this kernel has no cpu.idle",
            ));
        }
        write(dir, "cpu.idle", &idle.to_string(), Some(&f("cpu.idle")))?;
    }
    Ok(())
}

/// Whether `c` sets anything the cpu controller handles.
pub fn cpu_needed(c: &Cpu) -> bool {
    c.shares.is_some_and(|v| v != 0)
        || c.quota.is_some_and(|v| v != 0)
        || c.period.is_some_and(|v| v != 0)
        || c.burst.is_some()
        || c.realtime_period.is_some_and(|v| v != 0)
        || c.realtime_runtime.is_some_and(|v| v != 0)
        || c.idle.is_some()
}

/// Whether `c` sets anything the cpuset controller handles.
pub fn cpuset_needed(c: &Cpu) -> bool {
    c.cpus.as_deref().is_some_and(|s| !s.trim().is_empty())
        || c.mems.as_deref().is_some_and(|s| !s.trim().is_empty())
}

/// `cpuset.cpus` and `cpuset.mems` (the same file names on v1 and v2).
pub fn cpuset(dir: &Path, c: &Cpu) -> Result<()> {
    if let Some(cpus) = c.cpus.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        write(dir, "cpuset.cpus", cpus, Some(&f("cpu.cpus")))?;
    }
    if let Some(mems) = c.mems.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        write(dir, "cpuset.mems", mems, Some(&f("cpu.mems")))?;
    }
    Ok(())
}

/// `pids.max` (the same on v1 and v2).
pub fn pids(dir: &Path, p: &Pids) -> Result<()> {
    write(
        dir,
        "pids.max",
        &crate::convert::pids_max(p.limit),
        Some(&f("pids.limit")),
    )
}

/// Whether `b` sets anything.
pub fn blkio_needed(b: &BlockIo) -> bool {
    b.weight.is_some_and(|w| w != 0)
        || b.leaf_weight.is_some_and(|w| w != 0)
        || !b.weight_device.is_empty()
        || !b.throttle_read_bps_device.is_empty()
        || !b.throttle_write_bps_device.is_empty()
        || !b.throttle_read_iops_device.is_empty()
        || !b.throttle_write_iops_device.is_empty()
}

/// `blkio.*`. Weights go to CFQ's `blkio.weight*` when the kernel has them, else to BFQ's
/// `blkio.bfq.weight*`; leaf weights exist only with CFQ.
pub fn blkio(dir: &Path, b: &BlockIo) -> Result<()> {
    let cfq = dir.join("blkio.weight").exists();
    let bfq = dir.join("blkio.bfq.weight").exists();
    let (weight_file, weight_device_file) = if cfq || !bfq {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    if let Some(w) = b.weight.filter(|&w| w != 0) {
        if !cfq && !bfq {
            return Err(CgroupError::invalid(
                f("blockIO.weight"),
                "no I/O scheduler here supports weights (no blkio.weight or blkio.bfq.weight)",
            ));
        }
        write(dir, weight_file, &w.to_string(), Some(&f("blockIO.weight")))?;
    }
    if let Some(w) = b.leaf_weight.filter(|&w| w != 0) {
        if !dir.join("blkio.leaf_weight").exists() {
            return Err(CgroupError::invalid(
                f("blockIO.leafWeight"),
                "this kernel has no blkio.leaf_weight (CFQ only)",
            ));
        }
        write(
            dir,
            "blkio.leaf_weight",
            &w.to_string(),
            Some(&f("blockIO.leafWeight")),
        )?;
    }
    for (i, d) in b.weight_device.iter().enumerate() {
        if let Some(w) = d.weight.filter(|&w| w != 0) {
            let field = f(&format!("blockIO.weightDevice[{i}].weight"));
            write(
                dir,
                weight_device_file,
                &device_value_line(d.major, d.minor, u64::from(w)),
                Some(&field),
            )?;
        }
        if let Some(w) = d.leaf_weight.filter(|&w| w != 0) {
            let field = f(&format!("blockIO.weightDevice[{i}].leafWeight"));
            if !dir.join("blkio.leaf_weight_device").exists() {
                return Err(CgroupError::invalid(
                    field,
                    "this kernel has no blkio.leaf_weight_device (CFQ only)",
                ));
            }
            write(
                dir,
                "blkio.leaf_weight_device",
                &device_value_line(d.major, d.minor, u64::from(w)),
                Some(&field),
            )?;
        }
    }
    for (name, file, list) in [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            &b.throttle_read_bps_device,
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            &b.throttle_write_bps_device,
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            &b.throttle_read_iops_device,
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            &b.throttle_write_iops_device,
        ),
    ] {
        for (i, d) in list.iter().enumerate() {
            let field = f(&format!("blockIO.{name}[{i}]"));
            write(
                dir,
                file,
                &device_value_line(d.major, d.minor, d.rate),
                Some(&field),
            )?;
        }
    }
    Ok(())
}

/// `hugetlb.<size>.limit_in_bytes` (and the reservation limit when the kernel has one).
pub fn hugetlb(dir: &Path, limits: &[HugepageLimit]) -> Result<()> {
    for (i, h) in limits.iter().enumerate() {
        let field = f(&format!("hugepageLimits[{i}].limit"));
        let value = h.limit.to_string();
        write(
            dir,
            &hugetlb_v1_limit_file(&h.page_size),
            &value,
            Some(&field),
        )?;
        let rsvd = format!("hugetlb.{}.rsvd.limit_in_bytes", h.page_size);
        if dir.join(&rsvd).exists() {
            write(dir, &rsvd, &value, Some(&field))?;
        }
    }
    Ok(())
}

/// `devices.deny` `a`, then each rule to `devices.allow`/`devices.deny` in order. An empty
/// list changes nothing (see [`crate::devices`]).
pub fn devices(dir: &Path, list: &[DeviceCgroup]) -> Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    let rules = devices::rules(list)?;
    let mut deny = ControlFile::new(dir, "devices.deny");
    let mut allow = ControlFile::new(dir, "devices.allow");
    deny.write("a", Some(&f("devices")))?;
    for (i, rule) in rules.iter().enumerate() {
        let file = if rule.allow { &mut allow } else { &mut deny };
        file.write(&rule.v1_string(), Some(&f(&format!("devices[{i}]"))))?;
    }
    Ok(())
}

/// `linux.resources.network`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    /// `classID` for `net_cls.classid`.
    pub class_id: Option<u32>,
    /// `priorities`: (interface, priority) for `net_prio.ifpriomap`.
    pub priorities: Vec<(String, u32)>,
}

/// Reads `linux.resources.network` (kept as JSON by the spec crate):
/// `{"classID": u32, "priorities": [{"name": "eth0", "priority": 500}]}`.
pub fn parse_network(network: &serde_json::Value) -> Result<Network> {
    let field = |name: &str| format!("{RES}.network{name}");
    if network.is_null() {
        return Ok(Network::default());
    }
    let obj = network
        .as_object()
        .ok_or_else(|| CgroupError::invalid(field(""), "must be an object"))?;
    let class_id = match obj.get("classID") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    CgroupError::invalid(field(".classID"), format!("{v} is not a 32-bit class id"))
                })?,
        ),
    };
    let mut priorities = Vec::new();
    if let Some(list) = obj.get("priorities").filter(|v| !v.is_null()) {
        let list = list
            .as_array()
            .ok_or_else(|| CgroupError::invalid(field(".priorities"), "must be a list"))?;
        for (i, entry) in list.iter().enumerate() {
            let name = entry
                .get("name")
                .and_then(|v| v.as_str())
                .filter(|n| !n.is_empty() && !n.contains(char::is_whitespace));
            let priority = entry
                .get("priority")
                .and_then(|v| v.as_u64())
                .and_then(|n| u32::try_from(n).ok());
            match (name, priority) {
                (Some(name), Some(priority)) => priorities.push((name.to_string(), priority)),
                _ => {
                    return Err(CgroupError::invalid(
                        field(&format!(".priorities[{i}]")),
                        "needs an interface \"name\" and a numeric \"priority\"",
                    ));
                }
            }
        }
    }
    Ok(Network {
        class_id,
        priorities,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_json() {
        let v = serde_json::json!({"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]});
        let n = parse_network(&v).unwrap();
        assert_eq!(n.class_id, Some(1_048_577));
        assert_eq!(n.priorities, vec![("eth0".to_string(), 500)]);
        assert_eq!(
            parse_network(&serde_json::Value::Null).unwrap(),
            Network::default()
        );
        let bad = serde_json::json!({"priorities": [{"name": "eth0"}]});
        let err = parse_network(&bad).unwrap_err().to_string();
        assert!(
            err.starts_with("linux.resources.network.priorities[0]:"),
            "{err}"
        );
        let bad = serde_json::json!({"classID": -1});
        assert!(
            parse_network(&bad)
                .unwrap_err()
                .to_string()
                .starts_with("linux.resources.network.classID:")
        );
    }
}
