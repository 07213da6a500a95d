//! The child side: what runs between berth's `clone3` and the user's program.
//!
//! Two flavours share the steps here:
//! - [`run_init`], the container's init (runc's `standard_init`): namespaces, rootfs, console,
//!   then it waits for `start` and execs `process.args`;
//! - [`run_tenant`], a process `berth exec` adds to a running container (runc's `setns_init`):
//!   joins the init's namespaces and root, gets its own terminal, execs.
//!
//! Both end in `execve` or in [`berth_sys::process::exit_immediately`]; they never return into
//! berth's parent logic. Every failure is reported as one line to berth over the
//! [`Channel`](crate::channel::Channel) (or, once `create` has returned, over the start
//! connection to `berth start`) and the child exits 1.

pub(crate) mod cgroupfs;
pub(crate) mod console;
pub(crate) mod devices;
pub(crate) mod paths;
pub(crate) mod process;
pub(crate) mod rootfs;
pub(crate) mod seccomp;
mod seccomp_enosys;
pub(crate) mod ttys;

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use berth_spec::{NamespaceType, Process, Spec};
use berth_sys::process::{Forked, exit_immediately};
use berth_tty::{ConsoleSocket, Winsize};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::channel::{Channel, ToChild, ToParent};
use crate::error::{Error, Result};
use crate::namespaces::NsPlan;

/// The child's standard streams.
pub(crate) enum StdioPlan {
    /// Keep berth's fds 0/1/2 (detached pass-through). `guard` loads the TIOCSTI/TIOCLINUX
    /// filter because one of them is a terminal.
    Inherit {
        /// Block terminal injection.
        guard: bool,
    },
    /// These pipe ends become fds 0/1/2 (foreground pass-through).
    Pipes([OwnedFd; 3]),
    /// A new terminal whose master goes out over `socket`.
    Terminal {
        /// Where the master goes.
        socket: ConsoleSocket,
        /// Initial size.
        size: Option<Winsize>,
        /// berth relays it itself: clear ONLCR.
        clear_onlcr: bool,
    },
}

/// How the init learns that it may exec.
pub(crate) enum StartGate {
    /// `ToChild::Start` on the channel (`run`).
    Channel,
    /// A connection on this listening socket (`create` then `start`).
    Socket(OwnedFd),
}

/// Everything the container's init needs (it lives in the child's copy of berth's memory).
pub(crate) struct InitConfig<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub ns: &'a NsPlan,
    pub stdio: StdioPlan,
    pub gate: StartGate,
    /// `linux.seccomp`, compiled by berth before the clone.
    pub seccomp: Option<&'a seccomp::Filter>,
    /// The state directory's lock, inherited from berth: closed first thing.
    pub lock_fd: i32,
    /// The container's cgroup, if berth made one.
    pub cgroup: Option<&'a berth_cgroups::CgroupManager>,
}

/// Where errors go.
enum Reporter<'a> {
    Channel(&'a Channel),
    Start(OwnedFd),
}

impl Reporter<'_> {
    fn report(&self, e: &Error) {
        let message = e.to_string();
        match self {
            Reporter::Channel(c) => {
                let _ = c.send(&ToParent::Error { message });
            }
            Reporter::Start(fd) => {
                let mut f =
                    std::fs::File::from(fd.try_clone().ok().unwrap_or_else(|| exit_immediately(1)));
                let _ = f.write_all(message.as_bytes());
            }
        }
    }
}

/// Bind mount sources berth sent (`ToChild::BindSources`), by index in `mounts`, until the
/// rootfs is set up. The child is single-threaded; the lock is never contended.
static BIND_SOURCES: std::sync::Mutex<Vec<(usize, OwnedFd)>> = std::sync::Mutex::new(Vec::new());

fn wait_for(channel: &Channel, want: &ToChild) -> Result<()> {
    loop {
        match channel.recv::<ToChild>()? {
            Some(ToChild::BindSources { mounts }) => {
                let fds = channel.take_fds();
                if fds.len() != mounts.len() {
                    return Err(Error::Init(format!(
                        "init: {} bind mount sources announced, {} received",
                        mounts.len(),
                        fds.len()
                    )));
                }
                BIND_SOURCES
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(mounts.into_iter().zip(fds));
            }
            Some(m) if &m == want => return Ok(()),
            Some(m) => return Err(Error::Init(format!("init: expected {want:?}, got {m:?}"))),
            // berth went away: nobody is waiting for this container any more.
            None => exit_immediately(1),
        }
    }
}

