//! seccomp filters, with libseccomp: the runtime-spec profile (`linux.seccomp`), and berth's own
//! rule that stops a container from typing into a terminal it was handed (TIOCSTI, TIOCLINUX).
//!
//! Order of operations:
//! 1. berth's process compiles the profile with [`compile`] *before* anything exists (before the
//!    state directory and the clone), so every mistake in the profile — an unknown action,
//!    architecture or operator, an argument index above 5, a malformed syscall name, a rule
//!    libseccomp refuses — is an error naming the JSON field, and nothing is left behind;
//! 2. the child inherits the compiled [`Filter`] (it is a copy of berth's memory) and loads it
//!    with [`Filter::load`] as late as it can: right before `execve` when `noNewPrivileges` is
//!    set, otherwise just before the capabilities are dropped (loading a filter without
//!    `no_new_privs` needs CAP_SYS_ADMIN).
//!
//! Semantics follow runc (libcontainer/seccomp): `SCMP_ACT_KILL` is `KILL_THREAD`; `ERRNO` and
//! `TRACE` default to `EPERM` unless `errnoRet`/`defaultErrnoRet` says otherwise; a rule whose
//! action equals the default is skipped (libseccomp refuses it); a syscall name libseccomp does
//! not know (newer than the library) is skipped with a debug message, because the profiles
//! engines ship list such names; conditions on distinct arguments are ANDed in one rule, and
//! when one argument is named twice each condition becomes a rule of its own (ORed); for
//! `SCMP_CMP_MASKED_EQ`, `value` is the mask and `valueTwo` the datum. Unlike runc 1.1, the
//! flags `SECCOMP_FILTER_FLAG_LOG`, `_SPEC_ALLOW` and `_TSYNC` are applied (runc 1.1 refuses
//! all flags). libseccomp's own `no_new_privs` attribute is always cleared: whether the process
//! gets `no_new_privs` is `process.noNewPrivileges`'s business alone.
//!
//! The terminal rule is a separate filter: the kernel runs every loaded filter and keeps the
//! most restrictive verdict, so the rule holds whatever the user's profile allows. It compares
//! only the low 32 bits of the ioctl request, because the kernel does too (a filter comparing all
//! 64 bits was bypassed by setting the high bits: CVE-2019-10063).

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

use berth_spec::{Seccomp, SpecError};

use super::seccomp_enosys;
use crate::error::{Error, Result};

/// The largest errno the kernel passes through (`MAX_ERRNO`).
const MAX_ERRNO: u32 = 4095;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Spec(SpecError::invalid(field, message))
}

fn err(what: impl std::fmt::Display) -> Error {
    Error::Init(format!("seccomp: {what}"))
}

/// A compiled `linux.seccomp` profile, ready to load: the classic BPF program (libseccomp's,
/// behind the `-ENOSYS` stub) and the kernel's filter flags.
pub(crate) struct Filter {
    program: Vec<berth_sys::seccomp::Insn>,
    flags: u32,
}

impl Filter {
    /// Loads the filter into the calling thread (never sets `no_new_privs` itself). No
    /// allocation and no libseccomp call: safe in the child between clone and exec.
    pub(crate) fn load(&self) -> Result<()> {
        berth_sys::seccomp::set_mode_filter(self.flags, &self.program)
            .map_err(|e| err(format!("load the linux.seccomp filter: {e}")))
    }

    /// The number of BPF instructions.
    pub(crate) fn len(&self) -> usize {
        self.program.len()
    }
}

/// The program libseccomp generates for `ctx`, as instructions.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<berth_sys::seccomp::Insn>> {
    use std::io::{Read, Seek};
    let fd = rustix::fs::memfd_create("berth-seccomp-bpf", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| err(format!("memfd for the exported filter: {e}")))?;
    ctx.export_bpf(&fd)
        .map_err(|e| err(format!("export the linux.seccomp filter: {e}")))?;
    let mut file = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| err(format!("read the exported filter: {e}")))?;
    seccomp_enosys::parse_program(&bytes)
        .ok_or_else(|| err(format!("libseccomp exported {} bytes", bytes.len())))
}

