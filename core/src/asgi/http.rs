//! One ASGI HTTP request/response cycle ("stream"), independent of the
//! HTTP version that carries it.
//!
//! # Call order
//! * The transport feeds the request body with [`HttpStream::handle_body`]
//!   and the loss of the client with [`HttpStream::handle_disconnect`].
//! * Each `receive()` of the application calls [`HttpStream::poll_receive`];
//!   on [`Receive::Pending`] the frontend MUST wait for one of the inputs
//!   above and ask again (level-triggered).
//! * Each `send()` of the application calls [`HttpStream::handle_app`], which
//!   validates the message and returns what to write.
//! * When the application returns or raises, the frontend calls
//!   [`HttpStream::handle_app_exit`] and writes what it returns.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::HttpVersion;

/// A message the application passed to `send()`, already converted from the
/// host language's mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppMessage {
    /// `http.response.start`
    HttpResponseStart {
        /// `status`
        status: u16,
        /// `headers`
        headers: Vec<(Bytes, Bytes)>,
        /// `trailers`: whether `http.response.trailers` will follow.
        trailers: bool,
    },
    /// `http.response.body`
    HttpResponseBody {
        /// `body`
        body: Bytes,
        /// `more_body`
        more_body: bool,
    },
    /// `http.response.trailers` (extension): trailer fields after the final
    /// body, when the start message said `trailers`.
    HttpResponseTrailers {
        /// `headers`
        headers: Vec<(Bytes, Bytes)>,
        /// `more_trailers`
        more_trailers: bool,
    },
    /// `http.response.early_hint` (extension): a `103 Early Hints` interim
    /// response with one `link` field per entry. The extension allows it
    /// after `http.response.start` and before the final body; one sent
    /// before the start is accepted too.
    HttpResponseEarlyHint {
        /// `links`
        links: Vec<Bytes>,
    },
    /// `http.response.pathsend` (extension): the whole body is the file at
    /// `path`, which the frontend streams itself.
    HttpResponsePathsend {
        /// `path`: absolute path of the file.
        path: String,
    },
}

/// The optional ASGI HTTP extensions a frontend supports on one stream; it
/// advertises exactly these in `scope["extensions"]`, and the stream accepts
/// their messages only when they are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extensions {
    /// `http.response.trailers`
    pub trailers: bool,
    /// `http.response.early_hint`
    pub early_hint: bool,
    /// `http.response.pathsend`
    pub pathsend: bool,
}

impl Extensions {
    /// The extensions for one request:
    /// * `trailers` where the client said it takes them (`TE: trailers`,
    ///   RFC 9110 §6.5.1) and the framing can carry them: HTTP/1.1 chunked,
    ///   or HTTP/2, whose clients may not refuse them (RFC 9113 §8.2.2);
    /// * `early_hint` where a 1xx may be sent: never to an HTTP/1.0 client
    ///   (RFC 9110 §15.2), and only when the frontend's transport can send
    ///   one (`informational`);
    /// * `pathsend` always.
    pub fn for_request(
        version: HttpVersion,
        headers: &[(Bytes, Bytes)],
        informational: bool,
    ) -> Self {
        let te_trailers = || {
            headers
                .iter()
                .filter(|(n, _)| n.as_ref() == b"te")
                .any(|(_, v)| crate::http::list_has_token(v, b"trailers"))
        };
        Self {
            trailers: match version {
                HttpVersion::Http10 => false,
                HttpVersion::Http11 => te_trailers(),
                HttpVersion::Http2 | HttpVersion::Http3 => true,
            },
            early_hint: informational && version != HttpVersion::Http10,
            pathsend: true,
        }
    }
}

/// What `receive()` yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receive {
    /// `http.request`
    HttpRequest {
        /// `body`: everything buffered so far, coalesced.
        body: Bytes,
        /// `more_body`
        more_body: bool,
    },
    /// `http.disconnect`
    HttpDisconnect,
    /// Nothing yet: wait for body data or a disconnect.
    Pending,
}

/// A response head to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseStart {
    /// Status code.
    pub status: u16,
    /// Header fields as given by the application.
    pub headers: Vec<(Bytes, Bytes)>,
}

