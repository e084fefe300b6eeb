//! One WSGI response: `start_response`, then the body from the iterable
//! and the `write()` callable (PEP 3333 "The start_response() Callable",
//! "Buffering and Streaming"), as ASGI messages for an
//! [`HttpStream`](crate::asgi::HttpStream).

use bytes::Bytes;

use crate::asgi::AppMessage;
use crate::http::field_error;

/// What one call hands to the stream, in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ToSend {
    /// `http.response.start`, when the head goes out with this call.
    pub start: Option<AppMessage>,
    /// `http.response.body`, unless there is nothing to send.
    pub body: Option<AppMessage>,
}

/// A `start_response` call that cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// The head already went out: the server must re-raise the
    /// exception the app passed as `exc_info`.
    Reraise,
    /// Called a second time without `exc_info`, or with an invalid
    /// status line; the message says which.
    Invalid(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Reraise => f.write_str("the response head was already sent"),
            Self::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StartError {}

/// The status code of a `start_response` status line: three digits, a
/// space and a reason phrase (which may be empty), as PEP 3333 asks.
pub fn parse_status(status: &str) -> Result<u16, StartError> {
    let b = status.as_bytes();
    let digits = b.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
    let code = match (digits, b.get(3)) {
        (Some(d), Some(b' ')) => d.iter().fold(0u16, |n, &c| n * 10 + u16::from(c - b'0')),
        _ => {
            return Err(StartError::Invalid(format!(
                "invalid status {status:?}: expected three digits, a space and a reason, as \"200 OK\""
            )));
        }
    };
    if !(200..=999).contains(&code) {
        return Err(StartError::Invalid(format!(
            "invalid status {status:?}: a WSGI response's status is a final one (200 to 999)"
        )));
    }
    Ok(code)
}

/// Hop-by-hop fields (RFC 9110 §7.6.1), which PEP 3333 forbids the app:
/// the server frames and manages the connection itself, so they are left
/// out.
const HOP_BY_HOP: &[&[u8]] = &[
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"trailers",
    b"transfer-encoding",
    b"upgrade",
];

/// Whether `name` is one of [`HOP_BY_HOP`] (most names are ruled out by
/// their length or first letter).
fn is_hop_by_hop(name: &[u8]) -> bool {
    matches!(name.len(), 2 | 7 | 10 | 17 | 18 | 19)
        && matches!(name[0] | 0x20, b'c' | b'k' | b'p' | b't' | b'u')
        && HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// Where the response is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// `start_response` not called yet.
    Idle,
    /// Status and headers set, not sent: a later `start_response` with
    /// `exc_info` may still replace them.
    Set {
        status: u16,
        headers: Vec<(Bytes, Bytes)>,
    },
    /// The head was handed to the stream.
    Sent,
    /// The last body was handed to the stream.
    Done,
}

/// The response of one WSGI call.
#[derive(Debug)]
pub struct Response {
    state: State,
}

impl Default for Response {
    fn default() -> Self {
        Self::new()
    }
}

impl Response {
    /// A response before `start_response`.
    pub fn new() -> Self {
        Self { state: State::Idle }
    }

    /// `start_response(status, headers, exc_info)`; `exc_info` is whether
    /// the app passed one. Names must be tokens and values field values,
    /// so that a header can neither split the head nor smuggle a message.
    pub fn start_response(
        &mut self,
        status: &str,
        headers: Vec<(Bytes, Bytes)>,
        exc_info: bool,
    ) -> Result<(), StartError> {
        match (&self.state, exc_info) {
            (State::Sent | State::Done, true) => return Err(StartError::Reraise),
            (State::Set { .. } | State::Sent | State::Done, false) => {
                return Err(StartError::Invalid(
                    "start_response was already called (again only with exc_info)".into(),
                ));
            }
            _ => {}
        }
        let status = parse_status(status)?;
        if let Some(e) = headers.iter().find_map(|(n, v)| field_error(n, v)) {
            return Err(StartError::Invalid(e));
        }
        let mut headers = headers;
        headers.retain(|(n, _)| !is_hop_by_hop(n));
        self.state = State::Set { status, headers };
        Ok(())
    }

    /// Whether `start_response` was called.
    pub fn is_started(&self) -> bool {
        self.state != State::Idle
    }

    /// Whether the head went out (an error now cuts the response short
    /// instead of becoming a 500).
    pub fn head_sent(&self) -> bool {
        matches!(self.state, State::Sent | State::Done)
    }

    /// A piece of the body, from the iterable or `write()`; `more` is false
    /// once the iterable is exhausted (then `chunk` may be empty). The head
    /// is held back until the first non-empty piece or the end, as PEP 3333
    /// asks, so that an error before it can still be a 500.
    pub fn body(&mut self, chunk: Bytes, more: bool) -> Result<ToSend, StartError> {
        let start = match &mut self.state {
            State::Idle if more => {
                return Err(StartError::Invalid(
                    "the application sent a body before calling start_response".into(),
                ));
            }
            State::Idle => {
                return Err(StartError::Invalid(
                    "the application returned without calling start_response".into(),
                ));
            }
            State::Done => {
                return Err(StartError::Invalid("the response is complete".into()));
            }
            State::Set { .. } if chunk.is_empty() && more => return Ok(ToSend::default()),
            State::Set { status, headers } => Some(AppMessage::HttpResponseStart {
                status: *status,
                headers: std::mem::take(headers),
                trailers: false,
            }),
            State::Sent => None,
        };
        self.state = if more { State::Sent } else { State::Done };
        let body = (!chunk.is_empty() || !more).then_some(AppMessage::HttpResponseBody {
            body: chunk,
            more_body: more,
        });
        Ok(ToSend { start, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: &str, v: &str) -> (Bytes, Bytes) {
        (Bytes::from(n.to_owned()), Bytes::from(v.to_owned()))
    }

    fn start(status: u16, headers: Vec<(Bytes, Bytes)>) -> Option<AppMessage> {
        Some(AppMessage::HttpResponseStart {
            status,
            headers,
            trailers: false,
        })
    }

    fn body(b: &'static [u8], more: bool) -> Option<AppMessage> {
        Some(AppMessage::HttpResponseBody {
            body: Bytes::from_static(b),
            more_body: more,
        })
    }

    #[test]
    fn statuses() {
        assert_eq!(parse_status("200 OK"), Ok(200));
        assert_eq!(parse_status("404 "), Ok(404));
        assert_eq!(parse_status("599 Whatever it is"), Ok(599));
        for bad in [
            "200",
            "200OK",
            "20 OK",
            "OK 200",
            "2x0 OK",
            "103 Early Hints",
            "099 x",
            "",
        ] {
            assert!(
                matches!(parse_status(bad), Err(StartError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_head_waits_for_the_first_non_empty_piece() {
        let mut r = Response::new();
        r.start_response("200 OK", vec![h("content-type", "text/plain")], false)
            .unwrap();
        assert_eq!(r.body(Bytes::new(), true).unwrap(), ToSend::default());
        assert!(!r.head_sent());
        let sent = r.body(Bytes::from_static(b"hi"), true).unwrap();
        assert_eq!(
            sent.start,
            start(200, vec![h("content-type", "text/plain")])
        );
        assert_eq!(sent.body, body(b"hi", true));
        assert!(r.head_sent());
        assert_eq!(r.body(Bytes::new(), true).unwrap(), ToSend::default());
        let end = r.body(Bytes::new(), false).unwrap();
        assert_eq!(
            end,
            ToSend {
                start: None,
                body: body(b"", false)
            }
        );
        assert!(r.body(Bytes::new(), false).is_err());
    }

    #[test]
    fn an_empty_iterable_sends_the_head_with_the_end() {
        let mut r = Response::new();
        r.start_response("204 No Content", vec![], false).unwrap();
        let end = r.body(Bytes::new(), false).unwrap();
        assert_eq!(end.start, start(204, vec![]));
        assert_eq!(end.body, body(b"", false));
    }

    #[test]
    fn exc_info_replaces_a_head_not_yet_sent_and_reraises_after() {
        let mut r = Response::new();
        r.start_response("200 OK", vec![h("x-a", "1")], false)
            .unwrap();
        let again = r.start_response("500 Oops", vec![], false);
        assert!(matches!(again, Err(StartError::Invalid(_))));
        r.start_response("500 Internal Server Error", vec![h("x-b", "2")], true)
            .unwrap();
        let sent = r.body(Bytes::from_static(b"err"), false).unwrap();
        assert_eq!(sent.start, start(500, vec![h("x-b", "2")]));
        assert_eq!(
            r.start_response("500 Internal Server Error", vec![], true),
            Err(StartError::Reraise)
        );
    }

    #[test]
    fn a_body_before_start_response_is_an_error() {
        let mut r = Response::new();
        assert!(!r.is_started());
        assert!(r.body(Bytes::from_static(b"x"), true).is_err());
    }

    #[test]
    fn header_names_and_values_are_checked() {
        let mut r = Response::new();
        for bad in [h("x a", "1"), h("", "1"), h("x-a", "1\r\nx-b: 2")] {
            let got = r.start_response("200 OK", vec![bad], false);
            assert!(matches!(got, Err(StartError::Invalid(_))));
        }
        assert!(!r.is_started());
    }

    #[test]
    fn hop_by_hop_fields_are_left_out() {
        let mut r = Response::new();
        r.start_response(
            "200 OK",
            vec![
                h("Connection", "close"),
                h("X-Kept", "1"),
                h("Transfer-Encoding", "chunked"),
            ],
            false,
        )
        .unwrap();
        let sent = r.body(Bytes::from_static(b"x"), false).unwrap();
        assert_eq!(sent.start, start(200, vec![h("X-Kept", "1")]));
    }
}
