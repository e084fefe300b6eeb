//! Binding the listening socket: TCP, a Unix socket, or an inherited fd
//! (`--fd`, or one of the sockets systemd passes).

use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::fd::RawFd;
use std::os::unix::net::UnixListener;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::config::ServerConfig;

/// A bound, listening socket, not yet handed to tokio.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(std::net::TcpListener),
    /// Unix domain socket, with its path.
    Unix(UnixListener, String),
}

impl Listener {
    /// Binds what the configuration asks for.
    pub fn bind(config: &ServerConfig) -> Result<Self, String> {
        Self::bind_reuse_port(config, false)
    }

    /// Binds, with SO_REUSEPORT on a TCP socket when `reuse_port` is set so
    /// that several sockets can share the port.
    pub fn bind_reuse_port(config: &ServerConfig, reuse_port: bool) -> Result<Self, String> {
        if let Some(fd) = config.fd {
            return Self::adopt(fd);
        }
        if let Some(path) = &config.uds {
            // A stale socket file from an earlier run would make bind fail.
            if std::fs::metadata(path)
                .map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
                .unwrap_or(false)
            {
                let _ = std::fs::remove_file(path);
            }
            let sock = Socket::new(Domain::UNIX, Type::STREAM, None)
                .map_err(|e| format!("cannot create socket: {e}"))?;
            let addr =
                SockAddr::unix(path).map_err(|e| format!("invalid socket path {path}: {e}"))?;
            sock.bind(&addr)
                .map_err(|e| format!("cannot bind to {path}: {e}"))?;
            sock.listen(config.backlog)
                .map_err(|e| format!("cannot listen on {path}: {e}"))?;
            return Ok(Self::Unix(sock.into(), path.clone()));
        }
        let host = config.host.trim_start_matches('[').trim_end_matches(']');
        let addr: SocketAddr = (host, config.port)
            .to_socket_addrs()
            .map_err(|e| format!("invalid host {:?}: {e}", config.host))?
            .next()
            .ok_or_else(|| format!("host {:?} has no address", config.host))?;
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)
            .map_err(|e| format!("cannot create socket: {e}"))?;
        sock.set_reuse_address(true)
            .map_err(|e| format!("cannot set SO_REUSEADDR: {e}"))?;
        if reuse_port {
            sock.set_reuse_port(true)
                .map_err(|e| format!("cannot set SO_REUSEPORT: {e}"))?;
        }
        if addr.is_ipv6() {
            let _ = sock.set_only_v6(true);
        }
        sock.bind(&addr.into()).map_err(|e| {
            let what = if e.kind() == std::io::ErrorKind::AddrInUse {
                "address already in use".to_owned()
            } else {
                e.to_string()
            };
            format!("cannot bind to {}: {what}", display_addr(&addr))
        })?;
        sock.listen(config.backlog)
            .map_err(|e| format!("cannot listen on {}: {e}", display_addr(&addr)))?;
        Ok(Self::Tcp(sock.into()))
    }

    /// Takes over `fd`, a socket this process inherited (`--fd`, systemd's
    /// socket activation, or the supervisor's): it must be a listening TCP
    /// or Unix stream socket, else the error is one readable line. The
    /// descriptor becomes close-on-exec, so the application's subprocesses
    /// do not inherit it (the supervisor hands it to its workers
    /// explicitly).
    pub fn adopt(fd: RawFd) -> Result<Self, String> {
        let sock = crate::sys::adopt_socket(fd)?;
        let kind = sock.r#type().map_err(|e| match e.raw_os_error() {
            Some(libc::ENOTSOCK) => format!("file descriptor {fd} is not a socket"),
            _ => format!("file descriptor {fd}: {e}"),
        })?;
        let domain = sock
            .domain()
            .map_err(|e| format!("file descriptor {fd}: {e}"))?;
        if kind != Type::STREAM || ![Domain::IPV4, Domain::IPV6, Domain::UNIX].contains(&domain) {
            return Err(format!(
                "file descriptor {fd} is not a TCP or Unix stream socket"
            ));
        }
        if !sock.is_listener().unwrap_or(false) {
            return Err(format!(
                "file descriptor {fd} is a socket that is not listening"
            ));
        }
        sock.set_cloexec(true)
            .map_err(|e| format!("file descriptor {fd}: {e}"))?;
        let local = sock
            .local_addr()
            .map_err(|e| format!("file descriptor {fd}: {e}"))?;
        if domain != Domain::UNIX {
            return Ok(Self::Tcp(sock.into()));
        }
        let path = match (local.as_pathname(), local.as_abstract_namespace()) {
            (Some(path), _) => path.to_string_lossy().into_owned(),
            (None, Some(name)) => format!("@{}", String::from_utf8_lossy(name)),
            (None, None) => String::new(),
        };
        Ok(Self::Unix(sock.into(), path))
    }

    /// The address clients connect to, for the startup log line: `https`
    /// when the listener serves TLS.
    pub fn url(&self, tls: bool) -> String {
        let scheme = if tls { "https" } else { "http" };
        match self {
            Self::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("{scheme}://{}", display_addr(&a)),
                Err(_) => format!("{scheme}://?"),
            },
            Self::Unix(_, path) => format!("unix:{path}"),
        }
    }

    /// The bound TCP port, for a TCP listener.
    pub fn tcp_port(&self) -> Option<u16> {
        match self {
            Self::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            Self::Unix(..) => None,
        }
    }

    /// A UDP socket for QUIC on this TCP listener's address and port, in a
    /// SO_REUSEPORT group, so that each worker can have its own (see
    /// [`super::h3`]); None for a Unix socket.
    pub fn quic_socket(&self) -> Result<Option<std::net::UdpSocket>, String> {
        let Self::Tcp(l) = self else {
            return Ok(None);
        };
        let addr = l
            .local_addr()
            .map_err(|e| format!("cannot read the listener's address: {e}"))?;
        let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, None)
            .map_err(|e| format!("cannot create a UDP socket: {e}"))?;
        sock.set_reuse_address(true)
            .and_then(|()| sock.set_reuse_port(true))
            .map_err(|e| format!("cannot set SO_REUSEPORT on a UDP socket: {e}"))?;
        if addr.is_ipv6() {
            let _ = sock.set_only_v6(true);
        }
        sock.bind(&addr.into()).map_err(|e| {
            format!(
                "cannot bind to {} over UDP for HTTP/3: {e}",
                display_addr(&addr)
            )
        })?;
        sock.set_nonblocking(true)
            .map_err(|e| format!("UDP socket: {e}"))?;
        Ok(Some(sock.into()))
    }

    /// The raw descriptor (to pass to worker processes).
    pub fn raw_fd(&self) -> RawFd {
        match self {
            Self::Tcp(l) => l.as_raw_fd(),
            Self::Unix(l, _) => l.as_raw_fd(),
        }
    }
}

