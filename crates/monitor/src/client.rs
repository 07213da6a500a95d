//! One connection on the attach socket, and the sending side of the protocol.
//!
//! # Output model
//! A client has no queue of copied output. It has a *position* (`pos`): the offset of the next
//! output byte it gets. Sending gathers the bytes straight from the terminal's ring (or, when
//! they are older than the ring and the client asked for them, from the raw log). So one
//! container's output costs the same memory for 1 or 1000 clients, and "how far behind" is
//! simply `head - pos`.
//!
//! What is sent, in order, whenever the socket accepts more: queued control frames (`ctrl`),
//! then the current phase's data: a repaint (`Repaint` frames, then `ReplayEnd`), a byte replay
//! up to the offset the replay ends at (`Output` frames, then `ReplayEnd`), or live output.
//! A live client whose lag passes its limit (or whose position fell out of the ring) is handled
//! by its [`Flow`]: skipped to a repaint (a `Skipped` frame, the skipped bytes counted as
//! drops), or disconnected with a `TooSlow` error. `CatchUp` clients read the raw log instead
//! and are only skipped past bytes rotation deleted. When the terminal's process has ended and
//! everything was sent, the client gets `Exit` and the connection closes.
//!
//! # Direct output
//! A client that handed over its terminal or pipe ([`DirectOut`]) gets the same stream, in the
//! same order, as raw bytes written to that descriptor instead of `Repaint`/`Output` frames; its
//! position, lag and policy work as above, with the descriptor's room instead of the socket's.
//! Control frames stay on the socket and are only queued once the output before them was
//! written, so `ReplayEnd`, `Exit` and `Detached` never overtake it. On the way out the
//! terminal gets [`berth_proto::terminal_reset`] and the descriptor is closed; if writing to it
//! fails (the reader went away), the client is told `Detached` and closed.
//!
//! # Direct keys
//! A client that also handed over its input ([`DirectKeys`]) has its keys read by the monitor:
//! they go through the client's detach-key [`Scanner`] into the terminal's input queue, and
//! the detach keys end the session as a `Detach` frame would. The monitor stops reading them
//! as soon as the session ends for that client (exit, detach, takeover, error).

use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::fd::{AsFd, OwnedFd};

use berth_proto::frame::{MAX_DATA, MAX_OUTPUT_DATA, output_header};
use berth_proto::{ErrorCode, Flow, Frame, ReplayKind, Role, Scanner};
use berth_tty::Winsize;
use rustix::io::Errno;

use crate::sock;
use crate::term::Term;

/// Where a client is in the conversation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum State {
    /// Connected; its first frame has not come yet (closed after the deadline).
    Handshake {
        /// Monotonic seconds.
        deadline: f64,
    },
    /// Attached to terminal `term` (an index into the monitor's terminals).
    Attached {
        /// The terminal.
        term: usize,
    },
    /// Waiting for an exec session it asked for.
    WaitingExec,
    /// Done: sending what is queued, then closing.
    Closing,
}

/// What is being sent after the control frames.
#[derive(Debug)]
pub enum Phase {
    /// Nothing (not attached).
    None,
    /// A repaint, then `ReplayEnd { end }`.
    Repaint {
        /// The escape sequences.
        data: Vec<u8>,
        /// Bytes of it sent.
        at: usize,
        /// The offset the repaint shows the screen as of.
        end: u64,
    },
    /// Bytes up to `end`, then `ReplayEnd { end }`.
    Bytes {
        /// Where the replay ends.
        end: u64,
    },
    /// Live output.
    Live,
}

/// The output descriptor a client handed over with its `Hello` (see "Direct output").
#[derive(Debug)]
pub struct DirectOut {
    /// A private, non-blocking description of the client's terminal or pipe.
    pub fd: OwnedFd,
    /// It is a terminal: it gets the reset on the way out.
    pub tty: bool,
    /// `EPOLLOUT` is armed on it.
    pub armed: bool,
}

/// The input descriptor a client handed over with a `Hello` asking for direct keys: the
/// monitor reads the keys, scans them for the client's detach keys, and writes the rest to the
/// terminal (as tmux's server reads its clients' terminals).
#[derive(Debug)]
pub struct DirectKeys {
    /// A private, non-blocking description of the client's terminal or pipe.
    pub fd: OwnedFd,
    /// It is a terminal: its end (a hang-up) detaches the client instead of ending the
    /// terminal's input.
    pub tty: bool,
    /// Finds the detach keys.
    pub scanner: Scanner,
    /// How long a partial match is held (seconds; `None`: until the next key).
    pub hold: Option<f64>,
    /// When the partial match now held began (monotonic seconds).
    pub held_since: Option<f64>,
    /// Not read while its terminal's input queue is full (`EPOLLIN` off).
    pub paused: bool,
}

