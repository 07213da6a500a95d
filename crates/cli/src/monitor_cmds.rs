//! The console-monitor side of the CLI: starting a monitor for `run -t`/`create -t`, exec
//! sessions (`exec -d -t` without `--console-socket`), and the `attach`, `console`, `logs`,
//! `sessions` and `screenshot` commands.
//!
//! # Extensions to runc's command line (documented, runc refuses these)
//! - `create -t` / `run -d -t` without `--console-socket`: berth starts `berth-monitor`, which
//!   creates the container with its own console socket, holds the terminal, logs it, and serves
//!   `berth attach`. When the bundle's `process.terminal` is false the monitor turns it on
//!   through an overlay bundle in its directory (see `berth_monitor::runtime`). `run -t`
//!   without `-d` does the same and attaches in the foreground: detaching leaves the container
//!   running; its exit ends the command with its status and deletes it (unless `--keep`).
//! - `exec -d -t` without `--console-socket` on a container that has a monitor: the monitor
//!   runs the exec with its own console socket; the session's name is printed and it can be
//!   re-attached with `berth attach --exec NAME` while and after it runs.
//!
//! `berth-monitor` is looked up in `$BERTH_MONITOR`, then next to the `berth` binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use berth_proto::{Flow, Frame, Start};
use clap::{Args, Subcommand, ValueEnum};

use crate::args::{CreateArgs, ExecArgs};
use crate::attach::{self, AttachArgs, Options, Outcome, TargetArg};
use crate::console::ConsoleArgs;

/// The monitor's subcommands (flattened into berth's command list).
#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// Attach to a terminal held by the container's console monitor (Docker style; detach
    /// with ctrl-p,ctrl-q).
    Attach(AttachArgs),
    /// Attach to the console or an extra tty, LXC style (detach with Ctrl-a q).
    Console(ConsoleArgs),
    /// Print a terminal's output (raw bytes, from the monitor's ring and logs).
    Logs(LogsArgs),
    /// List a container's terminals (console, ttys, exec sessions) and their clients.
    Sessions(SessionsArgs),
    /// Print a terminal's current screen as text.
    Screenshot(ScreenshotArgs),
}

/// `berth logs` flags.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new output until the process ends (or Ctrl-C).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Start at this byte offset.
    #[arg(long, value_name = "OFFSET", conflicts_with = "tail")]
    pub since: Option<u64>,
    /// Start at the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
    /// An exec session instead of the console.
    #[arg(long = "exec", value_name = "SESSION")]
    pub exec: Option<String>,
    /// Extra tty N instead of the console.
    #[arg(short = 't', long = "tty", value_name = "N")]
    pub tty: Option<u16>,
    /// The container id.
    pub id: String,
}

/// `--format` of `sessions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SessionsFormat {
    /// Columns.
    Table,
    /// The monitor's JSON.
    Json,
}

/// `berth sessions` flags.
#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// table or json.
    #[arg(short = 'f', long, value_enum, default_value_t = SessionsFormat::Table)]
    pub format: SessionsFormat,
    /// The container id.
    pub id: String,
}

/// `berth screenshot` flags.
#[derive(Debug, Args)]
pub struct ScreenshotArgs {
    /// An exec session instead of the console.
    #[arg(long = "exec", value_name = "SESSION")]
    pub exec: Option<String>,
    /// Extra tty N instead of the console.
    #[arg(short = 't', long = "tty", value_name = "N")]
    pub tty: Option<u16>,
    /// Keep colours and attributes (as escape sequences).
    #[arg(long)]
    pub formatted: bool,
    /// The container id.
    pub id: String,
}

/// Runs one of the monitor's subcommands.
pub(crate) fn run(root: &Path, cmd: &MonitorCommand) -> anyhow::Result<i32> {
    match cmd {
        MonitorCommand::Attach(a) => attach::run(root, a),
        MonitorCommand::Console(a) => crate::console::run(root, a),
        MonitorCommand::Logs(a) => logs(root, a),
        MonitorCommand::Sessions(a) => sessions(root, a),
        MonitorCommand::Screenshot(a) => screenshot(root, a),
    }
}

