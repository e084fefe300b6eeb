//! TLS on a socket the server reads and writes itself, after the handshake
//! (which tokio-rustls makes): rustls's connection over the readiness
//! driver's nonblocking socket, or over tokio's once the connection is
//! handed to the async driver. Both follow the same rules, written once
//! below: plaintext is read until the socket is empty, and the records of
//! earlier writes go out before more plaintext is taken, so that what
//! rustls holds stays bounded by one write.

use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use rustls::ServerConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::transport::Transport;

/// A TLS connection over `S` (a std socket in the readiness driver,
/// tokio's in the async one).
pub(in crate::server) struct TlsSocket<S> {
    sock: S,
    tls: Box<ServerConnection>,
    /// The last read emptied the socket, or met its end: more input comes
    /// with a new readiness event.
    drained: bool,
    /// Our close_notify is queued.
    closing: bool,
}

impl<S> TlsSocket<S> {
    /// `tls` after its handshake, over `sock`.
    pub(in crate::server) fn new(sock: S, mut tls: ServerConnection) -> Self {
        // Writes are bounded by the rule above, not by rustls refusing
        // plaintext part way through a write.
        tls.set_buffer_limit(None);
        Self {
            sock,
            tls: Box::new(tls),
            drained: false,
            closing: false,
        }
    }

    /// The same connection over what `f` makes of its socket.
    pub(in crate::server) fn map_sock<T>(
        self,
        f: impl FnOnce(S) -> io::Result<T>,
    ) -> io::Result<TlsSocket<T>> {
        Ok(TlsSocket {
            sock: f(self.sock)?,
            tls: self.tls,
            drained: self.drained,
            closing: self.closing,
        })
    }

    /// The socket.
    pub(in crate::server) fn sock(&self) -> &S {
        &self.sock
    }

    /// Records are waiting for room in the socket.
    pub(in crate::server) fn has_pending(&self) -> bool {
        self.tls.wants_write()
    }

    /// The last read emptied the socket.
    pub(in crate::server) fn drained(&self) -> bool {
        self.drained
    }
}

/// The readiness driver's side: a nonblocking std socket.
impl TlsSocket<std::net::TcpStream> {
    /// Plaintext into `buf`: Ok(0) at the end, WouldBlock when none came.
    pub(in crate::server) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_plain(&mut self.tls, &mut self.sock, buf, &mut self.drained)
    }

    /// Takes all of `bufs` once earlier records are out (else WouldBlock),
    /// and writes what the socket takes of them.
    pub(in crate::server) fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        write_plain(&mut self.tls, &mut self.sock, bufs)
    }

    /// Writes the records still held; WouldBlock once the socket is full.
    pub(in crate::server) fn flush(&mut self) -> io::Result<()> {
        flush_records(&mut self.tls, &mut self.sock)
    }

    /// Ends our side: close_notify, then FIN.
    pub(in crate::server) fn shutdown_write(&mut self) {
        self.tls.send_close_notify();
        let _ = flush_records(&mut self.tls, &mut self.sock);
        let _ = self.sock.shutdown(std::net::Shutdown::Write);
    }
}

/// Reads plaintext into `buf`, reading records from `io` as needed, until
/// `buf` is full or `io` is empty (`drained`). Ok(0) at the end (with or
/// without the peer's close_notify: most clients just close); WouldBlock
/// when nothing came.
fn read_plain<IO: Read + Write>(
    tls: &mut ServerConnection,
    io: &mut IO,
    buf: &mut [u8],
    drained: &mut bool,
) -> io::Result<usize> {
    *drained = false;
    let mut filled = 0;
    // The last read of the socket gave less than it asked for: the socket
    // was empty then, so another read would only hear WouldBlock. With
    // nothing to return (part of a record came), the socket is read again
    // all the same: tokio learns that it is empty only from a WouldBlock
    // of its own.
    let mut emptied = false;
    loop {
        match tls.reader().read(&mut buf[filled..]) {
            Ok(n) => {
                filled += n;
                // Full, or the peer's close_notify (0 with room left).
                if filled == buf.len() || n == 0 {
                    return Ok(filled);
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                *drained = true;
                return Ok(filled);
            }
            Err(e) => return Err(e),
        }
        if emptied && filled > 0 {
            *drained = true;
            return Ok(filled);
        }
        let mut probe = ShortRead {
            io: &mut *io,
            short: false,
        };
        let read = tls.read_tls(&mut probe);
        emptied = probe.short;
        match read {
            // The socket's end: the reader says which kind, above.
            Ok(0) => {}
            Ok(_) => {
                if let Err(e) = tls.process_new_packets() {
                    // The alert that says why, if the socket takes it.
                    let _ = tls.write_tls(io);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
                // What the peer's records asked of us (a key update).
                if tls.wants_write() {
                    let _ = flush_records(tls, io);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *drained = true;
                return if filled > 0 { Ok(filled) } else { Err(e) };
            }
            Err(e) => return Err(e),
        }
    }
}

/// The socket under rustls's `read_tls`, noting whether a read gave less
/// than it asked for.
struct ShortRead<'a, IO> {
    io: &'a mut IO,
    short: bool,
}

impl<IO: Read> Read for ShortRead<'_, IO> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.io.read(buf)?;
        // 0 is the end, which the reader reports itself.
        self.short = n > 0 && n < buf.len();
        Ok(n)
    }
}

