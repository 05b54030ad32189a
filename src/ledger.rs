//! The one thread that owns the counts: it decides whether a hook counts
//! (dedupe), stores every counted event durably with group commit, and only
//! then answers. Concurrent hooks queue while a commit syncs, and the next
//! batch takes all of them in one transaction, so one fsync serves many.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::clock::{wall_ms, Clock, SystemClock};
use crate::core::clockcheck::{ClockStep, ClockWatch, PruneHorizon};
use crate::core::counters::Counters;
use crate::core::dedupe::{BanKey, Dedupe};
use crate::core::history::{Activity, KEEP_MS};
use crate::core::hook::Hook;
use crate::core::loglimit::{LogLimit, LogNow};
use crate::core::verdict::{self, Verdict};
use crate::figures::CommitStats;
use crate::store::{CommitExtras, OutboxRow, Store, StoreError, StoredEvent};

/// Largest batch committed at once.
const MAX_BATCH: usize = 1024;
/// Distinct (route, jail, ip) keys remembered for dedupe: more than the bans
/// a dozen busy servers replay at once, in about 3 MB.
const DEDUPE_CAPACITY: usize = 65_536;
const PRUNE_EVERY_MS: u64 = 3_600_000;
/// The event cap is enforced after every commit, so `max_events` holds
/// exactly (a rowid range delete: nothing to do costs one index probe).
const CAP_EVERY_EVENTS: u64 = 1;

/// Deletes by age only when the clock can be trusted (see core::clockcheck),
/// and never past `cutoff_ms`. Holding back is said only when something
/// would have been pruned, and once a run (`said`): keeping events longer
/// loses nothing, so it is news, not a warning.
fn prune_checked(
    store: &mut Store,
    now_ms: u64,
    cutoff_ms: u64,
    synced: bool,
    said: &mut bool,
) -> Result<usize, StoreError> {
    let newest = store.newest_event_ms()?;
    if !crate::core::clockcheck::prune_allowed(now_ms, newest, synced) {
        let due = store.oldest_event_ms()?.is_some_and(|t| t < cutoff_ms);
        if due && !*said {
            *said = true;
            tracing::info!(
                now_ms,
                newest_event_ms = newest,
                synchronised = synced,
                "the clock looks wrong (not synchronised, or behind the newest stored event): not pruning old events until it is right"
            );
        }
        return Ok(0);
    }
    store.prune(cutoff_ms)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookOutcome {
    pub counted: bool,
    /// Why it did not count (`None` when it did): see [`Verdict::reason`].
    pub reason: Option<&'static str>,
    pub count: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub since_ms: u64,
    pub route: Option<String>,
    pub limit: usize,
    /// Only `ignored` events (else everything but them).
    pub ignored: bool,
}

/// Why the ledger could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("the store is shut down")]
    ShutDown,
    #[error("the store stopped before answering")]
    Stopped,
    /// SQLite failed (the detail is for the log, not for clients).
    #[error("{0}")]
    Store(String),
}

impl From<StoreError> for LedgerError {
    fn from(e: StoreError) -> Self {
        LedgerError::Store(e.to_string())
    }
}

pub type Reply<T> = oneshot::Sender<Result<T, LedgerError>>;

pub enum LedgerMsg {
    Hook(Hook, Reply<HookOutcome>),
    /// Checkpoints the WAL into the database file (before power-off).
    Flush(Reply<()>),
    Reset(Option<String>, String, Reply<()>),
    Events(EventQuery, Reply<Vec<StoredEvent>>),
    SetDedupeWindow(u64),
    /// The wall clock was set: look at it now, not only at the next hook.
    ClockSet,
    /// Stores an event that counts nothing (a heartbeat transition).
    Record(StoredEvent, Reply<()>),
    /// MQTT: the oldest outbox rows after a seq.
    OutboxAfter(u64, usize, Reply<Vec<OutboxRow>>),
    /// MQTT: the broker acknowledged these rows (PUBACK): remove them.
    OutboxAcked(Vec<u64>, Reply<()>),
    OutboxLen(Reply<u64>),
    /// A kept panel setting (the LED brightness set from Home Assistant).
    Setting(&'static str, Reply<Option<i64>>),
    SetSetting(&'static str, i64, Reply<()>),
    /// Commit what is queued and stop.
    Close,
}

/// The store's key for the LED brightness set over MQTT (Home Assistant's
/// number), kept across restarts.
pub const KEPT_LED_BRIGHTNESS: &str = "led_brightness";

#[derive(Clone)]
pub struct LedgerHandle {
    tx: mpsc::Sender<LedgerMsg>,
}

impl LedgerHandle {
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> LedgerMsg) -> Result<T, LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| LedgerError::ShutDown)?;
        rx.await.map_err(|_| LedgerError::Stopped)?
    }

    /// Counts a hook; returns once the event is durable (or known not to count).
    pub async fn hook(&self, hook: Hook) -> Result<HookOutcome, LedgerError> {
        self.ask(|r| LedgerMsg::Hook(hook, r)).await
    }

    pub async fn flush(&self) -> Result<(), LedgerError> {
        self.ask(LedgerMsg::Flush).await
    }

    pub async fn reset(&self, route: Option<String>, source: String) -> Result<(), LedgerError> {
        self.ask(|r| LedgerMsg::Reset(route, source, r)).await
    }

    pub async fn events(&self, query: EventQuery) -> Result<Vec<StoredEvent>, LedgerError> {
        self.ask(|r| LedgerMsg::Events(query, r)).await
    }

    /// Commits what is queued and stops the ledger thread.
    pub async fn close(&self) {
        let _ = self.tx.send(LedgerMsg::Close).await;
    }

    /// Stores an event that counts nothing (a heartbeat transition).
    pub async fn record(&self, event: StoredEvent) -> Result<(), LedgerError> {
        self.ask(|r| LedgerMsg::Record(event, r)).await
    }

    pub async fn outbox_after(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, LedgerError> {
        self.ask(|r| LedgerMsg::OutboxAfter(after_seq, limit, r))
            .await
    }

    pub async fn outbox_acked(&self, seqs: Vec<u64>) -> Result<(), LedgerError> {
        self.ask(|r| LedgerMsg::OutboxAcked(seqs, r)).await
    }

    pub async fn outbox_len(&self) -> Result<u64, LedgerError> {
        self.ask(LedgerMsg::OutboxLen).await
    }

    /// A panel setting kept across restarts, if one was set.
    pub async fn setting(&self, key: &'static str) -> Result<Option<i64>, LedgerError> {
        self.ask(|r| LedgerMsg::Setting(key, r)).await
    }

    /// Keeps a panel setting across restarts.
    pub async fn set_setting(&self, key: &'static str, value: i64) -> Result<(), LedgerError> {
        self.ask(|r| LedgerMsg::SetSetting(key, value, r)).await
    }

    pub async fn set_dedupe_window(&self, ms: u64) {
        let _ = self.tx.send(LedgerMsg::SetDedupeWindow(ms)).await;
    }

    /// Tells the ledger the wall clock was set. Never blocks: with a full
    /// queue the ledger is busy and looks at the clock after that batch anyway.
    pub fn clock_set(&self) {
        let _ = self.tx.try_send(LedgerMsg::ClockSet);
    }

    /// Waits until every message sent before has been handled.
    pub async fn sync(&self) -> Result<(), LedgerError> {
        self.events(EventQuery {
            since_ms: u64::MAX,
            route: None,
            limit: 1,
            ignored: false,
        })
        .await
        .map(|_| ())
    }
}

