//! Building an ASGI app into a component with componentize-py, cached by
//! the content of everything that goes in.
//!
//! The component is the guest of `guest/` (the sandbox loop and the WIT
//! world) plus a generated `sandbox_target` module importing the app.
//! componentize-py imports the app while it builds (it snapshots the
//! initialised interpreter), so import errors surface here.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use wasmtime::error::Context;
use wasmtime::{Result, bail};

/// The guest files, compiled into this binary so it needs no source tree.
const GUEST_FILES: [(&str, &str); 4] = [
    (
        "wit/sandbox.wit",
        include_str!("../../guest/wit/sandbox.wit"),
    ),
    (
        "sandbox_loop.py",
        include_str!("../../guest/sandbox_loop.py"),
    ),
    (
        "sandbox_wasi.py",
        include_str!("../../guest/sandbox_wasi.py"),
    ),
    (
        "sandbox_guest.py",
        include_str!("../../guest/sandbox_guest.py"),
    ),
];

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// The app as `module:attribute`.
    pub app: String,
    /// Directories searched for the app and its pure-Python dependencies.
    pub python_path: Vec<PathBuf>,
    /// The componentize-py command.
    pub componentize_py: PathBuf,
    /// Where built components (and wasmtime's compiled code) are kept.
    pub cache_dir: PathBuf,
}

/// `module:attribute`, each part a dotted Python identifier.
fn split_app(app: &str) -> Result<(&str, &str)> {
    let ident = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|p| {
                p.chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                    && p.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
    };
    match app.split_once(':') {
        Some((m, a)) if ident(m) && ident(a) => Ok((m, a)),
        _ => bail!("the app must be given as module:attribute, got {app:?}"),
    }
}

/// Feeds every file under `dir` (path relative to `base`, contents) to
/// `h`, in a fixed order. Contents, not times: a fresh clone must find its
/// components again. Left out: bytecode caches, hidden files, and what pip
/// writes beside packages at the top (`bin/` scripts with the absolute
/// path of their venv, `*.dist-info` records of them).
fn hash_tree(h: &mut Sha256, base: &Path, dir: &Path) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for e in entries {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let pip_record = dir == base && (name == "bin" || name.ends_with(".dist-info"));
        if name == "__pycache__" || name.starts_with('.') || pip_record {
            continue;
        }
        let path = e.path();
        if e.metadata()?.is_dir() {
            hash_tree(h, base, &path)?;
        } else {
            let rel = path.strip_prefix(base).unwrap_or(&path);
            let data = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            h.update(rel.to_string_lossy().as_bytes());
            h.update((data.len() as u64).to_le_bytes());
            h.update(&data);
        }
    }
    Ok(())
}

impl BuildSpec {
    /// The version line of componentize-py.
    fn tool_version(&self) -> Result<String> {
        let out = Command::new(&self.componentize_py)
            .arg("--version")
            .output()
            .with_context(|| {
                format!(
                    "running {} (install it: pip install componentize-py==0.25.1)",
                    self.componentize_py.display()
                )
            })?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// A name for this exact build.
    fn key(&self) -> Result<String> {
        let mut h = Sha256::new();
        h.update(self.tool_version()?.as_bytes());
        h.update(self.app.as_bytes());
        for (name, text) in GUEST_FILES {
            h.update(name.as_bytes());
            h.update(text.as_bytes());
        }
        for dir in &self.python_path {
            h.update(b"\0path\0");
            hash_tree(&mut h, dir, dir)?;
        }
        let digest = h.finalize();
        Ok(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
    }

    /// Builds the component unless the cache has it; returns its path.
    pub fn build(&self) -> Result<PathBuf> {
        let (module, attr) = split_app(&self.app)?;
        let key = self.key()?;
        let dest = self
            .cache_dir
            .join("components")
            .join(format!("{key}.wasm"));
        if dest.exists() {
            return Ok(dest);
        }
        let work = self
            .cache_dir
            .join(format!("build-{key}-{}", std::process::id()));
        fs::create_dir_all(work.join("wit"))?;
        for (name, text) in GUEST_FILES {
            fs::write(work.join(name), text)?;
        }
        let target = format!("from {module} import {attr} as app  # noqa: F401\n");
        fs::write(work.join("sandbox_target.py"), target)?;
        let mut cmd = Command::new(&self.componentize_py);
        cmd.arg("-d")
            .arg(work.join("wit"))
            .args(["-w", "sandbox", "componentize"]);
        cmd.arg("sandbox_guest").arg("-p").arg(&work);
        for dir in &self.python_path {
            cmd.arg("-p").arg(dir);
        }
        cmd.arg("-o").arg(work.join("app.wasm"));
        // Only the directories given go in: not an active virtualenv's
        // site-packages, which componentize-py would otherwise add.
        cmd.env_remove("VIRTUAL_ENV");
        let out = cmd.output().context("running componentize-py")?;
        if !out.status.success() {
            let _ = fs::remove_dir_all(&work);
            bail!(
                "componentize-py could not build {}:\n{}{}",
                self.app,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        fs::create_dir_all(dest.parent().unwrap_or(&self.cache_dir))?;
        fs::rename(work.join("app.wasm"), &dest)?;
        let _ = fs::remove_dir_all(&work);
        Ok(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_are_checked() {
        assert_eq!(split_app("pkg.mod:app").unwrap(), ("pkg.mod", "app"));
        for bad in [
            "app",
            "mod:",
            ":app",
            "mod:a b",
            "1mod:app",
            "mod:app; import os",
        ] {
            assert!(split_app(bad).is_err(), "{bad}");
        }
    }
}
