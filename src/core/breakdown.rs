//! Counted events per (route, source, jail), for `/metrics`. Pure.
//!
//! Routes and sources are bounded by the config, but with open auth the
//! source, and always the jail, are whatever the sender wrote: the number of
//! distinct keys is capped, and events past the cap are counted under
//! [`OTHER`] so the route's sum stays right and memory stays bounded.
//!
//! The cap keeps the most recently seen keys, not the first ones (issue 19,
//! item 6): a new key takes the place of the one seen longest ago, whose
//! count moves to its route's `OTHER`. Keys of the configured sources
//! (`reserve`) are only ever displaced by other such keys, so junk sent
//! without a token cannot push a real server's jail out.

use std::collections::{BTreeMap, BTreeSet};

/// Label value for what is not known: no source or jail was sent, or the
/// event's detail was pruned from the store before the daemon started.
pub const UNKNOWN: &str = "";
/// Label value for events past the key cap.
pub const OTHER: &str = "(other)";
/// Distinct keys kept (about 100 bytes each).
pub const MAX_KEYS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventKey {
    pub route: String,
    pub source: String,
    pub jail: String,
}

#[derive(Debug, Clone, Default)]
pub struct Breakdown {
    /// key -> (events, when last seen in `tick`s)
    counts: BTreeMap<EventKey, (u64, u64)>,
    /// last seen -> key, oldest first; `OTHER` keys are not in it (never displaced).
    recency: BTreeMap<u64, EventKey>,
    tick: u64,
    /// Source names whose keys only other reserved keys may displace.
    reserved: BTreeSet<String>,
}

impl Breakdown {
    /// Keys whose source is one of `sources` (the configured ones) are
    /// displaced only by keys of these sources.
    pub fn reserve(&mut self, sources: impl IntoIterator<Item = String>) {
        self.reserved = sources.into_iter().collect();
    }

    fn other(route: &str) -> EventKey {
        EventKey {
            route: route.to_string(),
            source: OTHER.to_string(),
            jail: OTHER.to_string(),
        }
    }

    /// Adds `n` events. A new key past the cap displaces the key seen
    /// longest ago (unreserved ones first; a reserved one only for another
    /// reserved key), whose count goes to its route's (OTHER, OTHER); with
    /// nothing it may displace, the events go to (route, OTHER, OTHER).
    pub fn add(&mut self, route: &str, source: Option<&str>, jail: Option<&str>, n: u64) {
        let mut key = EventKey {
            route: route.to_string(),
            source: source.unwrap_or(UNKNOWN).to_string(),
            jail: jail.unwrap_or(UNKNOWN).to_string(),
        };
        self.tick += 1;
        if let Some((_, seen)) = self.counts.get(&key) {
            self.recency.remove(seen);
        } else if self.counts.len() >= MAX_KEYS && key.source != OTHER {
            let reserved_new = self.reserved.contains(&key.source);
            let victim = self
                .recency
                .iter()
                .find(|(_, k)| !self.reserved.contains(&k.source))
                .or_else(|| self.recency.iter().next().filter(|_| reserved_new))
                .map(|(seen, k)| (*seen, k.clone()));
            match victim {
                Some((seen, old)) => {
                    self.recency.remove(&seen);
                    let (c, _) = self.counts.remove(&old).unwrap_or_default();
                    let other = self.counts.entry(Self::other(&old.route)).or_default();
                    other.0 = other.0.saturating_add(c);
                }
                None => key = Self::other(route),
            }
        }
        let tick = self.tick;
        let e = self.counts.entry(key.clone()).or_default();
        e.0 = e.0.saturating_add(n);
        e.1 = tick;
        if key.source != OTHER {
            self.recency.insert(tick, key);
        }
    }

    /// Makes the route's keys sum to its lifetime `count`: events whose
    /// detail is no longer stored (pruned, capped) count as unknown source
    /// and jail. Called once at start, with the stored counts.
    pub fn fill_to(&mut self, route: &str, count: u64) {
        let known = self.route_total(route);
        if count > known {
            self.add(route, None, None, count - known);
        }
    }

    pub fn route_total(&self, route: &str) -> u64 {
        self.counts
            .iter()
            .filter(|(k, _)| k.route == route)
            .fold(0u64, |acc, (_, (c, _))| acc.saturating_add(*c))
    }

    /// Zeroes one route (a reset from the CLI).
    pub fn reset(&mut self, route: &str) {
        self.counts.retain(|k, _| k.route != route);
        self.recency.retain(|_, k| k.route != route);
    }

    pub fn reset_all(&mut self) {
        self.counts.clear();
        self.recency.clear();
    }

    /// Every key and its count, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = (&EventKey, u64)> {
        self.counts.iter().map(|(k, (c, _))| (k, *c))
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(b: &Breakdown, route: &str, source: &str, jail: &str) -> Option<u64> {
        b.iter()
            .find(|(k, _)| k.route == route && k.source == source && k.jail == jail)
            .map(|(_, c)| c)
    }

