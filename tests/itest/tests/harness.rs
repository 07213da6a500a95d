//! Self-tests of the harness: the checks the other tests rely on must be able to fail.

use std::time::{Duration, Instant};

use berth_itest::{
    Bundle, Cmd, Leftovers, MasterIo, Pty, probe::is_static_elf, probe_path, runtime_exclusive,
    unique_id,
};

#[test]
fn probe_is_static_and_busybox_is_too() {
    assert!(is_static_elf(probe_path()), "{}", probe_path().display());
    assert!(is_static_elf(std::path::Path::new("/bin/busybox")));
    assert!(
        !is_static_elf(std::path::Path::new("/bin/ls")),
        "/bin/ls is dynamic"
    );
}

#[test]
fn unique_ids_differ() {
    let a = unique_id("same");
    let b = unique_id("same");
    assert_ne!(a, b);
    assert!(a.starts_with("itest-same-"));
    assert_eq!(unique_id("a/b c").split('-').nth(1), Some("a"));
}

#[test]
fn watchdog_kills_a_hung_command() {
    let start = Instant::now();
    let out = Cmd::new("sleep")
        .arg("60")
        .timeout(Duration::from_millis(300))
        .spawn()
        .wait_unchecked();
    assert!(out.timed_out, "{out}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(out.to_string().contains("still running"), "{out}");
}

#[test]
fn capture_does_not_wait_for_grandchildren_holding_the_pipe() {
    let start = Instant::now();
    let out = Cmd::new("sh")
        .args(["-c", "echo hi; sleep 30 & exit 0"])
        .ok();
    assert_eq!(out.stdout_str(), "hi\n");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "waited for the background sleep"
    );
}

#[test]
fn pty_spawn_gives_a_controlling_terminal() {
    let mut pty = Pty::new();
    pty.set_size(33, 111);
    let r = pty.spawn(Cmd::new(probe_path()).arg("ctty"));
    let text = String::from_utf8_lossy(&pty.read_until_eof(Duration::from_secs(10))).into_owned();
    r.wait().assert_ok();
    let ctty = berth_itest::probe_line(&text, "ctty");
    assert_eq!(ctty["pid"], ctty["sid"], "not a session leader: {text}");
    assert_ne!(ctty["tty_nr"], "0", "no controlling tty: {text}");

    let mut pty = Pty::new();
    pty.set_size(33, 111);
    let r = pty.spawn(Cmd::new(probe_path()).arg("winsize"));
    let text = String::from_utf8_lossy(&pty.read_until_eof(Duration::from_secs(10))).into_owned();
    r.wait().assert_ok();
    let ws = berth_itest::probe_line(&text, "winsize");
    assert_eq!(
        (ws["rows"].as_str(), ws["cols"].as_str()),
        ("33", "111"),
        "{text}"
    );
}

#[test]
fn leftovers_detect_a_container_and_a_pty() {
    let rt = runtime_exclusive();
    let b = Bundle::busybox();
    let id = rt.id("leftover-detect");
    let l = Leftovers::snapshot(&rt, &[&id], &[b.path()]);
    rt.create(&b, &id);
    let d = l.diff().expect("a created container must show up");
    assert!(d.contains("state root entry"), "{d}");
    assert!(d.contains("cgroup dir"), "{d}");
    assert!(d.contains("+ process"), "{d}");
    rt.delete_force(&id);
    l.assert_unchanged();

    let pty = Pty::new();
    let d = l.diff().expect("an open pty must show up");
    assert!(d.contains("kernel.pty.nr"), "{d}");
    drop(pty);
    l.assert_unchanged();
}

/// Connects to `socket` and sends `payload` with `fds` in one SCM_RIGHTS message.
fn send_fds(socket: &std::path::Path, payload: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]) {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    use std::mem::MaybeUninit;
    let conn = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    rustix::net::sendmsg(
        &conn,
        &[std::io::IoSlice::new(payload)],
        &mut control,
        SendFlags::empty(),
    )
    .expect("sendmsg");
}

#[test]
fn console_receiver_rejects_what_is_not_exactly_one_master() {
    use std::os::fd::AsFd;
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    let rx = berth_itest::ConsoleReceiver::new();
    send_fds(rx.path(), b"/dev/null", &[null.as_fd()]);
    let err = rx
        .try_recv(Duration::from_secs(5))
        .expect_err("/dev/null accepted");
    assert!(err.contains("not a pty master"), "{err}");

    let pty = Pty::new();
    let rx = berth_itest::ConsoleReceiver::new();
    send_fds(rx.path(), b"/dev/ptmx", &[pty.master_fd(), pty.master_fd()]);
    let err = rx
        .try_recv(Duration::from_secs(5))
        .expect_err("two fds accepted");
    assert!(err.contains("exactly one fd, got 2"), "{err}");

    // A host pty master from /dev/ptmx lives on devtmpfs, not devpts: rejected too, as by
    // runc's console check (the master must come from a devpts instance's ptmx node).
    let rx = berth_itest::ConsoleReceiver::new();
    send_fds(rx.path(), b"/dev/ptmx", &[pty.master_fd()]);
    let err = rx
        .try_recv(Duration::from_secs(5))
        .expect_err("devtmpfs ptmx accepted");
    assert!(err.contains("not devpts"), "{err}");
}

#[test]
fn recvtty_single_mode_copies_the_console_and_rejects_bad_fds() {
    let rt = berth_itest::runtime();
    let dir = berth_itest::console::short_tmp_dir();
    let socket = dir.path().join("s");
    let pid_file = dir.path().join("pid");
    let recv = Cmd::new(berth_itest::probe::recvtty_path())
        .args(["--mode", "single", "--no-stdin", "--pid-file"])
        .arg(&pid_file)
        .arg(&socket)
        .spawn();
    berth_itest::wait_until("recvtty ready", Duration::from_secs(10), || {
        pid_file.exists().then_some(())
    });
    let mut b = Bundle::busybox();
    b.terminal(true).probe(&["write", "5000"]);
    let id = rt.id("recvtty-single");
    rt.cmd(["run", "-d", "--console-socket"])
        .arg(&socket)
        .arg("--bundle")
        .arg(b.path())
        .arg(&id)
        .ok();
    let out = recv.wait().assert_ok();
    assert!(
        berth_itest::strip_cr(&out.stdout) == berth_itest::pattern(5000),
        "{out}"
    );

    let socket2 = dir.path().join("s2");
    let recv = Cmd::new(berth_itest::probe::recvtty_path())
        .args(["--mode", "single", "--no-stdin"])
        .arg(&socket2)
        .spawn();
    berth_itest::wait_until("recvtty listening", Duration::from_secs(10), || {
        socket2.exists().then_some(())
    });
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    use std::os::fd::AsFd;
    send_fds(&socket2, b"x", &[null.as_fd()]);
    let out = recv.wait().assert_code(1);
    assert!(out.stderr_str().contains("not a pty master"), "{out}");
}
