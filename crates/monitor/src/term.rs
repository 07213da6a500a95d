//! One terminal held by the monitor: the container's console, an extra tty, or an exec session.
//!
//! A `Term` owns the pty master (once it has arrived), the output ring, the raw and derived
//! logs, the screen model, the input queue, the size, and the process's exit status. Output is
//! always read from the master as soon as it is readable and goes to the ring and the logs
//! before any client sees it: nothing a client does can slow the reading down.
//!
//! Input: bytes from read-write clients are queued (at most [`INPUT_MAX`]) and written to the
//! master when it accepts them; while the queue is full the monitor stops reading those
//! clients, so a container that does not read its input only ever stalls the typists.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use berth_proto::ExitCode;
use berth_tty::Winsize;
use rustix::io::Errno;

use crate::error::MonitorError;
use crate::logs::{Cast, CriLog};
use crate::ring::Ring;
use crate::rotate::Rotating;
use crate::screen::Screen;

/// Input bytes queued for the master before read-write clients are paused.
pub const INPUT_MAX: usize = 64 * 1024;
/// The largest dimension accepted for a terminal (conmon's limit too); it bounds the screen
/// model's memory.
pub const MAX_DIMENSION: u16 = 1000;

/// What kind of terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The container's console.
    Console,
    /// Extra tty N.
    Tty(u16),
    /// An exec session.
    Exec,
}

/// What a read of the master found.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReadOutcome {
    /// Bytes read (already in the ring and logs).
    pub bytes: usize,
    /// The budget ran out with more possibly pending.
    pub more: bool,
    /// The master reported EIO: no peer is open at the moment.
    pub hangup: bool,
}

/// A terminal.
#[derive(Debug)]
pub struct Term {
    /// `console`, `ttyN`, or the exec session's name.
    pub name: String,
    /// Console, tty or exec.
    pub kind: Kind,
    /// The master, once received.
    pub master: Option<OwnedFd>,
    /// Output tail.
    pub ring: Ring,
    /// The raw byte log.
    pub raw: Rotating,
    /// The CRI log.
    pub cri: Option<CriLog>,
    /// The asciicast recording.
    pub cast: Option<Cast>,
    /// The screen model.
    pub screen: Screen,
    /// The size the pty has (or gets when it arrives). Never 0x0.
    pub size: Winsize,
    /// Queued input.
    input: Vec<u8>,
    /// The last input byte written (for `VEOF` handling).
    last_input: u8,
    /// The process on the terminal (init or exec'd process), once known.
    pub pid: Option<i32>,
    /// How it ended.
    pub exit: Option<ExitCode>,
    /// The master was read to `EAGAIN`/`EIO` after the process ended.
    pub drained: bool,
    /// Edge-triggered master: more may be readable without a new event.
    pub readable: bool,
    /// Attached clients (ids), in attach order.
    pub clients: Vec<u32>,
    /// When a partial CRI line started waiting (monotonic seconds).
    pub cri_partial_since: Option<f64>,
    /// Bytes dropped because the master refused input (it was closed).
    pub input_dropped: u64,
    /// When the buffered log bytes must be written (monotonic seconds).
    pub flush_due: Option<f64>,
    /// When clients held back to gather a bulk of output must be sent to.
    pub pump_due: Option<f64>,
    /// The master's `EPOLLOUT` interest is on (only while input waits for room).
    pub out_armed: bool,
}

impl Term {
    /// A terminal without a master yet.
    pub fn new(name: &str, kind: Kind, ring_size: usize, raw: Rotating, size: Winsize) -> Term {
        Term {
            name: name.to_string(),
            kind,
            master: None,
            ring: Ring::new(ring_size),
            raw,
            cri: None,
            cast: None,
            screen: Screen::new(size.rows, size.cols),
            size,
            input: Vec::new(),
            last_input: b'\n',
            pid: None,
            exit: None,
            drained: false,
            readable: false,
            clients: Vec::new(),
            cri_partial_since: None,
            input_dropped: 0,
            flush_due: None,
            pump_due: None,
            out_armed: false,
        }
    }

