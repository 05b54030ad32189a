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

/// build.rs writes a man page for banlight and for every subcommand, nested
/// ones included, from src/cli.rs: the same tree the real binary parses.
#[test]
fn the_build_writes_a_man_page_for_every_command_of_the_real_cli() {
    fn names(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        let name = format!("{prefix}{}", cmd.get_name());
        for sub in cmd.get_subcommands() {
            names(sub, &format!("{name}-"), out);
        }
        out.push(name);
    }
    let mut want = Vec::new();
    names(
        &<banlight::cli::Cli as clap::CommandFactory>::command(),
        "",
        &mut want,
    );
    want.sort();
    assert!(
        want.contains(&"banlight-tls-rotate".to_string()),
        "{want:?}"
    );
    let dir = Path::new(env!("OUT_DIR")).join("man");
    let mut have: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".1").map(str::to_string))
        .collect();
    have.sort();
    assert_eq!(have, want, "man pages in {}", dir.display());
    // each page documents its own options
    let selftest = std::fs::read_to_string(dir.join("banlight-selftest.1")).unwrap();
    assert!(selftest.contains("button\\-timeout"), "{selftest}");
}

#[test]
fn the_licence_file_is_the_licence_cargo_toml_names() {
    let cargo = std::fs::read_to_string(repo("Cargo.toml")).unwrap();
    assert!(
        cargo.contains("\nlicense = \"MIT\"\n"),
        "Cargo.toml's licence changed"
    );
    let licence = std::fs::read_to_string(repo("LICENSE")).unwrap();
    assert!(licence.starts_with("MIT License\n"), "{licence}");
    assert!(licence.contains("Permission is hereby granted, free of charge"));
}

#[test]
fn the_debian_changelog_starts_with_this_version() {
    let changelog = std::fs::read_to_string(repo("packaging/debian/changelog")).unwrap();
    let first = changelog.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "banlight ({}) unstable; urgency=medium",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// Debian advises keeping a package's system user on purge: files it owned
/// may outlive the package, and a later user with the same uid would own them.
#[test]
fn purge_keeps_the_system_user() {
    let postrm = std::fs::read_to_string(repo("packaging/debian/postrm")).unwrap();
    for removes_user in ["deluser", "delgroup", "userdel", "groupdel"] {
        assert!(!postrm.contains(removes_user), "postrm runs {removes_user}");
    }
    assert!(
        postrm.contains("rm -rf /var/lib/banlight"),
        "purge removes the counts"
    );
}
