//! `banlight press mode|power [--hold DUR]`: press a panel button from the
//! CLI. The press and the release enter the engine as `EngineMsg::Button`
//! edges stamped on the panel clock, exactly where a GPIO interrupt's edges
//! enter (the backends' button channel is forwarded as that message), so
//! debounce, the short press (next mode / panel dark) and the long press
//! (shutdown) behave as on the hardware, on every backend.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::admin::Client;
use crate::control::{Control, ControlRequest};
use crate::core::buttons::Button;
use crate::engine::EngineMsg;
use crate::panel::ButtonEdge;

/// A press the CLI asks for when `--hold` is not given: longer than the
/// debounce, far shorter than a long press.
pub const DEFAULT_HOLD_MS: u64 = 100;
/// The longest hold: the CLI waits for the release (its read timeout is 30 s).
pub const MAX_HOLD_MS: u64 = 20_000;

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub button: String,
    pub held_ms: u64,
}

/// The button a name means.
pub fn parse_button(name: &str) -> Result<Button, String> {
    match name.to_ascii_lowercase().as_str() {
        "mode" => Ok(Button::Mode),
        "power" => Ok(Button::Power),
        other => Err(format!("no button \"{other}\": use mode or power")),
    }
}

pub(super) async fn apply(
    control: &Control,
    button: String,
    hold_ms: u64,
) -> Result<Reply, String> {
    let which = parse_button(&button)?;
    if hold_ms > MAX_HOLD_MS {
        return Err(format!(
            "--hold {hold_ms}ms is longer than the {MAX_HOLD_MS}ms a press may last"
        ));
    }
    let edge = |pressed| {
        EngineMsg::Button(ButtonEdge {
            button: which,
            pressed,
            t_ms: control.clock.now_ms(),
        })
    };
    control.engine.send(edge(true));
    tokio::time::sleep(Duration::from_millis(hold_ms)).await;
    control.engine.send(edge(false));
    tracing::info!(button = %button, held_ms = hold_ms, "button pressed from the control socket");
    Ok(Reply {
        button: button.to_ascii_lowercase(),
        held_ms: hold_ms,
    })
}

pub(super) fn run(client: &Client, button: String, hold_ms: u64) -> Result<(), String> {
    parse_button(&button)?;
    let r: Reply = client.ask(&ControlRequest::Press { button, hold_ms })?;
    println!("pressed {} for {} ms", r.button, r.held_ms);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_names() {
        assert_eq!(parse_button("power"), Ok(Button::Power));
        assert_eq!(parse_button("MODE"), Ok(Button::Mode));
        let e = parse_button("reset").unwrap_err();
        assert!(e.contains("use mode or power"), "{e}");
    }
}
