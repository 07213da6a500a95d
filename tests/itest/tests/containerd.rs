//! containerd drives the runtime under test end to end (issue 6): Debian's containerd 1.6 with
//! containerd-shim-runc-v2 and ctr, offline.
//!
//! Every test starts its own containerd with a private root, state, gRPC/ttrpc sockets and
//! config.toml under a temp dir, and tears it down afterwards (tasks and containers deleted,
//! shims killed, the daemon stopped, mounts under the dir detached). Containers run on a busybox
//! rootfs directory (`ctr run --rootfs DIR`; ctr puts no PATH in such a container's environment
//! and runc then finds no program by name, so commands are absolute paths), through the runc v2
//! shim with the runtime under test as its `BinaryName`:
//! - from `ctr run --runc-binary <runtime> --runc-root <private>` (the runc options ctr puts on
//!   the container), and
//! - from containerd's own config.toml: a CRI runtime handler
//!   `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]` with
//!   `options.BinaryName`, which is what a Kubernetes RuntimeClass selects. The CRI calls
//!   (RunPodSandbox with that handler, CreateContainer, StartContainer, ContainerStatus,
//!   ExecSync, ...) are made by a small gRPC client written here in Python (Debian's
//!   python3-grpcio; the protobuf messages are encoded by hand), on images built here from the
//!   busybox rootfs and imported with `ctr images import`.
//!
//! The shim calls the runtime with `--root <runc-root>/<namespace> --log <bundle>/log.json
//! --log-format json`, and on failure shows the last `"level":"error"` line of that log: the
//! failing-create test checks that the runtime's own message reaches ctr. Terminal tests drive a
//! pty the test allocates. No test skips: missing programs fail the test with what to install.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_itest::{
    Bundle, Cmd, Kind, Leftovers, MasterIo, Pty, Running, Runtime, runtime, runtime_exclusive,
    unique_id, wait_until,
};
use tempfile::TempDir;

const T: Duration = Duration::from_secs(30);

fn tool(path: &str, package: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(
        p.is_file(),
        "{path} is not installed: these tests need it (apt-get install {package})"
    );
    p
}

fn ctr_bin() -> PathBuf {
    tool("/usr/bin/ctr", "containerd")
}

/// A private containerd daemon (see the module docs); stopped and cleaned up on drop.
struct Containerd {
    rt: Runtime,
    dir: TempDir,
    daemon: Option<Running>,
    bundle: Bundle,
}

