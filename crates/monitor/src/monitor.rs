//! The monitor process: one single-threaded epoll loop per container.
//!
//! # Order of operations
//! 1. [`Monitor::prepare`] (before the caller forks into the background): make
//!    `<root>/@monitor/<id>/` (0700; `@` cannot be in a container id, so `list` never sees it),
//!    refuse if a live monitor or the container already exists, bind `attach.sock` (the
//!    protocol, `SOCK_SEQPACKET`) and `console.sock` (runc's console-socket protocol), read the
//!    bundle (and write the terminal overlay if needed).
//! 2. [`Monitor::run`] (in the background process): become a child subreaper (the container's
//!    init, forked by the runtime, becomes our child when the runtime exits), read `SIGCHLD`,
//!    `SIGTERM`, `SIGINT`, `SIGHUP`, `SIGQUIT` from a signalfd, and run `<runtime> create
//!    --console-socket console.sock --pid-file init.pid`. Clients may attach from now on (a
//!    resize before the pty exists is queued).
//! 3. Masters arrive on `console.sock` (the console, then `/dev/ttyN` for extra ttys): each is
//!    checked (`TIOCGPTN`, char 5:2), made non-blocking, sized (clients' policy, else the size the
//!    runtime gave it from `consoleSize`, else `--size`, else 24x80: never 0x0), registered
//!    edge-triggered.
//! 4. When `create` exits: the init's pid from the pid file; with `--start`, `<runtime> start`.
//!    Then "ready" goes to whoever started the monitor; failures go there too, after the
//!    container is deleted.
//! 5. The loop: masters are read as soon as readable (into ring and logs first), clients are
//!    pumped from the ring, input flows to the masters, children are reaped. Exec sessions run
//!    `<runtime> exec -d -t --console-socket exec-N.sock -p exec-N.json`. A client is closed
//!    when it detaches, breaks the protocol, hangs up, or a send to it fails; in the last case
//!    the frames it sent before it went (input, a resize, its detach) are still carried out.
//! 6. When the init has exited, its output is drained and `<root>/<id>` (the runtime's state)
//!    is gone (`delete`), the monitor removes its directory and exits.
//!
//! # If the monitor dies
//! Decision (security.md M-06, option a): the masters die with the monitor. The kernel then
//! hangs up the terminals: the container's init (a session leader with the console as its
//! controlling terminal) gets `SIGHUP` and `SIGCONT`, and later writes to the console fail with
//! `EIO`. A shell exits; a program that ignores `SIGHUP` keeps running without a terminal. The
//! init is reparented (to the next subreaper or pid 1) and reaped there; `state` and `delete`
//! work as for any container, and `berth delete` removes the dead monitor's directory. Nothing
//! is kept alive to hold a master without a reader. `SIGTERM` to the monitor is the same, done
//! cleanly: clients get an error frame, logs are flushed, the directory stays for `logs`.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_proto::{
    DetachKeys, ErrorCode, ExitCode, Frame, Hello, ReplayKind, Role, Scan, Scanner, Start, Target,
};
use berth_sys::signal::{SigSet, SignalFd};
use berth_tty::{ConsoleListener, PollingWait, Winsize};
use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::client::{self, Client, DirectKeys, DirectOut, InputPath, Phase, Pumped, State};
use crate::clock;
use crate::config::{Config, Settings, SizePolicy, TTY_MAX};
use crate::error::MonitorError;
use crate::logs::{Cast, CriLog};
use crate::rotate::{Limits, Rotating};
use crate::runtime::{self, BundleInfo};
use crate::sock;
use crate::term::{self, Kind, Term};

/// The directory under the runtime root that holds monitors.
pub const MONITOR_DIR: &str = "@monitor";
/// Seconds a connection may wait before its first frame.
const HANDSHAKE_SECS: f64 = 10.0;
/// Bytes read from one master per loop turn before clients are served.
const READ_BUDGET: usize = 256 * 1024;
/// Bytes of screen backlog parsed per idle turn.
const PARSE_SLICE: usize = 16 * 1024;
/// Frames read from a client whose connection is closed after a failed send (see
/// `take_last_frames`).
const LAST_FRAMES: usize = 64;
/// Exec sessions kept; the oldest finished ones are forgotten beyond this.
const MAX_EXEC_SESSIONS: usize = 64;
/// Most clients at once.
const MAX_CLIENTS: usize = 4096;
/// Buffered log bytes are written at the latest this long after the first of them.
const LOG_FLUSH: f64 = 0.02;
/// A read of at least this many bytes means bulk output: clients are sent to in larger frames.
const BULK_READ: usize = 2048;
/// Bulk output is gathered for a client up to this many bytes…
const COALESCE_BYTES: u64 = 60 * 1024;
/// …or this long.
const COALESCE_SECS: f64 = 0.004;
/// The read buffer for masters and client packets: above glibc's mmap threshold (128 KiB), so
/// it is mapped on demand and an idle monitor never touches most of it.
const SCRATCH: usize = 128 * 1024;
/// The most bytes of a client's keys read at once (the terminal's input queue takes them).
const KEYS_READ: usize = 4096;

const T_SIGNAL: u64 = 1;
const T_ATTACH: u64 = 2;
const T_CONSOLE: u64 = 3;
const T_CONN: u64 = 4;
const T_MASTER: u64 = 5;
const T_CLIENT: u64 = 6;
const T_EXEC_LISTEN: u64 = 7;
const T_CLIENT_OUT: u64 = 8;
const T_CLIENT_KEYS: u64 = 9;

fn token(kind: u64, n: u64) -> EventData {
    EventData::new_u64(kind << 32 | n)
}

/// A runtime command the monitor waits for.
#[derive(Debug)]
enum JobKind {
    Create,
    Start,
    Exec { seq: u32 },
    Delete,
}

#[derive(Debug)]
struct Job {
    kind: JobKind,
    output: String,
}

/// An exec session whose runtime command has not finished.
#[derive(Debug)]
struct PendingExec {
    listener: ConsoleListener,
    master: Option<OwnedFd>,
    requester: u32,
    size: Winsize,
    json: String,
}

/// A console-socket connection delivering masters.
#[derive(Debug)]
struct Conn {
    fd: OwnedFd,
    /// `None`: the container's `console.sock` (console and ttys); `Some(seq)`: an exec session.
    exec: Option<u32>,
}

/// Where the container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Creating,
    Starting,
    Ready,
    /// Failed before ready: deleting the container, then exit 1.
    Failing,
}

/// The monitor.
pub struct Monitor {
    cfg: Config,
    settings: Settings,
    bundle: BundleInfo,
    root: OwnedFd,
    dir: OwnedFd,
    dir_path: PathBuf,
    epoll: Option<OwnedFd>,
    signals: Option<SignalFd>,
    attach: OwnedFd,
    console: Option<ConsoleListener>,
    conns: HashMap<u32, Conn>,
    next_conn: u32,
    terms: Vec<Option<Term>>,
    clients: HashMap<u32, Client>,
    next_client: u32,
    jobs: HashMap<i32, Job>,
    unclaimed: HashMap<i32, ExitCode>,
    pending_exec: HashMap<u32, PendingExec>,
    exec_seq: u32,
    life: Life,
    failure: Option<String>,
    ready: Option<OwnedFd>,
    size_seq: u64,
    scratch: Vec<u8>,
    recv_buf: Vec<u8>,
    reserve: Option<OwnedFd>,
    idle_parse: bool,
    quit: Option<i32>,
    last_state_check: f64,
    euid: u32,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("id", &self.cfg.id)
            .field("dir", &self.dir_path)
            .finish()
    }
}

fn open_dir(path: &Path) -> Result<OwnedFd, MonitorError> {
    rustix::fs::open(
        path,
        OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::RDONLY,
        Mode::empty(),
    )
    .map_err(|e| MonitorError::sys("open", path.display(), e))
}

