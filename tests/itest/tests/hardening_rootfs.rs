//! A hostile rootfs cannot redirect the runtime (security.md §6 R, NO-ESCAPE): `/dev`,
//! `/dev/pts`, `/dev/console`, `/dev/null`, `/proc` and mount targets replaced by symlinks to
//! host paths, FIFOs, regular files and directories (CVE-2025-31133, CVE-2025-52565,
//! CVE-2025-52881, CVE-2026-41579, CVE-2026-47766 = crun's /dev symlink bug). Each case uses
//! crun's outside-marker pattern ([`Markers`]): the run either fails closed or succeeds
//! correctly (checked from inside), and the host directory the rootfs points at stays
//! byte-identical with nothing mounted on it. The racing cases flip a symlink with
//! `renameat2(RENAME_EXCHANGE)` in a tight loop while the runtime runs, 100 times.
//!
//! runc 1.1.5 predates the 2025/2026 fixes; where its behaviour differs the test says so in
//! an explicit `Kind::Runc` branch and asserts what runc actually does.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use berth_itest::attack::Markers;
use berth_itest::{
    Bundle, Input, Kind, MasterIo, Output, Pty, Runtime, runtime, runtime_exclusive, strip_cr,
};
use serde_json::json;

const T: Duration = Duration::from_secs(15);

/// A named way to make a rootfs hostile.
type Case<'a> = (&'a str, &'a dyn Fn(&Bundle));

/// Removes the config's mount at `dest`.
fn drop_mount(b: &mut Bundle, dest: &str) {
    b.config(|c| {
        c["mounts"]
            .as_array_mut()
            .expect("mounts")
            .retain(|m| m["destination"] != json!(dest));
    });
}

/// Replaces `rel` in the rootfs (file, dir or link) by a symlink to `target`.
fn symlink_in_rootfs(b: &Bundle, rel: &str, target: &Path) {
    let p = b.rootfs().join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir parent");
    }
    let _ = std::fs::remove_dir_all(&p);
    let _ = std::fs::remove_file(&p);
    std::os::unix::fs::symlink(target, &p).expect("symlink in rootfs");
}

fn mkfifo(p: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
}

/// Runs the bundle in the foreground (no terminal) and returns its output (stdin an empty
/// pipe).
fn run(rt: &Runtime, b: &Bundle, name: &str) -> Output {
    rt.run_cmd(b, &rt.id(name))
        .stdin(Input::Bytes(Vec::new()))
        .timeout(T)
        .run()
}

/// The host's `kernel.core_pattern`, put back on drop if a runtime changed it.
struct CorePattern {
    before: Vec<u8>,
}

impl CorePattern {
    const PATH: &'static str = "/proc/sys/kernel/core_pattern";

    fn save() -> Self {
        Self {
            before: std::fs::read(Self::PATH).expect("read core_pattern"),
        }
    }

    fn changed(&self) -> bool {
        std::fs::read(Self::PATH).expect("read core_pattern") != self.before
    }
}

impl Drop for CorePattern {
    fn drop(&mut self) {
        if self.changed() {
            let _ = std::fs::write(Self::PATH, &self.before);
        }
    }
}

/// The outcome must be success (the container's program exited 0) or the runtime's own clean
/// failure: exit 1 with its error line (berth's `level=error`, runc's `runc run failed`); a
/// hang, a crash or a container that started and then failed is neither.
#[track_caller]
fn closed_or_ok(out: &Output) -> bool {
    assert!(!out.timed_out, "runtime hung: {out}");
    if out.success() {
        return true;
    }
    let err = out.stderr_str();
    assert!(
        out.code() == Some(1) && (err.contains("level=error") || err.contains("runc run failed")),
        "neither success nor the runtime's clean error: {out}"
    );
    false
}

