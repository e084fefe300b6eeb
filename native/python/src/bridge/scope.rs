//! Turns a core [`HttpScope`] into the scope dict the application sees.

use std::sync::Arc;

use bytes::Bytes;
use cormorant_core::asgi::{
    ASGI_VERSION, Address, Extensions, HTTP_SPEC_VERSION, HttpScope, HttpVersion,
    WEBSOCKET_SPEC_VERSION, WebSocketScope,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::tls::TlsInfo;

/// Header names common enough that sharing one `bytes` object for each saves
/// an allocation per header per request.
const COMMON_HEADER_NAMES: &[&[u8]] = &[
    b"host",
    b"user-agent",
    b"accept",
    b"accept-encoding",
    b"accept-language",
    b"connection",
    b"content-type",
    b"content-length",
    b"cookie",
    b"authorization",
    b"cache-control",
    b"origin",
    b"referer",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-request-id",
    b"upgrade",
    b"transfer-encoding",
    b"expect",
];

static HEADER_NAMES: PyOnceLock<Vec<Py<PyBytes>>> = PyOnceLock::new();

fn header_name<'py>(py: Python<'py>, name: &Bytes) -> Bound<'py, PyBytes> {
    let cached = HEADER_NAMES.get_or_init(py, || {
        COMMON_HEADER_NAMES
            .iter()
            .map(|n| PyBytes::new(py, n).unbind())
            .collect()
    });
    for (i, n) in COMMON_HEADER_NAMES.iter().enumerate() {
        if *n == name.as_ref() {
            return cached[i].bind(py).clone();
        }
    }
    PyBytes::new(py, name)
}

fn address<'py>(py: Python<'py>, a: &Address, unix: bool) -> PyResult<Bound<'py, PyTuple>> {
    if unix {
        PyTuple::new(
            py,
            [
                PyString::new(py, &a.host).into_any(),
                py.None().into_bound(py),
            ],
        )
    } else {
        PyTuple::new(
            py,
            [
                PyString::new(py, &a.host).into_any(),
                a.port.into_pyobject(py)?.into_any(),
            ],
        )
    }
}

/// Builds the WebSocket scope dict (ASGI WebSocket spec 2.5): the HTTP
/// fields minus `method`, plus `subprotocols`, and the denial-response
/// extension.
pub(crate) fn websocket_scope<'py>(
    py: Python<'py>,
    kept: &mut Kept,
    scope: &WebSocketScope,
    unix: bool,
    state: Option<&Bound<'py, PyDict>>,
    tls: Option<&TlsInfo>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = http_scope(
        py,
        kept,
        &scope.http,
        unix,
        state,
        Extensions::default(),
        tls,
    )?;
    d.set_item(intern!(py, "type"), intern!(py, "websocket"))?;
    d.del_item(intern!(py, "method"))?;
    let scheme = if scope.http.scheme == "wss" {
        intern!(py, "wss")
    } else {
        intern!(py, "ws")
    };
    d.set_item(intern!(py, "scheme"), scheme)?;
    let asgi = PyDict::new(py);
    asgi.set_item(intern!(py, "version"), intern!(py, ASGI_VERSION))?;
    asgi.set_item(
        intern!(py, "spec_version"),
        intern!(py, WEBSOCKET_SPEC_VERSION),
    )?;
    d.set_item(intern!(py, "asgi"), asgi)?;
    let subprotocols = PyList::empty(py);
    for p in &scope.subprotocols {
        subprotocols.append(PyString::new(py, p))?;
    }
    d.set_item(intern!(py, "subprotocols"), subprotocols)?;
    let extensions = d
        .get_item(intern!(py, "extensions"))?
        .map_or_else(|| Ok(PyDict::new(py)), |e| e.cast_into::<PyDict>())?;
    extensions.set_item(intern!(py, "websocket.http.response"), PyDict::new(py))?;
    Ok(d)
}

