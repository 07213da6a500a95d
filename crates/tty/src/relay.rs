//! The foreground relay of `berth run`/`berth exec` without `-d`: one thread, one non-blocking
//! epoll loop, no allocation after setup beyond the channel buffers.
//!
//! # Model
//! A [`Relay`] moves bytes through *channels* (source fd → [`BUFFER_SIZE`] buffer → sink fd) and
//! reads a [`SignalFd`]. Terminal mode is two channels (stdin → pty master, master → stdout);
//! pass-through mode is up to three (stdin → the container's stdin pipe, its stdout/stderr pipes →
//! berth's stdout/stderr). Every registration has its own fd (a `dup`, or a private reopen), so the
//! master can be a source and a sink at once, as in crun.
//!
//! # Invariants
//! - Sources are registered `EPOLLIN|EPOLLET` and read until `EAGAIN` (or until the buffer is
//!   full; the "still readable" state is remembered). Edge triggering is what keeps a master whose
//!   peer is closed (`POLLHUP` stays set) from spinning the loop. Terminals (masters and the
//!   user's tty) are the exception: a short read ends the turn, because the line discipline wakes
//!   the reader (a new edge) whenever it adds data, and a read that finds nothing waits
//!   synchronously for the pty's flush work (a context switch per chunk, measured as a third of
//!   the relay's CPU and most of its echo latency). Once the target has exited, masters are read
//!   until `EAGAIN`/`EIO` again (that flush is then what is wanted).
//! - Sinks are registered with no interest and armed `EPOLLOUT|EPOLLONESHOT` only when a write
//!   returned `EAGAIN` with data pending, so an idle sink never wakes the loop.
//! - Files epoll refuses (regular files, `/dev/null`) are treated as always ready.
//! - The loop sleeps in a [`PollingWait`]: when events have come less than its window apart (a
//!   program answering keystrokes byte by byte), it checks the epoll set for a short while before
//!   it sleeps, trading that CPU time for the wakeup (about half the relay's echo latency here).
//! - Fds shared with other processes (berth's inherited stdio, [`Endpoint::Inherited`]) are never
//!   switched to `O_NONBLOCK` in place when avoidable: ttys and pipes are reopened through
//!   `/proc/self/fd/N` (a private open file description). Otherwise `O_NONBLOCK` is set and the
//!   original flags are put back when the relay is dropped.
//!
//! # Signals
//! The caller blocks [`SigSet::relay_set`] and creates the `SignalFd` *before* spawning the
//! target (see [`block_relay_signals`]), so no `SIGCHLD` is lost. `SIGCHLD` reaps with
//! `waitpid(-1, WNOHANG)` in a loop (other children, e.g. orphans reparented to a subreaper, are
//! reaped and ignored); `SIGWINCH` copies the host console's size to the pty; `SIGURG` is
//! ignored (runc); every other signal is forwarded to the target with `kill`.
//!
//! # End of the target
//! Once the target is reaped, input stops, every output source is read until `EAGAIN`/`EIO`/EOF
//! (a master read with nothing ready first flushes the kernel's pty buffer work, so bytes written
//! just before `exit` are seen), and all buffered output is written before [`Relay::run`] returns.
//! `EIO` or `HUP` on the master *before* that is not the end: the container may reopen its
//! console (the systemd pattern); the next edge brings the source back.
//!
//! # Memory
//! The relay lives as long as the container, so once it has run for [`SHED_AFTER`] (a container
//! that ends sooner does not pay for it: the pages would only fault back in for the teardown)
//! [`Relay::run`] gives back what setup used: free heap (`malloc_trim`) and the resident pages of the code mappings (berth's and the
//! libraries'; they stay in the page cache and only what the loop executes faults back in), then
//! resets `VmHWM` so that the process's peak RSS from then on is the relay's own (see
//! `berth_sys::mem`). The buffers are [`BUFFER_SIZE`] mappings of their own
//! ([`berth_sys::mem::ZeroedPages`]): a page of one is only faulted in once data passes
//! through it, so a channel that carries little (a container's stderr, a short command's
//! output) costs a page or none.
//!
//! # Newline translation (terminal mode)
//! The kernel's ONLCR makes every `\n` a separate pty write (`\r\n`), which costs the host
//! terminal's path about two thirds of its throughput (measured on the 2-core VM: 25-30 MB/s
//! against 70-100 MB/s for a raw pty). So when the user's terminal is held raw by a
//! [`RawGuard`](crate::RawGuard) of this process, its saved output flags are exactly OPOST and
//! ONLCR (see `raw::output_is_plain_onlcr`) and stdout is that terminal, [`Relay::terminal`]
//! clears OPOST on it for the relay's lifetime and the output channel inserts the `\r` before
//! each `\n` itself: the bytes on the user's screen are identical, and the writes stay large.
//! Dropping the relay sets OPOST again (the guard restores everything afterwards; its panic
//! hook covers a panic). In every other case the terminal keeps OPOST and the kernel translates;
//! also with debug logging on, so that berth's own lines written meanwhile still start at column
//! 0 (a warning printed during the relay is the one thing that can show without its `\r`).
//!
//! # Faults
//! - stdin EOF, terminal mode ([`OnEof::SendVeof`]): the pty's `VEOF` character (`c_cc[VEOF]` of
//!   the master's termios) is written, twice if the last byte forwarded was not `\n` (once to end
//!   the partial line, once for end of file), when the pty is in canonical mode; stdin is not
//!   read again. Pass-through mode ([`OnEof::CloseSink`]): the container's stdin pipe is closed.
//! - A sink failing with `EPIPE`/`EIO` or any other error (the user's terminal went away) is
//!   dropped; its source keeps being read and the bytes discarded, so the container never blocks
//!   on a dead reader.
//! - After the target exited, `SIGINT`, `SIGTERM`, `SIGHUP` or `SIGQUIT` abandon the final flush
//!   (a sink that never drains must not make berth unkillable).
//!
//! # Test-only failpoints
//! [`Relay::run`] checks two environment variables before its first event, so the integration
//! tests can prove that the user's terminal is restored on every way out (security.md G-06)
//! without a way to break berth from outside: `BERTH_TEST_PANIC_AFTER_RAW` (any value) panics,
//! `BERTH_TEST_FAIL_AFTER_RAW` (any value) returns [`TtyError::Failpoint`]. Callers enter raw
//! mode before building the relay, so both fire with the user's terminal raw. Nobody sets them
//! outside tests; they cost one `getenv` per relay.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use berth_sys::signal::{SigSet, SignalFd};
use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::fs::{self, OFlags};
use rustix::io::Errno;
use rustix::process::{Pid, WaitOptions, WaitStatus};
use rustix::termios::{LocalModes, OptionalActions, OutputModes, SpecialCodeIndex};