/// berth fails closed (crun's assertion); runc 1.1.5 resolves the link inside the rootfs with
/// securejoin, creates the target there and succeeds, which is safe too (the markers decide).
#[track_caller]
fn must_fail_unless_runc(rt: &Runtime, out: &Output, name: &str) {
    let ok = closed_or_ok(out);
    if rt.kind() == Kind::Runc {
        assert!(ok, "{name}: runc 1.1.5 succeeds here: {out}");
    } else {
        assert!(!ok, "{name}: the run must fail: {out}");
    }
}

/// R-07 (crun's CVE-2026-47766 test, exactly): the image's `/dev` is a symlink to an outside
/// directory holding a marker `ptmx`; the run fails and the directory is untouched.
#[test]
fn r07_dev_symlink_to_host_dir_with_dev_tmpfs() {
    let rt = runtime();
    for (name, keep_tmpfs) in [("r07-tmpfs", true), ("r07-image-dev", false)] {
        let markers = Markers::new(&[("ptmx", "outside marker\n")]);
        let mut b = Bundle::busybox();
        if !keep_tmpfs {
            drop_mount(&mut b, "/dev");
        }
        b.args(&["/probe", "exit", "0"]);
        symlink_in_rootfs(&b, "dev", markers.path());
        let out = run(&rt, &b, name);
        if rt.kind() == Kind::Runc {
            // CVE-2026-41579, present in runc 1.1.5: setupPtmx and setupDevSymlinks join the
            // rootfs path and follow the image's /dev link out of it, deleting the marker and
            // planting runc's /dev symlinks in the host directory.
            closed_or_ok(&out);
            let ptmx = std::fs::read_link(markers.path().join("ptmx"));
            assert_eq!(
                ptmx.ok().as_deref(),
                Some(Path::new("pts/ptmx")),
                "runc 1.1.5 is expected to replace the outside marker: {out}"
            );
            continue;
        }
        must_fail_unless_runc(&rt, &out, name);
        markers.assert_untouched(name);
        // Relative too: `../../..` climbs must be clamped at the rootfs.
        let rel = PathBuf::from("../../../../../../../../..").join(
            markers
                .path()
                .strip_prefix("/")
                .expect("absolute marker dir"),
        );
        symlink_in_rootfs(&b, "dev", &rel);
        let out = run(&rt, &b, &format!("{name}-rel"));
        must_fail_unless_runc(&rt, &out, name);
        markers.assert_untouched(name);
    }
}

/// with the image's `/dev` (no tmpfs), `/dev/pts` is a symlink to an outside directory
/// and `/dev/ptmx` a symlink to a host path.
#[test]
fn r08_dev_pts_and_ptmx_symlinks() {
    let rt = runtime();
    let markers = Markers::new(&[("ptmx", "marker\n"), ("0", "marker pts 0\n")]);
    let mut b = Bundle::busybox();
    drop_mount(&mut b, "/dev");
    b.sh("readlink /dev/ptmx; stat -c '%F %t:%T' /dev/pts/ptmx");
    symlink_in_rootfs(&b, "dev/pts", markers.path());
    symlink_in_rootfs(&b, "dev/ptmx", &markers.path().join("ptmx"));
    let out = run(&rt, &b, "r08");
    if closed_or_ok(&out) {
        let text = out.stdout_str();
        assert!(text.starts_with("pts/ptmx\n"), "/dev/ptmx inside: {out}");
        assert!(text.contains("character special file 5:2"), "{out}");
    }
    markers.assert_untouched("r08");
}

