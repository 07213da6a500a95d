//! Checks on a parsed spec. Each error names the field as a JSON path.

use crate::{Process, Spec, SpecError};

/// Validates a whole config.
pub fn validate(spec: &Spec) -> Result<(), SpecError> {
    let process = spec.process.as_ref().ok_or_else(|| SpecError::invalid("process", "missing"))?;
    validate_process(process, "process")?;
    if spec.root.is_none() {
        return Err(SpecError::invalid("root", "missing"));
    }
    Ok(())
}

/// Validates a `process` object found at `field`.
pub fn validate_process(process: &Process, field: &str) -> Result<(), SpecError> {
    if process.args.is_empty() {
        return Err(SpecError::invalid(format!("{field}.args"), "must not be empty"));
    }
    Ok(())
}
