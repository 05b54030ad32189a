//! What the 4-digit 7-segment display shows: text cells, glyphs and the
//! abbreviated number format. Pure: no I/O.

use std::fmt;

/// Number of digit positions on the TM1637 module.
pub const CELLS: usize = 4;

/// One digit position: a character with a 7-segment glyph, plus its decimal point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub ch: char,
    pub dot: bool,
}

impl Cell {
    pub const BLANK: Cell = Cell {
        ch: ' ',
        dot: false,
    };
}

/// Exactly four cells, each of which is known to have a glyph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DisplayText([Cell; CELLS]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("'{0}' cannot be drawn on a 7-segment display; use digits, space, '-', '_' or one of A b C c d E F G H h I J L n o P r S t U u y")]
    NoGlyph(char),
    #[error(
        "\"{0}\" needs more than {CELLS} digit positions (a '.' shares the position before it)"
    )]
    TooLong(String),
}

/// Segment bits `0bPGFEDCBA` (P = decimal point) for every character we can draw.
/// Only glyphs that read unambiguously are listed; see HARDWARE.md.
fn glyph_exact(ch: char) -> Option<u8> {
    Some(match ch {
        '0' | 'O' => 0x3F,
        '1' => 0x06,
        '2' => 0x5B,
        '3' => 0x4F,
        '4' => 0x66,
        '5' | 'S' => 0x6D,
        '6' => 0x7D,
        '7' => 0x07,
        '8' => 0x7F,
        '9' => 0x6F,
        'A' => 0x77,
        'b' => 0x7C,
        'C' => 0x39,
        'c' => 0x58,
        'd' => 0x5E,
        'E' => 0x79,
        'F' => 0x71,
        'G' => 0x3D,
        'H' => 0x76,
        'h' => 0x74,
        'I' => 0x30,
        'J' => 0x1E,
        'L' => 0x38,
        'n' => 0x54,
        'o' => 0x5C,
        'P' => 0x73,
        'r' => 0x50,
        't' => 0x78,
        'U' => 0x3E,
        'u' => 0x1C,
        'y' => 0x6E,
        '-' => 0x40,
        '_' => 0x08,
        ' ' => 0x00,
        _ => return None,
    })
}

/// The character actually drawn for `ch`: itself if it has a glyph, else the
/// other case if that one has (so a user may write "ssh" and get "SSH").
pub fn canonical(ch: char) -> Option<char> {
    if glyph_exact(ch).is_some() {
        return Some(ch);
    }
    let other = if ch.is_ascii_lowercase() {
        ch.to_ascii_uppercase()
    } else {
        ch.to_ascii_lowercase()
    };
    glyph_exact(other).map(|_| other)
}

/// Segment bits for a cell, decimal point included.
pub fn segments(cell: Cell) -> u8 {
    let base = canonical(cell.ch).and_then(glyph_exact).unwrap_or(0);
    if cell.dot {
        base | 0x80
    } else {
        base
    }
}

impl DisplayText {
    pub const BLANK: DisplayText = DisplayText([Cell::BLANK; CELLS]);

    /// Parses left-aligned text; a '.' lights the decimal point of the cell before it.
    pub fn parse(text: &str) -> Result<Self, TextError> {
        let mut cells: Vec<Cell> = Vec::with_capacity(CELLS);
        for ch in text.chars() {
            if ch == '.' {
                match cells.last_mut() {
                    Some(last) if !last.dot => last.dot = true,
                    _ => cells.push(Cell { ch: ' ', dot: true }),
                }
            } else {
                let ch = canonical(ch).ok_or(TextError::NoGlyph(ch))?;
                cells.push(Cell { ch, dot: false });
            }
            if cells.len() > CELLS {
                return Err(TextError::TooLong(text.to_string()));
            }
        }
        let mut out = [Cell::BLANK; CELLS];
        out[..cells.len()].copy_from_slice(&cells);
        Ok(DisplayText(out))
    }

