//! The bounded output of an entered command: only the last `max` bytes are kept, so a
//! chatty probe cannot grow systemk's memory. Pure; layer 3.

use std::collections::VecDeque;

/// The last `max` bytes written.
#[derive(Debug)]
pub(super) struct Bounded {
    max: usize,
    bytes: VecDeque<u8>,
}

impl Bounded {
    pub(super) fn new(max: usize) -> Self {
        Self {
            max,
            bytes: VecDeque::new(),
        }
    }

    /// Appends `chunk`, dropping the oldest bytes beyond the bound.
    pub(super) fn take(&mut self, chunk: &[u8]) {
        let chunk = &chunk[chunk.len().saturating_sub(self.max)..];
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(self.max);
        self.bytes.drain(..overflow);
        self.bytes.extend(chunk);
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.bytes.into()
    }
}

#[cfg(test)]
mod tests {
    use super::Bounded;

    #[test]
    fn bounded_output_keeps_the_last_bytes() {
        let mut kept = Bounded::new(5);
        kept.take(b"abc");
        kept.take(b"defg");
        assert_eq!(kept.into_bytes(), b"cdefg");
    }

    #[test]
    fn bounded_output_keeps_the_end_of_a_large_chunk() {
        let mut kept = Bounded::new(3);
        kept.take(b"0123456789");
        assert_eq!(kept.into_bytes(), b"789");
    }

    #[test]
    fn bounded_output_of_zero_keeps_nothing() {
        let mut kept = Bounded::new(0);
        kept.take(b"abc");
        assert!(kept.into_bytes().is_empty());
    }
}
