//! `banlight mode NEXT|total|24h|ROUTE`: what the display counts.

use serde::{Deserialize, Serialize};

use crate::admin::Client;
use crate::control::{Control, ControlRequest};

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    /// The mode now shown.
    pub mode: String,
}

pub(super) async fn apply(control: &Control, mode: String) -> Result<Reply, String> {
    let mode = control.engine.set_mode(mode).await?;
    Ok(Reply { mode })
}

pub(super) fn run(client: &Client, mode: String) -> Result<(), String> {
    let r: Reply = client.ask(&ControlRequest::Mode {
        mode: mode.to_lowercase(),
    })?;
    println!("mode: {}", r.mode);
    Ok(())
}
