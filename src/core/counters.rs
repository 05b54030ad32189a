//! Attack counters: lifetime counts that never wrap, last-seen times and a
//! rolling 24-hour window. Pure: time is passed in as milliseconds since the epoch.

use std::collections::{HashMap, VecDeque};

const MINUTE_MS: u64 = 60_000;
/// The rolling window is kept in one-minute buckets.
pub const WINDOW_MINUTES: u64 = 24 * 60;

/// Events per minute for the last 24 hours; at most 1440 buckets whatever the load.
#[derive(Debug, Default, Clone)]
pub struct RollingWindow {
    buckets: VecDeque<(u64, u64)>,
}

impl RollingWindow {
    pub fn add(&mut self, ts_ms: u64, n: u64) {
        let minute = ts_ms / MINUTE_MS;
        // The clock went back by more than the window (it had jumped ahead
        // and was corrected): buckets "from the future" would otherwise
        // prune every real event and freeze the window at 0 until that
        // future date. They are dropped; the real events count again.
        if self
            .buckets
            .back()
            .is_some_and(|(m, _)| *m >= minute + WINDOW_MINUTES)
        {
            while self.buckets.back().is_some_and(|(m, _)| *m > minute) {
                self.buckets.pop_back();
            }
        }
        // Events arrive in time order, so the bucket is nearly always the last one.
        match self.buckets.iter_mut().rev().find(|(m, _)| *m <= minute) {
            Some((m, count)) if *m == minute => *count = count.saturating_add(n),
            _ => {
                let at = self.buckets.partition_point(|(m, _)| *m < minute);
                self.buckets.insert(at, (minute, n));
            }
        }
        self.prune(ts_ms.max(self.newest_ms()));
    }

    fn newest_ms(&self) -> u64 {
        self.buckets.back().map_or(0, |(m, _)| m * MINUTE_MS)
    }

    fn prune(&mut self, now_ms: u64) {
        let oldest_kept = (now_ms / MINUTE_MS).saturating_sub(WINDOW_MINUTES - 1);
        while self.buckets.front().is_some_and(|(m, _)| *m < oldest_kept) {
            self.buckets.pop_front();
        }
    }

    /// Events in the 1440 one-minute buckets ending with the current minute.
    pub fn sum(&self, now_ms: u64) -> u64 {
        let oldest_kept = (now_ms / MINUTE_MS).saturating_sub(WINDOW_MINUTES - 1);
        self.buckets
            .iter()
            .filter(|(m, _)| *m >= oldest_kept && *m <= now_ms / MINUTE_MS)
            .fold(0u64, |acc, (_, c)| acc.saturating_add(*c))
    }
}

#[derive(Debug, Default, Clone)]
pub struct RouteCount {
    pub count: u64,
    pub last_seen_ms: Option<u64>,
    pub window: RollingWindow,
}

/// Counts per route name. Every addition saturates at `u64::MAX`.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    routes: HashMap<String, RouteCount>,
}

impl Counters {
    /// Restores a route's lifetime count and last-seen time (from storage).
    pub fn restore(&mut self, route: &str, count: u64, last_seen_ms: Option<u64>) {
        let entry = self.routes.entry(route.to_string()).or_default();
        entry.count = count;
        entry.last_seen_ms = last_seen_ms;
    }

    /// Restores events into the rolling window only (from storage).
    pub fn restore_window(&mut self, route: &str, ts_ms: u64, n: u64) {
        self.routes
            .entry(route.to_string())
            .or_default()
            .window
            .add(ts_ms, n);
    }

    /// Counts one event; returns the route's new count.
    pub fn record(&mut self, route: &str, ts_ms: u64) -> u64 {
        let entry = self.routes.entry(route.to_string()).or_default();
        entry.count = entry.count.saturating_add(1);
        // Out-of-order events within a day keep the newest time; a last_seen
        // more than a day ahead of a new event was written by a clock that
        // ran ahead and has been corrected: the new event's time replaces it.
        entry.last_seen_ms = Some(entry.last_seen_ms.map_or(ts_ms, |t| {
            if t > ts_ms.saturating_add(WINDOW_MINUTES * MINUTE_MS) {
                ts_ms
            } else {
                t.max(ts_ms)
            }
        }));
        entry.window.add(ts_ms, 1);
        entry.count
    }

    /// Zeroes one route (its 24-hour window too).
    pub fn reset(&mut self, route: &str) {
        self.routes.remove(route);
    }

    pub fn reset_all(&mut self) {
        self.routes.clear();
    }

    pub fn get(&self, route: &str) -> Option<&RouteCount> {
        self.routes.get(route)
    }

    pub fn count(&self, route: &str) -> u64 {
        self.routes.get(route).map_or(0, |r| r.count)
    }

    pub fn last_24h(&self, route: &str, now_ms: u64) -> u64 {
        self.routes.get(route).map_or(0, |r| r.window.sum(now_ms))
    }

    /// Sum over every route ever counted, including routes no longer configured.
    pub fn total(&self) -> u64 {
        self.routes
            .values()
            .fold(0u64, |acc, r| acc.saturating_add(r.count))
    }

