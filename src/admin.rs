//! The maintenance commands: each talks to the running daemon over the
//! control socket and prints aligned text for people or JSON for scripts.

use std::io::{BufRead, IsTerminal, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cli::Command;
use crate::config::{Config, Millis};
use crate::control::{call, since_ms, ControlRequest};
use crate::snippet::{HookSnippet, Reach};

/// Where the daemon's socket is: --socket, else the config's.
pub fn socket_path(explicit: Option<&Path>, config: &Config) -> PathBuf {
    explicit.map_or_else(|| config.control_socket.clone(), Path::to_path_buf)
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Aligned columns; the first row is the header.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let numeric = cell.chars().all(|c| c.is_ascii_digit()) && !cell.is_empty();
                if numeric {
                    format!("{cell:>w$}", w = widths[i])
                } else {
                    format!("{cell:<w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

pub fn format_status(s: &Value) -> String {
    let mut out = format!(
        "banlight {} up {}, mode {}, panel {}{}, display {}\n\n",
        text(&s["version"]),
        uptime(s["uptime_s"].as_u64().unwrap_or(0)),
        text(&s["mode"]),
        text(&s["panel"]["backend"]),
        if s["panel"]["dark"] == Value::Bool(true) {
            " (dark)"
        } else if s["panel"]["quiet"] == Value::Bool(true) {
            " (quiet hours)"
        } else {
            ""
        },
        text(&s["display"]),
    );
    let mut rows = vec![vec![
        "route".to_string(),
        "count".into(),
        "24h".into(),
        "last seen".into(),
    ]];
    if let Some(routes) = s["routes"].as_object() {
        // In the config's order (the LED order), as `route_order` gives it;
        // the object alone would come out alphabetically.
        let mut names: Vec<&str> = s["route_order"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        names.retain(|n| routes.contains_key(*n));
        for key in routes.keys() {
            if !names.contains(&key.as_str()) {
                names.push(key);
            }
        }
        for name in names {
            let r = &routes[name];
            rows.push(vec![
                name.to_string(),
                text(&r["count"]),
                text(&r["last_24h"]),
                text(&r["last_seen"]),
            ]);
        }
    }
    rows.push(vec![
        "total".into(),
        text(&s["total"]),
        text(&s["last_24h"]),
        String::new(),
    ]);
    out.push_str(&table(&rows));
    out.push_str(&format!(
        "\nrequests refused {}, unauthorized {}, rate-limited {} (auth: {})\n",
        text(&s["requests"]["refused"]),
        text(&s["requests"]["unauthorized"]),
        text(&s["requests"]["rate_limited"]),
        text(&s["auth"]),
    ));
    out.push_str(&format!(
        "connections open {}, evicted (idle or trickling, to make room) {}, refused (all busy) {}, dropped (per-address cap or timeout) {}\n",
        text(&s["requests"]["open_connections"]),
        text(&s["requests"]["evicted_connections"]),
        text(&s["requests"]["refused_connections_busy"]),
        text(&s["requests"]["dropped_connections"]),
    ));
    out.push_str(&format_heartbeats(&s["heartbeats"]));
    if let Some(m) = s["mqtt"].as_object() {
        out.push_str(&format!(
            "mqtt {}: published {}, outbox {} waiting, {} dropped (outbox full); hooks in {} (counted {}, repeats or ignored {}, refused {}){}\n",
            if m["connected"] == Value::Bool(true) { "connected" } else { "NOT connected" },
            text(&m["published"]),
            text(&m["outbox"]),
            text(&m["outbox_dropped"]),
            text(&m["hooks_received"]),
            text(&m["hooks_counted"]),
            text(&m["hooks_not_counted"]),
            text(&m["hooks_refused"]),
            m["last_error"].as_str().map(|e| format!("; last error: {e}")).unwrap_or_default(),
        ));
    }
    out
}

/// The heartbeat table of `banlight status` (nothing when no source is watched).
pub fn format_heartbeats(h: &Value) -> String {
    let Some(sources) = h.as_object().filter(|o| !o.is_empty()) else {
        return String::new();
    };
    let mut rows = vec![vec![
        "source".to_string(),
        "heartbeat".into(),
        "last".into(),
        "every".into(),
        "fail2ban".into(),
        "banned".into(),
    ]];
    for (name, b) in sources {
        let secs = |k: &str| {
            b[k].as_u64()
                .map_or("-".to_string(), |ms| format!("{}s", ms / 1000))
        };
        let last = b["last_ms"]
            .as_u64()
            .map_or("never".to_string(), crate::core::time::rfc3339_utc);
        let fail2ban = match b["fail2ban_up"] {
            Value::Bool(true) => "up",
            Value::Bool(false) => "DOWN",
            _ => "-",
        };
        let banned = b["jails"]
            .as_object()
            .map(|j| {
                j.iter()
                    .map(|(jail, n)| format!("{jail}:{n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let state = text(&b["state"]);
        rows.push(vec![
            name.clone(),
            if state == "down" {
                "DOWN".into()
            } else {
                state
            },
            last,
            format!("{} +{} grace", secs("period_ms"), secs("grace_ms")),
            fail2ban.into(),
            banned,
        ]);
    }
    format!("\n{}", table(&rows))
}

pub fn format_events(events: &[Value]) -> String {
    if events.is_empty() {
        return "no events\n".into();
    }
    let mut rows = vec![vec![
        "time".to_string(),
        "route".into(),
        "kind".into(),
        "source".into(),
        "jail".into(),
        "ip".into(),
    ]];
    for e in events {
        rows.push(
            ["time", "route", "kind", "source", "jail", "ip"]
                .iter()
                .map(|k| text(&e[*k]))
                .collect(),
        );
    }
    table(&rows)
}

fn confirm(question: &str) -> bool {
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// Runs a maintenance command; `Err` is the message for stderr.
pub fn run(command: Command, config: &Config, socket: Option<&Path>) -> Result<(), String> {
    let socket = socket_path(socket, config);
    let ask = |req: ControlRequest| call(&socket, &req);
    match command {
        Command::Status { json } => {
            let s = ask(ControlRequest::Status)?;
            if json {
                println!("{s}");
            } else {
                print!("{}", format_status(&s));
            }
        }
        Command::Events {
            since,
            route,
            limit,
            ignored,
            json,
        } => {
            let ago: Millis = since.parse().map_err(|e| format!("--since: {e}"))?;
            let v = ask(ControlRequest::Events {
                since_ms: since_ms(ago.0),
                route,
                limit,
                ignored,
            })?;
            let events = v["events"].as_array().cloned().unwrap_or_default();
            if json {
                println!("{}", Value::Array(events));
            } else {
                print!("{}", format_events(&events));
            }
        }
        Command::Test { route } => {
            ask(ControlRequest::Test {
                route: route.clone(),
            })?;
            println!("playing the {route} sweep (not counted)");
        }
        Command::Reset { route, yes } => {
            let what = route
                .as_deref()
                .map_or("ALL counters".to_string(), |r| format!("the {r} counter"));
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(format!(
                        "refusing to reset {what} without --yes (stdin is not a terminal)"
                    ));
                }
                if !confirm(&format!("Reset {what} to zero?")) {
                    return Err("not reset".into());
                }
            }
            ask(ControlRequest::Reset { route })?;
            println!("reset {what}");
        }
        Command::Brightness { leds, display } => {
            ask(ControlRequest::Brightness { leds, display })?;
            println!("brightness: LEDs {leds}/31, display {display}/7 (until a restart or reload; set led_brightness and display_brightness in the config to keep it)");
        }
        Command::Mode { mode } => {
            let v = ask(ControlRequest::Mode {
                mode: mode.to_lowercase(),
            })?;
            println!("mode: {}", text(&v["mode"]));
        }
        Command::Reload => {
            let v = ask(ControlRequest::Reload)?;
            println!("reloaded {}", text(&v["reloaded"]));
        }
        Command::Hook {
            route,
            jail,
            host,
            source,
        } => {
            let (snippet, warnings) = hook_snippet(config, &route, &jail, host, source.as_deref())?;
            // Warnings go to stderr: stdout stays a clean snippet to paste.
            for w in warnings {
                eprintln!("warning: {w}");
            }
            print!("{snippet}");
        }
        Command::Tls {
            action: crate::cli::TlsCommand::Rotate { now },
        } => {
            let v = ask(ControlRequest::TlsRotate { now })?;
            let pins: Vec<String> = v["pins"]
                .as_array()
                .map(|a| a.iter().map(|p| text(p).to_string()).collect())
                .unwrap_or_default();
            if now {
                println!(
                    "switched to a new TLS key: {}",
                    pins.last().map_or("", String::as_str)
                );
                println!(
                    "servers with the old pin fail until their snippet is updated (banlight hook)"
                );
            } else {
                println!(
                    "new TLS key made; until {} the appliance keeps the current key and",
                    text(&v["switch_at"])
                );
                println!("servers should trust both keys ({}).", pins.join(", "));
                println!(
                    "Before then, run `banlight hook` again and on every server store its certificate"
                );
                println!(
                    "file (both certificates) and its action line (both pins); then the appliance switches."
                );
            }
        }
        Command::Run | Command::CheckConfig { .. } | Command::Selftest { .. } => {
            unreachable!("not a maintenance command")
        }
    }
    Ok(())
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|b| *b == 0).unwrap_or(0);
    if ok && end > 0 {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "banlight.local".into()
    }
}

/// This machine's addresses that servers could use: not loopback, not IPv6
/// link-local (unusable in a URL without an interface name).
/// Written with getifaddrs(3) from libc, already a dependency, rather than a
/// crate for these few lines.
fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we only read, and
    // free once with freeifaddrs; each ifa_addr is null or points at a
    // sockaddr whose family says which struct it is.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut cur = list;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let a = &*(addr as *const libc::sockaddr_in);
                        out.push(IpAddr::from(a.sin_addr.s_addr.to_ne_bytes()));
                    }
                    libc::AF_INET6 => {
                        let a = &*(addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::from(a.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out.retain(|a| match a {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_unspecified(),
        IpAddr::V6(v6) => {
            !v6.is_loopback() && !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80
        }
    });
    out.sort_by_key(|a| (a.is_ipv6(), *a));
    out.dedup();
    out
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
    let snippet = HookSnippet {
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
    }
    .render();
    let mut snippet = snippet;
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

#[cfg(test)]
mod status_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_lists_routes_in_config_order() {
        let route = |n: u64| json!({"count": n, "last_24h": n, "last_seen": null});
        let s = json!({
            "version": "0.1.0", "uptime_s": 5, "mode": "total", "display": "ok",
            "panel": {"backend": "sim", "dark": false},
            "routes": {"blue": route(2), "green": route(4), "purple": route(3), "red": route(1)},
            "route_order": ["red", "blue", "purple", "green"],
            "total": 10, "last_24h": 10, "requests": {}, "auth": "open",
        });
        let text = format_status(&s);
        let order: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| ["red", "blue", "purple", "green"].contains(w))
            .collect();
        assert_eq!(order, ["red", "blue", "purple", "green"], "{text}");
        // an older daemon without route_order: all routes still listed
        let mut old = s.clone();
        old.as_object_mut().unwrap().remove("route_order");
        for name in ["red", "blue", "purple", "green"] {
            assert!(format_status(&old).contains(name));
        }
    }
}
