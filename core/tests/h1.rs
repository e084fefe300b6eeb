//! Integration tests of the HTTP/1.1 server connection, through the public
//! API only: a driver loop, a table of malformed requests, the shared corpus
//! in `tests/corpus/h1`, and the split-anywhere equivalence runs.

use std::path::PathBuf;

use bytes::Bytes;
use cormorant_core::PeerError;
use cormorant_core::UsageError;
use cormorant_core::h1::{BodyKind, Config, Connection, Event, RequestHead, ResponseHead, Version};

// ---------------------------------------------------------------- helpers

fn config() -> Config {
    Config {
        server_header: None,
        date_header: false,
        ..Config::default()
    }
}

fn resp(status: u16, headers: &[(&str, &str)]) -> ResponseHead {
    ResponseHead {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    Bytes::copy_from_slice(n.as_bytes()),
                    Bytes::copy_from_slice(v.as_bytes()),
                )
            })
            .collect(),
    }
}

fn drain(c: &mut Connection) -> Vec<u8> {
    let mut segs = Vec::new();
    c.poll_transmit(&mut segs);
    segs.concat()
}

fn drain_str(c: &mut Connection) -> String {
    String::from_utf8(drain(c)).expect("ascii output")
}

fn expect_head(c: &mut Connection) -> RequestHead {
    match c.poll_event() {
        Event::RequestHead(h) => h,
        other => panic!("expected a request head, got {other:?}"),
    }
}

/// Reads the body until `EndOfMessage`.
fn read_body(c: &mut Connection) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        match c.poll_event() {
            Event::BodyChunk(b) => {
                assert!(!b.is_empty(), "empty body chunk");
                body.extend_from_slice(&b);
            }
            Event::EndOfMessage => return body,
            other => panic!("expected body, got {other:?}"),
        }
    }
}

fn respond_ok(c: &mut Connection, body: &'static [u8]) {
    let len = body.len().to_string();
    c.send_response(resp(200, &[("content-length", &len)]))
        .unwrap();
    c.send_body(Bytes::from_static(body)).unwrap();
    c.send_end().unwrap();
}

/// One normalised thing that happened while driving a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Head(Vec<u8>, Vec<u8>),
    Body(Vec<u8>),
    End,
    Error(PeerError),
    Closed,
}

