//! `--reload`: one worker process, replaced whenever a watched file changes.
//!
//! The reloader holds the listening socket, so the port stays bound across
//! restarts and connections made during one wait for the new worker. It
//! never imports the application: a change that breaks the import is
//! reported by the worker, and the reloader waits for the next change.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use globset::{Glob, GlobSet, GlobSetBuilder};
use notify::{RecursiveMode, Watcher};
use pyo3::prelude::*;

use crate::bridge::StartupError;
use crate::config::ServerConfig;
use crate::server::listener::Listener;
use crate::supervisor::log;
use crate::worker_protocol::{ENV_CONFIG, WORKER_BOOT_ERROR};

/// Exit code of a worker that could not boot (`cormorant._worker`).
/// Files always watched; `--reload-include` adds more.
const DEFAULT_INCLUDES: &[&str] = &["*.py"];
/// Files and directories never watched unless included explicitly: hidden
/// ones, bytecode, editor swap files, virtualenvs.
const DEFAULT_EXCLUDES: &[&str] = &[
    ".*",
    "*.py[cod]",
    "*.sw.",
    "~*",
    "__pycache__",
    "node_modules",
    "venv",
];

/// Which paths count as a change.
pub(crate) struct ChangeFilter {
    include: GlobSet,
    exclude: GlobSet,
}

fn glob_set(patterns: &[String], what: &str) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| format!("invalid {what} pattern {p:?}: {e}"))?);
    }
    b.build().map_err(|e| e.to_string())
}

impl ChangeFilter {
    /// Patterns match a file's name or any directory name on its path
    /// below a watched directory; an explicit include beats a default
    /// exclude.
    pub(crate) fn new(includes: &[String], excludes: &[String]) -> Result<Self, String> {
        // As with uvicorn, includes add to `*.py`.
        let include: Vec<String> = DEFAULT_INCLUDES
            .iter()
            .map(|s| (*s).to_owned())
            .chain(includes.iter().cloned())
            .collect();
        let mut exclude: Vec<String> = DEFAULT_EXCLUDES
            .iter()
            .filter(|d| !include.iter().any(|i| i == *d))
            .map(|s| (*s).to_owned())
            .collect();
        exclude.extend(excludes.iter().cloned());
        Ok(Self {
            include: glob_set(&include, "--reload-include")?,
            exclude: glob_set(&exclude, "--reload-exclude")?,
        })
    }

    /// Whether a change to `path` (under `root`) should restart the worker.
    pub(crate) fn matches(&self, root: &Path, path: &Path) -> bool {
        let rel = path.strip_prefix(root).unwrap_or(path);
        let Some(name) = rel.file_name() else {
            return false;
        };
        if self.exclude.is_match(name) || self.exclude.is_match(rel) {
            return false;
        }
        if let Some(parent) = rel.parent() {
            if parent
                .components()
                .any(|c| self.exclude.is_match(c.as_os_str()))
            {
                return false;
            }
        }
        self.include.is_match(name) || self.include.is_match(rel)
    }
}

