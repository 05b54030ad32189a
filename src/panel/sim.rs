//! The simulated panel: on a terminal, the 8 LEDs (true-colour blocks) and the
//! display on one line that updates in place, and keys that press the buttons:
//! `m` = mode, `p` = power (short press), `P` = power held 3.5 s (shutdown).
//! Without a terminal (`cargo run --release | tee log`, systemd), display
//! changes and sweeps become compact log lines instead. The display is drawn
//! as the configured module: exactly four cells, with the colon or the
//! points where that module has them.

use std::io::{IsTerminal, Read, Write};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{ButtonEdge, Clock, PanelError, PanelOutput};
use crate::core::buttons::Button;
use crate::core::color::Rgb;
use crate::core::display::{DisplayKind, COLON_DIGIT};
use crate::core::scene::Frame;

/// The panel line last drawn on the terminal, so log lines can be written
/// above it instead of being glued to its end.
static PANEL_LINE: Mutex<Option<String>> = Mutex::new(None);

/// Log output (stderr) that keeps the simulated panel's line intact: clear
/// the line, write the log record, draw the panel line again below it.
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = PANEL_LINE.lock().map(|l| l.clone()).unwrap_or(None);
        let mut err = std::io::stderr().lock();
        match line {
            Some(panel) if std::io::stderr().is_terminal() => {
                err.write_all(b"\r\x1b[2K")?;
                err.write_all(buf)?;
                err.write_all(panel.as_bytes())?;
            }
            _ => err.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

pub struct SimPanel {
    tty: bool,
    kind: DisplayKind,
    last_display: Option<(String, bool)>,
}

/// The terminal settings to restore at exit (set only if we changed them).
static SAVED_TERMIOS: OnceLock<libc::termios> = OnceLock::new();

extern "C" fn restore_terminal() {
    if let Some(saved) = SAVED_TERMIOS.get() {
        // SAFETY: tcsetattr on stdin with a termios obtained from tcgetattr.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
        }
    }
}

/// Key presses without Enter and without echo; Ctrl-C still sends SIGINT.
fn enter_cbreak_mode() -> bool {
    // SAFETY: plain termios calls on stdin with a zeroed struct that tcgetattr fills.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
            return false;
        }
        if SAVED_TERMIOS.set(t).is_ok() {
            libc::atexit(restore_terminal);
        }
        t.c_lflag &= !(libc::ICANON | libc::ECHO);
        t.c_cc[libc::VMIN] = 1;
        t.c_cc[libc::VTIME] = 0;
        libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) == 0
    }
}

/// Restores the terminal (call before exit; also registered with atexit).
pub fn restore() {
    restore_terminal();
}

fn press(tx: &mpsc::Sender<ButtonEdge>, clock: Clock, button: Button, hold: Duration) -> bool {
    let down = ButtonEdge {
        button,
        pressed: true,
        t_ms: clock.now_ms(),
    };
    if tx.blocking_send(down).is_err() {
        return false;
    }
    std::thread::sleep(hold);
    let up = ButtonEdge {
        button,
        pressed: false,
        t_ms: clock.now_ms(),
    };
    tx.blocking_send(up).is_ok()
}

impl SimPanel {
    pub fn start(clock: Clock, buttons: mpsc::Sender<ButtonEdge>, kind: DisplayKind) -> Self {
        let tty = std::io::stdout().is_terminal();
        if tty {
            tracing::info!(
                "simulated panel: drawing the LEDs and a {} display on one terminal line (stdout), updated in place",
                kind.name()
            );
        } else {
            tracing::info!(
                "simulated panel: stdout is not a terminal, so no panel line is drawn; logging one line per display change and one per sweep instead ({} display)",
                kind.name()
            );
        }
        if std::io::stdin().is_terminal() && enter_cbreak_mode() {
            tracing::info!("simulated panel: press m = mode button, p = power button, P = hold power 3.5 s (shutdown)");
            std::thread::Builder::new()
                .name("sim-keys".into())
                .spawn(move || {
                    let mut stdin = std::io::stdin().lock();
                    let mut byte = [0u8; 1];
                    while let Ok(1) = stdin.read(&mut byte) {
                        let ok = match byte[0] {
                            b'm' | b'M' => {
                                press(&buttons, clock, Button::Mode, Duration::from_millis(80))
                            }
                            b'p' => {
                                press(&buttons, clock, Button::Power, Duration::from_millis(150))
                            }
                            b'P' => {
                                press(&buttons, clock, Button::Power, Duration::from_millis(3500))
                            }
                            _ => true,
                        };
                        if !ok {
                            break;
                        }
                    }
                })
                .expect("spawn key reader");
        }
        SimPanel {
            tty,
            kind,
            last_display: None,
        }
    }
}

