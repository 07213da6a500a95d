//! A log file rotated by rename and reopen, never truncated.
//!
//! `NAME` is the file being written; `NAME.1` is the previous one, `NAME.2` the one before, and
//! so on up to `NAME.<max_files>`. When `NAME` would grow past `max_size`, the oldest kept file is
//! unlinked, the others are renamed one step up, `NAME` becomes `NAME.1`, and a new `NAME` is
//! created. Readers holding an open fd keep reading the same bytes across a rotation (renames do
//! not change inodes), which is also what external log shippers rely on. Every operation is
//! relative to the monitor directory's fd, so no path length limit applies.
//!
//! Writes are buffered (up to [`BUF_SIZE`]) and flushed by [`Rotating::flush`], which the
//! monitor calls at the end of every event-loop turn.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::error::MonitorError;

/// The write buffer's size.
pub const BUF_SIZE: usize = 64 * 1024;

/// Rotation limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rotate before the file would exceed this many bytes (0: never rotate).
    pub max_size: u64,
    /// Rotated files kept besides the current one (at least 1).
    pub max_files: u32,
}

/// A rotating, buffered log file.
#[derive(Debug)]
pub struct Rotating {
    dir: OwnedFd,
    name: String,
    file: OwnedFd,
    /// Bytes in the current file, buffered ones included.
    size: u64,
    limits: Limits,
    buf: Vec<u8>,
    rotations: u64,
    /// Offset of the current file's first byte.
    base: u64,
    /// `(start offset, length)` of `NAME.1`, `NAME.2`, … (newest first).
    segments: std::collections::VecDeque<(u64, u64)>,
}

fn open_append(dir: BorrowedFd<'_>, name: &str) -> Result<OwnedFd, MonitorError> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| MonitorError::sys("open", name, e))
}

impl Rotating {
    /// Opens (appending to) `name` in `dir`.
    pub fn open(dir: BorrowedFd<'_>, name: &str, limits: Limits) -> Result<Rotating, MonitorError> {
        let dir = rustix::io::fcntl_dupfd_cloexec(dir, 0)
            .map_err(|e| MonitorError::sys("dup", "monitor directory", e))?;
        let file = open_append(dir.as_fd(), name)?;
        let size = rustix::fs::fstat(&file)
            .map_err(|e| MonitorError::sys("fstat", name, e))?
            .st_size as u64;
        Ok(Rotating {
            dir,
            name: name.to_string(),
            file,
            size,
            limits: Limits {
                max_size: limits.max_size,
                max_files: limits.max_files.max(1),
            },
            buf: Vec::new(),
            rotations: 0,
            base: 0,
            segments: std::collections::VecDeque::new(),
        })
    }

    /// The current file's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of rotated file `k` (1 = newest).
    pub fn rotated_name(&self, k: u32) -> String {
        format!("{}.{k}", self.name)
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Rotations so far.
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// Bytes in the current file (buffered ones included).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends `data` as one unit: it is never split across two files, unless it alone exceeds
    /// `max_size` (then it is split at the limit). Returns how many rotations happened.
    pub fn write(&mut self, mut data: &[u8]) -> Result<u32, MonitorError> {
        let mut rotated = 0;
        let max = self.limits.max_size;
        loop {
            let n = if max == 0 {
                data.len()
            } else {
                data.len().min(max as usize)
            };
            if max > 0 && self.size > 0 && self.size + n as u64 > max {
                self.rotate()?;
                rotated += 1;
            }
            self.buf.extend_from_slice(&data[..n]);
            self.size += n as u64;
            data = &data[n..];
            if self.buf.len() >= BUF_SIZE {
                self.flush()?;
            }
            if data.is_empty() {
                return Ok(rotated);
            }
        }
    }

    /// The offset (counted over everything written through this value, plus what the file
    /// held when opened) of the current file's first byte.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The oldest offset still on disk.
    pub fn oldest(&self) -> u64 {
        self.segments.back().map_or(self.base, |s| s.0)
    }

    /// Reads bytes at `offset` from whichever file holds them. `Ok(0)` at the end of what was
    /// written; `Ok(None)` when `offset` was in a file rotation deleted.
    pub fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<Option<usize>, MonitorError> {
        let (k, at) = if offset >= self.base {
            if offset - self.base >= self.size {
                return Ok(Some(0));
            }
            self.flush()?;
            (0u32, offset - self.base)
        } else {
            match self
                .segments
                .iter()
                .position(|&(start, len)| offset >= start && offset < start + len)
            {
                Some(i) => (i as u32 + 1, offset - self.segments[i].0),
                None => return Ok(None),
            }
        };
        let fd = match self.open_read(k) {
            Ok(fd) => fd,
            Err(_) => return Ok(None),
        };
        loop {
            match rustix::io::pread(&fd, &mut *out, at) {
                Ok(n) => return Ok(Some(n)),
                Err(Errno::INTR) => {}
                Err(e) => return Err(MonitorError::sys("read", self.name.clone(), e)),
            }
        }
    }

    /// Writes the buffer out.
    pub fn flush(&mut self) -> Result<(), MonitorError> {
        let mut at = 0;
        while at < self.buf.len() {
            match rustix::io::write(&self.file, &self.buf[at..]) {
                Ok(n) => at += n,
                Err(Errno::INTR) => {}
                Err(e) => {
                    self.buf.drain(..at);
                    return Err(MonitorError::sys("write", &self.name, e));
                }
            }
        }
        self.buf.clear();
        Ok(())
    }

    /// Rotates now (see the module docs).
    pub fn rotate(&mut self) -> Result<(), MonitorError> {
        self.flush()?;
        let dir = self.dir.as_fd();
        let oldest = self.rotated_name(self.limits.max_files);
        match rustix::fs::unlinkat(dir, &oldest, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(MonitorError::sys("unlink", &oldest, e)),
        }
        for k in (1..self.limits.max_files).rev() {
            let from = self.rotated_name(k);
            let to = self.rotated_name(k + 1);
            match rustix::fs::renameat(dir, &from, dir, &to) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(MonitorError::sys("rename", &from, e)),
            }
        }
        let first = self.rotated_name(1);
        rustix::fs::renameat(dir, &self.name, dir, &first)
            .map_err(|e| MonitorError::sys("rename", &self.name, e))?;
        self.file = open_append(dir, &self.name)?;
        self.segments.push_front((self.base, self.size));
        self.segments.truncate(self.limits.max_files as usize);
        self.base += self.size;
        self.size = 0;
        self.rotations += 1;
        Ok(())
    }

