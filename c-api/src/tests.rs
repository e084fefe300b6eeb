//! Unit tests of the FFI surface: NULL arguments, bad states, strerror, and
//! an in-memory exchange.

use std::ptr;

use super::*;

/// A valid WebSocket upgrade request (the RFC 6455 sample key).
const WS_UPGRADE: &[u8] =
    b"GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n";

/// After a protocol error answered with `status_line`: the answer is the
/// output, the handle wants to close and yields CLOSED.
fn expect_error_answer(conn: *mut cormorant_conn, status_line: &[u8]) {
    assert!(output(conn).starts_with(status_line));
    // SAFETY: live handle.
    assert!(unsafe { cormorant_conn_wants_close(conn) });
    assert_eq!(poll(conn).kind, cormorant_event_kind::Closed);
}

/// A handle with `config`, created at time 0.
fn conn_with(config: &cormorant_config) -> *mut cormorant_conn {
    let mut conn = ptr::null_mut();
    // SAFETY: valid config and out-param.
    let r = unsafe { cormorant_conn_new(config, 0, &mut conn) };
    assert_eq!(r, cormorant_result::Ok);
    conn
}

fn new_conn() -> *mut cormorant_conn {
    let mut conn = ptr::null_mut();
    // SAFETY: NULL config is allowed; `conn` is writable.
    let r = unsafe { cormorant_conn_new(ptr::null(), 0, &mut conn) };
    assert_eq!(r, cormorant_result::Ok);
    conn
}

fn output(conn: *mut cormorant_conn) -> Vec<u8> {
    let mut data = ptr::null();
    let mut len = 0;
    // SAFETY: live handle; out-params writable; the view is copied before
    // the next call.
    unsafe {
        assert_eq!(
            cormorant_conn_take_output(conn, &mut data, &mut len),
            cormorant_result::Ok
        );
        let v = slice(data, len).unwrap().to_vec();
        assert_eq!(cormorant_conn_consume(conn, len), cormorant_result::Ok);
        v
    }
}

fn poll(conn: *mut cormorant_conn) -> cormorant_event {
    let mut ev = cormorant_event::of(cormorant_event_kind::Closed);
    // SAFETY: live handle, writable event.
    let r = unsafe { cormorant_conn_poll(conn, &mut ev) };
    assert_eq!(r, cormorant_result::Ok);
    ev
}

#[test]
fn null_arguments_are_reported() {
    let n = ptr::null_mut();
    let mut ev = cormorant_event::of(cormorant_event_kind::Closed);
    let mut data = ptr::null();
    let mut len = 0;
    // SAFETY: every pointer is NULL or valid.
    unsafe {
        assert_eq!(
            cormorant_conn_new(ptr::null(), 0, ptr::null_mut()),
            cormorant_result::NullArgument
        );
        assert_eq!(
            cormorant_conn_feed(n, b"x".as_ptr(), 1),
            cormorant_result::NullArgument
        );
        assert_eq!(cormorant_conn_feed_eof(n), cormorant_result::NullArgument);
        assert_eq!(
            cormorant_conn_poll(n, &mut ev),
            cormorant_result::NullArgument
        );
        assert_eq!(
            cormorant_conn_respond(n, 200, ptr::null(), 0),
            cormorant_result::NullArgument
        );
        assert_eq!(cormorant_conn_end(n), cormorant_result::NullArgument);
        assert_eq!(cormorant_conn_next(n), cormorant_result::NullArgument);
        assert_eq!(
            cormorant_conn_ws_accept(n, ptr::null()),
            cormorant_result::NullArgument
        );
        assert_eq!(
            cormorant_conn_take_output(n, &mut data, &mut len),
            cormorant_result::NullArgument
        );
        assert_eq!(cormorant_conn_consume(n, 0), cormorant_result::NullArgument);
        assert_eq!(
            cormorant_conn_ws_ping(n, ptr::null(), 0),
            cormorant_result::NullArgument
        );
        assert_eq!(
            cormorant_conn_timeout(n, &mut 0),
            cormorant_result::NullArgument
        );
        assert_eq!(
            cormorant_conn_handle_timeout(n, 0),
            cormorant_result::NullArgument
        );
        assert_eq!(
            cormorant_conn_set_time(n, 0),
            cormorant_result::NullArgument
        );
        assert_eq!(cormorant_conn_shutdown(n), cormorant_result::NullArgument);
        assert!(cormorant_conn_wants_close(n));
        cormorant_conn_free(n);

        let conn = new_conn();
        assert_eq!(
            cormorant_conn_feed(conn, ptr::null(), 3),
            cormorant_result::NullArgument
        );
        assert_eq!(
            cormorant_conn_feed(conn, ptr::null(), 0),
            cormorant_result::Ok
        );
        assert_eq!(
            cormorant_conn_poll(conn, ptr::null_mut()),
            cormorant_result::NullArgument
        );
        assert_eq!(
            cormorant_conn_respond(conn, 200, ptr::null(), 2),
            cormorant_result::NullArgument
        );
        assert_eq!(
            cormorant_conn_take_output(conn, ptr::null_mut(), &mut len),
            cormorant_result::NullArgument
        );
        cormorant_conn_free(conn);
    }
}

