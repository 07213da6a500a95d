//! seccomp filters, with libseccomp: the runtime-spec profile, and berth's own rule that stops a
//! container from typing into a terminal it was handed (TIOCSTI, TIOCLINUX).
//!
//! The terminal rule is a separate filter: the kernel runs every loaded filter and keeps the
//! most restrictive verdict, so the rule holds whatever the user's profile allows. It compares
//! only the low 32 bits of the ioctl request, because the kernel does too (a filter comparing all
//! 64 bits was bypassed by setting the high bits: CVE-2019-10063).

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

use berth_spec::Seccomp;

use crate::error::{Error, Result};

fn err(what: impl std::fmt::Display) -> Error {
    Error::Init(format!("seccomp: {what}"))
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

fn action(name: &str, errno: Option<u32>, field: &str) -> Result<ScmpAction> {
    let errno = errno.map(|e| e as i32);
    Ok(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno.unwrap_or(libc::EPERM)),
        "SCMP_ACT_TRACE" => ScmpAction::Trace(errno.unwrap_or(libc::EPERM) as u16),
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_NOTIFY" => {
            return Err(err(format!(
                "{field}: SCMP_ACT_NOTIFY needs a seccomp agent, which berth does not support yet"
            )));
        }
        other => return Err(err(format!("{field}: unknown action {other:?}"))),
    })
}

fn compare(op: &str, value: u64, value_two: u64, field: &str) -> Result<ScmpCompareOp> {
    Ok(match op {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        "SCMP_CMP_MASKED_EQ" => {
            let _ = value_two;
            ScmpCompareOp::MaskedEqual(value)
        }
        other => return Err(err(format!("{field}: unknown operator {other:?}"))),
    })
}

/// Builds the filter of `linux.seccomp` (not loaded).
pub(crate) fn build(profile: &Seccomp) -> Result<ScmpFilterContext> {
    let default = action(
        &profile.default_action,
        profile.default_errno_ret,
        "linux.seccomp.defaultAction",
    )?;
    let mut ctx = ScmpFilterContext::new(default).map_err(err)?;
    for (i, arch) in profile.architectures.iter().enumerate() {
        let a: ScmpArch = arch.parse().map_err(|_| {
            err(format!(
                "linux.seccomp.architectures[{i}]: unknown architecture {arch:?}"
            ))
        })?;
        ctx.add_arch(a)
            .map_err(|e| err(format!("add architecture {arch}: {e}")))?;
    }
    for flag in &profile.flags {
        match flag.as_str() {
            "SECCOMP_FILTER_FLAG_LOG" => {
                ctx.set_ctl_log(true).map_err(err)?;
            }
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => {
                ctx.set_ctl_ssb(true).map_err(err)?;
            }
            "SECCOMP_FILTER_FLAG_TSYNC" | "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => {}
            other => return Err(err(format!("linux.seccomp.flags: unknown flag {other:?}"))),
        }
    }
    for (i, rule) in profile.syscalls.iter().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(&rule.action, rule.errno_ret, &format!("{field}.action"))?;
        if act == default {
            continue; // libseccomp refuses rules that repeat the default action
        }
        let mut cmps = Vec::new();
        for (j, a) in rule.args.iter().enumerate() {
            if a.index > 5 {
                return Err(err(format!(
                    "{field}.args[{j}].index: {} is above 5",
                    a.index
                )));
            }
            let op = compare(
                &a.op,
                a.value,
                a.value_two,
                &format!("{field}.args[{j}].op"),
            )?;
            let datum = if matches!(op, ScmpCompareOp::MaskedEqual(_)) {
                a.value_two
            } else {
                a.value
            };
            cmps.push(ScmpArgCompare::new(a.index, op, datum));
        }
        // Conditions on the same argument cannot be ANDed in one libseccomp rule: split them.
        let mut seen = std::collections::HashSet::new();
        let same_arg_twice = rule.args.iter().any(|a| !seen.insert(a.index));
        for (k, name) in rule.names.iter().enumerate() {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(err(format!(
                    "{field}.names[{k}]: invalid syscall name {name:?}"
                )));
            }
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                // Profiles list syscalls newer than this libseccomp: skip them, as runc does.
                continue;
            };
            let result = if cmps.is_empty() {
                ctx.add_rule(act, sc)
            } else if same_arg_twice {
                cmps.iter()
                    .try_for_each(|c| {
                        ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                            .map(|_| ())
                    })
                    .map(|_| &mut ctx)
            } else {
                ctx.add_rule_conditional(act, sc, &cmps)
            };
            result.map_err(|e| err(format!("{field}: add rule for {name}: {e}")))?;
        }
    }
    Ok(ctx)
}

/// Builds and loads `linux.seccomp`.
pub(crate) fn load(profile: &Seccomp) -> Result<()> {
    build(profile)?
        .load()
        .map_err(|e| err(format!("load filter: {e}")))
}
