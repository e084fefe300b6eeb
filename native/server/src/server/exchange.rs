//! One request's life on the server side, written once for HTTP/1.1,
//! HTTP/2, static files and WebSocket sessions: admission under
//! `--limit-concurrency`, the count behind `--limit-max-requests`, and one
//! [`Exchange::finish`] that records the metrics and the access line.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use cormorant_core::asgi::{Address, HttpStream, HttpVersion};

use super::ServerCtx;
use super::request_meta::REQUEST_ID;
use crate::access_format::AccessStart;
use crate::handoff::http::Shared;

/// What the access log and the metrics need of a request's head.
pub(super) struct RequestLine<'a> {
    pub(super) method: &'a [u8],
    /// The request-target as sent (path and query).
    pub(super) target: &'a [u8],
    pub(super) version: HttpVersion,
    pub(super) headers: &'a [(Bytes, Bytes)],
}

/// The request was refused: `--limit-concurrency` requests are in flight.
/// The caller answers 503.
#[derive(Debug)]
pub(super) struct Overloaded;

/// A request admitted and counted in flight, until it is dropped.
pub(super) struct Exchange {
    ctx: Arc<ServerCtx>,
    /// Method and start, kept only when the metrics are on.
    measured: Option<(Bytes, Instant)>,
    /// Kept only when the access log is on.
    access: Option<Box<AccessStart>>,
    /// The response status, once the head is known (101 for an accepted
    /// WebSocket).
    pub(super) status: u16,
    /// Response body bytes (WebSocket: message bytes) sent.
    pub(super) sent: u64,
    finished: bool,
}

impl Exchange {
    /// Admits a request and counts it; Err over `--limit-concurrency`.
    pub(super) fn admit(ctx: &Arc<ServerCtx>, line: RequestLine<'_>) -> Result<Self, Overloaded> {
        let n = ctx.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        if ctx.limit_concurrency.is_some_and(|limit| n > limit) {
            ctx.in_flight.fetch_sub(1, Ordering::Relaxed);
            return Err(Overloaded);
        }
        ctx.count_request();
        // Copied only when something will show them.
        let method = || Bytes::copy_from_slice(line.method);
        Ok(Self {
            measured: ctx.metrics.as_ref().map(|_| (method(), Instant::now())),
            access: ctx.access_log.as_ref().map(|log| {
                Box::new(AccessStart {
                    forwarded_client: None,
                    started: Instant::now(),
                    method: method(),
                    target: Bytes::copy_from_slice(line.target),
                    version: line.version.as_str(),
                    headers: log.format().capture(line.headers),
                    request_id: None,
                })
            }),
            ctx: ctx.clone(),
            status: 0,
            sent: 0,
            finished: false,
        })
    }

    /// Notes the request's ID, for the access line.
    pub(super) fn request_id(&mut self, id: &Bytes) {
        if let Some(a) = self.access.as_mut() {
            a.request_id = Some(id.clone());
        }
    }

    /// The state the request shares with the app, over `stream`: with
    /// `--request-id`, the ID is noted for the access line and echoed in
    /// the response.
    pub(super) fn share(&mut self, stream: HttpStream, request_id: Option<&Bytes>) -> Arc<Shared> {
        if let Some(id) = request_id {
            self.request_id(id);
        }
        let echo = request_id.map(|id| (Bytes::from_static(REQUEST_ID), id.clone()));
        Arc::new(Shared::new(stream.with_response_field(echo)))
    }

    /// Notes the client a trusted proxy named, for the access line.
    pub(super) fn forwarded(&mut self, client: Option<&Address>) {
        if let Some(a) = self.access.as_mut() {
            a.forwarded(client);
        }
    }

    /// The response is complete (a WebSocket session, over): records the
    /// metrics and the access line, once. `client` is the peer as the
    /// access log shows it, `scheme` the connection's.
    pub(super) fn finish(&mut self, client: &str, scheme: &str) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        if let (Some(slot), Some((method, started))) = (&self.ctx.metrics, &self.measured) {
            slot.record(method, self.status, started.elapsed(), self.sent);
        }
        if let (Some(log), Some(access)) = (&self.ctx.access_log, &self.access) {
            log.record(&access.entry(client, scheme, self.status, self.sent));
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.ctx.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
