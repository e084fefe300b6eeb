//! Proxy headers: the client, scheme and host a trusted reverse proxy
//! reports in `Forwarded` (RFC 7239) or `X-Forwarded-For`,
//! `X-Forwarded-Proto` and `X-Forwarded-Host`.
//!
//! The driver MUST decide trust from the connection's own peer address
//! ([`TrustedProxies::is_trusted`], [`TrustedProxies::trusts_local`] for a
//! Unix socket) and MUST NOT call [`TrustedProxies::resolve`] for an
//! untrusted peer: the headers of an untrusted peer are the client's own
//! claims. [`TrustedProxies::resolve_for`] does both.
//!
//! Which headers count, in order:
//! * `Forwarded`, when present and well-formed: every element names one hop;
//!   walking from the right (the hop nearest to us) past trusted proxies,
//!   the first untrusted `for=` is the client, and that element's `proto=`
//!   and `host=` are the scheme and host the client used. When every hop is
//!   trusted, the leftmost element counts.
//! * otherwise `X-Forwarded-For` the same way (the rightmost untrusted
//!   address, else the leftmost), with `X-Forwarded-Proto` and
//!   `X-Forwarded-Host` taken from the same position when they list one
//!   value per hop, or their only value.
//!
//! Malformed values are ignored, never guessed at: the scope keeps what the
//! connection itself says.

use std::net::IpAddr;

use bytes::Bytes;

use super::scope::{Address, HttpScope};
use crate::http::{self, is_tchar};

/// Longest combined proxy header value looked at, in bytes: far more than a
/// real chain of proxies produces (a few dozen bytes per hop); longer
/// values are ignored rather than parsed.
const MAX_HEADER_LEN: usize = 8 * 1024;

/// The proxies whose headers are believed (`--forwarded-allow-ips`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    /// `*`: every peer is trusted.
    all: bool,
    nets: Vec<Net>,
}

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An entry of the allow-list that is not `*`, an IP address or a CIDR
/// network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid forwarded-allow-ips entry {0:?}: expected an IP address, a network or *")]
pub struct InvalidAllowList(pub String);

