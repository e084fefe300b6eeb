//! Python apps in the sandbox: one component holds an app per bug class
//! (`apps/bugs.py`); each test runs a connection and checks that the host
//! caught exactly that bug, with a precise message. The CLI tests run the
//! example apps (plain ASGI and Starlette) through `cormorant-sandbox`.
//!
//! Needs componentize-py and the examples' pure-Python dependencies:
//! `make test-wasm` installs both (see `tools()`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cormorant_core::asgi::LifespanPhase;
use cormorant_wasm_host::sandbox::{
    AppSandbox, BuildSpec, Exchange, Failure, Limits, Request, WsClient, WsMessage,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// componentize-py and the dependency directory: from the environment, or
/// where `make test-wasm` puts them.
fn tools() -> (PathBuf, PathBuf) {
    let from_env =
        |var: &str, default: PathBuf| std::env::var_os(var).map_or(default, PathBuf::from);
    let tool = from_env(
        "CORMORANT_COMPONENTIZE_PY",
        root().join(".venv/bin/componentize-py"),
    );
    let deps = from_env("CORMORANT_SANDBOX_DEPS", root().join(".venv/sandbox-deps"));
    assert!(
        tool.exists() && deps.join("starlette").exists(),
        "componentize-py ({}) or the example dependencies ({}) are missing: run make test-wasm",
        tool.display(),
        deps.display()
    );
    (tool, deps)
}

fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandbox-cache")
}

const TIME_LIMIT: Duration = Duration::from_secs(3);
const MEMORY_LIMIT: usize = 256 << 20;

fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps")
}

/// The module `app` of `tests/apps`, built and loaded with `limits`. The
/// python path is the one `cli()` gives, so both share one component.
fn load(app: &str, limits: Limits) -> AppSandbox {
    let (tool, deps) = tools();
    let spec = BuildSpec {
        app: format!("{app}:app"),
        python_path: vec![apps_dir(), deps],
        componentize_py: tool,
        cache_dir: cache_dir(),
    };
    let component = spec.build().expect("building the test apps");
    AppSandbox::load(&component, Some(&cache_dir()), limits).expect("loading the component")
}

fn sandbox() -> &'static AppSandbox {
    static SANDBOX: OnceLock<AppSandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        let limits = Limits {
            time: TIME_LIMIT,
            memory: MEMORY_LIMIT,
            read_dir: Some((apps_dir().join("data"), "/data".into())),
            ..Limits::default()
        };
        load("bugs", limits)
    })
}

fn get(target: &str) -> Exchange {
    let request = Request {
        method: "GET".into(),
        target: target.into(),
        ..Request::default()
    };
    sandbox().run(&request).expect("run")
}

/// The one violation of `ex`: its error and the offending message.
fn violation(ex: &Exchange) -> (&str, &str) {
    assert_eq!(ex.violations.len(), 1, "{ex:#?}");
    (&ex.violations[0].error, &ex.violations[0].message)
}

/// `ex` has exactly one violation, with this error and offending message.
fn assert_violation(ex: &Exchange, error: &str, message: &str) {
    assert_eq!(violation(ex), (error, message));
}

#[test]
fn a_good_app_passes() {
    let request = Request {
        method: "POST".into(),
        target: "/good".into(),
        body: b"12345".to_vec(),
        ..Request::default()
    };
    let ex = sandbox().run(&request).expect("run");
    assert_eq!(ex.status, Some(200));
    assert_eq!(ex.body, b"ok POST 5");
    assert!(ex.complete);
    // It does not speak lifespan (it fails on the lifespan scope): served anyway.
    assert_eq!(ex.lifespan, Some(LifespanPhase::Unsupported));
    assert!(
        ex.violations.is_empty() && ex.failure.is_none() && ex.exit_note.is_none(),
        "{ex:#?}"
    );
    let length = ex
        .headers
        .iter()
        .find(|(n, _)| n.as_ref() == b"content-length");
    assert_eq!(length.map(|(_, v)| v.as_ref()), Some(&b"9"[..]));
}

#[test]
fn a_failed_lifespan_startup_is_reported_and_nothing_is_served() {
    let request = Request {
        method: "GET".into(),
        target: "/".into(),
        ..Request::default()
    };
    let ex = load("lifespan_fails", Limits::default())
        .run(&request)
        .expect("run");
    assert_eq!(
        ex.failure,
        Some(Failure::StartupFailed("no database".into()))
    );
    assert_eq!(
        ex.lifespan,
        Some(LifespanPhase::StartupFailed("no database".into()))
    );
    assert_eq!(ex.status, None);
    // Without lifespan the same app is served (and fails on purpose).
    let limits = Limits {
        lifespan: false,
        ..Limits::default()
    };
    let ex = load("lifespan_fails", limits).run(&request).expect("run");
    assert!(matches!(&ex.failure, Some(Failure::Exception(tb)) if tb.contains("served without")));
    assert_eq!(ex.lifespan, None);
}

