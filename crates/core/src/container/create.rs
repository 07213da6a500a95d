//! `create` and `run`: the parent side of making a container.
//!
//! Order (berth's process, the init's steps are in [`crate::init`]):
//! 1. check the id, load and validate the config, check the terminal flags (runc's texts);
//! 2. make the state directory (the id is now taken) and, from here on, undo everything on error;
//! 3. open what can fail early and cheaply, before any process exists: namespace paths, the
//!    console socket, the cgroup (made now on cgroup2 hosts, only resolved on v1 and hybrid
//!    ones: see [`super::cgroup`]);
//! 4. block the relay's signals (foreground) and `clone3` the init;
//! 5. write id maps, let the init continue, make the cgroup if it waited and put the init in
//!    it; answer its hook request;
//! 6. on `Ready`, record pid and start time; `create` returns, `run` starts it at once.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_cgroups::CgroupManager;
use berth_spec::Spec;
use berth_sys::process::{CloneOptions, Forked};
use berth_sys::signal::SignalFd;
use berth_tty::{ConsoleSocket, HostConsole, Winsize};

use super::cgroup::CgroupPlan;
use crate::channel::{Channel, ToChild, ToParent};
use crate::error::{Error, Result};
use crate::init::{InitConfig, StartGate, StdioPlan};
use crate::namespaces::NsPlan;
use crate::store::{ContainerDir, Record, Store};

