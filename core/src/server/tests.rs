//! The server connection against an in-memory client on a virtual clock:
//! every timer is driven to its deadline, and each test names the timers
//! that fired and the events seen, in order.

use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::PeerError;

const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// A client connected to a [`Connection`], with a clock the test moves.
struct Pair {
    conn: Connection,
    now: Instant,
    /// Bytes the server wrote, not yet looked at.
    wire: Vec<u8>,
    /// What happened, in order: event names, `timer <name>` when one fires,
    /// and `= <state>` for the state each batch of events left it in.
    log: Vec<String>,
}

fn secs(s: f64) -> Instant {
    Instant::ZERO + Duration::from_secs_f64(s)
}

fn quiet_config() -> Config {
    let mut config = Config::default();
    config.http.server_header = None;
    config.http.date_header = false;
    config
}

impl Pair {
    fn new() -> Self {
        Self::with(quiet_config())
    }

    fn with(config: Config) -> Self {
        Self {
            conn: Connection::new(config, Instant::ZERO),
            now: Instant::ZERO,
            wire: Vec::new(),
            log: Vec::new(),
        }
    }

    /// The client sends `bytes` now; the server takes every event.
    fn send(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.conn.handle_bytes(self.now, bytes);
        self.events()
    }

    /// Polls until the connection waits, logging each event.
    fn events(&mut self) -> Vec<Event> {
        let mut seen = Vec::new();
        for _ in 0..100 {
            let ev = self.conn.poll_event(self.now);
            self.log.push(name(&ev).to_owned());
            let done = matches!(
                ev,
                Event::Http(h1::Event::NeedData | h1::Event::Paused | h1::Event::Closed)
                    | Event::WebSocket(ws::Event::NeedData | ws::Event::Closed)
                    | Event::Http2Preface
            );
            seen.push(ev);
            if done {
                break;
            }
        }
        self.log.push(format!("= {}", self.state()));
        self.flush();
        seen
    }

    /// The state the connection is in, by what it waits for.
    fn state(&self) -> &'static str {
        match &self.conn.protocol {
            Protocol::WebSocket(ws) if ws.is_closed() => "closed",
            Protocol::WebSocket(ws) if ws.close_sent() => "ws closing",
            Protocol::WebSocket(_) => "ws open",
            Protocol::Http => match self.conn.http.waiting() {
                Some(h1::Waiting::NextRequest) => "idle",
                Some(h1::Waiting::Head) => "reading head",
                Some(h1::Waiting::Body) => "reading body",
                None if self.conn.wants_close() => "closed",
                None => "answering",
            },
        }
    }

    fn flush(&mut self) {
        let mut segs = Vec::new();
        self.conn.poll_transmit(&mut segs);
        for s in segs {
            self.wire.extend_from_slice(&s);
        }
    }

    /// Moves the clock to `until`, firing every deadline on the way at its
    /// exact time.
    fn wait_until(&mut self, until: Instant) {
        while let Some(at) = self.conn.poll_timeout() {
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            let before: Vec<_> = Timer::ALL
                .into_iter()
                .filter(|&t| self.conn.timers.get(t).is_some_and(|d| d <= self.now))
                .collect();
            self.conn.handle_timeout(self.now);
            for t in before {
                self.log.push(format!("timer {}", t.name()));
            }
            self.events();
        }
        self.now = self.now.max(until);
    }

    fn take_wire(&mut self) -> String {
        String::from_utf8_lossy(&self.take_raw()).into_owned()
    }

    fn take_raw(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.wire)
    }

    fn respond(&mut self, status: u16) {
        let http = self.conn.http();
        http.send_response(ResponseHead {
            status,
            headers: vec![(
                Bytes::from_static(b"content-length"),
                Bytes::from_static(b"0"),
            )],
        })
        .unwrap();
        http.send_end().unwrap();
        self.flush();
    }

    fn upgrade(&mut self) {
        let evs = self.send(UPGRADE);
        let Event::Http(h1::Event::RequestHead(head)) = &evs[0] else {
            panic!("{evs:?}")
        };
        let offer = Handshake::from_head(head).unwrap();
        self.conn
            .accept_websocket(self.now, &offer, None, Vec::new())
            .unwrap();
        self.flush();
        assert!(self.take_wire().starts_with("HTTP/1.1 101 "));
    }
}

