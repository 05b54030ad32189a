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

use std::path::Path;

use crate::admin::{Client, ClientError};
use crate::cli::{Command, TlsCommand, SYSTEM_CONFIG};
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
            ControlRequest::ConfigPath => answer(Ok(hook::config_path(self))),
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

/// The config a maintenance command uses: --config, else the system file,
/// else the one the running daemon read (asked over its socket), else the
/// built-in defaults, said out loud: they are open (no tokens, no sources),
/// so a snippet printed from them would not match the daemon. Only `hook`
/// reads the config's contents; the others need only its socket, and fail
/// on their own without a daemon.
pub fn config_for_cli(
    command: &Command,
    explicit: Option<&Path>,
    socket: Option<&Path>,
) -> Result<Config, String> {
    if let Some(path) = explicit {
        return Config::load(path).map_err(|e| e.to_string());
    }
    if Path::new(SYSTEM_CONFIG).exists() {
        return Config::load(Path::new(SYSTEM_CONFIG)).map_err(|e| e.to_string());
    }
    let defaults = Config::defaults();
    if !matches!(command, Command::Hook { .. }) {
        return Ok(defaults);
    }
    match Client::new(socket, &defaults).ask::<hook::ConfigPathReply>(&ControlRequest::ConfigPath) {
        Ok(hook::ConfigPathReply { path: Some(path) }) => {
            eprintln!(
                "note: no --config given: using the running daemon's config, {}",
                path.display()
            );
            Config::load(&path).map_err(|e| format!("the running daemon's config: {e}"))
        }
        // The daemon itself runs on the defaults: they are the truth.
        Ok(hook::ConfigPathReply { path: None }) => Ok(defaults),
        Err(ClientError::NotRunning { .. }) => {
            eprintln!(
                "warning: no --config given, no {SYSTEM_CONFIG} and no running daemon: using the \
                 built-in defaults (open: no tokens, no sources). Pass --config FILE for your desk's config."
            );
            Ok(defaults)
        }
        Err(e) => Err(format!(
            "no --config given and the running daemon's config is unknown: {e}"
        )),
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
            script,
        } => hook::run(config, &route, &jail, host, source.as_deref(), script),
        Command::Run | Command::CheckConfig { .. } | Command::Selftest { .. } | Command::Doctor => {
            unreachable!("not a maintenance command")
        }
    }
}
