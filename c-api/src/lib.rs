//! C ABI for Cormorant's sans-IO HTTP/1.1 and WebSocket core.
//!
//! One `cormorant_conn` is one accepted TCP connection. It does no I/O:
//! the embedder's event loop (epoll, libuv, asio...) reads bytes from the
//! socket and feeds them in, polls events, answers them, and writes out the
//! bytes the handle produces.
//!
//! # Call order (the driver's duties)
//! 1. The driver MUST feed every byte it reads with `cormorant_conn_feed`
//!    and the end of input with `cormorant_conn_feed_eof`.
//! 2. It MUST call `cormorant_conn_poll` until it yields `NEED_DATA`,
//!    `PAUSED` or `CLOSED`.
//! 3. It answers a request with `cormorant_conn_respond`,
//!    `cormorant_conn_send_body` (any number of times) and
//!    `cormorant_conn_end`, then readies the next request with
//!    `cormorant_conn_next` (or upgrades with `cormorant_conn_ws_accept`).
//! 4. After every call it MUST drain `cormorant_conn_take_output` /
//!    `cormorant_conn_consume` to the socket, and close the socket once
//!    `cormorant_conn_wants_close` is true and no output is left.
//!
//! # Ownership, lifetimes, threads
//! * Handles are opaque, created by `cormorant_conn_new` and released by
//!   `cormorant_conn_free` exactly once.
//! * Every pointer handed out (event views, output view) is borrowed from the
//!   handle and valid until the next call on that handle.
//! * Every pointer passed in is only read during the call; data is copied.
//! * A handle is not thread-safe: it may move between threads, but calls on
//!   one handle MUST NOT overlap. Different handles are independent.
//! * No panic crosses the boundary: a panic yields `CORMORANT_RESULT_PANIC`
//!   and poisons the handle (every later call on it returns `PANIC`).
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(non_camel_case_types)]

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use bytes::Bytes;
use cormorant_core::h1::{self, BodyKind, RequestHead, ResponseHead, Version};
use cormorant_core::{UsageError, ws};

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
}

/// An HTTP/1.1 (then possibly WebSocket) server connection. Opaque.
pub struct cormorant_conn {
    inner: Conn,
    poisoned: bool,
}

/// The state behind a handle.
struct Conn {
    ws_max: usize,
    h1: h1::Connection,
    ws: Option<ws::Connection>,
    /// The current request head (its bytes back the REQUEST_HEAD views).
    head: Option<RequestHead>,
    header_views: Vec<cormorant_header>,
    /// Backs the `data` view of the last event.
    data: Bytes,
    /// Pending output, contiguous; `out[out_pos..]` is not yet consumed.
    out: Vec<u8>,
    out_pos: usize,
    segments: Vec<Bytes>,
    must_close: bool,
}

const fn str_view(b: &[u8]) -> cormorant_str {
    cormorant_str {
        ptr: b.as_ptr(),
        len: b.len(),
    }
}

const EMPTY_STR: cormorant_str = cormorant_str {
    ptr: ptr::null(),
    len: 0,
};

