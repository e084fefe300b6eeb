//! The C API inside wasmtime: the `cormorant-capi` cdylib built for
//! `wasm32-wasip1`, one instance per connection, each call under a fuel
//! and a time limit so that a hang in the guest fails instead of blocking.

use std::path::Path;
use std::time::Duration;

use wasmtime::error::Context;
use wasmtime::{Config, Engine, Instance, Linker, Memory, Module, Store, Trap, TypedFunc};
use wasmtime::{Result, bail};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::abi;
use crate::capi::{CConn, Event, result};
use crate::epoch::{self, Ticker};

/// Fuel (about one unit per wasm instruction) for one call into the guest:
/// enough to parse megabytes, so only a loop that does not end runs out
/// (it burns this in a second or two).
pub const FUEL_PER_CALL: u64 = 2_000_000_000;
/// Wall-clock time allowed for one call into the guest.
pub const TIME_PER_CALL: Duration = Duration::from_secs(10);

/// The compiled guest module, ready to open connections.
pub struct CoreGuest {
    engine: Engine,
    module: Module,
    linker: Linker<WasiP1Ctx>,
    _ticker: Ticker,
}

impl CoreGuest {
    /// Compiles the guest `.wasm` at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let wasm = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::new(&wasm)
    }

    /// Compiles a guest module from its bytes.
    pub fn new(wasm: &[u8]) -> Result<Self> {
        let mut config = Config::new();
        config.consume_fuel(true).epoch_interruption(true);
        let engine = Engine::new(&config)?;
        let module = Module::new(&engine, wasm)?;
        let mut linker = Linker::new(&engine);
        // The guest's std imports WASI (stderr for panic messages, the
        // environment); the context grants nothing else.
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |cx| cx)?;
        let ticker = Ticker::start(&engine);
        Ok(Self {
            engine,
            module,
            linker,
            _ticker: ticker,
        })
    }

    /// A fresh instance holding one new connection handle.
    pub fn connect(&self) -> Result<GuestConn> {
        let mut store = Store::new(&self.engine, WasiCtxBuilder::new().build_p1());
        limit(&mut store)?;
        let instance = self.linker.instantiate(&mut store, &self.module)?;
        // A reactor module runs its constructors from `_initialize`.
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call(&mut store, ())?;
        }
        let f = Exports::new(&instance, &mut store)?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .context("guest exports no memory")?;
        let mut conn = GuestConn {
            store,
            memory,
            f,
            conn: 0,
            scratch: 0,
        };
        // Room for one event, the two out-parameters of take_output and
        // the deadline of cormorant_conn_timeout (8-aligned).
        conn.scratch = conn.alloc(abi::EVENT_SIZE + 16)?;
        let out = conn.scratch;
        let r = conn.call(|f, s| f.conn_new.call(s, (0, 0, out)))?;
        if r != result::OK {
            bail!("cormorant_conn_new returned {r}");
        }
        conn.conn = conn.read_u32(out)?;
        Ok(conn)
    }
}

/// Gives the store the budget of one call.
fn limit(store: &mut Store<WasiP1Ctx>) -> Result<()> {
    store.set_fuel(FUEL_PER_CALL)?;
    store.set_epoch_deadline(epoch::ticks(TIME_PER_CALL));
    Ok(())
}

type F1 = TypedFunc<u32, u32>;
type F2 = TypedFunc<(u32, u32), u32>;
type F3 = TypedFunc<(u32, u32, u32), u32>;
type F4 = TypedFunc<(u32, u32, u32, u32), u32>;

/// The guest functions the host calls.
struct Exports {
    conn_new: TypedFunc<(u32, u64, u32), u32>,
    set_time: TypedFunc<(u32, u64), u32>,
    timeout: F2,
    handle_timeout: TypedFunc<(u32, u64), u32>,
    feed: F3,
    feed_eof: F1,
    poll: F2,
    respond: F4,
    send_body: F3,
    end: F1,
    next: F1,
    ws_accept: F2,
    ws_reject: F1,
    ws_deny: F2,
    ws_send: F4,
    ws_close: F4,
    take_output: F3,
    consume: F2,
    wants_close: F1,
    free: TypedFunc<u32, ()>,
    alloc: F1,
    dealloc: TypedFunc<(u32, u32), ()>,
    layout: F2,
}

