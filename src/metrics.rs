//! `GET /metrics`: the daemon's figures in the Prometheus/OpenMetrics text
//! format (prometheus-client). Nothing runs between scrapes: counters are
//! bumped where things happen (the ledger, the HTTP boundary) and everything
//! else is read from the live state when the scrape arrives.
//!
//! Names follow hectorjsmith/fail2ban-prometheus-exporter where it has the
//! same thing (`f2b_jail_banned_total{jail}`, `f2b_up`), so its dashboards
//! and alert rules work; the rest is `banlight_*`.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::core::breakdown::{EventKey, MAX_KEYS, OTHER, UNKNOWN};
use crate::figures::HeartbeatSample;

/// What `/metrics` answers a client that asks for OpenMetrics with (what
/// prometheus-client writes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// What it answers everyone else with: the Prometheus text format 0.0.4,
/// which `promtool check metrics` and older scrapers read (issue 19, item 6).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Does an `Accept` header ask for OpenMetrics? (Prometheus's own scrape
/// lists it first; curl and browsers do not.)
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.to_ascii_lowercase()
            .contains("application/openmetrics-text")
    })
}

/// prometheus-client's OpenMetrics exposition in the 0.0.4 text format.
/// prometheus-client writes only OpenMetrics, and the two differ only in
/// what this changes, so it is done here rather than by a second metrics
/// library: no `# EOF` and no `# UNIT` lines; a counter's HELP and TYPE
/// name its `_total` samples; an `info` family (not a 0.0.4 type) becomes
/// a gauge named like its `_info` sample. Samples pass unchanged.
pub fn to_text_004(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // prometheus-client writes HELP, then TYPE: the HELP waits for the type.
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" if !name.ends_with("_total") => (format!("{name}_total"), kind),
                "info" => (format!("{name}_info"), "gauge"),
                _ => (name.to_string(), kind),
            };
            if let Some((_, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if let Some((name, text)) = help.take() {
            out.push_str(&format!("# HELP {name} {text}\n"));
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The target triple this binary was built for (set by build.rs).
pub const TARGET: &str = env!("BANLIGHT_TARGET");

/// Heartbeat states, in the order they are exported.
pub const HEARTBEAT_STATES: [&str; 4] = ["new", "up", "late", "down"];

/// Everything one scrape shows, read from the live state at scrape time.
#[derive(Debug)]
pub struct Sample {
    pub now_ms: u64,
    pub started_ms: u64,
    pub events: Vec<(EventKey, u64)>,
    pub dedupe_hits: u64,
    pub ignored: u64,
    pub refused: u64,
    pub unauthorized: u64,
    pub rate_limited: u64,
    pub dropped_connections: u64,
    pub evicted_connections: u64,
    pub refused_connections_busy: u64,
    pub open_connections: u64,
    pub limited_clients: u64,
    pub commits: u64,
    pub stored_events: u64,
    pub commit_failures: u64,
    pub commit_seconds: Histogram,
    pub backend: String,
    pub dark: bool,
    pub quiet: bool,
    /// The panel's health words: ("display", "ok" | "missing" | "error: …").
    pub health: Vec<(&'static str, String)>,
    pub heartbeats: Vec<HeartbeatSample>,
}

impl Sample {
    /// Reads the live state; `heartbeats` comes from the caller (http.rs).
    pub fn of(app: &crate::state::State, heartbeats: Vec<HeartbeatSample>) -> Sample {
        let stats = &app.requests;
        let lm = &app.commit_stats.metrics;
        let panel = app.panel.lock().expect("panel lock").clone();
        let now_ms = crate::clock::wall_ms();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let routing = app.routing();
        let routes: Vec<&str> = routing.routes.iter().map(|r| r.name.as_str()).collect();
        let sources: Vec<&str> = routing.sources.iter().map(|s| s.name.as_str()).collect();
        let counted: Vec<(EventKey, u64)> = lm
            .breakdown
            .lock()
            .expect("breakdown lock")
            .iter()
            .map(|(k, c)| (k.clone(), c))
            .collect();
        Sample {
            now_ms,
            started_ms: now_ms.saturating_sub(app.started.elapsed().as_millis() as u64),
            events: with_zero_series(counted, &routes, &sources),
            dedupe_hits: load(&lm.dedupe_hits),
            ignored: load(&lm.ignored),
            refused: load(&stats.refused),
            unauthorized: load(&stats.unauthorized),
            rate_limited: load(&stats.rate_limited),
            dropped_connections: load(&stats.dropped_connections),
            evicted_connections: load(&app.slots.evicted),
            refused_connections_busy: load(&app.slots.refused),
            open_connections: app.slots.in_use() as u64,
            limited_clients: app.limiter.lock().expect("limiter lock").tracked_clients() as u64,
            commits: load(&app.commit_stats.commits),
            stored_events: load(&app.commit_stats.events),
            commit_failures: load(&lm.commit_failures),
            commit_seconds: lm.commit_seconds.clone(),
            backend: panel.backend,
            dark: panel.dark,
            quiet: panel.quiet,
            health: panel.health,
            heartbeats,
        }
    }

    /// The whole exposition, `# EOF` included.
    pub fn render(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The counted series plus, at 0, every (route, configured source, jail)
/// not counted yet, for the jails these sources have sent (issue 22, item
/// 9): Prometheus' `increase()` misses the first ban of a series that
/// starts at 1, so a series known from the config and the store must exist
/// before its first ban. A jail never seen from a configured source cannot
/// be known and still starts at 1. With no sources configured, the source
/// label is [`UNKNOWN`]. Never more than [`MAX_KEYS`] series in all.
pub fn with_zero_series(
    mut events: Vec<(EventKey, u64)>,
    routes: &[&str],
    sources: &[&str],
) -> Vec<(EventKey, u64)> {
    let sources: Vec<&str> = if sources.is_empty() {
        vec![UNKNOWN]
    } else {
        sources.to_vec()
    };
    let jails: BTreeSet<String> = events
        .iter()
        .filter(|(k, _)| sources.contains(&k.source.as_str()) && k.jail != OTHER)
        .map(|(k, _)| k.jail.clone())
        .collect();
    let known: BTreeSet<EventKey> = events.iter().map(|(k, _)| k.clone()).collect();
    'fill: for route in routes {
        for source in &sources {
            for jail in &jails {
                if events.len() >= MAX_KEYS {
                    break 'fill;
                }
                let key = EventKey {
                    route: route.to_string(),
                    source: source.to_string(),
                    jail: jail.clone(),
                };
                if !known.contains(&key) {
                    events.push((key, 0));
                }
            }
        }
    }
    events.sort();
    events
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    let m = ConstCounter::new(v);
    m.encode(enc.encode_descriptor(name, help, None, m.metric_type())?)
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> fmt::Result {
    let m = ConstGauge::new(v);
    m.encode(enc.encode_descriptor(name, help, None, m.metric_type())?)
}

impl Collector for Sample {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        // Counted events. The name and `jail` label are
        // fail2ban-prometheus-exporter's; `route` and `source` say which
        // colour and which server. sum by (route) is the panel's count.
        {
            let m = enc.encode_descriptor(
                "f2b_jail_banned",
                "Bans counted by banlight (deduplicated), by jail, route and source server",
                None,
                MetricType::Counter,
            )?;
            let mut m = m;
            for (k, v) in &self.events {
                let labels = [
                    ("jail", k.jail.as_str()),
                    ("route", k.route.as_str()),
                    ("source", k.source.as_str()),
                ];
                ConstCounter::new(*v).encode(m.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut enc,
            "banlight_dedupe_hits",
            "Hooks not counted because the same ban (route, jail, ip) was already counted within the dedupe window",
            self.dedupe_hits,
        )?;
        counter(
            &mut enc,
            "banlight_ignored_events",
            "Hooks for an ip on the ignore list: logged, not counted",
            self.ignored,
        )?;
        counter(
            &mut enc,
            "banlight_requests_refused",
            "Requests answered with a 4xx (unknown path, bad input, unauthorized; 429 is counted apart)",
            self.refused,
        )?;
        counter(
            &mut enc,
            "banlight_requests_unauthorized",
            "Requests refused for a missing or wrong token (401/403)",
            self.unauthorized,
        )?;
        counter(
            &mut enc,
            "banlight_requests_rate_limited",
            "Requests answered 429 because their address failed too often",
            self.rate_limited,
        )?;
        counter(
            &mut enc,
            "banlight_connections_dropped",
            "Connections closed unanswered: over the per-client cap, or timed out",
            self.dropped_connections,
        )?;
        counter(
            &mut enc,
            "banlight_connections_evicted",
            "Idle or slow connections closed to make room for a new one",
            self.evicted_connections,
        )?;
        counter(
            &mut enc,
            "banlight_connections_refused_busy",
            "Connections refused because every slot was answering a request",
            self.refused_connections_busy,
        )?;
        gauge(
            &mut enc,
            "banlight_connections_open",
            "Connections open now",
            self.open_connections as i64,
        )?;
        gauge(
            &mut enc,
            "banlight_rate_limited_clients",
            "Client addresses the rate limiter tracks now",
            self.limited_clients as i64,
        )?;
        counter(
            &mut enc,
            "banlight_store_commits",
            "Store transactions committed (one fsync each, for a group of events)",
            self.commits,
        )?;
        counter(
            &mut enc,
            "banlight_store_events",
            "Events written by those commits",
            self.stored_events,
        )?;
        counter(
            &mut enc,
            "banlight_store_commit_failures",
            "Commits that failed (the hooks were answered 503 and not counted)",
            self.commit_failures,
        )?;
        self.commit_seconds.encode(enc.encode_descriptor(
            "banlight_store_commit_duration",
            "Time to commit one group of events, fsync included",
            Some(&Unit::Seconds),
            self.commit_seconds.metric_type(),
        )?)?;
        let display = self.health.iter().find(|(k, _)| *k == "display");
        gauge(
            &mut enc,
            "banlight_panel_display_present",
            "1 if the 4-digit display answers (or the panel is simulated), 0 if it is missing",
            i64::from(display.is_none_or(|(_, v)| v != "missing")),
        )?;
        {
            let mut m = enc.encode_descriptor(
                "banlight_panel_part_ok",
                "1 if this part of the panel works, 0 if it reports an error",
                None,
                MetricType::Gauge,
            )?;
            for (part, state) in &self.health {
                ConstGauge::new(i64::from(state == "ok"))
                    .encode(m.encode_family(&[("part", *part)])?)?;
            }
        }
        gauge(
            &mut enc,
            "banlight_panel_dark",
            "1 while the panel is switched dark (power button)",
            i64::from(self.dark),
        )?;
        gauge(
            &mut enc,
            "banlight_panel_quiet",
            "1 while quiet hours hold the panel dark or dim",
            i64::from(self.quiet),
        )?;
        enc.encode_descriptor(
            "banlight_build",
            "Version and build target of this banlight, and its panel backend",
            None,
            MetricType::Info,
        )?
        .encode_info(&[
            ("version", env!("CARGO_PKG_VERSION")),
            ("target", TARGET),
            ("panel", self.backend.as_str()),
        ])?;
        gauge(
            &mut enc,
            "banlight_start_time_seconds",
            "When this daemon started (unix time)",
            (self.started_ms / 1000) as i64,
        )?;
        {
            let mut m = enc.encode_descriptor(
                "banlight_heartbeat_state",
                "1 for the state each source's heartbeat is in (new, up, late, down), 0 for the others",
                None,
                MetricType::Gauge,
            )?;
            for hb in &self.heartbeats {
                for state in HEARTBEAT_STATES {
                    let labels = [("source", hb.source.as_str()), ("state", state)];
                    ConstGauge::new(i64::from(hb.state == state))
                        .encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "banlight_heartbeat_age",
                "Time since each source's last heartbeat (absent until the first)",
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?;
            for hb in &self.heartbeats {
                if let Some(last) = hb.last_ms {
                    let age = self.now_ms.saturating_sub(last) as f64 / 1000.0;
                    ConstGauge::new(age).encode(m.encode_family(&[("source", &hb.source)])?)?;
                }
            }
        }
        {
            // fail2ban-prometheus-exporter's f2b_up, per server: alert rules
            // on `f2b_up == 0` work unchanged.
            let mut m = enc.encode_descriptor(
                "f2b_up",
                "1 if the source's last heartbeat said fail2ban answers, 0 if it said it does not",
                None,
                MetricType::Gauge,
            )?;
            for hb in &self.heartbeats {
                if let Some(up) = hb.fail2ban_up {
                    ConstGauge::new(i64::from(up))
                        .encode(m.encode_family(&[("source", &hb.source)])?)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::breakdown::Breakdown;
    use crate::figures::LedgerMetrics;
    use crate::store::StoredEvent;
    use std::time::Duration;

    fn sample() -> Sample {
        let mut b = Breakdown::default();
        b.add("red", Some("web-1"), Some("sshd"), 5);
        b.add("red", None, None, 2);
        b.add("blue", Some("mail"), Some("postfix"), 1);
        let lm = LedgerMetrics::new(b);
        lm.commit_done(Duration::from_millis(3), true);
        lm.commit_done(Duration::from_millis(3), true);
        lm.commit_done(Duration::from_secs(1), false);
        let events = lm
            .breakdown
            .lock()
            .unwrap()
            .iter()
            .map(|(k, c)| (k.clone(), c))
            .collect();
        Sample {
            now_ms: 1_700_000_100_000,
            started_ms: 1_700_000_000_000,
            events,
            dedupe_hits: 4,
            ignored: 1,
            refused: 9,
            unauthorized: 3,
            rate_limited: 2,
            dropped_connections: 0,
            evicted_connections: 6,
            refused_connections_busy: 0,
            open_connections: 1,
            limited_clients: 2,
            commits: 2,
            stored_events: 8,
            commit_failures: lm.commit_failures.load(Ordering::Relaxed),
            commit_seconds: lm.commit_seconds.clone(),
            backend: "pi".into(),
            dark: true,
            quiet: false,
            health: vec![("leds", "ok".into()), ("display", "missing".into())],
            heartbeats: vec![
                HeartbeatSample {
                    source: "web-1".into(),
                    state: "up".into(),
                    last_ms: Some(1_700_000_070_000),
                    fail2ban_up: Some(true),
                },
                HeartbeatSample {
                    source: "mail".into(),
                    state: "down".into(),
                    last_ms: Some(1_700_000_000_500),
                    fail2ban_up: Some(false),
                },
                HeartbeatSample {
                    source: "new-box".into(),
                    state: "new".into(),
                    last_ms: None,
                    fail2ban_up: None,
                },
            ],
        }
    }

    fn has(text: &str, line: &str) {
        assert!(
            text.lines().any(|l| l == line),
            "missing line {line:?} in:\n{text}"
        );
    }

    #[test]
    fn events_use_the_fail2ban_exporter_name_with_route_and_source() {
        let text = sample().render();
        has(&text, "# TYPE f2b_jail_banned counter");
        has(
            &text,
            r#"f2b_jail_banned_total{jail="sshd",route="red",source="web-1"} 5"#,
        );
        has(
            &text,
            r#"f2b_jail_banned_total{jail="",route="red",source=""} 2"#,
        );
        has(
            &text,
            r#"f2b_jail_banned_total{jail="postfix",route="blue",source="mail"} 1"#,
        );
        assert!(text.ends_with("# EOF\n"), "a complete OpenMetrics message");
    }

    #[test]
    fn request_store_and_panel_figures() {
        let text = sample().render();
        for line in [
            "banlight_dedupe_hits_total 4",
            "banlight_ignored_events_total 1",
            "banlight_requests_refused_total 9",
            "banlight_requests_unauthorized_total 3",
            "banlight_requests_rate_limited_total 2",
            "banlight_connections_evicted_total 6",
            "banlight_connections_open 1",
            "banlight_rate_limited_clients 2",
            "banlight_store_commits_total 2",
            "banlight_store_events_total 8",
            "banlight_store_commit_failures_total 1",
            "banlight_panel_display_present 0",
            r#"banlight_panel_part_ok{part="leds"} 1"#,
            r#"banlight_panel_part_ok{part="display"} 0"#,
            "banlight_panel_dark 1",
            "banlight_panel_quiet 0",
            "banlight_start_time_seconds 1700000000",
        ] {
            has(&text, line);
        }
        has(
            &text,
            &format!(
                r#"banlight_build_info{{version="{}",target="{TARGET}",panel="pi"}} 1"#,
                env!("CARGO_PKG_VERSION")
            ),
        );
        assert!(TARGET.contains('-'), "a target triple: {TARGET}");
    }

    #[test]
    fn commit_latency_is_a_histogram_in_seconds() {
        let text = sample().render();
        has(
            &text,
            "# TYPE banlight_store_commit_duration_seconds histogram",
        );
        has(
            &text,
            "# UNIT banlight_store_commit_duration_seconds seconds",
        );
        has(&text, "banlight_store_commit_duration_seconds_count 2");
        // 3 ms: above the 2 ms bucket, within the 4 ms one
        has(
            &text,
            r#"banlight_store_commit_duration_seconds_bucket{le="0.002"} 0"#,
        );
        has(
            &text,
            r#"banlight_store_commit_duration_seconds_bucket{le="0.004"} 2"#,
        );
        has(
            &text,
            r#"banlight_store_commit_duration_seconds_bucket{le="+Inf"} 2"#,
        );
    }

    #[test]
    fn heartbeats_state_age_and_fail2ban_up() {
        let text = sample().render();
        has(
            &text,
            r#"banlight_heartbeat_state{source="web-1",state="up"} 1"#,
        );
        has(
            &text,
            r#"banlight_heartbeat_state{source="web-1",state="down"} 0"#,
        );
        has(
            &text,
            r#"banlight_heartbeat_state{source="mail",state="down"} 1"#,
        );
        has(
            &text,
            r#"banlight_heartbeat_state{source="new-box",state="new"} 1"#,
        );
        let states = text
            .lines()
            .filter(|l| l.starts_with("banlight_heartbeat_state{"))
            .count();
        assert_eq!(states, 12, "four states for each of three sources");
        has(
            &text,
            r#"banlight_heartbeat_age_seconds{source="web-1"} 30.0"#,
        );
        has(
            &text,
            r#"banlight_heartbeat_age_seconds{source="mail"} 99.5"#,
        );
        assert!(
            !text.contains(r#"banlight_heartbeat_age_seconds{source="new-box"}"#),
            "no age before the first heartbeat"
        );
        has(&text, r#"f2b_up{source="web-1"} 1"#);
        has(&text, r#"f2b_up{source="mail"} 0"#);
        assert!(!text.contains(r#"f2b_up{source="new-box"}"#));
    }

    #[test]
    fn no_heartbeats_leaves_the_families_empty() {
        let mut s = sample();
        s.heartbeats.clear();
        let text = s.render();
        assert!(!text.contains("banlight_heartbeat_state{"));
        assert!(!text.contains("f2b_up{"));
    }

    /// The shipped dashboard asks only for series `/metrics` exports, and
    /// has the panels the README promises.
    #[test]
    fn the_grafana_dashboard_matches_the_metrics() {
        let dash: serde_json::Value =
            serde_json::from_str(include_str!("../docs/grafana-dashboard.json"))
                .expect("valid JSON");
        let text = sample().render();
        let exported: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(['{', ' ']).next().unwrap())
            .collect();
        let panels = dash["panels"].as_array().unwrap();
        let titles: Vec<&str> = panels
            .iter()
            .map(|p| p["title"].as_str().unwrap())
            .collect();
        for want in [
            "Events by route",
            "Heartbeat states",
            "Rejected requests",
            "Commit latency (fsync included)",
        ] {
            assert!(titles.contains(&want), "no panel {want:?}: {titles:?}");
        }
        let mut asked = 0;
        for p in panels {
            for t in p["targets"].as_array().unwrap() {
                let expr = t["expr"].as_str().unwrap();
                // every metric name in the PromQL expression
                for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    if word.starts_with("banlight_") || word.starts_with("f2b_") {
                        asked += 1;
                        assert!(
                            exported.contains(word),
                            "panel {:?} asks for {word}, not exported",
                            p["title"]
                        );
                    }
                }
            }
        }
        assert!(asked > 20, "{asked} metric references found");
    }

    fn key(route: &str, source: &str, jail: &str) -> EventKey {
        EventKey {
            route: route.into(),
            source: source.into(),
            jail: jail.into(),
        }
    }

    #[test]
    fn every_route_has_the_configured_sources_jails_at_zero() {
        let counted = vec![
            (key("red", "web-1", "sshd"), 5),
            (key("red", "stranger", "junk"), 1),
            (key("blue", OTHER, OTHER), 2),
        ];
        let all = with_zero_series(counted, &["red", "blue"], &["web-1", "mail"]);
        let get = |k: EventKey| all.iter().find(|(x, _)| *x == k).map(|(_, v)| *v);
        assert_eq!(get(key("red", "web-1", "sshd")), Some(5), "counted kept");
        assert_eq!(get(key("blue", "web-1", "sshd")), Some(0));
        assert_eq!(get(key("red", "mail", "sshd")), Some(0));
        assert_eq!(get(key("blue", "mail", "sshd")), Some(0));
        assert_eq!(get(key("blue", OTHER, OTHER)), Some(2));
        // a stranger's jail is not multiplied over the routes
        assert_eq!(get(key("blue", "stranger", "junk")), None);
        assert_eq!(get(key("red", "web-1", "junk")), None);
        assert_eq!(all.len(), 6, "{all:?}");

        // no sources configured: the source label is the unknown one
        let open = with_zero_series(
            vec![(key("red", UNKNOWN, "sshd"), 1)],
            &["red", "blue"],
            &[],
        );
        assert!(
            open.contains(&(key("blue", UNKNOWN, "sshd"), 0)),
            "{open:?}"
        );

        // bounded like the breakdown
        let many: Vec<_> = (0..MAX_KEYS - 1)
            .map(|i| (key("red", "web-1", &format!("j{i}")), 1))
            .collect();
        assert_eq!(
            with_zero_series(many, &["red", "blue"], &["web-1"]).len(),
            MAX_KEYS
        );
    }

    /// Every heartbeat panel says why it is empty when no source sends
    /// heartbeats, instead of Grafana's "No data".
    #[test]
    fn heartbeat_panels_say_when_no_source_is_configured() {
        let dash: serde_json::Value =
            serde_json::from_str(include_str!("../docs/grafana-dashboard.json"))
                .expect("valid JSON");
        let mut n = 0;
        for p in dash["panels"].as_array().unwrap() {
            let exprs = p["targets"].to_string();
            if exprs.contains("banlight_heartbeat_age")
                || exprs.contains("f2b_up")
                || p["type"] == "state-timeline"
            {
                n += 1;
                assert_eq!(
                    p["fieldConfig"]["defaults"]["noValue"], "no heartbeat sources configured",
                    "panel {}",
                    p["title"]
                );
            }
        }
        assert_eq!(n, 3, "heartbeat panels");
    }

    #[test]
    fn ledger_metrics_count_stored_events_and_follow_resets() {
        let lm = LedgerMetrics::default();
        let ev = |route: &str, kind: &str| StoredEvent {
            ts_ms: 1,
            route: route.into(),
            kind: kind.into(),
            jail: Some("sshd".into()),
            ip: Some("203.0.113.9".into()),
            source: Some("web-1".into()),
            event_id: None,
        };
        lm.counted(
            &[ev("red", "hook"), ev("red", "hook"), ev("blue", "hook")],
            3,
        );
        lm.counted(&[ev("red", "ignored")], 0);
        assert_eq!(lm.dedupe_hits.load(Ordering::Relaxed), 3);
        assert_eq!(lm.ignored.load(Ordering::Relaxed), 1);
        let total = |r: &str| lm.breakdown.lock().unwrap().route_total(r);
        assert_eq!((total("red"), total("blue")), (2, 1));
        lm.reset(Some("red"));
        assert_eq!((total("red"), total("blue")), (0, 1));
        lm.reset(None);
        assert_eq!(total("blue"), 0);
    }
}
