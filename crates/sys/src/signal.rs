//! Signals: masks, dispositions, signalfd, `kill` with any signal number, and runc's signal names.
//!
//! rustix leaves `sigprocmask`, `sigaction` and `signalfd` out (they are libc internals there), and
//! its `Signal` type cannot carry real-time signals, so this module wraps libc for them.
//!
//! Order of operations for a foreground runtime (see `berth_tty::relay`):
//! 1. build the set ([`SigSet::relay_set`]) and [`block`] it, keeping the returned old mask;
//! 2. create the [`SignalFd`] for the same set — both *before* the child is cloned, so a `SIGCHLD`
//!    (or a `SIGINT` from the user) that arrives early stays pending and is read later;
//! 3. in the child, before exec: [`reset_dispositions`] then [`unblock_all`] (a blocked mask and
//!    ignored signals survive `execve`; handlers do not);
//! 4. in the parent, read [`SignalFd::read`] until it returns `None` each time the fd is readable.
//!
//! [`unblock_all`], [`reset_dispositions`] and [`SigSet`] methods only call async-signal-safe libc
//! functions, so they may run in a child between `fork`/`clone` and `execve`.

use std::borrow::Cow;
use std::io;
use std::mem::{MaybeUninit, offset_of, size_of};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::process::Command;

/// The highest signal number on Linux (`SIGRTMAX` with glibc and musl).
pub const SIGNAL_MAX: i32 = 64;

/// The first real-time signal available to applications (`SIGRTMIN`: 34 with glibc, 35 with musl).
pub fn sigrtmin() -> i32 {
    libc::SIGRTMIN()
}

/// The last real-time signal (`SIGRTMAX`, 64 on Linux).
pub fn sigrtmax() -> i32 {
    libc::SIGRTMAX()
}

/// A `sigset_t`.
#[derive(Clone, Copy)]
pub struct SigSet(libc::sigset_t);

impl SigSet {
    /// The empty set.
    pub fn empty() -> SigSet {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the whole sigset_t it is given; it cannot fail for a
        // valid pointer.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            SigSet(set.assume_init())
        }
    }

    /// The set of every signal (the C library may refuse to block its internal ones).
    pub fn full() -> SigSet {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigfillset initialises the whole sigset_t it is given.
        unsafe {
            libc::sigfillset(set.as_mut_ptr());
            SigSet(set.assume_init())
        }
    }

    /// A set holding the given signals; numbers out of range are an error.
    pub fn from_signals(signals: &[i32]) -> io::Result<SigSet> {
        let mut set = SigSet::empty();
        for &sig in signals {
            set.add(sig)?;
        }
        Ok(set)
    }

    /// The signals a foreground runtime blocks and reads from its signalfd: every catchable
    /// signal 1..=31 (all but `SIGKILL` and `SIGSTOP`) plus `SIGRTMIN..=SIGRTMAX`.
    pub fn relay_set() -> SigSet {
        let mut set = SigSet::empty();
        for sig in (1..=31).chain(sigrtmin()..=sigrtmax()) {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                // Cannot fail: every number is in 1..=64.
                let _ = set.add(sig);
            }
        }
        set
    }

    /// Adds `sig` (1..=64).
    pub fn add(&mut self, sig: i32) -> io::Result<()> {
        // SAFETY: self.0 is an initialised sigset_t; sigaddset validates `sig` (EINVAL).
        let rc = unsafe { libc::sigaddset(&mut self.0, sig) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Removes `sig` (1..=64).
    pub fn remove(&mut self, sig: i32) -> io::Result<()> {
        // SAFETY: self.0 is an initialised sigset_t; sigdelset validates `sig` (EINVAL).
        let rc = unsafe { libc::sigdelset(&mut self.0, sig) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Whether `sig` is in the set (false for numbers out of range).
    pub fn contains(&self, sig: i32) -> bool {
        // SAFETY: self.0 is an initialised sigset_t; sigismember returns -1 for a bad number.
        unsafe { libc::sigismember(&self.0, sig) == 1 }
    }

    /// The members, in increasing order.
    pub fn signals(&self) -> impl Iterator<Item = i32> + '_ {
        (1..=SIGNAL_MAX).filter(|&s| self.contains(s))
    }

    /// The raw `sigset_t`.
    pub fn as_raw(&self) -> &libc::sigset_t {
        &self.0
    }
}

impl std::fmt::Debug for SigSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(
                self.signals()
                    .map(|s| signal_name(s).unwrap_or(Cow::Borrowed("?"))),
            )
            .finish()
    }
}

