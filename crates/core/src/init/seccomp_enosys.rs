//! The `-ENOSYS` stub runc puts in front of a profile's filter: a syscall newer than every
//! syscall the profile names (per architecture) fails with `ENOSYS`, not the profile's default
//! errno, so programs and libcs that probe for a new syscall fall back to an older one instead
//! of failing with `EPERM` (the profile's author could not have meant a syscall they did not
//! know of). Added only when the default action refuses (an `ALLOW` or `LOG` default lets
//! unknown syscalls run anyway), and not when the default errno is `ENOSYS` already.
//!
//! The stub is classic BPF prepended to the program libseccomp exports; libseccomp's program
//! loads what it needs itself, and its jumps are relative, so it runs unchanged after the stub.

use berth_sys::seccomp::{Insn, insn};

const LD_W_ABS: u16 = 0x20;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGT_K: u16 = 0x25;
const JMP_JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// `offsetof(struct seccomp_data, nr)` and `arch`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// Set in the syscall number of an x32 call (its `arch` is `AUDIT_ARCH_X86_64`).
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The largest syscall number the profile names on one architecture the kernel reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ArchLimit {
    /// `AUDIT_ARCH_*`, as in `seccomp_data.arch`.
    pub audit_arch: u32,
    /// The largest native syscall number named.
    pub max: u32,
    /// For `AUDIT_ARCH_X86_64`: the largest x32 number named (bit 30 set), when the filter
    /// covers x32. `None` leaves x32 calls to the profile's filter.
    pub x32_max: Option<u32>,
}

#[derive(Clone, Copy)]
enum To {
    /// The next instruction.
    Next,
    /// The instruction after the next one.
    SkipOne,
    /// The first instruction of the next architecture's block.
    NextBlock,
    /// `return ERRNO(ENOSYS)`.
    Enosys,
    /// The profile's filter.
    Main,
}

struct Op {
    code: u16,
    k: u32,
    jt: To,
    jf: To,
}

fn op(code: u16, k: u32, jt: To, jf: To) -> Op {
    Op { code, k, jt, jf }
}

