//! `[panel] backend = "gpio-sim"`: the Raspberry Pi panel — the same
//! composition `pi` uses, bit-banged APA102 bus, open-drain TM1637 DIO with
//! its ACK polling and retries, button interrupts — over simulated wires
//! (`wires`). After every frame the recorded edges are decoded back into LED
//! frames and display updates (`decode`) and checked against the parts'
//! timing limits; with `record_path` each frame's decoded state is written
//! as a JSON line.

pub mod decode;
pub mod wires;

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{LineWriter, Write};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use self::decode::{
    decode_apa102, decode_tm1637, Apa102Led, Apa102Limits, Tm1637Limits, Tm1637Update, Violation,
};
use self::wires::{PinEdge, SimGpio};
use super::pi::{gpio::assemble, PiPanel};
use super::{ButtonEdge, Clock, PanelError, PanelOutput};
use crate::config::Config;
use crate::core::scene::Frame;

/// Frames kept for inspection (a long run keeps the newest).
const KEPT_SHOWS: usize = 20_000;
/// Violations kept in detail (all are counted).
const KEPT_VIOLATIONS: usize = 100;

/// The state of the parts after one `show`, as decoded from the pins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedShow {
    pub t_ms: u64,
    /// What the LEDs hold (the last frame they latched).
    pub leds: Vec<Apa102Led>,
    /// What the display holds (the last update it acknowledged).
    pub display: Option<Tm1637Update>,
    /// This show clocked a new LED frame / display update out.
    pub leds_written: bool,
    pub display_written: bool,
}

/// Everything the decoders found so far.
#[derive(Clone, Debug, Default)]
pub struct PinReport {
    pub shows: VecDeque<DecodedShow>,
    pub violations: Vec<Violation>,
    pub violation_count: u64,
    /// Display writes that got no ACK.
    pub unacked_transfers: u64,
    /// Duration of the last bit-banged LED frame / display update, from the
    /// recorded edge times.
    pub led_frame_ns: Option<u64>,
    pub display_update_ns: Option<u64>,
    /// Edges dropped because nobody took them in time (should stay 0).
    pub dropped_edges: u64,
    /// Reads of DIO while the host itself drove it low (should stay 0).
    pub reads_of_own_drive: u64,
}

#[derive(Clone, Copy, Debug)]
struct Pins {
    data: u8,
    clock: u8,
    clk: u8,
    dio: u8,
}

/// The Pi panel on simulated wires, decoding what it drives.
pub struct GpioSimPanel {
    inner: PiPanel,
    sim: SimGpio,
    pins: Pins,
    levels: BTreeMap<u8, bool>,
    report: Arc<Mutex<PinReport>>,
    record: Option<LineWriter<File>>,
}

/// Builds the `gpio-sim` panel; the returned `SimGpio` presses buttons and
/// plugs the display in or out while it runs.
pub fn open(
    config: &Config,
    clock: Clock,
    buttons: mpsc::Sender<ButtonEdge>,
) -> anyhow::Result<(GpioSimPanel, SimGpio)> {
    let sim = SimGpio::following_real_time();
    let panel = GpioSimPanel::on(sim.clone(), config, clock, buttons)?;
    tracing::info!(
        "backend = \"gpio-sim\": the Pi panel on simulated pins, decoded after every frame"
    );
    Ok((panel, sim))
}

