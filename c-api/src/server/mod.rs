//! The server layer: the native server (tokio, HTTP/1.1 and HTTP/2, TLS,
//! WebSocket) started from C, with requests handed to C callbacks.
//!
//! # Threads
//! * Callbacks run one at a time, on the server's dispatcher thread (or, with
//!   `on_io_thread`, inline on its I/O thread, where nothing may block). A
//!   callback may answer at once, or hand its `cormorant_request` /
//!   `cormorant_websocket` to another thread and return.
//! * A request or WebSocket handle belongs to one thread at a time (calls on
//!   it MUST NOT overlap) but may move between threads. Its blocking calls
//!   (reading the body, receiving a message, sending while more than
//!   256 KiB wait to be written) park only the calling thread.
//! * Every request and WebSocket handle MUST be released with its `_free`,
//!   also after the server stopped. Calls on them after a stop return
//!   `DISCONNECTED`.
//! * `cormorant_server_stop` may be called from any thread except a
//!   callback's.

mod request;
mod websocket;

use std::ffi::{c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use ::cormorant_server::embed::{self, Handler, StreamError};

use crate::types::{cormorant_result, cormorant_str, str_view};
pub use request::*;
pub use websocket::*;

/// A running server. Opaque.
pub struct cormorant_server {
    server: embed::Server,
}

/// Called for each new HTTP request, on the dispatcher thread. The callee
/// owns `request` and MUST release it with `cormorant_request_free`.
pub type cormorant_request_cb =
    Option<unsafe extern "C" fn(user_data: *mut c_void, request: *mut cormorant_request)>;

/// Called for each WebSocket upgrade request, on the dispatcher thread.
/// The callee owns `websocket` and MUST release it with
/// `cormorant_websocket_free`.
pub type cormorant_websocket_cb =
    Option<unsafe extern "C" fn(user_data: *mut c_void, websocket: *mut cormorant_websocket)>;

/// Called with each log line (`level`: 10 debug, 20 info, 30 warning,
/// 40 error); `message` is NUL-terminated and valid during the call.
pub type cormorant_log_cb =
    Option<unsafe extern "C" fn(user_data: *mut c_void, level: c_int, message: *const c_char)>;

/// What the server calls. Copied by `cormorant_server_start`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct cormorant_server_callbacks {
    /// Required.
    pub on_request: cormorant_request_cb,
    /// NULL refuses every upgrade with 403.
    pub on_websocket: cormorant_websocket_cb,
    /// NULL writes errors to stderr.
    pub on_log: cormorant_log_cb,
    /// Passed to every callback as is.
    pub user_data: *mut c_void,
    /// false: callbacks run on a dispatcher thread of the server's (they
    /// may block, delaying only other callbacks). true: they run inline on
    /// the I/O thread, saving a thread hop per request, and MUST NOT block:
    /// calls that would wait there return WOULD_BLOCK (sends are buffered).
    pub on_io_thread: bool,
}

/// The C callbacks as an [`embed::Handler`].
struct Callbacks(cormorant_server_callbacks);

// SAFETY: the embedder promises (header docs) that its callbacks and
// user_data may be used from the dispatcher thread.
unsafe impl Send for Callbacks {}
// SAFETY: as above; the dispatcher is the only caller.
unsafe impl Sync for Callbacks {}

impl Handler for Callbacks {
    fn request(&self, request: embed::Request) {
        let Some(cb) = self.0.on_request else {
            return;
        };
        let handle = Box::into_raw(Box::new(cormorant_request::new(request)));
        // SAFETY: a C function pointer given by the embedder; the handle is
        // live and now owned by the callee.
        unsafe { cb(self.0.user_data, handle) };
    }

    fn websocket(&self, websocket: embed::WebSocket) {
        let Some(cb) = self.0.on_websocket else {
            return;
        };
        let handle = Box::into_raw(Box::new(cormorant_websocket::new(websocket)));
        // SAFETY: as in `request`.
        unsafe { cb(self.0.user_data, handle) };
    }

    fn log(&self, level: embed::Level, message: &str) {
        let Some(cb) = self.0.on_log else {
            return embed::log_to_stderr(level, message);
        };
        let text = std::ffi::CString::new(message.replace('\0', " ")).unwrap_or_default();
        // SAFETY: as in `request`; `text` outlives the call.
        unsafe { cb(self.0.user_data, c_int::from(level.number()), text.as_ptr()) };
    }
}

