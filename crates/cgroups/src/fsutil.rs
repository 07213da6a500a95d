//! Reading and writing cgroup files.
//!
//! A cgroup file takes one value per `write(2)`: the writer opens the file
//! `O_WRONLY|O_TRUNC|O_CLOEXEC` and writes the whole value in one call (a short write is an
//! error). Every error names the file and the value.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{CgroupError, Result};

/// Writes `value` to `dir/file`; `field` is the `config.json` field it came from, if any.
pub fn write(dir: &Path, file: &str, value: &str, field: Option<&str>) -> Result<()> {
    let path = dir.join(file);
    write_path(&path, value).map_err(|source| write_error(path, value, field, source))
}

/// The error of a failed write of `value` to `path`.
fn write_error(path: PathBuf, value: &str, field: Option<&str>, source: io::Error) -> CgroupError {
    CgroupError::Write {
        field: field.map(str::to_string),
        path,
        value: value.to_string(),
        source,
    }
}

fn write_path(path: &Path, value: &str) -> io::Result<()> {
    write_whole(&mut open_for_write(path)?, value)
}

/// Opens a cgroup file `O_WRONLY|O_TRUNC|O_CLOEXEC`, as every write here does.
fn open_for_write(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).truncate(true).open(path)
}

/// One control file that takes several values, each its own `write(2)` (the kernel reads one
/// rule per write, as in `devices.allow`), through one open file: opening a cgroup file costs
/// as much as the write.
#[derive(Debug)]
pub struct ControlFile {
    path: PathBuf,
    file: Option<File>,
}

impl ControlFile {
    /// `dir/name`, opened at the first [`ControlFile::write`].
    pub fn new(dir: &Path, name: &str) -> Self {
        ControlFile {
            path: dir.join(name),
            file: None,
        }
    }

    /// Writes `value`; errors as [`write`]'s.
    pub fn write(&mut self, value: &str, field: Option<&str>) -> Result<()> {
        let result = match &mut self.file {
            Some(file) => write_whole(file, value),
            None => open_for_write(&self.path).and_then(|mut file| {
                let r = write_whole(&mut file, value);
                self.file = Some(file);
                r
            }),
        };
        result.map_err(|source| write_error(self.path.clone(), value, field, source))
    }
}

fn write_whole(file: &mut File, value: &str) -> io::Result<()> {
    let n = file.write(value.as_bytes())?;
    if n != value.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write ({n} of {} bytes)", value.len()),
        ));
    }
    Ok(())
}

/// Reads `path` whole.
pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads `path`, or `None` when it does not exist.
pub fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads a single number, or `None` when the file does not exist; `max` (cgroup v2's
/// "no limit") reads as `u64::MAX`.
pub fn read_u64_opt(path: &Path) -> Result<Option<u64>> {
    match read_opt(path)? {
        Some(text) => parse_u64(path, text.trim()).map(Some),
        None => Ok(None),
    }
}

/// Parses a number from a cgroup file; `max` is `u64::MAX`; negative v1 values (`-1`) too.
pub fn parse_u64(path: &Path, text: &str) -> Result<u64> {
    if text == "max" {
        return Ok(u64::MAX);
    }
    if let Ok(value) = text.parse::<u64>() {
        return Ok(value);
    }
    if let Ok(value) = text.parse::<i64>() {
        if value < 0 {
            return Ok(u64::MAX);
        }
    }
    Err(CgroupError::Parse {
        path: path.to_path_buf(),
        reason: format!("expected a number, found {text:?}"),
    })
}

/// Parses `key value` lines (`memory.stat`, `cpu.stat`, `cgroup.events`…); lines that do not
/// have that shape are skipped.
pub fn parse_flat_keyed(text: &str) -> Vec<(&str, u64)> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key, value.trim().parse().ok()?))
        })
        .collect()
}

/// Reads `cgroup.procs` of `dir` (the process ids, one a line).
pub fn read_procs(dir: &Path) -> Result<Vec<i32>> {
    let path = dir.join("cgroup.procs");
    let text = read(&path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse::<i32>().map_err(|_| CgroupError::Parse {
                path: path.clone(),
                reason: format!("not a pid: {l:?}"),
            })
        })
        .collect()
}

/// `dir` and every cgroup below it, parents before children.
pub fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let current = out[i].clone();
        i += 1;
        let entries = match std::fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(CgroupError::Read {
                    path: current,
                    source,
                });
            }
        };
        for entry in entries {
            let entry = entry.map_err(|source| CgroupError::Read {
                path: current.clone(),
                source,
            })?;
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let p = Path::new("/x");
        assert_eq!(parse_u64(p, "max").unwrap(), u64::MAX);
        assert_eq!(parse_u64(p, "42").unwrap(), 42);
        assert_eq!(parse_u64(p, "-1").unwrap(), u64::MAX);
        assert!(parse_u64(p, "x1").unwrap_err().to_string().contains("/x"));
    }

    #[test]
    fn flat_keyed() {
        let kv = parse_flat_keyed("populated 1\nfrozen 0\nbogus\n");
        assert_eq!(kv, vec![("populated", 1), ("frozen", 0)]);
    }

    #[test]
    fn write_errors_name_file_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(dir.path(), "nope", "12", Some("f")).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("f: write 12 to "), "{text}");
        assert!(text.ends_with("/nope: no such file or directory"), "{text}");
        std::fs::write(dir.path().join("yes"), "old value").unwrap();
        write(dir.path(), "yes", "new", None).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("yes")).unwrap(),
            "new"
        );
    }
}
