//! `/api/status` (and `banlight status`, the page's first paint, MQTT's
//! panel topic): read from the live state at the moment it is asked.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use crate::clock::wall_ms;
use crate::core::time::rfc3339_utc;
use crate::state::State;

pub fn status_json(state: &State) -> Value {
    let now = wall_ms();
    let routing = state.routing();
    let c = state.counters.lock().expect("counters lock");
    let mut per_route = serde_json::Map::new();
    for r in routing.routes.iter() {
        let rc = c.get(&r.name);
        per_route.insert(
            r.name.clone(),
            json!({
                "count": rc.map_or(0, |x| x.count),
                "last_24h": c.last_24h(&r.name, now),
                "last_seen": rc.and_then(|x| x.last_seen_ms).map(rfc3339_utc),
                "color": r.color.to_string(),
                "label": r.label.to_string().trim_end(),
            }),
        );
    }
    let total = c.total();
    let last_24h = c.total_last_24h(now);
    drop(c);
    let p = state.panel.lock().expect("panel lock").clone();
    let mut panel = serde_json::Map::new();
    panel.insert("backend".into(), json!(p.backend));
    panel.insert("dark".into(), json!(p.dark));
    panel.insert("quiet".into(), json!(p.quiet));
    panel.insert("display_text".into(), json!(p.display));
    panel.insert("led_brightness".into(), json!(p.led_brightness));
    panel.insert("display_brightness".into(), json!(p.display_brightness));
    for (k, v) in &p.health {
        panel.insert((*k).into(), json!(v));
    }
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.started.elapsed().as_secs(),
        "time": rfc3339_utc(now),
        "total": total,
        "last_24h": last_24h,
        "mode": p.mode,
        "display": p.health.iter().find(|(k, _)| *k == "display").map_or("ok".to_string(), |(_, v)| v.clone()),
        "shutting_down": p.shutting_down,
        "panel": panel,
        "routes": per_route,
        // JSON objects have no order: this is the config's (LED) order.
        "route_order": routing.routes.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        "requests": {
            "refused": state.requests.refused.load(Ordering::Relaxed),
            "unauthorized": state.requests.unauthorized.load(Ordering::Relaxed),
            "rate_limited": state.requests.rate_limited.load(Ordering::Relaxed),
            "dropped_connections": state.requests.dropped_connections.load(Ordering::Relaxed),
            "evicted_connections": state.slots.evicted.load(Ordering::Relaxed),
            "refused_connections_busy": state.slots.refused.load(Ordering::Relaxed),
            "open_connections": state.slots.in_use(),
            "limited_clients": state.limiter.lock().expect("limiter lock").tracked_clients(),
        },
        "auth": if routing.sources.is_empty() { "open" } else { "token" },
        "store": {
            "commits": state.commit_stats.commits.load(Ordering::Relaxed),
            "events": state.commit_stats.events.load(Ordering::Relaxed),
        },
        "heartbeats": state.heartbeats.status_json(),
        "mqtt": state.mqtt.as_ref().map(|m| m.json(state.commit_stats.outbox_dropped.load(Ordering::Relaxed))),
    })
}
