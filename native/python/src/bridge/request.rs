//! The `receive` and `send` callables of one HTTP request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cormorant_core::asgi::message::http_message;
use cormorant_core::asgi::{Receive, SendError};
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict};

use super::awaitable::Ready;
use super::message::{PyMessage, to_py_err};
use super::{ClientDisconnected, PyCtx};
use crate::handoff::http::{SEND_HIGH_WATER, Shared};

/// The per-request object whose bound methods are the app's `receive` and
/// `send`.
#[pyclass(module = "cormorant._cormorant", frozen)]
pub(crate) struct Request {
    pub(crate) shared: Arc<Shared>,
    pub(crate) ctx: Arc<PyCtx>,
    /// When the request's head began to arrive, when that is tracked.
    pub(crate) arrived: Option<std::time::Instant>,
    /// Counted as pending by [`super::queue_time::QueueTime::admit`] until its app starts.
    pub(crate) counted: AtomicBool,
}

impl Request {
    /// Answers 503 with `Retry-After` in the app's place.
    pub(crate) fn shed(shared: &Arc<Shared>, ctx: &PyCtx) {
        ctx.queue_time.note_shed();
        shared.answer(&ctx.conn_wakes, |stream| {
            stream.handle_shed(SHED_RETRY_AFTER)
        });
    }

    /// As a request that arrived at `arrived` is handed to the app side:
    /// with `--max-queue-time`, false when it will likely wait too long,
    /// and then it is answered 503 here (see [`QueueTime::admit`]).
    ///
    /// [`QueueTime::admit`]: super::queue_time::QueueTime::admit
    pub(crate) fn admit(shared: &Arc<Shared>, ctx: &PyCtx, arrived: std::time::Instant) -> bool {
        let qt = &ctx.queue_time;
        if qt.has_limit() && !qt.admit(arrived) {
            Self::shed(shared, ctx);
            return false;
        }
        true
    }

    /// The app is about to be called (with `--metrics` or
    /// `--max-queue-time`; see [`super::app_call`]): counts how long the request
    /// waited, and sheds it with a 503 if that was longer than
    /// `--max-queue-time`. False: shed, do not call the app.
    pub(crate) fn start(&self) -> bool {
        let Some(arrived) = self.arrived else {
            return true;
        };
        let counted = self.counted.swap(false, Ordering::Relaxed);
        if self.ctx.queue_time.start(arrived, counted) {
            return true;
        }
        Self::shed(&self.shared, &self.ctx);
        false
    }

    /// The application returned, or raised (`failed`; logged by the caller).
    pub(crate) fn exit(&self, failed: bool) {
        let mut st = self.shared.lock();
        // A response completed before the app returned needs nothing more
        // from the connection: skip the cross-thread wake-up.
        let was_finished = st.stream.is_finished();
        let out = st.stream.handle_app_exit(failed);
        st.queue_output(out);
        drop(st);
        if !was_finished {
            self.shared.wake_conn(&self.ctx.conn_wakes);
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if self.counted.load(Ordering::Relaxed) {
            self.ctx.queue_time.abandon();
        }
    }
}

/// `Retry-After` of a request shed by `--max-queue-time`, in seconds: a
/// client that waits this long meets a queue that has had time to drain.
const SHED_RETRY_AFTER: u32 = 1;

fn request_message<'py>(py: Python<'py>, body: &[u8], more: bool) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "type"), intern!(py, "http.request"))?;
    d.set_item(intern!(py, "body"), PyBytes::new(py, body))?;
    d.set_item(intern!(py, "more_body"), PyBool::new(py, more))?;
    Ok(d)
}

fn disconnect_message(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "type"), intern!(py, "http.disconnect"))?;
    Ok(d)
}

/// The dict `receive()` returns for a core [`Receive`] (not `Pending`).
pub(crate) fn receive_message(py: Python<'_>, r: Receive) -> PyResult<Bound<'_, PyDict>> {
    match r {
        Receive::HttpRequest { body, more_body } => request_message(py, &body, more_body),
        Receive::HttpDisconnect | Receive::Pending => disconnect_message(py),
    }
}

#[pymethods]
impl Request {
    /// The ASGI `receive()` callable.
    fn receive(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut st = self.shared.lock();
        let (r, wake) = st.receive();
        if r == Receive::Pending {
            let fut = self.ctx.create_future.call0(py)?;
            st.waiters.wait_recv(super::waiter(fut.clone_ref(py)));
            drop(st);
            self.shared.wake_conn(&self.ctx.conn_wakes);
            return Ok(fut);
        }
        drop(st);
        if wake {
            self.shared.wake_conn(&self.ctx.conn_wakes);
        }
        let msg = receive_message(py, r)?;
        Ok(Py::new(py, Ready::new(msg.into_any().unbind()))?.into_any())
    }

    /// The ASGI `send()` callable.
    fn send(&self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let msg = http_message(&PyMessage::new(message)?).map_err(to_py_err)?;
        let mut st = self.shared.lock();
        let out = match st.stream.handle_app(msg) {
            Ok(out) => out,
            Err(SendError::Disconnected) => {
                return Err(ClientDisconnected::new_err("client disconnected"));
            }
            Err(e) => return Err(PyRuntimeError::new_err(e.to_string())),
        };
        if out.early_hint_dropped {
            drop(st);
            self.ctx.error_logger.call_method1(
                py,
                intern!(py, "debug"),
                ("early hint dropped: the response head was already sent",),
            )?;
            return Ok(self.ctx.done.clone_ref(py));
        }
        if out.is_empty() {
            return Ok(self.ctx.done.clone_ref(py));
        }
        st.queue_output(out);
        let wait = st.out_bytes > SEND_HIGH_WATER;
        let result = self.ctx.send_result(py, wait, &mut st.waiters)?;
        drop(st);
        self.shared.wake_conn(&self.ctx.conn_wakes);
        Ok(result)
    }
}
