//! Incremental UTF-8 validation across frame boundaries (RFC 6455 §8.1).
//!
//! The standard library does the validation; this type only carries the
//! bytes of a code point split between two chunks. It fails as soon as an
//! invalid sequence is seen, even in the middle of a message ("fail fast").

/// Validates a byte stream chunk by chunk.
#[derive(Debug, Default, Clone)]
pub(super) struct Utf8Validator {
    /// The incomplete code point at the end of the last chunk.
    carry: [u8; 4],
    /// How many bytes of `carry` are in use (0..=3).
    len: usize,
}

/// Length of the sequence started by `lead`, which the standard library
/// already accepted as the start of a valid sequence (0xC2..=0xF4).
fn width(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        _ => 2,
    }
}

impl Utf8Validator {
    /// Forgets everything (start of a new message).
    pub(super) fn reset(&mut self) {
        self.len = 0;
    }

    /// Validates the next chunk. `Err` as soon as the stream cannot be UTF-8
    /// whatever follows.
    pub(super) fn feed(&mut self, mut data: &[u8]) -> Result<(), ()> {
        if self.len > 0 {
            let need = width(self.carry[0]) - self.len;
            let take = need.min(data.len());
            self.carry[self.len..self.len + take].copy_from_slice(&data[..take]);
            self.len += take;
            data = &data[take..];
            match std::str::from_utf8(&self.carry[..self.len]) {
                Ok(_) => self.len = 0,
                // Still a valid prefix: `data` is exhausted.
                Err(e) if e.error_len().is_none() => return Ok(()),
                Err(_) => return Err(()),
            }
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.len = tail.len();
                Ok(())
            }
            Err(_) => Err(()),
        }
    }

    /// Whether the stream so far ends on a code point boundary.
    #[cfg(test)]
    pub(super) fn is_complete(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `data` split at every pair of offsets and compares with std.
    fn check(data: &[u8]) {
        let valid_prefix_ok = |upto: usize| match std::str::from_utf8(&data[..upto]) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        };
        let whole = std::str::from_utf8(data).is_ok();
        for i in 0..=data.len() {
            for j in i..=data.len() {
                let mut v = Utf8Validator::default();
                let r1 = v.feed(&data[..i]);
                assert_eq!(r1.is_ok(), valid_prefix_ok(i), "{data:x?} at {i}");
                if r1.is_err() {
                    continue;
                }
                let r2 = v.feed(&data[i..j]);
                assert_eq!(r2.is_ok(), valid_prefix_ok(j), "{data:x?} at {i},{j}");
                if r2.is_err() {
                    continue;
                }
                let r3 = v.feed(&data[j..]);
                assert_eq!(r3.is_ok() && v.is_complete(), whole, "{data:x?} at {i},{j}");
            }
        }
    }

    #[test]
    fn matches_std_at_every_split() {
        let cases: &[&[u8]] = &[
            b"",
            b"hello",
            "κόσμε".as_bytes(),
            "\u{10FFFF}a\u{800}\u{7ff}".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xf0\x9f\x98",
            b"a\xff",
            b"\xed\x9f\xbf\xee\x80\x80",
            b"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
        ];
        for c in cases {
            check(c);
        }
    }

    #[test]
    fn fails_fast_before_the_end() {
        let mut v = Utf8Validator::default();
        assert!(v.feed("κόσμε".as_bytes()).is_ok());
        // U+110000 is out of range: known wrong from its second byte.
        assert!(v.feed(b"\xf4").is_ok());
        assert!(v.feed(b"\x90").is_err());
    }
}
