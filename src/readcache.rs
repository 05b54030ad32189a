//! One computation shared by every client that asks at once (issue 19,
//! item 1): `/api/history`, `/api/recent`, `/api/status` and `/metrics`
//! answer a flood of requests with a handful of computations.
//!
//! A request takes the answer computed after it arrived, or computes one:
//! while a computation runs, everyone who arrives waits for the lock and
//! then shares the next one. So an answer is never older than the request
//! (a test or a page that counted a hook and then reads sees it), and a
//! flood costs about one computation per computation time, whatever the
//! number of clients. Written here because it is twenty lines over tokio's
//! Mutex; a caching crate would bring TTL machinery this does not want.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Mutex;

use crate::core::history::Activity;
use crate::core::ratelimit::{RateLimit, RateLimiter};
use crate::store::Store;

/// What the read endpoints share: the memory they answer from, the
/// read-only store connection, one `Shared` per endpoint, and the
/// per-address limit on them.
pub struct Reads {
    /// The chart's counts, kept by the ledger (`Ledger::activity`).
    pub activity: Arc<std::sync::Mutex<Activity>>,
    /// A read-only connection for the event list (`Store::open_reader`);
    /// None when it could not be opened (the list then answers 503).
    pub store: Option<Arc<std::sync::Mutex<Store>>>,
    pub history: Shared,
    pub recent: Shared,
    pub status: Shared,
    pub metrics: Shared,
    /// Reads per client address: one address flooding the page's API gets
    /// 429 for almost nothing, and its answers stay cheap for everyone.
    pub limiter: std::sync::Mutex<RateLimiter>,
}

/// Reads one address may make: a burst of 120, then 30 a second (a page
/// makes a few every 2 s; 25 pages behind one NAT address still fit).
pub const READ_LIMIT: RateLimit = RateLimit {
    burst: 120,
    per_minute: 1800,
};

impl Reads {
    pub fn new(
        activity: Arc<std::sync::Mutex<Activity>>,
        store: Option<Store>,
        max_clients: usize,
    ) -> Reads {
        Reads {
            activity,
            store: store.map(|s| Arc::new(std::sync::Mutex::new(s))),
            history: Shared::default(),
            recent: Shared::default(),
            status: Shared::default(),
            metrics: Shared::default(),
            limiter: std::sync::Mutex::new(RateLimiter::new(READ_LIMIT, max_clients)),
        }
    }

    /// May `ip` read now? Each read takes one token of its bucket.
    pub fn allow(&self, ip: IpAddr, mono_ms: u64) -> bool {
        let mut l = self.limiter.lock().expect("read limiter lock");
        if !l.allowed(ip, mono_ms) {
            return false;
        }
        l.charge(ip, mono_ms);
        true
    }
}

#[derive(Default)]
pub struct Shared {
    last: Mutex<Option<(Instant, Bytes)>>,
}

impl Shared {
    /// The answer of a computation started after `arrived`, made by
    /// `compute` if none is there yet.
    pub async fn get<F, Fut, E>(&self, compute: F) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Bytes, E>>,
    {
        let arrived = Instant::now();
        let mut last = self.last.lock().await;
        if let Some((started, answer)) = last.as_ref() {
            if *started >= arrived {
                return Ok(answer.clone());
            }
        }
        let started = Instant::now();
        let answer = compute().await?;
        *last = Some((started, answer.clone()));
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_a_computation_and_later_ones_get_a_fresh_one() {
        let shared = Arc::new(Shared::default());
        let runs = Arc::new(AtomicU32::new(0));
        let (release, gate) = tokio::sync::watch::channel(false);
        let ask = |shared: Arc<Shared>,
                   runs: Arc<AtomicU32>,
                   gate: tokio::sync::watch::Receiver<bool>| async move {
            shared
                .get(|| async move {
                    let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                    let mut gate = gate;
                    let _ = gate.wait_for(|open| *open).await;
                    Ok::<_, ()>(Bytes::from(n.to_string()))
                })
                .await
                .unwrap()
        };
        // The first computation holds the lock until released; 20 more
        // requests arrive meanwhile.
        let first = tokio::spawn(ask(shared.clone(), runs.clone(), gate.clone()));
        while runs.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let waiting: Vec<_> = (0..20)
            .map(|_| tokio::spawn(ask(shared.clone(), runs.clone(), gate.clone())))
            .collect();
        tokio::task::yield_now().await;
        release.send(true).unwrap();
        assert_eq!(first.await.unwrap(), "1");
        for w in waiting {
            assert_eq!(w.await.unwrap(), "2", "the 20 share one computation");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // A request after that gets a computation of its own.
        assert_eq!(ask(shared.clone(), runs.clone(), gate.clone()).await, "3");
    }

    #[test]
    fn one_address_gets_its_burst_then_the_rate_and_others_are_not_touched() {
        let reads = Reads::new(Default::default(), None, 16);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let served = (0..500).filter(|_| reads.allow(a, 1000)).count();
        assert_eq!(served, READ_LIMIT.burst as usize);
        assert!(reads.allow(b, 1000), "another address still reads");
        // 30 a second: one second later, 30 more.
        let later = (0..500).filter(|_| reads.allow(a, 2000)).count();
        assert_eq!(later, 30);
    }
}
