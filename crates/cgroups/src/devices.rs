//! Device access rules: checking them, their v1 text form, and the cgroup v2 eBPF program.
//!
//! Semantics (the same on v1 and v2): the cgroup starts from "deny everything" and the rules
//! apply in order, a later rule overriding an earlier one for the requests it matches. On v1
//! that is literally what berth writes (`a` to `devices.deny`, then each rule to
//! `devices.allow`/`devices.deny`). On v2 the program checks the rules last to first:
//!
//! - an **allow** rule matches a request when type, major and minor match and it grants
//!   *every* requested access (`r`, `w`, `m`), as a v1 exception does;
//! - a **deny** rule matches when type, major and minor match and it names *any* requested
//!   access;
//! - a rule of type `a` (all devices) matches everything, whatever its numbers and access
//!   say, because that is what v1 does with `a`;
//! - nothing matched → deny.
//!
//! berth adds no default rules: the runtime passes the full list (runc's default allow list
//! included). An empty list leaves the device cgroup as it is, so `update` without device
//! rules changes nothing (as `runc update`).

use berth_spec::DeviceCgroup;

use crate::convert::RES;
use crate::error::{CgroupError, Result};

/// A checked device rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Allow (true) or deny.
    pub allow: bool,
    /// `a`, `b` or `c`.
    pub typ: char,
    /// `None` is any major.
    pub major: Option<u32>,
    /// `None` is any minor.
    pub minor: Option<u32>,
    /// Access bits: [`ACC_MKNOD`] | [`ACC_READ`] | [`ACC_WRITE`].
    pub access: u32,
}

/// `m` access (the kernel's `BPF_DEVCG_ACC_MKNOD`).
pub const ACC_MKNOD: u32 = 1;
/// `r` access (`BPF_DEVCG_ACC_READ`).
pub const ACC_READ: u32 = 2;
/// `w` access (`BPF_DEVCG_ACC_WRITE`).
pub const ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;
/// Block device (`BPF_DEVCG_DEV_BLOCK`).
pub const DEV_BLOCK: u32 = 1;
/// Character device (`BPF_DEVCG_DEV_CHAR`).
pub const DEV_CHAR: u32 = 2;

impl Rule {
    /// Checks one spec entry; `index` is its position, for the error's field name.
    pub fn from_spec(index: usize, rule: &DeviceCgroup) -> Result<Rule> {
        let field = |name: &str| format!("{RES}.devices[{index}].{name}");
        let typ = match rule.typ.as_deref() {
            None | Some("") | Some("a") => 'a',
            Some("b") => 'b',
            Some("c") => 'c',
            Some(other) => {
                return Err(CgroupError::invalid(
                    field("type"),
                    format!("{other:?} is not one of \"a\", \"b\", \"c\""),
                ));
            }
        };
        let number = |name: &str, value: Option<i64>| -> Result<Option<u32>> {
            match value {
                None | Some(-1) => Ok(None),
                Some(n) if (0..=u32::MAX as i64).contains(&n) => Ok(Some(n as u32)),
                Some(n) => Err(CgroupError::invalid(
                    field(name),
                    format!("{n} is not a device number (-1 means any)"),
                )),
            }
        };
        let major = number("major", rule.major)?;
        let minor = number("minor", rule.minor)?;
        let access = match rule.access.as_deref() {
            None | Some("") => ACC_ALL,
            Some(text) => {
                let mut bits = 0;
                for c in text.chars() {
                    let bit = match c {
                        'r' => ACC_READ,
                        'w' => ACC_WRITE,
                        'm' => ACC_MKNOD,
                        // runc ignores other letters ("rwa" in its own tests): so does berth.
                        _ => {
                            log::warn!("{}: ignoring {c:?} in {text:?}", field("access"));
                            0
                        }
                    };
                    bits |= bit;
                }
                bits
            }
        };
        Ok(Rule {
            allow: rule.allow,
            typ,
            major,
            minor,
            access,
        })
    }

    /// The v1 `devices.allow`/`devices.deny` text: `c 1:3 rwm`, `b *:* m`, or `a`.
    pub fn v1_string(&self) -> String {
        if self.typ == 'a' {
            return "a".to_string();
        }
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        let mut access = String::new();
        if self.access & ACC_READ != 0 {
            access.push('r');
        }
        if self.access & ACC_WRITE != 0 {
            access.push('w');
        }
        if self.access & ACC_MKNOD != 0 {
            access.push('m');
        }
        format!(
            "{} {}:{} {access}",
            self.typ,
            num(self.major),
            num(self.minor)
        )
    }

    /// The v1 file this rule is written to.
    pub fn v1_file(&self) -> &'static str {
        if self.allow {
            "devices.allow"
        } else {
            "devices.deny"
        }
    }
}