#[test]
fn bad_states_are_reported() {
    let conn = new_conn();
    // SAFETY: live handle; valid pointers.
    unsafe {
        assert_eq!(
            cormorant_conn_respond(conn, 200, ptr::null(), 0),
            cormorant_result::InvalidState
        );
        assert_eq!(cormorant_conn_end(conn), cormorant_result::InvalidState);
        assert_eq!(
            cormorant_conn_ws_accept(conn, ptr::null()),
            cormorant_result::InvalidState
        );
        assert_eq!(
            cormorant_conn_ws_send(conn, true, b"x".as_ptr(), 1),
            cormorant_result::InvalidState
        );
        assert_eq!(
            cormorant_conn_consume(conn, 1),
            cormorant_result::InvalidArgument
        );
        let req = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        feed(conn, req);
        assert_eq!(poll(conn).kind, cormorant_event_kind::RequestHead);
        assert_eq!(cormorant_conn_next(conn), cormorant_result::InvalidState);
        assert_eq!(
            cormorant_conn_ws_accept(conn, ptr::null()),
            cormorant_result::BadHandshake
        );
        assert_eq!(
            cormorant_conn_respond(conn, 42, ptr::null(), 0),
            cormorant_result::InvalidArgument
        );
        cormorant_conn_free(conn);
    }
}

#[test]
fn strerror_is_static_and_distinct() {
    let all = [
        cormorant_result::Ok,
        cormorant_result::NullArgument,
        cormorant_result::InvalidState,
        cormorant_result::InvalidArgument,
        cormorant_result::LengthMismatch,
        cormorant_result::BadHandshake,
        cormorant_result::Panic,
    ];
    let mut seen = std::collections::HashSet::new();
    for r in all {
        // SAFETY: strerror returns a static NUL-terminated string.
        let s = unsafe { CStr::from_ptr(cormorant_strerror(r)) };
        assert!(!s.is_empty());
        assert!(seen.insert(s.to_owned()));
    }
}

