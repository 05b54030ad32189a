//! Frame timing under load (issue 20, item 8). A benchmark that prints
//! figures, not a gate: ignored in `cargo test`, run by
//! `bench/frame_timing.sh`. A panel that busy-waits as the Pi's bit-banging
//! does (each LED frame 319 µs, and a TM1637 update of 2.9 ms whenever the
//! digits change: the gpio-sim figures in docs/install-pi.md) draws while
//! client threads flood hooks over loopback; it prints the intervals between
//! frames against the 16.7 ms of 60 fps, and the hooks' latency.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use banlight::core::scene::Frame;
use banlight::panel::{Clock, PanelError, PanelOutput};
use common::*;
use tokio::sync::mpsc;

const LED_FRAME: Duration = Duration::from_micros(319);
const DISPLAY_UPDATE: Duration = Duration::from_micros(2900);

/// Spins like rppal's busy waits: the thread is held, not asleep.
fn spin(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

struct SpinPanel {
    shown: Arc<Mutex<Vec<Instant>>>,
    last_text: Option<String>,
}

impl PanelOutput for SpinPanel {
    fn show(&mut self, frame: &Frame, _t_ms: u64) -> Result<(), PanelError> {
        spin(LED_FRAME);
        let text = format!("{:?}", frame.display);
        if self.last_text.as_ref() != Some(&text) {
            spin(DISPLAY_UPDATE);
            self.last_text = Some(text);
        }
        self.shown.lock().unwrap().push(Instant::now());
        Ok(())
    }

    fn name(&self) -> &'static str {
        "spin"
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One hook per connection, as fail2ban's curl sends it; latency in µs.
fn hook(addr: SocketAddr, n: u64) -> Option<u64> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).ok()?;
    let req = format!(
        "GET /red?jail=sshd&ip=198.51.{}.{} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        (n / 250) % 250,
        n % 250
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    buf.starts_with(b"HTTP/1.1 200")
        .then(|| t0.elapsed().as_micros() as u64)
}

#[test]
#[ignore = "a benchmark: bench/frame_timing.sh"]
fn frame_timing_under_load() {
    let seconds: u64 = std::env::var("FRAME_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let clients: u64 = std::env::var("FRAME_CLIENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), "max_connections_per_client = 4096\n");
    let shown = Arc::new(Mutex::new(Vec::new()));
    let panel = SpinPanel {
        shown: shown.clone(),
        last_text: None,
    };
    let (_tx, rx) = mpsc::channel(64);
    let d = rt.block_on(Running::start(&config, Box::new(panel), Clock::start(), rx));
    let addr = d.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, next, failed) = (stop.clone(), next.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match hook(addr, next.fetch_add(1, Ordering::Relaxed)) {
                        Some(us) => lat.push(us),
                        None => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let elapsed = start.elapsed();
    let frames: Vec<Instant> = shown
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|t| *t >= start && *t <= start + elapsed)
        .collect();
    rt.block_on(d.shutdown());
    let mut gaps: Vec<u64> = frames
        .windows(2)
        .map(|w| (w[1] - w[0]).as_micros() as u64)
        .collect();
    gaps.sort_unstable();
    lat.sort_unstable();
    let late = gaps.iter().filter(|g| **g > 25_000).count();
    let ms = |us: u64| us as f64 / 1000.0;
    let line = format!(
        "frame timing under load: {clients} hook clients for {:.1} s, {} hooks ({:.0}/s, {} failed), hook p50 {:.2} ms p99 {:.2} ms; {} frames, interval p50 {:.1} ms p99 {:.1} ms max {:.1} ms, {} over 25 ms",
        elapsed.as_secs_f64(),
        lat.len(),
        lat.len() as f64 / elapsed.as_secs_f64(),
        failed.load(Ordering::Relaxed),
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        frames.len(),
        ms(percentile(&gaps, 0.5)),
        ms(percentile(&gaps, 0.99)),
        ms(gaps.last().copied().unwrap_or(0)),
        late
    );
    println!("{line}");
    assert!(frames.len() > 10, "the panel drew: {line}");
    assert!(!lat.is_empty(), "hooks were answered: {line}");
}
