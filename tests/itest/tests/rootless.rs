//! Rootless: the runtime run by an unprivileged user (made here: `berth-itest`, with
//! `/etc/subuid` and `/etc/subgid` ranges), on a bundle whose config comes from
//! `<runtime> spec --rootless` run as that user. The container is root inside a user
//! namespace mapping that user; it has no cgroup of its own (this host's cgroups are not
//! delegated), device nodes are the host's bound in, state lives in `$XDG_RUNTIME_DIR/<name>`.
//!
//! Commands run through `setpriv --reuid --regid --init-groups` with a clean environment.
//! Deliberate differences from runc 1.1.5 are marked with `Kind::Runc` branches.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use berth_itest::{
    Bundle, Cmd, Kind, Leftovers, MasterIo, Output, Pty, Runtime, runtime, runtime_exclusive,
    strip_cr,
};
use serde_json::{Value, json};

const USER: &str = "berth-itest";
const T: Duration = Duration::from_secs(15);

/// The test user's uid, gid and first subordinate uid and gid (created once per machine).
#[derive(Debug, Clone, Copy)]
struct TestUser {
    uid: u32,
    gid: u32,
    subuid: u32,
    subgid: u32,
}

fn id_of(flag: &str) -> Option<u32> {
    let out = Cmd::new("id").args([flag, USER]).run();
    out.success()
        .then(|| out.stdout_str().trim().parse().ok())
        .flatten()
}

/// The first range of `user` in an /etc/sub{u,g}id file, adding one of 65536 ids after every
/// existing range when there is none.
fn subid(file: &str, user: &str) -> u32 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut end = 100_000u64;
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() != 3 {
            continue;
        }
        let (start, count): (u64, u64) = (f[1].parse().unwrap_or(0), f[2].parse().unwrap_or(0));
        if f[0] == user && count >= 65536 {
            return start as u32;
        }
        end = end.max(start + count);
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(file)
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    use std::io::Write;
    writeln!(f, "{user}:{end}:65536").expect("append subordinate ids");
    end as u32
}

fn test_user() -> TestUser {
    static U: OnceLock<TestUser> = OnceLock::new();
    *U.get_or_init(|| {
        // Serialise against other test processes making the user at the same time.
        let lock = std::fs::File::create("/tmp/berth-itest-rootless.lock").expect("lock file");
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).expect("flock");
        if id_of("-u").is_none() {
            Cmd::new("useradd")
                .args(["--create-home", "--shell", "/bin/sh", USER])
                .ok();
        }
        TestUser {
            uid: id_of("-u").expect("test user uid"),
            gid: id_of("-g").expect("test user gid"),
            subuid: subid("/etc/subuid", USER),
            subgid: subid("/etc/subgid", USER),
        }
    })
}

/// What a rootless test owns: the user, an `XDG_RUNTIME_DIR`, a bundle the user may write.
struct Rootless<'a> {
    rt: &'a Runtime,
    user: TestUser,
    xdg: tempfile::TempDir,
    bundle: Bundle,
}

