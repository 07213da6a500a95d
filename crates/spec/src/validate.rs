//! Checks on a parsed spec. Each error names the field as a JSON path
//! (`linux.namespaces[2].type`, `mounts[3].destination`, `process.consoleSize.width`).
//!
//! Validation is static: it looks only at the document, never at the host (paths are not
//! opened, namespaces not inspected), so it needs no privileges and can run before anything is
//! created. The order is: `ociVersion`, `process`, `root`, `linux.namespaces`,
//! `hostname`/`domainname`, `mounts`, `hooks`, the rest of `linux`; the first error found is
//! returned. After [`validate`] succeeds `core` may
//! rely on:
//!
//! - `process` present, `args` non-empty, no NUL in args/env/cwd, every `env` entry `KEY=value`,
//!   `cwd` absolute, `consoleSize` within u16 when `terminal` is set (ignored otherwise, as the
//!   spec requires), capability and rlimit names known ([`parse_capability`], [`parse_rlimit`]
//!   return `Some`), rlimit types unique with soft ≤ hard;
//! - `root.path` non-empty;
//! - mount destinations, masked and read-only paths absolute with no `..` component; device
//!   paths under `/dev`; mount options free of empty words and NUL;
//! - namespace types unique, namespace paths absolute; a new user namespace has uid and gid
//!   mappings (unless [`ValidateOptions::allow_unmapped_userns`]); mappings only with a user
//!   namespace; `timeOffsets` only with a new time namespace;
//! - sysctls only for keys the configured namespaces isolate (never the host's);
//! - every closed name set (propagation, seccomp, scheduler, I/O priority, personality) holds
//!   the value given.
//!
//! runc's leniencies berth does not copy: an unknown capability is an error here (runc warns and
//! drops it), and `consoleSize` above 65535 is an error (runc truncates it).

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

pub use crate::mount::{
    MountOptions, is_known_mount_option, known_mount_options, parse_mount_options,
};
pub use crate::names::{capability_name, parse_capability, parse_rlimit};

use crate::names;
use crate::{
    Hook, IdMapping, Linux, Mount, Namespace, NamespaceType, Process, Seccomp, Spec, SpecError,
};

type Result<T = ()> = std::result::Result<T, SpecError>;

/// The largest container id runc accepts, in bytes.
pub const MAX_ID_LEN: usize = 1024;

/// Choices that depend on how berth was invoked rather than on the document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidateOptions {
    /// Accept a new user namespace without `uidMappings`/`gidMappings`, because the caller
    /// writes the maps itself. Off by default: a new user namespace needs both.
    pub allow_unmapped_userns: bool,
}

/// Validates a whole config for `create`/`run`, with the default [`ValidateOptions`].
pub fn validate(spec: &Spec) -> Result {
    validate_with(spec, &ValidateOptions::default())
}

/// Validates a whole config for `create`/`run`.
pub fn validate_with(spec: &Spec, opts: &ValidateOptions) -> Result {
    if spec.oci_version.trim().is_empty() {
        return Err(SpecError::invalid(
            "ociVersion",
            "missing (any version is accepted)",
        ));
    }
    let process = spec
        .process
        .as_ref()
        .ok_or_else(|| SpecError::invalid("process", "missing: create needs a process"))?;
    validate_process(process, "process")?;

    let root = spec
        .root
        .as_ref()
        .ok_or_else(|| SpecError::invalid("root", "missing"))?;
    if root.path.as_os_str().is_empty() {
        return Err(SpecError::invalid("root.path", "must not be empty"));
    }
    no_nul_bytes("root.path", root.path.as_os_str().as_bytes())?;

    let empty = Linux::default();
    let linux = spec.linux.as_ref().unwrap_or(&empty);
    let ns = Namespaces::new(&linux.namespaces)?;

    for (field, value) in [
        ("hostname", &spec.hostname),
        ("domainname", &spec.domainname),
    ] {
        if let Some(v) = value.as_deref() {
            no_nul(field, v)?;
            if !v.is_empty() && ns.get(NamespaceType::Uts).is_none() {
                return Err(SpecError::invalid(
                    field,
                    "cannot be set without a UTS namespace",
                ));
            }
        }
    }

    for (i, m) in spec.mounts.iter().enumerate() {
        validate_mount(m, &format!("mounts[{i}]"))?;
    }

    if let Some(hooks) = &spec.hooks {
        let lists: [(&str, &[Hook]); 6] = [
            ("prestart", &hooks.prestart),
            ("createRuntime", &hooks.create_runtime),
            ("createContainer", &hooks.create_container),
            ("startContainer", &hooks.start_container),
            ("poststart", &hooks.poststart),
            ("poststop", &hooks.poststop),
        ];
        for (name, list) in lists {
            for (i, hook) in list.iter().enumerate() {
                validate_hook(hook, &format!("hooks.{name}[{i}]"))?;
            }
        }
    }

    validate_linux(linux, &ns, opts)
}

