//! `berth update`: runc's flags and JSON, turned into the resources to apply.
//!
//! As with runc 1.1: `-r FILE` (or `-r -` for stdin) reads runc's update document and then every
//! other flag is ignored; otherwise the flags apply. In both, a value of 0 (or an empty string)
//! means "leave as is"; memory values take docker's units (`512m`, `1g`: powers of 1024) or
//! `-1` for unlimited; `--pids-limit -1` is unlimited. Only the fields runc's `update` changes
//! are taken: memory limit, reservation and swap, CPU shares, quota, period, realtime runtime
//! and period, cpus and mems, blkio weight, pids limit, and `unified`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use berth_spec::{BlockIo, Cpu, Memory, Pids, Resources};
use clap::Args;
use serde::Deserialize;

/// `update` flags (runc's names; `--cpu-shares` is accepted for `--cpu-share`).
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A JSON file with the resources to update, or `-` for stdin (all other flags are then
    /// ignored).
    #[arg(short = 'r', long = "resources", value_name = "FILE|-")]
    pub resources: Option<String>,
    /// Block I/O weight (10-1000).
    #[arg(long = "blkio-weight", value_name = "N")]
    pub blkio_weight: Option<String>,
    /// CPU CFS period in microseconds.
    #[arg(long = "cpu-period", value_name = "US")]
    pub cpu_period: Option<String>,
    /// CPU CFS quota in microseconds per period (-1: none).
    #[arg(long = "cpu-quota", allow_hyphen_values = true, value_name = "US")]
    pub cpu_quota: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", alias = "cpu-shares", value_name = "N")]
    pub cpu_share: Option<String>,
    /// CPU realtime period in microseconds.
    #[arg(long = "cpu-rt-period", value_name = "US")]
    pub cpu_rt_period: Option<String>,
    /// CPU realtime runtime in microseconds.
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true, value_name = "US")]
    pub cpu_rt_runtime: Option<String>,
    /// CPUs to use (`0-3,7`).
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Obsolete; ignored with a warning.
    #[arg(long = "kernel-memory", allow_hyphen_values = true, hide = true)]
    pub kernel_memory: Option<String>,
    /// Obsolete; ignored with a warning.
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true, hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit in bytes (units: k, m, g; -1: unlimited).
    #[arg(long = "memory", allow_hyphen_values = true, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Memory reservation (soft limit) in bytes.
    #[arg(
        long = "memory-reservation",
        allow_hyphen_values = true,
        value_name = "BYTES"
    )]
    pub memory_reservation: Option<String>,
    /// Memory plus swap in bytes (-1: unlimited swap).
    #[arg(long = "memory-swap", allow_hyphen_values = true, value_name = "BYTES")]
    pub memory_swap: Option<String>,
    /// Maximum number of pids (-1: unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true, value_name = "N")]
    pub pids_limit: Option<String>,
    /// Intel RDT L3 cache schema (not supported).
    #[arg(long = "l3-cache-schema", value_name = "SCHEMA")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported).
    #[arg(long = "mem-bw-schema", value_name = "SCHEMA")]
    pub mem_bw_schema: Option<String>,
    /// The container id.
    pub id: String,
}

/// runc's update document (`specs.LinuxResources`, the fields `update` uses).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    #[serde(default)]
    memory: Option<DocMemory>,
    #[serde(default)]
    cpu: Option<DocCpu>,
    #[serde(default, rename = "blockIO")]
    block_io: Option<DocBlockIo>,
    #[serde(default)]
    pids: Option<DocPids>,
    #[serde(default)]
    unified: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocMemory {
    limit: Option<i64>,
    reservation: Option<i64>,
    swap: Option<i64>,
    kernel: Option<i64>,
    #[serde(rename = "kernelTCP")]
    kernel_tcp: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocCpu {
    shares: Option<u64>,
    quota: Option<i64>,
    period: Option<u64>,
    realtime_runtime: Option<i64>,
    realtime_period: Option<u64>,
    cpus: Option<String>,
    mems: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct DocBlockIo {
    weight: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
struct DocPids {
    limit: Option<i64>,
}

fn nz_i(v: Option<i64>) -> Option<i64> {
    v.filter(|&v| v != 0)
}

fn nz_u(v: Option<u64>) -> Option<u64> {
    v.filter(|&v| v != 0)
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

impl Doc {
    /// The resources to apply: zeros and empty strings are "unchanged".
    fn into_resources(self) -> Resources {
        let mut r = Resources::default();
        if let Some(m) = self.memory {
            if m.kernel.unwrap_or(0) != 0 || m.kernel_tcp.unwrap_or(0) != 0 {
                log::warn!("Kernel memory settings are ignored and will be removed");
            }
            let m = Memory {
                limit: nz_i(m.limit),
                reservation: nz_i(m.reservation),
                swap: nz_i(m.swap),
                ..Memory::default()
            };
            if m != Memory::default() {
                r.memory = Some(m);
            }
        }
        if let Some(c) = self.cpu {
            let c = Cpu {
                shares: nz_u(c.shares),
                quota: nz_i(c.quota),
                period: nz_u(c.period),
                realtime_runtime: nz_i(c.realtime_runtime),
                realtime_period: nz_u(c.realtime_period),
                cpus: non_empty(c.cpus),
                mems: non_empty(c.mems),
                ..Cpu::default()
            };
            if c != Cpu::default() {
                r.cpu = Some(c);
            }
        }
        if let Some(w) = self.block_io.and_then(|b| b.weight).filter(|&w| w != 0) {
            r.block_io = Some(BlockIo {
                weight: Some(w),
                ..BlockIo::default()
            });
        }
        if let Some(limit) = nz_i(self.pids.and_then(|p| p.limit)) {
            r.pids = Some(Pids { limit });
        }
        r.unified = self.unified.unwrap_or_default();
        r
    }
}

/// docker/go-units `RAMInBytes`: a number (fraction allowed), an optional unit among
/// k, m, g, t, p (powers of 1024, case-insensitive) with an optional `i` and `b`.
pub fn ram_in_bytes(text: &str) -> Result<i64> {
    let bad = || anyhow!("invalid size: {text:?}");
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim_start_matches(' ').to_ascii_lowercase();
    let (letter, rest) = match unit.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => (Some(c), &unit[1..]),
        _ => (None, unit.as_str()),
    };
    let rest = rest.strip_prefix('i').unwrap_or(rest);
    if !(rest.is_empty() || rest == "b") {
        return Err(bad());
    }
    let mult: f64 = match letter {
        None => 1.0,
        Some('k') => 1024.0,
        Some('m') => 1024f64.powi(2),
        Some('g') => 1024f64.powi(3),
        Some('t') => 1024f64.powi(4),
        _ => 1024f64.powi(5),
    };
    let bytes = value * mult;
    if bytes >= i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

fn flag_u64(name: &str, v: &Option<String>) -> Result<Option<u64>> {
    match v.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<u64>()
            .map(|v| (v != 0).then_some(v))
            .map_err(|e| anyhow!("invalid value for --{name}: {s:?}: {e}")),
    }
}

fn flag_i64(name: &str, v: &Option<String>) -> Result<Option<i64>> {
    match v.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .map(|v| (v != 0).then_some(v))
            .map_err(|e| anyhow!("invalid value for --{name}: {s:?}: {e}")),
    }
}

fn flag_mem(name: &str, v: &Option<String>) -> Result<Option<i64>> {
    match v.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some("-1") => Ok(Some(-1)),
        Some(s) => ram_in_bytes(s)
            .map(|v| (v != 0).then_some(v))
            .with_context(|| format!("invalid value for --{name}")),
    }
}

fn read_doc(source: &str) -> Result<Doc> {
    let (bytes, name) = if source == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("--resources -: read stdin")?;
        (b, "stdin".to_string())
    } else {
        let p = Path::new(source);
        let b = std::fs::read(p).with_context(|| format!("--resources: read {}", p.display()))?;
        (b, p.display().to_string())
    };
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        anyhow!("--resources {name}: field {path}: {}", e.into_inner())
    })
}

