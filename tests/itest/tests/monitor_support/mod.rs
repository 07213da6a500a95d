//! Shared pieces of the console-monitor tests (`monitor_*.rs`).
//!
//! The clients are always berth's (`berth attach`, `logs`, `sessions`, `screenshot`, `console`)
//! or raw protocol connections made here. The monitor is started with the runtime under test:
//! `berth run -d -t` for berth, `berth-monitor --runtime <runc> --start` for runc (the
//! differential case). `berth` comes from `$BERTH_BIN` or the workspace build;
//! `berth-monitor` from `$BERTH_MONITOR` or next to `berth`.
#![allow(dead_code)]

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use berth_itest::{Bundle, Cmd, Kind, MasterIo, Pty, Running, Runtime, runtime};
use berth_proto::{Frame, Hello};
use serde_json::Value;

/// The default watchdog.
pub const T: Duration = Duration::from_secs(15);

/// The `berth` binary under test for the clients.
pub fn berth_bin() -> &'static Path {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| {
        if let Some(p) = std::env::var_os("BERTH_BIN") {
            return PathBuf::from(p);
        }
        for dir in [
            berth_itest::probe::target_dir(),
            berth_itest::probe::workspace_root().join("target"),
        ] {
            for profile in ["debug", "release"] {
                let p = dir.join(profile).join("berth");
                if p.is_file() {
                    return p;
                }
            }
        }
        panic!("berth binary not found: build it with `cargo build -p berth-cli -p berth-monitor` or set BERTH_BIN")
    })
}

