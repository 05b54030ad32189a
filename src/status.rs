//! `/api/status` (and `banlight status`, the page's first paint, MQTT's
//! panel topic): read from the live state at the moment it is asked, as one
//! typed value whose fields are the JSON's.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use crate::clock::wall_ms;
use crate::core::time::rfc3339_utc;
use crate::figures::MqttStatus;
use crate::heartbeat::HeartbeatStatus;
use crate::state::State;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub uptime_s: u64,
    /// Now, RFC 3339 UTC.
    pub time: String,
    pub total: u64,
    pub last_24h: u64,
    /// What the display counts: `total`, `24h` or a route.
    pub mode: String,
    /// The display's health as the driver last measured it.
    pub display: String,
    pub shutting_down: bool,
    pub panel: PanelView,
    /// Per route (JSON objects have no order: see `route_order`).
    pub routes: BTreeMap<String, RouteStatus>,
    /// The config's (LED) order of the routes.
    pub route_order: Vec<String>,
    pub requests: RequestFigures,
    /// `open` (no `[[source]]`) or `token`.
    pub auth: String,
    pub store: StoreFigures,
    /// Per watched source.
    pub heartbeats: BTreeMap<String, HeartbeatStatus>,
    /// With `[mqtt]`: the broker connection (`null` without).
    pub mqtt: Option<MqttStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PanelView {
    pub backend: String,
    pub dark: bool,
    pub quiet: bool,
    /// The text on the display now.
    pub display_text: String,
    pub led_brightness: u8,
    pub display_brightness: u8,
    /// Each part's health as reported by the backend (`leds`, `display`,
    /// `buttons`, ...), beside the fields above.
    #[serde(flatten)]
    pub health: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteStatus {
    pub count: u64,
    pub last_24h: u64,
    pub last_seen: Option<String>,
    /// `#rrggbb`.
    pub color: String,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestFigures {
    pub refused: u64,
    pub unauthorized: u64,
    pub rate_limited: u64,
    pub dropped_connections: u64,
    pub evicted_connections: u64,
    pub refused_connections_busy: u64,
    pub open_connections: usize,
    pub limited_clients: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreFigures {
    pub commits: u64,
    pub events: u64,
}

impl Status {
    pub fn of(state: &State) -> Status {
        let now = wall_ms();
        let routing = state.routing();
        let c = state.counters.lock().expect("counters lock");
        let routes = routing
            .routes
            .iter()
            .map(|r| {
                let rc = c.get(&r.name);
                let status = RouteStatus {
                    count: rc.map_or(0, |x| x.count),
                    last_24h: c.last_24h(&r.name, now),
                    last_seen: rc.and_then(|x| x.last_seen_ms).map(rfc3339_utc),
                    color: r.color.to_string(),
                    label: r.label.to_string().trim_end().to_string(),
                };
                (r.name.clone(), status)
            })
            .collect();
        let total = c.total();
        let last_24h = c.total_last_24h(now);
        drop(c);
        let p = state.panel.lock().expect("panel lock").clone();
        let display = p
            .health
            .iter()
            .find(|(k, _)| *k == "display")
            .map_or("ok".to_string(), |(_, v)| v.clone());
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_s: state.started.elapsed().as_secs(),
            time: rfc3339_utc(now),
            total,
            last_24h,
            mode: p.mode,
            display,
            shutting_down: p.shutting_down,
            panel: PanelView {
                backend: p.backend,
                dark: p.dark,
                quiet: p.quiet,
                display_text: p.display,
                led_brightness: p.led_brightness,
                display_brightness: p.display_brightness,
                health: p
                    .health
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            },
            routes,
            route_order: routing.routes.iter().map(|r| r.name.clone()).collect(),
            requests: RequestFigures {
                refused: n(&state.requests.refused),
                unauthorized: n(&state.requests.unauthorized),
                rate_limited: n(&state.requests.rate_limited),
                dropped_connections: n(&state.requests.dropped_connections),
                evicted_connections: n(&state.slots.evicted),
                refused_connections_busy: n(&state.slots.refused),
                open_connections: state.slots.in_use(),
                limited_clients: state
                    .limiter
                    .lock()
                    .expect("limiter lock")
                    .tracked_clients(),
            },
            auth: if routing.sources.is_empty() {
                "open"
            } else {
                "token"
            }
            .into(),
            store: StoreFigures {
                commits: n(&state.commit_stats.commits),
                events: n(&state.commit_stats.events),
            },
            heartbeats: state.heartbeats.status(),
            mqtt: state
                .mqtt
                .as_ref()
                .map(|m| m.status(n(&state.commit_stats.outbox_dropped))),
        }
    }
}

/// `Status::of` as JSON, for the callers that embed it.
pub fn status_json(state: &State) -> serde_json::Value {
    serde_json::to_value(Status::of(state)).expect("a status always serialises")
}