impl Containerd {
    fn start(rt: Runtime, cri: bool) -> Self {
        let containerd = tool("/usr/bin/containerd", "containerd");
        tool("/usr/bin/containerd-shim-runc-v2", "containerd");
        ctr_bin();
        // Short: the sockets' paths must fit sun_path.
        let dir = tempfile::Builder::new()
            .prefix("berth-ctrd-")
            .tempdir_in("/tmp")
            .expect("containerd temp dir");
        let d = dir.path();
        let mut disabled = vec![
            "io.containerd.internal.v1.opt",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.zfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.tracing.processor.v1.otlp",
            "io.containerd.internal.v1.tracing",
        ];
        if !cri {
            disabled.push("io.containerd.grpc.v1.cri");
        }
        let disabled: Vec<String> = disabled.iter().map(|p| format!("{p:?}")).collect();
        let mut conf = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [{disabled}]
[grpc]
  address = "{d}/c.sock"
[ttrpc]
  address = "{d}/c.sock.ttrpc"
[metrics]
  address = ""
"#,
            d = d.display(),
            disabled = disabled.join(", ")
        );
        if cri {
            std::fs::create_dir_all(d.join("cni")).expect("cni dir");
            conf.push_str(&format!(
                r#"[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "berth.test/busybox:1"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{d}/cni"
  conf_dir = "{d}/cni"
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "berth"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth.options]
  BinaryName = "{bin}"
  Root = "{d}/runc-root"
"#,
                d = d.display(),
                bin = rt.bin().display()
            ));
        }
        std::fs::write(d.join("config.toml"), conf).expect("config.toml");
        let daemon = Cmd::new(containerd)
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(berth_itest::Sink::Null)
            .stderr(berth_itest::Sink::Fd(
                std::fs::File::create(d.join("containerd.log"))
                    .expect("log file")
                    .into(),
            ))
            .timeout(Duration::from_secs(3600))
            .spawn();
        let c = Self {
            rt,
            dir,
            daemon: Some(daemon),
            bundle: Bundle::busybox(),
        };
        wait_until("containerd answers", T, || {
            c.ctr(["version"]).run().success().then_some(())
        });
        c
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("c.sock")
    }

    /// `ctr --address <sock> ARGS...`.
    fn ctr<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Cmd::new(ctr_bin())
            .arg("--address")
            .arg(self.sock())
            .env_remove("CONTAINERD_NAMESPACE")
            .env_remove("CONTAINERD_SNAPSHOTTER")
            .args(args)
            .timeout(T)
    }

    /// The runtime root the shim uses for ctr's containers (`--runc-root`).
    fn runc_root(&self) -> PathBuf {
        self.dir.path().join("runc-root")
    }

    /// `ctr run --runc-binary <runtime> --runc-root <private> FLAGS... --rootfs DIR ID ARGS...`.
    fn run<'a>(&self, flags: &[&str], id: &str, args: impl IntoIterator<Item = &'a str>) -> Cmd {
        self.ctr(["run", "--runc-binary"])
            .arg(self.rt.bin())
            .arg("--runc-root")
            .arg(self.runc_root())
            .args(flags)
            .arg("--rootfs")
            .arg(self.bundle.rootfs())
            .arg(id)
            .args(args)
    }

    /// `ctr run -d -t ... ID sh`: ctr wants a console even to start a detached terminal task,
    /// so it runs on a pty of its own.
    fn run_detached_terminal(&self, id: &str) {
        let mut pty = Pty::new();
        let out = pty.spawn(self.run(&["-d", "-t"], id, ["/bin/sh"])).wait();
        assert!(out.success(), "{out}");
    }

    /// The runtime under test, on the shim's state root for namespace `ns`.
    fn runtime_cmd<'a>(&self, ns: &str, args: impl IntoIterator<Item = &'a str>) -> Cmd {
        self.rt
            .cmd_no_root(["--root"])
            .arg(self.runc_root().join(ns))
            .args(args)
    }

    /// The `status` the runtime reports for `id` (via `list`), if it lists it.
    fn runtime_status(&self, ns: &str, id: &str) -> Option<String> {
        let out = self.runtime_cmd(ns, ["list", "--format", "json"]).ok();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v.as_array()?
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["status"].as_str().unwrap_or_default().to_string())
    }

    /// `ctr task ls` status of `id`.
    fn task_status(&self, id: &str) -> String {
        let out = self.ctr(["task", "ls"]).ok();
        out.stdout_str()
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.first() == Some(&id)).then(|| f.last().copied().unwrap_or_default().to_string())
            })
            .unwrap_or_default()
    }

    /// Pids of the runc v2 shims serving this daemon.
    fn shims(&self) -> Vec<(i32, String)> {
        let sock = self.sock().to_string_lossy().into_owned();
        berth_itest::leftovers::processes(&[], &[sock])
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("containerd-shim-runc-v2"))
            .collect()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for ns in ["default", "k8s.io"] {
            let tasks = self.ctr(["--namespace", ns, "task", "ls", "--quiet"]).run();
            for id in tasks.stdout_str().lines() {
                let _ = self
                    .ctr(["--namespace", ns, "task", "kill", "--signal", "KILL", id])
                    .run();
                let _ = self
                    .ctr(["--namespace", ns, "task", "delete", "--force", id])
                    .run();
            }
            let ctrs = self
                .ctr(["--namespace", ns, "container", "ls", "--quiet"])
                .run();
            for id in ctrs.stdout_str().lines() {
                let _ = self
                    .ctr(["--namespace", ns, "container", "delete", id])
                    .run();
            }
        }
        if let Some(d) = self.daemon.take() {
            d.signal(rustix::process::Signal::TERM);
            if let Err(d) = d.wait_for(Duration::from_secs(10)) {
                d.kill();
            }
        }
        for (pid, _) in self.shims() {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        berth_itest::leftovers::unmount_under(self.dir.path());
    }
}