    /// Opens the current file (`k == 0`) or rotated file `k` for reading.
    pub fn open_read(&self, k: u32) -> Result<OwnedFd, MonitorError> {
        let name = if k == 0 {
            self.name.clone()
        } else {
            self.rotated_name(k)
        };
        rustix::fs::openat(
            self.dir.as_fd(),
            &name,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| MonitorError::sys("open", name, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> (tempfile::TempDir, OwnedFd) {
        let t = tempfile::tempdir().expect("tempdir");
        let fd = rustix::fs::open(
            t.path(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("open dir");
        (t, fd)
    }

    #[test]
    fn rotates_by_rename_keeps_n_files_and_reads_by_offset() {
        let (t, d) = dir();
        let mut r = Rotating::open(
            d.as_fd(),
            "x.log",
            Limits {
                max_size: 100,
                max_files: 2,
            },
        )
        .unwrap();
        let mut all = Vec::new();
        for i in 0..50u32 {
            let chunk = format!("chunk {i:03}|").into_bytes(); // 10 bytes
            all.extend_from_slice(&chunk);
            r.write(&chunk).unwrap();
        }
        r.flush().unwrap();
        // 500 bytes, 100 per file: x.log (the last 100), x.log.1, x.log.2; older ones deleted.
        let read = |n: &str| std::fs::read(t.path().join(n)).unwrap();
        assert_eq!(read("x.log"), all[400..500]);
        assert_eq!(read("x.log.1"), all[300..400]);
        assert_eq!(read("x.log.2"), all[200..300]);
        assert!(!t.path().join("x.log.3").exists());
        assert_eq!(r.rotations(), 4);
        assert_eq!(r.base(), 400);
        assert_eq!(r.oldest(), 200);
        let mut buf = [0u8; 1000];
        assert_eq!(r.read_at(150, &mut buf).unwrap(), None);
        for off in [200u64, 250, 299, 300, 399, 400, 450, 499] {
            let n = r.read_at(off, &mut buf).unwrap().unwrap();
            assert!(n > 0);
            assert_eq!(
                buf[..n],
                all[off as usize..off as usize + n],
                "offset {off}"
            );
        }
        assert_eq!(r.read_at(500, &mut buf).unwrap(), Some(0));
    }

    #[test]
    fn a_unit_is_not_split_unless_larger_than_the_limit() {
        let (t, d) = dir();
        let mut r = Rotating::open(
            d.as_fd(),
            "y.log",
            Limits {
                max_size: 10,
                max_files: 5,
            },
        )
        .unwrap();
        r.write(b"123456").unwrap();
        assert_eq!(r.write(b"abcdef").unwrap(), 1);
        assert_eq!(r.write(b"0123456789ABCDE").unwrap(), 2);
        r.flush().unwrap();
        let read = |n: &str| std::fs::read(t.path().join(n)).unwrap();
        assert_eq!(read("y.log.3"), b"123456");
        assert_eq!(read("y.log.2"), b"abcdef");
        assert_eq!(read("y.log.1"), b"0123456789");
        assert_eq!(read("y.log"), b"ABCDE");
    }

    #[test]
    fn an_open_reader_survives_rotation() {
        let (_t, d) = dir();
        let mut r = Rotating::open(
            d.as_fd(),
            "z.log",
            Limits {
                max_size: 4,
                max_files: 1,
            },
        )
        .unwrap();
        r.write(b"abcd").unwrap();
        r.flush().unwrap();
        let reader = r.open_read(0).unwrap();
        r.write(b"efgh").unwrap();
        r.write(b"ijkl").unwrap();
        let mut buf = [0u8; 8];
        // z.log.1 was deleted by the second rotation; the open fd still reads it.
        assert_eq!(rustix::io::read(&reader, &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"abcd");
    }
}
