//! The typed channel between berth and the process it cloned: a `SOCK_SEQPACKET` socketpair
//! carrying one JSON message per packet.
//!
//! Both ends are `CLOEXEC`: when the child execs the user's program its end closes, so the
//! parent reads end-of-file exactly when the exec succeeded (or the child died). Each side closes
//! its copy of the other end right after the clone, or that end-of-file would never come
//! (runc#5087).

use std::cell::RefCell;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};

use berth_sys::mem::ZeroedPages;

use crate::error::{Error, Result};

/// What the child tells berth.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum ToParent {
    /// The child made a user namespace with `unshare` and waits for its id mappings.
    NeedIdMap {
        /// The pid (in berth's namespace) whose maps to write.
        pid: i32,
    },
    /// An intermediate child forked the process that will run the program.
    Pid {
        /// Its pid in berth's namespace.
        pid: i32,
    },
    /// Namespaces are set up, pivot_root not yet done: run `prestart` and `createRuntime` hooks.
    CreateRuntimeHooks,
    /// Set up and waiting for the start signal.
    Ready,
    /// Setup failed; the child exits after sending this.
    Error {
        /// One line naming what failed.
        message: String,
    },
}

/// What berth tells the child.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum ToChild {
    /// Id mappings written.
    IdMapDone,
    /// Id mappings written: go on with the setup.
    Continue,
    /// berth has made the child's cgroup directories (on v1 hosts it does that after the
    /// clone). It comes after `Continue` and before `CgroupJoined`; the child waits for it
    /// before it binds those directories into a `cgroup` mount.
    CgroupMade,
    /// berth has put the child into its cgroups. It comes after `CgroupMade` (berth moves the
    /// child while it sets up), and the child waits for it before anything that depends on its
    /// cgroup: a cgroup namespace, the hooks, and running the user's program.
    CgroupJoined,
    /// `createRuntime` hooks ran.
    HooksDone,
    /// The sources of these `mounts[]` entries (bind mounts), opened by berth inside the
    /// container's mount namespace but with berth's credentials, ride on this message as
    /// `SCM_RIGHTS`, in order: a user namespace's root may not be able to open them itself.
    BindSources {
        /// Indices into `mounts`.
        mounts: Vec<usize>,
    },
    /// Exec the program now (`run`; `create` uses the start socket instead).
    Start,
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
    /// Descriptors that came with received messages, oldest first, until taken.
    received_fds: RefCell<Vec<OwnedFd>>,
    /// The receive buffer, made at the first receive ([`Channel::buffer`]).
    recv_buf: RefCell<Option<ZeroedPages>>,
}

const MAX_MESSAGE: usize = 64 * 1024;
/// The most descriptors one message carries (the kernel's limit is 253).
pub const MAX_FDS: usize = 64;

