//! systemd's notification protocol, through the `sd-notify` crate: `READY=1`
//! once the listener is bound and the store is open, `WATCHDOG=1` at a third
//! of `$WATCHDOG_USEC` while the engine and the ledger both answer, and
//! `STOPPING=1` when shutdown begins. Outside systemd (no `$NOTIFY_SOCKET`)
//! all of it is a no-op.
//!
//! The crate sends to a socket *path*, which is what systemd gives every
//! service (`/run/systemd/notify`). A Linux abstract socket (`@name`), which
//! only some other service managers hand out, is not supported by the crate:
//! that is reported once as a clear warning instead of failing silently.

use std::future::Future;
use std::io;
use std::time::Duration;

pub use sd_notify::NotifyState;

use crate::daemon::Daemon;
use crate::engine::EngineHandle;
use crate::ledger::{EventQuery, LedgerHandle};

/// Sends the states as one datagram (each line `KEY=VALUE`); `Ok` without a
/// `$NOTIFY_SOCKET`. An abstract `@name` socket is refused with a message
/// saying so.
pub fn send(states: &[NotifyState]) -> io::Result<()> {
    if let Some(socket) = std::env::var_os("NOTIFY_SOCKET") {
        if socket.as_encoded_bytes().starts_with(b"@") {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "NOTIFY_SOCKET={} is an abstract socket, which the sd-notify crate does not support (systemd itself passes a path)",
                    socket.to_string_lossy()
                ),
            ));
        }
    }
    sd_notify::notify(states)
}

/// Sends to systemd if it is listening; failures are logged, never fatal.
pub fn notify(states: &[NotifyState]) {
    if let Err(e) = send(states) {
        let what: Vec<String> = states.iter().map(|s| s.to_string()).collect();
        tracing::warn!("sd_notify {what:?} failed: {e}");
    }
}

/// How often to ping, given what systemd asks for (`sd_notify::watchdog_enabled`:
/// `$WATCHDOG_USEC` when `$WATCHDOG_PID` is unset or ours): a third of it,
/// none for zero. A liveness check may take up to one interval, so two pings
/// are at most two thirds of the limit apart.
pub fn ping_interval(watchdog: Option<Duration>) -> Option<Duration> {
    watchdog.filter(|d| !d.is_zero()).map(|d| d / 3)
}

/// The ping interval for this process from the environment.
pub fn watchdog_interval() -> Option<Duration> {
    ping_interval(sd_notify::watchdog_enabled())
}

/// Pings `WATCHDOG=1` every `interval` for as long as `alive` says yes
/// within that interval; a hung engine or store stops the pings, and
/// systemd restarts the service.
pub async fn watchdog<F, Fut>(interval: Duration, mut alive: F)
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
                if let Err(e) = send(&[NotifyState::Watchdog]) {
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
    let status = format!("listening on {}", daemon.addr);
    notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Some(interval) = watchdog_interval() {
        tracing::info!("systemd watchdog: pinging every {interval:?}");
        let engine = daemon.engine.clone();
        let ledger = daemon.ledger.clone();
        tokio::spawn(async move {
            watchdog(interval, || {
                let (engine, ledger) = (engine.clone(), ledger.clone());
                async move { alive(&engine, &ledger).await }
            })
            .await
        });
    }
}

/// When shutdown begins.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tests that set NOTIFY_SOCKET live in tests/notify.rs, a process of
    // their own: the environment is shared by every thread of this one.

    #[test]
    fn watchdog_pings_at_a_third_and_not_for_zero() {
        let s = Duration::from_secs;
        assert_eq!(ping_interval(Some(s(30))), Some(s(10)));
        assert_eq!(
            ping_interval(Some(Duration::from_micros(900_000))),
            Some(Duration::from_millis(300))
        );
        assert_eq!(ping_interval(Some(Duration::ZERO)), None);
        assert_eq!(ping_interval(None), None);
    }
}
