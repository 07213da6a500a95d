//! The screen model of one terminal (a `vt100` parser), kept off the data path.
//!
//! vt100 parses about 30 MB/s on this machine, far below what a pty carries, so output is not
//! parsed as it arrives. The model remembers the offset it has parsed up to and catches up:
//! - in idle time, a slice at a time ([`Screen::catch_up`] with a budget, called by the event
//!   loop only when no event is pending);
//! - in full before anything reads it: a repaint, a screenshot, a resize (so output produced
//!   before a resize is laid out at the old size).
//!
//! The backlog comes from the ring. If output outran the ring (more than its capacity arrived
//! while the loop was never idle) the model *resyncs*: a fresh parser is seeded with the old
//! screen's own repaint (so the alternate screen, modes, attributes and cursor carry over) and
//! then parses the ring from its start. Only mode changes inside the bytes that were skipped are
//! lost, and [`Screen::resyncs`] counts how often that happened.

use std::num::NonZeroU16;

use crate::ring::Ring;

/// A terminal's screen as a vt100 model.
pub struct Screen {
    parser: vt100::Parser,
    parsed: u64,
    resyncs: u64,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen")
            .field("parsed", &self.parsed)
            .field("size", &self.parser.screen().size())
            .finish()
    }
}

fn nz(v: u16) -> NonZeroU16 {
    NonZeroU16::new(v).unwrap_or(NonZeroU16::MIN)
}

impl Screen {
    /// A blank screen of `rows` x `cols` (each at least 1), with no scrollback (history lives in
    /// the ring and the log).
    pub fn new(rows: u16, cols: u16) -> Screen {
        Screen {
            parser: vt100::Parser::new(nz(rows), nz(cols), 0),
            parsed: 0,
            resyncs: 0,
        }
    }

    /// The offset parsed up to.
    pub fn parsed(&self) -> u64 {
        self.parsed
    }

    /// How many times output outran the ring and the model resynced.
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    /// Parses at most `budget` bytes of the backlog from `ring`; returns whether some is left.
    pub fn catch_up(&mut self, ring: &Ring, budget: usize) -> bool {
        if self.parsed < ring.start() {
            self.resync(ring.start());
        }
        let mut budget = budget;
        while budget > 0 && self.parsed < ring.head() {
            let Some((a, b)) = ring.slices(self.parsed, budget) else {
                break;
            };
            let n = a.len() + b.len();
            self.parser.process(a);
            self.parser.process(b);
            self.parsed += n as u64;
            budget -= n;
        }
        self.parsed < ring.head()
    }

    /// Parses the whole backlog.
    pub fn catch_up_all(&mut self, ring: &Ring) {
        self.catch_up(ring, usize::MAX);
    }

    fn resync(&mut self, start: u64) {
        let seed = self.repaint_bytes();
        let (rows, cols) = self.parser.screen().size();
        let mut p = vt100::Parser::new(rows, cols, 0);
        p.process(&seed);
        self.parser = p;
        self.parsed = start;
        self.resyncs += 1;
    }

    /// Resizes the model (call [`Screen::catch_up_all`] first).
    pub fn set_size(&mut self, rows: u16, cols: u16) {
        self.parser.set_size(nz(rows), nz(cols));
    }

    /// `(rows, cols)`.
    pub fn size(&self) -> (u16, u16) {
        let (r, c) = self.parser.screen().size();
        (r.get(), c.get())
    }

