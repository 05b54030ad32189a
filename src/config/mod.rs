//! The TOML configuration: schema, defaults, and errors that name the file,
//! line and key. Defaults are documented in `banlight.example.toml`, which a
//! test parses so the two cannot drift.
//!
//! `raw` is the file as written (serde); each section is checked in its own
//! module (`routes`, `sources`, `quiet`, `mqtt`, `panel`, `paths`), and
//! `error` turns toml's spans into file, line and key.

mod error;
mod mqtt;
mod panel;
mod paths;
mod quiet;
mod raw;
mod routes;
mod sources;
mod values;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::core::larson::SweepShape;
use crate::core::scene::{RouteLook, SceneSettings};

pub use error::ConfigError;
pub use mqtt::{MqttConfig, MqttPassword, DEFAULT_DISCOVERY_PREFIX, DEFAULT_HOOKS_TOPIC};
pub use panel::{Backend, PanelConfig};
pub use paths::{default_control_socket, default_state_dir};
pub use raw::{RateLimitConfig, RouteConfig, TlsConfig, WebConfig};
pub use routes::Route;
pub use sources::{Source, MIN_HEARTBEAT_MS, MIN_TOKEN_LEN};
pub use values::{Color, Label, Millis};

use error::Locator;
use raw::{RawConfig, DEFAULT_LISTEN};

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where it was read from (`None`: built-in defaults).
    pub source: Option<PathBuf>,
    /// The plain HTTP listener's address (default 127.0.0.1:8080).
    pub listen: SocketAddr,
    /// Whether plain HTTP is served: always without `[tls]`; with it only
    /// when the file sets `listen`.
    pub plain_http: bool,
    pub state_dir: PathBuf,
    /// Unix socket for the maintenance CLI.
    pub control_socket: PathBuf,
    pub rate_limit: RateLimitConfig,
    pub sources: Vec<Source>,
    pub dedupe_window_ms: u64,
    pub retention_days: u64,
    /// The event log keeps at most this many (newest) events; counts are kept.
    pub max_events: u64,
    /// Program and arguments, run without a shell.
    pub shutdown_command: Vec<String>,
    /// Whether the file sets `shutdown_command` (else the default is used,
    /// which a simulated panel only pretends to run).
    pub shutdown_command_set: bool,
    pub max_connections: usize,
    /// Per client address (IPv6 per /64), so one host cannot hold every slot.
    pub max_connections_per_client: usize,
    pub header_timeout_ms: u64,
    pub panel: PanelConfig,
    pub routes: Vec<Route>,
    /// Hooks for addresses in these networks are logged, never counted.
    pub ignore: crate::core::ignore::IgnoreList,
    /// `[quiet]`: when the panel stays dark or dim, in local time.
    pub quiet: crate::core::quiet::QuietHours,
    /// `[tls]`: serve TLS (and plain HTTP only if `listen` is set).
    pub tls: Option<TlsConfig>,
    /// `[web]`: the live page at `/`.
    pub web: WebConfig,
    /// `[mqtt]`: publish events and state to a broker (and take hooks from it).
    pub mqtt: Option<MqttConfig>,
}

impl Config {
    /// Built-in defaults (no config file).
    pub fn defaults() -> Config {
        Self::from_raw(&Locator::new(None, ""), RawConfig::default()).expect("defaults are valid")
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: None,
            key: None,
            message: format!("cannot read the file: {e}"),
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let loc = Locator::new(Some(path), text);
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let message = error::with_suggestion(e.message().trim());
            match e.span() {
                Some(span) => loc.at(span.start, message),
                None => ConfigError {
                    file: path.to_path_buf(),
                    line: None,
                    key: None,
                    message,
                },
            }
        })?;
        Self::from_raw(&loc, raw)
    }

    /// Each section checked in turn; the first problem is the error.
    fn from_raw(loc: &Locator, raw: RawConfig) -> Result<Config, ConfigError> {
        let routes = routes::routes(
            &raw.route,
            raw.panel.led_count as usize,
            raw.panel.display,
            loc,
        )?;
        let quiet = quiet::quiet(&raw.quiet, loc)?;
        let shutdown_command: Vec<String> = raw
            .shutdown_command
            .get_ref()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if shutdown_command.is_empty() {
            return Err(loc.at(
                raw.shutdown_command.span().start,
                "shutdown_command is empty; the default is \"systemctl poweroff\"".into(),
            ));
        }
        raw.panel.check(loc)?;
        let sources = sources::sources(&raw.source, &routes, loc)?;
        let state_dir = raw.state_dir.unwrap_or_else(default_state_dir);
        let control_socket = raw
            .control_socket
            .unwrap_or_else(|| default_control_socket(&state_dir));
        paths::check_control_socket(&control_socket, &state_dir, loc)?;
        Ok(Config {
            source: loc.file().map(Path::to_path_buf),
            listen: raw.listen.unwrap_or(DEFAULT_LISTEN),
            plain_http: raw.listen.is_some() || raw.tls.is_none(),
            control_socket,
            rate_limit: raw.rate_limit,
            sources,
            state_dir,
            dedupe_window_ms: raw.dedupe_window.0,
            retention_days: raw.retention_days,
            max_events: raw.max_events,
            shutdown_command,
            shutdown_command_set: raw.shutdown_command.span().end > 0,
            max_connections: raw.max_connections as usize,
            max_connections_per_client: raw.max_connections_per_client as usize,
            header_timeout_ms: raw.header_timeout.0,
            panel: raw.panel,
            routes,
            ignore: crate::core::ignore::IgnoreList::new(raw.ignore.iter().map(|n| n.0).collect()),
            quiet,
            tls: raw.tls,
            web: raw.web,
            mqtt: match &raw.mqtt {
                Some(m) => Some(mqtt::mqtt_config(m, loc)?),
                None => None,
            },
        })
    }

    pub fn route_index(&self, name: &str) -> Option<usize> {
        self.routes.iter().position(|r| r.name == name)
    }

    pub fn scene_settings(&self) -> SceneSettings {
        let p = &self.panel;
        SceneSettings {
            sweep: SweepShape {
                led_count: p.led_count as usize,
                pass_ms: p.sweep_time.0,
                passes: p.sweep_passes as u32,
            },
            frame_ms: (1000 / p.fps).max(1),
            max_queued_sweeps: p.max_queued_sweeps as usize,
            marker_level: p.marker_level as u8,
            marker_hold_ms: p.marker_hold.0,
            marker_fade_ms: p.marker_fade.0,
            label_ms: p.label_time.0,
            event_display_ms: p.event_display.0,
            shutdown_fade_ms: 1500,
            led_brightness: p.led_brightness as u8,
            display_brightness: p.display_brightness as u8,
        }
    }

    /// The per-client limit on failing requests, for the rate limiter.
    pub fn rate_limit_rule(&self) -> crate::core::ratelimit::RateLimit {
        crate::core::ratelimit::RateLimit {
            burst: self.rate_limit.burst as u32,
            per_minute: self.rate_limit.per_minute as u32,
        }
    }

    /// Debounce and long-press times, for the button classifier.
    pub fn button_timing(&self) -> crate::core::buttons::ButtonTiming {
        crate::core::buttons::ButtonTiming {
            debounce_ms: self.panel.debounce.0,
            long_press_ms: self.panel.long_press.0,
        }
    }

    pub fn route_looks(&self) -> Vec<RouteLook> {
        self.routes
            .iter()
            .map(|r| RouteLook {
                name: r.name.clone(),
                color: r.color,
                label: r.label,
                marker: r.marker,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
