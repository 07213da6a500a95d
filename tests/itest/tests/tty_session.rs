//! Sessions, job control, end of input, `exec -t`, and where the master lives (security.md C-08,
//! G-08, S-03, issue 3 "The master never exists inside the container").
//!
//! - `sh -i` in a foreground container: `^Z` and `^C` typed on the user's terminal reach the
//!   container's foreground process group (`sleep 100 &`, `fg`, `^Z`, `fg`, `^C`), not the
//!   runtime (whose terminal is raw).
//! - stdin EOF in terminal mode (design.md): `printf 'x\n' | run` with `terminal: true` and
//!   stdout a pty: berth writes the pty's VEOF, so `cat` sees `x`, then end of file, and exits.
//!   After a partial line (`printf x`) VEOF is written twice. runc 1.1.5 and crun 1.8.1 never
//!   end the input: `cat` waits for ever (asserted, then killed).
//! - `exec -t` foreground and `exec -t -d --console-socket` (one new connection per exec): the
//!   process is a session leader whose controlling terminal is its own new pty.
//! - No process in the container's pid namespace holds an fd to a pty master (rdev 5:2), for
//!   the init's console, a foreground `exec -t` in progress, and a detached `exec -t`.
//! - The foreground relay polls before it sleeps only while events come close together
//!   (crates/tty/src/wait.rs): typed bytes answered back to back all come back, and while the
//!   container writes a line every 5 ms or sits idle the runtime's process uses under a fifth of
//!   the wall time in CPU (a relay that kept polling would use all of it).

mod tty_common;

use std::time::Duration;

use berth_itest::{
    Bundle, Input, Kind, MasterIo, Pty, Recvtty, Sink, probe_line, runtime, strip_cr,
};
use tty_common::{T, detached_terminal, exec_on_pty, reference, sleeper, until};

#[test]
fn job_control_keys_reach_the_containers_foreground_group() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.terminal(true).args(&["sh", "-i"]).env("PS1=prompt> ");
    let mut pty = Pty::new();
    let running = pty.spawn(rt.run_cmd(&b, &rt.id("jobs")).timeout(T * 2));
    until(&pty, "prompt> ");
    pty.write_all(b"sleep 100 &\r");
    until(&pty, "prompt> ");
    pty.write_all(b"fg\r");
    // `fg` prints the job's command line, then the job owns the terminal.
    until(&pty, "sleep 100\r\n");
    std::thread::sleep(Duration::from_millis(300));
    pty.write_all(b"\x1a");
    let text = until(&pty, "prompt> ");
    assert!(
        text.contains("Stopped"),
        "^Z did not stop the job: {text:?}"
    );
    pty.write_all(b"jobs; echo listed-$((1+1))\r");
    let text = until(&pty, "listed-2\r\n");
    assert!(text.contains("Stopped"), "{text:?}");
    pty.write_all(b"fg\r");
    until(&pty, "sleep 100\r\n");
    std::thread::sleep(Duration::from_millis(300));
    pty.write_all(b"\x03");
    until(&pty, "prompt> ");
    // 130 = 128 + SIGINT: the job died of ^C; the shell (and the runtime) did not.
    // Markers the shell computes, so the echo of the typed line cannot match them.
    pty.write_all(b"echo status=$?; jobs; echo jobs-$((40+2))\r");
    let text = until(&pty, "jobs-42\r\n");
    assert!(
        text.contains("status=130"),
        "^C did not reach the job: {text:?}"
    );
    assert!(running.is_running(), "the runtime exited: {text:?}");
    pty.write_all(b"exit 7\r");
    let rest = String::from_utf8_lossy(&pty.read_until_eof(T)).into_owned();
    let out = running.wait();
    assert_eq!(out.code(), Some(7), "{out}\n{rest:?}");
}