    /// Like `parse`, but right-aligned (numbers).
    pub fn parse_right(text: &str) -> Result<Self, TextError> {
        let left = Self::parse(text)?;
        let used = CELLS
            - left
                .0
                .iter()
                .rev()
                .take_while(|c| **c == Cell::BLANK)
                .count();
        let mut out = [Cell::BLANK; CELLS];
        out[CELLS - used..].copy_from_slice(&left.0[..used]);
        Ok(DisplayText(out))
    }

    pub fn cells(&self) -> &[Cell; CELLS] {
        &self.0
    }

    /// Segment bytes for the four positions, left to right.
    pub fn segments(&self) -> [u8; CELLS] {
        self.0.map(segments)
    }
}

impl fmt::Display for DisplayText {
    /// Four characters, each followed by '.' when its decimal point is lit.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for cell in &self.0 {
            write!(f, "{}", cell.ch)?;
            if cell.dot {
                f.write_str(".")?;
            }
        }
        Ok(())
    }
}

/// Which TM1637 module is wired: they differ in what bit 7 of a digit lights.
///
/// ```text
///  colon (common 0.36" clock module)     points (0.56" "decimal" module)
///   _   _     _   _                        _   _   _   _
///  |_| |_| o |_| |_|                      |_| |_| |_| |_|
///  |_| |_| o |_| |_|                      |_|.|_|.|_|.|_|.
///          ^ digit 2's bit 7                 ^ each digit's bit 7
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DisplayKind {
    /// Bit 7 of digit 2 lights the centre colon; no decimal points.
    #[default]
    Colon,
    /// Bit 7 of each digit lights its decimal point; no colon.
    Points,
}

impl DisplayKind {
    pub fn name(self) -> &'static str {
        match self {
            DisplayKind::Colon => "colon",
            DisplayKind::Points => "points",
        }
    }
}

impl std::str::FromStr for DisplayKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "colon" => Ok(DisplayKind::Colon),
            "points" => Ok(DisplayKind::Points),
            _ => Err(format!(
                "display \"{s}\" is not a TM1637 module kind: use \"colon\" (the common clock module, colon in the middle) or \"points\" (a decimal point after each digit)"
            )),
        }
    }
}

/// The digit whose bit 7 drives the colon on a colon module (the second).
pub const COLON_DIGIT: usize = 1;

impl DisplayText {
    /// Whether any cell lights its point.
    pub fn has_points(&self) -> bool {
        self.0.iter().any(|c| c.dot)
    }

    /// The text as the wired module shows it: four characters, each followed
    /// by '.' where a points module lights its point (a colon module shows
    /// no points, see `segments_on`).
    pub fn shown_on(&self, kind: DisplayKind) -> String {
        match kind {
            DisplayKind::Points => self.to_string(),
            DisplayKind::Colon => self.0.iter().map(|c| c.ch).collect(),
        }
    }

    /// Segment bytes for the module actually wired. On a colon module a
    /// text's points are dropped: there bit 7 of digit 2 is the colon, and a
    /// point must never light it by accident (nothing shown here needs a
    /// point; `format_count` never makes one).
    pub fn segments_on(&self, kind: DisplayKind) -> [u8; CELLS] {
        let segments = self.segments();
        match kind {
            DisplayKind::Points => segments,
            DisplayKind::Colon => segments.map(|s| s & 0x7F),
        }
    }
}