impl Exports {
    fn new(i: &Instance, s: &mut Store<WasiP1Ctx>) -> Result<Self> {
        Ok(Self {
            conn_new: i.get_typed_func(&mut *s, "cormorant_conn_new")?,
            set_time: i.get_typed_func(&mut *s, "cormorant_conn_set_time")?,
            timeout: i.get_typed_func(&mut *s, "cormorant_conn_timeout")?,
            handle_timeout: i.get_typed_func(&mut *s, "cormorant_conn_handle_timeout")?,
            feed: i.get_typed_func(&mut *s, "cormorant_conn_feed")?,
            feed_eof: i.get_typed_func(&mut *s, "cormorant_conn_feed_eof")?,
            poll: i.get_typed_func(&mut *s, "cormorant_conn_poll")?,
            respond: i.get_typed_func(&mut *s, "cormorant_conn_respond")?,
            send_body: i.get_typed_func(&mut *s, "cormorant_conn_send_body")?,
            end: i.get_typed_func(&mut *s, "cormorant_conn_end")?,
            next: i.get_typed_func(&mut *s, "cormorant_conn_next")?,
            ws_accept: i.get_typed_func(&mut *s, "cormorant_conn_ws_accept")?,
            ws_reject: i.get_typed_func(&mut *s, "cormorant_conn_ws_reject")?,
            ws_deny: i.get_typed_func(&mut *s, "cormorant_conn_ws_deny")?,
            ws_send: i.get_typed_func(&mut *s, "cormorant_conn_ws_send")?,
            ws_close: i.get_typed_func(&mut *s, "cormorant_conn_ws_close")?,
            take_output: i.get_typed_func(&mut *s, "cormorant_conn_take_output")?,
            consume: i.get_typed_func(&mut *s, "cormorant_conn_consume")?,
            wants_close: i.get_typed_func(&mut *s, "cormorant_conn_wants_close")?,
            free: i.get_typed_func(&mut *s, "cormorant_conn_free")?,
            alloc: i.get_typed_func(&mut *s, "cormorant_wasm_alloc")?,
            dealloc: i.get_typed_func(&mut *s, "cormorant_wasm_free")?,
            layout: i.get_typed_func(&mut *s, "cormorant_wasm_layout")?,
        })
    }
}

/// One connection handle inside its own guest instance.
pub struct GuestConn {
    store: Store<WasiP1Ctx>,
    memory: Memory,
    f: Exports,
    /// The `cormorant_conn *` in guest memory.
    conn: u32,
    /// A guest buffer for an event and two out-parameters.
    scratch: u32,
}

impl GuestConn {
    /// Calls into the guest with a fresh budget, naming the limit that
    /// stopped it if one did.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&Exports, &mut Store<WasiP1Ctx>) -> Result<R>,
    ) -> Result<R> {
        limit(&mut self.store)?;
        f(&self.f, &mut self.store).map_err(|e| match e.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => e.context("guest ran out of fuel (a loop that does not end?)"),
            Some(Trap::Interrupt) => {
                e.context(format!("guest call took longer than {TIME_PER_CALL:?}"))
            }
            _ => e.context("guest trapped"),
        })
    }

    fn alloc(&mut self, len: u32) -> Result<u32> {
        let p = self.call(|f, s| f.alloc.call(s, len))?;
        if p == 0 {
            bail!("guest could not allocate {len} bytes");
        }
        Ok(p)
    }

    fn read_u32(&self, at: u32) -> Result<u32> {
        abi::read_u32(self.memory.data(&self.store), at as usize)
    }

    /// Copies `data` into a fresh guest buffer, runs `f(ptr, len)`, frees it.
    fn with_bytes(
        &mut self,
        data: &[u8],
        f: impl FnOnce(&mut Self, u32, u32) -> Result<u32>,
    ) -> Result<u32> {
        let len = u32::try_from(data.len()).context("buffer larger than guest memory")?;
        let ptr = self.alloc(len)?;
        self.memory.write(&mut self.store, ptr as usize, data)?;
        let r = f(self, ptr, len);
        self.call(|f, s| f.dealloc.call(s, (ptr, len)))?;
        r
    }

    /// What the guest's `cormorant_wasm_layout` reports (see
    /// [`abi::EXPECTED_LAYOUT`]).
    pub fn layout(&mut self) -> Result<Vec<u32>> {
        let n = abi::EXPECTED_LAYOUT.len() as u32;
        let ptr = self.alloc(4 * n)?;
        let count = self.call(|f, s| f.layout.call(s, (ptr, n)))?;
        let mem = self.memory.data(&self.store);
        let out = (0..count.min(n))
            .map(|i| abi::read_u32(mem, (ptr + 4 * i) as usize))
            .collect::<Result<Vec<_>>>();
        self.call(|f, s| f.dealloc.call(s, (ptr, 4 * n)))?;
        let mut out = out?;
        // More values than the host knows of: report the count as a mismatch.
        out.resize(count as usize, u32::MAX);
        Ok(out)
    }
}

impl CConn for GuestConn {
    fn feed(&mut self, data: &[u8]) -> Result<u32> {
        let c = self.conn;
        self.with_bytes(data, |g, p, n| g.call(|f, s| f.feed.call(s, (c, p, n))))
    }

    fn feed_eof(&mut self) -> Result<u32> {
        let c = self.conn;
        self.call(|f, s| f.feed_eof.call(s, c))
    }