impl TrustedProxies {
    /// Parses a comma-separated list of IP addresses (`127.0.0.1`, `::1`),
    /// CIDR networks (`10.0.0.0/8`, `fd00::/8`; host bits are ignored) and
    /// `*` (everyone). Blank entries are skipped.
    pub fn parse(list: &str) -> Result<Self, InvalidAllowList> {
        let mut out = Self::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                out.all = true;
                continue;
            }
            let bad = || InvalidAllowList(entry.to_owned());
            let (addr, prefix) = match entry.split_once('/') {
                Some((a, p)) => {
                    let addr: IpAddr = a.parse().map_err(|_| bad())?;
                    let prefix: u8 = p.parse().map_err(|_| bad())?;
                    let max = if addr.is_ipv4() { 32 } else { 128 };
                    if prefix > max || !p.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad());
                    }
                    (addr, prefix)
                }
                None => {
                    let addr: IpAddr = entry.parse().map_err(|_| bad())?;
                    (addr, if addr.is_ipv4() { 32 } else { 128 })
                }
            };
            // An IPv4-mapped IPv6 entry (::ffff:10.0.0.1) means the IPv4 one.
            let (addr, prefix) = match addr {
                IpAddr::V6(v6) if prefix >= 96 && v6.to_ipv4_mapped().is_some() => {
                    (addr.to_canonical(), prefix - 96)
                }
                _ => (addr, prefix),
            };
            out.nets.push(Net { addr, prefix });
        }
        Ok(out)
    }

    /// Whether a peer at `ip` may set proxy headers. An IPv4-mapped IPv6
    /// address (from a dual-stack socket) counts as its IPv4 address.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.all || self.nets.iter().any(|n| n.contains(ip))
    }

    /// Whether a peer on the local host without an IP address (a Unix
    /// socket) is trusted: with `*`, or when the list trusts a loopback
    /// address (the default list does), since only local processes can
    /// connect to the socket.
    pub fn trusts_local(&self) -> bool {
        self.all
            || self.is_trusted(IpAddr::from([127, 0, 0, 1]))
            || self.is_trusted(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]))
    }

    /// What a peer reports, if `peer` is trusted: `peer` is the
    /// connection's peer address, None for a Unix socket (see
    /// [`Self::trusts_local`]).
    pub fn resolve_for(&self, peer: Option<IpAddr>, headers: &[(Bytes, Bytes)]) -> Forwarded {
        let trusted = match peer {
            Some(ip) => self.is_trusted(ip),
            None => self.trusts_local(),
        };
        if trusted {
            self.resolve(headers)
        } else {
            Forwarded::default()
        }
    }

    /// What the proxy headers in `headers` (lowercase names, as in a scope)
    /// report. The caller MUST have checked that the peer is trusted.
    pub fn resolve(&self, headers: &[(Bytes, Bytes)]) -> Forwarded {
        let mut forwarded = None;
        let mut xff = None;
        let mut xfp = None;
        let mut xfh = None;
        for (name, value) in headers {
            let slot = match name.as_ref() {
                b"forwarded" => &mut forwarded,
                b"x-forwarded-for" => &mut xff,
                b"x-forwarded-proto" => &mut xfp,
                b"x-forwarded-host" => &mut xfh,
                _ => continue,
            };
            // Several fields of one name are one comma-separated list
            // (RFC 9110 §5.3).
            match slot {
                None => *slot = Some(value.to_vec()),
                Some(v) => {
                    v.push(b',');
                    v.extend_from_slice(value);
                }
            }
        }
        if let Some(f) = forwarded.and_then(|v| self.read_forwarded(&v)) {
            return f;
        }
        self.read_x_forwarded(xff.as_deref(), xfp.as_deref(), xfh.as_deref())
    }

    /// The `Forwarded` header; None when it is malformed.
    fn read_forwarded(&self, value: &[u8]) -> Option<Forwarded> {
        if value.len() > MAX_HEADER_LEN {
            return None;
        }
        let elements = parse_forwarded(value)?;
        // The rightmost element whose `for` is not a trusted proxy; an
        // element without `for`, or with `unknown` or an obfuscated name,
        // cannot be a trusted proxy and so ends the walk there.
        let chosen = elements
            .iter()
            .rposition(|e| match e.for_node.as_ref().map(|n| &n.name) {
                Some(NodeName::Ip(ip)) => !self.is_trusted(*ip),
                _ => true,
            })
            .unwrap_or(0);
        let e = elements.into_iter().nth(chosen)?;
        let client = e.for_node.map(|n| match n.name {
            NodeName::Ip(ip) => ForwardedFor::Address(Address {
                host: ip.to_string().into(),
                port: n.port,
            }),
            NodeName::Obfuscated(s) => ForwardedFor::Address(Address {
                host: s.into(),
                port: n.port,
            }),
            NodeName::Unknown => ForwardedFor::Unknown,
        });
        Some(Forwarded {
            client,
            secure: e.proto.as_deref().and_then(parse_proto),
            host: e.host.filter(|h| valid_host(h)).map(Bytes::from),
        })
    }

    /// The `X-Forwarded-*` headers.
    fn read_x_forwarded(
        &self,
        xff: Option<&[u8]>,
        xfp: Option<&[u8]>,
        xfh: Option<&[u8]>,
    ) -> Forwarded {
        let list = |v: Option<&[u8]>| -> Vec<Vec<u8>> {
            v.filter(|v| v.len() <= MAX_HEADER_LEN)
                .map(|v| {
                    v.split(|&b| b == b',')
                        .map(|s| http::trim_ows(s).to_vec())
                        .collect()
                })
                .unwrap_or_default()
        };
        let hops = list(xff);
        let mut out = Forwarded::default();
        // Index of the client hop in `hops`.
        let mut chosen = None;
        if !hops.is_empty() {
            let ips: Vec<Option<IpAddr>> = hops.iter().map(|h| parse_xff_ip(h)).collect();
            let i = ips
                .iter()
                .rposition(|ip| !ip.is_some_and(|ip| self.is_trusted(ip)))
                .unwrap_or(0);
            chosen = Some(i);
            // A malformed address there leaves the client as it is.
            if let Some(ip) = ips[i] {
                out.client = Some(ForwardedFor::Address(Address {
                    host: ip.to_string().into(),
                    port: 0,
                }));
            }
        }
        // One value, or one per hop (then the client's); anything else is
        // ambiguous and ignored.
        let pick = |values: Vec<Vec<u8>>| -> Option<Vec<u8>> {
            match (values.len(), chosen) {
                (1, _) => values.into_iter().next(),
                (n, Some(i)) if n == hops.len() => values.into_iter().nth(i),
                _ => None,
            }
        };
        out.secure = pick(list(xfp)).and_then(|p| parse_proto(&p));
        out.host = pick(list(xfh)).filter(|h| valid_host(h)).map(Bytes::from);
        out
    }
}

