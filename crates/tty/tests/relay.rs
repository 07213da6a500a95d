//! The foreground relay, driven through `berth-tty-run` (the relay blocks signals, which must not
//! happen in the test harness): exact byte counts, exit statuses, VEOF, signal forwarding,
//! SIGWINCH, a peer that closes and reopens, and a dead stdout.

mod common;

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tty::{PtyPair, Winsize};
use common::{
    HELPER, Reaper, children, kill, read_to_end, read_until, termios_bytes, wait_readable,
    wait_timeout, wait_until,
};

const SIZES: [usize; 8] = [0, 1, 4095, 4096, 4097, 17 * 1024, 20 * 1024, 1024 * 1024];
const T: Duration = Duration::from_secs(20);

/// The `emit` selftest's pattern (keep in sync with the helper).
fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            if i % 64 == 63 {
                b'\n'
            } else {
                b'!' + (i % 89) as u8
            }
        })
        .collect()
}

fn helper(args: &[&str]) -> Command {
    let mut cmd = Command::new(HELPER);
    cmd.args(args);
    cmd
}

/// Runs the helper with stdin from `input` (None: /dev/null), stdout/stderr captured.
fn run(args: &[&str], input: Option<Vec<u8>>) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    let mut cmd = helper(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = Reaper(cmd.spawn().unwrap());
    let writer = input.map(|data| {
        let mut stdin = child.0.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        })
    });
    let stdout = OwnedFd::from(child.0.stdout.take().unwrap());
    let stderr = OwnedFd::from(child.0.stderr.take().unwrap());
    let err_reader = std::thread::spawn(move || read_to_end(stderr.as_fd(), T));
    let out = read_to_end(stdout.as_fd(), T);
    let status = wait_timeout(&mut child.0, T);
    if let Some(w) = writer {
        w.join().unwrap();
    }
    (status.code(), out, err_reader.join().unwrap())
}

fn emit_args(mode: &[&'static str], n: usize) -> Vec<String> {
    let mut v: Vec<String> = mode.iter().map(|s| s.to_string()).collect();
    v.extend([
        "--".into(),
        HELPER.into(),
        "--selftest".into(),
        "emit".into(),
        n.to_string(),
    ]);
    v
}

fn check_exact(mode: &[&'static str]) {
    for n in SIZES {
        let args = emit_args(mode, n);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = run(&args, None);
        assert_eq!(
            code,
            Some(0),
            "{mode:?} n={n}: {}",
            String::from_utf8_lossy(&err)
        );
        assert_eq!(out.len(), n, "{mode:?}: byte count");
        assert!(out == pattern(n), "{mode:?} n={n}: content differs");
    }
}

#[test]
fn terminal_mode_delivers_exactly_n_bytes() {
    // ONLCR cleared on the container pty (berth's foreground default): bytes pass unchanged.
    check_exact(&[]);
}

#[test]
fn terminal_mode_raw_peer_delivers_exactly_n_bytes() {
    check_exact(&["--raw-peer"]);
}

#[test]
fn pipe_mode_delivers_exactly_n_bytes() {
    check_exact(&["--pipes"]);
}

#[test]
fn repeated_short_writers_lose_nothing() {
    for _ in 0..30 {
        let args = emit_args(&[], 4097);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, _) = run(&args, None);
        assert_eq!(code, Some(0));
        assert!(out == pattern(4097), "lost bytes: got {}", out.len());
    }
}

#[test]
fn keep_onlcr_translates_newlines() {
    let (code, out, _) = run(&["--keep-onlcr", "--", "printf", "a\\nb\\n"], None);
    assert_eq!(code, Some(0));
    assert_eq!(out, b"a\r\nb\r\n");
}

#[test]
fn exit_codes_and_signals() {
    for mode in [&[][..], &["--pipes"][..]] {
        let mut args = mode.to_vec();
        args.extend(["--", "sh", "-c", "exit 3"]);
        assert_eq!(run(&args, None).0, Some(3), "{mode:?}");
        let mut args = mode.to_vec();
        args.extend(["--", "sh", "-c", "kill -KILL $$"]);
        assert_eq!(run(&args, None).0, Some(137), "{mode:?}");
        let mut args = mode.to_vec();
        args.extend(["--", "sh", "-c", "kill -TERM $$"]);
        assert_eq!(run(&args, None).0, Some(143), "{mode:?}");
        let mut args = mode.to_vec();
        args.extend(["--", "true"]);
        assert_eq!(run(&args, None).0, Some(0), "{mode:?}");
    }
}

#[test]
fn many_short_runs_never_hang() {
    // The SIGCHLD-before-relay race (runc#5208): a child that exits at once.
    for _ in 0..50 {
        assert_eq!(run(&["--", "true"], None).0, Some(0));
    }
}

#[test]
fn stdin_eof_sends_veof_to_cat() {
    // Partial last line: two VEOFs (one ends the line, one is end of file).
    let (code, out, err) = run(&["--", "cat"], Some(b"hello".to_vec()));
    assert_eq!(code, Some(0), "{}", String::from_utf8_lossy(&err));
    // Echo plus cat's copy.
    assert_eq!(out, b"hellohello");
    // Complete lines: one VEOF.
    let (code, out, _) = run(&["--", "cat"], Some(b"a\nb\n".to_vec()));
    assert_eq!(code, Some(0));
    assert_eq!(out, b"a\nb\na\nb\n");
    // No input at all.
    let (code, out, _) = run(&["--", "cat"], Some(Vec::new()));
    assert_eq!(code, Some(0));
    assert_eq!(out, b"");
}

#[test]
fn stdin_eof_closes_the_pipe_in_pass_through_mode() {
    let (code, out, _) = run(&["--pipes", "--", "cat"], Some(b"abc".to_vec()));
    assert_eq!(code, Some(0));
    assert_eq!(out, b"abc");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let (code, out, _) = run(&["--pipes", "--", "cat"], Some(data.clone()));
    assert_eq!(code, Some(0));
    assert!(
        out == data,
        "pass-through cat: {} of {} bytes",
        out.len(),
        data.len()
    );
}

#[test]
fn one_mebibyte_of_input_reaches_a_raw_mode_reader() {
    let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 13 % 251) as u8).collect();
    let (code, out, err) = run(
        &["--raw-peer", "--", "head", "-c", "1048576"],
        Some(data.clone()),
    );
    assert_eq!(code, Some(0), "{}", String::from_utf8_lossy(&err));
    assert!(out == data, "got {} bytes", out.len());
}

