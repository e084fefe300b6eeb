//! systemd's side of a service, without libsystemd: the notification
//! socket (`sd_notify(3)`), the watchdog (`sd_watchdog_enabled(3)`) and
//! socket activation (`sd_listen_fds(3)`).
//!
//! Each function reads the values of its environment variables as
//! arguments. The caller reads them once, at startup, and removes them
//! from the environment, as libsystemd's `unset_environment` does: the
//! application and the programs it starts must not report to systemd in
//! the server's name, nor take its sockets for theirs.

use std::ffi::OsStr;
use std::io;
use std::os::fd::RawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where to send notifications: a Unix datagram socket's path, or `@` and
/// an abstract socket's name.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// The watchdog's period, in microseconds, when `WatchdogSec=` is set.
pub const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
/// The process the watchdog is meant for (absent: whoever reads it).
pub const WATCHDOG_PID: &str = "WATCHDOG_PID";
/// The process the passed sockets are meant for.
pub const LISTEN_PID: &str = "LISTEN_PID";
/// How many sockets were passed, from [`LISTEN_FDS_START`] on.
pub const LISTEN_FDS: &str = "LISTEN_FDS";
/// The passed sockets' names (`FileDescriptorName=`), colon-separated.
pub const LISTEN_FDNAMES: &str = "LISTEN_FDNAMES";
/// Every variable of the protocol, for the caller to remove.
pub const VARIABLES: [&str; 6] = [
    NOTIFY_SOCKET,
    WATCHDOG_USEC,
    WATCHDOG_PID,
    LISTEN_PID,
    LISTEN_FDS,
    LISTEN_FDNAMES,
];

/// The first descriptor of the passed sockets (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// The notification socket of the service manager.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The socket `NOTIFY_SOCKET` names: an absolute path, or `@` and an
    /// abstract name. None for an empty value or another kind of address
    /// (systemd 254's `vsock:`, which a server on the same host never
    /// gets).
    pub fn new(value: &OsStr) -> io::Result<Option<Self>> {
        let bytes = value.as_bytes();
        let addr = match bytes.first() {
            Some(b'/') => SocketAddr::from_pathname(value)?,
            Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..])?,
            _ => return Ok(None),
        };
        // Close-on-exec (std's default): it is the server's alone.
        let socket = UnixDatagram::unbound()?;
        Ok(Some(Self { socket, addr }))
    }

    /// Sends `state`, newline-separated assignments (`READY=1\nSTATUS=...`),
    /// as one datagram. The receiver learns our pid from the kernel
    /// (`SO_PASSCRED`), which is how `NotifyAccess=main` tells the main
    /// process from the others.
    pub fn notify(&self, state: &str) -> io::Result<()> {
        self.socket.send_to_addr(state.as_bytes(), &self.addr)?;
        Ok(())
    }
}

/// `RELOADING=1` as systemd 253 and later want it: with the monotonic
/// time, so that a reload is told from the one before.
pub fn reloading() -> String {
    format!(
        "RELOADING=1\nMONOTONIC_USEC={}",
        crate::sys::monotonic_micros()
    )
}

/// The watchdog's period when `WATCHDOG_USEC` asks for one and
/// `WATCHDOG_PID`, if set, is `pid`. A service pings it (`WATCHDOG=1`)
/// at least that often; pinging at half the period leaves room for a late
/// timer.
pub fn watchdog(usec: Option<&OsStr>, watchdog_pid: Option<&OsStr>, pid: u32) -> Option<Duration> {
    if let Some(p) = watchdog_pid {
        if number(p)? != u64::from(pid) {
            return None;
        }
    }
    let usec = number(usec?)?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// One socket systemd passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenFd {
    pub fd: RawFd,
    /// Its `FileDescriptorName=` (the socket unit's name by default).
    pub name: Option<String>,
}

