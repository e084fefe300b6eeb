//! A request stream of a multiplexed connection (HTTP/2, HTTP/3), written
//! once for both protocol stacks: what the streams of a connection share,
//! and a stream's start (the health path, admission, static routing, the
//! scope with proxy headers and request ID, and the hand-over to the app,
//! as an HTTP request or, for an extended CONNECT, a WebSocket). Each stack
//! then writes the app's output in its own framing.

use std::sync::Arc;

use bytes::Bytes;
use cormorant_core::asgi::{
    ConnectionInfo, Extensions, HttpScope, HttpStream, HttpVersion, Output, h2_fields,
};
use cormorant_core::ws;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};

use super::conn::PeerInfo;
use super::exchange::{Exchange, RequestLine};
use super::static_files::{StaticBody, StaticRequest};
use super::{ServerCtx, date};
use crate::handoff::http::{NewRequest, RECV_HIGH_WATER, Shared, StreamState};
use crate::handoff::queue::Job;
use crate::handoff::websocket::{NewWebSocket, WsShared};
use crate::tls::TlsInfo;

/// What every stream of a connection shares.
pub(super) struct StreamConn {
    pub(super) ctx: Arc<ServerCtx>,
    pub(super) info: ConnectionInfo,
    pub(super) unix: bool,
    pub(super) tls: Option<Arc<TlsInfo>>,
    /// `host:port` of the client, for the access log (empty when it is off).
    pub(super) client_label: String,
    /// The peer is a trusted proxy (`--forwarded-allow-ips`).
    pub(super) trusted_proxy: bool,
    /// The peer is trusted with an `X-Request-ID` (a trusted proxy, or a
    /// PROXY protocol header came first).
    pub(super) trusted_ids: bool,
}

impl StreamConn {
    pub(super) fn new(peer: PeerInfo, scheme: &'static str, ctx: Arc<ServerCtx>) -> Self {
        let trusted_proxy = peer.trusted_proxy(&ctx);
        Self {
            client_label: peer.label(ctx.access_log.is_some()),
            unix: peer.unix,
            info: peer.connection_info(scheme, &ctx.root_path),
            trusted_proxy,
            trusted_ids: peer.proxied || trusted_proxy,
            tls: peer.tls,
            ctx,
        }
    }

    /// The response is complete: metrics and the access line.
    pub(super) fn finish(&self, exchange: &mut Exchange) {
        exchange.finish(&self.client_label, self.info.scheme);
    }
}

