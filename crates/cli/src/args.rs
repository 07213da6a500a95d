//! The command line: runc's global flags, verbs and per-verb flags, verbatim, because podman
//! (through conmon), containerd's shim and runc's own tests call runtimes that way.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `berth --version` (or `-v`), shaped like runc's: `berth version X`, `commit: C`, `spec: Y`
/// (clap prints the name first).
const VERSION: &str = concat!(
    "version ",
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("BERTH_COMMIT"),
    "\nspec: 1.2.0"
);

/// berth: an OCI runtime whose terminals are first class.
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version = VERSION,
    about,
    long_about = None,
    disable_version_flag = true
)]
pub struct Cli {
    /// Print the version (runc's `-v`; `-V` works too).
    #[arg(short = 'v', long = "version", short_alias = 'V', action = clap::ArgAction::Version)]
    pub version: (),
    /// Enable debug logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Write log lines to this file instead of stderr.
    #[arg(long, global = true, value_name = "PATH")]
    pub log: Option<PathBuf>,
    /// Log format: text or json (logrus-compatible lines).
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Root directory for container state (default /run/berth; $XDG_RUNTIME_DIR/berth when
    /// rootless).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Path to criu (accepted for compatibility; checkpointing is not supported).
    #[arg(long, global = true, value_name = "PATH", hide = true)]
    pub criu: Option<PathBuf>,
    /// Use systemd to manage cgroups (not supported yet: refused with an error).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto.
    #[arg(long, global = true, value_name = "true|false|auto", num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `time="…" level=… msg="…"`.
    Text,
    /// `{"level":"…","msg":"…","time":"…"}`.
    Json,
}

/// `--format` of list and ps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    /// Columns.
    Table,
    /// JSON.
    Json,
}

/// The flags `create` and `run` share.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Path to the bundle directory (default: the current directory).
    #[arg(short = 'b', long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Path to a unix socket that receives the pty master (runc's console socket).
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Write the init's pid to this file.
    #[arg(long = "pid-file", value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root (MS_MOVE + chroot instead).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (3, 4, …) to the container's process.
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// A terminal held by berth's console monitor (re-attach with `berth attach`); turns
    /// process.terminal on. Not with --console-socket.
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// The container id.
    pub id: String,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container; its process waits for `start`.
    Create(CreateArgs),
    /// Start a created container.
    Start {
        /// The container id.
        id: String,
    },
    /// Create and start a container (and, without -d, relay its stdio until it exits).
    Run {
        /// The `create` flags.
        #[command(flatten)]
        create: CreateArgs,
        /// Detach from the container's process.
        #[arg(short = 'd', long)]
        detach: bool,
        /// Do not delete the container after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Output the state of a container (runc's JSON).
    State {
        /// The container id.
        id: String,
    },
    /// Send a signal to the container's init (default SIGTERM).
    Kill {
        /// Send to every process in the container.
        #[arg(short = 'a', long)]
        all: bool,
        /// The container id.
        id: String,
        /// The signal, by name (KILL, SIGKILL) or number.
        signal: Option<String>,
    },
    /// Delete a container and what it holds.
    Delete {
        /// Kill it first if it is running.
        #[arg(short = 'f', long)]
        force: bool,
        /// The container id.
        id: String,
    },
    /// List containers.
    List {
        /// table or json.
        #[arg(short = 'f', long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
        /// Print only ids.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Show the processes of a container.
    Ps {
        /// table or json.
        #[arg(short = 'f', long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
        /// The container id.
        id: String,
        /// Options for ps(1) (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Run a process in a running container.
    Exec(Box<ExecArgs>),
    /// Freeze a container's processes.
    Pause {
        /// The container id.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// The container id.
        id: String,
    },
    /// Write a default config.json.
    Spec {
        /// Where to write config.json. (`--rootless`, the global flag, asks for a spec for an
        /// unprivileged user.)
        #[arg(short = 'b', long, value_name = "DIR")]
        bundle: Option<PathBuf>,
    },
    /// Show what this runtime supports (JSON).
    Features,
    /// Update a container's resource limits (runc's flags, or a JSON document with -r).
    Update(Box<crate::update::UpdateArgs>),
    /// Print a container's statistics and OOM events as JSON lines.
    Events(crate::events::EventsArgs),
    /// The console monitor's commands: attach, console, logs, sessions, screenshot.
    #[command(flatten)]
    Monitor(crate::monitor_cmds::MonitorCommand),
}

/// `exec` flags.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Path to a unix socket that receives the pty master.
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Working directory in the container.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Set an environment variable (KEY=value).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// UID[:GID] to run as.
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional group ids.
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// A process.json to run instead of the command line.
    #[arg(short = 'p', long = "process", value_name = "PATH")]
    pub process: Option<PathBuf>,
    /// Detach from the process.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the process's pid to this file.
    #[arg(long = "pid-file", value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// SELinux label for the process (an error on hosts without SELinux).
    #[arg(long = "process-label", hide = true)]
    pub process_label: Option<String>,
    /// AppArmor profile for the process (an error on hosts without AppArmor).
    #[arg(long, hide = true)]
    pub apparmor: Option<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Add a capability.
    #[arg(short = 'c', long = "cap", value_name = "CAP")]
    pub caps: Vec<String>,
    /// Pass this many extra fds to the process.
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Run the process in a sub-cgroup of the container's cgroup: PATH, or CONTROLLER[,CONTROLLER]:PATH (cgroup v1); repeatable.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Vec<String>,
    /// Exec even if the container is paused; the process runs after `resume`.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// The container id.
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}
