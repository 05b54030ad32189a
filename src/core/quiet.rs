//! Quiet hours: when the panel stays dark (or dim) in the appliance's local
//! time. Pure: the instant and the time zone are passed in, so tests use
//! explicit zones and DST changes; the engine passes `TimeZone::system()`.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::scene::Frame;
use crate::core::color::Rgb;

/// One night's window, from `from` to `to` local time; it crosses midnight
/// when `to` is not after `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: Time,
    pub to: Time,
}

/// The window starting on each weekday (Monday first); `None`: not quiet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuietHours {
    pub days: [Option<Window>; 7],
    /// Marker pixel and count at the lowest brightness instead of dark.
    pub dim: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietState {
    pub quiet: bool,
    /// When `quiet` next changes (`None`: never, no windows).
    pub until: Option<Timestamp>,
}

/// Parses `"22:30"` (or `"7:00"`, `"22:30:15"`).
pub fn parse_time(s: &str) -> Result<Time, String> {
    let t = s.trim();
    let padded = if t.find(':') == Some(1) {
        format!("0{t}")
    } else {
        t.to_string()
    };
    padded
        .parse::<Time>()
        .map_err(|_| format!("\"{t}\" is not a time of day like \"22:30\""))
}

impl QuietHours {
    pub fn is_empty(&self) -> bool {
        self.days.iter().all(Option::is_none)
    }

    fn window_on(&self, day: Date) -> Option<Window> {
        self.days[day.weekday().to_monday_zero_offset() as usize]
    }

    /// The window that starts on `day`, as instants. A start or end in a
    /// DST gap moves forward by the gap; in a fold it is the first one.
    fn instants(&self, day: Date, tz: &TimeZone) -> Option<(Timestamp, Timestamp)> {
        let w = self.window_on(day)?;
        let end_day = if w.to > w.from {
            day
        } else {
            day.tomorrow().ok()?
        };
        let start = tz
            .to_ambiguous_zoned(day.to_datetime(w.from))
            .compatible()
            .ok()?;
        let end = tz
            .to_ambiguous_zoned(end_day.to_datetime(w.to))
            .compatible()
            .ok()?;
        Some((start.timestamp(), end.timestamp()))
    }

    /// Whether `now` is quiet in `tz`, and until when.
    pub fn state(&self, now: Timestamp, tz: &TimeZone) -> QuietState {
        let today = now.to_zoned(tz.clone()).date();
        let mut next_start: Option<Timestamp> = None;
        for offset in -1i64..=7 {
            let Ok(day) = today.checked_add(offset.days()) else {
                continue;
            };
            let Some((start, end)) = self.instants(day, tz) else {
                continue;
            };
            if start <= now && now < end {
                // Back-to-back windows (one ends as the next starts) are one.
                let mut until = end;
                let mut d = day;
                for _ in 0..7 {
                    let Ok(n) = d.tomorrow() else { break };
                    match self.instants(n, tz) {
                        Some((s, e)) if s <= until && e > until => until = e,
                        _ => break,
                    }
                    d = n;
                }
                return QuietState {
                    quiet: true,
                    until: Some(until),
                };
            }
            if start > now && next_start.is_none_or(|n| start < n) {
                next_start = Some(start);
            }
        }
        QuietState {
            quiet: false,
            until: next_start,
        }
    }
}

/// The frame during dim quiet hours: the resting marker pixels and the count
/// at the lowest brightness, no sweeps (while one plays, the LEDs keep what
/// they showed before it).
pub fn dim_frame(
    frame: &Frame,
    sweeping: bool,
    previous_leds: &[Rgb],
    count: super::display::DisplayText,
) -> Frame {
    let mut out = frame.clone();
    if sweeping {
        out.leds = previous_leds.to_vec();
        out.leds.resize(frame.leds.len(), Rgb::BLACK);
    }
    out.led_brightness = 1;
    out.display_brightness = 0;
    if out.display_on {
        out.display = count;
    }
    out
}