use crate::error::TtyError;
use crate::reopen::{is_master_rdev, reopen_private};
use crate::wait::PollingWait;
use crate::winsize::Winsize;

/// How long the relay runs before it gives back setup memory (see "Memory").
pub const SHED_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// Size of each channel's buffer.
pub const BUFFER_SIZE: usize = 64 * 1024;

const SIGNAL_TOKEN: u64 = 0;

/// Bytes one channel may move before the loop looks at other events: a producer that never
/// pauses (`yes`) must not starve signals or the other direction.
const PUMP_BUDGET: usize = 4 * BUFFER_SIZE;

const ZERO: rustix::time::Timespec = rustix::time::Timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// How the target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    /// The shell-style code: the exit code, or 128 + the signal number.
    pub fn code(&self) -> i32 {
        match *self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }

    /// From a `waitpid` status; `None` for stop/continue reports.
    pub fn from_wait(status: WaitStatus) -> Option<ExitStatus> {
        if let Some(c) = status.exit_status() {
            Some(ExitStatus::Exited(c))
        } else {
            status.terminating_signal().map(ExitStatus::Signaled)
        }
    }
}

/// Blocks [`SigSet::relay_set`] in the calling thread and creates the matching signalfd.
/// Call it before spawning the target. Returns the signalfd and the previous mask (the child
/// must start from an empty mask: see `berth_sys::signal::unblock_all`).
pub fn block_relay_signals() -> Result<(SignalFd, SigSet), TtyError> {
    let set = SigSet::relay_set();
    let old = berth_sys::signal::block(&set)
        .map_err(|e| TtyError::os("sigprocmask", "relay signals", e))?;
    let sfd = SignalFd::new(&set).map_err(|e| TtyError::os("signalfd", "relay signals", e))?;
    Ok((sfd, old))
}

