//! Whether the wall clock can be trusted enough to delete by age. A Pi has
//! no RTC: until NTP syncs, or after a bad jump, "older than N days" can mean
//! "everything". Pure: the caller passes what it observed.

/// Prune only when the clock is synchronised and not behind the newest
/// stored event (a clock behind history was set back, or history was
/// written by a clock that ran ahead: either way ages are unreliable).
pub fn prune_allowed(now_ms: u64, newest_event_ms: Option<u64>, synchronised: bool) -> bool {
    synchronised && newest_event_ms.is_none_or(|newest| now_ms >= newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_pruned_while_the_clock_looks_wrong() {
        assert!(prune_allowed(1_000, None, true));
        assert!(prune_allowed(1_000, Some(1_000), true));
        assert!(prune_allowed(1_000, Some(999), true));
        assert!(!prune_allowed(1_000, Some(1_001), true), "behind history");
        assert!(!prune_allowed(1_000, None, false), "not synchronised");
        assert!(!prune_allowed(1_000, Some(10), false));
    }
}
