//! HTTP/1.1 server connection, sans-IO, in the style of h11 (RFC 9112).
//!
//! A [`Connection`] is fed bytes read from a socket and yields [`Event`]s; the
//! response is given to it as a [`ResponseHead`] plus body chunks and comes out
//! as bytes to write.
//!
//! # Call order (the driver's duties)
//! 1. The driver MUST feed every byte it reads with [`Connection::handle_bytes`]
//!    and end of input with [`Connection::handle_eof`] (never an empty slice).
//! 2. It MUST call [`Connection::poll_event`] until it returns
//!    [`Event::NeedData`] (read more), [`Event::Paused`] (the request is
//!    complete; answer it) or [`Event::Closed`].
//! 3. It answers each request with [`Connection::send_response`], then
//!    [`Connection::send_body`] any number of times and
//!    [`Connection::send_end`] once, and drains [`Connection::poll_transmit`]
//!    to the socket after each call.
//! 4. When the response is complete, [`Connection::start_next_cycle`] readies
//!    the next request on a keep-alive connection; if
//!    [`Connection::is_keep_alive`] is false the driver MUST close after the
//!    pending output is written.
//!
//! Events are level-triggered: `poll_event` keeps returning `NeedData` or
//! `Paused` until the input that changes that arrives.

mod conn;
mod decode;
mod encode;
mod head;

pub use conn::Connection;

use bytes::Bytes;

use crate::PeerError;

/// Limits and options of one connection. Every limit has a reason for its
/// default in its doc comment.
#[derive(Debug, Clone)]
pub struct Config {
    /// Longest request-line accepted, in bytes; past it, 414. 8 KiB is what
    /// common proxies (nginx `large_client_header_buffers`) accept.
    pub max_request_line: usize,
    /// Largest request head (request-line plus headers), in bytes; past it,
    /// 431. 64 KiB leaves room for large cookies yet bounds memory.
    pub max_head_size: usize,
    /// Most header fields in one request; past it, 431. 100 is what most
    /// servers allow (hyper, h11, uvicorn via httptools).
    pub max_headers: usize,
    /// Largest request body, in bytes, or `None` for no limit; past it, 413.
    pub max_body_size: Option<u64>,
    /// Longest chunk-size line (size plus extensions), in bytes; past it, 400.
    /// 4 KiB: extensions are almost never used, and long ones are an attack.
    pub max_chunk_line: usize,
    /// Value of the `Server` response header, or `None` to send none.
    pub server_header: Option<Bytes>,
    /// Whether to add a `Date` header (the value comes from
    /// [`Connection::set_date`]).
    pub date_header: bool,
    /// Headers added to every response, after Server and Date.
    pub extra_headers: Vec<(Bytes, Bytes)>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_request_line: 8 * 1024,
            max_head_size: 64 * 1024,
            max_headers: 100,
            max_body_size: None,
            max_chunk_line: 4 * 1024,
            server_header: Some(Bytes::from_static(b"cormorant")),
            date_header: true,
            extra_headers: Vec::new(),
        }
    }
}

/// HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: no chunked responses, keep-alive only when asked for.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// How the request body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body at all.
    Empty,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed, validated request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method token, as sent (methods are case-sensitive).
    pub method: Bytes,
    /// The request-target, as sent (origin-form, absolute-form, `*`...).
    pub target: Bytes,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// Header fields in order, duplicates kept; names lowercased.
    pub headers: Vec<(Bytes, Bytes)>,
    /// Body framing.
    pub body: BodyKind,
    /// Whether the client sent `Expect: 100-continue` (HTTP/1.1 only).
    pub expect_continue: bool,
    /// The protocol named by `Upgrade` when `Connection` has the `upgrade`
    /// token, lowercased (`websocket`, `h2c`...).
    pub upgrade: Option<Bytes>,
    /// Whether the client allows the connection to stay open after this
    /// exchange (version default, adjusted by `Connection: close/keep-alive`).
    pub keep_alive: bool,
}

impl RequestHead {
    /// The first value of header `name` (given lowercase), if any.
    pub fn header(&self, name: &[u8]) -> Option<&Bytes> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_ref() == name)
            .map(|(_, v)| v)
    }
}

/// A response head to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code, 100..=999 (1xx other than 101 are informational and
    /// sent with [`Connection::send_informational`]).
    pub status: u16,
    /// Header fields as given by the application. Names are matched
    /// case-insensitively; `content-length` and `transfer-encoding` given here
    /// decide the framing.
    pub headers: Vec<(Bytes, Bytes)>,
}

/// What a connection waits for from the peer ([`Connection::waiting`]), so
/// [`crate::server::Connection`] knows which timer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// Nothing of the next request has arrived (the keep-alive timer).
    NextRequest,
    /// Part of a request head has arrived (the head timer).
    Head,
    /// The request body is being read (the body idle timer, while the
    /// driver reads).
    Body,
}

/// What [`Connection::poll_event`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new request. Body events follow unless its body is [`BodyKind::Empty`]
    /// (then [`Event::EndOfMessage`] follows directly).
    RequestHead(RequestHead),
    /// A piece of the request body (never empty).
    BodyChunk(Bytes),
    /// The request body is complete (trailers of a chunked body are dropped).
    EndOfMessage,
    /// More bytes are needed before anything else can happen.
    NeedData,
    /// The current request was fully read; nothing more is read until the
    /// response is complete and [`Connection::start_next_cycle`] is called.
    Paused,
    /// The peer closed the connection cleanly between requests, or the
    /// connection is done (after an error or a non-keep-alive exchange).
    Closed,
    /// The peer broke the protocol. If no response had started for the
    /// current request, an error response with
    /// [`PeerError::status_hint`] and `Connection: close` is already queued in
    /// the output. The driver MUST write the output and close.
    Error(PeerError),
}