/// Types `echo "Q[$(EXPR)]$((40+2))"` and returns what EXPR printed (see podman.rs).
#[track_caller]
fn ask(io: &impl MasterIo, expr: &str) -> String {
    io.write_all(format!("echo \"Q[$({expr})]$((40+2))\"\n").as_bytes());
    let got = io.read_until(b"]42", T);
    let text = String::from_utf8_lossy(&got);
    let end = text.find("]42").expect("marker");
    let start = text[..end]
        .rfind("Q[")
        .unwrap_or_else(|| panic!("no Q[ before ]42 in {text:?}"));
    text[start + 2..end].to_string()
}

/// Checks that the shell's tty is `/dev/pts/N` of the container's own devpts.
#[track_caller]
fn assert_container_pts(io: &impl MasterIo) {
    use std::os::unix::fs::MetadataExt;
    let tty = ask(io, "tty");
    assert!(
        tty.strip_prefix("/dev/pts/")
            .is_some_and(|n| n.parse::<u32>().is_ok()),
        "tty printed {tty:?}"
    );
    let devs = ask(io, "stat -c %d /dev/pts $(tty) | tr '\\n' ' '");
    let devs: Vec<u64> = devs
        .split_whitespace()
        .map(|d| d.parse().expect("device number"))
        .collect();
    assert_eq!(devs.len(), 2, "{devs:?}");
    assert_eq!(
        devs[0], devs[1],
        "the tty is not on the container's /dev/pts"
    );
    let host = std::fs::metadata("/dev/pts").expect("stat").dev();
    assert_ne!(devs[0], host, "the container's /dev/pts is the host's");
}

/// Waits for the shell on `io` to answer with the terminal's size `want`.
#[track_caller]
fn wait_for_size(io: &impl MasterIo, want: &str) {
    wait_until(&format!("stty size shows {want}"), T, || {
        (ask(io, "stty size") == want).then_some(())
    });
}

#[test]
fn ctr_run_output_and_exit_codes() {
    let c = Containerd::start(runtime(), false);
    let id = unique_id("ctr-run");
    let out = c
        .run(
            &["--rm"],
            &id,
            [
                "/bin/sh",
                "-c",
                "echo to-stdout; echo to-stderr >&2; exit 3",
            ],
        )
        .run()
        .assert_code(3);
    assert_eq!(out.stdout_str(), "to-stdout\n", "{out}");
    assert!(out.stderr_str().contains("to-stderr"), "{out}");
    c.run(&["--rm"], &unique_id("ctr-true"), ["/bin/true"]).ok();
    c.run(&["--rm"], &unique_id("ctr-false"), ["/bin/false"])
        .run()
        .assert_code(1);
    // The runtime under test made them: its state root (from --runc-root) exists and is empty.
    assert!(c.runc_root().join("default").is_dir());
    let list = c.runtime_cmd("default", ["list", "-q"]).ok();
    assert_eq!(list.stdout_str(), "", "{list}");
    let left = c.ctr(["container", "ls", "--quiet"]).ok();
    assert_eq!(left.stdout_str(), "", "--rm left containers: {left}");
}

#[test]
fn ctr_run_t_on_a_terminal() {
    let c = Containerd::start(runtime(), false);
    let id = unique_id("ctr-t");
    let mut pty = Pty::new();
    pty.set_size(31, 97);
    let running = pty.spawn(c.run(&["--rm", "-t"], &id, ["/bin/sh"]));
    pty.read_until(b"# ", T);
    assert_eq!(ask(&pty, "echo $((6*7))"), "42");
    // ctr sends the size right after start (ResizePty).
    wait_for_size(&pty, "31 97");
    assert_container_pts(&pty);
    assert_eq!(c.runtime_status("default", &id).as_deref(), Some("running"));
    pty.set_size(44, 132);
    wait_for_size(&pty, "44 132");
    pty.write_all(b"exit 4\n");
    let out = running.wait();
    assert_eq!(out.code(), Some(4), "{out}");
}

