//! The container's filesystem, built by its init inside the new mount namespace.
//!
//! Order (runc's, made fd-based):
//! 1. make `/` a slave (or the configured `rootfsPropagation`) so nothing leaks to the host;
//! 2. bind the rootfs onto itself so it is a mount point, and open it (`O_PATH`): every later
//!    lookup is relative to that fd with `RESOLVE_IN_ROOT` ([`super::paths`]);
//! 3. the spec's mounts in order (binds through `open_tree` + `mount_setattr` + `move_mount`,
//!    other filesystems with `mount(2)` on the target's fd); a v1 `cgroup` mount's binds of
//!    the container's own directories, which berth may still be making, wait until a later
//!    mount at or under it, else until after step 4;
//! 4. `/dev`: the default devices, the spec's devices, the standard symlinks, `ptmx -> pts/ptmx`;
//! 5. (hooks, done by the caller) then `pivot_root` (or `MS_MOVE` + `chroot` with `--no-pivot`);
//! 6. after the console is set up: sysctls, `readonlyPaths`, `maskedPaths` (from a `/dev/null`
//!    verified to be the 1:3 device, CVE-2025-31133) and a read-only `/`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_spec::mount::{MountOptions, parse_mount_options};
use berth_spec::{Mount, Spec};
use berth_sys::mount::{self as sysmount, MountAttr};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{MoveMountFlags, OpenTreeFlags};

use super::paths::{ensure_file, mkdir_all, open_in_root, open_in_root_with};
use crate::error::{Error, Result};

/// What the rootfs setup needs to know.
pub(crate) struct RootfsPlan<'a> {
    /// The config.
    pub spec: &'a Spec,
    /// Absolute rootfs path on the host.
    pub rootfs: &'a Path,
    /// Absolute bundle path (relative bind sources are relative to it).
    pub bundle: &'a Path,
    /// The init is in a new user namespace (device nodes cannot be made; bind them instead).
    pub userns: bool,
    /// The init has a new cgroup namespace.
    pub cgroupns: bool,
    /// Idmapped bind mounts berth prepared before the clone.
    pub idmapped: &'a [crate::namespaces::IdmappedMount],
    /// The container's cgroup (its directories are bound into a `cgroup` mount); the init may
    /// not have been moved into it yet.
    pub cgroup: Option<&'a berth_cgroups::CgroupManager>,
    /// Waits until berth has made the container's cgroup directories (on v1 and hybrid hosts
    /// berth makes them while the init sets up its mounts).
    pub cgroup_ready: &'a dyn Fn() -> Result<()>,
    /// Bind mount sources berth opened for a user namespace's init ([`open_bind_sources`]),
    /// by index in `mounts`.
    pub bind_sources: &'a [(usize, OwnedFd)],
}

/// Whether `m` mounts the cgroup hierarchies (`type: cgroup` or `cgroup2`, not a bind).
fn is_cgroup_fs(m: &Mount, opts: &MountOptions) -> bool {
    matches!(m.typ.as_deref(), Some("cgroup" | "cgroup2")) && !is_bind(m, opts)
}

/// Whether `m` is a bind mount (`type: bind`, or a `bind`/`rbind` option).
fn is_bind(m: &Mount, opts: &MountOptions) -> bool {
    opts.bind || m.typ.as_deref() == Some("bind")
}

/// A bind mount's source on the host: relative sources are relative to the bundle.
fn bind_source(source: &Path, bundle: &Path) -> PathBuf {
    if source.is_absolute() {
        source.to_path_buf()
    } else {
        bundle.join(source)
    }
}

