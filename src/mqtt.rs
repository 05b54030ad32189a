//! The MQTT boundary (issue 12): one task that owns the broker connection.
//!
//! Out: counted events wait in the store's outbox (written in the
//! transaction that counted them); this task publishes them in order at QoS 1
//! and removes each only after the broker's PUBACK. Counts, the last 24 h and
//! the panel state are retained topics, availability has a last will, and
//! Home Assistant discovery configs describe the desk.
//!
//! In: with `subscribe = true`, hooks from the fleet topic go to the ledger
//! like HTTP hooks (token checked, event id deduped) and are acknowledged
//! only once stored. With `allow_commands = true`, a few harmless commands.
//!
//! Each connection is a fresh rumqttc client and event loop: on a lost
//! connection everything unacknowledged is simply resent from the outbox,
//! so the outbox (not rumqttc's memory) is the one source of truth.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, Publish};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::Outgoing;
use tokio::sync::{mpsc, watch, Notify};

use crate::auth::AuthError;
use crate::config::{MqttConfig, MqttPassword};
use crate::core::hook::Hook;
use crate::core::mqtt::{self as pure, Command, OutEvent, Topics};
use crate::engine::{EngineHandle, EngineMsg};
use crate::figures::MqttStats;
use crate::ledger::LedgerHandle;
use crate::state::State;
use crate::store::OutboxRow;

