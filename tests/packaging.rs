//! The files the .deb installs: the default config parses and says what the
//! appliance needs, and the systemd unit keeps its contract with the daemon.

use std::path::Path;

use banlight::config::{Backend, Config, PanelConfig};

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn the_packaged_config_listens_on_the_network_with_the_auto_backend() {
    let c = Config::load(&repo("packaging/banlight.toml")).unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.panel.backend, Backend::Auto);
    // the CLI reads this file too, so it must name what systemd provides
    assert_eq!(c.state_dir, Path::new("/var/lib/banlight"));
    assert_eq!(c.control_socket, Path::new("/run/banlight/control.sock"));
    // Everything else is the documented default.
    assert_eq!(c.panel, PanelConfig::default());
    assert_eq!(c.routes, Config::defaults().routes);
}

#[test]
fn the_unit_runs_the_packaged_config_as_a_hardened_notify_service() {
    let unit = std::fs::read_to_string(repo("systemd/banlight.service")).unwrap();
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for expected in [
        "Type=notify",
        "ExecStart=/usr/bin/banlight --config /etc/banlight/banlight.toml run",
        "ExecReload=/usr/bin/banlight --config /etc/banlight/banlight.toml reload",
        "Restart=on-failure",
        "User=banlight",
        "StateDirectory=banlight",
        "RuntimeDirectory=banlight",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "DevicePolicy=closed",
        "DeviceAllow=/dev/gpiomem rw",
        "DeviceAllow=char-gpiochip rw",
        "DeviceAllow=char-spi rw",
    ] {
        assert!(
            lines.contains(&expected),
            "{expected} missing from the unit"
        );
    }
    let watchdog = lines
        .iter()
        .find_map(|l| l.strip_prefix("WatchdogSec="))
        .expect("WatchdogSec=");
    assert!(watchdog.ends_with('s'), "{watchdog}");
}
