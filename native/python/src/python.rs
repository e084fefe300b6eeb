//! The extension module `cormorant._cormorant`: the command line, `serve`,
//! and the classes the Python package uses.

/// Rust-side allocations (per-request state, hyper's and h2's buffers) go
/// to mimalloc: its thread-local free lists beat glibc's bins for the many
/// short-lived, mid-sized blocks a request makes. Python's own objects
/// still use Python's allocator.
#[global_allocator]
static GLOBAL: crate::sys::MiMalloc = crate::sys::MiMalloc;
use pyo3::prelude::*;

use crate::bridge::{self, ClientDisconnected, StartupError};
use crate::config::ServerConfig;
use crate::{cli, config_file, console, proctitle, supervisor, tls};

/// Runs the `cormorant` command line; returns the process exit code.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> PyResult<i32> {
    let from_file = match apply_config_file(&argv) {
        Ok(set) => set,
        Err(e) => {
            console::err(format_args!("error: {e}"));
            return Ok(2);
        }
    };
    let (cli, matches) = match cli::parse(argv) {
        Ok(parsed) => parsed,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                console::out(&e);
                return Ok(0);
            }
            // One readable line, not clap's whole usage block.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            console::err(format_args!("{first} (see 'cormorant --help')"));
            return Ok(2);
        }
    };
    if cli.check_config || cli.print_config {
        let print = cli.print_config;
        let config = cli.into_config();
        if let Err(e) = check(&config) {
            console::err(format_args!("error: {e}"));
            return Ok(2);
        }
        if print {
            console::out(cli::describe(&config, &matches, &from_file));
        } else {
            console::out("configuration is valid\n");
        }
        return Ok(0);
    }
    serve_config(py, cli.into_config(), None)
}