/// Formats a count for four digits without ever wrapping or overstating, and
/// without a decimal point, so it reads the same on both module kinds.
///
/// - 0..=9999: exact, right-aligned (`  42`, `9999`).
/// - 10^4..10^11: the first two digits, `E`, and the power of ten of the
///   second digit, truncated: `12E3` = 12 x 10^3, i.e. 12,000 to 12,999;
///   `99E9` = 99,000,000,000 to 99,999,999,999.
/// - 10^11 and above: the first digit, `E`, and a two-digit power of ten:
///   `1E11` (100,000,000,000 to 199,999,999,999) up to `1E19` (u64::MAX).
///
/// The exact value is always available in `/api/status`.
pub fn format_count(n: u64) -> DisplayText {
    let digits = n.to_string();
    if digits.len() <= CELLS {
        return DisplayText::parse_right(&digits).expect("digits always have glyphs");
    }
    let d = digits.as_bytes();
    let text = if digits.len() <= 11 {
        format!("{}{}E{}", d[0] as char, d[1] as char, digits.len() - 2)
    } else {
        format!("{}E{}", d[0] as char, digits.len() - 1)
    };
    DisplayText::parse(&text).expect("abbreviated form fits four cells")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(n: u64) -> String {
        format_count(n).to_string()
    }

    #[test]
    fn small_counts_are_exact_and_right_aligned() {
        assert_eq!(show(0), "   0");
        assert_eq!(show(7), "   7");
        assert_eq!(show(42), "  42");
        assert_eq!(show(999), " 999");
        assert_eq!(show(1000), "1000");
        assert_eq!(show(9999), "9999");
    }

    #[test]
    fn large_counts_abbreviate_without_rounding_up_or_a_point() {
        assert_eq!(show(10_000), "10E3");
        assert_eq!(show(12_000), "12E3");
        assert_eq!(show(12_999), "12E3");
        assert_eq!(show(99_999), "99E3");
        assert_eq!(show(100_000), "10E4");
        assert_eq!(show(1_234_567), "12E5");
        assert_eq!(show(9_999_999_999), "99E8");
        assert_eq!(show(99_999_999_999), "99E9");
        assert_eq!(show(100_000_000_000), "1E11");
        assert_eq!(show(10_000_000_000_000_000_000), "1E19");
        assert_eq!(show(u64::MAX), "1E19");
    }

    /// Reads a shown count back as the range of values it stands for.
    fn read_back(text: &DisplayText) -> (u128, u128) {
        let s = text.to_string();
        let s = s.trim();
        match s.split_once('E') {
            None => {
                let v: u128 = s.parse().unwrap();
                (v, v)
            }
            Some((m, e)) => {
                let (m, e): (u128, u32) = (m.parse().unwrap(), e.parse().unwrap());
                let unit = 10u128.pow(e);
                (m * unit, (m + 1) * unit - 1)
            }
        }
    }

    /// Every digit length from 1 to 20, at and around every power of ten,
    /// 2 and 5 times it, all-nines, and a spread of pseudo-random values of
    /// every length, up to u64::MAX: the text fits four cells, has no point,
    /// lights the same segments on both modules, and reads back as a range
    /// that holds the exact value.
    #[test]
    fn every_count_reads_right_on_both_modules() {
        let mut values = vec![0u64, 1, u64::MAX, u64::MAX - 1];
        let mut p: u64 = 1;
        loop {
            for k in [1u64, 2, 5] {
                if let Some(v) = p.checked_mul(k) {
                    values.extend([v - 1, v, v + 1]);
                }
            }
            match p.checked_mul(10) {
                Some(next) => p = next,
                None => break,
            }
        }
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 20) as u32;
            values.push(x % 10u64.saturating_pow(len + 1));
            values.push(x);
        }
        let mut lengths = [false; 21];
        for v in values {
            lengths[v.to_string().len()] = true;
            let text = format_count(v);
            assert!(!text.has_points(), "{v} -> {text} needs a point");
            for kind in [DisplayKind::Colon, DisplayKind::Points] {
                let segs = text.segments_on(kind);
                assert!(segs.iter().all(|s| s & 0x80 == 0), "{v} lights bit 7");
                assert_eq!(segs, text.segments(), "same digits on both modules");
            }
            for cell in text.cells() {
                assert!(canonical(cell.ch).is_some(), "{v}: {cell:?}");
            }
            assert!(text.segments().iter().any(|s| *s != 0), "{v}: blank");
            let (low, high) = read_back(&text);
            assert!(
                low <= u128::from(v) && u128::from(v) <= high,
                "{v} -> {text} reads as {low}..={high}"
            );
            let digits = v.to_string().len();
            let mantissa = text.to_string().trim().split('E').next().unwrap().len();
            let expected = match digits {
                0..=4 => digits,
                5..=11 => 2,
                _ => 1,
            };
            assert_eq!(mantissa, expected, "{v} -> {text}");
        }
        assert!(lengths[1..].iter().all(|l| *l), "every length 1-20 tried");
    }

    #[test]
    fn a_colon_module_never_lights_its_colon_through_a_point() {
        let text = DisplayText::parse("1.2.3.4.").unwrap();
        assert_eq!(
            text.segments_on(DisplayKind::Colon),
            [0x06, 0x5B, 0x4F, 0x66]
        );
        assert_eq!(
            text.segments_on(DisplayKind::Points),
            [0x86, 0xDB, 0xCF, 0xE6]
        );
        assert!(text.has_points());
        assert_eq!(text.shown_on(DisplayKind::Colon), "1234");
        assert_eq!(text.shown_on(DisplayKind::Points), "1.2.3.4.");
        assert!(!DisplayText::parse("rEd").unwrap().has_points());
        for label in ["ALL", "24h", "bYE", "rEd", "bLUE", "PUrP", "Grn"] {
            let t = DisplayText::parse(label).unwrap();
            assert!(!t.has_points(), "{label}");
        }
    }

    #[test]
    fn module_kinds_parse_by_name() {
        assert_eq!("colon".parse(), Ok(DisplayKind::Colon));
        assert_eq!("points".parse(), Ok(DisplayKind::Points));
        assert_eq!(DisplayKind::default(), DisplayKind::Colon);
        let e = "decimal".parse::<DisplayKind>().unwrap_err();
        assert!(e.contains("\"colon\"") && e.contains("\"points\""), "{e}");
        for k in [DisplayKind::Colon, DisplayKind::Points] {
            assert_eq!(k.name().parse(), Ok(k));
        }
    }

    #[test]
    fn digit_segments_match_the_tm1637_table() {
        let text = DisplayText::parse("0123").unwrap();
        assert_eq!(text.segments(), [0x3F, 0x06, 0x5B, 0x4F]);
        let text = DisplayText::parse("4567").unwrap();
        assert_eq!(text.segments(), [0x66, 0x6D, 0x7D, 0x07]);
        let text = DisplayText::parse("8.9-").unwrap();
        assert_eq!(text.segments(), [0xFF, 0x6F, 0x40, 0x00]);
    }

    #[test]
    fn labels_parse_left_aligned_and_case_fold() {
        // 's' has no glyph but 'S' has; 'h' has its own (lower-case) glyph
        assert_eq!(DisplayText::parse("ssh").unwrap().to_string(), "SSh ");
        assert_eq!(DisplayText::parse("SSH").unwrap().to_string(), "SSH ");
        assert_eq!(DisplayText::parse("ALL").unwrap().to_string(), "ALL ");
        assert_eq!(DisplayText::parse("24h").unwrap().to_string(), "24h ");
        assert_eq!(DisplayText::parse("bYE").unwrap().to_string(), "byE ");
        assert_eq!(DisplayText::parse("err").unwrap().to_string(), "Err ");
    }

    #[test]
    fn unreadable_or_long_labels_are_rejected() {
        assert_eq!(DisplayText::parse("wxyz"), Err(TextError::NoGlyph('w')));
        assert!(matches!(
            DisplayText::parse("HELLO"),
            Err(TextError::TooLong(_))
        ));
        assert!(DisplayText::parse("1.2.3.4.").is_ok());
        assert!(DisplayText::parse("1..").is_ok());
        assert!(matches!(
            DisplayText::parse("1....."),
            Err(TextError::TooLong(_))
        ));
    }

    #[test]
    fn right_alignment_keeps_dots() {
        assert_eq!(
            DisplayText::parse_right("1.5").unwrap().to_string(),
            "  1.5"
        );
        assert_eq!(DisplayText::parse_right("").unwrap(), DisplayText::BLANK);
    }
}
