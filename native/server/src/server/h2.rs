//! HTTP/2 connections through hyper's server. hyper does the framing, HPACK,
//! flow control and stream limits; each stream becomes a
//! `core::asgi::HttpStream`, exactly like an HTTP/1.1 request, so ASGI
//! semantics are the same on both.
//!
//! A stream is driven by the service future until its response head is
//! known. A response that is complete at that point (the common case) is
//! returned whole; otherwise a task takes over, feeding the response body
//! to hyper through a small channel while it keeps pumping the request body.
//!
//! An extended CONNECT for a WebSocket (RFC 8441) starts the same way; once
//! the app accepts it, hyper hands over the stream's bytes and core's
//! WebSocket connection runs over them ([`super::tunnel`]).

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cormorant_core::asgi::{HttpVersion, Output, ResponseStart, h2_fields};
use cormorant_core::h1::ResponseHead;
use cormorant_core::server;
use http::header::HeaderValue;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::ServerCtx;
use super::coalesce::Coalesce;
use super::conn::{self, PeerInfo};
use super::exchange::Exchange;
use super::file::{BodyFile, add_content_length};
use super::static_files::StaticBody;
use super::stream::{self, BodyPiece, Early, StreamConn};
use super::transport::{Prefixed, Transport};
use super::tunnel;
use crate::config::Level;
use crate::config::ServerConfig;
use crate::handoff::http::{RECV_HIGH_WATER, Shared, StreamState};

/// Response body frames queued for hyper ahead of the send window.
const BODY_CHANNEL: usize = 2;

/// HTTP/2 settings, from the `--http2-*` flags.
#[derive(Debug, Clone)]
pub struct H2Settings {
    max_concurrent_streams: u32,
    initial_stream_window_size: u32,
    initial_connection_window_size: u32,
    adaptive_window: bool,
    max_frame_size: u32,
    max_header_list_size: u32,
    keep_alive_interval: Option<Duration>,
    keep_alive_timeout: Duration,
    /// Advertise `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 8441): WebSockets
    /// are on.
    connect_protocol: bool,
    /// The fields every response carries: HTTP/2's own copy.
    fields: h2_fields::ServerFields,
}

impl H2Settings {
    pub fn from_config(c: &ServerConfig, fields: h2_fields::ServerFields) -> Self {
        Self {
            fields,
            max_concurrent_streams: c.http2_max_concurrent_streams,
            initial_stream_window_size: c.http2_initial_stream_window_size,
            initial_connection_window_size: c.http2_initial_connection_window_size,
            adaptive_window: c.http2_adaptive_window,
            max_frame_size: c.http2_max_frame_size,
            max_header_list_size: c.http2_max_header_list_size,
            keep_alive_interval: (!c.http2_keep_alive_interval.is_zero())
                .then_some(c.http2_keep_alive_interval),
            keep_alive_timeout: c.http2_keep_alive_timeout,
            connect_protocol: c.ws == crate::config::WsMode::Auto,
        }
    }

    fn builder(&self) -> http2::Builder<Spawner> {
        let mut b = http2::Builder::new(Spawner);
        b.timer(TokioTimer::new())
            .auto_date_header(false)
            .max_concurrent_streams(self.max_concurrent_streams)
            .initial_stream_window_size(self.initial_stream_window_size)
            .initial_connection_window_size(self.initial_connection_window_size)
            .adaptive_window(self.adaptive_window)
            .max_frame_size(self.max_frame_size)
            .max_header_list_size(self.max_header_list_size)
            .keep_alive_interval(self.keep_alive_interval)
            .keep_alive_timeout(self.keep_alive_timeout);
        if self.connect_protocol {
            // Without it, h2 refuses a `:protocol` with a stream error.
            b.enable_connect_protocol();
        }
        b
    }
}

/// hyper's executor: the server's own [`spawn`](super::driven::spawn).
#[derive(Clone, Copy)]
struct Spawner;

