//! The one place that stores: SQLite in WAL mode with synchronous=FULL, so a
//! committed event survives kill -9 and power cuts. Callers batch events into
//! one transaction (group commit); this module knows nothing about HTTP.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::core::counters::Counters;

pub const DB_FILE: &str = "banlight.db";
const SCHEMA_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory could not be created or opened.
    #[error("cannot use state directory {path}: {source}. Create it, or set `state_dir` in the config to a writable directory")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file exists but is not a usable banlight database. We never replace it.
    #[error("{path} is not a usable banlight database. It was left untouched: move it aside (e.g. `mv {path} {path}.broken`) to start with empty counters, or restore a backup. SQLite says: {}", first_lines(.source, 3))]
    Corrupt {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path} was written by a newer banlight (schema {found}, this one knows {SCHEMA_VERSION}); upgrade banlight")]
    TooNew { path: PathBuf, found: i64 },
    #[error("database error on {path}: {source}. Check that the service user owns the state directory and the files in it, and that the disk is writable and not full")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// One counted event, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub ts_ms: u64,
    pub route: String,
    pub kind: String,
    pub jail: Option<String>,
    pub ip: Option<String>,
    pub source: Option<String>,
    /// The sender's event id, if it gave one: goes to the outbox (it is
    /// not kept in the event log, so it reads back as `None`).
    pub event_id: Option<String>,
}

impl StoredEvent {
    /// As `banlight events --json` and the live page list it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "time": crate::core::time::rfc3339_utc(self.ts_ms),
            "ts_ms": self.ts_ms,
            "route": self.route,
            "kind": self.kind,
            "source": self.source,
            "jail": self.jail,
            "ip": self.ip,
        })
    }
}

/// One event waiting in the MQTT outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub seq: u64,
    pub event_id: Option<String>,
    pub ts_ms: u64,
    pub route: String,
    pub source: Option<String>,
    pub jail: Option<String>,
    pub ip: Option<String>,
}

/// What a commit adds besides events and counts (MQTT, issue 12).
#[derive(Debug, Default, Clone, Copy)]
pub struct CommitExtras<'a> {
    /// Event ids of the counted events that carried one (id, arrival ms).
    pub event_ids: &'a [(String, u64)],
    /// `Some(max)`: every `hook` event also goes into the outbox, which keeps
    /// the newest `max` rows.
    pub outbox_max: Option<u64>,
}

fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        if let Some(warning) = empty_database_warning(&state_dir.join(DB_FILE)) {
            tracing::error!("{warning}");
        }
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::StateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(DB_FILE);
        // Only a file that is not a database is "corrupt"; a read-only disk,
        // a full disk or files owned by another user are reported as such,
        // so nobody moves a good database aside for them.
        let corrupt = |source: rusqlite::Error| {
            let broken = matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            );
            if broken {
                StoreError::Corrupt {
                    path: path.clone(),
                    source,
                }
            } else {
                StoreError::Sqlite {
                    path: path.clone(),
                    source,
                }
            }
        };
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        // The first read of a file that is not a database fails here.
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(corrupt)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path,
                found: version,
            });
        }
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(corrupt)?;
        if check != "ok" {
            return Err(corrupt(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(check),
            )));
        }
        // busy_timeout 2 s: shorter than the action's `curl --max-time 3`, so
        // a store locked by someone else answers 503 before the client gives up.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 2000;
             CREATE TABLE IF NOT EXISTS events (
                 id INTEGER PRIMARY KEY,
                 ts_ms INTEGER NOT NULL,
                 route TEXT NOT NULL,
                 kind TEXT NOT NULL DEFAULT 'hook',
                 jail TEXT,
                 ip TEXT,
                 source TEXT
             );
             CREATE INDEX IF NOT EXISTS events_ts ON events(ts_ms);
             CREATE TABLE IF NOT EXISTS route_counts (
                 route TEXT PRIMARY KEY,
                 count INTEGER NOT NULL,
                 last_seen_ms INTEGER
             );
             -- MQTT (issue 12): counted events waiting for the broker's PUBACK,
             -- written in the transaction that counts them. AUTOINCREMENT: a
             -- seq is never reused, so subscribers can order and spot gaps.
             CREATE TABLE IF NOT EXISTS outbox (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 event_id TEXT,
                 ts_ms INTEGER NOT NULL,
                 route TEXT NOT NULL,
                 source TEXT,
                 jail TEXT,
                 ip TEXT
             );
             -- Event ids of counted events (hooks that carried one), so the same
             -- ban via HTTP and MQTT, or a replay, counts once.
             CREATE TABLE IF NOT EXISTS event_ids (
                 n INTEGER PRIMARY KEY,
                 id TEXT NOT NULL UNIQUE,
                 ts_ms INTEGER NOT NULL
             );
             -- Panel settings changed at run time and kept across restarts
             -- (issue 21: the LED brightness set from Home Assistant).
             CREATE TABLE IF NOT EXISTS settings (
                 key TEXT PRIMARY KEY,
                 value INTEGER NOT NULL
             );
             PRAGMA user_version = 1;",
        )
        .map_err(corrupt)?;
        Ok(Store { conn, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second, read-only connection to the database at `path` (issue 19,
    /// item 1): in WAL mode its reads never wait for the writer nor hold it
    /// up, so the page's event list is read beside the ledger thread, not
    /// queued behind its commits. `query_only` makes any write an error.
    pub fn open_reader(path: &Path) -> Result<Store, StoreError> {
        let sqlite = sqlite_error(path);
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite)?;
        conn.execute_batch("PRAGMA busy_timeout = 2000; PRAGMA query_only = 1;")
            .map_err(sqlite)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn sqlite(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        sqlite_error(&self.path)
    }

    /// Lifetime counts plus the rolling 24 h window, as of `now_ms`.
    pub fn load_counters(&self, now_ms: u64) -> Result<Counters, StoreError> {
        let mut counters = Counters::default();
        let mut stmt = self
            .conn
            .prepare("SELECT route, count, last_seen_ms FROM route_counts")
            .map_err(self.sqlite())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            })
            .map_err(self.sqlite())?;
        // A last-seen time more than a minute ahead was written by a clock
        // that ran ahead and was corrected while banlight was not running
        // (else it re-dates them): show the newest event not in the future.
        let ahead = now_ms.saturating_add(crate::core::clockcheck::STEP_TOLERANCE_MS);
        let mut newest_past = self
            .conn
            .prepare(
                "SELECT MAX(ts_ms) FROM events WHERE route = ?1 AND kind = 'hook' AND ts_ms <= ?2",
            )
            .map_err(self.sqlite())?;
        for row in rows {
            let (route, count, last) = row.map_err(self.sqlite())?;
            let mut last = last.map(|t| t.max(0) as u64);
            if last.is_some_and(|t| t > ahead) {
                last = newest_past
                    .query_row(params![route, to_i64(now_ms)], |r| {
                        r.get::<_, Option<i64>>(0)
                    })
                    .map_err(self.sqlite())?
                    .map(|t| t.max(0) as u64);
            }
            counters.restore(&route, count.max(0) as u64, last);
        }
        let since = now_ms.saturating_sub(24 * 3_600_000);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT route, ts_ms / 60000 AS minute, COUNT(*) FROM events
                 WHERE ts_ms >= ?1 AND kind = 'hook' GROUP BY route, minute",
            )
            .map_err(self.sqlite())?;
        let rows = stmt
            .query_map([to_i64(since)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(self.sqlite())?;
        for row in rows {
            let (route, minute, n) = row.map_err(self.sqlite())?;
            counters.restore_window(&route, minute.max(0) as u64 * 60_000, n.max(0) as u64);
        }
        Ok(counters)
    }

    /// Hook events since `since_ms` that carry an ip (to re-seed dedupe after a
    /// restart), including those a reset zeroed: a replay of them is still a replay.
    pub fn recent_bans(
        &self,
        since_ms: u64,
    ) -> Result<Vec<(u64, String, String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT ts_ms, route, COALESCE(jail, ''), ip FROM events
                 WHERE ts_ms >= ?1 AND kind IN ('hook', 'hook-before-reset') AND ip IS NOT NULL
                 ORDER BY ts_ms",
            )
            .map_err(self.sqlite())?;
        let rows = stmt
            .query_map([to_i64(since_ms)], |r| {
                Ok((
                    r.get::<_, i64>(0)?.max(0) as u64,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                ))
            })
            .map_err(self.sqlite())?;
        rows.collect::<Result<_, _>>().map_err(self.sqlite())
    }

    /// Is the same ban (route, jail, ip) stored with a time strictly within
    /// `window_ms` of `ts_ms`? How a ban delivered late (from a server's
    /// spool, with its own time) is told from another ban of the same
    /// address: by when each happened, not when each arrived.
    pub fn has_ban_near(
        &self,
        route: &str,
        jail: &str,
        ip: &str,
        ts_ms: u64,
        window_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM events
                 WHERE ts_ms > ?1 AND ts_ms < ?2 AND kind IN ('hook', 'hook-before-reset')
                   AND route = ?3 AND COALESCE(jail, '') = ?4 AND ip = ?5)",
            )
            .map_err(self.sqlite())?;
        stmt.query_row(
            rusqlite::params![
                to_i64(ts_ms.saturating_sub(window_ms)),
                to_i64(ts_ms.saturating_add(window_ms)),
                route,
                jail,
                ip
            ],
            |r| r.get::<_, bool>(0),
        )
        .map_err(self.sqlite())
    }

    /// Appends events and bumps their routes' counts in one transaction: one
    /// sync for the whole batch. `counts` holds each touched route's new
    /// lifetime count and last-seen time.
    pub fn commit(
        &mut self,
        events: &[StoredEvent],
        counts: &[(String, u64, Option<u64>)],
    ) -> Result<(), StoreError> {
        self.commit_with(events, counts, CommitExtras::default())
            .map(|_| ())
    }

    /// [`Store::commit`] plus event ids and the MQTT outbox, in the same
    /// transaction. Returns how many outbox rows were dropped to stay
    /// within `outbox_max` (oldest first).
    pub fn commit_with(
        &mut self,
        events: &[StoredEvent],
        counts: &[(String, u64, Option<u64>)],
        extras: CommitExtras,
    ) -> Result<u64, StoreError> {
        let path = self.path.clone();
        let sqlite = sqlite_error(&path);
        let tx = self.conn.transaction().map_err(sqlite)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (ts_ms, route, kind, jail, ip, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sqlite)?;
            for e in events {
                insert
                    .execute(params![
                        to_i64(e.ts_ms),
                        e.route,
                        e.kind,
                        e.jail,
                        e.ip,
                        e.source
                    ])
                    .map_err(sqlite)?;
            }
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO route_counts (route, count, last_seen_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT(route) DO UPDATE SET count = excluded.count, last_seen_ms = excluded.last_seen_ms",
                )
                .map_err(sqlite)?;
            for (route, count, last) in counts {
                upsert
                    .execute(params![route, to_i64(*count), last.map(to_i64)])
                    .map_err(sqlite)?;
            }
            let mut ids = tx
                .prepare_cached("INSERT OR IGNORE INTO event_ids (id, ts_ms) VALUES (?1, ?2)")
                .map_err(sqlite)?;
            for (id, at) in extras.event_ids {
                ids.execute(params![id, to_i64(*at)]).map_err(sqlite)?;
            }
        }
        let mut dropped = 0;
        if let Some(max) = extras.outbox_max {
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO outbox (event_id, ts_ms, route, source, jail, ip) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(sqlite)?;
                for e in events.iter().filter(|e| e.kind == "hook") {
                    insert
                        .execute(params![
                            e.event_id,
                            to_i64(e.ts_ms),
                            e.route,
                            e.source,
                            e.jail,
                            e.ip
                        ])
                        .map_err(sqlite)?;
                }
            }
            dropped = tx
                .execute(
                    "DELETE FROM outbox WHERE seq <= (SELECT MAX(seq) FROM outbox) - ?1",
                    [to_i64(max)],
                )
                .map_err(sqlite)? as u64;
        }
        tx.commit().map_err(sqlite)?;
        Ok(dropped)
    }

    /// Is this event id already counted?
    pub fn has_event_id(&self, id: &str) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT 1 FROM event_ids WHERE id = ?1")
            .and_then(|mut s| s.exists([id]))
            .map_err(self.sqlite())
    }

    /// The oldest `limit` outbox rows after `after_seq`, in order.
    pub fn outbox_after(&self, after_seq: u64, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, event_id, ts_ms, route, source, jail, ip FROM outbox
                 WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(self.sqlite())?;
        let rows = stmt
            .query_map(params![to_i64(after_seq), to_i64(limit as u64)], |r| {
                Ok(OutboxRow {
                    seq: r.get::<_, i64>(0)?.max(0) as u64,
                    event_id: r.get(1)?,
                    ts_ms: r.get::<_, i64>(2)?.max(0) as u64,
                    route: r.get(3)?,
                    source: r.get(4)?,
                    jail: r.get(5)?,
                    ip: r.get(6)?,
                })
            })
            .map_err(self.sqlite())?;
        rows.collect::<Result<_, _>>().map_err(self.sqlite())
    }

    /// Rows waiting in the outbox.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(self.sqlite())
    }

    /// A kept panel setting (see the `settings` table), if one was set.
    pub fn setting(&self, key: &str) -> Result<Option<i64>, StoreError> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.sqlite())
    }

    /// Keeps a panel setting across restarts (durable once this returns).
    pub fn set_setting(&mut self, key: &str, value: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                rusqlite::params![key, value],
            )
            .map(|_| ())
            .map_err(self.sqlite())
    }

    /// Removes outbox rows the broker acknowledged.
    pub fn outbox_remove(&mut self, seqs: &[u64]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sqlite = sqlite_error(&path);
        let tx = self.conn.transaction().map_err(sqlite)?;
        {
            let mut del = tx
                .prepare_cached("DELETE FROM outbox WHERE seq = ?1")
                .map_err(sqlite)?;
            for s in seqs {
                del.execute([to_i64(*s)]).map_err(sqlite)?;
            }
        }
        tx.commit().map_err(sqlite)
    }

    /// Writes the WAL back into the database file (before a power-off).
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(self.sqlite())
    }

    /// The newest stored event's time, if any.
    pub fn newest_event_ms(&self) -> Result<Option<u64>, StoreError> {
        self.event_ms("SELECT MAX(ts_ms) FROM events")
    }

    /// The oldest stored event's time, if any.
    pub fn oldest_event_ms(&self) -> Result<Option<u64>, StoreError> {
        self.event_ms("SELECT MIN(ts_ms) FROM events")
    }

    fn event_ms(&self, sql: &str) -> Result<Option<u64>, StoreError> {
        self.conn
            .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
            .map(|v| v.map(|t| t.max(0) as u64))
            .map_err(self.sqlite())
    }

    /// Deletes events older than `cutoff_ms`; the counts are kept.
    pub fn prune(&mut self, cutoff_ms: u64) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "DELETE FROM event_ids WHERE ts_ms < ?1",
                [to_i64(cutoff_ms)],
            )
            .map_err(self.sqlite())?;
        self.conn
            .execute("DELETE FROM events WHERE ts_ms < ?1", [to_i64(cutoff_ms)])
            .map_err(self.sqlite())
    }

    /// Keeps only the newest `max` events (the counts are kept): a flood of
    /// hooks cannot fill the SD card.
    pub fn cap_events(&mut self, max: u64) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "DELETE FROM event_ids WHERE n <= (SELECT MAX(n) FROM event_ids) - ?1",
                [to_i64(max)],
            )
            .map_err(self.sqlite())?;
        self.conn
            .execute(
                "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?1",
                [to_i64(max)],
            )
            .map_err(self.sqlite())
    }

    /// The newest events first, without `ignored` ones.
    pub fn events(
        &self,
        since_ms: u64,
        route: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.events_of(since_ms, route, limit, false)
    }

    /// The newest events first: only `ignored` ones, or all but them.
    pub fn events_of(
        &self,
        since_ms: u64,
        route: Option<&str>,
        limit: usize,
        ignored: bool,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT ts_ms, route, kind, jail, ip, source FROM events
                 WHERE ts_ms >= ?1 AND (?2 IS NULL OR route = ?2) AND (kind = 'ignored') = ?4
                 ORDER BY ts_ms DESC, id DESC LIMIT ?3",
            )
            .map_err(self.sqlite())?;
        let rows = stmt
            .query_map(
                params![to_i64(since_ms), route, to_i64(limit as u64), ignored],
                |r| {
                    Ok(StoredEvent {
                        ts_ms: r.get::<_, i64>(0)?.max(0) as u64,
                        route: r.get(1)?,
                        kind: r.get(2)?,
                        jail: r.get(3)?,
                        ip: r.get(4)?,
                        source: r.get(5)?,
                        event_id: None,
                    })
                },
            )
            .map_err(self.sqlite())?;
        rows.collect::<Result<_, _>>().map_err(self.sqlite())
    }

    /// Zeroes one route's count (or all) and records the reset as an event.
    pub fn reset(
        &mut self,
        route: Option<&str>,
        ts_ms: u64,
        source: &str,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sqlite = sqlite_error(&path);
        let tx = self.conn.transaction().map_err(sqlite)?;
        match route {
            Some(r) => {
                tx.execute("DELETE FROM route_counts WHERE route = ?1", [r])
                    .map_err(sqlite)?;
                tx.execute("UPDATE events SET kind = 'hook-before-reset' WHERE route = ?1 AND kind = 'hook'", [r])
                    .map_err(sqlite)?;
            }
            None => {
                tx.execute("DELETE FROM route_counts", []).map_err(sqlite)?;
                tx.execute(
                    "UPDATE events SET kind = 'hook-before-reset' WHERE kind = 'hook'",
                    [],
                )
                .map_err(sqlite)?;
            }
        }
        tx.execute(
            "INSERT INTO events (ts_ms, route, kind, source) VALUES (?1, ?2, 'reset', ?3)",
            params![to_i64(ts_ms), route.unwrap_or("*"), source],
        )
        .map_err(sqlite)?;
        tx.commit().map_err(sqlite)
    }

    /// Moves events stamped after `now_ms` back by `by_ms`, in one
    /// transaction: the clock that stamped them ran ahead by that much and
    /// was set back (see `Ledger::check_clock`). Last-seen times too.
    pub fn redate_future_events(&mut self, now_ms: u64, by_ms: u64) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let sqlite = sqlite_error(&path);
        let tx = self.conn.transaction().map_err(sqlite)?;
        let moved = tx
            .execute(
                "UPDATE events SET ts_ms = MAX(ts_ms - ?2, 0) WHERE ts_ms > ?1",
                params![to_i64(now_ms), to_i64(by_ms)],
            )
            .map_err(sqlite)?;
        tx.execute(
            "UPDATE route_counts SET last_seen_ms = MAX(last_seen_ms - ?2, 0) WHERE last_seen_ms > ?1",
            params![to_i64(now_ms), to_i64(by_ms)],
        )
        .map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        Ok(moved)
    }

    /// Counted events (also those before a reset) since `since_ms`, per
    /// route per 5-minute slot, for the web page's chart.
    pub fn activity(
        &self,
        since_ms: u64,
    ) -> Result<Vec<crate::core::history::SlotCount>, StoreError> {
        let slot = crate::core::history::SLOT_MS;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT route, ts_ms / ?2 AS slot, COUNT(*) FROM events
                 WHERE ts_ms >= ?1 AND kind IN ('hook', 'hook-before-reset')
                 GROUP BY route, slot",
            )
            .map_err(self.sqlite())?;
        let rows = stmt
            .query_map(params![to_i64(since_ms), to_i64(slot)], |r| {
                Ok(crate::core::history::SlotCount {
                    route: r.get(0)?,
                    slot_ms: r.get::<_, i64>(1)?.max(0) as u64 * slot,
                    n: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })
            .map_err(self.sqlite())?;
        rows.collect::<Result<_, _>>().map_err(self.sqlite())
    }

    /// The stored count of one route (for checks and tests).
    pub fn count(&self, route: &str) -> Result<u64, StoreError> {
        let v: Option<i64> = self
            .conn
            .query_row(
                "SELECT count FROM route_counts WHERE route = ?1",
                [route],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sqlite())?;
        Ok(v.unwrap_or(0).max(0) as u64)
    }

    /// Counted events per (route, source, jail) still stored, for the
    /// metrics' starting values (one scan at start).
    /// `/metrics`' counts per (route, source, jail) from the events, the
    /// keys of `reserved` sources kept first and the rest by recency
    /// (oldest added first, so the cap keeps the newest; issue 19, item 6).
    pub fn load_breakdown(
        &self,
        reserved: &[String],
    ) -> Result<crate::core::breakdown::Breakdown, StoreError> {
        let mut b = crate::core::breakdown::Breakdown::default();
        b.reserve(reserved.iter().cloned());
        let mut stmt = self
            .conn
            .prepare(
                "SELECT route, source, jail, COUNT(*) FROM events
                 WHERE kind = 'hook' GROUP BY route, source, jail ORDER BY MAX(id)",
            )
            .map_err(self.sqlite())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(self.sqlite())?;
        for row in rows {
            let (route, source, jail, n) = row.map_err(self.sqlite())?;
            b.add(&route, source.as_deref(), jail.as_deref(), n.max(0) as u64);
        }
        // Pruned or capped events keep their route's count, not their detail.
        let mut stmt = self
            .conn
            .prepare("SELECT route, count FROM route_counts")
            .map_err(self.sqlite())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(self.sqlite())?;
        for row in rows {
            let (route, count) = row.map_err(self.sqlite())?;
            b.fill_to(&route, count.max(0) as u64);
        }
        Ok(b)
    }
}

