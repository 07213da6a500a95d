//! The attach client: `berth attach`, and the loop `berth console`, `berth logs` and
//! `berth run -t` share. It talks to the container's console monitor over `attach.sock` in
//! `<root>/@monitor/<id>/` with the `berth_proto` frames.
//!
//! # Order of operations
//! 1. connect (through `/proc/self/fd/N/attach.sock`, so long roots work); a missing directory
//!    or a refused connection is an error naming the container;
//! 2. block the session's signals (read from a signalfd until the session ends, the pending
//!    ones read before the old mask comes back), so none kills the client with the terminal
//!    raw; find the user's terminal (the first of stdin, stdout, stderr that is one) for the
//!    size; put stdin in raw mode (output flags kept, restored on every way out) when it is a
//!    terminal that is read;
//! 3. send `Hello` (role, size, where to start, lag policy, takeover), then loop on the socket,
//!    stdin, a signalfd (`SIGWINCH` → `Resize`; `SIGINT`/`SIGTERM`/`SIGHUP`/`SIGQUIT` →
//!    detach, or forwarded with `--sig-proxy`) and the detach-key timer;
//! 4. stdin goes through the [`Scanner`]: the detach sequence sends `Detach`; a held prefix is
//!    forwarded after `--detach-timeout`; at end of input the held bytes are forwarded and
//!    `StdinEof` asks the monitor for the terminal's `VEOF` (as foreground `berth run` does),
//!    unless stdin is a terminal: its end is a hang-up (the user went away), which detaches;
//! 5. output (`Repaint`, `Output`) is written to stdout as it comes; the end is `Exit` (the
//!    process's status becomes ours), `Detached`, `Takeover` or an error.
//!
//! On the way out, when stdout is a terminal, the modes a full-screen program may have left on
//! (alternate screen, hidden cursor, bracketed paste, mouse reporting, application keys,
//! colours) are switched off again.
//!
//! # Direct output and input
//! When stdout is a terminal or a pipe, it goes to the monitor with the `Hello` and the monitor
//! writes the output to it itself (as tmux's server writes to its clients' terminals). A
//! read-write client whose stdin is a terminal or a pipe sends that too, with its detach keys
//! and their hold time (`direct_keys`): the monitor reads the keys itself, scans them with the
//! same [`Scanner`], writes the rest to the terminal's master and ends the session with
//! `Detached` on the detach keys (as tmux's server reads its clients' terminals). Then neither
//! direction of a keystroke's round trip crosses this process: the monitor alone carries it,
//! as foreground `berth run` does. Not when stdin is a terminal whose foreground process group
//! is not ours (a background job with `SIGTTOU` ignored): the monitor's reads would meet none
//! of the job-control checks ours do and take the shell's keys. Then, or with
//! `BERTH_ATTACH_CLIENT_KEYS` set, or when the monitor cannot reopen stdin, this process reads
//! the keys, scans them and writes them to a dup of the master the monitor sends with
//! `Attached` (stdin is read only once `Attached` says which way input goes); input the master
//! does not take at once waits here, and stdin is not read meanwhile. Either way this process
//! forwards signals and sizes and ends the session; after asking to detach it waits (up to
//! [`DETACH_WAIT`]) for the monitor's `Detached`, which comes after the monitor's last write to
//! the terminal and its reset.
//! The monitor reopens the terminal through `/proc`, so the description the user's shell shares
//! never turns non-blocking. Only a monitor running as our own uid gets our terminal (root
//! attaching to a rootless container's monitor must not give a process that user controls a
//! descriptor of root's terminal). `BERTH_ATTACH_FRAMED` (any value) keeps everything in
//! frames; a stdout the monitor cannot reopen (a socket, a file) gets frames anyway, and so
//! does a monitor an older berth started (it refuses the hello's direct flags as a bad frame:
//! the client connects again and says hello without them).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use berth_proto::frame::MAX_DATA;
use berth_proto::{
    DetachKeys, ErrorCode, ExitCode, Flow, Frame, Hello, KeyScan, Role, Scan, Scanner, Start,
    Target,
};
use berth_sys::signal::{SigSet, SignalFd};
use berth_tty::{PollingWait, Winsize};
use clap::{Args, ValueEnum};
use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType};

/// The directory under `--root` that holds the monitors.
pub(crate) const MONITOR_DIR: &str = "@monitor";
/// The largest terminal dimension the monitor accepts.
const MAX_DIMENSION: u16 = 1000;

/// `--lag-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LagPolicy {
    /// Skip to a repaint of the current screen (drops are counted).
    Repaint,
    /// Be disconnected.
    Disconnect,
    /// Read what was missed from the log files.
    CatchUp,
}

