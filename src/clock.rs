//! The system's clocks: wall time for stamping events, monotonic time for
//! elapsed time, and whether NTP has set the wall clock. Everything else is
//! handed the time (`core` never reads a clock); tests pass a clock they move.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time, ms since the epoch (0 before 1970: a Pi without RTC
/// boots in 1970 at worst, never before).
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Is the kernel's clock synchronised (NTP/chrony/timesyncd)? On Linux,
/// `adjtimex` answers TIME_ERROR or sets STA_UNSYNC until it is.
/// `BANLIGHT_ASSUME_CLOCK_SYNCED=1` overrides (containers without NTP).
pub fn clock_synchronised() -> bool {
    if std::env::var("BANLIGHT_ASSUME_CLOCK_SYNCED").is_ok_and(|v| v == "1") {
        return true;
    }
    #[cfg(target_os = "linux")]
    {
        // Raw libc: neither rustix nor nix wraps adjtimex.
        // SAFETY: modes = 0 only reads the kernel's state into `tx`.
        let mut tx: libc::timex = unsafe { std::mem::zeroed() };
        let state = unsafe { libc::adjtimex(&mut tx) };
        state >= 0 && state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0
    }
    #[cfg(not(target_os = "linux"))]
    true
}

/// Where the ledger reads the time: the system in the daemon, a clock the
/// test moves in tests (a Pi has no RTC: jumps and corrections happen).
pub trait Clock: Send + Sync {
    /// Wall-clock time, ms since the epoch: what events are stamped with.
    fn wall_ms(&self) -> u64;
    /// Monotonic ms since some fixed point: what real elapsed time is.
    fn mono_ms(&self) -> u64;
    /// Whether the wall clock is NTP-synchronised.
    fn synchronised(&self) -> bool;
}

pub struct SystemClock {
    start: std::time::Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            start: std::time::Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn wall_ms(&self) -> u64 {
        wall_ms()
    }
    fn mono_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
    fn synchronised(&self) -> bool {
        clock_synchronised()
    }
}
