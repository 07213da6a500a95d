//! `berth-probe`: a tiny multi-call probe copied into test root filesystems as `/probe`.
//!
//! It is built statically (see `tests/itest/src/lib.rs` for the exact command) so that it runs
//! in a busybox-only rootfs. Every query prints exactly one machine-readable line
//! `NAME key=value key=value...` on stdout (values never contain spaces: they are escaped as
//! `\x20`), and exits 0; usage errors exit 2 with a message on stderr.
//!
//! ```text
//! isatty FD                        isatty fd=0 tty=1 | isatty fd=0 tty=0 err=ENOTTY
//! winsize                          winsize rows=R cols=C | winsize err=ENOTTY   (fd 0)
//! ttyname FD                       ttyname fd=0 name=/dev/pts/0 | ttyname fd=0 err=ENOTTY
//! ctty                             ctty pid=P sid=S pgrp=G tty_nr=N tpgid=T
//! fds                              fds 0=/dev/pts/0 1=pipe:[123] ...
//! tiocsti FD CHAR [--high-bits]    tiocsti result=ok | tiocsti result=EPERM
//! tioclinux FD [--high-bits]       tioclinux result=EINVAL
//! caps                             caps inh=HEX prm=HEX eff=HEX bnd=HEX amb=HEX
//! sleep-forever | pause            blocks forever (pause(2) in a loop)
//! write N                          N bytes of berth_helper::pattern to stdout, then exit 0
//! cat                              copies stdin to stdout raw until EOF or EIO
//! sig-wait [COUNT]                 "sig-wait ready pid=P", then "signal N" per signal received;
//!                                  exits 0 after COUNT signals (forever without COUNT)
//! exit CODE                        exits with CODE
//! syscall NR                       syscall NR with six zero arguments, raw (no libc
//!                                  rewriting): syscall nr=NR ret=R | syscall nr=NR err=ENOSYS
//! kill-self SIG                    kill(getpid(), SIG); as a pid namespace's init only SIGKILL
//!                                  from an ancestor namespace can kill it, so prefer a config
//!                                  without a pid namespace for that
//! ```
//!
//! `winsize` is measured before anything else in `main`, so it reports the size the process saw
//! at its first instruction.
#![allow(unsafe_code)]

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use berth_helper::{errno_name, pattern_byte};

fn main() {
    // First: the window size of fd 0, before argument parsing or anything else.
    let first_winsize = rustix::termios::tcgetwinsize(std::io::stdin().as_fd());

    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    match argv.as_slice() {
        ["isatty", fd] => {
            let fd = parse_fd(fd);
            match rustix::termios::tcgetattr(borrow(fd)) {
                Ok(_) => line(&format!("isatty fd={fd} tty=1")),
                Err(e) => line(&format!("isatty fd={fd} tty=0 err={}", name(e))),
            }
        }
        ["winsize"] => match first_winsize {
            Ok(ws) => line(&format!("winsize rows={} cols={}", ws.ws_row, ws.ws_col)),
            Err(e) => line(&format!("winsize err={}", name(e))),
        },
        ["ttyname", fd] => {
            let fd = parse_fd(fd);
            match rustix::termios::tcgetattr(borrow(fd)) {
                Ok(_) => {
                    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
                        .map(|p| escape(&p.to_string_lossy()))
                        .unwrap_or_else(|e| format!("?{e}"));
                    line(&format!("ttyname fd={fd} name={target}"));
                }
                Err(e) => line(&format!("ttyname fd={fd} err={}", name(e))),
            }
        }
        ["ctty"] => ctty(),
        ["fds"] => fds(),
        ["tiocsti", fd, ch] => tiocsti(parse_fd(fd), ch, false),
        ["tiocsti", fd, ch, "--high-bits"] => tiocsti(parse_fd(fd), ch, true),
        ["tioclinux", fd] => tioclinux(parse_fd(fd), false),
        ["tioclinux", fd, "--high-bits"] => tioclinux(parse_fd(fd), true),
        ["caps"] => caps(),
        ["sleep-forever"] | ["pause"] => loop {
            // SAFETY: pause(2) has no preconditions; it returns only after a caught signal.
            unsafe { libc::pause() };
        },
        ["write", n] => write_pattern(n.parse().unwrap_or_else(|_| usage("write N"))),
        ["cat"] => cat(),
        ["sig-wait"] => sig_wait(None),
        ["sig-wait", n] => sig_wait(Some(n.parse().unwrap_or_else(|_| usage("sig-wait COUNT")))),
        ["exit", code] => std::process::exit(code.parse().unwrap_or_else(|_| usage("exit CODE"))),
        ["kill-self", sig] => kill_self(sig),
        ["syscall", nr] => raw_syscall(nr.parse().unwrap_or_else(|_| usage("syscall NR"))),
        _ => usage("berth-probe SUBCOMMAND (see the module docs)"),
    }
}

fn usage(what: &str) -> ! {
    eprintln!("usage: {what}");
    std::process::exit(2)
}

fn parse_fd(s: &str) -> RawFd {
    s.parse().unwrap_or_else(|_| usage("FD must be a number"))
}

fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: the probe is single-threaded and never closes the fds it is asked about; a
    // closed or invalid fd number only makes the following syscall fail with EBADF.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn name(e: rustix::io::Errno) -> String {
    errno_name(e.raw_os_error())
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(' ', "\\x20")
        .replace('\n', "\\n")
}

/// Prints one line and flushes; exits quietly if stdout is gone.
fn line(s: &str) {
    let mut out = std::io::stdout().lock();
    if out
        .write_all(format!("{s}\n").as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(1);
    }
}