/// `berth attach` flags.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Attach to this exec session (see `berth sessions`) instead of the console.
    #[arg(long = "exec", value_name = "SESSION")]
    pub exec: Option<String>,
    /// Detach keys, Docker style: comma-separated, each a character or ctrl-<a-z|@|[|\|]|^|_>;
    /// "" disables detaching. Typing the first key twice sends it once.
    #[arg(
        long = "detach-keys",
        value_name = "KEYS",
        default_value = "ctrl-p,ctrl-q"
    )]
    pub detach_keys: String,
    /// Send a held first detach key after this many milliseconds (0: hold it until the next key).
    #[arg(long = "detach-timeout", value_name = "MS", default_value_t = 1000)]
    pub detach_timeout: u64,
    /// Watch only: input is not sent and this terminal's size does not count.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Do not read stdin at all (detach with a signal, e.g. Ctrl-C).
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Take the terminal over: every other client is told and disconnected.
    #[arg(long)]
    pub force: bool,
    /// This terminal's size never counts for the container's terminal size.
    #[arg(long = "ignore-size")]
    pub ignore_size: bool,
    /// Replay the output from this byte offset, then continue live.
    #[arg(long, value_name = "OFFSET", conflicts_with = "tail")]
    pub since: Option<u64>,
    /// Replay the last N lines of output, then continue live.
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
    /// What happens when this client falls behind.
    #[arg(long = "lag-policy", value_enum, default_value_t = LagPolicy::Repaint)]
    pub lag_policy: LagPolicy,
    /// How far (bytes) this client may fall behind before the lag policy applies (0: the
    /// monitor's default).
    #[arg(long = "queue-limit", value_name = "BYTES", default_value_t = 0)]
    pub queue_limit: u32,
    /// Forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the terminal's process
    /// instead of detaching on them.
    #[arg(long = "sig-proxy")]
    pub sig_proxy: bool,
    /// The container id.
    pub id: String,
}

/// A target the client owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TargetArg {
    Console,
    Tty(u16),
    Exec(String),
}

impl TargetArg {
    pub(crate) fn from_flags(exec: Option<&str>, tty: Option<u16>) -> anyhow::Result<TargetArg> {
        Ok(match (exec, tty) {
            (Some(_), Some(_)) => bail!("--exec and --tty cannot be used together"),
            (Some(""), None) => bail!("--exec: the session name is empty"),
            (Some(s), None) => TargetArg::Exec(s.to_string()),
            (None, Some(0)) | (None, None) => TargetArg::Console,
            (None, Some(n)) => TargetArg::Tty(n),
        })
    }

    pub(crate) fn as_target(&self) -> Target<'_> {
        match self {
            TargetArg::Console => Target::Console,
            TargetArg::Tty(n) => Target::Tty(*n),
            TargetArg::Exec(s) => Target::Exec(s),
        }
    }
}

/// Everything a session needs.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub target: TargetArg,
    pub keys: Option<DetachKeys>,
    pub detach_timeout: Option<Duration>,
    pub read_only: bool,
    pub no_stdin: bool,
    pub force: bool,
    pub ignore_size: bool,
    pub start: Start,
    pub flow: Flow,
    pub queue_limit: u32,
    pub sig_proxy: bool,
    /// Stop after the replay (`logs` without `-f`).
    pub no_follow: bool,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The terminal's process ended.
    Exited(ExitCode),
    /// Detached (keys, signal, or the monitor confirmed).
    Detached,
    /// The replay ended (`no_follow`).
    Replayed,
}

impl Options {
    /// An interactive session on `target`, detaching on `keys` (a held prefix flushed after
    /// one second), starting with a repaint and skipped to a repaint when it falls behind:
    /// `berth console` and `berth run -t` in the foreground.
    pub(crate) fn interactive(target: TargetArg, keys: DetachKeys) -> Options {
        Options {
            target,
            keys: Some(keys),
            detach_timeout: Some(Duration::from_secs(1)),
            read_only: false,
            no_stdin: false,
            force: false,
            ignore_size: false,
            start: Start::Repaint,
            flow: Flow::SkipToRepaint,
            queue_limit: 0,
            sig_proxy: false,
            no_follow: false,
        }
    }
}

