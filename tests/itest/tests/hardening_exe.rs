//! CVE-2019-5736 (security.md F-05): a container must not be able to overwrite the runtime's
//! binary through `/proc/<pid>/exe`.
//!
//! Both attacks of the advisory are tried against a private *copy* of the runtime binary (a
//! successful attack must not damage the binary other tests use), and the copy's bytes, mode
//! and inode are compared afterwards:
//!
//! - **exec**: the container's PID 1 (`/attack exe-grab`, with `CAP_SYS_PTRACE`, which lets it
//!   past the non-dumpable flag) opens `/proc/<pid>/exe` of every process that appears while
//!   `exec` runs, O_WRONLY (ETXTBSY expected) and O_PATH, keeping handles to foreign
//!   executables, i.e. the runtime's code before execve;
//! - **`#!/proc/self/exe`**: an `exec` of a script whose interpreter is `/proc/self/exe`, so the
//!   kernel runs the runtime's binary *inside* the container (the host's `/usr` is bound in so
//!   it can start). `#!/proc/self/exe --help` writes its help to a stdout pipe the test keeps
//!   full, so it stays alive until the attacker holds its exe.
//!
//! Once the runtime is gone (no process runs the binary, so ETXTBSY no longer protects it) the
//! test tells the attacker to reopen every handle O_WRONLY and write. berth moves onto a
//! read-only overlayfs view of its binary in place (root), or re-executes from that view
//! (`BERTH_EXESEAL_EXEC=1`) or from a sealed memfd (`BERTH_EXESEAL=memfd`, the rootless path); runc 1.1.5 from a detached read-only bind of itself (its "bindfd" clone): in every
//! case the attacker holds a handle and the copy is unchanged. Against a berth without this
//! protection both attacks overwrite the copy (checked while writing this test).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_itest::attack::{Fingerprint, install_attack, result_line};
use berth_itest::{Bundle, Cmd, Kind, Runtime, Sink, runtime};
use serde_json::json;

const T: Duration = Duration::from_secs(20);

/// A private copy of the runtime binary, in a directory of its own.
struct Copy {
    _dir: tempfile::TempDir,
    path: PathBuf,
    before: Fingerprint,
}

impl Copy {
    fn of(rt: &Runtime) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-itest-exe-")
            .tempdir_in("/tmp")
            .expect("copy dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let path = dir.path().join(rt.bin().file_name().expect("binary name"));
        std::fs::copy(rt.bin(), &path).expect("copy the runtime binary");
        let before = Fingerprint::of(&path);
        Self {
            _dir: dir,
            path,
            before,
        }
    }

    fn cmd<I, S>(&self, rt: &Runtime, env: &[(&str, &str)], args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = Cmd::new(&self.path).arg("--root").arg(rt.root()).args(args);
        for (k, v) in env {
            c = c.env(k, v);
        }
        c.timeout(T)
    }
}

/// A container whose PID 1 is `/attack exe-grab /tmp/stop /tmp/result`, writable rootfs.
fn attacker_bundle(ptrace: bool) -> Bundle {
    let mut b = Bundle::busybox();
    install_attack(&b);
    b.readonly(false)
        .args(&["/attack", "exe-grab", "/tmp/stop", "/tmp/result"]);
    if ptrace {
        b.config(|c| {
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set]
                    .as_array_mut()
                    .expect("capability set")
                    .push(json!("CAP_SYS_PTRACE"));
            }
        });
    }
    b
}

