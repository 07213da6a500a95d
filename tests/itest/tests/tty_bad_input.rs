//! Bad terminal input (security.md K-01..K-04, K-07, K-11): each case exits 1 with one clear
//! stderr line naming the path or field, and leaves nothing behind: `kernel.pty.nr` back where it
//! was, no state directory, no mount, no cgroup, no process ([`Leftovers`]).
//!
//! Console sockets given to `create --console-socket`: a path that does not exist, a regular
//! file, a directory, a socket nobody listens on (ECONNREFUSED), a datagram socket
//! (EPROTOTYPE), a path longer than `sun_path` (a real listening socket reached through a
//! 150-byte path), and the same for `exec -t -d --console-socket`. 107 bytes, the longest path
//! that fits, works.
//!
//! `process.consoleSize`: 0x0 is defined as unset (the container runs; the pty keeps the size
//! the kernel gives it); 65536, a negative number, a float and a string are errors naming
//! `consoleSize`. runc 1.1.5 wraps 65536 to 0 silently (it converts with `uint16(...)`) and
//! crun 1.8.1 truncates too: both accept it, which the test asserts. A consoleSize that is out of
//! range is ignored when `terminal` is false (the runtime-spec's MUST).

mod tty_common;

use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_itest::{
    Bundle, ConsoleReceiver, Kind, Leftovers, MasterIo, Output, Runtime, runtime_exclusive,
};
use serde_json::json;
use tty_common::{T, reference};

/// Exit status 1 within 5 s, and (for berth) exactly one stderr line containing every one of
/// `names`. The reference runtimes' texts differ; their status is still checked.
#[track_caller]
fn clear_err(rt: &Runtime, out: &Output, names: &[&str]) {
    clear_err_code(rt, out, 1, names);
}

/// [`clear_err`] with another exit status (`exec` failures exit 255, as with runc).
#[track_caller]
fn clear_err_code(rt: &Runtime, out: &Output, code: i32, names: &[&str]) {
    assert_eq!(out.code(), Some(code), "exit status: {out}");
    assert!(
        out.elapsed < Duration::from_secs(5),
        "took {:?}: {out}",
        out.elapsed
    );
    if reference(rt) {
        return;
    }
    let err = out.stderr_str();
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "want one stderr line: {out}");
    for n in names {
        assert!(lines[0].contains(n), "stderr does not name {n:?}: {out}");
    }
}

/// `create --console-socket SOCKET` of a terminal bundle, with a leftovers check around it.
fn create_with_socket(name: &str, socket: &Path, names: &[&str]) {
    create_with_socket_crun_ok(name, socket, names, None)
}

/// [`create_with_socket`]; `crun_ok`: crun 1.8.1 connects anyway (it reaches long paths
/// through their directory), and the container is then created and deleted.
/// The listener is closed before the leftovers check (a master sent into its backlog lives until
/// then).
fn create_with_socket_crun_ok(
    name: &str,
    socket: &Path,
    names: &[&str],
    listener: Option<UnixListener>,
) {
    let crun_ok = listener.is_some();
    let rt = runtime_exclusive();
    let id = rt.id(name);
    let mut b = Bundle::busybox();
    b.terminal(true);
    let l = Leftovers::snapshot(&rt, &[&id], &[b.path()]);
    let out = rt
        .cmd(["create", "--console-socket"])
        .arg(socket)
        .arg("--bundle")
        .arg(b.path())
        .arg(&id)
        .run();
    if crun_ok && rt.kind() == Kind::Crun {
        assert!(out.success(), "{out}");
        rt.delete_force(&id);
    } else {
        clear_err(&rt, &out, names);
    }
    drop(listener);
    l.assert_unchanged();
}

fn tmp() -> tempfile::TempDir {
    berth_itest::console::short_tmp_dir()
}

#[test]
fn console_socket_that_does_not_exist() {
    let d = tmp();
    let p = d.path().join("nope.sock");
    create_with_socket("cs-missing", &p, &[&p.to_string_lossy()]);
}

#[test]
fn console_socket_that_is_a_regular_file() {
    let d = tmp();
    let p = d.path().join("file");
    std::fs::write(&p, "not a socket").expect("write");
    create_with_socket("cs-file", &p, &[&p.to_string_lossy(), "regular file"]);
}

