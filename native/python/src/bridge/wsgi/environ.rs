//! Turns a request into the environ dict a WSGI application gets, from
//! core's [`Environ`] (which decides every variable).

use std::collections::HashMap;

use bytes::Bytes;
use cormorant_core::asgi::HttpScope;
use cormorant_core::wsgi::{CgiName, Environ, cgi_name};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

/// What the environ of every request shares: the objects the prototype
/// holds (PEP 3333's `wsgi.*` variables).
pub(crate) struct Shared {
    /// `wsgi.errors`.
    pub(crate) errors: Py<PyAny>,
    /// `wsgi.file_wrapper`.
    pub(crate) file_wrapper: Py<PyAny>,
    /// `wsgi.multithread`.
    pub(crate) multithread: bool,
    /// `wsgi.multiprocess`.
    pub(crate) multiprocess: bool,
}

/// What one thread keeps between requests: prototypes of the environ
/// (one per server address and protocol), and the environ names of the
/// header names seen.
#[derive(Default)]
pub(crate) struct Kept {
    prototypes: Vec<(Shape, Py<PyDict>)>,
    names: HashMap<Bytes, Option<Py<PyString>>>,
}

/// Distinct prototypes kept; header names kept.
const PROTOTYPES_KEPT: usize = 4;
const NAMES_KEPT: usize = 256;

/// The variables that are the same for every request on one listener.
#[derive(PartialEq, Eq)]
struct Shape {
    server_protocol: &'static str,
    url_scheme: &'static str,
    script_name: String,
    server_name: String,
    server_port: String,
}

impl Shape {
    fn of(e: &Environ<'_>) -> Self {
        Self {
            server_protocol: e.server_protocol,
            url_scheme: e.url_scheme,
            script_name: e.script_name.to_owned(),
            server_name: e.server_name.clone().into_owned(),
            server_port: e.server_port.clone(),
        }
    }

    fn matches(&self, e: &Environ<'_>) -> bool {
        self.server_protocol == e.server_protocol
            && self.url_scheme == e.url_scheme
            && self.script_name == e.script_name
            && self.server_name == e.server_name
            && self.server_port == e.server_port
    }

    fn prototype<'py>(&self, py: Python<'py>, shared: &Shared) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let version = PyTuple::new(py, [1, 0])?;
        d.set_item(intern!(py, "wsgi.version"), version)?;
        d.set_item(intern!(py, "wsgi.url_scheme"), self.url_scheme)?;
        d.set_item(intern!(py, "wsgi.multithread"), shared.multithread)?;
        d.set_item(intern!(py, "wsgi.multiprocess"), shared.multiprocess)?;
        d.set_item(intern!(py, "wsgi.run_once"), false)?;
        d.set_item(intern!(py, "wsgi.errors"), &shared.errors)?;
        d.set_item(intern!(py, "wsgi.file_wrapper"), &shared.file_wrapper)?;
        d.set_item(intern!(py, "SCRIPT_NAME"), &self.script_name)?;
        d.set_item(intern!(py, "SERVER_NAME"), &self.server_name)?;
        d.set_item(intern!(py, "SERVER_PORT"), &self.server_port)?;
        d.set_item(intern!(py, "SERVER_PROTOCOL"), self.server_protocol)?;
        Ok(d)
    }
}

/// A byte string as a native string: ISO-8859-1, as PEP 3333 asks.
pub(crate) fn latin1<'py>(py: Python<'py>, b: &[u8]) -> Bound<'py, PyString> {
    match std::str::from_utf8(b) {
        Ok(s) if b.is_ascii() => PyString::new(py, s),
        _ => PyString::new(py, &b.iter().map(|&c| char::from(c)).collect::<String>()),
    }
}

impl Kept {
    /// The environ key of header `name`, or None for one left out.
    fn name<'py>(&mut self, py: Python<'py>, name: &[u8]) -> Option<Bound<'py, PyString>> {
        if let Some(k) = self.names.get(name) {
            return k.as_ref().map(|k| k.bind(py).clone());
        }
        let key = match &cgi_name(name) {
            CgiName::Content(k) => Some(PyString::intern(py, k)),
            CgiName::Http(k) => Some(PyString::intern(py, k)),
            CgiName::Dropped => None,
        };
        if self.names.len() < NAMES_KEPT {
            self.names.insert(
                Bytes::copy_from_slice(name),
                key.as_ref().map(|k| k.clone().unbind()),
            );
        }
        key
    }
}

/// The environ of `scope`'s request, less `wsgi.input`.
pub(crate) fn environ<'py>(
    py: Python<'py>,
    kept: &mut Kept,
    shared: &Shared,
    scope: &HttpScope,
) -> PyResult<Bound<'py, PyDict>> {
    let e = Environ::new(scope);
    let d = match kept.prototypes.iter().rev().find(|(s, _)| s.matches(&e)) {
        Some((_, d)) => d.bind(py).copy()?,
        None => {
            let shape = Shape::of(&e);
            let d = shape.prototype(py, shared)?;
            if kept.prototypes.len() == PROTOTYPES_KEPT {
                kept.prototypes.remove(0);
            }
            let copy = d.copy()?;
            kept.prototypes.push((shape, d.unbind()));
            copy
        }
    };
    let method = match e.request_method {
        "GET" => intern!(py, "GET").clone(),
        "POST" => intern!(py, "POST").clone(),
        "HEAD" => intern!(py, "HEAD").clone(),
        m => PyString::new(py, m),
    };
    d.set_item(intern!(py, "REQUEST_METHOD"), method)?;
    d.set_item(intern!(py, "PATH_INFO"), latin1(py, &e.path_info))?;
    d.set_item(intern!(py, "QUERY_STRING"), latin1(py, e.query_string))?;
    if let (Some(addr), Some(port)) = (e.remote_addr, &e.remote_port) {
        d.set_item(intern!(py, "REMOTE_ADDR"), addr)?;
        d.set_item(intern!(py, "REMOTE_PORT"), port)?;
    }
    for (name, value) in &e.headers {
        if let Some(key) = kept.name(py, name) {
            d.set_item(key, latin1(py, value))?;
        }
    }
    Ok(d)
}
