//! The last steps before the user's program: rlimits, scheduling, identity, capabilities,
//! `no_new_privs`, the working directory, the descriptor table, and `execve`.
//!
//! Identity follows runc's `finalizeNamespace`: drop the bounding set while still privileged,
//! keep capabilities across the uid change (`PR_SET_KEEPCAPS`), set groups, gid and uid, then
//! set the effective, permitted and inheritable sets and raise the ambient ones.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use berth_spec::Process;
use caps::{CapSet, Capability, CapsHashSet};

use crate::error::{Error, Result};

/// Applies `process.rlimits`.
pub(crate) fn set_rlimits(process: &Process) -> Result<()> {
    for r in &process.rlimits {
        let resource = rlimit_resource(&r.typ)
            .ok_or_else(|| Error::Init(format!("process.rlimits: unknown type {:?}", r.typ)))?;
        let limit = rustix::process::Rlimit {
            current: (r.soft != u64::MAX).then_some(r.soft),
            maximum: (r.hard != u64::MAX).then_some(r.hard),
        };
        rustix::process::setrlimit(resource, limit).map_err(|e| {
            Error::sys(
                format!("setrlimit {} (soft {}, hard {})", r.typ, r.soft, r.hard),
                e,
            )
        })?;
    }
    Ok(())
}

fn rlimit_resource(name: &str) -> Option<rustix::process::Resource> {
    use rustix::process::Resource as R;
    Some(match name {
        "RLIMIT_CPU" => R::Cpu,
        "RLIMIT_FSIZE" => R::Fsize,
        "RLIMIT_DATA" => R::Data,
        "RLIMIT_STACK" => R::Stack,
        "RLIMIT_CORE" => R::Core,
        "RLIMIT_RSS" => R::Rss,
        "RLIMIT_NPROC" => R::Nproc,
        "RLIMIT_NOFILE" => R::Nofile,
        "RLIMIT_MEMLOCK" => R::Memlock,
        "RLIMIT_AS" => R::As,
        "RLIMIT_LOCKS" => R::Locks,
        "RLIMIT_SIGPENDING" => R::Sigpending,
        "RLIMIT_MSGQUEUE" => R::Msgqueue,
        "RLIMIT_NICE" => R::Nice,
        "RLIMIT_RTPRIO" => R::Rtprio,
        "RLIMIT_RTTIME" => R::Rttime,
        _ => return None,
    })
}

fn cap_set(names: Option<&Vec<String>>, field: &str) -> Result<CapsHashSet> {
    let mut set = CapsHashSet::new();
    for name in names.into_iter().flatten() {
        let cap: Capability = name.parse().map_err(|_| {
            Error::Init(format!(
                "process.capabilities.{field}: unknown capability {name:?}"
            ))
        })?;
        set.insert(cap);
    }
    Ok(set)
}

/// The capability sets, resolved.
pub(crate) struct CapPlan {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

impl CapPlan {
    /// Resolves the names in `process.capabilities`; with none given, the process gets none
    /// (runtime-spec: absent sets are empty).
    pub(crate) fn from_process(process: &Process) -> Result<CapPlan> {
        let c = process.capabilities.clone().unwrap_or_default();
        Ok(CapPlan {
            bounding: cap_set(c.bounding.as_ref(), "bounding")?,
            effective: cap_set(c.effective.as_ref(), "effective")?,
            permitted: cap_set(c.permitted.as_ref(), "permitted")?,
            inheritable: cap_set(c.inheritable.as_ref(), "inheritable")?,
            ambient: cap_set(c.ambient.as_ref(), "ambient")?,
        })
    }

    /// Drops everything not in the bounding set (needs CAP_SETPCAP: call while still root).
    pub(crate) fn apply_bounding(&self) -> Result<()> {
        for cap in caps::all() {
            if !self.bounding.contains(&cap)
                && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
            {
                caps::drop(None, CapSet::Bounding, cap)
                    .map_err(|e| Error::Init(format!("drop {cap} from the bounding set: {e}")))?;
            }
        }
        Ok(())
    }