impl Channel {
    /// The receive buffer: room for the largest message, of which only the pages messages
    /// actually fill are ever faulted in (messages are a few hundred bytes; a zeroed 64 KiB
    /// heap buffer per receive cost 16 page faults in each process).
    fn buffer(&self) -> Result<std::cell::RefMut<'_, ZeroedPages>> {
        let mut slot = self.recv_buf.borrow_mut();
        if slot.is_none() {
            *slot = Some(
                ZeroedPages::new(MAX_MESSAGE)
                    .map_err(|e| Error::sys("map the init channel's receive buffer", e))?,
            );
        }
        Ok(std::cell::RefMut::map(slot, |b| {
            b.as_mut().expect("just made")
        }))
    }

    /// A connected pair: `(parent end, child end)`.
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Error::sys("socketpair for the init channel", e))?;
        Ok((Channel::from_fd(a), Channel::from_fd(b)))
    }

    /// Wraps an already connected `SOCK_SEQPACKET` or `SOCK_STREAM` socket.
    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel {
            fd,
            received_fds: RefCell::new(Vec::new()),
            recv_buf: RefCell::new(None),
        }
    }

    /// Takes the descriptors received so far (see [`Channel::send_with_fds`]).
    pub fn take_fds(&self) -> Vec<OwnedFd> {
        std::mem::take(&mut *self.received_fds.borrow_mut())
    }

    /// Sends one message with up to [`MAX_FDS`] descriptors (`SCM_RIGHTS`); the receiver
    /// finds them with [`Channel::take_fds`] after its `recv`.
    pub fn send_with_fds<T: Serialize>(&self, msg: &T, fds: &[BorrowedFd<'_>]) -> Result<()> {
        if fds.len() > MAX_FDS {
            return Err(Error::sys(
                "send on the init channel",
                std::io::Error::from_raw_os_error(libc::EINVAL),
            ));
        }
        let bytes = serde_json::to_vec(msg)
            .map_err(|e| Error::sys("encode init message", std::io::Error::other(e)))?;
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(Error::sys(
                "send on the init channel",
                std::io::Error::from_raw_os_error(libc::ENOBUFS),
            ));
        }
        let iov = [IoSlice::new(&bytes)];
        loop {
            match rustix::net::sendmsg(&self.fd, &iov, &mut control, SendFlags::NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::sys("send on the init channel", e)),
            }
        }
    }

    /// The socket.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Sends one message.
    pub fn send<T: Serialize>(&self, msg: &T) -> Result<()> {
        self.send_with_fds(msg, &[])
    }

    /// A setup error the child already sent, if any, without waiting: when berth's own step
    /// fails because the child died, the child's reason is the better message.
    pub fn pending_error(&self) -> Option<String> {
        let mut buf = self.buffer().ok()?;
        loop {
            match rustix::net::recv(&self.fd, &mut buf[..], RecvFlags::DONTWAIT) {
                Ok((n, _)) if n > 0 => match serde_json::from_slice::<ToParent>(&buf[..n]) {
                    Ok(ToParent::Error { message }) => return Some(message),
                    Ok(_) => continue,
                    Err(_) => return None,
                },
                Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNRESET) => continue,
                _ => return None,
            }
        }
    }

    /// Receives one message; `Ok(None)` at end of file (the peer closed or exec'd).
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>> {
        let mut buf = self.buffer()?;
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let n = loop {
            let mut iov = [IoSliceMut::new(&mut buf[..])];
            match rustix::net::recvmsg(&self.fd, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
                Ok(msg) => break msg.bytes,
                // The peer closed with a message of ours unread: the kernel reports that once
                // (ECONNRESET) *before* the messages still queued for us, such as the child's
                // error report. Read on: the queue, then end of file.
                Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNRESET) => continue,
                Err(e) => return Err(Error::sys("receive on the init channel", e)),
            }
        };
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                self.received_fds.borrow_mut().extend(fds);
            }
        }
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| Error::sys("decode init message", std::io::Error::other(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The child reports an error and exits while a message from berth is still unread on its
    /// side: the kernel then reports ECONNRESET to berth before the queued report, which must
    /// still be read (a rare race in `create` that lost the init's error message).
    #[test]
    fn a_report_survives_the_peer_closing_with_unread_data() {
        let (parent, child) = Channel::pair().unwrap();
        child
            .send(&ToParent::Error {
                message: "boom".into(),
            })
            .unwrap();
        parent.send(&ToChild::CgroupJoined).unwrap();
        drop(child);
        match parent.recv::<ToParent>().unwrap() {
            Some(ToParent::Error { message }) => assert_eq!(message, "boom"),
            other => panic!("lost the report: {other:?}"),
        }
        assert_eq!(parent.recv::<ToParent>().unwrap(), None);

        let (parent, child) = Channel::pair().unwrap();
        child
            .send(&ToParent::Error {
                message: "early".into(),
            })
            .unwrap();
        parent.send(&ToChild::Continue).unwrap();
        drop(child);
        assert_eq!(parent.pending_error().as_deref(), Some("early"));
    }
}
