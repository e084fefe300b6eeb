//! Scenario files: the HTTP requests and WebSocket exchanges to run against
//! an app, each with the response it must give, and the check of an
//! [`Exchange`] against them.
//!
//! ```toml
//! [[scenario]]
//! name = "hello"
//! path = "/hello?name=x"         # method = "GET", headers = [["a", "b"]], body = "..."
//! expect = { status = 200, body = "hello, x", headers = [["content-type", "text/plain"]] }
//!
//! [[scenario]]
//! name = "echo"
//! path = "/ws"
//! websocket = { send = [{ text = "hi" }, { bytes = [1, 2] }], subprotocols = ["chat"] }
//! expect = { accept = true, receive = [{ text = "hi" }, { bytes = [1, 2] }], close = 1000 }
//! ```
//!
//! A scenario fails on any ASGI violation, exception, timeout, stall or
//! memory blow-up unless its `expect` names it (`violation = "text"`,
//! `exception = "text"`, `timeout = true`, `stalled = true`,
//! `memory = true`), so a scenario can also prove that a bug is caught.

use std::fmt::Write as _;

use serde::Deserialize;
use wasmtime::Result;
use wasmtime::error::Context;

use cormorant_core::asgi::LifespanPhase;

use super::exchange::{Exchange, Failure, Request, WsClient, WsMessage};

/// A scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// The scenarios, run in order.
    pub scenario: Vec<Scenario>,
}

/// One connection and what must come of it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Shown in reports.
    pub name: String,
    /// Request method (GET).
    #[serde(default = "get")]
    pub method: String,
    /// Request target.
    pub path: String,
    /// Request header fields.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Request body (text).
    #[serde(default)]
    pub body: String,
    /// Makes it a WebSocket connection.
    pub websocket: Option<WsScript>,
    /// What must happen.
    #[serde(default)]
    pub expect: Expect,
}

fn get() -> String {
    "GET".into()
}

/// The client side of a WebSocket scenario.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsScript {
    /// Messages sent once the app accepts.
    #[serde(default)]
    pub send: Vec<Message>,
    /// Subprotocols offered.
    #[serde(default)]
    pub subprotocols: Vec<String>,
    /// Close code the client sends once the app waits for more (1000).
    pub close_code: Option<u16>,
}

/// A WebSocket message in a scenario: `{ text = "..." }` or
/// `{ bytes = [1, 2, 3] }`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Message {
    /// A text message.
    Text(String),
    /// A binary message.
    Bytes(Vec<u8>),
}

impl From<&Message> for WsMessage {
    fn from(m: &Message) -> Self {
        match m {
            Message::Text(t) => Self::Text(t.clone()),
            Message::Bytes(b) => Self::Binary(b.clone()),
        }
    }
}

/// What a scenario requires. Unset fields are not checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Response status (for a WebSocket, of its denial).
    pub status: Option<u16>,
    /// The whole response body (text).
    pub body: Option<String>,
    /// A piece of the response body.
    pub body_contains: Option<String>,
    /// Header fields the response must have (names case-insensitive).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Whether the WebSocket is accepted.
    pub accept: Option<bool>,
    /// The subprotocol the app accepts with.
    pub subprotocol: Option<String>,
    /// The WebSocket messages the app sends, all of them, in order.
    pub receive: Option<Vec<Message>>,
    /// The close code sent for the app.
    pub close: Option<u16>,
    /// Text that an ASGI violation's error must contain.
    pub violation: Option<String>,
    /// Text the traceback of an uncaught exception must contain.
    pub exception: Option<String>,
    /// The app must be stopped by the time limit.
    #[serde(default)]
    pub timeout: bool,
    /// The app must be stopped by the memory limit.
    #[serde(default)]
    pub memory: bool,
    /// The app must stall (wait for something that cannot come).
    #[serde(default)]
    pub stalled: bool,
}

/// Reads a scenario file.
pub fn parse(text: &str) -> Result<ScenarioFile> {
    toml::from_str(text).context("invalid scenario file")
}

impl Scenario {
    /// The connection the client opens.
    pub fn request(&self) -> Request {
        Request {
            method: self.method.clone(),
            target: self.path.clone(),
            headers: self.headers.clone(),
            body: self.body.as_bytes().to_vec(),
            websocket: self.websocket.as_ref().map(|w| WsClient {
                subprotocols: w.subprotocols.clone(),
                messages: w.send.iter().map(WsMessage::from).collect(),
                close_code: w.close_code.unwrap_or(1000),
            }),
        }
    }