/// The store as the counting decision sees it. A store error reads as
/// "not seen": better one count too many than a ban lost.
struct StoreSeen<'a>(&'a Store);

impl verdict::Seen for StoreSeen<'_> {
    fn event_id(&self, id: &str) -> bool {
        self.0.has_event_id(id).unwrap_or(false)
    }
    fn ban_near(&self, key: &BanKey, ts_ms: u64, window_ms: u64) -> bool {
        self.0
            .has_ban_near(&key.route, &key.jail, &key.ip, ts_ms, window_ms)
            .unwrap_or(false)
    }
}

/// The event row for a hook.
fn stored(h: &Hook, kind: &str, ts_ms: u64, event_id: Option<String>) -> StoredEvent {
    StoredEvent {
        ts_ms,
        route: h.route.clone(),
        kind: kind.into(),
        jail: h.jail.clone(),
        ip: h.ip.clone(),
        source: h.source.clone(),
        event_id,
    }
}

/// Dedupe as of `now`, remembering the bans stored within its window: a
/// restart (or a clock correction) must not let a replayed ban count twice.
fn seeded_dedupe(store: &Store, now: u64, window_ms: u64) -> Result<Dedupe, StoreError> {
    let mut dedupe = Dedupe::new(window_ms, DEDUPE_CAPACITY);
    for (ts, route, jail, ip) in store.recent_bans(now.saturating_sub(window_ms))? {
        if ts <= now {
            dedupe.remember(BanKey { route, jail, ip }, ts);
        }
    }
    Ok(dedupe)
}

pub struct Ledger {
    store: Store,
    pub stats: Arc<CommitStats>,
    /// The page's chart counts, updated with every commit (issue 19, item 1).
    pub activity: Arc<Mutex<Activity>>,
    counters: Arc<Mutex<Counters>>,
    dedupe: Dedupe,
    retention_ms: u64,
    max_events: u64,
    events_since_cap: u64,
    cap_log: LogLimit,
    outbox_log: LogLimit,
    /// A stuck store fails every batch: the first failure, then a line
    /// every 30 s (the HTTP side limits its own line the same way).
    store_error_log: LogLimit,
    /// Told the route name of every counted event (for the animation).
    on_counted: Box<dyn FnMut(&str) + Send>,
    clock: Arc<dyn Clock>,
    /// Notices steps of the wall clock (see `check_clock`).
    clock_watch: ClockWatch,
    horizon: PruneHorizon,
    dedupe_window_ms: u64,
    last_prune_mono_ms: u64,
    /// The "not pruning: clock looks wrong" line was logged (once a run).
    prune_held_said: bool,
    /// MQTT: every counted event also goes into the outbox (at most `.0`
    /// rows); `.1` wakes the publisher after a commit.
    outbox: Option<(u64, Arc<tokio::sync::Notify>)>,
}

impl Ledger {
    /// Loads counts and recent bans from the store.
    pub fn open(
        store: Store,
        dedupe_window_ms: u64,
        retention_days: u64,
        max_events: u64,
        on_counted: Box<dyn FnMut(&str) + Send>,
    ) -> Result<(Ledger, Arc<Mutex<Counters>>), StoreError> {
        Self::open_with_clock(
            store,
            dedupe_window_ms,
            retention_days,
            max_events,
            on_counted,
            Arc::new(SystemClock::default()),
        )
    }

    /// `open`, with the `/metrics` series of these (configured) sources
    /// reserved in the label cap (see `core::breakdown`).
    pub fn open_reserving(
        store: Store,
        dedupe_window_ms: u64,
        retention_days: u64,
        max_events: u64,
        on_counted: Box<dyn FnMut(&str) + Send>,
        reserved: &[String],
    ) -> Result<(Ledger, Arc<Mutex<Counters>>), StoreError> {
        let clock = Arc::new(SystemClock::default());
        Self::open_inner(
            store,
            (dedupe_window_ms, retention_days, max_events),
            on_counted,
            clock,
            reserved,
        )
    }

