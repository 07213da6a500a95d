//! podman drives the runtime under test end to end (issue 6): Debian's podman 4.3 and conmon 2.1,
//! offline, with `--runtime <runtime>` and `--rootfs <busybox rootfs>`.
//!
//! Every test has a private podman: `--root`, `--runroot`, `--tmpdir`, vfs storage, cgroupfs,
//! file events, `--network none`, and a containers.conf / storage.conf / registries.conf under
//! its temp dir (`CONTAINERS_CONF`, `CONTAINERS_STORAGE_CONF`, `CONTAINERS_REGISTRIES_CONF`):
//! nothing of the host's `/etc/containers` is read or written. The containers.conf:
//! - lists the runtime in `runtime_supports_json`, so podman (through conmon) passes
//!   `--log-format=json --log <rundir>/oci-log` and shows the runtime's own error message;
//! - sets `default_ulimits` below the host's hard limits (this VM's root lacks
//!   CAP_SYS_RESOURCE, so podman's default nofile/nproc of 1048576 cannot be set, with runc
//!   either);
//! - puts the containers under a cgroup parent named after the test.
//!
//! Terminal tests drive a pty the test allocates ([`Pty`]): typed input, the prompt, sizes
//! (`stty size`), resizes (`TIOCSWINSZ` on the master, which SIGWINCHes podman), and detach
//! keys. podman's runtime root is the runtime's default (`/run/berth`, `/run/runc`): podman's
//! `container cleanup` exit command does not carry `--runtime-flag`s, so a private `--root` would
//! leave state behind. No test skips: without podman or conmon they fail saying what to install.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_itest::{
    Bundle, Cmd, Kind, Leftovers, MasterIo, Output, Pty, Runtime, runtime, runtime_exclusive,
    unique_id, wait_until,
};
use tempfile::TempDir;

const T: Duration = Duration::from_secs(30);

fn tool(name: &str, package: &str) -> PathBuf {
    for dir in [
        "/usr/bin",
        "/usr/sbin",
        "/usr/libexec/podman",
        "/usr/local/bin",
    ] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{name} is not installed: these tests need Debian's podman and conmon (apt-get install {package})"
    );
}

/// A private podman for one test (see the module docs); cleans up on drop.
struct Podman {
    rt: Runtime,
    dir: TempDir,
    runtime_path: PathBuf,
    cgroup_parent: String,
    // Kept alive for its rootfs.
    bundle: Bundle,
}

impl Podman {
    fn new(name: &str) -> Self {
        Self::with_runtime(runtime(), name)
    }