fn grabbed(b: &Bundle) -> usize {
    std::fs::read_to_string(b.rootfs().join("tmp/result.grabbed"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Tells the attacker the runtime is gone and returns its verdict.
fn verdict(b: &Bundle) -> std::collections::BTreeMap<String, String> {
    std::fs::write(b.rootfs().join("tmp/stop"), "").expect("stop file");
    result_line(&b.rootfs().join("tmp/result"), "exe-grab", T)
}

/// The methods to try: berth's (the overlay moved onto in place, the same re-executed, a
/// memfd copy), runc's one.
fn methods(rt: &Runtime) -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    if rt.kind() == Kind::Berth {
        vec![
            ("overlay", vec![("BERTH_EXESEAL", "overlay")]),
            (
                "overlay-exec",
                vec![("BERTH_EXESEAL", "overlay"), ("BERTH_EXESEAL_EXEC", "1")],
            ),
            ("memfd", vec![("BERTH_EXESEAL", "memfd")]),
        ]
    } else {
        vec![("default", vec![])]
    }
}

/// F-05, exec: the attacker holds the runtime's exe during `exec` (it has CAP_SYS_PTRACE) and
/// writes through it once the runtime is gone.
#[test]
fn f05_exec_child_exe_cannot_be_overwritten() {
    let rt = runtime();
    for (method, env) in methods(&rt) {
        let copy = Copy::of(&rt);
        let b = attacker_bundle(true);
        let id = rt.id(&format!("f05-exec-{method}"));
        rt.guard().track(&id);
        rt.guard().track_bundle(b.path());
        copy.cmd(&rt, &env, ["run", "-d", "--bundle"])
            .arg(b.path())
            .arg(&id)
            .ok();
        let start = Instant::now();
        let mut execs = 0;
        while grabbed(&b) == 0 && execs < 300 {
            copy.cmd(&rt, &env, ["exec", id.as_str(), "/probe", "exit", "0"])
                .ok();
            execs += 1;
        }
        let v = verdict(&b);
        eprintln!(
            "f05 exec ({method}): {execs} execs in {:?}: {v:?}",
            start.elapsed()
        );
        copy.before
            .assert_same(&copy.path, &format!("exec attack ({method})"));
        assert_eq!(v["wrote"], "0", "{method}: the attacker wrote: {v:?}");
        assert_ne!(
            v["grabbed"], "0",
            "{method}: the attacker never held the runtime's exe in {execs} execs, so the test proved nothing: {v:?}"
        );
        let target = &v["targets"];
        let expected = match (rt.kind(), method) {
            (Kind::Berth, "memfd") => "/memfd:berth",
            (Kind::Berth, _) => "/berth",
            // runc 1.1.5's cloned_binary.c first tries "bindfd": a read-only bind mount of
            // itself, detached, so the handle's path is "/".
            _ => "/",
        };
        assert!(
            target.starts_with(expected),
            "{method}: held {target}: {v:?}"
        );
        rt.cmd(["delete", "--force", id.as_str()]).ok();
    }
}

/// A pipe whose 64 KiB buffer is already full: whoever writes to it blocks until the test
/// drains it.
fn full_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
    let size = rustix::pipe::fcntl_getpipe_size(&w).expect("pipe size");
    let junk = vec![b'x'; size];
    let mut done = 0;
    while done < size {
        done += rustix::io::write(&w, &junk[done..]).expect("fill pipe");
    }
    (r, w)
}

/// F-05, `#!/proc/self/exe`: the kernel runs the runtime binary inside the container as the
/// interpreter of an exec'd script; the attacker holds its exe and writes after it exits.
#[test]
fn f05_proc_self_exe_entrypoint_cannot_overwrite() {
    let rt = runtime();
    for (method, env) in methods(&rt) {
        let copy = Copy::of(&rt);
        let mut b = attacker_bundle(false);
        // The runtime binary needs the host's loader and libraries to start in the container.
        for (link, target) in [("lib", "usr/lib"), ("lib64", "usr/lib64")] {
            std::os::unix::fs::symlink(target, b.rootfs().join(link)).expect("lib link");
        }
        std::fs::create_dir(b.rootfs().join("usr")).expect("usr");
        b.mount(
            json!({"destination": "/usr", "type": "bind", "source": "/usr",
                       "options": ["rbind", "ro"]}),
        )
        .mount(json!({"destination": "/etc/ld.so.cache", "type": "bind",
                          "source": "/etc/ld.so.cache", "options": ["bind", "ro"]}));
        std::fs::write(b.rootfs().join("entry.sh"), "#!/proc/self/exe --help\n").expect("script");
        std::fs::set_permissions(
            b.rootfs().join("entry.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod script");
        let id = rt.id(&format!("f05-selfexe-{method}"));
        rt.guard().track(&id);
        rt.guard().track_bundle(b.path());
        copy.cmd(&rt, &env, ["run", "-d", "--bundle"])
            .arg(b.path())
            .arg(&id)
            .ok();
        let (reader, writer) = full_pipe();
        copy.cmd(&rt, &env, ["exec", "-d", id.as_str(), "/entry.sh"])
            .stdout(Sink::Fd(writer))
            .ok();
        berth_itest::wait_until("the attacker to hold the interpreter's exe", T, || {
            (grabbed(&b) > 0).then_some(())
        });
        // Let the interpreter finish (it was blocked writing its help): the pipe reaches EOF
        // when it has exited. Then the attack.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut f = std::fs::File::from(reader);
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut f, &mut sink);
            let _ = tx.send(sink);
        });
        let help = rx
            .recv_timeout(T)
            .expect("the interpreter did not finish writing its help");
        assert!(
            help.len() > 64 * 1024,
            "{method}: the runtime never printed its help in the container"
        );
        let exited = wait_no_runner(&copy.path);
        let v = verdict(&b);
        eprintln!("f05 #!/proc/self/exe ({method}): {v:?}, interpreter gone: {exited}");
        copy.before
            .assert_same(&copy.path, &format!("#!/proc/self/exe attack ({method})"));
        assert_eq!(v["wrote"], "0", "{method}: the attacker wrote: {v:?}");
        assert_ne!(v["grabbed"], "0", "{method}: {v:?}");
        rt.cmd(["delete", "--force", id.as_str()]).ok();
    }
}