/// The stub for `limits`, to be followed directly by the profile's filter.
pub(crate) fn stub(limits: &[ArchLimit]) -> Vec<Insn> {
    if limits.is_empty() {
        return Vec::new();
    }
    let mut blocks: Vec<Vec<Op>> = Vec::new();
    for l in limits {
        let mut b = vec![
            op(JMP_JEQ_K, l.audit_arch, To::Next, To::NextBlock),
            op(LD_W_ABS, OFF_NR, To::Next, To::Next),
        ];
        if l.audit_arch == AUDIT_ARCH_X86_64 {
            b.push(op(JMP_JGE_K, X32_SYSCALL_BIT, To::Next, To::SkipOne));
            match l.x32_max {
                Some(m) => b.push(op(JMP_JGT_K, m, To::Enosys, To::Main)),
                None => b.push(op(JMP_JA, 0, To::Main, To::Main)),
            }
        }
        b.push(op(JMP_JGT_K, l.max, To::Enosys, To::Main));
        blocks.push(b);
    }
    // ld arch; blocks…; ja main; ret ENOSYS; main
    let body: usize = blocks.iter().map(Vec::len).sum();
    let enosys = 1 + body + 1;
    let main = enosys + 1;
    let mut out = vec![insn(LD_W_ABS, 0, 0, OFF_ARCH)];
    let mut block_start = 1;
    for b in &blocks {
        let next_block = block_start + b.len();
        for (j, o) in b.iter().enumerate() {
            let at = block_start + j;
            let rel = |t: To| -> usize {
                let target = match t {
                    To::Next => at + 1,
                    To::SkipOne => at + 2,
                    To::NextBlock => next_block,
                    To::Enosys => enosys,
                    To::Main => main,
                };
                target - (at + 1)
            };
            out.push(match o.code {
                JMP_JA => insn(JMP_JA, 0, 0, rel(o.jt) as u32),
                LD_W_ABS => insn(LD_W_ABS, 0, 0, o.k),
                // The stub is a few dozen instructions: every offset fits in a u8.
                code => insn(code, rel(o.jt) as u8, rel(o.jf) as u8, o.k),
            });
        }
        block_start = next_block;
    }
    out.push(insn(JMP_JA, 0, 0, 1));
    out.push(insn(RET_K, 0, 0, SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    out
}

/// `AUDIT_ARCH_X86_64`.
pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// `AUDIT_ARCH_I386`.
pub(crate) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `AUDIT_ARCH_AARCH64`.
pub(crate) const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
/// `AUDIT_ARCH_ARM`.
pub(crate) const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

/// Parses the bytes `seccomp_export_bpf` wrote (native `struct sock_filter`s).
pub(crate) fn parse_program(bytes: &[u8]) -> Option<Vec<Insn>> {
    if bytes.is_empty() || bytes.len() % 8 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| {
                insn(
                    u16::from_ne_bytes([c[0], c[1]]),
                    c[2],
                    c[3],
                    u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a classic BPF program over one `seccomp_data` (the subset of opcodes used here
    /// and by libseccomp's x86 output is not needed: only the stub's own).
    fn run(prog: &[Insn], arch: u32, nr: u32) -> u32 {
        let mut a = 0u32;
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => a = if i.k == OFF_ARCH { arch } else { nr },
                JMP_JA => pc += i.k as usize,
                JMP_JEQ_K => pc += if a == i.k { i.jt } else { i.jf } as usize,
                JMP_JGT_K => pc += if a > i.k { i.jt } else { i.jf } as usize,
                JMP_JGE_K => pc += if a >= i.k { i.jt } else { i.jf } as usize,
                RET_K => return i.k,
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    const MAIN: u32 = 0x7fff_0000; // stands for the profile's filter

    fn with_main(limits: &[ArchLimit]) -> Vec<Insn> {
        let mut p = stub(limits);
        p.push(insn(RET_K, 0, 0, MAIN));
        p
    }

    #[test]
    fn newer_syscalls_get_enosys_per_arch() {
        let p = with_main(&[
            ArchLimit {
                audit_arch: AUDIT_ARCH_X86_64,
                max: 300,
                x32_max: Some(X32_SYSCALL_BIT | 310),
            },
            ArchLimit {
                audit_arch: AUDIT_ARCH_I386,
                max: 350,
                x32_max: None,
            },
        ]);
        let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 0), MAIN);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 300), MAIN);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 301), enosys);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 1000), enosys);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 310), MAIN);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 311), enosys);
        assert_eq!(run(&p, AUDIT_ARCH_I386, 350), MAIN);
        assert_eq!(run(&p, AUDIT_ARCH_I386, 351), enosys);
        assert_eq!(
            run(&p, AUDIT_ARCH_AARCH64, 5000),
            MAIN,
            "unknown arch: the filter decides"
        );
    }

    #[test]
    fn x32_without_x32_in_the_filter_is_left_to_it() {
        let p = with_main(&[ArchLimit {
            audit_arch: AUDIT_ARCH_X86_64,
            max: 300,
            x32_max: None,
        }]);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 5000), MAIN);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 301), SECCOMP_RET_ERRNO | 38);
    }

    #[test]
    fn no_limits_no_stub() {
        assert!(stub(&[]).is_empty());
    }

    #[test]
    fn parses_exported_bytes() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0x15u16.to_ne_bytes());
        bytes.extend_from_slice(&[1, 2]);
        bytes.extend_from_slice(&7u32.to_ne_bytes());
        let p = parse_program(&bytes).expect("one insn");
        assert_eq!((p[0].code, p[0].jt, p[0].jf, p[0].k), (0x15, 1, 2, 7));
        assert!(parse_program(&bytes[..7]).is_none());
    }
}
