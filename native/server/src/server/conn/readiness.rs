//! The readiness-driven HTTP/1.1 driver: every HTTP/1.1 connection of a
//! server (TCP or a Unix socket, and TLS after a handshake that chose
//! HTTP/1.1, with rustls's connection from [`crate::server::tls_io`]) in
//! one task, with no future and no task per connection.
//!
//! The sockets are watched by an epoll instance of the driver's own,
//! edge-triggered, and the instance is one descriptor of the runtime's
//! reactor. When it is readable, or an app's output is queued, or core's
//! earliest timer is due, the task runs each connection that can go on as
//! far as it can: a read into the thread's buffer, core, the hand-over, the
//! app's output applied and written with a nonblocking `writev`. Core still
//! decides every rule and timer; the driver only moves bytes and events.
//! Driven by the host's loop, a connection answered in a loop turn has its
//! next request read at once but served in the next turn (see
//! [`driven::read_turn`]).
//!
//! It serves the common request, whose body (if any) came with its head,
//! and WebSocket sessions. Everything else goes to the async driver of
//! [`super`] at a request boundary, with the socket and core's connection
//! as they are: a request the server answers itself (health, static files,
//! a 503 or 400), a body still to read or a `100 Continue`, a file to send,
//! the HTTP/2 preface, and a close that must linger or wait to write.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::io::{IoSlice, Write};
use std::os::fd::AsRawFd;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use atomic_waker::AtomicWaker;
use bytes::Bytes;
use cormorant_core::h1;
use cormorant_core::server::Event;
use cormorant_core::time::Instant;
use tokio::io::unix::AsyncFd;

use super::super::transport::{Transport, io_slices};
use super::super::{OpenConnection, ServerCtx, clock, driven};
use super::websocket::{Answer, WsRefused, WsSession};
use super::{
    Admitted, Applied, ByServer, Conn, HandedOver, PIPELINE_READ_AHEAD, PeerInfo, READ_BUF,
    READ_CHUNK, Resume, Shared, serve_from,
};
use crate::handoff::http::StreamState;
use crate::server::exchange::Exchange;
use crate::server::tls_io::TlsSocket;
use crate::sys::Epoll;

/// Events taken from the epoll instance per `epoll_wait`.
const EVENTS: usize = 256;

/// A read of at least this much gives core the buffer it was read into
/// rather than a copy (see [`h1::Connection::handle_buf`]): a body read
/// with its head reaches the app without one. A smaller read is copied,
/// and the buffer read into again.
const HAND_OVER_MIN: usize = 4 * 1024;

thread_local! {
    /// The driver's buffer for reads from plain sockets: empty between
    /// reads, and replaced when a read hands it to core.
    static READ_INTO: std::cell::RefCell<bytes::BytesMut> =
        std::cell::RefCell::new(bytes::BytesMut::new());
}

/// A socket the driver serves: TCP or a Unix socket, cleartext, or TCP
/// with TLS after its handshake.
pub(in crate::server) enum Socket {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
    Tls(Box<TlsSocket<std::net::TcpStream>>),
}

impl Socket {
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write_vectored(bufs),
            Self::Unix(s) => s.write_vectored(bufs),
            Self::Tls(s) => s.write_vectored(bufs),
        }
    }

    /// One buffer: `write`, which the kernel takes faster than a `writev`
    /// of one.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            Self::Unix(s) => s.write(buf),
            Self::Tls(s) => s.write_vectored(&[IoSlice::new(buf)]),
        }
    }

    /// Bytes written to this socket and not yet to the kernel (TLS records).
    fn has_pending(&self) -> bool {
        match self {
            Self::Tls(s) => s.has_pending(),
            _ => false,
        }
    }

    /// Writes what [`Self::has_pending`] holds; WouldBlock once the socket
    /// is full.
    fn flush_pending(&mut self) -> std::io::Result<()> {
        match self {
            Self::Tls(s) => s.flush(),
            _ => Ok(()),
        }
    }

    /// Ends our side (FIN; TLS's close_notify first), before the socket is
    /// closed.
    fn shutdown_write(&mut self) {
        let _ = match self {
            Self::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Self::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Self::Tls(s) => {
                s.shutdown_write();
                Ok(())
            }
        };
    }

    fn fd(&self) -> std::os::fd::RawFd {
        match self {
            Self::Tcp(s) => s.as_raw_fd(),
            Self::Unix(s) => s.as_raw_fd(),
            Self::Tls(s) => s.sock().as_raw_fd(),
        }
    }
}

