//! Builds the C and C++ examples against the staticlib and runs them: the
//! header compiles as C11 and C++17 with warnings as errors, the C++
//! in-memory exchange passes, and the epoll server (under ASan and UBSan)
//! answers keep-alive HTTP, a malformed request and a WebSocket echo over
//! real sockets, then stops cleanly with no sanitizer report.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const CRATE: &str = env!("CARGO_MANIFEST_DIR");

/// Builds the staticlib (`cargo test` only builds the rlib) and returns
/// its path: `<target>/<profile>/libcormorant.a`, beside this test binary's
/// `deps/` folder. Built once per test run.
fn staticlib() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // <target>/<profile>/deps/examples-<hash>
        let profile = exe.parent().and_then(Path::parent).unwrap();
        let target = profile.parent().unwrap();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "cormorant-capi", "--lib"])
            .arg("--target-dir")
            .arg(target)
            .current_dir(CRATE);
        if profile.file_name() == Some("release".as_ref()) {
            cmd.arg("--release");
        }
        let status = cmd.status().unwrap();
        assert!(status.success(), "cargo build of the staticlib failed");
        let lib = profile.join("libcormorant.a");
        assert!(lib.exists(), "{} not built", lib.display());
        lib
    })
    .clone()
}

fn out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("capi-examples")
}

/// Compiles and links `src` with `compiler` and `flags`; returns the binary.
fn build(compiler: &str, src: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let dir = out_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join(name);
    let out = Command::new(compiler)
        .args(flags)
        .args(["-Wall", "-Wextra", "-Werror", "-g"])
        .arg(format!("-I{CRATE}/include"))
        .arg(src)
        .arg(staticlib())
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&bin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{compiler} {} failed:\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

#[test]
fn header_compiles_as_c11() {
    let src = out_dir().join("include_test.c");
    std::fs::create_dir_all(out_dir()).unwrap();
    std::fs::write(
        &src,
        "#include \"cormorant.h\"\nint main(void) { return cormorant_config_default().max_headers == 0; }\n",
    )
    .unwrap();
    let bin = build("cc", &src, "include_test", &["-std=c11", "-pedantic"]);
    assert!(Command::new(bin).status().unwrap().success());
}

#[test]
fn cpp_example_runs() {
    let src = Path::new(CRATE).join("examples/cpp_hello.cpp");
    let bin = build(
        "c++",
        &src,
        "cpp_hello",
        &["-std=c++17", "-pedantic", SANITIZE[0], SANITIZE[1]],
    );
    let out = Command::new(bin)
        .env("ASAN_OPTIONS", "detect_leaks=1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"ok\n");
}

/// Kills the server if the test fails before stopping it.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs an example server on port 0 under the sanitizers; returns it and
/// the port it printed.
fn start(bin: &Path) -> (Server, u16) {
    start_with(bin, &["0".as_ref()])
}

/// [`start`] with these arguments (port included).
fn start_with(bin: &Path, args: &[&std::ffi::OsStr]) -> (Server, u16) {
    let mut child = Command::new(bin)
        .args(args)
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        .env("UBSAN_OPTIONS", "print_stacktrace=1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let port: u16 = port.trim().parse().expect("server printed its port");
    (Server(Some(child)), port)
}

/// Stops a server with SIGTERM: it must exit cleanly with no sanitizer
/// report (leaks included).
fn stop_clean(server: Server) {
    terminate(&server);
    wait_clean(server);
}

/// Sends SIGTERM to a running example server.
fn terminate(server: &Server) {
    let pid = server.0.as_ref().unwrap().id();
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

/// Waits for a terminated server: a clean exit, no sanitizer report.
fn wait_clean(mut server: Server) {
    let mut child = server.0.take().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "server exited with {status}:\n{stderr}");
    for bad in ["AddressSanitizer", "LeakSanitizer", "runtime error"] {
        assert!(!stderr.contains(bad), "sanitizer report:\n{stderr}");
    }
}

/// The sanitizer flags the example servers are built with.
const SANITIZE: [&str; 2] = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"];

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads one response with a `content-length` body; returns all its bytes.
fn read_response(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "eof in head: {buf:?}");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf.clone()).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0; len];
    s.read_exact(&mut body).unwrap();
    buf.extend(body);
    buf
}

fn expect_eof(s: &mut TcpStream) {
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "unexpected bytes: {rest:?}");
}