#[test]
fn run_d_attach_exec_ps_pause_resume_kill() {
    let c = Containerd::start(runtime(), false);
    let id = unique_id("ctr-d");
    c.run_detached_terminal(&id);
    wait_until("task running", T, || {
        (c.task_status(&id) == "RUNNING").then_some(())
    });
    assert_eq!(c.runtime_status("default", &id).as_deref(), Some("running"));

    // exec without and with a terminal.
    let out = c
        .ctr([
            "task",
            "exec",
            "--exec-id",
            "e1",
            &id,
            "/bin/sh",
            "-c",
            "echo from-exec; exit 5",
        ])
        .run()
        .assert_code(5);
    assert_eq!(out.stdout_str(), "from-exec\n", "{out}");
    let mut e = Pty::new();
    e.set_size(27, 88);
    let exec = e.spawn(c.ctr(["task", "exec", "-t", "--exec-id", "e2", &id, "/bin/sh"]));
    e.read_until(b"# ", T);
    wait_for_size(&e, "27 88");
    assert_container_pts(&e);
    e.set_size(35, 111);
    wait_for_size(&e, "35 111");

    // task ps (the shim runs `<runtime> ps --format json`): init plus the exec'd shell.
    let ps = c.ctr(["task", "ps", &id]).ok();
    let text = ps.stdout_str();
    let pids: Vec<&str> = text.lines().skip(1).map(str::trim).collect();
    assert!(pids.len() >= 2, "task ps: {ps}");
    e.write_all(b"exit 6\n");
    let out = exec.wait();
    assert_eq!(out.code(), Some(6), "{out}");

    // attach to the init's terminal.
    let mut a = Pty::new();
    a.set_size(29, 99);
    let attach = a.spawn(c.ctr(["task", "attach", &id]));
    a.write_all(b"\n");
    wait_for_size(&a, "29 99");
    assert_container_pts(&a);

    c.ctr(["task", "pause", &id]).ok();
    assert_eq!(c.task_status(&id), "PAUSED");
    assert_eq!(c.runtime_status("default", &id).as_deref(), Some("paused"));
    c.ctr(["task", "resume", &id]).ok();
    assert_eq!(c.task_status(&id), "RUNNING");
    assert_eq!(ask(&a, "echo alive"), "alive");

    // kill: the shell is pid 1 and ignores SIGTERM, so send SIGKILL.
    c.ctr(["task", "kill", "--signal", "KILL", &id]).ok();
    let out = attach.wait();
    assert_eq!(out.code(), Some(137), "attach reports the exit: {out}");
    // Stopped, or already deleted by the attached ctr once it saw the exit.
    let status = wait_until("task stopped", T, || {
        let s = c.task_status(&id);
        (s == "STOPPED" || s.is_empty()).then_some(s)
    });
    if status == "STOPPED" {
        c.ctr(["task", "delete", &id]).ok();
    }
    c.ctr(["container", "delete", &id]).ok();
    assert_eq!(c.runtime_status("default", &id), None, "runtime state left");
}

#[test]
fn failing_create_shows_the_runtime_error_and_leaves_nothing() {
    let rt = runtime_exclusive();
    let kind = rt.kind();
    let c = Containerd::start(rt, false);
    // A first container makes the shim's state root; then compare against that.
    c.run(&["--rm"], &unique_id("ctr-warm"), ["/bin/true"]).ok();
    wait_until("no shim left", T, || c.shims().is_empty().then_some(()));
    let id = unique_id("ctr-bad");
    let l = Leftovers::snapshot(&c.rt, &[&id], &[c.bundle.rootfs().as_path()]);
    let out = c
        .run(
            &[
                "--rm",
                "--mount",
                "type=bind,src=/etc/hostname,dst=/bin,options=rbind:ro",
            ],
            &id,
            ["/bin/true"],
        )
        .run()
        .assert_fail();
    let err = out.stderr_str();
    let want = match kind {
        Kind::Berth => "mount /etc/hostname on /bin",
        Kind::Runc => "error mounting \"/etc/hostname\" to rootfs at \"/bin\"",
        Kind::Crun => "/bin",
    };
    assert!(err.contains("OCI runtime create failed"), "{out}");
    assert!(
        err.contains(want),
        "the runtime's message is missing: {out}"
    );
    assert!(!err.contains("level=error"), "raw log text: {out}");
    let left = c.ctr(["container", "ls", "--quiet"]).ok();
    assert_eq!(left.stdout_str(), "", "{left}");
    let list = c.runtime_cmd("default", ["list", "-q"]).ok();
    assert_eq!(list.stdout_str(), "", "runtime state left: {list}");
    wait_until("no shim left", T, || c.shims().is_empty().then_some(()));
    l.assert_unchanged();
}