#[test]
fn body_before_start_is_caught() {
    let ex = get("/body-before-start");
    assert_violation(
        &ex,
        "expected ASGI message 'http.response.start', but got 'http.response.body'",
        "{'type': 'http.response.body', 'body': b'too early'}",
    );
    // The app raised the RuntimeError it got from send(); a 500 went out.
    assert!(matches!(&ex.failure, Some(Failure::Exception(tb)) if tb.contains("RuntimeError")));
    assert_eq!(ex.status, Some(500));
}

#[test]
fn a_second_start_is_caught() {
    let ex = get("/two-starts");
    assert_violation(
        &ex,
        "got a second 'http.response.start' after the response started",
        "{'type': 'http.response.start', 'status': 200, 'headers': []}",
    );
}

#[test]
fn a_send_after_the_final_body_is_caught() {
    let ex = get("/after-final-body");
    assert_violation(
        &ex,
        "unexpected ASGI message after the response completed",
        "{'type': 'http.response.body', 'body': b'one more'}",
    );
    // The response itself went out whole before the bad message.
    assert_eq!(
        (ex.status, ex.body.as_slice(), ex.complete),
        (Some(200), &b"done"[..], true)
    );
}

#[test]
fn returning_without_a_response_is_caught() {
    let ex = get("/no-response");
    assert!(ex.violations.is_empty() && ex.failure.is_none());
    assert_eq!(
        ex.exit_note.as_deref(),
        Some("the app ended without sending 'http.response.start': a 500 was sent")
    );
    assert_eq!(ex.status, Some(500));
}

#[test]
fn waiting_forever_is_caught() {
    let ex = get("/never-returns");
    assert!(matches!(&ex.failure, Some(Failure::Stalled(_))), "{ex:#?}");
    assert_eq!(ex.status, Some(500));
}

#[test]
fn wrong_types_are_caught() {
    let ex = get("/status-as-str");
    assert_violation(
        &ex,
        "'status' must be an int, got str",
        "{'type': 'http.response.start', 'status': '200', 'headers': []}",
    );
    assert!(matches!(&ex.failure, Some(Failure::Exception(tb)) if tb.contains("TypeError")));

    let ex = get("/body-as-str");
    assert_eq!(violation(&ex).0, "'body' must be bytes, got str");
}

#[test]
fn an_uncaught_exception_comes_with_its_traceback() {
    let ex = get("/raise");
    let Some(Failure::Exception(tb)) = &ex.failure else {
        panic!("{ex:#?}");
    };
    assert!(tb.contains("ZeroDivisionError: division by zero"), "{tb}");
    assert!(
        tb.contains("in raises"),
        "the frame of the app is named: {tb}"
    );
    assert_eq!(ex.status, Some(500));
}

