//! Errors from loading and validating a spec; each names the file or the field.

use std::path::PathBuf;

/// Why a `config.json` or process document was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The JSON is malformed or a field has the wrong type.
    #[error("parse {}: field {field}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON path of the offending field (`.` for the document).
        field: String,
        /// serde's description.
        message: String,
    },
    /// A field has a value berth cannot act on.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as a JSON path such as `linux.namespaces[2].type`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A container id is empty (runc's wording).
    #[error("container id cannot be empty")]
    EmptyId,
    /// A container id breaks runc's rule (`[A-Za-z0-9_+.-]`, at most 1024 bytes, not `.`/`..`).
    #[error("invalid container ID format: {id:?}: {reason}")]
    InvalidId {
        /// The id as given.
        id: String,
        /// Which part of the rule it breaks.
        reason: &'static str,
    },
    /// A spec or state could not be written as JSON (a path that is not UTF-8).
    #[error("serialize: {0}")]
    Serialize(#[source] serde_json::Error),
}

impl SpecError {
    /// Shorthand for [`SpecError::Invalid`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