/// A channel end.
#[derive(Debug)]
pub enum Endpoint<'a> {
    /// A descriptor handed over to the relay: made non-blocking in place and closed when its
    /// channel is done (needed for [`OnEof::CloseSink`] to reach the reader).
    Owned(OwnedFd),
    /// berth's own file description (the pty master): dup'd and made non-blocking in place; the
    /// original flags are restored when the relay is dropped.
    Borrowed(BorrowedFd<'a>),
    /// A description berth shares with other processes (its stdin/stdout/stderr): ttys and pipes
    /// are reopened privately through /proc; anything else is dup'd, set non-blocking, and
    /// restored when the relay is dropped.
    Inherited(BorrowedFd<'a>),
}

/// Whether a channel carries input to the target (stopped when it exits) or output from it
/// (drained when it exits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Towards the target.
    Input,
    /// From the target.
    Output,
}

/// What to do when a channel's source reaches end of file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnEof {
    /// Nothing: flush what is buffered.
    Nothing,
    /// Flush, then close the sink (pass-through stdin: the container sees EOF).
    CloseSink,
    /// Append the sink pty's VEOF character (twice after a partial line), then stop reading.
    SendVeof,
}

/// The terminal-mode channels.
#[derive(Debug, Clone, Copy)]
pub struct Terminal<'a> {
    /// The pty master.
    pub master: BorrowedFd<'a>,
    /// berth's stdin, relayed to the master; `None` for no input.
    pub stdin: Option<BorrowedFd<'a>>,
    /// berth's stdout, receiving the master's output.
    pub stdout: BorrowedFd<'a>,
    /// The host console whose size follows `SIGWINCH` to the pty; `None` if there is none.
    pub console: Option<BorrowedFd<'a>>,
}

