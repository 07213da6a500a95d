//! `recvtty`: a console-socket receiver with the command line of runc's test helper.
//!
//! ```text
//! recvtty [--pid-file FILE] [--mode single|null] [--no-stdin] [--dump DIR] SOCKET_PATH
//! ```
//!
//! It binds a `SOCK_STREAM` unix socket at `SOCKET_PATH` (an existing file is an error), writes
//! its pid to `--pid-file` (atomically, after the socket is listening, so the file's existence
//! means "ready"), and receives one message per connection carrying exactly one pty master
//! (checked by `berth_helper::recv_console`: one `SCM_RIGHTS` fd, devpts magic, rdev 5:2).
//!
//! - `--mode single` (default): handles one connection, then stops listening. ONLCR is cleared on
//!   the master (as runc's helper does), the master's output is copied to stdout and, unless
//!   `--no-stdin`, stdin is copied to the master. Exits 0 when the master reports EIO (every
//!   peer closed), 1 if the message was invalid.
//! - `--mode null`: accepts forever; each master's output is read and discarded until EIO.
//!   Termios is left as received.
//! - `--dump DIR` (extension): for the n-th received master (n from 0), writes the name payload
//!   to `DIR/n.name`, appends every byte read from the master to `DIR/n.out`, and when the master
//!   reports EIO (or another read error) writes `DIR/n.done` containing `bytes=N end=ERRNO`. A
//!   rejected message writes `DIR/n.err` with the reason instead.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use berth_helper::{errno_name, recv_console};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Single,
    Null,
}

struct Opts {
    pid_file: Option<PathBuf>,
    mode: Mode,
    no_stdin: bool,
    dump: Option<PathBuf>,
    socket: PathBuf,
}

const USAGE: &str =
    "usage: recvtty [--pid-file FILE] [--mode single|null] [--no-stdin] [--dump DIR] SOCKET_PATH";

fn fail(msg: &str) -> ! {
    eprintln!("recvtty: {msg}");
    std::process::exit(1)
}

fn parse_args() -> Opts {
    let mut pid_file = None;
    let mut mode = Mode::Single;
    let mut no_stdin = false;
    let mut dump = None;
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    let mut only_positional = false;
    while let Some(arg) = args.next() {
        if only_positional || arg == "-" || !arg.starts_with('-') {
            positional.push(arg);
            continue;
        }
        if arg == "--" {
            only_positional = true;
            continue;
        }
        // Go-style flags: one or two dashes, value inline after '=' or as the next argument.
        let f = arg.trim_start_matches('-');
        let (flag, inline) = match f.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (f.to_string(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .unwrap_or_else(|| fail(&format!("flag --{name} needs a value\n{USAGE}")))
        };
        match flag.as_str() {
            "pid-file" => pid_file = Some(PathBuf::from(value("pid-file"))),
            "mode" => {
                mode = match value("mode").as_str() {
                    "single" => Mode::Single,
                    "null" => Mode::Null,
                    other => fail(&format!(
                        "need mode to be 'single' or 'null', got {other:?}"
                    )),
                }
            }
            "no-stdin" => no_stdin = true,
            "dump" => dump = Some(PathBuf::from(value("dump"))),
            "h" | "help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other => fail(&format!("unknown flag --{other}\n{USAGE}")),
        }
    }
    if positional.len() != 1 {
        fail(&format!("need exactly one socket path\n{USAGE}"));
    }
    Opts {
        pid_file,
        mode,
        no_stdin,
        dump,
        socket: PathBuf::from(positional.remove(0)),
    }
}

fn write_pid_file(path: &Path) {
    let tmp = path.with_extension("recvtty-tmp");
    std::fs::write(&tmp, format!("{}\n", std::process::id()))
        .and_then(|()| std::fs::rename(&tmp, path))
        .unwrap_or_else(|e| fail(&format!("write pid file {}: {e}", path.display())));
}

/// Reads the master until an error (EIO once every peer is closed), passing each chunk to
/// `sink`. Returns the byte count and the errno name that ended the stream.
fn drain(master: &OwnedFd, mut sink: impl FnMut(&[u8])) -> (u64, String) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match rustix::io::read(master, &mut buf) {
            Ok(0) => return (total, "EOF".into()),
            Ok(n) => {
                total += n as u64;
                sink(&buf[..n]);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return (total, errno_name(e.raw_os_error())),
        }
    }
}

/// Handles one connection; `n` numbers the dump files. Returns false if the message was bad.
fn handle(conn: UnixStream, n: usize, opts: &Opts) -> bool {
    let received = match recv_console(&conn) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("recvtty: connection {n}: {e}");
            if let Some(dir) = &opts.dump {
                let _ = std::fs::write(dir.join(format!("{n}.err")), format!("{e}\n"));
            }
            return false;
        }
    };
    drop(conn);
    let mut out_file = opts.dump.as_ref().map(|dir| {
        let _ = std::fs::write(dir.join(format!("{n}.name")), &received.name);
        File::create(dir.join(format!("{n}.out")))
            .unwrap_or_else(|e| fail(&format!("create dump file in {}: {e}", dir.display())))
    });
    let master = received.master;
    let mut stdout = std::io::stdout();
    if opts.mode == Mode::Single {
        if let Ok(mut t) = rustix::termios::tcgetattr(&master) {
            t.output_modes.remove(rustix::termios::OutputModes::ONLCR);
            let _ = rustix::termios::tcsetattr(&master, rustix::termios::OptionalActions::Now, &t);
        }
        if !opts.no_stdin {
            let input = master
                .try_clone()
                .unwrap_or_else(|e| fail(&format!("dup master: {e}")));
            std::thread::spawn(move || {
                let mut stdin = std::io::stdin().lock();
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(k) = stdin.read(&mut buf) {
                    if k == 0 || rustix::io::write(&input, &buf[..k]).is_err() {
                        break;
                    }
                }
            });
        }
    }
    let (total, end) = drain(&master, |chunk| {
        if let Some(f) = out_file.as_mut() {
            let _ = f.write_all(chunk);
        }
        if opts.mode == Mode::Single {
            let _ = stdout.write_all(chunk).and_then(|()| stdout.flush());
        }
    });
    if let Some(dir) = &opts.dump {
        // Atomically: a reader that sees the file sees its content.
        let tmp = dir.join(format!(".{n}.done.tmp"));
        let _ = std::fs::write(&tmp, format!("bytes={total} end={end}\n"))
            .and_then(|()| std::fs::rename(&tmp, dir.join(format!("{n}.done"))));
    }
    true
}

fn main() {
    let opts = parse_args();
    if let Some(dir) = &opts.dump {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| fail(&format!("create dump dir {}: {e}", dir.display())));
    }
    let listener = UnixListener::bind(&opts.socket)
        .unwrap_or_else(|e| fail(&format!("listen on {}: {e}", opts.socket.display())));
    if let Some(p) = &opts.pid_file {
        write_pid_file(p);
    }
    match opts.mode {
        Mode::Single => {
            let (conn, _) = listener
                .accept()
                .unwrap_or_else(|e| fail(&format!("accept: {e}")));
            drop(listener);
            let ok = handle(conn, 0, &opts);
            std::process::exit(if ok { 0 } else { 1 });
        }
        Mode::Null => {
            let opts = std::sync::Arc::new(opts);
            for n in 0.. {
                let conn = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => fail(&format!("accept: {e}")),
                };
                let opts = std::sync::Arc::clone(&opts);
                std::thread::spawn(move || handle(conn, n, &opts));
            }
        }
    }
}
