//! Heartbeats at run time: holds the pure state machine
//! (`core::heartbeat`), takes heartbeats from the HTTP boundary, and one task
//! sleeps until the nearest deadline (no timer at all while nothing is
//! watched or every watched source is down), stores each transition as a
//! `heartbeat` event and tells the engine which sources are down.
//!
//! The machine runs on the daemon's monotonic clock, so a wall-clock step
//! (NTP after a Pi boots without an RTC) cannot make every source late at
//! once; times shown and stored are converted to wall time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::Notify;

use crate::clock::wall_ms;
use crate::config::{Config, Source};
use crate::core::display::DisplayText;
use crate::core::heartbeat::{Heartbeats, NotWatched, Reason, Report, State, Transition};
use crate::core::names::valid_name;
use crate::core::silence::DownSource;
use crate::engine::{EngineHandle, EngineMsg};
use crate::ledger::LedgerHandle;
use crate::panel::Clock;
use crate::request::RequestError;
use crate::store::StoredEvent;

/// The event kind of a heartbeat transition; the event's `route` holds the
/// new state (`up`, `late`, `down`).
pub const EVENT_KIND: &str = "heartbeat";

/// Jails one heartbeat may list (a server has a handful; the body limit
/// bounds it anyway).
const MAX_JAILS: usize = 256;

/// One watched source in `/api/status`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeartbeatStatus {
    /// `new`, `up` or `down`.
    pub state: String,
    /// The last heartbeat, unix ms (`None`: never).
    pub last_ms: Option<u64>,
    pub period_ms: u64,
    pub grace_ms: u64,
    /// What the server last said of its fail2ban (`None`: it did not say).
    pub fail2ban_up: Option<bool>,
    /// Banned addresses per jail, as the server last reported them.
    pub jails: BTreeMap<String, u64>,
}

pub struct Monitor {
    inner: Mutex<Inner>,
    wake: Notify,
    clock: Clock,
    /// Told of every heartbeat and state change (MQTT publishes them).
    changed: std::sync::OnceLock<Arc<Notify>>,
}

struct Inner {
    machine: Heartbeats,
    /// How each watched source shows on the panel when down.
    looks: BTreeMap<String, DownSource>,
    /// Wall time (unix ms) of each source's last heartbeat, read once when
    /// it came: converting the monotonic time at every look gave a value
    /// that wobbled by a millisecond, which MQTT took for a change.
    heard_wall_ms: BTreeMap<String, u64>,
}

/// How a down source shows: the marker pixel of its first allowed route
/// (else the last LED) and that route's label (else its name, if it fits
/// the display, else `----`).
fn look(source: &Source, config: &Config) -> DownSource {
    let route = source
        .routes
        .as_ref()
        .and_then(|r| r.first())
        .and_then(|name| config.routes.iter().find(|r| r.name == *name));
    match route {
        Some(r) => DownSource {
            pixel: r.marker,
            label: r.label,
        },
        None => DownSource {
            pixel: (config.panel.led_count as usize).saturating_sub(1),
            label: DisplayText::parse(&source.name)
                .unwrap_or_else(|_| DisplayText::parse("----").expect("glyphs")),
        },
    }
}

fn specs(config: &Config) -> Vec<(String, crate::core::heartbeat::Spec)> {
    config
        .sources
        .iter()
        .filter_map(|s| Some((s.name.clone(), s.heartbeat?)))
        .collect()
}

fn looks(config: &Config) -> BTreeMap<String, DownSource> {
    config
        .sources
        .iter()
        .filter(|s| s.heartbeat.is_some())
        .map(|s| (s.name.clone(), look(s, config)))
        .collect()
}

impl Monitor {
    pub fn new(config: &Config, clock: Clock) -> Arc<Monitor> {
        let mut machine = Heartbeats::new();
        machine.configure(&specs(config), clock.now_ms());
        Arc::new(Monitor {
            inner: Mutex::new(Inner {
                machine,
                looks: looks(config),
                heard_wall_ms: BTreeMap::new(),
            }),
            wake: Notify::new(),
            clock,
            changed: std::sync::OnceLock::new(),
        })
    }