    /// Every way `ex` falls short of the expectations; empty when it passes.
    pub fn check(&self, ex: &Exchange) -> Vec<String> {
        let e = &self.expect;
        let mut problems = Vec::new();
        let mut want = |ok: bool, what: String| {
            if !ok {
                problems.push(what);
            }
        };
        match (&e.violation, ex.violations.first()) {
            (Some(text), _) => want(
                ex.violations
                    .iter()
                    .any(|v| v.error.contains(text.as_str())),
                format!("expected an ASGI violation containing {text:?}, got none"),
            ),
            (None, Some(_)) => want(false, "unexpected ASGI violation".into()),
            (None, None) => {}
        }
        let failure = ex.failure.as_ref();
        let (exception, timeout, memory, stalled) = match failure {
            Some(Failure::Exception(tb)) => (Some(tb.as_str()), false, false, false),
            Some(Failure::Timeout(_) | Failure::VirtualTimeout(_)) => (None, true, false, false),
            Some(Failure::Memory { .. }) => (None, false, true, false),
            Some(Failure::Stalled(_)) => (None, false, false, true),
            Some(Failure::Trap(_) | Failure::StartupFailed(_)) | None => {
                (None, false, false, false)
            }
        };
        match (&e.exception, exception) {
            (Some(text), Some(tb)) => want(
                tb.contains(text.as_str()),
                format!("the traceback does not mention {text:?}"),
            ),
            (Some(text), None) => want(false, format!("expected an exception mentioning {text:?}")),
            (None, Some(_)) => want(false, "uncaught exception".into()),
            (None, None) => {}
        }
        want(e.timeout == timeout, flag_problem("a timeout", e.timeout));
        want(
            e.memory == memory,
            flag_problem("the memory limit", e.memory),
        );
        want(e.stalled == stalled, flag_problem("a stall", e.stalled));
        match failure {
            Some(Failure::Trap(_)) => want(false, "the guest trapped".into()),
            Some(Failure::StartupFailed(why)) => {
                want(false, format!("lifespan startup failed: {why}"))
            }
            _ => {}
        }
        if let Some(LifespanPhase::ShutdownFailed(why)) = &ex.lifespan {
            want(false, format!("lifespan shutdown failed: {why}"));
        }
        let expects_failure =
            e.violation.is_some() || e.exception.is_some() || e.timeout || e.memory || e.stalled;
        if let (Some(note), false) = (&ex.exit_note, expects_failure) {
            want(false, note.clone());
        }
        self.check_response(ex, &mut want);
        problems
    }

    fn check_response(&self, ex: &Exchange, want: &mut impl FnMut(bool, String)) {
        let e = &self.expect;
        if let Some(status) = e.status {
            want(
                ex.status == Some(status),
                format!("expected status {status}, got {}", show(ex.status)),
            );
        }
        let body = String::from_utf8_lossy(&ex.body);
        if let Some(b) = &e.body {
            want(body == *b, format!("expected body {b:?}, got {body:?}"));
        }
        if let Some(b) = &e.body_contains {
            want(
                body.contains(b.as_str()),
                format!("the body {body:?} does not contain {b:?}"),
            );
        }
        for (name, value) in &e.headers {
            let found = ex.headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case(name.as_bytes()) && v.as_ref() == value.as_bytes()
            });
            want(found, format!("missing response header {name}: {value}"));
        }
        if let Some(accept) = e.accept {
            want(
                ex.accepted.is_some() == accept,
                format!(
                    "expected the WebSocket to be {}",
                    if accept { "accepted" } else { "refused" }
                ),
            );
        }
        if let Some(p) = &e.subprotocol {
            let got = ex.accepted.clone().flatten();
            want(
                got.as_deref() == Some(p.as_str()),
                format!("expected subprotocol {p:?}, got {got:?}"),
            );
        }
        if let Some(msgs) = &e.receive {
            let expected: Vec<WsMessage> = msgs.iter().map(WsMessage::from).collect();
            want(
                ex.messages == expected,
                format!("expected messages {expected:?}, got {:?}", ex.messages),
            );
        }
        if let Some(code) = e.close {
            want(
                ex.close_code == Some(code),
                format!("expected close code {code}, got {}", show(ex.close_code)),
            );
        }
    }
}

fn show(v: Option<u16>) -> String {
    v.map_or_else(|| "none".into(), |v| v.to_string())
}

fn flag_problem(what: &str, expected: bool) -> String {
    if expected {
        format!("expected {what}, none happened")
    } else {
        format!("stopped by {what}")
    }
}