/// A toy driver: feeds `pieces` then EOF, answers every complete request
/// with `200 ok`, and records what happened. Consecutive body chunks are
/// merged and `NeedData` / `Paused` dropped, so any split of the same input
/// gives the same transcript.
fn drive(config: Config, pieces: &[&[u8]]) -> (Vec<Seen>, Vec<u8>) {
    let mut c = Connection::new(config);
    let mut seen: Vec<Seen> = Vec::new();
    let mut errors = 0;
    let mut wire = Vec::new();
    let feeds = pieces.len() + 1;
    'feed: for i in 0..feeds {
        match pieces.get(i) {
            Some(p) => c.handle_bytes(p),
            None => c.handle_eof(),
        }
        // Bounded: a level-triggered loop that never settles is a bug.
        for _ in 0..100_000 {
            match c.poll_event() {
                Event::NeedData => {
                    assert!(!matches!(seen.last(), Some(Seen::Closed)));
                    continue 'feed;
                }
                Event::RequestHead(h) => {
                    seen.push(Seen::Head(h.method.to_vec(), h.target.to_vec()))
                }
                Event::BodyChunk(b) => {
                    assert!(!b.is_empty());
                    match seen.last_mut() {
                        Some(Seen::Body(v)) => v.extend_from_slice(&b),
                        _ => seen.push(Seen::Body(b.to_vec())),
                    }
                }
                Event::EndOfMessage => seen.push(Seen::End),
                Event::Paused => {
                    if !c.response_started() {
                        respond_ok(&mut c, b"ok");
                    }
                    wire.extend(drain(&mut c));
                    if c.is_keep_alive() {
                        c.start_next_cycle().unwrap();
                    } else {
                        assert!(c.start_next_cycle().is_err());
                    }
                }
                Event::Error(e) => {
                    errors += 1;
                    assert_eq!(errors, 1, "a second error event");
                    assert!(!c.is_keep_alive());
                    seen.push(Seen::Error(e));
                }
                Event::Closed => {
                    assert!(!c.is_keep_alive());
                    // Closed is final and stable.
                    for _ in 0..3 {
                        assert_eq!(c.poll_event(), Event::Closed);
                    }
                    seen.push(Seen::Closed);
                    break 'feed;
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
        panic!("poll_event does not settle");
    }
    wire.extend(drain(&mut c));
    (seen, wire)
}

/// Runs `input` whole, byte by byte and (if short enough) split at every
/// offset; asserts every run gives the same transcript and output.
fn drive_all_ways(config: &Config, input: &[u8]) -> (Vec<Seen>, Vec<u8>) {
    let whole = drive(config.clone(), &[input]);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(drive(config.clone(), &bytes), whole, "byte by byte");
    if input.len() <= 4096 {
        for i in 0..=input.len() {
            let split = drive(config.clone(), &[&input[..i], &input[i..]]);
            assert_eq!(split, whole, "split at {i}");
        }
    } else {
        let piece = 1 + input.len() / 64;
        let chunks: Vec<&[u8]> = input.chunks(piece).collect();
        assert_eq!(drive(config.clone(), &chunks), whole, "pieces of {piece}");
    }
    whole
}

/// The verdict of a transcript: `ok` or the status of the error.
fn verdict(seen: &[Seen]) -> String {
    seen.iter()
        .find_map(|s| match s {
            Seen::Error(e) => Some(e.status_hint().to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "ok".to_owned())
}

// ---------------------------------------------------------------- corpus

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/h1")
}

#[test]
fn corpus() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/corpus/h1")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "http"))
        // `timeout_*` cases end in silence, not EOF: h1 alone has no timers,
        // so `server::tests::timeout_corpus` replays them on a clock.
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("timeout_")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 20, "corpus too small: {}", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let raw = std::fs::read(path).expect("read corpus file");
        let expect = std::fs::read_to_string(path.with_extension("expect"))
            .unwrap_or_else(|_| panic!("{} has no .expect", path.display()));
        let expect = expect.trim();
        let (seen, wire) = drive_all_ways(&config(), &raw);
        let got = verdict(&seen);
        if got != expect {
            failures.push(format!(
                "{}: expected {expect}, got {got} ({seen:?})",
                path.display()
            ));
        }
        if got != "ok" {
            let status_line = format!("HTTP/1.1 {got} ");
            let text = String::from_utf8_lossy(&wire);
            let last = text.rfind("HTTP/1.1 ").map(|i| &text[i..]).unwrap_or("");
            assert!(last.starts_with(&status_line), "{}: {text}", path.display());
            assert!(last.contains("connection: close\r\n"), "{}", path.display());
        } else {
            assert!(
                seen.iter().any(|s| matches!(s, Seen::End)),
                "{}",
                path.display()
            );
        }
    }
    assert!(
        failures.is_empty(),
        "corpus failures:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------- malformed table

#[test]
fn malformed_requests_table() {
    let h = "Host: x\r\n";
    let long_target = format!("GET /{} HTTP/1.1\r\n{h}\r\n", "a".repeat(9000));
    let many_headers = format!(
        "GET / HTTP/1.1\r\n{h}{}\r\n",
        (0..120)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect::<String>()
    );
    let big_header = format!("GET / HTTP/1.1\r\n{h}X-Big: {}\r\n\r\n", "v".repeat(70_000));
    let rows: Vec<(&str, String, u16)> = vec![
        (
            "cl+te",
            format!(
                "POST / HTTP/1.1\r\n{h}Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            400,
        ),
        (
            "te+cl",
            format!(
                "POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n"
            ),
            400,
        ),
        (
            "dup cl same",
            format!("POST / HTTP/1.1\r\n{h}Content-Length: 1\r\nContent-Length: 1\r\n\r\na"),
            400,
        ),
        (
            "dup cl differ",
            format!("POST / HTTP/1.1\r\n{h}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
            400,
        ),
        (
            "cl list",
            format!("POST / HTTP/1.1\r\n{h}Content-Length: 1,1\r\n\r\na"),
            400,
        ),
        (
            "cl sign",
            format!("POST / HTTP/1.1\r\n{h}Content-Length: +1\r\n\r\na"),
            400,
        ),
        (
            "cl hex",
            format!("POST / HTTP/1.1\r\n{h}Content-Length: 0x1\r\n\r\na"),
            400,
        ),
        (
            "cl empty",
            format!("POST / HTTP/1.1\r\n{h}Content-Length: \r\n\r\n"),
            400,
        ),
        (
            "cl overflow",
            format!("POST / HTTP/1.1\r\n{h}Content-Length: 18446744073709551616\r\n\r\n"),
            400,
        ),
        ("bare lf line", format!("GET / HTTP/1.1\n{h}\r\n"), 400),
        (
            "bare lf field",
            "GET / HTTP/1.1\r\nHost: x\nA: b\r\n\r\n".to_owned(),
            400,
        ),
        ("bare lf end", format!("GET / HTTP/1.1\r\n{h}\n"), 400),
        (
            "bare lf leading",
            format!("\nGET / HTTP/1.1\r\n{h}\r\n"),
            400,
        ),
        (
            "obs-fold",
            format!("GET / HTTP/1.1\r\n{h}A: b\r\n c\r\n\r\n"),
            400,
        ),
        (
            "obs-fold tab",
            format!("GET / HTTP/1.1\r\n{h}A: b\r\n\tc\r\n\r\n"),
            400,
        ),
        (
            "space before colon",
            "GET / HTTP/1.1\r\nHost : x\r\n\r\n".to_owned(),
            400,
        ),
        ("bad method", format!("G@T / HTTP/1.1\r\n{h}\r\n"), 400),
        ("empty method", format!(" / HTTP/1.1\r\n{h}\r\n"), 400),
        (
            "bad name",
            format!("GET / HTTP/1.1\r\n{h}A(b: c\r\n\r\n"),
            400,
        ),
        (
            "nul value",
            format!("GET / HTTP/1.1\r\n{h}A: b\0c\r\n\r\n"),
            400,
        ),
        (
            "cr value",
            format!("GET / HTTP/1.1\r\n{h}A: b\rc\r\n\r\n"),
            400,
        ),
        ("no host", "GET / HTTP/1.1\r\n\r\n".to_owned(), 400),
        ("two hosts", format!("GET / HTTP/1.1\r\n{h}{h}\r\n"), 400),
        (
            "te gzip",
            format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: gzip\r\n\r\n"),
            501,
        ),
        (
            "te identity",
            format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: identity\r\n\r\n"),
            501,
        ),
        (
            "te unknown",
            format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: foo, chunked\r\n\r\n"),
            501,
        ),
        (
            "te chunked not last",
            format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked, gzip\r\n\r\n"),
            400,
        ),
        (
            "te chunked twice",
            format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked, chunked\r\n\r\n"),
            400,
        ),
        (
            "te in 1.0",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned(),
            400,
        ),
        ("http/2.0", format!("GET / HTTP/2.0\r\n{h}\r\n"), 505),
        ("http/1.2", format!("GET / HTTP/1.2\r\n{h}\r\n"), 505),
        ("http/2", format!("GET / HTTP/2\r\n{h}\r\n"), 400),
        ("garbage version", format!("GET / XTTP/1.1\r\n{h}\r\n"), 400),
        (
            "binary garbage",
            "\x16\x03\x01\x02\x00\x01\x00\x01\x7f\x03\x03\r\n\r\n".to_owned(),
            400,
        ),
        ("long request-line", long_target, 414),
        ("too many headers", many_headers, 431),
        ("head too large", big_header, 431),
        (
            "chunk not hex",
            format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\nq\r\n"),
            400,
        ),
        (
            "chunk empty size",
            format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n\r\n"),
            400,
        ),
        (
            "chunk overflow",
            format!(
                "POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n11111111111111111\r\n"
            ),
            400,
        ),
        (
            "chunk garbage",
            format!(
                "POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n1 x\r\na\r\n0\r\n\r\n"
            ),
            400,
        ),
        (
            "chunk ext bad",
            format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n1;\r\na\r\n0\r\n\r\n"),
            400,
        ),
        (
            "chunk ext bad quote",
            format!(
                "POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n1;a=\"b\r\na\r\n0\r\n\r\n"
            ),
            400,
        ),
        (
            "chunk no crlf",
            format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n"),
            400,
        ),
        (
            "chunk bare lf",
            format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n"),
            400,
        ),
        (
            "bad trailer",
            format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n0\r\nA B: c\r\n\r\n"),
            400,
        ),
        (
            "folded trailer",
            format!(
                "POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n c\r\n\r\n"
            ),
            400,
        ),
        ("eof in head", "GET / HTTP/1.1\r\nHo".to_owned(), 400),
        (
            "eof in body",
            format!("POST / HTTP/1.1\r\n{h}Content-Length: 5\r\n\r\nab"),
            400,
        ),
        (
            "eof in chunk",
            format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n5\r\nab"),
            400,
        ),
    ];
    for (name, raw, status) in rows {
        let (seen, wire) = drive(config(), &[raw.as_bytes()]);
        let text = String::from_utf8_lossy(&wire);
        assert_eq!(verdict(&seen), status.to_string(), "{name}: {seen:?}");
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{name}: {text}"
        );
        assert!(text.contains("\r\nconnection: close\r\n"), "{name}: {text}");
        assert!(
            text.contains("\r\ncontent-type: text/plain; charset=utf-8\r\n"),
            "{name}"
        );
        assert_eq!(seen.last(), Some(&Seen::Closed), "{name}");
    }
}

#[test]
fn error_response_is_complete_and_final() {
    let mut c = Connection::new(Config {
        server_header: Some(Bytes::from_static(b"cormorant")),
        date_header: true,
        ..Config::default()
    });
    c.set_date(Bytes::from_static(b"Sun, 06 Nov 1994 08:49:37 GMT"));
    c.handle_bytes(b"GET / HTTP/1.1\r\n\r\n");
    assert!(matches!(
        c.poll_event(),
        Event::Error(PeerError::BadRequest(_))
    ));
    assert_eq!(
        drain_str(&mut c),
        "HTTP/1.1 400 Bad Request\r\nserver: cormorant\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
         content-type: text/plain; charset=utf-8\r\ncontent-length: 11\r\nconnection: close\r\n\r\n\
         Bad Request"
    );
    for _ in 0..3 {
        assert_eq!(c.poll_event(), Event::Closed);
    }
    c.handle_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.poll_event(), Event::Closed);
    assert!(!c.is_keep_alive());
    assert!(c.start_next_cycle().is_err());
    assert!(c.send_response(resp(200, &[])).is_err());
    assert!(!c.has_transmit());
}

#[test]
fn limits_from_config() {
    let cfg = Config {
        max_request_line: 32,
        max_head_size: 128,
        max_headers: 3,
        max_body_size: Some(4),
        max_chunk_line: 8,
        ..config()
    };
    let cases: &[(&[u8], u16)] = &[
        (b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 431),
        (b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\n", 413),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;abcdefgh", 400),
    ];
    for (raw, status) in cases {
        // No EOF: the limits must trip on the bytes alone.
        let mut c = Connection::new(cfg.clone());
        c.handle_bytes(raw);
        let err = loop {
            match c.poll_event() {
                Event::Error(e) => break e,
                Event::RequestHead(_) | Event::BodyChunk(_) => {}
                other => panic!("{}: {other:?}", String::from_utf8_lossy(raw)),
            }
        };
        assert_eq!(
            err.status_hint(),
            *status,
            "{}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(c.poll_event(), Event::Closed);
    }
    // At the limits exactly, all is fine.
    let mut c = Connection::new(cfg);
    c.handle_bytes(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd");
    expect_head(&mut c);
    assert_eq!(read_body(&mut c), b"abcd");
}

#[test]
fn chunked_body_too_large_after_response_started() {
    let cfg = Config {
        max_body_size: Some(3),
        ..config()
    };
    let mut c = Connection::new(cfg);
    c.handle_bytes(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n");
    expect_head(&mut c);
    assert_eq!(c.poll_event(), Event::BodyChunk(Bytes::from_static(b"ab")));
    assert_eq!(c.poll_event(), Event::NeedData);
    c.send_response(resp(200, &[])).unwrap();
    let _ = drain(&mut c);
    c.handle_bytes(b"2\r\ncd\r\n");
    assert_eq!(c.poll_event(), Event::Error(PeerError::BodyTooLarge));
    // A response had started: no error response is queued.
    assert!(!c.has_transmit());
    assert_eq!(c.poll_event(), Event::Closed);
}

// ---------------------------------------------------------------- events

#[test]
fn get_then_clean_close() {
    let mut c = Connection::new(config());
    assert_eq!(c.poll_event(), Event::NeedData);
    c.handle_bytes(b"GET /a?b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
    let h = expect_head(&mut c);
    assert_eq!(
        (h.method.as_ref(), h.target.as_ref()),
        (&b"GET"[..], &b"/a?b"[..])
    );
    assert_eq!(h.version, Version::Http11);
    assert_eq!(h.body, BodyKind::Empty);
    assert_eq!(c.poll_event(), Event::EndOfMessage);
    assert_eq!(c.poll_event(), Event::Paused);
    assert_eq!(c.poll_event(), Event::Paused);
    respond_ok(&mut c, b"hi");
    assert_eq!(c.poll_event(), Event::Paused);
    assert_eq!(
        drain_str(&mut c),
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"
    );
    c.start_next_cycle().unwrap();
    assert_eq!(c.poll_event(), Event::NeedData);
    c.handle_eof();
    assert_eq!(c.poll_event(), Event::Closed);
    assert_eq!(c.poll_event(), Event::Closed);
}

#[test]
fn leading_empty_lines_ignored() {
    let mut c = Connection::new(config());
    c.handle_bytes(b"\r\n\r\n\r");
    assert_eq!(c.poll_event(), Event::NeedData);
    c.handle_bytes(b"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_head(&mut c);
    // EOF after only empty lines is a clean close.
    let mut c = Connection::new(config());
    c.handle_bytes(b"\r\n");
    c.handle_eof();
    assert_eq!(c.poll_event(), Event::Closed);
}

#[test]
fn body_chunks_are_never_empty_and_zero_copy() {
    let mut c = Connection::new(config());
    c.handle_bytes(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc");
    expect_head(&mut c);
    let Event::BodyChunk(first) = c.poll_event() else {
        panic!("expected body")
    };
    assert_eq!(first, "abc");
    assert_eq!(c.poll_event(), Event::NeedData);
    c.handle_bytes(b"def");
    assert_eq!(c.poll_event(), Event::BodyChunk(Bytes::from_static(b"def")));
    assert_eq!(c.poll_event(), Event::EndOfMessage);
}

#[test]
fn eof_mid_head_and_mid_body() {
    let mut c = Connection::new(config());
    c.handle_bytes(b"GET / HT");
    assert_eq!(c.poll_event(), Event::NeedData);
    c.handle_eof();
    assert_eq!(c.poll_event(), Event::Error(PeerError::IncompleteMessage));
    assert_eq!(c.poll_event(), Event::Closed);

    let mut c = Connection::new(config());
    c.handle_bytes(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab");
    expect_head(&mut c);
    assert_eq!(c.poll_event(), Event::BodyChunk(Bytes::from_static(b"ab")));
    c.send_response(resp(200, &[])).unwrap();
    let _ = drain(&mut c);
    c.handle_eof();
    assert_eq!(c.poll_event(), Event::Error(PeerError::IncompleteMessage));
    assert!(!c.has_transmit(), "response started: no error response");
    assert_eq!(c.poll_event(), Event::Closed);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut c = Connection::new(config());
    c.handle_bytes(
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
          GET /3 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let mut out = Vec::new();
    for (target, body) in [("/1", &b""[..]), ("/2", b"abc"), ("/3", b"")] {
        let h = expect_head(&mut c);
        assert_eq!(h.target, target);
        assert_eq!(read_body(&mut c), body);
        assert_eq!(c.poll_event(), Event::Paused);
        c.send_response(resp(200, &[("content-length", "1")]))
            .unwrap();
        c.send_body(Bytes::copy_from_slice(&target.as_bytes()[1..]))
            .unwrap();
        c.send_end().unwrap();
        c.poll_transmit(&mut out);
        c.start_next_cycle().unwrap();
    }
    assert_eq!(c.poll_event(), Event::NeedData);
    let text = String::from_utf8(out.concat()).unwrap();
    let bodies: Vec<&str> = text.split("\r\n\r\n").skip(1).map(|s| &s[..1]).collect();
    assert_eq!(bodies, ["1", "2", "3"]);
}

#[test]
fn pipelined_bytes_wait_while_paused() {
    let mut c = Connection::new(config());
    c.handle_bytes(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_head(&mut c);
    assert_eq!(c.poll_event(), Event::EndOfMessage);
    assert_eq!(c.poll_event(), Event::Paused);
    // Not even a finished response unpauses without start_next_cycle.
    respond_ok(&mut c, b"");
    assert_eq!(c.poll_event(), Event::Paused);
    c.start_next_cycle().unwrap();
    assert_eq!(expect_head(&mut c).target, "/2");
}

// ---------------------------------------------------------------- keep-alive

fn exchange(c: &mut Connection, raw: &[u8]) -> (RequestHead, String) {
    c.handle_bytes(raw);
    let h = expect_head(c);
    read_body(c);
    c.send_response(resp(200, &[("content-length", "0")]))
        .unwrap();
    c.send_end().unwrap();
    (h, drain_str(c))
}

#[test]
fn keep_alive_http11_default_and_close() {
    let mut c = Connection::new(config());
    let (h, out) = exchange(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(h.keep_alive);
    assert!(c.is_keep_alive());
    assert!(!out.contains("connection"));
    c.start_next_cycle().unwrap();
    let (h, out) = exchange(
        &mut c,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n",
    );
    assert!(!h.keep_alive);
    assert!(!c.is_keep_alive());
    assert!(out.contains("\r\nconnection: close\r\n"), "{out}");
    assert!(c.start_next_cycle().is_err());
    assert_eq!(c.poll_event(), Event::Closed);
}

#[test]
fn keep_alive_http10() {
    let mut c = Connection::new(config());
    let (h, out) = exchange(&mut c, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(h.keep_alive);
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n"),
        "1.1 on the wire: {out}"
    );
    assert!(out.contains("\r\nconnection: keep-alive\r\n"), "{out}");
    c.start_next_cycle().unwrap();
    let (h, out) = exchange(&mut c, b"GET / HTTP/1.0\r\n\r\n");
    assert!(!h.keep_alive);
    assert!(out.contains("\r\nconnection: close\r\n"));
    assert!(!c.is_keep_alive());
    assert_eq!(c.poll_event(), Event::Closed);
}

#[test]
fn close_after_response_forces_close() {
    let mut c = Connection::new(config());
    c.handle_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_head(&mut c);
    c.close_after_response();
    assert!(!c.is_keep_alive());
    respond_ok(&mut c, b"x");
    assert!(drain_str(&mut c).contains("\r\nconnection: close\r\n"));
    assert_eq!(c.poll_event(), Event::Closed);
    assert!(c.start_next_cycle().is_err());

    // Between requests, it closes at once.
    let mut c = Connection::new(config());
    c.close_after_response();
    c.handle_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.poll_event(), Event::Closed);
}

#[test]
fn app_connection_close_is_honoured() {
    let mut c = Connection::new(config());
    c.handle_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_head(&mut c);
    c.send_response(resp(
        200,
        &[("Connection", "close"), ("content-length", "0")],
    ))
    .unwrap();
    c.send_end().unwrap();
    let out = drain_str(&mut c);
    assert_eq!(out.matches("onnection").count(), 1, "{out}");
    assert!(out.contains("\r\nconnection: close\r\n"));
    assert!(!c.is_keep_alive());
}

// ---------------------------------------------------------------- unread bodies

#[test]
fn unread_buffered_body_is_skipped() {
    let mut c = Connection::new(config());
    c.handle_bytes(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
          GET /next HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    expect_head(&mut c);
    respond_ok(&mut c, b"no");
    assert!(c.is_keep_alive());
    assert_eq!(c.poll_event(), Event::Paused);
    c.start_next_cycle().unwrap();
    assert_eq!(expect_head(&mut c).target, "/next");
}

#[test]
fn unread_missing_body_closes() {
    let mut c = Connection::new(config());
    c.handle_bytes(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
    expect_head(&mut c);
    respond_ok(&mut c, b"no");
    assert!(!c.is_keep_alive());
    assert!(c.start_next_cycle().is_err());
    assert_eq!(c.poll_event(), Event::Closed);
}

#[test]
fn expect_continue_not_sent_and_body_missing_closes() {
    let mut c = Connection::new(config());
    c.handle_bytes(
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    );
    let h = expect_head(&mut c);
    assert!(h.expect_continue);
    c.send_response(resp(417, &[("content-length", "0")]))
        .unwrap();
    c.send_end().unwrap();
    assert!(!drain_str(&mut c).contains("100 Continue"));
    assert!(!c.is_keep_alive());
}

// ---------------------------------------------------------------- 100-continue

#[test]
fn send_continue_rules() {
    let mut c = Connection::new(config());
    c.handle_bytes(
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    );
    let h = expect_head(&mut c);
    assert!(h.expect_continue);
    assert_eq!(c.poll_event(), Event::NeedData);
    assert!(c.send_continue());
    assert!(!c.send_continue(), "only once");
    assert_eq!(drain_str(&mut c), "HTTP/1.1 100 Continue\r\n\r\n");
    c.handle_bytes(b"hi");
    assert_eq!(read_body(&mut c), b"hi");
    respond_ok(&mut c, b"ok");
    assert!(c.is_keep_alive());

    // Not expected: nothing.
    let mut c = Connection::new(config());
    c.handle_bytes(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n");
    expect_head(&mut c);
    assert!(!c.send_continue());
    assert!(!c.has_transmit());

    // After the final response started: nothing.
    let mut c = Connection::new(config());
    c.handle_bytes(
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    );
    expect_head(&mut c);
    c.send_response(resp(200, &[])).unwrap();
    assert!(!c.send_continue());

    // The client sent body bytes without waiting: no 100 (RFC 9110
    // §10.1.1 lets the server omit it).
    let mut c = Connection::new(config());
    c.handle_bytes(
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nh",
    );
    expect_head(&mut c);
    assert!(!c.send_continue());
    assert!(!c.has_transmit());

    // HTTP/1.0: never expected.
    let mut c = Connection::new(config());
    c.handle_bytes(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert!(!expect_head(&mut c).expect_continue);
    assert!(!c.send_continue());
}

#[test]
fn informational_responses() {
    let mut c = Connection::new(config());
    c.handle_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_head(&mut c);
    c.send_informational(resp(103, &[("link", "</s.css>; rel=preload")]))
        .unwrap();
    assert!(c.send_informational(resp(200, &[])).is_err());
    assert!(c.send_informational(resp(101, &[])).is_err());
    assert!(!c.response_started());
    respond_ok(&mut c, b"ok");
    assert!(c.send_informational(resp(103, &[])).is_err());
    assert_eq!(
        drain_str(&mut c),
        "HTTP/1.1 103 Early Hints\r\nlink: </s.css>; rel=preload\r\n\r\n\
         HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    );
    // Not to a 1.0 client.
    let mut c = Connection::new(config());
    c.handle_bytes(b"GET / HTTP/1.0\r\n\r\n");
    expect_head(&mut c);
    c.send_informational(resp(103, &[])).unwrap();
    assert!(!c.has_transmit());
}

// ---------------------------------------------------------------- upgrade

#[test]
fn upgrade_and_take_buffered() {
    let mut c = Connection::new(config());
    c.handle_bytes(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x80abcd",
    );
    let h = expect_head(&mut c);
    assert_eq!(h.upgrade.as_deref(), Some(&b"websocket"[..]));
    c.send_response(resp(
        101,
        &[("connection", "Upgrade"), ("upgrade", "websocket")],
    ))
    .unwrap();
    assert_eq!(
        drain_str(&mut c),
        "HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n"
    );
    assert!(!c.is_keep_alive(), "the connection is no longer HTTP/1.1");
    assert_eq!(c.take_buffered(), Bytes::from_static(b"\x81\x80abcd"));
    assert_eq!(c.take_buffered(), Bytes::new());
}

// ---------------------------------------------------------------- responses

fn request(c: &mut Connection, raw: &[u8]) {
    c.handle_bytes(raw);
    expect_head(c);
    read_body(c);
}

#[test]
fn chunked_response_for_11() {
    let mut c = Connection::new(config());
    request(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    c.send_response(resp(
        200,
        &[
            ("Content-Type", "text/plain"),
            ("Transfer-Encoding", "gzip"),
        ],
    ))
    .unwrap();
    c.send_body(Bytes::from_static(b"hello")).unwrap();
    c.send_body(Bytes::new()).unwrap();
    c.send_body(Bytes::from_static(b" world, 16 bytes"))
        .unwrap();
    c.send_end().unwrap();
    assert_eq!(
        drain_str(&mut c),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n\
         5\r\nhello\r\n10\r\n world, 16 bytes\r\n0\r\n\r\n"
    );
    assert!(c.is_keep_alive());
}

#[test]
fn close_delimited_response_for_10() {
    let mut c = Connection::new(config());
    request(&mut c, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    c.send_response(resp(200, &[])).unwrap();
    c.send_body(Bytes::from_static(b"raw")).unwrap();
    c.send_end().unwrap();
    assert_eq!(
        drain_str(&mut c),
        "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nraw"
    );
    assert!(!c.is_keep_alive());
    assert_eq!(c.poll_event(), Event::Closed);
}

#[test]
fn head_request_has_no_body_on_the_wire() {
    let mut c = Connection::new(config());
    request(&mut c, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    c.send_response(resp(200, &[("content-length", "5")]))
        .unwrap();
    c.send_body(Bytes::from_static(b"hello")).unwrap();
    c.send_end().unwrap();
    assert_eq!(
        drain_str(&mut c),
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
    );
    assert!(c.is_keep_alive());
}

#[test]
fn no_body_statuses() {
    for status in [204u16, 304] {
        let mut c = Connection::new(config());
        request(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        c.send_response(resp(status, &[("transfer-encoding", "chunked")]))
            .unwrap();
        c.send_body(Bytes::from_static(b"dropped")).unwrap();
        c.send_end().unwrap();
        let out = drain_str(&mut c);
        assert!(out.ends_with("\r\n\r\n"), "{out}");
        assert!(!out.contains("transfer-encoding"), "{out}");
        assert!(!out.contains("dropped"));
        assert!(c.is_keep_alive());
    }
}

#[test]
fn content_length_enforced() {
    // Too many bytes.
    let mut c = Connection::new(config());
    request(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    c.send_response(resp(200, &[("content-length", "3")]))
        .unwrap();
    assert_eq!(
        c.send_body(Bytes::from_static(b"abcd")),
        Err(UsageError::LengthMismatch)
    );
    assert!(!c.is_keep_alive());
    assert!(c.send_body(Bytes::from_static(b"a")).is_err());
    assert!(!drain_str(&mut c).contains("abcd"));
    assert_eq!(c.poll_event(), Event::Closed);

    // Too few.
    let mut c = Connection::new(config());
    request(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    c.send_response(resp(200, &[("content-length", "3")]))
        .unwrap();
    c.send_body(Bytes::from_static(b"ab")).unwrap();
    assert_eq!(c.send_end(), Err(UsageError::LengthMismatch));
    assert!(!c.is_keep_alive());
    assert!(c.start_next_cycle().is_err());
    assert_eq!(c.poll_event(), Event::Closed);
}

#[test]
fn invalid_app_headers_are_usage_errors() {
    for head in [
        resp(200, &[("bad name", "x")]),
        resp(200, &[("x", "a\r\nInjected: 1")]),
        resp(200, &[("x", "a\0")]),
        resp(200, &[("content-length", "abc")]),
        resp(42, &[]),
        resp(1000, &[]),
        resp(100, &[]),
    ] {
        let mut c = Connection::new(config());
        request(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            matches!(
                c.send_response(head.clone()),
                Err(UsageError::InvalidValue(_))
            ),
            "{head:?}"
        );
        assert!(!c.has_transmit());
        assert!(!c.response_started());
        // The application may try again with a valid head.
        respond_ok(&mut c, b"ok");
    }
}

#[test]
fn server_date_and_extra_headers() {
    let mut c = Connection::new(Config {
        server_header: Some(Bytes::from_static(b"cormorant")),
        date_header: true,
        extra_headers: vec![(
            Bytes::from_static(b"x-frame-options"),
            Bytes::from_static(b"DENY"),
        )],
        ..Config::default()
    });
    request(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    // No date set yet: no date header.
    respond_ok(&mut c, b"a");
    assert_eq!(
        drain_str(&mut c),
        "HTTP/1.1 200 OK\r\nserver: cormorant\r\nx-frame-options: DENY\r\ncontent-length: 1\r\n\r\na"
    );
    c.start_next_cycle().unwrap();
    c.set_date(Bytes::from_static(b"Sun, 06 Nov 1994 08:49:37 GMT"));
    request(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    respond_ok(&mut c, b"a");
    assert!(drain_str(&mut c).contains("\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"));

    // date_header off: never.
    let mut c = Connection::new(Config {
        date_header: false,
        ..Config::default()
    });
    c.set_date(Bytes::from_static(b"Sun, 06 Nov 1994 08:49:37 GMT"));
    request(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    respond_ok(&mut c, b"a");
    assert!(!drain_str(&mut c).contains("date:"));
}

#[test]
fn small_response_is_one_segment_large_body_is_its_own() {
    let mut c = Connection::new(config());
    request(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    respond_ok(&mut c, b"hello");
    assert!(c.has_transmit());
    let mut segs = Vec::new();
    c.poll_transmit(&mut segs);
    assert_eq!(segs.len(), 1, "head, body and end in one buffer");
    assert!(!c.has_transmit());
    c.start_next_cycle().unwrap();

    let big = Bytes::from(vec![b'z'; 64 * 1024]);
    request(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    c.send_response(resp(200, &[("content-length", "65536")]))
        .unwrap();
    c.send_body(big.clone()).unwrap();
    c.send_end().unwrap();
    let mut segs = Vec::new();
    c.poll_transmit(&mut segs);
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[1].as_ptr(), big.as_ptr(), "large body is not copied");
}

#[test]
fn poll_transmit_appends_in_order() {
    let mut c = Connection::new(config());
    request(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    c.send_response(resp(200, &[])).unwrap();
    let mut segs = vec![Bytes::from_static(b"previous")];
    c.poll_transmit(&mut segs);
    c.send_body(Bytes::from(vec![b'y'; 20_000])).unwrap();
    c.send_end().unwrap();
    c.poll_transmit(&mut segs);
    assert_eq!(segs[0], "previous");
    let all = segs[1..].concat();
    assert!(all.ends_with(b"\r\n0\r\n\r\n"));
    assert!(String::from_utf8_lossy(&all).contains("\r\n\r\n4e20\r\nyyy"));
}

// ---------------------------------------------------------------- splitting

#[test]
fn same_events_however_the_input_is_split() {
    let inputs: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\r\nPOST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /q HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;ext=\"v\"\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n\
          GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\nGET /ignored HTTP/1.0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nshort",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\nGET / HTTP/1.1\r\n\r\n",
    ];
    for input in inputs {
        let (seen, _) = drive_all_ways(&config(), input);
        assert_eq!(seen.last(), Some(&Seen::Closed), "{seen:?}");
    }
    let (seen, _) = drive_all_ways(&config(), inputs[2]);
    assert_eq!(
        seen,
        vec![
            Seen::Head(b"POST".to_vec(), b"/".to_vec()),
            Seen::Body(b"hello0123456789".to_vec()),
            Seen::End,
            Seen::Head(b"GET".to_vec(), b"/after".to_vec()),
            Seen::End,
            Seen::Closed,
        ]
    );
}

#[test]
fn output_buffer_is_reused_between_responses() {
    let mut c = Connection::new(config());
    let mut first = None;
    for _ in 0..3 {
        request(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        respond_ok(&mut c, b"hello");
        let mut segs = Vec::new();
        c.poll_transmit(&mut segs);
        assert_eq!(segs.len(), 1);
        let ptr = segs[0].as_ptr();
        // The driver wrote and dropped the segment: the next response
        // reuses the same allocation.
        drop(segs);
        assert_eq!(*first.get_or_insert(ptr), ptr);
        c.start_next_cycle().unwrap();
    }
}
