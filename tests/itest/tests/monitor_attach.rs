//! Attach and detach through the console monitor: the repaint on attach (no key pressed),
//! each detach-key style (Docker's `ctrl-p,ctrl-q`, custom keys, a doubled prefix, a held
//! prefix flushed after the timeout, keys disabled, LXC's `Ctrl-a q` and `-e`), re-attach,
//! attaching without a terminal, read-only clients, `--force`, attaching after the exit, a
//! SIGTERM the moment the client has said hello (under strace, which holds the return of that
//! `sendto` for 0.4 s: the signal must be read from the signalfd, not kill the client with the
//! terminal raw; it did before the signals were blocked ahead of the hello), and clear errors
//! for bad `--detach-keys`/`--escape` values.

mod monitor_support;

use std::time::Duration;

use berth_itest::{Input, MasterIo, Sink};
use monitor_support::{
    Mon, T, berth_bin, expect, monitor_bin, script_bundle, shell_bundle, typ, wait_exit,
};

/// A container that prints every byte it reads as hex (raw mode, no echo), one per line.
fn hexdump_bundle() -> berth_itest::Bundle {
    script_bundle(
        "stty raw -echo; echo READY; while :; do dd bs=1 count=1 2>/dev/null | od -An -tx1; done",
    )
}

#[test]
fn attach_repaints_at_once_then_detach_with_ctrl_p_ctrl_q_and_reattach() {
    let m = Mon::new();
    let b = shell_bundle();
    let id = m.rt.id("attach-basic");
    m.start(&b, &id);
    m.wait_screen(&id, "/ #");

    // The prompt is drawn on attach without any key pressed.
    let (pty, client) = m.attach_pty(&id, &[], 24, 80);
    expect(&pty, "/ #");
    typ(&pty, "echo one-$((20+22))\r");
    expect(&pty, "one-42");
    typ(&pty, "\x10\x11");
    let out = wait_exit(client);
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(m.rt.status(&id).as_deref(), Some("running"));

    // Re-attach: the earlier output is on the repainted screen, nothing typed.
    let (pty, client) = m.attach_pty(&id, &[], 24, 80);
    expect(&pty, "one-42");
    typ(&pty, "echo two-$((1+1))\r");
    expect(&pty, "two-2");
    typ(&pty, "\x10\x11");
    assert_eq!(wait_exit(client).code(), Some(0));
}

#[test]
fn custom_detach_keys_doubled_prefix_and_held_prefix_timeout_read_by_the_monitor() {
    custom_detach_keys(false);
}

#[test]
fn custom_detach_keys_doubled_prefix_and_held_prefix_timeout_read_by_the_client() {
    custom_detach_keys(true);
}

/// `berth attach ARGS` on a new 24x80 pty, its keys read by the monitor (the default) or, with
/// `client_reads`, by the client (`BERTH_ATTACH_CLIENT_KEYS`).
fn attach_on_pty(
    m: &Mon,
    args: &[&str],
    client_reads: bool,
) -> (berth_itest::Pty, berth_itest::Running) {
    let mut cmd = m.berth(["attach"]).args(args);
    if client_reads {
        cmd = cmd.env("BERTH_ATTACH_CLIENT_KEYS", "1");
    }
    m.on_pty(cmd, 24, 80)
}

