//! Which fds reach the container process (security.md F-01, reduced): only stdio, whatever
//! path started it, with the terminal on or off.

use std::time::Duration;

use berth_itest::{Bundle, MasterIo, Pty, Sink, probe_line, runtime, strip_cr};

const T: Duration = Duration::from_secs(10);

#[track_caller]
fn only_stdio(text: &str) -> std::collections::BTreeMap<String, String> {
    let fds = probe_line(text, "fds");
    assert_eq!(fds.keys().collect::<Vec<_>>(), ["0", "1", "2"], "{text}");
    fds
}

#[test]
fn run_foreground_without_terminal() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.probe(&["fds"]);
    let out = rt.run_cmd(&b, &rt.id("fds-run")).ok();
    only_stdio(&out.stdout_str());
}

#[test]
fn create_start_without_terminal() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.probe(&["fds"]);
    let id = rt.id("fds-create");
    let log = b.path().join("out.txt");
    let file = std::fs::File::create(&log).expect("out file");
    rt.cmd(["create", "--bundle"])
        .arg(b.path())
        .arg(&id)
        .stdout(Sink::Fd(file.into()))
        .ok();
    rt.start(&id);
    rt.wait_for_status(&id, "stopped", T);
    let text = std::fs::read_to_string(&log).expect("read out");
    let fds = only_stdio(&text);
    assert!(
        fds["1"].ends_with("out.txt"),
        "stdout is not the caller's file: {text}"
    );
}

#[test]
fn run_foreground_with_terminal() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.terminal(true).probe(&["fds"]);
    let mut pty = Pty::new();
    let running = pty.spawn(rt.run_cmd(&b, &rt.id("fds-run-t")));
    let text = String::from_utf8_lossy(&strip_cr(&pty.read_until_eof(T))).into_owned();
    running.wait().assert_ok();
    let fds = only_stdio(&text);
    assert!(fds.values().all(|v| v == "/dev/pts/0"), "{text}");
}

#[test]
fn exec_with_and_without_terminal() {
    let rt = runtime();
    let b = Bundle::busybox();
    let id = rt.id("fds-exec");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);
    let out = rt.exec_cmd(&id, &["/probe", "fds"]).ok();
    only_stdio(&out.stdout_str());

    let mut pty = Pty::new();
    let running = pty.spawn(rt.cmd(["exec", "-t", id.as_str(), "/probe", "fds"]));
    let text = String::from_utf8_lossy(&strip_cr(&pty.read_until_eof(T))).into_owned();
    running.wait().assert_ok();
    let fds = only_stdio(&text);
    assert!(fds.values().all(|v| v.starts_with("/dev/pts/")), "{text}");
}
