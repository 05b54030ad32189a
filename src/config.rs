//! The TOML configuration: schema, defaults, and errors that name the file,
//! line and key. Defaults are documented in `banlight.example.toml`, which a
//! test parses so the two cannot drift.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{de, Deserialize, Deserializer};
use toml::Spanned;

use crate::core::color::Rgb;
use crate::core::display::{DisplayKind, DisplayText};
use crate::core::larson::SweepShape;
use crate::core::scene::{RouteLook, SceneSettings};

/// A config that could not be used: where, which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A duration such as `500ms`, `10m`, `10 minutes` or `1h30m`
/// (parsed by jiff, see `core::time::parse_duration_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Millis(pub u64);

impl std::str::FromStr for Millis {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        crate::core::time::parse_duration_ms(s).map(Millis)
    }
}

/// One `ignore` entry: a network (`203.0.113.0/24`) or an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IgnoreNet(ipnet::IpNet);

impl std::str::FromStr for IgnoreNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        crate::core::ignore::parse_net(s).map(IgnoreNet)
    }
}

impl<'de> Deserialize<'de> for IgnoreNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_de(d)
    }
}

/// A time of day such as `"22:30"`, for quiet hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TimeOfDay(jiff::civil::Time);

impl std::str::FromStr for TimeOfDay {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        crate::core::quiet::parse_time(s).map(TimeOfDay)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_de(d)
    }
}

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
struct RawQuiet {
    from: Option<Spanned<TimeOfDay>>,
    to: Option<Spanned<TimeOfDay>>,
    dim: bool,
    mon: Option<RawQuietDay>,
    tue: Option<RawQuietDay>,
    wed: Option<RawQuietDay>,
    thu: Option<RawQuietDay>,
    fri: Option<RawQuietDay>,
    sat: Option<RawQuietDay>,
    sun: Option<RawQuietDay>,
}

/// `[quiet] fri = { from = "23:30", to = "09:00" }` or `sun = { off = true }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawQuietDay {
    from: Option<Spanned<TimeOfDay>>,
    to: Option<Spanned<TimeOfDay>>,
    off: bool,
}

fn from_str_de<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    let s = String::deserialize(d)?;
    s.parse().map_err(de::Error::custom)
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_de(d)
    }
}

/// `#rrggbb` in the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Color(pub Rgb);

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_de::<D, Rgb>(d).map(Color)
    }
}

impl<'de> Deserialize<'de> for DisplayKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_de(d)
    }
}

/// Up to four 7-segment characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(pub DisplayText);

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DisplayText::parse(&s)
            .map(Label)
            .map_err(|e| de::Error::custom(format!("label \"{s}\": {e}")))
    }
}

fn bounded<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if (MIN..=MAX).contains(&v) {
        Ok(v)
    } else {
        Err(de::Error::custom(format!(
            "{v} is out of range {MIN}..={MAX}"
        )))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The Raspberry Pi hardware when this is a Pi, else `sim`.
    Auto,
    /// Terminal rendering.
    Sim,
    /// JSON lines in `record_path`.
    Record,
    /// Raspberry Pi hardware; fails elsewhere.
    Pi,
    /// The Pi panel on simulated pins, decoded back (`panel::gpio_sim`).
    #[serde(rename = "gpio-sim")]
    GpioSim,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PanelConfig {
    pub backend: Backend,
    pub record_path: Option<PathBuf>,
    #[serde(deserialize_with = "bounded::<_, 1, 144>")]
    pub led_count: u64,
    /// APA102 global brightness cap, 0..=31 (Pimoroni's default is 7).
    #[serde(deserialize_with = "bounded::<_, 0, 31>")]
    pub led_brightness: u64,
    /// TM1637 brightness, 0..=7.
    #[serde(deserialize_with = "bounded::<_, 0, 7>")]
    pub display_brightness: u64,
    /// Which TM1637 module: `colon` (the common clock module) or `points`.
    pub display: DisplayKind,
    /// One pass of the eye, first LED to last and back.
    pub sweep_time: Millis,
    #[serde(deserialize_with = "bounded::<_, 1, 20>")]
    pub sweep_passes: u64,
    #[serde(deserialize_with = "bounded::<_, 10, 200>")]
    pub fps: u64,
    #[serde(deserialize_with = "bounded::<_, 0, 255>")]
    pub marker_level: u64,
    pub marker_hold: Millis,
    pub marker_fade: Millis,
    pub event_display: Millis,
    pub label_time: Millis,
    #[serde(deserialize_with = "bounded::<_, 0, 100>")]
    pub max_queued_sweeps: u64,
    pub debounce: Millis,
    pub long_press: Millis,
    /// Raspberry Pi wiring, BCM GPIO numbers (see `core::wiring::check_pins`).
    #[serde(deserialize_with = "bounded::<_, 0, 27>")]
    pub blinkt_data_pin: u64,
    #[serde(deserialize_with = "bounded::<_, 0, 27>")]
    pub blinkt_clock_pin: u64,
    /// Hardware SPI device for the LEDs (`/dev/spidev0.0`) instead of the two pins.
    pub led_spi: Option<PathBuf>,
    #[serde(deserialize_with = "bounded::<_, 0, 27>")]
    pub tm1637_clk_pin: u64,
    #[serde(deserialize_with = "bounded::<_, 0, 27>")]
    pub tm1637_dio_pin: u64,
    #[serde(deserialize_with = "bounded::<_, 0, 27>")]
    pub mode_button_pin: u64,
    #[serde(deserialize_with = "bounded::<_, 0, 27>")]
    pub power_button_pin: u64,
}

impl PanelConfig {
    /// One job per pin (`core::wiring`); Err: (the key at fault, why).
    pub fn check_pins(&self) -> Result<(), (String, String)> {
        crate::core::wiring::check_pins(
            &[
                ("tm1637_clk_pin", self.tm1637_clk_pin),
                ("tm1637_dio_pin", self.tm1637_dio_pin),
                ("mode_button_pin", self.mode_button_pin),
                ("power_button_pin", self.power_button_pin),
            ],
            &[
                ("blinkt_data_pin", self.blinkt_data_pin),
                ("blinkt_clock_pin", self.blinkt_clock_pin),
            ],
            self.led_spi.as_deref(),
        )
    }
}

impl Default for PanelConfig {
    fn default() -> Self {
        PanelConfig {
            backend: Backend::Auto,
            record_path: None,
            led_count: 8,
            led_brightness: 7,
            display_brightness: 3,
            display: DisplayKind::Colon,
            sweep_time: Millis(1200),
            sweep_passes: 2,
            fps: 60,
            marker_level: 48,
            marker_hold: Millis(10 * 60_000),
            marker_fade: Millis(3000),
            event_display: Millis(5000),
            label_time: Millis(1000),
            max_queued_sweeps: 3,
            debounce: Millis(30),
            long_press: Millis(3000),
            blinkt_data_pin: 23,
            blinkt_clock_pin: 24,
            led_spi: None,
            tm1637_clk_pin: 5,
            tm1637_dio_pin: 4,
            mode_button_pin: 17,
            power_button_pin: 3,
        }
    }
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
struct RawSource {
    name: Spanned<String>,
    token: Spanned<String>,
    routes: Option<Spanned<Vec<String>>>,
    /// Heartbeats (issue 11): the expected period, and the slack after it.
    heartbeat: Option<Spanned<Millis>>,
    grace: Option<Spanned<Millis>>,
}

/// A server allowed to post hooks, by its bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub token: String,
    /// Routes it may post to; `None` = all.
    pub routes: Option<Vec<String>>,
    /// `heartbeat` and `grace`: the server is expected to send
    /// `POST /api/heartbeat` at least this often (`None`: not watched).
    pub heartbeat: Option<crate::core::heartbeat::Spec>,
}

impl fmt::Debug for Source {
    /// Never prints the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("routes", &self.routes)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
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

pub const MIN_TOKEN_LEN: usize = 16;
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)),
    8080,
);

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    listen: Option<SocketAddr>,
    state_dir: Option<PathBuf>,
    control_socket: Option<PathBuf>,
    rate_limit: RateLimitConfig,
    source: Vec<RawSource>,
    dedupe_window: Millis,
    #[serde(deserialize_with = "bounded::<_, 1, 36500>")]
    retention_days: u64,
    #[serde(deserialize_with = "bounded::<_, 1000, 1000000000>")]
    max_events: u64,
    shutdown_command: Spanned<String>,
    #[serde(deserialize_with = "bounded::<_, 1, 65536>")]
    max_connections: u64,
    #[serde(deserialize_with = "bounded::<_, 1, 65536>")]
    max_connections_per_client: u64,
    header_timeout: Millis,
    panel: PanelConfig,
    route: Vec<RouteConfig>,
    ignore: Vec<IgnoreNet>,
    quiet: RawQuiet,
    tls: Option<TlsConfig>,
    web: WebConfig,
    mqtt: Option<RawMqtt>,
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

