//! berth runs from a copy of itself that nobody can write (CVE-2019-5736).
//!
//! Every process berth puts into a container (the init, `exec`'s tenants) is a clone of berth
//! until it calls `execve`, and its `/proc/<pid>/exe` is berth's binary. A container process
//! that can reach that link (`CAP_SYS_PTRACE`, a pid namespace shared with the host, or an
//! entrypoint `#!/proc/self/exe` which makes the kernel execute berth *inside* the container)
//! could open the binary through it and, once no berth process runs it any more (`ETXTBSY`
//! ends), overwrite the host's berth. So `create`, `run` and `exec` first re-execute berth
//! from a handle that cannot be written:
//!
//! - **overlay** (privileged, the default for root): a detached, read-only overlayfs made with
//!   `fsopen` whose top lower layer is the directory holding the binary (runc ≥ 1.2's method).
//!   No bytes are copied; a write through `/proc/<pid>/exe` fails with `EROFS`, and nothing
//!   unwraps a detached overlay to its lower file.
//! - **memfd** (unprivileged, or when overlayfs is unavailable): a `memfd` copy of the binary
//!   sealed with `F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL` (runc 1.1, crun,
//!   youki); writes fail with `EPERM` and would only ever touch the copy.
//!
//! Order (in [`ensure_sealed`], called by the CLI before anything else happens):
//! 1. open `/proc/self/exe`; if it already is a sealed memfd or sits on a read-only mount, the
//!    process is protected: return (this is also how the re-executed berth stops);
//! 2. mark every fd from `3 + preserve_fds` up close-on-exec, so the re-exec drops the junk a
//!    caller may have leaked to berth (CVE-2024-21626 hygiene: only stdio and the preserved fds
//!    survive into berth, hence into the container);
//! 3. with the overlay (root): move the running process onto the overlay's view of its binary
//!    in place, without an exec ([`berth_sys::exemap`]): after a check that the view holds the
//!    running build (its ELF build id), every mapping of the binary is replaced (code and
//!    read-only data by the view's, writable data by anonymous copies) and `/proc/self/exe`
//!    is pointed at the view (`PR_SET_MM_EXE_FILE`, or `PR_SET_MM_MAP` with
//!    `CAP_CHECKPOINT_RESTORE` where `CAP_SYS_RESOURCE` is missing, as on this VM). The result
//!    is the state a re-executed berth would be in, checked the same way, about 0.8 ms sooner;
//! 4. otherwise (no capability for it, a different build behind the path, the memfd method)
//!    build the sealed handle (overlay, else memfd) and `execveat` it with the same argv and
//!    environment. Failure to protect is an error: berth never runs a container unprotected.
//!
//! `BERTH_EXESEAL=overlay|memfd` forces one method and `BERTH_EXESEAL_EXEC=1` the re-exec
//! (tests and benchmarks); there is no "off". A berth that moved in place closes the fds it
//! inherited beyond the preserved and kept ones itself (those without `FD_CLOEXEC` when it
//! started step 2: every fd berth opens is close-on-exec), as the re-exec would have. The CLI
//! does that sooner and cheaper with [`close_inherited_fds`], first thing after parsing its
//! command line, before it opens any fd of its own: one `close_range` instead of reading
//! `/proc/self/fd` and asking each fd for its flags (0.2 ms on the development VM).
//!
//! After the re-exec `std::env::current_exe()` names the sealed copy (`/berth` inside the
//! detached overlay, `/memfd:berth (deleted)`), not the installed binary: whatever looks for
//! files next to berth (the console monitor) does so before calling [`ensure_sealed`].
//!
//! Cost, measured on the 2-core development VM with release builds (median of 300
//! interleaved runs): the re-exec adds 1.5 ms (overlay) or 4.0 ms (memfd, a 3.7 MB copy) to a
//! berth invocation (`berth exec` of a missing id: 2.1 → 3.6 / 6.1 ms); for `berth run` of
//! `/bin/true` the CPU time goes from 11.3 to 12.7 ms (overlay) or 15.7 ms (memfd). Almost all
//! of it is the second `execve` and the start-up of berth. The in-place move instead takes
//! 0.6-1.1 ms, of which making the overlay 0.2-0.7 ms and replacing the mappings 0.2 ms
//! (`bench/run-true.sh`: 8.9 vs 9.7 ms and 9.4 vs 10.4 ms for `run` of `/bin/true`).

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use berth_sys::process::Helper;
use rustix::fs::{Mode, OFlags, SealFlags};

use crate::error::{Error, Result};

/// The seals a protected memfd carries.
fn required_seals() -> SealFlags {
    SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE
}