/// A stream the server answers without the application.
pub(super) enum Early {
    /// A response of the server's own (the health path, 503, 400).
    Status(u16, &'static [u8]),
    /// A static file route (`--static-path-route`): the mount and the rest
    /// of the path under it.
    Static(usize, Vec<u8>, Exchange),
    /// An extended CONNECT that is not a valid WebSocket handshake: core's
    /// refusal (400, 426 naming version 13, or 501 for another protocol).
    Refused(ws::HandshakeError),
    /// An extended CONNECT for a WebSocket, handed to the application,
    /// which answers it (see [`super::tunnel`]).
    WebSocket(Box<Tunnel>),
}

/// A stream handed to the application.
pub(super) struct Started {
    pub(super) exchange: Exchange,
    /// What the stream shares with the app.
    pub(super) shared: Arc<Shared>,
    pub(super) head_only: bool,
}

/// A WebSocket handshake on a stream (RFC 8441, RFC 9220), handed to the
/// application, which has yet to answer it.
pub(super) struct Tunnel {
    pub(super) exchange: Exchange,
    /// What the session shares with the app.
    pub(super) shared: Arc<WsShared>,
    /// The client's offer: subprotocols and extensions.
    pub(super) offer: ws::Handshake,
}

/// Starts a stream whose head the protocol stack decoded into `parts`:
/// the app is handed the request, or Err says how the server answers it.
/// `has_body`: the request has a body still to come; `informational`: 1xx
/// responses can be sent; `protocol`: the `:protocol` of an extended
/// CONNECT, which the stack allows only when it advertised
/// `SETTINGS_ENABLE_CONNECT_PROTOCOL`, only with `--ws auto`.
pub(super) fn start(
    conn: &StreamConn,
    version: HttpVersion,
    parts: &http::request::Parts,
    has_body: bool,
    informational: bool,
    protocol: Option<&[u8]>,
) -> Result<Started, Early> {
    let ctx = &conn.ctx;
    let head_only = parts.method == http::Method::HEAD;
    let (mut exchange, mut scope) = open(conn, version, parts)?;
    if let Some(protocol) = protocol.filter(|_| parts.method == http::Method::CONNECT) {
        return Err(start_websocket(conn, protocol, exchange, scope));
    }
    // The stack reads the whole head before handing it over: the arrival
    // is now.
    let arrived = ctx.tracks_arrival().then(std::time::Instant::now);
    let request_id = ctx.annotate(&mut scope, conn.trusted_ids, arrived);
    let extensions = Extensions::for_request(version, &[], informational);
    let shared = exchange.share(
        HttpStream::new(has_body, head_only).with_extensions(extensions),
        request_id.as_ref(),
    );
    ctx.queue.push(Job::Request(Box::new(NewRequest {
        scope,
        unix: conn.unix,
        tls: conn.tls.clone(),
        shared: shared.clone(),
        extensions,
        request_id,
        arrived,
    })));
    Ok(Started {
        exchange,
        shared,
        head_only,
    })
}

/// What starts every stream: the health path, admission (503), static
/// routing, and the scope with a trusted proxy's headers applied.
fn open(
    conn: &StreamConn,
    version: HttpVersion,
    parts: &http::request::Parts,
) -> Result<(Exchange, HttpScope), Early> {
    let ctx = &conn.ctx;
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let headers = scope_headers(parts);
    let line = RequestLine {
        method: parts.method.as_str().as_bytes(),
        target: target.as_bytes(),
        version,
        headers: &headers,
    };
    if let Some((status, body)) = ctx.health_status(target.as_bytes()) {
        return Err(Early::Status(status, body));
    }
    let Ok(mut exchange) = Exchange::admit(ctx, line) else {
        return Err(Early::Status(503, b"Service Unavailable"));
    };
    if let Some((mount, rest)) = ctx
        .statics
        .as_ref()
        .and_then(|s| s.route(target.as_bytes()))
    {
        return Err(Early::Static(mount, rest.to_vec(), exchange));
    }
    let Ok(mut scope) = HttpScope::new(
        version,
        parts.method.as_str().as_bytes(),
        &Bytes::copy_from_slice(target.as_bytes()),
        headers,
        &conn.info,
    ) else {
        return Err(Early::Status(400, b"Bad Request"));
    };
    if ctx.apply_proxy_headers(conn.trusted_proxy, &mut scope) {
        exchange.forwarded(scope.client.as_ref());
    }
    Ok((exchange, scope))
}

/// Hands a WebSocket's extended CONNECT to the app, once core found it a
/// valid handshake.
fn start_websocket(
    conn: &StreamConn,
    protocol: &[u8],
    exchange: Exchange,
    scope: HttpScope,
) -> Early {
    let offer = match ws::Handshake::from_extended_connect(protocol, &scope.headers) {
        Ok(offer) => offer,
        Err(e) => return Early::Refused(e),
    };
    let shared = NewWebSocket::hand_over(&conn.ctx.queue, scope, conn.unix, conn.tls.clone());
    Early::WebSocket(Box::new(Tunnel {
        exchange,
        shared,
        offer,
    }))
}

/// The header list of the scope, mapped by core (`:authority`, cookies).
fn scope_headers(parts: &http::request::Parts) -> Vec<(Bytes, Bytes)> {
    h2_fields::request_headers(
        parts.uri.authority().map(|a| a.as_str().as_bytes()),
        parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())),
    )
}