/// `printf INPUT | run` (terminal, stdout and stderr the test's pty, `cat` in the container).
fn eof_case(input: &[u8], name: &str) -> Option<String> {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.terminal(true).args(&["cat"]);
    let mut pty = Pty::new();
    // Not `Pty::spawn`, which would make the pty stdin as well.
    let running = rt
        .run_cmd(&b, &rt.id(name))
        .stdin(Input::Bytes(input.to_vec()))
        .stdout(Sink::Fd(pty.peer()))
        .stderr(Sink::Fd(pty.peer()))
        .controlling_tty(true)
        .timeout(T)
        .spawn();
    pty.close_peer();
    match running.wait_for(Duration::from_secs(5)) {
        Ok(out) => {
            let text = String::from_utf8_lossy(&strip_cr(&pty.read_until_eof(T))).into_owned();
            if rt.kind() == Kind::Crun {
                // crun 1.8.1 refuses a terminal whose stdin is not one ("tcgetattr:
                // Inappropriate ioctl for device"), unlike runc's tty.bats "stdin not a tty".
                assert_eq!(out.code(), Some(1), "{out}\n{text:?}");
                assert!(text.contains("tcgetattr"), "{text:?}");
                return None;
            }
            assert_eq!(out.code(), Some(0), "{out}\n{text:?}");
            Some(text)
        }
        Err(running) => {
            // runc relays stdin with a plain copy and never ends the pty's input.
            assert!(
                reference(&rt),
                "cat never saw end of input: {}",
                running.kill()
            );
            running.kill();
            None
        }
    }
}

#[test]
fn stdin_eof_in_terminal_mode_ends_the_containers_input() {
    // The pty echoes the input line, then cat prints it.
    if let Some(text) = eof_case(b"x\n", "eof-line") {
        assert_eq!(text, "x\nx\n");
    }
}

#[test]
fn stdin_eof_after_a_partial_line_ends_the_containers_input() {
    // The first VEOF delivers the partial line, the second is end of file.
    if let Some(text) = eof_case(b"x", "eof-partial") {
        assert_eq!(text, "xx");
    }
}

#[test]
fn stdin_eof_with_no_input_at_all() {
    if let Some(text) = eof_case(b"", "eof-empty") {
        assert_eq!(text, "");
    }
}

/// Asserts a `ctty` probe line shows a session leader whose controlling tty is `/dev/pts/N`.
#[track_caller]
fn assert_leader_of(text: &str, pts: &str) {
    let ctty = probe_line(text, "ctty");
    assert_eq!(ctty["sid"], ctty["pid"], "not a session leader: {text}");
    let n: u64 = pts
        .strip_prefix("/dev/pts/")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{pts:?} is not a pty"));
    // tty_nr encodes major 136 + N/256 and minor N%256 like the kernel's new_encode_dev.
    let major = 136 + n / 256;
    let minor = n % 256;
    let want = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
    assert_eq!(
        ctty["tty_nr"],
        want.to_string(),
        "controlling tty is not {pts}: {text}"
    );
    assert_eq!(
        ctty["tpgid"], ctty["pid"],
        "not the terminal's foreground group: {text}"
    );
}

#[test]
fn exec_tty_foreground_process_leads_a_session_on_its_own_pty() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    let id = rt.id("exec-leader");
    let console = detached_terminal(&rt, &mut b, &id);
    for _ in 0..3 {
        // `exec` keeps sh's pid: the probe is the very process the runtime started.
        let (out, text) = exec_on_pty(&rt, &id, &["sh", "-c", LEADER], 24, 80);
        assert_eq!(out.code(), Some(0), "{out}");
        let text = String::from_utf8_lossy(&strip_cr(&text)).into_owned();
        let pts = text.lines().next().unwrap_or_default().to_string();
        assert_ne!(
            pts,
            format!("/dev/pts/{}", console.ptn),
            "the init's console: {text}"
        );
        assert_leader_of(&text, &pts);
    }
}

/// Prints the process's fd 0, then its session and controlling tty (same pid).
const LEADER: &str = "readlink /proc/self/fd/0; exec /probe ctty";

#[test]
fn exec_tty_detached_makes_one_connection_per_exec() {
    let rt = runtime();
    let id = rt.id("exec-d-conn");
    let _b = sleeper(&rt, &id);
    let recv = Recvtty::start("null");
    for i in 0..5 {
        rt.cmd(["exec", "-t", "-d", "--console-socket"])
            .arg(recv.socket())
            .args([id.as_str(), "sh", "-c", LEADER])
            .ok();
        let d = recv.wait_done(i, T);
        assert!(d.done.contains("end=EIO"), "{}", d.done);
        let text = String::from_utf8_lossy(&strip_cr(&d.out)).into_owned();
        let pts = text.lines().next().unwrap_or_default().to_string();
        assert!(
            text.contains("\nctty "),
            "exec #{i}: the probe's line is missing (recvtty: {}): {text:?}",
            d.done.trim()
        );
        assert_leader_of(&text, &pts);
    }
    assert!(
        !recv.dump_dir().join("5.name").exists(),
        "an extra connection"
    );
}

