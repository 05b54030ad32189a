//! The heartbeat part of `banlight hook`: how to install
//! `fail2ban/banlight-heartbeat` with its timer (or cron line) on the server.
//! Pure text, appended as comments after the jail snippet.

use crate::snippet::{token_file, SHARE_DIR};

/// Where the instructions have the server keep the script.
pub const SCRIPT_PATH: &str = "/usr/local/libexec/banlight-heartbeat";
/// The script's settings on the server.
pub const CONFIG_PATH: &str = "/etc/fail2ban/banlight-heartbeat.conf";
/// How often the shipped timer and cron line run the script.
pub const SHIPPED_INTERVAL_MS: u64 = 60_000;

pub enum Heartbeat<'a> {
    /// The source is watched: full install steps.
    Watched {
        source: &'a str,
        /// `http(s)://host:port` of the appliance.
        base_url: String,
        period_ms: u64,
        grace_ms: u64,
        /// With TLS: the pinned-key options, as on the action line.
        curl_opts: Option<String>,
    },
    /// The source has no `heartbeat`.
    Unwatched { source: &'a str },
    /// No `[[source]]` at all (open appliance).
    NoSource,
}

fn seconds(ms: u64) -> String {
    if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl Heartbeat<'_> {
    pub fn render(&self) -> String {
        let mut out = String::from("#\n");
        match self {
            Heartbeat::NoSource => out.push_str(
                "# Heartbeats (so that the desk can tell a dead server from a quiet one)\n\
                 # need a [[source]] with a token and heartbeat = \"5m\" in the appliance's\n\
                 # config; then run banlight hook again for the install steps.\n",
            ),
            Heartbeat::Unwatched { source } => out.push_str(&format!(
                "# Heartbeat: source \"{source}\" has none configured. Add heartbeat = \"5m\" to\n\
                 # its [[source]] table on the appliance (then banlight reload) so that the\n\
                 # desk shows this server as down when it or its fail2ban goes silent; then\n\
                 # run banlight hook again for the install steps.\n"
            )),
            Heartbeat::Watched {
                source,
                base_url,
                period_ms,
                grace_ms,
                curl_opts,
            } => {
                out.push_str(&format!(
                    "# Heartbeat: the appliance expects one from source \"{source}\" every {} (+{} grace),\n\
                     # else it shows this server as down; so does a heartbeat saying fail2ban does\n\
                     # not answer. From the same folder ({SHARE_DIR}/), as root:\n",
                    seconds(*period_ms),
                    seconds(*grace_ms),
                ));
                let mut lines = vec![
                    "# 1. install the script and its systemd timer (runs it every minute):".to_string(),
                    format!("#      install -m 0755 banlight-heartbeat {SCRIPT_PATH}"),
                    "#      install -m 0644 heartbeat/banlight-heartbeat.service heartbeat/banlight-heartbeat.timer /etc/systemd/system/".to_string(),
                    "#    without systemd, the cron line instead (every minute):".to_string(),
                    "#      install -m 0644 heartbeat/banlight-heartbeat.cron /etc/cron.d/banlight-heartbeat".to_string(),
                    "# 2. its settings (the token file is the action's, stored above):".to_string(),
                    format!("#      cat > {CONFIG_PATH} <<'EOF'"),
                    format!("#      url={base_url}/api/heartbeat"),
                    format!("#      token_file={}", token_file(source)),
                ];
                if let Some(opts) = curl_opts {
                    lines.push(format!("#      curl_opts=\"{opts}\""));
                }
                lines.push("#      EOF".into());
                let mut step = 3;
                if *period_ms < 2 * SHIPPED_INTERVAL_MS {
                    // A beat every minute could miss a shorter period. The
                    // empty OnUnitActiveSec= resets the shipped 1min trigger
                    // (timer settings add up otherwise).
                    let every_s = (period_ms / 2 / 1000).max(1);
                    lines.push(format!(
                        "# {step}. the period is under 2m: run the timer every {every_s}s instead (cron cannot):"
                    ));
                    lines.push(
                        "#      mkdir -p /etc/systemd/system/banlight-heartbeat.timer.d".into(),
                    );
                    lines.push(format!(
                        "#      printf '[Timer]\\nOnUnitActiveSec=\\nOnUnitActiveSec={every_s}s\\nAccuracySec=1s\\n' > /etc/systemd/system/banlight-heartbeat.timer.d/period.conf"
                    ));
                    step += 1;
                }
                lines.push(format!(
                    "# {step}. start it, and check (prints nothing and exits 0 when the appliance took it):"
                ));
                lines.push(
                    "#      systemctl daemon-reload && systemctl enable --now banlight-heartbeat.timer"
                        .into(),
                );
                lines.push(format!("#      {SCRIPT_PATH} && echo sent"));
                lines.push(format!(
                    "#    then on the appliance: banlight status (source {source}: up)"
                ));
                for l in lines {
                    out.push_str(&l);
                    out.push('\n');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(period_ms: u64, curl_opts: Option<String>) -> String {
        Heartbeat::Watched {
            source: "web-1",
            base_url: "http://pi.lan:8080".into(),
            period_ms,
            grace_ms: period_ms,
            curl_opts,
        }
        .render()
    }

    #[test]
    fn watched_sources_get_the_install_steps() {
        let s = watched(300_000, None);
        assert!(s.lines().all(|l| l.starts_with('#')), "{s}");
        for want in [
            "every 5m (+5m grace)",
            "install -m 0755 banlight-heartbeat /usr/local/libexec/banlight-heartbeat",
            "heartbeat/banlight-heartbeat.timer /etc/systemd/system/",
            "/etc/cron.d/banlight-heartbeat",
            "url=http://pi.lan:8080/api/heartbeat",
            "token_file=/etc/fail2ban/banlight-web-1.token",
            "systemctl enable --now banlight-heartbeat.timer",
        ] {
            assert!(s.contains(want), "{want}: {s}");
        }
        assert!(
            !s.contains("curl_opts") && !s.contains("OnUnitActiveSec"),
            "{s}"
        );
    }

    #[test]
    fn short_periods_get_a_faster_timer_and_tls_the_pin() {
        let s = watched(
            30_000,
            Some(crate::snippet::tls_curl_opts(
                "/etc/fail2ban/banlight-web-1.pem",
                &["sha256//AAAA".into(), "sha256//B+/=".into()],
                "pi.example.net",
                8443,
            )),
        );
        assert!(s.contains("OnUnitActiveSec=\\nOnUnitActiveSec=15s"), "{s}");
        assert!(
            s.contains("#      curl_opts=\"--cacert /etc/fail2ban/banlight-web-1.pem --pinnedpubkey sha256//AAAA;sha256//B+/= --connect-to banlight:8443:pi.example.net:8443\""),
            "{s}"
        );
        assert!(s.contains("# 4. start it"), "{s}");
        assert!(watched(2000, None).contains("OnUnitActiveSec=1s"));
    }

    #[test]
    fn unwatched_and_open_appliances_get_a_note() {
        let s = Heartbeat::Unwatched { source: "ssh-1" }.render();
        assert!(
            s.contains("\"ssh-1\"") && s.contains("heartbeat = \"5m\""),
            "{s}"
        );
        assert!(!s.contains("install -m"));
        let s = Heartbeat::NoSource.render();
        assert!(s.contains("[[source]]") && s.lines().all(|l| l.starts_with('#')));
    }
}
