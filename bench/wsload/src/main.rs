//! WebSocket echo load generator: N WebSockets, each sending a message and
//! waiting for its echo, for a fixed time. Written against the wire format
//! directly (client frames masked, server frames read back), so the client
//! costs far less CPU per round trip than the servers it measures.
//!
//! Over HTTP/1.1 each WebSocket is a connection upgraded with `101`; with
//! `--http2` each is a stream of an HTTP/2 connection opened with an
//! extended CONNECT (RFC 8441), `--streams` of them per connection.

mod h2ws;

use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// WebSocket echo round trips per second.
#[derive(Parser, Debug)]
pub(crate) struct Args {
    /// host:port of the server.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub(crate) addr: String,
    /// Request path of the echo endpoint.
    #[arg(long, default_value = "/")]
    pub(crate) path: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Message size in bytes (text messages of 'x').
    #[arg(long, default_value_t = 64)]
    pub(crate) size: usize,
    /// Open the WebSockets over HTTP/2 cleartext (prior knowledge), with
    /// RFC 8441's extended CONNECT.
    #[arg(long)]
    http2: bool,
    /// With --http2: WebSockets per HTTP/2 connection (`--connections`
    /// counts the WebSockets).
    #[arg(long, default_value_t = 1)]
    streams: usize,
}

pub(crate) struct Outcome {
    pub(crate) round_trips: u64,
    pub(crate) errors: u64,
    pub(crate) latencies_us: Vec<u32>,
}

impl Outcome {
    pub(crate) fn new() -> Self {
        Self {
            round_trips: 0,
            errors: 0,
            latencies_us: Vec::new(),
        }
    }

    /// One echo came back, `started` after its message was sent.
    pub(crate) fn round_trip(&mut self, started: Instant) {
        self.round_trips += 1;
        self.latencies_us
            .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
}

async fn handshake(addr: &str, path: &str) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other("handshake refused"));
    }
    Ok(s)
}

/// A masked client text frame carrying `size` bytes of 'x'.
pub(crate) fn frame(size: usize) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut f = vec![0x81];
    if size < 126 {
        f.push(0x80 | size as u8);
    } else if size <= 0xffff {
        f.push(0x80 | 126);
        f.extend_from_slice(&(size as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(size as u64).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    f.extend((0..size).map(|i| b'x' ^ mask[i % 4]));
    f
}

/// Reads one unmasked server frame; returns its payload length.
async fn read_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await?;
    if h[0] & 0x0f == 0x8 {
        return Err(std::io::Error::other("closed by server"));
    }
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await?;
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).await?;
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    buf.resize(len, 0);
    s.read_exact(buf).await?;
    Ok(len)
}

async fn client(args: Rc<Args>, until: Instant) -> Outcome {
    let mut out = Outcome::new();
    let Ok(mut s) = handshake(&args.addr, &args.path).await else {
        out.errors += 1;
        return out;
    };
    let msg = frame(args.size);
    let mut buf = Vec::new();
    while Instant::now() < until {
        let t = Instant::now();
        if s.write_all(&msg).await.is_err() {
            out.errors += 1;
            return out;
        }
        match read_frame(&mut s, &mut buf).await {
            Ok(n) if n == args.size => out.round_trip(t),
            _ => {
                out.errors += 1;
                return out;
            }
        }
    }
    // A clean close: masked close frame with code 1000.
    let _ = s.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]).await;
    out
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration);
    let args = Rc::new(args);
    let outcomes = rt.block_on(async {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let mut all = Vec::new();
                if args.http2 {
                    let per = args.streams.max(1);
                    let handles: Vec<_> = (0..args.connections.div_ceil(per))
                        .map(|i| {
                            let n = per.min(args.connections - i * per);
                            tokio::task::spawn_local(h2ws::connection(args.clone(), n, until))
                        })
                        .collect();
                    for h in handles {
                        if let Ok(o) = h.await {
                            all.extend(o);
                        }
                    }
                    return all;
                }
                let handles: Vec<_> = (0..args.connections)
                    .map(|_| tokio::task::spawn_local(client(args.clone(), until)))
                    .collect();
                for h in handles {
                    if let Ok(o) = h.await {
                        all.push(o);
                    }
                }
                all
            })
            .await
    });
    let elapsed = started.elapsed().as_secs_f64();
    let round_trips: u64 = outcomes.iter().map(|o| o.round_trips).sum();
    let errors: u64 = outcomes.iter().map(|o| o.errors).sum();
    let mut lat: Vec<u32> = outcomes.into_iter().flat_map(|o| o.latencies_us).collect();
    lat.sort_unstable();
    let p99 = lat.get(lat.len() * 99 / 100).copied().unwrap_or(0);
    println!("round_trips {round_trips}");
    println!("round_trips_per_sec {:.1}", round_trips as f64 / elapsed);
    println!("p99_ms {:.3}", f64::from(p99) / 1000.0);
    println!("errors {errors}");
}