    fn with_runtime(rt: Runtime, name: &str) -> Self {
        tool("conmon", "conmon");
        let podman = tool("podman", "podman conmon");
        assert!(podman.is_file());
        let dir = tempfile::Builder::new()
            .prefix("berth-itest-podman-")
            .tempdir_in("/tmp")
            .expect("podman temp dir");
        let d = dir.path();
        for sub in ["root", "runroot", "tmp", "net", "volumes", "bin"] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        // podman names the runtime after the binary: it must be one of runtime_supports_json.
        let rt_name = match rt.kind() {
            Kind::Berth => "berth",
            Kind::Runc => "runc",
            Kind::Crun => "crun",
        };
        let runtime_path = d.join("bin").join(rt_name);
        std::os::unix::fs::symlink(rt.bin(), &runtime_path).expect("runtime symlink");
        let cgroup_parent = format!("/{}", unique_id(&format!("podman-{name}")));
        let conf = format!(
            r#"[containers]
netns = "none"
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
log_driver = "k8s-file"
cgroupns = "private"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
tmp_dir = "{d}/tmp"
volume_path = "{d}/volumes"
runtime = "{rt_name}"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "berth"]
[engine.runtimes]
{rt_name} = ["{rp}"]
[network]
network_config_dir = "{d}/net"
"#,
            d = d.display(),
            rp = runtime_path.display(),
        );
        std::fs::write(d.join("containers.conf"), conf).expect("containers.conf");
        let storage = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/root\"\nrunroot = \"{d}/runroot\"\n",
            d = d.display()
        );
        std::fs::write(d.join("storage.conf"), storage).expect("storage.conf");
        std::fs::write(
            d.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .expect("registries.conf");
        let bundle = Bundle::busybox();
        // podman may rewrite /etc files of a --rootfs; the template's are hard links.
        for f in ["etc/passwd", "etc/group"] {
            let p = bundle.rootfs().join(f);
            let text = std::fs::read(&p).expect("read etc file");
            std::fs::remove_file(&p).expect("unlink etc file");
            std::fs::write(&p, text).expect("write etc file");
        }
        Self {
            rt,
            dir,
            runtime_path,
            cgroup_parent,
            bundle,
        }
    }

    /// `podman <private global flags> ARGS...`.
    fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let d = self.dir.path();
        Cmd::new(tool("podman", "podman conmon"))
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .env_remove("CONTAINER_HOST")
            .env_remove("CONTAINER_CONNECTION")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "file", "--runtime"])
            .arg(&self.runtime_path)
            .args(args)
            .timeout(T)
    }

    /// `podman run --network none --cgroup-parent P FLAGS... --rootfs R ARGS...`.
    fn run<'a>(&self, flags: &[&str], args: impl IntoIterator<Item = &'a str>) -> Cmd {
        self.cmd(["run", "--network", "none", "--cgroup-parent"])
            .arg(&self.cgroup_parent)
            .args(flags)
            .arg("--rootfs")
            .arg(self.bundle.rootfs())
            .args(args)
    }

    /// The full id of container `name`.
    fn id(&self, name: &str) -> String {
        let out = self.cmd(["inspect", "--format", "{{.Id}}", name]).ok();
        out.stdout_str().trim().to_string()
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        let out = self.cmd(["inspect", "--format", format, name]).ok();
        out.stdout_str().trim().to_string()
    }

    /// Container ids the runtime itself lists in its default root.
    ///
    /// runc's `list` fails when a container directory is removed while it reads them ("stat
    /// /run/runc/ID: no such file or directory"), which the other tests running at the same
    /// time do: such a listing is taken again (a few times); any other failure fails the test.
    fn runtime_ids(&self) -> BTreeSet<String> {
        let mut attempts = 0;
        let out = loop {
            let out = self.rt.cmd_no_root(["list", "-q"]).run();
            attempts += 1;
            let vanished = !out.success() && out.stderr_str().contains("no such file or directory");
            if !vanished || attempts == 5 {
                break out;
            }
        };
        let out = out.assert_ok();
        out.stdout_str().lines().map(str::to_string).collect()
    }

    /// Every cgroup directory below the test's cgroup parent, in every hierarchy.
    fn cgroups_below_parent(&self) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        let rel = self.cgroup_parent.trim_start_matches('/');
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            walk(&h.path().join(rel), &mut out);
        }
        // conmon's own cgroup (podman puts it in <parent>/conmon) is podman's business.
        out.retain(|p| !p.ends_with(rel) && !p.ends_with("conmon"));
        out
    }
}

fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        out.insert(dir.to_path_buf());
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), out);
            }
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let out = self
            .cmd(["rm", "--all", "--force", "--time", "0"])
            .spawn()
            .wait_unchecked();
        if !out.success() {
            eprintln!("podman cleanup: {out}");
        }
        // `podman rm` can return while conmon and the `podman container cleanup` it started
        // are still exiting; they write events under the test's dir and hold conmon's cgroup.
        // Wait for them, or the dir and cgroups below are removed under their feet and
        // partly recreated (seen: a `tmp/berth-itest-podman-*` and `<parent>/conmon` left).
        let rel = self.cgroup_parent.trim_start_matches('/').to_string();
        let mine = || {
            berth_itest::leftovers::processes(
                std::slice::from_ref(&rel),
                &[self.dir.path().display().to_string()],
            )
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !mine().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = mine();
        if !left.is_empty() {
            eprintln!("podman cleanup: still running: {left:?}");
        }
        // Anything podman left mounted under its dirs (container shm) goes before the dir does.
        berth_itest::leftovers::unmount_under(self.dir.path());
        // The cgroup parent podman had the runtime create (children first).
        let mut dirs = BTreeSet::new();
        let cgroup_fs_dev = std::fs::metadata("/sys/fs/cgroup").map(|m| m.dev()).ok();
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            // podman (cgroupfs manager) also makes `<controller>/<parent>/conmon/tasks` for
            // controllers the kernel knows but this host has not mounted (hugetlb, net_cls,
            // net_prio, perf_event here): plain directories on /sys/fs/cgroup's tmpfs.
            if std::fs::metadata(h.path()).map(|m| m.dev()).ok() == cgroup_fs_dev {
                let _ = std::fs::remove_dir_all(h.path().join(&rel));
                continue;
            }
            walk(&h.path().join(&rel), &mut dirs);
        }
        let mut dirs: Vec<PathBuf> = dirs.into_iter().collect();
        dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        // conmon may still be leaving its cgroup (`<parent>/conmon`) when `podman rm` returns,
        // and a v1 hierarchy refuses to remove a cgroup until the exit is accounted there
        // (EBUSY): so try again for a while rather than leave the directories on the host.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            dirs.retain(|dir| match std::fs::remove_dir(dir) {
                Ok(()) => false,
                Err(e) => e.kind() != std::io::ErrorKind::NotFound,
            });
            if dirs.is_empty() || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !dirs.is_empty() {
            eprintln!("podman cleanup: cgroups left: {dirs:?}");
        }
    }
}

