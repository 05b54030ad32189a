//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "banlight",
    version,
    about = "A desk appliance that lights up when fail2ban bans someone"
)]
pub struct Cli {
    /// Config file (TOML). Without one, built-in defaults are used.
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

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
    },
}