#[test]
fn keep_alive_exchange_in_memory() {
    let conn = new_conn();
    let req = b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nhost: x\r\n\r\n";
    // SAFETY: live handle; valid pointers.
    unsafe {
        feed(conn, req);
        let ev = poll(conn);
        assert_eq!(ev.kind, cormorant_event_kind::RequestHead);
        assert_eq!(slice(ev.method.ptr, ev.method.len).unwrap(), b"POST");
        assert_eq!(slice(ev.target.ptr, ev.target.len).unwrap(), b"/echo");
        assert_eq!(ev.headers_len, 2);
        assert!(ev.has_body && ev.keep_alive && !ev.websocket_upgrade);
        let ev = poll(conn);
        assert_eq!(ev.kind, cormorant_event_kind::Body);
        assert_eq!(slice(ev.data.ptr, ev.data.len).unwrap(), b"abc");
        assert_eq!(poll(conn).kind, cormorant_event_kind::EndOfMessage);
        assert_eq!(poll(conn).kind, cormorant_event_kind::Paused);
        let h = [cormorant_header {
            name: str_view(b"content-length"),
            value: str_view(b"3"),
        }];
        assert_eq!(
            cormorant_conn_respond(conn, 200, h.as_ptr(), 1),
            cormorant_result::Ok
        );
        assert_eq!(
            cormorant_conn_send_body(conn, b"abc".as_ptr(), 3),
            cormorant_result::Ok
        );
        assert_eq!(cormorant_conn_end(conn), cormorant_result::Ok);
        let out = output(conn);
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"), "{out:?}");
        assert!(out.ends_with(b"\r\n\r\nabc"));
        assert!(!cormorant_conn_wants_close(conn));
        assert_eq!(cormorant_conn_next(conn), cormorant_result::Ok);
        let ev = poll(conn);
        assert_eq!(ev.kind, cormorant_event_kind::RequestHead);
        assert_eq!(slice(ev.target.ptr, ev.target.len).unwrap(), b"/b");
        cormorant_conn_free(conn);
    }
}

#[test]
fn malformed_request_queues_400() {
    let conn = new_conn();
    let req = b"GET / HTTP/1.1\r\nbad header\r\n\r\n";
    // SAFETY: live handle; valid pointers.
    unsafe {
        feed(conn, req);
        let ev = poll(conn);
        assert_eq!(ev.kind, cormorant_event_kind::ProtocolError);
        assert_eq!(ev.code, 400);
        expect_error_answer(conn, b"HTTP/1.1 400 ");
        cormorant_conn_free(conn);
    }
}

#[test]
fn websocket_upgrade_and_echo() {
    let conn = new_conn();
    let req = WS_UPGRADE;
    // A masked "Hi" text frame right behind the head (must survive the switch).
    let frame = [0x81, 0x82, 1, 2, 3, 4, b'H' ^ 1, b'i' ^ 2];
    let mut all = req.to_vec();
    all.extend_from_slice(&frame);
    // SAFETY: live handle; valid pointers.
    unsafe {
        feed(conn, &all);
        let ev = poll(conn);
        assert!(ev.websocket_upgrade);
        assert_eq!(
            cormorant_conn_ws_accept(conn, c"chat".as_ptr()),
            cormorant_result::Ok
        );
        let ev = poll(conn);
        assert_eq!(ev.kind, cormorant_event_kind::WsMessage);
        assert!(ev.is_text);
        assert_eq!(slice(ev.data.ptr, ev.data.len).unwrap(), b"Hi");
        assert_eq!(
            cormorant_conn_ws_send(conn, true, ev.data.ptr, ev.data.len),
            cormorant_result::Ok
        );
        assert_eq!(
            cormorant_conn_ws_send(conn, true, [0xff].as_ptr(), 1),
            cormorant_result::InvalidArgument
        );
        let out = output(conn);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{text}"
        );
        assert!(
            text.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{text}"
        );
        assert!(text.contains("sec-websocket-protocol: chat\r\n"));
        assert!(out.ends_with(&[0x81, 2, b'H', b'i']));
        assert_eq!(
            cormorant_conn_ws_close(conn, 1000, ptr::null(), 0),
            cormorant_result::Ok
        );
        assert_eq!(output(conn), [0x88, 2, 0x03, 0xe8]);
        assert_eq!(poll(conn).kind, cormorant_event_kind::NeedData);
        let close = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];
        feed(conn, &close);
        let ev = poll(conn);
        assert_eq!(ev.kind, cormorant_event_kind::WsClose);
        assert_eq!(ev.code, 1000);
        assert!(cormorant_conn_wants_close(conn));
        cormorant_conn_free(conn);
    }
}

