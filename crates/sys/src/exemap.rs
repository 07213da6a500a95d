//! Moving the running program onto another handle of the same binary without an `execve`.
//!
//! [`move_exe_to`] replaces every mapping of the running executable (found in
//! `/proc/self/maps` by device and inode): the mappings of read-only and executable segments
//! by mappings of the new handle at the same file offsets (the same bytes, so the instruction
//! after the `mmap` that replaces the code running it is the same instruction), the mappings of
//! writable segments (data, bss, RELRO) by anonymous copies moved in place with `mremap`; then
//! `prctl(PR_SET_MM_EXE_FILE)` points `/proc/self/exe` at the new handle. The kernel allows
//! that only once no mapping of the old file is left, which is what makes the move complete.
//!
//! The caller must pass a handle whose content is the running binary's: [`same_build`] checks
//! the ELF notes (the GNU build id) of the handle against the ones in memory.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// A `PT_LOAD` or `PT_NOTE` program header of the running binary.
#[derive(Debug, Clone, Copy)]
struct Segment {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: usize,
    filesz: usize,
    memsz: usize,
}

/// The running binary's loadable and note program headers (at their loaded addresses), from
/// the auxiliary vector.
fn own_segments() -> io::Result<Vec<Segment>> {
    // SAFETY: getauxval only reads the auxiliary vector the kernel gave the process.
    let (phdr, phnum) = unsafe {
        (
            libc::getauxval(libc::AT_PHDR) as usize,
            libc::getauxval(libc::AT_PHNUM) as usize,
        )
    };
    if phdr == 0 || phnum == 0 {
        return Err(io::Error::other("no AT_PHDR in the auxiliary vector"));
    }
    // SAFETY: AT_PHDR/AT_PHNUM describe the program headers the kernel mapped for this
    // process (part of the first PT_LOAD), valid for the life of the process.
    let headers = unsafe { std::slice::from_raw_parts(phdr as *const libc::Elf64_Phdr, phnum) };
    let bias = headers
        .iter()
        .find(|h| h.p_type == libc::PT_PHDR)
        .map(|h| phdr.wrapping_sub(h.p_vaddr as usize))
        .ok_or_else(|| io::Error::other("no PT_PHDR program header"))?;
    let segments = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD || h.p_type == libc::PT_NOTE)
        .map(|h| Segment {
            kind: h.p_type,
            flags: h.p_flags,
            offset: h.p_offset,
            vaddr: bias.wrapping_add(h.p_vaddr as usize),
            filesz: h.p_filesz as usize,
            memsz: h.p_memsz as usize,
        })
        .collect();
    Ok(segments)
}

/// True if `file` holds the same build as the running binary: every `PT_NOTE` segment reads the
/// same from the file as from memory, and one of them is a GNU build id.
pub fn same_build(file: BorrowedFd<'_>) -> io::Result<bool> {
    let segments = own_segments()?;
    let mut build_id = false;
    for s in segments.iter().filter(|s| s.kind == libc::PT_NOTE) {
        // SAFETY: a PT_NOTE segment lies inside a mapped, readable PT_LOAD of the running
        // binary (notes are loaded), for the life of the process.
        let mem = unsafe { std::slice::from_raw_parts(s.vaddr as *const u8, s.filesz) };
        let mut buf = vec![0u8; s.filesz];
        let n = rustix::io::pread(file, &mut buf, s.offset)?;
        if n != s.filesz || buf != mem {
            return Ok(false);
        }
        build_id |= has_gnu_build_id(mem);
    }
    Ok(build_id)
}

/// Whether an ELF note area holds an `NT_GNU_BUILD_ID` note named "GNU".
fn has_gnu_build_id(mut notes: &[u8]) -> bool {
    let word = |b: &[u8]| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let align4 = |n: usize| (n + 3) & !3;
    while notes.len() >= 12 {
        let (namesz, descsz, kind) = (word(notes), word(&notes[4..]), word(&notes[8..]));
        let name_end = 12 + align4(namesz);
        let end = name_end + align4(descsz);
        if end > notes.len() {
            return false;
        }
        if kind == 3 && namesz == 4 && &notes[12..16] == b"GNU\0" && descsz > 0 {
            return true;
        }
        notes = &notes[end..];
    }
    false
}