/// The pass-through channels (no terminal).
#[derive(Debug, Default)]
pub struct Pipes<'a> {
    /// berth's stdin and the write end of the container's stdin pipe (closed at stdin EOF).
    pub stdin: Option<(BorrowedFd<'a>, OwnedFd)>,
    /// The read end of the container's stdout pipe and berth's stdout.
    pub stdout: Option<(OwnedFd, BorrowedFd<'a>)>,
    /// The read end of the container's stderr pipe and berth's stderr.
    pub stderr: Option<(OwnedFd, BorrowedFd<'a>)>,
}

#[derive(Debug)]
struct Io {
    fd: OwnedFd,
    /// Registered in epoll; false for files epoll refuses, which never block.
    polled: bool,
    /// A pty master (EIO means "peer closed for now").
    master: bool,
    /// A terminal that is not a master (EIO on read: background job with SIGTTIN blocked).
    tty: bool,
}

#[derive(Debug)]
struct Channel {
    src: Option<Io>,
    dst: Option<Io>,
    buf: berth_sys::mem::ZeroedPages,
    start: usize,
    end: usize,
    readable: bool,
    writable: bool,
    sink_dead: bool,
    draining: bool,
    direction: Direction,
    on_eof: OnEof,
    last_byte: Option<u8>,
    tail: [u8; 2],
    tail_len: usize,
    /// Insert `\r` before every `\n` read (see "Newline translation" in the module docs).
    onlcr: bool,
}

/// The foreground relay. Build it with [`Relay::terminal`], [`Relay::pipes`] or [`Relay::new`]
/// plus [`Relay::add_channel`], then call [`Relay::run`].
#[derive(Debug)]
pub struct Relay {
    epoll: OwnedFd,
    signals: SignalFd,
    target: Pid,
    channels: Vec<Channel>,
    resize: Option<(OwnedFd, OwnedFd)>,
    restore: Vec<(OwnedFd, OFlags)>,
    /// The user's terminal whose OPOST the relay cleared (set again on drop).
    opost: Option<OwnedFd>,
    exit: Option<ExitStatus>,
    abandon: bool,
}

impl Relay {
    /// A relay for `target` (a child of the caller, or of the subreaper the caller is) reading
    /// `signals` (see [`block_relay_signals`]).
    pub fn new(signals: SignalFd, target: Pid) -> Result<Relay, TtyError> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map_err(|e| TtyError::os("epoll_create", "relay", e))?;
        epoll::add(
            &epoll,
            &signals,
            EventData::new_u64(SIGNAL_TOKEN),
            EventFlags::IN,
        )
        .map_err(|e| TtyError::os("epoll_ctl(ADD)", "signalfd", e))?;
        Ok(Relay {
            epoll,
            signals,
            target,
            channels: Vec::new(),
            resize: None,
            restore: Vec::new(),
            opost: None,
            exit: None,
            abandon: false,
        })
    }

    /// Terminal mode: stdin → master (VEOF at EOF), master → stdout, SIGWINCH from `console`.
    pub fn terminal(signals: SignalFd, target: Pid, t: Terminal<'_>) -> Result<Relay, TtyError> {
        let mut relay = Relay::new(signals, target)?;
        if let Some(stdin) = t.stdin {
            relay.add_channel(
                Endpoint::Inherited(stdin),
                Endpoint::Borrowed(t.master),
                Direction::Input,
                OnEof::SendVeof,
            )?;
        }
        relay.add_channel(
            Endpoint::Borrowed(t.master),
            Endpoint::Inherited(t.stdout),
            Direction::Output,
            OnEof::Nothing,
        )?;
        if let Some(console) = t.console {
            relay.set_resize(console, t.master)?;
            relay.translate_newlines(console, t.stdout)?;
        }
        Ok(relay)
    }

    /// Takes over ONLCR from the kernel when that is byte-identical (see "Newline translation"
    /// in the module docs); does nothing otherwise.
    fn translate_newlines(
        &mut self,
        console: BorrowedFd<'_>,
        stdout: BorrowedFd<'_>,
    ) -> Result<(), TtyError> {
        // With debug logging on, berth's own lines go to the terminal while the relay runs:
        // keep the kernel's translation so that they stay readable.
        if log::log_enabled!(log::Level::Debug) {
            return Ok(());
        }
        let Some(saved) = crate::raw::guarded_settings(console) else {
            return Ok(());
        };
        let same = crate::raw::tty_rdev(stdout).is_some()
            && crate::raw::tty_rdev(stdout) == crate::raw::tty_rdev(console);
        if !same || !crate::raw::output_is_plain_onlcr(&saved) {
            return Ok(());
        }
        let Some(out) = self
            .channels
            .iter_mut()
            .find(|c| c.direction == Direction::Output)
        else {
            return Ok(());
        };
        let mut now = rustix::termios::tcgetattr(console)
            .map_err(|e| TtyError::os("tcgetattr", fd_label(console), e))?;
        if !now.output_modes.contains(OutputModes::OPOST) {
            return Ok(());
        }
        now.output_modes.remove(OutputModes::OPOST);
        let keep = dup(console)?;
        rustix::termios::tcsetattr(console, OptionalActions::Now, &now)
            .map_err(|e| TtyError::os("tcsetattr", fd_label(console), e))?;
        out.onlcr = true;
        self.opost = Some(keep);
        log::debug!("relay: translating \\n to \\r\\n itself (OPOST off on the terminal)");
        Ok(())
    }

    /// Pass-through mode.
    pub fn pipes(signals: SignalFd, target: Pid, p: Pipes<'_>) -> Result<Relay, TtyError> {
        let mut relay = Relay::new(signals, target)?;
        if let Some((host, pipe)) = p.stdin {
            relay.add_channel(
                Endpoint::Inherited(host),
                Endpoint::Owned(pipe),
                Direction::Input,
                OnEof::CloseSink,
            )?;
        }
        for (pipe, host) in [p.stdout, p.stderr].into_iter().flatten() {
            relay.add_channel(
                Endpoint::Owned(pipe),
                Endpoint::Inherited(host),
                Direction::Output,
                OnEof::Nothing,
            )?;
        }
        Ok(relay)
    }

    /// On `SIGWINCH`, copy `console`'s size to `pty`.
    pub fn set_resize(
        &mut self,
        console: BorrowedFd<'_>,
        pty: BorrowedFd<'_>,
    ) -> Result<(), TtyError> {
        let c = dup(console)?;
        let p = dup(pty)?;
        self.resize = Some((c, p));
        Ok(())
    }

    /// Adds a channel `source` → `sink`.
    pub fn add_channel(
        &mut self,
        source: Endpoint<'_>,
        sink: Endpoint<'_>,
        direction: Direction,
        on_eof: OnEof,
    ) -> Result<(), TtyError> {
        let index = self.channels.len() as u64;
        let src = self.prepare(source, false, 2 * index + 1)?;
        let dst = self.prepare(sink, true, 2 * index + 2)?;
        // Pages of it are faulted in as data passes: a channel that carries little costs little.
        let buf = berth_sys::mem::ZeroedPages::new(BUFFER_SIZE)
            .map_err(|e| TtyError::os("mmap", "relay buffer".to_string(), e))?;
        self.channels.push(Channel {
            readable: true,
            writable: true,
            src: Some(src),
            dst: Some(dst),
            buf,
            start: 0,
            end: 0,
            sink_dead: false,
            draining: false,
            direction,
            on_eof,
            last_byte: None,
            tail: [0; 2],
            tail_len: 0,
            onlcr: false,
        });
        Ok(())
    }

    fn prepare(&mut self, ep: Endpoint<'_>, write: bool, token: u64) -> Result<Io, TtyError> {
        let (fd, may_set_flags, shared) = match ep {
            Endpoint::Owned(fd) => (fd, true, false),
            Endpoint::Borrowed(fd) => (dup(fd)?, true, true),
            Endpoint::Inherited(fd) => match reopen_private(fd, write) {
                Some(private) => (private, false, false),
                None => (dup(fd)?, true, true),
            },
        };
        let st = fs::fstat(&fd).map_err(|e| TtyError::os("fstat", fd_label(fd.as_fd()), e))?;
        let is_chr = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
        let master = is_chr && is_master_rdev(st.st_rdev);
        let tty = !master && rustix::termios::isatty(&fd);
        let flags = if write {
            EventFlags::ONESHOT | EventFlags::ET
        } else {
            EventFlags::IN | EventFlags::ET
        };
        let polled = match epoll::add(&self.epoll, &fd, EventData::new_u64(token), flags) {
            Ok(()) => true,
            Err(Errno::PERM) => false,
            Err(e) => return Err(TtyError::os("epoll_ctl(ADD)", fd_label(fd.as_fd()), e)),
        };
        if polled && may_set_flags {
            let old = fs::fcntl_getfl(&fd)
                .map_err(|e| TtyError::os("fcntl(F_GETFL)", fd_label(fd.as_fd()), e))?;
            if !old.contains(OFlags::NONBLOCK) {
                if shared {
                    self.restore.push((dup(fd.as_fd())?, old));
                }
                fs::fcntl_setfl(&fd, old | OFlags::NONBLOCK)
                    .map_err(|e| TtyError::os("fcntl(F_SETFL)", fd_label(fd.as_fd()), e))?;
            }
        }
        Ok(Io {
            fd,
            polled,
            master,
            tty,
        })
    }

    /// Runs until the target has exited and all its output is flushed; returns how it ended.
    pub fn run(mut self) -> Result<ExitStatus, TtyError> {
        failpoints()?;
        let shed_at = std::time::Instant::now() + SHED_AFTER;
        let mut shed = false;
        let mut waiter = PollingWait::from_env();
        self.reap()?;
        loop {
            let now = std::time::Instant::now();
            if !shed && now >= shed_at {
                shed_setup_memory();
                shed = true;
            }
            let mut busy = false;
            for i in 0..self.channels.len() {
                busy |= self.pump(i);
            }
            if let Some(status) = self.exit {
                if self.abandon || self.channels.iter().all(Channel::finished) {
                    return Ok(status);
                }
            }
            // A channel that used up its budget still has work: only poll, so signals and the
            // other direction get their turn, then come back to it.
            let until_shed = (!shed).then(|| {
                let left = shed_at.saturating_duration_since(now);
                rustix::time::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: left.subsec_nanos() as i64,
                }
            });
            let timeout = if busy {
                Some(&ZERO)
            } else {
                until_shed.as_ref()
            };
            let ready = match waiter.wait(self.epoll.as_fd(), timeout) {
                Ok(ready) => ready,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(TtyError::os("epoll_wait", "relay", e)),
            };
            let mut signalled = false;
            for ev in ready.iter() {
                let token = ev.data.u64();
                if token == SIGNAL_TOKEN {
                    signalled = true;
                    continue;
                }
                let Some(ch) = self.channels.get_mut(((token - 1) / 2) as usize) else {
                    continue;
                };
                if token % 2 == 1 {
                    ch.readable = true;
                } else {
                    ch.writable = true;
                }
            }
            if signalled {
                self.handle_signals()?;
            }
        }
    }

    fn handle_signals(&mut self) -> Result<(), TtyError> {
        while let Some(info) = self
            .signals
            .read()
            .map_err(|e| TtyError::os("read", "signalfd", e))?
        {
            match info.signo {
                libc::SIGCHLD => self.reap()?,
                libc::SIGWINCH => self.resize(),
                libc::SIGURG => {}
                sig if self.exit.is_none() => {
                    let pid = self.target.as_raw_nonzero().get();
                    match berth_sys::signal::kill(pid, sig) {
                        Ok(()) => log::debug!("forwarded signal {sig} to {pid}"),
                        Err(e) => log::debug!("forwarding signal {sig} to {pid}: {e}"),
                    }
                }
                libc::SIGINT | libc::SIGTERM | libc::SIGHUP | libc::SIGQUIT => {
                    log::debug!(
                        "signal {} while flushing output: giving up the flush",
                        info.signo
                    );
                    self.abandon = true;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn reap(&mut self) -> Result<(), TtyError> {
        loop {
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, status))) => {
                    let status = ExitStatus::from_wait(status);
                    if pid == self.target && self.exit.is_none() && status.is_some() {
                        self.exit = status;
                        self.target_exited();
                    }
                }
                Ok(None) | Err(Errno::CHILD) => return Ok(()),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(TtyError::os("waitpid", "children", e)),
            }
        }
    }

    fn target_exited(&mut self) {
        for ch in &mut self.channels {
            match ch.direction {
                Direction::Input => {
                    ch.close_src(&self.epoll);
                    ch.close_dst(&self.epoll);
                    ch.start = 0;
                    ch.end = 0;
                    ch.tail_len = 0;
                }
                Direction::Output => {
                    ch.draining = true;
                    ch.readable = true;
                }
            }
        }
    }

    fn resize(&mut self) {
        let Some((console, pty)) = &self.resize else {
            return;
        };
        match Winsize::get(console.as_fd()).and_then(|ws| ws.set(pty.as_fd())) {
            Ok(()) => {}
            Err(e) => log::debug!("SIGWINCH: {e}"),
        }
    }

    /// Moves bytes on channel `i` until it would block; returns true if it stopped because its
    /// budget ran out (more work is possible right now).
    fn pump(&mut self, i: usize) -> bool {
        let epoll = &self.epoll;
        let ch = &mut self.channels[i];
        let mut budget = PUMP_BUDGET;
        loop {
            if budget == 0 {
                return true;
            }
            let mut progress = false;
            // Read until EAGAIN, EOF or a full buffer.
            while ch.readable && ch.src.is_some() {
                if ch.end == ch.buf.len() {
                    if ch.start == 0 {
                        break;
                    }
                    ch.buf.copy_within(ch.start..ch.end, 0);
                    ch.end -= ch.start;
                    ch.start = 0;
                }
                let Some(src) = ch.src.as_ref() else { break };
                // With newline translation a read may at most double: read half the room.
                let room = if ch.onlcr {
                    (ch.buf.len() - ch.end) / 2
                } else {
                    ch.buf.len() - ch.end
                };
                if room == 0 {
                    if ch.start == 0 {
                        break;
                    }
                    ch.buf.copy_within(ch.start..ch.end, 0);
                    ch.end -= ch.start;
                    ch.start = 0;
                    continue;
                }
                match rustix::io::read(&src.fd, &mut ch.buf[ch.end..ch.end + room]) {
                    Ok(0) => {
                        ch.source_eof(epoll);
                        progress = true;
                    }
                    Ok(n) => {
                        budget = budget.saturating_sub(n);
                        // A terminal that gave less than asked for is empty for now, and its
                        // next data comes with a wakeup (a new edge): no read until EAGAIN,
                        // whose cost is a synchronous wait for the pty's flush work. Except
                        // when draining, where that very flush is what is wanted.
                        if n < room && (src.master || src.tty) && !ch.draining {
                            ch.readable = false;
                        }
                        ch.last_byte = Some(ch.buf[ch.end + n - 1]);
                        let n = if ch.onlcr {
                            expand_newlines(&mut ch.buf, ch.end, n)
                        } else {
                            n
                        };
                        ch.end += n;
                        if ch.sink_dead {
                            ch.start = 0;
                            ch.end = 0;
                        }
                        progress = true;
                    }
                    Err(Errno::INTR) => {}
                    Err(Errno::AGAIN) => {
                        ch.readable = false;
                        if ch.draining {
                            ch.close_src(epoll);
                        }
                    }
                    Err(Errno::IO) if src.master => {
                        // Peer closed for now; the next edge brings it back.
                        ch.readable = false;
                        if ch.draining {
                            ch.close_src(epoll);
                        }
                    }
                    Err(Errno::IO) if src.tty => {
                        log::debug!("reading a terminal: EIO (background job?); input stops");
                        ch.close_src(epoll);
                    }
                    Err(e) => {
                        log::warn!("relay read {}: {e}", fd_label(src.fd.as_fd()));
                        ch.close_src(epoll);
                    }
                }
            }
            if ch.tail_len > 0 && ch.buf.len() - ch.end >= ch.tail_len {
                let n = ch.tail_len;
                ch.buf[ch.end..ch.end + n].copy_from_slice(&ch.tail[..n]);
                ch.end += n;
                ch.tail_len = 0;
                progress = true;
            }
            // Write until EAGAIN or empty.
            while ch.start < ch.end && ch.writable && !ch.sink_dead {
                let Some(dst) = ch.dst.as_ref() else {
                    ch.sink_dead = true;
                    break;
                };
                match rustix::io::write(&dst.fd, &ch.buf[ch.start..ch.end]) {
                    Ok(n) => {
                        ch.start += n;
                        if ch.start == ch.end {
                            ch.start = 0;
                            ch.end = 0;
                        }
                        progress = true;
                    }
                    Err(Errno::INTR) => {}
                    Err(Errno::AGAIN) => {
                        ch.writable = false;
                        if dst.polled {
                            let armed = epoll::modify(
                                epoll,
                                &dst.fd,
                                EventData::new_u64(2 * i as u64 + 2),
                                EventFlags::OUT | EventFlags::ONESHOT | EventFlags::ET,
                            );
                            if let Err(e) = armed {
                                log::warn!("relay: waiting for {}: {e}", fd_label(dst.fd.as_fd()));
                                ch.kill_sink(epoll);
                            }
                        }
                    }
                    Err(Errno::IO) if dst.master => {
                        // Nobody has the pty open: this input has no reader.
                        ch.start = 0;
                        ch.end = 0;
                    }
                    Err(e) => {
                        if e != Errno::PIPE && e != Errno::IO {
                            log::warn!("relay write {}: {e}", fd_label(dst.fd.as_fd()));
                        } else {
                            log::debug!(
                                "relay write {}: {e}; discarding its output from now on",
                                fd_label(dst.fd.as_fd())
                            );
                        }
                        ch.kill_sink(epoll);
                    }
                }
            }
            if ch.src.is_none()
                && ch.start == ch.end
                && ch.tail_len == 0
                && ch.on_eof == OnEof::CloseSink
            {
                ch.close_dst(epoll);
            }
            if !progress {
                return false;
            }
        }
    }
}

