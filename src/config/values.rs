//! The value types a config file holds (durations, colours, labels, times of
//! day, networks) and the serde helpers that read them from strings.

use serde::{de, Deserialize, Deserializer};

use crate::core::color::Rgb;
use crate::core::display::{DisplayKind, DisplayText};

/// A duration such as `500ms`, `10m`, `10 minutes` or `1h30m`
/// (parsed by jiff, see `core::time::parse_duration_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Millis(pub u64);

impl std::str::FromStr for Millis {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        crate::core::time::parse_duration_ms(s).map(Millis)
    }
}

/// One `ignore` entry: a network (`203.0.113.0/24`) or an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct IgnoreNet(pub(super) ipnet::IpNet);

impl std::str::FromStr for IgnoreNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        crate::core::ignore::parse_net(s).map(IgnoreNet)
    }
}

impl<'de> Deserialize<'de> for IgnoreNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_de(d)
    }
}

/// A time of day such as `"22:30"`, for quiet hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TimeOfDay(pub(super) jiff::civil::Time);

impl std::str::FromStr for TimeOfDay {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        crate::core::quiet::parse_time(s).map(TimeOfDay)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_de(d)
    }
}

pub(super) fn from_str_de<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    let s = String::deserialize(d)?;
    s.parse().map_err(de::Error::custom)
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_de(d)
    }
}

/// `#rrggbb` in the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Color(pub Rgb);

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_de::<D, Rgb>(d).map(Color)
    }
}

impl<'de> Deserialize<'de> for DisplayKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_de(d)
    }
}

/// Up to four 7-segment characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(pub DisplayText);

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DisplayText::parse(&s)
            .map(Label)
            .map_err(|e| de::Error::custom(format!("label \"{s}\": {e}")))
    }
}

pub(super) fn bounded<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if (MIN..=MAX).contains(&v) {
        Ok(v)
    } else {
        Err(de::Error::custom(format!(
            "{v} is out of range {MIN}..={MAX}"
        )))
    }
}