impl DirectKeys {
    /// When the held partial match is typed after all, if one is held and has a limit.
    pub fn due(&self) -> Option<f64> {
        Some(self.held_since? + self.hold?)
    }
}

/// How a client's input reaches its terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPath {
    /// `Stdin` frames.
    Frames,
    /// The client writes to a dup of the master.
    Master,
    /// The monitor reads the client's input itself ([`DirectKeys`]).
    Keys,
}

impl InputPath {
    /// Its name in `berth sessions`.
    pub fn name(self) -> &'static str {
        match self {
            InputPath::Frames => "frames",
            InputPath::Master => "master",
            InputPath::Keys => "monitor",
        }
    }
}

/// An attach-socket connection.
#[derive(Debug)]
pub struct Client {
    /// Its id.
    pub id: u32,
    /// The socket.
    pub fd: OwnedFd,
    /// Peer pid (`SO_PEERCRED`).
    pub pid: i32,
    /// Peer uid.
    pub uid: u32,
    /// Conversation state.
    pub state: State,
    /// Read-write or read-only.
    pub role: Role,
    /// Its size never counts.
    pub ignore_size: bool,
    /// Its lag policy.
    pub flow: Flow,
    /// Its lag limit in bytes.
    pub limit: usize,
    /// Stop after the replay.
    pub no_follow: bool,
    /// Its terminal's size, if it has one.
    pub size: Option<Winsize>,
    /// When its size last changed (a global sequence number; the `latest` policy picks the
    /// highest).
    pub size_seq: u64,
    /// The next output offset it gets.
    pub pos: u64,
    /// The current phase.
    pub phase: Phase,
    /// Encoded control frames to send first, each with the descriptor that goes with it (the
    /// master, with `Attached`, for a client that asked for direct input).
    pub ctrl: VecDeque<(Vec<u8>, Option<OwnedFd>)>,
    /// Close once `ctrl` is sent.
    pub close_when_flushed: bool,
    /// `Exit` was queued.
    pub exit_sent: bool,
    /// `EPOLLOUT` is armed.
    pub out_armed: bool,
    /// Reading is paused (its terminal's input queue is full).
    pub in_paused: bool,
    /// Output bytes sent.
    pub bytes: u64,
    /// Output bytes it never got (skipped or lost to rotation).
    pub drops: u64,
    /// Times it was skipped forward.
    pub skips: u64,
    /// Input bytes it sent.
    pub input_bytes: u64,
    /// Its output descriptor, when the monitor writes its output directly.
    pub out: Option<DirectOut>,
    /// Its input descriptor, while the monitor reads its keys.
    pub keys: Option<DirectKeys>,
    /// How its input arrives.
    pub input: InputPath,
}

/// What [`pump`] ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pumped {
    /// Everything available was sent.
    Idle,
    /// The socket is full; wait for `EPOLLOUT`.
    Blocked,
    /// The client's own output descriptor is full; wait for `EPOLLOUT` on it.
    OutBlocked,
    /// Close the client now (done, or the socket failed).
    Close,
}

impl Client {
    /// A new connection.
    pub fn new(id: u32, fd: OwnedFd, pid: i32, uid: u32, deadline: f64) -> Client {
        Client {
            id,
            fd,
            pid,
            uid,
            state: State::Handshake { deadline },
            role: Role::ReadWrite,
            ignore_size: false,
            flow: Flow::SkipToRepaint,
            limit: 0,
            no_follow: false,
            size: None,
            size_seq: 0,
            pos: 0,
            phase: Phase::None,
            ctrl: VecDeque::new(),
            close_when_flushed: false,
            exit_sent: false,
            out_armed: false,
            in_paused: false,
            bytes: 0,
            drops: 0,
            skips: 0,
            input_bytes: 0,
            out: None,
            keys: None,
            input: InputPath::Frames,
        }
    }

    /// Queues a control frame (one that cannot fail to encode is expected; an encoding error
    /// is logged and the frame dropped).
    pub fn queue(&mut self, f: &Frame<'_>) {
        self.queue_with_fd(f, None);
    }

    /// Queues a control frame that carries `fd` (`SCM_RIGHTS`).
    pub fn queue_with_fd(&mut self, f: &Frame<'_>, fd: Option<OwnedFd>) {
        match f.to_vec() {
            Ok(v) => self.ctrl.push_back((v, fd)),
            Err(e) => log::warn!("client {}: {e}", self.id),
        }
    }

    /// Queues an error frame.
    pub fn error(&mut self, code: ErrorCode, message: &str) {
        let mut m = message.to_string();
        if m.len() > MAX_DATA - 8 {
            let mut cut = MAX_DATA - 8;
            while !m.is_char_boundary(cut) {
                cut -= 1;
            }
            m.truncate(cut);
        }
        self.queue(&Frame::Error { code, message: &m });
    }