/// One mapping of the running binary, from `/proc/self/maps`.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    start: usize,
    end: usize,
    prot: libc::c_int,
    offset: u64,
}

fn exe_mappings(maps: &str, dev: (u32, u32), ino: u64) -> Vec<Mapping> {
    crate::mem::maps_lines(maps)
        .filter(|m| m.dev == dev && m.inode == ino && m.perms.len() >= 4)
        .map(|m| {
            let p = m.perms.as_bytes();
            let mut prot = 0;
            if p[0] == b'r' {
                prot |= libc::PROT_READ;
            }
            if p[1] == b'w' {
                prot |= libc::PROT_WRITE;
            }
            if p[2] == b'x' {
                prot |= libc::PROT_EXEC;
            }
            Mapping {
                start: m.start,
                end: m.end,
                prot,
                offset: m.offset,
            }
        })
        .collect()
}

/// Moves the running program onto `new_exe` (a read-only handle of the same build, see
/// [`same_build`]); `old` is the running binary's device and inode (`/proc/self/exe`). Must be
/// called while the process has a single thread. On error the process may be left with some
/// mappings moved and others not, which is harmless (the same bytes either way) but leaves
/// `/proc/self/exe` where it was.
pub fn move_exe_to(new_exe: BorrowedFd<'_>, old_dev: (u32, u32), old_ino: u64) -> io::Result<()> {
    let segments = own_segments()?;
    let page = rustix::param::page_size();
    let writable = |addr: usize| {
        segments.iter().any(|s| {
            let lo = s.vaddr & !(page - 1);
            let hi = (s.vaddr + s.memsz + page - 1) & !(page - 1);
            s.kind == libc::PT_LOAD && s.flags & libc::PF_W != 0 && addr >= lo && addr < hi
        })
    };
    let maps = crate::procfs::read_to_string("/proc/self/maps")?;
    let mappings = exe_mappings(&maps, old_dev, old_ino);
    if mappings.is_empty() {
        return Err(io::Error::other(
            "no mapping of the running binary in /proc/self/maps",
        ));
    }
    let plan: Vec<(Mapping, bool)> = mappings.iter().map(|m| (*m, writable(m.start))).collect();
    // From here to the end no allocation happens between reading a writable mapping and moving
    // its copy in place, and no signal handler runs (all blocked), so nothing written to it in
    // between is lost.
    let old_mask = crate::signal::block(&crate::signal::SigSet::full())?;
    let moved = move_mappings(&plan, new_exe);
    let _ = crate::signal::set_mask(&old_mask);
    moved?;
    set_exe_file(new_exe)
}

