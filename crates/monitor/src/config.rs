//! The monitor's settings: command-line flags of `berth-monitor`, then the container's
//! annotations (`io.github.berth.monitor.*`), then defaults. Every bad value is an error naming
//! the flag or annotation.
//!
//! | flag | annotation | default |
//! |---|---|---|
//! | `--ring-size BYTES` | `io.github.berth.monitor.ring-size` | 1 MiB |
//! | `--queue-limit BYTES` | `io.github.berth.monitor.queue-limit` | 256 KiB (per client, at most the ring size) |
//! | `--log-max-size BYTES` | `io.github.berth.monitor.log-max-size` | 10 MiB (0: never rotate) |
//! | `--log-max-files N` | `io.github.berth.monitor.log-max-files` | 3 |
//! | `--no-cri-log` | `io.github.berth.monitor.cri-log` = `false` | CRI log on |
//! | `--record` | `io.github.berth.monitor.record` = `true` | no asciicast |
//! | `--size-policy latest\|smallest\|largest` | `io.github.berth.monitor.size-policy` | latest |
//!
//! Byte values accept a `K`, `M` or `G` suffix (powers of 1024, optionally followed by `iB`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_tty::Winsize;

use crate::error::MonitorError;

/// The annotation prefix.
pub const ANNOTATION_PREFIX: &str = "io.github.berth.monitor.";
/// The extra-tty count annotation (read by the container's init too).
pub const TTY_MAX: &str = "io.github.berth.tty.max";

/// How the terminal size follows several clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizePolicy {
    /// The most recent client to attach or resize.
    Latest,
    /// The smallest rows and the smallest columns of all sizing clients.
    Smallest,
    /// The largest of each.
    Largest,
}

impl SizePolicy {
    fn parse(field: &str, v: &str) -> Result<SizePolicy, MonitorError> {
        match v {
            "latest" => Ok(SizePolicy::Latest),
            "smallest" => Ok(SizePolicy::Smallest),
            "largest" => Ok(SizePolicy::Largest),
            _ => Err(MonitorError::Usage(format!(
                "{field}: {v:?} is not one of latest, smallest, largest"
            ))),
        }
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        match self {
            SizePolicy::Latest => "latest",
            SizePolicy::Smallest => "smallest",
            SizePolicy::Largest => "largest",
        }
    }
}

/// Everything the monitor is told.
#[derive(Debug, Clone)]
pub struct Config {
    /// The runtime's `--root` (the monitor's directory is `<root>/@monitor/<id>`).
    pub root: PathBuf,
    /// The container id.
    pub id: String,
    /// The bundle.
    pub bundle: PathBuf,
    /// The runtime binary (berth, runc, crun …).
    pub runtime: PathBuf,
    /// Run `start` after `create`.
    pub start: bool,
    /// `--pid-file` for `create`.
    pub pid_file: Option<PathBuf>,
    /// Extra `create` flags (`--no-pivot`, `--no-new-keyring`).
    pub create_args: Vec<String>,
    /// The size to give the console when nothing else does (`consoleSize`, a client).
    pub size: Option<Winsize>,
    /// Stay in the foreground (no fork; readiness is printed on stdout).
    pub foreground: bool,
    /// Debug logging to the monitor's log.
    pub debug: bool,
    /// Set from flags; annotations fill what is left `None`.
    pub ring_size: Option<usize>,
    /// Per-client lag limit.
    pub queue_limit: Option<usize>,
    /// Raw and CRI log rotation size.
    pub log_max_size: Option<u64>,
    /// Rotated files kept.
    pub log_max_files: Option<u32>,
    /// The CRI log.
    pub cri_log: Option<bool>,
    /// The asciicast recording.
    pub record: Option<bool>,
    /// The size policy.
    pub size_policy: Option<SizePolicy>,
}

/// The settings after annotations and defaults.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Ring capacity.
    pub ring_size: usize,
    /// Default per-client lag limit.
    pub queue_limit: usize,
    /// Rotation size.
    pub log_max_size: u64,
    /// Rotated files kept.
    pub log_max_files: u32,
    /// CRI log on.
    pub cri_log: bool,
    /// asciicast on.
    pub record: bool,
    /// Size policy.
    pub size_policy: SizePolicy,
}

/// Parses `123`, `64K`, `10M`, `1GiB`.
pub fn parse_bytes(field: &str, v: &str) -> Result<u64, MonitorError> {
    let t = v.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| MonitorError::Usage(format!("{field}: {v:?} is not a byte count")))
}

