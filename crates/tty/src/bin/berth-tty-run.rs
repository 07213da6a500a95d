//! `berth-tty-run`: runs a command on a fresh pty (or on pipes) through berth's foreground relay,
//! the way `berth run` does without `-d`. A manual-testing and benchmarking tool, and the helper
//! process of the crate's tests (the relay blocks signals, which the test harness must not do).
//!
//! ```text
//! berth-tty-run [--pipes] [--size ROWSxCOLS] [--raw-peer] [--keep-onlcr] [--no-raw] [--debug]
//!               -- COMMAND [ARG...]
//! berth-tty-run --selftest NAME [ARG...]
//! ```
//! The command's pty peer name is exported as `BERTH_TTY_NAME`. The exit code is the command's
//! (128 + signal if it was killed); 125 if berth-tty-run itself failed.
//!
//! Benchmark drivers (used by `bench/tty.sh`; each prints one `key=value` line on stdout):
//!
//! ```text
//! berth-tty-run --selftest drain [--raw-peer] [--expect N] -- COMMAND [ARG...]
//!     COMMAND runs on a new pty (session leader, pty as controlling terminal, 24x80); the master
//!     is read until EIO. Prints bytes, the time from the first to the last byte, MB/s, the last
//!     VmHWM and the highest VmRSS of COMMAND's process sampled every 20 ms while it ran (the
//!     relaying runtime when COMMAND is `berth run`), and that process's CPU time (user+system,
//!     last sample). --raw-peer: make the pty raw first (the baseline).
//! berth-tty-run --selftest echo-rtt N -- COMMAND [ARG...]
//!     COMMAND runs on a new pty and must print `ready` once its side echoes raw bytes (e.g.
//!     `sh -c 'stty raw -echo; echo ready; exec dd bs=1 count=N'`); then N times: write one byte
//!     to the master, wait for it to come back. Prints p50/p90/p99/max in microseconds.
//! berth-tty-run --selftest console-drain BUNDLE ID [--expect N] -- RUNTIME [ARG...]
//!     `RUNTIME create --console-socket S --bundle BUNDLE ID`, receives the master (made raw),
//!     then times `RUNTIME start ID` until the master reads EIO; `RUNTIME delete -f ID` after.
//! ```

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use berth_tty::relay::{Pipes, Terminal};
use berth_tty::{PtyPair, RawGuard, Relay, Winsize};
use rustix::process::Pid;

struct Options {
    pipes: bool,
    size: Option<Winsize>,
    raw_peer: bool,
    keep_onlcr: bool,
    no_raw: bool,
    command: Vec<String>,
}

const USAGE: &str = "usage: berth-tty-run [--pipes] [--size ROWSxCOLS] [--raw-peer] [--keep-onlcr] [--no-raw] [--debug] -- COMMAND [ARG...]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--selftest") {
        std::process::exit(selftest(&args[1..]));
    }
    let opts = match parse(args) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("berth-tty-run: {msg}\n{USAGE}");
            std::process::exit(125);
        }
    };
    let code = match run(&opts) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth-tty-run: {e}");
            125
        }
    };
    std::process::exit(code);
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut opts = Options {
        pipes: false,
        size: None,
        raw_peer: false,
        keep_onlcr: false,
        no_raw: false,
        command: Vec::new(),
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--pipes" => opts.pipes = true,
            "--raw-peer" => opts.raw_peer = true,
            "--keep-onlcr" => opts.keep_onlcr = true,
            "--no-raw" => opts.no_raw = true,
            "--debug" => {
                let _ = log::set_logger(&StderrLogger);
                log::set_max_level(log::LevelFilter::Debug);
            }
            "--size" => {
                let v = it.next().ok_or("--size needs ROWSxCOLS")?;
                let (r, c) = v.split_once('x').ok_or("--size needs ROWSxCOLS")?;
                let rows = r.parse::<u64>().map_err(|e| format!("--size {v}: {e}"))?;
                let cols = c.parse::<u64>().map_err(|e| format!("--size {v}: {e}"))?;
                opts.size =
                    Some(Winsize::from_console_size(rows, cols).map_err(|e| e.to_string())?);
            }
            "--" => {
                opts.command = it.collect();
                break;
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if opts.command.is_empty() {
        return Err("no command".into());
    }
    Ok(opts)
}

fn stdio(n: i32) -> BorrowedFd<'static> {
    match n {
        0 => rustix::stdio::stdin(),
        1 => rustix::stdio::stdout(),
        _ => rustix::stdio::stderr(),
    }
}