// ---- [mqtt] (issue 12) ----

/// `[mqtt]` as written in the file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMqtt {
    url: Spanned<String>,
    ca_file: Option<Spanned<PathBuf>>,
    client_id: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    password_file: Option<Spanned<PathBuf>>,
    topic_prefix: Option<Spanned<String>>,
    #[serde(default = "default_mqtt_keep_alive")]
    keep_alive: Spanned<Millis>,
    #[serde(default)]
    subscribe: bool,
    hooks_topic: Option<Spanned<String>>,
    #[serde(default)]
    allow_commands: bool,
    #[serde(default = "default_true")]
    discovery: bool,
    discovery_prefix: Option<Spanned<String>>,
    #[serde(
        default = "default_outbox_max",
        deserialize_with = "bounded::<_, 10, 10000000>"
    )]
    outbox_max: u64,
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

pub const DEFAULT_HOOKS_TOPIC: &str = "banlight/fleet/hooks";
pub const DEFAULT_DISCOVERY_PREFIX: &str = "homeassistant";

/// The broker's password: in the file, or read from `password_file` at start.
#[derive(Clone, PartialEq, Eq)]
pub enum MqttPassword {
    None,
    Inline(String),
    File(PathBuf),
}

impl fmt::Debug for MqttPassword {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MqttPassword::None => write!(f, "None"),
            MqttPassword::Inline(_) => write!(f, "Inline(<redacted>)"),
            MqttPassword::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

/// A validated `[mqtt]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttConfig {
    pub url: String,
    pub broker: crate::core::mqtt::BrokerUrl,
    /// With mqtts: a PEM file of CAs to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Default `banlight-<hostname>`.
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password: MqttPassword,
    /// Default `banlight/<hostname>`.
    pub topic_prefix: Option<String>,
    pub keep_alive_ms: u64,
    /// Take hooks from `hooks_topic`.
    pub subscribe: bool,
    pub hooks_topic: String,
    /// Accept test sweep / next mode / brightness over MQTT.
    pub allow_commands: bool,
    /// Publish Home Assistant discovery configs.
    pub discovery: bool,
    pub discovery_prefix: String,
    /// Events kept for the broker at most; beyond, the oldest are dropped.
    pub outbox_max: u64,
}