/// Sends the bind mount sources [`rootfs::open_bind_sources`] opened for `pid`'s new mount
/// namespace, a few dozen per message.
pub(crate) fn send_bind_sources(
    channel: &Channel,
    spec: &Spec,
    bundle: &std::path::Path,
    pid: i32,
    idmapped: &[crate::namespaces::IdmappedMount],
) -> Result<()> {
    let sources = rootfs::open_bind_sources(spec, bundle, pid, idmapped);
    for chunk in sources.chunks(crate::channel::MAX_FDS) {
        let mounts = chunk.iter().map(|(i, _)| *i).collect();
        let fds: Vec<BorrowedFd<'_>> = chunk.iter().map(|(_, fd)| fd.as_fd()).collect();
        channel.send_with_fds(&ToChild::BindSources { mounts }, &fds)?;
    }
    Ok(())
}

/// The first steps of every child: default signal handling and an empty mask (berth blocked
/// signals for its relay), and not dumpable until exec so the container cannot ptrace berth's
/// code or reach its fds (CVE-2016-9962). An init whose id maps an unprivileged berth writes
/// stays dumpable until they are written ([`NsPlan::dumpable_until_mapped`]).
fn child_prologue(keep_dumpable: bool) -> Result<()> {
    berth_sys::signal::reset_changed_dispositions()
        .map_err(|e| Error::sys("reset signal handlers", e))?;
    berth_sys::signal::unblock_all().map_err(|e| Error::sys("unblock signals", e))?;
    if !keep_dumpable {
        not_dumpable()?;
    }
    Ok(())
}

fn not_dumpable() -> Result<()> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| Error::sys("PR_SET_DUMPABLE", e))
}

/// Joins the namespaces the plan lists by fd (user first), for the general path.
fn join_namespaces(joins: &[(NamespaceType, OwnedFd)]) -> Result<()> {
    for (typ, fd) in joins {
        rustix::thread::move_into_link_name_space(fd.as_fd(), None).map_err(|e| {
            Error::sys(format!("join the {} namespace (setns)", typ.spec_name()), e)
        })?;
    }
    Ok(())
}

/// The general path (namespaces joined by path, or a time namespace): setns, unshare, and a fork
/// so pid/time namespaces take effect. Returns in the process that goes on as init.
fn enter_namespaces(ns: &NsPlan, channel: &Channel) -> Result<()> {
    if !ns.general {
        return Ok(());
    }
    join_namespaces(&ns.joins)?;
    if ns.unshare_flags != 0 {
        berth_sys::process::unshare(ns.unshare_flags)
            .map_err(|e| Error::sys("unshare the container's namespaces", e))?;
    }
    if ns.new_user {
        channel.send(&ToParent::NeedIdMap {
            pid: rustix::process::getpid().as_raw_nonzero().get(),
        })?;
        wait_for(channel, &ToChild::IdMapDone)?;
        not_dumpable()?;
    }
    if let Some(offsets) = &ns.time_offsets {
        std::fs::write("/proc/self/timens_offsets", offsets)
            .map_err(|e| Error::io("write", "/proc/self/timens_offsets", e))?;
    }
    if ns.fork_after {
        // A sibling, not a child: berth (our parent) waits for it directly.
        match berth_sys::process::fork_sibling()
            .map_err(|e| Error::sys("fork into the pid namespace", e))?
        {
            Forked::Child => {}
            Forked::Parent { pid, .. } => {
                let _ = channel.send(&ToParent::Pid { pid });
                exit_immediately(0);
            }
        }
    }
    Ok(())
}

fn become_root_in_userns(ns: &NsPlan) -> Result<()> {
    if ns.new_user {
        let root_u = rustix::process::Uid::from_raw(0);
        let root_g = rustix::process::Gid::from_raw(0);
        rustix::thread::set_thread_res_gid(root_g, root_g, root_g)
            .map_err(|e| Error::sys("setgid 0 in the user namespace", e))?;
        rustix::thread::set_thread_res_uid(root_u, root_u, root_u)
            .map_err(|e| Error::sys("setuid 0 in the user namespace", e))?;
    }
    Ok(())
}

