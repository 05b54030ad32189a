//! Wires the daemon together: store -> ledger thread, engine task, HTTP
//! server; and takes it apart again in order on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::control::{Control, SocketFile};
use crate::core::buttons::Buttons;
use crate::core::ratelimit::RateLimiter;
use crate::core::scene::Scene;
use crate::engine::{Engine, EngineHandle, EngineMsg};
use crate::ledger::{Ledger, LedgerHandle};
use crate::panel::{ButtonEdge, Clock, PanelOutput};
use crate::panel_status::PanelStatus;
use crate::state::{Routing, State};
use crate::store::Store;

/// Clients tracked by the rate limiter at most (~50 bytes each).
const MAX_LIMITED_CLIENTS: usize = 4096;

/// What a long press runs; empty = only pretend. Only the Pi panel has
/// real buttons: any other (the simulated one, gpio-sim, a recording, a
/// test's panel) must not power the machine off because someone pressed
/// `P` or ran `banlight press`, unless the config file asks for it. Nor
/// does it ask logind at start: that `busctl` child, forked from a test
/// under qemu-user, could deadlock between fork and exec (a hang seen in
/// the ARMv6 suite).
pub fn shutdown_command(config: &Config, panel_name: &str) -> Vec<String> {
    if panel_name != "pi" && !config.shutdown_command_set {
        Vec::new()
    } else {
        config.shutdown_command.clone()
    }
}

/// A running daemon, for `main` and for tests.
pub struct Daemon {
    /// The plain HTTP listener's address (the TLS one's when plain HTTP is off).
    pub addr: SocketAddr,
    pub control: Arc<Control>,
    control_task: tokio::task::JoinHandle<()>,
    _socket_file: SocketFile,
    _state_lock: crate::statelock::StateLock,
    /// The shared state (routing, figures, panel status).
    pub state: Arc<State>,
    /// The HTTP boundary (per-client connection table).
    pub http: Arc<crate::http::Server>,
    pub engine: EngineHandle,
    pub ledger: LedgerHandle,
    server: Option<tokio::task::JoinHandle<()>>,
    /// With `[tls]`: where the TLS listener is bound.
    pub tls_addr: Option<SocketAddr>,
    tls_server: Option<tokio::task::JoinHandle<()>>,
    /// With `[mqtt]`: the broker connection (stops on the same shutdown).
    mqtt_task: Option<tokio::task::JoinHandle<()>>,
    engine_task: tokio::task::JoinHandle<()>,
    heartbeat_task: tokio::task::JoinHandle<()>,
    ledger_thread: std::thread::JoinHandle<()>,
}

