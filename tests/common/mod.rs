//! The one test harness, used by every integration test: start the real daemon in-process on 127.0.0.1:0 and talk
//! to it with a minimal HTTP/1.1 client (which can also send malformed input).
#![allow(dead_code)]

pub mod bin;
pub mod curl;

use std::path::Path;
use std::time::{Duration, Instant};

use banlight::config::Config;
use banlight::daemon::{self, Daemon};
use banlight::panel::memory::MemoryPanel;
use banlight::panel::{ButtonEdge, Clock, PanelOutput};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// The real daemon on any panel backend, started in-process on 127.0.0.1:0
/// with a stop signal the test owns (after mini-redis's `server::run`).
pub struct Running {
    pub daemon: Option<Daemon>,
    pub addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

/// The daemon on a memory panel, with a way to press its buttons: what most
/// integration tests need. Everything else comes from [`Running`].
pub struct TestDaemon {
    running: Running,
    pub panel: MemoryPanel,
    pub buttons: mpsc::Sender<ButtonEdge>,
    pub clock: Clock,
}

impl std::ops::Deref for TestDaemon {
    type Target = Running;
    fn deref(&self) -> &Running {
        &self.running
    }
}

/// A config for tests: fast animations, state in `dir`.
pub fn test_config(dir: &Path, extra: &str) -> Config {
    let header_timeout = if extra.contains("header_timeout") {
        ""
    } else {
        "header_timeout = \"500ms\"\n"
    };
    let text = format!(
        "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n{header_timeout}{extra}\n",
        dir.join("state").display()
    );
    let text = if text.contains("[panel]") {
        text
    } else {
        text + "[panel]\nsweep_time = \"200ms\"\nsweep_passes = 1\nlabel_time = \"50ms\"\nevent_display = \"150ms\"\nmarker_hold = \"300ms\"\nmarker_fade = \"100ms\"\n"
    };
    Config::parse(&dir.join("test.toml"), &text).expect("test config")
}

impl Running {
    /// Starts the daemon on `panel`, reading button edges from `rx`.
    pub async fn start(
        config: &Config,
        panel: Box<dyn PanelOutput>,
        clock: Clock,
        rx: mpsc::Receiver<ButtonEdge>,
    ) -> Running {
        let listener = match config.plain_http {
            true => Some(tokio::net::TcpListener::bind(config.listen).await.unwrap()),
            false => None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let daemon = daemon::start(config, listener, panel, clock, rx, async move {
            let _ = stopped.await;
        })
        .await
        .expect("daemon starts");
        let addr = daemon.addr;
        Running {
            daemon: Some(daemon),
            addr,
            stop: Some(stop),
        }
    }

    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.daemon
            .take()
            .unwrap()
            .wait()
            .await
            .expect("clean stop");
    }

    pub async fn get(&self, path: &str) -> Response {
        request(
            self.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        )
        .await
    }

    pub async fn status(&self) -> serde_json::Value {
        let r = self.get("/api/status").await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// Polls `/api/status` until `check` holds (the engine publishes its
    /// state just after it acts), for at most `secs`; returns that status.
    pub async fn status_until<F: FnMut(&serde_json::Value) -> bool>(
        &self,
        secs: u64,
        what: &str,
        mut check: F,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.status().await;
            if check(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for: {what}; status {s}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl TestDaemon {
    pub async fn start(config: &Config) -> TestDaemon {
        let panel = MemoryPanel::new();
        let clock = Clock::start();
        let (buttons, rx) = mpsc::channel(64);
        let running = Running::start(config, Box::new(panel.clone()), clock, rx).await;
        TestDaemon {
            running,
            panel,
            buttons,
            clock,
        }
    }

    pub async fn shutdown(self) {
        self.running.shutdown().await
    }

    pub async fn press(&self, button: banlight::core::buttons::Button, hold_ms: u64) {
        let t = self.clock.now_ms();
        self.buttons
            .send(ButtonEdge {
                button,
                pressed: true,
                t_ms: t,
            })
            .await
            .unwrap();
        self.buttons
            .send(ButtonEdge {
                button,
                pressed: false,
                t_ms: t + hold_ms,
            })
            .await
            .unwrap();
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends raw bytes and reads until the server closes (or 5 s pass).
pub async fn request(addr: std::net::SocketAddr, raw: &str) -> Response {
    request_bytes(addr, raw.as_bytes()).await
}

pub async fn request_bytes(addr: std::net::SocketAddr, raw: &[u8]) -> Response {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(raw).await.expect("send");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    parse_response(&buf)
}

pub fn parse_response(buf: &[u8]) -> Response {
    let text = String::from_utf8_lossy(buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Response {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// Polls `check` every 10 ms until it holds or `secs` pass.
pub async fn eventually<F: FnMut() -> bool>(secs: u64, what: &str, mut check: F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Lifts the soft open-file limit to the hard one (at most 8192), for tests
/// whose process holds many sockets (attackers' ends, idle clients).
pub fn raise_fd_limit() {
    // SAFETY: plain getrlimit/setrlimit on a struct we own.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(8192);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

/// The start of `config_file`'s text, to write changed versions of it.
pub fn base_config(dir: &Path) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n",
        dir.join("state").display()
    )
}

/// A config file `dir/banlight.toml` (an ephemeral loopback port, state in
/// `dir/state`) with `extra` appended: its path and the loaded config.
pub fn config_file(dir: &Path, extra: &str) -> (std::path::PathBuf, Config) {
    let file = dir.join("banlight.toml");
    std::fs::write(&file, base_config(dir) + extra).unwrap();
    let config = Config::load(&file).unwrap();
    (file, config)
}

/// One request on a connection from a chosen loopback address (the daemon
/// limits and rate-limits per address); the answer, or what came within 10 s.
pub async fn request_from(src: [u8; 4], addr: std::net::SocketAddr, raw: &str) -> Response {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind((std::net::Ipv4Addr::from(src), 0).into())
        .unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    parse_response(&buf)
}

/// `[quiet]` from an hour ago to an hour ahead, in local wall-clock time
/// (civil time, wrapping at midnight: an hour added across a DST fall-back
/// could otherwise give the same wall time as now).
pub fn quiet_window_around_now() -> String {
    let now = jiff::Zoned::now().time();
    let hour = jiff::SignedDuration::from_hours(1);
    format!(
        "[quiet]\nfrom = \"{}\"\nto = \"{}\"\n",
        now.wrapping_sub(hour).strftime("%H:%M"),
        now.wrapping_add(hour).strftime("%H:%M")
    )
}
