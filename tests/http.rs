//! The real daemon on 127.0.0.1:0 with an in-memory panel, driven over HTTP.

mod common;

use banlight::core::buttons::Button;
use banlight::core::color::Rgb;
use common::*;

#[tokio::test]
async fn hooks_count_and_status_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), "")).await;
    let r = d.get("/red").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r
        .head
        .to_lowercase()
        .contains("content-type: application/json"));
    assert_eq!(
        r.json(),
        serde_json::json!({"route": "red", "count": 1, "total": 1, "counted": true})
    );
    let r = d.get("/red?jail=sshd&ip=203.0.113.9&failures=5").await;
    assert_eq!(r.json()["count"], 2);
    let body = "jail=wordpress&ip=2001%3Adb8%3A%3A1&source=web-1";
    let r = request(
        d.addr,
        &format!(
            "POST /blue HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["total"], 3);
    let s = d.status().await;
    assert_eq!(s["total"], 3);
    assert_eq!(s["last_24h"], 3);
    assert_eq!(s["routes"]["red"]["count"], 2);
    assert_eq!(s["routes"]["red"]["last_24h"], 2);
    assert_eq!(s["routes"]["blue"]["count"], 1);
    assert_eq!(s["routes"]["green"]["count"], 0);
    assert!(s["routes"]["green"]["last_seen"].is_null());
    let seen = s["routes"]["red"]["last_seen"].as_str().unwrap();
    assert!(
        seen.len() == 24 && seen.ends_with('Z') && seen.starts_with("20"),
        "{seen}"
    );
    assert_eq!(s["mode"], "total");
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(s["uptime_s"].is_u64());
    let events = d
        .daemon
        .as_ref()
        .unwrap()
        .ledger
        .events(Default::default())
        .await;
    assert!(events.unwrap().is_empty(), "limit 0 lists nothing");
    let q = banlight::ledger::EventQuery {
        since_ms: 0,
        route: Some("blue".into()),
        limit: 10,
        ..Default::default()
    };
    let events = d.daemon.as_ref().unwrap().ledger.events(q).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].jail.as_deref(), Some("wordpress"));
    assert_eq!(events[0].ip.as_deref(), Some("2001:db8::1"));
    assert_eq!(events[0].source.as_deref(), Some("web-1"));
    d.shutdown().await;
}

#[tokio::test]
async fn scanner_traffic_is_refused_and_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), "")).await;
    // `/` is the live page (tests/web.rs); with `[web] enabled = false`, 404.
    for path in [
        "/favicon.ico",
        "/wp-login.php",
        "/red/",
        "/red/x",
        "/api",
        "/api/foo",
        "/RED",
        "/%72ed",
        "/../etc/passwd",
    ] {
        let r = d.get(path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert!(r.json()["error"].is_string());
    }
    for method in ["PUT", "DELETE", "PATCH", "OPTIONS"] {
        let r = request(d.addr, &format!("{method} /red HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")).await;
        assert_eq!(r.status, 405, "{method}");
        assert!(
            r.head.to_lowercase().contains("allow: get, post"),
            "{}",
            r.head
        );
    }
    let r = request(
        d.addr,
        "POST /api/status HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 405);
    for bad in [
        "/red?ip=999.1.1.1",
        "/red?ip=",
        "/red?ip=1.2.3.4%00",
        "/red?jail=ss%20hd",
        "/red?jail=",
        "/red?failures=-1",
        "/red?source=%3Cscript%3E",
    ] {
        let r = d.get(bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    assert_eq!(d.status().await["total"], 0, "nothing above counted");
    d.shutdown().await;
}

#[tokio::test]
async fn oversized_and_malformed_requests_get_4xx_and_serving_continues() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), "")).await;
    let long_uri = format!("/red?jail={}", "a".repeat(10_000));
    assert_eq!(d.get(&long_uri).await.status, 414);
    let huge_header = format!(
        "GET /red HTTP/1.1\r\nHost: t\r\nX-Junk: {}\r\nConnection: close\r\n\r\n",
        "b".repeat(40_000)
    );
    assert_eq!(request(d.addr, &huge_header).await.status, 431);
    let big = "ip=1.2.3.4&".repeat(500);
    let r = request(
        d.addr,
        &format!("POST /red HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{big}", big.len()),
    )
    .await;
    assert_eq!(r.status, 413);
    // a chunked body (no Content-Length) over the limit
    let chunk = "a".repeat(0x2000);
    let r = request(
        d.addr,
        &format!("POST /red HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n2000\r\n{chunk}\r\n0\r\n\r\n"),
    )
    .await;
    assert_eq!(r.status, 413);
    let r = request(d.addr, "POST /red HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}").await;
    assert_eq!(r.status, 415);
    // raw garbage, binary junk, a half request that hangs up
    let junk: Vec<u8> = (0..2000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let r = request_bytes(d.addr, &junk).await;
    assert!(r.status == 400 || r.status == 0, "{}", r.status);
    assert_eq!(request(d.addr, "GARBAGE\r\n\r\n").await.status, 400);
    {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(d.addr).await.unwrap();
        s.write_all(b"GET /red HT").await.unwrap();
    }
    assert_eq!(d.status().await["total"], 0);
    assert_eq!(d.get("/red").await.status, 200, "still serving");
    d.shutdown().await;
}

