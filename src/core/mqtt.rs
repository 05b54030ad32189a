//! MQTT without the network: the broker URL, topic names, the JSON of a
//! published event and of an incoming hook, and Home Assistant discovery
//! configs. Pure (no I/O, time passed in), so it is unit-tested here and
//! `src/mqtt.rs` only moves bytes.

use crate::core::hook::HookParams;
use serde_json::{json, Value};

/// Where the broker is: `mqtt://host[:1883]` or `mqtts://host[:8883]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

/// Parses a broker URL. Written by hand (a URL crate would be a dependency
/// for three fields): scheme, host or `[v6]`, optional port, nothing else.
pub fn parse_url(url: &str) -> Result<BrokerUrl, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else {
        return Err(format!(
            "broker url \"{url}\" must start with mqtt:// or mqtts:// (like \"mqtt://192.168.1.10:1883\")"
        ));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "broker url \"{url}\" has a path, query or user part: give only host and port (user name and password have their own keys)"
        ));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("broker url \"{url}\": unclosed [ in the IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("broker url \"{url}\": expected :PORT after ]"))?,
            ),
        };
        (h, port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(format!("broker url \"{url}\" has no host"));
    }
    let port = match port {
        None => {
            if tls {
                8883
            } else {
                1883
            }
        }
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("broker url \"{url}\": port \"{p}\" is not 1-65535"))?,
    };
    Ok(BrokerUrl {
        tls,
        host: host.to_string(),
        port,
    })
}

/// A topic we publish to or subscribe to: no wildcards, no empty levels at
/// the ends, no NUL, at most 256 bytes (the MQTT limit is 64 KiB; nobody
/// needs that on a desk).
pub fn valid_topic(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 256
        && !t.starts_with('/')
        && !t.ends_with('/')
        && !t.contains(['+', '#', '\0'])
}

/// A host name as a Home Assistant node id / MQTT topic level: `[a-zA-Z0-9_-]`.
pub fn node_id(host: &str) -> String {
    let id = cleaned(host.split('.').next().unwrap_or(""));
    if id.is_empty() {
        "banlight".into()
    } else {
        id
    }
}

/// `[a-zA-Z0-9_-]` kept, every other character made `_`.
fn cleaned(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A name as a Home Assistant discovery topic level, which may hold only
/// `[a-zA-Z0-9_-]`: other characters become `_`, and then a short digest of
/// the whole name follows, so two names that clean up alike (`x.a`, `x_a`)
/// never share topics or unique ids. A clean name is kept as it is.
pub fn topic_level(name: &str) -> String {
    let clean = cleaned(name);
    if clean == name && !name.is_empty() {
        return clean;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let tag: String = digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{clean}_{tag}")
}

/// One counted event as published on `<prefix>/events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutEvent {
    /// The outbox sequence number: increases by one per counted event of
    /// this desk, across restarts (a gap means events were dropped).
    pub seq: u64,
    /// The event id: the sender's, or `<client id>-<seq>` when it gave none
    /// (unique per broker, as client ids are).
    pub id: String,
    pub ts_ms: u64,
    pub route: String,
    pub source: Option<String>,
    pub jail: Option<String>,
    pub ip: Option<String>,
}

impl OutEvent {
    pub fn to_json(&self) -> String {
        json!({
            "id": self.id,
            "seq": self.seq,
            "time": crate::core::time::rfc3339_utc(self.ts_ms),
            "ts_ms": self.ts_ms,
            "route": self.route,
            "source": self.source,
            "jail": self.jail,
            "ip": self.ip,
        })
        .to_string()
    }
}

/// A hook received over MQTT, checked for form (not yet for its token):
/// its route and the same fields an HTTP hook has, `id` always set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InHook {
    pub route: String,
    pub fields: HookParams,
    /// `sig`: hex HMAC-SHA256 of [`InHook::signed`] under the source's
    /// token (issue 19, item 7), instead of the token itself.
    pub sig: Option<String>,
    /// What a `sig` covers: [`signed_text`] of the fields as sent.
    pub signed: String,
}