    fn poll(&mut self) -> Result<(u32, Event)> {
        let (c, ev) = (self.conn, self.scratch);
        let r = self.call(|f, s| f.poll.call(s, (c, ev)))?;
        if r != result::OK {
            return Ok((r, Event::default()));
        }
        Ok((r, abi::read_event(self.memory.data(&self.store), ev)?))
    }

    fn respond(&mut self, status: u16, headers: &[(&[u8], &[u8])]) -> Result<u32> {
        let c = self.conn;
        let n = headers.len() as u32;
        let size = abi::write_headers(0, headers).len() as u32;
        let ptr = self.alloc(size)?;
        let buf = abi::write_headers(ptr, headers);
        self.memory.write(&mut self.store, ptr as usize, &buf)?;
        let r = self.call(|f, s| f.respond.call(s, (c, status.into(), ptr, n)));
        self.call(|f, s| f.dealloc.call(s, (ptr, size)))?;
        r
    }

    fn send_body(&mut self, data: &[u8]) -> Result<u32> {
        let c = self.conn;
        self.with_bytes(data, |g, p, n| {
            g.call(|f, s| f.send_body.call(s, (c, p, n)))
        })
    }

    fn end(&mut self) -> Result<u32> {
        let c = self.conn;
        self.call(|f, s| f.end.call(s, c))
    }

    fn next(&mut self) -> Result<u32> {
        let c = self.conn;
        self.call(|f, s| f.next.call(s, c))
    }

    fn ws_accept(&mut self, subprotocol: Option<&str>) -> Result<u32> {
        let c = self.conn;
        let Some(sub) = subprotocol else {
            return self.call(|f, s| f.ws_accept.call(s, (c, 0)));
        };
        let mut cstr = sub.as_bytes().to_vec();
        cstr.push(0);
        self.with_bytes(&cstr, |g, p, _| g.call(|f, s| f.ws_accept.call(s, (c, p))))
    }

    fn ws_reject(&mut self) -> Result<u32> {
        let c = self.conn;
        self.call(|f, s| f.ws_reject.call(s, c))
    }

    fn ws_deny(&mut self, status: u16) -> Result<u32> {
        let c = self.conn;
        self.call(|f, s| f.ws_deny.call(s, (c, status.into())))
    }

    fn ws_send(&mut self, is_text: bool, data: &[u8]) -> Result<u32> {
        let c = self.conn;
        self.with_bytes(data, |g, p, n| {
            g.call(|f, s| f.ws_send.call(s, (c, is_text.into(), p, n)))
        })
    }

    fn ws_close(&mut self, code: u16, reason: &[u8]) -> Result<u32> {
        let c = self.conn;
        self.with_bytes(reason, |g, p, n| {
            g.call(|f, s| f.ws_close.call(s, (c, code.into(), p, n)))
        })
    }

    fn take_output(&mut self) -> Result<Vec<u8>> {
        let (c, data, len) = (
            self.conn,
            self.scratch + abi::EVENT_SIZE,
            self.scratch + abi::EVENT_SIZE + 4,
        );
        let r = self.call(|f, s| f.take_output.call(s, (c, data, len)))?;
        if r != result::OK {
            bail!("cormorant_conn_take_output returned {r}");
        }
        let (ptr, n) = (self.read_u32(data)?, self.read_u32(len)?);
        let out = abi::read_bytes(self.memory.data(&self.store), ptr, n)?;
        let r = self.call(|f, s| f.consume.call(s, (c, n)))?;
        if r != result::OK {
            bail!("cormorant_conn_consume returned {r}");
        }
        Ok(out)
    }

    fn wants_close(&mut self) -> Result<bool> {
        let c = self.conn;
        Ok(self.call(|f, s| f.wants_close.call(s, c))? != 0)
    }

    fn set_time(&mut self, now_ns: u64) -> Result<u32> {
        let c = self.conn;
        self.call(|f, s| f.set_time.call(s, (c, now_ns)))
    }

    fn timeout(&mut self) -> Result<(u32, u64)> {
        let (c, out) = (self.conn, self.scratch + abi::EVENT_SIZE + 8);
        let r = self.call(|f, s| f.timeout.call(s, (c, out)))?;
        let lo = u64::from(self.read_u32(out)?);
        let hi = u64::from(self.read_u32(out + 4)?);
        Ok((r, hi << 32 | lo))
    }

    fn handle_timeout(&mut self, now_ns: u64) -> Result<u32> {
        let c = self.conn;
        self.call(|f, s| f.handle_timeout.call(s, (c, now_ns)))
    }
}

impl Drop for GuestConn {
    fn drop(&mut self) {
        let c = self.conn;
        // As a C caller must; the instance itself goes with the store.
        let _ = self.call(|f, s| f.free.call(s, c));
    }
}
