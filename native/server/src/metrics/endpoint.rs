//! The `/metrics` HTTP endpoint: a small blocking server on its own thread
//! (a scrape every few seconds needs nothing more), answering `GET /metrics`
//! with the rendered region and anything else with 404.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::region::Region;
use super::render::{ServerCounts, render};

/// Starts serving `region` on `addr`; returns the bound address.
pub fn start(
    addr: &str,
    region: Arc<Region>,
    counts: Arc<Mutex<ServerCounts>>,
) -> Result<std::net::SocketAddr, String> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| format!("cannot bind the metrics endpoint to {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("cormorant-metrics".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let body = {
                    let counts = counts.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    render(&region, &counts)
                };
                let _ = answer(conn, &body);
            }
        })
        .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
    Ok(bound)
}

fn answer(mut conn: TcpStream, metrics: &str) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Skip the headers: nothing in them matters here.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics,
        ),
        _ => ("404 Not Found", "text/plain; charset=utf-8", "not found\n"),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    if method != "HEAD" {
        conn.write_all(body.as_bytes())?;
    }
    conn.flush()
}
