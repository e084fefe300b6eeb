//! Server configuration shared by the CLI, the Python API and the workers.

use cormorant_core::http;
use serde::{Deserialize, Serialize};

use crate::tls::{ClientAuth, TlsSettings, TlsVersionMin};

/// Every setting of a server run. Serialized to JSON to hand it to worker
/// processes and from the Python API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ServerConfig {
    /// The application, as `module:attribute`.
    pub(crate) target: Option<String>,
    /// Call the target with no arguments to get the application.
    pub(crate) factory: bool,
    /// Directory put first on `sys.path` before importing the target.
    pub(crate) app_dir: String,
    /// Address to bind.
    pub(crate) host: String,
    /// Port to bind.
    pub(crate) port: u16,
    /// Unix socket path to bind instead of host and port.
    pub(crate) uds: Option<String>,
    /// An already bound listening socket to serve on.
    pub(crate) fd: Option<i32>,
    /// Listen backlog.
    pub(crate) backlog: i32,
    /// Worker processes.
    pub(crate) workers: usize,
    /// Event loop: auto, asyncio or uvloop.
    #[serde(rename = "loop")]
    pub(crate) loop_impl: String,
    /// Lifespan: auto, on or off.
    pub(crate) lifespan: String,
    /// Python log level name.
    pub(crate) log_level: String,
    /// Log every request to `cormorant.access`.
    pub(crate) access_log: bool,
    /// ASGI `root_path`.
    pub(crate) root_path: String,
    /// Seconds an idle keep-alive connection is kept open.
    pub(crate) timeout_keep_alive: f64,
    /// Seconds a request head may take to arrive, from its first byte.
    pub(crate) timeout_request_head: f64,
    /// Seconds a request body may stall (no bytes while the server reads)
    /// before a 408; 0 for no limit.
    pub(crate) timeout_request_body: f64,
    /// Seconds to let in-flight requests finish on shutdown.
    pub(crate) timeout_graceful_shutdown: Option<f64>,
    /// Most requests served at once; more get 503.
    pub(crate) limit_concurrency: Option<usize>,
    /// Requests after which a worker stops (and is replaced when there
    /// are several workers).
    pub(crate) limit_max_requests: Option<u64>,
    /// Send a `Server` header.
    pub(crate) server_header: bool,
    /// Send a `Date` header.
    pub(crate) date_header: bool,
    /// Extra response headers, as `name:value`.
    pub(crate) headers: Vec<String>,
    /// Longest request-line, in bytes.
    pub(crate) limit_request_line: usize,
    /// Most request header fields.
    pub(crate) limit_request_fields: usize,
    /// Largest request head, in bytes.
    pub(crate) limit_request_head_size: usize,
    /// Largest request body, in bytes (0: no limit).
    pub(crate) limit_request_body: u64,
    /// WebSocket support: auto (on) or none (upgrades served as HTTP).
    pub(crate) ws: String,
    /// Largest WebSocket message, in bytes.
    pub(crate) ws_max_size: usize,
    /// WebSocket messages buffered for the app before reading pauses.
    pub(crate) ws_max_queue: usize,
    /// Seconds between pings (None or 0: no pings).
    pub(crate) ws_ping_interval: Option<f64>,
    /// Seconds to wait for a pong before dropping the connection.
    pub(crate) ws_ping_timeout: Option<f64>,
    /// Negotiate permessage-deflate (RFC 7692) when the client offers it.
    pub(crate) ws_per_message_deflate: bool,
    /// HTTP versions served: auto (1.1 and 2), 1 or 2.
    pub(crate) http: String,
    /// Most concurrent HTTP/2 streams per connection.
    pub(crate) http2_max_concurrent_streams: u32,
    /// Initial HTTP/2 stream window, in bytes.
    pub(crate) http2_initial_stream_window_size: u32,
    /// Initial HTTP/2 connection window, in bytes.
    pub(crate) http2_initial_connection_window_size: u32,
    /// Size the HTTP/2 windows from the measured bandwidth-delay product.
    pub(crate) http2_adaptive_window: bool,
    /// Largest HTTP/2 frame payload we accept, in bytes.
    pub(crate) http2_max_frame_size: u32,
    /// Largest HTTP/2 header list (decoded), in bytes.
    pub(crate) http2_max_header_list_size: u32,
    /// Seconds between HTTP/2 keep-alive pings (None: no pings).
    pub(crate) http2_keep_alive_interval: Option<f64>,
    /// Seconds to wait for a keep-alive ping's answer.
    pub(crate) http2_keep_alive_timeout: f64,
    /// PEM certificate chain: serve TLS.
    pub(crate) ssl_certfile: Option<String>,
    /// PEM private key for `ssl_certfile`.
    pub(crate) ssl_keyfile: Option<String>,
    /// Password of an encrypted PKCS#8 key.
    pub(crate) ssl_keyfile_password: Option<String>,
    /// PEM CA certificates that client certificates must chain to.
    pub(crate) ssl_ca_certs: Option<String>,
    /// Client certificates: none, optional or required.
    pub(crate) ssl_cert_reqs: String,
    /// Certificate revocation lists (PEM or DER) for client certificates.
    pub(crate) ssl_crl: Option<String>,
    /// Oldest TLS version accepted: tls1.2 or tls1.3.
    pub(crate) ssl_protocol_min: String,
    /// Cipher suites allowed, by name, separated by ':' or ','.
    pub(crate) ssl_ciphers: Option<String>,
    /// Seconds a TLS handshake may take.
    pub(crate) timeout_tls_handshake: f64,
    /// Access line format (`%(atom)s` atoms; see `server::access_format`).
    pub(crate) access_log_format: Option<String>,
    /// Log one JSON object per line.
    pub(crate) log_json: bool,
    /// Colour the level names (None: when stderr is a terminal).
    pub(crate) use_colors: Option<bool>,
    /// Logging configuration file: JSON, YAML or INI (`logging.config`).
    pub(crate) log_config: Option<String>,
    /// A dotenv file loaded into the environment before the app is imported.
    pub(crate) env_file: Option<String>,
    /// Restart the worker when a watched file changes.
    pub(crate) reload: bool,
    /// Directories watched (default: the working directory).
    pub(crate) reload_dirs: Vec<String>,
    /// Glob patterns of the files watched (default `*.py`).
    pub(crate) reload_includes: Vec<String>,
    /// Glob patterns of files and directories not watched.
    pub(crate) reload_excludes: Vec<String>,
    /// Seconds to let a burst of changes settle before restarting.
    pub(crate) reload_delay: f64,
    /// Serve Prometheus metrics.
    pub(crate) metrics: bool,
    /// Address of the metrics endpoint.
    pub(crate) metrics_address: String,
    /// Port of the metrics endpoint.
    pub(crate) metrics_port: u16,
    /// Believe `Forwarded` / `X-Forwarded-*` from trusted peers.
    pub(crate) proxy_headers: bool,
    /// Peers trusted with proxy headers: IPs, CIDR networks or `*`,
    /// comma-separated. None: `$FORWARDED_ALLOW_IPS`, else loopback.
    pub(crate) forwarded_allow_ips: Option<String>,
    /// URL prefixes answered from files, paired with `static_path_mount`.
    pub(crate) static_path_route: Vec<String>,
    /// Directories served under the routes of `static_path_route`.
    pub(crate) static_path_mount: Vec<String>,
    /// `Cache-Control: max-age` of static files, in seconds (0: none).
    pub(crate) static_path_expires: u64,
    // Worker management (the supervisor).
    /// Each worker's `limit_max_requests` is raised by a random 0..=this.
    pub(crate) limit_max_requests_jitter: u64,
    /// Seconds after which a worker is replaced (rolling).
    pub(crate) workers_lifetime: Option<f64>,
    /// MiB of resident memory above which a worker is replaced (rolling).
    pub(crate) workers_max_rss: Option<u64>,
    /// Replace a worker that died; off: a dead worker stops the server.
    pub(crate) respawn_failed_workers: bool,
    /// File to write the server's pid to (removed at exit).
    pub(crate) pid_file: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            target: None,
            factory: false,
            app_dir: ".".into(),
            host: "127.0.0.1".into(),
            port: 8000,
            uds: None,
            fd: None,
            backlog: 2048,
            workers: 1,
            loop_impl: "auto".into(),
            lifespan: "auto".into(),
            log_level: "info".into(),
            access_log: false,
            root_path: String::new(),
            timeout_keep_alive: 5.0,
            timeout_request_head: 30.0,
            timeout_request_body: 60.0,
            timeout_graceful_shutdown: None,
            limit_concurrency: None,
            limit_max_requests: None,
            server_header: true,
            date_header: true,
            headers: Vec::new(),
            limit_request_line: 8 * 1024,
            limit_request_fields: 100,
            limit_request_head_size: 64 * 1024,
            limit_request_body: 0,
            ws: "auto".into(),
            ws_max_size: 16 * 1024 * 1024,
            ws_max_queue: 32,
            ws_ping_interval: Some(20.0),
            ws_ping_timeout: Some(20.0),
            ws_per_message_deflate: true,
            http: "auto".into(),
            http2_max_concurrent_streams: 200,
            http2_initial_stream_window_size: 1024 * 1024,
            http2_initial_connection_window_size: 2 * 1024 * 1024,
            http2_adaptive_window: false,
            http2_max_frame_size: 16 * 1024,
            http2_max_header_list_size: 64 * 1024,
            http2_keep_alive_interval: None,
            http2_keep_alive_timeout: 20.0,
            ssl_certfile: None,
            ssl_keyfile: None,
            ssl_keyfile_password: None,
            ssl_ca_certs: None,
            ssl_cert_reqs: "none".into(),
            ssl_crl: None,
            ssl_protocol_min: "tls1.2".into(),
            ssl_ciphers: None,
            timeout_tls_handshake: 10.0,
            access_log_format: None,
            log_json: false,
            use_colors: None,
            log_config: None,
            env_file: None,
            reload: false,
            reload_dirs: Vec::new(),
            reload_includes: Vec::new(),
            reload_excludes: Vec::new(),
            reload_delay: 0.25,
            metrics: false,
            metrics_address: "127.0.0.1".into(),
            metrics_port: 9090,
            proxy_headers: true,
            forwarded_allow_ips: None,
            static_path_route: Vec::new(),
            static_path_mount: Vec::new(),
            static_path_expires: 86400,
            limit_max_requests_jitter: 0,
            workers_lifetime: None,
            workers_max_rss: None,
            respawn_failed_workers: true,
            pid_file: None,
        }
    }
}

