//! One WSGI call's objects: `start_response` (with `write()`) and
//! `wsgi.input`, over the request's blocking handle. Core's
//! [`Response`] decides when the head goes out; this side converts
//! Python values and lets the GIL go around every wait.

use std::sync::{Mutex, MutexGuard, TryLockError};

use bytes::{Bytes, BytesMut};
use cormorant_core::asgi::AppMessage;
use cormorant_core::wsgi::{Response, StartError};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::super::ClientDisconnected;
use super::super::message::bytes_like;
use crate::embed::{self, StreamError};
use crate::handoff::on_io_thread;

/// `start_response` of one request; its `write` method is the `write()`
/// callable `start_response` returns.
#[pyclass(module = "cormorant._cormorant", frozen)]
pub(crate) struct Call {
    state: Mutex<CallState>,
}

struct CallState {
    /// Taken when the call ends: the response is then complete, or
    /// becomes a 500 or is cut short.
    req: Option<embed::Request>,
    response: Response,
    /// Request body received and not yet read by the app.
    input: Bytes,
    /// The whole request body was received.
    input_done: bool,
}

/// Runs `f`, which may block, with the GIL let go; on the I/O thread
/// (an app run inline) nothing blocks, and the GIL is kept.
fn blocking<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> T {
    if on_io_thread() { f() } else { py.detach(f) }
}

fn stream_err(e: StreamError) -> PyErr {
    match e {
        StreamError::Disconnected => ClientDisconnected::new_err("client disconnected"),
        StreamError::WouldBlock => {
            PyRuntimeError::new_err("the request body is not there yet (an inline call)")
        }
        StreamError::Invalid(m) => PyRuntimeError::new_err(m),
    }
}

fn start_err(e: StartError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A header name or value: a `str` (ISO-8859-1, as PEP 3333 asks) or
/// bytes.
fn header_part(v: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(s) = v.cast::<PyString>() {
        return crate::sys::latin1_bytes(s)
            .map(|b| Bytes::copy_from_slice(&b))
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "header {:?} is not ISO-8859-1 (PEP 3333)",
                    s.to_string_lossy()
                ))
            });
    }
    bytes_like(v).ok_or_else(|| {
        PyTypeError::new_err(format!(
            "a header name or value must be a str, not {}",
            v.get_type()
                .name()
                .map_or_else(|_| "?".into(), |n| n.to_string())
        ))
    })
}

fn headers_of(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(Bytes, Bytes)>> {
    fn pair(item: &Bound<'_, PyAny>) -> PyResult<(Bytes, Bytes)> {
        match item.cast::<PyTuple>() {
            Ok(t) if t.len() == 2 => Ok((
                header_part(&*t.get_borrowed_item(0)?)?,
                header_part(&*t.get_borrowed_item(1)?)?,
            )),
            _ => Err(PyTypeError::new_err(
                "each header must be a (name, value) tuple (PEP 3333)",
            )),
        }
    }
    // A list, as PEP 3333 asks: by index, with no iterator.
    if let Ok(list) = headers.cast::<PyList>() {
        let mut out = Vec::with_capacity(list.len() + 2);
        for item in list.iter() {
            out.push(pair(&item)?);
        }
        return Ok(out);
    }
    headers.try_iter()?.map(|item| pair(&item?)).collect()
}

impl CallState {
    /// Passes a piece of the body through core's [`Response`]: sends the
    /// head if it goes out with this piece (held by the stream until its
    /// body, so it never waits), and returns the body message to send.
    fn hand_over(
        &mut self,
        chunk: Bytes,
        more: bool,
    ) -> PyResult<(&mut embed::Request, Option<AppMessage>)> {
        let to_send = self.response.body(chunk, more).map_err(start_err)?;
        let req = self
            .req
            .as_mut()
            .ok_or_else(|| PyRuntimeError::new_err("the response is over"))?;
        if let Some(start) = to_send.start {
            req.send(start).map_err(stream_err)?;
        }
        Ok((req, to_send.body))
    }
}

impl Call {
    pub(crate) fn new(req: embed::Request) -> Self {
        Self {
            state: Mutex::new(CallState {
                req: Some(req),
                response: Response::new(),
                input: Bytes::new(),
                input_done: false,
            }),
        }
    }

    fn lock(&self) -> PyResult<MutexGuard<'_, CallState>> {
        match self.state.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
            Err(TryLockError::WouldBlock) => Err(PyRuntimeError::new_err(
                "a WSGI request's objects were used from two threads at once",
            )),
        }
    }

    /// A piece of the body (`more` false: the last).
    pub(crate) fn send_body(&self, py: Python<'_>, chunk: Bytes, more: bool) -> PyResult<()> {
        let mut st = self.lock()?;
        let (req, body) = st.hand_over(chunk, more)?;
        if let Some(body) = body {
            blocking(py, || req.send(body)).map_err(stream_err)?;
        }
        Ok(())
    }

    /// Sends the file at `path` as the whole body, if the head can go now.
    pub(crate) fn send_file(&self, path: String) -> PyResult<bool> {
        let mut st = self.lock()?;
        if st.response.head_sent() || !st.response.is_started() {
            return Ok(false);
        }
        let (req, _) = st.hand_over(Bytes::new(), false)?;
        req.send(AppMessage::HttpResponsePathsend { path })
            .map_err(stream_err)?;
        Ok(true)
    }

    /// Whether the response waits on a slow client (see
    /// [`embed::Request::backlogged`]).
    pub(crate) fn backlogged(&self) -> bool {
        self.lock()
            .ok()
            .and_then(|st| st.req.as_ref().map(embed::Request::backlogged))
            .unwrap_or(false)
    }

    /// The call is over: a complete response stays as it is; anything
    /// else becomes a 500, or is cut short once its head went out.
    pub(crate) fn finish(&self) {
        let req = match self.state.lock() {
            Ok(mut st) => st.req.take(),
            Err(p) => p.into_inner().req.take(),
        };
        drop(req);
    }

    /// Takes body into `input` until it holds `want` bytes or the body
    /// ended; `None`: until either a line ends or the body ends.
    fn fill(&self, py: Python<'_>, st: &mut CallState, want: Option<usize>) -> PyResult<()> {
        let mut scanned = 0;
        loop {
            if st.input_done {
                return Ok(());
            }
            match want {
                Some(n) if st.input.len() >= n => return Ok(()),
                None if memchr::memchr(b'\n', &st.input[scanned..]).is_some() => return Ok(()),
                _ => {}
            }
            scanned = st.input.len();
            let Some(req) = st.req.as_mut() else {
                st.input_done = true;
                return Ok(());
            };
            let chunk = blocking(py, || req.next_chunk()).map_err(stream_err)?;
            if chunk.is_empty() {
                st.input_done = true;
            } else if st.input.is_empty() {
                st.input = chunk;
            } else {
                let mut joined = BytesMut::with_capacity(st.input.len() + chunk.len());
                joined.extend_from_slice(&st.input);
                joined.extend_from_slice(&chunk);
                st.input = joined.freeze();
            }
        }
    }

    /// `wsgi.input.read(size)`.
    pub(crate) fn read<'py>(
        &self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut st = self.lock()?;
        let want = size
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(usize::MAX);
        self.fill(py, &mut st, Some(want))?;
        let n = want.min(st.input.len());
        Ok(PyBytes::new(py, &st.input.split_to(n)))
    }

    /// `wsgi.input.readline(size)`.
    pub(crate) fn readline<'py>(
        &self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut st = self.lock()?;
        let limit = size.and_then(|n| usize::try_from(n).ok());
        loop {
            let end = memchr::memchr(b'\n', &st.input).map(|i| i + 1);
            let n = match (end, limit) {
                (Some(e), Some(l)) => Some(e.min(l)),
                (Some(e), None) => Some(e),
                (None, Some(l)) if st.input.len() >= l => Some(l),
                (None, _) if st.input_done => Some(st.input.len()),
                (None, _) => None,
            };
            if let Some(n) = n {
                return Ok(PyBytes::new(py, &st.input.split_to(n)));
            }
            self.fill(py, &mut st, None)?;
        }
    }
}