/// The driver of a server's HTTP/1.1 connections; cheap to clone.
#[derive(Clone)]
pub(in crate::server) struct Readiness(Arc<Inner>);

struct Inner {
    state: Mutex<Driver>,
    wakes: Arc<Wakes>,
}

/// The connections to run again and the task that runs them: apart from
/// the driver's state, so that a connection's waker holds them (no weak
/// reference to upgrade at each wake-up) without holding the connections.
struct Wakes {
    /// Connections whose app queued output (or whose stream changed), by
    /// slot and generation.
    woken: Mutex<Vec<(usize, u32)>>,
    /// The driver's task.
    task: AtomicWaker,
}

impl Wakes {
    /// Runs the connection in `slot` again, if it is still the one of
    /// `generation`.
    fn push(&self, slot: usize, generation: u32) {
        let mut woken = lock(&self.woken);
        let first = woken.is_empty();
        woken.push((slot, generation));
        drop(woken);
        // The task takes the whole list when it runs: the wake that made
        // the list non-empty is the only one it needs.
        if first {
            self.task.wake();
        }
    }
}

struct Driver {
    epoll: Epoll,
    slots: Vec<Slot>,
    /// Free slots.
    free: Vec<usize>,
    /// Core's deadlines of the connections: (when, slot, generation). A
    /// connection has at most one entry that counts, its `timer_at`; the
    /// others are stale and skipped.
    timers: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    events: Vec<libc::epoll_event>,
    /// Connections answered in this read turn whose next request came,
    /// kept for the next turn (see [`driven::read_turn`]): (slot,
    /// generation).
    kept: Vec<(usize, u32)>,
    /// The stop began and every connection was told.
    stopped: bool,
    ctx: Arc<ServerCtx>,
}

/// A place in the slab: its generation counts its occupants, so that a
/// wake-up or timer of a closed connection finds a stranger and is dropped.
struct Slot {
    generation: u32,
    conn: Option<Box<Http1>>,
}

/// One connection.
struct Http1 {
    c: Conn<Socket>,
    peer: PeerInfo,
    open: OpenConnection,
    phase: Phase,
    /// The socket may have input (or EOF) to read: set by an event, cleared
    /// by a read that found less than it asked for.
    readable: bool,
    /// The socket may take output: as `readable`, for writes.
    writable: bool,
    /// This connection's entry in the timer heap that counts.
    timer_at: Option<Instant>,
    /// The read turn in which its last response was written, if driven
    /// (see [`driven::read_turn`]).
    answered_in: Option<u64>,
    /// Wakes the driver for this connection.
    waker: Waker,
}

enum Phase {
    /// Between requests: reading the next head.
    Idle,
    /// A request is with the app.
    Exchange(Box<Exchanging>),
    /// After an upgrade request: the app's answer, then frames both ways
    /// until the connection closes.
    WebSocket(Box<WsSession>),
}

struct Exchanging {
    shared: Arc<Shared>,
    exchange: Exchange,
    /// Pipelined bytes read during the exchange.
    read_ahead: usize,
    /// The response is complete in core.
    finished: bool,
    stop_seen: bool,
    /// Body bytes taken from the app and not yet written out: acknowledged
    /// to its `send()` once they are.
    taken: usize,
    /// The response was complete, and no `send()` waited for room, when
    /// the app's output was last taken: none can wait any more (a `send()`
    /// after the last is refused), so what is written needs no word to the
    /// app.
    sends_over: bool,
    /// The app's output has been looked for since the request was handed
    /// over. Not in the drive that hands it over, which goes to the wait:
    /// there is seldom output yet (on a worker its event loop drives, never:
    /// the app has not run), and the wake-up of any output is kept for the
    /// wait, which then returns at once.
    looked: bool,
}

/// What a connection needs next.
enum Step {
    /// An event: input, room to write, the app, a timer.
    Wait,
    /// Nothing more: close it.
    Close,
    /// To the async driver, from there.
    Async(Box<Resume>),
}