impl<F> hyper::rt::Executor<F> for Spawner
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        super::driven::spawn(future);
    }
}

/// Serves a connection that must be HTTP/2 from its first byte (`--http 2`):
/// one that does not open with the client preface is refused as core says,
/// with a GOAWAY, and closed. hyper would answer it with its SETTINGS and
/// close without saying why.
pub async fn serve_prior_knowledge<S: Transport>(
    mut io: S,
    peer: PeerInfo,
    scheme: &'static str,
    ctx: Arc<ServerCtx>,
) {
    let mut first = Vec::with_capacity(server::HTTP2_PREFACE.len());
    let wait = ctx.conn.timeouts.request_head.unwrap_or(Duration::MAX);
    let deadline = tokio::time::Instant::now().checked_add(wait);
    let valid = loop {
        if let Some(valid) = server::detect_http2_preface(&first) {
            break valid;
        }
        let read = io.read_buf(&mut first);
        let n = match deadline {
            Some(at) => tokio::time::timeout_at(at, read).await.unwrap_or(Ok(0)),
            None => read.await,
        };
        if !matches!(n, Ok(n) if n > 0) {
            return;
        }
    };
    if valid {
        return serve(Prefixed::new(first.into(), io), peer, scheme, ctx).await;
    }
    if io.write_all(server::HTTP2_PREFACE_REFUSAL).await.is_ok() && io.shutdown().await.is_ok() {
        conn::linger(&mut io).await;
    }
}

/// Serves one HTTP/2 connection until it closes.
pub async fn serve<S: Transport>(io: S, peer: PeerInfo, scheme: &'static str, ctx: Arc<ServerCtx>) {
    let Some(settings) = ctx.h2.as_ref() else {
        return;
    };
    let conn = Arc::new(StreamConn::new(peer, scheme, ctx.clone()));
    // Counts the streams in flight: this one, the service's, and one per
    // stream being served.
    let streams = conn.clone();
    let service = service_fn(move |req| handle(req, conn.clone()));
    let builder = settings.builder();
    let io = Coalesce::new(io);
    let moved = io.moved();
    let drain = io.drain();
    let served = drain.around(builder.serve_connection(TokioIo::new(io), service));
    tokio::pin!(served);
    let mut stop = ctx.shutdown.subscribe();
    if !ctx.is_shutting_down() {
        tokio::select! {
            _ = served.as_mut() => return,
            _ = stop.changed() => {}
        }
    }
    // GOAWAY, then let the open streams finish. hyper ends the connection
    // once the client has answered the PING that follows the first GOAWAY
    // and every stream is done; a client that stopped reading never
    // answers. So once no stream is in flight and not a byte has moved
    // either way for GOAWAY_IDLE, the connection is closed instead.
    served.as_mut().conn().graceful_shutdown();
    let mut last = (moved.load(Ordering::Relaxed), tokio::time::Instant::now());
    loop {
        tokio::select! {
            _ = served.as_mut() => return,
            () = tokio::time::sleep(GOAWAY_POLL) => {
                let now = moved.load(Ordering::Relaxed);
                if now != last.0 || Arc::strong_count(&streams) > 2 {
                    last = (now, tokio::time::Instant::now());
                } else if last.1.elapsed() >= GOAWAY_IDLE {
                    return;
                }
            }
        }
    }
}

/// After GOAWAY, how long a connection with no stream in flight may stay
/// silent (no byte read or written) before it is closed: a client that
/// reads answers hyper's PING within a round trip; one that has not for
/// this long is not reading.
const GOAWAY_IDLE: Duration = Duration::from_secs(5);
/// How often that is checked.
const GOAWAY_POLL: Duration = Duration::from_millis(250);

/// The response body handed to hyper.
pub enum H2Body {
    /// The whole body, known when the head was.
    Full(Option<Bytes>),
    /// Frames from the stream's task; an error resets the stream.
    Channel(mpsc::Receiver<io::Result<Frame<Bytes>>>),
}