fn parse_bool(field: &str, v: &str) -> Result<bool, MonitorError> {
    match v {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(MonitorError::Usage(format!(
            "{field}: {v:?} is not true or false"
        ))),
    }
}

/// Parses `ROWSxCOLS` (each 1 to [`crate::term::MAX_DIMENSION`]).
pub fn parse_size(field: &str, v: &str) -> Result<Winsize, MonitorError> {
    let bad = || {
        MonitorError::Usage(format!(
            "{field}: {v:?} is not ROWSxCOLS with each from 1 to {}",
            crate::term::MAX_DIMENSION
        ))
    };
    let (r, c) = v.split_once('x').ok_or_else(bad)?;
    let rows: u16 = r.parse().map_err(|_| bad())?;
    let cols: u16 = c.parse().map_err(|_| bad())?;
    let ok = |d: u16| (1..=crate::term::MAX_DIMENSION).contains(&d);
    if !ok(rows) || !ok(cols) {
        return Err(bad());
    }
    Ok(Winsize::new(rows, cols))
}

impl Config {
    /// Parses `berth-monitor`'s arguments (without the program name).
    pub fn from_args(args: &[String]) -> Result<Config, MonitorError> {
        let mut c = Config {
            root: PathBuf::new(),
            id: String::new(),
            bundle: PathBuf::new(),
            runtime: PathBuf::from("berth"),
            start: false,
            pid_file: None,
            create_args: Vec::new(),
            size: None,
            foreground: false,
            debug: false,
            ring_size: None,
            queue_limit: None,
            log_max_size: None,
            log_max_files: None,
            cri_log: None,
            record: None,
            size_policy: None,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (a.as_str(), None),
            };
            let mut value = || -> Result<String, MonitorError> {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| MonitorError::Usage(format!("{flag}: a value is required")))
            };
            match flag {
                "--root" => c.root = PathBuf::from(value()?),
                "--id" => c.id = value()?,
                "--bundle" => c.bundle = PathBuf::from(value()?),
                "--runtime" => c.runtime = PathBuf::from(value()?),
                "--start" => c.start = true,
                "--pid-file" => c.pid_file = Some(PathBuf::from(value()?)),
                "--create-arg" => {
                    let v = value()?;
                    if v != "--no-pivot" && v != "--no-new-keyring" {
                        return Err(MonitorError::Usage(format!(
                            "--create-arg: {v:?} is not --no-pivot or --no-new-keyring"
                        )));
                    }
                    c.create_args.push(v);
                }
                "--size" => c.size = Some(parse_size("--size", &value()?)?),
                "--foreground" => c.foreground = true,
                "--debug" => c.debug = true,
                "--ring-size" => c.ring_size = Some(parse_bytes(flag, &value()?)? as usize),
                "--queue-limit" => c.queue_limit = Some(parse_bytes(flag, &value()?)? as usize),
                "--log-max-size" => c.log_max_size = Some(parse_bytes(flag, &value()?)?),
                "--log-max-files" => {
                    let v = value()?;
                    c.log_max_files = Some(v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        MonitorError::Usage(format!("{flag}: {v:?} is not a number ≥ 1"))
                    })?)
                }
                "--no-cri-log" => c.cri_log = Some(false),
                "--record" => c.record = Some(true),
                "--size-policy" => c.size_policy = Some(SizePolicy::parse(flag, &value()?)?),
                "-h" | "--help" => return Err(MonitorError::Usage(USAGE.into())),
                other => {
                    return Err(MonitorError::Usage(format!(
                        "unknown argument {other:?}\n{USAGE}"
                    )));
                }
            }
        }
        for (name, missing) in [
            ("--root", c.root.as_os_str().is_empty()),
            ("--id", c.id.is_empty()),
            ("--bundle", c.bundle.as_os_str().is_empty()),
        ] {
            if missing {
                return Err(MonitorError::Usage(format!("{name} is required\n{USAGE}")));
            }
        }
        Ok(c)
    }

    /// Fills what the flags left open from the container's annotations, then defaults.
    pub fn settings(
        &self,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Settings, MonitorError> {
        let ann = |key: &str| {
            let full = format!("{ANNOTATION_PREFIX}{key}");
            annotations
                .get(&full)
                .map(|v| (format!("annotations[{full:?}]"), v.clone()))
        };
        let bytes = |key: &str, flag: Option<u64>, default: u64| -> Result<u64, MonitorError> {
            match (flag, ann(key)) {
                (Some(v), _) => Ok(v),
                (None, Some((f, v))) => parse_bytes(&f, &v),
                (None, None) => Ok(default),
            }
        };
        let boolean = |key: &str, flag: Option<bool>, default: bool| match (flag, ann(key)) {
            (Some(v), _) => Ok(v),
            (None, Some((f, v))) => parse_bool(&f, &v),
            (None, None) => Ok(default),
        };
        let ring_size = bytes("ring-size", self.ring_size.map(|v| v as u64), 1 << 20)?;
        if !(4096..=(1 << 30)).contains(&ring_size) {
            return Err(MonitorError::Usage(format!(
                "ring size {ring_size}: must be from 4 KiB to 1 GiB"
            )));
        }
        let queue_limit = bytes("queue-limit", self.queue_limit.map(|v| v as u64), 256 << 10)?;
        if queue_limit == 0 {
            return Err(MonitorError::Usage("queue limit: must not be 0".into()));
        }
        let log_max_size = bytes("log-max-size", self.log_max_size, 10 << 20)?;
        let log_max_files =
            match (self.log_max_files, ann("log-max-files")) {
                (Some(v), _) => v,
                (None, Some((f, v))) => v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    MonitorError::Usage(format!("{f}: {v:?} is not a number ≥ 1"))
                })?,
                (None, None) => 3,
            };
        let size_policy = match (self.size_policy, ann("size-policy")) {
            (Some(p), _) => p,
            (None, Some((f, v))) => SizePolicy::parse(&f, &v)?,
            (None, None) => SizePolicy::Latest,
        };
        Ok(Settings {
            ring_size: ring_size as usize,
            queue_limit: (queue_limit as usize).min(ring_size as usize),
            log_max_size,
            log_max_files,
            cri_log: boolean("cri-log", self.cri_log, true)?,
            record: boolean("record", self.record, false)?,
            size_policy,
        })
    }
}