/// The container's init. Never returns.
pub(crate) fn run_init(cfg: InitConfig<'_>, channel: Channel) -> ! {
    let mut reporter = Reporter::Channel(&channel);
    let err = match init_steps(cfg, &channel, &mut reporter) {
        Ok(e) | Err(e) => e,
    };
    reporter.report(&err);
    exit_immediately(1)
}

fn init_steps<'c>(
    cfg: InitConfig<'_>,
    channel: &'c Channel,
    reporter: &mut Reporter<'c>,
) -> Result<Error> {
    berth_sys::fd::close_inherited(cfg.lock_fd);
    if let Some(net) = &cfg.ns.prepared_net {
        // The new network namespace berth made ahead (crate::namespaces), before anything that
        // depends on it: sysctls, the sysfs mount, the hooks that configure it.
        rustix::thread::move_into_link_name_space(
            net.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| Error::sys("join the container's network namespace (setns)", e))?;
    }
    child_prologue(cfg.ns.dumpable_until_mapped)?;
    enter_namespaces(cfg.ns, channel)?;
    wait_for(channel, &ToChild::Continue)?;
    log::debug!("child process in init()");
    not_dumpable()?;
    rustix::process::setsid().map_err(|e| Error::sys("setsid", e))?;
    // berth moves us into our cgroups meanwhile (a v1 migration costs milliseconds of RCU
    // grace period): wait for that only where it matters.
    let made = std::cell::Cell::new(false);
    let cgroup_made = || -> Result<()> {
        if !made.get() {
            wait_for(channel, &ToChild::CgroupMade)?;
            made.set(true);
        }
        Ok(())
    };
    let joined = std::cell::Cell::new(false);
    let join = || -> Result<()> {
        cgroup_made()?;
        if !joined.get() {
            wait_for(channel, &ToChild::CgroupJoined)?;
            joined.set(true);
        }
        Ok(())
    };
    if cfg.ns.new_cgroup {
        join()?;
        berth_sys::process::unshare(libc::CLONE_NEWCGROUP as u64)
            .map_err(|e| Error::sys("unshare the cgroup namespace", e))?;
    }
    become_root_in_userns(cfg.ns)?;
    let setgroups_allowed = crate::namespaces::setgroups_allowed("self");
    let spec = cfg.spec;
    let process = spec
        .process
        .as_ref()
        .ok_or_else(|| Error::Init("process: missing".into()))?;

    if let Some(h) = &spec.hostname {
        rustix::system::sethostname(h.as_bytes())
            .map_err(|e| Error::sys(format!("sethostname {h:?}"), e))?;
    }
    if let Some(d) = &spec.domainname {
        rustix::system::setdomainname(d.as_bytes())
            .map_err(|e| Error::sys(format!("setdomainname {d:?}"), e))?;
    }
    if !cfg.no_new_keyring {
        berth_sys::process::join_session_keyring(&format!("_ses.{}", cfg.id)).map_err(|e| {
            Error::sys(
                "create the session keyring (use --no-new-keyring to skip)",
                e,
            )
        })?;
    }
    // The host's procfs is still at /proc: write through it before pivot_root.
    let proc = rustix::fs::open(
        "/proc",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open /proc", e))?;
    if let Some(adj) = process.oom_score_adj {
        // "self" is a symlink, which write_proc refuses: name our pid in that procfs instead.
        let me = rustix::fs::readlinkat(proc.as_fd(), "self", Vec::new())
            .map_err(|e| Error::sys("readlink /proc/self", e))?;
        let rel = format!("{}/oom_score_adj", me.to_string_lossy());
        write_proc(proc.as_fd(), &rel, &adj.to_string())?;
    }
    if let Some(linux) = &spec.linux {
        for (key, value) in &linux.sysctl {
            let rel = format!("sys/{}", key.replace('.', "/"));
            write_proc(proc.as_fd(), &rel, value)
                .map_err(|e| Error::Init(format!("linux.sysctl {key}={value}: {e}")))?;
        }
    }
    drop(proc);

    let bind_sources = std::mem::take(&mut *BIND_SOURCES.lock().unwrap_or_else(|e| e.into_inner()));
    let plan = rootfs::RootfsPlan {
        spec,
        rootfs: cfg.rootfs,
        bundle: cfg.bundle,
        userns: cfg.ns.in_userns,
        cgroupns: cfg.ns.new_cgroup,
        idmapped: &cfg.ns.idmapped,
        cgroup: cfg.cgroup,
        cgroup_ready: &cgroup_made,
        bind_sources: &bind_sources,
    };
    let root = rootfs::prepare(&plan)?;
    drop(bind_sources);
    let hooks = spec.hooks.clone().unwrap_or_default();
    let host_pid = crate::hooks::host_pid();
    if !hooks.prestart.is_empty() || !hooks.create_runtime.is_empty() {
        join()?;
        channel.send(&ToParent::CreateRuntimeHooks)?;
        wait_for(channel, &ToChild::HooksDone)?;
    }
    if !hooks.create_container.is_empty() {
        // As runc: createContainer hooks run with the rootfs as their working directory (hooks
        // written for runc use relative paths such as `./lib/...`).
        rustix::process::fchdir(&root).map_err(|e| Error::sys("chdir into rootfs", e))?;
        let state = crate::hooks::state_json(cfg.id, "creating", host_pid, cfg.bundle, spec);
        crate::hooks::run_all("createContainer", &hooks.create_container, &state)?;
    }
    rootfs::pivot(
        root.as_fd(),
        cfg.no_pivot,
        rootfs::shared_propagation(spec)?,
    )?;
    drop(root);

    let mut guard = false;
    match cfg.stdio {
        StdioPlan::Terminal {
            socket,
            size,
            clear_onlcr,
        } => {
            console::setup(&console::ConsolePlan {
                socket: &socket,
                size,
                clear_onlcr,
                mount_console: true,
                uid: process.user.uid,
            })?;
            ttys::setup(spec, &socket, process.user.uid)?;
        }
        StdioPlan::Pipes(pipes) => {
            for (n, fd) in pipes.iter().enumerate() {
                berth_sys::fd::dup_onto(fd.as_fd(), n as i32)
                    .map_err(|e| Error::sys("dup stdio pipe", e))?;
            }
        }
        StdioPlan::Inherit { guard: g } => guard = g,
    }
    rootfs::finalize(spec)?;
    process_limits(process)?;
    process::set_personality(spec.linux.as_ref().and_then(|l| l.personality.as_ref()))?;
    // As runc: a program that is not there fails `create`, not `start`. podman and containerd
    // show a create failure with the runtime's message (and podman exits 127 for "executable
    // file not found" / "no such file or directory"); a failed `start` is only "exit status 1".
    let program = process::look_path(&process.args[0], &process::environment(process))?;
    if program.is_absolute() {
        std::fs::metadata(&program).map_err(|e| {
            Error::Init(format!(
                "exec: {:?}: stat {}: {e}",
                process.args[0],
                program.display()
            ))
        })?;
    }

    join()?;
    log::debug!("init: closing the pipe to signal completion");
    channel.send(&ToParent::Ready)?;
    match cfg.gate {
        StartGate::Channel => wait_for(channel, &ToChild::Start)?,
        StartGate::Socket(listener) => {
            crate::run_init_detach_hook();
            let conn = accept_start(&listener)?;
            drop(listener);
            *reporter = Reporter::Start(conn);
        }
    }
    // As runc: startContainer hooks run last, as the process will (its identity, capabilities
    // and seccomp filter), right before the exec.
    let start_hooks = (!hooks.start_container.is_empty()).then(|| StartHooks {
        hooks: &hooks.start_container,
        state: crate::hooks::state_json(cfg.id, "created", host_pid, cfg.bundle, spec),
    });
    Ok(finish_and_exec(
        start_hooks,
        process,
        cfg.seccomp,
        guard,
        cfg.preserve_fds,
        setgroups_allowed,
    ))
}

/// Waits for `berth start` on the listening socket and reads its one byte.
fn accept_start(listener: &OwnedFd) -> Result<OwnedFd> {
    loop {
        match rustix::net::accept_with(listener, rustix::net::SocketFlags::CLOEXEC) {
            Ok(conn) => {
                let mut b = [0u8; 1];
                match rustix::io::read(&conn, &mut b) {
                    Ok(1) => return Ok(conn),
                    _ => continue, // a connection that did not say "start": ignore it
                }
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("wait for start", e)),
        }
    }
}

fn write_proc(proc: std::os::fd::BorrowedFd<'_>, rel: &str, value: &str) -> Result<()> {
    let fd = rustix::fs::openat2(
        proc,
        rel,
        OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::BENEATH
            | ResolveFlags::NO_SYMLINKS
            | ResolveFlags::NO_MAGICLINKS
            | ResolveFlags::NO_XDEV,
    )
    .map_err(|e| Error::io("open", format!("/proc/{rel}"), e.into()))?;
    rustix::io::write(&fd, value.as_bytes())
        .map_err(|e| Error::io("write", format!("/proc/{rel}"), e.into()))?;
    Ok(())
}

/// rlimits, personality, I/O priority, scheduler and CPU affinity.
fn process_limits(process: &Process) -> Result<()> {
    process::set_rlimits(process)?;
    if let Some(io) = &process.io_priority {
        let class = match io.class.as_str() {
            "IOPRIO_CLASS_RT" => 1,
            "IOPRIO_CLASS_BE" => 2,
            "IOPRIO_CLASS_IDLE" => 3,
            other => {
                return Err(Error::Init(format!(
                    "process.ioPriority.class: unknown class {other:?}"
                )));
            }
        };
        berth_sys::process::set_io_priority(class, io.priority)
            .map_err(|e| Error::sys("process.ioPriority: ioprio_set", e))?;
    }
    if let Some(s) = &process.scheduler {
        let policy = match s.policy.as_str() {
            "SCHED_OTHER" => 0,
            "SCHED_FIFO" => 1,
            "SCHED_RR" => 2,
            "SCHED_BATCH" => 3,
            "SCHED_ISO" => 4,
            "SCHED_IDLE" => 5,
            "SCHED_DEADLINE" => 6,
            other => {
                return Err(Error::Init(format!(
                    "process.scheduler.policy: unknown policy {other:?}"
                )));
            }
        };
        let mut flags = 0u64;
        for f in &s.flags {
            flags |= match f.as_str() {
                "SCHED_FLAG_RESET_ON_FORK" => 0x01,
                "SCHED_FLAG_RECLAIM" => 0x02,
                "SCHED_FLAG_DL_OVERRUN" => 0x04,
                "SCHED_FLAG_KEEP_POLICY" => 0x08,
                "SCHED_FLAG_KEEP_PARAMS" => 0x10,
                "SCHED_FLAG_UTIL_CLAMP_MIN" => 0x20,
                "SCHED_FLAG_UTIL_CLAMP_MAX" => 0x40,
                other => {
                    return Err(Error::Init(format!(
                        "process.scheduler.flags: unknown flag {other:?}"
                    )));
                }
            };
        }
        berth_sys::process::set_sched_attr(&berth_sys::process::SchedAttr {
            policy,
            flags,
            nice: s.nice,
            priority: s.priority as u32,
            runtime: s.runtime,
            deadline: s.deadline,
            period: s.period,
        })
        .map_err(|e| Error::sys("process.scheduler: sched_setattr", e))?;
    }
    Ok(())
}

/// startContainer hooks and the state they are given.
struct StartHooks<'h> {
    hooks: &'h [berth_spec::Hook],
    state: String,
}

