//! The coroutine of each request's task: it calls the app, steps the
//! awaitable the app returns, and tells the stream how the app ended.
//!
//! Written natively rather than as an `async def` wrapper: a request then
//! pays for no coroutine, frame and method call of the server's own, and
//! each step of the task goes straight to the app's awaitable.

use pyo3::exceptions::{PyException, PyStopIteration};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};
use pyo3::{PyTraverseError, PyVisit, intern};

use super::PyCtx;
use super::request::Request;
use super::websocket::WebSocket;

/// The stream an app call serves.
pub(crate) enum Stream {
    Http(Py<Request>),
    WebSocket(Py<WebSocket>),
}

impl Stream {
    fn object(&self) -> &Py<PyAny> {
        match self {
            Self::Http(r) => r.as_any(),
            Self::WebSocket(w) => w.as_any(),
        }
    }

    /// `--metrics` or `--max-queue-time`: counts the wait; false when the
    /// request was shed.
    fn start(&self) -> bool {
        match self {
            Self::Http(r) => r.get().start(),
            Self::WebSocket(_) => true,
        }
    }

    /// The app returned (`exc` None) or raised: the error is logged, and
    /// the stream answers for the app as core decides.
    fn exit(&self, py: Python<'_>, exc: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let (ctx, failed) = (self.ctx(), exc.is_some());
        if let Some(exc) = &exc {
            ctx.log_app_error(py, exc, "Exception in ASGI application")?;
        }
        match self {
            Self::Http(r) => r.get().exit(failed),
            Self::WebSocket(w) => w.get().exit(failed),
        }
        Ok(())
    }

    /// Adopts the stream's waiting `receive()` future for `carrier`, if
    /// `awaited` is that future.
    fn adopt(&self, awaited: &Py<PyAny>, carrier: &Bound<'_, super::task_pool::Carrier>) -> bool {
        match self {
            Self::Http(r) => super::adopt_receiver(&r.get().shared, awaited, carrier),
            Self::WebSocket(w) => super::adopt_receiver(&w.get().shared, awaited, carrier),
        }
    }

    fn ctx(&self) -> &PyCtx {
        match self {
            Self::Http(r) => &r.get().ctx,
            Self::WebSocket(w) => &w.get().ctx,
        }
    }
}

enum State {
    /// Not stepped yet: the app is called at the first step, inside the
    /// task (its context, its current task), as `await app(...)` would.
    Waiting {
        app: Py<PyAny>,
        scope: Py<PyDict>,
        stream: Stream,
        timed: bool,
    },
    /// Stepping the iterator of the app's awaitable.
    Running {
        iter: Py<PyAny>,
        stream: Stream,
    },
    Ended,
}

/// How the task resumes the coroutine.
pub(crate) enum Resume<'py> {
    Next,
    Send(Bound<'py, PyAny>),
    Throw(Bound<'py, PyAny>),
}

/// `app(scope, receive, send)` as a coroutine for one task, reporting to
/// the stream when the app returns or raises: an exception is logged and
/// answered (500, or a cut-off response) and ends the task quietly;
/// cancellation and exits such as `KeyboardInterrupt` propagate.
#[pyclass(module = "cormorant._cormorant")]
pub(crate) struct AppCall {
    state: State,
}

impl AppCall {
    pub(crate) fn new(app: Py<PyAny>, scope: Py<PyDict>, stream: Stream, timed: bool) -> Self {
        Self {
            state: State::Waiting {
                app,
                scope,
                stream,
                timed,
            },
        }
    }

    /// The app's awaitable while it is suspended (what `cr_await` shows).
    pub(crate) fn awaiting(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        match &self.state {
            State::Running { iter, .. } => Some(iter.clone_ref(py)),
            _ => None,
        }
    }

    /// Whether the app, suspended on `awaited`, awaits its own stream's
    /// `receive()`: the future is then adopted by `carrier`.
    pub(crate) fn adopt(
        &self,
        awaited: &Py<PyAny>,
        carrier: &Bound<'_, super::task_pool::Carrier>,
    ) -> bool {
        match &self.state {
            State::Running { stream, .. } => stream.adopt(awaited, carrier),
            _ => false,
        }
    }

    /// One step. The state is out of `self` while the app runs, and goes
    /// back only if the awaitable yielded.
    pub(crate) fn resume(
        &mut self,
        py: Python<'_>,
        how: Resume<'_>,
    ) -> PyResult<Option<Py<PyAny>>> {
        let (iter, stream, how) = match std::mem::replace(&mut self.state, State::Ended) {
            State::Waiting {
                app,
                scope,
                stream,
                timed,
            } => {
                if let Resume::Throw(exc) = how {
                    // Cancelled before it began: the app is never called.
                    stream.exit(py, None)?;
                    return Err(PyErr::from_value(exc));
                }
                if timed && !stream.start() {
                    return Ok(None);
                }
                match call_app(py, &app, scope, stream.object()) {
                    Ok(iter) => (iter, stream, Resume::Next),
                    Err(e) => return end(py, &stream, Err(e)),
                }
            }
            State::Running { iter, stream } => (iter, stream, how),
            State::Ended => return Ok(None),
        };
        let it = iter.bind(py);
        let stepped = match how {
            Resume::Next => crate::sys::iter_send(it, &py.None().into_bound(py)),
            Resume::Send(v) => crate::sys::iter_send(it, &v),
            Resume::Throw(e) => crate::sys::sent(py, it.call_method1(intern!(py, "throw"), (e,))),
        };
        match stepped {
            Ok(crate::sys::Sent::Yielded(v)) => {
                self.state = State::Running { iter, stream };
                Ok(Some(v.unbind()))
            }
            Ok(crate::sys::Sent::Returned) => end(py, &stream, Ok(())),
            Err(e) => end(py, &stream, Err(e)),
        }
    }
}

/// Calls the app and returns what its awaitable is stepped through: a
/// native coroutine itself, else the iterator of its `__await__`.
fn call_app(
    py: Python<'_>,
    app: &Py<PyAny>,
    scope: Py<PyDict>,
    stream: &Py<PyAny>,
) -> PyResult<Py<PyAny>> {
    let stream = stream.bind(py);
    let receive = stream.getattr(intern!(py, "receive"))?;
    let send = stream.getattr(intern!(py, "send"))?;
    let awaitable = app.bind(py).call1((scope, receive, send))?;
    if crate::sys::is_coroutine(&awaitable) {
        return Ok(awaitable.unbind());
    }
    match awaitable.call_method0(intern!(py, "__await__")) {
        Ok(iter) => Ok(iter.unbind()),
        Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "the ASGI application returned {}, which is not awaitable",
            awaitable
                .get_type()
                .name()
                .map_or_else(|_| "an object".to_owned(), |n| n.to_string())
        ))),
    }
}

