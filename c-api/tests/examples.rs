//! Builds the C and C++ examples against the staticlib and runs them: the
//! header compiles as C11 and C++17 with warnings as errors, the C++
//! in-memory exchange passes, and the epoll server (under ASan and UBSan)
//! answers keep-alive HTTP, a malformed request and a WebSocket echo over
//! real sockets, then stops cleanly with no sanitizer report.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
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
    let bin = build("c++", &src, "cpp_hello", &["-std=c++17", "-pedantic"]);
    let out = Command::new(bin).output().unwrap();
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
        &[
            "-std=c11",
            "-fsanitize=address,undefined",
            "-fno-omit-frame-pointer",
        ],
    );
    let mut child = Command::new(bin)
        .arg("0")
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
    let mut server = Server(Some(child));

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
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.1\r\nbad header line\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    assert!(all.starts_with(b"HTTP/1.1 400 Bad Request\r\n"), "{all:?}");

    // WebSocket: handshake, masked text echo, close handshake.
    let mut s = connect(port);
    s.write_all(
        b"GET /ws HTTP/1.1\r\nhost: t\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
    )
    .unwrap();
    let head = String::from_utf8(read_response(&mut s)).unwrap();
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

    // Stop it: SIGTERM, clean exit, no sanitizer report.
    let mut child = server.0.take().unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
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