impl cormorant_event {
    const fn of(kind: cormorant_event_kind) -> Self {
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

fn result(r: Result<(), UsageError>) -> cormorant_result {
    r.map_or_else(Into::into, |()| cormorant_result::Ok)
}

impl Conn {
    fn new(c: &cormorant_config) -> Self {
        let config = h1::Config {
            max_head_size: c.max_head_size,
            max_headers: c.max_headers,
            max_body_size: (c.max_body_size != 0).then_some(c.max_body_size),
            ..h1::Config::default()
        };
        Self {
            ws_max: c.ws_max_message_size,
            h1: h1::Connection::new(config),
            ws: None,
            head: None,
            header_views: Vec::new(),
            data: Bytes::new(),
            out: Vec::new(),
            out_pos: 0,
            segments: Vec::new(),
            must_close: false,
        }
    }

    fn poll(&mut self) -> cormorant_event {
        use cormorant_event_kind as K;
        if let Some(ws) = &mut self.ws {
            loop {
                return match ws.poll_event() {
                    ws::Event::Text(t) => {
                        self.data = Bytes::from(t);
                        cormorant_event {
                            data: str_view(&self.data),
                            is_text: true,
                            ..cormorant_event::of(K::WsMessage)
                        }
                    }
                    ws::Event::Binary(b) => {
                        self.data = b;
                        cormorant_event {
                            data: str_view(&self.data),
                            ..cormorant_event::of(K::WsMessage)
                        }
                    }
                    // Pongs are answered by core; nothing for the driver.
                    ws::Event::Ping(_) | ws::Event::Pong(_) => continue,
                    ws::Event::Close { code, reason } => {
                        self.data = Bytes::from(reason);
                        cormorant_event {
                            data: str_view(&self.data),
                            code,
                            ..cormorant_event::of(K::WsClose)
                        }
                    }
                    ws::Event::NeedData => cormorant_event::of(K::NeedData),
                    ws::Event::Error(e) => {
                        self.must_close = true;
                        cormorant_event {
                            code: e.close_code(),
                            ..cormorant_event::of(K::ProtocolError)
                        }
                    }
                    _ => {
                        self.must_close = true;
                        cormorant_event::of(K::Closed)
                    }
                };
            }
        }
        match self.h1.poll_event() {
            h1::Event::RequestHead(head) => {
                self.header_views = head
                    .headers
                    .iter()
                    .map(|(n, v)| cormorant_header {
                        name: str_view(n),
                        value: str_view(v),
                    })
                    .collect();
                let ev = cormorant_event {
                    method: str_view(&head.method),
                    target: str_view(&head.target),
                    version_minor: u8::from(head.version == Version::Http11),
                    headers: self.header_views.as_ptr(),
                    headers_len: self.header_views.len(),
                    has_body: head.body != BodyKind::Empty,
                    keep_alive: head.keep_alive,
                    websocket_upgrade: head.upgrade.as_deref() == Some(b"websocket"),
                    ..cormorant_event::of(K::RequestHead)
                };
                // Moving the head keeps its heap buffers where the views point.
                self.head = Some(head);
                ev
            }
            h1::Event::BodyChunk(b) => {
                self.data = b;
                cormorant_event {
                    data: str_view(&self.data),
                    ..cormorant_event::of(K::Body)
                }
            }
            h1::Event::EndOfMessage => cormorant_event::of(K::EndOfMessage),
            h1::Event::NeedData => cormorant_event::of(K::NeedData),
            h1::Event::Paused => cormorant_event::of(K::Paused),
            h1::Event::Error(e) => {
                self.must_close = true;
                cormorant_event {
                    code: e.status_hint(),
                    ..cormorant_event::of(K::ProtocolError)
                }
            }
            _ => {
                self.must_close = true;
                cormorant_event::of(K::Closed)
            }
        }
    }

    fn after_end(&mut self) {
        if !self.h1.is_keep_alive() {
            self.must_close = true;
        }
    }

    fn ws_accept(&mut self, subprotocol: Option<&str>) -> cormorant_result {
        if self.ws.is_some() || self.h1.response_started() {
            return cormorant_result::InvalidState;
        }
        let Some(head) = &self.head else {
            return cormorant_result::InvalidState;
        };
        if head.body != BodyKind::Empty {
            return cormorant_result::BadHandshake;
        }
        let Ok(hs) = ws::Handshake::from_request(&head.method, head.version, &head.headers) else {
            return cormorant_result::BadHandshake;
        };
        // The upgrade request has no body: step past its end.
        while let h1::Event::BodyChunk(_) | h1::Event::EndOfMessage = self.h1.poll_event() {}
        let mut headers = vec![
            (
                Bytes::from_static(b"upgrade"),
                Bytes::from_static(b"websocket"),
            ),
            (
                Bytes::from_static(b"connection"),
                Bytes::from_static(b"Upgrade"),
            ),
            (
                Bytes::from_static(b"sec-websocket-accept"),
                Bytes::from(hs.accept()),
            ),
        ];
        if let Some(p) = subprotocol {
            headers.push((
                Bytes::from_static(b"sec-websocket-protocol"),
                Bytes::copy_from_slice(p.as_bytes()),
            ));
        }
        let sent = self.h1.send_response(ResponseHead {
            status: 101,
            headers,
        });
        if let Err(e) = sent.and_then(|()| self.h1.send_end()) {
            return e.into();
        }
        // Move the 101 out before the WebSocket output starts.
        self.collect_output();
        let leftover = self.h1.take_buffered();
        let mut conn = ws::Connection::new(ws::Config {
            max_message_size: self.ws_max,
            max_frame_size: self.ws_max,
            deflate: None,
        });
        if !leftover.is_empty() {
            conn.handle_bytes(&leftover);
        }
        self.ws = Some(conn);
        cormorant_result::Ok
    }

    fn ws_deny(&mut self, status: u16) -> cormorant_result {
        if self.ws.is_some() {
            return cormorant_result::InvalidState;
        }
        let mut headers = vec![(
            Bytes::from_static(b"content-length"),
            Bytes::from_static(b"0"),
        )];
        if status == 426 {
            // RFC 6455 §4.4: name the version we speak.
            headers.push((
                Bytes::from_static(b"sec-websocket-version"),
                Bytes::from_static(b"13"),
            ));
        }
        let sent = self.h1.send_response(ResponseHead { status, headers });
        let r = result(sent.and_then(|()| self.h1.send_end()));
        self.after_end();
        r
    }

    /// Appends every pending segment to the contiguous output buffer.
    fn collect_output(&mut self) {
        self.h1.poll_transmit(&mut self.segments);
        if let Some(ws) = &mut self.ws {
            ws.poll_transmit(&mut self.segments);
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        for seg in self.segments.drain(..) {
            self.out.extend_from_slice(&seg);
        }
    }

    fn wants_close(&self) -> bool {
        self.must_close || self.ws.as_ref().is_some_and(ws::Connection::is_closed)
    }
}

/// Runs `f` on the handle behind `conn`, catching panics.
///
/// # Safety
/// `conn` is NULL or a live handle from `cormorant_conn_new`, not used
/// concurrently.
unsafe fn with_conn(
    conn: *mut cormorant_conn,
    f: impl FnOnce(&mut Conn) -> cormorant_result,
) -> cormorant_result {
    if conn.is_null() {
        return cormorant_result::NullArgument;
    }
    // SAFETY: non-NULL, and by the caller's contract a live, unaliased handle.
    let conn = unsafe { &mut *conn };
    if conn.poisoned {
        return cormorant_result::Panic;
    }
    let inner = &mut conn.inner;
    match catch_unwind(AssertUnwindSafe(|| f(inner))) {
        Ok(r) => r,
        Err(_) => {
            conn.poisoned = true;
            cormorant_result::Panic
        }
    }
}

/// A borrowed slice from a (pointer, length) pair; NULL is allowed only for
/// an empty slice.
///
/// # Safety
/// When `len > 0`, `data` points to `len` readable bytes that stay valid and
/// unmodified for `'a`.
unsafe fn slice<'a>(data: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if data.is_null() {
        return None;
    }
    // SAFETY: non-NULL and, by the caller's contract, `len` readable bytes.
    Some(unsafe { std::slice::from_raw_parts(data, len) })
}

/// The default limits (see each field of `cormorant_config`).
#[unsafe(no_mangle)]
pub extern "C" fn cormorant_config_default() -> cormorant_config {
    let h = h1::Config::default();
    cormorant_config {
        max_head_size: h.max_head_size,
        max_headers: h.max_headers,
        max_body_size: h.max_body_size.unwrap_or(0),
        ws_max_message_size: ws::Config::default().max_message_size,
    }
}

/// A static, NUL-terminated description of `result`. Never NULL; the string
/// lives for the whole program and MUST NOT be freed.
#[unsafe(no_mangle)]
pub extern "C" fn cormorant_strerror(result: cormorant_result) -> *const c_char {
    let s: &'static CStr = match result {
        cormorant_result::Ok => c"success",
        cormorant_result::NullArgument => c"a required pointer argument was NULL",
        cormorant_result::InvalidState => c"call not allowed in the current state",
        cormorant_result::InvalidArgument => c"invalid argument",
        cormorant_result::LengthMismatch => c"response body length does not match content-length",
        cormorant_result::BadHandshake => c"not a valid websocket upgrade request",
        cormorant_result::Panic => c"internal panic; the handle is unusable",
    };
    s.as_ptr()
}

