//! The Rust embedding API behind the server layer (`cormorant::embed`),
//! over real sockets: inline handlers must not block, thread handlers get
//! backpressure. (Tested here, where the native crate is built without
//! Python, so the test binary links without libpython.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use cormorant_server::embed::{Dispatch, Handler, Request, Server, StreamError};

/// Records what a handler saw, answers from a thread when told to.
#[derive(Default)]
struct Probe {
    read_on_io_thread: Mutex<Vec<Result<usize, StreamError>>>,
}

impl Handler for Probe {
    fn request(&self, mut request: Request) {
        let path = request.scope().path.clone();
        if path == "/inline-read" {
            let mut buf = [0u8; 64];
            self.read_on_io_thread
                .lock()
                .unwrap()
                .push(request.read(&mut buf));
            // Blocking work goes to a thread of ours.
            std::thread::spawn(move || {
                let mut body = Vec::new();
                let mut buf = [0u8; 4];
                loop {
                    let n = request.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&buf[..n]);
                }
                let len = Bytes::from(body.len().to_string());
                request
                    .respond(200, vec![(Bytes::from_static(b"content-length"), len)])
                    .unwrap();
                request.write(Bytes::from(body), false).unwrap();
            });
        } else if path == "/big" {
            std::thread::spawn(move || {
                request.respond(200, Vec::new()).unwrap();
                for _ in 0..64 {
                    request
                        .write(Bytes::from(vec![b'x'; 64 * 1024]), true)
                        .unwrap();
                }
                request.write(Bytes::new(), false).unwrap();
            });
        }
    }
}

fn start(dispatch: Dispatch) -> (Server, Arc<Probe>, u16) {
    let probe = Arc::new(Probe::default());
    let server = Server::start(
        r#"{"host": "127.0.0.1", "port": 0}"#,
        probe.clone(),
        dispatch,
    )
    .unwrap();
    let port = server.port().unwrap();
    (server, probe, port)
}

#[test]
fn inline_handler_gets_would_block_instead_of_blocking() {
    let (server, probe, port) = start(Dispatch::IoThread);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /inline-read HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(b"0123456789").unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !response.ends_with(b"0123456789") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {response:?}");
        response.extend_from_slice(&buf[..n]);
    }
    assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert_eq!(
        *probe.read_on_io_thread.lock().unwrap(),
        vec![Err(StreamError::WouldBlock)]
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn thread_handler_streams_under_backpressure() {
    let (server, _, port) = start(Dispatch::Thread);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .unwrap();
    // A slow reader: the writer thread has to wait for room.
    std::thread::sleep(Duration::from_millis(300));
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let body_start = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let xs = all[body_start..].iter().filter(|&&b| b == b'x').count();
    assert_eq!(xs, 64 * 64 * 1024, "the whole chunked body arrived");
    assert!(all.ends_with(b"0\r\n\r\n"));
    server.stop(Duration::from_secs(1));
}
