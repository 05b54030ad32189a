//! `banlight tls rotate [--now]`: make the next TLS key; both pins are
//! accepted for `[tls] overlap`, then the new key takes over.

use serde::{Deserialize, Serialize};

use crate::admin::Client;
use crate::clock::wall_ms;
use crate::control::{Control, ControlRequest};
use crate::core::time::rfc3339_utc;

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    /// The pins servers should trust, the current key's first.
    pub pins: Vec<String>,
    /// When the new key takes over (RFC 3339).
    pub switch_at: String,
}

pub(super) fn apply(control: &Control, now: bool) -> Result<Reply, String> {
    let Some(tls) = &control.tls else {
        return Err("TLS is off: add a [tls] table with `listen` to the config".into());
    };
    let overlap = if now {
        0
    } else {
        let c = control.config.lock().expect("config lock");
        c.tls.map_or(0, |t| t.overlap.0)
    };
    let (pins, at) = tls.rotate(wall_ms(), overlap)?;
    Ok(Reply {
        pins,
        switch_at: rfc3339_utc(at),
    })
}

pub(super) fn run(client: &Client, now: bool) -> Result<(), String> {
    let r: Reply = client.ask(&ControlRequest::TlsRotate { now })?;
    if now {
        println!(
            "switched to a new TLS key: {}",
            r.pins.last().map_or("", String::as_str)
        );
        println!("servers with the old pin fail until their snippet is updated (banlight hook)");
    } else {
        println!(
            "new TLS key made; until {} the appliance keeps the current key and",
            r.switch_at
        );
        println!("servers should trust both keys ({}).", r.pins.join(", "));
        println!(
            "Before then, run `banlight hook` again and on every server store its certificate"
        );
        println!(
            "file (both certificates) and its action line (both pins); then the appliance switches."
        );
    }
    Ok(())
}