/// The exchange in progress goes to the async driver as it is (it sends a
/// file).
struct HandBack;

/// Wakes the driver for one connection.
struct SlotWaker {
    wakes: Arc<Wakes>,
    slot: usize,
    generation: u32,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.push(self.slot, self.generation);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Readiness {
    /// A driver for `ctx`'s connections, its task spawned on the current
    /// runtime.
    pub(in crate::server) fn start(ctx: &Arc<ServerCtx>) -> std::io::Result<Self> {
        let epoll = Epoll::new()?;
        let watched = crate::sys::async_readable(crate::sys::duplicate(epoll.fd().as_raw_fd())?)?;
        let inner = Arc::new(Inner {
            state: Mutex::new(Driver {
                epoll,
                slots: Vec::new(),
                free: Vec::new(),
                timers: BinaryHeap::new(),
                events: Vec::with_capacity(EVENTS),
                kept: Vec::new(),
                stopped: false,
                ctx: ctx.clone(),
            }),
            wakes: Arc::new(Wakes {
                woken: Mutex::new(Vec::new()),
                task: AtomicWaker::new(),
            }),
        });
        driven::spawn(run(inner.clone(), watched));
        Ok(Self(inner))
    }

    /// Serves `sock` from its first byte. A socket the driver cannot watch
    /// goes to the async driver.
    pub(in crate::server) fn add(&self, sock: Socket, peer: PeerInfo, open: OpenConnection) {
        let mut d = lock(&self.0.state);
        let ctx = d.ctx.clone();
        // TLS may hold plaintext read with the handshake: the connection
        // runs once at once, not at its socket's first event.
        let (scheme, kick) = match sock {
            Socket::Tls(_) => ("https", true),
            _ => ("http", false),
        };
        let c = Conn::new(sock, &peer, scheme, ctx);
        let slot = d.free.pop().unwrap_or_else(|| {
            d.slots.push(Slot {
                generation: 0,
                conn: None,
            });
            d.slots.len() - 1
        });
        let generation = d.slots[slot].generation.wrapping_add(1);
        d.slots[slot].generation = generation;
        let waker = Waker::from(Arc::new(SlotWaker {
            wakes: self.0.wakes.clone(),
            slot,
            generation,
        }));
        let fd = c.io.fd();
        let mut conn = Box::new(Http1 {
            c,
            peer,
            open,
            phase: Phase::Idle,
            readable: false,
            writable: false,
            timer_at: None,
            answered_in: None,
            waker,
        });
        if d.stopped {
            conn.c.conn.shutdown(clock::now());
        }
        if d.epoll.add(fd, token(slot, generation)).is_err() {
            d.free.push(slot);
            drop(d);
            to_async(conn, None);
            return;
        }
        conn.readable = kick;
        d.slots[slot].conn = Some(conn);
        // Its deadline (the request head's) is armed at once; its first
        // bytes come as an event.
        d.arm(slot);
        drop(d);
        if kick {
            self.0.wakes.push(slot, generation);
        }
    }
}

/// The connection in `slot`, if it is still the one of `generation`.
fn occupant(slots: &mut [Slot], slot: usize, generation: u32) -> Option<&mut Http1> {
    let s = slots.get_mut(slot)?;
    if s.generation != generation {
        return None;
    }
    s.conn.as_deref_mut()
}

fn token(slot: usize, generation: u32) -> u64 {
    ((generation as u64) << 32) | slot as u64
}

fn untoken(token: u64) -> (usize, u32) {
    ((token & 0xffff_ffff) as usize, (token >> 32) as u32)
}

/// The driver's task: runs for the runtime's life.
async fn run(inner: Arc<Inner>, watched: AsyncFd<std::os::fd::OwnedFd>) {
    let ctx = lock(&inner.state).ctx.clone();
    let mut stop = ctx.shutdown.subscribe();
    let mut stopped = pin!(super::super::stopping(&mut stop));
    let mut stop_armed = false;
    let mut timer = pin!(tokio::time::sleep_until(clock::never()));
    let mut woken = Vec::new();
    // Events of the epoll instance not yet taken, and the read turn that
    // last ran the events kept.
    let mut pending = false;
    let mut kept_run_in = None;
    std::future::poll_fn(|cx| {
        inner.wakes.task.register(cx.waker());
        let mut d = lock(&inner.state);
        // The stop: the watch is polled once to leave the waker with it,
        // then only once its flag is set (see `StopPoll`).
        if !d.stopped
            && (!std::mem::replace(&mut stop_armed, true) || ctx.is_shutting_down())
            && stopped.as_mut().poll(cx).is_ready()
        {
            d.stop();
        }
        loop {
            let mut progressed = false;
            while let Poll::Ready(ready) = watched.poll_read_ready(cx) {
                let Ok(mut ready) = ready else {
                    return Poll::Ready(());
                };
                ready.clear_ready();
                pending = true;
            }
            let turn = driven::read_turn();
            if turn.is_some() && std::mem::replace(&mut kept_run_in, turn) != turn {
                progressed |= d.run_kept();
            }
            if pending {
                pending = false;
                while d.take_events(turn) {}
                progressed = true;
            }
            if !d.kept.is_empty() {
                driven::defer_to_next_step(cx.waker());
            }
            std::mem::swap(&mut *lock(&inner.wakes.woken), &mut woken);
            for (slot, generation) in woken.drain(..) {
                progressed = true;
                d.drive(slot, generation);
            }
            if let Some(at) = d.next_timer() {
                let at = clock::deadline(at);
                if timer.deadline() != at {
                    timer.as_mut().reset(at);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    d.fire_timers(tokio::time::Instant::now());
                    timer.as_mut().reset(clock::never());
                    progressed = true;
                }
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    })
    .await
}

impl Driver {
    /// Runs the connections of the events ready now, in read turn `turn`;
    /// whether there may be more.
    fn take_events(&mut self, turn: Option<u64>) -> bool {
        let n = self.epoll.ready_now(&mut self.events);
        for i in 0..n {
            let ev = self.events[i];
            let (slot, generation) = untoken(ev.u64);
            self.run_event(slot, generation, ev.events, turn);
        }
        n == EVENTS
    }

    /// Runs the connections kept for this read turn; whether there were
    /// any.
    fn run_kept(&mut self) -> bool {
        let mut kept = std::mem::take(&mut self.kept);
        let any = !kept.is_empty();
        for (slot, generation) in kept.drain(..) {
            self.drive(slot, generation);
        }
        self.kept = kept;
        any
    }

    /// Notes what an event says of the socket, and runs its connection; or,
    /// if the connection was answered in this read turn and waits for its
    /// next request, reads the request now (while its bytes are fresh in
    /// the caches) and keeps the connection for the next turn.
    fn run_event(&mut self, slot: usize, generation: u32, bits: u32, turn: Option<u64>) {
        let tracks_arrival = self.ctx.tracks_arrival();
        let Some(conn) = self.conn_mut(slot, generation) else {
            return;
        };
        if bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
            conn.readable = true;
        }
        if bits & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
            conn.writable = true;
        }
        if turn.is_some() && conn.answered_in == turn && matches!(conn.phase, Phase::Idle) {
            if conn.readable && !conn.c.eof {
                conn.read_input(tracks_arrival);
            }
            self.kept.push((slot, generation));
            return;
        }
        self.drive(slot, generation);
    }

    fn conn_mut(&mut self, slot: usize, generation: u32) -> Option<&mut Http1> {
        occupant(&mut self.slots, slot, generation)
    }

    /// Runs one connection as far as it goes, then closes it, hands it to
    /// the async driver, or arms its timer.
    fn drive(&mut self, slot: usize, generation: u32) {
        // The slots and the context apart: no clone of the context's Arc
        // (two locked instructions) per run.
        let Some(conn) = occupant(&mut self.slots, slot, generation) else {
            return;
        };
        match conn.drive(&self.ctx) {
            Step::Wait => self.arm(slot),
            Step::Close => {
                let mut conn = self.remove(slot);
                if conn.c.all_written() && !conn.c.conn.has_transmit() && !conn.c.linger {
                    conn.c.io.shutdown_write();
                } else {
                    to_async(conn, Some(Resume::Ended));
                }
            }
            Step::Async(resume) => {
                let conn = self.remove(slot);
                to_async(conn, Some(*resume));
            }
        }
    }

    /// Takes a connection out of the driver.
    fn remove(&mut self, slot: usize) -> Box<Http1> {
        let conn = self.slots[slot]
            .conn
            .take()
            .expect("a connection in the slot");
        self.epoll.delete(conn.c.io.fd());
        self.free.push(slot);
        conn
    }

    /// Puts the connection's next deadline in the heap, unless an entry as
    /// early is there already (a later deadline is found when that entry
    /// comes due and core has nothing to do).
    fn arm(&mut self, slot: usize) {
        let generation = self.slots[slot].generation;
        let Some(conn) = self.slots[slot].conn.as_deref_mut() else {
            return;
        };
        if let Some(at) = conn.c.conn.poll_timeout()
            && conn.timer_at.is_none_or(|t| at < t)
        {
            conn.timer_at = Some(at);
            self.timers.push(Reverse((at, slot, generation)));
        }
    }

    /// The earliest deadline in the heap.
    fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, ..))| *at)
    }

    /// Fires the deadlines due by `now` (tokio's clock).
    fn fire_timers(&mut self, now: tokio::time::Instant) {
        while let Some(&Reverse((at, slot, generation))) = self.timers.peek() {
            if clock::deadline(at) > now {
                break;
            }
            self.timers.pop();
            let Some(conn) = self.conn_mut(slot, generation) else {
                continue;
            };
            if conn.timer_at != Some(at) {
                continue;
            }
            conn.timer_at = None;
            // The coarse clock may lag the timer that fired: core is told
            // it is at least `at`, so that the deadline counts as passed.
            conn.c.fire_timer_at(clock::now().max(at));
            self.drive(slot, generation);
        }
    }

    /// The stop began: every connection is told (core closes the idle ones
    /// after a grace, and the busy ones after their response).
    fn stop(&mut self) {
        self.stopped = true;
        let now = clock::now();
        for slot in 0..self.slots.len() {
            let generation = self.slots[slot].generation;
            if let Some(conn) = self.slots[slot].conn.as_deref_mut() {
                conn.c.conn.shutdown(now);
                self.drive(slot, generation);
            }
        }
    }
}

