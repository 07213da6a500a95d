//! OCI hooks: each runs with the container's state JSON on stdin, its own `args` (`args[0]` is
//! the program's `argv[0]`) and exactly its `env` (nothing inherited), and an optional timeout
//! after which it is killed.
//!
//! Where and when each kind runs (runtime-spec "Lifecycle"; the call sites are in `create`, the
//! init, `start`, `run` and `delete`):
//!
//! | hook | process | namespaces | moment | state `status` | on failure |
//! |---|---|---|---|---|---|
//! | `prestart`, `createRuntime` | berth | berth's | the container's namespaces and mounts exist, before pivot_root | `creating` | create fails, nothing left |
//! | `createContainer` | the init | the container's | after `createRuntime`, before pivot_root | `creating` | create fails, nothing left |
//! | `startContainer` | the init | the container's (path resolved in the container) | after `start`, before the program | `created` | start fails, the container is destroyed |
//! | `poststart` | berth (`start`/`run`) | berth's | after the program started | `running` | warning only |
//! | `poststop` | berth (`delete`, `run`) | berth's | after the container is destroyed | `stopped` | warning only |
//!
//! The state goes to the hook's stdin through a memfd, not a pipe, so a hook that
//! never reads cannot block berth; its stdout and stderr go to another memfd whose first 64 KiB
//! end up in the error message when it fails. The timeout is measured on a pidfd, without
//! polling.

use std::io::{Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_spec::{Hook, Spec};

use crate::error::{Error, Result};

/// The runtime-spec state document passed to hooks.
pub(crate) fn state_json(id: &str, status: &str, pid: i32, bundle: &Path, spec: &Spec) -> String {
    let mut v = serde_json::json!({
        "ociVersion": berth_spec::OCI_VERSION,
        "id": id,
        "status": status,
        "bundle": bundle,
        "annotations": spec.annotations,
    });
    if pid > 0 {
        v["pid"] = serde_json::json!(pid);
    }
    v.to_string()
}

/// The init's pid as the host sees it (runtime-spec: the state's `pid` is "as seen by the
/// host"): read from the host's procfs, so call it before pivot_root.
pub(crate) fn host_pid() -> i32 {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_string_lossy().parse().ok())
        .unwrap_or(0)
}

fn memfd(name: &std::ffi::CStr, what: &str) -> Result<std::fs::File> {
    rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC)
        .map(std::fs::File::from)
        .map_err(|e| Error::Hook(format!("{what}: memfd_create: {e}")))
}

/// Waits for `child` until `deadline` on a pidfd. `Ok(None)` means the deadline passed.
fn wait_until(
    child: &mut std::process::Child,
    deadline: Option<Instant>,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let Some(deadline) = deadline else {
        return child.wait().map(Some);
    };
    let pid = rustix::process::Pid::from_raw(child.id() as i32)
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let ts = rustix::time::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

fn run_one(kind: &str, index: usize, hook: &Hook, state: &str) -> Result<()> {
    let name = format!(
        "error running hook #{index} ({kind}, {})",
        hook.path.display()
    );
    let mut cmd = Command::new(&hook.path);
    if let Some(argv0) = hook.args.first() {
        cmd.arg0(argv0);
        cmd.args(&hook.args[1..]);
    }
    cmd.env_clear();
    for kv in &hook.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut input = memfd(c"berth-hook-state", &name)?;
    input
        .write_all(state.as_bytes())
        .and_then(|_| input.rewind())
        .map_err(|e| Error::Hook(format!("{name}: write the state: {e}")))?;
    // Output goes to a memfd, not a pipe: a chatty hook must not block on a full pipe.
    let mut out_file = memfd(c"berth-hook-output", &name)?;
    let dup = |f: &std::fs::File| {
        f.try_clone()
            .map_err(|e| Error::Hook(format!("{name}: {e}")))
    };
    cmd.stdin(Stdio::from(input))
        .stdout(dup(&out_file)?)
        .stderr(dup(&out_file)?);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Hook(format!("{name}: cannot run {}: {e}", hook.path.display())))?;
    // Drop the Command: it holds copies of the stdio fds.
    drop(cmd);
    let deadline = hook
        .timeout
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    let status = match wait_until(&mut child, deadline) {
        Ok(Some(st)) => st,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Hook(format!(
                "{name}: timed out after {} s and was killed",
                hook.timeout.unwrap_or_default()
            )));
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Hook(format!("{name}: wait: {e}")));
        }
    };
    if !status.success() {
        let mut out = String::new();
        let _ = out_file.rewind();
        let _ = (&mut out_file).take(64 * 1024).read_to_string(&mut out);
        // One line: the hook's output is folded onto it.
        let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
        return Err(Error::Hook(format!(
            "{name}: {}{}{out}",
            exit_text(status),
            if out.is_empty() { "" } else { ": " }
        )));
    }
    Ok(())
}

