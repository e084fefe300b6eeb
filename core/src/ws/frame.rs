//! Frame headers: parsing, serializing and masking (RFC 6455 §5.2, §5.3).

use bytes::{BufMut, BytesMut};

use super::WsError;

/// Frame opcodes (RFC 6455 §5.2, §11.8). Others are reserved and fail the
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Control frames have the high opcode bit set (RFC 6455 §5.5).
    pub(super) fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// Largest control frame payload (RFC 6455 §5.5).
pub(super) const MAX_CONTROL_PAYLOAD: usize = 125;

/// Longest frame header: 2 bytes, a 64-bit length, a masking key.
pub(super) const MAX_HEAD_LEN: usize = 14;

/// A parsed client frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameHead {
    pub(super) fin: bool,
    pub(super) rsv1: bool,
    pub(super) opcode: OpCode,
    pub(super) mask: [u8; 4],
    /// Payload length. Fits a `usize` once checked against the frame limit.
    pub(super) len: u64,
}

/// Parses a client frame header from the start of `buf`: `Ok(None)` until
/// it is complete, then the header and its length in bytes. Rules that only
/// need the first two bytes fail as soon as those arrive.
///
/// Checked here: RSV2/RSV3 clear (no extension defines them, §5.2), a known
/// opcode (§5.2), the mask bit set (a client MUST mask, §5.1), control frames
/// unfragmented and at most 125 bytes (§5.5), and the most significant bit
/// of a 64-bit length clear (§5.2). Non-minimal length encodings are
/// accepted. RSV1 and the fragmentation sequence depend on the connection
/// and are checked by the caller.
pub(super) fn parse_head(buf: &[u8]) -> Result<Option<(FrameHead, usize)>, WsError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x30 != 0 {
        return Err(WsError::Protocol("reserved bits rsv2/rsv3 set"));
    }
    let opcode = OpCode::from_bits(b0 & 0x0F).ok_or(WsError::Protocol("reserved opcode"))?;
    let fin = b0 & 0x80 != 0;
    if b1 & 0x80 == 0 {
        return Err(WsError::Protocol("unmasked client frame"));
    }
    let len7 = b1 & 0x7F;
    if opcode.is_control() {
        if !fin {
            return Err(WsError::Protocol("fragmented control frame"));
        }
        if usize::from(len7) > MAX_CONTROL_PAYLOAD {
            return Err(WsError::Protocol("control frame payload over 125 bytes"));
        }
    }
    let (len, at) = match len7 {
        126 => {
            let Some(b) = buf.get(2..4) else {
                return Ok(None);
            };
            (u64::from(u16::from_be_bytes([b[0], b[1]])), 4)
        }
        127 => {
            let Some(b) = buf.get(2..10) else {
                return Ok(None);
            };
            let mut n = [0; 8];
            n.copy_from_slice(b);
            let len = u64::from_be_bytes(n);
            if len >> 63 != 0 {
                return Err(WsError::Protocol("64-bit payload length with msb set"));
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    let Some(m) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    let head = FrameHead {
        fin,
        rsv1: b0 & 0x40 != 0,
        opcode,
        mask: [m[0], m[1], m[2], m[3]],
        len,
    };
    Ok(Some((head, at + 4)))
}

/// Writes a server frame header (never masked, RFC 6455 §5.1) with the
/// shortest length encoding.
pub(super) fn write_head(buf: &mut BytesMut, fin: bool, rsv1: bool, opcode: OpCode, len: usize) {
    let b0 = u8::from(fin) << 7 | u8::from(rsv1) << 6 | opcode.bits();
    buf.reserve(MAX_HEAD_LEN - 4 + len.min(256));
    buf.put_u8(b0);
    if len < 126 {
        // `len < 126` fits in a byte.
        buf.put_u8(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        buf.put_u8(126);
        buf.put_u16(short);
    } else {
        buf.put_u8(127);
        buf.put_u64(len as u64);
    }
}

/// XORs `data` with the masking key (RFC 6455 §5.3), `offset` being the
/// position of `data[0]` in the payload. Works a word at a time.
pub(super) fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut m = mask;
    m.rotate_left(offset % 4);
    let word = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut w = [0; 8];
        w.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(w) ^ word).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= m[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_matches_bytewise_at_every_offset() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let data: Vec<u8> = (0..=40).collect();
        for start in 0..data.len() {
            let mut fast = data[start..].to_vec();
            apply_mask(&mut fast, mask, start);
            let slow: Vec<u8> = data[start..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[(start + i) % 4])
                .collect();
            assert_eq!(fast, slow);
        }
    }

    #[test]
    fn head_lengths() {
        for (len, head) in [
            (0usize, vec![0x82, 0]),
            (125, vec![0x82, 125]),
            (126, vec![0x82, 126, 0, 126]),
            (65535, vec![0x82, 126, 0xff, 0xff]),
            (65536, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let mut buf = BytesMut::new();
            write_head(&mut buf, true, false, OpCode::Binary, len);
            assert_eq!(&buf[..], &head[..], "{len}");
        }
        let mut buf = BytesMut::new();
        write_head(&mut buf, false, true, OpCode::Text, 5);
        assert_eq!(&buf[..], &[0x41, 5]);
    }

    #[test]
    fn parse_rules() {
        let m = [0x80 | 5, 1, 2, 3, 4];
        let ok = |b: &[u8]| parse_head(b).map(|h| h.map(|(h, n)| (h.opcode, h.len, n)));
        assert_eq!(
            ok(&[0x81, m[0], 1, 2, 3, 4]),
            Ok(Some((OpCode::Text, 5, 6)))
        );
        assert_eq!(ok(&[0x81, m[0], 1, 2, 3]), Ok(None));
        assert_eq!(ok(&[0x81]), Ok(None));
        // Non-minimal 16- and 64-bit lengths are allowed.
        assert_eq!(
            ok(&[0x82, 0xfe, 0, 5, 1, 2, 3, 4]),
            Ok(Some((OpCode::Binary, 5, 8)))
        );
        assert_eq!(
            ok(&[0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4]),
            Ok(Some((OpCode::Binary, 5, 14)))
        );
        let err = |b: &[u8]| matches!(parse_head(b), Err(WsError::Protocol(_)));
        assert!(err(&[0x81, 0x05]), "unmasked");
        assert!(err(&[0xa1, 0x85]), "rsv2");
        assert!(err(&[0x91, 0x85]), "rsv3");
        for op in [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
            assert!(err(&[0x80 | op, 0x85]), "opcode {op}");
        }
        assert!(err(&[0x09, 0x80]), "fragmented ping");
        assert!(err(&[0x89, 0xfe]), "ping with 16-bit length");
        assert!(err(&[0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0]), "msb");
        assert!(!err(&[0x89, 0x80 | 125]), "ping of 125 bytes");
    }
}
