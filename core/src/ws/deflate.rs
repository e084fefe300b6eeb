//! permessage-deflate compression and decompression (RFC 7692 §7.2).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::DeflateParams;

/// The empty stored block a sync flush ends with; removed from the end of
/// every compressed message and appended back before inflating (RFC 7692
/// §7.2.1, §7.2.2).
pub(super) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Compression level for outgoing messages. 1 is zlib's fastest: most of the
/// size gain of higher levels at a fraction of the CPU, which matters more
/// for a server answering many small messages.
const LEVEL: u32 = 1;

/// Output grown per inflate step, at most: bounds the zeroed buffer space
/// handed to the decompressor so the size limit is checked often.
const INFLATE_STEP: usize = 64 * 1024;

/// Compresses the server's messages.
pub(super) struct Deflater {
    compress: Compress,
    no_context_takeover: bool,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

impl Deflater {
    pub(super) fn new(params: &DeflateParams) -> Self {
        // zlib cannot produce raw deflate with an 8-bit window. A 9-bit one
        // is safe for a peer that asked for 8: zlib never emits a distance
        // beyond the window size minus 262 (MIN_LOOKAHEAD), i.e. 250 < 256.
        let bits = params.server_max_window_bits.clamp(9, 15);
        Self {
            compress: Compress::new_with_window_bits(Compression::new(LEVEL), false, bits),
            no_context_takeover: params.server_no_context_takeover,
        }
    }

    /// Compresses one whole message into `out` (cleared first), without the
    /// trailing [`TAIL`]. `false` if the compressor failed (then the message
    /// should go uncompressed; the context was reset).
    pub(super) fn compress(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        if data.is_empty() {
            // An empty stored block, less its LEN/NLEN (RFC 7692 §7.2.3.6);
            // zlib emits nothing for an empty sync flush after data.
            out.push(0x00);
            return true;
        }
        loop {
            out.reserve(data.len() / 2 + 64);
            let before = self.compress.total_in();
            if self
                .compress
                .compress_vec(data, out, FlushCompress::Sync)
                .is_err()
            {
                self.compress.reset();
                return false;
            }
            // Bounded by `data.len()`: the compressor never consumes more.
            let consumed = (self.compress.total_in() - before) as usize;
            data = &data[consumed.min(data.len())..];
            // A sync flush is complete when the output was not filled.
            if data.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if self.no_context_takeover {
            self.compress.reset();
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
            true
        } else {
            self.compress.reset();
            false
        }
    }
}

/// Why inflating failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InflateError {
    /// Not a valid deflate stream.
    Corrupt,
    /// The output passed the limit.
    TooBig,
}

/// Decompresses the client's messages.
pub(super) struct Inflater {
    decompress: Decompress,
    no_context_takeover: bool,
    /// The peer ended the deflate stream (a block with BFINAL set) inside
    /// the current message: the rest of the message is ignored and the
    /// context is reset at its end.
    ended: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

impl Inflater {
    pub(super) fn new(params: &DeflateParams) -> Self {
        // A 15-bit window decodes streams made with any smaller window, so
        // `client_max_window_bits` need not be applied here.
        Self {
            decompress: Decompress::new(false),
            no_context_takeover: params.client_no_context_takeover,
            ended: false,
        }
    }

    /// Inflates `input` (part of a message's compressed payload) onto the
    /// end of `out`, failing as soon as `out` would exceed `limit` bytes.
    pub(super) fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        while !self.ended {
            let start = out.len();
            // One byte past the limit is room enough to detect a breach.
            let room = limit.saturating_add(1).saturating_sub(start);
            let step = input
                .len()
                .saturating_mul(4)
                .clamp(1024, INFLATE_STEP)
                .min(room);
            out.resize(start + step, 0);
            let (in_before, out_before) = (self.decompress.total_in(), self.decompress.total_out());
            let status =
                self.decompress
                    .decompress(input, &mut out[start..], FlushDecompress::Sync);
            // Both bounded by the slices given to the decompressor.
            let consumed = ((self.decompress.total_in() - in_before) as usize).min(input.len());
            let produced = ((self.decompress.total_out() - out_before) as usize).min(step);
            out.truncate(start + produced);
            input = &input[consumed..];
            if out.len() > limit {
                return Err(InflateError::TooBig);
            }
            match status {
                Err(_) => return Err(InflateError::Corrupt),
                Ok(Status::StreamEnd) => self.ended = true,
                Ok(_) if produced < step && input.is_empty() => break,
                Ok(_) if consumed == 0 && produced == 0 => {
                    // No progress with input and output room left: the
                    // decompressor is stuck on bad data.
                    return Err(InflateError::Corrupt);
                }
                Ok(_) => {}
            }
        }
        Ok(())
    }