/// `scope["extensions"]["request_id"] = {"id": ...}` (`--request-id`).
pub(crate) fn add_request_id(py: Python<'_>, scope: &Bound<'_, PyDict>, id: &[u8]) -> PyResult<()> {
    let extensions = scope
        .get_item(intern!(py, "extensions"))?
        .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err("extensions"))?;
    let ext = PyDict::new(py);
    ext.set_item(
        intern!(py, "id"),
        PyString::new(py, &String::from_utf8_lossy(id)),
    )?;
    extensions.set_item(intern!(py, "request_id"), ext)
}

/// `scope["extensions"]["tls"]` (ASGI TLS extension 0.2).
fn tls_extension<'py>(
    py: Python<'py>,
    kept: &mut Kept,
    tls: &TlsInfo,
) -> PyResult<Bound<'py, PyDict>> {
    let anonymous = tls.client_cert_chain.is_empty()
        && tls.client_cert_name.is_none()
        && tls.client_cert_error.is_none();
    if !anonymous {
        return tls_fields(py, &mut kept.server_cert, tls);
    }
    // Without a client certificate the dict depends only on the listener's
    // certificate and what was negotiated: a copy of a kept one, with a
    // list of its own (an app may change what it is given).
    let Kept {
        tls_shapes,
        server_cert: cert,
        ..
    } = kept;
    let d = kept_dict(
        py,
        tls_shapes,
        |shape| shape.matches(tls),
        || Ok((TlsShape::of(tls), tls_fields(py, cert, tls)?)),
    )?
    .copy()?;
    d.set_item(intern!(py, "client_cert_chain"), PyList::empty(py))?;
    Ok(d)
}

/// The `tls` extension's fields, made from `tls`.
fn tls_fields<'py>(
    py: Python<'py>,
    last_cert: &mut Option<(Arc<str>, Py<PyString>)>,
    tls: &TlsInfo,
) -> PyResult<Bound<'py, PyDict>> {
    // A copy of a dict holding every key: no resizing as the keys go in.
    let d = TLS_KEYS
        .get_or_init(py, || {
            let d = PyDict::new(py);
            for key in TLS_FIELDS {
                // Interned, as `intern!` makes the keys set below; setting
                // None into a new dict cannot fail.
                let _ = d.set_item(PyString::intern(py, key), py.None());
            }
            d.unbind()
        })
        .bind(py)
        .copy()?;
    let server_cert = tls
        .server_cert
        .as_ref()
        .map(|pem| server_cert(py, last_cert, pem));
    d.set_item(intern!(py, "server_cert"), server_cert)?;
    d.set_item(
        intern!(py, "client_cert_chain"),
        PyList::new(py, &tls.client_cert_chain)?,
    )?;
    d.set_item(
        intern!(py, "client_cert_name"),
        tls.client_cert_name.as_deref(),
    )?;
    d.set_item(
        intern!(py, "client_cert_error"),
        tls.client_cert_error.as_deref(),
    )?;
    d.set_item(intern!(py, "tls_version"), tls.tls_version)?;
    d.set_item(intern!(py, "cipher_suite"), tls.cipher_suite)?;
    Ok(d)
}

/// What the `tls` extension of a connection without a client certificate
/// depends on. The certificate's text is kept, so that its address cannot
/// be reused by another while the shape lives.
struct TlsShape {
    server_cert: Option<Arc<str>>,
    tls_version: u16,
    cipher_suite: Option<u16>,
}

impl TlsShape {
    fn of(tls: &TlsInfo) -> Self {
        Self {
            server_cert: tls.server_cert.clone(),
            tls_version: tls.tls_version,
            cipher_suite: tls.cipher_suite,
        }
    }

    fn matches(&self, tls: &TlsInfo) -> bool {
        let same_cert = match (&self.server_cert, &tls.server_cert) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        same_cert && self.tls_version == tls.tls_version && self.cipher_suite == tls.cipher_suite
    }
}

/// The keys of the `tls` extension, in the order they are set.
const TLS_FIELDS: [&str; 6] = [
    "server_cert",
    "client_cert_chain",
    "client_cert_name",
    "client_cert_error",
    "tls_version",
    "cipher_suite",
];
static TLS_KEYS: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

