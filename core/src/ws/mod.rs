//! WebSocket server connection, sans-IO (RFC 6455), with permessage-deflate
//! (RFC 7692).
//!
//! The opening handshake is an HTTP/1.1 exchange handled by [`crate::h1`]:
//! [`Handshake::from_request`] validates the upgrade request,
//! [`accept_key`] computes `Sec-WebSocket-Accept` and
//! [`Handshake::negotiate_deflate`] picks the compression parameters. After
//! the `101` response, the bytes belong to a [`Connection`].
//!
//! # Call order (the driver's duties)
//! 1. The driver MUST feed every byte it reads with
//!    [`Connection::handle_bytes`] and the end of input with
//!    [`Connection::handle_eof`] (never an empty slice).
//! 2. It MUST call [`Connection::poll_event`] until it returns
//!    [`Event::NeedData`] (read more) or [`Event::Closed`].
//! 3. It sends with [`Connection::send_text`], [`Connection::send_binary`],
//!    [`Connection::send_ping`] and [`Connection::send_close`], and MUST drain
//!    [`Connection::poll_transmit`] to the socket after every call that may
//!    queue output (`poll_event` does: pongs and close replies are automatic).
//! 4. Once [`Connection::is_closed`] is true and the output is written, the
//!    driver closes the TCP connection (RFC 6455 §7.1.1: the server closes
//!    first).
//!
//! `NeedData` and `Closed` are level-triggered; every other event is
//! edge-triggered (returned once).

mod conn;
mod deflate;
mod frame;
mod handshake;
mod utf8;

pub use conn::{Connection, MIN_COMPRESS_SIZE};
pub use handshake::{
    DeflateOffer, DeflateParams, Handshake, HandshakeError, accept_key, denial_head,
};

use bytes::Bytes;

/// Limits and options of one connection.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest message accepted, in bytes, after reassembly and inflation;
    /// past it the connection is closed with 1009. 16 MiB: far above what
    /// chat-like and RPC traffic uses, yet it bounds memory per connection
    /// (the same default as tungstenite's `max_message_size` order of size).
    pub max_message_size: usize,
    /// Largest frame payload accepted, in bytes, judged from the frame
    /// header before any payload is buffered; past it, 1009. 16 MiB, like
    /// the message limit: a frame is buffered whole before it is handed on.
    pub max_frame_size: usize,
    /// The permessage-deflate parameters, when the handshake negotiated the
    /// extension (from [`Handshake::negotiate_deflate`]).
    pub deflate: Option<DeflateParams>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_message_size: 16 * 1024 * 1024,
            max_frame_size: 16 * 1024 * 1024,
            deflate: None,
        }
    }
}

/// What [`Connection::poll_event`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete text message, reassembled and UTF-8 validated.
    Text(String),
    /// A complete binary message.
    Binary(Bytes),
    /// A ping was received; the pong answering it is already queued in the
    /// output (RFC 6455 §5.5.2), unless a close frame was sent before.
    Ping(Bytes),
    /// A pong was received (solicited or not, RFC 6455 §5.5.3).
    Pong(Bytes),
    /// The peer's close frame; `code` is 1005 when the frame had no payload
    /// (RFC 6455 §7.1.5). If no close frame had been sent, the reply is
    /// already queued (RFC 6455 §5.5.1). Only [`Event::Closed`] follows.
    Close {
        /// The status code (RFC 6455 §7.4).
        code: u16,
        /// The reason, possibly empty.
        reason: String,
    },
    /// More bytes are needed before anything else can happen.
    NeedData,
    /// Nothing more will come: the peer's close frame was already reported,
    /// or an error was.
    Closed,
    /// The peer broke the protocol (or the input ended early). A close frame
    /// with [`WsError::close_code`] is already queued (except for
    /// [`WsError::Incomplete`]); the driver MUST write the output and close.
    /// Only [`Event::Closed`] follows.
    Error(WsError),
}

/// A failure of the peer: why the connection is being failed (RFC 6455
/// §7.1.7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// A framing or protocol rule was broken; close code 1002.
    #[error("websocket protocol error: {0}")]
    Protocol(&'static str),
    /// A text message or a close reason was not valid UTF-8; close code 1007
    /// (RFC 6455 §8.1).
    #[error("invalid utf-8 in text message or close reason")]
    InvalidUtf8,
    /// A frame or message exceeded the configured limits; close code 1009.
    #[error("websocket message too big")]
    TooBig,
    /// The peer did not answer our ping in time (the keep-alive ping of
    /// [`crate::server::Connection`]); close code 1011, as the `websockets`
    /// library sends.
    #[error("keepalive ping timeout")]
    PingTimeout,
    /// The input ended before a close frame; code 1006, never sent on the
    /// wire (RFC 6455 §7.1.5).
    #[error("connection closed without a close frame")]
    Incomplete,
}

impl WsError {
    /// The close code this error calls for (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> u16 {
        match self {
            Self::Protocol(_) => 1002,
            Self::InvalidUtf8 => 1007,
            Self::TooBig => 1009,
            Self::PingTimeout => 1011,
            Self::Incomplete => 1006,
        }
    }
}

/// Whether a close code may appear in a close frame (RFC 6455 §7.4.1,
/// §7.4.2, and the IANA registry: 1012-1014 were registered later).
/// 1004, 1005, 1006 and 1015 are reserved for local use, 1016-2999 are
/// unassigned, 3000-4999 belong to libraries and applications.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}
