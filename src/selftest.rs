//! `banlight selftest`: walks every LED through red, green, blue and white,
//! every display digit through its segments, then asks for each button,
//! printing what should be visible at each step. It finds a bad solder
//! joint, a swapped wire or a Blinkt! without 5 V. Off a Pi it runs on the
//! simulated panel (keys m and p press the buttons there).

mod report;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::Config;
use crate::core::buttons::Button;
use crate::core::color::Rgb;
use crate::core::display::{DisplayKind, DisplayText, COLON_DIGIT};
use crate::core::scene::Frame;
use crate::panel::pi::pin_name;
use crate::panel::{ButtonEdge, Clock, PanelError, PanelOutput};

/// The config the package installs; used when `--config` is not given.
pub const SYSTEM_CONFIG: &str = "/etc/banlight/banlight.toml";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// How long each step stays visible.
    pub step: Duration,
    /// How long to wait for each button; `None` skips the buttons.
    pub button_timeout: Option<Duration>,
}

const COLORS: [(&str, Rgb); 4] = [
    ("red", Rgb::new(255, 0, 0)),
    ("green", Rgb::new(0, 255, 0)),
    ("blue", Rgb::new(0, 0, 255)),
    ("white", Rgb::new(255, 255, 255)),
];

/// TM1637 segment bits a-g, in the order they are walked (bit 7, the colon
/// or a point depending on the module, has its own step).
const SEGMENTS: [(u8, &str); 7] = [
    (0, "a (top)"),
    (1, "b (upper right)"),
    (2, "c (lower right)"),
    (3, "d (bottom)"),
    (4, "e (lower left)"),
    (5, "f (upper left)"),
    (6, "g (middle)"),
];

struct Selftest<'a> {
    panel: &'a mut dyn PanelOutput,
    edges: &'a mut mpsc::Receiver<ButtonEdge>,
    out: &'a mut dyn Write,
    clock: Clock,
    config: &'a Config,
    opts: Options,
    problems: Vec<String>,
    display_ok: bool,
    leds_ok: bool,
}

