//! The live page: its assets and JSON, and the Server-Sent Events stream fed
//! from the frames the panel backend gets. Real daemon on 127.0.0.1:0.

mod common;

use std::time::{Duration, Instant};

use banlight::core::buttons::Button;
use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client of `/api/stream`, reading one event at a time.
struct Stream {
    conn: TcpStream,
    buf: Vec<u8>,
    head: Option<String>,
    /// The newest status seen (skipped or not).
    status: Option<Value>,
}

impl Stream {
    async fn open(addr: std::net::SocketAddr) -> Stream {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        // HTTP/1.0: the body is the raw stream until close, no chunk framing.
        conn.write_all(b"GET /api/stream HTTP/1.0\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        Stream {
            conn,
            buf: Vec::new(),
            head: None,
            status: None,
        }
    }

    /// The next `(event, data)`, or `None` when the stream ended.
    async fn next(&mut self, deadline: Instant) -> Option<(String, Value)> {
        loop {
            if self.head.is_none() {
                if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                    self.head = Some(String::from_utf8_lossy(&self.buf[..i]).to_string());
                    self.buf.drain(..i + 4);
                }
            }
            if self.head.is_some() {
                while let Some(i) = find(&self.buf, b"\n\n") {
                    let block = String::from_utf8_lossy(&self.buf[..i]).to_string();
                    self.buf.drain(..i + 2);
                    let mut event = None;
                    let mut data: Option<Value> = None;
                    for line in block.lines() {
                        if let Some(e) = line.strip_prefix("event: ") {
                            event = Some(e.to_string());
                        } else if let Some(d) = line.strip_prefix("data: ") {
                            data = Some(serde_json::from_str(d).expect("data is JSON"));
                        }
                    }
                    if let (Some(e), Some(d)) = (event, data) {
                        if e == "status" {
                            self.status = Some(d.clone());
                        }
                        return Some((e, d));
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "stream: nothing in time");
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(left, self.conn.read(&mut chunk)).await {
                Ok(Ok(0)) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => panic!("stream read: {e}"),
                Err(_) => panic!("stream: nothing in time"),
            }
        }
    }

    /// Reads until `want` holds for an event; returns that event.
    async fn until(&mut self, what: &str, mut want: impl FnMut(&str, &Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.next(deadline).await {
                Some((e, d)) if want(&e, &d) => return d,
                Some(_) => {}
                None => panic!("stream ended before: {what}"),
            }
        }
    }
}

impl Stream {
    /// The newest status once `want` holds for it (it may have come already).
    async fn status_until(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        if let Some(st) = self.status.clone().filter(|st| want(st)) {
            return st;
        }
        self.until(what, |e, st| e == "status" && want(st)).await
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn leds(frame: &Value) -> Vec<[u8; 3]> {
    serde_json::from_value(frame["leds"].clone()).unwrap()
}

#[tokio::test]
async fn the_stream_carries_the_panels_frames_and_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), "")).await;
    let mut s = Stream::open(d.addr).await;
    let first = s.until("a status", |e, _| e == "status").await;
    let head = s.head.clone().unwrap().to_lowercase();
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert_eq!(first["total"], 0);
    assert_eq!(first["routes"]["red"]["count"], 0);
    let at_rest = s.until("the current frame", |e, _| e == "frame").await;
    assert_eq!(
        at_rest["segments"],
        serde_json::json!([0, 0, 0, 0x3F]),
        "   0"
    );
    assert!(leds(&at_rest).iter().all(|c| *c == [0, 0, 0]));

    assert_eq!(d.get("/red?jail=sshd&ip=203.0.113.9").await.status, 200);
    // The sweep's eye in red, as the panel got it.
    let eye = s
        .until("a red sweep frame", |e, f| {
            e == "frame"
                && leds(f)
                    .iter()
                    .any(|c| c[0] >= 100 && c[1] == 0 && c[2] == 0)
        })
        .await;
    let shown: Vec<Vec<[u8; 3]>> = d
        .panel
        .frames()
        .iter()
        .map(|(_, f)| f.leds.iter().map(|c| [c.r, c.g, c.b]).collect())
        .collect();
    assert!(
        shown.contains(&leds(&eye)),
        "the page's frame is one the panel backend got"
    );
    assert_eq!(eye["brightness"], 7);
    let counted = s.status_until("the count", |st| st["total"] == 1).await;
    assert_eq!(counted["routes"]["red"]["count"], 1);
    assert_eq!(counted["last_24h"], 1);
    // At rest again: the red marker pixel and "   1" on the display.
    let rest = s
        .until("the marker and the count", |e, f| {
            e == "frame" && f["segments"] == serde_json::json!([0, 0, 0, 0x06])
        })
        .await;
    let panel_last = d.panel.last().unwrap();
    assert_eq!(panel_last.display.segments(), [0, 0, 0, 0x06]);
    let rest = match leds(&rest).iter().filter(|c| **c != [0, 0, 0]).count() {
        1 => rest,
        // The marker lights as the sweep ends: wait for that frame.
        _ => {
            s.until("the marker pixel alone", |e, f| {
                e == "frame" && leds(f).iter().filter(|c| **c != [0, 0, 0]).count() == 1
            })
            .await
        }
    };
    // (This config fades the marker within 400 ms: red, not its exact level.)
    let marker = leds(&rest)[0];
    assert!(
        marker[0] > 0 && marker[1] == 0 && marker[2] == 0,
        "red marker on LED 0: {marker:?}"
    );

    // Dark: the panel's frame goes black and the status says so.
    d.press(Button::Power, 100).await;
    let dark = s
        .until("the dark frame", |e, f| {
            e == "frame" && f["display_on"] == false
        })
        .await;
    assert!(leds(&dark).iter().all(|c| *c == [0, 0, 0]));
    let st = s
        .status_until("dark in status", |st| st["panel"]["dark"] == true)
        .await;
    assert_eq!(st["total"], 1);
    // Counting goes on while dark, and the page hears of it.
    assert_eq!(d.get("/blue").await.status, 200);
    s.status_until("the count while dark", |st| {
        st["total"] == 2 && st["routes"]["blue"]["count"] == 1
    })
    .await;

    // Shutting down ends the stream at once; nothing waits for it.
    let t = Instant::now();
    d.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "shutdown waited for the open stream: {:?}",
        t.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some((e, _)) = s.next(deadline).await {
        assert!(e == "frame" || e == "status");
    }
}

