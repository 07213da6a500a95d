//! The device cgroup rules a container gets: the config's `linux.resources.devices`, then runc's
//! default allow list (mknod of any device, the default devices, ptys and ptmx, tun). runc
//! appends the same list (`specconv.AllowedDevices`) and, like berth, adds no rule for the
//! `linux.devices` nodes: a node the rules deny exists but cannot be opened (runc's dev.bats
//! "device cgroup deny"). Callers that want a device usable allow it in `resources.devices`, as
//! podman, containerd and CRI do.

use berth_spec::{DeviceCgroup, Spec};

fn allow(typ: &str, major: Option<i64>, minor: Option<i64>, access: &str) -> DeviceCgroup {
    DeviceCgroup {
        allow: true,
        typ: Some(typ.into()),
        major,
        minor,
        access: Some(access.into()),
    }
}

/// runc's default allowed devices.
pub fn default_allowed() -> Vec<DeviceCgroup> {
    vec![
        allow("c", None, None, "m"),
        allow("b", None, None, "m"),
        allow("c", Some(1), Some(3), "rwm"),
        allow("c", Some(1), Some(8), "rwm"),
        allow("c", Some(1), Some(7), "rwm"),
        allow("c", Some(5), Some(0), "rwm"),
        allow("c", Some(1), Some(5), "rwm"),
        allow("c", Some(1), Some(9), "rwm"),
        allow("c", Some(136), None, "rwm"),
        allow("c", Some(5), Some(2), "rwm"),
        allow("c", Some(10), Some(200), "rwm"),
    ]
}

/// The full rule list to apply for `spec`.
pub fn effective_rules(spec: &Spec) -> Vec<DeviceCgroup> {
    let linux = spec.linux.as_ref();
    let mut rules: Vec<DeviceCgroup> = linux
        .and_then(|l| l.resources.as_ref())
        .map(|r| r.devices.clone())
        .unwrap_or_default();
    rules.extend(default_allowed());
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_last_and_devices_get_no_rule() {
        let mut spec = Spec::default();
        let mut linux = berth_spec::Linux {
            resources: Some(berth_spec::Resources {
                devices: vec![DeviceCgroup {
                    allow: false,
                    access: Some("rwm".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        linux.devices.push(berth_spec::Device {
            typ: "c".into(),
            path: "/dev/fuse".into(),
            major: 10,
            minor: 229,
            file_mode: None,
            uid: None,
            gid: None,
        });
        spec.linux = Some(linux);
        let rules = effective_rules(&spec);
        assert!(!rules[0].allow);
        assert_eq!(&rules[1..], default_allowed().as_slice());
        assert!(
            !rules
                .iter()
                .any(|r| r.major == Some(10) && r.minor == Some(229))
        );
    }
}
