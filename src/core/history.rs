//! The web page's chart: events per route in time buckets (the last 24 hours
//! per 10 minutes, the last 30 days per local day). Pure: the store's counts
//! per 5-minute slot, the time and the time zone are passed in.

use std::collections::{BTreeMap, HashMap};

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// The store counts events per slot of this many milliseconds; every bucket
/// edge below is a multiple of it (time zone offsets are multiples of 15
/// minutes), so folding slots into buckets is exact.
pub const SLOT_MS: u64 = 5 * 60_000;
pub const TEN_MINUTES_MS: u64 = 10 * 60_000;
/// 24 hours of 10-minute buckets.
pub const DAY_BUCKETS: usize = 144;
/// Days in the long chart, today included.
pub const MONTH_DAYS: usize = 30;

/// Events of one route in one store slot (`slot_ms` is the slot's start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotCount {
    pub route: String,
    pub slot_ms: u64,
    pub n: u64,
}

/// Bucket edges for the last 24 hours: 145 ascending times, the last one the
/// end of the 10 minutes `now_ms` is in.
pub fn ten_minute_edges(now_ms: u64) -> Vec<u64> {
    let end = (now_ms / TEN_MINUTES_MS + 1) * TEN_MINUTES_MS;
    (0..=DAY_BUCKETS as u64)
        .map(|i| end.saturating_sub((DAY_BUCKETS as u64 - i) * TEN_MINUTES_MS))
        .collect()
}

/// Bucket edges for the last 30 days in `zone`: 31 local midnights (a day
/// across a DST change is 23 or 25 hours), the last one tomorrow's.
pub fn day_edges(now_ms: u64, zone: &TimeZone) -> Vec<u64> {
    let now = i64::try_from(now_ms)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let today = now.to_zoned(zone.clone()).date();
    (0..=MONTH_DAYS as i64)
        .map(|i| {
            let day = today
                .checked_add((i - (MONTH_DAYS as i64 - 1)).days())
                .unwrap_or(today);
            day.to_zoned(zone.clone())
                .map(|z| z.timestamp().as_millisecond().max(0) as u64)
                .unwrap_or(0)
        })
        .collect()
}

/// Counts per route (in `routes` order) per bucket `[edges[i], edges[i+1])`.
/// Slots outside the edges and routes not listed are left out.
pub fn bucketize(slots: &[SlotCount], routes: &[String], edges: &[u64]) -> Vec<Vec<u64>> {
    let buckets = edges.len().saturating_sub(1);
    let mut out = vec![vec![0u64; buckets]; routes.len()];
    for s in slots {
        let Some(r) = routes.iter().position(|name| *name == s.route) else {
            continue;
        };
        // The first edge greater than the slot's start, minus one.
        let i = edges.partition_point(|&e| e <= s.slot_ms);
        if i == 0 || i > buckets {
            continue;
        }
        out[r][i - 1] = out[r][i - 1].saturating_add(s.n);
    }
    out
}

/// How far back `Activity` keeps slots: the 30-day chart plus a day for
/// time zones and the current day.
pub const KEEP_MS: u64 = (MONTH_DAYS as u64 + 2) * 86_400_000;

/// The chart's counts in memory (issue 19, item 1): events per route per
/// store slot, kept up to date by the ledger as it counts, seeded from the
/// store at start. The page reads this instead of the store, so a page
/// never waits for (or delays) the commit of a hook.
#[derive(Debug, Default, Clone)]
pub struct Activity {
    /// route -> slot start -> events
    routes: HashMap<String, BTreeMap<u64, u64>>,
    newest_ms: u64,
}

impl Activity {
    pub fn of(slots: &[SlotCount]) -> Activity {
        let mut a = Activity::default();
        for s in slots {
            a.add_n(&s.route, s.slot_ms, s.n);
        }
        a
    }

    /// One counted event of `route` at `ts_ms`.
    pub fn add(&mut self, route: &str, ts_ms: u64) {
        self.add_n(route, ts_ms, 1);
    }

    fn add_n(&mut self, route: &str, ts_ms: u64, n: u64) {
        let slot = ts_ms / SLOT_MS * SLOT_MS;
        let slots = match self.routes.get_mut(route) {
            Some(s) => s,
            None => self.routes.entry(route.to_string()).or_default(),
        };
        let c = slots.entry(slot).or_insert(0);
        *c = c.saturating_add(n);
        if slot > self.newest_ms {
            self.newest_ms = slot;
            // Slots older than KEEP_MS before the newest go: memory stays
            // bounded at routes x KEEP_MS / SLOT_MS entries.
            let keep_from = slot.saturating_sub(KEEP_MS);
            for s in self.routes.values_mut() {
                if s.first_key_value().is_some_and(|(&k, _)| k < keep_from) {
                    *s = s.split_off(&keep_from);
                }
            }
        }
    }

