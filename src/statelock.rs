//! One daemon per state directory: an exclusive `flock` on
//! `<state_dir>/banlight.lock`, which also holds the owner's pid so the
//! second instance can name it. The kernel drops the lock when the process
//! dies (also on kill -9), so a stale file never blocks a restart.

use crate::config::Config;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "banlight.lock";

/// Held for the daemon's lifetime; the lock goes with the file descriptor.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    pub path: PathBuf,
}

/// What `StateLock::probe` found.
#[derive(Debug)]
pub enum Probe {
    /// Nobody held the lock; it is ours now, for as long as this is kept.
    Taken(StateLock),
    /// A running banlight holds it: "pid 1234" (or "another process").
    Held(String),
    /// The lock could not be checked (no state_dir yet, or not ours to open).
    Unknown(String),
}

impl StateLock {
    /// Takes the lock of an existing `state_dir` if it is free, without
    /// creating anything (for `banlight selftest`, which must not run beside
    /// a daemon but may run as a user who cannot write the state_dir).
    pub fn probe(state_dir: &Path) -> Probe {
        if !state_dir.is_dir() {
            return Probe::Unknown(format!("{} does not exist", state_dir.display()));
        }
        let path = state_dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .or_else(|_| File::open(&path));
        let mut file = match file {
            Ok(f) => f,
            Err(e) => return Probe::Unknown(format!("{}: {e}", path.display())),
        };
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Probe::Held(holder(&mut file));
        }
        // Our pid, so a daemon started meanwhile names us (if we may write).
        if file.set_len(0).is_ok() {
            let _ = writeln!(file, "{}", std::process::id());
        }
        Probe::Taken(StateLock { _file: file, path })
    }

    pub fn acquire(state_dir: &Path) -> anyhow::Result<StateLock> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", state_dir.display()))?;
        let path = state_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let who = holder(&mut file);
            anyhow::bail!(
                "another banlight ({who}) is already running on state_dir {} (lock {}); \
                 two daemons on one database would overwrite each other's counts",
                state_dir.display(),
                path.display()
            );
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "{}", std::process::id())?;
        file.flush()?;
        Ok(StateLock { _file: file, path })
    }
}

/// "pid 1234" from the lock file, or "another process".
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    match text.trim() {
        "" => "another process".to_string(),
        pid => format!("pid {pid}"),
    }
}

/// Refuses to run beside a daemon on the same config: both processes would
/// drive the same pins (rppal only tracks pins per process, /dev/gpiomem is
/// not exclusive), the buttons' edges would go to the service, and a long
/// POWER press meant for the test would shut the Pi down. A daemon shows by
/// its state_dir lock or by answering on the control socket. Returns the
/// lock when it could be taken.
pub fn beside_a_daemon(config: &Config) -> Result<Option<StateLock>, String> {
    let stop = "stop it first: sudo systemctl stop banlight (and sudo systemctl start banlight after the test)";
    let why = "both would drive the same pins, and a long POWER press during the test would shut the Pi down through the service";
    let lock = match StateLock::probe(&config.state_dir) {
        Probe::Held(who) => {
            return Err(format!(
                "banlight is running ({who} holds {}): {why}; {stop}",
                config.state_dir.join(LOCK_FILE).display()
            ))
        }
        Probe::Taken(lock) => Some(lock),
        Probe::Unknown(_) => None,
    };
    match std::os::unix::net::UnixStream::connect(&config.control_socket) {
        Ok(_) => Err(format!(
            "a banlight daemon answers on {}: {why}; {stop}",
            config.control_socket.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(format!(
            "{} exists but may not be opened by this user ({e}): a banlight daemon is most likely running; {why}; {stop}, or run the selftest as a user in the banlight group",
            config.control_socket.display()
        )),
        Err(_) => Ok(lock),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        drop(first);
        StateLock::acquire(dir.path()).expect("free again once the holder is gone");
    }
}
