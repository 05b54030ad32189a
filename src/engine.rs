//! The one task that drives the panel: it takes counted events, button edges
//! and CLI requests, asks the pure scene what to show, pushes changed frames
//! to the panel, and sleeps until the scene's next wake-up (none when idle).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::clock::wall_ms;
use crate::core::buttons::{ButtonAction, ButtonTiming, Buttons};
use crate::core::counters::Counters;
use crate::core::scene::{DisplayMode, Frame, Numbers, RouteLook, Scene, SceneSettings};
use crate::ledger::LedgerHandle;
use crate::panel::{ButtonEdge, Clock, PanelOutput};
use crate::panel_status::PanelStatus;

pub enum EngineMsg {
    /// A counted event on this route: play its sweep.
    Counted(String),
    /// Play a route's sweep without counting (`banlight test`).
    Test(String),
    Button(ButtonEdge),
    /// `next` or a mode name (`total`, `24h`, a route).
    SetMode(String, oneshot::Sender<Result<String, String>>),
    Brightness(u8, u8),
    Reconfigure(SceneSettings, Vec<RouteLook>, ButtonTiming),
    ShutdownFailed(String),
    /// What logind says about powering off as this user (`power::describe`).
    PowerCheck(String),
    /// The simulated shutdown is over: back to normal.
    ShutdownSimulated,
    /// Blank the panel and stop.
    Stop(oneshot::Sender<()>),
    /// Answer at once (the systemd watchdog's liveness check).
    Ping(oneshot::Sender<()>),
    /// New quiet hours (reload).
    Quiet(crate::core::quiet::QuietHours),
    /// The heartbeat sources down now; `true`: one just recovered.
    Silence(Vec<crate::core::silence::DownSource>, bool),
    /// The counts changed without an event (a reset): draw again now.
    Refresh,
}

#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::UnboundedSender<EngineMsg>,
}

impl EngineHandle {
    pub fn send(&self, msg: EngineMsg) {
        // After Stop the engine is gone and there is nothing left to show.
        let _ = self.tx.send(msg);
    }

    pub async fn set_mode(&self, mode: String) -> Result<String, String> {
        let (tx, rx) = oneshot::channel();
        self.send(EngineMsg::SetMode(mode, tx));
        rx.await.map_err(|_| "the panel is shut down".to_string())?
    }

    pub async fn ping(&self) -> Result<(), oneshot::error::RecvError> {
        let (tx, rx) = oneshot::channel();
        self.send(EngineMsg::Ping(tx));
        rx.await
    }

    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        self.send(EngineMsg::Stop(tx));
        let _ = rx.await;
    }
}

pub struct Engine {
    pub panel: Box<dyn PanelOutput>,
    pub scene: Scene,
    pub buttons: Buttons,
    pub counters: Arc<Mutex<Counters>>,
    pub status: Arc<Mutex<PanelStatus>>,
    pub clock: Clock,
    pub ledger: LedgerHandle,
    pub shutdown_command: Vec<String>,
    /// Whether the shutdown command may work (logind), or why the last one failed.
    pub power: Option<String>,
    /// Quiet hours: an output filter, the scene runs on underneath.
    pub quiet: crate::quiet::QuietGate,
    /// The silence alarm (heartbeats), laid over the scene.
    pub silence: crate::core::silence::Silence,
}

impl Engine {
    pub fn channel() -> (EngineHandle, mpsc::UnboundedReceiver<EngineMsg>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (EngineHandle { tx }, rx)
    }

    fn numbers(&self) -> Numbers {
        let c = self.counters.lock().expect("counters lock");
        let now = wall_ms();
        Numbers {
            total: c.total(),
            per_route: self
                .scene
                .routes()
                .iter()
                .map(|r| c.count(&r.name))
                .collect(),
            last_24h: c.total_last_24h(now),
        }
    }