fn run(opts: &Options) -> Result<i32, Box<dyn std::error::Error>> {
    let (signals, _old_mask) = berth_tty::relay::block_relay_signals()?;
    let mut cmd = Command::new(&opts.command[0]);
    cmd.args(&opts.command[1..]);
    berth_sys::signal::command_reset_signals(&mut cmd);
    if opts.pipes {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", opts.command[0]))?;
        let pid = Pid::from_child(&child);
        let pipes = Pipes {
            stdin: child.stdin.take().map(|p| (stdio(0), OwnedFd::from(p))),
            stdout: child.stdout.take().map(|p| (OwnedFd::from(p), stdio(1))),
            stderr: child.stderr.take().map(|p| (OwnedFd::from(p), stdio(2))),
        };
        let status = Relay::pipes(signals, pid, pipes)?.run()?;
        return Ok(status.code());
    }

    let pair = PtyPair::open_host()?;
    let console = [2, 1, 0]
        .into_iter()
        .map(stdio)
        .find(|fd| rustix::termios::isatty(fd));
    let size = match (opts.size, console) {
        (Some(s), _) => s,
        (None, Some(c)) => Winsize::get(c)
            .ok()
            .filter(|w| !w.is_zero())
            .unwrap_or(Winsize::DEFAULT),
        (None, None) => Winsize::DEFAULT,
    };
    size.set(pair.peer.as_fd())?;
    if opts.raw_peer {
        berth_tty::raw::make_raw(pair.peer.as_fd())?;
    } else if !opts.keep_onlcr {
        berth_tty::set_onlcr(pair.peer.as_fd(), false)?;
    }
    let guard = match console {
        Some(c) if !opts.no_raw => {
            RawGuard::install_panic_restore();
            RawGuard::enter(c)?
        }
        _ => None,
    };
    let peer = |pair: &PtyPair| pair.peer.try_clone().map(Stdio::from);
    cmd.stdin(peer(&pair)?)
        .stdout(peer(&pair)?)
        .stderr(peer(&pair)?);
    cmd.env("BERTH_TTY_NAME", pair.peer_name());
    berth_sys::tty::command_set_ctty(&mut cmd, 0);
    let child = cmd
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", opts.command[0]))?;
    let pid = Pid::from_child(&child);
    // The master must see the peer close when the command closes it: keep no copy of the peer
    // (`cmd` still holds the three given as stdio).
    drop((child, cmd));
    let PtyPair { master, peer, .. } = pair;
    drop(peer);
    let terminal = Terminal {
        master: master.as_fd(),
        stdin: Some(stdio(0)),
        stdout: stdio(1),
        console,
    };
    let status = Relay::terminal(signals, pid, terminal)?.run()?;
    drop(guard);
    Ok(status.code())
}

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let _ = writeln!(
            std::io::stderr(),
            "berth-tty-run: {}: {}",
            record.level(),
            record.args()
        );
    }
    fn flush(&self) {}
}

/// Test entry points; each prints what it observed on stdout and exits 0, or exits non-zero.
fn selftest(args: &[String]) -> i32 {
    let name = args.first().map(String::as_str).unwrap_or("");
    let result = match name {
        "emit" => emit(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(0)),
        "raw-hold" => raw_hold(args.get(1).map(String::as_str).unwrap_or("drop")),
        "raw-background" => raw_background(),
        "raw-bg-child" => raw_bg_child(),
        "host-console" => host_console_check(),
        "pty-baseline" => pty_baseline(&args[1..]),
        "drain" => bench::drain(&args[1..]),
        "echo-rtt" => bench::echo_rtt(&args[1..]),
        "console-drain" => bench::console_drain(&args[1..]),
        "open-in" => open_in(args.get(1).map(String::as_str).unwrap_or("")),
        "send-console" => send_console(args.get(1).map(String::as_str).unwrap_or("")),
        _ => Err(format!("unknown selftest {name:?}").into()),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("selftest {name}: {e}");
            1
        }
    }
}

/// The byte at position `i` of the `emit` pattern: printable lines of 64 bytes ending in `\n`.
fn pattern(i: usize) -> u8 {
    if i % 64 == 63 {
        b'\n'
    } else {
        b'!' + (i % 89) as u8
    }
}

