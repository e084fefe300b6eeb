//! Running a call on an opaque handle: NULL checks, catching panics (a
//! panic poisons the handle), borrowed input bytes, and out-parameters.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::slice;
use crate::types::cormorant_result;

/// An opaque handle: the state calls work on, and the flag a caught panic
/// sets to make the handle unusable.
pub(crate) trait Handle {
    type State;
    fn parts(&mut self) -> (&mut Self::State, &mut bool);
}

/// Runs `f` on the handle behind `ptr`, catching panics.
///
/// # Safety
/// `ptr` is NULL or a live handle not used concurrently.
pub(crate) unsafe fn with_handle<T: Handle>(
    ptr: *mut T,
    f: impl FnOnce(&mut T::State) -> cormorant_result,
) -> cormorant_result {
    // SAFETY: NULL or live and unaliased by contract.
    let Some(h) = (unsafe { ptr.as_mut() }) else {
        return cormorant_result::NullArgument;
    };
    let (state, poisoned) = h.parts();
    if *poisoned {
        return cormorant_result::Panic;
    }
    match catch_unwind(AssertUnwindSafe(|| f(state))) {
        Ok(r) => r,
        Err(_) => {
            *poisoned = true;
            cormorant_result::Panic
        }
    }
}

/// [`with_handle`] for calls that also take `len` bytes at `data` (NULL
/// allowed only when `len` is 0).
///
/// # Safety
/// As for [`with_handle`]; `data` points to `len` readable bytes.
pub(crate) unsafe fn with_handle_bytes<T: Handle>(
    ptr: *mut T,
    data: *const u8,
    len: usize,
    f: impl FnOnce(&mut T::State, &[u8]) -> cormorant_result,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    let Some(bytes) = (unsafe { slice(data, len) }) else {
        return cormorant_result::NullArgument;
    };
    // SAFETY: forwarded caller contract.
    unsafe { with_handle(ptr, |h| f(h, bytes)) }
}

/// [`with_handle`] for calls that answer through `*out`: `f`'s value is
/// written there on success.
///
/// # Safety
/// As for [`with_handle`]; `out` is NULL or writable.
pub(crate) unsafe fn with_handle_out<T: Handle, V>(
    ptr: *mut T,
    out: *mut V,
    f: impl FnOnce(&mut T::State) -> Result<V, cormorant_result>,
) -> cormorant_result {
    if out.is_null() {
        return cormorant_result::NullArgument;
    }
    let g = |h: &mut T::State| match f(h) {
        Ok(v) => {
            // SAFETY: non-NULL and writable by contract.
            unsafe { out.write(v) };
            cormorant_result::Ok
        }
        Err(e) => e,
    };
    // SAFETY: forwarded caller contract.
    unsafe { with_handle(ptr, g) }
}