fn sigprocmask(how: libc::c_int, set: Option<&SigSet>) -> io::Result<SigSet> {
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    let set_ptr = set.map_or(std::ptr::null(), |s| &s.0 as *const libc::sigset_t);
    // SAFETY: `set_ptr` is null or points to an initialised sigset_t that outlives the call;
    // `old` is writable storage for one sigset_t, which the kernel fills on success.
    let rc = unsafe { libc::sigprocmask(how, set_ptr, old.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sigprocmask succeeded, so it wrote the previous mask into `old`.
    Ok(SigSet(unsafe { old.assume_init() }))
}

/// Adds `set` to the calling thread's blocked mask; returns the previous mask.
pub fn block(set: &SigSet) -> io::Result<SigSet> {
    sigprocmask(libc::SIG_BLOCK, Some(set))
}

/// Removes `set` from the blocked mask; returns the previous mask.
pub fn unblock(set: &SigSet) -> io::Result<SigSet> {
    sigprocmask(libc::SIG_UNBLOCK, Some(set))
}

/// Replaces the blocked mask with `set`; returns the previous mask.
pub fn set_mask(set: &SigSet) -> io::Result<SigSet> {
    sigprocmask(libc::SIG_SETMASK, Some(set))
}

/// The current blocked mask.
pub fn current_mask() -> io::Result<SigSet> {
    sigprocmask(libc::SIG_BLOCK, None)
}

/// Unblocks every signal (child side, before exec). Async-signal-safe.
pub fn unblock_all() -> io::Result<()> {
    set_mask(&SigSet::empty()).map(|_| ())
}

/// Sets `sig`'s disposition to `SIG_DFL`.
pub fn set_default(sig: i32) -> io::Result<()> {
    set_handler(sig, libc::SIG_DFL)
}

/// Sets `sig`'s disposition to `SIG_IGN`.
pub fn set_ignored(sig: i32) -> io::Result<()> {
    set_handler(sig, libc::SIG_IGN)
}

fn set_handler(sig: i32, handler: libc::sighandler_t) -> io::Result<()> {
    let mut act = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: an all-zero sigaction is a valid value (empty mask, no flags); we then set the
    // handler to SIG_DFL or SIG_IGN, which involve no code pointer the kernel could call.
    let rc = unsafe {
        let act = act.as_mut_ptr();
        (*act).sa_sigaction = handler;
        libc::sigemptyset(&mut (*act).sa_mask);
        libc::sigaction(sig, act, std::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets `sig`'s disposition to `SIG_DFL` with the raw `rt_sigaction` system call, which
/// reaches signals 32 and 33 too: the C library keeps those for itself and refuses them, but a
/// caller can hand them on ignored (dash does), and an ignored signal survives `execve`.
/// Async-signal-safe.
fn set_default_raw(sig: i32) -> io::Result<()> {
    set_raw(sig, libc::SIG_DFL)
}

/// `rt_sigaction(sig)` to `SIG_DFL` or `SIG_IGN` (no code pointer) without the C library.
fn set_raw(sig: i32, handler: libc::sighandler_t) -> io::Result<()> {
    /// The kernel's `struct sigaction` on the architectures berth builds for (handler, flags,
    /// restorer, mask); all zero is `SIG_DFL` with no flags and an empty mask.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    debug_assert!(handler == libc::SIG_DFL || handler == libc::SIG_IGN);
    let act = KernelSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: `act` is a valid kernel sigaction for the size passed (8 bytes of mask); SIG_DFL
    // and SIG_IGN involve no code pointer, so no restorer is needed; the old action is not asked for.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &act as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Every signal number whose disposition can be set: 1..=64 without `SIGKILL` and `SIGSTOP`.
fn settable_signals() -> impl Iterator<Item = i32> {
    (1..=64).filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP)
}

/// Resets every signal that can be reset (1..=64, the C library's 32 and 33 included) to
/// `SIG_DFL` (child side, before exec: ignored signals survive `execve`, e.g. the `SIGPIPE`
/// that Rust programs ignore). Async-signal-safe.
pub fn reset_dispositions() -> io::Result<()> {
    settable_signals().try_for_each(set_default_raw)
}

/// [`reset_dispositions`] in two or three calls instead of sixty-two: resets only the signals
/// the kernel reports ignored or caught (`SigIgn` and `SigCgt` in `/proc/thread-self/status`);
/// the others are at `SIG_DFL` already. Falls back to resetting every signal when that file
/// cannot be read or parsed. Reads a file, so not for a `pre_exec` closure.
pub fn reset_changed_dispositions() -> io::Result<()> {
    let Some(changed) = changed_dispositions() else {
        return reset_dispositions();
    };
    settable_signals()
        .filter(|&sig| changed & (1u64 << (sig - 1)) != 0)
        .try_for_each(set_default_raw)
}

/// `SigIgn | SigCgt` of the calling thread: bit `n - 1` for signal `n`.
fn changed_dispositions() -> Option<u64> {
    let status = crate::procfs::read_to_string("/proc/thread-self/status").ok()?;
    dispositions_in_status(&status)
}

/// `SigIgn | SigCgt` from the text of a `/proc/PID/status` file.
fn dispositions_in_status(status: &str) -> Option<u64> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    };
    Some(field("SigIgn:")? | field("SigCgt:")?)
}

/// Makes `cmd`'s child reset all signal dispositions and unblock every signal before exec, so a
/// parent that blocks or ignores signals (a relay) does not pass that on.
pub fn command_reset_signals(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only calls sigaction and
    // sigprocmask, which are async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(|| {
            reset_dispositions()?;
            unblock_all()
        });
    }
}

