//! WSGI applications (PEP 3333). Each request is one blocking call of the
//! app over the request's blocking handle (the embedding layer's
//! [`embed::Request`], the same app-side stream the C API's server uses),
//! run by a bounded pool of threads that let the GIL go around every wait.
//!
//! With one thread (`--blocking-threads 1`), a request whose body has
//! arrived whole runs inline, on the worker's own thread, with no thread
//! hop: nothing it does can wait there, except on a slow client, and a
//! response that gets that far ahead hands the rest of its iterable to the
//! pool thread.

mod call;
mod environ;
mod pool;

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use super::PyCtx;
use super::message::bytes_like;
use crate::embed::{self, Link};
use crate::handoff::http::NewRequest;
use crate::handoff::queue::{Job, JobQueue};
use call::{Call, Input};
use pool::Pool;

/// What every call of one worker's app shares.
pub(crate) struct App {
    app: Py<PyAny>,
    link: Arc<Link>,
    ctx: Arc<PyCtx>,
    environ: environ::Shared,
}

/// Work for an application thread.
pub(crate) enum Work {
    /// A new request.
    Request(Box<NewRequest>),
    /// The rest of a response whose inline call got ahead of its client.
    Resume {
        /// The request's `contextvars` context.
        context: Py<PyAny>,
        call: Py<Call>,
        iter: Py<PyAny>,
        iterable: Py<PyAny>,
    },
}

/// A worker's WSGI side.
pub(crate) struct Wsgi {
    app: Arc<App>,
    pool: Pool,
    /// Requests whose body is complete run on the calling thread.
    inline: Option<Mutex<environ::Kept>>,
}

impl Wsgi {
    /// Starts `threads` application threads for `app`. `errors` and
    /// `file_wrapper` are `wsgi.errors` and `wsgi.file_wrapper`.
    pub(crate) fn start(
        app: Py<PyAny>,
        ctx: Arc<PyCtx>,
        threads: usize,
        multiprocess: bool,
        errors: Py<PyAny>,
        file_wrapper: Py<PyAny>,
    ) -> PyResult<Self> {
        let link = Arc::new(Link {
            conn_wakes: ctx.conn_wakes.clone(),
            stopped: std::sync::atomic::AtomicBool::new(false),
        });
        // `CORMORANT_WSGI_INLINE=0` runs one thread as a pool (to measure
        // the two against each other).
        let inline =
            threads == 1 && std::env::var_os("CORMORANT_WSGI_INLINE").is_none_or(|v| v != "0");
        let app = Arc::new(App {
            app,
            link,
            ctx,
            environ: environ::Shared {
                errors,
                file_wrapper,
                // An inline call and the pool thread can overlap.
                multithread: threads > 1 || inline,
                multiprocess,
            },
        });
        let pool = Pool::start(threads, &app)
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start the WSGI threads: {e}")))?;
        Ok(Self {
            app,
            pool,
            inline: inline.then(|| Mutex::new(environ::Kept::default())),
        })
    }

    /// Runs a new request's app: inline when it can, else on the pool.
    pub(crate) fn dispatch(&self, py: Python<'_>, nr: Box<NewRequest>) {
        if let Some(kept) = &self.inline
            && !nr.shared.lock().stream.wants_body()
        {
            let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(rest) = run(py, &self.app, &mut kept, Work::Request(nr)) {
                self.pool.push(rest);
            }
            return;
        }
        self.pool.push(Work::Request(nr));
    }

    /// Whether requests run inline (one application thread).
    pub(crate) fn is_inline(&self) -> bool {
        self.inline.is_some()
    }

    /// The server's job queue for a pool: on the I/O thread, a new request
    /// is admitted (`--max-queue-time`) and queued for the pool at once,
    /// with no Python; every other job goes on to `main`, the worker
    /// thread's queue.
    pub(crate) fn direct_queue(&self, main: Arc<JobQueue>) -> std::io::Result<JobQueue> {
        let (pool, ctx) = (self.pool.handle(), self.app.ctx.clone());
        JobQueue::direct(move |job| match job {
            Job::Request(nr) => {
                let admitted = nr
                    .arrived
                    .is_none_or(|at| super::request::Request::admit(&nr.shared, &ctx, at));
                if admitted {
                    pool.push(Work::Request(nr));
                }
            }
            other => main.push(other),
        })
    }

