//! The Raspberry Pi backend: a Blinkt! (APA102 LEDs), a TM1637 4-digit
//! display and two buttons. `PiPanel` composes the LED and display drivers,
//! skips writes that would change nothing, and keeps a missing display from
//! costing more than one try every few seconds. The drivers (`blinkt`,
//! `tm1637`) are generic over embedded-hal; only `hw` names rppal.

pub mod blinkt;
pub mod gpio;
mod hw;
pub mod tm1637;

pub use hw::open_gpio;

use std::fmt::Debug;
use std::time::Duration;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiBus;
use tokio::sync::mpsc;

use super::{ButtonEdge, Clock, PanelError, PanelOutput};
use crate::config::{Backend, Config};
use crate::core::color::Rgb;
use crate::core::display::DisplayKind;
use crate::core::scene::Frame;
/// The SPI device rule lives with the other wiring rules (the config uses it too).
pub use crate::core::wiring::spidev_bus;

/// How long a missing display is left alone before the next try.
pub const DISPLAY_RETRY_MS: u64 = 5000;

/// What `open_if_pi` found.
pub enum PiProbe {
    Panel(PiPanel),
    /// Not a Raspberry Pi (`backend = "auto"`: the simulated panel).
    NotAPi,
    /// The device tree says Raspberry Pi but rppal cannot drive it: the
    /// simulated panel runs, and this error goes to the log, status and page.
    NotDriven(String),
}

/// Why a board the device tree calls a Raspberry Pi is not driven, when it
/// is one (`model`) and rppal said `why`; `None` when it is no Pi at all.
pub fn not_driven(model: Option<&str>, why: &str) -> Option<String> {
    let model = model.filter(|m| m.contains("Raspberry Pi"))?;
    Some(format!(
        "this is a {model}, but rppal 0.22.1 cannot drive it ({why}): nothing on the header \
         lights and the buttons do nothing; the simulated panel runs instead. A newer banlight \
         may know the board. To choose knowingly, set [panel] backend = \"pi\" (the service \
         then fails at start with this reason instead of running dark) or backend = \"sim\" \
         (the simulated panel, without this error)"
    ))
}

/// The Pi backend when this is a Pi. `NotAPi`/`NotDriven` under
/// `backend = "auto"` on another machine (the caller falls back to `sim`);
/// an error under `backend = "pi"` there, or when the hardware cannot be
/// opened. `model` is the device tree's (`device_tree_model`).
pub fn open_if_pi(
    config: &Config,
    clock: Clock,
    buttons: mpsc::Sender<ButtonEdge>,
    model: Option<&str>,
) -> anyhow::Result<PiProbe> {
    match hw::detect() {
        Ok(board) => {
            tracing::info!(
                "backend = {:?}: {board}, using the Raspberry Pi hardware",
                config.panel.backend
            );
            hw::open(config, clock, buttons).map(PiProbe::Panel)
        }
        Err(why) if config.panel.backend == Backend::Pi => match not_driven(model, &why) {
            Some(msg) => anyhow::bail!("backend = \"pi\": {msg}"),
            None => anyhow::bail!(
                "backend = \"pi\" needs a Raspberry Pi, and this machine is not one ({why}); \
                 use backend = \"auto\" (the simulated panel off a Pi) or \"sim\""
            ),
        },
        Err(why) => match not_driven(model, &why) {
            Some(msg) => {
                tracing::error!("backend = \"auto\": {msg}");
                Ok(PiProbe::NotDriven(msg))
            }
            None => {
                tracing::info!(
                    "backend = \"auto\": not a Raspberry Pi ({why}), using the simulated panel"
                );
                Ok(PiProbe::NotAPi)
            }
        },
    }
}

