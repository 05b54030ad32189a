//! `banlight test ROUTE`: play a route's sweep without counting it.

use serde::{Deserialize, Serialize};

use crate::admin::Client;
use crate::control::{Control, ControlRequest};
use crate::engine::EngineMsg;

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub played: String,
}

pub(super) fn apply(control: &Control, route: String) -> Result<Reply, String> {
    if !control.route_exists(&route) {
        return Err(format!("no route \"{route}\""));
    }
    control.engine.send(EngineMsg::Test(route.clone()));
    Ok(Reply { played: route })
}

pub(super) fn run(client: &Client, route: String) -> Result<(), String> {
    let reply: Reply = client.ask(&ControlRequest::Test { route })?;
    println!("playing the {} sweep (not counted)", reply.played);
    Ok(())
}
