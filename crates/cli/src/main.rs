//! `berth`: the runc-compatible command line. Parses flags, installs the logger, calls
//! `berth_core`, prints, and exits with runc's codes: 0, 1 on error, the process's status for
//! foreground `run`/`exec` (128+N when killed by signal N), 255 when `exec` fails to start.

mod args;
mod attach;
mod console;
mod events;
mod logging;
mod monitor_cmds;
mod table;
mod update;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use berth_core::rootless::RootlessMode;
use berth_core::{CreateOptions, ExecOptions, RunOptions, Runtime};
use clap::Parser;

use args::{Cli, Command, CreateArgs, TableFormat};

fn create_options(a: &CreateArgs, cgroups_optional: bool) -> CreateOptions {
    CreateOptions {
        cgroups_optional,
        bundle: a.bundle.clone().unwrap_or_default(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
    }
}

/// For the commands that put processes into a container (create, run, exec): how many fds
/// they preserve, and the inherited fds above those they still read themselves (`exec -p
/// /dev/fd/N`, a `--log /dev/fd/N`). `None` for the others.
fn fds_to_keep(cli: &Cli) -> Option<(u32, Vec<i32>)> {
    let preserve = match &cli.command {
        Command::Create(a) => a.preserve_fds,
        Command::Run { create, .. } => create.preserve_fds,
        Command::Exec(a) => a.preserve_fds,
        _ => return None,
    };
    let mut keep = Vec::new();
    if let Command::Exec(a) = &cli.command {
        keep.extend(
            a.process
                .as_deref()
                .and_then(berth_core::exeseal::fd_of_path),
        );
    }
    keep.extend(cli.log.as_deref().and_then(berth_core::exeseal::fd_of_path));
    Some((preserve, keep))
}

/// Runs one command; `Ok(code)` is the exit code.
fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    if cli.systemd_cgroup {
        bail!(
            "--systemd-cgroup: systemd cgroup management is not supported by berth yet; use cgroupfs paths"
        );
    }
    let rootless: RootlessMode = cli.rootless.as_deref().unwrap_or("auto").parse()?;
    let root = cli
        .root
        .clone()
        .unwrap_or_else(berth_core::rootless::default_root);
    if let Some(code) = monitor_cmds::intercept(&root, &cli.command, cli.debug)? {
        return Ok(code);
    }
    // Commands that put processes into a container run from a sealed view of berth's binary
    // (CVE-2019-5736), moved onto in place or re-executed; either drops every fd but stdio and
    // the preserved ones.
    let preserve = match &cli.command {
        Command::Create(a) => Some(a.preserve_fds),
        Command::Run { create, .. } => Some(create.preserve_fds),
        Command::Exec(a) => Some(a.preserve_fds),
        _ => None,
    };
    if let Some(n) = preserve {
        log::debug!("berth {} started", env!("CARGO_PKG_VERSION"));
        // `exec -p <(…)`: the process file is an fd the sealing must not close.
        let keep: Vec<i32> = match &cli.command {
            Command::Exec(a) => a
                .process
                .as_deref()
                .and_then(berth_core::exeseal::fd_of_path)
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        // One helper child, forked first (before the re-exec, which it survives and whose
        // second image then makes none): it starts a v1 cgroup migration's grace period, so
        // the wait runs while berth seals, loads the config and clones, and then closes the
        // sealing's detached mount, whose last close waits for RCU.
        let helper = if berth_sys::process::has_silent_children() {
            None
        } else {
            berth_sys::process::Helper::spawn(berth_cgroups::migration_primer()).ok()
        };
        berth_core::exeseal::ensure_sealed_keeping(n, &root, &keep, helper.as_ref())?;
        drop(helper);
        log::debug!("running from a sealed copy of berth");
    }
    let cgroups_optional = rootless.cgroups_optional();
    let rt = Runtime::new(&root);
    let mut out = std::io::stdout().lock();
    let code = match &cli.command {
        Command::Create(a) => rt
            .create(&a.id, &create_options(a, cgroups_optional))
            .map(|_| 0)?,
        Command::Start { id } => rt.start(id).map(|_| 0)?,
        Command::Run {
            create,
            detach,
            keep,
        } => rt.run(
            &create.id,
            &RunOptions {
                create: create_options(create, cgroups_optional),
                detach: *detach,
                keep: *keep,
            },
        )?,
        Command::State { id } => {
            let state = rt.state(id)?;
            writeln!(out, "{}", serde_json::to_string_pretty(&state)?)?;
            0
        }
        Command::Kill { all, id, signal } => {
            let raw = signal.as_deref().unwrap_or("SIGTERM");
            let sig = berth_sys::signal::parse_signal(raw)
                .ok_or_else(|| anyhow!("unknown signal {raw:?}"))?;
            rt.kill(id, sig, *all)?;
            0
        }
        Command::Delete { force, id } => {
            rt.delete(id, *force)?;
            monitor_cmds::after_delete(&root, id);
            0
        }
        Command::List { format, quiet } => {
            let states = rt.list()?;
            if *quiet {
                for s in &states {
                    writeln!(out, "{}", s.id)?;
                }
            } else if *format == TableFormat::Json {
                if states.is_empty() {
                    writeln!(out, "null")?;
                } else {
                    writeln!(out, "{}", serde_json::to_string(&list_json(&states))?)?;
                }
            } else {
                write!(out, "{}", table::list_table(&states))?;
            }
            0
        }
        Command::Ps {
            format,
            id,
            ps_args,
        } => {
            let pids = rt.pids(id)?;
            if *format == TableFormat::Json {
                writeln!(out, "{}", serde_json::to_string(&pids)?)?;
            } else {
                write!(out, "{}", table::ps_table(&pids, ps_args)?)?;
            }
            0
        }
        Command::Exec(a) => {
            if a.process.is_none() && a.command.is_empty() {
                bail!("process args cannot be empty");
            }
            let opts = ExecOptions {
                process_file: a.process.clone(),
                args: a.command.clone(),
                tty: a.tty,
                console_socket: a.console_socket.clone(),
                detach: a.detach,
                pid_file: a.pid_file.clone(),
                cwd: a.cwd.clone(),
                env: a.env.clone(),
                user: a.user.clone(),
                additional_gids: a.additional_gids.clone(),
                caps: a.caps.clone(),
                no_new_privs: a.no_new_privs,
                preserve_fds: a.preserve_fds,
                apparmor: a.apparmor.clone(),
                process_label: a.process_label.clone(),
                ignore_paused: a.ignore_paused,
                cgroups: a.cgroup.clone(),
            };
            match rt.exec(&a.id, &opts) {
                Ok(code) => code,
                Err(e) => return Err(ExecFailed(e).into()),
            }
        }
        Command::Pause { id } => rt.set_paused(id, true).map(|_| 0)?,
        Command::Resume { id } => rt.set_paused(id, false).map(|_| 0)?,
        Command::Spec { bundle } => {
            let rootless = rootless == RootlessMode::True;
            let dir = bundle.clone().unwrap_or_else(|| ".".into());
            let path = dir.join("config.json");
            if path.exists() {
                bail!("File {} exists. Remove it first", path.display());
            }
            let spec = berth_spec::template::default_spec(rootless);
            let text = berth_spec::template::to_pretty_json(&spec)?;
            std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
            0
        }
        Command::Update(a) => {
            rt.update(&a.id, &update::resources(a)?)?;
            0
        }
        Command::Events(a) => events::run(&rt, a)?,
        Command::Monitor(m) => monitor_cmds::run(&root, m)?,
        Command::Features => {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&berth_spec::features::features())?
            )?;
            0
        }
    };
    Ok(code)
}

