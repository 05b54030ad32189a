//! `[mqtt]`: the broker, the topics, and what the desk takes from it.

use std::fmt;
use std::path::PathBuf;

use super::error::{ConfigError, Locator};
use super::raw::RawMqtt;
use toml::Spanned;

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
    /// Accept hooks that carry their token in the payload (the old form,
    /// deprecated: every subscriber of the topic sees the token) besides
    /// signed ones (issue 19, item 7).
    pub accept_payload_token: bool,
    /// Publish Home Assistant discovery configs.
    pub discovery: bool,
    pub discovery_prefix: String,
    /// Events kept for the broker at most; beyond, the oldest are dropped.
    pub outbox_max: u64,
}

pub(super) fn mqtt_config(m: &RawMqtt, loc: &Locator) -> Result<MqttConfig, ConfigError> {
    let err_at = |offset: usize, message: String| loc.at(offset, message);
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
        accept_payload_token: m.accept_payload_token,
        discovery: m.discovery,
        discovery_prefix,
        outbox_max: m.outbox_max,
    })
}