impl std::fmt::Display for InHook {
    /// Never shows the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = &self.fields;
        write!(
            f,
            "id={} route={} source={:?} jail={:?} ip={:?}",
            h.id.as_deref().unwrap_or(""),
            self.route,
            h.source,
            h.jail,
            h.ip
        )
    }
}

/// Largest hook message accepted (a real one is ~200 bytes).
pub const MAX_HOOK_MESSAGE: usize = 4096;

/// Parses `{"id","route","token","source","jail","ip","time"}`. `id` and
/// `route` are required; the rest is checked exactly like the HTTP hook's
/// parameters (names, canonical ip, whole unix seconds).
/// Where a desk acknowledges the hooks it stored (issue 19, item 3), per
/// sender: `<hooks_topic>/ack/<source>`. A source name is 1-64 of letters,
/// digits and `. _ - : @` (checked with the hook), so never `/`, `+` or `#`.
pub fn ack_topic(hooks_topic: &str, source: &str) -> String {
    format!("{hooks_topic}/ack/{source}")
}

pub fn parse_hook_message(payload: &[u8]) -> Result<InHook, String> {
    if payload.len() > MAX_HOOK_MESSAGE {
        return Err(format!("message larger than {MAX_HOOK_MESSAGE} bytes"));
    }
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let text = |k: &str| -> Result<Option<String>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(_) => Err(format!("\"{k}\" must be a string")),
        }
    };
    let id = text("id")?.ok_or("\"id\" (the event id) is required")?;
    if !crate::core::hook::valid_event_id(&id) {
        return Err("\"id\" must be 1-128 printable characters without spaces".into());
    }
    let route = text("route")?.ok_or("\"route\" is required")?;
    // What a signature covers: the fields as sent, before any check
    // rewrites them (the ip is made canonical below).
    let raw_time = match obj.get("time") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let signed = signed_text(
        &id,
        &route,
        &text("source")?.unwrap_or_default(),
        &text("jail")?.unwrap_or_default(),
        &text("ip")?.unwrap_or_default(),
        &raw_time,
    );
    let sig = text("sig")?;
    if sig
        .as_deref()
        .is_some_and(|s| s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err("\"sig\" must be 64 hex digits (HMAC-SHA256)".into());
    }
    // The same checks as the HTTP hook's fields, straight from the JSON.
    let mut params = HookParams::default();
    for k in ["jail", "source", "ip"] {
        if let Some(v) = text(k)? {
            params.set(k, &v)?;
        }
    }
    match obj.get("time") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) => params.set(
            "time",
            &n.as_u64()
                .ok_or("\"time\" must be whole unix seconds")?
                .to_string(),
        )?,
        Some(Value::String(s)) => params.set("time", s)?,
        Some(_) => return Err("\"time\" must be unix seconds".into()),
    }
    params.token = text("token")?;
    params.id = Some(id);
    Ok(InHook {
        route,
        fields: params,
        sig,
        signed,
    })
}

/// The text a hook message's `sig` signs (issue 19, item 7): a version tag,
/// then id, route, source, jail, ip and time as sent, one per line (absent
/// ones empty). It covers the event id and the time, so a captured message
/// cannot be changed (another ip, a new time or id) and sent as a new ban.
/// The delivery script builds the same text for `openssl dgst -hmac`.
pub fn signed_text(
    id: &str,
    route: &str,
    source: &str,
    jail: &str,
    ip: &str,
    time: &str,
) -> String {
    format!("banlight-hook-v1\n{id}\n{route}\n{source}\n{jail}\n{ip}\n{time}")
}

/// Topics of one desk under its prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub prefix: String,
}

impl Topics {
    pub fn availability(&self) -> String {
        format!("{}/availability", self.prefix)
    }
    pub fn events(&self) -> String {
        format!("{}/events", self.prefix)
    }
    pub fn count(&self, route: &str) -> String {
        format!("{}/count/{route}", self.prefix)
    }
    pub fn total(&self) -> String {
        format!("{}/total", self.prefix)
    }
    pub fn last_24h(&self) -> String {
        format!("{}/last_24h", self.prefix)
    }
    pub fn panel(&self) -> String {
        format!("{}/panel", self.prefix)
    }
    /// A watched source's heartbeat state, retained (see `heartbeat_payload`).
    pub fn heartbeat(&self, source: &str) -> String {
        format!("{}/heartbeat/{source}", self.prefix)
    }
    /// `<prefix>/cmd/<name>`: test, next_mode, brightness.
    pub fn command(&self, name: &str) -> String {
        format!("{}/cmd/{name}", self.prefix)
    }
}

