//! The small GPIO trait the Pi panel is built on, and the one function that
//! composes the panel from it. `hw` implements the trait over rppal (the real
//! pins); `panel::gpio_sim` implements it over simulated wires that record
//! every level change, so the same composition — bit-banged SpiBus, open-drain
//! DIO, delays, ACK polling, retries, button interrupts — runs in `cargo test`.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use tokio::sync::mpsc;

use super::blinkt::{Apa102Strip, BitBangSpi};
use super::tm1637::{Clk, OpenDrain, OpenDrainLine, Tm1637Display, BIT_DELAY_US};
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

/// Called on the GPIO's interrupt thread for each edge of a watched input,
/// with the input's index in the list given to `watch_inputs`.
pub type EdgeHandler = Box<dyn FnMut(usize, InputEdge) + Send>;

/// An input to watch, and what to call it in messages.
#[derive(Clone, Copy, Debug)]
pub struct Watched<'a> {
    pub bcm: u64,
    pub what: &'a str,
}

/// Why an input could not be watched.
#[derive(Debug)]
pub struct WatchError {
    /// Which of the inputs.
    pub index: usize,
    /// The kernel refused the line: a driver or another process holds it.
    pub busy: bool,
    pub cause: String,
}

/// Whether the interrupt path of the watched inputs is alive: the thread
/// that takes their edges from the kernel says why when it stops. Clones
/// share it; the panel reads it for the button health.
#[derive(Clone, Debug, Default)]
pub struct InterruptPath(Arc<Mutex<Option<String>>>);

impl InterruptPath {
    /// The path is broken (the first reason is kept).
    pub fn broke(&self, why: String) {
        let mut dead = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if dead.is_none() {
            *dead = Some(why);
        }
    }

    /// Why the path is broken; `None` while it works.
    pub fn broken(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Held by an interrupt thread: if the thread ends without saying why (a
/// panic), the path still reads as broken.
pub struct Alive(pub InterruptPath);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.broke("the interrupt thread ended".into());
    }
}

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
    /// Inputs with pull-up whose edges (both ways) go to `on_edge` on one
    /// interrupt thread, with no polling of levels. Every line is requested
    /// from the kernel before this returns, so a refused line is an error
    /// here, not a silently dead button; the thread reports to `path` when
    /// it stops. Returns what keeps the watch alive and which inputs read
    /// low at start.
    fn watch_inputs(
        &mut self,
        inputs: &[Watched<'_>],
        on_edge: EdgeHandler,
        path: InterruptPath,
    ) -> Result<(Box<dyn Send>, Vec<bool>), WatchError>;
    /// Who holds `bcm`, as the kernel's line info names the consumer
    /// ("shutdown" for `dtoverlay=gpio-shutdown`), when that can be read.
    fn line_holder(&self, bcm: u64) -> Option<String>;
}

fn button_name(button: Button) -> &'static str {
    match button {
        Button::Mode => "MODE",
        Button::Power => "POWER",
    }
}

fn button_key(button: Button) -> &'static str {
    match button {
        Button::Mode => "mode_button_pin",
        Button::Power => "power_button_pin",
    }
}

/// How to free a line the kernel says is busy, from who holds it.
pub fn busy_hint(holder: Option<&str>, key: &str) -> String {
    let elsewhere = format!("or wire the button to a free pin and set [panel] {key}");
    match holder {
        Some("shutdown") => format!(
            "it is held by \"shutdown\", the kernel's gpio-shutdown driver: remove the \
             `dtoverlay=gpio-shutdown` line from /boot/firmware/config.txt (/boot/config.txt \
             before Bookworm) and reboot, {elsewhere}"
        ),
        Some(h) if h.eq_ignore_ascii_case("rppal") => format!(
            "it is held by \"{h}\": another program on rppal has it, most likely the banlight \
             service (sudo systemctl stop banlight), {elsewhere}"
        ),
        Some(h) => format!(
            "it is held by \"{h}\": a driver from a dtoverlay line in /boot/firmware/config.txt \
             (gpio-key, w1-gpio, ...) or another program; remove that overlay and reboot or stop \
             the program, {elsewhere}"
        ),
        None => format!(
            "a kernel driver or another program holds it (`gpioinfo` from apt's gpiod, or \
             `sudo cat /sys/kernel/debug/gpio`, names it; usually a dtoverlay=gpio-shutdown or \
             gpio-key line in /boot/firmware/config.txt): remove that line and reboot, {elsewhere}"
        ),
    }
}

/// The two buttons on one interrupt thread; their edges become
/// `ButtonEdge`s on the daemon clock.
fn watch_buttons<G: PanelGpio>(
    gpio: &mut G,
    pins: [(u64, Button); 2],
    clock: Clock,
    tx: mpsc::Sender<ButtonEdge>,
    path: InterruptPath,
) -> anyhow::Result<Box<dyn Send>> {
    let names = pins.map(|(_, b)| format!("{} button", button_name(b)));
    let inputs = [0, 1].map(|i| Watched {
        bcm: pins[i].0,
        what: &names[i],
    });
    let on_edge: EdgeHandler = Box::new(move |i: usize, e: InputEdge| {
        let edge = ButtonEdge {
            button: pins[i].1,
            // Active low: the button connects the pin to ground.
            pressed: e.falling,
            t_ms: edge_time_ms(clock.now_ms(), e.now, e.at),
        };
        // This runs on the interrupt thread, outside the runtime.
        let _ = tx.blocking_send(edge);
    });
    let (keep, low_at_start) = gpio.watch_inputs(&inputs, on_edge, path).map_err(|e| {
        let (bcm, button) = pins[e.index];
        let name = button_name(button);
        if e.busy {
            let holder = gpio.line_holder(bcm);
            anyhow::anyhow!(
                "cannot watch the {name} button on {}: the line is busy ({}); {}",
                pin_name(bcm),
                e.cause,
                busy_hint(holder.as_deref(), button_key(button))
            )
        } else {
            anyhow::anyhow!(
                "cannot watch the {name} button on {}: {}",
                pin_name(bcm),
                e.cause
            )
        }
    })?;
    for (i, low) in low_at_start.into_iter().enumerate() {
        if low {
            tracing::warn!(
                "the {} button on {} reads pressed at start: held down, or its wire touches GND",
                button_name(pins[i].1),
                pin_name(pins[i].0)
            );
        }
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
    let display = Tm1637Display::new(Clk(clk), dio, gpio.delay(), BIT_DELAY_US);
    let wiring = format!(
        "CLK {}, DIO {}",
        pin_name(p.tm1637_clk_pin),
        pin_name(p.tm1637_dio_pin)
    );
    tracing::info!("display: TM1637, {wiring}");
    let path = InterruptPath::default();
    let keep = watch_buttons(
        gpio,
        [
            (p.mode_button_pin, Button::Mode),
            (p.power_button_pin, Button::Power),
        ],
        clock,
        buttons,
        path.clone(),
    )?;
    tracing::info!(
        "buttons: MODE {}, POWER {}",
        pin_name(p.mode_button_pin),
        pin_name(p.power_button_pin)
    );
    Ok(PiPanel::new(leds, Box::new(display), wiring, vec![keep])
        .with_display_kind(p.display)
        .with_dio(p.tm1637_dio_pin)
        .with_buttons(path))
}
