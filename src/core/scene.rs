//! What the panel shows at a given moment: the sweep queue, the resting
//! marker, the display mode and its overlays, dark mode and shutdown. Pure:
//! the engine feeds it events and the time, asks for the frame, and sleeps
//! until `next_wake` (which is `None` when nothing changes by itself).

use std::collections::VecDeque;

use super::color::Rgb;
use super::display::{format_count, DisplayText};
use super::larson::{sweep_frame, SweepShape};

/// How long `Err` stays on the display after a refused power-off.
pub const REFUSED_SHOWN_MS: u64 = 10_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SceneSettings {
    pub sweep: SweepShape,
    /// Frame interval while something animates (16 ms = 62.5 frames/s).
    pub frame_ms: u64,
    /// Sweeps that queue one by one behind the playing one; beyond that, each
    /// route with pending events gets one more sweep, however many came in.
    pub max_queued_sweeps: usize,
    /// Brightness (of 255) of the resting marker pixel.
    pub marker_level: u8,
    pub marker_hold_ms: u64,
    pub marker_fade_ms: u64,
    /// How long a mode or route label shows before its number.
    pub label_ms: u64,
    /// How long the display shows the route that just fired.
    pub event_display_ms: u64,
    pub shutdown_fade_ms: u64,
    /// APA102 global brightness, 0..=31.
    pub led_brightness: u8,
    /// TM1637 brightness, 0..=7.
    pub display_brightness: u8,
}

impl Default for SceneSettings {
    fn default() -> Self {
        SceneSettings {
            sweep: SweepShape {
                led_count: 8,
                pass_ms: 1200,
                passes: 2,
            },
            frame_ms: 16,
            max_queued_sweeps: 3,
            marker_level: 48,
            marker_hold_ms: 10 * 60_000,
            marker_fade_ms: 3000,
            label_ms: 1000,
            event_display_ms: 5000,
            shutdown_fade_ms: 1500,
            led_brightness: 7,
            display_brightness: 3,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteLook {
    pub name: String,
    pub color: Rgb,
    pub label: DisplayText,
    /// LED that stays dimly lit after this route's sweep.
    pub marker: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisplayMode {
    Total,
    Route(usize),
    Last24h,
}

/// The numbers the display can show, read from the counters at render time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Numbers {
    pub total: u64,
    pub per_route: Vec<u64>,
    pub last_24h: u64,
}

/// Everything the panel shows at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub leds: Vec<Rgb>,
    pub led_brightness: u8,
    pub display: DisplayText,
    pub display_on: bool,
    pub display_brightness: u8,
}

/// A mode label the user asked for (mode button, `banlight mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ModeLabel {
    text: DisplayText,
    since: u64,
    until: u64,
}

/// One sweep: the route, when it started playing, and how many events it
/// stands for (1, or a coalesced burst's size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sweep {
    pub route: usize,
    pub start: u64,
    pub events: u64,
}

#[derive(Debug)]
pub struct Scene {
    settings: SceneSettings,
    routes: Vec<RouteLook>,
    playing: Option<Sweep>,
    queue: VecDeque<usize>,
    /// Per route: events owed one coalesced sweep after the queue drains.
    owed: Vec<u64>,
    marker: Option<(usize, u64)>,
    mode: DisplayMode,
    mode_label: Option<ModeLabel>,
    /// The sweep the display tells about: the one playing, or the last one
    /// (its count stays up until `event_display` after its start).
    told: Option<Sweep>,
    /// Sweeps begun since the engine last asked (`take_started`).
    started: Vec<Sweep>,
    dark: bool,
    shutdown_since: Option<u64>,
    /// A power-off was refused: the display says `Err` until then.
    refused_until: Option<u64>,
}

const SHUTDOWN_GLOW: Rgb = Rgb::new(255, 96, 0);

impl Scene {
    pub fn new(settings: SceneSettings, routes: Vec<RouteLook>) -> Self {
        let owed = vec![0; routes.len()];
        Scene {
            settings,
            routes,
            playing: None,
            queue: VecDeque::new(),
            owed,
            marker: None,
            mode: DisplayMode::Total,
            mode_label: None,
            told: None,
            started: Vec::new(),
            dark: false,
            shutdown_since: None,
            refused_until: None,
        }
    }