/// The client named by a proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardedFor {
    /// An IP address (port 0 unless the proxy gave one), or an obfuscated
    /// identifier such as `_hidden` (RFC 7239 §6.3).
    Address(Address),
    /// `for=unknown` (RFC 7239 §6.2): `scope["client"]` becomes None.
    Unknown,
}

/// What trusted proxy headers say about a request; None fields leave the
/// scope as the connection describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// The client.
    pub client: Option<ForwardedFor>,
    /// Whether the client used TLS (`https`/`wss` versus `http`/`ws`).
    pub secure: Option<bool>,
    /// The `Host` the client sent.
    pub host: Option<Bytes>,
}

impl Forwarded {
    /// Whether there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.client.is_none() && self.secure.is_none() && self.host.is_none()
    }

    /// Applies it to a scope: `client`, `scheme` (`http`/`https`;
    /// [`super::WebSocketScope::new`] turns it into `ws`/`wss`) and the
    /// value of the `host` header, so that the scope stays consistent.
    /// Returns whether the client changed.
    pub fn apply(self, scope: &mut HttpScope) -> bool {
        let changed = match self.client {
            Some(ForwardedFor::Address(a)) => {
                let changed = scope.client.as_ref() != Some(&a);
                scope.client = Some(a);
                changed
            }
            Some(ForwardedFor::Unknown) => scope.client.take().is_some(),
            None => false,
        };
        if let Some(secure) = self.secure {
            scope.scheme = if secure { "https" } else { "http" };
        }
        if let Some(host) = self.host {
            match scope
                .headers
                .iter_mut()
                .find(|(n, _)| n.as_ref() == b"host")
            {
                Some((_, v)) => *v = host,
                None => scope.headers.insert(0, (Bytes::from_static(b"host"), host)),
            }
        }
        changed
    }
}

/// `http`, `https`, `ws` or `wss` (any case): whether it is secure.
fn parse_proto(p: &[u8]) -> Option<bool> {
    match p.to_ascii_lowercase().as_slice() {
        b"http" | b"ws" => Some(false),
        b"https" | b"wss" => Some(true),
        _ => None,
    }
}

/// An `X-Forwarded-For` entry: an IP address, possibly with a port
/// (`192.0.2.1:1234`, `[2001:db8::1]:1234`) or in brackets.
fn parse_xff_ip(s: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(s).ok()?;
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(valid_port)) {
            return None;
        }
        return ip.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let (ip, port) = s.split_once(':')?;
    valid_port(port).then_some(())?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn valid_port(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|b| b.is_ascii_digit())
        && p.parse::<u16>().is_ok()
}

/// A host a proxy may substitute: the `Host` grammar (RFC 9110 §7.2), not
/// empty, and no longer than a DNS name and port can be.
fn valid_host(h: &[u8]) -> bool {
    !h.is_empty() && h.len() <= 255 && http::is_valid_host(h)
}

/// One element of a `Forwarded` header: one hop.
#[derive(Debug, Default)]
struct Element {
    for_node: Option<Node>,
    proto: Option<Vec<u8>>,
    host: Option<Vec<u8>>,
}

/// A node: `for=` or `by=` (RFC 7239 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    name: NodeName,
    /// 0 when absent or obfuscated.
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NodeName {
    Ip(IpAddr),
    Unknown,
    Obfuscated(String),
}

