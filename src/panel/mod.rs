//! The hardware boundary: where frames go and where button edges come from.
//! Backends: `sim` (terminal), `record` (JSON lines), `memory` (tests), the
//! Raspberry Pi, and `gpio-sim` (the Pi panel on simulated, decoded pins). Nothing here knows about HTTP or SQL.

pub mod gpio_sim;
pub mod memory;
pub mod pi;
pub mod record;
pub mod sim;

use std::time::Instant;

use tokio::sync::mpsc;

use crate::config::{Backend, Config};
use crate::core::buttons::Button;
use crate::core::color::Rgb;
use crate::core::scene::Frame;

/// Milliseconds since the daemon started: the one clock of animations and buttons.
#[derive(Clone, Copy, Debug)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Self {
        Clock(Instant::now())
    }

    /// A clock whose time 0 was `ago` before now (tests that play events
    /// which began in the past, such as a button held for seconds).
    pub fn started_ago(ago: std::time::Duration) -> Self {
        let now = Instant::now();
        Clock(now.checked_sub(ago).unwrap_or(now))
    }

    pub fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }

    pub fn instant_at(&self, ms: u64) -> Instant {
        self.0 + std::time::Duration::from_millis(ms)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PanelError {
    /// No display answered (TM1637 missing ACK); the daemon keeps counting.
    #[error("display not responding: {0}")]
    DisplayMissing(String),
    #[error("LED strip: {0}")]
    Leds(String),
    #[error("cannot write panel output: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Unavailable(String),
}

/// A raw button edge from a backend, stamped with the daemon clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ButtonEdge {
    pub button: Button,
    pub pressed: bool,
    pub t_ms: u64,
}

/// Where frames go. `show` is called only when the frame changed.
pub trait PanelOutput: Send {
    fn show(&mut self, frame: &Frame, t_ms: u64) -> Result<(), PanelError>;

    /// Short health words for status: ("leds", "ok") / ("display", "missing").
    fn health(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    fn name(&self) -> &'static str;

    /// When the backend wants `show` again although the frame has not
    /// changed (the Pi panel retrying a missing display).
    fn wake_at(&self) -> Option<u64> {
        None
    }

    /// A sweep begins: `route` in `color`, standing for `events` events (more
    /// than one when a burst was coalesced). For backends that log it.
    fn sweep_started(&mut self, _route: &str, _color: Rgb, _events: u64) {}

    /// For `banlight selftest`: raw TM1637 segment bytes (bit 7 = point).
    fn show_segments(&mut self, _segments: [u8; 4], _brightness: u8) -> Result<(), PanelError> {
        Err(PanelError::Unavailable(format!(
            "the {} panel draws characters, not single segments",
            self.name()
        )))
    }
}

/// The simulated panel standing in on a Raspberry Pi that cannot be driven:
/// its health carries the reason (`board`), so status and the page show it.
struct NotDriven {
    inner: Box<dyn PanelOutput>,
    why: String,
}

impl PanelOutput for NotDriven {
    fn show(&mut self, frame: &Frame, t_ms: u64) -> Result<(), PanelError> {
        self.inner.show(frame, t_ms)
    }

    fn health(&self) -> Vec<(&'static str, String)> {
        let mut h = self.inner.health();
        h.push(("board", format!("error: {}", self.why)));
        h
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn wake_at(&self) -> Option<u64> {
        self.inner.wake_at()
    }

    fn sweep_started(&mut self, route: &str, color: Rgb, events: u64) {
        self.inner.sweep_started(route, color, events);
    }

    fn show_segments(&mut self, segments: [u8; 4], brightness: u8) -> Result<(), PanelError> {
        self.inner.show_segments(segments, brightness)
    }
}

/// Builds the configured backend; button edges go to `buttons`.
pub fn open(
    config: &Config,
    clock: Clock,
    buttons: mpsc::Sender<ButtonEdge>,
) -> anyhow::Result<Box<dyn PanelOutput>> {
    open_on(config, clock, buttons, pi::device_tree_model())
}

/// `open`, with the device tree's model given (tests play other boards).
pub fn open_on(
    config: &Config,
    clock: Clock,
    buttons: mpsc::Sender<ButtonEdge>,
    model: Option<String>,
) -> anyhow::Result<Box<dyn PanelOutput>> {
    let p = &config.panel;
    match p.backend {
        Backend::Record => {
            let path = p.record_path.as_ref().expect("validated by config");
            Ok(Box::new(record::RecordPanel::create(path)?))
        }
        Backend::Sim => Ok(Box::new(sim::SimPanel::start(clock, buttons, p.display))),
        Backend::GpioSim => Ok(Box::new(gpio_sim::open(config, clock, buttons)?.0)),
        Backend::Auto | Backend::Pi => {
            match pi::open_if_pi(config, clock, buttons.clone(), model.as_deref())? {
                pi::PiProbe::Panel(panel) => Ok(Box::new(panel)),
                pi::PiProbe::NotAPi => {
                    Ok(Box::new(sim::SimPanel::start(clock, buttons, p.display)))
                }
                pi::PiProbe::NotDriven(why) => Ok(Box::new(NotDriven {
                    inner: Box::new(sim::SimPanel::start(clock, buttons, p.display)),
                    why,
                })),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 20, item 6: a Raspberry Pi newer than rppal knows must not
    /// silently become a simulator: the fallback says so in its health
    /// (status, page), and how to choose a backend.
    #[test]
    fn a_pi_that_rppal_cannot_drive_is_an_error_in_health() {
        if pi::board().is_ok() {
            return; // on a real, known Pi this machine is driven
        }
        let (tx, _rx) = mpsc::channel(1);
        let config = Config::defaults();
        let model = Some("Raspberry Pi 7 Model B Rev 1.0".to_string());
        let panel = open_on(&config, Clock::start(), tx.clone(), model).unwrap();
        assert_eq!(panel.name(), "sim");
        let board = panel
            .health()
            .into_iter()
            .find(|(k, _)| *k == "board")
            .map(|(_, v)| v)
            .expect("a board entry in health");
        assert!(board.starts_with("error:"), "{board}");
        assert!(board.contains("Raspberry Pi 7 Model B"), "{board}");
        assert!(board.contains("backend = \"pi\""), "{board}");
        assert!(board.contains("backend = \"sim\""), "{board}");
        // Not a Pi at all: the simulator, as before, with no board error.
        let panel = open_on(&config, Clock::start(), tx, None).unwrap();
        assert!(panel.health().iter().all(|(k, _)| *k != "board"));
    }
}