/// Binds and starts a server in `*out`. `config_json` (NUL-terminated,
/// NULL or "" for the defaults) takes the keys of the Python API and the
/// configuration file, for example
/// `{"host": "127.0.0.1", "port": 8000, "http": "auto",
/// "ssl_certfile": "cert.pem", "ssl_keyfile": "key.pem",
/// "limit_request_body": 1048576, "timeout_keep_alive": 5}`.
/// On START_FAILED, a one-line reason is written to `error` (NUL-terminated,
/// truncated to `error_len` bytes) when `error` is not NULL.
///
/// # Safety
/// `config_json` is NULL or NUL-terminated; `callbacks` points to valid
/// callbacks usable from another thread; `out` is writable; `error` is NULL
/// or has `error_len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_server_start(
    config_json: *const c_char,
    callbacks: *const cormorant_server_callbacks,
    out: *mut *mut cormorant_server,
    error: *mut c_char,
    error_len: usize,
) -> cormorant_result {
    if callbacks.is_null() || out.is_null() {
        return cormorant_result::NullArgument;
    }
    // SAFETY: non-NULL by the check, valid by contract.
    let callbacks = unsafe { *callbacks };
    if callbacks.on_request.is_none() {
        return cormorant_result::NullArgument;
    }
    // SAFETY: forwarded caller contract.
    let config = match unsafe { crate::opt_str(config_json) } {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => return e,
    };
    let dispatch = if callbacks.on_io_thread {
        embed::Dispatch::IoThread
    } else {
        embed::Dispatch::Thread
    };
    let started =
        catch_unwind(|| embed::Server::start(config, Arc::new(Callbacks(callbacks)), dispatch));
    match started {
        Ok(Ok(server)) => {
            let handle = Box::into_raw(Box::new(cormorant_server { server }));
            // SAFETY: `out` is non-NULL and writable.
            unsafe { out.write(handle) };
            cormorant_result::Ok
        }
        Ok(Err(message)) => {
            // SAFETY: forwarded caller contract.
            unsafe { write_error(error, error_len, &message) };
            cormorant_result::StartFailed
        }
        Err(_) => cormorant_result::Panic,
    }
}

/// Writes `message` into the caller's buffer, truncated, NUL-terminated.
///
/// # Safety
/// `buf` is NULL or has `len` writable bytes.
unsafe fn write_error(buf: *mut c_char, len: usize, message: &str) {
    if buf.is_null() || len == 0 {
        return;
    }
    let n = message.len().min(len - 1);
    // SAFETY: `n + 1 <= len` bytes are writable by contract.
    unsafe {
        std::ptr::copy_nonoverlapping(message.as_ptr().cast::<c_char>(), buf, n);
        buf.add(n).write(0);
    }
}

/// The TCP port the server listens on (the one picked for port 0), or 0
/// for a Unix socket or NULL.
///
/// # Safety
/// `server` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_server_port(server: *const cormorant_server) -> u16 {
    // SAFETY: NULL or live by contract.
    unsafe { server.as_ref() }
        .and_then(|s| s.server.port())
        .unwrap_or(0)
}

/// Stops the server gracefully and releases it: stops accepting, lets
/// requests in progress finish for up to `grace_ms` milliseconds, then
/// closes every connection. Returns once the server's threads are gone.
/// Request and WebSocket handles still held stay valid until freed.
/// MUST NOT be called from a callback.
///
/// # Safety
/// `server` is NULL or a live server, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_server_stop(server: *mut cormorant_server, grace_ms: u32) {
    if server.is_null() {
        return;
    }
    // SAFETY: live and owned by contract; released exactly once here.
    let server = unsafe { Box::from_raw(server) };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        server
            .server
            .stop(Duration::from_millis(u64::from(grace_ms)));
    }));
}

/// The C result of a stream call.
pub(crate) fn stream_result(r: Result<(), StreamError>) -> cormorant_result {
    r.map_or_else(stream_error, |()| cormorant_result::Ok)
}

/// The C code of a stream error.
pub(crate) fn stream_error(e: StreamError) -> cormorant_result {
    match e {
        StreamError::Disconnected => cormorant_result::Disconnected,
        StreamError::WouldBlock => cormorant_result::WouldBlock,
        StreamError::Invalid(_) => cormorant_result::InvalidState,
    }
}

/// Describes an HTTP request or a WebSocket upgrade request. Views are valid
/// until the handle is freed.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cormorant_request_info {
    /// The method (empty for a WebSocket).
    pub method: cormorant_str,
    /// The path, percent-decoded (UTF-8).
    pub path: cormorant_str,
    /// The path as sent, without the query.
    pub raw_path: cormorant_str,
    /// The query string, without `?`.
    pub query_string: cormorant_str,
    /// `http`, `https`, `ws` or `wss`.
    pub scheme: cormorant_str,
    /// `1.0`, `1.1` or `2`.
    pub http_version: cormorant_str,
    /// The header fields (names lowercase), in order.
    pub headers: *const crate::types::cormorant_header,
    /// The number of entries in `headers`.
    pub headers_len: usize,
    /// The client's address (empty when unknown).
    pub client_host: cormorant_str,
    /// The client's port (0 when unknown).
    pub client_port: u16,
}

/// The views of a scope, kept beside the handle.
pub(crate) struct InfoViews {
    headers: Vec<crate::types::cormorant_header>,
}

impl InfoViews {
    pub(crate) fn new(scope: &cormorant_core::asgi::HttpScope) -> Self {
        Self {
            headers: scope
                .headers
                .iter()
                .map(|(n, v)| crate::types::cormorant_header {
                    name: str_view(n),
                    value: str_view(v),
                })
                .collect(),
        }
    }

    pub(crate) fn info(
        &self,
        scope: &cormorant_core::asgi::HttpScope,
        method: &str,
    ) -> cormorant_request_info {
        let (client_host, client_port) = scope
            .client
            .as_ref()
            .map_or((&[][..], 0), |c| (c.host.as_bytes(), c.port));
        cormorant_request_info {
            method: str_view(method.as_bytes()),
            path: str_view(scope.path.as_bytes()),
            raw_path: str_view(&scope.raw_path),
            query_string: str_view(&scope.query_string),
            scheme: str_view(scope.scheme.as_bytes()),
            http_version: str_view(scope.http_version.as_str().as_bytes()),
            headers: self.headers.as_ptr(),
            headers_len: self.headers.len(),
            client_host: str_view(client_host),
            client_port,
        }
    }
}