/// `/dev/console` in the image (no `/dev` tmpfs) is a directory, a FIFO, a dangling
/// symlink, a symlink to a host file, a hard link to a file: the console is bound correctly
/// (a char device 136:N) or the run fails cleanly, and the host files are untouched.
#[test]
fn r06_dev_console_variants() {
    let rt = runtime();
    let markers = Markers::new(&[("shadow", "root:secret\n")]);
    let cases: [Case<'_>; 5] = [
        ("dir", &|b: &Bundle| {
            std::fs::create_dir_all(b.rootfs().join("dev/console")).expect("mkdir")
        }),
        ("fifo", &|b: &Bundle| {
            mkfifo(&b.rootfs().join("dev/console"))
        }),
        ("dangling", &|b: &Bundle| {
            symlink_in_rootfs(b, "dev/console", Path::new("/nonexistent/console"))
        }),
        ("host-file", &|b: &Bundle| {
            symlink_in_rootfs(b, "dev/console", &markers.path().join("shadow"))
        }),
        ("hardlink", &|b: &Bundle| {
            std::fs::write(b.rootfs().join("etc/linked"), "image file\n").expect("write");
            std::fs::hard_link(
                b.rootfs().join("etc/linked"),
                b.rootfs().join("dev/console"),
            )
            .expect("hard link");
        }),
    ];
    for (name, setup) in cases {
        let mut b = Bundle::busybox();
        drop_mount(&mut b, "/dev");
        b.terminal(true)
            .sh("stat -c '%F %t' /dev/console; echo done");
        std::fs::create_dir_all(b.rootfs().join("dev")).expect("mkdir dev");
        setup(&b);
        let mut pty = Pty::new();
        let running = pty.spawn(rt.run_cmd(&b, &rt.id(&format!("r06-{name}"))));
        let text = String::from_utf8_lossy(&strip_cr(&pty.read_until_eof(T))).into_owned();
        let out = running.wait_unchecked();
        assert!(!out.timed_out, "{name}: hung: {out}");
        if out.success() {
            // 0x88 = 136, the pts major.
            assert!(
                text.contains("character special file 88\ndone"),
                "{name}: /dev/console is not the pty: {text:?}"
            );
        } else {
            assert!(
                text.contains("console") || out.stderr_str().contains("console"),
                "{name}: the error does not name /dev/console: {text:?} {out}"
            );
        }
        markers.assert_untouched(name);
        if name == "hardlink" {
            let now = std::fs::read_to_string(b.rootfs().join("etc/linked")).expect("read");
            if rt.kind() == Kind::Runc {
                // runc 1.1.5 opens /dev/console with os.Create (O_TRUNC, no O_NOFOLLOW): the
                // file hard-linked there is emptied (the pattern runc's later os.Create lint
                // forbids).
                assert_eq!(
                    now, "",
                    "runc 1.1.5 is expected to truncate the linked file"
                );
            } else {
                assert_eq!(now, "image file\n", "the hard-linked image file changed");
            }
        }
    }
}

/// A snapshot of the host's `/dev` top level: name, type, mode, rdev, inode.
fn host_dev() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir("/dev")
        .expect("read /dev")
        .flatten()
        .filter_map(|e| {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::symlink_metadata(e.path()).ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                format!(
                    "{:?} {:o} {} {}",
                    m.file_type(),
                    m.mode(),
                    m.rdev(),
                    m.ino()
                ),
            ))
        })
        .collect();
    v.sort();
    v
}

/// Puts the host's `/dev/console` back if a broken runtime removed or replaced it.
struct ConsoleRestore;

impl Drop for ConsoleRestore {
    fn drop(&mut self) {
        let ok = std::fs::symlink_metadata("/dev/console")
            .map(|m| m.file_type().is_char_device())
            .unwrap_or(false);
        if !ok {
            let _ = std::fs::remove_file("/dev/console");
            let _ = rustix::fs::mknodat(
                rustix::fs::CWD,
                "/dev/console",
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::from_raw_mode(0o600),
                rustix::fs::makedev(5, 1),
            );
        }
    }
}

