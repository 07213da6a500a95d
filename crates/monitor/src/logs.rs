//! The derived logs of a terminal: the Kubernetes CRI log and the asciicast v2 recording. (The
//! raw byte log is a plain [`Rotating`] file.)
//!
//! # CRI log
//! `<RFC3339Nano> stdout F <line>\n` per complete line, `P` for a partial line (the format of
//! kubelet, CRI-O and conmon's `k8s-file`). With a terminal everything is `stdout`. The pty has
//! ONLCR on (the kernel default, kept by the monitor so that the screen model and attached
//! terminals see `\r\n`), so the `\r` run right before each `\n` is removed here: the CRI log
//! holds the lines the program wrote. A `\r` elsewhere (progress bars) is kept. A line is
//! written as `P` when it reaches [`CRI_MAX_LINE`] bytes, or by [`CriLog::flush_partial`] (the
//! monitor calls it when a partial line has waited a second); a trailing `\r` is held back so a
//! `\r\n` split across reads still loses its `\r`.
//!
//! # asciicast v2
//! A header line `{"version":2,"width":W,"height":H,"timestamp":T,"env":{"TERM":…}}`, then
//! `[seconds, "o", "text"]` per output chunk and `[seconds, "r", "COLSxROWS"]` per resize.
//! Output is decoded as UTF-8 with incomplete sequences carried to the next chunk and invalid
//! bytes replaced by U+FFFD (asciicast text is JSON).

use std::os::fd::BorrowedFd;

use crate::clock;
use crate::error::MonitorError;
use crate::rotate::{Limits, Rotating};

/// Lines longer than this are split into `P` entries (as kubelet does at 16 KiB).
pub const CRI_MAX_LINE: usize = 16 * 1024;

/// A CRI-format log.
#[derive(Debug)]
pub struct CriLog {
    out: Rotating,
    line: Vec<u8>,
    entry: Vec<u8>,
}

impl CriLog {
    /// Opens `name` in `dir`.
    pub fn open(dir: BorrowedFd<'_>, name: &str, limits: Limits) -> Result<CriLog, MonitorError> {
        Ok(CriLog {
            out: Rotating::open(dir, name, limits)?,
            line: Vec::new(),
            entry: Vec::new(),
        })
    }

    /// Whether a partial line is waiting.
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty()
    }

    /// Adds output bytes.
    pub fn write(&mut self, mut data: &[u8]) -> Result<(), MonitorError> {
        while !data.is_empty() {
            match find_newline(data) {
                Some(i) => {
                    self.line.extend_from_slice(&data[..i]);
                    while self.line.last() == Some(&b'\r') {
                        self.line.pop();
                    }
                    self.emit(b'F')?;
                    data = &data[i + 1..];
                }
                None => {
                    self.line.extend_from_slice(data);
                    data = &[];
                }
            }
            while self.line.len() >= CRI_MAX_LINE {
                self.emit_partial(CRI_MAX_LINE)?;
            }
        }
        Ok(())
    }

    /// Writes the waiting partial line as a `P` entry (all but a trailing `\r` run).
    pub fn flush_partial(&mut self) -> Result<(), MonitorError> {
        let keep = self.line.iter().rev().take_while(|&&b| b == b'\r').count();
        let n = self.line.len() - keep;
        if n > 0 {
            self.emit_partial(n)?;
        }
        Ok(())
    }

    /// Writes everything still held (at the end), then flushes the file.
    pub fn finish(&mut self) -> Result<(), MonitorError> {
        if !self.line.is_empty() {
            let n = self.line.len();
            self.emit_partial(n)?;
        }
        self.out.flush()
    }

    /// Flushes the file's buffer.
    pub fn flush(&mut self) -> Result<(), MonitorError> {
        self.out.flush()
    }

    fn emit_partial(&mut self, n: usize) -> Result<(), MonitorError> {
        self.emit_n(b'P', n)
    }

    fn emit(&mut self, tag: u8) -> Result<(), MonitorError> {
        self.emit_n(tag, self.line.len())
    }

    /// Writes the first `n` bytes of the line as one entry and removes them.
    fn emit_n(&mut self, tag: u8, n: usize) -> Result<(), MonitorError> {
        let (s, ns) = clock::realtime();
        self.entry.clear();
        clock::write_rfc3339_nanos(&mut self.entry, s, ns);
        self.entry.extend_from_slice(b" stdout ");
        self.entry.push(tag);
        self.entry.push(b' ');
        self.entry.extend_from_slice(&self.line[..n]);
        self.entry.push(b'\n');
        self.line.drain(..n);
        self.out.write(&self.entry)?;
        Ok(())
    }
}

/// The index of the first `\n` in `data` (`memchr`'s vector search).
fn find_newline(data: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', data)
}

/// An asciicast v2 recording.
#[derive(Debug)]
pub struct Cast {
    out: Rotating,
    start: f64,
    carry: Vec<u8>,
}

impl Cast {
    /// Creates `name` in `dir` and writes the header.
    pub fn create(
        dir: BorrowedFd<'_>,
        name: &str,
        rows: u16,
        cols: u16,
        term: &str,
    ) -> Result<Cast, MonitorError> {
        let mut out = Rotating::open(
            dir,
            name,
            Limits {
                max_size: 0,
                max_files: 1,
            },
        )?;
        let header = serde_json::json!({
            "version": 2,
            "width": cols,
            "height": rows,
            "timestamp": clock::realtime().0,
            "env": {"TERM": term},
        });
        out.write(format!("{header}\n").as_bytes())?;
        Ok(Cast {
            out,
            start: clock::monotonic_secs(),
            carry: Vec::new(),
        })
    }

