//! What the container sees: namespaces, mounts, /dev, masked and read-only paths, process
//! attributes and cgroup limits, each observed from inside the container.

use std::collections::BTreeSet;
use std::time::Duration;

use berth_itest::{Bundle, Cmd, Kind, Runtime, probe_line, runtime};
use serde_json::json;

const T: Duration = Duration::from_secs(10);

/// Runs `script` with `sh -c` in a foreground container and returns stdout (asserting exit 0).
#[track_caller]
fn sh(rt: &Runtime, b: &mut Bundle, name: &str, script: &str) -> String {
    b.sh(script);
    rt.run_cmd(b, &rt.id(name)).ok().stdout_str()
}

/// The mount point, per-mount options, fs type and super options of each mountinfo line.
fn mounts(mountinfo: &str) -> Vec<(String, String, String, String)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            Some((
                pre.get(4)?.to_string(),
                pre.get(5)?.to_string(),
                post.first()?.to_string(),
                post.get(2).unwrap_or(&"").to_string(),
            ))
        })
        .collect()
}

fn opts(s: &str) -> BTreeSet<&str> {
    s.split(',').collect()
}

#[test]
fn pid_1_is_the_container_process() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.probe(&["ctty"]);
    let out = rt.run_cmd(&b, &rt.id("pid1")).ok();
    assert_eq!(probe_line(&out.stdout_str(), "ctty")["pid"], "1", "{out}");

    let b = Bundle::busybox();
    let id = rt.id("pid1-exec");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);
    let out = rt.exec_cmd(&id, &["cat", "/proc/1/cmdline"]).ok();
    assert_eq!(out.stdout, b"/probe\0sleep-forever\0", "{out}");
}

#[test]
fn hostname_from_config() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.hostname("berth-test-host");
    assert_eq!(sh(&rt, &mut b, "hostname", "hostname"), "berth-test-host\n");
}

#[test]
fn namespaces_differ_from_the_host() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.namespace("cgroup", None);
    let kinds = ["uts", "ipc", "net", "mnt", "pid", "cgroup", "user"];
    let script: String = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}; "))
        .collect();
    let out = sh(&rt, &mut b, "ns", &script);
    let inside: Vec<&str> = out.lines().collect();
    assert_eq!(inside.len(), kinds.len(), "{out}");
    for (k, got) in kinds.iter().zip(inside) {
        let host = std::fs::read_link(format!("/proc/self/ns/{k}")).expect("host ns");
        let host = host.to_string_lossy();
        if *k == "user" {
            assert_eq!(got, host, "no user namespace was asked for");
        } else {
            assert_ne!(got, host, "{k} namespace is the host's");
        }
    }
}

/// A new network namespace is the container's own from its first step: only `lo` in procfs
/// and in the sysfs mounted inside (sysfs shows the namespace of whoever mounts it), and the
/// createRuntime hook, which configures it for podman's and containerd's network plugins, sees
/// the same namespace as the container's process (berth makes it ahead, see namespaces.rs).
#[test]
fn a_new_network_namespace_is_the_containers_from_the_start() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let out_file = dir.path().join("hook-net");
    let mut b = Bundle::busybox();
    let hook = format!(
        "p=$(/bin/busybox sed -n 's/.*\"pid\":\\([0-9]*\\).*/\\1/p'); \
         /bin/busybox readlink /proc/$p/ns/net > {}",
        out_file.display()
    );
    b.config(|c| {
        c["hooks"] =
            json!({"createRuntime": [{"path": "/bin/busybox", "args": ["sh", "-c", hook]}]});
    });
    let out = sh(
        &rt,
        &mut b,
        "netns",
        "readlink /proc/self/ns/net; ls /sys/class/net; tail -n +3 /proc/net/dev | cut -d: -f1",
    );
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let host = std::fs::read_link("/proc/self/ns/net").expect("host netns");
    assert_eq!(lines.len(), 3, "{out}");
    assert_ne!(lines[0], host.to_string_lossy(), "{out}");
    assert_eq!(&lines[1..], ["lo", "lo"], "{out}");
    let hook_saw = std::fs::read_to_string(&out_file).expect("the hook ran");
    assert_eq!(
        hook_saw.trim(),
        lines[0],
        "the hook's view of the init's netns"
    );
}

