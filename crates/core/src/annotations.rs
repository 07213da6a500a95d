//! Annotations berth understands (all under `io.github.berth.`).

/// The `max=` of the container's devpts instance: how many ptys it may have open at once, so
/// one container cannot use up the host's shared pool (`kernel.pty.max` minus the reserve).
pub const DEVPTS_MAX: &str = "io.github.berth.devpts.max";

/// The default for [`DEVPTS_MAX`].
pub const DEVPTS_MAX_DEFAULT: &str = "1024";
