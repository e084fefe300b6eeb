//! Server configuration: one typed struct, declared once. The command
//! line is derived from it (clap), and the Python API and the embedding
//! API read the same struct from JSON (serde); defaults live in the
//! `#[arg]` attributes and nowhere else.

pub mod cpus;
mod values;

use std::time::Duration;

use clap::{Args, FromArgMatches};
use serde::{Deserialize, Serialize};

use crate::tls::TlsSettings;
pub use values::Level;
pub use values::{
    ClientAuth, HttpVersions, Interface, Lifespan, Loop, ProxyProtocol, ResponseHeader,
    TlsVersionMin, WsMode,
};
use values::{
    choice, one_or_many, parse_seconds, parse_umask, parse_workers, seconds, umask, worker_count,
};

/// Every setting of a server run. Each field is a flag of the `cormorant`
/// command (its doc comment is the help), an environment variable
/// (`CORMORANT_` and the field's name), a settings-file key and a key of
/// the JSON the Python API hands over.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The application, as `module:attribute` (the command's APP).
    #[arg(skip)]
    pub target: Option<String>,
    /// Treat APP as a factory: call it with no arguments to get the app.
    #[arg(long)]
    pub factory: bool,
    /// Look for APP's module in this directory first.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub app_dir: String,
    /// Bind to this address.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Bind to this port (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Bind to this Unix domain socket instead.
    #[arg(long, value_name = "PATH")]
    pub uds: Option<String>,
    /// Serve on this already bound socket file descriptor.
    #[arg(long)]
    pub fd: Option<i32>,
    /// Maximum number of pending connections.
    #[arg(long, default_value_t = 2048)]
    pub backlog: i32,
    /// Number of worker processes; `auto` (or 0): one per CPU this process
    /// may use (the cgroup CPU limit rounded up, within the affinity mask).
    #[arg(long, value_parser = parse_workers, default_value = "1", value_name = "N|auto")]
    #[serde(with = "worker_count")]
    pub workers: usize,
    /// Event loop implementation.
    #[arg(id = "loop", long = "loop", value_enum, default_value_t = Loop::Auto)]
    #[serde(rename = "loop", with = "choice")]
    pub loop_impl: Loop,
    /// The application's interface: auto (detected from the callable: a
    /// coroutine function is ASGI, `(environ, start_response)` is WSGI),
    /// asgi or wsgi.
    #[arg(long, value_enum, default_value_t = Interface::Auto)]
    #[serde(with = "choice")]
    pub interface: Interface,
    /// WSGI: application threads per worker (a request beyond them waits
    /// its turn); the I/O runs apart and never waits for them. The default
    /// overlaps a few requests waiting on a database. 1 runs a request
    /// whose body has arrived on the worker's own thread, with no hand-over:
    /// the fastest for apps that never wait, but the worker's I/O waits
    /// while the app runs.
    #[arg(long, alias = "wsgi-threads", default_value_t = 4, value_name = "N")]
    pub blocking_threads: usize,
    /// Lifespan protocol: auto (use it if the app supports it), on, off.
    #[arg(long, value_enum, default_value_t = Lifespan::Auto)]
    #[serde(with = "choice")]
    pub lifespan: Lifespan,
    /// Log level.
    #[arg(long, value_enum, default_value_t = Level::Info)]
    #[serde(with = "choice")]
    pub log_level: Level,
    /// Log every request (logger `cormorant.access`).
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value_t = false, value_name = "BOOL")]
    pub access_log: bool,
    /// ASGI root_path: where the app is mounted.
    #[arg(long, default_value = "")]
    pub root_path: String,
    /// Close idle keep-alive connections after this many seconds.
    #[arg(long, value_parser = parse_seconds, default_value = "5", value_name = "SECONDS")]
    #[serde(with = "seconds")]
    pub timeout_keep_alive: Duration,
    /// Close a connection whose request head takes longer than this many
    /// seconds to arrive, from its first byte (slow-client protection).
    #[arg(long, value_parser = parse_seconds, default_value = "30", value_name = "SECONDS")]
    #[serde(with = "seconds")]
    pub timeout_request_head: Duration,
    /// Answer 408 when a request body stalls this many seconds while the
    /// server waits for it (0: no limit).
    #[arg(long, value_parser = parse_seconds, default_value = "60", value_name = "SECONDS")]
    #[serde(with = "seconds")]
    pub timeout_request_body: Duration,
    /// Seconds to let in-flight requests finish on shutdown (default: wait).
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS")]
    #[serde(with = "seconds::optional")]
    pub timeout_graceful_shutdown: Option<Duration>,
    /// Answer this path (`GET /healthz`) in the server, without calling the
    /// app: 200, or 503 once the server is stopping, so that a load balancer
    /// takes it out of rotation. Never shed; logged at debug level only.
    #[arg(long, value_name = "PATH")]
    pub health_path: Option<String>,
    /// On SIGTERM, keep serving this many seconds while the health path
    /// answers 503, then stop accepting (SIGINT skips the delay). Give the
    /// load balancer at least its check interval times its fall count.
    #[arg(long, value_parser = parse_seconds, default_value = "0", value_name = "SECONDS")]
    #[serde(with = "seconds")]
    pub drain_delay: Duration,
    /// Give each request an ID: an `X-Request-ID` from a trusted proxy (or
    /// through a PROXY protocol header) is kept, else one is made. The app
    /// gets it as that header and `scope["extensions"]["request_id"]`; the
    /// response echoes it; the access log shows it as `%(request_id)s`.
    #[arg(long)]
    pub request_id: bool,
    /// Give the app `X-Request-Start: t=<microseconds since the epoch>`,
    /// when the request's head began to arrive, for APM queue-time reports.
    #[arg(long)]
    pub request_start_header: bool,
    /// Answer 503 (with `Retry-After`) instead of starting the app for a
    /// request that waited longer than this many milliseconds since its
    /// head began to arrive: under overload, served requests stay fast and
    /// the rest fail fast. The health path is exempt.
    #[arg(long, value_name = "MS")]
    pub max_queue_time: Option<u64>,
    /// Most requests handled at once; more get 503 Service Unavailable.
    #[arg(long)]
    pub limit_concurrency: Option<usize>,
    /// Stop a worker after this many requests.
    #[arg(long)]
    pub limit_max_requests: Option<u64>,
    /// Send the `Server` header (`--no-server-header`: do not).
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value_t = true, value_name = "BOOL")]
    pub server_header: bool,
    /// Send the `Date` header (`--no-date-header`: do not).
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value_t = true, value_name = "BOOL")]
    pub date_header: bool,
    /// Add a response header, as NAME:VALUE (repeatable).
    #[arg(long = "header", value_delimiter = ',', value_name = "NAME:VALUE")]
    pub headers: Vec<ResponseHeader>,
    /// Longest request-line in bytes (longer: 414).
    #[arg(long, default_value_t = 8 * 1024)]
    pub limit_request_line: usize,
    /// Most request header fields (more: 431).
    #[arg(long, default_value_t = 100)]
    pub limit_request_fields: usize,
    /// Largest request head in bytes (larger: 431).
    #[arg(long, default_value_t = 64 * 1024)]
    pub limit_request_head_size: usize,
    /// Largest request body in bytes, 0 for no limit (larger: 413).
    #[arg(long, default_value_t = 0)]
    pub limit_request_body: u64,
    /// WebSocket support: auto (on) or none (upgrade requests are served as
    /// plain HTTP). `websockets` and `wsproto` are accepted as auto.
    #[arg(long, value_enum, default_value_t = WsMode::Auto)]
    #[serde(with = "choice")]
    pub ws: WsMode,
    /// Largest WebSocket message in bytes (larger: close 1009).
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub ws_max_size: usize,
    /// WebSocket messages buffered for the app before reading pauses.
    #[arg(long, default_value_t = 32)]
    pub ws_max_queue: usize,
    /// Seconds between WebSocket pings (0: none).
    #[arg(long, value_parser = parse_seconds, default_value = "20", value_name = "SECONDS")]
    #[serde(with = "seconds")]
    pub ws_ping_interval: Duration,
    /// Seconds to wait for a pong before closing a dead connection (0: wait).
    #[arg(long, value_parser = parse_seconds, default_value = "20", value_name = "SECONDS")]
    #[serde(with = "seconds")]
    pub ws_ping_timeout: Duration,
    /// Negotiate permessage-deflate compression (RFC 7692): true or false.
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true, value_name = "BOOL")]
    pub ws_per_message_deflate: bool,
    /// HTTP versions: auto (HTTP/1.1, and HTTP/2 by ALPN or h2c prior
    /// knowledge), 1 or 2.
    #[arg(long, value_enum, default_value_t = HttpVersions::Auto)]
    #[serde(with = "choice")]
    pub http: HttpVersions,
    /// Most concurrent HTTP/2 streams per connection.
    #[arg(long, default_value_t = 200)]
    pub http2_max_concurrent_streams: u32,
    /// Initial HTTP/2 stream flow-control window, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub http2_initial_stream_window_size: u32,
    /// Initial HTTP/2 connection flow-control window, in bytes.
    #[arg(long, default_value_t = 2 * 1024 * 1024)]
    pub http2_initial_connection_window_size: u32,
    /// Size HTTP/2 windows from the measured bandwidth-delay product.
    #[arg(long)]
    pub http2_adaptive_window: bool,
    /// Largest HTTP/2 frame payload accepted, in bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    pub http2_max_frame_size: u32,
    /// Largest HTTP/2 request header list, in bytes (larger: 431).
    #[arg(long, default_value_t = 64 * 1024)]
    pub http2_max_header_list_size: u32,
    /// Seconds between HTTP/2 keep-alive pings (0: none).
    #[arg(long, value_parser = parse_seconds, default_value = "0", value_name = "SECONDS")]
    #[serde(with = "seconds")]
    pub http2_keep_alive_interval: Duration,
    /// Seconds to wait for a keep-alive ping's answer before closing.
    #[arg(long, value_parser = parse_seconds, default_value = "20", value_name = "SECONDS")]
    #[serde(with = "seconds")]
    pub http2_keep_alive_timeout: Duration,
    /// Also serve HTTP/3 over QUIC, on the same port over UDP (needs TLS).
    /// Responses over TCP then advertise it with `Alt-Svc`.
    #[arg(long)]
    pub http3: bool,
    /// Most concurrent HTTP/3 request streams per connection.
    #[arg(long, default_value_t = 200)]
    pub http3_max_concurrent_streams: u32,
    /// Seconds a QUIC connection may stay silent before it is closed (0:
    /// no limit).
    #[arg(long, value_parser = parse_seconds, default_value = "30", value_name = "SECONDS")]
    #[serde(with = "seconds")]
    pub http3_idle_timeout: Duration,
    /// QUIC flow-control window of each request stream, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub http3_stream_window_size: u32,
    /// QUIC flow-control window of a connection, in bytes.
    #[arg(long, default_value_t = 2 * 1024 * 1024)]
    pub http3_connection_window_size: u32,
    /// Accept requests in 0-RTT early data on resumed QUIC connections.
    /// Off by default: an attacker can replay early data, so only turn it
    /// on for apps whose every request is safe to repeat.
    #[arg(long = "http3-0rtt")]
    pub http3_0rtt: bool,
    /// Serve TLS with this PEM certificate chain.
    #[arg(long, alias = "ssl-certificate", value_name = "FILE")]
    pub ssl_certfile: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 RSA, SEC1 EC, or encrypted PKCS#8).
    #[arg(long, value_name = "FILE")]
    pub ssl_keyfile: Option<String>,
    /// Password of an encrypted private key.
    #[arg(long, value_name = "PASSWORD")]
    pub ssl_keyfile_password: Option<String>,
    /// PEM CA certificates that client certificates must chain to.
    #[arg(long, alias = "ssl-ca", value_name = "FILE")]
    pub ssl_ca_certs: Option<String>,
    /// Client certificates: none, optional or required (0, 1, 2 as in
    /// uvicorn; `--ssl-client-verify` is required).
    #[arg(long, value_enum, default_value_t = ClientAuth::None)]
    #[serde(with = "choice")]
    pub ssl_cert_reqs: ClientAuth,
    /// Certificate revocation list(s) for client certificates (PEM or DER).
    #[arg(long, value_name = "FILE")]
    pub ssl_crl: Option<String>,
    /// Oldest TLS version accepted.
    #[arg(long, value_enum, default_value_t = TlsVersionMin::Tls12)]
    #[serde(with = "choice")]
    pub ssl_protocol_min: TlsVersionMin,
    /// Allowed cipher suites, by name, separated by ':' or ','.
    #[arg(long, value_name = "SUITES")]
    pub ssl_ciphers: Option<String>,
    /// Seconds a TLS handshake may take before the connection is dropped.
    #[arg(long, value_parser = parse_seconds, default_value = "10", value_name = "SECONDS")]
    #[serde(with = "seconds")]
    pub timeout_tls_handshake: Duration,
    /// Access line format, with `%(atom)s` atoms: client, method, path,
    /// query, request, protocol, scheme, status, bytes, duration, and
    /// `%({header}i)s` for a request header.
    #[arg(long, value_name = "FORMAT")]
    pub access_log_format: Option<String>,
    /// Log one JSON object per line (both loggers).
    #[arg(long)]
    pub log_json: bool,
    /// Colour level names (default: when stderr is a terminal;
    /// `--no-use-colors`: never).
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    pub use_colors: Option<bool>,
    /// Logging configuration: a JSON, YAML or INI file for Python's
    /// `logging.config` (loggers `cormorant.error` and `cormorant.access`).
    #[arg(long, value_name = "FILE")]
    pub log_config: Option<String>,
    /// Load environment variables from this dotenv file before the app is
    /// imported.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<String>,
    /// Restart the worker when a watched file changes (development).
    #[arg(long)]
    pub reload: bool,
    /// Directory to watch (repeatable; default: the working directory).
    #[arg(long = "reload-dir", value_delimiter = ',', value_name = "DIR")]
    #[serde(deserialize_with = "one_or_many::deserialize")]
    pub reload_dirs: Vec<String>,
    /// Glob pattern of more files to watch than `*.py` (repeatable).
    #[arg(long = "reload-include", value_delimiter = ',', value_name = "GLOB")]
    #[serde(deserialize_with = "one_or_many::deserialize")]
    pub reload_includes: Vec<String>,
    /// Glob pattern of files or directories not to watch (repeatable).
    #[arg(long = "reload-exclude", value_delimiter = ',', value_name = "GLOB")]
    #[serde(deserialize_with = "one_or_many::deserialize")]
    pub reload_excludes: Vec<String>,
    /// Seconds to let a burst of changes settle before restarting.
    #[arg(long, value_parser = parse_seconds, default_value = "0.25", value_name = "SECONDS")]
    #[serde(with = "seconds")]
    pub reload_delay: Duration,
    /// Serve Prometheus metrics for all workers on `GET /metrics`.
    #[arg(long)]
    pub metrics: bool,
    /// Address of the metrics endpoint.
    #[arg(long, default_value = "127.0.0.1")]
    pub metrics_address: String,
    /// Port of the metrics endpoint.
    #[arg(long, default_value_t = 9090)]
    pub metrics_port: u16,
    /// Take the client, scheme and host from `Forwarded` / `X-Forwarded-*`
    /// when the peer is in --forwarded-allow-ips (the default;
    /// `--no-proxy-headers`: ignore them).
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value_t = true, value_name = "BOOL")]
    pub proxy_headers: bool,
    /// Peers trusted with proxy headers: IPs, networks (10.0.0.0/8) or *,
    /// comma-separated [default: $FORWARDED_ALLOW_IPS, else 127.0.0.1,::1].
    #[arg(long, value_name = "LIST")]
    #[serde(deserialize_with = "one_or_many::joined")]
    pub forwarded_allow_ips: Option<String>,
    /// Read a PROXY protocol header (v1, v2, or auto: either, when one is
    /// sent) at the start of each TCP connection from a peer in
    /// --forwarded-allow-ips: it names the client (and server) address.
    /// Others may not send one.
    #[arg(long, value_enum, default_value_t = ProxyProtocol::Off)]
    #[serde(with = "choice")]
    pub proxy_protocol: ProxyProtocol,
    /// URL prefix answered from the files of the matching
    /// --static-path-mount (repeatable, in pairs) [default: /static].
    #[arg(long, value_delimiter = ',', value_name = "ROUTE")]
    #[serde(deserialize_with = "one_or_many::deserialize")]
    pub static_path_route: Vec<String>,
    /// Directory whose files are served under the matching route.
    #[arg(long, value_delimiter = ',', value_name = "DIR")]
    #[serde(deserialize_with = "one_or_many::deserialize")]
    pub static_path_mount: Vec<String>,
    /// Cache-Control max-age of static files, in seconds (0: none).
    #[arg(long, default_value_t = 86400, value_name = "SECONDS")]
    pub static_path_expires: u64,
    // Worker management (the supervisor).
    /// Add a random 0..=N to each worker's --limit-max-requests, so that
    /// workers do not all restart at once.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub limit_max_requests_jitter: u64,
    /// Replace each worker after this many seconds (rolling, staggered).
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS")]
    #[serde(with = "seconds::optional")]
    pub workers_lifetime: Option<Duration>,
    /// Replace a worker whose event loop has not turned for this many
    /// seconds (a blocking call in async code, a deadlock), after writing
    /// the Python stack of each of its threads to the log.
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS")]
    #[serde(with = "seconds::optional")]
    pub timeout_worker_healthcheck: Option<Duration>,
    /// Replace a worker whose resident memory exceeds this many MiB.
    #[arg(long, value_name = "MIB")]
    pub workers_max_rss: Option<u64>,
    /// Replace a worker that dies (true); false: a dead worker stops the
    /// server.
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true, value_name = "BOOL")]
    pub respawn_failed_workers: bool,
    /// Write the server's pid to this file (removed at exit).
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<String>,
    /// Serve as this user (a name or a uid) once the sockets are bound: the
    /// application never runs as the user who started the server. Its
    /// group is the user's own, unless `--group` names another.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Serve as this group (a name or a gid) once the sockets are bound.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// The file mode creation mask, in octal (`022`), set first: it applies
    /// to the Unix socket, the pid file and every file the server makes.
    #[arg(long, value_parser = parse_umask, value_name = "MASK")]
    #[serde(with = "umask")]
    pub umask: Option<u32>,
}

