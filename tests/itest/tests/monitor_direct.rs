//! Direct output and input (the `attach` default, see `berth_proto`'s "Direct output"): the
//! monitor writes a client's output to the client's own terminal or pipe, and reads a
//! read-write client's keys from it too (or, when the client reads them, the client writes them
//! to the terminal's master), so the client process is in neither path.
//! What must hold: the user's terminal is served through a description of the monitor's own
//! (the one the user's shell shares never turns non-blocking, and a terminal nobody reads
//! cannot block the monitor or stall the container), nothing reaches a terminal once
//! its client is gone (killed, detached), a client in the background of its terminal keeps its
//! keys to itself, a killed monitor hangs the console up while a client is still attached, the reset on the way out comes from the monitor, input
//! the container does not read yet waits instead of being lost, the terminal goes only to a
//! monitor of the client's own uid, and the framed path (`BERTH_ATTACH_FRAMED`, and any
//! descriptor the monitor cannot reopen) still works.

mod monitor_support;

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use berth_itest::{Input, MasterIo, Sink};
use berth_proto::Frame;
use monitor_support::{
    Mon, Raw, T, expect, fd_count, hello, script_bundle, shell_bundle, typ, wait_exit,
};
use serde_json::Value;

/// `O_NONBLOCK` in `/proc/PID/fdinfo/N`'s octal `flags:`.
const O_NONBLOCK: u32 = 0o4000;

fn fd_flags(pid: i32, fd: i32) -> u32 {
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).expect("fdinfo");
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .expect("flags line");
    u32::from_str_radix(flags.trim(), 8).expect("octal flags")
}

/// Starts a shell container under a monitor and waits for its prompt; returns its bundle
/// (removed when dropped: keep it while the container runs) and id.
fn shell_at_its_prompt(m: &Mon, name: &str) -> (berth_itest::Bundle, String) {
    let b = shell_bundle();
    let id = m.rt.id(name);
    m.start(&b, &id);
    m.wait_screen(&id, "/ #");
    (b, id)
}

/// The fds of process `pid` open on `path`.
fn fds_on(pid: i32, path: &std::path::Path) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).ok().as_deref() == Some(path))
        .map(|e| e.file_name().to_string_lossy().parse().unwrap())
        .collect()
}

/// The monitor's fd count once it holds still for 100 ms (the connections of `berth
/// screenshot`/`sessions` calls just made close a moment after their reply).
fn settled_fd_count(pid: i32) -> usize {
    let mut last = fd_count(pid);
    berth_itest::cmd::wait_until("the monitor's fds to settle", T, || {
        std::thread::sleep(Duration::from_millis(100));
        let now = fd_count(pid);
        let same = now == last;
        last = now;
        same.then_some(now)
    })
}

