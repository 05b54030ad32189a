//! `banlight reset [ROUTE]`: zero one route's counters, or all, recorded as
//! an event; asks first unless `--yes`.

use std::io::{BufRead, IsTerminal, Write};

use serde::{Deserialize, Serialize};

use crate::admin::Client;
use crate::control::{Control, ControlRequest};
use crate::engine::EngineMsg;

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    /// The route reset, or `all`.
    pub reset: String,
}

pub(super) async fn apply(control: &Control, route: Option<String>) -> Result<Reply, String> {
    if let Some(r) = &route {
        if !control.route_exists(r) {
            return Err(format!("no route \"{r}\""));
        }
    }
    control
        .ledger
        .reset(route.clone(), "cli".into())
        .await
        .map_err(|e| e.to_string())?;
    // The display shows counts: redraw it now, not at the next event.
    control.engine.send(EngineMsg::Refresh);
    tracing::warn!(
        route = route.as_deref().unwrap_or("(all)"),
        "counters reset from the CLI"
    );
    // Open pages show the new counts now.
    if let Some(web) = &control.web {
        web.changed();
    }
    Ok(Reply {
        reset: route.unwrap_or_else(|| "all".into()),
    })
}

pub(super) fn run(client: &Client, route: Option<String>, yes: bool) -> Result<(), String> {
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
    let _: Reply = client.ask(&ControlRequest::Reset { route })?;
    println!("reset {what}");
    Ok(())
}

fn confirm(question: &str) -> bool {
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}
