//! Binding the listening socket: TCP, a Unix socket, or an inherited fd.

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
            return Self::from_fd(fd);
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

    fn from_fd(fd: RawFd) -> Result<Self, String> {
        let sock = crate::sys::adopt_socket(fd)?;
        let local = sock
            .local_addr()
            .map_err(|e| format!("file descriptor {fd} is not a socket: {e}"))?;
        if let Some(path) = local.as_pathname() {
            let path = path.to_string_lossy().into_owned();
            Ok(Self::Unix(sock.into(), path))
        } else if local.as_socket().is_some() {
            Ok(Self::Tcp(sock.into()))
        } else {
            Ok(Self::Unix(sock.into(), String::new()))
        }
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