/// The scan run inside the container: every fd of every process whose device is 5:2 (a pty
/// master), after opening one itself on fd 7 as a positive control.
const SCAN: &str = "exec 7<>/dev/ptmx; for f in /proc/[0-9]*/fd/*; do \
                    t=$(stat -L -c '%t:%T' \"$f\" 2>/dev/null) && [ \"$t\" = 5:2 ] && echo \"master $f\"; \
                    done; echo \"self $$\"; echo scan-done";

/// Runs the scan and returns the masters found outside the scanning shell itself.
fn masters_in(rt: &berth_itest::Runtime, id: &str) -> Vec<String> {
    let out = rt.exec_cmd(id, &["sh", "-c", SCAN]).ok().stdout_str();
    assert!(out.contains("scan-done"), "{out}");
    let me = out
        .lines()
        .find_map(|l| l.strip_prefix("self "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let own = format!("master /proc/{me}/fd/7");
    assert!(
        out.lines().any(|l| l == own),
        "the control master was not found: {out}"
    );
    out.lines()
        .filter(|l| l.starts_with("master ") && !l.starts_with(&format!("master /proc/{me}/")))
        .map(str::to_string)
        .collect()
}

#[test]
fn no_process_in_the_container_holds_a_pty_master() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.args(&["sh", "-c", "sleep 1000"]);
    let id = rt.id("no-master");
    let _console = detached_terminal(&rt, &mut b, &id);
    assert_eq!(masters_in(&rt, &id), Vec::<String>::new(), "init's console");

    // A foreground exec -t in progress: its master is held by the runtime, outside.
    let mut pty = Pty::new();
    let running = pty.spawn(
        rt.cmd([
            "exec",
            "-t",
            id.as_str(),
            "sh",
            "-c",
            "echo exec-ready; sleep 1000",
        ])
        .timeout(T),
    );
    until(&pty, "exec-ready");
    assert_eq!(masters_in(&rt, &id), Vec::<String>::new(), "during exec -t");
    running.kill();

    // A detached exec -t: its master went to the receiver.
    let recv = Recvtty::start("null");
    rt.cmd(["exec", "-t", "-d", "--console-socket"])
        .arg(recv.socket())
        .args([id.as_str(), "sleep", "1000"])
        .ok();
    berth_itest::wait_until("recvtty got the exec's master", T, || {
        recv.dump_dir().join("0.name").exists().then_some(())
    });
    assert_eq!(
        masters_in(&rt, &id),
        Vec::<String>::new(),
        "after exec -t -d"
    );
}

/// CPU time of all of `pid`'s threads (`/proc/PID/task/*/schedstat`).
fn cpu_time(pid: u32) -> Duration {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("task dir") {
        let stat = std::fs::read_to_string(task.expect("task").path().join("schedstat"))
            .expect("schedstat");
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .expect("ns");
    }
    Duration::from_nanos(ns)
}

#[test]
fn the_relay_polls_only_while_events_come_close_together() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.terminal(true).sh(
        "stty raw -echo; echo ready; dd bs=1 count=200 2>/dev/null; \
         dd bs=1 count=1 of=/dev/null 2>/dev/null; echo; echo slow; \
         i=0; while [ $i -lt 200 ]; do echo tick; usleep 5000; i=$((i+1)); done; \
         echo idle; sleep 1; echo done",
    );
    for applet in ["dd", "usleep"] {
        let p = b.rootfs().join("bin").join(applet);
        if !p.exists() {
            std::os::unix::fs::symlink("busybox", &p).expect("applet symlink");
        }
    }
    let mut pty = Pty::new();
    let running = pty.spawn(rt.run_cmd(&b, &rt.id("polling")).timeout(T * 2));
    let pid = running.pid();
    until(&pty, "ready\r\n");
    // Back to back: each byte goes once its echo is back.
    for i in 0..200u32 {
        let byte = [b'a' + (i % 26) as u8];
        pty.write_all(&byte);
        let got = pty.read_until(&byte, T);
        assert_eq!(got, byte, "round trip {i}");
    }
    // The container goes on only after this byte, so no later output shares a read with an echo.
    pty.write_all(b".");
    until(&pty, "slow\r\n");
    let (cpu0, t0) = (cpu_time(pid), std::time::Instant::now());
    until(&pty, "done\r\n");
    let (cpu, wall) = (cpu_time(pid) - cpu0, t0.elapsed());
    assert!(
        cpu < wall / 5,
        "the runtime used {cpu:?} of CPU in {wall:?} while the container wrote a line every 5 ms, \
         then slept"
    );
    let out = running.wait();
    assert_eq!(out.code(), Some(0), "{out:?}");
}