    /// The same, reading the time from `clock`.
    pub fn open_with_clock(
        store: Store,
        dedupe_window_ms: u64,
        retention_days: u64,
        max_events: u64,
        on_counted: Box<dyn FnMut(&str) + Send>,
        clock: Arc<dyn Clock>,
    ) -> Result<(Ledger, Arc<Mutex<Counters>>), StoreError> {
        let limits = (dedupe_window_ms, retention_days, max_events);
        Self::open_inner(store, limits, on_counted, clock, &[])
    }

    fn open_inner(
        store: Store,
        (dedupe_window_ms, retention_days, max_events): (u64, u64, u64),
        on_counted: Box<dyn FnMut(&str) + Send>,
        clock: Arc<dyn Clock>,
        reserved: &[String],
    ) -> Result<(Ledger, Arc<Mutex<Counters>>), StoreError> {
        let now = clock.wall_ms();
        let mono = clock.mono_ms();
        let mut store = store;
        let retention_ms = retention_days.saturating_mul(86_400_000);
        let cutoff = now.saturating_sub(retention_ms);
        let mut prune_held_said = false;
        let pruned = prune_checked(
            &mut store,
            now,
            cutoff,
            clock.synchronised(),
            &mut prune_held_said,
        )?;
        let capped = store.cap_events(max_events)?;
        if pruned + capped > 0 {
            tracing::info!(
                pruned,
                capped,
                retention_days,
                max_events,
                "pruned old events"
            );
        }
        let counters = Arc::new(Mutex::new(store.load_counters(now)?));
        let activity = Arc::new(Mutex::new(Activity::of(
            &store.activity(now.saturating_sub(KEEP_MS))?,
        )));
        let store_breakdown = store.load_breakdown(reserved)?;
        let dedupe = seeded_dedupe(&store, now, dedupe_window_ms)?;
        let mut clock_watch = ClockWatch::default();
        clock_watch.observe(now, mono);
        let ledger = Ledger {
            store,
            counters: counters.clone(),
            activity,
            dedupe,
            retention_ms,
            max_events,
            events_since_cap: 0,
            cap_log: LogLimit::new(60_000),
            stats: Arc::new(CommitStats {
                metrics: crate::figures::LedgerMetrics::new(store_breakdown),
                ..Default::default()
            }),
            on_counted,
            clock,
            clock_watch,
            horizon: PruneHorizon::new(cutoff, mono),
            dedupe_window_ms,
            last_prune_mono_ms: mono,
            prune_held_said,
            outbox_log: LogLimit::new(60_000),
            store_error_log: LogLimit::new(30_000),
            outbox: None,
        };
        Ok((ledger, counters))
    }

    /// Puts every counted event into the MQTT outbox too (in the same
    /// transaction), keeping at most `max` rows; `wake` is notified after
    /// each commit that added some.
    pub fn with_outbox(mut self, max: u64, wake: Arc<tokio::sync::Notify>) -> Self {
        self.outbox = Some((max, wake));
        self
    }

    /// Runs on its own thread until every handle is dropped.
    pub fn spawn(self) -> (LedgerHandle, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let join = std::thread::Builder::new()
            .name("ledger".into())
            .spawn(move || self.run(rx))
            .expect("spawn ledger thread");
        (LedgerHandle { tx }, join)
    }

    fn run(mut self, mut rx: mpsc::Receiver<LedgerMsg>) {
        let mut hooks: Vec<(Hook, Reply<HookOutcome>)> = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            // Take everything already waiting: that is the group in group commit.
            while let Some(msg) = next.take() {
                match msg {
                    LedgerMsg::Hook(h, reply) => hooks.push((h, reply)),
                    LedgerMsg::Close => {
                        self.commit_hooks(&mut hooks);
                        tracing::debug!("ledger closed");
                        return;
                    }
                    other => {
                        self.commit_hooks(&mut hooks);
                        self.handle_other(other);
                    }
                }
                if hooks.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            self.commit_hooks(&mut hooks);
            self.check_clock();
            self.prune_if_due();
        }
        tracing::debug!("ledger stopped");
    }

