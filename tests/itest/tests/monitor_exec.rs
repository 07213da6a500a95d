//! Exec sessions, extra ttys, the monitor with runc, `create -t`/`run -t`, and what happens
//! when the monitor itself is killed (the documented M-06 decision: the terminals hang up, the
//! container gets SIGHUP, `state`/`delete` work, nothing leaks).

mod monitor_support;

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_itest::{Cmd, Kind, Leftovers, MasterIo, wait_until};
use monitor_support::{Mon, T, alive, expect, script_bundle, shell_bundle, typ, wait_exit};

#[test]
fn an_exec_session_survives_its_client_and_keeps_its_exit_status() {
    let m = Mon::new();
    let b = shell_bundle();
    let id = m.rt.id("exec-session");
    m.start(&b, &id);
    // Started from a 37x101 terminal: the session's pty has that size before the program runs.
    let (pty, r) = m.on_pty(
        m.berth(["exec", "-d", "-t", &id, "sh", "-c", "stty size; exec sh"]),
        37,
        101,
    );
    let out = wait_exit(r);
    assert_eq!(out.code(), Some(0), "{out}");
    let session = String::from_utf8_lossy(&pty.read_for(Duration::from_millis(200)))
        .trim()
        .to_string();
    assert_eq!(session, "1", "exec -d -t prints the session name");
    let log = wait_until("the session's first line", T, || {
        let l = m.logs(&id, &["--exec", "1"]);
        l.contains(&b'\n').then_some(l)
    });
    assert!(
        String::from_utf8_lossy(&log).starts_with("37 101\r\n"),
        "{log:?}"
    );

    let (pty, client) = m.attach_pty(&id, &["--exec", "1"], 37, 101);
    typ(&pty, "echo in-exec-$((2+3))\r");
    expect(&pty, "in-exec-5");
    typ(&pty, "\x10\x11");
    assert_eq!(wait_exit(client).code(), Some(0));
    let s = m.session(&id, "1");
    assert_eq!(s["status"], "running", "{s}");
    assert_eq!(s["kind"], "exec");

    // Re-attached: the screen comes back; then the session ends with its status.
    let (pty, client) = m.attach_pty(&id, &["--exec", "1"], 37, 101);
    expect(&pty, "in-exec-5");
    typ(&pty, "exit 5\r");
    let out = wait_exit(client);
    assert_eq!(out.code(), Some(5), "{out}");
    let s = m.session(&id, "1");
    assert_eq!(s["status"], "exited with status 5", "{s}");
    // Attaching after the end still gets the status.
    let (_pty, client) = m.attach_pty(&id, &["--exec", "1"], 24, 80);
    assert_eq!(wait_exit(client).code(), Some(5));
    assert_eq!(
        std::fs::read_to_string(m.dir(&id).join("exec-1.exit")).unwrap(),
        "5\n"
    );
    // The console is untouched.
    assert_eq!(m.session(&id, "console")["status"], "running");
    // exec's own flags reach the session's process; --pid-file names it.
    let pid_file = tempfile::NamedTempFile::new().unwrap();
    let out = m
        .berth([
            "exec",
            "-d",
            "-t",
            "-e",
            "GREETING=hi-there",
            "--cwd",
            "/etc",
            "--pid-file",
        ])
        .arg(pid_file.path())
        .args([&id, "sh", "-c", "echo $GREETING in $(pwd); exec sleep 1000"])
        .ok();
    assert_eq!(out.stdout_str().trim(), "2");
    let log = wait_until("the second session's output", T, || {
        let l = String::from_utf8_lossy(&m.logs(&id, &["--exec", "2"])).into_owned();
        l.contains('\n').then_some(l)
    });
    assert_eq!(log, "hi-there in /etc\r\n");
    let pid: i64 = std::fs::read_to_string(pid_file.path())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(m.session(&id, "2")["pid"], pid);
    // Errors name the session.
    let out = m.berth(["attach", "--exec", "9", &id]).run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr_str().contains("no exec session"), "{out}");
    let out = m
        .berth(["exec", "-d", "-t", "--preserve-fds", "1", &id, "true"])
        .run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr_str().contains("--preserve-fds"), "{out}");
}

/// Receives every console-socket message on one connection until EOF; returns the names and
/// the masters (kept open: closing a master hangs its terminal up).
fn receive_all(
    listener: &std::os::unix::net::UnixListener,
) -> (Vec<String>, Vec<std::os::fd::OwnedFd>) {
    let (conn, _) = listener.accept().expect("accept");
    let mut names = Vec::new();
    let mut masters = Vec::new();
    loop {
        let mut name = [0u8; 4096];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(&mut name)];
        let msg = rustix::net::recvmsg(
            &conn,
            &mut iov,
            &mut control,
            rustix::net::RecvFlags::CMSG_CLOEXEC,
        )
        .expect("recvmsg");
        let mut fds = Vec::new();
        for c in control.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(f) = c {
                fds.extend(f);
            }
        }
        if msg.bytes == 0 && fds.is_empty() {
            return (names, masters);
        }
        assert_eq!(fds.len(), 1, "exactly one fd per message");
        berth_helper::check_pty_master(fds[0].as_fd()).expect("a pty master");
        names.push(String::from_utf8_lossy(&name[..msg.bytes]).into_owned());
        masters.extend(fds);
    }
}