/// The frame during dark quiet hours.
pub fn dark_frame(frame: &Frame) -> Frame {
    let mut out = frame.clone();
    out.leds.iter_mut().for_each(|c| *c = Rgb::BLACK);
    out.display = super::display::DisplayText::BLANK;
    out.display_on = false;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    /// Europe/Berlin's rule as a POSIX TZ string: no tzdb needed.
    fn berlin() -> TimeZone {
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap()
    }

    fn every_day(from: Time, to: Time) -> QuietHours {
        QuietHours {
            days: [Some(Window { from, to }); 7],
            dim: false,
        }
    }

    fn at(tz: &TimeZone, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Timestamp {
        tz.to_ambiguous_zoned(date(y, mo, d).at(h, mi, 0, 0))
            .compatible()
            .unwrap()
            .timestamp()
    }

    fn local(ts: Timestamp, tz: &TimeZone) -> String {
        ts.to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    #[test]
    fn a_window_across_midnight() {
        let tz = berlin();
        let q = every_day(time(22, 30, 0, 0), time(7, 0, 0, 0));
        let s = q.state(at(&tz, 2026, 6, 10, 12, 0), &tz);
        assert!(!s.quiet);
        assert_eq!(local(s.until.unwrap(), &tz), "2026-06-10 22:30 CEST");
        for (h, m) in [(22, 30), (23, 59), (0, 0), (3, 0), (6, 59)] {
            let day = if h >= 12 { 10 } else { 11 };
            let s = q.state(at(&tz, 2026, 6, day, h, m), &tz);
            assert!(s.quiet, "{h}:{m}");
            assert_eq!(local(s.until.unwrap(), &tz), "2026-06-11 07:00 CEST");
        }
        let s = q.state(at(&tz, 2026, 6, 11, 7, 0), &tz);
        assert!(!s.quiet, "the end is not quiet");
        assert_eq!(local(s.until.unwrap(), &tz), "2026-06-11 22:30 CEST");
        let s = q.state(at(&tz, 2026, 6, 10, 22, 29), &tz);
        assert!(!s.quiet);
    }

    #[test]
    fn a_window_within_one_day() {
        let tz = TimeZone::UTC;
        let q = every_day(time(1, 0, 0, 0), time(5, 0, 0, 0));
        assert!(!q.state(at(&tz, 2026, 1, 5, 0, 59), &tz).quiet);
        assert!(q.state(at(&tz, 2026, 1, 5, 1, 0), &tz).quiet);
        let s = q.state(at(&tz, 2026, 1, 5, 5, 0), &tz);
        assert!(!s.quiet);
        assert_eq!(local(s.until.unwrap(), &tz), "2026-01-06 01:00 UTC");
    }

    #[test]
    fn berlin_spring_forward_keeps_local_times() {
        // 2026-03-29 02:00 CET -> 03:00 CEST: the night is one hour shorter.
        let tz = berlin();
        let q = every_day(time(22, 30, 0, 0), time(7, 0, 0, 0));
        let start = at(&tz, 2026, 3, 28, 22, 30);
        let s = q.state(start, &tz);
        assert!(s.quiet);
        assert_eq!(local(s.until.unwrap(), &tz), "2026-03-29 07:00 CEST");
        let mins = (s.until.unwrap().as_second() - start.as_second()) / 60;
        assert_eq!(mins, 7 * 60 + 30, "8h30 - 1h");
        // a start inside the gap moves forward by the gap
        let q = every_day(time(2, 30, 0, 0), time(6, 0, 0, 0));
        let s = q.state(at(&tz, 2026, 3, 29, 1, 0), &tz);
        assert!(!s.quiet);
        assert_eq!(local(s.until.unwrap(), &tz), "2026-03-29 03:30 CEST");
    }

    #[test]
    fn berlin_fall_back_keeps_local_times() {
        // 2026-10-25 03:00 CEST -> 02:00 CET: the night is one hour longer.
        let tz = berlin();
        let q = every_day(time(22, 30, 0, 0), time(7, 0, 0, 0));
        let start = at(&tz, 2026, 10, 24, 22, 30);
        let s = q.state(start, &tz);
        assert!(s.quiet);
        assert_eq!(local(s.until.unwrap(), &tz), "2026-10-25 07:00 CET");
        let mins = (s.until.unwrap().as_second() - start.as_second()) / 60;
        assert_eq!(mins, 9 * 60 + 30, "8h30 + 1h");
        // both 02:30s are quiet in a 02:00-04:00 window
        let q = every_day(time(2, 0, 0, 0), time(4, 0, 0, 0));
        let first = at(&tz, 2026, 10, 25, 2, 30);
        assert!(q.state(first, &tz).quiet);
        assert!(q.state(first + 1.hour(), &tz).quiet);
        assert_eq!(
            local(q.state(first, &tz).until.unwrap(), &tz),
            "2026-10-25 04:00 CET"
        );
    }

    #[test]
    fn per_weekday_windows() {
        let tz = TimeZone::UTC;
        let mut q = every_day(time(22, 0, 0, 0), time(6, 0, 0, 0));
        // Friday and Saturday nights run later and longer; Sunday has none.
        q.days[4] = Some(Window {
            from: time(23, 30, 0, 0),
            to: time(9, 0, 0, 0),
        });
        q.days[5] = Some(Window {
            from: time(23, 30, 0, 0),
            to: time(9, 0, 0, 0),
        });
        q.days[6] = None;
        // 2026-01-09 is a Friday
        assert!(!q.state(at(&tz, 2026, 1, 9, 22, 30), &tz).quiet);
        let s = q.state(at(&tz, 2026, 1, 9, 23, 30), &tz);
        assert_eq!(local(s.until.unwrap(), &tz), "2026-01-10 09:00 UTC");
        assert!(
            q.state(at(&tz, 2026, 1, 11, 8, 0), &tz).quiet,
            "Saturday's night"
        );
        let s = q.state(at(&tz, 2026, 1, 11, 12, 0), &tz);
        assert!(!s.quiet);
        assert_eq!(
            local(s.until.unwrap(), &tz),
            "2026-01-12 22:00 UTC",
            "no window on Sunday: Monday's is next"
        );
        assert!(
            !q.state(at(&tz, 2026, 1, 12, 5, 0), &tz).quiet,
            "Sunday night not quiet"
        );
        assert_eq!(
            QuietHours::default().state(Timestamp::UNIX_EPOCH, &tz),
            QuietState {
                quiet: false,
                until: None
            }
        );
    }

    #[test]
    fn back_to_back_windows_are_one() {
        let tz = TimeZone::UTC;
        let mut q = QuietHours::default();
        q.days[0] = Some(Window {
            from: time(22, 0, 0, 0),
            to: time(7, 0, 0, 0),
        });
        q.days[1] = Some(Window {
            from: time(7, 0, 0, 0),
            to: time(8, 0, 0, 0),
        });
        // 2026-01-05 is a Monday
        let s = q.state(at(&tz, 2026, 1, 5, 23, 0), &tz);
        assert_eq!(local(s.until.unwrap(), &tz), "2026-01-06 08:00 UTC");
    }

    #[test]
    fn a_time_zone_change_moves_the_window() {
        let q = every_day(time(22, 30, 0, 0), time(7, 0, 0, 0));
        let now = at(&TimeZone::UTC, 2026, 6, 10, 21, 0);
        assert!(!q.state(now, &TimeZone::UTC).quiet);
        assert!(q.state(now, &berlin()).quiet, "23:00 in Berlin");
        let fixed = TimeZone::fixed(jiff::tz::offset(-5));
        assert!(!q.state(now, &fixed).quiet, "16:00 in UTC-5");
    }

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("22:30"), Ok(time(22, 30, 0, 0)));
        assert_eq!(parse_time("7:00"), Ok(time(7, 0, 0, 0)));
        assert_eq!(parse_time("00:00"), Ok(time(0, 0, 0, 0)));
        for bad in ["24:00", "7", "22:60", "ten", ""] {
            assert!(parse_time(bad).unwrap_err().contains("22:30"), "{bad}");
        }
    }

    #[test]
    fn dim_and_dark_frames() {
        use crate::core::display::DisplayText;
        let frame = Frame {
            leds: vec![Rgb::new(255, 0, 0); 8],
            led_brightness: 7,
            display: DisplayText::parse("rEd").unwrap(),
            display_on: true,
            display_brightness: 3,
        };
        let dark = dark_frame(&frame);
        assert!(dark.leds.iter().all(|c| *c == Rgb::BLACK) && !dark.display_on);
        let count = DisplayText::parse_right("12").unwrap();
        let mut marker = vec![Rgb::BLACK; 8];
        marker[2] = Rgb::new(0, 0, 48);
        let dim = dim_frame(&frame, true, &marker, count);
        assert_eq!(dim.leds, marker, "no sweep while dim");
        assert_eq!((dim.led_brightness, dim.display_brightness), (1, 0));
        assert_eq!(dim.display, count);
        let dim = dim_frame(&frame, false, &marker, count);
        assert_eq!(dim.leds, frame.leds, "at rest the scene's marker shows");
    }
}
