//! Giving memory back before a long, mostly idle phase (berth's foreground relay, which lives as
//! long as the container).
//!
//! - [`trim_heap`]: `malloc_trim(0)`, so what setup allocated and freed (config parsing, the
//!   state record…) leaves the process.
//! - [`release_code_pages`]: `madvise(MADV_DONTNEED)` on every private, read-only, executable
//!   *file* mapping listed in `/proc/self/maps` (the program's and the libraries' code). For such
//!   a mapping this only drops the process's page-table entries: the pages stay in the page
//!   cache, nothing is lost (code is never written: the mappings are `r-xp`), and what the
//!   process executes afterwards faults back in from the cache. Writable or anonymous mappings
//!   are never touched (`MADV_DONTNEED` would discard their contents).
//! - [`reset_peak_rss`]: writes `5` to `/proc/self/clear_refs`, which sets `VmHWM` to the
//!   current RSS (Linux ≥ 4.0), so the peak of the phase that follows can be measured.
//!
//! And [`ZeroedPages`], a buffer whose pages cost nothing until they are used.

use std::io;
use std::ptr::NonNull;

/// A zero-filled buffer in its own anonymous private mapping. The kernel hands out zeroed
/// pages on first touch, so a page the program never writes or reads is never faulted in,
/// charged or zeroed; `vec![0u8; n]` instead writes every byte (glibc reuses freed heap
/// memory and must clear it), faulting in all of it at once. For buffers sized for the worst
/// case that usually carry a few bytes (a 64 KiB relay buffer of a container that prints one
/// line; a message buffer): a page fault costs about 4 µs on the development VM.
#[derive(Debug)]
pub struct ZeroedPages {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned exclusively by the value (like a `Box<[u8]>`), so moving it to
// another thread or sharing `&` references to it is as safe as for a boxed slice.
unsafe impl Send for ZeroedPages {}
// SAFETY: as above; `&ZeroedPages` only gives out `&[u8]`.
unsafe impl Sync for ZeroedPages {}

impl ZeroedPages {
    /// A buffer of `len` bytes (at least 1), all zero.
    pub fn new(len: usize) -> io::Result<ZeroedPages> {
        let len = len.max(1);
        let ptr = map_anonymous(len)?;
        Ok(ZeroedPages { ptr, len })
    }
}

/// A fresh private anonymous read-write mapping of `len` bytes (zero until written), owned by
/// the caller, who unmaps it (or moves it, as `exemap` does).
pub(crate) fn map_anonymous(len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a new mapping at an address the kernel picks; nothing else refers to it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // (No allocation on any path: `exemap` calls this between copying the binary's writable
    // data and moving the copy in place, where malloc must not touch that data.)
    NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
}

impl std::ops::Deref for ZeroedPages {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` is a live mapping of `len` readable bytes (zero until written), owned
        // by `self` for the lifetime of the borrow.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for ZeroedPages {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for ZeroedPages {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made; no borrow of it outlives `self`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// `malloc_trim(0)`: returns free heap memory to the kernel. True if memory was released.
/// (glibc only; elsewhere it does nothing and returns false.)
pub fn trim_heap() -> bool {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: malloc_trim only walks glibc's own free lists under its arena locks; it has
        // no preconditions.
        unsafe { libc::malloc_trim(0) != 0 }
    }
    #[cfg(not(target_env = "gnu"))]
    {
        false
    }
}

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MapsLine<'a> {
    pub start: usize,
    pub end: usize,
    /// `rwxp`-style permissions.
    pub perms: &'a str,
    pub offset: u64,
    /// Major and minor device numbers.
    pub dev: (u32, u32),
    pub inode: u64,
    /// The path, or `[heap]`-style name, or "" for an anonymous mapping.
    pub path: &'a str,
}

/// The lines of a `/proc/PID/maps` text that parse.
pub(crate) fn maps_lines(maps: &str) -> impl Iterator<Item = MapsLine<'_>> {
    maps.lines().filter_map(|line| {
        let mut f = line.split_whitespace();
        let (start, end) = f.next()?.split_once('-')?;
        let perms = f.next()?;
        let offset = u64::from_str_radix(f.next()?, 16).ok()?;
        let (major, minor) = f.next()?.split_once(':')?;
        let inode = f.next()?.parse().ok()?;
        Some(MapsLine {
            start: usize::from_str_radix(start, 16).ok()?,
            end: usize::from_str_radix(end, 16).ok()?,
            perms,
            offset,
            dev: (
                u32::from_str_radix(major, 16).ok()?,
                u32::from_str_radix(minor, 16).ok()?,
            ),
            inode,
            path: f.next().unwrap_or(""),
        })
    })
}

/// The mappings that qualify for [`release_code_pages`]: start, end.
fn code_mappings(maps: &str) -> Vec<(usize, usize)> {
    maps_lines(maps)
        // Private, readable, executable, not writable, backed by a real file.
        .filter(|m| m.perms == "r-xp" && m.inode != 0 && m.path.starts_with('/'))
        .map(|m| (m.start, m.end))
        .collect()
}

/// Drops this process's resident pages of its code mappings (see the module docs); returns the
/// number of bytes of address space advised.
pub fn release_code_pages() -> io::Result<usize> {
    let maps = crate::procfs::read_to_string("/proc/self/maps")?;
    let mut total = 0;
    for (start, end) in code_mappings(&maps) {
        // SAFETY: [start, end) is a whole mapping the kernel just listed as private, read-only
        // and executable, backed by a file (`r-xp`, inode ≠ 0). MADV_DONTNEED on such a mapping
        // only zaps page-table entries: its contents are the file's, unchanged (nothing can
        // have written them), and later accesses fault the same bytes back in from the page
        // cache. No Rust object lives in code pages, so no reference is invalidated.
        let rc =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        total += end - start;
    }
    Ok(total)
}

/// Resets `VmHWM` to the current RSS (`echo 5 > /proc/self/clear_refs`).
pub fn reset_peak_rss() -> io::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_private_read_only_code_of_files_qualifies() {
        let maps = "\
55d0c0000000-55d0c0010000 r--p 00000000 08:01 123 /usr/bin/berth
55d0c0010000-55d0c0200000 r-xp 00010000 08:01 123 /usr/bin/berth
55d0c0200000-55d0c0210000 rw-p 00200000 08:01 123 /usr/bin/berth
7f0000000000-7f0000100000 r-xp 00000000 08:01 456 /usr/lib/libc.so.6
7f0000200000-7f0000201000 r-xp 00000000 00:00 0 [vdso]
7f0000300000-7f0000301000 rwxp 00000000 08:01 789 /tmp/jit
7f0000400000-7f0000401000 r-xs 00000000 08:01 790 /tmp/shared
7f0000500000-7f0000501000 r-xp 00000000 00:00 0
";
        assert_eq!(
            code_mappings(maps),
            vec![
                (0x55d0c0010000, 0x55d0c0200000),
                (0x7f0000000000, 0x7f0000100000)
            ]
        );
    }

    #[test]
    fn releasing_code_pages_keeps_the_process_running() {
        let before = std::fs::read_to_string("/proc/self/status").unwrap();
        let advised = release_code_pages().unwrap();
        assert!(advised > 0);
        // Code runs again (it faults back in), and data is intact.
        let v: Vec<u64> = (0..1000).collect();
        assert_eq!(v.iter().sum::<u64>(), 499_500);
        assert!(before.contains("VmRSS"));
        trim_heap();
        reset_peak_rss().unwrap();
    }

    #[test]
    fn zeroed_writable_and_untouched_until_used() {
        let rss = || {
            let s = std::fs::read_to_string("/proc/self/statm").unwrap();
            s.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
        };
        let before = rss();
        let mut b = ZeroedPages::new(64 << 20).unwrap();
        assert_eq!(b.len(), 64 << 20);
        // 64 MiB mapped, nothing resident yet (16384 pages if it had been cleared).
        assert!(rss() < before + 1024, "{} -> {}", before, rss());
        assert!(b[..4096].iter().all(|&x| x == 0) && b[(64 << 20) - 1] == 0);
        b[5] = 7;
        assert_eq!(b[5], 7);
        assert_eq!(ZeroedPages::new(0).unwrap().len(), 1);
    }
}