/// Sends a request with a malformed header line; returns everything the
/// server wrote before it closed.
fn send_malformed(port: u16) -> Vec<u8> {
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.1\r\nbad header line\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    all
}

/// Connects and sends a WebSocket upgrade request for `/ws`; returns the
/// socket and the response head.
fn open_websocket(port: u16) -> (TcpStream, String) {
    let mut s = connect(port);
    s.write_all(
        b"GET /ws HTTP/1.1\r\nhost: t\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
    )
    .unwrap();
    let head = String::from_utf8(read_response(&mut s)).unwrap();
    (s, head)
}

/// A masked client frame (RFC 6455 §5.2), payload under 126 bytes.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | opcode, 0x80 | u8::try_from(payload.len()).unwrap()];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[test]
fn epoll_server_over_sockets() {
    let src = Path::new(CRATE).join("examples/epoll_server.c");
    let lines = std::fs::read_to_string(&src).unwrap().lines().count();
    assert!(lines < 100, "epoll_server.c has {lines} lines");
    let bin = build(
        "cc",
        &src,
        "epoll_server",
        &["-std=c11", SANITIZE[0], SANITIZE[1]],
    );
    let (server, port) = start(&bin);

    // Keep-alive: three exchanges on one connection.
    let mut s = connect(port);
    s.write_all(b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_response(&mut s),
        b"HTTP/1.1 200 OK\r\nserver: cormorant\r\ncontent-length: 5\r\n\r\nhello"
    );
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 11\r\n\r\nhello world")
        .unwrap();
    assert_eq!(
        read_response(&mut s),
        b"HTTP/1.1 200 OK\r\nserver: cormorant\r\ncontent-length: 11\r\n\r\nhello world"
    );
    // Chunked request body, pipelined behind another request.
    s.write_all(
        b"POST /echo HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n\
GET /hello HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        read_response(&mut s),
        b"HTTP/1.1 200 OK\r\nserver: cormorant\r\ncontent-length: 5\r\n\r\nabcde"
    );
    let last = read_response(&mut s);
    assert!(last.starts_with(b"HTTP/1.1 200 OK\r\n"), "{last:?}");
    assert!(last.ends_with(b"\r\n\r\nhello"));
    expect_eof(&mut s);

    // A malformed request: 400, then the server closes.
    let all = send_malformed(port);
    assert!(all.starts_with(b"HTTP/1.1 400 Bad Request\r\n"), "{all:?}");

    // WebSocket: handshake, masked text echo, close handshake.
    let (mut s, head) = open_websocket(port);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    s.write_all(&client_frame(0x1, b"hello ws")).unwrap();
    let mut frame = [0u8; 10];
    s.read_exact(&mut frame).unwrap();
    assert_eq!(&frame, b"\x81\x08hello ws");
    s.write_all(&client_frame(0x8, &1000u16.to_be_bytes()))
        .unwrap();
    let mut close = [0u8; 4];
    s.read_exact(&mut close).unwrap();
    assert_eq!(close, [0x88, 0x02, 0x03, 0xe8]);
    expect_eof(&mut s);

    // A bad upgrade is denied, the connection stays usable.
    let mut s = connect(port);
    s.write_all(
        b"GET /ws HTTP/1.1\r\nhost: t\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n",
    )
    .unwrap();
    let denied = read_response(&mut s);
    assert!(denied.starts_with(b"HTTP/1.1 400 "), "{denied:?}");
    s.write_all(b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut s).ends_with(b"hello"));
    drop(s);

    // The library's timers, run by the example's loop: an idle connection
    // is closed after the default keep-alive (5 s), without a response.
    let mut idle = connect(port);
    let started = std::time::Instant::now();
    expect_eof(&mut idle);
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(4_500)..Duration::from_secs(8)).contains(&waited),
        "closed after {waited:?}"
    );

    short_load(port);
    stop_clean(server);
}