/// Berth's side of bind mounts into a new user namespace (runc does the same): the source of
/// every bind mount, opened `O_PATH` through `/proc/PID/root` (so inside the container's new
/// mount namespace, where the init can attach it) with berth's credentials, because the
/// namespace's root may not be allowed to walk to it (a 0700 directory of the host's root).
/// Resolved with `RESOLVE_IN_ROOT`, as the init would. A source berth cannot open is left out:
/// the init then opens it itself and reports the error.
pub(crate) fn open_bind_sources(
    spec: &Spec,
    bundle: &Path,
    pid: i32,
    idmapped: &[crate::namespaces::IdmappedMount],
) -> Vec<(usize, OwnedFd)> {
    let root_path = format!("/proc/{pid}/root");
    let Ok(root) = rustix::fs::open(
        root_path.as_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (index, m) in spec.mounts.iter().enumerate() {
        let opts = parse_mount_options(&m.options);
        if !is_bind(m, &opts) || idmapped.iter().any(|i| i.index == index) {
            continue;
        }
        let Some(source) = &m.source else { continue };
        let source = bind_source(source, bundle);
        let relative = source.strip_prefix("/").unwrap_or(&source);
        match rustix::fs::openat2(
            &root,
            relative,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => out.push((index, fd)),
            Err(e) => log::debug!(
                "bind source {} not opened for the init: {e}",
                source.display()
            ),
        }
    }
    out
}

fn mount_err(m: &Mount, what: &str, e: io::Error) -> Error {
    Error::Init(format!(
        "mount {} on {} ({what}): {e}",
        m.source
            .as_deref()
            .unwrap_or(Path::new(m.typ.as_deref().unwrap_or("none")))
            .display(),
        m.destination.display()
    ))
}

/// Steps 1–4. Returns an `O_PATH` fd of the rootfs mount.
pub(crate) fn prepare(plan: &RootfsPlan<'_>) -> Result<OwnedFd> {
    let linux = plan.spec.linux.as_ref();
    let propagation = linux
        .and_then(|l| l.rootfs_propagation.as_deref())
        .map(propagation_flags)
        .transpose()?;
    let shared = propagation.is_some_and(|p| p & libc::MS_SHARED != 0);
    // 1. Nothing we mount may propagate back to the host.
    let root_prop = match propagation {
        Some(p) if !shared => p | libc::MS_REC,
        _ => libc::MS_SLAVE | libc::MS_REC,
    };
    sysmount::mount(None, "/", None, root_prop, None)
        .map_err(|e| Error::sys("make / a slave mount in the container's namespace", e))?;

    // 2. The rootfs becomes a mount point; from here on it is reached only through its fd.
    let rootfs = plan
        .rootfs
        .to_str()
        .ok_or_else(|| Error::Init("rootfs path is not UTF-8".into()))?;
    sysmount::mount(
        Some(rootfs),
        rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(|e| Error::io("bind mount rootfs", plan.rootfs, e))?;
    let root = rustix::fs::open(
        plan.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open rootfs", plan.rootfs, e.into()))?;

    // 3. The spec's mounts. A v1 `cgroup` mount's binds of the container's own directories
    // wait for berth to make them: they are done as late as the order allows (before a later
    // mount at or under it, else after step 4), so that the rest is done meanwhile.
    let mut dev_from_host = false;
    let dev_read_only = read_only_dev(plan.spec);
    let mut cgroup_binds: Option<super::cgroupfs::CgroupBinds> = None;
    for m in &plan.spec.mounts {
        let opts = parse_mount_options(&m.options);
        if let Some(binds) = cgroup_binds.take_if(|b| !b.may_wait_past(&m.destination)) {
            binds.finish(plan)?;
        }
        if is_cgroup_fs(m, &opts) {
            if let Some(binds) = cgroup_binds.take() {
                binds.finish(plan)?;
            }
            cgroup_binds = super::cgroupfs::mount_cgroup(root.as_fd(), plan, m, &opts)?;
            continue;
        }
        if dev_read_only.is_some_and(|ro| std::ptr::eq(ro, m)) {
            // A read-only /dev is mounted writable: step 4, the later /dev/* mounts and the
            // console need it; `finalize` makes it read-only (as runc, runc#3248).
            let mut writable = m.clone();
            writable.options.retain(|o| o != "ro");
            mount_one(root.as_fd(), plan, &writable)?;
            continue;
        }
        mount_one(root.as_fd(), plan, m)?;
        if m.destination == Path::new("/dev") && is_bind(m, &opts) {
            dev_from_host = true;
        }
    }

    // 4. /dev, unless the caller bind-mounted one from elsewhere (then it is theirs).
    if !dev_from_host {
        if let Some(binds) = cgroup_binds.take_if(|b| !b.may_wait_past(Path::new("/dev"))) {
            binds.finish(plan)?;
        }
        super::devices::populate_dev(root.as_fd(), plan.spec, plan.userns)?;
    }
    if let Some(binds) = cgroup_binds {
        binds.finish(plan)?;
    }

    Ok(root)
}

fn propagation_flags(name: &str) -> Result<u64> {
    let (rec, base) = match name.strip_prefix('r') {
        Some(b) if ["shared", "slave", "private", "unbindable"].contains(&b) => (true, b),
        _ => (false, name),
    };
    let flag = match base {
        "shared" => libc::MS_SHARED,
        "slave" => libc::MS_SLAVE,
        "private" => libc::MS_PRIVATE,
        "unbindable" => libc::MS_UNBINDABLE,
        _ => {
            return Err(Error::Usage(format!(
                "linux.rootfsPropagation: unknown value {name:?}"
            )));
        }
    } as u64;
    Ok(if rec { flag | libc::MS_REC } else { flag })
}

/// `MOUNT_ATTR_*` bits for the flag words of a bind mount's options.
fn bind_attrs(opts: &MountOptions) -> MountAttr {
    attrs_for(opts.flags, opts.clear_flags)
}

/// `MOUNT_ATTR_*` bits for `MS_*` flags to set (`f`) and to clear (`c`).
pub(crate) fn attrs_for(f: u64, c: u64) -> MountAttr {
    let mut attr = MountAttr::default();
    let pairs = [
        (libc::MS_RDONLY, sysmount::MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, sysmount::MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, sysmount::MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, sysmount::MOUNT_ATTR_NOEXEC),
        (libc::MS_NODIRATIME, sysmount::MOUNT_ATTR_NODIRATIME),
        (libc::MS_NOSYMFOLLOW, sysmount::MOUNT_ATTR_NOSYMFOLLOW),
    ];
    for (ms, at) in pairs {
        if f & ms != 0 {
            attr.attr_set |= at;
        } else if c & ms != 0 {
            attr.attr_clr |= at;
        }
    }
    let atime = if f & libc::MS_NOATIME != 0 {
        Some(sysmount::MOUNT_ATTR_NOATIME)
    } else if f & libc::MS_STRICTATIME != 0 {
        Some(sysmount::MOUNT_ATTR_STRICTATIME)
    } else if f & libc::MS_RELATIME != 0 {
        Some(sysmount::MOUNT_ATTR_RELATIME)
    } else {
        None
    };
    if let Some(a) = atime {
        attr.attr_set |= a;
        attr.attr_clr |= sysmount::MOUNT_ATTR_ATIME_MASK;
    }
    attr
}

fn mount_one(root: BorrowedFd<'_>, plan: &RootfsPlan<'_>, m: &Mount) -> Result<()> {
    let opts = parse_mount_options(&m.options);
    let typ = m.typ.as_deref().unwrap_or("");
    if is_bind(m, &opts) {
        return bind_mount(root, plan, m, &opts);
    }
    if typ.is_empty() {
        return Err(mount_err(
            m,
            "no type",
            io::Error::from_raw_os_error(libc::EINVAL),
        ));
    }
    // proc and sysfs must land on a real directory, never through a symlink (CVE-2019-19921).
    let strict = matches!(typ, "proc" | "sysfs");
    let target = if strict {
        match open_in_root(root, &m.destination, ResolveFlags::NO_SYMLINKS) {
            Ok(fd) if super::paths::is_dir(fd.as_fd()).unwrap_or(false) => fd,
            Ok(_) => {
                return Err(Error::Init(format!(
                    "mount destination {}: {typ} must be mounted on ordinary directory",
                    m.destination.display()
                )));
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(Error::Init(format!(
                    "mount destination {} is a symlink: {typ} must be mounted on ordinary directory",
                    m.destination.display()
                )));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                mkdir_all(root, &m.destination, 0o755)
                    .map_err(|e| mount_err(m, "create mount point", e))?
            }
            Err(e) => return Err(mount_err(m, "open mount point", e)),
        }
    } else {
        mkdir_all(root, &m.destination, 0o755).map_err(|e| mount_err(m, "create mount point", e))?
    };
    let old_dir = if opts.tmpcopyup && typ == "tmpfs" {
        Some(
            open_in_root_with(
                root,
                &m.destination,
                OFlags::RDONLY | OFlags::DIRECTORY,
                ResolveFlags::empty(),
            )
            .map_err(|e| mount_err(m, "open for tmpcopyup", e))?,
        )
    } else {
        None
    };
    let flags = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
    let source = m.source.as_ref().map(|s| s.to_string_lossy().into_owned());
    let data = mount_data(typ, &opts.data, plan)?;
    match sysmount::mount_at_fd(
        Some(source.as_deref().unwrap_or(typ)),
        target.as_fd(),
        Some(typ),
        flags,
        Some(&data),
    ) {
        Ok(()) => {}
        // A user namespace may mount sysfs only with a network namespace it owns; without one
        // the host's /sys is bound instead, read-only etc. all the way down (runc's rootless
        // template does this in the config; berth does it for any such config).
        Err(e) if typ == "sysfs" && plan.userns && e.raw_os_error() == Some(libc::EPERM) => {
            let host = rustix::fs::open(
                "/sys",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| mount_err(m, "open the host's /sys", e.into()))?;
            let mut attr = attrs_for(flags, 0);
            keep_locked(host.as_fd(), &mut attr);
            attach_bind_rec(host.as_fd(), target.as_fd(), &attr)
                .map_err(|e| mount_err(m, "bind the host's /sys (no network namespace)", e))?;
        }
        Err(e) => return Err(mount_err(m, typ, e)),
    }
    if let Some(old) = old_dir {
        let new = open_in_root_with(
            root,
            &m.destination,
            OFlags::RDONLY | OFlags::DIRECTORY,
            ResolveFlags::empty(),
        )
        .map_err(|e| mount_err(m, "open tmpfs for tmpcopyup", e))?;
        copy_tree(old.as_fd(), new.as_fd()).map_err(|e| mount_err(m, "tmpcopyup", e))?;
    }
    finish_attrs(root, m, &opts)
}

/// The data string for a filesystem mount; berth adds `max=` to devpts instances (one container
/// must not use up the host's ptys) unless the caller gave one. The annotation must be a
/// number from 1 up (the kernel would refuse anything else with a bare `EINVAL`).
fn mount_data(typ: &str, data: &str, plan: &RootfsPlan<'_>) -> Result<String> {
    if typ != "devpts" {
        return Ok(data.to_string());
    }
    let mut words: Vec<String> = data
        .split(',')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    if !words.iter().any(|w| w.starts_with("max=")) {
        let max = plan
            .spec
            .annotations
            .get(crate::annotations::DEVPTS_MAX)
            .cloned()
            .unwrap_or_else(|| crate::annotations::DEVPTS_MAX_DEFAULT.to_string());
        if !max.parse::<u32>().is_ok_and(|n| n > 0) {
            return Err(Error::Usage(format!(
                "annotations[{}]: {max:?} is not a number of ptys from 1 up",
                crate::annotations::DEVPTS_MAX
            )));
        }
        words.push(format!("max={max}"));
    }
    Ok(words.join(","))
}

/// Propagation and recursive attributes, applied to the mount now at the destination.
fn finish_attrs(root: BorrowedFd<'_>, m: &Mount, opts: &MountOptions) -> Result<()> {
    if opts.propagation == 0 && !opts.has_rec_attrs() {
        return Ok(());
    }
    let fd = open_in_root(root, &m.destination, ResolveFlags::empty())
        .map_err(|e| mount_err(m, "reopen mount", e))?;
    if opts.propagation != 0 {
        let rec = opts.propagation & libc::MS_REC != 0;
        let attr = MountAttr {
            propagation: opts.propagation & !libc::MS_REC,
            ..MountAttr::default()
        };
        sysmount::mount_setattr(fd.as_fd(), rec, &attr)
            .map_err(|e| mount_err(m, "propagation", e))?;
    }
    if opts.has_rec_attrs() {
        let attr = MountAttr {
            attr_set: opts.rec_attr_set,
            attr_clr: opts.rec_attr_clr,
            ..MountAttr::default()
        };
        sysmount::mount_setattr(fd.as_fd(), true, &attr)
            .map_err(|e| mount_err(m, "recursive attributes", e))?;
    }
    Ok(())
}

fn bind_mount(
    root: BorrowedFd<'_>,
    plan: &RootfsPlan<'_>,
    m: &Mount,
    opts: &MountOptions,
) -> Result<()> {
    let source = m.source.as_ref().ok_or_else(|| {
        Error::Init(format!(
            "mount {}: bind mount without source",
            m.destination.display()
        ))
    })?;
    let source = bind_source(source, plan.bundle);
    let index = plan.spec.mounts.iter().position(|x| std::ptr::eq(x, m));
    if let Some(idm) = plan.idmapped.iter().find(|i| Some(i.index) == index) {
        // Made, flags and idmapping included, by berth before the clone: attach it.
        let is_dir =
            super::paths::is_dir(idm.tree.as_fd()).map_err(|e| Error::io("stat", &source, e))?;
        let target = if is_dir {
            mkdir_all(root, &m.destination, 0o755)
        } else {
            ensure_file(root, &m.destination)
        }
        .map_err(|e| mount_err(m, "create mount point", e))?;
        rustix::mount::move_mount(
            idm.tree.as_fd(),
            "",
            target.as_fd(),
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .map_err(|e| mount_err(m, "attach the idmapped mount", e.into()))?;
        return finish_attrs(root, m, opts);
    }
    let opened;
    let src = match plan.bind_sources.iter().find(|(i, _)| Some(*i) == index) {
        Some((_, fd)) => fd.as_fd(),
        None => {
            opened = rustix::fs::open(&source, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::io("open bind mount source", &source, e.into()))?;
            opened.as_fd()
        }
    };
    let is_dir = super::paths::is_dir(src).map_err(|e| Error::io("stat", &source, e))?;
    let target = if is_dir {
        mkdir_all(root, &m.destination, 0o755)
    } else {
        ensure_file(root, &m.destination)
    }
    .map_err(|e| mount_err(m, "create mount point", e))?;
    let mut attr = bind_attrs(opts);
    if plan.userns {
        keep_locked(src, &mut attr);
    }
    attach_bind(src, target.as_fd(), opts.recursive, &attr).map_err(|e| mount_err(m, "bind", e))?;
    finish_attrs(root, m, opts)
}

/// Berth's side of idmapped mounts (see [`crate::namespaces::IdmappedMount`]): for every bind
/// mount with `uidMappings`/`gidMappings`, or with the `idmap`/`ridmap` option (then the
/// container's own maps), a detached clone of the source with the mount's flags and
/// `MOUNT_ATTR_IDMAP` set (recursively for `ridmap`). Runs in berth, before the clone.
pub(crate) fn prepare_idmapped(
    spec: &Spec,
    bundle: &Path,
) -> Result<Vec<crate::namespaces::IdmappedMount>> {
    let mut out = Vec::new();
    let linux = spec.linux.clone().unwrap_or_default();
    for (index, m) in spec.mounts.iter().enumerate() {
        let opts = parse_mount_options(&m.options);
        let explicit = !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty();
        if !explicit && !opts.idmap {
            continue;
        }
        let field = format!("mounts[{index}]");
        if !is_bind(m, &opts) {
            return Err(Error::Usage(format!(
                "{field}: idmapped mounts must be bind mounts (type {:?})",
                m.typ.as_deref().unwrap_or("")
            )));
        }
        let (uids, gids, fields) = if explicit {
            (
                &m.uid_mappings,
                &m.gid_mappings,
                [
                    format!("{field}.uidMappings"),
                    format!("{field}.gidMappings"),
                ],
            )
        } else {
            (
                &linux.uid_mappings,
                &linux.gid_mappings,
                ["linux.uidMappings".into(), "linux.gidMappings".into()],
            )
        };
        if uids.is_empty() || gids.is_empty() {
            return Err(Error::Usage(format!(
                "{field}: the idmap option needs linux.uidMappings and linux.gidMappings (or the mount's own)"
            )));
        }
        let Some(source) = &m.source else {
            return Err(Error::Usage(format!("{field}.source: missing")));
        };
        let source = bind_source(source, bundle);
        let src = rustix::fs::open(&source, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::io("open bind mount source", &source, e.into()))?;
        let mut flags = OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH;
        if opts.recursive || opts.idmap_recursive {
            flags |= OpenTreeFlags::AT_RECURSIVE;
        }
        let tree = rustix::mount::open_tree(src.as_fd(), "", flags)
            .map_err(|e| Error::io("clone bind mount source", &source, e.into()))?;
        let ns =
            crate::namespaces::userns_fd(uids, gids, [fields[0].as_str(), fields[1].as_str()])?;
        let mut attr = bind_attrs(&opts);
        if attr.attr_set != 0 || attr.attr_clr != 0 {
            sysmount::mount_setattr(tree.as_fd(), false, &attr)
                .map_err(|e| Error::Usage(format!("{field}: mount flags: {e}")))?;
        }
        attr = MountAttr {
            attr_set: sysmount::MOUNT_ATTR_IDMAP,
            userns_fd: std::os::fd::AsRawFd::as_raw_fd(&ns) as u64,
            ..MountAttr::default()
        };
        sysmount::mount_setattr(tree.as_fd(), opts.idmap_recursive, &attr).map_err(|e| {
            Error::Usage(format!(
                "{field}: cannot idmap {} ({e}); idmapped mounts need a file system that supports them and a privileged berth",
                source.display()
            ))
        })?;
        out.push(crate::namespaces::IdmappedMount { index, tree });
    }
    Ok(out)
}

/// In a user namespace every mount copied from the host is locked: its read-only, nosuid,
/// nodev, noexec and atime settings cannot be cleared (`EPERM`). A bind of such a source keeps
/// them rather than fail, as runc does on remount: the flags the source has are taken out of
/// `attr_clr`, and an access-time change is dropped.
fn keep_locked(src: BorrowedFd<'_>, attr: &mut MountAttr) {
    use rustix::fs::StatVfsMountFlags as F;
    let Ok(st) = rustix::fs::fstatvfs(src) else {
        return;
    };
    for (f, a) in [
        (F::RDONLY, sysmount::MOUNT_ATTR_RDONLY),
        (F::NOSUID, sysmount::MOUNT_ATTR_NOSUID),
        (F::NODEV, sysmount::MOUNT_ATTR_NODEV),
        (F::NOEXEC, sysmount::MOUNT_ATTR_NOEXEC),
    ] {
        if st.f_flag.contains(f) && attr.attr_clr & a != 0 {
            log::debug!("keeping the source's locked mount flag {f:?}");
            attr.attr_clr &= !a;
        }
    }
    if attr.attr_clr & sysmount::MOUNT_ATTR_ATIME_MASK != 0 {
        attr.attr_clr &= !sysmount::MOUNT_ATTR_ATIME_MASK;
        attr.attr_set &= !sysmount::MOUNT_ATTR_ATIME_MASK;
    }
}

/// Like [`attach_bind`] for a recursive bind whose attributes apply to every mount of the tree.
fn attach_bind_rec(
    src: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    attr: &MountAttr,
) -> io::Result<()> {
    attach_tree(src, target, true, true, attr)
}

/// [`attach_bind`] of the directory at `path` (absolute, in the init's current root), without
/// opening it first: `open_tree` resolves it itself.
pub(crate) fn attach_bind_path(
    path: &Path,
    target: BorrowedFd<'_>,
    attr: &MountAttr,
) -> io::Result<()> {
    let tree = rustix::mount::open_tree(
        rustix::fs::CWD,
        path,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?;
    move_tree(tree, target, false, attr)
}

/// Clones the mount tree at `src`, sets `attr` on its top, and attaches it on `target`.
pub(crate) fn attach_bind(
    src: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    recursive: bool,
    attr: &MountAttr,
) -> io::Result<()> {
    attach_tree(src, target, recursive, false, attr)
}

/// Clones the mount at `src` (with the mounts below it when `recursive`), sets `attr` on the
/// clone (on every mount of it when `attr_recursive`), and attaches it on `target`.
fn attach_tree(
    src: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    recursive: bool,
    attr_recursive: bool,
    attr: &MountAttr,
) -> io::Result<()> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_EMPTY_PATH;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    let tree = rustix::mount::open_tree(src, "", flags)?;
    move_tree(tree, target, attr_recursive, attr)
}

/// Sets `attr` on a detached tree and attaches it at `target`.
fn move_tree(
    tree: OwnedFd,
    target: BorrowedFd<'_>,
    attr_recursive: bool,
    attr: &MountAttr,
) -> io::Result<()> {
    if attr.attr_set != 0 || attr.attr_clr != 0 {
        sysmount::mount_setattr(tree.as_fd(), attr_recursive, attr)?;
    }
    rustix::mount::move_mount(
        tree.as_fd(),
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )?;
    Ok(())
}

/// Copies the contents of directory `from` into directory `to` (tmpcopyup).
fn copy_tree(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    use rustix::fs::{AtFlags, Dir, FileType};
    let mut dir = Dir::read_from(from)?;
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = rustix::fs::statat(from, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                rustix::fs::mkdirat(to, name, mode)?;
                let sub_from = rustix::fs::openat(
                    from,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let sub_to = rustix::fs::openat(
                    to,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                copy_tree(sub_from.as_fd(), sub_to.as_fd())?;
            }
            FileType::RegularFile => {
                let src = rustix::fs::openat(
                    from,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let dst = rustix::fs::openat(
                    to,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                    mode,
                )?;
                let mut src = std::fs::File::from(src);
                let mut dst = std::fs::File::from(dst);
                std::io::copy(&mut src, &mut dst)?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(from, name, Vec::new())?;
                rustix::fs::symlinkat(target.as_c_str(), to, name)?;
            }
            _ => continue,
        }
        rustix::fs::chownat(
            to,
            name,
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    Ok(())
}

/// A shared `rootfsPropagation` is applied to the new `/` after `pivot_root` (which refuses a
/// shared mount as the new root); the others are applied to `/` before anything is mounted.
pub(crate) fn shared_propagation(spec: &Spec) -> Result<Option<u64>> {
    let p = spec
        .linux
        .as_ref()
        .and_then(|l| l.rootfs_propagation.as_deref())
        .map(propagation_flags)
        .transpose()?;
    Ok(p.filter(|p| p & libc::MS_SHARED != 0))
}

/// Step 5: makes the rootfs the process's `/`, then applies a shared propagation if asked.
pub(crate) fn pivot(root: BorrowedFd<'_>, no_pivot: bool, shared: Option<u64>) -> Result<()> {
    rustix::process::fchdir(root).map_err(|e| Error::sys("chdir into rootfs", e))?;
    if no_pivot {
        hide_outer_proc_and_sys()?;
        sysmount::mount(Some("."), "/", None, libc::MS_MOVE, None)
            .map_err(|e| Error::sys("move rootfs to / (--no-pivot)", e))?;
        rustix::process::chroot(".")
            .map_err(|e| Error::sys("chroot into rootfs (--no-pivot)", e))?;
    } else {
        rustix::process::pivot_root(".", ".").map_err(|e| Error::sys("pivot_root", e))?;
        // The old root now sits on top of the new one; detach it without touching the host.
        sysmount::mount(None, ".", None, libc::MS_SLAVE | libc::MS_REC, None)
            .map_err(|e| Error::sys("make the old root a slave", e))?;
        rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH)
            .map_err(|e| Error::sys("unmount the old root", e))?;
    }
    rustix::process::chdir("/").map_err(|e| Error::sys("chdir /", e))?;
    if let Some(p) = shared {
        sysmount::mount(None, "/", None, p, None)
            .map_err(|e| Error::sys("set rootfsPropagation on /", e))?;
    }
    Ok(())
}

/// The spec's `/dev` mount when it is a read-only filesystem (not a bind mount).
fn read_only_dev(spec: &Spec) -> Option<&Mount> {
    spec.mounts.iter().find(|m| {
        let opts = parse_mount_options(&m.options);
        m.destination == Path::new("/dev")
            && !is_bind(m, &opts)
            && opts.flags & libc::MS_RDONLY != 0
    })
}

/// `--no-pivot` leaves the mounts outside the rootfs in the container's mount namespace (out of
/// sight of the chroot). The kernel lets a process with a user namespace mount a new procfs or
/// sysfs while a *full* one is anywhere in its mount namespace, which would undo maskedPaths;
/// so, as runc's `msMoveRoot`, every full proc and sysfs mount outside the rootfs (the cwd) is
/// detached, or covered with a tmpfs where it cannot be.
fn hide_outer_proc_and_sys() -> Result<()> {
    let rootfs = rustix::process::getcwd(Vec::new()).map_err(|e| Error::sys("getcwd", e))?;
    let rootfs = rootfs.to_string_lossy().into_owned();
    let info = berth_sys::procfs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read", Path::new("/proc/self/mountinfo"), e))?;
    let mut points = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = pre.split(' ').collect();
        let fstype = post.split(' ').next().unwrap_or_default();
        if f.len() < 5 || f[3] != "/" || !matches!(fstype, "proc" | "sysfs") {
            continue;
        }
        let point = unescape_mountinfo(f[4]);
        if point == rootfs || point.starts_with(&format!("{}/", rootfs.trim_end_matches('/'))) {
            continue;
        }
        points.push(point);
    }
    for p in points {
        match sysmount::mount(None, &p, None, libc::MS_SLAVE | libc::MS_REC, None) {
            Ok(()) => {}
            // Gone with a parent detached before.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(Error::sys(format!("make {p} a slave (--no-pivot)"), e)),
        }
        match rustix::mount::unmount(p.as_str(), rustix::mount::UnmountFlags::DETACH) {
            Ok(()) => {}
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::PERM) => {
                sysmount::mount(Some("tmpfs"), &p, Some("tmpfs"), 0, None)
                    .map_err(|e| Error::sys(format!("cover {p} (--no-pivot)"), e))?
            }
            Err(e) => return Err(Error::sys(format!("unmount {p} (--no-pivot)"), e)),
        }
    }
    Ok(())
}

/// Undoes mountinfo's octal escapes (`\040` for a space, …).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let (b'\\', Some(d)) = (b[i], octal) {
            let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Step 6, after `pivot_root`: sysctls are written by the caller; this does `readonlyPaths`,
/// `maskedPaths` and `root.readonly`.
pub(crate) fn finalize(spec: &Spec) -> Result<()> {
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open /", e))?;
    if let Some(m) = read_only_dev(spec) {
        let fd = open_in_root(root.as_fd(), &m.destination, ResolveFlags::empty())
            .map_err(|e| mount_err(m, "reopen mount", e))?;
        let attr = MountAttr {
            attr_set: sysmount::MOUNT_ATTR_RDONLY,
            ..MountAttr::default()
        };
        sysmount::mount_setattr(fd.as_fd(), false, &attr)
            .map_err(|e| mount_err(m, "make read-only", e))?;
    }
    if let Some(linux) = &spec.linux {
        for p in &linux.readonly_paths {
            readonly_path(root.as_fd(), Path::new(p))?;
        }
        if !linux.masked_paths.is_empty() {
            let null = verified_dev_null(root.as_fd())?;
            for p in &linux.masked_paths {
                mask_path(root.as_fd(), null.as_fd(), Path::new(p))?;
            }
        }
    }
    if spec.root.as_ref().is_some_and(|r| r.readonly) {
        let st = rustix::fs::statvfs("/").map_err(|e| Error::sys("statvfs /", e))?;
        let mut flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY;
        let keep = [
            (rustix::fs::StatVfsMountFlags::NOSUID, libc::MS_NOSUID),
            (rustix::fs::StatVfsMountFlags::NODEV, libc::MS_NODEV),
            (rustix::fs::StatVfsMountFlags::NOEXEC, libc::MS_NOEXEC),
            (rustix::fs::StatVfsMountFlags::NOATIME, libc::MS_NOATIME),
            (
                rustix::fs::StatVfsMountFlags::NODIRATIME,
                libc::MS_NODIRATIME,
            ),
            (rustix::fs::StatVfsMountFlags::RELATIME, libc::MS_RELATIME),
        ];
        for (st_flag, ms) in keep {
            if st.f_flag.contains(st_flag) {
                flags |= ms;
            }
        }
        sysmount::mount(None, "/", None, flags, None)
            .map_err(|e| Error::sys("remount / read-only (root.readonly)", e))?;
    }
    Ok(())
}

fn readonly_path(root: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let fd = match open_in_root(root, path, ResolveFlags::empty()) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::io("open readonly path", path, e)),
    };
    let attr = MountAttr {
        attr_set: sysmount::MOUNT_ATTR_RDONLY,
        ..MountAttr::default()
    };
    // Bind the path onto itself, read-only all the way down.
    let tree = rustix::mount::open_tree(
        fd.as_fd(),
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH
            | OpenTreeFlags::AT_RECURSIVE,
    )
    .map_err(|e| Error::io("clone readonly path", path, e.into()))?;
    sysmount::mount_setattr(tree.as_fd(), true, &attr)
        .map_err(|e| Error::io("make read-only", path, e))?;
    rustix::mount::move_mount(
        tree.as_fd(),
        "",
        fd.as_fd(),
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(|e| Error::io("mount read-only", path, e.into()))?;
    Ok(())
}

/// Opens the container's `/dev/null` and checks it is the real 1:3 character device, so a
/// symlink or a raced-in file cannot turn masking into exposure (CVE-2025-31133).
fn verified_dev_null(root: BorrowedFd<'_>) -> Result<OwnedFd> {
    let fd = open_in_root(root, Path::new("/dev/null"), ResolveFlags::NO_SYMLINKS)
        .map_err(|e| Error::io("open", "/dev/null", e))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::io("stat", "/dev/null", e.into()))?;
    let is_char =
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::CharacterDevice;
    if !is_char || rustix::fs::major(st.st_rdev) != 1 || rustix::fs::minor(st.st_rdev) != 3 {
        return Err(Error::Init(
            "/dev/null in the container is not the 1:3 character device; refusing to mask paths with it".into(),
        ));
    }
    Ok(fd)
}

fn mask_path(root: BorrowedFd<'_>, null: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let fd = match open_in_root(root, path, ResolveFlags::empty()) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::io("open masked path", path, e)),
    };
    let is_dir = super::paths::is_dir(fd.as_fd()).map_err(|e| Error::io("stat", path, e))?;
    if is_dir {
        let fs = rustix::mount::fsopen("tmpfs", rustix::mount::FsOpenFlags::FSOPEN_CLOEXEC)
            .map_err(|e| Error::io("mask (fsopen tmpfs)", path, e.into()))?;
        rustix::mount::fsconfig_create(fs.as_fd())
            .map_err(|e| Error::io("mask (tmpfs)", path, e.into()))?;
        let mnt = rustix::mount::fsmount(
            fs.as_fd(),
            rustix::mount::FsMountFlags::FSMOUNT_CLOEXEC,
            rustix::mount::MountAttrFlags::MOUNT_ATTR_RDONLY,
        )
        .map_err(|e| Error::io("mask (fsmount)", path, e.into()))?;
        rustix::mount::move_mount(
            mnt.as_fd(),
            "",
            fd.as_fd(),
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .map_err(|e| Error::io("mask", path, e.into()))?;
    } else {
        attach_bind(null, fd.as_fd(), false, &MountAttr::default())
            .map_err(|e| Error::io("mask", path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::unescape_mountinfo;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo("/a\\040b\\011c\\134d"), "/a b\tc\\d");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        // Not an escape: fewer than three octal digits, or not octal.
        assert_eq!(unescape_mountinfo("/x\\04"), "/x\\04");
        assert_eq!(unescape_mountinfo("/x\\089"), "/x\\089");
    }
}
