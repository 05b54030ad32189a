//! `POST /api/heartbeat` against the real daemon: tokens, states, the
//! stored transitions (listed by `banlight events` and `banlight status`),
//! bad bodies, rate limiting, and the silence alarm on the panel.

mod common;
use common::bin;

use banlight::core::color::Rgb;
use common::*;

const WEB: &str = "web1-token-0123456789abcdef";
const SSH: &str = "ssh1-token-0123456789abcdef";
const DB: &str = "db-token-0123456789abcdef";

/// web-1 posts to blue (marker LED 2) and is watched every `period`; ssh-1
/// is not watched; db is watched with a long period.
fn sources(period: &str, grace: &str) -> String {
    format!(
        "[[source]]\nname = \"web-1\"\ntoken = \"{WEB}\"\nroutes = [\"blue\"]\nheartbeat = \"{period}\"\ngrace = \"{grace}\"\n\
         [[source]]\nname = \"ssh-1\"\ntoken = \"{SSH}\"\n\
         [[source]]\nname = \"db\"\ntoken = \"{DB}\"\nheartbeat = \"1h\"\n"
    )
}

async fn beat(d: &TestDaemon, auth: Option<&str>, ctype: Option<&str>, body: &str) -> Response {
    let auth = auth.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let ctype = ctype.map_or(String::new(), |c| format!("Content-Type: {c}\r\n"));
    request(
        d.addr,
        &format!(
            "POST /api/heartbeat HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}{ctype}Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await
}

const HEALTHY: &str = r#"{"fail2ban": true, "jails": {"sshd": 3, "nginx-http-auth": 0}}"#;

fn socket_of(d: &TestDaemon) -> std::path::PathBuf {
    d.daemon
        .as_ref()
        .unwrap()
        .control
        .config
        .lock()
        .unwrap()
        .control_socket
        .clone()
}

/// The real `banlight` binary against the daemon's socket, off the runtime thread.
async fn cli(d: &TestDaemon, args: &[&str]) -> String {
    let socket = socket_of(d);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = bin::command()
            .arg("--socket")
            .arg(&socket)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run banlight");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_need_a_token_and_report_state_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), &sources("1h", "1h"))).await;
    let s = d.status().await;
    assert_eq!(
        s["heartbeats"]["web-1"],
        serde_json::json!({
            "state": "new", "last_ms": null, "period_ms": 3_600_000, "grace_ms": 3_600_000,
            "fail2ban_up": null, "jails": {},
        })
    );
    assert!(
        s["heartbeats"].get("ssh-1").is_none(),
        "only watched sources"
    );

    // no token, a wrong token, a wrong scheme: 401, nothing changes
    for auth in [None, Some("nope-0123456789abcdef")] {
        let r = beat(&d, auth, Some("application/json"), HEALTHY).await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(r.head.to_lowercase().contains("www-authenticate: bearer"));
    }
    let r = request(d.addr, "POST /api/heartbeat HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Basic d2ViOjE=\r\nContent-Length: 0\r\n\r\n").await;
    assert_eq!(r.status, 401);
    let r = d.get("/api/heartbeat").await;
    assert_eq!(r.status, 405);
    assert!(
        r.head.contains("allow: POST") || r.head.contains("Allow: POST"),
        "{}",
        r.head
    );
    assert_eq!(d.status().await["heartbeats"]["web-1"]["state"], "new");

    // the right token, with the server's health
    let before = banlight::clock::wall_ms();
    let r = beat(&d, Some(WEB), Some("application/json"), HEALTHY).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        serde_json::json!({"source": "web-1", "state": "up"})
    );
    let h = &d.status().await["heartbeats"]["web-1"];
    assert_eq!(h["state"], "up");
    assert_eq!(h["fail2ban_up"], true);
    assert_eq!(
        h["jails"],
        serde_json::json!({"sshd": 3, "nginx-http-auth": 0})
    );
    let last = h["last_ms"].as_u64().unwrap();
    assert!(
        last + 1000 >= before && last <= banlight::clock::wall_ms() + 1000,
        "{last} vs {before}"
    );
    // ...and /metrics says the same
    let m = d.get("/metrics").await.body;
    for line in [
        "banlight_heartbeat_state{source=\"web-1\",state=\"up\"} 1",
        "banlight_heartbeat_state{source=\"web-1\",state=\"new\"} 0",
        "banlight_heartbeat_state{source=\"db\",state=\"new\"} 1",
        "f2b_up{source=\"web-1\"} 1",
    ] {
        assert!(m.lines().any(|l| l == line), "{line} in:\n{m}");
    }
    assert!(
        m.contains("banlight_heartbeat_age_seconds{source=\"web-1\"}"),
        "{m}"
    );

    // ?token= and an empty body work too (a bare `curl -X POST`)
    let r = request(
        d.addr,
        &format!("POST /api/heartbeat?token={DB} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
    )
    .await;
    assert_eq!(r.json()["state"], "up", "{}", r.body);
    assert_eq!(
        d.status().await["heartbeats"]["db"]["fail2ban_up"],
        serde_json::Value::Null
    );

    // a source without heartbeat: accepted, says it is not watched
    let r = beat(&d, Some(SSH), None, "").await;
    assert_eq!(r.status, 200);
    assert!(
        r.json()["state"].is_null() && r.body.contains("not watched"),
        "{}",
        r.body
    );

    // fail2ban reported down: down at once
    let r = beat(
        &d,
        Some(WEB),
        Some("application/json"),
        r#"{"fail2ban": false, "jails": {}}"#,
    )
    .await;
    assert_eq!(r.json()["state"], "down");
    let h = &d.status().await["heartbeats"]["web-1"];
    assert_eq!(
        (h["state"].as_str(), h["fail2ban_up"].as_bool()),
        (Some("down"), Some(false))
    );

    // malformed bodies: 400 naming the problem, and the daemon keeps serving
    for (ctype, body, what) in [
        (Some("application/json"), "{\"fail2ban\": tru", "not JSON"),
        (
            Some("application/json"),
            "{\"jails\": {\"sshd\": -2}}",
            "whole number",
        ),
        (Some("application/json"), "[]", "object"),
        (
            Some("application/x-www-form-urlencoded"),
            "fail2ban=1",
            "application/json",
        ),
    ] {
        let r = beat(&d, Some(WEB), ctype, body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(
            r.json()["error"].as_str().unwrap().contains(what),
            "{}",
            r.body
        );
    }
    let big = format!("{{\"jails\": {{\"a\": {}}}}}", "1".repeat(5000));
    assert_eq!(
        beat(&d, Some(WEB), Some("application/json"), &big)
            .await
            .status,
        413
    );
    assert_eq!(
        d.status().await["heartbeats"]["web-1"]["state"],
        "down",
        "bad bodies change nothing"
    );
    let r = d.get(&format!("/red?token={SSH}")).await;
    assert_eq!(r.status, 200, "still serving hooks: {}", r.body);

    // the transitions are events: new -> up, up -> down (fail2ban), new -> up for db
    let q = banlight::ledger::EventQuery {
        since_ms: 0,
        route: None,
        limit: 50,
        ..Default::default()
    };
    // (stored by the heartbeat task just after the state moved: poll)
    let ledger = d.daemon.as_ref().unwrap().ledger.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let beats = loop {
        let events = ledger.events(q.clone()).await.unwrap();
        let beats: Vec<(String, String)> = events
            .iter()
            .rev()
            .filter(|e| e.kind == "heartbeat")
            .map(|e| (e.source.clone().unwrap(), e.route.clone()))
            .collect();
        if beats.len() >= 3 || std::time::Instant::now() > deadline {
            break beats;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        beats,
        vec![
            ("web-1".to_string(), "up".to_string()),
            ("db".into(), "up".into()),
            ("web-1".into(), "down".into()),
        ]
    );
    // and none of it counted as an attack
    assert_eq!(d.status().await["total"], 1);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_source_goes_late_then_down_then_recovers_and_the_cli_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), &sources("1s", "1s"))).await;
    let r = beat(&d, Some(WEB), Some("application/json"), HEALTHY).await;
    assert_eq!(r.json()["state"], "up");
    // no more heartbeats: late after 1 s, down after 2 s (generous deadline
    // for a loaded machine; the stored events carry the exact times)
    let mut last = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while last != "down" {
        assert!(
            std::time::Instant::now() < deadline,
            "never went down: {last}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        last = d.status().await["heartbeats"]["web-1"]["state"]
            .as_str()
            .unwrap()
            .to_string();
    }
    let q = banlight::ledger::EventQuery {
        since_ms: 0,
        route: None,
        limit: 50,
        ..Default::default()
    };
    let ledger = &d.daemon.as_ref().unwrap().ledger;
    // the state flips before its event is stored: wait for the third event
    let mut web: Vec<banlight::store::StoredEvent> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while web.len() < 3 && std::time::Instant::now() < deadline {
        web = ledger
            .events(q.clone())
            .await
            .unwrap()
            .into_iter()
            .rev()
            .filter(|e| e.kind == "heartbeat" && e.source.as_deref() == Some("web-1"))
            .collect();
        if web.len() < 3 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let states: Vec<&str> = web.iter().map(|e| e.route.as_str()).collect();
    assert_eq!(states, ["up", "late", "down"]);
    // each step at its deadline: 1 s after the heartbeat, then 1 s more
    let gap =
        |a: &banlight::store::StoredEvent, b: &banlight::store::StoredEvent| b.ts_ms - a.ts_ms;
    assert!((900..=1100).contains(&gap(&web[0], &web[1])), "{web:?}");
    assert!((900..=1100).contains(&gap(&web[1], &web[2])), "{web:?}");

    // the panel: blue's marker pixel (LED 2) breathes amber, the display says dn
    eventually(30, "amber on LED 2 and dn on the display", || {
        let frames = d.panel.frames();
        let amber = frames.iter().any(|(_, f)| {
            let c = f.leds[2];
            c.r > 0 && c.g > 0 && c.g < c.r && c.b == 0
        });
        let dn = frames.iter().any(|(_, f)| f.display.to_string() == "  dn");
        amber && dn
    })
    .await;

    // banlight status and banlight events show it
    let status = cli(&d, &["status"]).await;
    let line = status
        .lines()
        .find(|l| l.starts_with("web-1"))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(line.contains("DOWN") && line.contains("sshd:3"), "{status}");
    assert!(status.contains("1s +1s grace"), "{status}");
    let json: serde_json::Value =
        serde_json::from_str(&cli(&d, &["status", "--json"]).await).unwrap();
    assert_eq!(json["heartbeats"]["web-1"]["state"], "down");
    let events = cli(&d, &["events"]).await;
    assert!(
        events
            .lines()
            .any(|l| l.contains("down") && l.contains("heartbeat") && l.contains("web-1")),
        "{events}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&cli(&d, &["events", "--json"]).await).unwrap();
    let kinds: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "heartbeat" && e["source"] == "web-1")
        .map(|e| e["route"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["down", "late", "up"], "newest first");

    // it recovers with the next heartbeat: one short green sweep
    let shown_before = d.panel.frames().len();
    let r = beat(&d, Some(WEB), Some("application/json"), HEALTHY).await;
    assert_eq!(r.json()["state"], "up");
    eventually(30, "a green sweep", || {
        d.panel.frames()[shown_before..].iter().any(|(_, f)| {
            f.leds
                .iter()
                .filter(|c| c.g > 0 && c.r == 0 && c.b == 0)
                .count()
                >= 2
        })
    })
    .await;
    let web_states: Vec<String> = ledger
        .events(q)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "heartbeat" && e.source.as_deref() == Some("web-1"))
        .map(|e| e.route)
        .collect();
    assert_eq!(
        web_states.first().map(String::as_str),
        Some("up"),
        "{web_states:?}"
    );
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alarm_keeps_the_dark_panel_dark_and_sweeps_still_play() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), &sources("1h", "1h"))).await;
    let r = beat(
        &d,
        Some(WEB),
        Some("application/json"),
        r#"{"fail2ban": false}"#,
    )
    .await;
    assert_eq!(r.json()["state"], "down");
    let amber = |c: Rgb| c.r > 0 && c.g > 0 && c.g < c.r && c.b == 0;
    eventually(30, "amber breathing", || {
        d.panel.last().is_some_and(|f| amber(f.leds[2]))
    })
    .await;
    // an attack sweeps over it in the route's colour
    let from = d.panel.frames().len();
    let r = request(
        d.addr,
        &format!("GET /blue HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {WEB}\r\n\r\n"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    eventually(30, "a blue sweep over the alarm", || {
        d.panel.frames()[from..]
            .iter()
            .any(|(_, f)| f.leds.iter().filter(|c| c.b > 0 && c.r == 0).count() >= 2)
    })
    .await;
    // the power button's short press: dark, and the alarm stays dark too
    d.press(banlight::core::buttons::Button::Power, 100).await;
    eventually(30, "dark", || {
        d.panel
            .last()
            .is_some_and(|f| !f.display_on && f.leds.iter().all(|c| c.is_black()))
    })
    .await;
    let dark_at = d.panel.frames().len();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let after = d.panel.frames();
    assert!(
        after[dark_at..]
            .iter()
            .all(|(_, f)| !f.display_on && f.leds.iter().all(|c| c.is_black())),
        "nothing of the alarm while dark"
    );
    assert_eq!(d.status().await["heartbeats"]["web-1"]["state"], "down");
    d.shutdown().await;
}

#[tokio::test]
async fn heartbeats_without_sources_are_refused_and_wrong_tokens_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), "")).await;
    let r = beat(&d, None, None, "").await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("[[source]]"), "{}", r.body);
    assert!(d.status().await["heartbeats"]
        .as_object()
        .unwrap()
        .is_empty());
    d.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{}[rate_limit]\nburst = 2\nper_minute = 1\n",
        sources("1h", "1h")
    );
    let d = TestDaemon::start(&test_config(dir.path(), &extra)).await;
    let raw = |token: &str| {
        format!("POST /api/heartbeat HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n")
    };
    let scanner = [127, 0, 0, 66];
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            request_from(scanner, d.addr, &raw("wrong-token-0123456789"))
                .await
                .status,
        );
    }
    assert_eq!(statuses, [401, 401, 429, 429]);
    // a server with its own token is never locked out by earlier mistakes
    let r = request_from(scanner, d.addr, &raw(WEB)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = d.status().await;
    assert_eq!(s["requests"]["unauthorized"], 2);
    assert_eq!(s["requests"]["rate_limited"], 2);
    d.shutdown().await;
}