/// Hands a connection to the async driver, in a task of its own.
fn to_async(conn: Box<Http1>, resume: Option<Resume>) {
    let Http1 { c, peer, open, .. } = *conn;
    let (sock, c) = c.take_io();
    // A socket tokio cannot watch is closed.
    match sock {
        Socket::Tcp(s) => {
            if let Ok(io) = tokio::net::TcpStream::from_std(s) {
                spawn_async(c.with_io(io), peer, resume, open);
            }
        }
        Socket::Unix(s) => {
            if let Ok(io) = tokio::net::UnixStream::from_std(s) {
                spawn_async(c.with_io(io), peer, resume, open);
            }
        }
        Socket::Tls(s) => {
            if let Ok(io) = (*s).map_sock(tokio::net::TcpStream::from_std) {
                spawn_async(c.with_io(io), peer, resume, open);
            }
        }
    }
}

fn spawn_async<S: Transport>(
    c: Conn<S>,
    peer: PeerInfo,
    resume: Option<Resume>,
    open: OpenConnection,
) {
    driven::spawn(async move {
        serve_from(c, peer, resume).await;
        drop(open);
    });
}

impl Http1 {
    /// Runs the connection until it must wait.
    fn drive(&mut self, ctx: &Arc<ServerCtx>) -> Step {
        loop {
            let step = match &mut self.phase {
                Phase::Idle => self.idle(ctx),
                Phase::Exchange(_) => self.exchange(ctx),
                Phase::WebSocket(_) => self.websocket(ctx),
            };
            match step {
                Some(step) => return step,
                None => continue,
            }
        }
    }