/// What the frontend must write after a `send()` or the end of the app.
/// The head is held back until the first body message so that a small
/// response leaves in one write.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// An interim (1xx) response to write before anything else.
    pub informational: Option<ResponseStart>,
    /// A response head to write first.
    pub start: Option<ResponseStart>,
    /// Body bytes to write (may be empty).
    pub body: Bytes,
    /// The rest of the body is this file (`http.response.pathsend`); `end`
    /// is set too. The frontend adds `content-length` when the head lacks
    /// framing; for a HEAD request it sends only that length, not the file.
    pub file: Option<String>,
    /// Trailer fields to end the body with (`end` is set too).
    pub trailers: Option<Vec<(Bytes, Bytes)>>,
    /// The response is complete.
    pub end: bool,
    /// The response cannot be completed: close the connection without
    /// finishing the message, so the client sees it was cut off.
    pub abort: bool,
    /// An `http.response.early_hint` came after the response head was
    /// given to the transport, so it was dropped (a 1xx cannot follow the
    /// final head). Nothing is written; the frontend SHOULD log it at debug
    /// level.
    pub early_hint_dropped: bool,
}

impl Output {
    /// Whether there is nothing to write (cheaper than comparing with
    /// `Output::default()`).
    pub fn is_empty(&self) -> bool {
        self.informational.is_none()
            && self.start.is_none()
            && self.body.is_empty()
            && self.file.is_none()
            && self.trailers.is_none()
            && !self.end
            && !self.abort
            && !self.early_hint_dropped
    }
}

/// Why `send()` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The client is gone (ASGI spec 2.4: an `OSError` subclass in Python).
    #[error("client disconnected")]
    Disconnected,
    /// The message is not allowed now or is invalid.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Response {
    /// Waiting for `http.response.start`.
    Idle,
    /// Start received, held back until the first body message.
    StartPending,
    /// Head given to the transport; body messages may follow.
    Body,
    /// The final body was sent; `http.response.trailers` messages follow.
    Trailers,
    /// The final body message was sent.
    Done,
    /// The response was cut off after an error.
    Aborted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    /// More body may come from the transport.
    Receiving,
    /// The transport delivered the whole body; buffered chunks may remain.
    Complete,
    /// The last `http.request` (more_body false) was yielded.
    Delivered,
}

/// The state of one ASGI HTTP stream.
#[derive(Debug)]
pub struct HttpStream {
    request: Request,
    response: Response,
    disconnected: bool,
    head_only: bool,
    chunks: VecDeque<Bytes>,
    buffered: usize,
    pending_start: Option<ResponseStart>,
    extensions: Extensions,
    /// The start message announced trailers.
    trailers_announced: bool,
    /// Trailer fields gathered from `more_trailers` messages.
    trailers: Vec<(Bytes, Bytes)>,
    /// A field every response head of this stream carries unless the app
    /// set it (the request ID, echoed).
    /// Boxed: most streams have none, and a stream is moved and dropped
    /// once per request.
    echo: Option<Box<(Bytes, Bytes)>>,
}

/// The body of the 500 response sent when the application fails before
/// starting its response.
const INTERNAL_ERROR_BODY: &[u8] = b"Internal Server Error";
/// The body of the 503 sent when the server sheds a request.
const SHED_BODY: &[u8] = b"Service Unavailable";

impl HttpStream {
    /// A new stream. `has_body` is false when the request has no body at all
    /// (the first `receive()` then yields an empty final `http.request`).
    /// `head_only` is true for HEAD requests (the body sent is not written).
    pub fn new(has_body: bool, head_only: bool) -> Self {
        Self {
            request: if has_body {
                Request::Receiving
            } else {
                Request::Complete
            },
            response: Response::Idle,
            disconnected: false,
            head_only,
            chunks: VecDeque::new(),
            buffered: 0,
            pending_start: None,
            extensions: Extensions::default(),
            trailers_announced: false,
            trailers: Vec::new(),
            echo: None,
        }
    }

    /// Adds the field `(name, value)` (`name` lowercase), when given, to
    /// the response head, whoever writes it (the app, or the server's 500
    /// or 503), unless the app set that field itself.
    #[inline]
    pub fn with_response_field(mut self, field: Option<(Bytes, Bytes)>) -> Self {
        self.echo = field.map(Box::new);
        self
    }

