//! Quiet hours applied to the engine's output: the scene keeps running
//! (sweeps, markers, modes), only what reaches the panel is darkened or
//! dimmed. Wall time and the time zone come from closures so tests inject
//! them; the daemon uses the system clock and `TimeZone::system()`.

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::core::color::Rgb;
use crate::core::display::DisplayText;
use crate::core::quiet::{dark_frame, dim_frame, QuietHours};
use crate::core::scene::Frame;

/// How long a button press lights the panel during quiet hours.
pub const WAKE_MS: u64 = 60_000;
/// Quiet state is re-derived at least this often while windows exist, so a
/// time zone change (jiff re-reads the system zone after its 5-minute cache)
/// or a wall-clock step (NTP after boot) is followed without a busy timer.
pub const RECHECK_MS: u64 = 10 * 60_000;

pub type WallClock = Box<dyn Fn() -> Timestamp + Send>;
pub type ZoneSource = Box<dyn Fn() -> TimeZone + Send>;

pub struct QuietGate {
    hours: QuietHours,
    wall: WallClock,
    zone: ZoneSource,
    /// Engine-clock ms until which a button press keeps the panel lit.
    lit_until: Option<u64>,
    /// Engine-clock ms of the next state change or re-check.
    next_check: Option<u64>,
    quiet: bool,
    /// The press that woke the panel only wakes it (no mode change).
    waking_press: bool,
    shown_leds: Vec<Rgb>,
}

impl QuietGate {
    pub fn new(hours: QuietHours, wall: WallClock, zone: ZoneSource) -> Self {
        QuietGate {
            hours,
            wall,
            zone,
            lit_until: None,
            next_check: None,
            quiet: false,
            waking_press: false,
            shown_leds: Vec::new(),
        }
    }

    /// The system clock and time zone.
    pub fn system(hours: QuietHours) -> Self {
        Self::new(hours, Box::new(Timestamp::now), Box::new(TimeZone::system))
    }

    pub fn set_hours(&mut self, hours: QuietHours) {
        self.hours = hours;
        self.next_check = None;
    }

    /// Re-derives the state when due (engine clock `now`).
    fn update(&mut self, now: u64) {
        if self.hours.is_empty() {
            self.quiet = false;
            self.next_check = None;
            return;
        }
        if self.next_check.is_some_and(|at| now < at) {
            return;
        }
        let wall = (self.wall)();
        let zone = (self.zone)();
        let state = self.hours.state(wall, &zone);
        if state.quiet != self.quiet {
            tracing::info!(
                quiet = state.quiet,
                until = ?state.until.map(|t| t.to_zoned(zone.clone()).to_string()),
                "quiet hours"
            );
        }
        self.quiet = state.quiet;
        let boundary = state.until.map(|t| {
            let ms = t
                .as_millisecond()
                .saturating_sub(wall.as_millisecond())
                .max(0) as u64;
            now.saturating_add(ms)
        });
        let recheck = now + RECHECK_MS;
        self.next_check = Some(boundary.map_or(recheck, |b| b.min(recheck)));
    }

    /// Whether the panel is held dark/dim at `now` (not lit by a press).
    pub fn holds(&mut self, now: u64) -> bool {
        self.update(now);
        self.quiet && self.lit_until.is_none_or(|t| now >= t)
    }

    /// Whether quiet hours hold the panel fully dark at `now` (not dim):
    /// nothing drawn underneath can show, so nothing needs to wake for it.
    pub fn holds_dark(&mut self, now: u64) -> bool {
        self.holds(now) && !self.hours.dim
    }

    /// A button edge: during quiet hours a press lights the panel for a
    /// minute. Returns true when the edge's short-press action must be
    /// dropped (the press only woke the panel; a long press still counts).
    pub fn on_button(&mut self, pressed: bool, now: u64) -> bool {
        if pressed {
            self.waking_press = self.holds(now);
            if self.quiet {
                self.lit_until = Some(now + WAKE_MS);
            }
            false
        } else {
            std::mem::take(&mut self.waking_press)
        }
    }

    /// What reaches the panel: the scene's frame, dark or dim.
    pub fn filter(&mut self, frame: Frame, now: u64, sweeping: bool, count: DisplayText) -> Frame {
        let out = if !self.holds(now) {
            frame
        } else if self.hours.dim {
            dim_frame(&frame, sweeping, &self.shown_leds, count)
        } else {
            dark_frame(&frame)
        };
        if !sweeping || !self.holds(now) {
            self.shown_leds.clone_from(&out.leds);
        }
        out
    }

