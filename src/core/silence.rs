//! The silence alarm on the panel, as pure functions of time: while a
//! source is down, its pixel breathes amber, slowly and dimly, and about once
//! a minute the display shows its label, then `dn`; when a source recovers,
//! one short green sweep. Laid over the scene's frame: attack sweeps and the
//! scene's own display messages win, a dark or shutting-down panel shows
//! nothing of it, and the engine sleeps until `next_wake`.

use super::color::Rgb;
use super::display::DisplayText;
use super::larson::{sweep_frame, SweepShape};
use super::scene::Frame;

/// Amber: unlike every default route colour, and "attention", not "attack".
pub const AMBER: Rgb = Rgb::new(255, 110, 0);
pub const GREEN: Rgb = Rgb::new(0, 255, 0);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SilenceSettings {
    /// One breath: dim -> peak -> dim.
    pub breath_ms: u64,
    /// Frame interval while breathing (slow enough to cost little for hours).
    pub breath_frame_ms: u64,
    /// Brightness (of 255) at the top and bottom of a breath.
    pub peak_level: u8,
    pub floor_level: u8,
    /// The display shows the down sources this often...
    pub every_ms: u64,
    /// ...each one's label, then `dn`, this long each.
    pub label_ms: u64,
    /// The recovery sweep: one pass of this long, at this brightness.
    pub recovery_pass_ms: u64,
    pub recovery_level: u8,
    /// Frame interval of the recovery sweep.
    pub sweep_frame_ms: u64,
}

impl Default for SilenceSettings {
    fn default() -> Self {
        SilenceSettings {
            breath_ms: 4000,
            breath_frame_ms: 100,
            peak_level: 48,
            floor_level: 4,
            every_ms: 60_000,
            label_ms: 1000,
            recovery_pass_ms: 800,
            recovery_level: 128,
            sweep_frame_ms: 16,
        }
    }
}

/// A down source as the panel shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownSource {
    /// The LED that breathes.
    pub pixel: usize,
    /// What the display shows before `dn`.
    pub label: DisplayText,
}

/// What the scene underneath is doing, so the alarm gives way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Underneath {
    /// Not dark, not shutting down.
    pub lit: bool,
    /// An attack sweep is playing or queued.
    pub sweeping: bool,
    /// The display shows a mode label or an event's route and count.
    pub display_busy: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Silence {
    settings: SilenceSettings,
    down: Vec<DownSource>,
    /// Since when some source has been down: the breath and the display
    /// cycle are timed from here.
    since: Option<u64>,
    recovered_at: Option<u64>,
}

impl Silence {
    pub fn new(settings: SilenceSettings) -> Self {
        Silence {
            settings,
            ..Silence::default()
        }
    }

    /// The sources down now; `recovered`: one of them just came back up.
    pub fn set_down(&mut self, down: Vec<DownSource>, recovered: bool, now: u64) {
        if down.is_empty() {
            self.since = None;
        } else {
            self.since.get_or_insert(now);
        }
        self.down = down;
        if recovered {
            self.recovered_at = Some(now);
        }
    }

    pub fn is_alarming(&self) -> bool {
        self.since.is_some()
    }

    fn recovery_shape(&self, led_count: usize) -> SweepShape {
        SweepShape {
            led_count,
            pass_ms: self.settings.recovery_pass_ms,
            passes: 1,
        }
    }

    /// The breath's brightness at `now`: a raised cosine between the floor
    /// and the peak, so it swells and ebbs without a visible step.
    pub fn breath_level(&self, now: u64) -> u8 {
        let s = &self.settings;
        let since = self.since.unwrap_or(now);
        let phase = (now.saturating_sub(since) % s.breath_ms.max(1)) as f64 / s.breath_ms as f64;
        let swell = (1.0 - (std::f64::consts::TAU * phase).cos()) / 2.0;
        let span = f64::from(s.peak_level.saturating_sub(s.floor_level));
        s.floor_level.saturating_add((span * swell).round() as u8)
    }

    /// The display text of the minute's cycle at `now`, if it is due.
    fn display_at(&self, now: u64) -> Option<DisplayText> {
        let s = &self.settings;
        let since = self.since?;
        let into = now.saturating_sub(since) % s.every_ms.max(1);
        let per_source = 2 * s.label_ms;
        let which = usize::try_from(into / per_source.max(1)).ok()?;
        let source = self.down.get(which)?;
        if into % per_source < s.label_ms {
            Some(source.label)
        } else {
            Some(DisplayText::parse_right("dn").expect("glyphs"))
        }
    }