impl AttachArgs {
    pub(crate) fn options(&self) -> anyhow::Result<Options> {
        let keys = DetachKeys::parse_docker(&self.detach_keys)
            .map_err(|e| anyhow!("--detach-keys {e}"))?;
        Ok(Options {
            target: TargetArg::from_flags(self.exec.as_deref(), None)?,
            keys,
            detach_timeout: (self.detach_timeout > 0)
                .then(|| Duration::from_millis(self.detach_timeout)),
            read_only: self.read_only,
            no_stdin: self.no_stdin,
            force: self.force,
            ignore_size: self.ignore_size,
            start: match (self.since, self.tail) {
                (Some(o), _) => Start::Offset(o),
                (None, Some(n)) => Start::TailLines(n),
                (None, None) => Start::Repaint,
            },
            flow: match self.lag_policy {
                LagPolicy::Repaint => Flow::SkipToRepaint,
                LagPolicy::Disconnect => Flow::Disconnect,
                LagPolicy::CatchUp => Flow::CatchUp,
            },
            queue_limit: self.queue_limit,
            sig_proxy: self.sig_proxy,
            no_follow: false,
        })
    }
}

/// `berth attach`.
pub(crate) fn run(root: &Path, a: &AttachArgs) -> anyhow::Result<i32> {
    let opts = a.options()?;
    Ok(match session(root, &a.id, &opts)? {
        Outcome::Exited(e) => e.code(),
        Outcome::Detached | Outcome::Replayed => 0,
    })
}

/// The monitor directory of a container.
pub(crate) fn monitor_dir(root: &Path, id: &str) -> PathBuf {
    root.join(MONITOR_DIR).join(id)
}

/// Connects to the monitor of `id` (blocking socket).
pub(crate) fn connect(root: &Path, id: &str) -> anyhow::Result<OwnedFd> {
    if id.is_empty() || id.contains('/') || id.contains('@') || id.starts_with('.') {
        bail!("container id {id:?}: not a valid id");
    }
    let dir_path = monitor_dir(root, id);
    let dir = match rustix::fs::open(
        &dir_path,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        Ok(d) => d,
        Err(Errno::NOENT) => bail!(
            "container {id} has no console monitor (start it with `berth run -d -t` or `berth create -t`)"
        ),
        Err(e) => {
            return Err(std::io::Error::from(e)).context(format!("open {}", dir_path.display()));
        }
    };
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .context("socket")?;
    let path = format!(
        "/proc/self/fd/{}/attach.sock",
        std::os::fd::AsRawFd::as_raw_fd(&dir)
    );
    let addr = SocketAddrUnix::new(path.as_str()).context("attach socket address")?;
    loop {
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => return Ok(fd),
            Err(Errno::INTR) => {}
            Err(Errno::CONNREFUSED | Errno::NOENT) => bail!(
                "the console monitor of container {id} is not running (its socket refuses connections); the container's terminal is gone"
            ),
            Err(e) => {
                return Err(std::io::Error::from(e))
                    .context(format!("connect to the console monitor of container {id}"));
            }
        }
    }
}

pub(crate) fn send_frame(fd: BorrowedFd<'_>, f: &Frame<'_>) -> anyhow::Result<()> {
    send_frame_with_fds(fd, f, &[])
}

/// Receives one packet (blocking unless `nonblock`); `Ok(None)` at EOF, `Err` on error;
/// `Ok(Some(0))`… never: an empty packet is an error.
pub(crate) fn recv_packet(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    nonblock: bool,
) -> anyhow::Result<Option<Option<usize>>> {
    Ok(match recv_packet_fd(fd, buf, nonblock)? {
        Packet::Eof => None,
        Packet::None => Some(None),
        Packet::Frame(n, _) => Some(Some(n)),
    })
}

/// What [`recv_packet_fd`] got.
enum Packet {
    /// The monitor closed the connection.
    Eof,
    /// Nothing pending (non-blocking).
    None,
    /// A packet of this length, with the descriptor that came with it.
    Frame(usize, Option<OwnedFd>),
}

/// [`recv_packet`], also returning the first descriptor that came with the packet (the
/// master, with `Attached`, when direct input was asked for); any others are closed.
fn recv_packet_fd(fd: BorrowedFd<'_>, buf: &mut [u8], nonblock: bool) -> anyhow::Result<Packet> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage};
    let mut flags = RecvFlags::TRUNC | RecvFlags::CMSG_CLOEXEC;
    if nonblock {
        flags |= RecvFlags::DONTWAIT;
    }
    let mut reset = false;
    loop {
        let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [std::io::IoSliceMut::new(&mut *buf)];
        let got = rustix::net::recvmsg(fd, &mut iov, &mut control, flags);
        let mut passed = None;
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                for f in fds {
                    passed.get_or_insert(f);
                }
            }
        }
        match got.map(|m| m.bytes) {
            Ok(0) => return Ok(Packet::Eof),
            Ok(n) if n > buf.len() => {
                bail!("the console monitor sent an oversized frame ({n} bytes)")
            }
            Ok(n) => return Ok(Packet::Frame(n, passed)),
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => return Ok(Packet::None),
            // A reset is reported once, before the frames still queued (the monitor's last
            // words, e.g. an error): read on until they are gone.
            Err(Errno::CONNRESET) if !reset => reset = true,
            Err(Errno::CONNRESET) => return Ok(Packet::Eof),
            Err(e) => {
                return Err(std::io::Error::from(e)).context("receive from the console monitor");
            }
        }
    }
}