fn mqtt_config(
    m: &RawMqtt,
    err_at: &dyn Fn(usize, String) -> ConfigError,
) -> Result<MqttConfig, ConfigError> {
    let broker =
        crate::core::mqtt::parse_url(m.url.get_ref()).map_err(|e| err_at(m.url.span().start, e))?;
    if let Some(ca) = &m.ca_file {
        if !broker.tls {
            return Err(err_at(
                ca.span().start,
                "ca_file is only used with an mqtts:// url".into(),
            ));
        }
    }
    let text = |v: &Option<Spanned<String>>,
                what: &str,
                ok: &dyn Fn(&str) -> bool|
     -> Result<Option<String>, ConfigError> {
        match v {
            Some(s) if !ok(s.get_ref()) => Err(err_at(s.span().start, what.to_string())),
            Some(s) => Ok(Some(s.get_ref().clone())),
            None => Ok(None),
        }
    };
    let client_id = text(
        &m.client_id,
        "client_id must be 1-64 letters, digits or . _ - : @",
        &crate::core::names::valid_name,
    )?;
    let username = text(&m.username, "username must not be empty", &|s: &str| {
        !s.is_empty()
    })?;
    let password = match (&m.password, &m.password_file) {
        (Some(_), Some(f)) => {
            return Err(err_at(
                f.span().start,
                "give either password or password_file, not both".into(),
            ))
        }
        (Some(p), None) => MqttPassword::Inline(p.get_ref().clone()),
        (None, Some(f)) => MqttPassword::File(f.get_ref().clone()),
        (None, None) => MqttPassword::None,
    };
    if password != MqttPassword::None && username.is_none() {
        let at = m
            .password
            .as_ref()
            .map(|p| p.span().start)
            .or(m.password_file.as_ref().map(|p| p.span().start))
            .unwrap_or(0);
        return Err(err_at(at, "a password needs a username".into()));
    }
    let topic = "must be a topic without wildcards (+ #), leading or trailing /, at most 256 bytes";
    let topic_prefix = text(
        &m.topic_prefix,
        &format!("topic_prefix {topic}"),
        &crate::core::mqtt::valid_topic,
    )?;
    let hooks_topic = text(
        &m.hooks_topic,
        &format!("hooks_topic {topic}"),
        &crate::core::mqtt::valid_topic,
    )?
    .unwrap_or_else(|| DEFAULT_HOOKS_TOPIC.into());
    let discovery_prefix = text(
        &m.discovery_prefix,
        &format!("discovery_prefix {topic}"),
        &crate::core::mqtt::valid_topic,
    )?
    .unwrap_or_else(|| DEFAULT_DISCOVERY_PREFIX.into());
    let keep_alive_ms = m.keep_alive.get_ref().0;
    if !(5_000..=3_600_000).contains(&keep_alive_ms) {
        return Err(err_at(
            m.keep_alive.span().start,
            "keep_alive must be between 5s and 1h".into(),
        ));
    }
    Ok(MqttConfig {
        url: m.url.get_ref().clone(),
        broker,
        ca_file: m.ca_file.as_ref().map(|c| c.get_ref().clone()),
        client_id,
        username,
        password,
        topic_prefix,
        keep_alive_ms,
        subscribe: m.subscribe,
        hooks_topic,
        allow_commands: m.allow_commands,
        discovery: m.discovery,
        discovery_prefix,
        outbox_max: m.outbox_max,
    })
}

/// One route as the daemon uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub color: Rgb,
    pub label: DisplayText,
    pub marker: usize,
}

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

/// The prototype's four routes and their marker pixels.
fn default_routes() -> Vec<Route> {
    [
        ("red", Rgb::new(255, 0, 0), "rEd", 0),
        ("blue", Rgb::new(0, 0, 255), "bLUE", 2),
        ("purple", Rgb::new(128, 0, 255), "PUrP", 4),
        ("green", Rgb::new(0, 255, 0), "Grn", 6),
    ]
    .into_iter()
    .map(|(name, color, label, marker)| Route {
        name: name.into(),
        color,
        label: DisplayText::parse(label).expect("built-in labels have glyphs"),
        marker,
    })
    .collect()
}

/// Where state lives when the config does not say: systemd's StateDirectory,
/// else the XDG state directory.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        // systemd may pass several, colon-separated; the first is ours.
        let first = dir
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        if !first.is_empty() {
            return PathBuf::from(first);
        }
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("banlight");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/state/banlight");
    }
    PathBuf::from("banlight-state")
}

/// systemd's RuntimeDirectory= (/run/banlight in the package), else beside the database.
pub fn default_control_socket(state_dir: &Path) -> PathBuf {
    match std::env::var_os("RUNTIME_DIRECTORY").filter(|d| !d.is_empty()) {
        Some(dir) => {
            let first = dir
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or("")
                .to_string();
            PathBuf::from(first).join("control.sock")
        }
        None => state_dir.join("control.sock"),
    }
}

/// Route names become URL paths: keep them plain.
fn valid_route_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name != "api"
        && name != "metrics"
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// serde's "unknown field `x`, expected one of `a`, `b`" with the nearest
/// expected key named, when one is near (a typo, a missing prefix).
fn with_suggestion(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    // Split on backticks, the parts alternate inside/outside: the given key
    // first, then the expected ones.
    let given = rest.split('`').next().unwrap_or("");
    let expected = rest.split('`').skip(2).step_by(2);
    let best = expected
        .map(|k| (strsim::levenshtein(given, k), k))
        .filter(|(d, k)| *d <= 2 || (given.len() >= 4 && (k.contains(given) || given.contains(k))))
        .min();
    match best {
        Some((_, k)) => format!("{message}: did you mean `{k}`?"),
        None => message.to_string(),
    }
}

