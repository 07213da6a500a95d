//! `SOCK_SEQPACKET` plumbing for the attach socket: bind and connect through a directory fd
//! (`/proc/self/fd/N/NAME`, so `sun_path`'s 108 bytes never limit the directory's path), frame
//! receive with hostile-peer hygiene, gathered sends, and the peer's credentials.
//!
//! Receive ([`recv_frame`]): one `recvmsg` with `MSG_TRUNC` (the real length of an oversized
//! packet comes back, so it can be reported) and `MSG_CMSG_CLOEXEC`, into a buffer one byte
//! larger than [`berth_proto::MAX_FRAME`]. The first two file descriptors that came with the
//! packet are handed back with it (only a `Hello` asking for direct output may carry one, and
//! one asking for direct keys too a second; the monitor closes them otherwise), any others are
//! closed at once; `MSG_CTRUNC` means the kernel discarded more of them, which it closes
//! itself. Both are reported so the monitor can tell the client.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

use crate::error::MonitorError;

/// Receive buffer size: one byte more than the largest frame.
pub const RECV_BUF: usize = berth_proto::MAX_FRAME + 1;

/// `/proc/self/fd/<dir>/<name>`: a short path naming `name` in the directory open at `dir`.
pub fn path_in(dir: BorrowedFd<'_>, name: &str) -> String {
    format!("/proc/self/fd/{}/{name}", dir.as_raw_fd())
}

/// A non-blocking, close-on-exec `SOCK_SEQPACKET` socket listening at `name` in `dir`, mode
/// 0600 from the start (set on the socket before `bind`).
pub fn listen_seqpacket(dir: BorrowedFd<'_>, name: &str) -> Result<OwnedFd, MonitorError> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| MonitorError::sys("socket", "AF_UNIX SOCK_SEQPACKET", e))?;
    rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(0o600))
        .map_err(|e| MonitorError::sys("fchmod", name, e))?;
    let path = path_in(dir, name);
    let addr =
        SocketAddrUnix::new(path.as_str()).map_err(|e| MonitorError::sys("bind", name, e))?;
    rustix::net::bind(&fd, &addr).map_err(|e| MonitorError::sys("bind", name, e))?;
    rustix::net::listen(&fd, 128).map_err(|e| MonitorError::sys("listen", name, e))?;
    Ok(fd)
}

/// Connects a blocking, close-on-exec `SOCK_SEQPACKET` socket to `name` in `dir`.
pub fn connect_seqpacket(dir: BorrowedFd<'_>, name: &str) -> Result<OwnedFd, Errno> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let path = path_in(dir, name);
    let addr = SocketAddrUnix::new(path.as_str())?;
    loop {
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => return Ok(fd),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Accepts one connection, non-blocking and close-on-exec; `Ok(None)` when none is pending.
pub fn accept(listener: BorrowedFd<'_>) -> Result<Option<OwnedFd>, Errno> {
    loop {
        match rustix::net::accept_with(listener, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
            Ok(fd) => return Ok(Some(fd)),
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return Ok(None),
            // The connection went away before we took it: try the next one.
            Err(Errno::CONNABORTED) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The peer's `(pid, uid)` from `SO_PEERCRED`.
pub fn peer_cred(fd: BorrowedFd<'_>) -> Result<(i32, u32), Errno> {
    let c = rustix::net::sockopt::socket_peercred(fd)?;
    Ok((c.pid.as_raw_nonzero().get(), c.uid.as_raw()))
}

/// What one receive produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recv {
    /// A packet of this many bytes is in the buffer.
    Packet(usize),
    /// A packet larger than the buffer arrived; this is its real length. Its bytes are gone.
    TooLarge(usize),
    /// Nothing pending.
    WouldBlock,
    /// The peer closed (or reset) the connection.
    Closed,
}

/// The most descriptors [`recv_frame`] keeps from one packet (a client's output and input).
pub const FDS_KEPT: usize = 2;

/// The result of [`recv_frame`]: what arrived, and how many unwanted fds came with it.
#[derive(Debug)]
pub struct Received {
    /// The packet.
    pub recv: Recv,
    /// The first [`FDS_KEPT`] file descriptors that came with it, in order.
    pub fds: Vec<OwnedFd>,
    /// File descriptors that came with it after those, all closed already.
    pub fds_closed: usize,
    /// The kernel discarded further descriptors (`MSG_CTRUNC`).
    pub fds_truncated: bool,
}

/// Receives one packet into `buf` (which should be [`RECV_BUF`] bytes). See the module docs.
pub fn recv_frame(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Received, Errno> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(8))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        let mut iov = [IoSliceMut::new(buf)];
        match rustix::net::recvmsg(
            fd,
            &mut iov,
            &mut control,
            RecvFlags::CMSG_CLOEXEC | RecvFlags::TRUNC | RecvFlags::DONTWAIT,
        ) {
            Ok(m) => break m,
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => {
                return Ok(Received {
                    recv: Recv::WouldBlock,
                    fds: Vec::new(),
                    fds_closed: 0,
                    fds_truncated: false,
                });
            }
            Err(Errno::CONNRESET) => {
                return Ok(Received {
                    recv: Recv::Closed,
                    fds: Vec::new(),
                    fds_closed: 0,
                    fds_truncated: false,
                });
            }
            Err(e) => return Err(e),
        }
    };
    let mut fds_closed = 0;
    let mut kept = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            for fd in fds {
                if kept.len() < FDS_KEPT {
                    kept.push(fd);
                    continue;
                }
                drop(fd);
                fds_closed += 1;
            }
        }
    }
    let fds_truncated = msg.flags.contains(ReturnFlags::CTRUNC);
    let recv = if msg.bytes == 0 && !msg.flags.contains(ReturnFlags::TRUNC) {
        // Zero bytes: end of stream, or a zero-length packet from a live peer. Only the first
        // leaves the socket hung up.
        if fds_closed == 0 && kept.is_empty() && hung_up(fd) {
            Recv::Closed
        } else {
            Recv::Packet(0)
        }
    } else if msg.bytes > buf.len() || msg.flags.contains(ReturnFlags::TRUNC) {
        Recv::TooLarge(msg.bytes)
    } else {
        Recv::Packet(msg.bytes)
    };
    Ok(Received {
        recv,
        fds: kept,
        fds_closed,
        fds_truncated,
    })
}