#[test]
fn stderr_is_relayed_separately_in_pass_through_mode() {
    let (code, out, err) = run(
        &[
            "--pipes",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 4",
        ],
        None,
    );
    assert_eq!(code, Some(4));
    assert_eq!(out, b"out\n");
    assert_eq!(err, b"err\n");
}

/// Spawns the helper with stdout piped and stdin null; returns the child and its stdout.
fn spawn_watched(args: &[&str]) -> (Reaper, OwnedFd) {
    let mut child = helper(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = OwnedFd::from(child.stdout.take().unwrap());
    (Reaper(child), out)
}

#[test]
fn signals_are_forwarded_to_the_target() {
    for (mode, sig, name) in [
        ("--keep-onlcr", libc::SIGUSR1, "USR1"),
        ("--pipes", libc::SIGUSR1, "USR1"),
        ("--keep-onlcr", libc::SIGHUP, "HUP"),
        ("--keep-onlcr", libc::SIGINT, "INT"),
        ("--keep-onlcr", berth_sys::signal::sigrtmin() + 1, "35"),
    ] {
        let script = format!(
            "trap 'echo got-{name}; exit 7' {name}; echo ready; i=0; while [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done"
        );
        let (mut child, out) = spawn_watched(&[mode, "--", "sh", "-c", &script]);
        let mut acc = Vec::new();
        read_until(out.as_fd(), &mut acc, b"ready", T);
        kill(child.0.id(), sig);
        read_until(out.as_fd(), &mut acc, format!("got-{name}").as_bytes(), T);
        let status = wait_timeout(&mut child.0, T);
        assert_eq!(status.code(), Some(7), "{mode} {name}");
    }
}

#[test]
fn sigterm_kills_a_target_that_does_not_trap_it() {
    let (mut child, out) = spawn_watched(&["--", "sh", "-c", "echo ready; exec sleep 100"]);
    let mut acc = Vec::new();
    read_until(out.as_fd(), &mut acc, b"ready", T);
    kill(child.0.id(), libc::SIGTERM);
    assert_eq!(wait_timeout(&mut child.0, T).code(), Some(143));
}

#[test]
fn sigwinch_copies_the_host_size_and_termios_is_restored() {
    // The helper's stdio is a pty the test owns: it is the host console.
    let host = PtyPair::open_host().unwrap();
    Winsize::new(30, 100).set(host.master.as_fd()).unwrap();
    let before = termios_bytes(&host.peer);
    let script = "stty size; trap 'stty size' WINCH; echo ready; i=0; while [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done";
    let peer = || Stdio::from(host.peer.try_clone().unwrap());
    let mut child = helper(&["--", "sh", "-c", script])
        .stdin(peer())
        .stdout(peer())
        .stderr(peer())
        .spawn()
        .map(Reaper)
        .unwrap();
    let mut acc = Vec::new();
    read_until(host.master.as_fd(), &mut acc, b"ready", T);
    assert!(
        common::contains(&acc, b"30 100"),
        "{:?}",
        String::from_utf8_lossy(&acc)
    );
    // The host terminal is raw while the relay runs. Its output flags were exactly OPOST|ONLCR,
    // so the relay took over the newline translation: OPOST is off, and `\n` still arrives as
    // `\r\n`.
    let t = rustix::termios::tcgetattr(&host.peer).unwrap();
    assert!(!t.local_modes.contains(rustix::termios::LocalModes::ICANON));
    assert!(!t.output_modes.contains(rustix::termios::OutputModes::OPOST));
    assert!(
        common::contains(&acc, b"30 100\r\n"),
        "{:?}",
        String::from_utf8_lossy(&acc)
    );

    Winsize::new(40, 120).set(host.master.as_fd()).unwrap();
    kill(child.0.id(), libc::SIGWINCH);
    read_until(host.master.as_fd(), &mut acc, b"40 120", T);
    Winsize::new(7, 9).set(host.master.as_fd()).unwrap();
    kill(child.0.id(), libc::SIGWINCH);
    read_until(host.master.as_fd(), &mut acc, b"7 9", T);

    kill(child.0.id(), libc::SIGTERM);
    assert_eq!(wait_timeout(&mut child.0, T).code(), Some(143));
    assert_eq!(
        termios_bytes(&host.peer),
        before,
        "host termios not restored"
    );
}

#[test]
fn typed_input_reaches_the_container_through_a_host_terminal() {
    let host = PtyPair::open_host().unwrap();
    let peer = || Stdio::from(host.peer.try_clone().unwrap());
    let mut child = helper(&[
        "--",
        "sh",
        "-c",
        "echo ready; read line; echo \"got:$line\"",
    ])
    .stdin(peer())
    .stdout(peer())
    .stderr(peer())
    .spawn()
    .map(Reaper)
    .unwrap();
    let mut acc = Vec::new();
    read_until(host.master.as_fd(), &mut acc, b"ready", T);
    // The host terminal is raw: ^C is a byte for the container, not a signal for the relay.
    rustix::io::write(&host.master, b"abc\r").unwrap();
    read_until(host.master.as_fd(), &mut acc, b"got:abc", T);
    assert_eq!(wait_timeout(&mut child.0, T).code(), Some(0));
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 (1-based); `rest` starts at field 3.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn peer_closed_then_reopened_is_not_the_end_and_does_not_spin() {
    // The systemd pattern: every fd on the pty closed, then /dev/console (here the pty by name)
    // reopened. EIO/HUP on the master in between must neither end the relay nor busy-loop.
    let script = "echo before; exec 0<&- 1>&- 2>&-; sleep 2; echo after > \"$BERTH_TTY_NAME\"; sleep 0.2; echo again > \"$BERTH_TTY_NAME\"";
    let (mut child, out) = spawn_watched(&["--", "sh", "-c", script]);
    let mut acc = Vec::new();
    read_until(out.as_fd(), &mut acc, b"before\n", T);
    let t0 = cpu_ticks(child.0.id());
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(700));
    let spent = cpu_ticks(child.0.id()) - t0;
    assert!(
        start.elapsed() < Duration::from_millis(1800),
        "measurement window too long"
    );
    assert!(
        spent <= 3,
        "relay used {spent} ticks while the peer was closed (spinning)"
    );
    let rest = read_to_end(out.as_fd(), T);
    acc.extend_from_slice(&rest);
    assert_eq!(acc, b"before\nafter\nagain\n");
    assert_eq!(wait_timeout(&mut child.0, T).code(), Some(0));
}

#[test]
fn dead_stdout_does_not_block_the_container() {
    let script =
        "trap '' PIPE; i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; exit 5";
    for mode in ["--keep-onlcr", "--pipes"] {
        let (mut child, out) = spawn_watched(&[mode, "--", "sh", "-c", script]);
        drop(out);
        assert_eq!(wait_timeout(&mut child.0, T).code(), Some(5), "{mode}");
    }
}

#[test]
fn output_after_exit_of_a_background_writer_is_not_waited_for() {
    // The target exits while a grandchild keeps the pty open: the relay drains what is there and
    // returns instead of waiting for the grandchild.
    let start = Instant::now();
    let (code, out, _) = run(&["--", "sh", "-c", "sleep 5 & echo bye"], None);
    assert_eq!(code, Some(0));
    assert_eq!(out, b"bye\n");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "waited for the grandchild"
    );
}

