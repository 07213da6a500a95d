//! Busybox bundles.
//!
//! A pristine rootfs template is built once (cached under `/tmp/berth-itest-cache/`, keyed by
//! the busybox and probe binaries' size and mtime, created atomically by rename) and every
//! [`Bundle`] gets a copy in which regular files are *hard links* to the template: building a
//! bundle costs a few dozen syscalls. Tests must therefore not modify `/bin/busybox` or `/probe`
//! in place (writes elsewhere are private to the bundle).
//!
//! `config.json` starts as runc 1.1.5's `runc spec` output ([`RUNC_DEFAULT_SPEC`], embedded so it
//! does not depend on the runtime under test), with `terminal` off and `/probe sleep-forever` as
//! the process, and is rewritten after every change.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Value, json};
use tempfile::TempDir;

/// `runc spec` of runc 1.1.5 (Debian 12), byte for byte.
pub const RUNC_DEFAULT_SPEC: &str = r#"{
	"ociVersion": "1.0.2-dev",
	"process": {
		"terminal": true,
		"user": {
			"uid": 0,
			"gid": 0
		},
		"args": [
			"sh"
		],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"effective": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"permitted": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"ambient": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			]
		},
		"rlimits": [
			{
				"type": "RLIMIT_NOFILE",
				"hard": 1024,
				"soft": 1024
			}
		],
		"noNewPrivileges": true
	},
	"root": {
		"path": "rootfs",
		"readonly": true
	},
	"hostname": "runc",
	"mounts": [
		{
			"destination": "/proc",
			"type": "proc",
			"source": "proc"
		},
		{
			"destination": "/dev",
			"type": "tmpfs",
			"source": "tmpfs",
			"options": [
				"nosuid",
				"strictatime",
				"mode=755",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/pts",
			"type": "devpts",
			"source": "devpts",
			"options": [
				"nosuid",
				"noexec",
				"newinstance",
				"ptmxmode=0666",
				"mode=0620",
				"gid=5"
			]
		},
		{
			"destination": "/dev/shm",
			"type": "tmpfs",
			"source": "shm",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"mode=1777",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/mqueue",
			"type": "mqueue",
			"source": "mqueue",
			"options": [
				"nosuid",
				"noexec",
				"nodev"
			]
		},
		{
			"destination": "/sys",
			"type": "sysfs",
			"source": "sysfs",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"ro"
			]
		},
		{
			"destination": "/sys/fs/cgroup",
			"type": "cgroup",
			"source": "cgroup",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"relatime",
				"ro"
			]
		}
	],
	"linux": {
		"resources": {
			"devices": [
				{
					"allow": false,
					"access": "rwm"
				}
			]
		},
		"namespaces": [
			{
				"type": "pid"
			},
			{
				"type": "network"
			},
			{
				"type": "ipc"
			},
			{
				"type": "uts"
			},
			{
				"type": "mount"
			}
		],
		"maskedPaths": [
			"/proc/acpi",
			"/proc/asound",
			"/proc/kcore",
			"/proc/keys",
			"/proc/latency_stats",
			"/proc/timer_list",
			"/proc/timer_stats",
			"/proc/sched_debug",
			"/sys/firmware",
			"/proc/scsi"
		],
		"readonlyPaths": [
			"/proc/bus",
			"/proc/fs",
			"/proc/irq",
			"/proc/sys",
			"/proc/sysrq-trigger"
		]
	}
}"#;

/// The busybox applets linked into `/bin` of every rootfs.
pub const APPLETS: &[&str] = &[
    "sh",
    "ls",
    "cat",
    "echo",
    "stty",
    "tty",
    "stat",
    "readlink",
    "sleep",
    "id",
    "hostname",
    "mount",
    "grep",
    "head",
    "tail",
    "seq",
    "printf",
    "true",
    "false",
    "env",
    "pwd",
    "tr",
    "wc",
    "md5sum",
    "sha256sum",
    "kill",
    "ps",
    "touch",
    "mkdir",
    "test",
    "[",
    "dd",
    "cut",
    "sed",
    "awk",
    "sort",
    "uniq",
    "rm",
    "ln",
    "chmod",
    "cp",
    "mv",
    "nproc",
    "whoami",
    "find",
    "xargs",
    "sync",
    "yes",
    "timeout",
    "df",
    "uname",
    "ip",
];

