//! The typed values of [`ServerConfig`](super::ServerConfig) and their
//! spellings. Each enum's names and aliases are declared once, with clap's
//! `ValueEnum`, and read the same way from the command line, the
//! environment, the settings file and the Python API's JSON (where a
//! number or a boolean is read as its text: `ssl_cert_reqs=2`,
//! `websockets=True`, `log_level=logging.DEBUG`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use clap::ValueEnum;
use cormorant_core::http;
use serde::{Deserializer, Serializer, de};

/// Which HTTP versions a worker serves (`--http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HttpVersions {
    /// HTTP/1.1, and HTTP/2 by ALPN or h2c prior knowledge.
    #[value(alias = "h11", alias = "httptools")]
    Auto,
    /// HTTP/1.1 only.
    #[value(name = "1", alias = "http1", alias = "1.1")]
    Http1,
    /// HTTP/2 only (h2c prior knowledge on cleartext).
    #[value(name = "2", alias = "http2")]
    Http2,
}

impl HttpVersions {
    /// The protocols served, for the startup line.
    pub fn names(self) -> &'static str {
        match self {
            Self::Auto => "HTTP/1.1, HTTP/2",
            Self::Http1 => "HTTP/1.1",
            Self::Http2 => "HTTP/2",
        }
    }

    /// Whether HTTP/2 is served at all.
    pub fn http2(self) -> bool {
        self != Self::Http1
    }

    /// The ALPN protocols offered over TLS, in preference order.
    pub fn alpn(self) -> Vec<Vec<u8>> {
        match self {
            Self::Http1 => vec![b"http/1.1".to_vec()],
            Self::Http2 => vec![b"h2".to_vec()],
            Self::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }
}

/// WebSocket support (`--ws`). uvicorn names its implementations; every
/// one of them means the core's here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WsMode {
    /// WebSocket upgrades are accepted.
    #[value(alias = "websockets", alias = "websockets-sansio", alias = "wsproto")]
    #[value(alias = "true")]
    Auto,
    /// Upgrade requests are served as plain HTTP.
    #[value(alias = "false")]
    None,
}

/// The PROXY protocol header expected from trusted peers
/// (`--proxy-protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProxyProtocol {
    /// No header is read; a peer that sends one gets 400.
    Off,
    /// Version 1 (text), required from trusted peers.
    V1,
    /// Version 2 (binary), required from trusted peers.
    V2,
    /// Either version when a trusted peer sends one, else a plain
    /// connection (for switching a fleet over without downtime).
    Auto,
}

impl ProxyProtocol {
    /// What core expects of a trusted peer; None when off.
    pub fn expect(self) -> Option<cormorant_core::proxy_protocol::Expect> {
        use cormorant_core::proxy_protocol::{Accept, Expect};
        match self {
            Self::Off => None,
            Self::V1 => Some(Expect::Required(Accept::V1)),
            Self::V2 => Some(Expect::Required(Accept::V2)),
            Self::Auto => Some(Expect::Optional(Accept::Any)),
        }
    }
}

/// The Python event loop (`--loop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Loop {
    /// uvloop when it is installed, else asyncio.
    Auto,
    /// The standard library's loop.
    Asyncio,
    /// uvloop.
    Uvloop,
}

/// The application interface (`--interface`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Interface {
    /// Detected from the application callable.
    Auto,
    /// ASGI 3.0.
    Asgi,
    /// WSGI (PEP 3333).
    Wsgi,
}

/// The ASGI lifespan protocol (`--lifespan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lifespan {
    /// Used when the app supports it.
    Auto,
    /// Required: an app that does not support it fails to start.
    On,
    /// Not used.
    Off,
}

/// How much is logged (`--log-level`). Python's logging numbers are
/// accepted as aliases (`logging.DEBUG` is 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Level {
    /// Every line, including protocol detail.
    #[value(alias = "5")]
    Trace,
    /// Diagnostics (connection errors, rejected input).
    #[value(alias = "10", alias = "notset", alias = "0")]
    Debug,
    /// Startup, shutdown, worker changes.
    #[value(alias = "20")]
    Info,
    /// Something is wrong but serving goes on.
    #[value(alias = "30", alias = "warn")]
    Warning,
    /// A request or worker failed.
    #[value(alias = "40")]
    Error,
    /// Serving stops.
    #[value(alias = "50", alias = "fatal")]
    Critical,
}