    /// Adds the echoed field to a head on its way out.
    fn echoed(&self, mut out: Output) -> Output {
        if let (Some(echo), Some(start)) = (&self.echo, out.start.as_mut()) {
            let (name, value) = &**echo;
            if !start
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                start.headers.push((name.clone(), value.clone()));
            }
        }
        out
    }

    /// The server sheds the request before the app starts (it waited too
    /// long): a complete `503 Service Unavailable` with `Retry-After`.
    /// Nothing more is accepted from the app for this stream.
    pub fn handle_shed(&mut self, retry_after_secs: u32) -> Output {
        if self.response != Response::Idle {
            return Output::default();
        }
        self.response = Response::Done;
        let mut headers = crate::http::plain_text_fields(SHED_BODY);
        headers.push((
            Bytes::from_static(b"retry-after"),
            crate::http::decimal_value(u64::from(retry_after_secs)),
        ));
        let out = Output {
            start: Some(ResponseStart {
                status: 503,
                headers,
            }),
            body: if self.head_only {
                Bytes::new()
            } else {
                Bytes::from_static(SHED_BODY)
            },
            end: true,
            ..Output::default()
        };
        self.echoed(out)
    }

    /// Turns on the extensions the frontend supports for this stream.
    pub fn with_extensions(mut self, extensions: Extensions) -> Self {
        self.extensions = extensions;
        self
    }

    /// The extensions on for this stream (what `scope["extensions"]` lists).
    pub fn extensions(&self) -> Extensions {
        self.extensions
    }

    /// Feeds a piece of the request body; `more` is false on the last one.
    pub fn handle_body(&mut self, chunk: Bytes, more: bool) {
        if self.request != Request::Receiving {
            return;
        }
        if !chunk.is_empty() {
            self.buffered += chunk.len();
            self.chunks.push_back(chunk);
        }
        if !more {
            self.request = Request::Complete;
        }
    }

    /// The client went away (connection closed or stream reset).
    pub fn handle_disconnect(&mut self) {
        self.disconnected = true;
    }

    /// Bytes of request body buffered and not yet given to the application.
    /// The transport reads more only while this is below its high-water mark.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Whether the application is owed more request body: the transport
    /// should keep reading (100-continue is sent on the first such read).
    pub fn wants_body(&self) -> bool {
        self.request == Request::Receiving && !self.disconnected
    }

    /// Whether the client is known to be gone.
    pub fn is_disconnected(&self) -> bool {
        self.disconnected
    }

    /// Whether the response is complete (or was aborted).
    pub fn is_finished(&self) -> bool {
        matches!(self.response, Response::Done | Response::Aborted)
    }

    /// Whether a response head was given to the transport.
    pub fn response_started(&self) -> bool {
        !matches!(self.response, Response::Idle | Response::StartPending)
    }

    /// Whether [`Self::poll_receive`] would yield something other than
    /// [`Receive::Pending`].
    pub fn receive_ready(&self) -> bool {
        self.disconnected
            || self.is_finished()
            || match self.request {
                Request::Delivered => false,
                Request::Receiving => !self.chunks.is_empty(),
                Request::Complete => true,
            }
    }

    /// What the application's `receive()` yields now.
    pub fn poll_receive(&mut self) -> Receive {
        if self.disconnected || self.is_finished() {
            // After the response, nothing more can arrive for this request.
            return Receive::HttpDisconnect;
        }
        match self.request {
            Request::Delivered => Receive::Pending,
            Request::Receiving if self.chunks.is_empty() => Receive::Pending,
            Request::Receiving | Request::Complete => {
                let body = self.take_chunks();
                let more_body = self.request == Request::Receiving;
                if !more_body {
                    self.request = Request::Delivered;
                }
                Receive::HttpRequest { body, more_body }
            }
        }
    }

    fn take_chunks(&mut self) -> Bytes {
        self.buffered = 0;
        match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks.pop_front().unwrap_or_default(),
            _ => {
                let len = self.chunks.iter().map(Bytes::len).sum();
                let mut all = BytesMut::with_capacity(len);
                for c in self.chunks.drain(..) {
                    all.extend_from_slice(&c);
                }
                all.freeze()
            }
        }
    }

    /// Validates a message from `send()` and returns what to write.
    pub fn handle_app(&mut self, msg: AppMessage) -> Result<Output, SendError> {
        let out = self.handle_app_message(msg)?;
        Ok(if self.echo.is_some() && out.start.is_some() {
            self.echoed(out)
        } else {
            out
        })
    }

    // Inlined into its one caller, so that the output is not moved twice.
    #[inline(always)]
    fn handle_app_message(&mut self, msg: AppMessage) -> Result<Output, SendError> {
        if self.disconnected {
            return Err(SendError::Disconnected);
        }
        match (self.response, msg) {
            (
                Response::Idle,
                AppMessage::HttpResponseStart {
                    status,
                    headers,
                    trailers,
                },
            ) => {
                if !(100..=999).contains(&status) {
                    return Err(SendError::Invalid(format!(
                        "invalid HTTP status code {status} in 'http.response.start'"
                    )));
                }
                if (100..200).contains(&status) {
                    return Err(SendError::Invalid(format!(
                        "status {status} is informational and cannot be a final response"
                    )));
                }
                self.trailers_announced = trailers;
                self.pending_start = Some(ResponseStart { status, headers });
                self.response = Response::StartPending;
                Ok(Output::default())
            }
            // asgiref extensions, "Early Hints": any time after the start
            // and before the final body. The 103 goes out while the final
            // head is still held back; once the head is on its way a 1xx
            // can no longer precede it (RFC 9110 §15.2), so the hint is
            // dropped and the response carries on.
            (
                Response::Idle | Response::StartPending | Response::Body,
                AppMessage::HttpResponseEarlyHint { links },
            ) => {
                if !self.extensions.early_hint {
                    // Not advertised: an app that sends it anyway loses only
                    // a hint.
                    return Ok(Output::default());
                }
                if self.response == Response::Body {
                    return Ok(Output {
                        early_hint_dropped: true,
                        ..Output::default()
                    });
                }
                let headers = links
                    .into_iter()
                    .map(|l| (Bytes::from_static(b"link"), l))
                    .collect();
                Ok(Output {
                    informational: Some(ResponseStart {
                        status: 103,
                        headers,
                    }),
                    ..Output::default()
                })
            }
            (Response::Idle, other) => Err(SendError::Invalid(format!(
                "expected ASGI message 'http.response.start', but got '{}'",
                message_type(&other)
            ))),
            (
                Response::StartPending | Response::Body,
                AppMessage::HttpResponseBody { body, more_body },
            ) => {
                let trailers_follow = !more_body && self.trailers_announced;
                let mut start = self.pending_start.take();
                if let Some(start) = &mut start {
                    // With trailers to come on HTTP/1.1 the body must be
                    // chunked, so no length.
                    if !more_body && !self.head_only && !trailers_follow {
                        add_content_length(start, body.len());
                    }
                }
                self.response = match (more_body, trailers_follow) {
                    (true, _) => Response::Body,
                    (false, true) => Response::Trailers,
                    (false, false) => Response::Done,
                };
                let body = if self.head_only { Bytes::new() } else { body };
                Ok(Output {
                    start,
                    body,
                    end: !more_body && !trailers_follow,
                    ..Output::default()
                })
            }
            (Response::StartPending, AppMessage::HttpResponsePathsend { path }) => {
                if !self.extensions.pathsend {
                    return Err(SendError::Invalid(
                        "'http.response.pathsend' is not supported here".into(),
                    ));
                }
                if !path.starts_with('/') {
                    return Err(SendError::Invalid(format!(
                        "'http.response.pathsend' needs an absolute path, got {path:?}"
                    )));
                }
                self.response = if self.trailers_announced {
                    Response::Trailers
                } else {
                    Response::Done
                };
                Ok(Output {
                    start: self.pending_start.take(),
                    file: Some(path),
                    end: !self.trailers_announced,
                    ..Output::default()
                })
            }
            (
                Response::Trailers,
                AppMessage::HttpResponseTrailers {
                    headers,
                    more_trailers,
                },
            ) => {
                self.trailers.extend(headers);
                if more_trailers {
                    return Ok(Output::default());
                }
                self.response = Response::Done;
                let fields = std::mem::take(&mut self.trailers);
                Ok(Output {
                    trailers: self.extensions.trailers.then_some(fields),
                    end: true,
                    ..Output::default()
                })
            }
            (Response::StartPending | Response::Body, AppMessage::HttpResponseStart { .. }) => {
                Err(SendError::Invalid(
                    "got a second 'http.response.start' after the response started".into(),
                ))
            }
            (Response::Trailers, other) => Err(SendError::Invalid(format!(
                "expected ASGI message 'http.response.trailers', but got '{}'",
                message_type(&other)
            ))),
            (Response::StartPending | Response::Body, other) => Err(SendError::Invalid(format!(
                "unexpected ASGI message '{}' in the middle of the response",
                message_type(&other)
            ))),
            (Response::Done | Response::Aborted, _) => Err(SendError::Invalid(
                "unexpected ASGI message after the response completed".into(),
            )),
        }
    }

    /// The application returned (`failed` false) or raised (`failed` true).
    /// Returns what to write: a 500 when no response was started, an abort
    /// when one was started and not finished.
    pub fn handle_app_exit(&mut self, failed: bool) -> Output {
        let _ = failed;
        match self.response {
            Response::Done | Response::Aborted => Output::default(),
            // Nothing reached the wire yet, so the client can still get a 500.
            Response::Idle | Response::StartPending => {
                self.pending_start = None;
                self.response = Response::Done;
                if self.disconnected {
                    return Output::default();
                }
                self.echoed(internal_error())
            }
            // The body is complete; only the announced trailers are
            // missing. End the message without them.
            Response::Trailers => {
                self.response = Response::Done;
                Output {
                    end: true,
                    ..Output::default()
                }
            }
            Response::Body => {
                self.response = Response::Aborted;
                Output {
                    abort: true,
                    ..Output::default()
                }
            }
        }
    }
}

