//! The `cormorant` command line (clap); every flag also reads a
//! `CORMORANT_*` environment variable.

use clap::Parser;

use crate::config::ServerConfig;

/// Cormorant: a fast ASGI server for Python, written in Rust.
#[derive(Debug, Parser)]
#[command(name = "cormorant", version, about, max_term_width = 100)]
pub(crate) struct Cli {
    /// The ASGI application, as `module:attribute`.
    #[arg(env = "CORMORANT_APP", value_name = "APP")]
    app: String,
    /// Read settings from this TOML file (default: `cormorant.toml`, or
    /// `[tool.cormorant]` in `pyproject.toml`, in the working directory).
    /// Keys are the flags' names; flags and environment variables win.
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    /// Treat APP as a factory: call it with no arguments to get the app.
    #[arg(long, env = "CORMORANT_FACTORY")]
    factory: bool,
    /// Look for APP's module in this directory first.
    #[arg(long, env = "CORMORANT_APP_DIR", default_value = ".")]
    app_dir: String,
    /// Bind to this address.
    #[arg(long, env = "CORMORANT_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Bind to this port (0 picks a free one).
    #[arg(long, env = "CORMORANT_PORT", default_value_t = 8000)]
    port: u16,
    /// Bind to this Unix domain socket instead.
    #[arg(long, env = "CORMORANT_UDS")]
    uds: Option<String>,
    /// Serve on this already bound socket file descriptor.
    #[arg(long, env = "CORMORANT_FD")]
    fd: Option<i32>,
    /// Maximum number of pending connections.
    #[arg(long, env = "CORMORANT_BACKLOG", default_value_t = 2048)]
    backlog: i32,
    /// Number of worker processes.
    #[arg(long, env = "CORMORANT_WORKERS", default_value_t = 1)]
    workers: usize,
    /// Event loop implementation.
    #[arg(long = "loop", env = "CORMORANT_LOOP", default_value = "auto",
          value_parser = ["auto", "asyncio", "uvloop"])]
    loop_impl: String,
    /// Lifespan protocol: auto (use it if the app supports it), on, off.
    #[arg(long, env = "CORMORANT_LIFESPAN", default_value = "auto",
          value_parser = ["auto", "on", "off"])]
    lifespan: String,
    /// Log level.
    #[arg(long, env = "CORMORANT_LOG_LEVEL", default_value = "info",
          value_parser = ["critical", "error", "warning", "info", "debug", "trace"])]
    log_level: String,
    /// Log every request (logger `cormorant.access`).
    #[arg(long, env = "CORMORANT_ACCESS_LOG", overrides_with = "no_access_log")]
    access_log: bool,
    /// Do not log requests (the default).
    #[arg(long, hide = true)]
    no_access_log: bool,
    /// ASGI root_path: where the app is mounted.
    #[arg(long, env = "CORMORANT_ROOT_PATH", default_value = "")]
    root_path: String,
    /// Close idle keep-alive connections after this many seconds.
    #[arg(long, env = "CORMORANT_TIMEOUT_KEEP_ALIVE", default_value_t = 5.0)]
    timeout_keep_alive: f64,
    /// Close a connection whose request head takes longer than this many
    /// seconds to arrive, from its first byte (slow-client protection).
    #[arg(long, env = "CORMORANT_TIMEOUT_REQUEST_HEAD", default_value_t = 30.0)]
    timeout_request_head: f64,
    /// Answer 408 when a request body stalls this many seconds while the
    /// server waits for it (0: no limit).
    #[arg(long, env = "CORMORANT_TIMEOUT_REQUEST_BODY", default_value_t = 60.0)]
    timeout_request_body: f64,
    /// Seconds to let in-flight requests finish on shutdown (default: wait).
    #[arg(long, env = "CORMORANT_TIMEOUT_GRACEFUL_SHUTDOWN")]
    timeout_graceful_shutdown: Option<f64>,
    /// Most requests handled at once; more get 503 Service Unavailable.
    #[arg(long, env = "CORMORANT_LIMIT_CONCURRENCY")]
    limit_concurrency: Option<usize>,
    /// Stop a worker after this many requests.
    #[arg(long, env = "CORMORANT_LIMIT_MAX_REQUESTS")]
    limit_max_requests: Option<u64>,
    /// Do not send the `Server` header.
    #[arg(long, env = "CORMORANT_NO_SERVER_HEADER")]
    no_server_header: bool,
    /// Do not send the `Date` header.
    #[arg(long, env = "CORMORANT_NO_DATE_HEADER")]
    no_date_header: bool,
    /// Add a response header, as NAME:VALUE (repeatable).
    #[arg(
        long = "header",
        env = "CORMORANT_HEADERS",
        value_delimiter = ',',
        value_name = "NAME:VALUE"
    )]
    headers: Vec<String>,
    /// Longest request-line in bytes (longer: 414).
    #[arg(long, env = "CORMORANT_LIMIT_REQUEST_LINE", default_value_t = 8 * 1024)]
    limit_request_line: usize,
    /// Most request header fields (more: 431).
    #[arg(long, env = "CORMORANT_LIMIT_REQUEST_FIELDS", default_value_t = 100)]
    limit_request_fields: usize,
    /// Largest request head in bytes (larger: 431).
    #[arg(long, env = "CORMORANT_LIMIT_REQUEST_HEAD_SIZE", default_value_t = 64 * 1024)]
    limit_request_head_size: usize,
    /// Largest request body in bytes, 0 for no limit (larger: 413).
    #[arg(long, env = "CORMORANT_LIMIT_REQUEST_BODY", default_value_t = 0)]
    limit_request_body: u64,
    /// WebSocket support: auto (on) or none (upgrade requests are served as
    /// plain HTTP). `websockets` and `wsproto` are accepted as auto.
    #[arg(long, env = "CORMORANT_WS", default_value = "auto",
          value_parser = ["auto", "none", "websockets", "wsproto"])]
    ws: String,
    /// Largest WebSocket message in bytes (larger: close 1009).
    #[arg(long, env = "CORMORANT_WS_MAX_SIZE", default_value_t = 16 * 1024 * 1024)]
    ws_max_size: usize,
    /// WebSocket messages buffered for the app before reading pauses.
    #[arg(long, env = "CORMORANT_WS_MAX_QUEUE", default_value_t = 32)]
    ws_max_queue: usize,
    /// Seconds between WebSocket pings (0: none).
    #[arg(long, env = "CORMORANT_WS_PING_INTERVAL", default_value_t = 20.0)]
    ws_ping_interval: f64,
    /// Seconds to wait for a pong before closing a dead connection (0: wait).
    #[arg(long, env = "CORMORANT_WS_PING_TIMEOUT", default_value_t = 20.0)]
    ws_ping_timeout: f64,
    /// Negotiate permessage-deflate compression (RFC 7692): true or false.
    #[arg(long, env = "CORMORANT_WS_PER_MESSAGE_DEFLATE", default_value_t = true,
          action = clap::ArgAction::Set, value_name = "BOOL")]
    ws_per_message_deflate: bool,
    /// HTTP versions: auto (HTTP/1.1, and HTTP/2 by ALPN or h2c prior
    /// knowledge), 1 or 2.
    #[arg(long, env = "CORMORANT_HTTP", default_value = "auto",
          value_parser = ["auto", "1", "2"])]
    http: String,
    /// Most concurrent HTTP/2 streams per connection.
    #[arg(
        long,
        env = "CORMORANT_HTTP2_MAX_CONCURRENT_STREAMS",
        default_value_t = 200
    )]
    http2_max_concurrent_streams: u32,
    /// Initial HTTP/2 stream flow-control window, in bytes.
    #[arg(long, env = "CORMORANT_HTTP2_INITIAL_STREAM_WINDOW_SIZE", default_value_t = 1024 * 1024)]
    http2_initial_stream_window_size: u32,
    /// Initial HTTP/2 connection flow-control window, in bytes.
    #[arg(long, env = "CORMORANT_HTTP2_INITIAL_CONNECTION_WINDOW_SIZE",
          default_value_t = 2 * 1024 * 1024)]
    http2_initial_connection_window_size: u32,
    /// Size HTTP/2 windows from the measured bandwidth-delay product.
    #[arg(long, env = "CORMORANT_HTTP2_ADAPTIVE_WINDOW")]
    http2_adaptive_window: bool,
    /// Largest HTTP/2 frame payload accepted, in bytes.
    #[arg(long, env = "CORMORANT_HTTP2_MAX_FRAME_SIZE", default_value_t = 16 * 1024)]
    http2_max_frame_size: u32,
    /// Largest HTTP/2 request header list, in bytes (larger: 431).
    #[arg(long, env = "CORMORANT_HTTP2_MAX_HEADER_LIST_SIZE", default_value_t = 64 * 1024)]
    http2_max_header_list_size: u32,
    /// Seconds between HTTP/2 keep-alive pings (default: none).
    #[arg(long, env = "CORMORANT_HTTP2_KEEP_ALIVE_INTERVAL")]
    http2_keep_alive_interval: Option<f64>,
    /// Seconds to wait for a keep-alive ping's answer before closing.
    #[arg(
        long,
        env = "CORMORANT_HTTP2_KEEP_ALIVE_TIMEOUT",
        default_value_t = 20.0
    )]
    http2_keep_alive_timeout: f64,
    /// Serve TLS with this PEM certificate chain.
    #[arg(
        long,
        env = "CORMORANT_SSL_CERTFILE",
        alias = "ssl-certificate",
        value_name = "FILE"
    )]
    ssl_certfile: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 RSA, SEC1 EC, or encrypted PKCS#8).
    #[arg(long, env = "CORMORANT_SSL_KEYFILE", value_name = "FILE")]
    ssl_keyfile: Option<String>,
    /// Password of an encrypted private key.
    #[arg(long, env = "CORMORANT_SSL_KEYFILE_PASSWORD", value_name = "PASSWORD")]
    ssl_keyfile_password: Option<String>,
    /// PEM CA certificates that client certificates must chain to.
    #[arg(
        long,
        env = "CORMORANT_SSL_CA_CERTS",
        alias = "ssl-ca",
        value_name = "FILE"
    )]
    ssl_ca_certs: Option<String>,
    /// Client certificates: none, optional or required (0, 1, 2 as in
    /// uvicorn).
    #[arg(long, env = "CORMORANT_SSL_CERT_REQS", default_value = "none",
          value_parser = ["none", "optional", "required", "0", "1", "2"])]
    ssl_cert_reqs: String,
    /// Require client certificates (granian's name for
    /// `--ssl-cert-reqs required`).
    #[arg(long, hide = true)]
    ssl_client_verify: bool,
    /// Certificate revocation list(s) for client certificates (PEM or DER).
    #[arg(long, env = "CORMORANT_SSL_CRL", value_name = "FILE")]
    ssl_crl: Option<String>,
    /// Oldest TLS version accepted.
    #[arg(long, env = "CORMORANT_SSL_PROTOCOL_MIN", default_value = "tls1.2",
          value_parser = ["tls1.2", "tls1.3"])]
    ssl_protocol_min: String,
    /// Allowed cipher suites, by name, separated by ':' or ','.
    #[arg(long, env = "CORMORANT_SSL_CIPHERS", value_name = "SUITES")]
    ssl_ciphers: Option<String>,
    /// Seconds a TLS handshake may take before the connection is dropped.
    #[arg(long, env = "CORMORANT_TIMEOUT_TLS_HANDSHAKE", default_value_t = 10.0)]
    timeout_tls_handshake: f64,
    /// Access line format, with `%(atom)s` atoms: client, method, path,
    /// query, request, protocol, scheme, status, bytes, duration, and
    /// `%({header}i)s` for a request header.
    #[arg(long, env = "CORMORANT_ACCESS_LOG_FORMAT", value_name = "FORMAT")]
    access_log_format: Option<String>,
    /// Log one JSON object per line (both loggers).
    #[arg(long, env = "CORMORANT_LOG_JSON")]
    log_json: bool,
    /// Colour level names (default: when stderr is a terminal).
    #[arg(long, env = "CORMORANT_USE_COLORS", overrides_with = "no_use_colors")]
    use_colors: bool,
    /// Never colour level names.
    #[arg(long)]
    no_use_colors: bool,
    /// Logging configuration: a JSON, YAML or INI file for Python's
    /// `logging.config` (loggers `cormorant.error` and `cormorant.access`).
    #[arg(long, env = "CORMORANT_LOG_CONFIG", value_name = "FILE")]
    log_config: Option<String>,
    /// Load environment variables from this dotenv file before the app is
    /// imported.
    #[arg(long, env = "CORMORANT_ENV_FILE", value_name = "FILE")]
    env_file: Option<String>,
    /// Restart the worker when a watched file changes (development).
    #[arg(long, env = "CORMORANT_RELOAD")]
    reload: bool,
    /// Directory to watch (repeatable; default: the working directory).
    #[arg(
        long = "reload-dir",
        env = "CORMORANT_RELOAD_DIRS",
        value_delimiter = ',',
        value_name = "DIR"
    )]
    reload_dirs: Vec<String>,
    /// Glob pattern of more files to watch than `*.py` (repeatable).
    #[arg(
        long = "reload-include",
        env = "CORMORANT_RELOAD_INCLUDES",
        value_delimiter = ',',
        value_name = "GLOB"
    )]
    reload_includes: Vec<String>,
    /// Glob pattern of files or directories not to watch (repeatable).
    #[arg(
        long = "reload-exclude",
        env = "CORMORANT_RELOAD_EXCLUDES",
        value_delimiter = ',',
        value_name = "GLOB"
    )]
    reload_excludes: Vec<String>,
    /// Seconds to let a burst of changes settle before restarting.
    #[arg(long, env = "CORMORANT_RELOAD_DELAY", default_value_t = 0.25)]
    reload_delay: f64,
    /// Serve Prometheus metrics for all workers on `GET /metrics`.
    #[arg(long, env = "CORMORANT_METRICS")]
    metrics: bool,
    /// Address of the metrics endpoint.
    #[arg(long, env = "CORMORANT_METRICS_ADDRESS", default_value = "127.0.0.1")]
    metrics_address: String,
    /// Port of the metrics endpoint.
    #[arg(long, env = "CORMORANT_METRICS_PORT", default_value_t = 9090)]
    metrics_port: u16,
    /// Take the client, scheme and host from `Forwarded` / `X-Forwarded-*`
    /// when the peer is in --forwarded-allow-ips (the default).
    #[arg(long, env = "CORMORANT_PROXY_HEADERS", default_value_t = true,
          action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL",
          overrides_with = "no_proxy_headers")]
    proxy_headers: bool,
    /// Ignore proxy headers.
    #[arg(long, overrides_with = "proxy_headers")]
    no_proxy_headers: bool,
    /// Peers trusted with proxy headers: IPs, networks (10.0.0.0/8) or *,
    /// comma-separated [default: $FORWARDED_ALLOW_IPS, else 127.0.0.1,::1].
    #[arg(long, env = "CORMORANT_FORWARDED_ALLOW_IPS", value_name = "LIST")]
    forwarded_allow_ips: Option<String>,
    /// URL prefix answered from the files of the matching
    /// --static-path-mount (repeatable, in pairs) [default: /static].
    #[arg(
        long,
        env = "CORMORANT_STATIC_PATH_ROUTE",
        value_delimiter = ',',
        value_name = "ROUTE"
    )]
    static_path_route: Vec<String>,
    /// Directory whose files are served under the matching route.
    #[arg(
        long,
        env = "CORMORANT_STATIC_PATH_MOUNT",
        value_delimiter = ',',
        value_name = "DIR"
    )]
    static_path_mount: Vec<String>,
    /// Cache-Control max-age of static files, in seconds (0: none).
    #[arg(
        long,
        env = "CORMORANT_STATIC_PATH_EXPIRES",
        default_value_t = 86400,
        value_name = "SECONDS"
    )]
    static_path_expires: u64,
    // Worker management (the supervisor).
    /// Add a random 0..=N to each worker's --limit-max-requests, so that
    /// workers do not all restart at once.
    #[arg(
        long,
        env = "CORMORANT_LIMIT_MAX_REQUESTS_JITTER",
        default_value_t = 0,
        value_name = "N"
    )]
    limit_max_requests_jitter: u64,
    /// Replace each worker after this many seconds (rolling, staggered).
    #[arg(long, env = "CORMORANT_WORKERS_LIFETIME", value_name = "SECONDS")]
    workers_lifetime: Option<f64>,
    /// Replace a worker whose resident memory exceeds this many MiB.
    #[arg(long, env = "CORMORANT_WORKERS_MAX_RSS", value_name = "MIB")]
    workers_max_rss: Option<u64>,
    /// Replace a worker that dies (true); false: a dead worker stops the
    /// server.
    #[arg(long, env = "CORMORANT_RESPAWN_FAILED_WORKERS", default_value_t = true,
          action = clap::ArgAction::Set, value_name = "BOOL")]
    respawn_failed_workers: bool,
    /// Write the server's pid to this file (removed at exit).
    #[arg(long, env = "CORMORANT_PID_FILE", value_name = "PATH")]
    pid_file: Option<String>,
    /// Check the configuration (flags, environment, settings file) and
    /// exit: 0 when it is valid, else one line and 2. The app is not
    /// imported.
    #[arg(long)]
    pub(crate) check_config: bool,
    /// Print the resolved configuration as settings-file lines, each with
    /// where its value came from (command line, environment, file,
    /// default), and exit. The app is not imported.
    #[arg(long)]
    pub(crate) print_config: bool,
}

