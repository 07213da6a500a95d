//! The last steps before the user's program: rlimits, personality, CPU affinity, LSM labels,
//! identity, capabilities, `no_new_privs`, the working directory, the descriptor table, and
//! `execve`.
//!
//! Everything here that can be wrong in the config is also checked by [`check`] in berth's own
//! process before the clone, so bad input fails with the field's name and leaves nothing.
//!
//! Identity follows runc's `finalizeNamespace`: drop the bounding set while still privileged,
//! keep capabilities across the uid change (`PR_SET_KEEPCAPS`), set groups, gid and uid, then
//! set the inheritable, effective and permitted sets and raise the ambient ones. The
//! program's path is resolved before a late seccomp filter is loaded, so that only `execve`
//! runs under it.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use berth_spec::{Linux, Personality, Process, SpecError};
use caps::{CapSet, Capability, CapsHashSet};

use crate::error::{Error, Result};

/// Applies `process.rlimits`.
pub(crate) fn set_rlimits(process: &Process) -> Result<()> {
    for (i, r) in process.rlimits.iter().enumerate() {
        let resource = rlimit_resource(&r.typ).ok_or_else(|| {
            Error::Init(format!(
                "process.rlimits[{i}].type: unknown type {:?}",
                r.typ
            ))
        })?;
        let limit = rustix::process::Rlimit {
            current: (r.soft != u64::MAX).then_some(r.soft),
            maximum: (r.hard != u64::MAX).then_some(r.hard),
        };
        rustix::process::setrlimit(resource, limit).map_err(|e| {
            Error::sys(
                format!(
                    "process.rlimits[{i}]: setrlimit {} (soft {}, hard {})",
                    r.typ, r.soft, r.hard
                ),
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

fn cap_set(
    names: Option<&Vec<String>>,
    field: &str,
    supported: &CapsHashSet,
) -> Result<(CapsHashSet, Vec<String>)> {
    let mut set = CapsHashSet::new();
    let mut order = Vec::new();
    for (i, name) in names.into_iter().flatten().enumerate() {
        let cap: Capability = name.parse().map_err(|_| {
            Error::Spec(SpecError::invalid(
                format!("process.capabilities.{field}[{i}]"),
                format!("unknown capability {name:?}"),
            ))
        })?;
        if !supported.contains(&cap) {
            // runc does the same: a capability this kernel does not have cannot be granted.
            log::warn!(
                "process.capabilities.{field}[{i}]: {name} is not supported by this kernel; ignored"
            );
            continue;
        }
        if set.insert(cap) {
            order.push(name.clone());
        }
    }
    Ok((set, order))
}

/// The capability sets, resolved.
pub(crate) struct CapPlan {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

/// What berth's process knows of capabilities before the clone: the ones this kernel supports
/// and berth's own bounding set (which the init and `exec`'s process inherit unchanged).
struct HostCaps {
    supported: CapsHashSet,
    bounding: Option<u64>,
}

static HOST_CAPS: std::sync::OnceLock<HostCaps> = std::sync::OnceLock::new();

/// Reads [`HostCaps`] from the host's `/proc` (two reads, where probing takes a PR_CAPBSET_READ
/// per capability). Called by [`check`], in berth's process; the init inherits the result.
/// Nothing is read from a `/proc` inside the container, whose content the image could fake.
fn learn_host_caps() {
    HOST_CAPS.get_or_init(|| {
        let last = berth_sys::procfs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<u8>().ok());
        let supported = match last {
            Some(last) => caps::all()
                .into_iter()
                .filter(|c| c.index() <= last)
                .collect(),
            None => caps::runtime::thread_all_supported(),
        };
        let bounding = berth_sys::procfs::read_to_string("/proc/thread-self/status")
            .ok()
            .and_then(|status| {
                let hex = status
                    .lines()
                    .find_map(|l| l.strip_prefix("CapBnd:"))?
                    .trim();
                u64::from_str_radix(hex, 16).ok()
            });
        HostCaps {
            supported,
            bounding,
        }
    });
}

/// The capabilities this kernel supports (probed with prctl where berth did not learn them).
fn supported_caps() -> CapsHashSet {
    match HOST_CAPS.get() {
        Some(h) => h.supported.clone(),
        None => caps::runtime::thread_all_supported(),
    }
}

impl CapPlan {
    /// Resolves the names in `process.capabilities`; with none given, the process gets none
    /// (runtime-spec: absent sets are empty). Refuses what the kernel would refuse when the
    /// sets are applied, naming the field: an effective capability missing from the permitted
    /// set, an inheritable one missing from the bounding set. (An ambient capability missing
    /// from the permitted or inheritable set is skipped, as runc does: its default spec has
    /// ambient capabilities and no inheritable set.)
    pub(crate) fn from_process(process: &Process) -> Result<CapPlan> {
        let c = process.capabilities.clone().unwrap_or_default();
        let supported = supported_caps();
        let (bounding, _) = cap_set(c.bounding.as_ref(), "bounding", &supported)?;
        let (effective, eff_names) = cap_set(c.effective.as_ref(), "effective", &supported)?;
        let (permitted, _) = cap_set(c.permitted.as_ref(), "permitted", &supported)?;
        let (inheritable, inh_names) = cap_set(c.inheritable.as_ref(), "inheritable", &supported)?;
        let (ambient, _) = cap_set(c.ambient.as_ref(), "ambient", &supported)?;
        let missing = |names: &[String], set: &CapsHashSet| {
            names
                .iter()
                .find(|n| n.parse::<Capability>().is_ok_and(|c| !set.contains(&c)))
                .cloned()
        };
        if let Some(name) = missing(&eff_names, &permitted) {
            return Err(Error::Spec(SpecError::invalid(
                "process.capabilities.effective",
                format!(
                    "{name} is not in process.capabilities.permitted (the kernel refuses an effective capability that is not permitted)"
                ),
            )));
        }
        if let Some(name) = missing(&inh_names, &bounding) {
            return Err(Error::Spec(SpecError::invalid(
                "process.capabilities.inheritable",
                format!(
                    "{name} is not in process.capabilities.bounding (the kernel refuses an inheritable capability outside the bounding set)"
                ),
            )));
        }
        Ok(CapPlan {
            bounding,
            effective,
            permitted,
            inheritable,
            ambient,
        })
    }

    /// Drops everything not in the bounding set (needs CAP_SETPCAP: call while still root).
    pub(crate) fn apply_bounding(&self) -> Result<()> {
        // The bounding set learnt before the clone instead of a PR_CAPBSET_READ per capability.
        let present = HOST_CAPS.get().and_then(|h| h.bounding);
        for cap in caps::all() {
            let held = match present {
                Some(mask) => mask & (1u64 << cap.index()) != 0,
                None => caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false),
            };
            if !self.bounding.contains(&cap) && held {
                caps::drop(None, CapSet::Bounding, cap)
                    .map_err(|e| Error::Init(format!("drop {cap} from the bounding set: {e}")))?;
            }
        }
        Ok(())
    }

    /// Sets the inheritable, effective and permitted sets (after the uid change), then the
    /// ambient set.
    ///
    /// The order keeps every intermediate state legal for `capset(2)`: after a change from uid 0
    /// the effective set is empty and the permitted set is the old one, so the inheritable set
    /// (within the bounding set, checked by [`CapPlan::from_process`]) can be set first, then
    /// the effective set (a subset of the new permitted set, itself a subset of the old one),
    /// then the permitted set is narrowed.
    pub(crate) fn apply_rest(&self) -> Result<()> {
        caps::set(None, CapSet::Inheritable, &self.inheritable)
            .map_err(|e| Error::Init(format!("set inheritable capabilities: {e}")))?;
        caps::set(None, CapSet::Effective, &self.effective)
            .map_err(|e| Error::Init(format!("set effective capabilities: {e}")))?;
        caps::set(None, CapSet::Permitted, &self.permitted)
            .map_err(|e| Error::Init(format!("set permitted capabilities: {e}")))?;
        caps::clear(None, CapSet::Ambient)
            .map_err(|e| Error::Init(format!("clear ambient capabilities: {e}")))?;
        // The kernel refuses an ambient capability missing from the inheritable or permitted
        // set; runc goes on silently (its default spec has no inheritable set), so does berth.
        for cap in &self.ambient {
            if self.inheritable.contains(cap) && self.permitted.contains(cap) {
                caps::raise(None, CapSet::Ambient, *cap)
                    .map_err(|e| Error::Init(format!("raise the ambient capability {cap}: {e}")))?;
            } else {
                log::debug!("ambient capability {cap} is not inheritable and permitted: skipped");
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

/// Replaces the process with the user's program, found beforehand with [`look_path`] (so
/// nothing but `execve` runs after a late seccomp filter). Returns only the error.
pub(crate) fn exec(path: &Path, process: &Process, env: &[String]) -> Error {
    let program = &process.args[0];
    let to_c = |s: &str| CString::new(s).unwrap_or_default();
    let argv: Vec<CString> = process.args.iter().map(|a| to_c(a)).collect();
    let envp: Vec<CString> = env.iter().map(|e| to_c(e)).collect();
    let Ok(cpath) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return Error::Init(format!("exec: {program:?}: path contains NUL"));
    };
    let err = berth_sys::process::execve(&cpath, &argv, &envp);
    Error::Init(format!("exec: {program:?}: {err}"))
}

/// `linux.personality` as the number `personality(2)` takes. Every error names the field.
pub(crate) fn persona(p: &Personality) -> Result<u64> {
    let mut value: u64 = match p.domain.as_str() {
        "LINUX" => 0x0000,
        "LINUX32" => 0x0008,
        other => {
            return Err(Error::Spec(SpecError::invalid(
                "linux.personality.domain",
                format!("unknown domain {other:?} (LINUX or LINUX32)"),
            )));
        }
    };
    for (i, flag) in p.flags.iter().enumerate() {
        // <linux/personality.h>
        value |= match flag.as_str() {
            "UNAME26" => 0x002_0000,
            "ADDR_NO_RANDOMIZE" => 0x004_0000,
            "FDPIC_FUNCPTRS" => 0x008_0000,
            "MMAP_PAGE_ZERO" => 0x010_0000,
            "ADDR_COMPAT_LAYOUT" => 0x020_0000,
            "READ_IMPLIES_EXEC" => 0x040_0000,
            "ADDR_LIMIT_32BIT" => 0x080_0000,
            "SHORT_INODE" => 0x100_0000,
            "WHOLE_SECONDS" => 0x200_0000,
            "STICKY_TIMEOUTS" => 0x400_0000,
            "ADDR_LIMIT_3GB" => 0x800_0000,
            other => {
                return Err(Error::Spec(SpecError::invalid(
                    format!("linux.personality.flags[{i}]"),
                    format!("unknown personality flag {other:?}"),
                )));
            }
        };
    }
    Ok(value)
}

/// Applies `linux.personality` (runc 1.2's place: in the init, before the identity changes).
pub(crate) fn set_personality(p: Option<&Personality>) -> Result<()> {
    if let Some(p) = p {
        let value = persona(p)?;
        berth_sys::process::set_personality(value)
            .map_err(|e| Error::sys(format!("linux.personality: personality({value:#x})"), e))?;
    }
    Ok(())
}

fn cpu_list(list: &str, field: &str) -> Result<Vec<usize>> {
    let bad = || {
        Error::Spec(SpecError::invalid(
            field,
            format!("{list:?} is not a cpu list such as \"0-3,7\""),
        ))
    };
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let lo: usize = lo.trim().parse().map_err(|_| bad())?;
        let hi: usize = hi.trim().parse().map_err(|_| bad())?;
        if lo > hi || hi >= rustix::thread::CpuSet::MAX_CPU {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    Ok(cpus)
}

/// Which part of `process.execCPUAffinity` to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AffinityStage {
    /// `initial`: right after the clone, before the process is in the container's cgroup.
    Initial,
    /// `final`: once it is (when absent, the kernel's choice stands).
    Final,
}

/// Applies one stage of `process.execCPUAffinity` (exec'd processes only, as the spec says).
pub(crate) fn set_exec_affinity(process: &Process, stage: AffinityStage) -> Result<()> {
    let Some(aff) = &process.exec_cpu_affinity else {
        return Ok(());
    };
    let (list, field) = match stage {
        AffinityStage::Initial => (&aff.initial, "process.execCPUAffinity.initial"),
        AffinityStage::Final => (&aff.final_, "process.execCPUAffinity.final"),
    };
    let Some(list) = list.as_deref().filter(|l| !l.trim().is_empty()) else {
        return Ok(());
    };
    let cpus = cpu_list(list, field)?;
    berth_sys::process::set_cpu_affinity(&cpus)
        .map_err(|e| Error::sys(format!("{field} {list:?}: sched_setaffinity"), e))
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim_start().starts_with('Y'))
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

fn lsm_missing(field: &str, value: &str, lsm: &str) -> Error {
    Error::Spec(SpecError::invalid(
        field,
        format!("{value:?} asks for {lsm}, which is not enabled on this host"),
    ))
}

/// Checks that the host has the LSMs the labels ask for (AppArmor:
/// `/sys/module/apparmor/parameters/enabled`; SELinux: a mounted selinuxfs).
pub(crate) fn check_labels(process: &Process, linux: Option<&Linux>) -> Result<()> {
    if let Some(p) = process
        .apparmor_profile
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if !apparmor_enabled() {
            return Err(lsm_missing("process.apparmorProfile", p, "AppArmor"));
        }
    }
    if let Some(l) = process.selinux_label.as_deref().filter(|l| !l.is_empty()) {
        if !selinux_enabled() {
            return Err(lsm_missing("process.selinuxLabel", l, "SELinux"));
        }
    }
    if let Some(l) = linux
        .and_then(|l| l.mount_label.as_deref())
        .filter(|l| !l.is_empty())
    {
        if !selinux_enabled() {
            return Err(lsm_missing("linux.mountLabel", l, "SELinux"));
        }
        log::warn!("linux.mountLabel {l:?}: mount labels are not applied by berth yet");
    }
    Ok(())
}

/// Writes `value` to `/proc/<own pid>/attr/<rel>` of the procfs now at `/proc`, refusing
/// symlinks and crossing into another mount on the way (CVE-2025-52881).
fn write_attr(rel: &str, value: &str) -> Result<()> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let proc = rustix::fs::open(
        "/proc",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open /proc", e))?;
    let stat = rustix::fs::fstatfs(&proc).map_err(|e| Error::sys("statfs /proc", e))?;
    #[allow(clippy::unnecessary_cast)] // f_type is i64 on x86_64, u32 or i32 elsewhere
    if stat.f_type as i64 != libc::PROC_SUPER_MAGIC as i64 {
        return Err(Error::Init("/proc is not a procfs".into()));
    }
    let me = rustix::process::getpid().as_raw_nonzero().get();
    let path = format!("{me}/attr/{rel}");
    let fd = rustix::fs::openat2(
        &proc,
        path.as_str(),
        OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::BENEATH
            | ResolveFlags::NO_SYMLINKS
            | ResolveFlags::NO_MAGICLINKS
            | ResolveFlags::NO_XDEV,
    )
    .map_err(|e| Error::io("open", format!("/proc/{path}"), e.into()))?;
    rustix::io::write(&fd, value.as_bytes())
        .map_err(|e| Error::io("write", format!("/proc/{path}"), e.into()))?;
    Ok(())
}

/// Asks for the AppArmor profile and SELinux label to take effect at `execve` (both were
/// checked against the host by [`check_labels`]). Needs the container's `/proc`.
pub(crate) fn apply_labels(process: &Process) -> Result<()> {
    if let Some(p) = process
        .apparmor_profile
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let value = format!("exec {p}");
        // attr/apparmor/exec since Linux 5.8; attr/exec before.
        write_attr("apparmor/exec", &value)
            .or_else(|_| write_attr("exec", &value))
            .map_err(|e| Error::Init(format!("process.apparmorProfile {p:?}: {e}")))?;
    }
    if let Some(l) = process.selinux_label.as_deref().filter(|l| !l.is_empty()) {
        write_attr("exec", l)
            .map_err(|e| Error::Init(format!("process.selinuxLabel {l:?}: {e}")))?;
    }
    Ok(())
}

/// Everything about `process` (and `linux`) that the child would otherwise find wrong only
/// after the clone, checked in berth's process so that bad input leaves nothing behind:
/// capability names and sets, the personality, the LSM labels against the host.
pub(crate) fn check(process: &Process, linux: Option<&Linux>) -> Result<()> {
    learn_host_caps();
    CapPlan::from_process(process)?;
    if let Some(p) = linux.and_then(|l| l.personality.as_ref()) {
        persona(p)?;
    }
    if let Some(aff) = &process.exec_cpu_affinity {
        for (list, field) in [
            (&aff.initial, "process.execCPUAffinity.initial"),
            (&aff.final_, "process.execCPUAffinity.final"),
        ] {
            if let Some(list) = list {
                cpu_list(list, field)?;
            }
        }
    }
    check_labels(process, linux)
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