fn name(ev: &Event) -> &'static str {
    match ev {
        Event::Http(h1::Event::RequestHead(_)) => "head",
        Event::Http(h1::Event::BodyChunk(_)) => "body",
        Event::Http(h1::Event::EndOfMessage) => "end",
        Event::Http(h1::Event::NeedData) | Event::WebSocket(ws::Event::NeedData) => "need-data",
        Event::Http(h1::Event::Paused) => "paused",
        Event::Http(h1::Event::Closed) | Event::WebSocket(ws::Event::Closed) => "closed",
        Event::Http(h1::Event::Error(PeerError::RequestTimeout)) => "error 408",
        Event::Http(h1::Event::Error(_)) => "error",
        Event::WebSocket(ws::Event::Error(e)) => match e.close_code() {
            1011 => "ws-error 1011",
            1006 => "ws-error 1006",
            _ => "ws-error",
        },
        Event::WebSocket(ws::Event::Pong(_)) => "pong",
        Event::WebSocket(ws::Event::Text(_)) => "text",
        Event::Http2Preface => "h2-preface",
        _ => "other",
    }
}

/// A masked client frame with a payload under 126 bytes.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1u8, 2, 3, 4];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

#[test]
fn a_slow_request_head_gets_408_at_its_deadline() {
    let mut p = Pair::new();
    p.wait_until(secs(1.0));
    p.send(b"GET / HTTP/1.1\r\nHo");
    // The head timer (30 s from the first byte) replaced keep-alive.
    assert_eq!(p.conn.poll_timeout(), Some(secs(31.0)));
    p.conn.handle_timeout(secs(30.999));
    assert!(p.take_wire().is_empty(), "an early call does nothing");
    p.wait_until(secs(40.0));
    assert_eq!(
        p.take_wire(),
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: 15\r\nconnection: close\r\n\r\nRequest Timeout"
    );
    assert!(p.conn.wants_close());
    assert_eq!(p.conn.poll_timeout(), None);
    assert_eq!(
        p.log,
        [
            "need-data",
            "= reading head",
            "timer request-head",
            "error 408",
            "closed",
            "= closed"
        ]
    );
}

#[test]
fn an_idle_connection_closes_silently_after_keep_alive() {
    let mut p = Pair::new();
    p.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    p.wait_until(secs(2.0));
    p.respond(200);
    p.take_wire();
    p.conn.start_next_cycle(p.now).unwrap();
    // Keep-alive counts from the end of the exchange, not from the start.
    assert_eq!(p.conn.poll_timeout(), Some(secs(7.0)));
    p.events();
    p.wait_until(secs(10.0));
    assert!(p.take_wire().is_empty());
    assert!(p.conn.wants_close());
    assert_eq!(
        p.log,
        [
            "head",
            "end",
            "paused",
            "= answering",
            "need-data",
            "= idle",
            "timer keep-alive",
            "closed",
            "= closed"
        ]
    );
}

#[test]
fn a_stalled_body_gets_408_unless_the_driver_holds_off() {
    let mut p = Pair::new();
    p.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(p.conn.poll_timeout(), Some(secs(60.0)));
    // Progress restarts the body timer.
    p.now = secs(50.0);
    p.send(b"de");
    assert_eq!(p.conn.poll_timeout(), Some(secs(110.0)));
    // Backpressure: the driver stops reading; no timer blames the peer.
    p.conn.set_reading(p.now, false);
    assert_eq!(p.conn.poll_timeout(), None);
    p.wait_until(secs(500.0));
    p.conn.set_reading(p.now, true);
    p.events();
    assert_eq!(p.conn.poll_timeout(), Some(secs(560.0)));
    p.wait_until(secs(600.0));
    assert!(p.take_wire().starts_with("HTTP/1.1 408 "));
    assert!(p.conn.wants_close());
    assert!(p.log.ends_with(&[
        "timer request-body-idle".into(),
        "error 408".into(),
        "closed".into(),
        "= closed".into()
    ]));
}

#[test]
fn a_body_timeout_after_the_response_started_only_closes() {
    let mut p = Pair::new();
    p.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    p.conn
        .http()
        .send_response(ResponseHead {
            status: 200,
            headers: Vec::new(),
        })
        .unwrap();
    p.flush();
    let head = p.take_wire();
    p.wait_until(secs(61.0));
    assert!(head.starts_with("HTTP/1.1 200 "));
    assert!(p.take_wire().is_empty(), "no second response");
    assert!(p.conn.wants_close());
}

