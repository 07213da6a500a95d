//! `berth-monitor`: the console monitor of one container (see [`berth_monitor::monitor`]).
//!
//! The process prepares everything that can fail on the user's input in the foreground (the
//! directory, the sockets, the bundle), then forks: the parent waits on a pipe for the
//! background monitor's verdict and exits 0 (`ok`) or 1 with the error on stderr; the monitor
//! itself starts a new session (it never has a controlling terminal), moves to `/`, points its
//! stdin/stdout at `/dev/null` and its stderr at `monitor.log` in its directory. `--foreground`
//! skips the fork and prints the verdict line on stdout.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::process::ExitCode;

use berth_monitor::{Config, Monitor};
use berth_sys::process::Forked;
use rustix::fs::{Mode, OFlags};

/// Log lines `TIME LEVEL message` on stderr (the monitor's log file once in the background).
struct Logger {
    level: log::LevelFilter,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let (s, ns) = berth_monitor::clock::realtime();
            let mut ts = Vec::new();
            berth_monitor::clock::write_rfc3339_nanos(&mut ts, s, ns);
            let _ = writeln!(
                std::io::stderr().lock(),
                "{} {} {}",
                String::from_utf8_lossy(&ts),
                r.level().as_str().to_lowercase(),
                r.args()
            );
        }
    }

    fn flush(&self) {}
}

fn detach_stdio(log_path: &std::path::Path) -> std::io::Result<()> {
    let null = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
    let log = rustix::fs::open(
        log_path,
        OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    berth_sys::fd::dup_onto(null.as_fd(), 0)?;
    berth_sys::fd::dup_onto(null.as_fd(), 1)?;
    berth_sys::fd::dup_onto(log.as_fd(), 2)?;
    Ok(())
}

fn wait_verdict(read: OwnedFd, dir: &std::path::Path) -> ExitCode {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(&read, &mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&text);
    let line = text.lines().next().unwrap_or_default();
    if line == "ok" {
        return ExitCode::SUCCESS;
    }
    match line.strip_prefix("error: ") {
        Some(msg) => eprintln!("{msg}"),
        None => eprintln!(
            "the console monitor exited during startup (see {})",
            dir.join("monitor.log").display()
        ),
    }
    ExitCode::from(1)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let level = if cfg.debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    let _ = log::set_boxed_logger(Box::new(Logger { level }));
    log::set_max_level(level);
    let foreground = cfg.foreground;
    let monitor = match Monitor::prepare(cfg) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let dir = monitor.dir_path().to_path_buf();
    if foreground {
        return ExitCode::from(monitor.run(None).clamp(0, 255) as u8);
    }
    let (read, write) = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pipe: {e}");
            return ExitCode::from(1);
        }
    };
    match berth_sys::process::fork() {
        Err(e) => {
            eprintln!("fork the console monitor: {e}");
            ExitCode::from(1)
        }
        Ok(Forked::Parent { .. }) => {
            drop(write);
            drop(monitor);
            wait_verdict(read, &dir)
        }
        Ok(Forked::Child) => {
            drop(read);
            let _ = rustix::process::setsid();
            let _ = std::env::set_current_dir("/");
            if let Err(e) = detach_stdio(&dir.join("monitor.log")) {
                let _ = rustix::io::write(&write, format!("error: stdio: {e}\n").as_bytes());
                return ExitCode::from(1);
            }
            let code = monitor.run(Some(write));
            ExitCode::from(code.clamp(0, 255) as u8)
        }
    }
}
