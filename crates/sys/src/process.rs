//! Process creation and replacement: `clone3`, `execve`, `_exit`, `close_range`, `personality`.
//!
//! # The single-thread contract
//! [`clone3`] without `CLONE_VM` duplicates the calling process the way `fork` does, but without
//! running glibc's fork handlers. That is sound only while the caller is single-threaded: no
//! other thread can hold a lock (malloc's, stdio's) at the moment of the copy. berth's runtime
//! binary never starts a thread, which is also what lets it create every namespace in one
//! `clone3` instead of runc's re-exec stages.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Which side of a [`clone3`] the caller is on.
#[derive(Debug)]
pub enum Forked {
    /// The new process.
    Child,
    /// The calling process; `pid` is the child's pid in the caller's pid namespace.
    Parent {
        /// The child's pid.
        pid: i32,
        /// A pidfd for the child, when `CLONE_PIDFD` was asked for.
        pidfd: Option<OwnedFd>,
    },
}

/// Options for [`clone3`] beyond the namespace flags.
#[derive(Debug, Default)]
pub struct CloneOptions<'a> {
    /// Ask for a pidfd (`CLONE_PIDFD`).
    pub pidfd: bool,
    /// Start the child in this cgroup v2 directory (`CLONE_INTO_CGROUP`).
    pub cgroup: Option<BorrowedFd<'a>>,
    /// Give the child the caller's parent as its parent (`CLONE_PARENT`).
    pub parent: bool,
    /// No exit signal: the child's end sends no `SIGCHLD`, and only [`reap_silent_children`]
    /// (`__WCLONE`) collects it, so waits for other children never see it.
    pub silent_exit: bool,
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Creates a child process with `clone3(2)`, in new namespaces given by `ns_flags`
/// (`CLONE_NEW*` bits). The child gets `SIGCHLD` as its exit signal.
///
/// The caller must be single-threaded (see the module documentation). In the child, only
/// code that does not depend on other threads may run; it must end with [`exit_immediately`]
/// or an exec, never by returning into the parent's logic.
pub fn clone3(ns_flags: u64, options: &CloneOptions<'_>) -> io::Result<Forked> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: ns_flags,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if options.pidfd {
        args.flags |= libc::CLONE_PIDFD as u64;
        args.pidfd = std::ptr::addr_of_mut!(pidfd) as u64;
    }
    if options.parent {
        args.flags |= libc::CLONE_PARENT as u64;
        args.exit_signal = 0;
    }
    if options.silent_exit {
        args.exit_signal = 0;
    }
    if let Some(cg) = options.cgroup {
        args.flags |= 0x2_0000_0000; // CLONE_INTO_CGROUP
        args.cgroup = cg.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid, fully initialised clone_args of the size passed; no stack is
    // given and CLONE_VM is not set, so the child runs on a copy of our address space exactly as
    // after fork(2). The module contract (single-threaded caller) makes that copy consistent.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            std::ptr::addr_of_mut!(args),
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => {
            let pidfd = (options.pidfd && pidfd >= 0).then(|| {
                // SAFETY: the kernel stored a new, owned pidfd in `pidfd` for CLONE_PIDFD.
                unsafe { OwnedFd::from_raw_fd(pidfd) }
            });
            Ok(Forked::Parent {
                pid: pid as i32,
                pidfd,
            })
        }
    }
}

/// Forks the calling process (a [`clone3`] with no namespace flags).
pub fn fork() -> io::Result<Forked> {
    clone3(0, &CloneOptions::default())
}

/// Forks a sibling: a copy of the calling process whose parent is the caller's parent
/// (`CLONE_PARENT`), so whoever started the caller can wait for it directly. Same contract as
/// [`clone3`].
pub fn fork_sibling() -> io::Result<Forked> {
    clone3(
        0,
        &CloneOptions {
            parent: true,
            ..CloneOptions::default()
        },
    )
}

/// A helper process: a child made with [`CloneOptions::silent_exit`] that runs one job first,
/// then closes the descriptors it is sent as they arrive, so that what their last close costs is paid off the
/// caller's path. That is for descriptors whose last close waits: a detached mount's
/// (`fsmount`, `open_tree(OPEN_TREE_CLONE)`) dissolves the mount, and the kernel waits for an
/// RCU grace period before `close` returns (1.6 ms measured on the development VM).
///
/// One child does both jobs berth has for such a process (see `berth_cgroups::prime`), so the
/// fork and the copy-on-write faults that follow it are paid once. Dropping the handle closes
/// the socket; the child then closes what it was sent and ends. [`reap_silent_children`]
/// collects it.
#[derive(Debug)]
pub struct Helper {
    sock: OwnedFd,
}