fn move_mappings(plan: &[(Mapping, bool)], new_exe: BorrowedFd<'_>) -> io::Result<()> {
    for (m, copy) in plan.iter().copied() {
        let len = m.end - m.start;
        if copy {
            copy_in_place(m, len)?;
        } else {
            // SAFETY: the range is a mapping of the running binary's read-only or executable
            // segment; `new_exe` holds the same bytes at the same offset (same build), so
            // replacing it changes no byte the program reads or executes.
            let p = unsafe {
                libc::mmap(
                    m.start as *mut libc::c_void,
                    len,
                    m.prot,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    new_exe.as_raw_fd(),
                    m.offset as libc::off_t,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// `struct prctl_mm_map` of `<linux/prctl.h>`.
#[repr(C)]
struct PrctlMmMap {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: u64,
    auxv_size: u32,
    exe_fd: u32,
}

/// Points `/proc/self/exe` at `exe`: `PR_SET_MM_EXE_FILE` (needs `CAP_SYS_RESOURCE`), else
/// `PR_SET_MM_MAP` with the mm's current layout and only the exe changed (needs
/// `CAP_CHECKPOINT_RESTORE` or `CAP_SYS_ADMIN`, as CRIU uses it).
fn set_exe_file(exe: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: PR_SET_MM_EXE_FILE takes an fd and changes only the mm's exe_file reference.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_MM,
            libc::PR_SET_MM_EXE_FILE,
            exe.as_raw_fd() as libc::c_ulong,
            0,
            0,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let first = io::Error::last_os_error();
    if first.raw_os_error() != Some(libc::EPERM) {
        return Err(first);
    }
    let stat = crate::procfs::read_to_string("/proc/self/stat")?;
    let rest = &stat[stat
        .rfind(')')
        .ok_or_else(|| io::Error::other("/proc/self/stat"))?
        + 2..];
    // `rest` starts at field 3; field N is rest[N - 3].
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(0))
        .collect();
    let field = |n: usize| {
        f.get(n - 3)
            .copied()
            .ok_or_else(|| io::Error::other("/proc/self/stat"))
    };
    // SAFETY: brk(0) changes nothing and returns the current program break.
    let brk = unsafe { libc::syscall(libc::SYS_brk, 0usize) } as u64;
    let map = PrctlMmMap {
        start_code: field(26)?,
        end_code: field(27)?,
        start_stack: field(28)?,
        start_data: field(45)?,
        end_data: field(46)?,
        start_brk: field(47)?,
        brk,
        arg_start: field(48)?,
        arg_end: field(49)?,
        env_start: field(50)?,
        env_end: field(51)?,
        auxv: 0,
        auxv_size: 0,
        exe_fd: exe.as_raw_fd() as u32,
    };
    // SAFETY: the kernel reads `size_of::<PrctlMmMap>()` bytes of `map`, a live value of the
    // layout it expects; the addresses are the mm's own, so only exe_file changes.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_MM,
            libc::PR_SET_MM_MAP,
            &map as *const PrctlMmMap as libc::c_ulong,
            std::mem::size_of::<PrctlMmMap>() as libc::c_ulong,
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Replaces a writable (or RELRO) mapping by an anonymous copy of its current content.
fn copy_in_place(m: Mapping, len: usize) -> io::Result<()> {
    // A fresh anonymous mapping, written only here.
    let anon = crate::mem::map_anonymous(len)?
        .as_ptr()
        .cast::<libc::c_void>();
    if m.prot & libc::PROT_READ != 0 {
        // SAFETY: the source is a readable mapping of `len` bytes, the destination the new
        // anonymous one; they do not overlap. Nothing writes the source until it is replaced.
        unsafe { std::ptr::copy_nonoverlapping(m.start as *const u8, anon as *mut u8, len) };
    }
    // SAFETY: `anon` is the mapping made above; mprotect only changes its protection, and
    // mremap moves it over the old range (which the kernel unmaps), the same size and content.
    unsafe {
        if libc::mprotect(anon, len, m.prot) != 0 {
            let e = io::Error::last_os_error();
            libc::munmap(anon, len);
            return Err(e);
        }
        let p = libc::mremap(
            anon,
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            m.start as *mut libc::c_void,
        );
        if p == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            libc::munmap(anon, len);
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_id_note_is_found() {
        // namesz 4, descsz 4, type 3, "GNU\0", desc.
        let mut n = Vec::new();
        for w in [4u32, 4, 3] {
            n.extend_from_slice(&w.to_ne_bytes());
        }
        n.extend_from_slice(b"GNU\0\x01\x02\x03\x04");
        assert!(has_gnu_build_id(&n));
        n[8] = 1; // NT_GNU_ABI_TAG
        assert!(!has_gnu_build_id(&n));
        assert!(!has_gnu_build_id(&n[..10]));
    }

    #[test]
    fn the_running_test_binary_is_its_own_build() {
        let exe = std::fs::File::open("/proc/self/exe").unwrap();
        assert!(same_build(std::os::fd::AsFd::as_fd(&exe)).unwrap());
        let other = std::fs::File::open("/bin/sh").unwrap();
        assert!(!same_build(std::os::fd::AsFd::as_fd(&other)).unwrap());
    }

    #[test]
    fn maps_lines_of_one_file_are_picked() {
        let maps = "00200000-002e5000 r--p 00000000 fe:01 1234 /b\n\
                    002e5000-0065d000 r-xp 000e4000 fe:01 1234 /b\n\
                    0065d000-00663000 rw-p 0045b000 fe:01 1234 /b\n\
                    00700000-00800000 rw-p 00000000 00:00 0 [heap]\n\
                    7f000000-7f001000 r--p 00000000 fe:01 999 /lib\n";
        let m = exe_mappings(maps, (0xfe, 1), 1234);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].prot, libc::PROT_READ | libc::PROT_EXEC);
        assert_eq!(m[1].offset, 0xe4000);
        assert_eq!(m[2].prot, libc::PROT_READ | libc::PROT_WRITE);
    }
}
