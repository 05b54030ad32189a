//! MQTT against a real, private Mosquitto (own config on a loopback port,
//! never the system service): events and retained state, a broker outage
//! in the middle of a burst, kill -9 with events in the outbox, hooks over
//! MQTT (wrong token, replays, two desks), Home Assistant discovery.
//! Without mosquitto the tests say so and pass locally; under CI=true they fail.

mod common;
use common::bin;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{test_config, TestDaemon};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);

fn mosquitto() -> Option<PathBuf> {
    for p in ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"] {
        if Path::new(p).exists() {
            return Some(p.into());
        }
    }
    assert!(
        std::env::var("CI").is_err(),
        "mosquitto is required under CI=true (apt install mosquitto mosquitto-clients)"
    );
    eprintln!("SKIPPED: mosquitto is not installed (apt install mosquitto mosquitto-clients)");
    None
}

/// A private broker. With `persistent`, sessions and queued messages survive
/// a clean stop (SIGTERM), as on a real broker that restarts.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    exe: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Broker {
    pub fn start(persistent: bool) -> Option<Broker> {
        Broker::start_on(free_port(), persistent)
    }

    pub fn start_on(port: u16, persistent: bool) -> Option<Broker> {
        Broker::start_with(port, persistent, |_| "allow_anonymous true\n".into())
    }

    /// `listener_conf` gets the broker's directory and returns the lines
    /// after `listener` (TLS files, authentication).
    pub fn start_with(
        port: u16,
        persistent: bool,
        listener_conf: impl FnOnce(&Path) -> String,
    ) -> Option<Broker> {
        let exe = mosquitto()?;
        let dir = tempfile::tempdir().unwrap();
        // Started as root, mosquitto drops to its own user: it must be able
        // to write its persistence file here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let listener = listener_conf(dir.path());
        let persistence = if persistent {
            format!(
                "persistence true\npersistence_location {}/\n",
                dir.path().display()
            )
        } else {
            "persistence false\n".into()
        };
        std::fs::write(
            dir.path().join("mosquitto.conf"),
            format!(
                "listener {port} 127.0.0.1\n{listener}{persistence}log_dest stderr\nlog_type error\nlog_type warning\nmax_queued_messages 100000\n"
            ),
        )
        .unwrap();
        let mut b = Broker {
            child: None,
            port,
            dir,
            exe,
        };
        b.run();
        Some(b)
    }

    fn run(&mut self) {
        let child = Command::new(&self.exe)
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + DEADLINE;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait (mosquitto saves its persistence file on the way out).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// `stop` off the async runtime's threads (it waits for the process).
    pub async fn stopped(mut self) -> Broker {
        tokio::task::spawn_blocking(move || {
            self.stop();
            self
        })
        .await
        .unwrap()
    }

    /// `run` again off the async runtime's threads (it waits for the port).
    pub async fn started(mut self) -> Broker {
        tokio::task::spawn_blocking(move || {
            self.run();
            self
        })
        .await
        .unwrap()
    }

    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
}

/// A subscriber that keeps every message and reconnects on its own. With a
/// fixed id and `clean = false` its session (and what the broker queued for
/// it) survives a broker restart.
pub struct Sub {
    pub msgs: Arc<Mutex<Vec<Msg>>>,
    task: tokio::task::JoinHandle<()>,
    pub client: AsyncClient,
}