/// A response whose whole body is known when its head is written gets a
/// `content-length` (unless the app set one, or the status has no body), so
/// it needs no chunked framing.
fn add_content_length(start: &mut ResponseStart, len: usize) {
    if start.status == 204 || start.status == 304 || (100..200).contains(&start.status) {
        return;
    }
    let has_framing = start.headers.iter().any(|(n, _)| {
        n.eq_ignore_ascii_case(b"content-length") || n.eq_ignore_ascii_case(b"transfer-encoding")
    });
    if !has_framing {
        start.headers.push((
            Bytes::from_static(b"content-length"),
            crate::http::decimal_value(len as u64),
        ));
    }
}

/// A complete `500 Internal Server Error` response.
pub fn internal_error() -> Output {
    Output {
        start: Some(ResponseStart {
            status: 500,
            headers: crate::http::plain_text_fields(INTERNAL_ERROR_BODY),
        }),
        body: Bytes::from_static(INTERNAL_ERROR_BODY),
        end: true,
        ..Output::default()
    }
}

/// The `type` of a message, for error text.
fn message_type(msg: &AppMessage) -> &'static str {
    match msg {
        AppMessage::HttpResponseStart { .. } => "http.response.start",
        AppMessage::HttpResponseBody { .. } => "http.response.body",
        AppMessage::HttpResponseTrailers { .. } => "http.response.trailers",
        AppMessage::HttpResponseEarlyHint { .. } => "http.response.early_hint",
        AppMessage::HttpResponsePathsend { .. } => "http.response.pathsend",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(status: u16) -> AppMessage {
        AppMessage::HttpResponseStart {
            status,
            headers: vec![],
            trailers: false,
        }
    }

    fn body(b: &'static [u8], more_body: bool) -> AppMessage {
        AppMessage::HttpResponseBody {
            body: Bytes::from_static(b),
            more_body,
        }
    }

    #[test]
    fn no_body_request_yields_one_empty_final_request() {
        let mut s = HttpStream::new(false, false);
        assert_eq!(
            s.poll_receive(),
            Receive::HttpRequest {
                body: Bytes::new(),
                more_body: false
            }
        );
        assert_eq!(s.poll_receive(), Receive::Pending);
        s.handle_disconnect();
        assert_eq!(s.poll_receive(), Receive::HttpDisconnect);
    }

    #[test]
    fn body_chunks_are_coalesced() {
        let mut s = HttpStream::new(true, false);
        assert_eq!(s.poll_receive(), Receive::Pending);
        assert!(s.wants_body());
        s.handle_body(Bytes::from_static(b"ab"), true);
        s.handle_body(Bytes::from_static(b"cd"), true);
        assert_eq!(s.buffered(), 4);
        assert_eq!(
            s.poll_receive(),
            Receive::HttpRequest {
                body: Bytes::from_static(b"abcd"),
                more_body: true
            }
        );
        assert_eq!(s.buffered(), 0);
        s.handle_body(Bytes::from_static(b"e"), false);
        assert!(!s.wants_body());
        assert_eq!(
            s.poll_receive(),
            Receive::HttpRequest {
                body: Bytes::from_static(b"e"),
                more_body: false
            }
        );
        assert_eq!(s.poll_receive(), Receive::Pending);
    }

    #[test]
    fn head_is_held_until_first_body() {
        let mut s = HttpStream::new(false, false);
        let out = s.handle_app(start(200)).unwrap();
        assert_eq!(out, Output::default());
        assert!(!s.response_started());
        let out = s.handle_app(body(b"hi", false)).unwrap();
        let start = out.start.unwrap();
        assert_eq!(start.status, 200);
        // The whole body is known: it gets a content-length.
        assert_eq!(
            start.headers,
            vec![(
                Bytes::from_static(b"content-length"),
                Bytes::from_static(b"2")
            )]
        );
        assert_eq!(&out.body[..], b"hi");
        assert!(out.end);
        assert!(s.is_finished());
        assert_eq!(s.poll_receive(), Receive::HttpDisconnect);
    }

    fn field<'a>(out: &'a Output, name: &[u8]) -> Option<&'a [u8]> {
        let start = out.start.as_ref()?;
        start
            .headers
            .iter()
            .find(|(n, _)| n.as_ref() == name)
            .map(|(_, v)| v.as_ref())
    }

    #[test]
    fn the_echoed_field_is_on_every_head_unless_the_app_set_it() {
        let id = || {
            (
                Bytes::from_static(b"x-request-id"),
                Bytes::from_static(b"abc"),
            )
        };
        let mut s = HttpStream::new(false, false).with_response_field(Some(id()));
        s.handle_app(start(200)).unwrap();
        let out = s.handle_app(body(b"hi", false)).unwrap();
        assert_eq!(field(&out, b"x-request-id"), Some(&b"abc"[..]));

        let mut s = HttpStream::new(false, false).with_response_field(Some(id()));
        let own = AppMessage::HttpResponseStart {
            status: 200,
            headers: vec![(
                Bytes::from_static(b"X-Request-ID"),
                Bytes::from_static(b"mine"),
            )],
            trailers: false,
        };
        s.handle_app(own).unwrap();
        let out = s.handle_app(body(b"", false)).unwrap();
        let ids: Vec<_> = out
            .start
            .unwrap()
            .headers
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"x-request-id"))
            .collect();
        assert_eq!(ids.len(), 1);
        assert_eq!(&ids[0].1[..], b"mine");

        // The server's own 500 carries it too.
        let mut s = HttpStream::new(false, false).with_response_field(Some(id()));
        let out = s.handle_app_exit(true);
        assert_eq!(out.start.as_ref().map(|s| s.status), Some(500));
        assert_eq!(field(&out, b"x-request-id"), Some(&b"abc"[..]));
    }

    #[test]
    fn a_shed_request_gets_503_with_retry_after_and_the_app_nothing() {
        let mut s = HttpStream::new(true, false);
        let out = s.handle_shed(1);
        assert_eq!(out.start.as_ref().map(|s| s.status), Some(503));
        assert_eq!(field(&out, b"retry-after"), Some(&b"1"[..]));
        assert_eq!(&out.body[..], b"Service Unavailable");
        assert!(out.end);
        assert!(s.is_finished());
        // A stream whose response began cannot be shed.
        let mut s = HttpStream::new(false, false);
        s.handle_app(start(200)).unwrap();
        s.handle_app(body(b"x", true)).unwrap();
        assert!(s.handle_shed(1).is_empty());
        // HEAD: the head only.
        let mut s = HttpStream::new(false, true);
        assert!(s.handle_shed(1).body.is_empty());
    }

    #[test]
    fn ordering_is_enforced() {
        let mut s = HttpStream::new(false, false);
        assert!(matches!(
            s.handle_app(body(b"x", false)),
            Err(SendError::Invalid(_))
        ));
        s.handle_app(start(200)).unwrap();
        assert!(matches!(
            s.handle_app(start(200)),
            Err(SendError::Invalid(_))
        ));
        s.handle_app(body(b"", true)).unwrap();
        s.handle_app(body(b"", false)).unwrap();
        assert!(matches!(
            s.handle_app(body(b"", false)),
            Err(SendError::Invalid(_))
        ));
    }

    #[test]
    fn invalid_status_is_rejected() {
        let mut s = HttpStream::new(false, false);
        assert!(s.handle_app(start(99)).is_err());
        assert!(s.handle_app(start(1000)).is_err());
        assert!(s.handle_app(start(103)).is_err());
        assert!(s.handle_app(start(204)).is_ok());
    }

    #[test]
    fn send_after_disconnect_is_disconnected() {
        let mut s = HttpStream::new(false, false);
        s.handle_disconnect();
        assert_eq!(s.handle_app(start(200)), Err(SendError::Disconnected));
    }

    #[test]
    fn exit_without_response_gives_500() {
        let mut s = HttpStream::new(false, false);
        let out = s.handle_app_exit(false);
        assert_eq!(out.start.unwrap().status, 500);
        assert!(out.end);
        assert_eq!(s.handle_app_exit(false), Output::default());
    }

    #[test]
    fn exit_after_start_without_body_still_gives_500() {
        let mut s = HttpStream::new(false, false);
        s.handle_app(start(200)).unwrap();
        // The head was never written, so the client can still get an error.
        let out = s.handle_app_exit(true);
        assert_eq!(out.start.unwrap().status, 500);
        assert!(!out.abort);
    }

    #[test]
    fn exit_mid_body_aborts() {
        let mut s = HttpStream::new(false, false);
        s.handle_app(start(200)).unwrap();
        s.handle_app(body(b"part", true)).unwrap();
        let out = s.handle_app_exit(true);
        assert!(out.abort);
        assert!(!out.end);
    }

    #[test]
    fn head_request_drops_body() {
        let mut s = HttpStream::new(false, true);
        s.handle_app(start(200)).unwrap();
        let out = s.handle_app(body(b"ignored", false)).unwrap();
        assert!(out.body.is_empty());
        assert!(out.end);
    }

    const ALL: Extensions = Extensions {
        trailers: true,
        early_hint: true,
        pathsend: true,
    };

    fn start_with_trailers(status: u16) -> AppMessage {
        AppMessage::HttpResponseStart {
            status,
            headers: vec![],
            trailers: true,
        }
    }

    fn trailers(name: &'static [u8], more_trailers: bool) -> AppMessage {
        AppMessage::HttpResponseTrailers {
            headers: vec![(Bytes::from_static(name), Bytes::from_static(b"v"))],
            more_trailers,
        }
    }

    #[test]
    fn trailers_end_the_response_and_are_gathered() {
        let mut s = HttpStream::new(false, false).with_extensions(ALL);
        s.handle_app(start_with_trailers(200)).unwrap();
        let out = s.handle_app(body(b"data", false)).unwrap();
        assert!(!out.end, "the message ends with the trailers");
        let head = out.start.unwrap();
        assert!(
            !head
                .headers
                .iter()
                .any(|(n, _)| n.as_ref() == b"content-length"),
            "trailers need chunked framing on HTTP/1.1"
        );
        assert_eq!(
            s.handle_app(trailers(b"a", true)).unwrap(),
            Output::default()
        );
        let out = s.handle_app(trailers(b"b", false)).unwrap();
        assert!(out.end);
        let names: Vec<_> = out.trailers.unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, [&b"a"[..], &b"b"[..]]);
        assert!(s.is_finished());
        assert!(s.handle_app(trailers(b"c", false)).is_err());
    }

    #[test]
    fn trailers_in_the_wrong_place_are_refused() {
        let mut s = HttpStream::new(false, false).with_extensions(ALL);
        s.handle_app(start(200)).unwrap();
        let err = s.handle_app(trailers(b"a", false)).unwrap_err();
        assert!(err.to_string().contains("http.response.trailers"), "{err}");

        let mut s = HttpStream::new(false, false).with_extensions(ALL);
        s.handle_app(start_with_trailers(200)).unwrap();
        s.handle_app(body(b"", false)).unwrap();
        let err = s.handle_app(body(b"x", false)).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected ASGI message 'http.response.trailers'")
        );
    }

    #[test]
    fn trailers_without_the_extension_are_dropped() {
        let mut s = HttpStream::new(false, false);
        s.handle_app(start_with_trailers(200)).unwrap();
        s.handle_app(body(b"data", false)).unwrap();
        let out = s.handle_app(trailers(b"a", false)).unwrap();
        assert!(out.end);
        assert_eq!(out.trailers, None);
    }

    #[test]
    fn exit_while_trailers_are_owed_ends_the_message() {
        let mut s = HttpStream::new(false, false).with_extensions(ALL);
        s.handle_app(start_with_trailers(200)).unwrap();
        s.handle_app(body(b"data", false)).unwrap();
        let out = s.handle_app_exit(false);
        assert!(out.end && !out.abort);
    }

    fn hint(link: &'static [u8]) -> AppMessage {
        AppMessage::HttpResponseEarlyHint {
            links: vec![Bytes::from_static(link)],
        }
    }

    #[test]
    fn early_hint_gives_a_103_with_links() {
        let mut s = HttpStream::new(false, false).with_extensions(ALL);
        let out = s.handle_app(hint(b"</a.css>; rel=preload")).unwrap();
        let informational = out.informational.unwrap();
        assert_eq!(informational.status, 103);
        assert_eq!(informational.headers[0].0.as_ref(), b"link");
        assert!(out.start.is_none() && !out.end);
    }

    #[test]
    fn early_hint_after_the_start_precedes_the_held_back_head() {
        let mut s = HttpStream::new(false, false).with_extensions(ALL);
        s.handle_app(start(200)).unwrap();
        for link in [&b"</a.css>; rel=preload"[..], b"</b.js>; rel=preload"] {
            let out = s.handle_app(hint(link)).unwrap();
            let informational = out.informational.unwrap();
            assert_eq!(informational.status, 103);
            assert_eq!(informational.headers[0].1.as_ref(), link);
            assert!(out.start.is_none() && !out.early_hint_dropped);
        }
        let out = s.handle_app(body(b"ok", false)).unwrap();
        assert_eq!(
            out.start.unwrap().status,
            200,
            "the final head still follows"
        );
        assert!(out.end);
    }

    #[test]
    fn early_hint_after_the_head_left_is_dropped_and_the_response_completes() {
        let mut s = HttpStream::new(false, false).with_extensions(ALL);
        s.handle_app(start(200)).unwrap();
        s.handle_app(body(b"a", true)).unwrap();
        let out = s.handle_app(hint(b"</a.css>; rel=preload")).unwrap();
        assert!(out.early_hint_dropped && out.informational.is_none());
        assert!(out.start.is_none() && out.body.is_empty() && !out.end);
        let out = s.handle_app(body(b"b", false)).unwrap();
        assert!(out.end && s.is_finished());
    }

    #[test]
    fn early_hint_after_the_final_body_is_refused() {
        let mut s = HttpStream::new(false, false).with_extensions(ALL);
        s.handle_app(start(200)).unwrap();
        s.handle_app(body(b"a", false)).unwrap();
        assert!(s.handle_app(hint(b"</a.css>")).is_err());
    }

    #[test]
    fn extensions_follow_the_protocol_and_the_request() {
        let te = |v: &'static [u8]| vec![(Bytes::from_static(b"te"), Bytes::from_static(v))];
        let h11 = Extensions::for_request(HttpVersion::Http11, &te(b"gzip, trailers"), true);
        assert!(h11.trailers && h11.early_hint && h11.pathsend);
        let no_te = Extensions::for_request(HttpVersion::Http11, &[], true);
        assert!(!no_te.trailers, "trailers only when the client takes them");
        let h10 = Extensions::for_request(HttpVersion::Http10, &te(b"trailers"), true);
        assert!(
            !h10.trailers && !h10.early_hint,
            "no chunking and no 1xx on HTTP/1.0"
        );
        let h2 = Extensions::for_request(HttpVersion::Http2, &[], false);
        assert!(h2.trailers && !h2.early_hint);
        let h3 = Extensions::for_request(HttpVersion::Http3, &[], true);
        assert!(
            h3.trailers && h3.early_hint,
            "HTTP/3 frames trailers and 1xx"
        );
        assert_eq!(HttpVersion::Http3.as_str(), "3");
    }

    #[test]
    fn early_hint_without_the_extension_is_ignored() {
        let mut s = HttpStream::new(false, false);
        let out = s
            .handle_app(AppMessage::HttpResponseEarlyHint { links: vec![] })
            .unwrap();
        assert_eq!(out, Output::default());
        s.handle_app(start(200)).unwrap();
        let out = s.handle_app(hint(b"</a.css>")).unwrap();
        assert_eq!(out, Output::default(), "ignored after the start too");
    }

    #[test]
    fn pathsend_is_the_whole_body() {
        let mut s = HttpStream::new(false, false).with_extensions(ALL);
        s.handle_app(start(200)).unwrap();
        let out = s
            .handle_app(AppMessage::HttpResponsePathsend {
                path: "/tmp/f".into(),
            })
            .unwrap();
        assert_eq!(out.file.as_deref(), Some("/tmp/f"));
        assert!(out.end && out.start.is_some());
        assert!(s.is_finished());
    }

    #[test]
    fn pathsend_rules() {
        let send = |p: &str| AppMessage::HttpResponsePathsend { path: p.into() };
        let mut s = HttpStream::new(false, false);
        s.handle_app(start(200)).unwrap();
        assert!(s.handle_app(send("/f")).is_err(), "not advertised");

        let mut s = HttpStream::new(false, false).with_extensions(ALL);
        s.handle_app(start(200)).unwrap();
        assert!(s.handle_app(send("relative")).is_err());
        s.handle_app(body(b"x", true)).unwrap();
        assert!(s.handle_app(send("/f")).is_err(), "after body started");

        let mut s = HttpStream::new(false, true).with_extensions(ALL);
        s.handle_app(start(200)).unwrap();
        let out = s.handle_app(send("/f")).unwrap();
        assert_eq!(
            out.file.as_deref(),
            Some("/f"),
            "HEAD still needs the length"
        );
        assert!(out.end);
    }
}