/// Outbox events published and not yet acknowledged, at most.
const WINDOW: usize = 256;
/// rumqttc's request queue: the window plus state and discovery messages.
const REQUEST_QUEUE: usize = 2048;
/// QoS 1 publishes rumqttc keeps in flight at most (the outbox window, the
/// stored-hook acknowledgements, state and discovery). rumqttc 0.25's MQTT
/// 5 client allocates its in-flight table for this many up front and
/// defaults to 65,535 (about 14 MiB of RSS); past the limit it waits for
/// PUBACKs before it sends more, so nothing is lost.
pub const INFLIGHT_LIMIT: u16 = 1024;
/// Acknowledged rows are removed in batches of up to this many (one
/// transaction each); a crash before that only means they are sent again.
const ACK_BATCH: usize = 128;
/// Retained state is compared this often, besides at every change: the
/// last-24-h figure decays without events. An unchanged payload is never
/// sent again.
const STATE_EVERY: Duration = Duration::from_secs(5);
/// Hooks from the broker being stored at once, at most; beyond, the event
/// loop waits (and TCP pushes back on the broker) instead of memory growing.
const HOOKS_IN_FLIGHT: usize = 1024;
/// When rumqttc's request queue was full, try again this soon.
const QUEUE_FULL_RETRY: Duration = Duration::from_millis(20);
/// The largest MQTT packet this desk takes, sent to the broker as MQTT 5's
/// Maximum Packet Size in CONNECT: the broker discards a larger message
/// for this desk instead of sending it (MQTT 5 §3.1.2.11.4), so no message
/// on any topic can break the connection. A hook is ~200 bytes; one up to
/// this size that is not a valid hook reaches the desk and is refused.
pub const MAX_PACKET: u32 = 64 * 1024;
/// A subscribing desk's session lasts for ever on the broker (MQTT 5's
/// session expiry interval 0xFFFFFFFF), like an MQTT 3.1.1 persistent session.
const SESSION_FOREVER: u32 = u32::MAX;
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// `[mqtt]` with the host-dependent defaults filled in and the password read.
#[derive(Clone)]
pub struct Settings {
    pub config: MqttConfig,
    pub host: String,
    /// This machine's host name as a topic level (default prefix, client id).
    pub node: String,
    /// Home Assistant's node id: the client id as a topic level, unique per
    /// broker by MQTT's own rule, so two desks never share entities.
    pub ha_node: String,
    pub client_id: String,
    pub topics: Topics,
    /// The device's name in Home Assistant, unique per host.
    pub device_name: String,
    /// The live page (when enabled), linked from the device.
    pub page_url: Option<String>,
    password: Option<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Settings {
    /// Reads the password file and the CAs now, so a mistake stops the start
    /// with a message naming the file.
    pub fn resolve(
        config: &MqttConfig,
        host: &str,
        page_url: Option<String>,
    ) -> anyhow::Result<Settings> {
        let node = pure::node_id(host);
        let password = match &config.password {
            MqttPassword::None => None,
            MqttPassword::Inline(p) => Some(p.clone()),
            MqttPassword::File(f) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| {
                        format!(
                            "cannot read [mqtt] password_file {} (it must be readable by the service user)",
                            f.display()
                        )
                    })?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            ),
        };
        let tls = if config.broker.tls {
            Some(Arc::new(tls_config(config.ca_file.as_deref())?))
        } else {
            None
        };
        let default_client_id = format!("banlight-{node}");
        let client_id = config
            .client_id
            .clone()
            .unwrap_or_else(|| default_client_id.clone());
        let ha_node = pure::topic_level(&client_id);
        // A desk with a client id of its own (a second desk on this host
        // must have one) gets its own topics too, not the host's.
        let default_prefix = match config.client_id {
            Some(_) => format!("banlight/{ha_node}"),
            None => format!("banlight/{node}"),
        };
        Ok(Settings {
            device_name: pure::device_name(host, &client_id, &default_client_id),
            page_url,
            topics: Topics {
                prefix: config.topic_prefix.clone().unwrap_or(default_prefix),
            },
            ha_node,
            client_id,
            host: host.to_string(),
            node,
            config: config.clone(),
            password,
            tls,
        })
    }

    fn options(&self) -> MqttOptions {
        let b = &self.config.broker;
        let mut o = MqttOptions::new(self.client_id.clone(), b.host.clone(), b.port);
        o.set_keep_alive(Duration::from_millis(self.config.keep_alive_ms));
        o.set_last_will(LastWill::new(
            self.topics.availability(),
            "offline",
            QoS::AtLeastOnce,
            true,
            None,
        ));
        // A subscribing desk keeps its session, so the broker holds the
        // fleet's hooks for it while it reboots; acks go out only once a
        // hook is stored.
        o.set_clean_start(!self.config.subscribe);
        if self.config.subscribe {
            o.set_session_expiry_interval(Some(SESSION_FOREVER));
        }
        o.set_manual_acks(true);
        o.set_request_channel_capacity(REQUEST_QUEUE);
        o.set_outgoing_inflight_upper_limit(INFLIGHT_LIMIT);
        // MQTT 5 (issue 19, item 2): the broker, told our Maximum Packet
        // Size, drops what is larger for us. With MQTT 3.1.1 the client can
        // only refuse such a packet by closing the connection, and the
        // broker resends it on every reconnect of the persistent session.
        o.set_max_packet_size(Some(MAX_PACKET));
        if let Some(user) = &self.config.username {
            o.set_credentials(user.clone(), self.password.clone().unwrap_or_default());
        }
        if let Some(tls) = &self.tls {
            o.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(tls.clone()),
            ));
        }
        o
    }
}

