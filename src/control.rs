//! The local control socket: admin operations for the CLI, only over a Unix
//! socket (mode 0660), never over TCP. One JSON request line, one JSON answer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::config::Config;
use crate::engine::EngineHandle;
use crate::ledger::LedgerHandle;
use crate::state::State;

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
    /// Press a panel button for `hold_ms` (`banlight press`).
    Press {
        button: String,
        hold_ms: u64,
    },
    Reload,
    /// The file the daemon read its config from (`banlight hook` and the
    /// other commands use it when run without --config).
    ConfigPath,
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
    /// The panel clock button edges are stamped with (`banlight press`).
    pub clock: crate::panel::Clock,
    pub ledger: LedgerHandle,
    /// The config in force (reload replaces it).
    pub config: Mutex<Config>,
    /// With `[tls]`: the key and certificate in use.
    pub tls: Option<Arc<crate::tls::TlsState>>,
}

/// The answer to a request that could not be read.
fn fail(message: impl Into<String>) -> Value {
    json!({"ok": false, "error": message.into()})
}

impl Control {
    pub(crate) fn route_exists(&self, route: &str) -> bool {
        self.state.routing().routes.iter().any(|r| r.name == route)
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