/// The sockets systemd passed, when `LISTEN_PID` is `pid`: descriptors
/// [`LISTEN_FDS_START`] onwards, `LISTEN_FDS` of them, named by
/// `LISTEN_FDNAMES` when it has a name for each. None when they are not
/// meant for this process (or nothing was passed); an error line when
/// `LISTEN_FDS` is not a number. Whether each is a socket is checked when
/// it is adopted.
pub fn listen_fds(
    listen_pid: Option<&OsStr>,
    listen_fds: Option<&OsStr>,
    names: Option<&OsStr>,
    pid: u32,
) -> Result<Option<Vec<ListenFd>>, String> {
    if listen_pid.and_then(number) != Some(u64::from(pid)) {
        return Ok(None);
    }
    let Some(value) = listen_fds else {
        return Ok(None);
    };
    // The kernel's limit on descriptors is far below this.
    let n = number(value)
        .filter(|&n| n <= 65_536)
        .ok_or_else(|| format!("LISTEN_FDS={} is not a number", value.to_string_lossy()))?;
    if n == 0 {
        return Ok(None);
    }
    let names: Vec<String> = names
        .map(|v| v.to_string_lossy().split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    let named = names.len() as u64 == n;
    Ok(Some(
        (0..n as RawFd)
            .map(|i| ListenFd {
                fd: LISTEN_FDS_START + i,
                name: named.then(|| names[i as usize].clone()),
            })
            .collect(),
    ))
}

/// A decimal number, nothing else around it.
fn number(value: &OsStr) -> Option<u64> {
    let s = value.to_str()?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<&OsStr> {
        Some(OsStr::new(s))
    }

    #[test]
    fn the_watchdog_is_ours_only_when_its_pid_is_ours_or_unset() {
        let period = Some(Duration::from_millis(200));
        assert_eq!(watchdog(os("200000"), None, 42), period);
        assert_eq!(watchdog(os("200000"), os("42"), 42), period);
        assert_eq!(watchdog(os("200000"), os("43"), 42), None);
        assert_eq!(watchdog(os("200000"), os("x"), 42), None);
        assert_eq!(watchdog(None, os("42"), 42), None);
        assert_eq!(watchdog(os("0"), None, 42), None);
        assert_eq!(watchdog(os("-5"), None, 42), None);
        assert_eq!(watchdog(os("1 s"), None, 42), None);
    }

    #[test]
    fn listen_fds_are_ours_only_when_listen_pid_is_ours() {
        let fds = |pid, n, names| listen_fds(os(pid), os(n), names, 42);
        let two = Some(vec![
            ListenFd { fd: 3, name: None },
            ListenFd { fd: 4, name: None },
        ]);
        assert_eq!(fds("42", "2", None), Ok(two));
        assert_eq!(fds("43", "2", None), Ok(None));
        assert_eq!(listen_fds(None, os("2"), None, 42), Ok(None));
        assert_eq!(listen_fds(os("42"), None, None, 42), Ok(None));
        assert_eq!(fds("42", "0", None), Ok(None));
        assert!(
            fds("42", "two", None)
                .unwrap_err()
                .contains("LISTEN_FDS=two")
        );
        // Names only when there is one per socket.
        let named = fds("42", "2", os("web:admin")).unwrap().unwrap();
        assert_eq!(named[0].name.as_deref(), Some("web"));
        assert_eq!(named[1].name.as_deref(), Some("admin"));
        let unnamed = fds("42", "2", os("web")).unwrap().unwrap();
        assert_eq!(unnamed[1].name, None);
    }

    #[test]
    fn notifies_a_path_and_an_abstract_socket() {
        let dir = std::env::temp_dir().join(format!("cormorant-notify-{}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let at_path = UnixDatagram::bind(&path).unwrap();
        let name = format!("cormorant-notify-test-{}", std::process::id());
        let abstract_addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let at_name = UnixDatagram::bind_addr(&abstract_addr).unwrap();
        let mut buf = [0u8; 64];
        for (value, receiver) in [
            (path.as_os_str().to_owned(), &at_path),
            (format!("@{name}").into(), &at_name),
        ] {
            let n = Notifier::new(&value).unwrap().unwrap();
            n.notify("READY=1\nSTATUS=up").unwrap();
            let len = receiver.recv(&mut buf).unwrap();
            assert_eq!(&buf[..len], b"READY=1\nSTATUS=up");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn other_addresses_are_not_notified() {
        for value in ["", "vsock:2:1234", "relative/path"] {
            assert!(
                Notifier::new(OsStr::new(value)).unwrap().is_none(),
                "{value}"
            );
        }
    }

    #[test]
    fn reloading_carries_the_monotonic_time() {
        let r = reloading();
        let usec: u64 = r
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(usec > 0);
    }
}