/// `/dev` bound from the host and a terminal: the console is bound over the host's
/// `/dev/console` inside the container's mount namespace only; no host inode in `/dev` is
/// created, deleted or modified. (The config's own mounts under `/dev` need their mount points
/// on the host, like any volume's nested mount; `/dev/mqueue`, which this host lacks, is left
/// out so that only the runtime's own device setup is judged.)
#[test]
fn r13_host_dev_bind_with_terminal() {
    let rt = runtime_exclusive();
    let _restore = ConsoleRestore;
    let mut b = Bundle::busybox();
    drop_mount(&mut b, "/dev");
    drop_mount(&mut b, "/dev/mqueue");
    b.config(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        mounts.insert(
            1,
            json!({"destination": "/dev", "type": "bind", "source": "/dev",
                   "options": ["rbind", "nosuid", "noexec"]}),
        );
    });
    b.terminal(true)
        .sh("stat -c '%F %t' /dev/console; echo done");
    let before = host_dev();
    let mut pty = Pty::new();
    let running = pty.spawn(rt.run_cmd(&b, &rt.id("r13")));
    let text = String::from_utf8_lossy(&strip_cr(&pty.read_until_eof(T))).into_owned();
    let out = running.wait_unchecked();
    assert!(!out.timed_out, "hung: {out}");
    assert_eq!(
        host_dev(),
        before,
        "the host's /dev changed: {text:?} {out}"
    );
    if rt.kind() == Kind::Runc {
        // runc 1.1.5 opens the host's /dev/console for writing to make it a mount point and
        // is refused; it fails closed.
        assert!(!out.success(), "{text:?} {out}");
        assert!(text.contains("/dev/console"), "{text:?} {out}");
        return;
    }
    assert!(out.success(), "{text:?} {out}");
    assert!(
        text.contains("character special file 88\ndone"),
        "/dev/console is not the pty: {text:?}"
    );
}

/// R-09 (CVE-2025-31133): the image's `/dev/null` (no `/dev` tmpfs) is a symlink to a procfs
/// file; masked paths must still be the 1:3 device and the procfs file untouched.
#[test]
fn r09_dev_null_symlink_and_masked_paths() {
    let rt = runtime();
    let core_pattern = CorePattern::save();
    let mut b = Bundle::busybox();
    drop_mount(&mut b, "/dev");
    b.sh("stat -c '%n %F %t:%T' /proc/keys /proc/timer_list");
    symlink_in_rootfs(&b, "dev/null", Path::new("/proc/sys/kernel/core_pattern"));
    let out = run(&rt, &b, "r09");
    if rt.kind() == Kind::Runc {
        // CVE-2025-31133, present in runc 1.1.5: the masks (and runc's reopened /dev/null
        // stdio) follow the planted link, so the masked files are not the 1:3 device. The
        // host's core_pattern is still checked below.
        assert!(!out.timed_out, "{out}");
        assert!(
            !out.stdout_str()
                .contains("/proc/keys character special file 1:3"),
            "runc 1.1.5 is expected not to mask with the 1:3 device here: {out}"
        );
    } else if closed_or_ok(&out) {
        for f in ["/proc/keys", "/proc/timer_list"] {
            assert!(
                out.stdout_str()
                    .contains(&format!("{f} character special file 1:3")),
                "{f} is not masked by the 1:3 device: {out}"
            );
        }
    }
    if rt.kind() == Kind::Runc {
        // The escape itself: runc 1.1.5 hands the container the planted link as its stdout,
        // so the container's output lands in the host's kernel.core_pattern (put back by
        // the guard when this test ends).
        assert!(
            core_pattern.changed(),
            "runc 1.1.5 is expected to write core_pattern: {out}"
        );
    } else {
        assert!(
            !core_pattern.changed(),
            "the host's kernel.core_pattern changed: {out}"
        );
    }
}