fn mkdir_private(path: &Path) -> Result<(), MonitorError> {
    match rustix::fs::mkdir(path, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(MonitorError::sys("mkdir", path.display(), e)),
    }
    let st = rustix::fs::lstat(path).map_err(|e| MonitorError::sys("stat", path.display(), e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(MonitorError::Usage(format!(
            "{}: not a directory",
            path.display()
        )));
    }
    if st.st_uid != rustix::process::geteuid().as_raw() {
        return Err(MonitorError::Usage(format!(
            "{}: owned by uid {}, not by this user",
            path.display(),
            st.st_uid
        )));
    }
    rustix::fs::chmod(path, Mode::from_raw_mode(0o700))
        .map_err(|e| MonitorError::sys("chmod", path.display(), e))?;
    Ok(())
}

/// Removes every entry of the (flat, plus `bundle/`) monitor directory, then the directory.
fn remove_monitor_dir(dir: BorrowedFd<'_>, path: &Path) {
    fn clear(dir: BorrowedFd<'_>) {
        let Ok(d) = rustix::fs::openat(
            dir,
            ".",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return;
        };
        let Ok(mut rd) = rustix::fs::Dir::read_from(&d) else {
            return;
        };
        let mut names = Vec::new();
        while let Some(Ok(e)) = rd.read() {
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push((e.file_name().to_owned(), e.file_type()));
            }
        }
        for (n, t) in names {
            if t == rustix::fs::FileType::Directory {
                if let Ok(sub) = rustix::fs::openat(
                    dir,
                    n.as_c_str(),
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                ) {
                    clear(sub.as_fd());
                }
                let _ = rustix::fs::unlinkat(dir, n.as_c_str(), AtFlags::REMOVEDIR);
            } else {
                let _ = rustix::fs::unlinkat(dir, n.as_c_str(), AtFlags::empty());
            }
        }
    }
    clear(dir);
    if std::fs::remove_dir(path).is_ok() {
        // The last monitor of this root takes `@monitor` with it (ENOTEMPTY otherwise).
        if let Some(parent) = path.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// The monitor directory of container `id` under runtime root `root`.
pub fn monitor_dir(root: &Path, id: &str) -> PathBuf {
    root.join(MONITOR_DIR).join(id)
}

fn read_pid_file(dir: BorrowedFd<'_>, name: &str) -> Option<i32> {
    let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut buf = [0u8; 32];
    let n = rustix::io::read(&fd, &mut buf).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

fn write_file(dir: BorrowedFd<'_>, name: &str, data: &[u8]) -> Result<(), MonitorError> {
    let tmp = format!(".{name}.tmp");
    let fd = rustix::fs::openat(
        dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| MonitorError::sys("create", name, e))?;
    let mut at = 0;
    while at < data.len() {
        at +=
            rustix::io::write(&fd, &data[at..]).map_err(|e| MonitorError::sys("write", name, e))?;
    }
    rustix::fs::renameat(dir, tmp.as_str(), dir, name)
        .map_err(|e| MonitorError::sys("rename", name, e))
}

fn exit_of(status: rustix::process::WaitStatus) -> Option<ExitCode> {
    if let Some(c) = status.exit_status() {
        Some(ExitCode::Exited(c))
    } else {
        status.terminating_signal().map(ExitCode::Signaled)
    }
}

/// How many descriptors `bytes` may bring: a `Hello` asking for direct output one (its
/// output), and for direct keys too two (then its input); anything else none.
fn hello_fds(bytes: &[u8]) -> usize {
    match Frame::decode(bytes) {
        Ok(Frame::Hello(h)) if h.direct_output => 1 + usize::from(h.direct_keys.is_some()),
        _ => 0,
    }
}

/// A private non-blocking description of a client's terminal or pipe `fd` (its own stays as
/// it was), registered in `ep` under `data`: for writing with no interest yet (`EPOLLOUT` is
/// armed when it fills), for reading with `EPOLLIN`. `None` when it cannot be reopened (a
/// socket, a file) or registered.
fn adopt(ep: BorrowedFd<'_>, fd: &OwnedFd, write: bool, data: EventData) -> Option<OwnedFd> {
    let own = berth_tty::reopen_private(fd.as_fd(), write)?;
    let interest = if write {
        EventFlags::empty()
    } else {
        EventFlags::IN
    };
    epoll::add(ep, &own, data, interest).ok()?;
    Some(own)
}

fn client_events(c: &Client) -> EventFlags {
    let mut f = EventFlags::RDHUP;
    if !c.in_paused {
        f |= EventFlags::IN;
    }
    if c.out_armed {
        f |= EventFlags::OUT;
    }
    f
}

impl Monitor {
    /// Step 1 (see the module docs). Errors name what is wrong; nothing is left behind on
    /// error except a directory this call found already there.
    pub fn prepare(cfg: Config) -> Result<Monitor, MonitorError> {
        if cfg.id.is_empty()
            || cfg.id.contains('/')
            || cfg.id.starts_with('.')
            || cfg.id.contains('@')
        {
            return Err(MonitorError::Usage(format!(
                "container id {:?}: not a valid id",
                cfg.id
            )));
        }
        let bundle = std::fs::canonicalize(&cfg.bundle)
            .map_err(|e| MonitorError::sys("open bundle", cfg.bundle.display(), e))?;
        if !cfg.root.exists() {
            std::fs::create_dir_all(&cfg.root)
                .map_err(|e| MonitorError::sys("mkdir", cfg.root.display(), e))?;
            let _ = rustix::fs::chmod(&cfg.root, Mode::from_raw_mode(0o700));
        }
        let root_path = std::fs::canonicalize(&cfg.root)
            .map_err(|e| MonitorError::sys("open", cfg.root.display(), e))?;
        let root = open_dir(&root_path)?;
        if rustix::fs::statat(&root, cfg.id.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok() {
            return Err(MonitorError::Usage(format!(
                "container with id exists: {}",
                cfg.id
            )));
        }
        let dir_path = monitor_dir(&root_path, &cfg.id);
        let mut tries = 0;
        let fresh = loop {
            mkdir_private(&root_path.join(MONITOR_DIR))?;
            match rustix::fs::mkdir(&dir_path, Mode::from_raw_mode(0o700)) {
                Ok(()) => break true,
                Err(Errno::EXIST) => break false,
                // Another root's last monitor removed `@monitor` just now: make it again.
                Err(Errno::NOENT) if tries < 5 => tries += 1,
                Err(e) => return Err(MonitorError::sys("mkdir", dir_path.display(), e)),
            }
        };
        mkdir_private(&dir_path)?;
        let dir = open_dir(&dir_path)?;
        if !fresh {
            // A monitor that still answers owns it; otherwise it is a dead monitor's leftovers.
            if sock::connect_seqpacket(dir.as_fd(), "attach.sock").is_ok() {
                return Err(MonitorError::Usage(format!(
                    "a console monitor for container {} is already running",
                    cfg.id
                )));
            }
            remove_monitor_dir(dir.as_fd(), Path::new("/nonexistent"));
        }
        let result = Self::prepare_in(cfg, bundle, root, dir, dir_path.clone());
        if result.is_err() {
            if let Ok(d) = open_dir(&dir_path) {
                remove_monitor_dir(d.as_fd(), &dir_path);
            }
        }
        result
    }

    fn prepare_in(
        cfg: Config,
        bundle: PathBuf,
        root: OwnedFd,
        dir: OwnedFd,
        dir_path: PathBuf,
    ) -> Result<Monitor, MonitorError> {
        let info = runtime::load_bundle(&bundle, &dir_path.join("bundle"))?;
        let settings = cfg.settings(&info.annotations)?;
        let ttys: u16 = match info.annotations.get(TTY_MAX) {
            None => 0,
            Some(v) => v.parse().ok().filter(|n| *n <= 63).ok_or_else(|| {
                MonitorError::Usage(format!(
                    "annotations[{TTY_MAX:?}]: {v:?} is not a number from 0 to 63"
                ))
            })?,
        };
        let attach = sock::listen_seqpacket(dir.as_fd(), "attach.sock")?;
        let console = ConsoleListener::bind(Path::new(&sock::path_in(dir.as_fd(), "console.sock")))
            .map_err(|e| MonitorError::tty("console socket", e))?;
        set_nonblocking(console.as_fd())?;
        let default_size = match info.console_size {
            Some((h, w)) => Winsize::new(
                h.min(u64::from(term::MAX_DIMENSION)) as u16,
                w.min(u64::from(term::MAX_DIMENSION)) as u16,
            ),
            None => cfg.size.unwrap_or(Winsize::DEFAULT),
        };
        let mut m = Monitor {
            cfg,
            settings,
            bundle: info,
            root,
            dir,
            dir_path,
            epoll: None,
            signals: None,
            attach,
            console: Some(console),
            conns: HashMap::new(),
            next_conn: 1,
            terms: Vec::new(),
            clients: HashMap::new(),
            next_client: 1,
            jobs: HashMap::new(),
            unclaimed: HashMap::new(),
            pending_exec: HashMap::new(),
            exec_seq: 0,
            life: Life::Creating,
            failure: None,
            ready: None,
            size_seq: 0,
            // Large enough that malloc maps them: untouched pages cost nothing.
            scratch: vec![0u8; SCRATCH],
            recv_buf: vec![0u8; SCRATCH.max(sock::RECV_BUF)],
            reserve: None,
            idle_parse: false,
            quit: None,
            last_state_check: 0.0,
            euid: rustix::process::geteuid().as_raw(),
        };
        m.new_term("console", Kind::Console, "console", default_size)?;
        for n in 1..=ttys {
            m.new_term(
                &format!("tty{n}"),
                Kind::Tty(n),
                &format!("tty{n}"),
                default_size,
            )?;
        }
        Ok(m)
    }

    /// The monitor directory.
    pub fn dir_path(&self) -> &Path {
        &self.dir_path
    }

    fn new_term(
        &mut self,
        name: &str,
        kind: Kind,
        file: &str,
        size: Winsize,
    ) -> Result<usize, MonitorError> {
        let limits = Limits {
            max_size: self.settings.log_max_size,
            max_files: self.settings.log_max_files,
        };
        let raw = Rotating::open(self.dir.as_fd(), &format!("{file}.log"), limits)?;
        let mut t = Term::new(name, kind, self.settings.ring_size, raw, size);
        if self.settings.cri_log {
            t.cri = Some(CriLog::open(
                self.dir.as_fd(),
                &format!("{file}.cri.log"),
                limits,
            )?);
        }
        if self.settings.record {
            t.cast = Some(Cast::create(
                self.dir.as_fd(),
                &format!("{file}.cast"),
                size.rows,
                size.cols,
                &self.bundle.term_env,
            )?);
        }
        self.terms.push(Some(t));
        Ok(self.terms.len() - 1)
    }

    fn epoll(&self) -> BorrowedFd<'_> {
        self.epoll
            .as_ref()
            .expect("epoll exists while running")
            .as_fd()
    }

    /// A path the runtime (another process) can use for `name` in the monitor directory.
    fn external_path(&self, name: &str) -> String {
        let real = self.dir_path.join(name);
        if real.as_os_str().len() <= berth_tty::console_socket::SUN_PATH_MAX {
            real.display().to_string()
        } else {
            format!(
                "/proc/{}/fd/{}/{name}",
                rustix::process::getpid().as_raw_nonzero(),
                self.dir.as_raw_fd()
            )
        }
    }

    /// Steps 2–6. `ready` receives one line, `ok` or `error: MESSAGE`, once the container is
    /// created (and started with `--start`) or has failed. Returns the exit code.
    pub fn run(mut self, ready: Option<OwnedFd>) -> i32 {
        self.ready = ready;
        match self.setup_loop() {
            Ok(()) => {}
            Err(e) => {
                self.report(Err(format!("{e}")));
                remove_monitor_dir(self.dir.as_fd(), &self.dir_path);
                return 1;
            }
        }
        let code = match self.event_loop() {
            Ok(code) => code,
            Err(e) => {
                log::error!("{e}");
                self.report(Err(format!("{e}")));
                1
            }
        };
        for t in self.terms.iter_mut().flatten() {
            let _ = t.flush_logs();
            if let Some(c) = &mut t.cri {
                let _ = c.finish();
            }
        }
        code
    }

    fn setup_loop(&mut self) -> Result<(), MonitorError> {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .map_err(|e| MonitorError::sys("prctl", "PR_SET_CHILD_SUBREAPER", e))?;
        raise_nofile();
        let set = SigSet::from_signals(&[
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGQUIT,
        ])
        .map_err(|e| MonitorError::sys("sigset", "signals", e))?;
        berth_sys::signal::block(&set)
            .map_err(|e| MonitorError::sys("sigprocmask", "signals", e))?;
        let _ = berth_sys::signal::set_ignored(libc::SIGPIPE);
        let signals =
            SignalFd::new(&set).map_err(|e| MonitorError::sys("signalfd", "signals", e))?;
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map_err(|e| MonitorError::sys("epoll_create", "monitor", e))?;
        epoll::add(&epoll, &signals, token(T_SIGNAL, 0), EventFlags::IN)
            .map_err(|e| MonitorError::sys("epoll_ctl", "signalfd", e))?;
        epoll::add(&epoll, &self.attach, token(T_ATTACH, 0), EventFlags::IN)
            .map_err(|e| MonitorError::sys("epoll_ctl", "attach.sock", e))?;
        if let Some(c) = &self.console {
            epoll::add(&epoll, c, token(T_CONSOLE, 0), EventFlags::IN)
                .map_err(|e| MonitorError::sys("epoll_ctl", "console.sock", e))?;
        }
        self.reserve =
            rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok();
        self.signals = Some(signals);
        self.epoll = Some(epoll);
        write_file(
            self.dir.as_fd(),
            "monitor.pid",
            rustix::process::getpid()
                .as_raw_nonzero()
                .to_string()
                .as_bytes(),
        )?;
        let mut args = vec![
            "--root".to_string(),
            self.cfg.root.display().to_string(),
            "create".into(),
        ];
        args.extend(self.cfg.create_args.iter().cloned());
        args.extend([
            "--bundle".into(),
            self.bundle.path.display().to_string(),
            "--console-socket".into(),
            self.external_path("console.sock"),
            "--pid-file".into(),
            self.dir_path.join("init.pid").display().to_string(),
            self.cfg.id.clone(),
        ]);
        self.spawn_job(JobKind::Create, args)?;
        Ok(())
    }

    fn spawn_job(&mut self, kind: JobKind, args: Vec<String>) -> Result<(), MonitorError> {
        let name = match &kind {
            JobKind::Create => "runtime-create.out".to_string(),
            JobKind::Start => "runtime-start.out".to_string(),
            JobKind::Exec { seq } => format!("runtime-exec-{seq}.out"),
            JobKind::Delete => "runtime-delete.out".to_string(),
        };
        let out = rustix::fs::openat(
            self.dir.as_fd(),
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| MonitorError::sys("create", &name, e))?;
        log::debug!("running {} {}", self.cfg.runtime.display(), args.join(" "));
        let pid = runtime::spawn(&self.cfg.runtime, &args, out)?;
        self.jobs.insert(pid, Job { kind, output: name });
        Ok(())
    }

    fn report(&mut self, result: Result<(), String>) {
        let line = match &result {
            Ok(()) => "ok\n".to_string(),
            Err(m) => format!("error: {}\n", m.replace('\n', " ")),
        };
        if let Err(m) = &result {
            log::error!("{m}");
        }
        if let Some(fd) = self.ready.take() {
            let _ = rustix::io::write(&fd, line.as_bytes());
        } else if self.cfg.foreground {
            print!("{line}");
            use std::io::Write;
            let _ = std::io::stdout().flush();
        }
    }

    fn term_index(&self, target: &Target<'_>) -> Option<usize> {
        self.terms.iter().position(|t| {
            t.as_ref().is_some_and(|t| match (target, &t.kind) {
                (Target::Console, Kind::Console) => true,
                (Target::Tty(n), Kind::Tty(k)) => n == k,
                (Target::Exec(name), Kind::Exec) => t.name == *name,
                _ => false,
            })
        })
    }

    fn event_loop(&mut self) -> Result<i32, MonitorError> {
        let mut waiter = PollingWait::from_env();
        loop {
            if let Some(code) = self.quit {
                return Ok(code);
            }
            let now = clock::monotonic_secs();
            let timeout = self.timeout(now);
            let ts = timeout.map(|secs| rustix::time::Timespec {
                tv_sec: secs.trunc() as i64,
                tv_nsec: (secs.fract() * 1e9) as i64,
            });
            let n = match waiter.wait(self.epoll(), ts.as_ref()) {
                Ok(ready) => {
                    for e in ready {
                        self.dispatch(e.data.u64(), e.flags)?;
                    }
                    ready.len()
                }
                Err(Errno::INTR) => 0,
                Err(e) => return Err(MonitorError::sys("epoll_wait", "monitor", e)),
            };
            self.after_turn(n == 0)?;
        }
    }

    /// Seconds to wait: 0 when work is pending, else until the next deadline.
    fn timeout(&self, now: f64) -> Option<f64> {
        let busy = self.terms.iter().flatten().any(|t| t.readable);
        if busy {
            return Some(0.0);
        }
        let mut deadline: Option<f64> = None;
        let mut at = |d: f64| deadline = Some(deadline.map_or(d, |x: f64| x.min(d)));
        for c in self.clients.values() {
            if let State::Handshake { deadline } = c.state {
                at(deadline);
            }
            if let Some(d) = c.keys.as_ref().and_then(|k| k.due()) {
                at(d);
            }
        }
        for t in self.terms.iter().flatten() {
            if let Some(since) = t.cri_partial_since {
                at(since + 1.0);
            }
            if let Some(d) = t.flush_due {
                at(d);
            }
            if let Some(d) = t.pump_due {
                at(d);
            }
        }
        if self.console_done() {
            at(self.last_state_check + 0.25);
        }
        let backlog = self
            .terms
            .iter()
            .flatten()
            .any(|t| t.screen.parsed() < t.ring.head());
        if backlog {
            at(now + if self.idle_parse { 0.0 } else { 0.005 });
        }
        deadline.map(|d| (d - now).max(0.0))
    }

    fn console_done(&self) -> bool {
        self.terms
            .first()
            .and_then(|t| t.as_ref())
            .is_some_and(|t| t.exit.is_some() && t.drained)
    }

    fn dispatch(&mut self, data: u64, flags: EventFlags) -> Result<(), MonitorError> {
        let (kind, n) = (data >> 32, (data & 0xffff_ffff) as u32);
        match kind {
            T_SIGNAL => self.on_signals()?,
            T_ATTACH => self.accept_clients(),
            T_CONSOLE => self.accept_conns(None),
            T_EXEC_LISTEN => self.accept_conns(Some(n)),
            T_CONN => self.on_conn(n),
            T_MASTER => {
                if let Some(Some(t)) = self.terms.get_mut(n as usize) {
                    if flags.intersects(EventFlags::IN | EventFlags::HUP | EventFlags::ERR) {
                        t.readable = true;
                    }
                    if flags.contains(EventFlags::OUT) && t.input_len() > 0 {
                        t.write_input();
                    }
                }
            }
            T_CLIENT => self.on_client(n, flags),
            T_CLIENT_KEYS => self.on_client_keys(n),
            T_CLIENT_OUT => {
                if let Some(c) = self.clients.get_mut(&n) {
                    if let Some(out) = c.out.as_mut() {
                        out.armed = false;
                    }
                }
                self.pump_client(n);
            }
            _ => {}
        }
        Ok(())
    }

    // ---- children and signals ----

    fn on_signals(&mut self) -> Result<(), MonitorError> {
        loop {
            let info = match self.signals.as_ref().map(|s| s.read()) {
                Some(Ok(Some(i))) => i,
                Some(Ok(None)) | None => break,
                Some(Err(e)) => return Err(MonitorError::sys("read", "signalfd", e)),
            };
            match info.signo {
                libc::SIGCHLD => self.reap()?,
                libc::SIGHUP => {}
                sig => {
                    log::info!(
                        "signal {sig}: shutting down (the container's terminals close with the monitor)"
                    );
                    for c in self.clients.values_mut() {
                        c.fail(ErrorCode::Failed, "the console monitor is shutting down");
                        let _ = client::pump(c, None, &mut []);
                    }
                    self.quit = Some(0);
                }
            }
        }
        Ok(())
    }

    fn reap(&mut self) -> Result<(), MonitorError> {
        let mut done = Vec::new();
        loop {
            match rustix::process::wait(rustix::process::WaitOptions::NOHANG) {
                Ok(Some((pid, st))) => {
                    if let Some(e) = exit_of(st) {
                        done.push((pid.as_raw_nonzero().get(), e));
                    }
                }
                Ok(None) | Err(Errno::CHILD) => break,
                Err(Errno::INTR) => {}
                Err(e) => return Err(MonitorError::sys("waitpid", "children", e)),
            }
        }
        // Jobs first: they learn the pids the other exits belong to.
        let (jobs, others): (Vec<_>, Vec<_>) = done
            .into_iter()
            .partition(|(p, _)| self.jobs.contains_key(p));
        for (pid, e) in others {
            self.unclaimed.insert(pid, e);
        }
        for (pid, e) in jobs {
            if let Some(job) = self.jobs.remove(&pid) {
                self.job_done(job, e)?;
            }
        }
        self.claim_exits();
        Ok(())
    }

    fn claim_exits(&mut self) {
        for t in self.terms.iter_mut().flatten() {
            if let (Some(pid), None) = (t.pid, t.exit) {
                if let Some(e) = self.unclaimed.remove(&pid) {
                    log::info!("{}: process {pid} {e}", t.name);
                    t.exit = Some(e);
                    t.readable = true;
                    let _ = write_file(
                        self.dir.as_fd(),
                        &format!("{}.exit", file_stem(t)),
                        format!("{}\n", e.code()).as_bytes(),
                    );
                }
            }
        }
        // Orphans reparented to us that nobody claims: forget them.
        if self.unclaimed.len() > 1024 {
            self.unclaimed.clear();
        }
    }

    fn job_output(&self, job: &Job) -> String {
        let text = std::fs::read_to_string(self.dir_path.join(&job.output)).unwrap_or_default();
        let _ = rustix::fs::unlinkat(self.dir.as_fd(), job.output.as_str(), AtFlags::empty());
        if !text.trim().is_empty() {
            log::debug!("{}: {}", job.output, text.trim());
        }
        text
    }

    fn job_done(&mut self, job: Job, status: ExitCode) -> Result<(), MonitorError> {
        let ok = status == ExitCode::Exited(0);
        let output = self.job_output(&job);
        let runtime = self
            .cfg
            .runtime
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match job.kind {
            JobKind::Create if ok => {
                self.drain_console_conns();
                let pid = read_pid_file(self.dir.as_fd(), "init.pid");
                let has_master = self.terms[0].as_ref().is_some_and(|t| t.master.is_some());
                match (pid, has_master) {
                    (Some(pid), true) => {
                        if let Some(t) = self.terms[0].as_mut() {
                            t.pid = Some(pid);
                        }
                        if let Some(p) = &self.cfg.pid_file {
                            if let Err(e) = write_pid(p, pid) {
                                return self.fail_started(format!("{e}"));
                            }
                        }
                        self.claim_exits();
                        if self.cfg.start {
                            self.life = Life::Starting;
                            let args = vec![
                                "--root".into(),
                                self.cfg.root.display().to_string(),
                                "start".into(),
                                self.cfg.id.clone(),
                            ];
                            if let Err(e) = self.spawn_job(JobKind::Start, args) {
                                return self.fail_started(format!("{e}"));
                            }
                        } else {
                            self.became_ready();
                        }
                    }
                    (None, _) => {
                        return self.fail_started(format!(
                            "{runtime} create {}: no pid in its pid file",
                            self.cfg.id
                        ));
                    }
                    (_, false) => {
                        return self.fail_started(format!(
                            "{runtime} create {}: no terminal master arrived on the console socket",
                            self.cfg.id
                        ));
                    }
                }
            }
            JobKind::Create => {
                let msg = if output.trim().is_empty() {
                    format!(
                        "{runtime} create {} {status} without an error message",
                        self.cfg.id
                    )
                } else {
                    runtime::last_error(&output)
                };
                self.report(Err(msg));
                self.life = Life::Failing;
                self.quit = Some(1);
                remove_monitor_dir(self.dir.as_fd(), &self.dir_path);
            }
            JobKind::Start if ok => self.became_ready(),
            JobKind::Start => {
                let msg = if output.trim().is_empty() {
                    format!(
                        "{runtime} start {} {status} without an error message",
                        self.cfg.id
                    )
                } else {
                    runtime::last_error(&output)
                };
                return self.fail_started(msg);
            }
            JobKind::Delete => {
                if !ok {
                    log::warn!(
                        "delete after a failed start: {}",
                        runtime::last_error(&output)
                    );
                }
                let msg = self.failure.take().unwrap_or_else(|| "failed".into());
                self.report(Err(msg));
                remove_monitor_dir(self.dir.as_fd(), &self.dir_path);
                self.quit = Some(1);
            }
            JobKind::Exec { seq } => self.exec_done(seq, ok, &output),
        }
        Ok(())
    }

    /// The container exists but could not be made ready: delete it, then report and exit.
    fn fail_started(&mut self, message: String) -> Result<(), MonitorError> {
        self.life = Life::Failing;
        self.failure = Some(message);
        let args = vec![
            "--root".into(),
            self.cfg.root.display().to_string(),
            "delete".into(),
            "--force".into(),
            self.cfg.id.clone(),
        ];
        if let Err(e) = self.spawn_job(JobKind::Delete, args) {
            log::warn!("{e}");
            let msg = self.failure.take().unwrap_or_default();
            self.report(Err(msg));
            self.quit = Some(1);
        }
        Ok(())
    }

    fn became_ready(&mut self) {
        self.life = Life::Ready;
        log::info!("container {} ready", self.cfg.id);
        self.report(Ok(()));
    }

    // ---- console sockets and masters ----

    fn accept_conns(&mut self, exec: Option<u32>) {
        loop {
            let res = match exec {
                None => self.console.as_ref().map(|l| sock::accept(l.as_fd())),
                Some(seq) => self
                    .pending_exec
                    .get(&seq)
                    .map(|p| sock::accept(p.listener.as_fd())),
            };
            match res {
                Some(Ok(Some(fd))) => {
                    let id = self.next_conn;
                    self.next_conn += 1;
                    if epoll::add(
                        self.epoll(),
                        &fd,
                        token(T_CONN, u64::from(id)),
                        EventFlags::IN,
                    )
                    .is_err()
                    {
                        continue;
                    }
                    self.conns.insert(id, Conn { fd, exec });
                }
                Some(Ok(None)) | None => return,
                Some(Err(e)) => {
                    log::warn!("accept on a console socket: {e}");
                    return;
                }
            }
        }
    }

    fn drain_console_conns(&mut self) {
        self.accept_conns(None);
        let ids: Vec<u32> = self
            .conns
            .iter()
            .filter(|(_, c)| c.exec.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.on_conn(id);
        }
    }

    fn on_conn(&mut self, id: u32) {
        loop {
            let Some(conn) = self.conns.get(&id) else {
                return;
            };
            match berth_tty::recv_master(conn.fd.as_fd()) {
                Ok((name, master)) => {
                    let exec = conn.exec;
                    if let Err(e) = self.got_master(exec, &name, master) {
                        log::warn!("{e}");
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return,
                Err(berth_tty::TtyError::SocketClosed) => {
                    self.conns.remove(&id);
                    return;
                }
                Err(e) => {
                    log::warn!("console socket: {e}");
                    self.conns.remove(&id);
                    return;
                }
            }
        }
    }

    fn got_master(
        &mut self,
        exec: Option<u32>,
        name: &str,
        master: OwnedFd,
    ) -> Result<(), MonitorError> {
        berth_tty::pty::master_index(master.as_fd())
            .map_err(|e| MonitorError::tty(format!("received {name:?}"), e))?;
        set_nonblocking(master.as_fd())?;
        if let Some(seq) = exec {
            if let Some(p) = self.pending_exec.get_mut(&seq) {
                p.master = Some(master);
            }
            return Ok(());
        }
        let tty = name
            .strip_prefix("/dev/tty")
            .and_then(|n| n.parse::<u16>().ok())
            .filter(|n| *n >= 1);
        let idx = match tty {
            Some(n) => match self.term_index(&Target::Tty(n)) {
                Some(i) => i,
                None => {
                    let size = self.terms[0].as_ref().map_or(Winsize::DEFAULT, |t| t.size);
                    self.new_term(&format!("tty{n}"), Kind::Tty(n), &format!("tty{n}"), size)?
                }
            },
            None => 0,
        };
        if self.terms[idx].as_ref().is_some_and(|t| t.master.is_some()) {
            log::warn!("a second master for {name:?}: closed");
            return Ok(());
        }
        self.install_master(idx, master)
    }

    fn install_master(&mut self, idx: usize, master: OwnedFd) -> Result<(), MonitorError> {
        epoll::add(
            self.epoll(),
            &master,
            token(T_MASTER, idx as u64),
            EventFlags::IN | EventFlags::ET,
        )
        .map_err(|e| MonitorError::sys("epoll_ctl", "pty master", e))?;
        let policy = self.policy_size(idx);
        let Some(t) = self.terms[idx].as_mut() else {
            return Ok(());
        };
        let current = Winsize::get(master.as_fd()).unwrap_or_default();
        t.master = Some(master);
        t.readable = true;
        let size = match policy {
            Some(s) => s,
            None if current.rows > 0 && current.cols > 0 => current,
            None => t.size,
        };
        t.apply_size(size)?;
        t.write_input();
        log::info!("{}: master received, size {}", t.name, t.size);
        Ok(())
    }

    // ---- clients ----

    fn accept_clients(&mut self) {
        loop {
            match sock::accept(self.attach.as_fd()) {
                Ok(Some(fd)) => self.new_client(fd),
                Ok(None) => return,
                Err(Errno::MFILE | Errno::NFILE) => {
                    // Out of descriptors: free the reserve, take the connection and close it,
                    // so the listener does not stay readable forever.
                    self.reserve = None;
                    if let Ok(Some(fd)) = sock::accept(self.attach.as_fd()) {
                        let _ = sock::send(
                            fd.as_fd(),
                            &Frame::Error {
                                code: ErrorCode::Failed,
                                message: "the console monitor is out of file descriptors",
                            }
                            .to_vec()
                            .unwrap_or_default(),
                        );
                    }
                    self.reserve = rustix::fs::open(
                        "/dev/null",
                        OFlags::RDONLY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .ok();
                    return;
                }
                Err(e) => {
                    log::warn!("accept on attach.sock: {e}");
                    return;
                }
            }
        }
    }

    fn new_client(&mut self, fd: OwnedFd) {
        let refuse = |fd: &OwnedFd, code, msg: &str| {
            if let Ok(v) = (Frame::Error { code, message: msg }).to_vec() {
                let _ = sock::send(fd.as_fd(), &v);
            }
            // The client's first frame may be on its way: give it a moment so the close does
            // not reset the connection before our error is read.
            let mut p = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
            let ts = rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: 20_000_000,
            };
            let _ = rustix::event::poll(&mut p, Some(&ts));
            sock::discard_input(fd.as_fd());
        };
        let (pid, uid) = match sock::peer_cred(fd.as_fd()) {
            Ok(c) => c,
            Err(e) => {
                log::warn!("SO_PEERCRED: {e}");
                return;
            }
        };
        if uid != self.euid && uid != 0 {
            log::warn!("refused a client with uid {uid} (pid {pid})");
            refuse(
                &fd,
                ErrorCode::PermissionDenied,
                &format!(
                    "permission denied: uid {uid} may not use the console monitor of container {} (owner uid {})",
                    self.cfg.id, self.euid
                ),
            );
            return;
        }
        if self.clients.len() >= MAX_CLIENTS {
            refuse(
                &fd,
                ErrorCode::Failed,
                &format!("too many clients (at most {MAX_CLIENTS})"),
            );
            return;
        }
        let id = self.next_client;
        self.next_client = self.next_client.wrapping_add(1).max(1);
        let c = Client::new(id, fd, pid, uid, clock::monotonic_secs() + HANDSHAKE_SECS);
        if epoll::add(
            self.epoll(),
            &c.fd,
            token(T_CLIENT, u64::from(id)),
            client_events(&c),
        )
        .is_err()
        {
            return;
        }
        self.clients.insert(id, c);
    }

    fn on_client(&mut self, id: u32, flags: EventFlags) {
        if flags.contains(EventFlags::IN) {
            for _ in 0..32 {
                let Some(c) = self.clients.get(&id) else {
                    return;
                };
                if c.in_paused || c.close_when_flushed {
                    break;
                }
                let mut buf = std::mem::take(&mut self.recv_buf);
                let got = sock::recv_frame(c.fd.as_fd(), &mut buf[..sock::RECV_BUF]);
                let stop = match got {
                    Err(_) => {
                        self.close_client(id);
                        true
                    }
                    Ok(mut r) => {
                        // Only a hello asking for direct output (and keys) may bring
                        // descriptors, as many as it asks for.
                        let handshake = matches!(c.state, State::Handshake { .. });
                        let mut fds = std::mem::take(&mut r.fds);
                        let wanted = match r.recv {
                            sock::Recv::Packet(n) if handshake && !fds.is_empty() => {
                                hello_fds(&buf[..n])
                            }
                            _ => 0,
                        };
                        if fds.len() > wanted {
                            r.fds_closed += fds.len() - wanted;
                            fds.truncate(wanted);
                        }
                        if fds.len() < wanted {
                            // Asked for more than came: none is used.
                            fds.clear();
                        }
                        if r.fds_closed > 0 || r.fds_truncated {
                            if let Some(c) = self.clients.get_mut(&id) {
                                c.error(
                                    ErrorCode::BadFrame,
                                    &format!(
                                        "file descriptors are not accepted on the attach socket ({} closed{})",
                                        r.fds_closed,
                                        if r.fds_truncated { ", more discarded by the kernel" } else { "" }
                                    ),
                                );
                            }
                        }
                        match r.recv {
                            sock::Recv::Packet(n) => {
                                self.on_frame(id, &buf[..n], fds);
                                false
                            }
                            sock::Recv::TooLarge(n) => {
                                if let Some(c) = self.clients.get_mut(&id) {
                                    c.fail(
                                        ErrorCode::TooLarge,
                                        &format!(
                                            "frame of {n} bytes exceeds the maximum of {} bytes",
                                            berth_proto::MAX_FRAME
                                        ),
                                    );
                                }
                                true
                            }
                            sock::Recv::WouldBlock => true,
                            sock::Recv::Closed => {
                                self.close_client(id);
                                true
                            }
                        }
                    }
                };
                self.recv_buf = buf;
                if stop {
                    break;
                }
            }
        } else if flags.intersects(EventFlags::HUP | EventFlags::ERR) {
            self.close_client(id);
            return;
        }
        self.pump_client(id);
    }

    /// Handles one frame; `fds` are the descriptors that came with a `Hello` asking for
    /// direct output and keys (see [`hello_fds`]).
    fn on_frame(&mut self, id: u32, bytes: &[u8], fds: Vec<OwnedFd>) {
        let frame = match Frame::decode(bytes) {
            Ok(f) => f,
            Err(e) => {
                if let Some(c) = self.clients.get_mut(&id) {
                    log::debug!("client {id}: bad frame: {e}");
                    c.fail(ErrorCode::BadFrame, &e.to_string());
                }
                return;
            }
        };
        let Some(state) = self.clients.get(&id).map(|c| c.state) else {
            return;
        };
        match state {
            State::Handshake { .. } => match frame {
                Frame::Hello(h) => {
                    let mut fds = fds.into_iter();
                    let out = fds.next();
                    self.attach_client(id, &h, out, fds.next())
                }
                Frame::ListRequest => {
                    // One or more ClientList frames (concatenated by the client), then close.
                    let json = self.report_json();
                    if let Some(c) = self.clients.get_mut(&id) {
                        let mut rest = json.as_str();
                        while !rest.is_empty() {
                            let mut cut = rest.len().min(berth_proto::frame::MAX_DATA);
                            while !rest.is_char_boundary(cut) {
                                cut -= 1;
                            }
                            c.queue(&Frame::ClientList(&rest[..cut]));
                            rest = &rest[cut..];
                        }
                        c.close_when_flushed = true;
                        c.state = State::Closing;
                    }
                }
                Frame::ScreenshotRequest { target, formatted } => {
                    self.screenshot(id, &target, formatted)
                }
                Frame::ExecRequest {
                    rows,
                    cols,
                    options,
                    command,
                } => self.start_exec(id, rows, cols, &options, &command),
                other => {
                    if let Some(c) = self.clients.get_mut(&id) {
                        c.fail(
                            ErrorCode::BadFrame,
                            &format!(
                                "{} frame before hello: the first frame must be hello, list-request, screenshot-request or exec-request",
                                other.name()
                            ),
                        );
                    }
                }
            },
            State::Attached { term } => self.attached_frame(id, term, frame),
            State::WaitingExec | State::Closing => {}
        }
    }

    fn attached_frame(&mut self, id: u32, ti: usize, frame: Frame<'_>) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        let read_only = c.role == Role::ReadOnly;
        let name = frame.name();
        if read_only && matches!(frame, Frame::Stdin(_) | Frame::Signal(_) | Frame::StdinEof) {
            c.error(
                ErrorCode::PermissionDenied,
                &format!("{name} frame refused: this client attached read-only"),
            );
            return;
        }
        match frame {
            Frame::Stdin(data) => {
                c.input_bytes += data.len() as u64;
                self.type_input(ti, data);
            }
            Frame::StdinEof => {
                if let Some(Some(t)) = self.terms.get_mut(ti) {
                    t.queue_eof();
                    t.write_input();
                }
            }
            Frame::Resize { rows, cols } => {
                let ok = |d: u16| (1..=term::MAX_DIMENSION).contains(&d);
                if !ok(rows) || !ok(cols) {
                    c.error(
                        ErrorCode::BadRequest,
                        &format!(
                            "resize frame: size {rows}x{cols}: rows and columns must each be from 1 to {}",
                            term::MAX_DIMENSION
                        ),
                    );
                    return;
                }
                c.size = Some(Winsize::new(rows, cols));
                if c.sizes() {
                    self.size_seq += 1;
                    c.size_seq = self.size_seq;
                    self.recompute_size(ti);
                }
            }
            Frame::Signal(sig) => {
                if !(1..=64).contains(&sig) {
                    c.error(
                        ErrorCode::BadRequest,
                        &format!("signal frame: {sig} is not a signal number (1 to 64)"),
                    );
                    return;
                }
                let target = self
                    .terms
                    .get(ti)
                    .and_then(|t| t.as_ref())
                    .and_then(|t| if t.exit.is_none() { t.pid } else { None });
                match target {
                    Some(pid) => {
                        if let Err(e) = berth_sys::signal::kill(pid, sig as i32) {
                            c.error(
                                ErrorCode::Failed,
                                &format!("signal {sig} to pid {pid}: {e}"),
                            );
                        }
                    }
                    None => c.error(
                        ErrorCode::Failed,
                        &format!("signal {sig}: the terminal's process is not running"),
                    ),
                }
            }
            Frame::Detach => self.detach_client(id, ti),
            other => c.error(
                ErrorCode::BadFrame,
                &format!(
                    "{} frame is not valid from an attached client",
                    other.name()
                ),
            ),
        }
    }

    /// Writes `data` to terminal `ti` (through its input queue), pausing the typists when the
    /// queue is full.
    fn type_input(&mut self, ti: usize, data: &[u8]) {
        if let Some(Some(t)) = self.terms.get_mut(ti) {
            t.queue_input(data);
            t.write_input();
        }
        self.update_input_pause(ti);
    }

    /// Client `id` leaves terminal `ti` at its own request (a `Detach` frame, its detach keys).
    fn detach_client(&mut self, id: u32, ti: usize) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        if let Some(Some(t)) = self.terms.get_mut(ti) {
            c.end_output(t, true);
        }
        c.keys = None;
        c.queue(&Frame::Detached);
        c.close_when_flushed = true;
        c.state = State::Closing;
        self.detach_from_term(id, ti);
    }

    /// Reads the keys of a client whose input the monitor reads ([`DirectKeys`]): once per
    /// turn, at most one buffer (the descriptor is level-triggered). Detach keys end its
    /// session, and so does a hang-up of its terminal; the end of a pipe is the terminal's end
    /// of input (as a `StdinEof` frame).
    fn on_client_keys(&mut self, id: u32) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        let State::Attached { term: ti } = c.state else {
            c.keys = None;
            return;
        };
        let Some(k) = c.keys.as_mut() else {
            return;
        };
        let mut buf = [0u8; KEYS_READ];
        let got = loop {
            match rustix::io::read(&k.fd, &mut buf) {
                Err(Errno::INTR) => {}
                r => break r,
            }
        };
        let mut typed = Vec::new();
        match got {
            Err(Errno::AGAIN) => return,
            Ok(0) | Err(_) if k.tty => {
                // The user's terminal hung up (its window closed): the user went away, the
                // container's input did not end (a typed Ctrl-D is a byte like any other).
                log::debug!("client {id}: its terminal hung up: detached");
                self.detach_client(id, ti);
            }
            Ok(0) | Err(_) => {
                // End of input: a pipe's writers are gone.
                k.scanner.flush(&mut typed);
                c.keys = None;
                c.input_bytes += typed.len() as u64;
                if let Some(Some(t)) = self.terms.get_mut(ti) {
                    t.queue_input(&typed);
                    t.queue_eof();
                    t.write_input();
                }
                self.update_input_pause(ti);
            }
            Ok(n) => {
                let scan = k.scanner.feed(&buf[..n], &mut typed);
                k.held_since = k.scanner.holding().then(clock::monotonic_secs);
                c.input_bytes += typed.len() as u64;
                self.type_input(ti, &typed);
                if scan == Scan::Detach {
                    self.detach_client(id, ti);
                }
            }
        }
        self.pump_client(id);
    }

    /// Types the held detach-key prefixes that waited their hold time.
    fn release_held_keys(&mut self, now: f64) {
        let due: Vec<(u32, usize)> = self
            .clients
            .values()
            .filter(|c| {
                c.keys
                    .as_ref()
                    .and_then(|k| k.due())
                    .is_some_and(|d| d <= now)
            })
            .filter_map(|c| match c.state {
                State::Attached { term } => Some((c.id, term)),
                _ => None,
            })
            .collect();
        for (id, ti) in due {
            let mut typed = Vec::new();
            if let Some(k) = self.clients.get_mut(&id).and_then(|c| c.keys.as_mut()) {
                k.scanner.flush(&mut typed);
                k.held_since = None;
            }
            if let Some(c) = self.clients.get_mut(&id) {
                c.input_bytes += typed.len() as u64;
            }
            self.type_input(ti, &typed);
        }
    }

    fn attach_client(
        &mut self,
        id: u32,
        h: &Hello<'_>,
        out_fd: Option<OwnedFd>,
        in_fd: Option<OwnedFd>,
    ) {
        let Some(ti) = self.term_index(&h.target) else {
            let msg = match h.target {
                Target::Exec(name) => format!(
                    "no exec session {name:?} in container {} (see berth sessions {})",
                    self.cfg.id, self.cfg.id
                ),
                Target::Tty(n) => format!(
                    "container {} has no tty{n} (extra ttys come from the annotation {TTY_MAX})",
                    self.cfg.id
                ),
                Target::Console => "no console".into(),
            };
            if let Some(c) = self.clients.get_mut(&id) {
                c.fail(ErrorCode::NoSuchTarget, &msg);
            }
            return;
        };
        if let Some((r, cl)) = h.size {
            let ok = |d: u16| (1..=term::MAX_DIMENSION).contains(&d);
            if !ok(r) || !ok(cl) {
                if let Some(c) = self.clients.get_mut(&id) {
                    c.fail(
                        ErrorCode::BadRequest,
                        &format!(
                            "hello frame: size {r}x{cl}: rows and columns must each be from 1 to {}",
                            term::MAX_DIMENSION
                        ),
                    );
                }
                return;
            }
        }
        let settings = self.settings;
        let Some(Some(t)) = self.terms.get_mut(ti) else {
            return;
        };
        let head = t.ring.head();
        let start_at = match h.start {
            Start::Offset(o) if o > head => {
                if let Some(c) = self.clients.get_mut(&id) {
                    c.fail(
                        ErrorCode::BadRequest,
                        &format!(
                            "hello frame: offset {o} is beyond the end of the output ({head})"
                        ),
                    );
                }
                return;
            }
            Start::Offset(o) => Some(o),
            Start::TailLines(n) => match t.tail_offset(n) {
                Ok(o) => Some(o),
                Err(e) => {
                    log::warn!("{e}");
                    Some(t.ring.start())
                }
            },
            Start::Live => Some(head),
            Start::Repaint => None,
        };
        // Takeover: everyone else on this terminal is told and disconnected.
        if h.force {
            t.screen.catch_up_all(&t.ring);
            let alternate = t.screen.alternate();
            let others: Vec<u32> = t.clients.iter().copied().filter(|&o| o != id).collect();
            t.clients.retain(|&x| x == id);
            for o in others {
                if let Some(oc) = self.clients.get_mut(&o) {
                    oc.release_output(alternate, false);
                    oc.queue(&Frame::Takeover { by: id });
                    oc.close_when_flushed = true;
                    oc.state = State::Closing;
                }
                self.pump_client(o);
            }
        }
        let Some(Some(t)) = self.terms.get_mut(ti) else {
            return;
        };
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        c.state = State::Attached { term: ti };
        c.role = h.role;
        c.ignore_size = h.ignore_size;
        c.flow = h.flow;
        c.no_follow = h.no_follow;
        c.limit = if h.queue_limit == 0 {
            settings.queue_limit
        } else {
            (h.queue_limit as usize).min(settings.ring_size)
        };
        c.size = h.size.map(|(r, cl)| Winsize::new(r, cl));
        // Direct output: a private non-blocking description of the client's terminal or pipe
        // (its own stays as it was); anything else (a socket, a file) gets frames.
        let ep = self
            .epoll
            .as_ref()
            .expect("epoll exists while running")
            .as_fd();
        if let Some(fd) = out_fd {
            match adopt(ep, &fd, true, token(T_CLIENT_OUT, u64::from(id))) {
                Some(own) => {
                    c.out = Some(DirectOut {
                        tty: rustix::termios::isatty(&own),
                        fd: own,
                        armed: false,
                    });
                }
                None => log::debug!(
                    "client {id}: its output is neither a terminal nor a pipe: frames instead"
                ),
            }
        }
        // Direct keys: with direct output taken, the monitor reads a read-write client's
        // input itself (a private non-blocking description of it), read from the next turn on.
        if let (Some(scan), Some(fd), true, Role::ReadWrite) =
            (h.direct_keys, in_fd, c.out.is_some(), h.role)
        {
            match adopt(ep, &fd, false, token(T_CLIENT_KEYS, u64::from(id))) {
                Some(own) => {
                    c.keys = Some(DirectKeys {
                        tty: rustix::termios::isatty(&own),
                        fd: own,
                        scanner: Scanner::new(DetachKeys::from_bytes(scan.detach_keys)),
                        hold: (scan.hold_ms > 0).then(|| f64::from(scan.hold_ms) / 1000.0),
                        held_since: None,
                        paused: false,
                    });
                    c.input = InputPath::Keys;
                }
                None => log::debug!(
                    "client {id}: its input is neither a terminal nor a pipe: it reads it"
                ),
            }
        }
        // Direct input: a read-write client gets the master itself and writes its input there
        // (it never reads it); its `Stdin` frames would still be served.
        let master = if h.direct_input && h.role == Role::ReadWrite && c.keys.is_none() {
            t.master
                .as_ref()
                .and_then(|m| rustix::io::fcntl_dupfd_cloexec(m, 3).ok())
        } else {
            None
        };
        if master.is_some() {
            c.input = InputPath::Master;
        }
        c.queue_with_fd(
            &Frame::Attached {
                client: id,
                offset: head,
                rows: t.size.rows,
                cols: t.size.cols,
                direct_output: c.out.is_some(),
                direct_input: master.is_some(),
                direct_keys: c.keys.is_some(),
                session: &t.name,
            },
            master,
        );
        match start_at {
            None => {
                t.screen.catch_up_all(&t.ring);
                c.queue(&Frame::ReplayStart {
                    kind: ReplayKind::Repaint,
                    offset: head,
                });
                c.pos = head;
                c.phase = Phase::Repaint {
                    data: t.screen.repaint_bytes(),
                    at: 0,
                    end: head,
                };
            }
            Some(o) => {
                c.queue(&Frame::ReplayStart {
                    kind: ReplayKind::Bytes,
                    offset: o,
                });
                let oldest = t.oldest();
                if o < oldest {
                    c.queue(&Frame::Skipped {
                        from: o,
                        to: oldest,
                    });
                    c.drops += oldest - o;
                    c.pos = oldest;
                } else {
                    c.pos = o;
                }
                c.phase = Phase::Bytes { end: head };
            }
        }
        t.clients.push(id);
        log::debug!(
            "client {id} (pid {}) attached to {} as {:?}",
            c.pid,
            t.name,
            c.role
        );
        if c.sizes() {
            self.size_seq += 1;
            c.size_seq = self.size_seq;
            self.recompute_size(ti);
        }
        self.update_input_pause(ti);
    }

    fn detach_from_term(&mut self, id: u32, ti: usize) {
        if let Some(Some(t)) = self.terms.get_mut(ti) {
            let before = t.clients.len();
            t.clients.retain(|&x| x != id);
            if t.clients.len() != before {
                self.recompute_size(ti);
            }
        }
    }

    fn close_client(&mut self, id: u32) {
        if let Some(c) = self.clients.remove(&id) {
            sock::discard_input(c.fd.as_fd());
            if let State::Attached { term } = c.state {
                self.detach_from_term(id, term);
            }
            for t in self.terms.iter_mut().flatten() {
                t.clients.retain(|&x| x != id);
            }
            log::debug!(
                "client {id} closed (sent {} bytes, dropped {})",
                c.bytes,
                c.drops
            );
            // Dropping the fd removes it from epoll.
        }
    }

    /// Carries out what an attached client sent before it went away (its input, a resize, a
    /// signal, its detach), when a send to it failed and its connection is about to be closed:
    /// a client that types and disconnects at once (a script's `Stdin` then `Detach`, then
    /// close) must not lose its input because the monitor's reply to its hello met the closed
    /// socket. (Every other way to close a client has read to the end already or has nothing
    /// to carry out.) At most [`LAST_FRAMES`] frames, and input only while the terminal's input
    /// queue has room. A client that is not attached (closing, or never said hello) has
    /// nothing here to carry out.
    fn take_last_frames(&mut self, id: u32) {
        for _ in 0..LAST_FRAMES {
            let Some(c) = self.clients.get(&id) else {
                return;
            };
            let State::Attached { term } = c.state else {
                return;
            };
            if self
                .terms
                .get(term)
                .and_then(|t| t.as_ref())
                .is_none_or(|t| t.input_len() >= term::INPUT_MAX)
            {
                return;
            }
            // The receive buffer is lent out while `on_client` reads (it may close this or
            // another client from there): then a buffer of our own.
            let mut buf = std::mem::take(&mut self.recv_buf);
            if buf.len() < sock::RECV_BUF {
                buf = vec![0; sock::RECV_BUF];
            }
            let got = sock::recv_frame(c.fd.as_fd(), &mut buf[..sock::RECV_BUF]);
            if let Ok(sock::Received {
                recv: sock::Recv::Packet(n),
                fds,
                fds_closed: 0,
                fds_truncated: false,
            }) = got
                && fds.is_empty()
            {
                self.on_frame(id, &buf[..n], Vec::new());
                self.recv_buf = buf;
            } else {
                self.recv_buf = buf;
                return;
            }
        }
    }

    fn pump_client(&mut self, id: u32) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        let term = match c.state {
            State::Attached { term } => self.terms.get_mut(term).and_then(|t| t.as_mut()),
            _ => None,
        };
        let r = client::pump(c, term, &mut self.scratch);
        if r == Pumped::OutBlocked {
            if let Some(out) = c.out.as_mut().filter(|o| !o.armed) {
                out.armed = true;
                let _ = epoll::modify(
                    self.epoll.as_ref().expect("epoll").as_fd(),
                    &out.fd,
                    token(T_CLIENT_OUT, u64::from(id)),
                    EventFlags::OUT | EventFlags::ONESHOT,
                );
            }
        }
        let want_out = r == Pumped::Blocked;
        match r {
            Pumped::Close => {
                // A failed send may leave frames the client sent before it went unread.
                self.take_last_frames(id);
                self.close_client(id);
            }
            _ => {
                if c.out_armed != want_out {
                    c.out_armed = want_out;
                    let flags = client_events(c);
                    let _ = epoll::modify(
                        self.epoll.as_ref().expect("epoll").as_fd(),
                        &c.fd,
                        token(T_CLIENT, u64::from(id)),
                        flags,
                    );
                }
            }
        }
    }

    /// Arms `EPOLLOUT` on a master only while input waits for room: always armed, it would wake
    /// the monitor each time the container reads its input (one useless turn per keystroke).
    fn master_interest(&mut self, ti: usize) {
        let Some(Some(t)) = self.terms.get_mut(ti) else {
            return;
        };
        let want = t.input_len() > 0;
        if t.out_armed == want {
            return;
        }
        let Some(m) = t.master.as_ref() else {
            return;
        };
        let mut flags = EventFlags::IN | EventFlags::ET;
        if want {
            flags |= EventFlags::OUT;
        }
        let ep = self.epoll.as_ref().expect("epoll exists while running");
        if epoll::modify(ep, m, token(T_MASTER, ti as u64), flags).is_ok() {
            t.out_armed = want;
        }
    }

    /// Pauses or resumes reading the read-write clients of terminal `ti` by its input queue.
    fn update_input_pause(&mut self, ti: usize) {
        let Some(Some(t)) = self.terms.get(ti) else {
            return;
        };
        let full = t.input_len() >= term::INPUT_MAX;
        let ids = t.clients.clone();
        let epoll_fd = self.epoll.as_ref().expect("epoll").as_fd();
        for id in ids {
            if let Some(c) = self.clients.get_mut(&id) {
                let pause = full && c.role == Role::ReadWrite;
                if let Some(k) = c.keys.as_mut().filter(|k| k.paused != pause) {
                    let interest = if pause {
                        EventFlags::empty()
                    } else {
                        EventFlags::IN
                    };
                    if epoll::modify(
                        epoll_fd,
                        &k.fd,
                        token(T_CLIENT_KEYS, u64::from(id)),
                        interest,
                    )
                    .is_ok()
                    {
                        k.paused = pause;
                    }
                }
                if c.in_paused != pause {
                    c.in_paused = pause;
                    let _ = epoll::modify(
                        epoll_fd,
                        &c.fd,
                        token(T_CLIENT, u64::from(id)),
                        client_events(c),
                    );
                }
            }
        }
    }

    /// The size the policy gives terminal `ti` from its sizing clients, if any.
    fn policy_size(&self, ti: usize) -> Option<Winsize> {
        let t = self.terms.get(ti)?.as_ref()?;
        let sizers: Vec<&Client> = t
            .clients
            .iter()
            .filter_map(|id| self.clients.get(id))
            .filter(|c| c.sizes() && matches!(c.state, State::Attached { .. }))
            .collect();
        if sizers.is_empty() {
            return None;
        }
        let sizes = sizers.iter().filter_map(|c| c.size);
        match self.settings.size_policy {
            SizePolicy::Latest => sizers
                .iter()
                .max_by_key(|c| c.size_seq)
                .and_then(|c| c.size),
            SizePolicy::Smallest => {
                sizes.reduce(|a, b| Winsize::new(a.rows.min(b.rows), a.cols.min(b.cols)))
            }
            SizePolicy::Largest => {
                sizes.reduce(|a, b| Winsize::new(a.rows.max(b.rows), a.cols.max(b.cols)))
            }
        }
    }

    fn recompute_size(&mut self, ti: usize) {
        let Some(size) = self.policy_size(ti) else {
            return;
        };
        let Some(Some(t)) = self.terms.get_mut(ti) else {
            return;
        };
        match t.apply_size(size) {
            Ok(true) => {
                log::debug!("{}: size {size}", t.name);
                let ids = t.clients.clone();
                for id in ids {
                    if let Some(c) = self.clients.get_mut(&id) {
                        c.queue(&Frame::Resized {
                            rows: size.rows,
                            cols: size.cols,
                        });
                    }
                    self.pump_client(id);
                }
            }
            Ok(false) => {}
            Err(e) => log::warn!("{e}"),
        }
    }

    // ---- requests ----

    fn screenshot(&mut self, id: u32, target: &Target<'_>, formatted: bool) {
        let Some(ti) = self.term_index(target) else {
            if let Some(c) = self.clients.get_mut(&id) {
                c.fail(
                    ErrorCode::NoSuchTarget,
                    &format!("container {} has no {target}", self.cfg.id),
                );
            }
            return;
        };
        let Some(Some(t)) = self.terms.get_mut(ti) else {
            return;
        };
        t.screen.catch_up_all(&t.ring);
        let data = if formatted {
            t.screen.formatted()
        } else {
            t.screen.text().into_bytes()
        };
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        let chunk = berth_proto::frame::MAX_DATA - 1;
        let mut parts = data.chunks(chunk).peekable();
        if parts.peek().is_none() {
            c.queue(&Frame::Screenshot {
                last: true,
                data: &[],
            });
        }
        while let Some(p) = parts.next() {
            c.queue(&Frame::Screenshot {
                last: parts.peek().is_none(),
                data: p,
            });
        }
        c.close_when_flushed = true;
        c.state = State::Closing;
    }

    fn start_exec(&mut self, id: u32, rows: u16, cols: u16, options: &[&str], command: &[&str]) {
        let fail = |m: &mut Monitor, code, msg: String| {
            if let Some(c) = m.clients.get_mut(&id) {
                c.fail(code, &msg);
            }
        };
        let running = self.terms[0]
            .as_ref()
            .is_some_and(|t| t.pid.is_some() && t.exit.is_none());
        if !running || self.life != Life::Ready {
            return fail(
                self,
                ErrorCode::Failed,
                format!(
                    "cannot exec in container {}: it is not running",
                    self.cfg.id
                ),
            );
        }
        let ok = |d: u16| (1..=term::MAX_DIMENSION).contains(&d);
        let size = if rows == 0 && cols == 0 {
            self.terms[0].as_ref().map_or(Winsize::DEFAULT, |t| t.size)
        } else if ok(rows) && ok(cols) {
            Winsize::new(rows, cols)
        } else {
            return fail(
                self,
                ErrorCode::BadRequest,
                format!(
                    "exec-request frame: size {rows}x{cols}: rows and columns must each be from 1 to {}",
                    term::MAX_DIMENSION
                ),
            );
        };
        let base: serde_json::Value =
            serde_json::from_str(&self.bundle.process).unwrap_or_default();
        let process = match runtime::exec_process(&base, options, command, size) {
            Ok(p) => p,
            Err(e) => return fail(self, ErrorCode::BadRequest, e),
        };
        self.exec_seq += 1;
        let seq = self.exec_seq;
        let json = format!("exec-{seq}.json");
        let sockname = format!("exec-{seq}.sock");
        let setup = || -> Result<ConsoleListener, MonitorError> {
            write_file(
                self.dir.as_fd(),
                &json,
                serde_json::to_vec_pretty(&process)
                    .unwrap_or_default()
                    .as_slice(),
            )?;
            let l = ConsoleListener::bind(Path::new(&sock::path_in(self.dir.as_fd(), &sockname)))
                .map_err(|e| MonitorError::tty("exec console socket", e))?;
            set_nonblocking(l.as_fd())?;
            epoll::add(
                self.epoll(),
                &l,
                token(T_EXEC_LISTEN, u64::from(seq)),
                EventFlags::IN,
            )
            .map_err(|e| MonitorError::sys("epoll_ctl", &sockname, e))?;
            Ok(l)
        };
        let listener = match setup() {
            Ok(l) => l,
            Err(e) => return fail(self, ErrorCode::Failed, format!("exec: {e}")),
        };
        self.pending_exec.insert(
            seq,
            PendingExec {
                listener,
                master: None,
                requester: id,
                size,
                json: json.clone(),
            },
        );
        let args = vec![
            "--root".into(),
            self.cfg.root.display().to_string(),
            "exec".into(),
            "--detach".into(),
            "--tty".into(),
            "--console-socket".into(),
            self.external_path(&sockname),
            "--pid-file".into(),
            self.dir_path
                .join(format!("exec-{seq}.pid"))
                .display()
                .to_string(),
            "--process".into(),
            self.dir_path.join(&json).display().to_string(),
            self.cfg.id.clone(),
        ];
        if let Some(c) = self.clients.get_mut(&id) {
            c.state = State::WaitingExec;
        }
        if let Err(e) = self.spawn_job(JobKind::Exec { seq }, args) {
            self.finish_pending(seq);
            fail(self, ErrorCode::Failed, format!("exec: {e}"));
        }
    }

    fn finish_pending(&mut self, seq: u32) -> Option<PendingExec> {
        let p = self.pending_exec.remove(&seq)?;
        let _ = rustix::fs::unlinkat(self.dir.as_fd(), p.json.as_str(), AtFlags::empty());
        let sockname = format!("exec-{seq}.sock");
        let _ = rustix::fs::unlinkat(self.dir.as_fd(), sockname.as_str(), AtFlags::empty());
        let conns: Vec<u32> = self
            .conns
            .iter()
            .filter(|(_, c)| c.exec == Some(seq))
            .map(|(id, _)| *id)
            .collect();
        for c in conns {
            self.conns.remove(&c);
        }
        Some(p)
    }

    fn exec_done(&mut self, seq: u32, ok: bool, output: &str) {
        // Masters that arrived but whose events were not handled yet.
        self.accept_conns(Some(seq));
        let conns: Vec<u32> = self
            .conns
            .iter()
            .filter(|(_, c)| c.exec == Some(seq))
            .map(|(id, _)| *id)
            .collect();
        for c in conns {
            self.on_conn(c);
        }
        let Some(p) = self.finish_pending(seq) else {
            return;
        };
        let requester = p.requester;
        let name = seq.to_string();
        let result: Result<(usize, i32), String> = (|| {
            if !ok {
                return Err(format!("exec failed: {}", runtime::last_error(output)));
            }
            let master = p
                .master
                .ok_or_else(|| "exec failed: the runtime sent no terminal master".to_string())?;
            let pid = read_pid_file(self.dir.as_fd(), &format!("exec-{seq}.pid"))
                .ok_or_else(|| "exec failed: no pid in the runtime's pid file".to_string())?;
            self.forget_old_sessions();
            let ti = self
                .new_term(&name, Kind::Exec, &format!("exec-{seq}"), p.size)
                .map_err(|e| format!("exec: {e}"))?;
            if let Some(t) = self.terms[ti].as_mut() {
                t.pid = Some(pid);
            }
            self.install_master(ti, master)
                .map_err(|e| format!("exec: {e}"))?;
            Ok((ti, pid))
        })();
        match result {
            Ok((_, pid)) => {
                log::info!("exec session {name}: pid {pid}");
                self.claim_exits();
                if let Some(c) = self.clients.get_mut(&requester) {
                    c.queue(&Frame::ExecStarted {
                        pid: pid as u32,
                        session: &name,
                    });
                    c.close_when_flushed = true;
                    c.state = State::Closing;
                }
            }
            Err(msg) => {
                if let Some(c) = self.clients.get_mut(&requester) {
                    c.fail(ErrorCode::Failed, &msg);
                }
            }
        }
        self.pump_client(requester);
    }

    fn forget_old_sessions(&mut self) {
        let execs: Vec<usize> = self
            .terms
            .iter()
            .enumerate()
            .filter(|(_, t)| t.as_ref().is_some_and(|t| t.kind == Kind::Exec))
            .map(|(i, _)| i)
            .collect();
        if execs.len() < MAX_EXEC_SESSIONS {
            return;
        }
        if let Some(&old) = execs.iter().find(|&&i| {
            self.terms[i]
                .as_ref()
                .is_some_and(|t| t.exit.is_some() && t.clients.is_empty())
        }) {
            log::info!(
                "forgetting finished exec session {}",
                self.terms[old].as_ref().map_or("", |t| &t.name)
            );
            self.terms[old] = None;
        }
    }

    fn report_json(&self) -> String {
        let head = |t: &Term| t.ring.head();
        let sessions: Vec<serde_json::Value> = self
            .terms
            .iter()
            .flatten()
            .map(|t| {
                let clients: Vec<serde_json::Value> = t
                    .clients
                    .iter()
                    .filter_map(|id| self.clients.get(id))
                    .map(|c| {
                        serde_json::json!({
                            "id": c.id,
                            "pid": c.pid,
                            "uid": c.uid,
                            "role": if c.role == Role::ReadWrite { "rw" } else { "ro" },
                            "size": c.size.map(|s| s.to_string()),
                            "ignore_size": c.ignore_size,
                            "flow": match c.flow {
                                berth_proto::Flow::SkipToRepaint => "repaint",
                                berth_proto::Flow::Disconnect => "disconnect",
                                berth_proto::Flow::CatchUp => "catch-up",
                            },
                            "bytes": c.bytes,
                            "lag": c.lag(head(t)),
                            "drops": c.drops,
                            "skips": c.skips,
                            "input_bytes": c.input_bytes,
                            "output": if c.out.is_some() { "direct" } else { "frames" },
                            "input": c.input.name(),
                        })
                    })
                    .collect();
                serde_json::json!({
                    "name": t.name,
                    "kind": match t.kind { Kind::Console => "console", Kind::Tty(_) => "tty", Kind::Exec => "exec" },
                    "pid": t.pid,
                    "status": t.status(),
                    "exit_code": t.exit.map(|e| e.code()),
                    "size": t.size.to_string(),
                    "offset": head(t),
                    "ring_start": t.ring.start(),
                    "log_oldest": t.raw.oldest(),
                    "rotations": t.raw.rotations(),
                    "screen_resyncs": t.screen.resyncs(),
                    "input_dropped": t.input_dropped,
                    "clients": clients,
                })
            })
            .collect();
        serde_json::json!({
            "container": self.cfg.id,
            "monitor_pid": rustix::process::getpid().as_raw_nonzero().get(),
            "size_policy": self.settings.size_policy.name(),
            "ring_size": self.settings.ring_size,
            "queue_limit": self.settings.queue_limit,
            "sessions": sessions,
        })
        .to_string()
    }

    // ---- end of a loop turn ----

    fn after_turn(&mut self, idle: bool) -> Result<(), MonitorError> {
        let now = clock::monotonic_secs();
        // Masters: read what is there (bounded), then serve clients from the ring.
        let mut scratch = std::mem::take(&mut self.scratch);
        for ti in 0..self.terms.len() {
            let Some(Some(t)) = self.terms.get_mut(ti) else {
                continue;
            };
            if t.master.is_none() {
                continue;
            }
            let mut got = 0;
            if t.readable || (t.exit.is_some() && !t.drained) {
                let r = t.read_master(&mut scratch, READ_BUDGET, now)?;
                t.readable = r.more;
                got = r.bytes;
                if t.exit.is_some() && !r.more {
                    t.drained = true;
                }
            }
            if t.input_len() > 0 {
                t.write_input();
            }
            // Clients: small output goes out at once (keystroke echo); a bulk read is gathered
            // for up to COALESCE_SECS or COALESCE_BYTES per client, so a stream moves in large
            // frames instead of one per 4 KiB the tty hands over.
            let bulk = got >= BULK_READ;
            let due = t.pump_due.is_some_and(|d| d <= now) || t.exit.is_some();
            if got > 0 || due || t.exit.is_some() {
                let head = t.ring.head();
                let ids: Vec<u32> = t
                    .clients
                    .iter()
                    .copied()
                    .filter(|id| {
                        !bulk
                            || due
                            || self.clients.get(id).is_none_or(|c| {
                                !matches!(c.phase, Phase::Live)
                                    || c.lag(head) >= COALESCE_BYTES
                                    || c.out_armed
                            })
                    })
                    .collect();
                let all = ids.len() == t.clients.len();
                if all {
                    t.pump_due = None;
                } else if t.pump_due.is_none() {
                    t.pump_due = Some(now + COALESCE_SECS);
                }
                self.scratch = std::mem::take(&mut scratch);
                for id in ids {
                    self.pump_client(id);
                }
                scratch = std::mem::take(&mut self.scratch);
            }
            // Logs, after the clients so they never delay an echo: small output (interactive)
            // is written at once; bulk output when the buffer fills, else within LOG_FLUSH of
            // its first byte (and at once after the exit).
            let Some(Some(t)) = self.terms.get_mut(ti) else {
                continue;
            };
            let small = got > 0 && got < BULK_READ && t.flush_due.is_none();
            if got >= BULK_READ && t.flush_due.is_none() {
                t.flush_due = Some(now + LOG_FLUSH);
            }
            if small || t.exit.is_some() || t.flush_due.is_some_and(|d| d <= now) {
                let _ = t.flush_logs();
                t.flush_due = None;
            }
            self.update_input_pause(ti);
            self.master_interest(ti);
        }
        self.scratch = scratch;
        // Terminals without a master that ended (an exec whose master never came): drained.
        for t in self.terms.iter_mut().flatten() {
            if t.master.is_none() && t.exit.is_some() {
                t.drained = true;
            }
        }
        // Deadlines.
        self.release_held_keys(now);
        let expired: Vec<u32> = self
            .clients
            .values()
            .filter(|c| matches!(c.state, State::Handshake { deadline } if deadline <= now))
            .map(|c| c.id)
            .collect();
        for id in expired {
            if let Some(c) = self.clients.get_mut(&id) {
                c.fail(
                    ErrorCode::BadFrame,
                    &format!("no frame within {HANDSHAKE_SECS} seconds of connecting"),
                );
            }
            self.pump_client(id);
        }
        for t in self.terms.iter_mut().flatten() {
            // A partial line that waited a second goes to the CRI log as a `P` entry.
            if t.cri_partial_since.is_some_and(|since| since <= now - 1.0) {
                t.flush_cri_partial(now - 1.0)?;
                t.flush_logs()?;
                t.flush_due = None;
            }
        }
        // Idle: parse a slice of screen backlog.
        if idle {
            let mut parsed = false;
            for t in self.terms.iter_mut().flatten() {
                if t.screen.parsed() < t.ring.head() {
                    t.screen.catch_up(&t.ring, PARSE_SLICE);
                    parsed = true;
                    break;
                }
            }
            self.idle_parse = parsed;
        } else {
            self.idle_parse = false;
        }
        // The end: the init is gone, its output drained, and the runtime deleted the container.
        if self.console_done() && self.life == Life::Ready && now - self.last_state_check >= 0.25 {
            self.last_state_check = now;
            let gone =
                rustix::fs::statat(&self.root, self.cfg.id.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .is_err();
            if gone {
                log::info!("container {} deleted: the monitor exits", self.cfg.id);
                for id in self.clients.keys().copied().collect::<Vec<_>>() {
                    self.pump_client(id);
                }
                for t in self.terms.iter_mut().flatten() {
                    let _ = t.flush_logs();
                }
                remove_monitor_dir(self.dir.as_fd(), &self.dir_path);
                self.quit = Some(0);
            }
        }
        // A container created but never started whose init died (deleted meanwhile): also done
        // through the same check, since the console then has an exit too.
        if self.life == Life::Creating || self.life == Life::Starting {
            // Nothing: waiting for the runtime.
        }
        Ok(())
    }
}

fn file_stem(t: &Term) -> String {
    match t.kind {
        Kind::Exec => format!("exec-{}", t.name),
        _ => t.name.clone(),
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), MonitorError> {
    let fl = rustix::fs::fcntl_getfl(fd).map_err(|e| MonitorError::sys("fcntl", "F_GETFL", e))?;
    rustix::fs::fcntl_setfl(fd, fl | OFlags::NONBLOCK)
        .map_err(|e| MonitorError::sys("fcntl", "F_SETFL", e))
}

fn raise_nofile() {
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if let Some(max) = lim.maximum {
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(max),
                maximum: Some(max),
            },
        );
    }
}

fn write_pid(path: &Path, pid: i32) -> Result<(), MonitorError> {
    let tmp = path.with_extension("tmp-berth-monitor");
    std::fs::write(&tmp, pid.to_string())
        .map_err(|e| MonitorError::sys("write", tmp.display(), e))?;
    std::fs::rename(&tmp, path).map_err(|e| MonitorError::sys("rename", path.display(), e))
}