impl Helper {
    /// Forks the helper, which runs `job` (if any) and then waits for descriptors. The child
    /// keeps none of the caller's descriptors but its end of the socket (a reader waiting for
    /// end of file on the caller's output must not wait for it). The caller must be
    /// single-threaded, as for [`clone3`].
    pub fn spawn(job: Option<fn()>) -> io::Result<Helper> {
        use rustix::net::{AddressFamily, SocketFlags, SocketType};
        let (mine, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )?;
        let options = CloneOptions {
            silent_exit: true,
            ..CloneOptions::default()
        };
        match clone3(0, &options)? {
            Forked::Child => {
                let keep = theirs.as_raw_fd() as u32;
                if keep > 0 {
                    let _ = close_fd_range(0, keep - 1);
                }
                let _ = close_fd_range(keep + 1, u32::MAX);
                if let Some(job) = job {
                    job();
                }
                close_what_arrives(theirs.as_fd());
                exit_immediately(0);
            }
            Forked::Parent { .. } => Ok(Helper { sock: mine }),
        }
    }

    /// Hands `fd` to the helper, which closes it; closes it here if it cannot be sent.
    pub fn close(&self, fd: OwnedFd) {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        let fds = [fd.as_fd()];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if control.push(SendAncillaryMessage::ScmRights(&fds)) {
            let _ = rustix::net::sendmsg(
                &self.sock,
                &[io::IoSlice::new(b"x")],
                &mut control,
                SendFlags::NOSIGNAL,
            );
        }
        // The descriptor in flight (or in the helper) keeps the file open: this close is cheap.
        drop(fd);
    }
}