#[test]
fn console_socket_that_is_a_directory() {
    let d = tmp();
    create_with_socket(
        "cs-dir",
        d.path(),
        &[&d.path().to_string_lossy(), "directory"],
    );
}

#[test]
fn console_socket_nobody_listens_on() {
    let d = tmp();
    let p = d.path().join("dead.sock");
    // Bound, then closed: the file stays, connecting is refused.
    drop(UnixListener::bind(&p).expect("bind"));
    create_with_socket("cs-refused", &p, &[&p.to_string_lossy(), "refused"]);
}

#[test]
fn console_socket_that_is_a_datagram_socket() {
    let d = tmp();
    let p = d.path().join("dgram.sock");
    let _s = UnixDatagram::bind(&p).expect("bind datagram");
    create_with_socket("cs-dgram", &p, &[&p.to_string_lossy(), "stream"]);
}

/// A listening socket reachable through a path of exactly `len` bytes (bound through
/// `/proc/self/fd/N/…`, as conmon does, since `bind` itself has the same limit).
fn long_socket(len: usize) -> (tempfile::TempDir, PathBuf, UnixListener) {
    let d = tmp();
    let mut dir = d.path().to_path_buf();
    let base = dir.to_string_lossy().len();
    // Directories of up to 40 bytes until the rest fits in one file name of at least 5.
    while len - dir.to_string_lossy().len() > 46 {
        dir.push("d".repeat(40));
        std::fs::create_dir(&dir).expect("mkdir");
    }
    let name_len = len - dir.to_string_lossy().len() - 1;
    let path = dir.join("s".repeat(name_len));
    assert_eq!(path.to_string_lossy().len(), len, "base {base}");
    let dirfd = std::fs::File::open(&dir).expect("open dir");
    use std::os::fd::AsRawFd;
    let via = format!(
        "/proc/self/fd/{}/{}",
        dirfd.as_raw_fd(),
        "s".repeat(name_len)
    );
    let l = UnixListener::bind(&via).expect("bind through /proc/self/fd");
    assert!(path.exists());
    (d, path, l)
}

#[test]
fn console_socket_path_longer_than_sun_path() {
    let (_d, p, l) = long_socket(150);
    create_with_socket_crun_ok("cs-long", &p, &["108"], Some(l));
}

#[test]
fn console_socket_path_of_108_bytes() {
    // 108 bytes leave no room for the terminating NUL: refused like runc (Go's net package).
    let (_d, p, l) = long_socket(108);
    create_with_socket_crun_ok("cs-108", &p, &["108"], Some(l));
}

#[test]
fn console_socket_path_of_107_bytes_works() {
    let rt = runtime_exclusive();
    let d = tmp();
    let mut dir = d.path().to_path_buf();
    while 107 - dir.to_string_lossy().len() > 46 {
        dir.push("d".repeat(40));
        std::fs::create_dir(&dir).expect("mkdir");
    }
    let name_len = 107 - dir.to_string_lossy().len() - 1;
    let path = dir.join("s".repeat(name_len));
    assert_eq!(path.to_string_lossy().len(), 107);
    let rx = ConsoleReceiver::new_at(&path);
    let id = rt.id("cs-107");
    let mut b = Bundle::busybox();
    b.terminal(true).probe(&["write", "10"]);
    rt.guard().track(&id);
    rt.cmd(["run", "-d", "--console-socket"])
        .arg(&path)
        .arg("--bundle")
        .arg(b.path())
        .arg(&id)
        .ok();
    let console = rx.recv(T);
    assert_eq!(console.read_until_eof(T), berth_itest::pattern(10));
}

#[test]
fn exec_console_socket_that_does_not_exist() {
    let rt = runtime_exclusive();
    let id = rt.id("exec-cs-missing");
    let b = Bundle::busybox();
    rt.run_detached(&b, &id);
    let d = tmp();
    let p = d.path().join("nope.sock");
    let l = Leftovers::snapshot(&rt, &[&id], &[b.path()]);
    let out = rt
        .cmd(["exec", "-t", "-d", "--console-socket"])
        .arg(&p)
        .args([id.as_str(), "true"])
        .run();
    // runc exits 255 when exec fails ("exec failed: …"); berth keeps that for compatibility.
    // crun exits 1.
    let code = if rt.kind() == Kind::Crun { 1 } else { 255 };
    clear_err_code(&rt, &out, code, &[&p.to_string_lossy()]);
    l.assert_unchanged();
    // The container is untouched.
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
}

