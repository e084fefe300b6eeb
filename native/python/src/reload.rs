//! `--reload`: which file changes count. The supervisor runs one worker and
//! replaces it when a watched file changes (one more replacement reason of
//! its pool): the new code starts beside the old, which keeps serving if
//! the new code does not load. The supervisor holds the listening socket,
//! so the port stays bound and connections wait for the new worker. It
//! never imports the application.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use globset::{Glob, GlobSet, GlobSetBuilder};
use notify::{RecursiveMode, Watcher};

use crate::config::ServerConfig;

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

/// The watched directories and what changed in them: the supervisor polls
/// it every tick and, once a burst of writes has settled, replaces its
/// worker for that reason (see `supervisor::pool`).
pub(crate) struct Watch {
    filter: ChangeFilter,
    dirs: Vec<PathBuf>,
    delay: Duration,
    rx: mpsc::Receiver<Vec<PathBuf>>,
    /// Kept alive: dropping it stops the notifications.
    _watcher: notify::RecommendedWatcher,
    /// The first matching path of a burst, and when the last event of the
    /// burst came.
    pending: Option<(PathBuf, Instant)>,
}

impl Watch {
    /// Watches `--reload-dir` (default: the working directory).
    pub(crate) fn new(config: &ServerConfig) -> Result<Self, String> {
        let filter = ChangeFilter::new(&config.reload_includes, &config.reload_excludes)?;
        let dirs: Vec<PathBuf> = if config.reload_dirs.is_empty() {
            vec![std::env::current_dir().map_err(|e| e.to_string())?]
        } else {
            config.reload_dirs.iter().map(PathBuf::from).collect()
        };
        let dirs: Vec<PathBuf> = dirs
            .into_iter()
            .map(|d| {
                d.canonicalize()
                    .map_err(|e| format!("--reload-dir {}: {e}", d.display()))
            })
            .collect::<Result<_, _>>()?;
        let (tx, rx) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res {
                if !matches!(event.kind, notify::EventKind::Access(_)) {
                    let _ = tx.send(event.paths);
                }
            }
        })
        .map_err(|e| format!("cannot watch files: {e}"))?;
        for d in &dirs {
            watcher
                .watch(d, RecursiveMode::Recursive)
                .map_err(|e| format!("cannot watch {}: {e}", d.display()))?;
        }
        Ok(Self {
            filter,
            dirs,
            delay: config.reload_delay,
            rx,
            _watcher: watcher,
            pending: None,
        })
    }

    /// The directories watched, for the startup line.
    pub(crate) fn describe(&self) -> String {
        let names: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        names.join(", ")
    }

    /// A changed path, once a burst of writes (an editor saving, a git
    /// checkout) has been quiet for `--reload-delay`.
    pub(crate) fn poll(&mut self) -> Option<PathBuf> {
        let now = Instant::now();
        while let Ok(paths) = self.rx.try_recv() {
            if let Some((_, last)) = &mut self.pending {
                *last = now;
            } else if let Some(changed) = first_match(&self.filter, &self.dirs, &paths) {
                self.pending = Some((changed, now));
            }
        }
        match &self.pending {
            Some((_, last)) if now.duration_since(*last) >= self.delay => {
                self.pending.take().map(|(p, _)| p)
            }
            _ => None,
        }
    }
}

fn first_match(filter: &ChangeFilter, dirs: &[PathBuf], paths: &[PathBuf]) -> Option<PathBuf> {
    paths.iter().find_map(|p| {
        let root = dirs.iter().find(|d| p.starts_with(d))?;
        filter.matches(root, p).then(|| p.clone())
    })
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