/// Creates a connection handle in `*out`, waiting for its first request.
/// `config` may be NULL for the defaults; it is copied. The caller owns the
/// handle and MUST release it with `cormorant_conn_free`.
///
/// # Safety
/// `config` is NULL or points to a valid `cormorant_config`; `out` is NULL
/// or points to writable storage for a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_new(
    config: *const cormorant_config,
    out: *mut *mut cormorant_conn,
) -> cormorant_result {
    if out.is_null() {
        return cormorant_result::NullArgument;
    }
    let config = if config.is_null() {
        cormorant_config_default()
    } else {
        // SAFETY: non-NULL and, by contract, a valid config.
        unsafe { *config }
    };
    let made = catch_unwind(|| {
        Box::into_raw(Box::new(cormorant_conn {
            inner: Conn::new(&config),
            poisoned: false,
        }))
    });
    match made {
        Ok(conn) => {
            // SAFETY: `out` is non-NULL and writable by contract.
            unsafe { out.write(conn) };
            cormorant_result::Ok
        }
        Err(_) => cormorant_result::Panic,
    }
}

/// Releases a handle and everything it owns. NULL is ignored. The handle and
/// every view it handed out are invalid afterwards.
///
/// # Safety
/// `conn` is NULL or a handle from `cormorant_conn_new` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_free(conn: *mut cormorant_conn) {
    if conn.is_null() {
        return;
    }
    // SAFETY: by contract the pointer came from `Box::into_raw` in
    // `cormorant_conn_new` and is freed only once.
    let boxed = unsafe { Box::from_raw(conn) };
    // A panicking destructor must not unwind into C.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
}