fn header(name: &'static [u8], value: &'static [u8]) -> cormorant_header {
    cormorant_header {
        name: str_view(name),
        value: str_view(value),
    }
}

#[test]
fn extended_connect_tunnel_runs_the_websocket_over_the_callers_stream() {
    let fields = [
        header(b"sec-websocket-version", b"13"),
        header(b"sec-websocket-protocol", b"chat, v2"),
    ];
    let mut conn = ptr::null_mut();
    let mut status = 0u16;
    // SAFETY: valid pointers throughout; the handle is freed at the end.
    unsafe {
        assert_eq!(
            cormorant_conn_new_tunnel(
                ptr::null(),
                0,
                c"websocket".as_ptr(),
                fields.as_ptr(),
                fields.len(),
                c"v2".as_ptr(),
                &mut status,
                &mut conn,
            ),
            cormorant_result::Ok
        );
        assert_eq!(status, 200);
        let mut views = ptr::null();
        let mut n = 0;
        assert_eq!(
            cormorant_conn_tunnel_answer(conn, &mut views, &mut n),
            cormorant_result::Ok
        );
        let answer = std::slice::from_raw_parts(views, n);
        assert_eq!(n, 1);
        assert_eq!(
            slice(answer[0].name.ptr, answer[0].name.len).unwrap(),
            b"sec-websocket-protocol"
        );
        assert_eq!(
            slice(answer[0].value.ptr, answer[0].value.len).unwrap(),
            b"v2"
        );
        // Nothing of HTTP/1.1 goes out: the first bytes are frames.
        let frame = [0x81, 0x82, 1, 2, 3, 4, b'H' ^ 1, b'i' ^ 2];
        feed(conn, &frame);
        let ev = poll(conn);
        assert_eq!(ev.kind, cormorant_event_kind::WsMessage);
        assert_eq!(slice(ev.data.ptr, ev.data.len).unwrap(), b"Hi");
        assert_eq!(
            cormorant_conn_ws_send(conn, true, ev.data.ptr, ev.data.len),
            cormorant_result::Ok
        );
        assert_eq!(output(conn), [0x81, 2, b'H', b'i']);
        // HTTP/1.1 responses are not for a tunnel.
        assert_eq!(
            cormorant_conn_respond(conn, 200, ptr::null(), 0),
            cormorant_result::InvalidState
        );
        cormorant_conn_free(conn);
    }
}

#[test]
fn a_bad_extended_connect_makes_no_handle_and_says_how_to_answer() {
    let v13 = [header(b"sec-websocket-version", b"13")];
    let v8 = [header(b"sec-websocket-version", b"8")];
    for (protocol, fields, expected) in [
        (c"connect-udp", &v13[..], 501),
        (c"websocket", &v8[..], 426),
        (c"websocket", &[][..], 426),
    ] {
        let mut conn = ptr::null_mut();
        let mut status = 0u16;
        // SAFETY: valid pointers; no handle is made.
        let r = unsafe {
            cormorant_conn_new_tunnel(
                ptr::null(),
                0,
                protocol.as_ptr(),
                fields.as_ptr(),
                fields.len(),
                ptr::null(),
                &mut status,
                &mut conn,
            )
        };
        assert_eq!(r, cormorant_result::BadHandshake);
        assert_eq!(status, expected);
        assert!(conn.is_null());
    }
}

#[test]
fn header_is_up_to_date() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/cormorant.h"));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/cormorant.h");
    if std::env::var_os("CORMORANT_BLESS").is_some() {
        std::fs::write(path, generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/cormorant.h is stale: rerun with CORMORANT_BLESS=1"
    );
}