/// Types `echo "Q[$(EXPR)]$((40+2))"` into the shell on `io` and returns what EXPR printed. The
/// terminal's echo of the command line shows `$((40+2))`, never `]42`, so the first `]42` read is
/// the answer.
#[track_caller]
fn ask(io: &impl MasterIo, expr: &str) -> String {
    io.write_all(format!("echo \"Q[$({expr})]$((40+2))\"\n").as_bytes());
    let got = io.read_until(b"]42", T);
    let text = String::from_utf8_lossy(&got);
    let end = text.find("]42").expect("marker");
    let start = text[..end]
        .rfind("Q[")
        .unwrap_or_else(|| panic!("no Q[ before ]42 in {text:?}"));
    text[start + 2..end].to_string()
}

/// The host's devpts device number.
fn host_devpts_dev() -> u64 {
    std::fs::metadata("/dev/pts").expect("stat /dev/pts").dev()
}

/// Checks that the shell's terminal is `/dev/pts/N` of the container's own devpts (not the
/// host's), and returns N.
#[track_caller]
fn assert_container_pts(io: &impl MasterIo) -> u32 {
    let tty = ask(io, "tty");
    let n: u32 = tty
        .strip_prefix("/dev/pts/")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("tty printed {tty:?}, not /dev/pts/N"));
    let devs = ask(io, "stat -c %d /dev/pts $(tty) | tr '\\n' ' '");
    let devs: Vec<u64> = devs
        .split_whitespace()
        .map(|d| d.parse().expect("device number"))
        .collect();
    assert_eq!(devs.len(), 2, "{devs:?}");
    assert_eq!(
        devs[0], devs[1],
        "the tty is not on the container's /dev/pts"
    );
    assert_ne!(
        devs[0],
        host_devpts_dev(),
        "the container's /dev/pts is the host's devpts"
    );
    n
}

#[test]
fn run_prints_output_and_returns_the_exit_code() {
    let p = Podman::new("run");
    let out = p
        .run(
            &["--rm"],
            ["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"],
        )
        .run()
        .assert_code(3);
    assert_eq!(out.stdout_str(), "to-stdout\n", "{out}");
    assert!(out.stderr_str().contains("to-stderr"), "{out}");
    p.run(&["--rm"], ["true"]).ok();
    p.run(&["--rm"], ["false"]).run().assert_code(1);
    p.run(&["--rm"], ["/no/such/program"])
        .run()
        .assert_code(127);
    let left = p.cmd(["ps", "--all", "--quiet"]).ok();
    assert_eq!(left.stdout_str(), "", "--rm left containers: {left}");
}

#[test]
fn run_interactive_reads_piped_stdin() {
    let p = Podman::new("run-i");
    let out = p
        .run(&["--rm", "-i"], ["sh", "-c", "cat; echo after-eof"])
        .stdin_bytes("line 1\nline 2\n")
        .ok();
    assert_eq!(out.stdout_str(), "line 1\nline 2\nafter-eof\n", "{out}");
    let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let out = p.run(&["--rm", "-i"], ["wc", "-c"]).stdin_bytes(big).ok();
    assert_eq!(out.stdout_str().trim(), "200000", "{out}");
}

