//! berth's runtime engine: everything `berth create|start|run|exec|state|kill|delete|list|ps|
//! pause|resume` does, without the command line.
//!
//! The parent side (this process) lives in [`container`]; the child side (the container's init
//! and exec'd processes, between `clone3` and `execve`) in `init`. They talk over a typed
//! [`channel`]. State persists in [`store`]. Nothing here knows about attach clients or the
//! console monitor.

pub mod annotations;
pub mod channel;
pub mod container;
pub mod devrules;
pub mod error;
pub mod exeseal;
pub(crate) mod hooks;
pub(crate) mod init;
pub mod namespaces;
pub mod procfs;
pub mod rootless;
pub mod store;

pub use container::create::CreateOptions;
pub use container::exec::ExecOptions;
pub use container::run::RunOptions;
pub use error::{Error, Result};
pub use store::Store;

static INIT_DETACH_HOOK: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Registers what a container's init calls when it starts to outlive the command that created
/// it (it waits for `berth start` after `berth create` has exited): the binary closes what its
/// logger holds of the caller's stdio there, so a caller reading `create`'s output to its end
/// (a shell's `$(...)`, conmon) is not kept waiting by the container.
pub fn set_init_detach_hook(hook: fn()) {
    let _ = INIT_DETACH_HOOK.set(hook);
}

/// Runs the hook set by [`set_init_detach_hook`], if any.
pub(crate) fn run_init_detach_hook() {
    if let Some(hook) = INIT_DETACH_HOOK.get() {
        hook();
    }
}

/// The runtime, rooted at a state directory (`--root`).
#[derive(Debug, Clone)]
pub struct Runtime {
    store: Store,
}

impl Runtime {
    /// A runtime keeping state under `root`.
    pub fn new(root: impl Into<std::path::PathBuf>) -> Runtime {
        Runtime {
            store: Store::new(root),
        }
    }

    /// The state store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `create`: sets the container up; its process waits for [`Runtime::start`].
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<()> {
        container::create::create(&self.store, id, opts, container::create::Mode::Create)
            .map(|_| ())
    }

    /// `start`.
    pub fn start(&self, id: &str) -> Result<()> {
        container::start::start(&self.store, id)
    }

    /// `run`: returns the exit code (0 when detached).
    pub fn run(&self, id: &str, opts: &RunOptions) -> Result<i32> {
        container::run::run(&self.store, id, opts)
    }

    /// `exec`: returns the exit code (0 when detached).
    pub fn exec(&self, id: &str, opts: &ExecOptions) -> Result<i32> {
        container::exec::exec(&self.store, id, opts)
    }

    /// `state`.
    pub fn state(&self, id: &str) -> Result<berth_spec::State> {
        container::manage::state(&self.store, id)
    }

    /// `list`.
    pub fn list(&self) -> Result<Vec<berth_spec::State>> {
        container::manage::list(&self.store)
    }

    /// `kill`.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        container::manage::kill(&self.store, id, signal, all)
    }

    /// `delete`.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        container::manage::delete(&self.store, id, force)
    }

    /// The pids in the container (for `ps`).
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        container::manage::pids(&self.store, id)
    }

    /// `pause` (true) and `resume` (false).
    pub fn set_paused(&self, id: &str, paused: bool) -> Result<()> {
        container::manage::set_paused(&self.store, id, paused)
    }

    /// `update`: applies resources to a running (or created, or paused) container's cgroup.
    pub fn update(&self, id: &str, resources: &berth_spec::Resources) -> Result<()> {
        container::update::update(&self.store, id, resources)
    }

    /// One reading for `events` (see [`container::update::sample`]).
    pub fn sample(
        &self,
        id: &str,
        must_run: bool,
        with_stats: bool,
    ) -> Result<container::update::Sample> {
        container::update::sample(&self.store, id, must_run, with_stats)
    }
}