impl Body for H2Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        match self.get_mut() {
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Channel(rx) => rx.poll_recv(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Channel(_) => SizeHint::default(),
        }
    }
}

type H2Response = Response<H2Body>;

fn server_response(status: u16, body: &'static [u8]) -> H2Response {
    let mut r = Response::new(H2Body::Full(
        (!body.is_empty()).then(|| Bytes::from_static(body)),
    ));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The server's own fields of every HTTP/2 response.
fn own_fields(ctx: &ServerCtx) -> Option<&h2_fields::ServerFields> {
    ctx.h2.as_ref().map(|h2| &h2.fields)
}

/// One stream, from its request to its complete response. The future
/// hyper stores and spawns per stream is kept small: the stream's state is
/// boxed, and everything before the first wait is done up front.
fn handle(
    req: Request<Incoming>,
    conn: Arc<StreamConn>,
) -> impl Future<Output = Result<H2Response, Infallible>> + Send {
    let (parts, body) = req.into_parts();
    let has_body = !body.is_end_stream();
    // hyper puts `:protocol` here only with the setting advertised, and
    // only on a CONNECT.
    let protocol = parts.extensions.get::<hyper::ext::Protocol>();
    // hyper cannot send 1xx responses on HTTP/2.
    let started = stream::start(
        &conn,
        HttpVersion::Http2,
        &parts,
        has_body,
        false,
        protocol.map(|p| p.as_str().as_bytes()),
    );
    async move {
        Ok(match started {
            Ok(started) => {
                let task = Box::new(StreamTask {
                    conn,
                    shared: started.shared,
                    body: has_body.then_some(body),
                    head_only: started.head_only,
                    exchange: started.exchange,
                    tx: None,
                    done: false,
                });
                task.until_head().await
            }
            Err(Early::Status(status, body)) => server_response(status, body),
            Err(Early::Static(mount, rest, exchange)) => {
                Box::pin(static_response(conn, parts, (mount, rest, exchange))).await
            }
            Err(Early::Refused(e)) => {
                let (head, body) = e.response();
                head_response(&conn, head, Bytes::from_static(body))
            }
            Err(Early::WebSocket(t)) => Box::pin(websocket(conn, parts, t)).await,
        })
    }
}

/// A response of core's making, sent whole.
fn head_response(conn: &StreamConn, head: ResponseHead, body: Bytes) -> H2Response {
    let Ok(headers) = stream::header_map(own_fields(&conn.ctx), head.headers) else {
        return server_response(500, b"Internal Server Error");
    };
    let mut r = Response::new(H2Body::Full((!body.is_empty()).then_some(body)));
    *r.status_mut() = StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_REQUEST);
    *r.headers_mut() = headers;
    r
}

/// A WebSocket over this stream (RFC 8441): the app's answer; once
/// accepted, the stream's bytes are the WebSocket's, in a task of their
/// own (see [`super::tunnel`]).
async fn websocket(
    conn: Arc<StreamConn>,
    mut parts: http::request::Parts,
    mut t: Box<stream::Tunnel>,
) -> H2Response {
    let ctx = conn.ctx.clone();
    match tunnel::answer(&mut t, &ctx).await {
        tunnel::Answer::Accepted { head, conn: ws } => {
            let response = head_response(&conn, head, Bytes::new());
            let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
            let stream::Tunnel {
                exchange, shared, ..
            } = *t;
            super::driven::spawn(async move {
                // hyper hands over the stream once the 200 is sent.
                let io = match upgrade {
                    Some(upgrade) => upgrade.await.ok(),
                    None => None,
                };
                match io {
                    Some(io) => {
                        conn::serve_tunnel(TokioIo::new(io), *ws, &conn, shared, exchange).await;
                    }
                    None => shared.update(&conn.ctx.queue, |st| st.stream.handle_disconnect()),
                }
            });
            response
        }
        tunnel::Answer::Denied { head, body } => {
            let response = head_response(&conn, head, body);
            conn.finish(&mut t.exchange);
            response
        }
        tunnel::Answer::Stopping => server_response(503, b"Service Unavailable"),
    }
}