#[test]
fn run_it_on_a_terminal() {
    let p = Podman::new("run-it");
    let mut pty = Pty::new();
    pty.set_size(33, 101);
    let running = pty.spawn(p.run(&["--rm", "-it"], ["sh"]));
    pty.read_until(b"# ", T);
    assert_eq!(ask(&pty, "echo $((6*7))"), "42");
    assert_container_pts(&pty);
    assert_eq!(ask(&pty, "stty size"), "33 101", "initial size");
    pty.set_size(41, 123);
    // The resize travels podman -> conmon's ctl FIFO -> TIOCSWINSZ: wait for it.
    wait_until("resize seen by stty size", T, || {
        (ask(&pty, "stty size") == "41 123").then_some(())
    });
    pty.write_all(b"exit 5\n");
    let out = running.wait();
    assert_eq!(out.code(), Some(5), "{out}");
}

#[test]
fn run_dit_then_attach_detach_and_reattach() {
    let p = Podman::new("attach");
    let name = unique_id("attach");
    p.run(&["-dit", "--name", &name], ["sh"]).ok();
    let id = p.id(&name);
    assert!(
        p.runtime_ids().contains(&id),
        "the runtime under test does not list {id}"
    );

    // First client: its size, then ctrl-p ctrl-q.
    let mut a = Pty::new();
    a.set_size(30, 90);
    let attach = a.spawn(p.cmd(["attach", &name]));
    wait_until("size follows the first client", T, || {
        (ask(&a, "stty size") == "30 90").then_some(())
    });
    assert_container_pts(&a);
    a.write_all(b"\x10");
    std::thread::sleep(Duration::from_millis(200));
    a.write_all(b"\x11");
    let out = attach.wait();
    assert_eq!(out.code(), Some(0), "ctrl-p ctrl-q: {out}");
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running");

    // Second client, bigger, with its own detach key.
    let mut b = Pty::new();
    b.set_size(45, 150);
    let attach = b.spawn(p.cmd(["attach", "--detach-keys", "ctrl-x", &name]));
    wait_until("size follows the second client", T, || {
        (ask(&b, "stty size") == "45 150").then_some(())
    });
    // ctrl-p alone is just a key now. (podman only takes a detach key that arrives alone in a
    // read, hence the pauses.)
    b.write_all(b"\x10\x15");
    std::thread::sleep(Duration::from_millis(200));
    b.write_all(b"\x18");
    let out = attach.wait();
    assert_eq!(out.code(), Some(0), "--detach-keys ctrl-x: {out}");
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running");

    // Re-attach and end the shell: attach ends (podman 4.3 exits 0 then, with runc too) and
    // `podman wait` has the shell's status.
    let mut c = Pty::new();
    c.set_size(25, 80);
    let attach = c.spawn(p.cmd(["attach", &name]));
    wait_until("size follows the third client", T, || {
        (ask(&c, "stty size") == "25 80").then_some(())
    });
    c.write_all(b"exit 7\n");
    let out = attach.wait();
    assert_eq!(out.code(), Some(0), "{out}");
    let waited = p.cmd(["wait", &name]).ok();
    assert_eq!(waited.stdout_str().trim(), "7", "{waited}");
    p.cmd(["rm", &name]).ok();
    assert!(
        !p.runtime_ids().contains(&id),
        "runtime state left for {id}"
    );
}

#[test]
fn exec_with_and_without_a_terminal() {
    let p = Podman::new("exec");
    let name = unique_id("exec");
    p.run(&["-d", "--name", &name], ["sleep", "600"]).ok();

    let out = p
        .cmd(["exec", &name, "sh", "-c", "echo from-exec; exit 4"])
        .run()
        .assert_code(4);
    assert_eq!(out.stdout_str(), "from-exec\n", "{out}");
    let out = p
        .cmd(["exec", "-i", &name, "sh", "-c", "cat; echo end"])
        .stdin_bytes("piped\n")
        .ok();
    assert_eq!(out.stdout_str(), "piped\nend\n", "{out}");
    // A missing program: podman's 127.
    p.cmd(["exec", &name, "/no/such/program"])
        .run()
        .assert_code(127);

    let mut pty = Pty::new();
    pty.set_size(28, 77);
    let running = pty.spawn(p.cmd(["exec", "-it", &name, "sh"]));
    pty.read_until(b"# ", T);
    assert_eq!(ask(&pty, "echo $((6*7))"), "42");
    assert_eq!(ask(&pty, "stty size"), "28 77", "initial exec size");
    assert_container_pts(&pty);
    pty.set_size(50, 160);
    wait_until("exec resize seen by stty size", T, || {
        (ask(&pty, "stty size") == "50 160").then_some(())
    });
    pty.write_all(b"exit 6\n");
    let out = running.wait();
    assert_eq!(out.code(), Some(6), "{out}");
}