/// `/proc` in the image is a symlink (inside and to a host dir), a FIFO, a regular
/// file: "must be mounted on ordinary directory" (runc's text).
#[test]
fn r11_proc_not_a_directory() {
    let rt = runtime();
    let markers = Markers::new(&[("stat", "marker\n")]);
    let cases: [Case<'_>; 4] = [
        ("host-link", &|b: &Bundle| {
            symlink_in_rootfs(b, "proc", markers.path())
        }),
        ("inner-link", &|b: &Bundle| {
            symlink_in_rootfs(b, "proc", Path::new("/tmp"))
        }),
        ("fifo", &|b: &Bundle| {
            std::fs::remove_dir(b.rootfs().join("proc")).expect("rmdir proc");
            mkfifo(&b.rootfs().join("proc"));
        }),
        ("file", &|b: &Bundle| {
            std::fs::remove_dir(b.rootfs().join("proc")).expect("rmdir proc");
            std::fs::write(b.rootfs().join("proc"), "x").expect("write");
        }),
    ];
    for (name, setup) in cases {
        let mut b = Bundle::busybox();
        b.args(&["/probe", "exit", "0"]);
        setup(&b);
        let out = run(&rt, &b, &format!("r11-{name}"));
        assert!(!out.success(), "{name}: must fail: {out}");
        closed_or_ok(&out);
        match (rt.kind(), name) {
            // runc 1.1.5 checks only for a symlink; a FIFO or file fails in mount(2).
            (Kind::Runc, "fifo" | "file") => {}
            _ => assert!(
                out.stderr_str()
                    .contains("must be mounted on ordinary directory"),
                "{name}: {out}"
            ),
        }
        markers.assert_untouched(name);
    }
}

/// Mount targets (a bind of a bundle directory at `/data`, a tmpfs at `/scratch`, a file bind
/// at `/etc/motd`) replaced by symlinks to host paths (absolute and `../` climbing), a FIFO and
/// a file of the wrong type.
#[test]
fn mount_targets_replaced() {
    let rt = runtime();
    let markers = Markers::new(&[("motd", "host motd\n"), ("data/keep", "host data\n")]);
    let abs = markers.path().to_path_buf();
    let climb =
        PathBuf::from("../../../../../../../../..").join(abs.strip_prefix("/").expect("absolute"));
    type Setup<'a> = (&'a str, Box<dyn Fn(&Bundle) + 'a>);
    let cases: Vec<Setup<'_>> = vec![
        (
            "abs-links",
            Box::new(|b: &Bundle| {
                symlink_in_rootfs(b, "data", &abs.join("data"));
                symlink_in_rootfs(b, "scratch", &abs);
                symlink_in_rootfs(b, "etc/motd", &abs.join("motd"));
            }),
        ),
        (
            "climbing-links",
            Box::new(|b: &Bundle| {
                symlink_in_rootfs(b, "data", &climb.join("data"));
                symlink_in_rootfs(b, "scratch", &climb);
                symlink_in_rootfs(b, "etc/motd", &climb.join("motd"));
            }),
        ),
        (
            "fifo-targets",
            Box::new(|b: &Bundle| {
                mkfifo(&b.rootfs().join("data"));
                mkfifo(&b.rootfs().join("etc/motd"));
            }),
        ),
        (
            "wrong-types",
            Box::new(|b: &Bundle| {
                std::fs::write(b.rootfs().join("data"), "file where a dir goes").expect("write");
                std::fs::create_dir_all(b.rootfs().join("etc/motd")).expect("mkdir");
            }),
        ),
    ];
    for (name, setup) in cases {
        let mut b = Bundle::busybox();
        let vol = b.path().join("vol");
        std::fs::create_dir_all(&vol).expect("vol");
        std::fs::write(vol.join("inside"), "volume\n").expect("vol file");
        let motd = b.path().join("motd");
        std::fs::write(&motd, "container motd\n").expect("motd");
        b.mount(
            json!({"destination": "/data", "type": "bind", "source": vol, "options": ["rbind"]}),
        )
        .mount(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs"}))
        .mount(json!({"destination": "/etc/motd", "type": "bind",
                          "source": motd, "options": ["bind", "ro"]}))
        .sh("cat /data/inside /etc/motd; touch /scratch/x && echo scratch-ok");
        setup(&b);
        let out = run(&rt, &b, &format!("mt-{name}"));
        if rt.kind() == Kind::Runc && name.ends_with("links") {
            // runc 1.1.5 resolves the links inside the rootfs (securejoin), makes the targets
            // there and mounts on them; the container's own link then leads elsewhere, so the
            // volume is not at /data, but nothing reaches the host (checked below).
            assert!(closed_or_ok(&out), "{name}: {out}");
        } else if closed_or_ok(&out) {
            assert_eq!(
                out.stdout_str(),
                "volume\ncontainer motd\nscratch-ok\n",
                "{name}: the mounts are not where the container sees them: {out}"
            );
        }
        markers.assert_untouched(name);
    }
}