    #[test]
    fn adds_per_key_and_missing_parts_are_unknown() {
        let mut b = Breakdown::default();
        b.add("red", Some("web-1"), Some("sshd"), 1);
        b.add("red", Some("web-1"), Some("sshd"), 2);
        b.add("red", None, Some("sshd"), 1);
        b.add("blue", Some("web-1"), None, 1);
        assert_eq!(get(&b, "red", "web-1", "sshd"), Some(3));
        assert_eq!(get(&b, "red", UNKNOWN, "sshd"), Some(1));
        assert_eq!(get(&b, "blue", "web-1", UNKNOWN), Some(1));
        assert_eq!(b.route_total("red"), 4);
        assert_eq!(b.route_total("green"), 0);
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn fill_to_attributes_the_pruned_rest_to_unknown() {
        let mut b = Breakdown::default();
        b.add("red", Some("web-1"), Some("sshd"), 3);
        b.fill_to("red", 10);
        assert_eq!(get(&b, "red", UNKNOWN, UNKNOWN), Some(7));
        assert_eq!(b.route_total("red"), 10);
        // never takes away: more stored detail than count (cannot happen
        // unless the database was edited) is left as it is
        b.fill_to("red", 4);
        assert_eq!(b.route_total("red"), 10);
        b.fill_to("green", 0);
        assert_eq!(b.len(), 2, "nothing added for an empty route");
    }

    #[test]
    fn keys_past_the_cap_displace_the_stalest_and_sums_stay_right() {
        let mut b = Breakdown::default();
        for i in 0..MAX_KEYS + 50 {
            b.add("red", Some("web-1"), Some(&format!("jail{i}")), 1);
        }
        assert!(b.len() <= MAX_KEYS + 1, "capped, plus the overflow key");
        assert_eq!(get(&b, "red", OTHER, OTHER), Some(50), "the 50 oldest");
        assert_eq!(get(&b, "red", "web-1", "jail0"), None);
        assert_eq!(
            get(&b, "red", "web-1", &format!("jail{}", MAX_KEYS + 49)),
            Some(1)
        );
        assert_eq!(b.route_total("red"), MAX_KEYS as u64 + 50);
        // a key seen again is fresh: the next newcomer displaces another
        b.add("red", Some("web-1"), Some("jail50"), 1);
        b.add("red", Some("web-1"), Some("new"), 1);
        assert_eq!(get(&b, "red", "web-1", "jail50"), Some(2));
        assert_eq!(get(&b, "red", "web-1", "jail51"), None);
    }

    #[test]
    fn a_later_real_jail_gets_its_series_after_a_flood_of_junk() {
        let mut b = Breakdown::default();
        b.reserve(["web-1".to_string()]);
        b.add("red", Some("web-1"), Some("sshd"), 1);
        for i in 0..20_000 {
            b.add("red", None, Some(&format!("junk{i}")), 1);
        }
        b.add("red", Some("web-1"), Some("postfix"), 1);
        b.add("red", None, Some("postfix"), 1);
        assert_eq!(get(&b, "red", "web-1", "sshd"), Some(1), "reserved: kept");
        assert_eq!(get(&b, "red", "web-1", "postfix"), Some(1), "recent: kept");
        assert_eq!(get(&b, "red", UNKNOWN, "postfix"), Some(1), "recent: kept");
        assert_eq!(b.route_total("red"), 20_003);
        assert!(b.len() <= MAX_KEYS + 1);
        // Reserved keys fill the table: junk then goes to OTHER, and only
        // another reserved key displaces one.
        let mut b = Breakdown::default();
        b.reserve(["web-1".to_string()]);
        for i in 0..MAX_KEYS {
            b.add("red", Some("web-1"), Some(&format!("j{i}")), 1);
        }
        b.add("red", None, Some("junk"), 1);
        assert_eq!(get(&b, "red", UNKNOWN, "junk"), None);
        assert_eq!(get(&b, "red", OTHER, OTHER), Some(1));
        b.add("red", Some("web-1"), Some("late"), 1);
        assert_eq!(get(&b, "red", "web-1", "late"), Some(1));
        assert_eq!(get(&b, "red", "web-1", "j0"), None);
        assert_eq!(b.route_total("red"), MAX_KEYS as u64 + 2);
    }

    #[test]
    fn reset_zeroes_one_route_or_all_and_counts_saturate() {
        let mut b = Breakdown::default();
        b.add("red", None, None, u64::MAX);
        b.add("red", None, None, 5);
        assert_eq!(get(&b, "red", UNKNOWN, UNKNOWN), Some(u64::MAX));
        b.add("blue", None, None, 1);
        b.reset("red");
        assert_eq!(b.route_total("red"), 0);
        assert_eq!(b.route_total("blue"), 1);
        b.reset_all();
        assert!(b.is_empty());
    }
}
