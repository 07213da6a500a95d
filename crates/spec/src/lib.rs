//! The OCI runtime-spec for berth: `config.json` in, validated; runc's state and features out.
//!
//! `core` never sees raw JSON: it gets a [`Spec`] that [`load_bundle`] has parsed and
//! validated, so every later step may rely on the checks listed in [`validate`].

pub mod config;
pub mod error;
pub mod mount;
pub mod names;
pub mod state;
pub mod time;
pub mod validate;

pub use config::*;
pub use error::SpecError;
pub use mount::{MountOptions, parse_mount_options};
pub use names::{parse_capability, parse_rlimit};
pub use state::{State, Status};

use std::path::Path;

/// The runtime-spec version berth implements and writes into `state` and `spec`.
pub const OCI_VERSION: &str = "1.2.0";

/// Reads `BUNDLE/config.json`, parses it and validates it.
pub fn load_bundle(bundle: &Path) -> Result<Spec, SpecError> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).map_err(|source| SpecError::Read {
        path: path.clone(),
        source,
    })?;
    let spec: Spec = parse_json(&bytes, &path)?;
    validate::validate(&spec)?;
    Ok(spec)
}

/// Parses and validates a `process` document, as `exec --process` takes it.
pub fn load_process(path: &Path) -> Result<Process, SpecError> {
    let bytes = std::fs::read(path).map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let process: Process = parse_json(&bytes, path)?;
    validate::validate_process(&process, "process")?;
    Ok(process)
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<T, SpecError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| SpecError::Parse {
        path: path.to_path_buf(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}