/// A human report of one scenario's outcome.
pub fn report(s: &Scenario, ex: &Exchange, problems: &[String]) -> String {
    let mut out = String::new();
    let verdict = if problems.is_empty() { "PASS" } else { "FAIL" };
    let what = if s.websocket.is_some() {
        "WEBSOCKET"
    } else {
        s.method.as_str()
    };
    let _ = write!(out, "{verdict} {} ({what} {})", s.name, s.path);
    if let Some(status) = ex.status {
        let _ = write!(out, ": {status}, {} body bytes", ex.body.len());
    } else if let Some(sub) = &ex.accepted {
        let sub = sub
            .as_ref()
            .map_or(String::new(), |s| format!(" with subprotocol {s:?}"));
        let n = ex.messages.len();
        let _ = write!(out, ": accepted{sub}, {n} messages sent");
    }
    out.push('\n');
    for v in &ex.violations {
        let _ = writeln!(
            out,
            "  ASGI violation: {}\n    offending message: {}",
            v.error, v.message
        );
    }
    match &ex.failure {
        Some(Failure::Exception(tb)) => {
            let _ = writeln!(out, "  uncaught exception:");
            for line in tb.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
        Some(Failure::Stalled(why)) => {
            let _ = writeln!(out, "  stalled: {why}");
        }
        Some(Failure::VirtualTimeout(t)) => {
            let _ = writeln!(
                out,
                "  timeout: the app's timers ran to {t:.1} s (virtual time)"
            );
        }
        Some(Failure::Timeout(limit)) => {
            let _ = writeln!(out, "  timeout: stopped after {limit:?} of wall-clock time");
        }
        Some(Failure::Memory { limit, asked }) => {
            let _ = writeln!(
                out,
                "  memory limit: the app asked for {} MiB, the limit is {} MiB",
                asked >> 20,
                limit >> 20
            );
        }
        Some(Failure::Trap(e)) => {
            let _ = writeln!(out, "  the guest trapped: {e}");
        }
        Some(Failure::StartupFailed(why)) => {
            let _ = writeln!(out, "  lifespan startup failed:");
            for line in why.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
        None => {}
    }
    if let Some(note) = &ex.exit_note {
        let _ = writeln!(out, "  {note}");
    }
    for p in problems {
        let _ = writeln!(out, "  - {p}");
    }
    if !problems.is_empty() && !ex.output.is_empty() {
        let _ = writeln!(out, "  app output:");
        for line in ex.output.lines() {
            let _ = writeln!(out, "    | {line}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::Violation;

    fn scenario(expect: &str) -> Scenario {
        let text = format!("[[scenario]]\nname = \"s\"\npath = \"/\"\nexpect = {expect}\n");
        parse(&text).expect("parse").scenario.remove(0)
    }

    fn ok_response() -> Exchange {
        Exchange {
            status: Some(200),
            body: b"hi".to_vec(),
            complete: true,
            ..Exchange::default()
        }
    }

    #[test]
    fn a_matching_response_passes() {
        let s = scenario(r#"{ status = 200, body = "hi", body_contains = "h" }"#);
        assert_eq!(s.check(&ok_response()), Vec::<String>::new());
    }

    #[test]
    fn every_mismatch_is_listed() {
        let s = scenario(r#"{ status = 201, body = "ho", headers = [["x-a", "1"]] }"#);
        assert_eq!(
            s.check(&ok_response()),
            [
                "expected status 201, got 200",
                "expected body \"ho\", got \"hi\"",
                "missing response header x-a: 1",
            ]
        );
    }

    #[test]
    fn bugs_fail_unless_expected() {
        let mut ex = ok_response();
        ex.violations.push(Violation {
            error: "got a second 'http.response.start'".into(),
            message: "{}".into(),
        });
        ex.failure = Some(Failure::Memory {
            limit: 1 << 20,
            asked: 2 << 20,
        });
        let plain = scenario("{ status = 200 }");
        assert_eq!(
            plain.check(&ex),
            ["unexpected ASGI violation", "stopped by the memory limit"]
        );
        let expecting = scenario(r#"{ violation = "second", memory = true }"#);
        assert_eq!(expecting.check(&ex), Vec::<String>::new());
        let wrong = scenario(r#"{ violation = "third", timeout = true, memory = true }"#);
        assert_eq!(
            wrong.check(&ex),
            [
                "expected an ASGI violation containing \"third\", got none",
                "expected a timeout, none happened",
            ]
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(
            parse("[[scenario]]\nname = \"s\"\npath = \"/\"\nexpect = { stauts = 200 }\n").is_err()
        );
    }
}
