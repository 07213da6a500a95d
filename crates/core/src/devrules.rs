//! The device cgroup rules a container gets: the config's `linux.resources.devices`, then an
//! allow rule for every `linux.devices` entry, then runc's default allow list (mknod of any
//! device, the default devices, ptys and ptmx, tun). runc appends the same list
//! (`specconv.AllowedDevices`), so configs written for runc behave the same under berth.

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
    for d in linux.map(|l| l.devices.as_slice()).unwrap_or_default() {
        let typ = if d.typ == "u" { "c" } else { d.typ.as_str() };
        if typ == "p" {
            continue;
        }
        rules.push(allow(typ, Some(d.major), Some(d.minor), "rwm"));
    }
    rules.extend(default_allowed());
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_last() {
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
        assert_eq!(rules[1].major, Some(10));
        assert_eq!(rules[1].minor, Some(229));
        assert_eq!(rules.len(), 2 + default_allowed().len());
    }
}