/// Descriptors, identity, capabilities, `no_new_privs`, seccomp, startContainer hooks, exec
/// (runc's order; see [`process`]). Returns the error that stopped it.
fn finish_and_exec(
    start_hooks: Option<StartHooks<'_>>,
    process: &Process,
    seccomp: Option<&seccomp::Filter>,
    tty_guard: bool,
    preserve_fds: u32,
    setgroups_allowed: bool,
) -> Error {
    let run = || -> Result<Error> {
        let caps = process::CapPlan::from_process(process)?;
        process::apply_labels(process)?;
        if tty_guard {
            seccomp::load_tty_injection_guard()?;
        }
        // Before any filter: the profile may not allow close_range.
        process::prepare_fds(preserve_fds)?;
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we have it.
        if !process.no_new_privileges {
            if let Some(filter) = seccomp {
                filter.load()?;
            }
        }
        // As runc: the cwd is tried first with root's capabilities (a cwd only berth may enter
        // works) and, if that fails, again as the user (a cwd only the user may enter works).
        let cwd_entered = process::enter_cwd(&process.cwd).is_ok();
        caps.apply_bounding()?;
        process::set_identity(process, setgroups_allowed)?;
        caps.apply_rest()?;
        if !cwd_entered {
            process::enter_cwd(&process.cwd)?;
        }
        let env = process::environment(process);
        let program = process::look_path(&process.args[0], &env)?;
        if process.no_new_privileges {
            rustix::thread::set_no_new_privs(true)
                .map_err(|e| Error::sys("PR_SET_NO_NEW_PRIVS", e))?;
            // As late as possible: only the startContainer hooks and execve run under it.
            if let Some(filter) = seccomp {
                filter.load()?;
            }
        }
        if let Some(h) = start_hooks {
            crate::hooks::run_all("startContainer", h.hooks, &h.state)?;
        }
        Ok(process::exec(&program, process, &env))
    };
    match run() {
        Ok(e) | Err(e) => e,
    }
}