#[test]
fn an_unanswered_ping_closes_with_1011() {
    let mut p = Pair::new();
    p.upgrade();
    assert_eq!(p.conn.poll_timeout(), Some(secs(20.0)));
    p.wait_until(secs(39.0));
    assert_eq!(p.take_raw(), b"\x89\x00", "a ping at 20 s");
    p.wait_until(secs(41.0));
    assert_eq!(p.take_raw(), b"\x88\x02\x03\xf3", "close 1011 at 40 s");
    assert!(p.conn.wants_close());
    assert_eq!(p.conn.poll_timeout(), None);
    assert!(p.log.ends_with(&[
        "timer ws-ping".into(),
        "need-data".into(),
        "= ws open".into(),
        "timer ws-pong".into(),
        "ws-error 1011".into(),
        "closed".into(),
        "= closed".into()
    ]));
}

#[test]
fn an_answered_ping_schedules_the_next_one_from_the_pong() {
    let mut p = Pair::new();
    p.upgrade();
    p.wait_until(secs(25.0));
    assert_eq!(p.take_raw(), b"\x89\x00");
    p.send(&client_frame(0xA, b""));
    assert_eq!(p.conn.poll_timeout(), Some(secs(45.0)));
    p.wait_until(secs(60.0));
    assert_eq!(p.take_raw(), b"\x89\x00", "the second ping, at 45 s");
    assert!(!p.conn.wants_close());
    assert!(p.log.contains(&"pong".into()));
}

#[test]
fn a_close_without_an_answer_is_dropped_after_the_close_timeout() {
    let mut p = Pair::new();
    p.upgrade();
    p.now = secs(3.0);
    p.conn.websocket().unwrap().send_close(1000, "bye").unwrap();
    // The send itself carries no time: the driver is told to call at once.
    assert_eq!(p.conn.poll_timeout(), Some(Instant::ZERO));
    p.conn.handle_timeout(p.now);
    assert_eq!(p.conn.poll_timeout(), Some(secs(8.0)));
    p.events();
    p.take_wire();
    p.wait_until(secs(9.0));
    assert!(p.conn.wants_close());
    assert!(p.take_wire().is_empty());
    assert!(p.log.ends_with(&[
        "need-data".into(),
        "= ws closing".into(),
        "timer ws-close".into(),
        "ws-error 1006".into(),
        "closed".into(),
        "= closed".into()
    ]));
}

#[test]
fn bad_handshakes_get_400_or_426_naming_version_13() {
    for (version, status) in [("12", "426 Upgrade Required"), ("13", "400 Bad Request")] {
        let mut p = Pair::new();
        let req = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\
             Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: {version}\r\n\r\n"
        );
        let evs = p.send(req.as_bytes());
        let Event::Http(h1::Event::RequestHead(head)) = &evs[0] else {
            panic!()
        };
        let err = Handshake::from_head(head).unwrap_err();
        p.conn.reject_websocket(&err).unwrap();
        p.flush();
        let wire = p.take_wire();
        assert!(
            wire.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{wire}"
        );
        assert_eq!(
            wire.contains("sec-websocket-version: 13\r\n"),
            version == "12"
        );
        assert!(p.conn.wants_close());
    }
}

#[test]
fn frames_sent_with_the_upgrade_request_reach_the_websocket() {
    let mut p = Pair::new();
    let mut bytes = UPGRADE.to_vec();
    bytes.extend(client_frame(0x1, b"hi"));
    let evs = p.send(&bytes);
    let Event::Http(h1::Event::RequestHead(head)) = &evs[0] else {
        panic!()
    };
    let offer = Handshake::from_head(head).unwrap();
    p.conn
        .accept_websocket(p.now, &offer, Some("chat"), Vec::new())
        .unwrap();
    let evs = p.events();
    assert_eq!(evs[0], Event::WebSocket(ws::Event::Text("hi".into())));
    assert!(p.take_wire().contains("sec-websocket-protocol: chat\r\n"));
}