/// The key semantics, with the keys read (and scanned) by the monitor (the default), or by
/// the client (`BERTH_ATTACH_CLIENT_KEYS`, which writes them to the master).
fn custom_detach_keys(client_reads: bool) {
    let m = Mon::new();
    let b = hexdump_bundle();
    let id = m.rt.id(if client_reads {
        "attach-ckeys"
    } else {
        "attach-keys"
    });
    m.start(&b, &id);
    m.wait_log(&id, "READY");
    let (pty, client) = attach_on_pty(
        &m,
        &["--detach-keys", "ctrl-x,y", "--detach-timeout", "300", &id],
        client_reads,
    );
    expect(&pty, "READY");
    // Whoever reads the keys is the one this test is about.
    let clients = m.session(&id, "console")["clients"].clone();
    assert_eq!(
        clients[0]["input"],
        if client_reads { "master" } else { "monitor" },
        "{clients}"
    );
    // a, the prefix typed twice (one ctrl-x reaches the container), b.
    typ(&pty, "a\x18\x18b");
    let seen = expect(&pty, "62");
    let hex: Vec<&str> = seen.split_whitespace().filter(|w| w.len() == 2).collect();
    assert!(
        hex.ends_with(&["61", "18", "62"]),
        "container got {hex:?} ({seen:?})"
    );
    // A held prefix is typed after the timeout, not lost.
    typ(&pty, "\x18");
    std::thread::sleep(Duration::from_millis(700));
    typ(&pty, "c");
    let seen = expect(&pty, "63");
    let hex: Vec<&str> = seen.split_whitespace().filter(|w| w.len() == 2).collect();
    assert!(hex.ends_with(&["18", "63"]), "container got {hex:?}");
    // ctrl-x then something else: both go through, in order.
    typ(&pty, "\x18z");
    let seen = expect(&pty, "7a");
    let hex: Vec<&str> = seen.split_whitespace().filter(|w| w.len() == 2).collect();
    assert!(hex.ends_with(&["18", "7a"]), "container got {hex:?}");
    // The default keys are just bytes here.
    typ(&pty, "\x10\x11");
    expect(&pty, "11");
    assert!(client.is_running());
    typ(&pty, "\x18y");
    assert_eq!(wait_exit(client).code(), Some(0));
    assert_eq!(m.rt.status(&id).as_deref(), Some("running"));
    // The detach sequence never reached the container.
    let log = String::from_utf8_lossy(&m.logs(&id, &[])).into_owned();
    assert!(!log.contains(" 79"), "the detach key 'y' leaked: {log:?}");
}

#[test]
fn a_hung_up_terminal_detaches_its_client_and_the_shell_lives_on_keys_read_by_the_monitor() {
    hung_up_terminal(false);
}

#[test]
fn a_hung_up_terminal_detaches_its_client_and_the_shell_lives_on_keys_read_by_the_client() {
    hung_up_terminal(true);
}

/// The user's terminal goes away (its window closed: the master is closed, the client gets
/// SIGHUP and its terminal reads EIO). That is not the end of the container's input: no
/// `VEOF` may reach a program reading its terminal in canonical mode (it would see the end of
/// its input); the client just detaches.
fn hung_up_terminal(client_reads: bool) {
    let m = Mon::new();
    let b = script_bundle("while read l; do echo got-$l; done; echo EOF-SEEN; sleep 1000");
    let id = m.rt.id(if client_reads {
        "attach-chup"
    } else {
        "attach-hup"
    });
    m.start(&b, &id);
    for i in 0..3 {
        let (pty, client) = attach_on_pty(&m, &[&id], client_reads);
        typ(&pty, &format!("line{i}\r"));
        expect(&pty, &format!("got-line{i}"));
        drop(pty);
        let out = wait_exit(client);
        assert!(out.code().is_some(), "{out}");
    }
    std::thread::sleep(Duration::from_millis(300));
    let log = String::from_utf8_lossy(&m.logs(&id, &[])).into_owned();
    assert!(
        !log.contains("EOF-SEEN"),
        "a hang-up ended the input: {log:?}"
    );
    // Still reading.
    let (pty, client) = m.attach_pty(&id, &[], 24, 80);
    typ(&pty, "alive\r");
    expect(&pty, "got-alive");
    typ(&pty, "\x10\x11");
    assert_eq!(wait_exit(client).code(), Some(0));
}

#[test]
fn empty_detach_keys_disable_detaching() {
    let m = Mon::new();
    let b = hexdump_bundle();
    let id = m.rt.id("attach-nokeys");
    m.start(&b, &id);
    m.wait_log(&id, "READY");
    let (pty, client) = m.attach_pty(&id, &["--detach-keys", ""], 24, 80);
    expect(&pty, "READY");
    typ(&pty, "\x10\x11");
    expect(&pty, "11");
    assert!(client.is_running(), "detached although keys were disabled");
    // Without keys, a signal detaches.
    client.signal(rustix::process::Signal::TERM);
    assert_eq!(wait_exit(client).code(), Some(0));
    assert_eq!(m.rt.status(&id).as_deref(), Some("running"));
}

