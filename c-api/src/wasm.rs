//! Helpers for the wasmtime host (`wasm-host/`), compiled only into the
//! WebAssembly build of this library.
//!
//! A host outside the module cannot reach the guest's allocator, yet every
//! `cormorant_conn_*` call takes pointers into guest memory: these exports
//! hand out and take back such buffers, and report the wasm32 layout of the
//! C structs so the host can check its own copy of it. They are not part
//! of the C API: each carries `cbindgen:ignore` to stay out of the header.
#![cfg(target_family = "wasm")]

use std::alloc::{Layout, alloc, dealloc};
use std::mem::{offset_of, size_of};

use crate::types::{cormorant_event, cormorant_header, cormorant_str};

/// Alignment of every buffer handed to the host: enough for any C struct
/// of the API.
const ALIGN: usize = 8;

fn layout(len: usize) -> Option<Layout> {
    // A zero-sized allocation is undefined behaviour: round up to one byte.
    Layout::from_size_align(len.max(1), ALIGN).ok()
}

/// Allocates `len` bytes of guest memory for the host; NULL on failure.
/// Release with `cormorant_wasm_free(ptr, len)`.
/// cbindgen:ignore
#[unsafe(no_mangle)]
extern "C" fn cormorant_wasm_alloc(len: usize) -> *mut u8 {
    match layout(len) {
        // SAFETY: the layout has a non-zero size.
        Some(l) => unsafe { alloc(l) },
        None => std::ptr::null_mut(),
    }
}

/// Releases a buffer from `cormorant_wasm_alloc`. NULL is ignored.
///
/// # Safety
/// `ptr` is NULL or came from `cormorant_wasm_alloc(len)` with this `len`,
/// and is freed once.
/// cbindgen:ignore
#[unsafe(no_mangle)]
unsafe extern "C" fn cormorant_wasm_free(ptr: *mut u8, len: usize) {
    if let (false, Some(l)) = (ptr.is_null(), layout(len)) {
        // SAFETY: by contract `ptr` was allocated with this same layout.
        unsafe { dealloc(ptr, l) };
    }
}

/// The layout of the C structs in this build, as the host expects it:
/// sizes of `cormorant_str`, `cormorant_header` and `cormorant_event`,
/// then the offset of each `cormorant_event` field in declaration order.
/// Writes at most `n` values to `out` and returns how many there are.
///
/// # Safety
/// `out` points to `n` writable `u32`s (NULL allowed when `n` is 0).
/// cbindgen:ignore
#[unsafe(no_mangle)]
unsafe extern "C" fn cormorant_wasm_layout(out: *mut u32, n: usize) -> usize {
    let values = [
        size_of::<cormorant_str>(),
        size_of::<cormorant_header>(),
        size_of::<cormorant_event>(),
        offset_of!(cormorant_event, kind),
        offset_of!(cormorant_event, method),
        offset_of!(cormorant_event, target),
        offset_of!(cormorant_event, version_minor),
        offset_of!(cormorant_event, headers),
        offset_of!(cormorant_event, headers_len),
        offset_of!(cormorant_event, has_body),
        offset_of!(cormorant_event, keep_alive),
        offset_of!(cormorant_event, websocket_upgrade),
        offset_of!(cormorant_event, data),
        offset_of!(cormorant_event, is_text),
        offset_of!(cormorant_event, code),
    ];
    for (i, v) in values.iter().take(n).enumerate() {
        // SAFETY: `i < n`, and by contract `out` has `n` writable slots.
        // The values are struct sizes, far below `u32::MAX`.
        unsafe { out.add(i).write(*v as u32) };
    }
    values.len()
}
