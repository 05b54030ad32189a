//! `banlight brightness LEDS DISPLAY`: set both brightnesses until a
//! restart or reload.

use serde::{Deserialize, Serialize};

use crate::admin::Client;
use crate::control::{Control, ControlRequest};
use crate::engine::EngineMsg;

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub leds: u8,
    pub display: u8,
}

pub(super) fn apply(control: &Control, leds: u8, display: u8) -> Result<Reply, String> {
    if leds > 31 || display > 7 {
        return Err("brightness: LEDs take 0-31, the display 0-7".into());
    }
    control.engine.send(EngineMsg::Brightness(leds, display));
    Ok(Reply { leds, display })
}

pub(super) fn run(client: &Client, leds: u8, display: u8) -> Result<(), String> {
    let r: Reply = client.ask(&ControlRequest::Brightness { leds, display })?;
    println!("brightness: LEDs {}/31, display {}/7 (until a restart or reload; set led_brightness and display_brightness in the config to keep it)", r.leds, r.display);
    Ok(())
}
