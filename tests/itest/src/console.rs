//! Console-socket receivers: an in-test one ([`ConsoleReceiver`]) and the `recvtty` binary
//! ([`Recvtty`]).
//!
//! Both listen in a private `0700` directory under `/tmp` with a short path (`sun_path` is 108
//! bytes). The in-test receiver accepts exactly one connection on a background thread as soon
//! as it is created (so a runtime that waited for the receiver would still make progress),
//! receives one message and validates it with [`berth_helper::recv_console`]: exactly one
//! `SCM_RIGHTS` fd, a devpts pty master.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use berth_helper::ReceivedConsole;
use tempfile::TempDir;

use crate::cmd::{Cmd, Output, Running, wait_until};

/// A private, short temp dir (`/tmp/bi-XXXXXX`, mode 0700).
pub fn short_tmp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("bi-")
        .tempdir_in("/tmp")
        .expect("create /tmp/bi-* dir")
}

/// An in-test console-socket server that accepts one connection.
#[derive(Debug)]
pub struct ConsoleReceiver {
    _host: crate::hostlock::HostGuard,
    _dir: TempDir,
    path: PathBuf,
    rx: mpsc::Receiver<Result<ReceivedConsole, String>>,
    stop: Arc<AtomicBool>,
}

impl Default for ConsoleReceiver {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleReceiver {
    /// Listens at `/tmp/bi-XXXXXX/c.sock` and starts accepting.
    pub fn new() -> Self {
        let dir = short_tmp_dir();
        let path = dir.path().join("c.sock");
        Self::listen(dir, path)
    }

    /// Listens at `path` (which must not exist; it is not removed afterwards) and starts
    /// accepting.
    pub fn new_at(path: &Path) -> Self {
        Self::listen(short_tmp_dir(), path.to_path_buf())
    }

    fn listen(dir: TempDir, path: PathBuf) -> Self {
        let host = crate::hostlock::shared();
        let listener = UnixListener::bind(&path)
            .unwrap_or_else(|e| panic!("listen on {}: {e}", path.display()));
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                if !crate::cmd::readable_within(&listener, Duration::from_millis(100)) {
                    continue;
                }
                let conn = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => {
                        let _ = tx.send(Err(format!("accept: {e}")));
                        return;
                    }
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                let _ = tx.send(berth_helper::recv_console(&conn).map_err(|e| e.to_string()));
                return;
            }
        });
        Self {
            _host: host,
            _dir: dir,
            path,
            rx,
            stop,
        }
    }

    /// The socket path to pass as `--console-socket`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the master; `Err` with the reason if the message was invalid or nothing came.
    pub fn try_recv(&self, timeout: Duration) -> Result<ReceivedConsole, String> {
        match self.rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(_) => Err(format!(
                "no console received on {} within {timeout:?}",
                self.path.display()
            )),
        }
    }

    /// Waits for a valid master; panics otherwise.
    #[track_caller]
    pub fn recv(&self, timeout: Duration) -> ReceivedConsole {
        self.try_recv(timeout)
            .unwrap_or_else(|e| panic!("console socket: {e}"))
    }
}

impl Drop for ConsoleReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What `recvtty --dump` recorded for one received master.
#[derive(Debug, Clone)]
pub struct Dumped {
    /// The name payload.
    pub name: Vec<u8>,
    /// Every byte read from the master.
    pub out: Vec<u8>,
    /// The `.done` line (`bytes=N end=EIO`).
    pub done: String,
}

/// The `recvtty` helper binary running in the background with `--dump`.
#[derive(Debug)]
pub struct Recvtty {
    _host: crate::hostlock::HostGuard,
    running: Option<Running>,
    dir: TempDir,
    socket: PathBuf,
}

impl Recvtty {
    /// Starts `recvtty --mode MODE --no-stdin --dump DIR --pid-file FILE SOCKET` and waits until
    /// the pid file exists (the socket is listening).
    pub fn start(mode: &str) -> Self {
        let host = crate::hostlock::shared();
        let dir = short_tmp_dir();
        let socket = dir.path().join("r.sock");
        let pid_file = dir.path().join("pid");
        let running = Cmd::new(crate::probe::recvtty_path())
            .args(["--mode", mode, "--no-stdin", "--dump"])
            .arg(dir.path().join("dump"))
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(&socket)
            .timeout(Duration::from_secs(120))
            .spawn();
        wait_until("recvtty pid file", Duration::from_secs(10), || {
            pid_file.exists().then_some(())
        });
        Self {
            _host: host,
            running: Some(running),
            dir,
            socket,
        }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The dump directory.
    pub fn dump_dir(&self) -> PathBuf {
        self.dir.path().join("dump")
    }

    /// Waits until master number `n` reached EIO and returns what was dumped; panics after
    /// `timeout` (showing the `.err` file if the message was rejected).
    #[track_caller]
    pub fn wait_done(&self, n: usize, timeout: Duration) -> Dumped {
        let d = self.dump_dir();
        let done = wait_until(&format!("recvtty master #{n} EIO"), timeout, || {
            if let Ok(e) = std::fs::read_to_string(d.join(format!("{n}.err"))) {
                panic!("recvtty rejected console #{n}: {e}");
            }
            std::fs::read_to_string(d.join(format!("{n}.done"))).ok()
        });
        Dumped {
            name: std::fs::read(d.join(format!("{n}.name"))).unwrap_or_default(),
            out: std::fs::read(d.join(format!("{n}.out"))).unwrap_or_default(),
            done,
        }
    }

    /// Stops it (SIGKILL) and returns its output.
    pub fn stop(mut self) -> Output {
        self.running.take().expect("running").kill()
    }
}

impl Drop for Recvtty {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.kill();
        }
    }
}
