//! Write coalescing under hyper's HTTP/2 connection.
//!
//! The h2 codec hands a large DATA payload to the transport as its own
//! buffer and flushes it before it encodes the next frame, so ten 10 KB
//! responses ready at once would cost ten system calls. Here a write is
//! copied into a buffer of fixed-size segments and a flush only asks for
//! it to go out: the buffer is written when the connection's poll ends
//! ([`Drained`]), or earlier when it fills. The whole batch then leaves in
//! one vectored call; the copy costs far less than the calls.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::transport::{IOV_MAX, io_slices};

/// Bytes gathered before they are written out without waiting for the
/// poll to end: the most a connection buffers for a client that is slow
/// to read.
const WRITE_BUFFER: usize = 256 * 1024;

/// The size of each segment of the buffer. The buffer grows by a segment
/// at a time, so a large batch is copied once, never again as a single
/// buffer doubles; and one segment is kept once drained, for the next
/// batch, if the batch fitted in it: after a larger one all are freed, so
/// an idle connection holds little.
const SEGMENT: usize = 16 * 1024;

/// Bytes gathered in segments of [`SEGMENT`] bytes, in order.
#[derive(Default)]
struct Segments {
    segs: Vec<Vec<u8>>,
    /// Bytes of the first segment already written.
    pos: usize,
    /// Bytes gathered and not yet written.
    len: usize,
}

impl Segments {
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `data`, filling the last segment before starting another.
    fn extend(&mut self, mut data: &[u8]) {
        self.len += data.len();
        while !data.is_empty() {
            match self.segs.last_mut() {
                Some(last) if last.len() < SEGMENT => {
                    let n = data.len().min(SEGMENT - last.len());
                    last.extend_from_slice(&data[..n]);
                    data = &data[n..];
                }
                _ => self.segs.push(Vec::with_capacity(SEGMENT)),
            }
        }
    }

    /// The bytes not yet written, as slices for one vectored write.
    fn slices(&self) -> ([IoSlice<'_>; IOV_MAX], usize) {
        let first = self.segs.first().map(|seg| &seg[self.pos..]);
        io_slices(
            first
                .into_iter()
                .chain(self.segs.iter().skip(1).map(Vec::as_slice)),
        )
    }

    /// `n` bytes were written: drops the segments they emptied.
    fn advance(&mut self, mut n: usize) {
        self.len -= n;
        let mut done = 0;
        for seg in &self.segs {
            let left = seg.len() - if done == 0 { self.pos } else { 0 };
            if n < left {
                break;
            }
            n -= left;
            done += 1;
            self.pos = 0;
        }
        if done == self.segs.len() {
            // All written: keep one segment if the batch fitted in it.
            self.segs.truncate(usize::from(done == 1));
            if let Some(seg) = self.segs.first_mut() {
                seg.clear();
            }
            self.pos = 0;
            return;
        }
        self.segs.drain(..done);
        self.pos += n;
    }

    /// Bytes of memory the segments hold.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.segs.iter().map(Vec::capacity).sum()
    }
}

/// Where a connection's writes are gathered, shared by the stream hyper
/// writes to and the [`Drained`] future that writes them out. Both are
/// used by the connection's one task, so the lock is never contended.
struct Gathered<S> {
    io: S,
    buf: Segments,
    /// A flush is owed: the connection asked for its writes to go out.
    owed: bool,
    /// A failed write, for the next write or flush to report.
    failed: Option<io::ErrorKind>,
}

impl<S: AsyncWrite + Unpin> Gathered<S> {
    /// Writes out everything gathered, then flushes the stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>, moved: &AtomicU64) -> Poll<io::Result<()>> {
        if let Some(kind) = self.failed {
            return Poll::Ready(Err(kind.into()));
        }
        while !self.buf.is_empty() {
            let (slices, count) = self.buf.slices();
            let n = match Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]) {
                Poll::Ready(Ok(0)) => return self.fail(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return self.fail(e),
                Poll::Pending => return Poll::Pending,
            };
            moved.fetch_add(n as u64, Ordering::Relaxed);
            self.buf.advance(n);
        }
        self.owed = false;
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(Err(e)) => self.fail(e),
            other => other,
        }
    }

    /// Notes a failed write. What was gathered cannot be sent any more, and
    /// is dropped: nothing is left to drain, so the end of a poll does not
    /// try again (and wake the task) until the connection hears of it.
    fn fail(&mut self, e: io::Error) -> Poll<io::Result<()>> {
        self.failed = Some(e.kind());
        self.buf = Segments::default();
        self.owed = false;
        Poll::Ready(Err(e))
    }

    /// Makes room for `len` more bytes: drains when they would not fit.
    fn poll_room(
        &mut self,
        cx: &mut Context<'_>,
        len: usize,
        moved: &AtomicU64,
    ) -> Poll<io::Result<()>> {
        if let Some(kind) = self.failed {
            return Poll::Ready(Err(kind.into()));
        }
        if self.buf.len + len > WRITE_BUFFER && !self.buf.is_empty() {
            ready!(self.poll_drain(cx, moved))?;
        }
        Poll::Ready(Ok(()))
    }
}