impl GpioSimPanel {
    /// The Pi panel on `sim` (with a TM1637 that ACKs attached to CLK/DIO).
    pub fn on(
        sim: SimGpio,
        config: &Config,
        clock: Clock,
        buttons: mpsc::Sender<ButtonEdge>,
    ) -> anyhow::Result<Self> {
        let p = &config.panel;
        let pins = Pins {
            data: p.blinkt_data_pin as u8,
            clock: p.blinkt_clock_pin as u8,
            clk: p.tm1637_clk_pin as u8,
            dio: p.tm1637_dio_pin as u8,
        };
        if p.led_spi.is_some() {
            tracing::info!("backend = \"gpio-sim\" bit-bangs the LEDs; led_spi is not simulated");
        }
        sim.attach_tm1637(pins.clk, pins.dio, true);
        let mut config = config.clone();
        config.panel.led_spi = None;
        let inner = assemble(&mut sim.clone(), &config, clock, buttons, None)?;
        let record = match &config.panel.record_path {
            Some(path) => Some(LineWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        anyhow::anyhow!("cannot open record_path {}: {e}", path.display())
                    })?,
            )),
            None => None,
        };
        let mut panel = GpioSimPanel {
            inner,
            sim,
            pins,
            levels: BTreeMap::new(),
            report: Arc::default(),
            record,
        };
        // The pins' levels after opening, so later batches decode from there.
        panel.observe(0, false);
        panel.report.lock().expect("report lock").shows.clear();
        Ok(panel)
    }

    /// A handle on what the decoders found (shared; it keeps filling).
    pub fn report(&self) -> Arc<Mutex<PinReport>> {
        self.report.clone()
    }

    pub fn sim(&self) -> SimGpio {
        self.sim.clone()
    }

    /// Decodes the edges recorded since the last call.
    fn observe(&mut self, t_ms: u64, write: bool) {
        let (edges, dropped) = self.sim.take_edges();
        let Pins {
            data,
            clock,
            clk,
            dio,
        } = self.pins;
        // Each batch starts from the levels the previous one ended with.
        let t0 = edges.first().map_or(0, |e| e.t_ns);
        let mut batch: Vec<PinEdge> = self
            .levels
            .iter()
            .map(|(&bcm, &high)| PinEdge {
                t_ns: t0,
                bcm,
                high,
            })
            .collect();
        batch.extend(edges.iter().copied());
        for e in &edges {
            self.levels.insert(e.bcm, e.high);
        }
        let leds = decode_apa102(&batch, data, clock, Apa102Limits::default());
        let display = decode_tm1637(&batch, clk, dio, Tm1637Limits::default());
        let mut r = self.report.lock().expect("report lock");
        r.dropped_edges += dropped;
        let mut show = r.shows.back().cloned().unwrap_or(DecodedShow {
            t_ms,
            leds: Vec::new(),
            display: None,
            leds_written: false,
            display_written: false,
        });
        show.t_ms = t_ms;
        show.leds_written = !leds.frames.is_empty();
        show.display_written = !display.updates.is_empty();
        if let Some(f) = leds.frames.last() {
            show.leds = f.leds.clone();
            r.led_frame_ns = Some(f.end_ns - f.start_ns);
        }
        if let Some(u) = display.updates.last() {
            show.display = Some(u.clone());
            r.display_update_ns = Some(u.end_ns - u.start_ns);
        }
        r.unacked_transfers += display.transfers.iter().filter(|t| !t.acked).count() as u64;
        let own_reads = self.sim.reads_of_own_drive();
        let own = (own_reads > r.reads_of_own_drive).then(|| Violation {
            t_ns: edges.last().map_or(0, |e| e.t_ns),
            what: "TM1637: DIO read while the host drove it low (a missing display would pass for an ACK)".into(),
        });
        r.reads_of_own_drive = own_reads;
        for v in leds
            .violations
            .into_iter()
            .chain(display.violations)
            .chain(own)
        {
            if r.violation_count < 5 {
                tracing::warn!("gpio-sim: {} (at {} ns)", v.what, v.t_ns);
            }
            r.violation_count += 1;
            if r.violations.len() < KEPT_VIOLATIONS {
                r.violations.push(v);
            }
        }
        if r.shows.len() >= KEPT_SHOWS {
            r.shows.pop_front();
        }
        r.shows.push_back(show.clone());
        let figures = (r.led_frame_ns, r.display_update_ns, r.violation_count);
        drop(r);
        if let (true, Some(out)) = (write, &mut self.record) {
            let line = show_json(&show, figures);
            if let Err(e) = writeln!(out, "{line}") {
                tracing::warn!("gpio-sim: cannot write record_path: {e}");
            }
        }
    }
}

