//! `[panel]`: which backend drives the LEDs, display and buttons, their
//! timing, and the Raspberry Pi wiring.

use std::path::PathBuf;

use serde::Deserialize;

use super::error::{ConfigError, Locator};
use super::values::{bounded, Millis};
use crate::core::display::DisplayKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The Raspberry Pi hardware when this is a Pi, else `sim`.
    Auto,
    /// Terminal rendering.
    Sim,
    /// JSON lines in `record_path`.
    Record,
    /// Raspberry Pi hardware; fails elsewhere.
    Pi,
    /// The Pi panel on simulated pins, decoded back (`panel::gpio_sim`).
    #[serde(rename = "gpio-sim")]
    GpioSim,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PanelConfig {
    pub backend: Backend,
    pub record_path: Option<PathBuf>,
    #[serde(deserialize_with = "bounded::<_, 1, 144>")]
    pub led_count: u64,
    /// APA102 global brightness cap, 0..=31 (Pimoroni's default is 7).
    #[serde(deserialize_with = "bounded::<_, 0, 31>")]
    pub led_brightness: u64,
    /// TM1637 brightness, 0..=7.
    #[serde(deserialize_with = "bounded::<_, 0, 7>")]
    pub display_brightness: u64,
    /// Which TM1637 module: `colon` (the common clock module) or `points`.
    pub display: DisplayKind,
    /// One pass of the eye, first LED to last and back.
    pub sweep_time: Millis,
    #[serde(deserialize_with = "bounded::<_, 1, 20>")]
    pub sweep_passes: u64,
    #[serde(deserialize_with = "bounded::<_, 10, 200>")]
    pub fps: u64,
    #[serde(deserialize_with = "bounded::<_, 0, 255>")]
    pub marker_level: u64,
    pub marker_hold: Millis,
    pub marker_fade: Millis,
    pub event_display: Millis,
    pub label_time: Millis,
    #[serde(deserialize_with = "bounded::<_, 0, 100>")]
    pub max_queued_sweeps: u64,
    pub debounce: Millis,
    pub long_press: Millis,
    /// Raspberry Pi wiring, BCM GPIO numbers (see `core::wiring::check_pins`).
    #[serde(deserialize_with = "bounded::<_, 0, 27>")]
    pub blinkt_data_pin: u64,
    #[serde(deserialize_with = "bounded::<_, 0, 27>")]
    pub blinkt_clock_pin: u64,
    /// Hardware SPI device for the LEDs (`/dev/spidev0.0`) instead of the two pins.
    pub led_spi: Option<PathBuf>,
    #[serde(deserialize_with = "bounded::<_, 0, 27>")]
    pub tm1637_clk_pin: u64,
    #[serde(deserialize_with = "bounded::<_, 0, 27>")]
    pub tm1637_dio_pin: u64,
    #[serde(deserialize_with = "bounded::<_, 0, 27>")]
    pub mode_button_pin: u64,
    #[serde(deserialize_with = "bounded::<_, 0, 27>")]
    pub power_button_pin: u64,
}

impl PanelConfig {
    /// What the file's `[panel]` must also satisfy beyond each key's range:
    /// a recording needs a file; one job per pin.
    pub(super) fn check(&self, loc: &Locator) -> Result<(), ConfigError> {
        if self.backend == Backend::Record && self.record_path.is_none() {
            return Err(loc.about(
                "panel",
                "backend",
                "panel.record_path",
                "backend = \"record\" needs record_path = \"FILE\"".into(),
            ));
        }
        self.check_pins()
            .map_err(|(key, message)| loc.key("panel", &key, message))
    }

    /// One job per pin (`core::wiring`); Err: (the key at fault, why).
    fn check_pins(&self) -> Result<(), (String, String)> {
        crate::core::wiring::check_pins(
            &[
                ("tm1637_clk_pin", self.tm1637_clk_pin),
                ("tm1637_dio_pin", self.tm1637_dio_pin),
                ("mode_button_pin", self.mode_button_pin),
                ("power_button_pin", self.power_button_pin),
            ],
            &[
                ("blinkt_data_pin", self.blinkt_data_pin),
                ("blinkt_clock_pin", self.blinkt_clock_pin),
            ],
            self.led_spi.as_deref(),
        )
    }
}

impl Default for PanelConfig {
    fn default() -> Self {
        PanelConfig {
            backend: Backend::Auto,
            record_path: None,
            led_count: 8,
            led_brightness: 7,
            display_brightness: 3,
            display: DisplayKind::Colon,
            sweep_time: Millis(1200),
            sweep_passes: 2,
            fps: 60,
            marker_level: 48,
            marker_hold: Millis(10 * 60_000),
            marker_fade: Millis(3000),
            event_display: Millis(5000),
            label_time: Millis(1000),
            max_queued_sweeps: 3,
            debounce: Millis(30),
            long_press: Millis(3000),
            blinkt_data_pin: 23,
            blinkt_clock_pin: 24,
            led_spi: None,
            tm1637_clk_pin: 5,
            tm1637_dio_pin: 4,
            mode_button_pin: 17,
            power_button_pin: 3,
        }
    }
}
