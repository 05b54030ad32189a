//! `banlight events`: recent events, newest first, from the store.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::table::{table, text};
use crate::admin::Client;
use crate::config::Millis;
use crate::control::{Control, ControlRequest};
use crate::ledger::EventQuery;

/// At most this many rows per request, whatever the client asks.
const MAX_LIMIT: usize = 100_000;

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    /// Each row as `StoredEvent::to_json` writes it (also `--json`'s shape).
    pub events: Vec<Value>,
}

pub(super) async fn apply(
    control: &Control,
    since_ms: u64,
    route: Option<String>,
    limit: usize,
    ignored: bool,
) -> Result<Reply, String> {
    let q = EventQuery {
        since_ms,
        route,
        limit: limit.min(MAX_LIMIT),
        ignored,
    };
    let events = control.ledger.events(q).await.map_err(|e| e.to_string())?;
    Ok(Reply {
        events: events
            .iter()
            .map(crate::store::StoredEvent::to_json)
            .collect(),
    })
}

pub(super) fn run(
    client: &Client,
    since: &str,
    route: Option<String>,
    limit: usize,
    ignored: bool,
    json: bool,
) -> Result<(), String> {
    let ago: Millis = since.parse().map_err(|e| format!("--since: {e}"))?;
    let reply: Reply = client.ask(&ControlRequest::Events {
        since_ms: since_ms(ago.0),
        route,
        limit,
        ignored,
    })?;
    if json {
        println!("{}", Value::Array(reply.events));
    } else {
        print!("{}", format_events(&reply.events));
    }
    Ok(())
}

/// For `events --since`: milliseconds since the epoch, `since` ago.
pub fn since_ms(ago_ms: u64) -> u64 {
    crate::clock::wall_ms().saturating_sub(ago_ms)
}

pub fn format_events(events: &[Value]) -> String {
    if events.is_empty() {
        return "no events\n".into();
    }
    let mut rows = vec![vec![
        "time".to_string(),
        "route".into(),
        "kind".into(),
        "source".into(),
        "jail".into(),
        "ip".into(),
    ]];
    for e in events {
        let mut row: Vec<String> = ["time", "route", "kind", "source", "jail", "ip"]
            .iter()
            .map(|k| text(&e[*k]))
            .collect();
        // A heartbeat's state is stored in the route column: show it as what
        // happened ("heartbeat down"), not as a route called "down".
        if e["kind"] == crate::heartbeat::EVENT_KIND {
            row[2] = format!("heartbeat {}", row[1]);
            row[1] = "-".into();
        }
        rows.push(row);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn heartbeat_rows_read_as_heartbeats() {
        let text = format_events(&[
            json!({"time": "2026-12-03T10:00:00.000Z", "route": "red", "kind": "hook",
                "source": "web-1", "jail": "sshd", "ip": "203.0.113.7"}),
            json!({"time": "2026-12-03T10:05:00.000Z", "route": "down", "kind": "heartbeat",
                "source": "web-1", "jail": null, "ip": null}),
        ]);
        let beat = text.lines().find(|l| l.contains("10:05")).unwrap();
        assert!(beat.contains("heartbeat down"), "{text}");
        let cells: Vec<&str> = beat.split_whitespace().collect();
        assert_eq!(cells[1], "-", "no state in the route column: {text}");
        let hook = text.lines().find(|l| l.contains("10:00")).unwrap();
        assert!(hook.contains(" red ") && hook.contains(" hook "), "{text}");
    }
}
