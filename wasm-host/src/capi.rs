//! The C API's connection calls as a Rust trait, so one driver can run the
//! same exchange against the native library and the sandboxed one.
//!
//! Results are the raw `cormorant_result` numbers and events are copied out
//! of the borrowed C views: both sides then compare value for value.

use wasmtime::Result;

/// `cormorant_result` codes (c-api/include/cormorant.h).
pub mod result {
    /// `CORMORANT_RESULT_OK`
    pub const OK: u32 = 0;
}

/// `cormorant_event_kind` numbers (c-api/include/cormorant.h). Kinds added
/// later by the C API are passed through as their number.
pub mod kind {
    /// More input is needed.
    pub const NEED_DATA: u32 = 0;
    /// A request head.
    pub const REQUEST_HEAD: u32 = 1;
    /// A piece of request body.
    pub const BODY: u32 = 2;
    /// The request body is complete.
    pub const END_OF_MESSAGE: u32 = 3;
    /// The request was read; answer it, then `next`.
    pub const PAUSED: u32 = 4;
    /// A complete WebSocket message.
    pub const WS_MESSAGE: u32 = 5;
    /// The peer's WebSocket close frame.
    pub const WS_CLOSE: u32 = 6;
    /// The peer broke the protocol.
    pub const PROTOCOL_ERROR: u32 = 7;
    /// Nothing more will come.
    pub const CLOSED: u32 = 8;
}

/// A `cormorant_event` with its borrowed views copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// `kind`, a [`kind`] number.
    pub kind: u32,
    /// `method`
    pub method: Vec<u8>,
    /// `target`
    pub target: Vec<u8>,
    /// `version_minor`
    pub version_minor: u8,
    /// `headers`, as (name, value) pairs.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// `has_body`
    pub has_body: bool,
    /// `keep_alive`
    pub keep_alive: bool,
    /// `websocket_upgrade`
    pub websocket_upgrade: bool,
    /// `data`
    pub data: Vec<u8>,
    /// `is_text`
    pub is_text: bool,
    /// `code`
    pub code: u16,
}

/// One `cormorant_conn` handle: each method is the `cormorant_conn_*`
/// function of the same name and returns its `cormorant_result`. An `Err`
/// means the call could not be made at all (a trap in the sandbox).
pub trait CConn {
    /// `cormorant_conn_feed`
    fn feed(&mut self, data: &[u8]) -> Result<u32>;
    /// `cormorant_conn_feed_eof`
    fn feed_eof(&mut self) -> Result<u32>;
    /// `cormorant_conn_poll`
    fn poll(&mut self) -> Result<(u32, Event)>;
    /// `cormorant_conn_respond`
    fn respond(&mut self, status: u16, headers: &[(&[u8], &[u8])]) -> Result<u32>;
    /// `cormorant_conn_send_body`
    fn send_body(&mut self, data: &[u8]) -> Result<u32>;
    /// `cormorant_conn_end`
    fn end(&mut self) -> Result<u32>;
    /// `cormorant_conn_next`
    fn next(&mut self) -> Result<u32>;
    /// `cormorant_conn_ws_accept` (`None`: no subprotocol)
    fn ws_accept(&mut self, subprotocol: Option<&str>) -> Result<u32>;
    /// `cormorant_conn_ws_reject`
    fn ws_reject(&mut self) -> Result<u32>;
    /// `cormorant_conn_ws_deny`
    fn ws_deny(&mut self, status: u16) -> Result<u32>;
    /// `cormorant_conn_ws_send`
    fn ws_send(&mut self, is_text: bool, data: &[u8]) -> Result<u32>;
    /// `cormorant_conn_ws_close`
    fn ws_close(&mut self, code: u16, reason: &[u8]) -> Result<u32>;
    /// `cormorant_conn_take_output`, then `cormorant_conn_consume` of all
    /// of it: the bytes to write. Fails unless both return OK.
    fn take_output(&mut self) -> Result<Vec<u8>>;
    /// `cormorant_conn_wants_close`
    fn wants_close(&mut self) -> Result<bool>;
    /// `cormorant_conn_set_time`
    fn set_time(&mut self, now_ns: u64) -> Result<u32>;
    /// `cormorant_conn_timeout`: the result and the deadline.
    fn timeout(&mut self) -> Result<(u32, u64)>;
    /// `cormorant_conn_handle_timeout`
    fn handle_timeout(&mut self, now_ns: u64) -> Result<u32>;
}
