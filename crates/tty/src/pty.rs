//! Pty allocation inside a given devpts instance, with runc's identity checks (CVE-2025-52565).
//!
//! Order of operations in [`PtyPair::open_in`]:
//! 1. `openat(devpts, "ptmx", O_PATH|O_NOFOLLOW|O_CLOEXEC)` — never follows a symlink, never
//!    blocks (a FIFO named `ptmx` is not opened for I/O) and triggers no device open;
//! 2. verify the handle: `fstatfs` magic `DEVPTS_SUPER_MAGIC` (0x1cd1), inode 2, char device 5:2;
//! 3. reopen that very inode `O_RDWR|O_NOCTTY|O_CLOEXEC` through `/proc/thread-self/fd/N`; without
//!    /proc, `openat(devpts, "ptmx", …|O_NOFOLLOW|O_NONBLOCK)` and compare `st_dev`/`st_ino` with
//!    the verified handle, then clear `O_NONBLOCK`. Either way the reopened file must be the
//!    verified inode;
//! 4. unlock (`TIOCSPTLCK 0`), read the index (`TIOCGPTN`) and get the peer **only** with
//!    `TIOCGPTPEER(O_RDWR|O_NOCTTY|O_CLOEXEC)` — no path lookup of `/dev/pts/N`, which a container
//!    could have replaced;
//! 5. verify the peer: devpts magic, same devpts instance as the ptmx, char device with major
//!    136..=143 and minor equal to the index.
//!
//! Nothing here gives the caller a controlling terminal (every open has `O_NOCTTY`).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, Mode, OFlags};
use rustix::io::Errno;
use rustix::pty::OpenptFlags;

use crate::error::{TtyError, file_kind};

/// `DEVPTS_SUPER_MAGIC`.
pub const DEVPTS_SUPER_MAGIC: u64 = 0x1cd1;
/// The inode number of `ptmx` in every devpts instance.
pub const PTMX_INO: u64 = 2;
/// The name berth sends with the master over a console socket, as current runc does.
pub const MASTER_NAME: &str = "/dev/pts/ptmx";

/// How [`PtyPair::open_in_via`] turns the verified `O_PATH` handle into a readable master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopen {
    /// `/proc/thread-self/fd/N`, falling back to [`Reopen::Openat`] when that path cannot be
    /// opened (no /proc mounted). The default.
    ProcThenOpenat,
    /// `openat(devpts, "ptmx", O_NOFOLLOW|O_NONBLOCK…)` plus a `st_dev`/`st_ino` comparison
    /// with the verified handle; never touches /proc.
    Openat,
}

/// A pty master and its peer (the "slave"), both close-on-exec and without controlling-terminal
/// side effects.
#[derive(Debug)]
pub struct PtyPair {
    /// The master: berth's side, the one relayed or sent over the console socket.
    pub master: OwnedFd,
    /// The peer: the container process's stdin/stdout/stderr.
    pub peer: OwnedFd,
    /// The pty index `N` (the peer is `/dev/pts/N` inside its devpts).
    pub index: u32,
}

impl PtyPair {
    /// Allocates a pty in the devpts instance whose root directory is `devpts` (the container's
    /// `/dev/pts`, opened safely by the caller), with every check listed in the module docs.
    pub fn open_in(devpts: BorrowedFd<'_>) -> Result<PtyPair, TtyError> {
        PtyPair::open_in_via(devpts, Reopen::ProcThenOpenat)
    }

    /// [`PtyPair::open_in`] with an explicit reopen strategy.
    pub fn open_in_via(devpts: BorrowedFd<'_>, how: Reopen) -> Result<PtyPair, TtyError> {
        let handle = fs::openat(
            devpts,
            "ptmx",
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| TtyError::os("open", "devpts ptmx", e))?;
        let st = verify_ptmx(handle.as_fd())?;
        let master = match how {
            Reopen::ProcThenOpenat => match reopen_proc(handle.as_fd(), &st) {
                Ok(m) => m,
                Err(ProcReopen::Unavailable(e)) => {
                    log::debug!("reopen devpts ptmx through /proc failed ({e}); using openat");
                    reopen_openat(devpts, &st)?
                }
                Err(ProcReopen::Fatal(e)) => return Err(e),
            },
            Reopen::Openat => reopen_openat(devpts, &st)?,
        };
        drop(handle);
        PtyPair::finish(master, Some(st.st_dev))
    }

