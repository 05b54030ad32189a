//! TLS load figures for bench/tls.sh: with a new connection per request at
//! CONCURRENCY clients, for SECONDS each: hooks/s over plain HTTP, TLS
//! handshakes/s (connect + handshake + close), and hooks/s over TLS.
//! The client verifies the appliance's self-signed certificate as its only
//! root (name "banlight"), which is what pinning its key amounts to.
//!
//!     tlsload PLAIN_ADDR TLS_ADDR CERT_PEM CONCURRENCY SECONDS

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    PlainHooks,
    Handshakes,
    TlsHooks,
}

async fn hook<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, n: u64, phase: u8) -> bool {
    let req = format!(
        "GET /red?jail=tls{phase}x{}&ip=198.18.{}.{} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n",
        n / 65536,
        (n / 256) % 256,
        n % 256
    );
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = Vec::with_capacity(512);
    // A peer closing without close_notify still delivered its answer.
    let _ = s.read_to_end(&mut buf).await;
    buf.starts_with(b"HTTP/1.1 200") && buf.windows(14).any(|w| w == b"\"counted\":true")
}

async fn run(
    phase: Phase,
    addr: SocketAddr,
    connector: tokio_rustls::TlsConnector,
    concurrency: usize,
    seconds: u64,
) -> (u64, u64, f64) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let next = next.clone();
            let connector = connector.clone();
            tokio::spawn(async move {
                let (mut ok, mut errors) = (0u64, 0u64);
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Ok(tcp) = TcpStream::connect(addr).await else {
                        errors += 1;
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    let good = match phase {
                        Phase::PlainHooks => hook(tcp, n, 0).await,
                        Phase::Handshakes | Phase::TlsHooks => {
                            let name = ServerName::try_from("banlight").expect("name");
                            match connector.connect(name, tcp).await {
                                Ok(mut tls) if phase == Phase::Handshakes => {
                                    let _ = tls.shutdown().await;
                                    true
                                }
                                Ok(tls) => hook(tls, n, 1).await,
                                Err(_) => false,
                            }
                        }
                    };
                    if good {
                        ok += 1
                    } else {
                        errors += 1
                    }
                }
                (ok, errors)
            })
        })
        .collect();
    let (mut ok, mut errors) = (0, 0);
    for t in tasks {
        let (o, e) = t.await.expect("task");
        ok += o;
        errors += e;
    }
    (ok, errors, started.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!("usage: tlsload PLAIN_ADDR TLS_ADDR CERT_PEM CONCURRENCY SECONDS");
        std::process::exit(2);
    }
    let plain: SocketAddr = args[1].parse().expect("PLAIN_ADDR");
    let tls: SocketAddr = args[2].parse().expect("TLS_ADDR");
    assert!(
        plain.ip().is_loopback() && tls.ip().is_loopback(),
        "load tests only target loopback"
    );
    let cert = CertificateDer::from_pem_file(&args[3]).expect("CERT_PEM");
    let concurrency: usize = args[4].parse().expect("CONCURRENCY");
    let seconds: u64 = args[5].parse().expect("SECONDS");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("certificate");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    for (phase, addr, what) in [
        (Phase::PlainHooks, plain, "plain_hooks_per_s"),
        (Phase::Handshakes, tls, "tls_handshakes_per_s"),
        (Phase::TlsHooks, tls, "tls_hooks_per_s"),
    ] {
        let (ok, errors, secs) = run(phase, addr, connector.clone(), concurrency, seconds).await;
        println!(
            "{what}: {:.0}  (ok {ok}, errors {errors}, {secs:.1}s, {concurrency} clients, new connection each)",
            ok as f64 / secs
        );
    }
}