#[tokio::test]
async fn slow_client_is_cut_off_by_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), "")).await;
    let mut s = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    s.write_all(b"GET /red HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the connection");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert_eq!(d.status().await["total"], 0);
    d.shutdown().await;
}

#[tokio::test]
async fn a_full_table_evicts_the_oldest_idle_connection_for_a_new_one() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    // A header timeout far longer than the test: only eviction frees a slot.
    let d = TestDaemon::start(&test_config(
        dir.path(),
        "max_connections = 2\nheader_timeout = \"60s\"",
    ))
    .await;
    let mut a = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    let _b = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    eventually(10, "both idle connections hold a slot", || {
        d.daemon.as_ref().unwrap().state.slots.in_use() == 2
    })
    .await;
    let r = d.get("/red").await;
    assert_eq!(r.status, 200, "served at once by evicting an idle holder");
    // The oldest idle one (a) was closed for it.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), a.read(&mut buf))
        .await
        .expect("the evicted connection is closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let status = d.status().await;
    assert!(status["requests"]["evicted_connections"].as_u64().unwrap() >= 1);
    d.shutdown().await;
}

#[tokio::test]
async fn one_address_cannot_hold_every_slot() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(
        dir.path(),
        // long enough that the two idle connections are not timed out (and
        // counted as dropped too) on a slow machine
        "max_connections_per_client = 2\nheader_timeout = \"30s\"",
    ))
    .await;
    let addr = d.addr;
    let connect_from = |last: u8| async move {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(std::net::SocketAddr::from(([127, 0, 0, last], 0)))
            .unwrap();
        sock.connect(addr).await.unwrap()
    };
    let _a = connect_from(41).await;
    let _b = connect_from(41).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let mut third = connect_from(41).await;
    let mut buf = Vec::new();
    let started = std::time::Instant::now();
    let n = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        third.read_to_end(&mut buf),
    )
    .await;
    assert!(
        matches!(n, Ok(Ok(0)) | Ok(Err(_))),
        "closed at once, unanswered: {n:?} {buf:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // another address is served meanwhile
    assert_eq!(d.get("/red").await.status, 200);
    assert_eq!(d.status().await["requests"]["dropped_connections"], 1);
    d.shutdown().await;
}

#[tokio::test]
async fn repeated_bans_are_deduplicated_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), "dedupe_window = \"10m\"")).await;
    let counted = |r: Response| r.json()["counted"].as_bool().unwrap();
    assert!(counted(d.get("/red?jail=sshd&ip=203.0.113.9").await));
    assert!(!counted(d.get("/red?jail=sshd&ip=203.0.113.9").await));
    assert!(!counted(
        d.get("/red?ip=203.0.113.9&jail=sshd&failures=0").await
    ));
    assert!(counted(d.get("/red?jail=sshd&ip=203.0.113.10").await));
    assert!(counted(d.get("/red?jail=nginx&ip=203.0.113.9").await));
    assert!(counted(d.get("/blue?jail=sshd&ip=203.0.113.9").await));
    // the same address written two ways is one address
    assert!(counted(d.get("/red?jail=sshd&ip=2001:db8:0:0::1").await));
    assert!(!counted(d.get("/red?jail=sshd&ip=2001:db8::1").await));
    // without an ip every request counts
    assert!(counted(d.get("/green").await));
    assert!(counted(d.get("/green").await));
    let r = d.get("/red?jail=sshd&ip=203.0.113.9").await.json();
    assert_eq!(
        (r["count"].clone(), r["total"].clone()),
        (4.into(), 7.into())
    );
    // an answer that did not count says why
    assert_eq!(r["reason"], "duplicate", "{r}");
    let first = d.get("/red?id=ev-1").await.json();
    assert_eq!(first["counted"], true);
    assert!(first.get("reason").is_none(), "{first}");
    let again = d.get("/red?id=ev-1").await.json();
    assert_eq!(
        (again["counted"].clone(), again["reason"].clone()),
        (false.into(), "already counted".into()),
        "{again}"
    );
    d.shutdown().await;
    // after a restart the window still holds
    let d = TestDaemon::start(&test_config(dir.path(), "dedupe_window = \"10m\"")).await;
    assert!(!counted(d.get("/red?jail=sshd&ip=203.0.113.9").await));
    assert_eq!(d.status().await["total"], 8);
    d.shutdown().await;
}

#[tokio::test]
async fn counts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), "");
    let d = TestDaemon::start(&config).await;
    for _ in 0..5 {
        assert_eq!(d.get("/purple").await.status, 200);
    }
    d.shutdown().await;
    let d = TestDaemon::start(&config).await;
    let s = d.status().await;
    assert_eq!(s["routes"]["purple"]["count"], 5);
    assert_eq!(s["routes"]["purple"]["last_24h"], 5);
    assert_eq!(d.get("/purple").await.json()["count"], 6);
    d.shutdown().await;
}

