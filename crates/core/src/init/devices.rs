//! `/dev` inside the container: the runtime-spec's default devices, `linux.devices`, the
//! standard symlinks and `ptmx -> pts/ptmx`. Everything is created relative to a `/dev` fd
//! resolved inside the rootfs, so a rootfs whose `/dev` is a symlink cannot make berth create
//! or delete anything on the host (CVE-2026-41579, CVE-2026-47766).

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use berth_spec::{Device, Spec};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::paths::{ensure_file, mkdir_all};
use crate::error::{Error, Result};

/// The devices every container gets (runtime-spec "Default Devices").
fn default_devices() -> Vec<Device> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| Device {
        typ: "c".into(),
        path: PathBuf::from(format!("/dev/{name}")),
        major,
        minor,
        file_mode: Some(0o666),
        uid: Some(0),
        gid: Some(0),
    })
    .collect()
}

/// Creates the devices and symlinks in the rootfs's `/dev`.
pub(crate) fn populate_dev(root: BorrowedFd<'_>, spec: &Spec, userns: bool) -> Result<()> {
    let dev =
        mkdir_all(root, Path::new("/dev"), 0o755).map_err(|e| Error::io("create", "/dev", e))?;
    let mut devices = default_devices();
    if let Some(linux) = &spec.linux {
        for d in &linux.devices {
            devices.retain(|x| x.path != d.path);
            devices.push(d.clone());
        }
    }
    let old_umask = rustix::process::umask(Mode::empty());
    let result = devices
        .iter()
        .try_for_each(|d| create_device(root, dev.as_fd(), d, userns));
    rustix::process::umask(old_umask);
    result?;

    let links: [(&str, &str); 5] = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ];
    for (name, target) in links {
        // A device or file the image put there is replaced (runc does the same for ptmx).
        match rustix::fs::unlinkat(dev.as_fd(), name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(rustix::io::Errno::ISDIR) => {
                rustix::fs::unlinkat(dev.as_fd(), name, AtFlags::REMOVEDIR)
                    .map_err(|e| Error::io("remove", format!("/dev/{name}"), e.into()))?;
            }
            Err(e) => return Err(Error::io("remove", format!("/dev/{name}"), e.into())),
        }
        rustix::fs::symlinkat(target, dev.as_fd(), name)
            .map_err(|e| Error::io("symlink", format!("/dev/{name}"), e.into()))?;
    }
    Ok(())
}

/// Makes device `d`; `dev` is the rootfs's `/dev`, already resolved, which serves every device
/// directly in it (the default ones) without resolving it again.
fn create_device(
    root: BorrowedFd<'_>,
    dev: BorrowedFd<'_>,
    d: &Device,
    userns: bool,
) -> Result<()> {
    let path = &d.path;
    let parent = path.parent().unwrap_or(Path::new("/dev"));
    let name = path
        .file_name()
        .ok_or_else(|| Error::Init(format!("linux.devices: bad path {}", path.display())))?;
    let made_dir;
    let dir = if parent == Path::new("/dev") {
        dev
    } else {
        made_dir = mkdir_all(root, parent, 0o755).map_err(|e| Error::io("create", parent, e))?;
        made_dir.as_fd()
    };
    let file_type = match d.typ.as_str() {
        "c" | "u" => FileType::CharacterDevice,
        "b" => FileType::BlockDevice,
        "p" => FileType::Fifo,
        other => {
            return Err(Error::Init(format!(
                "linux.devices {}: unknown type {other:?}",
                path.display()
            )));
        }
    };
    if userns && file_type != FileType::Fifo {
        // Device nodes cannot be made in a user namespace: bind the host's node instead (as
        // runc does), after checking it is the device the config names.
        let host = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open host device", path, e.into()))?;
        let st = rustix::fs::fstat(&host).map_err(|e| Error::io("stat", path, e.into()))?;
        let (major, minor) = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
        if FileType::from_raw_mode(st.st_mode) != file_type
            || i64::from(major) != d.major
            || i64::from(minor) != d.minor
        {
            return Err(Error::Init(format!(
                "linux.devices {}: the host's node is not the {} {}:{} device the config names (in a user namespace berth binds the host's node)",
                path.display(),
                d.typ,
                d.major,
                d.minor
            )));
        }
        let target = ensure_file(root, path).map_err(|e| Error::io("create", path, e))?;
        return super::rootfs::attach_bind(
            host.as_fd(),
            target.as_fd(),
            false,
            &Default::default(),
        )
        .map_err(|e| Error::io("bind host device", path, e));
    }
    match rustix::fs::unlinkat(dir.as_fd(), name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(Error::io("remove", path, e.into())),
    }
    let rdev = rustix::fs::makedev(d.major as u32, d.minor as u32);
    let mode = Mode::from_raw_mode(d.file_mode.unwrap_or(0o666) & 0o7777);
    rustix::fs::mknodat(dir.as_fd(), name, file_type, mode, rdev)
        .map_err(|e| Error::io("mknod", path, e.into()))?;
    rustix::fs::chownat(
        dir.as_fd(),
        name,
        Some(rustix::fs::Uid::from_raw(d.uid.unwrap_or(0))),
        Some(rustix::fs::Gid::from_raw(d.gid.unwrap_or(0))),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::io("chown", path, e.into()))?;
    // Verify what is there now is what we made (no race swapped it): the name in the directory
    // resolved inside the rootfs, not followed if it became a symlink.
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::io("stat", path, e.into()))?;
    if FileType::from_raw_mode(st.st_mode) != file_type {
        return Err(Error::Init(format!(
            "{}: replaced while being created",
            path.display()
        )));
    }
    Ok(())
}
