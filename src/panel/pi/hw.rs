//! The one place that names rppal: detects the board and implements
//! [`PanelGpio`] over rppal's pins (button interrupts are edge-triggered, no
//! polling loop); the panel itself is composed in `gpio::assemble`.

use std::convert::Infallible;
use std::time::Duration;

use anyhow::anyhow;
use rppal::gpio::{Bias, Event, Gpio, IoPin, Mode, OutputPin, Trigger};
use rppal::hal::Delay;
use rppal::spi::{Bus, SlaveSelect, Spi};
use rppal::system::DeviceInfo;
use tokio::sync::mpsc;

use super::blinkt::Apa102Strip;
use super::gpio::{assemble, EdgeHandler, InputEdge, PanelGpio};
use super::tm1637::OpenDrainLine;
use super::{pin_name, spidev_bus, LedWriter, PiPanel};
use crate::config::Config;
use crate::panel::{ButtonEdge, Clock};

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

/// rppal's GPIO as a [`PanelGpio`].
struct RppalGpio(Gpio);

impl RppalGpio {
    fn pin(&self, bcm: u64, what: &str) -> anyhow::Result<rppal::gpio::Pin> {
        self.0
            .get(bcm as u8)
            .map_err(|e| anyhow!("{what} on {}: {e}{}", pin_name(bcm), busy_hint(&e)))
    }
}

impl PanelGpio for RppalGpio {
    type Output = OutputPin;
    type Line = RppalLine;
    type Delay = Delay;

    fn output(&mut self, bcm: u64, high: bool, what: &str) -> anyhow::Result<OutputPin> {
        let pin = self.pin(bcm, what)?;
        Ok(if high {
            pin.into_output_high()
        } else {
            pin.into_output_low()
        })
    }

    fn open_drain(&mut self, bcm: u64, what: &str) -> anyhow::Result<RppalLine> {
        let mut dio = self.pin(bcm, what)?.into_io(Mode::Input);
        dio.set_bias(Bias::PullUp);
        Ok(RppalLine(dio))
    }

    fn delay(&self) -> Delay {
        Delay::new()
    }

    fn watch_input(
        &mut self,
        bcm: u64,
        what: &str,
        mut on_edge: EdgeHandler,
    ) -> anyhow::Result<(Box<dyn Send>, bool)> {
        let mut input = self.pin(bcm, what)?.into_input_pullup();
        let low_at_start = input.is_low();
        input
            .set_async_interrupt(Trigger::Both, None, move |event: Event| {
                on_edge(InputEdge {
                    falling: matches!(event.trigger, Trigger::FallingEdge),
                    at: event.timestamp,
                    now: monotonic_now(),
                })
            })
            .map_err(|e| {
                anyhow!(
                    "cannot watch the {what} on {}: {e}{}",
                    pin_name(bcm),
                    busy_hint(&e)
                )
            })?;
        Ok((Box::new(input), low_at_start))
    }
}

/// Opens the LEDs, the display and the buttons as configured.
pub fn open(
    config: &Config,
    clock: Clock,
    buttons: mpsc::Sender<ButtonEdge>,
) -> anyhow::Result<PiPanel> {
    let p = &config.panel;
    let gpio = Gpio::new().map_err(|e| anyhow!("cannot open the GPIO: {e}{}", busy_hint(&e)))?;
    let spi_leds: Option<Box<dyn LedWriter>> = match &p.led_spi {
        Some(dev) => {
            tracing::info!(
                "LEDs: {} APA102 on {} (hardware SPI)",
                p.led_count,
                dev.display()
            );
            Some(Box::new(Apa102Strip::new(
                spi_bus(dev)?,
                p.led_count as usize,
            )))
        }
        None => None,
    };
    assemble(&mut RppalGpio(gpio), config, clock, buttons, spi_leds)
}
