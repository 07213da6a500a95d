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