/// Handles `create -t`, `run -t` and monitor-held `exec -d -t`; `None` for everything else.
pub(crate) fn intercept(
    root: &Path,
    command: &crate::args::Command,
    debug: bool,
) -> anyhow::Result<Option<i32>> {
    use crate::args::Command as C;
    Ok(match command {
        C::Create(a) if a.tty => {
            start_monitor(root, a, false, debug)?;
            Some(0)
        }
        C::Run {
            create,
            detach,
            keep,
        } if create.tty => {
            start_monitor(root, create, true, debug)?;
            if *detach {
                Some(0)
            } else {
                Some(run_foreground(root, &create.id, *keep)?)
            }
        }
        C::Exec(a)
            if a.tty
                && a.detach
                && a.console_socket.is_none()
                && attach::monitor_dir(root, &a.id).is_dir() =>
        {
            Some(exec_via_monitor(root, a)?)
        }
        _ => None,
    })
}

fn find_monitor() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_MONITOR") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("find the berth binary")?;
    let p = exe.with_file_name("berth-monitor");
    if p.is_file() {
        return Ok(p);
    }
    bail!(
        "berth-monitor not found at {} (install it next to berth, or set BERTH_MONITOR)",
        p.display()
    )
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolve {}", p.display()))
}

fn host_size() -> Option<(u16, u16)> {
    [
        rustix::stdio::stdin(),
        rustix::stdio::stdout(),
        rustix::stdio::stderr(),
    ]
    .into_iter()
    .filter(|fd| rustix::termios::isatty(fd))
    .find_map(|fd| berth_tty::Winsize::get(fd).ok())
    .filter(|w| w.rows > 0 && w.cols > 0)
    .map(|w| (w.rows.min(1000), w.cols.min(1000)))
}

/// Starts `berth-monitor` for `create -t` / `run -t` and waits until the container is created
/// (and started).
fn start_monitor(root: &Path, a: &CreateArgs, start: bool, debug: bool) -> anyhow::Result<()> {
    if a.console_socket.is_some() {
        bail!(
            "--tty and --console-socket cannot be used together (with --tty berth's console monitor holds the terminal)"
        );
    }
    if a.preserve_fds > 0 {
        bail!(
            "--preserve-fds cannot be used with --tty (the console monitor creates the container)"
        );
    }
    let monitor = find_monitor()?;
    let berth = std::env::current_exe().context("find the berth binary")?;
    let bundle = absolute(a.bundle.as_deref().unwrap_or(Path::new(".")))?;
    let mut args: Vec<String> = vec![
        "--root".into(),
        absolute(root)?.display().to_string(),
        "--id".into(),
        a.id.clone(),
        "--bundle".into(),
        bundle.display().to_string(),
        "--runtime".into(),
        berth.display().to_string(),
    ];
    if start {
        args.push("--start".into());
    }
    if let Some(p) = &a.pid_file {
        args.push("--pid-file".into());
        args.push(absolute(p)?.display().to_string());
    }
    if let Some((r, c)) = host_size() {
        args.push("--size".into());
        args.push(format!("{r}x{c}"));
    }
    if a.no_pivot {
        args.extend(["--create-arg".into(), "--no-pivot".into()]);
    }
    if a.no_new_keyring {
        args.extend(["--create-arg".into(), "--no-new-keyring".into()]);
    }
    if debug {
        args.push("--debug".into());
    }
    log::debug!("starting {} {}", monitor.display(), args.join(" "));
    let out = Command::new(&monitor)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("run {}", monitor.display()))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let msg = text.trim();
        bail!(
            "{}",
            if msg.is_empty() {
                format!("the console monitor failed ({})", out.status)
            } else {
                msg.to_string()
            }
        );
    }
    Ok(())
}

/// `run -t` in the foreground: attach; the container's exit ends it (and deletes the container
/// unless `--keep`); detaching leaves the container running.
fn run_foreground(root: &Path, id: &str, keep: bool) -> anyhow::Result<i32> {
    let opts = Options::interactive(
        TargetArg::Console,
        berth_proto::DetachKeys::docker_default(),
    );
    match attach::session(root, id, &opts)? {
        Outcome::Exited(e) => {
            if !keep {
                berth_core::Runtime::new(root).delete(id, true)?;
                after_delete(root, id);
            }
            Ok(e.code())
        }
        Outcome::Detached | Outcome::Replayed => Ok(0),
    }
}

