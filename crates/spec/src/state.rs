//! runc's `state` document: what `berth state` and `berth list --format json` print.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A container's status, as runc names it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is still setting it up.
    Creating,
    /// Set up, waiting for `start`.
    Created,
    /// The user's process runs.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// The init process is gone.
    Stopped,
}

impl Status {
    /// The lowercase name runc prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// runc's `containerState`: field names and order as runc prints them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// `ociVersion`.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// `id`.
    pub id: String,
    /// `pid` of the init process, 0 once stopped.
    pub pid: i32,
    /// `status`.
    pub status: Status,
    /// `bundle`: absolute path.
    pub bundle: PathBuf,
    /// `rootfs`: absolute path.
    pub rootfs: PathBuf,
    /// `created`: RFC 3339 UTC with nanoseconds.
    pub created: String,
    /// `annotations` from the config.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `owner`: empty for root, as runc.
    pub owner: String,
}