fn ctty() {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // The comm field is in parentheses and may contain spaces: split after the last ')'.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): ppid=4 pgrp=5 session=6 tty_nr=7 tpgid=8.
    line(&format!(
        "ctty pid={} sid={} pgrp={} tty_nr={} tpgid={}",
        std::process::id(),
        f[3],
        f[2],
        f[4],
        f[5]
    ));
}

fn fds() {
    let dir = rustix::fs::open(
        "/proc/self/fd",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .expect("open /proc/self/fd");
    let own = dir.as_raw_fd();
    let mut entries: Vec<(i32, String)> = Vec::new();
    for ent in rustix::fs::Dir::new(dir).expect("read /proc/self/fd") {
        let ent = ent.expect("readdir");
        let Ok(n) = ent.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if n == own {
            continue;
        }
        let target = std::fs::read_link(format!("/proc/self/fd/{n}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|e| format!("?{}", e.raw_os_error().map_or(0, |x| x)));
        entries.push((n, target));
    }
    entries.sort();
    let body: Vec<String> = entries
        .iter()
        .map(|(n, t)| format!("{n}={}", escape(t)))
        .collect();
    line(format!("fds {}", body.join(" ")).trim_end());
}

fn tiocsti(fd: RawFd, ch: &str, high_bits: bool) {
    let byte: u8 = *ch
        .as_bytes()
        .first()
        .unwrap_or_else(|| usage("tiocsti FD CHAR"));
    let mut request = libc::TIOCSTI as libc::c_ulong;
    if high_bits {
        // The kernel truncates the command to 32 bits; filters comparing 64 bits may not.
        request |= 0xffff_ffff_0000_0000;
    }
    // SAFETY: TIOCSTI reads one byte through the pointer, which points at a live local.
    let rc = unsafe { libc::ioctl(fd, request, &byte as *const u8) };
    report("tiocsti", rc);
}

fn tioclinux(fd: RawFd, high_bits: bool) {
    // TIOCL_PASTESEL = 3: paste the console selection. The argument is a byte with the subcode.
    let mut sub: [u8; 1] = [3];
    let mut request = libc::TIOCLINUX as libc::c_ulong;
    if high_bits {
        request |= 0xffff_ffff_0000_0000;
    }
    // SAFETY: TIOCLINUX reads (and for some subcodes writes) bytes at the pointer; the buffer
    // is a live local of the size the subcode uses.
    let rc = unsafe { libc::ioctl(fd, request, sub.as_mut_ptr()) };
    report("tioclinux", rc);
}

fn report(what: &str, rc: libc::c_int) {
    if rc == 0 {
        line(&format!("{what} result=ok"));
    } else {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        line(&format!("{what} result={}", errno_name(errno)));
    }
}

fn caps() {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let get = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| "?".into())
    };
    line(&format!(
        "caps inh={} prm={} eff={} bnd={} amb={}",
        get("CapInh:"),
        get("CapPrm:"),
        get("CapEff:"),
        get("CapBnd:"),
        get("CapAmb:")
    ));
}

fn write_all_fd(fd: BorrowedFd<'_>, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        match rustix::io::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
    true
}

fn write_pattern(n: usize) {
    let out = std::io::stdout();
    let fd = out.as_fd();
    let mut chunk = Vec::with_capacity(64 * 1024);
    let mut i = 0;
    while i < n {
        chunk.clear();
        let end = (i + 64 * 1024).min(n);
        chunk.extend((i..end).map(pattern_byte));
        if !write_all_fd(fd, &chunk) {
            std::process::exit(1);
        }
        i = end;
    }
    std::process::exit(0);
}

fn cat() {
    let mut input = std::io::stdin().lock();
    let out = std::io::stdout();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match input.read(&mut buf) {
            Ok(0) => std::process::exit(0),
            Ok(n) => {
                if !write_all_fd(out.as_fd(), &buf[..n]) {
                    std::process::exit(1);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // EIO: the terminal hung up, which is end of input for a pty.
            Err(_) => std::process::exit(0),
        }
    }
}

fn sig_wait(count: Option<u64>) {
    // SAFETY: sigset_t is plain data; sigfillset initialises it fully before use, and
    // sigprocmask/sigwaitinfo only read/write the locals passed. The probe is single-threaded,
    // so blocking in this thread blocks the signals for the whole process.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        line(&format!("sig-wait ready pid={}", std::process::id()));
        let mut seen = 0u64;
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let sig = libc::sigwaitinfo(&set, &mut info);
            if sig < 0 {
                continue;
            }
            line(&format!("signal {sig}"));
            seen += 1;
            if count.is_some_and(|c| seen >= c) {
                std::process::exit(0);
            }
        }
    }
}

fn kill_self(sig: &str) {
    let sig: libc::c_int = sig.parse().unwrap_or_else(|_| usage("kill-self SIGNUM"));
    let _ = std::io::stdout().flush();
    // SAFETY: kill(2) on our own pid with a caller-chosen signal number; no memory involved.
    let rc = unsafe { libc::kill(libc::getpid(), sig) };
    if rc != 0 {
        report("kill-self", rc);
        std::process::exit(1);
    }
    // A handled-by-default fatal signal does not return; an ignored one (pid namespace init)
    // does: say so and fail.
    std::thread::sleep(std::time::Duration::from_millis(200));
    line("kill-self result=survived");
    std::process::exit(1);
}

fn raw_syscall(nr: libc::c_long) {
    // SAFETY: the test only passes numbers no kernel implements (or that take zeroes
    // harmlessly); zero arguments point at nothing.
    let ret = unsafe { libc::syscall(nr, 0, 0, 0, 0, 0, 0) };
    if ret == -1 {
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        println!("syscall nr={nr} err={}", errno_name(e));
    } else {
        println!("syscall nr={nr} ret={ret}");
    }
}