fn display_addr(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::IntoRawFd;

    use super::*;

    #[test]
    fn adopts_listening_tcp_and_unix_sockets() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        let l = Listener::adopt(tcp.into_raw_fd()).unwrap();
        assert_eq!(l.tcp_port(), Some(port));
        let name = format!("cormorant-adopt-test-{}", std::process::id());
        let unix = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        unix.bind(&SockAddr::unix(format!("\0{name}")).unwrap())
            .unwrap();
        unix.listen(1).unwrap();
        let l = Listener::adopt(unix.into_raw_fd()).unwrap();
        assert_eq!(l.url(false), format!("unix:@{name}"));
    }

    #[test]
    fn refuses_what_is_not_a_listening_stream_socket() {
        let file = std::fs::File::open("/dev/null").unwrap().into_raw_fd();
        let e = Listener::adopt(file).unwrap_err();
        assert_eq!(e, format!("file descriptor {file} is not a socket"));
        let bound = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        bound
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        let fd = bound.into_raw_fd();
        let e = Listener::adopt(fd).unwrap_err();
        assert_eq!(
            e,
            format!("file descriptor {fd} is a socket that is not listening")
        );
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .into_raw_fd();
        let e = Listener::adopt(udp).unwrap_err();
        assert_eq!(
            e,
            format!("file descriptor {udp} is not a TCP or Unix stream socket")
        );
        assert!(Listener::adopt(9999).unwrap_err().contains("not open"));
    }
}
