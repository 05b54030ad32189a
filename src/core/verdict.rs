//! Whether each hook of a batch counts: the counting decision, pure. The
//! ledger hands it the batch, the time, the dedupe window, its in-memory
//! dedupe and a [`Seen`] view of the store; it applies the verdicts (stores,
//! counts, answers). Table-tested here without SQLite.

use crate::core::dedupe::{BanKey, Dedupe};
use crate::core::hook::{event_time_ms, Hook};

/// What the store has seen before this batch.
pub trait Seen {
    /// Was this event id stored before?
    fn event_id(&self, id: &str) -> bool;
    /// Is a ban of `key` stored within `window_ms` of `ts_ms`?
    fn ban_near(&self, key: &BanKey, ts_ms: u64, window_ms: u64) -> bool;
}

/// One hook's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counts; stored with this time (the ban's own when plausible).
    Counted { ts_ms: u64 },
    /// An event id counted before: the same event again (a replay, or
    /// the same ban by the other transport). Not stored, not counted.
    SameId,
    /// The same (route, jail, ip) within the dedupe window: not counted.
    SameBan,
    /// The address is on the ignore list: stored as `ignored`, not counted.
    Ignored,
}

impl Verdict {
    pub fn counted(self) -> bool {
        matches!(self, Verdict::Counted { .. })
    }

    /// Why a hook did not count, as its answer says it.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Verdict::Counted { .. } => None,
            Verdict::SameId => Some("already counted"),
            Verdict::SameBan => Some("duplicate"),
            Verdict::Ignored => Some("ignored"),
        }
    }
}