/// Where a setting's value came from.
pub(crate) fn source_of(
    field: &str,
    matches: &clap::ArgMatches,
    from_file: &[(String, String)],
) -> String {
    use clap::parser::ValueSource;
    // A field is set by its flag, or by its `--no-` twin.
    let ids = [
        match field {
            "target" => "app".to_owned(),
            "loop" => "loop_impl".to_owned(),
            f => f.to_owned(),
        },
        format!("no_{field}"),
    ];
    let command = <Cli as clap::CommandFactory>::command();
    let mut best = None;
    for id in &ids {
        let Ok(Some(source)) = matches.try_get_raw(id).map(|_| matches.value_source(id)) else {
            continue;
        };
        let env = command
            .get_arguments()
            .find(|a| a.get_id() == id.as_str())
            .and_then(|a| a.get_env())
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_owned();
        let described = match source {
            ValueSource::CommandLine => "command line".to_owned(),
            ValueSource::EnvVariable => match from_file.iter().find(|(e, _)| *e == env) {
                Some((_, path)) => format!("file {path}"),
                None => format!("environment {env}"),
            },
            _ => "default".to_owned(),
        };
        // What was given beats a default of the twin flag.
        if best.is_none() || described != "default" {
            best = Some(described);
        }
    }
    best.unwrap_or_else(|| "default".to_owned())
}