/// The helper's loop: receives descriptors until the socket's end of file, closing each.
fn close_what_arrives(sock: BorrowedFd<'_>) {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    loop {
        let mut byte = [0u8; 1];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        match rustix::net::recvmsg(
            sock,
            &mut [io::IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(r) if r.bytes == 0 => return,
            Ok(_) => {
                for msg in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(fds) = msg {
                        fds.for_each(drop);
                    }
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// Collects every child made with [`CloneOptions::silent_exit`] that has ended, without
/// waiting; returns how many.
pub fn reap_silent_children() -> usize {
    let mut reaped = 0;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only `status`; `__WCLONE` limits it to children whose exit
        // signal is not SIGCHLD, which berth makes only with `silent_exit`.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WCLONE) };
        if pid <= 0 {
            return reaped;
        }
        reaped += 1;
    }
}

/// Whether the caller has a child made with [`CloneOptions::silent_exit`], running or ended
/// and not yet collected (one made before an `execve` of the caller counts).
pub fn has_silent_children() -> bool {
    // SAFETY: an all-zero siginfo_t is a valid value; waitid writes only into `info`, and
    // WNOWAIT leaves an ended child to be collected later.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `info` is a valid, writable siginfo_t.
    let ret = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WCLONE,
        )
    };
    ret == 0
}

/// Ends the calling process at once with `code`, without running exit handlers or flushing
/// stdio buffers that belong to the parent's copy of memory.
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// Replaces the process image: `execve(path, argv, envp)`. Returns only on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: every pointer is a NUL-terminated string kept alive by `argv`/`envp` for the
    // duration of the call, and both arrays end with a null pointer as execve requires.
    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// Replaces the process image with the program open at `fd` (`execveat(fd, "", …,
/// AT_EMPTY_PATH)`), as `fexecve` does. Returns only on failure.
pub fn execveat_fd(fd: BorrowedFd<'_>, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: as for execve; the empty path is a valid NUL-terminated string and `fd` is open.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// Closes every fd from `first` up (`close_range(first, ~0, 0)`). Callers own every fd from
/// `first` up and hold no `OwnedFd` for them any longer (documented at each call site).
pub fn close_fds_from(first: u32) -> io::Result<()> {
    close_fd_range(first, u32::MAX)
}

/// Closes the descriptors `first..=last` (`close_range(2)`), under the same contract as
/// [`close_fds_from`] (the helper child never drops the `OwnedFd`s it inherited in memory).
pub fn close_fd_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: close_range only closes descriptors; by the contract above no live OwnedFd in
    // this process refers to one of them afterwards.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Marks every fd from `first` up close-on-exec (`close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`).
pub fn cloexec_fds_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: setting FD_CLOEXEC changes no fd's ownership or validity.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if ret == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    // A kernel before 5.11 (EINVAL for the flag), or a seccomp filter that refuses the call:
    // mark each open fd instead.
    if !matches!(
        err.raw_os_error(),
        Some(libc::ENOSYS | libc::EINVAL | libc::EPERM)
    ) {
        return Err(err);
    }
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        if let Some(fd) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        {
            if fd >= first as i32 {
                fds.push(fd);
            }
        }
    }
    for fd in fds {
        // SAFETY: F_SETFD changes only the close-on-exec flag; a number that is not (or no
        // longer, like the directory's own fd) open fails with EBADF, which is ignored.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Clears `FD_CLOEXEC` on a descriptor the caller wants a child program to inherit.
pub fn clear_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = rustix::io::fcntl_getfd(fd)?;
    rustix::io::fcntl_setfd(fd, flags - rustix::io::FdFlags::CLOEXEC)?;
    Ok(())
}

/// Sets the execution domain (`personality(2)`), e.g. `PER_LINUX32`.
pub fn set_personality(persona: u64) -> io::Result<()> {
    // SAFETY: personality takes a plain integer and has no memory effects.
    let ret = unsafe { libc::personality(persona as libc::c_ulong) };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sets the I/O scheduling class and priority of the calling process (`ioprio_set`).
pub fn set_io_priority(class: i32, priority: i32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: i32 = 1;
    let ioprio = (class << 13) | priority;
    // SAFETY: ioprio_set takes plain integers; 0 means the calling process.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, ioprio) };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sets the CPU affinity of the calling process from a list of CPU numbers.
pub fn set_cpu_affinity(cpus: &[usize]) -> io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    for &cpu in cpus {
        if cpu >= rustix::thread::CpuSet::MAX_CPU {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        set.set(cpu);
    }
    rustix::thread::sched_setaffinity(None, &set)?;
    Ok(())
}

/// The attributes of `sched_setattr(2)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SchedAttr {
    /// `SCHED_*` policy number.
    pub policy: u32,
    /// `SCHED_FLAG_*` bits.
    pub flags: u64,
    /// Nice value for normal policies.
    pub nice: i32,
    /// Static priority for real-time policies.
    pub priority: u32,
    /// SCHED_DEADLINE runtime (ns).
    pub runtime: u64,
    /// SCHED_DEADLINE deadline (ns).
    pub deadline: u64,
    /// SCHED_DEADLINE period (ns).
    pub period: u64,
}

/// Sets the scheduling policy and attributes of the calling thread (`sched_setattr(2)`).
pub fn set_sched_attr(attr: &SchedAttr) -> io::Result<()> {
    #[repr(C)]
    struct Raw {
        size: u32,
        sched_policy: u32,
        sched_flags: u64,
        sched_nice: i32,
        sched_priority: u32,
        sched_runtime: u64,
        sched_deadline: u64,
        sched_period: u64,
    }
    let raw = Raw {
        size: std::mem::size_of::<Raw>() as u32,
        sched_policy: attr.policy,
        sched_flags: attr.flags,
        sched_nice: attr.nice,
        sched_priority: attr.priority,
        sched_runtime: attr.runtime,
        sched_deadline: attr.deadline,
        sched_period: attr.period,
    };
    // SAFETY: `raw` is a valid sched_attr (SCHED_ATTR_SIZE_VER0 layout) that outlives the call.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, std::ptr::addr_of!(raw), 0) };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Moves the calling process into new namespaces (`unshare(2)` with `CLONE_NEW*` bits).
pub fn unshare(flags: u64) -> io::Result<()> {
    // SAFETY: unshare takes a plain flag word. Callers are single-threaded (module contract), so
    // giving this process new namespaces cannot surprise another thread.
    let ret = unsafe { libc::unshare(flags as libc::c_int) };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Moves the calling *thread* into a new network namespace and returns an fd of it
/// (`/proc/thread-self/ns/net`). Only that thread's namespace changes (network namespaces are
/// per task), so a short-lived thread can make one for a process it will not run in: berth's
/// `create` does so while it prepares the rest, and the init joins it with `setns`.
pub fn new_network_namespace() -> io::Result<OwnedFd> {
    // SAFETY: unshare with CLONE_NEWNET only replaces the calling thread's network namespace
    // reference; it shares no memory or descriptors and no other thread is affected.
    let ret = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(rustix::fs::open(
        "/proc/thread-self/ns/net",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?)
}

/// Joins a new anonymous session keyring named `name` (`keyctl(KEYCTL_JOIN_SESSION_KEYRING)`),
/// so the container does not share the caller's keys. Returns `Ok` when the kernel has no
/// keyring support (`ENOSYS`), as runc does.
pub fn join_session_keyring(name: &str) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    let name = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: keyctl(KEYCTL_JOIN_SESSION_KEYRING, name) reads one NUL-terminated string that
    // lives for the whole call.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if ret == -1 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENOSYS) {
            return Ok(());
        }
        return Err(err);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nap() {
        std::thread::sleep(std::time::Duration::from_millis(300));
    }

    /// A pipe's write end sent to the helper stays open (in flight) while the helper's job
    /// runs, and the helper's close is its last: then the reader sees end of file.
    #[test]
    fn the_helper_runs_its_job_then_closes_what_it_is_sent() {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let helper = Helper::spawn(Some(nap)).unwrap();
        let sent = std::time::Instant::now();
        helper.close(write);
        let mut poll = [rustix::event::PollFd::new(
            &read,
            rustix::event::PollFlags::IN,
        )];
        let ready = rustix::event::poll(&mut poll, Some(&rustix::time::Timespec::default()));
        assert_eq!(
            ready.unwrap(),
            0,
            "the write end was closed before the helper let go"
        );
        drop(helper);
        let mut buf = [0u8; 1];
        assert_eq!(rustix::io::read(&read, &mut buf).unwrap(), 0);
        assert!(
            sent.elapsed() >= std::time::Duration::from_millis(250),
            "closed before the job ended"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while reap_silent_children() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the helper did not end"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
