//! How each app call is started: at once, under the identity of a pooled
//! asyncio task, which takes the call over only if it suspends.
//!
//! A task per request costs more than the app of a small request: making
//! it registers it in asyncio's weak set of tasks and schedules its first
//! step, and freeing it runs the weak set's callback (on CPython 3.11,
//! about 8k instructions a request, a fifth of a hello request's). Most
//! requests never wait: their `send` and `receive` complete at once.
//!
//! So the drain runs an app call's first step itself, inside a fresh copy
//! of the context and with a pooled task entered as the current task, as
//! an eager task's first step runs (Python 3.12). An app that returns in
//! that step leaves the task idle for the next request. An app that
//! suspends is handed to that task, which runs it to its end in the same
//! context, and then goes back to the pool. `asyncio.current_task()` is
//! therefore the same object from the first step to the last, which anyio
//! (Starlette, FastAPI) and `asyncio.timeout` need; requests that follow
//! one another may see the same task.
//!
//! Each pooled task runs a [`Carrier`]: a coroutine that waits for a hand
//! over, runs the app call it is given, and waits again.
//!
//! A suspended app most often awaits its own `receive()` (a WebSocket
//! session waiting for the next message). Its carrier adopts that future:
//! the task awaits a future of the carrier's instead, and when the message
//! comes, the drain resumes the app itself, under the task's identity. An
//! asyncio task would have had a callback scheduled, and a loop turn and
//! a step of its own, for each message (a sixth of a WebSocket echo's
//! instructions). Anything else the app awaits, the task awaits.
//!
//! An idle task that is cancelled ends, and a task with a cancellation pending (an app
//! cancelled its own task and returned) is not used again.

use std::sync::{Arc, Mutex, PoisonError};

use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::{PyTraverseError, PyVisit, intern};

use super::app_call::{AppCall, Resume, is_cancelled, thrown};
use super::resolve;

/// Makes a task of a coroutine: `func(coro, **keywords)`.
pub(crate) struct Spawn {
    func: Py<PyAny>,
    keywords: Option<Py<PyDict>>,
}

impl Spawn {
    /// A `functools.partial` with keywords only is unpacked once: its
    /// keywords dict is then passed as it is on every call, where calling
    /// the partial would merge it into a new dict each time (the callee only
    /// reads it).
    pub(crate) fn new(py: Python<'_>, spawn: Py<PyAny>) -> PyResult<Self> {
        let partial = py
            .import(intern!(py, "functools"))?
            .getattr(intern!(py, "partial"))?;
        let f = spawn.bind(py);
        if f.get_type().is(&partial) && f.getattr(intern!(py, "args"))?.len()? == 0 {
            return Ok(Self {
                func: f.getattr(intern!(py, "func"))?.unbind(),
                keywords: Some(
                    f.getattr(intern!(py, "keywords"))?
                        .cast_into::<PyDict>()?
                        .unbind(),
                ),
            });
        }
        Ok(Self {
            func: spawn,
            keywords: None,
        })
    }

    fn call<'py>(&self, py: Python<'py>, coro: Py<PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let keywords = self.keywords.as_ref().map(|k| k.bind(py));
        self.func.bind(py).call((coro,), keywords)
    }
}

/// Starts the app calls of one worker.
pub(crate) struct Tasks {
    spawn: Spawn,
    /// None: every app call is a task of its own, made by `spawn` (an
    /// app installed a task factory, which then makes them).
    pool: Option<Pool>,
}

struct Pool {
    hooks: Arc<Hooks>,
    idle: Idle,
}

/// What a carrier needs to step its app outside its task's own steps.
struct Hooks {
    event_loop: Py<PyAny>,
    /// `loop.create_future`.
    create_future: Py<PyAny>,
    /// `asyncio.tasks._enter_task` and `_leave_task`.
    enter: Py<PyAny>,
    leave: Py<PyAny>,
}