/// `renameat2(RENAME_EXCHANGE)` of two names in one directory.
fn exchange(dir: &Path, a: &str, b: &str) {
    let _ = rustix::fs::renameat_with(
        rustix::fs::CWD,
        dir.join(a),
        rustix::fs::CWD,
        dir.join(b),
        rustix::fs::RenameFlags::EXCHANGE,
    );
}

/// A thread swapping `a` and `b` in `dir` until dropped.
struct Flipper {
    stop: Arc<AtomicBool>,
    flips: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Flipper {
    fn start(dir: PathBuf, a: &'static str, b: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flips = Arc::new(AtomicU64::new(0));
        let (s, f) = (stop.clone(), flips.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                exchange(&dir, a, b);
                f.fetch_add(1, Ordering::Relaxed);
            }
        });
        Self {
            stop,
            flips,
            handle: Some(handle),
        }
    }
}

impl Drop for Flipper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// CVE-2021-30465 / CVE-2025-52881 class: a sibling sharing a volume flips a directory and a
/// symlink to a host directory (absolute and climbing) while the runtime mounts a second
/// volume inside the shared one, 100 runs. No mount or file ever lands on the host side.
#[test]
fn race_shared_volume_symlink_exchange_100() {
    let rt = runtime();
    let markers = Markers::new(&[("keep", "host\n")]);
    let shared = tempfile::Builder::new()
        .prefix("berth-itest-shared-")
        .tempdir_in("/tmp")
        .expect("shared dir");
    std::fs::create_dir(shared.path().join("target")).expect("target dir");
    std::os::unix::fs::symlink(markers.path(), shared.path().join("swap")).expect("swap link");
    let inner = tempfile::tempdir_in("/tmp").expect("inner volume");
    std::fs::create_dir(inner.path().join("tmp")).expect("inner mount point");
    std::fs::write(inner.path().join("inner-file"), "inner\n").expect("inner file");
    let mut b = Bundle::busybox();
    b.mount(
        json!({"destination": "/shared", "type": "bind", "source": shared.path(),
                   "options": ["rbind"]}),
    )
    .mount(
        json!({"destination": "/shared/target", "type": "bind", "source": inner.path(),
                      "options": ["rbind", "ro"]}),
    )
    .mount(json!({"destination": "/shared/target/tmp", "type": "tmpfs", "source": "tmpfs"}))
    .sh(&format!(
        "awk '$4 == \"{}\" {{ print $5 }}' /proc/self/mountinfo",
        inner.path().display()
    ));
    // Control: without the attacker the config works.
    let out = run(&rt, &b, "race-vol-control");
    assert_eq!(out.assert_ok().stdout_str(), "/shared/target\n");
    let flipper = Flipper::start(shared.path().to_path_buf(), "target", "swap");
    let (mut ok, mut failed, mut escapes, mut misplaced) = (0, 0, 0, 0);
    for i in 0..100 {
        let out = run(&rt, &b, &format!("race-vol-{i}"));
        if closed_or_ok(&out) {
            // The sibling keeps renaming after the mount, so the volume may now sit at
            // /shared/swap; it must be inside the shared volume, nowhere else.
            let at = out.stdout_str();
            let inside = at == "/shared/target\n" || at == "/shared/swap\n";
            if rt.kind() == Kind::Runc && !inside {
                // runc 1.1.5 resolves the flipped link with securejoin and mounts on the
                // resolved path, which lies inside the rootfs (the container sees the volume
                // at the host-looking path): misplaced, not escaped.
                assert_eq!(
                    at.trim_end(),
                    markers.path().to_string_lossy(),
                    "run {i}: {out}"
                );
                misplaced += 1;
            } else {
                assert!(inside, "run {i}: the volume is mounted at {at:?}: {out}");
            }
            ok += 1;
        } else {
            failed += 1;
            if i == 0 {
                eprintln!(
                    "race_shared_volume: first failure: {}",
                    out.stderr_str().trim()
                );
            }
        }
        if rt.kind() == Kind::Runc {
            // CVE-2024-45310 class, present in runc 1.1.5: its MkdirAll of the nested mount
            // point can follow the flipped link and create `tmp` in the host directory. Only
            // that may appear; the marker stays and nothing is mounted there.
            if std::fs::symlink_metadata(markers.path().join("tmp")).is_ok() {
                escapes += 1;
                let _ = std::fs::remove_dir(markers.path().join("tmp"));
            }
        }
        markers.assert_untouched(&format!("run {i}"));
    }
    let flips = flipper.flips.load(Ordering::Relaxed);
    drop(flipper);
    assert!(flips > 1000, "the attacker barely ran ({flips} flips)");
    eprintln!(
        "race_shared_volume: {ok} ok ({misplaced} misplaced, runc only), {failed} failed closed, {escapes} host dirs made (runc only), {flips} flips"
    );
    markers.assert_untouched("after the race");
}