impl Config {
    /// Built-in defaults (no config file).
    pub fn defaults() -> Config {
        Self::from_raw(None, "", RawConfig::default()).expect("defaults are valid")
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
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, key) = match e.span() {
                Some(span) => locate(text, span.start),
                None => (None, None),
            };
            ConfigError {
                file: path.to_path_buf(),
                line,
                key,
                message: with_suggestion(e.message().trim()),
            }
        })?;
        Self::from_raw(Some(path), text, raw)
    }

    fn from_raw(path: Option<&Path>, text: &str, raw: RawConfig) -> Result<Config, ConfigError> {
        let err_at = |offset: usize, message: String| {
            let (line, key) = locate(text, offset);
            ConfigError {
                file: path.map_or_else(|| PathBuf::from("(defaults)"), Path::to_path_buf),
                line,
                key,
                message,
            }
        };
        let led_count = raw.panel.led_count as usize;
        let routes = if raw.route.is_empty() {
            default_routes()
        } else {
            let mut routes: Vec<Route> = Vec::new();
            for (i, r) in raw.route.iter().enumerate() {
                let name = r.name.get_ref();
                if !valid_route_name(name) {
                    return Err(err_at(
                        r.name.span().start,
                        format!("route name \"{name}\" must be 1-32 of a-z, 0-9, '-', '_' (and not \"api\" or \"metrics\"): it becomes the URL path /{name}"),
                    ));
                }
                if routes.iter().any(|x| x.name == *name) {
                    return Err(err_at(
                        r.name.span().start,
                        format!("route \"{name}\" is defined twice"),
                    ));
                }
                let label = match &r.label {
                    Some(l)
                        if l.get_ref().0.has_points()
                            && raw.panel.display == DisplayKind::Colon =>
                    {
                        return Err(err_at(
                            l.span().start,
                            format!(
                                "route \"{name}\": label \"{}\" has a '.', and a display = \"colon\" module has no decimal points (its colon would light instead): drop the '.' or set display = \"points\" under [panel]",
                                l.get_ref().0
                            ),
                        ));
                    }
                    Some(l) => l.get_ref().0,
                    None => DisplayText::parse(name).map_err(|e| {
                        err_at(
                            r.name.span().start,
                            format!("route \"{name}\" needs a `label` the display can show ({e})"),
                        )
                    })?,
                };
                let marker = match &r.marker {
                    Some(m) => {
                        let v = *m.get_ref();
                        if v as usize >= led_count {
                            return Err(err_at(
                                m.span().start,
                                format!(
                                    "marker LED {v} does not exist: LEDs are numbered 0..{}",
                                    led_count - 1
                                ),
                            ));
                        }
                        v as usize
                    }
                    None => (i * 2) % led_count,
                };
                routes.push(Route {
                    name: name.clone(),
                    color: r.color.0,
                    label,
                    marker,
                });
            }
            routes
        };
        let window = |from: &Option<Spanned<TimeOfDay>>,
                      to: &Option<Spanned<TimeOfDay>>|
         -> Result<Option<crate::core::quiet::Window>, ConfigError> {
            match (from, to) {
                (None, None) => Ok(None),
                (Some(f), Some(t)) if f.get_ref() == t.get_ref() => Err(err_at(
                    t.span().start,
                    "quiet hours `from` and `to` are the same time: leave the window out instead"
                        .into(),
                )),
                (Some(f), Some(t)) => Ok(Some(crate::core::quiet::Window {
                    from: f.get_ref().0,
                    to: t.get_ref().0,
                })),
                (Some(x), None) | (None, Some(x)) => Err(err_at(
                    x.span().start,
                    "quiet hours need both `from` and `to` (like from = \"22:30\", to = \"07:00\")"
                        .into(),
                )),
            }
        };
        let q = &raw.quiet;
        let every_day = window(&q.from, &q.to)?;
        let mut quiet = crate::core::quiet::QuietHours {
            days: [every_day; 7],
            dim: q.dim,
        };
        for (i, day) in [&q.mon, &q.tue, &q.wed, &q.thu, &q.fri, &q.sat, &q.sun]
            .into_iter()
            .enumerate()
        {
            if let Some(d) = day {
                quiet.days[i] = if d.off {
                    None
                } else {
                    window(&d.from, &d.to)?.or(every_day)
                };
            }
        }
        let shutdown_command: Vec<String> = raw
            .shutdown_command
            .get_ref()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if shutdown_command.is_empty() {
            return Err(err_at(
                raw.shutdown_command.span().start,
                "shutdown_command is empty; the default is \"systemctl poweroff\"".into(),
            ));
        }
        if raw.panel.backend == Backend::Record && raw.panel.record_path.is_none() {
            return Err(ConfigError {
                file: path.map_or_else(|| PathBuf::from("(defaults)"), Path::to_path_buf),
                line: line_of_key(text, "panel", "backend"),
                key: Some("panel.record_path".into()),
                message: "backend = \"record\" needs record_path = \"FILE\"".into(),
            });
        }
        let mut sources: Vec<Source> = Vec::new();
        for s in &raw.source {
            let name = s.name.get_ref();
            if !crate::core::names::valid_name(name) {
                return Err(err_at(
                    s.name.span().start,
                    format!("source name \"{name}\" must be 1-64 letters, digits or . _ - : @"),
                ));
            }
            if sources.iter().any(|x| x.name == *name) {
                return Err(err_at(
                    s.name.span().start,
                    format!("source \"{name}\" is defined twice"),
                ));
            }
            let token = s.token.get_ref();
            if token.len() < MIN_TOKEN_LEN || !token.chars().all(|c| c.is_ascii_graphic()) {
                return Err(err_at(
                    s.token.span().start,
                    format!("the token of source \"{name}\" must be at least {MIN_TOKEN_LEN} printable characters without spaces (e.g. from `openssl rand -hex 24`)"),
                ));
            }
            if sources.iter().any(|x| x.token == *token) {
                return Err(err_at(
                    s.token.span().start,
                    format!("source \"{name}\" reuses another source's token"),
                ));
            }
            if let Some(rs) = &s.routes {
                if let Some(bad) = rs
                    .get_ref()
                    .iter()
                    .find(|r| !routes.iter().any(|x| x.name == **r))
                {
                    return Err(err_at(
                        rs.span().start,
                        format!("source \"{name}\" names route \"{bad}\", which is not defined"),
                    ));
                }
            }
            let heartbeat = source_heartbeat(s, name).map_err(|(at, m)| err_at(at, m))?;
            sources.push(Source {
                name: name.clone(),
                token: token.clone(),
                routes: s.routes.as_ref().map(|r| r.get_ref().clone()),
                heartbeat,
            });
        }
        let state_dir = raw.state_dir.unwrap_or_else(default_state_dir);
        let control_socket = raw
            .control_socket
            .unwrap_or_else(|| default_control_socket(&state_dir));
        if let Some(db) = socket_over_database(&control_socket, &state_dir) {
            return Err(ConfigError {
                file: path.map_or_else(|| PathBuf::from("(defaults)"), Path::to_path_buf),
                line: line_of_key(text, "", "control_socket"),
                key: Some("control_socket".into()),
                message: format!(
                    "control_socket {} is the database file {} or inside it; pick a path of its own (default {})",
                    control_socket.display(),
                    db.display(),
                    default_control_socket(&state_dir).display()
                ),
            });
        }
        if let Err((key, message)) = raw.panel.check_pins() {
            return Err(ConfigError {
                file: path.map_or_else(|| PathBuf::from("(defaults)"), Path::to_path_buf),
                line: line_of_key(text, "panel", &key),
                key: Some(format!("panel.{key}")),
                message,
            });
        }
        Ok(Config {
            source: path.map(Path::to_path_buf),
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
                Some(m) => Some(mqtt_config(m, &err_at)?),
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

/// The 1-based line where `key` is set inside `[table]`, if the file sets it
/// (a value can also clash with a default the file never mentions).
/// The database file a control socket path would clobber, if any: binding
/// there (or removing a "stale" file there) would destroy the live store.
fn socket_over_database(socket: &Path, state_dir: &Path) -> Option<PathBuf> {
    let clean = |p: &Path| -> PathBuf {
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        // Follow symlinks where the path exists, so a link to the db counts.
        std::fs::canonicalize(&abs).unwrap_or_else(|_| {
            abs.components().fold(PathBuf::new(), |mut acc, c| {
                match c {
                    std::path::Component::ParentDir => {
                        acc.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => acc.push(other),
                }
                acc
            })
        })
    };
    let socket = clean(socket);
    let db = crate::store::DB_FILE;
    [
        db.to_string(),
        format!("{db}-wal"),
        format!("{db}-shm"),
        format!("{db}-journal"),
    ]
    .iter()
    .map(|name| clean(&state_dir.join(name)))
    .find(|file| socket == *file || socket.starts_with(file))
}

/// Shortest heartbeat period: a server cannot usefully report more often.
pub const MIN_HEARTBEAT_MS: u64 = 1000;

/// A source's `heartbeat` and `grace` (default: the period), or the offset
/// and message of what is wrong with them.
fn source_heartbeat(
    s: &RawSource,
    name: &str,
) -> Result<Option<crate::core::heartbeat::Spec>, (usize, String)> {
    let Some(period) = &s.heartbeat else {
        return match &s.grace {
            Some(g) => Err((
                g.span().start,
                format!("source \"{name}\" sets grace without heartbeat; add heartbeat = \"5m\" (the period) or remove grace"),
            )),
            None => Ok(None),
        };
    };
    let period_ms = period.get_ref().0;
    if period_ms < MIN_HEARTBEAT_MS {
        return Err((
            period.span().start,
            format!("the heartbeat of source \"{name}\" must be at least 1s (e.g. \"5m\")"),
        ));
    }
    let grace_ms = s.grace.as_ref().map_or(period_ms, |g| g.get_ref().0);
    Ok(Some(crate::core::heartbeat::Spec {
        period_ms,
        grace_ms,
    }))
}

fn line_of_key(text: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|x| x.split(']').next()) {
            current = name.trim_start_matches('[').trim().to_string();
            continue;
        }
        let set_here = t
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if current == table && set_here {
            return Some(i + 1);
        }
    }
    None
}

/// The 1-based line of `offset` and the dotted key written there, with its
/// table (`panel.led_brightness`, `route[1].color`).
fn locate(text: &str, offset: usize) -> (Option<usize>, Option<String>) {
    if text.is_empty() {
        return (None, None);
    }
    let offset = offset.min(text.len());
    let lines: Vec<&str> = text.lines().collect();
    // An error at the very end (after the last newline) belongs to the last line.
    let line_no = (text[..offset].matches('\n').count() + 1).clamp(1, lines.len().max(1));
    let upto = &lines[..line_no.min(lines.len())];
    let this = lines.get(line_no - 1).copied().unwrap_or("").trim();
    let key = this
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let mut table: Option<String> = None;
    for l in upto.iter().rev() {
        let l = l.trim();
        if let Some(name) = l.strip_prefix("[[").and_then(|s| s.split("]]").next()) {
            let name = name.trim();
            let index = upto
                .iter()
                .filter(|x| {
                    x.trim()
                        .strip_prefix("[[")
                        .and_then(|s| s.split("]]").next())
                        .map(str::trim)
                        == Some(name)
                })
                .count()
                - 1;
            table = Some(format!("{name}[{index}]"));
            break;
        }
        if let Some(name) = l.strip_prefix('[').and_then(|s| s.split(']').next()) {
            table = Some(name.trim().to_string());
            break;
        }
    }
    let full = match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (None, Some(k)) => Some(k),
        (Some(t), None) => Some(t),
        (None, None) => None,
    };
    (Some(line_no), full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("test.toml"), text)
    }

    #[test]
    fn empty_file_gives_the_prototype_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        let names: Vec<&str> = c.routes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["red", "blue", "purple", "green"]);
        let markers: Vec<usize> = c.routes.iter().map(|r| r.marker).collect();
        assert_eq!(markers, [0, 2, 4, 6]);
        assert_eq!(c.dedupe_window_ms, 600_000);
        assert_eq!(c.retention_days, 90);
        assert_eq!(c.shutdown_command, ["systemctl", "poweroff"]);
        assert_eq!(
            c,
            Config {
                source: Some("test.toml".into()),
                ..Config::defaults()
            }
        );
    }

    #[test]
    fn example_file_parses_and_documents_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("banlight.example.toml");
        let example = Config::load(&path).unwrap();
        let defaults = Config::defaults();
        // The example spells out every default, except where it says otherwise.
        assert_eq!(example.panel, defaults.panel);
        assert_eq!(example.routes, defaults.routes);
        assert_eq!(example.dedupe_window_ms, defaults.dedupe_window_ms);
        assert_eq!(example.retention_days, defaults.retention_days);
        assert_eq!(example.max_events, defaults.max_events);
        assert_eq!(example.shutdown_command, defaults.shutdown_command);
        assert_eq!(example.max_connections, defaults.max_connections);
        assert_eq!(
            example.max_connections_per_client,
            defaults.max_connections_per_client
        );
        assert_eq!(example.header_timeout_ms, defaults.header_timeout_ms);
        assert_eq!(example.listen, defaults.listen);
        assert_eq!(example.rate_limit, defaults.rate_limit);
        assert_eq!(example.sources, defaults.sources);
        assert_eq!(example.ignore, defaults.ignore);
        assert_eq!(example.web, defaults.web);
        assert!(defaults.web.enabled, "the page is on unless switched off");
        assert!(!parse("[web]\nenabled = false\n").unwrap().web.enabled);
    }

    #[test]
    fn quiet_hours_are_read() {
        use jiff::civil::time;
        let c = parse("[quiet]\nfrom = \"22:30\"\nto = \"7:00\"\ndim = true\nfri = { from = \"23:30\", to = \"09:00\" }\nsun = { off = true }\n").unwrap();
        let w = crate::core::quiet::Window {
            from: time(22, 30, 0, 0),
            to: time(7, 0, 0, 0),
        };
        assert_eq!(c.quiet.days[0], Some(w));
        assert_eq!(c.quiet.days[5], Some(w));
        assert_eq!(c.quiet.days[4].unwrap().from, time(23, 30, 0, 0));
        assert_eq!(c.quiet.days[6], None);
        assert!(c.quiet.dim);
        let c = parse("[quiet]\nsat = { from = \"01:00\", to = \"09:00\" }\n").unwrap();
        assert_eq!(
            c.quiet.days.iter().filter(|d| d.is_some()).count(),
            1,
            "only Saturday"
        );
        assert!(parse("").unwrap().quiet.is_empty());
        let c = parse("[tls]\nlisten = \"0.0.0.0:8443\"\n").unwrap();
        assert!(!c.plain_http, "[tls] alone: no plain HTTP");
        let tls = c.tls.unwrap();
        assert_eq!(tls.listen.port(), 8443);
        let both =
            parse("listen = \"127.0.0.1:8080\"\n[tls]\nlisten = \"0.0.0.0:8443\"\n").unwrap();
        assert!(both.plain_http, "plain HTTP kept because it is configured");
        assert!(parse("").unwrap().plain_http, "without [tls]: plain HTTP");
        assert_eq!(tls.overlap, Millis(7 * 86_400_000));
        assert!(parse("").unwrap().tls.is_none());
    }

    #[test]
    fn ignore_list_is_read() {
        let c =
            parse("ignore = [\"203.0.113.0/24\", \"2001:db8:1::/48\", \"192.0.2.7\"]\n").unwrap();
        assert!(c.ignore.contains("203.0.113.9".parse().unwrap()));
        assert!(c.ignore.contains("::ffff:203.0.113.9".parse().unwrap()));
        assert!(c.ignore.contains("2001:db8:1::5".parse().unwrap()));
        assert!(c.ignore.contains("192.0.2.7".parse().unwrap()));
        assert!(!c.ignore.contains("192.0.2.8".parse().unwrap()));
    }

    #[test]
    fn the_display_module_kind_is_read_and_checks_labels() {
        assert_eq!(parse("").unwrap().panel.display, DisplayKind::Colon);
        let c = parse("[panel]\ndisplay = \"points\"\n").unwrap();
        assert_eq!(c.panel.display, DisplayKind::Points);
        expect_error(
            "[panel]\ndisplay = \"decimal\"\n",
            2,
            "panel.display",
            "\"colon\"",
        );
        let dotted = "[[route]]\nname = \"x\"\ncolor = \"#ff0000\"\nlabel = \"r.1\"\n";
        let e = expect_error(dotted, 4, "route[0].label", "no decimal points");
        assert!(e.message.contains("display = \"points\""), "{e}");
        let c = parse(&format!("{dotted}[panel]\ndisplay = \"points\"\n")).unwrap();
        assert_eq!(c.routes[0].label.to_string(), "r.1  ");
    }

    #[test]
    fn routes_and_panel_are_read() {
        let c = parse(
            r##"
listen = "0.0.0.0:9000"
dedupe_window = "30s"
[panel]
backend = "record"
record_path = "/tmp/frames.jsonl"
led_brightness = 31
[[route]]
name = "ssh"
color = "#ff8000"
[[route]]
name = "wp"
color = "#0000ff"
label = "UUP"
marker = 7
"##,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.dedupe_window_ms, 30_000);
        assert_eq!(c.panel.backend, Backend::Record);
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[0].label.to_string(), "SSh ");
        assert_eq!(c.routes[0].marker, 0);
        assert_eq!(c.routes[1].marker, 7);
        assert_eq!(c.routes[1].color, Rgb::new(0, 0, 255));
    }

    fn err(text: &str) -> ConfigError {
        parse(text).unwrap_err()
    }

    /// `text` fails at `line` on `key` with a message containing `msg`.
    fn expect_error(text: &str, line: usize, key: &str, msg: &str) -> ConfigError {
        let e = err(text);
        assert_eq!(e.line, Some(line), "{text}: {e}");
        assert_eq!(e.key.as_deref(), Some(key), "{text}: {e}");
        assert!(e.message.contains(msg), "{text}: {e}");
        e
    }

    #[test]
    fn a_control_socket_on_the_database_is_refused() {
        for name in [
            "banlight.db",
            "banlight.db-wal",
            "banlight.db-shm",
            "banlight.db/x.sock",
        ] {
            let text =
                format!("state_dir = \"/var/lib/bl\"\ncontrol_socket = \"/var/lib/bl/{name}\"\n");
            expect_error(&text, 2, "control_socket", "database");
        }
        let text =
            "state_dir = \"/var/lib/bl\"\ncontrol_socket = \"/var/lib/bl/../bl/./banlight.db\"\n";
        expect_error(text, 2, "control_socket", "database");
        Config::parse(
            Path::new("t.toml"),
            "state_dir = \"/var/lib/bl\"\ncontrol_socket = \"/var/lib/bl/control.sock\"\n",
        )
        .expect("a path of its own is fine");
    }

    #[test]
    fn unknown_keys_name_file_line_and_key() {
        let e = err("listen = \"127.0.0.1:1\"\n\n[panel]\nbrightnes = 3\n");
        assert_eq!(e.line, Some(4));
        assert_eq!(e.key.as_deref(), Some("panel.brightnes"));
        assert!(e.message.contains("unknown field"), "{e}");
        assert!(
            e.to_string()
                .starts_with("test.toml:4: key `panel.brightnes`:"),
            "{e}"
        );
    }

    #[test]
    fn a_typo_in_a_key_gets_a_did_you_mean() {
        let e = err("dedup_window = \"5m\"\n");
        assert_eq!((e.line, e.key.as_deref()), (Some(1), Some("dedup_window")));
        assert!(e.message.contains("did you mean `dedupe_window`?"), "{e}");
        let e = err("[panel]\nbrightnes = 3\n");
        assert!(e.message.contains("did you mean `"), "{e}");
        // Nothing near: no guess.
        let e = err("zzzzzzzzzz = 1\n");
        assert!(!e.message.contains("did you mean"), "{e}");
    }

    #[test]
    fn bad_values_name_file_line_and_key() {
        let cases = [
            ("[panel]\nled_brightness = 40\n", 2, "panel.led_brightness", "out of range"),
            ("dedupe_window = \"10\"\n", 1, "dedupe_window", "unit"),
            ("listen = \"localhost\"\n", 1, "listen", "address"),
            ("[[route]]\nname = \"a\"\ncolor = \"#ff\"\n", 3, "route[0].color", "#rrggbb"),
            (
                "[[route]]\nname = \"ssh\"\ncolor = \"#ff0000\"\n[[route]]\nname = \"wp\"\ncolor = \"red\"\n",
                6,
                "route[1].color",
                "#rrggbb",
            ),
            ("[[route]]\nname = \"x\"\ncolor = \"#ff0000\"\nlabel = \"wow\"\n", 4, "route[0].label", "7-segment"),
            ("[[route]]\nname = \"Red Route\"\ncolor = \"#ff0000\"\n", 2, "route[0].name", "a-z"),
            ("[[route]]\nname = \"api\"\ncolor = \"#ff0000\"\n", 2, "route[0].name", "api"),
            ("[[route]]\nname = \"metrics\"\ncolor = \"#ff0000\"\nlabel = \"EtC\"\n", 2, "route[0].name", "metrics"),
            (
                "[[route]]\nname = \"a\"\ncolor = \"#ff0000\"\n[[route]]\nname = \"a\"\ncolor = \"#ff0000\"\n",
                5,
                "route[1].name",
                "twice",
            ),
            ("[[route]]\nname = \"a\"\ncolor = \"#ff0000\"\nmarker = 8\n", 4, "route[0].marker", "0..7"),
            ("[[route]]\nname = \"wx\"\ncolor = \"#ff0000\"\n", 2, "route[0].name", "label"),
            ("shutdown_command = \"  \"\n", 1, "shutdown_command", "empty"),
            ("retention_days = -1\n", 1, "retention_days", ""),
            ("[panel]\nbackend = \"gpio\"\n", 2, "panel.backend", "variant"),
            ("\nignore = [\"10.0.0.0/8\", \"office\"]\n", 2, "ignore", "203.0.113.0/24"),
            ("dedupe_window = \"10 parsecs\"\n", 1, "dedupe_window", "minutes"),
            ("[quiet]\nfrom = \"22:30\"\nto = \"25:00\"\n", 3, "quiet.to", "22:30"),
            ("[quiet]\nfrom = \"22:30\"\n", 2, "quiet.from", "both"),
            ("[tls]\nlisten = \"8443\"\n", 2, "tls.listen", "address"),
            ("[quiet]\nfrom = \"22:30\"\nto = \"22:30\"\n", 3, "quiet.to", "same"),
            ("[quiet]\nfri = { from = \"23:00\" }\n", 2, "quiet.fri", "both"),
            ("[quiet]\nfrom = \"1\"\nto = \"2\"\n", 2, "quiet.from", "time of day"),
            ("[web]\nenabled = \"yes\"\n", 2, "web.enabled", "boolean"),
            ("[web]\nenable = true\n", 2, "web.enable", "expected `enabled`"),
        ];
        for (text, line, key, msg) in cases {
            expect_error(text, line, key, msg);
        }
    }

    #[test]
    fn sources_are_read_and_checked() {
        let c = parse(
            "[[source]]\nname = \"web-1\"\ntoken = \"0123456789abcdef0123\"\nroutes = [\"blue\"]\n[[source]]\nname = \"ssh-1\"\ntoken = \"fedcba98765432100123\"\n",
        )
        .unwrap();
        assert_eq!(c.sources.len(), 2);
        assert_eq!(
            c.sources[0].routes.as_deref(),
            Some(&["blue".to_string()][..])
        );
        assert_eq!(c.sources[1].routes, None);
        assert!(
            !format!("{:?}", c.sources).contains("0123456789abcdef"),
            "Debug never shows tokens"
        );
        let cases = [
            ("[[source]]\nname = \"a\"\ntoken = \"short\"\n", 3, "source[0].token", "at least 16"),
            ("[[source]]\nname = \"a b\"\ntoken = \"0123456789abcdef0\"\n", 2, "source[0].name", "letters"),
            ("[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nroutes = [\"nope\"]\n", 4, "source[0].routes", "nope"),
            (
                "[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\n[[source]]\nname = \"b\"\ntoken = \"0123456789abcdef0\"\n",
                6,
                "source[1].token",
                "reuses",
            ),
            ("[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nroutes = \"red\"\n", 4, "source[0].routes", "sequence"),
        ];
        for (text, line, key, msg) in cases {
            let e = expect_error(text, line, key, msg);
            assert!(
                !e.to_string().contains("0123456789abcdef0"),
                "errors never show tokens: {e}"
            );
        }
    }

    #[test]
    fn heartbeats_are_read_with_grace_defaulting_to_the_period() {
        use crate::core::heartbeat::Spec;
        let c = parse(
            "[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nheartbeat = \"5m\"\n[[source]]\nname = \"b\"\ntoken = \"0123456789abcdef1\"\nheartbeat = \"2s\"\ngrace = \"1500ms\"\n[[source]]\nname = \"c\"\ntoken = \"0123456789abcdef2\"\n",
        )
        .unwrap();
        let specs: Vec<Option<Spec>> = c.sources.iter().map(|s| s.heartbeat).collect();
        assert_eq!(
            specs,
            vec![
                Some(Spec {
                    period_ms: 300_000,
                    grace_ms: 300_000
                }),
                Some(Spec {
                    period_ms: 2000,
                    grace_ms: 1500
                }),
                None,
            ]
        );
        let cases = [
            ("[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nheartbeat = \"5\"\n", 4, "source[0].heartbeat", "unit"),
            ("[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nheartbeat = \"5m\"\ngrace = \"soon\"\n", 5, "source[0].grace", ""),
            ("[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nheartbeat = \"500ms\"\n", 4, "source[0].heartbeat", "at least 1s"),
            ("[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\ngrace = \"5m\"\n", 4, "source[0].grace", "without heartbeat"),
            ("[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nheartbeat = 300\n", 4, "source[0].heartbeat", "string"),
        ];
        for (text, line, key, msg) in cases {
            expect_error(text, line, key, msg);
        }
    }

    #[test]
    fn clashing_pins_name_the_line() {
        let e = err("[panel]\nled_count = 8\nmode_button_pin = 5\n");
        assert_eq!(e.key.as_deref(), Some("panel.mode_button_pin"));
        assert_eq!(e.line, Some(3));
        assert!(
            e.message.contains("BCM 5") && e.message.contains("tm1637_clk_pin"),
            "{e}"
        );
    }

    #[test]
    fn record_backend_needs_a_path() {
        let e = err("[panel]\nbackend = \"record\"\n");
        assert_eq!(e.key.as_deref(), Some("panel.record_path"));
        assert_eq!(e.line, Some(2), "the line that asks for recording");
    }

    #[test]
    fn every_truncation_of_the_example_gives_a_result_not_a_panic() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("banlight.example.toml");
        let text = std::fs::read_to_string(path).unwrap()
            + "[[source]]\nname = \"web-1\"\ntoken = \"0123456789abcdef0123\"\nroutes = [\"blue\", \"red\"]\n";
        for end in (0..=text.len()).filter(|i| text.is_char_boundary(*i)) {
            if let Err(e) = parse(&text[..end]) {
                assert!(e.line.is_some(), "{end}: {e}");
            }
        }
    }

    #[test]
    fn errors_at_the_end_of_the_file_do_not_panic() {
        for text in [
            "[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nroutes = [\"blue\",\n",
            "[[route]]\nname = \"a\"\ncolor = \"#ff0000\"\nlabel = \"",
            "[panel]\nled_count = ",
            "[[route]]\n",
            "\n\n\n[",
        ] {
            let e = err(text);
            let last = text.lines().count().max(1);
            assert!(e.line.is_some_and(|l| l >= 1 && l <= last), "{text:?}: {e}");
        }
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = err("listen = \n");
        assert_eq!(e.line, Some(1));
        let e = Config::load(Path::new("/nonexistent/banlight.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/banlight.toml"));
        assert!(e.message.contains("cannot read"));
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!("500ms".parse(), Ok(Millis(500)));
        assert_eq!("30s".parse(), Ok(Millis(30_000)));
        assert_eq!("10m".parse(), Ok(Millis(600_000)));
        assert_eq!("2h".parse(), Ok(Millis(7_200_000)));
        assert_eq!("1d".parse(), Ok(Millis(86_400_000)));
        assert_eq!("0s".parse(), Ok(Millis(0)));
        assert_eq!("10 minutes".parse(), Ok(Millis(600_000)));
        assert_eq!("1h30m".parse(), Ok(Millis(5_400_000)));
        for bad in ["", "10", "s", "-1s", "10 parsecs", "99999999999999999999d"] {
            assert!(bad.parse::<Millis>().is_err(), "{bad}");
        }
    }

    #[test]
    fn mqtt_is_read_and_checked() {
        assert!(parse("").unwrap().mqtt.is_none());
        let c = parse("[mqtt]\nurl = \"mqtts://broker.lan\"\nusername = \"desk\"\npassword_file = \"/etc/banlight/mqtt.pw\"\nsubscribe = true\n").unwrap();
        let m = c.mqtt.unwrap();
        assert!(m.broker.tls);
        assert_eq!(m.broker.port, 8883);
        assert_eq!(
            m.password,
            MqttPassword::File("/etc/banlight/mqtt.pw".into())
        );
        assert_eq!(m.keep_alive_ms, 30_000);
        assert_eq!(m.hooks_topic, DEFAULT_HOOKS_TOPIC);
        assert!(m.subscribe && !m.allow_commands && m.discovery);
        assert_eq!(m.topic_prefix, None, "banlight/<hostname> at start");
        let c = parse(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:1884\"\nusername = \"u\"\npassword = \"secret-pw\"\n",
        )
        .unwrap();
        assert!(
            !format!("{c:?}").contains("secret-pw"),
            "Debug never shows the password"
        );
        let cases = [
            ("[mqtt]\nurl = \"tcp://b:1883\"\n", 2, "mqtt.url", "mqtt://"),
            ("[mqtt]\nsubscribe = true\n", 1, "mqtt", "url"),
            ("[mqtt]\nurl = \"mqtt://b\"\nca_file = \"/x.pem\"\n", 3, "mqtt.ca_file", "mqtts"),
            ("[mqtt]\nurl = \"mqtt://b\"\nusername = \"u\"\npassword = \"p\"\npassword_file = \"/p\"\n", 5, "mqtt.password_file", "not both"),
            ("[mqtt]\nurl = \"mqtt://b\"\npassword = \"p\"\n", 3, "mqtt.password", "username"),
            ("[mqtt]\nurl = \"mqtt://b\"\ntopic_prefix = \"a/#\"\n", 3, "mqtt.topic_prefix", "wildcards"),
            ("[mqtt]\nurl = \"mqtt://b\"\nhooks_topic = \"/x\"\n", 3, "mqtt.hooks_topic", "topic"),
            ("[mqtt]\nurl = \"mqtt://b\"\nkeep_alive = \"1s\"\n", 3, "mqtt.keep_alive", "5s"),
            ("[mqtt]\nurl = \"mqtt://b\"\nclient_id = \"a b\"\n", 3, "mqtt.client_id", "letters"),
            ("[mqtt]\nurl = \"mqtt://b\"\noutbox_max = 1\n", 3, "mqtt.outbox_max", "range"),
            ("[mqtt]\nurl = \"mqtt://b\"\nallow_reset = true\n", 3, "mqtt.allow_reset", "unknown"),
        ];
        for (text, line, key, msg) in cases {
            let e = expect_error(text, line, key, msg);
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }
}