#[pymethods]
impl Call {
    /// `start_response(status, response_headers, exc_info=None)`; returns
    /// the `write()` callable, which is this object again: called with
    /// the body piece alone, it writes it (no bound method to make per
    /// request; `start_response` always has two arguments or more).
    #[pyo3(signature = (status, headers = None, exc_info = None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: Option<&Bound<'py, PyAny>>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(headers) = headers else {
            if status.is_instance_of::<PyString>() {
                return Err(PyTypeError::new_err(
                    "start_response() takes (status, headers[, exc_info])",
                ));
            }
            slf.get().write(slf.py(), status)?;
            return Ok(slf.py().None().into_bound(slf.py()));
        };
        let status = status
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("the status must be a str, as \"200 OK\""))?
            .to_str()?;
        let exc_info = exc_info.filter(|e| !e.is_none());
        let headers = headers_of(headers)?;
        let started =
            slf.get()
                .lock()?
                .response
                .start_response(status, headers, exc_info.is_some());
        match started {
            Ok(()) => Ok(slf.clone().into_any()),
            Err(StartError::Reraise) => {
                let exc = exc_info
                    .map(|e| e.get_item(1))
                    .transpose()?
                    .ok_or_else(|| PyRuntimeError::new_err("exc_info"))?;
                Err(PyErr::from_value(exc))
            }
            Err(e) => Err(start_err(e)),
        }
    }

    /// The `write(data)` callable (PEP 3333's imperative output).
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let chunk = bytes_like(data)
            .ok_or_else(|| PyTypeError::new_err("write() takes bytes, not str (PEP 3333)"))?;
        self.send_body(py, chunk, true)
    }
}

/// `wsgi.input`: the request body as a file, read as the app asks for it
/// (the connection reads ahead only its bounded buffer).
#[pyclass(module = "cormorant._cormorant", frozen)]
pub(crate) struct Input {
    pub(crate) call: Py<Call>,
}

#[pymethods]
impl Input {
    /// Up to `size` bytes (all that is left without one, or when it is
    /// negative or None); fewer only at the end of the body.
    #[pyo3(signature = (size = None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        self.call.get().read(py, size)
    }

    /// One line, with its `\n` (at most `size` bytes).
    #[pyo3(signature = (size = None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        self.call.get().readline(py, size)
    }

    /// The remaining lines (stopping once `hint` bytes were read).
    #[pyo3(signature = (hint = None))]
    fn readlines<'py>(
        &self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let hint = hint
            .and_then(|h| usize::try_from(h).ok())
            .filter(|&h| h > 0);
        let mut lines = Vec::new();
        let mut total = 0;
        loop {
            let line = self.call.get().readline(py, None)?;
            if line.as_bytes().is_empty() {
                return Ok(lines);
            }
            total += line.as_bytes().len();
            lines.push(line);
            if hint.is_some_and(|h| total >= h) {
                return Ok(lines);
            }
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.call.get().readline(py, None)?;
        Ok((!line.as_bytes().is_empty()).then_some(line))
    }
}
