//! The native side of the comparison: the C API's extern functions called
//! directly through the `cormorant` rlib, exactly as a C program would.

use std::ptr;

use cormorant::{cormorant_conn, cormorant_event, cormorant_header, cormorant_str};
use cormorant_wasm_host::capi::{CConn, Event};
use wasmtime::{Result, bail};

/// A `cormorant_conn *` owned by the test.
pub(crate) struct NativeConn(*mut cormorant_conn);

impl NativeConn {
    pub(crate) fn new() -> Self {
        let mut conn = ptr::null_mut();
        // SAFETY: NULL config means the defaults; `conn` is writable.
        let r = unsafe { cormorant::cormorant_conn_new(ptr::null(), 0, &mut conn) };
        assert_eq!(r as u32, 0, "cormorant_conn_new");
        Self(conn)
    }
}

impl Drop for NativeConn {
    fn drop(&mut self) {
        // SAFETY: the handle came from `cormorant_conn_new` and is freed once.
        unsafe { cormorant::cormorant_conn_free(self.0) }
    }
}

/// The bytes behind a view the library handed out.
///
/// # Safety
/// `s` came from the library and no call was made on its handle since.
unsafe fn bytes(s: cormorant_str) -> Vec<u8> {
    if s.len == 0 {
        return Vec::new();
    }
    // SAFETY: by the caller's contract the view is live.
    unsafe { std::slice::from_raw_parts(s.ptr, s.len) }.to_vec()
}

fn view(b: &[u8]) -> cormorant_str {
    cormorant_str {
        ptr: b.as_ptr(),
        len: b.len(),
    }
}

// SAFETY (for every block below): `self.0` is a live handle used by this
// thread only, and every pointer passed points to live, readable memory of
// the stated length for the duration of the call.
impl CConn for NativeConn {
    fn feed(&mut self, data: &[u8]) -> Result<u32> {
        // SAFETY: see the impl.
        Ok(unsafe { cormorant::cormorant_conn_feed(self.0, data.as_ptr(), data.len()) } as u32)
    }

    fn feed_eof(&mut self) -> Result<u32> {
        // SAFETY: see the impl.
        Ok(unsafe { cormorant::cormorant_conn_feed_eof(self.0) } as u32)
    }

    fn poll(&mut self) -> Result<(u32, Event)> {
        let mut ev = std::mem::MaybeUninit::<cormorant_event>::zeroed();
        // SAFETY: see the impl; `ev` is writable.
        let r = unsafe { cormorant::cormorant_conn_poll(self.0, ev.as_mut_ptr()) } as u32;
        if r != 0 {
            return Ok((r, Event::default()));
        }
        // SAFETY: poll returned OK, so it wrote the whole event.
        let ev = unsafe { ev.assume_init() };
        let headers = if ev.headers_len == 0 {
            &[][..]
        } else {
            // SAFETY: the library's view of `headers_len` headers.
            unsafe { std::slice::from_raw_parts(ev.headers, ev.headers_len) }
        };
        // SAFETY: every view is from this poll, with no call since.
        Ok((r, unsafe {
            Event {
                kind: ev.kind as u32,
                method: bytes(ev.method),
                target: bytes(ev.target),
                version_minor: ev.version_minor,
                headers: headers
                    .iter()
                    .map(|h| (bytes(h.name), bytes(h.value)))
                    .collect(),
                has_body: ev.has_body,
                keep_alive: ev.keep_alive,
                websocket_upgrade: ev.websocket_upgrade,
                data: bytes(ev.data),
                is_text: ev.is_text,
                code: ev.code,
            }
        }))
    }

    fn respond(&mut self, status: u16, headers: &[(&[u8], &[u8])]) -> Result<u32> {
        let h: Vec<cormorant_header> = headers
            .iter()
            .map(|(n, v)| cormorant_header {
                name: view(n),
                value: view(v),
            })
            .collect();
        // SAFETY: see the impl.
        Ok(
            unsafe { cormorant::cormorant_conn_respond(self.0, status, h.as_ptr(), h.len()) }
                as u32,
        )
    }

