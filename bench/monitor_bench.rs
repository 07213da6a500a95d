//! The console monitor's speed and memory, each against a baseline measured in the same run
//! (run it with `bench/monitor.sh`, as root; it builds the release binaries first).
//!
//! 1. **Echo round trip**: one byte written to a terminal comes back from `cat` in raw mode.
//!    Baseline: a pty pair whose peer runs busybox `cat`. Through the monitor: the bench's pty
//!    runs `berth attach`, the container (created with `berth run -d -t`) runs the same `cat`.
//!    p50/p90/p99 and the p50 difference; the same again with the monitor's and client's
//!    adaptive polling off (`BERTH_POLL_US=0`), with the keys read by the client and written to
//!    the master instead of read by the monitor (`BERTH_ATTACH_CLIENT_KEYS=1`, what the
//!    monitor's reading them saves), and once more ("framed") with the output and input in
//!    frames through the client (`BERTH_ATTACH_FRAMED=1`, what direct mode saves), and for each
//!    the monitor's plus the client's CPU time per round trip, so what the polling buys and costs
//!    is seen in one run.
//! 2. **Throughput**: busybox `dd` writes N bytes of zeros to a terminal. Baseline: a pty pair
//!    read at full speed by the bench. Through the monitor: the container's `dd`, received by 1
//!    and by 10 `berth attach --read-only --no-stdin --lag-policy catch-up` clients whose stdout
//!    the bench reads; the time until the last client has everything and exited. One client is
//!    also measured framed (`BERTH_ATTACH_FRAMED=1`).
//! 3. **Memory**: 100 containers each with a monitor and one attached client; the monitors'
//!    `Private_Dirty` (after `sync`, so freshly built binaries' dirty page cache does not count),
//!    against conmon 2.1.6 holding runc containers started in the same run.
//!
//! Nothing here asserts a time: it prints figures and ratios.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_proto::{Frame, Hello, Start};
use rustix::pty::OpenptFlags;
use serde_json::{Value, json};

type Res<T> = Result<T, String>;

struct Opts {
    berth: PathBuf,
    monitor: PathBuf,
    busybox: PathBuf,
    rounds: usize,
    bytes: u64,
    reps: usize,
    containers: usize,
    conmons: usize,
    only: Option<String>,
}

fn parse_opts() -> Res<Opts> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/release/examples/monitor_bench → target/release/
    let release = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot find the target directory")?
        .to_path_buf();
    let mut o = Opts {
        berth: release.join("berth"),
        monitor: release.join("berth-monitor"),
        busybox: PathBuf::from("/bin/busybox"),
        rounds: 2000,
        bytes: 256 << 20,
        reps: 3,
        containers: 100,
        conmons: 5,
        only: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut v = || {
            it.next()
                .cloned()
                .ok_or(format!("{a}: a value is required"))
        };
        let num = |s: String| {
            s.parse::<u64>()
                .map_err(|_| format!("{a}: {s:?} is not a number"))
        };
        match a.as_str() {
            "--berth" => o.berth = PathBuf::from(v()?),
            "--monitor" => o.monitor = PathBuf::from(v()?),
            "--busybox" => o.busybox = PathBuf::from(v()?),
            "--rounds" => o.rounds = num(v()?)? as usize,
            "--bytes" => o.bytes = num(v()?)?,
            "--reps" => o.reps = num(v()?)?.max(1) as usize,
            "--containers" => o.containers = num(v()?)? as usize,
            "--conmons" => o.conmons = num(v()?)? as usize,
            "--only" => o.only = Some(v()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    for p in [&o.berth, &o.monitor, &o.busybox] {
        if !p.is_file() {
            return Err(format!("{} does not exist", p.display()));
        }
    }
    Ok(o)
}

/// A pty pair from the host's /dev/ptmx: (master, peer).
fn pty() -> Res<(OwnedFd, OwnedFd)> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let m = rustix::pty::openpt(flags).map_err(|e| format!("openpt: {e}"))?;
    rustix::pty::grantpt(&m).map_err(|e| format!("grantpt: {e}"))?;
    rustix::pty::unlockpt(&m).map_err(|e| format!("unlockpt: {e}"))?;
    let p = rustix::pty::ioctl_tiocgptpeer(&m, flags).map_err(|e| format!("TIOCGPTPEER: {e}"))?;
    let ws = rustix::termios::Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&m, ws).map_err(|e| format!("TIOCSWINSZ: {e}"))?;
    Ok((m, p))
}