#[tokio::test]
async fn the_page_and_its_json_are_served_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), "")).await;
    let page = d.get("/").await;
    assert_eq!(page.status, 200);
    let head = page.head.to_lowercase();
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'self'"),
        "{head}"
    );
    assert!(page.body.contains("<script src=\"/app.js\""));
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "no CDN"
    );
    for (path, kind) in [("/app.js", "text/javascript"), ("/app.css", "text/css")] {
        let r = d.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.head.to_lowercase().contains(kind), "{path}: {}", r.head);
        assert!(r.body.len() > 500, "{path} is the real file");
    }
    let post = request(
        d.addr,
        "POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(post.status, 405);
    assert!(
        post.head.to_lowercase().contains("allow: get"),
        "{}",
        post.head
    );

    assert_eq!(
        d.get("/red?jail=sshd&ip=203.0.113.1&source=web-1")
            .await
            .status,
        200
    );
    assert_eq!(d.get("/red?ip=203.0.113.2").await.status, 200);
    let h = d.get("/api/history").await;
    assert_eq!(h.status, 200, "{}", h.body);
    let h = h.json();
    assert_eq!(h["routes"][0]["name"], "red");
    assert_eq!(h["routes"][0]["color"], "#ff0000");
    let day = &h["day"];
    assert_eq!(day["edges"].as_array().unwrap().len(), 145);
    assert_eq!(
        day["counts"].as_array().unwrap().len(),
        4,
        "one row per route"
    );
    // The hooks and this request may straddle a bucket edge (10 minutes, or
    // midnight for the month): count the last two buckets.
    let recent =
        |row: &Value, last: usize| row[last - 1].as_u64().unwrap() + row[last].as_u64().unwrap();
    assert_eq!(recent(&day["counts"][0], 143), 2, "red, now");
    assert_eq!(recent(&day["counts"][1], 143), 0, "blue, now");
    let month = &h["month"];
    assert_eq!(month["edges"].as_array().unwrap().len(), 31);
    assert_eq!(month["labels"].as_array().unwrap().len(), 30);
    assert_eq!(recent(&month["counts"][0], 29), 2, "red, today");
    let now = h["now_ms"].as_u64().unwrap();
    let last_edge = |v: &Value| {
        v["edges"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_u64()
            .unwrap()
    };
    assert!(last_edge(day) > now && last_edge(month) > now);

    let r = d.get("/api/recent").await.json();
    let events = r["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["ip"], "203.0.113.2", "newest first");
    assert_eq!(events[1]["jail"], "sshd");
    assert_eq!(events[1]["source"], "web-1");
    assert_eq!(events[1]["route"], "red");
    assert!(events[1]["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        d.status().await["total"],
        2,
        "reading the page counts nothing"
    );
    d.shutdown().await;
}

#[tokio::test]
async fn with_the_page_off_its_paths_are_404() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), "[web]\nenabled = false\n")).await;
    for path in [
        "/",
        "/app.js",
        "/app.css",
        "/api/stream",
        "/api/history",
        "/api/recent",
    ] {
        let r = d.get(path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
    }
    assert_eq!(d.get("/red").await.status, 200, "hooks still count");
    assert_eq!(d.status().await["total"], 1);
    d.shutdown().await;
}

/// A heartbeat and a silent source's fall to `late` and `down` reach an
/// open page by themselves: no hook, no reload of the page.
#[tokio::test]
async fn heartbeat_states_reach_an_open_stream() {
    const TOKEN: &str = "web1-token-0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(
        dir.path(),
        &format!(
            "[[source]]\nname = \"web-1\"\ntoken = \"{TOKEN}\"\nheartbeat = \"1s\"\ngrace = \"1s\"\n"
        ),
    ))
    .await;
    let mut stream = Stream::open(d.addr).await;
    let st = stream
        .status_until("web-1 listed, never heard", |st| {
            st["heartbeats"]["web-1"]["state"] == "new"
        })
        .await;
    assert_eq!(st["heartbeats"]["web-1"]["period_ms"], 1000, "{st}");
    let body = r#"{"fail2ban": true, "jails": {"sshd": 4}}"#;
    let r = request(
        d.addr,
        &format!(
            "POST /api/heartbeat HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    stream
        .status_until("up on the page", |st| {
            st["heartbeats"]["web-1"]["state"] == "up"
        })
        .await;
    for state in ["late", "down"] {
        stream
            .status_until(state, |st| st["heartbeats"]["web-1"]["state"] == state)
            .await;
    }
    d.shutdown().await;
}
