//! Counted events per (route, source, jail), for `/metrics`. Pure.
//!
//! Routes and sources are bounded by the config, but with open auth the
//! source, and always the jail, are whatever the sender wrote: the number of
//! distinct keys is capped, and events past the cap are counted under
//! [`OTHER`] so the route's sum stays right and memory stays bounded.

use std::collections::BTreeMap;

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
    counts: BTreeMap<EventKey, u64>,
}

impl Breakdown {
    /// Adds `n` events; a new key past the cap goes to (route, OTHER, OTHER).
    pub fn add(&mut self, route: &str, source: Option<&str>, jail: Option<&str>, n: u64) {
        let key = EventKey {
            route: route.to_string(),
            source: source.unwrap_or(UNKNOWN).to_string(),
            jail: jail.unwrap_or(UNKNOWN).to_string(),
        };
        let key = if self.counts.contains_key(&key) || self.counts.len() < MAX_KEYS {
            key
        } else {
            EventKey {
                route: route.to_string(),
                source: OTHER.to_string(),
                jail: OTHER.to_string(),
            }
        };
        let c = self.counts.entry(key).or_insert(0);
        *c = c.saturating_add(n);
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
            .fold(0u64, |acc, (_, c)| acc.saturating_add(*c))
    }

    /// Zeroes one route (a reset from the CLI).
    pub fn reset(&mut self, route: &str) {
        self.counts.retain(|k, _| k.route != route);
    }

    pub fn reset_all(&mut self) {
        self.counts.clear();
    }

    /// Every key and its count, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = (&EventKey, u64)> {
        self.counts.iter().map(|(k, c)| (k, *c))
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
    fn keys_past_the_cap_count_under_other_and_sums_stay_right() {
        let mut b = Breakdown::default();
        for i in 0..MAX_KEYS + 50 {
            b.add("red", Some("web-1"), Some(&format!("jail{i}")), 1);
        }
        assert_eq!(b.len(), MAX_KEYS + 1, "capped, plus the overflow key");
        assert_eq!(get(&b, "red", OTHER, OTHER), Some(50));
        assert_eq!(b.route_total("red"), MAX_KEYS as u64 + 50);
        // a key seen before the cap keeps counting as itself
        b.add("red", Some("web-1"), Some("jail0"), 1);
        assert_eq!(get(&b, "red", "web-1", "jail0"), Some(2));
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
