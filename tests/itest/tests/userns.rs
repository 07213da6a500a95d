//! User namespaces with berth (or runc) running as root: maps written directly, root inside,
//! host device nodes bound in, devpts's `gid=` when gid 5 is (not) mapped, sysfs without a
//! network namespace, locked mount flags, and the bad inputs (a map the kernel refuses, an
//! unmapped process uid or devpts gid): exit 1, one line naming the field, nothing left behind.
//!
//! Deliberate differences from runc 1.1.5 are marked with `Kind::Runc` branches.

use std::time::Duration;

use berth_itest::{
    Bundle, Kind, Leftovers, MasterIo, Output, Pty, Runtime, runtime, runtime_exclusive, strip_cr,
};
use serde_json::json;

const T: Duration = Duration::from_secs(10);

/// A busybox bundle with a new user namespace mapping 0..65536 to 100000..165536.
fn userns_bundle() -> Bundle {
    let mut b = Bundle::busybox();
    b.namespace("user", None).config(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    b
}

/// Sets both maps to exactly one id: container 0 = host 100000.
fn single_id(b: &mut Bundle) {
    b.config(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1}]);
    });
}

fn drop_gid_options(b: &mut Bundle) {
    b.config(|c| {
        for m in c["mounts"].as_array_mut().expect("mounts") {
            if let Some(o) = m.get_mut("options").and_then(|o| o.as_array_mut()) {
                o.retain(|o| !o.as_str().unwrap_or("").starts_with("gid="));
            }
        }
    });
}

fn sh_out(rt: &Runtime, b: &mut Bundle, name: &str, script: &str) -> String {
    b.sh(script);
    rt.run_cmd(b, &rt.id(name)).ok().stdout_str()
}

/// Exit 1 within 5 s, exactly one non-empty stderr line containing every one of `names`.
#[track_caller]
fn clear_err(out: &Output, names: &[&str]) {
    assert_eq!(out.code(), Some(1), "exit status: {out}");
    assert!(out.elapsed < Duration::from_secs(5), "slow: {out}");
    let err = out.stderr_str();
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "want one stderr line: {out}");
    for n in names {
        assert!(lines[0].contains(n), "stderr does not name {n:?}: {out}");
    }
}

#[test]
fn root_inside_with_the_configured_maps() {
    let rt = runtime();
    let mut b = userns_bundle();
    let out = sh_out(
        &rt,
        &mut b,
        "userns-id",
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups",
    );
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec!["0"],
            vec!["0"],
            vec!["0", "100000", "65536"],
            vec!["0", "100000", "65536"],
            vec!["allow"],
        ],
        "{out}"
    );
}

#[test]
fn exec_joins_the_user_namespace() {
    let rt = runtime();
    let b = userns_bundle();
    let id = rt.id("userns-exec");
    rt.run_detached(&b, &id);
    rt.wait_for_status(&id, "running", T);
    let out = rt
        .exec_cmd(&id, &["sh", "-c", "id -u; cat /proc/self/uid_map"])
        .ok();
    let text = out.stdout_str();
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words, ["0", "0", "100000", "65536"], "{out}");
    // A process uid other than 0 is mapped too.
    let out = rt.cmd(["exec", "--user", "1000:1000", &id, "id"]).ok();
    assert!(
        out.stdout_str()
            .starts_with("uid=1000(user) gid=1000(user)"),
        "{out}"
    );
}

/// Device nodes cannot be made in a user namespace: the host's are bound (runc does the
/// same). They work, and `linux.devices` entries are bound too.
#[test]
fn device_nodes_are_the_hosts_bound_in() {
    let rt = runtime();
    let mut b = userns_bundle();
    b.config(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10,
                                        "minor": 229, "fileMode": 438}]);
    });
    let out = sh_out(
        &rt,
        &mut b,
        "userns-dev",
        "stat -c '%n %F %t:%T' /dev/null /dev/zero /dev/fuse; echo data > /dev/null && echo wrote; \
         head -c 4 /dev/zero | wc -c; awk '$5 == \"/dev/null\" || $5 == \"/dev/fuse\" { print $5 }' /proc/self/mountinfo",
    );
    assert_eq!(
        out,
        "/dev/null character special file 1:3\n/dev/zero character special file 1:5\n\
         /dev/fuse character special file a:e5\nwrote\n4\n/dev/null\n/dev/fuse\n",
        "{out}"
    );
}

