//! The daemon's figures: counters bumped where things happen (the HTTP
//! boundary, the ledger thread, the broker connection) and read by status,
//! `/metrics` and MQTT. Plain atomics, so that every part takes only the
//! figures it bumps or shows and none reaches into another's state.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use crate::core::breakdown::Breakdown;
use crate::store::StoredEvent;

/// Refusals and rate limiting, for status.
#[derive(Debug, Default)]
pub struct RequestStats {
    pub refused: AtomicU64,
    pub unauthorized: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Connections closed unanswered: over the per-client cap, or timed out.
    pub dropped_connections: AtomicU64,
}

/// Commit figures, for status and the benchmark's events-per-sync.
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Transactions committed (each is one sync of the WAL).
    pub commits: AtomicU64,
    /// Events stored by them.
    pub events: AtomicU64,
    /// The ledger's figures for `/metrics` (see metrics.rs).
    pub metrics: LedgerMetrics,
    /// MQTT outbox rows dropped (oldest first) because it was full.
    pub outbox_dropped: AtomicU64,
}

/// What the ledger thread counts for the metrics.
#[derive(Debug)]
pub struct LedgerMetrics {
    /// Counted events per (route, source, jail); starts from the store.
    pub breakdown: Mutex<Breakdown>,
    pub dedupe_hits: AtomicU64,
    pub ignored: AtomicU64,
    pub commit_failures: AtomicU64,
    pub commit_seconds: Histogram,
}

impl Default for LedgerMetrics {
    fn default() -> Self {
        LedgerMetrics::new(Breakdown::default())
    }
}

impl LedgerMetrics {
    pub fn new(breakdown: Breakdown) -> Self {
        LedgerMetrics {
            breakdown: Mutex::new(breakdown),
            dedupe_hits: AtomicU64::new(0),
            ignored: AtomicU64::new(0),
            commit_failures: AtomicU64::new(0),
            // 0.5 ms (page cache) to 4 s (a struggling SD card), doubling.
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
        }
    }

    /// One commit (its fsync included) took `took`.
    pub fn commit_done(&self, took: Duration, ok: bool) {
        if ok {
            self.commit_seconds.observe(took.as_secs_f64());
        } else {
            self.commit_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A batch is durable: these events are stored, `dedupe_hits` hooks of
    /// it were replays that did not count.
    pub fn counted(&self, events: &[StoredEvent], dedupe_hits: u64) {
        self.dedupe_hits.fetch_add(dedupe_hits, Ordering::Relaxed);
        let mut b = self.breakdown.lock().expect("breakdown lock");
        for e in events {
            match e.kind.as_str() {
                "hook" => b.add(&e.route, e.source.as_deref(), e.jail.as_deref(), 1),
                "ignored" => {
                    self.ignored.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    }

    /// The counts were reset (one route or all): the metric follows the display.
    pub fn reset(&self, route: Option<&str>) {
        let mut b = self.breakdown.lock().expect("breakdown lock");
        match route {
            Some(r) => b.reset(r),
            None => b.reset_all(),
        }
    }
}

/// One source's heartbeat, as `/api/status` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatSample {
    pub source: String,
    /// One of [`HEARTBEAT_STATES`].
    pub state: String,
    /// When the last heartbeat arrived (unix ms), if ever.
    pub last_ms: Option<u64>,
    /// What the last heartbeat said of fail2ban, if it said.
    pub fail2ban_up: Option<bool>,
}

/// For `banlight status`.
#[derive(Debug, Default)]
pub struct MqttStats {
    pub connected: AtomicBool,
    /// The broker confirmed our subscriptions (hooks, commands) on this connection.
    pub subscribed: AtomicBool,
    /// Connections made since start.
    pub connects: AtomicU64,
    /// Outbox events the broker acknowledged since start.
    pub published: AtomicU64,
    /// Outbox rows waiting (as of the last look).
    pub pending: AtomicU64,
    pub hooks_received: AtomicU64,
    pub hooks_counted: AtomicU64,
    /// Stored, but not counted: the same ban again (its id or dedupe), or
    /// an ignored address.
    pub hooks_not_counted: AtomicU64,
    /// Bad JSON, unknown route, wrong token, ...
    pub hooks_refused: AtomicU64,
    pub commands: AtomicU64,
    pub commands_refused: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

impl MqttStats {
    pub fn status(&self, outbox_dropped: u64) -> MqttStatus {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MqttStatus {
            connected: self.connected.load(Ordering::Relaxed),
            subscribed: self.subscribed.load(Ordering::Relaxed),
            connects: n(&self.connects),
            published: n(&self.published),
            outbox: n(&self.pending),
            outbox_dropped,
            hooks_received: n(&self.hooks_received),
            hooks_counted: n(&self.hooks_counted),
            hooks_not_counted: n(&self.hooks_not_counted),
            hooks_refused: n(&self.hooks_refused),
            commands: n(&self.commands),
            commands_refused: n(&self.commands_refused),
            last_error: self.last_error.lock().expect("mqtt stats lock").clone(),
        }
    }
}

/// The broker connection in `/api/status` (`mqtt`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MqttStatus {
    pub connected: bool,
    pub subscribed: bool,
    pub connects: u64,
    pub published: u64,
    /// Events waiting for the broker.
    pub outbox: u64,
    pub outbox_dropped: u64,
    pub hooks_received: u64,
    pub hooks_counted: u64,
    pub hooks_not_counted: u64,
    pub hooks_refused: u64,
    pub commands: u64,
    pub commands_refused: u64,
    pub last_error: Option<String>,
}
