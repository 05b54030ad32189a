//! `banlight status`: totals, per-route counts, panel health, requests,
//! heartbeats and MQTT, from `/api/status`'s data (`crate::status`).

use serde_json::Value;

use super::table::{table, text};
use crate::admin::Client;
use crate::control::{Control, ControlRequest};

/// The reply is `/api/status` itself, so scripts get one shape everywhere.
pub(super) fn apply(control: &Control) -> Value {
    crate::status::status_json(&control.state)
}

pub(super) fn run(client: &Client, json: bool) -> Result<(), String> {
    let s = client.call(&ControlRequest::Status)?;
    if json {
        println!("{s}");
    } else {
        print!("{}", format_status(&s));
    }
    Ok(())
}

fn uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

pub fn format_status(s: &Value) -> String {
    let mut out = format!(
        "banlight {} up {}, mode {}, panel {}{}, display {}\n",
        text(&s["version"]),
        uptime(s["uptime_s"].as_u64().unwrap_or(0)),
        text(&s["mode"]),
        text(&s["panel"]["backend"]),
        if s["panel"]["dark"] == Value::Bool(true) {
            " (dark)"
        } else if s["panel"]["quiet"] == Value::Bool(true) {
            " (quiet hours)"
        } else {
            ""
        },
        text(&s["display"]),
    );
    // What the panel measured wrong, one line each (display is above).
    for key in ["board", "leds", "buttons", "power"] {
        if let Some(v) = s["panel"][key]
            .as_str()
            .filter(|v| !["ok", "yes"].contains(v))
        {
            out.push_str(&format!("{key}: {v}\n"));
        }
    }
    out.push('\n');
    let mut rows = vec![vec![
        "route".to_string(),
        "count".into(),
        "24h".into(),
        "last seen".into(),
    ]];
    if let Some(routes) = s["routes"].as_object() {
        // In the config's order (the LED order), as `route_order` gives it;
        // the object alone would come out alphabetically.
        let mut names: Vec<&str> = s["route_order"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        names.retain(|n| routes.contains_key(*n));
        for key in routes.keys() {
            if !names.contains(&key.as_str()) {
                names.push(key);
            }
        }
        for name in names {
            let r = &routes[name];
            rows.push(vec![
                name.to_string(),
                text(&r["count"]),
                text(&r["last_24h"]),
                text(&r["last_seen"]),
            ]);
        }
    }
    rows.push(vec![
        "total".into(),
        text(&s["total"]),
        text(&s["last_24h"]),
        String::new(),
    ]);
    out.push_str(&table(&rows));
    out.push_str(&format!(
        "\nrequests refused {}, unauthorized {}, rate-limited {} (auth: {})\n",
        text(&s["requests"]["refused"]),
        text(&s["requests"]["unauthorized"]),
        text(&s["requests"]["rate_limited"]),
        text(&s["auth"]),
    ));
    out.push_str(&format!(
        "connections open {}, evicted (idle or trickling, to make room) {}, refused (all busy) {}, dropped (per-address cap or timeout) {}\n",
        text(&s["requests"]["open_connections"]),
        text(&s["requests"]["evicted_connections"]),
        text(&s["requests"]["refused_connections_busy"]),
        text(&s["requests"]["dropped_connections"]),
    ));
    out.push_str(&format_heartbeats(&s["heartbeats"]));
    if let Some(m) = s["mqtt"].as_object() {
        out.push_str(&format!(
            "mqtt {}: published {}, outbox {} waiting, {} dropped (outbox full); hooks in {} (counted {}, repeats or ignored {}, refused {}){}\n",
            if m["connected"] == Value::Bool(true) { "connected" } else { "NOT connected" },
            text(&m["published"]),
            text(&m["outbox"]),
            text(&m["outbox_dropped"]),
            text(&m["hooks_received"]),
            text(&m["hooks_counted"]),
            text(&m["hooks_not_counted"]),
            text(&m["hooks_refused"]),
            m["last_error"].as_str().map(|e| format!("; last error: {e}")).unwrap_or_default(),
        ));
    }
    out
}

/// The heartbeat table of `banlight status` (nothing when no source is watched).
fn format_heartbeats(h: &Value) -> String {
    let Some(sources) = h.as_object().filter(|o| !o.is_empty()) else {
        return String::new();
    };
    let mut rows = vec![vec![
        "source".to_string(),
        "heartbeat".into(),
        "last".into(),
        "every".into(),
        "fail2ban".into(),
        "banned".into(),
    ]];
    for (name, b) in sources {
        let secs = |k: &str| {
            b[k].as_u64()
                .map_or("-".to_string(), crate::core::time::duration_text)
        };
        let last = b["last_ms"]
            .as_u64()
            .map_or("never".to_string(), crate::core::time::rfc3339_utc);
        let fail2ban = match b["fail2ban_up"] {
            Value::Bool(true) => "up",
            Value::Bool(false) => "DOWN",
            _ => "-",
        };
        let banned = b["jails"]
            .as_object()
            .map(|j| {
                j.iter()
                    .map(|(jail, n)| format!("{jail}:{n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let state = text(&b["state"]);
        rows.push(vec![
            name.clone(),
            if state == "down" {
                "DOWN".into()
            } else {
                state
            },
            last,
            format!("{} +{} grace", secs("period_ms"), secs("grace_ms")),
            fail2ban.into(),
            banned,
        ]);
    }
    format!("\n{}", table(&rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_lists_routes_in_config_order() {
        let route = |n: u64| json!({"count": n, "last_24h": n, "last_seen": null});
        let s = json!({
            "version": "0.1.0", "uptime_s": 5, "mode": "total", "display": "ok",
            "panel": {"backend": "sim", "dark": false},
            "routes": {"blue": route(2), "green": route(4), "purple": route(3), "red": route(1)},
            "route_order": ["red", "blue", "purple", "green"],
            "total": 10, "last_24h": 10, "requests": {}, "auth": "open",
        });
        let text = format_status(&s);
        let order: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| ["red", "blue", "purple", "green"].contains(w))
            .collect();
        assert_eq!(order, ["red", "blue", "purple", "green"], "{text}");
        let hb = json!({"web-1": {"state": "down", "last_ms": null, "period_ms": 300_000,
            "grace_ms": 60_000, "fail2ban_up": null, "jails": {}}});
        let mut with_hb = s.clone();
        with_hb["heartbeats"] = hb;
        let text = format_status(&with_hb);
        assert!(text.contains("5m +1m grace"), "periods as written: {text}");
        assert!(text.contains("DOWN"), "{text}");
        // an older daemon without route_order: all routes still listed
        let mut old = s.clone();
        old.as_object_mut().unwrap().remove("route_order");
        for name in ["red", "blue", "purple", "green"] {
            assert!(format_status(&old).contains(name));
        }
    }
}