/// With gid 5 mapped, runc's devpts `gid=5` works and the pty's group is tty (5).
#[test]
fn terminal_in_a_user_namespace() {
    let rt = runtime();
    let mut b = userns_bundle();
    b.terminal(true)
        .sh("tty; stat -c '%u %g' $(tty); cat /proc/self/uid_map");
    let mut pty = Pty::new();
    let running = pty.spawn(rt.run_cmd(&b, &rt.id("userns-tty")));
    let text = String::from_utf8_lossy(&strip_cr(&pty.read_until_eof(T))).into_owned();
    running.wait().assert_ok();
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        words,
        ["/dev/pts/0", "0", "5", "0", "100000", "65536"],
        "{text:?}"
    );
}

/// `berth spec --rootless`'s choice, as root: no `gid=` on devpts, a single-id map.
#[test]
fn single_id_map_without_devpts_gid() {
    let rt = runtime();
    let mut b = userns_bundle();
    single_id(&mut b);
    drop_gid_options(&mut b);
    b.terminal(true)
        .sh("stat -c '%u %g' $(tty); cat /proc/self/uid_map /proc/self/gid_map");
    let mut pty = Pty::new();
    let running = pty.spawn(rt.run_cmd(&b, &rt.id("userns-single")));
    let text = String::from_utf8_lossy(&strip_cr(&pty.read_until_eof(T))).into_owned();
    let out = running.wait();
    assert!(out.success(), "{text:?} {out}");
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "0", "0", "100000", "1", "0", "100000", "1"],
        "{text:?}"
    );
}

/// devpts `gid=5` with gid 5 unmapped. berth's decision (namespaces::validate_userns): a clear
/// error naming the mount and the option, before anything exists; it does not drop the option
/// behind the config's back (`berth spec --rootless` writes configs without it). runc 1.1.5
/// lets mount(2) fail with EINVAL, naming the option in its message as well.
#[test]
fn devpts_gid_5_unmapped_is_a_clear_error() {
    let rt = runtime_exclusive();
    let mut b = userns_bundle();
    single_id(&mut b);
    b.args(&["/probe", "exit", "0"]);
    let id = rt.id("userns-gid5");
    let l = Leftovers::snapshot(&rt, &[&id], &[b.path()]);
    rt.guard().track(&id);
    let out = rt.cmd(["run", "--bundle"]).arg(b.path()).arg(&id).run();
    if rt.kind() == Kind::Runc {
        clear_err(&out, &["gid=5", "invalid argument"]);
    } else {
        clear_err(
            &out,
            &["mounts[2]", "/dev/pts", "gid=5", "linux.gidMappings"],
        );
    }
    l.assert_unchanged();
}

/// A map the kernel refuses (overlapping container ranges): berth names linux.uidMappings in
/// one line; runc 1.1.5 prints its nsexec failures on several lines.
#[test]
fn uid_map_that_cannot_be_written() {
    let rt = runtime_exclusive();
    let mut b = userns_bundle();
    b.args(&["/probe", "exit", "0"]).config(|c| {
        c["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": 100000, "size": 65536},
            {"containerID": 5, "hostID": 300000, "size": 10}
        ]);
    });
    let id = rt.id("userns-badmap");
    let l = Leftovers::snapshot(&rt, &[&id], &[b.path()]);
    rt.guard().track(&id);
    let out = rt.cmd(["run", "--bundle"]).arg(b.path()).arg(&id).run();
    if rt.kind() == Kind::Runc {
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(
            out.stderr_str().contains("uid_map: Invalid argument"),
            "{out}"
        );
    } else {
        clear_err(
            &out,
            &[
                "linux.uidMappings",
                "0 100000 65536, 5 300000 10",
                "uid_map",
            ],
        );
    }
    l.assert_unchanged();
}

#[test]
fn process_uid_outside_the_map() {
    let rt = runtime_exclusive();
    let mut b = userns_bundle();
    b.args(&["/probe", "exit", "0"]).user(70000, 0);
    let id = rt.id("userns-unmapped-uid");
    let l = Leftovers::snapshot(&rt, &[&id], &[b.path()]);
    rt.guard().track(&id);
    let out = rt.cmd(["run", "--bundle"]).arg(b.path()).arg(&id).run();
    if rt.kind() == Kind::Runc {
        clear_err(&out, &["cannot set uid to unmapped user in user namespace"]);
    } else {
        clear_err(&out, &["process.user.uid", "70000", "linux.uidMappings"]);
    }
    l.assert_unchanged();
}