/// Per architecture the kernel may report for this filter, the largest syscall number the
/// profile names (see [`seccomp_enosys`]).
fn arch_limits(ctx: &ScmpFilterContext, profile: &Seccomp) -> Vec<seccomp_enosys::ArchLimit> {
    let max_for = |arch: ScmpArch| -> Option<u32> {
        profile
            .syscalls
            .iter()
            .flat_map(|r| r.names.iter())
            .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
            .map(i32::from)
            .filter(|&nr| nr >= 0)
            .map(|nr| nr as u32)
            .max()
    };
    let present = |arch: ScmpArch| ctx.is_arch_present(arch).unwrap_or(false);
    let mut out = Vec::new();
    for (arch, audit_arch) in [
        (ScmpArch::X8664, seccomp_enosys::AUDIT_ARCH_X86_64),
        (ScmpArch::X86, seccomp_enosys::AUDIT_ARCH_I386),
        (ScmpArch::Aarch64, seccomp_enosys::AUDIT_ARCH_AARCH64),
        (ScmpArch::Arm, seccomp_enosys::AUDIT_ARCH_ARM),
    ] {
        if !present(arch) {
            continue;
        }
        let Some(max) = max_for(arch) else { continue };
        let x32_max = (arch == ScmpArch::X8664 && present(ScmpArch::X32))
            .then(|| max_for(ScmpArch::X32))
            .flatten()
            .map(|m| m | seccomp_enosys::X32_SYSCALL_BIT);
        out.push(seccomp_enosys::ArchLimit {
            audit_arch,
            max,
            x32_max,
        });
    }
    out
}

fn add_native_arches(ctx: &mut ScmpFilterContext) -> Result<()> {
    // On x86_64 also cover the 32-bit entry points, which reach the same tty code.
    if cfg!(target_arch = "x86_64") {
        for arch in [ScmpArch::X86, ScmpArch::X32] {
            ctx.add_arch(arch)
                .map_err(|e| err(format!("add arch {arch:?}: {e}")))?;
        }
    }
    Ok(())
}

/// Loads the filter that makes `ioctl(fd, TIOCSTI|TIOCLINUX, …)` fail with `EPERM`.
pub(crate) fn load_tty_injection_guard() -> Result<()> {
    let mut ctx = ScmpFilterContext::new(ScmpAction::Allow).map_err(err)?;
    ctx.set_ctl_nnp(false).map_err(err)?;
    add_native_arches(&mut ctx)?;
    let ioctl = ScmpSyscall::from_name("ioctl").map_err(err)?;
    for request in [libc::TIOCSTI, libc::TIOCLINUX] {
        let cmp = ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(0xffff_ffff), request);
        ctx.add_rule_conditional(ScmpAction::Errno(libc::EPERM), ioctl, &[cmp])
            .map_err(|e| err(format!("add the TIOCSTI/TIOCLINUX rule: {e}")))?;
    }
    ctx.load()
        .map_err(|e| err(format!("load the terminal-injection filter: {e}")))
}

fn errno_of(errno: Option<u32>, field: &str) -> Result<i32> {
    match errno {
        None => Ok(libc::EPERM),
        Some(e) if e <= MAX_ERRNO => Ok(e as i32),
        Some(e) => Err(invalid(
            field,
            format!("{e} is not an errno (0..={MAX_ERRNO})"),
        )),
    }
}

fn action(name: &str, errno: Option<u32>, field: &str, errno_field: &str) -> Result<ScmpAction> {
    Ok(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno_of(errno, errno_field)?),
        "SCMP_ACT_TRACE" => ScmpAction::Trace(errno_of(errno, errno_field)? as u16),
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_NOTIFY" => {
            return Err(invalid(
                field,
                "SCMP_ACT_NOTIFY needs a seccomp agent, which berth does not support yet",
            ));
        }
        other => return Err(invalid(field, format!("unknown action {other:?}"))),
    })
}

fn compare(op: &str, mask: u64, field: &str) -> Result<ScmpCompareOp> {
    Ok(match op {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        "SCMP_CMP_MASKED_EQ" => ScmpCompareOp::MaskedEqual(mask),
        other => return Err(invalid(field, format!("unknown operator {other:?}"))),
    })
}

