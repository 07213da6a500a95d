//! Talking to the container runtime: the bundle (and the overlay that turns its terminal on),
//! the process document of an exec session, and runtime commands run as children.
//!
//! The monitor only uses the runtime's runc-compatible command line (`create --console-socket`,
//! `start`, `exec -d -t --console-socket -p`, `delete --force`), so berth, runc and crun all work.
//!
//! # The terminal overlay
//! `berth run -d -t` / `create -t` promise a terminal even when the bundle's `process.terminal`
//! is false. The monitor then writes `<monitor dir>/bundle/config.json`: the bundle's config
//! with `process.terminal` set, `root.path` made absolute, relative bind-mount sources made
//! absolute (runc resolves them against the bundle), and the annotation
//! `io.github.berth.monitor.bundle` naming the original bundle. The runtime is given that
//! directory as `--bundle`, so `state` reports it. A bundle whose terminal is already on is
//! used as it is.
//!
//! # Exec sessions
//! An exec session's process is the container's `process` with the request's overrides (the
//! same merge `runc exec` does for its flags) plus `terminal: true` and `consoleSize`, written to
//! a file and passed with `-p`: the runtime sizes the pty before the program runs, so an exec
//! session never starts at 0x0 (a plain `exec -d -t --console-socket` has no size flag).

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_tty::Winsize;
use serde_json::{Value, json};

use crate::error::MonitorError;

/// What the monitor needs from the bundle.
#[derive(Debug, Clone)]
pub struct BundleInfo {
    /// The bundle the runtime is given (the original, or the overlay).
    pub path: PathBuf,
    /// The configuration's `process`, as compact JSON (parsed again for each exec session:
    /// a parsed document costs a monitor more memory than its text).
    pub process: String,
    /// `process.consoleSize` as `(height, width)`, when both are set and non-zero.
    pub console_size: Option<(u64, u64)>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// `process.env`'s `TERM`, for recordings.
    pub term_env: String,
    /// Whether an overlay was written.
    pub overlay: bool,
}