#[test]
fn hook_prints_how_to_install_the_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("banlight.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"0.0.0.0:8080\"\nstate_dir = \"{}\"\n{}",
            dir.path().display(),
            sources("30s", "1m")
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = bin::command()
            .arg("--config")
            .arg(&file)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run(&["hook", "blue", "--host", "pi.lan", "--source", "web-1"]);
    let section = out.find("[sshd]").unwrap();
    assert!(
        out[section..].contains(
            "# Heartbeat: the appliance expects one from source \"web-1\" every 30s (+1m grace)"
        ),
        "{out}"
    );
    for want in [
        "url=http://pi.lan:8080/api/heartbeat",
        "token_file=/etc/fail2ban/banlight-web-1.token",
        "install -m 0755 banlight-heartbeat /usr/local/libexec/banlight-heartbeat",
        "OnUnitActiveSec=15s",
        "/etc/cron.d/banlight-heartbeat",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    // every shipped file the steps name exists in fail2ban/
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fail2ban");
    for f in [
        "banlight-heartbeat",
        "heartbeat/banlight-heartbeat.service",
        "heartbeat/banlight-heartbeat.timer",
        "heartbeat/banlight-heartbeat.cron",
    ] {
        assert!(out.contains(f), "{f}");
        assert!(repo.join(f).is_file(), "{f} shipped");
    }
    // a source without heartbeat gets a note instead
    let out = run(&["hook", "red", "--host", "pi.lan", "--source", "ssh-1"]);
    assert!(
        out.contains("source \"ssh-1\" has none configured"),
        "{out}"
    );
    assert!(!out.contains("banlight-heartbeat.timer"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_unchanged_heartbeats_and_applies_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_config(dir.path());
    let (file, config) = config_file(dir.path(), &sources("1h", "1h"));
    let d = TestDaemon::start(&config).await;
    assert_eq!(beat(&d, Some(WEB), None, "").await.json()["state"], "up");
    // ssh-1 gets a heartbeat, db loses its own, web-1 is unchanged
    let text = format!("{base}{}", sources("1h", "1h"))
        .replace(
            &format!("token = \"{SSH}\"\n"),
            &format!("token = \"{SSH}\"\nheartbeat = \"10m\"\n"),
        )
        .replace("heartbeat = \"1h\"\n", "");
    let text = text.replacen(
        &format!("token = \"{WEB}\"\n"),
        &format!("token = \"{WEB}\"\nheartbeat = \"1h\"\n"),
        1,
    );
    std::fs::write(&file, text).unwrap();
    let summary = d.daemon.as_ref().unwrap().control.reload().await.unwrap();
    assert!(summary.contains("3 sources"), "{summary}");
    let h = d.status().await["heartbeats"].clone();
    let names: Vec<&String> = h.as_object().unwrap().keys().collect();
    assert_eq!(names, ["ssh-1", "web-1"], "{h}");
    assert_eq!(h["web-1"]["state"], "up", "kept across the reload: {h}");
    assert_eq!(h["ssh-1"]["state"], "new");
    assert_eq!(h["ssh-1"]["period_ms"], 600_000);
    assert_eq!(beat(&d, Some(SSH), None, "").await.json()["state"], "up");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dark_quiet_hours_hide_the_alarm_and_a_press_shows_it() {
    let extra = format!("{}{}", sources("1h", "1h"), quiet_window_around_now());
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), &extra)).await;
    let r = beat(&d, Some(WEB), None, r#"{"fail2ban": false}"#).await;
    assert_eq!(r.json()["state"], "down");
    d.status_until(10, "quiet hours on the panel", |s| {
        s["panel"]["quiet"] == true
    })
    .await;
    // let the alarm run underneath for a few of its frames (not a timing assertion)
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let frames = d.panel.frames();
    assert!(
        frames
            .iter()
            .all(|(_, f)| !f.display_on && f.leds.iter().all(|c| c.is_black())),
        "nothing of the alarm during dark quiet hours"
    );
    // a press lights the panel for a minute: the alarm shows
    d.press(banlight::core::buttons::Button::Mode, 50).await;
    eventually(30, "amber on LED 2 after the press", || {
        d.panel.last().is_some_and(|f| {
            let c = f.leds[2];
            c.r > 0 && c.g > 0 && c.g < c.r && c.b == 0
        })
    })
    .await;
    d.shutdown().await;
}
