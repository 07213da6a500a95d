//! `berth console ID [-t N] [-e PREFIX]`: LXC's `lxc-console`. Attaches to the container's
//! console, or with `-t N` to its extra tty N (`/dev/ttyN` inside, as many as the annotation
//! `io.github.berth.tty.max` asks for). The escape is `Ctrl-a q`; `Ctrl-a Ctrl-a` types one
//! `Ctrl-a`; `-e` changes the prefix (`-e b`, `-e ^b`, `-e ctrl-b`).

use std::path::Path;

use anyhow::anyhow;
use berth_proto::DetachKeys;
use clap::Args;

use crate::attach::{self, Options, Outcome, TargetArg};

/// `berth console` flags.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// The tty: 0 (default) is the console, N ≥ 1 the container's /dev/ttyN.
    #[arg(short = 't', long = "tty", value_name = "N", default_value_t = 0)]
    pub tty: u16,
    /// The escape prefix instead of Ctrl-a: a letter, ^<letter> or ctrl-<letter>.
    #[arg(
        short = 'e',
        long = "escape",
        value_name = "PREFIX",
        default_value = "^a"
    )]
    pub escape: String,
    /// The container id.
    pub id: String,
}

/// `berth console`.
pub(crate) fn run(root: &Path, a: &ConsoleArgs) -> anyhow::Result<i32> {
    let keys = DetachKeys::parse_escape(&a.escape).map_err(|e| anyhow!("--escape {e}"))?;
    let opts = Options::interactive(TargetArg::from_flags(None, Some(a.tty))?, keys);
    Ok(match attach::session(root, &a.id, &opts)? {
        Outcome::Exited(e) => e.code(),
        Outcome::Detached | Outcome::Replayed => 0,
    })
}
