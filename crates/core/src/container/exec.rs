//! `exec`: runs another process in a running container (runc's `setns` init).
//!
//! berth opens the init's namespace files and root before cloning; the child joins them, chroots
//! to the init's root, and (when the pid namespace differs from berth's) forks once so the
//! program is inside it. That fork uses `CLONE_PARENT`, so the program is berth's own child and
//! the foreground relay collects its exit status.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use berth_spec::{NamespaceType, Process, Status};
use berth_sys::process::{CloneOptions, Forked};
use rustix::fs::{Mode, OFlags};
use rustix::process::Pid;

use super::create::{check_terminal, flush_stdio, initial_size, write_pid_file};
use crate::channel::{Channel, ToChild, ToParent};
use crate::error::{Error, Result};
use crate::init::TenantConfig;
use crate::store::Store;

/// Flags of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// `--process`: a process JSON file; otherwise `args` and the overrides below apply to the
    /// container's own `process`.
    pub process_file: Option<PathBuf>,
    /// The command and its arguments.
    pub args: Vec<String>,
    /// `--tty`.
    pub tty: bool,
    /// `--console-socket`.
    pub console_socket: Option<PathBuf>,
    /// `--detach`.
    pub detach: bool,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--cwd`.
    pub cwd: Option<String>,
    /// `--env`, `KEY=value`.
    pub env: Vec<String>,
    /// `--user`, `UID[:GID]`.
    pub user: Option<String>,
    /// `--additional-gids`.
    pub additional_gids: Vec<u32>,
    /// `--cap`, added to every capability set.
    pub caps: Vec<String>,
    /// `--no-new-privs`.
    pub no_new_privs: bool,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// `--apparmor`: the process's AppArmor profile.
    pub apparmor: Option<String>,
    /// `--process-label`: the process's SELinux label.
    pub process_label: Option<String>,
    /// `--ignore-paused`: exec into a paused container too; the process starts frozen and
    /// runs after `resume` (berth releases the container's lock before it waits).
    pub ignore_paused: bool,
    /// `--cgroup`: sub-cgroups of the container's cgroup to put the process in
    /// (`PATH`, or `CTRL[,CTRL]:PATH` per v1 controller).
    pub cgroups: Vec<String>,
}

fn build_process(base: Option<&Process>, opts: &ExecOptions) -> Result<Process> {
    if let Some(file) = &opts.process_file {
        let mut p = berth_spec::load_process(file)?;
        if opts.tty {
            p.terminal = true;
        }
        return Ok(p);
    }
    let mut p = base.cloned().unwrap_or_default();
    p.args = opts.args.clone();
    p.terminal = opts.tty;
    p.console_size = None;
    if let Some(cwd) = &opts.cwd {
        p.cwd = cwd.clone();
    }
    for kv in &opts.env {
        let key = kv.split_once('=').map(|(k, _)| k).unwrap_or(kv);
        p.env
            .retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key));
        p.env.push(kv.clone());
    }
    if let Some(user) = &opts.user {
        let (u, g) = user.split_once(':').unwrap_or((user, ""));
        p.user.uid = u.parse().map_err(|_| {
            Error::Usage(format!(
                "--user {user:?}: parsing {u} as int for uid failed"
            ))
        })?;
        if !g.is_empty() {
            p.user.gid = g.parse().map_err(|_| {
                Error::Usage(format!(
                    "--user {user:?}: parsing {g} as int for gid failed"
                ))
            })?;
        }
    }
    if !opts.additional_gids.is_empty() {
        p.user.additional_gids = opts.additional_gids.clone();
    }
    if !opts.caps.is_empty() {
        let mut c = p.capabilities.clone().unwrap_or_default();
        for cap in &opts.caps {
            if berth_spec::validate::parse_capability(cap).is_none() {
                return Err(Error::Usage(format!("--cap {cap:?}: unknown capability")));
            }
        }
        // runc's sets; never the inheritable one (CVE-2022-29162).
        for set in [
            &mut c.bounding,
            &mut c.effective,
            &mut c.permitted,
            &mut c.ambient,
        ] {
            let v = set.get_or_insert_with(Vec::new);
            for cap in &opts.caps {
                let name = cap.clone();
                if !v.contains(&name) {
                    v.push(name);
                }
            }
        }
        p.capabilities = Some(c);
    }
    if opts.no_new_privs {
        p.no_new_privileges = true;
    }
    if opts.apparmor.is_some() {
        p.apparmor_profile = opts.apparmor.clone();
    }
    if opts.process_label.is_some() {
        p.selinux_label = opts.process_label.clone();
    }
    berth_spec::validate::validate_process(&p, "process")?;
    Ok(p)
}

/// `berth exec`. Returns the exit code berth should exit with.
pub fn exec(store: &Store, id: &str, opts: &ExecOptions) -> Result<i32> {
    let dir = store.open(id)?;
    let record = dir.load()?;
    match super::status(&dir, &record) {
        Status::Running | Status::Created => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            return Err(Error::State(
                "cannot exec in a paused container (use berth resume first)".into(),
            ));
        }
        _ => {
            return Err(Error::State(format!(
                "cannot exec in a stopped container: {id}"
            )));
        }
    }
    let process = build_process(record.spec.process.as_ref(), opts)?;
    let subs = berth_cgroups::SubCgroups::parse(&opts.cgroups)?;
    if !subs.is_empty() && record.cgroup.is_none() {
        return Err(Error::Usage(
            "--cgroup: the container has no cgroup of its own".into(),
        ));
    }
    crate::init::process::check(&process, None)?;
    let seccomp = crate::init::seccomp::compile_for(&record.spec)?;
    check_terminal(process.terminal, opts.detach, opts.console_socket.is_some())?;
    if process.terminal {
        initial_size(&process, None)?;
    }
    let init = record.pid;

    // The init's namespaces (those the config gave the container), and its root.
    let mut joins: Vec<(NamespaceType, OwnedFd)> = Vec::new();
    let mut fork_after = false;
    let mut in_userns = false;
    if let Some(linux) = &record.spec.linux {
        for ns in &linux.namespaces {
            let path = crate::procfs::ns_path(init, ns.typ.proc_name());
            let own = crate::procfs::ns_path(std::process::id() as i32, ns.typ.proc_name());
            if crate::procfs::ns_id(&path).is_some()
                && crate::procfs::ns_id(&path) == crate::procfs::ns_id(&own)
            {
                continue;
            }
            let fd = crate::namespaces::open_ns(
                &path,
                &format!("{} namespace of pid {init}", ns.typ.spec_name()),
            )?;
            match ns.typ {
                NamespaceType::Pid => fork_after = true,
                NamespaceType::User => in_userns = true,
                _ => {}
            }
            joins.push((ns.typ, fd));
        }
    }
    crate::namespaces::order_joins(&mut joins);
    let root_path = format!("/proc/{init}/root");
    let root = rustix::fs::open(
        root_path.as_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open", &root_path, e.into()))?;

    let (stdio, relay_parts) =
        super::create::plan_stdio(&process, opts.detach, opts.console_socket.as_deref())?;
    let (parent_channel, child_channel) = Channel::pair()?;
    flush_stdio();
    let forked = berth_sys::process::clone3(0, &CloneOptions::default())
        .map_err(|e| Error::sys("clone3 for exec", e))?;
    let child = match forked {
        Forked::Child => {
            drop(parent_channel);
            let cfg = TenantConfig {
                process: &process,
                root,
                joins,
                fork_after,
                stdio,
                preserve_fds: opts.preserve_fds,
                seccomp: seccomp.as_ref(),
                setgroups_allowed: crate::namespaces::setgroups_allowed(&init.to_string()),
                in_userns,
                lock_fd: dir.lock_fd_number(),
            };
            crate::init::run_tenant(cfg, child_channel)
        }
        Forked::Parent { pid, .. } => pid,
    };
    log::debug!("nsexec container setup: exec child cloned, pid {child}");
    // The child closed its copy of the lock; release ours too, so `resume`, `kill` and other
    // commands are not held up by a process that may wait (frozen, or for its terminal).
    drop(dir);
    drop(child_channel);
    drop(stdio);
    drop(joins);
    drop(root);
    let kill_child = |pid: i32| {
        let _ = berth_sys::signal::kill(pid, libc::SIGKILL);
        let _ = rustix::process::waitpid(Pid::from_raw(pid), rustix::process::WaitOptions::NOHANG);
    };
    let mut target = child;
    if !fork_after {
        if let Some(cg) = &record.cgroup {
            if let Err(e) = cg.add_pid_below(child, &subs) {
                kill_child(child);
                return Err(e.into());
            }
        }
        parent_channel.send(&ToChild::Continue)?;
    }
    loop {
        match parent_channel.recv::<ToParent>()? {
            Some(ToParent::Pid { pid }) => {
                let _ = rustix::process::waitpid(
                    Pid::from_raw(child),
                    rustix::process::WaitOptions::empty(),
                );
                target = pid;
                if let Some(cg) = &record.cgroup {
                    if let Err(e) = cg.add_pid_below(pid, &subs) {
                        kill_child(pid);
                        return Err(e.into());
                    }
                }
                parent_channel.send(&ToChild::Continue)?;
            }
            Some(ToParent::Error { message }) => {
                let _ = rustix::process::waitpid(
                    Pid::from_raw(target),
                    rustix::process::WaitOptions::empty(),
                );
                return Err(Error::Init(message));
            }
            Some(other) => {
                return Err(Error::Init(format!(
                    "unexpected message from exec child: {other:?}"
                )));
            }
            None => break,
        }
    }
    // The child that primed the cgroup migration (berth_cgroups::prime) is done by now.
    berth_sys::process::reap_silent_children();
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, target)?;
    }
    let Some(parts) = relay_parts else {
        return Ok(0);
    };
    let pid = Pid::from_raw(target).ok_or_else(|| Error::Init("exec pid 0".into()))?;
    let status = super::run::relay(parts, pid)?;
    Ok(status.code())
}