/// The console's clients as `berth sessions` reports them.
fn clients(m: &Mon, id: &str) -> Vec<Value> {
    m.session(id, "console")["clients"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn client_by_pid(m: &Mon, id: &str, pid: u32) -> Value {
    let pid = i64::from(pid);
    berth_itest::cmd::wait_until("the client in berth sessions", T, || {
        clients(m, id)
            .into_iter()
            .find(|c| c["pid"].as_i64() == Some(pid))
    })
}

/// Bytes process `pid` has read so far (`rchar` of `/proc/PID/io`).
fn rchar(pid: i32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("/proc/PID/io");
    io.lines()
        .find_map(|l| l.strip_prefix("rchar:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("rchar")
}

#[test]
fn attach_output_and_input_skip_the_client_and_the_terminal_stays_blocking() {
    let m = Mon::new();
    let (_b, id) = shell_at_its_prompt(&m, "direct-basic");
    let (pty, client) = m.attach_pty(&id, &[], 24, 80);
    expect(&pty, "/ #");
    typ(&pty, "echo direct-$((40+2))\r");
    expect(&pty, "direct-42");
    let c = client_by_pid(&m, &id, client.pid());
    assert_eq!(c["output"], "direct", "{c}");
    // The monitor read the keys.
    assert_eq!(c["input"], "monitor", "{c}");
    assert_eq!(c["input_bytes"], 22, "{c}");
    // The table says so too.
    let table = m.berth(["sessions", &id]).ok().stdout_str();
    let header = table
        .lines()
        .find(|l| l.starts_with("CLIENT"))
        .expect(&table);
    let row = table
        .lines()
        .find(|l| l.ends_with(&format!(" {}", client.pid())))
        .expect(&table);
    let col = |name: &str| {
        let at = header.find(name).unwrap();
        row[at..].split_whitespace().next().unwrap().to_string()
    };
    assert_eq!(
        (col("OUTPUT"), col("INPUT")),
        ("direct".into(), "monitor".into()),
        "{table}"
    );
    assert!(c["bytes"].as_u64().unwrap() > 0, "{c}");
    // Five long lines typed and echoed: the client reads none of them (neither the keys
    // nor their echo cross it).
    let before = rchar(client.pid() as i32);
    for i in 0..5 {
        typ(&pty, &format!("echo {}-{i}\r", "k".repeat(400)));
        expect(&pty, &format!("{}-{i}\r", "k".repeat(400)));
    }
    let read = rchar(client.pid() as i32) - before;
    assert!(read < 400, "the client read {read} bytes meanwhile");
    // The description the client (and a shell) shares is untouched; the monitor writes
    // through one of its own, non-blocking, on the same terminal.
    let pid = client.pid() as i32;
    assert_eq!(
        fd_flags(pid, 0) & O_NONBLOCK,
        0,
        "stdin turned non-blocking"
    );
    assert_eq!(
        fd_flags(pid, 1) & O_NONBLOCK,
        0,
        "stdout turned non-blocking"
    );
    let mon = m.monitor_pid(&id);
    let tty = std::fs::read_link(format!("/proc/{pid}/fd/1")).unwrap();
    let own = fds_on(mon, &tty);
    // One to write the output, one to read the keys.
    assert_eq!(
        own.len(),
        2,
        "the monitor's descriptions of {tty:?}: {own:?}"
    );
    for fd in own {
        assert_ne!(fd_flags(mon, fd) & O_NONBLOCK, 0);
    }
    typ(&pty, "\x10\x11");
    assert_eq!(wait_exit(client).code(), Some(0));
    // Detached: the monitor let go of the terminal.
    berth_itest::cmd::wait_until("the monitor closes the terminal", T, || {
        fds_on(mon, &tty).is_empty().then_some(())
    });
}

#[test]
fn a_client_in_the_background_of_its_terminal_reads_its_own_keys() {
    // The monitor reads a terminal with none of the job-control checks a background reader
    // meets, so a client its shell put in the background (SIGTTOU ignored, so its raw mode
    // does not stop it) must not hand it the keys the shell's foreground is typing.
    let m = Mon::new();
    let (_b, id) = shell_at_its_prompt(&m, "direct-bg");
    let script = format!(
        "trap '' TTOU; set -m; BERTH_MONITOR='{}' '{}' --root '{}' attach {id} & echo BG-$!; sleep 30",
        monitor_support::monitor_bin().display(),
        monitor_support::berth_bin().display(),
        m.rt.root().display(),
    );
    let (pty, sh) = m.on_pty(
        berth_itest::Cmd::new("/bin/sh").args(["-c", &script]),
        24,
        80,
    );
    expect(&pty, "BG-");
    let c = berth_itest::cmd::wait_until("the background client in berth sessions", T, || {
        clients(&m, &id).into_iter().next()
    });
    assert_eq!(c["input"], "master", "{c}");
    assert_eq!(c["output"], "direct", "{c}");
    sh.kill();
    let pid = c["pid"].as_i64().unwrap() as i32;
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    );
}

#[test]
fn a_killed_monitor_hangs_the_console_up_while_a_client_is_still_attached() {
    // With its keys read by the monitor, a client holds no descriptor of the master: the
    // monitor's death alone closes the console (the session leader gets SIGHUP), even while
    // the client cannot act (stopped).
    let m = Mon::new();
    let (_b, id) = shell_at_its_prompt(&m, "direct-mkill");
    let (pty, client) = m.attach_pty(&id, &[], 24, 80);
    expect(&pty, "/ #");
    let c = client_by_pid(&m, &id, client.pid());
    assert_eq!(c["input"], "monitor", "{c}");
    client.signal(rustix::process::Signal::STOP);
    let mon = m.monitor_pid(&id);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(mon).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    m.rt.wait_for_status(&id, "stopped", T);
    client.signal(rustix::process::Signal::CONT);
    let out = wait_exit(client);
    assert_eq!(out.code(), Some(1), "{out}");
    m.rt.cmd(["delete", &id]).ok();
}

#[test]
fn the_framed_path_still_serves_attach() {
    let m = Mon::new();
    let (_b, id) = shell_at_its_prompt(&m, "direct-framed");
    let cmd = m.berth(["attach", &id]).env("BERTH_ATTACH_FRAMED", "1");
    let (pty, client) = m.on_pty(cmd, 24, 80);
    expect(&pty, "/ #");
    typ(&pty, "echo framed-$((6*7))\r");
    expect(&pty, "framed-42");
    let c = client_by_pid(&m, &id, client.pid());
    assert_eq!(c["output"], "frames", "{c}");
    assert!(c["input_bytes"].as_u64().unwrap() > 0, "{c}");
    typ(&pty, "\x10\x11");
    assert_eq!(wait_exit(client).code(), Some(0));
}

#[test]
fn a_killed_client_s_terminal_gets_nothing_more() {
    let m = Mon::new();
    let (_b, id) = shell_at_its_prompt(&m, "direct-killed");
    let mon = m.monitor_pid(&id);
    let baseline = settled_fd_count(mon);
    let (gone, gone_client) = m.attach_pty(&id, &[], 24, 80);
    expect(&gone, "/ #");
    let (stay, stay_client) = m.attach_pty(&id, &[], 24, 80);
    expect(&stay, "/ #");
    // Each client: its connection and the monitor's two descriptions of its terminal.
    assert_eq!(settled_fd_count(mon), baseline + 6);
    gone_client.kill();
    berth_itest::cmd::wait_until("the monitor drops the killed client", T, || {
        (fd_count(mon) == baseline + 3).then_some(())
    });
    let _ = gone.read_for(Duration::from_millis(100));
    typ(&stay, "echo after-$((2*50))\r");
    expect(&stay, "after-100");
    let late = String::from_utf8_lossy(&gone.read_for(Duration::from_millis(500))).into_owned();
    assert!(
        !late.contains("after-100"),
        "the killed client's terminal still got output: {late:?}"
    );
    typ(&stay, "\x10\x11");
    assert_eq!(wait_exit(stay_client).code(), Some(0));
    berth_itest::cmd::wait_until("the monitor's fds back to the baseline", T, || {
        (fd_count(mon) == baseline).then_some(())
    });
}

#[test]
fn detach_and_exit_reset_the_terminal_from_the_monitor() {
    let m = Mon::new();
    let (_b, id) = shell_at_its_prompt(&m, "direct-reset");
    let (pty, client) = m.attach_pty(&id, &[], 24, 80);
    expect(&pty, "/ #");
    // The alternate screen and a hidden cursor, left on by the program.
    typ(&pty, "printf \"\\033[?1049h\\033[?25lalt-$((1+1))\"\r");
    expect(&pty, "alt-2");
    typ(&pty, "\x10\x11");
    let shown =
        String::from_utf8_lossy(&pty.read_until(b"\x1b[?1006l\x1b[?1l\x1b>\r", T)).into_owned();
    assert!(shown.contains("\x1b[?1049l"), "{shown:?}");
    assert!(shown.contains("\x1b[?25h"), "{shown:?}");
    assert_eq!(wait_exit(client).code(), Some(0));

    // The exit: all output, then the reset, then the status.
    let (pty, client) = m.attach_pty(&id, &[], 24, 80);
    expect(&pty, "alt-2");
    typ(&pty, "printf \"\\033[?1049lbye-$((3*3))\"; exit 4\r");
    let out = wait_exit(client);
    assert_eq!(out.code(), Some(4), "{out}");
    let shown = String::from_utf8_lossy(&pty.read_for(Duration::from_millis(300))).into_owned();
    let bye = shown.find("bye-9").expect("the last output");
    let reset = shown.rfind("\x1b[0m\x1b[?25h").expect("the reset");
    assert!(bye < reset, "{shown:?}");
}

#[test]
fn input_the_container_does_not_read_yet_waits() {
    let m = Mon::new();
    // Canonical mode, no echo: nothing reads for two seconds, then every line is counted.
    let b = script_bundle("stty -echo; echo READY; sleep 2; wc -l; sleep 60");
    let id = m.rt.id("direct-input");
    m.start(&b, &id);
    m.wait_log(&id, "READY");
    let lines = 20_000;
    let input: Vec<u8> = (0..lines)
        .flat_map(|i| format!("line {i:05}\n").into_bytes())
        .collect();
    assert!(input.len() > 200_000);
    let mut r = m
        .berth(["attach", &id])
        .stdin(Input::Pipe)
        .stdout(Sink::Capture)
        .spawn();
    let mut stdin = r.take_stdin().expect("stdin pipe");
    // The monitor reads the pipe itself (and stops reading it while the terminal's input
    // queue is full).
    let c = client_by_pid(&m, &id, r.pid());
    assert_eq!(c["input"], "monitor", "{c}");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&input).unwrap();
        // End of input: the terminal's VEOF, after every line was written.
    });
    // Meanwhile the input waits where it is bounded: the pipe, the monitor's input queue
    // (64 KiB), the terminal. The writer is held, not absorbed by a monitor reading on.
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        !writer.is_finished(),
        "all 220 KB were taken while the container read nothing"
    );
    m.wait_log(&id, &format!("{lines}"));
    writer.join().unwrap();
    let log = String::from_utf8_lossy(&m.logs(&id, &[])).into_owned();
    assert!(log.contains(&format!("{lines}\r\n")), "{log:?}");
    r.signal(rustix::process::Signal::TERM);
    assert_eq!(wait_exit(r).code(), Some(0));
}