/// `berth-monitor --help`.
pub const USAGE: &str = "usage: berth-monitor --root DIR --id ID --bundle DIR [--runtime PATH] [--start] \
[--pid-file PATH] [--create-arg --no-pivot|--no-new-keyring] [--size ROWSxCOLS] [--foreground] [--debug] [--ring-size BYTES] \
[--queue-limit BYTES] [--log-max-size BYTES] [--log-max-files N] [--no-cri-log] [--record] \
[--size-policy latest|smallest|largest]";

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn flags_then_annotations_then_defaults() {
        let c = Config::from_args(&args(
            "--root /r --id x --bundle /b --ring-size 64K --size 30x100 --size-policy=smallest",
        ))
        .unwrap();
        assert_eq!(c.size, Some(Winsize::new(30, 100)));
        let mut ann = BTreeMap::new();
        ann.insert("io.github.berth.monitor.ring-size".into(), "2M".into());
        ann.insert("io.github.berth.monitor.log-max-size".into(), "1MiB".into());
        ann.insert("io.github.berth.monitor.record".into(), "true".into());
        let s = c.settings(&ann).unwrap();
        assert_eq!(s.ring_size, 64 << 10);
        assert_eq!(s.queue_limit, 64 << 10);
        assert_eq!(s.log_max_size, 1 << 20);
        assert_eq!(s.log_max_files, 3);
        assert!(s.record);
        assert!(s.cri_log);
        assert_eq!(s.size_policy, SizePolicy::Smallest);
    }

    #[test]
    fn bad_values_name_their_source() {
        let e = Config::from_args(&args("--root /r --id x --bundle /b --size 0x80")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--size: \"0x80\" is not ROWSxCOLS with each from 1 to 1000"
        );
        let e = Config::from_args(&args("--root /r --bundle /b")).unwrap_err();
        assert!(e.to_string().starts_with("--id is required"), "{e}");
        let c = Config::from_args(&args("--root /r --id x --bundle /b")).unwrap();
        let mut ann = BTreeMap::new();
        ann.insert(
            "io.github.berth.monitor.size-policy".into(),
            "biggest".into(),
        );
        assert_eq!(
            c.settings(&ann).unwrap_err().to_string(),
            "annotations[\"io.github.berth.monitor.size-policy\"]: \"biggest\" is not one of latest, smallest, largest"
        );
        let mut ann = BTreeMap::new();
        ann.insert("io.github.berth.monitor.log-max-size".into(), "lots".into());
        assert_eq!(
            c.settings(&ann).unwrap_err().to_string(),
            "annotations[\"io.github.berth.monitor.log-max-size\"]: \"lots\" is not a byte count"
        );
    }
}
