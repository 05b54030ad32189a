//! Mixed load for bench/mixed.sh: valid hooks from many "server" loopback
//! addresses, junk from many "scanner" addresses (unknown paths, bad tokens,
//! oversized headers, garbage, half-open connections), and a monitor polling
//! /api/status throughout. Prints figures; exits 1 if any check fails.
//!
//!     mixedload ADDR TOKEN VALID JUNK

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn connect_from(src: Ipv4Addr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind((src, 0).into())?;
    sock.connect(addr).await
}

/// Status code of the answer, 0 if the connection closed without one.
async fn send(src: Ipv4Addr, addr: SocketAddr, raw: &[u8]) -> u16 {
    let Ok(mut s) = connect_from(src, addr).await else {
        return 0;
    };
    if s.write_all(raw).await.is_err() {
        return 0;
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    std::str::from_utf8(buf.get(9..12).unwrap_or(b"000"))
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn status_total(body: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(body.split("\r\n\r\n").nth(1)?).ok()?;
    v["total"].as_u64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: mixedload ADDR TOKEN VALID JUNK");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse().expect("ADDR");
    assert!(addr.ip().is_loopback(), "load tests only target loopback");
    let token = args[2].clone();
    let valid: u64 = args[3].parse().expect("VALID");
    let junk: u64 = args[4].parse().expect("JUNK");
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));

    // The monitor: /api/status every 50 ms from its own address.
    let monitor = {
        let done = done.clone();
        tokio::spawn(async move {
            let (mut polls, mut failures, mut worst) = (0u64, 0u64, Duration::ZERO);
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = async {
                    let mut s = connect_from(Ipv4Addr::new(127, 0, 9, 9), addr).await.ok()?;
                    s.write_all(
                        b"GET /api/status HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n",
                    )
                    .await
                    .ok()?;
                    let mut body = String::new();
                    s.read_to_string(&mut body).await.ok()?;
                    status_total(&body)
                };
                match tokio::time::timeout(Duration::from_secs(2), ok).await {
                    Ok(Some(_)) => {}
                    _ => failures += 1,
                }
                worst = worst.max(t.elapsed());
                polls += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (polls, failures, worst)
        })
    };

    // Half-open connections from scanners: a partial request, then silence.
    let mut half_open = Vec::new();
    for i in 0..100u8 {
        if let Ok(mut s) = connect_from(Ipv4Addr::new(127, 2, 200, i), addr).await {
            let _ = s.write_all(b"GET /red HTTP/1.1\r\nHost: slow").await;
            half_open.push(s);
        }
    }

    let next_valid = Arc::new(AtomicU64::new(0));
    let counted = Arc::new(AtomicU64::new(0));
    let valid_failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (next, counted, failed, token) = (
            next_valid.clone(),
            counted.clone(),
            valid_failed.clone(),
            token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= valid {
                    break;
                }
                let server = Ipv4Addr::new(127, 0, 1, (n % 100) as u8 + 1);
                let req = format!(
                    "GET /red?jail=sshd&ip=198.18.{}.{} HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
                    n / 256,
                    n % 256
                );
                match send(server, addr, req.as_bytes()).await {
                    200 => counted.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let next_junk = Arc::new(AtomicU64::new(0));
    let junk_accepted = Arc::new(AtomicU64::new(0));
    let junk_by_status = Arc::new(std::sync::Mutex::new(
        std::collections::BTreeMap::<u16, u64>::new(),
    ));
    for _ in 0..16 {
        let (next, accepted, by_status) = (
            next_junk.clone(),
            junk_accepted.clone(),
            junk_by_status.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= junk {
                    break;
                }
                // 50 scanners hammering: each soon exhausts its burst and gets 429
                let scanner = Ipv4Addr::new(127, 2, 0, (n % 50) as u8 + 1);
                let raw: Vec<u8> = match n % 4 {
                    0 => b"GET /wp-login.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
                    1 => format!("GET /red?ip=203.0.113.{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer guess-{n}\r\nConnection: close\r\n\r\n", n % 250).into_bytes(),
                    2 => format!("GET /red HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\nConnection: close\r\n\r\n", "z".repeat(20_000)).into_bytes(),
                    _ => (0..300u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(n as u32) >> 24) as u8).collect(),
                };
                let status = send(scanner, addr, &raw).await;
                if (200..300).contains(&status) {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                *by_status.lock().unwrap().entry(status).or_default() += 1;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let elapsed = started.elapsed();
    drop(half_open);
    done.store(true, Ordering::Relaxed);
    let (polls, poll_failures, worst) = monitor.await.expect("monitor");

    let mut s = connect_from(Ipv4Addr::new(127, 0, 9, 9), addr)
        .await
        .expect("status");
    s.write_all(b"GET /api/status HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    let total = status_total(&body).expect("status total");

    let counted = counted.load(Ordering::Relaxed);
    let valid_failed = valid_failed.load(Ordering::Relaxed);
    let junk_accepted = junk_accepted.load(Ordering::Relaxed);
    println!("valid_sent: {valid}");
    println!("valid_counted: {counted}");
    println!("valid_failed: {valid_failed}");
    println!("stored_total: {total}");
    println!("junk_sent: {junk} (+100 half-open connections)");
    println!("junk_accepted: {junk_accepted}");
    println!("junk_by_status: {:?}", junk_by_status.lock().unwrap());
    println!(
        "status_polls: {polls}, failed: {poll_failures}, slowest: {:.1} ms",
        worst.as_secs_f64() * 1000.0
    );
    println!("elapsed_s: {:.2}", elapsed.as_secs_f64());
    let checks = [
        (
            "every valid hook counted",
            counted == valid && valid_failed == 0,
        ),
        (
            "counted exactly once (stored total = valid)",
            total == valid,
        ),
        ("every junk request refused", junk_accepted == 0),
        (
            "status answered throughout",
            poll_failures == 0 && polls > 0,
        ),
    ];
    let failed: Vec<&str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| *name)
        .collect();
    println!(
        "{} passed, {} failed",
        checks.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        println!("FAILED: {}", failed.join("; "));
        std::process::exit(1);
    }
}
