//! What a connection runs over: TCP, a Unix socket or TLS. All are byte
//! streams; the plain sockets can also hand a file straight to the kernel.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use tokio::io::{AsyncRead, AsyncWrite, Interest};
use tokio::net::{TcpStream, UnixStream};

/// A connection's byte stream.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
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

/// One sendfile(2) call; `WouldBlock` when the socket buffer is full.
fn sendfile_once(socket: RawFd, file: RawFd, offset: &mut i64, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are open for the duration of the call (the
    // caller holds the socket and the file); `offset` is a valid pointer.
    let n = unsafe { libc::sendfile(socket, file, offset, len) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
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
                        match self
                            .try_io(Interest::WRITABLE, || sendfile_once(fd, file, offset, len))
                        {
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
