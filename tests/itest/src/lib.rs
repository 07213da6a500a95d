//! berth's root integration harness: real containers, real ptys, any runc-compatible runtime.
//!
//! # Running
//!
//! ```text
//! # against runc or crun (the reference runtimes):
//! BERTH_TEST_RUNTIME=/usr/sbin/runc CARGO_TARGET_DIR=/work/targets/itest cargo test -p berth-itest
//! BERTH_TEST_RUNTIME=/usr/bin/crun  CARGO_TARGET_DIR=/work/targets/itest cargo test -p berth-itest
//! # against berth (the default: $BERTH_BIN, else <target>/{debug,release}/berth):
//! cargo build -p berth-cli && cargo test -p berth-itest
//! ```
//!
//! The tests must run as root; [`require_root`] *fails* them otherwise. They run in parallel:
//! every test has unique container ids ([`unique_id`]) and a private `--root`.
//!
//! The static in-container probe and `recvtty` come from `BERTH_PROBE` / `BERTH_RECVTTY`, or are
//! built once per test process by the harness itself with
//!
//! ```text
//! RUSTFLAGS="-C target-feature=+crt-static" cargo build -p berth-helper --bins --release \
//!     --target x86_64-unknown-linux-gnu --target-dir <target-dir>/itest-helper
//! ```
//!
//! (`file` reports "static-pie linked", `ldd` "statically linked"; [`probe::is_static_elf`]
//! checks for the absence of `PT_INTERP`). crun 1.8 is wrapped automatically for this hybrid
//! cgroup host (see [`runtime`] for how; `BERTH_CRUN_WRAPPER` overrides the wrapper, empty
//! disables it).
//!
//! # Pieces
//!
//! - [`runtime()`] / [`runtime_exclusive()`] → [`Runtime`]: `cmd(args)`, `create`, `start`,
//!   `state`, `wait_for_status`, `kind()`; cleans up through its [`Guard`] on drop.
//! - [`Bundle::busybox()`]: a rootfs (busybox applets, `/probe`, passwd/group) and runc 1.1.5's
//!   default `config.json`, with a builder to change it.
//! - [`Cmd`] / [`Running`] / [`Output`]: processes with a watchdog on every wait.
//! - [`Pty`] and [`MasterIo`]: a pty the test owns, as the runtime's stdio and controlling tty.
//! - [`ConsoleReceiver`] (in-test) and [`Recvtty`] (the helper binary): console-socket servers.
//! - [`Leftovers`]: before/after snapshots of ptys, mounts, cgroups, state and processes.

pub mod attack;
pub mod bundle;
pub mod cmd;
pub mod console;
pub mod hostlock;
pub mod leftovers;
pub mod probe;
pub mod pty;
pub mod runtime;

use std::collections::HashMap;
use std::sync::Mutex;

pub use berth_helper::{ReceivedConsole, pattern};
pub use bundle::Bundle;
pub use cmd::{Cmd, Input, Output, Running, Sink, wait_until};
pub use console::{ConsoleReceiver, Dumped, Recvtty};
pub use leftovers::Leftovers;
pub use probe::{probe_line, probe_path};
pub use pty::{MasterIo, Pty, strip_cr};
pub use runtime::{Guard, Kind, Runtime, runtime, runtime_exclusive};

/// Fails (never skips) unless running as root: these tests create real containers.
#[track_caller]
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "berth-itest must run as root (it creates real containers, mounts and cgroups); \
         run it as root, e.g. `sudo -E cargo test -p berth-itest`"
    );
}

/// A container id unique to this process and test: `itest-NAME-PID`, with `-N` appended when
/// the same name is used again in this process. Characters runc rejects become `-`.
pub fn unique_id(name: &str) -> String {
    static SEEN: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let base = format!("itest-{clean}-{}", std::process::id());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let n = seen
        .get_or_insert_with(HashMap::new)
        .entry(base.clone())
        .or_insert(0);
    *n += 1;
    if *n == 1 { base } else { format!("{base}-{n}") }
}