/// Reads `bundle/config.json`; writes the overlay into `overlay_dir` when the terminal is off.
pub fn load_bundle(bundle: &Path, overlay_dir: &Path) -> Result<BundleInfo, MonitorError> {
    let cfg_path = bundle.join("config.json");
    let text =
        std::fs::read(&cfg_path).map_err(|e| MonitorError::sys("read", cfg_path.display(), e))?;
    let mut config: Value = serde_json::from_slice(&text)
        .map_err(|e| MonitorError::Usage(format!("{}: not valid JSON: {e}", cfg_path.display())))?;
    if !config.is_object() {
        return Err(MonitorError::Usage(format!(
            "{}: not a JSON object",
            cfg_path.display()
        )));
    }
    if !config["process"].is_object() {
        return Err(MonitorError::Usage(format!(
            "{}: process: missing",
            cfg_path.display()
        )));
    }
    let annotations: BTreeMap<String, String> = config["annotations"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let term_env = config["process"]["env"]
        .as_array()
        .and_then(|env| {
            env.iter()
                .filter_map(Value::as_str)
                .find_map(|e| e.strip_prefix("TERM=").map(String::from))
        })
        .unwrap_or_else(|| "xterm".into());
    let console_size = match (
        config["process"]["consoleSize"]["height"].as_u64(),
        config["process"]["consoleSize"]["width"].as_u64(),
    ) {
        (Some(h), Some(w)) if h > 0 && w > 0 => Some((h, w)),
        _ => None,
    };
    let process = config["process"].to_string();
    if config["process"]["terminal"].as_bool() == Some(true) {
        return Ok(BundleInfo {
            path: bundle.to_path_buf(),
            process,
            console_size,
            annotations,
            term_env,
            overlay: false,
        });
    }
    config["process"]["terminal"] = Value::Bool(true);
    if let Some(root) = config["root"]["path"].as_str() {
        if !Path::new(root).is_absolute() {
            config["root"]["path"] = Value::String(bundle.join(root).display().to_string());
        }
    }
    if let Some(mounts) = config["mounts"].as_array_mut() {
        for m in mounts {
            let is_bind = m["type"].as_str() == Some("bind")
                || m["options"].as_array().is_some_and(|o| {
                    o.iter()
                        .any(|x| x.as_str() == Some("bind") || x.as_str() == Some("rbind"))
                });
            if let Some(src) = m["source"].as_str() {
                if is_bind && !Path::new(src).is_absolute() {
                    m["source"] = Value::String(bundle.join(src).display().to_string());
                }
            }
        }
    }
    if !config["annotations"].is_object() {
        config["annotations"] = json!({});
    }
    config["annotations"]["io.github.berth.monitor.bundle"] =
        Value::String(bundle.display().to_string());
    std::fs::create_dir_all(overlay_dir)
        .map_err(|e| MonitorError::sys("mkdir", overlay_dir.display(), e))?;
    let out = overlay_dir.join("config.json");
    let pretty = serde_json::to_vec_pretty(&config).unwrap_or_default();
    std::fs::write(&out, pretty).map_err(|e| MonitorError::sys("write", out.display(), e))?;
    Ok(BundleInfo {
        path: overlay_dir.to_path_buf(),
        process,
        console_size,
        annotations,
        term_env,
        overlay: true,
    })
}

/// Builds an exec session's process document from the container's `process` (`base`) and the
/// request's options (`--cwd D`, `--env K=V`, `--user U[:G]`, `--additional-gids G`, `--cap C`,
/// `--no-new-privs`, `--process FILE`, `--apparmor P`, `--process-label L`).
pub fn exec_process(
    base: &Value,
    options: &[&str],
    command: &[&str],
    size: Winsize,
) -> Result<Value, String> {
    let mut p = base.clone();
    let mut i = 0;
    let mut from_file = false;
    let mut env: Vec<String> = Vec::new();
    let mut caps: Vec<String> = Vec::new();
    let mut gids: Vec<u64> = Vec::new();
    let value = |i: usize, flag: &str| -> Result<String, String> {
        options
            .get(i + 1)
            .map(|s| s.to_string())
            .ok_or_else(|| format!("exec option {flag}: a value is required"))
    };
    while i < options.len() {
        let flag = options[i];
        match flag {
            "--cwd" => {
                p["cwd"] = Value::String(value(i, flag)?);
                i += 1;
            }
            "--env" | "-e" => {
                env.push(value(i, flag)?);
                i += 1;
            }
            "--user" | "-u" => {
                let u = value(i, flag)?;
                let (uid, gid) = u.split_once(':').unwrap_or((&u, ""));
                let uid: u32 = uid
                    .parse()
                    .map_err(|_| format!("exec option --user {u:?}: {uid:?} is not a uid"))?;
                p["user"]["uid"] = json!(uid);
                if !gid.is_empty() {
                    let gid: u32 = gid
                        .parse()
                        .map_err(|_| format!("exec option --user {u:?}: {gid:?} is not a gid"))?;
                    p["user"]["gid"] = json!(gid);
                }
                i += 1;
            }
            "--additional-gids" | "-g" => {
                let g = value(i, flag)?;
                gids.push(
                    g.parse()
                        .map_err(|_| format!("exec option {flag} {g:?}: not a gid"))?,
                );
                i += 1;
            }
            "--cap" | "-c" => {
                caps.push(value(i, flag)?);
                i += 1;
            }
            "--no-new-privs" => p["noNewPrivileges"] = Value::Bool(true),
            "--apparmor" => {
                p["apparmorProfile"] = Value::String(value(i, flag)?);
                i += 1;
            }
            "--process-label" => {
                p["selinuxLabel"] = Value::String(value(i, flag)?);
                i += 1;
            }
            "--process" | "-p" => {
                let file = value(i, flag)?;
                let text = std::fs::read(&file)
                    .map_err(|e| format!("exec option --process {file}: {e}"))?;
                p = serde_json::from_slice(&text)
                    .map_err(|e| format!("exec option --process {file}: not valid JSON: {e}"))?;
                from_file = true;
                i += 1;
            }
            other => {
                return Err(format!(
                    "exec option {other:?} is not supported by the monitor"
                ));
            }
        }
        i += 1;
    }
    if !p.is_object() {
        return Err("the container's config has no process".into());
    }
    if from_file {
        if !command.is_empty() {
            return Err("exec: give either --process or a command, not both".into());
        }
    } else {
        if command.is_empty() {
            return Err("process args cannot be empty".into());
        }
        p["args"] = json!(command);
    }
    if !env.is_empty() {
        let mut current: Vec<String> = p["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for kv in env {
            let key = kv
                .split_once('=')
                .map(|(k, _)| k.to_string())
                .unwrap_or(kv.clone());
            current.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key.as_str()));
            current.push(kv);
        }
        p["env"] = json!(current);
    }
    if !gids.is_empty() {
        p["user"]["additionalGids"] = json!(gids);
    }
    if !caps.is_empty() {
        if !p["capabilities"].is_object() {
            p["capabilities"] = json!({});
        }
        // runc's sets for --cap; never the inheritable one (CVE-2022-29162).
        for set in ["bounding", "effective", "permitted", "ambient"] {
            let mut v: Vec<String> = p["capabilities"][set]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            for c in &caps {
                if !v.contains(c) {
                    v.push(c.clone());
                }
            }
            p["capabilities"][set] = json!(v);
        }
    }
    p["terminal"] = Value::Bool(true);
    p["consoleSize"] = json!({"height": size.rows, "width": size.cols});
    Ok(p)
}