    /// Ends the pool once the server is done: queued calls run first.
    pub(crate) fn close(&mut self, py: Python<'_>) {
        self.app
            .link
            .stopped
            .store(true, std::sync::atomic::Ordering::Release);
        self.pool.close(py);
    }
}

/// Runs one piece of work, in the request's own copy of the thread's
/// `contextvars` context (kept when the rest of a response moves to a pool
/// thread: Flask's `stream_with_context` reads it). Inline, a response
/// that got ahead of its client returns the rest, for a pool thread.
fn run(py: Python<'_>, app: &App, kept: &mut environ::Kept, work: Work) -> Option<Work> {
    let (context, started) = match work {
        Work::Request(nr) => {
            let context = match crate::sys::copy_context(py) {
                Ok(c) => c,
                Err(e) => {
                    log(py, app, &e, "Exception while starting the WSGI application");
                    return None;
                }
            };
            let started = crate::sys::in_context(&context, || start(py, app, kept, nr));
            (context, started)
        }
        Work::Resume {
            context,
            call,
            iter,
            iterable,
        } => (context.into_bound(py), Ok(Some((call, iter, iterable)))),
    };
    let (call, iter, iterable) = match started {
        Ok(Some(running)) => running,
        Ok(None) => return None,
        Err(e) => {
            log(py, app, &e, "Exception while starting the WSGI application");
            return None;
        }
    };
    let inline = crate::handoff::on_io_thread();
    let ended = crate::sys::in_context(&context, || {
        let ended = stream(py, call.get(), iter.bind(py), inline);
        if !matches!(ended, Ok(false)) {
            if let Err(e) = &ended {
                log(py, app, e, "Exception in WSGI application");
            }
            close(py, app, iterable.bind(py));
            call.get().finish();
        }
        ended
    });
    match ended {
        Ok(Ok(false)) => Some(Work::Resume {
            context: context.unbind(),
            call,
            iter,
            iterable,
        }),
        Err(e) => {
            log(py, app, &e, "Exception in WSGI application");
            call.get().finish();
            None
        }
        _ => None,
    }
}

/// Calls the app for a new request. A response it gave whole is sent
/// here (None); otherwise its iterator is returned, to stream.
fn start(
    py: Python<'_>,
    app: &App,
    kept: &mut environ::Kept,
    nr: Box<NewRequest>,
) -> Option<(Py<Call>, Py<PyAny>, Py<PyAny>)> {
    // `--metrics`, `--max-queue-time`: the wait until now is counted, and
    // one that was too long (queued behind busy threads) is answered 503.
    if let Some(arrived) = nr.arrived {
        let queue_time = &app.ctx.queue_time;
        if !queue_time.start(arrived, queue_time.has_limit()) {
            super::request::Request::shed(&nr.shared, &app.ctx);
            return None;
        }
    }
    let req = embed::Request::new(*nr, app.link.clone());
    let made = environ::environ(py, kept, &app.environ, req.scope()).and_then(|environ| {
        let call = Py::new(py, Call::new(req))?;
        let input = Input {
            call: call.clone_ref(py),
        };
        environ.set_item(intern!(py, "wsgi.input"), input)?;
        Ok((environ, call))
    });
    let (environ, call) = match made {
        Ok(made) => made,
        Err(e) => {
            log(py, app, &e, "Exception while starting the WSGI application");
            return None;
        }
    };
    let iterable = match app.app.call1(py, (environ, call.clone_ref(py))) {
        Ok(it) => it,
        Err(e) => {
            log(py, app, &e, "Exception in WSGI application");
            call.get().finish();
            return None;
        }
    };
    let iter = match respond_at_once(py, app, call.get(), iterable.bind(py)) {
        Ok(true) => None,
        Ok(false) => match iterable.bind(py).try_iter() {
            Ok(iter) => return Some((call, iter.into_any().unbind(), iterable)),
            Err(e) => Some(e),
        },
        Err(e) => Some(e),
    };
    if let Some(e) = iter {
        log(py, app, &e, "Exception in WSGI application");
    }
    close(py, app, iterable.bind(py));
    call.get().finish();
    None
}