fn exec_via_monitor(root: &Path, a: &ExecArgs) -> anyhow::Result<i32> {
    if a.preserve_fds > 0 {
        bail!("--preserve-fds cannot be used with an exec session held by the console monitor");
    }
    if a.process.is_none() && a.command.is_empty() {
        bail!("process args cannot be empty");
    }
    let mut options: Vec<String> = Vec::new();
    if let Some(c) = &a.cwd {
        options.extend(["--cwd".into(), c.clone()]);
    }
    for e in &a.env {
        options.extend(["--env".into(), e.clone()]);
    }
    if let Some(u) = &a.user {
        options.extend(["--user".into(), u.clone()]);
    }
    for g in &a.additional_gids {
        options.extend(["--additional-gids".into(), g.to_string()]);
    }
    for c in &a.caps {
        options.extend(["--cap".into(), c.clone()]);
    }
    if a.no_new_privs {
        options.push("--no-new-privs".into());
    }
    if let Some(p) = &a.process {
        options.extend(["--process".into(), absolute(p)?.display().to_string()]);
    }
    if let Some(p) = &a.apparmor {
        options.extend(["--apparmor".into(), p.clone()]);
    }
    if let Some(l) = &a.process_label {
        options.extend(["--process-label".into(), l.clone()]);
    }
    let (rows, cols) = host_size().unwrap_or((0, 0));
    let opts: Vec<&str> = options.iter().map(String::as_str).collect();
    let cmd: Vec<&str> = a.command.iter().map(String::as_str).collect();
    let req = Frame::ExecRequest {
        rows,
        cols,
        options: opts,
        command: cmd,
    };
    let started = attach::request(root, &a.id, &req, |f| {
        Ok(match f {
            Frame::ExecStarted { pid, session } => Some((pid, session.to_string())),
            _ => None,
        })
    })
    .map_err(|e| anyhow!("exec failed: {e:#}"))?;
    let (pid, session) =
        started.ok_or_else(|| anyhow!("exec failed: the console monitor did not answer"))?;
    if let Some(p) = &a.pid_file {
        let p = absolute(p)?;
        let tmp = p.with_extension("berth-tmp");
        std::fs::write(&tmp, pid.to_string())
            .with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &p).with_context(|| format!("write {}", p.display()))?;
    }
    writeln!(std::io::stdout(), "{session}")?;
    Ok(0)
}

