//! Pure conversions from spec values to what cgroup files take. No I/O here.
//!
//! The v1 → v2 conversions are runc's (1.1), so a config means the same on both runtimes:
//!
//! - `cpu.shares` (2..=262144) → `cpu.weight` (1..=10000): `1 + (shares - 2) * 9999 / 262142`;
//! - `blkio.weight` (10..=1000) → `io.weight` (1..=10000): `1 + (weight - 10) * 9999 / 990`;
//! - `memory.swap` (memory + swap) → `memory.swap.max` (swap only): `swap - limit`.

use crate::error::{CgroupError, Result};

/// The prefix of every resource field name in errors.
pub const RES: &str = "linux.resources";

/// runc's `cpu.shares` → `cpu.weight` conversion; 0 (unset) stays 0.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// runc's `blkio.weight` → `io.weight` conversion; 0 (unset) stays 0.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).clamp(10, 1000) - 10) * 9999 / 990
}

/// The value for v2 `cpu.max`, or `None` when neither quota nor period is set.
///
/// `quota`: -1 is "max", 0 or `None` keeps `current_quota` (the quota field of the current
/// `cpu.max`, `max` when unknown), so setting only the period does not lift a quota.
/// `period`: 0 or `None` leaves the kernel's period alone.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>, current_quota: &str) -> Option<String> {
    let quota = quota.filter(|&q| q != 0);
    let period = period.filter(|&p| p != 0);
    if quota.is_none() && period.is_none() {
        return None;
    }
    let mut value = match quota {
        Some(q) if q > 0 => q.to_string(),
        Some(_) => "max".to_string(),
        None => current_quota.to_string(),
    };
    if let Some(period) = period {
        value.push_str(&format!(" {period}"));
    }
    Some(value)
}

/// A byte limit for a v2 file: -1 is `max`.
pub fn v2_limit(value: i64) -> String {
    if value < 0 {
        "max".to_string()
    } else {
        value.to_string()
    }
}

/// `pids.max`: a positive limit, or `max` for 0 and -1 (callers reject other negatives).
pub fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

/// runc's conversion of `memory.swap` (memory + swap, v1 semantics) to `memory.swap.max`.
/// `Ok(None)` means "leave `memory.swap.max` alone".
pub fn swap_to_v2(limit: Option<i64>, swap: Option<i64>) -> Result<Option<String>> {
    let limit = limit.unwrap_or(0);
    let swap = swap.unwrap_or(0);
    let field = format!("{RES}.memory.swap");
    // Unlimited memory with no swap setting means unlimited swap too, as on v1.
    if limit == -1 && swap == 0 {
        return Ok(Some("max".into()));
    }
    match swap {
        0 => Ok(None),
        -1 => Ok(Some("max".into())),
        s if s < -1 => Err(CgroupError::invalid(
            field,
            format!("{s} is not a valid limit (use -1 for unlimited)"),
        )),
        _ if limit == 0 || limit == -1 => Err(CgroupError::invalid(
            field,
            "a swap limit needs a memory limit (linux.resources.memory.limit)",
        )),
        s if s < limit => Err(CgroupError::invalid(
            field,
            format!(
                "{s} is below linux.resources.memory.limit ({limit}); swap is memory+swap and must be >= the limit"
            ),
        )),
        s => Ok(Some((s - limit).to_string())),
    }
}

/// One `io.max` line: `MAJ:MIN KEY=VALUE`, where a rate of 0 (v1's "no limit") is `max`.
/// `key` is one of `rbps`, `wbps`, `riops`, `wiops`.
pub fn io_max_line(major: i64, minor: i64, key: &str, rate: u64) -> String {
    if rate == 0 {
        format!("{major}:{minor} {key}=max")
    } else {
        format!("{major}:{minor} {key}={rate}")
    }
}

/// One v1 `blkio.throttle.*` or weight line: `MAJ:MIN VALUE`.
pub fn device_value_line(major: i64, minor: i64, value: u64) -> String {
    format!("{major}:{minor} {value}")
}

/// The name the kernel uses for a huge page size in hugetlb file names: `2MB`, `1GB`, `64KB`.
pub fn hugepage_size_name(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut unit = 0;
    let mut value = bytes;
    while value >= 1024 && value % 1024 == 0 && unit + 1 < UNITS.len() {
        value /= 1024;
        unit += 1;
    }
    if value >= 1024 && unit + 1 < UNITS.len() {
        // Not a whole number of the next unit: print a fraction, as runc's %g does.
        let fraction = value as f64 / 1024.0;
        return format!("{fraction}{}", UNITS[unit + 1]);
    }
    format!("{value}{}", UNITS[unit])
}

