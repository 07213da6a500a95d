//! Frames and their encoding.
//!
//! # Layout
//! A frame is one `SOCK_SEQPACKET` packet of at most [`MAX_FRAME`] bytes: byte 0 is the frame
//! type, then the type's fixed fields (integers big-endian), then, for frames with a variable
//! part, that part up to the end of the packet. Strings are UTF-8; inside lists they are
//! prefixed by a 16-bit length. Nothing follows the last field: trailing bytes are an error, so
//! every valid frame has exactly one encoding and `decode(encode(f)) == f`.
//!
//! | type | frame | fields after the type byte |
//! |---|---|---|
//! | `0x01` | `Hello` | version u8, role u8, flags u8, flow u8, queue limit u32, rows u16, cols u16, start kind u8, start value u64, [with flag bit 5: detach keys length u8, detach keys, hold ms u32,] target kind u8, tty u16, exec name (rest) |
//! | `0x02` | `Stdin` | bytes (rest) |
//! | `0x03` | `Resize` | rows u16, cols u16 |
//! | `0x04` | `Signal` | signal u32 |
//! | `0x05` | `StdinEof` | — |
//! | `0x06` | `Detach` | — |
//! | `0x07` | `ListRequest` | — |
//! | `0x08` | `ScreenshotRequest` | formatted u8, target kind u8, tty u16, exec name (rest) |
//! | `0x09` | `ExecRequest` | rows u16, cols u16, option count u16, options, command count u16, command (each string: u16 length + bytes) |
//! | `0x81` | `Attached` | client u32, offset u64, rows u16, cols u16, flags u8, session name (rest) |
//! | `0x82` | `Output` | offset u64, bytes (rest) |
//! | `0x83` | `ReplayStart` | kind u8, offset u64 |
//! | `0x84` | `ReplayEnd` | offset u64 |
//! | `0x85` | `Repaint` | bytes (rest) |
//! | `0x86` | `Exit` | kind u8 (0 exited, 1 killed by signal), value i32 |
//! | `0x87` | `Error` | code u16, message (rest) |
//! | `0x88` | `ClientList` | JSON text (rest) |
//! | `0x89` | `Takeover` | by client u32 |
//! | `0x8a` | `Resized` | rows u16, cols u16 |
//! | `0x8b` | `Detached` | — |
//! | `0x8c` | `Skipped` | from u64, to u64 |
//! | `0x8d` | `Screenshot` | last u8, bytes (rest) |
//! | `0x8e` | `ExecStarted` | pid u32, session name (rest) |
//!
//! Hello flags: bit 0 `ignore-size`, bit 1 `force`, bit 2 `no-follow` (stop after the replay),
//! bit 3 `direct-output` (the client's output file descriptor comes with the frame, one
//! `SCM_RIGHTS` descriptor: the monitor may write the output to it itself instead of sending
//! `Output` and `Repaint` frames), bit 4 `direct-input` (a read-write client asks for the
//! terminal's master, to write its input there itself), bit 5 `direct-keys` (only with
//! `direct-output`: the client's input descriptor comes with the frame as a second
//! `SCM_RIGHTS` descriptor, after the output's; the monitor may read the keys from it itself,
//! scan them for the detach keys the frame carries, holding a partial match for at most
//! the frame's hold time (0: until the next key), and write the rest to the terminal);
//! other bits must be 0. Attached flags:
//! bit 0 `direct-output` (the monitor took the descriptor: no `Output`/`Repaint` frames follow,
//! and the monitor writes the terminal's reset on the way out), bit 1 `direct-input` (the
//! terminal's master comes with the frame, one `SCM_RIGHTS` descriptor), bit 2 `direct-keys`
//! (the monitor reads the client's input: the client reads none and sends no `Stdin`; the
//! detach keys end the session with `Detached`); other bits must be 0. A size of 0x0 means "no size"; a size with exactly one zero dimension is
//! rejected by the monitor, never applied.

use std::fmt;

/// The protocol version this crate speaks (the `Hello` frame's first field).
pub const VERSION: u8 = 1;
/// The largest frame, type byte included. Receivers use a buffer one byte larger and reject
/// (with [`ErrorCode::TooLarge`]) any packet that fills it or comes back truncated.
pub const MAX_FRAME: usize = 65536;
/// Bytes before the data in an `Output` frame (type + offset).
pub const OUTPUT_HEADER: usize = 9;
/// The most output bytes one `Output` frame carries.
pub const MAX_OUTPUT_DATA: usize = MAX_FRAME - OUTPUT_HEADER;
/// The most bytes one `Stdin`, `Repaint` or `Screenshot` frame carries.
pub const MAX_DATA: usize = MAX_FRAME - 2;

mod ty {
    pub const HELLO: u8 = 0x01;
    pub const STDIN: u8 = 0x02;
    pub const RESIZE: u8 = 0x03;
    pub const SIGNAL: u8 = 0x04;
    pub const STDIN_EOF: u8 = 0x05;
    pub const DETACH: u8 = 0x06;
    pub const LIST_REQUEST: u8 = 0x07;
    pub const SCREENSHOT_REQUEST: u8 = 0x08;
    pub const EXEC_REQUEST: u8 = 0x09;
    pub const ATTACHED: u8 = 0x81;
    pub const OUTPUT: u8 = 0x82;
    pub const REPLAY_START: u8 = 0x83;
    pub const REPLAY_END: u8 = 0x84;
    pub const REPAINT: u8 = 0x85;
    pub const EXIT: u8 = 0x86;
    pub const ERROR: u8 = 0x87;
    pub const CLIENT_LIST: u8 = 0x88;
    pub const TAKEOVER: u8 = 0x89;
    pub const RESIZED: u8 = 0x8a;
    pub const DETACHED: u8 = 0x8b;
    pub const SKIPPED: u8 = 0x8c;
    pub const SCREENSHOT: u8 = 0x8d;
    pub const EXEC_STARTED: u8 = 0x8e;
}