/// Turns a response's fields into a header map, with the server's own
/// fields (`own`) first as core orders them; trailers have none. Invalid
/// fields are an error (the application side already refused values that
/// are not field values; this catches the rest).
pub(super) fn header_map(
    own: Option<&h2_fields::ServerFields>,
    fields: Vec<(Bytes, Bytes)>,
) -> Result<HeaderMap, ()> {
    let fields = match own {
        // Core decides the list: the server's fields, then the app's
        // without the connection-specific ones.
        Some(own) => h2_fields::response_fields(own, date::http_date, fields),
        None => fields,
    };
    let mut map = HeaderMap::with_capacity(fields.len());
    for (n, v) in fields {
        let name = HeaderName::from_bytes(&n).map_err(drop)?;
        map.append(name, HeaderValue::from_maybe_shared(v).map_err(drop)?);
    }
    Ok(map)
}

/// The answer to a request under a static route.
pub(super) struct StaticAnswer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    /// None for a HEAD request.
    pub(super) body: Option<StaticBody>,
}

/// Answers a request under a static route (see [`Early::Static`]), and
/// records it as complete; Err is a server error to answer instead.
pub(super) async fn static_answer(
    conn: &StreamConn,
    parts: &http::request::Parts,
    (mount, rest, mut exchange): (usize, Vec<u8>, Exchange),
    own: &h2_fields::ServerFields,
) -> Result<StaticAnswer, (u16, &'static [u8])> {
    let Some(statics) = conn.ctx.statics.as_ref() else {
        return Err((404, b"Not Found"));
    };
    let get = |n: HeaderName| parts.headers.get(n).map(HeaderValue::as_bytes);
    let req = StaticRequest {
        method: parts.method.as_str().as_bytes(),
        accept_encoding: get(http::header::ACCEPT_ENCODING),
        if_none_match: get(http::header::IF_NONE_MATCH),
        if_modified_since: get(http::header::IF_MODIFIED_SINCE),
        range: get(http::header::RANGE),
        if_range: get(http::header::IF_RANGE),
    };
    let resp = statics.respond(mount, &rest, &req).await;
    let Ok(headers) = header_map(Some(own), resp.headers) else {
        return Err((500, b"Internal Server Error"));
    };
    exchange.status = resp.status;
    exchange.sent = match &resp.body {
        StaticBody::Bytes(b) => b.len() as u64,
        StaticBody::File(f) => f.len,
    };
    conn.finish(&mut exchange);
    Ok(StaticAnswer {
        status: StatusCode::from_u16(resp.status).unwrap_or(StatusCode::NOT_FOUND),
        headers,
        body: (parts.method != http::Method::HEAD).then_some(resp.body),
    })
}

/// Takes the app's queued output, and says whether request body is wanted
/// (`body_open`: more of it may come). Nothing is read (so no flow-control
/// window is given back to the client) before the app first asks for the
/// body; after that, up to the high-water mark ahead of it.
pub(super) fn take_output(shared: &Shared, body_open: bool) -> (Vec<Output>, bool) {
    let mut st = shared.lock();
    let outs: Vec<Output> = st.take_output().into();
    let want = body_open
        && st.body_requested
        && st.stream.wants_body()
        && st.stream.buffered() < RECV_HIGH_WATER;
    (outs, want)
}

/// The app has ended and everything it sent was taken.
pub(super) fn app_finished(shared: &Shared) -> bool {
    let st = shared.lock();
    st.stream.is_finished() && !st.has_output()
}

/// A piece of request body, as a protocol stack hands it over.
pub(super) enum BodyPiece {
    Data(Bytes),
    /// The body is complete.
    End,
    /// The client reset the stream: the body is cut off.
    Reset,
}

/// Feeds a piece of request body to the stream, counting its bytes for the
/// metrics; true when the body is over (complete, or cut off).
pub(super) fn feed_body(
    st: &mut StreamState,
    piece: BodyPiece,
    metrics: Option<&crate::metrics::Slot>,
) -> bool {
    match piece {
        BodyPiece::Data(data) => {
            if let Some(slot) = metrics {
                slot.received(data.len() as u64);
            }
            if !data.is_empty() {
                st.push_body(data, true);
            }
            false
        }
        BodyPiece::End => {
            st.push_body(Bytes::new(), false);
            true
        }
        BodyPiece::Reset => {
            st.stream.handle_disconnect();
            true
        }
    }
}