/// Feeds `len` bytes read from the peer (copied). `data` may be NULL only
/// when `len` is 0.
///
/// # Safety
/// `conn` as for every `cormorant_conn_*` call: NULL or a live handle not
/// used concurrently. `data` points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_feed(
    conn: *mut cormorant_conn,
    data: *const u8,
    len: usize,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    let Some(data) = (unsafe { slice(data, len) }) else {
        return cormorant_result::NullArgument;
    };
    // SAFETY: forwarded caller contract.
    unsafe {
        with_conn(conn, |c| {
            match &mut c.ws {
                Some(ws) => ws.handle_bytes(data),
                None => c.h1.handle_bytes(data),
            }
            cormorant_result::Ok
        })
    }
}

/// Tells the handle the peer closed its sending side (read returned 0).
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_feed_eof(conn: *mut cormorant_conn) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_conn(conn, |c| {
            match &mut c.ws {
                Some(ws) => ws.handle_eof(),
                None => c.h1.handle_eof(),
            }
            cormorant_result::Ok
        })
    }
}

/// Writes the next event into `*out`. The views in it are valid until the
/// next call on `conn`. Call until NEED_DATA, PAUSED or CLOSED.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently; `out` is NULL or
/// points to a writable `cormorant_event`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_poll(
    conn: *mut cormorant_conn,
    out: *mut cormorant_event,
) -> cormorant_result {
    if out.is_null() {
        return cormorant_result::NullArgument;
    }
    let f = |c: &mut Conn| {
        let ev = c.poll();
        // SAFETY: `out` is non-NULL and writable by contract.
        unsafe { out.write(ev) };
        cormorant_result::Ok
    };
    // SAFETY: forwarded caller contract.
    unsafe { with_conn(conn, f) }
}

