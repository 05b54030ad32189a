//! The one place that names rppal: detects the board and implements
//! [`PanelGpio`] over rppal's pins (button interrupts are edge-triggered, no
//! polling loop); the panel itself is composed in `gpio::assemble`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use rppal::gpio::{Bias, Gpio, InputPin, IoPin, Mode, OutputPin, Trigger};
use rppal::hal::Delay;
use rppal::spi::{Bus, SlaveSelect, Spi};
use rppal::system::DeviceInfo;
use tokio::sync::mpsc;

use super::blinkt::Apa102Strip;
use super::gpio::{
    assemble, Alive, EdgeHandler, InputEdge, InterruptPath, PanelGpio, WatchError, Watched,
};
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

    fn watch_inputs(
        &mut self,
        inputs: &[Watched<'_>],
        mut on_edge: EdgeHandler,
        path: InterruptPath,
    ) -> Result<(Box<dyn Send>, Vec<bool>), WatchError> {
        let mut pins: Vec<InputPin> = Vec::new();
        let mut low_at_start = Vec::new();
        for (index, w) in inputs.iter().enumerate() {
            let mut input = self
                .pin(w.bcm, w.what)
                .map_err(|e| WatchError {
                    index,
                    busy: false,
                    cause: e.to_string(),
                })?
                .into_input_pullup();
            low_at_start.push(input.is_low());
            // Not `set_async_interrupt`: rppal 0.22.1 requests the line inside
            // the thread it spawns and drops a failure there (interrupt.rs
            // ~257-263), so a line held by `dtoverlay=gpio-shutdown` or another
            // process gave a silently dead button. The synchronous request
            // returns the kernel's answer, and our own thread below polls.
            input
                .set_interrupt(Trigger::Both, None)
                .map_err(|e| WatchError {
                    index,
                    busy: is_busy(&e),
                    cause: e.to_string(),
                })?;
            pins.push(input);
        }
        let gpio = self.0.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::Builder::new()
            .name("banlight-buttons".into())
            .spawn(move || {
                let _alive = Alive(path.clone());
                let watched: Vec<&InputPin> = pins.iter().collect();
                // One thread polls both lines: rppal serialises synchronous
                // polls behind one lock, so a thread per pin would make each
                // wait out the other's timeout. The timeout only bounds how
                // long a dropped panel takes to end this thread.
                while !stopping.load(Ordering::Relaxed) {
                    match gpio.poll_interrupts(&watched, false, Some(Duration::from_millis(250))) {
                        Ok(Some((pin, event))) => {
                            let index = watched
                                .iter()
                                .position(|p| p.pin() == pin.pin())
                                .unwrap_or(0);
                            on_edge(
                                index,
                                InputEdge {
                                    falling: matches!(event.trigger, Trigger::FallingEdge),
                                    at: event.timestamp,
                                    now: monotonic_now(),
                                },
                            );
                        }
                        Ok(None) => {}
                        Err(e) => {
                            path.broke(format!("polling the interrupts failed: {e}"));
                            return;
                        }
                    }
                }
            })
            .map_err(|e| WatchError {
                index: 0,
                busy: false,
                cause: format!("cannot start the interrupt thread: {e}"),
            })?;
        Ok((Box::new(StopOnDrop(stop)), low_at_start))
    }

    fn line_holder(&self, bcm: u64) -> Option<String> {
        line_consumer(u32::try_from(bcm).ok()?)
    }
}

/// Ends the button thread (at its next poll timeout) when the panel goes.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn is_busy(e: &rppal::gpio::Error) -> bool {
    matches!(e, rppal::gpio::Error::Io(io) if io.raw_os_error() == Some(libc::EBUSY))
}

/// The consumer label of a header GPIO line, from the kernel's GPIO line
/// info (the v1 character-device ioctls, which rppal does not expose): this
/// is what names `dtoverlay=gpio-shutdown` ("shutdown") or another process
/// ("RPPAL", a libgpiod tool's name). `None` when nobody holds it or the
/// chips cannot be read.
fn line_consumer(offset: u32) -> Option<String> {
    #[repr(C)]
    struct ChipInfo {
        name: [u8; 32],
        label: [u8; 32],
        lines: u32,
    }
    #[repr(C)]
    struct LineInfo {
        line_offset: u32,
        flags: u32,
        name: [u8; 32],
        consumer: [u8; 32],
    }
    // _IOR(0xB4, 0x01, struct gpiochip_info), _IOWR(0xB4, 0x02, struct gpioline_info)
    const GET_CHIPINFO: u32 = 0x8044_B401;
    const GET_LINEINFO: u32 = 0xC048_B402;
    const FLAG_KERNEL: u32 = 1;
    let text = |b: &[u8]| {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    };
    for entry in std::fs::read_dir("/dev").ok()?.flatten() {
        if !entry.file_name().to_string_lossy().starts_with("gpiochip") {
            continue;
        }
        let Ok(file) = std::fs::File::open(entry.path()) else {
            continue;
        };
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        let mut chip = ChipInfo {
            name: [0; 32],
            label: [0; 32],
            lines: 0,
        };
        // SAFETY: the kernel writes a gpiochip_info into the struct we own.
        if unsafe { libc::ioctl(fd, GET_CHIPINFO as _, &mut chip) } != 0 {
            continue;
        }
        // The header's chip: pinctrl-bcm2835 / -bcm2711 / -rp1 (Pi 5).
        if !text(&chip.label).starts_with("pinctrl-") || offset >= chip.lines {
            continue;
        }
        let mut line = LineInfo {
            line_offset: offset,
            flags: 0,
            name: [0; 32],
            consumer: [0; 32],
        };
        // SAFETY: as above, a gpioline_info we own, offset set.
        if unsafe { libc::ioctl(fd, GET_LINEINFO as _, &mut line) } != 0 {
            return None;
        }
        let consumer = text(&line.consumer);
        return (line.flags & FLAG_KERNEL != 0 || !consumer.is_empty()).then(|| {
            if consumer.is_empty() {
                "kernel".into()
            } else {
                consumer
            }
        });
    }
    None
}

/// The header's GPIO alone, for `banlight doctor` (nothing is requested
/// or driven until a pin is taken).
pub fn open_gpio() -> anyhow::Result<impl PanelGpio> {
    Gpio::new()
        .map(RppalGpio)
        .map_err(|e| anyhow!("cannot open the GPIO: {e}{}", busy_hint(&e)))
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
