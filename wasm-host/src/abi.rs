//! The wasm32 layout of the C API's structs (c-api/include/cormorant.h):
//! pointers and `size_t` are 4 bytes there, so the host reads and writes
//! them by hand. This is the only place that knows the offsets; the guest
//! reports its own through `cormorant_wasm_layout` and a test compares.

use wasmtime::error::Context;
use wasmtime::{Result, bail};

use crate::capi::Event;

/// `sizeof(cormorant_str)`: pointer, length.
const STR_SIZE: u32 = 8;
/// `sizeof(cormorant_header)`: name, value.
pub(crate) const HEADER_SIZE: u32 = 16;
/// `sizeof(cormorant_event)`.
pub(crate) const EVENT_SIZE: u32 = 48;

// Offsets of the `cormorant_event` fields.
const KIND: usize = 0;
const METHOD: usize = 4;
const TARGET: usize = 12;
const VERSION_MINOR: usize = 20;
const HEADERS: usize = 24;
const HEADERS_LEN: usize = 28;
const HAS_BODY: usize = 32;
const KEEP_ALIVE: usize = 33;
const WEBSOCKET_UPGRADE: usize = 34;
const DATA: usize = 36;
const IS_TEXT: usize = 44;
const CODE: usize = 46;

/// What `cormorant_wasm_layout` must report for this module to be right:
/// the three struct sizes, then the event field offsets in order.
pub const EXPECTED_LAYOUT: [u32; 15] = [
    STR_SIZE,
    HEADER_SIZE,
    EVENT_SIZE,
    KIND as u32,
    METHOD as u32,
    TARGET as u32,
    VERSION_MINOR as u32,
    HEADERS as u32,
    HEADERS_LEN as u32,
    HAS_BODY as u32,
    KEEP_ALIVE as u32,
    WEBSOCKET_UPGRADE as u32,
    DATA as u32,
    IS_TEXT as u32,
    CODE as u32,
];

/// Reads a little-endian `u32` at `at` in `mem`.
pub(crate) fn read_u32(mem: &[u8], at: usize) -> Result<u32> {
    let b = mem.get(at..at + 4).context("guest pointer out of bounds")?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The bytes `len` long at guest address `ptr`.
pub(crate) fn read_bytes(mem: &[u8], ptr: u32, len: u32) -> Result<Vec<u8>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let (ptr, len) = (ptr as usize, len as usize);
    match mem.get(ptr..ptr.saturating_add(len)) {
        Some(b) => Ok(b.to_vec()),
        None => bail!("guest view {ptr:#x}+{len} out of bounds"),
    }
}

/// The bytes a `cormorant_str` at `at` points to.
fn read_str(mem: &[u8], at: usize) -> Result<Vec<u8>> {
    read_bytes(mem, read_u32(mem, at)?, read_u32(mem, at + 4)?)
}

/// Copies the `cormorant_event` at guest address `at` and everything its
/// views point to.
pub(crate) fn read_event(mem: &[u8], at: u32) -> Result<Event> {
    let at = at as usize;
    let ev = mem
        .get(at..at + EVENT_SIZE as usize)
        .context("event out of bounds")?;
    let flag = |off: usize| ev[off] != 0;
    let headers_at = read_u32(mem, at + HEADERS)?;
    let headers_len = read_u32(mem, at + HEADERS_LEN)?;
    let mut headers = Vec::with_capacity(headers_len.min(1024) as usize);
    for i in 0..headers_len {
        let h = (headers_at + i * HEADER_SIZE) as usize;
        headers.push((read_str(mem, h)?, read_str(mem, h + STR_SIZE as usize)?));
    }
    Ok(Event {
        kind: read_u32(mem, at + KIND)?,
        method: read_str(mem, at + METHOD)?,
        target: read_str(mem, at + TARGET)?,
        version_minor: ev[VERSION_MINOR],
        headers,
        has_body: flag(HAS_BODY),
        keep_alive: flag(KEEP_ALIVE),
        websocket_upgrade: flag(WEBSOCKET_UPGRADE),
        data: read_str(mem, at + DATA)?,
        is_text: flag(IS_TEXT),
        code: u16::from_le_bytes([ev[CODE], ev[CODE + 1]]),
    })
}

/// Lays out a `cormorant_header` array followed by the bytes it points to,
/// for a guest buffer that will start at address `base`.
pub(crate) fn write_headers(base: u32, headers: &[(&[u8], &[u8])]) -> Vec<u8> {
    let table = headers.len() * HEADER_SIZE as usize;
    let mut out = vec![0; table];
    for (i, (name, value)) in headers.iter().enumerate() {
        for (j, bytes) in [name, value].into_iter().enumerate() {
            let ptr = base as usize + out.len();
            out.extend_from_slice(bytes);
            let slot = i * HEADER_SIZE as usize + j * STR_SIZE as usize;
            // Guest addresses and lengths fit in u32: the buffer is in a
            // 32-bit memory.
            out[slot..slot + 4].copy_from_slice(&(ptr as u32).to_le_bytes());
            out[slot + 4..slot + 8].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_through_the_layout() {
        let base = 0x100;
        let buf = write_headers(base, &[(b"a", b"bc"), (b"", b"xyz")]);
        let mut mem = vec![0u8; base as usize];
        mem.extend_from_slice(&buf);
        let read = |h: usize, f: usize| {
            read_str(
                &mem,
                base as usize + h * HEADER_SIZE as usize + f * STR_SIZE as usize,
            )
        };
        assert_eq!(read(0, 0).unwrap(), b"a");
        assert_eq!(read(0, 1).unwrap(), b"bc");
        assert_eq!(read(1, 0).unwrap(), b"");
        assert_eq!(read(1, 1).unwrap(), b"xyz");
    }

    #[test]
    fn views_out_of_bounds_are_errors() {
        let mem = vec![0u8; 64];
        assert!(read_bytes(&mem, 60, 8).is_err());
        assert!(read_event(&mem, 32).is_err());
        assert!(read_bytes(&mem, u32::MAX, 2).is_err());
    }
}