    pub fn total_last_24h(&self, now_ms: u64) -> u64 {
        self.routes
            .values()
            .fold(0u64, |acc, r| acc.saturating_add(r.window.sum(now_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 60 * MINUTE_MS;
    const T0: u64 = 1_700_000_000_000;

    #[test]
    fn counts_per_route_and_total() {
        let mut c = Counters::default();
        assert_eq!(c.record("red", T0), 1);
        assert_eq!(c.record("red", T0 + 1), 2);
        assert_eq!(c.record("blue", T0 + 2), 1);
        assert_eq!(c.count("red"), 2);
        assert_eq!(c.count("green"), 0);
        assert_eq!(c.total(), 3);
        assert_eq!(c.get("red").unwrap().last_seen_ms, Some(T0 + 1));
    }

    #[test]
    fn counts_saturate_instead_of_wrapping() {
        let mut c = Counters::default();
        c.restore("red", u64::MAX - 1, None);
        c.restore("blue", u64::MAX, None);
        assert_eq!(c.record("red", T0), u64::MAX);
        assert_eq!(c.record("red", T0), u64::MAX);
        assert_eq!(c.total(), u64::MAX);
    }

    #[test]
    fn last_seen_never_goes_backwards() {
        let mut c = Counters::default();
        c.record("red", T0 + 10);
        c.record("red", T0);
        assert_eq!(c.get("red").unwrap().last_seen_ms, Some(T0 + 10));
    }

    #[test]
    fn last_seen_from_a_clock_that_ran_ahead_is_replaced_after_the_correction() {
        let day = WINDOW_MINUTES * MINUTE_MS;
        for (ahead, kept) in [
            (10, true),
            (day, true),
            (day + 1, false),
            (365 * day, false),
        ] {
            let mut c = Counters::default();
            c.record("red", T0 + ahead);
            c.record("red", T0);
            let expect = if kept { T0 + ahead } else { T0 };
            assert_eq!(c.get("red").unwrap().last_seen_ms, Some(expect), "{ahead}");
        }
    }

    #[test]
    fn a_clock_corrected_after_a_forward_jump_does_not_freeze_the_window() {
        const YEAR_MS: u64 = 365 * 86_400_000;
        let t0: u64 = 1_700_000_000_000;
        // Every jump size around the window edge, forward and back.
        for jump_minutes in [
            WINDOW_MINUTES - 1,
            WINDOW_MINUTES,
            WINDOW_MINUTES + 1,
            YEAR_MS / MINUTE_MS,
        ] {
            let mut w = RollingWindow::default();
            w.add(t0, 1);
            w.add(t0 + jump_minutes * MINUTE_MS, 1); // clock ahead
            let back = t0 + 5 * MINUTE_MS; // corrected
            w.add(back, 1);
            assert!(
                w.sum(back) >= 1,
                "jump {jump_minutes} min: the new event counts"
            );
            w.add(back + MINUTE_MS, 1);
            assert!(w.sum(back + MINUTE_MS) >= 2, "jump {jump_minutes} min");
            assert!(w.buckets.len() <= WINDOW_MINUTES as usize + 1);
        }
    }

    #[test]
    fn window_forgets_events_older_than_24h() {
        let mut c = Counters::default();
        c.record("red", T0);
        c.record("red", T0 + HOUR);
        c.record("blue", T0 + 2 * HOUR);
        assert_eq!(c.last_24h("red", T0 + 2 * HOUR), 2);
        assert_eq!(c.total_last_24h(T0 + 2 * HOUR), 3);
        assert_eq!(c.last_24h("red", T0 + 24 * HOUR + MINUTE_MS), 1);
        assert_eq!(c.last_24h("red", T0 + 25 * HOUR + MINUTE_MS), 0);
        assert_eq!(c.count("red"), 2, "lifetime count is kept");
    }

    #[test]
    fn window_stays_bounded_under_a_long_stream() {
        let mut w = RollingWindow::default();
        for i in 0..10_000u64 {
            w.add(T0 + i * 30_000, 1);
        }
        assert!(w.buckets.len() <= WINDOW_MINUTES as usize);
        // the window holds exactly the events of the last 1440 minutes
        let now = T0 + 9_999 * 30_000;
        let oldest = now / MINUTE_MS - (WINDOW_MINUTES - 1);
        let expected = (0..10_000u64)
            .filter(|i| (T0 + i * 30_000) / MINUTE_MS >= oldest)
            .count() as u64;
        assert!(expected > 2 * WINDOW_MINUTES - 3);
        assert_eq!(w.sum(now), expected);
    }

    #[test]
    fn window_accepts_out_of_order_restores() {
        let mut w = RollingWindow::default();
        w.add(T0 + 5 * MINUTE_MS, 2);
        w.add(T0, 3);
        w.add(T0 + 2 * MINUTE_MS, 1);
        w.add(T0 + 2 * MINUTE_MS, 1);
        assert_eq!(w.sum(T0 + 5 * MINUTE_MS), 7);
        let minutes: Vec<u64> = w.buckets.iter().map(|b| b.0).collect();
        let mut sorted = minutes.clone();
        sorted.sort();
        assert_eq!(minutes, sorted);
        assert_eq!(minutes.len(), 3);
    }

    #[test]
    fn reset_zeroes_one_route_or_all() {
        let mut c = Counters::default();
        c.record("red", T0);
        c.record("blue", T0);
        c.reset("red");
        assert_eq!(c.count("red"), 0);
        assert_eq!(c.last_24h("red", T0), 0);
        assert_eq!(c.total(), 1);
        c.reset_all();
        assert_eq!(c.total(), 0);
    }
}
