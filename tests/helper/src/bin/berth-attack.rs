//! `berth-attack`: a hostile container process for the hardening tests (security.md §6 F-05,
//! F-06, X-02). Built statically like `berth-probe` and copied into a test rootfs as `/attack`.
//! Every command writes exactly one result line `NAME key=value …` to OUT (atomically: a
//! temporary file renamed into place) and to stdout, and exits 0; usage errors exit 2.
//!
//! ```text
//! ptrace-watch STOP OUT   until the file STOP exists: for every process of the pid namespace
//!                         but itself, try PTRACE_ATTACH, /proc/P/fd and /proc/P/exe. A process
//!                         whose exe is not one of the rootfs's own programs (/probe, /attack,
//!                         /bin/busybox) yet lets itself be attached or read is a leak: that is
//!                         the runtime's code before execve (CVE-2016-9962).
//!                         → ptrace-watch pids=N attached=A denied=D fd_ok=F leaks=L leak=…
//! exe-grab STOP OUT       until STOP exists: open /proc/P/exe of every other process, O_WRONLY
//!                         (ETXTBSY expected while it runs) and O_PATH; keep the O_PATH handles
//!                         of foreign executables (the runtime). Then, for 3 s, reopen each
//!                         handle through /proc/self/fd O_WRONLY and write "PWNED" at offset 0
//!                         (CVE-2019-5736). OUT with the extension `grabbed` holds the number of
//!                         handles held so far.
//!                         → exe-grab grabbed=K wrote=W targets=… errors=…
//! ptys MAX OUT [--hold]   open /dev/ptmx until it fails or MAX are open.
//!                         → ptys opened=N err=ENOSPC|none ; --hold then pauses forever
//! with-fds P [--dirs] -- PROG ARGS
//!                         (on the host) exec PROG with fds 3..3+P open as memfds named
//!                         `preserved-N` (with --dirs: the host's /tmp, O_DIRECTORY), and after
//!                         them the fds a careless runtime would leak, none close-on-exec: a
//!                         directory (/tmp), an O_PATH fd of /, a unix socket pair. Prints
//!                         nothing itself.
//! ```
#![allow(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};

/// The programs the test rootfs holds: a process running one of them is not the runtime.
const OWN: [&str; 3] = ["/probe", "/attack", "/bin/busybox"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    match argv.as_slice() {
        ["ptrace-watch", stop, out] => ptrace_watch(Path::new(stop), Path::new(out)),
        ["exe-grab", stop, out] => exe_grab(Path::new(stop), Path::new(out)),
        ["ptys", max, out] => ptys(parse(max), Path::new(out), false),
        ["ptys", max, out, "--hold"] => ptys(parse(max), Path::new(out), true),
        ["with-fds", p, "--", prog, rest @ ..] => with_fds(parse(p), false, prog, rest),
        ["with-fds", p, "--dirs", "--", prog, rest @ ..] => with_fds(parse(p), true, prog, rest),
        _ => {
            eprintln!("usage: berth-attack ptrace-watch|exe-grab STOP OUT | ptys MAX OUT [--hold]");
            std::process::exit(2)
        }
    }
}

fn parse(s: &str) -> usize {
    s.parse().unwrap_or_else(|_| {
        eprintln!("not a number: {s}");
        std::process::exit(2)
    })
}

fn errno_name(e: i32) -> String {
    match e {
        libc::ETXTBSY => "ETXTBSY".into(),
        libc::ESRCH => "ESRCH".into(),
        _ => berth_helper::errno_name(e),
    }
}

fn rx(e: rustix::io::Errno) -> String {
    errno_name(e.raw_os_error())
}

fn report(out: &Path, line: &str) {
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, format!("{line}\n")).expect("write result");
    std::fs::rename(&tmp, out).expect("rename result");
    // stdout may be a pipe nobody reads any more (a detached container): that is fine.
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Pids of the namespace, this process excluded.
fn pids() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| *p != me)
        .collect()
}

/// `Some(target)` of `/proc/P/exe`, `Err(errno)` when denied or gone.
fn exe_of(pid: i32) -> Result<String, i32> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| e.raw_os_error().unwrap_or(0))
}

fn foreign(exe: &str) -> bool {
    !OWN.contains(&exe)
}

fn escape(s: &str) -> String {
    s.replace(' ', "\\x20")
}

fn ptrace_watch(stop: &Path, out: &Path) {
    let mut seen = BTreeSet::new();
    let (mut attached, mut denied, mut fd_ok) = (0u64, 0u64, 0u64);
    let mut leaks: Vec<String> = Vec::new();
    while !stop.exists() {
        for pid in pids() {
            seen.insert(pid);
            // SAFETY: PTRACE_ATTACH takes no pointers.
            let rc = unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) };
            if rc == 0 {
                attached += 1;
                if let Ok(exe) = exe_of(pid) {
                    if foreign(&exe) {
                        leaks.push(format!("attach:{pid}:{exe}"));
                    }
                }
                release(pid);
            } else {
                let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                if e == libc::EPERM || e == libc::EACCES {
                    denied += 1;
                }
            }
            match std::fs::read_dir(format!("/proc/{pid}/fd")) {
                Ok(rd) => {
                    fd_ok += 1;
                    let n = rd.count();
                    if let Ok(exe) = exe_of(pid) {
                        if foreign(&exe) {
                            leaks.push(format!("fd:{pid}:{exe}:{n}"));
                        }
                    }
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
                    denied += 1;
                }
                Err(_) => {}
            }
        }
    }
    report(
        out,
        &format!(
            "ptrace-watch pids={} attached={attached} denied={denied} fd_ok={fd_ok} leaks={} leak={}",
            seen.len(),
            leaks.len(),
            escape(&leaks.join(","))
        ),
    );
    std::process::exit(0);
}