const FLAG_IGNORE_SIZE: u8 = 1;
const FLAG_FORCE: u8 = 2;
const FLAG_NO_FOLLOW: u8 = 4;
const FLAG_DIRECT_OUTPUT: u8 = 8;
const FLAG_DIRECT_INPUT: u8 = 16;
const FLAG_DIRECT_KEYS: u8 = 32;
const FLAGS_KNOWN: u8 = FLAG_IGNORE_SIZE
    | FLAG_FORCE
    | FLAG_NO_FOLLOW
    | FLAG_DIRECT_OUTPUT
    | FLAG_DIRECT_INPUT
    | FLAG_DIRECT_KEYS;
const ATTACHED_DIRECT_OUTPUT: u8 = 1;
const ATTACHED_DIRECT_INPUT: u8 = 2;
const ATTACHED_DIRECT_KEYS: u8 = 4;

/// What an attached client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sends input and, unless `ignore-size`, takes part in sizing the terminal.
    ReadWrite,
    /// Only watches: its input is refused and its size never counts.
    ReadOnly,
}

/// What the monitor does when a client falls further behind than its queue limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// Skip it forward: a `Skipped` frame, then a repaint of the current screen, then live
    /// output (tmux's answer to a slow terminal). The default for terminals.
    SkipToRepaint,
    /// Disconnect it with an error frame.
    Disconnect,
    /// Never skip while the bytes are still in the log files: read them from there (for `logs
    /// -f`); skipped only past what rotation deleted.
    CatchUp,
}

/// Where an attached client's stream begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Start {
    /// A repaint of the current screen, then live output (the default).
    Repaint,
    /// Live output only.
    Live,
    /// Every byte from this offset (from the ring, else the log files), then live output.
    Offset(u64),
    /// The last N lines of output, then live output.
    TailLines(u64),
}

/// Which terminal of the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target<'a> {
    /// The container's console (`process.terminal`).
    Console,
    /// Extra tty N (`/dev/ttyN` in the container, N ≥ 1).
    Tty(u16),
    /// An exec session, by name.
    Exec(&'a str),
}

impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Console => f.write_str("console"),
            Target::Tty(n) => write!(f, "tty{n}"),
            Target::Exec(name) => write!(f, "exec session {name:?}"),
        }
    }
}

/// An attach request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hello<'a> {
    /// Read-write or read-only.
    pub role: Role,
    /// Its size never counts for the terminal's size (tmux's `ignore-size`).
    pub ignore_size: bool,
    /// Take over: every other client of the terminal gets a `Takeover` frame and is
    /// disconnected.
    pub force: bool,
    /// Stop after the replay (`ReplayEnd`, then the monitor closes the connection).
    pub no_follow: bool,
    /// The client's output file descriptor comes with the frame (`SCM_RIGHTS`): the monitor may
    /// write the output to it directly (see [`Frame::Attached`]'s `direct_output`).
    pub direct_output: bool,
    /// A read-write client asks for the terminal's master, to write its input there itself
    /// (see [`Frame::Attached`]'s `direct_input`).
    pub direct_input: bool,
    /// With `direct_output`: the client's input descriptor comes with the frame too, and the
    /// monitor may read the keys itself (see [`Frame::Attached`]'s `direct_keys`).
    pub direct_keys: Option<KeyScan<'a>>,
    /// What to do when it falls behind.
    pub flow: Flow,
    /// How far (bytes) it may fall behind before `flow` applies; 0 = the monitor's default.
    pub queue_limit: u32,
    /// Its terminal size `(rows, cols)`, if it has one.
    pub size: Option<(u16, u16)>,
    /// Where its stream begins.
    pub start: Start,
    /// Which terminal.
    pub target: Target<'a>,
}

impl Default for Hello<'_> {
    fn default() -> Self {
        Hello {
            role: Role::ReadWrite,
            ignore_size: false,
            force: false,
            no_follow: false,
            direct_output: false,
            direct_input: false,
            direct_keys: None,
            flow: Flow::SkipToRepaint,
            queue_limit: 0,
            size: None,
            start: Start::Repaint,
            target: Target::Console,
        }
    }
}

/// How the monitor scans the keys it reads for a client (`Hello`'s `direct_keys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyScan<'a> {
    /// The detach sequence (empty: none; at most 255 bytes).
    pub detach_keys: &'a [u8],
    /// How long a partial match is held before it is typed after all, in milliseconds (0:
    /// until the next key).
    pub hold_ms: u32,
}

