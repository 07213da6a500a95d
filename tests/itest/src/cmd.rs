//! Running processes with a watchdog.
//!
//! Every wait in the suite has a deadline: [`Cmd::run`] and [`Running::wait`] kill the process
//! (and its process group) when the deadline passes and fail the test with the command line and
//! whatever it printed so far. Captured stdout/stderr are pumped by one thread per process with
//! `poll` on the pipes and a pidfd, so a daemonised grandchild that inherited the pipe (for
//! example the container of `run -d`) cannot make the wait hang: once the process itself has
//! exited, the pipes are drained of what is already in them and the result is returned.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

/// Default deadline for one command (runtime verbs are expected to take well under a second).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Where a child's stdin comes from.
#[derive(Debug)]
pub enum Input {
    /// `/dev/null`.
    Null,
    /// These bytes through a pipe, then EOF.
    Bytes(Vec<u8>),
    /// This fd (a pty peer, a file...).
    Fd(OwnedFd),
    /// A pipe kept open by the test (see [`Running::take_stdin`]).
    Pipe,
}

/// Where a child's stdout or stderr goes.
#[derive(Debug)]
pub enum Sink {
    /// Captured into [`Output`].
    Capture,
    /// `/dev/null`.
    Null,
    /// This fd.
    Fd(OwnedFd),
}

/// A command to run with a watchdog; built by [`Cmd::new`] or by `Runtime::cmd`.
pub struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    label: String,
    stdin: Input,
    stdout: Sink,
    stderr: Sink,
    timeout: Duration,
    ctty: bool,
    ignored: Vec<i32>,
    env: Vec<(OsString, OsString)>,
    env_remove: Vec<OsString>,
    cwd: Option<PathBuf>,
    stderr_filter: Option<fn(Vec<u8>) -> Vec<u8>>,
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cmd({})", self.label)
    }
}