/// `{"t_ms":…,"leds":[[r,g,b],…],"brightness":7,"segments":[…],"display_on":true,
/// "display_brightness":3,"led_frame_us":…,"display_update_us":…,"violations":0}`
fn show_json(
    show: &DecodedShow,
    (led_ns, display_ns, violations): (Option<u64>, Option<u64>, u64),
) -> String {
    let leds: Vec<[u8; 3]> = show.leds.iter().map(|l| l.rgb).collect();
    serde_json::json!({
        "t_ms": show.t_ms,
        "leds": leds,
        "brightness": show.leds.first().map(|l| l.brightness),
        "segments": show.display.as_ref().map(|d| d.segments),
        "display_on": show.display.as_ref().map(|d| d.on),
        "display_brightness": show.display.as_ref().map(|d| d.brightness),
        "led_frame_us": led_ns.map(|n| n as f64 / 1000.0),
        "display_update_us": display_ns.map(|n| n as f64 / 1000.0),
        "violations": violations,
    })
    .to_string()
}

impl PanelOutput for GpioSimPanel {
    fn show(&mut self, frame: &Frame, t_ms: u64) -> Result<(), PanelError> {
        let result = self.inner.show(frame, t_ms);
        self.observe(t_ms, true);
        result
    }

    fn health(&self) -> Vec<(&'static str, String)> {
        let mut h = self.inner.health();
        let r = self.report.lock().expect("report lock");
        h.push((
            "pins",
            match r.violations.first() {
                None => "ok".into(),
                Some(v) => format!(
                    "{} protocol violation(s), first: {}",
                    r.violation_count, v.what
                ),
            },
        ));
        h
    }