/// An `exec` that failed to start: runc exits 255 for it.
#[derive(Debug)]
struct ExecFailed(berth_core::Error);

impl std::fmt::Display for ExecFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exec failed: {}", self.0)
    }
}

impl std::error::Error for ExecFailed {}

/// runc's `list --format json` objects: the state plus `owner` from the state dir's uid, in
/// runc's field order (ociVersion, id, pid, …; bats' list.bats matches the text).
fn list_json(states: &[berth_spec::State]) -> Vec<berth_spec::State> {
    states
        .iter()
        .map(|s| berth_spec::State {
            owner: table::owner_name(),
            ..s.clone()
        })
        .collect()
}

/// The error and its causes on one line, like anyhow's `{:#}`, but without repeating a cause
/// whose text an outer error already includes (berth's error types print their source).
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // create, run and exec drop what they inherited beyond stdio and the preserved fds before
    // opening anything themselves (see berth_core::exeseal::close_inherited_fds).
    if let Some((preserve, keep)) = fds_to_keep(&cli) {
        if let Err(e) = berth_core::exeseal::close_inherited_fds(preserve, &keep) {
            eprintln!("berth: {e:#}");
            return ExitCode::from(1);
        }
    }
    let logger = match logging::Logger::install(cli.log_format, cli.log.as_deref(), cli.debug) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("berth: {e:#}");
            return ExitCode::from(1);
        }
    };
    berth_core::set_init_detach_hook(logging::release_callers_stderr);
    match dispatch(&cli) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            let msg = error_line(&e);
            log::error!("{msg}");
            if !logger.to_stderr() {
                eprintln!("{msg}");
            }
            let code = if e.downcast_ref::<ExecFailed>().is_some() {
                255
            } else {
                1
            };
            ExitCode::from(code)
        }
    }
}