/// A command that came back over MQTT (only with `allow_commands = true`).
/// Reset and shutdown deliberately do not exist here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Play a route's sweep without counting (payload: a route, or empty
    /// / `PRESS` for the first route).
    TestSweep(Option<String>),
    NextMode,
    /// LED brightness 0-31.
    Brightness(u8),
}

pub fn parse_command(prefix: &str, topic: &str, payload: &[u8]) -> Result<Command, String> {
    let name = topic
        .strip_prefix(prefix)
        .and_then(|t| t.strip_prefix("/cmd/"))
        .ok_or_else(|| format!("not a command topic: {topic}"))?;
    let text = std::str::from_utf8(payload)
        .map_err(|_| "payload is not UTF-8".to_string())?
        .trim();
    match name {
        "test" => Ok(Command::TestSweep(
            (!text.is_empty() && text != "PRESS").then(|| text.to_string()),
        )),
        "next_mode" => Ok(Command::NextMode),
        "brightness" => {
            let v: f64 = text
                .parse()
                .map_err(|_| format!("brightness \"{text}\" is not a number"))?;
            if !(0.0..=31.0).contains(&v) {
                return Err(format!("brightness {v} is out of range 0-31"));
            }
            Ok(Command::Brightness(v.round() as u8))
        }
        other => Err(format!(
            "unknown command \"{other}\" (test, next_mode, brightness; reset and shutdown are never taken over MQTT)"
        )),
    }
}

/// The retained payload of a source's heartbeat topic: its state
/// (`new`/`up`/`late`/`down`), whether that is a problem (down: silent past
/// the grace, or fail2ban not answering), the last heartbeat (unix ms) and
/// what the server said of fail2ban.
pub fn heartbeat_payload(state: &str, last_ms: Option<u64>, fail2ban_up: Option<bool>) -> Value {
    json!({
        "state": state,
        "problem": state == "down",
        "last_ms": last_ms,
        "fail2ban_up": fail2ban_up,
    })
}

/// One retained Home Assistant discovery message.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    pub topic: String,
    pub config: Value,
}

/// Who the desk is to Home Assistant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desk {
    /// Home Assistant's discovery prefix (`homeassistant`).
    pub discovery_prefix: String,
    /// The node id: a topic level, unique per broker (from the client id).
    pub node: String,
    /// The device's name, unique per host (see [`device_name`]).
    pub name: String,
    pub topics: Topics,
    /// `allow_commands`: buttons and a settable brightness.
    pub commands: bool,
    /// The live page, when it is enabled: the device's `configuration_url`.
    pub page_url: Option<String>,
}

/// The device's name: `banlight <host>`, and with a client id of its own
/// (two desks on one host must have two) `banlight <host> <client id>`,
/// so two desks never show as one name.
pub fn device_name(host: &str, client_id: &str, default_client_id: &str) -> String {
    if client_id == default_client_id {
        format!("banlight {host}")
    } else {
        format!("banlight {host} {client_id}")
    }
}

/// The live page's address for Home Assistant's "visit device" link: the
/// host name when the daemon listens on every address, else the address.
pub fn page_url(host: &str, addr: std::net::SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let ip = addr.ip();
    let at = if ip.is_unspecified() {
        host.to_string()
    } else if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    format!("{scheme}://{at}:{}/", addr.port())
}

/// An entity id's object part as Home Assistant writes it: lowercase
/// `[a-z0-9_]`, runs of anything else one `_`, none at the ends (what its
/// `slugify` makes of our names, so old and new versions agree).
pub fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// The entity ids' common start: `banlight_<node>`, without saying
/// banlight twice for the default client id `banlight-<host>`.
fn entity_base(node: &str) -> String {
    let node = slug(node);
    if node == "banlight" || node.starts_with("banlight_") {
        node
    } else {
        format!("banlight_{node}")
    }
}

