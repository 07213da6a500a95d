//! Mount syscalls rustix does not wrap: `mount_setattr(2)`, and the classic `mount(2)` on a
//! target given as an fd (through the `/proc/self/fd` magic link, as runc does).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `MOUNT_ATTR_RDONLY`.
pub const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
/// `MOUNT_ATTR_NOSUID`.
pub const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
/// `MOUNT_ATTR_NODEV`.
pub const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
/// `MOUNT_ATTR_NOEXEC`.
pub const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;
/// `MOUNT_ATTR__ATIME` (mask of the atime bits).
pub const MOUNT_ATTR_ATIME_MASK: u64 = 0x0000_0070;
/// `MOUNT_ATTR_RELATIME`.
pub const MOUNT_ATTR_RELATIME: u64 = 0x0000_0000;
/// `MOUNT_ATTR_NOATIME`.
pub const MOUNT_ATTR_NOATIME: u64 = 0x0000_0010;
/// `MOUNT_ATTR_STRICTATIME`.
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x0000_0020;
/// `MOUNT_ATTR_NODIRATIME`.
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x0000_0080;
/// `MOUNT_ATTR_IDMAP`.
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
/// `MOUNT_ATTR_NOSYMFOLLOW`.
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// Arguments of `mount_setattr(2)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MountAttr {
    /// Attributes to set.
    pub attr_set: u64,
    /// Attributes to clear.
    pub attr_clr: u64,
    /// Propagation (`MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE`, `MS_UNBINDABLE`), or 0.
    pub propagation: u64,
    /// A user namespace fd for `MOUNT_ATTR_IDMAP`, or 0.
    pub userns_fd: u64,
}

/// Changes the attributes of the mount at `fd` (`mount_setattr(fd, "", AT_EMPTY_PATH |
/// AT_RECURSIVE?, attr)`).
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, attr: &MountAttr) -> io::Result<()> {
    #[repr(C)]
    struct Raw {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let raw = Raw {
        attr_set: attr.attr_set,
        attr_clr: attr.attr_clr,
        propagation: attr.propagation,
        userns_fd: attr.userns_fd,
    };
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: `raw` is a valid struct mount_attr of the size passed, alive during the call; the
    // path is an empty NUL-terminated string and `fd` is open.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            std::ptr::addr_of!(raw),
            std::mem::size_of::<Raw>(),
        )
    };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The `/proc/self/fd/N` path of `fd`, for syscalls that only take paths.
pub fn proc_fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Classic `mount(2)` onto the object open at `target` (an `O_PATH` fd), through
/// `/proc/self/fd`. `source` and `data` are passed as given. Needs a procfs at `/proc`.
pub fn mount_at_fd(
    source: Option<&str>,
    target: BorrowedFd<'_>,
    fstype: Option<&str>,
    flags: u64,
    data: Option<&str>,
) -> io::Result<()> {
    mount(source, &proc_fd_path(target), fstype, flags, data)
}

/// Classic `mount(2)` with `MS_*` flags as a plain integer.
pub fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: u64,
    data: Option<&str>,
) -> io::Result<()> {
    let to_c = |s: &str| CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL));
    let source = source.map(to_c).transpose()?;
    let fstype = fstype.map(to_c).transpose()?;
    let data = data.filter(|d| !d.is_empty()).map(to_c).transpose()?;
    let target = to_c(target)?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: all pointers are NUL-terminated strings (or null, which mount(2) accepts for
    // source, fstype and data) that outlive the call.
    let ret = unsafe {
        libc::mount(
            ptr(&source),
            target.as_ptr(),
            ptr(&fstype),
            flags as libc::c_ulong,
            ptr(&data).cast(),
        )
    };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