/// Takes all of `bufs` as plaintext once the records of earlier writes are
/// out (WouldBlock, taking nothing, while they are not), and writes what
/// `io` takes of the new records.
fn write_plain<IO: Read + Write>(
    tls: &mut ServerConnection,
    io: &mut IO,
    bufs: &[IoSlice<'_>],
) -> io::Result<usize> {
    flush_records(tls, io)?;
    let n = tls.writer().write_vectored(bufs)?;
    match flush_records(tls, io) {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
        _ => Ok(n),
    }
}

/// Writes the records rustls holds; WouldBlock once `io` is full.
fn flush_records<IO: Write>(tls: &mut ServerConnection, io: &mut IO) -> io::Result<()> {
    while tls.wants_write() {
        if tls.write_tls(io)? == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
    }
    Ok(())
}

/// tokio's socket as a nonblocking std one: WouldBlock once it is not
/// ready, with the task's waker left with the reactor.
struct Polled<'a, 'b> {
    sock: &'a tokio::net::TcpStream,
    cx: &'a mut Context<'b>,
}

impl Polled<'_, '_> {
    /// `attempt` once the socket is ready for it (`write` or read);
    /// WouldBlock while it is not, with the task's waker left with the
    /// reactor. A stale readiness is cleared by the attempt, and the next
    /// poll waits.
    fn when_ready<T>(
        &mut self,
        write: bool,
        mut attempt: impl FnMut(&tokio::net::TcpStream) -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            let ready = if write {
                self.sock.poll_write_ready(self.cx)
            } else {
                self.sock.poll_read_ready(self.cx)
            };
            match ready {
                Poll::Pending => return Err(io::ErrorKind::WouldBlock.into()),
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Ready(Ok(())) => match attempt(self.sock) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    r => return r,
                },
            }
        }
    }
}

impl Read for Polled<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.when_ready(false, |s| s.try_read(buf))
    }
}

impl Write for Polled<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.when_ready(true, |s| s.try_write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Pending for WouldBlock.
fn poll<T>(r: io::Result<T>) -> Poll<io::Result<T>> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        r => Poll::Ready(r),
    }
}

impl TlsSocket<tokio::net::TcpStream> {
    /// rustls's connection, the socket as a nonblocking one for `cx`, and
    /// the flag a read sets.
    fn polled<'a, 'b>(
        &'a mut self,
        cx: &'a mut Context<'b>,
    ) -> (&'a mut ServerConnection, Polled<'a, 'b>, &'a mut bool) {
        let io = Polled {
            sock: &self.sock,
            cx,
        };
        (&mut self.tls, io, &mut self.drained)
    }
}

/// The async driver's side.
impl AsyncRead for TlsSocket<tokio::net::TcpStream> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let (tls, mut io, drained) = self.get_mut().polled(cx);
        let r = read_plain(tls, &mut io, buf.initialize_unfilled(), drained);
        poll(r).map_ok(|n| buf.advance(n))
    }
}

impl AsyncWrite for TlsSocket<tokio::net::TcpStream> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let (tls, mut io, _) = self.get_mut().polled(cx);
        poll(write_plain(tls, &mut io, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (tls, mut io, _) = self.get_mut().polled(cx);
        poll(flush_records(tls, &mut io))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !std::mem::replace(&mut this.closing, true) {
            this.tls.send_close_notify();
        }
        let (tls, mut io, _) = this.polled(&mut *cx);
        std::task::ready!(poll(flush_records(tls, &mut io)))?;
        Pin::new(&mut this.sock).poll_shutdown(cx)
    }
}