/// Everything Home Assistant needs to show this desk: a device with a
/// count sensor per route (total_increasing), total and last-24-h sensors,
/// a problem binary sensor per heartbeat source, the LED brightness (a
/// number with commands allowed, else a read-only sensor: HA refuses a
/// number without a command topic) and, only with commands allowed,
/// buttons for a test sweep and the next display mode.
///
/// One config per entity (HA's per-component discovery, still supported
/// beside device-based discovery): a removed route or source is cleared
/// by an empty retained config on its own topic, which is simplest to
/// keep right. Each config carries `default_entity_id` (HA 2025.10 and
/// later) and `object_id` (what older HA reads; newer HA ignores it when
/// `default_entity_id` is there), both the same id.
pub fn discovery(desk: &Desk, routes: &[String], heartbeat_sources: &[String]) -> Vec<Discovery> {
    let node = desk.node.as_str();
    let topics = &desk.topics;
    let mut device = json!({
        "identifiers": [format!("banlight_{node}")],
        "name": desk.name,
        "manufacturer": "banlight",
        "model": "banlight desk appliance",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    if let Some(url) = &desk.page_url {
        device["configuration_url"] = json!(url);
    }
    let origin = json!({
        "name": "banlight",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let avail = topics.availability();
    let base = entity_base(node);
    let entity = |component: &str, object: &str, mut config: Value| {
        let c = config.as_object_mut().expect("object");
        let id = format!("{base}_{}", slug(object));
        c.insert(
            "unique_id".into(),
            json!(format!("banlight_{node}_{object}")),
        );
        c.insert(
            "default_entity_id".into(),
            json!(format!("{component}.{id}")),
        );
        c.insert("object_id".into(), json!(id));
        c.insert("availability_topic".into(), json!(avail));
        c.insert("payload_available".into(), json!("online"));
        c.insert("payload_not_available".into(), json!("offline"));
        c.insert("device".into(), device.clone());
        c.insert("origin".into(), origin.clone());
        Discovery {
            topic: format!(
                "{}/{component}/{node}/{object}/config",
                desk.discovery_prefix
            ),
            config,
        }
    };
    let mut out = Vec::new();
    for r in routes {
        out.push(entity(
            "sensor",
            &format!("route_{r}"),
            json!({
                "name": format!("{r} bans"),
                "state_topic": topics.count(r),
                "state_class": "total_increasing",
                "unit_of_measurement": "bans",
                "icon": "mdi:shield-alert",
            }),
        ));
    }
    for source in heartbeat_sources {
        out.push(entity(
            "binary_sensor",
            &format!("heartbeat_{}", topic_level(source)),
            json!({
                "name": format!("{source} heartbeat"),
                "state_topic": topics.heartbeat(source),
                "device_class": "problem",
                "value_template": "{{ 'ON' if value_json.problem else 'OFF' }}",
                "json_attributes_topic": topics.heartbeat(source),
            }),
        ));
    }
    out.push(entity(
        "sensor",
        "total",
        json!({
            "name": "Total bans",
            "state_topic": topics.total(),
            "state_class": "total_increasing",
            "unit_of_measurement": "bans",
            "icon": "mdi:shield-alert",
        }),
    ));
    out.push(entity(
        "sensor",
        "last_24h",
        json!({
            "name": "Bans in the last 24 h",
            "state_topic": topics.last_24h(),
            "state_class": "measurement",
            "unit_of_measurement": "bans",
            "icon": "mdi:shield-half-full",
        }),
    ));
    if desk.commands {
        out.push(entity(
            "number",
            "led_brightness",
            json!({
                "name": "LED brightness",
                "state_topic": topics.panel(),
                "value_template": "{{ value_json.led_brightness }}",
                "command_topic": topics.command("brightness"),
                "min": 0,
                "max": 31,
                "step": 1,
                "mode": "slider",
                "icon": "mdi:brightness-6",
                "entity_category": "config",
            }),
        ));
    } else {
        // Home Assistant refuses a number without a command topic: a desk
        // that takes no commands shows its brightness read-only.
        out.push(entity(
            "sensor",
            "led_brightness",
            json!({
                "name": "LED brightness",
                "state_topic": topics.panel(),
                "value_template": "{{ value_json.led_brightness }}",
                "icon": "mdi:brightness-6",
                "entity_category": "diagnostic",
            }),
        ));
    }
    if desk.commands {
        out.push(entity(
            "button",
            "test_sweep",
            json!({
                "name": "Test sweep",
                "command_topic": topics.command("test"),
                "payload_press": "PRESS",
                "icon": "mdi:led-strip-variant",
                "entity_category": "config",
            }),
        ));
        out.push(entity(
            "button",
            "next_mode",
            json!({
                "name": "Next display mode",
                "command_topic": topics.command("next_mode"),
                "payload_press": "PRESS",
                "icon": "mdi:numeric",
                "entity_category": "config",
            }),
        ));
    }
    out
}

/// The Home Assistant components `discovery` publishes (the desk subscribes
/// to its own configs under these only).
pub const DISCOVERY_COMPONENTS: [&str; 4] = ["sensor", "binary_sensor", "number", "button"];

/// Does a discovery topic belong to this node (`<prefix>/<component>/<node>/<object>/config`)?
pub fn is_own_discovery_topic(discovery_prefix: &str, node: &str, topic: &str) -> bool {
    let Some(rest) = topic.strip_prefix(discovery_prefix) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    parts.len() == 5 && parts[0].is_empty() && parts[2] == node && parts[4] == "config"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desk(topics: Topics, commands: bool) -> Desk {
        Desk {
            discovery_prefix: "homeassistant".into(),
            node: "desk".into(),
            name: "banlight desk.lan".into(),
            topics,
            commands,
            page_url: None,
        }
    }

    #[test]
    fn urls() {
        let ok = |u: &str, tls, host: &str, port| {
            assert_eq!(
                parse_url(u),
                Ok(BrokerUrl {
                    tls,
                    host: host.into(),
                    port
                }),
                "{u}"
            )
        };
        ok("mqtt://127.0.0.1:1883", false, "127.0.0.1", 1883);
        ok("mqtt://broker.lan", false, "broker.lan", 1883);
        ok(
            "mqtts://broker.example.org",
            true,
            "broker.example.org",
            8883,
        );
        ok(
            "mqtts://broker.example.org:8884/",
            true,
            "broker.example.org",
            8884,
        );
        ok("mqtt://[::1]:1884", false, "::1", 1884);
        ok("mqtt://[2001:db8::5]", false, "2001:db8::5", 1883);
        for (bad, why) in [
            ("tcp://host:1883", "mqtt://"),
            ("http://host", "mqtt://"),
            ("mqtt://", "no host"),
            ("mqtt://:1883", "no host"),
            ("mqtt://host:0", "1-65535"),
            ("mqtt://host:99999", "1-65535"),
            ("mqtt://host:port", "1-65535"),
            ("mqtt://user:pw@host", "user"),
            ("mqtt://host/topic", "path"),
            ("mqtt://[::1", "unclosed"),
            ("mqtt://[::1]1883", ":PORT"),
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn topics_and_node_ids() {
        assert!(valid_topic("banlight/pi"));
        for bad in ["", "/a", "a/", "a/+/b", "a/#", "a\0b"] {
            assert!(!valid_topic(bad), "{bad:?}");
        }
        assert!(!valid_topic(&"a".repeat(257)));
        assert_eq!(node_id("desk-pi.local"), "desk-pi");
        assert_eq!(node_id("Desk Pi"), "Desk_Pi");
        assert_eq!(node_id(""), "banlight");
        let t = Topics {
            prefix: "banlight/desk".into(),
        };
        assert_eq!(t.count("red"), "banlight/desk/count/red");
        assert_eq!(t.heartbeat("web-1"), "banlight/desk/heartbeat/web-1");
    }

    #[test]
    fn an_event_is_json_with_its_original_time() {
        let e = OutEvent {
            seq: 7,
            id: "desk-7".into(),
            ts_ms: 1_700_000_000_000,
            route: "red".into(),
            source: Some("web-1".into()),
            jail: Some("sshd".into()),
            ip: None,
        };
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["id"], "desk-7");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["time"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["ts_ms"], 1_700_000_000_000u64);
        assert_eq!(v["route"], "red");
        assert_eq!(v["source"], "web-1");
        assert_eq!(v["jail"], "sshd");
        assert!(v["ip"].is_null());
    }

    #[test]
    fn hook_messages_are_checked_like_http_hooks() {
        let h = parse_hook_message(
            br#"{"id":"web-1:sshd:203.0.113.9:1700000000","route":"red","token":"t0123456789abcdef","source":"web-1","jail":"sshd","ip":"::ffff:203.0.113.9","time":1700000000}"#,
        )
        .unwrap();
        assert_eq!(
            h.fields.id.as_deref(),
            Some("web-1:sshd:203.0.113.9:1700000000")
        );
        assert_eq!(h.fields.ip.as_deref(), Some("203.0.113.9"), "canonical");
        assert_eq!(h.fields.time, Some(1_700_000_000));
        assert_eq!(h.fields.token.as_deref(), Some("t0123456789abcdef"));
        assert!(!h.to_string().contains("t0123456789abcdef"), "{h}");
        let h = parse_hook_message(br#"{"id":"x1","route":"red","time":"1700000000"}"#).unwrap();
        let f = h.fields;
        assert_eq!((f.time, f.jail, f.ip), (Some(1_700_000_000), None, None));
        for (bad, why) in [
            (&b"not json"[..], "JSON"),
            (b"[1]", "object"),
            (br#"{"route":"red"}"#, "id"),
            (br#"{"id":"a b","route":"red"}"#, "id"),
            (br#"{"id":"x"}"#, "route"),
            (br#"{"id":"x","route":"red","ip":"999.1.1.1"}"#, "ip"),
            (br#"{"id":"x","route":"red","jail":"a b"}"#, "jail"),
            (br#"{"id":"x","route":"red","time":-5}"#, "time"),
            (br#"{"id":"x","route":"red","time":1.5}"#, "time"),
            (br#"{"id":"x","route":"red","time":"soon"}"#, "time"),
            (br#"{"id":"x","route":5}"#, "route"),
        ] {
            let e = parse_hook_message(bad).unwrap_err();
            assert!(e.contains(why), "{}: {e}", String::from_utf8_lossy(bad));
        }
        assert!(parse_hook_message(&vec![b' '; MAX_HOOK_MESSAGE + 1]).is_err());
    }

    #[test]
    fn commands_never_include_reset_or_shutdown() {
        let p = "banlight/desk";
        let c = |t: &str, b: &[u8]| parse_command(p, &format!("{p}/cmd/{t}"), b);
        assert_eq!(c("test", b"PRESS"), Ok(Command::TestSweep(None)));
        assert_eq!(
            c("test", b"blue"),
            Ok(Command::TestSweep(Some("blue".into())))
        );
        assert_eq!(c("next_mode", b"PRESS"), Ok(Command::NextMode));
        assert_eq!(c("brightness", b"12.0"), Ok(Command::Brightness(12)));
        assert!(c("brightness", b"32").is_err());
        assert!(c("brightness", b"bright").is_err());
        for never in ["reset", "shutdown", "poweroff"] {
            assert!(c(never, b"PRESS").unwrap_err().contains("never"));
        }
        assert!(parse_command(p, "other/cmd/test", b"").is_err());
    }

    #[test]
    fn each_heartbeat_source_is_a_problem_binary_sensor() {
        let t = Topics {
            prefix: "banlight/desk".into(),
        };
        let d = discovery(
            &desk(t, false),
            &["red".to_string()],
            &["web-1".to_string()],
        );
        let hb = d
            .iter()
            .find(|d| d.topic == "homeassistant/binary_sensor/desk/heartbeat_web-1/config")
            .expect("a binary sensor for web-1");
        assert_eq!(hb.config["device_class"], "problem");
        assert_eq!(hb.config["state_topic"], "banlight/desk/heartbeat/web-1");
        assert_eq!(hb.config["unique_id"], "banlight_desk_heartbeat_web-1");
        assert_eq!(
            heartbeat_payload("down", Some(5), Some(false)),
            json!({"state": "down", "problem": true, "last_ms": 5, "fail2ban_up": false})
        );
        assert_eq!(heartbeat_payload("late", None, None)["problem"], false);
    }

    #[test]
    fn discovery_has_the_documented_fields() {
        let t = Topics {
            prefix: "banlight/desk".into(),
        };
        let routes = vec!["red".to_string(), "blue".to_string()];
        let all = discovery(&desk(t.clone(), false), &routes, &[]);
        let topics: Vec<&str> = all.iter().map(|d| d.topic.as_str()).collect();
        assert_eq!(
            topics,
            [
                "homeassistant/sensor/desk/route_red/config",
                "homeassistant/sensor/desk/route_blue/config",
                "homeassistant/sensor/desk/total/config",
                "homeassistant/sensor/desk/last_24h/config",
                "homeassistant/sensor/desk/led_brightness/config",
            ],
            "no buttons without allow_commands"
        );
        let red = &all[0].config;
        assert_eq!(red["state_class"], "total_increasing");
        assert_eq!(red["state_topic"], "banlight/desk/count/red");
        assert_eq!(red["device"]["name"], "banlight desk.lan");
        assert_eq!(red["availability_topic"], "banlight/desk/availability");
        assert_eq!(red["unique_id"], "banlight_desk_route_red");
        assert!(all[4].config.get("command_topic").is_none());
        let with = discovery(&desk(t, true), &routes, &[]);
        assert_eq!(with.len(), 7);
        assert_eq!(
            with[4].config["command_topic"],
            "banlight/desk/cmd/brightness"
        );
        assert_eq!(with[5].topic, "homeassistant/button/desk/test_sweep/config");
        assert_eq!(
            with[6].config["command_topic"],
            "banlight/desk/cmd/next_mode"
        );
        assert!(is_own_discovery_topic(
            "homeassistant",
            "desk",
            "homeassistant/sensor/desk/route_red/config"
        ));
        assert!(!is_own_discovery_topic(
            "homeassistant",
            "desk",
            "homeassistant/sensor/other/route_red/config"
        ));
        assert!(!is_own_discovery_topic(
            "homeassistant",
            "desk",
            "homeassistant/sensor/desk/route_red/state"
        ));
    }
    #[test]
    fn a_number_always_has_a_command_topic_and_a_read_only_desk_gets_a_sensor() {
        let t = Topics {
            prefix: "banlight/desk".into(),
        };
        for commands in [false, true] {
            let d = discovery(&desk(t.clone(), commands), &[], &[]);
            for e in d.iter().filter(|e| e.topic.contains("/number/")) {
                assert!(e.config.get("command_topic").is_some(), "{}", e.topic);
            }
            let brightness = d
                .iter()
                .find(|e| e.topic.ends_with("/led_brightness/config"))
                .expect("a brightness entity");
            let want = if commands { "number" } else { "sensor" };
            assert!(
                brightness.topic.contains(&format!("/{want}/")),
                "{}",
                brightness.topic
            );
        }
    }

    #[test]
    fn discovery_topic_levels_are_what_home_assistant_accepts_and_stay_distinct() {
        let t = Topics {
            prefix: "banlight/desk".into(),
        };
        let sources = ["web-2.example.com", "web-2_example_com", "web_2"].map(String::from);
        let d = discovery(&desk(t, false), &[], &sources);
        let hb: Vec<&Discovery> = d
            .iter()
            .filter(|e| e.topic.contains("/binary_sensor/"))
            .collect();
        assert_eq!(hb.len(), 3);
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        for e in &hb {
            let level = e.topic.split('/').nth(3).unwrap();
            assert!(level.chars().all(ok), "{}", e.topic);
        }
        let mut levels: Vec<&str> = hb
            .iter()
            .map(|e| e.topic.split('/').nth(3).unwrap())
            .collect();
        levels.dedup();
        assert_eq!(levels.len(), 3, "{levels:?}");
        // The real name stays in the entity's name and state topic.
        assert_eq!(hb[0].config["name"], "web-2.example.com heartbeat");
        assert_eq!(
            hb[0].config["state_topic"],
            "banlight/desk/heartbeat/web-2.example.com"
        );
        assert_eq!(
            topic_level("web_2"),
            "web_2",
            "a clean name is kept as it is"
        );
    }

    #[test]
    fn discovery_uses_only_the_components_the_desk_subscribes_to() {
        let t = Topics {
            prefix: "banlight/desk".into(),
        };
        let d = discovery(&desk(t, true), &["red".into()], &["w".into()]);
        for e in d {
            let component = e.topic.split('/').nth(1).unwrap();
            assert!(DISCOVERY_COMPONENTS.contains(&component), "{}", e.topic);
        }
    }

    #[test]
    fn client_ids_that_differ_after_a_dot_get_different_node_ids() {
        assert_ne!(topic_level("x.a"), topic_level("x.b"));
        assert_ne!(topic_level("x.a"), topic_level("x_a"));
        assert_eq!(topic_level("banlight-desk"), "banlight-desk");
        assert!(!topic_level("").is_empty());
    }

    #[test]
    fn every_entity_has_a_default_entity_id_and_the_old_object_id() {
        let t = Topics {
            prefix: "banlight/desk".into(),
        };
        let sources = ["web-2.example.com".to_string()];
        let d = discovery(&desk(t, true), &["red".to_string()], &sources);
        let ids: Vec<String> = d
            .iter()
            .map(|e| e.config["default_entity_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            ids,
            [
                "sensor.banlight_desk_route_red",
                "binary_sensor.banlight_desk_heartbeat_web_2_example_com_3eab4786",
                "sensor.banlight_desk_total",
                "sensor.banlight_desk_last_24h",
                "number.banlight_desk_led_brightness",
                "button.banlight_desk_test_sweep",
                "button.banlight_desk_next_mode",
            ]
        );
        for e in &d {
            let id = e.config["default_entity_id"].as_str().unwrap();
            let (domain, object) = id.split_once('.').unwrap();
            assert_eq!(e.topic.split('/').nth(1), Some(domain), "{id}");
            assert_eq!(e.config["object_id"], object, "older HA reads object_id");
            assert!(
                object
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{id}"
            );
            assert_eq!(e.config["origin"]["name"], "banlight");
        }
        // The default client id banlight-<host> does not say banlight twice.
        let mut dflt = desk(
            Topics {
                prefix: "banlight/pi".into(),
            },
            false,
        );
        dflt.node = "banlight-pi".into();
        let d = discovery(&dflt, &[], &[]);
        assert_eq!(d[0].config["default_entity_id"], "sensor.banlight_pi_total");
        assert_eq!(d[0].config["unique_id"], "banlight_banlight-pi_total");
        assert_eq!(slug("Web--2.Example_"), "web_2_example");
    }

    #[test]
    fn settings_are_config_entities_and_the_device_links_the_page() {
        let t = Topics {
            prefix: "banlight/desk".into(),
        };
        let mut with = desk(t.clone(), true);
        with.page_url = Some(page_url("desk.lan", "0.0.0.0:8080".parse().unwrap(), false));
        let d = discovery(&with, &["red".to_string()], &[]);
        for e in &d {
            let category = &e.config["entity_category"];
            if e.topic.contains("/number/") || e.topic.contains("/button/") {
                assert_eq!(category, "config", "{}", e.topic);
            } else {
                assert!(category.is_null(), "{}", e.topic);
            }
            assert_eq!(
                e.config["device"]["configuration_url"],
                "http://desk.lan:8080/"
            );
        }
        let read_only = discovery(&desk(t, false), &[], &[]);
        let sensor = read_only
            .iter()
            .find(|e| e.topic.ends_with("/led_brightness/config"))
            .unwrap();
        // HA takes only `diagnostic` for a sensor's category.
        assert_eq!(sensor.config["entity_category"], "diagnostic");
        assert!(sensor.config["device"].get("configuration_url").is_none());
        assert_eq!(
            page_url("pi", "192.168.1.5:80".parse().unwrap(), false),
            "http://192.168.1.5:80/"
        );
        assert_eq!(
            page_url("pi", "[::1]:8443".parse().unwrap(), true),
            "https://[::1]:8443/"
        );
    }

    #[test]
    fn two_desks_on_one_host_have_two_device_names() {
        let a = device_name("pi", "banlight-pi", "banlight-pi");
        let b = device_name("pi", "desk-b", "banlight-pi");
        assert_eq!(a, "banlight pi");
        assert_ne!(a, b);
        assert_ne!(b, device_name("pi", "desk-c", "banlight-pi"));
    }
}
