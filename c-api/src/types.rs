//! The plain C types of the API: results, events, borrowed views, limits.

use std::ptr;

use cormorant_core::UsageError;

/// The outcome of a call. `CORMORANT_RESULT_OK` is zero.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cormorant_result {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// The call is not allowed in the handle's current state (for example a
    /// response before a request, or `next` when the connection must close).
    InvalidState = 2,
    /// An argument had an invalid value (bad status, bad header, non-UTF-8
    /// text, a count larger than the pending output...).
    InvalidArgument = 3,
    /// The response body did not match its declared `content-length`.
    LengthMismatch = 4,
    /// The request is not a valid WebSocket upgrade (RFC 6455 §4.2.1);
    /// nothing was queued: deny it with `cormorant_conn_ws_deny`.
    BadHandshake = 5,
    /// A panic was caught inside the library; the handle is poisoned.
    Panic = 6,
    /// The peer went away, or the server stopped: nothing more can be
    /// received or sent on this request or WebSocket.
    Disconnected = 7,
    /// The server could not start (bad configuration, address in use,
    /// unreadable certificate...); the message says why.
    StartFailed = 8,
    /// The call would have to wait, and it was made on the server's I/O
    /// thread (`on_io_thread` callbacks must not block): hand the request or
    /// WebSocket to another thread for blocking work.
    WouldBlock = 9,
}

/// What `cormorant_conn_poll` found.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cormorant_event_kind {
    /// More input is needed: read from the socket and feed it. Level-triggered.
    NeedData = 0,
    /// A new request head: `method`, `target`, `version_minor`, `headers`
    /// and the flags are set. Edge-triggered.
    RequestHead = 1,
    /// A piece of the request body in `data` (never empty). Edge-triggered.
    Body = 2,
    /// The request body is complete. Edge-triggered.
    EndOfMessage = 3,
    /// The request was fully read; nothing more is read until the response
    /// is complete and `cormorant_conn_next` is called. Level-triggered.
    Paused = 4,
    /// A complete WebSocket message in `data`; `is_text` tells text (valid
    /// UTF-8) from binary. Edge-triggered.
    WsMessage = 5,
    /// The peer's WebSocket close frame: `code` and the reason in `data`.
    /// The reply is already queued. Edge-triggered.
    WsClose = 6,
    /// The peer broke the protocol. `code` is the HTTP status (or, in
    /// WebSocket mode, the close code) of the answer already queued, when
    /// one could still be sent. Write the output and close. Edge-triggered.
    ProtocolError = 7,
    /// Nothing more will come: write the output and close. Level-triggered.
    Closed = 8,
    /// The peer's WebSocket ping, its payload in `data`. The pong is
    /// already queued. Edge-triggered.
    WsPing = 9,
    /// The peer's WebSocket pong (an answer to `cormorant_conn_ws_ping`,
    /// or unsolicited), its payload in `data`. Edge-triggered.
    WsPong = 10,
}

/// A borrowed byte string (not NUL-terminated). `ptr` may be NULL when
/// `len` is 0. When produced by the library it is valid until the next call
/// on the handle it came from.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cormorant_str {
    /// First byte.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

/// A borrowed header field. Names from requests are lowercase.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cormorant_header {
    /// Field name.
    pub name: cormorant_str,
    /// Field value.
    pub value: cormorant_str,
}

/// One event, filled by `cormorant_conn_poll`. Fields not listed for the
/// event's kind are zero/NULL. All views are valid until the next call on
/// the handle.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cormorant_event {
    /// What happened.
    pub kind: cormorant_event_kind,
    /// REQUEST_HEAD: the method, as sent.
    pub method: cormorant_str,
    /// REQUEST_HEAD: the request-target, as sent.
    pub target: cormorant_str,
    /// REQUEST_HEAD: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    /// REQUEST_HEAD: the header fields, in order, duplicates kept.
    pub headers: *const cormorant_header,
    /// REQUEST_HEAD: the number of entries in `headers`.
    pub headers_len: usize,
    /// REQUEST_HEAD: whether BODY events may follow.
    pub has_body: bool,
    /// REQUEST_HEAD: whether the client allows another request afterwards.
    pub keep_alive: bool,
    /// REQUEST_HEAD: whether the client asked for `Upgrade: websocket`.
    pub websocket_upgrade: bool,
    /// BODY, WS_MESSAGE: the payload; WS_CLOSE: the reason.
    pub data: cormorant_str,
    /// WS_MESSAGE: whether the message is text.
    pub is_text: bool,
    /// WS_CLOSE: the close code; PROTOCOL_ERROR: the status or close code.
    pub code: u16,
}

/// Connection limits. Start from `cormorant_config_default()`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cormorant_config {
    /// Largest request head in bytes; past it, 431. Default 64 KiB.
    pub max_head_size: usize,
    /// Most header fields per request; past it, 431. Default 100.
    pub max_headers: usize,
    /// Largest request body in bytes, 0 for no limit; past it, 413.
    /// Default 0.
    pub max_body_size: u64,
    /// Largest WebSocket message (and frame) in bytes; past it, close code
    /// 1009. Default 16 MiB.
    pub ws_max_message_size: usize,
    /// How long an idle keep-alive connection waits for the next request
    /// before it closes, in milliseconds; 0 for no limit. Default 5000.
    pub keep_alive_timeout_ms: u64,
    /// How long a started request head may take to arrive before a `408`,
    /// in milliseconds; 0 for no limit. Default 30000.
    pub request_head_timeout_ms: u64,
    /// How long the server waits for request body bytes that do not come
    /// before a `408` (or a close, once the response started), in
    /// milliseconds; 0 for no limit. Default 60000.
    pub request_body_timeout_ms: u64,
    /// How often an open WebSocket is pinged, in milliseconds; 0 for
    /// never. Default 20000.
    pub ws_ping_interval_ms: u64,
    /// How long a ping may go unanswered before close 1011, in
    /// milliseconds; 0 to not wait for pongs. Default 20000.
    pub ws_ping_timeout_ms: u64,
    /// After our close frame, how long the peer has to answer before the
    /// connection is dropped, in milliseconds; 0 for no limit. Default 5000.
    pub ws_close_timeout_ms: u64,
}

pub(crate) const fn str_view(b: &[u8]) -> cormorant_str {
    cormorant_str {
        ptr: b.as_ptr(),
        len: b.len(),
    }
}

pub(crate) const EMPTY_STR: cormorant_str = cormorant_str {
    ptr: ptr::null(),
    len: 0,
};

impl cormorant_event {
    pub(crate) const fn of(kind: cormorant_event_kind) -> Self {
        Self {
            kind,
            method: EMPTY_STR,
            target: EMPTY_STR,
            version_minor: 0,
            headers: ptr::null(),
            headers_len: 0,
            has_body: false,
            keep_alive: false,
            websocket_upgrade: false,
            data: EMPTY_STR,
            is_text: false,
            code: 0,
        }
    }
}

impl From<UsageError> for cormorant_result {
    fn from(e: UsageError) -> Self {
        match e {
            UsageError::InvalidState(_) => Self::InvalidState,
            UsageError::LengthMismatch => Self::LengthMismatch,
            _ => Self::InvalidArgument,
        }
    }
}

pub(crate) fn result(r: Result<(), UsageError>) -> cormorant_result {
    r.map_or_else(Into::into, |()| cormorant_result::Ok)
}
