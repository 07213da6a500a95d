//! What berth reads from `/proc` about processes: start time (to tell a live init from a reused
//! pid), run state, and namespace identities.

use std::path::PathBuf;

/// A process's state letter and start time, from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The state letter (`R`, `S`, `Z`, …).
    pub state: char,
    /// Start time in clock ticks after boot (field 22).
    pub start_time: u64,
    /// Parent pid.
    pub ppid: i32,
}

/// Reads `/proc/PID/stat`; `None` when the process does not exist.
pub fn stat(pid: i32) -> Option<ProcStat> {
    let text = berth_sys::procfs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces or parentheses itself.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// True when `pid` is alive (not a zombie) and started at `start_time`.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    pid > 0
        && stat(pid).is_some_and(|s| s.start_time == start_time && s.state != 'Z' && s.state != 'X')
}

/// The `/proc/PID/ns/NAME` path.
pub fn ns_path(pid: i32, proc_name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/{proc_name}"))
}

/// The identity (device, inode) of a namespace file.
pub fn ns_id(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_stat() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert!(s.start_time > 0);
        assert!(is_alive(me, s.start_time));
        assert!(!is_alive(me, s.start_time + 1));
        assert!(stat(i32::MAX).is_none());
    }
}