#[test]
fn denied_upgrade_keeps_the_connection() {
    let conn = new_conn();
    let req = b"GET /ws HTTP/1.1\r\nhost: t\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n";
    // SAFETY: live handle; valid pointers.
    unsafe {
        feed(conn, req);
        assert!(poll(conn).websocket_upgrade);
        assert_eq!(
            cormorant_conn_ws_accept(conn, ptr::null()),
            cormorant_result::BadHandshake
        );
        assert_eq!(cormorant_conn_ws_deny(conn, 400), cormorant_result::Ok);
        assert!(output(conn).starts_with(b"HTTP/1.1 400 "));
        // The response ended the exchange: core skips END_OF_MESSAGE.
        assert_eq!(poll(conn).kind, cormorant_event_kind::Paused);
        assert!(!cormorant_conn_wants_close(conn));
        assert_eq!(cormorant_conn_next(conn), cormorant_result::Ok);
        let req = b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n";
        feed(conn, req);
        assert_eq!(poll(conn).kind, cormorant_event_kind::RequestHead);
        cormorant_conn_free(conn);
    }
}

const MS: u64 = 1_000_000;

/// Sets the handle's clock to `ms` milliseconds.
fn set_time(conn: *mut cormorant_conn, ms: u64) {
    // SAFETY: live handle.
    let r = unsafe { cormorant_conn_set_time(conn, ms * MS) };
    assert_eq!(r, cormorant_result::Ok);
}

/// Fires what is due at `ms` milliseconds.
fn fire(conn: *mut cormorant_conn, ms: u64) {
    // SAFETY: live handle.
    let r = unsafe { cormorant_conn_handle_timeout(conn, ms * MS) };
    assert_eq!(r, cormorant_result::Ok);
}

/// The earliest deadline, in milliseconds, after setting the time to `now`
/// milliseconds.
fn deadline(conn: *mut cormorant_conn, now: u64) -> u64 {
    set_time(conn, now);
    let mut d = 0;
    // SAFETY: live handle, writable out-param.
    let r = unsafe { cormorant_conn_timeout(conn, &mut d) };
    assert_eq!(r, cormorant_result::Ok);
    if d == u64::MAX { d } else { d / MS }
}

fn feed(conn: *mut cormorant_conn, bytes: &[u8]) {
    // SAFETY: live handle; `bytes` is readable.
    let r = unsafe { cormorant_conn_feed(conn, bytes.as_ptr(), bytes.len()) };
    assert_eq!(r, cormorant_result::Ok);
}

