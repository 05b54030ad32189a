//! Appends one JSON object per panel change to a file: for tests and debugging.

use std::fs::{File, OpenOptions};
use std::io::{LineWriter, Write};
use std::path::Path;

use super::{PanelError, PanelOutput};
use crate::core::scene::Frame;

pub struct RecordPanel {
    out: LineWriter<File>,
}

impl RecordPanel {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot open record_path {}: {e}", path.display()),
                )
            })?;
        Ok(RecordPanel {
            out: LineWriter::new(file),
        })
    }
}

/// `{"t_ms":123,"leds":[[r,g,b],…],"brightness":7,"display":"  42","segments":[0,0,102,91],"display_on":true,"display_brightness":3}`
/// (`segments`: the TM1637 bytes of the four digits, bit 7 = point/colon).
pub fn frame_json(frame: &Frame, t_ms: u64) -> String {
    let leds: Vec<[u8; 3]> = frame.leds.iter().map(|c| [c.r, c.g, c.b]).collect();
    serde_json::json!({
        "t_ms": t_ms,
        "leds": leds,
        "brightness": frame.led_brightness,
        "display": frame.display.to_string(),
        "segments": frame.display.segments(),
        "display_on": frame.display_on,
        "display_brightness": frame.display_brightness,
    })
    .to_string()
}

impl PanelOutput for RecordPanel {
    fn show(&mut self, frame: &Frame, t_ms: u64) -> Result<(), PanelError> {
        writeln!(self.out, "{}", frame_json(frame, t_ms))?;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "record"
    }
}
