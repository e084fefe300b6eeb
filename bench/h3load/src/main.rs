//! HTTP/3 load generator: N QUIC connections, each keeping M requests in
//! flight (one stream each, a new one as soon as one completes), for a fixed
//! time. h2load on this machine is built without HTTP/3, and a Python
//! client would cost more CPU than the servers it measures.
//!
//! The server's certificate is not verified (its signature is): this is a
//! load generator for servers on this machine, not a client to trust.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Buf;
use clap::Parser;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// HTTP/3 GET requests per second.
#[derive(Parser, Debug)]
struct Args {
    /// host:port of the server (UDP).
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: SocketAddr,
    /// Request path.
    #[arg(long, default_value = "/")]
    path: String,
    /// Concurrent QUIC connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Requests in flight on each connection.
    #[arg(long, default_value_t = 10)]
    streams: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
}

#[derive(Default)]
struct Outcome {
    requests: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

/// Accepts any certificate; checks the handshake signature with it.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("QUIC is TLS 1.3 only".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config() -> quinn::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("QUIC TLS");
    quinn::ClientConfig::new(Arc::new(quic))
}

/// One request stream after another until `until`.
async fn requests(
    mut send: h3::client::SendRequest<h3_quinn::OpenStreams, bytes::Bytes>,
    uri: http::Uri,
    until: Instant,
) -> Outcome {
    let mut out = Outcome::default();
    while Instant::now() < until {
        let started = Instant::now();
        match request(&mut send, &uri).await {
            Ok(()) => {
                out.requests += 1;
                let us = started.elapsed().as_micros();
                out.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            Err(_) => {
                out.errors += 1;
                return out;
            }
        }
    }
    out
}

async fn request(
    send: &mut h3::client::SendRequest<h3_quinn::OpenStreams, bytes::Bytes>,
    uri: &http::Uri,
) -> Result<(), Box<dyn std::error::Error>> {
    let req = http::Request::get(uri.clone()).body(())?;
    let mut stream = send.send_request(req).await?;
    stream.finish().await?;
    let resp = stream.recv_response().await?;
    while let Some(mut chunk) = stream.recv_data().await? {
        chunk.advance(chunk.remaining());
    }
    if resp.status() != http::StatusCode::OK {
        return Err(format!("status {}", resp.status()).into());
    }
    Ok(())
}

/// One connection with `streams` request loops.
async fn connection(endpoint: quinn::Endpoint, args: Arc<Args>, until: Instant) -> Outcome {
    let failed = Outcome {
        errors: 1,
        ..Outcome::default()
    };
    let Ok(connecting) = endpoint.connect(args.addr, "localhost") else {
        return failed;
    };
    let Ok(conn) = connecting.await else {
        return failed;
    };
    let Ok((mut driver, send)) = h3::client::new(h3_quinn::Connection::new(conn)).await else {
        return failed;
    };
    let drive = tokio::spawn(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
    });
    let uri: http::Uri = format!("https://localhost:{}{}", args.addr.port(), args.path)
        .parse()
        .expect("request URI");
    let loops: Vec<_> = (0..args.streams)
        .map(|_| tokio::spawn(requests(send.clone(), uri.clone(), until)))
        .collect();
    let mut out = Outcome::default();
    for l in loops {
        if let Ok(o) = l.await {
            out.requests += o.requests;
            out.errors += o.errors;
            out.latencies_us.extend(o.latencies_us);
        }
    }
    drop(send);
    drive.abort();
    out
}

fn main() {
    let args = Arc::new(Args::parse());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (outcomes, elapsed) = rt.block_on(async {
        let mut endpoint =
            quinn::Endpoint::client("127.0.0.1:0".parse().expect("address")).expect("endpoint");
        endpoint.set_default_client_config(client_config());
        let started = Instant::now();
        let until = started + Duration::from_secs(args.duration);
        let handles: Vec<_> = (0..args.connections)
            .map(|_| tokio::spawn(connection(endpoint.clone(), args.clone(), until)))
            .collect();
        let mut all = Vec::new();
        for h in handles {
            if let Ok(o) = h.await {
                all.push(o);
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        endpoint.close(0u32.into(), b"");
        (all, elapsed)
    });
    let requests: u64 = outcomes.iter().map(|o| o.requests).sum();
    let errors: u64 = outcomes.iter().map(|o| o.errors).sum();
    let mut lat: Vec<u32> = outcomes.into_iter().flat_map(|o| o.latencies_us).collect();
    lat.sort_unstable();
    let p99 = lat.get(lat.len() * 99 / 100).copied().unwrap_or(0);
    println!("requests {requests}");
    println!("requests_per_sec {:.1}", requests as f64 / elapsed);
    println!("p99_ms {:.3}", f64::from(p99) / 1000.0);
    println!("errors {errors}");
}
