//! `[quiet]`: the hours the panel stays dark or dim, every day or per weekday.

use toml::Spanned;

use super::error::{ConfigError, Locator};
use super::raw::RawQuiet;
use super::values::TimeOfDay;
use crate::core::quiet::{QuietHours, Window};

pub(super) fn quiet(q: &RawQuiet, loc: &Locator) -> Result<QuietHours, ConfigError> {
    let window = |from: &Option<Spanned<TimeOfDay>>,
                  to: &Option<Spanned<TimeOfDay>>|
     -> Result<Option<Window>, ConfigError> {
        match (from, to) {
            (None, None) => Ok(None),
            (Some(f), Some(t)) if f.get_ref() == t.get_ref() => Err(loc.at(
                t.span().start,
                "quiet hours `from` and `to` are the same time: leave the window out instead"
                    .into(),
            )),
            (Some(f), Some(t)) => Ok(Some(Window {
                from: f.get_ref().0,
                to: t.get_ref().0,
            })),
            (Some(x), None) | (None, Some(x)) => Err(loc.at(
                x.span().start,
                "quiet hours need both `from` and `to` (like from = \"22:30\", to = \"07:00\")"
                    .into(),
            )),
        }
    };
    let every_day = window(&q.from, &q.to)?;
    let mut quiet = QuietHours {
        days: [every_day; 7],
        dim: q.dim,
    };
    for (i, day) in [&q.mon, &q.tue, &q.wed, &q.thu, &q.fri, &q.sat, &q.sun]
        .into_iter()
        .enumerate()
    {
        if let Some(d) = day {
            quiet.days[i] = if d.off {
                None
            } else {
                window(&d.from, &d.to)?.or(every_day)
            };
        }
    }
    Ok(quiet)
}