fn colour_only(frame_leds: &[Rgb], color: Rgb) -> bool {
    // every lit LED is a scaled copy of `color`
    frame_leds.iter().all(|c| {
        c.is_black()
            || ((color.r == 0) == (c.r == 0)
                && (color.g == 0) == (c.g == 0)
                && (color.b == 0) == (c.b == 0))
    })
}

#[tokio::test]
async fn frames_show_the_route_colour_then_the_count() {
    let dir = tempfile::tempdir().unwrap();
    // A 1 s sweep (the tests' usual is 200 ms): the eye is on LED 7 for
    // about 130 ms, so a frame late on a loaded machine still catches it.
    let panel = "[panel]\nsweep_time = \"1s\"\nsweep_passes = 1\nlabel_time = \"50ms\"\n\
                 event_display = \"150ms\"\nmarker_hold = \"300ms\"\nmarker_fade = \"100ms\"\n";
    let d = TestDaemon::start(&test_config(dir.path(), panel)).await;
    d.get("/blue").await;
    let panel = d.panel.clone();
    let marker_only = |leds: &[Rgb]| {
        leds.iter()
            .enumerate()
            .all(|(i, c)| (i == 2) != c.is_black())
    };
    eventually(5, "the sweep ends on blue's marker pixel", || {
        panel.last().is_some_and(|f| marker_only(&f.leds))
    })
    .await;
    let frames = d.panel.frames();
    let lit: Vec<_> = frames
        .iter()
        .filter(|(_, f)| f.leds.iter().any(|c| !c.is_black()))
        .collect();
    assert!(lit
        .iter()
        .all(|(_, f)| colour_only(&f.leds, Rgb::new(0, 0, 255))));
    assert!(
        lit.iter().any(|(_, f)| f.leds[0].b >= 230),
        "the eye starts on LED 0"
    );
    assert!(
        lit.iter().any(|(_, f)| f.leds[7].b > 200),
        "the eye reaches LED 7"
    );
    assert!(
        frames.iter().any(|(_, f)| f.display.to_string() == "bLUE"),
        "route label flashes"
    );
    assert!(
        frames.iter().any(|(_, f)| f.display.to_string() == "   1"),
        "then the count"
    );
    // animated, in time order (the 16 ms frame schedule itself is unit-tested
    // in core::scene; a loaded CI machine may drop a few frames here)
    let times: Vec<u64> = lit.iter().map(|(t, _)| *t).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert!(
        lit.len() >= 6,
        "an animated sweep, got {} frames: {times:?}",
        lit.len()
    );
    // then the marker rests on blue's LED 2, and fades out (marker_hold 300 ms)
    eventually(5, "marker fades out", || {
        panel
            .last()
            .is_some_and(|f| f.leds.iter().all(|c| c.is_black()))
    })
    .await;
    // idle: no more frames are drawn
    let n = d.panel.frames().len();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(d.panel.frames().len(), n, "no frames while idle");
    d.shutdown().await;
}

#[tokio::test]
async fn buttons_cycle_modes_darken_and_shut_down() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("powered-off");
    let extra = format!("shutdown_command = \"touch {}\"", flag.display());
    let d = TestDaemon::start(&test_config(dir.path(), &extra)).await;
    d.get("/red").await;
    d.press(Button::Mode, 100).await;
    let addr = d.addr;
    let mut mode = String::new();
    for _ in 0..200 {
        mode = request(
            addr,
            "GET /api/status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await
        .json()["mode"]
            .as_str()
            .unwrap()
            .to_string();
        if mode == "red" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(mode, "red");
    // short power press: dark, and counting goes on
    d.press(Button::Power, 200).await;
    let panel = d.panel.clone();
    eventually(5, "panel goes dark", || {
        panel.last().is_some_and(|f| !f.display_on)
    })
    .await;
    assert_eq!(d.get("/red").await.json()["count"], 2);
    d.status_until(5, "status says dark", |s| s["panel"]["dark"] == true)
        .await;
    d.press(Button::Power, 200).await;
    eventually(5, "panel lit again", || {
        panel.last().is_some_and(|f| f.display_on)
    })
    .await;
    // a 2.9 s hold is not a shutdown; 3.1 s is
    d.press(Button::Power, 2900).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!flag.exists());
    let t = d.clock.now_ms();
    d.buttons
        .send(banlight::panel::ButtonEdge {
            button: Button::Power,
            pressed: true,
            t_ms: t,
        })
        .await
        .unwrap();
    eventually(10, "shutdown command ran", || flag.exists()).await;
    assert!(d
        .panel
        .frames()
        .iter()
        .any(|(_, f)| f.display.to_string() == "byE " && f.display_on));
    d.shutdown().await;
}

#[tokio::test]
async fn shutdown_blanks_the_panel() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), "")).await;
    d.get("/red").await;
    let panel = d.panel.clone();
    d.shutdown().await;
    let last = panel.last().unwrap();
    assert!(!last.display_on && last.leds.iter().all(|c| c.is_black()));
}
