//! Connection slots cannot be taken hostage: the real daemon binary under
//! the two attacks of issue 10, full size (default `max_connections` 512):
//!   * 200 source addresses x 4 connections trickling headers a byte a second;
//!   * 20 addresses x 32 keep-alive holders sending `GET /api/status` every 4 s;
//!
//! attackers bound to 127.0.x.y, legitimate hooks by real `curl --max-time 3`
//! from 127.1.0.1. At least 95 % of the hooks must succeed, and the daemon's
//! descriptors and memory stay bounded.

mod common;
use common::bin;
use common::curl;
use common::raise_fd_limit;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOOKS: usize = 40;

fn spawn(dir: &std::path::Path) -> (Child, SocketAddr) {
    let config = dir.join("banlight.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n[rate_limit]\nburst = 1000\nper_minute = 6000\n[panel]\nbackend = \"record\"\nrecord_path = \"{}\"\n",
            dir.join("state").display(),
            dir.join("frames.jsonl").display()
        ),
    )
    .unwrap();
    let (child, addr) = bin::spawn_listening(&config);
    (child, SocketAddr::from(([127, 0, 0, 1], addr.port())))
}

fn attacker_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, (1 + i / 250) as u8, (1 + i % 250) as u8)
}

async fn connect_from(src: Ipv4Addr, to: SocketAddr) -> Option<tokio::net::TcpStream> {
    let s = tokio::net::TcpSocket::new_v4().ok()?;
    s.bind(SocketAddr::new(IpAddr::V4(src), 0)).ok()?;
    tokio::time::timeout(Duration::from_secs(3), s.connect(to))
        .await
        .ok()?
        .ok()
}

/// Headers one byte a second, forever; reconnects when closed.
async fn trickler(src: Ipv4Addr, to: SocketAddr, stop: Arc<AtomicBool>) {
    let head = b"GET /red?ip=198.51.100.1 HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa\r\n";
    while !stop.load(Ordering::Relaxed) {
        let Some(mut s) = connect_from(src, to).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        for b in head.iter().cycle() {
            if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// A valid status request every 4 s on one kept-alive connection.
async fn holder(src: Ipv4Addr, to: SocketAddr, stop: Arc<AtomicBool>) {
    let req = b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut buf = vec![0u8; 8192];
    while !stop.load(Ordering::Relaxed) {
        let Some(mut s) = connect_from(src, to).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        while !stop.load(Ordering::Relaxed) {
            if s.write_all(req).await.is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => break,
            }
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
    }
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// One real curl hook from 127.1.0.1; true when answered 200 within 3 s.
fn curl_hook(to: SocketAddr, n: usize) -> bool {
    curl::status(
        &["--interface", "127.1.0.1"],
        &format!("http://{to}/red?ip=192.0.2.{}", n % 250 + 1),
    ) == "200"
}

fn status_of(to: SocketAddr) -> String {
    std::process::Command::new("curl")
        .args(["-s", "--max-time", "10", "--interface", "127.1.0.2"])
        .arg(format!("http://{to}/api/status"))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

struct Figures {
    ok: usize,
    max_fds: usize,
    max_rss_kb: u64,
    status: String,
}

fn run_attack(kind: &str, addresses: usize, per_address: usize) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, to) = spawn(dir.path());
    let pid = child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for a in 0..addresses {
        for _ in 0..per_address {
            let stop = stop.clone();
            let src = attacker_ip(a);
            if kind == "trickle" {
                rt.spawn(trickler(src, to, stop));
            } else {
                rt.spawn(holder(src, to, stop));
            }
        }
    }
    // Ramp up until the table is full: the daemon has begun evicting.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut evicting = false;
    while !evicting && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let v: serde_json::Value =
            serde_json::from_str(&status_of(to)).unwrap_or(serde_json::Value::Null);
        evicting = v["requests"]["evicted_connections"].as_u64().unwrap_or(0) > 0;
    }
    let attack_fds = fds(pid);
    assert!(
        evicting,
        "{kind}: the attack never filled the daemon ({attack_fds} fds)"
    );
    let mut ok = 0;
    let mut max_fds = attack_fds;
    let mut max_rss_kb = 0;
    for n in 0..HOOKS {
        if curl_hook(to, n) {
            ok += 1;
        }
        max_fds = max_fds.max(fds(pid));
        max_rss_kb = max_rss_kb.max(rss_kb(pid));
    }
    let status = status_of(to);
    stop.store(true, Ordering::Relaxed);
    rt.shutdown_timeout(Duration::from_secs(1));
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
    report(&format!(
        "{kind} attack ({addresses} addresses x {per_address}): {ok}/{HOOKS} hooks ok, daemon fds max {max_fds}, RSS max {} KiB",
        max_rss_kb
    ));
    Figures {
        ok,
        max_fds,
        max_rss_kb,
        status,
    }
}

/// A figure line: on stderr, and appended to the file `$BANLIGHT_FIGURES`
/// names (`cargo test` hides a passing test's output; CI prints that file).
fn report(line: &str) {
    eprintln!("{line}");
    if let Ok(path) = std::env::var("BANLIGHT_FIGURES") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

fn check(kind: &str, f: &Figures, counter: &str) {
    assert!(
        f.ok * 100 >= HOOKS * 95,
        "{kind}: only {}/{HOOKS} legitimate hooks succeeded",
        f.ok
    );
    // 512 slots, plus evicted or over-cap connections whose close is still
    // queued on a loaded machine (measured here: up to ~90), listener, log,
    // database, control socket and the runtime.
    assert!(f.max_fds < 512 + 256, "{kind}: {} descriptors", f.max_fds);
    assert!(
        f.max_rss_kb < 128 * 1024,
        "{kind}: RSS {} KiB",
        f.max_rss_kb
    );
    let v: serde_json::Value = serde_json::from_str(&f.status).expect("status answers");
    assert!(
        v["requests"][counter].as_u64().unwrap_or(0) > 0,
        "{kind}: status shows what was shed: {}",
        v["requests"]
    );
}

/// Both attacks, one after the other (each needs ~800 client sockets here).
#[test]
fn trickling_or_keep_alive_holders_cannot_lock_hooks_out() {
    if !curl::present() {
        return;
    }
    // The attackers' sockets live in this process: lift the soft fd limit.
    raise_fd_limit();
    let f = run_attack("trickle", 200, 4);
    check("trickle", &f, "evicted_connections");
    let f = run_attack("keep-alive", 20, 32);
    check("keep-alive", &f, "evicted_connections");
}