/// The fields of an RFC 8441 extended CONNECT that offers `chat` and
/// permessage-deflate.
fn extended_connect_offer() -> Handshake {
    let fields = [
        ("sec-websocket-version", "13"),
        ("sec-websocket-protocol", "chat"),
        ("sec-websocket-extensions", "permessage-deflate"),
    ]
    .map(|(n, v)| {
        (
            Bytes::from_static(n.as_bytes()),
            Bytes::from_static(v.as_bytes()),
        )
    });
    Handshake::from_extended_connect(b"websocket", &fields).unwrap()
}

#[test]
fn an_extended_connect_opens_a_tunnel_with_the_same_websocket_rules_and_timers() {
    let mut config = quiet_config();
    config.per_message_deflate = true;
    let offer = extended_connect_offer();
    let extra = vec![(Bytes::from_static(b"x-app"), Bytes::from_static(b"1"))];
    let (conn, head) =
        Connection::accept_tunnel(config, Instant::ZERO, &offer, Some("chat"), extra).unwrap();
    // 200, no accept key, no Upgrade or Connection: the stream is the tunnel.
    assert_eq!(head.status, 200);
    let names: Vec<&[u8]> = head.headers.iter().map(|(n, _)| n.as_ref()).collect();
    assert_eq!(
        names,
        [
            &b"sec-websocket-protocol"[..],
            b"sec-websocket-extensions",
            b"x-app"
        ]
    );
    let mut p = Pair {
        conn,
        now: Instant::ZERO,
        wire: Vec::new(),
        log: Vec::new(),
    };
    assert!(p.conn.is_websocket());
    // Nothing of HTTP/1.1 is written; the first bytes are frames.
    p.flush();
    assert!(p.take_raw().is_empty());
    let evs = p.send(&client_frame(0x1, b"hi"));
    assert_eq!(evs[0], Event::WebSocket(ws::Event::Text("hi".into())));
    // The ping timer runs as after an upgrade, and no HTTP timer does.
    assert_eq!(p.conn.poll_timeout(), Some(secs(20.0)));
    p.wait_until(secs(41.0));
    assert_eq!(
        p.take_raw(),
        b"\x89\x00\x88\x02\x03\xf3",
        "ping, then close 1011"
    );
    assert!(p.conn.wants_close());
}

#[test]
fn a_tunnel_and_an_upgrade_are_not_confused() {
    let offer = extended_connect_offer();
    let mut p = Pair::new();
    p.send(UPGRADE);
    assert!(
        p.conn
            .accept_websocket(p.now, &offer, None, Vec::new())
            .is_err()
    );
    let upgrade = {
        let mut h1 = h1::Connection::new(h1::Config::default());
        h1.handle_bytes(UPGRADE);
        let h1::Event::RequestHead(head) = h1.poll_event() else {
            panic!()
        };
        Handshake::from_head(&head).unwrap()
    };
    assert!(
        Connection::accept_tunnel(quiet_config(), Instant::ZERO, &upgrade, None, Vec::new())
            .is_err()
    );
}

#[test]
fn a_tunnel_accepted_during_shutdown_is_closed_with_1001() {
    let offer = extended_connect_offer();
    let (mut conn, _) =
        Connection::accept_tunnel(quiet_config(), Instant::ZERO, &offer, None, Vec::new()).unwrap();
    conn.shutdown(Instant::ZERO);
    let mut out = Vec::new();
    conn.poll_transmit(&mut out);
    assert_eq!(&out.concat()[..4], b"\x88\x16\x03\xe9");
}

