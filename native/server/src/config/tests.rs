use std::time::Duration;

use super::*;

fn from_json(json: &str) -> Result<ServerConfig, String> {
    serde_json::from_str(json).map_err(|e| e.to_string())
}

#[test]
fn defaults_are_the_flags_defaults() {
    let c = ServerConfig::default();
    assert_eq!((c.host.as_str(), c.port, c.workers), ("127.0.0.1", 8000, 1));
    assert_eq!(c.timeout_keep_alive, Duration::from_secs(5));
    assert_eq!(c.reload_delay, Duration::from_millis(250));
    assert_eq!(c.timeout_graceful_shutdown, None);
    assert_eq!(c.http2_keep_alive_interval, Duration::ZERO);
    assert_eq!(
        (c.http, c.ws, c.loop_impl),
        (HttpVersions::Auto, WsMode::Auto, Loop::Auto)
    );
    assert_eq!((c.log_level, c.lifespan), (Level::Info, Lifespan::Auto));
    assert_eq!(c.ssl_cert_reqs, ClientAuth::None);
    assert!(c.server_header && c.date_header && c.proxy_headers && !c.access_log);
    assert_eq!(c.use_colors, None);
    // An empty JSON object is the defaults too.
    let empty = from_json("{}").unwrap();
    assert_eq!(format!("{empty:?}"), format!("{c:?}"));
}

#[test]
fn json_round_trips() {
    let c = from_json(
        r#"{"http": "2", "loop": "uvloop", "log_level": "debug", "timeout_keep_alive": 2.5,
            "headers": ["x-a: 1"], "ssl_cert_reqs": "optional", "workers_lifetime": 60}"#,
    )
    .unwrap();
    let again = from_json(&serde_json::to_string(&c).unwrap()).unwrap();
    assert_eq!(format!("{again:?}"), format!("{c:?}"));
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["http"], "2");
    assert_eq!(v["loop"], "uvloop");
    assert_eq!(v["timeout_keep_alive"], 2.5);
    assert_eq!(v["headers"], serde_json::json!(["x-a:1"]));
    assert_eq!(v["workers_lifetime"], 60.0);
    assert_eq!(v["timeout_graceful_shutdown"], serde_json::Value::Null);
}