#[test]
fn final_flush_waits_for_a_slow_reader_and_sigterm_abandons_it() {
    // 120 KiB fits the kernel buffers plus the relay's buffer, so the target can exit while the
    // stdout pipe (64 KiB) is full and nobody reads it.
    const N: usize = 120 * 1024;
    // Output has started and the relay has reaped the target: only the flush is left.
    fn target_gone(relay: &Reaper, out: &OwnedFd) {
        assert!(wait_readable(out.as_fd(), Instant::now() + T), "no output");
        wait_until("the target is reaped", T, || {
            children(relay.0.id()).is_empty()
        });
    }
    for mode in ["--pipes", "--raw-peer"] {
        let args = emit_args(&[mode], N);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (mut child, out) = spawn_watched(&args);
        target_gone(&child, &out);
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "{mode}: relay returned before flushing"
        );
        // A second run: the user gives up with SIGTERM instead of reading.
        let (mut stuck, out2) = spawn_watched(&args);
        target_gone(&stuck, &out2);
        assert!(stuck.0.try_wait().unwrap().is_none(), "{mode}");
        kill(stuck.0.id(), libc::SIGTERM);
        let status = wait_timeout(&mut stuck.0, Duration::from_secs(5));
        assert_eq!(
            status.code(),
            Some(0),
            "{mode}: the target's status, not the signal"
        );
        // Reading resumes on the first: everything arrives, in order.
        let all = read_to_end(out.as_fd(), T);
        assert!(all == pattern(N), "{mode}: got {} bytes", all.len());
        assert_eq!(wait_timeout(&mut child.0, T).code(), Some(0));
    }
}

