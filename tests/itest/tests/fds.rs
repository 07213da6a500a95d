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

/// How the container process of the F-01 matrix is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path_ {
    Run,
    CreateStart,
    Exec,
}

/// Starts `/probe fds` by `path`, terminal on or off, foreground or detached, with
/// `preserve` preserved fds, under `berth-attack with-fds` (junk non-CLOEXEC fds: a
/// directory, an O_PATH fd, a socket pair after the preserved ones). Returns the probe's text.
fn fds_of(path: Path_, terminal: bool, detached: bool, preserve: u32) -> String {
    use berth_itest::attack::with_fds;
    use berth_itest::{Cmd, ConsoleReceiver};
    let rt = runtime();
    let mut b = Bundle::busybox();
    let name = format!(
        "f01-{path:?}-t{}-d{}-p{preserve}",
        terminal as u8, detached as u8
    );
    let id = rt.id(&name);
    rt.guard().track_bundle(b.path());
    let p = preserve.to_string();
    let out_file = b.path().join("out.txt");
    let file_sink = || Sink::Fd(std::fs::File::create(&out_file).expect("out file").into());
    let read_file = |what: &str| -> String {
        berth_itest::wait_until(what, T, || {
            std::fs::read_to_string(&out_file)
                .ok()
                .filter(|t| t.contains("fds "))
        })
    };
    // The probe for run/create; exec uses a sleeping container.
    if path == Path_::Exec {
        rt.run_detached(&b, &id);
        rt.wait_for_status(&id, "running", T);
    } else {
        b.terminal(terminal).probe(&["fds"]);
    }
    let args: Vec<String> = match path {
        Path_::Run if detached => ["run", "-d", "--preserve-fds", &p]
            .map(String::from)
            .to_vec(),
        Path_::Run => ["run", "--preserve-fds", &p].map(String::from).to_vec(),
        Path_::CreateStart => ["create", "--preserve-fds", &p].map(String::from).to_vec(),
        Path_::Exec => {
            let mut v: Vec<String> = vec!["exec".into(), "--preserve-fds".into(), p.clone()];
            if terminal {
                v.push("-t".into());
            }
            if detached {
                v.push("-d".into());
            }
            v
        }
    };
    let cmd = |extra: &[&str]| -> Cmd {
        let mut c = with_fds(&rt, preserve, &args);
        c = c.args(extra);
        if path == Path_::Exec {
            c.arg(&id).args(["/probe", "fds"])
        } else {
            c.arg("--bundle").arg(b.path()).arg(&id)
        }
    };
    let detached_tty = terminal && (detached || path == Path_::CreateStart);
    let text = if detached_tty {
        let recv = ConsoleReceiver::new();
        let sock = recv.path().to_string_lossy().into_owned();
        cmd(&["--console-socket", &sock]).ok();
        if path == Path_::CreateStart {
            rt.start(&id);
        }
        let console = recv.recv(T);
        String::from_utf8_lossy(&strip_cr(&console.read_until_eof(T))).into_owned()
    } else if terminal {
        let mut pty = Pty::new();
        let running = pty.spawn(cmd(&[]));
        let text = String::from_utf8_lossy(&strip_cr(&pty.read_until_eof(T))).into_owned();
        running.wait().assert_ok();
        text
    } else if detached || path == Path_::CreateStart {
        cmd(&[]).stdout(file_sink()).ok();
        if path == Path_::CreateStart {
            rt.start(&id);
        }
        read_file(&name)
    } else {
        cmd(&[]).ok().stdout_str()
    };
    drop(rt);
    text
}

/// F-01 (runc create.bats "detect fd leak", youki fd_control): {run, create+start, exec} ×
/// {terminal, no terminal} × {foreground, detached} × {--preserve-fds 0, 3}, the caller
/// leaking a directory, an O_PATH fd and a socket pair: the process holds exactly 0, 1, 2 and
/// the preserved memfds.
#[test]
fn f01_only_stdio_and_preserved_fds_reach_the_process() {
    let mut cases = Vec::new();
    for path in [Path_::Run, Path_::CreateStart, Path_::Exec] {
        for terminal in [false, true] {
            for detached in [false, true] {
                if path == Path_::CreateStart && !detached {
                    continue; // create is always detached
                }
                for preserve in [0u32, 3] {
                    cases.push((path, terminal, detached, preserve));
                }
            }
        }
    }
    assert_eq!(cases.len(), 20);
    for (path, terminal, detached, preserve) in cases {
        let what = format!("{path:?} terminal={terminal} detached={detached} preserve={preserve}");
        let text = fds_of(path, terminal, detached, preserve);
        let fds = probe_line(&text, "fds");
        let mut want: Vec<String> = vec!["0".into(), "1".into(), "2".into()];
        want.extend((3..3 + preserve).map(|n| n.to_string()));
        assert_eq!(
            fds.keys().cloned().collect::<Vec<_>>(),
            want,
            "{what}: unexpected fds: {text}"
        );
        for n in 3..3 + preserve {
            assert_eq!(
                fds[&n.to_string()],
                format!("/memfd:preserved-{n} (deleted)"),
                "{what}: fd {n} is not the caller's preserved fd: {text}"
            );
        }
    }
}

/// berth itself drops what its caller leaked (a directory, an `O_PATH` fd and a socket after
/// stdio, see `berth-attack with-fds`) before it opens anything of its own, as a re-exec from
/// its sealed binary would: while a foreground `run` relays, none of berth's fds is the
/// leaked directory or `O_PATH` fd. (The container never gets them either way: the init closes
/// everything above the preserved fds before `execve`, which the F-01 matrix above checks.)
/// runc keeps them in its own process, marked close-on-exec: berth differs on purpose.
#[test]
fn berth_drops_the_fds_its_caller_leaked() {
    let rt = runtime();
    if rt.kind() == berth_itest::Kind::Runc {
        return;
    }
    let mut b = Bundle::busybox();
    b.sh("sleep 30");
    let id = rt.id("fds-dropped");
    rt.guard().track_bundle(b.path());
    let running = berth_itest::attack::with_fds(&rt, 0, ["run", "--bundle"])
        .arg(b.path())
        .arg(&id)
        .spawn();
    rt.wait_for_status(&id, "running", T);
    let fd_dir = format!("/proc/{}/fd", running.pid());
    let targets: Vec<String> = std::fs::read_dir(&fd_dir)
        .expect("berth's fds")
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .collect();
    rt.kill(&id, "KILL");
    running.wait_unchecked();
    assert!(!targets.is_empty(), "no fds read from {fd_dir}");
    for leaked in ["/tmp", "/"] {
        assert!(
            !targets.iter().any(|t| t == leaked),
            "berth still holds the leaked {leaked}: {targets:?}"
        );
    }
}