/// `create --console-socket` (a working receiver) with `consoleSize` set to `size`.
fn create_with_size(
    name: &str,
    terminal: bool,
    size: serde_json::Value,
) -> (Runtime, Output, Leftovers, String) {
    let rt = runtime_exclusive();
    let id = rt.id(name);
    let mut b = Bundle::busybox();
    b.terminal(terminal)
        .probe(&["winsize"])
        .config(|c| c["process"]["consoleSize"] = size);
    let l = Leftovers::snapshot(&rt, &[&id], &[b.path()]);
    rt.guard().track(&id);
    let out = if terminal {
        let rx = ConsoleReceiver::new();
        let out = rt
            .cmd(["create", "--console-socket"])
            .arg(rx.path())
            .arg("--bundle")
            .arg(b.path())
            .arg(&id)
            .run();
        if out.success() {
            let console = rx.recv(T);
            rt.start(&id);
            let text = String::from_utf8_lossy(&console.read_until_eof(T)).into_owned();
            rt.wait_for_status(&id, "stopped", T);
            rt.delete_force(&id);
            return (rt, out, l, text);
        }
        out
    } else {
        rt.cmd(["create", "--bundle"]).arg(b.path()).arg(&id).run()
    };
    (rt, out, l, String::new())
}

#[test]
fn console_size_0x0_means_unset() {
    let (rt, out, l, text) = create_with_size("size-0x0", true, json!({"height": 0, "width": 0}));
    assert!(out.success(), "{out}");
    // Nothing sized the pty: the kernel's 0x0, as with runc (which skips a 0 size).
    assert!(text.contains("winsize rows=0 cols=0"), "{text:?}");
    l.assert_unchanged();
    drop(rt);
}

#[test]
fn console_size_65536_is_an_error_not_a_wrap() {
    let (rt, out, l, text) =
        create_with_size("size-65536", true, json!({"height": 65536, "width": 80}));
    if reference(&rt) {
        // runc/crun: uint16(65536) == 0, so the height silently becomes 0, and a size with a 0
        // in it is not applied at all: the pty stays 0x0.
        assert!(out.success(), "{out}");
        assert!(text.contains("winsize rows=0 cols=0"), "{text:?}");
    } else {
        clear_err(&rt, &out, &["consoleSize", "65536"]);
    }
    l.assert_unchanged();
}

#[test]
fn console_size_negative_is_an_error() {
    let (rt, out, l, _) = create_with_size("size-neg", true, json!({"height": -1, "width": 80}));
    if rt.kind() == Kind::Crun {
        // crun 1.8.1 accepts it (its parser takes the number as is).
        assert!(out.success(), "{out}");
    } else {
        clear_err(&rt, &out, &["consoleSize"]);
    }
    l.assert_unchanged();
}

#[test]
fn console_size_float_is_an_error() {
    let (rt, out, l, _) =
        create_with_size("size-float", true, json!({"height": 24.5, "width": 80}));
    clear_err(&rt, &out, &["consoleSize"]);
    l.assert_unchanged();
}

#[test]
fn console_size_string_is_an_error() {
    let (rt, out, l, _) = create_with_size("size-str", true, json!({"height": "24", "width": 80}));
    if rt.kind() == Kind::Crun {
        // crun 1.8.1 ignores a consoleSize member of the wrong type.
        assert!(out.success(), "{out}");
    } else {
        clear_err(&rt, &out, &["consoleSize"]);
    }
    l.assert_unchanged();
}

#[test]
fn console_size_is_ignored_without_a_terminal() {
    let (rt, out, l, _) = create_with_size(
        "size-noterm",
        false,
        json!({"height": 100000, "width": 100000}),
    );
    assert!(out.success(), "{out}");
    let ids = std::fs::read_dir(rt.root()).map(|d| d.count()).unwrap_or(0);
    assert_eq!(ids, 1, "one container created");
    for e in std::fs::read_dir(rt.root()).expect("root").flatten() {
        rt.delete_force(&e.file_name().to_string_lossy());
    }
    l.assert_unchanged();
}