/// The `berth-monitor` binary.
pub fn monitor_bin() -> PathBuf {
    std::env::var_os("BERTH_MONITOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| berth_bin().with_file_name("berth-monitor"))
}

/// A test's runtime plus the berth clients, sharing one private root.
pub struct Mon {
    /// The runtime under test (cleans up on drop).
    pub rt: Runtime,
}

impl Mon {
    /// A fresh private root.
    pub fn new() -> Mon {
        let rt = runtime();
        let monitor = monitor_bin();
        assert!(
            monitor.is_file(),
            "{} not found: build it with `cargo build -p berth-monitor`",
            monitor.display()
        );
        Mon { rt }
    }

    /// Like [`Mon::new`], holding the host lock exclusively (for pty counts).
    pub fn exclusive() -> Mon {
        Mon {
            rt: berth_itest::runtime_exclusive(),
        }
    }

    /// `berth --root <root> ARGS` (not run yet).
    pub fn berth<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Cmd::new(berth_bin())
            .env("BERTH_MONITOR", monitor_bin())
            .arg("--root")
            .arg(self.rt.root())
            .args(args)
    }

    /// The monitor directory of `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.rt.root().join("@monitor").join(id)
    }

    /// Starts `id` from `b` with a monitor, with the runtime under test; waits until running.
    #[track_caller]
    pub fn start(&self, b: &Bundle, id: &str) {
        self.start_cmd(b, id).ok();
        self.rt.wait_for_status(id, "running", T);
    }

    /// The command that starts `id` with a monitor (not run yet).
    pub fn start_cmd(&self, b: &Bundle, id: &str) -> Cmd {
        self.rt.guard().track(id);
        self.rt.guard().track_bundle(b.path());
        match self.rt.kind() {
            Kind::Berth => self
                .berth(["run", "-d", "-t", "--bundle"])
                .arg(b.path())
                .arg(id),
            _ => self.monitor_cmd(b, id, self.rt.bin()).arg("--start"),
        }
    }

    /// `berth-monitor --root R --id ID --bundle B --runtime RUNTIME` (not run yet).
    pub fn monitor_cmd(&self, b: &Bundle, id: &str, runtime: &Path) -> Cmd {
        self.rt.guard().track(id);
        self.rt.guard().track_bundle(b.path());
        Cmd::new(monitor_bin())
            .arg("--root")
            .arg(self.rt.root())
            .arg("--id")
            .arg(id)
            .arg("--bundle")
            .arg(b.path())
            .arg("--runtime")
            .arg(runtime)
    }

    /// The monitor's pid.
    #[track_caller]
    pub fn monitor_pid(&self, id: &str) -> i32 {
        let p = self.dir(id).join("monitor.pid");
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .parse()
            .expect("pid")
    }

    /// `berth sessions --format json`.
    #[track_caller]
    pub fn sessions(&self, id: &str) -> Value {
        let out = self.berth(["sessions", "--format", "json", id]).ok();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("sessions JSON: {e}: {out}"))
    }

    /// One session of `sessions`, by name.
    #[track_caller]
    pub fn session(&self, id: &str, name: &str) -> Value {
        let all = self.sessions(id);
        all["sessions"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no session {name} in {all}"))
    }

    /// `berth screenshot` of the console.
    pub fn screenshot(&self, id: &str) -> String {
        self.berth(["screenshot", id]).ok().stdout_str()
    }

    /// `berth logs ID ARGS` stdout bytes.
    #[track_caller]
    pub fn logs(&self, id: &str, args: &[&str]) -> Vec<u8> {
        self.berth(["logs"]).args(args).arg(id).ok().stdout
    }

    /// Polls the console's screen until it contains `needle`.
    #[track_caller]
    pub fn wait_screen(&self, id: &str, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let last = self.screenshot(id);
            if last.contains(needle) {
                return last;
            }
            if start.elapsed() > T {
                panic!("watchdog: screen of {id} never showed {needle:?}; last screen:\n{last}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls the raw console log until it contains `needle`.
    #[track_caller]
    pub fn wait_log(&self, id: &str, needle: &str) -> Vec<u8> {
        let start = Instant::now();
        loop {
            let l = self.logs(id, &[]);
            if l.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                return l;
            }
            if start.elapsed() > T {
                panic!(
                    "watchdog: log of {id} never showed {needle:?}; log:\n{}",
                    String::from_utf8_lossy(&l)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `berth attach ARGS ID` on a new pty of `rows` x `cols`.
    pub fn attach_pty(&self, id: &str, args: &[&str], rows: u16, cols: u16) -> (Pty, Running) {
        let mut pty = Pty::new();
        pty.set_size(rows, cols);
        let r = pty.spawn(self.berth(["attach"]).args(args).arg(id));
        (pty, r)
    }

    /// Runs `cmd` on a new pty.
    pub fn on_pty(&self, cmd: Cmd, rows: u16, cols: u16) -> (Pty, Running) {
        let mut pty = Pty::new();
        pty.set_size(rows, cols);
        let r = pty.spawn(cmd);
        (pty, r)
    }
}

/// A busybox bundle running an interactive `sh`, with `vi`, `top`, `setsid`, `od` added.
pub fn shell_bundle() -> Bundle {
    let mut b = Bundle::busybox();
    b.args(&["sh"]);
    add_applets(&b, &["vi", "top", "setsid", "od", "clear", "reset"]);
    b
}

/// [`shell_bundle`] running `sh -c SCRIPT` instead.
pub fn script_bundle(script: &str) -> Bundle {
    let mut b = shell_bundle();
    b.args(&["sh", "-c", script]);
    b
}

/// Links more busybox applets into the bundle's `/bin`.
pub fn add_applets(b: &Bundle, names: &[&str]) {
    for n in names {
        let p = b.rootfs().join("bin").join(n);
        if !p.exists() {
            std::os::unix::fs::symlink("busybox", &p).expect("applet symlink");
        }
    }
}

/// Waits until the process has exited; returns its output (watchdog `T`).
#[track_caller]
pub fn wait_exit(r: Running) -> berth_itest::Output {
    match r.wait_for(T) {
        Ok(o) => o,
        Err(r) => {
            let label = r.label().to_string();
            panic!(
                "watchdog: `{label}` still running after {T:?}: {}",
                r.kill()
            )
        }
    }
}

/// Reads from `pty` until `needle` shows up; returns what was read.
#[track_caller]
pub fn expect(pty: &Pty, needle: &str) -> String {
    String::from_utf8_lossy(&pty.read_until(needle.as_bytes(), T)).into_owned()
}

/// Types `text` on `pty`.
pub fn typ(pty: &Pty, text: &str) {
    pty.write_all(text.as_bytes());
}

// ---- raw protocol clients ----

/// A raw attach-socket connection made by the test.
pub struct Raw {
    pub fd: OwnedFd,
}

impl Raw {
    /// Connects to the monitor of `id`.
    #[track_caller]
    pub fn connect(m: &Mon, id: &str) -> Raw {
        let dir = rustix::fs::open(
            m.dir(id),
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .expect("open the monitor directory");
        let fd = rustix::net::socket_with(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::SEQPACKET,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .expect("socket");
        let path = format!("/proc/self/fd/{}/attach.sock", dir.as_raw_fd());
        let addr = rustix::net::SocketAddrUnix::new(path.as_str()).expect("address");
        rustix::net::connect(&fd, &addr).expect("connect to attach.sock");
        Raw { fd }
    }

    /// Sends raw bytes as one packet.
    pub fn send_raw(&self, bytes: &[u8]) -> rustix::io::Result<usize> {
        rustix::net::send(&self.fd, bytes, rustix::net::SendFlags::NOSIGNAL)
    }

    /// Sends a frame.
    #[track_caller]
    pub fn send(&self, f: &Frame<'_>) {
        self.send_raw(&f.to_vec().expect("encode")).expect("send");
    }

    /// Sends a packet carrying `fds` with SCM_RIGHTS.
    pub fn send_fds(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> rustix::io::Result<usize> {
        let mut space =
            vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        assert!(control.push(rustix::net::SendAncillaryMessage::ScmRights(fds)));
        rustix::net::sendmsg(
            &self.fd,
            &[IoSlice::new(bytes)],
            &mut control,
            rustix::net::SendFlags::NOSIGNAL,
        )
    }

    /// Receives the next frame (owned bytes) within `d`; `None` at EOF or timeout.
    pub fn recv(&self, d: Duration) -> Option<Vec<u8>> {
        if !berth_itest::cmd::readable_within(&self.fd, d) {
            return None;
        }
        let mut buf = vec![0u8; berth_proto::MAX_FRAME + 1];
        match rustix::net::recv(&self.fd, &mut buf, rustix::net::RecvFlags::empty()) {
            Ok((_, 0)) | Err(_) => None,
            Ok((_, n)) => {
                buf.truncate(n);
                Some(buf)
            }
        }
    }

    /// Receives frames until one satisfies `want` (returned) or `d` passes (panic).
    #[track_caller]
    pub fn recv_until(&self, d: Duration, mut want: impl FnMut(&Frame<'_>) -> bool) -> Vec<u8> {
        let start = Instant::now();
        let mut seen = Vec::new();
        while start.elapsed() < d {
            let Some(b) = self.recv(d.saturating_sub(start.elapsed())) else {
                break;
            };
            let f = Frame::decode(&b).unwrap_or_else(|e| panic!("bad frame from the monitor: {e}"));
            if want(&f) {
                return b;
            }
            seen.push(format!("{f:?}").chars().take(120).collect::<String>());
        }
        panic!("watchdog: expected frame not received within {d:?}; got: {seen:#?}");
    }

    /// Expects an `Error` frame (skipping others) and returns its (code, message).
    #[track_caller]
    pub fn expect_error(&self) -> (berth_proto::ErrorCode, String) {
        let b = self.recv_until(T, |f| matches!(f, Frame::Error { .. }));
        match Frame::decode(&b) {
            Ok(Frame::Error { code, message }) => (code, message.to_string()),
            other => panic!("not an error: {other:?}"),
        }
    }

    /// Whether the monitor closed the connection within `d` (frames before EOF are skipped).
    pub fn closed_within(&self, d: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < d {
            if !berth_itest::cmd::readable_within(&self.fd, d.saturating_sub(start.elapsed())) {
                return false;
            }
            let mut buf = vec![0u8; berth_proto::MAX_FRAME + 1];
            match rustix::net::recv(&self.fd, &mut buf, rustix::net::RecvFlags::empty()) {
                Ok((_, 0)) | Err(_) => return true,
                Ok(_) => {}
            }
        }
        false
    }
}

/// A hello for the console with `f` applied.
pub fn hello(f: impl FnOnce(&mut Hello<'static>)) -> Frame<'static> {
    let mut h = Hello::default();
    f(&mut h);
    Frame::Hello(h)
}

/// The number of open fds of `pid`.
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Whether process `pid` exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}