impl Hooks {
    /// Runs `f` with `task` entered as the loop's current task, as the
    /// task's own step would; None if another task is running (a drain
    /// from inside a task).
    fn as_task<R>(
        &self,
        py: Python<'_>,
        task: &Py<PyAny>,
        f: impl FnOnce() -> R,
    ) -> PyResult<Option<R>> {
        let event_loop = self.event_loop.bind(py);
        if self.enter.call1(py, (event_loop, task)).is_err() {
            return Ok(None);
        }
        let r = f();
        self.leave.call1(py, (event_loop, task))?;
        Ok(Some(r))
    }
}

/// The tasks waiting for an app call.
type Idle = Arc<Mutex<Vec<Pooled>>>;

/// At most this many tasks wait: after a burst of apps that all suspended
/// (long polls, WebSocket sessions), the tasks beyond it end with their
/// app calls.
const IDLE_MAX: usize = 256;

struct Pooled {
    task: Py<PyAny>,
    carrier: Py<Carrier>,
}

impl Tasks {
    /// `spawn(coro)` makes a task; with `pooled`, it makes the pool's
    /// tasks only. `create_future` is the loop's.
    pub(crate) fn new(
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        create_future: &Py<PyAny>,
        spawn: Py<PyAny>,
        pooled: bool,
    ) -> PyResult<Self> {
        let pool = if pooled {
            let tasks = py.import(intern!(py, "asyncio.tasks"))?;
            Some(Pool {
                hooks: Arc::new(Hooks {
                    event_loop: event_loop.clone().unbind(),
                    create_future: create_future.clone_ref(py),
                    enter: tasks.getattr(intern!(py, "_enter_task"))?.unbind(),
                    leave: tasks.getattr(intern!(py, "_leave_task"))?.unbind(),
                }),
                idle: Arc::default(),
            })
        } else {
            None
        };
        Ok(Self {
            spawn: Spawn::new(py, spawn)?,
            pool,
        })
    }

    /// Starts `call`: an error if it could not be started (no task could
    /// be made), else what its app raised in the first step that must
    /// reach the event loop (`KeyboardInterrupt`, `SystemExit`), as it
    /// would from a task of its own. The app call has already answered
    /// for that (see [`AppCall`]).
    pub(crate) fn start(&self, py: Python<'_>, call: AppCall) -> PyResult<Option<PyErr>> {
        let call = Py::new(py, call)?;
        let Some(pool) = &self.pool else {
            return self.spawn.call(py, call.into_any()).map(|_| None);
        };
        let pooled = self.take_idle(py, pool)?;
        let context = crate::sys::copy_context(py)?;
        let stepped = pool.hooks.as_task(py, &pooled.task, || {
            crate::sys::in_context(&context, || call.borrow_mut(py).resume(py, Resume::Next))
        })?;
        let Some(stepped) = stepped else {
            // Another task is running (a drain from inside a task): this
            // call gets a task of its own.
            put_back(&pool.idle, pooled);
            return self.spawn.call(py, call.into_any()).map(|_| None);
        };
        let stepped = match stepped? {
            Ok(Some(awaited)) => {
                return Carrier::hand(pooled.carrier.bind(py), call, awaited, context.unbind())
                    .map(|()| None);
            }
            other => other,
        };
        put_back(&pool.idle, pooled);
        match stepped {
            // A task that raised CancelledError ends quietly.
            Err(e) if !is_cancelled(py, &e)? => Ok(Some(e)),
            _ => Ok(None),
        }
    }

    /// An idle task, or a new one: its carrier's first step comes on the
    /// loop's next turn, and takes a hand-over made before it.
    fn take_idle(&self, py: Python<'_>, pool: &Pool) -> PyResult<Pooled> {
        loop {
            let idle = pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some(pooled) = idle else { break };
            if pooled.usable(py)? {
                return Ok(pooled);
            }
        }
        let carrier = Py::new(
            py,
            Carrier {
                state: Carried::Fresh,
                task: None,
                idle: pool.idle.clone(),
                hooks: pool.hooks.clone(),
            },
        )?;
        let task = self
            .spawn
            .call(py, carrier.clone_ref(py).into_any())?
            .unbind();
        carrier.borrow_mut(py).task = Some(task.clone_ref(py));
        Ok(Pooled { task, carrier })
    }
}