    /// Allocates a pty on the host: [`PtyPair::open_in`] on `/dev/pts`, or, if that fails (e.g.
    /// `ptmxmode=000`), `/dev/ptmx` checked to be char 5:2, then `TIOCGPTPEER`. For tools and
    /// tests; the runtime allocates in the container's devpts.
    pub fn open_host() -> Result<PtyPair, TtyError> {
        let first = fs::open(
            "/dev/pts",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| TtyError::os("open", "/dev/pts", e))
        .and_then(|dir| PtyPair::open_in(dir.as_fd()));
        match first {
            Ok(pair) => Ok(pair),
            Err(e) => {
                log::debug!("allocating in /dev/pts failed ({e}); trying /dev/ptmx");
                let master = fs::open(
                    "/dev/ptmx",
                    OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| TtyError::os("open", "/dev/ptmx", e))?;
                PtyPair::from_master(master)
            }
        }
    }

    /// Completes a pair from an already opened master (any `ptmx` open, e.g. `/dev/ptmx`): checks
    /// it is char 5:2, unlocks it and gets the verified peer with `TIOCGPTPEER`.
    pub fn from_master(master: OwnedFd) -> Result<PtyPair, TtyError> {
        let st = fs::fstat(&master).map_err(|e| TtyError::os("fstat", "pty master", e))?;
        check_ptmx_device(&st).map_err(|(kind, major, minor)| TtyError::NotAMaster {
            kind,
            major,
            minor,
        })?;
        PtyPair::finish(master, None)
    }

    fn finish(master: OwnedFd, instance: Option<u64>) -> Result<PtyPair, TtyError> {
        rustix::pty::unlockpt(&master)
            .map_err(|e| TtyError::os("ioctl(TIOCSPTLCK)", "pty master", e))?;
        let index = berth_sys::tty::tiocgptn(master.as_fd())
            .map_err(|e| TtyError::os("ioctl(TIOCGPTN)", "pty master", e))?;
        let peer = rustix::pty::ioctl_tiocgptpeer(
            &master,
            OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
        )
        .map_err(|e| TtyError::os("ioctl(TIOCGPTPEER)", "pty master", e))?;
        let peer_dev = verify_peer(peer.as_fd(), index)?;
        match instance {
            Some(expected) if expected != peer_dev => {
                return Err(TtyError::PeerOtherInstance {
                    index,
                    expected,
                    found: peer_dev,
                });
            }
            _ => {}
        }
        Ok(PtyPair {
            master,
            peer,
            index,
        })
    }

    /// The peer's path as seen inside its devpts: `/dev/pts/N`.
    pub fn peer_name(&self) -> String {
        format!("/dev/pts/{}", self.index)
    }
}

/// Checks that `fd` (an `O_PATH` handle or an open file) is the ptmx of a devpts instance:
/// devpts magic, inode 2, char device 5:2. Returns its `stat`.
pub fn verify_ptmx(fd: BorrowedFd<'_>) -> Result<fs::Stat, TtyError> {
    let sfs = fs::fstatfs(fd).map_err(|e| TtyError::os("fstatfs", "devpts ptmx", e))?;
    let magic = sfs.f_type as u64;
    if magic != DEVPTS_SUPER_MAGIC {
        return Err(TtyError::PtmxNotDevpts { magic });
    }
    let st = fs::fstat(fd).map_err(|e| TtyError::os("fstat", "devpts ptmx", e))?;
    if st.st_ino != PTMX_INO {
        return Err(TtyError::PtmxWrongInode { ino: st.st_ino });
    }
    check_ptmx_device(&st).map_err(|(kind, major, minor)| TtyError::PtmxWrongDevice {
        kind,
        major,
        minor,
    })?;
    Ok(st)
}

fn check_ptmx_device(st: &fs::Stat) -> Result<(), (&'static str, u32, u32)> {
    let (major, minor) = (fs::major(st.st_rdev), fs::minor(st.st_rdev));
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || major != 5 || minor != 2 {
        let (major, minor) = if st.st_mode & libc::S_IFMT == libc::S_IFCHR {
            (major, minor)
        } else {
            (0, 0)
        };
        return Err((file_kind(st.st_mode), major, minor));
    }
    Ok(())
}