impl Sub {
    pub async fn start(port: u16, id: &str, clean: bool, topics: &[&str]) -> Sub {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_clean_session(clean);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut el) = AsyncClient::new(o, 10_000);
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        let mut subscribed_tx = Some(subscribed_tx);
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let c = client.clone();
        let store = msgs.clone();
        let task = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        if !ack.session_present {
                            for t in &topics {
                                c.subscribe(t.clone(), QoS::AtLeastOnce).await.unwrap();
                            }
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        store.lock().unwrap().push(Msg {
                            topic: p.topic.clone(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(DEADLINE, subscribed_rx)
            .await
            .expect("subscribed")
            .unwrap();
        Sub { msgs, task, client }
    }

    pub fn on(&self, topic: &str) -> Vec<Msg> {
        self.msgs
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.topic == topic)
            .cloned()
            .collect()
    }

    /// The last payload on `topic`, once `pred` holds for it.
    pub async fn wait_last(&self, topic: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(m) = self.on(topic).last() {
                if pred(&m.payload) {
                    return m.payload.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "{topic}: not as expected within {DEADLINE:?}: {:?}",
                self.on(topic).last()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Events on `topic`, parsed.
    pub fn events(&self, topic: &str) -> Vec<Value> {
        self.on(topic)
            .iter()
            .map(|m| serde_json::from_str(&m.payload).expect("event JSON"))
            .collect()
    }

    pub async fn wait_events(&self, topic: &str, distinct: usize) -> Vec<Value> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let e = self.events(topic);
            let ids: HashSet<String> = e.iter().map(|v| v["id"].to_string()).collect();
            if ids.len() >= distinct {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "{topic}: {} of {distinct} events within {DEADLINE:?}",
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// First arrival of each event id, in arrival order: the ids must be all
/// of `expected` and their seqs strictly increasing (QoS 1 may deliver a
/// message twice after an outage; a consumer dedupes by id, as banlight does).
fn assert_once_in_order(events: &[Value], expected: usize) -> usize {
    let mut seen = HashSet::new();
    let mut seqs = Vec::new();
    for e in events {
        if seen.insert(e["id"].as_str().unwrap().to_string()) {
            seqs.push(e["seq"].as_u64().unwrap());
        }
    }
    assert_eq!(seqs.len(), expected, "every event arrived");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    events.len() - seqs.len()
}

fn mqtt_section(broker: &Broker, extra: &str) -> String {
    format!(
        "[mqtt]\nurl = \"{}\"\ntopic_prefix = \"t/desk\"\nclient_id = \"desk-under-test\"\n{extra}\n",
        broker.url()
    )
}

/// The sweeps `d`'s panel has begun for `route`, once there are at least `n`.
async fn wait_sweeps(d: &TestDaemon, route: &str, n: usize) -> usize {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let got = d.panel.sweeps().iter().filter(|s| s.0 == route).count();
        if got >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{got} of {n} {route} sweeps within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `TestDaemon::status_until` with this file's deadline.
async fn wait_status(d: &TestDaemon, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    d.status_until(DEADLINE.as_secs(), what, pred).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_retained_state_are_published() {
    let Some(broker) = Broker::start(false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let watch = Sub::start(broker.port, "watch-1", true, &["t/desk/#"]).await;
    let config = test_config(dir.path(), &mqtt_section(&broker, "allow_commands = true"));
    let d = TestDaemon::start(&config).await;
    watch
        .wait_last("t/desk/availability", |p| p == "online")
        .await;
    let before_s = banlight::clock::wall_ms() / 1000 - 600;
    for path in [
        "/red?jail=sshd&ip=203.0.113.9&source=web-1".to_string(),
        "/red?jail=sshd&ip=203.0.113.10".to_string(),
        format!("/blue?jail=nginx&ip=2001:db8::7&time={before_s}"),
    ] {
        let r = d.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("\"counted\":true"), "{}", r.body);
    }
    let events = watch.wait_events("t/desk/events", 3).await;
    assert_eq!(assert_once_in_order(&events, 3), 0, "no duplicates");
    assert_eq!(events[0]["route"], "red");
    assert_eq!(events[0]["source"], "web-1");
    assert_eq!(events[0]["jail"], "sshd");
    assert_eq!(events[0]["ip"], "203.0.113.9");
    assert!(events[0]["id"]
        .as_str()
        .unwrap()
        .ends_with(&format!("-{}", events[0]["seq"])));
    assert_eq!(events[2]["ip"], "2001:db8::7");
    assert_eq!(
        events[2]["ts_ms"].as_u64().unwrap(),
        before_s * 1000,
        "the ban's own time"
    );
    assert!(events[2]["time"].as_str().unwrap().ends_with('Z'));
    for e in &events {
        assert!(!e.to_string().contains("token"));
    }
    // Retained state, as a newcomer (a phone, Home Assistant) sees it.
    watch.wait_last("t/desk/total", |p| p == "3").await;
    let late = Sub::start(broker.port, "late-1", true, &["t/desk/#"]).await;
    for (topic, want) in [
        ("t/desk/count/red", "2"),
        ("t/desk/count/blue", "1"),
        ("t/desk/count/green", "0"),
        ("t/desk/total", "3"),
        ("t/desk/last_24h", "3"),
        ("t/desk/availability", "online"),
    ] {
        let got = late.wait_last(topic, |_| true).await;
        assert_eq!(got, want, "{topic}");
        assert!(late.on(topic)[0].retain, "{topic} is retained");
    }
    let panel: Value =
        serde_json::from_str(&late.wait_last("t/desk/panel", |_| true).await).unwrap();
    assert_eq!(panel["led_brightness"], 7);
    assert!(
        late.on("t/desk/events").is_empty(),
        "events are not retained"
    );
    // The outbox is empty once everything was acknowledged.
    let s = wait_status(&d, "outbox drained", |s| s["mqtt"]["outbox"] == 0).await;
    assert_eq!(s["mqtt"]["published"], 3);
    assert_eq!(s["mqtt"]["connected"], true);
    assert_eq!(s["mqtt"]["outbox_dropped"], 0);
    let text = banlight::cmd::status::format_status(&s);
    assert!(
        text.contains("mqtt connected: published 3, outbox 0 waiting, 0 dropped"),
        "{text}"
    );

    // Commands (allow_commands = true): brightness and next mode, never reset.
    let cmd = &watch.client;
    cmd.publish("t/desk/cmd/brightness", QoS::AtLeastOnce, false, "12")
        .await
        .unwrap();
    wait_status(&d, "brightness over MQTT", |s| {
        s["panel"]["led_brightness"] == 12
    })
    .await;
    watch
        .wait_last("t/desk/panel", |p| p.contains("\"led_brightness\":12"))
        .await;
    let mode = d.status().await["mode"].clone();
    cmd.publish("t/desk/cmd/next_mode", QoS::AtLeastOnce, false, "PRESS")
        .await
        .unwrap();
    wait_status(&d, "next mode over MQTT", |s| s["mode"] != mode).await;
    let blue_sweeps = d.panel.sweeps().iter().filter(|s| s.0 == "blue").count();
    cmd.publish("t/desk/cmd/test", QoS::AtLeastOnce, false, "blue")
        .await
        .unwrap();
    wait_sweeps(&d, "blue", blue_sweeps + 1).await;
    assert_eq!(d.status().await["total"], 3, "a test sweep counts nothing");
    for never in ["reset", "shutdown"] {
        cmd.publish(
            format!("t/desk/cmd/{never}"),
            QoS::AtLeastOnce,
            false,
            "PRESS",
        )
        .await
        .unwrap();
    }
    wait_status(&d, "refused commands", |s| {
        s["mqtt"]["commands_refused"] == 2
    })
    .await;
    assert_eq!(d.status().await["total"], 3, "nothing was reset");

    // A clean stop says offline (retained).
    d.shutdown().await;
    watch
        .wait_last("t/desk/availability", |p| p == "offline")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_ignored_unless_allowed() {
    let Some(broker) = Broker::start(false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let watch = Sub::start(broker.port, "watch-2", true, &["t/desk/#"]).await;
    let d = TestDaemon::start(&test_config(dir.path(), &mqtt_section(&broker, ""))).await;
    watch
        .wait_last("t/desk/availability", |p| p == "online")
        .await;
    watch
        .client
        .publish("t/desk/cmd/brightness", QoS::AtLeastOnce, false, "20")
        .await
        .unwrap();
    // A hook after the command: once it is published, the command (sent
    // earlier on the same connection) has reached the daemon, if it was taken.
    d.get("/red").await;
    watch.wait_events("t/desk/events", 1).await;
    let s = d.status().await;
    assert_eq!(s["panel"]["led_brightness"], 7, "not taken");
    assert_eq!(s["mqtt"]["commands"], 0);
    d.shutdown().await;
}

/// GET on a fresh connection from a plain thread; the body.
fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_mid_burst_loses_nothing_and_keeps_the_order() {
    let Some(broker) = Broker::start(true) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A desk-side consumer with a persistent session: the broker keeps what
    // arrives for it, across its own restart.
    let watch = Sub::start(broker.port, "outage-watch", false, &["t/desk/events"]).await;
    let d = TestDaemon::start(&test_config(dir.path(), &mqtt_section(&broker, ""))).await;
    let addr = d.addr;
    let burst = |from: u32, to: u32| {
        tokio::task::spawn_blocking(move || {
            for i in from..to {
                let body = http_get(addr, &format!("/red?jail=sshd&ip=198.51.100.{i}"));
                assert!(body.contains("\"counted\":true"), "{body}");
            }
        })
    };
    burst(0, 20).await.unwrap();
    // The broker goes away while hooks keep coming: they are counted at
    // once, and wait in the outbox.
    let broker = broker.stopped().await;
    burst(20, 50).await.unwrap();
    wait_status(&d, "the desk noticed the outage", |s| {
        s["mqtt"]["connected"] == false
    })
    .await;
    assert_eq!(
        d.status().await["total"],
        50,
        "counting never waits for the broker"
    );
    let _broker = broker.started().await;
    burst(50, 60).await.unwrap();
    let events = watch.wait_events("t/desk/events", 60).await;
    let dups = assert_once_in_order(&events, 60);
    eprintln!("outage: 60 events, {dups} delivered twice (QoS 1), all in order");
    let s = wait_status(&d, "outbox drained", |s| s["mqtt"]["outbox"] == 0).await;
    assert!(s["mqtt"]["connects"].as_u64().unwrap() >= 2, "{s}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_the_outbox_survive_kill_9_and_go_out_after_the_restart() {
    if mosquitto().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("banlight.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\ncontrol_socket = \"{}\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\ntopic_prefix = \"t/k9\"\n[panel]\nbackend = \"sim\"\n",
            dir.path().join("state").display(),
            dir.path().join("control.sock").display(),
        ),
    )
    .unwrap();
    let spawn = move || bin::spawn_listening(&config);
    // No broker yet: 25 bans are counted and wait in the outbox.
    let (mut first, addr) = tokio::task::spawn_blocking(spawn.clone()).await.unwrap();
    let sent_before = banlight::clock::wall_ms();
    tokio::task::spawn_blocking(move || {
        for i in 0..25 {
            let body = http_get(addr, &format!("/blue?jail=sshd&ip=192.0.2.{i}"));
            assert!(body.contains("\"counted\":true"), "{body}");
        }
    })
    .await
    .unwrap();
    let sent_after = banlight::clock::wall_ms();
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    // The broker and a consumer appear; the desk comes back.
    let broker = Broker::start_on(port, false).unwrap();
    let watch = Sub::start(broker.port, "k9-watch", true, &["t/k9/#"]).await;
    let (mut second, _addr) = tokio::task::spawn_blocking(spawn.clone()).await.unwrap();
    let events = watch.wait_events("t/k9/events", 25).await;
    assert_once_in_order(&events, 25);
    for e in &events {
        let t = e["ts_ms"].as_u64().unwrap();
        assert!(
            (sent_before..=sent_after).contains(&t),
            "published with its original time: {e}"
        );
    }
    watch.wait_last("t/k9/total", |p| p == "25").await;
    watch
        .wait_last("t/k9/availability", |p| p == "online")
        .await;
    // A desk that dies without a word (kill -9, power cut) is reported
    // offline by the broker: the last will.
    second.kill().unwrap(); // SIGKILL
    second.wait().unwrap();
    watch
        .wait_last("t/k9/availability", |p| p == "offline")
        .await;
}

fn desk_section(broker: &Broker, desk: &str, extra: &str) -> String {
    format!(
        "[[source]]\nname = \"web-1\"\ntoken = \"web1-token-0123456789\"\n[mqtt]\nurl = \"{}\"\ntopic_prefix = \"t/{desk}\"\nclient_id = \"{desk}\"\nsubscribe = true\nhooks_topic = \"t/fleet/hooks\"\n{extra}\n",
        broker.url()
    )
}

async fn wait_subscribed(d: &TestDaemon) {
    wait_status(d, "subscribed", |s| s["mqtt"]["subscribed"] == true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_over_mqtt_need_the_token_and_count_once() {
    let Some(broker) = Broker::start(false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The old form (a token in the payload), behind its switch (issue 19,
    // item 7); signed hooks: shipped_bans_are_signed_...
    let d = TestDaemon::start(&test_config(
        dir.path(),
        &desk_section(&broker, "desk-a", "accept_payload_token = true"),
    ))
    .await;
    wait_subscribed(&d).await;
    let sender = Sub::start(broker.port, "sender-1", true, &["t/desk-a/#"]).await;
    let send = |body: &str| {
        let c = sender.client.clone();
        let body = body.to_string();
        async move {
            c.publish("t/fleet/hooks", QoS::AtLeastOnce, false, body)
                .await
                .unwrap()
        }
    };
    send(r#"{"id":"w1","route":"red","ip":"203.0.113.5","jail":"sshd","token":"wrong-token-0123456789"}"#).await;
    send(r#"{"id":"w2","route":"red","ip":"203.0.113.5","jail":"sshd"}"#).await;
    send(r#"{"id":"w3","route":"nope","token":"web1-token-0123456789"}"#).await;
    send("not json").await;
    let s = wait_status(&d, "refused", |s| s["mqtt"]["hooks_refused"] == 4).await;
    assert_eq!(s["total"], 0, "a wrong or missing token counts nothing");
    let ban_s = banlight::clock::wall_ms() / 1000 - 3600;
    let good = format!(
        r#"{{"id":"g1","route":"red","ip":"203.0.113.5","jail":"sshd","token":"web1-token-0123456789","source":"liar","time":{ban_s}}}"#
    );
    let good = good.as_str();
    send(good).await;
    let s = wait_status(&d, "counted", |s| s["mqtt"]["hooks_counted"] == 1).await;
    assert_eq!(s["routes"]["red"]["count"], 1);
    wait_sweeps(&d, "red", 1).await;
    // The same event again (a replay, or the sender's retry after a lost
    // PUBACK), and the same id over HTTP: counted once.
    send(good).await;
    let r = d
        .get("/red?id=g1&jail=other&ip=198.51.100.1&token=web1-token-0123456789")
        .await;
    assert!(r.body.contains("\"counted\":false"), "{}", r.body);
    wait_status(&d, "replay seen", |s| {
        s["mqtt"]["hooks_received"] == 6 && s["mqtt"]["hooks_not_counted"] == 1
    })
    .await;
    let s = d.status().await;
    assert_eq!(s["total"], 1, "{s}");
    assert_eq!(wait_sweeps(&d, "red", 1).await, 1, "animated once");
    // The counted event is published, with the sender's id and the source
    // its token names (not the one it claims).
    let events = sender.wait_events("t/desk-a/events", 1).await;
    assert_eq!(events[0]["id"], "g1");
    assert_eq!(events[0]["source"], "web-1");
    assert_eq!(events[0]["ts_ms"], ban_s * 1000, "the ban's own time");
    d.shutdown().await;
}

/// fail2ban's `actionban` from the shipped action, with its [Init] defaults
/// and `tags` filled in.
fn shipped_actionban(tags: &[(&str, String)]) -> String {
    let conf = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fail2ban/action.d/banlight-mqtt.conf"),
    )
    .unwrap();
    let mut values: Vec<(String, String)> = Vec::new();
    let mut actionban = String::new();
    let mut in_ban = false;
    for line in conf.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            in_ban = false;
            continue;
        }
        // Continuation lines, joined as fail2ban's config parser does:
        // stripped, one per line (the action's here-document).
        if in_ban && line.starts_with(' ') {
            actionban.push('\n');
            actionban.push_str(line.trim());
            continue;
        }
        in_ban = false;
        if let Some((k, v)) = line.split_once('=') {
            let (k, v) = (k.trim(), v.trim());
            if k == "actionban" {
                in_ban = true;
                actionban = v.to_string();
            } else {
                values.push((k.to_string(), v.to_string()));
            }
        }
    }
    for (k, v) in tags {
        values.retain(|(x, _)| x != k);
        values.push((k.to_string(), v.clone()));
    }
    for (k, v) in &values {
        actionban = actionban.replace(&format!("<{k}>"), v);
    }
    let unfilled = actionban.split('<').skip(1).any(|rest| {
        rest.split_once('>').is_some_and(|(tag, _)| {
            !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
    });
    assert!(!unfilled, "every tag filled: {actionban}");
    actionban
}

fn mosquitto_pub_present() -> bool {
    if std::process::Command::new("mosquitto_pub")
        .arg("--help")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").is_err(),
            "mosquitto_pub is required under CI=true"
        );
        eprintln!("SKIPPED: mosquitto_pub is not installed (apt install mosquitto-clients)");
        return false;
    }
    true
}

fn shipped_deliver_mqtt() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fail2ban/banlight-deliver-mqtt")
        .display()
        .to_string()
}

/// Runs the shipped action's command line as fail2ban does (sh -c).
fn run_action(command: &str) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spooled(spool: &Path) -> usize {
    std::fs::read_dir(spool)
        .map(|d| {
            d.flatten()
                // e.* waits to be published, s.* for a desk's acknowledgement
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with("e.") || n.starts_with("s.")
                })
                .count()
        })
        .unwrap_or(0)
}

/// A ban made while the broker is away waits in the server's spool and is
/// published once the broker is back, with no new ban to trigger it, with
/// the ban's own time; the desk counts it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_made_while_the_broker_is_away_is_delivered_when_it_is_back() {
    let Some(broker) = Broker::start(true) else {
        return;
    };
    if !mosquitto_pub_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(
        dir.path(),
        &desk_section(&broker, "desk-s", ""),
    ))
    .await;
    // The desk's session (persistent, it subscribes) survives the broker's
    // restart, so what is published meanwhile is queued for it.
    wait_subscribed(&d).await;
    let broker = broker.stopped().await;
    let server = tempfile::tempdir().unwrap();
    let spool = server.path().join("spool");
    let ban_time = banlight::clock::wall_ms() / 1000 - 300;
    let command = shipped_actionban(&[
        ("name", "sshd".into()),
        ("ip", "203.0.113.78".into()),
        ("time", format!("{ban_time}.5")),
        ("broker", "127.0.0.1".into()),
        ("port", broker.port.to_string()),
        ("topic", "t/fleet/hooks".into()),
        ("route", "blue".into()),
        ("token", "web1-token-0123456789".into()),
        ("spool_dir", spool.display().to_string()),
        ("retry_min", "1".into()),
        ("retry_max", "2".into()),
        ("deliver", shipped_deliver_mqtt()),
    ]);
    let started = Instant::now();
    run_action(&command);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the action returns at once with the broker away"
    );
    assert_eq!(spooled(&spool), 1, "the ban waits in the spool");
    assert_eq!(d.status().await["total"], 0);
    let _broker = broker.started().await;
    let back = Instant::now();
    let s = wait_status(&d, "the spooled ban arrived", |s| s["total"] == 1).await;
    assert_eq!(s["routes"]["blue"]["count"], 1);
    let deadline = Instant::now() + DEADLINE;
    while spooled(&spool) > 0 {
        assert!(Instant::now() < deadline, "spool not emptied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "spooled MQTT ban delivered {:.1}s after the broker came back",
        back.elapsed().as_secs_f64()
    );
    let recent = d.get("/api/recent").await.json();
    assert_eq!(recent["events"][0]["ip"], "203.0.113.78");
    assert_eq!(
        recent["events"][0]["ts_ms"].as_u64().unwrap(),
        ban_time * 1000,
        "the history shows when the ban happened"
    );
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_from_the_shipped_action_reaches_two_desks_once_each() {
    let Some(broker) = Broker::start(false) else {
        return;
    };
    if !mosquitto_pub_present() {
        return;
    }
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestDaemon::start(&test_config(
        da.path(),
        &desk_section(&broker, "desk-a", ""),
    ))
    .await;
    let b = TestDaemon::start(&test_config(
        db.path(),
        &desk_section(&broker, "desk-b", ""),
    ))
    .await;
    wait_subscribed(&a).await;
    wait_subscribed(&b).await;
    let server = tempfile::tempdir().unwrap();
    let token_file = server.path().join("banlight.token");
    std::fs::write(&token_file, "Authorization: Bearer web1-token-0123456789\n").unwrap();
    let spool = server.path().join("spool");
    let ban_time = banlight::clock::wall_ms() / 1000 - 30;
    let command = shipped_actionban(&[
        ("name", "sshd".into()),
        ("ip", "203.0.113.77".into()),
        ("time", format!("{ban_time}.25")),
        ("broker", "127.0.0.1".into()),
        ("port", broker.port.to_string()),
        ("topic", "t/fleet/hooks".into()),
        ("route", "blue".into()),
        ("token_file", token_file.display().to_string()),
        ("spool_dir", spool.display().to_string()),
        ("deliver", shipped_deliver_mqtt()),
    ]);
    // fail2ban runs it with sh; twice, as for a ban restored and re-sent.
    for _ in 0..2 {
        run_action(&command);
    }
    for d in [&a, &b] {
        // Both sends are through the ledger: one counted, one a repeat.
        let s = wait_status(d, "the ban arrived, twice", |s| {
            s["mqtt"]["hooks_received"] == 2
                && s["mqtt"]["hooks_counted"] == 1
                && s["mqtt"]["hooks_not_counted"] == 1
        })
        .await;
        assert_eq!(s["routes"]["blue"]["count"], 1, "counted once: {s}");
        assert_eq!(s["total"], 1);
        assert_eq!(wait_sweeps(d, "blue", 1).await, 1, "each desk sweeps once");
    }
    // The spool is empty once a desk acknowledged the ban (issue 19, item 3).
    let deadline = Instant::now() + DEADLINE;
    while std::fs::read_dir(&spool).unwrap().flatten().any(|e| {
        let n = e.file_name().to_string_lossy().into_owned();
        n.starts_with("e.") || n.starts_with("s.")
    }) {
        assert!(Instant::now() < deadline, "spool not delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = a.get("/api/status").await;
    assert!(r.body.contains("\"count\":1"), "{}", r.body);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_discovery_describes_the_desk_and_follows_the_routes() {
    let Some(broker) = Broker::start(false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let routes = "[[route]]\nname = \"red\"\ncolor = \"#ff0000\"\n[[route]]\nname = \"ssh\"\ncolor = \"#0000ff\"\n";
    let section = format!("{routes}{}", mqtt_section(&broker, "allow_commands = true"));
    let ha = Sub::start(broker.port, "ha-1", true, &["homeassistant/#"]).await;
    let d = TestDaemon::start(&test_config(dir.path(), &section)).await;
    // Home Assistant's node id is the client id (unique per broker).
    let node = "desk-under-test";
    let topic =
        |component: &str, object: &str| format!("homeassistant/{component}/{node}/{object}/config");
    let config = |component: &str, object: &str| ha_config(&ha, topic(component, object));
    for route in ["red", "ssh"] {
        let v = config("sensor", &format!("route_{route}")).await;
        assert_eq!(v["state_topic"], format!("t/desk/count/{route}"));
        assert_eq!(v["state_class"], "total_increasing");
    }
    assert_eq!(
        config("sensor", "total").await["state_class"],
        "total_increasing"
    );
    assert_eq!(
        config("sensor", "last_24h").await["state_topic"],
        "t/desk/last_24h"
    );
    let n = config("number", "led_brightness").await;
    assert_eq!(
        (n["min"].clone(), n["max"].clone()),
        (Value::from(0), Value::from(31))
    );
    assert_eq!(n["command_topic"], "t/desk/cmd/brightness");
    assert_eq!(
        config("button", "test_sweep").await["command_topic"],
        "t/desk/cmd/test"
    );
    assert_eq!(
        config("button", "next_mode").await["command_topic"],
        "t/desk/cmd/next_mode"
    );
    // Retained: what Home Assistant finds when it starts later.
    let late = Sub::start(broker.port, "ha-0", true, &["homeassistant/#"]).await;
    let deadline = Instant::now() + DEADLINE;
    while late.msgs.lock().unwrap().len() < 7 {
        assert!(Instant::now() < deadline, "7 retained configs");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(late.msgs.lock().unwrap().len(), 7, "7 entities");
    assert!(late.msgs.lock().unwrap().iter().all(|m| m.retain));
    for never in ["reset", "shutdown"] {
        assert!(
            !ha.msgs
                .lock()
                .unwrap()
                .iter()
                .any(|m| m.payload.contains(never)),
            "no {never} entity"
        );
    }
    // `banlight reload` without the route "ssh": its entity and retained
    // count go (empty retained messages), at the latest on the next state tick.
    let state = Sub::start(broker.port, "state-1", true, &["t/desk/count/+"]).await;
    state.wait_last("t/desk/count/ssh", |p| p == "0").await;
    let file = dir.path().join("test.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n[[route]]\nname = \"red\"\ncolor = \"#ff0000\"\n{}",
            dir.path().join("state").display(),
            mqtt_section(&broker, "allow_commands = true")
        ),
    )
    .unwrap();
    d.daemon
        .as_ref()
        .unwrap()
        .control
        .reload()
        .await
        .expect("reloaded");
    ha.wait_last(&topic("sensor", "route_ssh"), |p| p.is_empty())
        .await;
    state.wait_last("t/desk/count/ssh", |p| p.is_empty()).await;
    assert!(!ha
        .on(&topic("sensor", "route_red"))
        .last()
        .unwrap()
        .payload
        .is_empty());
    d.shutdown().await;
    // Commands are turned off while the desk is off: at its next start it
    // clears the buttons (it finds its own retained configs on the broker).
    let section = format!(
        "[[route]]\nname = \"red\"\ncolor = \"#ff0000\"\n{}",
        mqtt_section(&broker, "")
    );
    let d = TestDaemon::start(&test_config(dir.path(), &section)).await;
    for (component, object) in [
        ("sensor", "route_ssh"),
        ("button", "test_sweep"),
        ("button", "next_mode"),
    ] {
        ha.wait_last(&topic(component, object), |p| p.is_empty())
            .await;
    }
    let late = Sub::start(broker.port, "ha-2", true, &["homeassistant/#"]).await;
    late.wait_last(&topic("sensor", "route_red"), |p| !p.is_empty())
        .await;
    assert!(
        late.on(&topic("sensor", "route_ssh")).is_empty(),
        "no retained config left for the removed route"
    );
    d.shutdown().await;
}

/// A retained discovery config: JSON with the fields every entity has.
/// A watched source's heartbeat state is a retained topic and a Home
/// Assistant problem sensor, and follows the source going up and down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_states_are_retained_and_a_problem_sensor() {
    let Some(broker) = Broker::start(false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = "web1-token-0123456789abcdef";
    let section = format!(
        "[[source]]\nname = \"web-1\"\ntoken = \"{token}\"\nheartbeat = \"1h\"\n{}",
        mqtt_section(&broker, "")
    );
    let ha = Sub::start(broker.port, "ha-hb", true, &["homeassistant/#", "t/desk/#"]).await;
    let d = TestDaemon::start(&test_config(dir.path(), &section)).await;
    let sensor = ha_config(
        &ha,
        "homeassistant/binary_sensor/desk-under-test/heartbeat_web-1/config".into(),
    )
    .await;
    assert_eq!(sensor["device_class"], "problem");
    assert_eq!(sensor["state_topic"], "t/desk/heartbeat/web-1");
    let state = |p: &str| serde_json::from_str::<Value>(p).unwrap();
    let first = ha
        .wait_last("t/desk/heartbeat/web-1", |p| state(p)["state"] == "new")
        .await;
    assert_eq!(state(&first)["problem"], false);
    // fail2ban reported down: a problem, retained for whoever comes later
    let body = r#"{"fail2ban": false}"#;
    let r = common::request(
        d.addr,
        &format!(
            "POST /api/heartbeat HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    ha.wait_last("t/desk/heartbeat/web-1", |p| state(p)["problem"] == true)
        .await;
    let late = Sub::start(broker.port, "late-hb", true, &["t/desk/heartbeat/#"]).await;
    let got = state(&late.wait_last("t/desk/heartbeat/web-1", |_| true).await);
    assert_eq!(
        (got["state"].clone(), got["fail2ban_up"].clone()),
        (Value::from("down"), Value::from(false))
    );
    assert!(late.on("t/desk/heartbeat/web-1")[0].retain);
    d.shutdown().await;
}

async fn ha_config(ha: &Sub, t: String) -> Value {
    let raw = ha.wait_last(&t, |p| !p.is_empty()).await;
    let v: Value =
        serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{t}: not JSON ({e}): {raw}"));
    for field in ["name", "unique_id", "availability_topic", "device"] {
        assert!(!v[field].is_null(), "{t}: no {field}: {v}");
    }
    assert_eq!(v["availability_topic"], "t/desk/availability");
    assert_eq!(
        v["device"]["name"],
        format!("banlight {} desk-under-test", banlight::host::hostname())
    );
    assert_eq!(v["origin"]["name"], "banlight");
    let page = v["device"]["configuration_url"].as_str().unwrap_or("");
    assert!(
        page.starts_with("http://127.0.0.1:") && page.ends_with('/'),
        "the live page, on the port bound: {v}"
    );
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtts_with_a_ca_file_and_a_password_file() {
    // A CA and a broker certificate for 127.0.0.1, made here with rcgen.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let passwd = Path::new("/usr/bin/mosquitto_passwd");
    if !passwd.exists() {
        assert!(
            std::env::var("CI").is_err(),
            "mosquitto_passwd is required under CI=true"
        );
        eprintln!("SKIPPED: mosquitto_passwd is not installed");
        return;
    }
    let Some(broker) = Broker::start_with(free_port(), false, |dir| {
        use std::os::unix::fs::PermissionsExt;
        let file = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            p.display().to_string()
        };
        let cert = file("broker.pem", &leaf.pem());
        let key = file("broker.key", &leaf_key.serialize_pem());
        let users = file("users", "");
        let out = Command::new(passwd)
            .args(["-b", &users, "desk", "correct horse"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::set_permissions(dir.join("users"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        format!("certfile {cert}\nkeyfile {key}\nallow_anonymous false\npassword_file {users}\n")
    }) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let pw_file = dir.path().join("mqtt.password");
    std::fs::write(&pw_file, "correct horse\n").unwrap();
    let mqtt = |pw: &Path| {
        format!(
            "[mqtt]\nurl = \"mqtts://127.0.0.1:{}\"\nca_file = \"{}\"\nusername = \"desk\"\npassword_file = \"{}\"\ntopic_prefix = \"t/tls\"\n",
            broker.port,
            ca_file.display(),
            pw.display()
        )
    };
    // A wrong password: refused, said in status, nothing lost.
    let wrong = dir.path().join("wrong.password");
    std::fs::write(&wrong, "battery staple\n").unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), &mqtt(&wrong))).await;
    assert!(d.get("/red").await.body.contains("\"counted\":true"));
    let s = wait_status(&d, "refused", |s| !s["mqtt"]["last_error"].is_null()).await;
    assert_eq!(s["mqtt"]["connected"], false, "{s}");
    d.shutdown().await;
    // The right one (read from the file, newline trimmed): connected over
    // TLS, verified against the CA file; the event kept meanwhile goes out.
    let d = TestDaemon::start(&test_config(dir.path(), &mqtt(&pw_file))).await;
    // The outbox row goes just after the PUBACK is counted: wait for both.
    let s = wait_status(&d, "published over TLS, outbox emptied", |s| {
        s["mqtt"]["published"] == 1 && s["mqtt"]["outbox"] == 0
    })
    .await;
    assert_eq!(s["mqtt"]["connected"], true, "{s}");
    d.shutdown().await;
}

#[test]
fn a_missing_password_file_or_a_bad_ca_file_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.password");
    let c = test_config(
        dir.path(),
        &format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\nusername = \"u\"\npassword_file = \"{}\"\n",
            missing.display()
        ),
    );
    let e = banlight::mqtt::Settings::resolve(c.mqtt.as_ref().unwrap(), "desk", None)
        .err()
        .expect("refused");
    assert!(format!("{e:#}").contains("nope.password"), "{e:#}");
    let junk = dir.path().join("ca.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let c = test_config(
        dir.path(),
        &format!(
            "[mqtt]\nurl = \"mqtts://127.0.0.1:1\"\nca_file = \"{}\"\n",
            junk.display()
        ),
    );
    let e = banlight::mqtt::Settings::resolve(c.mqtt.as_ref().unwrap(), "desk", None)
        .err()
        .expect("refused");
    assert!(format!("{e:#}").contains("ca.pem"), "{e:#}");
    let c = test_config(dir.path(), "[mqtt]\nurl = \"mqtts://127.0.0.1:1\"\n");
    let s = banlight::mqtt::Settings::resolve(c.mqtt.as_ref().unwrap(), "desk.lan", None).unwrap();
    assert_eq!(s.topics.prefix, "banlight/desk");
    assert_eq!(s.client_id, "banlight-desk");
    assert_eq!(s.device_name, "banlight desk.lan");
    // Two desks on one host: client ids x.a and x.b share no topic and
    // no Home Assistant node or device name.
    let desk = |id: &str| {
        let c = test_config(
            dir.path(),
            &format!("[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\nclient_id = \"{id}\"\n"),
        );
        banlight::mqtt::Settings::resolve(c.mqtt.as_ref().unwrap(), "pi", None).unwrap()
    };
    let (a, b) = (desk("x.a"), desk("x.b"));
    assert_ne!(a.ha_node, b.ha_node);
    assert_ne!(a.topics.prefix, b.topics.prefix);
    assert_ne!(a.device_name, b.device_name);
}

/// A change reaches MQTT at once, not on the next 5 s tick: a heartbeat's
/// `down` goes out before the event of a hook sent right after it (before
/// the fix it waited for the tick, after the event). An unchanged payload
/// is never sent twice in a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_are_published_at_once_and_never_repeated() {
    let Some(broker) = Broker::start(false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = "web1-token-0123456789abcdef";
    let section = format!(
        "[[source]]\nname = \"web-1\"\ntoken = \"{token}\"\nheartbeat = \"1h\"\n{}",
        mqtt_section(&broker, "")
    );
    let watch = Sub::start(broker.port, "at-once", true, &["t/desk/#"]).await;
    let d = TestDaemon::start(&test_config(dir.path(), &section)).await;
    let hb = "t/desk/heartbeat/web-1";
    let state = |p: &str| serde_json::from_str::<Value>(p).unwrap();
    watch.wait_last(hb, |p| state(p)["state"] == "new").await;
    let body = r#"{"fail2ban": false}"#;
    let r = common::request(
        d.addr,
        &format!(
            "POST /api/heartbeat HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = common::request(
        d.addr,
        &format!(
            "GET /red?jail=sshd&ip=203.0.113.9 HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
        ),
    )
    .await;
    assert!(r.body.contains("\"counted\":true"), "{}", r.body);
    watch.wait_events("t/desk/events", 1).await;
    watch.wait_last(hb, |p| state(p)["state"] == "down").await;
    let all = watch.msgs.lock().unwrap().clone();
    let at = |pred: &dyn Fn(&Msg) -> bool| all.iter().position(pred).unwrap();
    let down = at(&|m| m.topic == hb && state(&m.payload)["state"] == "down");
    let event = at(&|m| m.topic == "t/desk/events");
    assert!(
        down < event,
        "the heartbeat's down went out at once, before the later hook's event: {all:?}"
    );
    for topic in [hb, "t/desk/panel", "t/desk/total"] {
        let payloads: Vec<String> = watch.on(topic).into_iter().map(|m| m.payload).collect();
        assert!(
            payloads.windows(2).all(|w| w[0] != w[1]),
            "{topic} sent twice unchanged: {payloads:?}"
        );
    }
    d.shutdown().await;
}

/// Issue 19, item 2: one message of any size cannot stop MQTT. Published
/// before a valid hook on the hooks topic, a 10 KB, a 100 KB and a 1 MB
/// message; the valid hook still counts within 5 s, and the desk never
/// reconnects (before the fix, rumqttc refused the 100 KB packet, dropped
/// the connection, and the broker resent it on every reconnect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_hook_message_does_not_stop_the_next_one() {
    let Some(broker) = Broker::start(false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(
        dir.path(),
        // The hook below carries its token (the old form, allowed here):
        // this test is about sizes, not signatures.
        &desk_section(&broker, "desk-p", "accept_payload_token = true"),
    ))
    .await;
    wait_subscribed(&d).await;
    let sender = Sub::start(broker.port, "sender-p", true, &["t/desk-p/#"]).await;
    for size in [10_000, 100_000, 1_000_000] {
        sender
            .client
            .publish("t/fleet/hooks", QoS::AtLeastOnce, false, vec![b'x'; size])
            .await
            .unwrap();
    }
    let good = r#"{"id":"p1","route":"red","ip":"203.0.113.5","jail":"sshd","token":"web1-token-0123456789"}"#;
    sender
        .client
        .publish("t/fleet/hooks", QoS::AtLeastOnce, false, good)
        .await
        .unwrap();
    let s = d
        .status_until(5, "the valid hook counted", |s| {
            s["mqtt"]["hooks_counted"] == 1
        })
        .await;
    assert_eq!(s["total"], 1, "{s}");
    // The 10 KB one reached the desk and was refused; the larger ones the
    // broker dropped (over the desk's Maximum Packet Size).
    assert!(s["mqtt"]["hooks_refused"].as_u64() >= Some(1), "{s}");
    assert_eq!(s["mqtt"]["connects"], 1, "never reconnected: {s}");
    d.shutdown().await;
}

/// The same with retained oversized configs under this desk's discovery
/// topics: found at connect, they do not stop the hooks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_oversized_discovery_config_does_not_stop_the_hooks() {
    let Some(broker) = Broker::start(false) else {
        return;
    };
    let sender = Sub::start(broker.port, "sender-q", true, &["t/desk-q/#"]).await;
    for (object, size) in [("big", 100_000), ("huge", 1_000_000)] {
        sender
            .client
            .publish(
                format!("homeassistant/sensor/desk-q/{object}/config"),
                QoS::AtLeastOnce,
                true,
                vec![b'{'; size],
            )
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(
        dir.path(),
        // The hook below carries its token (the old form, allowed here):
        // this test is about sizes, not signatures.
        &desk_section(&broker, "desk-q", "accept_payload_token = true"),
    ))
    .await;
    wait_subscribed(&d).await;
    let good = r#"{"id":"q1","route":"red","ip":"203.0.113.5","jail":"sshd","token":"web1-token-0123456789"}"#;
    sender
        .client
        .publish("t/fleet/hooks", QoS::AtLeastOnce, false, good)
        .await
        .unwrap();
    let s = d
        .status_until(5, "the valid hook counted", |s| {
            s["mqtt"]["hooks_counted"] == 1
        })
        .await;
    assert_eq!(s["mqtt"]["connects"], 1, "never reconnected: {s}");
    d.shutdown().await;
}

/// The LED brightness set over MQTT (Home Assistant's number) is kept
/// across a restart, in the store; before the fix it went back to 7.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brightness_set_over_mqtt_is_kept_across_a_restart() {
    let Some(broker) = Broker::start(false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), &mqtt_section(&broker, "allow_commands = true"));
    let watch = Sub::start(broker.port, "keep-1", true, &["t/desk/#"]).await;
    let d = TestDaemon::start(&config).await;
    watch
        .wait_last("t/desk/panel", |p| p.contains("\"led_brightness\":7"))
        .await;
    watch
        .client
        .publish("t/desk/cmd/brightness", QoS::AtLeastOnce, false, "12")
        .await
        .unwrap();
    wait_status(&d, "brightness over MQTT", |s| {
        s["panel"]["led_brightness"] == 12
    })
    .await;
    d.shutdown().await;
    let d = TestDaemon::start(&config).await;
    wait_status(&d, "brightness kept across the restart", |s| {
        s["panel"]["led_brightness"] == 12
    })
    .await;
    watch
        .wait_last("t/desk/panel", |p| p.contains("\"led_brightness\":12"))
        .await;
    d.shutdown().await;
}

/// Issue 19, item 3: a desk acknowledges each hook it stored on
/// `<hooks_topic>/ack/<source>`, under the message's own `source` (what the
/// server's delivery script listens under, whatever name its token gives),
/// also a hook it had stored before (the same event id, sent again), and
/// never one it refused: the server keeps a ban in its spool until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_hooks_are_acknowledged_to_their_sender_refused_ones_are_not() {
    let Some(broker) = Broker::start(false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(
        dir.path(),
        &desk_section(&broker, "desk-k", "accept_payload_token = true"),
    ))
    .await;
    wait_subscribed(&d).await;
    let sender = Sub::start(broker.port, "sender-k", true, &["t/fleet/hooks/ack/#"]).await;
    let send = |body: String| {
        let c = sender.client.clone();
        async move {
            c.publish("t/fleet/hooks", QoS::AtLeastOnce, false, body)
                .await
                .unwrap()
        }
    };
    let hook = |id: &str, ip: &str, token: &str, source: &str| {
        format!(
            r#"{{"id":"{id}","route":"red","ip":"{ip}","jail":"sshd","token":"{token}","source":"{source}"}}"#
        )
    };
    let good = "web1-token-0123456789";
    send(hook("k1", "203.0.113.5", good, "web-1")).await;
    send(hook("k2", "203.0.113.6", "wrong-token-0123456789", "web-1")).await;
    send(hook("k1", "203.0.113.5", good, "web-1")).await;
    send(hook("k3", "203.0.113.7", good, "srv-b")).await;
    wait_status(&d, "all four taken", |s| {
        s["mqtt"]["hooks_received"] == 4 && s["mqtt"]["hooks_refused"] == 1
    })
    .await;
    let (a, b) = ("t/fleet/hooks/ack/web-1", "t/fleet/hooks/ack/srv-b");
    let deadline = Instant::now() + DEADLINE;
    while sender.on(a).len() < 2 || sender.on(b).is_empty() {
        assert!(
            Instant::now() < deadline,
            "acknowledgements: {:?} {:?}",
            sender.on(a),
            sender.on(b)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // k2's task was done when status counted it refused: it sent no ack.
    let ids = |t: &str| -> Vec<String> { sender.on(t).into_iter().map(|m| m.payload).collect() };
    assert_eq!(
        ids(a),
        ["k1", "k1"],
        "stored, then a repeat: both acknowledged"
    );
    assert_eq!(
        ids(b),
        ["k3"],
        "under the message's source, not the token's name"
    );
    assert!(sender
        .on(a)
        .iter()
        .chain(sender.on(b).iter())
        .all(|m| !m.retain));
    // An acknowledgement follows the commit: both are counted by now.
    let s = d.status().await;
    assert_eq!(s["total"], 2, "{s}");
    d.shutdown().await;
}

/// Issue 19, item 6: while no broker answers, status shows how many
/// events wait in the outbox (it said 0 while 30 waited).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_length_is_right_while_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port: every connection attempt is refused.
    let port = free_port();
    let d = TestDaemon::start(&test_config(
        dir.path(),
        &format!("[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\n"),
    ))
    .await;
    for i in 0..30 {
        let r = d.get(&format!("/red?jail=sshd&ip=203.0.113.{i}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let s = wait_status(&d, "30 waiting", |s| s["mqtt"]["outbox"] == 30).await;
    assert_eq!(s["mqtt"]["connected"], false, "{s}");
    d.shutdown().await;
}

/// Issue 19, item 7: the shipped action signs each ban (HMAC-SHA256 under
/// the source's token, over id, route, source, jail, ip and time) and sends
/// no token; an eavesdropper on the topic learns none, its replay of a
/// captured message counts nothing new, and an altered message or a wrong
/// signature counts nothing. A token in the payload (the old form) is
/// refused unless `accept_payload_token` (see
/// `hooks_over_mqtt_need_the_token_and_count_once`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_bans_are_signed_and_a_wrong_or_altered_signature_counts_nothing() {
    let Some(broker) = Broker::start(false) else {
        return;
    };
    if !mosquitto_pub_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(
        dir.path(),
        &desk_section(&broker, "desk-h", ""),
    ))
    .await;
    wait_subscribed(&d).await;
    let spy = Sub::start(broker.port, "eavesdropper", true, &["t/fleet/hooks"]).await;
    let server = tempfile::tempdir().unwrap();
    let spool = server.path().join("spool");
    let ban_time = banlight::clock::wall_ms() / 1000 - 60;
    let command = shipped_actionban(&[
        ("name", "sshd".into()),
        ("ip", "203.0.113.90".into()),
        ("time", format!("{ban_time}.5")),
        ("broker", "127.0.0.1".into()),
        ("port", broker.port.to_string()),
        ("topic", "t/fleet/hooks".into()),
        ("route", "red".into()),
        ("source", "web-1".into()),
        ("token", "web1-token-0123456789".into()),
        ("spool_dir", spool.display().to_string()),
        ("retry_min", "1".into()),
        ("retry_max", "2".into()),
        ("deliver", shipped_deliver_mqtt()),
    ]);
    run_action(&command);
    wait_status(&d, "the signed ban counted", |s| s["total"] == 1).await;
    let deadline = Instant::now() + DEADLINE;
    while spy.on("t/fleet/hooks").is_empty() {
        assert!(Instant::now() < deadline, "the eavesdropper saw nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let captured = spy.on("t/fleet/hooks")[0].payload.clone();
    assert!(!captured.contains("web1-token"), "no token: {captured}");
    let v: Value = serde_json::from_str(&captured).unwrap();
    assert!(v.get("token").is_none(), "{v}");
    let sig = v["sig"].as_str().unwrap_or_default();
    assert!(
        sig.len() == 64 && sig.bytes().all(|b| b.is_ascii_hexdigit()),
        "{v}"
    );
    let publish = |body: String| {
        let c = spy.client.clone();
        async move {
            c.publish("t/fleet/hooks", QoS::AtLeastOnce, false, body)
                .await
                .unwrap()
        }
    };
    // The replay: its event id is known, nothing new counts.
    publish(captured.clone()).await;
    wait_status(&d, "the replay seen", |s| {
        s["mqtt"]["hooks_not_counted"] == 1
    })
    .await;
    // Altered, each in one field the signature covers, or re-signed badly.
    let altered = |k: &str, val: Value| {
        let mut v = v.clone();
        v[k] = val;
        v.to_string()
    };
    let bodies = [
        altered("time", Value::from(ban_time + 1)),
        altered("ip", Value::from("203.0.113.91")),
        altered("id", Value::from("f2b:web-1:sshd:203.0.113.90:1")),
        altered("jail", Value::from("other")),
        altered("sig", Value::from("0".repeat(64))),
        // the old form, with the right token: refused by default
        r#"{"id":"old-1","route":"red","ip":"203.0.113.92","jail":"sshd","token":"web1-token-0123456789"}"#.to_string(),
    ];
    for b in &bodies {
        publish(b.clone()).await;
    }
    let s = wait_status(&d, "all refused", |s| s["mqtt"]["hooks_refused"] == 6).await;
    assert_eq!(s["total"], 1, "nothing altered counted: {s}");
    assert_eq!(s["mqtt"]["hooks_counted"], 1, "{s}");
    d.shutdown().await;
}