/// Checks every rule of `linux.resources.devices`.
pub fn rules(devices: &[DeviceCgroup]) -> Result<Vec<Rule>> {
    devices
        .iter()
        .enumerate()
        .map(|(i, d)| Rule::from_spec(i, d))
        .collect()
}

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register.
    pub src: u8,
    /// Offset (jumps: instructions to skip).
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

// Opcodes used by the program (see the kernel's include/uapi/linux/bpf.h and bpf_common.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU64_AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const ALU64_RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const ALU64_MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

impl Insn {
    /// The instruction as the kernel reads it (native byte order).
    pub fn to_bytes(self) -> [u8; 8] {
        let regs = if cfg!(target_endian = "little") {
            (self.dst & 0xf) | (self.src << 4)
        } else {
            (self.dst << 4) | (self.src & 0xf)
        };
        let off = self.off.to_ne_bytes();
        let imm = self.imm.to_ne_bytes();
        [
            self.code, regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3],
        ]
    }
}

/// Builds the `BPF_PROG_TYPE_CGROUP_DEVICE` program for `rules` (see the module docs).
///
/// Registers: r2 = device type, r3 = requested access, r4 = major, r5 = minor, all loaded
/// from `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }` where
/// `access_type = access << 16 | type`. Blocks after a rule that matches everything are left
/// out, since the verifier refuses unreachable instructions.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut prog = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU64_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let mut block: Vec<Insn> = Vec::new();
        let mut jumps: Vec<usize> = Vec::new(); // jumps to the end of this block
        let mut skip_unless = |block: &mut Vec<Insn>, code: u8, reg: u8, imm: i32| {
            jumps.push(block.len());
            block.push(insn(code, reg, 0, 0, imm));
        };
        if rule.typ != 'a' {
            let dev = if rule.typ == 'b' { DEV_BLOCK } else { DEV_CHAR };
            skip_unless(&mut block, JMP_JNE_K, 2, dev as i32);
            if let Some(major) = rule.major {
                skip_unless(&mut block, JMP_JNE_K, 4, major as i32);
            }
            if let Some(minor) = rule.minor {
                skip_unless(&mut block, JMP_JNE_K, 5, minor as i32);
            }
            if rule.access != ACC_ALL {
                // r1 = requested & mask (r1, the context pointer, is no longer needed).
                let (mask, skip) = if rule.allow {
                    // Skip unless every requested bit is granted: (requested & ~granted) != 0.
                    (!rule.access & ACC_ALL, JMP_JNE_K)
                } else {
                    // Skip unless some requested bit is denied: (requested & denied) == 0.
                    (rule.access, JMP_JEQ_K)
                };
                block.push(insn(ALU64_MOV_X, 1, 3, 0, 0));
                block.push(insn(ALU64_AND_K, 1, 0, 0, mask as i32));
                skip_unless(&mut block, skip, 1, 0);
            }
        }
        let unconditional = jumps.is_empty();
        block.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(rule.allow)));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for at in jumps {
            block[at].off = (len - at - 1) as i16;
        }
        prog.extend(block);
        if unconditional {
            return prog;
        }
    }
    prog.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    prog.push(insn(JMP_EXIT, 0, 0, 0, 0));
    prog
}

/// Flattens a program to the bytes `bpf(BPF_PROG_LOAD)` takes.
pub fn program_bytes(prog: &[Insn]) -> Vec<u8> {
    prog.iter().flat_map(|i| i.to_bytes()).collect()
}