    /// The master, if present.
    pub fn master_fd(&self) -> Option<BorrowedFd<'_>> {
        self.master.as_ref().map(|m| m.as_fd())
    }

    /// `waiting` (no master yet), `running`, or the exit.
    pub fn status(&self) -> String {
        match (&self.exit, &self.master) {
            (Some(e), _) => e.to_string(),
            (None, None) => "waiting".into(),
            (None, Some(_)) => "running".into(),
        }
    }

    /// Output bytes: to the ring and every log.
    pub fn output(&mut self, data: &[u8], now: f64) -> Result<(), MonitorError> {
        self.ring.push(data);
        self.raw.write(data)?;
        if let Some(c) = &mut self.cri {
            c.write(data)?;
            self.cri_partial_since = if c.has_partial() {
                self.cri_partial_since.or(Some(now))
            } else {
                None
            };
        }
        if let Some(c) = &mut self.cast {
            c.output(data)?;
        }
        Ok(())
    }

    /// Reads the master into `scratch` until `EAGAIN`, `EIO`, a short read or `budget` bytes.
    ///
    /// A short read ends the loop without the extra read that would return `EAGAIN`: the master
    /// is registered edge-triggered, and data arriving after the read is a new edge (the tty
    /// wakes its readers for every receive). After the process ended (`exit` set) the loop goes
    /// on to `EAGAIN`/`EIO`, which is how the final drain is known to be complete.
    pub fn read_master(
        &mut self,
        scratch: &mut [u8],
        budget: usize,
        now: f64,
    ) -> Result<ReadOutcome, MonitorError> {
        let mut out = ReadOutcome::default();
        loop {
            if out.bytes >= budget {
                out.more = true;
                return Ok(out);
            }
            let Some(m) = &self.master else {
                return Ok(out);
            };
            match rustix::io::read(m, &mut *scratch) {
                Ok(0) => {
                    out.hangup = true;
                    return Ok(out);
                }
                Ok(n) => {
                    out.bytes += n;
                    self.output(&scratch[..n], now)?;
                    if n < scratch.len() && self.exit.is_none() {
                        return Ok(out);
                    }
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => return Ok(out),
                // EIO: every peer fd is closed right now. Not the end: the container may open
                // the terminal again (edge-triggered epoll brings the next data).
                Err(Errno::IO) => {
                    out.hangup = true;
                    return Ok(out);
                }
                Err(e) => {
                    return Err(MonitorError::sys(
                        "read",
                        format!("{} master", self.name),
                        e,
                    ));
                }
            }
        }
    }

    /// Queued input bytes.
    pub fn input_len(&self) -> usize {
        self.input.len()
    }

    /// Queues input.
    pub fn queue_input(&mut self, data: &[u8]) {
        self.input.extend_from_slice(data);
    }

    /// Queues the terminal's end-of-file character (`VEOF`), twice if the last byte written was
    /// not a newline (once ends the partial line, once is the end of file), when the pty is in
    /// canonical mode; nothing otherwise (a raw-mode program has no notion of it).
    pub fn queue_eof(&mut self) {
        let Some(m) = &self.master else {
            return;
        };
        let Ok(t) = rustix::termios::tcgetattr(m) else {
            return;
        };
        if !t.local_modes.contains(rustix::termios::LocalModes::ICANON) {
            return;
        }
        let veof = t.special_codes[rustix::termios::SpecialCodeIndex::VEOF];
        let last = self.input.last().copied().unwrap_or(self.last_input);
        if last != b'\n' {
            self.input.push(veof);
        }
        self.input.push(veof);
    }

    /// Writes queued input to the master; returns whether some is still queued.
    pub fn write_input(&mut self) -> bool {
        let Some(m) = &self.master else {
            return !self.input.is_empty();
        };
        let mut at = 0;
        while at < self.input.len() {
            match rustix::io::write(m, &self.input[at..]) {
                Ok(n) => at += n,
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => break,
                Err(e) => {
                    log::debug!("{}: input refused by the master: {e}", self.name);
                    self.input_dropped += (self.input.len() - at) as u64;
                    at = self.input.len();
                }
            }
        }
        if at > 0 {
            self.last_input = self.input[at - 1];
            self.input.drain(..at);
        }
        !self.input.is_empty()
    }

    /// Applies `size` (never 0x0) to the pty, the screen model and the recording. Returns whether
    /// it changed.
    pub fn apply_size(&mut self, size: Winsize) -> Result<bool, MonitorError> {
        if size.rows == 0 || size.cols == 0 {
            return Ok(false);
        }
        let changed = size != self.size;
        if changed {
            self.screen.catch_up_all(&self.ring);
            self.screen.set_size(size.rows, size.cols);
            if let Some(c) = &mut self.cast {
                c.resize(size.rows, size.cols)?;
                c.flush()?;
            }
            self.size = size;
        }
        if let Some(m) = &self.master {
            let current = Winsize::get(m.as_fd()).unwrap_or_default();
            if current != size {
                size.set(m.as_fd())
                    .map_err(|e| MonitorError::tty(format!("resize {}", self.name), e))?;
            }
        }
        Ok(changed)
    }

    /// Copies output bytes at `off` into `out`, from the ring or the raw log. `Ok(None)` when
    /// they are gone (rotated away).
    pub fn read_at(&mut self, off: u64, out: &mut [u8]) -> Result<Option<usize>, MonitorError> {
        if off >= self.ring.start() {
            return Ok(Some(self.ring.read_at(off, out)));
        }
        let n = self.raw.read_at(off, out)?;
        // Never past the ring's start through the file: the ring is the authority there.
        Ok(n.map(|n| n.min((self.ring.start() - off) as usize)))
    }

    /// The oldest offset still available (ring or logs).
    pub fn oldest(&self) -> u64 {
        self.raw.oldest().min(self.ring.start())
    }

    /// The offset where the last `lines` lines begin (a final unterminated line counts as one),
    /// searching the ring and then the logs backwards; the oldest available offset if there are
    /// fewer.
    pub fn tail_offset(&mut self, lines: u64) -> Result<u64, MonitorError> {
        let head = self.ring.head();
        if lines == 0 {
            return Ok(head);
        }
        let oldest = self.oldest();
        let mut buf = vec![0u8; 64 * 1024];
        let mut end = head;
        let mut seen = 0u64;
        let mut skip_final_newline = true;
        while end > oldest {
            let start = end.saturating_sub(buf.len() as u64).max(oldest);
            let want = (end - start) as usize;
            let mut got = 0;
            while got < want {
                match self.read_at(start + got as u64, &mut buf[got..want])? {
                    Some(n) if n > 0 => got += n,
                    _ => break,
                }
            }
            if got < want {
                return Ok(start + got as u64);
            }
            for i in (0..want).rev() {
                if buf[i] == b'\n' {
                    if skip_final_newline && start + i as u64 == head - 1 {
                        skip_final_newline = false;
                        continue;
                    }
                    seen += 1;
                    if seen == lines {
                        return Ok(start + i as u64 + 1);
                    }
                }
                skip_final_newline = false;
            }
            end = start;
        }
        Ok(oldest)
    }

    /// Flushes the logs' buffers.
    pub fn flush_logs(&mut self) -> Result<(), MonitorError> {
        self.raw.flush()?;
        if let Some(c) = &mut self.cri {
            c.flush()?;
        }
        if let Some(c) = &mut self.cast {
            c.flush()?;
        }
        Ok(())
    }

    /// Writes a partial CRI line that has waited since before `deadline`.
    pub fn flush_cri_partial(&mut self, older_than: f64) -> Result<(), MonitorError> {
        if let (Some(since), Some(c)) = (self.cri_partial_since, &mut self.cri) {
            if since <= older_than {
                c.flush_partial()?;
                self.cri_partial_since = None;
            }
        }
        Ok(())
    }
}
