//! Checks on `linux.resources` that need no cgroup: ranges, formats, and what the host's
//! layout cannot express. They run before any directory is made, so a refused config leaves
//! nothing behind. Every error names the field as a JSON path.
//!
//! Where runc (Go) cannot tell 0 from "unset", berth follows it: a 0 memory limit,
//! reservation, swap or kernel TCP limit, CPU shares, quota, period, realtime value or blkio
//! weight means "leave as is". A pids limit of 0 means unlimited.

use berth_spec::Resources;

use crate::convert::{RES, host_hugepage_sizes, swap_to_v2};
use crate::devices;
use crate::error::{CgroupError, Result};
use crate::hierarchy::Hierarchy;

/// cgroup v2 core files `unified` must not write: they would move processes, change the
/// tree's controllers, or freeze/kill behind berth's back.
pub const RESERVED_UNIFIED_KEYS: &[&str] = &[
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.subtree_control",
    "cgroup.freeze",
    "cgroup.kill",
    "cgroup.type",
    "cgroup.events",
    "cgroup.controllers",
];

fn bad(field: impl Into<String>, reason: impl Into<String>) -> CgroupError {
    CgroupError::invalid(field, reason)
}

fn limit_ok(field: &str, value: Option<i64>) -> Result<()> {
    match value {
        Some(v) if v < -1 => Err(bad(
            format!("{RES}.{field}"),
            format!("{v} is not a valid limit (use -1 for unlimited)"),
        )),
        _ => Ok(()),
    }
}

/// Checks `resources` for a host with layout `hierarchy`.
pub fn validate(resources: &Resources, hierarchy: Hierarchy) -> Result<()> {
    if let Some(m) = &resources.memory {
        limit_ok("memory.limit", m.limit)?;
        limit_ok("memory.reservation", m.reservation)?;
        limit_ok("memory.swap", m.swap)?;
        limit_ok("memory.kernelTCP", m.kernel_tcp)?;
        if let (Some(limit), Some(swap)) = (m.limit, m.swap) {
            if limit > 0 && swap > 0 && swap < limit {
                return Err(bad(
                    format!("{RES}.memory.swap"),
                    format!(
                        "{swap} is below linux.resources.memory.limit ({limit}); swap is memory+swap and must be >= the limit"
                    ),
                ));
            }
        }
        if hierarchy == Hierarchy::V2 {
            swap_to_v2(m.limit, m.swap)?;
        }
        if let Some(s) = m.swappiness {
            if s > 100 {
                return Err(bad(
                    format!("{RES}.memory.swappiness"),
                    format!("{s} is out of range 0-100"),
                ));
            }
        }
    }
    if let Some(c) = &resources.cpu {
        if let Some(s) = c.shares.filter(|&s| s != 0) {
            if !(2..=262_144).contains(&s) {
                return Err(bad(
                    format!("{RES}.cpu.shares"),
                    format!("{s} is out of range 2-262144"),
                ));
            }
        }
        match c.quota {
            Some(q) if q < -1 => {
                return Err(bad(
                    format!("{RES}.cpu.quota"),
                    format!("{q} is not a valid quota (use -1 for unlimited)"),
                ));
            }
            Some(q) if q > 0 && q < 1000 => {
                return Err(bad(
                    format!("{RES}.cpu.quota"),
                    format!("{q} is below the kernel's minimum of 1000 microseconds"),
                ));
            }
            _ => {}
        }
        if let Some(p) = c.period.filter(|&p| p != 0) {
            if !(1000..=1_000_000).contains(&p) {
                return Err(bad(
                    format!("{RES}.cpu.period"),
                    format!("{p} is out of range 1000-1000000 microseconds"),
                ));
            }
        }
        if hierarchy == Hierarchy::V2 {
            for (name, set) in [
                (
                    "realtimeRuntime",
                    c.realtime_runtime.is_some_and(|v| v != 0),
                ),
                ("realtimePeriod", c.realtime_period.is_some_and(|v| v != 0)),
            ] {
                if set {
                    return Err(bad(
                        format!("{RES}.cpu.{name}"),
                        "real-time CPU limits exist only on cgroup v1",
                    ));
                }
            }
        }
        if let Some(idle) = c.idle {
            if !(0..=1).contains(&idle) {
                return Err(bad(
                    format!("{RES}.cpu.idle"),
                    format!("{idle} must be 0 or 1"),
                ));
            }
        }
        for (name, list) in [("cpus", &c.cpus), ("mems", &c.mems)] {
            if let Some(list) = list {
                if !list
                    .chars()
                    .all(|ch| ch.is_ascii_digit() || ",- \n".contains(ch))
                {
                    return Err(bad(
                        format!("{RES}.cpu.{name}"),
                        format!("{list:?} is not a list such as \"0-3,5\""),
                    ));
                }
            }
        }
    }
    if let Some(p) = &resources.pids {
        if p.limit < -1 {
            return Err(bad(
                format!("{RES}.pids.limit"),
                format!(
                    "{} is not a valid limit (use -1 or 0 for unlimited)",
                    p.limit
                ),
            ));
        }
    }
    if let Some(b) = &resources.block_io {
        let weight_ok = |field: String, w: Option<u16>| -> Result<()> {
            match w {
                Some(w) if w != 0 && !(10..=1000).contains(&w) => {
                    Err(bad(field, format!("{w} is out of range 10-1000")))
                }
                _ => Ok(()),
            }
        };
        weight_ok(format!("{RES}.blockIO.weight"), b.weight)?;
        weight_ok(format!("{RES}.blockIO.leafWeight"), b.leaf_weight)?;
        for (i, d) in b.weight_device.iter().enumerate() {
            let field = format!("{RES}.blockIO.weightDevice[{i}]");
            device_numbers(&field, d.major, d.minor)?;
            weight_ok(format!("{field}.weight"), d.weight)?;
            weight_ok(format!("{field}.leafWeight"), d.leaf_weight)?;
        }
        for (name, list) in [
            ("throttleReadBpsDevice", &b.throttle_read_bps_device),
            ("throttleWriteBpsDevice", &b.throttle_write_bps_device),
            ("throttleReadIOPSDevice", &b.throttle_read_iops_device),
            ("throttleWriteIOPSDevice", &b.throttle_write_iops_device),
        ] {
            for (i, d) in list.iter().enumerate() {
                device_numbers(&format!("{RES}.blockIO.{name}[{i}]"), d.major, d.minor)?;
            }
        }
    }
    if !resources.hugepage_limits.is_empty() {
        let sizes = host_hugepage_sizes();
        for (i, h) in resources.hugepage_limits.iter().enumerate() {
            if !sizes.contains(&h.page_size) {
                return Err(bad(
                    format!("{RES}.hugepageLimits[{i}].pageSize"),
                    format!(
                        "{:?} is not a huge page size of this host (it has: {})",
                        h.page_size,
                        sizes.join(", ")
                    ),
                ));
            }
        }
    }
    if let Some(network) = &resources.network {
        crate::v1::parse_network(network)?;
    }
    devices::rules(&resources.devices)?;
    if !resources.unified.is_empty() {
        if hierarchy == Hierarchy::V1 {
            return Err(bad(
                format!("{RES}.unified"),
                "invalid configuration: cgroup v2 files cannot be set on a cgroup v1 host",
            ));
        }
        for key in resources.unified.keys() {
            let field = format!("{RES}.unified[{key:?}]");
            if key.is_empty()
                || key == "."
                || key == ".."
                || key.contains('/')
                || key.contains('\0')
            {
                return Err(bad(
                    field,
                    "must be the name of a file in the container's cgroup",
                ));
            }
            if RESERVED_UNIFIED_KEYS.contains(&key.as_str()) {
                return Err(bad(field, "is managed by berth and cannot be set"));
            }
        }
    }
    Ok(())
}

