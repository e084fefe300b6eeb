//! PROXY protocol headers: the client address a trusted load balancer puts
//! in front of the connection's first bytes, in version 1 (text) or 2
//! (binary).
//!
//! The spec is "The PROXY protocol, versions 1 & 2" by HAProxy
//! (`doc/proxy-protocol.txt`); section numbers below are its own. [`parse`]
//! is a pure function of the bytes received so far: it keeps no state, so
//! the driver calls it again with the whole, longer buffer whenever more
//! bytes arrive, until it returns [`Parse::Complete`] or an error. A header
//! is at most [`V2_MAX_LEN`] bytes, so starting over each time is cheap.
//!
//! The driver's duties:
//! * It MUST only expect a header on connections from peers trusted to send
//!   one (the same kind of allow-list as [`crate::asgi::TrustedProxies`]):
//!   a header from anyone else is a client choosing its own address.
//! * It MUST pass the connection's bytes from the very first one, and on
//!   [`Parse::Complete`] it MUST consume exactly `len` bytes. What follows
//!   is the client's stream (HTTP or TLS), already received or not.
//! * On an error it MUST close the connection without reading the bytes as
//!   HTTP: section 2.1 says a line that does not match "must be discarded
//!   and cause the receiver to abort the connection", and section 2.2 says
//!   receivers "must drop" bad version 2 headers. EOF before
//!   [`Parse::Complete`] is an error too: section 2.2 rejects "partial
//!   protocol headers".
//! * It SHOULD bound the wait for a complete header with its request-head
//!   timeout, so a peer that stops halfway does not hold the connection.
//! * When `addresses` is `None` it SHOULD use the connection's own
//!   addresses, as sections 2.1 (`UNKNOWN`) and 2.2 (`LOCAL`, `UNSPEC`)
//!   ask.
//! * A driver that peeks (`MSG_PEEK`) MAY wait for [`Parse::Incomplete`]'s
//!   `at_least` bytes before calling again.
//!
//! Section 2 says a receiver "MUST not try to guess whether the protocol
//! header is present or not". A driver that does anyway, to move a
//! listener to the PROXY protocol without downtime, asks [`may_start`]
//! after the first bytes: no TLS record and no request with a registered
//! HTTP method starts like a header, so once `may_start` says false the
//! connection is a plain one. Such a driver MUST still apply the trust
//! rule above.
//!
//! Every outcome is final: once [`parse`] returns an error for a buffer, it
//! returns an error for every longer buffer that starts with it (the same
//! one, except that [`ProxyError::NotProxy`] for a few bytes of the other
//! version's signature becomes [`ProxyError::VersionNotAccepted`] once the
//! signature is whole). A complete header is reported as soon as its last
//! byte is in the buffer, and bytes after it never change the result.
//!
//! Not supported: the contents of version 2 TLVs (section 2.2.1 onwards:
//! ALPN, authority, CRC32c, SSL, ...) are walked to check that they fit,
//! then ignored; in particular a CRC32c checksum is not verified. The
//! transport (TCP or UDP) is not reported, and `AF_UNIX` addresses are not
//! decoded.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::time::Instant;

/// The start of every version 1 header (section 2.1): `PROXY` and the
/// single space before the protocol name.
pub const V1_SIGNATURE: [u8; 6] = *b"PROXY ";

/// The longest version 1 header, CRLF included: section 2.1's worst case,
/// `PROXY UNKNOWN` followed by two full-length IPv6 addresses and two
/// five-digit ports. A line without CRLF in this many bytes is
/// [`ProxyError::TooLong`].
pub const V1_MAX_LEN: usize = 107;

/// The shortest version 1 header, section 2.1's `PROXY UNKNOWN\r\n`.
const V1_MIN_LEN: usize = 15;

/// The 12 bytes every version 2 header starts with (section 2.2), chosen
/// so that parsers of common protocols reject them (section 7).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The fixed part of a version 2 header: the signature, the version and
/// command byte, the family and transport byte and the 2-byte length of
/// what follows.
const V2_FIXED_LEN: usize = 16;

/// The longest version 2 header accepted, all of it included; a longer
/// declared length is [`ProxyError::TooLong`] before its bytes arrive.
///
/// The format allows 16 + 65535 bytes, but real senders stay far below:
/// the address block is at most 216 bytes (`AF_UNIX`), and the TLVs
/// HAProxy and the cloud load balancers add (ALPN, the authority, which is
/// a host name, a unique ID of at most 128 bytes, CRC32c, the SSL block
/// with version, cipher, algorithms and client certificate CN, a network
/// namespace, a VPC endpoint or private link ID) come to well under 2 KiB
/// together. 4096 leaves room for that twice over and keeps the buffer a
/// driver peeks into to one page.
pub const V2_MAX_LEN: usize = 4096;

/// Which header versions a listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Only the text format (section 2.1).
    V1,
    /// Only the binary format (section 2.2).
    V2,
    /// Either; the first byte tells them apart.
    Any,
}

impl Accept {
    fn v1(self) -> bool {
        matches!(self, Self::V1 | Self::Any)
    }

    fn v2(self) -> bool {
        matches!(self, Self::V2 | Self::Any)
    }
}

/// A PROXY protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The text format (section 2.1).
    V1,
    /// The binary format (section 2.2).
    V2,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        })
    }
}

/// What a complete header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The original client (source) and the address it connected to
    /// (destination), `None` for v2 `LOCAL`, v1 `UNKNOWN`, and v2 families
    /// without IP addresses (`AF_UNIX`, `AF_UNSPEC`).
    pub addresses: Option<(SocketAddr, SocketAddr)>,
    /// The version the header was written in.
    pub version: Version,
}

/// The outcome of [`parse`] on the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// The bytes are a valid start of a header; more are needed.
    Incomplete {
        /// The smallest total length, counted from the start of the buffer,
        /// that can complete the header: always more than the bytes given.
        /// A hint for a driver that peeks; the header may need more.
        at_least: usize,
    },
    /// A complete header of `len` bytes.
    Complete {
        /// What the header says.
        header: ProxyHeader,
        /// The header's length: the driver consumes exactly these bytes,
        /// and anything after them is the client's stream.
        len: usize,
    },
}

/// Why the bytes are not an acceptable PROXY protocol header. Every error
/// means the connection must be closed (see the module docs); the messages
/// are for a debug log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The bytes cannot start a header of an accepted version: the peer
    /// speaks something else (HTTP, TLS) or nothing we know.
    #[error("not a proxy protocol header")]
    NotProxy,
    /// A whole signature of a version the listener does not accept: the
    /// proxy and the listener are set up for different versions.
    #[error("a proxy protocol {0} header, but this listener does not accept {0}")]
    VersionNotAccepted(Version),
    /// The bytes start a header but break the format; the text says how.
    #[error("malformed proxy protocol header: {0}")]
    Malformed(&'static str),
    /// A v1 line without CRLF in its first [`V1_MAX_LEN`] bytes, or a v2
    /// header declaring more than [`V2_MAX_LEN`] bytes.
    #[error("proxy protocol header too long")]
    TooLong,
    /// A header from a peer that is not trusted to send one.
    #[error("a proxy protocol header from a peer not trusted to send one")]
    Untrusted,
    /// The header did not arrive within the allowed time.
    #[error("no complete proxy protocol header in time")]
    TimedOut,
}