/// Whether `rules` allow everything (the program would be a plain "return 1").
pub fn allows_all(rules: &[Rule]) -> bool {
    matches!(
        rules.last(),
        Some(Rule {
            allow: true,
            typ: 'a',
            ..
        })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the subset of eBPF that [`program`] emits.
    fn run(prog: &[Insn], typ: u32, major: u32, minor: u32, access: u32) -> u64 {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        let mut ctx_ptr = true; // r1 holds the context until overwritten
        loop {
            let i = prog[pc];
            pc += 1;
            let (d, s) = (i.dst as usize, i.src as usize);
            match i.code {
                LDX_MEM_W => {
                    assert!(s == 1 && ctx_ptr, "load from a non-context register");
                    r[d] = u64::from(ctx[(i.off / 4) as usize]);
                }
                ALU64_AND_K => r[d] &= i.imm as i64 as u64,
                ALU64_RSH_K => r[d] >>= i.imm,
                ALU64_MOV_K => r[d] = i.imm as i64 as u64,
                ALU64_MOV_X => {
                    r[d] = r[s];
                    if d == 1 {
                        ctx_ptr = false;
                    }
                }
                JMP_JEQ_K => {
                    if r[d] == i.imm as i64 as u64 {
                        pc += i.off as usize;
                    }
                }
                JMP_JNE_K => {
                    if r[d] != i.imm as i64 as u64 {
                        pc += i.off as usize;
                    }
                }
                JMP_EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn rule(
        allow: bool,
        typ: &str,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceCgroup {
        DeviceCgroup {
            allow,
            typ: Some(typ.into()),
            major,
            minor,
            access: Some(access.into()),
        }
    }

    fn eval(spec: &[DeviceCgroup], typ: u32, major: u32, minor: u32, access: u32) -> bool {
        let prog = program(&rules(spec).unwrap());
        run(&prog, typ, major, minor, access) == 1
    }

    #[test]
    fn v1_strings() {
        let r = rules(&[
            rule(true, "c", Some(1), Some(3), "rwm"),
            rule(false, "b", None, None, "m"),
            rule(true, "c", Some(136), Some(-1), "rw"),
            DeviceCgroup {
                allow: false,
                ..Default::default()
            },
        ])
        .unwrap();
        assert_eq!(r[0].v1_string(), "c 1:3 rwm");
        assert_eq!(r[0].v1_file(), "devices.allow");
        assert_eq!(r[1].v1_string(), "b *:* m");
        assert_eq!(r[1].v1_file(), "devices.deny");
        assert_eq!(r[2].v1_string(), "c 136:* rw");
        assert_eq!(r[3].v1_string(), "a");
    }

    #[test]
    fn bad_rules_name_the_field() {
        let err = rules(&[
            rule(true, "c", Some(1), Some(3), "rwm"),
            rule(true, "x", None, None, "r"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("linux.resources.devices[1].type:"),
            "{err}"
        );
        // Unknown access letters are ignored, as runc does.
        let r = rules(&[rule(true, "c", Some(1), Some(3), "rwa")]).unwrap();
        assert_eq!(r[0].v1_string(), "c 1:3 rw");
        let err = rules(&[rule(true, "c", Some(-7), Some(3), "r")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("linux.resources.devices[0].major:"),
            "{err}"
        );
    }

    #[test]
    fn program_semantics() {
        let spec = [
            rule(true, "c", Some(1), Some(3), "rwm"), // /dev/null
            rule(true, "c", Some(1), Some(5), "r"),   // /dev/zero read-only
            rule(true, "c", Some(136), None, "rw"),   // ptys
            rule(false, "c", Some(136), Some(7), "w"),
        ];
        assert!(eval(&spec, DEV_CHAR, 1, 3, ACC_READ | ACC_WRITE));
        assert!(eval(&spec, DEV_CHAR, 1, 3, ACC_MKNOD));
        assert!(!eval(&spec, DEV_BLOCK, 1, 3, ACC_READ));
        assert!(eval(&spec, DEV_CHAR, 1, 5, ACC_READ));
        assert!(!eval(&spec, DEV_CHAR, 1, 5, ACC_READ | ACC_WRITE));
        assert!(!eval(&spec, DEV_CHAR, 1, 9, ACC_READ));
        assert!(eval(&spec, DEV_CHAR, 136, 2, ACC_WRITE));
        assert!(!eval(&spec, DEV_CHAR, 136, 2, ACC_MKNOD));
        assert!(eval(&spec, DEV_CHAR, 136, 7, ACC_READ));
        assert!(!eval(&spec, DEV_CHAR, 136, 7, ACC_READ | ACC_WRITE));
    }

    #[test]
    fn later_rules_win_and_a_is_everything() {
        let allow_all = DeviceCgroup {
            allow: true,
            typ: Some("a".into()),
            ..Default::default()
        };
        let deny_null = rule(false, "c", Some(1), Some(3), "rwm");
        // Deny then allow-all: everything allowed, and nothing after the catch-all is emitted.
        let spec = [deny_null.clone(), allow_all.clone()];
        assert!(eval(&spec, DEV_CHAR, 1, 3, ACC_READ));
        assert!(allows_all(&rules(&spec).unwrap()));
        assert_eq!(program(&rules(&spec).unwrap()).len(), 8);
        // Allow-all then deny: only /dev/null denied.
        let spec = [allow_all, deny_null];
        assert!(!eval(&spec, DEV_CHAR, 1, 3, ACC_READ));
        assert!(eval(&spec, DEV_CHAR, 1, 5, ACC_READ));
        assert!(eval(&spec, DEV_BLOCK, 8, 0, ACC_MKNOD));
        // `a` with numbers and access still means every device and every access, as on v1.
        let spec = [
            rule(true, "c", Some(1), Some(3), "rwm"),
            DeviceCgroup {
                allow: false,
                typ: Some("a".into()),
                major: Some(1),
                access: Some("r".into()),
                ..Default::default()
            },
        ];
        assert!(!eval(&spec, DEV_CHAR, 1, 3, ACC_WRITE));
        // No rules: deny.
        assert!(!eval(&[], DEV_CHAR, 1, 3, ACC_READ));
    }

    #[test]
    fn encoding() {
        let bytes = insn(LDX_MEM_W, 4, 1, 4, 0).to_bytes();
        if cfg!(target_endian = "little") {
            assert_eq!(bytes, [0x61, 0x14, 4, 0, 0, 0, 0, 0]);
        }
        assert_eq!(program_bytes(&program(&[])).len(), 8 * 8);
    }
}
