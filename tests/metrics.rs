//! `GET /metrics` from the real daemon: parsed, and the values move with hooks.

mod common;

use std::collections::BTreeMap;

use banlight::core::buttons::Button;
use common::*;

const CONFIG: &str = r#"
[rate_limit]
burst = 3
per_minute = 6

[[source]]
name = "web-1"
token = "web1-token-0123456789abcdef"
"#;

const TOKEN: &str = "web1-token-0123456789abcdef";

/// One sample: metric name and its labels, sorted.
type Key = (String, BTreeMap<String, String>);

/// A small parser for the OpenMetrics text format (what Prometheus reads):
/// comment lines, then `name{label="value",...} number`. Written here
/// because prometheus-parse 0.2.5 follows the older text format: it ties a
/// `# TYPE x counter` line to samples named `x` only, so OpenMetrics
/// counters (samples `x_total`) come out untyped; and it pulls in regex and
/// chrono for what these 60 lines do.
fn parse(text: &str) -> BTreeMap<Key, f64> {
    assert!(text.ends_with("# EOF\n"), "a complete message:\n{text}");
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value {v:?}: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                (name.to_string(), parse_labels(body, line))
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name {name:?}"
        );
        assert!(
            out.insert((name, labels), value).is_none(),
            "duplicate series: {line}"
        );
    }
    out
}

fn parse_labels(body: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label value not quoted: {line}");
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("dangling escape: {line}"),
                },
                Some(c) => value.push(c),
                None => panic!("unterminated label value: {line}"),
            }
        }
        labels.insert(key, value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

struct Metrics(BTreeMap<Key, f64>);

impl Metrics {
    /// The value of the series with exactly these labels (0 if absent, as
    /// Prometheus treats a counter not yet exported).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.0
            .get(&(name.to_string(), labels))
            .copied()
            .unwrap_or(0.0)
    }

    fn sum(&self, name: &str) -> f64 {
        self.0
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|(_, v)| v)
            .sum()
    }
}

/// Scrapes from its own loopback address, as a Prometheus server would:
/// the rate limiter does not mix it up with a misbehaving client.
async fn scrape(addr: std::net::SocketAddr) -> Metrics {
    let r = request_from(
        [127, 0, 0, 9],
        addr,
        "GET /metrics HTTP/1.1\r\nHost: t\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.head
            .to_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{}",
        r.head
    );
    Metrics(parse(&r.body))
}

fn hook(path: &str, token: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n")
}

const BANNED: &str = "f2b_jail_banned_total";

fn ssh_web1() -> [(&'static str, &'static str); 3] {
    [("jail", "sshd"), ("route", "red"), ("source", "web-1")]
}