#[test]
fn killing_the_shim_leaves_the_runtime_state_consistent() {
    let c = Containerd::start(runtime(), false);
    let id = unique_id("ctr-shim");
    c.run_detached_terminal(&id);
    wait_until("task running", T, || {
        (c.task_status(&id) == "RUNNING").then_some(())
    });
    let init: i32 = c
        .runtime_cmd("default", ["state", &id])
        .ok()
        .stdout_str()
        .split("\"pid\":")
        .nth(1)
        .and_then(|s| s.trim_start().split(|ch: char| !ch.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("init pid from state");
    let shims = c.shims();
    assert_eq!(shims.len(), 1, "{shims:?}");
    let shim = rustix::process::Pid::from_raw(shims[0].0).expect("pid");
    rustix::process::kill_process(shim, rustix::process::Signal::KILL).expect("kill shim");
    wait_until("shim gone", T, || c.shims().is_empty().then_some(()));

    // containerd notices the dead shim and runs the shim binary's `delete`, which calls
    // `<runtime> delete --force`: the container is either still listed (running or stopped) or
    // already gone; either way list, state and delete --force must work.
    if let Some(status) = c.runtime_status("default", &id) {
        assert!(
            status == "running" || status == "stopped",
            "status after the shim died: {status}"
        );
        let state = c.runtime_cmd("default", ["state", &id]).run();
        assert!(
            state.success() || state.stderr_str().contains("does not exist"),
            "{state}"
        );
    }
    c.runtime_cmd("default", ["delete", "--force", &id]).ok();
    assert_eq!(c.runtime_status("default", &id), None, "state left");
    wait_until("the init is gone", T, || {
        (!Path::new(&format!("/proc/{init}")).exists()
            || std::fs::read_to_string(format!("/proc/{init}/stat"))
                .is_ok_and(|s| s.contains(") Z ")))
        .then_some(())
    });
    let cgroups = berth_itest::leftovers::cgroup_dirs(&id);
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
}

/// The CRI client and OCI image builder (Python 3 with Debian's python3-grpcio), written to the
/// test's temp dir and run with `/usr/bin/python3`.
const CRI_PY: &str = r#""""Minimal CRI (runtime.v1) client for berth's containerd test: protobuf encoded by hand.

usage: cri.py SOCKET CALL JSON-ARGS   (prints one JSON object)
"""
import json, sys
import grpc

def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def key(field, wire):
    return varint(field << 3 | wire)

def f_str(field, s):
    b = s.encode() if isinstance(s, str) else s
    return key(field, 2) + varint(len(b)) + b

def f_msg(field, body):
    return key(field, 2) + varint(len(body)) + body

def f_int(field, n):
    return key(field, 0) + varint(n)

def f_map(field, d):
    return b"".join(f_msg(field, f_str(1, k) + f_str(2, v)) for k, v in d.items())

def parse(buf):
    """wire-format fields: {field: [values]} (bytes for length-delimited, int for varints)"""
    out, i = {}, 0
    while i < len(buf):
        k, i = read_varint(buf, i)
        field, wire = k >> 3, k & 7
        if wire == 0:
            v, i = read_varint(buf, i)
        elif wire == 2:
            n, i = read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wire)
        out.setdefault(field, []).append(v)
    return out

def read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i

def signed32(n):
    n &= 0xFFFFFFFF
    return n - (1 << 32) if n & 0x80000000 else n

def sandbox_config(a):
    # PodSandboxConfig: metadata=1{name=1,uid=2,namespace=3}, hostname=2, log_directory=3,
    # linux=8{cgroup_parent=1, security_context=2{namespace_options=1{network=1,pid=2,ipc=3}}}
    meta = f_str(1, a["name"]) + f_str(2, a["uid"]) + f_str(3, "default")
    ns = f_int(1, 2) + f_int(2, 0) + f_int(3, 0)  # network NODE, pid/ipc POD
    linux = f_str(1, a["cgroup_parent"]) + f_msg(2, f_msg(1, ns))
    # No hostname: a host-network pod has no UTS namespace of its own (kubelet sends none).
    return f_msg(1, meta) + f_str(3, a["log_dir"]) + f_msg(8, linux)

def call(channel, method, body):
    fn = channel.unary_unary("/runtime.v1.RuntimeService/" + method,
                             request_serializer=lambda b: b,
                             response_deserializer=lambda b: b)
    return parse(fn(body, timeout=60))

def image(args):
    """An OCI image archive (one uncompressed layer: the rootfs) for `ctr images import`."""
    import hashlib, io, os, tarfile
    blobs = {}
    def blob(data):
        d = hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return {"digest": "sha256:" + d, "size": len(data)}
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        root = args["rootfs"]
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                full = os.path.join(dirpath, name)
                info = t.gettarinfo(full, os.path.relpath(full, root))
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                if info.isreg():
                    with open(full, "rb") as f:
                        t.addfile(info, f)
                else:
                    t.addfile(info)
    layer = layer.getvalue()
    lb = blob(layer)
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Entrypoint": args["entrypoint"], "Env": ["PATH=/bin"]},
              "rootfs": {"type": "layers", "diff_ids": [lb["digest"]]}}
    cb = blob(json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": dict(cb, mediaType="application/vnd.oci.image.config.v1+json"),
                "layers": [dict(lb, mediaType="application/vnd.oci.image.layer.v1.tar")]}
    mb = blob(json.dumps(manifest).encode())
    index = {"schemaVersion": 2, "manifests": [dict(mb,
             mediaType="application/vnd.oci.image.manifest.v1+json",
             annotations={"io.containerd.image.name": args["name"],
                          "org.opencontainers.image.ref.name": args["name"].rsplit(":", 1)[1]})]}
    with tarfile.open(args["out"], "w") as t:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", json.dumps(index).encode())
        for d, data in blobs.items():
            add("blobs/sha256/" + d, data)
    return {"layer": lb["digest"]}

def main():
    sock, what, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if what == "image":
        print(json.dumps(image(args)))
        return
    ch = grpc.insecure_channel("unix://" + sock)
    s = lambda r, f: r.get(f, [b""])[0].decode()
    if what == "runp":
        r = call(ch, "RunPodSandbox", f_msg(1, sandbox_config(args)) + f_str(2, args["handler"]))
        out = {"id": s(r, 1)}
    elif what == "create":
        # ContainerConfig: metadata=1{name=1}, image=2{image=1}, command=3, args=4, log_path=11,
        # stdin=12, tty=14
        cfg = f_msg(1, f_str(1, args["name"])) + f_msg(2, f_str(1, args["image"]))
        cfg += b"".join(f_str(3, c) for c in args["command"])
        cfg += f_str(11, args["log_path"])
        if args.get("tty"):
            cfg += f_int(12, 1) + f_int(14, 1)
        body = f_str(1, args["sandbox"]) + f_msg(2, cfg) + f_msg(3, sandbox_config(args["sandbox_config"]))
        r = call(ch, "CreateContainer", body)
        out = {"id": s(r, 1)}
    elif what == "start":
        call(ch, "StartContainer", f_str(1, args["id"]))
        out = {}
    elif what == "status":
        r = call(ch, "ContainerStatus", f_str(1, args["id"]))
        st = parse(r[1][0])
        out = {"state": st.get(3, [0])[0], "exit_code": signed32(st.get(7, [0])[0]),
               "reason": s(st, 10), "message": s(st, 11)}
    elif what == "exec":
        r = call(ch, "ExecSync", f_str(1, args["id"]) + b"".join(f_str(2, c) for c in args["cmd"]) + f_int(3, 30))
        out = {"stdout": s(r, 1), "stderr": s(r, 2), "exit_code": signed32(r.get(3, [0])[0])}
    elif what == "stopc":
        call(ch, "StopContainer", f_str(1, args["id"]) + f_int(2, 0))
        out = {}
    elif what == "rmc":
        call(ch, "RemoveContainer", f_str(1, args["id"]))
        out = {}
    elif what == "stopp":
        call(ch, "StopPodSandbox", f_str(1, args["id"]))
        out = {}
    elif what == "rmp":
        call(ch, "RemovePodSandbox", f_str(1, args["id"]))
        out = {}
    else:
        raise SystemExit("unknown call " + what)
    print(json.dumps(out))

if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as e:
        print(json.dumps({"error": e.details(), "code": str(e.code())}))
        sys.exit(1)
"#;

/// `python3 cri.py <sock> CALL JSON` → the JSON it prints (panics on a gRPC error).
#[track_caller]
fn cri(c: &Containerd, call: &str, args: serde_json::Value) -> serde_json::Value {
    let out = Cmd::new(tool("/usr/bin/python3", "python3 python3-grpcio"))
        .arg(c.dir.path().join("cri.py"))
        .arg(c.sock())
        .arg(call)
        .arg(args.to_string())
        .timeout(Duration::from_secs(90))
        .run();
    assert!(out.success(), "CRI {call}: {out}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("CRI {call}: {e}: {out}"))
}

#[test]
fn cri_runtime_handler_runs_the_binary_name_from_config_toml() {
    use serde_json::json;
    let c = Containerd::start(runtime(), true);
    let d = c.dir.path();
    std::fs::write(d.join("cri.py"), CRI_PY).expect("cri.py");
    let probe = Cmd::new(tool("/usr/bin/python3", "python3"))
        .args(["-c", "import grpc"])
        .run();
    assert!(
        probe.success(),
        "the CRI test needs Debian's python3-grpcio (apt-get install python3-grpcio): {probe}"
    );
    // One image serves as the sandbox ("pause") image and as the containers' image.
    let image = d.join("image.tar");
    cri(
        &c,
        "image",
        json!({"rootfs": c.bundle.rootfs(), "name": "berth.test/busybox:1", "out": image,
               "entrypoint": ["/bin/sleep", "1000000"]}),
    );
    c.ctr(["--namespace", "k8s.io", "images", "import"])
        .arg(&image)
        .timeout(Duration::from_secs(120))
        .ok();
    let logs = d.join("logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    let parent = format!("/{}", unique_id("cri-pod"));
    let sandbox = json!({"name": "pod", "uid": unique_id("uid"), "log_dir": logs,
                         "cgroup_parent": parent, "handler": "berth"});
    let pod = cri(&c, "runp", sandbox.clone())["id"]
        .as_str()
        .expect("pod id")
        .to_string();
    let ns_root = c.dir.path().join("runc-root").join("k8s.io");
    let listed = |id: &str| {
        let out =
            c.rt.cmd_no_root(["--root"])
                .arg(&ns_root)
                .args(["list", "-q"])
                .ok();
        out.stdout_str().lines().any(|l| l == id)
    };
    assert!(
        listed(&pod),
        "the sandbox was not made by the runtime named in BinaryName"
    );

    let one = cri(
        &c,
        "create",
        json!({"sandbox": pod, "name": "once", "image": "berth.test/busybox:1",
               "command": ["sh", "-c", "echo hello-cri; exit 3"], "log_path": "once.log",
               "sandbox_config": sandbox}),
    )["id"]
        .as_str()
        .expect("container id")
        .to_string();
    cri(&c, "start", json!({"id": one}));
    let status = wait_until("the container exits", T, || {
        let s = cri(&c, "status", json!({"id": one}));
        (s["state"] == 2).then_some(s)
    });
    assert_eq!(status["exit_code"], 3, "{status}");
    let log = std::fs::read_to_string(logs.join("once.log")).expect("CRI log");
    assert!(log.contains(" stdout F hello-cri"), "{log:?}");

    let long = cri(
        &c,
        "create",
        json!({"sandbox": pod, "name": "long", "image": "berth.test/busybox:1",
               "command": ["sleep", "600"], "log_path": "long.log", "tty": true,
               "sandbox_config": sandbox}),
    )["id"]
        .as_str()
        .expect("container id")
        .to_string();
    cri(&c, "start", json!({"id": long}));
    assert!(listed(&long));
    let exec = cri(
        &c,
        "exec",
        json!({"id": long, "cmd": ["sh", "-c", "echo out; echo err >&2; exit 4"]}),
    );
    assert_eq!(exec["stdout"], "out\n", "{exec}");
    assert_eq!(exec["stderr"], "err\n", "{exec}");
    assert_eq!(exec["exit_code"], 4, "{exec}");

    cri(&c, "stopp", json!({"id": pod}));
    cri(&c, "rmp", json!({"id": pod}));
    assert!(
        !listed(&pod) && !listed(&long) && !listed(&one),
        "runtime state left"
    );
    let rel = parent.trim_start_matches('/');
    let left: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|h| {
            std::fs::read_dir(h.path().join(rel))
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "container cgroups left: {left:?}");
    // The pod's parent cgroup is the kubelet's to remove.
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(h.path().join(rel));
    }
}
