//! The `receive` and `send` callables of one HTTP request.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cormorant_core::asgi::{AppMessage, Output, Receive, SendError};
use cormorant_core::http::{is_field_value, is_token};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyString};

use super::awaitable::Ready;
use super::{ClientDisconnected, PyCtx};
use crate::handoff::Waiter;
use crate::handoff::http::{SEND_HIGH_WATER, Shared};
use crate::server::access_format::AccessEntry;

/// What the access log needs to know about a request.
pub(crate) struct AccessInfo {
    pub(crate) client: String,
    pub(crate) method: String,
    /// Path and query, as sent.
    pub(crate) target: Vec<u8>,
    pub(crate) http_version: &'static str,
    pub(crate) scheme: &'static str,
    /// The request headers the access format shows.
    pub(crate) headers: Vec<Option<Bytes>>,
    pub(crate) started: Instant,
}

/// The per-request object whose bound methods are the app's `receive` and
/// `send`.
#[pyclass(module = "cormorant._cormorant", frozen)]
pub(crate) struct Request {
    pub(crate) shared: Arc<Shared>,
    pub(crate) ctx: Arc<PyCtx>,
    pub(crate) access: Option<Box<AccessInfo>>,
}

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

/// Bodies at least this large are shared with Python instead of copied:
/// below it a memcpy is cheaper than keeping the object alive.
const ZERO_COPY_MIN: usize = 4 * 1024;

/// A Python `bytes` object kept alive while its buffer is written out.
struct SharedPyBytes {
    _owner: Py<PyBytes>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: a `bytes` object is immutable, and `_owner` keeps it alive, so
// its buffer may be read from any thread without the GIL. Dropping the `Py`
// without the GIL is handled by pyo3, which defers the decref.
unsafe impl Send for SharedPyBytes {}
// SAFETY: as above: the buffer is never written.
unsafe impl Sync for SharedPyBytes {}

impl AsRef<[u8]> for SharedPyBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: ptr/len describe the immutable buffer of `_owner`, which
        // lives as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

pub(crate) fn bytes_like(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Bytes> {
    if let Ok(b) = v.cast::<PyBytes>() {
        let data = b.as_bytes();
        if data.len() < ZERO_COPY_MIN {
            return Ok(Bytes::copy_from_slice(data));
        }
        return Ok(Bytes::from_owner(SharedPyBytes {
            ptr: data.as_ptr(),
            len: data.len(),
            _owner: b.clone().unbind(),
        }));
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        return Ok(Bytes::from(b.to_vec()));
    }
    if let Ok(b) = v.extract::<Vec<u8>>() {
        if !v.is_instance_of::<PyString>() {
            return Ok(Bytes::from(b));
        }
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be bytes, got {}",
        v.get_type().name()?
    )))
}

pub(crate) fn parse_headers(v: Option<Bound<'_, PyAny>>) -> PyResult<Vec<(Bytes, Bytes)>> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in v.try_iter()? {
        let item = item?;
        let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract().map_err(|_| {
            PyTypeError::new_err("each header must be a pair of bytes: [name, value]")
        })?;
        let name = bytes_like(&name, "header name")?;
        let value = bytes_like(&value, "header value")?;
        if !is_token(&name) {
            return Err(PyValueError::new_err(format!(
                "invalid header name {:?}",
                String::from_utf8_lossy(&name)
            )));
        }
        if !is_field_value(&value) {
            return Err(PyValueError::new_err(format!(
                "invalid header value for {:?}: control characters are not allowed",
                String::from_utf8_lossy(&name)
            )));
        }
        out.push((name, value));
    }
    Ok(out)
}

fn truthy(v: Option<Bound<'_, PyAny>>) -> PyResult<bool> {
    match v {
        Some(v) => v.is_truthy(),
        None => Ok(false),
    }
}

