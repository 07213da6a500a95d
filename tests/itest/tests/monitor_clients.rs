//! Many clients and hostile clients: identical streams for every client while one types,
//! 1000 clients killed at random points (security.md M-01), every kind of bad frame (M-02),
//! file descriptors sent to the attach socket (M-03), other uids (M-04), and a client that never
//! reads while the container writes 100 MiB (B-02). After each, the monitor keeps serving: a
//! client that stayed attached still types and sees output, and the monitor's fd count is back
//! where it was.

mod monitor_support;

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use berth_itest::{Cmd, Input, Sink, wait_until};
use berth_proto::{ErrorCode, Flow, Frame, Role, Start, Target};
use monitor_support::{
    Mon, Raw, T, add_applets, alive, expect, fd_count, hello, script_bundle, shell_bundle, typ,
    wait_exit,
};

/// Waits until the console's output offset stops moving and returns it.
fn settled_offset(m: &Mon, id: &str) -> u64 {
    let mut last = u64::MAX;
    wait_until("output to settle", T, || {
        let now = m.session(id, "console")["offset"].as_u64().unwrap_or(0);
        let done = now == last;
        last = now;
        std::thread::sleep(Duration::from_millis(200));
        done.then_some(now)
    })
}

#[test]
fn every_client_gets_the_same_bytes_while_one_types() {
    let m = Mon::new();
    let b = shell_bundle();
    let id = m.rt.id("clients-same");
    m.start(&b, &id);
    m.wait_screen(&id, "/ #");
    let mut typist = m
        .berth(["attach", "--since", "0", "--lag-policy", "catch-up", &id])
        .stdin(Input::Pipe)
        .stdout(Sink::Capture)
        .spawn();
    let watchers: Vec<_> = (0..3)
        .map(|_| {
            m.berth([
                "attach",
                "--since",
                "0",
                "--read-only",
                "--no-stdin",
                "--lag-policy",
                "catch-up",
                &id,
            ])
            .stdout(Sink::Capture)
            .spawn()
        })
        .collect();
    wait_until("4 clients attached", T, || {
        (m.session(&id, "console")["clients"].as_array()?.len() == 4).then_some(())
    });
    let mut keys = typist.take_stdin().expect("stdin pipe");
    keys.write_all(b"seq 1 20000; echo DONE-$((40+2))\n")
        .unwrap();
    m.wait_log(&id, "DONE-42");
    let end = settled_offset(&m, &id);
    wait_until("every client caught up", T, || {
        let s = m.session(&id, "console");
        s["clients"]
            .as_array()?
            .iter()
            .all(|c| c["bytes"].as_u64() == Some(end))
            .then_some(())
    });
    keys.write_all(b"\x10\x11").unwrap();
    let typed = wait_exit(typist);
    assert_eq!(typed.code(), Some(0), "{typed}");
    let log = m.logs(&id, &[]);
    assert_eq!(typed.stdout.len() as u64, end);
    assert!(
        typed.stdout == log,
        "the typist's stream differs from the log"
    );
    for w in watchers {
        w.signal(rustix::process::Signal::TERM);
        let out = wait_exit(w);
        assert_eq!(out.code(), Some(0), "{out}");
        assert_eq!(
            fnv(&out.stdout),
            fnv(&typed.stdout),
            "a watcher's stream differs ({} vs {} bytes)",
            out.stdout.len(),
            typed.stdout.len()
        );
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A deterministic generator for the random kills.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn a_thousand_clients_killed_at_random_leave_the_monitor_serving() {
    let m = Mon::new();
    let b = script_bundle("while :; do echo tick; usleep 20000; done & exec sh");
    add_applets(&b, &["usleep"]);
    let id = m.rt.id("clients-kill");
    m.start(&b, &id);
    m.wait_log(&id, "tick");
    let mon = m.monitor_pid(&id);
    let (pty, stable) = m.attach_pty(&id, &[], 24, 80);
    expect(&pty, "tick");
    std::thread::sleep(Duration::from_millis(300));
    let baseline = fd_count(mon);

    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut open: Vec<Raw> = Vec::new();
    let mut procs = Vec::new();
    for i in 0..1000u32 {
        match rng.below(6) {
            // Mid-handshake: connect and vanish.
            0 => drop(Raw::connect(&m, &id)),
            // Right after the hello, before reading anything.
            1 => {
                let r = Raw::connect(&m, &id);
                r.send(&hello(|_| {}));
                drop(r);
            }
            // Mid-stream: attached, read a little, vanish.
            2 => {
                let r = Raw::connect(&m, &id);
                r.send(&hello(|h| h.start = Start::Offset(0)));
                let _ = r.recv(Duration::from_millis(20));
                open.push(r);
            }
            // Mid-resize, or mid-input.
            3 => {
                let r = Raw::connect(&m, &id);
                r.send(&hello(|h| h.size = Some((24, 80))));
                let _ = r.send_raw(
                    &Frame::Resize {
                        rows: 20 + (i % 10) as u16,
                        cols: 80,
                    }
                    .to_vec()
                    .unwrap(),
                );
                open.push(r);
            }
            // A never-reading watcher with a tiny queue.
            4 => {
                let r = Raw::connect(&m, &id);
                r.send(&hello(|h| {
                    h.role = Role::ReadOnly;
                    h.queue_limit = 1;
                }));
                open.push(r);
            }
            // A real client process, SIGKILLed a little later.
            _ => {
                if i % 4 == 0 {
                    procs.push((
                        m.berth(["attach", "--read-only", "--no-stdin", &id])
                            .stdout(Sink::Null)
                            .spawn(),
                        rng.below(40),
                    ));
                } else {
                    drop(Raw::connect(&m, &id));
                }
            }
        }
        // Close open connections at random.
        while open.len() > 40 || (!open.is_empty() && rng.below(3) == 0) {
            let k = rng.below(open.len() as u64) as usize;
            drop(open.swap_remove(k));
        }
        if procs.len() >= 8 {
            for (p, ms) in procs.drain(..) {
                std::thread::sleep(Duration::from_millis(ms));
                p.kill();
            }
        }
    }
    for (p, _) in procs.drain(..) {
        p.kill();
    }
    drop(open);

    assert!(alive(mon), "the monitor died");
    wait_until("the monitor's fds back to baseline", T, || {
        (fd_count(mon) <= baseline).then_some(())
    });
    let s = m.session(&id, "console");
    assert_eq!(s["clients"].as_array().map(Vec::len), Some(1), "{s}");
    // The client that stayed is unaffected.
    typ(&pty, "echo still-$((50+5))\r");
    expect(&pty, "still-55");
    typ(&pty, "\x10\x11");
    assert_eq!(wait_exit(stable).code(), Some(0));
}

#[test]
fn bad_frames_get_clear_errors_and_the_monitor_keeps_serving() {
    let m = Mon::new();
    let b = shell_bundle();
    let id = m.rt.id("clients-bad");
    m.start(&b, &id);
    m.wait_screen(&id, "/ #");
    let mon = m.monitor_pid(&id);

    // Rejected before or instead of a hello: error, then the connection closes.
    let fatal: Vec<(Vec<u8>, ErrorCode, &str)> = vec![
        (
            vec![0x42, 1, 2],
            ErrorCode::BadFrame,
            "unknown frame type 0x42",
        ),
        (vec![], ErrorCode::BadFrame, "empty frame"),
        (
            vec![0x01, 1],
            ErrorCode::BadFrame,
            "hello frame: truncated in field role",
        ),
        (
            Frame::Stdin(b"ls\n").to_vec().unwrap(),
            ErrorCode::BadFrame,
            "stdin frame before hello",
        ),
        (
            {
                let mut h = hello(|_| {}).to_vec().unwrap();
                h[1] = 9;
                h
            },
            ErrorCode::BadFrame,
            "protocol version 9 is not supported",
        ),
        (
            hello(|h| h.target = Target::Exec("nope")).to_vec().unwrap(),
            ErrorCode::NoSuchTarget,
            "no exec session \"nope\"",
        ),
        (
            hello(|h| h.target = Target::Tty(5)).to_vec().unwrap(),
            ErrorCode::NoSuchTarget,
            "has no tty5",
        ),
        (
            hello(|h| h.size = Some((2000, 10))).to_vec().unwrap(),
            ErrorCode::BadRequest,
            "size 2000x10",
        ),
        (
            hello(|h| h.start = Start::Offset(1 << 40))
                .to_vec()
                .unwrap(),
            ErrorCode::BadRequest,
            "beyond the end of the output",
        ),
        (
            vec![0x02; 70_000],
            ErrorCode::TooLarge,
            "frame of 70000 bytes exceeds the maximum of 65536 bytes",
        ),
    ];
    for (bytes, code, text) in &fatal {
        let r = Raw::connect(&m, &id);
        r.send_raw(bytes).expect("send");
        let (c, msg) = r.expect_error();
        assert_eq!(c, *code, "{text}: {msg}");
        assert!(msg.contains(text), "want {text:?}, got {msg:?}");
        assert!(r.closed_within(T), "not closed after {text:?}");
    }

    // Refused inside an attached session: error, the session goes on.
    let r = Raw::connect(&m, &id);
    r.send(&hello(|h| h.start = Start::Live));
    r.recv_until(T, |f| matches!(f, Frame::ReplayEnd { .. }));
    for (f, code, text) in [
        (
            Frame::Resize { rows: 0, cols: 80 },
            ErrorCode::BadRequest,
            "size 0x80",
        ),
        (
            Frame::Signal(99),
            ErrorCode::BadRequest,
            "99 is not a signal number",
        ),
        (
            hello(|_| {}),
            ErrorCode::BadFrame,
            "hello frame is not valid from an attached client",
        ),
    ] {
        r.send(&f);
        let (c, msg) = r.expect_error();
        assert_eq!(c, code, "{msg}");
        assert!(msg.contains(text), "want {text:?}, got {msg:?}");
    }
    r.send(&Frame::Stdin(b"echo alive-$((7*6))\r"));
    r.recv_until(
        T,
        |f| matches!(f, Frame::Output { data, .. } if data.windows(8).any(|w| w == b"alive-42")),
    );
    // Garbage after the hello ends that session (and only it).
    r.send_raw(&[0xff, 0xff]).unwrap();
    assert_eq!(r.expect_error().0, ErrorCode::BadFrame);
    assert!(r.closed_within(T));

    // A read-only client's input is refused; it stays attached.
    let ro = Raw::connect(&m, &id);
    ro.send(&hello(|h| {
        h.role = Role::ReadOnly;
        h.start = Start::Live;
    }));
    ro.send(&Frame::Stdin(b"echo nope\r"));
    let (c, msg) = ro.expect_error();
    assert_eq!(c, ErrorCode::PermissionDenied);
    assert!(msg.contains("attached read-only"), "{msg}");
    assert!(!ro.closed_within(Duration::from_millis(200)));

    // A connection that never says anything is closed after the handshake deadline.
    let silent = Raw::connect(&m, &id);
    let (c, msg) = silent.expect_error();
    assert_eq!(c, ErrorCode::BadFrame);
    assert!(msg.contains("no frame within 10 seconds"), "{msg}");

    assert!(alive(mon));
    assert_eq!(m.session(&id, "console")["status"], "running");
    let (pty, client) = m.attach_pty(&id, &[], 24, 80);
    typ(&pty, "echo after-$((1+2))\r");
    expect(&pty, "after-3");
    typ(&pty, "\x10\x11");
    assert_eq!(wait_exit(client).code(), Some(0));
}

#[test]
fn file_descriptors_sent_to_the_attach_socket_are_closed() {
    let m = Mon::new();
    let b = shell_bundle();
    let id = m.rt.id("clients-fds");
    m.start(&b, &id);
    m.wait_screen(&id, "/ #");
    let mon = m.monitor_pid(&id);
    let baseline = fd_count(mon);

    // One fd with the hello: closed at once (the pipe's read end sees EOF), hello honoured.
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    let r = Raw::connect(&m, &id);
    r.send_fds(
        &hello(|h| h.start = Start::Live).to_vec().unwrap(),
        &[wr.as_fd()],
    )
    .expect("sendmsg");
    drop(wr);
    let (c, msg) = r.expect_error();
    assert_eq!(c, ErrorCode::BadFrame);
    assert!(
        msg.contains("file descriptors are not accepted on the attach socket (1 closed"),
        "{msg}"
    );
    let mut buf = [0u8; 1];
    assert_eq!(
        rustix::io::read(&rd, &mut buf).unwrap(),
        0,
        "the monitor kept the fd"
    );
    r.recv_until(T, |f| matches!(f, Frame::ReplayEnd { .. }));

    // 253 fds (SCM_MAX_FD) in one message: the room the monitor has is closed, the rest the
    // kernel discards (MSG_CTRUNC).
    let many: Vec<_> = (0..253)
        .map(|_| rustix::io::dup(rustix::stdio::stdin()).unwrap())
        .collect();
    let borrowed: Vec<_> = many.iter().map(|f| f.as_fd()).collect();
    r.send_fds(
        &Frame::Resize { rows: 24, cols: 80 }.to_vec().unwrap(),
        &borrowed,
    )
    .expect("sendmsg 253 fds");
    let (_, msg) = r.expect_error();
    assert!(msg.contains("more discarded by the kernel"), "{msg}");
    drop(r);
    assert!(alive(mon));
    wait_until("the monitor's fds back to baseline", T, || {
        (fd_count(mon) <= baseline).then_some(())
    });
}

#[test]
fn other_uids_are_refused_and_the_directory_is_private() {
    let m = Mon::new();
    let b = shell_bundle();
    let id = m.rt.id("clients-uid");
    m.start(&b, &id);
    let dir = m.dir(&id);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(dir.parent().unwrap()), 0o700);
    assert_eq!(mode(&dir.join("attach.sock")), 0o600);
    // uid 1000 with CAP_DAC_OVERRIDE gets past the permissions; SO_PEERCRED stops it.
    let out = Cmd::new("setpriv")
        .args([
            "--reuid=1000",
            "--regid=1000",
            "--clear-groups",
            "--inh-caps=+dac_override",
            "--ambient-caps=+dac_override",
        ])
        .arg(monitor_support::berth_bin())
        .arg("--root")
        .arg(m.rt.root())
        .args(["sessions", &id])
        .run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr_str()
            .contains("permission denied: uid 1000 may not use the console monitor"),
        "{out}"
    );
    assert_eq!(m.session(&id, "console")["status"], "running");
}