impl Channel {
    fn finished(&self) -> bool {
        self.src.is_none() && (self.start == self.end || self.sink_dead || self.dst.is_none())
    }

    fn source_eof(&mut self, epoll: &OwnedFd) {
        if self.on_eof == OnEof::SendVeof && !self.draining {
            if let Some(dst) = &self.dst {
                match rustix::termios::tcgetattr(&dst.fd) {
                    Ok(t) if t.local_modes.contains(LocalModes::ICANON) => {
                        let veof = t.special_codes[SpecialCodeIndex::VEOF];
                        if veof != 0 {
                            self.tail = [veof, veof];
                            self.tail_len = match self.last_byte {
                                None | Some(b'\n') => 1,
                                Some(_) => 2,
                            };
                        }
                    }
                    Ok(_) => {
                        log::debug!("stdin EOF: the pty is not in canonical mode, no VEOF sent")
                    }
                    Err(e) => log::debug!("stdin EOF: tcgetattr on the pty: {e}"),
                }
            }
        }
        self.close_src(epoll);
    }

    fn close_src(&mut self, epoll: &OwnedFd) {
        if let Some(io) = self.src.take() {
            if io.polled {
                let _ = epoll::delete(epoll, &io.fd);
            }
        }
        self.readable = false;
    }

    fn close_dst(&mut self, epoll: &OwnedFd) {
        if let Some(io) = self.dst.take() {
            if io.polled {
                let _ = epoll::delete(epoll, &io.fd);
            }
        }
    }

