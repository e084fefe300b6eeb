//! What a connection runs over: TCP, a Unix socket or TLS. All are byte
//! streams; the plain sockets can also hand a file straight to the kernel.

use std::future::Future;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};

use tokio::io::{AsyncRead, AsyncWrite, Interest};
use tokio::net::{TcpStream, UnixStream};

/// Most buffers given to one vectored write.
pub(super) const IOV_MAX: usize = 64;

/// The first [`IOV_MAX`] of `bufs` as slices for one vectored write, and
/// how many there are.
pub(super) fn io_slices<'a>(
    bufs: impl IntoIterator<Item = &'a [u8]>,
) -> ([IoSlice<'a>; IOV_MAX], usize) {
    let mut out = [IoSlice::new(&[]); IOV_MAX];
    let mut count = 0;
    for (slot, b) in out.iter_mut().zip(bufs) {
        *slot = IoSlice::new(b);
        count += 1;
    }
    (out, count)
}

/// A connection's byte stream.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Whether [`Self::sendfile`] can be used (not through TLS).
    fn can_sendfile(&self) -> bool {
        false
    }

    /// Copies up to `len` bytes of `file` from `*offset` to the socket with
    /// sendfile(2), once the socket is writable; advances `offset`. Returns
    /// the bytes sent (0 at the end of the file).
    fn sendfile(
        &self,
        file: RawFd,
        offset: &mut i64,
        len: usize,
    ) -> impl Future<Output = io::Result<usize>> + Send {
        let _ = (file, offset, len);
        async { Err(io::ErrorKind::Unsupported.into()) }
    }
}

macro_rules! socket_transport {
    ($ty:ty) => {
        impl Transport for $ty {
            fn can_sendfile(&self) -> bool {
                true
            }

            fn sendfile(
                &self,
                file: RawFd,
                offset: &mut i64,
                len: usize,
            ) -> impl Future<Output = io::Result<usize>> + Send {
                async move {
                    loop {
                        self.writable().await?;
                        let fd = self.as_raw_fd();
                        match self.try_io(Interest::WRITABLE, || {
                            crate::sys::sendfile(fd, file, offset, len)
                        }) {
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                            r => return r,
                        }
                    }
                }
            }
        }
    };
}

socket_transport!(TcpStream);
socket_transport!(UnixStream);

/// A stream whose first bytes were already read: they are read again
/// first. The HTTP/1.1 driver reads the HTTP/2 preface (core recognises
/// it), then hands the connection to the HTTP/2 stack this way.
pub(super) struct Prefixed<S> {
    prefix: bytes::Bytes,
    io: S,
}

impl<S> Prefixed<S> {
    pub(super) fn new(prefix: bytes::Bytes, io: S) -> Self {
        Self { prefix, io }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        if self.prefix.is_empty() {
            return std::pin::Pin::new(&mut self.io).poll_read(cx, buf);
        }
        let n = self.prefix.len().min(buf.remaining());
        let head = self.prefix.split_to(n);
        buf.put_slice(&head);
        std::task::Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<S: Transport> Transport for Prefixed<S> {}

/// The bytes of an HTTP/2 stream that carries a WebSocket (RFC 8441).
impl Transport for hyper_util::rt::TokioIo<hyper::upgrade::Upgraded> {}