/// Converts a `send()` message dict into a core [`AppMessage`].
fn parse_message(message: &Bound<'_, PyAny>) -> PyResult<AppMessage> {
    let py = message.py();
    let dict = match message.cast::<PyDict>() {
        Ok(d) => d.clone(),
        Err(_) => PyDict::from_sequence(&message.call_method0(intern!(py, "items"))?)?,
    };
    let ty = dict
        .get_item(intern!(py, "type"))?
        .ok_or_else(|| PyValueError::new_err("ASGI message has no 'type'"))?;
    let ty = ty.cast::<PyString>()?;
    match ty.to_str()? {
        "http.response.start" => {
            let status = dict
                .get_item(intern!(py, "status"))?
                .ok_or_else(|| PyValueError::new_err("'http.response.start' needs a 'status'"))?;
            let status: u16 = status
                .extract::<i64>()
                .map_err(|_| PyTypeError::new_err("'status' must be an int"))?
                .try_into()
                .map_err(|_| PyValueError::new_err("invalid HTTP status code"))?;
            Ok(AppMessage::HttpResponseStart {
                status,
                headers: parse_headers(dict.get_item(intern!(py, "headers"))?)?,
                trailers: truthy(dict.get_item(intern!(py, "trailers"))?)?,
            })
        }
        "http.response.body" => {
            let body = match dict.get_item(intern!(py, "body"))? {
                Some(b) => bytes_like(&b, "'body'")?,
                None => Bytes::new(),
            };
            Ok(AppMessage::HttpResponseBody {
                body,
                more_body: truthy(dict.get_item(intern!(py, "more_body"))?)?,
            })
        }
        "http.response.trailers" => Ok(AppMessage::HttpResponseTrailers {
            headers: parse_headers(dict.get_item(intern!(py, "headers"))?)?,
            more_trailers: truthy(dict.get_item(intern!(py, "more_trailers"))?)?,
        }),
        "http.response.early_hint" => {
            let mut links = Vec::new();
            if let Some(v) = dict.get_item(intern!(py, "links"))? {
                for link in v.try_iter()? {
                    let link = bytes_like(&link?, "each of 'links'")?;
                    if !is_field_value(&link) {
                        return Err(PyValueError::new_err(
                            "invalid link in 'http.response.early_hint': control characters are not allowed",
                        ));
                    }
                    links.push(link);
                }
            }
            Ok(AppMessage::HttpResponseEarlyHint { links })
        }
        "http.response.pathsend" => {
            let path = dict
                .get_item(intern!(py, "path"))?
                .ok_or_else(|| PyValueError::new_err("'http.response.pathsend' needs a 'path'"))?;
            let path = py
                .import(intern!(py, "os"))?
                .call_method1(intern!(py, "fsdecode"), (path,))?
                .extract::<String>()
                .map_err(|_| PyTypeError::new_err("'path' must be a str or os.PathLike"))?;
            Ok(AppMessage::HttpResponsePathsend { path })
        }
        other => Err(PyRuntimeError::new_err(format!(
            "unexpected ASGI message type {other:?} on an HTTP connection"
        ))),
    }
}

#[pymethods]
impl Request {
    /// The ASGI `receive()` callable.
    fn receive(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut st = self.shared.lock();
        let first_ask = !st.body_requested;
        st.body_requested = true;
        let r = st.stream.poll_receive();
        if r == Receive::Pending {
            let fut = self.ctx.create_future.call0(py)?;
            st.waiters.wait_recv(Waiter::Future(fut.clone_ref(py)));
            drop(st);
            // The connection may be waiting for this first ask (100-continue)
            // or for room in the body buffer.
            self.shared.wake_conn(&self.ctx.conn_wakes);
            return Ok(fut);
        }
        let more = matches!(
            r,
            Receive::HttpRequest {
                more_body: true,
                ..
            }
        );
        drop(st);
        if more || first_ask {
            self.shared.wake_conn(&self.ctx.conn_wakes);
        }
        let msg = receive_message(py, r)?;
        Ok(Py::new(py, Ready::new(msg.into_any().unbind()))?.into_any())
    }

    /// The ASGI `send()` callable.
    fn send(&self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let msg = parse_message(message)?;
        let mut st = self.shared.lock();
        if let AppMessage::HttpResponseStart { status, .. } = &msg {
            st.status = *status;
        }
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
        if out == Output::default() {
            return Ok(self.ctx.done.clone_ref(py));
        }
        st.body_sent += out.body.len() as u64;
        st.out_bytes += out.body.len();
        st.out.push_back(out);
        let wait = st.out_bytes > SEND_HIGH_WATER;
        let result = self.ctx.send_result(py, wait, &mut st.waiters)?;
        drop(st);
        self.shared.wake_conn(&self.ctx.conn_wakes);
        Ok(result)
    }

    /// Called by the task wrapper when the application returns (`exc` None)
    /// or raises.
    #[pyo3(signature = (exc = None))]
    fn exit(&self, py: Python<'_>, exc: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let failed = exc.is_some();
        if let Some(exc) = &exc {
            self.ctx
                .log_app_error(py, exc, "Exception in ASGI application")?;
        }
        let mut st = self.shared.lock();
        // A response completed before the app returned needs nothing more
        // from the connection: skip the cross-thread wake-up.
        let was_finished = st.stream.is_finished();
        let out = st.stream.handle_app_exit(failed);
        if let Some(start) = &out.start {
            st.status = start.status;
        }
        let status = st.status;
        let body_sent = st.body_sent;
        if out != Output::default() {
            st.out.push_back(out);
        }
        drop(st);
        if !was_finished {
            self.shared.wake_conn(&self.ctx.conn_wakes);
        }
        if let (Some(access), Some(logger)) = (&self.access, &self.ctx.access_logger) {
            let mut line = String::new();
            self.ctx.access_format.render(
                &AccessEntry {
                    client: &access.client,
                    method: access.method.as_bytes(),
                    target: &access.target,
                    version: access.http_version,
                    scheme: access.scheme,
                    status,
                    bytes: body_sent,
                    elapsed: access.started.elapsed(),
                    headers: &access.headers,
                },
                &mut line,
            );
            logger.call_method1(py, intern!(py, "info"), (line,))?;
        }
        Ok(())
    }
}