#[test]
fn the_http2_preface_is_an_event_even_in_pieces() {
    let mut config = quiet_config();
    config.detect_http2 = true;
    let mut p = Pair::with(config.clone());
    assert_eq!(
        p.send(&HTTP2_PREFACE[..5]),
        [Event::Http(h1::Event::NeedData)]
    );
    assert_eq!(p.send(&HTTP2_PREFACE[5..]), [Event::Http2Preface]);
    assert_eq!(p.conn.take_buffered(), HTTP2_PREFACE);

    let mut p = Pair::with(config);
    let evs = p.send(b"PUT / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(matches!(evs[0], Event::Http(h1::Event::RequestHead(_))));
    assert_eq!(detect_http2_preface(b"PRI"), None);
    assert_eq!(detect_http2_preface(b"PRX"), Some(false));
    assert_eq!(detect_http2_preface(HTTP2_PREFACE), Some(true));
}

#[test]
fn a_bad_preface_is_refused_with_settings_then_goaway_protocol_error() {
    let r = HTTP2_PREFACE_REFUSAL;
    // Frame header: 24-bit length, type, flags, 31-bit stream.
    let frame = |at: usize| {
        (
            u32::from_be_bytes([0, r[at], r[at + 1], r[at + 2]]) as usize,
            r[at + 3],
            &r[at + 5..at + 9],
        )
    };
    let (len, kind, stream) = frame(0);
    assert_eq!(
        (len, kind, stream),
        (0, 0x4, &[0u8; 4][..]),
        "empty SETTINGS"
    );
    let (len, kind, stream) = frame(9);
    assert_eq!(
        (len, kind, stream),
        (8, 0x7, &[0u8; 4][..]),
        "GOAWAY on stream 0"
    );
    assert_eq!(&r[18..22], &[0; 4], "no stream processed");
    assert_eq!(
        u32::from_be_bytes(r[22..26].try_into().unwrap()),
        1,
        "PROTOCOL_ERROR"
    );
    assert_eq!(r.len(), 26);
}

#[test]
fn shutdown_waits_briefly_for_a_first_request_only() {
    // Fresh: the first request may still come within the grace.
    let mut p = Pair::new();
    p.conn.shutdown(p.now);
    assert_eq!(p.conn.poll_timeout(), Some(secs(1.0)));
    p.wait_until(secs(2.0));
    assert!(p.conn.wants_close());
    assert!(p.log.contains(&"timer shutdown-grace".into()));

    // A first request inside the grace is answered, with close.
    let mut p = Pair::new();
    p.conn.shutdown(p.now);
    p.now = secs(0.5);
    p.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    p.respond(200);
    assert!(p.take_wire().contains("connection: close\r\n"));
    assert!(p.conn.wants_close());

    // Idle after an exchange: closes now.
    let mut p = Pair::new();
    p.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    p.respond(200);
    p.conn.start_next_cycle(p.now).unwrap();
    p.conn.shutdown(p.now);
    assert_eq!(p.events(), [Event::Http(h1::Event::Closed)]);
    assert!(p.conn.wants_close());

    // An open WebSocket is told 1001.
    let mut p = Pair::new();
    p.upgrade();
    p.conn.shutdown(p.now);
    p.flush();
    assert_eq!(p.take_raw()[..4], *b"\x88\x16\x03\xe9", "close 1001");
}

/// The `timeout_*` cases of the shared corpus: the client goes quiet and
/// the connection's own timers must reach the expected verdict and close.
#[test]
fn timeout_corpus() {
    let mut ran = 0;
    for dir in ["h1", "ws"] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/corpus")
            .join(dir);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.starts_with("timeout_") && name.ends_with(".http")) {
                continue;
            }
            let expect = std::fs::read_to_string(path.with_extension("expect")).unwrap();
            let mut p = Pair::new();
            let mut verdict = "ok".to_owned();
            let mut note = |evs: &[Event]| {
                for ev in evs {
                    let code = match ev {
                        Event::Http(h1::Event::Error(e)) => e.status_hint(),
                        Event::WebSocket(ws::Event::Error(e)) => e.close_code(),
                        _ => continue,
                    };
                    if verdict == "ok" {
                        verdict = code.to_string();
                    }
                }
            };
            let evs = p.send(&std::fs::read(&path).unwrap());
            note(&evs);
            for ev in evs {
                match ev {
                    Event::Http(h1::Event::RequestHead(head)) if head.upgrade.is_some() => {
                        let offer = Handshake::from_head(&head).unwrap();
                        p.conn
                            .accept_websocket(p.now, &offer, None, Vec::new())
                            .unwrap();
                        note(&p.events());
                    }
                    Event::Http(h1::Event::Paused) if !p.conn.is_websocket() => {
                        p.respond(200);
                        p.conn.start_next_cycle(p.now).unwrap();
                    }
                    _ => {}
                }
            }
            // Time passes, one deadline at a time, with no more input.
            for _ in 0..16 {
                let Some(at) = p.conn.poll_timeout() else {
                    break;
                };
                p.now = p.now.max(at);
                p.conn.handle_timeout(p.now);
                let evs = p.events();
                note(&evs);
            }
            assert_eq!(verdict, expect.trim(), "{name}");
            assert!(p.conn.wants_close(), "{name}: still open");
            ran += 1;
        }
    }
    assert!(ran >= 5, "only {ran} timeout cases");
}