impl Pooled {
    /// Whether the task still waits for a hand-over: not ended, and with
    /// no cancellation pending (an app may have cancelled the task it ran
    /// in, or kept it and cancelled it later).
    fn usable(&self, py: Python<'_>) -> PyResult<bool> {
        match &self.carrier.borrow(py).state {
            Carried::Fresh => Ok(!self
                .task
                .bind(py)
                .getattr(intern!(py, "_must_cancel"))
                .and_then(|v| v.is_truthy())
                .unwrap_or(false)),
            Carried::Idle { wake } => {
                Ok(!wake.call_method0(py, intern!(py, "done"))?.is_truthy(py)?)
            }
            _ => Ok(false),
        }
    }
}

fn put_back(idle: &Idle, pooled: Pooled) {
    idle.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(pooled);
}

enum Carried {
    /// Made; its task has not stepped it yet.
    Fresh,
    /// Waiting for an app call: its task awaits `wake`.
    Idle { wake: Py<PyAny> },
    /// An app call that suspended in its first step, for the task's next
    /// step to take over: `awaited` is what the app awaits.
    Handed {
        call: Py<AppCall>,
        awaited: Py<PyAny>,
        context: Py<PyAny>,
    },
    /// Running `call` in `context`.
    Running {
        call: Py<AppCall>,
        context: Py<PyAny>,
    },
    /// The app awaits `on`, a `receive()` of its own stream, and the task
    /// awaits `park`, which only the carrier resolves. When `on` gets its
    /// message, the drain resumes the app at once ([`Carrier::resume_parked`]):
    /// no callback is scheduled and the task does not step.
    Parked {
        call: Py<AppCall>,
        context: Py<PyAny>,
        on: Py<PyAny>,
        park: Py<PyAny>,
    },
    /// Resumed by the drain, the app now awaits something else: the task's
    /// next step (`park` was resolved) waits on it.
    Switching {
        call: Py<AppCall>,
        context: Py<PyAny>,
        awaited: Py<PyAny>,
    },
    /// Resumed by the drain, the app raised what ends its task
    /// (cancellation, an exit): the task's next step raises it.
    Failed(PyErr),
    /// Its task ended.
    Ended,
}

/// The coroutine of a pooled task: runs the app calls handed to it, one
/// after another.
#[pyclass(module = "cormorant._cormorant")]
pub(crate) struct Carrier {
    state: Carried,
    /// The task running this carrier, set once it is made.
    task: Option<Py<PyAny>>,
    idle: Idle,
    hooks: Arc<Hooks>,
}

impl Carrier {
    /// Takes over `call`, which awaits `awaited`; an idle task is woken,
    /// unless the app awaits its own `receive()`: the task then goes on
    /// waiting, now for the carrier to resolve its future.
    fn hand(
        slf: &Bound<'_, Self>,
        call: Py<AppCall>,
        awaited: Py<PyAny>,
        context: Py<PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        match std::mem::replace(&mut this.state, Carried::Ended) {
            Carried::Fresh => {
                this.state = Carried::Handed {
                    call,
                    awaited,
                    context,
                };
                Ok(())
            }
            // If the app cancelled its task before it suspended, `wake` is
            // cancelled: the task's next step throws CancelledError into
            // the app, where a task of its own would.
            Carried::Idle { wake } => {
                if call.borrow(py).adopt(&awaited, slf) {
                    this.state = Carried::Parked {
                        call,
                        context,
                        on: awaited,
                        park: wake,
                    };
                    return Ok(());
                }
                this.state = Carried::Handed {
                    call,
                    awaited,
                    context,
                };
                resolve(py, &wake, py.None())
            }
            other => {
                this.state = other;
                Err(PyRuntimeError::new_err(
                    "an app call was handed to a busy task",
                ))
            }
        }
    }

