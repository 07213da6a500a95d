//! runc-compatible log lines (logrus): containerd's shim and podman read the last `error` line of
//! `--log` (`--log-format json`) and show its `msg` to the user.
//!
//! - json: `{"level":"error","msg":"…","time":"2026-11-23T13:10:17.123456Z"}` (RFC 3339, UTC)
//! - text: `time="…" level=error msg="…"`, or logrus's terminal form `ERRO[0000] …` when the
//!   lines go to a terminal.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::args::LogFormat;

/// The logger installed by `main`.
pub struct Logger {
    format: LogFormat,
    sink: Mutex<Sink>,
    to_terminal: bool,
    level: LevelFilter,
    started: Instant,
}

enum Sink {
    /// berth's stderr, through a private close-on-exec duplicate: a container's init or exec'd
    /// process (a copy of berth until it execs) logs there even after it has put its own stdio
    /// on fd 2, so berth's debug lines never end up in the container's terminal or pipes.
    Stderr(Option<File>),
    File(File),
    /// Nowhere: a container's init that outlives `create` lets go of the caller's stderr.
    Closed,
}

static INSTALLED: std::sync::OnceLock<&'static Logger> = std::sync::OnceLock::new();

/// Closes the logger's copy of the caller's stderr (a `--log` file stays open); later lines of
/// this process are dropped. Called in a container's init that outlives `berth create`.
pub fn release_callers_stderr() {
    if let Some(logger) = INSTALLED.get() {
        let mut sink = logger.sink.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*sink, Sink::Stderr(_)) {
            *sink = Sink::Closed;
        }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

/// One line in the chosen format (without the newline).
pub fn format_line(
    format: LogFormat,
    level: Level,
    msg: &str,
    time: &str,
    terminal: Option<u64>,
) -> String {
    match (format, terminal) {
        (LogFormat::Json, _) => serde_json::json!({
            "level": level_name(level),
            "msg": msg,
            "time": time,
        })
        .to_string(),
        (LogFormat::Text, Some(secs)) => {
            let tag = match level {
                Level::Error => "ERRO",
                Level::Warn => "WARN",
                Level::Info => "INFO",
                Level::Debug => "DEBU",
                Level::Trace => "TRAC",
            };
            format!("{tag}[{secs:04}] {msg}")
        }
        (LogFormat::Text, None) => {
            let quoted = serde_json::to_string(msg).unwrap_or_else(|_| format!("{msg:?}"));
            format!("time=\"{time}\" level={} msg={quoted}", level_name(level))
        }
    }
}

impl Logger {
    /// Installs the global logger.
    pub fn install(
        format: LogFormat,
        path: Option<&Path>,
        debug: bool,
    ) -> anyhow::Result<&'static Logger> {
        let sink = match path {
            Some(p) => Sink::File(
                File::options()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| anyhow::anyhow!("open log file {}: {e}", p.display()))?,
            ),
            None => Sink::Stderr(
                rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stderr(), 3)
                    .ok()
                    .map(File::from),
            ),
        };
        let to_terminal =
            matches!(sink, Sink::Stderr(_)) && rustix::termios::isatty(rustix::stdio::stderr());
        let level = if debug {
            LevelFilter::Debug
        } else {
            LevelFilter::Info
        };
        let logger: &'static Logger = Box::leak(Box::new(Logger {
            format,
            sink: Mutex::new(sink),
            to_terminal,
            level,
            started: Instant::now(),
        }));
        log::set_logger(logger).map_err(|e| anyhow::anyhow!("install logger: {e}"))?;
        let _ = INSTALLED.set(logger);
        log::set_max_level(level);
        Ok(logger)
    }

    /// True when log lines go to stderr already.
    pub fn to_stderr(&self) -> bool {
        matches!(
            *self.sink.lock().unwrap_or_else(|e| e.into_inner()),
            Sink::Stderr(_)
        )
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let time = berth_spec::time::rfc3339_micros_now();
        let terminal = (self.to_terminal && self.format == LogFormat::Text)
            .then(|| self.started.elapsed().as_secs());
        let mut line = format_line(
            self.format,
            record.level(),
            &record.args().to_string(),
            &time,
            terminal,
        );
        // One write a line: berth's init and its parent append to the same file at once, and
        // `writeln!` would write the newline separately, splicing their lines together (and
        // containerd parses the last line as JSON).
        line.push('\n');
        let bytes = line.as_bytes();
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let _ = match &mut *sink {
            Sink::Stderr(Some(f)) => f.write_all(bytes),
            Sink::Stderr(None) => std::io::stderr().write_all(bytes),
            Sink::File(f) => f.write_all(bytes),
            Sink::Closed => Ok(()),
        };
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_logrus() {
        let line = format_line(
            LogFormat::Json,
            Level::Error,
            "container does not exist: x",
            "2026-11-23T13:10:17.123456Z",
            None,
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container does not exist: x");
        assert_eq!(v["time"], "2026-11-23T13:10:17.123456Z");
        assert_eq!(v.as_object().unwrap().len(), 3);
    }

    #[test]
    fn text_quotes_the_message() {
        let line = format_line(LogFormat::Text, Level::Warn, "a \"b\"", "T", None);
        assert_eq!(line, r#"time="T" level=warning msg="a \"b\"""#);
        assert_eq!(
            format_line(LogFormat::Text, Level::Error, "x", "T", Some(0)),
            "ERRO[0000] x"
        );
    }
}