/// Writes `n` bytes of the pattern to stdout with large writes, then exits at once.
fn emit(n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let data: Vec<u8> = (0..n).map(pattern).collect();
    let mut rest = &data[..];
    while !rest.is_empty() {
        match rustix::io::write(stdio(1), rest) {
            Ok(k) => rest = &rest[k..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn raw_hold(mode: &str) -> Result<(), Box<dyn std::error::Error>> {
    RawGuard::install_panic_restore();
    let guard = RawGuard::enter(stdio(0))?.ok_or("RawGuard::enter returned None")?;
    println!("raw");
    std::io::stdout().flush()?;
    let mut b = [0u8; 1];
    rustix::io::read(stdio(0), &mut b)?;
    match mode {
        "drop" => drop(guard),
        "panic" => panic!("selftest panic with the guard alive"),
        "panic-leak" => {
            std::mem::forget(guard);
            panic!("selftest panic with the guard leaked: only the hook restores");
        }
        "leak" => std::mem::forget(guard),
        other => return Err(format!("unknown raw-hold mode {other:?}").into()),
    }
    Ok(())
}

fn raw_background() -> Result<(), Box<dyn std::error::Error>> {
    rustix::process::setsid()?;
    berth_sys::tty::tiocsctty(stdio(0), false)?;
    let fg = RawGuard::enter(stdio(0))?;
    println!("fg:{}", if fg.is_some() { "entered" } else { "skipped" });
    drop(fg);
    std::io::stdout().flush()?;
    let status = Command::new(std::env::current_exe()?)
        .args(["--selftest", "raw-bg-child"])
        .process_group(0)
        .status()?;
    if !status.success() {
        return Err(format!("raw-bg-child: {status}").into());
    }
    Ok(())
}

fn raw_bg_child() -> Result<(), Box<dyn std::error::Error>> {
    let g = RawGuard::enter(stdio(0))?;
    println!("bg:{}", if g.is_some() { "entered" } else { "skipped" });
    Ok(())
}

/// Connects to the console socket at `path` (as given: relative paths use the cwd) and sends the
/// master of a new pty.
fn send_console(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let pair = PtyPair::open_host()?;
    let sock = berth_tty::ConsoleSocket::connect(path.as_ref())?;
    sock.send_master(berth_tty::MASTER_NAME, pair.master.as_fd())?;
    Ok(())
}

/// Prints which host console was found (`stdio N` or `/dev/tty`) or the error, after leaving the
/// session so that there is no controlling terminal.
fn host_console_check() -> Result<(), Box<dyn std::error::Error>> {
    rustix::process::setsid()?;
    match berth_tty::host_console() {
        Ok(berth_tty::HostConsole::Stdio(fd)) => {
            use std::os::fd::AsRawFd;
            println!("stdio {}", fd.as_raw_fd())
        }
        Ok(berth_tty::HostConsole::DevTty(_)) => println!("/dev/tty"),
        Err(e) => println!("error: {e}"),
    }
    Ok(())
}

/// Allocates ptys in the devpts instance mounted at `dir` (a fresh one, mounted by the test with
/// `max=2`): prints both indexes, whether the peers live in that instance and not in the host's,
/// and the error for a third allocation.
fn open_in(dir: &str) -> Result<(), Box<dyn std::error::Error>> {
    use berth_tty::pty::Reopen;
    use rustix::fs::{Mode, OFlags};
    let dirfd = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let a = PtyPair::open_in(dirfd.as_fd())?;
    let b = PtyPair::open_in_via(dirfd.as_fd(), Reopen::Openat)?;
    let instance = rustix::fs::fstat(&dirfd)?.st_dev;
    let host = rustix::fs::stat("/dev/pts")?.st_dev;
    let same = [&a, &b].iter().all(|p| {
        rustix::fs::fstat(&p.peer)
            .map(|st| st.st_dev == instance && st.st_dev != host)
            .unwrap_or(false)
    });
    println!(
        "{} {} {}",
        a.index,
        b.index,
        if same {
            "same-instance"
        } else {
            "WRONG-instance"
        }
    );
    match PtyPair::open_in(dirfd.as_fd()) {
        Ok(c) => println!("third: allocated {}", c.index),
        Err(e) => println!("third: {e}"),
    }
    Ok(())
}

/// The benchmark baseline for the relay: runs `COMMAND...` on a raw pty and copies the master to
/// stdout with plain blocking reads and writes (what the relay does, minus everything else).
fn pty_baseline(command: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let pair = PtyPair::open_host()?;
    berth_tty::raw::make_raw(pair.peer.as_fd())?;
    let mut cmd = Command::new(command.first().ok_or("pty-baseline COMMAND...")?);
    cmd.args(&command[1..])
        .stdin(Stdio::null())
        .stdout(pair.peer.try_clone()?)
        .stderr(pair.peer.try_clone()?);
    let mut child = cmd.spawn()?;
    drop(cmd);
    let PtyPair { master, peer, .. } = pair;
    drop(peer);
    let mut buf = vec![0u8; 65536];
    loop {
        match rustix::io::read(&master, &mut buf) {
            Ok(0) | Err(rustix::io::Errno::IO) => break,
            Ok(n) => {
                let mut rest = &buf[..n];
                while !rest.is_empty() {
                    let k = rustix::io::write(stdio(1), rest)?;
                    rest = &rest[k..];
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    child.wait()?;
    Ok(())
}

/// The benchmark drivers (see the crate docs at the top of this file).
mod bench {
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use berth_tty::{PtyPair, Winsize};

    type Res<T> = Result<T, Box<dyn std::error::Error>>;

    /// Splits `[OPTIONS...] -- COMMAND...`.
    fn split(args: &[String]) -> Res<(&[String], &[String])> {
        let at = args
            .iter()
            .position(|a| a == "--")
            .ok_or("missing -- COMMAND")?;
        let (opts, cmd) = (&args[..at], &args[at + 1..]);
        if cmd.is_empty() {
            return Err("missing COMMAND after --".into());
        }
        Ok((opts, cmd))
    }

    fn opt_value(opts: &[String], name: &str) -> Res<Option<u64>> {
        match opts.iter().position(|o| o == name) {
            Some(i) => Ok(Some(
                opts.get(i + 1)
                    .ok_or(format!("{name} needs a value"))?
                    .parse()?,
            )),
            None => Ok(None),
        }
    }

    /// Spawns `cmd` on a new host pty (session leader, controlling terminal, 24x80) and
    /// returns the child and the master; the caller's copy of the peer is closed.
    fn spawn_on_pty(cmd: &[String], raw_peer: bool) -> Res<(Child, OwnedFd)> {
        let pair = PtyPair::open_host()?;
        Winsize::new(24, 80).set(pair.peer.as_fd())?;
        if raw_peer {
            berth_tty::raw::make_raw(pair.peer.as_fd())?;
        }
        let mut c = Command::new(&cmd[0]);
        c.args(&cmd[1..])
            .stdin(Stdio::from(pair.peer.try_clone()?))
            .stdout(Stdio::from(pair.peer.try_clone()?))
            .stderr(Stdio::from(pair.peer.try_clone()?));
        berth_sys::tty::command_set_ctty(&mut c, 0);
        let child = c.spawn().map_err(|e| format!("spawn {}: {e}", cmd[0]))?;
        drop(c);
        let PtyPair { master, peer, .. } = pair;
        drop(peer);
        Ok((child, master))
    }

    /// VmHWM and VmRSS of `pid` in KiB, if it still exists.
    fn memory(pid: u32) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let get = |key: &str| {
            status.lines().find_map(|l| {
                l.strip_prefix(key)?
                    .trim()
                    .trim_end_matches(" kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        };
        Some((get("VmHWM:")?, get("VmRSS:")?))
    }

    /// User plus system CPU time of `pid` in milliseconds (from `/proc/PID/stat`).
    fn cpu_time_ms(pid: u32) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // rest starts at field 3 (state): utime is field 14, stime field 15.
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        Some(ticks * 1000 / rustix::param::clock_ticks_per_second())
    }

    /// CPU time of all of `pid`'s threads in nanoseconds (from `/proc/PID/task/*/schedstat`).
    fn cpu_time_ns(pid: u32) -> Option<u64> {
        let mut total = 0u64;
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
            let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(total)
    }

    fn code_of(child: &mut Child) -> Res<i32> {
        use std::os::unix::process::ExitStatusExt;
        let st = child.wait()?;
        Ok(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)))
    }

    pub(super) fn drain(args: &[String]) -> Res<()> {
        let (opts, cmd) = split(args)?;
        let raw_peer = opts.iter().any(|o| o == "--raw-peer");
        let expect = opt_value(opts, "--expect")?;
        let start = Instant::now();
        let (mut child, master) = spawn_on_pty(cmd, raw_peer)?;
        let pid = child.id();
        let mut buf = vec![0u8; 64 * 1024];
        let (mut bytes, mut first, mut last) = (0u64, None, start);
        let (mut hwm, mut rss) = (0u64, 0u64);
        // The start of the output, shown if COMMAND fails.
        let mut head = Vec::new();
        let mut sampled = start;
        // VmHWM as last seen (the process may reset it, as berth's relay does when it starts),
        // and the highest VmRSS sampled.
        let mut cpu_ms = 0u64;
        let sample = |hwm: &mut u64, rss: &mut u64, cpu: &mut u64| {
            if let Some((h, r)) = memory(pid) {
                *hwm = h;
                *rss = (*rss).max(r);
            }
            if let Some(c) = cpu_time_ms(pid) {
                *cpu = c;
            }
        };
        loop {
            match rustix::io::read(&master, &mut buf) {
                Ok(0) | Err(rustix::io::Errno::IO) => break,
                Ok(n) => {
                    let now = Instant::now();
                    if bytes < 4096 {
                        head.extend_from_slice(&buf[..n.min(4096)]);
                    }
                    first.get_or_insert(now);
                    last = now;
                    bytes += n as u64;
                    if now.duration_since(sampled) >= Duration::from_millis(20) {
                        sampled = now;
                        sample(&mut hwm, &mut rss, &mut cpu_ms);
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(format!("read pty master: {e}").into()),
            }
        }
        sample(&mut hwm, &mut rss, &mut cpu_ms);
        let code = code_of(&mut child)?;
        let first = first.unwrap_or(last);
        let copy = last.duration_since(first).as_secs_f64();
        let mbps = if copy > 0.0 {
            bytes as f64 / copy / 1e6
        } else {
            0.0
        };
        println!(
            "drain bytes={bytes} first_byte_ms={:.1} copy_s={copy:.3} mbps={mbps:.1} hwm_kb={hwm} rss_kb={rss} cpu_ms={cpu_ms} code={code}",
            first.duration_since(start).as_secs_f64() * 1e3
        );
        if let Some(want) = expect {
            if bytes != want {
                return Err(format!("read {bytes} bytes, expected {want}").into());
            }
        }
        if code != 0 {
            return Err(format!(
                "{} exited {code}; output began with {:?}",
                cmd[0],
                String::from_utf8_lossy(&head)
            )
            .into());
        }
        Ok(())
    }

    fn read_until(master: BorrowedFd<'_>, needle: &[u8], limit: Duration) -> Res<Vec<u8>> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(needle.len()).any(|w| w == needle) {
            if Instant::now() > deadline {
                return Err(format!(
                    "no {:?} within {limit:?}; got {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&got)
                )
                .into());
            }
            match rustix::io::read(master, &mut buf) {
                Ok(0) | Err(rustix::io::Errno::IO) => {
                    return Err(format!(
                        "EOF before {:?}: {:?}",
                        String::from_utf8_lossy(needle),
                        String::from_utf8_lossy(&got)
                    )
                    .into());
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(got)
    }

    pub(super) fn echo_rtt(args: &[String]) -> Res<()> {
        let (opts, cmd) = split(args)?;
        let n: usize = opts.first().ok_or("echo-rtt N -- COMMAND")?.parse()?;
        let (mut child, master) = spawn_on_pty(cmd, false)?;
        read_until(master.as_fd(), b"ready", Duration::from_secs(30))?;
        // Whatever follows "ready" on that line.
        std::thread::sleep(Duration::from_millis(100));
        drain_pending(master.as_fd())?;
        let mut times = Vec::with_capacity(n);
        let mut one = [0u8; 1];
        let cpu_before = cpu_time_ns(child.id());
        for i in 0..n {
            let b = [b'a' + (i % 26) as u8];
            let t = Instant::now();
            rustix::io::write(&master, &b)?;
            loop {
                match rustix::io::read(&master, &mut one) {
                    Ok(1) => break,
                    Ok(_) | Err(rustix::io::Errno::IO) => {
                        return Err(format!("EOF after {i} round trips").into());
                    }
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            times.push(t.elapsed());
            if one[0] != b[0] {
                return Err(format!(
                    "round trip {i}: sent {:?}, got {:?}",
                    b[0] as char, one[0] as char
                )
                .into());
            }
        }
        // The relaying process's CPU time per round trip (it is still relaying the last bytes).
        let cpu_us = match (cpu_before, cpu_time_ns(child.id())) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1e3 / n.max(1) as f64,
            _ => f64::NAN,
        };
        let mut rest = [0u8; 4096];
        while let Ok(k) = rustix::io::read(&master, &mut rest) {
            if k == 0 {
                break;
            }
        }
        let code = code_of(&mut child)?;
        times.sort();
        let pct =
            |p: f64| times[((times.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6;
        println!(
            "echo n={n} p50_us={:.1} p90_us={:.1} p99_us={:.1} max_us={:.1} cpu_us_per_rt={cpu_us:.1} code={code}",
            pct(0.5),
            pct(0.9),
            pct(0.99),
            pct(1.0)
        );
        Ok(())
    }

    fn drain_pending(master: BorrowedFd<'_>) -> Res<()> {
        let flags = rustix::fs::fcntl_getfl(master)?;
        rustix::fs::fcntl_setfl(master, flags | rustix::fs::OFlags::NONBLOCK)?;
        let mut buf = [0u8; 4096];
        while let Ok(n) = rustix::io::read(master, &mut buf) {
            if n == 0 {
                break;
            }
        }
        rustix::fs::fcntl_setfl(master, flags)?;
        Ok(())
    }

    fn run_checked(prefix: &[String], args: &[&str], extra: &[&std::path::Path]) -> Res<()> {
        let mut c = Command::new(&prefix[0]);
        c.args(&prefix[1..]).args(args);
        for p in extra {
            c.arg(p);
        }
        let out = c.stdin(Stdio::null()).output()?;
        if !out.status.success() {
            return Err(format!(
                "{prefix:?} {args:?}: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        Ok(())
    }

    pub(super) fn console_drain(args: &[String]) -> Res<()> {
        let (opts, runtime) = split(args)?;
        let (bundle, id) = match opts {
            [b, i, ..] => (std::path::PathBuf::from(b), i.as_str()),
            _ => return Err("console-drain BUNDLE ID [--expect N] -- RUNTIME...".into()),
        };
        let expect = opt_value(&opts[2..], "--expect")?;
        let dir = std::env::temp_dir().join(format!("berth-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let sock = dir.join("c.sock");
        let _ = std::fs::remove_file(&sock);
        let listener = berth_tty::ConsoleListener::bind(&sock)?;
        let result = (|| -> Res<(u64, f64)> {
            let sock_arg = sock.to_str().ok_or("socket path")?;
            let bundle_arg = bundle.to_str().ok_or("bundle path")?;
            run_checked(
                runtime,
                &[
                    "create",
                    "--console-socket",
                    sock_arg,
                    "--bundle",
                    bundle_arg,
                    id,
                ],
                &[],
            )?;
            let (_, master) = listener.accept_master()?;
            berth_tty::raw::make_raw(master.as_fd())?;
            let t0 = Instant::now();
            let mut start = Command::new(&runtime[0]);
            start
                .args(&runtime[1..])
                .args(["start", id])
                .stdin(Stdio::null());
            let mut start = start.spawn()?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut bytes = 0u64;
            loop {
                match rustix::io::read(&master, &mut buf) {
                    Ok(0) | Err(rustix::io::Errno::IO) => break,
                    Ok(n) => bytes += n as u64,
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let secs = t0.elapsed().as_secs_f64();
            let st = start.wait()?;
            if !st.success() {
                return Err(format!("start: {st}").into());
            }
            Ok((bytes, secs))
        })();
        let _ = run_checked(runtime, &["delete", "-f", id], &[]);
        let _ = listener.remove();
        let _ = std::fs::remove_dir_all(&dir);
        let (bytes, secs) = result?;
        println!(
            "console bytes={bytes} secs={secs:.3} mbps={:.1}",
            bytes as f64 / secs / 1e6
        );
        if let Some(want) = expect {
            if bytes != want {
                return Err(format!("read {bytes} bytes, expected {want}").into());
            }
        }
        Ok(())
    }
}
