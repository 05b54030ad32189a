//! The one place that names rppal: detects the board, opens the pins (or
//! the SPI bus) and hands them to the generic drivers, and turns button
//! interrupts into `ButtonEdge`s (edge-triggered, no polling loop).

use std::convert::Infallible;
use std::time::Duration;

use anyhow::anyhow;
use rppal::gpio::{Bias, Event, Gpio, InputPin, IoPin, Mode, Trigger};
use rppal::hal::Delay;
use rppal::spi::{Bus, SlaveSelect, Spi};
use rppal::system::DeviceInfo;
use tokio::sync::mpsc;

use super::blinkt::{Apa102Strip, BitBangSpi};
use super::tm1637::{OpenDrain, OpenDrainLine, Tm1637Display, BIT_DELAY_US};
use super::{edge_time_ms, pin_name, spidev_bus, LedWriter, PiPanel};
use crate::config::Config;
use crate::core::buttons::Button;
use crate::panel::{ButtonEdge, Clock};

/// Half a clock period of the bit-banged LED bus: at most ~1 MHz, which the
/// Blinkt!'s short traces take easily (a frame of 8 LEDs: about 0.4 ms).
const LED_HALF_PERIOD_NS: u32 = 500;
/// Clock of the hardware SPI bus for an APA102 strip.
const LED_SPI_HZ: u32 = 4_000_000;

/// The board's model when rppal recognises a Raspberry Pi, else why not.
pub fn detect() -> Result<String, String> {
    DeviceInfo::new()
        .map(|d| d.model().to_string())
        .map_err(|e| format!("rppal: {e}"))
}

/// DIO of the TM1637 on an rppal `IoPin`: output-low, or input with pull-up.
struct RppalLine(IoPin);

impl OpenDrainLine for RppalLine {
    type Error = Infallible;

    fn drive_low(&mut self) -> Result<(), Infallible> {
        // Set the output latch first, so switching to output never glitches high.
        self.0.set_low();
        self.0.set_mode(Mode::Output);
        Ok(())
    }

    fn release(&mut self) -> Result<(), Infallible> {
        self.0.set_mode(Mode::Input);
        Ok(())
    }

    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.0.is_high())
    }
}

fn busy_hint(e: &rppal::gpio::Error) -> &'static str {
    let text = e.to_string().to_lowercase();
    if text.contains("busy") {
        " (is the banlight service running? stop it first: sudo systemctl stop banlight)"
    } else if text.contains("permission") {
        " (the user needs to be in the `gpio` group: sudo adduser $USER gpio, then log in again)"
    } else {
        ""
    }
}

fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// An input with pull-up whose edges (both ways) become `ButtonEdge`s.
fn watch_button(
    gpio: &Gpio,
    bcm: u64,
    button: Button,
    clock: Clock,
    tx: mpsc::Sender<ButtonEdge>,
) -> anyhow::Result<InputPin> {
    let name = match button {
        Button::Mode => "MODE",
        Button::Power => "POWER",
    };
    let mut input = gpio
        .get(bcm as u8)
        .map_err(|e| anyhow!("{name} button on {}: {e}", pin_name(bcm)))?
        .into_input_pullup();
    if input.is_low() {
        tracing::warn!(
            "the {name} button on {} reads pressed at start: held down, or its wire touches GND",
            pin_name(bcm)
        );
    }
    input
        .set_async_interrupt(Trigger::Both, None, move |event: Event| {
            let t_ms = edge_time_ms(clock.now_ms(), monotonic_now(), event.timestamp);
            let edge = ButtonEdge {
                button,
                // Active low: the button connects the pin to ground.
                pressed: matches!(event.trigger, Trigger::FallingEdge),
                t_ms,
            };
            // This runs on rppal's interrupt thread, outside the runtime.
            let _ = tx.blocking_send(edge);
        })
        .map_err(|e| {
            anyhow!(
                "cannot watch the {name} button on {}: {e}{}",
                pin_name(bcm),
                busy_hint(&e)
            )
        })?;
    Ok(input)
}