#[test]
fn joins_a_namespace_by_path() {
    let rt = runtime();
    let holder = Cmd::new("unshare")
        .args(["--net", "--uts", "sleep", "1000"])
        .timeout(Duration::from_secs(60))
        .spawn();
    let net = format!("/proc/{}/ns/net", holder.pid());
    let target = berth_itest::wait_until("unshare holder in its netns", T, || {
        let l = std::fs::read_link(&net).ok()?;
        (l != std::fs::read_link("/proc/self/ns/net").ok()?).then_some(l)
    });
    let mut b = Bundle::busybox();
    b.namespace("network", Some(&net));
    let out = sh(&rt, &mut b, "join-net", "readlink /proc/self/ns/net");
    holder.kill();
    assert_eq!(
        out.trim(),
        target.to_string_lossy(),
        "container did not join {net}"
    );
}

#[test]
fn default_mounts_are_present() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    let info = sh(&rt, &mut b, "mounts", "cat /proc/self/mountinfo");
    let m = mounts(&info);
    for (point, fstype) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
    ] {
        assert!(
            m.iter().any(|(p, _, t, _)| p == point && t == fstype),
            "no {fstype} on {point} in:\n{info}"
        );
    }
    let devpts = m.iter().find(|(p, ..)| p == "/dev/pts").expect("devpts");
    let sup = opts(&devpts.3);
    for o in ["gid=5", "mode=620", "ptmxmode=666"] {
        assert!(sup.contains(o), "devpts options {:?} lack {o}", devpts.3);
    }
    let sys = m.iter().find(|(p, ..)| p == "/sys").expect("sysfs");
    assert!(
        opts(&sys.1).contains("ro"),
        "/sys must be read-only: {sys:?}"
    );
}

fn dev_listing(rt: &Runtime, terminal: bool, name: &str) -> String {
    let mut b = Bundle::busybox();
    b.sh("ls -A /dev | tr '\\n' ' '; echo; stat -c '%n %F %t:%T %a' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done");
    if !terminal {
        return rt.run_cmd(&b, &rt.id(name)).ok().stdout_str();
    }
    b.terminal(true);
    let mut pty = berth_itest::Pty::new();
    let running = pty.spawn(rt.run_cmd(&b, &rt.id(name)));
    use berth_itest::MasterIo;
    let text = pty.read_until_eof(T);
    running.wait().assert_ok();
    String::from_utf8_lossy(&berth_itest::strip_cr(&text)).into_owned()
}

#[test]
fn dev_has_exactly_the_default_devices() {
    let rt = runtime();
    let expect_stat = "/dev/null character special file 1:3 666\n\
        /dev/zero character special file 1:5 666\n\
        /dev/full character special file 1:7 666\n\
        /dev/random character special file 1:8 666\n\
        /dev/urandom character special file 1:9 666\n\
        /dev/tty character special file 5:0 666\n\
        pts/ptmx\n/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\n";
    let base = [
        "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
        "stdout", "tty", "urandom", "zero",
    ];
    for terminal in [false, true] {
        let out = dev_listing(&rt, terminal, if terminal { "dev-tty" } else { "dev" });
        let (listing, stats) = out.split_once('\n').expect("two parts");
        let got: BTreeSet<&str> = listing.split_whitespace().collect();
        let mut want: BTreeSet<&str> = base.into_iter().collect();
        if terminal {
            want.insert("console");
        }
        if rt.kind() == Kind::Crun {
            // crun 1.8 adds the /dev/core -> /proc/kcore symlink.
            want.insert("core");
        }
        assert_eq!(got, want, "terminal={terminal}: /dev is {listing:?}");
        assert_eq!(stats, expect_stat, "terminal={terminal}");
    }
}

#[test]
fn masked_paths_read_empty() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.config(|c| {
        c["linux"]["maskedPaths"]
            .as_array_mut()
            .expect("masked")
            .push(json!("/proc/berth-nonexistent"))
    });
    let out = sh(
        &rt,
        &mut b,
        "masked",
        "for f in /proc/keys /proc/timer_list /proc/kcore; do test -e $f && echo \"$f $(wc -c < $f)\"; done; \
         echo firmware $(ls -A /sys/firmware | wc -l); test -e /proc/berth-nonexistent || echo absent",
    );
    for line in out.lines() {
        if let Some((f, n)) = line.split_once(' ') {
            if f.starts_with("/proc/") {
                assert_eq!(n, "0", "{f} is not masked:\n{out}");
            }
        }
    }
    assert!(out.contains("/proc/keys 0"), "{out}");
    assert!(
        out.contains("firmware 0"),
        "/sys/firmware not masked:\n{out}"
    );
    assert!(out.contains("absent"), "{out}");
}

