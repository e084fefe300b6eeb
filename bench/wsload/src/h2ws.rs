//! WebSockets over HTTP/2 (RFC 8441): one HTTP/2 connection (the `h2`
//! crate, cleartext with prior knowledge) carrying several WebSockets, each
//! opened with an extended CONNECT and echoing like an HTTP/1.1 one.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use h2::RecvStream;
use h2::client::SendRequest;
use tokio::net::TcpStream;

use crate::{Args, Outcome, frame};

/// One HTTP/2 connection with `streams` WebSockets, each echoing until
/// `until`; an outcome per WebSocket.
pub(crate) async fn connection(args: Rc<Args>, streams: usize, until: Instant) -> Vec<Outcome> {
    let failed = |n: usize| {
        (0..n)
            .map(|_| {
                let mut o = Outcome::new();
                o.errors = 1;
                o
            })
            .collect()
    };
    let Ok(send) = open(&args.addr).await else {
        return failed(streams);
    };
    let handles: Vec<_> = (0..streams)
        .map(|_| tokio::task::spawn_local(websocket(args.clone(), send.clone(), until)))
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.push(h.await.unwrap_or_else(|_| failed(1).remove(0)));
    }
    all
}

/// The connection, once the server's SETTINGS allow extended CONNECT.
async fn open(addr: &str) -> Result<SendRequest<Bytes>, Box<dyn std::error::Error>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (send, conn) = h2::client::handshake(tcp).await?;
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    let mut send = send.ready().await?;
    let deadline = Instant::now() + Duration::from_secs(2);
    while !send.is_extended_connect_protocol_enabled() {
        if Instant::now() > deadline {
            return Err("the server did not send SETTINGS_ENABLE_CONNECT_PROTOCOL".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        send = send.ready().await?;
    }
    Ok(send)
}

/// One WebSocket on its own stream: the extended CONNECT, then echoes.
async fn websocket(args: Rc<Args>, send: SendRequest<Bytes>, until: Instant) -> Outcome {
    let mut out = Outcome::new();
    let Ok((mut tx, mut rx)) = connect(&args, send).await else {
        out.errors += 1;
        return out;
    };
    let msg = Bytes::from(frame(args.size));
    let mut buf = BytesMut::new();
    while Instant::now() < until {
        let t = Instant::now();
        if tx.send_data(msg.clone(), false).is_err() {
            out.errors += 1;
            return out;
        }
        match read_frame(&mut rx, &mut buf).await {
            Some(n) if n == args.size => out.round_trip(t),
            _ => {
                out.errors += 1;
                return out;
            }
        }
    }
    let close = Bytes::from_static(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);
    let _ = tx.send_data(close, true);
    out
}

async fn connect(
    args: &Args,
    mut send: SendRequest<Bytes>,
) -> Result<(h2::SendStream<Bytes>, RecvStream), Box<dyn std::error::Error>> {
    let req = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(format!("http://{}{}", args.addr, args.path))
        .header("sec-websocket-version", "13")
        .extension(h2::ext::Protocol::from("websocket"))
        .body(())?;
    send = send.ready().await?;
    let (response, tx) = send.send_request(req, false)?;
    let response = response.await?;
    if response.status() != http::StatusCode::OK {
        return Err(format!("handshake refused: {}", response.status()).into());
    }
    Ok((tx, response.into_body()))
}

/// Reads one unmasked server frame out of the stream's DATA; returns its
/// payload length (None when the stream ended or a close came).
async fn read_frame(rx: &mut RecvStream, buf: &mut BytesMut) -> Option<usize> {
    loop {
        if let Some((header, len)) = parse(buf) {
            if buf[0] & 0x0f == 0x8 {
                return None;
            }
            buf.advance(header + len);
            return Some(len);
        }
        let data = rx.data().await?.ok()?;
        let _ = rx.flow_control().release_capacity(data.len());
        buf.extend_from_slice(&data);
    }
}

/// The header length and payload length of a complete frame at the start
/// of `buf`.
fn parse(buf: &[u8]) -> Option<(usize, usize)> {
    let short = *buf.get(1)? & 0x7f;
    let (header, len) = match short {
        126 => (
            4,
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
        ),
        127 => (
            10,
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
        ),
        n => (2, n as usize),
    };
    (buf.len() >= header + len).then_some((header, len))
}
