//! `banlight hook ROUTE`: the fail2ban snippet for a jail, from the config
//! alone (no daemon needed), with warnings about what would keep it from
//! working printed to stderr. Its daemon side says which file the config
//! came from, so that a `hook` run without --config matches the daemon.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::control::Control;

use crate::config::Config;
use crate::host::{hostname, local_addresses};
use crate::snippet::{HookSnippet, Reach};

/// Where the daemon read its config (`None`: built-in defaults), absolute
/// so that a CLI started elsewhere finds it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConfigPathReply {
    pub path: Option<PathBuf>,
}

pub(super) fn config_path(control: &Control) -> ConfigPathReply {
    let source = control.config.lock().expect("config lock").source.clone();
    ConfigPathReply {
        path: source.map(|p| std::fs::canonicalize(&p).unwrap_or(p)),
    }
}

pub(super) fn run(
    config: &Config,
    route: &str,
    jail: &str,
    host: Option<String>,
    source: Option<&str>,
    script: bool,
) -> Result<(), String> {
    let (snippet, warnings) = hook_text(config, route, jail, host, source, script)?;
    // Warnings go to stderr: stdout stays a clean snippet to paste.
    for w in warnings {
        eprintln!("warning: {w}");
    }
    print!("{snippet}");
    Ok(())
}

/// The snippet for `banlight hook`, from the config (no daemon needed), and
/// warnings about what would keep it from working.
pub fn hook_snippet(
    config: &Config,
    route: &str,
    jail: &str,
    host: Option<String>,
    source: Option<&str>,
) -> Result<(String, Vec<String>), String> {
    hook_text(config, route, jail, host, source, false)
}

/// The snippet, or with `script` the install steps as a runnable script
/// (`HookSnippet::script`), and the warnings.
pub fn hook_text(
    config: &Config,
    route: &str,
    jail: &str,
    host: Option<String>,
    source: Option<&str>,
    script: bool,
) -> Result<(String, Vec<String>), String> {
    if config.route_index(route).is_none() {
        let names: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
        return Err(format!(
            "no route \"{route}\"; routes: {}",
            names.join(", ")
        ));
    }
    if !crate::core::names::valid_name(jail) {
        return Err(format!("invalid jail name \"{jail}\""));
    }
    let allowed: Vec<&crate::config::Source> = config
        .sources
        .iter()
        .filter(|s| {
            s.routes
                .as_ref()
                .is_none_or(|r| r.iter().any(|x| x == route))
        })
        .collect();
    let chosen = match source {
        Some(name) => Some(
            *allowed
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(|| format!("no source \"{name}\" that may post to {route}"))?,
        ),
        None if config.sources.is_empty() => None,
        None if allowed.len() == 1 => Some(allowed[0]),
        None if allowed.is_empty() => {
            return Err(format!("no [[source]] may post to route {route}"))
        }
        None => {
            let names: Vec<&str> = allowed.iter().map(|s| s.name.as_str()).collect();
            return Err(format!(
                "several sources may post to {route}; pick one with --source: {}",
                names.join(", ")
            ));
        }
    };
    // The listener servers use: the TLS one when configured.
    let hook_listen = config.tls.map_or(config.listen, |t| t.listen);
    let host_used = host.clone().unwrap_or_else(|| {
        let ip = hook_listen.ip();
        if ip.is_unspecified() || ip.is_loopback() {
            hostname()
        } else {
            ip.to_string()
        }
    });
    // With [tls], servers use it, trusting and pinning this appliance's key(s).
    let (pins, certs_pem) = match &config.tls {
        Some(_) => (
            crate::tls::read_pins(&config.state_dir)?,
            crate::tls::read_certs(&config.state_dir)?,
        ),
        None => (Vec::new(), String::new()),
    };
    let hook = HookSnippet {
        route,
        jail,
        host: &host_used,
        port: hook_listen.port(),
        token: chosen.map(|s| s.token.as_str()),
        source: chosen.map(|s| s.name.as_str()),
        tls: config.tls.map(|_| crate::snippet::TlsTrust {
            pins: &pins,
            certs_pem: &certs_pem,
        }),
    };
    let mut snippet = match script {
        true => hook.script(),
        false => hook.render(),
    };
    // How to install the heartbeat script for this source (issue 11): the
    // same URL and trust as the action line.
    let url_host = if host_used.contains(':') && !host_used.starts_with('[') {
        format!("[{host_used}]")
    } else {
        host_used.clone()
    };
    let port = hook_listen.port();
    let heartbeat = match chosen {
        None => crate::snippet_heartbeat::Heartbeat::NoSource,
        Some(s) => match s.heartbeat {
            None => crate::snippet_heartbeat::Heartbeat::Unwatched { source: &s.name },
            Some(spec) => crate::snippet_heartbeat::Heartbeat::Watched {
                source: &s.name,
                base_url: match config.tls {
                    Some(_) => format!("https://{}:{port}", crate::snippet::TLS_NAME),
                    None => format!("http://{url_host}:{port}"),
                },
                period_ms: spec.period_ms,
                grace_ms: spec.grace_ms,
                curl_opts: config.tls.map(|_| {
                    crate::snippet::tls_curl_opts(
                        &crate::snippet::cert_file(&s.name),
                        &pins,
                        &url_host,
                        port,
                    )
                }),
            },
        },
    };
    snippet.push_str(&heartbeat.render());
    let addresses = if host.is_none() {
        local_addresses()
    } else {
        Vec::new()
    };
    let warnings = crate::snippet::warnings(&Reach {
        listen: hook_listen,
        host_given: host.as_deref(),
        host_used: &host_used,
        addresses: &addresses,
    });
    Ok((snippet, warnings))
}
