//! May the service user power the machine off? Asks logind (`CanPowerOff`,
//! which weighs polkit and any block inhibitor for the calling user) through
//! `busctl`, so no D-Bus crate is needed for one call. The answer goes into
//! the panel's health as `power`.

use std::time::Duration;

/// logind's answer as a health word: `yes`, or `no: …` with the fix.
pub fn describe(answer: &str) -> String {
    match answer {
        "yes" => "yes".into(),
        "challenge" => "no: logind would ask for a password (polkit has no rule for this user: \
             is /etc/polkit-1/rules.d/50-banlight.rules installed, and polkitd? \
             sudo apt install polkitd)"
            .into(),
        "no" => "no: logind refuses this user power-off (a block inhibitor is held, or polkit \
             says no: systemd-inhibit --list)"
            .into(),
        "na" => "no: power-off is not available on this system".into(),
        other => format!("unknown: logind answered {other:?}"),
    }
}

/// Parses `busctl call … CanPowerOff` output: `s "yes"`.
pub fn parse_busctl(out: &str) -> Option<&str> {
    out.trim()
        .strip_prefix("s ")?
        .trim()
        .strip_prefix('"')?
        .strip_suffix('"')
}

/// `busctl`'s arguments for logind's CanPowerOff (the doctor asks it too).
pub const CAN_POWER_OFF: [&str; 6] = [
    "call",
    "--system",
    "org.freedesktop.login1",
    "/org/freedesktop/login1",
    "org.freedesktop.login1.Manager",
    "CanPowerOff",
];

/// Asks logind as this process's user; the health word.
pub async fn can_power_off() -> String {
    let call = tokio::process::Command::new("busctl")
        .args(CAN_POWER_OFF)
        // systemd's tools report their own failure to $NOTIFY_SOCKET
        // (ERRNO=…): it is the daemon's channel to systemd, not theirs.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(10), call).await {
        Ok(Ok(out)) if out.status.success() => {
            match parse_busctl(&String::from_utf8_lossy(&out.stdout)) {
                Some(answer) => describe(answer),
                None => format!(
                    "unknown: busctl said {:?}",
                    String::from_utf8_lossy(&out.stdout).trim()
                ),
            }
        }
        Ok(Ok(out)) => format!(
            "unknown: cannot ask logind ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(Err(e)) => format!("unknown: cannot run busctl: {e}"),
        Err(_) => "unknown: logind did not answer within 10 s".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logind_answers_become_health_words() {
        assert_eq!(parse_busctl("s \"yes\"\n"), Some("yes"));
        assert_eq!(parse_busctl("garbage"), None);
        assert_eq!(describe("yes"), "yes");
        assert!(describe("challenge").contains("50-banlight.rules"));
        assert!(describe("no").contains("systemd-inhibit --list"));
        assert!(describe("na").starts_with("no:"));
    }
}