#[test]
fn keep_alive_timer_closes_an_idle_connection() {
    let mut conn = ptr::null_mut();
    // SAFETY: live handle; valid pointers.
    unsafe {
        assert_eq!(
            cormorant_conn_new(ptr::null(), 1_000 * MS, &mut conn),
            cormorant_result::Ok
        );
        assert_eq!(deadline(conn, 1_000), 6_000, "default keep-alive 5 s");
        assert_eq!(deadline(conn, 3_000), 6_000, "the timer keeps its start");
        fire(conn, 5_999);
        assert!(!cormorant_conn_wants_close(conn), "not yet due");

        // A request stops the timer; the next idle wait starts a new one.
        feed(conn, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!(poll(conn).kind, cormorant_event_kind::RequestHead);
        assert_eq!(poll(conn).kind, cormorant_event_kind::EndOfMessage);
        assert_eq!(deadline(conn, 7_000), u64::MAX, "no timer mid-request");
        assert_eq!(
            cormorant_conn_respond(conn, 204, ptr::null(), 0),
            cormorant_result::Ok
        );
        assert_eq!(cormorant_conn_end(conn), cormorant_result::Ok);
        set_time(conn, 8_000);
        assert_eq!(cormorant_conn_next(conn), cormorant_result::Ok);
        let _ = output(conn);
        assert_eq!(deadline(conn, 9_000), 13_000);
        fire(conn, 13_000);
        assert!(cormorant_conn_wants_close(conn));
        assert!(output(conn).is_empty(), "an idle close sends nothing");
        assert_eq!(poll(conn).kind, cormorant_event_kind::Closed);
        assert_eq!(deadline(conn, 14_000), u64::MAX);
        cormorant_conn_free(conn);
    }
}

#[test]
fn head_timer_answers_408() {
    let mut config = cormorant_config_default();
    config.request_head_timeout_ms = 250;
    config.keep_alive_timeout_ms = 0;
    let conn = conn_with(&config);
    // SAFETY: live handle; valid pointers.
    unsafe {
        assert_eq!(deadline(conn, 0), u64::MAX, "keep-alive timer disabled");
        set_time(conn, 100);
        feed(conn, b"GET /slow HTTP/1.1\r\nhost:");
        assert_eq!(poll(conn).kind, cormorant_event_kind::NeedData);
        assert_eq!(deadline(conn, 100), 350);
        fire(conn, 400);
        let ev = poll(conn);
        assert_eq!(ev.kind, cormorant_event_kind::ProtocolError);
        assert_eq!(ev.code, 408);
        expect_error_answer(conn, b"HTTP/1.1 408 Request Timeout\r\n");
        cormorant_conn_free(conn);
    }
}

#[test]
fn an_unanswered_websocket_ping_closes_with_1011() {
    let mut config = cormorant_config_default();
    config.ws_ping_interval_ms = 1_000;
    config.ws_ping_timeout_ms = 500;
    let conn = conn_with(&config);
    // SAFETY: live handle; valid pointers.
    unsafe {
        feed(conn, WS_UPGRADE);
        assert!(poll(conn).websocket_upgrade);
        assert_eq!(
            cormorant_conn_ws_accept(conn, ptr::null()),
            cormorant_result::Ok
        );
        let _ = output(conn);
        assert_eq!(deadline(conn, 10), 1_000);
        fire(conn, 1_000);
        assert_eq!(output(conn), b"\x89\x00", "the ping");
        assert_eq!(deadline(conn, 1_200), 1_500);
        fire(conn, 1_500);
        let ev = poll(conn);
        assert_eq!(
            (ev.kind, ev.code),
            (cormorant_event_kind::ProtocolError, 1011)
        );
        assert_eq!(output(conn), b"\x88\x02\x03\xf3", "close 1011");
        assert!(cormorant_conn_wants_close(conn));
        cormorant_conn_free(conn);
    }
}

#[test]
fn websocket_pings_and_pongs_are_events() {
    let conn = new_conn();
    feed(conn, WS_UPGRADE);
    // SAFETY: live handle; valid pointers.
    unsafe {
        assert!(poll(conn).websocket_upgrade);
        assert_eq!(
            cormorant_conn_ws_accept(conn, ptr::null()),
            cormorant_result::Ok
        );
        let _ = output(conn);
        assert_eq!(deadline(conn, 0), 20_000, "only the ping timer runs");
        // A masked ping "p" and a masked pong "q" from the client.
        feed(
            conn,
            &[0x89, 0x81, 0, 0, 0, 0, b'p', 0x8a, 0x81, 0, 0, 0, 0, b'q'],
        );
        let ev = poll(conn);
        assert_eq!(ev.kind, cormorant_event_kind::WsPing);
        assert_eq!(slice(ev.data.ptr, ev.data.len).unwrap(), b"p");
        let ev = poll(conn);
        assert_eq!(ev.kind, cormorant_event_kind::WsPong);
        assert_eq!(slice(ev.data.ptr, ev.data.len).unwrap(), b"q");
        assert_eq!(poll(conn).kind, cormorant_event_kind::NeedData);
        assert_eq!(output(conn), [0x8a, 1, b'p'], "the pong was queued");
        assert_eq!(
            cormorant_conn_ws_ping(conn, b"hb".as_ptr(), 2),
            cormorant_result::Ok
        );
        assert_eq!(output(conn), [0x89, 2, b'h', b'b']);
        assert_eq!(
            cormorant_conn_ws_ping(conn, [0u8; 126].as_ptr(), 126),
            cormorant_result::InvalidArgument
        );
        cormorant_conn_free(conn);
    }
}

#[test]
fn server_start_reports_bad_input() {
    unsafe extern "C" fn ignore(_: *mut std::ffi::c_void, req: *mut cormorant_request) {
        // SAFETY: the handle given to the callback is live and ours.
        unsafe { cormorant_request_free(req) };
    }
    let callbacks = cormorant_server_callbacks {
        on_request: Some(ignore),
        on_websocket: None,
        on_log: None,
        user_data: ptr::null_mut(),
        on_io_thread: false,
    };
    let mut server = ptr::null_mut();
    let mut error = [0 as c_char; 128];
    // SAFETY: every pointer is NULL or valid for the call.
    unsafe {
        assert_eq!(
            cormorant_server_start(ptr::null(), ptr::null(), &mut server, ptr::null_mut(), 0),
            cormorant_result::NullArgument
        );
        let no_request = cormorant_server_callbacks {
            on_request: None,
            ..callbacks
        };
        assert_eq!(
            cormorant_server_start(ptr::null(), &no_request, &mut server, ptr::null_mut(), 0),
            cormorant_result::NullArgument
        );
        let r = cormorant_server_start(
            c"{\"port\": \"eighty\"}".as_ptr(),
            &callbacks,
            &mut server,
            error.as_mut_ptr(),
            error.len(),
        );
        assert_eq!(r, cormorant_result::StartFailed);
        let msg = CStr::from_ptr(error.as_ptr()).to_str().unwrap();
        assert!(msg.starts_with("invalid configuration: "), "{msg}");
        assert!(server.is_null());

        let r = cormorant_server_start(
            c"{\"workers\": 4}".as_ptr(),
            &callbacks,
            &mut server,
            error.as_mut_ptr(),
            error.len(),
        );
        assert_eq!(r, cormorant_result::StartFailed);
        let msg = CStr::from_ptr(error.as_ptr()).to_str().unwrap();
        assert_eq!(
            msg,
            "invalid configuration: \"workers\" has no effect in an embedded server"
        );

        // Truncated into a small buffer, still NUL-terminated.
        let mut small = [1 as c_char; 8];
        let r = cormorant_server_start(
            c"{\"no_such_key\": 1}".as_ptr(),
            &callbacks,
            &mut server,
            small.as_mut_ptr(),
            small.len(),
        );
        assert_eq!(r, cormorant_result::StartFailed);
        assert_eq!(CStr::from_ptr(small.as_ptr()).to_bytes().len(), 7);

        // A real start on port 0, then a second server on the same port fails.
        let r = cormorant_server_start(
            c"{\"host\": \"127.0.0.1\", \"port\": 0}".as_ptr(),
            &callbacks,
            &mut server,
            ptr::null_mut(),
            0,
        );
        assert_eq!(r, cormorant_result::Ok);
        let port = cormorant_server_port(server);
        assert_ne!(port, 0);
        let taken =
            std::ffi::CString::new(format!("{{\"host\": \"127.0.0.1\", \"port\": {port}}}"))
                .unwrap();
        let mut other = ptr::null_mut();
        let r = cormorant_server_start(
            taken.as_ptr(),
            &callbacks,
            &mut other,
            error.as_mut_ptr(),
            error.len(),
        );
        assert_eq!(r, cormorant_result::StartFailed);
        assert!(other.is_null());
        cormorant_server_stop(server, 0);
        assert_eq!(cormorant_server_port(ptr::null()), 0);
        cormorant_server_stop(ptr::null_mut(), 0);

        let mut info = std::mem::zeroed::<cormorant_request_info>();
        assert_eq!(
            cormorant_request_get_info(ptr::null_mut(), &mut info),
            cormorant_result::NullArgument
        );
        assert_eq!(
            cormorant_request_write(ptr::null_mut(), ptr::null(), 0, false),
            cormorant_result::NullArgument
        );
        assert_eq!(
            cormorant_websocket_accept(ptr::null_mut(), ptr::null()),
            cormorant_result::NullArgument
        );
        cormorant_request_free(ptr::null_mut());
        cormorant_websocket_free(ptr::null_mut());
    }
}