    /// Every slot starting at or after `since_ms`.
    pub fn since(&self, since_ms: u64) -> Vec<SlotCount> {
        let from = since_ms / SLOT_MS * SLOT_MS;
        self.routes
            .iter()
            .flat_map(|(route, slots)| {
                slots.range(from..).map(move |(&slot_ms, &n)| SlotCount {
                    route: route.clone(),
                    slot_ms,
                    n,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_counts_per_slot_and_forgets_what_is_too_old() {
        let mut a = Activity::of(&[slot("red", 1000 * SLOT_MS, 2)]);
        a.add("red", 1000 * SLOT_MS + 5);
        a.add("blue", 1001 * SLOT_MS + SLOT_MS - 1);
        let mut got = a.since(1000 * SLOT_MS + 1);
        got.sort_by_key(|s| (s.slot_ms, s.route.clone()));
        assert_eq!(
            got,
            vec![
                slot("red", 1000 * SLOT_MS, 3),
                slot("blue", 1001 * SLOT_MS, 1)
            ]
        );
        assert_eq!(a.since(1001 * SLOT_MS).len(), 1);
        // An event KEEP_MS later drops the old slots of every route.
        a.add("green", 1001 * SLOT_MS + KEEP_MS + SLOT_MS);
        let left = a.since(0);
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].route, "green");
        // The same counts as bucketize over the store's slots.
        let slots = [
            slot("red", 1000 * SLOT_MS, 4),
            slot("red", 1003 * SLOT_MS, 1),
        ];
        let edges = [1000 * SLOT_MS, 1002 * SLOT_MS, 1004 * SLOT_MS];
        let names = vec!["red".to_string()];
        assert_eq!(
            bucketize(&Activity::of(&slots).since(0), &names, &edges),
            bucketize(&slots, &names, &edges)
        );
    }

    fn slot(route: &str, slot_ms: u64, n: u64) -> SlotCount {
        SlotCount {
            route: route.into(),
            slot_ms,
            n,
        }
    }

    /// 2026-11-22T12:34:56Z
    const NOON: u64 = 1_795_350_896_000;

    #[test]
    fn ten_minute_edges_cover_the_last_day_up_to_the_current_bucket() {
        let e = ten_minute_edges(NOON);
        assert_eq!(e.len(), DAY_BUCKETS + 1);
        assert!(e.windows(2).all(|w| w[1] - w[0] == TEN_MINUTES_MS));
        let last = *e.last().unwrap();
        assert!(last > NOON && last - NOON <= TEN_MINUTES_MS);
        assert_eq!(last % TEN_MINUTES_MS, 0);
        assert_eq!(last - e[0], 24 * 3_600_000);
        // Exactly on an edge: that bucket is the current one.
        let on_edge = 1_795_350_600_000;
        assert_eq!(on_edge % TEN_MINUTES_MS, 0);
        assert_eq!(
            *ten_minute_edges(on_edge).last().unwrap(),
            on_edge + TEN_MINUTES_MS
        );
        // Near the epoch nothing underflows.
        assert_eq!(ten_minute_edges(0)[0], 0);
    }

    #[test]
    fn day_edges_are_local_midnights_and_follow_dst() {
        let utc = day_edges(NOON, &TimeZone::UTC);
        assert_eq!(utc.len(), MONTH_DAYS + 1);
        assert!(utc.windows(2).all(|w| w[1] - w[0] == 86_400_000));
        assert_eq!(*utc.last().unwrap(), 1_795_392_000_000, "2026-11-23T00:00Z");
        let paris = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let e = day_edges(NOON, &paris);
        assert_eq!(
            *e.last().unwrap(),
            1_795_392_000_000 - 3_600_000,
            "midnight in Paris is 23:00Z in winter"
        );
        // Clocks went back on 2026-10-25: one 25-hour day among the last 30.
        let lengths: Vec<u64> = e.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(lengths.iter().filter(|&&l| l == 25 * 3_600_000).count(), 1);
        assert_eq!(lengths.iter().filter(|&&l| l == 24 * 3_600_000).count(), 29);
        assert!(e.iter().all(|x| x % SLOT_MS == 0));
        let kolkata = TimeZone::posix("IST-5:30").unwrap();
        assert!(day_edges(NOON, &kolkata).iter().all(|x| x % SLOT_MS == 0));
    }

    #[test]
    fn slots_fold_into_buckets_per_route() {
        let routes = vec!["red".to_string(), "blue".to_string()];
        let edges = [1000 * SLOT_MS, 1002 * SLOT_MS, 1004 * SLOT_MS];
        let slots = [
            slot("red", 1000 * SLOT_MS, 2),
            slot("red", 1001 * SLOT_MS, 3),
            slot("red", 1002 * SLOT_MS, 1),
            slot("blue", 1003 * SLOT_MS, 7),
            slot("blue", 999 * SLOT_MS, 100), // before the first edge
            slot("blue", 1004 * SLOT_MS, 100), // at the end edge: after
            slot("green", 1000 * SLOT_MS, 100), // not a listed route
        ];
        assert_eq!(
            bucketize(&slots, &routes, &edges),
            vec![vec![5, 1], vec![0, 7]]
        );
        assert_eq!(
            bucketize(&[], &routes, &edges),
            vec![vec![0, 0], vec![0, 0]]
        );
        assert_eq!(bucketize(&slots, &routes, &[]), vec![Vec::<u64>::new(); 2]);
        let huge = [
            slot("red", 1000 * SLOT_MS, u64::MAX),
            slot("red", 1000 * SLOT_MS, 5),
        ];
        assert_eq!(bucketize(&huge, &routes, &edges)[0][0], u64::MAX);
    }
}
