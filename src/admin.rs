//! The client of the control socket: where it is, one request and one
//! answer, and what to tell the user when no daemon answers. The commands
//! themselves are in `cmd/`.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::config::Config;
use crate::control::ControlRequest;

/// The running daemon, reached over its control socket.
pub struct Client {
    socket: PathBuf,
}

impl Client {
    /// --socket, else the config's.
    pub fn new(explicit: Option<&Path>, config: &Config) -> Client {
        Client {
            socket: explicit.map_or_else(|| config.control_socket.clone(), Path::to_path_buf),
        }
    }

    /// The CLI side: one request, one answer.
    pub fn call(&self, req: &ControlRequest) -> Result<Value, ClientError> {
        let socket = self.socket.as_path();
        use std::io::{BufRead, Write};
        let mut stream =
            std::os::unix::net::UnixStream::connect(socket).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    ClientError::NotRunning {
                        socket: socket.to_path_buf(),
                        unit_installed: packaged_unit_installed(),
                    }
                }
                std::io::ErrorKind::PermissionDenied => {
                    ClientError::NoPermission(socket.to_path_buf())
                }
                _ => ClientError::Connect(socket.to_path_buf(), e),
            })?;
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .map_err(ClientError::Send)?;
        let line = serde_json::to_string(req).expect("a request always serializes") + "\n";
        stream
            .write_all(line.as_bytes())
            .map_err(ClientError::Send)?;
        let mut answer = String::new();
        std::io::BufReader::new(stream)
            .read_line(&mut answer)
            .map_err(ClientError::NoAnswer)?;
        let v: Value = serde_json::from_str(&answer).map_err(ClientError::BadAnswer)?;
        if v["ok"] == json!(true) {
            Ok(v)
        } else {
            Err(ClientError::Refused(
                v["error"]
                    .as_str()
                    .unwrap_or("the daemon refused")
                    .to_string(),
            ))
        }
    }

    /// `call`, the answer read as the command's typed reply.
    pub fn ask<R: DeserializeOwned>(&self, req: &ControlRequest) -> Result<R, ClientError> {
        let v = self.call(req)?;
        serde_json::from_value(v).map_err(ClientError::Unexpected)
    }
}

/// Why a maintenance command got no answer from the daemon. Callers act on
/// `NotRunning` (a command that needs no daemon goes on without one); the
/// rest are told to the user as they are, each with its fix.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{}", not_running_advice(.socket, *.unit_installed))]
    NotRunning {
        socket: PathBuf,
        unit_installed: bool,
    },
    #[error("no permission to use {}: add yourself to the banlight group (`sudo adduser $USER banlight`, then log in again) or use sudo", .0.display())]
    NoPermission(PathBuf),
    #[error("cannot connect to {}: {}", .0.display(), .1)]
    Connect(PathBuf, std::io::Error),
    #[error("cannot send to the daemon: {0}")]
    Send(std::io::Error),
    #[error("no answer from the daemon: {0}")]
    NoAnswer(std::io::Error),
    #[error("bad answer from the daemon: {0}")]
    BadAnswer(serde_json::Error),
    #[error("unexpected answer from the daemon: {0}")]
    Unexpected(serde_json::Error),
    /// The daemon answered and said no; its reason, as it gave it.
    #[error("{0}")]
    Refused(String),
}

/// The commands' own errors are messages for the user (`cmd::run` prints them).
impl From<ClientError> for String {
    fn from(e: ClientError) -> String {
        e.to_string()
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