    fn prune_if_due(&mut self) {
        let mono = self.clock.mono_ms();
        if mono.saturating_sub(self.last_prune_mono_ms) < PRUNE_EVERY_MS {
            return;
        }
        self.last_prune_mono_ms = mono;
        let now = self.clock.wall_ms();
        let cutoff = self.horizon.cutoff(now, mono, self.retention_ms);
        let synced = self.clock.synchronised();
        match prune_checked(
            &mut self.store,
            now,
            cutoff,
            synced,
            &mut self.prune_held_said,
        ) {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "pruned old events"),
            Err(e) => tracing::warn!("pruning old events failed: {e}"),
        }
    }

    /// Notices a step of the wall clock. A clock set back (it had run ahead:
    /// a Pi without RTC, a bad NTP answer, a typo in `date -s`) left events
    /// stamped in the future; they are moved back by the measured step, so
    /// the history shows when they happened, and the 24 h window, last-seen
    /// times and dedupe are rebuilt from the store. Called after every batch
    /// and when the kernel reports the clock was set (see `clockwake`).
    fn check_clock(&mut self) {
        let (now, mono) = (self.clock.wall_ms(), self.clock.mono_ms());
        match self.clock_watch.observe(now, mono) {
            None => {}
            Some(ClockStep::Forward(by)) => {
                tracing::warn!(
                    by_s = by / 1000,
                    "the wall clock stepped forward; pruning still goes by real elapsed time"
                );
            }
            Some(ClockStep::Back(by)) => {
                tracing::warn!(
                    by_s = by / 1000,
                    "the wall clock was set back; re-dating the events stamped while it ran ahead"
                );
                if let Err(e) = self.after_clock_set_back(now, by) {
                    tracing::error!("could not re-date events after the clock was set back: {e}");
                }
            }
        }
    }

    fn after_clock_set_back(&mut self, now: u64, by: u64) -> Result<(), StoreError> {
        let moved = self.store.redate_future_events(now, by)?;
        tracing::info!(events = moved, "events re-dated");
        let fresh = self.store.load_counters(now)?;
        *self.counters.lock().expect("counters lock") = fresh;
        let slots = self.store.activity(now.saturating_sub(KEEP_MS))?;
        *self.activity.lock().expect("activity lock") = Activity::of(&slots);
        self.dedupe = seeded_dedupe(&self.store, now, self.dedupe_window_ms)?;
        Ok(())
    }

    fn handle_other(&mut self, msg: LedgerMsg) {
        match msg {
            LedgerMsg::Hook(..) | LedgerMsg::Close => unreachable!("handled in run"),
            LedgerMsg::Flush(reply) => {
                let r = self.store.checkpoint().map_err(LedgerError::from);
                let _ = reply.send(r);
            }
            LedgerMsg::Reset(route, source, reply) => {
                let r = self
                    .store
                    .reset(route.as_deref(), self.clock.wall_ms(), &source);
                if r.is_ok() {
                    let mut c = self.counters.lock().expect("counters lock");
                    match &route {
                        Some(r) => c.reset(r),
                        None => c.reset_all(),
                    }
                    self.stats.metrics.reset(route.as_deref());
                }
                let _ = reply.send(r.map_err(LedgerError::from));
            }
            LedgerMsg::Events(q, reply) => {
                let r = self
                    .store
                    .events_of(q.since_ms, q.route.as_deref(), q.limit, q.ignored);
                let _ = reply.send(r.map_err(LedgerError::from));
            }
            LedgerMsg::SetDedupeWindow(ms) => {
                self.dedupe_window_ms = ms;
                self.dedupe.set_window(ms)
            }
            LedgerMsg::ClockSet => self.check_clock(),
            LedgerMsg::Record(event, reply) => {
                let r = self.store.commit(std::slice::from_ref(&event), &[]);
                if r.is_ok() {
                    self.stats.commits.fetch_add(1, Ordering::Relaxed);
                    self.stats.events.fetch_add(1, Ordering::Relaxed);
                }
                let _ = reply.send(r.map_err(LedgerError::from));
            }
            LedgerMsg::OutboxAfter(after, limit, reply) => {
                let r = self.store.outbox_after(after, limit);
                let _ = reply.send(r.map_err(LedgerError::from));
            }
            LedgerMsg::OutboxAcked(seqs, reply) => {
                let r = self.store.outbox_remove(&seqs);
                let _ = reply.send(r.map_err(LedgerError::from));
            }
            LedgerMsg::OutboxLen(reply) => {
                let _ = reply.send(self.store.outbox_len().map_err(LedgerError::from));
            }
            LedgerMsg::Setting(key, reply) => {
                let _ = reply.send(self.store.setting(key).map_err(LedgerError::from));
            }
            LedgerMsg::SetSetting(key, value, reply) => {
                let r = self.store.set_setting(key, value);
                let _ = reply.send(r.map_err(LedgerError::from));
            }
        }
    }

    fn commit_hooks(&mut self, hooks: &mut Vec<(Hook, Reply<HookOutcome>)>) {
        if hooks.is_empty() {
            return;
        }
        // A step of the clock is dealt with before events are stamped by it.
        self.check_clock();
        let now = self.clock.wall_ms();
        // Decide against the live counters without changing them: what the
        // batch adds is applied only once it is durable, so a failed commit
        // changes nothing (and no per-batch copy of the counters is made).
        let batch: Vec<&Hook> = hooks.iter().map(|(h, _)| h).collect();
        let (verdicts, remembered) = verdict::decide(
            &batch,
            now,
            self.dedupe_window_ms,
            &mut self.dedupe,
            &StoreSeen(&self.store),
        );
        let mut events = Vec::new();
        // Event ids counted in this batch (and to store with it).
        let mut new_ids: Vec<(String, u64)> = Vec::new();
        // (route, count after this batch, last seen) for every route it touches
        let mut counts: Vec<(String, u64, Option<u64>)> = Vec::new();
        let mut outcomes = Vec::with_capacity(hooks.len());
        let mut dedupe_hits = 0u64;
        {
            let live = self.counters.lock().expect("counters lock");
            let mut total = live.total();
            for (h, v) in batch.iter().zip(&verdicts) {
                let at = match counts.iter().position(|(r, _, _)| *r == h.route) {
                    Some(i) => i,
                    None => {
                        let rc = live.get(&h.route);
                        counts.push((
                            h.route.clone(),
                            rc.map_or(0, |r| r.count),
                            rc.and_then(|r| r.last_seen_ms),
                        ));
                        counts.len() - 1
                    }
                };
                match *v {
                    Verdict::Counted { ts_ms } => {
                        if let Some(id) = &h.event_id {
                            new_ids.push((id.clone(), now));
                        }
                        let entry = &mut counts[at];
                        entry.1 = entry.1.saturating_add(1);
                        entry.2 = Some(entry.2.map_or(ts_ms, |t| t.max(ts_ms)));
                        total = total.saturating_add(1);
                        events.push(stored(h, "hook", ts_ms, h.event_id.clone()));
                    }
                    Verdict::Ignored => events.push(stored(h, "ignored", now, None)),
                    Verdict::SameBan => dedupe_hits += 1,
                    Verdict::SameId => {}
                }
                outcomes.push(HookOutcome {
                    counted: v.counted(),
                    reason: v.reason(),
                    count: counts[at].1,
                    total,
                });
            }
        }
        // Routes the batch only looked at need no write.
        counts.retain(|(r, _, _)| events.iter().any(|e| e.route == *r && e.kind == "hook"));
        let extras = CommitExtras {
            event_ids: &new_ids,
            outbox_max: self.outbox.as_ref().map(|(max, _)| *max),
        };
        let result = if events.is_empty() {
            Ok(0)
        } else {
            let started = std::time::Instant::now();
            let r = self.store.commit_with(&events, &counts, extras);
            self.stats.metrics.commit_done(started.elapsed(), r.is_ok());
            r
        };
        match result {
            Ok(dropped) => {
                if dropped > 0 {
                    self.stats
                        .outbox_dropped
                        .fetch_add(dropped, Ordering::Relaxed);
                    // A long outage drops a few on every commit: once a minute.
                    if let LogNow::Log { suppressed } = self.outbox_log.hit(wall_ms()) {
                        tracing::warn!(
                            dropped,
                            times_since_last_line = suppressed,
                            total_dropped = self.stats.outbox_dropped.load(Ordering::Relaxed),
                            "MQTT outbox full: oldest undelivered events dropped (broker away for long? raise [mqtt] outbox_max)"
                        );
                    }
                }
                if let Some((_, wake)) = &self.outbox {
                    if events.iter().any(|e| e.kind == "hook") {
                        wake.notify_one();
                    }
                }
                if !events.is_empty() {
                    self.stats.commits.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .events
                        .fetch_add(events.len() as u64, Ordering::Relaxed);
                }
                self.stats.metrics.counted(&events, dedupe_hits);
                self.events_since_cap += events.len() as u64;
                if self.events_since_cap >= CAP_EVERY_EVENTS {
                    self.events_since_cap = 0;
                    match self.store.cap_events(self.max_events) {
                        Ok(0) => {}
                        // Full log: every commit deletes a few; say so once a minute.
                        Ok(n) => {
                            if let LogNow::Log { suppressed } =
                                self.cap_log.hit(self.clock.mono_ms())
                            {
                                tracing::warn!(
                                    deleted = n,
                                    times_since_last_line = suppressed,
                                    max_events = self.max_events,
                                    "event log full: oldest events deleted (counts kept)"
                                );
                            }
                        }
                        Err(e) => tracing::warn!("capping the event log failed: {e}"),
                    }
                }
                let mut live = self.counters.lock().expect("counters lock");
                for e in events.iter().filter(|e| e.kind == "hook") {
                    live.record(&e.route, e.ts_ms);
                }
                drop(live);
                let mut activity = self.activity.lock().expect("activity lock");
                for e in events.iter().filter(|e| e.kind == "hook") {
                    activity.add(&e.route, e.ts_ms);
                }
                drop(activity);
                for (i, (h, reply)) in hooks.drain(..).enumerate() {
                    if outcomes[i].counted {
                        (self.on_counted)(&h.route);
                    }
                    let _ = reply.send(Ok(outcomes[i]));
                }
            }
            Err(e) => {
                if let LogNow::Log { suppressed } = self.store_error_log.hit(self.clock.mono_ms()) {
                    tracing::error!(
                        "could not store {} events: {e} ({suppressed} more failed commits since the last such line)",
                        events.len()
                    );
                }
                for key in &remembered {
                    self.dedupe.forget(key);
                }
                for (_, reply) in hooks.drain(..) {
                    let _ = reply.send(Err(LedgerError::Store(format!(
                        "could not store the event: {e}"
                    ))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// A running ledger on the store in `dir` (dedupe window 10 minutes,
    /// 90 days' retention).
    struct Running {
        handle: LedgerHandle,
        join: std::thread::JoinHandle<()>,
        counters: Arc<Mutex<Counters>>,
        /// The routes it told the animation about, in order.
        routes_counted: Arc<Mutex<Vec<String>>>,
        stats: Arc<CommitStats>,
    }

    fn start(dir: &std::path::Path, max_events: u64) -> Running {
        let routes_counted = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = routes_counted.clone();
        let (ledger, counters) = Ledger::open(
            Store::open(dir).unwrap(),
            600_000,
            90,
            max_events,
            Box::new(move |r: &str| seen.lock().unwrap().push(r.to_string())),
        )
        .unwrap();
        let stats = ledger.stats.clone();
        let (handle, join) = ledger.spawn();
        Running {
            handle,
            join,
            counters,
            routes_counted,
            stats,
        }
    }

    async fn stop(handle: LedgerHandle, join: std::thread::JoinHandle<()>) {
        handle.close().await;
        drop(handle);
        join.join().unwrap();
    }

    fn hook(route: &str, ip: Option<&str>) -> Hook {
        Hook {
            route: route.into(),
            jail: Some("sshd".into()),
            ip: ip.map(str::to_string),
            source: None,
            time: None,
            ignored: false,
            event_id: None,
        }
    }

    #[tokio::test]
    async fn a_late_ban_keeps_its_time_and_a_replay_is_not_counted_again() {
        let dir = tempfile::tempdir().unwrap();
        let Running { handle, join, .. } = start(dir.path(), 1_000_000);
        let banned_s = wall_ms() / 1000 - 3600;
        let late = Hook {
            time: Some(banned_s),
            ..hook("red", Some("203.0.113.9"))
        };
        let first = handle.hook(late.clone()).await.unwrap();
        assert!(first.counted);
        // A replay from a spool whose answer was lost: the same ban.
        let replay = handle.hook(late.clone()).await.unwrap();
        assert_eq!((replay.counted, replay.count), (false, 1));
        // Another ban of the same address 40 minutes later, delivered with it
        // after an outage: a ban of its own; then the first's replay again
        // (sent after it by a spool whose answer was lost) is still the same.
        let later = Hook {
            time: Some(banned_s + 2400),
            ..late.clone()
        };
        assert_eq!(handle.hook(later.clone()).await.unwrap().count, 2);
        let replay = handle.hook(late.clone()).await.unwrap();
        assert_eq!((replay.counted, replay.count), (false, 2));
        let replay = handle.hook(later).await.unwrap();
        assert!(!replay.counted);
        // Within the dedupe window of a stored ban's time: the same ban (a
        // flapping jail), though it came separately.
        let near = Hook {
            time: Some(banned_s + 300),
            ..late.clone()
        };
        assert!(!handle.hook(near).await.unwrap().counted);
        // A time in the future is stored at arrival.
        let before = wall_ms();
        let ahead = Hook {
            time: Some(before / 1000 + 86_400),
            ..hook("red", Some("203.0.113.10"))
        };
        assert!(handle.hook(ahead).await.unwrap().counted);
        let events = handle
            .events(EventQuery {
                since_ms: 0,
                route: None,
                limit: 10,
                ignored: false,
            })
            .await
            .unwrap();
        let at = |ip: &str| {
            let mut t: Vec<u64> = events
                .iter()
                .filter(|e| e.ip.as_deref() == Some(ip))
                .map(|e| e.ts_ms)
                .collect();
            t.sort();
            t
        };
        assert_eq!(
            at("203.0.113.9"),
            [banned_s * 1000, (banned_s + 2400) * 1000],
            "two bans, each stored once with its own time"
        );
        let arrival = at("203.0.113.10")[0];
        assert!((before..=wall_ms()).contains(&arrival), "{arrival}");
        stop(handle, join).await;
    }

    #[tokio::test]
    async fn a_failed_commit_changes_nothing_and_the_retry_counts() {
        let dir = tempfile::tempdir().unwrap();
        let Running {
            handle,
            join,
            counters,
            routes_counted: counted,
            ..
        } = start(dir.path(), 1_000_000);
        let ok = handle.hook(hook("red", Some("203.0.113.9"))).await.unwrap();
        assert_eq!((ok.counted, ok.count, ok.total), (true, 1, 1));
        let dup = handle.hook(hook("red", Some("203.0.113.9"))).await.unwrap();
        assert_eq!((dup.counted, dup.count, dup.total), (false, 1, 1));

        // Break the table behind the ledger's back: the next commit fails.
        let side = rusqlite::Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        side.execute_batch("ALTER TABLE events RENAME TO events_away")
            .unwrap();
        let err = handle.hook(hook("red", Some("203.0.113.10"))).await;
        assert!(
            err.is_err(),
            "an event that is not stored is not answered as counted"
        );
        assert_eq!(counters.lock().unwrap().count("red"), 1, "nothing changed");
        assert_eq!(counted.lock().unwrap().len(), 1, "no sweep for it");

        side.execute_batch("ALTER TABLE events_away RENAME TO events")
            .unwrap();
        let retry = handle
            .hook(hook("red", Some("203.0.113.10")))
            .await
            .unwrap();
        assert_eq!(
            (retry.counted, retry.count, retry.total),
            (true, 2, 2),
            "dedupe forgot the failed one"
        );
        assert_eq!(*counted.lock().unwrap(), ["red", "red"]);
        stop(handle, join).await;
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.count("red").unwrap(), 2);
        assert_eq!(store.events(0, None, 10).unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_store_locked_by_someone_else_fails_the_hook_instead_of_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let Running { handle, join, .. } = start(dir.path(), 100);
        let side = rusqlite::Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        side.execute_batch("BEGIN IMMEDIATE").unwrap();
        // busy_timeout is 2 s; the generous bound only guards against a hang.
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            handle.hook(hook("red", Some("203.0.113.9"))),
        )
        .await
        .expect("answers, does not wait for the lock forever");
        assert!(
            r.is_err(),
            "not stored, so not answered as counted (HTTP 503)"
        );
        side.execute_batch("ROLLBACK").unwrap();
        let ok = handle.hook(hook("red", Some("203.0.113.9"))).await.unwrap();
        assert!(ok.counted, "counts once the lock is gone");
        stop(handle, join).await;
    }

    #[tokio::test]
    async fn max_events_holds_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let Running {
            handle,
            join,
            counters,
            ..
        } = start(dir.path(), 5);
        for i in 0..12 {
            handle
                .hook(hook("red", Some(&format!("203.0.113.{i}"))))
                .await
                .unwrap();
            let stored = Store::open(dir.path())
                .unwrap()
                .events(0, None, 100)
                .unwrap()
                .len();
            assert!(stored <= 5, "after hook {i}: {stored} events stored");
        }
        assert_eq!(counters.lock().unwrap().count("red"), 12, "counts are kept");
        stop(handle, join).await;
        assert_eq!(
            Store::open(dir.path())
                .unwrap()
                .events(0, None, 100)
                .unwrap()
                .len(),
            5
        );
    }

    #[tokio::test]
    async fn concurrent_hooks_share_commits() {
        let dir = tempfile::tempdir().unwrap();
        let Running {
            handle,
            join,
            counters,
            stats,
            ..
        } = start(dir.path(), 1_000_000);
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let h = handle.clone();
                tokio::spawn(async move {
                    h.hook(hook(if i % 2 == 0 { "red" } else { "blue" }, None))
                        .await
                })
            })
            .collect();
        let mut totals = Vec::new();
        for t in tasks {
            totals.push(t.await.unwrap().unwrap().total);
        }
        totals.sort();
        assert_eq!(
            totals,
            (1..=200).collect::<Vec<u64>>(),
            "every answer has its own total"
        );
        assert_eq!(counters.lock().unwrap().total(), 200);
        let commits = stats.commits.load(Ordering::Relaxed);
        assert_eq!(stats.events.load(Ordering::Relaxed), 200);
        assert!(
            commits < 200,
            "{commits} commits: concurrent hooks were grouped"
        );
        stop(handle, join).await;
    }

    #[tokio::test]
    async fn ignored_hooks_are_logged_not_counted_nor_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let Running {
            handle,
            join,
            counters,
            routes_counted: swept,
            ..
        } = start(dir.path(), 1_000_000);
        let mut ignored = hook("red", Some("203.0.113.9"));
        ignored.ignored = true;
        let out = handle.hook(ignored.clone()).await.unwrap();
        assert_eq!((out.counted, out.count, out.total), (false, 0, 0));
        assert_eq!(counters.lock().unwrap().total(), 0);
        assert!(swept.lock().unwrap().is_empty(), "no sweep");
        // not remembered by dedupe: the same ban off the list counts
        let out = handle.hook(hook("red", Some("203.0.113.9"))).await.unwrap();
        assert_eq!((out.counted, out.count), (true, 1));
        let q = |ignored| EventQuery {
            since_ms: 0,
            route: None,
            limit: 10,
            ignored,
        };
        let logged = handle.events(q(true)).await.unwrap();
        assert_eq!(logged.len(), 1);
        assert_eq!(logged[0].kind, "ignored");
        let counted = handle.events(q(false)).await.unwrap();
        assert_eq!(counted.len(), 1);
        assert_eq!(counted[0].kind, "hook");
        stop(handle, join).await;
        // after a restart the counts come back without the ignored event
        let (_, counters) = Ledger::open(
            Store::open(dir.path()).unwrap(),
            600_000,
            90,
            1_000_000,
            Box::new(|_| {}),
        )
        .unwrap();
        assert_eq!(counters.lock().unwrap().total(), 1);
        assert_eq!(counters.lock().unwrap().last_24h("red", wall_ms()), 1);
    }

    /// A clock the test sets.
    #[derive(Default)]
    struct ManualClock {
        wall: AtomicU64,
        mono: AtomicU64,
    }

    impl ManualClock {
        fn set(&self, wall: u64, mono: u64) {
            self.wall.store(wall, Ordering::SeqCst);
            self.mono.store(mono, Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn wall_ms(&self) -> u64 {
            self.wall.load(Ordering::SeqCst)
        }
        fn mono_ms(&self) -> u64 {
            self.mono.load(Ordering::SeqCst)
        }
        fn synchronised(&self) -> bool {
            // Even a clock that claims to be synchronised may be a year off.
            true
        }
    }

    #[tokio::test]
    async fn a_clock_a_year_ahead_and_back_loses_nothing_and_heals_the_windows() {
        const MIN: u64 = 60_000;
        const DAY: u64 = 1440 * MIN;
        const YEAR: u64 = 365 * DAY;
        let t0: u64 = 1_800_000_000_000;
        let clock = Arc::new(ManualClock::default());
        clock.set(t0, 0);
        let dir = tempfile::tempdir().unwrap();
        let (ledger, counters) = Ledger::open_with_clock(
            Store::open(dir.path()).unwrap(),
            10 * MIN,
            30,
            1_000_000,
            Box::new(|_| {}),
            clock.clone(),
        )
        .unwrap();
        let (handle, join) = ledger.spawn();
        let ban = |ip: &str| hook("red", Some(ip));
        // 20 days old (a spooled ban with its own time), and one now
        let old = Hook {
            time: Some((t0 - 20 * DAY) / 1000),
            ..ban("198.51.100.1")
        };
        assert!(handle.hook(old).await.unwrap().counted);
        assert!(handle.hook(ban("198.51.100.2")).await.unwrap().counted);
        clock.set(t0 + 10 * MIN, 10 * MIN);
        assert!(handle.hook(ban("198.51.100.3")).await.unwrap().counted);
        // The clock jumps a year ahead (and says it is synchronised).
        clock.set(t0 + YEAR + 20 * MIN, 20 * MIN);
        handle.clock_set();
        assert!(handle.hook(ban("198.51.100.4")).await.unwrap().counted);
        // Two hours later a prune is due: it goes by real elapsed time.
        clock.set(t0 + YEAR + 140 * MIN, 140 * MIN);
        assert!(handle.hook(ban("198.51.100.5")).await.unwrap().counted);
        handle.sync().await.unwrap();
        let all = |h: LedgerHandle| async move {
            h.events(EventQuery {
                since_ms: 0,
                route: None,
                limit: 100,
                ignored: false,
            })
            .await
            .unwrap()
        };
        assert_eq!(
            all(handle.clone()).await.len(),
            5,
            "nothing pruned while ahead"
        );
        // Corrected: back to the real time.
        let now = t0 + 145 * MIN;
        clock.set(now, 145 * MIN);
        handle.clock_set();
        handle.sync().await.unwrap();
        let events = all(handle.clone()).await;
        assert_eq!(events.len(), 5, "{events:?}");
        let at = |ip: &str| {
            events
                .iter()
                .find(|e| e.ip.as_deref() == Some(ip))
                .unwrap_or_else(|| panic!("{ip} in {events:?}"))
                .ts_ms
        };
        assert_eq!(at("198.51.100.1"), t0 - 20 * DAY, "a ban's own time stays");
        assert_eq!(at("198.51.100.2"), t0);
        assert_eq!(at("198.51.100.3"), t0 + 10 * MIN);
        assert_eq!(at("198.51.100.4"), t0 + 20 * MIN, "re-dated by the step");
        assert_eq!(at("198.51.100.5"), t0 + 140 * MIN, "re-dated by the step");
        {
            let c = counters.lock().unwrap();
            assert_eq!(c.last_24h("red", now), 4, "the window counts again");
            assert_eq!(c.get("red").unwrap().count, 5);
            assert_eq!(c.get("red").unwrap().last_seen_ms, Some(t0 + 140 * MIN));
        }
        // Dedupe goes by the corrected times: 5 minutes ago is a replay,
        // 2 hours ago is outside the 10-minute window.
        assert!(!handle.hook(ban("198.51.100.5")).await.unwrap().counted);
        assert!(handle.hook(ban("198.51.100.4")).await.unwrap().counted);
        // A restart sees the same.
        handle.close().await;
        join.join().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let c = store.load_counters(now).unwrap();
        assert_eq!(c.last_24h("red", now), 5);
        assert_eq!(c.get("red").unwrap().last_seen_ms, Some(now));
    }

    /// A bare counted event on `red` at `ts_ms`.
    fn red_hook_at(ts_ms: u64) -> StoredEvent {
        StoredEvent {
            ts_ms,
            route: "red".into(),
            kind: "hook".into(),
            jail: None,
            ip: None,
            source: None,
            event_id: None,
        }
    }

    #[test]
    fn a_last_seen_left_in_the_future_is_not_restored() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let t0: u64 = 1_800_000_000_000;
        let ev = red_hook_at;
        // stamped by a clock a year ahead; banlight was stopped, the clock fixed
        let ahead = t0 + 365 * 86_400_000;
        store
            .commit(
                &[ev(t0 - 1000), ev(ahead)],
                &[("red".into(), 2, Some(ahead))],
            )
            .unwrap();
        let c = store.load_counters(t0).unwrap();
        assert_eq!(c.get("red").unwrap().last_seen_ms, Some(t0 - 1000));
        assert_eq!(c.get("red").unwrap().count, 2);
    }

    #[tokio::test]
    async fn counted_events_enter_the_bounded_outbox_and_ids_count_once() {
        let dir = tempfile::tempdir().unwrap();
        let wake = Arc::new(tokio::sync::Notify::new());
        let (ledger, counters) = Ledger::open(
            Store::open(dir.path()).unwrap(),
            600_000,
            90,
            1_000_000,
            Box::new(|_| {}),
        )
        .unwrap();
        let ledger = ledger.with_outbox(10, wake.clone());
        let stats = ledger.stats.clone();
        let (handle, join) = ledger.spawn();
        let with_id = |id: &str, ip: Option<&str>| Hook {
            event_id: Some(id.into()),
            ..hook("red", ip)
        };
        assert!(handle.hook(with_id("a1", None)).await.unwrap().counted);
        // The same id again (a replay, or the same ban over the other path),
        // even without an ip to dedupe by: not counted.
        assert!(!handle.hook(with_id("a1", None)).await.unwrap().counted);
        // The same ban without an id within the window: dedupe by (route, jail, ip).
        assert!(
            handle
                .hook(with_id("a2", Some("203.0.113.9")))
                .await
                .unwrap()
                .counted
        );
        assert!(
            !handle
                .hook(hook("red", Some("203.0.113.9")))
                .await
                .unwrap()
                .counted
        );
        let mut ignored = with_id("a3", Some("203.0.113.50"));
        ignored.ignored = true;
        assert!(!handle.hook(ignored).await.unwrap().counted);
        tokio::time::timeout(std::time::Duration::from_secs(10), wake.notified())
            .await
            .expect("the publisher is woken");
        let rows = handle.outbox_after(0, 100).await.unwrap();
        assert_eq!(rows.len(), 2, "only counted events: {rows:?}");
        assert_eq!(rows[0].event_id.as_deref(), Some("a1"));
        assert_eq!(rows[1].ip.as_deref(), Some("203.0.113.9"));
        assert!(rows[0].seq < rows[1].seq);
        // Bounded: 15 more, the oldest are dropped and counted.
        for _ in 0..15 {
            handle.hook(hook("blue", None)).await.unwrap();
        }
        assert_eq!(handle.outbox_len().await.unwrap(), 10);
        assert_eq!(stats.outbox_dropped.load(Ordering::Relaxed), 7);
        let rows = handle.outbox_after(0, 100).await.unwrap();
        assert!(
            rows.iter().all(|r| r.route == "blue"),
            "oldest dropped first"
        );
        // Acked rows go; the rest stay, in order.
        let acked: Vec<u64> = rows[..4].iter().map(|r| r.seq).collect();
        handle.outbox_acked(acked).await.unwrap();
        let left = handle.outbox_after(0, 100).await.unwrap();
        assert_eq!(left, rows[4..].to_vec());
        assert_eq!(counters.lock().unwrap().total(), 17);
        handle.close().await;
        drop(handle);
        join.join().unwrap();
        // After a restart the outbox and the ids are still there.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.outbox_len().unwrap(), 6);
        assert!(store.has_event_id("a1").unwrap());
        assert!(
            !store.has_event_id("a3").unwrap(),
            "ignored: not remembered"
        );
    }

    /// What `f` logs, as text.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
            type Writer = Buf;
            fn make_writer(&'a self) -> Buf {
                self.clone()
            }
        }
        let buf = Buf::default();
        let sub = tracing_subscriber::fmt()
            .with_writer(buf.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(sub, f);
        let out = buf.0.lock().unwrap().clone();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_unsynchronised_clock_is_mentioned_only_when_there_is_something_to_prune_and_once() {
        const DAY: u64 = 86_400_000;
        let now: u64 = 1_800_000_000_000;
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut said = false;
        let log = logged(|| {
            assert_eq!(
                prune_checked(&mut store, now, now - 90 * DAY, false, &mut said).unwrap(),
                0
            );
        });
        assert!(
            log.is_empty(),
            "an empty store: nothing to say, got {log:?}"
        );
        let old = red_hook_at(now - 100 * DAY);
        let extras = CommitExtras {
            event_ids: &[],
            outbox_max: None,
        };
        store.commit_with(&[old], &[], extras).unwrap();
        let log = logged(|| {
            for _ in 0..3 {
                assert_eq!(
                    prune_checked(&mut store, now, now - 90 * DAY, false, &mut said).unwrap(),
                    0
                );
            }
        });
        assert_eq!(log.matches("not pruning").count(), 1, "once: {log:?}");
        assert!(
            !log.contains("WARN"),
            "keeping events longer loses nothing: {log:?}"
        );
    }
}
