//! `[[route]]`: the colours a hook can light, each a URL path, a label and
//! a marker LED; the prototype's four when the file names none.

use super::error::{ConfigError, Locator};
use super::raw::RouteConfig;
use crate::core::color::Rgb;
use crate::core::display::{DisplayKind, DisplayText};

/// One route as the daemon uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub color: Rgb,
    pub label: DisplayText,
    pub marker: usize,
}

/// Each `[[route]]` checked against the panel it is shown on (its LED
/// count and display kind), or the prototype's four.
pub(super) fn routes(
    raw: &[RouteConfig],
    led_count: usize,
    display: DisplayKind,
    loc: &Locator,
) -> Result<Vec<Route>, ConfigError> {
    if raw.is_empty() {
        return Ok(default_routes());
    }
    let mut routes: Vec<Route> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let name = r.name.get_ref();
        if !valid_route_name(name) {
            return Err(loc.at(
                r.name.span().start,
                format!("route name \"{name}\" must be 1-32 of a-z, 0-9, '-', '_' (and not \"api\" or \"metrics\"): it becomes the URL path /{name}"),
            ));
        }
        if routes.iter().any(|x| x.name == *name) {
            return Err(loc.at(
                r.name.span().start,
                format!("route \"{name}\" is defined twice"),
            ));
        }
        let label = match &r.label {
            Some(l) if l.get_ref().0.has_points() && display == DisplayKind::Colon => {
                return Err(loc.at(
                    l.span().start,
                    format!(
                        "route \"{name}\": label \"{}\" has a '.', and a display = \"colon\" module has no decimal points (its colon would light instead): drop the '.' or set display = \"points\" under [panel]",
                        l.get_ref().0
                    ),
                ));
            }
            Some(l) => l.get_ref().0,
            None => DisplayText::parse(name).map_err(|e| {
                loc.at(
                    r.name.span().start,
                    format!("route \"{name}\" needs a `label` the display can show ({e})"),
                )
            })?,
        };
        let marker = match &r.marker {
            Some(m) => {
                let v = *m.get_ref();
                if v as usize >= led_count {
                    return Err(loc.at(
                        m.span().start,
                        format!(
                            "marker LED {v} does not exist: LEDs are numbered 0..{}",
                            led_count - 1
                        ),
                    ));
                }
                v as usize
            }
            None => (i * 2) % led_count,
        };
        routes.push(Route {
            name: name.clone(),
            color: r.color.0,
            label,
            marker,
        });
    }
    Ok(routes)
}

/// The prototype's four routes and their marker pixels.
fn default_routes() -> Vec<Route> {
    [
        ("red", Rgb::new(255, 0, 0), "rEd", 0),
        ("blue", Rgb::new(0, 0, 255), "bLUE", 2),
        ("purple", Rgb::new(128, 0, 255), "PUrP", 4),
        ("green", Rgb::new(0, 255, 0), "Grn", 6),
    ]
    .into_iter()
    .map(|(name, color, label, marker)| Route {
        name: name.into(),
        color,
        label: DisplayText::parse(label).expect("built-in labels have glyphs"),
        marker,
    })
    .collect()
}

/// Route names become URL paths: keep them plain.
fn valid_route_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name != "api"
        && name != "metrics"
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}