    /// Reads once, noting when a request's head began to arrive if the
    /// server times requests from their arrival.
    fn read_input(&mut self, tracks_arrival: bool) {
        let n = read(&mut self.c, &mut self.readable);
        if n > 0 && self.c.head_began.is_none() && tracks_arrival {
            self.c.head_began = Some(std::time::Instant::now());
        }
    }

    /// Between requests: reads until a head; None to go on.
    fn idle(&mut self, ctx: &Arc<ServerCtx>) -> Option<Step> {
        match self.c.conn.poll_event(clock::now()) {
            Event::Http(h1::Event::NeedData) => {
                if self.c.eof {
                    return Some(Step::Close);
                }
                if !self.readable {
                    return Some(Step::Wait);
                }
                self.read_input(ctx.tracks_arrival());
                None
            }
            Event::Http(h1::Event::RequestHead(head)) => match self.c.admit_request(ctx, head) {
                Admitted::App(h) if h.body_done && !h.expect_continue => {
                    self.phase = Phase::Exchange(Box::new(Exchanging {
                        shared: h.shared,
                        exchange: h.exchange,
                        read_ahead: 0,
                        finished: false,
                        stop_seen: false,
                        taken: 0,
                        sends_over: false,
                        looked: false,
                    }));
                    None
                }
                Admitted::App(h) => Some(Step::Async(Box::new(Resume::Exchange(h)))),
                Admitted::Server(ByServer::WebSocket { head, exchange }) => {
                    match self.c.ws_begin(head, exchange) {
                        Ok(session) => {
                            self.phase = Phase::WebSocket(Box::new(session));
                            None
                        }
                        // Core's answer is queued: written, then closed.
                        Err(WsRefused::Rejected) => Some(Step::Close),
                        Err(WsRefused::BadRequest) => {
                            Some(Step::Async(Box::new(Resume::Served(ByServer::BadRequest))))
                        }
                    }
                }
                Admitted::Server(by) => Some(Step::Async(Box::new(Resume::Served(by)))),
            },
            Event::Http2Preface => {
                self.c.http2 = true;
                Some(Step::Async(Box::new(Resume::Ended)))
            }
            Event::Http(h1::Event::Error(_)) => {
                // core queued the error response, if one can be sent.
                self.c.linger = true;
                Some(Step::Close)
            }
            // Closed, or an event that cannot happen between requests.
            _ => Some(Step::Close),
        }
    }

