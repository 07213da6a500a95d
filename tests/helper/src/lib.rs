//! Shared pieces of the test helpers: the deterministic output pattern of `berth-probe write`,
//! errno names, and the receiving side of the console-socket protocol (used by `recvtty` and by
//! the integration harness).
//!
//! The console-socket protocol (runc's wire format): the runtime connects to a `SOCK_STREAM`
//! unix socket and sends **one** message whose payload is the pty master's name (for example
//! `/dev/pts/ptmx`, under 4096 bytes) carrying exactly one `SCM_RIGHTS` control message with
//! exactly one fd: the pty master. Nothing is sent back. [`recv_console`] receives that message
//! with `MSG_CMSG_CLOEXEC` and checks every one of those properties, then [`check_pty_master`]
//! proves the fd is a devpts master (`fstatfs` magic `0x1cd1`, rdev 5:2, `TIOCGPTN` works).

use std::fmt;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};

/// Filesystem magic of devpts (`DEVPTS_SUPER_MAGIC`).
pub const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;

/// Largest name payload accepted in a console-socket message (runc uses a 4096-byte buffer).
pub const MAX_NAME: usize = 4096;

/// The byte at offset `i` of the output of `berth-probe write N`.
///
/// The pattern is printable ASCII with a `\n` every 64 bytes so that it survives a terminal
/// line discipline (after mapping `\r\n` back to `\n` when ONLCR is on). A shifted alphabet per
/// line makes a dropped or duplicated line detectable.
pub fn pattern_byte(i: usize) -> u8 {
    if i % 64 == 63 {
        b'\n'
    } else {
        b'a' + ((i % 64 + i / 64) % 26) as u8
    }
}

/// The first `n` bytes of the `berth-probe write` pattern (see [`pattern_byte`]).
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(pattern_byte).collect()
}

/// The symbolic name of an errno value (`"EPERM"`), or `"E<number>"` when unknown.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EPIPE => "EPIPE",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EPROTOTYPE => "EPROTOTYPE",
        _ => return format!("E{errno}"),
    };
    name.to_string()
}

/// Why a console-socket message was rejected.
#[derive(Debug)]
pub enum ConsoleError {
    /// `recvmsg` itself failed.
    Recv(rustix::io::Errno),
    /// The peer closed the connection without sending anything.
    Eof,
    /// The name payload did not fit in [`MAX_NAME`] bytes (`MSG_TRUNC`).
    NameTooLong,
    /// The control data was truncated (`MSG_CTRUNC`): more fds than expected were sent.
    ControlTruncated,
    /// The message carried this many fds instead of exactly one.
    FdCount(usize),
    /// The message carried this many `SCM_RIGHTS` control messages instead of exactly one.
    CmsgCount(usize),
    /// The received fd is not a devpts pty master.
    NotMaster(String),
}

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Recv(e) => write!(f, "recvmsg on console socket: {e}"),
            Self::Eof => write!(f, "console socket closed before a message arrived"),
            Self::NameTooLong => write!(f, "console name longer than {MAX_NAME} bytes"),
            Self::ControlTruncated => write!(f, "control data truncated (MSG_CTRUNC)"),
            Self::FdCount(n) => write!(f, "expected exactly one fd, got {n}"),
            Self::CmsgCount(n) => write!(f, "expected exactly one SCM_RIGHTS message, got {n}"),
            Self::NotMaster(why) => write!(f, "received fd is not a pty master: {why}"),
        }
    }
}

impl std::error::Error for ConsoleError {}

/// A pty master received over a console socket.
#[derive(Debug)]
pub struct ReceivedConsole {
    /// The master fd (close-on-exec).
    pub master: OwnedFd,
    /// The payload bytes sent with it (the master's name, e.g. `/dev/pts/ptmx`).
    pub name: Vec<u8>,
    /// The pty number (`TIOCGPTN`) of the master.
    pub ptn: u32,
}

/// Receives one console-socket message from the accepted connection `conn` and validates it.
///
/// Exactly one `SCM_RIGHTS` control message holding exactly one fd is required; extra fds are
/// closed before returning the error. The fd is checked with [`check_pty_master`].
pub fn recv_console(conn: impl AsFd) -> Result<ReceivedConsole, ConsoleError> {
    let mut name = vec![0u8; MAX_NAME];
    // Room for more fds than allowed, so that "too many" is reported as a count when possible.
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(16))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        match rustix::net::recvmsg(
            conn.as_fd(),
            &mut [IoSliceMut::new(&mut name)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(m) => break m,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(ConsoleError::Recv(e)),
        }
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut rights_msgs = 0;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(iter) = m {
            rights_msgs += 1;
            fds.extend(iter);
        }
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) {
        return Err(ConsoleError::ControlTruncated);
    }
    if msg.flags.contains(ReturnFlags::TRUNC) {
        return Err(ConsoleError::NameTooLong);
    }
    if msg.bytes == 0 && fds.is_empty() {
        return Err(ConsoleError::Eof);
    }
    if rights_msgs != 1 {
        return Err(ConsoleError::CmsgCount(rights_msgs));
    }
    if fds.len() != 1 {
        return Err(ConsoleError::FdCount(fds.len()));
    }
    name.truncate(msg.bytes);
    let master = fds.pop().expect("one fd");
    let ptn = check_pty_master(&master).map_err(ConsoleError::NotMaster)?;
    Ok(ReceivedConsole { master, name, ptn })
}

/// Checks that `fd` is a pty master of some devpts instance and returns its pty number.
///
/// The fd must live on devpts (`fstatfs` magic `0x1cd1`), be the character device 5:2 (ptmx),
/// and answer `TIOCGPTN`.
pub fn check_pty_master(fd: impl AsFd) -> Result<u32, String> {
    let fs = rustix::fs::fstatfs(fd.as_fd()).map_err(|e| format!("fstatfs: {e}"))?;
    if fs.f_type as i64 != DEVPTS_SUPER_MAGIC {
        return Err(format!(
            "filesystem magic {:#x}, not devpts {DEVPTS_SUPER_MAGIC:#x}",
            fs.f_type
        ));
    }
    let st = rustix::fs::fstat(fd.as_fd()).map_err(|e| format!("fstat: {e}"))?;
    let (maj, min) = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || (maj, min) != (5, 2) {
        return Err(format!(
            "mode {:o} rdev {maj}:{min}, not the char device 5:2",
            st.st_mode
        ));
    }
    // rustix's ptsname is TIOCGPTN on Linux.
    let name =
        rustix::pty::ptsname(fd.as_fd(), Vec::new()).map_err(|e| format!("TIOCGPTN: {e}"))?;
    let name = name.to_string_lossy();
    name.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("unexpected pty name {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_printable_with_newlines() {
        let p = pattern(200);
        assert_eq!(p[63], b'\n');
        assert_eq!(p[127], b'\n');
        assert!(p.iter().all(|&b| b == b'\n' || b.is_ascii_lowercase()));
        assert_ne!(&p[0..63], &p[64..127]);
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(libc::EPERM), "EPERM");
        assert_eq!(errno_name(9999), "E9999");
    }

    #[test]
    fn devpts_ptmx_is_a_master_and_devnull_is_not() {
        let f = std::fs::File::open("/dev/null").expect("open");
        assert!(check_pty_master(&f).is_err());
        // /dev/ptmx itself lives on devtmpfs; only the devpts instance's own ptmx node passes.
        // Its mode may be 000 on the host (ptmxmode=000), which only root can open.
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/pts/ptmx")
        {
            Ok(m) => {
                check_pty_master(&m).expect("devpts master");
            }
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}"),
        }
    }
}
