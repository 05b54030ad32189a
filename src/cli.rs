//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Used when --config is not given and the file exists (the package installs it).
pub const SYSTEM_CONFIG: &str = "/etc/banlight/banlight.toml";

#[derive(Debug, Parser)]
#[command(
    name = "banlight",
    version,
    about = "A desk appliance that lights up when fail2ban bans someone",
    after_help = "Without a subcommand, runs the daemon. Maintenance commands talk to the running daemon over its control socket."
)]
pub struct Cli {
    /// Config file (TOML). Default: /etc/banlight/banlight.toml if it exists, else built-in defaults.
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Control socket of the running daemon (default: from the config).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (the default).
    Run,
    /// Check a config file and print what it means.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Totals, per-route counts, display mode, panel health, uptime.
    Status {
        /// Print JSON (the same data as /api/status, for scripts) instead of aligned text.
        #[arg(long)]
        json: bool,
    },
    /// Recent events, newest first.
    Events {
        /// How far back: 30m, 24h, 7d...
        #[arg(long, default_value = "24h")]
        since: String,
        /// Only this route.
        #[arg(long)]
        route: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only the hooks the ignore list kept from counting (not listed otherwise).
        #[arg(long)]
        ignored: bool,
        /// Print a JSON array (the same rows, for scripts) instead of aligned text.
        #[arg(long)]
        json: bool,
    },
    /// Play a route's sweep without counting.
    Test { route: String },
    /// Zero the counters of one route, or all (recorded as an event).
    Reset {
        route: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Set the LED brightness (0-31) and the display brightness (0-7) until restart or reload.
    Brightness { leds: u8, display: u8 },
    /// Show the next mode, or a named one: total, 24h, or a route.
    Mode {
        /// NEXT, total, 24h or a route name.
        mode: String,
    },
    /// Press a panel button as a finger would: `mode` (next mode), `power`
    /// (short: panel dark/on; held 3 s: shut the machine down).
    Press {
        /// mode or power.
        button: String,
        /// How long to hold it (default 100ms; 3.5s is a long press).
        #[arg(long, value_name = "DURATION")]
        hold: Option<crate::config::Millis>,
    },
    /// Re-read the config file (as SIGHUP does); a bad file changes nothing.
    Reload,
    /// TLS key management (with [tls] in the config).
    Tls {
        #[command(subcommand)]
        action: TlsCommand,
    },
    /// Print a fail2ban jail.d snippet that sends a jail's bans to ROUTE.
    Hook {
        route: String,
        /// The jail to configure.
        #[arg(long, default_value = "sshd")]
        jail: String,
        /// How servers reach this appliance (default: its host name).
        #[arg(long)]
        host: Option<String>,
        /// Which [[source]]'s token to use, when there are several.
        #[arg(long)]
        source: Option<String>,
        /// Print the install steps as a shell script to run on the server
        /// (`banlight hook red --script > setup-sshd.sh`), not the snippet.
        #[arg(long)]
        script: bool,
    },
    /// Check the Pi before and after wiring, without driving anything the
    /// service owns: the board, who holds each configured pin, idle levels,
    /// delay accuracy, power-off and device access for the service user,
    /// free space, clock sync; each problem with its fix. Uses --config,
    /// else /etc/banlight/banlight.toml if it exists. Exits 1 on a problem.
    Doctor,
    /// Light each LED, segment and digit in turn and read the buttons, to
    /// check the wiring (stop the service first). Uses --config, else
    /// /etc/banlight/banlight.toml if it exists.
    Selftest {
        /// Skip the buttons (no waiting for presses).
        #[arg(long)]
        no_buttons: bool,
        /// How long to wait for each button press.
        #[arg(long, value_name = "DURATION", default_value = "15s")]
        button_timeout: crate::config::Millis,
        /// How long each LED colour and segment stays lit.
        #[arg(long, value_name = "DURATION", default_value = "300ms")]
        step: crate::config::Millis,
        /// Also write a JSON report to FILE (machine, wiring, health, each
        /// step's output, problems) to attach to a bug report.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TlsCommand {
    /// Make a new key; both pins are accepted for [tls] overlap (7d), then
    /// the appliance switches to the new key.
    Rotate {
        /// Switch at once (a leaked key): servers with the old pin fail until updated.
        #[arg(long)]
        now: bool,
    },
}
