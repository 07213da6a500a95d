//! The `berth spec` template: runc's example config, field for field, with berth's `ociVersion`.
//!
//! [`default_spec`] builds what `runc spec` writes (runc `specconv.Example()`), and for
//! `--rootless` applies [`make_rootless`], runc's `specconv.ToRootless`. [`to_pretty_json`] prints
//! like Go's `json.MarshalIndent(v, "", "\t")`: the struct field order in [`crate::config`] is the
//! runtime-spec Go order, so the bytes match `runc spec` except for the version.

use std::path::PathBuf;

use serde::Serialize;

use crate::{
    Capabilities, DeviceCgroup, IdMapping, Linux, Mount, Namespace, NamespaceType, Process,
    Resources, Rlimit, Root, Spec, SpecError, User,
};

/// runc's default `PATH`.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The capabilities runc's template keeps, in every set but `inheritable`.
const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// runc's default `maskedPaths`.
const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

/// runc's default `readonlyPaths`.
const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        destination: PathBuf::from(destination),
        typ: Some(typ.to_owned()),
        source: Some(PathBuf::from(source)),
        options: strings(options),
        ..Mount::default()
    }
}

fn namespace(typ: NamespaceType) -> Namespace {
    Namespace { typ, path: None }
}

/// runc's example spec with `ociVersion` = [`crate::OCI_VERSION`].
fn example() -> Spec {
    let caps = || Some(strings(&DEFAULT_CAPS));
    Spec {
        oci_version: crate::OCI_VERSION.to_owned(),
        process: Some(Process {
            terminal: true,
            user: User {
                uid: 0,
                gid: 0,
                ..User::default()
            },
            args: strings(&["sh"]),
            env: strings(&[DEFAULT_PATH, "TERM=xterm"]),
            cwd: "/".to_owned(),
            capabilities: Some(Capabilities {
                bounding: caps(),
                effective: caps(),
                inheritable: None,
                permitted: caps(),
                ambient: caps(),
            }),
            rlimits: vec![Rlimit {
                typ: "RLIMIT_NOFILE".to_owned(),
                hard: 1024,
                soft: 1024,
            }],
            no_new_privileges: true,
            ..Process::default()
        }),
        root: Some(Root {
            path: PathBuf::from("rootfs"),
            readonly: true,
        }),
        hostname: Some("runc".to_owned()),
        mounts: vec![
            mount("/proc", "proc", "proc", &[]),
            mount(
                "/dev",
                "tmpfs",
                "tmpfs",
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
            ),
            mount(
                "/dev/pts",
                "devpts",
                "devpts",
                &[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            ),
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            ),
            mount(
                "/dev/mqueue",
                "mqueue",
                "mqueue",
                &["nosuid", "noexec", "nodev"],
            ),
            mount(
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            ),
            mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "ro"],
            ),
        ],
        linux: Some(Linux {
            resources: Some(Resources {
                devices: vec![DeviceCgroup {
                    allow: false,
                    access: Some("rwm".to_owned()),
                    ..DeviceCgroup::default()
                }],
                ..Resources::default()
            }),
            namespaces: [
                NamespaceType::Pid,
                NamespaceType::Network,
                NamespaceType::Ipc,
                NamespaceType::Uts,
                NamespaceType::Mount,
            ]
            .into_iter()
            .map(namespace)
            .collect(),
            masked_paths: strings(&MASKED_PATHS),
            readonly_paths: strings(&READONLY_PATHS),
            ..Linux::default()
        }),
        ..Spec::default()
    }
}

/// Turns a spec into one an unprivileged user can run, as runc's `ToRootless` does: drop the
/// network namespace, add a new user namespace mapping container root to `uid`/`gid`, replace
/// the `/sys` mount by a read-only rbind of the host's, drop `uid=`/`gid=` mount options (ids that
/// are not mapped make the mount fail) and drop the cgroup resources.
pub fn make_rootless(spec: &mut Spec, uid: u32, gid: u32) {
    let linux = spec.linux.get_or_insert_with(Linux::default);
    linux
        .namespaces
        .retain(|ns| !matches!(ns.typ, NamespaceType::Network | NamespaceType::User));
    linux.namespaces.push(namespace(NamespaceType::User));
    linux.uid_mappings = vec![IdMapping {
        container_id: 0,
        host_id: uid,
        size: 1,
    }];
    linux.gid_mappings = vec![IdMapping {
        container_id: 0,
        host_id: gid,
        size: 1,
    }];
    linux.resources = None;
    for m in &mut spec.mounts {
        if m.destination
            .components()
            .eq(std::path::Path::new("/sys").components())
        {
            *m = mount(
                "/sys",
                "none",
                "/sys",
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            );
            continue;
        }
        m.options
            .retain(|o| !o.starts_with("gid=") && !o.starts_with("uid="));
    }
}

/// The `berth spec` template: `runc spec` (or `runc spec --rootless`, mapping the caller's
/// effective uid and gid) with `ociVersion` = [`crate::OCI_VERSION`].
pub fn default_spec(rootless: bool) -> Spec {
    let mut spec = example();
    if rootless {
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        make_rootless(&mut spec, uid, gid);
    }
    spec
}

