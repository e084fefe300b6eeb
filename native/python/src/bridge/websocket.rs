//! The `receive` and `send` callables of one WebSocket connection, and the
//! state they share with its connection task.

use std::sync::Arc;

use cormorant_core::asgi::message::ws_message;
use cormorant_core::asgi::{SendError, WsOutput, WsReceive};
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use super::awaitable::Ready;
use super::message::{PyMessage, to_py_err};
use super::{ClientDisconnected, PyCtx};
use crate::handoff::SendSide;
use crate::handoff::queue::ConnWakes;
use crate::handoff::websocket::{WS_SEND_HIGH_WATER, WsShared, output_len};

/// The dict `receive()` returns.
pub(crate) fn receive_message(py: Python<'_>, r: WsReceive) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    match r {
        WsReceive::Connect => d.set_item(intern!(py, "type"), intern!(py, "websocket.connect"))?,
        WsReceive::Text(t) => {
            d.set_item(intern!(py, "type"), intern!(py, "websocket.receive"))?;
            d.set_item(intern!(py, "text"), PyString::new(py, &t))?;
        }
        WsReceive::Bytes(b) => {
            d.set_item(intern!(py, "type"), intern!(py, "websocket.receive"))?;
            d.set_item(intern!(py, "bytes"), PyBytes::new(py, &b))?;
        }
        WsReceive::Disconnect { code, reason } => {
            d.set_item(intern!(py, "type"), intern!(py, "websocket.disconnect"))?;
            d.set_item(intern!(py, "code"), code)?;
            d.set_item(intern!(py, "reason"), PyString::new(py, &reason))?;
        }
        WsReceive::Pending => {
            d.set_item(intern!(py, "type"), intern!(py, "websocket.disconnect"))?;
            d.set_item(intern!(py, "code"), 1006)?;
        }
    }
    Ok(d)
}

/// The per-connection object whose bound methods are the app's `receive`
/// and `send`.
#[pyclass(module = "cormorant._cormorant", frozen)]
pub(crate) struct WebSocket {
    pub(crate) shared: Arc<WsShared>,
    pub(crate) ctx: Arc<PyCtx>,
}

#[pymethods]
impl WebSocket {
    /// The ASGI `receive()` callable.
    fn receive(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut st = self.shared.lock();
        let (r, wake) = st.take_received();
        if r == WsReceive::Pending {
            let fut = self.ctx.create_future.call0(py)?;
            st.waiters.wait_recv(super::waiter(fut.clone_ref(py)));
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
        let msg = ws_message(&PyMessage::new(message)?).map_err(to_py_err)?;
        let mut st = self.shared.lock();
        let out = match st.stream.handle_app(msg) {
            Ok(out) => out,
            Err(SendError::Disconnected) => {
                return Err(ClientDisconnected::new_err("WebSocket peer disconnected"));
            }
            Err(e) => return Err(PyRuntimeError::new_err(e.to_string())),
        };
        if out == WsOutput::Nothing {
            return Ok(self.ctx.done.clone_ref(py));
        }
        st.out_bytes += output_len(&out);
        st.out.push_back(out);
        let wait = st.out_bytes > WS_SEND_HIGH_WATER;
        let result = self.ctx.send_result(py, wait, &mut st.waiters)?;
        drop(st);
        self.shared.wake_conn(&self.ctx.conn_wakes);
        Ok(result)
    }
}

impl WebSocket {
    /// The application returned, or raised (`failed`; logged by the caller, see
    /// [`super::app_call`]).
    pub(crate) fn exit(&self, failed: bool) {
        let mut st = self.shared.lock();
        let out = st.stream.handle_app_exit(failed);
        if out != WsOutput::Nothing {
            st.out.push_back(out);
        }
        drop(st);
        self.shared.wake_conn(&self.ctx.conn_wakes);
    }
}

/// Resolves the futures of a woken WebSocket on the Python thread.
pub(crate) fn wake(py: Python<'_>, shared: &Arc<WsShared>, wakes: &ConnWakes) -> PyResult<()> {
    let mut st = shared.lock();
    st.waiters.wake_queued = false;
    let recv = if st.waiters.recv.is_some() && st.stream.receive_ready() {
        super::live_receiver(py, st.waiters.recv.take())?.map(|w| (w, st.take_received()))
    } else {
        None
    };
    let gone = st.stream.is_gone();
    let send = if st.waiters.send.is_some() && st.can_send() {
        st.waiters.send.take().and_then(super::future_of)
    } else {
        None
    };
    drop(st);
    if let Some((w, (r, wake_conn))) = recv {
        super::deliver(py, w, receive_message(py, r)?.into_any().unbind())?;
        if wake_conn {
            shared.wake_conn(wakes);
        }
    }
    if let Some(w) = send {
        if gone {
            super::reject(
                py,
                &w,
                ClientDisconnected::new_err("WebSocket peer disconnected"),
            )?;
        } else {
            super::resolve(py, &w, py.None())?;
        }
    }
    Ok(())
}