/// Parses the PROXY protocol header at the start of `buf`, which holds the
/// connection's bytes from the first one on.
///
/// Returns [`Parse::Incomplete`] for every valid beginning of a header (an
/// empty buffer included) and [`Parse::Complete`] as soon as the header's
/// last byte is in `buf`; bytes after the header never change the result.
/// Never panics.
pub fn parse(buf: &[u8], accept: Accept) -> Result<Parse, ProxyError> {
    if buf.is_empty() {
        let at_least = if accept.v1() {
            V1_MIN_LEN
        } else {
            V2_FIXED_LEN
        };
        return Ok(Parse::Incomplete { at_least });
    }
    // The signatures differ in their first byte ('\r' against 'P'), so at
    // most one of these branches applies (section 2.2, "identifying the
    // protocol version is easy").
    if starts_like(buf, &V2_SIGNATURE) {
        if accept.v2() {
            return parse_v2(buf);
        }
        if buf.len() >= V2_SIGNATURE.len() {
            return Err(ProxyError::VersionNotAccepted(Version::V2));
        }
    } else if starts_like(buf, &V1_SIGNATURE) {
        if accept.v1() {
            return parse_v1(buf);
        }
        if buf.len() >= V1_SIGNATURE.len() {
            return Err(ProxyError::VersionNotAccepted(Version::V1));
        }
    }
    Err(ProxyError::NotProxy)
}

/// True when `buf` (possibly a prefix) could still be the start of a header
/// of an accepted version; false when it certainly is not — lets a driver
/// in "optional" mode tell a plain HTTP/TLS client from a PROXY one after
/// 1..n bytes.
///
/// Only the signature is looked at ([`V1_SIGNATURE`], [`V2_SIGNATURE`]):
/// true for an empty buffer, false as soon as a byte differs from the
/// signatures of the accepted versions. A buffer that passes may still be
/// a malformed header, which [`parse`] reports; when this returns false,
/// [`parse`] returns [`ProxyError::NotProxy`] or
/// [`ProxyError::VersionNotAccepted`].
///
/// A TLS client is told apart at its first byte (a handshake record starts
/// with 0x16), and so is an HTTP client in most cases: a request starts
/// with its method, never with `\r`, and the only registered methods that
/// start with `P` and get past `PRO` (`PROPFIND`, `PROPPATCH`) part at the
/// fourth byte. A request whose method is `PROXY` itself is taken for a
/// header, and [`parse`] rejects it as malformed.
pub fn may_start(buf: &[u8], accept: Accept) -> bool {
    (accept.v1() && starts_like(buf, &V1_SIGNATURE))
        || (accept.v2() && starts_like(buf, &V2_SIGNATURE))
}

/// Whether `buf` and `signature` agree on their common length.
fn starts_like(buf: &[u8], signature: &[u8]) -> bool {
    let n = buf.len().min(signature.len());
    buf[..n] == signature[..n]
}

/// Version 1, section 2.1. `buf` is non-empty and agrees with
/// [`V1_SIGNATURE`].
///
/// The checks run left to right over the bytes present, so an error found
/// in a prefix is the error for every longer buffer too.
fn parse_v1(buf: &[u8]) -> Result<Parse, ProxyError> {
    if buf.len() < V1_SIGNATURE.len() {
        return Ok(Parse::Incomplete {
            at_least: V1_MIN_LEN,
        });
    }
    // "If the CRLF sequence is not found in the first 107 characters, the
    // receiver should declare the line invalid": the CR is at index 105
    // at the latest, so only the bytes before index 106 are searched.
    let window = &buf[..buf.len().min(V1_MAX_LEN - 1)];
    let end = memchr::memchr2(b'\r', b'\n', &window[V1_SIGNATURE.len()..])
        .map(|i| i + V1_SIGNATURE.len());
    let line = &window[V1_SIGNATURE.len()..end.unwrap_or(window.len())];
    check_v1_prefix(line)?;
    let Some(cr) = end else {
        if window.len() < V1_MAX_LEN - 1 {
            // No CR yet: the CR and the LF are still to come.
            return Ok(Parse::Incomplete {
                at_least: (buf.len() + 2).max(V1_MIN_LEN),
            });
        }
        return Err(ProxyError::TooLong);
    };
    // "The receiver must not tolerate a single CR or LF character to end
    // the line when a complete CRLF sequence is expected." (`cr` was found
    // inside `window`, a part of `buf`.)
    if buf[cr] == b'\n' {
        return Err(ProxyError::Malformed("v1 line ends in a bare LF"));
    }
    match buf.get(cr + 1) {
        None => Ok(Parse::Incomplete {
            at_least: (cr + 2).max(V1_MIN_LEN),
        }),
        Some(b'\n') => Ok(Parse::Complete {
            header: parse_v1_line(line)?,
            len: cr + 2,
        }),
        Some(_) => Err(ProxyError::Malformed("v1 line has a CR without LF")),
    }
}

/// The protocol names of section 2.1.
const V1_PROTOCOLS: [&[u8]; 3] = [b"TCP4", b"TCP6", b"UNKNOWN"];

/// The checks that need no CRLF, on the line after `PROXY ` as far as it
/// has arrived (no CR or LF in it): they reject a bad line early, and
/// every valid line's prefix passes them.
fn check_v1_prefix(line: &[u8]) -> Result<(), ProxyError> {
    let (protocol, rest) = match memchr::memchr(b' ', line) {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    let known = match rest {
        // The name is whole: it must be one of them.
        Some(_) => V1_PROTOCOLS.contains(&protocol),
        None => V1_PROTOCOLS.iter().any(|p| p.starts_with(protocol)),
    };
    if !known {
        return Err(ProxyError::Malformed(
            "v1 protocol is not TCP4, TCP6 or UNKNOWN",
        ));
    }
    // "For "UNKNOWN", ... the receiver must ignore anything presented
    // before the CRLF is found."
    let Some(rest) = rest.filter(|_| protocol != b"UNKNOWN") else {
        return Ok(());
    };
    // TCP4 or TCP6: four fields, each after exactly one space, made of the
    // characters of addresses and ports.
    let mut fields = 1;
    let mut field_len = 0;
    for &b in rest {
        match b {
            b' ' if field_len == 0 => {
                return Err(ProxyError::Malformed("v1 field is empty"));
            }
            b' ' if fields == 4 => {
                return Err(ProxyError::Malformed("v1 line has more than six fields"));
            }
            b' ' => {
                fields += 1;
                field_len = 0;
            }
            b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' | b'.' | b':' => field_len += 1,
            _ => {
                return Err(ProxyError::Malformed(
                    "v1 address or port has a character outside [0-9a-fA-F.:]",
                ));
            }
        }
    }
    Ok(())
}

/// The complete line after `PROXY `, without CRLF, once
/// [`check_v1_prefix`] has passed it.
fn parse_v1_line(line: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let mut fields = line.split(|&b| b == b' ');
    let protocol = fields.next().unwrap_or_default();
    let v4 = match protocol {
        b"TCP4" => true,
        b"TCP6" => false,
        b"UNKNOWN" => {
            return Ok(ProxyHeader {
                addresses: None,
                version: Version::V1,
            });
        }
        // check_v1_prefix lets through a prefix of a name (`TCP`) when
        // the line ends there.
        _ => {
            return Err(ProxyError::Malformed(
                "v1 protocol is not TCP4, TCP6 or UNKNOWN",
            ));
        }
    };
    let (Some(src), Some(dst), Some(sport), Some(dport)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(ProxyError::Malformed("v1 line has fewer than six fields"));
    };
    // check_v1_prefix has seen every space but the last field's length.
    if dport.is_empty() {
        return Err(ProxyError::Malformed("v1 field is empty"));
    }
    let ip = |field: &[u8]| -> Result<IpAddr, ProxyError> {
        // "The advertised protocol family dictates what format to use":
        // no IPv4 address in a TCP6 line, no IPv6 one in a TCP4 line.
        // std's parsers accept exactly the canonical forms of section 2.1,
        // rejecting the leading zeros it forbids in IPv4 (tested below).
        let text = std::str::from_utf8(field).unwrap_or_default();
        if v4 {
            let ip: Ipv4Addr = text
                .parse()
                .map_err(|_| ProxyError::Malformed("v1 TCP4 address is not an IPv4 address"))?;
            Ok(ip.into())
        } else {
            let ip: Ipv6Addr = text
                .parse()
                .map_err(|_| ProxyError::Malformed("v1 TCP6 address is not an IPv6 address"))?;
            Ok(ip.into())
        }
    };
    let src = SocketAddr::new(ip(src)?, parse_port(sport)?);
    let dst = SocketAddr::new(ip(dst)?, parse_port(dport)?);
    Ok(ProxyHeader {
        addresses: Some((src, dst)),
        version: Version::V1,
    })
}

/// A v1 port: "a decimal integer in the range [0..65535] inclusive", and
/// "Heading zeroes are not permitted in front of numbers in order to avoid
/// any possible confusion with octal numbers" (section 2.1). HAProxy's own
/// reader lets `0080` through, but no sender writes it, so the spec's
/// stricter rule costs nothing; `0` itself is fine. No sign either.
fn parse_port(field: &[u8]) -> Result<u16, ProxyError> {
    let err = ProxyError::Malformed("v1 port is not a decimal number from 0 to 65535");
    let digits = field.iter().all(u8::is_ascii_digit);
    let leading_zero = field.len() > 1 && field[0] == b'0';
    if field.is_empty() || field.len() > 5 || !digits || leading_zero {
        return Err(err);
    }
    let n = field
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).map_err(|_| err)
}