/// Opens the store, binds nothing itself (the caller owns the plain
/// listener, `None` when `[tls]` runs alone), and starts serving. `buttons`
/// receives edges from the panel backend. The steps, in order: claim the
/// state directory and socket; count (ledger); show (engine); watch
/// heartbeats; share (`State`); listen (control, HTTP, TLS, MQTT).
pub async fn start(
    config: &Config,
    listener: Option<TcpListener>,
    panel: Box<dyn PanelOutput>,
    clock: Clock,
    buttons: mpsc::Receiver<ButtonEdge>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Daemon> {
    let plain_addr = listener.as_ref().map(TcpListener::local_addr).transpose()?;
    let claimed = claim(config).await?;
    let (engine, engine_rx) = Engine::channel();
    // [mqtt]: resolved first, so a bad password file or CA stops the start.
    let mqtt_settings = mqtt_settings(config, plain_addr)?;
    let mqtt_wake = Arc::new(tokio::sync::Notify::new());
    // The page gets the frames the panel gets, and word of every count.
    let web = config.web.enabled.then(crate::web::Web::new);
    let panel: Box<dyn PanelOutput> = match &web {
        Some(web) => Box::new(crate::web::TapPanel::new(panel, web.clone())),
        None => panel,
    };
    let db_path = claimed.store.path().to_path_buf();
    let counting = start_ledger(config, claimed.store, &engine, &web, &mqtt_wake)?;
    let reader = open_reader(&db_path);
    let ledger = counting.ledger;
    let status = Arc::new(Mutex::new(PanelStatus::default()));
    let panel_name = panel.name();
    let task = Engine {
        panel,
        scene: Scene::new(config.scene_settings(), config.route_looks()),
        buttons: Buttons::new(config.button_timing()),
        counters: counting.counters.clone(),
        status: status.clone(),
        clock,
        ledger: ledger.clone(),
        shutdown_command: shutdown_command(config, panel_name),
        power: None,
        quiet: crate::quiet::QuietGate::system(config.quiet.clone()),
        silence: crate::core::silence::Silence::new(Default::default()),
        changed: mqtt_settings.as_ref().map(|_| mqtt_wake.clone()),
    };
    ask_power_off(config, panel_name, &engine);
    let engine_task = start_engine(task, (engine.clone(), engine_rx), buttons)?;
    engine
        .restore_kept_brightness(&ledger, config.scene_settings().display_brightness)
        .await;
    let heartbeats = crate::heartbeat::Monitor::new(config, clock);
    if mqtt_settings.is_some() {
        heartbeats.notify_changes(mqtt_wake.clone());
    }
    let heartbeat_task = watch_heartbeats(&heartbeats, &ledger, &engine, &web);
    let state = Arc::new(State {
        routing: RwLock::new(Arc::new(Routing::of(config))),
        limiter: Mutex::new(RateLimiter::new(
            config.rate_limit_rule(),
            MAX_LIMITED_CLIENTS,
        )),
        requests: Default::default(),
        slots: crate::slots::Slots::new(config.max_connections),
        ledger: ledger.clone(),
        counters: counting.counters,
        panel: status,
        started: Instant::now(),
        commit_stats: counting.commit_stats,
        heartbeats,
        mqtt: mqtt_settings
            .as_ref()
            .map(|_| Arc::new(crate::figures::MqttStats::default())),
        reads: crate::readcache::Reads::new(counting.activity, reader, MAX_LIMITED_CLIENTS),
    });
    let http = Arc::new(crate::http::Server {
        state: state.clone(),
        web: web.clone(),
        header_timeout: Duration::from_millis(config.header_timeout_ms),
        max_connections_per_client: config.max_connections_per_client,
        per_client: Default::default(),
    });
    let tls = open_tls(config).await?;
    let control = Arc::new(Control {
        state: state.clone(),
        web: web.clone(),
        engine: engine.clone(),
        clock,
        ledger: ledger.clone(),
        config: Mutex::new(config.clone()),
        tls: tls.as_ref().map(|(state, _)| state.clone()),
    });
    let control_task = tokio::spawn(crate::control::serve(
        claimed.control_listener,
        control.clone(),
    ));
    tracing::info!(socket = %config.control_socket.display(), "control socket ready");
    let stop_rx = stop_on(shutdown, web);
    let mqtt_task = match (mqtt_settings, &state.mqtt) {
        (Some(settings), Some(stats)) => Some(tokio::spawn(
            crate::mqtt::Mqtt {
                settings,
                ledger: ledger.clone(),
                state: state.clone(),
                engine: engine.clone(),
                wake: mqtt_wake,
                stats: stats.clone(),
            }
            .run(stop_rx.clone()),
        )),
        _ => None,
    };
    let serving = serve_http(listener, tls, &http, &stop_rx)?;
    let tls_addr = serving.tls_addr;
    let addr = match (plain_addr, tls_addr) {
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => anyhow::bail!("no listener: set `listen` or [tls] listen"),
    };
    if plain_addr.is_some() {
        tracing::info!(%addr, routes = ?config.routes.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), "banlight listening");
    } else {
        tracing::info!("plain HTTP is off ([tls] without `listen`)");
    }
    Ok(Daemon {
        addr,
        control,
        control_task,
        _socket_file: claimed.socket_file,
        _state_lock: claimed.state_lock,
        state,
        http,
        engine,
        ledger,
        server: serving.plain,
        tls_addr,
        tls_server: serving.tls,
        engine_task,
        heartbeat_task,
        ledger_thread: counting.thread,
        mqtt_task,
    })
}

/// The `[mqtt]` settings, resolved (password file, CA), with the live
/// page's address for the Home Assistant device when the page is on.
fn mqtt_settings(
    config: &Config,
    plain_addr: Option<std::net::SocketAddr>,
) -> anyhow::Result<Option<crate::mqtt::Settings>> {
    let Some(m) = &config.mqtt else {
        return Ok(None);
    };
    let host = crate::host::hostname();
    let page = match (config.web.enabled, plain_addr, &config.tls) {
        (false, _, _) => None,
        (true, Some(addr), _) => Some(crate::core::mqtt::page_url(&host, addr, false)),
        (true, None, Some(t)) => Some(crate::core::mqtt::page_url(&host, t.listen, true)),
        (true, None, None) => None,
    };
    Ok(Some(crate::mqtt::Settings::resolve(m, &host, page)?))
}

/// The page's reads go through their own read-only connection; without
/// one the event list is off and everything else goes on.
fn open_reader(db_path: &std::path::Path) -> Option<Store> {
    match Store::open_reader(db_path) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!("the page's event list is off: {e}");
            None
        }
    }
}

