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
//! 3. build the sealed handle (overlay, else memfd) and `execveat` it with the same argv and
//!    environment. Failure to protect is an error: berth never runs a container unprotected.
//!
//! `BERTH_EXESEAL=overlay|memfd` forces one method (tests and benchmarks); there is no "off".
//!
//! After the re-exec `std::env::current_exe()` names the sealed copy (`/berth` inside the
//! detached overlay, `/memfd:berth (deleted)`), not the installed binary: whatever looks for
//! files next to berth (the console monitor) does so before calling [`ensure_sealed`].
//!
//! Cost, measured on the 2-core development VM with release builds (median of 300
//! interleaved runs): the re-exec adds 1.5 ms (overlay) or 4.0 ms (memfd, a 3.7 MB copy) to a
//! berth invocation (`berth exec` of a missing id: 2.1 → 3.6 / 6.1 ms); for `berth run` of
//! `/bin/true` the CPU time goes from 11.3 to 12.7 ms (overlay) or 15.7 ms (memfd). Almost all
//! of it is the second `execve` and dynamic loading of berth; the overlay's own syscalls take
//! about 0.2 ms.

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

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
    ensure_sealed_keeping(preserve_fds, scratch, &[])
}

/// [`ensure_sealed`], also keeping the fds in `keep` open across the re-exec: a file berth
/// itself still has to read afterwards, such as `exec --process /dev/fd/63` from a shell's
/// process substitution (runc's tty.bats does that). They never reach the container: the init
/// and `exec` close every fd above the preserved ones before `execve`.
pub fn ensure_sealed_keeping(preserve_fds: u32, scratch: &Path, keep: &[i32]) -> Result<()> {
    let exe = open_self_exe()?;
    if protection_of(exe.as_fd()).is_some() {
        return Ok(());
    }
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
    let sealed = match method {
        Method::Overlay => match sealed_overlay(scratch) {
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

/// A sealed memfd holding a copy of the binary open at `exe`.
fn sealed_memfd(exe: BorrowedFd<'_>) -> Result<OwnedFd> {
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
        match rustix::fs::sendfile(&memfd, exe, None, chunk) {
            Ok(0) => break,
            Ok(n) => done += n as u64,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("copy berth into its sealed memfd (sendfile)", e)),
        }
    }
    if done != size {
        return Err(Error::Init(format!(
            "copy berth into its sealed memfd: {done} of {size} bytes"
        )));
    }
    rustix::fs::fcntl_add_seals(&memfd, required_seals())
        .map_err(|e| Error::sys("seal berth's memfd copy", e))?;
    Ok(memfd)
}

/// An `O_PATH` handle of the binary seen through a detached read-only overlayfs whose layers
/// are the binary's directory (top) and `scratch` (overlayfs needs two lower layers to run
/// without an upper one).
fn sealed_overlay(scratch: &Path) -> Result<OwnedFd> {
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
    rustix::fs::openat(
        &mnt,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open through the overlayfs", path, e.into()))
}