/// The app ended: the stream is told, and the task ends quietly unless
/// the app was cancelled or raised something other than an `Exception`.
fn end(py: Python<'_>, stream: &Stream, outcome: PyResult<()>) -> PyResult<Option<Py<PyAny>>> {
    let Err(e) = outcome else {
        stream.exit(py, None)?;
        return Ok(None);
    };
    if is_cancelled(py, &e)? {
        stream.exit(py, None)?;
        return Err(e);
    }
    // The instance with its traceback attached, for the log (and for
    // raising it again).
    let exc = e.into_value(py).into_bound(py).into_any();
    stream.exit(py, Some(exc.clone()))?;
    if exc.is_instance_of::<PyException>() {
        Ok(None)
    } else {
        Err(PyErr::from_value(exc))
    }
}

/// The exception a coroutine's `throw(exc, value, tb)` raises: an
/// instance as given, or one made from the old three-argument form as
/// Python makes it.
pub(crate) fn thrown<'py>(
    py: Python<'py>,
    exc: Bound<'py, PyAny>,
    value: Option<Bound<'py, PyAny>>,
    tb: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let exc = match (value, tb) {
        (None, None) => exc,
        (value, tb) => {
            let e = match value {
                Some(v) if v.is_instance(exc.cast::<PyType>()?)? => v,
                Some(v) if !v.is_none() => exc.call1((v,))?,
                _ => exc.call0()?,
            };
            if let Some(tb) = tb.filter(|t| !t.is_none()) {
                e.call_method1(intern!(py, "with_traceback"), (tb,))?
            } else {
                e
            }
        }
    };
    if exc.is_instance_of::<PyType>() {
        exc.call0()
    } else {
        Ok(exc)
    }
}

/// Whether `e` is asyncio's CancelledError.
pub(crate) fn is_cancelled(py: Python<'_>, e: &PyErr) -> PyResult<bool> {
    static CANCELLED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    Ok(e.is_instance(py, CANCELLED.import(py, "asyncio", "CancelledError")?))
}

#[pymethods]
impl AppCall {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The task's step: `send(None)` arrives here on CPython 3.10 and later.
    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.resume(py, Resume::Next)
    }

    fn send(&mut self, py: Python<'_>, value: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let how = if value.is_none() {
            Resume::Next
        } else {
            Resume::Send(value)
        };
        self.resume(py, how)?
            .ok_or_else(|| PyStopIteration::new_err(()))
    }

    #[pyo3(signature = (exc, value = None, tb = None))]
    fn throw(
        &mut self,
        py: Python<'_>,
        exc: Bound<'_, PyAny>,
        value: Option<Bound<'_, PyAny>>,
        tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let exc = thrown(py, exc, value, tb)?;
        self.resume(py, Resume::Throw(exc))?
            .ok_or_else(|| PyStopIteration::new_err(()))
    }

    /// Closes the app's awaitable (a task dropped unfinished); the stream
    /// is told, so the connection is answered.
    pub(crate) fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        match std::mem::replace(&mut self.state, State::Ended) {
            State::Waiting { stream, .. } => stream.exit(py, None),
            State::Running { iter, stream } => {
                let closed = iter.call_method0(py, intern!(py, "close"));
                let exc = closed
                    .err()
                    .map(|e| e.into_value(py).into_bound(py).into_any());
                stream.exit(py, exc)
            }
            State::Ended => Ok(()),
        }
    }

    /// What the coroutine awaits while suspended (for debuggers that walk
    /// `cr_await`); None while it runs, as for a native coroutine.
    #[getter]
    fn cr_await(slf: &Bound<'_, Self>) -> Option<Py<PyAny>> {
        slf.try_borrow().ok()?.awaiting(slf.py())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        match &self.state {
            State::Waiting {
                app, scope, stream, ..
            } => {
                visit.call(app)?;
                visit.call(scope)?;
                visit.call(stream.object())
            }
            State::Running { iter, stream } => {
                visit.call(iter)?;
                visit.call(stream.object())
            }
            State::Ended => Ok(()),
        }
    }

    fn __clear__(&mut self) {
        self.state = State::Ended;
    }
}
