//! The third frontend: the native server (core for HTTP/1.1 and
//! WebSocket, tokio for I/O), without Python, over real sockets. Its
//! handler answers exactly as the replay driver does, so the bytes it
//! writes for a corpus case must equal the C API's.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cormorant_server::embed::{Dispatch, Handler, Message, Request, Server, WebSocket};
use cormorant_wasm_host::replay::End;

/// Answers like `cormorant_wasm_host::replay`: `200` with
/// `"<method> <body length>\n"`, WebSocket upgrades accepted and every
/// message echoed.
struct Answer;

impl Handler for Answer {
    fn request(&self, mut request: Request) {
        let mut len = 0;
        let mut buf = [0u8; 16 * 1024];
        loop {
            match request.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(_) => return,
            }
        }
        let body = format!("{} {len}\n", request.scope().method);
        let headers = vec![
            (
                Bytes::from_static(b"content-type"),
                Bytes::from_static(b"text/plain"),
            ),
            (
                Bytes::from_static(b"content-length"),
                Bytes::from(body.len().to_string()),
            ),
        ];
        if request.respond(200, headers).is_ok() {
            let _ = request.write(Bytes::from(body), false);
        }
    }

    fn websocket(&self, mut ws: WebSocket) {
        // Echoing blocks: a thread per connection, not the dispatcher's.
        std::thread::spawn(move || {
            if ws.accept(None).is_err() {
                return;
            }
            loop {
                let sent = match ws.receive() {
                    Ok(Message::Text(t)) => ws.send_text(t),
                    Ok(Message::Binary(b)) => ws.send_binary(b),
                    _ => return,
                };
                if sent.is_err() {
                    return;
                }
            }
        });
    }
}

/// A native server with the corpus's settings: core's default limits, no
/// `Date` (the C API sets none), no compression, and short timeouts so the
/// `timeout_*` cases take a fraction of a second of real time.
pub(crate) fn start() -> Server {
    let config = r#"{
        "host": "127.0.0.1", "port": 0, "date_header": false,
        "ws_per_message_deflate": false,
        "timeout_keep_alive": 0.4, "timeout_request_head": 0.4,
        "timeout_request_body": 0.4,
        "ws_ping_interval": 0.3, "ws_ping_timeout": 0.3
    }"#;
    Server::start(config, Arc::new(Answer), Dispatch::Thread).expect("native server")
}

/// Reads until the server closes, or, with `quiet`, until `want` bytes are
/// there or `quiet` passes with nothing new; a reset after the response
/// counts as the end.
fn read_until(s: &mut TcpStream, out: &mut Vec<u8>, quiet: Option<Duration>, want: usize) {
    let started = Instant::now();
    s.set_read_timeout(Some(quiet.unwrap_or(Duration::from_secs(10))))
        .unwrap();
    let mut buf = [0u8; 64 * 1024];
    while started.elapsed() < Duration::from_secs(20) && !(quiet.is_some() && out.len() >= want) {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                assert!(quiet.is_some(), "the server neither answered nor closed");
                return;
            }
            Err(_) => return,
        }
    }
}

/// Where the last client close frame of a WebSocket case starts, if the
/// stream ends with one: the echoes of the messages before it are awaited
/// first, as a client reading its socket would, so the server's own
/// close reply cannot overtake them.
fn final_close(input: &[u8]) -> Option<usize> {
    let head_end = input.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let mut at = head_end;
    let mut last = None;
    while at + 2 <= input.len() {
        let (b0, b1) = (input[at], input[at + 1]);
        let (mut len, mut hdr) = (usize::from(b1 & 0x7f), 2);
        if len == 126 {
            len = usize::from(u16::from_be_bytes(
                input.get(at + 2..at + 4)?.try_into().ok()?,
            ));
            hdr = 4;
        } else if len == 127 {
            let n = u64::from_be_bytes(input.get(at + 2..at + 10)?.try_into().ok()?);
            len = usize::try_from(n).ok()?;
            hdr = 10;
        }
        if b1 & 0x80 != 0 {
            hdr += 4;
        }
        if b0 & 0x0f == 0x8 {
            last = Some(at);
        }
        at = at.checked_add(hdr)?.checked_add(len)?;
    }
    (at == input.len()).then_some(last).flatten()
}

/// Sends a corpus case to the server and returns every byte it wrote.
/// `expected` is what the C API wrote: a client that sees that much
/// waits no longer before it goes on.
///
/// The client reads the answers before it closes its side, as an HTTP
/// client does: the native server, like hyper and uvicorn, takes a
/// half-close in the middle of a request as the client leaving (its
/// response would have nowhere to go), where the sans-IO C API leaves that
/// policy to its caller.
pub(crate) fn replay(port: u16, input: &[u8], end: End, expected: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut out = Vec::new();
    let quiet = Some(Duration::from_millis(200));
    let split = final_close(input).unwrap_or(input.len());
    // The server may close before it has read everything (an error answer):
    // what it wrote is still there to read.
    let _ = s.write_all(&input[..split]);
    if split < input.len() {
        // Up to the server's close reply: the echoes first.
        read_until(&mut s, &mut out, quiet, expected.len().saturating_sub(4));
        let _ = s.write_all(&input[split..]);
    }
    if end == End::Eof {
        read_until(&mut s, &mut out, quiet, expected.len());
        let _ = s.shutdown(Shutdown::Write);
    }
    read_until(&mut s, &mut out, None, 0);
    out
}