/// Lets a tracee go: waits for the SIGSTOP of PTRACE_ATTACH (continuing past other stops,
/// such as the SIGTRAP of an execve in flight, so the SIGSTOP is not left pending to stop the
/// process for good after the detach), then detaches.
fn release(pid: i32) {
    for _ in 0..100 {
        let mut status = 0;
        // SAFETY: waits for our own tracee; `status` is a live local.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if rc != pid || libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            return;
        }
        if libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == libc::SIGSTOP {
            // SAFETY: detaching our stopped tracee, no pointers.
            unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
            return;
        }
        // Another stop: continue it, swallowing SIGTRAP, passing anything else on.
        let sig = match libc::WSTOPSIG(status) {
            libc::SIGTRAP => 0,
            s => s,
        };
        // SAFETY: resuming our stopped tracee, no pointers.
        unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, sig) };
    }
    // SAFETY: as above.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
}

fn exe_grab(stop: &Path, out: &Path) {
    let mut grabbed: BTreeMap<String, OwnedFd> = BTreeMap::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut wrote = 0u64;
    let note = |errors: &mut BTreeMap<String, u64>, what: &str, e: String| {
        *errors.entry(format!("{what}:{e}")).or_insert(0) += 1;
    };
    while !stop.exists() {
        for pid in pids() {
            let path = format!("/proc/{pid}/exe");
            match rustix::fs::open(
                path.as_str(),
                OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => {
                    if rustix::io::pwrite(&fd, b"PWNED", 0).is_ok() {
                        wrote += 1;
                    }
                }
                Err(e) => note(&mut errors, "open-wronly", rx(e)),
            }
            match rustix::fs::open(path.as_str(), OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) {
                Ok(fd) => {
                    let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if foreign(&target) && !grabbed.contains_key(&target) {
                        grabbed.insert(target, fd);
                        // Progress for the test, which keeps exec'ing until something is held.
                        let _ = std::fs::write(
                            out.with_extension("grabbed"),
                            grabbed.len().to_string(),
                        );
                    }
                }
                Err(e) => note(&mut errors, "open-path", rx(e)),
            }
        }
    }
    // The runtime is gone now (the test says so by creating STOP): ETXTBSY no longer protects
    // its binary, only a sealed or read-only handle does.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut pending: Vec<&OwnedFd> = grabbed.values().collect();
    while !pending.is_empty() && Instant::now() < deadline {
        pending.retain(|fd| {
            let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
            match rustix::fs::open(p.as_str(), OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()) {
                Ok(w) => match rustix::io::pwrite(&w, b"PWNED", 0) {
                    Ok(n) if n > 0 => {
                        wrote += 1;
                        false
                    }
                    Ok(_) => true,
                    Err(e) => {
                        note(&mut errors, "write", rx(e));
                        false
                    }
                },
                Err(rustix::io::Errno::TXTBSY) => {
                    note(&mut errors, "reopen", "ETXTBSY".into());
                    true
                }
                Err(e) => {
                    note(&mut errors, "reopen", rx(e));
                    false
                }
            }
        });
        std::thread::sleep(Duration::from_millis(10));
    }
    let targets: Vec<String> = grabbed.keys().map(|t| escape(t)).collect();
    let errs: Vec<String> = errors.iter().map(|(k, n)| format!("{k}*{n}")).collect();
    report(
        out,
        &format!(
            "exe-grab grabbed={} wrote={wrote} targets={} errors={}",
            grabbed.len(),
            targets.join(","),
            errs.join(",")
        ),
    );
    std::process::exit(0);
}

fn ptys(max: usize, out: &Path, hold: bool) {
    let mut open = Vec::new();
    let mut err = "none".to_string();
    while open.len() < max {
        match rustix::fs::open(
            "/dev/ptmx",
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => open.push(fd),
            Err(e) => {
                err = rx(e);
                break;
            }
        }
    }
    report(out, &format!("ptys opened={} err={err}", open.len()));
    if hold {
        loop {
            // SAFETY: pause(2) has no preconditions.
            unsafe { libc::pause() };
        }
    }
    std::process::exit(0);
}

/// Puts `fd` at number `target`, not close-on-exec.
fn place(fd: OwnedFd, target: i32) {
    if fd.as_raw_fd() == target {
        std::mem::forget(fd);
    } else {
        // SAFETY: dup2 onto a number this process does not otherwise use (the caller picks fds
        // from 3 up in order); `fd` is open and is closed right after by its drop.
        let rc = unsafe { libc::dup2(fd.as_raw_fd(), target) };
        assert!(rc == target, "dup2 onto {target}");
    }
}

fn with_fds(preserve: usize, dirs: bool, prog: &str, rest: &[&str]) {
    use std::os::unix::process::CommandExt;
    let mut next = 3;
    for n in 0..preserve {
        let fd = if dirs {
            rustix::fs::open("/tmp", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
                .expect("open /tmp")
        } else {
            rustix::fs::memfd_create(
                format!("preserved-{}", 3 + n),
                rustix::fs::MemfdFlags::empty(),
            )
            .expect("memfd_create")
        };
        place(fd, next);
        next += 1;
    }
    let dir = rustix::fs::open("/tmp", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
        .expect("open /tmp");
    place(dir, next);
    let path = rustix::fs::open("/", OFlags::PATH, Mode::empty()).expect("open / O_PATH");
    place(path, next + 1);
    let (sock, _peer) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::empty(),
        None,
    )
    .expect("socketpair");
    place(sock, next + 2);
    let err = std::process::Command::new(prog).args(rest).exec();
    eprintln!("berth-attack with-fds: exec {prog}: {err}");
    std::process::exit(127);
}