    /// Applies new settings and routes (config reload): pending animations
    /// are dropped; dark, a shutdown in progress, and the mode (a route by
    /// its name) are kept.
    pub fn reconfigure(&mut self, settings: SceneSettings, routes: Vec<RouteLook>) {
        let mode = match self.mode {
            DisplayMode::Route(i) => {
                let name = &self.routes[i].name;
                routes
                    .iter()
                    .position(|r| r.name == *name)
                    .map_or(DisplayMode::Total, DisplayMode::Route)
            }
            m => m,
        };
        let (dark, shutdown_since) = (self.dark, self.shutdown_since);
        *self = Scene::new(settings, routes);
        self.mode = mode;
        self.dark = dark;
        self.shutdown_since = shutdown_since;
    }

    pub fn settings(&self) -> &SceneSettings {
        &self.settings
    }

    pub fn routes(&self) -> &[RouteLook] {
        &self.routes
    }

    pub fn mode(&self) -> DisplayMode {
        self.mode
    }

    pub fn is_dark(&self) -> bool {
        self.dark
    }

    /// The display shows a mode label or an event's route and count (not
    /// the mode's number) at `now`: the silence alarm's text waits for it.
    pub fn display_busy(&self, now: u64) -> bool {
        let label = self.mode_label.is_some_and(|l| now < l.until);
        let sweep = self.told.is_some_and(|t| {
            self.playing == Some(t) || now < t.start + self.settings.event_display_ms
        });
        label || sweep
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown_since.is_some()
    }

    /// `total`, `24h`, or the route's name.
    pub fn mode_name(&self) -> String {
        match self.mode {
            DisplayMode::Total => "total".into(),
            DisplayMode::Last24h => "24h".into(),
            DisplayMode::Route(i) => self.routes[i].name.clone(),
        }
    }

    /// Plays a route's sweep (a counted event, or a test from the CLI).
    /// The display follows the sweeps: it tells about a route only while
    /// (and just after) that route's sweep plays, never ahead of the LEDs.
    pub fn on_event(&mut self, route: usize, now: u64) {
        if route >= self.routes.len() || self.shutdown_since.is_some() {
            return;
        }
        self.advance(now);
        if self.dark {
            // Counted, but a dark panel stays dark and builds no backlog;
            // the marker still moves, so lighting up shows the latest route.
            self.marker = Some((route, now));
            return;
        }
        if self.playing.is_none() {
            self.start_sweep(route, now, 1);
        } else if self.queue.len() < self.settings.max_queued_sweeps {
            self.queue.push_back(route);
        } else {
            self.owed[route] += 1;
        }
    }

    fn start_sweep(&mut self, route: usize, start: u64, events: u64) {
        let sweep = Sweep {
            route,
            start,
            events,
        };
        self.playing = Some(sweep);
        self.told = Some(sweep);
        self.started.push(sweep);
    }

    /// The sweeps begun since the last call, in order (for a backend that
    /// logs them; none is missed even if the engine wakes late).
    pub fn take_started(&mut self) -> Vec<Sweep> {
        std::mem::take(&mut self.started)
    }

    /// The sweep playing now (after `advance`).
    pub fn playing(&self) -> Option<Sweep> {
        self.playing
    }

    pub fn next_mode(&mut self, now: u64) {
        let next = match self.mode {
            DisplayMode::Total if !self.routes.is_empty() => DisplayMode::Route(0),
            DisplayMode::Total => DisplayMode::Last24h,
            DisplayMode::Route(i) if i + 1 < self.routes.len() => DisplayMode::Route(i + 1),
            DisplayMode::Route(_) => DisplayMode::Last24h,
            DisplayMode::Last24h => DisplayMode::Total,
        };
        self.set_mode(next, now);
    }

    pub fn set_mode(&mut self, mode: DisplayMode, now: u64) {
        if let DisplayMode::Route(i) = mode {
            if i >= self.routes.len() {
                return;
            }
        }
        self.mode = mode;
        self.mode_label = Some(ModeLabel {
            text: self.mode_label(),
            since: now,
            until: now + self.settings.label_ms,
        });
    }