    /// `changed` is told of every heartbeat heard and every state change.
    pub fn notify_changes(&self, changed: Arc<Notify>) {
        let _ = self.changed.set(changed);
    }

    fn tell_changed(&self) {
        if let Some(n) = self.changed.get() {
            n.notify_one();
        }
    }

    /// A reloaded config: unchanged sources keep their state.
    pub fn configure(&self, config: &Config) {
        let mut inner = self.inner.lock().expect("heartbeats lock");
        inner.machine.configure(&specs(config), self.clock.now_ms());
        inner.looks = looks(config);
        drop(inner);
        self.wake.notify_one();
    }

    /// A heartbeat from `source`.
    pub fn beat(&self, source: &str, report: Report) -> Result<State, NotWatched> {
        let mut inner = self.inner.lock().expect("heartbeats lock");
        let state = inner.machine.beat(source, report, self.clock.now_ms());
        if state.is_ok() {
            inner.heard_wall_ms.insert(source.to_string(), wall_ms());
        }
        drop(inner);
        self.wake.notify_one();
        if state.is_ok() {
            self.tell_changed();
        }
        state
    }

    /// Wall time of a source's last heartbeat (`mono_ms` on the monotonic
    /// clock): as read when it came, else converted now.
    fn last_wall(&self, inner: &Inner, name: &str, mono_ms: Option<u64>) -> Option<u64> {
        let t = mono_ms?;
        Some(
            inner
                .heard_wall_ms
                .get(name)
                .copied()
                .unwrap_or_else(|| self.wall_at(t)),
        )
    }

    /// Wall time of a moment on the monotonic clock.
    fn wall_at(&self, mono_ms: u64) -> u64 {
        wall_ms().saturating_sub(self.clock.now_ms().saturating_sub(mono_ms))
    }

    /// `/api/status` `heartbeats`: per watched source its state, last
    /// heartbeat (unix ms), period, grace and what the server reported.
    pub fn status(&self) -> BTreeMap<String, HeartbeatStatus> {
        let inner = self.inner.lock().expect("heartbeats lock");
        inner
            .machine
            .iter()
            .map(|(name, w)| {
                let status = HeartbeatStatus {
                    state: w.state.as_str().to_string(),
                    last_ms: self.last_wall(&inner, name, w.last_ms),
                    period_ms: w.spec.period_ms,
                    grace_ms: w.spec.grace_ms,
                    fail2ban_up: w.report.fail2ban_up,
                    jails: w.report.jails.clone(),
                };
                (name.to_string(), status)
            })
            .collect()
    }

    /// Per watched source, what `/metrics` shows.
    pub fn samples(&self) -> Vec<crate::figures::HeartbeatSample> {
        let inner = self.inner.lock().expect("heartbeats lock");
        inner
            .machine
            .iter()
            .map(|(name, w)| crate::figures::HeartbeatSample {
                source: name.to_string(),
                state: w.state.as_str().to_string(),
                last_ms: self.last_wall(&inner, name, w.last_ms),
                fail2ban_up: w.report.fail2ban_up,
            })
            .collect()
    }

    /// Moves the states on to now: the transitions, the down sources and
    /// the next deadline.
    fn step(&self) -> (Vec<Transition>, Vec<(String, DownSource)>, Option<u64>) {
        let mut inner = self.inner.lock().expect("heartbeats lock");
        inner.machine.advance(self.clock.now_ms());
        let transitions = inner.machine.take_transitions();
        let down = inner
            .machine
            .down()
            .into_iter()
            .filter_map(|n| Some((n.to_string(), *inner.looks.get(n)?)))
            .collect();
        (transitions, down, inner.machine.next_deadline())
    }