/// Version 2, section 2.2. `buf` is non-empty and agrees with
/// [`V2_SIGNATURE`].
///
/// The checks run in the order of the bytes they look at, so an error
/// found in a prefix is the error for every longer buffer too.
fn parse_v2(buf: &[u8]) -> Result<Parse, ProxyError> {
    let mut local = false;
    if let Some(&ver_cmd) = buf.get(12) {
        // "The highest four bits contains the version. ... the receiver
        // must only accept this value" (\x2).
        if ver_cmd >> 4 != 2 {
            return Err(ProxyError::Malformed("v2 version is not 2"));
        }
        // Commands \x0 LOCAL and \x1 PROXY; "Receivers must drop
        // connections presenting unexpected values here."
        local = match ver_cmd & 0x0f {
            0x0 => true,
            0x1 => false,
            _ => return Err(ProxyError::Malformed("v2 command is not LOCAL or PROXY")),
        };
    }
    let mut family = 0;
    if let Some(&byte) = buf.get(13) {
        // Other family or transport values "must be rejected as invalid by
        // receivers", whatever the command.
        if address_len(byte).is_none() {
            return Err(ProxyError::Malformed(
                "v2 address family or transport is not defined",
            ));
        }
        family = byte;
    }
    let Some(&[hi, lo]) = buf.get(14..16) else {
        return Ok(Parse::Incomplete {
            at_least: V2_FIXED_LEN,
        });
    };
    // "the length of the protocol header in bytes is always exactly 16 +
    // this value."
    let block_len = usize::from(u16::from_be_bytes([hi, lo]));
    let len = V2_FIXED_LEN + block_len;
    if len > V2_MAX_LEN {
        return Err(ProxyError::TooLong);
    }
    // With LOCAL the receiver "must use the real connection endpoints and
    // discard the protocol block including the family which is ignored":
    // nothing in the block is checked.
    let needed = address_len(family).unwrap_or_default();
    if !local && block_len < needed {
        return Err(ProxyError::Malformed(
            "v2 address block is shorter than its family needs",
        ));
    }
    // "The receiver must not start to parse an address before the whole
    // address block is received."
    let Some(block) = buf.get(V2_FIXED_LEN..len) else {
        return Ok(Parse::Incomplete { at_least: len });
    };
    if local {
        return Ok(Parse::Complete {
            header: ProxyHeader {
                addresses: None,
                version: Version::V2,
            },
            len,
        });
    }
    let (addresses, tlvs) = block.split_at(needed);
    check_tlvs(tlvs)?;
    Ok(Parse::Complete {
        header: ProxyHeader {
            addresses: v2_addresses(family, addresses),
            version: Version::V2,
        },
        len,
    })
}

/// The length of the address block of a family and transport byte, None
/// for a value section 2.2 does not define. The defined values are the
/// seven it lists "in practice": UNSPEC, then TCP and UDP over IPv4
/// (2*4 + 2*2 bytes) and IPv6 (2*16 + 2*2), then UNIX stream and datagram
/// (2*108).
fn address_len(family: u8) -> Option<usize> {
    match family {
        0x00 => Some(0),
        0x11 | 0x12 => Some(12),
        0x21 | 0x22 => Some(36),
        0x31 | 0x32 => Some(216),
        _ => None,
    }
}

/// Two `N`-byte fields, source then destination, and what follows.
fn source_and_destination<const N: usize>(b: &[u8]) -> Option<([u8; N], [u8; N], &[u8])> {
    let (src, rest) = b.split_first_chunk::<N>()?;
    let (dst, rest) = rest.split_first_chunk::<N>()?;
    Some((*src, *dst, rest))
}

/// The source and destination in an address block of exactly the
/// family's length: addresses first, then ports, all in network byte
/// order (section 2.2). None for UNSPEC ("The receiver should ignore
/// address information") and UNIX.
fn v2_addresses(family: u8, block: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let (src, dst, ports): (IpAddr, IpAddr, _) = match family >> 4 {
        0x1 => {
            let (src, dst, ports) = source_and_destination::<4>(block)?;
            (
                Ipv4Addr::from(src).into(),
                Ipv4Addr::from(dst).into(),
                ports,
            )
        }
        0x2 => {
            let (src, dst, ports) = source_and_destination::<16>(block)?;
            (
                Ipv6Addr::from(src).into(),
                Ipv6Addr::from(dst).into(),
                ports,
            )
        }
        _ => return None,
    };
    let (sport, dport, _) = source_and_destination::<2>(ports)?;
    Some((
        SocketAddr::new(src, u16::from_be_bytes(sport)),
        SocketAddr::new(dst, u16::from_be_bytes(dport)),
    ))
}

/// Walks the TLVs after the address block: "The first byte is the Type of
/// the vector. The second two bytes represent the length in bytes of the
/// value (not included the Type and Length bytes), and following the
/// length field is the number of bytes specified by the length" (section
/// 2.2). Each must fit in the block; their contents are ignored, which
/// section 2.2 allows ("a receiver may choose to skip over and ignore
/// those bytes").
fn check_tlvs(mut tlvs: &[u8]) -> Result<(), ProxyError> {
    let cut_off = ProxyError::Malformed("v2 TLV is cut off by the header's end");
    while !tlvs.is_empty() {
        let (&[_, hi, lo], rest) = tlvs.split_first_chunk::<3>().ok_or(cut_off)?;
        tlvs = rest
            .get(usize::from(u16::from_be_bytes([hi, lo]))..)
            .ok_or(cut_off)?;
    }
    Ok(())
}

/// What a connection's first bytes must be, by who sent them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A trusted peer on a listener that requires the header.
    Required(Accept),
    /// A trusted peer on a listener where the header is optional (moving a
    /// fleet to the PROXY protocol without downtime): a header if the
    /// bytes start like one, else a plain connection.
    Optional(Accept),
    /// A peer not trusted to send a header: a plain connection, and a
    /// header is refused ([`ProxyError::Untrusted`]) rather than read as
    /// HTTP.
    Forbidden,
}

/// What [`HeaderWait::handle_bytes`] makes of the bytes so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A header of `len` bytes: consume exactly those.
    Header {
        /// What it says.
        header: ProxyHeader,
        /// Its length.
        len: usize,
    },
    /// No header: the connection is the client's own, from its first byte
    /// (nothing is to be consumed).
    Plain,
    /// Wait for at least this many bytes in all, until
    /// [`HeaderWait::poll_timeout`].
    Need {
        /// The smallest total length that can settle it.
        at_least: usize,
    },
    /// Close the connection; the error is for a debug line.
    Reject(ProxyError),
}

/// The wait for a connection's PROXY protocol header: what is expected of
/// this peer, and until when.
///
/// Call order: [`HeaderWait::new`] when the connection is accepted; then
/// [`HeaderWait::handle_bytes`] with every byte received so far (peeked,
/// not consumed) each time more arrive, until it says something other
/// than [`Verdict::Need`]; when [`HeaderWait::poll_timeout`] passes first,
/// [`HeaderWait::handle_timeout`] gives the verdict (an early call waits
/// on). EOF before a verdict is a rejection the driver makes itself.
#[derive(Debug, Clone, Copy)]
pub struct HeaderWait {
    expect: Expect,
    deadline: Instant,
}