    fn route_index(&self, name: &str) -> Option<usize> {
        self.scene.routes().iter().position(|r| r.name == name)
    }

    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<EngineMsg>, handle: EngineHandle) {
        let mut last: Option<Frame> = None;
        let mut failing = false;
        loop {
            let now = self.clock.now_ms();
            for action in self.buttons.poll(now) {
                self.act(action, now, &handle);
            }
            self.scene.advance(now);
            let started = self.scene.take_started();
            if !started.is_empty() && !self.quiet.holds(now) {
                for sweep in started {
                    let look = &self.scene.routes()[sweep.route];
                    self.panel
                        .sweep_started(&look.name, look.color, sweep.events);
                }
            }
            let numbers = self.numbers();
            let frame = self.scene.render(now, &numbers);
            let under = self.underneath(now);
            let frame = self.silence.apply(frame, now, under);
            let count = mode_count(self.scene.mode(), &numbers);
            let frame = self
                .quiet
                .filter(frame, now, self.scene.sweeps_pending() > 0, count);
            let retry = self.panel.wake_at().is_some_and(|at| at <= now);
            if last.as_ref() != Some(&frame) || retry {
                match self.panel.show(&frame, now) {
                    Ok(()) => {
                        if failing {
                            tracing::info!("panel output works again");
                            failing = false;
                        }
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!("panel output failed (counting continues): {e}");
                            failing = true;
                        }
                    }
                }
                self.publish(&frame);
                last = Some(frame);
            }
            let wake = [
                self.scene.next_wake(now),
                self.buttons.next_deadline(),
                self.panel.wake_at(),
                self.quiet.next_wake(now),
                // Dark quiet hours hide the alarm: no breathing frames then.
                self.silence.next_wake(
                    now,
                    crate::core::silence::Underneath {
                        lit: under.lit && !self.quiet.holds_dark(now),
                        ..under
                    },
                ),
            ]
            .into_iter()
            .flatten()
            .min();
            let msg = match wake {
                Some(at) => {
                    tokio::select! {
                        m = rx.recv() => m,
                        _ = tokio::time::sleep_until(self.clock.instant_at(at).into()) => continue,
                    }
                }
                None => rx.recv().await,
            };
            let Some(msg) = msg else { break };
            // Handle everything already queued before drawing again.
            let mut next = Some(msg);
            while let Some(msg) = next.take() {
                if let Some(done) = self.handle(msg, &handle) {
                    self.blank();
                    let _ = done.send(());
                    return;
                }
                next = rx.try_recv().ok();
            }
        }
        self.blank();
    }

    /// What the scene is doing, for the silence alarm to give way to it.
    fn underneath(&self, now: u64) -> crate::core::silence::Underneath {
        crate::core::silence::Underneath {
            lit: !self.scene.is_dark() && !self.scene.is_shutting_down(),
            sweeping: self.scene.sweeps_pending() > 0,
            display_busy: self.scene.display_busy(now),
        }
    }

    fn blank(&mut self) {
        let mut frame = self.scene.render(self.clock.now_ms(), &Numbers::default());
        frame.leds.iter_mut().for_each(|c| *c = Default::default());
        frame.display_on = false;
        if let Err(e) = self.panel.show(&frame, self.clock.now_ms()) {
            tracing::warn!("could not blank the panel: {e}");
        }
    }

    fn publish(&mut self, frame: &Frame) {
        let mut s = self.status.lock().expect("status lock");
        s.mode = self.scene.mode_name();
        s.dark = self.scene.is_dark();
        s.backend = self.panel.name().to_string();
        s.health = self.panel.health();
        if let Some(power) = &self.power {
            s.health.push(("power", power.clone()));
        }
        s.shutting_down = self.scene.is_shutting_down();
        s.led_brightness = self.scene.settings().led_brightness;
        s.display_brightness = self.scene.settings().display_brightness;
        s.frames_shown += 1;
        s.display = frame.display.to_string();
        s.quiet = self.quiet.holds(self.clock.now_ms());
    }

    /// Returns the reply channel when the engine must stop.
    fn handle(&mut self, msg: EngineMsg, handle: &EngineHandle) -> Option<oneshot::Sender<()>> {
        let now = self.clock.now_ms();
        match msg {
            EngineMsg::Counted(route) | EngineMsg::Test(route) => {
                if let Some(i) = self.route_index(&route) {
                    self.scene.on_event(i, now);
                }
            }
            EngineMsg::Button(edge) => {
                let only_wakes = self.quiet.on_button(edge.pressed, now);
                for action in self.buttons.edge(edge.button, edge.pressed, edge.t_ms) {
                    if only_wakes && action != ButtonAction::Shutdown {
                        continue;
                    }
                    self.act(action, now, handle);
                }
            }
            EngineMsg::Quiet(hours) => self.quiet.set_hours(hours),
            EngineMsg::Silence(down, recovered) => self.silence.set_down(down, recovered, now),
            // Every message is followed by a redraw; this one needs nothing else.
            EngineMsg::Refresh => {}
            EngineMsg::SetMode(name, reply) => {
                let mode = match name.as_str() {
                    "next" => None,
                    "total" | "all" => Some(DisplayMode::Total),
                    "24h" => Some(DisplayMode::Last24h),
                    r => match self.route_index(r) {
                        Some(i) => Some(DisplayMode::Route(i)),
                        None => {
                            let _ = reply.send(Err(format!(
                                "no mode \"{r}\": use next, total, 24h or a route name"
                            )));
                            return None;
                        }
                    },
                };
                match mode {
                    None => self.scene.next_mode(now),
                    Some(m) => self.scene.set_mode(m, now),
                }
                let _ = reply.send(Ok(self.scene.mode_name()));
            }
            EngineMsg::Brightness(leds, display) => self.scene.set_brightness(leds, display),
            EngineMsg::Reconfigure(settings, routes, timing) => {
                self.scene.reconfigure(settings, routes);
                self.buttons = Buttons::new(timing);
            }
            EngineMsg::ShutdownFailed(why) => {
                tracing::error!(
                    "shutdown command failed: {why}; the display shows Err, the panel is back in service"
                );
                self.scene.shutdown_refused(now);
                self.power = Some(format!("error: the last power-off was refused: {why}"));
            }
            EngineMsg::PowerCheck(answer) => {
                if !answer.starts_with("yes") {
                    tracing::warn!("the power button cannot power off: {answer}");
                }
                self.power = Some(answer);
            }
            EngineMsg::ShutdownSimulated => self.scene.cancel_shutdown(),
            EngineMsg::Stop(done) => return Some(done),
            EngineMsg::Ping(reply) => {
                let _ = reply.send(());
            }
        }
        None
    }

    fn act(&mut self, action: ButtonAction, now: u64, handle: &EngineHandle) {
        match action {
            ButtonAction::NextMode => self.scene.next_mode(now),
            ButtonAction::ToggleDark => {
                self.scene.toggle_dark();
                tracing::info!(dark = self.scene.is_dark(), "power button: panel toggled");
            }
            ButtonAction::Shutdown => {
                if self.scene.is_shutting_down() {
                    return;
                }
                tracing::warn!("power button held: shutting down");
                self.scene.begin_shutdown(now);
                let fade = Duration::from_millis(self.scene.settings().shutdown_fade_ms);
                let ledger = self.ledger.clone();
                let command = self.shutdown_command.clone();
                let handle = handle.clone();
                if command.is_empty() {
                    tracing::warn!(
                        "simulated panel: not powering off this machine (set shutdown_command in the config to run one)"
                    );
                    tokio::spawn(async move {
                        tokio::time::sleep(fade * 2).await;
                        handle.send(EngineMsg::ShutdownSimulated);
                    });
                    return;
                }
                tokio::spawn(async move {
                    tokio::time::sleep(fade).await;
                    if let Err(e) = ledger.flush().await {
                        tracing::error!("flushing the store before shutdown failed: {e}");
                    }
                    tracing::warn!(command = ?command, "running the shutdown command");
                    let result = tokio::process::Command::new(&command[0])
                        .args(&command[1..])
                        // systemctl reports a failed exit to NOTIFY_SOCKET
                        // as ERRNO=, as if the service itself had failed.
                        .env_remove("NOTIFY_SOCKET")
                        .status()
                        .await;
                    match result {
                        Ok(s) if s.success() => {} // the system stops us with SIGTERM
                        Ok(s) => handle.send(EngineMsg::ShutdownFailed(format!(
                            "{command:?} exited with {s}"
                        ))),
                        Err(e) => handle.send(EngineMsg::ShutdownFailed(format!(
                            "cannot run {command:?}: {e}"
                        ))),
                    }
                });
            }
        }
    }
}

/// The count the display mode shows (quiet hours' dim display).
fn mode_count(mode: DisplayMode, numbers: &Numbers) -> crate::core::display::DisplayText {
    crate::core::display::format_count(match mode {
        DisplayMode::Total => numbers.total,
        DisplayMode::Last24h => numbers.last_24h,
        DisplayMode::Route(i) => numbers.per_route.get(i).copied().unwrap_or(0),
    })
}
