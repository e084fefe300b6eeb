//! Fuzzes `cormorant_core::proxy_protocol::parse` and `may_start`, the
//! PROXY protocol header parser a driver calls on a connection's first
//! bytes.
//!
//! Input layout: the first byte chooses the accept mode (its value mod 3:
//! v1, v2, either); when its bit 0x04 is set and the rest starts with the
//! v2 signature, the v2 length field is rewritten to cover the whole rest,
//! so the address block and TLV checks are reached more often. The rest is
//! the buffer, as a driver would pass it.
//!
//! Invariants checked: no panic; `may_start` is false exactly when `parse`
//! says `NotProxy` or `VersionNotAccepted`; a complete header is of an
//! accepted version, no longer than the buffer or the version's limit, and
//! parses the same from exactly its own bytes; every prefix of a complete
//! header is `Incomplete` with `buf.len() < at_least <= len`; `Incomplete`
//! asks for more than it has; an error is final: each prefix of an input
//! that fails is `Incomplete` or the same error (`NotProxy` may become
//! `VersionNotAccepted` once a whole signature is in).
#![no_main]

use cormorant_core::proxy_protocol::{
    Accept, Parse, ProxyError, V1_MAX_LEN, V2_MAX_LEN, V2_SIGNATURE, Version, may_start, parse,
};
use libfuzzer_sys::fuzz_target;

/// The prefixes of a buffer of `len` bytes to try: all of them for short
/// buffers, else about 256 spread evenly plus the last few.
fn prefixes(len: usize) -> impl Iterator<Item = usize> {
    let step = (len / 256).max(1);
    (0..len).step_by(step).chain(len.saturating_sub(4)..len)
}

fn foreign(r: &Result<Parse, ProxyError>) -> bool {
    matches!(
        r,
        Err(ProxyError::NotProxy | ProxyError::VersionNotAccepted(_))
    )
}

fn check(buf: &[u8], accept: Accept) {
    let whole = parse(buf, accept);
    assert_eq!(may_start(buf, accept), !foreign(&whole), "may_start");
    match whole {
        Ok(Parse::Complete { header, len }) => {
            assert!(len <= buf.len(), "len {len} past the buffer");
            let (ok, max) = match header.version {
                Version::V1 => (accept != Accept::V2, V1_MAX_LEN),
                Version::V2 => (accept != Accept::V1, V2_MAX_LEN),
            };
            assert!(ok, "{:?} header under {accept:?}", header.version);
            assert!(len <= max, "len {len} over the limit");
            assert_eq!(parse(&buf[..len], accept), whole, "exact bytes");
            for i in prefixes(len) {
                match parse(&buf[..i], accept) {
                    Ok(Parse::Incomplete { at_least }) => {
                        assert!(i < at_least && at_least <= len, "prefix {i}: {at_least}");
                    }
                    other => panic!("prefix {i} of a header gives {other:?}"),
                }
            }
        }
        Ok(Parse::Incomplete { at_least }) => {
            assert!(at_least > buf.len(), "at_least {at_least} already there");
            assert!(
                at_least <= V1_MAX_LEN.max(V2_MAX_LEN),
                "at_least {at_least}"
            );
        }
        Err(e) => {
            for i in prefixes(buf.len()) {
                match parse(&buf[..i], accept) {
                    Ok(Parse::Incomplete { .. }) => {}
                    Err(ProxyError::NotProxy) if matches!(e, ProxyError::VersionNotAccepted(_)) => {
                    }
                    Err(p) => assert_eq!(p, e, "prefix {i}"),
                    Ok(c) => panic!("prefix {i} of a failing input gives {c:?}"),
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let accept = match mode % 3 {
        0 => Accept::V1,
        1 => Accept::V2,
        _ => Accept::Any,
    };
    let mut buf = rest.to_vec();
    if mode & 0x04 != 0 && buf.len() >= 16 && buf.starts_with(&V2_SIGNATURE) {
        let block = u16::try_from(buf.len() - 16).unwrap_or(u16::MAX);
        buf[14..16].copy_from_slice(&block.to_be_bytes());
    }
    check(&buf, accept);
});
