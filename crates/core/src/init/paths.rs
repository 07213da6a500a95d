//! Path handling inside a container rootfs that berth does not trust.
//!
//! Every lookup goes through `openat2(root, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`:
//! symlinks in the rootfs resolve as if the rootfs were `/`, so no component can lead out of it
//! (CVE-2026-41579, CVE-2026-47766 and their kin). Directories and files are created relative to
//! an already resolved parent fd, and mounts target the resulting `O_PATH` fd, never a path.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Turns `/a/b/../c` into `a/b/c` components relative to the root; `..` are kept as they are
/// (RESOLVE_IN_ROOT clamps them at the root).
pub fn relative(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => out.push(".."),
            Component::Normal(n) => out.push(n),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Opens `path` inside `root` (`O_PATH`), resolving it as if `root` were `/`: symlinks are
/// followed, the last component's too, but never out of the root (as runc's securejoin).
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, extra: ResolveFlags) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat2(
        root,
        relative(path),
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | extra,
    )?)
}

/// Opens `path` inside `root` with `flags` (for reading or writing), resolved in the root.
pub fn open_in_root_with(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: OFlags,
    resolve: ResolveFlags,
) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat2(
        root,
        relative(path),
        flags | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | resolve,
    )?)
}

fn file_type(fd: BorrowedFd<'_>) -> io::Result<rustix::fs::FileType> {
    Ok(rustix::fs::FileType::from_raw_mode(
        rustix::fs::fstat(fd)?.st_mode,
    ))
}

/// Makes every missing directory of `path` inside `root` (mode `mode`) and returns an `O_PATH`
/// fd of the last one. An existing non-directory component is an error (`ENOTDIR`).
pub fn mkdir_all(root: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    let rel = relative(path);
    let mut done = PathBuf::new();
    let mut current: OwnedFd = open_in_root(root, Path::new("."), ResolveFlags::empty())?;
    for comp in rel.components() {
        done.push(comp);
        current = match open_in_root(root, &done, ResolveFlags::empty()) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let name = comp.as_os_str();
                match rustix::fs::mkdirat(current.as_fd(), name, Mode::from_raw_mode(mode)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                open_in_root(root, &done, ResolveFlags::empty())?
            }
            Err(e) => return Err(e),
        };
        if !file_type(current.as_fd())?.eq(&rustix::fs::FileType::Directory) {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
    }
    Ok(current)
}

/// Makes sure `path` inside `root` exists as a regular file (creating an empty one, its parents
/// included) and returns an `O_PATH` fd of it. Nothing is ever opened for reading or writing, so a
/// FIFO planted at the path cannot block berth; a directory or symlink there is an error.
pub fn ensure_file(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    let rel = relative(path);
    let parent = rel.parent().unwrap_or(Path::new("."));
    let name = rel
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let dir = mkdir_all(root, parent, 0o755)?;
    match rustix::fs::mknodat(
        dir.as_fd(),
        name,
        rustix::fs::FileType::RegularFile,
        Mode::from_raw_mode(0o644),
        0,
    ) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = rustix::fs::openat(
        dir.as_fd(),
        name,
        OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    match file_type(fd.as_fd())? {
        rustix::fs::FileType::RegularFile | rustix::fs::FileType::CharacterDevice => Ok(fd),
        rustix::fs::FileType::Symlink => Err(io::Error::from_raw_os_error(libc::ELOOP)),
        rustix::fs::FileType::Directory => Err(io::Error::from_raw_os_error(libc::EISDIR)),
        _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

/// True when `fd` is a directory.
pub fn is_dir(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(file_type(fd)? == rustix::fs::FileType::Directory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("/a/b")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
        assert_eq!(relative(Path::new("/a/../b")), PathBuf::from("a/../b"));
    }

    #[test]
    fn mkdir_all_stays_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        // A symlink that points out of the root must resolve inside it.
        std::os::unix::fs::symlink(outside.path(), root.path().join("evil")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("gone"), root.path().join("dangling"))
            .unwrap();
        let inside = root.path().join(outside.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        let rootfd = rustix::fs::open(
            root.path(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        mkdir_all(rootfd.as_fd(), Path::new("/evil/x/y"), 0o755).unwrap();
        assert!(inside.join("x/y").is_dir(), "{}", inside.display());
        ensure_file(rootfd.as_fd(), Path::new("/evil/f")).unwrap();
        assert!(inside.join("f").is_file());
        // A dangling symlink out of the root fails closed.
        assert!(mkdir_all(rootfd.as_fd(), Path::new("/dangling/z"), 0o755).is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn ensure_file_refuses_fifo_and_dir() {
        let root = tempfile::tempdir().unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.path().join("fifo"),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        std::fs::create_dir(root.path().join("dir")).unwrap();
        let rootfd = rustix::fs::open(
            root.path(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        assert!(ensure_file(rootfd.as_fd(), Path::new("/fifo")).is_err());
        assert!(ensure_file(rootfd.as_fd(), Path::new("/dir")).is_err());
    }
}