    fn mode_label(&self) -> DisplayText {
        match self.mode {
            DisplayMode::Total => DisplayText::parse("ALL").expect("glyphs"),
            DisplayMode::Last24h => DisplayText::parse("24h").expect("glyphs"),
            DisplayMode::Route(i) => self.routes[i].label,
        }
    }

    pub fn set_dark(&mut self, dark: bool) {
        self.dark = dark;
        if dark {
            self.playing = None;
            self.told = None;
            self.queue.clear();
            self.owed.fill(0);
        }
    }

    pub fn toggle_dark(&mut self) {
        self.set_dark(!self.dark);
    }

    pub fn set_brightness(&mut self, leds: u8, display: u8) {
        self.settings.led_brightness = leds.min(31);
        self.settings.display_brightness = display.min(7);
    }

    pub fn begin_shutdown(&mut self, now: u64) {
        self.shutdown_since.get_or_insert(now);
    }

    /// Cancels a shutdown whose command failed, so the panel is usable again.
    pub fn cancel_shutdown(&mut self) {
        self.shutdown_since = None;
    }

    /// The power-off was refused (polkit, an inhibitor, no polkitd): the
    /// panel is usable again and the display says `Err` for
    /// `REFUSED_SHOWN_MS`, so the owner who held the button knows.
    pub fn shutdown_refused(&mut self, now: u64) {
        self.shutdown_since = None;
        self.refused_until = Some(now + REFUSED_SHOWN_MS);
    }

    /// Moves the sweep queue on to `now`: a finished sweep hands over to the
    /// next one at the moment it ended, so queued sweeps play back to back.
    pub fn advance(&mut self, now: u64) {
        let duration = self.settings.sweep.duration_ms();
        while let Some(sweep) = self.playing {
            let end = sweep.start.saturating_add(duration);
            if now < end {
                break;
            }
            self.marker = Some((sweep.route, end));
            self.playing = None;
            if let Some((route, events)) = self.next_queued() {
                self.start_sweep(route, end, events);
            }
        }
    }

    /// The next sweep and the events it stands for.
    fn next_queued(&mut self) -> Option<(usize, u64)> {
        if let Some(r) = self.queue.pop_front() {
            return Some((r, 1));
        }
        let r = self.owed.iter().position(|o| *o > 0)?;
        Some((r, std::mem::take(&mut self.owed[r])))
    }

    /// Sweeps playing or waiting.
    pub fn sweeps_pending(&self) -> usize {
        usize::from(self.playing.is_some())
            + self.queue.len()
            + self.owed.iter().filter(|o| **o > 0).count()
    }

    /// The frame at `now`; call `advance(now)` first.
    pub fn render(&self, now: u64, numbers: &Numbers) -> Frame {
        let n = self.settings.sweep.led_count;
        let mut frame = Frame {
            leds: vec![Rgb::BLACK; n],
            led_brightness: self.settings.led_brightness,
            display: DisplayText::BLANK,
            display_on: !self.dark,
            display_brightness: self.settings.display_brightness,
        };
        if let Some(since) = self.shutdown_since {
            frame.display = DisplayText::parse("bYE").expect("glyphs");
            frame.display_on = true;
            let fade = self.settings.shutdown_fade_ms.max(1);
            let left = fade.saturating_sub(now.saturating_sub(since));
            let level = (u64::from(self.settings.marker_level.max(64)) * left / fade) as u8;
            frame.leds.fill(SHUTDOWN_GLOW.scaled(level));
            return frame;
        }
        if self.refused_until.is_some_and(|until| now < until) {
            frame.display = DisplayText::parse("Err").expect("glyphs");
            frame.display_on = true;
            return frame;
        }
        if self.dark {
            return frame;
        }
        frame.display = self.display_text(now, numbers);
        if let Some(Sweep { route, start, .. }) = self.playing {
            let look = &self.routes[route];
            if let Some(leds) = sweep_frame(&self.settings.sweep, look.color, now - start.min(now))
            {
                frame.leds = leds;
            }
        } else if let Some(level) = self.marker_level(now) {
            let (route, _) = self.marker.expect("level implies marker");
            let look = &self.routes[route];
            if let Some(led) = frame.leds.get_mut(look.marker) {
                *led = look.color.scaled(level);
            }
        }
        frame
    }

