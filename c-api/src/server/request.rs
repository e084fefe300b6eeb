//! `cormorant_request`: one HTTP request of the server layer and its
//! response.

use ::cormorant_server::embed;
use bytes::Bytes;

use super::{InfoViews, cormorant_request_info, stream_error, stream_result};
use crate::copy_headers;
use crate::handle::{Handle, with_handle, with_handle_bytes, with_handle_out};
use crate::types::{cormorant_header, cormorant_result};

/// An HTTP request (HTTP/1.1 or HTTP/2) and its response. Opaque.
pub struct cormorant_request {
    state: RequestState,
    poisoned: bool,
}

/// What calls on a `cormorant_request` work on.
pub(crate) struct RequestState {
    request: embed::Request,
    views: InfoViews,
}

impl cormorant_request {
    pub(crate) fn new(request: embed::Request) -> Self {
        let views = InfoViews::new(request.scope());
        Self {
            state: RequestState { request, views },
            poisoned: false,
        }
    }
}

impl Handle for cormorant_request {
    type State = RequestState;
    fn parts(&mut self) -> (&mut RequestState, &mut bool) {
        (&mut self.state, &mut self.poisoned)
    }
}

/// Fills `*out` with the request's method, path, query, headers... Views
/// are valid until `cormorant_request_free`.
///
/// # Safety
/// `request` is NULL or a live handle not used concurrently; `out` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_request_get_info(
    request: *mut cormorant_request,
    out: *mut cormorant_request_info,
) -> cormorant_result {
    let f = |r: &mut RequestState| {
        let scope = r.request.scope();
        Ok(r.views.info(scope, &scope.method))
    };
    // SAFETY: forwarded caller contract.
    unsafe { with_handle_out(request, out, f) }
}

/// Reads up to `cap` body bytes into `buf`, blocking the calling thread
/// until some arrive; `*n` is 0 at the end of the body. DISCONNECTED if the
/// client went away.
///
/// # Safety
/// `request` is NULL or a live handle not used concurrently; `buf` has `cap`
/// writable bytes; `n` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_request_read(
    request: *mut cormorant_request,
    buf: *mut u8,
    cap: usize,
    n: *mut usize,
) -> cormorant_result {
    if buf.is_null() && cap > 0 {
        return cormorant_result::NullArgument;
    }
    let f = |r: &mut RequestState| {
        let dst: &mut [u8] = if cap == 0 {
            &mut []
        } else {
            // SAFETY: non-NULL with `cap` writable bytes by contract.
            unsafe { std::slice::from_raw_parts_mut(buf, cap) }
        };
        r.request.read(dst).map_err(stream_error)
    };
    // SAFETY: forwarded caller contract.
    unsafe { with_handle_out(request, n, f) }
}

/// Starts the response with `status` and `n` header fields (copied; NULL
/// allowed when `n` is 0). With `content-length` the body has that length;
/// without it HTTP/1.1 uses chunked framing. INVALID_STATE if a response
/// was already started.
///
/// # Safety
/// `request` is NULL or a live handle not used concurrently; `headers`
/// points to `n` headers whose views point to readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_request_respond(
    request: *mut cormorant_request,
    status: u16,
    headers: *const cormorant_header,
    n: usize,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    let Some(fields) = (unsafe { copy_headers(headers, n) }) else {
        return cormorant_result::NullArgument;
    };
    // SAFETY: forwarded caller contract.
    unsafe {
        with_handle(request, |r| {
            stream_result(r.request.respond(status, fields))
        })
    }
}

/// Sends `len` body bytes (copied; NULL allowed when `len` is 0); `more`
/// false ends the response. Blocks the calling thread while more than
/// 256 KiB wait to be written. INVALID_STATE before
/// `cormorant_request_respond` or after the end.
///
/// # Safety
/// `request` is NULL or a live handle not used concurrently; `data` points
/// to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_request_write(
    request: *mut cormorant_request,
    data: *const u8,
    len: usize,
    more: bool,
) -> cormorant_result {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_handle_bytes(request, data, len, |r, body| {
            stream_result(r.request.write(Bytes::copy_from_slice(body), more))
        })
    }
}

/// Releases the request. A response not started becomes `500`; one not
/// finished is cut short (the connection closes, or the HTTP/2 stream is
/// reset).
///
/// # Safety
/// `request` is NULL or a live handle, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cormorant_request_free(request: *mut cormorant_request) {
    if !request.is_null() {
        // SAFETY: live and owned by contract; released exactly once here.
        let handle = unsafe { Box::from_raw(request) };
        // The drop finishes the response or closes the WebSocket.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(handle)));
    }
}
