//! The maintenance commands, one file each (after mini-redis's `cmd/`):
//! what the daemon does with the request, its typed reply, and what the CLI
//! prints. The daemon side is `Control::handle`; the CLI side is `run`.
//! `hook` is the one command that needs no daemon (it reads the config).

pub mod brightness;
pub mod events;
pub mod hook;
pub mod mode;
pub mod press;
pub mod reload;
pub mod reset;
pub mod status;
mod table;
pub mod test;
pub mod tls;

use serde::Serialize;
use serde_json::{json, Value};

use crate::admin::Client;
use crate::cli::{Command, TlsCommand};
use crate::config::Config;
use crate::control::{Control, ControlRequest};

impl Control {
    /// One request from the control socket, answered as one JSON object
    /// with `"ok"`: the command's reply, or `"error"`.
    pub async fn handle(&self, req: ControlRequest) -> Value {
        match req {
            ControlRequest::Status => answer(Ok(status::apply(self))),
            ControlRequest::Events {
                since_ms,
                route,
                limit,
                ignored,
            } => answer(events::apply(self, since_ms, route, limit, ignored).await),
            ControlRequest::Test { route } => answer(test::apply(self, route)),
            ControlRequest::Reset { route } => answer(reset::apply(self, route).await),
            ControlRequest::Brightness { leds, display } => {
                answer(brightness::apply(self, leds, display))
            }
            ControlRequest::Mode { mode } => answer(mode::apply(self, mode).await),
            ControlRequest::Press { button, hold_ms } => {
                answer(press::apply(self, button, hold_ms).await)
            }
            ControlRequest::Reload => answer(reload::apply(self).await),
            ControlRequest::TlsRotate { now } => answer(tls::apply(self, now)),
        }
    }
}

/// `{"ok": true, ...reply}` or `{"ok": false, "error": ...}`.
fn answer<T: Serialize>(reply: Result<T, String>) -> Value {
    match reply.map(|r| serde_json::to_value(r).map_err(|e| e.to_string())) {
        Ok(Ok(mut v)) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("ok".into(), json!(true));
            }
            v
        }
        Ok(Err(e)) | Err(e) => json!({"ok": false, "error": e}),
    }
}

/// Runs a maintenance command from the command line; `Err` is the message
/// for stderr.
pub fn run(command: Command, config: &Config, client: &Client) -> Result<(), String> {
    match command {
        Command::Status { json } => status::run(client, json),
        Command::Events {
            since,
            route,
            limit,
            ignored,
            json,
        } => events::run(client, &since, route, limit, ignored, json),
        Command::Test { route } => test::run(client, route),
        Command::Reset { route, yes } => reset::run(client, route, yes),
        Command::Brightness { leds, display } => brightness::run(client, leds, display),
        Command::Mode { mode } => mode::run(client, mode),
        Command::Press { button, hold } => {
            press::run(client, button, hold.map_or(press::DEFAULT_HOLD_MS, |h| h.0))
        }
        Command::Reload => reload::run(client),
        Command::Tls {
            action: TlsCommand::Rotate { now },
        } => tls::run(client, now),
        Command::Hook {
            route,
            jail,
            host,
            source,
        } => hook::run(config, &route, &jail, host, source.as_deref()),
        Command::Run | Command::CheckConfig { .. } | Command::Selftest { .. } => {
            unreachable!("not a maintenance command")
        }
    }
}
