//! The in-memory tail of a terminal's output, addressed by absolute byte offsets.
//!
//! Invariants: `start() <= head()`, `head() - start() <= capacity`, and the bytes at offsets
//! `start()..head()` are exactly the last bytes pushed. Pushing never fails: the oldest bytes
//! are overwritten (they are also in the raw log). Memory grows with use up to the capacity, so
//! an idle terminal costs a few pages, not the whole capacity.

/// A byte ring with absolute offsets.
#[derive(Debug)]
pub struct Ring {
    buf: Vec<u8>,
    cap: usize,
    head: u64,
}

impl Ring {
    /// An empty ring holding at most `cap` bytes (at least 4096).
    pub fn new(cap: usize) -> Ring {
        Ring {
            buf: Vec::new(),
            cap: cap.max(4096),
            head: 0,
        }
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The offset after the last byte pushed (the total ever pushed).
    pub fn head(&self) -> u64 {
        self.head
    }

    /// The oldest offset still held.
    pub fn start(&self) -> u64 {
        self.head - self.len() as u64
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        (self.head.min(self.cap as u64)) as usize
    }

    /// Whether nothing was ever pushed.
    pub fn is_empty(&self) -> bool {
        self.head == 0
    }

    fn index(&self, off: u64) -> usize {
        (off % self.cap as u64) as usize
    }

    /// Appends `data` (only its last `capacity` bytes matter).
    pub fn push(&mut self, mut data: &[u8]) {
        if data.len() > self.cap {
            let skip = data.len() - self.cap;
            self.head += skip as u64;
            data = &data[skip..];
        }
        while !data.is_empty() {
            let at = self.index(self.head);
            if self.buf.len() < self.cap && at == self.buf.len() {
                // Still growing: append.
                let n = data.len().min(self.cap - at);
                self.buf.extend_from_slice(&data[..n]);
                self.head += n as u64;
                data = &data[n..];
                continue;
            }
            if self.buf.len() < self.cap {
                // `skip` above moved the head past what was ever stored: fill with zeros
                // (these offsets are older than `start()` once the push completes).
                self.buf.resize(self.cap, 0);
            }
            let n = data.len().min(self.cap - at);
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.head += n as u64;
            data = &data[n..];
        }
    }

    /// Up to two slices holding the bytes `from..from+max` (clamped to the head), or `None`
    /// when `from` is older than `start()` or newer than the head.
    pub fn slices(&self, from: u64, max: usize) -> Option<(&[u8], &[u8])> {
        if from < self.start() || from > self.head {
            return None;
        }
        let n = ((self.head - from) as usize).min(max);
        if n == 0 {
            return Some((&[], &[]));
        }
        let at = self.index(from);
        let first = n.min(self.cap - at).min(self.buf.len() - at);
        let a = &self.buf[at..at + first];
        let b = &self.buf[..n - first];
        Some((a, b))
    }

    /// Copies the bytes from `from` into `out` (as many as fit and exist); returns how many.
    pub fn read_at(&self, from: u64, out: &mut [u8]) -> usize {
        match self.slices(from, out.len()) {
            None => 0,
            Some((a, b)) => {
                out[..a.len()].copy_from_slice(a);
                out[a.len()..a.len() + b.len()].copy_from_slice(b);
                a.len() + b.len()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(r: &Ring, from: u64, max: usize) -> Option<Vec<u8>> {
        r.slices(from, max).map(|(a, b)| [a, b].concat())
    }

    #[test]
    fn wraps_and_keeps_the_last_bytes() {
        let mut r = Ring::new(4096);
        let all: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let mut pushed = 0;
        for (i, chunk) in all.chunks(777).enumerate() {
            r.push(chunk);
            pushed += chunk.len();
            assert_eq!(r.head(), pushed as u64);
            let start = r.start() as usize;
            assert_eq!(start, pushed.saturating_sub(4096), "chunk {i}");
            assert_eq!(
                collect(&r, start as u64, usize::MAX).unwrap(),
                all[start..pushed]
            );
        }
        assert_eq!(collect(&r, r.start() - 1, 10), None);
        assert_eq!(collect(&r, r.head() + 1, 10), None);
        assert_eq!(collect(&r, r.head(), 10), Some(vec![]));
        let from = r.head() - 100;
        assert_eq!(
            collect(&r, from, 30).unwrap(),
            all[from as usize..from as usize + 30]
        );
    }

    #[test]
    fn a_push_larger_than_the_ring_keeps_its_tail() {
        let mut r = Ring::new(4096);
        r.push(b"abc");
        let big: Vec<u8> = (0..10_000u32).map(|i| (i % 199) as u8).collect();
        r.push(&big);
        assert_eq!(r.head(), 10_003);
        assert_eq!(r.start(), 10_003 - 4096);
        assert_eq!(
            collect(&r, r.start(), usize::MAX).unwrap(),
            big[big.len() - 4096..]
        );
        let mut out = [0u8; 10];
        assert_eq!(r.read_at(r.head() - 4, &mut out), 4);
        assert_eq!(&out[..4], &big[big.len() - 4..]);
    }

    #[test]
    fn memory_grows_with_use() {
        let mut r = Ring::new(1 << 20);
        r.push(b"hello");
        assert_eq!(r.buf.len(), 5);
        assert_eq!(r.capacity(), 1 << 20);
    }
}