/// The stream hyper reads from and writes to: reads pass through, writes
/// are gathered.
pub(super) struct Coalesce<S> {
    gathered: Arc<Mutex<Gathered<S>>>,
    /// Bytes read and written so far: whether the connection still moves.
    moved: Arc<AtomicU64>,
}

/// Locks what a connection gathered. Nothing panics while holding it, so
/// a poisoned lock still holds consistent state.
fn lock<S>(gathered: &Mutex<Gathered<S>>) -> MutexGuard<'_, Gathered<S>> {
    gathered.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S> Coalesce<S> {
    pub(super) fn new(io: S) -> Self {
        Self {
            gathered: Arc::new(Mutex::new(Gathered {
                io,
                buf: Segments::default(),
                owed: false,
                failed: None,
            })),
            moved: Arc::default(),
        }
    }

    /// The count of bytes read and written, shared with the caller.
    pub(super) fn moved(&self) -> Arc<AtomicU64> {
        self.moved.clone()
    }

    /// What writes this stream's gathered bytes out, for [`Drain::around`]
    /// the connection's future once the stream is handed to it.
    pub(super) fn drain(&self) -> Drain<S> {
        Drain {
            gathered: self.gathered.clone(),
            moved: self.moved.clone(),
        }
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
        let r = Pin::new(&mut lock(&this.gathered).io).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        // Not on a read that found nothing (most waits): no atomic add then.
        if n > 0 {
            this.moved.fetch_add(n as u64, Ordering::Relaxed);
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
        self.poll_write_vectored(cx, &[IoSlice::new(data)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut g = lock(&this.gathered);
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        ready!(g.poll_room(cx, total, &this.moved))?;
        if g.buf.is_empty() && total >= WRITE_BUFFER {
            let r = Pin::new(&mut g.io).poll_write_vectored(cx, bufs);
            if let Poll::Ready(Ok(n)) = r {
                this.moved.fetch_add(n as u64, Ordering::Relaxed);
            }
            return r;
        }
        for b in bufs {
            g.buf.extend(b);
        }
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Owes the flush to the end of the poll, where [`Drained`] pays it.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut g = lock(&self.gathered);
        if let Some(kind) = g.failed {
            return Poll::Ready(Err(kind.into()));
        }
        g.owed = true;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut g = lock(&this.gathered);
        ready!(g.poll_drain(cx, &this.moved))?;
        Pin::new(&mut g.io).poll_shutdown(cx)
    }
}

/// The side of a [`Coalesce`] that writes its gathered bytes out.
pub(super) struct Drain<S> {
    gathered: Arc<Mutex<Gathered<S>>>,
    moved: Arc<AtomicU64>,
}

impl<S> Drain<S> {
    /// `conn`, the connection's future over the stream, made to write out
    /// what it gathered each time it has been polled.
    pub(super) fn around<F>(self, conn: F) -> Drained<F, S> {
        Drained { conn, drain: self }
    }
}

pin_project_lite::pin_project! {
    /// A connection's future that writes out its gathered writes each time
    /// it has been polled, so what one poll produced leaves together.
    pub(super) struct Drained<F, S> {
        #[pin]
        conn: F,
        drain: Drain<S>,
    }
}

impl<F, S> Drained<F, S> {
    /// The connection's own future (for its graceful shutdown).
    pub(super) fn conn(self: Pin<&mut Self>) -> Pin<&mut F> {
        self.project().conn
    }
}

impl<F: Future, S: AsyncWrite + Unpin> Future for Drained<F, S> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let done = this.conn.poll(cx);
        let mut g = lock(&this.drain.gathered);
        if g.owed || !g.buf.is_empty() {
            // Pending: the socket wakes this task once it takes more.
            if let Poll::Ready(Err(_)) = g.poll_drain(cx, &this.drain.moved) {
                // The connection hears of it from its next write; poll it
                // again so that it does.
                cx.waker().wake_by_ref();
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A stream that counts the writes that reach it.
    struct Counted {
        out: Vec<u8>,
        writes: usize,
        flushes: usize,
    }

    impl AsyncWrite for Counted {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes += 1;
            self.out.extend_from_slice(data);
            Poll::Ready(Ok(data.len()))
        }
        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A stream whose writes fail, as a socket's do once the peer is gone.
    struct Broken;

    impl AsyncWrite for Broken {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Counts the wake-ups of a task.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_failed_write_is_told_to_the_connection_and_wakes_its_task_once() {
        let io = Coalesce::new(Broken);
        let mut drained = Box::pin(io.drain().around(std::future::pending::<()>()));
        let mut io = Box::pin(io);
        let count = Arc::new(Count(Default::default()));
        let waker = std::task::Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(io.as_mut().poll_write(&mut cx, b"frame").is_ready());
        assert!(io.as_mut().poll_flush(&mut cx).is_ready());
        // The connection waits for input; its poll ends, the write fails.
        for _ in 0..3 {
            assert!(drained.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(
            count.0.load(Ordering::Relaxed),
            1,
            "one wake-up, not one per poll"
        );
        let told = io.as_mut().poll_flush(&mut cx);
        assert!(matches!(told, Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe));
    }

    fn unwritten(s: &Segments) -> Vec<u8> {
        let (slices, count) = s.slices();
        slices[..count]
            .iter()
            .flat_map(|b| b.iter().copied())
            .collect()
    }

    #[test]
    fn segments_give_back_what_was_gathered_in_order_as_it_is_written() {
        let data: Vec<u8> = (0..SEGMENT * 3 + 100).map(|i| (i % 251) as u8).collect();
        let mut s = Segments::default();
        for piece in data.chunks(7000) {
            s.extend(piece);
        }
        assert_eq!(s.len, data.len());
        assert_eq!(s.segs.len(), 4);
        assert!(s.segs.iter().all(|seg| seg.capacity() == SEGMENT));
        assert_eq!(unwritten(&s), data);
        // Part of the first segment, then across two boundaries.
        let mut at = 0;
        for n in [10, SEGMENT * 2, SEGMENT - 10 + 50] {
            s.advance(n);
            at += n;
            assert_eq!(unwritten(&s), data[at..], "after {at}");
        }
        s.advance(data.len() - at);
        assert!(s.is_empty());
        assert!(s.held() <= SEGMENT);
        s.extend(&data);
        s.advance(data.len());
        assert_eq!(s.held(), 0, "a batch of several segments frees them all");
        s.extend(b"small");
        s.advance(5);
        assert_eq!(s.held(), SEGMENT, "a batch that fitted keeps its segment");
        s.extend(b"next");
        assert_eq!(unwritten(&s), b"next");
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn what_one_poll_writes_and_flushes_leaves_in_one_write_when_the_poll_ends() {
        runtime().block_on(async {
            let io = Coalesce::new(Counted {
                out: Vec::new(),
                writes: 0,
                flushes: 0,
            });
            let gathered = io.gathered.clone();
            let drain = io.drain();
            let mut io = Some(io);
            // One poll of a "connection" that writes three frames, flushing
            // after each, as h2 does with large DATA frames.
            let conn = poll_fn(move |cx| {
                let w = io.as_mut().unwrap();
                for frame in [&b"one "[..], b"two ", b"three"] {
                    assert!(Pin::new(&mut *w).poll_write(cx, frame).is_ready());
                    assert!(Pin::new(&mut *w).poll_flush(cx).is_ready());
                }
                let g = lock(&w.gathered);
                assert_eq!(g.io.writes, 0, "nothing is written during the poll");
                Poll::Ready(())
            });
            drain.around(conn).await;
            let g = lock(&gathered);
            assert_eq!(g.io.out, b"one two three");
            assert_eq!(g.io.writes, 1, "one write for the poll's three flushes");
            assert_eq!(g.io.flushes, 1);
            assert!(g.buf.is_empty() && !g.owed);
            assert_eq!(
                g.buf.held(),
                SEGMENT,
                "a batch that fitted keeps its segment"
            );
        });
    }

    #[test]
    fn a_full_buffer_goes_out_in_order_without_waiting_for_the_poll_to_end() {
        runtime().block_on(async {
            let (a, mut b) = tokio::io::duplex(1 << 20);
            let mut w = Coalesce::new(a);
            w.write_all(b"x").await.unwrap();
            let big = vec![7u8; WRITE_BUFFER + 10];
            let mut rest = big.as_slice();
            while !rest.is_empty() {
                let n = w.write(rest).await.unwrap();
                rest = &rest[n..];
            }
            // No poll end has drained anything: the buffer filling did.
            let mut got = vec![0u8; WRITE_BUFFER + 11];
            b.read_exact(&mut got).await.unwrap();
            assert_eq!(got[0], b'x');
            assert!(got[1..].iter().all(|&c| c == 7));
        });
    }

    #[test]
    fn a_drained_buffer_larger_than_the_kept_size_is_freed() {
        runtime().block_on(async {
            let (a, _b) = tokio::io::duplex(1 << 20);
            let w = Coalesce::new(a);
            let gathered = w.gathered.clone();
            let drain = w.drain();
            let mut w = Some(w);
            let conn = poll_fn(move |cx| {
                let w = w.as_mut().unwrap();
                let frame = vec![1u8; SEGMENT * 2];
                assert!(Pin::new(&mut *w).poll_write(cx, &frame).is_ready());
                assert!(Pin::new(&mut *w).poll_flush(cx).is_ready());
                Poll::Ready(())
            });
            drain.around(conn).await;
            assert_eq!(
                lock(&gathered).buf.held(),
                0,
                "an idle connection holds no buffer"
            );
        });
    }
}