/// Lets the container (waiting in `read x`) write 100 MiB, and returns how long until its
/// `FINISHED` line is on the screen model.
fn write_100_mib(m: &Mon, id: &str) -> Duration {
    let start = Instant::now();
    let typist = Raw::connect(m, id);
    typist.send(&hello(|h| h.start = Start::Live));
    typist.send(&Frame::Stdin(b"\r"));
    typist.send(&Frame::Detach);
    let deadline = Duration::from_secs(180);
    wait_until("the container wrote 100 MiB", deadline, || {
        m.screenshot(id).contains("FINISHED").then_some(())
    });
    start.elapsed()
}

#[test]
fn a_client_that_never_reads_does_not_slow_a_container_writing_100_mib() {
    const MIB: u64 = 1 << 20;
    let m = Mon::new();
    let b = script_bundle(
        "read x; dd if=/dev/zero bs=65536 count=1600 2>/dev/null; echo; echo FINISHED; exec sleep 1000",
    );
    let alone_id = m.rt.id("clients-alone");
    m.start(&b, &alone_id);
    let alone = write_100_mib(&m, &alone_id);

    let id = m.rt.id("clients-stuck");
    m.start(&b, &id);
    // Clients that never read: skip-to-repaint, disconnect, and a stopped `berth attach`.
    let skip = Raw::connect(&m, &id);
    skip.send(&hello(|h| {
        h.role = Role::ReadOnly;
        h.start = Start::Live;
    }));
    // Its first frame says where its stream starts; after that it reads nothing.
    let attached = skip.recv_until(T, |f| matches!(f, Frame::Attached { .. }));
    let Ok(Frame::Attached { offset: from, .. }) = Frame::decode(&attached) else {
        unreachable!()
    };
    let disc = Raw::connect(&m, &id);
    disc.send(&hello(|h| {
        h.role = Role::ReadOnly;
        h.flow = Flow::Disconnect;
        h.start = Start::Live;
    }));
    let stopped = m
        .berth(["attach", "--read-only", "--no-stdin", &id])
        .stdout(Sink::Null)
        .spawn();
    wait_until("3 clients attached", T, || {
        (m.session(&id, "console")["clients"].as_array()?.len() == 3).then_some(())
    });
    stopped.signal(rustix::process::Signal::STOP);
    let stuck = write_100_mib(&m, &id);
    eprintln!(
        "100 MiB through the monitor: {alone:.2?} with no client, {stuck:.2?} with 3 clients that never read (ratio {:.2}; informational)",
        stuck.as_secs_f64() / alone.as_secs_f64()
    );
    let s = m.session(&id, "console");
    assert!(s["offset"].as_u64().unwrap() > 100 * MIB, "{s}");
    let clients = s["clients"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        clients.len(),
        2,
        "the disconnect client is still listed: {s}"
    );
    for c in &clients {
        assert!(c["skips"].as_u64().unwrap_or(0) >= 1, "not skipped: {c}");
        assert!(
            c["drops"].as_u64().unwrap_or(0) > 0,
            "no drops counted: {c}"
        );
    }
    // The disconnect client finds its error after the bytes it had been sent.
    let (c, msg) = disc.expect_error();
    assert_eq!(c, ErrorCode::TooSlow, "{msg}");
    assert!(msg.contains("bytes behind"), "{msg}");
    assert!(disc.closed_within(T));
    // The skip client, reading again, is skipped forward to a repaint of the current screen.
    let total = s["offset"].as_u64().unwrap();
    skip.recv_until(
        T,
        |f| matches!(f, Frame::Skipped { to, .. } if *to >= total),
    );
    skip.recv_until(
        T,
        |f| matches!(f, Frame::ReplayEnd { offset } if *offset >= total),
    );
    let s = m.session(&id, "console");
    let me = s["clients"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|c| c["pid"].as_i64() == Some(i64::from(std::process::id())))
                .cloned()
        })
        .unwrap_or_else(|| panic!("the test's own client is not listed: {s}"));
    assert_eq!(
        me["drops"].as_u64().unwrap() + me["bytes"].as_u64().unwrap(),
        total - from,
        "every byte is either sent or counted as dropped: {me}"
    );
    stopped.signal(rustix::process::Signal::CONT);
    stopped.signal(rustix::process::Signal::TERM);
    assert_eq!(wait_exit(stopped).code(), Some(0));
}