#[test]
fn lxc_console_escape_and_e_flag() {
    let m = Mon::new();
    let b = hexdump_bundle();
    let id = m.rt.id("console-keys");
    m.start(&b, &id);
    m.wait_log(&id, "READY");
    let (pty, client) = m.on_pty(m.berth(["console", &id]), 24, 80);
    expect(&pty, "READY");
    // Ctrl-a Ctrl-a types one Ctrl-a.
    typ(&pty, "\x01\x01q");
    let seen = expect(&pty, "71");
    let hex: Vec<&str> = seen.split_whitespace().filter(|w| w.len() == 2).collect();
    assert!(hex.ends_with(&["01", "71"]), "container got {hex:?}");
    typ(&pty, "\x01q");
    assert_eq!(wait_exit(client).code(), Some(0));

    let (pty, client) = m.on_pty(m.berth(["console", "-e", "^b", &id]), 24, 80);
    expect(&pty, "READY");
    typ(&pty, "\x01");
    expect(&pty, "01");
    assert!(client.is_running());
    typ(&pty, "\x02q");
    assert_eq!(wait_exit(client).code(), Some(0));
    assert_eq!(m.rt.status(&id).as_deref(), Some("running"));
}

#[test]
fn attach_works_without_a_terminal() {
    let m = Mon::new();
    let b = shell_bundle();
    let id = m.rt.id("attach-pipe");
    m.start(&b, &id);
    m.wait_screen(&id, "/ #");
    // stdin and stdout are pipes: keys are still scanned, output is the raw stream.
    let mut r = m
        .berth(["attach", &id])
        .stdin(Input::Pipe)
        .stdout(Sink::Capture)
        .spawn();
    let mut stdin = r.take_stdin().expect("stdin pipe");
    use std::io::Write;
    stdin.write_all(b"echo piped-$((6*7))\n").unwrap();
    m.wait_log(&id, "piped-42");
    stdin.write_all(b"\x10\x11").unwrap();
    let out = wait_exit(r);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout_str().contains("piped-42"), "{out}");
    assert_eq!(m.rt.status(&id).as_deref(), Some("running"));
}

#[test]
fn read_only_clients_watch_but_cannot_type() {
    let m = Mon::new();
    let b = shell_bundle();
    let id = m.rt.id("attach-ro");
    m.start(&b, &id);
    m.wait_screen(&id, "/ #");
    let (ro, ro_client) = m.attach_pty(&id, &["--read-only"], 24, 80);
    expect(&ro, "/ #");
    typ(&ro, "echo from-ro\r");
    let (rw, rw_client) = m.attach_pty(&id, &[], 24, 80);
    expect(&rw, "/ #");
    typ(&rw, "echo from-rw\r");
    // The read-only client sees the read-write client's output...
    expect(&ro, "from-rw");
    // ...and its own keys never reached the container.
    let log = String::from_utf8_lossy(&m.logs(&id, &[])).into_owned();
    assert!(!log.contains("from-ro"), "{log:?}");
    // Detach keys work for read-only clients too.
    typ(&ro, "\x10\x11");
    assert_eq!(wait_exit(ro_client).code(), Some(0));
    typ(&rw, "\x10\x11");
    assert_eq!(wait_exit(rw_client).code(), Some(0));
}

#[test]
fn force_takes_over_and_tells_the_others() {
    let m = Mon::new();
    let b = shell_bundle();
    let id = m.rt.id("attach-force");
    m.start(&b, &id);
    m.wait_screen(&id, "/ #");
    let (a, a_client) = m.attach_pty(&id, &[], 24, 80);
    expect(&a, "/ #");
    let (b2, b_client) = m.attach_pty(&id, &["--force"], 24, 80);
    expect(&b2, "/ #");
    let out = wait_exit(a_client);
    assert_eq!(out.code(), Some(1), "{out}");
    let text = String::from_utf8_lossy(&a.read_for(Duration::from_millis(200))).into_owned();
    let all = format!("{}{}", out.stderr_str(), text);
    assert!(
        all.contains("took the terminal over with --force"),
        "{all:?}"
    );
    typ(&b2, "echo still-here\r");
    expect(&b2, "still-here");
    typ(&b2, "\x10\x11");
    assert_eq!(wait_exit(b_client).code(), Some(0));
}

