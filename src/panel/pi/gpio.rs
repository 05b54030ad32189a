//! The small GPIO trait the Pi panel is built on, and the one function that
//! composes the panel from it. `hw` implements the trait over rppal (the real
//! pins); `panel::gpio_sim` implements it over simulated wires that record
//! every level change, so the same composition — bit-banged SpiBus, open-drain
//! DIO, delays, ACK polling, retries, button interrupts — runs in `cargo test`.

use std::convert::Infallible;
use std::time::Duration;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use tokio::sync::mpsc;

use super::blinkt::{Apa102Strip, BitBangSpi};
use super::tm1637::{OpenDrain, OpenDrainLine, Tm1637Display, BIT_DELAY_US};
use super::{edge_time_ms, pin_name, LedWriter, PiPanel};
use crate::config::Config;
use crate::core::buttons::Button;
use crate::panel::{ButtonEdge, Clock};

/// Half a clock period of the bit-banged LED bus: at most ~1 MHz, which the
/// Blinkt!'s short traces take easily (a frame of 8 LEDs: about 0.4 ms).
pub const LED_HALF_PERIOD_NS: u32 = 500;

/// One edge on a watched input, as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputEdge {
    /// High to low (a button to ground: pressed).
    pub falling: bool,
    /// When the edge happened, on the monotonic clock of the GPIO.
    pub at: Duration,
    /// That clock when the edge is handed over (later, if the thread lagged).
    pub now: Duration,
}

/// Called on the GPIO's interrupt thread for each edge of a watched input.
pub type EdgeHandler = Box<dyn FnMut(InputEdge) + Send>;

/// What the Pi panel needs from a GPIO controller.
pub trait PanelGpio {
    type Output: OutputPin<Error = Infallible> + Send + 'static;
    type Line: OpenDrainLine<Error = Infallible> + Send + 'static;
    type Delay: DelayNs + Send + 'static;

    /// A push-pull output, driven to `high` at once.
    fn output(&mut self, bcm: u64, high: bool, what: &str) -> anyhow::Result<Self::Output>;
    /// A line that is driven low or released to its pull-up (TM1637 DIO).
    fn open_drain(&mut self, bcm: u64, what: &str) -> anyhow::Result<Self::Line>;
    fn delay(&self) -> Self::Delay;
    /// An input with pull-up whose edges (both ways) go to `on_edge` on an
    /// interrupt thread, with no polling. Returns what keeps the watch alive
    /// and whether the pin read low at start.
    fn watch_input(
        &mut self,
        bcm: u64,
        what: &str,
        on_edge: EdgeHandler,
    ) -> anyhow::Result<(Box<dyn Send>, bool)>;
}

fn button_name(button: Button) -> &'static str {
    match button {
        Button::Mode => "MODE",
        Button::Power => "POWER",
    }
}

/// A button input whose edges become `ButtonEdge`s on the daemon clock.
fn watch_button<G: PanelGpio>(
    gpio: &mut G,
    bcm: u64,
    button: Button,
    clock: Clock,
    tx: mpsc::Sender<ButtonEdge>,
) -> anyhow::Result<Box<dyn Send>> {
    let name = button_name(button);
    let on_edge: EdgeHandler = Box::new(move |e: InputEdge| {
        let edge = ButtonEdge {
            button,
            // Active low: the button connects the pin to ground.
            pressed: e.falling,
            t_ms: edge_time_ms(clock.now_ms(), e.now, e.at),
        };
        // This runs on the interrupt thread, outside the runtime.
        let _ = tx.blocking_send(edge);
    });
    let (keep, low_at_start) = gpio.watch_input(bcm, &format!("{name} button"), on_edge)?;
    if low_at_start {
        tracing::warn!(
            "the {name} button on {} reads pressed at start: held down, or its wire touches GND",
            pin_name(bcm)
        );
    }
    Ok(keep)
}

/// Composes the Pi panel on `gpio` as configured: the LEDs bit-banged on two
/// outputs (unless `spi_leds` brings a hardware SPI strip), the TM1637 on CLK
/// and an open-drain DIO, and the two buttons.
pub fn assemble<G: PanelGpio>(
    gpio: &mut G,
    config: &Config,
    clock: Clock,
    buttons: mpsc::Sender<ButtonEdge>,
    spi_leds: Option<Box<dyn LedWriter>>,
) -> anyhow::Result<PiPanel> {
    let p = &config.panel;
    let led_count = p.led_count as usize;
    let leds: Box<dyn LedWriter> = match spi_leds {
        Some(leds) => leds,
        None => {
            let data = gpio.output(p.blinkt_data_pin, false, "Blinkt! data")?;
            let clk = gpio.output(p.blinkt_clock_pin, false, "Blinkt! clock")?;
            tracing::info!(
                "LEDs: {led_count} APA102, data {}, clock {}",
                pin_name(p.blinkt_data_pin),
                pin_name(p.blinkt_clock_pin)
            );
            let bus = match BitBangSpi::new(data, clk, gpio.delay(), LED_HALF_PERIOD_NS) {
                Ok(bus) => bus,
                Err(never) => match never {},
            };
            Box::new(Apa102Strip::new(bus, led_count))
        }
    };
    let clk = gpio.output(p.tm1637_clk_pin, true, "TM1637 CLK")?;
    let dio = OpenDrain::new(
        gpio.open_drain(p.tm1637_dio_pin, "TM1637 DIO")?,
        gpio.delay(),
    );
    let display = Tm1637Display::new(clk, dio, gpio.delay(), BIT_DELAY_US);
    let wiring = format!(
        "CLK {}, DIO {}",
        pin_name(p.tm1637_clk_pin),
        pin_name(p.tm1637_dio_pin)
    );
    tracing::info!("display: TM1637, {wiring}");
    let mode = watch_button(
        gpio,
        p.mode_button_pin,
        Button::Mode,
        clock,
        buttons.clone(),
    )?;
    let power = watch_button(gpio, p.power_button_pin, Button::Power, clock, buttons)?;
    tracing::info!(
        "buttons: MODE {}, POWER {}",
        pin_name(p.mode_button_pin),
        pin_name(p.power_button_pin)
    );
    Ok(
        PiPanel::new(leds, Box::new(display), wiring, vec![mode, power])
            .with_display_kind(p.display),
    )
}