/// `kill(pid, sig)` for any signal number, real-time ones included (0 probes).
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes plain integers and has no memory effects.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What a signalfd read reports about one signal (`struct signalfd_siginfo`, the fields berth
/// uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigInfo {
    /// The signal number.
    pub signo: i32,
    /// `si_code` (e.g. `SI_USER`, `CLD_EXITED`).
    pub code: i32,
    /// The sending process (for `SIGCHLD`: the child that changed state).
    pub pid: i32,
    /// The sender's real uid.
    pub uid: u32,
    /// For `SIGCHLD`: the exit status or the signal number, depending on `code`.
    pub status: i32,
}

const SIGINFO_SIZE: usize = size_of::<libc::signalfd_siginfo>();
const _: () = assert!(SIGINFO_SIZE == 128);

/// A non-blocking, close-on-exec signalfd.
#[derive(Debug)]
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    /// Creates a signalfd for `set` (`SFD_NONBLOCK | SFD_CLOEXEC`). The signals must also be
    /// blocked ([`block`]) or they are delivered normally instead.
    pub fn new(set: &SigSet) -> io::Result<SignalFd> {
        // SAFETY: `set.0` is an initialised sigset_t; -1 asks for a new fd, which we own.
        let fd = unsafe { libc::signalfd(-1, &set.0, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(SignalFd { fd })
    }

    /// Reads the next pending signal; `Ok(None)` when none is pending.
    pub fn read(&self) -> io::Result<Option<SigInfo>> {
        let mut buf = [0u8; SIGINFO_SIZE];
        loop {
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(n) if n == SIGINFO_SIZE => break,
                Ok(n) => {
                    return Err(io::Error::other(format!(
                        "signalfd {}: short read of {n} bytes",
                        self.fd.as_raw_fd()
                    )));
                }
                Err(rustix::io::Errno::AGAIN) => return Ok(None),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let i32_at =
            |off: usize| i32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]);
        Ok(Some(SigInfo {
            signo: i32_at(offset_of!(libc::signalfd_siginfo, ssi_signo)),
            code: i32_at(offset_of!(libc::signalfd_siginfo, ssi_code)),
            pid: i32_at(offset_of!(libc::signalfd_siginfo, ssi_pid)),
            uid: i32_at(offset_of!(libc::signalfd_siginfo, ssi_uid)) as u32,
            status: i32_at(offset_of!(libc::signalfd_siginfo, ssi_status)),
        }))
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<SignalFd> for OwnedFd {
    fn from(s: SignalFd) -> OwnedFd {
        s.fd
    }
}

/// The standard names, index = signal number (x86-64/arm64/riscv numbering).
const NAMES: [&str; 32] = [
    "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// Extra spellings accepted on input.
const ALIASES: [(&str, i32); 4] = [
    ("IOT", libc::SIGIOT),
    ("CLD", libc::SIGCHLD),
    ("POLL", libc::SIGPOLL),
    ("UNUSED", libc::SIGSYS),
];

/// Parses a signal as `runc kill` does: a number (`9`), a name with or without the `SIG` prefix
/// in any case (`KILL`, `SIGKILL`, `sigkill`), or a real-time signal (`RTMIN`, `RTMIN+3`,
/// `SIGRTMAX-1`). Numbers 0 (the "probe" signal) to 64 are accepted.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (0..=SIGNAL_MAX).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if name.is_empty() {
        return None;
    }
    if let Some(i) = NAMES.iter().position(|&n| n == name) {
        return Some(i as i32);
    }
    if let Some(&(_, n)) = ALIASES.iter().find(|(a, _)| *a == name) {
        return Some(n);
    }
    let (min, max) = (sigrtmin(), sigrtmax());
    let offset = |rest: &str| -> Option<i32> {
        if rest.is_empty() {
            return Some(0);
        }
        let digits = rest.get(1..)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i32>().ok()
    };
    let sig = if let Some(rest) = name.strip_prefix("RTMIN") {
        if !(rest.is_empty() || rest.starts_with('+')) {
            return None;
        }
        min.checked_add(offset(rest)?)?
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        if !(rest.is_empty() || rest.starts_with('-')) {
            return None;
        }
        max.checked_sub(offset(rest)?)?
    } else {
        return None;
    };
    (min..=max).contains(&sig).then_some(sig)
}

/// The canonical name of a signal: `SIGKILL`, `SIGRTMIN`, `SIGRTMIN+3`, `SIGRTMAX`; `None` for
/// numbers that are not signals (including 0 and the C library's reserved 32/33).
pub fn signal_name(sig: i32) -> Option<Cow<'static, str>> {
    const SIG_NAMES: [&str; 32] = [
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    let (min, max) = (sigrtmin(), sigrtmax());
    match sig {
        1..=31 => Some(Cow::Borrowed(SIG_NAMES[sig as usize])),
        s if s == min => Some(Cow::Borrowed("SIGRTMIN")),
        s if s == max => Some(Cow::Borrowed("SIGRTMAX")),
        s if s > min && s < max => Some(Cow::Owned(format!("SIGRTMIN+{}", s - min))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_dispositions_are_sigign_or_sigcgt() {
        let status = "Name:\tx\nSigBlk:\t0000000000010000\nSigIgn:\t0000000000001000\n\
                      SigCgt:\t0000000180000440\nCapInh:\t0\n";
        assert_eq!(dispositions_in_status(status), Some(0x1_8000_1440));
        assert_eq!(dispositions_in_status("SigIgn:\t0000000000001000\n"), None);
        assert_eq!(dispositions_in_status("SigIgn: zz\nSigCgt: 0\n"), None);
    }

    /// In a child (the test harness has threads, and dispositions are per process): ignore and
    /// catch a few signals, reset the changed ones, and find every signal at SIG_DFL.
    #[test]
    fn reset_changed_dispositions_leaves_every_signal_default() {
        extern "C" fn handler(_: i32) {}
        let options = crate::process::CloneOptions::default();
        match crate::process::clone3(0, &options).unwrap() {
            crate::process::Forked::Child => {
                // 32 is the C library's: only the raw call sets it (as dash hands it on).
                let mut ok = set_raw(32, libc::SIG_IGN).is_ok()
                    && set_ignored(libc::SIGHUP).is_ok()
                    && set_ignored(libc::SIGRTMIN() + 3).is_ok();
                // SAFETY: a handler that does nothing is async-signal-safe.
                ok &= unsafe {
                    libc::signal(libc::SIGUSR1, handler as *const () as libc::sighandler_t)
                } != libc::SIG_ERR;
                ok &= changed_dispositions().is_some_and(|m| m & (1 << 31) != 0);
                ok &= reset_changed_dispositions().is_ok();
                ok &= changed_dispositions() == Some(0);
                for sig in (1..=31).chain(sigrtmin()..=sigrtmax()) {
                    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
                    // SAFETY: a query: no new action, `old` is writable.
                    let rc = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
                    // SAFETY: sigaction filled `old` (or it stays zeroed, SIG_DFL).
                    ok &= rc == 0 && unsafe { old.assume_init() }.sa_sigaction == libc::SIG_DFL;
                }
                crate::process::exit_immediately(if ok { 0 } else { 1 });
            }
            crate::process::Forked::Parent { pid, .. } => {
                let mut status = 0;
                // SAFETY: waitpid writes only `status`.
                let got = unsafe { libc::waitpid(pid, &mut status, 0) };
                assert_eq!(got, pid);
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "{status:#x}"
                );
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for sig in (1..=31).chain(sigrtmin()..=sigrtmax()) {
            let name = signal_name(sig).expect("named");
            assert_eq!(parse_signal(&name), Some(sig), "{name}");
            assert_eq!(parse_signal(&name[3..]), Some(sig), "{name}");
            assert_eq!(parse_signal(&name.to_lowercase()), Some(sig), "{name}");
            assert_eq!(parse_signal(&sig.to_string()), Some(sig));
        }
    }

    #[test]
    fn parse_runc_syntax() {
        assert_eq!(parse_signal("KILL"), Some(9));
        assert_eq!(parse_signal("SIGKILL"), Some(9));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("0"), Some(0));
        assert_eq!(parse_signal("term"), Some(15));
        assert_eq!(parse_signal("CLD"), Some(libc::SIGCHLD));
        assert_eq!(parse_signal("IOT"), Some(6));
        assert_eq!(parse_signal("RTMIN"), Some(sigrtmin()));
        assert_eq!(parse_signal("RTMIN+3"), Some(sigrtmin() + 3));
        assert_eq!(parse_signal("SIGRTMAX-1"), Some(sigrtmax() - 1));
        assert_eq!(parse_signal("RTMAX"), Some(64));
        for bad in [
            "", "SIG", "65", "-1", "NOPE", "RTMIN-1", "RTMAX+1", "RTMIN+", "RTMIN+x", "RTMIN3",
            "RTMIN+31", "KILL9", " 9",
        ] {
            assert_eq!(parse_signal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unnamed_numbers() {
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(32), None);
        assert_eq!(signal_name(65), None);
        assert_eq!(signal_name(-1), None);
    }

    #[test]
    fn relay_set_members() {
        let set = SigSet::relay_set();
        assert!(!set.contains(libc::SIGKILL));
        assert!(!set.contains(libc::SIGSTOP));
        for sig in [
            1,
            2,
            3,
            13,
            15,
            17,
            18,
            20,
            21,
            22,
            23,
            28,
            31,
            sigrtmin(),
            64,
        ] {
            assert!(set.contains(sig), "{sig}");
        }
        assert_eq!(
            set.signals().count(),
            29 + (sigrtmax() - sigrtmin() + 1) as usize
        );
        let mut s = SigSet::empty();
        assert!(s.add(0).is_err());
        assert!(s.add(65).is_err());
        s.add(10).unwrap();
        assert_eq!(format!("{s:?}"), "{\"SIGUSR1\"}");
        s.remove(10).unwrap();
        assert_eq!(s.signals().count(), 0);
    }

    /// The signalfd part runs in a forked child: blocking signals in the test harness's own
    /// threads would change how the runner behaves. The child does no allocation (it may run
    /// while another test thread holds the allocator lock) and reports through its exit code.
    #[test]
    fn signalfd_reads_blocked_signals_in_a_forked_child() {
        use crate::process::{Forked, exit_immediately, fork};
        fn child() -> Result<(), i32> {
            let set = SigSet::from_signals(&[libc::SIGUSR1, libc::SIGCHLD]).map_err(|_| 10)?;
            block(&set).map_err(|_| 11)?;
            let sfd = SignalFd::new(&set).map_err(|_| 12)?;
            if sfd.read().map_err(|_| 13)?.is_some() {
                return Err(14);
            }
            let me = rustix::process::getpid().as_raw_nonzero().get();
            kill(me, libc::SIGUSR1).map_err(|_| 15)?;
            let info = sfd.read().map_err(|_| 16)?.ok_or(17)?;
            if info.signo != libc::SIGUSR1 || info.pid != me || info.code != libc::SI_USER {
                return Err(18);
            }
            let grandchild = match fork().map_err(|_| 19)? {
                Forked::Child => exit_immediately(3),
                Forked::Parent { pid, .. } => pid,
            };
            let mut fds = [rustix::event::PollFd::new(
                &sfd,
                rustix::event::PollFlags::IN,
            )];
            let timeout = rustix::time::Timespec {
                tv_sec: 10,
                tv_nsec: 0,
            };
            if rustix::event::poll(&mut fds, Some(&timeout)).map_err(|_| 20)? != 1 {
                return Err(21);
            }
            let info = sfd.read().map_err(|_| 22)?.ok_or(23)?;
            if info.signo != libc::SIGCHLD || info.pid != grandchild || info.status != 3 {
                return Err(24);
            }
            if current_mask().map_err(|_| 25)?.contains(libc::SIGUSR1) {
                unblock_all().map_err(|_| 26)?;
            } else {
                return Err(27);
            }
            if current_mask().map_err(|_| 28)?.signals().next().is_some() {
                return Err(29);
            }
            Ok(())
        }
        match fork().expect("fork") {
            Forked::Child => exit_immediately(match child() {
                Ok(()) => 0,
                Err(code) => code,
            }),
            Forked::Parent { pid, .. } => {
                let pid = rustix::process::Pid::from_raw(pid).expect("pid");
                let (_, status) =
                    rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
                        .expect("waitpid")
                        .expect("status");
                assert_eq!(
                    status.exit_status(),
                    Some(0),
                    "child step failed: {status:?}"
                );
            }
        }
    }
}
