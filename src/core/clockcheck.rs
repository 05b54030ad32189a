//! Whether the wall clock can be trusted enough to delete by age. A Pi has
//! no RTC: until NTP syncs, or after a bad jump, "older than N days" can mean
//! "everything". Pure: the caller passes what it observed.

/// Prune only when the clock is synchronised and not behind the newest
/// stored event (a clock behind history was set back, or history was
/// written by a clock that ran ahead: either way ages are unreliable).
pub fn prune_allowed(now_ms: u64, newest_event_ms: Option<u64>, synchronised: bool) -> bool {
    synchronised && newest_event_ms.is_none_or(|newest| now_ms >= newest)
}

/// A step of the wall clock larger than this (between two looks, against the
/// monotonic clock) is a jump or a correction; smaller differences are NTP
/// slewing and scheduling noise.
pub const STEP_TOLERANCE_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockStep {
    /// The wall clock moved ahead of the monotonic one by this much.
    Forward(u64),
    /// The wall clock was set back by this much (it had run ahead).
    Back(u64),
}

/// Watches the offset between the wall clock and the monotonic clock: it
/// only changes when someone (NTP, an admin, a bad RTC-less boot) steps
/// the wall clock, so a change says exactly how far it was stepped.
#[derive(Debug, Default, Clone)]
pub struct ClockWatch {
    offset_ms: Option<i128>,
}

impl ClockWatch {
    pub fn observe(&mut self, wall_ms: u64, mono_ms: u64) -> Option<ClockStep> {
        let offset = wall_ms as i128 - mono_ms as i128;
        let previous = self.offset_ms.replace(offset)?;
        let moved = offset - previous;
        if moved.unsigned_abs() <= u128::from(STEP_TOLERANCE_MS) {
            // Keep the reference, so slow drift cannot add up unnoticed...
            self.offset_ms = Some(previous);
            return None;
        }
        let by = u64::try_from(moved.unsigned_abs()).unwrap_or(u64::MAX);
        Some(if moved > 0 {
            ClockStep::Forward(by)
        } else {
            ClockStep::Back(by)
        })
    }
}

/// How far pruning by age may go. The cutoff (`now - retention`) can only
/// advance as fast as real time passes on the monotonic clock since the
/// daemon started: a wall clock that jumps a year ahead while the daemon
/// runs deletes nothing it would not have deleted anyway, even if that clock
/// claims to be synchronised. (Drift between the two clocks is seconds a
/// month: nothing against a retention of days.)
#[derive(Debug, Clone)]
pub struct PruneHorizon {
    /// The cutoff at the start, and the monotonic time then.
    start_cutoff_ms: u64,
    start_mono_ms: u64,
}

impl PruneHorizon {
    pub fn new(start_cutoff_ms: u64, start_mono_ms: u64) -> PruneHorizon {
        PruneHorizon {
            start_cutoff_ms,
            start_mono_ms,
        }
    }

    /// The cutoff to prune at now: events older than it go.
    pub fn cutoff(&self, wall_ms: u64, mono_ms: u64, retention_ms: u64) -> u64 {
        let wanted = wall_ms.saturating_sub(retention_ms);
        let elapsed = mono_ms.saturating_sub(self.start_mono_ms);
        wanted.min(self.start_cutoff_ms.saturating_add(elapsed))
    }
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

    const DAY: u64 = 86_400_000;
    const YEAR: u64 = 365 * DAY;

    #[test]
    fn small_differences_are_not_steps_but_do_not_add_up_unseen() {
        let mut w = ClockWatch::default();
        assert_eq!(w.observe(1_000_000, 0), None, "first look");
        assert_eq!(w.observe(1_000_000 + 5_000 + 30_000, 5_000), None);
        // 30 s + 40 s of drift against the first reference: a step now
        assert_eq!(
            w.observe(1_000_000 + 10_000 + 70_000, 10_000),
            Some(ClockStep::Forward(70_000))
        );
        // the new reference is the stepped one
        assert_eq!(w.observe(1_000_000 + 20_000 + 70_000, 20_000), None);
    }

    #[test]
    fn a_jump_of_a_year_and_back_is_seen_with_its_size() {
        let mut w = ClockWatch::default();
        let start = 1_700_000_000_000;
        w.observe(start, 1_000);
        assert_eq!(
            w.observe(start + YEAR + 2_000, 3_000),
            Some(ClockStep::Forward(YEAR))
        );
        assert_eq!(w.observe(start + YEAR + 7_000, 8_000), None);
        assert_eq!(
            w.observe(start + 9_000, 10_000),
            Some(ClockStep::Back(YEAR))
        );
        // a boot with a clock behind, then NTP
        let mut w = ClockWatch::default();
        w.observe(0, 0);
        assert_eq!(
            w.observe(start, 61_000),
            Some(ClockStep::Forward(start - 61_000))
        );
    }

    #[test]
    fn the_prune_cutoff_advances_no_faster_than_real_time() {
        let start = 1_700_000_000_000;
        let retention = 90 * DAY;
        let h = PruneHorizon::new(start - retention, 0);
        // an hour later, on a right clock: the full cutoff
        let hour = 3_600_000;
        assert_eq!(
            h.cutoff(start + hour, hour, retention),
            start + hour - retention
        );
        // the clock jumps a year ahead; an hour later only an hour more goes
        let cut = h.cutoff(start + YEAR + 2 * hour, 2 * hour, retention);
        assert_eq!(cut, start + 2 * hour - retention);
        // set back: the cutoff does not move back, and stays right
        assert_eq!(
            h.cutoff(start + 3 * hour, 3 * hour, retention),
            start + 3 * hour - retention
        );
        // a clock set back too far prunes less, never more
        assert_eq!(h.cutoff(start, 4 * hour, retention), start - retention);
        assert_eq!(
            h.cutoff(start + 5 * hour, 5 * hour, retention),
            start + 5 * hour - retention
        );
    }
}