/// How a hook ended, as runc words it (`exit status 3`, `signal: bad system call`).
fn exit_text(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    let Some(sig) = status.signal() else {
        return status.to_string();
    };
    let name = match sig {
        libc::SIGHUP => "hangup",
        libc::SIGINT => "interrupt",
        libc::SIGQUIT => "quit",
        libc::SIGILL => "illegal instruction",
        libc::SIGTRAP => "trace/breakpoint trap",
        libc::SIGABRT => "aborted",
        libc::SIGBUS => "bus error",
        libc::SIGFPE => "floating point exception",
        libc::SIGKILL => "killed",
        libc::SIGSEGV => "segmentation fault",
        libc::SIGPIPE => "broken pipe",
        libc::SIGALRM => "alarm clock",
        libc::SIGTERM => "terminated",
        libc::SIGSYS => "bad system call",
        libc::SIGXCPU => "CPU time limit exceeded",
        libc::SIGXFSZ => "file size limit exceeded",
        _ => return format!("signal: {sig}"),
    };
    let core = if status.core_dumped() {
        " (core dumped)"
    } else {
        ""
    };
    format!("signal: {name}{core}")
}

/// Runs `hooks` in order; the first failure stops them and is returned.
pub(crate) fn run_all(kind: &str, hooks: &[Hook], state: &str) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(kind, i, h, state)?;
    }
    Ok(())
}

/// Runs `hooks` in order; failures are logged as warnings and the rest still run.
pub(crate) fn run_all_warn(kind: &str, hooks: &[Hook], state: &str) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(kind, i, h, state) {
            log::warn!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(script: &str, timeout: Option<i64>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["my-argv0".into(), "-c".into(), script.into()],
            env: vec!["ONLY=this".into()],
            timeout,
        }
    }

    #[test]
    fn state_on_stdin_args_env() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("out");
        let script = format!(
            "cat > {o}.state; echo \"$0\" > {o}.argv0; env > {o}.env",
            o = out.display()
        );
        run_all("prestart", &[hook(&script, None)], "{\"id\":\"x\"}").expect("runs");
        let read = |ext: &str| std::fs::read_to_string(format!("{}.{ext}", out.display()));
        assert_eq!(read("state").expect("state"), "{\"id\":\"x\"}");
        assert_eq!(read("argv0").expect("argv0").trim(), "my-argv0");
        let env = read("env").expect("env");
        assert!(env.contains("ONLY=this"), "{env}");
        assert!(!env.contains("HOME="), "environment leaked: {env}");
    }

    #[test]
    fn failure_names_the_hook_and_carries_its_output() {
        let e = run_all(
            "createRuntime",
            &[hook("echo boom >&2; exit 3", None)],
            "{}",
        )
        .expect_err("fails")
        .to_string();
        assert!(
            e.starts_with("error running hook #0 (createRuntime, /bin/sh): exit status 3"),
            "{e}"
        );
        assert!(e.contains("boom"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    #[test]
    fn a_hook_killed_by_a_signal_is_named_as_runc_does() {
        let e = run_all("poststart", &[hook("kill -SYS $$", None)], "{}")
            .expect_err("fails")
            .to_string();
        assert!(
            e.ends_with("signal: bad system call (core dumped)")
                || e.ends_with("signal: bad system call"),
            "{e}"
        );
    }

    #[test]
    fn missing_binary_is_named() {
        let h = Hook {
            path: "/nonexistent/hook-binary".into(),
            ..Hook::default()
        };
        let e = run_all("prestart", &[h], "{}")
            .expect_err("fails")
            .to_string();
        assert!(e.contains("/nonexistent/hook-binary"), "{e}");
    }

    #[test]
    fn timeout_kills() {
        let start = Instant::now();
        let e = run_all("poststart", &[hook("sleep 30", Some(1))], "{}")
            .expect_err("times out")
            .to_string();
        assert!(e.contains("timed out after 1 s"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_hook_that_never_reads_stdin_does_not_block() {
        let big = "x".repeat(1 << 20);
        run_all("prestart", &[hook("exit 0", Some(5))], &big).expect("runs");
    }
}