    fn kill_sink(&mut self, epoll: &OwnedFd) {
        self.sink_dead = true;
        self.start = 0;
        self.end = 0;
        self.tail_len = 0;
        self.close_dst(epoll);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.channels.clear();
        if let Some(console) = self.opost.take() {
            let put_back = rustix::termios::tcgetattr(&console).and_then(|mut t| {
                t.output_modes.insert(OutputModes::OPOST);
                rustix::termios::tcsetattr(&console, OptionalActions::Now, &t)
            });
            if let Err(e) = put_back {
                log::debug!("setting OPOST again on {}: {e}", fd_label(console.as_fd()));
            }
        }
        for (fd, flags) in self.restore.drain(..).rev() {
            if let Err(e) = fs::fcntl_setfl(&fd, flags) {
                log::debug!("restoring file flags of {}: {e}", fd_label(fd.as_fd()));
            }
        }
    }
}

/// Gives back what setup used and the relay does not need (see "Memory" in the module docs).
fn shed_setup_memory() {
    let trimmed = berth_sys::mem::trim_heap();
    match berth_sys::mem::release_code_pages() {
        Ok(n) => log::debug!("relay: released {n} bytes of code mappings, heap trimmed: {trimmed}"),
        Err(e) => log::debug!("relay: releasing code pages: {e}"),
    }
    if let Err(e) = berth_sys::mem::reset_peak_rss() {
        log::debug!("relay: resetting VmHWM: {e}");
    }
}