/// CVE-2025-31133 raced: two containers share one rootfs whose `/dev` comes from the image; a
/// sibling flips `/dev/null` with a symlink to a procfs file, 100 runs. Masked paths are the
/// 1:3 device in every run that starts, and the procfs file is untouched.
#[test]
fn race_dev_null_exchange_100() {
    let rt = runtime();
    let core_pattern = CorePattern::save();
    let mut b = Bundle::busybox();
    drop_mount(&mut b, "/dev");
    b.sh("stat -c '%n %F %t:%T' /proc/keys /proc/timer_list");
    let dev = b.rootfs().join("dev");
    std::fs::create_dir_all(&dev).expect("dev");
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", dev.join("evil")).expect("evil");
    let out = run(&rt, &b, "race-null-control");
    assert!(
        out.assert_ok()
            .stdout_str()
            .contains("/proc/keys character special file 1:3"),
        "control run without the attacker"
    );
    let flipper = Flipper::start(dev.clone(), "null", "evil");
    let (mut ok, mut failed, mut escapes) = (0, 0, 0);
    for i in 0..100 {
        let out = run(&rt, &b, &format!("race-null-{i}"));
        let masked = ["/proc/keys", "/proc/timer_list"].iter().all(|f| {
            out.stdout_str()
                .contains(&format!("{f} character special file 1:3"))
        });
        if rt.kind() == Kind::Runc && !(out.success() && masked) {
            // CVE-2025-31133 (runc 1.1.5): a run whose masks followed the flipped link does
            // not show the 1:3 device (or the container's stat fails); counted as an escape,
            // the host file is checked below.
            assert!(!out.timed_out, "run {i}: {out}");
            escapes += 1;
        } else if closed_or_ok(&out) {
            for f in ["/proc/keys", "/proc/timer_list"] {
                assert!(
                    out.stdout_str()
                        .contains(&format!("{f} character special file 1:3")),
                    "run {i}: {f} is not masked by the 1:3 device: {out}"
                );
            }
            ok += 1;
        } else {
            failed += 1;
        }
    }
    let flips = flipper.flips.load(Ordering::Relaxed);
    drop(flipper);
    eprintln!(
        "race_dev_null: {ok} ok, {failed} failed closed, {escapes} unmasked (runc only), {flips} flips"
    );
    if rt.kind() != Kind::Runc {
        assert_eq!(escapes, 0);
    }
    assert!(flips > 1000, "the attacker barely ran ({flips} flips)");
    // runc 1.1.5 may write the host's core_pattern here (see r09); the guard puts it back.
    if rt.kind() != Kind::Runc {
        assert!(
            !core_pattern.changed(),
            "the host's kernel.core_pattern changed"
        );
    }
}