    /// One step of the task: what it awaits next, or None when it ends.
    fn step(slf: &Bound<'_, Self>, how: Resume<'_>) -> PyResult<Option<Py<PyAny>>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        let (call, context, how) = match std::mem::replace(&mut this.state, Carried::Ended) {
            Carried::Fresh | Carried::Idle { .. } => {
                if let Resume::Throw(exc) = how {
                    // Cancelled while idle: the task ends.
                    return Err(PyErr::from_value(exc));
                }
                return this.wait(py).map(Some);
            }
            Carried::Handed {
                call,
                awaited,
                context,
            }
            | Carried::Switching {
                call,
                awaited,
                context,
            } => match how {
                Resume::Throw(exc) => (call, context, Resume::Throw(exc)),
                // The app still awaits what it yielded: the task now waits
                // on it.
                Resume::Next | Resume::Send(_) => {
                    return this.await_next(slf, call, context, awaited).map(Some);
                }
            },
            Carried::Parked {
                call, context, on, ..
            } => {
                if matches!(how, Resume::Throw(_)) {
                    // The receive() ends here: a message that comes later
                    // stays queued for the next one.
                    on.call_method0(py, intern!(py, "cancel"))?;
                }
                // Else `park` was resolved because the drain could not
                // resume the app: `on` is done, and the app resumes now.
                (call, context, how)
            }
            Carried::Running { call, context } => (call, context, how),
            Carried::Failed(e) => return Err(e),
            Carried::Ended => return Ok(None),
        };
        let stepped =
            crate::sys::in_context(context.bind(py), || call.borrow_mut(py).resume(py, how))?;
        match stepped {
            Ok(Some(awaited)) => this.await_next(slf, call, context, awaited).map(Some),
            Ok(None) => {
                let wake = this.wait(py)?;
                Ok(this.go_idle(slf, wake.clone_ref(py)).then_some(wake))
            }
            // Ended by cancellation or an exit: so does the task, as a
            // task of its own would.
            Err(e) => Err(e),
        }
    }

    /// The app awaits `awaited`: what the task awaits is a new `park`
    /// future if that is the app's own `receive()` (adopted), else
    /// `awaited` itself.
    fn await_next(
        &mut self,
        slf: &Bound<'_, Self>,
        call: Py<AppCall>,
        context: Py<PyAny>,
        awaited: Py<PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        if call.borrow(py).adopt(&awaited, slf) {
            let park = self.wait(py)?;
            self.state = Carried::Parked {
                call,
                context,
                on: awaited,
                park: park.clone_ref(py),
            };
            return Ok(park);
        }
        self.state = Carried::Running { call, context };
        Ok(awaited)
    }

    /// The app call ended and the task waits on `wake`: the carrier goes
    /// back to the pool, unless enough tasks wait there already (false:
    /// the task is to end).
    fn go_idle(&mut self, slf: &Bound<'_, Self>, wake: Py<PyAny>) -> bool {
        let py = slf.py();
        let idle = self.idle.clone();
        let mut idle = idle.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(task) = self.task.as_ref().filter(|_| idle.len() < IDLE_MAX) else {
            self.state = Carried::Ended;
            return false;
        };
        idle.push(Pooled {
            task: task.clone_ref(py),
            carrier: slf.clone().unbind(),
        });
        self.state = Carried::Idle { wake };
        true
    }

    /// The `receive()` future `on`, adopted by this carrier, got its
    /// message: the app resumes now, under its task's identity, as its
    /// task's next step would run it.
    pub(crate) fn resume_parked(slf: &Bound<'_, Self>, on: &Py<PyAny>) -> PyResult<()> {
        let py = slf.py();
        // Borrowed: the carrier is stepping its app, which is then not
        // parked on `on`.
        let Ok(mut this) = slf.try_borrow_mut() else {
            return Ok(());
        };
        let (call, context, park) = match std::mem::replace(&mut this.state, Carried::Ended) {
            Carried::Parked {
                call,
                context,
                on: waited,
                park,
            } if waited.is(on) => (call, context, park),
            other => {
                this.state = other;
                return Ok(());
            }
        };
        let hooks = this.hooks.clone();
        let stepped = match this.task.as_ref().map(|t| t.clone_ref(py)) {
            Some(task) => hooks.as_task(py, &task, || {
                crate::sys::in_context(context.bind(py), || {
                    call.borrow_mut(py).resume(py, Resume::Next)
                })
                .and_then(|r| r)
            }),
            None => Ok(None),
        }
        // The loop's task bookkeeping or the context failed: the task's
        // next step raises it.
        .unwrap_or_else(|e| Some(Err(e)));
        let Some(stepped) = stepped else {
            // Another task is running: the task's own step resumes the app.
            this.state = Carried::Parked {
                call,
                context,
                on: on.clone_ref(py),
                park: park.clone_ref(py),
            };
            return resolve(py, &park, py.None());
        };
        match stepped {
            Ok(Some(awaited)) => {
                if call.borrow(py).adopt(&awaited, slf) {
                    this.state = Carried::Parked {
                        call,
                        context,
                        on: awaited,
                        park,
                    };
                    return Ok(());
                }
                this.state = Carried::Switching {
                    call,
                    context,
                    awaited,
                };
            }
            Ok(None) => {
                if this.go_idle(slf, park.clone_ref(py)) {
                    return Ok(());
                }
            }
            Err(e) => this.state = Carried::Failed(e),
        }
        // The task steps next: it waits on what the app awaits, or ends.
        resolve(py, &park, py.None())
    }

    /// A new future for the task to await until the carrier resolves it.
    fn wait(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let wake = self.hooks.create_future.call0(py)?;
        // What `await future` sets, and the task checks.
        wake.setattr(py, intern!(py, "_asyncio_future_blocking"), true)?;
        self.state = Carried::Idle {
            wake: wake.clone_ref(py),
        };
        Ok(wake)
    }
}