/// Queues the response head for the current request. `headers` (copied) may
/// be NULL when `n` is 0. A `content-length` header fixes the body length;
/// without one the body is chunked (HTTP/1.1) or close-delimited (HTTP/1.0).
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently; `headers` points
/// to `n` headers whose views point to readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_respond(
    conn: *mut cormorant_conn,
    status: u16,
    headers: *const cormorant_header,
    n: usize,
) -> cormorant_result {
    let mut fields = Vec::new();
    if n > 0 {
        if headers.is_null() {
            return cormorant_result::NullArgument;
        }
        // SAFETY: non-NULL, and by contract `n` readable headers.
        let given = unsafe { std::slice::from_raw_parts(headers, n) };
        for h in given {
            // SAFETY: by contract each view points to readable bytes.
            let (name, value) = unsafe {
                (
                    slice(h.name.ptr, h.name.len),
                    slice(h.value.ptr, h.value.len),
                )
            };
            let (Some(name), Some(value)) = (name, value) else {
                return cormorant_result::NullArgument;
            };
            fields.push((Bytes::copy_from_slice(name), Bytes::copy_from_slice(value)));
        }
    }
    // SAFETY: forwarded caller contract.
    unsafe {
        with_conn(conn, |c| {
            if c.ws.is_some() {
                return cormorant_result::InvalidState;
            }
            result(c.h1.send_response(ResponseHead {
                status,
                headers: fields,
            }))
        })
    }
}

/// Queues `len` bytes (copied) of response body. `data` may be NULL only
/// when `len` is 0.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently; `data` points to
/// `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_send_body(
    conn: *mut cormorant_conn,
    data: *const u8,
    len: usize,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    let Some(data) = (unsafe { slice(data, len) }) else {
        return cormorant_result::NullArgument;
    };
    // SAFETY: forwarded caller contract.
    unsafe {
        with_conn(conn, |c| {
            if c.ws.is_some() {
                return cormorant_result::InvalidState;
            }
            result(c.h1.send_body(Bytes::copy_from_slice(data)))
        })
    }
}

/// Ends the response. If the connection cannot be reused,
/// `cormorant_conn_wants_close` becomes true.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_end(conn: *mut cormorant_conn) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_conn(conn, |c| {
            if c.ws.is_some() {
                return cormorant_result::InvalidState;
            }
            let r = result(c.h1.send_end());
            c.after_end();
            r
        })
    }
}

/// Readies the handle for the next request after a complete exchange
/// (keep-alive). INVALID_STATE if the exchange is not complete or the
/// connection must close.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_next(conn: *mut cormorant_conn) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_conn(conn, |c| {
            if c.ws.is_some() {
                return cormorant_result::InvalidState;
            }
            let r = result(c.h1.start_next_cycle());
            if r == cormorant_result::Ok {
                c.head = None;
                c.header_views.clear();
            }
            r
        })
    }
}

/// Accepts the WebSocket upgrade of the current request: validates it
/// (RFC 6455 §4.2.1), queues the `101` with `Sec-WebSocket-Accept` and
/// `subprotocol` (a NUL-terminated UTF-8 string, or NULL for none), and
/// switches the handle to WebSocket mode: later events are WS_MESSAGE,
/// WS_CLOSE... BAD_HANDSHAKE (nothing queued) if the request is not a valid
/// upgrade. No extension (permessage-deflate) is negotiated.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently; `subprotocol` is
/// NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_ws_accept(
    conn: *mut cormorant_conn,
    subprotocol: *const c_char,
) -> cormorant_result {
    let sub = if subprotocol.is_null() {
        None
    } else {
        // SAFETY: non-NULL and NUL-terminated by contract.
        match unsafe { CStr::from_ptr(subprotocol) }.to_str() {
            Ok(s) => Some(s),
            Err(_) => return cormorant_result::InvalidArgument,
        }
    };
    // SAFETY: forwarded caller contract.
    unsafe { with_conn(conn, |c| c.ws_accept(sub)) }
}

/// Refuses the WebSocket upgrade with an empty `status` response (426 adds
/// `Sec-WebSocket-Version: 13`, RFC 6455 §4.4). Then `cormorant_conn_next`
/// as after any response.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_ws_deny(
    conn: *mut cormorant_conn,
    status: u16,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe { with_conn(conn, |c| c.ws_deny(status)) }
}

