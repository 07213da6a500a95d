//! The `berth features` document (runtime-spec `features.md`, as runc 1.1+ and crun print it).
//!
//! Built field by field from the tables [`crate::validate`] and [`crate::mount`] use, so a
//! capability, namespace or seccomp name is listed exactly when validation accepts it, and a
//! mount option exactly when berth interprets it (any other option is passed on as filesystem
//! data). Nothing is serialised from defaults: absent features are `false`, never `null` or an
//! empty string.

use serde_json::{Value, json};

use crate::mount::known_mount_options;
use crate::names;

/// The annotation naming berth's version in the features document.
pub const VERSION_ANNOTATION: &str = "io.github.berth.version";

/// The features document: versions, hooks, mount options, namespaces, capabilities, cgroup and
/// seccomp support, disabled LSMs and Intel RDT, and berth's version as an annotation.
pub fn features() -> Value {
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": &names::HOOKS[..],
        "mountOptions": known_mount_options(),
        "linux": {
            "namespaces": &names::NAMESPACES[..],
            "capabilities": &names::CAPABILITIES[..],
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": false,
                "systemdUser": false
            },
            "seccomp": {
                "enabled": true,
                "actions": &names::SECCOMP_ACTIONS[..],
                "operators": &names::SECCOMP_OPERATORS[..],
                "archs": &names::SECCOMP_ARCHS[..]
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false }
        },
        "annotations": {
            VERSION_ANNOTATION: env!("CARGO_PKG_VERSION")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &Value) -> Vec<&str> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|s| s.as_str().expect("string"))
            .collect()
    }

    #[test]
    fn document_shape() {
        let f = features();
        assert_eq!(f["ociVersionMin"], "1.0.0");
        assert_eq!(f["ociVersionMax"], crate::OCI_VERSION);
        assert_eq!(
            strings(&f["hooks"]),
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop"
            ]
        );
        let opts = strings(&f["mountOptions"]);
        for o in ["ro", "rbind", "rprivate", "rro", "tmpcopyup", "nosymfollow"] {
            assert!(opts.contains(&o), "{o}");
        }
        assert!(!opts.contains(&"mode=755"));
        let linux = &f["linux"];
        assert_eq!(
            strings(&linux["namespaces"]),
            [
                "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"
            ]
        );
        let caps = strings(&linux["capabilities"]);
        assert_eq!(caps.len(), 41);
        assert_eq!(caps[0], "CAP_CHOWN");
        assert_eq!(caps[40], "CAP_CHECKPOINT_RESTORE");
        assert_eq!(
            linux["cgroup"],
            json!({"v1": true, "v2": true, "systemd": false, "systemdUser": false})
        );
        assert_eq!(linux["seccomp"]["enabled"], true);
        assert!(strings(&linux["seccomp"]["actions"]).contains(&"SCMP_ACT_NOTIFY"));
        assert!(strings(&linux["seccomp"]["operators"]).contains(&"SCMP_CMP_MASKED_EQ"));
        assert!(strings(&linux["seccomp"]["archs"]).contains(&"SCMP_ARCH_X86_64"));
        for lsm in ["apparmor", "selinux", "intelRdt"] {
            assert_eq!(linux[lsm], json!({"enabled": false}), "{lsm}");
        }
        assert_eq!(
            f["annotations"][VERSION_ANNOTATION],
            env!("CARGO_PKG_VERSION")
        );
    }

    #[test]
    fn no_nulls_or_empty_strings() {
        fn walk(v: &Value, path: &str) {
            match v {
                Value::Null => panic!("null at {path}"),
                Value::String(s) => assert!(!s.is_empty(), "empty string at {path}"),
                Value::Array(a) => a
                    .iter()
                    .enumerate()
                    .for_each(|(i, x)| walk(x, &format!("{path}[{i}]"))),
                Value::Object(o) => o.iter().for_each(|(k, x)| walk(x, &format!("{path}.{k}"))),
                _ => {}
            }
        }
        walk(&features(), "");
    }

    #[test]
    fn covers_runc_features_names() {
        // Every namespace, capability, seccomp name runc 1.1.5 lists is listed too.
        let f = features();
        let linux = &f["linux"];
        for ns in ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"] {
            assert!(strings(&linux["namespaces"]).contains(&ns));
        }
        for arch in [
            "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_MIPSEL64N32",
            "SCMP_ARCH_PPC64LE",
            "SCMP_ARCH_S390X",
            "SCMP_ARCH_X32",
        ] {
            assert!(strings(&linux["seccomp"]["archs"]).contains(&arch));
        }
    }
}
