use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio::sync::mpsc;

use banlight::cli::{Cli, Command, SYSTEM_CONFIG};
use banlight::config::Config;
use banlight::{admin, cmd, daemon, doctor, notify, panel, selftest};

fn load_config(cli: &Cli) -> Result<Config, banlight::config::ConfigError> {
    match &cli.config {
        Some(path) => Config::load(path),
        None if Path::new(SYSTEM_CONFIG).exists() => Config::load(Path::new(SYSTEM_CONFIG)),
        None => Ok(Config::defaults()),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(panel::sim::LogWriter)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn run_daemon(config: Config) -> anyhow::Result<()> {
    // Claimed before anything else, so a SIGHUP during start-up cannot kill
    // the daemon (the default action); it is handled once serving.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("SIGHUP handler")?;
    let listener = match config.plain_http {
        true => Some(
            tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| {
                    format!(
                        "cannot listen on {} (set `listen` in the config)",
                        config.listen
                    )
                })?,
        ),
        false => None,
    };
    let clock = panel::Clock::start();
    let (button_tx, button_rx) = mpsc::channel(64);
    let output = panel::open(&config, clock, button_tx)?;
    let daemon = daemon::start(&config, listener, output, clock, button_rx, async {
        daemon::termination_signal().await;
        notify::stopping();
    })
    .await?;
    notify::ready(&daemon);
    let control = daemon.control.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the config");
            let _ = control.reload().await; // errors are logged; the old config stays
        }
    });
    daemon.wait().await
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    let command = cli.command.take().unwrap_or(Command::Run);
    match command {
        Command::CheckConfig { ref file } => match Config::load(file) {
            Ok(c) => {
                let mut listen = Vec::new();
                if c.plain_http {
                    listen.push(format!("listen {}", c.listen));
                }
                if let Some(t) = &c.tls {
                    listen.push(format!("TLS {}", t.listen));
                }
                println!(
                    "{}: ok ({}, {} routes: {}; {} sources)",
                    file.display(),
                    listen.join(", "),
                    c.routes.len(),
                    c.routes
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    c.sources.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Doctor => doctor::main(cli.config.as_deref()),
        Command::Selftest {
            no_buttons,
            button_timeout,
            step,
            report,
        } => {
            init_tracing();
            let opts = selftest::Options {
                step: std::time::Duration::from_millis(step.0),
                button_timeout: (!no_buttons)
                    .then(|| std::time::Duration::from_millis(button_timeout.0)),
            };
            selftest::main(cli.config.as_deref(), opts, report.as_deref())
        }
        Command::Run => {
            init_tracing();
            let result = load_config(&cli)
                .map_err(anyhow::Error::from)
                .and_then(|config| {
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
        other => {
            let result = cmd::config_for_cli(&other, cli.config.as_deref(), cli.socket.as_deref())
                .and_then(|config| {
                    let client = admin::Client::new(cli.socket.as_deref(), &config);
                    cmd::run(other, &config, &client)
                });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
