//! Per-client token buckets for requests that fail (unknown path, bad token,
//! bad input): a scanner hammering the appliance soon gets 429 for almost
//! nothing. Requests that succeed cost nothing. Pure: time passed in.

use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Failures a client may have in a burst.
    pub burst: u32,
    /// Failures per minute it may have in the long run.
    pub per_minute: u32,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens in thousandths, so slow refill rates stay exact in integers.
    milli_tokens: u64,
    updated_ms: u64,
}

/// Buckets for at most `max_clients` addresses; when full, the stalest is
/// dropped (a forgotten client simply starts with a full bucket).
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    max_clients: usize,
    buckets: HashMap<IpAddr, Bucket>,
}

/// IPv6 clients are limited per /64: one host usually owns the whole prefix.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl RateLimiter {
    pub fn new(limit: RateLimit, max_clients: usize) -> Self {
        RateLimiter {
            limit,
            max_clients: max_clients.max(1),
            buckets: HashMap::new(),
        }
    }

    pub fn set_limit(&mut self, limit: RateLimit) {
        self.limit = limit;
    }

    fn full(&self) -> u64 {
        u64::from(self.limit.burst) * 1000
    }

    fn refill(&self, b: &mut Bucket, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(b.updated_ms);
        // per_minute tokens per 60_000 ms = per_minute milli-tokens per 60 ms
        let gained = elapsed.saturating_mul(u64::from(self.limit.per_minute)) / 60;
        b.milli_tokens = (b.milli_tokens.saturating_add(gained)).min(self.full());
        // A clock set back restarts the refill from now (no tokens for the
        // backward step); keeping the future time would freeze the refill
        // until that date.
        b.updated_ms = now_ms;
    }

    /// May this client be served now? (A client with no failures always may.)
    pub fn allowed(&mut self, ip: IpAddr, now_ms: u64) -> bool {
        let key = client_key(ip);
        let Some(mut b) = self.buckets.get(&key).copied() else {
            return true;
        };
        self.refill(&mut b, now_ms);
        if b.milli_tokens >= self.full() {
            self.buckets.remove(&key); // fully recovered: forget it
            return true;
        }
        self.buckets.insert(key, b);
        b.milli_tokens >= 1000
    }

    /// Charges one failed request to this client.
    pub fn charge(&mut self, ip: IpAddr, now_ms: u64) {
        let key = client_key(ip);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_clients {
            self.evict_stalest();
        }
        let full = self.full();
        let mut b = self.buckets.get(&key).copied().unwrap_or(Bucket {
            milli_tokens: full,
            updated_ms: now_ms,
        });
        self.refill(&mut b, now_ms);
        b.milli_tokens = b.milli_tokens.saturating_sub(1000);
        self.buckets.insert(key, b);
    }

    fn evict_stalest(&mut self) {
        if let Some(k) = self
            .buckets
            .iter()
            .min_by_key(|(_, b)| b.updated_ms)
            .map(|(k, _)| *k)
        {
            self.buckets.remove(&k);
        }
    }

    pub fn tracked_clients(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        burst: 5,
        per_minute: 60,
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_clock_set_back_does_not_freeze_the_refill() {
        const YEAR: u64 = 365 * 86_400_000;
        for jump in [1, 60_000, 86_400_000, YEAR] {
            let mut r = RateLimiter::new(LIMIT, 100);
            let a = ip("127.0.0.2");
            let t0 = 1_700_000_000_000;
            for _ in 0..5 {
                r.charge(a, t0 + jump); // clock ahead
            }
            assert!(!r.allowed(a, t0 + jump));
            assert!(
                !r.allowed(a, t0),
                "corrected: no free tokens for the step back"
            );
            assert!(
                r.allowed(a, t0 + 1_000),
                "jump {jump}: refills from the correction"
            );
            assert!(r.allowed(a, t0 + 60_000), "jump {jump}");
        }
    }

    #[test]
    fn burst_of_failures_then_429_then_recovery() {
        let mut r = RateLimiter::new(LIMIT, 100);
        let a = ip("127.0.0.2");
        for _ in 0..5 {
            assert!(r.allowed(a, 0));
            r.charge(a, 0);
        }
        assert!(!r.allowed(a, 0));
        assert!(!r.allowed(a, 999));
        assert!(r.allowed(a, 1000), "one token per second comes back");
        r.charge(a, 1000);
        assert!(!r.allowed(a, 1000));
        assert!(r.allowed(a, 10_000));
        assert_eq!(
            r.tracked_clients(),
            0,
            "fully recovered clients are forgotten"
        );
    }

    #[test]
    fn clients_are_independent_and_success_is_free() {
        let mut r = RateLimiter::new(LIMIT, 100);
        for _ in 0..10 {
            r.charge(ip("127.0.0.2"), 0);
        }
        assert!(!r.allowed(ip("127.0.0.2"), 0));
        assert!(r.allowed(ip("127.0.0.3"), 0));
        for _ in 0..1000 {
            assert!(r.allowed(ip("127.0.0.4"), 0));
        }
    }

    #[test]
    fn ipv6_is_limited_per_64_and_mapped_v4_as_v4() {
        let mut r = RateLimiter::new(LIMIT, 100);
        for i in 0..5 {
            r.charge(ip(&format!("2001:db8:1:2::{i}")), 0);
        }
        assert!(!r.allowed(ip("2001:db8:1:2::ffff"), 0));
        assert!(r.allowed(ip("2001:db8:1:3::1"), 0));
        for _ in 0..5 {
            r.charge(ip("::ffff:198.18.0.1"), 0);
        }
        assert!(!r.allowed(ip("198.18.0.1"), 0));
    }

    #[test]
    fn memory_is_bounded() {
        let mut r = RateLimiter::new(LIMIT, 50);
        for i in 0..1000u32 {
            r.charge(IpAddr::from(i.to_be_bytes()), u64::from(i));
            assert!(r.tracked_clients() <= 50);
        }
        // the most recent are still limited
        for _ in 0..5 {
            r.charge(IpAddr::from(999u32.to_be_bytes()), 1000);
        }
        assert!(!r.allowed(IpAddr::from(999u32.to_be_bytes()), 1000));
    }

    #[test]
    fn clock_going_backwards_does_not_refill() {
        let mut r = RateLimiter::new(LIMIT, 10);
        let a = ip("127.0.0.9");
        for _ in 0..5 {
            r.charge(a, 10_000);
        }
        assert!(!r.allowed(a, 5_000));
    }
}
