//! Detach keys: parsing Docker's `--detach-keys` and LXC's `-e` forms, and the [`Scanner`] that
//! finds the sequence in the user's keystrokes.
//!
//! # Semantics (for keys `k0 k1 … kn-1`)
//! - Typing the whole sequence detaches; the sequence is never forwarded, and input after it in
//!   the same read is dropped.
//! - A partial match is *held* (not forwarded yet). When the next byte does not continue the
//!   match, the held bytes are forwarded and scanned again with that byte (a later part of them
//!   may start the sequence): the sequence is found wherever it starts.
//! - The prefix typed twice (`k0 k0`, when `k1 != k0`) forwards one `k0` and holds nothing:
//!   the way to send `ctrl-p` (or LXC's `ctrl-a`) to the container.
//! - The client calls [`Scanner::flush`] when a held prefix has waited too long (its timeout)
//!   and at end of input: the held bytes are forwarded, never dropped.
//!
//! So the container receives exactly the user's bytes minus each detected sequence, with each
//! doubled prefix collapsed to one (checked by a property test against a separate reference).

use std::fmt;

/// A detach sequence (at least one byte).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DetachKeys(Vec<u8>);

/// Why a `--detach-keys` or `-e` value is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    /// One of the comma-separated keys is empty.
    #[error("{spec:?}: key {index} is empty (keys are comma-separated, e.g. ctrl-p,ctrl-q)")]
    EmptyKey {
        /// The whole value.
        spec: String,
        /// 1-based position of the empty key.
        index: usize,
    },
    /// A key is neither one character nor `ctrl-<…>`.
    #[error("{spec:?}: key {key:?} is not a single character or ctrl-<a-z|@|[|\\|]|^|_>")]
    UnknownKey {
        /// The whole value.
        spec: String,
        /// The key.
        key: String,
    },
    /// An escape prefix other than one letter, `^x` or `ctrl-x`.
    #[error("{spec:?}: the escape prefix must be a letter, ^<letter> or ctrl-<letter> (e.g. ^a)")]
    BadEscape {
        /// The value.
        spec: String,
    },
}

/// The byte of `ctrl-<c>`, for the names Docker accepts.
fn ctrl_byte(c: &str) -> Option<u8> {
    let b = c.as_bytes();
    if b.len() != 1 {
        return None;
    }
    match b[0] {
        x @ b'a'..=b'z' => Some(x - b'a' + 1),
        x @ b'A'..=b'Z' => Some(x - b'A' + 1),
        b'@' => Some(0),
        b'[' => Some(27),
        b'\\' => Some(28),
        b']' => Some(29),
        b'^' => Some(30),
        b'_' => Some(31),
        _ => None,
    }
}

fn key_name(b: u8) -> String {
    match b {
        0 => "ctrl-@".into(),
        1..=26 => format!("ctrl-{}", char::from(b - 1 + b'a')),
        27 => "ctrl-[".into(),
        28 => "ctrl-\\".into(),
        29 => "ctrl-]".into(),
        30 => "ctrl-^".into(),
        31 => "ctrl-_".into(),
        b if b.is_ascii_graphic() || b == b' ' => char::from(b).to_string(),
        b => format!("{b:#04x}"),
    }
}

impl DetachKeys {
    /// Docker's default, `ctrl-p,ctrl-q`.
    pub fn docker_default() -> DetachKeys {
        DetachKeys(vec![0x10, 0x11])
    }

    /// LXC's default, `ctrl-a q`.
    pub fn lxc_default() -> DetachKeys {
        DetachKeys(vec![0x01, b'q'])
    }

    /// Parses Docker's `--detach-keys` format: comma-separated keys, each one ASCII character or
    /// `ctrl-<a-z|@|[|\|]|^|_>`. `""` means "no detach keys" (`Ok(None)`).
    pub fn parse_docker(spec: &str) -> Result<Option<DetachKeys>, KeysError> {
        if spec.is_empty() {
            return Ok(None);
        }
        let mut keys = Vec::new();
        for (i, key) in spec.split(',').enumerate() {
            if key.is_empty() {
                return Err(KeysError::EmptyKey {
                    spec: spec.into(),
                    index: i + 1,
                });
            }
            let b = if key.len() == 1 && key.is_ascii() {
                Some(key.as_bytes()[0])
            } else {
                key.strip_prefix("ctrl-").and_then(ctrl_byte)
            };
            match b {
                Some(b) => keys.push(b),
                None => {
                    return Err(KeysError::UnknownKey {
                        spec: spec.into(),
                        key: key.into(),
                    });
                }
            }
        }
        Ok(Some(DetachKeys(keys)))
    }