fn device_numbers(field: &str, major: i64, minor: i64) -> Result<()> {
    if major < 0 || minor < 0 || major > i64::from(u32::MAX) || minor > i64::from(u32::MAX) {
        return Err(bad(
            format!("{field}.major"),
            format!("{major}:{minor} is not a device number"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_spec::{BlockIo, Cpu, HugepageLimit, Memory, Pids};

    fn err(r: &Resources, h: Hierarchy) -> String {
        validate(r, h).unwrap_err().to_string()
    }

    #[test]
    fn fields_are_named() {
        let r = Resources {
            pids: Some(Pids { limit: -5 }),
            ..Default::default()
        };
        assert!(err(&r, Hierarchy::V1).starts_with("linux.resources.pids.limit: -5"));
        let ok = Resources {
            pids: Some(Pids { limit: -1 }),
            ..Default::default()
        };
        validate(&ok, Hierarchy::V1).unwrap();

        let r = Resources {
            memory: Some(Memory {
                limit: Some(200),
                swap: Some(100),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(
            err(&r, Hierarchy::Hybrid).starts_with("linux.resources.memory.swap: 100 is below")
        );
        let r = Resources {
            memory: Some(Memory {
                limit: Some(-2),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(err(&r, Hierarchy::V2).starts_with("linux.resources.memory.limit:"));
        let r = Resources {
            memory: Some(Memory {
                swappiness: Some(101),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(err(&r, Hierarchy::V1).starts_with("linux.resources.memory.swappiness:"));

        let r = Resources {
            cpu: Some(Cpu {
                shares: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(err(&r, Hierarchy::V1).starts_with("linux.resources.cpu.shares:"));
        let r = Resources {
            cpu: Some(Cpu {
                quota: Some(10),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(err(&r, Hierarchy::V1).starts_with("linux.resources.cpu.quota:"));
        let r = Resources {
            cpu: Some(Cpu {
                period: Some(10),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(err(&r, Hierarchy::V1).starts_with("linux.resources.cpu.period:"));
        let r = Resources {
            cpu: Some(Cpu {
                realtime_runtime: Some(100),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(err(&r, Hierarchy::V2).starts_with("linux.resources.cpu.realtimeRuntime:"));
        validate(&r, Hierarchy::Hybrid).unwrap();
        let r = Resources {
            cpu: Some(Cpu {
                cpus: Some("0;1".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(err(&r, Hierarchy::V1).starts_with("linux.resources.cpu.cpus:"));

        let r = Resources {
            block_io: Some(BlockIo {
                weight: Some(5),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(err(&r, Hierarchy::V1).starts_with("linux.resources.blockIO.weight:"));

        let r = Resources {
            hugepage_limits: vec![HugepageLimit {
                page_size: "3MB".into(),
                limit: 1,
            }],
            ..Default::default()
        };
        assert!(
            err(&r, Hierarchy::V1)
                .starts_with("linux.resources.hugepageLimits[0].pageSize: \"3MB\"")
        );

        let mut r = Resources::default();
        r.unified.insert("memory.max".into(), "1".into());
        assert!(err(&r, Hierarchy::V1).starts_with("linux.resources.unified:"));
        validate(&r, Hierarchy::Hybrid).unwrap();
        r.unified.insert("../x".into(), "1".into());
        assert!(err(&r, Hierarchy::V2).starts_with("linux.resources.unified[\"../x\"]:"));
        let mut r = Resources::default();
        r.unified.insert("cgroup.procs".into(), "1".into());
        assert!(err(&r, Hierarchy::V2).contains("managed by berth"));
    }
}
