//! Wall-clock formatting and duration strings, done by jiff.

use jiff::{Span, SpanRelativeTo, Timestamp};

/// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-21T23:48:00.123Z`.
pub fn rfc3339_utc(ms_since_epoch: u64) -> String {
    match i64::try_from(ms_since_epoch)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
    {
        // Fixed precision: every line of a listing has the same width.
        Some(ts) => format!("{ts:.3}"),
        // Past 9999-12-31: jiff's range ends there, so does any sane clock.
        None => format!("@{ms_since_epoch}ms"),
    }
}

/// The units a duration string may use, for error messages.
pub const DURATION_UNITS: &str =
    "ms/msec/milliseconds, s/sec/seconds, m/min/minutes, h/hr/hours, d/days, w/weeks";

/// Parses a duration in jiff's "friendly" format: `500ms`, `10m`,
/// `10 minutes`, `1h30m`, `1.5s`, `2d`. A day is 24 hours here (a config
/// window, not a calendar date). Returns whole milliseconds; a bare number,
/// a negative value or an unknown unit is an error naming the accepted units.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "duration \"{t}\" needs a unit ({DURATION_UNITS}), like \"10m\" or \"10 minutes\""
        ));
    }
    let span: Span = t.parse().map_err(|_| {
        format!(
            "duration \"{t}\" is not a number with a unit; accepted units: {DURATION_UNITS} \
             (like \"500ms\", \"10 minutes\" or \"1h30m\")"
        )
    })?;
    if span.is_negative() {
        return Err(format!("duration \"{t}\" must not be negative"));
    }
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err(format!(
            "duration \"{t}\": months and years have no fixed length; use days or weeks (like \"30d\" or \"52w\")"
        ));
    }
    let d = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|_| format!("duration \"{t}\" is too long"))?;
    u64::try_from(d.as_millis()).map_err(|_| format!("duration \"{t}\" is too long"))
}

/// A duration as an owner writes it in the config: the largest unit that
/// divides it exactly (`5m`, `90s`, `2h`, `1d`, `250ms`), so a status line
/// reads like the setting it came from.
pub fn duration_text(ms: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ];
    match UNITS.iter().find(|(unit, _)| ms > 0 && ms % unit == 0) {
        Some((unit, name)) => format!("{}{name}", ms / unit),
        None => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_they_are_written_and_parse_back() {
        for (ms, text) in [
            (300_000, "5m"),
            (90_000, "90s"),
            (7_200_000, "2h"),
            (86_400_000, "1d"),
            (250, "250ms"),
            (0, "0ms"),
            (1_500, "1500ms"),
        ] {
            assert_eq!(duration_text(ms), text);
            assert_eq!(parse_duration_ms(text), Ok(ms), "{text}");
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_utc(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_utc(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_utc(u64::MAX), format!("@{}ms", u64::MAX));
    }

    #[test]
    fn durations_in_friendly_forms() {
        for (s, ms) in [
            ("500ms", 500),
            ("1200ms", 1200),
            ("30s", 30_000),
            ("10m", 600_000),
            ("10min", 600_000),
            ("10 minutes", 600_000),
            ("1 minute", 60_000),
            ("1h30m", 5_400_000),
            ("1h 30m", 5_400_000),
            ("2 hours", 7_200_000),
            ("1.5s", 1500),
            ("1d", 86_400_000),
            ("2 days", 172_800_000),
            ("1w", 604_800_000),
            ("2 weeks", 1_209_600_000),
            ("10 mins", 600_000),
            ("2 hrs", 7_200_000),
            ("0s", 0),
            (" 5s ", 5000),
        ] {
            assert_eq!(parse_duration_ms(s), Ok(ms), "{s}");
        }
    }

    #[test]
    fn calendar_units_are_refused_by_name() {
        for bad in ["1y", "1 month", "2mo", "1 year 2 days"] {
            let e = parse_duration_ms(bad).unwrap_err();
            assert!(e.contains("months and years"), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_durations_name_the_units() {
        for bad in [
            "",
            "10",
            "s",
            "-1s",
            "10 parsecs",
            "99999999999999999999d",
            "1y",
        ] {
            let e = parse_duration_ms(bad).unwrap_err();
            assert!(e.contains("duration"), "{bad}: {e}");
            if bad != "-1s" && bad != "99999999999999999999d" && bad != "1y" {
                assert!(e.contains("minutes"), "{bad}: {e}");
            }
        }
    }
}