/// A list or tuple (what most frameworks return for a whole body), or a
/// `wsgi.file_wrapper` over a file, goes out at once, its last piece with
/// the end of the response (so that its length is known). False: iterate.
fn respond_at_once<'py>(
    py: Python<'py>,
    app: &App,
    call: &Call,
    iterable: &Bound<'py, PyAny>,
) -> PyResult<bool> {
    let (len, item): (usize, &dyn Fn(usize) -> PyResult<Bound<'py, PyAny>>) =
        if let Ok(list) = iterable.cast::<PyList>() {
            (list.len(), &move |i| list.get_item(i))
        } else if let Ok(tuple) = iterable.cast::<PyTuple>() {
            (tuple.len(), &move |i| tuple.get_item(i))
        } else if let Some(path) = file_path(py, app, iterable)? {
            return call.send_file(path);
        } else {
            return Ok(false);
        };
    for i in 0..len {
        call.send_body(py, body_piece(&item(i)?)?, i + 1 != len)?;
    }
    if len == 0 {
        call.send_body(py, Bytes::new(), false)?;
    }
    Ok(true)
}

/// Sends the iterator's pieces; true at its end. Inline, stops (false)
/// once the response is that far ahead of its client.
fn stream(py: Python<'_>, call: &Call, iter: &Bound<'_, PyAny>, inline: bool) -> PyResult<bool> {
    loop {
        let Some(item) = next(iter)? else {
            call.send_body(py, Bytes::new(), false)?;
            return Ok(true);
        };
        call.send_body(py, body_piece(&item)?, true)?;
        if inline && call.backlogged() {
            return Ok(false);
        }
    }
}

/// `next(iter)`, None at its end.
fn next<'py>(iter: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = iter.py();
    match iter.call_method0(intern!(py, "__next__")) {
        Ok(item) => Ok(Some(item)),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyStopIteration>(py) => Ok(None),
        Err(e) => Err(e),
    }
}

fn body_piece(item: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    bytes_like(item).ok_or_else(|| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "the response iterable must yield bytes, not {} (PEP 3333)",
            item.get_type()
                .name()
                .map_or_else(|_| "?".into(), |n| n.to_string())
        ))
    })
}

/// The path of the file a `wsgi.file_wrapper` of ours wraps, when it can
/// be sent whole by the server (`sendfile`): a regular file, read from its
/// start (the wrapper's `sendable_path()` decides).
fn file_path(py: Python<'_>, app: &App, iterable: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if !iterable.get_type().is(&app.environ.file_wrapper) {
        return Ok(None);
    }
    iterable
        .call_method0(intern!(py, "sendable_path"))?
        .extract()
}

/// Calls the iterable's `close()`, if it has one (PEP 3333: always).
fn close(py: Python<'_>, app: &App, iterable: &Bound<'_, PyAny>) {
    // The common whole bodies have none: no failed lookup (an exception
    // made and dropped) for them.
    if iterable.is_exact_instance_of::<PyList>() || iterable.is_exact_instance_of::<PyTuple>() {
        return;
    }
    match iterable.getattr_opt(intern!(py, "close")) {
        Ok(Some(close)) => {
            if let Err(e) = close.call0() {
                log(py, app, &e, "Exception in the WSGI response's close()");
            }
        }
        Ok(None) => {}
        Err(e) => log(py, app, &e, "Exception in the WSGI response's close()"),
    }
}

/// Logs an exception with its traceback (which `into_value` attaches).
fn log(py: Python<'_>, app: &App, e: &PyErr, what: &str) {
    let exc = e.clone_ref(py).into_value(py);
    let _ = app.ctx.log_app_error(py, exc.bind(py).as_any(), what);
}
