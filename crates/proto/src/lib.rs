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

pub mod frame;
pub mod keys;

pub use frame::{
    DecodeError, EncodeError, ErrorCode, ExitCode, Flow, Frame, Hello, MAX_FRAME, ReplayKind, Role,
    Start, Target,
};
pub use keys::{DetachKeys, KeysError, Scan, Scanner};