    /// Ends a message: inflates the [`TAIL`] and resets the context when
    /// asked to, or when the peer ended the stream.
    pub(super) fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
        let r = self.inflate(&TAIL, out, limit);
        if self.no_context_takeover || self.ended || r.is_err() {
            self.decompress.reset(false);
            self.ended = false;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(server_nct: bool, client_nct: bool, bits: u8) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: server_nct,
            client_no_context_takeover: client_nct,
            server_max_window_bits: bits,
            client_max_window_bits: 15,
        }
    }

    fn inflate_msg(inf: &mut Inflater, data: &[u8]) -> Result<Vec<u8>, InflateError> {
        let mut out = Vec::new();
        inf.inflate(data, &mut out, 1 << 20)?;
        inf.finish(&mut out, 1 << 20)?;
        Ok(out)
    }

    /// RFC 7692 §7.2.3.1 and §7.2.3.2: "Hello" compressed, with and
    /// without context takeover.
    #[test]
    fn rfc7692_examples() {
        let p = params(false, false, 15);
        let mut inf = Inflater::new(&p);
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate_msg(&mut inf, &hello).unwrap(), b"Hello");
        // Second message referencing the first (§7.2.3.2).
        assert_eq!(
            inflate_msg(&mut inf, &[0xf2, 0x00, 0x11, 0x00, 0x00]).unwrap(),
            b"Hello"
        );
        // §7.2.3.3: a message made of a stored block.
        let mut inf = Inflater::new(&p);
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(inflate_msg(&mut inf, &stored).unwrap(), b"Hello");
        // §7.2.3.4: two deflate blocks in one message.
        let mut inf = Inflater::new(&p);
        let two = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        assert_eq!(inflate_msg(&mut inf, &two).unwrap(), b"Hello");
        // §7.2.3.6: an empty message is the single byte 0x00.
        let mut inf = Inflater::new(&p);
        assert_eq!(inflate_msg(&mut inf, &[0x00]).unwrap(), b"");
        // A final block (BFINAL set) also works, and the context restarts.
        let mut inf = Inflater::new(&p);
        assert_eq!(
            inflate_msg(&mut inf, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]).unwrap(),
            b"Hello"
        );
        assert_eq!(inflate_msg(&mut inf, &hello).unwrap(), b"Hello");
    }

    #[test]
    fn round_trips_with_every_parameter() {
        let text = b"The quick brown fox jumps over the lazy dog. ".repeat(50);
        for bits in 8..=15 {
            for nct in [false, true] {
                let p = params(nct, nct, bits);
                let mut def = Deflater::new(&p);
                let mut inf = Inflater::new(&p);
                let mut first_len = 0;
                for i in 0..3 {
                    let mut c = Vec::new();
                    assert!(def.compress(&text, &mut c));
                    assert!(c.len() < text.len() / 4, "bits {bits}");
                    assert_eq!(inflate_msg(&mut inf, &c).unwrap(), text);
                    if i == 0 {
                        first_len = c.len();
                    } else if nct {
                        assert_eq!(c.len(), first_len, "no context kept");
                    } else {
                        assert!(c.len() < first_len, "context kept");
                    }
                }
            }
        }
    }

    #[test]
    fn hello_compresses_like_the_rfc() {
        let mut def = Deflater::new(&params(false, false, 15));
        let mut c = Vec::new();
        assert!(def.compress(b"Hello", &mut c));
        assert_eq!(c, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        assert!(def.compress(b"", &mut c));
        assert_eq!(c, [0x00]);
        let mut inf = Inflater::new(&params(false, false, 15));
        assert_eq!(inflate_msg(&mut inf, &c).unwrap(), b"");
    }

    #[test]
    fn bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let mut def = Deflater::new(&params(false, false, 15));
        let mut c = Vec::new();
        assert!(def.compress(&zeros, &mut c));
        let mut inf = Inflater::new(&params(false, false, 15));
        let mut out = Vec::new();
        assert_eq!(
            inf.inflate(&c, &mut out, 1 << 20),
            Err(InflateError::TooBig)
        );
        assert!(out.len() <= (1 << 20) + 1);
        let mut inf = Inflater::new(&params(false, false, 15));
        let mut out = Vec::new();
        assert_eq!(inf.inflate(&c, &mut out, 10 << 20), Ok(()));
        assert_eq!(inf.finish(&mut out, 10 << 20), Ok(()));
        assert_eq!(out.len(), 10 << 20);
    }

    #[test]
    fn corrupt_input() {
        let mut inf = Inflater::new(&params(false, false, 15));
        let mut out = Vec::new();
        assert_eq!(
            inf.inflate(&[0xff, 0xff, 0xff, 0xff], &mut out, 1000),
            Err(InflateError::Corrupt)
        );
    }
}
