//! Write coalescing under hyper's HTTP/2 connection.
//!
//! The h2 codec hands a large DATA payload to the transport as its own
//! buffer and must write it out before it can encode the next frame, so
//! ten 10 KB responses ready at once cost ten `writev` calls. Copying them
//! into one buffer instead, written out on flush, turns that into one
//! system call for the whole batch; the copy costs far less than the calls.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes gathered before they are written out without waiting for a flush.
const WRITE_BUFFER: usize = 256 * 1024;

/// A stream whose writes are gathered until flushed (or the buffer fills).
pub(super) struct Coalesce<S> {
    io: S,
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    pos: usize,
    /// Bytes read and written so far: whether the connection still moves.
    moved: Arc<AtomicU64>,
}

impl<S> Coalesce<S> {
    pub(super) fn new(io: S) -> Self {
        Self {
            io,
            buf: Vec::new(),
            pos: 0,
            moved: Arc::default(),
        }
    }

    /// The count of bytes read and written, shared with the caller.
    pub(super) fn moved(&self) -> Arc<AtomicU64> {
        self.moved.clone()
    }

    fn note(&self, n: usize) {
        self.moved.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl<S: AsyncWrite + Unpin> Coalesce<S> {
    /// Writes out everything gathered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pos < self.buf.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.buf[self.pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.note(n);
            self.pos += n;
        }
        self.buf.clear();
        self.pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Makes room for `len` more bytes: drains when they would not fit.
    fn poll_room(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<()>> {
        if self.buf.len() + len > WRITE_BUFFER && !self.buf.is_empty() {
            ready!(self.poll_drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesce<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        // Not on a read that found nothing (most waits): no atomic add then.
        if n > 0 {
            this.note(n);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesce<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_room(cx, data.len()))?;
        if this.buf.is_empty() && data.len() >= WRITE_BUFFER {
            let r = Pin::new(&mut this.io).poll_write(cx, data);
            if let Poll::Ready(Ok(n)) = r {
                this.note(n);
            }
            return r;
        }
        this.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        ready!(this.poll_room(cx, total))?;
        if this.buf.is_empty() && total >= WRITE_BUFFER {
            let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
            if let Poll::Ready(Ok(n)) = r {
                this.note(n);
            }
            return r;
        }
        for b in bufs {
            this.buf.extend_from_slice(b);
        }
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn writes_wait_for_flush_and_keep_their_order() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (a, mut b) = tokio::io::duplex(1 << 20);
            let mut w = Coalesce::new(a);
            w.write_all(b"one ").await.unwrap();
            let n = w
                .write_vectored(&[IoSlice::new(b"two "), IoSlice::new(b"three")])
                .await
                .unwrap();
            assert_eq!(n, 9, "gathered whole");
            let mut probe = [0u8; 1];
            let early =
                tokio::time::timeout(std::time::Duration::from_millis(20), b.read(&mut probe))
                    .await;
            assert!(early.is_err(), "nothing reaches the peer before a flush");
            w.flush().await.unwrap();
            let mut got = vec![0u8; 13];
            b.read_exact(&mut got).await.unwrap();
            assert_eq!(got, b"one two three");
            // A write larger than the buffer goes out in order after what
            // was gathered.
            let big = vec![7u8; WRITE_BUFFER + 10];
            w.write_all(b"x").await.unwrap();
            let mut big_w = big.as_slice();
            while !big_w.is_empty() {
                let n = w.write(big_w).await.unwrap();
                big_w = &big_w[n..];
            }
            w.flush().await.unwrap();
            let mut got = vec![0u8; WRITE_BUFFER + 11];
            b.read_exact(&mut got).await.unwrap();
            assert_eq!(got[0], b'x');
            assert!(got[1..].iter().all(|&c| c == 7));
        });
    }
}