#[test]
fn logs_ps_top_pause_stop_kill_wait_rm() {
    let p = Podman::new("lifecycle");
    let a = unique_id("life-a");
    let b = unique_id("life-b");
    let script = "echo started; trap 'echo got-term; exit 7' TERM; while :; do sleep 0.1; done";
    p.run(&["-d", "--name", &a], ["sh", "-c", script]).ok();
    p.run(&["-d", "--name", &b], ["sleep", "600"]).ok();
    let id_a = p.id(&a);
    assert!(p.runtime_ids().contains(&id_a));

    wait_until("logs show the first line", T, || {
        let out = p.cmd(["logs", &a]).ok();
        (out.stdout_str() == "started\n").then_some(())
    });
    let ps = p.cmd(["ps", "--format", "{{.Names}} {{.Status}}"]).ok();
    let ps = ps.stdout_str();
    assert!(ps.contains(&format!("{a} Up")), "{ps}");
    assert!(ps.contains(&format!("{b} Up")), "{ps}");

    let top = p.cmd(["top", &a, "pid", "args"]).ok();
    let top = top.stdout_str();
    assert!(
        top.lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("sh -c")),
        "top: {top}"
    );

    p.cmd(["pause", &a]).ok();
    assert_eq!(p.inspect(&a, "{{.State.Status}}"), "paused");
    let state = p.rt.cmd_no_root(["state", &id_a]).ok();
    assert!(state.stdout_str().contains("\"paused\""), "{state}");
    p.cmd(["unpause", &a]).ok();
    assert_eq!(p.inspect(&a, "{{.State.Status}}"), "running");

    // stop: SIGTERM, which the trap turns into exit 7.
    p.cmd(["stop", "--time", "20", &a]).ok();
    let waited = p.cmd(["wait", &a]).ok();
    assert_eq!(waited.stdout_str().trim(), "7", "{waited}");
    let logs = p.cmd(["logs", &a]).ok();
    assert_eq!(logs.stdout_str(), "started\ngot-term\n", "{logs}");

    // kill: SIGKILL by default.
    p.cmd(["kill", &b]).ok();
    let waited = p.cmd(["wait", &b]).ok();
    assert_eq!(waited.stdout_str().trim(), "137", "{waited}");

    p.cmd(["rm", &a, &b]).ok();
    let left = p.cmd(["ps", "--all", "--quiet"]).ok();
    assert_eq!(left.stdout_str(), "", "{left}");
    assert!(!p.runtime_ids().contains(&id_a), "runtime state left");
    assert!(
        p.cgroups_below_parent().is_empty(),
        "cgroups left: {:?}",
        p.cgroups_below_parent()
    );
}

/// What podman printed for a create the runtime refused: the runtime's message from its JSON
/// log, without logrus decoration.
#[track_caller]
fn assert_runtime_error(out: &Output, kind: Kind) {
    let err = out.stderr_str();
    let want = match kind {
        // berth: "mount /etc/hostname on /bin (create mount point): Is a directory (os error 21)"
        Kind::Berth => "mount /etc/hostname on /bin",
        // runc: "error mounting \"/etc/hostname\" to rootfs at \"/bin\": ... not a directory"
        Kind::Runc => "error mounting \"/etc/hostname\" to rootfs at \"/bin\"",
        Kind::Crun => "/bin",
    };
    assert!(
        err.contains(want),
        "the runtime's message is missing: {out}"
    );
    assert!(
        err.contains("OCI runtime error"),
        "podman did not classify it as a runtime error: {out}"
    );
    assert!(
        !err.contains("level=error msg=\"mount"),
        "podman did not parse the JSON log (raw logrus text shown): {out}"
    );
}