/// A user namespace without a network namespace may not mount sysfs (EPERM). berth binds the
/// host's /sys instead, read-only all the way down (runc's rootless template does this in the
/// config); runc 1.1.5 fails with the kernel's EPERM.
#[test]
fn sysfs_without_a_network_namespace() {
    let rt = runtime();
    let mut b = userns_bundle();
    b.remove_namespace("network")
        .sh("awk '$5 ~ \"^/sys\" { print $5, $6 }' /proc/self/mountinfo | sort -u");
    let out = rt.run_cmd(&b, &rt.id("userns-sysfs")).run();
    if rt.kind() == Kind::Runc {
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(
            out.stderr_str().contains("operation not permitted"),
            "{out}"
        );
        return;
    }
    assert!(out.success(), "{out}");
    let text = out.stdout_str();
    assert!(text.starts_with("/sys ro,"), "{out}");
    for line in text.lines() {
        let opts = line.split(' ').nth(1).unwrap_or_default();
        assert!(
            opts.split(',').any(|o| o == "ro"),
            "{line}: every mount under /sys must be read-only: {out}"
        );
    }
}

/// A host mount read-only/nosuid/nodev/noexec is locked in the container's user namespace; a
/// bind asking for `rw,suid,dev,exec` keeps the locked flags instead of failing with EPERM
/// (as runc does).
#[test]
fn bind_keeps_locked_flags() {
    let rt = runtime();
    let src = tempfile::tempdir_in("/tmp").expect("source dir");
    rustix::mount::mount(
        "tmpfs",
        src.path(),
        "tmpfs",
        rustix::mount::MountFlags::RDONLY
            | rustix::mount::MountFlags::NOSUID
            | rustix::mount::MountFlags::NODEV
            | rustix::mount::MountFlags::NOEXEC,
        None,
    )
    .expect("mount the locked source");
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = rustix::mount::unmount(self.0, rustix::mount::UnmountFlags::DETACH);
        }
    }
    let _u = Unmount(src.path());
    let mut b = userns_bundle();
    std::fs::create_dir(b.rootfs().join("locked")).expect("mount point");
    b.mount(
        json!({"destination": "/locked", "type": "bind", "source": src.path(),
                   "options": ["rbind", "rw", "suid", "dev", "exec"]}),
    )
    .sh("awk '$5 == \"/locked\" { print $6 }' /proc/self/mountinfo");
    let out = rt.run_cmd(&b, &rt.id("userns-locked")).ok();
    let text = out.stdout_str();
    let opts: std::collections::BTreeSet<&str> = text.trim().split(',').collect();
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(opts.contains(o), "{o} missing: {out}");
    }
}

/// Idmapped bind mounts (`uidMappings`/`gidMappings` on the mount, or the `idmap` option with
/// the container's maps): files owned by 0 and 1000 on the host's disk show as 0 and 1000 in
/// the container's user namespace, and a file root creates there is owned by 0 on disk. A plain
/// bind shows them as the overflow id 65534. runc 1.1.5 knows neither form (its runtime-spec
/// predates idmapped mounts): it makes plain binds.
#[test]
fn idmapped_bind_mounts() {
    let rt = runtime();
    let src = tempfile::tempdir_in("/tmp").expect("source dir");
    std::fs::write(src.path().join("root-file"), "r").expect("file");
    std::fs::write(src.path().join("user-file"), "u").expect("file");
    std::os::unix::fs::chown(src.path().join("user-file"), Some(1000), Some(1000)).expect("chown");
    let maps = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    for (name, options, mappings) in [
        ("explicit", json!(["rbind"]), true),
        ("option", json!(["rbind", "idmap"]), false),
        ("plain", json!(["rbind"]), false),
    ] {
        let mut b = userns_bundle();
        std::fs::create_dir(b.rootfs().join("idm")).expect("mount point");
        let mut m = json!({"destination": "/idm", "type": "bind", "source": src.path(),
                           "options": options});
        if mappings {
            m["uidMappings"] = maps.clone();
            m["gidMappings"] = maps.clone();
        }
        let created = format!("new-{name}");
        b.mount(m).sh(&format!(
            "stat -c '%u:%g %n' /idm/root-file /idm/user-file; touch /idm/{created} && echo made"
        ));
        let out = rt.run_cmd(&b, &rt.id(&format!("idmap-{name}"))).run();
        let idmapped = name != "plain" && rt.kind() != Kind::Runc;
        let text = out.stdout_str();
        if idmapped {
            assert!(out.success(), "{name}: {out}");
            assert_eq!(
                text, "0:0 /idm/root-file\n1000:1000 /idm/user-file\nmade\n",
                "{name}: {out}"
            );
            let meta = std::fs::metadata(src.path().join(&created)).expect("created file");
            use std::os::unix::fs::MetadataExt;
            assert_eq!((meta.uid(), meta.gid()), (0, 0), "{name}: owner on disk");
        } else {
            // Unmapped on-disk ids show as the overflow id; root inside may not write there.
            assert!(
                text.starts_with("65534:65534 /idm/root-file\n65534:65534 /idm/user-file\n"),
                "{name}: {out}"
            );
            assert!(!text.contains("made"), "{name}: {out}");
        }
    }
}

