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
    pub fn call(&self, req: &ControlRequest) -> Result<Value, String> {
        let socket = self.socket.as_path();
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
        let v: Value = serde_json::from_str(&answer)
            .map_err(|e| format!("bad answer from the daemon: {e}"))?;
        if v["ok"] == json!(true) {
            Ok(v)
        } else {
            Err(v["error"]
                .as_str()
                .unwrap_or("the daemon refused")
                .to_string())
        }
    }

    /// `call`, the answer read as the command's typed reply.
    pub fn ask<R: DeserializeOwned>(&self, req: &ControlRequest) -> Result<R, String> {
        let v = self.call(req)?;
        serde_json::from_value(v).map_err(|e| format!("unexpected answer from the daemon: {e}"))
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