/// Flags of `create` and `run`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `--bundle`: the bundle directory (default: the current directory).
    pub bundle: PathBuf,
    /// `--console-socket`.
    pub console_socket: Option<PathBuf>,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`.
    pub no_new_keyring: bool,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// The container may run without a cgroup of its own (rootless; see [`crate::rootless`]).
    pub cgroups_optional: bool,
}

/// How the container's process will be attached to berth's caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `create`: detached; `start` releases the init.
    Create,
    /// `run -d`.
    RunDetached,
    /// `run`: berth stays and relays.
    RunForeground,
}

/// What `run` keeps after the init is ready.
pub(crate) struct Created {
    pub dir: ContainerDir,
    pub record: Record,
    pub channel: Channel,
    pub relay: Option<RelayParts>,
    pub init_pid: i32,
}

/// The parent's ends of the foreground plumbing.
pub(crate) enum RelayParts {
    /// Receives the master from the init; `console` is the user's terminal.
    Terminal {
        receiver: OwnedFd,
        console: HostConsole,
        signals: SignalFd,
    },
    /// Pipe ends: write to the container's stdin, read its stdout and stderr.
    Pipes {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
        signals: SignalFd,
    },
}

/// The size the pty gets from the user's terminal: its own, or 24x80 when it reports 0x0.
pub(crate) fn console_size(console: &HostConsole) -> Winsize {
    match Winsize::get(console.as_fd()) {
        Ok(ws) if !ws.is_zero() => ws,
        _ => Winsize::DEFAULT,
    }
}

/// runc's `checkTerminal` texts, kept verbatim because callers match on them.
pub(crate) fn check_terminal(terminal: bool, detach: bool, console_socket: bool) -> Result<()> {
    if detach && terminal && !console_socket {
        return Err(Error::Usage(
            "cannot allocate tty if runc will detach without setting console socket".into(),
        ));
    }
    if (!detach || !terminal) && console_socket {
        return Err(Error::Usage(
            "cannot use console socket if runc will not detach or allocate tty".into(),
        ));
    }
    Ok(())
}

/// The initial pty size: `consoleSize` (error above 65535), else the user's terminal.
pub(crate) fn initial_size(
    process: &berth_spec::Process,
    host: Option<&HostConsole>,
) -> Result<Option<Winsize>> {
    if let Some(cs) = process.console_size {
        let ws = Winsize::from_console_size(cs.height, cs.width)?;
        if !ws.is_zero() {
            return Ok(Some(ws));
        }
    }
    Ok(host.map(console_size))
}

/// Undo-on-error guard for a container being created.
struct Cleanup {
    pid: Option<i32>,
    cgroup: Option<CgroupManager>,
    dir: Option<ContainerDir>,
}

impl Cleanup {
    fn disarm(&mut self) -> ContainerDir {
        self.pid = None;
        self.cgroup = None;
        self.dir
            .take()
            .expect("state directory present until disarmed")
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = berth_sys::signal::kill(pid, libc::SIGKILL);
            let _ = rustix::process::waitpid(
                rustix::process::Pid::from_raw(pid),
                rustix::process::WaitOptions::empty(),
            );
        }
        if let Some(cg) = self.cgroup.take() {
            if let Err(e) = cg.destroy() {
                log::warn!("cleanup: {e}");
            }
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = dir.remove() {
                log::warn!("cleanup: {e}");
            }
        }
    }
}

/// Loads `bundle/config.json`, with the bundle made absolute.
pub(crate) fn load_spec(bundle: &Path) -> Result<(PathBuf, Spec)> {
    let bundle = if bundle.as_os_str().is_empty() {
        Path::new(".")
    } else {
        bundle
    };
    let bundle = std::fs::canonicalize(bundle).map_err(|e| Error::io("open bundle", bundle, e))?;
    let spec = berth_spec::load_bundle(&bundle)?;
    Ok((bundle, spec))
}

/// Makes a container and leaves its init ready: `create` and both forms of `run`.
pub(crate) fn create(store: &Store, id: &str, opts: &CreateOptions, mode: Mode) -> Result<Created> {
    crate::store::validate_id(id)?;
    let (bundle, spec) = load_spec(&opts.bundle)?;
    // Made on another thread while the rest is checked and prepared (see crate::namespaces).
    let netns = crate::namespaces::PreparedNetns::start(&spec);
    let process = spec
        .process
        .clone()
        .ok_or_else(|| Error::Usage("process: missing".into()))?;
    let detach = mode != Mode::RunForeground;
    check_terminal(process.terminal, detach, opts.console_socket.is_some())?;
    if process.terminal {
        // consoleSize is checked now, before anything exists (ignored without a terminal).
        initial_size(&process, None)?;
    }
    let root = spec
        .root
        .as_ref()
        .ok_or_else(|| Error::Usage("root: missing".into()))?;
    let rootfs = if root.path.is_absolute() {
        root.path.clone()
    } else {
        bundle.join(&root.path)
    };
    let rootfs =
        std::fs::canonicalize(&rootfs).map_err(|e| Error::io("rootfs: open", &rootfs, e))?;
    if !rootfs.is_dir() {
        return Err(Error::io(
            "rootfs",
            &rootfs,
            std::io::Error::from_raw_os_error(libc::ENOTDIR),
        ));
    }

    log::debug!("config loaded from {}", bundle.display());
    // What the init would otherwise find wrong only after the clone: checked before anything
    // exists, so bad input leaves nothing behind.
    crate::init::process::check(&process, spec.linux.as_ref())?;
    let seccomp = crate::init::seccomp::compile_for(&spec)?;
    let dir = store.create(id)?;
    let mut cleanup = Cleanup {
        pid: None,
        cgroup: None,
        dir: Some(dir),
    };
    let dir = cleanup.dir.as_ref().expect("just set");
    let mut record = Record {
        id: id.to_string(),
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: berth_spec::time::rfc3339_nanos_now(),
        owner: String::new(),
        pid: 0,
        pid_start: 0,
        creating: true,
        spec: spec.clone(),
        cgroup: None,
        no_pivot: opts.no_pivot,
        extra: Default::default(),
    };

    let mut ns = NsPlan::for_spec(&spec)?;
    ns.prepare_idmapped(&spec, &bundle)?;
    // Made now, or resolved now and made after the clone (see super::cgroup).
    let mut cgroup_plan = CgroupPlan::for_spec(&spec, id, opts.cgroups_optional)?;
    let cgroup = cgroup_plan.manager().cloned();
    // A failed create removes the cgroup only once it is made: a cgroup planned for later may
    // already exist (a pre-existing, even frozen one), and is not berth's to remove if making
    // it fails (`make_in` removes what it made itself).
    cleanup.cgroup = match cgroup_plan {
        CgroupPlan::Later { .. } => None,
        _ => cgroup.clone(),
    };
    record.cgroup = cgroup.clone();
    dir.save(&record)?;
    match &cgroup_plan {
        CgroupPlan::Later { manager, .. } => log::debug!("cgroup {} resolved", manager.path()),
        CgroupPlan::Made(manager) => log::debug!("cgroup {} ready", manager.path()),
        CgroupPlan::Without => {}
    }

    let (stdio, relay_parts) = plan_stdio(
        &process,
        mode != Mode::RunForeground,
        opts.console_socket.as_deref(),
    )?;
    let gate = if mode == Mode::Create {
        StartGate::Socket(crate::container::start::listen(dir)?)
    } else {
        StartGate::Channel
    };
    let (parent_channel, child_channel) = Channel::pair()?;

    let lock_fd = cleanup.dir.as_ref().expect("present").lock_fd_number();
    let cgroup_fd = cgroup.as_ref().and_then(|c| c.dir_fd_for_clone());
    let clone_opts = CloneOptions {
        pidfd: false,
        cgroup: cgroup_fd.as_ref().map(|f| f.as_fd()),
        ..CloneOptions::default()
    };
    if let Some(netns) = netns {
        ns.use_prepared_netns(netns);
    }
    flush_stdio();
    let forked =
        berth_sys::process::clone3(if ns.general { 0 } else { ns.clone_flags }, &clone_opts)
            .map_err(|e| Error::sys("clone3 the container's init", e))?;
    let child_pid = match forked {
        Forked::Child => {
            drop(parent_channel);
            let cfg = InitConfig {
                id,
                spec: &spec,
                bundle: &bundle,
                rootfs: &rootfs,
                no_pivot: opts.no_pivot,
                no_new_keyring: opts.no_new_keyring,
                preserve_fds: opts.preserve_fds,
                ns: &ns,
                stdio,
                gate,
                seccomp: seccomp.as_ref(),
                lock_fd,
                cgroup: cgroup.as_ref(),
            };
            crate::init::run_init(cfg, child_channel)
        }
        Forked::Parent { pid, .. } => pid,
    };
    // The init holds the network namespace now (it joins it first thing).
    drop(ns.prepared_net.take());
    drop(child_channel);
    drop(stdio);
    drop(gate);
    cleanup.pid = Some(child_pid);
    log::debug!("nsexec container setup: init cloned, pid {child_pid}");

    let mut init_pid = child_pid;
    if !ns.general {
        if ns.new_user {
            crate::namespaces::write_id_maps(child_pid, &spec)?;
            crate::init::send_bind_sources(
                &parent_channel,
                &spec,
                &bundle,
                child_pid,
                &ns.idmapped,
            )?;
        }
        continue_in_cgroup(
            &mut cgroup_plan,
            &spec,
            &mut record,
            dir,
            &mut cleanup.cgroup,
            &parent_channel,
            child_pid,
        )?;
    }
    loop {
        let msg = parent_channel.recv::<ToParent>()?;
        match msg {
            Some(ToParent::NeedIdMap { pid }) => {
                crate::namespaces::write_id_maps(pid, &spec)?;
                if ns.unshare_flags & libc::CLONE_NEWNS as u64 != 0 {
                    crate::init::send_bind_sources(
                        &parent_channel,
                        &spec,
                        &bundle,
                        pid,
                        &ns.idmapped,
                    )?;
                }
                parent_channel.send(&ToChild::IdMapDone)?;
            }
            Some(ToParent::Pid { pid }) => {
                // The intermediate child forked the init and exits.
                let _ = rustix::process::waitpid(
                    rustix::process::Pid::from_raw(child_pid),
                    rustix::process::WaitOptions::empty(),
                );
                init_pid = pid;
                cleanup.pid = Some(pid);
                continue_in_cgroup(
                    &mut cgroup_plan,
                    &spec,
                    &mut record,
                    dir,
                    &mut cleanup.cgroup,
                    &parent_channel,
                    pid,
                )?;
            }
            Some(ToParent::CreateRuntimeHooks) => {
                let hooks = spec.hooks.clone().unwrap_or_default();
                let state = crate::hooks::state_json(id, "creating", init_pid, &bundle, &spec);
                crate::hooks::run_all("prestart", &hooks.prestart, &state)?;
                crate::hooks::run_all("createRuntime", &hooks.create_runtime, &state)?;
                parent_channel.send(&ToChild::HooksDone)?;
            }
            Some(ToParent::Ready) => {
                log::debug!("init: container set up, pid {init_pid}");
                break;
            }
            Some(ToParent::Error { message }) => return Err(Error::Init(message)),
            None => {
                return Err(Error::Init(format!(
                    "container init (pid {init_pid}) exited during setup{}{}",
                    exit_note(child_pid),
                    super::update::oom_note(cgroup.as_ref(), &spec)
                )));
            }
        }
    }
    if mode != Mode::Create {
        // `run`: the init goes on to its program now, while berth records it (the state reads
        // `creating` until then); `release` in run.rs waits for the exec.
        parent_channel.send(&ToChild::Start)?;
    }
    // The child that primed the cgroup migration (berth_cgroups::prime) is done by now.
    berth_sys::process::reap_silent_children();
    record.pid = init_pid;
    record.pid_start = crate::procfs::stat(init_pid)
        .map(|s| s.start_time)
        .unwrap_or_default();
    record.creating = false;
    cleanup.dir.as_ref().expect("present").save(&record)?;
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, init_pid)?;
    }
    let dir = cleanup.disarm();
    Ok(Created {
        dir,
        record,
        channel: parent_channel,
        relay: relay_parts,
        init_pid,
    })
}

/// Lets the init (`pid`) go on with its setup, makes its cgroup meanwhile and moves it in: the
/// order both ways of starting the init (one clone, or an intermediate child) share. The init
/// is told the directories exist as soon as they do: it binds them into a `cgroup` mount while
/// berth writes the limits and moves it in (it waits for `CgroupJoined` before it runs
/// anything of the user's). If the child died meanwhile, its own error message wins over
/// berth's failure.
fn continue_in_cgroup(
    plan: &mut CgroupPlan,
    spec: &Spec,
    record: &mut Record,
    dir: &ContainerDir,
    undo: &mut Option<CgroupManager>,
    channel: &Channel,
    pid: i32,
) -> Result<()> {
    channel.send(&ToChild::Continue)?;
    let result = make_cgroup(plan, record, dir, undo).and_then(|made| {
        channel.send(&ToChild::CgroupMade)?;
        match made {
            // Made now (v1 or hybrid host): the limits, then the init joins every hierarchy
            // but `devices` while the grace period the migration primer waited for still
            // covers the writes (once it has run out each waits for a new one, 4 to 30 ms
            // here), then the device rules (many writes) and `devices`. Limits go first so a
            // memory limit below what the init already uses is an OOM, as it always was.
            Some(made) => {
                crate::rootless::apply_limits(spec, &made)?;
                made.add_pid_in_steps(pid, false)?;
                crate::rootless::apply_device_rules(spec, &made)?;
                made.add_pid_in_steps(pid, true)?;
            }
            None => {
                if let Some(cgroup) = plan.manager() {
                    cgroup.add_pid(pid)?;
                }
            }
        }
        log::debug!("init {pid} joined its cgroups");
        channel.send(&ToChild::CgroupJoined)
    });
    result.map_err(|e| channel.pending_error().map(Error::Init).unwrap_or(e))
}

/// Makes the directories of a cgroup planned for after the clone (while the init sets up its
/// mounts) and returns its manager when it made them now; records it again if it turned out
/// to be shared, and hands it to the undo guard (`undo`) once it is made.
fn make_cgroup(
    plan: &mut CgroupPlan,
    record: &mut Record,
    dir: &ContainerDir,
    undo: &mut Option<CgroupManager>,
) -> Result<Option<CgroupManager>> {
    let made = plan.make()?;
    *undo = plan.manager().cloned();
    if let Some(made) = made.as_ref().filter(|m| m.is_shared()) {
        record.cgroup = Some(made.clone());
        dir.save(record)?;
    }
    Ok(made)
}

fn exit_note(pid: i32) -> String {
    match rustix::process::waitpid(
        rustix::process::Pid::from_raw(pid),
        rustix::process::WaitOptions::NOHANG,
    ) {
        Ok(Some((_, st))) => match berth_tty::relay::ExitStatus::from_wait(st) {
            Some(berth_tty::relay::ExitStatus::Exited(c)) => format!(" with status {c}"),
            Some(berth_tty::relay::ExitStatus::Signaled(s)) => format!(" killed by signal {s}"),
            None => String::new(),
        },
        _ => String::new(),
    }
}

/// The child's standard streams, and berth's ends of them, for runc's four modes: a new terminal
/// (its master to the console socket when detached, to berth's own relay in the foreground) or
/// pass-through (berth's stdio inherited when detached, pipes berth relays in the foreground).
/// In the foreground the relay's signals are blocked here, before the clone (no lost SIGCHLD).
pub(crate) fn plan_stdio(
    process: &berth_spec::Process,
    detach: bool,
    console_socket: Option<&Path>,
) -> Result<(StdioPlan, Option<RelayParts>)> {
    if process.terminal {
        if detach {
            let path = console_socket.expect("checked by check_terminal");
            let plan = StdioPlan::Terminal {
                socket: ConsoleSocket::connect(path)?,
                size: initial_size(process, None)?,
                clear_onlcr: false,
            };
            return Ok((plan, None));
        }
        let console = berth_tty::host_console()?;
        let size = initial_size(process, Some(&console))?;
        let (child_end, parent_end) = ConsoleSocket::socketpair()?;
        let signals = berth_tty::relay::block_relay_signals()?.0;
        let parts = RelayParts::Terminal {
            receiver: parent_end,
            console,
            signals,
        };
        let plan = StdioPlan::Terminal {
            socket: child_end,
            size,
            clear_onlcr: true,
        };
        return Ok((plan, Some(parts)));
    }
    if detach {
        let guard = crate::init::process::any_stdio_is_tty();
        if guard {
            log::warn!(
                "the container's stdio includes this terminal (pass-through): berth makes TIOCSTI and TIOCLINUX on it fail inside the container"
            );
        }
        return Ok((StdioPlan::Inherit { guard }, None));
    }
    let (in_r, in_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // The process may reopen its stdio through /proc/self/fd as its own user.
    for fd in [&in_r, &out_w, &err_w] {
        rustix::fs::fchown(fd, Some(rustix::fs::Uid::from_raw(process.user.uid)), None).ok();
    }
    let signals = berth_tty::relay::block_relay_signals()?.0;
    let parts = RelayParts::Pipes {
        stdin: in_w,
        stdout: out_r,
        stderr: err_r,
        signals,
    };
    Ok((StdioPlan::Pipes([in_r, out_w, err_w]), Some(parts)))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::sys("pipe", e))
}

/// Flushes berth's stdio buffers so the child's copy of memory holds none to write twice.
pub(crate) fn flush_stdio() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// Writes a pid file atomically, as runc does (no trailing newline).
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::sys("getcwd", e))?
            .join(path)
    };
    crate::store::write_atomic(&abs, pid.to_string().as_bytes(), 0o644)
}