const DIM: &str = "\x1b[38;2;60;60;60m";
const LIT: &str = "\x1b[1;38;2;255;40;40m";
const RESET: &str = "\x1b[0m";

/// The four digit cells as the module looks: lit characters, and the colon
/// (colon module, between digits 2 and 3) or a point after each digit
/// (points module), lit or dim. A dark display shows every cell dim.
fn display_cells(frame: &Frame, kind: DisplayKind) -> String {
    let on = frame.display_on;
    let mut out = String::new();
    for (i, cell) in frame.display.cells().iter().enumerate() {
        let ch = if on { cell.ch } else { '8' };
        out.push_str(if on { LIT } else { DIM });
        out.push(ch);
        match kind {
            DisplayKind::Points => {
                out.push_str(if on && cell.dot { LIT } else { DIM });
                out.push('.');
            }
            // The colon is never lit by a frame (see `segments_on`).
            DisplayKind::Colon if i == COLON_DIGIT => {
                out.push_str(DIM);
                out.push(':');
            }
            DisplayKind::Colon => {}
        }
    }
    out.push_str(RESET);
    out
}

/// One terminal line: LEDs as coloured blocks, then the 4-digit display.
pub fn render_line(frame: &Frame, kind: DisplayKind) -> String {
    let mut line = String::from("\r");
    for c in &frame.leds {
        if c.is_black() {
            line.push_str(DIM);
            line.push_str("··");
        } else {
            line.push_str(&format!("\x1b[38;2;{};{};{}m██", c.r, c.g, c.b));
        }
        line.push(' ');
    }
    line.push_str(&format!(
        "{RESET} [{}]{}",
        display_cells(frame, kind),
        if frame.display_on { "" } else { " dark" }
    ));
    line.push_str("\x1b[K");
    line
}

/// The compact log line for a sweep (stdout not a terminal).
pub fn sweep_line(route: &str, color: Rgb, events: u64) -> String {
    if events > 1 {
        format!("sweep {route} {color} (stands for {events} events)")
    } else {
        format!("sweep {route} {color}")
    }
}

impl PanelOutput for SimPanel {
    fn show(&mut self, frame: &Frame, _t_ms: u64) -> Result<(), PanelError> {
        if self.tty {
            let line = render_line(frame, self.kind);
            let mut out = std::io::stdout().lock();
            out.write_all(line.as_bytes())?;
            out.flush()?;
            if let Ok(mut saved) = PANEL_LINE.lock() {
                *saved = Some(line);
            }
        } else {
            let now = (frame.display.shown_on(self.kind), frame.display_on);
            if self.last_display.as_ref() != Some(&now) {
                if now.1 {
                    tracing::info!(display = %format!("[{}]", now.0), "panel");
                } else {
                    tracing::info!("panel dark");
                }
                self.last_display = Some(now);
            }
        }
        Ok(())
    }

    fn sweep_started(&mut self, route: &str, color: Rgb, events: u64) {
        if !self.tty {
            tracing::info!("{}", sweep_line(route, color, events));
        }
    }

    fn name(&self) -> &'static str {
        "sim"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::display::DisplayText;

    fn frame(text: &str, on: bool) -> Frame {
        Frame {
            leds: vec![Rgb::BLACK, Rgb::new(255, 0, 0)],
            led_brightness: 7,
            display: DisplayText::parse_right(text).unwrap(),
            display_on: on,
            display_brightness: 3,
        }
    }

    /// What a reader sees: the line without its colour codes.
    fn visible(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else if c != '\r' {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn the_display_is_four_cells_with_the_modules_colon_or_points() {
        let colon = visible(&render_line(&frame("42", true), DisplayKind::Colon));
        assert_eq!(colon, "·· ██  [  :42]");
        let points = visible(&render_line(&frame("1.5", true), DisplayKind::Points));
        assert_eq!(points, "·· ██  [ . .1.5.]");
        let dark = visible(&render_line(&frame("42", false), DisplayKind::Colon));
        assert_eq!(dark, "·· ██  [88:88] dark");
        // the colon is drawn, never lit, even for a text with a point there
        let line = render_line(&frame("1.5", true), DisplayKind::Colon);
        assert!(line.contains(&format!("{DIM}:")), "{line:?}");
        let line = render_line(&frame("1.5", true), DisplayKind::Points);
        assert!(line.contains(&format!("1{LIT}.")), "{line:?}");
    }

    #[test]
    fn a_sweep_is_one_compact_line() {
        let red = Rgb::new(255, 0, 0);
        assert_eq!(sweep_line("red", red, 1), "sweep red #ff0000");
        assert_eq!(
            sweep_line("red", red, 57),
            "sweep red #ff0000 (stands for 57 events)"
        );
    }
}