impl HeaderWait {
    /// Starts the wait at `now`; the header (or the first bytes that tell
    /// there is none) must arrive within `timeout`.
    pub fn new(expect: Expect, now: Instant, timeout: Duration) -> Self {
        Self {
            expect,
            deadline: now + timeout,
        }
    }

    /// The verdict on `buf`, the connection's bytes from the first one.
    pub fn handle_bytes(&self, buf: &[u8]) -> Verdict {
        match self.expect {
            Expect::Required(accept) => match parse(buf, accept) {
                Ok(parse) => Self::settled(parse),
                Err(e) => Verdict::Reject(e),
            },
            Expect::Optional(accept) => match parse(buf, accept) {
                Ok(parse) => Self::settled(parse),
                Err(ProxyError::NotProxy) => Verdict::Plain,
                Err(e) => Verdict::Reject(e),
            },
            Expect::Forbidden => {
                if buf.starts_with(&V1_SIGNATURE) || buf.starts_with(&V2_SIGNATURE) {
                    Verdict::Reject(ProxyError::Untrusted)
                } else if may_start(buf, Accept::Any) {
                    match parse(buf, Accept::Any) {
                        Ok(Parse::Incomplete { .. }) | Err(_) => Verdict::Need {
                            at_least: (buf.len() + 1).min(V2_SIGNATURE.len()),
                        },
                        Ok(Parse::Complete { .. }) => Verdict::Reject(ProxyError::Untrusted),
                    }
                } else {
                    Verdict::Plain
                }
            }
        }
    }

    fn settled(parse: Parse) -> Verdict {
        match parse {
            Parse::Complete { header, len } => Verdict::Header { header, len },
            Parse::Incomplete { at_least } => Verdict::Need { at_least },
        }
    }

    /// When the wait ends.
    pub fn poll_timeout(&self) -> Instant {
        self.deadline
    }

