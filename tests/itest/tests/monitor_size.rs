//! Terminal size through the monitor: a resize that arrives before the pty exists is queued
//! and is the size the program sees at its first instruction; the size is never 0x0; several
//! clients follow the `latest`, `smallest` or `largest` policy, and read-only and
//! `ignore-size` clients never count.

mod monitor_support;

use berth_itest::{Kind, MasterIo, wait_until};
use berth_proto::{Frame, Role, Start};
use monitor_support::{Mon, Raw, T, expect, script_bundle, shell_bundle, typ, wait_exit};
use serde_json::json;

fn size_printing_bundle() -> berth_itest::Bundle {
    script_bundle("stty size; exec sleep 1000")
}

#[test]
fn a_resize_before_the_pty_exists_is_queued() {
    let m = Mon::new();
    let mut b = size_printing_bundle();
    // The pty comes after the prestart hooks: a second to attach before it exists.
    b.config(|c| {
        c["hooks"] = json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "1"]}]});
    });
    let id = m.rt.id("size-early");
    let starter = m.start_cmd(&b, &id).spawn();
    let sock = m.dir(&id).join("attach.sock");
    wait_until("the monitor's socket", T, || sock.exists().then_some(()));
    let (_pty, client) = m.attach_pty(&id, &[], 33, 77);
    let s = wait_until("the early client", T, || {
        let s = m.session(&id, "console");
        (s["clients"].as_array()?.len() == 1).then_some(s)
    });
    assert_eq!(s["status"], "waiting", "the pty already existed: {s}");
    assert_eq!(s["size"], "33x77", "{s}");
    let out = wait_exit(starter);
    assert_eq!(out.code(), Some(0), "{out}");
    let log = String::from_utf8_lossy(&m.wait_log(&id, "\n")).into_owned();
    assert_eq!(log.lines().next(), Some("33 77"), "{log:?}");
    client.signal(rustix::process::Signal::TERM);
    let _ = wait_exit(client);
}

#[test]
fn the_size_is_never_0x0() {
    let m = Mon::new();
    let b = size_printing_bundle();
    // No consoleSize, no terminal, no client: 24x80.
    let id = m.rt.id("size-default");
    m.start(&b, &id);
    let log = String::from_utf8_lossy(&m.wait_log(&id, "\n")).into_owned();
    assert_eq!(log.lines().next(), Some("24 80"), "{log:?}");
    if m.rt.kind() == Kind::Berth {
        // `berth run -d -t` from a terminal: that terminal's size.
        let id = m.rt.id("size-caller");
        m.rt.guard().track(&id);
        let (_pty, r) = m.on_pty(
            m.berth(["run", "-d", "-t", "--bundle"])
                .arg(b.path())
                .arg(&id),
            40,
            132,
        );
        assert_eq!(wait_exit(r).code(), Some(0));
        let log = String::from_utf8_lossy(&m.wait_log(&id, "\n")).into_owned();
        assert_eq!(log.lines().next(), Some("40 132"), "{log:?}");
    }
    // consoleSize wins over the default.
    let mut b = size_printing_bundle();
    b.console_size(12, 34);
    let id = m.rt.id("size-config");
    m.start(&b, &id);
    let log = String::from_utf8_lossy(&m.wait_log(&id, "\n")).into_owned();
    assert_eq!(log.lines().next(), Some("12 34"), "{log:?}");
}

/// Attaches a raw client and waits for its `Attached` frame.
fn client(m: &Mon, id: &str, f: impl FnOnce(&mut berth_proto::Hello<'static>)) -> Raw {
    let r = Raw::connect(m, id);
    let mut h = berth_proto::Hello {
        start: Start::Live,
        ..Default::default()
    };
    f(&mut h);
    r.send(&Frame::Hello(h));
    r.recv_until(T, |f| matches!(f, Frame::Attached { .. }));
    r
}

#[track_caller]
fn wait_size(m: &Mon, id: &str, want: &str) {
    let mut last = String::new();
    let ok = (0..200).any(|_| {
        last = m.session(id, "console")["size"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if last == want {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
        false
    });
    assert!(ok, "size {last}, want {want}");
}

fn policy_case(policy: &str, all: &str, after_resize: &str, after_close: &str) {
    let m = Mon::new();
    let mut b = shell_bundle();
    b.annotation("io.github.berth.monitor.size-policy", policy);
    let id = m.rt.id(&format!("size-{policy}"));
    m.start(&b, &id);
    m.wait_screen(&id, "/ #");
    let a = client(&m, &id, |h| h.size = Some((30, 100)));
    let b2 = client(&m, &id, |h| h.size = Some((20, 120)));
    let c = client(&m, &id, |h| h.size = Some((25, 90)));
    let _ro = client(&m, &id, |h| {
        h.size = Some((50, 200));
        h.role = Role::ReadOnly;
    });
    let ign = client(&m, &id, |h| {
        h.size = Some((60, 60));
        h.ignore_size = true;
    });
    wait_size(&m, &id, all);
    a.send(&Frame::Resize {
        rows: 35,
        cols: 110,
    });
    wait_size(&m, &id, after_resize);
    drop(a);
    wait_size(&m, &id, after_close);
    // Only non-counting clients left: the size stays.
    drop(b2);
    drop(c);
    wait_until("two clients left", T, || {
        (m.session(&id, "console")["clients"].as_array()?.len() == 2).then_some(())
    });
    let left = m.session(&id, "console")["size"]
        .as_str()
        .unwrap()
        .to_string();
    // The program sees it too.
    ign.send(&Frame::Stdin(b"stty size\r"));
    let (rows, cols) = left.split_once('x').unwrap();
    let want = format!("{rows} {cols}");
    ign.recv_until(T, |f| {
        matches!(f, Frame::Output { data, .. } if String::from_utf8_lossy(data).contains(&want))
    });
}

#[test]
fn size_policy_latest() {
    // latest: C attached last; then A resized; after A leaves, C is the latest again.
    policy_case("latest", "25x90", "35x110", "25x90");
}

#[test]
fn size_policy_smallest() {
    policy_case("smallest", "20x90", "20x90", "20x90");
}

#[test]
fn size_policy_largest() {
    policy_case("largest", "30x120", "35x120", "25x120");
}

#[test]
fn a_real_terminal_resize_reaches_the_program() {
    let m = Mon::new();
    let b = shell_bundle();
    let id = m.rt.id("size-winch");
    m.start(&b, &id);
    m.wait_screen(&id, "/ #");
    let (pty, cl) = m.attach_pty(&id, &[], 30, 100);
    expect(&pty, "/ #");
    typ(&pty, "stty size\r");
    expect(&pty, "30 100");
    pty.set_size(44, 111);
    wait_size(&m, &id, "44x111");
    typ(&pty, "stty size\r");
    expect(&pty, "44 111");
    typ(&pty, "\x10\x11");
    assert_eq!(wait_exit(cl).code(), Some(0));
}