impl ServerConfig {
    /// Whether the listeners serve TLS.
    #[cfg(feature = "python")]
    pub(crate) fn serves_tls(&self) -> bool {
        self.ssl_certfile.is_some()
    }

    /// The protocols served, for the startup lines: `HTTP/1.1, HTTP/2`.
    #[cfg(feature = "python")]
    pub(crate) fn protocols(&self) -> &'static str {
        crate::server::HttpVersions::parse(&self.http).names()
    }

    /// The TLS settings, when a certificate is configured. ALPN follows
    /// `--http`.
    pub(crate) fn tls_settings(&self) -> Option<TlsSettings> {
        let (Some(cert), Some(key)) = (&self.ssl_certfile, &self.ssl_keyfile) else {
            return None;
        };
        let alpn: Vec<Vec<u8>> = match self.http.as_str() {
            "1" => vec![b"http/1.1".to_vec()],
            "2" => vec![b"h2".to_vec()],
            _ => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        };
        Some(TlsSettings {
            certfile: cert.into(),
            keyfile: key.into(),
            keyfile_password: self.ssl_keyfile_password.clone(),
            ca_certs: self.ssl_ca_certs.as_ref().map(Into::into),
            client_auth: self.ssl_cert_reqs.parse().unwrap_or(ClientAuth::None),
            crl: self.ssl_crl.as_ref().map(Into::into),
            protocol_min: self
                .ssl_protocol_min
                .parse()
                .unwrap_or(TlsVersionMin::Tls12),
            // uvicorn's default ("TLSv1", an OpenSSL cipher string) means
            // "every suite".
            ciphers: self
                .ssl_ciphers
                .clone()
                .filter(|c| !c.is_empty() && c != "TLSv1"),
            alpn,
        })
    }

    /// Checks values that the types alone do not.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !matches!(self.loop_impl.as_str(), "auto" | "asyncio" | "uvloop") {
            return Err(format!(
                "invalid loop {:?}: expected auto, asyncio or uvloop",
                self.loop_impl
            ));
        }
        if !matches!(self.http.as_str(), "auto" | "1" | "2") {
            return Err(format!(
                "invalid http {:?}: expected auto, 1 or 2",
                self.http
            ));
        }
        if !(16 * 1024..=16 * 1024 * 1024 - 1).contains(&self.http2_max_frame_size) {
            return Err(format!(
                "invalid --http2-max-frame-size {}: must be between 16384 and 16777215",
                self.http2_max_frame_size
            ));
        }
        if self.http2_initial_stream_window_size > i32::MAX as u32
            || self.http2_initial_connection_window_size > i32::MAX as u32
        {
            return Err("HTTP/2 window sizes must be at most 2147483647".into());
        }
        match (&self.ssl_certfile, &self.ssl_keyfile) {
            (Some(_), None) => return Err("--ssl-certfile needs --ssl-keyfile".into()),
            (None, Some(_)) => return Err("--ssl-keyfile needs --ssl-certfile".into()),
            _ => {}
        }
        if let Some(f) = &self.access_log_format {
            crate::server::access_format::AccessFormat::parse(f)?;
        }
        if !matches!(
            self.ssl_cert_reqs.as_str(),
            "none" | "optional" | "required"
        ) {
            return Err(format!(
                "invalid ssl_cert_reqs {:?}: expected none, optional or required",
                self.ssl_cert_reqs
            ));
        }
        if !matches!(self.ssl_protocol_min.as_str(), "tls1.2" | "tls1.3") {
            return Err(format!(
                "invalid ssl_protocol_min {:?}: expected tls1.2 or tls1.3",
                self.ssl_protocol_min
            ));
        }
        if !matches!(self.lifespan.as_str(), "auto" | "on" | "off") {
            return Err(format!(
                "invalid lifespan {:?}: expected auto, on or off",
                self.lifespan
            ));
        }
        if !matches!(
            self.log_level.to_ascii_lowercase().as_str(),
            "critical" | "error" | "warning" | "info" | "debug" | "trace"
        ) {
            return Err(format!("invalid log level {:?}", self.log_level));
        }
        if !matches!(self.ws.as_str(), "auto" | "none" | "websockets" | "wsproto") {
            return Err(format!("invalid ws {:?}: expected auto or none", self.ws));
        }
        for (name, v) in [
            ("ws-ping-interval", self.ws_ping_interval),
            ("ws-ping-timeout", self.ws_ping_timeout),
        ] {
            if let Some(v) = v {
                if !(v >= 0.0 && v.is_finite()) {
                    return Err(format!("{name} must be a number of seconds, not negative"));
                }
            }
        }
        if self.ws_max_size == 0 || self.ws_max_queue == 0 {
            return Err("ws-max-size and ws-max-queue must be at least 1".into());
        }
        if self.workers == 0 {
            return Err("workers must be at least 1".into());
        }
        for h in &self.headers {
            self.parse_header(h)?;
        }
        if !(self.timeout_keep_alive >= 0.0 && self.timeout_keep_alive.is_finite()) {
            return Err("timeout-keep-alive must be a number of seconds, not negative".into());
        }
        if !(self.timeout_request_head > 0.0 && self.timeout_request_head.is_finite()) {
            return Err("timeout-request-head must be a positive number of seconds".into());
        }
        if !(self.timeout_request_body >= 0.0 && self.timeout_request_body.is_finite()) {
            return Err("timeout-request-body must be a number of seconds, not negative".into());
        }
        self.validate_proxy_static()?;
        self.validate_workers()
    }

    fn validate_workers(&self) -> Result<(), String> {
        if let Some(l) = self.workers_lifetime {
            if !(l > 0.0 && l.is_finite()) {
                return Err("workers-lifetime must be a positive number of seconds".into());
            }
        }
        if self.workers_max_rss == Some(0) {
            return Err("workers-max-rss must be at least 1 (MiB)".into());
        }
        Ok(())
    }

    /// Whether worker processes under a supervisor are needed: several
    /// workers, or recycling that only a supervisor can do.
    #[cfg(feature = "python")]
    pub(crate) fn needs_supervisor(&self) -> bool {
        self.workers > 1 || self.workers_lifetime.is_some() || self.workers_max_rss.is_some()
    }

    /// Splits a `name:value` header option.
    pub(crate) fn parse_header(&self, h: &str) -> Result<(String, String), String> {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("invalid header {h:?}: expected NAME:VALUE"))?;
        let name = name.trim();
        if !http::is_token(name.as_bytes()) {
            return Err(format!("invalid header name in {h:?}"));
        }
        let value = value.trim();
        if !http::is_field_value(value.as_bytes()) {
            return Err(format!("invalid header value in {h:?}"));
        }
        Ok((name.to_ascii_lowercase(), value.to_owned()))
    }
}

