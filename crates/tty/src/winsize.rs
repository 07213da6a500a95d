//! Terminal window sizes (`TIOCGWINSZ`/`TIOCSWINSZ`) and the OCI `consoleSize` conversion.
//!
//! `consoleSize` values above 65535 are an error naming the value, never truncated (runc wraps
//! them silently; conmon rejects them). A size of 0 is allowed and means "unset".

use std::os::fd::BorrowedFd;

use crate::error::TtyError;

/// A terminal size in character cells. Pixel sizes are always written as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Winsize {
    /// Rows (`ws_row`, the OCI `height`).
    pub rows: u16,
    /// Columns (`ws_col`, the OCI `width`).
    pub cols: u16,
}

impl Winsize {
    /// The conventional fallback when nothing gives a size: 24 rows, 80 columns.
    pub const DEFAULT: Winsize = Winsize { rows: 24, cols: 80 };

    /// A size of `rows` × `cols`.
    pub const fn new(rows: u16, cols: u16) -> Winsize {
        Winsize { rows, cols }
    }

    /// Converts an OCI `consoleSize` (`height`, `width`); errors above 65535, naming the value.
    pub fn from_console_size(height: u64, width: u64) -> Result<Winsize, TtyError> {
        let conv = |dimension: &'static str, value: u64| {
            u16::try_from(value).map_err(|_| TtyError::SizeTooLarge { dimension, value })
        };
        Ok(Winsize {
            rows: conv("height", height)?,
            cols: conv("width", width)?,
        })
    }

    /// Whether both dimensions are 0 (no size was ever set).
    pub fn is_zero(&self) -> bool {
        self.rows == 0 && self.cols == 0
    }

    /// Reads the size of the terminal `fd` (either side of a pty).
    pub fn get(fd: BorrowedFd<'_>) -> Result<Winsize, TtyError> {
        let ws = rustix::termios::tcgetwinsize(fd)
            .map_err(|e| TtyError::os("ioctl(TIOCGWINSZ)", fd_name(fd), e))?;
        Ok(Winsize {
            rows: ws.ws_row,
            cols: ws.ws_col,
        })
    }

    /// Sets the size of the terminal `fd`; the kernel sends `SIGWINCH` to the terminal's
    /// foreground process group when it changes.
    pub fn set(&self, fd: BorrowedFd<'_>) -> Result<(), TtyError> {
        let ws = rustix::termios::Winsize {
            ws_row: self.rows,
            ws_col: self.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(fd, ws)
            .map_err(|e| TtyError::os("ioctl(TIOCSWINSZ)", fd_name(fd), e))
    }
}

impl std::fmt::Display for Winsize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.rows, self.cols)
    }
}

pub(crate) fn fd_name(fd: BorrowedFd<'_>) -> String {
    use std::os::fd::AsRawFd;
    format!("fd {}", fd.as_raw_fd())
}