/// An idmapped mount that is not a bind mount: one line naming the mount, nothing left.
#[test]
fn idmapped_non_bind_mount_is_refused() {
    let rt = runtime_exclusive();
    let mut b = userns_bundle();
    let maps = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.args(&["/probe", "exit", "0"]).mount(json!({
        "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
        "uidMappings": maps, "gidMappings": maps}));
    std::fs::create_dir(b.rootfs().join("scratch")).expect("mount point");
    let id = rt.id("idmap-tmpfs");
    let l = Leftovers::snapshot(&rt, &[&id], &[b.path()]);
    rt.guard().track(&id);
    let out = rt.cmd(["run", "--bundle"]).arg(b.path()).arg(&id).run();
    if rt.kind() == Kind::Runc {
        // runc 1.1.5 ignores the mount's maps and mounts the tmpfs.
        assert!(out.success(), "{out}");
    } else {
        clear_err(
            &out,
            &["mounts[", "idmapped mounts must be bind mounts", "tmpfs"],
        );
    }
    l.assert_unchanged();
}

/// In a user namespace a `linux.devices` entry is the host's node bound in; berth checks that
/// node is the device the config names (runc 1.1.5 binds whatever the host path holds).
#[test]
fn device_entry_not_matching_the_host_node() {
    let rt = runtime_exclusive();
    let mut b = userns_bundle();
    b.args(&["/probe", "exit", "0"]).config(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10,
                                        "minor": 228, "fileMode": 438}]);
    });
    let id = rt.id("userns-baddev");
    let l = Leftovers::snapshot(&rt, &[&id], &[b.path()]);
    rt.guard().track(&id);
    let out = rt.cmd(["run", "--bundle"]).arg(b.path()).arg(&id).run();
    if rt.kind() == Kind::Runc {
        assert!(out.success(), "{out}");
    } else {
        clear_err(&out, &["linux.devices /dev/fuse", "c 10:228"]);
    }
    l.assert_unchanged();
}

/// Bind mounts whose sources the user namespace's root cannot reach (0700 directories of the
/// host's root): berth opens them for the init, inside its new mount namespace, with its own
/// credentials (runc's userns.bats "2 inaccessible mounts" and "+ exec"). Both the clone3 path
/// and the unshare path (a new time namespace takes it) are covered.
#[test]
fn bind_mounts_from_sources_only_the_hosts_root_can_reach() {
    let rt = runtime();
    for (name, time_ns) in [("userns-inacc", false), ("userns-inacc-t", true)] {
        if time_ns && rt.kind() == Kind::Runc {
            continue; // runc 1.1.5 has no time namespaces
        }
        let mut b = userns_bundle();
        if time_ns {
            b.namespace("time", None);
        }
        for n in 1..=2 {
            let outer = b.path().join(format!("source-inaccessible-{n}"));
            std::fs::create_dir_all(outer.join("dir")).expect("mkdir source");
            std::fs::write(outer.join("dir/foo.txt"), format!("secret {n}\n")).expect("write");
            std::fs::set_permissions(&outer, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .expect("chmod 700");
            b.mount(json!({
                "source": format!("source-inaccessible-{n}/dir"),
                "destination": format!("/tmp/mount-{n}"),
                "options": ["bind"]
            }));
        }
        b.sh("cat /tmp/mount-1/foo.txt /tmp/mount-2/foo.txt; exec /probe sleep-forever");
        let id = rt.id(name);
        rt.run_detached(&b, &id);
        rt.wait_for_status(&id, "running", T);
        let out = rt
            .exec_cmd(
                &id,
                &["cat", "/tmp/mount-1/foo.txt", "/tmp/mount-2/foo.txt"],
            )
            .ok()
            .stdout_str();
        assert_eq!(out, "secret 1\nsecret 2\n", "{name}");
        rt.kill(&id, "KILL");
        rt.wait_for_status(&id, "stopped", T);
    }
}
