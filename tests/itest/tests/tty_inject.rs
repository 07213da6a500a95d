//! Terminal injection from a detached pass-through container (security.md S-01; issue 3
//! "Pass-through, detached").
//!
//! The container's stdin/stdout/stderr are the peer of a pty the test allocated (the caller's
//! terminal). The container calls `TIOCSTI` (type a byte into the caller's input) and
//! `TIOCLINUX` (paste the console selection), each also with the high 32 bits of the request set
//! (the kernel truncates the command to 32 bits; a seccomp rule comparing 64 bits would miss
//! it). Expected from berth: `EPERM` for all four, and the test's input queue stays empty.
//!
//! Without `CAP_SYS_ADMIN`, `setsid` alone already stops `TIOCSTI` (the pty is not the
//! caller's controlling terminal). With `CAP_SYS_ADMIN` in the initial user namespace the kernel
//! allows `TIOCSTI` on any tty (this machine has `dev.tty.legacy_tiocsti = 1`), so only berth's
//! seccomp guard (a masked 32-bit compare on the request) stops it. runc 1.1.5 and crun 1.8.1 have
//! no such guard: with `CAP_SYS_ADMIN` the injection succeeds, which the tests assert, so the
//! comparison stays visible.

mod tty_common;

use berth_itest::{Bundle, Cmd, Input, Kind, MasterIo, Pty, Runtime, Sink, probe_path, runtime};
use serde_json::json;
use tty_common::{T, make_raw, queued, sleeper, until};

const ATTACK: &str = "/probe tiocsti 0 x; /probe tiocsti 0 y --high-bits; \
                      /probe tioclinux 0; /probe tioclinux 0 --high-bits; echo attack-done";

/// A pty in raw mode (FIONREAD then counts every queued byte), with a positive control: root on
/// the host can inject, and the queue shows it.
fn victim() -> Pty {
    let pty = Pty::new();
    let peer = pty.peer();
    make_raw(&peer);
    Cmd::new(probe_path())
        .args(["tiocsti", "0", "z"])
        .stdin(Input::Fd(pty.peer()))
        .ok();
    assert_eq!(queued(&peer), 1, "control injection not seen");
    let mut one = [0u8; 1];
    rustix::io::read(&peer, &mut one).expect("drain the control byte");
    assert_eq!(queued(&peer), 0);
    pty
}

/// The four results (`tiocsti`, `tiocsti --high-bits`, `tioclinux`, `tioclinux --high-bits`).
fn results(text: &str) -> Vec<String> {
    let r: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let at = l
                .find("tiocsti result=")
                .or_else(|| l.find("tioclinux result="))?;
            Some(berth_itest::probe::parse_line(&l[at..]).1["result"].clone())
        })
        .collect();
    assert_eq!(r.len(), 4, "{text:?}");
    r
}

fn with_sys_admin(b: &mut Bundle) {
    b.config(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .expect("capability set")
                .push(json!("CAP_SYS_ADMIN"));
        }
    });
}

/// Runs the attack in `run -d` with the pty as stdio; returns the pty's text.
fn run_detached_attack(rt: &Runtime, b: &Bundle, pty: &Pty, name: &str) -> String {
    let id = rt.id(name);
    rt.guard().track_bundle(b.path());
    rt.cmd(["run", "-d", "--bundle"])
        .arg(b.path())
        .arg(&id)
        .stdin(Input::Fd(pty.peer()))
        .stdout(Sink::Fd(pty.peer()))
        .stderr(Sink::Fd(pty.peer()))
        .ok();
    until(pty, "attack-done")
}

/// What a reference runtime without a guard gets: `TIOCSTI` refused only by `setsid`.
#[track_caller]
fn assert_unguarded(rt: &Runtime, r: &[String], sys_admin: bool) {
    let sti = if sys_admin { "ok" } else { "EPERM" };
    assert_eq!(&r[..2], [sti, sti], "{:?}: {r:?}", rt.kind());
    // TIOCLINUX is a virtual-console ioctl: a pty answers ENOTTY or EINVAL.
    for x in &r[2..] {
        assert!(["ENOTTY", "EINVAL"].contains(&x.as_str()), "{r:?}");
    }
}