    /// Parses LXC's escape prefix (`lxc-console -e`): a letter `x`, `^x` or `ctrl-x`, all
    /// meaning Ctrl+x; the sequence is then that prefix followed by `q`.
    pub fn parse_escape(spec: &str) -> Result<DetachKeys, KeysError> {
        let letter = spec
            .strip_prefix('^')
            .or_else(|| spec.strip_prefix("ctrl-"))
            .or_else(|| spec.strip_prefix("C-"))
            .unwrap_or(spec);
        match letter.as_bytes() {
            [c] if c.is_ascii_alphabetic() => {
                let prefix = c.to_ascii_lowercase() - b'a' + 1;
                if prefix == b'q' - b'a' + 1 {
                    // ctrl-q is XON: terminals eat it.
                    return Err(KeysError::BadEscape { spec: spec.into() });
                }
                Ok(DetachKeys(vec![prefix, b'q']))
            }
            _ => Err(KeysError::BadEscape { spec: spec.into() }),
        }
    }

    /// A sequence from raw bytes (`None` if empty).
    pub fn from_bytes(bytes: &[u8]) -> Option<DetachKeys> {
        (!bytes.is_empty()).then(|| DetachKeys(bytes.to_vec()))
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for DetachKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.0.iter().map(|&b| key_name(b)).collect();
        f.write_str(&names.join(","))
    }
}

/// What [`Scanner::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Keep going (some bytes may be held).
    Continue,
    /// The detach sequence was typed.
    Detach,
}

/// Finds a detach sequence in a stream of keystrokes (see the module docs).
#[derive(Debug, Clone)]
pub struct Scanner {
    keys: Vec<u8>,
    matched: usize,
}

impl Scanner {
    /// A scanner for `keys`; `None` disables detaching (everything is forwarded).
    pub fn new(keys: Option<DetachKeys>) -> Scanner {
        Scanner {
            keys: keys.map(|k| k.0).unwrap_or_default(),
            matched: 0,
        }
    }

    /// Whether a partial sequence is held back.
    pub fn holding(&self) -> bool {
        self.matched > 0
    }