    /// Queues a final error and marks the client for closing.
    pub fn fail(&mut self, code: ErrorCode, message: &str) {
        self.keys = None;
        self.error(code, message);
        self.close_when_flushed = true;
        self.state = State::Closing;
    }

    /// Whether its size counts for the terminal's size.
    pub fn sizes(&self) -> bool {
        self.role == Role::ReadWrite && !self.ignore_size && self.size.is_some()
    }

    /// The lag behind `head`.
    pub fn lag(&self, head: u64) -> u64 {
        head.saturating_sub(self.pos)
    }

    /// Ends direct output: writes the terminal reset (best effort, never waiting) and closes
    /// the descriptor (which leaves epoll with it: the description is the monitor's own).
    /// `alternate`: the program is on the alternate screen.
    pub fn release_output(&mut self, alternate: bool, detached: bool) {
        // The session is over for this client: the keys typed from now on are not ours.
        self.keys = None;
        if let Some(out) = self.out.take() {
            if out.tty {
                let reset = berth_proto::terminal_reset(alternate, detached);
                let _ = rustix::io::write(&out.fd, &reset);
            }
        }
    }

    /// [`Client::release_output`] with the screen model brought up to date first (only a
    /// terminal needs it).
    pub fn end_output(&mut self, term: &mut Term, detached: bool) {
        if self.out.as_ref().is_some_and(|o| o.tty) {
            term.screen.catch_up_all(&term.ring);
            self.release_output(term.screen.alternate(), detached);
        }
        self.out = None;
        self.keys = None;
    }

    /// The output descriptor failed (its reader went away): the client is told `Detached`
    /// and closed (which takes it off its terminal and recomputes the size).
    fn output_gone(&mut self, e: Errno) {
        log::debug!("client {}: its output descriptor failed: {e}", self.id);
        self.out = None;
        self.keys = None;
        self.queue(&Frame::Detached);
        self.close_when_flushed = true;
        self.state = State::Closing;
    }
}

/// What writing to a direct client's descriptor gave.
enum Wrote {
    /// This many bytes.
    Bytes(usize),
    /// No room.
    Full,
    /// It failed.
    Failed(Errno),
}

fn write_direct(out: &DirectOut, a: &[u8], b: &[u8]) -> Wrote {
    // A fixed pair (an empty slice costs nothing): no allocation per write on this path.
    let iov = [IoSlice::new(a), IoSlice::new(b)];
    loop {
        match rustix::io::writev(&out.fd, &iov) {
            Ok(n) => return Wrote::Bytes(n),
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => return Wrote::Full,
            Err(e) => return Wrote::Failed(e),
        }
    }
}

/// Applies the lag policy to a live client (see the module docs).
fn check_lag(c: &mut Client, term: &mut Term) {
    if !matches!(c.phase, Phase::Live) || c.close_when_flushed {
        return;
    }
    let head = term.ring.head();
    let behind_ring = c.pos < term.ring.start();
    let lag = c.lag(head);
    if !(behind_ring || lag > c.limit as u64) || c.flow == Flow::CatchUp {
        return;
    }
    match c.flow {
        Flow::SkipToRepaint => {
            term.screen.catch_up_all(&term.ring);
            c.queue(&Frame::Skipped {
                from: c.pos,
                to: head,
            });
            c.queue(&Frame::ReplayStart {
                kind: ReplayKind::Repaint,
                offset: head,
            });
            c.drops += lag;
            c.skips += 1;
            c.pos = head;
            c.phase = Phase::Repaint {
                data: term.screen.repaint_bytes(),
                at: 0,
                end: head,
            };
            log::debug!("client {}: {lag} bytes behind, skipped to a repaint", c.id);
        }
        Flow::Disconnect => {
            c.drops += lag;
            term.clients.retain(|&x| x != c.id);
            c.fail(
                ErrorCode::TooSlow,
                &format!(
                    "client {} fell {lag} bytes behind (its limit is {}): disconnected as it asked",
                    c.id, c.limit
                ),
            );
        }
        Flow::CatchUp => {}
    }
}

/// The most bytes one write to a direct client's descriptor carries (a pipe takes 64 KiB, a
/// pty's queue less; a larger write would only come back short).
const DIRECT_CHUNK: usize = 256 * 1024;

