//! OCI hooks: each runs with the container's state JSON on stdin, its own `args` and `env`, and
//! an optional timeout. A failing `prestart`, `createRuntime`, `createContainer` or
//! `startContainer` hook fails the operation; a failing `poststart` or `poststop` hook is only a
//! warning (runtime-spec "Lifecycle").

use std::io::{Read, Write};
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

/// The state as the init sees it before pivot_root (its pid read from the host's procfs).
pub(crate) fn init_state(id: &str, spec: &Spec, bundle: &Path) -> String {
    let pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_string_lossy().parse().ok())
        .unwrap_or(0);
    state_json(id, "creating", pid, bundle, spec)
}

fn run_one(kind: &str, index: usize, hook: &Hook, state: &str) -> Result<()> {
    let name = format!("{kind} hook #{index} ({})", hook.path.display());
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
    // Output goes to a memfd, not a pipe: a chatty hook must not block on a full pipe.
    let out_fd = rustix::fs::memfd_create(c"berth-hook-output", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| Error::Hook(format!("{name}: memfd_create: {e}")))?;
    let out_file = std::fs::File::from(out_fd);
    let err_file = out_file
        .try_clone()
        .map_err(|e| Error::Hook(format!("{name}: {e}")))?;
    cmd.stdin(Stdio::piped())
        .stdout(
            out_file
                .try_clone()
                .map_err(|e| Error::Hook(format!("{name}: {e}")))?,
        )
        .stderr(err_file);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Hook(format!("{name}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook
        .timeout
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(Error::Hook(format!("{name}: wait: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Hook(format!(
                "{name}: timed out after {} s",
                hook.timeout.unwrap_or_default()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut out = String::new();
    let mut out_file = out_file;
    let _ = std::io::Seek::rewind(&mut out_file);
    let _ = out_file.take(64 * 1024).read_to_string(&mut out);
    if !status.success() {
        let out = out.trim();
        return Err(Error::Hook(format!(
            "{name}: {status}{}{out}",
            if out.is_empty() { "" } else { ": " }
        )));
    }
    Ok(())
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