    /// The verdict at `now` when no bytes settled it: None before the
    /// deadline (an early call). A trusted peer that sent nothing on an
    /// optional listener is a plain client that waits for the server, and
    /// is served as one.
    pub fn handle_timeout(&self, buf: &[u8], now: Instant) -> Option<Verdict> {
        if now < self.deadline {
            return None;
        }
        Some(match (self.expect, buf.is_empty()) {
            (Expect::Required(_), _) | (_, false) => Verdict::Reject(ProxyError::TimedOut),
            (_, true) => Verdict::Plain,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Accept; 3] = [Accept::V1, Accept::V2, Accept::Any];

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn complete(src: &str, dst: &str, version: Version) -> ProxyHeader {
        ProxyHeader {
            addresses: Some((sa(src), sa(dst))),
            version,
        }
    }

    fn no_addresses(version: Version) -> ProxyHeader {
        ProxyHeader {
            addresses: None,
            version,
        }
    }

    fn accepts(accept: Accept, version: Version) -> bool {
        match version {
            Version::V1 => accept.v1(),
            Version::V2 => accept.v2(),
        }
    }

    /// Trailing bytes a driver may find after a header: a request, a TLS
    /// record, another header, line ends and NULs.
    const TRAILERS: [&[u8]; 6] = [
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01",
        b"PROXY TCP4 1.1.1.1 2.2.2.2 1 2\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c",
        b"\r",
        b"\n\0\xff",
    ];

    /// Runs a header whole, at every prefix (a driver that gets it byte by
    /// byte, or split at any offset, sees exactly these buffers), and with
    /// each trailer, under every accept mode, and returns what the whole
    /// header gives under `accept`.
    fn run_all_ways(input: &[u8], accept: Accept) -> Result<Parse, ProxyError> {
        for a in ALL {
            let whole = parse(input, a);
            check_invariants(input, a);
            for trailer in TRAILERS {
                let longer = [input, trailer].concat();
                match (whole, parse(&longer, a)) {
                    (Ok(Parse::Incomplete { .. }), _) => {}
                    // The one refinement more bytes may bring.
                    (Err(ProxyError::NotProxy), Err(ProxyError::VersionNotAccepted(_))) => {}
                    (whole, after) => {
                        assert_eq!(after, whole, "{a:?}, trailer {trailer:?}: {input:?}");
                    }
                }
            }
        }
        parse(input, accept)
    }

    /// The properties the fuzz target checks, for one buffer and all its
    /// prefixes.
    fn check_invariants(buf: &[u8], accept: Accept) {
        let whole = parse(buf, accept);
        // may_start and NotProxy agree.
        let foreign = matches!(
            whole,
            Err(ProxyError::NotProxy | ProxyError::VersionNotAccepted(_))
        );
        assert_eq!(may_start(buf, accept), !foreign, "may_start: {buf:?}");
        match whole {
            Ok(Parse::Complete { header, len }) => {
                assert!(len <= buf.len());
                assert!(accepts(accept, header.version));
                let max = match header.version {
                    Version::V1 => V1_MAX_LEN,
                    Version::V2 => V2_MAX_LEN,
                };
                assert!(len <= max, "len {len}: {buf:?}");
                assert_eq!(parse(&buf[..len], accept), whole, "exact: {buf:?}");
                for i in 0..len {
                    match parse(&buf[..i], accept) {
                        Ok(Parse::Incomplete { at_least }) => {
                            assert!(i < at_least && at_least <= len, "at {i}: {buf:?}");
                        }
                        other => panic!("prefix {i} gives {other:?}: {buf:?}"),
                    }
                }
            }
            Ok(Parse::Incomplete { at_least }) => {
                assert!(at_least > buf.len(), "at_least {at_least}: {buf:?}");
                assert!(at_least <= V1_MAX_LEN.max(V2_MAX_LEN));
            }
            Err(e) => {
                // Errors are final: each prefix is Incomplete, or an error
                // that stays (NotProxy may still become VersionNotAccepted).
                for i in 0..buf.len() {
                    match parse(&buf[..i], accept) {
                        Ok(Parse::Incomplete { .. }) => {}
                        Err(ProxyError::NotProxy)
                            if matches!(e, ProxyError::VersionNotAccepted(_)) => {}
                        Err(p) => assert_eq!(p, e, "prefix {i}: {buf:?}"),
                        Ok(c) => panic!("prefix {i} of an error gives {c:?}: {buf:?}"),
                    }
                }
            }
        }
    }

    fn ok(input: &[u8], accept: Accept) -> (ProxyHeader, usize) {
        match run_all_ways(input, accept) {
            Ok(Parse::Complete { header, len }) => (header, len),
            other => panic!("expected a header, got {other:?}: {input:?}"),
        }
    }

    fn err(input: &[u8], accept: Accept) -> ProxyError {
        match run_all_ways(input, accept) {
            Err(e) => e,
            other => panic!("expected an error, got {other:?}: {input:?}"),
        }
    }

    fn malformed(input: &[u8]) -> &'static str {
        let e = err(input, Accept::Any);
        // The same under every accept mode that takes the version.
        for a in ALL {
            let r = parse(input, a);
            if !matches!(r, Err(ProxyError::VersionNotAccepted(_))) {
                assert_eq!(r, Err(e), "{a:?}: {input:?}");
            }
        }
        match e {
            ProxyError::Malformed(why) => why,
            other => panic!("expected Malformed, got {other:?}: {input:?}"),
        }
    }

    fn incomplete(input: &[u8], accept: Accept) -> usize {
        match run_all_ways(input, accept) {
            Ok(Parse::Incomplete { at_least }) => at_least,
            other => panic!("expected Incomplete, got {other:?}: {input:?}"),
        }
    }

    /// A v2 header: signature, the two bytes, the block with its length.
    fn v2(ver_cmd: u8, family: u8, block: &[u8]) -> Vec<u8> {
        let len = u16::try_from(block.len()).expect("test block fits");
        let mut out = V2_SIGNATURE.to_vec();
        out.extend_from_slice(&[ver_cmd, family]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(block);
        out
    }

    fn v4_block(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        [&src[..], &dst, &sport.to_be_bytes(), &dport.to_be_bytes()].concat()
    }

    fn v6_block(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> Vec<u8> {
        [
            &src.octets()[..],
            &dst.octets(),
            &sport.to_be_bytes(),
            &dport.to_be_bytes(),
        ]
        .concat()
    }

    fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
        let len = u16::try_from(value.len()).expect("test TLV fits");
        [&[kind][..], &len.to_be_bytes(), value].concat()
    }

    // ---- version 1 ----

    #[test]
    fn v1_tcp4() {
        // Section 2.1's example.
        let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
        let (header, len) = ok(line, Accept::V1);
        assert_eq!(
            header,
            complete("192.168.0.1:56324", "192.168.0.11:443", Version::V1)
        );
        assert_eq!(len, line.len());
        assert_eq!(parse(line, Accept::Any), parse(line, Accept::V1));
        // Section 2.1's longest TCP4 line, 56 bytes.
        let line = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
        assert_eq!(line.len(), 56);
        let (header, _) = ok(line, Accept::V1);
        assert_eq!(
            header,
            complete(
                "255.255.255.255:65535",
                "255.255.255.255:65535",
                Version::V1
            )
        );
        let (header, _) = ok(b"PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n", Accept::Any);
        assert_eq!(header, complete("0.0.0.0:0", "10.0.0.1:0", Version::V1));
    }

    #[test]
    fn v1_tcp6() {
        let (header, _) = ok(
            b"PROXY TCP6 2001:db8::1 2001:DB8::2 1 65535\r\n",
            Accept::V1,
        );
        assert_eq!(
            header,
            complete("[2001:db8::1]:1", "[2001:db8::2]:65535", Version::V1)
        );
        // Section 2.1's longest TCP6 line, 104 bytes.
        let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let line = format!("PROXY TCP6 {full} {full} 65535 65535\r\n");
        assert_eq!(line.len(), 104);
        let (header, len) = ok(line.as_bytes(), Accept::Any);
        let addr = format!("[{full}]:65535");
        assert_eq!(header, complete(&addr, &addr, Version::V1));
        assert_eq!(len, 104);
        // An IPv4-mapped address is an IPv6 address, reported as written.
        let (header, _) = ok(b"PROXY TCP6 ::ffff:1.2.3.4 ::1 80 443\r\n", Accept::V1);
        assert_eq!(
            header,
            complete("[::ffff:1.2.3.4]:80", "[::1]:443", Version::V1)
        );
    }

    #[test]
    fn v1_round_trip() {
        let addrs = [
            ("1.2.3.4:5", "6.7.8.9:10"),
            ("10.0.0.255:65535", "172.16.0.1:0"),
            ("[::]:1", "[::1]:2"),
            ("[fe80::1:2:3:4]:8080", "[2001:db8:0:1::]:443"),
            ("[1:2:3:4:5:6:7:8]:9", "[::ffff:127.0.0.1]:80"),
        ];
        for (src, dst) in addrs {
            let (s, d) = (sa(src), sa(dst));
            let proto = if s.is_ipv4() { "TCP4" } else { "TCP6" };
            let line = format!(
                "PROXY {proto} {} {} {} {}\r\n",
                s.ip(),
                d.ip(),
                s.port(),
                d.port()
            );
            let (header, len) = ok(line.as_bytes(), Accept::Any);
            assert_eq!(header, complete(src, dst, Version::V1), "{line}");
            assert_eq!(len, line.len());
        }
    }

    #[test]
    fn v1_unknown() {
        // The short form, and anything before the CRLF.
        for line in [
            &b"PROXY UNKNOWN\r\n"[..],
            b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY UNKNOWN whatever \t\0\xff  at all\r\n",
            b"PROXY UNKNOWN \r\n",
        ] {
            let (header, len) = ok(line, Accept::V1);
            assert_eq!(header, no_addresses(Version::V1));
            assert_eq!(len, line.len());
        }
        assert_eq!(incomplete(b"PROXY UNKNOWN", Accept::V1), 15);
        assert_eq!(incomplete(b"PROXY UNKNOWN\r", Accept::V1), 15);
        assert_eq!(incomplete(b"PROXY UNKNOWN anything", Accept::V1), 24);
        assert_eq!(incomplete(b"PROXY UNKNOWN anything\r", Accept::V1), 24);
        // The name must be whole.
        assert_eq!(
            malformed(b"PROXY UNKNOWNX\r\n"),
            "v1 protocol is not TCP4, TCP6 or UNKNOWN"
        );
        assert_eq!(
            malformed(b"PROXY UNKNOW\r\n"),
            "v1 protocol is not TCP4, TCP6 or UNKNOWN"
        );
    }

    #[test]
    fn v1_length_limit() {
        // Section 2.1's worst case is exactly the limit.
        let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let line = format!("PROXY UNKNOWN {full} {full} 65535 65535\r\n");
        assert_eq!(line.len(), V1_MAX_LEN);
        let (header, len) = ok(line.as_bytes(), Accept::V1);
        assert_eq!((header, len), (no_addresses(Version::V1), V1_MAX_LEN));
        // One byte more, CRLF included.
        let line = format!("PROXY UNKNOWN {full} {full} 65535 655350\r\n");
        assert_eq!(err(line.as_bytes(), Accept::V1), ProxyError::TooLong);
        // No CRLF at all: too long once the CR can no longer fit.
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(V1_MAX_LEN - 2, b'x');
        assert_eq!(incomplete(&line, Accept::V1), V1_MAX_LEN);
        line.push(b'x');
        assert_eq!(err(&line, Accept::V1), ProxyError::TooLong);
        line.resize(500, b'x');
        assert_eq!(err(&line, Accept::V1), ProxyError::TooLong);
        // A CR in the last place leaves no room for the LF.
        line.truncate(V1_MAX_LEN - 1);
        line.push(b'\r');
        assert_eq!(err(&line, Accept::V1), ProxyError::TooLong);
        // A TCP4 line whose last port never ends.
        let mut line = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 ".to_vec();
        line.resize(200, b'9');
        assert_eq!(err(&line, Accept::V1), ProxyError::TooLong);
    }

    #[test]
    fn v1_line_ends() {
        assert_eq!(
            malformed(b"PROXY TCP4 1.2.3.4 5.6.7.8 80 443\n"),
            "v1 line ends in a bare LF"
        );
        assert_eq!(malformed(b"PROXY UNKNOWN\n"), "v1 line ends in a bare LF");
        assert_eq!(malformed(b"PROXY \n"), "v1 line ends in a bare LF");
        assert_eq!(
            malformed(b"PROXY TCP4 1.2.3.4 5.6.7.8 80 443\rX"),
            "v1 line has a CR without LF"
        );
        assert_eq!(
            malformed(b"PROXY UNKNOWN a\rb\r\n"),
            "v1 line has a CR without LF"
        );
        assert_eq!(
            malformed(b"PROXY TCP4 1.2.3.4 5.6.7.8 80 443\r\r\n"),
            "v1 line has a CR without LF"
        );
        assert_eq!(
            malformed(b"PROXY \r\n"),
            "v1 protocol is not TCP4, TCP6 or UNKNOWN"
        );
    }

    #[test]
    fn v1_fields() {
        let cases: [(&[u8], &str); 17] = [
            (
                b"PROXY TCP4  1.2.3.4 5.6.7.8 80 443\r\n",
                "v1 field is empty",
            ),
            (
                b"PROXY TCP4 1.2.3.4  5.6.7.8 80 443\r\n",
                "v1 field is empty",
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 80 443 \r\n",
                "v1 line has more than six fields",
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 80 443 1\r\n",
                "v1 line has more than six fields",
            ),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 80 \r\n", "v1 field is empty"),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n",
                "v1 line has fewer than six fields",
            ),
            (b"PROXY TCP4\r\n", "v1 line has fewer than six fields"),
            (b"PROXY TCP4 \r\n", "v1 line has fewer than six fields"),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 80\t443\r\n",
                "v1 address or port has a character outside [0-9a-fA-F.:]",
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 443\r\n",
                "v1 address or port has a character outside [0-9a-fA-F.:]",
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 443\r\n",
                "v1 address or port has a character outside [0-9a-fA-F.:]",
            ),
            (
                b"PROXY TCP6 fe80::1%eth0 ::1 80 443\r\n",
                "v1 address or port has a character outside [0-9a-fA-F.:]",
            ),
            (
                b"PROXY tcp4 1.2.3.4 5.6.7.8 80 443\r\n",
                "v1 protocol is not TCP4, TCP6 or UNKNOWN",
            ),
            (
                b"PROXY TCP5 1.2.3.4 5.6.7.8 80 443\r\n",
                "v1 protocol is not TCP4, TCP6 or UNKNOWN",
            ),
            (
                b"PROXY UDP4 1.2.3.4 5.6.7.8 80 443\r\n",
                "v1 protocol is not TCP4, TCP6 or UNKNOWN",
            ),
            (
                b"PROXY  TCP4 1.2.3.4 5.6.7.8 80 443\r\n",
                "v1 protocol is not TCP4, TCP6 or UNKNOWN",
            ),
            (
                b"PROXY TCP 1.2.3.4 5.6.7.8 80 443\r\n",
                "v1 protocol is not TCP4, TCP6 or UNKNOWN",
            ),
        ];
        for (input, why) in cases {
            assert_eq!(
                malformed(input),
                why,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn v1_addresses() {
        let not_v4 = "v1 TCP4 address is not an IPv4 address";
        let not_v6 = "v1 TCP6 address is not an IPv6 address";
        let cases: [(&[u8], &str); 12] = [
            (b"PROXY TCP4 256.0.0.1 5.6.7.8 80 443\r\n", not_v4),
            (b"PROXY TCP4 1.2.3 5.6.7.8 80 443\r\n", not_v4),
            (b"PROXY TCP4 1.2.3.4.5 5.6.7.8 80 443\r\n", not_v4),
            (b"PROXY TCP4 1.2.3.4 5.6.7.a 80 443\r\n", not_v4),
            (b"PROXY TCP4 1..3.4 5.6.7.8 80 443\r\n", not_v4),
            // "Heading zeroes are not permitted" (section 2.1).
            (b"PROXY TCP4 01.2.3.4 5.6.7.8 80 443\r\n", not_v4),
            (b"PROXY TCP4 1.2.3.4 5.6.7.08 80 443\r\n", not_v4),
            // The family dictates the format.
            (b"PROXY TCP4 ::1 5.6.7.8 80 443\r\n", not_v4),
            (b"PROXY TCP4 1.2.3.4 ::ffff:5.6.7.8 80 443\r\n", not_v4),
            (b"PROXY TCP6 1.2.3.4 ::1 80 443\r\n", not_v6),
            (b"PROXY TCP6 ::1 1:2:3:4:5:6:7:8:9 80 443\r\n", not_v6),
            (b"PROXY TCP6 1::2::3 ::1 80 443\r\n", not_v6),
        ];
        for (input, why) in cases {
            assert_eq!(
                malformed(input),
                why,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(
            malformed(b"PROXY TCP6 00000::1 ::1 80 443\r\n"),
            not_v6,
            "more than four hex digits in a group"
        );
    }

    #[test]
    fn v1_ports() {
        let bad = "v1 port is not a decimal number from 0 to 65535";
        for port in [
            "65536", "99999", "100000", "00", "080", "0443", "ff", "8a", "1.0", "1:2",
        ] {
            for line in [
                format!("PROXY TCP4 1.2.3.4 5.6.7.8 {port} 443\r\n"),
                format!("PROXY TCP4 1.2.3.4 5.6.7.8 80 {port}\r\n"),
            ] {
                assert_eq!(malformed(line.as_bytes()), bad, "{line}");
            }
        }
        for (port, n) in [("0", 0), ("1", 1), ("10", 10), ("65535", 65535)] {
            let line = format!("PROXY TCP4 1.2.3.4 5.6.7.8 {port} {port}\r\n");
            let (header, _) = ok(line.as_bytes(), Accept::V1);
            let (src, dst) = header.addresses.expect("TCP4 has addresses");
            assert_eq!((src.port(), dst.port()), (n, n));
        }
    }

    #[test]
    fn v1_rejected_before_crlf() {
        // A line that cannot become valid fails without waiting for more.
        assert_eq!(
            malformed(b"PROXY FOO"),
            "v1 protocol is not TCP4, TCP6 or UNKNOWN"
        );
        assert_eq!(
            malformed(b"PROXY / HTTP/1.1"),
            "v1 protocol is not TCP4, TCP6 or UNKNOWN"
        );
        assert_eq!(
            malformed(b"PROXY TCP4 1.2.3.4 x"),
            "v1 address or port has a character outside [0-9a-fA-F.:]"
        );
        assert_eq!(malformed(b"PROXY TCP6 ::1  "), "v1 field is empty");
        // A valid beginning waits.
        assert_eq!(
            incomplete(b"PROXY TCP4 1.2.3.4 5.6.7.8 80 44", Accept::V1),
            34
        );
        assert_eq!(incomplete(b"PROXY TCP6 ", Accept::Any), 15);
        assert_eq!(incomplete(b"PROX", Accept::V1), 15);
    }

    // ---- version 2 ----

    #[test]
    fn v2_tcp4() {
        let input = v2(
            0x21,
            0x11,
            &v4_block([192, 0, 2, 1], [10, 0, 0, 1], 51000, 443),
        );
        let (header, len) = ok(&input, Accept::V2);
        assert_eq!(
            header,
            complete("192.0.2.1:51000", "10.0.0.1:443", Version::V2)
        );
        assert_eq!(len, 16 + 12);
        assert_eq!(parse(&input, Accept::Any), parse(&input, Accept::V2));
        // UDP over IPv4 reports the addresses the same way.
        let input = v2(0x21, 0x12, &v4_block([1, 2, 3, 4], [5, 6, 7, 8], 0, 65535));
        let (header, _) = ok(&input, Accept::Any);
        assert_eq!(header, complete("1.2.3.4:0", "5.6.7.8:65535", Version::V2));
    }

    #[test]
    fn v2_tcp6() {
        let src: Ipv6Addr = "2001:db8::1".parse().expect("test address");
        let dst: Ipv6Addr = "::ffff:10.0.0.1".parse().expect("test address");
        for family in [0x21, 0x22] {
            let input = v2(0x21, family, &v6_block(src, dst, 1234, 80));
            let (header, len) = ok(&input, Accept::Any);
            assert_eq!(
                header,
                complete("[2001:db8::1]:1234", "[::ffff:10.0.0.1]:80", Version::V2)
            );
            assert_eq!(len, 16 + 36);
        }
    }

    #[test]
    fn v2_tlvs() {
        let mut block = v4_block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
        block.extend(tlv(0x01, b"h2")); // ALPN
        block.extend(tlv(0x02, b"example.com")); // authority
        block.extend(tlv(0x04, b"")); // NOOP, empty
        block.extend(tlv(0x03, &[0, 0, 0, 0])); // CRC32c, not checked
        block.extend(tlv(0x05, &[0xab; 128])); // unique ID
        block.extend(tlv(0xe0, &[0; 300])); // custom, over 255 bytes
        let input = v2(0x21, 0x11, &block);
        let (header, len) = ok(&input, Accept::V2);
        assert_eq!(header, complete("1.2.3.4:1", "5.6.7.8:2", Version::V2));
        assert_eq!(len, input.len());
        // TLVs after a family without addresses are walked too.
        let mut block = vec![0; 216];
        block.extend(tlv(0x02, b"example.com"));
        let (header, _) = ok(&v2(0x21, 0x31, &block), Accept::V2);
        assert_eq!(header, no_addresses(Version::V2));
        let (header, _) = ok(&v2(0x21, 0x00, &tlv(0x04, b"pad")), Accept::V2);
        assert_eq!(header, no_addresses(Version::V2));
    }

    #[test]
    fn v2_tlv_overrun() {
        let overrun = "v2 TLV is cut off by the header's end";
        let base = v4_block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
        let full = tlv(0x01, b"h2");
        // A TLV missing its last bytes, or part of its type and length.
        for cut in 1..full.len() {
            let block = [&base[..], &full[..cut]].concat();
            assert_eq!(malformed(&v2(0x21, 0x11, &block)), overrun, "cut {cut}");
        }
        // A length running past the block, after a good TLV.
        let block = [&base[..], &full, &[0x02, 0x00, 0x10], b"short"].concat();
        assert_eq!(malformed(&v2(0x21, 0x11, &block)), overrun);
        let block = [&base[..], &[0x02, 0xff, 0xff]].concat();
        assert_eq!(malformed(&v2(0x21, 0x11, &block)), overrun);
        // A stray byte after UNSPEC's empty address block.
        assert_eq!(malformed(&v2(0x21, 0x00, &[0])), overrun);
    }

    #[test]
    fn v2_without_addresses() {
        // UNSPEC and UNIX with PROXY: valid, the connection's own
        // addresses count.
        let (header, len) = ok(&v2(0x21, 0x00, b""), Accept::V2);
        assert_eq!((header, len), (no_addresses(Version::V2), 16));
        for family in [0x31, 0x32] {
            let mut block = vec![0; 216];
            block[..12].copy_from_slice(b"/run/a.sock\0");
            let (header, len) = ok(&v2(0x21, family, &block), Accept::V2);
            assert_eq!((header, len), (no_addresses(Version::V2), 16 + 216));
        }
    }

    #[test]
    fn v2_local() {
        // A health check: no addresses, whatever the block holds.
        let (header, len) = ok(&v2(0x20, 0x00, b""), Accept::V2);
        assert_eq!((header, len), (no_addresses(Version::V2), 16));
        let block = v4_block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
        let (header, len) = ok(&v2(0x20, 0x11, &block), Accept::Any);
        assert_eq!((header, len), (no_addresses(Version::V2), 28));
        // "the family which is ignored": a short block, or bytes that are
        // not TLVs, are discarded unread.
        let (header, _) = ok(&v2(0x20, 0x21, b""), Accept::V2);
        assert_eq!(header, no_addresses(Version::V2));
        let (header, _) = ok(&v2(0x20, 0x00, &[0xff; 7]), Accept::V2);
        assert_eq!(header, no_addresses(Version::V2));
        // But an undefined family byte is still refused.
        assert_eq!(
            malformed(&v2(0x20, 0x13, b"")),
            "v2 address family or transport is not defined"
        );
    }

    #[test]
    fn v2_truncated() {
        // The declared length is longer than what has arrived.
        let input = v2(0x21, 0x11, &v4_block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
        for cut in 16..input.len() {
            assert_eq!(incomplete(&input[..cut], Accept::V2), 28, "cut {cut}");
        }
        for cut in 1..16 {
            assert_eq!(incomplete(&input[..cut], Accept::Any), 16, "cut {cut}");
        }
        assert_eq!(incomplete(&v2(0x21, 0x00, &[])[..15], Accept::V2), 16);
        // A length field promising more than the block that follows.
        let mut input = v2(0x21, 0x11, &v4_block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
        input[15] = 40;
        assert_eq!(incomplete(&input, Accept::V2), 56);
    }

    #[test]
    fn v2_bad_version() {
        for ver_cmd in [0x01, 0x11, 0x31, 0xf1, 0x00, 0x20 ^ 0x80] {
            let input = v2(ver_cmd, 0x11, &v4_block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
            assert_eq!(malformed(&input), "v2 version is not 2", "{ver_cmd:#x}");
            // Known from the 13th byte on.
            assert_eq!(malformed(&input[..13]), "v2 version is not 2");
        }
    }

    #[test]
    fn v2_bad_command() {
        for ver_cmd in [0x22, 0x23, 0x2f] {
            let input = v2(ver_cmd, 0x11, &v4_block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
            assert_eq!(malformed(&input), "v2 command is not LOCAL or PROXY");
            assert_eq!(malformed(&input[..13]), "v2 command is not LOCAL or PROXY");
        }
    }

    #[test]
    fn v2_bad_family() {
        let defined = [0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32];
        for family in 0..=255u8 {
            let input = v2(0x21, family, &[0; 216]);
            if defined.contains(&family) {
                assert!(address_len(family).is_some());
                continue;
            }
            let why = "v2 address family or transport is not defined";
            assert_eq!(malformed(&input), why, "{family:#x}");
            assert_eq!(malformed(&input[..14]), why, "{family:#x}");
        }
    }

    #[test]
    fn v2_short_address_block() {
        let short = "v2 address block is shorter than its family needs";
        for (family, needed) in [
            (0x11, 12),
            (0x12, 12),
            (0x21, 36),
            (0x22, 36),
            (0x31, 216),
            (0x32, 216),
        ] {
            for len in [0, needed - 1] {
                let input = v2(0x21, family, &vec![0; len]);
                assert_eq!(malformed(&input), short, "{family:#x} {len}");
                // Known from the length field, before the block arrives.
                assert_eq!(malformed(&input[..16]), short, "{family:#x} {len}");
            }
            let (_, len) = ok(&v2(0x21, family, &vec![0; needed]), Accept::V2);
            assert_eq!(len, 16 + needed);
        }
    }

    #[test]
    fn v2_length_limit() {
        let base = v4_block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
        // Exactly V2_MAX_LEN: one custom TLV fills the rest.
        let fill = V2_MAX_LEN - 16 - base.len() - 3;
        let input = v2(
            0x21,
            0x11,
            &[&base[..], &tlv(0xe0, &vec![7; fill])].concat(),
        );
        assert_eq!(input.len(), V2_MAX_LEN);
        let (_, len) = ok(&input, Accept::V2);
        assert_eq!(len, V2_MAX_LEN);
        // One more byte is too long, known from the length field alone.
        let input = v2(
            0x21,
            0x11,
            &[&base[..], &tlv(0xe0, &vec![7; fill + 1])].concat(),
        );
        assert_eq!(err(&input, Accept::V2), ProxyError::TooLong);
        assert_eq!(err(&input[..16], Accept::V2), ProxyError::TooLong);
        let mut input = v2(0x20, 0x00, b"");
        input[14..16].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(err(&input, Accept::V2), ProxyError::TooLong);
    }

    // ---- both, and neither ----

    #[test]
    fn version_must_be_accepted() {
        let one = b"PROXY TCP4 1.2.3.4 5.6.7.8 80 443\r\n";
        let two = v2(0x21, 0x11, &v4_block([1, 2, 3, 4], [5, 6, 7, 8], 80, 443));
        assert_eq!(
            err(one, Accept::V2),
            ProxyError::VersionNotAccepted(Version::V1)
        );
        assert_eq!(
            err(&two, Accept::V1),
            ProxyError::VersionNotAccepted(Version::V2)
        );
        // Both signatures whole are enough to tell.
        assert_eq!(
            parse(&V2_SIGNATURE, Accept::V1),
            Err(ProxyError::VersionNotAccepted(Version::V2))
        );
        assert_eq!(
            parse(&V1_SIGNATURE, Accept::V2),
            Err(ProxyError::VersionNotAccepted(Version::V1))
        );
        // Before that, the bytes are simply not what the listener expects.
        assert_eq!(parse(b"PROXY", Accept::V2), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"\r\n\r\n", Accept::V1), Err(ProxyError::NotProxy));
        // Any takes either.
        let (h1, _) = ok(one, Accept::Any);
        let (h2, _) = ok(&two, Accept::Any);
        assert_eq!(h1.addresses, h2.addresses);
        assert_eq!((h1.version, h2.version), (Version::V1, Version::V2));
    }

    #[test]
    fn not_proxy() {
        let inputs: [&[u8]; 8] = [
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST / HTTP/1.1\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"PROXYTCP4",
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
            b"\x16",
            b"\r\n\r\n\0\r\nQUIT\r",
            b"\nPROXY ",
        ];
        for input in inputs {
            for accept in ALL {
                assert_eq!(parse(input, accept), Err(ProxyError::NotProxy), "{input:?}");
                assert!(!may_start(input, accept), "{input:?}");
                check_invariants(input, accept);
            }
        }
    }

    #[test]
    fn empty() {
        assert_eq!(
            parse(b"", Accept::V1),
            Ok(Parse::Incomplete { at_least: 15 })
        );
        assert_eq!(
            parse(b"", Accept::V2),
            Ok(Parse::Incomplete { at_least: 16 })
        );
        assert_eq!(
            parse(b"", Accept::Any),
            Ok(Parse::Incomplete { at_least: 15 })
        );
        for accept in ALL {
            assert!(may_start(b"", accept));
        }
    }

    #[test]
    fn may_start_signatures() {
        for i in 0..=V1_SIGNATURE.len() {
            let p = &V1_SIGNATURE[..i];
            assert!(may_start(p, Accept::V1) && may_start(p, Accept::Any));
            assert_eq!(may_start(p, Accept::V2), i == 0, "{p:?}");
        }
        for i in 0..=V2_SIGNATURE.len() {
            let p = &V2_SIGNATURE[..i];
            assert!(may_start(p, Accept::V2) && may_start(p, Accept::Any));
            assert_eq!(may_start(p, Accept::V1), i == 0, "{p:?}");
        }
        // Past the signature, anything may follow: parse judges it.
        let bad = [&V2_SIGNATURE[..], &[0xff, 0xff]].concat();
        assert!(may_start(&bad, Accept::V2));
        assert!(may_start(b"PROXY garbage", Accept::V1));
        // Plain HTTP and TLS are told apart at the first byte that differs.
        let get = b"GET / HTTP/1.1";
        for accept in ALL {
            for i in 1..=get.len() {
                assert!(!may_start(&get[..i], accept));
            }
            assert!(!may_start(&[0x16], accept));
            assert!(!may_start(&[0x16, 0x03, 0x01], accept));
        }
        assert!(may_start(b"PR", Accept::Any));
        assert!(!may_start(b"PRI", Accept::Any));
        assert!(may_start(b"\r\n", Accept::Any));
        assert!(!may_start(b"\r\r", Accept::Any));
    }

    #[test]
    fn errors_display() {
        let errors = [
            ProxyError::NotProxy,
            ProxyError::VersionNotAccepted(Version::V2),
            ProxyError::Malformed("v1 field is empty"),
            ProxyError::TooLong,
        ];
        for e in errors {
            let text = e.to_string();
            assert!(text.starts_with(|c: char| c.is_ascii_lowercase()), "{text}");
        }
        assert_eq!(
            ProxyError::VersionNotAccepted(Version::V1).to_string(),
            "a proxy protocol v1 header, but this listener does not accept v1"
        );
    }

    /// A small deterministic fuzz run, so the invariants are checked on
    /// every `cargo test` and not only under cargo-fuzz: random edits of
    /// valid headers.
    #[test]
    fn mutations() {
        let mut seeds: Vec<Vec<u8>> = vec![
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET /".to_vec(),
            b"PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 1 65535\r\n".to_vec(),
            b"PROXY UNKNOWN\r\n".to_vec(),
            v2(0x21, 0x11, &v4_block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)),
            v2(0x20, 0x00, b""),
            v2(
                0x21,
                0x21,
                &[
                    &v6_block(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED, 1, 2)[..],
                    &tlv(1, b"h2"),
                ]
                .concat(),
            ),
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..3000 {
            let mut buf = seeds[round % seeds.len()].clone();
            for _ in 0..=next() % 3 {
                let at = (next() as usize) % (buf.len() + 1);
                match next() % 4 {
                    0 if at < buf.len() => buf[at] = next() as u8,
                    1 if at < buf.len() => {
                        buf.remove(at);
                    }
                    2 => buf.insert(at, [b' ', b'\r', b'\n', b'0', 0, 0xff][next() as usize % 6]),
                    _ => buf.truncate(at),
                }
            }
            for accept in ALL {
                check_invariants(&buf, accept);
            }
            if round % 7 == 0 {
                seeds.push(buf);
            }
        }
    }

    fn wait(expect: Expect) -> HeaderWait {
        HeaderWait::new(expect, Instant::ZERO, Duration::from_secs(5))
    }

    #[test]
    fn a_required_header_is_read_and_anything_else_rejected() {
        let w = wait(Expect::Required(Accept::Any));
        let line = b"PROXY TCP4 10.1.2.3 10.0.0.1 40000 443\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            w.handle_bytes(line),
            Verdict::Header {
                header: complete("10.1.2.3:40000", "10.0.0.1:443", Version::V1),
                len: 40,
            }
        );
        assert!(matches!(w.handle_bytes(&line[..20]), Verdict::Need { .. }));
        assert_eq!(
            w.handle_bytes(b"GET / HTTP/1.1\r\n"),
            Verdict::Reject(ProxyError::NotProxy)
        );
        let w = wait(Expect::Required(Accept::V1));
        assert_eq!(
            w.handle_bytes(&V2_SIGNATURE),
            Verdict::Reject(ProxyError::VersionNotAccepted(Version::V2))
        );
    }

    #[test]
    fn an_optional_header_tells_plain_clients_apart() {
        let w = wait(Expect::Optional(Accept::Any));
        for plain in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"POST /",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"\x16\x03\x01\x02\x00",
            b"\r\nGET /",
        ] {
            assert_eq!(w.handle_bytes(plain), Verdict::Plain, "{plain:?}");
        }
        // "P" and "PR" may still be either.
        assert!(matches!(w.handle_bytes(b"P"), Verdict::Need { .. }));
        assert!(matches!(w.handle_bytes(b"PR"), Verdict::Need { .. }));
        // A header that starts right and goes wrong is not a plain client.
        assert!(matches!(
            w.handle_bytes(b"PROXY TCP4 1.2.3.4\r\n"),
            Verdict::Reject(ProxyError::Malformed(_))
        ));
    }

    #[test]
    fn an_untrusted_peer_may_not_send_a_header() {
        let w = wait(Expect::Forbidden);
        assert_eq!(w.handle_bytes(b"GET / HTTP/1.1\r\n"), Verdict::Plain);
        assert_eq!(w.handle_bytes(b"PUT /x"), Verdict::Plain);
        assert!(matches!(w.handle_bytes(b"PRO"), Verdict::Need { .. }));
        assert_eq!(
            w.handle_bytes(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
            Verdict::Reject(ProxyError::Untrusted)
        );
        assert_eq!(
            w.handle_bytes(&V2_SIGNATURE),
            Verdict::Reject(ProxyError::Untrusted)
        );
        assert!(matches!(w.handle_bytes(b"\r\n\r\n"), Verdict::Need { .. }));
    }

    #[test]
    fn the_wait_ends_at_its_deadline() {
        let at = |s| Instant::ZERO + Duration::from_secs(s);
        let w = wait(Expect::Required(Accept::Any));
        assert_eq!(w.poll_timeout(), at(5));
        assert_eq!(w.handle_timeout(b"PROXY ", at(4)), None);
        assert_eq!(
            w.handle_timeout(b"PROXY ", at(5)),
            Some(Verdict::Reject(ProxyError::TimedOut))
        );
        assert_eq!(
            w.handle_timeout(b"", at(5)),
            Some(Verdict::Reject(ProxyError::TimedOut))
        );
        // A silent client of an optional listener is served as a plain one
        // (its own timers take over); a half-sent header is not.
        let w = wait(Expect::Optional(Accept::Any));
        assert_eq!(w.handle_timeout(b"", at(6)), Some(Verdict::Plain));
        assert_eq!(
            w.handle_timeout(b"PRO", at(6)),
            Some(Verdict::Reject(ProxyError::TimedOut))
        );
    }
}