/// The resources `berth update` applies for these flags.
pub fn resources(a: &UpdateArgs) -> Result<Resources> {
    if let Some(source) = &a.resources {
        return Ok(read_doc(source)?.into_resources());
    }
    if a.l3_cache_schema.is_some() {
        bail!("--l3-cache-schema: Intel RDT/CAT is not supported by berth");
    }
    if a.mem_bw_schema.is_some() {
        bail!("--mem-bw-schema: Intel RDT/MBA is not supported by berth");
    }
    if flag_mem("kernel-memory", &a.kernel_memory)?.is_some()
        || flag_mem("kernel-memory-tcp", &a.kernel_memory_tcp)?.is_some()
    {
        log::warn!("Kernel memory settings are ignored and will be removed");
    }
    let weight = match flag_u64("blkio-weight", &a.blkio_weight)? {
        None => None,
        Some(w) => Some(u16::try_from(w).map_err(|_| {
            anyhow!("invalid value for --blkio-weight: {w} is out of range 10-1000")
        })?),
    };
    let doc = Doc {
        memory: Some(DocMemory {
            limit: flag_mem("memory", &a.memory)?,
            reservation: flag_mem("memory-reservation", &a.memory_reservation)?,
            swap: flag_mem("memory-swap", &a.memory_swap)?,
            kernel: None,
            kernel_tcp: None,
        }),
        cpu: Some(DocCpu {
            shares: flag_u64("cpu-share", &a.cpu_share)?,
            quota: flag_i64("cpu-quota", &a.cpu_quota)?,
            period: flag_u64("cpu-period", &a.cpu_period)?,
            realtime_runtime: flag_i64("cpu-rt-runtime", &a.cpu_rt_runtime)?,
            realtime_period: flag_u64("cpu-rt-period", &a.cpu_rt_period)?,
            cpus: a.cpuset_cpus.clone(),
            mems: a.cpuset_mems.clone(),
        }),
        block_io: Some(DocBlockIo { weight }),
        pids: Some(DocPids {
            limit: flag_i64("pids-limit", &a.pids_limit)?,
        }),
        unified: None,
    };
    Ok(doc.into_resources())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_like_docker() {
        assert_eq!(ram_in_bytes("1024").unwrap(), 1024);
        assert_eq!(ram_in_bytes("1k").unwrap(), 1024);
        assert_eq!(ram_in_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(ram_in_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(ram_in_bytes("2MiB").unwrap(), 2 << 20);
        assert_eq!(ram_in_bytes("3 mb").unwrap(), 3 << 20);
        for bad in ["", "m", "1x", "-5", "1.", "1mbb"] {
            assert!(ram_in_bytes(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn zero_means_unchanged() {
        let doc: Doc = serde_json::from_str(
            r#"{"memory":{"limit":0,"swap":0},"cpu":{"quota":20000,"cpus":""},"pids":{"limit":0},"blockIO":{"weight":0}}"#,
        )
        .unwrap();
        let r = doc.into_resources();
        assert!(r.memory.is_none() && r.pids.is_none() && r.block_io.is_none());
        let c = r.cpu.expect("cpu");
        assert_eq!((c.quota, c.cpus), (Some(20000), None));
    }
}
