//! Loading a classic BPF seccomp program with `seccomp(SECCOMP_SET_MODE_FILTER)`.

use std::io;

/// One classic BPF instruction (`struct sock_filter`).
pub type Insn = libc::sock_filter;

/// `SECCOMP_FILTER_FLAG_TSYNC`: apply the filter to every thread of the process.
pub const FLAG_TSYNC: u32 = 1;
/// `SECCOMP_FILTER_FLAG_LOG`: log every action but `ALLOW`.
pub const FLAG_LOG: u32 = 2;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`: do not force speculative store bypass mitigation.
pub const FLAG_SPEC_ALLOW: u32 = 4;

/// One instruction from its four fields.
pub const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

/// Attaches `program` to the calling thread (all threads with [`FLAG_TSYNC`]). The caller must
/// have `no_new_privs` set or CAP_SYS_ADMIN, as the kernel requires.
pub fn set_mode_filter(flags: u32, program: &[Insn]) -> io::Result<()> {
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    let len =
        u16::try_from(program.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `len` initialised instructions that outlive the call; the
    // kernel copies the program and does not keep the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &prog as *const libc::sock_fprog,
        )
    };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else if ret > 0 {
        // With TSYNC, a positive return is the id of a thread that could not be synchronised.
        Err(io::Error::other(format!(
            "thread {ret} could not take the filter (TSYNC)"
        )))
    } else {
        Ok(())
    }
}