#[test]
fn extra_ttys_are_served_and_plain_receivers_see_one_message() {
    let m = Mon::new();
    // A plain console-socket receiver: one message without the annotation...
    let dir = tempfile::tempdir().unwrap();
    for (annotate, want) in [
        (false, vec!["/dev/pts/ptmx".to_string()]),
        (
            true,
            vec![
                "/dev/pts/ptmx".to_string(),
                "/dev/tty1".to_string(),
                "/dev/tty2".to_string(),
            ],
        ),
    ] {
        if m.rt.kind() != Kind::Berth && annotate {
            continue; // runc and crun do not know the annotation
        }
        let mut b = shell_bundle();
        b.terminal(true);
        if annotate {
            b.annotation("io.github.berth.tty.max", "2");
        }
        let sock = dir.path().join(format!("c{annotate}.sock"));
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let id = m.rt.id(&format!("exec-recv-{annotate}"));
        m.rt.guard().track_bundle(b.path());
        let rx = std::thread::spawn(move || receive_all(&listener));
        m.rt.cmd(["run", "-d", "--console-socket"])
            .arg(&sock)
            .arg("--bundle")
            .arg(b.path())
            .arg(&id)
            .ok();
        // The connection ends when the process execs (close-on-exec).
        let (names, _masters) = rx.join().unwrap();
        let want: Vec<String> = if m.rt.kind() == Kind::Berth {
            want
        } else {
            names.clone()
        };
        assert_eq!(names.len(), want.len(), "{names:?}");
        assert_eq!(names, want);
        m.rt.delete_force(&id);
    }
    if m.rt.kind() != Kind::Berth {
        return;
    }
    // ...and with the monitor, `berth console -t N`.
    let mut b = script_bundle("setsid -c sh -i </dev/tty1 >/dev/tty1 2>&1 & exec sh");
    b.annotation("io.github.berth.tty.max", "2");
    let id = m.rt.id("exec-ttys");
    m.start(&b, &id);
    let out =
        m.rt.exec_cmd(&id, &["ls", "-l", "/dev/tty1", "/dev/tty2"])
            .ok();
    assert!(out.stdout_str().contains("136,"), "{out}");
    let (pty, client) = m.on_pty(m.berth(["console", "-t", "1", &id]), 24, 80);
    typ(&pty, "tty; echo tty-$((0+1))\r");
    let seen = expect(&pty, "tty-1");
    assert!(seen.contains("/dev/tty1"), "{seen:?}");
    typ(&pty, "\x01q");
    assert_eq!(wait_exit(client).code(), Some(0));
    // tty2 exists (nobody runs on it yet); tty3 does not.
    let s = m.session(&id, "tty2");
    assert_eq!(s["kind"], "tty");
    let out = m.berth(["console", "-t", "3", &id]).run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr_str().contains("has no tty3"), "{out}");
    // A bad count is a clear error before anything exists.
    let mut bad = shell_bundle();
    bad.annotation("io.github.berth.tty.max", "lots");
    let bid = m.rt.id("exec-ttys-bad");
    let out = m.start_cmd(&bad, &bid).run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr_str().contains("io.github.berth.tty.max"),
        "{out}"
    );
    assert!(!m.dir(&bid).exists());
    assert!(m.rt.try_state(&bid).is_none());
}

/// Deletes a runc container at the end of a test, whatever happens.
struct RuncDelete {
    root: PathBuf,
    id: String,
}

impl Drop for RuncDelete {
    fn drop(&mut self) {
        let _ = Cmd::new("/usr/sbin/runc")
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .run();
    }
}

#[test]
fn the_monitor_works_the_same_with_runc() {
    let runc = Path::new("/usr/sbin/runc");
    assert!(runc.is_file(), "runc 1.1.5 is expected at /usr/sbin/runc");
    let m = Mon::new();
    let b = shell_bundle();
    let id = m.rt.id("exec-runc");
    let _cleanup = RuncDelete {
        root: m.rt.root().to_path_buf(),
        id: id.clone(),
    };
    m.monitor_cmd(&b, &id, runc).arg("--start").ok();
    let state = Cmd::new(runc)
        .arg("--root")
        .arg(m.rt.root())
        .args(["state", &id])
        .ok();
    assert!(state.stdout_str().contains("\"running\""), "{state}");
    m.wait_screen(&id, "/ #");
    let (pty, client) = m.attach_pty(&id, &[], 24, 80);
    expect(&pty, "/ #");
    typ(&pty, "stty size; echo via-runc-$((4*4))\r");
    let seen = expect(&pty, "via-runc-16");
    assert!(seen.contains("24 80"), "{seen:?}");
    typ(&pty, "\x10\x11");
    assert_eq!(wait_exit(client).code(), Some(0));
    // An exec session through `runc exec -d -t --console-socket -p`.
    let out = m
        .berth([
            "exec",
            "-d",
            "-t",
            &id,
            "sh",
            "-c",
            "echo runc-exec; exit 6",
        ])
        .ok();
    assert_eq!(out.stdout_str().trim(), "1");
    wait_until("the runc exec session ended", T, || {
        (m.session(&id, "1")["exit_code"] == 6).then_some(())
    });
    assert!(String::from_utf8_lossy(&m.logs(&id, &["--exec", "1"])).contains("runc-exec"));
    // runc deletes the container; the monitor notices and goes.
    let mon = m.monitor_pid(&id);
    Cmd::new(runc)
        .arg("--root")
        .arg(m.rt.root())
        .args(["delete", "--force", &id])
        .ok();
    wait_until("the monitor exits after delete", T, || {
        (!alive(mon) && !m.dir(&id).exists()).then_some(())
    });
}

