//! The pyo3 bridge: the objects the Python side sees, and the hand-over of
//! requests between the I/O thread and the Python thread.

pub(crate) mod app_call;
pub(crate) mod awaitable;
pub(crate) mod lifespan;
pub(crate) mod message;
pub(crate) mod queue_time;
pub(crate) mod request;
pub(crate) mod scope;
pub(crate) mod task_pool;
pub(crate) mod websocket;
pub(crate) mod worker;
pub(crate) mod wsgi;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyOSError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::handoff::{Handoff, SendSide, Waiter, Waiters};

create_exception!(
    _cormorant,
    ClientDisconnected,
    PyOSError,
    "send() was called after the client disconnected (ASGI HTTP spec 2.4)."
);
create_exception!(
    _cormorant,
    StartupError,
    PyException,
    "The server could not start: bad configuration or a socket that cannot be bound."
);

/// Python objects every request of a worker uses.
pub(crate) struct PyCtx {
    /// `loop.create_future`.
    pub(crate) create_future: Py<PyAny>,
    /// A future already resolved to None: what a `send()` that needs no
    /// waiting returns.
    pub(crate) done: Py<PyAny>,
    /// The `cormorant.error` logger.
    pub(crate) error_logger: Py<PyAny>,
    /// The `cormorant.access` logger, when access logging is on.
    pub(crate) access_logger: Option<Py<PyAny>>,
    /// The I/O thread's mailbox.
    pub(crate) conn_wakes: std::sync::Arc<crate::handoff::queue::ConnWakes>,
    /// Requests' waits for the app: counted, and too long ones shed.
    pub(crate) queue_time: queue_time::QueueTime,
}

impl PyCtx {
    /// Logs an exception that ended an application task: a client that went
    /// away at debug level, anything else as an error with its traceback.
    pub(crate) fn log_app_error(
        &self,
        py: Python<'_>,
        exc: &Bound<'_, PyAny>,
        what: &str,
    ) -> PyResult<()> {
        if exc.is_instance_of::<ClientDisconnected>() {
            self.error_logger
                .call_method1(py, intern!(py, "debug"), ("client disconnected",))?;
            return Ok(());
        }
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "exc_info"), exc)?;
        self.error_logger
            .call_method(py, intern!(py, "error"), (what,), Some(&kwargs))?;
        Ok(())
    }

    /// What `send()` returns: the shared resolved future, or, when the
    /// connection is behind (`wait`), a new future parked in `waiter` until
    /// the connection drains.
    pub(crate) fn send_result(
        &self,
        py: Python<'_>,
        wait: bool,
        waiters: &mut Waiters,
    ) -> PyResult<Py<PyAny>> {
        if !wait {
            return Ok(self.done.clone_ref(py));
        }
        let fut = self.create_future.call0(py)?;
        waiters.wait_send(waiter(fut.clone_ref(py)));
        Ok(fut)
    }
}

/// A stream's waiter for an asyncio future.
pub(crate) fn waiter(fut: Py<PyAny>) -> Waiter {
    Waiter::Future(Box::new(fut))
}

/// The asyncio future a waiter holds (a parked thread is woken instead).
pub(crate) fn future_of(waiter: Waiter) -> Option<Py<PyAny>> {
    let fut = waiter.into_future()?;
    fut.downcast::<Py<PyAny>>().ok().map(|f| *f)
}

/// A `receive()` future that a pooled task's app awaits, adopted by the
/// task's carrier: delivering to it resumes the app at once (see
/// [`task_pool::Carrier::resume_parked`]).
pub(crate) struct Adopted {
    fut: Py<PyAny>,
    carrier: Py<task_pool::Carrier>,
}

/// Adopts the stream's waiting `receive()` future for `carrier`, if
/// `awaited` is that future.
pub(crate) fn adopt_receiver<S: SendSide>(
    shared: &Handoff<S>,
    awaited: &Py<PyAny>,
    carrier: &Bound<'_, task_pool::Carrier>,
) -> bool {
    let mut st = shared.lock();
    let slot = &mut st.waiters().recv;
    let Some(Waiter::Future(held)) = slot else {
        return false;
    };
    if !held
        .downcast_ref::<Py<PyAny>>()
        .is_some_and(|f| f.is(awaited))
    {
        return false;
    }
    *slot = Some(Waiter::Future(Box::new(Adopted {
        fut: awaited.clone_ref(carrier.py()),
        carrier: carrier.clone().unbind(),
    })));
    true
}

/// Who waits in a `receive()`.
pub(crate) enum Receiver {
    /// An asyncio future, awaited by whatever awaits it.
    Future(Py<PyAny>),
    /// A future adopted by a pooled task's carrier.
    Adopted(Adopted),
}

impl Receiver {
    fn future(&self) -> &Py<PyAny> {
        match self {
            Self::Future(f) => f,
            Self::Adopted(a) => &a.fut,
        }
    }
}

/// The waiter of a `receive()`, unless its future is done: a `receive()`
/// cancelled while it waited (`asyncio.wait_for` timing out, Starlette's
/// `is_disconnected`) takes no message, which stays queued for the next
/// one.
pub(crate) fn live_receiver(py: Python<'_>, waiter: Option<Waiter>) -> PyResult<Option<Receiver>> {
    let Some(held) = waiter.and_then(Waiter::into_future) else {
        return Ok(None);
    };
    let receiver = match held.downcast::<Py<PyAny>>() {
        Ok(fut) => Receiver::Future(*fut),
        Err(held) => match held.downcast::<Adopted>() {
            Ok(adopted) => Receiver::Adopted(*adopted),
            Err(_) => return Ok(None),
        },
    };
    if receiver
        .future()
        .call_method0(py, intern!(py, "done"))?
        .is_truthy(py)?
    {
        return Ok(None);
    }
    Ok(Some(receiver))
}

/// Gives a message to a receiver [`live_receiver`] found waiting. An
/// adopted future has no callbacks, so resolving it schedules nothing: its
/// carrier resumes the app here.
pub(crate) fn deliver(py: Python<'_>, receiver: Receiver, message: Py<PyAny>) -> PyResult<()> {
    let fut = receiver.future();
    fut.call_method1(py, intern!(py, "set_result"), (message,))?;
    if let Receiver::Adopted(a) = &receiver {
        task_pool::Carrier::resume_parked(a.carrier.bind(py), &a.fut)?;
    }
    Ok(())
}

/// Resolves an asyncio future unless it is already done (cancelled).
pub(crate) fn resolve(py: Python<'_>, fut: &Py<PyAny>, value: Py<PyAny>) -> PyResult<()> {
    let fut = fut.bind(py);
    if !fut.call_method0(intern!(py, "done"))?.is_truthy()? {
        fut.call_method1(intern!(py, "set_result"), (value,))?;
    }
    Ok(())
}

/// Fails an asyncio future unless it is already done (cancelled).
pub(crate) fn reject(py: Python<'_>, fut: &Py<PyAny>, exc: PyErr) -> PyResult<()> {
    let fut = fut.bind(py);
    if !fut.call_method0(intern!(py, "done"))?.is_truthy()? {
        fut.call_method1(intern!(py, "set_exception"), (exc.value(py),))?;
    }
    Ok(())
}