/// The server certificate's PEM as a Python string, kept in `last` with
/// the text it was made from: every connection of a listener shares that
/// text, so its string is made once, not decoded again for each request.
fn server_cert<'py>(
    py: Python<'py>,
    last: &mut Option<(Arc<str>, Py<PyString>)>,
    pem: &Arc<str>,
) -> Bound<'py, PyString> {
    if let Some((text, string)) = last.as_ref()
        && Arc::ptr_eq(text, pem)
    {
        return string.bind(py).clone();
    }
    let string = PyString::new(py, pem);
    *last = Some((pem.clone(), string.clone().unbind()));
    string
}

/// `scope["asgi"]` of an HTTP scope, copied for each request.
static HTTP_ASGI: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

/// The scope fields every request arriving the same way shares: they depend
/// only on the listener and the connection's protocol.
#[derive(PartialEq, Eq)]
struct Shape {
    http_version: HttpVersion,
    scheme: &'static str,
    root_path: String,
    server: Option<Address>,
    unix: bool,
}

impl Shape {
    fn of(scope: &HttpScope, unix: bool) -> Self {
        Self {
            http_version: scope.http_version,
            scheme: scope.scheme,
            root_path: scope.root_path.clone(),
            server: scope.server.clone(),
            unix,
        }
    }

    fn matches(&self, scope: &HttpScope, unix: bool) -> bool {
        self.http_version == scope.http_version
            && self.scheme == scope.scheme
            && self.root_path == scope.root_path
            && self.server == scope.server
            && self.unix == unix
    }

    /// Every key of an HTTP scope, in order: this shape's fields filled in,
    /// the rest None.
    fn prototype<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for key in [
            "type",
            "asgi",
            "http_version",
            "method",
            "scheme",
            "path",
            "raw_path",
            "query_string",
            "root_path",
            "headers",
            "client",
            "server",
            "extensions",
        ] {
            // Interned, as `intern!` makes the keys set later.
            d.set_item(PyString::intern(py, key), py.None())?;
        }
        d.set_item(intern!(py, "type"), intern!(py, "http"))?;
        let version = match self.http_version {
            HttpVersion::Http10 => intern!(py, "1.0"),
            HttpVersion::Http11 => intern!(py, "1.1"),
            HttpVersion::Http2 => intern!(py, "2"),
            HttpVersion::Http3 => intern!(py, "3"),
        };
        d.set_item(intern!(py, "http_version"), version)?;
        let scheme = if self.scheme == "https" {
            intern!(py, "https")
        } else {
            intern!(py, "http")
        };
        d.set_item(intern!(py, "scheme"), scheme)?;
        d.set_item(intern!(py, "root_path"), PyString::new(py, &self.root_path))?;
        if let Some(server) = &self.server {
            d.set_item(intern!(py, "server"), address(py, server, self.unix)?)?;
        }
        Ok(d)
    }
}

/// What a worker keeps from one scope to the next, on its Python thread
/// (so behind no lock).
#[derive(Default)]
pub(crate) struct Kept {
    /// The scope prototypes made, with their shapes, the latest last. A
    /// worker's requests share one shape per listener and protocol (HTTP/1.1
    /// and HTTP/2 on one port are two), so each request's scope starts as a
    /// copy of one of these dicts: the key table comes at once, and the
    /// shared fields with it (their values are immutable: strings and a
    /// tuple).
    prototypes: Vec<(Shape, Py<PyDict>)>,
    /// The `tls` dicts of connections without a client certificate, by
    /// shape, the latest last.
    tls_shapes: Vec<(TlsShape, Py<PyDict>)>,
    /// The last server certificate's text and string.
    server_cert: Option<(Arc<str>, Py<PyString>)>,
}

/// Shapes kept; past this the oldest is dropped.
const PROTOTYPES_KEPT: usize = 4;

fn prototype<'py>(
    py: Python<'py>,
    prototypes: &mut Vec<(Shape, Py<PyDict>)>,
    scope: &HttpScope,
    unix: bool,
) -> PyResult<Bound<'py, PyDict>> {
    kept_dict(
        py,
        prototypes,
        |shape| shape.matches(scope, unix),
        || {
            let shape = Shape::of(scope, unix);
            let proto = shape.prototype(py)?;
            Ok((shape, proto))
        },
    )
}