    /// Escape sequences that draw the current screen on a terminal: vt100's `state_formatted`
    /// (clear, cells with attributes, cursor position and visibility, input modes). When the
    /// program is on the alternate screen, the main screen underneath is drawn first (from a
    /// copy of the model that left the alternate screen, so with the cursor the program saved
    /// on entering it), then `ESC[?1049h` switches over: when the program later leaves the
    /// alternate screen, the re-attached terminal shows what a terminal that stayed would.
    /// Call [`Screen::catch_up_all`] first.
    pub fn repaint_bytes(&self) -> Vec<u8> {
        let s = self.parser.screen();
        let mut v = Vec::new();
        if s.alternate_screen() {
            let (rows, cols) = s.size();
            let mut main = vt100::Parser::new(rows, cols, 0);
            *main.screen_mut() = s.clone();
            main.process(b"\x1b[?1049l");
            v.extend_from_slice(main.screen().state_formatted().as_bytes());
            v.extend_from_slice(b"\x1b[?1049h");
        }
        v.extend_from_slice(s.state_formatted().as_bytes());
        v
    }

    /// Whether the program is on the alternate screen.
    pub fn alternate(&self) -> bool {
        self.parser.screen().alternate_screen()
    }

    /// The screen as text: one line per row, trailing spaces removed (what `tmux capture-pane
    /// -p` prints). Call [`Screen::catch_up_all`] first.
    pub fn text(&self) -> String {
        let s = self.parser.screen();
        let (_, cols) = s.size();
        let mut out = String::new();
        for row in s.rows(0, cols.get()) {
            out.push_str(row.trim_end());
            out.push('\n');
        }
        out
    }

    /// The screen with colours and attributes as escape sequences (`contents_formatted`).
    pub fn formatted(&self) -> Vec<u8> {
        self.parser.screen().contents_formatted().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(ring: &mut Ring, s: &Screen, data: &[u8]) {
        let _ = s;
        ring.push(data);
    }

    #[test]
    fn lazy_parse_catches_up_in_slices_and_in_full() {
        let mut ring = Ring::new(1 << 16);
        let mut s = Screen::new(5, 20);
        feed(&mut ring, &s, b"hello\r\nworld\r\n");
        assert!(s.catch_up(&ring, 3));
        assert_eq!(s.parsed(), 3);
        s.catch_up_all(&ring);
        assert_eq!(s.parsed(), ring.head());
        assert_eq!(s.text(), "hello\nworld\n\n\n\n");
    }

    #[test]
    fn repaint_reproduces_the_screen_including_the_alternate_screen() {
        let mut ring = Ring::new(1 << 16);
        let mut s = Screen::new(6, 30);
        ring.push(b"main screen text\r\n\x1b[?1049h\x1b[2J\x1b[H\x1b[1;31mred\x1b[0m\r\n  vi-like\x1b[3;5H");
        s.catch_up_all(&ring);
        assert!(s.alternate());
        let repaint = s.repaint_bytes();
        let mut other = vt100::Parser::new(nz(6), nz(30), 0);
        other.process(&repaint);
        assert_eq!(other.screen().contents(), s.parser.screen().contents());
        assert_eq!(other.screen().cursor_position(), (2, 4));
        assert!(other.screen().alternate_screen());
        assert_eq!(
            other.screen().cell(0, 0).unwrap().fgcolor(),
            vt100::Color::Idx(1)
        );
        // Leaving the alternate screen shows the main screen and cursor in both.
        s.parser.process(b"\x1b[?1049l");
        other.process(b"\x1b[?1049l");
        assert_eq!(other.screen().contents(), "main screen text");
        assert_eq!(other.screen().contents(), s.parser.screen().contents());
        assert_eq!(
            other.screen().cursor_position(),
            s.parser.screen().cursor_position()
        );
    }

    #[test]
    fn outrunning_the_ring_resyncs_and_keeps_modes() {
        let mut ring = Ring::new(4096);
        let mut s = Screen::new(4, 10);
        ring.push(b"\x1b[?1049h\x1b[?25l");
        s.catch_up_all(&ring);
        for i in 0..2000 {
            ring.push(format!("line {i}\r\n").as_bytes());
        }
        assert!(s.parsed() < ring.start());
        s.catch_up_all(&ring);
        assert_eq!(s.resyncs(), 1);
        assert!(s.alternate());
        assert!(s.parser.screen().hide_cursor());
        assert!(s.text().contains("line 1999"));
    }
}
