//! ASGI state machines, one per stream, shared by every protocol and frontend.
//!
//! * [`HttpStream`] — one HTTP request/response cycle (ASGI HTTP spec 2.5).
//! * [`WebSocketStream`] — one WebSocket connection (ASGI WebSocket spec 2.5).
//! * [`Lifespan`] — startup and shutdown (lifespan spec 2.0).
//! * [`HttpScope`] — the connection scope as plain data.
//! * [`TrustedProxies`] — proxy headers (`Forwarded`, `X-Forwarded-*`).
//! * [`message`] — the one decoder of the messages apps send, over a
//!   field reader each frontend implements.
//! * [`h2_fields`] — the HTTP/2 field mapping (`:authority`, cookies,
//!   connection-specific fields).

pub mod h2_fields;
mod http;
mod lifespan;
pub mod message;
mod proxy;
mod scope;
mod websocket;

pub use http::{
    AppMessage, Extensions, HttpStream, Output, Receive, ResponseStart, SendError, internal_error,
};
pub use lifespan::{Lifespan, LifespanMessage, LifespanPhase, LifespanReceive};
pub use proxy::{Forwarded, ForwardedFor, InvalidAllowList, TrustedProxies};
pub use scope::{ASGI_VERSION, Address, ConnectionInfo, HTTP_SPEC_VERSION, HttpScope, HttpVersion};
pub use websocket::{
    CLOSE_ABNORMAL, CLOSE_NO_STATUS, WEBSOCKET_SPEC_VERSION, WebSocketScope, WebSocketStream,
    WsAppMessage, WsOutput, WsReceive,
};