fn shell_word(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

impl Cmd {
    /// A command running `program`, stdin `/dev/null`, stdout and stderr captured,
    /// [`DEFAULT_TIMEOUT`].
    pub fn new(program: impl AsRef<Path>) -> Self {
        let program = program.as_ref().to_path_buf();
        Self {
            label: shell_word(program.as_os_str()),
            program,
            args: Vec::new(),
            stdin: Input::Null,
            stdout: Sink::Capture,
            stderr: Sink::Capture,
            timeout: DEFAULT_TIMEOUT,
            ctty: false,
            ignored: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            cwd: None,
            stderr_filter: None,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.label.push(' ');
        self.label.push_str(&shell_word(a.as_ref()));
        self.args.push(a.as_ref().to_os_string());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    /// Sets stdin.
    pub fn stdin(mut self, input: Input) -> Self {
        self.stdin = input;
        self
    }

    /// Feeds these bytes on stdin, then EOF.
    pub fn stdin_bytes(self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin(Input::Bytes(bytes.into()))
    }

    /// Sets stdout.
    pub fn stdout(mut self, sink: Sink) -> Self {
        self.stdout = sink;
        self
    }

    /// Sets stderr.
    pub fn stderr(mut self, sink: Sink) -> Self {
        self.stderr = sink;
        self
    }

    /// Sets the watchdog deadline.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_os_string(), v.as_ref().to_os_string()));
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.env_remove.push(k.as_ref().to_os_string());
        self
    }

    /// Sets the working directory.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Starts the child in a new session and makes the first of its fds 0, 1, 2 that is a
    /// terminal its controlling terminal (`setsid` + `TIOCSCTTY`). Without this the child gets a
    /// process group of its own (so the watchdog can kill the whole group).
    pub fn controlling_tty(mut self, yes: bool) -> Self {
        self.ctty = yes;
        self
    }

    /// Starts the child with `signals` ignored (`SIG_IGN`, which survives `execve`), handed on
    /// the way `nohup` or a shell's `trap '' SIG` does: `/bin/sh` sets them, then execs the
    /// command (the pid stays the command's).
    pub fn ignoring_signals(mut self, signals: &[i32]) -> Self {
        self.ignored.extend_from_slice(signals);
        self
    }

    /// Post-processes captured stderr (used to drop wrapper noise).
    pub fn stderr_filter(mut self, f: fn(Vec<u8>) -> Vec<u8>) -> Self {
        self.stderr_filter = Some(f);
        self
    }

    /// The printable command line.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs to completion (or the watchdog) and returns the result; panics on timeout.
    pub fn run(self) -> Output {
        self.spawn().wait()
    }

    /// Runs and asserts exit status 0.
    pub fn ok(self) -> Output {
        self.run().assert_ok()
    }

    /// Runs and asserts a non-zero exit status (not a timeout, not a signal).
    pub fn fails(self) -> Output {
        self.run().assert_fail()
    }

    /// Starts the process; the watchdog starts now.
    pub fn spawn(self) -> Running {
        let mut c = if self.ignored.is_empty() {
            Command::new(&self.program)
        } else {
            let numbers: Vec<String> = self.ignored.iter().map(i32::to_string).collect();
            let mut c = Command::new("/bin/sh");
            c.arg("-c")
                .arg(format!("trap '' {}; exec \"$@\"", numbers.join(" ")))
                .arg("sh")
                .arg(&self.program);
            c
        };
        c.args(&self.args);
        for k in &self.env_remove {
            c.env_remove(k);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        let mut bytes = None;
        c.stdin(match self.stdin {
            Input::Null => Stdio::null(),
            Input::Bytes(b) => {
                bytes = Some(b);
                Stdio::piped()
            }
            Input::Fd(fd) => Stdio::from(fd),
            Input::Pipe => Stdio::piped(),
        });
        let sink = |s: Sink| match s {
            Sink::Capture => Stdio::piped(),
            Sink::Null => Stdio::null(),
            Sink::Fd(fd) => Stdio::from(fd),
        };
        c.stdout(sink(self.stdout));
        c.stderr(sink(self.stderr));
        if self.ctty {
            crate::pty::set_controlling_tty_on_exec(&mut c);
        } else {
            c.process_group(0);
        }
        let started = Instant::now();
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("spawn `{}`: {e}", self.label));
        drop(c);
        let pid = child.id();
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_child(&child),
            rustix::process::PidfdFlags::empty(),
        )
        .unwrap_or_else(|e| panic!("pidfd_open for `{}`: {e}", self.label));
        let signal_fd = pidfd.try_clone().expect("dup pidfd");
        let mut stdin = child.stdin.take();
        // Only `Input::Bytes` hands the pipe to a writer thread; `Input::Pipe` keeps it for
        // `Running::take_stdin`.
        if let Some(b) = bytes {
            if let Some(mut w) = stdin.take() {
                std::thread::spawn(move || {
                    let _ = w.write_all(&b);
                });
            }
        }
        let out = child.stdout.take().map(OwnedFd::from);
        let err = child.stderr.take().map(OwnedFd::from);
        let (tx, rx) = mpsc::channel();
        let label = self.label.clone();
        let deadline = started + self.timeout;
        let filter = self.stderr_filter;
        std::thread::spawn(move || {
            let mut o = pump(child, pidfd, out, err, deadline, label);
            o.elapsed = started.elapsed();
            if let Some(f) = filter {
                o.stderr = f(std::mem::take(&mut o.stderr));
            }
            let _ = tx.send(o);
        });
        Running {
            pid,
            label: self.label,
            rx,
            pidfd: signal_fd,
            stdin,
            timeout: self.timeout,
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) {
    let fl = rustix::fs::fcntl_getfl(fd).expect("F_GETFL");
    rustix::fs::fcntl_setfl(fd, fl | rustix::fs::OFlags::NONBLOCK).expect("F_SETFL");
}

/// Reads what is available; returns false at EOF or error.
fn read_available(fd: &OwnedFd, into: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 16384];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return false,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::AGAIN) => return true,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
}

fn pump(
    mut child: std::process::Child,
    pidfd: OwnedFd,
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    deadline: Instant,
    label: String,
) -> Output {
    let mut pipes: Vec<(OwnedFd, usize)> = Vec::new();
    if let Some(fd) = out {
        pipes.push((fd, 0));
    }
    if let Some(fd) = err {
        pipes.push((fd, 1));
    }
    for (fd, _) in &pipes {
        set_nonblocking(fd);
    }
    let mut bufs = [Vec::new(), Vec::new()];
    let mut timed_out = false;
    loop {
        let now = Instant::now();
        if !timed_out && now >= deadline {
            timed_out = true;
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            let _ = child.kill();
        }
        let wait = if timed_out {
            Duration::from_millis(100)
        } else {
            (deadline - now).min(Duration::from_millis(500))
        };
        let ts = rustix::time::Timespec {
            tv_sec: wait.as_secs() as _,
            tv_nsec: wait.subsec_nanos() as _,
        };
        let mut pfds: Vec<PollFd<'_>> = pipes
            .iter()
            .map(|(fd, _)| PollFd::new(fd, PollFlags::IN))
            .collect();
        pfds.push(PollFd::new(&pidfd, PollFlags::IN));
        match rustix::event::poll(&mut pfds, Some(&ts)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => panic!("poll for `{label}`: {e}"),
        }
        let exited = !pfds.last().expect("pidfd").revents().is_empty();
        let ready: Vec<bool> = pfds.iter().map(|p| !p.revents().is_empty()).collect();
        drop(pfds);
        let mut keep = Vec::new();
        for (i, (fd, which)) in pipes.drain(..).enumerate() {
            if (ready[i] || exited) && !read_available(&fd, &mut bufs[which]) {
                continue;
            }
            keep.push((fd, which));
        }
        pipes = keep;
        if exited {
            break;
        }
    }
    let status = child.wait().ok();
    let [stdout, stderr] = bufs;
    Output {
        label,
        status,
        stdout,
        stderr,
        timed_out,
        elapsed: Duration::ZERO,
    }
}

/// A process started by [`Cmd::spawn`].
#[derive(Debug)]
pub struct Running {
    pid: u32,
    label: String,
    rx: mpsc::Receiver<Output>,
    pidfd: OwnedFd,
    stdin: Option<std::process::ChildStdin>,
    timeout: Duration,
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The printable command line.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The write end of the stdin pipe when started with [`Input::Pipe`] (once).
    pub fn take_stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.stdin.take()
    }

    /// Sends a signal (through the pidfd, so never to a recycled pid).
    pub fn signal(&self, sig: rustix::process::Signal) {
        let _ = rustix::process::pidfd_send_signal(&self.pidfd, sig);
    }

    /// True while the process has not exited.
    pub fn is_running(&self) -> bool {
        let mut p = [PollFd::new(&self.pidfd, PollFlags::IN)];
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        matches!(rustix::event::poll(&mut p, Some(&zero)), Ok(0))
    }

    /// Waits for exit (the watchdog set at spawn applies); panics if the watchdog fired.
    pub fn wait(self) -> Output {
        let o = self.wait_unchecked();
        if o.timed_out {
            panic!("watchdog: {o}");
        }
        o
    }

    /// Waits for exit and returns the result even if the watchdog killed the process.
    pub fn wait_unchecked(self) -> Output {
        // The pump thread always finishes shortly after the deadline.
        self.rx
            .recv_timeout(self.timeout + Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("watchdog: lost track of `{}`", self.label))
    }

    /// Waits at most `d`; `Err(self)` if still running then.
    pub fn wait_for(self, d: Duration) -> Result<Output, Self> {
        let mut p = [PollFd::new(&self.pidfd, PollFlags::IN)];
        let ts = rustix::time::Timespec {
            tv_sec: d.as_secs() as _,
            tv_nsec: d.subsec_nanos() as _,
        };
        loop {
            match rustix::event::poll(&mut p, Some(&ts)) {
                Err(rustix::io::Errno::INTR) => continue,
                Ok(0) => return Err(self),
                _ => break,
            }
        }
        Ok(self.wait())
    }

    /// SIGKILLs the process and its process group, then reaps it.
    pub fn kill(self) -> Output {
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_raw(self.pid as i32).expect("pid"),
            rustix::process::Signal::KILL,
        );
        self.signal(rustix::process::Signal::KILL);
        self.wait_unchecked()
    }
}