/// The configuration as settings-file lines (`key = value`), sorted, each
/// with the source of its value; unset options as comments.
pub(crate) fn describe(
    config: &ServerConfig,
    matches: &clap::ArgMatches,
    from_file: &[(String, String)],
) -> String {
    let serde_json::Value::Object(fields) = serde_json::to_value(config).unwrap_or_default() else {
        return String::new();
    };
    let mut out = String::new();
    for (key, value) in fields {
        let source = source_of(&key, matches, from_file);
        // The settings file's names: the flags'.
        let key = match key.as_str() {
            "target" => "app".to_owned(),
            k => k.replace('_', "-"),
        };
        if key.contains("password") && !value.is_null() {
            out.push_str(&format!("{key} = \"***\"  # {source}\n"));
        } else if value.is_null() {
            out.push_str(&format!("# {key} is not set  ({source})\n"));
        } else {
            out.push_str(&format!("{key} = {value}  # {source}\n"));
        }
    }
    out
}

impl Cli {
    /// The configuration these flags describe.
    pub(crate) fn into_config(self) -> ServerConfig {
        ServerConfig {
            target: Some(self.app),
            factory: self.factory,
            app_dir: self.app_dir,
            host: self.host,
            port: self.port,
            uds: self.uds,
            fd: self.fd,
            backlog: self.backlog,
            workers: self.workers,
            loop_impl: self.loop_impl,
            lifespan: self.lifespan,
            log_level: self.log_level,
            access_log: self.access_log && !self.no_access_log,
            root_path: self.root_path,
            timeout_keep_alive: self.timeout_keep_alive,
            timeout_request_head: self.timeout_request_head,
            timeout_request_body: self.timeout_request_body,
            timeout_graceful_shutdown: self.timeout_graceful_shutdown,
            limit_concurrency: self.limit_concurrency,
            limit_max_requests: self.limit_max_requests,
            server_header: !self.no_server_header,
            date_header: !self.no_date_header,
            headers: self.headers,
            limit_request_line: self.limit_request_line,
            limit_request_fields: self.limit_request_fields,
            limit_request_head_size: self.limit_request_head_size,
            limit_request_body: self.limit_request_body,
            ws: self.ws,
            ws_max_size: self.ws_max_size,
            ws_max_queue: self.ws_max_queue,
            ws_ping_interval: Some(self.ws_ping_interval),
            ws_ping_timeout: Some(self.ws_ping_timeout),
            ws_per_message_deflate: self.ws_per_message_deflate,
            http: self.http,
            http2_max_concurrent_streams: self.http2_max_concurrent_streams,
            http2_initial_stream_window_size: self.http2_initial_stream_window_size,
            http2_initial_connection_window_size: self.http2_initial_connection_window_size,
            http2_adaptive_window: self.http2_adaptive_window,
            http2_max_frame_size: self.http2_max_frame_size,
            http2_max_header_list_size: self.http2_max_header_list_size,
            http2_keep_alive_interval: self.http2_keep_alive_interval.filter(|s| *s > 0.0),
            http2_keep_alive_timeout: self.http2_keep_alive_timeout,
            ssl_certfile: self.ssl_certfile,
            ssl_keyfile: self.ssl_keyfile,
            ssl_keyfile_password: self.ssl_keyfile_password,
            ssl_ca_certs: self.ssl_ca_certs,
            ssl_cert_reqs: if self.ssl_client_verify {
                "required".into()
            } else {
                match self.ssl_cert_reqs.as_str() {
                    "0" => "none".into(),
                    "1" => "optional".into(),
                    "2" => "required".into(),
                    _ => self.ssl_cert_reqs,
                }
            },
            ssl_crl: self.ssl_crl,
            ssl_protocol_min: self.ssl_protocol_min,
            ssl_ciphers: self.ssl_ciphers,
            timeout_tls_handshake: self.timeout_tls_handshake,
            access_log_format: self.access_log_format,
            log_json: self.log_json,
            use_colors: match (self.use_colors, self.no_use_colors) {
                (_, true) => Some(false),
                (true, _) => Some(true),
                _ => None,
            },
            log_config: self.log_config,
            env_file: self.env_file,
            reload: self.reload,
            reload_dirs: self.reload_dirs,
            reload_includes: self.reload_includes,
            reload_excludes: self.reload_excludes,
            reload_delay: self.reload_delay,
            metrics: self.metrics,
            metrics_address: self.metrics_address,
            metrics_port: self.metrics_port,
            proxy_headers: self.proxy_headers && !self.no_proxy_headers,
            forwarded_allow_ips: self.forwarded_allow_ips,
            static_path_route: self.static_path_route,
            static_path_mount: self.static_path_mount,
            static_path_expires: self.static_path_expires,
            limit_max_requests_jitter: self.limit_max_requests_jitter,
            workers_lifetime: self.workers_lifetime,
            workers_max_rss: self.workers_max_rss,
            respawn_failed_workers: self.respawn_failed_workers,
            pid_file: self.pid_file,
        }
    }
}
