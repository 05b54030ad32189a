//! systemd's notification protocol (`sd_notify`), without libsystemd: one
//! datagram per message to the socket in `$NOTIFY_SOCKET`. `READY=1` once
//! the listener is bound and the store is open, `WATCHDOG=1` at a third of
//! `$WATCHDOG_USEC` while the engine and the ledger both answer, and
//! `STOPPING=1` when shutdown begins. Outside systemd all of it is a no-op.

use std::future::Future;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::daemon::Daemon;
use crate::engine::EngineHandle;
use crate::ledger::{EventQuery, LedgerHandle};

/// Where notifications go.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Path(PathBuf),
    /// Linux abstract namespace (`@name` in `$NOTIFY_SOCKET`).
    Abstract(Vec<u8>),
}

impl Notifier {
    /// From `$NOTIFY_SOCKET` as systemd sets it (an absolute path or `@name`).
    pub fn new(notify_socket: &str) -> io::Result<Notifier> {
        let target = if let Some(name) = notify_socket.strip_prefix('@') {
            Target::Abstract(name.as_bytes().to_vec())
        } else if notify_socket.starts_with('/') {
            Target::Path(PathBuf::from(notify_socket))
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("NOTIFY_SOCKET={notify_socket:?} is neither a path nor @abstract"),
            ));
        };
        Ok(Notifier {
            socket: UnixDatagram::unbound()?,
            target,
        })
    }

    /// Sends one message, e.g. `READY=1` (several are joined by newlines).
    pub fn send(&self, state: &str) -> io::Result<()> {
        let sent = match &self.target {
            Target::Path(p) => self.socket.send_to(state.as_bytes(), p)?,
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                self.socket.send_to_addr(state.as_bytes(), &addr)?
            }
        };
        if sent != state.len() {
            return Err(io::Error::other("short write to NOTIFY_SOCKET"));
        }
        Ok(())
    }
}

/// The process-wide notifier from the environment (None outside systemd).
pub fn from_env() -> Option<&'static Notifier> {
    static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();
    NOTIFIER
        .get_or_init(|| {
            let path = std::env::var("NOTIFY_SOCKET").ok()?;
            match Notifier::new(&path) {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::warn!("cannot notify systemd: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// Sends to systemd if it is listening; failures are logged, never fatal.
pub fn notify(state: &str) {
    if let Some(n) = from_env() {
        if let Err(e) = n.send(state) {
            tracing::warn!("sd_notify {state:?} failed: {e}");
        }
    }
}

/// How often to ping: a third of `WATCHDOG_USEC`, when it is meant for this
/// process (`WATCHDOG_PID` unset or ours). A liveness check may take up to
/// one interval, so two pings are at most two thirds of the limit apart.
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, my_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != my_pid {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 3))
}

/// Pings `WATCHDOG=1` every `interval` for as long as `alive` says yes
/// within that interval; a hung engine or store stops the pings, and
/// systemd restarts the service.
pub async fn watchdog<F, Fut>(notifier: &Notifier, interval: Duration, mut alive: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate; READY=1 just said we live
    let mut healthy = true;
    loop {
        ticks.tick().await;
        match tokio::time::timeout(interval, alive()).await {
            Ok(Ok(())) => {
                if !healthy {
                    tracing::info!("watchdog: the daemon answers again");
                    healthy = true;
                }
                if let Err(e) = notifier.send("WATCHDOG=1") {
                    tracing::warn!("watchdog ping failed: {e}");
                }
            }
            Ok(Err(why)) => {
                if healthy {
                    tracing::error!("watchdog: not pinging systemd: {why}");
                    healthy = false;
                }
            }
            Err(_) => {
                if healthy {
                    tracing::error!("watchdog: not pinging systemd: no answer within {interval:?}");
                    healthy = false;
                }
            }
        }
    }
}

/// A round trip through the engine task and the ledger thread (an empty
/// query, which still goes through SQLite).
pub async fn alive(engine: &EngineHandle, ledger: &LedgerHandle) -> Result<(), String> {
    engine
        .ping()
        .await
        .map_err(|_| "the panel engine does not answer".to_string())?;
    let nothing = EventQuery {
        since_ms: u64::MAX,
        route: None,
        limit: 0,
        ..Default::default()
    };
    ledger
        .events(nothing)
        .await
        .map(|_| ())
        .map_err(|e| format!("the store does not answer: {e}"))
}

/// After `daemon::start`: tells systemd we are ready and, when it asks for
/// a watchdog, starts pinging.
pub fn ready(daemon: &Daemon) {
    notify(&format!("READY=1\nSTATUS=listening on {}", daemon.addr));
    let interval = watchdog_interval(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    );
    if let (Some(notifier), Some(interval)) = (from_env(), interval) {
        tracing::info!("systemd watchdog: pinging every {interval:?}");
        let engine = daemon.engine.clone();
        let ledger = daemon.ledger.clone();
        tokio::spawn(async move {
            watchdog(notifier, interval, || {
                let (engine, ledger) = (engine.clone(), ledger.clone());
                async move { alive(&engine, &ledger).await }
            })
            .await
        });
    }
}

/// When shutdown begins.
pub fn stopping() {
    notify("STOPPING=1");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn listener() -> (tempfile::TempDir, UnixDatagram, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (dir, sock, path.to_str().unwrap().to_string())
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn sends_datagrams_to_a_path() {
        let (_dir, sock, path) = listener();
        let n = Notifier::new(&path).unwrap();
        n.send("READY=1").unwrap();
        n.send("STOPPING=1").unwrap();
        assert_eq!(recv(&sock), "READY=1");
        assert_eq!(recv(&sock), "STOPPING=1");
    }

    #[test]
    fn sends_datagrams_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("banlight-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Notifier::new(&format!("@{name}"))
            .unwrap()
            .send("WATCHDOG=1")
            .unwrap();
        assert_eq!(recv(&sock), "WATCHDOG=1");
    }

    #[test]
    fn bad_sockets_are_refused() {
        assert!(Notifier::new("relative/path").is_err());
        assert!(Notifier::new("").is_err());
    }

    #[test]
    fn watchdog_interval_is_a_third_and_only_for_us() {
        let third = Some(Duration::from_secs(10));
        assert_eq!(watchdog_interval(Some("30000000"), None, 7), third);
        assert_eq!(watchdog_interval(Some("30000000"), Some("7"), 7), third);
        assert_eq!(watchdog_interval(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("x"), None, 7), None);
    }

    #[tokio::test]
    async fn watchdog_pings_only_while_alive() {
        let (_dir, sock, path) = listener();
        let notifier: &'static Notifier = Box::leak(Box::new(Notifier::new(&path).unwrap()));
        let alive = Arc::new(AtomicBool::new(true));
        let flag = alive.clone();
        let task = tokio::spawn(watchdog(notifier, Duration::from_millis(20), move || {
            let ok = flag.load(Ordering::SeqCst);
            async move {
                if ok {
                    Ok(())
                } else {
                    Err("stuck".to_string())
                }
            }
        }));
        let sock = tokio::task::spawn_blocking(move || {
            assert_eq!(recv(&sock), "WATCHDOG=1");
            assert_eq!(recv(&sock), "WATCHDOG=1");
            sock
        })
        .await
        .unwrap();
        alive.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(60)).await;
        // drain what was sent before the flag flipped, then expect silence
        sock.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        while sock.recv(&mut buf).is_ok() {}
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            sock.recv(&mut buf).is_err(),
            "no ping while the daemon is stuck"
        );
        task.abort();
    }
}