/// The first `n` lines of an error (integrity checks can list thousands).
fn first_lines(e: &rusqlite::Error, n: usize) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= n {
        text
    } else {
        format!(
            "{} ... ({} more lines)",
            lines[..n].join("; "),
            lines.len() - n
        )
    }
}

/// An existing 0-byte database with no WAL beside it is not a fresh start:
/// something truncated it (a bad restore, a full disk, a mistaken `>`).
/// SQLite would silently treat it as empty, so say so loudly.
pub fn empty_database_warning(db: &Path) -> Option<String> {
    let len = std::fs::metadata(db).ok()?.len();
    let wal = std::path::PathBuf::from(format!("{}-wal", db.display()));
    let wal_len = std::fs::metadata(&wal).map_or(0, |m| m.len());
    (len == 0 && wal_len == 0).then(|| {
        format!(
            "{} exists but is EMPTY (0 bytes, no WAL): the stored counts are gone, banlight starts from zero. \
             If this is unexpected, stop banlight and restore a backup of that file",
            db.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19, item 6: after a restart too, the label cap keeps the
    /// configured source's series and the newest, not the first 1,000.
    #[test]
    fn the_breakdown_loads_reserved_and_recent_keys_past_the_cap() {
        use crate::core::breakdown::{MAX_KEYS, OTHER};
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let ev = |i: u64, source: Option<&str>, jail: String| StoredEvent {
            ts_ms: 1_000 + i,
            route: "red".into(),
            kind: "hook".into(),
            jail: Some(jail),
            ip: None,
            source: source.map(String::from),
            event_id: None,
        };
        let mut events = vec![ev(0, Some("web-1"), "sshd".into())];
        for i in 0..(MAX_KEYS as u64 + 500) {
            events.push(ev(1 + i, None, format!("junk{i}")));
        }
        events.push(ev(5_000, None, "postfix".into()));
        let n = events.len() as u64;
        store
            .commit(&events, &[("red".into(), n, Some(6_000))])
            .unwrap();
        let b = store.load_breakdown(&["web-1".to_string()]).unwrap();
        let get = |source: &str, jail: &str| {
            b.iter()
                .find(|(k, _)| k.source == source && k.jail == jail)
                .map(|(_, c)| c)
        };
        assert_eq!(get("web-1", "sshd"), Some(1), "reserved");
        assert_eq!(get("", "postfix"), Some(1), "the newest");
        assert_eq!(get("", "junk0"), None, "the oldest junk went");
        // 1,502 keys in 1,000 places, one of them (OTHER, OTHER) itself.
        assert_eq!(get(OTHER, OTHER), Some(502));
        assert_eq!(b.route_total("red"), n);
    }

    const T0: u64 = 1_700_000_000_000;

    fn hook(ts: u64, route: &str, ip: Option<&str>) -> StoredEvent {
        StoredEvent {
            ts_ms: ts,
            route: route.into(),
            kind: "hook".into(),
            jail: Some("sshd".into()),
            ip: ip.map(str::to_string),
            source: None,
            event_id: None,
        }
    }

    #[test]
    fn committed_events_and_counts_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Store::open(dir.path()).unwrap();
            s.commit(
                &[
                    hook(T0, "red", Some("203.0.113.9")),
                    hook(T0 + 1, "red", None),
                ],
                &[("red".into(), 2, Some(T0 + 1))],
            )
            .unwrap();
            s.commit(
                &[hook(T0 + 2, "blue", None)],
                &[("blue".into(), 1, Some(T0 + 2))],
            )
            .unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        let c = s.load_counters(T0 + 10).unwrap();
        assert_eq!(c.count("red"), 2);
        assert_eq!(c.count("blue"), 1);
        assert_eq!(c.total(), 3);
        assert_eq!(c.last_24h("red", T0 + 10), 2);
        assert_eq!(c.get("red").unwrap().last_seen_ms, Some(T0 + 1));
        let bans = s.recent_bans(T0).unwrap();
        assert_eq!(
            bans,
            vec![(T0, "red".into(), "sshd".into(), "203.0.113.9".into())]
        );
        let events = s.events(0, Some("red"), 10).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].ts_ms, T0 + 1, "newest first");
    }

    #[test]
    fn an_empty_database_file_is_called_out() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DB_FILE);
        assert_eq!(empty_database_warning(&db), None, "no file: a fresh start");
        std::fs::write(&db, b"").unwrap();
        let w = empty_database_warning(&db).expect("warned");
        assert!(
            w.contains("EMPTY") && w.contains(&db.display().to_string()),
            "{w}"
        );
        drop(Store::open(dir.path()).unwrap());
        assert_eq!(empty_database_warning(&db), None, "a real database now");
    }

    #[test]
    fn the_corruption_message_gives_the_advice_first_and_few_lines() {
        let long = (0..50)
            .map(|i| format!("row {i} missing from index"))
            .collect::<Vec<_>>()
            .join("\n");
        let e = StoreError::Corrupt {
            path: "/var/lib/banlight/banlight.db".into(),
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(long),
            ),
        }
        .to_string();
        assert!(
            e.find("move it aside").unwrap() < e.find("row 0").unwrap(),
            "{e}"
        );
        assert!(!e.contains("row 10"), "{e}");
        assert!(e.contains("more lines"), "{e}");
    }

    #[test]
    fn activity_counts_hooks_per_route_and_slot() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let slot = crate::core::history::SLOT_MS;
        let base = 6_000_000 * slot;
        s.commit(
            &[
                hook(base + 1, "red", None),
                hook(base + slot - 1, "red", None),
                hook(base + slot, "red", None),
                hook(base + 5, "blue", None),
                hook(base - slot, "blue", None), // before `since`
            ],
            &[
                ("red".into(), 3, Some(base + slot)),
                ("blue".into(), 2, Some(base + 5)),
            ],
        )
        .unwrap();
        s.reset(Some("blue"), base + 2 * slot, "test").unwrap();
        let mut a = s.activity(base).unwrap();
        a.sort_by(|x, y| (&x.route, x.slot_ms).cmp(&(&y.route, y.slot_ms)));
        let got: Vec<(&str, u64, u64)> = a
            .iter()
            .map(|c| (c.route.as_str(), c.slot_ms, c.n))
            .collect();
        assert_eq!(
            got,
            [("blue", base, 1), ("red", base, 2), ("red", base + slot, 1)],
            "a reset keeps past activity; the reset itself is not an event"
        );
    }

    #[test]
    fn prune_drops_old_events_but_keeps_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.commit(
            &[hook(T0, "red", None), hook(T0 + 100, "red", None)],
            &[("red".into(), 2, Some(T0 + 100))],
        )
        .unwrap();
        assert_eq!(s.prune(T0 + 50).unwrap(), 1);
        assert_eq!(s.events(0, None, 10).unwrap().len(), 1);
        assert_eq!(s.count("red").unwrap(), 2);
    }

    #[test]
    fn reset_zeroes_and_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.commit(&[hook(T0, "red", None)], &[("red".into(), 1, Some(T0))])
            .unwrap();
        s.commit(&[hook(T0, "blue", None)], &[("blue".into(), 1, Some(T0))])
            .unwrap();
        s.reset(Some("red"), T0 + 5, "cli").unwrap();
        let c = s.load_counters(T0 + 10).unwrap();
        assert_eq!((c.count("red"), c.last_24h("red", T0 + 10)), (0, 0));
        assert_eq!(c.count("blue"), 1);
        let newest = &s.events(0, None, 1).unwrap()[0];
        assert_eq!(
            (newest.kind.as_str(), newest.route.as_str()),
            ("reset", "red")
        );
    }

    #[test]
    fn cap_keeps_the_newest_events_and_all_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let events: Vec<_> = (0..50).map(|i| hook(T0 + i, "red", None)).collect();
        s.commit(&events, &[("red".into(), 50, Some(T0 + 49))])
            .unwrap();
        assert_eq!(s.cap_events(20).unwrap(), 30);
        let left = s.events(0, None, 100).unwrap();
        assert_eq!(left.len(), 20);
        assert_eq!(
            left.last().unwrap().ts_ms,
            T0 + 30,
            "the oldest kept is the 31st"
        );
        assert_eq!(s.count("red").unwrap(), 50);
        assert_eq!(s.cap_events(20).unwrap(), 0);
    }

    #[test]
    fn reset_bans_still_seed_dedupe() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.commit(
            &[hook(T0, "red", Some("203.0.113.9"))],
            &[("red".into(), 1, Some(T0))],
        )
        .unwrap();
        s.reset(None, T0 + 5, "cli").unwrap();
        assert_eq!(
            s.recent_bans(T0).unwrap().len(),
            1,
            "a replay after a reset is still a replay"
        );
    }

    #[test]
    fn the_connection_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mode: String = s
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = s
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous = FULL: every commit is synced");
    }

    #[test]
    fn corrupt_database_is_reported_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let junk = b"this is not an sqlite database, it is a shopping list\n".repeat(100);
        std::fs::write(&path, &junk).unwrap();
        let err = Store::open(dir.path()).err().expect("must fail");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(path.to_str().unwrap()) && msg.contains("untouched"),
            "{msg}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), junk, "never replaced");
    }

    #[test]
    fn a_busy_database_is_not_called_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        // another process holds an exclusive lock on the file
        let other = Connection::open(dir.path().join(DB_FILE)).unwrap();
        other
            .execute_batch(
                "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = DELETE; BEGIN EXCLUSIVE;",
            )
            .unwrap();
        match Store::open(dir.path()) {
            Err(StoreError::Sqlite { .. }) => {}
            Err(e) => panic!("misreported: {e}"),
            Ok(_) => panic!("opened a locked database"),
        }
    }

    #[test]
    fn unwritable_state_dir_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let err = Store::open(&file.join("sub")).err().expect("must fail");
        assert!(matches!(err, StoreError::StateDir { .. }), "{err}");
    }

    #[test]
    fn huge_counts_saturate_in_storage() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.commit(&[], &[("red".into(), u64::MAX, None)]).unwrap();
        assert_eq!(s.count("red").unwrap(), i64::MAX as u64);
    }
}