/// The dict kept in `kept` for the shape that `matches`, made by `make`
/// (and kept, the oldest dropped past [`PROTOTYPES_KEPT`]) when there is
/// none. Callers copy it: the kept dict is shared.
fn kept_dict<'py, S>(
    py: Python<'py>,
    kept: &mut Vec<(S, Py<PyDict>)>,
    matches: impl Fn(&S) -> bool,
    make: impl FnOnce() -> PyResult<(S, Bound<'py, PyDict>)>,
) -> PyResult<Bound<'py, PyDict>> {
    if let Some((_, d)) = kept.iter().rev().find(|(shape, _)| matches(shape)) {
        return Ok(d.bind(py).clone());
    }
    let (shape, d) = make()?;
    if kept.len() == PROTOTYPES_KEPT {
        kept.remove(0);
    }
    kept.push((shape, d.clone().unbind()));
    Ok(d)
}

/// Builds the HTTP scope dict. `state` is the lifespan state; each request
/// gets a shallow copy of it (ASGI lifespan spec, "state"). `ext` are the
/// response extensions this stream supports.
pub(crate) fn http_scope<'py>(
    py: Python<'py>,
    kept: &mut Kept,
    scope: &HttpScope,
    unix: bool,
    state: Option<&Bound<'py, PyDict>>,
    ext: Extensions,
    tls: Option<&TlsInfo>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = prototype(py, &mut kept.prototypes, scope, unix)?.copy()?;
    let asgi = HTTP_ASGI
        .get_or_init(py, || {
            let asgi = PyDict::new(py);
            let _ = asgi.set_item(intern!(py, "version"), intern!(py, ASGI_VERSION));
            let _ = asgi.set_item(intern!(py, "spec_version"), intern!(py, HTTP_SPEC_VERSION));
            asgi.unbind()
        })
        .bind(py)
        .copy()?;
    d.set_item(intern!(py, "asgi"), asgi)?;
    let method = match scope.method.as_str() {
        "GET" => intern!(py, "GET").clone(),
        "POST" => intern!(py, "POST").clone(),
        "HEAD" => intern!(py, "HEAD").clone(),
        m => PyString::new(py, m),
    };
    d.set_item(intern!(py, "method"), method)?;
    d.set_item(intern!(py, "path"), PyString::new(py, &scope.path))?;
    d.set_item(intern!(py, "raw_path"), PyBytes::new(py, &scope.raw_path))?;
    d.set_item(
        intern!(py, "query_string"),
        PyBytes::new(py, &scope.query_string),
    )?;
    // Straight into the list: a pair of objects converts without failing,
    // so no vector is gathered first.
    let headers = PyList::new(
        py,
        scope
            .headers
            .iter()
            .map(|(name, value)| (header_name(py, name), PyBytes::new(py, value))),
    )?;
    d.set_item(intern!(py, "headers"), headers)?;
    // On a Unix socket only a trusted proxy's header names a client; with
    // none, the prototype's None stands.
    if let Some(c) = &scope.client {
        d.set_item(intern!(py, "client"), address(py, c, false)?)?;
    }
    if let Some(state) = state {
        d.set_item(intern!(py, "state"), state.copy()?)?;
    }
    let extensions = PyDict::new(py);
    if ext.trailers {
        extensions.set_item(intern!(py, "http.response.trailers"), PyDict::new(py))?;
    }
    if ext.early_hint {
        extensions.set_item(intern!(py, "http.response.early_hint"), PyDict::new(py))?;
    }
    if ext.pathsend {
        extensions.set_item(intern!(py, "http.response.pathsend"), PyDict::new(py))?;
    }
    if let Some(tls) = tls {
        extensions.set_item(intern!(py, "tls"), tls_extension(py, kept, tls)?)?;
    }
    d.set_item(intern!(py, "extensions"), extensions)?;
    Ok(d)
}