/// Whether `name` looks like a syscall name (`[a-z0-9_]+`). libseccomp would resolve nothing
/// else, and runc would skip such a name silently; berth calls it a mistake.
fn well_formed(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Compiles `linux.seccomp` (see the module docs). Every error names its JSON field.
pub(crate) fn compile(profile: &Seccomp) -> Result<Filter> {
    let f = "linux.seccomp";
    let default = action(
        &profile.default_action,
        profile.default_errno_ret,
        &format!("{f}.defaultAction"),
        &format!("{f}.defaultErrnoRet"),
    )?;
    let mut ctx = ScmpFilterContext::new(default)
        .map_err(|e| invalid(format!("{f}.defaultAction"), e.to_string()))?;
    ctx.set_ctl_nnp(false).map_err(err)?;
    let mut flags = 0u32;
    for (i, arch) in profile.architectures.iter().enumerate() {
        let field = format!("{f}.architectures[{i}]");
        let a: ScmpArch = arch
            .parse()
            .map_err(|_| invalid(&field, format!("unknown architecture {arch:?}")))?;
        ctx.add_arch(a)
            .map_err(|e| invalid(&field, format!("add architecture {arch}: {e}")))?;
    }
    for (i, flag) in profile.flags.iter().enumerate() {
        let field = format!("{f}.flags[{i}]");
        let set = match flag.as_str() {
            "SECCOMP_FILTER_FLAG_LOG" => {
                flags |= berth_sys::seccomp::FLAG_LOG;
                ctx.set_ctl_log(true).map(|_| ())
            }
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => {
                flags |= berth_sys::seccomp::FLAG_SPEC_ALLOW;
                ctx.set_ctl_ssb(true).map(|_| ())
            }
            "SECCOMP_FILTER_FLAG_TSYNC" => {
                flags |= berth_sys::seccomp::FLAG_TSYNC;
                ctx.set_ctl_tsync(true).map(|_| ())
            }
            // Only meaningful with a notify listener, which berth refuses above.
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => Ok(()),
            other => return Err(invalid(field, format!("unknown flag {other:?}"))),
        };
        set.map_err(|e| invalid(field, format!("{flag}: {e}")))?;
    }
    for (i, rule) in profile.syscalls.iter().enumerate() {
        let rf = format!("{f}.syscalls[{i}]");
        let act = action(
            &rule.action,
            rule.errno_ret,
            &format!("{rf}.action"),
            &format!("{rf}.errnoRet"),
        )?;
        let mut cmps = Vec::with_capacity(rule.args.len());
        let mut seen = [0u8; 6];
        for (j, a) in rule.args.iter().enumerate() {
            let af = format!("{rf}.args[{j}]");
            if a.index > 5 {
                return Err(invalid(
                    format!("{af}.index"),
                    format!("{} is above 5 (a syscall has 6 arguments)", a.index),
                ));
            }
            seen[a.index as usize] += 1;
            let op = compare(&a.op, a.value, &format!("{af}.op"))?;
            let datum = if matches!(op, ScmpCompareOp::MaskedEqual(_)) {
                a.value_two
            } else {
                a.value
            };
            cmps.push(ScmpArgCompare::new(a.index, op, datum));
        }
        let same_arg_twice = seen.iter().any(|&n| n > 1);
        if rule.names.is_empty() {
            return Err(invalid(format!("{rf}.names"), "must not be empty"));
        }
        for (k, name) in rule.names.iter().enumerate() {
            if !well_formed(name) {
                return Err(invalid(
                    format!("{rf}.names[{k}]"),
                    format!("invalid syscall name {name:?}"),
                ));
            }
            if act == default {
                continue; // libseccomp refuses rules that repeat the default action
            }
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                // Profiles list syscalls newer than this libseccomp: skip them, as runc does.
                log::debug!("{rf}.names[{k}]: unknown seccomp syscall {name:?} ignored");
                continue;
            };
            let result = if cmps.is_empty() {
                ctx.add_rule(act, sc).map(|_| ())
            } else if same_arg_twice {
                cmps.iter().try_for_each(|c| {
                    ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                        .map(|_| ())
                })
            } else {
                ctx.add_rule_conditional(act, sc, &cmps).map(|_| ())
            };
            result.map_err(|e| {
                invalid(
                    format!("{rf}.names[{k}]"),
                    format!("libseccomp refused the rule for {name}: {e}"),
                )
            })?;
        }
    }
    let permissive = matches!(default, ScmpAction::Allow | ScmpAction::Log)
        || default == ScmpAction::Errno(libc::ENOSYS);
    let mut program = if permissive {
        Vec::new()
    } else {
        seccomp_enosys::stub(&arch_limits(&ctx, profile))
    };
    program.extend(export(&ctx)?);
    Ok(Filter { program, flags })
}