/// Starts `runtime ARGS` with stdin from `/dev/null` and stdout/stderr into `output`, signals
/// unblocked and default (the monitor blocks some for its signalfd). Returns the pid; the
/// child is reaped by the monitor's `SIGCHLD` handling, never by `std`.
pub fn spawn(runtime: &Path, args: &[String], output: OwnedFd) -> Result<i32, MonitorError> {
    let out2 = output
        .try_clone()
        .map_err(|e| MonitorError::sys("dup", "runtime output", e))?;
    let mut cmd = Command::new(runtime);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(output))
        .stderr(Stdio::from(out2));
    berth_sys::signal::command_reset_signals(&mut cmd);
    let child = cmd
        .spawn()
        .map_err(|e| MonitorError::sys("run", runtime.display(), e))?;
    Ok(child.id() as i32)
}

/// The runtime's last error from its output: the `msg` of the last logrus-style line
/// (`level=error msg="…"`, or a JSON `{"msg":…}` line), else the last non-empty line.
pub fn last_error(output: &str) -> String {
    for line in output.lines().rev() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            if let Some(m) = v["msg"].as_str() {
                return m.to_string();
            }
        }
        if let Some(at) = line.find("msg=\"") {
            let rest = &line[at + 5..];
            let mut msg = String::new();
            let mut chars = rest.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            msg.push(n);
                        }
                    }
                    '"' => break,
                    c => msg.push(c),
                }
            }
            return msg;
        }
        return line.to_string();
    }
    "no error message".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_turns_the_terminal_on_and_absolutises_paths() {
        let t = tempfile::tempdir().unwrap();
        let b = t.path().join("b");
        std::fs::create_dir(&b).unwrap();
        std::fs::write(
            b.join("config.json"),
            r#"{"process":{"terminal":false,"args":["sh"],"env":["TERM=vt100"]},
                "root":{"path":"rootfs"},
                "mounts":[{"destination":"/x","type":"bind","source":"data","options":["rbind"]},
                          {"destination":"/proc","type":"proc","source":"proc"}]}"#,
        )
        .unwrap();
        let info = load_bundle(&b, &t.path().join("overlay")).unwrap();
        assert!(info.overlay);
        assert_eq!(info.term_env, "vt100");
        let written: Value =
            serde_json::from_slice(&std::fs::read(t.path().join("overlay/config.json")).unwrap())
                .unwrap();
        assert_eq!(written["process"]["terminal"], true);
        assert_eq!(
            written["root"]["path"],
            b.join("rootfs").display().to_string()
        );
        assert_eq!(
            written["mounts"][0]["source"],
            b.join("data").display().to_string()
        );
        assert_eq!(written["mounts"][1]["source"], "proc");
        assert_eq!(
            written["annotations"]["io.github.berth.monitor.bundle"],
            b.display().to_string()
        );
    }

    #[test]
    fn exec_process_merges_like_runc() {
        let config = json!({"args": ["sh"], "env": ["A=1", "B=2"], "cwd": "/",
            "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": ["CAP_KILL"], "inheritable": ["CAP_KILL"]}});
        let p = exec_process(
            &config,
            &[
                "--cwd",
                "/tmp",
                "-e",
                "A=3",
                "--user",
                "1000:5",
                "--cap",
                "CAP_CHOWN",
                "-g",
                "7",
            ],
            &["top", "-b"],
            Winsize::new(30, 90),
        )
        .unwrap();
        assert_eq!(p["args"], json!(["top", "-b"]));
        assert_eq!(p["cwd"], "/tmp");
        assert_eq!(p["env"], json!(["B=2", "A=3"]));
        assert_eq!(
            p["user"],
            json!({"uid": 1000, "gid": 5, "additionalGids": [7]})
        );
        assert_eq!(
            p["capabilities"]["bounding"],
            json!(["CAP_KILL", "CAP_CHOWN"])
        );
        assert_eq!(p["capabilities"]["inheritable"], json!(["CAP_KILL"]));
        assert_eq!(p["terminal"], true);
        assert_eq!(p["consoleSize"], json!({"height": 30, "width": 90}));
        assert_eq!(
            exec_process(&config, &["--bogus"], &["x"], Winsize::DEFAULT).unwrap_err(),
            "exec option \"--bogus\" is not supported by the monitor"
        );
        assert_eq!(
            exec_process(&config, &[], &[], Winsize::DEFAULT).unwrap_err(),
            "process args cannot be empty"
        );
    }

    #[test]
    fn last_error_reads_logrus_json_and_plain_lines() {
        assert_eq!(
            last_error("time=\"x\" level=error msg=\"container \\\"a\\\" exists\"\n\n"),
            "container \"a\" exists"
        );
        assert_eq!(
            last_error("{\"level\":\"error\",\"msg\":\"boom\",\"time\":\"t\"}\n"),
            "boom"
        );
        assert_eq!(last_error("first\nsecond\n"), "second");
        assert_eq!(last_error(""), "no error message");
    }
}