/// Reads a chunked HTTP/1.1 response; returns its head and decoded body.
fn read_chunked(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut r = BufReader::new(s);
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert!(r.read_line(&mut head).unwrap() > 0, "eof in head");
    }
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size).unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        let mut chunk = vec![0; n + 2];
        r.read_exact(&mut chunk).unwrap();
        if n == 0 {
            return (head, body);
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn callback_server_over_sockets() {
    callback_server(false);
}

#[test]
fn callback_server_with_callbacks_on_the_io_thread() {
    callback_server(true);
}

/// The callback server's routes over HTTP/1.1, h2c and WebSocket, a short
/// load and a graceful stop; `inline`: callbacks on the I/O thread (`-i`).
fn callback_server(inline: bool) {
    let src = Path::new(CRATE).join("examples/callback_server.c");
    let name = if inline {
        "callback_server_inline"
    } else {
        "callback_server"
    };
    let bin = build(
        "cc",
        &src,
        name,
        &["-std=c11", "-pthread", SANITIZE[0], SANITIZE[1]],
    );
    let args: &[&std::ffi::OsStr] = if inline {
        &["-i".as_ref(), "0".as_ref()]
    } else {
        &["0".as_ref()]
    };
    let (server, port) = start_with(&bin, args);

    // Keep-alive HTTP/1.1: the callback answers /hello, a thread
    // of the example reads and echoes a body in several pieces.
    let mut s = connect(port);
    for _ in 0..3 {
        s.write_all(b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n")
            .unwrap();
        let r = read_response(&mut s);
        assert!(r.starts_with(b"HTTP/1.1 200 OK\r\n"), "{r:?}");
        assert!(r.ends_with(b"\r\n\r\nhello"));
    }
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    s.write_all(
        format!(
            "POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    for piece in body.chunks(50_000) {
        s.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = read_response(&mut s);
    assert!(r.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(r.ends_with(&body), "echoed body differs");
    s.write_all(b"GET /stream HTTP/1.1\r\nhost: t\r\n\r\n")
        .unwrap();
    let (head, streamed) = read_chunked(&mut s);
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert_eq!(streamed, b"chunk\nchunk\nchunk\n");
    s.write_all(b"GET /nope HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut s).starts_with(b"HTTP/1.1 404 "));
    expect_eof(&mut s);

    // Malformed input never reaches the callbacks: 400 and close.
    let all = send_malformed(port);
    assert!(all.starts_with(b"HTTP/1.1 400 "), "{all:?}");

    // WebSocket echo on a thread of the example.
    let (mut s, head) = open_websocket(port);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    for (op, payload) in [(0x1u8, &b"hello ws"[..]), (0x2, &[0u8, 1, 2, 255][..])] {
        s.write_all(&client_frame(op, payload)).unwrap();
        let mut frame = vec![0u8; 2 + payload.len()];
        s.read_exact(&mut frame).unwrap();
        assert_eq!(frame[0], 0x80 | op);
        assert_eq!(&frame[2..], payload);
    }
    s.write_all(&client_frame(0x8, &1000u16.to_be_bytes()))
        .unwrap();
    let mut close = [0u8; 4];
    s.read_exact(&mut close).unwrap();
    assert_eq!(close, [0x88, 0x02, 0x03, 0xe8]);
    expect_eof(&mut s);

    // HTTP/2 with prior knowledge (h2c), several streams on one connection.
    h2c_requests(port);

    short_load(port);

    // Graceful stop: a request in progress when SIGTERM arrives completes,
    // new connections are refused.
    let mut s = connect(port);
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nhello")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    terminate(&server);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still accepting after SIGTERM"
    );
    s.write_all(b"world").unwrap();
    let r = read_response(&mut s);
    assert!(r.starts_with(b"HTTP/1.1 200 OK\r\n"), "{r:?}");
    assert!(r.ends_with(b"\r\n\r\nhelloworld"));
    expect_eof(&mut s);
    wait_clean(server);
}

#[test]
fn cpp_server_over_sockets() {
    let src = Path::new(CRATE).join("examples/cpp_server.cpp");
    let bin = build(
        "c++",
        &src,
        "cpp_server",
        &[
            "-std=c++17",
            "-pedantic",
            "-pthread",
            SANITIZE[0],
            SANITIZE[1],
        ],
    );
    let (server, port) = start(&bin);
    let mut s = connect(port);
    s.write_all(b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut s).ends_with(b"\r\n\r\nhello from C++"));
    s.write_all(b"GET /headers HTTP/1.1\r\nhost: t\r\nX-Trace: 1\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut s).ends_with(b"\r\n\r\nhost\nx-trace\n"));
    let (mut ws, head) = open_websocket(port);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    ws.write_all(&client_frame(0x1, b"hi")).unwrap();
    let mut frame = [0u8; 10];
    ws.read_exact(&mut frame).unwrap();
    assert_eq!(&frame, b"\x81\x08echo: hi");
    drop(ws);
    drop(s);

    // A short load: 4 clients, 100 keep-alive requests and 25 WebSocket
    // echoes each.
    let clients: Vec<_> = (0..4)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = connect(port);
                for _ in 0..100 {
                    s.write_all(b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n")
                        .unwrap();
                    assert!(read_response(&mut s).ends_with(b"hello from C++"));
                }
                let (mut ws, head) = open_websocket(port);
                assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
                for i in 0..25 {
                    let text = format!("{c}/{i}");
                    ws.write_all(&client_frame(0x1, text.as_bytes())).unwrap();
                    let mut frame = vec![0u8; 2 + 6 + text.len()];
                    ws.read_exact(&mut frame).unwrap();
                    assert_eq!(&frame[2..], format!("echo: {text}").as_bytes());
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    stop_clean(server);
}

#[test]
fn callback_server_over_tls() {
    let src = Path::new(CRATE).join("examples/callback_server.c");
    let bin = build(
        "cc",
        &src,
        "callback_server_tls",
        &["-std=c11", "-pthread", SANITIZE[0], SANITIZE[1]],
    );
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = out_dir().join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let (server, port) = start_with(
        &bin,
        &["0".as_ref(), cert_path.as_os_str(), key_path.as_os_str()],
    );

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (alpn, want) in [(&b"http/1.1"[..], "HTTP/1.1"), (&b"h2"[..], "HTTP/2.0")] {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let version = rt.block_on(async {
            use http_body_util::{BodyExt, Empty};
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = connector.connect(name, tcp).await.unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
            let io = hyper_util::rt::TokioIo::new(tls);
            let req = hyper::Request::get("https://localhost/hello")
                .header("host", "localhost")
                .body(Empty::<bytes::Bytes>::new())
                .unwrap();
            let resp = if alpn == b"h2" {
                let (mut sender, conn) =
                    hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                        .await
                        .unwrap();
                tokio::spawn(conn);
                sender.send_request(req).await.unwrap()
            } else {
                let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
                tokio::spawn(conn);
                sender.send_request(req).await.unwrap()
            };
            assert_eq!(resp.status(), 200);
            let version = format!("{:?}", resp.version());
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body.as_ref(), b"hello");
            version
        });
        assert_eq!(version, want);
    }
    stop_clean(server);
}

/// GET /hello and POST /echo over one h2c connection, concurrently.
fn h2c_requests(port: u16) {
    use http_body_util::{BodyExt, Full};
    use hyper::Request;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let mut tasks = Vec::new();
        for i in 0..8 {
            let mut sender = sender.clone();
            tasks.push(tokio::spawn(async move {
                let (req, want) = if i % 2 == 0 {
                    let req = Request::get(format!("http://127.0.0.1:{port}/hello"))
                        .body(Full::new(bytes::Bytes::new()))
                        .unwrap();
                    (req, b"hello".to_vec())
                } else {
                    let body = format!("stream {i}").into_bytes();
                    let req = Request::post(format!("http://127.0.0.1:{port}/echo"))
                        .body(Full::new(bytes::Bytes::from(body.clone())))
                        .unwrap();
                    (req, body)
                };
                let resp = sender.send_request(req).await.unwrap();
                assert_eq!(resp.status(), 200);
                assert_eq!(resp.version(), hyper::Version::HTTP_2);
                let got = resp.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(got.as_ref(), want.as_slice());
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// A short load under the sanitizers: 8 clients, 100 keep-alive requests
/// each (GET and POST alternating), then a burst of WebSocket echoes.
fn short_load(port: u16) {
    let clients: Vec<_> = (0..8)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = connect(port);
                for i in 0..100 {
                    if i % 2 == 0 {
                        s.write_all(b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n")
                            .unwrap();
                        assert!(read_response(&mut s).ends_with(b"\r\n\r\nhello"));
                    } else {
                        let body = format!("client {c} request {i}");
                        let req = format!(
                            "POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        s.write_all(req.as_bytes()).unwrap();
                        assert!(read_response(&mut s).ends_with(body.as_bytes()));
                    }
                }
                let (mut ws, head) = open_websocket(port);
                assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
                for i in 0..50 {
                    let text = format!("{c}:{i}");
                    ws.write_all(&client_frame(0x1, text.as_bytes())).unwrap();
                    let mut frame = vec![0u8; 2 + text.len()];
                    ws.read_exact(&mut frame).unwrap();
                    assert_eq!(&frame[2..], text.as_bytes());
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}