/// What a finished process did.
#[derive(Debug, Clone)]
pub struct Output {
    /// The printable command line.
    pub label: String,
    /// The exit status (`None` only if reaping failed).
    pub status: Option<ExitStatus>,
    /// Captured stdout.
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
    /// The watchdog killed it.
    pub timed_out: bool,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

impl Output {
    /// The exit code, if it exited normally.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// The terminating signal, if killed by one.
    pub fn signal(&self) -> Option<i32> {
        self.status.and_then(|s| s.signal())
    }

    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code() == Some(0)
    }

    /// stdout as (lossy) UTF-8.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as (lossy) UTF-8.
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Panics (with the whole report) unless the exit code is 0.
    #[track_caller]
    pub fn assert_ok(self) -> Self {
        assert!(self.success(), "expected success: {self}");
        self
    }

    /// Panics unless the process exited (not killed) with a non-zero code.
    #[track_caller]
    pub fn assert_fail(self) -> Self {
        assert!(
            matches!(self.code(), Some(c) if c != 0),
            "expected a failure exit: {self}"
        );
        self
    }

    /// Panics unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(self, code: i32) -> Self {
        assert_eq!(self.code(), Some(code), "expected exit code {code}: {self}");
        self
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.timed_out {
            format!("was still running after {:.1?}; killed", self.elapsed)
        } else {
            match (self.code(), self.signal()) {
                (Some(c), _) => format!("exited {c} after {:.1?}", self.elapsed),
                (_, Some(s)) => format!("was killed by signal {s} after {:.1?}", self.elapsed),
                _ => "has an unknown status".into(),
            }
        };
        write!(
            f,
            "`{}` {how}\n--- stdout ---\n{}\n--- stderr ---\n{}\n---",
            self.label,
            String::from_utf8_lossy(&self.stdout).trim_end(),
            String::from_utf8_lossy(&self.stderr).trim_end()
        )
    }
}

/// Polls `f` every 10-100 ms until it returns `Some`, or panics after `timeout` with `what`.
#[track_caller]
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("watchdog: {what}: not reached within {timeout:?}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Whether `fd` is readable within `d` (a small helper for tests polling masters).
pub fn readable_within(fd: impl AsFd, d: Duration) -> bool {
    let mut p = [PollFd::new(&fd, PollFlags::IN)];
    let ts = rustix::time::Timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    };
    matches!(rustix::event::poll(&mut p, Some(&ts)), Ok(n) if n > 0)
}