/// Checks that `peer` is the devpts peer number `index`: devpts magic, char device with major
/// 136..=143 and minor `index`. Returns the peer's `st_dev` (its devpts instance).
pub fn verify_peer(peer: BorrowedFd<'_>, index: u32) -> Result<u64, TtyError> {
    let sfs =
        fs::fstatfs(peer).map_err(|e| TtyError::os("fstatfs", format!("pty peer {index}"), e))?;
    let magic = sfs.f_type as u64;
    if magic != DEVPTS_SUPER_MAGIC {
        return Err(TtyError::PeerNotDevpts { index, magic });
    }
    let st = fs::fstat(peer).map_err(|e| TtyError::os("fstat", format!("pty peer {index}"), e))?;
    let (major, minor) = (fs::major(st.st_rdev), fs::minor(st.st_rdev));
    let is_chr = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
    if !is_chr || !(136..=143).contains(&major) || minor != index {
        return Err(TtyError::PeerWrongDevice {
            index,
            kind: file_kind(st.st_mode),
            major: if is_chr { major } else { 0 },
            minor: if is_chr { minor } else { 0 },
        });
    }
    Ok(st.st_dev)
}

/// Checks that `fd` is an open pty master (char 5:2 that answers `TIOCGPTN`) and returns its
/// index — what a console-socket receiver should check on the fd it got.
pub fn master_index(fd: BorrowedFd<'_>) -> Result<u32, TtyError> {
    let st = fs::fstat(fd).map_err(|e| TtyError::os("fstat", "pty master", e))?;
    check_ptmx_device(&st).map_err(|(kind, major, minor)| TtyError::NotAMaster {
        kind,
        major,
        minor,
    })?;
    berth_sys::tty::tiocgptn(fd).map_err(|e| TtyError::os("ioctl(TIOCGPTN)", "pty master", e))
}

enum ProcReopen {
    /// /proc could not be used; the openat fallback may be tried.
    Unavailable(Errno),
    /// A real failure (e.g. the reopened file is another inode): do not fall back.
    Fatal(TtyError),
}

const MASTER_FLAGS: OFlags = OFlags::RDWR.union(OFlags::NOCTTY).union(OFlags::CLOEXEC);

fn reopen_proc(handle: BorrowedFd<'_>, st: &fs::Stat) -> Result<OwnedFd, ProcReopen> {
    let fd = handle.as_raw_fd();
    let mut last = Errno::NOENT;
    for path in [
        format!("/proc/thread-self/fd/{fd}"),
        format!("/proc/self/fd/{fd}"),
    ] {
        match fs::open(path.as_str(), MASTER_FLAGS, Mode::empty()) {
            Ok(master) => {
                check_same_inode(master.as_fd(), st).map_err(ProcReopen::Fatal)?;
                return Ok(master);
            }
            // No thread-self (old kernel) or no /proc at all: try the next way.
            Err(e @ (Errno::NOENT | Errno::NOTDIR)) => last = e,
            // The ptmx itself refused (EACCES with ptmxmode=000, ENOSPC at the pty limit…).
            Err(e) => return Err(ProcReopen::Fatal(TtyError::os("open", "devpts ptmx", e))),
        }
    }
    Err(ProcReopen::Unavailable(last))
}

fn reopen_openat(devpts: BorrowedFd<'_>, st: &fs::Stat) -> Result<OwnedFd, TtyError> {
    let master = fs::openat(
        devpts,
        "ptmx",
        MASTER_FLAGS | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| TtyError::os("open", "devpts ptmx", e))?;
    check_same_inode(master.as_fd(), st)?;
    let flags =
        fs::fcntl_getfl(&master).map_err(|e| TtyError::os("fcntl(F_GETFL)", "pty master", e))?;
    fs::fcntl_setfl(&master, flags - OFlags::NONBLOCK)
        .map_err(|e| TtyError::os("fcntl(F_SETFL)", "pty master", e))?;
    Ok(master)
}

fn check_same_inode(fd: BorrowedFd<'_>, st: &fs::Stat) -> Result<(), TtyError> {
    let now = fs::fstat(fd).map_err(|e| TtyError::os("fstat", "reopened devpts ptmx", e))?;
    if now.st_dev != st.st_dev || now.st_ino != st.st_ino {
        return Err(TtyError::PtmxReopenMismatch {
            expected: format!("{:#x}:{}", st.st_dev, st.st_ino),
            found: format!("{:#x}:{}", now.st_dev, now.st_ino),
        });
    }
    Ok(())
}