/// rustls with ring (no OpenSSL, no aws-lc): the system's CAs, or only
/// those in `ca_file`.
fn tls_config(ca_file: Option<&std::path::Path>) -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| {
                    anyhow::anyhow!("cannot read [mqtt] ca_file {}: {e}", path.display())
                })?;
            if certs.is_empty() {
                anyhow::bail!("[mqtt] ca_file {} holds no PEM certificate", path.display());
            }
            for c in certs {
                roots.add(c).with_context(|| {
                    format!(
                        "[mqtt] ca_file {}: a certificate is invalid",
                        path.display()
                    )
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                anyhow::bail!(
                    "no system CA certificates found for mqtts:// (install ca-certificates, or set [mqtt] ca_file)"
                );
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// What the task works with.
pub struct Mqtt {
    pub settings: Settings,
    pub ledger: LedgerHandle,
    pub state: Arc<State>,
    pub engine: EngineHandle,
    /// Notified by the ledger after a commit that filled the outbox, by
    /// the engine when the panel's published state changed and by the
    /// heartbeat watch when a source was heard or changed state.
    pub wake: Arc<Notify>,
    pub stats: Arc<MqttStats>,
}

enum Ended {
    Stopped,
    Lost { had_connected: bool },
}

impl Mqtt {
    /// Runs until `stop` turns true: then publishes `offline` and disconnects.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        if self.settings.config.subscribe && self.settings.config.accept_payload_token {
            tracing::warn!(
                "[mqtt] accept_payload_token = true is deprecated: hooks that carry their token \
                 in the payload are accepted, and every subscriber of {} sees those tokens; \
                 update the servers' banlight-deliver-mqtt (it signs) and remove the setting",
                self.settings.config.hooks_topic
            );
        }
        let this = Arc::new(self);
        let mut backoff = BACKOFF_MIN;
        let mut log = crate::core::loglimit::LogLimit::new(60_000);
        let refused_log = Arc::new(std::sync::Mutex::new(crate::core::loglimit::LogLimit::new(
            60_000,
        )));
        loop {
            match this
                .clone()
                .session(&mut stop, &mut log, &refused_log)
                .await
            {
                Ended::Stopped => return,
                Ended::Lost { had_connected } => {
                    this.stats.connected.store(false, Ordering::Relaxed);
                    this.stats.subscribed.store(false, Ordering::Relaxed);
                    // What waits is what status shows, broker or not.
                    this.refresh_pending().await;
                    if had_connected {
                        backoff = BACKOFF_MIN;
                    }
                    let until = tokio::time::Instant::now() + backoff;
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep_until(until) => break,
                            _ = tokio::time::sleep(STATE_EVERY) => this.refresh_pending().await,
                            _ = async { let _ = stop.wait_for(|stopped| *stopped).await; } => return,
                        }
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// The outbox's length into the status figures.
    async fn refresh_pending(&self) {
        if let Ok(n) = self.ledger.outbox_len().await {
            self.stats.pending.store(n, Ordering::Relaxed);
        }
    }

    async fn session(
        self: Arc<Self>,
        stop: &mut watch::Receiver<bool>,
        log: &mut crate::core::loglimit::LogLimit,
        refused_log: &Arc<std::sync::Mutex<crate::core::loglimit::LogLimit>>,
    ) -> Ended {
        let (client, mut events) = AsyncClient::new(self.settings.options(), REQUEST_QUEUE);
        let (stored_tx, mut stored_rx) = mpsc::unbounded_channel();
        let mut s = Session {
            m: self.clone(),
            client,
            kinds: VecDeque::new(),
            by_pkid: HashMap::new(),
            sent_up_to: 0,
            inflight: 0,
            acked: Vec::new(),
            retained: HashMap::new(),
            discovery: HashSet::new(),
            wanted_discovery: HashSet::new(),
            connected: false,
            queue_full: false,
            hooks_in_flight: Arc::new(tokio::sync::Semaphore::new(HOOKS_IN_FLIGHT)),
            refused_log: refused_log.clone(),
            stored_tx,
            stored: VecDeque::new(),
        };
        let mut tick = tokio::time::interval(STATE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = async { let _ = stop.wait_for(|stopped| *stopped).await; } => {
                    if s.connected {
                        // Wait briefly for the PUBACKs of what is in flight,
                        // so the next start does not send those again.
                        let _ = tokio::time::timeout(Duration::from_secs(2), async {
                            while s.inflight > 0 {
                                match events.poll().await {
                                    Ok(ev @ (Event::Incoming(Packet::PubAck(_)) | Event::Outgoing(Outgoing::Publish(_)))) => s.on_event(ev).await,
                                    Ok(_) => {}
                                    Err(_) => break,
                                }
                            }
                        })
                        .await;
                    }
                    s.flush_acks().await;
                    if s.connected {
                        // A clean goodbye: retained `offline`, then DISCONNECT
                        // (which also tells the broker not to send the will).
                        let _ = s.client.try_publish(self.settings.topics.availability(), QoS::AtLeastOnce, true, "offline");
                        let _ = s.client.try_disconnect();
                        let _ = tokio::time::timeout(Duration::from_secs(2), async {
                            while let Ok(ev) = events.poll().await {
                                if matches!(ev, Event::Outgoing(Outgoing::Disconnect)) {
                                    break;
                                }
                            }
                        })
                        .await;
                    }
                    return Ended::Stopped;
                }
                ev = events.poll() => match ev {
                    Ok(ev) => s.on_event(ev).await,
                    Err(e) => {
                        s.flush_acks().await;
                        let msg = format!("broker {}: {e}", self.settings.config.url);
                        if let crate::core::loglimit::LogNow::Log { suppressed } = log.hit(crate::clock::wall_ms()) {
                            tracing::warn!(suppressed, "MQTT connection lost or refused: {msg}; retrying");
                        }
                        *self.stats.last_error.lock().expect("mqtt stats lock") = Some(msg);
                        return Ended::Lost { had_connected: s.connected };
                    }
                },
                // Something changed (a count, the panel, a heartbeat): its
                // retained state goes out now, then any new events. Changes
                // that come while this task is busy wake it once.
                _ = self.wake.notified(), if s.connected => {
                    s.publish_state();
                    s.fill().await;
                }
                Some(ack) = stored_rx.recv() => {
                    s.stored.push_back(ack);
                    s.publish_stored();
                }
                _ = tokio::time::sleep(QUEUE_FULL_RETRY), if s.queue_full => {
                    s.queue_full = false;
                    s.publish_stored();
                    s.publish_state();
                    s.update_discovery();
                    s.fill().await;
                }
                _ = tick.tick() => {
                    if s.connected {
                        s.flush_acks().await;
                        s.publish_state();
                        s.update_discovery();
                        s.fill().await;
                    }
                    // Also while (re)connecting: the events waiting grow
                    // while the broker is away (issue 19, item 6).
                    self.refresh_pending().await;
                }
            }
            if s.acked.len() >= ACK_BATCH || (!s.acked.is_empty() && s.inflight == 0) {
                s.flush_acks().await;
                s.publish_state();
                s.fill().await;
            }
        }
    }
}

struct Session {
    m: Arc<Mqtt>,
    client: AsyncClient,
    /// One entry per publish handed to rumqttc, in order: the outbox seq it
    /// carries, or None (state, discovery). rumqttc reports each as
    /// Outgoing::Publish(pkid) in the same order, which pairs pkids to seqs.
    kinds: VecDeque<Option<u64>>,
    by_pkid: HashMap<u16, u64>,
    /// The highest outbox seq handed to rumqttc in this session.
    sent_up_to: u64,
    inflight: usize,
    acked: Vec<u64>,
    /// What each retained state topic holds (as published this session).
    retained: HashMap<String, String>,
    /// Discovery topics published this session.
    discovery: HashSet<String>,
    /// Discovery topics this desk has now (published or about to be).
    wanted_discovery: HashSet<String>,
    connected: bool,
    /// A publish found rumqttc's request queue full: try again shortly.
    queue_full: bool,
    hooks_in_flight: Arc<tokio::sync::Semaphore>,
    /// Refused hooks are logged at most once a minute (with a count).
    refused_log: Arc<std::sync::Mutex<crate::core::loglimit::LogLimit>>,
    /// Stored hooks to acknowledge to their sender (topic, event id), from
    /// the hook tasks: published here, so `kinds` stays in step.
    stored_tx: mpsc::UnboundedSender<(String, String)>,
    stored: VecDeque<(String, String)>,
}

impl Session {
    fn publish(&mut self, topic: String, retain: bool, payload: String, seq: Option<u64>) -> bool {
        match self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
        {
            Ok(()) => {
                self.kinds.push_back(seq);
                true
            }
            Err(e) => {
                tracing::debug!("MQTT request queue full: {e}");
                self.queue_full = true;
                false
            }
        }
    }

    /// Acknowledges stored hooks to their senders (issue 19, item 3): the
    /// server's delivery script keeps each ban in its spool until it sees
    /// the ban's event id on `<hooks_topic>/ack/<source>`, so a broker that
    /// forgets messages (a crash without persistence) loses none. QoS 1, not
    /// retained; one lost is harmless: the ban is sent again, counts once
    /// (its event id), and is acknowledged again.
    fn publish_stored(&mut self) {
        while let Some((topic, id)) = self.stored.pop_front() {
            if !self.publish(topic.clone(), false, id.clone(), None) {
                self.stored.push_front((topic, id));
                return;
            }
        }
    }

    async fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Incoming(Packet::ConnAck(_)) => self.on_connect().await,
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                if let Some(Some(seq)) = self.kinds.pop_front() {
                    self.by_pkid.insert(pkid, seq);
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(seq) = self.by_pkid.remove(&ack.pkid) {
                    self.inflight = self.inflight.saturating_sub(1);
                    self.acked.push(seq);
                    self.m.stats.published.fetch_add(1, Ordering::Relaxed);
                }
            }
            Event::Incoming(Packet::Publish(p)) => self.on_message(p).await,
            Event::Incoming(Packet::SubAck(_)) => {
                self.m.stats.subscribed.store(true, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    async fn on_connect(&mut self) {
        let m = self.m.clone();
        let t = &m.settings.topics;
        let c = &m.settings.config;
        self.connected = true;
        m.stats.connected.store(true, Ordering::Relaxed);
        m.stats.connects.fetch_add(1, Ordering::Relaxed);
        *m.stats.last_error.lock().expect("mqtt stats lock") = None;
        tracing::info!(broker = %c.url, prefix = %t.prefix, client_id = %m.settings.client_id, "MQTT connected");
        self.publish(t.availability(), true, "online".into(), None);
        let mut subs = Vec::new();
        if c.subscribe {
            subs.push(c.hooks_topic.clone());
        }
        if c.allow_commands {
            subs.push(t.command("+"));
        }
        if c.discovery {
            // Our own retained configs come back: any we no longer want
            // (a route removed while we were away) is cleared. Only the
            // components this desk publishes, under its own node id; the
            // broker drops anything there larger than MAX_PACKET.
            for component in pure::DISCOVERY_COMPONENTS {
                subs.push(format!(
                    "{}/{component}/{}/+/config",
                    c.discovery_prefix, m.settings.ha_node
                ));
            }
        }
        for topic in subs {
            if let Err(e) = self.client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                tracing::warn!("MQTT subscribe to {topic} failed: {e}");
            }
        }
        self.update_discovery();
        self.publish_state();
        self.fill().await;
    }

    /// Publishes the next outbox events, up to the window.
    async fn fill(&mut self) {
        if !self.connected || self.inflight >= WINDOW {
            return;
        }
        let rows = match self
            .m
            .ledger
            .outbox_after(self.sent_up_to, WINDOW - self.inflight)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!("reading the MQTT outbox failed: {e}");
                return;
            }
        };
        let more = rows.len() == WINDOW - self.inflight;
        for row in rows {
            let payload = self.event(&row).to_json();
            if !self.publish(
                self.m.settings.topics.events(),
                false,
                payload,
                Some(row.seq),
            ) {
                return;
            }
            self.sent_up_to = row.seq;
            self.inflight += 1;
        }
        if more {
            // Come back for the rest once acks make room.
            self.m.wake.notify_one();
        }
    }

    fn event(&self, row: &OutboxRow) -> OutEvent {
        OutEvent {
            seq: row.seq,
            id: row
                .event_id
                .clone()
                .unwrap_or_else(|| format!("{}-{}", self.m.settings.ha_node, row.seq)),
            ts_ms: row.ts_ms,
            route: row.route.clone(),
            source: row.source.clone(),
            jail: row.jail.clone(),
            ip: row.ip.clone(),
        }
    }

    async fn flush_acks(&mut self) {
        if self.acked.is_empty() {
            return;
        }
        let seqs = std::mem::take(&mut self.acked);
        if let Err(e) = self.m.ledger.outbox_acked(seqs).await {
            // They stay in the outbox and go out again: a duplicate, not a loss.
            tracing::warn!("removing acknowledged events from the outbox failed: {e}");
        }
        if self.inflight == 0 {
            if let Ok(n) = self.m.ledger.outbox_len().await {
                self.m.stats.pending.store(n, Ordering::Relaxed);
            }
        }
    }

    /// Retained state: counts per route, total, last 24 h, panel. Only
    /// what changed is sent.
    fn publish_state(&mut self) {
        if !self.connected {
            return;
        }
        let m = self.m.clone();
        let t = &m.settings.topics;
        let now = crate::clock::wall_ms();
        let routes = m.state.routing().routes.clone();
        let mut state: Vec<(String, String)> = Vec::new();
        {
            let c = m.state.counters.lock().expect("counters lock");
            for r in routes.iter() {
                state.push((t.count(&r.name), c.count(&r.name).to_string()));
            }
            state.push((t.total(), c.total().to_string()));
            state.push((t.last_24h(), c.total_last_24h(now).to_string()));
        }
        let panel = m.state.panel.lock().expect("panel lock").published();
        state.push((t.panel(), panel.to_string()));
        for h in m.state.heartbeats.samples() {
            state.push((
                t.heartbeat(&h.source),
                pure::heartbeat_payload(&h.state, h.last_ms, h.fail2ban_up).to_string(),
            ));
        }
        // A route (or watched source) removed by a reload: its retained
        // topic is cleared.
        let current: HashSet<&String> = state.iter().map(|(k, _)| k).collect();
        let gone: Vec<String> = self
            .retained
            .keys()
            .filter(|k| {
                (k.starts_with(&t.count("")) || k.starts_with(&t.heartbeat("")))
                    && !current.contains(k)
            })
            .cloned()
            .collect();
        for topic in gone {
            self.retained.remove(&topic);
            self.publish(topic, true, String::new(), None);
        }
        for (topic, payload) in state {
            if self.retained.get(&topic) != Some(&payload)
                && self.publish(topic.clone(), true, payload.clone(), None)
            {
                self.retained.insert(topic, payload);
            }
        }
    }

    /// Home Assistant discovery: publishes configs, and clears those of
    /// routes that were removed (an empty retained config removes the entity).
    fn update_discovery(&mut self) {
        let m = self.m.clone();
        let c = &m.settings.config;
        if !self.connected || !c.discovery {
            return;
        }
        let routes: Vec<String> = m
            .state
            .routing()
            .routes
            .iter()
            .map(|r| r.name.clone())
            .collect();
        let sources: Vec<String> = m
            .state
            .heartbeats
            .samples()
            .into_iter()
            .map(|h| h.source)
            .collect();
        let desk = pure::Desk {
            discovery_prefix: c.discovery_prefix.clone(),
            node: m.settings.ha_node.clone(),
            name: m.settings.device_name.clone(),
            topics: m.settings.topics.clone(),
            commands: c.allow_commands,
            page_url: m.settings.page_url.clone(),
        };
        let wanted = pure::discovery(&desk, &routes, &sources);
        let wanted_topics: HashSet<String> = wanted.iter().map(|d| d.topic.clone()).collect();
        self.wanted_discovery = wanted_topics.clone();
        let gone: Vec<String> = self.discovery.difference(&wanted_topics).cloned().collect();
        for topic in gone {
            self.discovery.remove(&topic);
            self.publish(topic, true, String::new(), None);
        }
        for d in wanted {
            if !self.discovery.contains(&d.topic)
                && self.publish(d.topic.clone(), true, d.config.to_string(), None)
            {
                self.discovery.insert(d.topic);
            }
        }
    }

    async fn on_message(&mut self, p: Publish) {
        let m = self.m.clone();
        let c = &m.settings.config;
        let topic = String::from_utf8_lossy(&p.topic).into_owned();
        if c.subscribe && topic == c.hooks_topic {
            m.stats.hooks_received.fetch_add(1, Ordering::Relaxed);
            let client = self.client.clone();
            let refused_log = self.refused_log.clone();
            let stored_tx = self.stored_tx.clone();
            let Ok(permit) = self.hooks_in_flight.clone().acquire_owned().await else {
                return;
            };
            // One task per hook, so concurrent hooks share the ledger's
            // group commit; the broker gets the ack once the hook is stored.
            tokio::spawn(async move {
                let accept_token = m.settings.config.accept_payload_token;
                match hook_from_message(&p.payload, &m.state, accept_token) {
                    Ok((hook, sender)) => {
                        let ack = sender.zip(hook.event_id.clone());
                        match m.ledger.hook(hook).await {
                            Ok(outcome) => {
                                let n = match outcome.counted {
                                    true => &m.stats.hooks_counted,
                                    false => &m.stats.hooks_not_counted,
                                };
                                n.fetch_add(1, Ordering::Relaxed);
                                // Stored, or counted before (same event id):
                                // either way the sender may forget it.
                                if let Some((source, id)) = ack {
                                    let topic =
                                        pure::ack_topic(&m.settings.config.hooks_topic, &source);
                                    let _ = stored_tx.send((topic, id));
                                }
                            }
                            Err(e) => {
                                // Not acknowledged: the broker sends it again
                                // on the next connection.
                                tracing::error!("MQTT hook not stored: {e}");
                                drop(permit);
                                return;
                            }
                        }
                    }
                    Err(why) => {
                        m.stats.hooks_refused.fetch_add(1, Ordering::Relaxed);
                        // Rate-limited: a flood of junk on the topic must
                        // not become a flood in the journal.
                        let now = crate::clock::wall_ms();
                        let hit = refused_log.lock().expect("log limit lock").hit(now);
                        if let crate::core::loglimit::LogNow::Log { suppressed } = hit {
                            tracing::info!(%topic, suppressed, "MQTT hook refused: {why}");
                        }
                    }
                }
                // The permit goes before the ack may wait for room in the
                // request queue: that room is made by the event loop, which
                // may itself be waiting for a permit.
                drop(permit);
                let _ = client.ack(&p).await;
            });
            return;
        }
        let _ = self.client.try_ack(&p);
        if c.allow_commands && topic.starts_with(&m.settings.topics.command("")) {
            match pure::parse_command(&m.settings.topics.prefix, &topic, &p.payload) {
                Ok(cmd) => self.run_command(cmd),
                Err(e) => {
                    m.stats.commands_refused.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("MQTT command refused: {e}");
                }
            }
            return;
        }
        if c.discovery
            && pure::is_own_discovery_topic(&c.discovery_prefix, &m.settings.ha_node, &topic)
            && !p.payload.is_empty()
            && !self.wanted_discovery.contains(&topic)
        {
            tracing::info!(%topic, "clearing a Home Assistant entity this desk no longer has");
            self.publish(topic, true, String::new(), None);
        }
    }

    fn run_command(&mut self, cmd: Command) {
        let m = &self.m;
        let routes = m.state.routing().routes.clone();
        match cmd {
            Command::TestSweep(route) => {
                let route = route.or_else(|| routes.first().map(|r| r.name.clone()));
                match route.filter(|r| routes.iter().any(|x| x.name == *r)) {
                    Some(r) => {
                        m.stats.commands.fetch_add(1, Ordering::Relaxed);
                        m.engine.send(EngineMsg::Test(r));
                    }
                    None => {
                        m.stats.commands_refused.fetch_add(1, Ordering::Relaxed);
                        tracing::info!("MQTT test sweep refused: no such route");
                    }
                }
            }
            Command::NextMode => {
                m.stats.commands.fetch_add(1, Ordering::Relaxed);
                let engine = m.engine.clone();
                tokio::spawn(async move {
                    let _ = engine.set_mode("next".into()).await;
                });
            }
            Command::Brightness(leds) => {
                m.stats.commands.fetch_add(1, Ordering::Relaxed);
                let display = m.state.panel.lock().expect("panel lock").display_brightness;
                // Kept across restarts (issue 21), in the store like the
                // counts; stored first, so a desk showing it has kept it.
                let (ledger, engine) = (m.ledger.clone(), m.engine.clone());
                tokio::spawn(async move {
                    let key = crate::ledger::KEPT_LED_BRIGHTNESS;
                    if let Err(e) = ledger.set_setting(key, i64::from(leds)).await {
                        tracing::warn!("could not keep the LED brightness {leds}: {e}");
                    }
                    engine.send(EngineMsg::Brightness(leds, display));
                });
            }
        }
    }
}

/// A hook message, checked like an HTTP hook: known route, the source's
/// token (constant time, routes it may post to), ignore list. With it, the
/// name its sender acknowledgements go to: the message's own `source`
/// (what the server's delivery script listens under), else the hook's.
///
/// Issue 19, item 7: with `[[source]]` tables a hook proves its source by
/// `sig`, an HMAC-SHA256 of its fields under the source's token, so the
/// token never travels to the topic's other subscribers. A token in the
/// payload (the old form) is refused unless `accept_payload_token`.
pub fn hook_from_message(
    payload: &[u8],
    state: &State,
    accept_payload_token: bool,
) -> Result<(Hook, Option<String>), String> {
    let mut h = pure::parse_hook_message(payload)?;
    let routing = state.routing();
    if !routing.routes.iter().any(|r| r.name == h.route) {
        return Err(format!("no such route \"{}\" ({h})", h.route));
    }
    // Shown in refusals; never shows the token.
    let (shown, token_sent) = (h.to_string(), h.fields.token.is_some() || h.sig.is_some());
    match (&h.sig, h.fields.token.is_some()) {
        (Some(_), true) => return Err(format!("both \"sig\" and \"token\" ({shown})")),
        // With no [[source]] tables anyone may post: nothing to check.
        (Some(sig), false) if !routing.sources.is_empty() => {
            let source = crate::auth::source_by_signature(&routing.sources, &h.signed, sig)
                .ok_or_else(|| format!("wrong signature ({shown})"))?;
            // Checked like a token from here on: the routes it may post to.
            h.fields.token = Some(source.token.clone());
        }
        (None, true) if !accept_payload_token => {
            return Err(format!(
                "a token in the payload is refused: every subscriber of the topic would see it; \
                 sign the hook (\"sig\", the shipped action does) or set [mqtt] \
                 accept_payload_token = true (deprecated) ({shown})"
            ))
        }
        _ => {}
    }
    let sender = h.fields.source.clone();
    routing
        .admit(h.route, h.fields)
        .map(|hook| {
            let sender = sender.or_else(|| hook.source.clone());
            (hook, sender)
        })
        .map_err(|e| match e {
            AuthError::Unauthorized if token_sent => format!("wrong token ({shown})"),
            e => format!(
                "{} ({shown})",
                crate::request::RequestError::from(e).message()
            ),
        })
}