/// Converts a `/sys/kernel/mm/hugepages` entry name (`hugepages-2048kB`) to a size name (`2MB`).
pub fn hugepage_dir_to_size_name(dir_name: &str) -> Option<String> {
    let kb = dir_name
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse::<u64>()
        .ok()?;
    Some(hugepage_size_name(kb * 1024))
}

/// The v1 hugetlb limit file for a page size name: `hugetlb.2MB.limit_in_bytes`.
pub fn hugetlb_v1_limit_file(size: &str) -> String {
    format!("hugetlb.{size}.limit_in_bytes")
}

/// The v2 hugetlb limit file for a page size name: `hugetlb.2MB.max`.
pub fn hugetlb_v2_max_file(size: &str) -> String {
    format!("hugetlb.{size}.max")
}

/// The page sizes this host supports, as names (`2MB`, `1GB`), from `/sys/kernel/mm/hugepages`.
pub fn host_hugepage_sizes() -> Vec<String> {
    let mut sizes: Vec<String> = match std::fs::read_dir("/sys/kernel/mm/hugepages") {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| hugepage_dir_to_size_name(&e.file_name().to_string_lossy()))
            .collect(),
        Err(_) => Vec::new(),
    };
    sizes.sort();
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_weight() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
    }

    #[test]
    fn blkio_weight() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn cpu_max_formatting() {
        assert_eq!(cpu_max(None, None, "max"), None);
        assert_eq!(cpu_max(Some(0), Some(0), "max"), None);
        assert_eq!(
            cpu_max(Some(50_000), Some(100_000), "max").unwrap(),
            "50000 100000"
        );
        assert_eq!(cpu_max(Some(50_000), None, "max").unwrap(), "50000");
        assert_eq!(cpu_max(Some(-1), Some(20_000), "max").unwrap(), "max 20000");
        assert_eq!(cpu_max(Some(-1), None, "30000").unwrap(), "max");
        // Period alone keeps the quota that is there.
        assert_eq!(
            cpu_max(None, Some(250_000), "30000").unwrap(),
            "30000 250000"
        );
        assert_eq!(cpu_max(None, Some(250_000), "max").unwrap(), "max 250000");
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(swap_to_v2(Some(100), Some(300)).unwrap().unwrap(), "200");
        assert_eq!(swap_to_v2(Some(100), Some(100)).unwrap().unwrap(), "0");
        assert_eq!(swap_to_v2(Some(100), Some(-1)).unwrap().unwrap(), "max");
        assert_eq!(swap_to_v2(Some(-1), None).unwrap().unwrap(), "max");
        assert_eq!(swap_to_v2(Some(100), None).unwrap(), None);
        let err = swap_to_v2(Some(300), Some(100)).unwrap_err().to_string();
        assert!(
            err.starts_with("linux.resources.memory.swap: 100 is below"),
            "{err}"
        );
        let err = swap_to_v2(None, Some(100)).unwrap_err().to_string();
        assert!(err.contains("needs a memory limit"), "{err}");
    }

    #[test]
    fn io_lines() {
        assert_eq!(io_max_line(8, 0, "rbps", 1_048_576), "8:0 rbps=1048576");
        assert_eq!(io_max_line(254, 16, "wiops", 0), "254:16 wiops=max");
        assert_eq!(device_value_line(8, 0, 500), "8:0 500");
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(4096), "4096");
        assert_eq!(pids_max(0), "max");
        assert_eq!(pids_max(-1), "max");
        assert_eq!(pids_max(5), "5");
    }

    #[test]
    fn hugepage_names() {
        assert_eq!(hugepage_size_name(2 * 1024 * 1024), "2MB");
        assert_eq!(hugepage_size_name(1 << 30), "1GB");
        assert_eq!(hugepage_size_name(64 * 1024), "64KB");
        assert_eq!(hugepage_size_name(16 << 30), "16GB");
        assert_eq!(hugepage_size_name(1536 * 1024), "1.5MB");
        assert_eq!(
            hugepage_dir_to_size_name("hugepages-2048kB").unwrap(),
            "2MB"
        );
        assert_eq!(
            hugepage_dir_to_size_name("hugepages-1048576kB").unwrap(),
            "1GB"
        );
        assert_eq!(hugepage_dir_to_size_name("bogus"), None);
        assert_eq!(hugetlb_v1_limit_file("2MB"), "hugetlb.2MB.limit_in_bytes");
        assert_eq!(hugetlb_v2_max_file("2MB"), "hugetlb.2MB.max");
    }
}