fn spi_bus(dev: &std::path::Path) -> anyhow::Result<Spi> {
    let (bus, ss) =
        spidev_bus(dev).ok_or_else(|| anyhow!("{} is not a SPI device", dev.display()))?;
    let bus = [
        Bus::Spi0,
        Bus::Spi1,
        Bus::Spi2,
        Bus::Spi3,
        Bus::Spi4,
        Bus::Spi5,
        Bus::Spi6,
    ][bus as usize];
    let ss = match ss {
        0 => SlaveSelect::Ss0,
        1 => SlaveSelect::Ss1,
        2 => SlaveSelect::Ss2,
        _ => anyhow::bail!("{}: only chip selects 0-2 are supported", dev.display()),
    };
    Spi::new(bus, ss, LED_SPI_HZ, rppal::spi::Mode::Mode0).map_err(|e| {
        anyhow!(
            "cannot open {}: {e} (turn SPI on with `sudo raspi-config nonint do_spi 0`; \
             the user needs to be in the `spi` group)",
            dev.display()
        )
    })
}

/// Opens the LEDs, the display and the buttons as configured.
pub fn open(
    config: &Config,
    clock: Clock,
    buttons: mpsc::Sender<ButtonEdge>,
) -> anyhow::Result<PiPanel> {
    let p = &config.panel;
    let gpio = Gpio::new().map_err(|e| anyhow!("cannot open the GPIO: {e}{}", busy_hint(&e)))?;
    let pin = |bcm: u64, what: &str| {
        gpio.get(bcm as u8)
            .map_err(|e| anyhow!("{what} on {}: {e}{}", pin_name(bcm), busy_hint(&e)))
    };
    let led_count = p.led_count as usize;
    let leds: Box<dyn LedWriter> = match &p.led_spi {
        Some(dev) => {
            tracing::info!(
                "LEDs: {led_count} APA102 on {} (hardware SPI)",
                dev.display()
            );
            Box::new(Apa102Strip::new(spi_bus(dev)?, led_count))
        }
        None => {
            let data = pin(p.blinkt_data_pin, "Blinkt! data")?.into_output_low();
            let clk = pin(p.blinkt_clock_pin, "Blinkt! clock")?.into_output_low();
            tracing::info!(
                "LEDs: {led_count} APA102, data {}, clock {}",
                pin_name(p.blinkt_data_pin),
                pin_name(p.blinkt_clock_pin)
            );
            let bus = match BitBangSpi::new(data, clk, Delay::new(), LED_HALF_PERIOD_NS) {
                Ok(bus) => bus,
                Err(never) => match never {},
            };
            Box::new(Apa102Strip::new(bus, led_count))
        }
    };
    let clk = pin(p.tm1637_clk_pin, "TM1637 CLK")?.into_output_high();
    let mut dio = pin(p.tm1637_dio_pin, "TM1637 DIO")?.into_io(Mode::Input);
    dio.set_bias(Bias::PullUp);
    let dio = OpenDrain::new(RppalLine(dio), Delay::new());
    let display = Tm1637Display::new(clk, dio, Delay::new(), BIT_DELAY_US);
    let wiring = format!(
        "CLK {}, DIO {}",
        pin_name(p.tm1637_clk_pin),
        pin_name(p.tm1637_dio_pin)
    );
    tracing::info!("display: TM1637, {wiring}");
    let mode = watch_button(
        &gpio,
        p.mode_button_pin,
        Button::Mode,
        clock,
        buttons.clone(),
    )?;
    let power = watch_button(&gpio, p.power_button_pin, Button::Power, clock, buttons)?;
    tracing::info!(
        "buttons: MODE {}, POWER {}",
        pin_name(p.mode_button_pin),
        pin_name(p.power_button_pin)
    );
    Ok(PiPanel::new(
        leds,
        Box::new(display),
        wiring,
        vec![Box::new(mode), Box::new(power)],
    ))
}
