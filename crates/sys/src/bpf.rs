//! The few `bpf(2)` commands a cgroup v2 device filter needs: load a program, attach it to a
//! cgroup, list and detach the programs attached there.
//!
//! `union bpf_attr` is passed as a zeroed, 8-aligned 256-byte buffer (larger than the union
//! in any kernel so far): the kernel only requires the bytes it does not know to be zero, and
//! commands such as `BPF_PROG_QUERY` write results back at their own offsets, which must lie
//! inside our buffer. Only the first fields of each command are set; their offsets are the
//! stable UAPI ones.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `BPF_PROG_TYPE_CGROUP_DEVICE`.
pub const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_CGROUP_DEVICE` attach type.
pub const ATTACH_CGROUP_DEVICE: u32 = 6;
/// `BPF_F_ALLOW_MULTI`: several programs on one cgroup, all must allow.
pub const F_ALLOW_MULTI: u32 = 1 << 1;

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;

const ATTR_SIZE: usize = 256;

#[repr(C, align(8))]
struct Attr([u8; ATTR_SIZE]);

impl Attr {
    fn new() -> Self {
        Attr([0; ATTR_SIZE])
    }
    fn u32_at(&mut self, offset: usize, value: u32) {
        self.0[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
    }
    fn u64_at(&mut self, offset: usize, value: u64) {
        self.0[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
    }
    fn read_u32(&self, offset: usize) -> u32 {
        let mut b = [0; 4];
        b.copy_from_slice(&self.0[offset..offset + 4]);
        u32::from_ne_bytes(b)
    }
}

fn bpf(cmd: libc::c_int, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, writable, 8-aligned buffer of ATTR_SIZE bytes for the whole
    // call, and ATTR_SIZE is the size passed. Every pointer stored inside it (instructions,
    // license, log, id array) was set by the callers below from live borrows that outlive
    // this call, with the lengths the kernel will use.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            ATTR_SIZE as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = libc::c_int::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned `fd` as a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Loads a program of type `prog_type` from `insns` (`struct bpf_insn`s, 8 bytes each).
/// On failure the error comes with the verifier's log (empty if it had nothing to say).
/// The returned descriptor is close-on-exec (the kernel always sets it for bpf fds).
pub fn prog_load(
    prog_type: u32,
    insns: &[u8],
    license: &CStr,
    name: &str,
) -> Result<OwnedFd, (io::Error, String)> {
    if insns.is_empty() || insns.len() % 8 != 0 {
        return Err((
            io::Error::from_raw_os_error(libc::EINVAL),
            "program length is not a multiple of 8".into(),
        ));
    }
    let load = |log: Option<&mut Vec<u8>>| {
        let mut attr = Attr::new();
        attr.u32_at(0, prog_type);
        attr.u32_at(4, (insns.len() / 8) as u32);
        attr.u64_at(8, insns.as_ptr() as u64);
        attr.u64_at(16, license.as_ptr() as u64);
        // log_level 24, log_size 28, log_buf 32; kern_version 40, prog_flags 44, prog_name 48.
        if let Some(log) = log {
            attr.u32_at(24, 1);
            attr.u32_at(28, log.len() as u32);
            attr.u64_at(32, log.as_mut_ptr() as u64);
        }
        let name = name.as_bytes();
        let n = name.len().min(15);
        attr.0[48..48 + n].copy_from_slice(&name[..n]);
        bpf(BPF_PROG_LOAD, &mut attr)
    };
    // Without a log first: a valid program's log can overflow the buffer, which older kernels
    // report as a failed load (ENOSPC). Only a refused program is loaded again for its log.
    match load(None) {
        Ok(ret) => owned_fd(ret).map_err(|e| (e, String::new())),
        Err(first) => {
            let mut log = vec![0u8; 256 * 1024];
            match load(Some(&mut log)) {
                Ok(ret) => owned_fd(ret).map_err(|e| (e, String::new())),
                Err(_) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    Err((first, String::from_utf8_lossy(&log[..end]).into_owned()))
                }
            }
        }
    }
}

/// Attaches `prog` to the cgroup directory `target` with `attach_type` and `flags`.
pub fn prog_attach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> io::Result<()> {
    let mut attr = Attr::new();
    attr.u32_at(0, target.as_raw_fd() as u32);
    attr.u32_at(4, prog.as_raw_fd() as u32);
    attr.u32_at(8, attach_type);
    attr.u32_at(12, flags);
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// Detaches `prog` (attached with `attach_type`) from the cgroup directory `target`.
pub fn prog_detach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<()> {
    let mut attr = Attr::new();
    attr.u32_at(0, target.as_raw_fd() as u32);
    attr.u32_at(4, prog.as_raw_fd() as u32);
    attr.u32_at(8, attach_type);
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// The ids of the programs attached to the cgroup directory `target` with `attach_type`
/// (at most 64; not the ones inherited from ancestors).
pub fn prog_query(target: BorrowedFd<'_>, attach_type: u32) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = Attr::new();
    // target_fd 0, attach_type 4, query_flags 8, attach_flags 12, prog_ids 16, prog_cnt 24.
    attr.u32_at(0, target.as_raw_fd() as u32);
    attr.u32_at(4, attach_type);
    attr.u64_at(16, ids.as_mut_ptr() as u64);
    attr.u32_at(24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut attr)?;
    let count = (attr.read_u32(24) as usize).min(ids.len());
    ids.truncate(count);
    Ok(ids)
}

/// Opens the loaded program with id `id`.
pub fn prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = Attr::new();
    attr.u32_at(0, id);
    owned_fd(bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lengths_are_refused_before_the_syscall() {
        let (err, log) = prog_load(PROG_TYPE_CGROUP_DEVICE, &[0; 7], c"GPL", "x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        assert!(log.contains("multiple of 8"));
    }

    #[test]
    fn refused_programs_come_with_the_verifier_log() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        // "exit" without setting r0: the verifier refuses to return an unset register.
        let exit = [0x95u8, 0, 0, 0, 0, 0, 0, 0];
        let (err, log) = prog_load(PROG_TYPE_CGROUP_DEVICE, &exit, c"GPL", "bad").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
        assert!(log.contains("R0"), "{log}");
        // "r0 = 1; exit" is fine.
        let ok = [0xb7u8, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
        prog_load(PROG_TYPE_CGROUP_DEVICE, &ok, c"GPL", "good").unwrap();
    }
}