/// Parses a `Forwarded` field value (RFC 7239 §4) into its elements; None
/// when it is malformed (bad syntax, a bad `for` node, a parameter twice in
/// one element).
fn parse_forwarded(v: &[u8]) -> Option<Vec<Element>> {
    let mut elements = Vec::new();
    let mut cur = Element::default();
    // Whether `cur` has had any pair or separator: an element may be empty
    // only as part of a list with empty items, which is skipped.
    let mut seen = [false; 3];
    let mut i = 0;
    let skip_ows = |i: &mut usize| {
        while *i < v.len() && (v[*i] == b' ' || v[*i] == b'\t') {
            *i += 1;
        }
    };
    loop {
        skip_ows(&mut i);
        if i == v.len() {
            break;
        }
        match v[i] {
            b',' => {
                i += 1;
                elements.push(std::mem::take(&mut cur));
                seen = [false; 3];
                continue;
            }
            b';' => {
                i += 1;
                continue;
            }
            _ => {}
        }
        // token "=" value
        let start = i;
        while i < v.len() && is_tchar(v[i]) {
            i += 1;
        }
        if i == start || i == v.len() || v[i] != b'=' {
            return None;
        }
        let name = v[start..i].to_ascii_lowercase();
        i += 1;
        let value = if v.get(i) == Some(&b'"') {
            i += 1;
            let mut out = Vec::new();
            loop {
                match v.get(i) {
                    None => return None,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        out.push(*v.get(i + 1)?);
                        i += 2;
                    }
                    Some(&c) => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            out
        } else {
            let s = i;
            while i < v.len() && is_tchar(v[i]) {
                i += 1;
            }
            if i == s {
                return None;
            }
            v[s..i].to_vec()
        };
        skip_ows(&mut i);
        if i < v.len() && v[i] != b';' && v[i] != b',' {
            return None;
        }
        let k = match name.as_slice() {
            b"for" => 0,
            b"proto" => 1,
            b"host" => 2,
            // `by` and extensions are not needed.
            _ => continue,
        };
        if std::mem::replace(&mut seen[k], true) {
            return None;
        }
        match k {
            0 => cur.for_node = Some(parse_node(&value)?),
            1 => cur.proto = Some(value),
            _ => cur.host = Some(value),
        }
    }
    elements.push(cur);
    // Empty list items (`a, , b`) carry nothing.
    elements.retain(|e| e.for_node.is_some() || e.proto.is_some() || e.host.is_some());
    (!elements.is_empty()).then_some(elements)
}

/// A node (RFC 7239 §6): `nodename [ ":" node-port ]`.
fn parse_node(v: &[u8]) -> Option<Node> {
    let s = std::str::from_utf8(v).ok()?;
    let (name, port) = if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: std::net::Ipv6Addr = ip.parse().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (NodeName::Ip(IpAddr::V6(ip)), port)
    } else {
        let (name, port) = match s.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        };
        let name = if name.eq_ignore_ascii_case("unknown") {
            NodeName::Unknown
        } else if is_obfuscated(name) {
            NodeName::Obfuscated(name.to_owned())
        } else {
            NodeName::Ip(IpAddr::V4(name.parse().ok()?))
        };
        (name, port)
    };
    let port = match port {
        None => 0,
        Some(p) if is_obfuscated(p) => 0,
        Some(p) if valid_port(p) => p.parse().ok()?,
        Some(_) => return None,
    };
    Some(Node { name, port })
}

