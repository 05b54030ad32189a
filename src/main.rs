use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio::sync::mpsc;

use banlight::cli::{Cli, Command};
use banlight::config::Config;
use banlight::{daemon, notify, panel, selftest};

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    match &cli.config {
        Some(path) => Ok(Config::load(path)?),
        None => Ok(Config::defaults()),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn run_daemon(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (set `listen` in the config)",
                config.listen
            )
        })?;
    let clock = panel::Clock::start();
    let (button_tx, button_rx) = mpsc::channel(64);
    let output = panel::open(&config, clock, button_tx)?;
    let daemon = daemon::start(&config, listener, output, clock, button_rx, async {
        daemon::termination_signal().await;
        notify::stopping();
    })
    .await?;
    notify::ready(&daemon);
    daemon.wait().await
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { ref file }) => match Config::load(file) {
            Ok(c) => {
                println!(
                    "{}: ok (listen {}, {} routes: {})",
                    file.display(),
                    c.listen,
                    c.routes.len(),
                    c.routes
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Some(Command::Selftest {
            no_buttons,
            button_timeout,
            step,
        }) => {
            init_tracing();
            let opts = selftest::Options {
                step: std::time::Duration::from_millis(step.0),
                button_timeout: (!no_buttons)
                    .then(|| std::time::Duration::from_millis(button_timeout.0)),
            };
            selftest::main(cli.config.as_deref(), opts)
        }
        Some(Command::Run) | None => {
            init_tracing();
            let result = load_config(&cli).and_then(|config| {
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .context("tokio runtime")?
                    .block_on(run_daemon(config))
            });
            panel::sim::restore();
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