#[test]
fn an_endless_loop_is_stopped_within_the_time_limit() {
    let started = Instant::now();
    let ex = get("/spin");
    let took = started.elapsed();
    assert_eq!(ex.failure, Some(Failure::Timeout(TIME_LIMIT)));
    assert!(
        took >= TIME_LIMIT && took < TIME_LIMIT + Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn endless_sleeps_run_out_of_virtual_time_at_once() {
    let started = Instant::now();
    let ex = get("/sleeps-forever");
    assert!(
        matches!(ex.failure, Some(Failure::VirtualTimeout(t)) if t > Limits::default().virtual_time)
    );
    assert!(started.elapsed() < TIME_LIMIT);
}

#[test]
fn a_memory_hog_is_stopped_at_the_memory_limit() {
    let ex = get("/hog");
    let Some(Failure::Memory { limit, asked }) = ex.failure else {
        panic!("{ex:#?}");
    };
    assert_eq!(limit, MEMORY_LIMIT);
    assert!(asked > MEMORY_LIMIT);
    // The next connection gets a fresh instance and works.
    assert_eq!(get("/good").status, Some(200));
}

#[test]
fn there_is_no_network() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let ex = get(&format!("/network?{port}"));
    let body = String::from_utf8_lossy(&ex.body);
    assert_ne!(body, "connected");
    assert!(body.ends_with("Error"), "{body}");
    assert!(listener.accept().is_err(), "the app reached the listener");
}

#[test]
fn files_come_only_from_the_read_only_directory() {
    assert_eq!(get("/read?/data/note.txt").body, b"read-only data\n");
    let outside = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let body = get(&format!("/read?{}", outside.display())).body;
    assert_eq!(body, b"FileNotFoundError");
    let denied = String::from_utf8(get("/write?/data/new.txt").body).expect("utf-8");
    assert!(denied.ends_with("Error"), "{denied}");
    assert!(
        !Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/apps/data/new.txt")
            .exists()
    );
}

fn websocket(target: &str, messages: &[&str]) -> Exchange {
    let request = Request {
        method: "GET".into(),
        target: target.into(),
        websocket: Some(WsClient {
            messages: messages
                .iter()
                .map(|m| WsMessage::Text((*m).into()))
                .collect(),
            close_code: 1000,
            ..WsClient::default()
        }),
        ..Request::default()
    };
    sandbox().run(&request).expect("run")
}

#[test]
fn a_websocket_echo_passes() {
    let ex = websocket("/ws-echo", &["a", "b"]);
    assert_eq!(ex.accepted, Some(None));
    let echoed = vec![WsMessage::Text("a".into()), WsMessage::Text("b".into())];
    assert_eq!(ex.messages, echoed);
    assert!(ex.violations.is_empty() && ex.failure.is_none(), "{ex:#?}");
}

#[test]
fn a_websocket_send_before_accept_is_caught() {
    let ex = websocket("/ws-send-before-accept", &[]);
    let (error, message) = violation(&ex);
    assert!(error.starts_with("expected 'websocket.accept'"), "{error}");
    assert_eq!(message, "{'type': 'websocket.send', 'text': 'hello?'}");
    // The handshake was never answered: the app's error becomes a 500.
    assert_eq!(ex.status, Some(500));
}

// ------------------------------------------------------------------ the CLI

fn cli(args: &[&str]) -> (i32, String) {
    let (tool, deps) = tools();
    let out = Command::new(env!("CARGO_BIN_EXE_cormorant-sandbox"))
        .current_dir(root())
        .args(args)
        .arg("--python-path")
        .arg(deps)
        .arg("--componentize-py")
        .arg(tool)
        .arg("--cache-dir")
        .arg(cache_dir())
        .output()
        .expect("running cormorant-sandbox");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// Runs an example of `wasm-host/examples` with its scenario file; returns
/// the report after checking that all `passed` scenarios passed.
fn example(name: &str, passed: usize, extra: &[&str]) -> String {
    let app = format!("{name}:app");
    let scenarios = format!("wasm-host/examples/{name}.toml");
    let mut args = vec!["run", &app, &scenarios, "--app-dir", "wasm-host/examples"];
    args.extend(extra);
    let (code, out) = cli(&args);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("\n{passed} passed, 0 failed\n")),
        "{out}"
    );
    out
}

#[test]
fn cli_runs_the_plain_asgi_example() {
    example("plain_app", 5, &[]);
}

#[test]
fn cli_runs_the_starlette_example() {
    let out = example(
        "starlette_app",
        8,
        &["--read-dir", "wasm-host/examples/data::/data"],
    );
    assert!(
        out.contains("PASS sync endpoint (GET /sum?n=1,2,3): 200"),
        "{out}"
    );
}

#[test]
fn cli_reports_a_failing_scenario_and_exits_1() {
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("failing.toml");
    std::fs::write(
        &file,
        "[[scenario]]\nname = \"wrong expectation\"\npath = \"/\"\nexpect = { status = 201 }\n",
    )
    .expect("write");
    let file = file.to_string_lossy().into_owned();
    let (code, out) = cli(&[
        "run",
        "plain_app:app",
        &file,
        "--app-dir",
        "wasm-host/examples",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL wrong expectation (GET /): 200"), "{out}");
    assert!(out.contains("  - expected status 201, got 200\n"), "{out}");
    assert!(out.contains("\n0 passed, 1 failed\n"), "{out}");
}

#[test]
fn cli_shows_a_read_dir_without_guest_path_at_its_absolute_path() {
    let data = apps_dir().join("data").canonicalize().expect("data dir");
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("read_dir.toml");
    let scenario = format!(
        "[[scenario]]\nname = \"read\"\npath = \"/read?{}/note.txt\"\n\
         expect = {{ status = 200, body = \"read-only data\\n\" }}\n",
        data.display()
    );
    std::fs::write(&file, scenario).expect("write");
    let file = file.to_string_lossy().into_owned();
    let dir = data.to_string_lossy().into_owned();
    let apps = apps_dir().to_string_lossy().into_owned();
    let (code, out) = cli(&[
        "run",
        "bugs:app",
        &file,
        "--app-dir",
        &apps,
        "--read-dir",
        &dir,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PASS read"), "{out}");
}

#[test]
fn cli_scenarios_can_require_each_bug() {
    let apps = apps_dir().to_string_lossy().into_owned();
    let file = apps_dir().join("bugs.toml").to_string_lossy().into_owned();
    let limits = ["--timeout", "3", "--memory", "256"];
    let mut args = vec!["run", "bugs:app", &file, "--app-dir", &apps];
    args.extend(limits);
    let (code, out) = cli(&args);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\n9 passed, 0 failed\n"), "{out}");
    // The report still shows what was caught.
    assert!(
        out.contains("  ASGI violation: 'status' must be an int, got str\n"),
        "{out}"
    );
    assert!(out.contains("  memory limit: the app asked for"), "{out}");
}