/// Every spelling the command line takes, the JSON takes too, and the
/// Python API's numbers and booleans read as their text.
#[test]
fn values_have_one_set_of_spellings() {
    let cases: &[(&str, &str, &str)] = &[
        ("http", r#""h11""#, "auto"),
        ("http", r#""http1""#, "1"),
        ("http", r#""1.1""#, "1"),
        ("http", "2", "2"),
        ("ws", "true", "auto"),
        ("ws", "false", "none"),
        ("ws", r#""wsproto""#, "auto"),
        ("log_level", "10", "debug"),
        ("log_level", r#""WARN""#, "warning"),
        ("log_level", "50", "critical"),
        ("ssl_cert_reqs", "2", "required"),
        ("ssl_cert_reqs", "true", "required"),
        ("ssl_cert_reqs", r#""CERT_OPTIONAL""#, "optional"),
        ("ssl_protocol_min", r#""TLSv1.3""#, "tls1.3"),
        ("ssl_protocol_min", r#""1.2""#, "tls1.2"),
    ];
    for (key, given, held) in cases {
        let c = from_json(&format!("{{\"{key}\": {given}}}")).unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v[key], *held, "{key} = {given}");
    }
    for (key, bad) in [
        ("http", r#""3""#),
        ("ssl_cert_reqs", "3"),
        ("ssl_protocol_min", r#""tls1.1""#),
        ("log_level", r#""loud""#),
    ] {
        let e = from_json(&format!("{{\"{key}\": {bad}}}")).unwrap_err();
        assert!(e.contains("expected one of"), "{key}: {e}");
    }
}

#[test]
fn seconds_are_numbers_not_negative() {
    let c = from_json(r#"{"timeout_request_body": 0, "ws_ping_interval": null}"#).unwrap();
    assert_eq!(c.timeout_request_body, Duration::ZERO);
    assert_eq!(c.ws_ping_interval, Duration::ZERO);
    assert!(from_json(r#"{"timeout_keep_alive": -1}"#).is_err());
    assert!(from_json(r#"{"timeout_keep_alive": "5"}"#).is_err());
    assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
    assert!(parse_seconds("-1").is_err());
    assert!(parse_seconds("inf").is_err());
}

#[test]
fn headers_and_lists_take_the_python_forms() {
    let c = from_json(
        r#"{"headers": [["X-A", " 1 "], "x-b:2"], "reload_dirs": "src",
            "forwarded_allow_ips": ["10.0.0.1", "10.0.0.2"]}"#,
    )
    .unwrap();
    let h: Vec<_> = c.headers.iter().map(ToString::to_string).collect();
    assert_eq!(h, ["x-a:1", "x-b:2"]);
    assert_eq!(c.reload_dirs, ["src"]);
    assert_eq!(c.forwarded_allow_ips.as_deref(), Some("10.0.0.1,10.0.0.2"));
    for bad in [r#"["x a:1"]"#, r#"["nocolon"]"#, r#"[["x", "a\u0000"]]"#] {
        assert!(
            from_json(&format!("{{\"headers\": {bad}}}")).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn validate_checks_ranges_and_pairs() {
    let bad = [
        r#"{"http2_max_frame_size": 100}"#,
        r#"{"ssl_certfile": "c.pem"}"#,
        r#"{"timeout_request_head": 0}"#,
        r#"{"workers_lifetime": 0}"#,
        r#"{"static_path_route": ["/a", "/b"], "static_path_mount": ["."]}"#,
        r#"{"forwarded_allow_ips": "not an address"}"#,
    ];
    for json in bad {
        assert!(from_json(json).unwrap().validate().is_err(), "{json}");
    }
    assert!(ServerConfig::default().validate().is_ok());
}

#[test]
fn workers_take_a_count_or_auto() {
    assert_eq!(from_json(r#"{"workers": 3}"#).unwrap().workers, 3);
    assert_eq!(from_json(r#"{"workers": "3"}"#).unwrap().workers, 3);
    let auto = from_json(r#"{"workers": "auto"}"#).unwrap();
    assert_eq!(auto.workers, 0);
    assert_eq!(serde_json::to_value(&auto).unwrap()["workers"], "auto");
    assert!(auto.validate().is_ok());
    let resolved = auto.with_workers_resolved();
    assert!(resolved.workers >= 1);
    assert!(resolved.workers <= crate::sys::affinity_cpus().unwrap_or(usize::MAX));
    assert_eq!(from_json(r#"{"workers": 0}"#).unwrap().workers, 0);
    for bad in [
        r#"{"workers": -1}"#,
        r#"{"workers": "lots"}"#,
        r#"{"workers": 1.5}"#,
    ] {
        assert!(from_json(bad).is_err(), "{bad}");
    }
}

#[test]
fn umask_is_octal() {
    assert_eq!(from_json(r#"{"umask": 18}"#).unwrap().umask, Some(0o022));
    let c = from_json(r#"{"umask": "027"}"#).unwrap();
    assert_eq!(c.umask, Some(0o027));
    assert_eq!(serde_json::to_value(&c).unwrap()["umask"], "027");
    assert_eq!(
        from_json(r#"{"umask": "0o077"}"#).unwrap().umask,
        Some(0o077)
    );
    assert_eq!(from_json(r#"{"umask": null}"#).unwrap().umask, None);
    for bad in [
        r#"{"umask": "999"}"#,
        r#"{"umask": 512}"#,
        r#"{"umask": "rw"}"#,
    ] {
        assert!(from_json(bad).is_err(), "{bad}");
    }
}