impl ServerConfig {
    /// The WebSocket settings, or None when WebSockets are off.
    pub(crate) fn ws_settings(&self) -> Option<crate::server::WsSettings> {
        use std::time::Duration;
        let secs = |v: Option<f64>| v.filter(|&s| s > 0.0).map(Duration::from_secs_f64);
        (self.ws != "none").then(|| crate::server::WsSettings {
            max_size: self.ws_max_size,
            max_queue: self.ws_max_queue,
            ping_interval: secs(self.ws_ping_interval),
            ping_timeout: secs(self.ws_ping_timeout),
            per_message_deflate: self.ws_per_message_deflate,
        })
    }
}

/// Loopback only: a proxy on the same host.
const DEFAULT_FORWARDED_ALLOW_IPS: &str = "127.0.0.1,::1";

impl ServerConfig {
    /// The peers trusted with proxy headers, or None when proxy headers are
    /// off. Without `forwarded_allow_ips`, uvicorn's `FORWARDED_ALLOW_IPS`
    /// environment variable, else loopback.
    pub(crate) fn trusted_proxies(
        &self,
    ) -> Result<Option<cormorant_core::asgi::TrustedProxies>, String> {
        if !self.proxy_headers {
            return Ok(None);
        }
        let list = match &self.forwarded_allow_ips {
            Some(l) => l.clone(),
            None => std::env::var("FORWARDED_ALLOW_IPS")
                .unwrap_or_else(|_| DEFAULT_FORWARDED_ALLOW_IPS.to_owned()),
        };
        cormorant_core::asgi::TrustedProxies::parse(&list)
            .map(Some)
            .map_err(|e| e.to_string())
    }

    /// The static file routes, as (route, directory) pairs. One mount
    /// without a route is served under `/static`, as granian does.
    pub(crate) fn static_routes(&self) -> Result<Vec<(String, String)>, String> {
        let routes = match (self.static_path_route.len(), self.static_path_mount.len()) {
            (0, 1) => vec!["/static".to_owned()],
            (r, m) if r == m => self.static_path_route.clone(),
            _ => {
                return Err(
                    "--static-path-route and --static-path-mount must come in pairs".into(),
                );
            }
        };
        Ok(routes
            .into_iter()
            .zip(self.static_path_mount.iter().cloned())
            .collect())
    }

    fn validate_proxy_static(&self) -> Result<(), String> {
        self.trusted_proxies()?;
        for (route, dir) in self.static_routes()? {
            if !route.starts_with('/') {
                return Err(format!("static path route {route:?} must start with '/'"));
            }
            if !std::path::Path::new(&dir).is_dir() {
                return Err(format!("static path mount {dir:?} is not a directory"));
            }
        }
        Ok(())
    }
}
