//! `banlight reload` (and SIGHUP): re-read the config file. A bad file
//! changes nothing; what cannot change while running is named in the reply.

use serde::{Deserialize, Serialize};

use crate::admin::Client;
use crate::config::Config;
use crate::control::{Control, ControlRequest};
use crate::engine::EngineMsg;
use crate::state::Routing;

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    /// The file, its routes and sources, and what needs a restart.
    pub reloaded: String,
}

pub(super) async fn apply(control: &Control) -> Result<Reply, String> {
    control.reload().await.map(|reloaded| Reply { reloaded })
}

pub(super) fn run(client: &Client) -> Result<(), String> {
    let r: Reply = client.ask(&ControlRequest::Reload)?;
    println!("reloaded {}", r.reloaded);
    Ok(())
}

impl Control {
    /// Re-reads the config file; a bad file changes nothing.
    pub async fn reload(&self) -> Result<String, String> {
        let path = {
            let current = self.config.lock().expect("config lock");
            current.source.clone()
        };
        let Some(path) = path else {
            return Err(
                "banlight runs on built-in defaults (no --config): there is no file to reload"
                    .into(),
            );
        };
        let new = Config::load(&path).map_err(|e| {
            tracing::error!("reload rejected, the old config stays in force: {e}");
            format!("{e} (the old config stays in force)")
        })?;
        let mut restart_needed = Vec::new();
        {
            let old = self.config.lock().expect("config lock");
            let (o, n) = (&old.panel, &new.panel);
            let checks = [
                (
                    "listen",
                    old.listen != new.listen || old.plain_http != new.plain_http,
                ),
                (
                    "tls.listen",
                    old.tls.map(|t| t.listen) != new.tls.map(|t| t.listen),
                ),
                ("state_dir", old.state_dir != new.state_dir),
                ("control_socket", old.control_socket != new.control_socket),
                ("retention_days", old.retention_days != new.retention_days),
                ("max_events", old.max_events != new.max_events),
                (
                    "shutdown_command",
                    old.shutdown_command != new.shutdown_command,
                ),
                (
                    "max_connections",
                    old.max_connections != new.max_connections,
                ),
                (
                    "max_connections_per_client",
                    old.max_connections_per_client != new.max_connections_per_client,
                ),
                (
                    "header_timeout",
                    old.header_timeout_ms != new.header_timeout_ms,
                ),
                ("panel.backend", o.backend != n.backend),
                ("[mqtt]", old.mqtt != new.mqtt),
                ("panel.record_path", o.record_path != n.record_path),
                ("panel.led_count", o.led_count != n.led_count),
                ("panel.led_spi", o.led_spi != n.led_spi),
                (
                    "panel pins",
                    (
                        o.blinkt_data_pin,
                        o.blinkt_clock_pin,
                        o.tm1637_clk_pin,
                        o.tm1637_dio_pin,
                    ) != (
                        n.blinkt_data_pin,
                        n.blinkt_clock_pin,
                        n.tm1637_clk_pin,
                        n.tm1637_dio_pin,
                    ) || (o.mode_button_pin, o.power_button_pin)
                        != (n.mode_button_pin, n.power_button_pin),
                ),
            ];
            restart_needed.extend(
                checks
                    .iter()
                    .filter(|(_, changed)| *changed)
                    .map(|(k, _)| *k),
            );
        }
        self.state.set_routing(Routing::of(&new));
        self.state.heartbeats.configure(&new);
        self.state
            .limiter
            .lock()
            .expect("limiter lock")
            .set_limit(new.rate_limit_rule());
        self.ledger.set_dedupe_window(new.dedupe_window_ms).await;
        self.engine.send(EngineMsg::Quiet(new.quiet.clone()));
        let mut settings = new.scene_settings();
        // led_count needs a restart (the strip is opened with it)
        settings.sweep.led_count =
            self.config.lock().expect("config lock").panel.led_count as usize;
        let display = settings.display_brightness;
        self.engine.send(EngineMsg::Reconfigure(
            settings,
            new.route_looks(),
            new.button_timing(),
        ));
        self.engine
            .restore_kept_brightness(&self.ledger, display)
            .await;
        let mut summary = format!(
            "{}: {} routes, {} sources",
            path.display(),
            new.routes.len(),
            new.sources.len()
        );
        if !restart_needed.is_empty() {
            summary.push_str(&format!(
                "; restart banlight to apply {}",
                restart_needed.join(", ")
            ));
        }
        tracing::info!("config reloaded: {summary}");
        *self.config.lock().expect("config lock") = new;
        Ok(summary)
    }
}
