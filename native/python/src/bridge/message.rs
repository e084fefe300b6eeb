//! The application's `send()` messages, read from Python: a
//! [`FieldReader`] over a dict (or any mapping) for core's decoder, which
//! decides every rule. This side only converts Python values.

use bytes::Bytes;
use cormorant_core::asgi::message::{
    FieldReader, HEADER_NAME, HEADER_VALUE, Key, Kind, LINK, MessageError, NOT_A_PAIR,
};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString, PyTuple};

/// Bodies at least this large are shared with Python instead of copied:
/// below it a memcpy is cheaper than keeping the object alive.
const ZERO_COPY_MIN: usize = 4 * 1024;

/// A `bytes`, `bytearray` or other buffer of bytes (not a `str`) as
/// [`Bytes`]; large `bytes` objects are shared, not copied.
pub(crate) fn bytes_like(v: &Bound<'_, PyAny>) -> Option<Bytes> {
    if let Ok(b) = v.cast::<PyBytes>() {
        let data = b.as_bytes();
        if data.len() < ZERO_COPY_MIN {
            return Some(Bytes::copy_from_slice(data));
        }
        return Some(Bytes::from_owner(crate::sys::SharedPyBytes::new(b)));
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        return Some(Bytes::from(b.to_vec()));
    }
    if v.is_instance_of::<PyString>() {
        return None;
    }
    v.extract::<Vec<u8>>().ok().map(Bytes::from)
}

/// One message from `send()`, its fields found in one pass over the dict.
pub(crate) struct PyMessage<'py> {
    /// Each known field that is present and not None, at its key's index.
    fields: [Option<Bound<'py, PyAny>>; Key::ALL.len()],
}

/// The interned name of every key, at the key's index.
static KEY_NAMES: PyOnceLock<[Py<PyString>; Key::ALL.len()]> = PyOnceLock::new();

impl<'py> PyMessage<'py> {
    /// A dict as it is; another mapping through its `items()`.
    pub(crate) fn new(message: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = message.py();
        let dict = match message.cast::<PyDict>() {
            Ok(d) => d.clone(),
            Err(_) => {
                let items = message.call_method0(intern!(py, "items")).map_err(|_| {
                    PyTypeError::new_err(format!(
                        "an ASGI message must be a dict, got {}",
                        type_name(message)
                    ))
                })?;
                PyDict::from_sequence(&items)?
            }
        };
        let names = KEY_NAMES.get_or_init(py, || {
            Key::ALL.map(|k| PyString::intern(py, k.name()).unbind())
        });
        let mut fields = [const { None }; Key::ALL.len()];
        // One walk over a message of a few items, its keys matched by
        // identity first (string literals in the app are interned), costs
        // less than a hashed lookup per field, absent fields included.
        for (key, value) in dict.iter() {
            if value.is_none() {
                continue;
            }
            let slot = names
                .iter()
                .position(|n| n.as_ptr() == key.as_ptr())
                .or_else(|| {
                    let key = key.cast::<PyString>().ok()?;
                    let key = key.to_str().ok()?;
                    Key::ALL.iter().position(|k| k.name() == key)
                });
            if let Some(i) = slot {
                fields[i] = Some(value);
            }
        }
        Ok(Self { fields })
    }

    /// The field, or None when absent or None.
    fn get(&self, key: Key) -> Result<Option<Bound<'py, PyAny>>, MessageError> {
        Ok(self.fields[key.index()].clone())
    }
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map_or_else(|_| "object".to_owned(), |n| n.to_string())
}

