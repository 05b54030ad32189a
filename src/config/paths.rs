//! Where the daemon keeps its state and its control socket when the file
//! does not say, and the one place a socket must never go: the database.

use std::path::{Path, PathBuf};

use super::error::{ConfigError, Locator};

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

/// The control socket must not be the database or inside it.
pub(super) fn check_control_socket(
    socket: &Path,
    state_dir: &Path,
    loc: &Locator,
) -> Result<(), ConfigError> {
    match socket_over_database(socket, state_dir) {
        None => Ok(()),
        Some(db) => Err(loc.key(
            "",
            "control_socket",
            format!(
                "control_socket {} is the database file {} or inside it; pick a path of its own (default {})",
                socket.display(),
                db.display(),
                default_control_socket(state_dir).display()
            ),
        )),
    }
}

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