    /// When the gate next needs the engine awake (quiet boundary, the end
    /// of a press's minute, or the periodic re-check).
    pub fn next_wake(&self, now: u64) -> Option<u64> {
        let lit = self.lit_until.filter(|t| *t > now);
        [self.next_check, lit].into_iter().flatten().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::quiet::Window;
    use jiff::civil::time;
    use std::sync::{Arc, Mutex};

    fn frame() -> Frame {
        Frame {
            leds: vec![Rgb::new(255, 0, 0); 8],
            led_brightness: 7,
            display: DisplayText::parse("rEd").unwrap(),
            display_on: true,
            display_brightness: 3,
        }
    }

    /// A gate whose wall clock is `start + engine ms` and whose zone can be swapped.
    fn gate(
        start: Timestamp,
        zone: Arc<Mutex<TimeZone>>,
        dim: bool,
    ) -> (QuietGate, Arc<Mutex<u64>>) {
        let hours = QuietHours {
            days: [Some(Window {
                from: time(22, 30, 0, 0),
                to: time(7, 0, 0, 0),
            }); 7],
            dim,
        };
        let engine_ms = Arc::new(Mutex::new(0u64));
        let t = engine_ms.clone();
        let g = QuietGate::new(
            hours,
            Box::new(move || start + jiff::SignedDuration::from_millis(*t.lock().unwrap() as i64)),
            Box::new(move || zone.lock().unwrap().clone()),
        );
        (g, engine_ms)
    }

    #[test]
    fn wakes_at_the_boundary_and_darkens_until_the_end() {
        let start: Timestamp = "2026-06-10T22:25:00Z".parse().unwrap();
        let zone = Arc::new(Mutex::new(TimeZone::UTC));
        let (mut g, clock) = gate(start, zone, false);
        let f = g.filter(frame(), 0, false, DisplayText::BLANK);
        assert_eq!(f, frame(), "not quiet at 22:25");
        assert_eq!(g.next_wake(0), Some(5 * 60_000), "wakes at 22:30");
        // frames drawn before the boundary do not re-derive the state
        assert_eq!(
            g.filter(frame(), 60_000, false, DisplayText::BLANK),
            frame()
        );
        *clock.lock().unwrap() = 5 * 60_000;
        let f = g.filter(frame(), 5 * 60_000, false, DisplayText::BLANK);
        assert!(!f.display_on && f.leds.iter().all(|c| *c == Rgb::BLACK));
        assert_eq!(
            g.next_wake(5 * 60_000),
            Some(5 * 60_000 + RECHECK_MS),
            "re-check before 07:00"
        );
        // far from a boundary the engine sleeps until the re-check only
        *clock.lock().unwrap() = 9 * 3_600_000;
        assert!(!g.holds(9 * 3_600_000), "07:25: over");
    }

    #[test]
    fn a_press_lights_for_a_minute_and_only_wakes() {
        let start: Timestamp = "2026-06-10T23:00:00Z".parse().unwrap();
        let (mut g, clock) = gate(start, Arc::new(Mutex::new(TimeZone::UTC)), false);
        assert!(g.holds(0));
        assert!(!g.on_button(true, 1000));
        assert!(
            g.on_button(false, 1100),
            "the waking press's action is dropped"
        );
        assert!(!g.holds(1100));
        assert_eq!(g.filter(frame(), 1100, false, DisplayText::BLANK), frame());
        assert_eq!(g.next_wake(1100), Some(61_000));
        assert!(!g.on_button(true, 30_000));
        assert!(!g.on_button(false, 30_100), "a press while lit acts");
        *clock.lock().unwrap() = 90_100;
        assert!(g.holds(90_100), "dark again a minute after the last press");
    }

    #[test]
    fn dim_keeps_the_marker_and_no_sweep() {
        let start: Timestamp = "2026-06-10T23:00:00Z".parse().unwrap();
        let (mut g, _) = gate(start, Arc::new(Mutex::new(TimeZone::UTC)), true);
        let mut rest = frame();
        rest.leds = vec![Rgb::BLACK; 8];
        rest.leds[2] = Rgb::new(0, 0, 48);
        let count = DisplayText::parse_right("7").unwrap();
        let f = g.filter(rest.clone(), 0, false, count);
        assert_eq!(
            (
                f.leds.clone(),
                f.led_brightness,
                f.display_brightness,
                f.display
            ),
            (rest.leds.clone(), 1, 0, count)
        );
        let f = g.filter(frame(), 10, true, count);
        assert_eq!(f.leds, rest.leds, "the sweep is not shown");
    }

    #[test]
    fn a_time_zone_change_is_followed_at_the_recheck() {
        // 21:00 UTC: not quiet in UTC, 23:00 in Berlin.
        let start: Timestamp = "2026-06-10T21:00:00Z".parse().unwrap();
        let zone = Arc::new(Mutex::new(TimeZone::UTC));
        let (mut g, clock) = gate(start, zone.clone(), false);
        assert!(!g.holds(0));
        *zone.lock().unwrap() = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let wake = g.next_wake(0).unwrap();
        assert!(wake <= RECHECK_MS);
        *clock.lock().unwrap() = wake;
        assert!(g.holds(wake), "quiet after the zone changed");
    }
}
