//! The console monitor's attach protocol: frames and their byte encoding ([`frame`]), and the
//! in-band detach-key scanner the clients run on the user's keystrokes ([`keys`]).
//!
//! Everything here is pure: no file descriptors, no clock, no allocation beyond the output
//! vectors the caller passes. Decoding never panics on any input (a property test feeds it random
//! bytes), and every rejection names the frame and field at fault.
//!
//! # Transport
//! An `AF_UNIX` `SOCK_SEQPACKET` socket (`attach.sock` in the monitor's 0700 directory). One
//! packet carries exactly one frame, so the kernel keeps frame boundaries: a client killed in the
//! middle of a `sendmsg` never leaves half a frame behind, and a frame larger than
//! [`frame::MAX_FRAME`] is detected with `MSG_TRUNC` and answered with an
//! [`frame::ErrorCode::TooLarge`] error frame.
//!
//! # Conversation
//! The client's first frame says what it wants: [`frame::Frame::Hello`] (attach to a terminal:
//! the console, an extra tty or an exec session), [`frame::Frame::ListRequest`],
//! [`frame::Frame::ScreenshotRequest`] or [`frame::Frame::ExecRequest`]. An attached client then
//! receives `Attached`, a replay (`ReplayStart`, `Repaint` or `Output` frames, `ReplayEnd`),
//! live `Output`, and finally `Exit`, `Detached`, `Takeover` or `Error`; it sends `Stdin`,
//! `Resize`, `Signal`, `StdinEof` and `Detach`.
//!
//! Every output byte of a terminal has a monotonic offset (0 = the first byte the container ever
//! wrote to it). `Output` frames carry the offset of their first byte; a client sees contiguous
//! offsets from `ReplayEnd` on, except after a `Skipped` frame (it fell behind and chose to be
//! skipped forward to a repaint).
//!
//! # Direct output and input
//! A client whose output is a terminal or a pipe may send that descriptor with its `Hello`
//! (`direct_output`, one `SCM_RIGHTS` fd). When the monitor takes it (`Attached` says so), it
//! writes the repaint, the replay and the live output to that descriptor itself, as tmux's
//! server writes to its clients' terminals: the client process leaves the output path (one
//! process and one socket hop fewer per byte and per keystroke echo). Control frames still come
//! on the socket, each after the output it follows was written; on the way out (`Exit`,
//! `Detached`, `Takeover`) the monitor writes [`terminal_reset`] to a terminal first. A
//! read-write client may also ask for the terminal's master (`direct_input`): it comes with
//! `Attached`, and the client writes its input there instead of sending `Stdin` frames (it
//! never reads it; the output stays the monitor's). Or, with `direct_keys`, it sends its input
//! descriptor too (after the output's) with its detach keys, and the monitor reads the keys
//! itself (as tmux's server reads its clients' terminals), scans them with the same
//! [`Scanner`], and writes the rest to the terminal: then neither direction of a keystroke's
//! round trip crosses the client, which only ends the session, forwards signals and sizes. A
//! client of another uid never gets this far (`SO_PEERCRED`), and any descriptor that comes with
//! another frame is closed.

pub mod frame;
pub mod keys;

pub use frame::{
    DecodeError, EncodeError, ErrorCode, ExitCode, Flow, Frame, Hello, KeyScan, MAX_FRAME,
    ReplayKind, Role, Start, Target,
};
pub use keys::{DetachKeys, KeysError, Scan, Scanner};

/// What a client's terminal gets when a session ends: the modes a full-screen program may have
/// left on (alternate screen, hidden cursor, bracketed paste, mouse reporting, application keys,
/// colours) switched off again, and, after a detach, a new line.
pub fn terminal_reset(alternate: bool, detached: bool) -> Vec<u8> {
    let mut reset = Vec::with_capacity(80);
    if alternate {
        reset.extend_from_slice(b"\x1b[?1049l");
    }
    reset.extend_from_slice(
        b"\x1b[0m\x1b[?25h\x1b[?2004l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1l\x1b>",
    );
    if detached {
        reset.extend_from_slice(b"\r\n");
    }
    reset
}