/// Everything that can be checked before a worker starts: the values, and
/// that the certificate and key load.
fn check(config: &ServerConfig) -> Result<(), String> {
    config.validate()?;
    crate::sys::identity(config.user.as_deref(), config.group.as_deref())?;
    if let Some(settings) = config.tls_settings() {
        tls::ServerTls::new(&settings).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Reads the configuration file (see [`config_file`]) into the environment
/// variables the flags read, where they are not set already: so flags win
/// over the environment, which wins over the file. Returns the variables
/// it set, each with the file's path.
fn apply_config_file(argv: &[String]) -> Result<Vec<(String, String)>, String> {
    let explicit = argv
        .iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("--config") {
            Some("") => argv.get(i + 1).cloned(),
            Some(rest) => rest.strip_prefix('=').map(str::to_owned),
            None => None,
        })
        .or_else(|| std::env::var("CORMORANT_CONFIG").ok());
    let command = cli::command();
    // `CORMORANT_NO_SERVER_HEADER=1` is `CORMORANT_SERVER_HEADER=false`.
    for (name, value) in std::env::vars() {
        let Some(flag) = name.strip_prefix("CORMORANT_") else {
            continue;
        };
        let key = flag.to_ascii_lowercase().replace('_', "-");
        let Some((positive, value)) = cli::positive_form(&command, &key, &value) else {
            continue;
        };
        if let Some(env) = cli::setting_env(&command, &positive) {
            if std::env::var_os(env).is_none() {
                crate::sys::set_env_before_threads(env, &value);
            }
        }
    }
    let cwd = std::env::current_dir().map_err(|e| format!("no working directory: {e}"))?;
    let file = config_file::load(explicit.as_deref(), &cwd)?;
    let Some(path) = file.path else {
        return Ok(Vec::new());
    };
    let mut set = Vec::new();
    for (key, value) in file.values {
        let (key, value) = cli::positive_form(&command, &key, &value).unwrap_or((key, value));
        let Some(env) = cli::setting_env(&command, &key) else {
            return Err(format!(
                "{}: unknown setting {key:?} (the keys are the command-line flags' names)",
                path.display()
            ));
        };
        if std::env::var_os(env).is_none() {
            crate::sys::set_env_before_threads(env, &value);
            set.push((
                env.to_string_lossy().into_owned(),
                path.display().to_string(),
            ));
        }
    }
    Ok(set)
}

/// Logging for a process that watches workers (supervisor, reloader): it
/// logs through `cormorant.error` too. False when the logging
/// configuration is bad (the reason is printed).
fn setup_parent_logging(py: Python<'_>, config: &ServerConfig) -> PyResult<bool> {
    let r = py.import("cormorant._worker")?.call_method1(
        "setup_logging",
        (
            config.log_level.to_string(),
            config.log_config.as_deref(),
            config.log_json,
            config.use_colors,
        ),
    );
    match r {
        Ok(_) => Ok(true),
        Err(e) => {
            console::err(format_args!("error: {}", e.value(py)));
            Ok(false)
        }
    }
}

/// `config_json` as the server reads it: every field, each value in its
/// one spelling. Raises ValueError when it is not a configuration (an
/// unknown setting, a value of the wrong type or spelling). Nothing is
/// validated beyond that, and nothing starts.
#[pyfunction]
fn resolve_config(config_json: &str) -> PyResult<String> {
    let config: ServerConfig = serde_json::from_str(config_json).map_err(|e| {
        pyo3::exceptions::PyValueError::new_err(format!("invalid configuration: {e}"))
    })?;
    serde_json::to_string(&config)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

/// Serves with a JSON configuration (the Python API's entry point).
#[pyfunction]
#[pyo3(signature = (config_json, app = None))]
fn serve(py: Python<'_>, config_json: &str, app: Option<Py<PyAny>>) -> PyResult<i32> {
    let config: ServerConfig = match serde_json::from_str(config_json) {
        Ok(c) => c,
        Err(e) => return Err(StartupError::new_err(format!("invalid configuration: {e}"))),
    };
    serve_config(py, config, app)
}

/// A watching process's result: a [`StartupError`] is one line and exit
/// code 1, not a traceback.
fn startup_error_is_exit_1(py: Python<'_>, r: PyResult<i32>) -> PyResult<i32> {
    match r {
        Err(e) if e.is_instance_of::<StartupError>(py) => {
            console::err(format_args!("error: {}", e.value(py)));
            Ok(1)
        }
        r => r,
    }
}

fn serve_config(py: Python<'_>, config: ServerConfig, app: Option<Py<PyAny>>) -> PyResult<i32> {
    // Before anything can start a process: the app's never see them.
    crate::systemd::take_environment(py)?;
    let config = config.with_workers_resolved();
    // First: the mask applies to every file made from here on, the Unix
    // socket included.
    if let Some(mask) = config.umask {
        crate::sys::set_umask(mask);
    }
    // Certificate problems are reported once, before any worker starts.
    if let Err(e) = check(&config) {
        console::err(format_args!("error: {e}"));
        return Ok(2);
    }
    if config.reload && app.is_none() {
        if !setup_parent_logging(py, &config)? {
            return Ok(1);
        }
        if config.workers > 1 {
            console::err("warning: --reload serves with one worker; --workers is ignored");
        }
        let config = ServerConfig {
            workers: 1,
            ..config
        };
        return startup_error_is_exit_1(py, supervisor::supervise(py, &config));
    }
    // Metrics are gathered by a supervisor, even for one worker.
    if app.is_none() && (config.needs_supervisor() || config.metrics) {
        if !setup_parent_logging(py, &config)? {
            return Ok(1);
        }
        return startup_error_is_exit_1(py, supervisor::supervise(py, &config));
    }
    let json = serde_json::to_string(&config).map_err(|e| StartupError::new_err(e.to_string()))?;
    let worker = py.import("cormorant._worker")?;
    // One process: it is the server, so the pid file names it.
    if let Err(e) = supervisor::write_pid_file(&config) {
        console::err(format_args!("error: {}", e.value(py)));
        return Ok(1);
    }
    let code = worker
        .call_method1("run", (json, app))
        .and_then(|r| r.extract());
    supervisor::remove_pid_file(&config);
    code
}

/// Serves as `--user`/`--group` from now on: called once the socket is
/// bound and before the application is imported.
#[pyfunction]
#[pyo3(signature = (user = None, group = None))]
fn become_user(user: Option<&str>, group: Option<&str>) -> PyResult<()> {
    match crate::sys::identity(user, group).map_err(StartupError::new_err)? {
        Some(id) => crate::sys::become_identity(id).map_err(StartupError::new_err),
        None => Ok(()),
    }
}

/// Sets this process's title (`ps -o args`) and `comm` (`ps -o comm`).
#[pyfunction]
fn set_proc_title(title: &str, comm: &str) {
    proctitle::set(title, comm);
}

/// The extension module.
// The GIL is required: the bridge is built and tested for one Python thread
// per worker, and no free-threaded CPython is here to test without it.
#[pymodule(gil_used = true)]
fn _cormorant(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("STOP_SIGNAL_GAP", supervisor::STOP_SIGNAL_GAP.as_secs_f64())?;
    // The worker protocol (see `worker_protocol`), for `_worker.py`.
    {
        use crate::worker_protocol as wp;
        m.add("ENV_WORKER_CONFIG", wp::ENV_CONFIG)?;
        m.add("ENV_READY_FD", wp::ENV_READY_FD)?;
        m.add("ENV_WORKER_ID", wp::ENV_WORKER_ID)?;
        m.add("ENV_LISTEN_FDS", wp::ENV_LISTEN_FDS)?;
        m.add("MSG_READY", pyo3::types::PyBytes::new(py, &[wp::MSG_READY]))?;
        m.add("MSG_ALIVE", pyo3::types::PyBytes::new(py, &[wp::MSG_ALIVE]))?;
        m.add(
            "MSG_RECYCLE",
            pyo3::types::PyBytes::new(py, &[wp::MSG_RECYCLE]),
        )?;
        m.add("WORKER_BOOT_ERROR", wp::WORKER_BOOT_ERROR)?;
    }
    m.add("ClientDisconnected", py.get_type::<ClientDisconnected>())?;
    m.add("StartupError", py.get_type::<StartupError>())?;
    m.add_class::<bridge::worker::Worker>()?;
    m.add_class::<bridge::request::Request>()?;
    m.add_class::<bridge::awaitable::Ready>()?;
    m.add_class::<bridge::lifespan::LifespanCtx>()?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(serve, m)?)?;
    m.add_function(wrap_pyfunction!(resolve_config, m)?)?;
    m.add_function(wrap_pyfunction!(set_proc_title, m)?)?;
    m.add_function(wrap_pyfunction!(become_user, m)?)?;
    m.add_function(wrap_pyfunction!(crate::systemd::sd_notify, m)?)?;
    m.add_function(wrap_pyfunction!(crate::systemd::watchdog_period, m)?)?;
    Ok(())
}