/// Runs the reloader until SIGTERM/SIGINT. Returns the exit code.
pub(crate) fn run(py: Python<'_>, config: &ServerConfig) -> PyResult<i32> {
    let filter = ChangeFilter::new(&config.reload_includes, &config.reload_excludes)
        .map_err(StartupError::new_err)?;
    let dirs: Vec<PathBuf> = if config.reload_dirs.is_empty() {
        vec![std::env::current_dir()?]
    } else {
        config.reload_dirs.iter().map(PathBuf::from).collect()
    };
    let dirs: Vec<PathBuf> = dirs
        .into_iter()
        .map(|d| d.canonicalize().map_err(|e| (d, e)))
        .collect::<Result<_, _>>()
        .map_err(|(d, e)| StartupError::new_err(format!("--reload-dir {}: {e}", d.display())))?;
    let listener = Listener::bind(config).map_err(StartupError::new_err)?;
    let fd = listener.raw_fd();
    // SAFETY: fd is our open listening socket; clearing FD_CLOEXEC only lets
    // the worker process inherit it.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
    }
    let mut child_config = config.clone();
    child_config.reload = false;
    child_config.workers = 1;
    child_config.fd = Some(fd);
    child_config.uds = None;
    let child_json =
        serde_json::to_string(&child_config).map_err(|e| StartupError::new_err(e.to_string()))?;
    let exe: String = py.import("sys")?.getattr("executable")?.extract()?;
    let spawn = || -> std::io::Result<Child> {
        Command::new(&exe)
            .args([
                "-c",
                "from cormorant._worker import worker_main; worker_main()",
            ])
            .env(ENV_CONFIG, &child_json)
            .spawn()
    };

    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res {
            if !matches!(event.kind, notify::EventKind::Access(_)) {
                let _ = tx.send(event.paths);
            }
        }
    })
    .map_err(|e| StartupError::new_err(format!("cannot watch files: {e}")))?;
    for d in &dirs {
        watcher
            .watch(d, RecursiveMode::Recursive)
            .map_err(|e| StartupError::new_err(format!("cannot watch {}: {e}", d.display())))?;
    }
    crate::supervisor::release_python_sigint(py)?;
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, term.clone())
            .map_err(|e| StartupError::new_err(format!("cannot install signal handler: {e}")))?;
    }
    let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    log(
        "info",
        &format!(
            "Cormorant reloader (pid {}) watching {} for changes",
            std::process::id(),
            names.join(", ")
        ),
    );
    let delay = Duration::from_secs_f64(config.reload_delay.max(0.0));
    let graceful = config.timeout_graceful_shutdown;
    let mut child = Some(spawn()?);
    let code = py.detach(move || {
        loop {
            if term.load(Ordering::Relaxed) {
                if let Some(c) = child.as_mut() {
                    stop(c, graceful);
                }
                return 0;
            }
            if let Some(c) = child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    if status.code() == Some(WORKER_BOOT_ERROR) {
                        log(
                            "error",
                            "the app failed to load; waiting for a change to retry",
                        );
                    } else {
                        log(
                            "warning",
                            &format!("the worker exited ({status}); waiting for a change"),
                        );
                    }
                    child = None;
                }
            }
            let Ok(paths) = rx.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            let Some(changed) = first_match(&filter, &dirs, &paths) else {
                continue;
            };
            // Let a burst of writes (an editor saving, a git checkout) end.
            let until = Instant::now() + delay;
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                if rx.recv_timeout(left).is_err() {
                    break;
                }
            }
            while rx.try_recv().is_ok() {}
            log(
                "warning",
                &format!("{} changed; reloading", changed.display()),
            );
            if let Some(c) = child.as_mut() {
                stop(c, graceful);
            }
            child = match spawn() {
                Ok(c) => Some(c),
                Err(e) => {
                    log("error", &format!("cannot start worker: {e}"));
                    None
                }
            };
        }
    });
    drop(watcher);
    drop(listener);
    crate::bridge::worker::remove_socket_file(config);
    Ok(code)
}

fn first_match(filter: &ChangeFilter, dirs: &[PathBuf], paths: &[PathBuf]) -> Option<PathBuf> {
    paths.iter().find_map(|p| {
        let root = dirs.iter().find(|d| p.starts_with(d))?;
        filter.matches(root, p).then(|| p.clone())
    })
}

/// SIGTERM, then SIGKILL if the worker outlives the graceful timeout.
fn stop(child: &mut Child, graceful: Option<f64>) {
    // SAFETY: sending a signal to our own child by pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs_f64(graceful.unwrap_or(10.0) + 5.0);
    loop {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(inc: &[&str], exc: &[&str]) -> ChangeFilter {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        ChangeFilter::new(&v(inc), &v(exc)).unwrap()
    }

    #[test]
    fn python_files_by_default_without_bytecode_or_hidden_dirs() {
        let f = filter(&[], &[]);
        let root = Path::new("/app");
        assert!(f.matches(root, Path::new("/app/main.py")));
        assert!(f.matches(root, Path::new("/app/pkg/mod.py")));
        assert!(!f.matches(root, Path::new("/app/README.md")));
        assert!(!f.matches(root, Path::new("/app/pkg/__pycache__/mod.cpython-311.pyc")));
        assert!(!f.matches(root, Path::new("/app/.git/hooks/x.py")));
        assert!(!f.matches(root, Path::new("/app/.venv/lib/site.py")));
        assert!(!f.matches(root, Path::new("/app/.main.py.swp")));
    }

    #[test]
    fn includes_and_excludes() {
        let f = filter(&["*.py", "*.html"], &["tests"]);
        let root = Path::new("/app");
        assert!(f.matches(root, Path::new("/app/templates/index.html")));
        assert!(!f.matches(root, Path::new("/app/tests/test_x.py")));
        assert!(ChangeFilter::new(&["[".to_owned()], &[]).is_err());
    }
}