/// Receives frames (and the descriptor one may carry) until `want` matches.
fn recv_frame_fd(raw: &Raw, want: impl Fn(&Frame<'_>) -> bool) -> (Vec<u8>, Option<OwnedFd>) {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let start = Instant::now();
    while start.elapsed() < T {
        assert!(
            berth_itest::cmd::readable_within(&raw.fd, T),
            "no frame within {T:?}"
        );
        let mut buf = vec![0u8; berth_proto::MAX_FRAME + 1];
        let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = rustix::net::recvmsg(&raw.fd, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
            .expect("recvmsg");
        let mut fd = None;
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                for f in fds {
                    fd.get_or_insert(f);
                }
            }
        }
        buf.truncate(msg.bytes);
        let f = Frame::decode(&buf).expect("a frame");
        if want(&f) {
            return (buf, fd);
        }
    }
    panic!("watchdog");
}

#[test]
fn the_protocol_takes_a_pipe_refuses_a_file_and_hands_out_the_master() {
    let m = Mon::new();
    let (_b, id) = shell_at_its_prompt(&m, "direct-proto");

    // A pipe: the output arrives there raw, the master comes with `Attached`.
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    let raw = Raw::connect(&m, &id);
    let h = hello(|h| {
        h.direct_output = true;
        h.direct_input = true;
    });
    raw.send_fds(&h.to_vec().unwrap(), &[wr.as_fd()]).unwrap();
    drop(wr);
    let (bytes, master) = recv_frame_fd(&raw, |f| matches!(f, Frame::Attached { .. }));
    match Frame::decode(&bytes).unwrap() {
        Frame::Attached {
            direct_output,
            direct_input,
            ..
        } => assert!(direct_output && direct_input),
        other => panic!("{other:?}"),
    }
    let master = master.expect("the master came with Attached");
    rustix::io::write(&master, b"echo piped-$((5*5))\r").unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let start = Instant::now();
    while !String::from_utf8_lossy(&got).contains("piped-25") && start.elapsed() < T {
        if berth_itest::cmd::readable_within(&rd, Duration::from_millis(200)) {
            let n = rustix::io::read(&rd, &mut chunk).unwrap();
            got.extend_from_slice(&chunk[..n]);
        }
    }
    assert!(
        String::from_utf8_lossy(&got).contains("piped-25"),
        "{got:?}"
    );
    drop(master);
    // No output frames on the socket meanwhile: the next frame after `ReplayEnd` is the
    // `Detached` that answers our detach.
    raw.send(&Frame::Detach);
    let (bytes, _) = recv_frame_fd(&raw, |f| {
        assert!(
            !matches!(f, Frame::Output { .. } | Frame::Repaint(_)),
            "output frame for a direct client: {f:?}"
        );
        matches!(f, Frame::Detached)
    });
    assert!(matches!(Frame::decode(&bytes).unwrap(), Frame::Detached));
    // The monitor closed its description of the pipe: the read end sees EOF after the reset
    // (a pipe gets none) and what was left.
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < T, "the monitor kept the pipe open");
        if berth_itest::cmd::readable_within(&rd, Duration::from_millis(200))
            && rustix::io::read(&rd, &mut chunk).unwrap() == 0
        {
            break;
        }
    }

    // The monitor closed that connection (so the count below starts without it).
    assert!(raw.closed_within(T), "the monitor kept the connection");

    // A regular file cannot be reopened privately: frames instead, and the fd is closed.
    let mon = m.monitor_pid(&id);
    let baseline = settled_fd_count(mon);
    let file = tempfile_fd();
    let raw = Raw::connect(&m, &id);
    raw.send_fds(
        &hello(|h| h.direct_output = true).to_vec().unwrap(),
        &[file.as_fd()],
    )
    .unwrap();
    let (bytes, fd) = recv_frame_fd(&raw, |f| matches!(f, Frame::Attached { .. }));
    assert!(fd.is_none(), "a master without direct_input");
    assert!(matches!(
        Frame::decode(&bytes).unwrap(),
        Frame::Attached {
            direct_output: false,
            direct_input: false,
            ..
        }
    ));
    raw.recv_until(T, |f| matches!(f, Frame::Repaint(_)));
    // Our connection is the one fd more.
    assert_eq!(settled_fd_count(mon), baseline + 1);
}