/// `systemctl poweroff` goes through logind: ask it now whether this user
/// may, so status says so before anyone holds the button.
fn ask_power_off(config: &Config, panel_name: &str, engine: &EngineHandle) {
    if shutdown_command(config, panel_name)
        .first()
        .is_some_and(|c| c.ends_with("systemctl"))
    {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine.send(EngineMsg::PowerCheck(crate::power::can_power_off().await));
        });
    }
}

/// What only one daemon may hold: the state directory, the store in it and
/// the control socket.
struct Claimed {
    state_lock: crate::statelock::StateLock,
    store: Store,
    control_listener: tokio::net::UnixListener,
    socket_file: SocketFile,
}

async fn claim(config: &Config) -> anyhow::Result<Claimed> {
    let state_lock = crate::statelock::StateLock::acquire(&config.state_dir)?;
    let store = Store::open(&config.state_dir)?;
    let control_listener = crate::control::bind(&config.control_socket).await?;
    tracing::info!(db = %store.path().display(), "store opened");
    Ok(Claimed {
        state_lock,
        store,
        control_listener,
        socket_file: SocketFile(config.control_socket.clone()),
    })
}

/// The ledger thread and what it shares: the counts and the commit figures.
struct Counting {
    ledger: LedgerHandle,
    counters: Arc<Mutex<crate::core::counters::Counters>>,
    commit_stats: Arc<crate::figures::CommitStats>,
    activity: Arc<Mutex<crate::core::history::Activity>>,
    thread: std::thread::JoinHandle<()>,
}

/// Starts the ledger thread; every count tells the engine and the page.
fn start_ledger(
    config: &Config,
    store: Store,
    engine: &EngineHandle,
    web: &Option<Arc<crate::web::Web>>,
    mqtt_wake: &Arc<tokio::sync::Notify>,
) -> anyhow::Result<Counting> {
    let notify = engine.clone();
    let web_notify = web.clone();
    let reserved: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
    let (ledger, counters) = Ledger::open_reserving(
        store,
        config.dedupe_window_ms,
        config.retention_days,
        config.max_events,
        Box::new(move |route: &str| {
            notify.send(EngineMsg::Counted(route.to_string()));
            if let Some(web) = &web_notify {
                web.changed();
            }
        }),
        &reserved,
    )?;
    let ledger = match &config.mqtt {
        Some(m) => ledger.with_outbox(m.outbox_max, mqtt_wake.clone()),
        None => ledger,
    };
    let commit_stats = ledger.stats.clone();
    let activity = ledger.activity.clone();
    let (ledger, thread) = ledger.spawn();
    let wake = ledger.clone();
    if !crate::clockwake::spawn(move || wake.clock_set()) {
        tracing::debug!("clock steps are noticed at the next hook only");
    }
    Ok(Counting {
        ledger,
        counters,
        commit_stats,
        activity,
        thread,
    })
}

/// Starts the engine task that drives the panel, and forwards the panel's
/// button edges to it.
fn start_engine(
    task: Engine,
    (engine, engine_rx): (EngineHandle, mpsc::UnboundedReceiver<EngineMsg>),
    mut buttons: mpsc::Receiver<ButtonEdge>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    // The engine drives the panel, and the Pi panel bit-bangs its pins with
    // busy waits (500 ns LED half periods, 20 µs TM1637 bit delays: about
    // 0.4 ms per LED frame and 3 ms per display update, more on a slow
    // module). On its own thread, with its own single-threaded runtime, those
    // waits never hold a worker of the main runtime that serves HTTP, MQTT
    // and the control socket; everything still reaches the engine over its
    // channels, and its timers and the shutdown command run on its runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the panel thread's runtime: {e}"))?;
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let handle = engine.clone();
    std::thread::Builder::new()
        .name("banlight-panel".into())
        .spawn(move || {
            runtime.block_on(task.run(engine_rx, handle));
            let _ = done.send(());
        })
        .map_err(|e| anyhow::anyhow!("cannot start the panel thread: {e}"))?;
    let engine_task = tokio::spawn(async move {
        let _ = finished.await;
    });
    tokio::spawn(async move {
        while let Some(edge) = buttons.recv().await {
            engine.send(EngineMsg::Button(edge));
        }
    });
    Ok(engine_task)
}