/// What error text names: a field (`'body'`) or an element of one. Its
/// text is made only for an error, not on every `send()`.
#[derive(Clone, Copy)]
enum What {
    Field(Key),
    Element(&'static str),
}

impl What {
    fn text(self) -> String {
        match self {
            Self::Field(key) => key.quoted(),
            Self::Element(name) => name.to_owned(),
        }
    }
}

fn to_bytes(v: &Bound<'_, PyAny>, what: What) -> Result<Bytes, MessageError> {
    bytes_like(v).ok_or_else(|| MessageError::must_be(&what.text(), "bytes", &type_name(v)))
}

fn to_str(v: &Bound<'_, PyAny>, what: What) -> Result<String, MessageError> {
    match v.cast::<PyString>() {
        Ok(s) => s
            .to_str()
            .map(str::to_owned)
            .map_err(|e| MessageError::Value(e.to_string())),
        Err(_) => Err(MessageError::must_be(&what.text(), "a str", &type_name(v))),
    }
}

/// Calls `f` on each item of a list, a tuple or any other iterable. Lists
/// and tuples, what apps send, are walked by index: no iterator object and
/// no collected copy.
fn for_each<'py>(
    v: &Bound<'py, PyAny>,
    what: What,
    mut f: impl FnMut(&Bound<'py, PyAny>) -> Result<(), MessageError>,
) -> Result<(), MessageError> {
    if let Ok(list) = v.cast::<PyList>() {
        return list.iter().try_for_each(|item| f(&item));
    }
    if let Ok(tuple) = v.cast::<PyTuple>() {
        return tuple.iter_borrowed().try_for_each(|item| f(&item));
    }
    let items = v
        .try_iter()
        .map_err(|_| MessageError::must_be(&what.text(), "a list", &type_name(v)))?;
    for item in items {
        f(&item.map_err(|e| MessageError::Value(e.to_string()))?)?;
    }
    Ok(())
}

/// A header: a two-item tuple or list, or another iterable of two.
fn pair(item: &Bound<'_, PyAny>) -> Result<(Bytes, Bytes), MessageError> {
    let both = |name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>| {
        Ok((
            to_bytes(name, What::Element(HEADER_NAME))?,
            to_bytes(value, What::Element(HEADER_VALUE))?,
        ))
    };
    let not_a_pair = || MessageError::Type(NOT_A_PAIR.into());
    if let Ok(t) = item.cast::<PyTuple>() {
        if t.len() != 2 {
            return Err(not_a_pair());
        }
        let name = t.get_borrowed_item(0).map_err(|_| not_a_pair())?;
        let value = t.get_borrowed_item(1).map_err(|_| not_a_pair())?;
        return both(&name, &value);
    }
    if item.is_instance_of::<PyString>() || item.is_instance_of::<PyBytes>() {
        return Err(not_a_pair());
    }
    let mut two = Vec::with_capacity(2);
    for_each(item, What::Element(HEADER_NAME), |x| {
        two.push(x.clone());
        Ok(())
    })
    .map_err(|_| not_a_pair())?;
    match two.as_slice() {
        [name, value] => both(name, value),
        _ => Err(not_a_pair()),
    }
}

impl FieldReader for PyMessage<'_> {
    fn kind(&self) -> Result<Option<Kind>, MessageError> {
        let Some(ty) = self.get(Key::Type)? else {
            return Ok(None);
        };
        let ty = ty
            .cast::<PyString>()
            .map_err(|_| MessageError::must_be("'type'", "a str", &type_name(&ty)))?;
        let ty = ty
            .to_str()
            .map_err(|e| MessageError::Value(e.to_string()))?;
        Ok(Some(Kind::parse(ty)))
    }

    fn text(&self, key: Key) -> Result<Option<String>, MessageError> {
        self.get(key)?
            .map(|v| to_str(&v, What::Field(key)))
            .transpose()
    }

    fn bytes(&self, key: Key) -> Result<Option<Bytes>, MessageError> {
        self.get(key)?
            .map(|v| to_bytes(&v, What::Field(key)))
            .transpose()
    }

    fn int(&self, key: Key) -> Result<Option<i64>, MessageError> {
        self.get(key)?
            .map(|v| {
                v.extract::<i64>()
                    .map_err(|_| MessageError::must_be(&key.quoted(), "an int", &type_name(&v)))
            })
            .transpose()
    }

    fn flag(&self, key: Key) -> Result<bool, MessageError> {
        match self.get(key)? {
            Some(v) => v
                .is_truthy()
                .map_err(|e| MessageError::Value(e.to_string())),
            None => Ok(false),
        }
    }

    fn pairs(&self, key: Key) -> Result<Vec<(Bytes, Bytes)>, MessageError> {
        let Some(v) = self.get(key)? else {
            return Ok(Vec::new());
        };
        // One more: the server may add a `content-length` to a response's.
        let mut out = Vec::with_capacity(v.len().unwrap_or(0) + 1);
        for_each(&v, What::Field(key), |item| {
            out.push(pair(item)?);
            Ok(())
        })?;
        Ok(out)
    }

    fn byte_list(&self, key: Key) -> Result<Vec<Bytes>, MessageError> {
        let Some(v) = self.get(key)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for_each(&v, What::Field(key), |l| {
            out.push(to_bytes(l, What::Element(LINK))?);
            Ok(())
        })?;
        Ok(out)
    }

    fn path(&self, key: Key) -> Result<Option<String>, MessageError> {
        let Some(v) = self.get(key)? else {
            return Ok(None);
        };
        let py = v.py();
        py.import(intern!(py, "os"))
            .and_then(|os| os.call_method1(intern!(py, "fsdecode"), (&v,)))
            .and_then(|p| p.extract::<String>())
            .map(Some)
            .map_err(|_| {
                MessageError::must_be(&key.quoted(), "a str or os.PathLike", &type_name(&v))
            })
    }
}

/// The Python exception for a refused message.
pub(crate) fn to_py_err(e: MessageError) -> PyErr {
    match e {
        MessageError::Type(t) => PyTypeError::new_err(t),
        MessageError::Value(t) => PyValueError::new_err(t),
        MessageError::Unexpected(t) => PyRuntimeError::new_err(t),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}