/// Sends the bytes from `c.pos` up to `end` (exclusive): one `Output` frame, or one write to
/// the client's descriptor. `None` when something was sent (or the client was skipped or
/// closed), else what `pump` returns: its socket or descriptor is full, or the socket failed.
fn send_output(c: &mut Client, term: &mut Term, end: u64, scratch: &mut [u8]) -> Option<Pumped> {
    let direct = c.out.is_some();
    let max = ((end - c.pos) as usize).min(if direct {
        DIRECT_CHUNK
    } else {
        MAX_OUTPUT_DATA
    });
    let header = output_header(c.pos);
    let parts: [&[u8]; 2] = if let Some((a, b)) = term.ring.slices(c.pos, max) {
        [a, b]
    } else {
        let want = max.min(scratch.len());
        match term.read_at(c.pos, &mut scratch[..want]) {
            Ok(Some(n)) if n > 0 => [&scratch[..n], &[]],
            other => {
                if let Err(e) = other {
                    log::warn!("client {}: reading the log: {e}", c.id);
                }
                // Gone (rotated away): skip to the oldest byte still available.
                let mut to = term.oldest().max(c.pos + 1);
                if to > term.ring.head() {
                    to = term.ring.head();
                }
                c.queue(&Frame::Skipped { from: c.pos, to });
                c.drops += to - c.pos;
                c.pos = to;
                return None;
            }
        }
    };
    let sent = match &c.out {
        Some(out) => match write_direct(out, parts[0], parts[1]) {
            Wrote::Bytes(n) => n,
            Wrote::Full => return Some(Pumped::OutBlocked),
            Wrote::Failed(e) => {
                c.output_gone(e);
                return None;
            }
        },
        None => match sock::send_parts(c.fd.as_fd(), &[&header, parts[0], parts[1]]) {
            Ok(true) => parts[0].len() + parts[1].len(),
            Ok(false) => return Some(Pumped::Blocked),
            Err(_) => return Some(Pumped::Close),
        },
    };
    c.pos += sent as u64;
    c.bytes += sent as u64;
    None
}

/// Sends as much as the socket takes (see the module docs).
pub fn pump(c: &mut Client, mut term: Option<&mut Term>, scratch: &mut [u8]) -> Pumped {
    loop {
        if let Some((f, fd)) = c.ctrl.front() {
            let sent = match fd {
                Some(fd) => sock::send_with_fd(c.fd.as_fd(), f, fd.as_fd()),
                None => sock::send(c.fd.as_fd(), f),
            };
            match sent {
                Ok(true) => {
                    c.ctrl.pop_front();
                    continue;
                }
                Ok(false) => return Pumped::Blocked,
                Err(_) => return Pumped::Close,
            }
        }
        if c.close_when_flushed {
            return Pumped::Close;
        }
        let Some(term) = term.as_deref_mut() else {
            return Pumped::Idle;
        };
        check_lag(c, term);
        if !c.ctrl.is_empty() || c.close_when_flushed {
            continue;
        }
        match &mut c.phase {
            Phase::None => return Pumped::Idle,
            Phase::Repaint { data, at, end } => {
                let direct = c.out.as_ref().filter(|_| *at < data.len());
                if let Some(out) = direct {
                    match write_direct(out, &data[*at..], &[]) {
                        Wrote::Bytes(n) => *at += n,
                        Wrote::Full => return Pumped::OutBlocked,
                        Wrote::Failed(e) => c.output_gone(e),
                    }
                } else if *at < data.len() {
                    let n = (data.len() - *at).min(MAX_DATA);
                    let mut frame = Vec::with_capacity(n + 1);
                    if (Frame::Repaint(&data[*at..*at + n]))
                        .encode(&mut frame)
                        .is_err()
                    {
                        return Pumped::Close;
                    }
                    match sock::send(c.fd.as_fd(), &frame) {
                        Ok(true) => *at += n,
                        Ok(false) => return Pumped::Blocked,
                        Err(_) => return Pumped::Close,
                    }
                } else {
                    let end = *end;
                    c.queue(&Frame::ReplayEnd { offset: end });
                    c.phase = Phase::Live;
                    if c.no_follow {
                        c.close_when_flushed = true;
                    }
                }
            }
            Phase::Bytes { end } => {
                let end = *end;
                if c.pos >= end {
                    c.queue(&Frame::ReplayEnd { offset: c.pos });
                    c.phase = Phase::Live;
                    if c.no_follow {
                        c.close_when_flushed = true;
                    }
                    continue;
                }
                if let Some(stop) = send_output(c, term, end, scratch) {
                    return stop;
                }
            }
            Phase::Live => {
                let head = term.ring.head();
                if c.pos < head {
                    if let Some(stop) = send_output(c, term, head, scratch) {
                        return stop;
                    }
                } else if let (Some(exit), true, false) = (term.exit, term.drained, c.exit_sent) {
                    c.end_output(term, false);
                    c.queue(&Frame::Exit(exit));
                    c.exit_sent = true;
                    term.clients.retain(|&x| x != c.id);
                    c.close_when_flushed = true;
                    c.state = State::Closing;
                } else {
                    return Pumped::Idle;
                }
            }
        }
    }
}