impl Default for ServerConfig {
    /// The defaults of the `#[arg]` attributes, read without the
    /// environment.
    fn default() -> Self {
        let command = Self::augment_args(clap::Command::new("defaults"));
        let matches = command
            .try_get_matches_from(["defaults"])
            .expect("every setting has a default");
        Self::from_arg_matches(&matches).expect("the defaults parse")
    }
}

impl ServerConfig {
    /// Whether the listeners serve TLS.
    pub fn serves_tls(&self) -> bool {
        self.ssl_certfile.is_some()
    }

    /// The TLS settings, when a certificate is configured. ALPN follows
    /// `--http`.
    pub fn tls_settings(&self) -> Option<TlsSettings> {
        let (Some(cert), Some(key)) = (&self.ssl_certfile, &self.ssl_keyfile) else {
            return None;
        };
        Some(TlsSettings {
            certfile: cert.into(),
            keyfile: key.into(),
            keyfile_password: self.ssl_keyfile_password.clone(),
            ca_certs: self.ssl_ca_certs.as_ref().map(Into::into),
            client_auth: self.ssl_cert_reqs,
            crl: self.ssl_crl.as_ref().map(Into::into),
            protocol_min: self.ssl_protocol_min,
            // uvicorn's default ("TLSv1", an OpenSSL cipher string) means
            // "every suite".
            ciphers: self
                .ssl_ciphers
                .clone()
                .filter(|c| !c.is_empty() && c != "TLSv1"),
            alpn: self.http.alpn(),
        })
    }