    /// Runs until the daemon stops: sleeps until the nearest deadline or a
    /// heartbeat/reload, stores transitions, tells the engine.
    pub async fn run(
        self: Arc<Self>,
        ledger: LedgerHandle,
        engine: EngineHandle,
        on_change: impl Fn() + Send + 'static,
    ) {
        let mut shown: Vec<(String, DownSource)> = Vec::new();
        loop {
            let (transitions, down, deadline) = self.step();
            for t in &transitions {
                let why = match t.reason {
                    Reason::Heard => "heartbeat received",
                    Reason::Silent => "no heartbeat within the period",
                    Reason::Fail2banDown => "the server says fail2ban does not answer",
                };
                if t.to == State::Down {
                    tracing::warn!(
                        source = t.source,
                        from = t.from.as_str(),
                        "source is down: {why}"
                    );
                } else {
                    tracing::info!(
                        source = t.source,
                        from = t.from.as_str(),
                        to = t.to.as_str(),
                        "heartbeat: {why}"
                    );
                }
                let event = StoredEvent {
                    ts_ms: self.wall_at(t.at_ms),
                    route: t.to.as_str().to_string(),
                    kind: EVENT_KIND.to_string(),
                    jail: None,
                    ip: None,
                    source: Some(t.source.clone()),
                    event_id: None,
                };
                if let Err(e) = ledger.record(event).await {
                    tracing::error!("could not store the heartbeat transition: {e}");
                }
            }
            if !transitions.is_empty() {
                self.tell_changed();
                on_change();
            }
            let recovered = transitions
                .iter()
                .any(|t| t.from == State::Down && t.to == State::Up);
            // Also when only a look changed (a reload moved a route's marker).
            if down != shown || recovered {
                engine.send(EngineMsg::Silence(
                    down.iter().map(|(_, d)| *d).collect(),
                    recovered,
                ));
                shown = down;
            }
            match deadline {
                Some(at) => {
                    let at = self.clock.instant_at(at);
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }
}

/// The source a heartbeat's token belongs to (every source is compared, so
/// timing does not say which one matched).
pub fn identify<'a>(
    token: Option<&str>,
    sources: &'a [Source],
) -> Result<&'a Source, RequestError> {
    let token = token.ok_or(RequestError::Unauthorized)?;
    crate::auth::find_source(token, sources).ok_or(RequestError::Unauthorized)
}

/// The optional JSON body of `POST /api/heartbeat`:
/// `{"fail2ban": true|false, "jails": {"sshd": 3, ...}}`. Other keys are
/// ignored, so a newer script can talk to an older appliance.
pub fn parse_report(content_type: Option<&[u8]>, body: &[u8]) -> Result<Report, RequestError> {
    let bad = |m: String| RequestError::BadRequest(m);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Report::default());
    }
    let is_json = content_type
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .is_none_or(|v| v.eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(bad(
            "send the heartbeat body as application/json: {\"fail2ban\": true, \"jails\": {\"sshd\": 3}}".into(),
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the heartbeat body is not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(bad("the heartbeat body must be a JSON object".into()));
    };
    let fail2ban_up = match map.get("fail2ban") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(bad("\"fail2ban\" must be true, false or null".into())),
    };
    let mut jails = BTreeMap::new();
    match map.get("jails") {
        None | Some(Value::Null) => {}
        Some(Value::Object(j)) => {
            if j.len() > MAX_JAILS {
                return Err(bad(format!("more than {MAX_JAILS} jails")));
            }
            for (name, banned) in j {
                if !valid_name(name) {
                    return Err(bad(format!(
                        "invalid jail name \"{}\": use 1-64 letters, digits or . _ - : @",
                        name.chars()
                            .take(64)
                            .flat_map(char::escape_default)
                            .collect::<String>()
                    )));
                }
                let n = banned.as_u64().ok_or_else(|| {
                    bad(format!(
                        "the banned count of jail \"{name}\" must be a whole number >= 0"
                    ))
                })?;
                jails.insert(name.clone(), n);
            }
        }
        Some(_) => {
            return Err(bad(
                "\"jails\" must be an object of jail names and banned counts".into(),
            ))
        }
    }
    Ok(Report { fail2ban_up, jails })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse_and_bad_ones_are_refused() {
        let json = Some(&b"application/json"[..]);
        assert_eq!(parse_report(None, b""), Ok(Report::default()));
        assert_eq!(parse_report(json, b"  \n"), Ok(Report::default()));
        let r = parse_report(
            json,
            br#"{"fail2ban": true, "jails": {"sshd": 3, "nginx-http-auth": 0}, "version": 2}"#,
        )
        .unwrap();
        assert_eq!(r.fail2ban_up, Some(true));
        assert_eq!(r.jails.len(), 2);
        assert_eq!(r.jails["sshd"], 3);
        let r = parse_report(None, br#"{"fail2ban": false}"#).unwrap();
        assert_eq!((r.fail2ban_up, r.jails.len()), (Some(false), 0));
        for (ctype, body, msg) in [
            (json, &b"{"[..], "not JSON"),
            (json, b"[1]", "object"),
            (json, br#"{"fail2ban": "yes"}"#, "true, false"),
            (json, br#"{"jails": [1]}"#, "object of jail"),
            (json, br#"{"jails": {"sshd": -1}}"#, "whole number"),
            (json, br#"{"jails": {"sshd": 1.5}}"#, "whole number"),
            (json, br#"{"jails": {"a b": 1}}"#, "invalid jail"),
            (
                Some(&b"application/x-www-form-urlencoded"[..]),
                b"fail2ban=1",
                "application/json",
            ),
        ] {
            match parse_report(ctype, body) {
                Err(RequestError::BadRequest(m)) => assert!(m.contains(msg), "{m}"),
                other => panic!("{body:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn tokens_identify_their_source() {
        let sources = vec![
            Source {
                name: "a".into(),
                token: "aaaaaaaaaaaaaaaaaaaa".into(),
                routes: None,
                heartbeat: None,
            },
            Source {
                name: "b".into(),
                token: "bbbbbbbbbbbbbbbbbbbb".into(),
                routes: None,
                heartbeat: None,
            },
        ];
        assert_eq!(
            identify(Some("bbbbbbbbbbbbbbbbbbbb"), &sources)
                .unwrap()
                .name,
            "b"
        );
        assert_eq!(
            identify(Some("bbbb"), &sources).err(),
            Some(RequestError::Unauthorized)
        );
        assert_eq!(
            identify(None, &sources).err(),
            Some(RequestError::Unauthorized)
        );
    }

    #[test]
    fn down_sources_show_on_their_route_marker_or_the_last_led() {
        let config = Config::parse(
            std::path::Path::new("t.toml"),
            "[[source]]\nname = \"web-1\"\ntoken = \"0123456789abcdef0\"\nroutes = [\"blue\"]\nheartbeat = \"1m\"\n[[source]]\nname = \"db\"\ntoken = \"0123456789abcdef1\"\nheartbeat = \"1m\"\n[[source]]\nname = \"mail-relay\"\ntoken = \"0123456789abcdef2\"\nheartbeat = \"1m\"\n[[source]]\nname = \"quiet\"\ntoken = \"0123456789abcdef3\"\n",
        )
        .unwrap();
        let l = looks(&config);
        assert_eq!(l.len(), 3, "only sources with a heartbeat");
        assert_eq!(l["web-1"].pixel, 2);
        assert_eq!(l["web-1"].label.to_string(), "bLUE");
        assert_eq!(l["db"].pixel, 7);
        assert_eq!(l["db"].label.to_string(), "db  ");
        assert_eq!(l["mail-relay"].label.to_string(), "----");
    }

    /// The last heartbeat's time is read once: looked at again and again
    /// (MQTT compares its payload on every change) it never moves, where
    /// the converted monotonic time wobbled by a millisecond.
    #[test]
    fn the_last_heartbeat_time_does_not_wobble() {
        let config = Config::parse(
            std::path::Path::new("t.toml"),
            "[[source]]\nname = \"web-1\"\ntoken = \"0123456789abcdef0\"\nheartbeat = \"1m\"\n",
        )
        .unwrap();
        let clock = Clock::start();
        let m = Monitor::new(&config, clock);
        m.beat("web-1", Report::default()).unwrap();
        let first = m.samples()[0].last_ms.expect("heard");
        let status = m.status()["web-1"].last_ms;
        assert_eq!(status, Some(first));
        // Looks spread over 30 ms of both clocks (spun through, not slept).
        let t0 = clock.now_ms();
        let mut looks = 0;
        while clock.now_ms() < t0 + 30 {
            assert_eq!(m.samples()[0].last_ms, Some(first), "after {looks} looks");
            assert_eq!(m.status()["web-1"].last_ms, Some(first));
            looks += 1;
        }
    }
}
