//! Running a componentized ASGI app: one fresh instance per connection,
//! under a wall-clock limit (epoch), a memory limit and no capabilities
//! but a captured stdout/stderr and, if declared, one read-only directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cormorant_core::asgi::{Address, ConnectionInfo, HttpScope, HttpVersion, WebSocketScope};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::error::Context;
use wasmtime::{Cache, CacheConfig, Config, Engine, ResourceLimiter, Result, Store, Trap, bail};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::cormorant::sandbox::asgi::Failure as GuestFailure;
use super::bindings::{Sandbox, SandboxPre};
use super::exchange::{Connection, Exchange, Failure, Request};
use super::message;
use crate::epoch::{self, Ticker};

/// The limits of one connection.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock time for the whole connection; stops endless loops.
    pub time: Duration,
    /// Seconds the app's own timers may advance (they cost no real time).
    pub virtual_time: f64,
    /// Largest linear memory, in bytes.
    pub memory: usize,
    /// A host directory the app may read, and where the app sees it.
    pub read_dir: Option<(PathBuf, String)>,
    /// Run the app's lifespan (startup, then the connection, then
    /// shutdown) in each instance; an app that does not speak it is served
    /// anyway, as with `--lifespan auto`.
    pub lifespan: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            time: Duration::from_secs(10),
            virtual_time: 60.0,
            memory: 512 << 20,
            read_dir: None,
            lifespan: true,
        }
    }
}

/// Bytes of stdout and of stderr kept per connection.
const OUTPUT_CAPACITY: usize = 64 << 10;

/// A compiled app, ready to serve connections.
pub struct AppSandbox {
    engine: Engine,
    pre: SandboxPre<State>,
    limits: Limits,
    _ticker: Ticker,
}

/// Grows memories up to the limit and remembers an attempt past it.
struct MemoryLimit {
    max: usize,
    asked: Option<usize>,
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> Result<bool> {
        if desired > self.max {
            self.asked = Some(desired);
            bail!("memory limit of {} MiB reached", self.max >> 20);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _max: Option<usize>,
    ) -> Result<bool> {
        Ok(true)
    }
}

/// Everything a store holds for one connection.
struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryLimit,
    conn: Connection,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl AppSandbox {
    /// Compiles the component at `path`; compiled code is cached under
    /// `cache_dir` when given.
    pub fn load(path: &Path, cache_dir: Option<&Path>, limits: Limits) -> Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        if let Some(dir) = cache_dir {
            let mut cache = CacheConfig::new();
            cache.with_directory(dir.join("wasmtime"));
            config.cache(Some(Cache::new(cache)?));
        }
        let engine = Engine::new(&config)?;
        let component = Component::from_file(&engine, path)
            .with_context(|| format!("loading {}", path.display()))?;
        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Sandbox::add_to_linker::<_, HasSelf<Connection>>(&mut linker, |s: &mut State| &mut s.conn)?;
        let pre = SandboxPre::new(linker.instantiate_pre(&component)?)?;
        let ticker = Ticker::start(&engine);
        Ok(Self {
            engine,
            pre,
            limits,
            _ticker: ticker,
        })
    }

    /// The limits every connection runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Runs one connection of `request` in a fresh instance.
    pub fn run(&self, request: &Request) -> Result<Exchange> {
        let scope = scope_json(request)?;
        let (stdout, stderr) = (
            MemoryOutputPipe::new(OUTPUT_CAPACITY),
            MemoryOutputPipe::new(OUTPUT_CAPACITY),
        );
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        // No sockets of any kind (these are the defaults; said here so that
        // a change of default cannot open the network).
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if let Some((host, guest)) = &self.limits.read_dir {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly)
                .with_context(|| format!("opening {}", host.display()))?;
        }
        let state = State {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            memory: MemoryLimit {
                max: self.limits.memory,
                asked: None,
            },
            conn: Connection::new(request, self.limits.lifespan),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(epoch::ticks(self.limits.time));
        let ran = self.pre.instantiate(&mut store).and_then(|app| {
            app.call_run(
                &mut store,
                &scope,
                self.limits.lifespan,
                self.limits.virtual_time,
            )
        });
        let failure = match ran {
            Ok(Ok(())) => None,
            Ok(Err(f)) => Some(match f {
                GuestFailure::Exception(tb) => Failure::Exception(tb),
                GuestFailure::Stalled(why) => Failure::Stalled(why),
                GuestFailure::Timeout(t) => Failure::VirtualTimeout(t),
                GuestFailure::StartupFailed(why) => Failure::StartupFailed(why),
            }),
            Err(e) => Some(self.trap(&store, &e)),
        };
        let state = store.data_mut();
        // Without a startup the request was never served: nothing to end.
        if !matches!(failure, Some(Failure::StartupFailed(_))) {
            state.conn.exit(failure.is_some());
        }
        let mut record = state.conn.take_record();
        record.failure = failure;
        record.output = [stdout.contents(), stderr.contents()]
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        Ok(record)
    }

    /// Names the limit behind a trap.
    fn trap(&self, store: &Store<State>, e: &wasmtime::Error) -> Failure {
        if let Some(asked) = store.data().memory.asked {
            return Failure::Memory {
                limit: self.limits.memory,
                asked,
            };
        }
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Failure::Timeout(self.limits.time),
            _ => Failure::Trap(format!("{e:?}")),
        }
    }
}

/// The scope the app sees for `request`, as guest JSON.
fn scope_json(request: &Request) -> Result<String> {
    let conn = ConnectionInfo {
        scheme: "http",
        client: Some(Address {
            host: "127.0.0.1".into(),
            port: 50000,
        }),
        server: Some(Address {
            host: "127.0.0.1".into(),
            port: 8000,
        }),
        root_path: String::new(),
    };
    let mut headers: Vec<(bytes::Bytes, bytes::Bytes)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase().into(), v.clone().into()))
        .collect();
    if !headers.iter().any(|(n, _)| n.as_ref() == b"host") {
        headers.insert(0, ("host".into(), "testserver".into()));
    }
    if let Some(ws) = &request.websocket {
        if !ws.subprotocols.is_empty() {
            headers.push((
                "sec-websocket-protocol".into(),
                ws.subprotocols.join(", ").into(),
            ));
        }
    } else if !request.body.is_empty() {
        headers.push((
            "content-length".into(),
            request.body.len().to_string().into(),
        ));
    }
    let http = HttpScope::new(
        HttpVersion::Http11,
        request.method.as_bytes(),
        &bytes::Bytes::copy_from_slice(request.target.as_bytes()),
        headers,
        &conn,
    )
    .map_err(|e| wasmtime::format_err!("bad request {:?}: {e}", request.target))?;
    let scope = match &request.websocket {
        Some(_) => {
            let ws = WebSocketScope::new(http);
            message::scope(&ws.http, Some(&ws.subprotocols))
        }
        None => message::scope(&http, None),
    };
    Ok(scope.to_string())
}