    /// The protocols served, for the startup line: `HTTP/1.1, HTTP/2,
    /// HTTP/3`.
    pub fn protocol_names(&self) -> String {
        let names = self.http.names();
        if self.http3 {
            format!("{names}, HTTP/3")
        } else {
            names.to_owned()
        }
    }

    /// Checks what the types alone do not: ranges, and settings that only
    /// make sense together.
    pub fn validate(&self) -> Result<(), String> {
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
        if self.http3 && self.ssl_certfile.is_none() {
            return Err("--http3 needs TLS: give --ssl-certfile and --ssl-keyfile".into());
        }
        if self.http3 && self.uds.is_some() {
            return Err("--http3 needs a TCP port, not --uds".into());
        }
        match (&self.ssl_certfile, &self.ssl_keyfile) {
            (Some(_), None) => return Err("--ssl-certfile needs --ssl-keyfile".into()),
            (None, Some(_)) => return Err("--ssl-keyfile needs --ssl-certfile".into()),
            _ => {}
        }
        if let Some(f) = &self.access_log_format {
            crate::access_format::AccessFormat::parse(f)?;
        }
        if !(1..=1024).contains(&self.blocking_threads) {
            return Err(format!(
                "invalid --blocking-threads {}: must be between 1 and 1024",
                self.blocking_threads
            ));
        }
        if self.ws_max_size == 0 || self.ws_max_queue == 0 {
            return Err("ws-max-size and ws-max-queue must be at least 1".into());
        }
        if self.timeout_request_head.is_zero() {
            return Err("timeout-request-head must be a positive number of seconds".into());
        }
        if self.workers_lifetime.is_some_and(|l| l.is_zero()) {
            return Err("workers-lifetime must be a positive number of seconds".into());
        }
        if self.max_queue_time == Some(0) {
            return Err("max-queue-time must be at least 1 (ms)".into());
        }
        if self
            .timeout_worker_healthcheck
            .is_some_and(|t| t < Duration::from_millis(100))
        {
            return Err("timeout-worker-healthcheck must be at least 0.1 seconds".into());
        }
        if self.workers_max_rss == Some(0) {
            return Err("workers-max-rss must be at least 1 (MiB)".into());
        }
        if self.health_path.as_ref().is_some_and(|p| {
            !p.starts_with('/') || p.contains(['?', '#']) || p.contains(char::is_whitespace)
        }) {
            return Err("health-path must be a path such as /healthz (no query)".into());
        }
        self.validate_proxy_static()
    }