/// The parsed [`RUNC_DEFAULT_SPEC`].
pub fn default_spec() -> Value {
    serde_json::from_str(RUNC_DEFAULT_SPEC).expect("embedded spec parses")
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
user:x:1000:1000:user:/home/user:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

const GROUP: &str = "root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n";

fn stamp(p: &Path) -> String {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    use std::os::unix::fs::MetadataExt;
    format!("{:x}-{:x}.{:x}", m.len(), m.mtime(), m.mtime_nsec())
}

fn mkdir(p: &Path, mode: u32) {
    std::fs::DirBuilder::new()
        .mode(mode)
        .recursive(true)
        .create(p)
        .unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The pristine rootfs template (built once per machine and probe version).
pub fn template() -> &'static Path {
    static T: OnceLock<PathBuf> = OnceLock::new();
    T.get_or_init(|| {
        let busybox = Path::new("/bin/busybox");
        assert!(
            crate::probe::is_static_elf(busybox),
            "/bin/busybox must be busybox-static (apt-get install busybox-static)"
        );
        let probe = crate::probe::probe_path();
        let cache = Path::new("/tmp/berth-itest-cache");
        mkdir(cache, 0o755);
        let final_dir = cache.join(format!("rootfs-{}-{}", stamp(busybox), stamp(probe)));
        if final_dir.join(".complete").exists() {
            prune_cache(cache, &final_dir);
            return final_dir;
        }
        let tmp = cache.join(format!(".build-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        for (d, mode) in [
            ("bin", 0o755),
            ("etc", 0o755),
            ("proc", 0o555),
            ("sys", 0o555),
            ("dev", 0o755),
            ("tmp", 0o1777),
            ("root", 0o700),
            ("home/user", 0o755),
        ] {
            mkdir(&tmp.join(d), mode);
        }
        std::fs::copy(busybox, tmp.join("bin/busybox")).expect("copy busybox");
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", tmp.join("bin").join(a)).expect("applet link");
        }
        std::fs::copy(probe, tmp.join("probe")).expect("copy probe");
        std::fs::write(tmp.join("etc/passwd"), PASSWD).expect("passwd");
        std::fs::write(tmp.join("etc/group"), GROUP).expect("group");
        std::fs::write(tmp.join(".complete"), "").expect("marker");
        if std::fs::rename(&tmp, &final_dir).is_err() {
            // Another process won the race; use its copy.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        assert!(
            final_dir.join(".complete").exists(),
            "rootfs template {}",
            final_dir.display()
        );
        prune_cache(cache, &final_dir);
        final_dir
    })
}

/// Removes templates of other busybox/probe versions (and abandoned builds) not touched for an
/// hour. Bundles made from them keep working: their files are hard links.
fn prune_cache(cache: &Path, keep: &Path) {
    let Ok(rd) = std::fs::read_dir(cache) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(3600));
        if p != keep && old {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}

/// Recreates `from` at `to`: directories (same mode), hard links for files, symlinks as links.
fn clone_tree(from: &Path, to: &Path) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(from).expect("stat template");
    mkdir(to, meta.mode() & 0o7777);
    for ent in std::fs::read_dir(from).expect("read template") {
        let ent = ent.expect("dirent");
        let (src, dst) = (ent.path(), to.join(ent.file_name()));
        let ft = ent.file_type().expect("file type");
        if ft.is_dir() {
            clone_tree(&src, &dst);
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&src).expect("readlink");
            std::os::unix::fs::symlink(target, &dst).expect("symlink");
        } else if ent.file_name() != ".complete" && std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// A bundle directory: `rootfs/` (busybox + `/probe`) and `config.json`.
#[derive(Debug)]
pub struct Bundle {
    dir: TempDir,
    config: Value,
}

impl Bundle {
    /// A fresh busybox bundle in its own temp dir (removed on drop).
    pub fn busybox() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-itest-bundle-")
            .tempdir_in("/tmp")
            .expect("bundle temp dir");
        clone_tree(template(), &dir.path().join("rootfs"));
        let mut config = default_spec();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["/probe", "sleep-forever"]);
        let b = Self { dir, config };
        b.write();
        b
    }

    /// The bundle directory (absolute).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `<bundle>/rootfs`.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// `<bundle>/config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// The current config.
    pub fn spec(&self) -> &Value {
        &self.config
    }

    /// Rewrites `config.json` from the in-memory config.
    pub fn write(&self) {
        let text = serde_json::to_string_pretty(&self.config).expect("serialise config");
        std::fs::write(self.config_path(), text).expect("write config.json");
    }

    /// Edits the config with `f` and rewrites `config.json`.
    pub fn config(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self.write();
        self
    }

    /// Sets `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config(|c| c["process"]["args"] = json!(args))
    }

    /// Sets `process.args` to `/probe ARGS...`.
    pub fn probe(&mut self, args: &[&str]) -> &mut Self {
        let mut v = vec!["/probe"];
        v.extend_from_slice(args);
        self.args(&v)
    }

    /// Sets `process.args` to `sh -c SCRIPT`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Sets `process.terminal`.
    pub fn terminal(&mut self, on: bool) -> &mut Self {
        self.config(|c| c["process"]["terminal"] = json!(on))
    }

    /// Sets `process.consoleSize`.
    pub fn console_size(&mut self, height: u32, width: u32) -> &mut Self {
        self.config(|c| c["process"]["consoleSize"] = json!({"height": height, "width": width}))
    }

    /// Adds (or replaces, by name) an `process.env` entry `KEY=VALUE`.
    pub fn env(&mut self, kv: &str) -> &mut Self {
        let key = kv.split('=').next().unwrap_or(kv).to_string();
        self.config(|c| {
            let env = c["process"]["env"].as_array_mut().expect("env array");
            env.retain(|e| e.as_str().and_then(|s| s.split('=').next()) != Some(key.as_str()));
            env.push(json!(kv));
        })
    }

    /// Sets `process.user.uid`/`gid`.
    pub fn user(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.config(|c| {
            c["process"]["user"]["uid"] = json!(uid);
            c["process"]["user"]["gid"] = json!(gid);
        })
    }

    /// Sets `process.user.additionalGids`.
    pub fn additional_gids(&mut self, gids: &[u32]) -> &mut Self {
        self.config(|c| c["process"]["user"]["additionalGids"] = json!(gids))
    }

    /// Sets `process.cwd`.
    pub fn cwd(&mut self, cwd: &str) -> &mut Self {
        self.config(|c| c["process"]["cwd"] = json!(cwd))
    }

    /// Sets `root.readonly`.
    pub fn readonly(&mut self, ro: bool) -> &mut Self {
        self.config(|c| c["root"]["readonly"] = json!(ro))
    }

    /// Sets `hostname`.
    pub fn hostname(&mut self, h: &str) -> &mut Self {
        self.config(|c| c["hostname"] = json!(h))
    }

    /// Appends a `mounts` entry.
    pub fn mount(&mut self, m: Value) -> &mut Self {
        self.config(|c| c["mounts"].as_array_mut().expect("mounts").push(m))
    }

    /// Adds a `linux.namespaces` entry (replacing one of the same type), joining `path` if given.
    pub fn namespace(&mut self, ty: &str, path: Option<&str>) -> &mut Self {
        self.remove_namespace(ty);
        self.config(|c| {
            let mut ns = json!({ "type": ty });
            if let Some(p) = path {
                ns["path"] = json!(p);
            }
            c["linux"]["namespaces"]
                .as_array_mut()
                .expect("namespaces")
                .push(ns);
        })
    }

    /// Removes the `linux.namespaces` entry of type `ty`.
    pub fn remove_namespace(&mut self, ty: &str) -> &mut Self {
        self.config(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .expect("namespaces")
                .retain(|n| n["type"] != json!(ty));
        })
    }

    /// Sets an annotation.
    pub fn annotation(&mut self, k: &str, v: &str) -> &mut Self {
        self.config(|c| {
            if !c["annotations"].is_object() {
                c["annotations"] = json!({});
            }
            c["annotations"][k] = json!(v);
        })
    }
}