/// A client that types and goes away at once keeps its input. The monitor is stopped while the
/// client sends hello, 40 keystrokes, Enter and detach and closes its socket, so the monitor
/// finds them all queued when it runs again: its first turn on the connection reads 32 frames,
/// then its reply to the hello meets the closed socket. The frames after the 32nd must still
/// reach the terminal (they were dropped with the connection before `take_last_frames`; seen
/// as a benchmark's Enter that never arrived).
#[test]
fn input_sent_just_before_a_client_closes_reaches_the_terminal() {
    let m = Mon::new();
    let b = script_bundle("read x; echo \"got:$x:\"; exec sleep 60");
    let id = m.rt.id("clients-last-words");
    m.start(&b, &id);
    let pid = m.monitor_pid(&id);
    let monitor = rustix::process::Pid::from_raw(pid).expect("monitor pid");
    rustix::process::kill_process(monitor, rustix::process::Signal::STOP).expect("SIGSTOP");
    let raw = Raw::connect(&m, &id);
    raw.send(&hello(|h| h.start = Start::Live));
    for _ in 0..40 {
        raw.send(&Frame::Stdin(b"a"));
    }
    raw.send(&Frame::Stdin(b"\r"));
    raw.send(&Frame::Detach);
    drop(raw);
    rustix::process::kill_process(monitor, rustix::process::Signal::CONT).expect("SIGCONT");
    m.wait_log(&id, &format!("got:{}:", "a".repeat(40)));
    // The monitor keeps serving.
    let again = Raw::connect(&m, &id);
    again.send(&hello(|h| h.start = Start::Live));
    again.recv_until(T, |f| matches!(f, Frame::Attached { .. }));
}
