//! Reading `/proc` files in as few system calls as the kernel allows.
//!
//! `/proc` files report a size of 0, so `std::fs::read_to_string` stats and seeks the file, then
//! starts with a 32-byte read and doubles: eight reads for a 3 KiB `/proc/self/maps`, and for
//! `seq_file` files such as `mountinfo` each short read makes the kernel format records again.
//! Here a 16 KiB buffer takes the files on berth's paths (a few dozen lines) in one read, plus
//! the read that returns 0; a larger file is read on in chunks as large.

use std::io;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// Read size: larger than the `/proc` files berth reads on its hot paths.
const CHUNK: usize = 16 * 1024;

/// The whole text of the `/proc` (or `/sys`) file at `path`; invalid UTF-8 is an error.
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let fd = rustix::fs::open(
        path.as_ref(),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    loop {
        if buf.capacity() - buf.len() < CHUNK / 2 {
            buf.reserve(CHUNK);
        }
        // `spare_capacity` appends what the kernel wrote to `buf`.
        match rustix::io::read(&fd, rustix::buffer::spare_capacity(&mut buf)) {
            Ok(0) => break,
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_larger_than_one_chunk_whole() {
        let dir = std::env::temp_dir().join(format!("berth-procfs-{}", std::process::id()));
        let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        assert!(text.len() > 2 * CHUNK);
        std::fs::write(&dir, &text).unwrap();
        let got = read_to_string(&dir);
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(got.unwrap(), text);
    }

    #[test]
    fn reads_proc_files_as_std_does() {
        for p in [
            "/proc/self/mountinfo",
            "/proc/self/cgroup",
            "/proc/sys/kernel/cap_last_cap",
        ] {
            assert_eq!(
                read_to_string(p).unwrap(),
                std::fs::read_to_string(p).unwrap(),
                "{p}"
            );
        }
    }

    #[test]
    fn a_missing_file_is_not_found() {
        let e = read_to_string("/proc/self/no-such-file").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