/// What a tenant (`berth exec`) process needs.
pub(crate) struct TenantConfig<'a> {
    pub process: &'a Process,
    /// `/proc/<init>/root`, opened before joining anything.
    pub root: OwnedFd,
    /// The init's namespaces to join, user first, mount last.
    pub joins: Vec<(NamespaceType, OwnedFd)>,
    /// A pid namespace was joined: fork so the program is inside it.
    pub fork_after: bool,
    pub stdio: StdioPlan,
    pub preserve_fds: u32,
    pub seccomp: Option<&'a seccomp::Filter>,
    pub setgroups_allowed: bool,
    pub in_userns: bool,
    /// The state directory's lock, inherited from berth: closed first thing.
    pub lock_fd: i32,
}

/// A process joining a running container. Never returns.
pub(crate) fn run_tenant(cfg: TenantConfig<'_>, channel: Channel) -> ! {
    let reporter = Reporter::Channel(&channel);
    let err = match tenant_steps(cfg, &channel) {
        Ok(e) | Err(e) => e,
    };
    reporter.report(&err);
    exit_immediately(1)
}

fn tenant_steps(cfg: TenantConfig<'_>, channel: &Channel) -> Result<Error> {
    berth_sys::fd::close_inherited(cfg.lock_fd);
    child_prologue(false)?;
    process::set_exec_affinity(cfg.process, process::AffinityStage::Initial)?;
    join_namespaces(&cfg.joins)?;
    rustix::process::fchdir(&cfg.root)
        .map_err(|e| Error::sys("chdir into the container's root", e))?;
    rustix::process::chroot(".").map_err(|e| Error::sys("chroot into the container's root", e))?;
    drop(cfg.root);
    rustix::process::chdir("/").map_err(|e| Error::sys("chdir /", e))?;
    if cfg.fork_after {
        // A sibling, not a child: berth (our parent) waits for it directly.
        match berth_sys::process::fork_sibling()
            .map_err(|e| Error::sys("fork into the pid namespace", e))?
        {
            Forked::Child => {}
            Forked::Parent { pid, .. } => {
                let _ = channel.send(&ToParent::Pid { pid });
                exit_immediately(0);
            }
        }
    }
    wait_for(channel, &ToChild::Continue)?;
    // The phase names runc logs (its bats suite greps `--debug` output for them).
    log::debug!("child process in init()");
    log::debug!("setns_init: about to exec");
    process::set_exec_affinity(cfg.process, process::AffinityStage::Final)?;
    rustix::process::setsid().map_err(|e| Error::sys("setsid", e))?;
    if cfg.in_userns {
        let (u, g) = (
            rustix::process::Uid::from_raw(0),
            rustix::process::Gid::from_raw(0),
        );
        rustix::thread::set_thread_res_gid(g, g, g)
            .map_err(|e| Error::sys("setgid 0 in the user namespace", e))?;
        rustix::thread::set_thread_res_uid(u, u, u)
            .map_err(|e| Error::sys("setuid 0 in the user namespace", e))?;
    }
    let process = cfg.process;
    let mut guard = false;
    match cfg.stdio {
        StdioPlan::Terminal {
            socket,
            size,
            clear_onlcr,
        } => {
            console::setup(&console::ConsolePlan {
                socket: &socket,
                size,
                clear_onlcr,
                mount_console: false,
                uid: process.user.uid,
            })?;
        }
        StdioPlan::Pipes(pipes) => {
            for (n, fd) in pipes.iter().enumerate() {
                berth_sys::fd::dup_onto(fd.as_fd(), n as i32)
                    .map_err(|e| Error::sys("dup stdio pipe", e))?;
            }
        }
        StdioPlan::Inherit { guard: g } => guard = g,
    }
    process_limits(process)?;
    Ok(finish_and_exec(
        None,
        process,
        cfg.seccomp,
        guard,
        cfg.preserve_fds,
        cfg.setgroups_allowed,
    ))
}
