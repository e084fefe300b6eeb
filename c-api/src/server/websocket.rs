//! `cormorant_websocket`: one WebSocket upgrade request of the server
//! layer, then the connection once accepted.

use std::ffi::c_char;

use ::cormorant_server::embed::{self, Message};
use bytes::Bytes;

use super::{InfoViews, cormorant_request_info, stream_error, stream_result};
use crate::handle::{Handle, with_handle, with_handle_bytes, with_handle_out};
use crate::opt_str;
use crate::types::{EMPTY_STR, cormorant_result, cormorant_str, str_view};

/// A WebSocket upgrade request, then the connection. Opaque.
pub struct cormorant_websocket {
    state: WebSocketState,
    poisoned: bool,
}

/// What calls on a `cormorant_websocket` work on.
pub(crate) struct WebSocketState {
    ws: embed::WebSocket,
    views: InfoViews,
    /// Backs the `data` view of the last message.
    last: Option<Message>,
}

impl cormorant_websocket {
    pub(crate) fn new(ws: embed::WebSocket) -> Self {
        let views = InfoViews::new(&ws.scope().http);
        Self {
            state: WebSocketState {
                ws,
                views,
                last: None,
            },
            poisoned: false,
        }
    }
}

impl Handle for cormorant_websocket {
    type State = WebSocketState;
    fn parts(&mut self) -> (&mut WebSocketState, &mut bool) {
        (&mut self.state, &mut self.poisoned)
    }
}

/// What `cormorant_websocket_receive` got.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cormorant_ws_kind {
    /// A text message (valid UTF-8) in `data`.
    Text = 0,
    /// A binary message in `data`.
    Binary = 1,
    /// The connection ended: `code` (1005 when the peer gave none, 1006 when
    /// it was lost) and the reason in `data`. Nothing more comes.
    Closed = 2,
}

/// A message received on a WebSocket. `data` is valid until the next call
/// on the handle.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cormorant_ws_message {
    /// What arrived.
    pub kind: cormorant_ws_kind,
    /// The payload, or the close reason.
    pub data: cormorant_str,
    /// CLOSED: the close code.
    pub code: u16,
}

/// Fills `*out` with the upgrade request's path, headers... (`method` is
/// empty). Views are valid until `cormorant_websocket_free`.
///
/// # Safety
/// `ws` is NULL or a live handle not used concurrently; `out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_websocket_get_info(
    ws: *mut cormorant_websocket,
    out: *mut cormorant_request_info,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe { with_handle_out(ws, out, |w| Ok(w.views.info(&w.ws.scope().http, ""))) }
}

/// Accepts the upgrade (`101`), choosing `subprotocol` (NUL-terminated, one
/// the client offered) or none (NULL).
///
/// # Safety
/// `ws` is NULL or a live handle not used concurrently; `subprotocol` is
/// NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_websocket_accept(
    ws: *mut cormorant_websocket,
    subprotocol: *const c_char,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    let sub = match unsafe { opt_str(subprotocol) } {
        Ok(s) => s.map(str::to_owned),
        Err(e) => return e,
    };
    // SAFETY: forwarded caller contract.
    unsafe { with_handle(ws, |w| stream_result(w.ws.accept(sub))) }
}

/// Refuses the upgrade with an empty `status` response.
///
/// # Safety
/// `ws` is NULL or a live handle not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_websocket_deny(
    ws: *mut cormorant_websocket,
    status: u16,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe { with_handle(ws, |w| stream_result(w.ws.deny(status))) }
}

/// Waits (blocking the calling thread) for the next message into `*out`.
/// After a CLOSED message, further calls return DISCONNECTED.
///
/// # Safety
/// `ws` is NULL or a live handle not used concurrently; `out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_websocket_receive(
    ws: *mut cormorant_websocket,
    out: *mut cormorant_ws_message,
) -> cormorant_result {
    let f = |w: &mut WebSocketState| {
        if matches!(w.last, Some(Message::Closed { .. })) {
            return Err(cormorant_result::Disconnected);
        }
        let msg = match w.ws.receive() {
            Ok(m) => w.last.insert(m),
            Err(e) => return Err(stream_error(e)),
        };
        let view = match msg {
            Message::Text(t) => cormorant_ws_message {
                kind: cormorant_ws_kind::Text,
                data: str_view(t.as_bytes()),
                code: 0,
            },
            Message::Binary(b) => cormorant_ws_message {
                kind: cormorant_ws_kind::Binary,
                data: str_view(b),
                code: 0,
            },
            Message::Closed { code, reason } => cormorant_ws_message {
                kind: cormorant_ws_kind::Closed,
                data: if reason.is_empty() {
                    EMPTY_STR
                } else {
                    str_view(reason.as_bytes())
                },
                code: *code,
            },
        };
        Ok(view)
    };
    // SAFETY: forwarded caller contract.
    unsafe { with_handle_out(ws, out, f) }
}

/// Sends a message: text (`data` MUST be UTF-8, else INVALID_ARGUMENT) or
/// binary; copied. Blocks while more than 256 KiB wait to be written.
///
/// # Safety
/// `ws` is NULL or a live handle not used concurrently; `data` points to
/// `len` readable bytes (NULL allowed when `len` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_websocket_send(
    ws: *mut cormorant_websocket,
    is_text: bool,
    data: *const u8,
    len: usize,
) -> cormorant_result {
    let f = |w: &mut WebSocketState, data: &[u8]| {
        if is_text {
            match std::str::from_utf8(data) {
                Ok(t) => stream_result(w.ws.send_text(t.to_owned())),
                Err(_) => cormorant_result::InvalidArgument,
            }
        } else {
            stream_result(w.ws.send_binary(Bytes::copy_from_slice(data)))
        }
    };
    // SAFETY: forwarded caller contract.
    unsafe { with_handle_bytes(ws, data, len, f) }
}

/// Starts the close handshake with `code` and a UTF-8 `reason` of
/// `reason_len` bytes (NULL allowed when 0).
///
/// # Safety
/// `ws` is NULL or a live handle not used concurrently; `reason` points to
/// `reason_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_websocket_close(
    ws: *mut cormorant_websocket,
    code: u16,
    reason: *const u8,
    reason_len: usize,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_handle_bytes(
            ws,
            reason,
            reason_len,
            |w, reason| match std::str::from_utf8(reason) {
                Ok(r) => stream_result(w.ws.close(code, r.to_owned())),
                Err(_) => cormorant_result::InvalidArgument,
            },
        )
    }
}

/// Releases the WebSocket: an upgrade never answered is refused with 403,
/// an open connection is closed with 1000.
///
/// # Safety
/// `ws` is NULL or a live handle, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_websocket_free(ws: *mut cormorant_websocket) {
    if !ws.is_null() {
        // SAFETY: live and owned by contract; released exactly once here.
        let handle = unsafe { Box::from_raw(ws) };
        // The drop finishes the response or closes the WebSocket.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(handle)));
    }
}
