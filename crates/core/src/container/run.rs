//! `run`: create, start at once, and (without `-d`) stay to relay the container's stdio, forward
//! signals, and exit with its status.

use std::os::fd::AsFd;

use berth_tty::relay::{ExitStatus, Pipes, Relay, Terminal};
use rustix::process::Pid;

use super::create::{CreateOptions, Created, Mode, RelayParts, create};
use crate::channel::ToParent;
use crate::error::{Error, Result};
use crate::store::Store;

/// Flags of `run` beyond those of `create`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The `create` flags.
    pub create: CreateOptions,
    /// `--detach`.
    pub detach: bool,
    /// `--keep`: do not delete the container when it exits.
    pub keep: bool,
}

/// Waits for the outcome of the init's exec on the channel (`create` told it to go on as
/// soon as it was ready).
fn release(created: &Created) -> Result<()> {
    match created.channel.recv::<ToParent>()? {
        None => Ok(()),
        Some(ToParent::Error { message }) => Err(Error::Init(message)),
        Some(other) => Err(Error::Init(format!(
            "unexpected message from init: {other:?}"
        ))),
    }
}

/// `berth run`. Returns the exit code berth should exit with.
pub fn run(store: &Store, id: &str, opts: &RunOptions) -> Result<i32> {
    let mode = if opts.detach {
        Mode::RunDetached
    } else {
        Mode::RunForeground
    };
    let mut created = create(store, id, &opts.create, mode)?;
    log::debug!("init ready; starting the user's process");
    if let Err(e) = release(&created) {
        let _ = berth_sys::signal::kill(created.init_pid, libc::SIGKILL);
        let _ = super::manage::destroy(created.dir, &created.record);
        return Err(e);
    }
    let hooks = created.record.spec.hooks.clone().unwrap_or_default();
    if !hooks.poststart.is_empty() {
        let state = crate::hooks::state_json(
            id,
            "running",
            created.init_pid,
            &created.record.bundle,
            &created.record.spec,
        );
        crate::hooks::run_all_warn("poststart", &hooks.poststart, &state);
    }
    if opts.detach {
        return Ok(0);
    }
    let target = Pid::from_raw(created.init_pid).ok_or_else(|| Error::Init("init pid 0".into()))?;
    // Other commands (kill, exec, state) must not wait for this one while it relays.
    drop(created.dir);
    let status = match created.relay.take() {
        Some(parts) => relay(parts, target)?,
        None => wait(target)?,
    };
    log::debug!("container process exited: {status:?}");
    if !opts.keep {
        match store.open(id) {
            Ok(dir) => {
                super::manage::destroy(dir, &created.record)?;
                log::debug!("container {id} removed");
            }
            // Deleted meanwhile (`delete --force` from elsewhere): nothing left to do.
            Err(Error::NotExist(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(status.code())
}

fn wait(target: Pid) -> Result<ExitStatus> {
    loop {
        match rustix::process::waitpid(Some(target), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, st))) => {
                if let Some(s) = ExitStatus::from_wait(st) {
                    return Ok(s);
                }
            }
            Ok(None) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("wait for the container", e)),
        }
    }
}

/// Runs the foreground relay until the target exits and its output is drained.
pub(crate) fn relay(parts: RelayParts, target: Pid) -> Result<ExitStatus> {
    match parts {
        RelayParts::Terminal {
            receiver,
            console,
            signals,
        } => {
            let (_, master) = berth_tty::recv_master(receiver.as_fd())?;
            drop(receiver);
            let _raw = berth_tty::RawGuard::enter(console.as_fd())?;
            berth_tty::RawGuard::install_panic_restore();
            let stdin = berth_sys::fd::borrow_raw(0);
            let stdout = berth_sys::fd::borrow_raw(1).unwrap_or(console.as_fd());
            let relay = Relay::terminal(
                signals,
                target,
                Terminal {
                    master: master.as_fd(),
                    stdin,
                    stdout,
                    console: Some(console.as_fd()),
                },
            )?;
            Ok(relay.run()?)
        }
        RelayParts::Pipes {
            stdin,
            stdout,
            stderr,
            signals,
        } => {
            let host_in = berth_sys::fd::borrow_raw(0);
            let host_out = berth_sys::fd::borrow_raw(1);
            let host_err = berth_sys::fd::borrow_raw(2);
            let pipes = Pipes {
                stdin: host_in.map(|h| (h, stdin)),
                stdout: host_out.map(|h| (stdout, h)),
                stderr: host_err.map(|h| (stderr, h)),
            };
            Ok(Relay::pipes(signals, target, pipes)?.run()?)
        }
    }
}