/// Answers a request under a static route.
async fn static_response(
    conn: Arc<StreamConn>,
    parts: http::request::Parts,
    route: (usize, Vec<u8>, Exchange),
) -> H2Response {
    let Some(own) = own_fields(&conn.ctx) else {
        return server_response(500, b"Internal Server Error");
    };
    let answer = match stream::static_answer(&conn, &parts, route, own).await {
        Ok(answer) => answer,
        Err((status, body)) => return server_response(status, body),
    };
    let body = match answer.body {
        None => H2Body::Full(None),
        Some(StaticBody::Bytes(b)) => H2Body::Full((!b.is_empty()).then_some(b)),
        Some(StaticBody::File(mut f)) => {
            let (tx, rx) = mpsc::channel(BODY_CHANNEL);
            super::driven::spawn(async move {
                loop {
                    let frame = match f.next_chunk().await {
                        Ok(Some(chunk)) => Ok(Frame::data(chunk)),
                        Ok(None) => return,
                        Err(e) => Err(e),
                    };
                    let failed = frame.is_err();
                    if tx.send(frame).await.is_err() || failed {
                        return;
                    }
                }
            });
            H2Body::Channel(rx)
        }
    };
    let mut r = Response::new(body);
    *r.status_mut() = answer.status;
    *r.headers_mut() = answer.headers;
    r
}

/// What became of one batch of the application's output.
enum Step {
    /// Keep going.
    More,
    /// The response is complete.
    Done,
    /// The response cannot be completed: reset the stream.
    Abort,
}

struct StreamTask {
    conn: Arc<StreamConn>,
    shared: Arc<Shared>,
    /// The request body, while more of it may come.
    body: Option<Incoming>,
    head_only: bool,
    exchange: Exchange,
    /// The response body channel, once the head went out without the end.
    tx: Option<mpsc::Sender<io::Result<Frame<Bytes>>>>,
    /// The response is complete (or the stream was already reported gone).
    done: bool,
}

impl Drop for StreamTask {
    /// Dropped before its end, the stream was reset by the client (hyper
    /// drops the futures of a reset stream): the app must hear about it.
    fn drop(&mut self) {
        if !self.done {
            self.shared.disconnect(&self.conn.ctx.queue);
        }
    }
}

impl StreamTask {
    fn ctx(&self) -> &Arc<ServerCtx> {
        &self.conn.ctx
    }

    /// Runs the stream until its response head is known; returns the
    /// response, whole when possible, and leaves the rest to a task.
    async fn until_head(mut self: Box<Self>) -> H2Response {
        loop {
            let want_body = {
                let (mut outs, want_body) = self.take_output();
                // Nothing precedes the head but interim responses, which
                // HTTP/2 does not carry here.
                if let Some(i) = outs.iter().position(|o| o.start.is_some()) {
                    let rest = outs.split_off(i + 1);
                    let Some(mut out) = outs.pop() else {
                        unreachable!("position() found it");
                    };
                    return match out.file.take() {
                        // Opening a file is rare: boxed, so that the future
                        // of every stream does not carry its state.
                        Some(path) => Box::pin(self.respond_with_file(out, rest, path)).await,
                        None => self.respond(out, rest, None),
                    };
                }
                want_body
            };
            if self.app_finished() {
                // The app ended without a response after the client left.
                self.done = true;
                return server_response(500, b"");
            }
            self.wait(want_body).await;
        }
    }

    /// [`Self::respond`] for a pathsend response: opens the file first.
    async fn respond_with_file(
        self: Box<Self>,
        out: Output,
        rest: Vec<Output>,
        path: String,
    ) -> H2Response {
        let file = super::file::open_logged(self.ctx(), &path).await;
        self.respond(out, rest, Some(file))
    }