#[pymethods]
impl Carrier {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(slf: &Bound<'_, Self>) -> PyResult<Option<Py<PyAny>>> {
        Self::step(slf, Resume::Next)
    }

    fn send(slf: &Bound<'_, Self>, value: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let how = if value.is_none() {
            Resume::Next
        } else {
            Resume::Send(value)
        };
        Self::step(slf, how)?.ok_or_else(|| PyStopIteration::new_err(()))
    }

    #[pyo3(signature = (exc, value = None, tb = None))]
    fn throw(
        slf: &Bound<'_, Self>,
        exc: Bound<'_, PyAny>,
        value: Option<Bound<'_, PyAny>>,
        tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let exc = thrown(slf.py(), exc, value, tb)?;
        Self::step(slf, Resume::Throw(exc))?.ok_or_else(|| PyStopIteration::new_err(()))
    }

    /// Closes the app call it runs (a task dropped unfinished).
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        match std::mem::replace(&mut self.state, Carried::Ended) {
            Carried::Handed { call, .. }
            | Carried::Running { call, .. }
            | Carried::Parked { call, .. }
            | Carried::Switching { call, .. } => call.borrow_mut(py).close(py),
            _ => Ok(()),
        }
    }

    /// What the app call it runs awaits while suspended (for debuggers
    /// that walk `cr_await`); None while it runs or waits for one.
    #[getter]
    fn cr_await(slf: &Bound<'_, Self>) -> Option<Py<PyAny>> {
        let py = slf.py();
        match &slf.try_borrow().ok()?.state {
            Carried::Handed { call, .. }
            | Carried::Running { call, .. }
            | Carried::Parked { call, .. }
            | Carried::Switching { call, .. } => call.try_borrow(py).ok()?.awaiting(py),
            _ => None,
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(task) = &self.task {
            visit.call(task)?;
        }
        match &self.state {
            Carried::Idle { wake } => visit.call(wake),
            Carried::Handed {
                call,
                awaited,
                context,
            } => {
                visit.call(call)?;
                visit.call(awaited)?;
                visit.call(context)
            }
            Carried::Running { call, context } => {
                visit.call(call)?;
                visit.call(context)
            }
            Carried::Parked {
                call,
                context,
                on,
                park,
            } => {
                visit.call(call)?;
                visit.call(context)?;
                visit.call(on)?;
                visit.call(park)
            }
            Carried::Switching {
                call,
                context,
                awaited,
            } => {
                visit.call(call)?;
                visit.call(context)?;
                visit.call(awaited)
            }
            Carried::Fresh | Carried::Failed(_) | Carried::Ended => Ok(()),
        }
    }

    fn __clear__(&mut self) {
        self.task = None;
        self.state = Carried::Ended;
    }
}
