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