#[test]
fn readonly_paths_reject_writes() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    // (/proc/sysrq-trigger, also in the default list, does not exist on every kernel.)
    b.sh("echo 1 > /proc/sys/net/ipv4/ip_forward; echo rc=$?; echo x > /proc/sys/kernel/domainname; echo rc=$?");
    let out = rt.run_cmd(&b, &rt.id("ro-paths")).run();
    let text = out.stdout_str();
    assert_eq!(text, "rc=1\nrc=1\n", "{out}");
    let err = out.stderr_str();
    assert_eq!(
        err.matches("Read-only file system").count(),
        2,
        "want EROFS twice: {out}"
    );
}

#[test]
fn readonly_rootfs() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.readonly(true).sh("touch /newfile; echo rc=$?");
    let out = rt.run_cmd(&b, &rt.id("ro-root")).run();
    assert_eq!(out.stdout_str(), "rc=1\n", "{out}");
    assert!(out.stderr_str().contains("Read-only file system"), "{out}");

    let mut b = Bundle::busybox();
    b.readonly(false);
    let out = sh(&rt, &mut b, "rw-root", "touch /newfile && echo ok");
    assert_eq!(out, "ok\n");
    assert!(
        b.rootfs().join("newfile").exists(),
        "write did not land in the bundle's rootfs"
    );
}

#[test]
fn rlimits_env_cwd_umask() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.config(|c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 777, "hard": 888}]);
        c["process"]["user"]["umask"] = json!(0o027);
    })
    .env("BERTH_ENV=some value")
    .cwd("/tmp");
    let out = sh(
        &rt,
        &mut b,
        "attrs",
        "ulimit -n; ulimit -Hn; pwd; umask; echo \"$BERTH_ENV\"",
    );
    assert_eq!(out, "777\n888\n/tmp\n0027\nsome value\n");
}

#[test]
fn user_and_groups() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.user(1000, 1000).additional_gids(&[5, 65534]);
    let out = sh(
        &rt,
        &mut b,
        "user",
        "id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups):' /proc/self/status",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "1000", "{out}");
    let groups: BTreeSet<&str> = lines[2].split_whitespace().collect();
    assert_eq!(groups, BTreeSet::from(["1000", "5", "65534"]), "{out}");
    assert!(out.contains("Uid:\t1000\t1000\t1000\t1000"), "{out}");
}

#[test]
fn no_new_privileges_and_oom_score_adj() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.config(|c| c["process"]["oomScoreAdj"] = json!(123));
    let out = sh(
        &rt,
        &mut b,
        "nnp-on",
        "grep NoNewPrivs /proc/self/status; cat /proc/self/oom_score_adj",
    );
    assert_eq!(out, "NoNewPrivs:\t1\n123\n");

    let mut b = Bundle::busybox();
    b.config(|c| c["process"]["noNewPrivileges"] = json!(false));
    let out = sh(&rt, &mut b, "nnp-off", "grep NoNewPrivs /proc/self/status");
    assert_eq!(out, "NoNewPrivs:\t0\n");
}

#[test]
fn capabilities_from_config() {
    let rt = runtime();
    // CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29): runc's default set.
    let want = format!("{:016x}", (1u64 << 5) | (1 << 10) | (1 << 29));
    let zero = "0000000000000000".to_string();
    // root with runc's default set: the kernel clears the ambient set when root execs (root
    // counts as having privileged file capabilities).
    let mut b = Bundle::busybox();
    b.probe(&["caps"]);
    let out = rt.run_cmd(&b, &rt.id("caps-root")).ok();
    let caps = probe_line(&out.stdout_str(), "caps");
    for (k, v) in [
        ("prm", &want),
        ("eff", &want),
        ("bnd", &want),
        ("inh", &zero),
        ("amb", &zero),
    ] {
        assert_eq!(&caps[k], v, "root {k}: {out}");
    }
    // A user keeps ambient capabilities across execve only if they are also inheritable.
    let mut b = Bundle::busybox();
    b.user(1000, 1000).probe(&["caps"]).config(|c| {
        c["process"]["capabilities"]["inheritable"] =
            c["process"]["capabilities"]["bounding"].clone()
    });
    let out = rt.run_cmd(&b, &rt.id("caps-user")).ok();
    let caps = probe_line(&out.stdout_str(), "caps");
    for k in ["prm", "eff", "bnd", "inh", "amb"] {
        assert_eq!(caps[k], want, "uid 1000 {k}: {out}");
    }
}

