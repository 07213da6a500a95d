//! `berth events`: runc's event stream for one container, one JSON object per line.
//!
//! - `--stats`: one `{"type":"stats","id":ID,"data":{…}}` line (the cgroup's statistics in
//!   runc's `types.Stats` shape) and exit;
//! - otherwise a `stats` line every `--interval` (Go duration syntax, default `5s`), and an
//!   `{"type":"oom","id":ID}` line each time the kernel's OOM killer kills in the container's
//!   cgroup (the cgroup's `oom_kill` counter is watched every 100 ms), until the container
//!   stops or is deleted; then berth exits 0. (runc 1.1 keeps going after the container stopped,
//!   until its cgroup is removed.)
//!
//! A container that is already stopped is an error, as with runc.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use berth_core::Runtime;
use berth_spec::Status;
use clap::Args;
use serde::Serialize;

/// How often a stream looks for OOM kills and for the container's end.
const WATCH: Duration = Duration::from_millis(100);

/// `events` flags.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// How often to print statistics (Go duration: 500ms, 5s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub interval: String,
    /// Print the statistics once and exit.
    #[arg(long)]
    pub stats: bool,
    /// The container id.
    pub id: String,
}

/// A Go `time.Duration` string: a sequence of decimal numbers with units ns, us (µs), ms, s, m,
/// h, such as `1h30m` or `1.5s`; a lone `0` is zero.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = || anyhow!("invalid duration {text:?}");
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(bad());
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if n == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * nanos;
        rest = &rest[u..];
    }
    Ok(Duration::from_nanos(total as u64))
}

/// runc's `types.Event`, fields in runc's order.
#[derive(Serialize)]
struct Event<'a, T: Serialize> {
    #[serde(rename = "type")]
    typ: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a T>,
}

fn emit<T: Serialize>(out: &mut impl Write, typ: &str, id: &str, data: Option<&T>) -> Result<()> {
    let line = serde_json::to_string(&Event { typ, id, data })?;
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Runs `berth events`.
pub fn run(rt: &Runtime, a: &EventsArgs) -> Result<i32> {
    let interval = parse_duration(&a.interval).map_err(|e| anyhow!("--interval: {e}"))?;
    if interval.is_zero() {
        bail!("--interval: duration interval must be greater than 0");
    }
    let id = a.id.as_str();
    let first = rt.sample(id, true, a.stats)?;
    let mut out = std::io::stdout().lock();
    if a.stats {
        emit(
            &mut out,
            "stats",
            id,
            Some(&first.stats.unwrap_or_default()),
        )?;
        return Ok(0);
    }
    let mut ooms = first.oom_kills.unwrap_or(0);
    let mut next = Instant::now() + interval;
    loop {
        let now = Instant::now();
        let stats_due = now >= next;
        if !stats_due {
            std::thread::sleep(WATCH.min(next - now));
        }
        let s = rt.sample(id, false, stats_due)?;
        if s.status == Status::Stopped {
            return Ok(0);
        }
        if let Some(n) = s.oom_kills {
            for _ in ooms..n {
                emit::<()>(&mut out, "oom", id, None)?;
            }
            ooms = ooms.max(n);
        }
        if stats_due {
            if let Some(stats) = &s.stats {
                emit(&mut out, "stats", id, Some(stats))?;
            }
            next += interval;
            if next < Instant::now() {
                next = Instant::now() + interval;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "5", "s", "-1s", "5x", "1..5s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
