//! Drops repeated bans: fail2ban replays `actionban` for restored bans, and a
//! flapping jail can ban the same address twice in a row. Pure: time passed in.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

/// What identifies "the same ban".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BanKey {
    pub route: String,
    pub jail: String,
    pub ip: String,
}

/// Remembers keys for `window_ms`. Memory is bounded by `capacity`: when full,
/// the oldest key is forgotten first (a replay of it would count again, which is
/// the lesser harm than unbounded growth under a flood of distinct addresses).
/// Keys are kept as 64-bit digests with a per-process random seed: ~40 bytes
/// an entry instead of three strings, and collisions are both negligible and
/// not steerable from outside.
#[derive(Debug)]
pub struct Dedupe {
    window_ms: u64,
    capacity: usize,
    hasher: RandomState,
    seen: HashMap<u64, u64>,
    order: VecDeque<(u64, u64)>,
}

impl Dedupe {
    pub fn new(window_ms: u64, capacity: usize) -> Self {
        Dedupe {
            window_ms,
            capacity: capacity.max(1),
            hasher: RandomState::new(),
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn set_window(&mut self, window_ms: u64) {
        self.window_ms = window_ms;
    }

    /// True when `key` was not seen within the window, and remembers it from `now_ms`.
    /// A repeat does not extend the window: a ban re-sent every 9 minutes with a
    /// 10-minute window still counts every 10 minutes or so, never silently forever.
    pub fn first_seen(&mut self, key: &BanKey, now_ms: u64) -> bool {
        self.expire(now_ms);
        if self.window_ms == 0 {
            return true;
        }
        if let Some(&at) = self.seen.get(&self.digest(key)) {
            if live(at, now_ms, self.window_ms) {
                return false;
            }
        }
        self.remember(key.clone(), now_ms);
        true
    }

    fn digest(&self, key: &BanKey) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Records a key as seen at `at_ms` (used to re-seed after a restart).
    pub fn remember(&mut self, key: BanKey, at_ms: u64) {
        while self.seen.len() >= self.capacity {
            match self.order.pop_front() {
                Some((at, old)) => {
                    if self.seen.get(&old) == Some(&at) {
                        self.seen.remove(&old);
                    }
                }
                None => break,
            }
        }
        let digest = self.digest(&key);
        self.seen.insert(digest, at_ms);
        self.order.push_back((at_ms, digest));
    }

    /// Forgets a key that was remembered but whose event could not be stored.
    pub fn forget(&mut self, key: &BanKey) {
        let digest = self.digest(key);
        self.seen.remove(&digest);
    }

    fn expire(&mut self, now_ms: u64) {
        // Entries stamped by a clock that ran ahead (more than a window in
        // the future) are not at the front of `order`; drop them wherever
        // they are, or they would suppress their key until that future date.
        if self
            .order
            .back()
            .is_some_and(|(at, _)| *at > now_ms.saturating_add(self.window_ms))
        {
            let window = self.window_ms;
            self.order
                .retain(|(at, _)| *at <= now_ms.saturating_add(window));
            self.seen
                .retain(|_, at| *at <= now_ms.saturating_add(window));
        }
        while let Some((at, _)) = self.order.front() {
            if live(*at, now_ms, self.window_ms) {
                break;
            }
            let (at, key) = self.order.pop_front().expect("front exists");
            if self.seen.get(&key) == Some(&at) {
                self.seen.remove(&key);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Was a key seen at `at` still within the window at `now`? A time more
/// than a window in the future came from a wrong clock: not live.
fn live(at: u64, now: u64, window: u64) -> bool {
    if at > now {
        at - now <= window
    } else {
        now - at < window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    fn key(route: &str, jail: &str, ip: &str) -> BanKey {
        BanKey {
            route: route.into(),
            jail: jail.into(),
            ip: ip.into(),
        }
    }

    #[test]
    fn a_clock_that_jumped_ahead_and_back_does_not_freeze_dedupe() {
        const YEAR: u64 = 365 * 86_400_000;
        let w = 600_000;
        let t0 = 1_700_000_000_000;
        for jump in [w - 1, w, w + 1, 86_400_000, YEAR] {
            let mut d = Dedupe::new(w, 1000);
            let before = key("red", "sshd", "203.0.113.1");
            let ahead = key("red", "sshd", "203.0.113.2");
            assert!(d.first_seen(&before, t0));
            // The clock runs ahead, then is corrected.
            assert!(d.first_seen(&ahead, t0 + jump));
            let back = t0 + 1_000;
            // A jump shorter than the window keeps the earlier key; a longer
            // one expired it while the clock was ahead (known limit: a replay
            // of that ban right after the correction counts once more).
            if jump < w {
                assert!(!d.first_seen(&before, back), "jump {jump}: still deduped");
            }
            // A key seen "ahead" counts again a window after the correction,
            // or (a small jump, still within a window) a window after its stamp.
            let again = if t0 + jump > back + w {
                back + w + 1
            } else {
                t0 + jump + w
            };
            assert!(
                d.first_seen(&ahead, again),
                "jump {jump}: the future entry does not freeze its key"
            );
            assert!(!d.first_seen(&ahead, again + 1), "jump {jump}");
            assert!(d.len() <= 3);
        }
    }

    #[test]
    fn repeat_within_window_is_dropped() {
        let mut d = Dedupe::new(10 * MIN, 100);
        let k = key("red", "sshd", "203.0.113.9");
        assert!(d.first_seen(&k, 0));
        assert!(!d.first_seen(&k, 1));
        assert!(!d.first_seen(&k, 10 * MIN - 1));
        assert!(d.first_seen(&k, 10 * MIN), "window is half-open");
    }

    #[test]
    fn repeats_do_not_extend_the_window() {
        let mut d = Dedupe::new(10 * MIN, 100);
        let k = key("red", "sshd", "203.0.113.9");
        assert!(d.first_seen(&k, 0));
        assert!(!d.first_seen(&k, 9 * MIN));
        assert!(d.first_seen(&k, 10 * MIN));
    }

    #[test]
    fn route_jail_and_ip_each_distinguish() {
        let mut d = Dedupe::new(10 * MIN, 100);
        assert!(d.first_seen(&key("red", "sshd", "203.0.113.9"), 0));
        assert!(d.first_seen(&key("blue", "sshd", "203.0.113.9"), 0));
        assert!(d.first_seen(&key("red", "nginx", "203.0.113.9"), 0));
        assert!(d.first_seen(&key("red", "sshd", "203.0.113.10"), 0));
        assert!(!d.first_seen(&key("red", "sshd", "203.0.113.9"), 1));
    }

    #[test]
    fn zero_window_disables_dedupe() {
        let mut d = Dedupe::new(0, 100);
        let k = key("red", "sshd", "203.0.113.9");
        assert!(d.first_seen(&k, 0));
        assert!(d.first_seen(&k, 0));
        assert!(d.is_empty());
    }

    #[test]
    fn memory_is_bounded_by_capacity_and_by_expiry() {
        let mut d = Dedupe::new(10 * MIN, 1000);
        for i in 0..5000u32 {
            assert!(d.first_seen(&key("red", "sshd", &i.to_string()), u64::from(i)));
            assert!(d.len() <= 1000);
            assert!(d.order.len() <= 1000);
        }
        // the newest are still remembered, the oldest were evicted
        assert!(!d.first_seen(&key("red", "sshd", "4999"), 5000));
        assert!(d.first_seen(&key("red", "sshd", "0"), 5000));
        // after the window everything expires
        d.first_seen(&key("red", "sshd", "x"), 5000 + 10 * MIN);
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn forget_lets_a_failed_event_count_on_retry() {
        let mut d = Dedupe::new(10 * MIN, 100);
        let k = key("red", "sshd", "203.0.113.9");
        assert!(d.first_seen(&k, 0));
        d.forget(&k);
        assert!(d.first_seen(&k, 1));
    }

    #[test]
    fn reseeded_keys_are_honoured() {
        let mut d = Dedupe::new(10 * MIN, 100);
        let k = key("red", "sshd", "203.0.113.9");
        d.remember(k.clone(), 5 * MIN);
        assert!(!d.first_seen(&k, 14 * MIN));
        assert!(d.first_seen(&k, 15 * MIN));
    }
}
