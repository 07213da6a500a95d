//! Locating (or building, once per test process) the static helper binaries.
//!
//! `BERTH_PROBE` and `BERTH_RECVTTY` name prebuilt binaries. Otherwise the harness runs, once:
//!
//! ```text
//! RUSTFLAGS="-C target-feature=+crt-static" cargo build -p berth-helper --bins --release \
//!     --target x86_64-unknown-linux-gnu --target-dir <target-dir>/itest-helper
//! ```
//!
//! An explicit `--target` keeps the flag away from build scripts and proc macros; the separate
//! target dir keeps the nested cargo off the lock of the `cargo test` that runs us. The probe
//! must be static (no `PT_INTERP`): the rootfs has no dynamic loader. This is checked.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::cmd::Cmd;

/// The workspace root (`tests/itest/../..`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The cargo target dir this test binary was built in (`<target>/<profile>/deps/<test>`), or
/// `$CARGO_TARGET_DIR`, or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(t) = exe.ancestors().nth(3) {
            if t.join("CACHEDIR.TAG").exists() || t.join("debug").is_dir() {
                return t.to_path_buf();
            }
        }
    }
    workspace_root().join("target")
}

/// True if `path` is an ELF file with no program interpreter (statically linked).
pub fn is_static_elf(path: &Path) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return false;
    };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false; // only 64-bit little-endian is expected here
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        // PT_INTERP = 3
        b.get(o..o + 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().expect("4")) != 3)
    })
}

fn built_helpers() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
        let tdir = target_dir().join("itest-helper");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Cmd::new(PathBuf::from(cargo))
            .args(["build", "--quiet", "-p", "berth-helper", "--bins", "--release", "--target"])
            .arg(&triple)
            .arg("--target-dir")
            .arg(&tdir)
            .arg("--manifest-path")
            .arg(workspace_root().join("Cargo.toml"))
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .timeout(Duration::from_secs(600))
            .run();
        assert!(
            out.success(),
            "building the static helpers failed (set BERTH_PROBE/BERTH_RECVTTY to prebuilt ones): {out}"
        );
        tdir.join(triple).join("release")
    })
}

fn locate(var: &str, name: &str) -> PathBuf {
    let p = match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => built_helpers().join(name),
    };
    assert!(
        p.is_file(),
        "{name} not found at {} (from {var} or the build)",
        p.display()
    );
    p
}

/// The static `berth-probe` binary (`BERTH_PROBE`, or built once).
pub fn probe_path() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let p = locate("BERTH_PROBE", "berth-probe");
        assert!(
            is_static_elf(&p),
            "{} is not a static executable: it cannot run in a busybox-only rootfs",
            p.display()
        );
        p
    })
}

/// The `recvtty` binary (`BERTH_RECVTTY`, or built once).
pub fn recvtty_path() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| locate("BERTH_RECVTTY", "recvtty"))
}

/// Parses a probe line `NAME k=v k=v` into its name and key/value pairs (values unescaped).
pub fn parse_line(line: &str) -> (String, std::collections::BTreeMap<String, String>) {
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or_default().to_string();
    let kv = words
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.replace("\\x20", " ")
                    .replace("\\n", "\n")
                    .replace("\\\\", "\\"),
            )
        })
        .collect();
    (name, kv)
}

/// Finds the first line of `output` with a word equal to probe subcommand `name` and parses
/// it from that word on (tolerating a prefix on the line, such as a runtime's log decoration).
#[track_caller]
pub fn probe_line(output: &str, name: &str) -> std::collections::BTreeMap<String, String> {
    output
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .find_map(|l| {
            let mut at = 0;
            for w in l.split(' ') {
                if w == name {
                    return Some(parse_line(&l[at..]).1);
                }
                at += w.len() + 1;
            }
            None
        })
        .unwrap_or_else(|| panic!("no `{name}` line from the probe in {output:?}"))
}
