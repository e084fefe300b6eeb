//! The pyo3 bridge: the objects the Python side sees, and the hand-over of
//! requests between the I/O thread and the Python thread.

pub(crate) mod awaitable;
pub(crate) mod lifespan;
pub(crate) mod queue;
pub(crate) mod request;
pub(crate) mod scope;
pub(crate) mod shared;
pub(crate) mod websocket;
pub(crate) mod worker;

use pyo3::PyObject;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyOSError};

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
    pub(crate) create_future: PyObject,
    /// A future already resolved to None: what a `send()` that needs no
    /// waiting returns.
    pub(crate) done: PyObject,
    /// The `cormorant.error` logger.
    pub(crate) error_logger: PyObject,
    /// The `cormorant.access` logger, when access logging is on.
    pub(crate) access_logger: Option<PyObject>,
    /// The I/O thread's mailbox.
    pub(crate) conn_wakes: std::sync::Arc<queue::ConnWakes>,
}