#[test]
fn when_the_monitor_is_killed_the_container_hangs_up_and_nothing_leaks() {
    let m = Mon::exclusive();
    let b = shell_bundle();
    let id = m.rt.id("exec-mkill");
    let leftovers = Leftovers::snapshot(&m.rt, &[&id], &[b.path()]);
    m.start(&b, &id);
    m.wait_screen(&id, "/ #");
    let (pty, client) = m.attach_pty(&id, &[], 24, 80);
    expect(&pty, "/ #");
    let mon = m.monitor_pid(&id);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(mon).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    // The client learns the monitor is gone (on its terminal).
    let said = pty.read_until_eof(T);
    let out = wait_exit(client);
    drop(pty);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        String::from_utf8_lossy(&said).contains("closed the connection"),
        "{:?}",
        String::from_utf8_lossy(&said)
    );
    // The terminal hung up: the shell (session leader) got SIGHUP and exited.
    m.rt.wait_for_status(&id, "stopped", T);
    let out = m.berth(["attach", &id]).run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr_str().contains("is not running"), "{out}");
    // The logs stay readable from the files.
    let logs = m.berth(["logs", &id]).ok();
    assert!(logs.stdout_str().contains("/ #"), "{logs}");
    match m.rt.kind() {
        Kind::Berth => {
            m.rt.cmd(["delete", &id]).ok();
            assert!(
                !m.dir(&id).exists(),
                "berth delete removes the dead monitor's directory"
            );
        }
        _ => {
            // runc knows nothing of monitors: its delete leaves the directory, which the next
            // monitor for the id (or berth delete) clears.
            m.rt.cmd(["delete", &id]).ok();
            std::fs::remove_dir_all(m.dir(&id)).unwrap();
            let _ = std::fs::remove_dir(m.rt.root().join("@monitor"));
        }
    }
    leftovers.assert_unchanged();
}

#[test]
fn create_t_then_start_and_run_t_in_the_foreground() {
    let m = Mon::new();
    let b = shell_bundle();
    if m.rt.kind() != Kind::Berth {
        // `-t` on create/run is berth's extension: the reference runtimes refuse it.
        let out =
            m.rt.cmd(["create", "-t", "--bundle"])
                .arg(b.path())
                .arg(m.rt.id("exec-ref-t"))
                .run();
        assert_ne!(out.code(), Some(0), "{out}");
        return;
    }
    let id = m.rt.id("exec-create-t");
    m.rt.guard().track(&id);
    let pid_file = tempfile::NamedTempFile::new().unwrap();
    m.berth(["create", "-t", "--pid-file"])
        .arg(pid_file.path())
        .arg("--bundle")
        .arg(b.path())
        .arg(&id)
        .ok();
    assert_eq!(
        std::fs::read_to_string(pid_file.path()).unwrap().trim(),
        m.rt.pid(&id).to_string()
    );
    assert_eq!(m.rt.status(&id).as_deref(), Some("created"));
    let (pty, client) = m.attach_pty(&id, &[], 24, 80);
    m.berth(["start", &id]).ok();
    expect(&pty, "/ #");
    typ(&pty, "\x10\x11");
    assert_eq!(wait_exit(client).code(), Some(0));
    // --tty with --console-socket is refused, naming both.
    let out = m
        .berth([
            "run",
            "-d",
            "-t",
            "--console-socket",
            "/tmp/x.sock",
            "--bundle",
        ])
        .arg(b.path())
        .arg(m.rt.id("exec-both"))
        .run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr_str().contains("--tty and --console-socket"),
        "{out}"
    );

    // run -t in the foreground: the container's exit ends it with the status, and deletes it.
    let id2 = m.rt.id("exec-run-t");
    m.rt.guard().track(&id2);
    let (pty, r) = m.on_pty(
        m.berth(["run", "-t", "--bundle"]).arg(b.path()).arg(&id2),
        24,
        80,
    );
    expect(&pty, "/ #");
    typ(&pty, "exit 4\r");
    assert_eq!(wait_exit(r).code(), Some(4));
    assert!(
        m.rt.try_state(&id2).is_none(),
        "run -t deletes the container"
    );
    wait_until("the monitor directory is gone", T, || {
        (!m.dir(&id2).exists()).then_some(())
    });
}