#[test]
fn failing_create_shows_the_runtime_error_and_leaves_nothing() {
    let rt = runtime_exclusive();
    let kind = rt.kind();
    let p = Podman::with_runtime(rt, "bad-mount");
    // Create the cgroup parent first, so that only what the failure might leave is compared.
    p.run(&["--rm"], ["true"]).ok();
    // ... and wait for its `podman container cleanup` to be done.
    let dir = p.dir.path().to_string_lossy().into_owned();
    wait_until("podman's cleanup process exits", T, || {
        berth_itest::leftovers::processes(&[], std::slice::from_ref(&dir))
            .is_empty()
            .then_some(())
    });
    let ids_before = p.runtime_ids();
    let cgroups_before = p.cgroups_below_parent();
    let l = Leftovers::snapshot(&p.rt, &[], &[p.dir.path(), &p.bundle.rootfs()]);
    let bad = "type=bind,source=/etc/hostname,destination=/bin";
    for flags in [&["--rm", "--mount", bad][..], &["-t", "--mount", bad][..]] {
        let out = p.run(flags, ["true"]).run();
        assert_eq!(out.code(), Some(126), "{out}");
        assert_runtime_error(&out, kind);
    }
    let ps = p
        .cmd(["ps", "--all", "--format", "{{.Names}} {{.State}}"])
        .ok();
    // `-t` without --rm keeps podman's record of the failed container (state "created").
    assert!(
        ps.stdout_str().lines().all(|l| !l.ends_with("running")),
        "{ps}"
    );
    p.cmd(["rm", "--all", "--force"]).ok();
    assert_eq!(p.runtime_ids(), ids_before, "runtime state left behind");
    assert_eq!(
        p.cgroups_below_parent(),
        cgroups_before,
        "cgroups left behind"
    );
    l.assert_unchanged();
}

#[test]
fn killing_conmon_leaves_the_runtime_state_consistent() {
    let p = Podman::new("kill-conmon");
    let name = unique_id("conmon");
    p.run(&["-dit", "--name", &name], ["sh"]).ok();
    let id = p.id(&name);
    let conmon: i32 = p
        .inspect(&name, "{{.State.ConmonPid}}")
        .parse()
        .expect("conmon pid");
    let init: i32 = p.inspect(&name, "{{.State.Pid}}").parse().expect("pid");
    assert!(conmon > 1 && init > 1);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(conmon).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill conmon");
    wait_until("conmon gone", T, || {
        (!Path::new(&format!("/proc/{conmon}")).exists()
            || std::fs::read_to_string(format!("/proc/{conmon}/stat"))
                .is_ok_and(|s| s.contains(") Z ")))
        .then_some(())
    });

    // The runtime still lists it, running or (the shell saw the hangup) stopped.
    let list = p.rt.cmd_no_root(["list", "--format", "json"]).ok();
    let all: serde_json::Value = serde_json::from_slice(&list.stdout).expect("list json");
    let me = all
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == id.as_str()))
        .unwrap_or_else(|| panic!("{id} not listed: {list}"))
        .clone();
    let status = me["status"].as_str().unwrap_or_default().to_string();
    assert!(
        status == "running" || status == "stopped",
        "status after conmon died: {me}"
    );
    if status == "running" {
        assert_eq!(me["pid"], init, "{me}");
    }
    let state = p.rt.cmd_no_root(["state", &id]).ok();
    assert!(state.stdout_str().contains(&id), "{state}");

    p.rt.cmd_no_root(["delete", "--force", &id]).ok();
    assert!(
        !p.runtime_ids().contains(&id),
        "state left after delete --force"
    );
    wait_until("the init is gone", T, || {
        (!Path::new(&format!("/proc/{init}")).exists()
            || std::fs::read_to_string(format!("/proc/{init}/stat"))
                .is_ok_and(|s| s.contains(") Z ")))
        .then_some(())
    });
    let left: Vec<PathBuf> = p
        .cgroups_below_parent()
        .into_iter()
        .filter(|c| c.to_string_lossy().contains(&id))
        .collect();
    assert!(left.is_empty(), "cgroups left: {left:?}");
    // podman can still forget it. Its first `rm --force` waits 5 s for the exit file the dead
    // conmon never writes and fails, with runc as with berth; the second one succeeds.
    if !p.cmd(["rm", "--force", &name]).run().success() {
        p.cmd(["rm", "--force", &name]).ok();
    }
    let ps = p.cmd(["ps", "--all", "--quiet"]).ok();
    assert_eq!(ps.stdout_str(), "", "{ps}");
}