fn tempfile_fd() -> OwnedFd {
    rustix::fs::open(
        std::env::temp_dir(),
        rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .expect("O_TMPFILE")
}

/// A stand-in monitor (python3, from the test setup) listening at `<root>/@monitor/<id>/`, as
/// `uid`, for `conns` connections: it prints what each client's hello brought (its flags byte
/// and descriptors) and, when `refuse_direct` and the hello asks for direct mode, answers with
/// the error a monitor of an older berth gives for flags it does not know. Returns its lines
/// once `berth attach` (on a pty) has ended, which it does with status 1 (the stand-in closes
/// without attaching it).
fn stand_in_monitor(uid: u32, conns: usize, refuse_direct: bool) -> Vec<String> {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let m = Mon::new();
    let id = m.rt.id("direct-stand-in");
    let dir = m.dir(&id);
    std::fs::create_dir_all(&dir).unwrap();
    for d in [dir.as_path(), dir.parent().unwrap()] {
        std::os::unix::fs::chown(d, Some(uid), Some(uid)).unwrap();
    }
    let script = r#"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(sys.argv[1]); s.listen(1); s.settimeout(10)
print("listening", flush=True)
for _ in range(int(sys.argv[2])):
    c, _ = s.accept()
    msg, anc, _, _ = c.recvmsg(65537, socket.CMSG_SPACE(64))
    fds = sum(len(d) // 4 for (l, t, d) in anc if l == socket.SOL_SOCKET and t == socket.SCM_RIGHTS)
    print(f"type={msg[0]} flags={msg[3]} fds={fds}", flush=True)
    if sys.argv[3] == "refuse" and msg[3] & 24:
        c.send(b"\x87" + struct.pack(">H", 1) + f"hello frame: bad flags {msg[3]}".encode())
    c.close()
"#;
    let mut fake = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.join("attach.sock"))
        .arg(conns.to_string())
        .arg(if refuse_direct { "refuse" } else { "take" })
        .uid(uid)
        .gid(uid)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (scripts/setup.sh installs it)");
    let mut lines = std::io::BufReader::new(fake.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "listening");
    let (_pty, client) = m.attach_pty(&id, &[], 24, 80);
    let seen: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let _ = fake.wait();
    let out = wait_exit(client);
    assert_eq!(out.code(), Some(1), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
    seen
}

#[test]
fn the_terminal_goes_only_to_a_monitor_of_the_client_s_uid() {
    // Root's monitor: stdout and stdin with the hello, output, input and keys asked for
    // (8 | 16 | 32).
    assert_eq!(stand_in_monitor(0, 1, false), ["type=1 flags=56 fds=2"]);
    // A monitor of another uid (an unprivileged user's container, attached by root): the
    // user controls that process, so root's terminal must not reach it.
    assert_eq!(stand_in_monitor(65534, 1, false), ["type=1 flags=0 fds=0"]);
}

#[test]
fn a_pipe_whose_reader_left_detaches_its_client_and_the_monitor_serves_on() {
    let m = Mon::new();
    let (_b, id) = shell_at_its_prompt(&m, "direct-epipe");
    let mon = m.monitor_pid(&id);
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    let raw = Raw::connect(&m, &id);
    let h = hello(|h| {
        h.direct_output = true;
        h.direct_input = true;
    });
    raw.send_fds(&h.to_vec().unwrap(), &[wr.as_fd()]).unwrap();
    drop(wr);
    let (_, master) = recv_frame_fd(&raw, |f| matches!(f, Frame::Attached { .. }));
    let master = master.expect("the master");
    // The reader goes away; the next output meets EPIPE (never SIGPIPE: the monitor lives).
    drop(rd);
    rustix::io::write(&master, b"echo gone-$((2+2))\r").unwrap();
    recv_frame_fd(&raw, |f| matches!(f, Frame::Detached));
    assert!(raw.closed_within(T), "the monitor kept the connection");
    assert!(monitor_support::alive(mon), "the monitor died");
    m.wait_log(&id, "gone-4");
    // Another client is served as before.
    let (pty, client) = m.attach_pty(&id, &[], 24, 80);
    expect(&pty, "gone-4");
    typ(&pty, "\x10\x11");
    assert_eq!(wait_exit(client).code(), Some(0));
}

#[test]
fn a_monitor_that_refuses_direct_mode_gets_a_framed_hello() {
    // What a monitor started by an older berth answers to the direct flags; the client
    // connects again and says hello without them.
    assert_eq!(
        stand_in_monitor(0, 2, true),
        ["type=1 flags=56 fds=2", "type=1 flags=0 fds=0"]
    );
}

#[test]
fn a_terminal_nobody_reads_does_not_stall_the_container() {
    let m = Mon::new();
    let b = script_bundle(
        "read x; dd if=/dev/zero bs=65536 count=320 2>/dev/null; echo; echo FINISHED-$((4*5)); exec sleep 1000",
    );
    let id = m.rt.id("direct-unread");
    m.start(&b, &id);
    // A direct client whose terminal is never read: the monitor's writes to it stop with
    // EAGAIN once the pty's buffers are full.
    let (pty, client) = m.attach_pty(&id, &["--read-only"], 24, 80);
    let c = client_by_pid(&m, &id, client.pid());
    assert_eq!(c["output"], "direct", "{c}");
    let typist = Raw::connect(&m, &id);
    typist.send(&hello(|h| h.start = berth_proto::Start::Live));
    typist.send(&Frame::Stdin(b"\r"));
    typist.send(&Frame::Detach);
    // 20 MiB later the container is done, the client far behind.
    let start = Instant::now();
    berth_itest::cmd::wait_until(
        "the container wrote 20 MiB",
        Duration::from_secs(60),
        || m.screenshot(&id).contains("FINISHED-20").then_some(()),
    );
    eprintln!("20 MiB past an unread terminal in {:.2?}", start.elapsed());
    let c = client_by_pid(&m, &id, client.pid());
    assert!(c["skips"].as_u64().unwrap() >= 1, "not skipped: {c}");
    assert!(c["drops"].as_u64().unwrap() > 0, "no drops: {c}");
    // Reading again, the terminal gets a repaint of the current screen.
    expect(&pty, "FINISHED-20");
    client.signal(rustix::process::Signal::TERM);
    assert_eq!(wait_exit(client).code(), Some(0));
}
