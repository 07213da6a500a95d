//! Helpers shared by the `tty_*` integration tests (included with `mod tty_common;`; not a test
//! target of its own). Every helper drives a pty the test allocated itself ([`Pty`]).
#![allow(dead_code)]

use std::time::Duration;

use berth_itest::{Bundle, ConsoleReceiver, Kind, MasterIo, Output, Pty, ReceivedConsole, Runtime};

/// The default watchdog for one terminal operation.
pub const T: Duration = Duration::from_secs(20);

/// `bytes` as a terminal with ONLCR shows them: every `\n` becomes `\r\n`.
pub fn onlcr(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    for &b in bytes {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// The first offset where `got` and `want` differ, with a little context, for failure messages.
pub fn first_difference(got: &[u8], want: &[u8]) -> String {
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let ctx = |v: &[u8]| {
        let s = at.saturating_sub(16);
        let e = (at + 16).min(v.len());
        String::from_utf8_lossy(&v[s.min(e)..e]).into_owned()
    };
    format!(
        "got {} bytes, want {}; first difference at {at}: got {:?}, want {:?}",
        got.len(),
        want.len(),
        ctx(got),
        ctx(want)
    )
}

/// Runs `run --bundle B ID` in the foreground on a new pty of the test (the runtime's stdio
/// and controlling terminal). Returns the runtime's result and every byte the terminal showed.
pub fn run_on_pty(rt: &Runtime, b: &Bundle, id: &str, rows: u16, cols: u16) -> (Output, Vec<u8>) {
    let mut pty = Pty::new();
    pty.set_size(rows, cols);
    let running = pty.spawn(rt.run_cmd(b, id).timeout(T));
    let text = pty.read_until_eof(T);
    (running.wait(), text)
}

/// Runs `exec -t ID ARGS...` in the foreground on a new pty of the test.
pub fn exec_on_pty(
    rt: &Runtime,
    id: &str,
    args: &[&str],
    rows: u16,
    cols: u16,
) -> (Output, Vec<u8>) {
    let mut pty = Pty::new();
    pty.set_size(rows, cols);
    let running = pty.spawn(rt.cmd(["exec", "-t", id]).args(args).timeout(T));
    let text = pty.read_until_eof(T);
    (running.wait(), text)
}

/// A detached container with a terminal (`run -d --console-socket`) running `args`; returns
/// the received master (the container runs until the master is closed or it is killed).
pub fn detached_terminal(rt: &Runtime, b: &mut Bundle, id: &str) -> ReceivedConsole {
    b.terminal(true);
    let rx = ConsoleReceiver::new();
    rt.guard().track(id);
    rt.guard().track_bundle(b.path());
    rt.cmd(["run", "-d", "--console-socket"])
        .arg(rx.path())
        .arg("--bundle")
        .arg(b.path())
        .arg(id)
        .ok();
    let console = rx.recv(T);
    rt.wait_for_status(id, "running", T);
    console
}

/// A detached container without a terminal running `/probe sleep-forever` (for `exec`).
pub fn sleeper(rt: &Runtime, id: &str) -> Bundle {
    let b = Bundle::busybox();
    rt.run_detached(&b, id);
    b
}

/// Whether the runtime is one of the reference runtimes (runc, crun) rather than berth.
pub fn reference(rt: &Runtime) -> bool {
    matches!(rt.kind(), Kind::Runc | Kind::Crun)
}

/// The terminal's input queue length, as seen on `fd` (a peer in raw mode counts every byte).
pub fn queued(fd: impl std::os::fd::AsFd) -> u64 {
    rustix::io::ioctl_fionread(fd).expect("FIONREAD")
}

/// Puts the pty `peer` in raw mode (as seen through either side).
pub fn make_raw(fd: impl std::os::fd::AsFd) {
    let mut t = rustix::termios::tcgetattr(&fd).expect("tcgetattr");
    t.make_raw();
    rustix::termios::tcsetattr(&fd, rustix::termios::OptionalActions::Now, &t).expect("raw");
}

/// Reads whatever `m` shows until `needle` appears; returns it as (lossy) text.
#[track_caller]
pub fn until(m: &impl MasterIo, needle: &str) -> String {
    String::from_utf8_lossy(&m.read_until(needle.as_bytes(), T)).into_owned()
}
