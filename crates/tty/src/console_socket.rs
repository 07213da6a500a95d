//! runc's `--console-socket` protocol, byte-compatible with runc's sender and with the go-runc,
//! conmon and runc `recvtty` receivers.
//!
//! Wire format: an `AF_UNIX` `SOCK_STREAM` connection; the runtime sends **one** `sendmsg` whose
//! data is a name string (berth sends [`MASTER_NAME`], `/dev/pts/ptmx`, as current runc) and whose
//! control data is exactly one `SOL_SOCKET`/`SCM_RIGHTS` message carrying exactly one fd
//! (`cmsg_len == CMSG_LEN(sizeof(int))`, which conmon checks). Receivers read the name into a
//! 4096-byte buffer, so names must be shorter than that.
//!
//! [`ConsoleSocket::connect`] stats the path first so each way of getting it wrong has its own
//! message naming the path; relative paths are resolved against the current directory, as runc
//! does. A path starting with `@` is an abstract socket name (Go's `net` package, hence runc,
//! does the same). All sockets and received fds are close-on-exec.
//!
//! [`MASTER_NAME`]: crate::pty::MASTER_NAME

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, stat};
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

use crate::error::{TtyError, file_kind};

/// Usable bytes of `sockaddr_un.sun_path` (108 minus the terminating NUL).
pub const SUN_PATH_MAX: usize = 107;
/// Receivers' buffer for the name; the name must be shorter.
pub const NAME_MAX: usize = 4096;
/// Fds a receive has room for; more than one is a protocol error, and extra ones are closed.
const RECV_FD_ROOM: usize = 16;

/// The sending side: a connection to a console socket (or one end of a [`ConsoleSocket::socketpair`]).
#[derive(Debug)]
pub struct ConsoleSocket {
    fd: OwnedFd,
}

/// A leading `@` names an abstract socket, as in Go's `net` package (so as in runc).
fn is_abstract(path: &Path) -> bool {
    path.as_os_str().as_bytes().first() == Some(&b'@')
}

fn check_path(path: &Path) -> Result<SocketAddrUnix, TtyError> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() || bytes.contains(&0) {
        return Err(TtyError::SocketPathInvalid { path: path.into() });
    }
    if bytes.len() > SUN_PATH_MAX {
        return Err(TtyError::SocketPathTooLong {
            path: path.into(),
            len: bytes.len(),
        });
    }
    let addr = if is_abstract(path) {
        SocketAddrUnix::new_abstract_name(&bytes[1..])
    } else {
        SocketAddrUnix::new(path)
    };
    addr.map_err(|e| TtyError::os("socket address", path.display().to_string(), e))
}

fn stream_socket() -> Result<OwnedFd, TtyError> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| TtyError::os("socket", "AF_UNIX SOCK_STREAM", e))
}

impl ConsoleSocket {
    /// Connects to the console socket at `path` (relative to the current directory if relative).
    pub fn connect(path: &Path) -> Result<ConsoleSocket, TtyError> {
        let addr = check_path(path)?;
        let owned = || PathBuf::from(path);
        let st = if is_abstract(path) {
            Ok(None)
        } else {
            stat(path).map(Some)
        };
        match st {
            Ok(None) => {}
            Ok(Some(st)) if st.st_mode & libc::S_IFMT == libc::S_IFSOCK => {}
            Ok(Some(st)) => {
                return Err(TtyError::NotASocket {
                    path: owned(),
                    kind: file_kind(st.st_mode),
                });
            }
            Err(Errno::NOENT) => return Err(TtyError::SocketMissing { path: owned() }),
            Err(e) => return Err(TtyError::os("stat", path.display().to_string(), e)),
        }
        let fd = stream_socket()?;
        loop {
            match rustix::net::connect(&fd, &addr) {
                Ok(()) => return Ok(ConsoleSocket { fd }),
                Err(Errno::INTR) => continue,
                Err(Errno::CONNREFUSED) => return Err(TtyError::SocketRefused { path: owned() }),
                Err(Errno::PROTOTYPE) => return Err(TtyError::NotStreamSocket { path: owned() }),
                Err(Errno::NOENT) => return Err(TtyError::SocketMissing { path: owned() }),
                Err(e) => return Err(TtyError::os("connect", path.display().to_string(), e)),
            }
        }
    }

    /// Wraps an already connected stream socket.
    pub fn from_fd(fd: OwnedFd) -> ConsoleSocket {
        ConsoleSocket { fd }
    }

    /// A connected `AF_UNIX` stream pair for in-process use: the sending side and the receiving
    /// fd (pass it to [`recv_master`]). Both are close-on-exec.
    pub fn socketpair() -> Result<(ConsoleSocket, OwnedFd), TtyError> {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| TtyError::os("socketpair", "AF_UNIX SOCK_STREAM", e))?;
        Ok((ConsoleSocket { fd: a }, b))
    }

    /// Sends `master` with `name` in one `sendmsg` (see the module docs for the format).
    pub fn send_master(&self, name: &str, master: BorrowedFd<'_>) -> Result<(), TtyError> {
        send_fd(self.fd.as_fd(), name.as_bytes(), master)
    }
}