    /// Builds the response for the output carrying the head. A complete
    /// body goes back with it; anything else continues in a task. `file` is
    /// the opened pathsend file (None inside: it could not be opened).
    fn respond(
        mut self: Box<Self>,
        mut out: Output,
        rest: Vec<Output>,
        file: Option<Option<BodyFile>>,
    ) -> H2Response {
        let mut start = out.start.take().unwrap_or(ResponseStart {
            status: 500,
            headers: Vec::new(),
        });
        let file = match file {
            None => None,
            Some(Some(f)) => {
                add_content_length(&mut start.headers, f.len);
                Some(f)
            }
            Some(None) => {
                out = cormorant_core::asgi::internal_error();
                start = out.start.clone().unwrap_or(ResponseStart {
                    status: 500,
                    headers: Vec::new(),
                });
                None
            }
        };
        self.exchange.status = start.status;
        let Ok(headers) = stream::header_map(own_fields(self.ctx()), start.headers) else {
            self.ctx().log(Level::Error, || {
                "invalid response header from the application".to_owned()
            });
            return server_response(500, b"Internal Server Error");
        };
        let status =
            StatusCode::from_u16(start.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // The length of the file is all a HEAD response needs.
        let file = file.filter(|_| !self.head_only);
        // Complete already: hand it over whole. (A request body still
        // coming is then cut short by hyper with RST_STREAM NO_ERROR.)
        let whole = out.end && out.trailers.is_none() && file.is_none() && rest.is_empty();
        if whole {
            let n = out.body.len();
            self.exchange.sent += n as u64;
            self.written(n);
            self.finish();
            let body = (!out.body.is_empty()).then_some(out.body);
            let mut r = Response::new(H2Body::Full(body));
            *r.status_mut() = status;
            *r.headers_mut() = headers;
            return r;
        }
        let (tx, rx) = mpsc::channel(BODY_CHANNEL);
        self.tx = Some(tx);
        let mut r = Response::new(H2Body::Channel(rx));
        *r.status_mut() = status;
        *r.headers_mut() = headers;
        out.start = None;
        super::driven::spawn(async move {
            let mut pending = Vec::with_capacity(rest.len() + 1);
            pending.push((out, file));
            pending.extend(rest.into_iter().map(|o| (o, None)));
            self.run(pending).await;
        });
        r
    }

    /// After the head: writes the body, pumps the request body, until the
    /// response is complete or the client goes away.
    async fn run(mut self: Box<Self>, first: Vec<(Output, Option<BodyFile>)>) {
        let mut pending = first;
        loop {
            for (out, file) in pending.drain(..) {
                match self.apply(out, file).await {
                    Step::More => {}
                    Step::Done => return self.finish(),
                    Step::Abort => return self.abort().await,
                }
            }
            let (outs, want_body) = self.take_output();
            if !outs.is_empty() {
                pending.extend(outs.into_iter().map(|o| (o, None)));
                continue;
            }
            if self.app_finished() {
                return self.abort().await;
            }
            let Some(tx) = self.tx.clone() else {
                return;
            };
            tokio::select! {
                _ = self.wait(want_body) => {}
                _ = tx.closed() => {
                    // hyper dropped the body: the stream was reset.
                    self.shared.disconnect(&self.ctx().queue);
                    return;
                }
            }
        }
    }

    /// Writes one output after the head.
    async fn apply(&mut self, mut out: Output, file: Option<BodyFile>) -> Step {
        let file = match (file, out.file.take()) {
            (Some(f), _) => Some(f),
            // pathsend is only allowed in place of the first body, which
            // came with the head; anything else is a bug upstream.
            (None, Some(_)) => return Step::Abort,
            (None, None) => None,
        };
        if !out.body.is_empty() {
            let n = out.body.len();
            if !self.send(Frame::data(out.body)).await {
                return Step::Abort;
            }
            self.exchange.sent += n as u64;
            self.written(n);
        }
        if let Some(mut f) = file {
            loop {
                match f.next_chunk().await {
                    Ok(Some(chunk)) => {
                        self.exchange.sent += chunk.len() as u64;
                        if !self.send(Frame::data(chunk)).await {
                            return Step::Abort;
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return Step::Abort,
                }
            }
        }
        if out.abort {
            return Step::Abort;
        }
        if out.end {
            if let Some(fields) = out.trailers {
                let Ok(map) = stream::header_map(None, fields) else {
                    return Step::Abort;
                };
                if !self.send(Frame::trailers(map)).await {
                    return Step::Abort;
                }
            }
            self.tx = None;
            return Step::Done;
        }
        Step::More
    }

    async fn send(&mut self, frame: Frame<Bytes>) -> bool {
        match &self.tx {
            Some(tx) => tx.send(Ok(frame)).await.is_ok(),
            None => false,
        }
    }

    /// The stream is reset (RST_STREAM INTERNAL_ERROR), so the client sees
    /// the response was cut off.
    async fn abort(mut self: Box<Self>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Err(io::Error::other("response aborted"))).await;
        }
        // Dropping the unfinished stream reports it gone to the app.
    }

    /// The response is complete: access log.
    fn finish(&mut self) {
        self.done = true;
        self.conn.finish(&mut self.exchange);
    }

    /// Takes the app's queued output; says whether body bytes are wanted.
    fn take_output(&mut self) -> (Vec<Output>, bool) {
        stream::take_output(&self.shared, self.body.is_some())
    }

    fn app_finished(&self) -> bool {
        stream::app_finished(&self.shared)
    }

    /// Acknowledges body bytes handed to hyper; wakes a `send()` waiting
    /// for room.
    fn written(&self, n: usize) {
        self.shared.written(&self.ctx().queue, n);
    }

    /// Waits for the app, or for request body frames when they are wanted.
    async fn wait(&mut self, want_body: bool) {
        let (shared, Some(body)) = (&self.shared, self.body.as_mut().filter(|_| want_body)) else {
            return self.shared.conn_wake.notified().await;
        };
        let frame = tokio::select! {
            _ = shared.conn_wake.notified() => return,
            frame = next_frame(body) => frame,
        };
        let ctx = &self.conn.ctx;
        let metrics = ctx.metrics.as_ref();
        let mut done = false;
        shared.update(&ctx.queue, |st| {
            done = push_frame(st, frame, metrics);
            // Take whatever else is already here, so the app gets the body
            // in few large messages.
            while !done && st.stream.buffered() < RECV_HIGH_WATER {
                match poll_frame_now(body) {
                    Some(frame) => done = push_frame(st, frame, metrics),
                    None => break,
                }
            }
        });
        if done {
            self.body = None;
        }
    }
}

type FrameResult = Option<Result<Frame<Bytes>, hyper::Error>>;

async fn next_frame(body: &mut Incoming) -> FrameResult {
    std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
}

fn poll_frame_now(body: &mut Incoming) -> Option<FrameResult> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match Pin::new(body).poll_frame(&mut cx) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => None,
    }
}

/// Feeds one request body frame to the stream; true when the body is over
/// (complete, or cut off by a reset).
fn push_frame(
    st: &mut StreamState,
    frame: FrameResult,
    metrics: Option<&crate::metrics::Slot>,
) -> bool {
    let piece = match frame {
        Some(Ok(frame)) => match frame.into_data() {
            Ok(data) => BodyPiece::Data(data),
            // Request trailers are not part of ASGI; they are dropped.
            Err(_) => return false,
        },
        None => BodyPiece::End,
        Some(Err(_)) => BodyPiece::Reset,
    };
    stream::feed_body(st, piece, metrics)
}