/// Waits (up to 5 s) until no process runs `binary` any more.
fn wait_no_runner(binary: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let running = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| std::fs::read_link(e.path().join("exe")).is_ok_and(|t| t == binary));
        if !running {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The runtime process of a foreground `run` (what `exec`'s joining process is cloned from):
/// runc runs as itself; berth runs from `/berth`, its read-only overlay view. By default berth
/// moved onto it in place: no mapping of the installed binary is left and its data segments
/// are anonymous copies; with `BERTH_EXESEAL_EXEC=1` it re-executed the view, whose data
/// segments are then mappings of `/berth`.
#[test]
fn f05_default_protection_of_the_runtime_process() {
    let rt = runtime();
    let modes: &[(&str, bool)] = if rt.kind() == Kind::Berth {
        &[("0", false), ("1", true)]
    } else {
        &[("0", false)]
    };
    let meta = std::fs::metadata(rt.bin()).expect("stat");
    let installed = format!(
        "{:02x}:{:02x} {}",
        rustix::fs::major(std::os::unix::fs::MetadataExt::dev(&meta)),
        rustix::fs::minor(std::os::unix::fs::MetadataExt::dev(&meta)),
        std::os::unix::fs::MetadataExt::ino(&meta)
    );
    for &(exec, re_executed) in modes {
        let mut b = Bundle::busybox();
        b.args(&["/probe", "sleep-forever"]);
        let id = rt.id(&format!("f05-default-{exec}"));
        let running = rt.run_cmd(&b, &id).env("BERTH_EXESEAL_EXEC", exec).spawn();
        rt.wait_for_status(&id, "running", T);
        let pid = running.pid();
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("runtime exe");
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
        rt.kill(&id, "KILL");
        let _ = running.wait_unchecked();
        if rt.kind() == Kind::Runc {
            assert_eq!(exe, rt.bin(), "runc's own process");
            continue;
        }
        assert_eq!(exe, Path::new("/berth"), "berth's foreground run process");
        let installed_left: Vec<&str> = maps
            .lines()
            .filter(|l| {
                l.split_whitespace()
                    .skip(3)
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
                    == installed
            })
            .collect();
        assert!(
            installed_left.is_empty(),
            "BERTH_EXESEAL_EXEC={exec}: mappings of {} left: {installed_left:?}",
            rt.bin().display()
        );
        let view_data = maps
            .lines()
            .any(|l| l.contains(" rw-p ") && l.ends_with(" /berth"));
        assert_eq!(
            view_data, re_executed,
            "BERTH_EXESEAL_EXEC={exec}: writable mappings of /berth:\n{maps}"
        );
    }
}