impl Transport for TlsSocket<tokio::net::TcpStream> {}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use rustls::ClientConnection;

    use super::*;
    use crate::tls::tests::connected_pair;

    /// A nonblocking socket in memory: what the client sent, to read; what
    /// the server wrote, up to `room` bytes until the client reads it.
    struct Pipe {
        input: VecDeque<u8>,
        output: Vec<u8>,
        room: usize,
        closed: bool,
        /// Reads asked of the socket.
        reads: usize,
    }

    impl Pipe {
        fn new(room: usize) -> Self {
            Self {
                input: VecDeque::new(),
                output: Vec::new(),
                room,
                closed: false,
                reads: 0,
            }
        }

        /// The client's records, sent.
        fn send_from(&mut self, client: &mut ClientConnection) {
            let mut records = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut records).unwrap();
            }
            self.input.extend(records);
        }

        /// The plaintext of what the server wrote, read by the client.
        fn receive_into(&mut self, client: &mut ClientConnection) -> Vec<u8> {
            let mut rd = &self.output[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).unwrap();
                client.process_new_packets().unwrap();
            }
            self.output.clear();
            let mut plain = Vec::new();
            let _ = client.reader().read_to_end(&mut plain);
            plain
        }
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            if self.input.is_empty() {
                return if self.closed {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            self.input.read(buf)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.room - self.output.len());
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.output.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_read_takes_every_record_the_socket_holds() {
        let (mut client, mut server) = connected_pair();
        let mut pipe = Pipe::new(1 << 20);
        // Three writes of 20 KB: at least six records.
        for byte in [b'a', b'b', b'c'] {
            client.writer().write_all(&[byte; 20_000]).unwrap();
        }
        pipe.send_from(&mut client);
        let mut drained = false;
        let mut small = [0u8; 1000];
        let n = read_plain(&mut server, &mut pipe, &mut small, &mut drained).unwrap();
        assert_eq!(
            (n, drained),
            (1000, false),
            "a full buffer: more may be held"
        );
        let mut buf = vec![0u8; 64 * 1024];
        let n = read_plain(&mut server, &mut pipe, &mut buf, &mut drained).unwrap();
        assert_eq!((n, drained), (59_000, true));
        assert!(buf[..19_000].iter().all(|&b| b == b'a'));
        assert!(buf[39_000..59_000].iter().all(|&b| b == b'c'));
        let again = read_plain(&mut server, &mut pipe, &mut buf, &mut drained);
        assert_eq!(again.unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn a_short_read_of_the_socket_is_the_last_one() {
        let (mut client, mut server) = connected_pair();
        let mut pipe = Pipe::new(1 << 20);
        client
            .writer()
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .unwrap();
        pipe.send_from(&mut client);
        let mut drained = false;
        let mut buf = vec![0u8; 64 * 1024];
        let n = read_plain(&mut server, &mut pipe, &mut buf, &mut drained).unwrap();
        assert_eq!((n, drained), (18, true));
        // The socket gave less than was asked: it is empty, and asking
        // again would only hear WouldBlock (a system call per request).
        assert_eq!(pipe.reads, 1);
        // Part of a record: nothing to return, so the socket is asked
        // again and says WouldBlock itself.
        client.writer().write_all(b"next").unwrap();
        let mut records = Vec::new();
        client.write_tls(&mut records).unwrap();
        pipe.input.extend(&records[..records.len() - 1]);
        let r = read_plain(&mut server, &mut pipe, &mut buf, &mut drained);
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert_eq!((pipe.reads, drained), (3, true));
    }

    #[test]
    fn a_write_waits_for_the_records_of_the_last_one() {
        let (mut client, mut server) = connected_pair();
        let mut pipe = Pipe::new(10_000);
        let first = [b'x'; 30_000];
        let n = write_plain(&mut server, &mut pipe, &[IoSlice::new(&first)]).unwrap();
        assert_eq!(n, first.len(), "all taken");
        assert!(
            server.wants_write(),
            "what the socket had no room for is held"
        );
        let second = write_plain(&mut server, &mut pipe, &[IoSlice::new(b"more")]);
        assert_eq!(second.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        let mut got = Vec::new();
        while server.wants_write() {
            got.extend(pipe.receive_into(&mut client));
            let _ = flush_records(&mut server, &mut pipe);
        }
        got.extend(pipe.receive_into(&mut client));
        assert_eq!(got, first);
        let n = write_plain(&mut server, &mut pipe, &[IoSlice::new(b"more")]).unwrap();
        assert_eq!(n, 4);
        assert_eq!(pipe.receive_into(&mut client), b"more");
    }

    #[test]
    fn the_peer_closing_is_the_end_with_or_without_close_notify() {
        for notify in [true, false] {
            let (mut client, mut server) = connected_pair();
            let mut pipe = Pipe::new(1 << 20);
            client.writer().write_all(b"last").unwrap();
            if notify {
                client.send_close_notify();
            }
            pipe.send_from(&mut client);
            pipe.closed = true;
            let mut drained = false;
            let mut buf = [0u8; 100];
            let n = read_plain(&mut server, &mut pipe, &mut buf, &mut drained).unwrap();
            assert_eq!(&buf[..n], b"last");
            let n = read_plain(&mut server, &mut pipe, &mut buf, &mut drained).unwrap();
            assert_eq!(n, 0, "the end (close_notify: {notify})");
        }
    }
}
