//! The local control socket: admin operations for the CLI, only over a Unix
//! socket (mode 0660), never over TCP. One JSON request line, one JSON answer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::clock::wall_ms;
use crate::config::Config;
use crate::core::time::rfc3339_utc;
use crate::engine::{EngineHandle, EngineMsg};
use crate::ledger::{EventQuery, LedgerHandle};
use crate::state::{Routing, State};

/// A request line on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum ControlRequest {
    Status,
    Events {
        since_ms: u64,
        route: Option<String>,
        limit: usize,
        /// Only the hooks the ignore list kept from counting.
        #[serde(default)]
        ignored: bool,
    },
    Test {
        route: String,
    },
    Reset {
        route: Option<String>,
    },
    Brightness {
        leds: u8,
        display: u8,
    },
    Mode {
        mode: String,
    },
    Reload,
    /// Make the next TLS key; it takes over after the overlap (`now`: at once).
    TlsRotate {
        #[serde(default)]
        now: bool,
    },
}

const MAX_REQUEST: usize = 64 * 1024;

pub struct Control {
    pub state: Arc<State>,
    /// The live page, told when the counts are reset (`None`: off).
    pub web: Option<Arc<crate::web::Web>>,
    pub engine: EngineHandle,
    pub ledger: LedgerHandle,
    /// The config in force (reload replaces it).
    pub config: Mutex<Config>,
    /// With `[tls]`: the key and certificate in use.
    pub tls: Option<Arc<crate::tls::TlsState>>,
}

fn ok(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("ok".into(), json!(true));
    }
    v
}

fn fail(message: impl Into<String>) -> Value {
    json!({"ok": false, "error": message.into()})
}

impl Control {
    fn route_exists(&self, route: &str) -> bool {
        self.state.routing().routes.iter().any(|r| r.name == route)
    }

    pub async fn handle(&self, req: ControlRequest) -> Value {
        match req {
            ControlRequest::Status => ok(crate::status::status_json(&self.state)),
            ControlRequest::Events {
                since_ms,
                route,
                limit,
                ignored,
            } => {
                let q = EventQuery {
                    since_ms,
                    route,
                    limit: limit.min(100_000),
                    ignored,
                };
                match self.ledger.events(q).await {
                    Ok(events) => {
                        let list: Vec<Value> = events
                            .iter()
                            .map(crate::store::StoredEvent::to_json)
                            .collect();
                        ok(json!({ "events": list }))
                    }
                    Err(e) => fail(e.to_string()),
                }
            }
            ControlRequest::Test { route } => {
                if !self.route_exists(&route) {
                    return fail(format!("no route \"{route}\""));
                }
                self.engine.send(EngineMsg::Test(route.clone()));
                ok(json!({ "played": route }))
            }
            ControlRequest::Reset { route } => {
                if let Some(r) = &route {
                    if !self.route_exists(r) {
                        return fail(format!("no route \"{r}\""));
                    }
                }
                match self.ledger.reset(route.clone(), "cli".into()).await {
                    Ok(()) => {
                        // The display shows counts: redraw it now, not at the next event.
                        self.engine.send(EngineMsg::Refresh);
                        tracing::warn!(
                            route = route.as_deref().unwrap_or("(all)"),
                            "counters reset from the CLI"
                        );
                        // Open pages show the new counts now.
                        if let Some(web) = &self.web {
                            web.changed();
                        }
                        ok(json!({ "reset": route.unwrap_or_else(|| "all".into()) }))
                    }
                    Err(e) => fail(e.to_string()),
                }
            }
            ControlRequest::Brightness { leds, display } => {
                if leds > 31 || display > 7 {
                    return fail("brightness: LEDs take 0-31, the display 0-7");
                }
                self.engine.send(EngineMsg::Brightness(leds, display));
                ok(json!({ "leds": leds, "display": display }))
            }
            ControlRequest::Mode { mode } => match self.engine.set_mode(mode).await {
                Ok(m) => ok(json!({ "mode": m })),
                Err(e) => fail(e),
            },
            ControlRequest::Reload => match self.reload().await {
                Ok(summary) => ok(json!({ "reloaded": summary })),
                Err(e) => fail(e),
            },
            ControlRequest::TlsRotate { now } => {
                let Some(tls) = &self.tls else {
                    return fail("TLS is off: add a [tls] table with `listen` to the config");
                };
                let overlap = if now {
                    0
                } else {
                    let c = self.config.lock().expect("config lock");
                    c.tls.map_or(0, |t| t.overlap.0)
                };
                match tls.rotate(wall_ms(), overlap) {
                    Ok((pins, at)) => ok(json!({
                        "pins": pins,
                        "switch_at": rfc3339_utc(at),
                    })),
                    Err(e) => fail(e),
                }
            }
        }
    }

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
        self.engine
            .send(crate::engine::EngineMsg::Quiet(new.quiet.clone()));
        let mut settings = new.scene_settings();
        // led_count needs a restart (the strip is opened with it)
        settings.sweep.led_count =
            self.config.lock().expect("config lock").panel.led_count as usize;
        self.engine.send(EngineMsg::Reconfigure(
            settings,
            new.route_looks(),
            new.button_timing(),
        ));
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

/// Binds the socket: refuses if a daemon already answers there, replaces a
/// stale file, and makes it 0660 (owner and group, e.g. `banlight`).
pub async fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    // lstat: a symlink or a regular file at this path (say, the database
    // named by mistake) is never ours to delete.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            anyhow::bail!(
                "control_socket {} exists and is not a socket; refusing to remove it (fix control_socket in the config, or move the file away)",
                path.display()
            );
        }
        if UnixStream::connect(path).await.is_ok() {
            anyhow::bail!(
                "another banlight is already running with control socket {}",
                path.display()
            );
        }
        std::fs::remove_file(path).map_err(|e| {
            anyhow::anyhow!("cannot remove stale control socket {}: {e}", path.display())
        })?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| anyhow::anyhow!("cannot create control socket {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// Control connections served at once; more are closed on accept.
pub const MAX_CONTROL_CONNECTIONS: usize = 32;
/// A control client must send its request line within this.
pub const CONTROL_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Control connections closed because the cap was reached (since start).
pub static CONTROL_SHED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Serves control requests until the listener is dropped with the task.
pub async fn serve(listener: UnixListener, control: Arc<Control>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONTROL_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off, do not spin.
                tracing::warn!("control socket accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // Over the cap the connection is closed at once: idle clients cannot
        // pile up descriptors that the HTTP side needs for hooks.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            CONTROL_SHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let control = control.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader = BufReader::new(read).take(MAX_REQUEST as u64);
            let answer =
                match tokio::time::timeout(CONTROL_READ_TIMEOUT, reader.read_line(&mut line)).await
                {
                    Ok(Ok(_)) => match serde_json::from_str::<ControlRequest>(&line) {
                        Ok(req) => control.handle(req).await,
                        Err(e) => fail(format!("bad request: {e}")),
                    },
                    Ok(Err(e)) => fail(format!("cannot read the request: {e}")),
                    Err(_) => fail("no request within the read timeout".to_string()),
                };
            let _ = write.write_all(format!("{answer}\n").as_bytes()).await;
        });
    }
}