    /// The configuration with `--workers auto` (0) made a count: the CPUs
    /// this process may use ([`cpus::available`]).
    #[must_use]
    pub fn with_workers_resolved(self) -> Self {
        if self.workers == 0 {
            return Self {
                workers: cpus::available(),
                ..self
            };
        }
        self
    }

    /// Whether worker processes under a supervisor are needed: several
    /// workers, or recycling that only a supervisor can do.
    pub fn needs_supervisor(&self) -> bool {
        self.workers > 1
            || self.workers_lifetime.is_some()
            || self.workers_max_rss.is_some()
            || self.timeout_worker_healthcheck.is_some()
    }
}

/// Loopback only: a proxy on the same host.
const DEFAULT_FORWARDED_ALLOW_IPS: &str = "127.0.0.1,::1";

impl ServerConfig {
    /// The peers trusted with proxy headers, or None when proxy headers are
    /// off. Without `forwarded_allow_ips`, uvicorn's `FORWARDED_ALLOW_IPS`
    /// environment variable, else loopback.
    pub fn trusted_proxies(&self) -> Result<Option<cormorant_core::asgi::TrustedProxies>, String> {
        if !self.proxy_headers {
            return Ok(None);
        }
        self.forwarded_allow_list().map(Some)
    }

    /// The peers trusted with a PROXY protocol header, or None when
    /// `--proxy-protocol` is off: the same list, whether or not proxy
    /// headers are read.
    pub fn proxy_protocol_peers(
        &self,
    ) -> Result<Option<cormorant_core::asgi::TrustedProxies>, String> {
        if self.proxy_protocol == ProxyProtocol::Off {
            return Ok(None);
        }
        self.forwarded_allow_list().map(Some)
    }

    /// `--forwarded-allow-ips`, else `$FORWARDED_ALLOW_IPS`, else loopback.
    fn forwarded_allow_list(&self) -> Result<cormorant_core::asgi::TrustedProxies, String> {
        let list = match &self.forwarded_allow_ips {
            Some(l) => l.clone(),
            None => std::env::var("FORWARDED_ALLOW_IPS")
                .unwrap_or_else(|_| DEFAULT_FORWARDED_ALLOW_IPS.to_owned()),
        };
        cormorant_core::asgi::TrustedProxies::parse(&list).map_err(|e| e.to_string())
    }

    /// The static file routes, as (route, directory) pairs. One mount
    /// without a route is served under `/static`, as granian does.
    pub fn static_routes(&self) -> Result<Vec<(String, String)>, String> {
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
        self.proxy_protocol_peers()?;
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

#[cfg(test)]
mod tests;