    fn name(&self) -> &'static str {
        "gpio-sim"
    }

    fn wake_at(&self) -> Option<u64> {
        self.inner.wake_at()
    }

    fn show_segments(&mut self, segments: [u8; 4], brightness: u8) -> Result<(), PanelError> {
        let result = self.inner.show_segments(segments, brightness);
        self.observe(0, false);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::buttons::{Button, ButtonAction, ButtonTiming, Buttons};
    use crate::core::color::Rgb;
    use crate::core::display::{DisplayKind, DisplayText};
    use std::time::{Duration, Instant};

    fn frame(leds: Vec<Rgb>, text: &str, on: bool) -> Frame {
        Frame {
            leds,
            led_brightness: 7,
            display: DisplayText::parse_right(text).unwrap(),
            display_on: on,
            display_brightness: 3,
        }
    }

    fn panel_on(sim: &SimGpio) -> (GpioSimPanel, mpsc::Receiver<ButtonEdge>) {
        let (tx, rx) = mpsc::channel(64);
        let clock = Clock::started_ago(Duration::from_secs(60));
        let p = GpioSimPanel::on(sim.clone(), &Config::defaults(), clock, tx).unwrap();
        (p, rx)
    }

    fn last(p: &GpioSimPanel) -> DecodedShow {
        p.report().lock().unwrap().shows.back().cloned().unwrap()
    }

    #[test]
    fn the_pins_decode_to_the_frame_that_was_shown() {
        let sim = SimGpio::new();
        let (mut p, _rx) = panel_on(&sim);
        let mut leds = vec![Rgb::BLACK; 8];
        leds[0] = Rgb::new(255, 0, 0);
        leds[5] = Rgb::new(1, 128, 255);
        let f = frame(leds.clone(), "42", true);
        p.show(&f, 100).unwrap();
        let s = last(&p);
        assert!(s.leds_written && s.display_written);
        let rgb: Vec<[u8; 3]> = s.leds.iter().map(|l| l.rgb).collect();
        let want: Vec<[u8; 3]> = leds.iter().map(|c| [c.r, c.g, c.b]).collect();
        assert_eq!(rgb, want);
        assert!(s.leds.iter().all(|l| l.brightness == 7));
        let d = s.display.unwrap();
        assert_eq!(d.segments, f.display.segments());
        assert_eq!((d.on, d.brightness), (true, 3));
        // Only the display changes: no LED frame is clocked out.
        p.show(&frame(leds.clone(), "43", false), 200).unwrap();
        let s = last(&p);
        assert!(!s.leds_written && s.display_written);
        assert_eq!(s.display.unwrap().segments, [0, 0, 0x66, 0x4F]);
        assert!(!last(&p).display.unwrap().on);
        let report = p.report().lock().unwrap().clone();
        assert_eq!(report.violations, [], "the drivers keep the parts' timing");
        assert_eq!(report.unacked_transfers, 0);
        assert_eq!(p.health().last().unwrap(), &("pins", "ok".to_string()));
    }

    #[test]
    fn a_missing_display_is_noticed_on_the_pins_and_comes_back() {
        let sim = SimGpio::new();
        let (mut p, _rx) = panel_on(&sim);
        sim.set_display_acks(false);
        let f = frame(vec![Rgb::BLACK; 8], "7", true);
        let e = p.show(&f, 1000).unwrap_err();
        assert!(matches!(e, PanelError::DisplayMissing(_)), "{e}");
        assert_eq!(p.health()[1], ("display", "missing".to_string()));
        assert_eq!(p.report().lock().unwrap().unacked_transfers, 1);
        assert_eq!(last(&p).display, None);
        sim.set_display_acks(true);
        let retry = p.wake_at().unwrap();
        p.show(&f, retry).unwrap();
        assert_eq!(p.health()[1], ("display", "ok".to_string()));
        assert_eq!(last(&p).display.unwrap().segments[3], 0x07);
        assert_eq!(p.report().lock().unwrap().violations, []);
    }

    #[test]
    fn a_bouncing_press_goes_through_the_interrupt_thread() {
        let sim = SimGpio::new();
        let (_p, mut rx) = panel_on(&sim);
        sim.advance(1_000_000_000);
        // MODE (BCM 17) pressed 200 ms ago, held 100 ms; both ends bounce.
        sim.press(17, Duration::from_millis(200), Duration::from_millis(100));
        let mut edges = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while edges.len() < 10 && Instant::now() < deadline {
            match rx.try_recv() {
                Ok(e) => edges.push(e),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        assert_eq!(edges.len(), 10, "{edges:?}");
        assert!(edges.iter().all(|e| e.button == Button::Mode));
        let levels: Vec<bool> = edges.iter().map(|e| e.pressed).collect();
        assert_eq!(
            levels,
            [true, false, true, false, true, false, true, false, true, false]
        );
        let held = edges[9].t_ms - edges[0].t_ms;
        assert!(
            (100..=103).contains(&held),
            "{held} ms between first and last edge"
        );
        // The debouncer makes one press of it.
        let mut b = Buttons::new(ButtonTiming::default());
        let mut actions = Vec::new();
        for e in &edges {
            actions.extend(b.edge(e.button, e.pressed, e.t_ms));
        }
        actions.extend(b.poll(edges[9].t_ms + 100));
        assert_eq!(actions, [ButtonAction::NextMode]);
    }

    /// Issue 20, item 1: `dtoverlay=gpio-shutdown` holds BCM 3 ("line busy").
    /// The panel must not open with a dead POWER button; the error names the
    /// holder and how to free the line.
    #[test]
    fn a_button_line_held_by_the_kernel_is_an_error_at_start_with_the_fix() {
        let sim = SimGpio::new();
        sim.hold_line(3, "shutdown");
        let (tx, _rx) = mpsc::channel(64);
        let e = GpioSimPanel::on(sim, &Config::defaults(), Clock::start(), tx)
            .err()
            .expect("a busy POWER line is an error at start")
            .to_string();
        assert!(e.contains("POWER button on BCM 3 (pin 5)"), "{e}");
        assert!(e.contains("busy"), "{e}");
        assert!(e.contains("\"shutdown\""), "names the holder: {e}");
        assert!(e.contains("dtoverlay=gpio-shutdown"), "{e}");
        assert!(e.contains("power_button_pin"), "{e}");
    }

    /// Issue 20, item 1: button health is whether the interrupt path is
    /// alive, not a constant "ok".
    #[test]
    fn button_health_follows_the_interrupt_path() {
        let sim = SimGpio::new();
        let (p, mut rx) = panel_on(&sim);
        let buttons = |p: &GpioSimPanel| {
            p.health()
                .into_iter()
                .find(|(k, _)| *k == "buttons")
                .unwrap()
                .1
        };
        assert_eq!(buttons(&p), "ok");
        sim.fail_interrupts("read error on the line (os error 5)");
        // The broken path shows as soon as the interrupt thread meets it.
        let deadline = Instant::now() + Duration::from_secs(20);
        while buttons(&p) == "ok" {
            assert!(Instant::now() < deadline, "button health stayed ok");
            std::thread::sleep(Duration::from_millis(5));
        }
        let h = buttons(&p);
        assert!(h.starts_with("error:"), "{h}");
        assert!(h.contains("os error 5"), "{h}");
        assert!(h.contains("MODE") && h.contains("POWER"), "{h}");
        // And no edge gets through any more.
        sim.press(17, Duration::from_millis(50), Duration::from_millis(10));
        std::thread::sleep(Duration::from_millis(50));
        assert!(rx.try_recv().is_err());
    }

    fn display_health(p: &GpioSimPanel) -> String {
        p.health()
            .into_iter()
            .find(|(k, _)| *k == "display")
            .unwrap()
            .1
    }

    /// Issue 20, item 5: DIO held low (a bridge between pins 7 and 9, or a
    /// module without VCC) reads like an ACK to a driver that only looks for
    /// a low. DIO must read high before START and after the 9th clock.
    #[test]
    fn a_dio_held_low_is_not_a_display() {
        for fault in ["bridge", "unpowered"] {
            let sim = SimGpio::new();
            let (mut p, _rx) = panel_on(&sim);
            match fault {
                "bridge" => sim.short_to_ground(4, true),
                _ => sim.power_display(false),
            }
            let f = frame(vec![Rgb::BLACK; 8], "12", true);
            let e = p.show(&f, 1000).expect_err(fault).to_string();
            let h = display_health(&p);
            assert!(h.starts_with("DIO held low"), "{fault}: {h}");
            assert!(
                h.contains("check for a bridge between pins 7 and 9, or VCC"),
                "{fault}: {h}"
            );
            assert!(e.contains("DIO held low"), "{fault}: {e}");
            // Fixed: the next retry shows the count.
            match fault {
                "bridge" => sim.short_to_ground(4, false),
                _ => sim.power_display(true),
            }
            p.show(&f, p.wake_at().unwrap()).unwrap();
            assert_eq!(display_health(&p), "ok", "{fault}");
            assert_eq!(last(&p).display.unwrap().segments, f.display.segments());
        }
    }

    /// Issue 20, item 4: common modules carry 1-10 nF on DIO against 10 kΩ,
    /// so a released DIO takes 10-100 µs to read high. A driver that waits a
    /// fixed 20 µs clocks out zeros where it meant ones (and the chip ACKs
    /// what it misread).
    #[test]
    fn slow_dio_edges_still_decode_to_the_frame() {
        for rise_us in [10, 60, 100] {
            let sim = SimGpio::new();
            let (mut p, _rx) = panel_on(&sim);
            sim.set_rise_ns(4, rise_us * 1000);
            let f = frame(vec![Rgb::BLACK; 8], "8.8.8.8", true);
            p.show(&f, 100).unwrap();
            let s = last(&p);
            assert_eq!(
                s.display.map(|d| d.segments),
                Some(f.display.segments_on(DisplayKind::Colon)),
                "rise {rise_us} µs"
            );
            assert_eq!(display_health(&p), "ok");
            let r = p.report().lock().unwrap().clone();
            assert_eq!(r.violations, [], "rise {rise_us} µs");
        }
    }

    /// The checks hold on the real drivers too: the same drivers with their
    /// delays set too short are caught on the pins.
    #[test]
    fn drivers_with_too_short_delays_are_caught_on_the_pins() {
        use crate::panel::pi::blinkt::{Apa102Strip, BitBangSpi};
        use crate::panel::pi::gpio::PanelGpio;
        use crate::panel::pi::tm1637::{Clk, OpenDrain, Tm1637Display};
        let mut sim = SimGpio::new();
        sim.attach_tm1637(5, 4, true);
        let data = sim.output(23, false, "data").unwrap();
        let clock = sim.output(24, false, "clock").unwrap();
        let Ok(bus) = BitBangSpi::new(data, clock, sim.delay(), 0);
        Apa102Strip::new(bus, 8)
            .write(&[Rgb::new(255, 0, 0)], 7)
            .unwrap();
        let clk = sim.output(5, true, "CLK").unwrap();
        let dio = OpenDrain::new(sim.open_drain(4, "DIO").unwrap(), sim.delay());
        // 1 µs half periods: a 500 kHz clock
        Tm1637Display::new(Clk(clk), dio, sim.delay(), 1)
            .write([0x3F; 4], true, 3)
            .unwrap();
        let (edges, _) = sim.take_edges();
        let leds = decode::decode_apa102(&edges, 23, 24, Apa102Limits::default());
        assert_eq!(leds.frames.len(), 1, "the bytes still decode");
        assert!(
            leds.violations
                .iter()
                .any(|v| v.what.contains("set up 0 ns")),
            "{:?}",
            leds.violations
        );
        let display = decode::decode_tm1637(&edges, 5, 4, Tm1637Limits::default());
        assert_eq!(display.updates.len(), 1);
        assert!(
            display
                .violations
                .iter()
                .any(|v| v.what.contains("for 1000 ns")),
            "{:?}",
            display.violations
        );
    }

    /// The frame timing figure: bit-banged APA102 frame and TM1637 update
    /// times from the recorded edge times, against a 60 fps frame (16.7 ms).
    /// `cargo test --lib frame_timing_figures -- --nocapture` prints them.
    #[test]
    fn frame_timing_figures() {
        const BUDGET_NS: u64 = 1_000_000_000 / 60;
        let pct = |ns: u64| ns as f64 * 100.0 / BUDGET_NS as f64;
        for pin_write_ns in [0, 100] {
            let sim = SimGpio::new();
            sim.set_pin_write_ns(pin_write_ns);
            let (mut p, _rx) = panel_on(&sim);
            p.show(&frame(vec![Rgb::new(9, 9, 9); 8], "1234", true), 0)
                .unwrap();
            let (leds_ns, display_ns) = {
                let r = p.report();
                let r = r.lock().unwrap();
                assert_eq!(r.violations, []);
                (r.led_frame_ns.unwrap(), r.display_update_ns.unwrap())
            };
            sim.set_display_acks(false);
            let t0 = sim.now_ns();
            let _ = p.show(&frame(vec![Rgb::new(9, 9, 9); 8], "5", true), 100);
            let missing_ns = sim.now_ns() - t0;
            println!(
                "pin write {pin_write_ns} ns: APA102 frame (8 LEDs) {:.1} µs = {:.1} % of 16.7 ms; \
                 TM1637 update {:.0} µs = {:.1} %; a missing display costs {:.0} µs per try = {:.1} %",
                leds_ns as f64 / 1000.0,
                pct(leds_ns),
                display_ns as f64 / 1000.0,
                pct(display_ns),
                missing_ns as f64 / 1000.0,
                pct(missing_ns),
            );
            // An LED frame plus a display update fit in one 60 fps frame.
            assert!(leds_ns + display_ns < BUDGET_NS);
            assert!(leds_ns > 300_000, "320 bits at 1 µs: {leds_ns}");
        }
        // Slow modules: the driver waits for each DIO rise (and 3x again).
        for rise_us in [10, 100] {
            let sim = SimGpio::new();
            let (mut p, _rx) = panel_on(&sim);
            sim.set_rise_ns(4, rise_us * 1000);
            p.show(&frame(vec![Rgb::new(9, 9, 9); 8], "1234", true), 0)
                .unwrap();
            let r = p.report();
            let display_ns = r.lock().unwrap().display_update_ns.unwrap();
            println!(
                "DIO rise {rise_us} µs: TM1637 update {:.0} µs = {:.1} % of 16.7 ms",
                display_ns as f64 / 1000.0,
                pct(display_ns)
            );
        }
    }
}