    fn marker_level(&self, now: u64) -> Option<u8> {
        let (_, since) = self.marker?;
        let s = &self.settings;
        let age = now.saturating_sub(since);
        if age < s.marker_hold_ms {
            return Some(s.marker_level);
        }
        let into_fade = age - s.marker_hold_ms;
        if into_fade >= s.marker_fade_ms {
            return None;
        }
        let left = s.marker_fade_ms - into_fade;
        Some((u64::from(s.marker_level) * left / s.marker_fade_ms) as u8).filter(|l| *l > 0)
    }

    /// What the display says at `now`: a mode label the user just asked
    /// for; else the sweep playing (its route's label, then its count, or
    /// for a coalesced burst the number of events it stands for), and for
    /// `event_display` after the last sweep's start that route's count;
    /// else the mode's count.
    fn display_text(&self, now: u64, numbers: &Numbers) -> DisplayText {
        let count = |mode: DisplayMode| {
            format_count(match mode {
                DisplayMode::Total => numbers.total,
                DisplayMode::Last24h => numbers.last_24h,
                DisplayMode::Route(i) => numbers.per_route.get(i).copied().unwrap_or(0),
            })
        };
        let label = self
            .mode_label
            .filter(|l| now < l.until && self.told.is_none_or(|t| l.since >= t.start));
        if let Some(l) = label {
            return l.text;
        }
        if let Some(sweep) = self.told {
            let playing = self.playing == Some(sweep);
            if playing || now < sweep.start + self.settings.event_display_ms {
                return if now < sweep.start + self.settings.label_ms {
                    self.routes[sweep.route].label
                } else if playing && sweep.events > 1 {
                    format_count(sweep.events)
                } else {
                    count(DisplayMode::Route(sweep.route))
                };
            }
        }
        count(self.mode)
    }