/// Runs `cmd` with `peer` as stdin/stdout/stderr and controlling terminal.
fn spawn_on(mut cmd: Command, peer: &OwnedFd) -> Res<Child> {
    let dup = |f: &OwnedFd| f.try_clone().map(Stdio::from).map_err(|e| e.to_string());
    cmd.stdin(dup(peer)?).stdout(dup(peer)?).stderr(dup(peer)?);
    berth_sys::tty::command_set_ctty(&mut cmd, 0);
    cmd.spawn().map_err(|e| format!("spawn: {e}"))
}

fn readable(fd: BorrowedFd<'_>, d: Duration) -> bool {
    let mut p = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    let ts = rustix::time::Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    };
    matches!(rustix::event::poll(&mut p, Some(&ts)), Ok(n) if n > 0)
}

/// Reads whatever arrives until `quiet` passes without data.
fn drain(fd: BorrowedFd<'_>, quiet: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while readable(fd, quiet) {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// The echo loop: one byte out, one byte back, `rounds` times after 50 warm-up rounds.
fn echo_rounds(master: BorrowedFd<'_>, rounds: usize) -> Res<Vec<f64>> {
    let mut times = Vec::with_capacity(rounds);
    let mut b = [0u8; 64];
    for i in 0..rounds + 50 {
        let t = Instant::now();
        rustix::io::write(master, b"x").map_err(|e| format!("write: {e}"))?;
        let mut got = 0;
        while got < 1 {
            if !readable(master, Duration::from_secs(5)) {
                return Err("echo: no answer within 5 s".into());
            }
            got += rustix::io::read(master, &mut b).map_err(|e| format!("read: {e}"))?;
        }
        if i >= 50 {
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times)
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

struct Env {
    o: Opts,
    dir: PathBuf,
    root: PathBuf,
    rootfs: PathBuf,
    seq: usize,
}

impl Env {
    fn berth(&self) -> Command {
        let mut c = Command::new(&self.o.berth);
        c.env("BERTH_MONITOR", &self.o.monitor)
            .arg("--root")
            .arg(&self.root);
        c
    }

    fn run_ok(&self, mut c: Command, what: &str) -> Res<String> {
        let out = c
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{what}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{what}: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A bundle whose process is `args`, sharing the one rootfs.
    fn bundle(&mut self, args: &[&str]) -> Res<PathBuf> {
        self.seq += 1;
        let b = self.dir.join(format!("bundle-{}", self.seq));
        std::fs::create_dir_all(&b).map_err(|e| e.to_string())?;
        let spec = self.run_ok(
            {
                let mut c = Command::new(&self.o.berth);
                c.args(["spec", "--bundle"]).arg(&b);
                c
            },
            "berth spec",
        );
        spec?;
        let path = b.join("config.json");
        let mut v: Value =
            serde_json::from_slice(&std::fs::read(&path).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        v["process"]["terminal"] = json!(true);
        v["process"]["args"] = json!(args);
        v["root"]["path"] = json!(self.rootfs.display().to_string());
        std::fs::write(&path, v.to_string()).map_err(|e| e.to_string())?;
        Ok(b)
    }

    fn start(&mut self, args: &[&str], id: &str) -> Res<()> {
        let b = self.bundle(args)?;
        let mut c = self.berth();
        c.args(["run", "-d", "-t", "--bundle"]).arg(&b).arg(id);
        self.run_ok(c, &format!("run -d -t {id}")).map(|_| ())
    }

    fn delete(&self, id: &str) {
        let mut c = self.berth();
        c.args(["delete", "--force", id]);
        let _ = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    fn sessions(&self, id: &str) -> Res<Value> {
        let mut c = self.berth();
        c.args(["sessions", "--format", "json", id]);
        let out = self.run_ok(c, "sessions")?;
        serde_json::from_str(&out).map_err(|e| e.to_string())
    }

    fn monitor_dir(&self, id: &str) -> PathBuf {
        self.root.join("@monitor").join(id)
    }

    /// A raw protocol connection: press Enter in the console, detach.
    fn enter(&self, id: &str) -> Res<()> {
        let dir = self.monitor_dir(id);
        let fd = rustix::net::socket_with(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::SEQPACKET,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| e.to_string())?;
        let addr =
            rustix::net::SocketAddrUnix::new(dir.join("attach.sock")).map_err(|e| e.to_string())?;
        rustix::net::connect(&fd, &addr).map_err(|e| format!("connect: {e}"))?;
        for f in [
            Frame::Hello(Hello {
                start: Start::Live,
                ..Hello::default()
            }),
            Frame::Stdin(b"\r"),
            Frame::Detach,
        ] {
            rustix::net::send(
                &fd,
                &f.to_vec().map_err(|e| e.to_string())?,
                rustix::net::SendFlags::empty(),
            )
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// CPU time of all of `pid`'s threads in microseconds (`/proc/PID/task/*/schedstat`).
fn cpu_us(pid: u64) -> f64 {
    let mut ns = 0u64;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                ns += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
            }
        }
    }
    ns as f64 / 1e3
}

/// One echo set-up through the monitor: a container, its monitor and an attached client.
struct Attached {
    id: String,
    master: OwnedFd,
    client: std::process::Child,
    /// The monitor's and the client's pids, for their CPU time.
    pids: [u64; 2],
    times: Vec<f64>,
    cpu: f64,
    /// A foreground `berth run` (no monitor): ended by deleting its container.
    foreground: bool,
}

/// The reference: the same `cat` container run in the foreground (`berth run` relaying on the
/// bench's pty, no monitor), so the monitor's path is compared with berth's own relay.
fn foreground(env: &mut Env, id: &str) -> Res<Attached> {
    let b = env.bundle(&["sh", "-c", "stty raw -echo; echo READY; exec cat"])?;
    let (master, p) = pty()?;
    let mut c = env.berth();
    c.args(["run", "--bundle"]).arg(&b).arg(id);
    let client = spawn_on(c, &p)?;
    drop(p);
    drain(master.as_fd(), Duration::from_millis(800));
    Ok(Attached {
        id: id.to_string(),
        master,
        pids: [u64::from(client.id()), 0],
        client,
        times: Vec::new(),
        cpu: 0.0,
        foreground: true,
    })
}

/// Starts a `cat` container and attaches to it; `poll_us` sets BERTH_POLL_US for its monitor
/// and client (`None`: as the environment has it).
fn attached(
    env: &mut Env,
    id: &str,
    poll_us: Option<&str>,
    client_env: Option<&str>,
) -> Res<Attached> {
    let b = env.bundle(&["sh", "-c", "stty raw -echo; echo READY; exec cat"])?;
    let mut c = env.berth();
    if let Some(v) = poll_us {
        c.env("BERTH_POLL_US", v);
    }
    c.args(["run", "-d", "-t", "--bundle"]).arg(&b).arg(id);
    env.run_ok(c, &format!("run -d -t {id}"))?;
    let (master, p) = pty()?;
    let mut c = env.berth();
    if let Some(v) = poll_us {
        c.env("BERTH_POLL_US", v);
    }
    if let Some(var) = client_env {
        c.env(var, "1");
    }
    c.args(["attach", id]);
    let client = spawn_on(c, &p)?;
    drop(p);
    drain(master.as_fd(), Duration::from_millis(500));
    let monitor = env.sessions(id)?["monitor_pid"].as_u64().unwrap_or(0);
    Ok(Attached {
        id: id.to_string(),
        master,
        pids: [monitor, u64::from(client.id())],
        client,
        times: Vec::new(),
        cpu: 0.0,
        foreground: false,
    })
}

/// All set-ups stay up and are measured in alternating blocks, so a change in the machine's
/// load hits them alike. Returns the raw pair's times, then each monitor set-up (default
/// polling, polling off) with its times and the monitor's plus client's CPU per round trip.
fn echo_bench(env: &mut Env) -> Res<(Vec<f64>, Vec<Attached>)> {
    let bb = env.o.busybox.display().to_string();
    // Baseline: busybox cat on a pty pair.
    let (raw_m, p) = pty()?;
    let mut c = Command::new(&env.o.busybox);
    c.args([
        "sh",
        "-c",
        &format!("{bb} stty raw -echo; echo READY; exec {bb} cat"),
    ]);
    let mut child = spawn_on(c, &p)?;
    drop(p);
    drain(raw_m.as_fd(), Duration::from_millis(300));

    // Through the monitor and `berth attach`, with the adaptive polling as configured and off.
    let mut setups = vec![
        attached(env, "bench-echo", None, None)?,
        attached(env, "bench-echo-nopoll", Some("0"), None)?,
        attached(
            env,
            "bench-echo-ckeys",
            None,
            Some("BERTH_ATTACH_CLIENT_KEYS"),
        )?,
        attached(env, "bench-echo-framed", None, Some("BERTH_ATTACH_FRAMED"))?,
        foreground(env, "bench-echo-fg")?,
    ];

    let mut raw = Vec::new();
    let blocks = 10;
    let per_block = env.o.rounds / blocks;
    for _ in 0..blocks {
        raw.extend(echo_rounds(raw_m.as_fd(), per_block)?);
        for s in &mut setups {
            let before: f64 = s.pids.iter().map(|&p| cpu_us(p)).sum();
            s.times.extend(echo_rounds(s.master.as_fd(), per_block)?);
            let after: f64 = s.pids.iter().map(|&p| cpu_us(p)).sum();
            // echo_rounds makes 50 warm-up rounds on top of those it returns.
            s.cpu += (after - before) / (per_block + 50) as f64 / blocks as f64;
        }
    }
    raw.sort_by(|a, b| a.total_cmp(b));
    for s in &mut setups {
        s.times.sort_by(|a, b| a.total_cmp(b));
        if s.foreground {
            env.delete(&s.id);
            let _ = s.client.wait();
            continue;
        }
        let _ = rustix::io::write(&s.master, b"\x10\x11");
        let _ = s.client.wait();
        env.delete(&s.id);
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok((raw, setups))
}

fn throughput_raw(env: &Env) -> Res<f64> {
    let (m, p) = pty()?;
    let count = env.o.bytes / 65536;
    let t = Instant::now();
    let mut c = Command::new(&env.o.busybox);
    c.args(["dd", "if=/dev/zero", "bs=65536", &format!("count={count}")])
        .stdin(Stdio::null())
        .stdout(Stdio::from(p.try_clone().map_err(|e| e.to_string())?))
        .stderr(Stdio::null());
    let mut child = c.spawn().map_err(|e| e.to_string())?;
    drop(p);
    let mut total = 0u64;
    let mut buf = vec![0u8; 65536];
    while total < count * 65536 {
        match rustix::io::read(&m, &mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => break,
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = child.wait();
    if total < count * 65536 {
        return Err(format!("raw pty: only {total} bytes"));
    }
    Ok(total as f64 / secs)
}

fn throughput_monitor(env: &mut Env, clients: usize, framed: bool) -> Res<(f64, u64)> {
    let count = env.o.bytes / 65536;
    let id = format!("bench-tp-{clients}-{}", env.seq + 1);
    env.start(
        &[
            "sh",
            "-c",
            &format!("read x; dd if=/dev/zero bs=65536 count={count} 2>/dev/null"),
        ],
        &id,
    )?;
    let mut readers = Vec::new();
    let mut procs = Vec::new();
    for _ in 0..clients {
        let mut c = env.berth();
        if framed {
            c.env("BERTH_ATTACH_FRAMED", "1");
        }
        c.args([
            "attach",
            "--read-only",
            "--no-stdin",
            "--lag-policy",
            "catch-up",
            &id,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        let mut child = c.spawn().map_err(|e| e.to_string())?;
        let mut out = child.stdout.take().ok_or("no stdout")?;
        readers.push(std::thread::spawn(move || {
            let mut total = 0u64;
            let mut buf = vec![0u8; 65536];
            loop {
                match out.read(&mut buf) {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n as u64,
                }
            }
        }));
        procs.push(child);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = env.sessions(&id)?;
        if s["sessions"][0]["clients"].as_array().map_or(0, Vec::len) == clients {
            break;
        }
        if Instant::now() > deadline {
            return Err("clients did not attach".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = Instant::now();
    env.enter(&id)?;
    // A run that stalls (output that never comes) is an error, not a hang: at 1 MB/s the
    // bytes would have arrived long before this.
    let deadline = t + Duration::from_secs(60 + count * 65536 / 1_000_000);
    while !readers.iter().all(|r| r.is_finished()) {
        if Instant::now() > deadline {
            for p in &mut procs {
                let _ = p.kill();
                let _ = p.wait();
            }
            env.delete(&id);
            return Err(format!(
                "{clients} client(s): not all output arrived within {:?}",
                deadline - t
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let secs = t.elapsed().as_secs_f64();
    let mut least = u64::MAX;
    for r in readers {
        least = least.min(r.join().map_err(|_| "reader panicked")?);
    }
    for mut p in procs {
        let _ = p.wait();
    }
    env.delete(&id);
    Ok((count as f64 * 65536.0 / secs, least))
}

fn smaps(pid: i32) -> Res<(f64, f64, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .map_err(|e| format!("smaps_rollup of {pid}: {e}"))?;
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1000.0
    };
    Ok((get("Rss:"), get("Pss:"), get("Private_Dirty:")))
}

fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (mean, pct(v, 0.5), v[v.len() - 1])
}

fn memory_bench(env: &mut Env) -> Res<()> {
    let n = env.o.containers;
    eprintln!("memory: starting {n} containers with a monitor and one client each…");
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("bench-mem-{i}");
        env.start(&["sh"], &id)?;
        let mut c = env.berth();
        c.args(["attach", "--read-only", "--no-stdin", &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        clients.push(c.spawn().map_err(|e| e.to_string())?);
        ids.push(id);
    }
    // conmon 2.1.6 holding runc containers, in the same run.
    let runc_root = env.dir.join("runc");
    let mut conmon_pids = Vec::new();
    let mut runc_ids = Vec::new();
    let bundle = env.bundle(&["sh"])?;
    for i in 0..env.o.conmons {
        let id = format!("bench-conmon-{i}");
        let d = env.dir.join(&id);
        for sub in ["exit", "sock"] {
            std::fs::create_dir_all(d.join(sub)).map_err(|e| e.to_string())?;
        }
        let pidfile = d.join("conmon.pid");
        let st = Command::new("conmon")
            .args([
                "--api-version",
                "1",
                "-c",
                &id,
                "-u",
                &id,
                "-r",
                "/usr/sbin/runc",
                "-b",
            ])
            .arg(&bundle)
            .arg("-p")
            .arg(d.join("pid"))
            .args(["-n", &id, "--exit-dir"])
            .arg(d.join("exit"))
            .arg("-l")
            .arg(format!("k8s-file:{}", d.join("ctr.log").display()))
            .arg("--socket-dir-path")
            .arg(d.join("sock"))
            .args([
                "-t",
                "--log-level",
                "error",
                "--runtime-arg",
                "--root",
                "--runtime-arg",
            ])
            .arg(&runc_root)
            .arg("-P")
            .arg(&pidfile)
            .current_dir(&d)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("conmon: {e}"))?;
        if !st.success() {
            return Err(format!("conmon for {id}: {st}"));
        }
        // conmon runs `runc create` in the background: wait until the container exists.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !Command::new("/usr/sbin/runc")
            .arg("--root")
            .arg(&runc_root)
            .args(["state", &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?
            .success()
        {
            if Instant::now() > deadline {
                return Err(format!("conmon did not create {id}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut c = Command::new("/usr/sbin/runc");
        c.arg("--root").arg(&runc_root).args(["start", &id]);
        env.run_ok(c, "runc start")?;
        runc_ids.push(id);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .map_err(|e| e.to_string())?
            .trim()
            .parse()
            .map_err(|_| "conmon pid file")?;
        conmon_pids.push(pid);
    }
    std::thread::sleep(Duration::from_secs(1));
    let _ = Command::new("sync").status();
    std::thread::sleep(Duration::from_millis(300));
    let mut mon = (Vec::new(), Vec::new(), Vec::new());
    for id in &ids {
        let pid: i32 = std::fs::read_to_string(env.monitor_dir(id).join("monitor.pid"))
            .map_err(|e| e.to_string())?
            .trim()
            .parse()
            .map_err(|_| "monitor pid file")?;
        let (r, p, d) = smaps(pid)?;
        mon.0.push(r);
        mon.1.push(p);
        mon.2.push(d);
    }
    let mut cm = (Vec::new(), Vec::new(), Vec::new());
    for pid in &conmon_pids {
        let (r, p, d) = smaps(*pid)?;
        cm.0.push(r);
        cm.1.push(p);
        cm.2.push(d);
    }
    let (mr, cr) = (stats(&mut mon.0), stats(&mut cm.0));
    let (mp, cp) = (stats(&mut mon.1), stats(&mut cm.1));
    let (md, cd) = (stats(&mut mon.2), stats(&mut cm.2));
    println!();
    println!(
        "memory per container (MB = 10^6 bytes; {n} berth monitors with a client each, {} conmon 2.1.6 + runc)",
        conmon_pids.len()
    );
    println!(
        "                       berth-monitor mean/median/max     conmon mean/median/max     ratio (mean)"
    );
    for (name, m, c) in [("RSS", mr, cr), ("PSS", mp, cp), ("Private_Dirty", md, cd)] {
        println!(
            "  {name:<20} {:>6.3} {:>6.3} {:>6.3}               {:>6.3} {:>6.3} {:>6.3}       {:>5.2}",
            m.0,
            m.1,
            m.2,
            c.0,
            c.1,
            c.2,
            m.0 / c.0
        );
    }
    for mut c in clients {
        let _ = c.kill();
        let _ = c.wait();
    }
    for id in &ids {
        env.delete(id);
    }
    for id in &runc_ids {
        let _ = Command::new("/usr/sbin/runc")
            .arg("--root")
            .arg(&runc_root)
            .args(["delete", "--force", id])
            .status();
    }
    Ok(())
}

fn run() -> Res<()> {
    let o = parse_opts()?;
    if !rustix::process::geteuid().is_root() {
        return Err("run as root (it creates containers)".into());
    }
    let dir = std::env::temp_dir().join(format!("berth-monitor-bench-{}", std::process::id()));
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).map_err(|e| e.to_string())?;
    for d in ["proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::copy(&o.busybox, rootfs.join("bin/busybox")).map_err(|e| e.to_string())?;
    for a in ["sh", "cat", "dd", "stty", "sleep", "echo"] {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
    }
    let mut env = Env {
        root: dir.join("state"),
        rootfs,
        dir: dir.clone(),
        o,
        seq: 0,
    };

    println!(
        "berth console monitor benchmark ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let only = env.o.only.clone();
    let want = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if want("echo") {
        let (raw, setups) = echo_bench(&mut env)?;
        println!();
        println!(
            "echo round trip, 1 byte, {} rounds (µs)                     p50      p90      p99   CPU/rt",
            env.o.rounds
        );
        println!(
            "  raw pty pair                                           {:>7.1}  {:>7.1}  {:>7.1}",
            pct(&raw, 0.5),
            pct(&raw, 0.9),
            pct(&raw, 0.99)
        );
        for (s, name) in setups.iter().zip([
            "monitor + berth attach",
            "  the same, polling off",
            "  keys read by the client (BERTH_ATTACH_CLIENT_KEYS=1)",
            "  the same, framed (BERTH_ATTACH_FRAMED=1)",
            "foreground berth run (its relay, no monitor)",
        ]) {
            println!(
                "  {name:<54} {:>7.1}  {:>7.1}  {:>7.1}  {:>7.1}",
                pct(&s.times, 0.5),
                pct(&s.times, 0.9),
                pct(&s.times, 0.99),
                s.cpu
            );
        }
        let mon = &setups[0].times;
        println!(
            "  added by the monitor path (p50): {:.1} µs (ratio {:.2}); CPU/rt: monitor + client \
             CPU time per round trip (µs)",
            pct(mon, 0.5) - pct(&raw, 0.5),
            pct(mon, 0.5) / pct(&raw, 0.5)
        );
        let fg = &setups[setups.len() - 1].times;
        println!(
            "  added by the foreground relay (p50): {:.1} µs; the monitor path minus the relay: \
             {:.1} µs (relay CPU/rt: berth run's own)",
            pct(fg, 0.5) - pct(&raw, 0.5),
            pct(mon, 0.5) - pct(fg, 0.5)
        );
    }
    if want("throughput") {
        let mut raws = Vec::new();
        let mut ones = Vec::new();
        let mut tens = Vec::new();
        let mut framed = Vec::new();
        let mut short = 0u64;
        for _ in 0..env.o.reps {
            raws.push(throughput_raw(&env)?);
            let (r1, got1) = throughput_monitor(&mut env, 1, false)?;
            let (r10, got10) = throughput_monitor(&mut env, 10, false)?;
            let (f1, gotf) = throughput_monitor(&mut env, 1, true)?;
            ones.push(r1);
            tens.push(r10);
            framed.push(f1);
            short += env.o.bytes.saturating_sub(got1.min(got10).min(gotf));
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let (r, one, ten) = (med(&mut raws), med(&mut ones), med(&mut tens));
        let one_framed = med(&mut framed);
        println!();
        println!(
            "throughput, {} MiB of zeros, median of {} (MB/s = 10^6 bytes/s)",
            env.o.bytes >> 20,
            env.o.reps
        );
        println!("  raw pty pair                 {:>8.1} MB/s", r / 1e6);
        println!(
            "  monitor, 1 client            {:>8.1} MB/s   ratio {:.2}",
            one / 1e6,
            one / r
        );
        println!(
            "  monitor, 10 clients (each)   {:>8.1} MB/s   ratio {:.2}",
            ten / 1e6,
            ten / r
        );
        println!(
            "  the same, 1 client, framed   {:>8.1} MB/s   ratio {:.2} (BERTH_ATTACH_FRAMED=1)",
            one_framed / 1e6,
            one_framed / r
        );
        if short > 0 {
            println!(
                "  (some client received {short} bytes less than written: skipped by rotation)"
            );
        }
    }
    if want("memory") {
        memory_bench(&mut env)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("monitor_bench: {e}");
        std::process::exit(1);
    }
}