    /// A request with the app: its output applied and written, the socket
    /// watched for the client leaving; None to go on.
    fn exchange(&mut self, ctx: &Arc<ServerCtx>) -> Option<Step> {
        let Phase::Exchange(mut x) = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return None;
        };
        match self.exchange_step(ctx, &mut x) {
            Err(HandBack) => Some(Step::Async(Box::new(Resume::Exchange(HandedOver {
                shared: x.shared,
                exchange: x.exchange,
                body_done: true,
                expect_continue: false,
            })))),
            Ok(step @ Some(Step::Wait)) => {
                self.phase = Phase::Exchange(x);
                step
            }
            Ok(None) if !x.finished => {
                self.phase = Phase::Exchange(x);
                None
            }
            // The next request, or the end.
            Ok(step) => step,
        }
    }

    fn exchange_step(
        &mut self,
        ctx: &Arc<ServerCtx>,
        x: &mut Exchanging,
    ) -> Result<Option<Step>, HandBack> {
        // A stop during the exchange: core closes after this response.
        if !x.stop_seen && ctx.is_shutting_down() {
            x.stop_seen = true;
            self.c.conn.shutdown(clock::now());
        }
        // 1. The app's output, once what came before it is written.
        let look = std::mem::replace(&mut x.looked, true);
        if look && self.c.all_written() {
            x.shared.conn_wake.clear();
            let (outs, app_done) = {
                let mut st = x.shared.lock();
                if st.sends_file() {
                    return Err(HandBack);
                }
                let done = st.stream.is_finished();
                x.sends_over = done && st.waiters.send.is_none();
                (st.take_output(), done)
            };
            for out in outs {
                x.taken += out.body.len();
                match self.c.apply_output(out, &mut x.exchange, true) {
                    Applied::More => {}
                    Applied::End => x.finished = true,
                    Applied::Abort => return Ok(Some(self.abort(x))),
                }
            }
            if app_done && !x.finished {
                // The app returned without a complete response (the client
                // left): nothing is owed.
                return Ok(Some(self.abort(x)));
            }
        }
        // 2. Written.
        if write(&mut self.c, &mut self.writable).is_err() {
            self.c.disconnect(&x.shared);
            return Ok(Some(Step::Close));
        }
        if self.c.all_written() && x.taken > 0 {
            let taken = std::mem::take(&mut x.taken);
            // Only a `send()` waiting for room needs to hear of it.
            if !x.sends_over {
                self.c.written(&x.shared, taken);
            }
        }
        if x.finished {
            if !self.c.all_written() {
                return Ok(Some(Step::Wait));
            }
            x.exchange.finish(&self.c.client_label, self.c.info.scheme);
            self.answered_in = driven::read_turn();
            let keep = !self.c.eof && self.c.h1().is_keep_alive() && !ctx.is_shutting_down();
            if !keep || self.c.conn.start_next_cycle(clock::now()).is_err() {
                return Ok(Some(Step::Close));
            }
            return Ok(None);
        }
        // 3. Input read ahead (pipelined requests, or the client leaving).
        if self.readable && !self.c.eof && x.read_ahead < PIPELINE_READ_AHEAD {
            x.read_ahead += read(&mut self.c, &mut self.readable);
            if self.c.eof {
                x.shared.update(&ctx.queue, |st: &mut StreamState| {
                    if !st.stream.is_finished() {
                        st.stream.handle_disconnect();
                    }
                });
                // Nothing the app sends can be delivered now.
                return Ok(Some(Step::Close));
            }
            return Ok(None);
        }
        // 4. Wait for the app: its next output wakes this connection.
        self.c.conn.set_reading(clock::now(), false);
        if !self.c.all_written() {
            // Step 1 takes output only once what came before it is
            // written: a wake-up for output queued meanwhile (by an app on
            // another thread, while this drive ran) must outlive this wait,
            // or that output would sit untaken while its sender waits for
            // room. Writability drives the connection again.
            x.shared.conn_wake.register(&self.waker);
            return Ok(Some(Step::Wait));
        }
        let mut cx = Context::from_waker(&self.waker);
        if pin!(x.shared.conn_wake.notified()).poll(&mut cx).is_ready() {
            Ok(None)
        } else {
            Ok(Some(Step::Wait))
        }
    }

    /// A WebSocket session: the app's answer to the handshake, then frames
    /// both ways (see [`super::websocket`]); None to go on.
    fn websocket(&mut self, ctx: &Arc<ServerCtx>) -> Option<Step> {
        let Self {
            c,
            phase: Phase::WebSocket(s),
            readable,
            writable,
            waker,
            ..
        } = self
        else {
            return None;
        };
        if s.is_open() {
            // Read first, so that what came is pumped to the app at once.
            if *readable && !s.is_paused() && !c.eof {
                read(c, readable);
            }
            if let Some(settings) = &ctx.ws {
                s.wakeup().clear();
                c.ws_pump(s, settings);
            }
        } else {
            // A stop before the app answered ends the session.
            let answer = if ctx.is_shutting_down() {
                Answer::Over
            } else {
                c.ws_answer(s)
            };
            match answer {
                Answer::Pending => {}
                Answer::Accepted => return None,
                Answer::Over => {
                    c.ws_end(s);
                    return Some(Step::Close);
                }
            }
        }
        if write(c, writable).is_err() {
            c.ws_end(s);
            return Some(Step::Close);
        }
        if c.all_written() {
            c.ws_written(s);
        }
        if c.eof || (s.is_open() && c.ws_over()) {
            c.ws_end(s);
            return Some(Step::Close);
        }
        if *readable && !s.is_paused() {
            if !s.is_open() {
                read(c, readable);
            }
            return None;
        }
        // The app's next output, or its taking a message, wakes it.
        let mut cx = Context::from_waker(waker);
        if pin!(s.wakeup().notified()).poll(&mut cx).is_ready() {
            None
        } else {
            Some(Step::Wait)
        }
    }

    /// The response cannot be completed: what is queued of it goes out,
    /// then the connection closes without finishing it.
    fn abort(&mut self, x: &Exchanging) -> Step {
        self.c.disconnect(&x.shared);
        self.c.linger = true;
        Step::Close
    }
}

