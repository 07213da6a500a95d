//! The OCI runtime-spec for berth: `config.json` in, validated; runc's state and features out.
//!
//! `core` never sees raw JSON: it gets a [`Spec`] that [`load_bundle`] has parsed and
//! validated, so every later step may rely on the checks listed in [`validate`]. Parse errors
//! name the offending field as a JSON path (`process.consoleSize.height`), as validation errors
//! do. The `spec` and `features` commands print [`default_spec`] and [`features()`]; timestamps for
//! the state and the logs come from [`time`].

pub mod config;
pub mod error;
pub mod features;
pub mod mount;
pub mod names;
pub mod state;
pub mod template;
pub mod time;
pub mod validate;

pub use config::*;
pub use error::SpecError;
pub use features::features;
pub use mount::{MountOptions, parse_mount_options};
pub use names::{parse_capability, parse_rlimit};
pub use state::{State, Status};
pub use template::{default_spec, make_rootless, to_pretty_json};
pub use validate::{ValidateOptions, validate_id};

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
    let spec = parse_config(&bytes, &path)?;
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

/// Parses a `config.json` without validating it; `origin` names the file in errors.
pub fn parse_config(bytes: &[u8], origin: &Path) -> Result<Spec, SpecError> {
    parse_json(bytes, origin)
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<T, SpecError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| SpecError::Parse {
        path: path.to_path_buf(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(json: &str) -> (String, String) {
        match parse_config(json.as_bytes(), Path::new("/b/config.json")) {
            Err(SpecError::Parse { field, message, .. }) => (field, message),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    /// The template as a JSON value, to break one field at a time.
    fn template() -> serde_json::Value {
        serde_json::to_value(default_spec(false)).expect("serialize")
    }

    #[test]
    fn parse_errors_name_the_json_path() {
        let mut v = template();
        v["process"]["consoleSize"] = serde_json::json!({"height": "24", "width": 80});
        let (field, message) = parse_err(&v.to_string());
        assert_eq!(field, "process.consoleSize.height", "{message}");

        let mut v = template();
        v["linux"]["namespaces"][2]["type"] = "nope".into();
        let (field, message) = parse_err(&v.to_string());
        assert_eq!(field, "linux.namespaces[2].type", "{message}");

        let mut v = template();
        v["mounts"][3]["options"] = serde_json::json!(["nosuid", 5]);
        assert_eq!(parse_err(&v.to_string()).0, "mounts[3].options[1]");

        let mut v = template();
        v["process"]["consoleSize"] = serde_json::json!({"height": -1, "width": 80});
        assert_eq!(parse_err(&v.to_string()).0, "process.consoleSize.height");

        let mut v = template();
        v["process"]["rlimits"][0]["hard"] = "lots".into();
        assert_eq!(parse_err(&v.to_string()).0, "process.rlimits[0].hard");

        let mut v = template();
        v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 0}]);
        assert_eq!(parse_err(&v.to_string()).0, "linux.uidMappings[0]");

        let (_, message) = parse_err("{\"ociVersion\": \"1.2.0\",");
        assert!(message.contains("EOF"), "{message}");
    }

    #[test]
    fn parse_error_display_names_file_and_field() {
        let err = parse_config(
            br#"{"ociVersion":"1.2.0","process":{"terminal":"yes"}}"#,
            Path::new("/b/config.json"),
        )
        .expect_err("bad type");
        let msg = err.to_string();
        assert!(
            msg.starts_with("parse /b/config.json: field process.terminal: "),
            "{msg}"
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut v = template();
        v["vm"] = serde_json::json!({"hypervisor": {}});
        v["process"]["somethingNew"] = true.into();
        let spec =
            parse_config(v.to_string().as_bytes(), Path::new("config.json")).expect("parses");
        assert_eq!(spec, default_spec(false));
    }

    #[test]
    fn load_bundle_parses_and_validates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("config.json");
        std::fs::write(&cfg, to_pretty_json(&default_spec(false)).expect("print")).expect("write");
        assert_eq!(load_bundle(dir.path()).expect("loads"), default_spec(false));

        let mut v = template();
        v["mounts"][3]["destination"] = "/dev/../../etc".into();
        std::fs::write(&cfg, v.to_string()).expect("write");
        let msg = load_bundle(dir.path()).expect_err("invalid").to_string();
        assert!(msg.starts_with("mounts[3].destination: "), "{msg}");

        std::fs::remove_file(&cfg).expect("rm");
        assert!(matches!(
            load_bundle(dir.path()),
            Err(SpecError::Read { .. })
        ));
    }

    #[test]
    fn load_process_validates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("process.json");
        std::fs::write(&path, r#"{"terminal":true,"consoleSize":{"height":24,"width":70000},"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/"}"#)
            .expect("write");
        let msg = load_process(&path).expect_err("too wide").to_string();
        assert!(msg.starts_with("process.consoleSize.width: "), "{msg}");
        std::fs::write(
            &path,
            r#"{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/","env":["A=b"]}"#,
        )
        .expect("write");
        let p = load_process(&path).expect("valid");
        assert_eq!(p.args, ["sh"]);
    }
}