impl<'a> Rootless<'a> {
    /// A busybox bundle (rootfs stays root's and read-only for the user) whose config.json is
    /// `<runtime> spec --rootless`, run as the user.
    fn new(rt: &'a Runtime) -> Self {
        let user = test_user();
        let xdg = tempfile::Builder::new()
            .prefix("berth-itest-xdg-")
            .tempdir_in("/tmp")
            .expect("xdg dir");
        let chown = |p: &Path| {
            rustix::fs::chown(
                p,
                Some(rustix::fs::Uid::from_raw(user.uid)),
                Some(rustix::fs::Gid::from_raw(user.gid)),
            )
            .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()))
        };
        chown(xdg.path());
        let bundle = Bundle::busybox();
        std::fs::remove_file(bundle.config_path()).expect("rm config.json");
        chown(bundle.path());
        std::fs::set_permissions(bundle.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod bundle");
        rt.guard().track_bundle(bundle.path());
        let mut me = Self {
            rt,
            user,
            xdg,
            bundle,
        };
        me.cmd_no_root(["spec", "--rootless"])
            .current_dir(me.bundle.path())
            .ok();
        let text =
            std::fs::read_to_string(me.bundle.config_path()).expect("spec wrote config.json");
        let mut config: Value = serde_json::from_str(&text).expect("config.json parses");
        config["process"]["terminal"] = json!(false);
        me.bundle.config(|c| *c = config);
        me
    }

    /// `<runtime> ARGS` as the user, default `--root`.
    fn cmd_no_root<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Cmd::new("setpriv")
            .args([
                format!("--reuid={}", self.user.uid),
                format!("--regid={}", self.user.gid),
                "--init-groups".into(),
                "--".into(),
                "env".into(),
                "-i".into(),
                format!("HOME=/home/{USER}"),
                format!("USER={USER}"),
                "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into(),
            ])
            .arg(format!("XDG_RUNTIME_DIR={}", self.xdg.path().display()))
            .arg(self.rt.bin())
            .args(args)
            .timeout(T)
    }

    /// The state root the runtime uses for this user by default.
    fn state_root(&self) -> PathBuf {
        let name = if self.rt.kind() == Kind::Runc {
            "runc"
        } else {
            "berth"
        };
        self.xdg.path().join(name)
    }

    fn run(&self, id: &str) -> Output {
        self.cmd_no_root(["run", "--bundle"])
            .arg(self.bundle.path())
            .arg(id)
            .run()
    }

    fn config(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        self.bundle.config(f);
        self
    }
}

impl Drop for Rootless<'_> {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(self.state_root()) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.cmd_no_root(["delete", "--force", id.as_str()]).run();
            }
        }
    }
}

/// Exit 1, exactly one stderr line, naming every one of `names`.
#[track_caller]
fn clear_err(out: &Output, names: &[&str]) {
    assert_eq!(out.code(), Some(1), "exit status: {out}");
    let err = out.stderr_str();
    // runc 1.1.5 adds a warning line ("unable to get oom kill count") to its error.
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("level=warning"))
        .collect();
    assert_eq!(lines.len(), 1, "want one stderr line: {out}");
    for n in names {
        assert!(lines[0].contains(n), "stderr does not name {n:?}: {out}");
    }
}

/// The acceptance test: as the unprivileged user, `run` of the busybox bundle made
/// with `spec --rootless` prints `id` showing uid 0 inside and the mapping in uid_map.
#[test]
fn spec_rootless_run_shows_root_inside_and_the_map() {
    let rt = runtime();
    let mut r = Rootless::new(&rt);
    let (uid, gid) = (r.user.uid, r.user.gid);
    let spec = r.bundle.spec().clone();
    assert_eq!(
        spec["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": uid, "size": 1}]),
        "spec --rootless maps the caller"
    );
    r.config(|c| {
        c["process"]["args"] = json!(["sh", "-c",
            "id; cat /proc/self/uid_map /proc/self/gid_map; stat -c '%n %t:%T' /dev/null; ls /sys/fs/cgroup >/dev/null && echo cgroupfs"]);
    });
    let id = rt.id("rootless-id");
    let out = r.run(&id);
    assert!(out.success(), "{out}");
    let text = out.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("uid=0(root) gid=0(root)"), "{out}");
    let map = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(map(lines[1]), ["0", &uid.to_string(), "1"], "{out}");
    assert_eq!(map(lines[2]), ["0", &gid.to_string(), "1"], "{out}");
    assert_eq!(lines[3], "/dev/null 1:3", "{out}");
    assert_eq!(lines[4], "cgroupfs", "{out}");
    // `run` without --keep removed the container from the default root.
    let left: Vec<_> = std::fs::read_dir(r.state_root())
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "state left in {}: {left:?}",
        r.state_root().display()
    );
}

