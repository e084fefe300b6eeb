//! Every frontend answers byte for byte alike: each case of the shared
//! corpus (`tests/corpus/h1`, `tests/corpus/ws`), timeouts included, is
//! replayed through the C API natively and inside wasmtime (the two
//! transcripts of calls, results, events and output bytes must be equal
//! and carry the verdict the corpus expects), and through the native server
//! over a real socket, whose bytes must equal the C API's output.

mod guest_build;
mod native;
mod sockets;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use cormorant_wasm_host::abi::EXPECTED_LAYOUT;
use cormorant_wasm_host::guest::CoreGuest;
use cormorant_wasm_host::replay::{End, Step, Transcript, replay};

/// Ways each case is fed: whole, and in 7-byte pieces so that heads, chunk
/// sizes and frame headers are cut in the middle.
const SPLITS: [usize; 2] = [0, 7];

fn guest() -> &'static CoreGuest {
    static GUEST: OnceLock<CoreGuest> = OnceLock::new();
    GUEST.get_or_init(|| CoreGuest::load(guest_build::guest_wasm()).expect("loading the guest"))
}

fn cases(dir: &str) -> Vec<(PathBuf, Vec<u8>, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/corpus")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "http"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let input = std::fs::read(&p).expect("read case");
            let expect = std::fs::read_to_string(p.with_extension("expect"))
                .unwrap_or_else(|_| panic!("{} has no .expect", p.display()));
            (p, input, expect.trim().to_owned())
        })
        .collect()
}

/// Where two transcripts first differ, for a readable failure.
fn first_difference(a: &Transcript, b: &Transcript) -> String {
    let i = a.steps.iter().zip(&b.steps).position(|(x, y)| x != y);
    let i = i.unwrap_or(a.steps.len().min(b.steps.len()));
    let show = |s: Option<&Step>| format!("{s:?}");
    format!(
        "step {i}: native {} / sandboxed {}",
        show(a.steps.get(i)),
        show(b.steps.get(i))
    )
}

/// Runs every case of `dir` through the C API natively and in wasm (each
/// split), and through the native server over a socket.
fn check_corpus(dir: &str, min_cases: usize) {
    let server = sockets::start();
    let port = server.port().expect("a TCP port");
    let cases = cases(dir);
    assert!(
        cases.len() >= min_cases,
        "{dir}: only {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for (path, input, expect) in &cases {
        let name = path.file_stem().unwrap().to_string_lossy();
        let end = End::of_case(&name);
        for split in SPLITS {
            let native =
                replay(&mut native::NativeConn::new(), input, split, end).expect("native replay");
            let mut conn = guest().connect().expect("guest connection");
            let sandboxed = match replay(&mut conn, input, split, end) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("{name} (split {split}): sandbox failed: {e:#}"));
                    continue;
                }
            };
            if native != sandboxed {
                let diff = first_difference(&native, &sandboxed);
                failures.push(format!("{name} (split {split}): differs at {diff}"));
            }
            if end == End::Stall && !native.wants_close {
                failures.push(format!("{name} (split {split}): timers left it open"));
            }
            if split == 0 {
                let wire = sockets::replay(port, input, end, &native.output);
                if wire != native.output {
                    failures.push(format!(
                        "{name}: the native server wrote\n{}\nthe C API wrote\n{}",
                        String::from_utf8_lossy(&wire).escape_debug(),
                        String::from_utf8_lossy(&native.output).escape_debug()
                    ));
                }
            }
            if native.verdict != *expect {
                let got = &native.verdict;
                failures.push(format!(
                    "{name} (split {split}): verdict {got}, expected {expect}"
                ));
            }
        }
    }
    server.stop(Duration::from_secs(1));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn h1_corpus_is_byte_identical() {
    check_corpus("h1", 40);
}

#[test]
fn ws_corpus_is_byte_identical() {
    check_corpus("ws", 20);
}

#[test]
fn host_layout_matches_the_guest() {
    let mut conn = guest().connect().expect("guest connection");
    assert_eq!(conn.layout().expect("layout"), EXPECTED_LAYOUT);
}

/// A module whose `_initialize` is `loop { br 0 }`: a guest that never
/// returns must end as an error naming the limit, not hang the test.
#[test]
fn a_guest_that_never_returns_fails() {
    #[rustfmt::skip]
    let spin: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00,             // type 0: () -> ()
        0x03, 0x02, 0x01, 0x00,                         // func 0: type 0
        0x07, 0x0f, 0x01, 0x0b, b'_', b'i', b'n', b'i', b't', b'i', b'a', b'l', b'i', b'z', b'e',
        0x00, 0x00,                                     // export func 0
        0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop { br 0 }
    ];
    let started = std::time::Instant::now();
    let err = CoreGuest::new(spin)
        .expect("compiles")
        .connect()
        .err()
        .expect("must fail");
    let msg = format!("{err:#}");
    assert!(msg.contains("fuel") || msg.contains("longer than"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// The driver really answers: the sandboxed core upgrades and echoes.
#[test]
fn sandboxed_websocket_echo_reaches_the_wire() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/ws");
    let input = std::fs::read(dir.join("text_echo.http")).expect("case");
    let mut conn = guest().connect().expect("guest connection");
    let t = replay(&mut conn, &input, 0, End::Eof).expect("replay");
    assert!(
        t.output.starts_with(b"HTTP/1.1 101 "),
        "{:?}",
        String::from_utf8_lossy(&t.output)
    );
    let echo = b"\x81\x05Hello";
    assert!(
        t.output.windows(echo.len()).any(|w| w == echo),
        "no echo frame"
    );
    assert!(t.wants_close);
}