/// Sends `request` and collects the reply frames until the monitor closes the connection.
pub(crate) fn request<T>(
    root: &Path,
    id: &str,
    request: &Frame<'_>,
    mut each: impl FnMut(Frame<'_>) -> anyhow::Result<Option<T>>,
) -> anyhow::Result<Option<T>> {
    let fd = connect(root, id)?;
    send_frame(fd.as_fd(), request)?;
    let mut buf = vec![0u8; berth_proto::MAX_FRAME + 1];
    let mut result = None;
    loop {
        let Some(Some(n)) = recv_packet(fd.as_fd(), &mut buf, false)? else {
            return Ok(result);
        };
        let f = Frame::decode(&buf[..n]).context("a frame from the console monitor")?;
        if let Frame::Error { message, .. } = f {
            bail!("{message}");
        }
        if let Some(t) = each(f)? {
            result = Some(t);
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                let mut p = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::OUT,
                )];
                let _ = rustix::event::poll(&mut p, None);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Tracks whether output switched to the alternate screen (good enough for a reset on exit).
#[derive(Default)]
struct ModeTracker {
    alternate: bool,
}

impl ModeTracker {
    /// Looks at each `ESC` only (found with `memchr`): output streams through here.
    fn feed(&mut self, data: &[u8]) {
        let mut at = 0;
        while let Some(p) = find_esc(&data[at..]) {
            let w = &data[at + p..];
            if w.len() >= 8 && (w.starts_with(b"\x1b[?1049") || w.starts_with(b"\x1b[?1047")) {
                match w[7] {
                    b'h' => self.alternate = true,
                    b'l' => self.alternate = false,
                    _ => {}
                }
            }
            at += p + 1;
        }
    }
}

/// The index of the first `ESC` in `data` (`memchr`'s vector search).
fn find_esc(data: &[u8]) -> Option<usize> {
    memchr::memchr(0x1b, data)
}

fn tty_size(fd: Option<BorrowedFd<'_>>) -> Option<(u16, u16)> {
    let ws = Winsize::get(fd?).ok()?;
    if ws.rows == 0 || ws.cols == 0 {
        return None;
    }
    Some((ws.rows.min(MAX_DIMENSION), ws.cols.min(MAX_DIMENSION)))
}

const T_SOCK: u64 = 1;
const T_STDIN: u64 = 2;
const T_SIG: u64 = 3;
const T_MASTER: u64 = 4;

/// The session's signals, blocked and read from a signalfd until the session ends.
struct BlockedSignals {
    fd: SignalFd,
    old_mask: SigSet,
}

impl BlockedSignals {
    fn new(signals: &[i32]) -> anyhow::Result<BlockedSignals> {
        let set = SigSet::from_signals(signals).context("signal set")?;
        let old_mask = berth_sys::signal::block(&set).context("block signals")?;
        match SignalFd::new(&set) {
            Ok(fd) => Ok(BlockedSignals { fd, old_mask }),
            Err(e) => {
                let _ = berth_sys::signal::set_mask(&old_mask);
                Err(e).context("signalfd")
            }
        }
    }
}

impl Drop for BlockedSignals {
    /// Reads what is still pending before the old mask comes back: unblocked, a SIGTERM that
    /// came after the session had ended would kill berth with its default action.
    fn drop(&mut self) {
        while let Ok(Some(_)) = self.fd.read() {}
        let _ = berth_sys::signal::set_mask(&self.old_mask);
    }
}

/// Runs one attach session (see the module docs).
pub(crate) fn session(root: &Path, id: &str, opts: &Options) -> anyhow::Result<Outcome> {
    let mut sock = connect(root, id)?;
    let stdin = rustix::stdio::stdin();
    let stdout = rustix::stdio::stdout();
    let stderr = rustix::stdio::stderr();
    let is_tty = |fd: BorrowedFd<'_>| rustix::termios::isatty(fd);
    let tty = [stdin, stdout, stderr].into_iter().find(|fd| is_tty(*fd));
    let read_stdin = !opts.no_stdin;
    // Known now: once the terminal hangs up, `isatty` says no.
    let stdin_tty = is_tty(stdin);
    // Before the terminal goes raw and the monitor hears of us: a SIGTERM from then on is read
    // from the signalfd, never delivered with its default action (which would leave the
    // terminal raw).
    let mut sigs = vec![
        libc::SIGWINCH,
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
    ];
    if opts.sig_proxy {
        sigs.extend([libc::SIGUSR1, libc::SIGUSR2]);
    }
    let signals = BlockedSignals::new(&sigs)?;
    let mut raw = if read_stdin && stdin_tty {
        berth_tty::RawGuard::enter(stdin).context("raw mode on the terminal")?
    } else {
        None
    };
    if raw.is_some() {
        berth_tty::RawGuard::install_panic_restore();
    }
    let sizing = !opts.read_only && !opts.ignore_size;
    // Our terminal goes only to a monitor of our own uid: root attaching to an unprivileged
    // user's container must not hand its terminal to a process that user controls.
    let direct_allowed = std::env::var_os(FRAMED_ENV).is_none()
        && rustix::net::sockopt::socket_peercred(&sock)
            .is_ok_and(|c| c.uid == rustix::process::geteuid());
    let mut hello = Hello {
        role: if opts.read_only {
            Role::ReadOnly
        } else {
            Role::ReadWrite
        },
        ignore_size: opts.ignore_size,
        force: opts.force,
        no_follow: opts.no_follow,
        flow: opts.flow,
        queue_limit: opts.queue_limit,
        size: if sizing { tty_size(tty) } else { None },
        start: opts.start,
        target: opts.target.as_target(),
        direct_output: direct_allowed && !opts.no_follow && berth_tty::can_reopen_private(stdout),
        direct_input: direct_allowed && !opts.read_only && read_stdin,
        direct_keys: None,
    };
    let key_bytes = opts.keys.as_ref().map_or(&[][..], |k| k.bytes());
    if hello.direct_output
        && hello.direct_input
        && std::env::var_os(CLIENT_KEYS_ENV).is_none()
        && berth_tty::can_reopen_private(stdin)
        && in_foreground(stdin)
        && key_bytes.len() <= usize::from(u8::MAX)
    {
        hello.direct_keys = Some(KeyScan {
            detach_keys: key_bytes,
            hold_ms: opts.detach_timeout.map_or(0, |d| {
                u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
            }),
        });
    }
    let direct_input_asked = hello.direct_input;
    // The descriptors go in the order the hello's flags name them: output, then keys.
    let passed = [stdout, stdin];
    let count = usize::from(hello.direct_output) + usize::from(hello.direct_keys.is_some());
    send_frame_with_fds(sock.as_fd(), &Frame::Hello(hello), &passed[..count])?;

    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).context("epoll_create")?;
    epoll::add(&ep, &sock, EventData::new_u64(T_SOCK), EventFlags::IN).context("epoll_ctl")?;
    epoll::add(&ep, &signals.fd, EventData::new_u64(T_SIG), EventFlags::IN).context("epoll_ctl")?;
    // stdin: epoll it; files (which epoll refuses) are always readable. With direct input
    // asked for, only once `Attached` says where input goes (what is typed meanwhile waits in
    // the terminal), so it cannot overtake input sent in frames.
    let mut stdin_open = read_stdin;
    let mut stdin_file = false;
    let mut stdin_watched = false;
    if !direct_input_asked {
        watch_stdin(&ep, stdin, stdin_open, &mut stdin_watched, &mut stdin_file)?;
    }
    let mut input = InputSink::default();
    let mut input_armed = false;

    let mut scanner = Scanner::new(opts.keys.clone());
    let mut held_since: Option<Instant> = None;
    let mut modes = ModeTracker::default();
    let mut buf = vec![0u8; berth_proto::MAX_FRAME + 1];
    let mut inbuf = vec![0u8; 32 * 1024];
    let mut forward = Vec::new();
    let mut attached = false;
    // The monitor writes our output itself (see "Direct output and input" in the module docs).
    let mut direct = false;
    // Direct output, detach asked: the monitor's `Detached` is awaited until then.
    let mut detaching: Option<Instant> = None;
    let mut waiter = PollingWait::from_env();

    let result: anyhow::Result<Outcome> = 'run: loop {
        let timeout = match (held_since, opts.detach_timeout) {
            (Some(t), Some(d)) => Some(d.saturating_sub(t.elapsed())),
            _ => None,
        };
        let timeout = match detaching {
            Some(until) => {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break Ok(Outcome::Detached);
                }
                Some(timeout.map_or(left, |t| t.min(left)))
            }
            None => timeout,
        };
        let timeout = if stdin_file && stdin_open {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        let ts = timeout.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        let ready: Vec<u64> = match waiter.wait(ep.as_fd(), ts.as_ref()) {
            Ok(r) => r.iter().map(|e| e.data.u64()).collect(),
            Err(Errno::INTR) => continue,
            Err(e) => break Err(std::io::Error::from(e)).context("epoll_wait"),
        };
        // A held detach prefix that waited long enough is typed after all.
        if let (Some(t), Some(d)) = (held_since, opts.detach_timeout) {
            if scanner.holding() && t.elapsed() >= d {
                forward.clear();
                scanner.flush(&mut forward);
                held_since = None;
                if !opts.read_only {
                    if let Err(e) = input.send(sock.as_fd(), &forward) {
                        break Err(e);
                    }
                }
            }
        }
        let mut readable = ready.clone();
        if stdin_file && stdin_open && stdin_watched && !input.blocked() {
            readable.push(T_STDIN);
        }
        for t in readable {
            match t {
                T_MASTER => {
                    if let Err(e) = input.flush(sock.as_fd()) {
                        break 'run Err(e);
                    }
                }
                T_SOCK => loop {
                    match recv_packet_fd(sock.as_fd(), &mut buf, true) {
                        Err(e) => break 'run Err(e),
                        Ok(Packet::Eof) => {
                            break 'run Err(anyhow!(
                                "the console monitor of container {id} closed the connection"
                            ));
                        }
                        Ok(Packet::None) => break,
                        Ok(Packet::Frame(n, passed)) => {
                            let f = match Frame::decode(&buf[..n]) {
                                Ok(f) => f,
                                Err(e) => break 'run Err(anyhow!("from the console monitor: {e}")),
                            };
                            match f {
                                Frame::Attached {
                                    direct_output,
                                    direct_input,
                                    direct_keys,
                                    ..
                                } => {
                                    attached = true;
                                    direct = direct_output;
                                    if direct_input {
                                        input.master = passed;
                                    }
                                    if direct_keys {
                                        // The monitor reads our input: we never do.
                                        stdin_open = false;
                                    }
                                    if let Err(e) = watch_stdin(
                                        &ep,
                                        stdin,
                                        stdin_open,
                                        &mut stdin_watched,
                                        &mut stdin_file,
                                    ) {
                                        break 'run Err(e);
                                    }
                                }
                                Frame::Output { data, .. } | Frame::Repaint(data) => {
                                    modes.feed(data);
                                    if let Err(e) = write_all(stdout, data) {
                                        if e.raw_os_error() == Some(libc::EPIPE) {
                                            let _ = send_frame(sock.as_fd(), &Frame::Detach);
                                            break 'run Ok(Outcome::Detached);
                                        }
                                        break 'run Err(anyhow!("write to stdout: {e}"));
                                    }
                                }
                                Frame::ReplayEnd { .. } if opts.no_follow => {
                                    break 'run Ok(Outcome::Replayed);
                                }
                                Frame::Exit(code) => break 'run Ok(Outcome::Exited(code)),
                                Frame::Detached => break 'run Ok(Outcome::Detached),
                                Frame::Takeover { by } => {
                                    break 'run Err(anyhow!(
                                        "another client (client {by}) took the terminal over with --force"
                                    ));
                                }
                                // A monitor an older berth started does not know direct
                                // mode and refuses its hello: once more, framed.
                                Frame::Error {
                                    code: ErrorCode::BadFrame,
                                    ..
                                } if !attached && (hello.direct_output || hello.direct_input) => {
                                    let _ = epoll::delete(&ep, &sock);
                                    hello.direct_output = false;
                                    hello.direct_input = false;
                                    hello.direct_keys = None;
                                    let again = connect(root, id).and_then(|s| {
                                        send_frame(s.as_fd(), &Frame::Hello(hello))?;
                                        epoll::add(
                                            &ep,
                                            &s,
                                            EventData::new_u64(T_SOCK),
                                            EventFlags::IN,
                                        )
                                        .context("epoll_ctl")?;
                                        Ok(s)
                                    });
                                    sock = match again {
                                        Ok(s) => s,
                                        Err(e) => break 'run Err(e),
                                    };
                                    if let Err(e) = watch_stdin(
                                        &ep,
                                        stdin,
                                        stdin_open,
                                        &mut stdin_watched,
                                        &mut stdin_file,
                                    ) {
                                        break 'run Err(e);
                                    }
                                    log::debug!("the console monitor refused direct mode: framed");
                                    break;
                                }
                                Frame::Error { message, .. } => {
                                    break 'run Err(anyhow!("{message}"));
                                }
                                _ => {}
                            }
                        }
                    }
                },
                T_STDIN if stdin_open => {
                    let n = match rustix::io::read(stdin, &mut inbuf) {
                        Ok(n) => n,
                        Err(Errno::INTR | Errno::AGAIN) => continue,
                        Err(Errno::IO) => 0,
                        Err(e) => break 'run Err(std::io::Error::from(e)).context("read stdin"),
                    };
                    forward.clear();
                    if n == 0 && stdin_tty {
                        // The terminal hung up (its window closed): the user went away, the
                        // container's input did not end (a typed Ctrl-D is just a byte).
                        if ask_detach(
                            sock.as_fd(),
                            direct,
                            &mut detaching,
                            &ep,
                            stdin,
                            &mut stdin_open,
                            stdin_file,
                        ) {
                            break 'run Ok(Outcome::Detached);
                        }
                        continue;
                    }
                    if n == 0 {
                        stdin_open = false;
                        if !stdin_file {
                            let _ = epoll::delete(&ep, stdin);
                        }
                        scanner.flush(&mut forward);
                        held_since = None;
                        if !opts.read_only {
                            if let Err(e) = input
                                .send(sock.as_fd(), &forward)
                                .and_then(|_| input.end(sock.as_fd()))
                            {
                                break 'run Err(e);
                            }
                        }
                        continue;
                    }
                    let scan = scanner.feed(&inbuf[..n], &mut forward);
                    held_since = scanner.holding().then(Instant::now);
                    if !opts.read_only {
                        if let Err(e) = input.send(sock.as_fd(), &forward) {
                            break 'run Err(e);
                        }
                    }
                    if scan == Scan::Detach
                        && ask_detach(
                            sock.as_fd(),
                            direct,
                            &mut detaching,
                            &ep,
                            stdin,
                            &mut stdin_open,
                            stdin_file,
                        )
                    {
                        break 'run Ok(Outcome::Detached);
                    }
                }
                T_SIG => {
                    while let Ok(Some(info)) = signals.fd.read() {
                        match info.signo {
                            libc::SIGWINCH => {
                                if sizing {
                                    if let Some((rows, cols)) = tty_size(tty) {
                                        let _ =
                                            send_frame(sock.as_fd(), &Frame::Resize { rows, cols });
                                    }
                                }
                            }
                            sig if opts.sig_proxy => {
                                let _ = send_frame(sock.as_fd(), &Frame::Signal(sig as u32));
                            }
                            _ => {
                                if ask_detach(
                                    sock.as_fd(),
                                    direct,
                                    &mut detaching,
                                    &ep,
                                    stdin,
                                    &mut stdin_open,
                                    stdin_file,
                                ) {
                                    break 'run Ok(Outcome::Detached);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        // Input the master did not take: wait for room on it, reading no more stdin meanwhile.
        if input.blocked() != input_armed {
            input_armed = input.blocked();
            if let Some(m) = &input.master {
                let _ = if input_armed {
                    epoll::add(&ep, m, EventData::new_u64(T_MASTER), EventFlags::OUT)
                } else {
                    epoll::delete(&ep, m)
                };
            }
            if stdin_open && stdin_watched && !stdin_file {
                let interest = if input_armed {
                    EventFlags::empty()
                } else {
                    EventFlags::IN
                };
                let _ = epoll::modify(&ep, stdin, EventData::new_u64(T_STDIN), interest);
            }
        }
    };
    // With direct output the monitor wrote the reset (it knows the screen).
    if is_tty(stdout) && attached && !direct {
        let reset =
            berth_proto::terminal_reset(modes.alternate, matches!(result, Ok(Outcome::Detached)));
        let _ = write_all(stdout, &reset);
    }
    if let Some(g) = raw.as_mut() {
        let _ = g.restore();
    }
    result
}

/// How long a client with direct output waits for the monitor's `Detached` after asking to
/// detach (the monitor has stopped writing to the terminal once it sends it).
const DETACH_WAIT: Duration = Duration::from_secs(2);

/// Set (to anything) to keep output and input in frames through this process (see "Direct
/// output and input" in the module docs).
pub(crate) const FRAMED_ENV: &str = "BERTH_ATTACH_FRAMED";

/// Set (to anything) to read the keys here and write them to the master, instead of letting
/// the monitor read them (see "Direct output and input" in the module docs).
pub(crate) const CLIENT_KEYS_ENV: &str = "BERTH_ATTACH_CLIENT_KEYS";

/// Whether reading `stdin` takes nothing from a shell: it is not a terminal, or not our
/// controlling terminal, or we are its foreground process group. (The monitor reads it with
/// none of the job-control checks a background reader of its terminal would meet.)
fn in_foreground(stdin: BorrowedFd<'_>) -> bool {
    if !rustix::termios::isatty(stdin) {
        return true;
    }
    match rustix::termios::tcgetpgrp(stdin) {
        Ok(pgrp) => pgrp == rustix::process::getpgrp(),
        Err(_) => true,
    }
}

/// Starts watching stdin, once, if it is still to be read: adds it to the epoll set and sets
/// `watched`; `file` when it is a file (epoll refuses those: they are always readable).
fn watch_stdin(
    ep: &OwnedFd,
    stdin: BorrowedFd<'_>,
    open: bool,
    watched: &mut bool,
    file: &mut bool,
) -> anyhow::Result<()> {
    if !open || *watched {
        return Ok(());
    }
    match epoll::add(ep, stdin, EventData::new_u64(T_STDIN), EventFlags::IN) {
        Ok(()) => *file = false,
        Err(Errno::PERM) => *file = true,
        Err(e) => return Err(std::io::Error::from(e)).context("epoll_ctl stdin"),
    }
    *watched = true;
    Ok(())
}

/// Where typed input goes: `Stdin` frames, or, with direct input, the terminal's master
/// (non-blocking: its description is the monitor's). What the master does not take waits in
/// `pending`, and stdin is not read meanwhile; `StdinEof` goes after it.
#[derive(Default)]
struct InputSink {
    master: Option<OwnedFd>,
    pending: Vec<u8>,
    eof: bool,
}

impl InputSink {
    fn send(&mut self, sock: BorrowedFd<'_>, data: &[u8]) -> anyhow::Result<()> {
        if self.master.is_none() {
            return send_stdin(sock, data);
        }
        self.pending.extend_from_slice(data);
        self.flush(sock)
    }

    /// Writes what is pending; sends `StdinEof` once nothing is.
    fn flush(&mut self, sock: BorrowedFd<'_>) -> anyhow::Result<()> {
        if let Some(m) = &self.master {
            while !self.pending.is_empty() {
                match rustix::io::write(m, &self.pending) {
                    Ok(0) | Err(Errno::AGAIN) => return Ok(()),
                    Ok(n) => {
                        self.pending.drain(..n);
                    }
                    Err(Errno::INTR) => {}
                    // The terminal's process is gone (its exit comes on the socket): the
                    // input has no reader.
                    Err(_) => self.pending.clear(),
                }
            }
        }
        if self.eof && self.pending.is_empty() {
            self.eof = false;
            send_frame(sock, &Frame::StdinEof)?;
        }
        Ok(())
    }

    /// End of input: `StdinEof` once what is pending is written.
    fn end(&mut self, sock: BorrowedFd<'_>) -> anyhow::Result<()> {
        self.eof = true;
        self.flush(sock)
    }

    fn blocked(&self) -> bool {
        !self.pending.is_empty()
    }
}

/// Asks the monitor to detach; `true` when the session is over at once (framed output).
/// With direct output the monitor's `Detached` is awaited ([`DETACH_WAIT`] at most), after its
/// last write to the terminal, and stdin is read no more meanwhile (what follows is not the
/// container's): `open` turns false, and a watched stdin (`file` false) leaves `ep`.
fn ask_detach(
    sock: BorrowedFd<'_>,
    direct: bool,
    detaching: &mut Option<Instant>,
    ep: &OwnedFd,
    stdin: BorrowedFd<'_>,
    open: &mut bool,
    file: bool,
) -> bool {
    let _ = send_frame(sock, &Frame::Detach);
    if !direct {
        return true;
    }
    if *open && !file {
        let _ = epoll::delete(ep, stdin);
    }
    *open = false;
    detaching.get_or_insert(Instant::now() + DETACH_WAIT);
    false
}

/// Sends `f` (blocking) with `fds` attached (`SCM_RIGHTS`, at most two; none: a plain send).
fn send_frame_with_fds(
    sock: BorrowedFd<'_>,
    f: &Frame<'_>,
    fds: &[BorrowedFd<'_>],
) -> anyhow::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage};
    let bytes = f.to_vec()?;
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        bail!("sendmsg: no room for the descriptor");
    }
    let iov = [std::io::IoSlice::new(&bytes)];
    loop {
        match rustix::net::sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(Errno::PIPE | Errno::CONNRESET) => {
                bail!("the console monitor closed the connection")
            }
            Err(e) => return Err(std::io::Error::from(e)).context("send to the console monitor"),
        }
    }
}

fn send_stdin(sock: BorrowedFd<'_>, data: &[u8]) -> anyhow::Result<()> {
    for chunk in data.chunks(MAX_DATA - 1) {
        send_frame(sock, &Frame::Stdin(chunk))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_tracker_follows_the_alternate_screen() {
        let mut m = ModeTracker::default();
        m.feed(b"abc\x1b[1m\x1b[?1049h");
        assert!(m.alternate);
        m.feed(&[0u8; 100]);
        assert!(m.alternate);
        m.feed(b"x\x1b[?1047l");
        assert!(!m.alternate);
        assert_eq!(find_esc(b"0123456789\x1b"), Some(10));
        assert_eq!(find_esc(&[0x9b; 20]), None);
    }
}
