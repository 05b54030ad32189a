//! The daemon's shared state, owned by `daemon` and handed out in parts:
//! what routes, sources and ignore list are in force (swapped together on
//! reload), the figures, the panel's status, and the handles every part
//! talks through. The HTTP boundary, MQTT, the page, `/metrics` and the
//! control socket each take this, not one another.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::auth::{authorize, AuthError};
use crate::config::{Config, Route, Source};
use crate::core::counters::Counters;
use crate::core::hook::{Hook, HookParams};
use crate::core::ignore::IgnoreList;
use crate::core::ratelimit::RateLimiter;
use crate::figures::{CommitStats, MqttStats, RequestStats};
use crate::heartbeat::Monitor;
use crate::ledger::LedgerHandle;
use crate::panel_status::PanelStatus;
use crate::slots::Slots;

/// What decides whether a hook counts: the routes, who may post, and the
/// addresses never counted. One value, so a reload can never leave a
/// request with new routes and old tokens.
#[derive(Debug, Clone)]
pub struct Routing {
    pub routes: Vec<Route>,
    pub sources: Vec<Source>,
    pub ignore: IgnoreList,
}

impl Routing {
    pub fn of(config: &Config) -> Routing {
        Routing {
            routes: config.routes.clone(),
            sources: config.sources.clone(),
            ignore: config.ignore.clone(),
        }
    }

    /// A hook on `route` (a configured one), whatever its transport: the
    /// token names the source (or, with no sources, the claimed source
    /// stands), then the ignore list marks it. The ignore list is checked
    /// after authorization, so an unknown client cannot fill the log.
    pub fn admit(&self, route: String, params: HookParams) -> Result<Hook, AuthError> {
        let source = authorize(params.token.as_deref(), &self.sources, &route)?.or(params.source);
        // The ip was validated (and made canonical) by `HookParams::set`.
        let ignored = params
            .ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .is_some_and(|ip| self.ignore.contains(ip));
        Ok(Hook {
            route,
            jail: params.jail,
            ip: params.ip,
            source,
            time: params.time,
            ignored,
            event_id: params.id,
        })
    }
}

pub struct State {
    /// Read with [`State::routing`], swapped with [`State::set_routing`].
    pub routing: RwLock<Arc<Routing>>,
    /// Failed requests per client address (HTTP and its 429s).
    pub limiter: Mutex<RateLimiter>,
    pub requests: RequestStats,
    /// Connection slots shared by every listener (see `slots.rs`).
    pub slots: Arc<Slots>,
    pub ledger: LedgerHandle,
    pub counters: Arc<Mutex<Counters>>,
    pub panel: Arc<Mutex<PanelStatus>>,
    pub started: Instant,
    pub commit_stats: Arc<CommitStats>,
    /// Heartbeats per source (issue 11).
    pub heartbeats: Arc<Monitor>,
    /// With `[mqtt]`: the broker connection's figures.
    pub mqtt: Option<Arc<MqttStats>>,
    /// The read endpoints' memory, read-only store and limits (issue 19).
    pub reads: crate::readcache::Reads,
}

impl State {
    /// The routing in force now; a request keeps the one it started with.
    pub fn routing(&self) -> Arc<Routing> {
        self.routing.read().expect("routing lock").clone()
    }

    /// A reload's new routes, sources and ignore list, all at once.
    pub fn set_routing(&self, routing: Routing) {
        // The configured sources keep their /metrics series in the label cap.
        self.commit_stats
            .metrics
            .breakdown
            .lock()
            .expect("breakdown lock")
            .reserve(routing.sources.iter().map(|s| s.name.clone()));
        *self.routing.write().expect("routing lock") = Arc::new(routing);
    }

    /// Rate limits go by real elapsed time, so a wall clock that jumps or
    /// is set back neither frees nor locks out anyone.
    pub fn mono_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// May `ip` be answered, or has it failed too often lately?
    pub fn allowed(&self, ip: IpAddr) -> bool {
        self.limiter
            .lock()
            .expect("limiter lock")
            .allowed(ip, self.mono_ms())
    }

    /// Charges a failure of `ip`: a 4xx, or one that got no response (a
    /// header timeout, a connection held too long, one connection too many).
    pub fn charge(&self, ip: IpAddr) {
        self.limiter
            .lock()
            .expect("limiter lock")
            .charge(ip, self.mono_ms());
    }
}
