//! Connection slots that cannot be taken hostage.
//!
//! Every accepted connection takes a slot. A slot is *evictable* while its
//! connection is still sending headers or idles between keep-alive requests,
//! and *busy* only while a request is being handled. When all slots are
//! taken, a new connection evicts the evictable one that has waited longest
//! (oldest first): a trickler or an idle keep-alive holder loses its slot to
//! a hook that sends its request at once, and the hook, being the newest,
//! is the last in line to be evicted. Busy slots are never evicted.
//!
//! Independent of the stream type: the caller applies it to the accepted
//! socket (before TLS, if any) and wraps the connection future with
//! [`Slot::closed`], so a second listener (TLS) plugs in by sharing the same
//! `Slots` and doing the same.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

#[derive(Debug)]
struct Entry {
    since: Instant,
    busy: bool,
    close: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    entries: HashMap<u64, Entry>,
}

/// Shared by every listener of one daemon.
#[derive(Debug)]
pub struct Slots {
    capacity: usize,
    table: Mutex<Table>,
    /// Connections closed to make room for a new one.
    pub evicted: AtomicU64,
    /// New connections refused because every slot was busy.
    pub refused: AtomicU64,
}

/// One connection's slot; freed on drop.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    close: Arc<Notify>,
}

impl Slots {
    pub fn new(capacity: usize) -> Arc<Slots> {
        Arc::new(Slots {
            capacity: capacity.max(1),
            table: Mutex::new(Table::default()),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// A slot for a new connection, evicting the longest-waiting evictable
    /// one if all are taken; `None` when every slot is busy.
    pub fn take(self: &Arc<Self>, now: Instant) -> Option<Slot> {
        let mut t = self.table.lock().expect("slots lock");
        if t.entries.len() >= self.capacity {
            let oldest = t
                .entries
                .iter()
                .filter(|(_, e)| !e.busy)
                .min_by_key(|(id, e)| (e.since, **id))
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => {
                    let e = t.entries.remove(&id).expect("present");
                    // notify_one stores a permit: the connection sees it even
                    // if it is not polling the close future yet.
                    e.close.notify_one();
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        t.next_id += 1;
        let id = t.next_id;
        let close = Arc::new(Notify::new());
        t.entries.insert(
            id,
            Entry {
                since: now,
                busy: false,
                close: close.clone(),
            },
        );
        Some(Slot {
            slots: self.clone(),
            id,
            close,
        })
    }

    pub fn in_use(&self) -> usize {
        self.table.lock().expect("slots lock").entries.len()
    }

    fn set_busy(&self, id: u64, busy: bool, now: Instant) {
        if let Some(e) = self.table.lock().expect("slots lock").entries.get_mut(&id) {
            e.busy = busy;
            e.since = now;
        }
    }
}

impl Slot {
    /// A request is being handled: not evictable until [`Slot::idle`].
    pub fn busy(&self, now: Instant) {
        self.slots.set_busy(self.id, true, now);
    }

    /// Answered; waiting for the next request (evictable, oldest first).
    pub fn idle(&self, now: Instant) {
        self.slots.set_busy(self.id, false, now);
    }

    /// Resolves when this connection was evicted.
    pub async fn closed(&self) {
        self.close.notified().await
    }

    /// A handle for the request handler to mark busy/idle.
    pub fn marker(&self) -> SlotMarker {
        SlotMarker {
            slots: self.slots.clone(),
            id: self.id,
        }
    }
}

/// Cloneable busy/idle marker for a connection's request handler.
#[derive(Debug, Clone)]
pub struct SlotMarker {
    slots: Arc<Slots>,
    id: u64,
}

impl SlotMarker {
    pub fn busy(&self) {
        self.slots.set_busy(self.id, true, Instant::now());
    }
    pub fn idle(&self) {
        self.slots.set_busy(self.id, false, Instant::now());
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots
            .table
            .lock()
            .expect("slots lock")
            .entries
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::time::Duration;

    #[test]
    fn a_full_table_evicts_the_longest_waiting_idle_slot_never_a_busy_one() {
        let slots = Slots::new(3);
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let a = slots.take(at(0)).unwrap();
        let b = slots.take(at(1)).unwrap();
        let c = slots.take(at(2)).unwrap();
        a.busy(at(3));
        // b is the oldest evictable one
        let d = slots.take(at(4)).unwrap();
        assert_eq!(slots.evicted.load(Ordering::Relaxed), 1);
        assert_eq!(slots.in_use(), 3);
        // b was told to close; the others were not
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut fb = Box::pin(b.closed());
        assert!(fb.as_mut().poll(&mut cx).is_ready());
        let mut fc = Box::pin(c.closed());
        assert!(fc.as_mut().poll(&mut cx).is_pending());
        drop(fc);
        drop(fb);
        drop(b); // its task ends; the entry is already gone
        assert_eq!(slots.in_use(), 3);
        c.busy(at(5));
        d.busy(at(6));
        assert!(slots.take(at(7)).is_none(), "all busy: refused");
        assert_eq!(slots.refused.load(Ordering::Relaxed), 1);
        a.idle(at(8));
        let _e = slots.take(at(9)).unwrap();
        assert_eq!(slots.evicted.load(Ordering::Relaxed), 2);
        drop(c);
        assert_eq!(slots.in_use(), 2);
    }
}