/// `obfnode` / `obfport` (RFC 7239 §6.3): "_" 1*(ALPHA / DIGIT / "." /
/// "_" / "-").
fn is_obfuscated(s: &str) -> bool {
    s.len() > 1
        && s.starts_with('_')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    static SLASH: Bytes = Bytes::from_static(b"/");

    fn tp(list: &str) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    fn hs(fields: &[(&str, &str)]) -> Vec<(Bytes, Bytes)> {
        fields
            .iter()
            .map(|(n, v)| (Bytes::from(n.to_string()), Bytes::from(v.to_string())))
            .collect()
    }

    fn addr(host: &str, port: u16) -> Option<ForwardedFor> {
        Some(ForwardedFor::Address(Address {
            host: host.into(),
            port,
        }))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn allow_list_parsing() {
        let t = tp(" 127.0.0.1 , ::1,10.0.0.0/8,, fd00::/8 ");
        assert!(t.is_trusted(ip("127.0.0.1")));
        assert!(!t.is_trusted(ip("127.0.0.2")));
        assert!(t.is_trusted(ip("::1")));
        assert!(t.is_trusted(ip("10.200.3.4")));
        assert!(!t.is_trusted(ip("11.0.0.1")));
        assert!(t.is_trusted(ip("fd12::5")));
        assert!(!t.is_trusted(ip("fe80::1")));
        // IPv4-mapped peers from a dual-stack socket.
        assert!(t.is_trusted(ip("::ffff:10.1.1.1")));
        assert!(tp("::ffff:10.0.0.0/104").is_trusted(ip("10.9.9.9")));
        // Host bits in a network are ignored; /0 is everything.
        assert!(tp("192.168.1.77/24").is_trusted(ip("192.168.1.1")));
        assert!(tp("0.0.0.0/0").is_trusted(ip("8.8.8.8")));
        assert!(!tp("0.0.0.0/0").is_trusted(ip("::8")));
        assert!(tp("*").is_trusted(ip("8.8.8.8")));
        assert!(tp("").nets.is_empty() && !tp("").all);
        for bad in [
            "localhost",
            "10.0.0.0/33",
            "::/129",
            "1.2.3.4/",
            "1.2.3.4/+8",
            "unix:/x",
        ] {
            assert_eq!(
                TrustedProxies::parse(bad),
                Err(InvalidAllowList(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn local_peers() {
        assert!(tp("127.0.0.1").trusts_local());
        assert!(tp("::1").trusts_local());
        assert!(tp("127.0.0.0/8").trusts_local());
        assert!(tp("*").trusts_local());
        assert!(!tp("10.0.0.1").trusts_local());
        assert!(!tp("").trusts_local());
    }

    #[test]
    fn untrusted_peer_is_ignored() {
        let h = hs(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=5.6.7.8"),
        ]);
        let t = tp("10.0.0.1");
        assert!(t.resolve_for(Some(ip("127.0.0.1")), &h).is_empty());
        assert!(t.resolve_for(None, &h).is_empty());
        assert_eq!(
            t.resolve_for(Some(ip("10.0.0.1")), &h).client,
            addr("5.6.7.8", 0)
        );
        assert_eq!(
            tp("127.0.0.1").resolve_for(None, &h).client,
            addr("5.6.7.8", 0)
        );
    }

    #[test]
    fn x_forwarded_for_walks_from_the_right() {
        let t = tp("127.0.0.1, 10.0.0.0/8");
        let r = |v: &str| t.resolve(&hs(&[("x-forwarded-for", v)])).client;
        assert_eq!(r("1.2.3.4"), addr("1.2.3.4", 0));
        assert_eq!(
            r("9.9.9.9, 1.2.3.4, 10.0.0.5, 10.1.1.1"),
            addr("1.2.3.4", 0)
        );
        // All trusted: the leftmost.
        assert_eq!(r("10.0.0.7,10.0.0.5"), addr("10.0.0.7", 0));
        assert_eq!(r(" 2001:db8::1 "), addr("2001:db8::1", 0));
        assert_eq!(r("[2001:db8::1]:443"), addr("2001:db8::1", 0));
        assert_eq!(r("1.2.3.4:5555"), addr("1.2.3.4", 0));
        // Malformed at the client's position: the client stays as it is.
        assert_eq!(r("nonsense"), None);
        assert_eq!(r("1.2.3.4, garbage, 10.0.0.1"), None);
        assert_eq!(r(""), None);
        assert_eq!(r("1.2.3.4:99999"), None);
        // Several fields are one list.
        let h = hs(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "10.0.0.1"),
        ]);
        assert_eq!(t.resolve(&h).client, addr("1.1.1.1", 0));
        // Everyone trusted: the leftmost, as uvicorn does.
        assert_eq!(
            tp("*")
                .resolve(&hs(&[("x-forwarded-for", "1.1.1.1, 2.2.2.2")]))
                .client,
            addr("1.1.1.1", 0)
        );
    }

    #[test]
    fn x_forwarded_proto_and_host() {
        let t = tp("127.0.0.1");
        let r = |f: &[(&str, &str)]| t.resolve(&hs(f));
        let f = r(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "example.com"),
        ]);
        assert_eq!(f.secure, Some(true));
        assert_eq!(f.host.as_deref(), Some(&b"example.com"[..]));
        assert_eq!(f.client, None);
        assert_eq!(r(&[("x-forwarded-proto", " WSS ")]).secure, Some(true));
        assert_eq!(r(&[("x-forwarded-proto", "ws")]).secure, Some(false));
        assert_eq!(r(&[("x-forwarded-proto", "http")]).secure, Some(false));
        assert_eq!(r(&[("x-forwarded-proto", "ftp")]).secure, None);
        assert_eq!(r(&[("x-forwarded-proto", "https, http")]).secure, None);
        // One value per hop: the client's.
        let f = r(&[
            ("x-forwarded-for", "1.2.3.4, 127.0.0.1"),
            ("x-forwarded-proto", "https, http"),
            ("x-forwarded-host", "a.example, b.internal:8080"),
        ]);
        assert_eq!(f.client, addr("1.2.3.4", 0));
        assert_eq!(f.secure, Some(true));
        assert_eq!(f.host.as_deref(), Some(&b"a.example"[..]));
        assert_eq!(
            r(&[("x-forwarded-host", "[::1]:8000")]).host.as_deref(),
            Some(&b"[::1]:8000"[..])
        );
        for bad in ["a b", "a/b", "x@y", "", "a\u{7f}"] {
            assert_eq!(r(&[("x-forwarded-host", bad)]).host, None, "{bad:?}");
        }
    }

    #[test]
    fn forwarded_header() {
        let t = tp("127.0.0.1, 10.0.0.0/8");
        let r = |v: &str| t.resolve(&hs(&[("forwarded", v)]));
        let f = r("for=192.0.2.60;proto=https;by=203.0.113.43;host=example.com");
        assert_eq!(f.client, addr("192.0.2.60", 0));
        assert_eq!(f.secure, Some(true));
        assert_eq!(f.host.as_deref(), Some(&b"example.com"[..]));
        // Quoted IPv6 with a port, case-insensitive names, OWS.
        let f = r("For=\"[2001:db8:cafe::17]:4711\" ; Proto=http");
        assert_eq!(f.client, addr("2001:db8:cafe::17", 4711));
        assert_eq!(f.secure, Some(false));
        assert_eq!(
            r("for=\"192.0.2.43:47011\"").client,
            addr("192.0.2.43", 47011)
        );
        // Multi-hop: the rightmost untrusted hop, with its own proto/host.
        let f = r(
            "for=9.9.9.9;proto=http, for=1.2.3.4;proto=https;host=a.example, \
                   for=10.0.0.2;proto=http;host=internal",
        );
        assert_eq!(f.client, addr("1.2.3.4", 0));
        assert_eq!(f.secure, Some(true));
        assert_eq!(f.host.as_deref(), Some(&b"a.example"[..]));
        // All trusted: the leftmost.
        assert_eq!(r("for=10.0.0.9, for=10.0.0.2").client, addr("10.0.0.9", 0));
        // Unknown and obfuscated identifiers.
        assert_eq!(r("for=unknown").client, Some(ForwardedFor::Unknown));
        assert_eq!(r("for=_hidden, for=10.0.0.1").client, addr("_hidden", 0));
        assert_eq!(r("for=\"_gazonk:_port\"").client, addr("_gazonk", 0));
        assert_eq!(
            r("for=1.2.3.4, for=unknown, for=10.0.0.1").client,
            Some(ForwardedFor::Unknown)
        );
        // Quoted-pair and commas inside quotes.
        assert_eq!(
            r("for=1.2.3.4;host=\"a\\.b\"").host.as_deref(),
            Some(&b"a.b"[..])
        );
        assert_eq!(
            r("ext=\"a, for=9.9.9.9\";for=1.2.3.4").client,
            addr("1.2.3.4", 0)
        );
        // An element without `for` only sets what it has.
        let f = r("proto=https");
        assert_eq!((f.client, f.secure), (None, Some(true)));
        // Empty list items are skipped.
        assert_eq!(r(", for=1.2.3.4 ,").client, addr("1.2.3.4", 0));
    }

    #[test]
    fn malformed_forwarded_is_ignored() {
        let t = tp("127.0.0.1");
        for bad in [
            "for=",
            "for",
            "for=1.2.3.4;for=5.6.7.8",
            "for=\"1.2.3.4",
            "for=2001:db8::1",
            "for=\"[2001:db8::1\"",
            "for=\"[::1]x\"",
            "for=1.2.3.4:99999",
            "for=1.2.3.4:",
            "for=example.com",
            "for=1.2.3.4 junk",
            "=x",
            "",
            ",",
        ] {
            assert!(t.resolve(&hs(&[("forwarded", bad)])).is_empty(), "{bad:?}");
        }
        // A malformed Forwarded falls back to X-Forwarded-*.
        let h = hs(&[("forwarded", "for=\"x"), ("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(t.resolve(&h).client, addr("1.2.3.4", 0));
        let long = format!("for=1.2.3.4{}", ", for=1.2.3.4".repeat(1000));
        assert!(t.resolve(&hs(&[("forwarded", &long)])).is_empty());
    }

    #[test]
    fn forwarded_wins_over_x_forwarded() {
        let t = tp("127.0.0.1");
        let f = t.resolve(&hs(&[
            ("x-forwarded-for", "5.5.5.5"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=1.2.3.4"),
        ]));
        assert_eq!(f.client, addr("1.2.3.4", 0));
        assert_eq!(f.secure, None);
    }

    #[test]
    fn apply_says_whether_the_client_changed() {
        use crate::asgi::{ConnectionInfo, HttpVersion};
        let peer = Address {
            host: "127.0.0.1".into(),
            port: 5000,
        };
        let conn = ConnectionInfo {
            client: Some(peer.clone()),
            ..Default::default()
        };
        let scope = || HttpScope::new(HttpVersion::Http11, b"GET", &SLASH, hs(&[]), &conn).unwrap();
        let forwarded = |client| Forwarded {
            client,
            ..Forwarded::default()
        };
        let mut s = scope();
        assert!(!forwarded(None).apply(&mut s));
        assert!(!forwarded(Some(ForwardedFor::Address(peer.clone()))).apply(&mut s));
        assert_eq!(s.client.as_ref(), Some(&peer));
        assert!(forwarded(Some(ForwardedFor::Unknown)).apply(&mut s));
        assert!(!forwarded(Some(ForwardedFor::Unknown)).apply(&mut s));
        let other = Address {
            host: "1.2.3.4".into(),
            port: 0,
        };
        assert!(forwarded(Some(ForwardedFor::Address(other))).apply(&mut scope()));
    }

    #[test]
    fn apply_to_scope() {
        use crate::asgi::{ConnectionInfo, HttpVersion, WebSocketScope};
        let conn = ConnectionInfo {
            client: Some(Address {
                host: "127.0.0.1".into(),
                port: 5000,
            }),
            ..Default::default()
        };
        let headers = hs(&[
            ("host", "internal:8000"),
            ("forwarded", "for=1.2.3.4;proto=https;host=a.example"),
        ]);
        let mut s =
            HttpScope::new(HttpVersion::Http11, b"GET", &SLASH, headers.clone(), &conn).unwrap();
        tp("127.0.0.1").resolve(&s.headers).apply(&mut s);
        assert_eq!(
            s.client,
            Some(Address {
                host: "1.2.3.4".into(),
                port: 0
            })
        );
        assert_eq!(s.scheme, "https");
        assert_eq!(
            s.headers[0],
            (
                Bytes::from_static(b"host"),
                Bytes::from_static(b"a.example")
            )
        );
        assert_eq!(WebSocketScope::new(s).http.scheme, "wss");
        // No host header yet: one is added first.
        let mut s = HttpScope::new(HttpVersion::Http10, b"GET", &SLASH, hs(&[]), &conn).unwrap();
        Forwarded {
            client: Some(ForwardedFor::Unknown),
            secure: Some(false),
            host: Some(Bytes::from_static(b"h")),
        }
        .apply(&mut s);
        assert_eq!(s.client, None);
        assert_eq!(s.scheme, "http");
        assert_eq!(s.headers, hs(&[("host", "h")]));
    }
}