/// Queues a WebSocket message: text (`data` MUST be UTF-8, else
/// INVALID_ARGUMENT) or binary. Copied. INVALID_STATE before
/// `cormorant_conn_ws_accept` or after a close was sent.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently; `data` points to
/// `len` readable bytes (NULL allowed when `len` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_ws_send(
    conn: *mut cormorant_conn,
    is_text: bool,
    data: *const u8,
    len: usize,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    let Some(data) = (unsafe { slice(data, len) }) else {
        return cormorant_result::NullArgument;
    };
    // SAFETY: forwarded caller contract.
    unsafe {
        with_conn(conn, |c| {
            let Some(ws) = &mut c.ws else {
                return cormorant_result::InvalidState;
            };
            if is_text {
                match std::str::from_utf8(data) {
                    Ok(t) => result(ws.send_text(t)),
                    Err(_) => cormorant_result::InvalidArgument,
                }
            } else {
                result(ws.send_binary(data))
            }
        })
    }
}

/// Queues a WebSocket close frame with `code` (RFC 6455 §7.4) and a UTF-8
/// `reason` of `reason_len` bytes (NULL allowed when 0). After the peer's
/// reply (WS_CLOSE, then CLOSED) the driver closes the socket.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently; `reason` points to
/// `reason_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_ws_close(
    conn: *mut cormorant_conn,
    code: u16,
    reason: *const u8,
    reason_len: usize,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    let Some(reason) = (unsafe { slice(reason, reason_len) }) else {
        return cormorant_result::NullArgument;
    };
    let Ok(reason) = std::str::from_utf8(reason) else {
        return cormorant_result::InvalidArgument;
    };
    // SAFETY: forwarded caller contract.
    unsafe {
        with_conn(conn, |c| match &mut c.ws {
            Some(ws) => result(ws.send_close(code, reason)),
            None => cormorant_result::InvalidState,
        })
    }
}

/// Sets `*data` and `*len` to the bytes waiting to be written to the socket
/// (`*len` is 0 when there are none). The view is valid until the next call
/// on `conn`. After writing some of them, call `cormorant_conn_consume`.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently; `data` and `len`
/// are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_take_output(
    conn: *mut cormorant_conn,
    data: *mut *const u8,
    len: *mut usize,
) -> cormorant_result {
    if data.is_null() || len.is_null() {
        return cormorant_result::NullArgument;
    }
    let f = |c: &mut Conn| {
        c.collect_output();
        let pending = &c.out[c.out_pos..];
        // SAFETY: both non-NULL and writable by contract.
        unsafe {
            data.write(pending.as_ptr());
            len.write(pending.len());
        }
        cormorant_result::Ok
    };
    // SAFETY: forwarded caller contract.
    unsafe { with_conn(conn, f) }
}

/// Marks the first `n` pending output bytes as written. INVALID_ARGUMENT if
/// `n` is more than is pending.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_consume(
    conn: *mut cormorant_conn,
    n: usize,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_conn(conn, |c| {
            if n > c.out.len() - c.out_pos {
                return cormorant_result::InvalidArgument;
            }
            c.out_pos += n;
            if c.out_pos == c.out.len() {
                c.out.clear();
                c.out_pos = 0;
            }
            cormorant_result::Ok
        })
    }
}

/// Whether the driver should close the socket once the pending output is
/// written (a protocol error, a non-keep-alive exchange, the end of input or
/// a finished WebSocket close). True for NULL or a poisoned handle.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_wants_close(conn: *mut cormorant_conn) -> bool {
    let mut wants = true;
    // SAFETY: forwarded caller contract.
    let r = unsafe {
        with_conn(conn, |c| {
            wants = c.wants_close();
            cormorant_result::Ok
        })
    };
    r != cormorant_result::Ok || wants
}

/// Sets the `Date` header value (an IMF-fixdate, RFC 9110 §5.6.7) used by
/// later responses; copied. Without it no `Date` header is sent. Refresh it
/// once a second.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently; `date` points to
/// `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_set_date(
    conn: *mut cormorant_conn,
    date: *const u8,
    len: usize,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    let Some(date) = (unsafe { slice(date, len) }) else {
        return cormorant_result::NullArgument;
    };
    // SAFETY: forwarded caller contract.
    unsafe {
        with_conn(conn, |c| {
            c.h1.set_date(Bytes::copy_from_slice(date));
            cormorant_result::Ok
        })
    }
}

#[cfg(test)]
mod tests;