/// `value` as tab-indented JSON without a trailing newline, like Go's
/// `json.MarshalIndent(v, "", "\t")` that `runc spec` writes. (Go also escapes `<`, `>` and `&`
/// inside strings as `\u003c`…; serde_json does not. Both read back the same.)
pub fn to_pretty_json<T: Serialize + ?Sized>(value: &T) -> Result<String, SpecError> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    value.serialize(&mut ser).map_err(SpecError::Serialize)?;
    String::from_utf8(out).map_err(|e| SpecError::Serialize(serde::ser::Error::custom(e)))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use serde_json::Value;

    use super::*;

    /// runc, which the development setup installs; the comparison must not silently pass without it.
    fn runc() -> PathBuf {
        let candidates = [
            "/usr/sbin/runc",
            "/usr/bin/runc",
            "/usr/local/sbin/runc",
            "/usr/local/bin/runc",
        ];
        if let Some(p) = candidates.iter().map(Path::new).find(|p| p.is_file()) {
            return p.to_path_buf();
        }
        if let Some(p) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join("runc"))
            .find(|p| p.is_file())
        {
            return p;
        }
        panic!(
            "runc is not installed (looked in {candidates:?} and PATH): run the development setup \
             script (it installs runc 1.1.5, `apt-get install runc`) — this test compares \
             `berth spec` with `runc spec` and must not be skipped"
        );
    }

    /// The bytes `runc spec [--rootless]` writes, run in a temporary directory.
    fn runc_spec(rootless: bool) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(runc());
        cmd.arg("spec").current_dir(dir.path());
        if rootless {
            cmd.arg("--rootless");
        }
        let out = cmd.output().expect("run runc spec");
        assert!(
            out.status.success(),
            "runc spec failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(dir.path().join("config.json")).expect("read runc's config.json")
    }

    fn with_our_version(runc_json: &str) -> Value {
        let mut v: Value = serde_json::from_str(runc_json).expect("runc's config.json parses");
        v["ociVersion"] = Value::String(crate::OCI_VERSION.to_owned());
        v
    }

    #[test]
    fn default_spec_equals_runc_spec() {
        let runc = with_our_version(&runc_spec(false));
        let ours = serde_json::to_value(default_spec(false)).expect("serialize");
        assert_eq!(ours, runc);
    }

    #[test]
    fn rootless_spec_equals_runc_spec_rootless() {
        let runc = with_our_version(&runc_spec(true));
        let ours = serde_json::to_value(default_spec(true)).expect("serialize");
        assert_eq!(ours, runc);
    }

    #[test]
    fn pretty_json_is_byte_identical_to_runc() {
        for rootless in [false, true] {
            let runc = runc_spec(rootless);
            let runc_version = serde_json::from_str::<Value>(&runc).expect("parse")["ociVersion"]
                .as_str()
                .expect("ociVersion string")
                .to_owned();
            let ours = to_pretty_json(&default_spec(rootless)).expect("print");
            let expected = runc.replacen(
                &format!("\"ociVersion\": \"{runc_version}\""),
                &format!("\"ociVersion\": \"{}\"", crate::OCI_VERSION),
                1,
            );
            assert_eq!(ours, expected, "rootless={rootless}");
        }
    }

    #[test]
    fn default_spec_round_trips_and_validates() {
        for rootless in [false, true] {
            let spec = default_spec(rootless);
            let text = to_pretty_json(&spec).expect("print");
            let back: Spec = serde_json::from_str(&text).expect("parse back");
            assert_eq!(back, spec);
            crate::validate::validate(&spec).expect("the template validates");
        }
    }

    #[test]
    fn template_details() {
        let spec = default_spec(false);
        assert_eq!(spec.oci_version, crate::OCI_VERSION);
        let p = spec.process.as_ref().expect("process");
        assert!(p.terminal);
        assert_eq!(p.args, ["sh"]);
        assert!(p.env.iter().any(|e| e == "TERM=xterm"));
        let pts = spec
            .mounts
            .iter()
            .find(|m| m.destination == Path::new("/dev/pts"))
            .expect("/dev/pts");
        assert!(pts.options.iter().any(|o| o == "gid=5"));

        let mut rl = default_spec(false);
        make_rootless(&mut rl, 1000, 1001);
        let linux = rl.linux.as_ref().expect("linux");
        assert_eq!(
            linux.uid_mappings,
            [IdMapping {
                container_id: 0,
                host_id: 1000,
                size: 1
            }]
        );
        assert_eq!(
            linux.gid_mappings,
            [IdMapping {
                container_id: 0,
                host_id: 1001,
                size: 1
            }]
        );
        assert!(linux.resources.is_none());
        assert!(
            !linux
                .namespaces
                .iter()
                .any(|n| n.typ == NamespaceType::Network)
        );
        assert_eq!(
            linux.namespaces.last().map(|n| n.typ),
            Some(NamespaceType::User)
        );
        let pts = rl
            .mounts
            .iter()
            .find(|m| m.destination == Path::new("/dev/pts"))
            .expect("/dev/pts");
        assert!(!pts.options.iter().any(|o| o.starts_with("gid=")));
        let sys = rl
            .mounts
            .iter()
            .find(|m| m.destination == Path::new("/sys"))
            .expect("/sys");
        assert_eq!(sys.typ.as_deref(), Some("none"));
        assert!(sys.is_bind());
    }

    #[test]
    fn pretty_json_uses_tabs() {
        let text = to_pretty_json(&default_spec(false)).expect("print");
        assert!(text.starts_with("{\n\t\"ociVersion\": "));
        assert!(text.contains("\n\t\t\"terminal\": true,"));
        assert!(!text.ends_with('\n'));
    }
}
