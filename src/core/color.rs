//! Colours as the LEDs take them.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rgb {
    pub r: u8,
    pub g: u8,
    pub b: u8,
}

impl Rgb {
    pub const BLACK: Rgb = Rgb { r: 0, g: 0, b: 0 };

    pub const fn new(r: u8, g: u8, b: u8) -> Self {
        Rgb { r, g, b }
    }

    /// This colour at `level`/255 of its intensity, rounded to nearest.
    pub fn scaled(self, level: u8) -> Rgb {
        let s = |c: u8| ((u16::from(c) * u16::from(level) + 127) / 255) as u8;
        Rgb::new(s(self.r), s(self.g), s(self.b))
    }

    pub fn is_black(self) -> bool {
        self == Rgb::BLACK
    }
}

impl FromStr for Rgb {
    type Err = String;

    /// `#rrggbb`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s
            .strip_prefix('#')
            .filter(|h| h.len() == 6 && h.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| format!("colour \"{s}\" is not of the form \"#rrggbb\""))?;
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).expect("checked hex");
        Ok(Rgb::new(byte(0), byte(2), byte(4)))
    }
}

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.r, self.g, self.b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_hex() {
        assert_eq!("#ff8000".parse::<Rgb>(), Ok(Rgb::new(255, 128, 0)));
        assert_eq!("#A0b0C0".parse::<Rgb>(), Ok(Rgb::new(0xa0, 0xb0, 0xc0)));
        assert_eq!(Rgb::new(1, 2, 255).to_string(), "#0102ff");
        for bad in ["ff8000", "#ff80", "#ff80001", "#gg0000", "", "#ff 000"] {
            assert!(bad.parse::<Rgb>().is_err(), "{bad}");
        }
    }

    #[test]
    fn scaling_keeps_hue_and_ends() {
        let c = Rgb::new(255, 128, 0);
        assert_eq!(c.scaled(255), c);
        assert_eq!(c.scaled(0), Rgb::BLACK);
        assert_eq!(c.scaled(64), Rgb::new(64, 32, 0));
    }
}