impl AsFd for ConsoleSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<ConsoleSocket> for OwnedFd {
    fn from(s: ConsoleSocket) -> OwnedFd {
        s.fd
    }
}

/// Sends `data` and exactly one fd in one `sendmsg` on `sock`.
pub fn send_fd(sock: BorrowedFd<'_>, data: &[u8], fd: BorrowedFd<'_>) -> Result<(), TtyError> {
    if data.is_empty() {
        return Err(TtyError::EmptyName);
    }
    if data.len() >= NAME_MAX {
        return Err(TtyError::NameTooLong { len: data.len() });
    }
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        // Cannot happen: the buffer is sized for exactly this message.
        return Err(TtyError::os("sendmsg", "console socket", Errno::NOBUFS));
    }
    let iov = [IoSlice::new(data)];
    let sent = loop {
        match rustix::net::sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL) {
            Ok(n) => break n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(TtyError::os("sendmsg", "console socket", e)),
        }
    };
    if sent != data.len() {
        return Err(TtyError::ShortSend {
            sent,
            len: data.len(),
        });
    }
    Ok(())
}

/// Receives a name and a pty master from a connected console socket (blocking until the sender
/// sends or closes). Requires exactly one `SCM_RIGHTS` message with exactly one fd; every fd
/// received in a message that breaks the rules is closed. Uses `MSG_CMSG_CLOEXEC`.
pub fn recv_master(sock: BorrowedFd<'_>) -> Result<(String, OwnedFd), TtyError> {
    let mut name = [0u8; NAME_MAX];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(RECV_FD_ROOM))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        let mut iov = [IoSliceMut::new(&mut name)];
        match rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Ok(m) => break m,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(TtyError::os("recvmsg", "console socket", e)),
        }
    };
    let mut messages = 0;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            messages += 1;
            fds.extend(received);
        }
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) {
        return Err(TtyError::ControlTruncated);
    }
    if msg.bytes == 0 && fds.is_empty() {
        return Err(TtyError::SocketClosed);
    }
    if messages != 1 || fds.len() != 1 {
        return Err(TtyError::BadFdCount {
            messages,
            fds: fds.len(),
        });
    }
    if msg.bytes >= NAME_MAX {
        return Err(TtyError::NameTooLong { len: msg.bytes });
    }
    let name = std::str::from_utf8(&name[..msg.bytes]).map_err(|_| TtyError::NameNotUtf8)?;
    let fd = fds.pop().ok_or(TtyError::BadFdCount { messages, fds: 0 })?;
    Ok((name.to_owned(), fd))
}

/// The receiving side: a listening console socket.
#[derive(Debug)]
pub struct ConsoleListener {
    fd: OwnedFd,
    path: PathBuf,
}

impl ConsoleListener {
    /// Creates a listening socket at `path`, mode 0600 (set on the socket before `bind`, so the
    /// file never exists with wider permissions). Put it in a 0700 directory you own.
    /// The socket file is not removed on drop: see [`ConsoleListener::remove`].
    pub fn bind(path: &Path) -> Result<ConsoleListener, TtyError> {
        let addr = check_path(path)?;
        let fd = stream_socket()?;
        // The socket file's mode is the socket inode's mode masked by the umask at bind time.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o600))
            .map_err(|e| TtyError::os("fchmod", "console socket", e))?;
        rustix::net::bind(&fd, &addr)
            .map_err(|e| TtyError::os("bind", path.display().to_string(), e))?;
        rustix::net::listen(&fd, 16)
            .map_err(|e| TtyError::os("listen", path.display().to_string(), e))?;
        Ok(ConsoleListener {
            fd,
            path: path.into(),
        })
    }

    /// Accepts one connection (blocking); the connection is close-on-exec.
    pub fn accept(&self) -> Result<OwnedFd, TtyError> {
        loop {
            match rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC) {
                Ok(fd) => return Ok(fd),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(TtyError::os("accept", self.path.display().to_string(), e)),
            }
        }
    }

    /// Accepts one connection and receives the master from it.
    pub fn accept_master(&self) -> Result<(String, OwnedFd), TtyError> {
        let conn = self.accept()?;
        recv_master(conn.as_fd())
    }

    /// The path the socket is bound to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the socket and removes its file (nothing to remove for an abstract name).
    pub fn remove(self) -> Result<(), TtyError> {
        if is_abstract(&self.path) {
            return Ok(());
        }
        std::fs::remove_file(&self.path)
            .map_err(|e| TtyError::os("unlink", self.path.display().to_string(), e))
    }
}

impl AsFd for ConsoleListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