impl Conn<Socket> {
    /// Everything given to the socket reached the kernel.
    fn all_written(&self) -> bool {
        self.wbufs.is_empty() && !self.io.has_pending()
    }
}

/// Reads once and hands the bytes (or the EOF) to core; the bytes read.
/// `readable` is cleared once the socket is empty.
fn read(c: &mut Conn<Socket>, readable: &mut bool) -> usize {
    if let Socket::Tls(tls) = &mut c.io {
        // rustls gives plaintext into a slice: the thread's buffer, copied.
        // It may give less than asked (a record's) and hold more.
        let (got, drained) = READ_BUF.with_borrow_mut(|buf| (tls.read(buf), tls.drained()));
        return took(c, readable, got, |c, n| {
            READ_BUF.with_borrow(|buf| c.conn.handle_bytes(clock::now(), &buf[..n]));
            drained
        });
    }
    READ_INTO.with_borrow_mut(|buf| {
        // Between reads the buffer is empty: the last one copied it out or
        // handed it over.
        if buf.capacity() < READ_CHUNK {
            buf.reserve(READ_CHUNK);
        }
        let asked = buf.capacity();
        let got = crate::sys::read_to_spare(c.io.fd(), buf);
        took(c, readable, got, |c, n| {
            if n >= HAND_OVER_MIN {
                c.conn.handle_buf(clock::now(), std::mem::take(buf));
            } else {
                c.conn.handle_bytes(clock::now(), buf);
                buf.clear();
            }
            n < asked
        })
    })
}