/// The verdicts for `batch`, in order, and the keys newly remembered by
/// `dedupe` (to forget again if the batch cannot be stored).
pub fn decide(
    batch: &[&Hook],
    now_ms: u64,
    window_ms: u64,
    dedupe: &mut Dedupe,
    seen: &dyn Seen,
) -> (Vec<Verdict>, Vec<BanKey>) {
    let mut verdicts = Vec::with_capacity(batch.len());
    let mut remembered = Vec::new();
    // Counted earlier in this batch: (id) and (key, time) of late bans.
    let mut ids: Vec<&str> = Vec::new();
    let mut counted: Vec<(BanKey, u64)> = Vec::new();
    for h in batch {
        // An id counted before (stored, or earlier in this batch) is a replay
        // or the same ban by another path. A store error reads as "not seen"
        // (the `Seen` impl says false): better one count too many than a ban lost.
        let id_seen = h
            .event_id
            .as_deref()
            .is_some_and(|id| ids.contains(&id) || seen.event_id(id));
        let ts_ms = event_time_ms(h.time, now_ms);
        let key = h.ip.as_ref().map(|ip| BanKey {
            route: h.route.clone(),
            jail: h.jail.clone().unwrap_or_default(),
            ip: ip.clone(),
        });
        let verdict = if h.ignored {
            // Not remembered by dedupe either: the owner may take the
            // network off the list and want the next ban counted.
            Verdict::Ignored
        } else if id_seen {
            Verdict::SameId
        } else {
            let first = match &key {
                None => true, // nothing to tell two bans apart by
                Some(key) if window_ms > 0 && now_ms.saturating_sub(ts_ms) >= window_ms => {
                    // A ban from before the window (delivered late by a
                    // server's spool) is the same ban only as one made within
                    // the window of *its* time: two bans of one address an
                    // hour apart, both held up by an outage and delivered
                    // together, count twice; the same ban sent again after a
                    // lost answer, once.
                    !counted
                        .iter()
                        .any(|(k, t)| k == key && t.abs_diff(ts_ms) < window_ms)
                        && !seen.ban_near(key, ts_ms, window_ms)
                }
                Some(key) => {
                    // Recent bans are deduped by arrival.
                    let first = dedupe.first_seen(key, now_ms);
                    if first {
                        remembered.push(key.clone());
                    }
                    first
                }
            };
            if first {
                Verdict::Counted { ts_ms }
            } else {
                Verdict::SameBan
            }
        };
        if let Verdict::Counted { ts_ms } = verdict {
            if let Some(id) = h.event_id.as_deref() {
                ids.push(id);
            }
            if let Some(key) = key {
                counted.push((key, ts_ms));
            }
        }
        verdicts.push(verdict);
    }
    (verdicts, remembered)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;
    const NOW: u64 = 1_763_800_000_000;
    const WINDOW: u64 = 10 * MIN;

    #[derive(Default)]
    struct Store {
        ids: Vec<String>,
        bans: Vec<(BanKey, u64)>,
    }

    impl Seen for Store {
        fn event_id(&self, id: &str) -> bool {
            self.ids.iter().any(|x| x == id)
        }
        fn ban_near(&self, key: &BanKey, ts_ms: u64, window_ms: u64) -> bool {
            self.bans
                .iter()
                .any(|(k, t)| k == key && t.abs_diff(ts_ms) < window_ms)
        }
    }

    fn hook(ip: Option<&str>, time_s: Option<u64>, id: Option<&str>, ignored: bool) -> Hook {
        Hook {
            route: "red".into(),
            jail: Some("sshd".into()),
            ip: ip.map(String::from),
            source: None,
            time: time_s,
            ignored,
            event_id: id.map(String::from),
        }
    }

    fn key(ip: &str) -> BanKey {
        BanKey {
            route: "red".into(),
            jail: "sshd".into(),
            ip: ip.into(),
        }
    }

    fn run(batch: &[Hook], store: &Store) -> Vec<Verdict> {
        let mut dedupe = Dedupe::new(WINDOW, 100);
        let refs: Vec<&Hook> = batch.iter().collect();
        decide(&refs, NOW, WINDOW, &mut dedupe, store).0
    }

    use Verdict::*;

    #[test]
    fn verdicts() {
        let late_s = (NOW - 60 * MIN) / 1000;
        let cases: Vec<(&str, Vec<Hook>, Store, Vec<Verdict>)> = vec![
            (
                "no ip: always counts",
                vec![hook(None, None, None, false), hook(None, None, None, false)],
                Store::default(),
                vec![Counted { ts_ms: NOW }, Counted { ts_ms: NOW }],
            ),
            (
                "same ip twice within the window: once",
                vec![
                    hook(Some("203.0.113.7"), None, None, false),
                    hook(Some("203.0.113.7"), None, None, false),
                ],
                Store::default(),
                vec![Counted { ts_ms: NOW }, SameBan],
            ),
            (
                "ignored: not counted, not remembered",
                vec![
                    hook(Some("203.0.113.7"), None, None, true),
                    hook(Some("203.0.113.7"), None, None, false),
                ],
                Store::default(),
                vec![Ignored, Counted { ts_ms: NOW }],
            ),
            (
                "an id stored before: a repeat",
                vec![hook(Some("203.0.113.7"), None, Some("e-1"), false)],
                Store {
                    ids: vec!["e-1".into()],
                    ..Default::default()
                },
                vec![SameId],
            ),
            (
                "one id twice in a batch: once",
                vec![
                    hook(None, None, Some("e-2"), false),
                    hook(None, None, Some("e-2"), false),
                ],
                Store::default(),
                vec![Counted { ts_ms: NOW }, SameId],
            ),
            (
                "late bans an hour apart: twice",
                vec![
                    hook(Some("203.0.113.7"), Some(late_s), None, false),
                    hook(
                        Some("203.0.113.7"),
                        Some(late_s + 3600 - 3600 / 2),
                        None,
                        false,
                    ),
                ],
                Store::default(),
                vec![
                    Counted {
                        ts_ms: late_s * 1000,
                    },
                    Counted {
                        ts_ms: (late_s + 1800) * 1000,
                    },
                ],
            ),
            (
                "the same late ban twice in a batch: once",
                vec![
                    hook(Some("203.0.113.7"), Some(late_s), None, false),
                    hook(Some("203.0.113.7"), Some(late_s), None, false),
                ],
                Store::default(),
                vec![
                    Counted {
                        ts_ms: late_s * 1000,
                    },
                    SameBan,
                ],
            ),
            (
                "a late ban already stored near its time: a repeat",
                vec![hook(Some("203.0.113.7"), Some(late_s), None, false)],
                Store {
                    bans: vec![(key("203.0.113.7"), late_s * 1000 + MIN)],
                    ..Default::default()
                },
                vec![SameBan],
            ),
            (
                "a time in the future is clamped to now",
                vec![hook(None, Some(NOW / 1000 + 3600), None, false)],
                Store::default(),
                vec![Counted { ts_ms: NOW }],
            ),
        ];
        for (name, batch, store, want) in cases {
            assert_eq!(run(&batch, &store), want, "{name}");
        }
    }

    #[test]
    fn keys_remembered_are_returned_for_a_failed_commit() {
        let mut dedupe = Dedupe::new(WINDOW, 100);
        let h = hook(Some("203.0.113.7"), None, None, false);
        let (v, remembered) = decide(&[&h], NOW, WINDOW, &mut dedupe, &Store::default());
        assert_eq!(v, vec![Counted { ts_ms: NOW }]);
        assert_eq!(remembered, vec![key("203.0.113.7")]);
        dedupe.forget(&remembered[0]);
        let (v, _) = decide(&[&h], NOW, WINDOW, &mut dedupe, &Store::default());
        assert_eq!(v, vec![Counted { ts_ms: NOW }], "forgotten: counts again");
    }
}
