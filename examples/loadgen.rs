//! Load generator for bench/run.sh: fires hooks at a banlight on loopback,
//! a new TCP connection per request (as fail2ban's curl does), and prints
//! events/s and latency percentiles.
//!
//!     loadgen ADDR CONCURRENCY SECONDS

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: loadgen ADDR CONCURRENCY SECONDS");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse().expect("ADDR like 127.0.0.1:8080");
    assert!(addr.ip().is_loopback(), "load tests only target loopback");
    let concurrency: usize = args[2].parse().expect("CONCURRENCY");
    let seconds: u64 = args[3].parse().expect("SECONDS");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let next_ip = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let next_ip = next_ip.clone();
            tokio::spawn(async move {
                let mut latencies_us: Vec<u32> = Vec::new();
                let (mut counted, mut errors) = (0u64, 0u64);
                let mut buf = Vec::with_capacity(512);
                while Instant::now() < deadline {
                    let n = next_ip.fetch_add(1, Ordering::Relaxed);
                    // distinct (jail, ip) pairs from documentation ranges, so
                    // dedupe never drops one
                    let req = format!(
                        "GET /red?jail=bench{}&ip=198.18.{}.{} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n",
                        n / 65536,
                        (n / 256) % 256,
                        n % 256
                    );
                    let t0 = Instant::now();
                    let ok = async {
                        let mut s = TcpStream::connect(addr).await?;
                        s.write_all(req.as_bytes()).await?;
                        buf.clear();
                        s.read_to_end(&mut buf).await?;
                        Ok::<bool, std::io::Error>(buf.starts_with(b"HTTP/1.1 200") && buf.windows(14).any(|w| w == b"\"counted\":true"))
                    }
                    .await;
                    latencies_us.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    match ok {
                        Ok(true) => counted += 1,
                        _ => errors += 1,
                    }
                }
                (latencies_us, counted, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let (mut counted, mut errors) = (0, 0);
    for t in tasks {
        let (l, c, e) = t.await.expect("task");
        all.extend(l);
        counted += c;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!("requests: {}", all.len());
    println!("counted: {counted}");
    println!("errors: {errors}");
    println!("events_per_s: {:.0}", counted as f64 / elapsed);
    println!("p50_ms: {:.2}", pct(0.50));
    println!("p99_ms: {:.2}", pct(0.99));
    println!(
        "max_ms: {:.2}",
        all.last().copied().unwrap_or(0) as f64 / 1000.0
    );
}
