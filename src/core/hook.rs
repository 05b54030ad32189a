//! A hook, the one shape every transport's request is validated into:
//! HTTP query strings and forms, and MQTT's JSON, set the same fields
//! through the same checks. Pure: no I/O, no clock.

use std::net::IpAddr;

use crate::core::names::valid_name;

/// A hook's fields, from a query string, a form body or an MQTT message.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HookParams {
    pub jail: Option<String>,
    pub ip: Option<String>,
    pub source: Option<String>,
    pub failures: Option<u32>,
    /// When the ban happened (unix seconds), for bans delivered late from a
    /// server's spool; see [`event_time_ms`].
    pub time: Option<u64>,
    pub token: Option<String>,
    /// The sender's event id (issue 12): the same id over HTTP and MQTT,
    /// or replayed, counts once.
    pub id: Option<String>,
}

impl HookParams {
    /// Sets one field from its text, checked as every transport checks it:
    /// names, a canonical ip, whole unix seconds, an event id. Other keys
    /// are ignored, so a newer sender can talk to an older appliance.
    pub fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        match key {
            "jail" | "source" => {
                if !valid_name(v) {
                    return Err(format!(
                        "invalid {key} \"{}\": use 1-64 letters, digits or . _ - : @",
                        shown(v, 64)
                    ));
                }
                let slot = if key == "jail" {
                    &mut self.jail
                } else {
                    &mut self.source
                };
                *slot = Some(v.to_string());
            }
            "ip" => {
                let ip: IpAddr = v
                    .parse()
                    .map_err(|_| format!("invalid ip \"{}\"", shown(v, 64)))?;
                // Canonical form, so dedupe sees ::1 and 0:0::1 as one address,
                // and ::ffff:a.b.c.d (an IPv4 client of a dual-stack server),
                // ::a.b.c.d, NAT64 and 6to4 forms as the a.b.c.d they carry.
                self.ip = Some(crate::core::ignore::fold_ipv4(ip).to_string());
            }
            "failures" => {
                self.failures = Some(
                    v.parse()
                        .map_err(|_| format!("invalid failures \"{}\"", shown(v, 20)))?,
                );
            }
            "time" => {
                // Whole unix seconds, as `date +%s` prints them.
                self.time = Some(
                    v.parse()
                        .ok()
                        .filter(|_| v.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| {
                            format!("invalid time \"{}\": use unix seconds", shown(v, 20))
                        })?,
                );
            }
            "token" => self.token = Some(v.to_string()),
            "id" => {
                if !valid_event_id(v) {
                    return Err(format!(
                        "invalid id \"{}\": use 1-128 printable characters without spaces",
                        shown(v, 64)
                    ));
                }
                self.id = Some(v.to_string());
            }
            _ => {}
        }
        Ok(())
    }
}

fn shown(v: &str, max: usize) -> String {
    v.chars().take(max).flat_map(char::escape_default).collect()
}

/// An event id (from a hook over MQTT or HTTP): 1-128 printable ASCII
/// characters without spaces.
pub fn valid_event_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

/// How old a sent `time` may be: older bans (a spool kept through a month
/// of outage) are stored at their arrival time instead.
pub const TIME_AGE_MAX_MS: u64 = 30 * 24 * 3_600_000;

/// The time an event is stored with: the ban's own `time` (unix seconds) when
/// it is plausible against the appliance's clock (not in the future, at most
/// [`TIME_AGE_MAX_MS`] old), else the arrival time. An implausible time is
/// clamped, not refused: a Pi has no RTC and may run behind after a reboot
/// (exactly when servers deliver their spools), and a ban must not be lost
/// over a clock disagreement; clamping still keeps a wrong sender clock from
/// putting events in the future or far in the past.
pub fn event_time_ms(sent_s: Option<u64>, now_ms: u64) -> u64 {
    match sent_s.and_then(|s| s.checked_mul(1000)) {
        Some(t) if t <= now_ms && now_ms - t <= TIME_AGE_MAX_MS => t,
        _ => now_ms,
    }
}

/// A validated, authorized hook: what the ledger stores and counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub route: String,
    pub jail: Option<String>,
    pub ip: Option<String>,
    pub source: Option<String>,
    /// The ban's own time (unix seconds) when the sender gave one.
    pub time: Option<u64>,
    /// The ip is on the ignore list: logged as an `ignored` event, not counted.
    pub ignored: bool,
    /// The sender's event id (MQTT hooks always, HTTP `id=`): an id counted
    /// before is not counted again, whatever the path it came by.
    pub event_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_time_is_the_sent_time_only_when_plausible() {
        let now = 1_763_800_000_000;
        assert_eq!(event_time_ms(None, now), now);
        assert_eq!(event_time_ms(Some(1_763_799_400), now), now - 600_000);
        assert_eq!(event_time_ms(Some(1_763_800_000), now), now);
        let oldest = now - TIME_AGE_MAX_MS;
        assert_eq!(event_time_ms(Some(oldest / 1000), now), oldest);
        // too old, in the future (by a second or by years), or absurd: arrival time
        assert_eq!(event_time_ms(Some(oldest / 1000 - 1), now), now);
        assert_eq!(event_time_ms(Some(1_763_800_001), now), now);
        assert_eq!(event_time_ms(Some(4_000_000_000), now), now);
        assert_eq!(event_time_ms(Some(0), now), now);
        assert_eq!(event_time_ms(Some(u64::MAX), now), now);
    }
}