impl Selftest<'_> {
    fn say(&mut self, text: &str) {
        let _ = write!(self.out, "{text}");
        let _ = self.out.flush();
    }

    fn line(&mut self, text: &str) {
        self.say(&format!("{text}\n"));
    }

    fn problem(&mut self, text: String) {
        self.line(&format!("\n  !! {text}"));
        self.problems.push(text);
    }

    async fn pause(&self, steps: u32) {
        if !self.opts.step.is_zero() {
            tokio::time::sleep(self.opts.step * steps).await;
        }
    }

    fn frame(&self, leds: Vec<Rgb>, text: &str, display_brightness: u8) -> Frame {
        Frame {
            leds,
            led_brightness: self.config.panel.led_brightness as u8,
            display: DisplayText::parse(text).unwrap_or(DisplayText::BLANK),
            display_on: true,
            display_brightness,
        }
    }

    fn dark(&self) -> Vec<Rgb> {
        vec![Rgb::BLACK; self.config.panel.led_count as usize]
    }

    fn show(&mut self, frame: &Frame) {
        let result = self.panel.show(frame, self.clock.now_ms());
        self.note(result);
    }

    fn note(&mut self, result: Result<(), PanelError>) {
        match result {
            Ok(()) => {}
            Err(PanelError::DisplayMissing(why)) => {
                if self.display_ok {
                    self.display_ok = false;
                    let p = &self.config.panel;
                    self.problem(format!(
                        "display: {why}. Check CLK -> {}, DIO -> {}, VCC -> pin 1 (3.3 V), GND -> pin 39.",
                        pin_name(p.tm1637_clk_pin),
                        pin_name(p.tm1637_dio_pin)
                    ));
                }
            }
            Err(e) => {
                if self.leds_ok {
                    self.leds_ok = false;
                    self.problem(format!("panel: {e}"));
                }
            }
        }
    }

    async fn leds(&mut self) {
        let p = &self.config.panel;
        let n = p.led_count as usize;
        let wiring = match &p.led_spi {
            Some(dev) => format!("hardware SPI {}", dev.display()),
            None => format!(
                "data {}, clock {}",
                pin_name(p.blinkt_data_pin),
                pin_name(p.blinkt_clock_pin)
            ),
        };
        self.line(&format!(
            "\nLEDs: {n} APA102 ({wiring}), brightness {}/31.\n\
             Each LED in turn lights red, green, blue, white; all the others stay dark.",
            p.led_brightness
        ));
        for i in 0..n {
            self.say(&format!("  LED {}/{n}:", i + 1));
            for (name, color) in COLORS {
                let mut leds = self.dark();
                leds[i] = color;
                let f = self.frame(
                    leds,
                    &format!("L{}", i + 1),
                    self.config.panel.display_brightness as u8,
                );
                self.show(&f);
                self.say(&format!(" {name}"));
                self.pause(1).await;
            }
            self.line("");
        }
        let f = self.frame(
            vec![Rgb::new(255, 255, 255); n],
            "ALL",
            self.config.panel.display_brightness as u8,
        );
        self.show(&f);
        self.line(&format!("  all {n} LEDs white"));
        self.pause(3).await;
        self.line(
            "  An LED that stayed dark or showed a wrong colour: look at its solder joints.\n  \
             None lit, or only the first few: check 5 V (pins 2 and 4: early Blinkt!s take\n  \
             5 V on pin 2), GND (pin 6), data and clock.",
        );
    }

    /// Shows raw segments; false when the panel draws only characters
    /// (the simulated one), and the caller lights whole digits instead.
    fn raw_segments(&mut self, segments: [u8; 4], bright: u8) -> bool {
        match self.panel.show_segments(segments, bright) {
            Err(PanelError::Unavailable(why)) => {
                self.line(&format!(" ({why}; lighting whole digits instead)"));
                false
            }
            result => {
                self.note(result);
                true
            }
        }
    }

    async fn display(&mut self) {
        let p = &self.config.panel;
        let bright = p.display_brightness as u8;
        let kind = p.display;
        let module = match kind {
            DisplayKind::Colon => {
                "a \"colon\" module (the common clock module: a colon between digits 2 and 3, no decimal points)"
            }
            DisplayKind::Points => {
                "a \"points\" module (a decimal point after each digit, no colon)"
            }
        };
        self.line(&format!(
            "\nDisplay: TM1637 (CLK {}, DIO {}), brightness {bright}/7, set up as {module}.\n\
             Each digit, left to right, lights segments a to g one at a time, then the {}; the LEDs are dark.",
            pin_name(p.tm1637_clk_pin),
            pin_name(p.tm1637_dio_pin),
            match kind {
                DisplayKind::Colon => "colon",
                DisplayKind::Points => "points",
            }
        ));
        let f = self.frame(self.dark(), "", bright);
        self.show(&f);
        let mut raw = true;
        for digit in 0..4 {
            if !self.display_ok {
                break;
            }
            self.say(&format!("  digit {}:", digit + 1));
            if raw {
                for (bit, name) in SEGMENTS {
                    let mut segments = [0u8; 4];
                    segments[digit] = 1 << bit;
                    if !self.raw_segments(segments, bright) {
                        self.say(&format!("  digit {}:", digit + 1));
                        raw = false;
                        break;
                    }
                    if !self.display_ok {
                        break;
                    }
                    self.say(&format!(" {name}"));
                    self.pause(1).await;
                }
            }
            if !raw {
                let text: String = (0..4).map(|i| if i == digit { '8' } else { ' ' }).collect();
                let f = self.frame(self.dark(), &text, bright);
                self.show(&f);
                self.say(" 8 (all seven segments)");
                self.pause(2).await;
            }
            self.line("");
        }
        if self.display_ok {
            match kind {
                DisplayKind::Colon => self.colon(raw, bright).await,
                DisplayKind::Points => self.points(raw, bright).await,
            }
        }
        if self.display_ok {
            let all = match kind {
                DisplayKind::Colon => "8888",
                DisplayKind::Points => "8.8.8.8.",
            };
            self.say(&format!("  all digits {all} at brightness"));
            for b in 0..=7u8 {
                let f = self.frame(self.dark(), all, b);
                self.show(&f);
                self.say(&format!(" {b}"));
                self.pause(1).await;
            }
            self.line(" (each a little brighter)");
            self.line(
                "  A segment that stayed dark on one digit: the module, not the wiring.\n  \
                 Nothing at all: check VCC (pin 1) and GND (pin 39).",
            );
        }
    }

    /// The colon step: digit 2's bit 7 alone.
    async fn colon(&mut self, raw: bool, bright: u8) {
        self.say("  colon:");
        if raw {
            let mut segments = [0u8; 4];
            segments[COLON_DIGIT] = 0x80;
            if self.raw_segments(segments, bright) && self.display_ok {
                self.line(
                    " the colon between digits 2 and 3 lights, nothing else.\n  \
                     A point after digit 2 instead: this is a \"points\" module, set display = \"points\" under [panel].",
                );
                self.pause(2).await;
                return;
            }
        }
        self.line(" (shown on the module only: this panel draws it dark)");
    }

    /// The points step: each digit's bit 7 alone, left to right.
    async fn points(&mut self, raw: bool, bright: u8) {
        self.say("  points:");
        let mut raw = raw;
        for digit in 0..4 {
            if !self.display_ok {
                return;
            }
            if raw {
                let mut segments = [0u8; 4];
                segments[digit] = 0x80;
                raw = self.raw_segments(segments, bright);
            }
            if !raw {
                let text: String = (0..4)
                    .map(|i| if i == digit { " ." } else { " " })
                    .collect();
                let f = self.frame(self.dark(), &text, bright);
                self.show(&f);
            }
            self.say(&format!(" {}", digit + 1));
            self.pause(1).await;
        }
        self.line(
            " (the point after each digit in turn)\n  \
             Nothing lit, or the colon at point 2: this is a \"colon\" module, set display = \"colon\" under [panel].",
        );
    }

    /// The next edge of `button` with the given level, before `deadline`.
    /// Edges of the other button are reported (swapped wires).
    async fn edge(
        &mut self,
        button: Button,
        pressed: bool,
        deadline: Instant,
    ) -> Option<ButtonEdge> {
        loop {
            match tokio::time::timeout_at(deadline, self.edges.recv()).await {
                Ok(Some(edge)) if edge.button == button && edge.pressed == pressed => {
                    return Some(edge)
                }
                Ok(Some(edge)) if edge.button != button && edge.pressed => {
                    self.say(&format!(
                        " (that was the {} button)",
                        button_name(edge.button)
                    ));
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    }

    async fn buttons(&mut self, timeout: Duration) {
        let p = &self.config.panel;
        let pins = [
            (Button::Mode, p.mode_button_pin, "bt 1"),
            (Button::Power, p.power_button_pin, "bt 2"),
        ];
        self.line(&format!(
            "\nButtons (to GND, pin 9), {timeout:?} each.{}",
            if self.panel.name() == "sim" {
                " On the simulated panel: m = MODE, p = POWER."
            } else {
                ""
            }
        ));
        // The interrupt path may already be known dead: waiting for presses
        // that cannot arrive would only blame the wiring.
        let health = self.panel.health();
        if let Some((_, h)) = health
            .iter()
            .find(|(k, h)| *k == "buttons" && h.starts_with("error"))
        {
            self.problem(format!("buttons: {h}"));
            return;
        }
        while self.edges.try_recv().is_ok() {}
        let bright = self.config.panel.display_brightness as u8;
        for (button, bcm, label) in pins {
            let name = button_name(button);
            let f = self.frame(self.dark(), label, bright);
            self.show(&f);
            self.say(&format!("  press {name} now, {} ...", pin_name(bcm)));
            let Some(down) = self.edge(button, true, Instant::now() + timeout).await else {
                self.problem(format!(
                    "{name} button: no press within {timeout:?}. Check its wire to {} and the ground wire to pin 9.",
                    pin_name(bcm)
                ));
                continue;
            };
            let f = self.frame(vec![Rgb::new(0, 255, 0); self.dark().len()], label, bright);
            self.show(&f);
            self.say(" pressed");
            match self.edge(button, false, Instant::now() + timeout).await {
                Some(up) => self.line(&format!(
                    ", released after {} ms",
                    up.t_ms.saturating_sub(down.t_ms)
                )),
                None => self.problem(format!(
                    "{name} button: pressed but not released within {timeout:?}: is it shorted to GND?"
                )),
            }
            if button == Button::Power {
                self.line(
                    "  (the daemon would shut the Pi down after a 3 s hold; the selftest does not)",
                );
            }
        }
    }

    fn finish(&mut self) {
        let mut f = self.frame(self.dark(), "", 0);
        f.display_on = false;
        self.show(&f);
    }
}

fn button_name(b: Button) -> &'static str {
    match b {
        Button::Mode => "MODE",
        Button::Power => "POWER",
    }
}

/// Runs the whole selftest on `panel`; returns the problems it found
/// (empty: every step worked as far as the software can tell).
pub async fn run(
    panel: &mut dyn PanelOutput,
    edges: &mut mpsc::Receiver<ButtonEdge>,
    out: &mut dyn Write,
    clock: Clock,
    config: &Config,
    opts: Options,
) -> Vec<String> {
    let mut t = Selftest {
        panel,
        edges,
        out,
        clock,
        config,
        opts,
        problems: Vec::new(),
        display_ok: true,
        leds_ok: true,
    };
    let backend = t.panel.name();
    t.line(&format!("banlight selftest on the {backend} panel."));
    t.leds().await;
    t.display().await;
    match opts.button_timeout {
        Some(timeout) => t.buttons(timeout).await,
        None => t.line("\nButtons: skipped (--no-buttons)."),
    }
    t.finish();
    if t.problems.is_empty() {
        t.line("\nselftest done: no errors. If anything did not look as described, see the Wiring section of docs/install-pi.md.");
    } else {
        let n = t.problems.len();
        t.line(&format!("\nselftest found {n} problem(s):"));
        for p in t.problems.clone() {
            t.line(&format!("  - {p}"));
        }
    }
    t.problems
}

/// `banlight selftest`: the config (`--config`, else the installed one if
/// there is one, else the defaults), its panel backend, and the test.
/// With `report`, also writes a JSON report there (`selftest/report.rs`).
pub fn main(config: Option<&Path>, opts: Options, report: Option<&Path>) -> ExitCode {
    let config_source = match config {
        Some(path) => path.display().to_string(),
        None if Path::new(SYSTEM_CONFIG).exists() => SYSTEM_CONFIG.to_string(),
        None => "built-in defaults".to_string(),
    };
    let config = match config {
        Some(path) => Config::load(path),
        None if Path::new(SYSTEM_CONFIG).exists() => {
            println!("using {SYSTEM_CONFIG}");
            Config::load(Path::new(SYSTEM_CONFIG))
        }
        None => Ok(Config::defaults()),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Held until the selftest ends, when it could be taken: the service
    // cannot start underneath it either.
    let _lock = match crate::statelock::beside_a_daemon(&config) {
        Ok(lock) => lock,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The doctor's view for the report, taken before the selftest's panel
    // has the pins (and with the lock held: no daemon drives them).
    let doctor: Vec<String> = match report {
        Some(_) => crate::doctor::render(&crate::doctor::diagnose(&crate::doctor::gather_beside(
            &config, None,
        )))
        .lines()
        .map(str::to_string)
        .collect(),
        None => Vec::new(),
    };
    let result = runtime.block_on(async {
        let clock = Clock::start();
        let (tx, mut rx) = mpsc::channel(64);
        let mut panel = crate::panel::open(&config, clock, tx)?;
        // Above the simulated panel's in-place line, not under it.
        let mut stdout = crate::panel::sim::TextAbove;
        let mut out = report::Transcript::new(&mut stdout);
        let problems = run(panel.as_mut(), &mut rx, &mut out, clock, &config, opts).await;
        if let Some(path) = report {
            let facts = report::Facts {
                config: &config,
                config_source,
                backend: panel.name(),
                health: panel.health(),
                problems: &problems,
                transcript: out.lines(),
                opts,
                doctor,
            };
            report::write(path, &report::build(&facts))
                .map_err(|e| anyhow::anyhow!("cannot write the report {}: {e}", path.display()))?;
            let _ = writeln!(
                crate::panel::sim::TextAbove,
                "report written to {}",
                path.display()
            );
        }
        anyhow::Ok(problems)
    });
    crate::panel::sim::restore();
    match result {
        Ok(problems) if problems.is_empty() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Clone, PartialEq)]
    enum Drawn {
        Frame(Frame),
        Segments([u8; 4], u8),
    }

    /// Records what is drawn; when the display asks for a button ("bt 1",
    /// "bt 2") it sends the edges listed for that prompt, like a user would.
    struct Fake {
        drawn: Arc<Mutex<Vec<Drawn>>>,
        segments: bool,
        display_present: bool,
        presses: Vec<(&'static str, Button, bool, u64)>,
        tx: mpsc::Sender<ButtonEdge>,
    }

    impl PanelOutput for Fake {
        fn show(&mut self, frame: &Frame, _t: u64) -> Result<(), PanelError> {
            self.drawn.lock().unwrap().push(Drawn::Frame(frame.clone()));
            let text = frame.display.to_string();
            for (prompt, button, pressed, t_ms) in &self.presses {
                if text.trim_end() == *prompt && frame.leds.iter().all(|c| c.is_black()) {
                    let edge = ButtonEdge {
                        button: *button,
                        pressed: *pressed,
                        t_ms: *t_ms,
                    };
                    self.tx.try_send(edge).unwrap();
                }
            }
            if self.display_present {
                Ok(())
            } else {
                Err(PanelError::DisplayMissing("no ACK".into()))
            }
        }
        fn show_segments(&mut self, s: [u8; 4], b: u8) -> Result<(), PanelError> {
            if !self.segments {
                return Err(PanelError::Unavailable("text only".into()));
            }
            self.drawn.lock().unwrap().push(Drawn::Segments(s, b));
            if self.display_present {
                Ok(())
            } else {
                Err(PanelError::DisplayMissing("no ACK".into()))
            }
        }
        fn name(&self) -> &'static str {
            "fake"
        }
    }

    async fn selftest(
        kind: DisplayKind,
        segments: bool,
        display_present: bool,
        presses: &[(&'static str, Button, bool, u64)],
        buttons: Option<Duration>,
    ) -> (Vec<Drawn>, String, Vec<String>) {
        let drawn = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = mpsc::channel(64);
        let mut panel = Fake {
            drawn: drawn.clone(),
            segments,
            display_present,
            presses: presses.to_vec(),
            tx,
        };
        let mut config = Config::defaults();
        config.panel.display = kind;
        let mut out = Vec::new();
        let opts = Options {
            step: Duration::ZERO,
            button_timeout: buttons,
        };
        let problems = run(&mut panel, &mut rx, &mut out, Clock::start(), &config, opts).await;
        let drawn = drawn.lock().unwrap().clone();
        (drawn, String::from_utf8(out).unwrap(), problems)
    }

    fn segments(drawn: &[Drawn]) -> Vec<[u8; 4]> {
        drawn
            .iter()
            .filter_map(|d| match d {
                Drawn::Segments(s, 3) => Some(*s),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_points_module_gets_each_point_stepped() {
        let (drawn, out, problems) = selftest(DisplayKind::Points, true, true, &[], None).await;
        assert!(problems.is_empty(), "{problems:?}\n{out}");
        let segs = segments(&drawn);
        assert_eq!(segs.len(), 28 + 4);
        assert_eq!(
            segs[28..],
            [
                [0x80, 0, 0, 0],
                [0, 0x80, 0, 0],
                [0, 0, 0x80, 0],
                [0, 0, 0, 0x80]
            ]
        );
        assert!(segs[..28].iter().flatten().all(|s| s & 0x80 == 0));
        assert!(out.contains("a \"points\" module"), "{out}");
        assert!(out.contains("points: 1 2 3 4"), "{out}");
        let eights = frames(&drawn)
            .iter()
            .filter(|x| x.display.to_string() == "8.8.8.8.")
            .count();
        assert_eq!(eights, 8);
    }

    fn frames(drawn: &[Drawn]) -> Vec<Frame> {
        drawn
            .iter()
            .filter_map(|d| match d {
                Drawn::Frame(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn walks_every_led_and_segment_and_reads_both_buttons() {
        let presses = [
            ("bt 1", Button::Mode, true, 100),
            ("bt 1", Button::Mode, false, 220),
            ("bt 2", Button::Power, true, 400),
            ("bt 2", Button::Power, false, 480),
        ];
        let (drawn, out, problems) = selftest(
            DisplayKind::Colon,
            true,
            true,
            &presses,
            Some(Duration::from_secs(2)),
        )
        .await;
        assert!(problems.is_empty(), "{problems:?}\n{out}");
        let f = frames(&drawn);
        // 8 LEDs x 4 colours, one lit at a time, brightness at the config cap
        for i in 0..8 {
            for (c, (_, color)) in COLORS.iter().enumerate() {
                let frame = &f[i * 4 + c];
                assert_eq!(frame.led_brightness, 7);
                for (j, led) in frame.leds.iter().enumerate() {
                    assert_eq!(
                        *led,
                        if j == i { *color } else { Rgb::BLACK },
                        "step {i}/{c}"
                    );
                }
            }
        }
        assert_eq!(f[1].display.to_string(), "L1  ");
        assert!(f[32].leds.iter().all(|c| *c == Rgb::new(255, 255, 255)));
        // 4 digits x 7 segments, one bit at a time, then the colon alone
        let segs = segments(&drawn);
        assert_eq!(segs.len(), 29);
        assert_eq!(segs[0], [0x01, 0, 0, 0]);
        assert_eq!(segs[6], [0x40, 0, 0, 0]);
        assert_eq!(segs[8], [0, 0x02, 0, 0]);
        assert_eq!(segs[27], [0, 0, 0, 0x40]);
        assert_eq!(segs[28], [0, 0x80, 0, 0], "the colon step");
        assert!(out.contains("a \"colon\" module"), "{out}");
        assert!(
            out.contains("colon: the colon between digits 2 and 3 lights"),
            "{out}"
        );
        // the brightness walk, then dark at the end
        let eights: Vec<u8> = f
            .iter()
            .filter(|x| x.display.to_string() == "8888")
            .map(|x| x.display_brightness)
            .collect();
        assert_eq!(eights, (0..=7).collect::<Vec<u8>>());
        let last = f.last().unwrap();
        assert!(!last.display_on && last.leds.iter().all(|c| c.is_black()));
        assert!(out.contains("LED 8/8: red green blue white"), "{out}");
        assert!(out.contains("digit 4: a (top) b (upper right)"), "{out}");
        assert!(
            out.contains("press MODE now, BCM 17 (pin 11) ... pressed, released after 120 ms"),
            "{out}"
        );
        assert!(
            out.contains("press POWER now, BCM 3 (pin 5) ... pressed, released after 80 ms"),
            "{out}"
        );
        assert!(out.contains("no errors"), "{out}");
    }

    #[tokio::test]
    async fn text_only_panels_light_whole_digits() {
        let (drawn, out, problems) = selftest(DisplayKind::Points, false, true, &[], None).await;
        assert!(problems.is_empty(), "{problems:?}");
        let texts: Vec<String> = frames(&drawn)
            .iter()
            .map(|f| f.display.to_string())
            .collect();
        for t in [
            "8   ", " 8  ", "  8 ", "   8", " .   ", "  .  ", "   . ", "    .",
        ] {
            assert!(texts.iter().any(|x| x == t), "{t:?} in {texts:?}");
        }
        assert!(out.contains("lighting whole digits instead"), "{out}");
        assert!(out.contains("Buttons: skipped"), "{out}");
    }

    #[tokio::test]
    async fn a_missing_display_and_unpressed_buttons_are_problems() {
        // The user presses POWER when asked for MODE, and nothing after.
        let presses = [
            ("bt 1", Button::Power, true, 10),
            ("bt 1", Button::Power, false, 50),
        ];
        let (drawn, out, problems) = selftest(
            DisplayKind::Colon,
            true,
            false,
            &presses,
            Some(Duration::from_millis(200)),
        )
        .await;
        assert_eq!(problems.len(), 3, "{problems:?}\n{out}");
        assert!(problems[0].contains("display") && problems[0].contains("BCM 5 (pin 29)"));
        assert!(problems[1].contains("MODE button: no press"));
        assert!(
            problems[2].contains("POWER button: no press"),
            "{problems:?}"
        );
        assert!(out.contains("(that was the POWER button)"), "{out}");
        // the LED walk still ran in full
        assert!(frames(&drawn).len() >= 33);
        assert!(out.contains("selftest found 3 problem(s)"));
    }
}
