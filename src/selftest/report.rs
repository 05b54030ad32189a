//! `banlight selftest --report FILE`: what the selftest printed and found,
//! with the machine, the wiring the config names and the panel's health, as
//! one JSON file to attach to a bug report.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use super::Options;
use crate::config::Config;
use crate::panel::pi::{board, pin_name};

/// Writes through to `out` and keeps a copy of the text.
pub struct Transcript<'a> {
    out: &'a mut dyn Write,
    text: Vec<u8>,
}

impl<'a> Transcript<'a> {
    pub fn new(out: &'a mut dyn Write) -> Self {
        Transcript {
            out,
            text: Vec::new(),
        }
    }

    /// The non-empty lines printed so far.
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.text)
            .lines()
            .map(|l| l.trim_end().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }
}

impl Write for Transcript<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        // The copy matters more than the terminal (a closed pipe).
        let _ = self.out.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.out.flush();
        Ok(())
    }
}

fn first_line(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.lines().next().map(|l| l.trim().to_string()))
}

fn os_name() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
}

/// Everything the report holds.
pub struct Facts<'a> {
    pub config: &'a Config,
    /// Where the config came from: a path, or "built-in defaults".
    pub config_source: String,
    pub backend: &'a str,
    pub health: Vec<(&'static str, String)>,
    pub problems: &'a [String],
    pub transcript: Vec<String>,
    pub opts: Options,
    /// `banlight doctor`'s lines, run before the panel was opened.
    pub doctor: Vec<String>,
}

pub fn build(f: &Facts) -> Value {
    let p = &f.config.panel;
    let machine = match board() {
        Ok(model) => json!({ "board": model }),
        Err(why) => json!({ "board": null, "not_a_pi": why }),
    };
    let mut machine = machine;
    machine["os"] = json!(os_name());
    machine["kernel"] = json!(first_line("/proc/sys/kernel/osrelease"));
    machine["arch"] = json!(std::env::consts::ARCH);
    let leds = match &p.led_spi {
        Some(dev) => json!({ "spi": dev.display().to_string() }),
        None => json!({
            "data": pin_name(p.blinkt_data_pin),
            "clock": pin_name(p.blinkt_clock_pin),
        }),
    };
    let health: serde_json::Map<String, Value> = f
        .health
        .iter()
        .map(|(k, v)| ((*k).to_string(), json!(v)))
        .collect();
    json!({
        "banlight_version": env!("CARGO_PKG_VERSION"),
        "time": jiff::Timestamp::now().to_string(),
        "config": f.config_source,
        "machine": machine,
        "backend": f.backend,
        "wiring": {
            "leds": leds,
            "led_count": p.led_count,
            "led_brightness": p.led_brightness,
            "display": {
                "clk": pin_name(p.tm1637_clk_pin),
                "dio": pin_name(p.tm1637_dio_pin),
                "brightness": p.display_brightness,
            },
            "mode_button": pin_name(p.mode_button_pin),
            "power_button": pin_name(p.power_button_pin),
        },
        "buttons_tested": f.opts.button_timeout.is_some(),
        "ok": f.problems.is_empty(),
        "problems": f.problems,
        "health": health,
        "transcript": f.transcript,
        "doctor": f.doctor,
    })
}

/// Writes the report (whole, or not at all: a temporary file renamed).
pub fn write(path: &Path, report: &Value) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
