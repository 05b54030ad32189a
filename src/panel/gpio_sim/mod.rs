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
    let sim = SimGpio::following_real_time();
    sim.attach_tm1637(pins.clk, pins.dio, true);
    let mut config = config.clone();
    config.panel.led_spi = None;
    let inner = assemble(&mut sim.clone(), &config, clock, buttons, None)?;
    let record = match &p.record_path {
        Some(path) => Some(LineWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open record_path {}: {e}", path.display()))?,
        )),
        None => None,
    };
    tracing::info!(
        "backend = \"gpio-sim\": the Pi panel on simulated pins, decoded after every frame"
    );
    let mut panel = GpioSimPanel {
        inner,
        sim: sim.clone(),
        pins,
        levels: BTreeMap::new(),
        report: Arc::default(),
        record,
    };
    // The pins' levels after opening, so later batches decode from there.
    panel.observe(0, false);
    panel.report.lock().expect("report lock").shows.clear();
    Ok((panel, sim))
}

impl GpioSimPanel {
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
        for v in leds.violations.into_iter().chain(display.violations) {
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