#[test]
fn sysctl_in_a_new_netns() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.config(|c| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"}));
    assert_eq!(
        sh(&rt, &mut b, "sysctl", "cat /proc/sys/net/ipv4/ip_forward"),
        "1\n"
    );
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("host sysctl");
    // The host's value is whatever it was; only the container's netns got 1. (If the host's is
    // 1 already the check above still proves the write did not fail.)
    assert!(host.trim() == "0" || host.trim() == "1");
}

#[test]
fn rootfs_propagation() {
    let rt = runtime();
    let root_line = |prop: &str, name: &str| {
        let mut b = Bundle::busybox();
        b.config(|c| c["linux"]["rootfsPropagation"] = json!(prop));
        let info = sh(&rt, &mut b, name, "cat /proc/self/mountinfo");
        let line = info
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/"))
            .unwrap_or_else(|| panic!("no / in {info}"))
            .to_string();
        // Optional fields sit between the mount options and " - ".
        let pre = line.split(" - ").next().unwrap_or_default().to_string();
        pre.split(' ')
            .skip(6)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let private = root_line("private", "prop-private");
    assert!(
        private.is_empty(),
        "private root has propagation fields {private:?}"
    );
    let shared = root_line("shared", "prop-shared");
    if rt.kind() == Kind::Runc {
        // runc 1.1.5 applies rootfsPropagation to the old root before pivot_root and makes the
        // rootfs' parent private, so with a private host "/" the new root shows no peer group.
        assert!(
            !shared.iter().any(|f| f.starts_with("master:")),
            "{shared:?}"
        );
    } else {
        assert!(
            shared.iter().any(|f| f.starts_with("shared:")),
            "shared root: {shared:?}"
        );
    }
}

#[test]
fn bind_mount_options_and_tmpfs_size() {
    let rt = runtime();
    let host = tempfile::tempdir().expect("host dir");
    std::fs::write(host.path().join("hello"), "from host\n").expect("write");
    let mut b = Bundle::busybox();
    b.mount(json!({
        "destination": "/mnt/data",
        "type": "bind",
        "source": host.path(),
        "options": ["bind", "ro", "nosuid", "nodev", "noexec"]
    }))
    .mount(json!({
        "destination": "/scratch",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["size=1m", "mode=1777", "nosuid"]
    }));
    let out = sh(
        &rt,
        &mut b,
        "binds",
        "cat /mnt/data/hello; touch /mnt/data/x 2>/dev/null || echo ro-ok; \
         stat -c %a /scratch; cat /proc/self/mountinfo",
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("from host"), "{out}");
    assert_eq!(lines.next(), Some("ro-ok"), "{out}");
    assert_eq!(lines.next(), Some("1777"), "{out}");
    let m = mounts(&out);
    let data = m
        .iter()
        .find(|(p, ..)| p == "/mnt/data")
        .unwrap_or_else(|| panic!("{out}"));
    let o = opts(&data.1);
    for want in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(
            o.contains(want),
            "/mnt/data options {:?} lack {want}",
            data.1
        );
    }
    let scratch = m
        .iter()
        .find(|(p, ..)| p == "/scratch")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(scratch.2, "tmpfs");
    assert!(
        opts(&scratch.3).contains("size=1024k"),
        "tmpfs size: {scratch:?}"
    );
    assert!(
        !host.path().join("x").exists(),
        "write went through a ro bind mount"
    );
}

#[test]
fn linux_devices_are_created() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.config(|c| {
        c["linux"]["devices"] = json!([
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
            {"path": "/dev/berth-made-up", "type": "c", "major": 1, "minor": 7, "fileMode": 416, "uid": 1000, "gid": 5}
        ]);
    });
    let out = sh(
        &rt,
        &mut b,
        "devices",
        "stat -c '%n %F %t:%T %a %u %g' /dev/fuse /dev/berth-made-up",
    );
    assert_eq!(
        out,
        "/dev/fuse character special file a:e5 666 0 0\n\
         /dev/berth-made-up character special file 1:7 640 1000 5\n"
    );
}