/// How the running binary is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// A sealed memfd copy.
    Memfd,
    /// A read-only overlayfs view (berth's own, or the binary's file system is read-only).
    ReadOnlyMount,
}

/// How the running binary is protected, or `None` when it is a plain writable file.
pub fn current_protection() -> Result<Option<Protection>> {
    let exe = open_self_exe()?;
    Ok(protection_of(exe.as_fd()))
}

fn open_self_exe() -> Result<OwnedFd> {
    rustix::fs::open(
        "/proc/self/exe",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open", "/proc/self/exe", e.into()))
}

fn protection_of(exe: BorrowedFd<'_>) -> Option<Protection> {
    if let Ok(seals) = rustix::fs::fcntl_get_seals(exe) {
        if seals.contains(required_seals()) {
            return Some(Protection::Memfd);
        }
    }
    match rustix::fs::fstatvfs(exe) {
        Ok(st) if st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) => {
            Some(Protection::ReadOnlyMount)
        }
        _ => None,
    }
}

/// Which method to use for the sealed copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Overlay,
    Memfd,
}

fn forced_method() -> Result<Option<Method>> {
    match std::env::var_os("BERTH_EXESEAL") {
        None => Ok(None),
        Some(v) if v == "overlay" => Ok(Some(Method::Overlay)),
        Some(v) if v == "memfd" => Ok(Some(Method::Memfd)),
        Some(v) => Err(Error::Usage(format!(
            "BERTH_EXESEAL={}: expected overlay or memfd",
            v.to_string_lossy()
        ))),
    }
}

/// Makes sure berth runs from a binary no container can overwrite: returns when it already
/// does, else re-executes berth from a sealed handle (and does not return). `preserve_fds`
/// fds from 3 up stay open across the re-exec; every other fd from 3 up is closed by it.
/// `scratch` is a directory berth owns (the state root), used as the overlay's empty layer.
pub fn ensure_sealed(preserve_fds: u32, scratch: &Path) -> Result<()> {
    ensure_sealed_keeping(preserve_fds, scratch, &[], None)
}

/// Set once [`close_inherited_fds`] ran: [`ensure_sealed_keeping`] then has no inherited fd to
/// look for.
static INHERITED_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Closes every fd from `3 + preserve_fds` up except those in `keep`: what berth inherited
/// beyond stdio and the preserved fds, which a re-exec would drop (CVE-2024-21626 hygiene).
/// Only correct before berth opens any fd of its own (the CLI calls it right after parsing its
/// command line, before the log file); afterwards [`ensure_sealed_keeping`] skips its own scan.
pub fn close_inherited_fds(preserve_fds: u32, keep: &[i32]) -> Result<()> {
    let first = 3 + preserve_fds;
    let mut kept: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .filter(|&fd| fd >= first)
        .collect();
    kept.sort_unstable();
    kept.dedup();
    let mut from = first;
    for k in kept {
        if k > from {
            berth_sys::process::close_fd_range(from, k - 1)
                .map_err(|e| Error::sys("close inherited fds (close_range)", e))?;
        }
        from = k + 1;
    }
    berth_sys::process::close_fd_range(from, u32::MAX)
        .map_err(|e| Error::sys("close inherited fds (close_range)", e))?;
    INHERITED_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// [`ensure_sealed`], also keeping the fds in `keep` open across the re-exec: a file berth
/// itself still has to read afterwards, such as `exec --process /dev/fd/63` from a shell's
/// process substitution (runc's tty.bats does that). They never reach the container: the init
/// and `exec` close every fd above the preserved ones before `execve`. `helper`, when given,
/// closes the overlay's detached mount off berth's path (its last close waits for RCU).
pub fn ensure_sealed_keeping(
    preserve_fds: u32,
    scratch: &Path,
    keep: &[i32],
    helper: Option<&Helper>,
) -> Result<()> {
    let exe = open_self_exe()?;
    if protection_of(exe.as_fd()).is_some() {
        return Ok(());
    }
    let inherited = if INHERITED_CLOSED.load(std::sync::atomic::Ordering::Relaxed) {
        Vec::new()
    } else {
        inherited_fds(3 + preserve_fds)
    };
    berth_sys::process::cloexec_fds_from(3 + preserve_fds)
        .map_err(|e| Error::sys("mark inherited fds close-on-exec (close_range)", e))?;
    for &fd in keep {
        if let Some(b) = berth_sys::fd::borrow_raw(fd) {
            berth_sys::process::clear_cloexec(b)
                .map_err(|e| Error::sys(format!("keep fd {fd} across the re-exec"), e))?;
        }
    }
    let method = match forced_method()? {
        Some(m) => m,
        None if rustix::process::geteuid().is_root() => Method::Overlay,
        None => Method::Memfd,
    };
    if method == Method::Overlay && !exec_forced() {
        match move_onto_overlay(exe.as_fd(), scratch, helper) {
            Ok(()) => {
                // What the re-exec would have dropped: the fds berth inherited (berth's own
                // are close-on-exec from their open) beyond the preserved and kept ones.
                for fd in inherited.into_iter().filter(|fd| !keep.contains(fd)) {
                    berth_sys::fd::close_inherited(fd);
                }
                return Ok(());
            }
            Err(e) => {
                log::debug!("exeseal: moving onto the overlay in place failed ({e}); re-executing")
            }
        }
    }
    let sealed = match method {
        Method::Overlay => match sealed_overlay(scratch, helper) {
            Ok(fd) => fd,
            Err(e) if forced_method()?.is_none() => {
                log::debug!("exeseal: overlay unavailable ({e}); using a memfd copy");
                sealed_memfd(exe.as_fd())?
            }
            Err(e) => return Err(e),
        },
        Method::Memfd => sealed_memfd(exe.as_fd())?,
    };
    drop(exe);
    let argv = to_cstrings(std::env::args_os())?;
    let envp = to_cstrings(std::env::vars_os().map(|(k, v)| {
        let mut kv = k;
        kv.push("=");
        kv.push(v);
        kv
    }))?;
    let err = berth_sys::process::execveat_fd(sealed.as_fd(), &argv, &envp);
    Err(Error::sys(
        "re-execute berth from its sealed copy (CVE-2019-5736 protection)",
        err,
    ))
}

/// The open fds from `first` up without `FD_CLOEXEC`: those berth inherited (every fd berth
/// opens itself is close-on-exec, and one that crossed the exec into berth cannot be).
fn inherited_fds(first: u32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&fd| fd >= first as i32)
        .filter(|&fd| {
            berth_sys::fd::borrow_raw(fd).is_some_and(|b| {
                rustix::io::fcntl_getfd(b).is_ok_and(|f| !f.contains(rustix::io::FdFlags::CLOEXEC))
            })
        })
        .collect()
}