/// Whether the peer has closed its end (`POLLHUP`/`POLLRDHUP`), without waiting.
fn hung_up(fd: BorrowedFd<'_>) -> bool {
    use rustix::event::{PollFd, PollFlags};
    let mut pfd = [PollFd::new(&fd, PollFlags::RDHUP)];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut pfd, Some(&zero)) {
        Ok(_) => pfd[0]
            .revents()
            .intersects(PollFlags::HUP | PollFlags::RDHUP | PollFlags::ERR),
        Err(_) => true,
    }
}

/// Reads and discards what the peer sent and we did not read, so that closing the socket does
/// not reset the connection: a reset would make the peer lose the frames we sent last (an
/// error frame explaining why we close).
pub fn discard_input(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 512];
    for _ in 0..1024 {
        match rustix::net::recv(fd, &mut buf, RecvFlags::DONTWAIT | RecvFlags::TRUNC) {
            Ok((_, 0)) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Sends one packet gathered from `parts`; `Ok(false)` if the socket is full (nothing sent).
pub fn send_parts(fd: BorrowedFd<'_>, parts: &[&[u8]]) -> Result<bool, Errno> {
    let iov: Vec<IoSlice<'_>> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| IoSlice::new(p))
        .collect();
    let mut control = SendAncillaryBuffer::new(&mut []);
    sendmsg_nonblocking(fd, &iov, &mut control)
}

/// One non-blocking `sendmsg`, retried on `EINTR`; `Ok(false)` if the socket is full.
fn sendmsg_nonblocking(
    fd: BorrowedFd<'_>,
    iov: &[IoSlice<'_>],
    control: &mut SendAncillaryBuffer<'_, '_, '_>,
) -> Result<bool, Errno> {
    loop {
        match rustix::net::sendmsg(fd, iov, control, SendFlags::NOSIGNAL | SendFlags::DONTWAIT) {
            Ok(_) => return Ok(true),
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// Sends one packet with `fd` attached (`SCM_RIGHTS`); `Ok(false)` if the socket is full.
pub fn send_with_fd(
    fd: BorrowedFd<'_>,
    packet: &[u8],
    pass: BorrowedFd<'_>,
) -> Result<bool, Errno> {
    let fds = [pass];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds)) {
        return Err(Errno::NOBUFS);
    }
    let iov = [IoSlice::new(packet)];
    sendmsg_nonblocking(fd, &iov, &mut control)
}

/// Sends one packet; blocking sockets wait, non-blocking ones may return `Ok(false)`.
pub fn send(fd: BorrowedFd<'_>, packet: &[u8]) -> Result<bool, Errno> {
    send_parts(fd, &[packet])
}

/// Receives one packet on a blocking socket (for clients): `Ok(None)` at end of stream;
/// an oversized packet is an `EMSGSIZE` error.
pub fn recv_blocking(fd: impl AsFd, buf: &mut [u8]) -> Result<Option<usize>, Errno> {
    loop {
        match rustix::net::recv(&fd, &mut *buf, RecvFlags::TRUNC) {
            Ok((_, 0)) => return Ok(None),
            Ok((_, n)) if n > buf.len() => return Err(Errno::MSGSIZE),
            Ok((_, n)) => return Ok(Some(n)),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}