/// Starts the heartbeat watch; open pages show a state change at once.
fn watch_heartbeats(
    heartbeats: &Arc<crate::heartbeat::Monitor>,
    ledger: &LedgerHandle,
    engine: &EngineHandle,
    web: &Option<Arc<crate::web::Web>>,
) -> tokio::task::JoinHandle<()> {
    let web = web.clone();
    tokio::spawn(
        heartbeats
            .clone()
            .run(ledger.clone(), engine.clone(), move || {
                if let Some(web) = &web {
                    web.changed();
                }
            }),
    )
}

/// With `[tls]`: the key (made at first start) and the bound listener.
async fn open_tls(
    config: &Config,
) -> anyhow::Result<Option<(Arc<crate::tls::TlsState>, TcpListener)>> {
    let Some(t) = &config.tls else {
        return Ok(None);
    };
    let state = crate::tls::TlsState::open(&config.state_dir, crate::clock::wall_ms())
        .map_err(|e| anyhow::anyhow!(e))?;
    let listener = TcpListener::bind(t.listen).await.with_context(|| {
        format!(
            "cannot listen on {} (set [tls] listen in the config)",
            t.listen
        )
    })?;
    Ok(Some((Arc::new(state), listener)))
}

/// One shutdown for every listener: when `shutdown` resolves, open page
/// streams end (or graceful shutdown would wait for them) and the watch
/// turns true.
fn stop_on(
    shutdown: impl Future<Output = ()> + Send + 'static,
    web: Option<Arc<crate::web::Web>>,
) -> tokio::sync::watch::Receiver<bool> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        if let Some(web) = &web {
            web.close();
        }
        let _ = stop_tx.send(true);
    });
    stop_rx
}

/// The HTTP tasks: plain, and TLS with its address.
struct Serving {
    plain: Option<tokio::task::JoinHandle<()>>,
    tls_addr: Option<SocketAddr>,
    tls: Option<tokio::task::JoinHandle<()>>,
}

/// The plain and TLS listeners, served until the shutdown watch turns true.
fn serve_http(
    listener: Option<TcpListener>,
    tls: Option<(Arc<crate::tls::TlsState>, TcpListener)>,
    http: &Arc<crate::http::Server>,
    stop_rx: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Serving> {
    let plain = listener.map(|listener| {
        tokio::spawn(crate::http::serve(
            listener,
            http.clone(),
            stopped(stop_rx.clone()),
        ))
    });
    let (tls_addr, tls_server) = match tls {
        Some((state, listener)) => {
            let addr = listener.local_addr()?;
            tracing::info!(%addr, "banlight listening with TLS");
            let task = tokio::spawn(crate::http::serve_tls(
                listener,
                http.clone(),
                state,
                stopped(stop_rx.clone()),
            ));
            (Some(addr), Some(task))
        }
        None => (None, None),
    };
    Ok(Serving {
        plain,
        tls_addr,
        tls: tls_server,
    })
}

/// Resolves when the shutdown watch turns true.
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

impl Daemon {
    /// Waits for the server to stop (its shutdown future resolved), then
    /// drains the store and blanks the panel.
    pub async fn wait(self) -> anyhow::Result<()> {
        if let Some(server) = self.server {
            server.await.context("HTTP server task")?;
        }
        if let Some(t) = self.tls_server {
            t.await.context("TLS server task")?;
        }
        if let Some(t) = self.mqtt_task {
            // Says `offline` and hands its acks to the ledger before it closes.
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        self.control_task.abort();
        self.heartbeat_task.abort();
        self.engine.stop().await;
        let _ = self.engine_task.await;
        // The ledger commits what it holds, then its thread ends.
        self.ledger.close().await;
        tokio::task::spawn_blocking(move || self.ledger_thread.join())
            .await
            .context("ledger thread")?
            .map_err(|_| anyhow::anyhow!("ledger thread panicked"))?;
        tracing::info!("banlight stopped");
        Ok(())
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_simulation_only_pretends_the_default_shutdown() {
        let defaults = Config::parse(Path::new("t.toml"), "").unwrap();
        assert!(shutdown_command(&defaults, "sim").is_empty());
        assert_eq!(shutdown_command(&defaults, "pi"), ["systemctl", "poweroff"]);
        // no real buttons: a recording and the tests' memory panel pretend too
        assert!(shutdown_command(&defaults, "record").is_empty());
        assert!(shutdown_command(&defaults, "memory").is_empty());
        assert!(shutdown_command(&defaults, "gpio-sim").is_empty());
        let set = Config::parse(
            Path::new("t.toml"),
            "shutdown_command = \"systemctl poweroff\"\n",
        )
        .unwrap();
        assert_eq!(
            shutdown_command(&set, "sim"),
            ["systemctl", "poweroff"],
            "asked for explicitly"
        );
    }
}