/// `BERTH_EXESEAL_EXEC=1`: re-execute even where berth could move onto its sealed handle in
/// place (tests and benchmarks compare the two).
fn exec_forced() -> bool {
    std::env::var_os("BERTH_EXESEAL_EXEC").is_some_and(|v| v == "1")
}

/// Moves the running berth onto the detached overlay's view of its binary without an exec
/// ([`berth_sys::exemap`]): every mapping of the binary is replaced and `/proc/self/exe` then
/// names the overlay's file. Needs `CAP_SYS_RESOURCE` or `CAP_CHECKPOINT_RESTORE` (`PR_SET_MM`)
/// and the same build in the overlay as in memory (checked by the ELF build id); otherwise it
/// fails and berth re-executes. Afterwards the protection is checked as a re-executed berth checks it.
fn move_onto_overlay(exe: BorrowedFd<'_>, scratch: &Path, helper: Option<&Helper>) -> Result<()> {
    let st = rustix::fs::fstat(exe).map_err(|e| Error::io("stat", "/proc/self/exe", e.into()))?;
    let dev = (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev));
    let view = sealed_overlay(scratch, helper)?;
    let same = berth_sys::exemap::same_build(view.as_fd())
        .map_err(|e| Error::sys("read the overlay's view of berth's binary", e))?;
    if !same {
        return Err(Error::Init(
            "the binary behind berth's path is not the running build".into(),
        ));
    }
    berth_sys::exemap::move_exe_to(view.as_fd(), dev, st.st_ino)
        .map_err(|e| Error::sys("move berth onto its read-only overlay view", e))?;
    drop(view);
    match current_protection()? {
        Some(Protection::ReadOnlyMount) => Ok(()),
        other => Err(Error::Init(format!(
            "after the move /proc/self/exe is not read-only ({other:?})"
        ))),
    }
}