#[tokio::test]
async fn metrics_move_with_hooks_dedupe_401_and_429() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), CONFIG)).await;
    let server = [127, 0, 0, 20];
    let m = scrape(d.addr).await;
    assert_eq!(m.sum(BANNED), 0.0);
    assert_eq!(m.get("banlight_store_commits_total", &[]), 0.0);
    assert_eq!(m.get("banlight_panel_dark", &[]), 0.0);
    assert_eq!(m.get("banlight_panel_display_present", &[]), 1.0);
    let build =
        m.0.iter()
            .find(|((n, _), _)| n == "banlight_build_info")
            .expect("build info");
    assert_eq!(build.0 .1["version"], env!("CARGO_PKG_VERSION"));
    assert!(build.0 .1["target"].contains("linux"), "{:?}", build.0 .1);
    assert_eq!(*build.1, 1.0);

    // a counted ban
    let r = request_from(
        server,
        d.addr,
        &hook("/red?jail=sshd&ip=203.0.113.9", TOKEN),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let m = scrape(d.addr).await;
    assert_eq!(m.get(BANNED, &ssh_web1()), 1.0);
    assert_eq!(m.get("banlight_dedupe_hits_total", &[]), 0.0);
    assert_eq!(m.get("banlight_store_commits_total", &[]), 1.0);
    assert_eq!(
        m.get("banlight_store_commit_duration_seconds_count", &[]),
        1.0
    );
    assert!(m.get("banlight_store_commit_duration_seconds_sum", &[]) > 0.0);
    assert_eq!(
        m.get(
            "banlight_store_commit_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        1.0
    );

    // the same ban again: a dedupe hit, not a count
    let r = request_from(
        server,
        d.addr,
        &hook("/red?jail=sshd&ip=203.0.113.9", TOKEN),
    )
    .await;
    assert_eq!(r.json()["counted"], false);
    let m = scrape(d.addr).await;
    assert_eq!(m.get(BANNED, &ssh_web1()), 1.0);
    assert_eq!(m.get("banlight_dedupe_hits_total", &[]), 1.0);
    assert_eq!(m.get("banlight_store_commits_total", &[]), 1.0);

    // a wrong token: 401
    let scanner = [127, 0, 0, 66];
    let r = request_from(scanner, d.addr, &hook("/red", "wrong-token-0123456789")).await;
    assert_eq!(r.status, 401);
    let m = scrape(d.addr).await;
    assert_eq!(m.get("banlight_requests_unauthorized_total", &[]), 1.0);
    assert_eq!(m.get("banlight_requests_refused_total", &[]), 1.0);
    assert_eq!(m.get("banlight_requests_rate_limited_total", &[]), 0.0);

    // the scanner goes on past its burst of 3 failures: 429
    for _ in 0..2 {
        let r = request_from(
            scanner,
            d.addr,
            "GET /wp-login.php HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(r.status, 404);
    }
    let r = request_from(
        scanner,
        d.addr,
        "GET /wp-login.php HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 429);
    let m = scrape(d.addr).await;
    assert_eq!(m.get("banlight_requests_rate_limited_total", &[]), 1.0);
    assert_eq!(m.get("banlight_requests_refused_total", &[]), 3.0);
    assert_eq!(m.get("banlight_rate_limited_clients", &[]), 1.0);

    // another jail, and another route with no jail
    request_from(
        server,
        d.addr,
        &hook("/red?jail=nginx-botsearch&ip=203.0.113.10", TOKEN),
    )
    .await;
    request_from(server, d.addr, &hook("/blue", TOKEN)).await;
    let m = scrape(d.addr).await;
    assert_eq!(
        m.get(
            BANNED,
            &[
                ("jail", "nginx-botsearch"),
                ("route", "red"),
                ("source", "web-1")
            ]
        ),
        1.0
    );
    assert_eq!(
        m.get(
            BANNED,
            &[("jail", ""), ("route", "blue"), ("source", "web-1")]
        ),
        1.0
    );
    assert_eq!(m.sum(BANNED), d.status().await["total"].as_f64().unwrap());

    // the panel switched dark
    d.press(Button::Power, 200).await;
    let mut dark = 0.0;
    for _ in 0..500 {
        dark = scrape(d.addr).await.get("banlight_panel_dark", &[]);
        if dark == 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(dark, 1.0, "dark shows in the metrics");

    // a commit that fails (the table taken away behind the daemon's back):
    // 503, counted as a failure, not in the latency histogram
    let db = rusqlite::Connection::open(dir.path().join("state").join(banlight::store::DB_FILE))
        .unwrap();
    db.execute_batch("ALTER TABLE events RENAME TO events_away")
        .unwrap();
    let before = scrape(d.addr).await;
    let r = request_from(
        server,
        d.addr,
        &hook("/red?jail=sshd&ip=203.0.113.77", TOKEN),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.body);
    let m = scrape(d.addr).await;
    assert_eq!(m.get("banlight_store_commit_failures_total", &[]), 1.0);
    let count = "banlight_store_commit_duration_seconds_count";
    assert_eq!(m.get(count, &[]), before.get(count, &[]));
    assert_eq!(m.get(BANNED, &ssh_web1()), 1.0, "not counted");
    db.execute_batch("ALTER TABLE events_away RENAME TO events")
        .unwrap();

    // read-only: no other method
    let r = request_from(
        [127, 0, 0, 9],
        d.addr,
        "POST /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 405);
    d.shutdown().await;
}

#[tokio::test]
async fn event_counts_start_from_the_store_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), CONFIG);
    let d = TestDaemon::start(&config).await;
    for i in 0..3 {
        let r = d
            .get(&format!("/red?jail=sshd&ip=203.0.113.{i}&token={TOKEN}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = d.get(&format!("/blue?jail=postfix&token={TOKEN}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let before = scrape(d.addr).await;
    assert_eq!(before.get(BANNED, &ssh_web1()), 3.0);
    d.shutdown().await;
    // Retention pruned red's two oldest events: their detail is gone, the
    // route's count is kept (as prune and max_events do).
    let db = rusqlite::Connection::open(config.state_dir.join(banlight::store::DB_FILE)).unwrap();
    let pruned = db
        .execute(
            "DELETE FROM events WHERE route = 'red' AND ip IN ('203.0.113.0', '203.0.113.1')",
            [],
        )
        .unwrap();
    assert_eq!(pruned, 2);
    drop(db);

    let d = TestDaemon::start(&config).await;
    let after = scrape(d.addr).await;
    // blue's event and one of red's are still stored in detail; red's two
    // older ones only in its count
    assert_eq!(
        after.get(
            BANNED,
            &[("jail", "postfix"), ("route", "blue"), ("source", "web-1")]
        ),
        1.0
    );
    assert_eq!(after.get(BANNED, &ssh_web1()), 1.0);
    assert_eq!(
        after.get(BANNED, &[("jail", ""), ("route", "red"), ("source", "")]),
        2.0
    );
    assert_eq!(after.sum(BANNED), 4.0, "the per-route counts are kept");
    assert_eq!(
        after.get("banlight_store_commits_total", &[]),
        0.0,
        "process counters start again (Prometheus sees a reset)"
    );
    // and go on counting from there
    d.get(&format!("/red?jail=sshd&ip=203.0.113.50&token={TOKEN}"))
        .await;
    assert_eq!(scrape(d.addr).await.get(BANNED, &ssh_web1()), 2.0);
    d.shutdown().await;
}

/// `promtool`, or None (skipped with a reason; required under CI=true).
fn promtool() -> Option<&'static str> {
    if std::path::Path::new("/usr/bin/promtool").exists() {
        return Some("/usr/bin/promtool");
    }
    assert!(
        std::env::var("CI").is_err(),
        "promtool is required under CI=true (apt install prometheus)"
    );
    eprintln!("SKIPPED: promtool is not installed (apt install prometheus)");
    None
}

/// Issue 19, item 6: asked for `text/plain` (or nothing), `/metrics` is the
/// Prometheus text format 0.0.4 and passes `promtool check metrics` with no
/// complaint (every counter has HELP); OpenMetrics only when asked.
#[tokio::test]
async fn text_plain_is_the_0_0_4_format_and_passes_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), CONFIG)).await;
    // Something in every family that has labels: a ban, a 401.
    let r = d
        .get(&format!("/red?jail=sshd&ip=203.0.113.9&token={TOKEN}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for accept in ["", "Accept: text/plain\r\n", "Accept: */*\r\n"] {
        let r = request_from(
            [127, 0, 0, 9],
            d.addr,
            &format!("GET /metrics HTTP/1.1\r\nHost: t\r\n{accept}Connection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.head
                .to_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{accept:?}: {}",
            r.head
        );
        assert!(!r.body.contains("# EOF") && !r.body.contains("# UNIT"));
        assert!(!r.body.contains(" info\n"), "no info type in 0.0.4");
        // Every TYPE has a HELP line right before it, with some text.
        let lines: Vec<&str> = r.body.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                let help = lines[i - 1];
                assert!(
                    help.starts_with(&format!("# HELP {name} ")) && help.len() > name.len() + 9,
                    "{name} has no HELP: {help:?}"
                );
            }
        }
        assert_eq!(
            Metrics(parse(&format!("{}# EOF\n", r.body))).get(BANNED, &ssh_web1()),
            1.0,
            "the same samples"
        );
        let Some(promtool) = promtool() else {
            continue;
        };
        let mut child = std::process::Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(r.body.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "promtool: {said}\n{}",
            r.body
        );
    }
    d.shutdown().await;
}

/// Issue 22, item 9: after a restart, every route has a series at 0 for
/// the jails the configured sources have sent, before any ban: the first
/// blue sshd ban then shows in `increase()`.
#[tokio::test]
async fn series_known_from_config_and_store_exist_at_zero_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), CONFIG);
    let d = TestDaemon::start(&config).await;
    let r = d
        .get(&format!("/red?jail=sshd&ip=203.0.113.9&token={TOKEN}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    d.shutdown().await;

    let d = TestDaemon::start(&config).await;
    let m = scrape(d.addr).await;
    let blue = [("jail", "sshd"), ("route", "blue"), ("source", "web-1")];
    let labels: BTreeMap<String, String> = blue
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        m.0.get(&(BANNED.to_string(), labels)),
        Some(&0.0),
        "blue sshd web-1 is exported at 0"
    );
    assert_eq!(m.get(BANNED, &ssh_web1()), 1.0);
    assert_eq!(m.sum(BANNED), 1.0, "zeros add nothing");
    d.shutdown().await;
}
