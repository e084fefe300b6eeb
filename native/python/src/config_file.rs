//! The configuration file: `cormorant.toml`, or the `[tool.cormorant]` table
//! of `pyproject.toml`, in the working directory (or the file named by
//! `--config` / `CORMORANT_CONFIG`). Its keys are the flags' names (`port`,
//! `workers`, `access-log` or `access_log`...). Command-line flags win over
//! environment variables, which win over the file.

use std::path::{Path, PathBuf};

/// Where the file was found and the `(key, value)` pairs it sets, as the
/// text an environment variable would hold.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct FileSettings {
    pub(crate) path: Option<PathBuf>,
    pub(crate) values: Vec<(String, String)>,
}

/// Finds and reads the configuration file. `explicit` is the `--config`
/// path, if given (then it must exist).
pub(crate) fn load(explicit: Option<&str>, dir: &Path) -> Result<FileSettings, String> {
    if let Some(path) = explicit {
        let path = PathBuf::from(path);
        let table = read_table(&path)?;
        let table = if path.file_name().is_some_and(|n| n == "pyproject.toml") {
            tool_table(table, &path)?.unwrap_or_default()
        } else {
            table
        };
        return Ok(FileSettings {
            values: flatten(&table, &path)?,
            path: Some(path),
        });
    }
    let own = dir.join("cormorant.toml");
    if own.is_file() {
        let table = read_table(&own)?;
        return Ok(FileSettings {
            values: flatten(&table, &own)?,
            path: Some(own),
        });
    }
    let pyproject = dir.join("pyproject.toml");
    if pyproject.is_file() {
        if let Some(table) = tool_table(read_table(&pyproject)?, &pyproject)? {
            return Ok(FileSettings {
                values: flatten(&table, &pyproject)?,
                path: Some(pyproject),
            });
        }
    }
    Ok(FileSettings::default())
}

fn read_table(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.parse::<toml::Table>().map_err(|e| {
        let first = e.to_string();
        let first = first.lines().next().unwrap_or("invalid TOML").to_owned();
        format!("{}: {first}", path.display())
    })
}

/// `[tool.cormorant]` of a pyproject table.
fn tool_table(mut table: toml::Table, path: &Path) -> Result<Option<toml::Table>, String> {
    let Some(toml::Value::Table(mut tool)) = table.remove("tool") else {
        return Ok(None);
    };
    match tool.remove("cormorant") {
        None => Ok(None),
        Some(toml::Value::Table(t)) => Ok(Some(t)),
        Some(_) => Err(format!(
            "{}: [tool.cormorant] must be a table",
            path.display()
        )),
    }
}

/// Turns each key into its environment variable's value text.
fn flatten(table: &toml::Table, path: &Path) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::with_capacity(table.len());
    for (key, value) in table {
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        toml::Value::String(s) => parts.push(s.clone()),
                        toml::Value::Integer(i) => parts.push(i.to_string()),
                        _ => {
                            return Err(format!(
                                "{}: {key}: list items must be strings or integers",
                                path.display()
                            ));
                        }
                    }
                }
                parts.join(",")
            }
            _ => {
                return Err(format!(
                    "{}: {key}: expected a string, number, boolean or list",
                    path.display()
                ));
            }
        };
        out.push((key.replace('_', "-"), text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempdir::Dir {
        let d = tempdir::Dir::new();
        for (name, text) in files {
            std::fs::write(d.path().join(name), text).unwrap();
        }
        d
    }

    /// A throwaway directory (no extra crate for this).
    mod tempdir {
        use std::path::{Path, PathBuf};

        pub(super) struct Dir(PathBuf);

        impl Dir {
            pub(super) fn new() -> Self {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static N: AtomicUsize = AtomicUsize::new(0);
                let p = std::env::temp_dir().join(format!(
                    "cormorant-config-test-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Self(p)
            }

            pub(super) fn path(&self) -> &Path {
                &self.0
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn cormorant_toml_first() {
        let d = dir_with(&[
            (
                "cormorant.toml",
                "port = 9000\naccess_log = true\nheader = [\"a:1\", \"b:2\"]\nhost = \"0.0.0.0\"\ntimeout-keep-alive = 2.5\n",
            ),
            ("pyproject.toml", "[tool.cormorant]\nport = 1\n"),
        ]);
        let s = load(None, d.path()).unwrap();
        assert_eq!(s.path.unwrap().file_name().unwrap(), "cormorant.toml");
        let v: std::collections::HashMap<_, _> = s.values.into_iter().collect();
        assert_eq!(v["port"], "9000");
        assert_eq!(v["access-log"], "true");
        assert_eq!(v["header"], "a:1,b:2");
        assert_eq!(v["host"], "0.0.0.0");
        assert_eq!(v["timeout-keep-alive"], "2.5");
    }

    #[test]
    fn pyproject_tool_table() {
        let d = dir_with(&[(
            "pyproject.toml",
            "[project]\nname = \"x\"\n\n[tool.cormorant]\nworkers = 3\n",
        )]);
        let s = load(None, d.path()).unwrap();
        assert_eq!(s.values, [("workers".to_owned(), "3".to_owned())]);
        let empty = dir_with(&[("pyproject.toml", "[project]\nname = \"x\"\n")]);
        assert_eq!(load(None, empty.path()).unwrap(), FileSettings::default());
    }

    #[test]
    fn errors_name_the_file() {
        let d = dir_with(&[("cormorant.toml", "port = [\n")]);
        let e = load(None, d.path()).unwrap_err();
        assert!(e.contains("cormorant.toml"), "{e}");
        let d = dir_with(&[("cormorant.toml", "x = { a = 1 }\n")]);
        assert!(load(None, d.path()).unwrap_err().contains("x: expected"));
        assert!(
            load(Some("/nonexistent/c.toml"), d.path())
                .unwrap_err()
                .contains("cannot read")
        );
    }
}