/// What a read gave: bytes for `deliver`, which hands them to core and says
/// whether the socket is empty now; or the EOF; or an error.
fn took(
    c: &mut Conn<Socket>,
    readable: &mut bool,
    got: std::io::Result<usize>,
    deliver: impl FnOnce(&mut Conn<Socket>, usize) -> bool,
) -> usize {
    match got {
        Ok(0) => {
            c.eof = true;
            c.conn.handle_eof();
            0
        }
        Ok(n) => {
            // More input comes with a new edge once the socket is empty.
            if deliver(c, n) {
                *readable = false;
            }
            n
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            *readable = false;
            0
        }
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
        Err(_) => {
            c.eof = true;
            c.conn.handle_eof();
            0
        }
    }
}

/// Writes what core has queued, and what an earlier write left, as far as
/// the socket takes it; `writable` is cleared once it is full. Err when the
/// socket failed.
fn write(c: &mut Conn<Socket>, writable: &mut bool) -> Result<(), ()> {
    if c.conn.has_transmit() {
        c.conn.poll_transmit(&mut c.wbufs);
    }
    while *writable && !c.all_written() {
        if c.wbufs.is_empty() {
            match c.io.flush_pending() {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => *writable = false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(()),
            }
            continue;
        }
        // A small response is one buffer (core copies small bodies into
        // the head's).
        let (written, asked) = if let [one] = &c.wbufs[..] {
            (c.io.write(one), one.len())
        } else {
            let (slices, count) = io_slices(c.wbufs.iter().map(|b| &b[..]));
            let asked = c.wbufs[..count].iter().map(Bytes::len).sum();
            (c.io.write_vectored(&slices[..count]), asked)
        };
        match written {
            Ok(0) => return Err(()),
            Ok(n) => {
                if n < asked {
                    *writable = false;
                }
                consume(&mut c.wbufs, n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => *writable = false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    Ok(())
}

/// Drops the first `n` bytes of `bufs`.
fn consume(bufs: &mut Vec<Bytes>, mut n: usize) {
    let mut whole = 0;
    for b in bufs.iter_mut() {
        if n < b.len() {
            let _ = b.split_to(n);
            break;
        }
        n -= b.len();
        whole += 1;
    }
    bufs.drain(..whole);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_drops_whole_buffers_then_part_of_one() {
        let mut bufs = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"de"),
            Bytes::from_static(b"fgh"),
        ];
        consume(&mut bufs, 4);
        assert_eq!(bufs, [Bytes::from_static(b"e"), Bytes::from_static(b"fgh")]);
        consume(&mut bufs, 0);
        assert_eq!(bufs.len(), 2);
        consume(&mut bufs, 4);
        assert!(bufs.is_empty());
    }

    #[test]
    fn a_token_names_its_slot_and_generation() {
        for (slot, generation) in [(0, 0), (7, 1), (u32::MAX as usize, u32::MAX)] {
            assert_eq!(untoken(token(slot, generation)), (slot, generation));
        }
    }
}
