//! Turns a request into the environ dict a WSGI application gets, from
//! core's [`Environ`] (which decides every variable).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use bytes::Bytes;
use std::sync::Arc;

use cormorant_core::asgi::{Address, HttpScope};
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
    /// Per header name: its environ key (None: left out) and its last value.
    names: HashMap<Bytes, Option<HeaderVar>, BuildHasherDefault<NameHasher>>,
    path: LastStr,
    /// The last client address (most clients are a few proxies).
    client: Option<(Arc<str>, Py<PyString>)>,
    /// Client ports' strings (each connection has its own port).
    ports: HashMap<u16, Py<PyString>>,
}

/// A header's environ key, and its last value.
type HeaderVar = (Py<PyString>, LastStr);

/// The string made for the last value of a variable: the next request
/// often has the same (`Host`, `Accept`, a path polled over and over),
/// and then shares it instead of decoding it again.
#[derive(Default)]
struct LastStr {
    bytes: Vec<u8>,
    string: Option<Py<PyString>>,
}

/// Values longer than this are not kept.
const LAST_KEPT: usize = 256;

impl LastStr {
    fn get<'py>(&mut self, py: Python<'py>, b: &[u8]) -> Bound<'py, PyString> {
        if let Some(s) = &self.string
            && self.bytes == b
        {
            return s.bind(py).clone();
        }
        let s = latin1(py, b);
        if b.len() <= LAST_KEPT {
            self.bytes.clear();
            self.bytes.extend_from_slice(b);
            self.string = Some(s.clone().unbind());
        }
        s
    }
}

/// FNV-1a over a header name: names are short and chosen by clients only
/// up to the cache's bound, so a keyed hash buys nothing here.
struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
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
        // wsgi.input ends with the body, chunked or not (a de facto
        // extension: Werkzeug reads a body without Content-Length only
        // when the server says so).
        d.set_item(intern!(py, "wsgi.input_terminated"), true)?;
        d.set_item(intern!(py, "wsgi.errors"), &shared.errors)?;
        d.set_item(intern!(py, "wsgi.file_wrapper"), &shared.file_wrapper)?;
        d.set_item(intern!(py, "SCRIPT_NAME"), &self.script_name)?;
        d.set_item(intern!(py, "SERVER_NAME"), &self.server_name)?;
        d.set_item(intern!(py, "SERVER_PORT"), &self.server_port)?;
        d.set_item(intern!(py, "SERVER_PROTOCOL"), self.server_protocol)?;
        // Every request sets these: present from the start, the copy is
        // made at its final size and they are replaced, not inserted.
        for key in [
            "REQUEST_METHOD",
            "PATH_INFO",
            "QUERY_STRING",
            "REMOTE_ADDR",
            "REMOTE_PORT",
            "wsgi.input",
        ] {
            d.set_item(PyString::intern(py, key), "")?;
        }
        Ok(d)
    }
}

use crate::sys::latin1_str as latin1;

impl Kept {
    /// Sets header `name`'s variable, unless it is left out.
    fn set_header(
        &mut self,
        py: Python<'_>,
        d: &Bound<'_, PyDict>,
        name: &[u8],
        value: &[u8],
    ) -> PyResult<()> {
        if !self.names.contains_key(name) {
            let key = match &cgi_name(name) {
                CgiName::Content(k) => Some(PyString::intern(py, k)),
                CgiName::Http(k) => Some(PyString::intern(py, k)),
                CgiName::Dropped => None,
            };
            if self.names.len() >= NAMES_KEPT {
                return match key {
                    Some(key) => d.set_item(key, latin1(py, value)),
                    None => Ok(()),
                };
            }
            let entry = key.map(|k| (k.unbind(), LastStr::default()));
            self.names.insert(Bytes::copy_from_slice(name), entry);
        }
        match self.names.get_mut(name) {
            Some(Some((key, last))) => d.set_item(key.bind(py), last.get(py, value)),
            _ => Ok(()),
        }
    }

    /// `REMOTE_ADDR` and `REMOTE_PORT` (placeholders in the prototype:
    /// removed when unknown).
    fn set_client(
        &mut self,
        py: Python<'_>,
        d: &Bound<'_, PyDict>,
        client: Option<&Address>,
    ) -> PyResult<()> {
        let Some(a) = client else {
            d.del_item(intern!(py, "REMOTE_ADDR"))?;
            return d.del_item(intern!(py, "REMOTE_PORT"));
        };
        let addr = match &self.client {
            Some((host, s)) if **host == *a.host => s.bind(py).clone(),
            _ => {
                let s = PyString::new(py, &a.host);
                self.client = Some((a.host.clone(), s.clone().unbind()));
                s
            }
        };
        d.set_item(intern!(py, "REMOTE_ADDR"), addr)?;
        if a.port == 0 {
            return d.del_item(intern!(py, "REMOTE_PORT"));
        }
        if self.ports.len() >= PORTS_KEPT {
            self.ports.clear();
        }
        let port = self
            .ports
            .entry(a.port)
            .or_insert_with(|| latin1(py, a.port.to_string().as_bytes()).unbind());
        d.set_item(intern!(py, "REMOTE_PORT"), port.bind(py))
    }
}

/// Client ports whose strings are kept.
const PORTS_KEPT: usize = 4096;

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
    d.set_item(intern!(py, "PATH_INFO"), kept.path.get(py, &e.path_info))?;
    if !e.query_string.is_empty() {
        d.set_item(intern!(py, "QUERY_STRING"), latin1(py, e.query_string))?;
    }
    // Core decided whether there is a client address to give.
    let client = scope.client.as_ref().filter(|_| e.remote_addr.is_some());
    kept.set_client(py, &d, client)?;
    for (name, value) in &e.headers {
        kept.set_header(py, &d, name, value)?;
    }
    Ok(d)
}