    fn send_body(&mut self, data: &[u8]) -> Result<u32> {
        // SAFETY: see the impl.
        Ok(
            unsafe { cormorant::cormorant_conn_send_body(self.0, data.as_ptr(), data.len()) }
                as u32,
        )
    }

    fn end(&mut self) -> Result<u32> {
        // SAFETY: see the impl.
        Ok(unsafe { cormorant::cormorant_conn_end(self.0) } as u32)
    }

    fn next(&mut self) -> Result<u32> {
        // SAFETY: see the impl.
        Ok(unsafe { cormorant::cormorant_conn_next(self.0) } as u32)
    }

    fn ws_accept(&mut self, subprotocol: Option<&str>) -> Result<u32> {
        let c = subprotocol.map(|s| std::ffi::CString::new(s).expect("no NUL"));
        let p = c.as_ref().map_or(ptr::null(), |c| c.as_ptr());
        // SAFETY: see the impl; `p` is NULL or NUL-terminated.
        Ok(unsafe { cormorant::cormorant_conn_ws_accept(self.0, p) } as u32)
    }

    fn ws_deny(&mut self, status: u16) -> Result<u32> {
        // SAFETY: see the impl.
        Ok(unsafe { cormorant::cormorant_conn_ws_deny(self.0, status) } as u32)
    }

    fn ws_send(&mut self, is_text: bool, data: &[u8]) -> Result<u32> {
        // SAFETY: see the impl.
        let r = unsafe {
            cormorant::cormorant_conn_ws_send(self.0, is_text, data.as_ptr(), data.len())
        };
        Ok(r as u32)
    }

    fn ws_close(&mut self, code: u16, reason: &[u8]) -> Result<u32> {
        // SAFETY: see the impl.
        let r = unsafe {
            cormorant::cormorant_conn_ws_close(self.0, code, reason.as_ptr(), reason.len())
        };
        Ok(r as u32)
    }

    fn take_output(&mut self) -> Result<Vec<u8>> {
        let (mut data, mut len) = (ptr::null(), 0usize);
        // SAFETY: see the impl; both out-parameters are writable.
        let r =
            unsafe { cormorant::cormorant_conn_take_output(self.0, &mut data, &mut len) } as u32;
        if r != 0 {
            bail!("cormorant_conn_take_output returned {r}");
        }
        // SAFETY: the view was just handed out.
        let out = unsafe { bytes(cormorant_str { ptr: data, len }) };
        // SAFETY: see the impl.
        let r = unsafe { cormorant::cormorant_conn_consume(self.0, len) } as u32;
        if r != 0 {
            bail!("cormorant_conn_consume returned {r}");
        }
        Ok(out)
    }

    fn wants_close(&mut self) -> Result<bool> {
        // SAFETY: see the impl.
        Ok(unsafe { cormorant::cormorant_conn_wants_close(self.0) })
    }

    fn ws_reject(&mut self) -> Result<u32> {
        // SAFETY: see the impl.
        Ok(unsafe { cormorant::cormorant_conn_ws_reject(self.0) } as u32)
    }

    fn set_time(&mut self, now_ns: u64) -> Result<u32> {
        // SAFETY: see the impl.
        Ok(unsafe { cormorant::cormorant_conn_set_time(self.0, now_ns) } as u32)
    }

    fn timeout(&mut self) -> Result<(u32, u64)> {
        let mut deadline = 0;
        // SAFETY: see the impl; `deadline` is writable.
        let r = unsafe { cormorant::cormorant_conn_timeout(self.0, &mut deadline) };
        Ok((r as u32, deadline))
    }

    fn handle_timeout(&mut self, now_ns: u64) -> Result<u32> {
        // SAFETY: see the impl.
        Ok(unsafe { cormorant::cormorant_conn_handle_timeout(self.0, now_ns) } as u32)
    }
}