    /// Forwards the held bytes (timeout or end of input).
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        while self.matched > 0 {
            self.give_up_first(out);
        }
    }

    /// The held match cannot continue: forward its first byte and scan the rest of it again
    /// (a later part of it may start the sequence, or be a doubled prefix).
    fn give_up_first(&mut self, out: &mut Vec<u8>) {
        let held = self.keys[1..self.matched].to_vec();
        self.matched = 0;
        out.push(self.keys[0]);
        // Shorter than the sequence, so it cannot complete it.
        let _ = self.feed(&held, out);
    }

    /// Scans `input`, appending what is to be forwarded to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Scan {
        let Some(&first) = self.keys.first() else {
            out.extend_from_slice(input);
            return Scan::Continue;
        };
        let mut i = 0;
        while i < input.len() {
            if self.matched == 0 {
                // Fast path: copy up to the next possible start of the sequence.
                match input[i..].iter().position(|&b| b == first) {
                    None => {
                        out.extend_from_slice(&input[i..]);
                        return Scan::Continue;
                    }
                    Some(p) => {
                        out.extend_from_slice(&input[i..i + p]);
                        i += p;
                    }
                }
            }
            let b = input[i];
            i += 1;
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Scan::Detach;
                }
            } else if self.matched == 1 && b == first {
                // The prefix typed twice: one literal prefix.
                out.push(first);
                self.matched = 0;
            } else if self.matched > 0 {
                self.give_up_first(out);
                i -= 1; // look at `b` again
            } else {
                out.push(b);
            }
        }
        Scan::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A reference written differently from the scanner: over the whole input at once, by
    /// looking ahead instead of keeping state. Returns (forwarded, detached).
    fn reference(keys: &[u8], input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            if input[i..].starts_with(keys) {
                return (out, true);
            }
            if keys.len() > 1
                && keys[1] != keys[0]
                && input[i] == keys[0]
                && input.get(i + 1) == Some(&keys[0])
            {
                out.push(keys[0]);
                i += 2;
                continue;
            }
            out.push(input[i]);
            i += 1;
        }
        (out, false)
    }

    fn run(keys: &DetachKeys, input: &[u8], rng: &mut Rng) -> (Vec<u8>, bool) {
        let mut s = Scanner::new(Some(keys.clone()));
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            let n = 1 + rng.below(5) as usize;
            let chunk = &input[i..(i + n).min(input.len())];
            i += chunk.len();
            if s.feed(chunk, &mut out) == Scan::Detach {
                return (out, true);
            }
        }
        s.flush(&mut out);
        (out, false)
    }

    #[test]
    fn scanner_matches_the_reference_for_any_chunking() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let keysets = [
            DetachKeys::docker_default(),
            DetachKeys::lxc_default(),
            DetachKeys(vec![b'x']),
            DetachKeys(vec![1, 1]),
            DetachKeys(vec![1, 2, 3]),
            DetachKeys(vec![1, 2, 1, 3]),
            DetachKeys(vec![1, 2, 1, 1, 3]),
        ];
        for keys in &keysets {
            // Small alphabet so sequences and near-misses are frequent.
            let alphabet: Vec<u8> = [keys.bytes(), b"ab\x03q"].concat();
            for _ in 0..20_000 {
                let len = rng.below(12) as usize;
                let input: Vec<u8> = (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                    .collect();
                let want = reference(keys.bytes(), &input);
                assert_eq!(
                    run(keys, &input, &mut rng),
                    want,
                    "keys {keys} input {input:?}"
                );
            }
        }
    }

    #[test]
    fn docker_style_cases() {
        let k = DetachKeys::docker_default();
        let mut rng = Rng(7);
        assert_eq!(run(&k, b"ab\x10\x11cd", &mut rng), (b"ab".to_vec(), true));
        assert_eq!(run(&k, b"\x10\x10", &mut rng), (vec![0x10], false));
        assert_eq!(run(&k, b"\x10x", &mut rng), (b"\x10x".to_vec(), false));
        // A held prefix is flushed at the end, never dropped.
        assert_eq!(run(&k, b"a\x10", &mut rng), (b"a\x10".to_vec(), false));
        // Up-arrow-like input passes through.
        assert_eq!(run(&k, b"\x1b[A", &mut rng), (b"\x1b[A".to_vec(), false));
    }

    #[test]
    fn holding_and_flush() {
        let mut s = Scanner::new(Some(DetachKeys::lxc_default()));
        let mut out = Vec::new();
        assert_eq!(s.feed(b"x\x01", &mut out), Scan::Continue);
        assert!(s.holding());
        assert_eq!(out, b"x");
        s.flush(&mut out);
        assert!(!s.holding());
        assert_eq!(out, b"x\x01");
        assert_eq!(s.feed(b"\x01q", &mut out), Scan::Detach);
    }

    #[test]
    fn disabled_forwards_everything() {
        let mut s = Scanner::new(None);
        let mut out = Vec::new();
        assert_eq!(s.feed(b"\x10\x11", &mut out), Scan::Continue);
        assert_eq!(out, b"\x10\x11");
        assert!(!s.holding());
    }

    #[test]
    fn parse_docker_forms() {
        assert_eq!(DetachKeys::parse_docker("").unwrap(), None);
        assert_eq!(
            DetachKeys::parse_docker("ctrl-p,ctrl-q").unwrap(),
            Some(DetachKeys::docker_default())
        );
        assert_eq!(
            DetachKeys::parse_docker("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_,a,Z")
                .unwrap()
                .unwrap()
                .bytes(),
            &[0, 27, 28, 29, 30, 31, b'a', b'Z']
        );
        assert_eq!(
            DetachKeys::parse_docker("ctrl-x")
                .unwrap()
                .unwrap()
                .to_string(),
            "ctrl-x"
        );
    }

    #[test]
    fn parse_docker_errors_are_clear() {
        let cases = [
            (
                "ctrl-p,",
                "\"ctrl-p,\": key 2 is empty (keys are comma-separated, e.g. ctrl-p,ctrl-q)",
            ),
            (
                ",",
                "\",\": key 1 is empty (keys are comma-separated, e.g. ctrl-p,ctrl-q)",
            ),
            (
                "ctrl-",
                "\"ctrl-\": key \"ctrl-\" is not a single character or ctrl-<a-z|@|[|\\|]|^|_>",
            ),
            (
                "ctrl-1",
                "\"ctrl-1\": key \"ctrl-1\" is not a single character or ctrl-<a-z|@|[|\\|]|^|_>",
            ),
            (
                "foo",
                "\"foo\": key \"foo\" is not a single character or ctrl-<a-z|@|[|\\|]|^|_>",
            ),
            (
                "é",
                "\"é\": key \"é\" is not a single character or ctrl-<a-z|@|[|\\|]|^|_>",
            ),
            (
                "ctrl-pp",
                "\"ctrl-pp\": key \"ctrl-pp\" is not a single character or ctrl-<a-z|@|[|\\|]|^|_>",
            ),
        ];
        for (spec, msg) in cases {
            assert_eq!(
                DetachKeys::parse_docker(spec).unwrap_err().to_string(),
                msg,
                "{spec}"
            );
        }
    }

    #[test]
    fn parse_escape_forms() {
        for s in ["a", "^a", "ctrl-a", "C-a", "^A"] {
            assert_eq!(
                DetachKeys::parse_escape(s).unwrap(),
                DetachKeys::lxc_default()
            );
        }
        assert_eq!(DetachKeys::parse_escape("^b").unwrap().bytes(), &[2, b'q']);
        for s in ["", "^", "ab", "^1", "ctrl-", "^q", "é"] {
            let e = DetachKeys::parse_escape(s).unwrap_err();
            assert!(e.to_string().contains("escape prefix"), "{s}: {e}");
        }
    }
}
