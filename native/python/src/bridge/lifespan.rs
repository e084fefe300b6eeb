//! The `receive` and `send` callables of the lifespan scope, around the core
//! [`Lifespan`] machine.

use cormorant_core::asgi::message::lifespan_message;
use cormorant_core::asgi::{Lifespan, LifespanPhase, LifespanReceive};
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::message::{PyMessage, to_py_err};
use super::resolve;

/// One application's lifespan, driven from `cormorant._worker`.
#[pyclass(module = "cormorant._cormorant")]
pub(crate) struct LifespanCtx {
    machine: Lifespan,
    create_future: Py<PyAny>,
    /// Future of a `receive()` waiting for shutdown.
    recv_waiter: Option<Py<PyAny>>,
    /// Futures waiting for the phase to change.
    phase_waiters: Vec<Py<PyAny>>,
}

fn event(py: Python<'_>, r: LifespanReceive) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    let ty = match r {
        LifespanReceive::Startup => "lifespan.startup",
        _ => "lifespan.shutdown",
    };
    d.set_item(intern!(py, "type"), ty)?;
    Ok(d)
}

impl LifespanCtx {
    fn phase_changed(&mut self, py: Python<'_>) -> PyResult<()> {
        for w in std::mem::take(&mut self.phase_waiters) {
            resolve(py, &w, py.None())?;
        }
        Ok(())
    }
}

#[pymethods]
impl LifespanCtx {
    #[new]
    fn new(event_loop: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            machine: Lifespan::new(),
            create_future: event_loop.getattr("create_future")?.unbind(),
            recv_waiter: None,
            phase_waiters: Vec::new(),
        })
    }

    /// The lifespan `receive()`.
    fn receive(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let fut = self.create_future.call0(py)?;
        match self.machine.poll_receive() {
            LifespanReceive::Pending => self.recv_waiter = Some(fut.clone_ref(py)),
            r => resolve(py, &fut, event(py, r)?.into_any().unbind())?,
        }
        Ok(fut)
    }

    /// The lifespan `send()`.
    fn send(&mut self, py: Python<'_>, message: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
        let msg = lifespan_message(&PyMessage::new(message.as_any())?).map_err(to_py_err)?;
        self.machine
            .handle_app(msg)
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        self.phase_changed(py)?;
        let fut = self.create_future.call0(py)?;
        resolve(py, &fut, py.None())?;
        Ok(fut)
    }

    /// The lifespan task ended; `error` is the exception's text if it raised.
    #[pyo3(signature = (error = None))]
    fn app_exit(&mut self, py: Python<'_>, error: Option<String>) -> PyResult<()> {
        self.machine.handle_app_exit(error);
        self.phase_changed(py)
    }

    /// Asks the application to shut down.
    fn shutdown(&mut self, py: Python<'_>) -> PyResult<()> {
        self.machine.handle_shutdown();
        if let Some(w) = self.recv_waiter.take() {
            let r = self.machine.poll_receive();
            resolve(py, &w, event(py, r)?.into_any().unbind())?;
        }
        Ok(())
    }

    /// A future resolved at the next phase change.
    fn wait_phase(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let fut = self.create_future.call0(py)?;
        self.phase_waiters.push(fut.clone_ref(py));
        Ok(fut)
    }

    /// The phase name: starting, started, startup_failed, unsupported,
    /// shutting_down, shut_down or shutdown_failed.
    #[getter]
    fn phase(&self) -> &'static str {
        match self.machine.phase() {
            LifespanPhase::Starting => "starting",
            LifespanPhase::Started => "started",
            LifespanPhase::StartupFailed(_) => "startup_failed",
            LifespanPhase::Unsupported => "unsupported",
            LifespanPhase::ShuttingDown => "shutting_down",
            LifespanPhase::ShutDown => "shut_down",
            LifespanPhase::ShutdownFailed(_) => "shutdown_failed",
        }
    }

    /// The failure message, if the phase is a failure.
    #[getter]
    fn message(&self) -> Option<String> {
        match self.machine.phase() {
            LifespanPhase::StartupFailed(m) | LifespanPhase::ShutdownFailed(m) => Some(m.clone()),
            _ => None,
        }
    }
}
