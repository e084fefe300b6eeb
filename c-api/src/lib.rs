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
//!    `PAUSED` or `CLOSED`. Polling for a request body is asking for it:
//!    a client that sent `Expect: 100-continue` gets its `100 Continue`
//!    then.
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

use bytes::Bytes;
use std::time::Duration;

use cormorant_core::h1::{self, ResponseHead};
use cormorant_core::server::Timeouts;
use cormorant_core::time::Instant;
use cormorant_core::ws;

mod conn;
mod handle;
#[cfg(not(target_family = "wasm"))]
mod server;
mod types;
mod wasm;

use conn::Conn;
pub use conn::cormorant_conn;
use handle::{with_handle, with_handle_bytes, with_handle_out};
#[cfg(not(target_family = "wasm"))]
pub use server::*;
pub use types::*;

/// Runs `f` on the HTTP/1.1 side of `conn`: INVALID_STATE once it is a
/// WebSocket.
///
/// # Safety
/// As for [`with_handle`].
unsafe fn with_h1(
    conn: *mut cormorant_conn,
    f: impl FnOnce(&mut Conn) -> cormorant_result,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_handle(conn, |c| {
            if c.conn.is_websocket() {
                return cormorant_result::InvalidState;
            }
            f(c)
        })
    }
}

/// A borrowed, optional, NUL-terminated string: None for NULL,
/// INVALID_ARGUMENT when it is not UTF-8.
///
/// # Safety
/// `s` is NULL or NUL-terminated, valid and unmodified for `'a`.
unsafe fn opt_str<'a>(s: *const c_char) -> Result<Option<&'a str>, cormorant_result> {
    if s.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated by contract.
    let s = unsafe { CStr::from_ptr(s) };
    s.to_str()
        .map(Some)
        .map_err(|_| cormorant_result::InvalidArgument)
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

/// A copy of the caller's configuration, or the defaults for NULL.
///
/// # Safety
/// `config` is NULL or points to a valid `cormorant_config`.
unsafe fn config_or_default(config: *const cormorant_config) -> cormorant_config {
    if config.is_null() {
        cormorant_config_default()
    } else {
        // SAFETY: non-NULL and, by contract, a valid config.
        unsafe { *config }
    }
}

/// Copies `n` header fields given by the caller; None if a pointer that
/// must not be NULL is.
///
/// # Safety
/// `headers` is NULL (only when `n` is 0) or points to `n` headers whose
/// views point to readable bytes.
unsafe fn copy_headers(headers: *const cormorant_header, n: usize) -> Option<Vec<(Bytes, Bytes)>> {
    if n == 0 {
        return Some(Vec::new());
    }
    if headers.is_null() {
        return None;
    }
    // SAFETY: non-NULL, and by contract `n` readable headers.
    let given = unsafe { std::slice::from_raw_parts(headers, n) };
    given
        .iter()
        .map(|h| {
            // SAFETY: by contract each view points to readable bytes.
            let (name, value) = unsafe {
                (
                    slice(h.name.ptr, h.name.len)?,
                    slice(h.value.ptr, h.value.len)?,
                )
            };
            Some((Bytes::copy_from_slice(name), Bytes::copy_from_slice(value)))
        })
        .collect()
}

/// The default limits (see each field of `cormorant_config`).
#[unsafe(no_mangle)]
pub extern "C" fn cormorant_config_default() -> cormorant_config {
    let h = h1::Config::default();
    let t = Timeouts::default();
    let ms = |d: Option<Duration>| d.map_or(0, |d| d.as_millis() as u64);
    cormorant_config {
        max_head_size: h.max_head_size,
        max_headers: h.max_headers,
        max_body_size: h.max_body_size.unwrap_or(0),
        ws_max_message_size: ws::Config::default().max_message_size,
        keep_alive_timeout_ms: ms(t.keep_alive),
        request_head_timeout_ms: ms(t.request_head),
        request_body_timeout_ms: ms(t.request_body_idle),
        ws_ping_interval_ms: ms(t.ws_ping_interval),
        ws_ping_timeout_ms: ms(t.ws_ping_timeout),
        ws_close_timeout_ms: ms(t.ws_close),
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
        cormorant_result::Disconnected => c"the peer disconnected or the server stopped",
        cormorant_result::StartFailed => c"the server could not start",
        cormorant_result::WouldBlock => c"the call would block the server's I/O thread",
    };
    s.as_ptr()
}

/// Creates a connection handle in `*out`, accepted at `now_ns` and waiting
/// for its first request. `config` may be NULL for the defaults; it is
/// copied. The caller owns the handle and MUST release it with
/// `cormorant_conn_free`.
///
/// Time is the caller's: nanoseconds on any monotonic clock (such as
/// `CLOCK_MONOTONIC`), the same clock for every call on the handle. The
/// library has none; see `cormorant_conn_set_time`.
///
/// # Safety
/// `config` is NULL or points to a valid `cormorant_config`; `out` is NULL
/// or points to writable storage for a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_new(
    config: *const cormorant_config,
    now_ns: u64,
    out: *mut *mut cormorant_conn,
) -> cormorant_result {
    if out.is_null() {
        return cormorant_result::NullArgument;
    }
    // SAFETY: forwarded caller contract.
    let config = unsafe { config_or_default(config) };
    let made = catch_unwind(|| {
        Box::into_raw(Box::new(cormorant_conn {
            inner: Conn::new(&config, Instant::from_nanos(now_ns)),
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
    unsafe {
        with_handle_bytes(conn, data, len, |c, data| {
            c.conn.handle_bytes(c.now, data);
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
        with_handle(conn, |c| {
            c.conn.handle_eof();
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
    // SAFETY: forwarded caller contract.
    unsafe { with_handle_out(conn, out, |c| Ok(c.poll())) }
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
    // SAFETY: forwarded caller contract.
    let Some(fields) = (unsafe { copy_headers(headers, n) }) else {
        return cormorant_result::NullArgument;
    };
    // SAFETY: forwarded caller contract.
    unsafe {
        with_h1(conn, |c| {
            result(c.conn.http().send_response(ResponseHead {
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
    unsafe {
        with_handle_bytes(conn, data, len, |c, data| {
            if c.conn.is_websocket() {
                return cormorant_result::InvalidState;
            }
            result(c.conn.http().send_body(Bytes::copy_from_slice(data)))
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
    unsafe { with_h1(conn, |c| result(c.conn.http().send_end())) }
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
        with_h1(conn, |c| {
            let r = result(c.conn.start_next_cycle(c.now));
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
    // SAFETY: forwarded caller contract.
    let sub = match unsafe { opt_str(subprotocol) } {
        Ok(s) => s,
        Err(e) => return e,
    };
    // SAFETY: forwarded caller contract.
    unsafe { with_handle(conn, |c| c.ws_accept(sub)) }
}

/// Creates in `*out` a handle for a WebSocket that arrived as an extended
/// CONNECT on a stream of the caller's own HTTP/2 or HTTP/3 stack (RFC 8441,
/// RFC 9220), once the application accepts it. `protocol` is the
/// `:protocol` value (NUL-terminated), `headers` the request's `n` fields
/// with lowercase names, `subprotocol` the chosen subprotocol (NUL-terminated
/// UTF-8) or NULL. The caller owns the handle and MUST release it with
/// `cormorant_conn_free`.
///
/// On OK, `*status` is 200: send that response on the stream, with the
/// fields `cormorant_conn_tunnel_answer` gives, and no END_STREAM. The
/// handle is already in WebSocket mode, with the same rules and timers as
/// after an HTTP/1.1 upgrade: the stream's DATA goes to
/// `cormorant_conn_feed`, events are WS_MESSAGE, WS_CLOSE..., and the output
/// is the stream's DATA. No extension (permessage-deflate) is negotiated.
///
/// On BAD_HANDSHAKE no handle is made, and `*status` is the answer to send:
/// 426 (add `sec-websocket-version: 13`) for a missing or unsupported
/// version, 501 for a `:protocol` other than `websocket`, else 400.
///
/// # Safety
/// `config` is NULL or points to a valid `cormorant_config`; `protocol` is a
/// NUL-terminated string; `headers` points to `n` headers whose views point
/// to readable bytes; `subprotocol` is NULL or NUL-terminated; `status` and
/// `out` are NULL or point to writable storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_new_tunnel(
    config: *const cormorant_config,
    now_ns: u64,
    protocol: *const c_char,
    headers: *const cormorant_header,
    n: usize,
    subprotocol: *const c_char,
    status: *mut u16,
    out: *mut *mut cormorant_conn,
) -> cormorant_result {
    if out.is_null() || status.is_null() {
        return cormorant_result::NullArgument;
    }
    // SAFETY: forwarded caller contract.
    let protocol = match unsafe { opt_str(protocol) } {
        Ok(Some(p)) => p,
        Ok(None) => return cormorant_result::NullArgument,
        Err(e) => return e,
    };
    // SAFETY: forwarded caller contract.
    let sub = match unsafe { opt_str(subprotocol) } {
        Ok(s) => s,
        Err(e) => return e,
    };
    // SAFETY: forwarded caller contract.
    let Some(fields) = (unsafe { copy_headers(headers, n) }) else {
        return cormorant_result::NullArgument;
    };
    // SAFETY: forwarded caller contract.
    let config = unsafe { config_or_default(config) };
    let made = catch_unwind(|| {
        Conn::tunnel(
            &config,
            Instant::from_nanos(now_ns),
            protocol.as_bytes(),
            &fields,
            sub,
        )
    });
    let (code, result) = match made {
        Ok(Ok(inner)) => {
            let conn = Box::into_raw(Box::new(cormorant_conn {
                inner,
                poisoned: false,
            }));
            // SAFETY: `out` is non-NULL and writable by contract.
            unsafe { out.write(conn) };
            (200, cormorant_result::Ok)
        }
        Ok(Err(e)) => (e.status_hint(), cormorant_result::BadHandshake),
        Err(_) => return cormorant_result::Panic,
    };
    // SAFETY: `status` is non-NULL and writable by contract.
    unsafe { status.write(code) };
    result
}

/// The fields of the `200` that opens a tunnel made by
/// `cormorant_conn_new_tunnel` (the chosen subprotocol): `*headers` points
/// to `*n` of them, valid until the next call on the handle. A handle made
/// by `cormorant_conn_new` has none.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently; `headers` and `n`
/// point to writable storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_tunnel_answer(
    conn: *mut cormorant_conn,
    headers: *mut *const cormorant_header,
    n: *mut usize,
) -> cormorant_result {
    if n.is_null() {
        return cormorant_result::NullArgument;
    }
    // SAFETY: forwarded caller contract; `n` checked above.
    unsafe {
        with_handle_out(conn, headers, |c| {
            let (views, len) = c.answer_views();
            n.write(len);
            Ok(views)
        })
    }
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
    unsafe { with_handle(conn, |c| c.ws_deny(status)) }
}

/// Answers an upgrade request that is not a valid WebSocket opening
/// handshake (after `cormorant_conn_ws_accept` returned BAD_HANDSHAKE) the
/// way the native server does: `426 Upgrade Required` with
/// `Sec-WebSocket-Version: 13` for an unsupported version (RFC 6455 §4.4),
/// else `400`; the connection closes after it. INVALID_STATE when the
/// handshake is valid or no request is current.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_ws_reject(conn: *mut cormorant_conn) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe { with_handle(conn, |c| c.ws_reject()) }
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
    unsafe {
        with_handle_bytes(conn, data, len, |c, data| {
            let Some(ws) = c.conn.websocket() else {
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
        with_handle(conn, |c| match c.conn.websocket() {
            Some(ws) => result(ws.send_close(code, reason)),
            None => cormorant_result::InvalidState,
        })
    }
}

/// Queues a WebSocket ping with a payload of `len` bytes (at most 125,
/// else INVALID_ARGUMENT); the peer's answer comes as a WS_PONG event.
/// INVALID_STATE before `cormorant_conn_ws_accept` or after a close was sent.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently; `data` points to
/// `len` readable bytes (NULL allowed when `len` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_ws_ping(
    conn: *mut cormorant_conn,
    data: *const u8,
    len: usize,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_handle_bytes(conn, data, len, |c, data| match c.conn.websocket() {
            Some(ws) => result(ws.send_ping(data)),
            None => cormorant_result::InvalidState,
        })
    }
}

/// Tells the handle the time, `now_ns` on the clock given to
/// `cormorant_conn_new`: the calls that follow act at it. Call it each time
/// the event loop wakes, before feeding bytes or polling (as libuv's loop
/// time). Timers start from the time of the call that armed them.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_set_time(
    conn: *mut cormorant_conn,
    now_ns: u64,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe { with_handle(conn, |c| c.set_time(now_ns)) }
}

/// Sets `*deadline_ns` to the earliest deadline of the connection's
/// timers, or `UINT64_MAX` when none runs. Timers: keep-alive while idle
/// between requests, request head while a head is arriving, request body
/// while body bytes are awaited, and on a WebSocket the ping interval, the
/// pong deadline and the close handshake (each in `cormorant_config`).
/// Call it after handling events, before waiting; once the deadline
/// passes, call `cormorant_conn_handle_timeout`.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently; `deadline_ns` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_timeout(
    conn: *mut cormorant_conn,
    deadline_ns: *mut u64,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_handle_out(conn, deadline_ns, |c| {
            Ok(c.conn.poll_timeout().map_or(u64::MAX, Instant::as_nanos))
        })
    }
}

/// Sets the time to `now_ns` and fires every timer due by then; then poll
/// and write the output as after any call. A request head or body still
/// arriving is answered `408` and the next poll yields PROTOCOL_ERROR with
/// code 408; an idle keep-alive connection yields CLOSED; an unanswered
/// WebSocket ping sends close 1011 and yields PROTOCOL_ERROR 1011; an
/// unanswered close yields PROTOCOL_ERROR 1006. Before the deadline it does
/// nothing (a ping may still be sent when due).
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_handle_timeout(
    conn: *mut cormorant_conn,
    now_ns: u64,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_handle(conn, |c| {
            c.set_time(now_ns);
            c.conn.handle_timeout(c.now);
            cormorant_result::Ok
        })
    }
}

/// Begins a graceful shutdown: an idle connection closes (the next poll
/// yields CLOSED), one that has not sent a request yet has a second to do
/// so, a request in progress is answered with `Connection: close`, and an
/// open WebSocket is sent close 1001.
///
/// # Safety
/// `conn` is NULL or a live handle not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_conn_shutdown(conn: *mut cormorant_conn) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_handle(conn, |c| {
            c.conn.shutdown(c.now);
            cormorant_result::Ok
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
    unsafe { with_handle(conn, f) }
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
        with_handle(conn, |c| {
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
        with_handle(conn, |c| {
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
    unsafe {
        with_handle_bytes(conn, date, len, |c, date| {
            c.conn.http().set_date(Bytes::copy_from_slice(date));
            cormorant_result::Ok
        })
    }
}

#[cfg(test)]
mod tests;