    /// When the frame next changes by itself; `None` when idle (sleep until an event).
    pub fn next_wake(&self, now: u64) -> Option<u64> {
        let s = &self.settings;
        let next_frame = now + s.frame_ms.max(1);
        let mut wake: Vec<u64> = Vec::new();
        if let Some(since) = self.shutdown_since {
            if now < since + s.shutdown_fade_ms {
                wake.push(next_frame);
            }
            return wake.into_iter().min();
        }
        if let Some(until) = self.refused_until.filter(|&u| now < u) {
            return Some(until);
        }
        if self.dark {
            return None;
        }
        if self.playing.is_some() {
            wake.push(next_frame);
        } else if let Some((_, since)) = self.marker {
            let fade_start = since + s.marker_hold_ms;
            let fade_end = fade_start + s.marker_fade_ms;
            if now < fade_start {
                wake.push(fade_start);
            } else if now < fade_end {
                wake.push(next_frame.min(fade_end));
            }
        }
        if let Some(l) = self.mode_label {
            if now < l.until {
                wake.push(l.until);
            }
        }
        if let Some(t) = self.told {
            let label_end = t.start + s.label_ms;
            let end = t.start + s.event_display_ms;
            if now < label_end {
                wake.push(label_end);
            } else if now < end {
                wake.push(end);
            }
        }
        wake.into_iter().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED: Rgb = Rgb::new(255, 0, 0);
    const BLUE: Rgb = Rgb::new(0, 0, 255);

    fn settings() -> SceneSettings {
        SceneSettings {
            sweep: SweepShape {
                led_count: 8,
                pass_ms: 1000,
                passes: 1,
            },
            frame_ms: 16,
            max_queued_sweeps: 2,
            marker_level: 40,
            marker_hold_ms: 10_000,
            marker_fade_ms: 1000,
            label_ms: 1000,
            event_display_ms: 3000,
            shutdown_fade_ms: 1500,
            led_brightness: 7,
            display_brightness: 3,
        }
    }

    fn look(name: &str, color: Rgb, label: &str, marker: usize) -> RouteLook {
        RouteLook {
            name: name.into(),
            color,
            label: DisplayText::parse(label).unwrap(),
            marker,
        }
    }

    fn scene() -> Scene {
        Scene::new(
            settings(),
            vec![look("red", RED, "SSH", 0), look("blue", BLUE, "UUP", 2)],
        )
    }

    fn numbers() -> Numbers {
        Numbers {
            total: 42,
            per_route: vec![40, 2],
            last_24h: 7,
        }
    }

    fn frame_at(s: &mut Scene, now: u64) -> Frame {
        s.advance(now);
        s.render(now, &numbers())
    }

    #[test]
    fn idle_panel_is_dark_shows_total_and_never_wakes() {
        let mut s = scene();
        let f = frame_at(&mut s, 0);
        assert!(f.leds.iter().all(|c| c.is_black()));
        assert_eq!(f.display.to_string(), "  42");
        assert!(f.display_on);
        assert_eq!(s.next_wake(0), None);
    }

    #[test]
    fn event_plays_a_sweep_in_the_route_colour_at_frame_rate() {
        let mut s = scene();
        s.on_event(1, 100);
        assert_eq!(s.next_wake(100), Some(116));
        let f = frame_at(&mut s, 100);
        assert_eq!(f.leds[0], BLUE, "eye starts on LED 0");
        let f = frame_at(&mut s, 600);
        assert_eq!(f.leds[7], BLUE, "eye reaches the far end mid-pass");
        for t in (100..1100).step_by(16) {
            let f = frame_at(&mut s, t);
            assert!(f.leds.iter().all(|c| c.r == 0 && c.g == 0));
            assert!(f.leds.iter().any(|c| c.b > 0));
        }
    }

    #[test]
    fn after_the_sweep_a_dim_marker_rests_then_fades_out() {
        let mut s = scene();
        s.on_event(1, 0);
        let f = frame_at(&mut s, 1000);
        let lit: Vec<usize> = (0..8).filter(|i| !f.leds[*i].is_black()).collect();
        assert_eq!(lit, vec![2], "blue's marker pixel");
        assert_eq!(f.leds[2], BLUE.scaled(40));
        // the display flash ends at 3000; the marker holds until 11000 without frames
        assert_eq!(s.next_wake(3000), Some(11_000));
        let f = frame_at(&mut s, 11_500);
        assert_eq!(f.leds[2], BLUE.scaled(20));
        assert_eq!(s.next_wake(11_500), Some(11_516));
        let f = frame_at(&mut s, 12_000);
        assert!(f.leds.iter().all(|c| c.is_black()));
        assert_eq!(s.next_wake(12_000), None);
    }

    #[test]
    fn display_flashes_the_route_label_then_its_count_then_the_mode() {
        let mut s = scene();
        s.on_event(0, 0);
        assert_eq!(frame_at(&mut s, 10).display.to_string(), "SSH ");
        assert_eq!(s.next_wake(1200), Some(1216), "sweep still animating");
        assert_eq!(frame_at(&mut s, 1500).display.to_string(), "  40");
        assert_eq!(frame_at(&mut s, 3000).display.to_string(), "  42");
    }

    #[test]
    fn burst_is_coalesced_into_a_bounded_queue() {
        let mut s = scene();
        for i in 0..10_000u64 {
            s.on_event((i % 2) as usize, i / 100);
        }
        // 1 playing + 2 queued + one owed per route
        assert_eq!(s.sweeps_pending(), 1 + 2 + 2);
        // all of it plays out back to back and then stops
        let mut t = 100;
        let mut routes_seen = Vec::new();
        let mut last_playing = None;
        while s.sweeps_pending() > 0 {
            s.advance(t);
            if s.playing != last_playing {
                if let Some(Sweep { route: r, .. }) = s.playing {
                    routes_seen.push(r);
                }
                last_playing = s.playing;
            }
            t += 16;
            assert!(t < 20_000);
        }
        assert_eq!(routes_seen.len(), 5);
        assert!(routes_seen.contains(&0) && routes_seen.contains(&1));
        assert!(t <= 100 + 5 * 1000 + 32, "queued sweeps play back to back");
    }

    #[test]
    fn queued_sweeps_start_exactly_when_the_previous_ends() {
        let mut s = scene();
        s.on_event(0, 0);
        s.on_event(1, 10);
        s.advance(2500);
        assert_eq!(s.playing, None);
        assert_eq!(s.marker, Some((1, 2000)));
    }

    #[test]
    fn modes_cycle_total_routes_24h_with_labels() {
        let mut s = scene();
        let mut seen = Vec::new();
        for i in 0..4u64 {
            let t = i * 10_000;
            s.next_mode(t);
            let label = frame_at(&mut s, t).display.to_string();
            let value = frame_at(&mut s, t + 1000).display.to_string();
            seen.push((s.mode_name(), label, value));
        }
        assert_eq!(
            seen,
            vec![
                ("red".into(), "SSH ".into(), "  40".into()),
                ("blue".into(), "UUP ".into(), "   2".into()),
                ("24h".into(), "24h ".into(), "   7".into()),
                ("total".into(), "ALL ".into(), "  42".into()),
            ]
        );
    }

    #[test]
    fn dark_blanks_everything_but_keeps_state() {
        let mut s = scene();
        s.on_event(0, 0);
        s.toggle_dark();
        let f = frame_at(&mut s, 10);
        assert!(!f.display_on);
        assert!(f.leds.iter().all(|c| c.is_black()));
        assert_eq!(s.next_wake(10), None, "no wake-ups while dark");
        s.on_event(1, 20);
        assert_eq!(s.sweeps_pending(), 0, "no backlog builds while dark");
        s.toggle_dark();
        let f = frame_at(&mut s, 5000);
        assert!(f.display_on);
        assert_eq!(f.display.to_string(), "  42");
    }

    #[test]
    fn a_hook_while_dark_moves_the_marker_shown_on_lighting_up() {
        let mut s = scene();
        s.on_event(1, 0); // blue's sweep ends at 1000: blue's marker
        let f = frame_at(&mut s, 1500);
        assert!(!f.leds[2].is_black() && f.leds[0].is_black());
        s.toggle_dark();
        s.on_event(0, 2000); // red, while dark
        assert!(frame_at(&mut s, 2500).leds.iter().all(|c| c.is_black()));
        s.toggle_dark();
        let f = frame_at(&mut s, 3000);
        assert_eq!(f.leds[0], RED.scaled(40), "red's marker, the latest route");
        assert!(f.leds[2].is_black(), "not blue's, the route before");
    }

    #[test]
    fn shutdown_says_bye_and_fades_leds_to_black() {
        let mut s = scene();
        s.toggle_dark();
        s.begin_shutdown(1000);
        let f = frame_at(&mut s, 1000);
        assert_eq!(f.display.to_string(), "byE ");
        assert!(f.display_on, "shown even when the panel was dark");
        let start = f.leds[0];
        assert!(!start.is_black());
        let mid = frame_at(&mut s, 1750).leds[0];
        assert!(mid.r < start.r && mid.r > 0);
        let end = frame_at(&mut s, 2500);
        assert!(end.leds.iter().all(|c| c.is_black()));
        assert_eq!(s.next_wake(2500), None);
        s.on_event(0, 2600);
        assert_eq!(s.sweeps_pending(), 0);
    }

    #[test]
    fn display_is_busy_while_a_label_or_an_event_shows() {
        let mut s = scene();
        assert!(!s.display_busy(0));
        s.on_event(0, 100);
        // the sweep plays, and its count stays until event_display after its start
        assert!(s.display_busy(100) && s.display_busy(5099));
        s.advance(5100);
        assert!(!s.display_busy(5100));
        s.next_mode(6000);
        assert!(s.display_busy(6999) && !s.display_busy(7000));
    }

    #[test]
    fn brightness_is_capped_and_carried_in_the_frame() {
        let mut s = scene();
        s.set_brightness(200, 200);
        let f = frame_at(&mut s, 0);
        assert_eq!((f.led_brightness, f.display_brightness), (31, 7));
    }

    #[test]
    fn unknown_route_indices_are_ignored() {
        let mut s = scene();
        s.on_event(9, 0);
        assert_eq!(s.sweeps_pending(), 0);
        s.set_mode(DisplayMode::Route(9), 0);
        assert_eq!(s.mode(), DisplayMode::Total);
    }

    #[test]
    fn reconfigure_follows_the_mode_route_by_name_and_keeps_a_shutdown() {
        let mut s = scene();
        s.set_mode(DisplayMode::Route(1), 0);
        s.begin_shutdown(5);
        s.reconfigure(
            settings(),
            vec![look("blue", BLUE, "bLUE", 2), look("red", RED, "SSH", 0)],
        );
        assert_eq!(s.mode(), DisplayMode::Route(0), "blue moved to index 0");
        assert!(s.is_shutting_down());
    }

    #[test]
    fn a_refused_shutdown_shows_err_then_the_panel_again() {
        let mut s = scene();
        s.begin_shutdown(1000);
        s.shutdown_refused(2000);
        assert!(!s.is_shutting_down());
        let f = frame_at(&mut s, 2000);
        assert_eq!(f.display.to_string().trim(), "Err");
        assert!(f.display_on);
        assert_eq!(s.next_wake(2000), Some(2000 + REFUSED_SHOWN_MS));
        let f = frame_at(&mut s, 2000 + REFUSED_SHOWN_MS);
        assert_ne!(f.display.to_string().trim(), "Err");
    }

    #[test]
    fn reconfigure_keeps_valid_mode_and_drops_animation() {
        let mut s = scene();
        s.set_mode(DisplayMode::Route(1), 0);
        s.on_event(0, 0);
        s.reconfigure(settings(), vec![look("red", RED, "SSH", 0)]);
        assert_eq!(s.mode(), DisplayMode::Total);
        assert_eq!(s.sweeps_pending(), 0);
    }

    fn follow_settings() -> SceneSettings {
        SceneSettings {
            label_ms: 300,
            event_display_ms: 3000,
            ..settings()
        }
    }

    #[test]
    fn the_display_follows_the_sweeps_not_the_arrivals() {
        let mut s = Scene::new(follow_settings(), scene().routes);
        s.on_event(0, 0);
        s.on_event(1, 10);
        let shown = |s: &mut Scene, t: u64| frame_at(s, t).display.to_string();
        // red plays 0..1000: red's label, then red's count, although blue
        // has already arrived
        assert_eq!(shown(&mut s, 10), "SSH ");
        assert_eq!(shown(&mut s, 299), "SSH ");
        assert_eq!(shown(&mut s, 300), "  40");
        assert_eq!(shown(&mut s, 999), "  40");
        // blue takes its turn with its own label
        assert_eq!(shown(&mut s, 1000), "UUP ");
        assert_eq!(shown(&mut s, 1300), "   2");
        // after the last sweep its count stays until event_display after its start
        assert_eq!(shown(&mut s, 2500), "   2");
        assert_eq!(s.next_wake(2500), Some(4000));
        assert_eq!(shown(&mut s, 4000), "  42");
        assert_eq!(
            s.next_wake(4000),
            Some(12_000),
            "only blue's marker fade is left"
        );
    }

    #[test]
    fn a_coalesced_sweep_shows_how_many_events_it_stands_for() {
        let mut s = Scene::new(follow_settings(), scene().routes);
        s.on_event(0, 0); // plays
        s.on_event(1, 1); // queued
        s.on_event(1, 2); // queued (max 2)
        for t in 0..57 {
            s.on_event(0, 3 + t);
        }
        for t in 0..3 {
            s.on_event(1, 100 + t);
        }
        let mut sweeps = Vec::new();
        let mut t = 0;
        while s.sweeps_pending() > 0 {
            s.advance(t);
            if let Some(p) = s.playing() {
                if sweeps.last() != Some(&p) {
                    sweeps.push(p);
                }
            }
            t += 16;
        }
        let told: Vec<(usize, u64)> = sweeps.iter().map(|p| (p.route, p.events)).collect();
        assert_eq!(told, [(0, 1), (1, 1), (1, 1), (0, 57), (1, 3)]);
        assert_eq!(s.take_started(), sweeps, "every start is reported once");
        assert!(s.take_started().is_empty());
        let mut s = Scene::new(follow_settings(), scene().routes);
        for t in 0..4 {
            s.on_event(0, t);
        }
        for t in 4..61 {
            s.on_event(1, t);
        }
        // red, red, red queued; blue's 57 owed: the fifth sweep (4000..5000)
        let shown = |s: &mut Scene, t: u64| frame_at(s, t).display.to_string();
        assert_eq!(shown(&mut s, 3500), "  40", "red's own sweep: its count");
        assert_eq!(shown(&mut s, 4000), "UUP ");
        assert_eq!(shown(&mut s, 4300), "  57", "the burst's size");
        assert_eq!(shown(&mut s, 5100), "   2", "then blue's count");
    }

    /// Events of three routes at pseudo-random times, bursts included: at
    /// every frame while a sweep plays, the display shows the sweeping
    /// route's label, its count, or its burst size; never another route.
    #[test]
    fn every_frame_during_a_sweep_belongs_to_the_sweeping_route() {
        const GREEN: Rgb = Rgb::new(0, 255, 0);
        let routes = vec![
            look("red", RED, "rEd", 0),
            look("blue", BLUE, "bLUE", 2),
            look("green", GREEN, "Grn", 4),
        ];
        let numbers = Numbers {
            total: 600,
            per_route: vec![100, 200, 300],
            last_24h: 5,
        };
        let mut s = Scene::new(follow_settings(), routes.clone());
        let mut x: u64 = 12345;
        let mut events = Vec::new();
        let mut t = 0;
        for _ in 0..400 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            t += (x >> 33) % 700;
            events.push((t, ((x >> 20) % 3) as usize));
        }
        let mut next = events.into_iter().peekable();
        let mut frames_in_sweeps = 0;
        let mut t = 0;
        while t < 400 * 700 + 60_000 {
            while let Some((at, r)) = next.peek().copied() {
                if at > t {
                    break;
                }
                s.on_event(r, at);
                next.next();
            }
            s.advance(t);
            let f = s.render(t, &numbers);
            if let Some(p) = s.playing() {
                frames_in_sweeps += 1;
                let look = &routes[p.route];
                let lit: Vec<Rgb> = f.leds.iter().copied().filter(|c| !c.is_black()).collect();
                assert!(!lit.is_empty(), "{t}: a sweep lights LEDs");
                for c in lit {
                    let other = routes.iter().any(|r| r.name != look.name && c == r.color);
                    assert!(!other, "{t}: LEDs of another route");
                }
                let text = f.display.to_string();
                let allowed = [
                    look.label.to_string(),
                    format_count(numbers.per_route[p.route]).to_string(),
                    format_count(p.events).to_string(),
                ];
                assert!(
                    allowed.contains(&text),
                    "{t}: {} sweeps but the display says {text:?}",
                    look.name
                );
                if t < p.start + 300 {
                    assert_eq!(text, look.label.to_string(), "{t}: label first");
                }
            }
            t += 16;
        }
        assert!(frames_in_sweeps > 5_000, "{frames_in_sweeps}");
        assert_eq!(s.sweeps_pending(), 0);
    }

    #[test]
    fn a_mode_press_during_a_sweep_shows_its_label_then_the_sweep_again() {
        let mut s = Scene::new(follow_settings(), scene().routes);
        s.on_event(1, 0);
        s.set_mode(DisplayMode::Last24h, 400);
        assert_eq!(frame_at(&mut s, 500).display.to_string(), "24h ");
        assert_eq!(frame_at(&mut s, 700).display.to_string(), "   2");
        // a sweep that starts after a press takes the display at once
        s.set_mode(DisplayMode::Total, 900);
        s.on_event(0, 950);
        assert_eq!(frame_at(&mut s, 950).display.to_string(), "ALL ");
        assert_eq!(frame_at(&mut s, 1000).display.to_string(), "SSH ");
        s.set_mode(DisplayMode::Last24h, 1100);
        assert_eq!(frame_at(&mut s, 1250).display.to_string(), "24h ");
        assert_eq!(frame_at(&mut s, 1400).display.to_string(), "  40");
    }
}