/// State under `$XDG_RUNTIME_DIR/<runtime>`; `state`, `exec` and `delete` find it there.
#[test]
fn default_root_is_xdg_runtime_dir_and_exec_works() {
    let rt = runtime();
    let mut r = Rootless::new(&rt);
    r.config(|c| c["process"]["args"] = json!(["/probe", "sleep-forever"]));
    let id = rt.id("rootless-xdg");
    r.cmd_no_root(["run", "-d", "--bundle"])
        .arg(r.bundle.path())
        .arg(&id)
        .ok();
    assert!(
        r.state_root().join(&id).is_dir(),
        "no state dir in {}",
        r.state_root().display()
    );
    let state: Value = serde_json::from_slice(&r.cmd_no_root(["state", id.as_str()]).ok().stdout)
        .expect("state JSON");
    assert_eq!(state["status"], "running");
    let out = r
        .cmd_no_root([
            "exec",
            id.as_str(),
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map",
        ])
        .ok();
    let text = out.stdout_str();
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words, ["0", "0", &r.user.uid.to_string(), "1"], "{out}");
    r.cmd_no_root(["delete", "--force", id.as_str()]).ok();
    assert!(!r.state_root().join(&id).exists());
}

/// A terminal in a rootless container: devpts without `gid=`, the pty owned by root inside.
#[test]
fn terminal_in_a_rootless_container() {
    let rt = runtime();
    let mut r = Rootless::new(&rt);
    r.config(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["args"] = json!(["sh", "-c", "tty; stat -c '%u' $(tty)"]);
    });
    let mut pty = Pty::new();
    let id = rt.id("rootless-tty");
    let running = pty.spawn(
        r.cmd_no_root(["run", "--bundle"])
            .arg(r.bundle.path())
            .arg(&id),
    );
    let text = String::from_utf8_lossy(&strip_cr(&pty.read_until_eof(T))).into_owned();
    let out = running.wait();
    assert!(out.success(), "{text:?} {out}");
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>(),
        ["/dev/pts/0", "0"],
        "{text:?}"
    );
}

/// More than the user's own id goes through newuidmap/newgidmap with /etc/subuid and
/// /etc/subgid; setgroups stays allowed, so a uid from the subordinate range works in exec.
#[test]
fn multi_range_maps_through_newuidmap() {
    let rt = runtime();
    let mut r = Rootless::new(&rt);
    let u = r.user;
    r.config(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": u.uid, "size": 1},
                                          {"containerID": 1, "hostID": u.subuid, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": u.gid, "size": 1},
                                          {"containerID": 1, "hostID": u.subgid, "size": 65536}]);
        c["process"]["args"] = json!(["/probe", "sleep-forever"]);
    });
    let id = rt.id("rootless-multi");
    r.cmd_no_root(["run", "-d", "--bundle"])
        .arg(r.bundle.path())
        .arg(&id)
        .ok();
    let out = r
        .cmd_no_root([
            "exec",
            id.as_str(),
            "cat",
            "/proc/self/uid_map",
            "/proc/self/setgroups",
        ])
        .ok();
    let text = out.stdout_str();
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "0",
            &u.uid.to_string(),
            "1",
            "1",
            &u.subuid.to_string(),
            "65536",
            "allow"
        ],
        "{out}"
    );
    let out = r
        .cmd_no_root(["exec", "--user", "1000:1000", id.as_str(), "id"])
        .ok();
    assert!(
        out.stdout_str()
            .starts_with("uid=1000(user) gid=1000(user)"),
        "{out}"
    );
}

/// A host range the user was not given in /etc/subuid: newuidmap refuses; the error names
/// linux.uidMappings in one line and nothing is left behind (runc prints its nsexec failures
/// on several lines).
#[test]
fn map_outside_the_subordinate_range_is_refused() {
    let rt = runtime_exclusive();
    let mut r = Rootless::new(&rt);
    let u = r.user;
    r.config(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": u.uid, "size": 1},
                                          {"containerID": 1, "hostID": 4_000_000_000u32, "size": 10}]);
        c["process"]["args"] = json!(["/probe", "exit", "0"]);
    });
    let id = rt.id("rootless-badmap");
    let l = Leftovers::snapshot(&rt, &[&id], &[r.bundle.path()]);
    let out = r.run(&id);
    if rt.kind() == Kind::Runc {
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(out.stderr_str().contains("newuid"), "{out}");
    } else {
        clear_err(&out, &["linux.uidMappings", "newuidmap", "4000000000"]);
    }
    l.assert_unchanged();
    assert!(!r.state_root().join(&id).exists(), "state dir left behind");
}