    /// The scene's frame with the alarm laid over it.
    pub fn apply(&self, mut frame: Frame, now: u64, under: Underneath) -> Frame {
        if !under.lit || under.sweeping {
            return frame;
        }
        let n = frame.leds.len();
        let recovering = self.recovered_at.and_then(|at| {
            sweep_frame(
                &self.recovery_shape(n),
                GREEN.scaled(self.settings.recovery_level),
                now.checked_sub(at)?,
            )
        });
        if let Some(leds) = recovering {
            frame.leds = leds;
        } else if self.since.is_some() {
            let amber = AMBER.scaled(self.breath_level(now));
            for d in &self.down {
                if let Some(led) = frame.leds.get_mut(d.pixel) {
                    *led = amber;
                }
            }
        }
        if !under.display_busy {
            if let Some(text) = self.display_at(now) {
                frame.display = text;
            }
        }
        frame
    }

    /// When the alarm's picture next changes; `None` when there is no alarm
    /// (no cost at all while every source is fine).
    pub fn next_wake(&self, now: u64, under: Underneath) -> Option<u64> {
        if !under.lit {
            return None;
        }
        let s = &self.settings;
        let recovery_end = self
            .recovered_at
            .map(|at| at.saturating_add(s.recovery_pass_ms));
        if recovery_end.is_some_and(|end| now < end) {
            return Some(now + s.sweep_frame_ms.max(1));
        }
        let since = self.since?;
        // On the breath's frame grid, so the display's label/`dn` switches
        // (whole multiples of label_ms) land on a frame.
        let step = s.breath_frame_ms.max(1);
        let elapsed = now.saturating_sub(since);
        Some(since + (elapsed / step + 1) * step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene_frame(display: &str) -> Frame {
        Frame {
            leds: vec![Rgb::BLACK; 8],
            led_brightness: 7,
            display: DisplayText::parse_right(display).unwrap(),
            display_on: true,
            display_brightness: 3,
        }
    }

    fn idle() -> Underneath {
        Underneath {
            lit: true,
            sweeping: false,
            display_busy: false,
        }
    }

    fn web() -> DownSource {
        DownSource {
            pixel: 2,
            label: DisplayText::parse("UUEb").unwrap(),
        }
    }

    fn ssh() -> DownSource {
        DownSource {
            pixel: 0,
            label: DisplayText::parse("SSH").unwrap(),
        }
    }

    fn alarm(down: Vec<DownSource>, at: u64) -> Silence {
        let mut s = Silence::new(SilenceSettings::default());
        s.set_down(down, false, at);
        s
    }

    /// Frames every 100 ms over `span` from `from`, as the engine would draw them.
    fn record(s: &Silence, from: u64, span: u64, under: Underneath) -> Vec<(u64, Frame)> {
        (from..from + span)
            .step_by(100)
            .map(|t| (t, s.apply(scene_frame("42"), t, under)))
            .collect()
    }

    #[test]
    fn no_alarm_changes_nothing_and_never_wakes() {
        let s = Silence::new(SilenceSettings::default());
        let f = s.apply(scene_frame("42"), 5000, idle());
        assert_eq!(f, scene_frame("42"));
        assert_eq!(s.next_wake(5000, idle()), None);
        assert!(!s.is_alarming());
    }

    #[test]
    fn a_down_source_breathes_amber_on_its_pixel_slowly_and_dimly() {
        let s = alarm(vec![web()], 1000);
        let frames = record(&s, 1000, 8000, idle());
        let levels: Vec<u8> = frames.iter().map(|(_, f)| f.leds[2].r).collect();
        for (_, f) in &frames {
            let lit: Vec<usize> = (0..8).filter(|i| !f.leds[*i].is_black()).collect();
            assert_eq!(lit, vec![2], "only the source's pixel");
            let c = f.leds[2];
            assert!(c.g < c.r && c.b == 0, "amber, not a route colour: {c:?}");
            assert!(c.r <= 48, "dim: at most the marker level");
        }
        // one breath is 4 s: dimmest at its start, brightest half-way
        assert_eq!(levels[0], AMBER.scaled(4).r);
        assert_eq!(levels[20], AMBER.scaled(48).r);
        assert_eq!(levels[40], levels[0], "periodic");
        // smooth: no jump of more than a few levels between frames
        for w in levels.windows(2) {
            assert!(w[0].abs_diff(w[1]) <= 4, "{levels:?}");
        }
        // and it never goes fully dark (a breath, not a blink)
        assert!(levels.iter().all(|l| *l > 0));
    }

    #[test]
    fn the_display_shows_label_then_dn_once_a_minute() {
        let s = alarm(vec![web(), ssh()], 0);
        let text = |t: u64| s.apply(scene_frame("42"), t, idle()).display.to_string();
        assert_eq!(text(0), "UUEb");
        assert_eq!(text(999), "UUEb");
        assert_eq!(text(1000), "  dn");
        assert_eq!(text(2000), "SSH ", "then the next down source");
        assert_eq!(text(3000), "  dn");
        assert_eq!(text(4000), "  42", "the count the rest of the minute");
        assert_eq!(text(59_999), "  42");
        assert_eq!(text(60_000), "UUEb", "again a minute later");
        // a busy display (an event's route and count, a mode label) wins
        let busy = Underneath {
            display_busy: true,
            ..idle()
        };
        assert_eq!(
            s.apply(scene_frame("42"), 60_000, busy).display.to_string(),
            "  42"
        );
    }

    #[test]
    fn attack_sweeps_play_over_the_alarm() {
        let s = alarm(vec![web()], 0);
        let mut sweep = scene_frame("42");
        sweep.leds[3] = Rgb::new(255, 0, 0);
        let sweeping = Underneath {
            sweeping: true,
            ..idle()
        };
        assert_eq!(s.apply(sweep.clone(), 2000, sweeping), sweep);
    }

    #[test]
    fn dark_or_shutting_down_shows_nothing_and_does_not_wake() {
        let s = alarm(vec![web()], 0);
        let dark = Underneath {
            lit: false,
            ..idle()
        };
        let mut frame = scene_frame("42");
        frame.display_on = false;
        assert_eq!(s.apply(frame.clone(), 0, dark), frame);
        assert_eq!(s.next_wake(0, dark), None);
    }

    #[test]
    fn it_wakes_only_on_the_breath_grid_while_down() {
        let s = alarm(vec![web()], 1000);
        assert_eq!(s.next_wake(1000, idle()), Some(1100));
        assert_eq!(s.next_wake(1150, idle()), Some(1200));
        assert_eq!(
            s.next_wake(1999, idle()),
            Some(2000),
            "label switch lands on a frame"
        );
    }

    #[test]
    fn recovery_plays_one_short_green_sweep_then_stops() {
        let mut s = alarm(vec![web()], 0);
        s.set_down(vec![], true, 10_000);
        assert!(!s.is_alarming());
        let mut green_frames = 0;
        let mut t = 10_000;
        while let Some(next) = s.next_wake(t, idle()) {
            let f = s.apply(scene_frame("42"), t, idle());
            assert!(f.leds.iter().all(|c| c.r == 0 && c.b == 0), "green only");
            if f.leds.iter().any(|c| c.g > 0) {
                green_frames += 1;
            }
            assert!(next > t);
            t = next;
            assert!(t < 12_000, "short");
        }
        assert!(green_frames > 40, "{green_frames}");
        let f = s.apply(scene_frame("42"), t, idle());
        assert!(f.leds.iter().all(|c| c.is_black()), "then dark again");
        assert_eq!(f.display.to_string(), "  42");
        // the sweep starts on LED 0 and reaches the far end half-way
        let f = s.apply(scene_frame("42"), 10_400, idle());
        assert_eq!(f.leds[7], GREEN.scaled(128));
    }

    #[test]
    fn recovery_of_one_source_while_another_stays_down_sweeps_then_breathes_on() {
        let mut s = alarm(vec![web(), ssh()], 0);
        s.set_down(vec![ssh()], true, 5000);
        assert!(s.is_alarming());
        let f = s.apply(scene_frame("42"), 5400, idle());
        assert!(f.leds.iter().all(|c| c.r == 0), "the green sweep first");
        let f = s.apply(scene_frame("42"), 6000, idle());
        let lit: Vec<usize> = (0..8).filter(|i| !f.leds[*i].is_black()).collect();
        assert_eq!(lit, vec![0], "then only ssh's pixel breathes");
        // the cycle keeps its phase from the first source going down
        assert_eq!(
            s.apply(scene_frame("42"), 60_000, idle())
                .display
                .to_string(),
            "SSH "
        );
    }

    #[test]
    fn a_pixel_beyond_the_strip_is_skipped() {
        let s = alarm(
            vec![DownSource {
                pixel: 99,
                label: DisplayText::parse("X1").unwrap_or(DisplayText::BLANK),
            }],
            0,
        );
        let f = s.apply(scene_frame("42"), 2000, idle());
        assert!(f.leds.iter().all(|c| c.is_black()));
    }
}