/// Environment variable: panic at the start of [`Relay::run`] (see the module docs).
pub const PANIC_FAILPOINT: &str = "BERTH_TEST_PANIC_AFTER_RAW";
/// Environment variable: fail at the start of [`Relay::run`] (see the module docs).
pub const ERROR_FAILPOINT: &str = "BERTH_TEST_FAIL_AFTER_RAW";

fn failpoints() -> Result<(), TtyError> {
    if std::env::var_os(PANIC_FAILPOINT).is_some() {
        panic!("{PANIC_FAILPOINT} is set: test-only panic in the relay");
    }
    if std::env::var_os(ERROR_FAILPOINT).is_some() {
        return Err(TtyError::Failpoint {
            name: ERROR_FAILPOINT,
        });
    }
    Ok(())
}

/// Turns the `n` bytes at `buf[at..]` into the same bytes with `\r` before every `\n`, in
/// place (the caller leaves room for `n` more); returns the new length. Each byte moves once,
/// from the end; the newlines are found with `memchr`'s vector search (a byte loop here cost
/// 7.6 µs per 4 KiB of 64-byte lines on the 2-core VM, a sixth of the relay's CPU time).
fn expand_newlines(buf: &mut [u8], at: usize, n: usize) -> usize {
    let mut newlines = memchr::memchr_iter(b'\n', &buf[at..at + n]).count();
    let grown = n + newlines;
    let (mut end, mut w) = (at + n, at + grown);
    while newlines > 0 {
        let Some(p) = memchr::memrchr(b'\n', &buf[at..end]) else {
            break;
        };
        let p = at + p;
        let tail = end - (p + 1);
        buf.copy_within(p + 1..end, w - tail);
        w -= tail + 2;
        buf[w] = b'\r';
        buf[w + 1] = b'\n';
        end = p;
        newlines -= 1;
    }
    grown
}

fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, TtyError> {
    rustix::io::fcntl_dupfd_cloexec(fd, 0).map_err(|e| TtyError::os("dup", fd_label(fd), e))
}

fn fd_label(fd: BorrowedFd<'_>) -> String {
    format!("fd {}", fd.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::expand_newlines;

    fn expand(input: &[u8]) -> Vec<u8> {
        let mut buf = vec![0xAAu8; 3 + 2 * input.len()];
        buf[3..3 + input.len()].copy_from_slice(input);
        let n = expand_newlines(&mut buf, 3, input.len());
        assert_eq!(&buf[..3], &[0xAA; 3], "bytes before the data untouched");
        buf[3..3 + n].to_vec()
    }

    fn reference(input: &[u8]) -> Vec<u8> {
        input
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect()
    }

    #[test]
    fn newlines_become_crlf_like_onlcr() {
        for input in [
            &b""[..],
            b"x",
            b"\n",
            b"\n\n\n",
            b"ab\ncd\n",
            b"\r\n",
            b"no newline at all",
            b"\nleading and trailing\n",
        ] {
            assert_eq!(expand(input), reference(input), "{input:?}");
        }
        // A pseudo-random mix, with the pattern of every byte value.
        let mut x = 0x1234_5678u32;
        let data: Vec<u8> = (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if x % 7 == 0 { b'\n' } else { x as u8 }
            })
            .collect();
        assert_eq!(expand(&data), reference(&data));
    }
}
