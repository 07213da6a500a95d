//! The closed name sets of the runtime-spec: capabilities, rlimits, seccomp actions, operators
//! and architectures, scheduler policies, I/O priority classes, hooks and namespaces.
//!
//! Each table is the single source for both [`crate::validate`] (a name not in the table is an
//! error naming the field) and [`crate::features()`] (the table is what `berth features` lists), so
//! the two cannot drift apart. Lookups are exact and case-sensitive, as in runc.

/// Every capability name the kernel defines up to `CAP_CHECKPOINT_RESTORE`, indexed by number.
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capability number of `name` (`CAP_CHOWN` → 0, `CAP_CHECKPOINT_RESTORE` → 40).
pub fn parse_capability(name: &str) -> Option<u8> {
    CAPABILITIES
        .iter()
        .position(|c| *c == name)
        .and_then(|i| u8::try_from(i).ok())
}

/// The name of capability number `cap`, if berth knows it.
pub fn capability_name(cap: u8) -> Option<&'static str> {
    CAPABILITIES.get(usize::from(cap)).copied()
}

// glibc types the constants `u32`, musl `i32`; the values are small either way.
macro_rules! rl {
    ($name:ident) => {{
        #[allow(clippy::unnecessary_cast)]
        let n = libc::$name as i32;
        n
    }};
}

/// The `RLIMIT_*` names with this architecture's resource numbers (they differ on mips/sparc).
pub const RLIMITS: [(&str, i32); 16] = [
    ("RLIMIT_CPU", rl!(RLIMIT_CPU)),
    ("RLIMIT_FSIZE", rl!(RLIMIT_FSIZE)),
    ("RLIMIT_DATA", rl!(RLIMIT_DATA)),
    ("RLIMIT_STACK", rl!(RLIMIT_STACK)),
    ("RLIMIT_CORE", rl!(RLIMIT_CORE)),
    ("RLIMIT_RSS", rl!(RLIMIT_RSS)),
    ("RLIMIT_NPROC", rl!(RLIMIT_NPROC)),
    ("RLIMIT_NOFILE", rl!(RLIMIT_NOFILE)),
    ("RLIMIT_MEMLOCK", rl!(RLIMIT_MEMLOCK)),
    ("RLIMIT_AS", rl!(RLIMIT_AS)),
    ("RLIMIT_LOCKS", rl!(RLIMIT_LOCKS)),
    ("RLIMIT_SIGPENDING", rl!(RLIMIT_SIGPENDING)),
    ("RLIMIT_MSGQUEUE", rl!(RLIMIT_MSGQUEUE)),
    ("RLIMIT_NICE", rl!(RLIMIT_NICE)),
    ("RLIMIT_RTPRIO", rl!(RLIMIT_RTPRIO)),
    ("RLIMIT_RTTIME", rl!(RLIMIT_RTTIME)),
];

/// The resource number of an rlimit name such as `RLIMIT_NOFILE`, for `setrlimit`/`prlimit`.
pub fn parse_rlimit(name: &str) -> Option<i32> {
    RLIMITS.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

/// Seccomp actions (`defaultAction`, `syscalls[].action`), sorted.
pub const SECCOMP_ACTIONS: [&str; 9] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

/// Seccomp argument comparison operators (`syscalls[].args[].op`), sorted.
pub const SECCOMP_OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// Seccomp architectures libseccomp 2.5 resolves (`architectures`), sorted.
pub const SECCOMP_ARCHS: [&str; 19] = [
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

/// Seccomp filter flags (`linux.seccomp.flags`), sorted.
pub const SECCOMP_FLAGS: [&str; 4] = [
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// The hook lists, in the order the lifecycle runs them.
pub const HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Namespace type names, sorted (as `features` lists them).
pub const NAMESPACES: [&str; 8] = [
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

/// `linux.rootfsPropagation` values.
pub const ROOTFS_PROPAGATIONS: [&str; 8] = [
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
];

/// `process.scheduler.policy` values.
pub const SCHED_POLICIES: [&str; 7] = [
    "SCHED_OTHER",
    "SCHED_FIFO",
    "SCHED_RR",
    "SCHED_BATCH",
    "SCHED_ISO",
    "SCHED_IDLE",
    "SCHED_DEADLINE",
];

/// `process.scheduler.flags` values.
pub const SCHED_FLAGS: [&str; 7] = [
    "SCHED_FLAG_RESET_ON_FORK",
    "SCHED_FLAG_RECLAIM",
    "SCHED_FLAG_DL_OVERRUN",
    "SCHED_FLAG_KEEP_POLICY",
    "SCHED_FLAG_KEEP_PARAMS",
    "SCHED_FLAG_UTIL_CLAMP_MIN",
    "SCHED_FLAG_UTIL_CLAMP_MAX",
];

/// `process.ioPriority.class` values.
pub const IOPRIO_CLASSES: [&str; 3] = ["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"];

/// `linux.personality.domain` values.
pub const PERSONALITY_DOMAINS: [&str; 2] = ["LINUX", "LINUX32"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_numbered_like_the_kernel() {
        assert_eq!(parse_capability("CAP_CHOWN"), Some(0));
        assert_eq!(parse_capability("CAP_NET_BIND_SERVICE"), Some(10));
        assert_eq!(parse_capability("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(parse_capability("CAP_AUDIT_WRITE"), Some(29));
        assert_eq!(parse_capability("CAP_BPF"), Some(39));
        assert_eq!(parse_capability("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(parse_capability("CAP_FOO"), None);
        assert_eq!(parse_capability("cap_chown"), None);
        assert_eq!(capability_name(40), Some("CAP_CHECKPOINT_RESTORE"));
        assert_eq!(capability_name(41), None);
    }

    #[test]
    fn rlimits_use_libc_numbers() {
        assert_eq!(
            parse_rlimit("RLIMIT_NOFILE"),
            Some(libc::RLIMIT_NOFILE as i32)
        );
        assert_eq!(
            parse_rlimit("RLIMIT_RTTIME"),
            Some(libc::RLIMIT_RTTIME as i32)
        );
        assert_eq!(parse_rlimit("RLIMIT_FOO"), None);
        assert_eq!(parse_rlimit("NOFILE"), None);
        let mut nums: Vec<i32> = RLIMITS.iter().map(|r| r.1).collect();
        nums.sort_unstable();
        nums.dedup();
        assert_eq!(nums.len(), RLIMITS.len());
    }

    #[test]
    fn sorted_tables_are_sorted() {
        for t in [
            &SECCOMP_ACTIONS[..],
            &SECCOMP_OPERATORS,
            &SECCOMP_ARCHS,
            &SECCOMP_FLAGS,
            &NAMESPACES,
        ] {
            assert!(t.windows(2).all(|w| w[0] < w[1]), "{t:?}");
        }
    }
}