    fn event(&mut self, code: &str, text: &str) -> Result<(), MonitorError> {
        let t = ((clock::monotonic_secs() - self.start) * 1e6).round() / 1e6;
        let line = serde_json::to_string(&(t, code, text)).unwrap_or_default();
        self.out.write(line.as_bytes())?;
        self.out.write(b"\n")?;
        Ok(())
    }

    /// Records output.
    pub fn output(&mut self, data: &[u8]) -> Result<(), MonitorError> {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(data);
        let mut text = String::new();
        let mut rest: &[u8] = &bytes;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    text.push_str(s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    text.push_str(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            text.push('\u{fffd}');
                            rest = &bad[n..];
                        }
                        None => {
                            self.carry = bad.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        if text.is_empty() {
            return Ok(());
        }
        self.event("o", &text)
    }

    /// Records a resize.
    pub fn resize(&mut self, rows: u16, cols: u16) -> Result<(), MonitorError> {
        self.event("r", &format!("{cols}x{rows}"))
    }

    /// Flushes the file's buffer.
    pub fn flush(&mut self) -> Result<(), MonitorError> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, OwnedFd};

    fn dir() -> (tempfile::TempDir, OwnedFd) {
        let t = tempfile::tempdir().expect("tempdir");
        let fd = rustix::fs::open(
            t.path(),
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .expect("open dir");
        (t, fd)
    }

    const NO_ROTATE: Limits = Limits {
        max_size: 0,
        max_files: 1,
    };

    fn entries(text: &str) -> Vec<(String, String)> {
        text.lines()
            .map(|l| {
                let mut it = l.splitn(4, ' ');
                let ts = it.next().unwrap();
                assert_eq!(ts.len(), 30, "{ts}");
                assert!(ts.ends_with('Z'));
                assert_eq!(it.next(), Some("stdout"));
                (
                    it.next().unwrap().to_string(),
                    it.next().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn cri_lines_undo_onlcr_across_reads_and_mark_partials() {
        let (t, d) = dir();
        let mut c = CriLog::open(d.as_fd(), "c.log", NO_ROTATE).unwrap();
        c.write(b"hello\r\nwor").unwrap();
        c.write(b"ld\r").unwrap();
        c.flush_partial().unwrap(); // "world" as P, the \r is held back
        c.write(b"\nprogress 10%\rprogress 20%\r\r\n").unwrap();
        c.write(b"tail").unwrap();
        c.finish().unwrap();
        let text = std::fs::read_to_string(t.path().join("c.log")).unwrap();
        assert_eq!(
            entries(&text),
            vec![
                ("F".into(), "hello".into()),
                ("P".into(), "world".into()),
                ("F".into(), "".into()),
                ("F".into(), "progress 10%\rprogress 20%".into()),
                ("P".into(), "tail".into()),
            ]
        );
    }

    #[test]
    fn find_newline_agrees_with_a_plain_search() {
        let mut v = vec![b'a'; 100];
        assert_eq!(find_newline(&v), None);
        for i in [0, 1, 7, 8, 9, 63, 64, 99] {
            v[i] = b'\n';
            assert_eq!(find_newline(&v), v.iter().position(|&b| b == b'\n'), "{i}");
            assert_eq!(find_newline(&v[i..]), Some(0));
        }
        assert_eq!(find_newline(b""), None);
        assert_eq!(find_newline(&[0x8a; 9]), None);
    }

    #[test]
    fn cri_splits_long_lines() {
        let (t, d) = dir();
        let mut c = CriLog::open(d.as_fd(), "c.log", NO_ROTATE).unwrap();
        let long = vec![b'x'; CRI_MAX_LINE * 2 + 10];
        c.write(&long).unwrap();
        c.write(b"\r\n").unwrap();
        c.finish().unwrap();
        let text = std::fs::read_to_string(t.path().join("c.log")).unwrap();
        let e = entries(&text);
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].0.as_str(), e[0].1.len()), ("P", CRI_MAX_LINE));
        assert_eq!((e[1].0.as_str(), e[1].1.len()), ("P", CRI_MAX_LINE));
        assert_eq!((e[2].0.as_str(), e[2].1.len()), ("F", 10));
    }

    #[test]
    fn cast_is_valid_json_lines_with_split_utf8_and_resizes() {
        let (t, d) = dir();
        let mut c = Cast::create(d.as_fd(), "x.cast", 24, 80, "xterm").unwrap();
        let e = "é".as_bytes();
        c.output(&[b'a', e[0]]).unwrap();
        c.output(&[e[1], b'\xff', b'b']).unwrap();
        c.resize(30, 100).unwrap();
        c.flush().unwrap();
        let text = std::fs::read_to_string(t.path().join("x.cast")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["version"], 2);
        assert_eq!(lines[0]["width"], 80);
        assert_eq!(lines[0]["height"], 24);
        assert_eq!(lines[1][1], "o");
        assert_eq!(lines[1][2], "a");
        assert_eq!(lines[2][2], "é\u{fffd}b");
        assert_eq!(lines[3][1], "r");
        assert_eq!(lines[3][2], "100x30");
    }
}