#[test]
fn attach_after_the_exit_gets_the_output_and_the_status() {
    let m = Mon::new();
    let b = script_bundle("echo bye-$((3*3)); exit 3");
    let id = m.rt.id("attach-exited");
    m.start_cmd(&b, &id).ok();
    m.rt.wait_for_status(&id, "stopped", T);
    m.wait_log(&id, "bye-9");
    let (pty, client) = m.attach_pty(&id, &[], 24, 80);
    let out = wait_exit(client);
    assert_eq!(out.code(), Some(3), "{out}");
    let shown = String::from_utf8_lossy(&pty.read_for(Duration::from_millis(300))).into_owned();
    assert!(shown.contains("bye-9"), "{shown:?}");
    let s = m.session(&id, "console");
    assert_eq!(s["status"], "exited with status 3", "{s}");
    assert_eq!(s["exit_code"], 3);
}

#[test]
fn bad_detach_keys_and_escapes_are_clear_errors() {
    let m = Mon::new();
    let b = shell_bundle();
    let id = m.rt.id("attach-badkeys");
    m.start(&b, &id);
    for (keys, want) in [
        ("ctrl-", "key \"ctrl-\" is not a single character"),
        ("ctrl-1", "key \"ctrl-1\" is not a single character"),
        ("foo", "key \"foo\" is not a single character"),
        ("ctrl-p,", "key 2 is empty"),
        (",", "key 1 is empty"),
        ("é", "key \"é\" is not a single character"),
        ("ctrl-p,,ctrl-q", "key 2 is empty"),
    ] {
        let out = m
            .berth(["attach", "--detach-keys", keys, &id])
            .timeout(T)
            .run();
        assert_eq!(out.code(), Some(1), "{keys:?}: {out}");
        let err = unescape(&out.stderr_str());
        assert_eq!(err.trim().lines().count(), 1, "{keys:?}: {err:?}");
        assert!(
            err.contains("--detach-keys") && err.contains(want),
            "{keys:?}: {err:?}"
        );
    }
    for esc in ["1", "^", "ab", "^q", ""] {
        let out = m.berth(["console", "-e", esc, &id]).timeout(T).run();
        assert_eq!(out.code(), Some(1), "{esc:?}: {out}");
        let err = unescape(&out.stderr_str());
        assert!(
            err.contains("--escape") && err.contains("escape prefix"),
            "{esc:?}: {out}"
        );
    }
    // Nothing of that reached the monitor, which keeps serving.
    assert_eq!(m.session(&id, "console")["status"], "running");
}

/// berth's log line quotes the message (logrus text format): undo its escaping.
fn unescape(s: &str) -> String {
    s.replace("\\\"", "\"").replace("\\\\", "\\")
}

#[test]
fn attach_errors_name_the_container() {
    let m = Mon::new();
    let out = m.berth(["attach", "no-such-container"]).run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr_str()
            .contains("container no-such-container has no console monitor"),
        "{out}"
    );
    let out = m.berth(["attach", "--exec", "", "x"]).run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr_str().contains("--exec"), "{out}");
}

#[test]
fn sigterm_right_after_the_hello_detaches_and_restores_the_terminal() {
    let m = Mon::new();
    let b = shell_bundle();
    let id = m.rt.id("attach-term");
    m.start(&b, &id);
    let cmd = berth_itest::Cmd::new("strace")
        .args(["-f", "-o", "/dev/null", "-e"])
        .arg("inject=sendto:delay_exit=400000:when=1")
        .arg(berth_bin())
        .env("BERTH_MONITOR", monitor_bin())
        .arg("--root")
        .arg(m.rt.root())
        .args(["attach", &id]);
    // A new pty's modes, as the test's pty had them before the client made it raw.
    let before = berth_itest::Pty::new().termios();
    let (pty, traced) = m.on_pty(cmd, 24, 80);
    // The monitor lists the client once it has read the hello; the client is still inside the
    // delayed sendto then.
    berth_itest::wait_until("the client's hello", T, || {
        let s = m.session(&id, "console");
        (s["clients"].as_array()?.len() == 1).then_some(())
    });
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", traced.pid()))
        .expect("strace's children");
    let client: i32 = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("berth under strace");
    let pid = rustix::process::Pid::from_raw(client).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("kill");
    let out = wait_exit(traced);
    assert_eq!(
        out.code(),
        Some(0),
        "berth attach died of the SIGTERM: {out}"
    );
    assert_eq!(
        pty.termios(),
        before,
        "the terminal's modes were not restored"
    );
}