    /// Sets the effective, permitted, inheritable and ambient sets (after the uid change).
    pub(crate) fn apply_rest(&self) -> Result<()> {
        // Permitted must be a superset of effective while we set them.
        caps::set(None, CapSet::Inheritable, &self.inheritable)
            .map_err(|e| Error::Init(format!("set inheritable capabilities: {e}")))?;
        let mut permitted = self.permitted.clone();
        permitted.extend(
            self.effective
                .iter()
                .copied()
                .filter(|c| self.permitted.contains(c)),
        );
        caps::set(
            None,
            CapSet::Effective,
            &self.effective.intersection(&permitted).copied().collect(),
        )
        .map_err(|e| Error::Init(format!("set effective capabilities: {e}")))?;
        caps::set(None, CapSet::Permitted, &permitted)
            .map_err(|e| Error::Init(format!("set permitted capabilities: {e}")))?;
        caps::clear(None, CapSet::Ambient)
            .map_err(|e| Error::Init(format!("clear ambient capabilities: {e}")))?;
        // The kernel refuses an ambient capability missing from the inheritable or permitted
        // set; runc goes on silently (its default spec has no inheritable set), so does berth.
        for cap in &self.ambient {
            if let Err(e) = caps::raise(None, CapSet::Ambient, *cap) {
                log::debug!("can't raise ambient capability {cap}: {e}");
            }
        }
        Ok(())
    }
}

/// Sets groups, gid and uid, keeping capabilities across the change so [`CapPlan::apply_rest`]
/// can set them afterwards. `setgroups` is skipped when the user namespace forbids it.
pub(crate) fn set_identity(process: &Process, setgroups_allowed: bool) -> Result<()> {
    let user = &process.user;
    rustix::thread::set_keep_capabilities(true).map_err(|e| Error::sys("PR_SET_KEEPCAPS", e))?;
    if setgroups_allowed {
        let groups: Vec<rustix::process::Gid> = user
            .additional_gids
            .iter()
            .map(|g| rustix::process::Gid::from_raw(*g))
            .collect();
        rustix::thread::set_thread_groups(&groups)
            .map_err(|e| Error::sys(format!("setgroups {:?}", user.additional_gids), e))?;
    }
    let gid = rustix::process::Gid::from_raw(user.gid);
    rustix::thread::set_thread_res_gid(gid, gid, gid)
        .map_err(|e| Error::sys(format!("setgid {}", user.gid), e))?;
    let uid = rustix::process::Uid::from_raw(user.uid);
    rustix::thread::set_thread_res_uid(uid, uid, uid)
        .map_err(|e| Error::sys(format!("setuid {}", user.uid), e))?;
    rustix::thread::set_keep_capabilities(false).map_err(|e| Error::sys("PR_SET_KEEPCAPS", e))?;
    if let Some(mask) = user.umask {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask));
    }
    Ok(())
}

/// Changes to `cwd` and checks it is reachable from the container's root: a cwd reached through
/// a leaked host fd (`/proc/self/fd/N`, CVE-2024-21626) makes `getcwd` fail, which is an error.
pub(crate) fn enter_cwd(cwd: &str) -> Result<()> {
    let cwd = if cwd.is_empty() { "/" } else { cwd };
    rustix::process::chdir(cwd).map_err(|e| {
        Error::Init(format!(
            "chdir to cwd ({cwd:?}) set in config.json failed: {e}"
        ))
    })?;
    let here = rustix::process::getcwd(Vec::new()).map_err(|e| {
        Error::Init(format!(
            "cwd ({cwd:?}) is outside the container: getcwd: {e}"
        ))
    })?;
    let here = here.to_string_lossy();
    if !here.starts_with('/') {
        return Err(Error::Init(format!(
            "cwd ({cwd:?}) is outside the container ({here})"
        )));
    }
    Ok(())
}

/// The environment for the program: `process.env`, plus `HOME` from the container's
/// `/etc/passwd` (or `/`) when it is missing, as runc does.
pub(crate) fn environment(process: &Process) -> Vec<String> {
    let mut env = process.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = home_of(process.user.uid).unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    env
}

fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
    })
}

/// Finds `args[0]` the way `execvp` does, with the program's own `PATH`.
pub(crate) fn look_path(program: &str, env: &[String]) -> Result<PathBuf> {
    let not_found = || {
        Error::Init(format!(
            "exec: {program:?}: executable file not found in $PATH"
        ))
    };
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(program);
        if rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK).is_ok()
            && std::fs::metadata(&candidate).is_ok_and(|m| m.is_file())
        {
            return Ok(candidate);
        }
    }
    Err(not_found())
}

/// Prepares the descriptor table for exec: fds 3..3+`preserve` stay (CLOEXEC cleared), every
/// other fd from 3 up is marked close-on-exec, so the program starts with exactly stdio and the
/// preserved fds. (Marking rather than closing keeps the channel that reports an exec failure.)
pub(crate) fn prepare_fds(preserve: u32) -> Result<()> {
    for fd in 3..3 + preserve {
        if let Some(b) = berth_sys::fd::borrow_raw(fd as i32) {
            berth_sys::process::clear_cloexec(b)
                .map_err(|e| Error::sys(format!("keep preserved fd {fd}"), e))?;
        }
    }
    berth_sys::process::cloexec_fds_from(3 + preserve).map_err(|e| Error::sys("close_range", e))?;
    Ok(())
}

/// Replaces the process with the user's program. Returns only the error.
pub(crate) fn exec(process: &Process, env: &[String]) -> Error {
    let program = &process.args[0];
    let path = match look_path(program, env) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let to_c = |s: &str| CString::new(s).unwrap_or_default();
    let argv: Vec<CString> = process.args.iter().map(|a| to_c(a)).collect();
    let envp: Vec<CString> = env.iter().map(|e| to_c(e)).collect();
    let Ok(cpath) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return Error::Init(format!("exec: {program:?}: path contains NUL"));
    };
    let err = berth_sys::process::execve(&cpath, &argv, &envp);
    Error::Init(format!("exec: {program:?}: {err}"))
}

/// Returns true if `fd` 0, 1 or 2 is a terminal.
pub(crate) fn any_stdio_is_tty() -> bool {
    [
        rustix::stdio::stdin(),
        rustix::stdio::stdout(),
        rustix::stdio::stderr(),
    ]
    .into_iter()
    .any(|fd| rustix::termios::isatty(fd.as_fd()))
}
