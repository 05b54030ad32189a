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
}
