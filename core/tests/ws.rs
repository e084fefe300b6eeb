//! Wire tests of the WebSocket connection: client frames in, events and
//! server frames out, each case fed whole, byte by byte and split at every
//! offset.

use bytes::Bytes;
use cormorant_core::ws::{Config, Connection, DeflateParams, Event, WsError};

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame. `b0` holds FIN, RSV and the opcode.
fn frame_b0(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![b0];
    let len = payload.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len <= 0xffff {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    f.extend_from_slice(&MASK);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    f
}

fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_b0(u8::from(fin) << 7 | opcode, payload)
}

fn text(s: &str) -> Vec<u8> {
    frame(true, 1, s.as_bytes())
}

fn close(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    frame(true, 8, &p)
}

/// A server frame (unmasked).
fn server_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![b0];
    let len = payload.len();
    if len < 126 {
        f.push(len as u8);
    } else if len <= 0xffff {
        f.push(126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    f.extend_from_slice(payload);
    f
}

fn server_close(code: u16) -> Vec<u8> {
    server_frame(0x88, &code.to_be_bytes())
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn drain(conn: &mut Connection) -> Vec<u8> {
    let mut segs = Vec::new();
    conn.poll_transmit(&mut segs);
    assert!(segs.iter().all(|s| !s.is_empty()));
    assert_eq!(conn.buffered_output(), 0);
    segs.concat()
}

/// Feeds `chunks`, polling after each, and returns the events (without
/// `NeedData`) and everything transmitted. Stops at the first `Closed`.
fn run(config: &Config, chunks: &[&[u8]], eof: bool) -> (Vec<Event>, Vec<u8>) {
    let mut conn = Connection::new(config.clone());
    let mut events = Vec::new();
    let mut out = Vec::new();
    let poll = |conn: &mut Connection, events: &mut Vec<Event>| loop {
        match conn.poll_event() {
            Event::NeedData => return false,
            Event::Closed => return true,
            ev => events.push(ev),
        }
    };
    let mut closed = false;
    for chunk in chunks {
        conn.handle_bytes(chunk);
        closed = poll(&mut conn, &mut events);
        out.extend(drain(&mut conn));
        if closed {
            break;
        }
    }
    if eof && !closed {
        conn.handle_eof();
        closed = poll(&mut conn, &mut events);
        out.extend(drain(&mut conn));
    }
    if closed {
        assert!(conn.is_closed() || !conn.close_received());
        for _ in 0..3 {
            assert_eq!(conn.poll_event(), Event::Closed);
        }
    }
    (events, out)
}

/// Runs `wire` whole, byte by byte, and split at every offset (and at
/// every pair of offsets for short inputs); all must agree.
fn check_with(config: &Config, wire: &[u8], events: &[Event], out: &[u8]) {
    let whole = run(config, &[wire], false);
    assert_eq!(whole.0, events, "events, whole");
    assert_eq!(whole.1, out, "output, whole");
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    assert_eq!(run(config, &bytes, false), whole, "byte by byte");
    for i in 0..=wire.len() {
        let (a, b) = wire.split_at(i);
        assert_eq!(run(config, &[a, b], false), whole, "split at {i}");
        if wire.len() <= 64 {
            for j in i..=wire.len() {
                let parts = [&wire[..i], &wire[i..j], &wire[j..]];
                assert_eq!(run(config, &parts, false), whole, "split at {i},{j}");
            }
        }
    }
    // Trailing garbage after a close or an error is ignored.
    if events
        .last()
        .is_some_and(|e| matches!(e, Event::Close { .. } | Event::Error(_)))
    {
        let mut extra = wire.to_vec();
        extra.extend_from_slice(&[0xff; 20]);
        assert_eq!(run(config, &[&extra], false), whole, "trailing bytes");
    }
}

fn check(wire: &[u8], events: &[Event], out: &[u8]) {
    check_with(&Config::default(), wire, events, out);
}

fn t(s: &str) -> Event {
    Event::Text(s.to_owned())
}

fn b(s: &[u8]) -> Event {
    Event::Binary(Bytes::copy_from_slice(s))
}

fn closed(code: u16, reason: &str) -> Event {
    Event::Close {
        code,
        reason: reason.to_owned(),
    }
}

fn err(e: WsError) -> Event {
    Event::Error(e)
}

#[test]
fn messages() {
    check(&text("Hello"), &[t("Hello")], b"");
    check(&text(""), &[t("")], b"");
    check(&frame(true, 2, b"\x00\xff"), &[b(b"\x00\xff")], b"");
    let big = vec![b'a'; 300];
    check(
        &frame(true, 1, &big),
        &[t(std::str::from_utf8(&big).unwrap())],
        b"",
    );
    check(
        &concat(&[&text("a"), &frame(true, 2, b"b"), &text("κόσμε")]),
        &[t("a"), b(b"b"), t("κόσμε")],
        b"",
    );
}

#[test]
fn long_lengths() {
    let p = vec![7u8; 70_000];
    let wire = frame(true, 2, &p);
    let (ev, _) = run(&Config::default(), &[&wire], false);
    assert_eq!(ev, [Event::Binary(Bytes::from(p.clone()))]);
    let chunks: Vec<&[u8]> = wire.chunks(1000).collect();
    assert_eq!(run(&Config::default(), &chunks, false).0, ev);
    // A non-minimal 64-bit length for 5 bytes is fine.
    let mut nm = vec![0x81, 0xff, 0, 0, 0, 0, 0, 0, 0, 5];
    nm.extend_from_slice(&[0; 4]);
    nm.extend_from_slice(b"hello");
    check(&nm, &[t("hello")], b"");
}

#[test]
fn fragmentation() {
    check(
        &concat(&[
            &frame(false, 1, b"Hel"),
            &frame(false, 0, b""),
            &frame(true, 0, b"lo"),
        ]),
        &[t("Hello")],
        b"",
    );
    // Control frames in the middle of a fragmented message (§5.4).
    check(
        &concat(&[
            &frame(false, 2, b"ab"),
            &frame(true, 9, b"p"),
            &frame(true, 0xa, b"q"),
            &frame(true, 0, b"cd"),
        ]),
        &[
            Event::Ping(Bytes::from_static(b"p")),
            Event::Pong(Bytes::from_static(b"q")),
            b(b"abcd"),
        ],
        &server_frame(0x8a, b"p"),
    );
    // A code point split across fragments.
    let s = "a€b".as_bytes();
    check(
        &concat(&[
            &frame(false, 1, &s[..2]),
            &frame(false, 0, &s[2..3]),
            &frame(true, 0, &s[3..]),
        ]),
        &[t("a€b")],
        b"",
    );
}

#[test]
fn control_frames() {
    check(
        &frame(true, 9, b"ping!"),
        &[Event::Ping(Bytes::from_static(b"ping!"))],
        &server_frame(0x8a, b"ping!"),
    );
    check(
        &frame(true, 9, &[b'x'; 125]),
        &[Event::Ping(Bytes::from(vec![b'x'; 125]))],
        &server_frame(0x8a, &[b'x'; 125]),
    );
    check(
        &frame(true, 9, b""),
        &[Event::Ping(Bytes::new())],
        &[0x8a, 0],
    );
    check(
        &frame(true, 0xa, b"unsolicited"),
        &[Event::Pong(Bytes::from_static(b"unsolicited"))],
        b"",
    );
}

#[test]
fn close_handshake() {
    check(&close(1000, b""), &[closed(1000, "")], &server_close(1000));
    check(
        &close(1001, b"bye"),
        &[closed(1001, "bye")],
        &server_close(1001),
    );
    check(
        &frame(true, 8, b""),
        &[closed(1005, "")],
        &server_close(1000),
    );
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000,
        4999,
    ] {
        check(&close(code, b""), &[closed(code, "")], &server_close(code));
    }
    // Frames after the close frame are ignored (§5.5.1).
    check(
        &concat(&[&close(1000, b""), &text("late"), &frame(true, 9, b"")]),
        &[closed(1000, "")],
        &server_close(1000),
    );
}

fn proto(wire: &[u8]) {
    let (ev, out) = run(&Config::default(), &[wire], false);
    assert!(
        matches!(ev.last(), Some(Event::Error(WsError::Protocol(_)))),
        "{wire:x?}: {ev:?}"
    );
    assert!(out.ends_with(&server_close(1002)), "{wire:x?}: {out:x?}");
    check(wire, &ev, &out);
}

#[test]
fn protocol_errors() {
    // Unmasked client frame (§5.1).
    proto(&[0x81, 0x01, b'a']);
    // Reserved bits without an extension (§5.2).
    for b0 in [0xc1, 0xa1, 0x91, 0xc9] {
        proto(&frame_b0(b0, b"a"));
    }
    // Reserved opcodes.
    for op in [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        proto(&frame(true, op, b""));
    }
    // Fragmented control frames and control payloads over 125 (§5.5).
    proto(&frame(false, 9, b""));
    proto(&frame(false, 8, &[3, 0xe8]));
    proto(&frame(true, 9, &[0; 126]));
    proto(&frame(true, 0xa, &[0; 126]));
    proto(&frame(true, 8, &[0; 126]));
    // Continuation without a message, new message inside one (§5.4).
    proto(&frame(true, 0, b"a"));
    proto(&frame(false, 0, b"a"));
    proto(&concat(&[&frame(false, 1, b"a"), &text("b")]));
    proto(&concat(&[&frame(false, 2, b"a"), &frame(false, 2, b"b")]));
    // A message after a complete one still needs its own opcode.
    proto(&concat(&[&text("a"), &frame(true, 0, b"b")]));
    // 64-bit length with the most significant bit set.
    proto(&[0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    // Close payload of one byte; invalid close codes (§7.4).
    proto(&frame(true, 8, &[3]));
    for code in [
        0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        proto(&close(code, b""));
    }
}

#[test]
fn error_then_closed() {
    let (ev, out) = run(
        &Config::default(),
        &[&[0x81, 0x01, b'a'], &text("x")],
        false,
    );
    assert_eq!(ev, [err(WsError::Protocol("unmasked client frame"))]);
    assert_eq!(out, server_close(1002));
}

#[test]
fn invalid_utf8() {
    let bad: &[&[u8]] = &[
        b"\xff",
        b"\xc0\xaf",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
        b"a\xe2\x82",
    ];
    for p in bad {
        check(
            &frame(true, 1, p),
            &[err(WsError::InvalidUtf8)],
            &server_close(1007),
        );
    }
    // Reason of a close frame (§8.1).
    check(
        &close(1000, b"\xff"),
        &[err(WsError::InvalidUtf8)],
        &server_close(1007),
    );
    // A message ending inside a code point, split over fragments.
    check(
        &concat(&[&frame(false, 1, b"a\xe2"), &frame(true, 0, b"\x82")]),
        &[err(WsError::InvalidUtf8)],
        &server_close(1007),
    );
}

/// Autobahn 6.4.x: an invalid sequence must fail the connection before the
/// rest of the message arrives.
#[test]
fn utf8_fails_fast() {
    // Fragmented: the second fragment is bad; the last never comes.
    let wire = concat(&[
        &frame(false, 1, "κόσμε".as_bytes()),
        &frame(false, 0, b"\xf4\x90\x80\x80"),
    ]);
    let (ev, out) = run(&Config::default(), &[&wire], false);
    assert_eq!(ev, [err(WsError::InvalidUtf8)]);
    assert_eq!(out, server_close(1007));
    // One frame whose bad bytes arrive before its end.
    let f = frame(
        true,
        1,
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xf4\x90\x80\x80\x65\x64\x69\x74",
    );
    let (ev, out) = run(&Config::default(), &[&f[..6 + 9]], false);
    assert_eq!(ev, [err(WsError::InvalidUtf8)]);
    assert_eq!(out, server_close(1007));
    // Also when the bad code point is split between fragments.
    let wire = concat(&[&frame(false, 1, b"ab\xf4"), &frame(false, 0, b"\x90")]);
    let (ev, _) = run(&Config::default(), &[&wire], false);
    assert_eq!(ev, [err(WsError::InvalidUtf8)]);
}

#[test]
fn limits() {
    let config = Config {
        max_message_size: 10,
        max_frame_size: 8,
        ..Config::default()
    };
    check_with(&config, &frame(true, 2, &[0; 8]), &[b(&[0; 8])], b"");
    check_with(
        &config,
        &frame(true, 2, &[0; 9]),
        &[err(WsError::TooBig)],
        &server_close(1009),
    );
    // The header alone decides: no payload needs to arrive.
    let (ev, out) = run(
        &config,
        &[&[0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4]],
        false,
    );
    assert_eq!(ev, [err(WsError::TooBig)]);
    assert_eq!(out, server_close(1009));
    check_with(
        &config,
        &concat(&[&frame(false, 2, &[0; 6]), &frame(true, 0, &[0; 4])]),
        &[b(&[0; 10])],
        b"",
    );
    check_with(
        &config,
        &concat(&[&frame(false, 2, &[0; 6]), &frame(true, 0, &[0; 5])]),
        &[err(WsError::TooBig)],
        &server_close(1009),
    );
}

#[test]
fn eof() {
    let (ev, out) = run(&Config::default(), &[], true);
    assert_eq!(ev, [err(WsError::Incomplete)]);
    assert_eq!(WsError::Incomplete.close_code(), 1006);
    assert!(out.is_empty());
    let f = text("Hello");
    for i in 0..f.len() {
        let (ev, out) = run(&Config::default(), &[&f[..i]], true);
        assert_eq!(ev, [err(WsError::Incomplete)], "{i}");
        assert!(out.is_empty());
    }
    let (ev, _) = run(&Config::default(), &[&f], true);
    assert_eq!(ev, [t("Hello"), err(WsError::Incomplete)]);
    let (ev, _) = run(&Config::default(), &[&close(1000, b"")], true);
    assert_eq!(ev, [closed(1000, "")]);
}

#[test]
fn sending() {
    let mut c = Connection::new(Config::default());
    c.send_text("Hello").unwrap();
    c.send_binary(&[1, 2, 3]).unwrap();
    c.send_ping(b"hb").unwrap();
    c.send_pong(b"").unwrap();
    let big = vec![9u8; 70_000];
    c.send_binary(&big).unwrap();
    c.send_binary_bytes(Bytes::from(vec![8u8; 3000])).unwrap();
    assert!(c.has_transmit());
    assert_eq!(c.buffered_output(), 7 + 5 + 4 + 2 + 70_010 + 3004);
    let mut segs = Vec::new();
    c.poll_transmit(&mut segs);
    assert!(!c.has_transmit());
    assert!(segs.len() >= 3, "large payloads are their own segments");
    let wire = segs.concat();
    let expect = concat(&[
        &server_frame(0x81, b"Hello"),
        &server_frame(0x82, &[1, 2, 3]),
        &server_frame(0x89, b"hb"),
        &server_frame(0x8a, b""),
        &server_frame(0x82, &big),
        &server_frame(0x82, &[8; 3000]),
    ]);
    assert_eq!(wire, expect);
    assert!(c.send_ping(&[0; 126]).is_err());
    for code in [0, 999, 1004, 1005, 1006, 1015, 2000, 5000] {
        assert!(c.send_close(code, "").is_err(), "{code}");
    }
    assert!(c.send_close(1000, &"x".repeat(124)).is_err());
    assert!(!c.close_sent());
    c.send_close(4000, &"x".repeat(123)).unwrap();
    assert!(c.close_sent());
    assert!(!c.is_closed());
    assert!(c.send_text("late").is_err());
    assert!(c.send_close(1000, "").is_err());
    assert!(c.send_ping(b"").is_err());
    let mut reason = 4000u16.to_be_bytes().to_vec();
    reason.extend_from_slice("x".repeat(123).as_bytes());
    assert_eq!(drain(&mut c), server_frame(0x88, &reason));
    // A ping after our close gets no pong; the peer's close completes it.
    c.handle_bytes(&frame(true, 9, b"p"));
    c.handle_bytes(&close(1000, b""));
    assert_eq!(c.poll_event(), Event::Ping(Bytes::from_static(b"p")));
    assert_eq!(c.poll_event(), closed(1000, ""));
    assert!(!c.has_transmit());
    assert!(c.is_closed() && c.close_received());
    assert_eq!(c.poll_event(), Event::Closed);
}

#[test]
fn server_close_then_peer_close() {
    let mut c = Connection::new(Config::default());
    c.send_close(1001, "going away").unwrap();
    drain(&mut c);
    c.handle_bytes(&text("in flight"));
    c.handle_bytes(&close(1001, b""));
    assert_eq!(c.poll_event(), t("in flight"));
    assert_eq!(c.poll_event(), closed(1001, ""));
    assert!(!c.has_transmit());
    assert!(c.is_closed());
}

fn deflate_config(p: DeflateParams) -> Config {
    Config {
        deflate: Some(p),
        ..Config::default()
    }
}

#[test]
fn deflate_receive() {
    let config = deflate_config(DeflateParams::default());
    // RFC 7692 §7.2.3.1, and §7.2.3.2 (context takeover).
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    check_with(&config, &frame_b0(0xc1, &hello), &[t("Hello")], b"");
    check_with(
        &config,
        &concat(&[
            &frame_b0(0xc1, &hello),
            &frame_b0(0xc1, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
        ]),
        &[t("Hello"), t("Hello")],
        b"",
    );
    // §7.2.3.1 fragmented: RSV1 on the first frame only.
    check_with(
        &config,
        &concat(&[
            &frame_b0(0x41, &[0xf2, 0x48, 0xcd]),
            &frame_b0(0x80, &[0xc9, 0xc9, 0x07, 0x00]),
        ]),
        &[t("Hello")],
        b"",
    );
    // Uncompressed messages are still allowed.
    check_with(&config, &text("plain"), &[t("plain")], b"");
    // RSV1 on a continuation frame or a control frame.
    check_with(
        &config,
        &concat(&[&frame_b0(0x41, &[0xf2]), &frame_b0(0xc0, &[0x48])]),
        &[err(WsError::Protocol("rsv1 set on a continuation frame"))],
        &server_close(1002),
    );
    check_with(
        &config,
        &frame_b0(0xc9, b""),
        &[err(WsError::Protocol("rsv1 set on a control frame"))],
        &server_close(1002),
    );
    // Invalid UTF-8 after inflating.
    let bad = {
        use flate2::{Compress, Compression, FlushCompress};
        let mut c = Compress::new(Compression::default(), false);
        let mut out = Vec::with_capacity(100);
        c.compress_vec(b"ab\xff", &mut out, FlushCompress::Sync)
            .unwrap();
        out.truncate(out.len() - 4);
        out
    };
    check_with(
        &config,
        &frame_b0(0xc1, &bad),
        &[err(WsError::InvalidUtf8)],
        &server_close(1007),
    );
    // Garbage that is not deflate data.
    let (ev, out) = run(&config, &[&frame_b0(0xc2, &[0xff; 10])], false);
    assert!(
        matches!(ev[..], [Event::Error(WsError::Protocol(_))]),
        "{ev:?}"
    );
    assert_eq!(out, server_close(1002));
}

#[test]
fn deflate_bomb() {
    let config = Config {
        max_message_size: 100_000,
        ..deflate_config(DeflateParams::default())
    };
    let zeros = vec![0u8; 1_000_000];
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let mut z = Vec::with_capacity(10_000);
    c.compress_vec(&zeros, &mut z, flate2::FlushCompress::Sync)
        .unwrap();
    z.truncate(z.len() - 4);
    assert!(z.len() < 2000);
    let (ev, out) = run(&config, &[&frame_b0(0xc2, &z)], false);
    assert_eq!(ev, [err(WsError::TooBig)]);
    assert_eq!(out, server_close(1009));
}

/// A client inflater for what the server sends.
fn client_inflate(d: &mut flate2::Decompress, payload: &[u8]) -> Vec<u8> {
    let mut data = payload.to_vec();
    data.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&data, &mut out, flate2::FlushDecompress::Sync)
        .unwrap();
    out
}

/// Splits server output into (b0, payload) frames.
fn parse_server(mut wire: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !wire.is_empty() {
        let b0 = wire[0];
        assert_eq!(wire[1] & 0x80, 0, "server frames are never masked");
        let (len, at) = match wire[1] {
            126 => (u16::from_be_bytes([wire[2], wire[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(wire[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        frames.push((b0, wire[at..at + len].to_vec()));
        wire = &wire[at + len..];
    }
    frames
}

#[test]
fn deflate_send_with_every_parameter() {
    let msg = "The quick brown fox jumps over the lazy dog. ".repeat(20);
    for bits in 8..=15 {
        for nct in [false, true] {
            let p = DeflateParams {
                server_no_context_takeover: nct,
                client_no_context_takeover: nct,
                server_max_window_bits: bits,
                client_max_window_bits: bits,
            };
            let mut c = Connection::new(deflate_config(p));
            c.send_text(&msg).unwrap();
            c.send_text(&msg).unwrap();
            c.send_binary(b"short").unwrap();
            let frames = parse_server(&drain(&mut c));
            assert_eq!(frames.len(), 3);
            let mut d = flate2::Decompress::new(false);
            for (b0, payload) in &frames[..2] {
                assert_eq!(*b0, 0xc1, "FIN + RSV1 + text");
                if nct {
                    d.reset(false);
                }
                assert_eq!(client_inflate(&mut d, payload), msg.as_bytes());
            }
            if nct {
                assert_eq!(frames[0].1, frames[1].1);
            } else {
                assert!(frames[1].1.len() < frames[0].1.len());
            }
            assert_eq!(frames[2], (0x82, b"short".to_vec()));
        }
    }
}

#[test]
fn deflate_round_trip_through_connection() {
    for nct in [false, true] {
        let p = DeflateParams {
            server_no_context_takeover: nct,
            client_no_context_takeover: nct,
            ..DeflateParams::default()
        };
        let mut server = Connection::new(deflate_config(p.clone()));
        let mut client = flate2::Compress::new(flate2::Compression::default(), false);
        let mut wire = Vec::new();
        let messages: Vec<Vec<u8>> = (0..5)
            .map(|i| format!("message {i} ").repeat(100 * (i + 1)).into_bytes())
            .collect();
        for m in &messages {
            if nct {
                client.reset();
            }
            let mut z = Vec::with_capacity(m.len() + 100);
            client
                .compress_vec(m, &mut z, flate2::FlushCompress::Sync)
                .unwrap();
            z.truncate(z.len() - 4);
            // Fragment it in three frames.
            let third = z.len() / 3;
            wire.extend(frame_b0(0x42, &z[..third]));
            wire.extend(frame_b0(0x00, &z[third..2 * third]));
            wire.extend(frame_b0(0x80, &z[2 * third..]));
        }
        for chunk in wire.chunks(7) {
            server.handle_bytes(chunk);
        }
        for m in &messages {
            assert_eq!(server.poll_event(), Event::Binary(Bytes::from(m.clone())));
        }
        assert_eq!(server.poll_event(), Event::NeedData);
    }
}
