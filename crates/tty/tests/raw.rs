//! Raw mode: byte-identical restore (drop, explicit, panic hook, panic with the guard leaked),
//! OPOST kept, and no raw mode for a background job.

mod common;

use std::io::BufRead;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_tty::PtyPair;
use berth_tty::raw::{RawGuard, make_raw, set_onlcr};
use common::{HELPER, termios_bytes, wait_timeout};
use rustix::termios::{InputModes, LocalModes, OutputModes, tcgetattr};

#[test]
fn guard_makes_raw_keeps_opost_and_restores_byte_identically() {
    let pair = PtyPair::open_host().unwrap();
    let before = termios_bytes(&pair.peer);
    let t0 = tcgetattr(&pair.peer).unwrap();
    assert!(
        t0.local_modes
            .contains(LocalModes::ICANON | LocalModes::ECHO)
    );
    {
        // The peer is not our controlling terminal: enter proceeds.
        let _guard = RawGuard::enter(pair.peer.as_fd())
            .unwrap()
            .expect("entered");
        let t = tcgetattr(&pair.peer).unwrap();
        assert!(
            !t.local_modes
                .intersects(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG)
        );
        assert!(
            !t.input_modes
                .intersects(InputModes::ICRNL | InputModes::IXON)
        );
        assert!(
            t.output_modes
                .contains(OutputModes::OPOST | OutputModes::ONLCR)
        );
        assert_eq!(t.output_modes, t0.output_modes);
        assert_ne!(termios_bytes(&pair.peer), before);
    }
    assert_eq!(termios_bytes(&pair.peer), before);
}

#[test]
fn explicit_restore_then_drop_is_harmless() {
    let pair = PtyPair::open_host().unwrap();
    let before = termios_bytes(&pair.peer);
    let mut guard = RawGuard::enter(pair.peer.as_fd())
        .unwrap()
        .expect("entered");
    guard.restore().unwrap();
    assert_eq!(termios_bytes(&pair.peer), before);
    // Something else changes the settings after the restore: a second restore must not undo it.
    set_onlcr(pair.peer.as_fd(), false).unwrap();
    let changed = termios_bytes(&pair.peer);
    guard.restore().unwrap();
    drop(guard);
    assert_eq!(termios_bytes(&pair.peer), changed);
}

#[test]
fn onlcr_and_make_raw() {
    let pair = PtyPair::open_host().unwrap();
    set_onlcr(pair.master.as_fd(), false).unwrap();
    assert!(
        !tcgetattr(&pair.peer)
            .unwrap()
            .output_modes
            .contains(OutputModes::ONLCR)
    );
    rustix::io::write(&pair.peer, b"a\nb\n").unwrap();
    let mut buf = [0u8; 16];
    let n = rustix::io::read(&pair.master, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"a\nb\n");
    set_onlcr(pair.peer.as_fd(), true).unwrap();
    rustix::io::write(&pair.peer, b"c\n").unwrap();
    let n = rustix::io::read(&pair.master, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"c\r\n");
    make_raw(pair.peer.as_fd()).unwrap();
    assert!(
        !tcgetattr(&pair.peer)
            .unwrap()
            .output_modes
            .contains(OutputModes::OPOST)
    );
}

#[test]
fn enter_on_a_non_terminal_fails() {
    let null = std::fs::File::open("/dev/null").unwrap();
    let err = RawGuard::enter(null.as_fd()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTTY), "{err}");
}

/// Runs `berth-tty-run --selftest raw-hold MODE` with the peer as stdin; returns (termios before,
/// termios after, exit code).
fn raw_hold(mode: &str) -> (Vec<u8>, Vec<u8>, Option<i32>) {
    let pair = PtyPair::open_host().unwrap();
    let before = termios_bytes(&pair.peer);
    let mut child = Command::new(HELPER)
        .args(["--selftest", "raw-hold", mode])
        .stdin(Stdio::from(pair.peer.try_clone().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "raw\n");
    // While the helper holds the guard, the terminal is raw.
    let t = tcgetattr(&pair.peer).unwrap();
    assert!(
        !t.local_modes.contains(LocalModes::ICANON),
        "{mode}: not raw while held"
    );
    rustix::io::write(&pair.master, b"x").unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(10));
    (before, termios_bytes(&pair.peer), status.code())
}

#[test]
fn restored_after_normal_drop_in_a_child() {
    let (before, after, code) = raw_hold("drop");
    assert_eq!(code, Some(0));
    assert_eq!(after, before);
}

#[test]
fn restored_after_a_panic_in_a_child() {
    let (before, after, code) = raw_hold("panic");
    assert_eq!(code, Some(101));
    assert_eq!(after, before);
}

#[test]
fn panic_hook_alone_restores_when_the_guard_is_leaked() {
    let (before, after, code) = raw_hold("panic-leak");
    assert_eq!(code, Some(101));
    assert_eq!(after, before);
}

#[test]
fn leaked_guard_without_panic_stays_raw() {
    // Control for the two tests above: the comparison does detect an unrestored terminal.
    let (before, after, code) = raw_hold("leak");
    assert_eq!(code, Some(0));
    assert_ne!(after, before);
}

#[test]
fn background_job_does_not_enter_raw_mode_or_stop() {
    let pair = PtyPair::open_host().unwrap();
    let before = termios_bytes(&pair.peer);
    let mut child = Command::new(HELPER)
        .args(["--selftest", "raw-background"])
        .stdin(Stdio::from(pair.peer.try_clone().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(10));
    let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(status.success(), "{status}: {err}");
    assert_eq!(out, "fg:entered\nbg:skipped\n");
    assert_eq!(termios_bytes(&pair.peer), before);
}

fn host_console_in_child(stdin: Stdio, stdout_tty: Option<&PtyPair>) -> String {
    let mut cmd = Command::new(HELPER);
    cmd.args(["--selftest", "host-console"])
        .stdin(stdin)
        .stderr(Stdio::null());
    let out = match stdout_tty {
        None => cmd.output().unwrap().stdout,
        Some(pair) => {
            let mut child = cmd
                .stdout(Stdio::from(pair.peer.try_clone().unwrap()))
                .spawn()
                .unwrap();
            assert!(wait_timeout(&mut child, Duration::from_secs(10)).success());
            let mut buf = [0u8; 256];
            let n = rustix::io::read(&pair.master, &mut buf).unwrap();
            buf[..n].to_vec()
        }
    };
    String::from_utf8(out).unwrap()
}

#[test]
fn host_console_is_the_first_terminal_or_a_runc_style_error() {
    assert_eq!(
        host_console_in_child(Stdio::null(), None),
        "error: open /dev/tty: no such device or address\n"
    );
    let pair = PtyPair::open_host().unwrap();
    let stdin = Stdio::from(pair.peer.try_clone().unwrap());
    assert_eq!(host_console_in_child(stdin, None), "stdio 0\n");
    let out = PtyPair::open_host().unwrap();
    set_onlcr(out.peer.as_fd(), false).unwrap();
    assert_eq!(
        host_console_in_child(Stdio::null(), Some(&out)),
        "stdio 1\n"
    );
}