/// Limits asked for but no cgroup permission: an error naming the resource (runc: "cannot set
/// pids limit: container could not join or create cgroup"), nothing left behind.
#[test]
fn limits_without_cgroup_permission_fail_clearly() {
    let rt = runtime_exclusive();
    let mut r = Rootless::new(&rt);
    r.config(|c| {
        c["linux"]["resources"] = json!({"pids": {"limit": 10}});
        c["process"]["args"] = json!(["/probe", "exit", "0"]);
    });
    let id = rt.id("rootless-limits");
    let l = Leftovers::snapshot(&rt, &[&id], &[r.bundle.path()]);
    let out = r.run(&id);
    if rt.kind() == Kind::Runc {
        clear_err(&out, &["cannot set pids limit"]);
    } else {
        clear_err(&out, &["linux.resources.pids", "rootless", "cgroup"]);
    }
    l.assert_unchanged();
    assert!(!r.state_root().join(&id).exists(), "state dir left behind");
}

/// `--rootless false`: the cgroup is required, and the user may not make one.
#[test]
fn rootless_false_requires_a_cgroup() {
    let rt = runtime_exclusive();
    let mut r = Rootless::new(&rt);
    r.config(|c| c["process"]["args"] = json!(["/probe", "exit", "0"]));
    let id = rt.id("rootless-false");
    let l = Leftovers::snapshot(&rt, &[&id], &[r.bundle.path()]);
    let out = r
        .cmd_no_root(["--rootless", "false", "run", "--bundle"])
        .arg(r.bundle.path())
        .arg(&id)
        .run();
    clear_err(&out, &["/sys/fs/cgroup", "permission denied"]);
    l.assert_unchanged();
    assert!(!r.state_root().join(&id).exists(), "state dir left behind");
}

/// A config without a user namespace cannot run unprivileged: one clear line.
#[test]
fn no_user_namespace_is_refused() {
    let rt = runtime_exclusive();
    let mut r = Rootless::new(&rt);
    r.config(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .retain(|n| n["type"] != "user");
        c["linux"]
            .as_object_mut()
            .expect("linux")
            .retain(|k, _| k != "uidMappings" && k != "gidMappings");
        c["process"]["args"] = json!(["/probe", "exit", "0"]);
    });
    let id = rt.id("rootless-nouserns");
    let l = Leftovers::snapshot(&rt, &[&id], &[r.bundle.path()]);
    let out = r.run(&id);
    if rt.kind() == Kind::Runc {
        clear_err(&out, &["rootless container requires user namespaces"]);
    } else {
        clear_err(&out, &["linux.namespaces", "user namespace", "rootless"]);
    }
    l.assert_unchanged();
}

/// `--rootless` takes true, false or auto (runc parses it as a bool or "auto"); a bad value is
/// one clear line, and `--rootless true` as root still runs (cgroups are merely optional).
#[test]
fn rootless_flag_values() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.args(&["/probe", "exit", "0"]);
    let id = rt.id("rootless-flag");
    let out = rt
        .cmd(["--rootless", "bogus", "run", "--bundle"])
        .arg(b.path())
        .arg(&id)
        .run();
    if rt.kind() == Kind::Runc {
        clear_err(&out, &["ParseBool", "bogus"]);
    } else {
        clear_err(&out, &["--rootless", "bogus"]);
    }
    for v in ["true", "false", "auto"] {
        let id = rt.id(&format!("rootless-flag-{v}"));
        rt.cmd(["--rootless", v, "run", "--bundle"])
            .arg(b.path())
            .arg(&id)
            .ok();
    }
}