/// Removes the socket file when the daemon stops.
pub struct SocketFile(pub PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Where the Debian package puts its unit (or an admin copies it).
const UNIT_PATHS: [&str; 2] = [
    "/lib/systemd/system/banlight.service",
    "/etc/systemd/system/banlight.service",
];

fn packaged_unit_installed() -> bool {
    UNIT_PATHS.iter().any(|p| Path::new(p).exists())
}

/// `systemctl` is only advice where the unit exists; elsewhere (a
/// `cargo run` on a workstation) it would send the user to a dead end.
pub fn not_running_advice(socket: &Path, unit_installed: bool) -> String {
    let start = if unit_installed {
        "Start it with `sudo systemctl start banlight`"
    } else {
        "Start it with `banlight` (or `cargo run --release` in the source tree)"
    };
    format!(
        "banlight is not running (no daemon at {}). {start}, or pass --socket PATH",
        socket.display()
    )
}

/// The CLI side: one request, one answer.
pub fn call(socket: &Path, req: &ControlRequest) -> Result<Value, String> {
    use std::io::{BufRead, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            not_running_advice(socket, packaged_unit_installed())
        }
        std::io::ErrorKind::PermissionDenied => format!(
            "no permission to use {}: add yourself to the banlight group (`sudo adduser $USER banlight`, then log in again) or use sudo",
            socket.display()
        ),
        _ => format!("cannot connect to {}: {e}", socket.display()),
    })?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let line = serde_json::to_string(req).map_err(|e| e.to_string())? + "\n";
    stream
        .write_all(line.as_bytes())
        .map_err(|e| format!("cannot send to the daemon: {e}"))?;
    let mut answer = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| format!("no answer from the daemon: {e}"))?;
    let v: Value =
        serde_json::from_str(&answer).map_err(|e| format!("bad answer from the daemon: {e}"))?;
    if v["ok"] == json!(true) {
        Ok(v)
    } else {
        Err(v["error"]
            .as_str()
            .unwrap_or("the daemon refused")
            .to_string())
    }
}

/// For `events --since`: milliseconds since the epoch, `since` ago.
pub fn since_ms(ago_ms: u64) -> u64 {
    wall_ms().saturating_sub(ago_ms)
}

#[cfg(test)]
mod advice_tests {
    use super::*;

    #[test]
    fn systemctl_is_advised_only_where_the_unit_is_installed() {
        let sock = Path::new("/run/banlight/control.sock");
        let with = not_running_advice(sock, true);
        assert!(with.contains("systemctl start banlight"), "{with}");
        let without = not_running_advice(sock, false);
        assert!(!without.contains("systemctl"), "{without}");
        assert!(without.contains("/run/banlight/control.sock"), "{without}");
    }
}