/// The fd number a path such as `/dev/fd/63` or `/proc/self/fd/63` names, if it is one.
pub fn fd_of_path(path: &Path) -> Option<i32> {
    let s = path.to_str()?;
    ["/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .and_then(|n| n.parse().ok())
        .filter(|&n: &i32| n > 2)
}

fn to_cstrings(items: impl Iterator<Item = OsString>) -> Result<Vec<CString>> {
    items
        .map(|s| {
            CString::new(s.as_bytes()).map_err(|_| {
                Error::Usage(format!(
                    "argument or environment entry with a NUL byte: {:?}",
                    s
                ))
            })
        })
        .collect()
}

/// How many fresh copies [`sealed_memfd`] makes when sealing one fails with `EBUSY`.
const SEAL_ATTEMPTS: u32 = 3;

/// A sealed memfd holding a copy of the binary open at `exe`.
///
/// `F_SEAL_WRITE` fails with `EBUSY` when the kernel still sees an extra reference on one of
/// the copy's pages after waiting about 150 ms for it to go (seen once in a rootless `exec`
/// during a loaded CI run, not reproducible alone); a fresh copy is then made and sealed, up
/// to [`SEAL_ATTEMPTS`] times.
fn sealed_memfd(exe: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut attempt = 1;
    loop {
        let memfd = memfd_copy(exe)?;
        match rustix::fs::fcntl_add_seals(&memfd, required_seals()) {
            Ok(()) => return Ok(memfd),
            Err(rustix::io::Errno::BUSY) if attempt < SEAL_ATTEMPTS => {
                log::debug!("exeseal: sealing copy {attempt} failed with EBUSY; copying again");
                attempt += 1;
            }
            Err(e) => return Err(Error::sys("seal berth's memfd copy", e)),
        }
    }
}

/// An unsealed memfd holding a copy of the binary open at `exe` (read from offset 0).
fn memfd_copy(exe: BorrowedFd<'_>) -> Result<OwnedFd> {
    use rustix::fs::MemfdFlags;
    let base = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3) keeps vm.memfd_noexec=1 from making the copy non-executable; older
    // kernels refuse the flag with EINVAL and make executable memfds anyway.
    let memfd = match rustix::fs::memfd_create("berth", base | MemfdFlags::EXEC) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::INVAL) => rustix::fs::memfd_create("berth", base)
            .map_err(|e| Error::sys("memfd_create for berth's sealed copy", e))?,
        Err(e) => return Err(Error::sys("memfd_create for berth's sealed copy", e)),
    };
    let size = rustix::fs::fstat(exe)
        .map_err(|e| Error::io("stat", "/proc/self/exe", e.into()))?
        .st_size as u64;
    let mut done = 0u64;
    while done < size {
        let chunk = (size - done).min(1 << 30) as usize;
        match rustix::fs::sendfile(&memfd, exe, Some(&mut done), chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("copy berth into its sealed memfd (sendfile)", e)),
        }
    }
    if done != size {
        return Err(Error::Init(format!(
            "copy berth into its sealed memfd: {done} of {size} bytes"
        )));
    }
    Ok(memfd)
}

/// A read-only handle of the binary seen through a detached read-only overlayfs whose layers
/// are the binary's directory (top) and `scratch` (overlayfs needs two lower layers to run
/// without an upper one).
fn sealed_overlay(scratch: &Path, helper: Option<&Helper>) -> Result<OwnedFd> {
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
    let path = rustix::fs::readlink("/proc/self/exe", Vec::new())
        .map_err(|e| Error::io("readlink", "/proc/self/exe", e.into()))?;
    let path = Path::new(std::ffi::OsStr::from_bytes(path.as_bytes()));
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Error::Init(format!(
            "berth's binary path {} has no directory",
            path.display()
        )));
    };
    if !path.is_absolute() || path.to_string_lossy().ends_with(" (deleted)") {
        return Err(Error::Init(format!(
            "berth's binary {} is not on a path overlayfs can use",
            path.display()
        )));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(scratch)
        .map_err(|e| Error::io("create", scratch, e))?;
    let escape = |p: &Path| {
        p.to_string_lossy()
            .replace('\\', "\\\\")
            .replace(':', "\\:")
            .replace(',', "\\,")
    };
    let lower = format!("{}:{}", escape(dir), escape(scratch));
    let ctx = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| Error::sys("fsopen overlay", e))?;
    rustix::mount::fsconfig_set_string(ctx.as_fd(), "lowerdir", lower.as_str())
        .map_err(|e| Error::sys(format!("overlayfs lowerdir={lower}"), e))?;
    // Only to keep dmesg quiet when the layers are on different file systems.
    let _ = rustix::mount::fsconfig_set_string(ctx.as_fd(), "xino", "off");
    rustix::mount::fsconfig_create(ctx.as_fd())
        .map_err(|e| Error::sys("create the overlayfs for berth's binary", e))?;
    let mnt = rustix::mount::fsmount(
        ctx.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOSUID,
    )
    .map_err(|e| Error::sys("fsmount the overlayfs for berth's binary", e))?;
    let file = rustix::fs::openat(
        &mnt,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open through the overlayfs", path, e.into()));
    // The open file keeps the overlay alive; the mount fd's last close dissolves the detached
    // mount and waits for an RCU grace period, which the helper pays where there is one.
    match helper {
        Some(h) => h.close(mnt),
        None => drop(mnt),
    }
    file
}