#[test]
fn stdout_redirected_to_a_file_gets_everything() {
    for mode in ["--raw-peer", "--pipes"] {
        let file = tempfile::tempfile().unwrap();
        let args = emit_args(&[mode], 1024 * 1024);
        let mut child = Reaper(
            helper(&args.iter().map(String::as_str).collect::<Vec<_>>())
                .stdin(Stdio::null())
                .stdout(file.try_clone().unwrap())
                .spawn()
                .unwrap(),
        );
        assert_eq!(wait_timeout(&mut child.0, T).code(), Some(0), "{mode}");
        let got = std::fs::read(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&file)
        ))
        .unwrap();
        assert!(got == pattern(1024 * 1024), "{mode}: {} bytes", got.len());
    }
}

/// The relay must leave berth's stdio file descriptions as it found them (blocking): the user's
/// shell shares them. A pipe is reopened privately (never touched); a socket has O_NONBLOCK set
/// for the run and restored.
#[test]
fn shared_stdio_flags_are_left_as_found() {
    use rustix::fs::{OFlags, fcntl_getfl};
    use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair};
    let (sock_ours, sock_theirs) = socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let (pipe_r, pipe_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    for mode in ["--raw-peer", "--pipes"] {
        let args = emit_args(&[mode], 100_000);
        let mut child = Reaper(
            helper(&args.iter().map(String::as_str).collect::<Vec<_>>())
                .stdin(Stdio::from(pipe_r.try_clone().unwrap()))
                .stdout(Stdio::from(sock_theirs.try_clone().unwrap()))
                .stderr(Stdio::from(pipe_w.try_clone().unwrap()))
                .spawn()
                .unwrap(),
        );
        let mut got = Vec::new();
        read_until(sock_ours.as_fd(), &mut got, &pattern(100_000), T);
        assert_eq!(wait_timeout(&mut child.0, T).code(), Some(0), "{mode}");
        assert_eq!(got.len(), 100_000);
        for (name, fd) in [
            ("socket", sock_theirs.as_fd()),
            ("pipe read", pipe_r.as_fd()),
            ("pipe write", pipe_w.as_fd()),
        ] {
            assert!(
                !fcntl_getfl(fd).unwrap().contains(OFlags::NONBLOCK),
                "{mode}: {name} left non-blocking"
            );
        }
    }
}

#[test]
fn an_endless_producer_does_not_starve_signals() {
    for mode in ["--raw-peer", "--pipes"] {
        let mut child = Reaper(
            helper(&[
                mode,
                "--",
                "yes",
                "0123456789abcdef0123456789abcdef0123456789abcdef",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(300));
        kill(child.0.id(), libc::SIGTERM);
        let status = wait_timeout(&mut child.0, Duration::from_secs(5));
        assert_eq!(status.code(), Some(143), "{mode}");
    }
}