impl Level {
    /// The level on the numeric scale Python's logging uses, which the C
    /// API's log callback uses too: 10 debug, 20 info, 30 warning, 40
    /// error, 50 critical (5: trace, as uvicorn has it).
    pub fn number(self) -> u8 {
        match self {
            Self::Trace => 5,
            Self::Debug => 10,
            Self::Info => 20,
            Self::Warning => 30,
            Self::Error => 40,
            Self::Critical => 50,
        }
    }
}

/// Which client certificates are asked for (`--ssl-cert-reqs`). uvicorn
/// spells these `0`, `1`, `2` (`ssl.VerifyMode`); granian's
/// `--ssl-client-verify` is `required`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ClientAuth {
    /// No certificate is asked for (`CERT_NONE`).
    #[default]
    #[value(alias = "0", alias = "cert_none", alias = "false")]
    None,
    /// A certificate is asked for; none, or one that fails verification, is
    /// still accepted, and the failure is reported in the ASGI `tls` extension.
    #[value(alias = "1", alias = "cert_optional")]
    Optional,
    /// A certificate that verifies against `--ssl-ca-certs` is required;
    /// otherwise the handshake fails.
    #[value(alias = "2", alias = "cert_required", alias = "true")]
    Required,
}

/// Writes a value's name (its command-line spelling).
fn write_name(v: &impl ValueEnum, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let name = v.to_possible_value().expect("no variant is skipped");
    f.write_str(name.get_name())
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_name(self, f)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_name(self, f)
    }
}

/// The oldest TLS version the server accepts (`--ssl-protocol-min`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum TlsVersionMin {
    /// TLS 1.2 and 1.3.
    #[default]
    #[value(name = "tls1.2", alias = "1.2", alias = "tlsv1.2", alias = "tlsv1_2")]
    Tls12,
    /// TLS 1.3 only.
    #[value(name = "tls1.3", alias = "1.3", alias = "tlsv1.3", alias = "tlsv1_3")]
    Tls13,
}

/// Serde for the enums above: written as their name, read from any of
/// their spellings (a number or boolean counts as its text).
pub(super) mod choice {
    use super::*;

    /// Writes the value's name.
    pub(crate) fn serialize<S: Serializer, T: ValueEnum>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        let name = v.to_possible_value().expect("no variant is skipped");
        s.serialize_str(name.get_name())
    }

    /// Reads any spelling of a value.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: ValueEnum>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = d.deserialize_any(Text)?;
        T::from_str(&text, true).map_err(|_| {
            let names: Vec<_> = T::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value())
                .map(|v| v.get_name().to_owned())
                .collect();
            de::Error::custom(format!(
                "invalid value {text:?}: expected one of {}",
                names.join(", ")
            ))
        })
    }
}

/// A scalar read as its text.
struct Text;

impl de::Visitor<'_> for Text {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// A number of seconds from the command line: not negative, finite.
pub(super) fn parse_seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(v)
        .map_err(|_| format!("{s:?} is not a number of seconds, not negative"))
}

/// `--workers`: a count, or `auto` (read as 0, resolved when serving).
pub(super) fn parse_workers(s: &str) -> Result<usize, String> {
    match s.trim() {
        "auto" => Ok(0),
        n => n
            .parse()
            .map_err(|_| format!("{s:?} is not a number of workers or auto")),
    }
}

/// Serde for `workers`: a number, or `"auto"` (0).
pub(super) mod worker_count {
    use super::*;

    /// Writes the count, or `"auto"` for 0.
    pub(crate) fn serialize<S: Serializer>(v: &usize, s: S) -> Result<S::Ok, S::Error> {
        match v {
            0 => s.serialize_str("auto"),
            n => s.serialize_u64(*n as u64),
        }
    }

    /// Reads a count or `"auto"`.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Count {
            Number(usize),
            Word(String),
        }
        match <Count as serde::Deserialize>::deserialize(d)? {
            Count::Number(n) => Ok(n),
            Count::Word(w) => parse_workers(&w).map_err(de::Error::custom),
        }
    }
}

/// `--umask`: an octal mode mask (`022`, `0o022`), at most `0o777`.
pub(super) fn parse_umask(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal mask such as 022"))
}