/// Validates a `process` object found at `field` (`process` in a config, or the document of
/// `exec --process`).
pub fn validate_process(process: &Process, field: &str) -> Result {
    if process.args.is_empty() {
        return Err(SpecError::invalid(
            format!("{field}.args"),
            "must not be empty",
        ));
    }
    for (i, arg) in process.args.iter().enumerate() {
        no_nul(&format!("{field}.args[{i}]"), arg)?;
    }
    for (i, env) in process.env.iter().enumerate() {
        validate_env(env, &format!("{field}.env[{i}]"))?;
    }
    let cwd_field = format!("{field}.cwd");
    no_nul(&cwd_field, &process.cwd)?;
    if !Path::new(&process.cwd).is_absolute() {
        return Err(SpecError::invalid(
            cwd_field,
            format!("{:?} is not an absolute path", process.cwd),
        ));
    }

    // The spec: consoleSize MUST be ignored unless terminal is set.
    if process.terminal {
        if let Some(size) = process.console_size {
            for (name, v) in [("height", size.height), ("width", size.width)] {
                if v > u64::from(u16::MAX) {
                    return Err(SpecError::invalid(
                        format!("{field}.consoleSize.{name}"),
                        format!("{v} is larger than {}", u16::MAX),
                    ));
                }
            }
        }
    }

    if let Some(umask) = process.user.umask {
        if umask > 0o777 {
            return Err(SpecError::invalid(
                format!("{field}.user.umask"),
                format!("{umask:#o} is not a umask"),
            ));
        }
    }

    if let Some(caps) = &process.capabilities {
        let sets = [
            ("bounding", &caps.bounding),
            ("effective", &caps.effective),
            ("inheritable", &caps.inheritable),
            ("permitted", &caps.permitted),
            ("ambient", &caps.ambient),
        ];
        for (set, list) in sets {
            for (i, cap) in list.iter().flatten().enumerate() {
                if parse_capability(cap).is_none() {
                    return Err(SpecError::invalid(
                        format!("{field}.capabilities.{set}[{i}]"),
                        format!("unknown capability {cap:?}"),
                    ));
                }
            }
        }
    }

    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, rl) in process.rlimits.iter().enumerate() {
        let f = format!("{field}.rlimits[{i}]");
        if parse_rlimit(&rl.typ).is_none() {
            return Err(SpecError::invalid(
                format!("{f}.type"),
                format!("unknown rlimit {:?}", rl.typ),
            ));
        }
        if let Some(first) = seen.insert(rl.typ.as_str(), i) {
            return Err(SpecError::invalid(
                format!("{f}.type"),
                format!(
                    "duplicate rlimit {:?} (also {field}.rlimits[{first}])",
                    rl.typ
                ),
            ));
        }
        if rl.soft > rl.hard {
            return Err(SpecError::invalid(
                format!("{f}.soft"),
                format!("soft limit {} is above the hard limit {}", rl.soft, rl.hard),
            ));
        }
    }

    if let Some(adj) = process.oom_score_adj {
        if !(-1000..=1000).contains(&adj) {
            return Err(SpecError::invalid(
                format!("{field}.oomScoreAdj"),
                format!("{adj} is outside -1000..=1000"),
            ));
        }
    }

    if let Some(io) = &process.io_priority {
        one_of(
            &format!("{field}.ioPriority.class"),
            &io.class,
            &names::IOPRIO_CLASSES,
        )?;
        if !(0..=7).contains(&io.priority) {
            return Err(SpecError::invalid(
                format!("{field}.ioPriority.priority"),
                format!("{} is outside 0..=7", io.priority),
            ));
        }
    }

    if let Some(s) = &process.scheduler {
        let f = format!("{field}.scheduler");
        one_of(&format!("{f}.policy"), &s.policy, &names::SCHED_POLICIES)?;
        for (i, flag) in s.flags.iter().enumerate() {
            one_of(&format!("{f}.flags[{i}]"), flag, &names::SCHED_FLAGS)?;
        }
        if !(-20..=19).contains(&s.nice) {
            return Err(SpecError::invalid(
                format!("{f}.nice"),
                format!("{} is outside -20..=19", s.nice),
            ));
        }
        let realtime = s.policy == "SCHED_FIFO" || s.policy == "SCHED_RR";
        if s.priority != 0 && !realtime {
            return Err(SpecError::invalid(
                format!("{f}.priority"),
                "only SCHED_FIFO and SCHED_RR take a priority",
            ));
        }
        if !(0..=99).contains(&s.priority) {
            return Err(SpecError::invalid(
                format!("{f}.priority"),
                format!("{} is outside 0..=99", s.priority),
            ));
        }
        if s.policy != "SCHED_DEADLINE" {
            for (name, v) in [
                ("runtime", s.runtime),
                ("deadline", s.deadline),
                ("period", s.period),
            ] {
                if v != 0 {
                    return Err(SpecError::invalid(
                        format!("{f}.{name}"),
                        "only SCHED_DEADLINE takes one",
                    ));
                }
            }
        }
    }

    if let Some(aff) = &process.exec_cpu_affinity {
        for (name, list) in [("initial", &aff.initial), ("final", &aff.final_)] {
            if let Some(list) = list {
                if !is_cpu_list(list) {
                    return Err(SpecError::invalid(
                        format!("{field}.execCPUAffinity.{name}"),
                        format!("{list:?} is not a cpu list such as \"0-3,7\""),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Checks a container id by runc's rule: non-empty, at most [`MAX_ID_LEN`] bytes, only ASCII
/// letters, digits and `_ + - .`, and neither `.` nor `..` (so it is one safe path component).
pub fn validate_id(id: &str) -> Result {
    let bad = |reason| {
        Err(SpecError::InvalidId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return Err(SpecError::EmptyId);
    }
    if id.len() > MAX_ID_LEN {
        return bad("longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return bad("must not be . or ..");
    }
    if id.contains('/') {
        return bad("must not contain /");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
    {
        return bad("only letters, digits and _ + - . are allowed");
    }
    Ok(())
}

/// The namespaces of a config, by type.
struct Namespaces<'a> {
    by_type: HashMap<NamespaceType, &'a Namespace>,
}

impl<'a> Namespaces<'a> {
    fn new(list: &'a [Namespace]) -> Result<Self> {
        let mut by_type = HashMap::new();
        let mut index = HashMap::new();
        for (i, ns) in list.iter().enumerate() {
            let f = format!("linux.namespaces[{i}]");
            if let Some(first) = index.insert(ns.typ, i) {
                return Err(SpecError::invalid(
                    format!("{f}.type"),
                    format!(
                        "duplicate {:?} namespace (also linux.namespaces[{first}])",
                        ns.typ.spec_name()
                    ),
                ));
            }
            if let Some(path) = &ns.path {
                let pf = format!("{f}.path");
                no_nul_bytes(&pf, path.as_os_str().as_bytes())?;
                if !path.is_absolute() {
                    return Err(SpecError::invalid(
                        pf,
                        format!("{} is not an absolute path", path.display()),
                    ));
                }
            }
            by_type.insert(ns.typ, ns);
        }
        Ok(Namespaces { by_type })
    }

    /// The entry for `typ`, new or joined.
    fn get(&self, typ: NamespaceType) -> Option<&'a Namespace> {
        self.by_type.get(&typ).copied()
    }

    /// Whether a new namespace of `typ` is made (an entry without a path).
    fn is_new(&self, typ: NamespaceType) -> bool {
        self.get(typ).is_some_and(|ns| ns.path.is_none())
    }
}

fn validate_linux(linux: &Linux, ns: &Namespaces<'_>, opts: &ValidateOptions) -> Result {
    // User namespace and mappings.
    let user = ns.get(NamespaceType::User);
    for (name, maps) in [
        ("uidMappings", &linux.uid_mappings),
        ("gidMappings", &linux.gid_mappings),
    ] {
        let f = format!("linux.{name}");
        if !maps.is_empty() && user.is_none() {
            return Err(SpecError::invalid(
                f,
                "mappings are set but no user namespace is configured",
            ));
        }
        if maps.is_empty() && ns.is_new(NamespaceType::User) && !opts.allow_unmapped_userns {
            return Err(SpecError::invalid(
                f,
                "required when a new user namespace is requested",
            ));
        }
        validate_mappings(maps, &f)?;
    }

    // Time namespace offsets.
    if !linux.time_offsets.is_empty() && !ns.is_new(NamespaceType::Time) {
        return Err(SpecError::invalid(
            "linux.timeOffsets",
            "only allowed with a new time namespace",
        ));
    }
    for (clock, off) in &linux.time_offsets {
        let f = format!("linux.timeOffsets.{clock}");
        if clock != "monotonic" && clock != "boottime" {
            return Err(SpecError::invalid(
                f,
                "only monotonic and boottime clocks have offsets",
            ));
        }
        if off.nanosecs >= 1_000_000_000 {
            return Err(SpecError::invalid(
                format!("{f}.nanosecs"),
                format!("{} is not below 10^9", off.nanosecs),
            ));
        }
    }

    for (i, dev) in linux.devices.iter().enumerate() {
        let f = format!("linux.devices[{i}]");
        one_of(&format!("{f}.type"), &dev.typ, &["c", "b", "u", "p"])?;
        let pf = format!("{f}.path");
        clean_absolute(&pf, &dev.path)?;
        let mut comps = dev.path.components();
        let under_dev = comps.next() == Some(Component::RootDir)
            && comps.next() == Some(Component::Normal("dev".as_ref()))
            && comps.next().is_some();
        if !under_dev {
            return Err(SpecError::invalid(
                pf,
                format!("{} is not under /dev", dev.path.display()),
            ));
        }
    }

    if let Some(res) = &linux.resources {
        for (i, rule) in res.devices.iter().enumerate() {
            let f = format!("linux.resources.devices[{i}]");
            if let Some(t) = &rule.typ {
                one_of(&format!("{f}.type"), t, &["a", "b", "c"])?;
            }
            // Letters other than r, w, m are ignored (with a warning where the rule is applied),
            // as runc does: configs written for runc carry them ("rwa" in runc's own tests).
        }
    }

    if let Some(prop) = &linux.rootfs_propagation {
        one_of("linux.rootfsPropagation", prop, &names::ROOTFS_PROPAGATIONS)?;
    }

    if let Some(seccomp) = &linux.seccomp {
        validate_seccomp(seccomp)?;
    }

    for (key, value) in &linux.sysctl {
        let f = format!("linux.sysctl.{key}");
        if key.is_empty() {
            return Err(SpecError::invalid("linux.sysctl", "a key is empty"));
        }
        no_nul(&f, key)?;
        no_nul(&f, value)?;
        validate_sysctl_namespace(key, &f, ns)?;
    }

    for (name, list) in [
        ("maskedPaths", &linux.masked_paths),
        ("readonlyPaths", &linux.readonly_paths),
    ] {
        for (i, p) in list.iter().enumerate() {
            clean_absolute(&format!("linux.{name}[{i}]"), Path::new(p))?;
        }
        if !list.is_empty() && ns.get(NamespaceType::Mount).is_none() {
            return Err(SpecError::invalid(
                format!("linux.{name}"),
                "needs a mount namespace",
            ));
        }
    }

    if let Some(p) = &linux.personality {
        one_of(
            "linux.personality.domain",
            &p.domain,
            &names::PERSONALITY_DOMAINS,
        )?;
    }
    Ok(())
}

fn validate_mappings(maps: &[IdMapping], field: &str) -> Result {
    for (i, m) in maps.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if m.size == 0 {
            return Err(SpecError::invalid(format!("{f}.size"), "must not be 0"));
        }
        if m.container_id.checked_add(m.size - 1).is_none()
            || m.host_id.checked_add(m.size - 1).is_none()
        {
            return Err(SpecError::invalid(
                format!("{f}.size"),
                "the range goes past 2^32-1",
            ));
        }
    }
    Ok(())
}

fn validate_mount(m: &Mount, field: &str) -> Result {
    clean_absolute(&format!("{field}.destination"), &m.destination)?;
    if let Some(t) = &m.typ {
        no_nul(&format!("{field}.type"), t)?;
    }
    if let Some(s) = &m.source {
        no_nul_bytes(&format!("{field}.source"), s.as_os_str().as_bytes())?;
    }
    for (j, opt) in m.options.iter().enumerate() {
        let f = format!("{field}.options[{j}]");
        if opt.is_empty() {
            return Err(SpecError::invalid(f, "empty option"));
        }
        no_nul(&f, opt)?;
    }
    if m.is_bind() && m.source.as_ref().is_none_or(|s| s.as_os_str().is_empty()) {
        return Err(SpecError::invalid(
            format!("{field}.source"),
            "a bind mount needs a source",
        ));
    }
    match (m.uid_mappings.is_empty(), m.gid_mappings.is_empty()) {
        (false, true) => {
            return Err(SpecError::invalid(
                format!("{field}.gidMappings"),
                "required with uidMappings",
            ));
        }
        (true, false) => {
            return Err(SpecError::invalid(
                format!("{field}.uidMappings"),
                "required with gidMappings",
            ));
        }
        _ => {}
    }
    validate_mappings(&m.uid_mappings, &format!("{field}.uidMappings"))?;
    validate_mappings(&m.gid_mappings, &format!("{field}.gidMappings"))
}

fn validate_hook(hook: &Hook, field: &str) -> Result {
    let pf = format!("{field}.path");
    no_nul_bytes(&pf, hook.path.as_os_str().as_bytes())?;
    if !hook.path.is_absolute() {
        return Err(SpecError::invalid(
            pf,
            format!(
                "{:?} is not an absolute path",
                hook.path.display().to_string()
            ),
        ));
    }
    for (i, arg) in hook.args.iter().enumerate() {
        no_nul(&format!("{field}.args[{i}]"), arg)?;
    }
    for (i, env) in hook.env.iter().enumerate() {
        validate_env(env, &format!("{field}.env[{i}]"))?;
    }
    if let Some(t) = hook.timeout {
        if t <= 0 {
            return Err(SpecError::invalid(
                format!("{field}.timeout"),
                format!("{t} is not a positive number of seconds"),
            ));
        }
    }
    Ok(())
}

fn validate_seccomp(s: &Seccomp) -> Result {
    let f = "linux.seccomp";
    one_of(
        &format!("{f}.defaultAction"),
        &s.default_action,
        &names::SECCOMP_ACTIONS,
    )?;
    if s.default_action == "SCMP_ACT_NOTIFY" {
        return Err(SpecError::invalid(
            format!("{f}.defaultAction"),
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    for (i, a) in s.architectures.iter().enumerate() {
        one_of(&format!("{f}.architectures[{i}]"), a, &names::SECCOMP_ARCHS)?;
    }
    for (i, flag) in s.flags.iter().enumerate() {
        one_of(&format!("{f}.flags[{i}]"), flag, &names::SECCOMP_FLAGS)?;
    }
    if let Some(p) = &s.listener_path {
        no_nul_bytes(&format!("{f}.listenerPath"), p.as_os_str().as_bytes())?;
    }
    for (i, rule) in s.syscalls.iter().enumerate() {
        let rf = format!("{f}.syscalls[{i}]");
        if rule.names.is_empty() {
            return Err(SpecError::invalid(
                format!("{rf}.names"),
                "must not be empty",
            ));
        }
        for (j, name) in rule.names.iter().enumerate() {
            if name.is_empty() {
                return Err(SpecError::invalid(
                    format!("{rf}.names[{j}]"),
                    "empty syscall name",
                ));
            }
            no_nul(&format!("{rf}.names[{j}]"), name)?;
        }
        one_of(
            &format!("{rf}.action"),
            &rule.action,
            &names::SECCOMP_ACTIONS,
        )?;
        if rule.action == "SCMP_ACT_NOTIFY"
            && s.listener_path
                .as_ref()
                .is_none_or(|p| p.as_os_str().is_empty())
        {
            return Err(SpecError::invalid(
                format!("{f}.listenerPath"),
                format!("required: {rf} uses SCMP_ACT_NOTIFY"),
            ));
        }
        for (j, arg) in rule.args.iter().enumerate() {
            let af = format!("{rf}.args[{j}]");
            if arg.index > 5 {
                return Err(SpecError::invalid(
                    format!("{af}.index"),
                    format!("{} is above 5", arg.index),
                ));
            }
            one_of(&format!("{af}.op"), &arg.op, &names::SECCOMP_OPERATORS)?;
        }
    }
    Ok(())
}

/// Refuses a sysctl the container's namespaces do not isolate (it would change the host), with
/// runc's classification.
fn validate_sysctl_namespace(key: &str, field: &str, ns: &Namespaces<'_>) -> Result {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let k = key.replace('/', ".");
    let need = |typ: NamespaceType, what: &str| {
        if ns.get(typ).is_some() {
            Ok(())
        } else {
            Err(SpecError::invalid(
                field,
                format!("not allowed in the host's {what} namespace"),
            ))
        }
    };
    if IPC.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
        return need(NamespaceType::Ipc, "ipc");
    }
    if k.starts_with("net.") {
        return need(NamespaceType::Network, "network");
    }
    if ns.get(NamespaceType::Uts).is_some() {
        match k.as_str() {
            "kernel.domainname" => return Ok(()),
            "kernel.hostname" => {
                return Err(SpecError::invalid(
                    field,
                    "conflicts with the hostname field; set that",
                ));
            }
            _ => {}
        }
    }
    Err(SpecError::invalid(
        field,
        "not in a separate kernel namespace",
    ))
}

fn validate_env(env: &str, field: &str) -> Result {
    no_nul(field, env)?;
    match env.split_once('=') {
        None => Err(SpecError::invalid(
            field,
            format!("{env:?} is not KEY=value"),
        )),
        Some(("", _)) => Err(SpecError::invalid(
            field,
            format!("{env:?} has an empty name"),
        )),
        Some(_) => Ok(()),
    }
}

/// `a`, `a-b` (a ≤ b), comma separated, non-empty.
fn is_cpu_list(list: &str) -> bool {
    let num = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u32>().is_ok()
    };
    !list.is_empty()
        && list.split(',').all(|part| match part.split_once('-') {
            None => num(part),
            Some((a, b)) => num(a) && num(b) && a.parse::<u32>().ok() <= b.parse::<u32>().ok(),
        })
}

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(SpecError::invalid(
            field,
            format!("unknown value {value:?} (one of {})", allowed.join(", ")),
        ))
    }
}

fn no_nul(field: &str, s: &str) -> Result {
    no_nul_bytes(field, s.as_bytes())
}

fn no_nul_bytes(field: &str, s: &[u8]) -> Result {
    if s.contains(&0) {
        Err(SpecError::invalid(field, "contains a NUL byte"))
    } else {
        Ok(())
    }
}

/// Absolute, no NUL, no `..` component (which could climb out of the rootfs).
fn clean_absolute(field: &str, path: &Path) -> Result {
    no_nul_bytes(field, path.as_os_str().as_bytes())?;
    if !path.is_absolute() {
        return Err(SpecError::invalid(
            field,
            format!("{:?} is not an absolute path", path.display().to_string()),
        ));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(SpecError::invalid(
            field,
            format!("{:?} has a .. component", path.display().to_string()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{
        Capabilities, ConsoleSize, CpuAffinity, Device, DeviceCgroup, Hooks, IoPriority,
        Personality, Rlimit, Root, Scheduler, SeccompArg, SeccompSyscall, TimeOffset, default_spec,
    };

    fn base() -> Spec {
        default_spec(false)
    }

    fn process(s: &mut Spec) -> &mut Process {
        s.process.as_mut().expect("process")
    }

    fn linux(s: &mut Spec) -> &mut Linux {
        s.linux.get_or_insert_with(Linux::default)
    }

    fn add_ns(s: &mut Spec, typ: NamespaceType, path: Option<&str>) {
        linux(s).namespaces.push(Namespace {
            typ,
            path: path.map(PathBuf::from),
        });
    }

    fn drop_ns(s: &mut Spec, typ: NamespaceType) {
        linux(s).namespaces.retain(|n| n.typ != typ);
    }

    fn userns(s: &mut Spec) {
        add_ns(s, NamespaceType::User, None);
        let m = vec![IdMapping {
            container_id: 0,
            host_id: 100_000,
            size: 65_536,
        }];
        linux(s).uid_mappings = m.clone();
        linux(s).gid_mappings = m;
    }

    fn seccomp(s: &mut Spec) -> &mut Seccomp {
        linux(s).seccomp.get_or_insert_with(|| Seccomp {
            default_action: "SCMP_ACT_ERRNO".into(),
            architectures: vec!["SCMP_ARCH_X86_64".into()],
            syscalls: vec![SeccompSyscall {
                names: vec!["read".into()],
                action: "SCMP_ACT_ALLOW".into(),
                args: vec![SeccompArg {
                    index: 0,
                    value: 1,
                    value_two: 0,
                    op: "SCMP_CMP_EQ".into(),
                }],
                ..SeccompSyscall::default()
            }],
            ..Seccomp::default()
        })
    }

    fn hooks(s: &mut Spec) -> &mut Hooks {
        s.hooks.get_or_insert_with(Hooks::default)
    }

    fn hook(path: &str) -> Hook {
        Hook {
            path: path.into(),
            ..Hook::default()
        }
    }

    fn mount(dest: &str) -> Mount {
        Mount {
            destination: dest.into(),
            typ: Some("tmpfs".into()),
            source: Some("tmpfs".into()),
            ..Mount::default()
        }
    }

    /// Each case breaks exactly one rule; the error must name `field` as its JSON path.
    type Case = (&'static str, fn(&mut Spec));

    const CASES: &[Case] = &[
        ("ociVersion", |s| s.oci_version.clear()),
        ("process", |s| s.process = None),
        ("process.args", |s| process(s).args.clear()),
        ("process.args[1]", |s| process(s).args.push("a\0b".into())),
        ("process.env[2]", |s| process(s).env.push("NOEQUALS".into())),
        ("process.env[2]", |s| process(s).env.push("=value".into())),
        ("process.env[2]", |s| process(s).env.push("A=\0".into())),
        ("process.cwd", |s| process(s).cwd = "relative/dir".into()),
        ("process.cwd", |s| process(s).cwd = String::new()),
        ("process.cwd", |s| process(s).cwd = "/a\0".into()),
        ("process.consoleSize.width", |s| {
            process(s).console_size = Some(ConsoleSize {
                height: 24,
                width: 65_536,
            })
        }),
        ("process.consoleSize.height", |s| {
            process(s).console_size = Some(ConsoleSize {
                height: 100_000,
                width: 80,
            })
        }),
        ("process.user.umask", |s| {
            process(s).user.umask = Some(0o1000)
        }),
        ("process.capabilities.bounding[3]", |s| {
            process(s)
                .capabilities
                .as_mut()
                .expect("caps")
                .bounding
                .as_mut()
                .expect("set")
                .push("CAP_FOO".into())
        }),
        ("process.capabilities.inheritable[0]", |s| {
            process(s).capabilities.as_mut().expect("caps").inheritable =
                Some(vec!["cap_chown".into()])
        }),
        ("process.capabilities.ambient[1]", |s| {
            process(s).capabilities = Some(Capabilities {
                ambient: Some(vec!["CAP_KILL".into(), "CAP_NOPE".into()]),
                ..Capabilities::default()
            })
        }),
        ("process.rlimits[1].type", |s| {
            process(s).rlimits.push(Rlimit {
                typ: "RLIMIT_FOO".into(),
                hard: 1,
                soft: 1,
            })
        }),
        ("process.rlimits[1].type", |s| {
            process(s).rlimits.push(Rlimit {
                typ: "RLIMIT_NOFILE".into(),
                hard: 1,
                soft: 1,
            })
        }),
        ("process.rlimits[0].soft", |s| {
            process(s).rlimits[0].soft = 2048
        }),
        ("process.oomScoreAdj", |s| {
            process(s).oom_score_adj = Some(1001)
        }),
        ("process.ioPriority.class", |s| {
            process(s).io_priority = Some(IoPriority {
                class: "IOPRIO_CLASS_FOO".into(),
                priority: 0,
            })
        }),
        ("process.ioPriority.priority", |s| {
            process(s).io_priority = Some(IoPriority {
                class: "IOPRIO_CLASS_BE".into(),
                priority: 8,
            })
        }),
        ("process.ioPriority.priority", |s| {
            process(s).io_priority = Some(IoPriority {
                class: "IOPRIO_CLASS_BE".into(),
                priority: -1,
            })
        }),
        ("process.scheduler.policy", |s| {
            process(s).scheduler = Some(Scheduler {
                policy: "SCHED_FOO".into(),
                ..Scheduler::default()
            })
        }),
        ("process.scheduler.flags[0]", |s| {
            process(s).scheduler = Some(Scheduler {
                policy: "SCHED_OTHER".into(),
                flags: vec!["SCHED_FLAG_NOPE".into()],
                ..Scheduler::default()
            })
        }),
        ("process.scheduler.nice", |s| {
            process(s).scheduler = Some(Scheduler {
                policy: "SCHED_OTHER".into(),
                nice: 20,
                ..Scheduler::default()
            })
        }),
        ("process.scheduler.priority", |s| {
            process(s).scheduler = Some(Scheduler {
                policy: "SCHED_OTHER".into(),
                priority: 5,
                ..Scheduler::default()
            })
        }),
        ("process.scheduler.runtime", |s| {
            process(s).scheduler = Some(Scheduler {
                policy: "SCHED_FIFO".into(),
                priority: 5,
                runtime: 1,
                ..Scheduler::default()
            })
        }),
        ("process.execCPUAffinity.initial", |s| {
            process(s).exec_cpu_affinity = Some(CpuAffinity {
                initial: Some("3-1".into()),
                final_: None,
            })
        }),
        ("process.execCPUAffinity.final", |s| {
            process(s).exec_cpu_affinity = Some(CpuAffinity {
                initial: None,
                final_: Some("0,,1".into()),
            })
        }),
        ("root", |s| s.root = None),
        ("root.path", |s| {
            s.root = Some(Root {
                path: PathBuf::new(),
                readonly: false,
            })
        }),
        ("hostname", |s| drop_ns(s, NamespaceType::Uts)),
        ("domainname", |s| {
            s.hostname = None;
            s.domainname = Some("example.org".into());
            drop_ns(s, NamespaceType::Uts);
        }),
        ("mounts[3].destination", |s| {
            s.mounts[3].destination = "dev/shm".into()
        }),
        ("mounts[3].destination", |s| {
            s.mounts[3].destination = "/dev/../etc".into()
        }),
        ("mounts[3].destination", |s| {
            s.mounts[3].destination = "/../../etc".into()
        }),
        ("mounts[3].destination", |s| {
            s.mounts[3].destination = "/dev/s\0hm".into()
        }),
        ("mounts[7].options[1]", |s| {
            s.mounts.push(Mount {
                options: vec!["ro".into(), String::new()],
                ..mount("/x")
            })
        }),
        ("mounts[7].options[0]", |s| {
            s.mounts.push(Mount {
                options: vec!["mode=\0".into()],
                ..mount("/x")
            })
        }),
        ("mounts[7].source", |s| {
            s.mounts.push(Mount {
                options: vec!["rbind".into()],
                source: None,
                ..mount("/x")
            })
        }),
        ("mounts[7].source", |s| {
            s.mounts.push(Mount {
                typ: Some("bind".into()),
                source: Some(PathBuf::new()),
                ..mount("/x")
            })
        }),
        ("mounts[7].gidMappings", |s| {
            s.mounts.push(Mount {
                options: vec!["bind".into(), "idmap".into()],
                source: Some("/src".into()),
                uid_mappings: vec![IdMapping {
                    container_id: 0,
                    host_id: 1000,
                    size: 1,
                }],
                ..mount("/x")
            })
        }),
        ("mounts[7].uidMappings[0].size", |s| {
            let m = vec![IdMapping {
                container_id: 0,
                host_id: 1000,
                size: 0,
            }];
            s.mounts.push(Mount {
                uid_mappings: m.clone(),
                gid_mappings: m,
                source: Some("/s".into()),
                ..mount("/x")
            })
        }),
        ("hooks.prestart[0].path", |s| {
            hooks(s).prestart.push(hook("relative/hook"))
        }),
        ("hooks.createRuntime[1].path", |s| {
            hooks(s).create_runtime.extend([hook("/bin/ok"), hook("")]);
        }),
        ("hooks.poststart[0].timeout", |s| {
            hooks(s).poststart.push(Hook {
                timeout: Some(0),
                ..hook("/bin/true")
            })
        }),
        ("hooks.poststop[0].timeout", |s| {
            hooks(s).poststop.push(Hook {
                timeout: Some(-5),
                ..hook("/bin/true")
            })
        }),
        ("hooks.createContainer[0].env[0]", |s| {
            hooks(s).create_container.push(Hook {
                env: vec!["X".into()],
                ..hook("/bin/true")
            })
        }),
        ("hooks.startContainer[0].args[1]", |s| {
            hooks(s).start_container.push(Hook {
                args: vec!["true".into(), "\0".into()],
                ..hook("/bin/true")
            })
        }),
        ("linux.namespaces[5].type", |s| {
            add_ns(s, NamespaceType::Pid, None)
        }),
        ("linux.namespaces[5].path", |s| {
            add_ns(s, NamespaceType::Cgroup, Some("proc/1/ns/cgroup"))
        }),
        ("linux.uidMappings", |s| {
            userns(s);
            linux(s).uid_mappings.clear();
        }),
        ("linux.gidMappings", |s| {
            userns(s);
            linux(s).gid_mappings.clear();
        }),
        ("linux.uidMappings", |s| {
            linux(s).uid_mappings = vec![IdMapping {
                container_id: 0,
                host_id: 1000,
                size: 1,
            }];
        }),
        ("linux.gidMappings", |s| {
            linux(s).gid_mappings = vec![IdMapping {
                container_id: 0,
                host_id: 1000,
                size: 1,
            }];
        }),
        ("linux.uidMappings[0].size", |s| {
            userns(s);
            linux(s).uid_mappings[0].size = 0;
        }),
        ("linux.gidMappings[0].size", |s| {
            userns(s);
            linux(s).gid_mappings[0] = IdMapping {
                container_id: u32::MAX,
                host_id: 0,
                size: 2,
            };
        }),
        ("linux.timeOffsets", |s| {
            linux(s).time_offsets.insert(
                "monotonic".into(),
                TimeOffset {
                    secs: 1,
                    nanosecs: 0,
                },
            );
        }),
        ("linux.timeOffsets", |s| {
            add_ns(s, NamespaceType::Time, Some("/proc/1/ns/time"));
            linux(s).time_offsets.insert(
                "boottime".into(),
                TimeOffset {
                    secs: 1,
                    nanosecs: 0,
                },
            );
        }),
        ("linux.timeOffsets.realtime", |s| {
            add_ns(s, NamespaceType::Time, None);
            linux(s).time_offsets.insert(
                "realtime".into(),
                TimeOffset {
                    secs: 1,
                    nanosecs: 0,
                },
            );
        }),
        ("linux.timeOffsets.boottime.nanosecs", |s| {
            add_ns(s, NamespaceType::Time, None);
            linux(s).time_offsets.insert(
                "boottime".into(),
                TimeOffset {
                    secs: 1,
                    nanosecs: 1_000_000_000,
                },
            );
        }),
        ("linux.devices[0].type", |s| {
            linux(s).devices.push(device("x", "/dev/fuse"))
        }),
        ("linux.devices[0].path", |s| {
            linux(s).devices.push(device("c", "/etc/fuse"))
        }),
        ("linux.devices[0].path", |s| {
            linux(s).devices.push(device("c", "/dev/../etc/passwd"))
        }),
        ("linux.devices[0].path", |s| {
            linux(s).devices.push(device("c", "dev/fuse"))
        }),
        ("linux.devices[0].path", |s| {
            linux(s).devices.push(device("c", "/dev"))
        }),
        ("linux.resources.devices[1].type", |s| {
            cgroup_rules(s).push(DeviceCgroup {
                allow: true,
                typ: Some("x".into()),
                ..DeviceCgroup::default()
            })
        }),
        ("linux.rootfsPropagation", |s| {
            linux(s).rootfs_propagation = Some("rsharedd".into())
        }),
        ("linux.seccomp.defaultAction", |s| {
            seccomp(s).default_action = "SCMP_ACT_FOO".into()
        }),
        ("linux.seccomp.defaultAction", |s| {
            let sc = seccomp(s);
            sc.default_action = "SCMP_ACT_NOTIFY".into();
            sc.listener_path = Some("/run/l.sock".into());
        }),
        ("linux.seccomp.architectures[0]", |s| {
            seccomp(s).architectures[0] = "SCMP_ARCH_Z80".into()
        }),
        ("linux.seccomp.flags[0]", |s| {
            seccomp(s).flags.push("SECCOMP_FILTER_FLAG_NOPE".into())
        }),
        ("linux.seccomp.syscalls[0].action", |s| {
            seccomp(s).syscalls[0].action = "ALLOW".into()
        }),
        ("linux.seccomp.syscalls[0].names", |s| {
            seccomp(s).syscalls[0].names.clear()
        }),
        ("linux.seccomp.syscalls[0].names[0]", |s| {
            seccomp(s).syscalls[0].names[0].clear()
        }),
        ("linux.seccomp.syscalls[0].args[0].index", |s| {
            seccomp(s).syscalls[0].args[0].index = 6
        }),
        ("linux.seccomp.syscalls[0].args[0].op", |s| {
            seccomp(s).syscalls[0].args[0].op = "SCMP_CMP_XOR".into()
        }),
        ("linux.seccomp.listenerPath", |s| {
            seccomp(s).syscalls[0].action = "SCMP_ACT_NOTIFY".into()
        }),
        ("linux.sysctl", |s| {
            linux(s).sysctl.insert(String::new(), "1".into());
        }),
        ("linux.sysctl.net.ipv4.ip_forward", |s| {
            drop_ns(s, NamespaceType::Network);
            linux(s)
                .sysctl
                .insert("net.ipv4.ip_forward".into(), "1".into());
        }),
        ("linux.sysctl.kernel.shmmax", |s| {
            drop_ns(s, NamespaceType::Ipc);
            linux(s).sysctl.insert("kernel.shmmax".into(), "1".into());
        }),
        ("linux.sysctl.fs/mqueue/msg_max", |s| {
            drop_ns(s, NamespaceType::Ipc);
            linux(s)
                .sysctl
                .insert("fs/mqueue/msg_max".into(), "1".into());
        }),
        ("linux.sysctl.kernel.hostname", |s| {
            linux(s).sysctl.insert("kernel.hostname".into(), "x".into());
        }),
        ("linux.sysctl.vm.swappiness", |s| {
            linux(s).sysctl.insert("vm.swappiness".into(), "1".into());
        }),
        ("linux.maskedPaths[10]", |s| {
            linux(s).masked_paths.push("proc/kcore".into())
        }),
        ("linux.maskedPaths[10]", |s| {
            linux(s).masked_paths.push("/proc/../etc/shadow".into())
        }),
        ("linux.readonlyPaths[5]", |s| {
            linux(s).readonly_paths.push("/proc/sys/../../etc".into())
        }),
        ("linux.readonlyPaths[5]", |s| {
            linux(s).readonly_paths.push("/proc/\0".into())
        }),
        ("linux.maskedPaths", |s| drop_ns(s, NamespaceType::Mount)),
        ("linux.personality.domain", |s| {
            linux(s).personality = Some(Personality {
                domain: "LINUX64".into(),
                flags: vec![],
            })
        }),
    ];

    fn device(typ: &str, path: &str) -> Device {
        Device {
            typ: typ.into(),
            path: path.into(),
            major: 10,
            minor: 229,
            file_mode: None,
            uid: None,
            gid: None,
        }
    }

    fn cgroup_rules(s: &mut Spec) -> &mut Vec<DeviceCgroup> {
        &mut linux(s)
            .resources
            .get_or_insert_with(Default::default)
            .devices
    }

    #[test]
    fn base_is_valid() {
        validate(&base()).expect("runc's template is valid");
    }

    #[test]
    fn every_rule_names_its_field() {
        for (i, (field, breaker)) in CASES.iter().enumerate() {
            let mut spec = base();
            breaker(&mut spec);
            let err = match validate(&spec) {
                Ok(()) => panic!("case {i} ({field}): accepted"),
                Err(e) => e,
            };
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("{field}: ")),
                "case {i}: expected the error to name {field:?}, got {msg:?}"
            );
            match err {
                SpecError::Invalid { field: f, .. } => assert_eq!(f, *field, "case {i}"),
                other => panic!("case {i}: not an Invalid error: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_capability_error_names_it() {
        let mut spec = base();
        process(&mut spec)
            .capabilities
            .as_mut()
            .expect("caps")
            .effective = Some(vec!["CAP_KILL".into(), "CAP_SYS_FOO".into()]);
        let msg = validate(&spec).expect_err("unknown cap").to_string();
        assert_eq!(
            msg,
            "process.capabilities.effective[1]: unknown capability \"CAP_SYS_FOO\""
        );
    }

    #[test]
    fn console_size_is_ignored_without_terminal() {
        let mut spec = base();
        let p = process(&mut spec);
        p.terminal = false;
        p.console_size = Some(ConsoleSize {
            height: u64::MAX,
            width: 100_000,
        });
        validate(&spec).expect("consoleSize must be ignored when terminal is false");
        process(&mut spec).terminal = true;
        let msg = validate(&spec).expect_err("too big").to_string();
        assert!(msg.starts_with("process.consoleSize.height: "), "{msg}");
        process(&mut spec).console_size = Some(ConsoleSize {
            height: 65_535,
            width: 65_535,
        });
        validate(&spec).expect("65535 fits");
    }

    #[test]
    fn valid_variants_pass() {
        let fine: &[fn(&mut Spec)] = &[
            |s| userns(s),
            |s| {
                userns(s);
                add_ns(s, NamespaceType::Time, None);
                linux(s).time_offsets.insert(
                    "monotonic".into(),
                    TimeOffset {
                        secs: -5,
                        nanosecs: 999_999_999,
                    },
                );
            },
            |s| add_ns(s, NamespaceType::User, Some("/proc/1/ns/user")),
            |s| add_ns(s, NamespaceType::Cgroup, Some("/proc/1/ns/cgroup")),
            |s| {
                linux(s)
                    .sysctl
                    .insert("net.ipv4.ip_forward".into(), "1".into());
                linux(s)
                    .sysctl
                    .insert("kernel.shm_rmid_forced".into(), "1".into());
                linux(s)
                    .sysctl
                    .insert("fs.mqueue.msg_max".into(), "10".into());
                linux(s)
                    .sysctl
                    .insert("kernel.domainname".into(), "x".into());
                linux(s)
                    .sysctl
                    .insert("net/ipv4/conf/all/forwarding".into(), "1".into());
            },
            |s| {
                linux(s).devices.push(device("c", "/dev/fuse"));
                linux(s).devices.push(device("p", "/dev/fifo/x"));
                cgroup_rules(s).push(DeviceCgroup {
                    allow: true,
                    typ: Some("c".into()),
                    major: Some(10),
                    minor: Some(229),
                    access: Some("rw".into()),
                });
            },
            |s| {
                for p in [
                    "private",
                    "rprivate",
                    "slave",
                    "rslave",
                    "shared",
                    "rshared",
                    "unbindable",
                    "runbindable",
                ] {
                    linux(s).rootfs_propagation = Some(p.into());
                }
            },
            |s| {
                seccomp(s);
            },
            |s| {
                let sc = seccomp(s);
                sc.syscalls[0].action = "SCMP_ACT_NOTIFY".into();
                sc.listener_path = Some("/run/seccomp.sock".into());
                sc.flags = vec!["SECCOMP_FILTER_FLAG_LOG".into()];
            },
            |s| {
                s.mounts.push(Mount {
                    destination: "/data".into(),
                    typ: Some("none".into()),
                    source: Some("/srv/data".into()),
                    options: vec!["rbind".into(), "rro".into(), "mode=0755".into()],
                    ..Mount::default()
                });
            },
            |s| {
                let p = process(s);
                p.scheduler = Some(Scheduler {
                    policy: "SCHED_RR".into(),
                    priority: 10,
                    ..Scheduler::default()
                });
                p.io_priority = Some(IoPriority {
                    class: "IOPRIO_CLASS_IDLE".into(),
                    priority: 7,
                });
                p.oom_score_adj = Some(-1000);
                p.user.umask = Some(0o022);
                p.exec_cpu_affinity = Some(CpuAffinity {
                    initial: Some("0-3,7".into()),
                    final_: Some("1".into()),
                });
                p.env.push("EMPTY=".into());
            },
            |s| {
                let p = process(s);
                p.scheduler = Some(Scheduler {
                    policy: "SCHED_DEADLINE".into(),
                    runtime: 10,
                    deadline: 20,
                    period: 30,
                    flags: vec!["SCHED_FLAG_RECLAIM".into()],
                    ..Scheduler::default()
                });
            },
            |s| {
                hooks(s).create_runtime.push(Hook {
                    args: vec!["hook".into(), "--x".into()],
                    env: vec!["A=b".into()],
                    timeout: Some(5),
                    ..hook("/usr/bin/hook")
                })
            },
            |s| {
                linux(s).personality = Some(Personality {
                    domain: "LINUX32".into(),
                    flags: vec![],
                });
            },
            |s| {
                // A relative or clean-but-odd destination component is fine as long as no `..`.
                s.mounts[3].destination = "/dev//shm/./x".into();
            },
        ];
        for (i, f) in fine.iter().enumerate() {
            let mut spec = base();
            f(&mut spec);
            if let Err(e) = validate(&spec) {
                panic!("variant {i} rejected: {e}");
            }
        }
    }

    #[test]
    fn unmapped_userns_can_be_allowed() {
        let mut spec = base();
        add_ns(&mut spec, NamespaceType::User, None);
        let msg = validate(&spec).expect_err("mappings required").to_string();
        assert!(msg.starts_with("linux.uidMappings: "), "{msg}");
        let opts = ValidateOptions {
            allow_unmapped_userns: true,
        };
        validate_with(&spec, &opts).expect("allowed when berth is told so");
    }

    #[test]
    fn validate_process_uses_the_given_prefix() {
        let p = Process {
            args: vec![],
            cwd: "/".into(),
            ..Process::default()
        };
        let msg = validate_process(&p, "exec")
            .expect_err("empty args")
            .to_string();
        assert!(msg.starts_with("exec.args: "), "{msg}");
    }

    #[test]
    fn ids() {
        for ok in [
            "a",
            "abc-DEF_1.2+3",
            "0",
            "...",
            "a..b",
            &"x".repeat(MAX_ID_LEN),
        ] {
            validate_id(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        assert!(matches!(validate_id(""), Err(SpecError::EmptyId)));
        assert_eq!(
            validate_id("").expect_err("empty").to_string(),
            "container id cannot be empty"
        );
        for bad in [
            ".",
            "..",
            "a/b",
            "/",
            "a b",
            "a:b",
            "a,b",
            "é",
            "a\0",
            "a\n",
            &"x".repeat(MAX_ID_LEN + 1),
        ] {
            match validate_id(bad) {
                Err(SpecError::InvalidId { id, .. }) => assert_eq!(id, bad),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let msg = validate_id("a/b").expect_err("slash").to_string();
        assert!(msg.starts_with("invalid container ID format"), "{msg}");
    }

    #[test]
    fn cpu_lists() {
        for ok in ["0", "0-3", "0-3,7", "1,2,3", "5-5"] {
            assert!(is_cpu_list(ok), "{ok}");
        }
        for bad in ["", ",", "a", "3-1", "1-", "-1", "1,,2", " 1", "1-2-3"] {
            assert!(!is_cpu_list(bad), "{bad}");
        }
    }
}