/// The device tree's model ("Raspberry Pi 5 Model B Rev 1.0"), whatever
/// rppal makes of it; `None` off a device-tree machine.
pub fn device_tree_model() -> Option<String> {
    [
        "/proc/device-tree/model",
        "/sys/firmware/devicetree/base/model",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .map(|m| m.trim_end_matches('\0').trim().to_string())
}

/// The board's model when this is a Raspberry Pi, else why not (rppal).
pub fn board() -> Result<String, String> {
    hw::detect()
}

/// The physical pin (1-40) of a BCM GPIO on the 40-pin header.
pub fn physical_pin(bcm: u64) -> Option<u8> {
    const HEADER: [(u64, u8); 28] = [
        (0, 27),
        (1, 28),
        (2, 3),
        (3, 5),
        (4, 7),
        (5, 29),
        (6, 31),
        (7, 26),
        (8, 24),
        (9, 21),
        (10, 19),
        (11, 23),
        (12, 32),
        (13, 33),
        (14, 8),
        (15, 10),
        (16, 36),
        (17, 11),
        (18, 12),
        (19, 35),
        (20, 38),
        (21, 40),
        (22, 15),
        (23, 16),
        (24, 18),
        (25, 22),
        (26, 37),
        (27, 13),
    ];
    HEADER.iter().find(|(b, _)| *b == bcm).map(|(_, p)| *p)
}

/// A GND pin beside physical pin `p` on the header (same column first),
/// where a solder bridge from `p` is likeliest.
pub fn gnd_beside(p: u8) -> Option<u8> {
    const GND: [u8; 8] = [6, 9, 14, 20, 25, 30, 34, 39];
    let across = if p % 2 == 1 { p + 1 } else { p - 1 };
    [p + 2, p.wrapping_sub(2), across]
        .into_iter()
        .find(|c| GND.contains(c))
}

/// "BCM 5 (pin 29)".
pub fn pin_name(bcm: u64) -> String {
    match physical_pin(bcm) {
        Some(p) => format!("BCM {bcm} (pin {p})"),
        None => format!("BCM {bcm}"),
    }
}

/// When a GPIO edge happened on the daemon clock: the kernel stamps edges
/// with CLOCK_MONOTONIC (`event_ts`); `mono_now` is that clock now. A stamp
/// from the future or more than 10 s old is not trusted (edge = now).
pub fn edge_time_ms(now_ms: u64, mono_now: Duration, event_ts: Duration) -> u64 {
    match mono_now.checked_sub(event_ts) {
        Some(age) if age <= Duration::from_secs(10) => {
            now_ms.saturating_sub(age.as_millis() as u64)
        }
        _ => now_ms,
    }
}

/// Something that shows LED colours at an APA102 global brightness.
pub trait LedWriter: Send {
    fn write_leds(&mut self, leds: &[Rgb], brightness: u8) -> Result<(), String>;
}

impl<SPI> LedWriter for blinkt::Apa102Strip<SPI>
where
    SPI: SpiBus + Send,
    SPI::Error: Debug,
{
    fn write_leds(&mut self, leds: &[Rgb], brightness: u8) -> Result<(), String> {
        self.write(leds, brightness).map_err(|e| format!("{e:?}"))
    }
}

/// Why the display did not take a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisplayFault {
    /// No ACK: nothing answers on CLK/DIO.
    Missing,
    /// DIO never rose after it was let go (`tm1637::WHEN_*` says when): a
    /// bridge to GND, or a module without VCC.
    HeldLow(&'static str),
    Failed(String),
}

/// Something that shows four TM1637 segment bytes.
pub trait SegmentWriter: Send {
    fn write_segments(
        &mut self,
        segments: [u8; 4],
        on: bool,
        brightness: u8,
    ) -> Result<(), DisplayFault>;
}

impl<E: Debug> From<tm1637::LineError<E>> for DisplayFault {
    fn from(e: tm1637::LineError<E>) -> Self {
        match e {
            tm1637::LineError::HeldLow(when) => DisplayFault::HeldLow(when),
            tm1637::LineError::Pin(e) => DisplayFault::Failed(format!("{e:?}")),
        }
    }
}

impl<CLK, DIO, DELAY, E> SegmentWriter for tm1637::Tm1637Display<CLK, DIO, DELAY>
where
    CLK: OutputPin<Error = E> + Send,
    DIO: OutputPin<Error = E> + InputPin<Error = E> + Send,
    DELAY: DelayNs + Send,
    E: Into<DisplayFault>,
{
    fn write_segments(
        &mut self,
        segments: [u8; 4],
        on: bool,
        brightness: u8,
    ) -> Result<(), DisplayFault> {
        self.write(segments, on, brightness).map_err(|e| match e {
            tm1637::DisplayError::NoAck => DisplayFault::Missing,
            tm1637::DisplayError::Pin(e) => e.into(),
        })
    }
}

type DisplayState = ([u8; 4], bool, u8);

/// The Pi panel: LEDs and display, each written only when its part of the
/// frame changed, and a display that may be missing or come and go.
pub struct PiPanel {
    leds: Box<dyn LedWriter>,
    display: Box<dyn SegmentWriter>,
    /// "CLK BCM 5 (pin 29), DIO BCM 4 (pin 7)", for messages.
    display_wiring: String,
    shown_leds: Option<(Vec<Rgb>, u8)>,
    shown_display: Option<DisplayState>,
    led_error: Option<String>,
    display_fault: Option<DisplayFault>,
    /// While the display fails: when to try again.
    retry_at: Option<u64>,
    /// DIO's BCM pin, for the wiring hint when it is held low.
    dio_bcm: Option<u64>,
    /// The buttons' interrupt path, when there are buttons.
    buttons: Option<gpio::InterruptPath>,
    /// Which module is wired: decides what bit 7 of a digit may light.
    display_kind: DisplayKind,
    /// Kept alive: the button pins with their interrupt threads.
    _keep: Vec<Box<dyn Send>>,
}

impl PiPanel {
    pub fn new(
        leds: Box<dyn LedWriter>,
        display: Box<dyn SegmentWriter>,
        display_wiring: String,
        keep: Vec<Box<dyn Send>>,
    ) -> Self {
        PiPanel {
            leds,
            display,
            display_wiring,
            shown_leds: None,
            shown_display: None,
            led_error: None,
            display_fault: None,
            retry_at: None,
            buttons: None,
            dio_bcm: None,
            display_kind: DisplayKind::default(),
            _keep: keep,
        }
    }

    /// The TM1637 module kind (`[panel] display`); the default is `colon`.
    pub fn with_display_kind(mut self, kind: DisplayKind) -> Self {
        self.display_kind = kind;
        self
    }

    /// The buttons' interrupt path: their health is whether it is alive.
    pub fn with_buttons(mut self, path: gpio::InterruptPath) -> Self {
        self.buttons = Some(path);
        self
    }

    /// The TM1637's DIO pin (for the hint when it is held low).
    pub fn with_dio(mut self, bcm: u64) -> Self {
        self.dio_bcm = Some(bcm);
        self
    }

    /// "DIO held low …: check for a bridge between pins 7 and 9, or VCC".
    fn held_low(&self, when: &str) -> String {
        let dio = self.dio_bcm.and_then(physical_pin);
        let bridge = match (dio, dio.and_then(gnd_beside)) {
            (Some(d), Some(g)) => format!("a bridge between pins {d} and {g}"),
            (Some(d), None) => format!("a bridge from pin {d} to GND"),
            _ => "a bridge from DIO to GND".to_string(),
        };
        format!("DIO held low {when}: check for {bridge}, or VCC (the module unpowered)")
    }

    fn display_error(&self) -> Option<PanelError> {
        self.display_fault.as_ref().map(|f| match f {
            DisplayFault::Missing => PanelError::DisplayMissing(format!(
                "no ACK from the TM1637 on {} (is it connected and powered?); trying again every {} s",
                self.display_wiring,
                DISPLAY_RETRY_MS / 1000
            )),
            DisplayFault::HeldLow(when) => PanelError::Unavailable(format!(
                "display: {} ({}); trying again every {} s",
                self.held_low(when),
                self.display_wiring,
                DISPLAY_RETRY_MS / 1000
            )),
            DisplayFault::Failed(e) => PanelError::Unavailable(format!("display: {e}")),
        })
    }

    fn write_display(&mut self, want: DisplayState, t_ms: u64) {
        if self.retry_at.is_some_and(|at| t_ms < at) || self.shown_display == Some(want) {
            return;
        }
        match self.display.write_segments(want.0, want.1, want.2) {
            Ok(()) => {
                if self.display_fault.take().is_some() {
                    tracing::info!("the display answers again");
                }
                self.retry_at = None;
                self.shown_display = Some(want);
            }
            Err(fault) => {
                self.shown_display = None;
                self.retry_at = Some(t_ms + DISPLAY_RETRY_MS);
                self.display_fault = Some(fault);
            }
        }
    }
}

impl PanelOutput for PiPanel {
    fn show(&mut self, frame: &Frame, t_ms: u64) -> Result<(), PanelError> {
        let leds = (frame.leds.clone(), frame.led_brightness);
        if self.shown_leds.as_ref() != Some(&leds) {
            match self.leds.write_leds(&leds.0, leds.1) {
                Ok(()) => {
                    self.shown_leds = Some(leds);
                    self.led_error = None;
                }
                Err(e) => {
                    self.shown_leds = None;
                    self.led_error = Some(e);
                }
            }
        }
        let want = (
            frame.display.segments_on(self.display_kind),
            frame.display_on,
            frame.display_brightness,
        );
        self.write_display(want, t_ms);
        if let Some(e) = &self.led_error {
            return Err(PanelError::Leds(e.clone()));
        }
        match self.display_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn health(&self) -> Vec<(&'static str, String)> {
        let leds = match &self.led_error {
            None => "ok".to_string(),
            Some(e) => format!("error: {e}"),
        };
        let display = match &self.display_fault {
            None => "ok".to_string(),
            Some(DisplayFault::Missing) => "missing".to_string(),
            Some(DisplayFault::HeldLow(when)) => self.held_low(when),
            Some(DisplayFault::Failed(e)) => format!("error: {e}"),
        };
        let buttons = match self.buttons.as_ref().map(|p| p.broken()) {
            None => "none".to_string(),
            Some(None) => "ok".to_string(),
            Some(Some(why)) => format!(
                "error: the MODE and POWER buttons' interrupt thread stopped ({why}): no press is \
                 seen; restart banlight (sudo systemctl restart banlight)"
            ),
        };
        vec![("leds", leds), ("display", display), ("buttons", buttons)]
    }

    fn wake_at(&self) -> Option<u64> {
        self.retry_at
    }

    fn show_segments(&mut self, segments: [u8; 4], brightness: u8) -> Result<(), PanelError> {
        // Whatever the frame says next must be written again, at once.
        self.shown_display = None;
        self.retry_at = None;
        self.display_fault = self
            .display
            .write_segments(segments, true, brightness)
            .err();
        match self.display_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn name(&self) -> &'static str {
        "pi"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::display::DisplayText;
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<String>>>);

    impl Log {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }

    struct FakeLeds(Log);
    impl LedWriter for FakeLeds {
        fn write_leds(&mut self, leds: &[Rgb], brightness: u8) -> Result<(), String> {
            self.0
                 .0
                .lock()
                .unwrap()
                .push(format!("leds {} @{brightness}", leds[0]));
            Ok(())
        }
    }

    struct FakeDisplay(Log, Arc<Mutex<bool>>);
    impl SegmentWriter for FakeDisplay {
        fn write_segments(&mut self, s: [u8; 4], on: bool, b: u8) -> Result<(), DisplayFault> {
            self.0
                 .0
                .lock()
                .unwrap()
                .push(format!("display {s:02x?} {on} @{b}"));
            if *self.1.lock().unwrap() {
                Ok(())
            } else {
                Err(DisplayFault::Missing)
            }
        }
    }

    fn panel(present: bool) -> (PiPanel, Log, Arc<Mutex<bool>>) {
        let log = Log::default();
        let present = Arc::new(Mutex::new(present));
        let p = PiPanel::new(
            Box::new(FakeLeds(log.clone())),
            Box::new(FakeDisplay(log.clone(), present.clone())),
            "CLK BCM 5 (pin 29), DIO BCM 4 (pin 7)".into(),
            Vec::new(),
        );
        (p, log, present)
    }

    fn frame(led0: Rgb, text: &str) -> Frame {
        let mut leds = vec![Rgb::BLACK; 8];
        leds[0] = led0;
        Frame {
            leds,
            led_brightness: 7,
            display: DisplayText::parse_right(text).unwrap(),
            display_on: true,
            display_brightness: 3,
        }
    }

    #[test]
    fn only_the_part_that_changed_is_written() {
        let (mut p, log, _) = panel(true);
        let red = Rgb::new(255, 0, 0);
        p.show(&frame(red, "42"), 0).unwrap();
        assert_eq!(
            log.take(),
            ["leds #ff0000 @7", "display [00, 00, 66, 5b] true @3"]
        );
        p.show(&frame(Rgb::new(0, 0, 255), "42"), 16).unwrap();
        assert_eq!(log.take(), ["leds #0000ff @7"]);
        p.show(&frame(Rgb::new(0, 0, 255), "43"), 32).unwrap();
        assert_eq!(log.take(), ["display [00, 00, 66, 4f] true @3"]);
        p.show(&frame(Rgb::new(0, 0, 255), "43"), 48).unwrap();
        assert!(log.take().is_empty());
        assert_eq!(p.health()[1], ("display", "ok".to_string()));
        assert_eq!(p.wake_at(), None);
    }

    #[test]
    fn a_missing_display_is_retried_every_few_seconds_and_comes_alive() {
        let (mut p, log, present) = panel(false);
        let red = Rgb::new(255, 0, 0);
        let e = p.show(&frame(red, "1"), 1000).unwrap_err();
        assert!(matches!(e, PanelError::DisplayMissing(_)), "{e}");
        assert!(e.to_string().contains("BCM 5 (pin 29)"), "{e}");
        assert_eq!(p.health()[1], ("display", "missing".to_string()));
        assert_eq!(log.take().len(), 2);
        assert_eq!(p.wake_at(), Some(1000 + DISPLAY_RETRY_MS));
        // The LEDs keep working; the display is not tried at every frame.
        for t in (1016..6000).step_by(16) {
            assert!(p.show(&frame(Rgb::new(t as u8, 0, 0), "2"), t).is_err());
        }
        assert!(log.take().iter().all(|l| l.starts_with("leds")));
        // Plugged in: at the next retry the latest text appears.
        *present.lock().unwrap() = true;
        p.show(&frame(red, "3"), 6000).unwrap();
        assert_eq!(
            log.take(),
            ["leds #ff0000 @7", "display [00, 00, 00, 4f] true @3"]
        );
        assert_eq!(p.health()[1], ("display", "ok".to_string()));
        assert_eq!(p.wake_at(), None);
    }

    #[test]
    fn a_point_in_the_text_reaches_only_a_points_module() {
        let dotted = |p: &mut PiPanel| {
            let mut f = frame(Rgb::BLACK, "");
            f.display = DisplayText::parse("1.2.3.4.").unwrap();
            p.show(&f, 0).unwrap();
        };
        let (mut colon, log, _) = panel(true);
        dotted(&mut colon);
        assert_eq!(log.take()[1], "display [06, 5b, 4f, 66] true @3");
        let (points, log, _) = panel(true);
        let mut points = points.with_display_kind(DisplayKind::Points);
        dotted(&mut points);
        assert_eq!(log.take()[1], "display [86, db, cf, e6] true @3");
    }

    #[test]
    fn raw_segments_for_the_selftest_then_the_frame_again() {
        let (mut p, log, _) = panel(true);
        let f = frame(Rgb::BLACK, "8");
        p.show(&f, 0).unwrap();
        log.take();
        p.show_segments([0x01, 0, 0, 0], 7).unwrap();
        assert_eq!(log.take(), ["display [01, 00, 00, 00] true @7"]);
        p.show(&f, 10).unwrap();
        assert_eq!(log.take(), ["display [00, 00, 00, 7f] true @3"]);
    }

    #[test]
    fn every_header_gpio_has_its_own_physical_pin() {
        assert_eq!(pin_name(23), "BCM 23 (pin 16)");
        assert_eq!(pin_name(24), "BCM 24 (pin 18)");
        assert_eq!(pin_name(5), "BCM 5 (pin 29)");
        assert_eq!(pin_name(4), "BCM 4 (pin 7)");
        assert_eq!(pin_name(17), "BCM 17 (pin 11)");
        assert_eq!(pin_name(3), "BCM 3 (pin 5)");
        // every header GPIO has a distinct physical pin
        let mut seen: Vec<u8> = (0..28).map(|b| physical_pin(b).unwrap()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 28);
    }

    #[test]
    fn pins_are_checked_in_the_config() {
        let parse = |t: &str| Config::parse(Path::new("t.toml"), t);
        let e = parse("[panel]\nmode_button_pin = 4\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("panel.mode_button_pin"), "{e}");
        assert!(e.message.contains("tm1637_dio_pin"), "{e}");
        let e = parse("[panel]\npower_button_pin = 28\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(2), Some("panel.power_button_pin"))
        );
        let e = parse("[panel]\nled_spi = \"/dev/ttyS0\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("panel.led_spi"), "{e}");
        // With hardware SPI the two bit-bang pins are free for other jobs.
        let c = parse("[panel]\nled_spi = \"/dev/spidev0.0\"\nmode_button_pin = 23\n").unwrap();
        assert_eq!(
            c.panel.led_spi.as_deref(),
            Some(Path::new("/dev/spidev0.0"))
        );
    }

    #[test]
    fn edges_are_stamped_when_they_happened() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(edge_time_ms(5000, s(100), s(100) - ms(40)), 4960);
        assert_eq!(edge_time_ms(5000, s(100), s(101)), 5000);
        assert_eq!(edge_time_ms(5000, s(100), s(50)), 5000);
        assert_eq!(edge_time_ms(10, s(100), s(100) - ms(40)), 0);
    }

    #[test]
    fn auto_off_a_pi_falls_back_and_pi_fails_clearly() {
        if hw::detect().is_ok() {
            return; // running on a real Pi
        }
        let (tx, _rx) = mpsc::channel(1);
        let mut config = Config::defaults();
        assert!(matches!(
            open_if_pi(&config, Clock::start(), tx.clone(), None).unwrap(),
            PiProbe::NotAPi
        ));
        config.panel.backend = Backend::Pi;
        let e = open_if_pi(&config, Clock::start(), tx.clone(), None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("needs a Raspberry Pi"), "{e}");
        // A Pi rppal does not know: backend = "pi" fails with that reason.
        let e = open_if_pi(&config, Clock::start(), tx, Some("Raspberry Pi 7 Model B"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("rppal 0.22.1 cannot drive it"), "{e}");
    }
}
