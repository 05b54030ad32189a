//! The file as written: serde structs that mirror the TOML, with spans kept
//! where a later check must point back at a line. The section modules turn
//! these into the validated `Config`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::panel::PanelConfig;
use super::values::{bounded, Color, IgnoreNet, Label, Millis, TimeOfDay};

/// `[tls]`: a second, TLS listener with the appliance's own pinned key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub listen: SocketAddr,
    /// How long both pins are accepted after `banlight tls rotate`.
    #[serde(default = "default_tls_overlap")]
    pub overlap: Millis,
}

/// `[web]`: the read-only page at `/` and its JSON and event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    pub enabled: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig { enabled: true }
    }
}

fn default_tls_overlap() -> Millis {
    Millis(7 * 86_400_000)
}

/// `[quiet]`: a window for every day, overridden per weekday.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawQuiet {
    pub(super) from: Option<Spanned<TimeOfDay>>,
    pub(super) to: Option<Spanned<TimeOfDay>>,
    pub(super) dim: bool,
    pub(super) mon: Option<RawQuietDay>,
    pub(super) tue: Option<RawQuietDay>,
    pub(super) wed: Option<RawQuietDay>,
    pub(super) thu: Option<RawQuietDay>,
    pub(super) fri: Option<RawQuietDay>,
    pub(super) sat: Option<RawQuietDay>,
    pub(super) sun: Option<RawQuietDay>,
}

/// `[quiet] fri = { from = "23:30", to = "09:00" }` or `sun = { off = true }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawQuietDay {
    pub(super) from: Option<Spanned<TimeOfDay>>,
    pub(super) to: Option<Spanned<TimeOfDay>>,
    pub(super) off: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: Spanned<String>,
    pub color: Color,
    pub label: Option<Spanned<Label>>,
    pub marker: Option<Spanned<u64>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub(super) name: Spanned<String>,
    pub(super) token: Spanned<String>,
    pub(super) routes: Option<Spanned<Vec<String>>>,
    /// Heartbeats (issue 11): the expected period, and the slack after it.
    pub(super) heartbeat: Option<Spanned<Millis>>,
    pub(super) grace: Option<Spanned<Millis>>,
}

/// Failing requests (unknown paths, bad tokens, bad input) a client may make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    #[serde(deserialize_with = "bounded::<_, 1, 100000>")]
    pub burst: u64,
    #[serde(deserialize_with = "bounded::<_, 1, 6000000>")]
    pub per_minute: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            burst: 30,
            per_minute: 60,
        }
    }
}

pub(super) const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)),
    8080,
);

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawConfig {
    pub(super) listen: Option<SocketAddr>,
    pub(super) state_dir: Option<PathBuf>,
    pub(super) control_socket: Option<PathBuf>,
    pub(super) rate_limit: RateLimitConfig,
    pub(super) source: Vec<RawSource>,
    pub(super) dedupe_window: Millis,
    #[serde(deserialize_with = "bounded::<_, 1, 36500>")]
    pub(super) retention_days: u64,
    #[serde(deserialize_with = "bounded::<_, 1000, 1000000000>")]
    pub(super) max_events: u64,
    pub(super) shutdown_command: Spanned<String>,
    #[serde(deserialize_with = "bounded::<_, 1, 65536>")]
    pub(super) max_connections: u64,
    #[serde(deserialize_with = "bounded::<_, 1, 65536>")]
    pub(super) max_connections_per_client: u64,
    pub(super) header_timeout: Millis,
    pub(super) panel: PanelConfig,
    pub(super) route: Vec<RouteConfig>,
    pub(super) ignore: Vec<IgnoreNet>,
    pub(super) quiet: RawQuiet,
    pub(super) tls: Option<TlsConfig>,
    pub(super) web: WebConfig,
    pub(super) mqtt: Option<RawMqtt>,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: None,
            state_dir: None,
            control_socket: None,
            rate_limit: RateLimitConfig::default(),
            source: Vec::new(),
            dedupe_window: Millis(10 * 60_000),
            retention_days: 90,
            max_events: 1_000_000,
            shutdown_command: Spanned::new(0..0, "systemctl poweroff".into()),
            max_connections: 512,
            max_connections_per_client: 32,
            header_timeout: Millis(5000),
            panel: PanelConfig::default(),
            route: Vec::new(),
            ignore: Vec::new(),
            quiet: RawQuiet::default(),
            tls: None,
            web: WebConfig::default(),
            mqtt: None,
        }
    }
}

/// `[mqtt]` as written in the file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMqtt {
    pub(super) url: Spanned<String>,
    pub(super) ca_file: Option<Spanned<PathBuf>>,
    pub(super) client_id: Option<Spanned<String>>,
    pub(super) username: Option<Spanned<String>>,
    pub(super) password: Option<Spanned<String>>,
    pub(super) password_file: Option<Spanned<PathBuf>>,
    pub(super) topic_prefix: Option<Spanned<String>>,
    #[serde(default = "default_mqtt_keep_alive")]
    pub(super) keep_alive: Spanned<Millis>,
    #[serde(default)]
    pub(super) subscribe: bool,
    pub(super) hooks_topic: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_commands: bool,
    #[serde(default)]
    pub(super) accept_payload_token: bool,
    #[serde(default = "default_true")]
    pub(super) discovery: bool,
    pub(super) discovery_prefix: Option<Spanned<String>>,
    #[serde(
        default = "default_outbox_max",
        deserialize_with = "bounded::<_, 10, 10000000>"
    )]
    pub(super) outbox_max: u64,
}

fn default_mqtt_keep_alive() -> Spanned<Millis> {
    Spanned::new(0..0, Millis(30_000))
}

fn default_true() -> bool {
    true
}

fn default_outbox_max() -> u64 {
    100_000
}