/// Serde for `umask`: a number (`0o022` from Python), or octal text.
pub(super) mod umask {
    use super::*;

    /// Writes the mask as octal text.
    pub(crate) fn serialize<S: Serializer>(v: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(m) => s.serialize_str(&format!("{m:03o}")),
            None => s.serialize_none(),
        }
    }

    /// Reads a number, octal text or `null`.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Mask {
            Number(u32),
            Text(String),
        }
        match <Option<Mask> as serde::Deserialize>::deserialize(d)? {
            None => Ok(None),
            Some(Mask::Number(m)) if m <= 0o777 => Ok(Some(m)),
            Some(Mask::Number(m)) => {
                Err(de::Error::custom(format!("umask {m:o} is more than 777")))
            }
            Some(Mask::Text(t)) => parse_umask(&t).map(Some).map_err(de::Error::custom),
        }
    }
}

/// Serde for durations: a number of seconds (`null` reads as 0, which
/// means "off" wherever 0 is allowed).
pub(super) mod seconds {
    use super::*;

    /// Writes seconds as a number.
    pub(crate) fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(v.as_secs_f64())
    }

    /// Reads a non-negative number of seconds, or `null`.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v: Option<f64> = serde::Deserialize::deserialize(d)?;
        Duration::try_from_secs_f64(v.unwrap_or(0.0))
            .map_err(|_| de::Error::custom("expected a number of seconds, not negative"))
    }

    /// Serde for `Option<Duration>`: `null` is None.
    pub(crate) mod optional {
        use super::*;

        /// Writes seconds as a number, None as `null`.
        pub(crate) fn serialize<S: Serializer>(
            v: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.serialize_some(&v.as_secs_f64()),
                None => s.serialize_none(),
            }
        }

        /// Reads a non-negative number of seconds, or `null`.
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            let v: Option<f64> = serde::Deserialize::deserialize(d)?;
            v.map(Duration::try_from_secs_f64)
                .transpose()
                .map_err(|_| de::Error::custom("expected a number of seconds, not negative"))
        }
    }
}

/// One response field added to every response (`--header NAME:VALUE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeader {
    /// The field name, lowercased.
    pub name: String,
    /// The field value, trimmed.
    pub value: String,
}

impl FromStr for ResponseHeader {
    type Err = String;

    fn from_str(h: &str) -> Result<Self, String> {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("invalid header {h:?}: expected NAME:VALUE"))?;
        Self::new(name, value).map_err(|e| format!("{e} in {h:?}"))
    }
}

impl ResponseHeader {
    fn new(name: &str, value: &str) -> Result<Self, String> {
        let (name, value) = (name.trim(), value.trim());
        if !http::is_token(name.as_bytes()) {
            return Err("invalid header name".into());
        }
        if !http::is_field_value(value.as_bytes()) {
            return Err("invalid header value".into());
        }
        Ok(Self {
            name: name.to_ascii_lowercase(),
            value: value.to_owned(),
        })
    }
}

impl fmt::Display for ResponseHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.value)
    }
}

impl serde::Serialize for ResponseHeader {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ResponseHeader {
    /// `"name:value"`, or a `[name, value]` pair (the Python API's tuples).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Pair(String, String),
        }
        match Form::deserialize(d)? {
            Form::Text(t) => t.parse(),
            Form::Pair(n, v) => Self::new(&n, &v).map_err(|e| format!("{e} in {n:?}")),
        }
        .map_err(de::Error::custom)
    }
}

/// Serde for lists that the Python API may give as one item.
pub(super) mod one_or_many {
    use super::*;
    use serde::Deserialize;

    /// One string or a list of them.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        One(String),
        Many(Vec<String>),
    }

    /// Reads one string or a list of them.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match Option::<Form>::deserialize(d)? {
            None => Vec::new(),
            Some(Form::One(s)) => vec![s],
            Some(Form::Many(v)) => v,
        })
    }

    /// Reads a comma-separated list, or a list of strings joined by commas
    /// (uvicorn's `forwarded_allow_ips` takes either).
    pub(crate) fn joined<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Form>::deserialize(d)?.map(|f| match f {
            Form::One(s) => s,
            Form::Many(v) => v.join(","),
        }))
    }
}