/// What a replay consists of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplayKind {
    /// `Repaint` frames: escape sequences that draw the current screen.
    Repaint,
    /// `Output` frames with their offsets (from the ring or the logs).
    Bytes,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitCode {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl ExitCode {
    /// The shell convention: the code, or 128 + the signal.
    pub fn code(&self) -> i32 {
        match *self {
            ExitCode::Exited(c) => c,
            ExitCode::Signaled(s) => 128 + s,
        }
    }
}

impl fmt::Display for ExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitCode::Exited(c) => write!(f, "exited with status {c}"),
            ExitCode::Signaled(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// Why the monitor sent an `Error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The frame could not be decoded, or is not allowed at this point.
    BadFrame,
    /// The packet exceeded [`MAX_FRAME`].
    TooLarge,
    /// No such terminal or exec session.
    NoSuchTarget,
    /// The peer's uid may not use this monitor, or a read-only client sent input.
    PermissionDenied,
    /// The request is well-formed but its values are not acceptable (a size of 0x80, …).
    BadRequest,
    /// The client fell behind with `Flow::Disconnect`.
    TooSlow,
    /// The monitor tried and failed (e.g. the runtime's `exec` failed).
    Failed,
    /// A code this side does not know (kept, so decoding never loses information).
    Other(u16),
}

impl ErrorCode {
    fn to_u16(self) -> u16 {
        match self {
            ErrorCode::BadFrame => 1,
            ErrorCode::TooLarge => 2,
            ErrorCode::NoSuchTarget => 3,
            ErrorCode::PermissionDenied => 4,
            ErrorCode::BadRequest => 5,
            ErrorCode::TooSlow => 6,
            ErrorCode::Failed => 7,
            ErrorCode::Other(c) => c,
        }
    }

    fn from_u16(c: u16) -> ErrorCode {
        match c {
            1 => ErrorCode::BadFrame,
            2 => ErrorCode::TooLarge,
            3 => ErrorCode::NoSuchTarget,
            4 => ErrorCode::PermissionDenied,
            5 => ErrorCode::BadRequest,
            6 => ErrorCode::TooSlow,
            7 => ErrorCode::Failed,
            c => ErrorCode::Other(c),
        }
    }
}

/// One frame. Byte and string payloads borrow from the decoded packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Frame<'a> {
    /// Client: attach to a terminal.
    Hello(Hello<'a>),
    /// Client: input for the terminal.
    Stdin(&'a [u8]),
    /// Client: its terminal now has this size.
    Resize {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// Client: send this signal to the terminal's process (the container's init, or the exec
    /// session's process).
    Signal(u32),
    /// Client: end of input (the monitor writes the terminal's `VEOF` character).
    StdinEof,
    /// Client: detach me (answered with `Detached`).
    Detach,
    /// Client: list the terminals and their clients (answered with `ClientList`).
    ListRequest,
    /// Client: the current screen of a terminal as text (answered with `Screenshot` frames).
    ScreenshotRequest {
        /// Which terminal.
        target: Target<'a>,
        /// With colours and attributes as escape sequences, not plain text.
        formatted: bool,
    },
    /// Client: start an exec session (answered with `ExecStarted` or `Error`).
    ExecRequest {
        /// Initial rows (0 with `cols` 0: the monitor's default).
        rows: u16,
        /// Initial columns.
        cols: u16,
        /// Runtime `exec` options (`--cwd`, `--env`, `--user`, …), each flag and value an item.
        options: Vec<&'a str>,
        /// The command and its arguments.
        command: Vec<&'a str>,
    },
    /// Monitor: the attach request is accepted.
    Attached {
        /// This client's id (shown by `berth sessions`, named in `Takeover`).
        client: u32,
        /// The terminal's current output offset.
        offset: u64,
        /// Its rows (0 before the pty exists).
        rows: u16,
        /// Its columns.
        cols: u16,
        /// The monitor writes this client's output to the descriptor that came with `Hello`:
        /// no `Output` or `Repaint` frames follow.
        direct_output: bool,
        /// The terminal's master comes with this frame (`SCM_RIGHTS`): the client writes its
        /// input there and sends no `Stdin` frames.
        direct_input: bool,
        /// The monitor reads this client's input from the descriptor that came with `Hello`
        /// and scans it for the detach keys: the client reads none and sends no `Stdin`.
        direct_keys: bool,
        /// The session's name (`console`, `tty1`, or the exec session's name).
        session: &'a str,
    },
    /// Monitor: output bytes starting at `offset`.
    Output {
        /// Offset of `data[0]`.
        offset: u64,
        /// The bytes.
        data: &'a [u8],
    },
    /// Monitor: a replay begins.
    ReplayStart {
        /// Repaint or bytes.
        kind: ReplayKind,
        /// For bytes: the first offset replayed; for a repaint: the offset the screen is
        /// drawn as of.
        offset: u64,
    },
    /// Monitor: the replay ended; live output continues at `offset`.
    ReplayEnd {
        /// The next output offset this client gets.
        offset: u64,
    },
    /// Monitor: part of a repaint (escape sequences drawing the current screen).
    Repaint(&'a [u8]),
    /// Monitor: the terminal's process ended (sent after all of its output).
    Exit(ExitCode),
    /// Monitor: something is wrong; `message` says what, naming the field.
    Error {
        /// The category.
        code: ErrorCode,
        /// One line for the user.
        message: &'a str,
    },
    /// Monitor: the sessions and their clients, as JSON. A list longer than one frame comes
    /// in several `ClientList` frames, to be concatenated until the monitor closes the
    /// connection.
    ClientList(&'a str),
    /// Monitor: another client took this terminal over (`--force`); the connection closes.
    Takeover {
        /// The client that took over.
        by: u32,
    },
    /// Monitor: the terminal's size changed.
    Resized {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// Monitor: detached as asked; the connection closes.
    Detached,
    /// Monitor: this client fell behind; bytes `from..to` were not sent to it (a repaint
    /// follows).
    Skipped {
        /// First offset not sent.
        from: u64,
        /// Offset live output resumes at.
        to: u64,
    },
    /// Monitor: part of a screenshot; `last` marks the final part.
    Screenshot {
        /// This is the last part.
        last: bool,
        /// Text (UTF-8, possibly split inside a character between parts).
        data: &'a [u8],
    },
    /// Monitor: the exec session started.
    ExecStarted {
        /// The process's pid (in the monitor's pid namespace).
        pid: u32,
        /// The session's name, for `berth attach --exec`.
        session: &'a str,
    },
}

impl Frame<'_> {
    /// A short name for messages (`hello`, `output`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "hello",
            Frame::Stdin(_) => "stdin",
            Frame::Resize { .. } => "resize",
            Frame::Signal(_) => "signal",
            Frame::StdinEof => "stdin-eof",
            Frame::Detach => "detach",
            Frame::ListRequest => "list-request",
            Frame::ScreenshotRequest { .. } => "screenshot-request",
            Frame::ExecRequest { .. } => "exec-request",
            Frame::Attached { .. } => "attached",
            Frame::Output { .. } => "output",
            Frame::ReplayStart { .. } => "replay-start",
            Frame::ReplayEnd { .. } => "replay-end",
            Frame::Repaint(_) => "repaint",
            Frame::Exit(_) => "exit",
            Frame::Error { .. } => "error",
            Frame::ClientList(_) => "client-list",
            Frame::Takeover { .. } => "takeover",
            Frame::Resized { .. } => "resized",
            Frame::Detached => "detached",
            Frame::Skipped { .. } => "skipped",
            Frame::Screenshot { .. } => "screenshot",
            Frame::ExecStarted { .. } => "exec-started",
        }
    }
}

/// Why a packet is not a frame. Messages name the frame and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A zero-length packet.
    #[error("empty frame (0 bytes)")]
    Empty,
    /// More than [`MAX_FRAME`] bytes.
    #[error("frame of {len} bytes exceeds the maximum of {MAX_FRAME} bytes")]
    TooLarge {
        /// The packet's length.
        len: usize,
    },
    /// Byte 0 is not a known type.
    #[error("unknown frame type {0:#04x}")]
    UnknownType(u8),
    /// The packet ends inside a field.
    #[error("{frame} frame: truncated in field {field}")]
    Truncated {
        /// The frame.
        frame: &'static str,
        /// The field that is cut short.
        field: &'static str,
    },
    /// Bytes after the last field.
    #[error("{frame} frame: {extra} unexpected bytes after the last field")]
    Trailing {
        /// The frame.
        frame: &'static str,
        /// How many.
        extra: usize,
    },
    /// A field has a value outside its range.
    #[error("{frame} frame: field {field} has invalid value {value}")]
    BadValue {
        /// The frame.
        frame: &'static str,
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// A string field is not UTF-8.
    #[error("{frame} frame: field {field} is not valid UTF-8")]
    NotUtf8 {
        /// The frame.
        frame: &'static str,
        /// The field.
        field: &'static str,
    },
    /// `Hello` with a version this side does not speak.
    #[error("hello frame: protocol version {0} is not supported (this side speaks {VERSION})")]
    Version(u8),
}

/// Why a frame cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The encoded frame would exceed [`MAX_FRAME`].
    #[error("{frame} frame: {len} bytes exceeds the maximum of {MAX_FRAME} bytes")]
    TooLarge {
        /// The frame.
        frame: &'static str,
        /// Its encoded length.
        len: usize,
    },
    /// A list item or list is longer than its 16-bit length field allows.
    #[error("{frame} frame: field {field} is too long ({len} > {max})")]
    FieldTooLong {
        /// The frame.
        frame: &'static str,
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The most its length field allows.
        max: usize,
    },
}

/// The header of an `Output` frame, for senders that gather the data from elsewhere (a ring)
/// with `sendmsg` instead of copying it: `[0x82, offset (8 bytes, big-endian)]`.
pub fn output_header(offset: u64) -> [u8; OUTPUT_HEADER] {
    let mut h = [0u8; OUTPUT_HEADER];
    h[0] = ty::OUTPUT;
    h[1..].copy_from_slice(&offset.to_be_bytes());
    h
}

fn role_byte(r: Role) -> u8 {
    match r {
        Role::ReadWrite => 0,
        Role::ReadOnly => 1,
    }
}

fn flow_byte(f: Flow) -> u8 {
    match f {
        Flow::SkipToRepaint => 0,
        Flow::Disconnect => 1,
        Flow::CatchUp => 2,
    }
}

fn start_fields(s: Start) -> (u8, u64) {
    match s {
        Start::Repaint => (0, 0),
        Start::Live => (1, 0),
        Start::Offset(o) => (2, o),
        Start::TailLines(n) => (3, n),
    }
}

fn put_target(out: &mut Vec<u8>, t: &Target<'_>) {
    match t {
        Target::Console => {
            out.push(0);
            out.extend_from_slice(&0u16.to_be_bytes());
        }
        Target::Tty(n) => {
            out.push(1);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Target::Exec(name) => {
            out.push(2);
            out.extend_from_slice(&0u16.to_be_bytes());
            out.extend_from_slice(name.as_bytes());
        }
    }
}

fn put_list(
    out: &mut Vec<u8>,
    frame: &'static str,
    field: &'static str,
    items: &[&str],
) -> Result<(), EncodeError> {
    let count = u16::try_from(items.len()).map_err(|_| EncodeError::FieldTooLong {
        frame,
        field,
        len: items.len(),
        max: 65535,
    })?;
    out.extend_from_slice(&count.to_be_bytes());
    for s in items {
        let len = u16::try_from(s.len()).map_err(|_| EncodeError::FieldTooLong {
            frame,
            field,
            len: s.len(),
            max: 65535,
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    Ok(())
}

impl Frame<'_> {
    /// Appends the frame's encoding to `out` (which is left as it was on error).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let r = self.encode_inner(out);
        let len = out.len() - start;
        if r.is_err() || len > MAX_FRAME {
            out.truncate(start);
            r?;
            return Err(EncodeError::TooLarge {
                frame: self.name(),
                len,
            });
        }
        Ok(())
    }

    /// The frame's encoding as a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v)
    }

    fn encode_inner(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Frame::Hello(h) => {
                out.push(ty::HELLO);
                out.push(VERSION);
                out.push(role_byte(h.role));
                let mut flags = 0;
                if h.ignore_size {
                    flags |= FLAG_IGNORE_SIZE;
                }
                if h.force {
                    flags |= FLAG_FORCE;
                }
                if h.no_follow {
                    flags |= FLAG_NO_FOLLOW;
                }
                if h.direct_output {
                    flags |= FLAG_DIRECT_OUTPUT;
                }
                if h.direct_input {
                    flags |= FLAG_DIRECT_INPUT;
                }
                if h.direct_keys.is_some() {
                    flags |= FLAG_DIRECT_KEYS;
                }
                out.push(flags);
                out.push(flow_byte(h.flow));
                out.extend_from_slice(&h.queue_limit.to_be_bytes());
                let (rows, cols) = h.size.unwrap_or((0, 0));
                out.extend_from_slice(&rows.to_be_bytes());
                out.extend_from_slice(&cols.to_be_bytes());
                let (kind, value) = start_fields(h.start);
                out.push(kind);
                out.extend_from_slice(&value.to_be_bytes());
                if let Some(k) = h.direct_keys {
                    let len = u8::try_from(k.detach_keys.len()).map_err(|_| {
                        EncodeError::FieldTooLong {
                            frame: "hello",
                            field: "detach-keys",
                            len: k.detach_keys.len(),
                            max: 255,
                        }
                    })?;
                    out.push(len);
                    out.extend_from_slice(k.detach_keys);
                    out.extend_from_slice(&k.hold_ms.to_be_bytes());
                }
                put_target(out, &h.target);
            }
            Frame::Stdin(d) => {
                out.push(ty::STDIN);
                out.extend_from_slice(d);
            }
            Frame::Resize { rows, cols } => {
                out.push(ty::RESIZE);
                out.extend_from_slice(&rows.to_be_bytes());
                out.extend_from_slice(&cols.to_be_bytes());
            }
            Frame::Signal(s) => {
                out.push(ty::SIGNAL);
                out.extend_from_slice(&s.to_be_bytes());
            }
            Frame::StdinEof => out.push(ty::STDIN_EOF),
            Frame::Detach => out.push(ty::DETACH),
            Frame::ListRequest => out.push(ty::LIST_REQUEST),
            Frame::ScreenshotRequest { target, formatted } => {
                out.push(ty::SCREENSHOT_REQUEST);
                out.push(u8::from(*formatted));
                put_target(out, target);
            }
            Frame::ExecRequest {
                rows,
                cols,
                options,
                command,
            } => {
                out.push(ty::EXEC_REQUEST);
                out.extend_from_slice(&rows.to_be_bytes());
                out.extend_from_slice(&cols.to_be_bytes());
                put_list(out, "exec-request", "options", options)?;
                put_list(out, "exec-request", "command", command)?;
            }
            Frame::Attached {
                client,
                offset,
                rows,
                cols,
                direct_output,
                direct_input,
                direct_keys,
                session,
            } => {
                out.push(ty::ATTACHED);
                out.extend_from_slice(&client.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(&rows.to_be_bytes());
                out.extend_from_slice(&cols.to_be_bytes());
                let mut flags = 0;
                if *direct_output {
                    flags |= ATTACHED_DIRECT_OUTPUT;
                }
                if *direct_input {
                    flags |= ATTACHED_DIRECT_INPUT;
                }
                if *direct_keys {
                    flags |= ATTACHED_DIRECT_KEYS;
                }
                out.push(flags);
                out.extend_from_slice(session.as_bytes());
            }
            Frame::Output { offset, data } => {
                out.extend_from_slice(&output_header(*offset));
                out.extend_from_slice(data);
            }
            Frame::ReplayStart { kind, offset } => {
                out.push(ty::REPLAY_START);
                out.push(match kind {
                    ReplayKind::Repaint => 0,
                    ReplayKind::Bytes => 1,
                });
                out.extend_from_slice(&offset.to_be_bytes());
            }
            Frame::ReplayEnd { offset } => {
                out.push(ty::REPLAY_END);
                out.extend_from_slice(&offset.to_be_bytes());
            }
            Frame::Repaint(d) => {
                out.push(ty::REPAINT);
                out.extend_from_slice(d);
            }
            Frame::Exit(e) => {
                out.push(ty::EXIT);
                let (kind, value) = match *e {
                    ExitCode::Exited(c) => (0u8, c),
                    ExitCode::Signaled(s) => (1u8, s),
                };
                out.push(kind);
                out.extend_from_slice(&value.to_be_bytes());
            }
            Frame::Error { code, message } => {
                out.push(ty::ERROR);
                out.extend_from_slice(&code.to_u16().to_be_bytes());
                out.extend_from_slice(message.as_bytes());
            }
            Frame::ClientList(json) => {
                out.push(ty::CLIENT_LIST);
                out.extend_from_slice(json.as_bytes());
            }
            Frame::Takeover { by } => {
                out.push(ty::TAKEOVER);
                out.extend_from_slice(&by.to_be_bytes());
            }
            Frame::Resized { rows, cols } => {
                out.push(ty::RESIZED);
                out.extend_from_slice(&rows.to_be_bytes());
                out.extend_from_slice(&cols.to_be_bytes());
            }
            Frame::Detached => out.push(ty::DETACHED),
            Frame::Skipped { from, to } => {
                out.push(ty::SKIPPED);
                out.extend_from_slice(&from.to_be_bytes());
                out.extend_from_slice(&to.to_be_bytes());
            }
            Frame::Screenshot { last, data } => {
                out.push(ty::SCREENSHOT);
                out.push(u8::from(*last));
                out.extend_from_slice(data);
            }
            Frame::ExecStarted { pid, session } => {
                out.push(ty::EXEC_STARTED);
                out.extend_from_slice(&pid.to_be_bytes());
                out.extend_from_slice(session.as_bytes());
            }
        }
        Ok(())
    }
}

/// A cursor over one packet.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    frame: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() - self.pos < n {
            return Err(DecodeError::Truncated {
                frame: self.frame,
                field,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    fn rest_str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let frame = self.frame;
        std::str::from_utf8(self.rest()).map_err(|_| DecodeError::NotUtf8 { frame, field })
    }

    fn list(&mut self, field: &'static str) -> Result<Vec<&'a str>, DecodeError> {
        let count = self.u16(field)?;
        let mut v = Vec::with_capacity(usize::from(count).min(self.buf.len()));
        for _ in 0..count {
            let len = self.u16(field)?;
            let b = self.take(usize::from(len), field)?;
            let frame = self.frame;
            v.push(std::str::from_utf8(b).map_err(|_| DecodeError::NotUtf8 { frame, field })?);
        }
        Ok(v)
    }

    fn bad(&self, field: &'static str, value: u64) -> DecodeError {
        DecodeError::BadValue {
            frame: self.frame,
            field,
            value,
        }
    }

    fn end(&self) -> Result<(), DecodeError> {
        if self.pos != self.buf.len() {
            return Err(DecodeError::Trailing {
                frame: self.frame,
                extra: self.buf.len() - self.pos,
            });
        }
        Ok(())
    }

    fn target(&mut self) -> Result<Target<'a>, DecodeError> {
        let kind = self.u8("target")?;
        let tty = self.u16("tty")?;
        match kind {
            0 | 1 => {
                if kind == 0 && tty != 0 {
                    return Err(self.bad("tty", u64::from(tty)));
                }
                if kind == 1 && tty == 0 {
                    return Err(self.bad("tty", 0));
                }
                let name = self.rest();
                if !name.is_empty() {
                    return Err(DecodeError::Trailing {
                        frame: self.frame,
                        extra: name.len(),
                    });
                }
                Ok(if kind == 0 {
                    Target::Console
                } else {
                    Target::Tty(tty)
                })
            }
            2 => {
                if tty != 0 {
                    return Err(self.bad("tty", u64::from(tty)));
                }
                let name = self.rest_str("session")?;
                if name.is_empty() {
                    return Err(DecodeError::Truncated {
                        frame: self.frame,
                        field: "session",
                    });
                }
                Ok(Target::Exec(name))
            }
            k => Err(self.bad("target", u64::from(k))),
        }
    }
}

fn frame_name(t: u8) -> Option<&'static str> {
    Some(match t {
        ty::HELLO => "hello",
        ty::STDIN => "stdin",
        ty::RESIZE => "resize",
        ty::SIGNAL => "signal",
        ty::STDIN_EOF => "stdin-eof",
        ty::DETACH => "detach",
        ty::LIST_REQUEST => "list-request",
        ty::SCREENSHOT_REQUEST => "screenshot-request",
        ty::EXEC_REQUEST => "exec-request",
        ty::ATTACHED => "attached",
        ty::OUTPUT => "output",
        ty::REPLAY_START => "replay-start",
        ty::REPLAY_END => "replay-end",
        ty::REPAINT => "repaint",
        ty::EXIT => "exit",
        ty::ERROR => "error",
        ty::CLIENT_LIST => "client-list",
        ty::TAKEOVER => "takeover",
        ty::RESIZED => "resized",
        ty::DETACHED => "detached",
        ty::SKIPPED => "skipped",
        ty::SCREENSHOT => "screenshot",
        ty::EXEC_STARTED => "exec-started",
        _ => return None,
    })
}

impl<'a> Frame<'a> {
    /// Decodes one packet. Never panics; every error names the frame and field.
    pub fn decode(buf: &'a [u8]) -> Result<Frame<'a>, DecodeError> {
        if buf.is_empty() {
            return Err(DecodeError::Empty);
        }
        if buf.len() > MAX_FRAME {
            return Err(DecodeError::TooLarge { len: buf.len() });
        }
        let t = buf[0];
        let frame = frame_name(t).ok_or(DecodeError::UnknownType(t))?;
        let mut r = Reader { buf, pos: 1, frame };
        let f = match t {
            ty::HELLO => {
                let version = r.u8("version")?;
                if version != VERSION {
                    return Err(DecodeError::Version(version));
                }
                let role = match r.u8("role")? {
                    0 => Role::ReadWrite,
                    1 => Role::ReadOnly,
                    v => return Err(r.bad("role", u64::from(v))),
                };
                let flags = r.u8("flags")?;
                if flags & !FLAGS_KNOWN != 0
                    || (flags & FLAG_DIRECT_KEYS != 0 && flags & FLAG_DIRECT_OUTPUT == 0)
                {
                    return Err(r.bad("flags", u64::from(flags)));
                }
                let flow = match r.u8("flow")? {
                    0 => Flow::SkipToRepaint,
                    1 => Flow::Disconnect,
                    2 => Flow::CatchUp,
                    v => return Err(r.bad("flow", u64::from(v))),
                };
                let queue_limit = r.u32("queue-limit")?;
                let rows = r.u16("rows")?;
                let cols = r.u16("cols")?;
                let kind = r.u8("start")?;
                let value = r.u64("start-value")?;
                let start = match kind {
                    0 | 1 if value != 0 => return Err(r.bad("start-value", value)),
                    0 => Start::Repaint,
                    1 => Start::Live,
                    2 => Start::Offset(value),
                    3 => Start::TailLines(value),
                    k => return Err(r.bad("start", u64::from(k))),
                };
                let direct_keys = if flags & FLAG_DIRECT_KEYS != 0 {
                    let len = r.u8("detach-keys")?;
                    let detach_keys = r.take(usize::from(len), "detach-keys")?;
                    Some(KeyScan {
                        detach_keys,
                        hold_ms: r.u32("hold-ms")?,
                    })
                } else {
                    None
                };
                let target = r.target()?;
                Frame::Hello(Hello {
                    role,
                    ignore_size: flags & FLAG_IGNORE_SIZE != 0,
                    force: flags & FLAG_FORCE != 0,
                    no_follow: flags & FLAG_NO_FOLLOW != 0,
                    direct_output: flags & FLAG_DIRECT_OUTPUT != 0,
                    direct_input: flags & FLAG_DIRECT_INPUT != 0,
                    direct_keys,
                    flow,
                    queue_limit,
                    size: if rows == 0 && cols == 0 {
                        None
                    } else {
                        Some((rows, cols))
                    },
                    start,
                    target,
                })
            }
            ty::STDIN => Frame::Stdin(r.rest()),
            ty::RESIZE => Frame::Resize {
                rows: r.u16("rows")?,
                cols: r.u16("cols")?,
            },
            ty::SIGNAL => Frame::Signal(r.u32("signal")?),
            ty::STDIN_EOF => Frame::StdinEof,
            ty::DETACH => Frame::Detach,
            ty::LIST_REQUEST => Frame::ListRequest,
            ty::SCREENSHOT_REQUEST => {
                let formatted = match r.u8("formatted")? {
                    0 => false,
                    1 => true,
                    v => return Err(r.bad("formatted", u64::from(v))),
                };
                let target = r.target()?;
                Frame::ScreenshotRequest { target, formatted }
            }
            ty::EXEC_REQUEST => Frame::ExecRequest {
                rows: r.u16("rows")?,
                cols: r.u16("cols")?,
                options: r.list("options")?,
                command: r.list("command")?,
            },
            ty::ATTACHED => {
                let client = r.u32("client")?;
                let offset = r.u64("offset")?;
                let rows = r.u16("rows")?;
                let cols = r.u16("cols")?;
                let flags = r.u8("flags")?;
                if flags & !(ATTACHED_DIRECT_OUTPUT | ATTACHED_DIRECT_INPUT | ATTACHED_DIRECT_KEYS)
                    != 0
                {
                    return Err(r.bad("flags", u64::from(flags)));
                }
                Frame::Attached {
                    client,
                    offset,
                    rows,
                    cols,
                    direct_output: flags & ATTACHED_DIRECT_OUTPUT != 0,
                    direct_input: flags & ATTACHED_DIRECT_INPUT != 0,
                    direct_keys: flags & ATTACHED_DIRECT_KEYS != 0,
                    session: r.rest_str("session")?,
                }
            }
            ty::OUTPUT => Frame::Output {
                offset: r.u64("offset")?,
                data: r.rest(),
            },
            ty::REPLAY_START => {
                let kind = match r.u8("kind")? {
                    0 => ReplayKind::Repaint,
                    1 => ReplayKind::Bytes,
                    v => return Err(r.bad("kind", u64::from(v))),
                };
                Frame::ReplayStart {
                    kind,
                    offset: r.u64("offset")?,
                }
            }
            ty::REPLAY_END => Frame::ReplayEnd {
                offset: r.u64("offset")?,
            },
            ty::REPAINT => Frame::Repaint(r.rest()),
            ty::EXIT => {
                let kind = r.u8("kind")?;
                let value = r.u32("value")? as i32;
                match kind {
                    0 => Frame::Exit(ExitCode::Exited(value)),
                    1 => Frame::Exit(ExitCode::Signaled(value)),
                    k => return Err(r.bad("kind", u64::from(k))),
                }
            }
            ty::ERROR => Frame::Error {
                code: ErrorCode::from_u16(r.u16("code")?),
                message: r.rest_str("message")?,
            },
            ty::CLIENT_LIST => Frame::ClientList(r.rest_str("json")?),
            ty::TAKEOVER => Frame::Takeover { by: r.u32("by")? },
            ty::RESIZED => Frame::Resized {
                rows: r.u16("rows")?,
                cols: r.u16("cols")?,
            },
            ty::DETACHED => Frame::Detached,
            ty::SKIPPED => {
                let from = r.u64("from")?;
                let to = r.u64("to")?;
                if to < from {
                    return Err(r.bad("to", to));
                }
                Frame::Skipped { from, to }
            }
            ty::SCREENSHOT => {
                let last = match r.u8("last")? {
                    0 => false,
                    1 => true,
                    v => return Err(r.bad("last", u64::from(v))),
                };
                Frame::Screenshot {
                    last,
                    data: r.rest(),
                }
            }
            ty::EXEC_STARTED => Frame::ExecStarted {
                pid: r.u32("pid")?,
                session: r.rest_str("session")?,
            },
            _ => return Err(DecodeError::UnknownType(t)),
        };
        r.end()?;
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*), so the property tests need no crate and
    /// every failure is reproducible from the printed seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
        fn bytes(&mut self, max: usize) -> Vec<u8> {
            let n = self.below(max as u64 + 1) as usize;
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    fn samples() -> Vec<Frame<'static>> {
        vec![
            Frame::Hello(Hello::default()),
            Frame::Hello(Hello {
                role: Role::ReadOnly,
                ignore_size: true,
                force: true,
                no_follow: true,
                direct_output: true,
                direct_input: true,
                direct_keys: Some(KeyScan {
                    detach_keys: b"\x10\x11",
                    hold_ms: 1000,
                }),
                flow: Flow::CatchUp,
                queue_limit: 12345,
                size: Some((24, 80)),
                start: Start::Offset(1 << 40),
                target: Target::Exec("7"),
            }),
            Frame::Hello(Hello {
                direct_output: true,
                direct_keys: Some(KeyScan {
                    detach_keys: b"",
                    hold_ms: 0,
                }),
                ..Hello::default()
            }),
            Frame::Hello(Hello {
                start: Start::TailLines(10),
                target: Target::Tty(3),
                flow: Flow::Disconnect,
                ..Hello::default()
            }),
            Frame::Stdin(b"ls\r"),
            Frame::Stdin(b""),
            Frame::Resize {
                rows: 50,
                cols: 132,
            },
            Frame::Signal(15),
            Frame::StdinEof,
            Frame::Detach,
            Frame::ListRequest,
            Frame::ScreenshotRequest {
                target: Target::Console,
                formatted: true,
            },
            Frame::ExecRequest {
                rows: 10,
                cols: 20,
                options: vec!["--cwd", "/tmp", "-e", "A=b"],
                command: vec!["sh", "-c", "echo hi"],
            },
            Frame::Attached {
                client: 9,
                offset: 77,
                rows: 24,
                cols: 80,
                direct_output: false,
                direct_input: false,
                direct_keys: false,
                session: "console",
            },
            Frame::Attached {
                client: 10,
                offset: 0,
                rows: 1,
                cols: 1,
                direct_output: true,
                direct_input: true,
                direct_keys: true,
                session: "7",
            },
            Frame::Output {
                offset: u64::MAX - 3,
                data: b"\x1b[1mhello\r\n",
            },
            Frame::ReplayStart {
                kind: ReplayKind::Bytes,
                offset: 5,
            },
            Frame::ReplayEnd { offset: 99 },
            Frame::Repaint(b"\x1b[H\x1b[J"),
            Frame::Exit(ExitCode::Exited(3)),
            Frame::Exit(ExitCode::Signaled(9)),
            Frame::Error {
                code: ErrorCode::TooLarge,
                message: "too big",
            },
            Frame::Error {
                code: ErrorCode::Other(999),
                message: "",
            },
            Frame::ClientList("{\"sessions\":[]}"),
            Frame::Takeover { by: 4 },
            Frame::Resized { rows: 1, cols: 1 },
            Frame::Detached,
            Frame::Skipped { from: 10, to: 20 },
            Frame::Screenshot {
                last: true,
                data: "héllo".as_bytes(),
            },
            Frame::ExecStarted {
                pid: 4242,
                session: "1",
            },
        ]
    }

    #[test]
    fn direct_keys_need_direct_output_and_fit_their_length_field() {
        let h = Hello {
            direct_output: true,
            direct_keys: Some(KeyScan {
                detach_keys: b"\x01q",
                hold_ms: 7,
            }),
            ..Hello::default()
        };
        let mut bytes = Frame::Hello(h).to_vec().expect("encode");
        assert_eq!(bytes[3], FLAG_DIRECT_OUTPUT | FLAG_DIRECT_KEYS);
        // The keys sit between the start value and the target.
        assert_eq!(&bytes[22..29], &[2, 1, b'q', 0, 0, 0, 7]);
        bytes[3] = FLAG_DIRECT_KEYS;
        assert!(matches!(
            Frame::decode(&bytes),
            Err(DecodeError::BadValue { field: "flags", .. })
        ));
        let long = vec![b'x'; 256];
        let h = Hello {
            direct_output: true,
            direct_keys: Some(KeyScan {
                detach_keys: &long,
                hold_ms: 0,
            }),
            ..Hello::default()
        };
        let e = Frame::Hello(h).to_vec().expect_err("256 keys");
        assert_eq!(
            e.to_string(),
            "hello frame: field detach-keys is too long (256 > 255)"
        );
    }

    #[test]
    fn every_sample_round_trips() {
        for f in samples() {
            let bytes = f.to_vec().expect("encode");
            assert_eq!(Frame::decode(&bytes).expect("decode"), f, "{bytes:?}");
        }
    }

    #[test]
    fn decode_of_random_bytes_never_panics_and_valid_frames_round_trip() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for i in 0..200_000 {
            let mut buf = rng.bytes(64);
            // Bias towards known types so the field decoders get exercised.
            if i % 2 == 0 && !buf.is_empty() {
                let types = [
                    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x81, 0x82, 0x83, 0x84,
                    0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e,
                ];
                buf[0] = types[rng.below(types.len() as u64) as usize];
                if buf[0] == 0x01 && buf.len() > 1 {
                    buf[1] = VERSION;
                }
            }
            if let Ok(f) = Frame::decode(&buf) {
                accepted += 1;
                let again = f.to_vec().expect("a decoded frame encodes");
                assert_eq!(again, buf, "decode then encode must give the same bytes");
            }
        }
        assert!(accepted > 1000, "only {accepted} random packets decoded");
    }

    #[test]
    fn mutations_of_valid_frames_never_panic() {
        let mut rng = Rng(42);
        for f in samples() {
            let bytes = f.to_vec().expect("encode");
            for _ in 0..2000 {
                let mut b = bytes.clone();
                match rng.below(3) {
                    0 if !b.is_empty() => {
                        let i = rng.below(b.len() as u64) as usize;
                        b[i] = rng.next() as u8;
                    }
                    1 => b.truncate(rng.below(b.len() as u64 + 1) as usize),
                    _ => b.extend(rng.bytes(4)),
                }
                if let Ok(g) = Frame::decode(&b) {
                    assert_eq!(g.to_vec().expect("encode"), b);
                }
            }
        }
    }

    #[test]
    fn errors_name_the_frame_and_field() {
        assert_eq!(Frame::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(
            Frame::decode(&[0x42]).unwrap_err().to_string(),
            "unknown frame type 0x42"
        );
        assert_eq!(
            Frame::decode(&[0x03, 0, 24]).unwrap_err().to_string(),
            "resize frame: truncated in field cols"
        );
        assert_eq!(
            Frame::decode(&[0x06, 1]).unwrap_err().to_string(),
            "detach frame: 1 unexpected bytes after the last field"
        );
        let mut hello = Frame::Hello(Hello::default()).to_vec().unwrap();
        hello[1] = 7;
        assert_eq!(
            Frame::decode(&hello).unwrap_err().to_string(),
            "hello frame: protocol version 7 is not supported (this side speaks 1)"
        );
        hello[1] = VERSION;
        hello[2] = 5;
        assert_eq!(
            Frame::decode(&hello).unwrap_err().to_string(),
            "hello frame: field role has invalid value 5"
        );
        let big = vec![0x02; MAX_FRAME + 1];
        assert_eq!(
            Frame::decode(&big).unwrap_err().to_string(),
            "frame of 65537 bytes exceeds the maximum of 65536 bytes"
        );
        assert_eq!(
            Frame::decode(&[0x88, 0xff]).unwrap_err().to_string(),
            "client-list frame: field json is not valid UTF-8"
        );
    }

    #[test]
    fn encode_refuses_oversize_and_leaves_the_buffer_alone() {
        let data = vec![0u8; MAX_OUTPUT_DATA + 1];
        let mut out = vec![1, 2, 3];
        let e = Frame::Output {
            offset: 0,
            data: &data,
        }
        .encode(&mut out)
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "output frame: 65537 bytes exceeds the maximum of 65536 bytes"
        );
        assert_eq!(out, vec![1, 2, 3]);
        let ok = vec![0u8; MAX_OUTPUT_DATA];
        assert_eq!(
            Frame::Output {
                offset: 0,
                data: &ok
            }
            .to_vec()
            .unwrap()
            .len(),
            MAX_FRAME
        );
    }

    #[test]
    fn output_header_matches_the_encoder() {
        let f = Frame::Output {
            offset: 0x0102_0304_0506_0708,
            data: b"xy",
        };
        let v = f.to_vec().unwrap();
        assert_eq!(&v[..OUTPUT_HEADER], &output_header(0x0102_0304_0506_0708));
    }
}