/// After `delete`: a live monitor notices within a quarter second and removes its directory;
/// a dead monitor's directory is removed here.
pub(crate) fn after_delete(root: &Path, id: &str) {
    let dir = attach::monitor_dir(root, id);
    if id.is_empty() || id.contains('/') || id.contains('@') || !dir.is_dir() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while dir.is_dir() && Instant::now() < deadline {
        let alive = std::fs::read_to_string(dir.join("monitor.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .is_some_and(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains("berth-monitor"))
            });
        if !alive {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                log::warn!("remove {}: {e}", dir.display());
            }
            // `@monitor` goes too when it is empty.
            if let Some(parent) = dir.parent() {
                let _ = std::fs::remove_dir(parent);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log_file_stem(target: &TargetArg) -> String {
    match target {
        TargetArg::Console => "console".into(),
        TargetArg::Tty(n) => format!("tty{n}"),
        TargetArg::Exec(s) => format!("exec-{s}"),
    }
}

/// `berth logs`.
fn logs(root: &Path, a: &LogsArgs) -> anyhow::Result<i32> {
    let target = TargetArg::from_flags(a.exec.as_deref(), a.tty)?;
    let opts = Options {
        target: target.clone(),
        keys: None,
        detach_timeout: None,
        read_only: true,
        no_stdin: true,
        force: false,
        ignore_size: true,
        start: match (a.since, a.tail) {
            (Some(o), _) => Start::Offset(o),
            (None, Some(n)) => Start::TailLines(n),
            (None, None) => Start::Offset(0),
        },
        flow: Flow::CatchUp,
        queue_limit: 0,
        sig_proxy: false,
        no_follow: !a.follow,
    };
    match attach::session(root, &a.id, &opts) {
        Ok(_) => Ok(0),
        Err(e) if e.to_string().contains("is not running") => offline_logs(root, a, &target),
        Err(e) => Err(e),
    }
}

/// The logs of a dead monitor, straight from its files.
fn offline_logs(root: &Path, a: &LogsArgs, target: &TargetArg) -> anyhow::Result<i32> {
    if a.since.is_some() || a.follow {
        bail!(
            "the console monitor of container {} is not running: --since and --follow need it",
            a.id
        );
    }
    let dir = attach::monitor_dir(root, &a.id);
    let stem = log_file_stem(target);
    let mut files: Vec<PathBuf> = Vec::new();
    for k in (1..1000).rev() {
        let p = dir.join(format!("{stem}.log.{k}"));
        if p.is_file() {
            files.push(p);
        }
    }
    files.push(dir.join(format!("{stem}.log")));
    let mut all = Vec::new();
    for f in &files {
        if let Ok(b) = std::fs::read(f) {
            all.extend_from_slice(&b);
        }
    }
    let start = match a.tail {
        None => 0,
        Some(0) => all.len(),
        Some(n) => {
            let mut seen = 0;
            let mut at = 0;
            let end = if all.last() == Some(&b'\n') {
                all.len() - 1
            } else {
                all.len()
            };
            for i in (0..end).rev() {
                if all[i] == b'\n' {
                    seen += 1;
                    if seen == n {
                        at = i + 1;
                        break;
                    }
                }
            }
            at
        }
    };
    std::io::stdout().write_all(&all[start..])?;
    Ok(0)
}

/// `berth sessions`.
fn sessions(root: &Path, a: &SessionsArgs) -> anyhow::Result<i32> {
    let mut json = String::new();
    attach::request::<()>(root, &a.id, &Frame::ListRequest, |f| {
        if let Frame::ClientList(part) = f {
            json.push_str(part);
        }
        Ok(None)
    })?;
    let v: serde_json::Value =
        serde_json::from_str(&json).context("the console monitor's session list")?;
    let mut out = std::io::stdout().lock();
    if a.format == SessionsFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(0);
    }
    let s = |x: &serde_json::Value| match x {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    writeln!(
        out,
        "{:<10} {:<8} {:<8} {:<24} {:<9} {:<12} CLIENTS",
        "SESSION", "KIND", "PID", "STATUS", "SIZE", "OFFSET"
    )?;
    let empty = Vec::new();
    let list = v["sessions"].as_array().unwrap_or(&empty);
    for t in list {
        writeln!(
            out,
            "{:<10} {:<8} {:<8} {:<24} {:<9} {:<12} {}",
            s(&t["name"]),
            s(&t["kind"]),
            s(&t["pid"]),
            s(&t["status"]),
            s(&t["size"]),
            s(&t["offset"]),
            t["clients"].as_array().map_or(0, Vec::len)
        )?;
    }
    let clients: Vec<(&serde_json::Value, &serde_json::Value)> = list
        .iter()
        .flat_map(|t| {
            t["clients"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(move |c| (t, c))
        })
        .collect();
    if !clients.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{:<8} {:<10} {:<5} {:<9} {:<12} {:<10} {:<10} {:<6} {:<10} {:<7} {:<8} PID",
            "CLIENT",
            "SESSION",
            "ROLE",
            "SIZE",
            "BYTES",
            "LAG",
            "DROPS",
            "SKIPS",
            "FLOW",
            "OUTPUT",
            "INPUT"
        )?;
        for (t, c) in clients {
            writeln!(
                out,
                "{:<8} {:<10} {:<5} {:<9} {:<12} {:<10} {:<10} {:<6} {:<10} {:<7} {:<8} {}",
                s(&c["id"]),
                s(&t["name"]),
                s(&c["role"]),
                s(&c["size"]),
                s(&c["bytes"]),
                s(&c["lag"]),
                s(&c["drops"]),
                s(&c["skips"]),
                s(&c["flow"]),
                s(&c["output"]),
                s(&c["input"]),
                s(&c["pid"])
            )?;
        }
    }
    Ok(0)
}

/// `berth screenshot`.
fn screenshot(root: &Path, a: &ScreenshotArgs) -> anyhow::Result<i32> {
    let target = TargetArg::from_flags(a.exec.as_deref(), a.tty)?;
    let mut text = Vec::new();
    attach::request::<()>(
        root,
        &a.id,
        &Frame::ScreenshotRequest {
            target: target.as_target(),
            formatted: a.formatted,
        },
        |f| {
            if let Frame::Screenshot { data, .. } = f {
                text.extend_from_slice(data);
            }
            Ok(None)
        },
    )?;
    std::io::stdout().write_all(&text)?;
    Ok(0)
}