#[test]
fn cgroup_limits_are_visible_inside() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.config(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 67108864});
        c["linux"]["resources"]["pids"] = json!({"limit": 42});
    });
    // Find each controller's cgroup through /proc/self/cgroup: the file is either at the path
    // under the mount (no cgroup namespace, whole hierarchy mounted) or at the mount's root (the
    // container's own cgroup is what is mounted, or a cgroup namespace).
    let script = r#"
v1() { p=$(grep -E "^[0-9]+:([^:]*,)?$1(,[^:]*)?:" /proc/self/cgroup | cut -d: -f3)
       for f in /sys/fs/cgroup/$1$p/$2 /sys/fs/cgroup/$1/$2; do
         if [ -f "$f" ]; then cat "$f"; return; fi; done; echo "missing $1/$2 ($p)"; }
v1 memory memory.limit_in_bytes
v1 pids pids.max
"#;
    let out = sh(&rt, &mut b, "cgroups", script);
    assert_eq!(out, "67108864\n42\n");
}

/// The device cgroup rules hold inside: a node may be made for any device (`c *:* m`), but
/// only the allowed ones open (`/dev/mem` is 1:1 and not among them; `/dev/null` is).
#[test]
fn device_cgroup_rules_hold_inside() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    let script = r#"
mknod /dev/mem-test c 1 1 2>&1 && echo made
head -c 1 /dev/mem-test >/dev/null 2>/tmp/err || echo "refused: $(cat /tmp/err)"
echo x >/dev/null && echo null-ok
"#;
    b.config(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_MKNOD"));
        }
    });
    let out = sh(&rt, &mut b, "devcg", script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "made", "{out}");
    assert!(
        lines[1].starts_with("refused:") && lines[1].contains("Operation not permitted"),
        "{out}"
    );
    assert_eq!(lines[2], "null-ok", "{out}");
}

/// A mount the spec lists after the `cgroup` mount, at a path under it, covers the bound
/// hierarchy (spec order), even though berth binds the container's own cgroup directories as
/// late as it can; one elsewhere leaves the hierarchies bound.
#[test]
fn a_later_mount_under_the_cgroup_mount_comes_after_its_binds() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.config(|c| {
        c["linux"]["resources"]["pids"] = json!({"limit": 43});
        let mounts = c["mounts"].as_array_mut().unwrap();
        assert_eq!(
            mounts.last().unwrap()["type"],
            "cgroup",
            "the cgroup mount is last"
        );
        mounts.push(
            json!({"destination": "/sys/fs/cgroup/pids", "type": "tmpfs",
            "source": "tmpfs", "options": ["size=64k"]}),
        );
        mounts.push(json!({"destination": "/mnt/after", "type": "tmpfs", "source": "tmpfs"}));
    });
    let script = r#"
ls -A /sys/fs/cgroup/pids | wc -l
cat /sys/fs/cgroup/memory/memory.limit_in_bytes >/dev/null && echo memory-bound
grep -c " /mnt/after " /proc/self/mountinfo
"#;
    let out = sh(&rt, &mut b, "cgroup-order", script);
    assert_eq!(out, "0\nmemory-bound\n1\n");
}

#[test]
fn cgroup_limits_from_the_host_side() {
    let rt = runtime();
    let mut b = Bundle::busybox();
    b.config(|c| c["linux"]["resources"]["pids"] = json!({"limit": 17}));
    let id = rt.id("cgroup-host");
    rt.run_detached(&b, &id);
    let pid = rt.pid(&id);
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let path = cg
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, p) = (f.next()?, f.next()?, f.next()?);
            ctrl.split(',').any(|c| c == "pids").then(|| p.to_string())
        })
        .unwrap_or_else(|| panic!("no pids controller in {cg}"));
    let max =
        std::fs::read_to_string(format!("/sys/fs/cgroup/pids{path}/pids.max")).expect("pids.max");
    assert_eq!(max.trim(), "17");
    assert!(
        path.contains(&id),
        "default cgroup path {path:?} does not name the container"
    );
}