#[test]
fn detached_pass_through_cannot_type_into_the_callers_terminal() {
    let rt = runtime();
    let pty = victim();
    let peer = pty.peer();
    let mut b = Bundle::busybox();
    b.sh(ATTACK);
    let text = run_detached_attack(&rt, &b, &pty, "inject");
    let r = results(&text);
    match rt.kind() {
        Kind::Berth => {
            assert_eq!(r, ["EPERM"; 4], "{text:?}");
            assert!(text.contains("TIOCSTI"), "no warning from berth: {text:?}");
        }
        Kind::Runc | Kind::Crun => assert_unguarded(&rt, &r, false),
    }
    assert_eq!(
        queued(&peer),
        0,
        "the container typed into the caller's terminal"
    );
}

#[test]
fn detached_pass_through_with_cap_sys_admin_cannot_type_into_the_callers_terminal() {
    let rt = runtime();
    let pty = victim();
    let peer = pty.peer();
    let mut b = Bundle::busybox();
    b.sh(ATTACK);
    with_sys_admin(&mut b);
    let text = run_detached_attack(&rt, &b, &pty, "inject-admin");
    let r = results(&text);
    match rt.kind() {
        Kind::Berth => {
            assert_eq!(r, ["EPERM"; 4], "{text:?}");
            assert_eq!(
                queued(&peer),
                0,
                "the container typed into the caller's terminal"
            );
        }
        Kind::Runc | Kind::Crun => {
            // Vulnerable: both TIOCSTI calls land in the caller's input queue.
            assert_unguarded(&rt, &r, true);
            assert_eq!(queued(&peer), 2, "{text:?}");
            let mut two = [0u8; 2];
            rustix::io::read(&peer, &mut two).expect("read injected bytes");
            assert_eq!(&two, b"xy");
        }
    }
}

#[test]
fn create_start_pass_through_with_cap_sys_admin_is_guarded() {
    let rt = runtime();
    let pty = victim();
    let peer = pty.peer();
    let mut b = Bundle::busybox();
    b.sh(ATTACK);
    with_sys_admin(&mut b);
    let id = rt.id("inject-create");
    rt.guard().track(&id);
    rt.guard().track_bundle(b.path());
    rt.cmd(["create", "--bundle"])
        .arg(b.path())
        .arg(&id)
        .stdin(Input::Fd(pty.peer()))
        .stdout(Sink::Fd(pty.peer()))
        .stderr(Sink::Fd(pty.peer()))
        .ok();
    rt.start(&id);
    let text = until(&pty, "attack-done");
    let r = results(&text);
    if rt.kind() == Kind::Berth {
        assert_eq!(r, ["EPERM"; 4], "{text:?}");
        assert_eq!(
            queued(&peer),
            0,
            "the container typed into the caller's terminal"
        );
    } else {
        assert_unguarded(&rt, &r, true);
        assert_eq!(queued(&peer), 2, "{text:?}");
    }
}

#[test]
fn exec_detached_pass_through_with_cap_sys_admin_is_guarded() {
    let rt = runtime();
    let pty = victim();
    let peer = pty.peer();
    let id = rt.id("inject-exec");
    let _b = sleeper(&rt, &id);
    rt.cmd([
        "exec",
        "-d",
        "--cap",
        "CAP_SYS_ADMIN",
        id.as_str(),
        "sh",
        "-c",
        ATTACK,
    ])
    .stdin(Input::Fd(pty.peer()))
    .stdout(Sink::Fd(pty.peer()))
    .stderr(Sink::Fd(pty.peer()))
    .ok();
    let text = until(&pty, "attack-done");
    let r = results(&text);
    if rt.kind() == Kind::Berth {
        assert_eq!(r, ["EPERM"; 4], "{text:?}");
        assert_eq!(
            queued(&peer),
            0,
            "the exec'd process typed into the caller's terminal"
        );
    } else {
        assert_unguarded(&rt, &r, true);
        assert_eq!(queued(&peer), 2, "{text:?}");
    }
}

#[test]
fn the_guard_does_not_touch_a_containers_own_terminal() {
    // With a terminal of its own, TIOCSTI on it (its controlling tty) is the container's
    // business: berth loads no guard, so the byte lands in the container's own input.
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.terminal(true)
        .sh("stty raw -echo; /probe tiocsti 0 q; read -n 1 c; echo got:$c");
    let mut pty = Pty::new();
    let running = pty.spawn(rt.run_cmd(&b, &rt.id("own-tty")).timeout(T));
    let text = String::from_utf8_lossy(&pty.read_until_eof(T)).into_owned();
    let out = running.wait();
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(text.contains("tiocsti result=ok"), "{text:?}");
    assert!(text.contains("got:q"), "{text:?}");
}
