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

/// Formats a count for four digits without ever wrapping or overstating.
///
/// - 0..=9999: exact, right-aligned (`  42`, `9999`).
/// - 10^4..10^10: two significant digits and a power of ten, truncated:
///   `1.2E4` = 12,000 to 12,999 (the point sits on the first digit).
/// - 10^10 and above: one digit and a two-digit exponent: `1E19`.
///
/// The exact value is always available in `/api/status`.
pub fn format_count(n: u64) -> DisplayText {
    let digits = n.to_string();
    if digits.len() <= CELLS {
        return DisplayText::parse_right(&digits).expect("digits always have glyphs");
    }
    let exponent = digits.len() - 1;
    let d: Vec<char> = digits.chars().collect();
    let text = if exponent < 10 {
        format!("{}.{}E{}", d[0], d[1], exponent)
    } else {
        format!("{}E{}", d[0], exponent)
    };
    DisplayText::parse(&text).expect("scientific form fits four cells")
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
    fn large_counts_abbreviate_without_rounding_up() {
        assert_eq!(show(10_000), "1.0E4");
        assert_eq!(show(12_999), "1.2E4");
        assert_eq!(show(99_999), "9.9E4");
        assert_eq!(show(100_000), "1.0E5");
        assert_eq!(show(1_234_567), "1.2E6");
        assert_eq!(show(9_999_999_999), "9.9E9");
        assert_eq!(show(10_000_000_000), "1E10");
        assert_eq!(show(u64::MAX), "1E19");
    }

    #[test]
    fn every_count_fits_four_cells_and_has_glyphs() {
        let mut n: u64 = 1;
        while n < u64::MAX / 3 {
            for v in [n - 1, n, n + 1, n * 3 - 1] {
                let text = format_count(v);
                assert!(text.segments().iter().any(|s| *s != 0) || v == 0);
                for cell in text.cells() {
                    assert!(canonical(cell.ch).is_some(), "{v}: {cell:?}");
                }
            }
            n = n.saturating_mul(7);
        }
    }

    #[test]
    fn abbreviated_form_reads_back_as_a_lower_bound() {
        for v in [
            10_000u64,
            45_678,
            999_999,
            31_415_926,
            2_718_281_828,
            u64::MAX / 2,
        ] {
            let s = show(v);
            let (mantissa, exp) = s.split_once('E').unwrap();
            let m: f64 = mantissa.parse().unwrap();
            let e: i32 = exp.parse().unwrap();
            let lower = m * 10f64.powi(e);
            assert!(lower <= v as f64 * (1.0 + 1e-12), "{v} -> {s}");
            assert!(v as f64 / lower < 1.11, "{v} -> {s} is too far below");
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
