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

/// The selftest's unfinished line ("  LED 1/8: red green"), kept on the
/// terminal line just above the panel line while more of it comes.
static UNFINISHED: Mutex<String> = Mutex::new(String::new());

/// What to write so that `text` appears above the panel line instead of
/// being overwritten by its next redraw: clear the panel line, go back onto
/// the unfinished line if there is one, write it with `text`, and end with
/// the panel line redrawn below. The cursor is on the panel line before and
/// after, which is where `show` draws in place.
pub fn above_the_panel(unfinished: &mut String, text: &str, panel: &str) -> String {
    let mut out = String::from("\r\x1b[2K");
    if !unfinished.is_empty() {
        out.push_str("\x1b[1A\r\x1b[2K");
    }
    let all = std::mem::take(unfinished) + text;
    let (done, rest) = match all.rfind('\n') {
        Some(i) => all.split_at(i + 1),
        None => ("", all.as_str()),
    };
    out.push_str(done);
    if !rest.is_empty() {
        out.push_str(rest);
        out.push('\n');
    }
    *unfinished = rest.to_string();
    out.push_str(panel);
    out
}

/// Stdout for text printed while the simulated panel draws its line (the
/// selftest): the text goes above the panel line, never under its redraws.
pub struct TextAbove;

impl std::io::Write for TextAbove {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = PANEL_LINE.lock().map(|l| l.clone()).unwrap_or(None);
        let mut out = std::io::stdout().lock();
        match line {
            Some(panel) => {
                let mut unfinished = UNFINISHED.lock().unwrap_or_else(|e| e.into_inner());
                let text = String::from_utf8_lossy(buf);
                out.write_all(above_the_panel(&mut unfinished, &text, &panel).as_bytes())?;
            }
            None => out.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
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

/// Restores the terminal and ends the panel line, so the shell's prompt
/// (or what is printed next) starts on a line of its own. Call before exit;
/// the terminal part is also registered with atexit.
pub fn restore() {
    restore_terminal();
    if let Ok(mut line) = PANEL_LINE.lock() {
        if line.take().is_some() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"\n");
            let _ = out.flush();
        }
    }
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

    /// The screen a terminal shows for `bytes` (enough of VT100 for the
    /// panel: CR, LF, erase line, cursor up; colours ignored).
    fn screen(bytes: &str) -> Vec<String> {
        let (mut rows, mut row, mut col) = (vec![String::new()], 0usize, 0usize);
        let mut chars = bytes.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => col = 0,
                '\n' => {
                    row += 1;
                    col = 0;
                    if rows.len() <= row {
                        rows.push(String::new());
                    }
                }
                '\x1b' => {
                    let mut seq = String::new();
                    for c in chars.by_ref() {
                        seq.push(c);
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                    match seq.as_str() {
                        "[2K" => rows[row].clear(),
                        "[K" => rows[row] = rows[row].chars().take(col).collect(),
                        "[1A" => row = row.saturating_sub(1),
                        _ => {}
                    }
                }
                c => {
                    let mut line: Vec<char> = rows[row].chars().collect();
                    line.resize(line.len().max(col), ' ');
                    if col < line.len() {
                        line[col] = c;
                    } else {
                        line.push(c);
                    }
                    rows[row] = line.into_iter().collect();
                    col += 1;
                }
            }
        }
        rows
    }

    #[test]
    fn the_selftests_text_stays_above_the_panel_line_and_the_line_ends_at_exit() {
        let panel = |text: &str| render_line(&frame(text, true), DisplayKind::Colon);
        let mut unfinished = String::new();
        let mut tty = panel("1");
        tty += &above_the_panel(&mut unfinished, "  LED 1/8:", &panel("2"));
        tty += &panel("3"); // the panel redraws in place meanwhile
        tty += &above_the_panel(&mut unfinished, " red", &panel("3"));
        tty += &panel("4");
        tty += &above_the_panel(&mut unfinished, " green\nButtons: skipped\n", &panel("5"));
        tty += &panel("6");
        tty += "\n"; // restore(): the panel line ends
        let rows: Vec<String> = screen(&tty).iter().map(|r| visible(r)).collect();
        assert_eq!(
            rows,
            [
                "  LED 1/8: red green",
                "Buttons: skipped",
                "·· ██  [  : 6]",
                ""
            ]
        );
        // Without it, the redraw overwrites the text.
        let mut plain = panel("1") + "  LED 1/8:" + &panel("2");
        plain += " red";
        let rows: Vec<String> = screen(&plain).iter().map(|r| visible(r)).collect();
        assert!(
            !rows[0].contains("LED"),
            "the harness must see the overwrite: {rows:?}"
        );
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