/// Compiles `linux.seccomp` if the config has one.
pub(crate) fn compile_for(spec: &berth_spec::Spec) -> Result<Option<Filter>> {
    match spec.linux.as_ref().and_then(|l| l.seccomp.as_ref()) {
        Some(profile) => {
            let filter = compile(profile)?;
            log::debug!("linux.seccomp: {} BPF instructions", filter.len());
            Ok(Some(filter))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_spec::{SeccompArg, SeccompSyscall};

    fn profile(default: &str, rules: Vec<SeccompSyscall>) -> Seccomp {
        Seccomp {
            default_action: default.into(),
            architectures: vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_X86".into()],
            syscalls: rules,
            ..Seccomp::default()
        }
    }

    fn rule(names: &[&str], action: &str) -> SeccompSyscall {
        SeccompSyscall {
            names: names.iter().map(|s| s.to_string()).collect(),
            action: action.into(),
            ..SeccompSyscall::default()
        }
    }

    fn message(p: &Seccomp) -> String {
        match compile(p) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn compiles_a_profile_with_args_and_unknown_names() {
        let mut masked = rule(&["clone"], "SCMP_ACT_ERRNO");
        masked.errno_ret = Some(38);
        masked.args = vec![SeccompArg {
            index: 0,
            value: 0x7E02_0000,
            value_two: 0,
            op: "SCMP_CMP_MASKED_EQ".into(),
        }];
        let mut twice = rule(&["socket"], "SCMP_ACT_ERRNO");
        twice.args = vec![
            SeccompArg {
                index: 0,
                value: 16,
                value_two: 0,
                op: "SCMP_CMP_EQ".into(),
            },
            SeccompArg {
                index: 0,
                value: 17,
                value_two: 0,
                op: "SCMP_CMP_EQ".into(),
            },
        ];
        let p = profile(
            "SCMP_ACT_ALLOW",
            vec![
                masked,
                twice,
                rule(&["getpid", "not_a_syscall_yet_42"], "SCMP_ACT_ALLOW"),
                rule(&["mkdir"], "SCMP_ACT_KILL"),
            ],
        );
        assert!(compile(&p).is_ok());
    }

    #[test]
    fn errors_name_the_field() {
        let p = profile("SCMP_ACT_BOGUS", vec![]);
        assert!(
            message(&p).starts_with("linux.seccomp.defaultAction: "),
            "{}",
            message(&p)
        );

        let p = profile("SCMP_ACT_ALLOW", vec![rule(&["mkdir"], "SCMP_ACT_NOPE")]);
        assert!(message(&p).starts_with("linux.seccomp.syscalls[0].action: "));

        let p = profile(
            "SCMP_ACT_ALLOW",
            vec![
                rule(&["getpid"], "SCMP_ACT_ERRNO"),
                rule(&["getpid", "Mkdir!"], "SCMP_ACT_ERRNO"),
            ],
        );
        let m = message(&p);
        assert!(m.starts_with("linux.seccomp.syscalls[1].names[1]: "), "{m}");
        assert!(m.contains("Mkdir!"), "{m}");

        let mut r = rule(&["mkdir"], "SCMP_ACT_ERRNO");
        r.args = vec![SeccompArg {
            index: 6,
            value: 0,
            value_two: 0,
            op: "SCMP_CMP_EQ".into(),
        }];
        let m = message(&profile("SCMP_ACT_ALLOW", vec![r]));
        assert!(
            m.starts_with("linux.seccomp.syscalls[0].args[0].index: "),
            "{m}"
        );

        let mut p = profile("SCMP_ACT_ALLOW", vec![]);
        p.architectures.push("SCMP_ARCH_Z80".into());
        let m = message(&p);
        assert!(m.starts_with("linux.seccomp.architectures[2]: "), "{m}");

        let mut p = profile("SCMP_ACT_ERRNO", vec![]);
        p.default_errno_ret = Some(70000);
        assert!(message(&p).starts_with("linux.seccomp.defaultErrnoRet: "));

        let mut p = profile("SCMP_ACT_ALLOW", vec![]);
        p.flags.push("SECCOMP_FILTER_FLAG_BOGUS".into());
        assert!(message(&p).starts_with("linux.seccomp.flags[0]: "));
    }

    #[test]
    fn flags_are_applied_to_the_filter() {
        let mut p = profile("SCMP_ACT_ALLOW", vec![rule(&["mkdir"], "SCMP_ACT_ERRNO")]);
        p.flags = vec![
            "SECCOMP_FILTER_FLAG_LOG".into(),
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW".into(),
            "SECCOMP_FILTER_FLAG_TSYNC".into(),
        ];
        let f = compile(&p).expect("compiles");
        use berth_sys::seccomp::{FLAG_LOG, FLAG_SPEC_ALLOW, FLAG_TSYNC};
        assert_eq!(f.flags, FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_TSYNC);
    }

    #[test]
    fn a_refusing_default_gets_the_enosys_stub() {
        let rules = || vec![rule(&["read", "write", "openat"], "SCMP_ACT_ALLOW")];
        let eperm = compile(&profile("SCMP_ACT_ERRNO", rules())).expect("compiles");
        let mut p = profile("SCMP_ACT_ERRNO", rules());
        p.default_errno_ret = Some(libc::ENOSYS as u32);
        let enosys = compile(&p).expect("compiles");
        assert!(
            eperm.len() > enosys.len(),
            "stub missing: {} vs {}",
            eperm.len(),
            enosys.len()
        );
        let allow = compile(&profile(
            "SCMP_ACT_ALLOW",
            vec![rule(&["mkdir"], "SCMP_ACT_ERRNO")],
        ))
        .expect("compiles");
        assert_eq!(
            allow.program[0].k, 4,
            "libseccomp's program starts by loading arch"
        );
    }
}
